// weft/cpu/gemm_bf16.hpp — out [M, N] = x [M, K] · w [N, K]ᵀ for bf16 / f16 weights on bf16 dot
// products (vdpbf16ps, AVX512-BF16: AMD Zen 4 and later, Intel Cooper Lake, Sapphire Rapids and
// later): the prefill GEMM of 16-bit models at twice the f32 FMA rate.
//
// What it computes. Activations are rounded to bf16 (to nearest, ties to even), f16 weights too
// (bf16 weights are used as stored), and pairs of products are added into f32 accumulators:
//   acc = 0;  for p = 0 .. ⌈K/2⌉ − 1 in order:  acc = dpbf16(acc, (x[2p], x[2p+1]), (w[2p], w[2p+1]))
// (an odd K pads with a zero). Each output is this one chain whatever M, N, the tiling or the
// thread count, so results are deterministic and a row of out does not depend on the batch. The
// rounding of x costs about 2^-9 relative per product: the precision of llama.cpp's bf16 path and
// of bf16 frameworks (f16 weights lose 3 more mantissa bits, where llama.cpp rounds x to f16
// instead). nn::Linear uses this kernel only under the opt-in MatmulPrecision::fast; the default,
// MatmulPrecision::exact, widens the weights for the f32 GEMM (nn/linear.hpp).
//
// Layout. x is rounded once per call into xb [M, 2·⌈K/2⌉] bf16 (rows padded, see xb_stride), so
// the dword at pair p of row m is the (x[2p], x[2p+1]) that vdpbf16ps broadcasts. Weight rows are
// taken 32 at a time (a panel) and K in blocks of 512 pairs: each block is packed as [pair][32
// rows] dwords (16×16 dword transposes of the rows' 64-byte lines; 64 KiB, in L2) and run past
// every activation row, 12 rows × 32 outputs per microkernel call (24 accumulators). Threads
// split the panels.
#pragma once

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512BF16__)
#define WEFT_GEMM_BF16 1

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/storage.hpp"
#include "weft/core/threading.hpp"

namespace weft::cpu {

namespace detail::gemm_bf16 {

using index = std::int64_t;

inline constexpr index kRows = 32;     // weight rows per panel (two vectors of 16 outputs)
inline constexpr index kPairs = 512;   // K pairs per packed block: 32 rows × 512 dwords = 64 KiB
inline constexpr int kMR = 12;         // activation rows per microkernel call

inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }
inline __m512i as_i(__m512bh v) { return (__m512i)v; }

// The first n of 16 lanes (n clamped to 0 .. 16).
inline __mmask16 first16(index n) {
    return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : static_cast<__mmask16>((1u << n) - 1);
}
inline __mmask32 first32(index n) {
    return n >= 32 ? __mmask32(0xFFFFFFFFu) : n <= 0 ? __mmask32(0) : static_cast<__mmask32>((1u << n) - 1);
}

// Dwords between rows of xb: KP rounded up to a line, plus one line. The kernel reads kMR rows
// side by side; rows a multiple of 4 KiB apart (K a multiple of 2048) would all fall into one
// L1 set (8 ways) and evict each other: 6–16 % slower on Zen 4.
inline index xb_stride(index KP) { return (KP + 15) / 16 * 16 + 16; }

// Rows m of x [M, K] to bf16 pairs: xb row m = 2·KP bf16 (KP dwords, rows ldxb dwords apart),
// zero-padded.
inline void round_activations(index M, index K, index KP, const float* x, index ldx, std::uint32_t* xb, index ldxb) {
    parallel_for(M, 16, [&](index m0, index m1) {
        for (index m = m0; m < m1; ++m) {
            const float* src = x + m * ldx;
            std::uint32_t* dst = xb + m * ldxb;
            for (index k = 0; k < 2 * KP; k += 32) {
                const __m512 lo = _mm512_maskz_loadu_ps(first16(K - k), src + k);
                const __m512 hi = k + 16 < K ? _mm512_maskz_loadu_ps(first16(K - k - 16), src + k + 16) : _mm512_setzero_ps();
                const __m512i v = as_i(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_mask_storeu_epi32(dst + k / 2, first16(KP - k / 2), v);
            }
        }
    });
}

// r[j] lane i ← r[i] lane j (16 × 16 dwords). (The maskz_ forms with a full mask compile to the
// plain instructions; the plain intrinsics trip GCC 12's -Wmaybe-uninitialized.)
inline void transpose16(__m512i r[16]) {
    constexpr __mmask16 all = 0xFFFF;
    constexpr __mmask8 all8 = 0xFF;
    __m512i t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_maskz_unpacklo_epi32(all, r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_maskz_unpackhi_epi32(all, r[2 * i], r[2 * i + 1]);
    }
    __m512i u[16];  // u[4i + e], 128-bit lane l: rows 4i .. 4i+3 of dword 4l + e
    for (int i = 0; i < 4; ++i) {
        u[4 * i + 0] = _mm512_maskz_unpacklo_epi64(all8, t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_maskz_unpackhi_epi64(all8, t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_maskz_unpacklo_epi64(all8, t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_maskz_unpackhi_epi64(all8, t[4 * i + 1], t[4 * i + 3]);
    }
    for (int e = 0; e < 4; ++e) {  // 4 × 4 transpose of 128-bit lanes across u[e], u[4 + e], ...
        const __m512i v0 = _mm512_maskz_shuffle_i32x4(all, u[e], u[4 + e], 0x44);
        const __m512i v1 = _mm512_maskz_shuffle_i32x4(all, u[e], u[4 + e], 0xEE);
        const __m512i v2 = _mm512_maskz_shuffle_i32x4(all, u[8 + e], u[12 + e], 0x44);
        const __m512i v3 = _mm512_maskz_shuffle_i32x4(all, u[8 + e], u[12 + e], 0xEE);
        r[0 + e] = _mm512_maskz_shuffle_i32x4(all, v0, v2, 0x88);
        r[4 + e] = _mm512_maskz_shuffle_i32x4(all, v0, v2, 0xDD);
        r[8 + e] = _mm512_maskz_shuffle_i32x4(all, v1, v3, 0x88);
        r[12 + e] = _mm512_maskz_shuffle_i32x4(all, v1, v3, 0xDD);
    }
}

// 32 values of row `row` from k on (zeros past K), as bf16.
template <class W>
__m512i load_line(const W* row, index k, index K) {
    if constexpr (std::is_same_v<W, bf16>) {
        return _mm512_maskz_loadu_epi16(first32(K - k), row + k);
    } else {
        const __m512 lo = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_maskz_loadu_epi16(first16(K - k), row + k));
        const __m512 hi = k + 16 < K ? _mm512_maskz_cvtph_ps(0xFFFF, _mm256_maskz_loadu_epi16(first16(K - k - 16), row + k + 16))
                                     : _mm512_setzero_ps();
        return as_i(_mm512_cvtne2ps_pbh(hi, lo));
    }
}

// Packs pairs [p0, p0 + pc) of weight rows [n0, n0 + rows) (rows ≤ 32; missing rows are zero) as
// packed[p][r] = (w[n0 + r, 2(p0 + p)], w[n0 + r, 2(p0 + p) + 1]).
template <class W>
void pack_panel(const W* w, index K, index n0, index rows, index p0, index pc, std::uint32_t* packed) {
    for (index half = 0; half < 2; ++half)
        for (index c = 0; c < pc; c += 16) {
            __m512i r[16];
            const index k = 2 * (p0 + c);
            for (index i = 0; i < 16; ++i) {
                const index row = 16 * half + i;
                r[i] = row < rows ? load_line(w + (n0 + row) * K, k, K) : _mm512_setzero_si512();
            }
            transpose16(r);
            const index n = std::min<index>(16, pc - c);
            for (index j = 0; j < n; ++j) _mm512_store_si512(packed + (c + j) * kRows + 16 * half, r[j]);
        }
}

// out rows [0, MR) × columns [0, cols) (+)= pairs [0, pc) of xb rows (ldx dwords apart) · packed.
template <int MR>
void kernel(index pc, const std::uint32_t* xb, index ldx, const std::uint32_t* packed, float* out, index ldo, index cols,
            bool accumulate) {
    const __mmask16 m0 = first16(cols), m1 = first16(cols - 16);
    __m512 acc[MR][2];
    const bool wide = cols > 16;  // (no address past out's row is formed otherwise)
    for (int m = 0; m < MR; ++m) {
        acc[m][0] = accumulate ? _mm512_maskz_loadu_ps(m0, out + m * ldo) : _mm512_setzero_ps();
        acc[m][1] = accumulate && wide ? _mm512_maskz_loadu_ps(m1, out + m * ldo + 16) : _mm512_setzero_ps();
    }
    for (index p = 0; p < pc; ++p) {
        const __m512bh b0 = as_bh(_mm512_load_si512(packed + p * kRows)), b1 = as_bh(_mm512_load_si512(packed + p * kRows + 16));
#pragma GCC unroll 12
        for (int m = 0; m < MR; ++m) {
            const __m512bh a = as_bh(_mm512_set1_epi32(static_cast<int>(xb[m * ldx + p])));
            acc[m][0] = _mm512_dpbf16_ps(acc[m][0], a, b0);
            acc[m][1] = _mm512_dpbf16_ps(acc[m][1], a, b1);
        }
    }
    for (int m = 0; m < MR; ++m) {
        _mm512_mask_storeu_ps(out + m * ldo, m0, acc[m][0]);
        if (wide) _mm512_mask_storeu_ps(out + m * ldo + 16, m1, acc[m][1]);
    }
}

template <int MR = kMR>
void run_kernel(int mr, index pc, const std::uint32_t* xb, index ldx, const std::uint32_t* packed, float* out, index ldo, index cols,
                bool accumulate) {
    if constexpr (MR > 0) {
        if (mr == MR) return kernel<MR>(pc, xb, ldx, packed, out, ldo, cols, accumulate);
        run_kernel<MR - 1>(mr, pc, xb, ldx, packed, out, ldo, cols, accumulate);
    }
}

// A thread's growable 64-byte aligned scratch (slot 0: the packed block; 1: the rounded x).
inline std::uint32_t* scratch(int slot, std::size_t bytes) {
    thread_local AlignedBuffer buffers[2];
    if (buffers[slot].size() < bytes) buffers[slot] = AlignedBuffer(bytes);
    return reinterpret_cast<std::uint32_t*>(buffers[slot].data());
}

}  // namespace detail::gemm_bf16

// out [M, N] (rows ldo apart) = x [M, K] (rows ldx apart) · w [N, K]ᵀ, as the header describes.
// Throws weft::Error on negative sizes, short strides, or null pointers with work to do.
template <class W>
void gemm_bf16(std::int64_t M, std::int64_t N, std::int64_t K, const float* x, std::int64_t ldx, const W* w, float* out,
               std::int64_t ldo) {
    static_assert(std::is_same_v<W, bf16> || std::is_same_v<W, f16>, "weft: gemm_bf16 reads bf16 or f16 weights");
    namespace g = detail::gemm_bf16;
    if (M < 0 || N < 0 || K < 0) fail("gemm_bf16: sizes must be non-negative, got M = ", M, ", N = ", N, ", K = ", K);
    if (M == 0 || N == 0) return;
    if (M > 1 && ldx < K) fail("gemm_bf16: x row stride ", ldx, " is smaller than K = ", K);
    if (M > 1 && ldo < N) fail("gemm_bf16: out row stride ", ldo, " is smaller than N = ", N);
    if (out == nullptr || (K > 0 && (x == nullptr || w == nullptr))) fail("gemm_bf16: null pointer with work to do");
    const g::index KP = (K + 1) / 2;
    const g::index ldxb = g::xb_stride(KP);
    std::uint32_t* xb = g::scratch(1, static_cast<std::size_t>(M * ldxb) * 4);
    g::round_activations(M, K, KP, x, ldx, xb, ldxb);
    const g::index panels = (N + g::kRows - 1) / g::kRows, tiles = (M + g::kMR - 1) / g::kMR;
    // Threads claim panels as they go (one core is often slower); each output is computed the
    // same way whichever thread computes it.
    parallel_for_guided(panels, 1, [&](g::index first, g::index last) {
        std::uint32_t* packed = g::scratch(0, static_cast<std::size_t>(g::kPairs * g::kRows) * 4);
        for (g::index panel = first; panel < last; ++panel) {
            const g::index n0 = panel * g::kRows, cols = std::min(g::kRows, N - n0);
            if (KP == 0)
                for (g::index m = 0; m < M; ++m) std::fill(out + m * ldo + n0, out + m * ldo + n0 + cols, 0.0f);
            for (g::index p0 = 0; p0 < KP; p0 += g::kPairs) {
                const g::index pc = std::min(g::kPairs, KP - p0);
                g::pack_panel(w, K, n0, cols, p0, pc, packed);
                // The weights of the next block (this panel's next K block, else the next panel's
                // first) are fetched into L2 while this one computes, a share per tile: packing
                // then reads from cache instead of waiting on DRAM.
                const bool same = p0 + g::kPairs < KP;
                const g::index next_n0 = same ? n0 : n0 + g::kRows, next_p0 = same ? p0 + g::kPairs : 0;
                const g::index next_rows = std::min(g::kRows, N - next_n0), next_bytes = 4 * std::min(g::kPairs, KP - next_p0);
                const g::index lines = next_rows > 0 ? next_rows * ((next_bytes + 63) / 64) : 0;
                for (g::index t = 0, m0 = 0; m0 < M; ++t, m0 += g::kMR) {
                    // line l of the block: row l % next_rows, its line l / next_rows (divided
                    // once per tile: a division per line cost 4 % of a prompt)
                    const g::index l0 = lines * t / tiles, l1 = lines * (t + 1) / tiles;
                    g::index row = next_rows > 0 ? l0 % next_rows : 0, line = next_rows > 0 ? l0 / next_rows : 0;
                    for (g::index l = l0; l < l1; ++l) {
                        _mm_prefetch(reinterpret_cast<const char*>(w + (next_n0 + row) * K + 2 * next_p0) + 64 * line, _MM_HINT_T1);
                        if (++row == next_rows) row = 0, ++line;
                    }
                    const int mr = static_cast<int>(std::min<g::index>(g::kMR, M - m0));
                    g::run_kernel(mr, pc, xb + m0 * ldxb + p0, ldxb, packed, out + m0 * ldo + n0, ldo, cols, p0 > 0);
                }
            }
        }
    });
}

}  // namespace weft::cpu

#endif  // AVX512-BF16
