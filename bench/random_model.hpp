// bench/random_model.hpp — writes a Hugging Face Llama directory (config.json + model.safetensors)
// with random weights of a named shape, for benchmarks: the speed of a model depends on its shape
// and dtype, not on what its weights learned. Streams the file; needs no memory of its size.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <weft/core/dtype.hpp>

namespace bench {

struct ModelShape {
    std::string name;
    long vocab, dim, layers, heads, kv_heads, ffn;
    bool tied;
};

inline ModelShape model_shape(const std::string& name) {
    if (name == "1b") return {"1b", 128256, 2048, 16, 32, 8, 8192, true};       // Llama 3.2 1B
    if (name == "110m") return {"110m", 32000, 768, 12, 12, 12, 2048, false};  // llama2.c stories110M
    if (name == "8b") return {"8b", 128256, 4096, 32, 32, 8, 14336, false};     // Llama 3.1 8B
    throw std::runtime_error("unknown model shape '" + name + "' (1b, 110m, 8b)");
}

// Writes <dir>/config.json and <dir>/model.safetensors unless they exist; returns dir.
// dtype: "f32", "bf16" or "f16".
inline std::string ensure_random_model(const std::string& dir, const ModelShape& s, const std::string& dtype) {
    namespace fs = std::filesystem;
    if (fs::exists(fs::path(dir) / "model.safetensors") && fs::exists(fs::path(dir) / "config.json")) return dir;
    fs::create_directories(dir);
    const long head_dim = s.dim / s.heads;
    const std::string st_dtype = dtype == "f32" ? "F32" : dtype == "bf16" ? "BF16" : dtype == "f16" ? "F16" : "";
    if (st_dtype.empty()) throw std::runtime_error("unknown dtype '" + dtype + "' (f32, bf16, f16)");
    const std::size_t elem = dtype == "f32" ? 4 : 2;

    std::vector<std::pair<std::string, std::vector<long>>> tensors;
    tensors.push_back({"model.embed_tokens.weight", {s.vocab, s.dim}});
    for (long l = 0; l < s.layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        tensors.push_back({p + "input_layernorm.weight", {s.dim}});
        tensors.push_back({p + "self_attn.q_proj.weight", {s.heads * head_dim, s.dim}});
        tensors.push_back({p + "self_attn.k_proj.weight", {s.kv_heads * head_dim, s.dim}});
        tensors.push_back({p + "self_attn.v_proj.weight", {s.kv_heads * head_dim, s.dim}});
        tensors.push_back({p + "self_attn.o_proj.weight", {s.dim, s.heads * head_dim}});
        tensors.push_back({p + "post_attention_layernorm.weight", {s.dim}});
        tensors.push_back({p + "mlp.gate_proj.weight", {s.ffn, s.dim}});
        tensors.push_back({p + "mlp.up_proj.weight", {s.ffn, s.dim}});
        tensors.push_back({p + "mlp.down_proj.weight", {s.dim, s.ffn}});
    }
    tensors.push_back({"model.norm.weight", {s.dim}});
    if (!s.tied) tensors.push_back({"lm_head.weight", {s.vocab, s.dim}});

    nlohmann::ordered_json header;
    header["__metadata__"] = {{"format", "pt"}};
    std::uint64_t offset = 0;
    for (const auto& [name, shape] : tensors) {
        std::uint64_t n = 1;
        for (long d : shape) n *= static_cast<std::uint64_t>(d);
        header[name] = {{"dtype", st_dtype}, {"shape", shape}, {"data_offsets", {offset, offset + n * elem}}};
        offset += n * elem;
    }
    std::string text = header.dump();
    while (text.size() % 8) text += ' ';

    const std::string tmp = (fs::path(dir) / "model.safetensors.partial").string();
    std::ofstream out(tmp, std::ios::binary);
    const std::uint64_t header_len = text.size();
    out.write(reinterpret_cast<const char*>(&header_len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    std::uint64_t state = 0x9E3779B97F4A7C15ull;
    std::vector<char> chunk;
    for (const auto& [name, shape] : tensors) {
        std::uint64_t n = 1;
        for (long d : shape) n *= static_cast<std::uint64_t>(d);
        const bool norm = shape.size() == 1;
        // Uniform in ±√3·σ with σ = 1/√fan_in keeps activations O(1); norm weights near 1.
        const float scale = norm ? 0.1f : 1.7320508f / std::sqrt(static_cast<float>(shape.back()));
        for (std::uint64_t done = 0; done < n;) {
            const std::uint64_t count = std::min<std::uint64_t>(n - done, 1 << 20);
            chunk.resize(count * elem);
            for (std::uint64_t i = 0; i < count; ++i) {
                state ^= state << 13, state ^= state >> 7, state ^= state << 17;
                const float u = static_cast<float>(state >> 40) * (2.0f / 16777216.0f) - 1.0f;
                const float v = norm ? 1.0f + scale * u : scale * u;
                if (elem == 4) std::memcpy(&chunk[i * 4], &v, 4);
                else {
                    const std::uint16_t b = dtype == "bf16" ? weft::float_to_bf16_bits(v) : weft::float_to_f16_bits(v);
                    std::memcpy(&chunk[i * 2], &b, 2);
                }
            }
            out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
            done += count;
        }
    }
    out.close();
    if (!out) throw std::runtime_error("cannot write " + tmp);
    fs::rename(tmp, fs::path(dir) / "model.safetensors");

    nlohmann::ordered_json config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                                     {"vocab_size", s.vocab}, {"hidden_size", s.dim}, {"intermediate_size", s.ffn},
                                     {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads},
                                     {"num_key_value_heads", s.kv_heads}, {"rms_norm_eps", 1e-5}, {"rope_theta", 500000.0},
                                     {"max_position_embeddings", 4096}, {"tie_word_embeddings", s.tied},
                                     {"bos_token_id", 1}, {"eos_token_id", 2},
                                     {"torch_dtype", dtype == "f32" ? "float32" : dtype == "bf16" ? "bfloat16" : "float16"}};
    std::ofstream(fs::path(dir) / "config.json") << config.dump(2) << "\n";
    return dir;
}

}  // namespace bench
