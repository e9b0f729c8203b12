// weft/cuda/nn.cuh — nn/'s blocks as device kernels: rms_norm, RoPE (cos/sin tables from nn::RopeAngles,
// positions read from device memory), the fused q/k RoPE + KV-cache write, and GQA attention with an
// online softmax over shared-memory key tiles (flash-style), split-KV for decoding.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "weft/nn/attention.hpp"
#include "weft/nn/rope.hpp"
#include "weft/cuda/error.cuh"
#include "weft/cuda/launch.cuh"
#include "weft/cuda/memory.cuh"
#include "weft/cuda/quant.cuh"
#include "weft/cuda/tensor.cuh"
#include "weft/cuda/weight.cuh"

namespace weft::cuda {

// ---- RMSNorm -----------------------------------------------------------------------------------

namespace detail {

// y = x / sqrt(mean(x²) + eps) · w, one block per row; y may be x.
template <DType W>
__global__ void rms_norm_kernel(const float* x, Index ldx, const u8* __restrict__ w, Index n, float eps, float* y, Index ldy, Index rows) {
    __shared__ float scratch[32];
    for (Index r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = x + r * ldx;
        float ss = 0;
        for (Index i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
        const float inv_rms = 1.0f / sqrtf(block_reduce<false>(ss, scratch) / static_cast<float>(n) + eps);
        float* yr = y + r * ldy;
        for (Index i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * inv_rms * weight_value<W>(w, i);
    }
}

}  // namespace detail

// out [rows, dim] = RMSNorm(x) · weight (weight: f32, f16 or bf16 [dim]); out may be x itself.
inline void rms_norm(DeviceTensorView<const float> x, const DeviceWeight& weight, float eps, DeviceTensorView<float> out,
                     cudaStream_t stream = nullptr) {
    const Index dim = weight.cols();
    if (weight.shape().rank() != 1) fail("rms_norm: weight '", weight.name(), "' has shape ", weight.shape(), ", expected [dim]");
    if (x.rank() != 2 || x.shape()[1] != dim || (dim > 1 && x.strides()[1] != 1) || !(out.shape() == x.shape()) ||
        (dim > 1 && out.strides()[1] != 1))
        fail("rms_norm '", weight.name(), "': input ", x.shape(), " and output ", out.shape(), " must be [rows, ", dim, "] with contiguous rows");
    const Index rows = x.shape()[0];
    if (rows == 0) return;
    detail::visit_weight_dtype(weight.dtype(), "rms_norm", [&](auto tag) {
        constexpr DType W = decltype(tag)::value;
        if constexpr (W == DType::f32 || W == DType::f16 || W == DType::bf16)
            detail::rms_norm_kernel<W><<<detail::row_blocks_for(rows), detail::row_threads(dim), 0, stream>>>(
                x.data(), x.strides()[0], reinterpret_cast<const detail::u8*>(weight.data()), dim, eps, out.data(), out.strides()[0], rows);
        else
            fail("rms_norm: weight '", weight.name(), "' is ", W, "; norm weights are f32, f16 or bf16");
    });
    WEFT_CUDA_CHECK_LAUNCH("rms_norm_kernel");
}

// ---- RoPE --------------------------------------------------------------------------------------

// cos and sin of position · inv_freq for positions [0, positions) of one model: [positions, half]
// each, computed on the host in double (nn::RopeAngles) and copied to the device once.
class RopeTable {
public:
    RopeTable() = default;
    RopeTable(const nn::Rope& rope, Index positions) : positions_(positions) {
        std::vector<Index> ids(static_cast<std::size_t>(positions));
        for (Index p = 0; p < positions; ++p) ids[static_cast<std::size_t>(p)] = p;
        nn::RopeAngles angles;
        angles.compute(rope, ids);
        half_ = angles.half();
        const std::size_t bytes = static_cast<std::size_t>(positions * half_) * sizeof(float);
        cos_ = DeviceBuffer(bytes);
        sin_ = DeviceBuffer(bytes);
        if (bytes) {
            WEFT_CUDA_CHECK(cudaMemcpy(cos_.data(), angles.cos_row(0), bytes, cudaMemcpyHostToDevice));
            WEFT_CUDA_CHECK(cudaMemcpy(sin_.data(), angles.sin_row(0), bytes, cudaMemcpyHostToDevice));
        }
    }
    const float* cos() const { return cos_.as<const float>(); }
    const float* sin() const { return sin_.as<const float>(); }
    Index half() const { return half_; }
    Index positions() const { return positions_; }

private:
    DeviceBuffer cos_, sin_;
    Index half_ = 0, positions_ = 0;
};

namespace detail {

// Rotates pair j of a head (the elements nn::rope_apply pairs), position row c/s of the table.
// Products and sums rounded one by one (no FMA), as the CPU computes a0·c − b0·s.
__device__ __forceinline__ void rotated_pair(float a0, float b0, float c, float s, float& a, float& b) {
    a = __fsub_rn(__fmul_rn(a0, c), __fmul_rn(b0, s));
    b = __fadd_rn(__fmul_rn(a0, s), __fmul_rn(b0, c));
}
__device__ __forceinline__ void pair_index(Index j, Index half, bool interleaved, Index& ia, Index& ib) {
    ia = interleaved ? 2 * j : j;
    ib = interleaved ? 2 * j + 1 : j + half;
}

struct RopeArgs {
    const float* cos;
    const float* sin;
    Index half, n_positions;
    const std::int32_t* positions;  // device [tokens]
};

// (Kernels in headers are templates, so that every translation unit may instantiate them.)
template <bool Interleaved>
__global__ void rope_kernel(float* x, Index tokens, Index heads, Index st, Index sh, RopeArgs r) {
    const Index n = tokens * heads * r.half, step = Index(gridDim.x) * blockDim.x;
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const Index j = i % r.half, h = (i / r.half) % heads, t = i / (r.half * heads);
        const Index p = r.positions[t];
        float* v = x + t * st + h * sh;
        Index ia, ib;
        pair_index(j, r.half, Interleaved, ia, ib);
        if (p < 0 || p >= r.n_positions) {  // outside the table: make it visible
            v[ia] = v[ib] = NAN;
            continue;
        }
        float a, b;
        rotated_pair(v[ia], v[ib], r.cos[p * r.half + j], r.sin[p * r.half + j], a, b);
        v[ia] = a;
        v[ib] = b;
    }
}

// One decode/prefill step's q/k/v, in place: qkv [T, (H + 2·KV)·D] (q heads, then k, then v) with
// row stride ld. Rotates q in place; writes rotated k and v to the caches [capacity, KV, D] at
// positions[t]. One thread per element of each head: thread e < half rotates pair e, threads in
// [half, 2·half) have nothing to do (their element belongs to a pair), the rest copy.
template <bool Interleaved>
__global__ void qkv_rope_store_kernel(float* qkv, Index ld, Index T, Index H, Index KV, Index D, bool rope, RopeArgs r, float* cache_k,
                                      float* cache_v, Index capacity) {
    const Index heads = H + 2 * KV;
    const Index n = T * heads * D, step = Index(gridDim.x) * blockDim.x;
    const Index half = rope ? r.half : 0;
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const Index e = i % D, head = (i / D) % heads, t = i / (D * heads);
        const Index p = r.positions[t];
        if (p < 0 || p >= capacity || (rope && p >= r.n_positions)) continue;  // checked on the host
        float* v = qkv + t * ld + head * D;
        if (head >= H + KV) {  // v
            cache_v[(p * KV + (head - H - KV)) * D + e] = v[e];
            continue;
        }
        const bool is_q = head < H;
        float* dst = is_q ? v : cache_k + (p * KV + (head - H)) * D;
        if (e < half) {
            Index ia, ib;
            pair_index(e, half, Interleaved, ia, ib);
            float a, b;
            rotated_pair(v[ia], v[ib], r.cos[p * half + e], r.sin[p * half + e], a, b);
            dst[ia] = a;
            dst[ib] = b;
        } else if (e >= 2 * half && !is_q) {
            dst[e] = v[e];
        }
    }
}

}  // namespace detail

// Rotates x [tokens, heads, head_dim] (last axis contiguous) in place, token t at position
// positions[t] (device int32 [tokens]); as nn::rope_apply with angles for those positions.
inline void rope_apply(DeviceTensorView<float> x, const RopeTable& table, const std::int32_t* positions, nn::RopePairing pairing,
                       cudaStream_t stream = nullptr) {
    if (x.rank() != 3) fail("rope: expected [tokens, heads, head_dim], got shape ", x.shape());
    if (2 * table.half() > x.shape()[2]) fail("rope: rotary dimension ", 2 * table.half(), " exceeds head_dim ", x.shape()[2]);
    if (x.strides()[2] != 1) fail("rope: the last axis of shape ", x.shape(), " must be contiguous");
    const Index n = x.shape()[0] * x.shape()[1] * table.half();
    if (n == 0) return;
    const detail::RopeArgs args{table.cos(), table.sin(), table.half(), table.positions(), positions};
    if (pairing == nn::RopePairing::interleaved)
        detail::rope_kernel<true><<<detail::grid_for(n, 256), 256, 0, stream>>>(x.data(), x.shape()[0], x.shape()[1], x.strides()[0], x.strides()[1], args);
    else
        detail::rope_kernel<false><<<detail::grid_for(n, 256), 256, 0, stream>>>(x.data(), x.shape()[0], x.shape()[1], x.strides()[0], x.strides()[1], args);
    WEFT_CUDA_CHECK_LAUNCH("rope_kernel");
}

// qkv [T, (H + 2·KV)·D] (rows contiguous): RoPE on q (in place) and k, k and v stored in the caches
// ([capacity, KV, D], contiguous) at positions[t]. Positions must be inside the cache and the table.
inline void qkv_rope_store(DeviceTensorView<float> qkv, const nn::AttentionConfig& config, const RopeTable* table,
                           const std::int32_t* positions, DeviceTensorView<float> cache_k, DeviceTensorView<float> cache_v,
                           cudaStream_t stream = nullptr) {
    const Index H = config.n_heads, KV = config.n_kv_heads, D = config.head_dim;
    if (qkv.rank() != 2 || qkv.shape()[1] != (H + 2 * KV) * D || qkv.strides()[1] != 1)
        fail("qkv_rope_store: qkv of shape ", qkv.shape(), ", expected [tokens, ", (H + 2 * KV) * D, "] with contiguous rows");
    const Shape cache{cache_k.shape().rank() ? cache_k.shape()[0] : 0, KV, D};
    if (!(cache_k.shape() == cache) || !(cache_v.shape() == cache) || !cache_k.is_contiguous() || !cache_v.is_contiguous())
        fail("qkv_rope_store: caches of shapes ", cache_k.shape(), " and ", cache_v.shape(), ", expected contiguous [capacity, ", KV, ", ", D, "]");
    const bool rope = config.use_rope;
    if (rope && (!table || 2 * table->half() > D)) fail("qkv_rope_store: RoPE needs a table of at most head_dim / 2 = ", D / 2, " angles");
    const Index T = qkv.shape()[0], n = T * (H + 2 * KV) * D;
    if (n == 0) return;
    const detail::RopeArgs args = rope ? detail::RopeArgs{table->cos(), table->sin(), table->half(), table->positions(), positions}
                                       : detail::RopeArgs{nullptr, nullptr, 0, 0, positions};
    const Index ld = T > 1 ? qkv.strides()[0] : qkv.shape()[1];
    if (rope && config.rope_pairing == nn::RopePairing::interleaved)
        detail::qkv_rope_store_kernel<true><<<detail::grid_for(n, 256), 256, 0, stream>>>(qkv.data(), ld, T, H, KV, D, rope, args,
                                                                                         cache_k.data(), cache_v.data(), cache[0]);
    else
        detail::qkv_rope_store_kernel<false><<<detail::grid_for(n, 256), 256, 0, stream>>>(qkv.data(), ld, T, H, KV, D, rope, args,
                                                                                          cache_k.data(), cache_v.data(), cache[0]);
    WEFT_CUDA_CHECK_LAUNCH("qkv_rope_store_kernel");
}

// ---- attention ---------------------------------------------------------------------------------

// Split-KV decoding: keys cut into ranges of `keys_per_split`, each range reduced by its own blocks
// into partial results (max, sum, unnormalised output) that attention_combine_kernel merges.
// `partial` holds [queries · heads, splits, head_dim + 2] floats.
struct SplitKv {
    float* partial = nullptr;
    int splits = 1;
    Index keys_per_split = 0;
};

namespace detail {

inline constexpr int attn_warps = 4;    // (query, head) pairs per block, all of one KV head
inline constexpr int attn_tile = 32;    // keys per shared-memory tile: one per lane for the scores
inline constexpr int attn_max_d = 256;  // head_dim limit (8 output elements per lane)

struct AttentionArgs {
    const float* q;  // q[t·q_t + h·q_h + d]
    Index q_t, q_h;
    const float* k;  // caches [capacity, KV, D]
    const float* v;
    float* out;  // out[t·out_t + h·D + d]
    Index out_t;
    float* partial;
    const std::int32_t* positions;  // device [T]
    int T, H, KV, D, group, splits;
    Index chunk, keys_per_split;
    float scale;
};

inline std::size_t attention_smem_bytes(int D) {
    return static_cast<std::size_t>(attn_tile * (D + 1) + attn_tile * D + attn_warps * D) * sizeof(float);
}

// grid: (KV heads, ceil(T·group / attn_warps), splits). Warp w of a block handles query t, head h;
// the block walks the union of its warps' key ranges in tiles of 32 keys (K rows padded to D + 1
// floats so that lane j reading key j hits distinct banks). Lane j scores key j; the tile's
// probabilities are broadcast lane by lane to accumulate p·V, lane l owning output elements
// l, l + 32, ... Online softmax: rescale the running sum and output when the maximum grows.
template <bool Split>
__global__ void __launch_bounds__(32 * attn_warps) attention_kernel(AttentionArgs a) {
    extern __shared__ float smem[];
    __shared__ Index lo_s[attn_warps], hi_s[attn_warps];
    const int D = a.D;
    float* ks = smem;                  // [tile][D + 1]
    float* vs = ks + attn_tile * (D + 1);  // [tile][D]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float* qs = vs + attn_tile * D + warp * D;  // this warp's query
    const int kvh = blockIdx.x, split = blockIdx.z;
    const int item = blockIdx.y * attn_warps + warp;
    const bool active = item < a.T * a.group;
    const int t = active ? item / a.group : 0;
    const int h = kvh * a.group + (active ? item % a.group : 0);

    // Keys [lo, hi) this warp attends to within this split.
    Index lo = 0, hi = 0;
    if (active) {
        const Index pos = a.positions[t];
        lo = a.chunk > 0 ? pos / a.chunk * a.chunk : 0;
        hi = pos + 1;
        if constexpr (Split) {
            lo = dmax(lo, split * a.keys_per_split);
            hi = dmin(hi, (split + 1) * a.keys_per_split);
        }
        for (int d = lane; d < D; d += 32) qs[d] = a.q[t * a.q_t + h * a.q_h + d];
    }
    const bool any = active && lo < hi;
    if (lane == 0) {
        lo_s[warp] = any ? lo : INT64_MAX;
        hi_s[warp] = any ? hi : 0;
    }
    __syncthreads();
    Index block_lo = INT64_MAX, block_hi = 0;
    for (int w = 0; w < attn_warps; ++w) block_lo = dmin(block_lo, lo_s[w]), block_hi = dmax(block_hi, hi_s[w]);

    float m = -INFINITY, l = 0.0f, acc[attn_max_d / 32];
#pragma unroll
    for (int i = 0; i < attn_max_d / 32; ++i) acc[i] = 0.0f;

    for (Index j0 = block_lo; j0 < block_hi; j0 += attn_tile) {
        __syncthreads();  // the previous tile has been used by every warp
        for (int idx = threadIdx.x; idx < attn_tile * D; idx += blockDim.x) {
            const int r = idx / D, d = idx - r * D;
            const Index j = j0 + r;
            float kv = 0.0f, vv = 0.0f;  // keys past the range: zeros (their probability is 0)
            if (j < block_hi) {
                const Index off = (j * a.KV + kvh) * D + d;
                kv = a.k[off];
                vv = a.v[off];
            }
            ks[r * (D + 1) + d] = kv;
            vs[r * D + d] = vv;
        }
        __syncthreads();
        if (!any) continue;  // warp-uniform
        const Index j = j0 + lane;
        const bool valid = j >= lo && j < hi;
        float s = -INFINITY;
        if (valid) {
            float dot = 0.0f;
            const float* kr = ks + lane * (D + 1);
            for (int d = 0; d < D; ++d) dot += qs[d] * kr[d];
            s = dot * a.scale;
        }
        const float tile_max = warp_max(s);
        if (tile_max == -INFINITY) continue;  // nothing visible to this warp in this tile
        const float m_new = nan_max(m, tile_max);
        const float correction = m == -INFINITY ? 0.0f : expf(m - m_new);
        const float p = valid ? expf(s - m_new) : 0.0f;
        l = l * correction + warp_sum(p);
#pragma unroll
        for (int i = 0; i < attn_max_d / 32; ++i) acc[i] *= correction;
        for (int jj = 0; jj < attn_tile; ++jj) {
            const float pj = __shfl_sync(full_mask, p, jj);
            const float* vr = vs + jj * D;
#pragma unroll
            for (int i = 0; i < attn_max_d / 32; ++i) {
                const int d = lane + 32 * i;
                if (d < D) acc[i] += pj * vr[d];
            }
        }
        m = m_new;
    }

    if (!active) return;
    if constexpr (!Split) {
        const float inv = 1.0f / l;
        float* o = a.out + t * a.out_t + h * D;
#pragma unroll
        for (int i = 0; i < attn_max_d / 32; ++i) {
            const int d = lane + 32 * i;
            if (d < D) o[d] = acc[i] * inv;
        }
    } else {
        float* part = a.partial + (static_cast<Index>(t * a.H + h) * a.splits + split) * (D + 2);
        if (lane == 0) part[0] = m, part[1] = l;
#pragma unroll
        for (int i = 0; i < attn_max_d / 32; ++i) {
            const int d = lane + 32 * i;
            if (d < D) part[2 + d] = acc[i];
        }
    }
}

// One block per (query, head): out = Σ_s e^(m_s − M)·acc_s / Σ_s e^(m_s − M)·l_s over the splits
// that saw a key (l_s > 0).
template <int Threads>
__global__ void __launch_bounds__(Threads) attention_combine_kernel(const float* __restrict__ partial, int splits, int H, int D, float* __restrict__ out, Index out_t) {
    const int item = blockIdx.x, t = item / H, h = item % H;
    const float* part = partial + static_cast<Index>(item) * splits * (D + 2);
    float M = -INFINITY;
    for (int s = 0; s < splits; ++s)
        if (part[s * (D + 2) + 1] > 0) M = nan_max(M, part[s * (D + 2)]);
    float L = 0;
    for (int s = 0; s < splits; ++s) {
        const float ls = part[s * (D + 2) + 1];
        if (ls > 0) L += ls * expf(part[s * (D + 2)] - M);
    }
    const float inv = 1.0f / L;
    for (int d = threadIdx.x; d < D; d += Threads) {
        float o = 0;
        for (int s = 0; s < splits; ++s) {
            const float* ps = part + s * (D + 2);
            if (ps[1] > 0) o += ps[2 + d] * expf(ps[0] - M);
        }
        out[t * out_t + h * D + d] = o * inv;
    }
}

// Raises the kernel's shared-memory limit when a head needs more than the default 48 KiB (done
// once per process and size, before any graph capture: the Llama calls it at construction).
inline void prepare_attention(int D) {
    static int prepared_for = 0;
    const std::size_t bytes = attention_smem_bytes(D);
    if (bytes <= 48 * 1024 || D <= prepared_for) return;
    const int most = static_cast<int>(attention_smem_bytes(attn_max_d));
    WEFT_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, most));
    WEFT_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, most));
    prepared_for = attn_max_d;
}

}  // namespace detail

// Partial-result floats a split-KV attention needs for `queries` queries.
inline std::size_t split_kv_floats(Index queries, const nn::AttentionConfig& c, int splits) {
    return static_cast<std::size_t>(queries * c.n_heads * splits * (c.head_dim + 2));
}

// out [T, H·D] = softmax(q·kᵀ·scale)·v for q [T, H, D] (last axis contiguous), query t at position
// positions[t] (device int32), over keys [first, position] of the caches [capacity, KV, D]
// (contiguous), first = 0 or the start of the position's chunk (config.chunk_size). The caches must
// hold those keys already. With split.splits > 1, the keys are reduced in ranges then combined.
inline void attention(const nn::AttentionConfig& config, float scale, DeviceTensorView<const float> q, DeviceTensorView<const float> cache_k,
                      DeviceTensorView<const float> cache_v, const std::int32_t* positions, DeviceTensorView<float> out,
                      cudaStream_t stream = nullptr, SplitKv split = {}) {
    const Index H = config.n_heads, KV = config.n_kv_heads, D = config.head_dim;
    if (H <= 0 || KV <= 0 || H % KV != 0) fail("attention: ", H, " heads cannot be grouped over ", KV, " key/value heads");
    if (D <= 0 || D > detail::attn_max_d) fail("attention: head_dim ", D, " is outside 1..", detail::attn_max_d, " (the CUDA kernel's limit)");
    if (q.rank() != 3 || q.shape()[1] != H || q.shape()[2] != D || q.strides()[2] != 1)
        fail("attention: queries of shape ", q.shape(), " for ", H, " heads of dim ", D, " (expected [tokens, heads, head_dim], last axis contiguous)");
    const Index T = q.shape()[0];
    if (!(out.shape() == Shape{T, H * D}) || out.strides()[1] != 1)
        fail("attention: output of shape ", out.shape(), ", expected [", T, ", ", H * D, "] with contiguous rows");
    const Index capacity = cache_k.rank() == 3 ? cache_k.shape()[0] : 0;
    if (!(cache_k.shape() == Shape{capacity, KV, D}) || !(cache_v.shape() == cache_k.shape()) || !cache_k.is_contiguous() || !cache_v.is_contiguous())
        fail("attention: caches of shapes ", cache_k.shape(), " and ", cache_v.shape(), ", expected contiguous [capacity, ", KV, ", ", D, "]");
    if (split.splits > 1 && (!split.partial || split.keys_per_split <= 0))
        fail("attention: split-KV needs partial buffers and a positive key range");
    if (T == 0) return;
    const int group = static_cast<int>(H / KV);
    if ((T * group + detail::attn_warps - 1) / detail::attn_warps > 65535)
        fail("attention: ", T, " queries of ", group, " heads per KV head exceed one launch (at most ", 65535 * detail::attn_warps / group,
             " tokens per call)");
    detail::prepare_attention(static_cast<int>(D));
    const detail::AttentionArgs args{q.data(), q.strides()[0], q.strides()[1], cache_k.data(), cache_v.data(), out.data(),
                                     T > 1 ? out.strides()[0] : H * D, split.partial, positions, static_cast<int>(T), static_cast<int>(H),
                                     static_cast<int>(KV), static_cast<int>(D), group, std::max(1, split.splits), config.chunk_size,
                                     split.keys_per_split, scale};
    const dim3 grid(static_cast<unsigned>(KV), static_cast<unsigned>((T * group + detail::attn_warps - 1) / detail::attn_warps),
                    static_cast<unsigned>(std::max(1, split.splits)));
    const std::size_t smem = detail::attention_smem_bytes(static_cast<int>(D));
    if (split.splits > 1) detail::attention_kernel<true><<<grid, 32 * detail::attn_warps, smem, stream>>>(args);
    else detail::attention_kernel<false><<<grid, 32 * detail::attn_warps, smem, stream>>>(args);
    WEFT_CUDA_CHECK_LAUNCH("attention_kernel");
    if (split.splits > 1) {
        detail::attention_combine_kernel<128><<<static_cast<unsigned>(T * H), 128, 0, stream>>>(split.partial, split.splits, static_cast<int>(H),
                                                                                          static_cast<int>(D), out.data(), args.out_t);
        WEFT_CUDA_CHECK_LAUNCH("attention_combine_kernel");
    }
}

}  // namespace weft::cuda
