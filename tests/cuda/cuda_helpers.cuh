// tests/cuda/cuda_helpers.cuh — what the CUDA tests share: random GGUF blocks, float64 references,
// error measures (printed per dtype), golden-model paths, and a CPU weft::Llama built from the same
// host weights as a device one.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <weft/cuda.cuh>

#include "../helpers.hpp"
#include "runner.cuh"

namespace weft_cuda_test {

using weft::Index;
using weft::Shape;
using weft::Tensor;
namespace wc = weft::cuda;

// Bytes of `rows` rows of `cols` values stored as `t`: random, with every f16 scale field set to a
// finite value in [lo, hi) so that the blocks decode to sane numbers.
inline std::vector<std::byte> random_weight_bytes(weft::DType t, Index rows, Index cols, float lo = 0.001f, float hi = 0.01f) {
    const std::size_t bytes = wc::stored_bytes(t, Shape{rows, cols}, "random");
    std::vector<std::byte> out(bytes);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(lo, hi);
    if (!weft::is_quantized(t)) {
        std::uniform_real_distribution<float> value(-1.0f, 1.0f);
        for (Index i = 0; i < rows * cols; ++i) {
            const float v = value(weft_test::rng());
            if (t == weft::DType::f32) std::memcpy(out.data() + 4 * i, &v, 4);
            else {
                const std::uint16_t b = t == weft::DType::f16 ? weft::float_to_f16_bits(v) : weft::float_to_bf16_bits(v);
                std::memcpy(out.data() + 2 * i, &b, 2);
            }
        }
        return out;
    }
    for (auto& b : out) b = static_cast<std::byte>(byte(weft_test::rng()));
    const std::size_t block = weft::block_bytes(t);
    auto put_half = [&](std::size_t at) {
        const std::uint16_t h = weft::float_to_f16_bits(scale(weft_test::rng()));
        std::memcpy(out.data() + at, &h, 2);
    };
    for (std::size_t b0 = 0; b0 < bytes; b0 += block) {
        switch (t) {
            case weft::DType::q8_0: case weft::DType::q4_0: put_half(b0); break;
            case weft::DType::q4_k: case weft::DType::q5_k: put_half(b0), put_half(b0 + 2); break;
            case weft::DType::q6_k: put_half(b0 + 208); break;
            default: break;
        }
    }
    return out;
}

// The values of a host weight as f32 [rows, cols] (quant::dequantize_row, the CPU reference).
inline Tensor<float> dequantized(const weft::Weight& w) {
    const Index rows = w.shape.rank() == 2 ? w.shape[0] : 1, cols = w.shape[w.shape.rank() - 1];
    Tensor<float> out(Shape{rows, cols});
    const std::size_t row_bytes = wc::stored_bytes(w.dtype, Shape{1, cols}, w.name);
    for (Index r = 0; r < rows; ++r) weft::quant::dequantize_row(w.dtype, w.data + r * row_bytes, out.data() + r * cols, cols);
    if (w.shape.rank() == 1) return Tensor<float>(out.reshape({cols}));
    return out;
}

// Max over elements of |got − want| / scale_i, with scale_i = max(|want_i|, floor).
inline double max_rel(const Tensor<float>& got, const Tensor<double>& want, double floor) {
    double worst = 0;
    for (Index i = 0; i < want.numel(); ++i) {
        const double g = got.data()[i], w = want.data()[i];
        if (std::isnan(g) != std::isnan(w)) return INFINITY;
        if (std::isnan(g)) continue;
        worst = std::max(worst, std::abs(g - w) / std::max(std::abs(w), floor));
    }
    return worst;
}

// max over rows of ‖got_r − want_r‖₂ / ‖want_r‖₂ for [rows, n] logits.
template <class A, class B>
double max_row_rel_l2(const A& got, const B& want) {
    double worst = 0;
    for (Index t = 0; t < want.shape()[0]; ++t) {
        double num = 0, den = 0;
        for (Index v = 0; v < want.shape()[1]; ++v) {
            const double g = static_cast<double>(got(t, v)), w = static_cast<double>(want(t, v));
            num += (g - w) * (g - w);
            den += w * w;
        }
        worst = std::max(worst, std::sqrt(num / den));
    }
    return worst;
}

inline std::string golden_dir(const std::string& variant) { return std::string(WEFT_SOURCE_DIR) + "/tests/data/llama/" + variant; }

inline std::vector<std::int32_t> read_ids(const std::string& path) {
    weft::MappedFile f(path);
    std::vector<std::int32_t> ids;
    std::string token;
    for (std::size_t i = 0; i <= f.size(); ++i) {
        const char ch = i < f.size() ? static_cast<char>(f.data()[i]) : ',';
        if (ch >= '0' && ch <= '9') token += ch;
        else if (!token.empty()) ids.push_back(std::stoi(token)), token.clear();
    }
    return ids;
}

// A CPU weft::Llama over the same host weights (which must be f32/f16/bf16; `keep` holds copies).
inline weft::Llama cpu_llama(const wc::LlamaWeights& w, Index context) {
    const weft::LlamaConfig& c = w.config;
    if (!w.rope_factors.empty()) weft::fail("cpu_llama: weights with rope_factors (GGUF rope_freqs): load the file with weft::Llama");
    namespace nn = weft::nn;
    std::vector<weft::LlamaLayer> layers;
    const nn::AttentionConfig ac{c.n_heads, c.n_kv_heads, c.head_dim, true, c.rope.pairing, 0};
    for (const wc::LlamaLayerWeights& L : w.layers) {
        weft::LlamaLayer layer;
        layer.attn_norm = nn::RMSNorm(L.attn_norm, c.norm_eps);
        layer.attention = nn::Attention(ac, nn::Linear(L.wq, L.bq), nn::Linear(L.wk, L.bk), nn::Linear(L.wv, L.bv), nn::Linear(L.wo, L.bo));
        layer.ffn_norm = nn::RMSNorm(L.ffn_norm, c.norm_eps);
        layer.mlp = nn::SwiGLU(nn::Linear(L.gate, L.bgate), nn::Linear(L.up, L.bup), nn::Linear(L.down, L.bdown));
        layers.push_back(std::move(layer));
    }
    return weft::Llama(c, nn::Embedding(w.embedding), std::move(layers), nn::RMSNorm(w.final_norm, c.norm_eps), nn::Linear(w.lm_head), context,
                       w.keep_alive);
}

// A copy of `w` with every weight dequantized to f32 (for the CPU, which reads float weights only).
inline wc::LlamaWeights dequantized_copy(const wc::LlamaWeights& w) {
    auto store = std::make_shared<std::vector<Tensor<float>>>();
    store->reserve(4 + 16 * w.layers.size());
    auto f32 = [&](const weft::Weight& x) {
        if (x.empty()) return weft::Weight{};
        store->push_back(dequantized(x));
        return weft::Weight(weft::DType::f32, store->back().data(), x.shape, x.name);
    };
    wc::LlamaWeights out;
    out.config = w.config;
    out.rope_factors = w.rope_factors;
    out.embedding = f32(w.embedding);
    out.final_norm = f32(w.final_norm);
    out.lm_head = w.lm_head.data == w.embedding.data ? out.embedding : f32(w.lm_head);
    for (const wc::LlamaLayerWeights& L : w.layers) {
        out.layers.push_back({f32(L.attn_norm), f32(L.wq), f32(L.wk), f32(L.wv), f32(L.wo), f32(L.bq), f32(L.bk), f32(L.bv), f32(L.bo),
                              f32(L.ffn_norm), f32(L.gate), f32(L.up), f32(L.down), f32(L.bgate), f32(L.bup), f32(L.bdown)});
    }
    out.keep_alive = std::shared_ptr<const void>(store, store.get());
    return out;
}

}  // namespace weft_cuda_test
