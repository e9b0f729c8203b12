// weft/cuda/expr.cuh — the CPU expression nodes (expr/nodes.hpp) evaluated on the device: assign(dst,
// expr, stream) runs the whole expression as ONE kernel, no temporaries. DevEval mirrors the node tree
// as kernel data; DeviceOp<op::X> is the device body of each functor of expr/functors.hpp.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "weft/core/tensor.hpp"
#include "weft/expr/evaluator.hpp"
#include "weft/expr/functors.hpp"
#include "weft/expr/nodes.hpp"
#include "weft/cuda/dtype.cuh"
#include "weft/cuda/error.cuh"
#include "weft/cuda/launch.cuh"
#include "weft/cuda/tensor.cuh"

namespace weft::cuda {

namespace detail {

// ---- device bodies of the functors ----------------------------------------------------------------
// The CPU functors' operator() is host-only, so each op gets its device body here, written as the
// plain-value branch of functors.hpp. V is float, double, int32_t or int8_t.

__device__ __forceinline__ float d_sqrt(float a) { return ::sqrtf(a); }
__device__ __forceinline__ double d_sqrt(double a) { return ::sqrt(a); }
__device__ __forceinline__ float d_exp(float a) { return ::expf(a); }
__device__ __forceinline__ double d_exp(double a) { return ::exp(a); }
__device__ __forceinline__ float d_log(float a) { return ::logf(a); }
__device__ __forceinline__ double d_log(double a) { return ::log(a); }
__device__ __forceinline__ float d_tanh(float a) { return ::tanhf(a); }
__device__ __forceinline__ double d_tanh(double a) { return ::tanh(a); }
__device__ __forceinline__ float d_erf(float a) { return ::erff(a); }
__device__ __forceinline__ double d_erf(double a) { return ::erf(a); }
__device__ __forceinline__ float d_pow(float a, float b) { return ::powf(a, b); }
__device__ __forceinline__ double d_pow(double a, double b) { return ::pow(a, b); }
__device__ __forceinline__ float d_abs(float a) { return ::fabsf(a); }
__device__ __forceinline__ double d_abs(double a) { return ::fabs(a); }

template <class Op> struct DeviceOp {
    static_assert(sizeof(Op) == 0, "weft::cuda: this elementwise op has no device body yet (add a DeviceOp specialisation in weft/cuda/expr.cuh)");
};

template <> struct DeviceOp<op::Neg> { template <class V> __device__ V operator()(V a) const { return V(-a); } };
template <> struct DeviceOp<op::Abs> {
    template <class V> __device__ V operator()(V a) const {
        if constexpr (std::is_floating_point_v<V>) return d_abs(a);  // clears the sign bit, as simd::abs
        else return a < 0 ? V(-a) : a;
    }
};
template <> struct DeviceOp<op::Square> { template <class V> __device__ V operator()(V a) const { return V(a * a); } };
template <> struct DeviceOp<op::Sqrt> { template <class V> __device__ V operator()(V a) const { return d_sqrt(a); } };
template <> struct DeviceOp<op::Rsqrt> { template <class V> __device__ V operator()(V a) const { return V(1) / d_sqrt(a); } };
template <> struct DeviceOp<op::Exp> { template <class V> __device__ V operator()(V a) const { return d_exp(a); } };
template <> struct DeviceOp<op::Log> { template <class V> __device__ V operator()(V a) const { return d_log(a); } };
template <> struct DeviceOp<op::Tanh> { template <class V> __device__ V operator()(V a) const { return d_tanh(a); } };
template <> struct DeviceOp<op::Sigmoid> { template <class V> __device__ V operator()(V a) const { return V(1) / (V(1) + d_exp(-a)); } };
template <> struct DeviceOp<op::Silu> { template <class V> __device__ V operator()(V a) const { return a / (V(1) + d_exp(-a)); } };
template <> struct DeviceOp<op::Gelu> {
    template <class V> __device__ V operator()(V a) const { return V(0.5) * a * (V(1) + d_erf(a * V(0.70710678118654752440))); }
};

template <> struct DeviceOp<op::Add> { template <class V> __device__ V operator()(V a, V b) const { return V(a + b); } };
template <> struct DeviceOp<op::Sub> { template <class V> __device__ V operator()(V a, V b) const { return V(a - b); } };
template <> struct DeviceOp<op::Mul> { template <class V> __device__ V operator()(V a, V b) const { return V(a * b); } };
template <> struct DeviceOp<op::Div> { template <class V> __device__ V operator()(V a, V b) const { return V(a / b); } };
template <> struct DeviceOp<op::Min> {  // NaN-propagating for floats, as op::Min
    template <class V> __device__ V operator()(V a, V b) const {
        if constexpr (std::is_floating_point_v<V>) return (a != a || b != b) ? a + b : (b < a ? b : a);
        else return b < a ? b : a;
    }
};
template <> struct DeviceOp<op::Max> {
    template <class V> __device__ V operator()(V a, V b) const {
        if constexpr (std::is_floating_point_v<V>) return (a != a || b != b) ? a + b : (a < b ? b : a);
        else return a < b ? b : a;
    }
};
template <> struct DeviceOp<op::Pow> { template <class V> __device__ V operator()(V a, V b) const { return d_pow(a, b); } };

// ---- DevEval: the expression tree as kernel data ---------------------------------------------------
// Built on the host from an expression and a weft::detail::LoopPlan. value<Flat>(loop, outer, i)
// yields element i of the row at `outer` in the compute type (float for f32/f16/bf16); Flat means
// a rank-1 loop, where element i is simply at i·stride.

using weft::detail::LoopPlan;

template <class E> struct DevEval {
    static_assert(sizeof(E) == 0, "weft::cuda: this expression node cannot run on the device");
};

template <class T>
struct DevEval<DeviceTensorView<const T>> {
    using value_type = T;
    DevEval(const DeviceTensorView<const T>& v, const LoopPlan& plan)
        : base(v.data()), st(loop_strides(plan.loop_strides(broadcast_strides(v.shape(), v.strides(), plan.full)))) {}
    template <bool Flat>
    __device__ compute_t<T> value(const LoopDims& loop, const Index* outer, Index i) const {
        if constexpr (Flat) return load(base + i * st.s[0]);
        else return load(base + offset_of(loop, st, outer, i));
    }
    const T* base;
    LoopStrides st;
};
template <class T>
struct DevEval<DeviceTensorView<T>> : DevEval<DeviceTensorView<const T>> {
    DevEval(const DeviceTensorView<T>& v, const LoopPlan& plan) : DevEval<DeviceTensorView<const T>>(v, plan) {}
};
template <class T>
struct DevEval<DeviceTensor<T>> : DevEval<DeviceTensorView<const T>> {
    DevEval(const DeviceTensor<T>& t, const LoopPlan& plan) : DevEval<DeviceTensorView<const T>>(t.view(), plan) {}
};

// CPU tensors in a device expression.
template <class T>
struct DevEval<TensorView<T>> {
    static_assert(sizeof(T) == 0,
                  "weft::cuda: a CPU tensor in a CUDA expression; copy it to the device with weft::cuda::to_device(x) first");
};
template <class T>
struct DevEval<Tensor<T>> : DevEval<TensorView<const T>> {};

template <class T>
struct DevEval<ScalarExpr<T>> {
    using value_type = T;
    DevEval(const ScalarExpr<T>& s, const LoopPlan&) : v(s.value()) {}
    template <bool Flat>
    __device__ compute_t<T> value(const LoopDims&, const Index*, Index) const { return v; }
    compute_t<T> v;
};

template <class Op, class A>
struct DevEval<UnaryExpr<Op, A>> {
    using value_type = typename A::value_type;
    DevEval(const UnaryExpr<Op, A>& e, const LoopPlan& plan) : a(e.operand(), plan) {}
    template <bool Flat>
    __device__ compute_t<value_type> value(const LoopDims& loop, const Index* outer, Index i) const {
        return round_as<value_type>(DeviceOp<Op>{}(a.template value<Flat>(loop, outer, i)));
    }
    DevEval<A> a;
};

template <class Op, class A, class B>
struct DevEval<BinaryExpr<Op, A, B>> {
    using value_type = typename A::value_type;
    DevEval(const BinaryExpr<Op, A, B>& e, const LoopPlan& plan) : a(e.lhs(), plan), b(e.rhs(), plan) {}
    template <bool Flat>
    __device__ compute_t<value_type> value(const LoopDims& loop, const Index* outer, Index i) const {
        return round_as<value_type>(DeviceOp<Op>{}(a.template value<Flat>(loop, outer, i), b.template value<Flat>(loop, outer, i)));
    }
    DevEval<A> a;
    DevEval<B> b;
};

// Float results: through float, rounded to To's precision; integer and f64 results: saturating.
template <class To, class A>
struct DevEval<CastExpr<To, A>> {
    using value_type = To;
    DevEval(const CastExpr<To, A>& e, const LoopPlan& plan) : a(e.operand(), plan) {}
    template <bool Flat>
    __device__ compute_t<To> value(const LoopDims& loop, const Index* outer, Index i) const {
        const auto v = a.template value<Flat>(loop, outer, i);
        if constexpr (float_compute_v<To>) return round_as<To>(static_cast<float>(v));
        else return convert_saturating<To>(v);
    }
    DevEval<A> a;
};

// ---- the elementwise kernel -------------------------------------------------------------------------

template <bool Flat, class T, class Ev>
__global__ void assign_kernel(T* dst, LoopStrides dst_strides, Ev ev, LoopDims loop, Index n) {
    const Index step = Index(gridDim.x) * blockDim.x;
    for (Index lin = Index(blockIdx.x) * blockDim.x + threadIdx.x; lin < n; lin += step) {
        if constexpr (Flat) {
            store(dst + lin * dst_strides.s[0], ev.template value<true>(loop, nullptr, lin));
        } else {
            const Index len = loop.row_length();
            const Index row = lin / len, col = lin - row * len;
            Index outer[max_rank];
            unravel_row(loop, row, outer);
            store(dst + offset_of(loop, dst_strides, outer, col), ev.template value<false>(loop, outer, col));
        }
    }
}

template <class T>
__global__ void fill_kernel(T* dst, LoopStrides dst_strides, LoopDims loop, Index n, compute_t<T> value) {
    const Index step = Index(gridDim.x) * blockDim.x;
    for (Index lin = Index(blockIdx.x) * blockDim.x + threadIdx.x; lin < n; lin += step) {
        const Index len = loop.row_length();
        const Index row = lin / len, col = lin - row * len;
        Index outer[max_rank];
        unravel_row(loop, row, outer);
        store(dst + offset_of(loop, dst_strides, outer, col), value);
    }
}

// Byte range [lo, hi) a view touches.
template <class V>
void byte_range(const V& v, std::uintptr_t& lo, std::uintptr_t& hi) {
    Index min_off = 0, max_off = 0;
    for (int d = 0; d < v.rank(); ++d) {
        const Index span = (v.shape()[d] - 1) * v.strides()[d];
        (span < 0 ? min_off : max_off) += span;
    }
    lo = reinterpret_cast<std::uintptr_t>(v.data() + min_off);
    hi = reinterpret_cast<std::uintptr_t>(v.data() + max_off + 1);
}

// True when some leaf of `e` reads device memory that `dst` writes, other than the very element
// being written (`x = x.transpose()`, overlapping shifts): then the expression is staged through a
// temporary, as on the CPU (expr/assign.hpp).
template <class T, class E>
bool reads_overwritten_elements(const DeviceTensorView<T>& dst, const E& e) {
    std::uintptr_t dlo, dhi;
    byte_range(dst, dlo, dhi);
    bool unsafe = false;
    e.for_each_leaf([&](const auto& leaf) {
        std::uintptr_t lo, hi;
        byte_range(leaf, lo, hi);
        if (leaf.numel() == 0 || hi <= dlo || dhi <= lo) return;
        using L = typename std::remove_cvref_t<decltype(leaf)>::value_type;
        bool same_elements = std::is_same_v<L, std::remove_const_t<T>> &&
                             reinterpret_cast<std::uintptr_t>(leaf.data()) == reinterpret_cast<std::uintptr_t>(dst.data());
        if (same_elements) {
            const Strides s = broadcast_strides(leaf.shape(), leaf.strides(), dst.shape());
            for (int d = 0; d < dst.rank(); ++d)
                if (dst.shape()[d] > 1 && s[d] != dst.strides()[d]) same_elements = false;
        }
        if (!same_elements) unsafe = true;
    });
    return unsafe;
}

inline constexpr int elementwise_threads = 256;

}  // namespace detail

// Evaluates `expression` into `dst` with ONE kernel on `stream` (null: the legacy default stream).
// Shapes broadcast as on the CPU; dtypes must match exactly (use weft::cast<T>).
template <class T, class E>
void assign(DeviceTensorView<T> dst, const Expr<E>& expression, cudaStream_t stream) {
    static_assert(!std::is_const_v<T>, "weft: cannot assign to a read-only view (DeviceTensorView<const T>)");
    static_assert(!detail::leaves<E>::host,
                  "weft::cuda: a CPU tensor in a CUDA expression; copy it to the device with weft::cuda::to_device(x) first");
    const E& e = expression.derived();
    static_assert(std::is_same_v<typename E::value_type, T>,
                  "weft: the expression's dtype differs from the destination's; convert it with weft::cast<T>(expr)");
    if (!(broadcast_shapes(dst.shape(), e.shape(), "assign") == dst.shape()))
        fail("assign: an expression of shape ", e.shape(), " does not fit a destination of shape ", dst.shape());
    if (dst.numel() == 0) return;

    if (detail::reads_overwritten_elements(dst, e)) {
        DeviceTensor<T> staged = DeviceTensor<T>::uninitialized(dst.shape());
        assign(staged.view(), e, stream);
        assign(dst, staged, stream);
        if (!stream) return;  // the legacy stream orders the free below after the kernels
        WEFT_CUDA_CHECK(cudaStreamSynchronize(stream));  // `staged` is freed on return
        return;
    }

    const weft::detail::LoopPlan plan = weft::detail::make_plan(dst.shape(), false, [&](auto&& f) {
        f(dst.strides());
        weft::detail::visit_leaf_strides(e, dst.shape(), f);
    });
    const detail::DevEval<E> ev(e, plan);
    const detail::LoopStrides out = detail::loop_strides(plan.loop_strides(dst.strides()));
    const detail::LoopDims loop = detail::loop_dims(plan.loop);
    const Index n = dst.numel();
    const unsigned blocks = detail::grid_for(n, detail::elementwise_threads);
    if (plan.loop.rank() == 1)
        detail::assign_kernel<true><<<blocks, detail::elementwise_threads, 0, stream>>>(dst.data(), out, ev, loop, n);
    else
        detail::assign_kernel<false><<<blocks, detail::elementwise_threads, 0, stream>>>(dst.data(), out, ev, loop, n);
    WEFT_CUDA_CHECK_LAUNCH("assign_kernel");
}

// On the legacy default stream.
template <class T, class E>
void assign(DeviceTensorView<T> dst, const Expr<E>& expression) { assign(dst, expression, nullptr); }

// Evaluates a device expression into a new device tensor.
template <class E> requires DeviceExpression<E>
DeviceTensor<typename E::value_type> eval(const Expr<E>& e) { return DeviceTensor<typename E::value_type>(e); }

template <class T>
void DeviceTensorView<T>::fill(value_type value, cudaStream_t stream) const {
    static_assert(!std::is_const_v<T>, "weft: cannot fill a read-only view");
    if (numel() == 0) return;
    const weft::detail::LoopPlan plan = weft::detail::make_plan(shape(), false, [&](auto&& f) { f(strides()); });
    const Index n = numel();
    detail::fill_kernel<T><<<detail::grid_for(n, detail::elementwise_threads), detail::elementwise_threads, 0, stream>>>(
        data(), detail::loop_strides(plan.loop_strides(strides())), detail::loop_dims(plan.loop), n, convert<compute_t<T>>(value));
    WEFT_CUDA_CHECK_LAUNCH("fill_kernel");
}

}  // namespace weft::cuda
