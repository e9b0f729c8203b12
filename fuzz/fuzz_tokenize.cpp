// fuzz/fuzz_tokenize.cpp — libFuzzer target for the tokenizers' encode and decode (text/tokenizer.hpp,
// text/pipeline.hpp, text/bpe.hpp, text/pretokenizer.hpp). Real small tokenizers from
// tests/data/text/ are loaded once; every input is used as the text for each of them:
//   spm.model   SentencePiece BPE from tokenizer.model (Llama 2 settings, byte fallback, <sep>)
//   spm.json    the same model as a Llama 2 legacy tokenizer.json (HF's pipeline)
//   llama3      byte-level BPE, Llama 3 split regex (tokenizer.json)
//   llama4      byte-level BPE, Llama 4 split regex (tokenizer.json)
//   llama3.gguf the llama3 vocabulary as a GGUF file holds it (text::Vocabulary, pre "llama-bpe")
//   gpt2.gguf   the same vocabulary with GPT-2's split regex (pre "gpt2", merges not ignored)
// Checked for every tokenizer (fuzz_tokenizer_checks.hpp): ids in range, add_bos framing,
// StreamDecoder equal to decode, valid UTF-8 out; and the input's bytes read as token ids decode
// the same both ways. Round trips, where the tokenizer guarantees them:
//   byte-level: the pieces of encode(text) are the text's bytes exactly, for any bytes, specials
//     allowed or not; decode(encode(text)) == text when the text is valid UTF-8;
//   SentencePiece (tokenizer.model): decode(encode(text), skip_special) == text for valid UTF-8
//     without U+2581 (SentencePiece writes spaces as U+2581, so a literal one comes back a space);
//   spm.json: the same, also without the user-defined "<sep>" (HF's legacy Prepend normalizer
//     puts a U+2581 after every added token, so a space appears there).
// Plain encoding (allow_special = false) never gives a special token's id.
#include <weft/text/tokenizer.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_input_file.hpp"
#include "fuzz_tokenizer_checks.hpp"

#ifndef WEFT_FUZZ_TEXT_DATA
#error "compile with -DWEFT_FUZZ_TEXT_DATA=\"<weft>/tests/data/text\""
#endif

namespace {

using weft::text::Tokenizer;
using weft_fuzz::Ids;

enum class RoundTrip { byte_level, sentencepiece, sentencepiece_json };

struct Subject {
    const char* name;
    Tokenizer tok;
    RoundTrip round_trip;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "fuzz_tokenize: cannot read %s\n", path.c_str());
        std::abort();
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// What a GGUF file converted from a byte-level tokenizer.json holds (as tests/text/text_golden.hpp
// builds it): tokens by id, control type for special added tokens, user-defined for the others.
weft::text::Vocabulary byte_level_vocabulary(const std::string& tokenizer_json, const std::string& pre) {
    const nlohmann::json doc = nlohmann::json::parse(tokenizer_json);
    weft::text::Vocabulary v;
    v.model = "gpt2";
    v.pre = pre;
    std::map<std::int32_t, std::string> by_id;
    std::map<std::int32_t, std::int32_t> types;
    for (const auto& [text, id] : doc["model"]["vocab"].items()) by_id[id.get<std::int32_t>()] = text;
    for (const nlohmann::json& t : doc["added_tokens"]) {
        const auto id = t["id"].get<std::int32_t>();
        by_id[id] = t["content"].get<std::string>();
        types[id] = t["special"].get<bool>() ? 3 : 4;
    }
    for (const auto& [id, text] : by_id) {
        v.tokens.push_back(text);
        v.types.push_back(types.count(id) ? types[id] : 1);
        if (text == "<|begin_of_text|>") v.bos_id = id;
        if (text == "<|end_of_text|>") v.eos_id = id;
    }
    for (const nlohmann::json& m : doc["model"]["merges"])
        v.merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
    v.add_bos = true;
    v.add_space_prefix = false;
    return v;
}

const std::vector<Subject>& subjects() {
    static const std::vector<Subject> all = [] {
        const std::string dir = WEFT_FUZZ_TEXT_DATA;
        const std::string llama3 = slurp(dir + "/llama3/tokenizer.json");
        std::vector<Subject> s;
        s.push_back({"spm.model", Tokenizer::from_sentencepiece_model(dir + "/spm"), RoundTrip::sentencepiece});
        s.push_back({"spm.json", Tokenizer::from_tokenizer_json(dir + "/spm"), RoundTrip::sentencepiece_json});
        s.push_back({"llama3", Tokenizer::from_tokenizer_json(dir + "/llama3"), RoundTrip::byte_level});
        s.push_back({"llama4", Tokenizer::from_tokenizer_json(dir + "/llama4"), RoundTrip::byte_level});
        s.push_back({"llama3.gguf", Tokenizer(byte_level_vocabulary(llama3, "llama-bpe"), "llama3.gguf"), RoundTrip::byte_level});
        s.push_back({"gpt2.gguf", Tokenizer(byte_level_vocabulary(llama3, "gpt2"), "gpt2.gguf"), RoundTrip::byte_level});
        return s;
    }();
    return all;
}

std::string pieces_of(const Tokenizer& tok, const Ids& ids) {
    std::string out;
    for (std::int32_t id : ids) out += tok.token_to_piece(id);
    return out;
}

void check(const Subject& s, std::string_view text, const std::uint8_t* data, std::size_t size) {
    const Tokenizer& tok = s.tok;
    const bool utf8 = weft_fuzz::valid_utf8(text);
    for (bool allow_special : {false, true}) {
        const Ids ids = weft_fuzz::checked_encode(tok, text, allow_special);
        if (!allow_special)
            for (std::int32_t id : ids) WEFT_FUZZ_CHECK(!tok.is_special(id));
        const std::string decoded = weft_fuzz::checked_decode(tok, ids, false, 1);
        const std::string decoded_skip = weft_fuzz::checked_decode(tok, ids, true, 1);
        switch (s.round_trip) {
            case RoundTrip::byte_level:
                WEFT_FUZZ_CHECK(pieces_of(tok, ids) == text);
                if (utf8) WEFT_FUZZ_CHECK(decoded == text);
                break;
            case RoundTrip::sentencepiece:
            case RoundTrip::sentencepiece_json: {
                if (allow_special || !utf8 || text.find("\xE2\x96\x81") != std::string_view::npos) break;
                if (s.round_trip == RoundTrip::sentencepiece_json && text.find("<sep>") != std::string_view::npos) break;
                WEFT_FUZZ_CHECK(decoded_skip == text);
                // With BOS: skip_special drops it and nothing else changes.
                WEFT_FUZZ_CHECK(tok.decode(tok.encode(text, true, false), true) == text);
                break;
            }
        }
    }
    // The input's bytes as ids: any sequence decodes the same in one go and streamed.
    const Ids raw = weft_fuzz::ids_from_bytes(data, size, tok.vocab_size(), 256);
    for (bool skip : {false, true}) (void)weft_fuzz::checked_decode(tok, raw, skip, 1);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)subjects();  // load the tokenizers before the first input, so its time is not counted
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const Subject& s : subjects()) {
        try {
            check(s, text, data, size);
        } catch (const weft::Error& e) {
            // encode and decode of a valid tokenizer never throw on any text or in-range id.
            std::fprintf(stderr, "fuzz_tokenize: %s threw: %s\n", s.name, e.what());
            WEFT_FUZZ_CHECK(false && "encode/decode threw weft::Error");
        }
    }
    return 0;
}
