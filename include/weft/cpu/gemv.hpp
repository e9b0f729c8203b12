// weft/cpu/gemv.hpp — matrix × few vectors for decoding: out [M, N] = x [M, K] · W [N, K]ᵀ with W
// read once, in its stored dtype (f32, f16 or bf16, widened in registers), for M of 1 to ~8.
// Decoding is bound by reading W, so this kernel streams W's rows eight at a time and keeps x in
// L1. Each output is a dot product in a fixed order (SIMD lanes, then a fixed lane reduction):
// identical for any thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/gemm.hpp"
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

// Prefetching into L2 (gemm::prefetch_l2, prefetcht1). Eight or more rows read side by side are
// as many short streams (a few KiB each) that the hardware prefetchers ramp up on too late: each
// group of rows asks for the next group's lines, column by column, while it reads its own — one
// group (16–64 KiB) ahead. On Zen 4
// this took the bf16 GEMV from 70–80 % to 95 % of the DRAM read bandwidth (K = 2048 and 8192);
// prefetching each row's own line 512 bytes ahead into L1 gave 70–77 %, none at all 82 %.
using gemm::prefetch_l2;

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
// `next`: the R rows after these, prefetched to L2 as these are read (null: none).
template <int R, class W>
void gemv_rows(std::int64_t M, std::int64_t K, const float* x, std::int64_t ldx, const W* w, std::int64_t n0, const W* next,
               float* out, std::int64_t ldo) {
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
            if (next != nullptr && m == 0 && (k * static_cast<std::int64_t>(sizeof(W))) % 64 < static_cast<std::int64_t>(L * sizeof(W)))
                for (int r = 0; r < R; ++r) prefetch_l2(next + r * K + k);
        }
        if (k < K) {
            const int n = static_cast<int>(K - k);
            const VecF xv = VecF::load_partial(xm + k, n);
            for (int r = 0; r < R; ++r) acc[r] = simd::fmadd(xv, load_widened_partial<W, VecF>(w + (n0 + r) * K + k, n), acc[r]);
        }
        for (int r = 0; r < R; ++r) out[m * ldo + n0 + r] = simd::reduce_add(acc[r]);
    }
}

#if defined(WEFT_SIMD_AVX512)
// bf16 rows on AVX-512, a whole 64-byte line (32 values) per load: a bf16 is the top half of a
// float, so the even-indexed values are the line's 32-bit words shifted left by 16 and the odd
// ones the words with their low half cleared. x comes pre-split into even and odd halves
// (xe, xo: [M, K32/2] with K32 = K rounded down to 32); the last K − K32 values take the
// generic path. Half the instructions per byte of the generic kernel.
template <int R>
void gemv_rows_bf16_lines(std::int64_t M, std::int64_t K, const float* x, std::int64_t ldx, const float* xe, const float* xo,
                          const bf16* w, std::int64_t n0, const bf16* next, float* out, std::int64_t ldo) {
    using simd::VecF;
    const std::int64_t K32 = K / 32 * 32, half = K32 / 2;
    const __m512i high_half = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
    for (std::int64_t m = 0; m < M; ++m) {
        VecF even[R], odd[R], tail[R];
        for (int r = 0; r < R; ++r) even[r] = odd[r] = tail[r] = VecF::zero();
        for (std::int64_t k = 0; k < K32; k += 32) {
            const VecF e = VecF::load(xe + m * half + k / 2), o = VecF::load(xo + m * half + k / 2);
            for (int r = 0; r < R; ++r) {
                const bf16* line = w + (n0 + r) * K + k;
                if (next != nullptr && m == 0) prefetch_l2(next + r * K + k);
                const __m512i v = _mm512_loadu_si512(line);
                even[r] = simd::fmadd(e, VecF(_mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, v, 16))), even[r]);
                odd[r] = simd::fmadd(o, VecF(_mm512_castsi512_ps(_mm512_and_si512(v, high_half))), odd[r]);
            }
        }
        for (std::int64_t k = K32; k < K; k += VecF::width) {
            const int n = static_cast<int>(std::min<std::int64_t>(VecF::width, K - k));
            const VecF xv = VecF::load_partial(x + m * ldx + k, n);
            for (int r = 0; r < R; ++r) tail[r] = simd::fmadd(xv, VecF::load_bf16_partial(w + (n0 + r) * K + k, n), tail[r]);
        }
        for (int r = 0; r < R; ++r) out[m * ldo + n0 + r] = simd::reduce_add(even[r] + odd[r]) + simd::reduce_add(tail[r]);
    }
}
#endif

}  // namespace detail

// One matrix of a GEMV group: out [M, n] = x · wᵀ (w: [n, K] row-major, out rows ldo apart).
template <class W>
struct GemvPart {
    const W* w;
    std::int64_t n;
    float* out;
    std::int64_t ldo;
};

// out_i = x [M, K] · W_iᵀ for matrices that share x, as ONE parallel region over all their rows:
// small matrices (decoding small models) then share the threads' stream ramp-up and balance
// instead of each paying for it. Every row is computed exactly as gemv_nt computes it.
template <class W, std::size_t P>
void gemv_nt_group(std::int64_t M, std::int64_t K, const float* x, std::int64_t ldx, const std::array<GemvPart<W>, P>& parts) {
    static_assert(std::is_same_v<W, float> || std::is_same_v<W, f16> || std::is_same_v<W, bf16>,
                  "weft: gemv_nt reads f32, f16 or bf16 weights");
    std::int64_t total = 0;
    for (const auto& p : parts) total += p.n;
    const float* xe = nullptr;
    const float* xo = nullptr;
#if defined(WEFT_SIMD_AVX512)
    // bf16 on AVX-512 reads whole lines: x split into even- and odd-indexed halves, once per call.
    const bool lines = std::is_same_v<W, bf16> && K >= 32;
    if (lines) {
        const std::int64_t half = K / 32 * 16;
        thread_local std::vector<float> split;
        split.resize(static_cast<std::size_t>(2 * M * half));
        float* e = split.data();
        float* o = e + M * half;
        for (std::int64_t m = 0; m < M; ++m)
            for (std::int64_t j = 0; j < half; ++j) {
                e[m * half + j] = x[m * ldx + 2 * j];
                o[m * half + j] = x[m * ldx + 2 * j + 1];
            }
        xe = e;
        xo = o;
    }
#endif
    (void)xe, (void)xo;  // used by the AVX-512 bf16 path only
    // Rows [begin, end) of one matrix: eight at a time (eight streams in flight), then singly.
    auto rows = [&](const GemvPart<W>& p, std::int64_t begin, std::int64_t end) {
        std::int64_t n = begin;
        // The next eight rows of this matrix, if it has them (they may be another thread's: a
        // prefetch only warms the cache).
        auto next = [&](std::int64_t n0) { return n0 + 16 <= p.n ? p.w + (n0 + 8) * K : nullptr; };
#if defined(WEFT_SIMD_AVX512)
        if constexpr (std::is_same_v<W, bf16>) {
            if (lines) {
                for (; n + 8 <= end; n += 8) detail::gemv_rows_bf16_lines<8>(M, K, x, ldx, xe, xo, p.w, n, next(n), p.out, p.ldo);
                for (; n < end; ++n) detail::gemv_rows_bf16_lines<1>(M, K, x, ldx, xe, xo, p.w, n, static_cast<const bf16*>(nullptr), p.out, p.ldo);
                return;
            }
        }
#endif
        for (; n + 8 <= end; n += 8) detail::gemv_rows<8>(M, K, x, ldx, p.w, n, next(n), p.out, p.ldo);
        for (; n < end; ++n) detail::gemv_rows<1>(M, K, x, ldx, p.w, n, static_cast<const W*>(nullptr), p.out, p.ldo);
    };
    // Threads claim runs of the concatenated rows (multiples of 32) as they go: each output is
    // computed by one thread, the same way whichever thread it is.
    parallel_for_guided(total, 32, [&](std::int64_t begin, std::int64_t end) {
        std::int64_t first = 0;  // first concatenated row of the current part
        for (const auto& p : parts) {
            const std::int64_t b = std::max(begin, first), e = std::min(end, first + p.n);
            if (b < e) rows(p, b - first, e - first);
            first += p.n;
        }
    });
}

// out [M, N] = x [M, K] · w [N, K]ᵀ; x rows with stride ldx, out rows with stride ldo; w row-major.
template <class W>
void gemv_nt(std::int64_t M, std::int64_t N, std::int64_t K, const float* x, std::int64_t ldx, const W* w, float* out,
             std::int64_t ldo) {
    gemv_nt_group<W, 1>(M, K, x, ldx, {GemvPart<W>{w, N, out, ldo}});
}

}  // namespace weft::cpu
