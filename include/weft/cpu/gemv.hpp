// weft/cpu/gemv.hpp — matrix × few vectors for decoding: out [M, N] = x [M, K] · W [N, K]ᵀ with W
// read once, in its stored dtype (f32, f16 or bf16, widened in registers), for M of 1 to ~8.
// Decoding is bound by reading W, so this kernel streams W's rows eight at a time and keeps x in
// L1. Each output is a dot product in a fixed order (SIMD lanes, then a fixed lane reduction):
// identical for any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "weft/core/dtype.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/simd.hpp"

namespace weft::cpu {

namespace detail {

inline void prefetch(const void* p) {
#if defined(__GNUC__)
    __builtin_prefetch(p, 0, 3);
#else
    (void)p;
#endif
}

template <class W, class V>
V load_widened(const W* p) {
    if constexpr (std::is_same_v<W, float>) return V::load(p);
    else if constexpr (std::is_same_v<W, f16>) return V::load_f16(p);
    else return V::load_bf16(p);
}
template <class W, class V>
V load_widened_partial(const W* p, int n) {
    if constexpr (std::is_same_v<W, float>) return V::load_partial(p, n);
    else if constexpr (std::is_same_v<W, f16>) return V::load_f16_partial(p, n);
    else return V::load_bf16_partial(p, n);
}

// out[m, n0 + r] = x[m, :] · w[n0 + r, :] for r < R rows of W.
template <int R, class W>
void gemv_rows(std::int64_t M, std::int64_t K, const float* x, std::int64_t ldx, const W* w, std::int64_t n0, float* out,
               std::int64_t ldo) {
    using simd::VecF;
    constexpr int L = VecF::width;
    for (std::int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * ldx;
        VecF acc[R];
        for (int r = 0; r < R; ++r) acc[r] = VecF::zero();
        std::int64_t k = 0;
        for (; k + L <= K; k += L) {
            const VecF xv = VecF::load(xm + k);
            for (int r = 0; r < R; ++r) acc[r] = simd::fmadd(xv, load_widened<W, VecF>(w + (n0 + r) * K + k), acc[r]);
            // Rows are short streams (a few KiB) that the hardware prefetcher is slow to ramp up
            // on: ask for each row's line 512 bytes ahead, once per line (measured best of
            // 256 .. 2048 bytes; prefetching past W is harmless).
            if (m == 0 && (k * static_cast<std::int64_t>(sizeof(W))) % 64 < static_cast<std::int64_t>(L * sizeof(W)))
                for (int r = 0; r < R; ++r) prefetch(w + (n0 + r) * K + k + 512 / static_cast<std::int64_t>(sizeof(W)));
        }
        if (k < K) {
            const int n = static_cast<int>(K - k);
            const VecF xv = VecF::load_partial(xm + k, n);
            for (int r = 0; r < R; ++r) acc[r] = simd::fmadd(xv, load_widened_partial<W, VecF>(w + (n0 + r) * K + k, n), acc[r]);
        }
        for (int r = 0; r < R; ++r) out[m * ldo + n0 + r] = simd::reduce_add(acc[r]);
    }
}

}  // namespace detail

// out [M, N] = x [M, K] · w [N, K]ᵀ; x rows with stride ldx, out rows with stride ldo; w row-major.
template <class W>
void gemv_nt(std::int64_t M, std::int64_t N, std::int64_t K, const float* x, std::int64_t ldx, const W* w, float* out,
             std::int64_t ldo) {
    static_assert(std::is_same_v<W, float> || std::is_same_v<W, f16> || std::is_same_v<W, bf16>,
                  "weft: gemv_nt reads f32, f16 or bf16 weights");
    // Threads take runs of rows (multiples of 64): each output is computed by exactly one thread.
    // Eight rows at a time: eight streams in flight, x reused from registers/L1.
    parallel_for(N, 64, [&](std::int64_t begin, std::int64_t end) {
        std::int64_t n = begin;
        for (; n + 8 <= end; n += 8) detail::gemv_rows<8>(M, K, x, ldx, w, n, out, ldo);
        for (; n < end; ++n) detail::gemv_rows<1>(M, K, x, ldx, w, n, out, ldo);
    });
}

}  // namespace weft::cpu
