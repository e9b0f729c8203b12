// weft/expr/assign.hpp — evaluating an expression into a tensor: assign(dst, expr) runs the whole
// expression in ONE pass over dst (SIMD on contiguous rows, lane by lane on strided ones), split
// over threads in fixed contiguous chunks; eval(expr) does the same into a new tensor.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "weft/core/tensor.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/simd.hpp"
#include "weft/expr/evaluator.hpp"
#include "weft/expr/nodes.hpp"

namespace weft {

namespace detail {

// Elements per parallel chunk: small expressions run on the calling thread.
inline constexpr Index elementwise_grain = 16384;

// f32 outputs of at least this many bytes are written with streaming stores: they would evict
// everything else from the caches anyway, and skipping the read-for-ownership of each output line
// saves a fifth of the memory traffic of `a * b + c`.
inline constexpr Index streaming_store_bytes = Index(8) << 20;

// Makes streaming stores visible to other threads (they are weakly ordered on x86).
inline void streaming_store_fence() {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

// Byte range [lo, hi) touched by a view.
template <class T>
void byte_range(const TensorView<T>& v, std::uintptr_t& lo, std::uintptr_t& hi) {
    Index min_off = 0, max_off = 0;
    for (int d = 0; d < v.rank(); ++d) {
        const Index span = (v.shape()[d] - 1) * v.strides()[d];
        (span < 0 ? min_off : max_off) += span;
    }
    lo = reinterpret_cast<std::uintptr_t>(v.data() + min_off);
    hi = reinterpret_cast<std::uintptr_t>(v.data() + max_off + 1);
}

// True when some operand of `e` reads memory that `dst` writes other than the very element being
// written (e.g. `x = transpose(x)`, `x[1:] = x[:-1]`): then evaluating in place would read
// elements already overwritten.
template <class T, class E>
bool reads_overwritten_elements(const TensorView<T>& dst, const E& e) {
    std::uintptr_t dlo, dhi;
    byte_range(dst, dlo, dhi);
    const Strides dst_strides = dst.strides();
    bool unsafe = false;
    e.for_each_leaf([&](const auto& leaf) {
        std::uintptr_t lo, hi;
        byte_range(leaf, lo, hi);
        if (leaf.numel() == 0 || hi <= dlo || dhi <= lo) return;
        using L = typename std::remove_cvref_t<decltype(leaf)>::value_type;
        bool same_elements = std::is_same_v<L, T> &&
                             reinterpret_cast<std::uintptr_t>(leaf.data()) == reinterpret_cast<std::uintptr_t>(dst.data());
        if (same_elements) {
            const Strides s = broadcast_strides(leaf.shape(), leaf.strides(), dst.shape());
            for (int d = 0; d < dst.rank(); ++d)
                if (dst.shape()[d] > 1 && s[d] != dst_strides[d]) same_elements = false;
        }
        if (!same_elements) unsafe = true;
    });
    return unsafe;
}

// The destination side of the loop.
template <class T>
struct Destination {
    Destination(const TensorView<T>& v, const LoopPlan& plan)
        : base(v.data()), strides(plan.loop_strides(v.strides())), inner(strides[strides.rank() - 1]), row(base) {}
    void bind_row(const Index* outer) {
        Index off = 0;
        for (int d = 0; d + 1 < strides.rank(); ++d) off += outer[d] * strides[d];
        row = base + off;
    }
    template <class V>
    void store(Index i, V v) const {
        T* p = row + i * inner;
        if constexpr (std::is_same_v<T, float>) v.store(p);
        else if constexpr (std::is_same_v<T, f16>) simd::store_f16(p, v);
        else simd::store_bf16(p, v);
    }
    void store_partial(Index i, VecF v, int n) const {
        T* p = row + i;
        if constexpr (std::is_same_v<T, float>) v.store_partial(p, n);
        else if constexpr (std::is_same_v<T, f16>) simd::store_f16_partial(p, v, n);
        else simd::store_bf16_partial(p, v, n);
    }
    T* base;
    Strides strides;
    Index inner;
    T* row;
};

// Computes elements [begin, end) of the current row.
template <class T, class Ev>
void run_row_segment(const Ev& ev, const Destination<T>& dst, Index begin, Index end, bool use_packets, bool stream) {
    if constexpr (float_compute_v<T>) {
        if constexpr (Ev::vectorizable) {
            if (use_packets) {
                constexpr int W = VecF::width;
                Index i = begin;
                if constexpr (std::is_same_v<T, float>) {
                    if (stream) {
                        // Lanes one by one (same bits) up to an aligned address, then whole lines.
                        for (; i < end && reinterpret_cast<std::uintptr_t>(dst.row + i) % sizeof(VecF) != 0; ++i)
                            dst.store(i, ev.template packet<Vec1F, false>(i, 1));
                        for (; i + W <= end; i += W) simd::store_stream(dst.row + i, ev.template packet<VecF, false>(i, W));
                    }
                }
                for (; i + W <= end; i += W) dst.store(i, ev.template packet<VecF, false>(i, W));
                if (i < end) {
                    const int n = static_cast<int>(end - i);
                    dst.store_partial(i, ev.template packet<VecF, true>(i, n), n);
                }
                return;
            }
        }
        for (Index i = begin; i < end; ++i) dst.store(i, ev.template packet<Vec1F, false>(i, 1));
    } else {
        for (Index i = begin; i < end; ++i) dst.row[i * dst.inner] = convert_saturating<T>(ev.plain(i));
    }
}

}  // namespace detail

template <class T, class E>
void assign(TensorView<T> dst, const Expr<E>& expression) {
    static_assert(!std::is_const_v<T>, "weft: cannot assign to a read-only view (TensorView<const T>)");
    const E& e = expression.derived();
    static_assert(std::is_same_v<typename E::value_type, T>,
                  "weft: the expression's dtype differs from the destination's; convert it with weft::cast<T>(expr)");
    if (!(broadcast_shapes(dst.shape(), e.shape(), "assign") == dst.shape()))
        fail("assign: an expression of shape ", e.shape(), " does not fit a destination of shape ", dst.shape());
    if (dst.numel() == 0) return;

    if (detail::reads_overwritten_elements(dst, e)) {
        Tensor<T> staged = Tensor<T>::uninitialized(dst.shape());
        assign(staged.view(), e);
        assign(dst, staged);
        return;
    }

    const detail::LoopPlan plan = detail::make_plan(dst.shape(), false, [&](auto&& f) {
        f(dst.strides());
        detail::visit_leaf_strides(e, dst.shape(), f);
    });
    const detail::Evaluator<E> ev(e, plan);
    const detail::Destination<T> out(dst, plan);
    const bool use_packets = ev.rows_contiguous() && out.inner == 1;
    const bool stream = use_packets && std::is_same_v<T, float> &&
                        dst.numel() * static_cast<Index>(sizeof(T)) >= detail::streaming_store_bytes;
    const Index row_len = plan.row_length();

    parallel_for(plan.rows() * row_len, detail::elementwise_grain, [&](Index begin, Index end) {
        detail::Evaluator<E> local_ev = ev;  // each thread walks its own rows
        detail::Destination<T> local_out = out;
        Index outer[max_rank] = {};
        for (Index linear = begin; linear < end;) {
            const Index row = linear / row_len, col = linear % row_len;
            const Index len = std::min(row_len - col, end - linear);
            plan.unravel_row(row, outer);
            local_ev.bind_row(outer);
            local_out.bind_row(outer);
            detail::run_row_segment(local_ev, local_out, col, col + len, use_packets, stream);
            linear += len;
        }
        if (stream) detail::streaming_store_fence();
    });
}

// Evaluates an expression into a new tensor.
template <class E>
Tensor<typename E::value_type> eval(const Expr<E>& e) { return Tensor<typename E::value_type>(e); }

}  // namespace weft
