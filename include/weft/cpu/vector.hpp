// weft/cpu/vector.hpp — small vector kernels on contiguous f32 rows (dot product, prefetch),
// each in a fixed summation order so that results never depend on threads. Used by blocks.
#pragma once

#include <cmath>
#include <cstdint>

#include "weft/cpu/simd.hpp"

namespace weft::cpu {

// Σ a[i]·b[i] over n floats: SIMD lanes, then the lane tail.
inline float dot(const float* a, const float* b, std::int64_t n) {
    using simd::VecF;
    VecF acc = VecF::zero();
    std::int64_t i = 0;
    for (; i + VecF::width <= n; i += VecF::width) acc = simd::fmadd(VecF::load(a + i), VecF::load(b + i), acc);
    float tail = 0;
    for (; i < n; ++i) tail = std::fma(a[i], b[i], tail);
    return simd::reduce_add(acc) + tail;
}

// Asks for the cache lines of n floats at p ahead of use (a hint: p may point past the data).
inline void prefetch_floats(const float* p, std::int64_t n) {
#if defined(__GNUC__)
    for (std::int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
#else
    (void)p;
    (void)n;
#endif
}

}  // namespace weft::cpu
