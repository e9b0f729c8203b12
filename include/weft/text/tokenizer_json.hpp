// weft/text/tokenizer_json.hpp — reads a Hugging Face tokenizer.json (and, when given, the
// tokenizer_config.json beside it) into the tokenizer pipeline of text/pipeline.hpp. Supports what
// Llama 2/3/4 files use: a BPE model (byte fallback, ignore_merges, unk fusing), the Prepend /
// Replace normalizers, the Metaspace, Split (GPT-2, Llama 3, Llama 4 regexes) and ByteLevel
// pre-tokenizers, TemplateProcessing, and the matching decoders. Anything else is refused by name.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "weft/core/error.hpp"
#include "weft/text/pipeline.hpp"

namespace weft::text::detail {

using json = nlohmann::json;

inline json parse_json_text(std::string_view text, const std::string& origin) {
    if (const auto z = text.find('\0'); z != std::string_view::npos) fail(origin, ": not valid JSON: it holds a NUL byte at offset ", z);
    try {
        return json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        fail(origin, ": not valid JSON: ", e.what());
    }
}

// Reads fields of one JSON object, failing with "<origin>: <where>.<key> must be ..., got <value>".
class JsonFields {
public:
    JsonFields(const json& obj, const std::string& origin, std::string where) : obj_(obj), origin_(origin), where_(std::move(where)) {
        if (!obj.is_object()) bad_value(where_, "an object", obj);
    }
    const json* get(const char* key) const {
        const auto it = obj_.find(key);
        return it == obj_.end() || it->is_null() ? nullptr : &*it;
    }
    const json& required(const char* key) const {
        const json* v = get(key);
        if (!v) fail(origin_, ": ", where_, " has no '", key, "'");
        return *v;
    }
    bool boolean(const char* key, bool fallback) const {
        const json* v = get(key);
        if (!v) return fallback;
        if (!v->is_boolean()) bad(key, "true or false", *v);
        return v->get<bool>();
    }
    std::string string(const char* key, const std::string& fallback = {}) const {
        const json* v = get(key);
        if (!v) return fallback;
        if (!v->is_string()) bad(key, "a string", *v);
        return v->get<std::string>();
    }
    std::string required_string(const char* key) const {
        const json& v = required(key);
        if (!v.is_string()) bad(key, "a string", v);
        return v.get<std::string>();
    }
    std::int64_t integer(const char* key, std::int64_t fallback) const {
        const json* v = get(key);
        if (!v) return fallback;
        if (!v->is_number_integer()) bad(key, "an integer", *v);
        return v->get<std::int64_t>();
    }
    [[noreturn]] void bad(const char* key, const char* expected, const json& got) const {
        bad_value(where_ + "." + key, expected, got);
    }
    [[noreturn]] void bad_value(const std::string& what, const char* expected, const json& got) const {
        std::string shown = got.dump();
        if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
        fail(origin_, ": ", what, " must be ", expected, ", got ", shown);
    }
    const std::string& where() const { return where_; }

private:
    const json& obj_;
    const std::string& origin_;
    std::string where_;
};

inline const json& member_or_null(const json& obj, const char* key) {
    static const json null_value;
    const auto it = obj.find(key);
    return it == obj.end() ? null_value : *it;
}

// A component and, when it is a Sequence, the components inside it, in order.
inline void flatten(const json& node, const char* list_key, const std::string& origin, const std::string& where, std::vector<const json*>& out) {
    if (node.is_null()) return;
    const JsonFields f(node, origin, where);
    if (f.required_string("type") == "Sequence") {
        const json& items = f.required(list_key);
        if (!items.is_array()) f.bad(list_key, "a list", items);
        for (std::size_t i = 0; i < items.size(); ++i) flatten(items[i], list_key, origin, where + "." + list_key + "[" + std::to_string(i) + "]", out);
    } else {
        out.push_back(&node);
    }
}

inline std::string pattern_string(const JsonFields& f, const std::string& origin, const char* what) {
    const json& p = f.required("pattern");
    const JsonFields pf(p, origin, f.where() + ".pattern");
    if (const json* s = pf.get("String")) {
        if (!s->is_string()) f.bad("pattern", "{\"String\": ...}", p);
        return s->get<std::string>();
    }
    fail(origin, ": ", what, " with a regex pattern is not supported (weft supports plain-string patterns here)");
}

inline PreTokenizerStep::Prepend prepend_scheme(const JsonFields& f) {
    if (f.get("prepend_scheme")) {
        const std::string s = f.string("prepend_scheme");
        if (s == "always") return PreTokenizerStep::always;
        if (s == "first") return PreTokenizerStep::first;
        if (s == "never") return PreTokenizerStep::never;
        f.bad("prepend_scheme", "\"always\", \"first\" or \"never\"", *f.get("prepend_scheme"));
    }
    return f.boolean("add_prefix_space", true) ? PreTokenizerStep::always : PreTokenizerStep::never;  // older files
}

// The single-token sections of a TemplateProcessing post-processor: ids before and after $A.
inline void read_template(const json& node, const std::string& origin, const StringMap<std::int32_t>& ids, Pipeline& p) {
    const JsonFields f(node, origin, "post_processor");
    const json& single = f.required("single");
    if (!single.is_array()) f.bad("single", "a list", single);
    const json* specials = f.get("special_tokens");
    bool seen_a = false;
    for (const json& item : single) {
        const JsonFields it(item, origin, "post_processor.single[]");
        if (it.get("Sequence")) {
            const JsonFields seq(*it.get("Sequence"), origin, "post_processor.single[].Sequence");
            if (seq.required_string("id") != "A") fail(origin, ": post_processor.single uses sequence ", seq.required_string("id"), "; expected A");
            if (seen_a) fail(origin, ": post_processor.single holds $A twice");
            seen_a = true;
        } else if (it.get("SpecialToken")) {
            const std::string name = JsonFields(*it.get("SpecialToken"), origin, "post_processor.single[].SpecialToken").required_string("id");
            std::vector<std::int32_t> token_ids;
            const json* entry = specials && specials->is_object() && specials->contains(name) ? &(*specials)[name] : nullptr;
            if (entry) {
                const JsonFields e(*entry, origin, "post_processor.special_tokens." + name);
                const json& list = e.required("ids");
                if (!list.is_array()) e.bad("ids", "a list of token ids", list);
                for (const json& x : list) {
                    if (!x.is_number_unsigned() || x.get<std::uint64_t>() >= static_cast<std::uint64_t>(p.size()))
                        e.bad("ids", "token ids inside the vocabulary", list);
                    token_ids.push_back(static_cast<std::int32_t>(x.get<std::uint64_t>()));
                }
            } else if (auto found = ids.find(name); found != ids.end()) {
                token_ids.push_back(found->second);
            } else {
                fail(origin, ": post_processor names the special token '", name, "', which is not in the vocabulary");
            }
            auto& target = seen_a ? p.suffix : p.prefix;
            target.insert(target.end(), token_ids.begin(), token_ids.end());
        } else {
            f.bad("single", "a list of {\"Sequence\"} and {\"SpecialToken\"} items", single);
        }
    }
    if (!seen_a) fail(origin, ": post_processor.single has no $A");
}

// A token given in tokenizer_config.json: "text" or {"content": "text", ...}.
inline std::optional<std::string> config_token(const json& cfg, const char* key, const std::string& origin) {
    const auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
    fail(origin, ": '", key, "' must be a token string or {\"content\": ...}, got ", it->dump().substr(0, 80));
}

// Builds the pipeline; `config_text` is tokenizer_config.json's content or empty.
inline Pipeline pipeline_from_tokenizer_json(std::string_view json_text, const std::string& origin, std::string_view config_text,
                                             const std::string& config_origin) {
    const json root = parse_json_text(json_text, origin);
    const JsonFields top(root, origin, "tokenizer.json");
    Pipeline p;
    p.origin = origin;
    p.engine = Engine::ranked;

    // ----- model ---------------------------------------------------------------------------
    const JsonFields model(top.required("model"), origin, "model");
    const std::string type = model.string("type", "BPE");
    if (type != "BPE") fail(origin, ": model type is ", type, "; weft reads BPE tokenizers (Llama 2/3/4 use BPE)");
    if (const json* d = model.get("dropout"); d && !(d->is_number() && d->get<double>() == 0.0))
        model.bad("dropout", "null (weft does not sample BPE dropout)", *d);
    if (!model.string("continuing_subword_prefix").empty())
        fail(origin, ": model.continuing_subword_prefix is not supported (Llama tokenizers have none)");
    if (!model.string("end_of_word_suffix").empty()) fail(origin, ": model.end_of_word_suffix is not supported (Llama tokenizers have none)");
    const json& vocab = model.required("vocab");
    if (!vocab.is_object()) model.bad("vocab", "an object of token → id", vocab);

    // Ids: the model's vocab and the added tokens together must cover 0..N-1 exactly once, so no
    // id can reach the number of entries; checking that first keeps a stray huge id from sizing
    // `by_id` (a fuzzer's 260-million id asked for 10 GB).
    const json* added_json = top.get("added_tokens");
    if (added_json && !added_json->is_array()) top.bad("added_tokens", "a list", *added_json);
    const std::uint64_t entries = vocab.size() + (added_json ? added_json->size() : 0);
    std::vector<std::optional<std::string>> by_id;
    const auto place = [&](const std::string& text, const json& idv, const std::string& what) {
        if (!idv.is_number_unsigned() || idv.get<std::uint64_t>() >= entries)
            fail(origin, ": ", what, " '", text, "' has id ", idv.dump(), "; the file lists ", entries,
                 " tokens, so ids must run from 0 to ", entries - 1);
        const auto id = static_cast<std::size_t>(idv.get<std::uint64_t>());
        if (id >= by_id.size()) by_id.resize(id + 1);
        if (by_id[id] && *by_id[id] != text)
            fail(origin, ": id ", id, " is both '", *by_id[id], "' and '", text, "'");
        by_id[id] = text;
        return static_cast<std::int32_t>(id);
    };
    StringMap<std::int32_t> model_vocab;
    model_vocab.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) model_vocab.emplace(it.key(), place(it.key(), it.value(), "model.vocab token"));

    std::vector<AddedToken> added;
    if (const json* a = added_json) {
        for (std::size_t i = 0; i < a->size(); ++i) {
            const JsonFields f((*a)[i], origin, "added_tokens[" + std::to_string(i) + "]");
            AddedToken t;
            t.content = f.required_string("content");
            if (t.content.empty()) fail(origin, ": ", f.where(), " has empty content");
            t.id = place(t.content, f.required("id"), "added token");
            t.special = f.boolean("special", false);
            t.lstrip = f.boolean("lstrip", false);
            t.rstrip = f.boolean("rstrip", false);
            t.single_word = f.boolean("single_word", false);
            t.normalized = f.boolean("normalized", !t.special);
            added.push_back(std::move(t));
        }
    }
    for (std::size_t i = 0; i < by_id.size(); ++i)
        if (!by_id[i]) fail(origin, ": no token has id ", i, " (ids must run from 0 to ", by_id.size() - 1, " without gaps)");
    if (by_id.empty()) fail(origin, ": the vocabulary is empty");
    const std::size_t n = by_id.size();
    p.tokens.reserve(n);
    for (auto& t : by_id) p.tokens.push_back(std::move(*t));
    {
        StringMap<std::int32_t> seen;
        for (std::size_t i = 0; i < n; ++i) {
            auto [it, fresh] = seen.emplace(p.tokens[i], static_cast<std::int32_t>(i));
            if (!fresh) fail(origin, ": token '", p.tokens[i], "' has two ids, ", it->second, " and ", i);
        }
    }

    RankedBpe::Options o;
    o.byte_fallback = model.boolean("byte_fallback", false);
    o.ignore_merges = model.boolean("ignore_merges", false);
    o.fuse_unk = model.boolean("fuse_unk", false);
    if (const std::string unk = model.string("unk_token"); !unk.empty()) {
        const auto it = model_vocab.find(unk);
        if (it == model_vocab.end()) fail(origin, ": model.unk_token '", unk, "' is not in model.vocab");
        o.unk_id = it->second;
        p.unk = it->second;
    }

    std::vector<std::array<std::int32_t, 3>> merges;
    if (const json* m = model.get("merges")) {
        if (!m->is_array()) model.bad("merges", "a list", *m);
        merges.reserve(m->size());
        for (std::size_t r = 0; r < m->size(); ++r) {
            const json& item = (*m)[r];
            std::string a, b;
            if (item.is_string()) {  // "a b", split at the first space after the first character
                const std::string s = item.get<std::string>();
                const std::size_t sp = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
                if (sp == std::string::npos) fail(origin, ": model.merges[", r, "] ('", s, "') is not two tokens separated by a space");
                a = s.substr(0, sp), b = s.substr(sp + 1);
            } else if (item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string()) {
                a = item[0].get<std::string>(), b = item[1].get<std::string>();
            } else {
                model.bad("merges", "a list of \"a b\" strings or [\"a\", \"b\"] pairs", item);
            }
            const auto ia = model_vocab.find(a), ib = model_vocab.find(b), iab = model_vocab.find(a + b);
            if (ia == model_vocab.end() || ib == model_vocab.end())
                fail(origin, ": model.merges[", r, "] names '", ia == model_vocab.end() ? a : b, "', which is not in model.vocab");
            if (iab == model_vocab.end()) fail(origin, ": model.merges[", r, "] makes '", a + b, "', which is not in model.vocab");
            merges.push_back({ia->second, ib->second, iab->second});
        }
    }

    // ----- normalizer ----------------------------------------------------------------------
    std::vector<const json*> nodes;
    flatten(member_or_null(root, "normalizer"), "normalizers", origin, "normalizer", nodes);
    for (const json* node : nodes) {
        const JsonFields f(*node, origin, "normalizer");
        const std::string t = f.required_string("type");
        if (t == "Prepend") p.normalizer.push_back({NormalizerStep::prepend, {}, f.required_string("prepend")});
        else if (t == "Replace") p.normalizer.push_back({NormalizerStep::replace, pattern_string(f, origin, "a Replace normalizer"), f.required_string("content")});
        else fail(origin, ": normalizer ", t, " is not supported; weft supports Prepend and Replace (Llama 2) or none");
    }

    // ----- pre-tokenizer ---------------------------------------------------------------------
    nodes.clear();
    flatten(member_or_null(root, "pre_tokenizer"), "pretokenizers", origin, "pre_tokenizer", nodes);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const JsonFields f(*nodes[i], origin, "pre_tokenizer");
        const std::string t = f.required_string("type");
        if (p.byte_level_input) fail(origin, ": pre_tokenizer ", t, " follows ByteLevel; weft supports ByteLevel as the last step only");
        PreTokenizerStep s{};
        if (t == "Metaspace") {
            s.kind = PreTokenizerStep::metaspace;
            s.replacement = f.required_string("replacement");
            s.prepend = prepend_scheme(f);
            s.split_words = f.boolean("split", true);
        } else if (t == "Split") {
            s.kind = PreTokenizerStep::split;
            const JsonFields pf(f.required("pattern"), origin, "pre_tokenizer.pattern");
            const std::string regex = pf.string("Regex");
            const auto pattern = split_pattern_from_regex(regex);
            if (!pattern)
                fail(origin, ": the Split pre-tokenizer's regex is not one weft knows (it matches the GPT-2, Llama 3 and Llama 4 "
                     "patterns by hand): ", regex.empty() ? pf.string("String") : regex);
            s.pattern = *pattern;
            if (f.string("behavior") != "Isolated") fail(origin, ": Split behavior ", f.string("behavior"), " is not supported (only Isolated)");
            if (f.boolean("invert", false)) fail(origin, ": an inverted Split pre-tokenizer is not supported");
        } else if (t == "ByteLevel") {
            s.kind = PreTokenizerStep::byte_level;
            s.add_prefix_space = f.boolean("add_prefix_space", true);
            s.use_regex = f.boolean("use_regex", true);
            p.byte_level_input = true;
        } else {
            fail(origin, ": pre_tokenizer ", t, " is not supported; weft supports Metaspace, Split and ByteLevel");
        }
        p.pre_tokenizer.push_back(std::move(s));
    }
    o.byte_level = p.byte_level_input;

    // ----- decoder ---------------------------------------------------------------------------
    nodes.clear();
    flatten(member_or_null(root, "decoder"), "decoders", origin, "decoder", nodes);
    bool byte_level_decoder = false, byte_fallback_decoder = false;
    for (const json* node : nodes) {
        const JsonFields f(*node, origin, "decoder");
        const std::string t = f.required_string("type");
        if (t == "ByteLevel") {
            byte_level_decoder = true;
        } else if (t == "Replace") {
            p.decode_replacements.emplace_back(pattern_string(f, origin, "a Replace decoder"), f.required_string("content"));
        } else if (t == "ByteFallback") {
            byte_fallback_decoder = true;
        } else if (t == "Fuse") {
        } else if (t == "Strip") {
            if (f.string("content") != " " || f.integer("start", 0) != 1 || f.integer("stop", 0) != 0)
                fail(origin, ": decoder Strip is supported as {content: \" \", start: 1, stop: 0} only (the dummy prefix), got ", node->dump());
            p.leading_space = LeadingSpace::sentencepiece;
        } else if (t == "Metaspace") {
            const std::string r = f.required_string("replacement");
            if (prepend_scheme(f) != PreTokenizerStep::never) {
                p.leading_space = LeadingSpace::metaspace_first_token;
                p.first_token_drop = r;
            }
            p.decode_replacements.emplace_back(r, " ");
        } else {
            fail(origin, ": decoder ", t, " is not supported; weft supports ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip");
        }
    }
    if (byte_level_decoder && (byte_fallback_decoder || !p.decode_replacements.empty() || p.leading_space != LeadingSpace::keep))
        fail(origin, ": a ByteLevel decoder combined with other decoders is not supported");
    if (byte_level_decoder != p.byte_level_input)
        fail(origin, ": the decoder ", byte_level_decoder ? "is" : "is not", " ByteLevel but the pre-tokenizer ",
             p.byte_level_input ? "is" : "is not");
    p.decode_style = byte_level_decoder ? DecodeStyle::byte_level : DecodeStyle::sentencepiece;

    // ----- kinds, added tokens, engine ---------------------------------------------------------
    p.kinds.assign(n, TokenKind::normal);
    for (std::size_t i = 0; i < n; ++i)
        // As in tokenizers, <0xNN> tokens decode to bytes only through a ByteFallback decoder.
        if (byte_fallback_decoder && byte_token_value(p.tokens[i]) >= 0) p.kinds[i] = TokenKind::byte;
    for (const AddedToken& t : added) {
        p.kinds[static_cast<std::size_t>(t.id)] = t.special ? TokenKind::control : TokenKind::user_defined;
        (t.normalized && !t.special ? p.added_normalized : p.added).push_back(t);
    }
    if (p.byte_level_input) {
        for (int b = 0; b < 256; ++b) {
            std::string s;
            append_utf8(s, byte_to_char(static_cast<std::uint8_t>(b)));
            if (model_vocab.find(s) == model_vocab.end())
                fail(origin, ": the byte-level vocabulary has no token for byte ", b, " ('", s, "'); byte-level BPE needs all 256");
        }
    }
    p.bpe.emplace(std::move(model_vocab), merges, o);

    // ----- post-processor: what encode(add_bos = true) adds ------------------------------------
    nodes.clear();
    flatten(member_or_null(root, "post_processor"), "processors", origin, "post_processor", nodes);
    StringMap<std::int32_t> all_ids;
    for (std::size_t i = 0; i < n; ++i) all_ids.emplace(p.tokens[i], static_cast<std::int32_t>(i));
    for (const json* node : nodes) {
        const std::string t = JsonFields(*node, origin, "post_processor").required_string("type");
        if (t == "TemplateProcessing") read_template(*node, origin, all_ids, p);
        else if (t != "ByteLevel") fail(origin, ": post_processor ", t, " is not supported; weft supports TemplateProcessing and ByteLevel");
    }

    // ----- tokenizer_config.json ---------------------------------------------------------------
    const auto lookup = [&](const std::string& text, const char* key) -> std::int32_t {
        const auto it = all_ids.find(text);
        if (it == all_ids.end()) fail(config_origin, ": ", key, " '", text, "' is not in the vocabulary of ", origin);
        return it->second;
    };
    if (!config_text.empty()) {
        const json cfg = parse_json_text(config_text, config_origin);
        if (!cfg.is_object()) fail(config_origin, ": expected a JSON object, got a ", cfg.type_name());
        const JsonFields c(cfg, config_origin, "tokenizer_config.json");
        if (auto s = config_token(cfg, "bos_token", config_origin)) p.bos = lookup(*s, "bos_token");
        if (auto s = config_token(cfg, "eos_token", config_origin)) p.eos = lookup(*s, "eos_token");
        if (auto s = config_token(cfg, "pad_token", config_origin)) p.pad = lookup(*s, "pad_token");
        if (auto s = config_token(cfg, "unk_token", config_origin)) p.unk = lookup(*s, "unk_token");
        // LlamaTokenizer(Fast) rebuilds its template from these two flags.
        if (c.get("add_bos_token") || c.get("add_eos_token")) {
            p.prefix.clear(), p.suffix.clear();
            if (c.boolean("add_bos_token", false)) {
                if (p.bos < 0) fail(config_origin, ": add_bos_token is true but there is no bos_token");
                p.prefix.push_back(p.bos);
            }
            if (c.boolean("add_eos_token", false)) {
                if (p.eos < 0) fail(config_origin, ": add_eos_token is true but there is no eos_token");
                p.suffix.push_back(p.eos);
            }
        }
        if (const json* t = c.get("chat_template")) {
            if (t->is_string()) {
                p.chat_template = t->get<std::string>();
            } else if (t->is_array()) {  // [{"name": ..., "template": ...}]: "default", else the first
                for (const json& e : *t) {
                    const JsonFields ef(e, config_origin, "chat_template[]");
                    if (p.chat_template.empty() || ef.string("name") == "default") p.chat_template = ef.required_string("template");
                }
            } else {
                c.bad("chat_template", "a string or a list of {name, template}", *t);
            }
        }
    }
    // Without a config: the template's first token is the BOS; EOS by its usual names.
    if (p.bos < 0 && !p.prefix.empty()) p.bos = p.prefix.front();
    for (const char* name : {"</s>", "<|end_of_text|>", "<|endoftext|>"})
        if (p.eos < 0)
            if (auto it = all_ids.find(std::string_view(name)); it != all_ids.end()) p.eos = it->second;
    for (const char* name : {"<|eot_id|>", "<|eot|>", "<|im_end|>", "<end_of_turn>"})
        if (p.eot < 0)
            if (auto it = all_ids.find(std::string_view(name)); it != all_ids.end()) p.eot = it->second;
    if (p.eot < 0) p.eot = p.eos;
    p.finish();
    return p;
}

}  // namespace weft::text::detail
