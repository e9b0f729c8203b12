// weft/expr/matmul.hpp — matrix products on f32 tensors, on weft's blocked GEMM (cpu/gemm.hpp):
//   matmul(a, b):    a [..., K] · b [K, N]   -> [..., N]
//   matmul_nt(a, w): a [..., K] · w[N, K]ᵀ   -> [..., N]   (weights stored [out, in], as in models)
// Leading axes of `a` are rows. Strided views are read in place where their layout allows.
#pragma once

#include <type_traits>

#include "weft/core/tensor.hpp"
#include "weft/cpu/gemm.hpp"
#include "weft/expr/assign.hpp"

namespace weft {

namespace detail {

// A rank-2 window on memory: element (r, c) at data[r * row_stride + c * col_stride].
struct MatrixRef {
    const float* data;
    Index rows, cols, row_stride, col_stride;
};

// Views `v` ([..., C]) as a [R, C] matrix if its leading axes can be merged into one without a
// copy; returns false otherwise.
inline bool as_matrix(const TensorView<const float>& v, MatrixRef& m) {
    const int r = v.rank();
    m.data = v.data();
    m.cols = v.shape()[r - 1];
    m.col_stride = v.strides()[r - 1];
    m.rows = 1;
    m.row_stride = m.cols * m.col_stride;
    Index expected = -1;  // stride the next-outer axis must have to merge
    for (int d = r - 2; d >= 0; --d) {
        const Index size = v.shape()[d], stride = v.strides()[d];
        if (size == 1) continue;
        if (expected == -1) m.row_stride = stride;
        else if (stride != expected) return false;
        expected = stride * size;
        m.rows *= size;
    }
    return true;
}

// An f32 operand as a readable view: tensors and views as they are, other expressions evaluated.
template <class E>
auto operand_view(const E& e, Tensor<float>& storage) {
    static_assert(std::is_same_v<typename E::value_type, float>,
                  "weft: matmul takes f32 operands; convert with weft::cast<float>(x)");
    if constexpr (is_leaf_v<E>) {
        (void)storage;
        if constexpr (std::is_same_v<E, Tensor<float>>) return e.view();
        else return TensorView<const float>(e);
    } else {
        storage = Tensor<float>(e);
        return TensorView<const float>(storage.view());
    }
}

inline MatrixRef matrix_or_copy(const TensorView<const float>& v, Tensor<float>& storage) {
    MatrixRef m;
    if (as_matrix(v, m)) return m;
    storage = Tensor<float>(v);
    as_matrix(storage.view(), m);
    return m;
}

inline bool overlaps(const TensorView<float>& out, const TensorView<const float>& in) {
    std::uintptr_t a0, a1, b0, b1;
    byte_range(out, a0, a1);
    byte_range(in, b0, b1);
    return out.numel() && in.numel() && a0 < b1 && b0 < a1;
}

// out [..., N] = a [..., K] · B where B(k, n) = b[k * b_rs + n * b_cs].
inline void matmul_into(const char* op, const TensorView<const float>& a, const TensorView<const float>& b,
                        bool b_transposed, TensorView<float> out) {
    if (a.rank() < 1 || b.rank() != 2)
        fail(op, ": needs a of rank >= 1 and a matrix b, got shapes ", a.shape(), " and ", b.shape());
    const Index K = a.shape()[a.rank() - 1];
    const Index bk = b_transposed ? b.shape()[1] : b.shape()[0];
    const Index N = b_transposed ? b.shape()[0] : b.shape()[1];
    if (K != bk) fail(op, ": inner sizes differ: shapes ", a.shape(), " and ", b.shape());
    Shape expected = a.shape();
    expected[expected.rank() - 1] = N;
    if (!(out.shape() == expected)) fail(op, ": output of shape ", out.shape(), " for inputs ", a.shape(), " and ", b.shape(), " (expected ", expected, ")");
    if (out.numel() == 0) return;

    Tensor<float> a_copy, b_copy;
    const MatrixRef am = matrix_or_copy(a, a_copy);
    // B's two axes are used with any strides; no copy needed.
    const Index b_rs = b_transposed ? b.strides()[1] : b.strides()[0];
    const Index b_cs = b_transposed ? b.strides()[0] : b.strides()[1];
    const bool direct = out.is_contiguous() && !overlaps(out, a) && !overlaps(out, b);
    if (direct) {
        cpu::gemm_f32(am.rows, N, K, am.data, am.row_stride, am.col_stride, b.data(), b_rs, b_cs, out.data(), N);
    } else {
        Tensor<float> staged = Tensor<float>::uninitialized(expected);
        cpu::gemm_f32(am.rows, N, K, am.data, am.row_stride, am.col_stride, b.data(), b_rs, b_cs, staged.data(), N);
        assign(out, staged);
    }
}

template <class A, class B>
Shape product_shape(const A& a, const B& b, bool b_transposed) {
    Shape s = a.shape();
    if (s.rank() == 0 || b.shape().rank() != 2) return s;  // matmul_into reports the error
    s[s.rank() - 1] = b_transposed ? b.shape()[0] : b.shape()[1];
    return s;
}

}  // namespace detail

// a [..., K] · b [K, N] -> [..., N]
template <class A, class B>
Tensor<float> matmul(const Expr<A>& a, const Expr<B>& b) {
    Tensor<float> sa, sb;
    const auto av = detail::operand_view(a.derived(), sa);
    const auto bv = detail::operand_view(b.derived(), sb);
    Tensor<float> out = Tensor<float>::uninitialized(detail::product_shape(av, bv, false));
    detail::matmul_into("matmul", av, bv, false, out.view());
    return out;
}
template <class A, class B>
void matmul(const Expr<A>& a, const Expr<B>& b, TensorView<float> out) {
    Tensor<float> sa, sb;
    detail::matmul_into("matmul", detail::operand_view(a.derived(), sa), detail::operand_view(b.derived(), sb), false, out);
}

// a [..., K] · w [N, K]ᵀ -> [..., N]: a linear layer with weights stored [out_features, in_features].
template <class A, class W>
Tensor<float> matmul_nt(const Expr<A>& a, const Expr<W>& w) {
    Tensor<float> sa, sw;
    const auto av = detail::operand_view(a.derived(), sa);
    const auto wv = detail::operand_view(w.derived(), sw);
    Tensor<float> out = Tensor<float>::uninitialized(detail::product_shape(av, wv, true));
    detail::matmul_into("matmul_nt", av, wv, true, out.view());
    return out;
}
template <class A, class W>
void matmul_nt(const Expr<A>& a, const Expr<W>& w, TensorView<float> out) {
    Tensor<float> sa, sw;
    detail::matmul_into("matmul_nt", detail::operand_view(a.derived(), sa), detail::operand_view(w.derived(), sw), true, out);
}

}  // namespace weft
