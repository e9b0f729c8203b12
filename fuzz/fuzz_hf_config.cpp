// fuzz/fuzz_hf_config.cpp — libFuzzer target for weft::hf::parse_llama_config (io/hf_config.hpp),
// the reader of a model's config.json. A bad config must end in weft::Error; an accepted one must
// describe a model the Llama code can build (positive sizes, whole heads, a known RoPE scaling).
#include <weft/io/hf_config.hpp>

#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz_input_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const weft::hf::LlamaConfig c = weft::hf::parse_llama_config(text, "fuzz/config.json");
        WEFT_FUZZ_CHECK(c.model_type.empty() || c.model_type == "llama");
        WEFT_FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0);
        WEFT_FUZZ_CHECK(c.num_hidden_layers > 0 && c.num_attention_heads > 0 && c.num_key_value_heads > 0);
        WEFT_FUZZ_CHECK(c.num_attention_heads % c.num_key_value_heads == 0);
        WEFT_FUZZ_CHECK(c.head_dim > 0 && c.max_position_embeddings > 0);
        WEFT_FUZZ_CHECK(std::isfinite(c.rms_norm_eps) && c.rms_norm_eps > 0);
        WEFT_FUZZ_CHECK(std::isfinite(c.rope_theta) && c.rope_theta > 0);
        if (c.rope_scaling) {
            const weft::hf::RopeScalingConfig& s = *c.rope_scaling;
            WEFT_FUZZ_CHECK(s.type == "default" || s.type == "linear" || s.type == "llama3");
            WEFT_FUZZ_CHECK(std::isfinite(s.factor) && s.factor > 0);
            if (s.type == "llama3") WEFT_FUZZ_CHECK(s.low_freq_factor <= s.high_freq_factor);
        }
        for (long id : c.bos_token_ids) WEFT_FUZZ_CHECK(id >= 0);
        for (long id : c.eos_token_ids) WEFT_FUZZ_CHECK(id >= 0);
    } catch (const weft::Error&) {
    }
    return 0;
}
