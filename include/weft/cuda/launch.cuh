// weft/cuda/launch.cuh — helpers every kernel file uses: grid sizes, deterministic warp and block
// reductions (a fixed shuffle tree, so a result never depends on timing), loop shapes passed to
// kernels. Internal to the CUDA backend.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "weft/core/shape.hpp"
#include "weft/cuda/dtype.cuh"

namespace weft::cuda::detail {

inline constexpr unsigned full_mask = 0xFFFFFFFFu;

// Blocks for a grid-stride loop over n items (capped: each thread then loops).
inline unsigned grid_for(Index n, int threads) {
    const Index blocks = (n + threads - 1) / threads;
    return static_cast<unsigned>(std::clamp<Index>(blocks, 1, Index(1) << 20));
}

// Blocks for one block per row (a grid-stride loop beyond 65536 rows).
inline unsigned row_blocks_for(Index rows) { return static_cast<unsigned>(std::clamp<Index>(rows, 1, Index(1) << 16)); }

// Threads for one block per row of `len` elements: a multiple of 32, at most 256.
inline int row_threads(Index len) { return static_cast<int>(std::clamp<Index>((len + 31) / 32 * 32, 32, 256)); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(full_mask, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {  // NaN-propagating
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(full_mask, v, o));
    return v;
}

// Sum or max over the block (blockDim.x a multiple of 32). Every thread of the block must call it;
// every thread gets the result. `scratch`: 32 floats of shared memory.
template <bool Max>
__device__ float block_reduce(float v, float* scratch) {
    v = Max ? warp_max(v) : warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < warps ? scratch[lane] : (Max ? -INFINITY : 0.0f);
        w = Max ? warp_max(w) : warp_sum(w);
        if (lane == 0) scratch[0] = w;
    }
    __syncthreads();
    return scratch[0];
}

// A loop shape (weft::detail::LoopPlan::loop) and one operand's strides along it, for kernels.
struct LoopDims {
    int rank = 1;
    Index dims[max_rank] = {};
    __host__ __device__ Index row_length() const { return dims[rank - 1]; }
};
struct LoopStrides {
    Index s[max_rank] = {};
};

inline LoopDims loop_dims(const Shape& loop) {
    LoopDims d;
    d.rank = loop.rank();
    for (int i = 0; i < loop.rank(); ++i) d.dims[i] = loop[i];
    return d;
}
inline LoopStrides loop_strides(const Strides& s) {
    LoopStrides out;
    for (int i = 0; i < s.rank(); ++i) out.s[i] = s[i];
    return out;
}

// Outer loop indices (all loop axes but the last) of row number `row`.
__device__ __forceinline__ void unravel_row(const LoopDims& loop, Index row, Index* outer) {
    for (int d = loop.rank - 2; d >= 0; --d) {
        outer[d] = row % loop.dims[d];
        row /= loop.dims[d];
    }
}
// Offset of element i of the row at `outer` for an operand with strides `st`.
__device__ __forceinline__ Index offset_of(const LoopDims& loop, const LoopStrides& st, const Index* outer, Index i) {
    Index off = i * st.s[loop.rank - 1];
    for (int d = 0; d + 1 < loop.rank; ++d) off += outer[d] * st.s[d];
    return off;
}

}  // namespace weft::cuda::detail
