// weft/cpu/vector.hpp — small vector kernels on contiguous f32 rows (dot product, scaled add),
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

// y[i] = y[i]·scale + alpha·x[i] over n floats.
inline void scale_add(float* y, float scale, float alpha, const float* x, std::int64_t n) {
    using simd::VecF;
    std::int64_t i = 0;
    for (; i + VecF::width <= n; i += VecF::width)
        simd::fmadd(VecF::broadcast(alpha), VecF::load(x + i), VecF::load(y + i) * VecF::broadcast(scale)).store(y + i);
    for (; i < n; ++i) y[i] = std::fma(alpha, x[i], y[i] * scale);
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
