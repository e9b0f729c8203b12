// weft/nn/attention.hpp — multi-head attention with grouped KV heads (MHA, GQA, MQA), rotary
// positions (or none: NoPE), a KvCache (every position, or only the current chunk), causal or
// chunked-local masking, and Llama 4's QK-norm and attention temperature tuning. Prefill of many
// tokens and decode of one go through the same code. Scores are never stored as a [T, T]
// matrix: each query walks its keys in tiles with an online (running max) softmax.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
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

// Keys and values of one layer: [capacity, kv_heads, head_dim] each, stored as [kv_heads,
// capacity, head_dim] so that one kv head's rows are contiguous (attention reads them as one
// stream per kv head, which the hardware prefetchers follow). A plain cache holds
// positions [0, capacity), position p in row p. A chunk cache (KvCache::one_chunk(C, ...)) serves
// chunked-local attention, where no query sees keys of an earlier chunk: it holds only the chunk
// of C positions being filled, position p in row p % C, so its memory does not grow with the
// context (rows of the previous chunk are overwritten as the next one starts).
class KvCache {
public:
    KvCache() = default;
    KvCache(Index capacity, Index kv_heads, Index head_dim)
        : keys_(Tensor<float>::uninitialized(Shape{kv_heads, capacity, head_dim})),
          values_(Tensor<float>::uninitialized(Shape{kv_heads, capacity, head_dim})) {}
    static KvCache one_chunk(Index chunk_size, Index kv_heads, Index head_dim) {
        if (chunk_size <= 0) fail("KvCache: a chunk cache needs a positive chunk size, got ", chunk_size);
        KvCache c(chunk_size, kv_heads, head_dim);
        c.chunk_ = chunk_size;
        return c;
    }
    Index capacity() const { return keys_.shape()[1]; }
    // 0 for a plain cache; C for a chunk cache of C rows.
    Index chunk() const { return chunk_; }
    // The row that holds position p.
    Index row(Index p) const { return chunk_ > 0 ? p % chunk_ : p; }
    // [capacity, kv_heads, head_dim] views (strided: see above)
    TensorView<float> keys() { return keys_.view().transpose(0, 1); }
    TensorView<float> values() { return values_.view().transpose(0, 1); }
    TensorView<const float> keys() const { return keys_.view().transpose(0, 1); }
    TensorView<const float> values() const { return values_.view().transpose(0, 1); }

private:
    Tensor<float> keys_, values_;
    Index chunk_ = 0;
};

struct AttentionConfig {
    Index n_heads = 0;
    Index n_kv_heads = 0;
    Index head_dim = 0;
    bool use_rope = true;
    RopePairing rope_pairing = RopePairing::half_split;
    Index chunk_size = 0;  // > 0: key j is visible to query i iff j <= i and j / C == i / C
    // Llama 4 (Hugging Face Llama4TextL2Norm, applied after RoPE): each head of q and k becomes
    // x · rsqrt(mean(x²) + eps), no weight.
    bool qk_norm = false;
    float qk_norm_eps = 1e-6f;
    // Llama 4 attention temperature tuning (on its NoPE layers): the query at position p is
    // scaled by 1 + temperature_scale · ln(1 + ⌊(p + 1) / temperature_floor⌋), after RoPE and
    // QK-norm, before the scores. Off while temperature_floor is 0.
    float temperature_scale = 0;
    Index temperature_floor = 0;
};

// The query scale of temperature tuning at position p (1 when it is off), p the absolute position
// (Hugging Face: cache_position). Hugging Face evaluates it in f32; here ⌊(p + 1) / floor⌋ is
// integer division (exact also past 2^24, where f32 positions are not) and the rest runs in
// double, rounded once to f32 (within an ulp of Hugging Face's value).
inline float temperature_factor(const AttentionConfig& c, Index p) {
    if (c.temperature_floor <= 0) return 1.0f;
    return static_cast<float>(1.0 + static_cast<double>(c.temperature_scale) * std::log1p(static_cast<double>((p + 1) / c.temperature_floor)));
}

// Each row x [head_dim] of v [tokens, heads, head_dim] becomes x · 1/sqrt(mean(x²) + eps).
inline void qk_rms_norm(TensorView<float> v, float eps) {
    const Index T = v.shape()[0], H = v.shape()[1], D = v.shape()[2];
    for (Index t = 0; t < T; ++t)
        for (Index h = 0; h < H; ++h) {
            float* x = v.data() + t * v.strides()[0] + h * v.strides()[1];
            const float inv = 1.0f / std::sqrt(cpu::dot(x, x, D) / static_cast<float>(D) + eps);
            for (Index d = 0; d < D; ++d) x[d] *= inv;
        }
}

// Bytes a weight occupies in its stored dtype (block-quantized types included).
inline std::uint64_t stored_bytes(const Weight& w) {
    if (w.empty()) return 0;
    return static_cast<std::uint64_t>(w.shape.numel()) / block_size(w.dtype) * block_bytes(w.dtype);
}

namespace detail {

// One tile of online softmax: turns the n scores into exp(score − new maximum) in place,
// updates the running maximum, rescales the running sum and adds the tile's exps to it; returns
// the factor that rescales what was accumulated under the old maximum (0 before the first tile).
// Maximum and sum go a packet at a time (lane sums, then reduce_add), the last partial packet
// lane by lane; packets and single lanes give the same exp bits.
inline float softmax_tile(float* scores, Index n, float& running_max, float& running_sum) {
    using simd::VecF;
    const Index packets = n / VecF::width * VecF::width;
    float tile_max = -std::numeric_limits<float>::infinity();
    if (packets > 0) {
        VecF m = VecF::load(scores);
        for (Index k = VecF::width; k < packets; k += VecF::width) m = simd::max(m, VecF::load(scores + k));
        tile_max = simd::reduce_max(m);
    }
    for (Index k = packets; k < n; ++k) tile_max = std::max(tile_max, scores[k]);
    const float new_max = std::max(running_max, tile_max);
    const float correction = running_max == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(running_max - new_max);
    running_max = new_max;
    VecF sum = VecF::zero();
    for (Index k = 0; k < packets; k += VecF::width) {
        const VecF e = simd::exp(VecF::load(scores + k) - VecF::broadcast(new_max));
        e.store(scores + k);
        sum += e;
    }
    float tail = 0.0f;
    for (Index k = packets; k < n; ++k) {
        scores[k] = simd::exp(simd::Vec1F::broadcast(scores[k] - new_max)).v;
        tail += scores[k];
    }
    running_sum = running_sum * correction + (simd::reduce_add(sum) + tail);
    return correction;
}

// scores[j] = (q · key j) · scale for n keys, rows `row` floats apart. A packet of keys at a
// time: each key's products go to its own packet of partial sums (fmadds in order of d, the last
// packet of d partial), independent chains that run side by side, then reduce_add_each sums them
// all at once. scores has room for n rounded up to a packet (lanes past n repeat the last key).
inline void head_scores(const float* q, const float* keys, Index row, Index n, Index D, float scale, float* scores) {
    using simd::VecF;
    constexpr int W = VecF::width;
    for (Index j0 = 0; j0 < n; j0 += W) {
        const float* k[W];
        VecF part[W];
        for (int j = 0; j < W; ++j) {
            k[j] = keys + std::min<Index>(j0 + j, n - 1) * row;
            part[j] = VecF::zero();
        }
        Index d = 0;
        for (; d + W <= D; d += W) {
            const VecF qd = VecF::load(q + d);
            for (int j = 0; j < W; ++j) part[j] = simd::fmadd(qd, VecF::load(k[j] + d), part[j]);
        }
        if (d < D) {
            const int m = int(D - d);
            const VecF qd = VecF::load_partial(q + d, m);
            for (int j = 0; j < W; ++j) part[j] = simd::fmadd(qd, VecF::load_partial(k[j] + d, m), part[j]);
        }
        (simd::reduce_add_each(part) * VecF::broadcast(scale)).store(scores + j0);
    }
}

// For NH heads sharing n value rows (`row` floats apart): acc_i = acc_i · correction_i + Σ_j
// p[i][j] · value j, in order of j (one fmadd each), a packet of D at a time with the NH
// accumulators in registers.
template <int NH, Index P>
void add_values(float* acc, Index D, const float (*p)[P], const float* correction, const float* values, Index row, Index n) {
    using simd::VecF;
    for (Index d = 0; d < D; d += VecF::width) {
        const int m = int(std::min<Index>(VecF::width, D - d));
        VecF a[NH];
        for (int i = 0; i < NH; ++i) a[i] = VecF::load_partial(acc + i * D + d, m) * VecF::broadcast(correction[i]);
        for (Index j = 0; j < n; ++j) {
            // (a partial load only at the end of D: without AVX-512 it goes through a buffer)
            const VecF v = m == VecF::width ? VecF::load(values + j * row + d) : VecF::load_partial(values + j * row + d, m);
            for (int i = 0; i < NH; ++i) a[i] = simd::fmadd(VecF::broadcast(p[i][j]), v, a[i]);
        }
        for (int i = 0; i < NH; ++i) {
            if (m == VecF::width) a[i].store(acc + i * D + d);
            else a[i].store_partial(acc + i * D + d, m);
        }
    }
}

// One query's NH heads (q: head i at q + i·q_stride; out: head i at acc + i·D) over `count` keys
// and values from `keys` / `values` (rows `row` floats apart): online softmax in tiles of 64 keys.
template <int NH>
void attend_heads(const float* q, Index q_stride, const float* keys, const float* values, Index row, Index count, Index D,
                  float scale, float* acc) {
    constexpr Index tile = 64;
    alignas(64) float scores[NH][tile];
    float running_max[NH], running_sum[NH], correction[NH];
    std::fill_n(acc, NH * D, 0.0f);
    std::fill_n(running_max, NH, -std::numeric_limits<float>::infinity());
    std::fill_n(running_sum, NH, 0.0f);
    for (Index r0 = 0; r0 < count; r0 += tile) {
        const Index n = std::min(tile, count - r0);
        // Ask for this tile's values and the next tile's keys (and this tile's keys, the first
        // time) before the scores: at 256 keys, decoding's attention took 12 % less time than
        // with the streams left to the hardware prefetchers.
        for (Index r = r0 == 0 ? 0 : r0 + tile; r < std::min(count, r0 + 2 * tile); ++r) cpu::prefetch_floats(keys + r * row, D);
        for (Index r = r0; r < r0 + n; ++r) cpu::prefetch_floats(values + r * row, D);
        for (int i = 0; i < NH; ++i) {
            head_scores(q + i * q_stride, keys + r0 * row, row, n, D, scale, scores[i]);
            correction[i] = softmax_tile(scores[i], n, running_max[i], running_sum[i]);
        }
        add_values<NH>(acc, D, scores, correction, values + r0 * row, row, n);
    }
    for (int i = 0; i < NH; ++i) {
        const float inv = 1.0f / running_sum[i];
        for (Index d = 0; d < D; ++d) acc[i * D + d] *= inv;
    }
}

// attend_heads for 1 ≤ nh ≤ NH heads (the count as a template argument).
template <int NH = 8>
void attend_head_group(int nh, const float* q, Index q_stride, const float* keys, const float* values, Index row, Index count,
                       Index D, float scale, float* acc) {
    if constexpr (NH > 1)
        if (nh < NH) return attend_head_group<NH - 1>(nh, q, q_stride, keys, values, row, count, D, scale, acc);
    attend_heads<NH>(q, q_stride, keys, values, row, count, D, scale, acc);
}

}  // namespace detail

// out [T, heads·head_dim]: softmax(q·kᵀ·scale)·v for queries at positions start..start+T-1 over
// the keys in `cache` (which must already hold positions up to start+T-1). A chunk cache needs
// config.chunk_size equal to its chunk and all T queries inside one chunk.
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
    if (cache.chunk() == 0) {
        if (start < 0 || start + T > cache.capacity())
            fail("attend: positions ", start, "..", start + T - 1, " exceed the KV cache capacity of ", cache.capacity());
    } else {
        if (config.chunk_size != cache.chunk())
            fail("attend: a chunk cache of ", cache.chunk(), " positions for attention with chunk size ", config.chunk_size);
        if (start < 0 || (T > 0 && start / cache.chunk() != (start + T - 1) / cache.chunk()))
            fail("attend: positions ", start, "..", start + T - 1, " span chunks of ", cache.chunk(),
                 " positions, but a chunk cache holds one chunk (attend once per chunk)");
    }
    // One work item per (query, kv head): the `group` query heads that share a kv head go through
    // the keys together, up to 8 at a time, so each key and value row is read from memory once
    // and from L1 by the other heads. Each head's arithmetic is that of a head on its own (the
    // same tiles, in the same order), so the result does not depend on the batching.
    constexpr int batch = 8;
    // Floats between one kv head's rows (D in a KvCache), and between kv heads
    const Index KV = config.n_kv_heads, row = cache.keys().strides()[0], head = cache.keys().strides()[1];
    const float* all_keys = cache.keys().data();
    const float* all_values = cache.values().data();
    parallel_for(T * KV, 1, [&](Index begin, Index end) {
        for (Index item = begin; item < end; ++item) {
            const Index t = item / KV, kv = item % KV;
            const Index pos = start + t;
            const Index first = config.chunk_size > 0 ? pos / config.chunk_size * config.chunk_size : 0;
            // Key `first` sits in row first − base: base 0 in a plain cache, the chunk's start in a
            // chunk cache. keys/values: [count rows, `row` floats apart][D].
            const Index base = cache.chunk() > 0 ? first : 0, count = pos + 1 - first;
            const float* keys = all_keys + (first - base) * row + kv * head;
            const float* values = all_values + (first - base) * row + kv * head;
            for (Index h0 = kv * group; h0 < (kv + 1) * group; h0 += batch) {
                const int nh = static_cast<int>(std::min<Index>(batch, (kv + 1) * group - h0));
                detail::attend_head_group<batch>(nh, q.data() + t * q.strides()[0] + h0 * q.strides()[1], q.strides()[1], keys, values,
                                                 row, count, D, scale, out.data() + t * out.strides()[0] + h0 * D);
            }
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
    // The projections: q, k, v [heads · head_dim, dim] and o [dim, heads · head_dim].
    const Linear& wq() const { return wq_; }
    const Linear& wk() const { return wk_; }
    const Linear& wv() const { return wv_; }
    const Linear& wo() const { return wo_; }

    // x: [T, dim] at positions start..start+T-1 (angles computed for them); out: [T, dim].
    void forward(TensorView<const float> x, Index start, const RopeAngles& angles, KvCache& cache, AttentionScratch& s,
                 TensorView<float> out) const {
        const Index T = x.shape()[0], H = config_.n_heads, KV = config_.n_kv_heads, D = config_.head_dim;
        if (cache.chunk() == 0 && (start < 0 || start + T > cache.capacity()))
            fail("Attention: positions ", start, "..", start + T - 1, " exceed the KV cache capacity of ", cache.capacity());
        if (cache.chunk() != 0 && (start < 0 || cache.chunk() != config_.chunk_size))
            fail("Attention: a chunk cache of ", cache.chunk(), " positions for chunk size ", config_.chunk_size, " at position ", start);
        s.reserve(T, config_);
        auto q = s.q.view().slice(0, 0, T);
        auto k = s.k.view().slice(0, 0, T);
        auto v = s.v.view().slice(0, 0, T);
        Linear::forward_group<3>(x, {&wq_, &wk_, &wv_}, {q, k, v});
        auto q3 = q.reshape({T, H, D});  // [T, H, D]
        auto k3 = k.reshape({T, KV, D});  // [T, KV, D]
        auto v3 = v.reshape({T, KV, D});  // [T, KV, D]
        if (config_.use_rope) {
            rope_apply(q3, angles, config_.rope_pairing);
            rope_apply(k3, angles, config_.rope_pairing);
        }
        // Hugging Face Llama 4 order: RoPE, then QK-norm, then the temperature of the queries.
        if (config_.qk_norm) {
            qk_rms_norm(q3, config_.qk_norm_eps);
            qk_rms_norm(k3, config_.qk_norm_eps);
        }
        if (config_.temperature_floor > 0)
            for (Index t = 0; t < T; ++t) q3.select(0, t) = q3.select(0, t) * temperature_factor(config_, start + t);
        auto attn = s.attn.view().slice(0, 0, T);
        // A plain cache takes all T rows, then one attend. A chunk cache holds one chunk: the
        // tokens go in per chunk, each run attending before the next chunk overwrites its rows.
        for (Index t0 = 0; t0 < T;) {
            const Index p0 = start + t0;
            const Index t1 = cache.chunk() == 0 ? T : std::min(T, t0 + cache.chunk() - p0 % cache.chunk());
            cache.keys().slice(0, cache.row(p0), cache.row(p0) + t1 - t0) = k3.slice(0, t0, t1);
            cache.values().slice(0, cache.row(p0), cache.row(p0) + t1 - t0) = v3.slice(0, t0, t1);
            attend(q3.slice(0, t0, t1), cache, p0, config_, scale_, attn.slice(0, t0, t1));
            t0 = t1;
        }
        wo_.forward(attn, out);
    }

    // Bytes of the four projection matrices in their stored dtypes, read once per token (biases,
    // when there are any, add a few kB that are not counted).
    std::uint64_t weight_bytes() const {
        return stored_bytes(wq_.weight()) + stored_bytes(wk_.weight()) + stored_bytes(wv_.weight()) + stored_bytes(wo_.weight());
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
    bool empty() const { return gate_.weight().empty(); }
    std::uint64_t weight_bytes() const {
        return stored_bytes(gate_.weight()) + stored_bytes(up_.weight()) + stored_bytes(down_.weight());
    }

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

    const Linear& gate() const { return gate_; }
    const Linear& up() const { return up_; }
    const Linear& down() const { return down_; }

private:
    Linear gate_, up_, down_;
};

}  // namespace weft::nn
