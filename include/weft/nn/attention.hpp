// weft/nn/attention.hpp — multi-head attention with grouped KV heads (MHA, GQA, MQA), rotary
// positions, a fixed-capacity KvCache, and causal or chunked-local masking. Prefill of many
// tokens and decode of one go through the same code. Scores are never stored as a [T, T]
// matrix: each query walks its keys in tiles with an online (running max) softmax.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

#include "weft/core/tensor.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/simd.hpp"
#include "weft/cpu/vector.hpp"
#include "weft/cpu/vmath.hpp"
#include "weft/nn/linear.hpp"
#include "weft/nn/rope.hpp"

namespace weft::nn {

// Keys and values of one layer for positions [0, capacity): [capacity, kv_heads, head_dim] each.
class KvCache {
public:
    KvCache() = default;
    KvCache(Index capacity, Index kv_heads, Index head_dim)
        : keys_(Tensor<float>::uninitialized(Shape{capacity, kv_heads, head_dim})),
          values_(Tensor<float>::uninitialized(Shape{capacity, kv_heads, head_dim})) {}
    Index capacity() const { return keys_.shape()[0]; }
    TensorView<float> keys() { return keys_.view(); }
    TensorView<float> values() { return values_.view(); }
    TensorView<const float> keys() const { return keys_.view(); }
    TensorView<const float> values() const { return values_.view(); }

private:
    Tensor<float> keys_, values_;
};

struct AttentionConfig {
    Index n_heads = 0;
    Index n_kv_heads = 0;
    Index head_dim = 0;
    bool use_rope = true;
    RopePairing rope_pairing = RopePairing::half_split;
    Index chunk_size = 0;  // > 0: key j is visible to query i iff j <= i and j / C == i / C
};


// out [T, heads·head_dim]: softmax(q·kᵀ·scale)·v for queries at positions start..start+T-1 over
// the keys in `cache` (which must already hold positions up to start+T-1).
//   q: [T, heads, head_dim]   cache: [capacity, kv_heads, head_dim]
inline void attend(TensorView<const float> q, const KvCache& cache, Index start, const AttentionConfig& config, float scale,
                   TensorView<float> out) {
    const Index H = config.n_heads, D = config.head_dim;
    if (q.rank() != 3 || q.shape()[1] != H || q.shape()[2] != D || q.strides()[2] != 1)
        fail("attend: queries of shape ", q.shape(), " for ", H, " heads of dim ", D, " (expected [tokens, heads, head_dim], last axis contiguous)");
    const Index T = q.shape()[0], group = H / config.n_kv_heads;
    if (!(out.shape() == Shape{T, H * D}) || out.strides()[1] != 1)
        fail("attend: output of shape ", out.shape(), ", expected [", T, ", ", H * D, "] with contiguous rows");
    if (!(cache.keys().shape() == Shape{cache.capacity(), config.n_kv_heads, D}))
        fail("attend: KV cache of shape ", cache.keys().shape(), " for ", config.n_kv_heads, " kv heads of dim ", D);
    if (start < 0 || start + T > cache.capacity())
        fail("attend: positions ", start, "..", start + T - 1, " exceed the KV cache capacity of ", cache.capacity());
    constexpr Index tile = 64;
    parallel_for(T * H, 1, [&](Index begin, Index end) {
        float scores[tile];
        for (Index th = begin; th < end; ++th) {
            const Index t = th / H, h = th % H, kv = h / group;
            const Index pos = start + t;
            const Index first = config.chunk_size > 0 ? pos / config.chunk_size * config.chunk_size : 0;
            const float* qv = q.data() + t * q.strides()[0] + h * q.strides()[1];
            float* acc = out.data() + t * out.strides()[0] + h * D;
            std::fill_n(acc, D, 0.0f);
            float running_max = -std::numeric_limits<float>::infinity(), running_sum = 0;
            for (Index j0 = first; j0 <= pos; j0 += tile) {
                const Index n = std::min(tile, pos + 1 - j0);
                float tile_max = -std::numeric_limits<float>::infinity();
                for (Index j = 0; j < n; ++j) {
                    const float* kj = cache.keys().data() + ((j0 + j) * config.n_kv_heads + kv) * D;
                    scores[j] = cpu::dot(qv, kj, D) * scale;
                    tile_max = std::max(tile_max, scores[j]);
                }
                const float new_max = std::max(running_max, tile_max);
                // Rescale what was accumulated under the old maximum.
                const float correction = running_max == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(running_max - new_max);
                running_sum *= correction;
                // Probabilities of the tile, exp vectorised (packets and single lanes give the
                // same bits, so where the tile ends does not change any value).
                Index i = 0;
                for (; i + simd::VecF::width <= n; i += simd::VecF::width)
                    simd::exp(simd::VecF::load(scores + i) - simd::VecF::broadcast(new_max)).store(scores + i);
                for (; i < n; ++i) simd::exp(simd::Vec1F::broadcast(scores[i] - new_max)).store(scores + i);
                float factor = correction;
                for (Index j = 0; j < n; ++j) {
                    const float p = scores[j];
                    running_sum += p;
                    const float* vj = cache.values().data() + ((j0 + j) * config.n_kv_heads + kv) * D;
                    cpu::scale_add(acc, factor, p, vj, D);
                    factor = 1.0f;
                }
                running_max = new_max;
            }
            const float inv = 1.0f / running_sum;
            for (Index d = 0; d < D; ++d) acc[d] *= inv;
        }
    });
}

// Buffers an Attention forward pass uses, sized for up to `tokens` rows (reused across calls).
struct AttentionScratch {
    Tensor<float> q, k, v, attn;
    void reserve(Index tokens, const AttentionConfig& c) {
        if (q.numel() >= tokens * c.n_heads * c.head_dim) return;
        q = Tensor<float>::uninitialized(Shape{tokens, c.n_heads * c.head_dim});
        k = Tensor<float>::uninitialized(Shape{tokens, c.n_kv_heads * c.head_dim});
        v = Tensor<float>::uninitialized(Shape{tokens, c.n_kv_heads * c.head_dim});
        attn = Tensor<float>::uninitialized(Shape{tokens, c.n_heads * c.head_dim});
    }
};

// The attention block: projections, rotary positions, cache update, attend, output projection.
class Attention {
public:
    Attention() = default;
    Attention(const AttentionConfig& config, Linear wq, Linear wk, Linear wv, Linear wo)
        : config_(config), wq_(std::move(wq)), wk_(std::move(wk)), wv_(std::move(wv)), wo_(std::move(wo)) {
        const Index H = config.n_heads, KV = config.n_kv_heads, D = config.head_dim;
        if (H <= 0 || KV <= 0 || D <= 0 || H % KV != 0)
            fail("Attention: ", H, " heads cannot be grouped over ", KV, " key/value heads (head_dim ", D, ")");
        if (wq_.out_features() != H * D || wk_.out_features() != KV * D || wv_.out_features() != KV * D || wo_.in_features() != H * D)
            fail("Attention: projections [", wq_.out_features(), ", ", wk_.out_features(), ", ", wv_.out_features(), "] -> ",
                 wo_.in_features(), " do not match ", H, " heads and ", KV, " kv heads of dim ", D);
        scale_ = 1.0f / std::sqrt(static_cast<float>(D));
    }
    const AttentionConfig& config() const { return config_; }
    void set_scale(float scale) { scale_ = scale; }

    // x: [T, dim] at positions start..start+T-1 (angles computed for them); out: [T, dim].
    void forward(TensorView<const float> x, Index start, const RopeAngles& angles, KvCache& cache, AttentionScratch& s,
                 TensorView<float> out) const {
        const Index T = x.shape()[0], H = config_.n_heads, KV = config_.n_kv_heads, D = config_.head_dim;
        if (start < 0 || start + T > cache.capacity())
            fail("Attention: positions ", start, "..", start + T - 1, " exceed the KV cache capacity of ", cache.capacity());
        s.reserve(T, config_);
        auto q = s.q.view().slice(0, 0, T);
        auto k = s.k.view().slice(0, 0, T);
        auto v = s.v.view().slice(0, 0, T);
        Linear::forward_group<3>(x, {&wq_, &wk_, &wv_}, {q, k, v});
        auto q3 = q.reshape({T, H, D});
        auto k3 = k.reshape({T, KV, D});
        if (config_.use_rope) {
            rope_apply(q3, angles, config_.rope_pairing);
            rope_apply(k3, angles, config_.rope_pairing);
        }
        cache.keys().slice(0, start, start + T) = k3;
        cache.values().slice(0, start, start + T) = v.reshape({T, KV, D});
        auto attn = s.attn.view().slice(0, 0, T);
        attend(q3, cache, start, config_, scale_, attn);
        wo_.forward(attn, out);
    }

private:
    AttentionConfig config_;
    Linear wq_, wk_, wv_, wo_;
    float scale_ = 1.0f;
};

// The SwiGLU feed-forward block: down(silu(gate(x)) · up(x)).
class SwiGLU {
public:
    SwiGLU() = default;
    SwiGLU(Linear gate, Linear up, Linear down) : gate_(std::move(gate)), up_(std::move(up)), down_(std::move(down)) {
        if (gate_.out_features() != up_.out_features() || down_.in_features() != gate_.out_features() ||
            gate_.in_features() != up_.in_features() || down_.out_features() != gate_.in_features())
            fail("SwiGLU: gate ", gate_.weight().shape, ", up ", up_.weight().shape, " and down ", down_.weight().shape, " do not fit together");
    }
    Index hidden() const { return gate_.out_features(); }

    // x: [T, dim] -> out: [T, dim]; gate_buf and up_buf: at least [T, hidden].
    void forward(TensorView<const float> x, Tensor<float>& gate_buf, Tensor<float>& up_buf, TensorView<float> out) const {
        const Index T = x.shape()[0];
        if (gate_buf.numel() < T * hidden()) gate_buf = Tensor<float>::uninitialized(Shape{T, hidden()});
        if (up_buf.numel() < T * hidden()) up_buf = Tensor<float>::uninitialized(Shape{T, hidden()});
        auto g = TensorView<float>(gate_buf.data(), Shape{T, hidden()});
        auto u = TensorView<float>(up_buf.data(), Shape{T, hidden()});
        Linear::forward_group<2>(x, {&gate_, &up_}, {g, u});
        g = silu(g) * u;  // one fused pass, in place
        down_.forward(g, out);
    }

private:
    Linear gate_, up_, down_;
};

}  // namespace weft::nn
