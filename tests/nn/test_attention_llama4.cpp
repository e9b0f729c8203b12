// The Llama 4 parts of nn/attention.hpp against a plain double-precision reference: interleaved
// RoPE, QK-norm after RoPE, temperature-tuned queries on NoPE layers, chunked-local or full causal
// masks, and the one-chunk KV cache (prompt at once, in parts and token by token, across chunk
// boundaries), on awkward sizes.
#include <doctest/doctest.h>

#include <cmath>

#include "../helpers.hpp"

namespace test_attention_llama4 {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using weft::TensorView;
using namespace weft_test;
namespace nn = weft::nn;

namespace {

struct Block {
    Index dim, H, KV, D;
    Tensor<float> wq, wk, wv, wo;
    nn::AttentionConfig config;
    nn::Rope rope;
    Block(Index dim_, Index H_, Index KV_, Index D_, const nn::AttentionConfig& c) : dim(dim_), H(H_), KV(KV_), D(D_), config(c) {
        wq = random_tensor(Shape{H * D, dim}, -0.4f, 0.4f);
        wk = random_tensor(Shape{KV * D, dim}, -0.4f, 0.4f);
        wv = random_tensor(Shape{KV * D, dim}, -0.4f, 0.4f);
        wo = random_tensor(Shape{dim, H * D}, -0.4f, 0.4f);
        nn::RopeConfig rc;
        rc.head_dim = static_cast<int>(D);
        rc.theta = 500000;
        rc.pairing = nn::RopePairing::interleaved;
        rc.scaling.kind = nn::RopeScaling::Kind::llama3;
        rc.scaling.factor = 16;
        rc.scaling.low_freq_factor = 1;
        rc.scaling.high_freq_factor = 1;
        rc.scaling.original_max_position_embeddings = 64;
        rope = nn::Rope(rc);
    }
    nn::Attention attention() const {
        return nn::Attention(config, nn::Linear(weft::Weight::of(wq)), nn::Linear(weft::Weight::of(wk)), nn::Linear(weft::Weight::of(wv)),
                             nn::Linear(weft::Weight::of(wo)));
    }
    // Runs x [T, dim] at positions start.. through the block.
    Tensor<float> run(const nn::Attention& a, TensorView<const float> x, Index start, nn::KvCache& cache, nn::AttentionScratch& s) const {
        const Index T = x.shape()[0];
        std::vector<Index> pos(static_cast<std::size_t>(T));
        for (Index t = 0; t < T; ++t) pos[t] = start + t;
        nn::RopeAngles angles;
        angles.compute(rope, pos);
        Tensor<float> out(Shape{T, dim});
        a.forward(x, start, angles, cache, s, out.view());
        return out;
    }

    // The block in double: q, k, v; RoPE on pairs (2i, 2i+1); QK-norm; temperature; softmax over
    // the visible keys; output projection.
    std::vector<double> reference(const Tensor<float>& x) const {
        const Index T = x.shape()[0], group = H / KV;
        auto project = [&](const Tensor<float>& w, Index rows) {
            std::vector<double> y(static_cast<std::size_t>(T * rows), 0.0);
            for (Index t = 0; t < T; ++t)
                for (Index r = 0; r < rows; ++r)
                    for (Index i = 0; i < dim; ++i) y[t * rows + r] += double(x(t, i)) * w(r, i);
            return y;
        };
        std::vector<double> q = project(wq, H * D), k = project(wk, KV * D), v = project(wv, KV * D);
        auto heads = [&](std::vector<double>& y, Index n, Index t, Index h) { return y.data() + (t * n + h) * D; };
        for (Index t = 0; t < T; ++t) {
            for (int which = 0; which < 2; ++which) {
                const Index n = which == 0 ? H : KV;
                for (Index h = 0; h < n; ++h) {
                    double* y = heads(which == 0 ? q : k, n, t, h);
                    if (config.use_rope)
                        for (Index j = 0; j < D / 2; ++j) {
                            const double angle = double(t) * rope.inv_freq()[j], c = std::cos(angle), s = std::sin(angle);
                            const double a = y[2 * j], b = y[2 * j + 1];
                            y[2 * j] = a * c - b * s;
                            y[2 * j + 1] = a * s + b * c;
                        }
                    if (config.qk_norm) {
                        double ss = 0;
                        for (Index d = 0; d < D; ++d) ss += y[d] * y[d];
                        const double inv = 1 / std::sqrt(ss / double(D) + config.qk_norm_eps);
                        for (Index d = 0; d < D; ++d) y[d] *= inv;
                    }
                    if (which == 0 && config.temperature_floor > 0) {
                        const double f = 1 + config.temperature_scale * std::log(1 + std::floor(double(t + 1) / double(config.temperature_floor)));
                        for (Index d = 0; d < D; ++d) y[d] *= f;
                    }
                }
            }
        }
        std::vector<double> out;
        for (Index t = 0; t < T; ++t) {
            std::vector<double> o(static_cast<std::size_t>(H * D), 0.0);
            const Index first = config.chunk_size > 0 ? t / config.chunk_size * config.chunk_size : 0;
            for (Index h = 0; h < H; ++h) {
                const Index g = h / group;
                std::vector<double> s;
                double m = -INFINITY, z = 0;
                for (Index j = first; j <= t; ++j) {
                    double d = 0;
                    for (Index e = 0; e < D; ++e) d += heads(q, H, t, h)[e] * heads(k, KV, j, g)[e];
                    s.push_back(d / std::sqrt(double(D)));
                    m = std::max(m, s.back());
                }
                for (double& p : s) z += (p = std::exp(p - m));
                for (Index j = first; j <= t; ++j)
                    for (Index e = 0; e < D; ++e) o[h * D + e] += s[static_cast<std::size_t>(j - first)] / z * heads(v, KV, j, g)[e];
            }
            for (Index i = 0; i < dim; ++i) {
                double y = 0;
                for (Index j = 0; j < H * D; ++j) y += o[j] * wo(i, j);
                out.push_back(y);
            }
        }
        return out;
    }
};

nn::AttentionConfig llama4_config(Index H, Index KV, Index D, bool rope, Index chunk) {
    nn::AttentionConfig c{H, KV, D, rope, nn::RopePairing::interleaved, chunk};
    if (rope) {
        c.qk_norm = true;
        c.qk_norm_eps = 1e-5f;
    } else {
        c.temperature_scale = 0.3f;
        c.temperature_floor = 4;
    }
    return c;
}

}  // namespace

TEST_CASE("the Llama 4 attention block matches the double reference: RoPE + QK-norm + chunks, NoPE + temperature + full") {
    struct Case {
        bool rope;
        Index chunk;
        bool qk_norm, temperature;
    };
    for (const Case& k : {Case{true, 5, true, false}, Case{false, 0, false, true}, Case{true, 0, true, false}, Case{true, 7, false, false},
                          Case{false, 6, false, true}}) {
        CAPTURE(k.rope);
        CAPTURE(k.chunk);
        nn::AttentionConfig c = llama4_config(6, 2, 12, k.rope, k.chunk);
        c.qk_norm = k.qk_norm;
        if (!k.temperature) c.temperature_floor = 0;
        Block b(37, 6, 2, 12, c);
        const Index T = 23;
        Tensor<float> x = random_tensor(Shape{T, 37});
        nn::KvCache cache(T, 2, 12);
        nn::AttentionScratch s;
        const Tensor<float> out = b.run(b.attention(), x, 0, cache, s);
        CHECK(max_rel_error(to_doubles(out), b.reference(x), 1.0) <= 1e-5);
    }
}

TEST_CASE("a one-chunk KV cache gives the bits of a full cache: prompt at once, in parts and token by token") {
    for (const auto& sizes : {std::array<Index, 2>{5, 23}, {8, 8}, {7, 50}, {1, 9}}) {
        const Index chunk = sizes[0], T = sizes[1];  // (not a structured binding: CAPTURE's lambda takes them)
        CAPTURE(chunk);
        CAPTURE(T);
        Block b(40, 6, 3, 10, llama4_config(6, 3, 10, true, chunk));
        const nn::Attention a = b.attention();
        Tensor<float> x = random_tensor(Shape{T, 40});
        nn::AttentionScratch s;
        nn::KvCache full(T, 3, 10);
        const Tensor<float> want = b.run(a, x, 0, full, s);
        // At once: the block feeds the one-chunk cache chunk by chunk.
        nn::KvCache ring = nn::KvCache::one_chunk(chunk, 3, 10);
        CHECK(ring.capacity() == chunk);
        CHECK(bits_of(b.run(a, x, 0, ring, s)) == bits_of(want));
        // Token by token (positions far past the cache's rows).
        nn::KvCache ring2 = nn::KvCache::one_chunk(chunk, 3, 10);
        for (Index t = 0; t < T; ++t) {
            const Tensor<float> one = b.run(a, x.slice(0, t, t + 1), t, ring2, s);
            for (Index i = 0; i < 40; ++i) REQUIRE(one(0, i) == want(t, i));
        }
        // Uneven parts that start and end inside chunks.
        nn::KvCache ring3 = nn::KvCache::one_chunk(chunk, 3, 10);
        for (Index t0 = 0, n = 3; t0 < T; t0 += n, n = n % 4 + 2) {
            const Index t1 = std::min(T, t0 + n);
            CHECK(bits_of(b.run(a, x.slice(0, t0, t1), t0, ring3, s)) == bits_of(Tensor<float>(want.slice(0, t0, t1))));
        }
    }
}

TEST_CASE("temperature tuning scales queries by 1 + attn_scale · ln(1 + floor((p + 1) / floor_scale))") {
    nn::AttentionConfig c;
    CHECK(nn::temperature_factor(c, 12345) == 1.0f);  // off
    c.temperature_scale = 0.1f;
    c.temperature_floor = 4;
    CHECK(nn::temperature_factor(c, 0) == 1.0f);
    CHECK(nn::temperature_factor(c, 2) == 1.0f);
    CHECK(nn::temperature_factor(c, 3) == doctest::Approx(1 + 0.1 * std::log(2.0)).epsilon(1e-7));
    CHECK(nn::temperature_factor(c, 7) == doctest::Approx(1 + 0.1 * std::log(3.0)).epsilon(1e-7));
    c.temperature_floor = 8192;  // Llama 4's floor_scale
    CHECK(nn::temperature_factor(c, 8190) == 1.0f);
    CHECK(nn::temperature_factor(c, 8191) == doctest::Approx(1 + 0.1 * std::log(2.0)).epsilon(1e-7));
    CHECK(nn::temperature_factor(c, 1000000) == doctest::Approx(1 + 0.1 * std::log1p(122.0)).epsilon(1e-7));
}

TEST_CASE("attend and Attention refuse a one-chunk cache used across chunks or with another chunk size") {
    nn::KvCache ring = nn::KvCache::one_chunk(8, 2, 16);
    nn::AttentionConfig c{4, 2, 16, true, nn::RopePairing::interleaved, 8};
    Tensor<float> q(Shape{3, 4, 16}), out(Shape{3, 64});
    CHECK_NOTHROW(nn::attend(q, ring, 13, c, 0.25f, out.view()));  // positions 13..15: one chunk
    CHECK_THROWS_WITH_AS(nn::attend(q, ring, 14, c, 0.25f, out.view()),
                         "attend: positions 14..16 span chunks of 8 positions, but a chunk cache holds one chunk (attend once per chunk)",
                         weft::Error);
    c.chunk_size = 4;
    CHECK_THROWS_WITH_AS(nn::attend(q, ring, 0, c, 0.25f, out.view()), "attend: a chunk cache of 8 positions for attention with chunk size 4",
                         weft::Error);
    CHECK_THROWS_WITH_AS(nn::KvCache::one_chunk(0, 2, 16), "KvCache: a chunk cache needs a positive chunk size, got 0", weft::Error);
    Block b(20, 4, 2, 16, nn::AttentionConfig{4, 2, 16, true, nn::RopePairing::interleaved, 4});
    nn::AttentionScratch s;
    CHECK_THROWS_WITH_AS(b.run(b.attention(), random_tensor(Shape{2, 20}), 0, ring, s),
                         "Attention: a chunk cache of 8 positions for chunk size 4 at position 0", weft::Error);
}

}  // namespace test_attention_llama4
