// weft-custom-model: a Llama variant assembled in user code from weft's public blocks. It
// differs from weft::Llama in two ways — "sandwich" norms (each sub-block's output is normalised
// again before it is added back) and a GELU MLP instead of SwiGLU — to show that the blocks
// compose. Random weights; prefill logits and token-by-token decode logits must agree.
#include <weft/weft.hpp>

#include <cmath>
#include <cstdio>
#include <random>

namespace {

using weft::Index;
using weft::Shape;
using weft::Tensor;

constexpr Index vocab = 97, dim = 48, heads = 6, kv_heads = 2, head_dim = 8, hidden = 96, layers = 2, context = 64;

// Owns the random weights; the blocks only view them (a Tensor's memory stays put when the
// vector holding it grows).
struct Weights {
    std::mt19937 rng{7};
    std::vector<Tensor<float>> store;
    weft::Weight make(const Shape& shape, float scale, float offset = 0) {
        Tensor<float> t = Tensor<float>::uninitialized(shape);
        std::normal_distribution<float> dist(0.0f, scale);
        for (float& x : t.span()) x = offset + dist(rng);
        store.push_back(std::move(t));
        return weft::Weight::of(store.back());
    }
};

// A GELU MLP: down(gelu(up(x))).
struct GeluMlp {
    weft::nn::Linear up, down;
    Tensor<float> buf;
    void forward(weft::TensorView<const float> x, weft::TensorView<float> out) {
        const Index T = x.shape()[0];
        if (buf.numel() < T * hidden) buf = Tensor<float>::uninitialized(Shape{T, hidden});
        weft::TensorView<float> h(buf.data(), Shape{T, hidden});
        up.forward(x, h);
        h = weft::gelu(h);
        down.forward(h, out);
    }
};

struct Block {
    weft::nn::RMSNorm pre_attn, post_attn, pre_mlp, post_mlp;
    weft::nn::Attention attention;
    GeluMlp mlp;
    weft::nn::KvCache cache{context, kv_heads, head_dim};
};

struct SandwichModel {
    weft::nn::Embedding embed;
    std::vector<Block> blocks;
    weft::nn::RMSNorm final_norm;
    weft::nn::Linear head;
    weft::nn::Rope rope{weft::nn::RopeConfig{head_dim, 0, 10000.0, weft::nn::RopePairing::interleaved, {}}};
    weft::nn::RopeAngles angles;
    weft::nn::AttentionScratch scratch;
    Index n_past = 0;

    // tokens at positions n_past.. -> logits [T, vocab]
    Tensor<float> forward(std::span<const std::int32_t> tokens) {
        const Index T = static_cast<Index>(tokens.size());
        std::vector<Index> positions;
        for (Index t = 0; t < T; ++t) positions.push_back(n_past + t);
        angles.compute(rope, positions);
        Tensor<float> x(Shape{T, dim}), h(Shape{T, dim}), y(Shape{T, dim});
        embed.forward(tokens, x.view());
        for (Block& b : blocks) {
            b.pre_attn.forward(x, h.view());
            b.attention.forward(h, n_past, angles, b.cache, scratch, y.view());
            b.post_attn.forward(y, y.view());
            x = x + y;
            b.pre_mlp.forward(x, h.view());
            b.mlp.forward(h, y.view());
            b.post_mlp.forward(y, y.view());
            x = x + y;
        }
        n_past += T;
        final_norm.forward(x, h.view());
        Tensor<float> logits(Shape{T, vocab});
        head.forward(h, logits.view());
        return logits;
    }
};

SandwichModel build(Weights& w) {
    SandwichModel m;
    m.embed = weft::nn::Embedding(w.make({vocab, dim}, 1.0f));
    const float s = 1.0f / std::sqrt(float(dim));
    for (Index l = 0; l < layers; ++l) {
        Block b;
        b.pre_attn = weft::nn::RMSNorm(w.make({dim}, 0.1f, 1.0f), 1e-5f);
        b.post_attn = weft::nn::RMSNorm(w.make({dim}, 0.1f, 1.0f), 1e-5f);
        b.pre_mlp = weft::nn::RMSNorm(w.make({dim}, 0.1f, 1.0f), 1e-5f);
        b.post_mlp = weft::nn::RMSNorm(w.make({dim}, 0.1f, 1.0f), 1e-5f);
        weft::nn::AttentionConfig ac{heads, kv_heads, head_dim, true, weft::nn::RopePairing::interleaved, 0};
        b.attention = weft::nn::Attention(ac, weft::nn::Linear(w.make({heads * head_dim, dim}, s)),
                                          weft::nn::Linear(w.make({kv_heads * head_dim, dim}, s)),
                                          weft::nn::Linear(w.make({kv_heads * head_dim, dim}, s)),
                                          weft::nn::Linear(w.make({dim, heads * head_dim}, s)));
        b.mlp.up = weft::nn::Linear(w.make({hidden, dim}, s), w.make({hidden}, 0.1f));
        b.mlp.down = weft::nn::Linear(w.make({dim, hidden}, 1.0f / std::sqrt(float(hidden))));
        m.blocks.push_back(std::move(b));
    }
    m.final_norm = weft::nn::RMSNorm(w.make({dim}, 0.1f, 1.0f), 1e-5f);
    m.head = weft::nn::Linear(w.make({vocab, dim}, s));
    return m;
}

}  // namespace

int main() {
    // Two identical models (same seed): one sees the whole prompt, the other one token at a time.
    Weights w1, w2;
    SandwichModel prefill = build(w1);
    SandwichModel stepwise = build(w2);

    const std::vector<std::int32_t> tokens = {5, 17, 42, 3, 88, 13, 60, 1, 29};
    const Tensor<float> all = prefill.forward(tokens);
    double worst = 0;
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        const Tensor<float> one = stepwise.forward(std::span(&tokens[t], 1));
        for (Index v = 0; v < vocab; ++v) worst = std::max(worst, double(std::abs(one(0, v) - all(static_cast<Index>(t), v))));
    }
    const Tensor<std::int32_t> next = weft::row_argmax(all.select(0, static_cast<Index>(tokens.size()) - 1));
    std::printf("sandwich-norm GELU Llama variant: %zu tokens, next token %d, prefill vs token-by-token max |diff| %.3g\n",
                tokens.size(), next(0), worst);
    return worst <= 1e-5 ? 0 : 1;
}
