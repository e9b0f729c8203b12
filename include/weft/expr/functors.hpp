// weft/expr/functors.hpp — the elementwise operations. Each functor holds ONE templated body
// that runs on SIMD packets (simd::VecF), on single lanes (simd::Vec1F) and on plain double or
// integer values, so an element gets the same bits whichever path computes it.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "weft/cpu/simd.hpp"
#include "weft/cpu/vmath.hpp"

namespace weft::op {

template <class V> inline constexpr bool is_plain_v = std::is_arithmetic_v<V>;

// ---- unary --------------------------------------------------------------------------------
// `floating_only`: the op needs a floating-point expression (exp of an int tensor is refused).

struct Neg {
    static constexpr const char* name = "neg";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a) const { return -a; }
};
struct Abs {
    static constexpr const char* name = "abs";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return a < 0 ? V(-a) : a;
        else return simd::abs(a);
    }
};
struct Square {
    static constexpr const char* name = "square";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a) const { return a * a; }
};
struct Sqrt {
    static constexpr const char* name = "sqrt";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return std::sqrt(a);
        else return simd::sqrt(a);
    }
};
struct Rsqrt {
    static constexpr const char* name = "rsqrt";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return 1 / std::sqrt(a);
        else return simd::rsqrt(a);
    }
};
struct Exp {
    static constexpr const char* name = "exp";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return std::exp(a);
        else return simd::exp(a);
    }
};
struct Log {
    static constexpr const char* name = "log";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return std::log(a);
        else return simd::log(a);
    }
};
struct Tanh {
    static constexpr const char* name = "tanh";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return std::tanh(a);
        else return simd::tanh(a);
    }
};
struct Sigmoid {
    static constexpr const char* name = "sigmoid";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return 1 / (1 + std::exp(-a));
        else return simd::sigmoid(a);
    }
};
struct Silu {
    static constexpr const char* name = "silu";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return a / (1 + std::exp(-a));
        else return simd::silu(a);
    }
};
// GELU in its exact form, 0.5·x·(1 + erf(x/√2)) (PyTorch's default).
struct Gelu {
    static constexpr const char* name = "gelu";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a) const {
        if constexpr (is_plain_v<V>) return V(0.5) * a * (1 + std::erf(a * V(0.70710678118654752440)));
        else return simd::gelu(a);
    }
};

// ---- binary -------------------------------------------------------------------------------

struct Add {
    static constexpr const char* name = "add";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a, V b) const { return a + b; }
};
struct Sub {
    static constexpr const char* name = "sub";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a, V b) const { return a - b; }
};
struct Mul {
    static constexpr const char* name = "mul";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a, V b) const { return a * b; }
};
// Integer division truncates toward zero, as in C++ (division by zero is the caller's to avoid).
struct Div {
    static constexpr const char* name = "div";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a, V b) const { return a / b; }
};
// min/max propagate NaN on every path (as torch.minimum/maximum do).
struct Min {
    static constexpr const char* name = "min";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a, V b) const {
        if constexpr (std::is_floating_point_v<V>) return (a != a || b != b) ? a + b : (b < a ? b : a);
        else if constexpr (is_plain_v<V>) return b < a ? b : a;
        else return simd::min(a, b);
    }
};
struct Max {
    static constexpr const char* name = "max";
    static constexpr bool floating_only = false;
    template <class V> V operator()(V a, V b) const {
        if constexpr (std::is_floating_point_v<V>) return (a != a || b != b) ? a + b : (a < b ? b : a);
        else if constexpr (is_plain_v<V>) return a < b ? b : a;
        else return simd::max(a, b);
    }
};
struct Pow {
    static constexpr const char* name = "pow";
    static constexpr bool floating_only = true;
    template <class V> V operator()(V a, V b) const {
        if constexpr (is_plain_v<V>) return std::pow(a, b);
        else return simd::pow(a, b);
    }
};

}  // namespace weft::op
