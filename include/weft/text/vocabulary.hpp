// weft/text/vocabulary.hpp — text::Vocabulary, the plain description of a tokenizer that a model
// file carries (GGUF's tokenizer.ggml.* keys, or a SentencePiece tokenizer.model): token strings,
// scores, types, merges and special ids. text::Tokenizer (text/tokenizer.hpp) is built from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace weft::text {

// Token types as SentencePiece and GGUF number them (tokenizer.ggml.token_type).
enum class TokenType : std::int32_t {
    undefined = 0,     // treated as normal
    normal = 1,
    unknown = 2,       // <unk>
    control = 3,       // <s>, </s>, <|eot_id|>: recognised in text only when the caller allows it
    user_defined = 4,  // always recognised in text, never merged
    unused = 5,        // SentencePiece: may appear inside merges, never in the output
    byte = 6,          // <0x00> ... <0xFF>: SentencePiece's byte fallback
};

struct Vocabulary {
    // "llama": SentencePiece BPE (Llama 2): merges the adjacent pair whose concatenation is the
    //          highest-scoring token, leftmost first; spaces become U+2581; byte fallback.
    // "gpt2":  byte-level BPE (Llama 3/4): regex pre-tokenizer, then the listed merges by rank.
    std::string model = "llama";
    // gpt2 only: the pre-tokenizer, as GGUF's tokenizer.ggml.pre names it ("llama-bpe", "llama4",
    // "gpt2"; see split_pattern_from_name). llama3/llama4 also emit a pre-token that is itself a
    // token whole, before merging (tiktoken semantics, HF's ignore_merges).
    std::string pre = "default";
    std::vector<std::string> tokens;   // id → token text as stored ("▁the", "<0x0A>", "Ġthe", "<|eot_id|>")
    std::vector<float> scores;         // llama: one per token (required); gpt2: ignored
    std::vector<std::int32_t> types;   // one per token (TokenType values), or empty: see below
    std::vector<std::string> merges;   // gpt2: "left right" (split at the first space after the first
                                       // character), highest priority first; llama: ignored
    // Special ids; -1 means none. unk_id may be left -1 when a token has type `unknown`.
    std::int32_t bos_id = -1, eos_id = -1, eot_id = -1, unk_id = -1, pad_id = -1;
    bool add_bos = true;                    // encode(text, add_bos=true) prepends bos_id
    bool add_eos = false;                   // ... and appends eos_id
    bool add_space_prefix = true;           // llama: SentencePiece's dummy prefix "▁" before the text
    bool remove_extra_whitespaces = false;  // llama: SentencePiece's option (Llama 2 leaves it off)
    std::string chat_template;              // kept for the caller (tokenizer.chat_template)
};
// With `types` empty every token is normal, except, for "llama", tokens spelled exactly <0xNN>
// (byte tokens) and the unk_id token.

}  // namespace weft::text
