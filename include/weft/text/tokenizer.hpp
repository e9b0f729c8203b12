// weft/text/tokenizer.hpp — text::Tokenizer, text ↔ token ids for Llama models, and
// text::StreamDecoder, which turns generated ids into text without splitting a UTF-8 character.
// A Tokenizer comes from a text::Vocabulary (what a GGUF file or a tokenizer.model holds), from a
// Hugging Face tokenizer.json, or from a model directory holding either.
//
//   auto tok = weft::text::Tokenizer::from_pretrained("Llama-3.2-1B");
//   std::vector<std::int32_t> ids = tok.encode("Hello, world");   // BOS first when the model wants it
//   std::string back = tok.decode(ids, /*skip_special=*/true);     // "Hello, world"
//
// Two families, each matching its reference encoder id for id:
//   SentencePiece BPE (Llama 2): spaces become "▁", the highest-scoring merge first, unknown
//     characters as <0xNN> byte tokens (reference: the sentencepiece library; from tokenizer.json
//     the reference is HF tokenizers, which merges by the listed rank instead of by score);
//   byte-level BPE (Llama 3/4): a regex splits the text, each piece is BPE-merged over GPT-2's byte
//     alphabet by merge rank (reference: HF tokenizers, i.e. tiktoken's results).
// Invalid UTF-8 in the text: SentencePiece reads each bad byte as U+FFFD (then byte tokens
// EF BF BD); byte-level BPE encodes the bytes as they are, so token_to_piece of the ids gives the
// input back byte for byte. decode() always returns valid UTF-8 (U+FFFD for bad bytes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/text/pipeline.hpp"
#include "weft/text/sentencepiece_model.hpp"
#include "weft/text/tokenizer_json.hpp"
#include "weft/text/vocabulary.hpp"

namespace weft::text {

enum class TokenizerKind {
    sentencepiece,  // pieces are text with "▁" for spaces, <0xNN> byte tokens (Llama 2)
    byte_level,     // pieces are bytes in GPT-2's alphabet (Llama 3/4)
};

class Tokenizer {
public:
    // Validates `vocab` (counts, ids in range, types, byte tokens, merges naming real tokens).
    explicit Tokenizer(const Vocabulary& vocab, const std::string& origin = "vocabulary");

    // `path`: a tokenizer.json, or a directory holding one; a tokenizer_config.json beside it
    // supplies bos/eos tokens, add_bos_token/add_eos_token and the chat template (or
    // chat_template.jinja, when the config has none).
    static Tokenizer from_tokenizer_json(const std::string& path);
    // The same from text in memory; `config_json` may be empty.
    static Tokenizer from_tokenizer_json_text(std::string_view tokenizer_json, std::string_view config_json = {},
                                              const std::string& origin = "tokenizer.json");
    // `path`: a SentencePiece tokenizer.model, or a directory holding one.
    static Tokenizer from_sentencepiece_model(const std::string& path);
    // A directory with tokenizer.json (preferred) or tokenizer.model, or a file of either kind.
    static Tokenizer from_pretrained(const std::string& path);

    // Token ids of `text`. add_bos: add what the tokenizer puts around a text (BOS for Llama, as
    // add_bos / the post-processor / add_bos_token say; nothing when the model adds nothing).
    // allow_special: recognise special tokens written in the text ("<|eot_id|>" → one id);
    // otherwise they are encoded as plain text. Non-special added tokens are always recognised.
    std::vector<std::int32_t> encode(std::string_view text, bool add_bos = true, bool allow_special = false) const;
    // Text of `ids`, valid UTF-8. skip_special drops special tokens (<s>, <|eot_id|>) instead of
    // writing their text. SentencePiece: the space of the first piece's dummy prefix is dropped.
    std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const;
    // The bytes token `id` stands for, exactly ("▁the" → " the", <0x0A> → "\n", "Ġthe" → " the",
    // a special token → its text); may be part of a UTF-8 character. No dummy-prefix stripping.
    std::string token_to_piece(std::int32_t id) const;
    // The token as the vocabulary stores it ("▁the", "<0x0A>", "Ġthe").
    const std::string& token_text(std::int32_t id) const;
    // The id of the token stored as `text`, if any.
    std::optional<std::int32_t> token_to_id(std::string_view text) const;

    std::int32_t vocab_size() const { return p_->size(); }
    std::int32_t bos_id() const { return p_->bos; }  // -1 if none
    std::int32_t eos_id() const { return p_->eos; }
    std::int32_t eot_id() const { return p_->eot; }  // end of turn (<|eot_id|>, <|eot|>); eos if none
    std::int32_t unk_id() const { return p_->unk; }
    std::int32_t pad_id() const { return p_->pad; }
    // What encode(text, add_bos = true) puts before and after the text's ids.
    const std::vector<std::int32_t>& prefix_ids() const { return p_->prefix; }
    const std::vector<std::int32_t>& suffix_ids() const { return p_->suffix; }
    bool adds_bos() const { return !p_->prefix.empty(); }
    // Control tokens (GGUF/SentencePiece type 3) and special added tokens.
    bool is_special(std::int32_t id) const;
    // eos, eot and the special tokens that end a turn by name (<|eom_id|>, <|end_of_text|>, ...).
    bool is_end_of_generation(std::int32_t id) const;
    TokenizerKind kind() const {
        return p_->decode_style == detail::DecodeStyle::byte_level ? TokenizerKind::byte_level : TokenizerKind::sentencepiece;
    }
    const std::string& chat_template() const { return p_->chat_template; }

private:
    friend class StreamDecoder;
    explicit Tokenizer(detail::Pipeline&& p) : p_(std::make_shared<const detail::Pipeline>(std::move(p))) {}
    std::shared_ptr<const detail::Pipeline> p_;  // immutable: copies share it
};

// Decodes ids one at a time, returning only text that is final: never half a UTF-8 character
// (SentencePiece byte tokens and byte-level pieces are held until their character is whole).
// Concatenating every push() and the final flush() gives exactly Tokenizer::decode of the ids.
class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
        : tokenizer_(tokenizer), state_(*tokenizer.p_, skip_special), skip_special_(skip_special) {}

    // Text completed by `id` (often empty while a character is still incomplete).
    std::string push(std::int32_t id) {
        std::string out;
        state_.push(id, out);
        return out;
    }
    // Whatever is pending (an unfinished character becomes U+FFFD); the decoder starts over.
    std::string flush() {
        std::string out;
        state_.flush(out);
        state_ = detail::DecodeState(*tokenizer_.p_, skip_special_);
        return out;
    }

private:
    Tokenizer tokenizer_;  // shares the tokenizer's tables, so the decoder may outlive the original
    detail::DecodeState state_;
    bool skip_special_;
};

// =============================================================================================
// Implementation
// =============================================================================================

namespace detail {

inline std::string read_text_file(const std::filesystem::path& p, std::uintmax_t limit) {
    std::error_code ec;
    const std::string where = p.string();
    if (!std::filesystem::is_regular_file(p, ec)) fail("tokenizer: ", where, " does not exist or is not a regular file");
    const auto size = std::filesystem::file_size(p, ec);
    if (ec) fail("tokenizer: cannot read ", where, ": ", ec.message());
    if (size > limit) fail("tokenizer: ", where, " has ", size, " bytes, more than the ", limit, " a tokenizer file may have");
    std::ifstream in(p, std::ios::binary);
    std::string text(static_cast<std::size_t>(size), '\0');
    if (!in || !in.read(text.data(), static_cast<std::streamsize>(size))) fail("tokenizer: cannot read ", where);
    return text;
}

inline constexpr std::uintmax_t max_tokenizer_file_bytes = 512u << 20;

// Newer transformers save the chat template as chat_template.jinja beside tokenizer_config.json.
inline void read_chat_template_file(const std::filesystem::path& dir, std::string& chat_template) {
    std::error_code ec;
    const auto file = dir / "chat_template.jinja";
    if (chat_template.empty() && std::filesystem::is_regular_file(file, ec)) chat_template = read_text_file(file, 16u << 20);
}

}  // namespace detail

inline Tokenizer::Tokenizer(const Vocabulary& vocab, const std::string& origin)
    : p_(std::make_shared<const detail::Pipeline>(detail::pipeline_from_vocabulary(vocab, origin))) {}

inline Tokenizer Tokenizer::from_tokenizer_json_text(std::string_view tokenizer_json, std::string_view config_json, const std::string& origin) {
    return Tokenizer(detail::pipeline_from_tokenizer_json(tokenizer_json, origin, config_json, "tokenizer_config.json"));
}

inline Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p(path);
    if (fs::is_directory(p, ec)) p /= "tokenizer.json";
    const std::string text = detail::read_text_file(p, detail::max_tokenizer_file_bytes);
    const fs::path cfg = p.parent_path() / "tokenizer_config.json";
    std::string config;
    if (fs::is_regular_file(cfg, ec)) config = detail::read_text_file(cfg, 64u << 20);
    detail::Pipeline pipeline = detail::pipeline_from_tokenizer_json(text, p.string(), config, cfg.string());
    detail::read_chat_template_file(p.parent_path(), pipeline.chat_template);
    return Tokenizer(std::move(pipeline));
}

inline Tokenizer Tokenizer::from_sentencepiece_model(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p(path);
    if (fs::is_directory(p, ec)) p /= "tokenizer.model";
    Vocabulary v = read_sentencepiece_model(p.string());
    // A tokenizer_config.json beside it may turn BOS off and carries the chat template.
    const fs::path cfg = p.parent_path() / "tokenizer_config.json";
    if (fs::is_regular_file(cfg, ec)) {
        const detail::json c = detail::parse_json_text(detail::read_text_file(cfg, 64u << 20), cfg.string());
        if (c.is_object()) {
            const detail::JsonFields f(c, cfg.string(), "tokenizer_config.json");
            v.add_bos = f.boolean("add_bos_token", v.add_bos);
            v.add_eos = f.boolean("add_eos_token", v.add_eos);
            if (const detail::json* t = f.get("chat_template"); t && t->is_string()) v.chat_template = t->get<std::string>();
        }
    }
    detail::read_chat_template_file(p.parent_path(), v.chat_template);
    return Tokenizer(v, p.string());
}

inline Tokenizer Tokenizer::from_pretrained(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path p(path);
    if (fs::is_directory(p, ec)) {
        if (fs::is_regular_file(p / "tokenizer.json", ec)) return from_tokenizer_json(path);
        if (fs::is_regular_file(p / "tokenizer.model", ec)) return from_sentencepiece_model(path);
        fail("tokenizer: ", path, " holds neither tokenizer.json nor tokenizer.model");
    }
    if (!fs::is_regular_file(p, ec)) fail("tokenizer: ", path, " does not exist");
    // A JSON file starts with '{' (after any whitespace); a tokenizer.model is protobuf.
    std::ifstream in(p, std::ios::binary);
    char ch = 0;
    while (in.get(ch) && (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')) {}
    return ch == '{' ? from_tokenizer_json(path) : from_sentencepiece_model(path);
}

inline std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool allow_special) const {
    std::vector<std::int32_t> out;
    out.reserve(text.size() / 3 + 4);
    p_->encode(text, add_bos, allow_special, out);
    return out;
}

inline std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special) const {
    detail::DecodeState state(*p_, skip_special);
    std::string out;
    for (std::int32_t id : ids) state.push(id, out);
    state.flush(out);
    return out;
}

inline std::string Tokenizer::token_to_piece(std::int32_t id) const {
    p_->check_id(id, "token_to_piece");
    return p_->pieces[static_cast<std::size_t>(id)];
}

inline const std::string& Tokenizer::token_text(std::int32_t id) const {
    p_->check_id(id, "token_text");
    return p_->tokens[static_cast<std::size_t>(id)];
}

inline std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view text) const {
    if (auto it = p_->ids.find(text); it != p_->ids.end()) return it->second;
    return std::nullopt;
}

inline bool Tokenizer::is_special(std::int32_t id) const {
    p_->check_id(id, "is_special");
    return p_->kinds[static_cast<std::size_t>(id)] == detail::TokenKind::control;
}

inline bool Tokenizer::is_end_of_generation(std::int32_t id) const {
    for (std::int32_t e : p_->end_of_generation)
        if (e == id) return true;
    return false;
}

}  // namespace weft::text
