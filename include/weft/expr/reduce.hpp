// weft/expr/reduce.hpp — reductions along the last axis (row_sum, row_max, row_mean,
// row_sum_squares, row_argmax) and the stable softmax / log_softmax. Inputs may be any float
// expression (computed on the fly, never stored); each row is reduced by one thread in a fixed
// order, so results are identical for every thread count. Results keep the reduced axis with size
// 1 ([..., n] -> [..., 1]) so they broadcast against their input: `x - row_max(x)`.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "weft/core/tensor.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/simd.hpp"
#include "weft/cpu/vmath.hpp"
#include "weft/expr/assign.hpp"
#include "weft/expr/evaluator.hpp"

namespace weft {

namespace detail {

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

// Calls f(i, v) over a row: v is a VecF packet of elements [i, i+W) where the row is contiguous,
// a Vec1F of element i otherwise (and for the tail). Both give the same value per element.
template <class Ev, class F>
void walk_row(const Ev& ev, Index len, bool packets, F&& f) {
    Index i = 0;
    if constexpr (Ev::vectorizable) {
        if (packets)
            for (; i + VecF::width <= len; i += VecF::width) f(i, ev.template packet<VecF, false>(i, VecF::width));
    }
    for (; i < len; ++i) f(i, ev.template packet<Vec1F, false>(i, 1));
}

// Runs row_fn(row_number, evaluator, out_row, row_length, packets_ok) for every row of e, in
// parallel. `out` (may be null) is an output of e's shape walked with the same plan (softmax).
template <class E, class RowFn>
void for_each_row(const E& e, const TensorView<float>* out, RowFn&& row_fn) {
    const LoopPlan plan = make_plan(e.shape(), true, [&](auto&& f) {
        if (out) f(out->strides());
        visit_leaf_strides(e, e.shape(), f);
    });
    const Evaluator<E> ev(e, plan);
    const Destination<float> dest(out ? *out : TensorView<float>(nullptr, e.shape()), plan);
    const Index len = plan.row_length();
    const bool packets = ev.rows_contiguous() && (!out || dest.inner == 1);
    parallel_for(plan.rows(), std::max<Index>(1, elementwise_grain / len), [&](Index begin, Index end) {
        Evaluator<E> local = ev;
        Destination<float> local_dest = dest;
        Index outer[max_rank] = {};
        for (Index r = begin; r < end; ++r) {
            plan.unravel_row(r, outer);
            local.bind_row(outer);
            local_dest.bind_row(outer);
            row_fn(r, local, local_dest, len, packets);
        }
    });
}

template <class V> inline constexpr bool is_packet_v = std::is_same_v<V, VecF> && !std::is_same_v<VecF, Vec1F>;

// Sum (or sum of squares) of one row: a packet accumulator for the body, a lane one for the tail.
template <bool Squares, class Ev>
float row_total(const Ev& ev, Index len, bool packets) {
    VecF body = VecF::zero();
    Vec1F tail = Vec1F::zero();
    walk_row(ev, len, packets, [&](Index, auto v) {
        if constexpr (Squares) v = v * v;
        if constexpr (is_packet_v<decltype(v)>) body = body + v;
        else tail = tail + v;
    });
    return simd::reduce_add(body) + lane(tail);
}

template <class Ev>
float row_maximum(const Ev& ev, Index len, bool packets) {
    VecF body = VecF::broadcast(-std::numeric_limits<float>::infinity());
    Vec1F tail = Vec1F::broadcast(-std::numeric_limits<float>::infinity());
    walk_row(ev, len, packets, [&](Index, auto v) {
        if constexpr (is_packet_v<decltype(v)>) body = simd::max(body, v);
        else tail = simd::max(tail, v);
    });
    const float a = simd::reduce_max(body), b = lane(tail);
    return (a != a || b != b) ? a + b : (a < b ? b : a);
}

template <class E, class RowFloat>
Tensor<float> reduce_rows(const E& e, const char* op, RowFloat&& row_value) {
    check_reducible(e, op);
    Tensor<float> out = Tensor<float>::uninitialized(keepdim_shape(e.shape()));
    float* dst = out.data();
    for_each_row(e, nullptr, [&](Index r, const auto& ev, const Destination<float>&, Index len, bool packets) {
        dst[r] = row_value(ev, len, packets);
    });
    return out;
}

}  // namespace detail

// Σ x over the last axis: [..., n] -> [..., 1].
template <class E>
Tensor<float> row_sum(const Expr<E>& x) {
    return detail::reduce_rows(x.derived(), "row_sum", [](const auto& ev, Index len, bool p) { return detail::row_total<false>(ev, len, p); });
}

// Σ x² over the last axis (the RMSNorm statistic): [..., n] -> [..., 1].
template <class E>
Tensor<float> row_sum_squares(const Expr<E>& x) {
    return detail::reduce_rows(x.derived(), "row_sum_squares", [](const auto& ev, Index len, bool p) { return detail::row_total<true>(ev, len, p); });
}

// Mean over the last axis: [..., n] -> [..., 1].
template <class E>
Tensor<float> row_mean(const Expr<E>& x) {
    return detail::reduce_rows(x.derived(), "row_mean", [](const auto& ev, Index len, bool p) {
        return detail::row_total<false>(ev, len, p) / static_cast<float>(len);
    });
}

// Largest element of the last axis (NaN if the row holds one): [..., n] -> [..., 1].
template <class E>
Tensor<float> row_max(const Expr<E>& x) {
    return detail::reduce_rows(x.derived(), "row_max", [](const auto& ev, Index len, bool p) { return detail::row_maximum(ev, len, p); });
}

// Index of the largest element of the last axis (the first one on ties; the first NaN if any):
// [..., n] -> [..., 1] of int32.
template <class E>
Tensor<std::int32_t> row_argmax(const Expr<E>& x) {
    const E& e = x.derived();
    detail::check_reducible(e, "row_argmax");
    if (e.shape()[e.shape().rank() - 1] > std::numeric_limits<std::int32_t>::max())
        fail("row_argmax: the last axis of shape ", e.shape(), " is longer than int32 indices reach");
    Tensor<std::int32_t> out = Tensor<std::int32_t>::uninitialized(detail::keepdim_shape(e.shape()));
    std::int32_t* dst = out.data();
    detail::for_each_row(e, nullptr, [&](Index r, const auto& ev, const detail::Destination<float>&, Index len, bool) {
        float best = -std::numeric_limits<float>::infinity();
        Index best_i = 0;
        for (Index i = 0; i < len; ++i) {
            const float v = detail::lane(ev.template packet<simd::Vec1F, false>(i, 1));
            if (v != v) { best_i = i; break; }
            if (v > best) { best = v; best_i = i; }
        }
        dst[r] = static_cast<std::int32_t>(best_i);
    });
    return out;
}

namespace detail {

// Softmax (Log = false) or log-softmax (Log = true) of each row of e, written to out.
template <bool Log, class E>
void softmax_rows(const E& e, TensorView<float> out, const char* op) {
    check_reducible(e, op);
    if (!(out.shape() == e.shape())) fail(op, ": output of shape ", out.shape(), " for an input of shape ", e.shape());
    // The output is written after the input row has been read in full, so out may alias x only
    // when it is the very same elements (softmax in place).
    if (reads_overwritten_elements(out, e)) {
        Tensor<float> staged = cast<float>(e);
        softmax_rows<Log>(staged, out, op);
        return;
    }
    for_each_row(e, &out, [](Index, const auto& ev, const Destination<float>& dst, Index len, bool packets) {
        const float m = row_maximum(ev, len, packets);
        VecF body = VecF::zero();
        Vec1F tail = Vec1F::zero();
        walk_row(ev, len, packets, [&](Index i, auto v) {
            using V = decltype(v);
            const V shifted_exp = simd::exp(v - V::broadcast(m));
            if constexpr (!Log) dst.store(i, shifted_exp);
            if constexpr (is_packet_v<V>) body = body + shifted_exp;
            else tail = tail + shifted_exp;
        });
        const float total = simd::reduce_add(body) + lane(tail);
        if constexpr (Log) {
            const float log_total = lane(simd::log(Vec1F::broadcast(total)));
            walk_row(ev, len, packets, [&](Index i, auto v) {
                using V = decltype(v);
                dst.store(i, (v - V::broadcast(m)) - V::broadcast(log_total));
            });
        } else {
            const float inverse = 1.0f / total;
            Index i = 0;
            if (packets)
                for (; i + VecF::width <= len; i += VecF::width)
                    dst.store(i, VecF::load(dst.row + i) * VecF::broadcast(inverse));
            for (; i < len; ++i) dst.row[i * dst.inner] *= inverse;
        }
    });
}

}  // namespace detail

// Stable softmax over the last axis (exp(x - max) / Σ exp(x - max)), into a new tensor.
template <class E>
Tensor<float> softmax(const Expr<E>& x) {
    Tensor<float> out = Tensor<float>::uninitialized(x.derived().shape());
    detail::softmax_rows<false>(x.derived(), out.view(), "softmax");
    return out;
}
// The same into an existing tensor or view of x's shape (may be x itself: in place).
template <class E>
void softmax(const Expr<E>& x, TensorView<float> out) { detail::softmax_rows<false>(x.derived(), out, "softmax"); }

// log(softmax(x)) over the last axis, computed as x - max - log Σ exp(x - max).
template <class E>
Tensor<float> log_softmax(const Expr<E>& x) {
    Tensor<float> out = Tensor<float>::uninitialized(x.derived().shape());
    detail::softmax_rows<true>(x.derived(), out.view(), "log_softmax");
    return out;
}
template <class E>
void log_softmax(const Expr<E>& x, TensorView<float> out) { detail::softmax_rows<true>(x.derived(), out, "log_softmax"); }

}  // namespace weft
