// weft/expr/evaluator.hpp — how expressions run. A LoopPlan simplifies the destination's shape
// (drops size-1 axes, merges axes that every operand walks contiguously, so a whole contiguous
// tensor becomes one long row); an Evaluator mirrors the expression tree and yields values of one
// row at a time: SIMD packets where the row is contiguous, single lanes where it is strided.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "weft/core/dtype.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/tensor.hpp"
#include "weft/cpu/simd.hpp"
#include "weft/expr/nodes.hpp"

namespace weft::detail {

using simd::Vec1F;
using simd::VecF;

template <class T> inline constexpr bool float_compute_v = std::is_same_v<compute_t<T>, float>;

// ---- LoopPlan -----------------------------------------------------------------------------------

// The iteration space: `loop` is the simplified shape (rank >= 1); its last axis is the row that
// inner loops walk. Each axis of the full shape belongs to one loop axis (`group`), or to none if
// its size is 1.
struct LoopPlan {
    Shape full;
    Shape loop;
    std::array<int, max_rank> group{};  // loop axis of each full axis, -1 when dropped

    Index rows() const { return loop.numel() / row_length(); }
    Index row_length() const { return loop[loop.rank() - 1]; }

    // Strides of a tensor (already broadcast to `full`) along the loop axes: a merged group walks
    // with the stride of its innermost axis.
    Strides loop_strides(const Strides& full_strides) const {
        Strides out = Shape::filled(loop.rank(), 0);
        for (int d = 0; d < full.rank(); ++d)
            if (group[d] >= 0) out[group[d]] = full_strides[d];
        return out;
    }
    // Outer index (all loop axes but the last) of row number `row`.
    void unravel_row(Index row, Index* idx) const {
        for (int d = loop.rank() - 2; d >= 0; --d) {
            idx[d] = row % loop[d];
            row /= loop[d];
        }
    }
};

// Builds the plan for `full`. `visit_strides(f)` calls f(strides) with every operand's strides
// broadcast to `full` (destination included). With keep_last, the last axis stays its own loop axis
// even if it has size 1 (reductions reduce over it).
template <class VisitStrides>
LoopPlan make_plan(const Shape& full, bool keep_last, VisitStrides&& visit_strides) {
    LoopPlan plan;
    plan.full = full;
    plan.group.fill(-1);
    const int r = full.rank();
    int kept[max_rank];
    int nkept = 0;
    for (int d = 0; d < r; ++d)
        if (full[d] != 1 || (keep_last && d == r - 1)) kept[nkept++] = d;
    if (nkept == 0) {  // every axis has size 1 (or rank 0): one element
        plan.loop = Shape{1};
        return plan;
    }
    // mergeable[i]: kept axes i and i+1 can become one axis for every operand.
    bool mergeable[max_rank];
    for (int i = 0; i + 1 < nkept; ++i) mergeable[i] = !(keep_last && kept[i + 1] == r - 1);
    visit_strides([&](const Strides& s) {
        for (int i = 0; i + 1 < nkept; ++i)
            if (s[kept[i]] != s[kept[i + 1]] * full[kept[i + 1]]) mergeable[i] = false;
    });
    int g = 0;
    Index size = full[kept[0]];
    plan.group[kept[0]] = 0;
    for (int i = 1; i < nkept; ++i) {
        if (mergeable[i - 1]) {
            size *= full[kept[i]];
        } else {
            plan.loop.push_back(size);
            size = full[kept[i]];
            ++g;
        }
        plan.group[kept[i]] = g;
    }
    plan.loop.push_back(size);
    return plan;
}

// Calls f(strides broadcast to `full`) for the destination-like view and for every leaf of `e`.
template <class E, class F>
void visit_leaf_strides(const E& e, const Shape& full, F&& f) {
    e.for_each_leaf([&](const auto& leaf) { f(broadcast_strides(leaf.shape(), leaf.strides(), full)); });
}

// ---- value helpers ----------------------------------------------------------------------------

// Rounds a float packet to the precision of T (for f16/bf16 results; identity otherwise).
template <class T, class V>
V round_as(V v) {
    if constexpr (std::is_same_v<T, f16>) return simd::round_to_f16(v);
    else if constexpr (std::is_same_v<T, bf16>) return simd::round_to_bf16(v);
    else return v;
}

inline float lane(Vec1F v) {
    float f;
    v.store(&f);
    return f;
}

// Float or integer -> To, saturating for integers (NaN -> 0), rounding for f16/bf16.
template <class To, class From>
To convert_saturating(From x) {
    if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
        if (x != x) return To(0);
        if (x <= From(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
        if (x >= From(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
        return static_cast<To>(x);
    } else if constexpr (std::is_integral_v<To> && std::is_integral_v<From> && sizeof(To) < sizeof(From)) {
        return static_cast<To>(std::clamp<From>(x, std::numeric_limits<To>::min(), std::numeric_limits<To>::max()));
    } else {
        return convert<To>(x);
    }
}

// ---- evaluators -------------------------------------------------------------------------------
// Protocol of Evaluator<E> (built from an expression and a plan):
//   static constexpr bool vectorizable;      can yield VecF packets (float-computed results)
//   bool rows_contiguous() const;            every leaf walks its row with stride 0 or 1
//   void bind_row(const Index* outer);       position at a row (outer loop indices)
//   template <class V, bool Partial> V packet(Index i, int n) const;   float results, V = VecF/Vec1F
//   compute_t<value_type> plain(Index i) const;                        any result type

template <class E> struct Evaluator;

// A tensor read in place.
template <class T>
struct Evaluator<TensorView<const T>> {
    using value_type = T;
    // Double is read lane by lane (there is no double -> float packet load).
    static constexpr bool vectorizable = !std::is_same_v<T, double>;

    Evaluator(const TensorView<const T>& v, const LoopPlan& plan)
        : base(v.data()), strides(plan.loop_strides(broadcast_strides(v.shape(), v.strides(), plan.full))),
          inner(strides[strides.rank() - 1]), row(base) {}

    bool rows_contiguous() const { return inner == 0 || inner == 1; }
    void bind_row(const Index* outer) {
        Index off = 0;
        for (int d = 0; d + 1 < strides.rank(); ++d) off += outer[d] * strides[d];
        row = base + off;
    }
    template <class V, bool Partial>
    V packet(Index i, int n) const {
        if constexpr (std::is_same_v<V, Vec1F>) {
            return Vec1F::broadcast(convert<float>(row[i * inner]));
        } else {
            if (inner == 0) return V::broadcast(convert<float>(*row));
            const T* p = row + i;
            if constexpr (std::is_same_v<T, float>) return Partial ? V::load_partial(p, n) : V::load(p);
            else if constexpr (std::is_same_v<T, f16>) return Partial ? V::load_f16_partial(p, n) : V::load_f16(p);
            else if constexpr (std::is_same_v<T, bf16>) return Partial ? V::load_bf16_partial(p, n) : V::load_bf16(p);
            else if constexpr (std::is_same_v<T, std::int32_t>) return Partial ? V::load_i32_partial(p, n) : V::load_i32(p);
            else return Partial ? V::load_i8_partial(p, n) : V::load_i8(p);
        }
    }
    compute_t<T> plain(Index i) const { return convert<compute_t<T>>(row[i * inner]); }

    const T* base;
    Strides strides;
    Index inner;
    const T* row;
};

template <class T>
struct Evaluator<TensorView<T>> : Evaluator<TensorView<const T>> {
    Evaluator(const TensorView<T>& v, const LoopPlan& plan) : Evaluator<TensorView<const T>>(v, plan) {}
};

template <class T>
struct Evaluator<Tensor<T>> : Evaluator<TensorView<const T>> {
    Evaluator(const Tensor<T>& t, const LoopPlan& plan) : Evaluator<TensorView<const T>>(t.view(), plan) {}
};

template <class T>
struct Evaluator<ScalarExpr<T>> {
    using value_type = T;
    static constexpr bool vectorizable = true;
    Evaluator(const ScalarExpr<T>& s, const LoopPlan&) : value(s.value()) {}
    bool rows_contiguous() const { return true; }
    void bind_row(const Index*) {}
    template <class V, bool Partial>
    V packet(Index, int) const { return V::broadcast(static_cast<float>(value)); }
    compute_t<T> plain(Index) const { return value; }
    compute_t<T> value;
};

template <class Op, class A>
struct Evaluator<UnaryExpr<Op, A>> {
    using value_type = typename A::value_type;
    static constexpr bool vectorizable = float_compute_v<value_type> && Evaluator<A>::vectorizable;

    Evaluator(const UnaryExpr<Op, A>& e, const LoopPlan& plan) : a(e.operand(), plan) {}
    bool rows_contiguous() const { return a.rows_contiguous(); }
    void bind_row(const Index* outer) { a.bind_row(outer); }
    template <class V, bool Partial>
    V packet(Index i, int n) const { return round_as<value_type>(Op{}(a.template packet<V, Partial>(i, n))); }
    compute_t<value_type> plain(Index i) const {
        if constexpr (float_compute_v<value_type>) return lane(packet<Vec1F, false>(i, 1));
        else return Op{}(a.plain(i));
    }
    Evaluator<A> a;
};

template <class Op, class A, class B>
struct Evaluator<BinaryExpr<Op, A, B>> {
    using value_type = typename A::value_type;
    static constexpr bool vectorizable =
        float_compute_v<value_type> && Evaluator<A>::vectorizable && Evaluator<B>::vectorizable;

    Evaluator(const BinaryExpr<Op, A, B>& e, const LoopPlan& plan) : a(e.lhs(), plan), b(e.rhs(), plan) {}
    bool rows_contiguous() const { return a.rows_contiguous() && b.rows_contiguous(); }
    void bind_row(const Index* outer) {
        a.bind_row(outer);
        b.bind_row(outer);
    }
    template <class V, bool Partial>
    V packet(Index i, int n) const {
        return round_as<value_type>(Op{}(a.template packet<V, Partial>(i, n), b.template packet<V, Partial>(i, n)));
    }
    compute_t<value_type> plain(Index i) const {
        if constexpr (float_compute_v<value_type>) return lane(packet<Vec1F, false>(i, 1));
        else return Op{}(a.plain(i), b.plain(i));
    }
    Evaluator<A> a;
    Evaluator<B> b;
};

template <class E> inline constexpr bool is_leaf_v = false;
template <class T> inline constexpr bool is_leaf_v<TensorView<T>> = true;
template <class T> inline constexpr bool is_leaf_v<Tensor<T>> = true;

template <class To, class A>
struct Evaluator<CastExpr<To, A>> {
    using value_type = To;
    using from_type = typename A::value_type;
    // Float packets come straight from the operand when it computes in float or is a tensor read
    // (which converts while loading); otherwise the operand is computed lane by lane.
    static constexpr bool packets_from_operand = float_compute_v<from_type> || is_leaf_v<A>;
    static constexpr bool vectorizable = float_compute_v<To> && packets_from_operand && Evaluator<A>::vectorizable;

    Evaluator(const CastExpr<To, A>& e, const LoopPlan& plan) : a(e.operand(), plan) {}
    bool rows_contiguous() const { return a.rows_contiguous(); }
    void bind_row(const Index* outer) { a.bind_row(outer); }
    template <class V, bool Partial>
    V packet(Index i, int n) const {
        if constexpr (packets_from_operand) return round_as<To>(a.template packet<V, Partial>(i, n));
        else return round_as<To>(V::broadcast(static_cast<float>(a.plain(i))));
    }
    compute_t<To> plain(Index i) const {
        if constexpr (float_compute_v<To>) return lane(packet<Vec1F, false>(i, 1));
        else return convert_saturating<To>(a.plain(i));
    }
    Evaluator<A> a;
};

}  // namespace weft::detail
