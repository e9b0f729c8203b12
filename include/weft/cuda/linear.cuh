// weft/cuda/linear.cuh — y = x·Wᵀ (+ bias, or +=) with W [out, in] in its stored dtype: up to 8 rows
// our GEMV (warp per weight row, decoded in registers, f32 accumulation), more rows cuBLAS (16-bit
// operands; quantized weights dequantized to bf16 panels). Also dequantize() and embedding().
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <span>

#include "weft/core/dtype.hpp"
#include "weft/cuda/context.cuh"
#include "weft/cuda/error.cuh"
#include "weft/cuda/expr.cuh"
#include "weft/cuda/launch.cuh"
#include "weft/cuda/quant.cuh"
#include "weft/cuda/tensor.cuh"
#include "weft/cuda/weight.cuh"

namespace weft::cuda {

// Batches up to this many rows go through the GEMV (each weight read once for all of them).
inline constexpr Index gemv_max_rows = 8;

namespace detail {

inline constexpr int gemv_warps = 4;  // weight rows per block
inline constexpr int gemv_depth = 4;  // units each lane loads before using them

// y[r, n] (+)= Σ_k x[r, k]·W[n, k] (+ bias[n]) for r < m; one warp per weight row n.
template <DType T, bool Vector, int Rows>
__global__ void __launch_bounds__(32 * gemv_warps)
gemv_kernel(const u8* __restrict__ w, Index row_bytes, Index n_rows, Index units, const float* __restrict__ x, Index ldx, int m,
            float* y, Index ldy, const float* __restrict__ bias, int accumulate) {
    using U = GemvUnit<T, Vector>;
    const int lane = threadIdx.x & 31;
    const Index row = Index(blockIdx.x) * gemv_warps + (threadIdx.x >> 5);
    if (row >= n_rows) return;  // whole warps leave together; no block-wide barrier follows
    const u8* wr = w + row * row_bytes;
    float acc[Rows];
#pragma unroll
    for (int r = 0; r < Rows; ++r) acc[r] = 0.0f;
    for (Index u0 = lane; u0 < units; u0 += 32 * gemv_depth) {
        typename U::Regs regs[gemv_depth];
#pragma unroll
        for (int j = 0; j < gemv_depth; ++j)
            if (u0 + 32 * j < units) regs[j] = U::load(wr, u0 + 32 * j);
#pragma unroll
        for (int j = 0; j < gemv_depth; ++j) {
            if (u0 + 32 * j < units) {
#pragma unroll
                for (int r = 0; r < Rows; ++r)
                    if (r < m) acc[r] += U::dot(regs[j], x + r * ldx, u0 + 32 * j);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < Rows; ++r) {
        if (r >= m) break;
        const float s = warp_sum(acc[r]);
        if (lane == 0) {
            const float v = bias ? s + bias[row] : s;
            float* out = y + r * ldy + row;
            *out = accumulate ? *out + v : v;
        }
    }
}

// out[r, c] = W[row0 + r, c] as Out (f32 or bf16), for r < rows, c < cols.
template <DType T, class Out>
__global__ void dequantize_kernel(const u8* __restrict__ w, Index row_bytes, Index rows, Index cols, Out* __restrict__ out, Index ldo) {
    const Index n = rows * cols, step = Index(gridDim.x) * blockDim.x;
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const Index r = i / cols, c = i - r * cols;
        store(out + r * ldo + c, compute_t<Out>(weight_value<T>(w + r * row_bytes, c)));
    }
}

// out[t, c] = table[tokens[t], c] as f32 (NaN for a token outside the table: callers check first).
template <DType T>
__global__ void embedding_kernel(const u8* __restrict__ table, Index row_bytes, Index vocab, Index dim, const std::int32_t* __restrict__ tokens,
                                 Index n_tokens, float* __restrict__ out, Index ldo) {
    const Index n = n_tokens * dim, step = Index(gridDim.x) * blockDim.x;
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const Index t = i / dim, c = i - t * dim;
        const Index token = tokens[t];
        out[t * ldo + c] = (token >= 0 && token < vocab) ? weight_value<T>(table + token * row_bytes, c) : NAN;
    }
}

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

inline void check_int(Index v, const char* what, const std::string& name) {
    if (v > INT_MAX) fail("linear '", name, "': ", what, " ", v, " exceeds what cuBLAS takes (2^31 - 1)");
}

// cuBLAS: y [M, N] = alpha·A·B + beta·y in PyTorch terms, A = W [N, K] (row-major, lda = K),
// B = x [M, K] (ldb): column-major Yᵀ = Wᵀᵀ·Xᵀ, hence OP_T on W.
inline void gemm_nt(Context& ctx, Index M, Index N, Index K, const void* w, cudaDataType_t w_type, Index ldw, const void* x,
                    cudaDataType_t x_type, Index ldx, float* y, Index ldy, float beta) {
    const float alpha = 1.0f;
    WEFT_CUBLAS_CHECK(cublasGemmEx(ctx.blas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K),
                                   &alpha, w, w_type, static_cast<int>(ldw), x, x_type, static_cast<int>(ldx), &beta, y, CUDA_R_32F,
                                   static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// Weight rows dequantized per cuBLAS call (a bound on the bf16 panel: 64 MiB).
inline Index panel_rows(Index K) { return std::max<Index>(1, (Index(32) << 20) / K); }

}  // namespace detail

// y [M, N] = x [M, K] · Wᵀ (+ bias), or y += ... when `accumulate` (a residual connection).
// x and y: rows contiguous (any row stride); bias: empty or f32 [N] on the device.
inline void linear(Context& ctx, DeviceTensorView<const float> x, const DeviceWeight& w, DeviceTensorView<float> y,
                   DeviceTensorView<const float> bias = {}, bool accumulate = false) {
    const std::string& name = w.name();
    if (w.shape().rank() != 2) fail("linear '", name, "': weight of shape ", w.shape(), ", expected [out, in]");
    const Index N = w.out_features(), K = w.in_features();
    if (x.rank() != 2 || x.shape()[1] != K || (K > 1 && x.strides()[1] != 1))
        fail("linear '", name, "': input of shape ", x.shape(), " for weight ", w.shape(), " (expected [rows, ", K, "] with contiguous rows)");
    const Index M = x.shape()[0];
    if (!(y.shape() == Shape{M, N}) || (N > 1 && y.strides()[1] != 1))
        fail("linear '", name, "': output of shape ", y.shape(), ", expected [", M, ", ", N, "] with contiguous rows");
    if (bias.data() && (!(bias.shape() == Shape{N}) || bias.strides()[0] != 1))
        fail("linear '", name, "': bias of shape ", bias.shape(), ", expected contiguous [", N, "]");
    if (M == 0 || N == 0) return;
    const Index ldx = M > 1 ? x.strides()[0] : K, ldy = M > 1 ? y.strides()[0] : N;
    const cudaStream_t stream = ctx.stream();
    const auto* wbytes = reinterpret_cast<const detail::u8*>(w.data());

    if (M <= gemv_max_rows) {
        const bool x_vec = detail::aligned16(x.data()) && ldx % 4 == 0;
        detail::visit_weight_dtype(w.dtype(), "linear", [&](auto tag) {
            constexpr DType T = decltype(tag)::value;
            constexpr bool quantized = T != DType::f32 && T != DType::f16 && T != DType::bf16;
            const bool vec = quantized || (x_vec && K % 8 == 0 && detail::aligned16(wbytes) && w.row_bytes() % 16 == 0);
            if (quantized && !x_vec)
                fail("linear '", name, "': quantized weights need 16-byte aligned input rows (row stride a multiple of 4 floats)");
            const unsigned blocks = static_cast<unsigned>((N + detail::gemv_warps - 1) / detail::gemv_warps);
            const Index units = vec ? K / 8 : K;
            const auto run = [&](auto vector_tag) {
                constexpr bool V = decltype(vector_tag)::value;
                if constexpr (V || !quantized) {
                    if (M == 1)
                        detail::gemv_kernel<T, V, 1><<<blocks, 32 * detail::gemv_warps, 0, stream>>>(
                            wbytes, static_cast<Index>(w.row_bytes()), N, units, x.data(), ldx, 1, y.data(), ldy, bias.data(), accumulate);
                    else
                        detail::gemv_kernel<T, V, gemv_max_rows><<<blocks, 32 * detail::gemv_warps, 0, stream>>>(
                            wbytes, static_cast<Index>(w.row_bytes()), N, units, x.data(), ldx, static_cast<int>(M), y.data(), ldy,
                            bias.data(), accumulate);
                }
            };
            if (vec) run(std::true_type{});
            else run(std::false_type{});
        });
        WEFT_CUDA_CHECK_LAUNCH("gemv_kernel");
        return;
    }

    detail::check_int(M, "rows", name);
    detail::check_int(N, "outputs", name);
    detail::check_int(std::max(K, ldx), "inputs", name);
    detail::check_int(ldy, "output row stride", name);
    const float beta = accumulate ? 1.0f : 0.0f;
    if (w.dtype() == DType::f32) {
        detail::gemm_nt(ctx, M, N, K, wbytes, CUDA_R_32F, K, x.data(), CUDA_R_32F, ldx, y.data(), ldy, beta);
    } else if (w.dtype() == DType::f16 || w.dtype() == DType::bf16) {
        // The tensor cores take both operands in the weights' type: round the activations to it.
        const bool half = w.dtype() == DType::f16;
        void* x16 = ctx.scratch(0, static_cast<std::size_t>(M * K) * 2);
        if (half) assign(DeviceTensorView<f16>(static_cast<f16*>(x16), Shape{M, K}), cast<f16>(x), stream);
        else assign(DeviceTensorView<bf16>(static_cast<bf16*>(x16), Shape{M, K}), cast<bf16>(x), stream);
        detail::gemm_nt(ctx, M, N, K, wbytes, half ? CUDA_R_16F : CUDA_R_16BF, K, x16, half ? CUDA_R_16F : CUDA_R_16BF, K, y.data(),
                        ldy, beta);
    } else {
        // Quantized: panels of rows dequantized to bf16, each multiplied by cuBLAS.
        void* x16 = ctx.scratch(0, static_cast<std::size_t>(M * K) * 2);
        assign(DeviceTensorView<bf16>(static_cast<bf16*>(x16), Shape{M, K}), cast<bf16>(x), stream);
        const Index panel = std::min(N, detail::panel_rows(K));
        auto* w16 = static_cast<bf16*>(ctx.scratch(1, static_cast<std::size_t>(panel * K) * 2));
        for (Index n0 = 0; n0 < N; n0 += panel) {
            const Index rows = std::min(panel, N - n0);
            detail::visit_weight_dtype(w.dtype(), "linear", [&](auto tag) {
                constexpr DType T = decltype(tag)::value;
                detail::dequantize_kernel<T, bf16><<<detail::grid_for(rows * K, 256), 256, 0, stream>>>(
                    wbytes + static_cast<std::size_t>(n0) * w.row_bytes(), static_cast<Index>(w.row_bytes()), rows, K, w16, K);
            });
            WEFT_CUDA_CHECK_LAUNCH("dequantize_kernel");
            detail::gemm_nt(ctx, M, rows, K, w16, CUDA_R_16BF, K, x16, CUDA_R_16BF, K, y.data() + n0, ldy, beta);
        }
    }
    if (bias.data()) assign(y, y + bias, stream);
}

// out [rows, cols] = W as f32 (the device reference of quant::dequantize_row, for any weight dtype).
inline void dequantize(const DeviceWeight& w, DeviceTensorView<float> out, cudaStream_t stream = nullptr) {
    const Index rows = w.shape().rank() == 2 ? w.shape()[0] : 1, cols = w.cols();
    if (!(out.shape() == Shape{rows, cols}) || !out.is_contiguous())
        fail("dequantize '", w.name(), "': output of shape ", out.shape(), ", expected contiguous [", rows, ", ", cols, "]");
    if (rows * cols == 0) return;
    detail::visit_weight_dtype(w.dtype(), "dequantize", [&](auto tag) {
        constexpr DType T = decltype(tag)::value;
        detail::dequantize_kernel<T, float><<<detail::grid_for(rows * cols, 256), 256, 0, stream>>>(
            reinterpret_cast<const detail::u8*>(w.data()), static_cast<Index>(w.row_bytes()), rows, cols, out.data(), cols);
    });
    WEFT_CUDA_CHECK_LAUNCH("dequantize_kernel");
}

// out [T, dim] = rows `tokens` (device int32 [T]) of `table` [vocab, dim], widened to f32. Token ids
// are device data, so they are not checked here: check them on the host (an id outside the table
// gives a row of NaN).
inline void embedding(const DeviceWeight& table, const std::int32_t* tokens, Index n_tokens, DeviceTensorView<float> out,
                      cudaStream_t stream = nullptr) {
    if (table.shape().rank() != 2) fail("embedding: table '", table.name(), "' has shape ", table.shape(), ", expected [vocab, dim]");
    const Index dim = table.cols();
    if (!(out.shape() == Shape{n_tokens, dim}) || (dim > 1 && out.strides()[1] != 1))
        fail("embedding: output of shape ", out.shape(), " for ", n_tokens, " tokens of dim ", dim);
    if (n_tokens == 0) return;
    const Index ldo = n_tokens > 1 ? out.strides()[0] : dim;
    detail::visit_weight_dtype(table.dtype(), "embedding", [&](auto tag) {
        constexpr DType T = decltype(tag)::value;
        detail::embedding_kernel<T><<<detail::grid_for(n_tokens * dim, 256), 256, 0, stream>>>(
            reinterpret_cast<const detail::u8*>(table.data()), static_cast<Index>(table.row_bytes()), table.out_features(), dim, tokens,
            n_tokens, out.data(), ldo);
    });
    WEFT_CUDA_CHECK_LAUNCH("embedding_kernel");
}

}  // namespace weft::cuda
