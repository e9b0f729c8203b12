// weft/cuda/reduce.cuh — row_sum, row_sum_squares, row_mean, row_max, row_argmax, softmax and
// log_softmax of any float device expression (computed on the fly), one block per row in a fixed
// order (deterministic). The API of expr/reduce.hpp, returning DeviceTensors [..., 1].
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "weft/cuda/expr.cuh"
#include "weft/cuda/launch.cuh"
#include "weft/cuda/tensor.cuh"

namespace weft::cuda {

namespace detail {

enum class RowOp { sum, sum_squares, mean, max };

template <RowOp Op, class Ev>
__global__ void row_reduce_kernel(Ev ev, LoopDims loop, Index rows, float* out) {
    __shared__ float scratch[32];
    const Index len = loop.row_length();
    for (Index row = blockIdx.x; row < rows; row += gridDim.x) {
        Index outer[max_rank];
        unravel_row(loop, row, outer);
        float acc = Op == RowOp::max ? -INFINITY : 0.0f;
        for (Index i = threadIdx.x; i < len; i += blockDim.x) {
            const float v = static_cast<float>(ev.template value<false>(loop, outer, i));
            if constexpr (Op == RowOp::max) acc = nan_max(acc, v);
            else if constexpr (Op == RowOp::sum_squares) acc += v * v;
            else acc += v;
        }
        const float total = block_reduce<Op == RowOp::max>(acc, scratch);
        if (threadIdx.x == 0) out[row] = Op == RowOp::mean ? total / static_cast<float>(len) : total;
    }
}

// (value, index) of a row's maximum: the first index on ties, the first NaN if there is one.
struct ArgMax {
    float v;
    Index i;
};
__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
    const bool an = a.v != a.v, bn = b.v != b.v;
    if (an || bn) {
        if (an && bn) return a.i < b.i ? a : b;
        return an ? a : b;
    }
    if (a.v != b.v) return a.v > b.v ? a : b;
    return a.i < b.i ? a : b;
}

template <class Ev>
__global__ void row_argmax_kernel(Ev ev, LoopDims loop, Index rows, std::int32_t* out) {
    __shared__ float values[32];
    __shared__ Index indices[32];
    const Index len = loop.row_length();
    for (Index row = blockIdx.x; row < rows; row += gridDim.x) {
        Index outer[max_rank];
        unravel_row(loop, row, outer);
        ArgMax best{-INFINITY, len};
        for (Index i = threadIdx.x; i < len; i += blockDim.x)
            best = better(best, ArgMax{static_cast<float>(ev.template value<false>(loop, outer, i)), i});
        // An index of `len` means "nothing yet"; every row has at least one element.
        for (int o = 16; o > 0; o >>= 1)
            best = better(best, ArgMax{__shfl_xor_sync(full_mask, best.v, o), __shfl_xor_sync(full_mask, best.i, o)});
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
        __syncthreads();
        if (lane == 0) values[warp] = best.v, indices[warp] = best.i;
        __syncthreads();
        if (warp == 0) {
            ArgMax b = lane < warps ? ArgMax{values[lane], indices[lane]} : ArgMax{-INFINITY, len};
            for (int o = 16; o > 0; o >>= 1)
                b = better(b, ArgMax{__shfl_xor_sync(full_mask, b.v, o), __shfl_xor_sync(full_mask, b.i, o)});
            // All -inf: the first element, as the CPU loop (which never finds v > -inf) reports.
            if (lane == 0) out[row] = static_cast<std::int32_t>(b.i < len ? b.i : 0);
        }
    }
}

// softmax (Log = false) or log_softmax (Log = true) of each row, written through `out_strides`.
template <bool Log, class Ev>
__global__ void softmax_kernel(Ev ev, LoopDims loop, Index rows, float* out, LoopStrides out_strides) {
    __shared__ float scratch[32];
    const Index len = loop.row_length();
    for (Index row = blockIdx.x; row < rows; row += gridDim.x) {
        Index outer[max_rank];
        unravel_row(loop, row, outer);
        float m = -INFINITY;
        for (Index i = threadIdx.x; i < len; i += blockDim.x) m = nan_max(m, static_cast<float>(ev.template value<false>(loop, outer, i)));
        m = block_reduce<true>(m, scratch);
        float s = 0;
        for (Index i = threadIdx.x; i < len; i += blockDim.x) s += expf(static_cast<float>(ev.template value<false>(loop, outer, i)) - m);
        const float total = block_reduce<false>(s, scratch);
        const float inverse = 1.0f / total, log_total = logf(total);
        for (Index i = threadIdx.x; i < len; i += blockDim.x) {
            const float v = static_cast<float>(ev.template value<false>(loop, outer, i));
            out[offset_of(loop, out_strides, outer, i)] = Log ? (v - m) - log_total : expf(v - m) * inverse;
        }
    }
}

template <class E>
void check_reducible(const E& e, const char* op) {
    static_assert(float_compute_v<typename E::value_type>,
                  "weft: row reductions and softmax take float, f16 or bf16 expressions; use weft::cast<float>(x)");
    if (e.shape().rank() == 0) fail(op, ": needs at least one axis, got a scalar");
    if (e.shape()[e.shape().rank() - 1] == 0) fail(op, ": the last axis of shape ", e.shape(), " is empty");
}

inline Shape keepdim_shape(const Shape& s) {
    Shape out = s;
    out[out.rank() - 1] = 1;
    return out;
}

template <class E>
weft::detail::LoopPlan row_plan(const E& e, const Strides* out_strides) {
    return weft::detail::make_plan(e.shape(), true, [&](auto&& f) {
        if (out_strides) f(*out_strides);
        weft::detail::visit_leaf_strides(e, e.shape(), f);
    });
}

template <RowOp Op, class E>
DeviceTensor<float> reduce_rows(const E& e, const char* op, cudaStream_t stream) {
    check_reducible(e, op);
    DeviceTensor<float> out = DeviceTensor<float>::uninitialized(keepdim_shape(e.shape()));
    const weft::detail::LoopPlan plan = row_plan(e, nullptr);
    const Index rows = plan.rows();
    row_reduce_kernel<Op><<<row_blocks_for(rows), row_threads(plan.row_length()), 0, stream>>>(DevEval<E>(e, plan), loop_dims(plan.loop),
                                                                                         rows, out.data());
    WEFT_CUDA_CHECK_LAUNCH("row_reduce_kernel");
    return out;
}

template <bool Log, class E>
void softmax_rows(const E& e, DeviceTensorView<float> out, const char* op, cudaStream_t stream) {
    check_reducible(e, op);
    if (!(out.shape() == e.shape())) fail(op, ": output of shape ", out.shape(), " for an input of shape ", e.shape());
    // Each element is written after its row has been read in full by the same block, so out may
    // alias the input only when it is the very same elements (softmax in place).
    if (reads_overwritten_elements(out, e)) {
        DeviceTensor<float> staged = DeviceTensor<float>::uninitialized(e.shape());
        assign(staged.view(), cast<float>(e), stream);
        softmax_rows<Log>(staged, out, op, stream);
        WEFT_CUDA_CHECK(cudaStreamSynchronize(stream));  // `staged` is freed on return
        return;
    }
    const Strides out_strides = out.strides();
    const weft::detail::LoopPlan plan = row_plan(e, &out_strides);
    const Index rows = plan.rows();
    softmax_kernel<Log><<<row_blocks_for(rows), row_threads(plan.row_length()), 0, stream>>>(
        DevEval<E>(e, plan), loop_dims(plan.loop), rows, out.data(), loop_strides(plan.loop_strides(out_strides)));
    WEFT_CUDA_CHECK_LAUNCH("softmax_kernel");
}

}  // namespace detail

// Σ x over the last axis: [..., n] -> [..., 1]. Each function has a form without a stream (the
// legacy default stream) and one with.
template <class E> requires DeviceExpression<E>
DeviceTensor<float> row_sum(const Expr<E>& x) { return detail::reduce_rows<detail::RowOp::sum>(x.derived(), "row_sum", nullptr); }
template <class E> requires DeviceExpression<E>
DeviceTensor<float> row_sum(const Expr<E>& x, cudaStream_t s) { return detail::reduce_rows<detail::RowOp::sum>(x.derived(), "row_sum", s); }

// Σ x² over the last axis: [..., n] -> [..., 1].
template <class E> requires DeviceExpression<E>
DeviceTensor<float> row_sum_squares(const Expr<E>& x) {
    return detail::reduce_rows<detail::RowOp::sum_squares>(x.derived(), "row_sum_squares", nullptr);
}
template <class E> requires DeviceExpression<E>
DeviceTensor<float> row_sum_squares(const Expr<E>& x, cudaStream_t s) {
    return detail::reduce_rows<detail::RowOp::sum_squares>(x.derived(), "row_sum_squares", s);
}

// Mean over the last axis: [..., n] -> [..., 1].
template <class E> requires DeviceExpression<E>
DeviceTensor<float> row_mean(const Expr<E>& x) { return detail::reduce_rows<detail::RowOp::mean>(x.derived(), "row_mean", nullptr); }
template <class E> requires DeviceExpression<E>
DeviceTensor<float> row_mean(const Expr<E>& x, cudaStream_t s) { return detail::reduce_rows<detail::RowOp::mean>(x.derived(), "row_mean", s); }

// Largest element of the last axis (NaN if the row holds one): [..., n] -> [..., 1].
template <class E> requires DeviceExpression<E>
DeviceTensor<float> row_max(const Expr<E>& x) { return detail::reduce_rows<detail::RowOp::max>(x.derived(), "row_max", nullptr); }
template <class E> requires DeviceExpression<E>
DeviceTensor<float> row_max(const Expr<E>& x, cudaStream_t s) { return detail::reduce_rows<detail::RowOp::max>(x.derived(), "row_max", s); }

// Index of the largest element of the last axis (first on ties; the first NaN if any):
// [..., n] -> [..., 1] of int32.
// The same into `out` (contiguous, of the keepdim shape): allocates nothing, for decode loops.
template <class E> requires DeviceExpression<E>
void row_argmax(const Expr<E>& x, DeviceTensorView<std::int32_t> out, cudaStream_t stream) {
    const E& e = x.derived();
    detail::check_reducible(e, "row_argmax");
    if (e.shape()[e.shape().rank() - 1] > std::numeric_limits<std::int32_t>::max())
        fail("row_argmax: the last axis of shape ", e.shape(), " is longer than int32 indices reach");
    if (!(out.shape() == detail::keepdim_shape(e.shape())) || !out.is_contiguous())
        fail("row_argmax: output of shape ", out.shape(), ", expected contiguous ", detail::keepdim_shape(e.shape()));
    const weft::detail::LoopPlan plan = detail::row_plan(e, nullptr);
    const Index rows = plan.rows();
    detail::row_argmax_kernel<<<detail::row_blocks_for(rows), detail::row_threads(plan.row_length()), 0, stream>>>(
        detail::DevEval<E>(e, plan), detail::loop_dims(plan.loop), rows, out.data());
    WEFT_CUDA_CHECK_LAUNCH("row_argmax_kernel");
}
template <class E> requires DeviceExpression<E>
DeviceTensor<std::int32_t> row_argmax(const Expr<E>& x, cudaStream_t stream) {
    DeviceTensor<std::int32_t> out = DeviceTensor<std::int32_t>::uninitialized(detail::keepdim_shape(x.derived().shape()));
    row_argmax(x, out.view(), stream);
    return out;
}
template <class E> requires DeviceExpression<E>
DeviceTensor<std::int32_t> row_argmax(const Expr<E>& x) { return row_argmax(x, nullptr); }

// Stable softmax over the last axis, into a new device tensor or into `out` (which may be x itself).
template <class E> requires DeviceExpression<E>
DeviceTensor<float> softmax(const Expr<E>& x) {
    DeviceTensor<float> out = DeviceTensor<float>::uninitialized(x.derived().shape());
    detail::softmax_rows<false>(x.derived(), out.view(), "softmax", nullptr);
    return out;
}
template <class E> requires DeviceExpression<E>
void softmax(const Expr<E>& x, DeviceTensorView<float> out, cudaStream_t stream = nullptr) {
    detail::softmax_rows<false>(x.derived(), out, "softmax", stream);
}

// log(softmax(x)) over the last axis, as x - max - log Σ exp(x - max).
template <class E> requires DeviceExpression<E>
DeviceTensor<float> log_softmax(const Expr<E>& x) {
    DeviceTensor<float> out = DeviceTensor<float>::uninitialized(x.derived().shape());
    detail::softmax_rows<true>(x.derived(), out.view(), "log_softmax", nullptr);
    return out;
}
template <class E> requires DeviceExpression<E>
void log_softmax(const Expr<E>& x, DeviceTensorView<float> out, cudaStream_t stream = nullptr) {
    detail::softmax_rows<true>(x.derived(), out, "log_softmax", stream);
}

}  // namespace weft::cuda
