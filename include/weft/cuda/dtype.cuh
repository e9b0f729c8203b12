// weft/cuda/dtype.cuh — element types on the device: loading f32/f16/bf16/i32/i8/f64 into their
// compute type (float for the 16-bit floats), storing back with round-to-nearest-even, and the
// saturating conversions of weft::cast. Mirrors core/dtype.hpp and expr/evaluator.hpp bit for bit.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "weft/core/dtype.hpp"

namespace weft::cuda::detail {

// ---- 16-bit floats, from and to their bits ------------------------------------------------------

__device__ __forceinline__ float f16_to_float(std::uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
__device__ __forceinline__ std::uint16_t float_to_f16(float f) { return __half_as_ushort(__float2half_rn(f)); }
__device__ __forceinline__ float bf16_to_float(std::uint16_t bits) { return __uint_as_float(std::uint32_t(bits) << 16); }
// Round to nearest even; NaN stays NaN (quieted), as weft::float_to_bf16_bits.
__device__ __forceinline__ std::uint16_t float_to_bf16(float f) {
    const std::uint32_t x = __float_as_uint(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
    return static_cast<std::uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

template <class T> inline constexpr bool is_half_v = std::is_same_v<T, f16> || std::is_same_v<T, bf16>;
template <class T> inline constexpr bool float_compute_v = std::is_same_v<compute_t<T>, float>;

// ---- loads and stores of any element type --------------------------------------------------------

template <class T>
__device__ __forceinline__ compute_t<T> load(const T* p) {
    using U = std::remove_const_t<T>;
    if constexpr (std::is_same_v<U, f16>) return f16_to_float(*reinterpret_cast<const std::uint16_t*>(p));
    else if constexpr (std::is_same_v<U, bf16>) return bf16_to_float(*reinterpret_cast<const std::uint16_t*>(p));
    else return *p;
}

// Stores a compute-type value (already rounded to T's precision for f16/bf16).
template <class T>
__device__ __forceinline__ void store(T* p, compute_t<T> v) {
    if constexpr (std::is_same_v<T, f16>) *reinterpret_cast<std::uint16_t*>(p) = float_to_f16(v);
    else if constexpr (std::is_same_v<T, bf16>) *reinterpret_cast<std::uint16_t*>(p) = float_to_bf16(v);
    else *p = v;
}

// Rounds a float result to the precision of T (f16/bf16 arithmetic rounds after each op).
template <class T, class V>
__device__ __forceinline__ V round_as(V v) {
    if constexpr (std::is_same_v<T, f16>) return f16_to_float(float_to_f16(v));
    else if constexpr (std::is_same_v<T, bf16>) return bf16_to_float(float_to_bf16(v));
    else return v;
}

// Integer limits without calling constexpr host functions from device code.
template <class T> struct int_limits;
template <> struct int_limits<std::int32_t> { static constexpr std::int32_t lo = -2147483647 - 1, hi = 2147483647; };
template <> struct int_limits<std::int8_t> { static constexpr std::int8_t lo = -128, hi = 127; };

// Float or integer -> To, saturating for integers (NaN -> 0): weft::detail::convert_saturating.
template <class To, class From>
__device__ __forceinline__ To convert_saturating(From x) {
    if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
        if (x != x) return To(0);
        if (x <= From(int_limits<To>::lo)) return int_limits<To>::lo;
        if (x >= From(int_limits<To>::hi)) return int_limits<To>::hi;
        return static_cast<To>(x);
    } else if constexpr (std::is_integral_v<To> && std::is_integral_v<From> && (sizeof(To) < sizeof(From))) {
        if (x < From(int_limits<To>::lo)) return int_limits<To>::lo;
        if (x > From(int_limits<To>::hi)) return int_limits<To>::hi;
        return static_cast<To>(x);
    } else {
        return static_cast<To>(x);
    }
}

// ---- small device helpers (std::min/max are host constexpr functions) -------------------------------

template <class T> __device__ __forceinline__ T dmin(T a, T b) { return b < a ? b : a; }
template <class T> __device__ __forceinline__ T dmax(T a, T b) { return a < b ? b : a; }
// max that propagates NaN (as torch.maximum and weft's row_max).
__device__ __forceinline__ float nan_max(float a, float b) { return (a != a || b != b) ? a + b : (a < b ? b : a); }

}  // namespace weft::cuda::detail
