// weft/expr/nodes.hpp — the expression types (scalar, unary, binary, cast) and the operators and
// functions that build them: `a * b + c`, `exp(x)`, `max(x, 0.0f)`, `cast<float>(h)`.
// Building an expression checks shapes (numpy broadcasting) and dtypes; it computes nothing.
#pragma once

#include <type_traits>
#include <utility>

#include "weft/core/dtype.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/tensor.hpp"
#include "weft/expr/expression.hpp"
#include "weft/expr/functors.hpp"

namespace weft {

// ---- how operands are held -------------------------------------------------------------------
// Tensors are held as read-only views (cheap; the tensor must outlive the expression), except
// temporaries, which the expression takes over so that `auto e = x - row_max(x);` is safe.
// Other expressions are held by value (they are small).

namespace detail {
template <class E> struct node_of { using type = std::remove_cvref_t<E>; };
template <class T> struct node_of<TensorView<T>> { using type = TensorView<const T>; };
template <class T> struct node_of<TensorView<T>&> { using type = TensorView<const T>; };
template <class T> struct node_of<const TensorView<T>&> { using type = TensorView<const T>; };
template <class T> struct node_of<TensorView<T>&&> { using type = TensorView<const T>; };
template <class T> struct node_of<Tensor<T>&> { using type = TensorView<const T>; };
template <class T> struct node_of<const Tensor<T>&> { using type = TensorView<const T>; };
template <class T> struct node_of<Tensor<T>> { using type = Tensor<T>; };
template <class T> struct node_of<Tensor<T>&&> { using type = Tensor<T>; };
template <class T> struct node_of<const Tensor<T>> { using type = TensorView<const T>; };
}  // namespace detail

template <class E> using node_t = typename detail::node_of<E>::type;

template <class T> inline constexpr bool is_floating_v =
    std::is_floating_point_v<T> || std::is_same_v<T, f16> || std::is_same_v<T, bf16>;

// ---- ScalarExpr: one value, broadcast everywhere (rank 0) ----------------------------------

template <class T>
class ScalarExpr : public Expr<ScalarExpr<T>> {
public:
    using value_type = T;
    explicit ScalarExpr(compute_t<T> value) : value_(value) {}
    const Shape& shape() const { return shape_; }
    compute_t<T> value() const { return value_; }
    template <class F> void for_each_leaf(F&&) const {}

private:
    compute_t<T> value_;
    Shape shape_;
};

// ---- UnaryExpr: op(a) ----------------------------------------------------------------------

template <class Op, class A>
class UnaryExpr : public Expr<UnaryExpr<Op, A>> {
public:
    using value_type = typename A::value_type;
    static_assert(!Op::floating_only || is_floating_v<value_type>,
                  "weft: this operation needs a floating-point expression; convert integers with weft::cast<float>(x) first");

    template <class AA>
    explicit UnaryExpr(AA&& a) : a_(std::forward<AA>(a)) {}
    const Shape& shape() const { return a_.shape(); }
    const A& operand() const { return a_; }
    template <class F> void for_each_leaf(F&& f) const { a_.for_each_leaf(f); }

private:
    A a_;
};

// ---- BinaryExpr: op(a, b) with numpy broadcasting --------------------------------------------

template <class Op, class A, class B>
class BinaryExpr : public Expr<BinaryExpr<Op, A, B>> {
public:
    using value_type = typename A::value_type;
    static_assert(std::is_same_v<typename A::value_type, typename B::value_type>,
                  "weft: the two operands have different dtypes; convert one with weft::cast<T>(x) so both match");
    static_assert(!Op::floating_only || is_floating_v<value_type>,
                  "weft: this operation needs floating-point operands; convert integers with weft::cast<float>(x) first");

    template <class AA, class BB>
    BinaryExpr(AA&& a, BB&& b)
        : a_(std::forward<AA>(a)), b_(std::forward<BB>(b)), shape_(broadcast_shapes(a_.shape(), b_.shape(), Op::name)) {}
    const Shape& shape() const { return shape_; }
    const A& lhs() const { return a_; }
    const B& rhs() const { return b_; }
    template <class F> void for_each_leaf(F&& f) const {
        a_.for_each_leaf(f);
        b_.for_each_leaf(f);
    }

private:
    A a_;
    B b_;
    Shape shape_;
};

// ---- CastExpr: element type conversion ---------------------------------------------------------
// Float to integer truncates toward zero (as static_cast); to f16/bf16 rounds to nearest even.

template <class To, class A>
class CastExpr : public Expr<CastExpr<To, A>> {
public:
    using value_type = To;
    static_assert(is_element_type_v<To>, "weft: cast<T> needs T among float, f16, bf16, int32_t, int8_t, double");

    template <class AA>
    explicit CastExpr(AA&& a) : a_(std::forward<AA>(a)) {}
    const Shape& shape() const { return a_.shape(); }
    const A& operand() const { return a_; }
    template <class F> void for_each_leaf(F&& f) const { a_.for_each_leaf(f); }

private:
    A a_;
};

// ---- building expressions ----------------------------------------------------------------------

template <class T> concept ScalarOperand = std::is_arithmetic_v<std::remove_cvref_t<T>>;

namespace detail {
template <class Op, class A>
auto make_unary(A&& a) { return UnaryExpr<Op, node_t<A&&>>(std::forward<A>(a)); }

// A plain C++ number next to a tensor expression takes the expression's dtype. Floating numbers
// with an integer tensor are refused: that mix would silently truncate.
template <class E, class S>
auto scalar_like(S s) {
    using T = typename std::remove_cvref_t<E>::value_type;
    static_assert(is_floating_v<T> || std::is_integral_v<S>,
                  "weft: a floating-point number with an integer tensor; cast the tensor with weft::cast<float>(x) first");
    return ScalarExpr<T>(static_cast<compute_t<T>>(s));
}

template <class Op, class A, class B>
auto make_binary(A&& a, B&& b) {
    if constexpr (ScalarOperand<A>) {
        auto s = scalar_like<B>(a);
        return BinaryExpr<Op, decltype(s), node_t<B&&>>(s, std::forward<B>(b));
    } else if constexpr (ScalarOperand<B>) {
        auto s = scalar_like<A>(b);
        return BinaryExpr<Op, node_t<A&&>, decltype(s)>(std::forward<A>(a), s);
    } else {
        return BinaryExpr<Op, node_t<A&&>, node_t<B&&>>(std::forward<A>(a), std::forward<B>(b));
    }
}
}  // namespace detail

// An operand pair for a binary op: two expressions, or an expression and a number.
template <class A, class B>
concept BinaryOperands = (Expression<A> && Expression<B>) || (Expression<A> && ScalarOperand<B>) ||
                         (ScalarOperand<A> && Expression<B>);

#define WEFT_BINARY_OPERATOR(symbol, Op)                                             \
    template <class A, class B> requires BinaryOperands<A, B>                        \
    auto operator symbol(A&& a, B&& b) {                                             \
        return detail::make_binary<op::Op>(std::forward<A>(a), std::forward<B>(b));  \
    }
WEFT_BINARY_OPERATOR(+, Add)
WEFT_BINARY_OPERATOR(-, Sub)
WEFT_BINARY_OPERATOR(*, Mul)
WEFT_BINARY_OPERATOR(/, Div)
#undef WEFT_BINARY_OPERATOR

template <class A, class B> requires BinaryOperands<A, B>
auto min(A&& a, B&& b) { return detail::make_binary<op::Min>(std::forward<A>(a), std::forward<B>(b)); }
template <class A, class B> requires BinaryOperands<A, B>
auto max(A&& a, B&& b) { return detail::make_binary<op::Max>(std::forward<A>(a), std::forward<B>(b)); }
template <class A, class B> requires BinaryOperands<A, B>
auto pow(A&& a, B&& b) { return detail::make_binary<op::Pow>(std::forward<A>(a), std::forward<B>(b)); }

template <Expression A> auto operator-(A&& a) { return detail::make_unary<op::Neg>(std::forward<A>(a)); }
template <Expression A> auto abs(A&& a) { return detail::make_unary<op::Abs>(std::forward<A>(a)); }
template <Expression A> auto square(A&& a) { return detail::make_unary<op::Square>(std::forward<A>(a)); }
template <Expression A> auto sqrt(A&& a) { return detail::make_unary<op::Sqrt>(std::forward<A>(a)); }
template <Expression A> auto rsqrt(A&& a) { return detail::make_unary<op::Rsqrt>(std::forward<A>(a)); }
template <Expression A> auto exp(A&& a) { return detail::make_unary<op::Exp>(std::forward<A>(a)); }
template <Expression A> auto log(A&& a) { return detail::make_unary<op::Log>(std::forward<A>(a)); }
template <Expression A> auto tanh(A&& a) { return detail::make_unary<op::Tanh>(std::forward<A>(a)); }
template <Expression A> auto sigmoid(A&& a) { return detail::make_unary<op::Sigmoid>(std::forward<A>(a)); }
template <Expression A> auto silu(A&& a) { return detail::make_unary<op::Silu>(std::forward<A>(a)); }
template <Expression A> auto gelu(A&& a) { return detail::make_unary<op::Gelu>(std::forward<A>(a)); }

// cast<To>(x): the elements of x converted to To.
template <class To, Expression A>
auto cast(A&& a) { return CastExpr<To, node_t<A&&>>(std::forward<A>(a)); }

}  // namespace weft
