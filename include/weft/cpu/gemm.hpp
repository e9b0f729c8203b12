// weft/cpu/gemm.hpp — the f32 matrix multiply under every weft matmul: a packed, cache-blocked
// GEMM (BLIS structure) with AVX-512, AVX2+FMA and portable microkernels, plus streaming GEMV
// paths for decoding (M up to 16). Sits below the tensor layer; knows only pointers and strides.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <utility>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "weft/core/error.hpp"
#include "weft/core/threading.hpp"

namespace weft::cpu {

// C[m, n] (+)= sum_k A[m, k] * B[k, n]. A element (m, k) at a[m*a_rs + k*a_cs]; B element (k, n)
// at b[k*b_rs + n*b_cs]; C row-major with leading dimension ldc. accumulate=false overwrites C.
//   a: [M, K]   b: [K, N]   c: [M, N]
// matmul_nt (weights W: [N, K] row-major) is b_rs = 1, b_cs = K; plain matmul is b_rs = N, b_cs = 1.
// Any strides work; C must not overlap A or B.
//
// Every element of C is the same computation on every path: the FMA chain
//   acc = accumulate ? C[m, n] : +0;  for k = 0 .. K-1 in order: acc = fma(A[m, k], B[k, n], acc)
// so results are bit-identical for any thread count, tiling, and batch size M (a row of C does
// not change when more rows are computed with it), and equal gemm_f32_reference bit for bit.
// Throws weft::Error on negative sizes, ldc < N, or null pointers with work to do.
inline void gemm_f32(std::ptrdiff_t M, std::ptrdiff_t N, std::ptrdiff_t K,
              const float* a, std::ptrdiff_t a_rs, std::ptrdiff_t a_cs,
              const float* b, std::ptrdiff_t b_rs, std::ptrdiff_t b_cs,
              float* c, std::ptrdiff_t ldc, bool accumulate = false);

// The plain triple loop that defines gemm_f32's result (same arguments, same FMA chain). Slow;
// for tests and for reading.
inline void gemm_f32_reference(std::ptrdiff_t M, std::ptrdiff_t N, std::ptrdiff_t K,
                        const float* a, std::ptrdiff_t a_rs, std::ptrdiff_t a_cs,
                        const float* b, std::ptrdiff_t b_rs, std::ptrdiff_t b_cs,
                        float* c, std::ptrdiff_t ldc, bool accumulate = false);

// ============================================================================================
// Implementation
// ============================================================================================

namespace detail::gemm {

using index = std::ptrdiff_t;

// ---- Instruction sets ------------------------------------------------------------------------
// Each Isa holds one float vector type V of `width` lanes and the handful of operations the
// kernels need. `fma` is always a fused multiply-add, so every Isa computes the same bits.

#if defined(__AVX512F__)
struct Avx512 {
    using V = __m512;
    static constexpr int width = 16;
    static V zero() { return _mm512_setzero_ps(); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static __mmask16 mask(index n) { return static_cast<__mmask16>((1u << n) - 1u); }
    // Lanes >= n read as zero and touch no memory.
    static V load_n(const float* p, index n) { return _mm512_maskz_loadu_ps(mask(n), p); }
    static void store_n(float* p, V v, index n) { _mm512_mask_storeu_ps(p, mask(n), v); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }

    // r: [16 rows][16 lanes] becomes its transpose: r[j] lane i = old r[i] lane j.
    // (The maskz_ forms with a full mask compile to the plain instructions; the plain intrinsics
    // trip GCC 12's -Wuninitialized through _mm512_undefined_ps.)
    static void transpose(V* r) {
        constexpr __mmask16 kAll = 0xFFFF;
        V t[16], u[16];
        for (int i = 0; i < 8; ++i) {  // t[2i], t[2i+1]: rows 2i, 2i+1 interleaved per 128-bit lane
            t[2 * i] = _mm512_maskz_unpacklo_ps(kAll, r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_maskz_unpackhi_ps(kAll, r[2 * i], r[2 * i + 1]);
        }
        for (int i = 0; i < 4; ++i) {  // u[4i+j], 128-bit lane L: rows 4i..4i+3 at column 4L+j
            u[4 * i + 0] = _mm512_maskz_shuffle_ps(kAll, t[4 * i], t[4 * i + 2], 0x44);
            u[4 * i + 1] = _mm512_maskz_shuffle_ps(kAll, t[4 * i], t[4 * i + 2], 0xEE);
            u[4 * i + 2] = _mm512_maskz_shuffle_ps(kAll, t[4 * i + 1], t[4 * i + 3], 0x44);
            u[4 * i + 3] = _mm512_maskz_shuffle_ps(kAll, t[4 * i + 1], t[4 * i + 3], 0xEE);
        }
        for (int j = 0; j < 4; ++j) {  // 4x4 transpose of 128-bit lanes across u[j], u[4+j], ...
            const V v0 = _mm512_maskz_shuffle_f32x4(kAll, u[j], u[4 + j], 0x44);
            const V v1 = _mm512_maskz_shuffle_f32x4(kAll, u[j], u[4 + j], 0xEE);
            const V v2 = _mm512_maskz_shuffle_f32x4(kAll, u[8 + j], u[12 + j], 0x44);
            const V v3 = _mm512_maskz_shuffle_f32x4(kAll, u[8 + j], u[12 + j], 0xEE);
            r[j] = _mm512_maskz_shuffle_f32x4(kAll, v0, v2, 0x88);
            r[4 + j] = _mm512_maskz_shuffle_f32x4(kAll, v0, v2, 0xDD);
            r[8 + j] = _mm512_maskz_shuffle_f32x4(kAll, v1, v3, 0x88);
            r[12 + j] = _mm512_maskz_shuffle_f32x4(kAll, v1, v3, 0xDD);
        }
    }
};
#endif

#if defined(__AVX2__) && defined(__FMA__)
struct Avx2 {
    using V = __m256;
    static constexpr int width = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static __m256i mask(index n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V load_n(const float* p, index n) { return _mm256_maskload_ps(p, mask(n)); }
    static void store_n(float* p, V v, index n) { _mm256_maskstore_ps(p, mask(n), v); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }

    // r: [8 rows][8 lanes] becomes its transpose.
    static void transpose(V* r) {
        V t[8], u[8];
        for (int i = 0; i < 4; ++i) {
            t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (int i = 0; i < 2; ++i) {  // u[4i+j], 128-bit lane L: rows 4i..4i+3 at column 4L+j
            u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
            u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
            u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
            u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
        }
        for (int j = 0; j < 4; ++j) {
            r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
            r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
        }
    }
};
#endif

// The portable fallback: one lane. std::fma keeps its results identical to the SIMD kernels.
struct Scalar {
    using V = float;
    static constexpr int width = 1;
    static V zero() { return 0.0f; }
    static V set1(float x) { return x; }
    static V load(const float* p) { return *p; }
    static void store(float* p, V v) { *p = v; }
    static V load_n(const float* p, index n) { return n > 0 ? *p : 0.0f; }
    static void store_n(float* p, V v, index n) {
        if (n > 0) *p = v;
    }
    static V fma(V a, V b, V c) { return std::fma(a, b, c); }
    static void transpose(V*) {}
};

// ---- Tuning --------------------------------------------------------------------------------
// MR x NR: the tile of C one microkernel call keeps in registers (NR = NV vectors).
// kc: depth of a packed slice of k; its A micro-panel (MR x kc) stays in L1 while B
// micro-panels stream past it. nc: columns of the packed B panel (kc x nc), which stays in L2.
// kGemvMaxM: batch sizes that take the streaming GEMV paths instead. None of these change
// results, only speed.
#if defined(__AVX512F__)
using Best = Avx512;
inline constexpr int kMR = 8, kNV = 2;
inline constexpr index kKC = 512, kNC = 384;
#elif defined(__AVX2__) && defined(__FMA__)
using Best = Avx2;
inline constexpr int kMR = 6, kNV = 2;
inline constexpr index kKC = 512, kNC = 384;
#else
using Best = Scalar;
inline constexpr int kMR = 4, kNV = 4;
inline constexpr index kKC = 256, kNC = 256;
#endif
// The nt GEMV transposes 16 x 16 (AVX-512) or 8 x 8 (AVX2) blocks of weights in registers. Zen 4
// runs 512-bit shuffles at half the rate of 256-bit ones, so there the 8 x 8 blocks are faster:
// 15.5 against 12 GB/s per core on cache-resident f32 weights. Same bits either way. (GCC 12's
// -march=native calls Zen 4 znver3 plus AVX-512; Zen 3 itself has no AVX-512.)
#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__) && (defined(__znver3__) || defined(__znver4__))
using GemvNtIsa = Avx2;
#else
using GemvNtIsa = Best;
#endif
inline constexpr int kGemvMaxM = 16;
inline constexpr index kGemvPrefetch = 1024;  // floats ahead of the nt GEMV's reads to prefetch
inline constexpr index kGemvNnAhead = 8;      // rows of B ahead of the nn GEMV's reads to prefetch

// One gemm_f32 call's arguments.
struct Args {
    index M, N, K;
    const float* a;
    index a_rs, a_cs;
    const float* b;
    index b_rs, b_cs;
    float* c;
    index ldc;
    bool accumulate;
};

// ---- Scratch buffers -------------------------------------------------------------------------

// A growable 64-byte-aligned float buffer; each thread keeps its own (see scratch()).
class AlignedBuffer {
public:
    float* get(std::size_t floats) {
        if (floats > capacity_) {
            const std::size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
            float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
            if (p == nullptr) fail("gemm_f32: could not allocate a packing buffer of ", bytes, " bytes");
            data_.reset(p);
            capacity_ = bytes / sizeof(float);
        }
        return data_.get();
    }

private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> data_;
    std::size_t capacity_ = 0;
};

// slot 0: packed A, 1: packed B, 2: contiguous copy of A (GEMV), 3: chunk of C (nn GEMV).
inline float* scratch(int slot, std::size_t floats) {
    thread_local AlignedBuffer buffers[4];
    return buffers[slot].get(floats);
}

// Runs body(begin, end) under weft::parallel_for (or, with `guided`, parallel_for_guided) and
// rethrows, on the calling thread, the first exception a worker raised (OpenMP regions must not
// throw).
template <class Body>
void parallel_chunks(index n, index grain, Body&& body, bool guided = false) {
    std::exception_ptr error;
    std::once_flag once;
    auto guarded = [&](index begin, index end) {
        try {
            body(begin, end);
        } catch (...) {
            std::call_once(once, [&] { error = std::current_exception(); });
        }
    };
    if (guided) parallel_for_guided(n, grain, guarded);
    else parallel_for(n, grain, guarded);
    if (error) std::rethrow_exception(error);
}

// ---- Packing ---------------------------------------------------------------------------------

// Packs the block a: [mb, kb] (strides a_rs, a_cs) into ap: [ceil(mb/MR)][kb][MR], so the
// microkernel reads MR values of one k contiguously. Rows past mb are zero.
template <class Isa, int MR>
void pack_a(index mb, index kb, const float* a, index a_rs, index a_cs, float* ap) {
    constexpr int W = Isa::width;
    for (index i0 = 0; i0 < mb; i0 += MR, ap += kb * MR) {
        const index rows = std::min<index>(MR, mb - i0);
        const float* src = a + i0 * a_rs;
        if constexpr (W > 1 && MR <= W) {
            if (a_cs == 1) {  // rows contiguous in k: transpose W x W blocks in registers
                for (index k0 = 0; k0 < kb; k0 += W) {
                    const index kn = std::min<index>(W, kb - k0);
                    typename Isa::V r[W];
                    for (int i = 0; i < W; ++i)
                        r[i] = i < rows ? Isa::load_n(src + i * a_rs + k0, kn) : Isa::zero();
                    Isa::transpose(r);
                    for (index j = 0; j < kn; ++j) Isa::store_n(ap + (k0 + j) * MR, r[j], MR);
                }
                continue;
            }
        }
        for (index k = 0; k < kb; ++k)
            for (int i = 0; i < MR; ++i)
                ap[k * MR + i] = i < rows ? src[i * a_rs + k * a_cs] : 0.0f;
    }
}

// Packs the block b: [kb, nb] (strides b_rs, b_cs) into bp: [ceil(nb/NR)][kb][NR], so the
// microkernel reads NR values of one k contiguously. Columns past nb are zero.
template <class Isa, int NR>
void pack_b(index kb, index nb, const float* b, index b_rs, index b_cs, float* bp) {
    constexpr int W = Isa::width;
    for (index j0 = 0; j0 < nb; j0 += NR, bp += kb * NR) {
        const index cols = std::min<index>(NR, nb - j0);
        const float* src = b + j0 * b_cs;
        if (b_cs == 1) {  // rows of B contiguous in n (plain matmul): copy, zero-padding the edge
            for (index k = 0; k < kb; ++k)
                for (int j = 0; j < NR; j += W)
                    Isa::store(bp + k * NR + j,
                               Isa::load_n(src + k * b_rs + j, std::clamp<index>(cols - j, 0, W)));
        } else if (W > 1 && b_rs == 1) {  // columns contiguous in k (matmul_nt): transpose blocks
            for (int g = 0; g < NR; g += W) {
                for (index k0 = 0; k0 < kb; k0 += W) {
                    const index kn = std::min<index>(W, kb - k0);
                    typename Isa::V r[W];
                    for (int i = 0; i < W; ++i)
                        r[i] = g + i < cols ? Isa::load_n(src + (g + i) * b_cs + k0, kn) : Isa::zero();
                    Isa::transpose(r);
                    for (index j = 0; j < kn; ++j) Isa::store(bp + (k0 + j) * NR + g, r[j]);
                }
            }
        } else {
            for (index k = 0; k < kb; ++k)
                for (int j = 0; j < NR; ++j)
                    bp[k * NR + j] = j < cols ? src[k * b_rs + j * b_cs] : 0.0f;
        }
    }
}

// ---- Microkernel -----------------------------------------------------------------------------

// c: [MR, NV*W] (leading dimension ldc) = (load_c ? c : 0) + ap · bp as FMA chains over k in order.
//   ap: [kc][MR] (packed A micro-panel)   bp: [kc][NV*W] (packed B micro-panel)
// The MR x NV accumulators live in registers; each k broadcasts MR values of A against NV
// vectors of B.
template <class Isa, int MR, int NV>
inline void microkernel(index kc, const float* ap, const float* bp, float* c, index ldc, bool load_c) {
    using V = typename Isa::V;
    constexpr int W = Isa::width;
    V acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = load_c ? Isa::load(c + i * ldc + j * W) : Isa::zero();
    for (index k = 0; k < kc; ++k) {
        V bv[NV];
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) bv[j] = Isa::load(bp + j * W);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const V av = Isa::set1(ap[i]);
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) acc[i][j] = Isa::fma(av, bv[j], acc[i][j]);
        }
        ap += MR;
        bp += NV * W;
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) Isa::store(c + i * ldc + j * W, acc[i][j]);
}

// ---- Prefetching ------------------------------------------------------------------------------

// Asks for the cache line holding p to be brought into L2 (a hint; never faults). Shared by the
// GEMV kernels of cpu/gemv.hpp and cpu/quant_matmul.hpp.
inline void prefetch_l2(const void* p) {
#if defined(__GNUC__)
    __builtin_prefetch(p, 0, 2);
#else
    (void)p;
#endif
}

// Asks for rows x cols of C (leading dimension ldc) to be brought into L1.
inline void prefetch_tile(const float* c, index rows, index cols, index ldc) {
#if defined(__GNUC__)
    for (index i = 0; i < rows; ++i)
        for (index j = 0; j < cols; j += 16) __builtin_prefetch(c + i * ldc + j, 1, 3);
#else
    (void)c, (void)rows, (void)cols, (void)ldc;
#endif
}

// ---- Packed GEMM ---------------------------------------------------------------------------

// Computes the C block rows [m0, m1) x columns [n0, n1) on the calling thread. For each kc
// slice of k: pack A's rows once; for each nc panel of columns: pack B's panel once; then each A
// micro-panel (L1) meets every B micro-panel (L2). Each operand is packed exactly once per call.
template <class Isa, int MR, int NV>
void gemm_block(const Args& g, index m0, index m1, index n0, index n1) {
    constexpr int NR = NV * Isa::width;
    const index mb = m1 - m0;
    const index kc = std::min(kKC, g.K);
    const index nc = std::min<index>(kNC, (n1 - n0 + NR - 1) / NR * NR);
    float* ap = scratch(0, static_cast<std::size_t>((mb + MR - 1) / MR * MR * kc));
    float* bp = scratch(1, static_cast<std::size_t>(nc * kc));
    alignas(64) float edge[MR * NR];  // C tiles that overhang the matrix go through here

    for (index pc = 0; pc < g.K; pc += kKC) {
        const index kb = std::min(kKC, g.K - pc);
        const bool load_c = g.accumulate || pc > 0;
        pack_a<Isa, MR>(mb, kb, g.a + m0 * g.a_rs + pc * g.a_cs, g.a_rs, g.a_cs, ap);
        for (index jc = n0; jc < n1; jc += kNC) {
            const index nb = std::min(kNC, n1 - jc);
            pack_b<Isa, NR>(kb, nb, g.b + pc * g.b_rs + jc * g.b_cs, g.b_rs, g.b_cs, bp);
            for (index ir = 0; ir < mb; ir += MR) {
                const index rows = std::min<index>(MR, mb - ir);
                const float* apanel = ap + ir * kb;
                for (index jr = 0; jr < nb; jr += NR) {
                    const index cols = std::min<index>(NR, nb - jr);
                    float* ct = g.c + (m0 + ir) * g.ldc + jc + jr;
                    // The kernel starts by loading its C tile, which is rarely in cache (C is
                    // revisited once per kc slice): fetch the next tile while this one runs.
                    if (jr + NR < nb)
                        prefetch_tile(ct + NR, rows, std::min<index>(NR, nb - jr - NR), g.ldc);
                    else if (ir + MR < mb)
                        prefetch_tile(g.c + (m0 + ir + MR) * g.ldc + jc, std::min<index>(MR, mb - ir - MR),
                                      std::min<index>(NR, nb), g.ldc);
                    const float* bpanel = bp + jr * kb;
                    if (rows == MR && cols == NR) {
                        microkernel<Isa, MR, NV>(kb, apanel, bpanel, ct, g.ldc, load_c);
                        continue;
                    }
                    // Edge tile: same kernel on the zero-padded panels, so same arithmetic.
                    if (load_c)
                        for (index i = 0; i < rows; ++i)
                            std::memcpy(edge + i * NR, ct + i * g.ldc, sizeof(float) * cols);
                    microkernel<Isa, MR, NV>(kb, apanel, bpanel, edge, NR, load_c);
                    for (index i = 0; i < rows; ++i)
                        std::memcpy(ct + i * g.ldc, edge + i * NR, sizeof(float) * cols);
                }
            }
        }
    }
}

// Splits C across threads: by column panels when there are enough, else by row panels. Each
// thread packs its own operands; k is never split, so the split cannot change any result.
template <class Isa, int MR, int NV>
void gemm_packed(const Args& g) {
    constexpr int NR = NV * Isa::width;
    const index n_panels = (g.N + NR - 1) / NR;
    const index m_panels = (g.M + MR - 1) / MR;
    const index threads = num_threads();
    if (n_panels >= 4 * threads || n_panels >= m_panels) {
        parallel_chunks(n_panels, 1, [&](index p0, index p1) {
            gemm_block<Isa, MR, NV>(g, 0, g.M, p0 * NR, std::min(g.N, p1 * NR));
        });
    } else {
        parallel_chunks(m_panels, 1, [&](index p0, index p1) {
            gemm_block<Isa, MR, NV>(g, p0 * MR, std::min(g.M, p1 * MR), 0, g.N);
        });
    }
}

// ---- GEMV paths (small M) ----------------------------------------------------------------------
// For decoding, B (the weights) is far larger than A and C, and each of its values is used
// only M times: the work is reading B once, at full memory bandwidth. These paths stream B
// straight from memory with no packing; A is contiguous (a: [M, K], row stride lda).

// matmul_nt layout (b_rs == 1: column n of B is contiguous in k, i.e. row n of the weights
// [N, K]). Computes C columns [n0, n1) for MR rows of A. One vector's worth (W = Isa::width) of
// weight rows is read side by side as W sequential streams; each W x W block is transposed in
// registers, and each of its W k-steps broadcasts A[m, k] against a vector of W columns.
template <class Isa, int MR>
void gemv_nt(const Args& g, const float* a, index lda, index n0, index n1) {
    using V = typename Isa::V;
    constexpr int W = Isa::width;
    const index K = g.K, stride = g.b_cs;
    for (index n = n0; n < n1; n += W) {
        const index cols = std::min<index>(W, n1 - n);
        const float* w = g.b + n * stride;  // w: [cols rows of W, K]
        // acc: [MR, W], in L1. Each row's accumulator is loaded, advanced W k-steps and stored
        // back per block; the transposed block keeps the registers.
        alignas(64) float acc[MR * W];
        for (int m = 0; m < MR; ++m)
            Isa::store(acc + m * W, g.accumulate ? Isa::load_n(g.c + m * g.ldc + n, cols) : Isa::zero());
        // r[j] = W[n .. n+W, k0 + j] for j < kn; then every row m takes the kn FMAs in k order.
        auto step = [&](V* r, index k0, index kn) {
            for (int m = 0; m < MR; ++m) {
                const float* am = a + m * lda + k0;
                V x = Isa::load(acc + m * W);
                if (kn == W) {
#pragma GCC unroll 16
                    for (int j = 0; j < W; ++j) x = Isa::fma(Isa::set1(am[j]), r[j], x);
                } else {
                    for (index j = 0; j < kn; ++j) x = Isa::fma(Isa::set1(am[j]), r[j], x);
                }
                Isa::store(acc + m * W, x);
            }
        };
        index k0 = 0;
        if (cols == W) {
            for (; k0 + W <= K; k0 += W) {
                V r[W];
#pragma GCC unroll 16
                for (int i = 0; i < W; ++i) r[i] = Isa::load(w + i * stride + k0);
                // The hardware prefetcher alone loses ~15% of bandwidth on these W short streams
                // (more at larger M, where each block takes longer): ask for 4 KiB ahead of each,
                // running on into the next block's rows at the end of these.
                const index ahead = k0 + kGemvPrefetch;
                const float* next = ahead < K ? w + ahead : n + 2 * W <= n1 ? w + W * stride + (ahead - K) : nullptr;
                if (next != nullptr)
#pragma GCC unroll 16
                    for (int i = 0; i < W; ++i) prefetch_l2(next + i * stride);
                Isa::transpose(r);
                step(r, k0, W);
            }
        }
        for (; k0 < K; k0 += W) {  // the k tail, and all of a block narrower than W columns
            const index kn = std::min<index>(W, K - k0);
            V r[W];
            for (int i = 0; i < W; ++i) r[i] = i < cols ? Isa::load_n(w + i * stride + k0, kn) : Isa::zero();
            Isa::transpose(r);
            step(r, k0, kn);
        }
        for (int m = 0; m < MR; ++m)
            Isa::store_n(g.c + m * g.ldc + n, Isa::load(acc + m * W), cols);
    }
}

// Plain matmul layout (b_cs == 1: row k of B is contiguous in n). Computes C columns [n0, n1)
// for MR rows of A, axpy style: a chunk of C's columns, copied to a contiguous buffer in L1,
// takes the rows of B as they stream past (four per pass), each row read as one long run.
template <class Isa, int MR>
void gemv_nn(const Args& g, const float* a, index lda, index n0, index n1) {
    using V = typename Isa::V;
    constexpr int W = Isa::width;
    const index K = g.K, ldb = g.b_rs;
    // acc: [MR, chunk], 32 KiB. C's own rows are often a multiple of 4 KiB apart and would all
    // fall in the same L1 set; the buffer's rows do not.
    const index chunk = std::max<index>(W, (8192 / MR) / W * W);
    float* acc = scratch(3, static_cast<std::size_t>(MR * chunk));
    // acc[m, j - j0 ..][:n] = fma chain over rows k .. k+steps of B (columns j ..), in order.
    index j0 = n0;
    auto update = [&](index k, int steps, index j, index n) {
        V bv[4];
        for (int t = 0; t < steps; ++t) {
            const float* bk = g.b + (k + t) * ldb + j;
            bv[t] = n == W ? Isa::load(bk) : Isa::load_n(bk, n);
            if (k + t + kGemvNnAhead < K) prefetch_l2(bk + kGemvNnAhead * ldb);
        }
        for (int m = 0; m < MR; ++m) {
            float* am = acc + m * chunk + (j - j0);
            V x = n == W ? Isa::load(am) : Isa::load_n(am, n);
            for (int t = 0; t < steps; ++t) x = Isa::fma(Isa::set1(a[m * lda + k + t]), bv[t], x);
            if (n == W) Isa::store(am, x);
            else Isa::store_n(am, x, n);
        }
    };
    for (; j0 < n1; j0 += chunk) {
        const index j1 = std::min(n1, j0 + chunk), width = j1 - j0;
        for (int m = 0; m < MR; ++m) {
            if (g.accumulate) std::memcpy(acc + m * chunk, g.c + m * g.ldc + j0, sizeof(float) * width);
            else std::fill(acc + m * chunk, acc + m * chunk + width, 0.0f);
        }
        index k = 0;
        for (; k + 4 <= K; k += 4)
            for (index j = j0; j < j1; j += W) update(k, 4, j, std::min<index>(W, j1 - j));
        for (; k < K; ++k)
            for (index j = j0; j < j1; j += W) update(k, 1, j, std::min<index>(W, j1 - j));
        for (int m = 0; m < MR; ++m) std::memcpy(g.c + m * g.ldc + j0, acc + m * chunk, sizeof(float) * width);
    }
}

// Calls fn.template operator()<MR>() with MR = rows (1 .. kGemvMaxM), so that the GEMV kernels
// see the row count as a constant.
template <class Fn>
void with_rows(index rows, Fn&& fn) {
    [&]<int... R>(std::integer_sequence<int, R...>) {
        (void)((rows == R + 1 ? (fn.template operator()<R + 1>(), true) : false) || ...);
    }(std::make_integer_sequence<int, kGemvMaxM>{});
}

// Small M with B in either contiguous layout: each thread takes a contiguous range of C's
// columns and streams the matching part of B once.
template <class Isa>
void gemv(const Args& g) {
    // The GEMV kernels want A rows contiguous in k; copy A when it is not (it is small here).
    const float* a = g.a;
    index lda = g.a_rs;
    if (g.a_cs != 1) {
        float* copy = scratch(2, static_cast<std::size_t>(g.M * g.K));
        for (index m = 0; m < g.M; ++m)
            for (index k = 0; k < g.K; ++k) copy[m * g.K + k] = g.a[m * g.a_rs + k * g.a_cs];
        a = copy;
        lda = g.K;
    }
    const bool nt = g.b_rs == 1 && g.b_cs != 1;
    const index grain = nt ? 4 * Isa::width : 64;
    parallel_chunks(g.N, grain, [&](index n0, index n1) {
        with_rows(g.M, [&]<int MR>() {
            if (nt)
                gemv_nt<GemvNtIsa, MR>(g, a, lda, n0, n1);
            else
                gemv_nn<Isa, MR>(g, a, lda, n0, n1);
        });
    });
}

}  // namespace detail::gemm

inline void gemm_f32(std::ptrdiff_t M, std::ptrdiff_t N, std::ptrdiff_t K,
                     const float* a, std::ptrdiff_t a_rs, std::ptrdiff_t a_cs,
                     const float* b, std::ptrdiff_t b_rs, std::ptrdiff_t b_cs,
                     float* c, std::ptrdiff_t ldc, bool accumulate) {
    namespace d = detail::gemm;
    if (M < 0 || N < 0 || K < 0)
        fail("gemm_f32: sizes must be non-negative, got M=", M, " N=", N, " K=", K);
    if (M == 0 || N == 0) return;
    if (M > 1 && ldc < N) fail("gemm_f32: ldc=", ldc, " is smaller than N=", N, "; rows of C would overlap");
    if (c == nullptr) fail("gemm_f32: C is null but M=", M, " N=", N);
    if (K == 0) {  // the empty sum
        if (!accumulate)
            for (std::ptrdiff_t m = 0; m < M; ++m) std::fill(c + m * ldc, c + m * ldc + N, 0.0f);
        return;
    }
    if (a == nullptr || b == nullptr) fail("gemm_f32: A or B is null but M=", M, " N=", N, " K=", K);

    const d::Args g{M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate};
    if (M <= d::kGemvMaxM && (b_rs == 1 || b_cs == 1))
        d::gemv<d::Best>(g);
    else
        d::gemm_packed<d::Best, d::kMR, d::kNV>(g);
}

inline void gemm_f32_reference(std::ptrdiff_t M, std::ptrdiff_t N, std::ptrdiff_t K,
                               const float* a, std::ptrdiff_t a_rs, std::ptrdiff_t a_cs,
                               const float* b, std::ptrdiff_t b_rs, std::ptrdiff_t b_cs,
                               float* c, std::ptrdiff_t ldc, bool accumulate) {
    if (M < 0 || N < 0 || K < 0)
        fail("gemm_f32_reference: sizes must be non-negative, got M=", M, " N=", N, " K=", K);
    for (std::ptrdiff_t m = 0; m < M; ++m)
        for (std::ptrdiff_t n = 0; n < N; ++n) {
            float acc = accumulate ? c[m * ldc + n] : 0.0f;
            for (std::ptrdiff_t k = 0; k < K; ++k) acc = std::fma(a[m * a_rs + k * a_cs], b[k * b_rs + n * b_cs], acc);
            c[m * ldc + n] = acc;
        }
}

}  // namespace weft::cpu
