// tests/text/text_golden.hpp — access to tests/data/text/ (made by tests/golden/make_tokenizer_golden.py):
// the corpus, the reference ids and decodes, and the tokenizer files, with the same JSON patches
// and Vocabulary edits the script applied to make each variant.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <weft/text/tokenizer.hpp>

#ifndef WEFT_SOURCE_DIR
#error "compile the tests with -DWEFT_SOURCE_DIR=\"/path/to/weft\""
#endif

namespace weft_test::text {

using nlohmann::json;

inline std::string data_path(const std::string& name) { return std::string(WEFT_SOURCE_DIR) + "/tests/data/text/" + name; }

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline const json& golden() {
    static const json g = json::parse(slurp(data_path("golden.json")));
    return g;
}

struct Case {
    std::string name;
    std::string bytes;
    bool utf8;
};

inline std::string from_hex(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

inline const std::vector<Case>& cases() {
    static const std::vector<Case> all = [] {
        std::vector<Case> v;
        for (const json& c : golden()["cases"]) {
            if (c.contains("text")) v.push_back({c["name"].get<std::string>(), c["text"].get<std::string>(), true});
            else v.push_back({c["name"].get<std::string>(), from_hex(c["hex"].get<std::string>()), false});
        }
        return v;
    }();
    return all;
}

inline std::vector<std::int32_t> ids_of(const json& j) { return j.get<std::vector<std::int32_t>>(); }

// The tokenizer.json text of a variant: the committed file with the variant's patch applied.
inline std::string variant_json(const json& entry) {
    json doc = json::parse(slurp(data_path(entry["source"].get<std::string>())));
    for (const auto& [pointer, value] : entry["json_patch"].items()) doc[json::json_pointer(pointer)] = value;
    return doc.dump();
}

inline std::string variant_config(const json& entry) {
    const std::string source = entry["source"].get<std::string>();
    return slurp(data_path(source.substr(0, source.find('/')) + "/tokenizer_config.json"));
}

// The Vocabulary of the committed tokenizer.model with a variant's edits.
inline weft::text::Vocabulary spm_vocabulary(const json& entry) {
    weft::text::Vocabulary v = weft::text::read_sentencepiece_model(data_path("spm/tokenizer.model"));
    for (const auto& [field, value] : entry["vocabulary_patch"].items()) {
        if (field == "remove_extra_whitespaces") v.remove_extra_whitespaces = value.get<bool>();
        else if (field == "add_dummy_prefix") v.add_space_prefix = value.get<bool>();
        else throw std::runtime_error("unknown vocabulary_patch field " + field);
    }
    return v;
}

// What a GGUF file converted from a byte-level tokenizer.json holds, as a Vocabulary: tokens by
// id, control type for special added tokens, user-defined for the others, merges as "a b".
inline weft::text::Vocabulary byte_level_vocabulary(const std::string& tokenizer_json, const std::string& pre) {
    const json doc = json::parse(tokenizer_json);
    weft::text::Vocabulary v;
    v.model = "gpt2";
    v.pre = pre;
    std::map<std::int32_t, std::string> by_id;
    std::map<std::int32_t, std::int32_t> types;
    for (const auto& [text, id] : doc["model"]["vocab"].items()) by_id[id.get<std::int32_t>()] = text;
    for (const json& t : doc["added_tokens"]) {
        const auto id = t["id"].get<std::int32_t>();
        by_id[id] = t["content"].get<std::string>();
        types[id] = t["special"].get<bool>() ? 3 : 4;
    }
    for (const auto& [id, text] : by_id) {
        if (id != static_cast<std::int32_t>(v.tokens.size())) throw std::runtime_error("ids are not contiguous");
        v.tokens.push_back(text);
        v.types.push_back(types.count(id) ? types[id] : 1);
        if (text == "<|begin_of_text|>") v.bos_id = id;
        if (text == "<|end_of_text|>") v.eos_id = id;
    }
    for (const json& m : doc["model"]["merges"])
        v.merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
    v.add_bos = true;
    v.add_space_prefix = false;
    return v;
}

// Shows bytes readably in failure messages.
inline std::string escaped(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += static_cast<char>(c);
        } else {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

}  // namespace weft_test::text
