// weft/expr/expression.hpp — the base of every lazy tensor expression (CRTP, as in Eigen and
// xtensor). An expression only says *what* to compute; expr/evaluator.hpp says *how*, and
// nothing runs until an expression is assigned to a tensor or passed to eval().
#pragma once

#include <type_traits>

namespace weft {

// Every expression type E derives from Expr<E>. E provides:
//   using value_type = ...;   // the element type of the result (float, f16, bf16, int32_t, ...)
//   const Shape& shape() const;
//   template <class F> void for_each_leaf(F&& f) const;   // visits the tensors it reads
template <class Derived>
struct Expr {
    const Derived& derived() const { return static_cast<const Derived&>(*this); }
};

template <class E>
inline constexpr bool is_expr_v = std::is_base_of_v<Expr<std::remove_cvref_t<E>>, std::remove_cvref_t<E>>;

template <class E>
concept Expression = is_expr_v<E>;

}  // namespace weft
