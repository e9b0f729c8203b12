// weft/text/load.hpp — the tokenizer of a model file: from a GGUF file's tokenizer.ggml.* keys
// (SentencePiece "llama" or byte-level "gpt2"), or from a Hugging Face directory's
// tokenizer.json / tokenizer.model. Sits between io/ (gguf::File) and text/ (Tokenizer).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "weft/core/error.hpp"
#include "weft/io/gguf.hpp"
#include "weft/text/tokenizer.hpp"
#include "weft/text/vocabulary.hpp"

namespace weft::text {

// The Vocabulary stored in a GGUF file. Throws naming the key when one is missing or malformed.
inline Vocabulary vocabulary_from_gguf(const gguf::File& file) {
    if (!file.has("tokenizer.ggml.model") || !file.has("tokenizer.ggml.tokens"))
        fail("tokenizer: '", file.path(), "' has no tokenizer (tokenizer.ggml.model and tokenizer.ggml.tokens are absent)");
    Vocabulary v;
    v.model = file.get<std::string>("tokenizer.ggml.model");
    if (v.model != "llama" && v.model != "gpt2")
        fail("tokenizer: '", file.path(), "': tokenizer.ggml.model is '", v.model, "'; weft reads 'llama' (SentencePiece) and 'gpt2' (byte-level BPE)");
    v.pre = file.get_or<std::string>("tokenizer.ggml.pre", "default");
    for (std::string_view t : file.get_array<std::string_view>("tokenizer.ggml.tokens")) v.tokens.emplace_back(t);
    if (file.has("tokenizer.ggml.scores"))
        for (float s : file.get_array<float>("tokenizer.ggml.scores")) v.scores.push_back(s);
    if (file.has("tokenizer.ggml.token_type"))
        for (std::int32_t t : file.get_array<std::int32_t>("tokenizer.ggml.token_type")) v.types.push_back(t);
    if (file.has("tokenizer.ggml.merges"))
        for (std::string_view m : file.get_array<std::string_view>("tokenizer.ggml.merges")) v.merges.emplace_back(m);
    // Ids stored as -1 (or 0xFFFFFFFF) mean "none".
    auto id = [&](const char* key) -> std::int32_t {
        const auto value = file.get_optional<std::int64_t>(key);
        if (!value || *value < 0 || *value >= static_cast<std::int64_t>(v.tokens.size())) return -1;
        return static_cast<std::int32_t>(*value);
    };
    v.bos_id = id("tokenizer.ggml.bos_token_id");
    v.eos_id = id("tokenizer.ggml.eos_token_id");
    v.eot_id = id("tokenizer.ggml.eot_token_id");
    v.unk_id = id("tokenizer.ggml.unknown_token_id");
    v.pad_id = id("tokenizer.ggml.padding_token_id");
    v.add_bos = file.get_or<bool>("tokenizer.ggml.add_bos_token", v.bos_id >= 0);
    v.add_eos = file.get_or<bool>("tokenizer.ggml.add_eos_token", false);
    v.add_space_prefix = file.get_or<bool>("tokenizer.ggml.add_space_prefix", v.model == "llama");
    v.remove_extra_whitespaces = file.get_or<bool>("tokenizer.ggml.remove_extra_whitespaces", false);
    v.chat_template = file.get_or<std::string>("tokenizer.chat_template", "");
    return v;
}

// The tokenizer of the model at `path`: a .gguf file, or a directory with tokenizer.json or
// tokenizer.model (or one of those files).
inline Tokenizer load_tokenizer(const std::string& path) {
    namespace fs = std::filesystem;
    if (fs::is_regular_file(path) && !path.ends_with(".json") && !path.ends_with(".model")) {
        const gguf::File file(path, {}, FileLoad::map);  // metadata only: never worth a copy
        return Tokenizer(vocabulary_from_gguf(file), path);
    }
    return Tokenizer::from_pretrained(path);
}

}  // namespace weft::text
