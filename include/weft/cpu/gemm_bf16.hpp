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
// Layout. The weights are not packed: a pair (w[n, 2p], w[n, 2p+1]) of a bf16 row is one dword in
// memory, broadcast straight from the row (f16 rows, and rows of odd K, are first rounded into a
// small per-thread buffer of bf16 pairs). x is rounded once per call and transposed into blocks
// of 64 rows, xt [block][pair][64 rows] dwords, so one pair of 16 rows is one vector. The
// microkernel takes 6 weight rows × 64 activation rows (24 accumulators) through the whole of
// K; threads split the weight rows in groups of 6. (Packing the weights into [pair][rows] panels
// instead, as an earlier version did, cost 10 % of a 128-token prompt in 16×16 transposes.)
#pragma once

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512BF16__)
#define WEFT_GEMM_BF16 1

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/storage.hpp"
#include "weft/core/threading.hpp"

namespace weft::cpu {

namespace detail::gemm_bf16 {

using index = std::int64_t;

inline constexpr int kR = 6;      // weight rows per microkernel call (rows 4 KiB apart share an L1 set of 8 ways)
inline constexpr index kMB = 64;  // activation rows per block of xt (4 vectors)

inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }
inline __m512i as_i(__m512bh v) { return (__m512i)v; }

// The first n of 16 lanes (n clamped to 0 .. 16).
inline __mmask16 first16(index n) {
    return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : static_cast<__mmask16>((1u << n) - 1);
}
inline __mmask32 first32(index n) {
    return n >= 32 ? __mmask32(0xFFFFFFFFu) : n <= 0 ? __mmask32(0) : static_cast<__mmask32>((1u << n) - 1);
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

// 32 values of row `row` from k on (zeros past K), as bf16 pairs.
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

// A weight row [K] as ⌈K/2⌉ bf16 pairs (the last one zero-padded for odd K) at dst.
template <class W>
void round_row(const W* row, index K, std::uint32_t* dst) {
    index k = 0;
    for (; k + 32 <= K; k += 32) _mm512_storeu_si512(dst + k / 2, load_line(row, k, K));
    if (k < K) _mm512_mask_storeu_epi32(dst + k / 2, first16((K - k + 1) / 2), load_line(row, k, K));
}

// Pairs per block of xt: KP rounded up to 16 (whole 16 × 16 transposes).
inline index xt_pairs(index KP) { return (KP + 15) / 16 * 16; }

// x [M, K] rounded to bf16 pairs into xt: block b of 64 rows holds, at [p][lane], the pair p of
// row 64·b + lane; rows past M and pairs past K are zero. 16 rows × 16 pairs at a time: round
// the rows' 32 values each, then one 16 × 16 dword transpose.
inline void round_activations(index M, index K, index KP, const float* x, index ldx, std::uint32_t* xt) {
    const index KP16 = xt_pairs(KP), quads = (M + 15) / 16;
    parallel_for(quads, 4, [&](index q0, index q1) {
        for (index q = q0; q < q1; ++q) {
            std::uint32_t* block = xt + (q / 4) * KP16 * kMB + (q % 4) * 16;
            for (index p0 = 0; p0 < KP16; p0 += 16) {
                __m512i r[16];
                const index k = 2 * p0;
                for (index i = 0; i < 16; ++i) {
                    const index m = 16 * q + i;
                    if (m >= M) {
                        r[i] = _mm512_setzero_si512();
                        continue;
                    }
                    const float* src = x + m * ldx;
                    const __m512 lo = _mm512_maskz_loadu_ps(first16(K - k), src + k);
                    const __m512 hi = k + 16 < K ? _mm512_maskz_loadu_ps(first16(K - k - 16), src + k + 16) : _mm512_setzero_ps();
                    r[i] = as_i(_mm512_cvtne2ps_pbh(hi, lo));
                }
                transpose16(r);
                for (index j = 0; j < 16; ++j) _mm512_store_si512(block + (p0 + j) * kMB, r[j]);
            }
        }
    });
}

// The dword at p of a weight row, in every lane (an unaligned load: a row's pairs are 4-byte
// aligned only when the weights are). (maskz_: see transpose16.)
inline __m512bh broadcast_pair(const std::uint32_t* row, index p) {
    return as_bh(_mm512_maskz_broadcastd_epi32(0xFFFF, _mm_loadu_si32(row + p)));
}

// out[m, r] = chain over pairs [0, KP) of rows[r] · xt block rows m, for R weight rows (rows[r]:
// KP dwords each) and the block's first `mrows` activation rows (V = ⌈mrows / 16⌉ vectors); out
// rows ldo apart, column r at out + r. `next`: R rows whose lines are prefetched as this runs
// (the next group's weights), or null.
template <int R, int V>
void kernel(index KP, const std::uint32_t* const* rows, const std::uint32_t* xt, float* out, index ldo, index mrows,
            const std::byte* const* next, index next_bytes) {
    __m512 acc[R][V];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
    const std::uint32_t* row[R];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) row[r] = rows[r];
    for (index p0 = 0; p0 < KP; p0 += 16) {
        if (next != nullptr && 4 * p0 < next_bytes)  // one line of each next row per 16 pairs
#pragma GCC unroll 6
            for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next[r] + 4 * p0), _MM_HINT_T1);
        const index p1 = std::min(KP, p0 + 16);
        for (index p = p0; p < p1; ++p) {
            __m512bh b[V];
#pragma GCC unroll 4
            for (int v = 0; v < V; ++v) b[v] = as_bh(_mm512_load_si512(xt + p * kMB + 16 * v));
#pragma GCC unroll 6
            for (int r = 0; r < R; ++r) {
                const __m512bh a = broadcast_pair(row[r], p);
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], b[v], a);
            }
        }
    }
    alignas(64) float tile[R][kMB];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) _mm512_store_ps(&tile[r][16 * v], acc[r][v]);
    for (index m = 0; m < mrows; ++m)
        for (int r = 0; r < R; ++r) out[m * ldo + r] = tile[r][m];
}

template <int R, int V = 4>
void run_kernel(int rows_n, index KP, const std::uint32_t* const* rows, const std::uint32_t* xt, float* out, index ldo, index mrows,
                const std::byte* const* next, index next_bytes) {
    if constexpr (R > 1)
        if (rows_n < R) return run_kernel<R - 1, V>(rows_n, KP, rows, xt, out, ldo, mrows, next, next_bytes);
    if constexpr (V > 1)
        if (mrows <= 16 * (V - 1)) return run_kernel<R, V - 1>(rows_n, KP, rows, xt, out, ldo, mrows, next, next_bytes);
    kernel<R, V>(KP, rows, xt, out, ldo, mrows, next, next_bytes);
}

// A thread's growable 64-byte aligned scratch (slot 0: rounded weight rows; 1: the rounded x).
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
    if (K == 0) {
        for (g::index m = 0; m < M; ++m) std::fill(out + m * ldo, out + m * ldo + N, 0.0f);
        return;
    }
    const g::index KP = (K + 1) / 2, KP16 = g::xt_pairs(KP), blocks = (M + g::kMB - 1) / g::kMB;
    std::uint32_t* xt = g::scratch(1, static_cast<std::size_t>(blocks * KP16 * g::kMB) * 4);
    g::round_activations(M, K, KP, x, ldx, xt);
    // bf16 rows of even K are read in place; others are rounded into a per-thread buffer.
    const bool in_place = std::is_same_v<W, bf16> && K % 2 == 0;
    const g::index groups = (N + g::kR - 1) / g::kR, row_bytes = K * static_cast<g::index>(sizeof(W));
    parallel_for_guided(groups, 4, [&](g::index first, g::index last) {
        std::uint32_t* buffer = in_place ? nullptr : g::scratch(0, static_cast<std::size_t>(g::kR * KP16) * 4);
        for (g::index group = first; group < last; ++group) {
            const g::index n0 = group * g::kR;
            const int rows_n = static_cast<int>(std::min<g::index>(g::kR, N - n0));
            const std::uint32_t* rows[g::kR];
            for (int r = 0; r < rows_n; ++r) {
                const W* row = w + (n0 + r) * K;
                if (in_place) {
                    rows[r] = reinterpret_cast<const std::uint32_t*>(row);
                } else {
                    g::round_row(row, K, buffer + r * KP16);
                    rows[r] = buffer + r * KP16;
                }
            }
            // The next group's rows (also past this thread's run: most often its next run too).
            // (A shorter last group repeats its last row.)
            const std::byte* next[g::kR];
            const g::index next_n = std::min<g::index>(g::kR, N - n0 - g::kR);
            for (int r = 0; r < rows_n && next_n > 0; ++r)
                next[r] = reinterpret_cast<const std::byte*>(w + (n0 + g::kR + std::min<g::index>(r, next_n - 1)) * K);
            for (g::index b = 0; b < blocks; ++b) {
                const bool last_block = b + 1 == blocks && next_n > 0;
                g::run_kernel<g::kR>(rows_n, KP, rows, xt + b * KP16 * g::kMB, out + b * g::kMB * ldo + n0, ldo,
                                     std::min<g::index>(g::kMB, M - b * g::kMB), last_block ? next : nullptr, row_bytes);
            }
        }
    });
}

}  // namespace weft::cpu

#endif  // AVX512-BF16
