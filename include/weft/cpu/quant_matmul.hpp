// weft/cpu/quant_matmul.hpp — out [M, N] = x [M, K] · Wᵀ for weights W [N, K] stored as GGUF blocks
// (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) and read in place: a streaming GEMV for decoding (M ≤ 8) and a
// cache-blocked GEMM for prefill, both on 8-bit activations (quant/activation.hpp) with integer
// dot products (AVX-512 VNNI (+ AMX-INT8 tiles), AVX2, portable scalar) and one fixed float order
// per output.
//
// How: weight rows are taken 16 at a time (8 on AVX2), one vector lane per row. A decoder turns
// each 16-byte column of their blocks into "steps" (lane r = 4 consecutive codes of row r, via a
// 4 x 4 transpose in registers), so one vpdpbusd against 4 activation bytes advances 16 outputs
// and the block scales apply lane-wise, without horizontal sums.
//   GEMV, M ≤ 4: decoder and dot products fused, nothing written (Sink); one group ahead is
//     prefetched (16 row streams defeat the hardware prefetchers). For M = 1, Q4_0
//     and the K-quants on AVX-512 with VBMI + GFNI: dot products along each row, then the
//     integer sums transposed instead of the codes (row_dots_*), fewer shuffles, same bits.
//   GEMV, M > 4, and GEMM: decode a panel (2 groups × a slice of K) to L1/L2 once, then run it
//     past every activation row: tiles of MR rows × 32 outputs (VNNI), or on AMX machines
//     16 × 16 tiles of exact sub-block sums from tdpbssd, finished by the same float steps.
//   Threads split the output rows in runs of whole groups / panels: the GEMV's claimed as they go
//   (parallel_for_guided: memory-bound, one core often streams faster), the GEMM's fixed.
// The x16 dtypes (quant/interleave.hpp: 16 rows' blocks interleaved, as a copied model holds
// them) run as their GGUF types with the decoders reading the rows already in lanes: every
// path, the same steps, so the same bits, without the transposes (the GEMV about 1.5x faster
// cache-resident on Zen 4).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/gemm.hpp"
#include "weft/quant/activation.hpp"
#include "weft/quant/blocks.hpp"
#include "weft/quant/interleave.hpp"

// ---- ISA selection ---------------------------------------------------------------------------
// AVX-512 needs VNNI (vpdpbusd) and BW/VL; AVX2 needs FMA and F16C (AVX-VNNI is used when there);
// anything else (NEON included) runs the portable scalar code.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define WEFT_QMM_AVX512 1
#include <immintrin.h>
// AMX-INT8 tiles for the GEMM's integer part, where the build targets them (-march=sapphirerapids
// or native there) and Linux grants the process the tile state (checked once at run time).
#include "weft/cpu/amx.hpp"
#if defined(WEFT_AMX_TILE) && defined(__AMX_INT8__)
#define WEFT_QMM_AMX 1
#include <atomic>
#endif
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define WEFT_QMM_AVX2 1
#include <immintrin.h>
#else
#define WEFT_QMM_SCALAR 1
#endif
// Code built for each ISA lives in its own inline namespace, so translation units compiled with
// different flags do not share (ODR-merge) inline functions whose bodies differ.
// With VBMI (vpermi2b) and GFNI as well (Ice Lake, Zen 4 and later), the one-row GEMV of Q4_0,
// Q4_K, Q5_K and Q6_K takes dot products along the rows instead (row_dots_* below).
#if defined(WEFT_QMM_AVX512) && defined(__AVX512VBMI__) && defined(__GFNI__)
#define WEFT_QMM_ROW_DOTS 1
#endif
#if defined(WEFT_QMM_ROW_DOTS)
#define WEFT_QMM_ISA isa_avx512vbmi
#elif defined(WEFT_QMM_AVX512)
#define WEFT_QMM_ISA isa_avx512vnni
#elif defined(WEFT_QMM_AVX2)
#define WEFT_QMM_ISA isa_avx2
#else
#define WEFT_QMM_ISA isa_scalar
#endif

namespace weft::cpu {

// ============================================================================================
// What is computed (every path, every ISA, every thread count gives these bits)
// ============================================================================================
// x is quantized per block (QuantizedActivations: 32 values for Q8_0/Q4_0, 256 for K-quants):
// x ≈ dx·qx. Each weight block holds integer codes w (Q8_0: the int8; Q4_0: nibble − 8; Q4_K:
// nibble; Q5_K: 5-bit value; Q6_K: 6-bit value − 32) and float scales. Integer sums are exact;
// the floats run in this order, each step rounded once (fma = fused multiply-add):
//
//   Q8_0, Q4_0 (block b of 32, weight scale d):
//     acc = 0;  for b: acc = fma(d_b · dx_b, float(Σ_i w_i · qx_i), acc)
//   Q4_K, Q5_K, Q6_K (super-block b of 256 with sub-blocks j of 32 (Q4_K, Q5_K) or 16 (Q6_K)):
//     acc = 0;  for b: t = 0
//                      for j: t = fma(d · sc_j, float(Σ_{i in j} w_i · qx_i), t)     (d · sc_j is exact)
//                      Q4_K/Q5_K: t = fma(−dmin, float(Σ_j m_j · Σ_{i in j} qx_i), t)
//                      acc = fma(dx_b, t, acc)
//   out[m, n] = acc
//
// So results do not depend on the thread count, the ISA, or on M: a row of x gives the same
// output row through the GEMV (decode) and the GEMM (prefill) paths, and through
// quant_matmul_nt_reference, the plain loops that define it.

inline constexpr Index quant_gemv_max_rows = 8;  // batches up to this size stream W (decode)

// One matrix of a group that shares x: out [M, n] (row stride ldo) = x · wᵀ, w: [n, K] blocks of
// `type`. Parts may have different quantized types.
struct QuantPart {
    DType type;
    const void* w;
    Index n;
    float* out;
    Index ldo;
};

inline namespace WEFT_QMM_ISA {

// out [M, N] = x [M, K] · w [N, K]ᵀ (x rows ldx apart, out rows ldo apart): the GEMV for
// M ≤ quant_gemv_max_rows, else the GEMM. K must be a multiple of the type's block (32 or 256).
// Throws weft::Error on a non-quantized type, bad sizes or strides, or null pointers with work.
inline void quant_matmul_nt(DType type, Index M, Index N, Index K, const float* x, Index ldx, const void* w, float* out,
                            Index ldo);

// outs_i = x · W_iᵀ for matrices reading the same x (q/k/v, gate/up): x is quantized once and all
// rows run as one parallel region. Same bits as quant_matmul_nt on each part.
template <std::size_t P>
void quant_matmul_nt_group(Index M, Index K, const float* x, Index ldx, const std::array<QuantPart, P>& parts);

// The two paths forced (any M; results are identical, only speed differs).
inline void quant_gemv_nt(DType type, Index M, Index N, Index K, const float* x, Index ldx, const void* w, float* out,
                          Index ldo);
inline void quant_gemm_nt(DType type, Index M, Index N, Index K, const float* x, Index ldx, const void* w, float* out,
                          Index ldo);
template <std::size_t P>
void quant_gemv_nt_group(Index M, Index K, const float* x, Index ldx, const std::array<QuantPart, P>& parts);
template <std::size_t P>
void quant_gemm_nt_group(Index M, Index K, const float* x, Index ldx, const std::array<QuantPart, P>& parts);

// Whether the GEMM runs M rows of `type` on AMX-INT8 tiles (else on VNNI, AVX2 or scalar integer
// dot products): the unit that bounds a prompt's speed.
inline bool quant_gemm_uses_amx(DType type, Index M);

// The definition above as plain single-threaded loops (slow; for tests and reading).
inline void quant_matmul_nt_reference(DType type, Index M, Index N, Index K, const float* x, Index ldx, const void* w,
                                      float* out, Index ldo);

}  // namespace WEFT_QMM_ISA

// ============================================================================================
// Implementation
// ============================================================================================

namespace detail::qmm {
inline namespace WEFT_QMM_ISA {

// ---- Weight formats ----------------------------------------------------------------------------
// unit: one GGUF block (the kernels' step along K); sub: values sharing one float scale in the
// kernels (a block for Q8_0/Q4_0, a sub-block for K-quants); act_block: the activation block.
struct Format {
    int unit_values, unit_bytes, sub;
    bool k_quant, mins;
};
inline Format format_of(DType t) {
    switch (t) {
        case DType::q8_0: case DType::q8_0x16: return {32, 34, 32, false, false};
        case DType::q4_0: case DType::q4_0x16: return {32, 18, 32, false, false};
        case DType::q4_k: case DType::q4_kx16: return {256, 144, 32, true, true};
        case DType::q5_k: case DType::q5_kx16: return {256, 176, 32, true, true};
        case DType::q6_k: case DType::q6_kx16: return {256, 210, 16, true, false};
        default: fail("quantized matmul: ", t, " is not one of q8_0, q4_0, q4_k, q5_k, q6_k (or their x16 forms)");
    }
}

// ---- Scalar decoding (the reference, and the portable path) -----------------------------------

// One unit's integer codes and scales. FormA (Q8_0, Q4_0): scale[0] = d. K-quants: scale[j] =
// d · sc_j per sub-block, mins[j] and negdmin = −dmin for Q4_K/Q5_K.
struct UnitCodes {
    std::int8_t w[256];
    float scale[16];
    int mins[8];
    float negdmin;
};

inline float f16f(const std::uint8_t* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return f16_bits_to_float(h);
}

inline void decode_unit(DType t, const std::uint8_t* b, UnitCodes& c) {
    switch (t) {
        case DType::q8_0:
            c.scale[0] = f16f(b);
            std::memcpy(c.w, b + 2, 32);
            break;
        case DType::q4_0:
            c.scale[0] = f16f(b);
            for (int i = 0; i < 16; ++i) {
                c.w[i] = static_cast<std::int8_t>((b[2 + i] & 0xF) - 8);
                c.w[i + 16] = static_cast<std::int8_t>((b[2 + i] >> 4) - 8);
            }
            break;
        case DType::q4_k:
        case DType::q5_k: {
            const float d = f16f(b), dmin = f16f(b + 2);
            const std::uint8_t* sc = b + 4;
            const bool five = t == DType::q5_k;
            const std::uint8_t* qh = b + 16;
            const std::uint8_t* qs = b + (five ? 48 : 16);
            for (int j = 0; j < 8; ++j) {
                std::uint8_t s, m;
                quant::k_scale_min(j, sc, s, m);
                c.scale[j] = d * static_cast<float>(s);
                c.mins[j] = m;
            }
            c.negdmin = -dmin;
            for (int r = 0; r < 4; ++r)
                for (int l = 0; l < 32; ++l) {
                    int lo = qs[32 * r + l] & 0xF, hi = qs[32 * r + l] >> 4;
                    if (five) {
                        lo |= ((qh[l] >> (2 * r)) & 1) << 4;
                        hi |= ((qh[l] >> (2 * r + 1)) & 1) << 4;
                    }
                    c.w[64 * r + l] = static_cast<std::int8_t>(lo);
                    c.w[64 * r + 32 + l] = static_cast<std::int8_t>(hi);
                }
            break;
        }
        case DType::q6_k: {
            const float d = f16f(b + 208);
            for (int j = 0; j < 16; ++j) c.scale[j] = d * static_cast<float>(static_cast<std::int8_t>(b[192 + j]));
            for (int h = 0; h < 2; ++h) {
                const std::uint8_t* ql = b + 64 * h;
                const std::uint8_t* qh = b + 128 + 32 * h;
                std::int8_t* w = c.w + 128 * h;
                for (int l = 0; l < 32; ++l) {
                    w[l] = static_cast<std::int8_t>(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
                    w[l + 32] = static_cast<std::int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    w[l + 64] = static_cast<std::int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    w[l + 96] = static_cast<std::int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            }
            break;
        }
        default: fail("quantized matmul: ", t, " is not one of q8_0, q4_0, q4_k, q5_k, q6_k");
    }
}

// The definition for one weight row against activation rows [m0, m1): out[m * ldo] = row · x[m].
// `codes` holds the row's decoded units (K / unit_values of them).
inline void dot_rows_scalar(const Format& f, const UnitCodes* codes, const quant::QuantizedActivations& qa, Index m0,
                            Index m1, Index K, float* out, Index ldo) {
    const Index units = K / f.unit_values;
    for (Index m = m0; m < m1; ++m) {
        const std::int8_t* xq = qa.q(m);
        const float* dx = qa.d(m);
        float acc = 0.0f;
        for (Index u = 0; u < units; ++u) {
            const UnitCodes& c = codes[u];
            const std::int8_t* xu = xq + u * f.unit_values;
            if (!f.k_quant) {
                std::int32_t s = 0;
                for (int i = 0; i < 32; ++i) s += c.w[i] * xu[i];
                acc = std::fma(c.scale[0] * dx[u], static_cast<float>(s), acc);
                continue;
            }
            float t = 0.0f;
            std::int32_t mins = 0;
            for (int j = 0; j < 256 / f.sub; ++j) {
                std::int32_t s = 0, xs = 0;
                for (int i = j * f.sub; i < (j + 1) * f.sub; ++i) {
                    s += c.w[i] * xu[i];
                    xs += xu[i];
                }
                t = std::fma(c.scale[j], static_cast<float>(s), t);
                if (f.mins) mins += c.mins[j] * xs;
            }
            if (f.mins) t = std::fma(c.negdmin, static_cast<float>(mins), t);
            acc = std::fma(dx[u], t, acc);
        }
        out[(m - m0) * ldo] = acc;
    }
}

// Rows [n0, n1) of one part, every activation row: decode a weight row, then dot it with each x.
inline void part_rows_scalar(const QuantPart& p, const quant::QuantizedActivations& qa, Index K, Index n0, Index n1) {
    const Format f = format_of(p.type);
    const Index units = K / f.unit_values, row_bytes = units * f.unit_bytes;
    thread_local std::vector<UnitCodes> codes;
    codes.resize(static_cast<std::size_t>(units));
    for (Index n = n0; n < n1; ++n) {
        const auto* row = static_cast<const std::uint8_t*>(p.w) + n * row_bytes;
        for (Index u = 0; u < units; ++u) {
            if (quant::is_interleaved(p.type)) {
                alignas(8) std::uint8_t block[256];
                quant::interleaved_block(p.type, p.w, K, n, u, block);
                decode_unit(quant::plain_dtype(p.type), block, codes[static_cast<std::size_t>(u)]);
            } else {
                decode_unit(p.type, row + u * f.unit_bytes, codes[static_cast<std::size_t>(u)]);
            }
        }
        dot_rows_scalar(f, codes.data(), qa, 0, qa.rows(), K, p.out + n, p.ldo);
    }
}

// ---- Checks and activation quantization shared by every path ----------------------------------

inline void check_part(const char* op, const QuantPart& p, Index M, Index K) {
    const Format f = format_of(p.type);
    if (p.n < 0) fail(op, ": N = ", p.n, " is negative");
    if (K % f.unit_values != 0) fail(op, ": K = ", K, " is not a multiple of the ", p.type, " block of ", f.unit_values);
    if (M > 1 && p.ldo < p.n) fail(op, ": output row stride ", p.ldo, " is smaller than N = ", p.n);
    if (M > 0 && p.n > 0 && (p.w == nullptr || p.out == nullptr)) fail(op, ": null weight or output pointer");
    if (quant::is_interleaved(p.type) && p.n % quant::interleaved_rows != 0)
        fail(op, ": N = ", p.n, " rows of ", p.type, " weights are not whole groups of ", quant::interleaved_rows);
}

// The calling thread's quantized copies of x: one for 32-value blocks, one for 256.
inline quant::QuantizedActivations& act_buffer(bool k_quant) {
    thread_local quant::QuantizedActivations a32, a256;
    return k_quant ? a256 : a32;
}

#if !defined(WEFT_QMM_SCALAR)
// =============================================================================================
// SIMD kernels. Layout: a "group" is G consecutive weight rows (16 on AVX-512, 8 on AVX2);
// decoded, it is G lanes of 32 bits, each lane 4 consecutive values of its row ("step" s holds
// values 4s .. 4s+3), so one vpdpbusd with 4 activation bytes broadcast advances G outputs. A
// panel is NV groups side by side: q [steps][NV][G][4] (u8), scale [subs][NV][G] (f32),
// mins [units][4][NV][G] (two int16 per lane), negdmin [units][NV][G].
// =============================================================================================

// p, hidden from the optimizer: GCC would otherwise give each of a group's 16 row addresses its
// own induction variable, more than there are registers (the rest then move in through vector
// registers, a port-0 uop per load); this keeps 4 row pointers plus fixed offsets.
inline const std::uint8_t* opaque(const std::uint8_t* p) {
#if defined(__GNUC__)
    __asm__("" : "+r"(p));
#endif
    return p;
}

#if defined(WEFT_QMM_AVX512)
struct Isa {
    static constexpr int G = 16;
    // Q8_0 weights enter the dot product as unsigned w + 128 (vpdpbusd is u8 × s8), and the
    // activation side subtracts 128 · Σ qx.
    static constexpr bool q8_unsigned = true;
    // dot() is exact for any unsigned byte (no 16-bit intermediate sums to saturate).
    static constexpr bool dot_any_u8 = true;
    using I = __m512i;
    using F = __m512;
    // Full-mask (maskz_) forms of some intrinsics: the plain ones trip GCC 12's -Wuninitialized
    // through _mm512_undefined_*; both compile to the same instruction.
    static constexpr __mmask8 all8 = 0xFF;
    static constexpr __mmask16 all16 = 0xFFFF;
    static constexpr __mmask32 all32 = 0xFFFFFFFFu;
    static I loadi(const void* p) { return _mm512_loadu_si512(p); }
    static void storei(void* p, I v) { _mm512_storeu_si512(p, v); }
    static F loadf(const float* p) { return _mm512_loadu_ps(p); }
    static void storef(float* p, F v) { _mm512_storeu_ps(p, v); }
    static I zeroi() { return _mm512_setzero_si512(); }
    static F zerof() { return _mm512_setzero_ps(); }
    static I set8(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
    static I set32(int v) { return _mm512_set1_epi32(v); }
    static I bcast32(const void* p) {
        std::int32_t v;
        std::memcpy(&v, p, 4);
        return _mm512_set1_epi32(v);
    }
    static F bcastf(const float* p) { return _mm512_set1_ps(*p); }
    static I and_(I a, I b) { return _mm512_and_si512(a, b); }
    static I or_(I a, I b) { return _mm512_or_si512(a, b); }
    static I xor_(I a, I b) { return _mm512_xor_si512(a, b); }
    static I sub8(I a, I b) { return _mm512_sub_epi8(a, b); }
    static I add32(I a, I b) { return _mm512_add_epi32(a, b); }
    template <int n> static I srli16(I v) { return _mm512_maskz_srli_epi16(all32, v, n); }
    template <int n> static I slli16(I v) { return _mm512_maskz_slli_epi16(all32, v, n); }
    template <int n> static I srli32(I v) { return _mm512_maskz_srli_epi32(all16, v, n); }
    template <int n> static I slli32(I v) { return _mm512_maskz_slli_epi32(all16, v, n); }
    template <int n> static I srai32(I v) { return _mm512_maskz_srai_epi32(all16, v, n); }
    static F cvt(I v) { return _mm512_maskz_cvtepi32_ps(all16, v); }
    static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
    static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static F neg(F a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))); }
    // Lane-wise (a >> 16) | (b << 16): the 4 bytes that start 2 bytes into a's lane.
    static I shift2(I a, I b) {
#if defined(__AVX512VBMI2__)
        return _mm512_shrdi_epi32(a, b, 16);
#else
        return _mm512_or_si512(srli32<16>(a), slli32<16>(b));
#endif
    }
    // Lane-wise: byte i of the result is byte p_i of v's lane (p = 4 indices, 0x80: zero).
    static I pick(I v, std::uint32_t p) {
        // vpshufb indexes within 128 bits: dword k of each 128-bit lane adds 4k to p's indices
        const I lanes = _mm512_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C, 0, 0x04040404, 0x08080808, 0x0C0C0C0C, 0,
                                          0x04040404, 0x08080808, 0x0C0C0C0C, 0, 0x04040404, 0x08080808, 0x0C0C0C0C);
        return _mm512_shuffle_epi8(v, _mm512_add_epi32(_mm512_set1_epi32(static_cast<std::int32_t>(p)), lanes));
    }
    // acc + Σ of 4 products per lane, u unsigned and s signed bytes (exact)
    static I dot(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
    // acc + Σ of 2 products per lane of int16 pairs (exact)
    static I dot16(I acc, I a, I b) { return _mm512_dpwssd_epi32(acc, a, b); }
    // The low 16 bits of each lane, as f16, widened.
    static F f16_lo(I v) { return _mm512_maskz_cvtph_ps(all16, _mm512_maskz_cvtepi32_epi16(all16, v)); }
    // G consecutive f16 at p, widened.
    static F load_f16(const void* p) { return _mm512_maskz_cvtph_ps(all16, _mm256_loadu_si256(static_cast<const __m256i*>(p))); }
    // Lane r: the 4 bytes at base + offs[r].
    static I gather(const std::uint8_t* base, I offs) { return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), all16, offs, base, 1); }
    static I offsets(Index stride) {
        return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                  _mm512_set1_epi32(static_cast<std::int32_t>(stride)));
    }
    // t[j] lane r = bytes [off + 4j, off + 4j + 4) of row r: sixteen 16-byte loads, transposed as
    // 4 x 4 words inside each 128-bit chunk (chunk c of load v holds row 4c + v).
    static void load_t(const std::uint8_t* base, Index stride, std::size_t off, I t[4]) {
        I q[4];
        const Index s4 = 4 * stride;  // rows 4c + v at (base + v · stride) + c · s4
        const std::uint8_t* p0 = opaque(base + off);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
            const std::uint8_t* p = p0 + v * stride;
            I a = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
            a = _mm512_inserti32x4(a, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + s4)), 1);
            a = _mm512_inserti32x4(a, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * s4)), 2);
            a = _mm512_inserti32x4(a, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 3 * s4)), 3);
            q[v] = a;
        }
        const I a0 = _mm512_maskz_unpacklo_epi32(all16, q[0], q[1]), a1 = _mm512_maskz_unpackhi_epi32(all16, q[0], q[1]);
        const I a2 = _mm512_maskz_unpacklo_epi32(all16, q[2], q[3]), a3 = _mm512_maskz_unpackhi_epi32(all16, q[2], q[3]);
        t[0] = _mm512_maskz_unpacklo_epi64(all8, a0, a2);
        t[1] = _mm512_maskz_unpackhi_epi64(all8, a0, a2);
        t[2] = _mm512_maskz_unpacklo_epi64(all8, a1, a3);
        t[3] = _mm512_maskz_unpackhi_epi64(all8, a1, a3);
    }
};
// GEMM tile: MR activation rows × NV groups; GEMV: one group, MR up to 8.
inline constexpr int kNV = 2, kMR_a = 6, kMR_b = 4, kMR_gemv = 8;
#else
struct Isa {
    static constexpr int G = 8;
#if defined(__AVXVNNI__)
    static constexpr bool q8_unsigned = true;
    static constexpr bool dot_any_u8 = true;
#else
    // vpmaddubsw saturates pair sums past 32767: exact only for small unsigned codes (≤ 128).
    static constexpr bool dot_any_u8 = false;
    // Without VNNI the u8 × s8 pair sums (vpmaddubsw) would saturate at 255 · 127 · 2: Q8_0 uses
    // |w| × (x with w's sign) instead, and its activation side subtracts nothing.
    static constexpr bool q8_unsigned = false;
#endif
    using I = __m256i;
    using F = __m256;
    static I loadi(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
    static void storei(void* p, I v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
    static F loadf(const float* p) { return _mm256_loadu_ps(p); }
    static void storef(float* p, F v) { _mm256_storeu_ps(p, v); }
    static I zeroi() { return _mm256_setzero_si256(); }
    static F zerof() { return _mm256_setzero_ps(); }
    static I set8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
    static I set32(int v) { return _mm256_set1_epi32(v); }
    static I bcast32(const void* p) {
        std::int32_t v;
        std::memcpy(&v, p, 4);
        return _mm256_set1_epi32(v);
    }
    static F bcastf(const float* p) { return _mm256_broadcast_ss(p); }
    static I and_(I a, I b) { return _mm256_and_si256(a, b); }
    static I or_(I a, I b) { return _mm256_or_si256(a, b); }
    static I xor_(I a, I b) { return _mm256_xor_si256(a, b); }
    static I sub8(I a, I b) { return _mm256_sub_epi8(a, b); }
    static I add32(I a, I b) { return _mm256_add_epi32(a, b); }
    template <int n> static I srli16(I v) { return _mm256_srli_epi16(v, n); }
    template <int n> static I slli16(I v) { return _mm256_slli_epi16(v, n); }
    template <int n> static I srli32(I v) { return _mm256_srli_epi32(v, n); }
    template <int n> static I slli32(I v) { return _mm256_slli_epi32(v, n); }
    template <int n> static I srai32(I v) { return _mm256_srai_epi32(v, n); }
    static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
    static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
    static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static F neg(F a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN))); }
    static I shift2(I a, I b) { return _mm256_or_si256(srli32<16>(a), slli32<16>(b)); }
    static I pick(I v, std::uint32_t p) {
        const I lanes = _mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C, 0, 0x04040404, 0x08080808, 0x0C0C0C0C);
        return _mm256_shuffle_epi8(v, _mm256_add_epi32(_mm256_set1_epi32(static_cast<std::int32_t>(p)), lanes));
    }
    static I dot(I acc, I u, I s) {
#if defined(__AVXVNNI__)
        return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
        return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
    }
    // acc + Σ w·s for signed w given as |w| (wabs) and w: |w| × (s with w's sign) (exact, as
    // |w| ≤ 128 and |s| ≤ 127 keep the pair sums inside int16).
    static I dot_signed(I acc, I wabs, I w, I s) {
        return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(s, w)), _mm256_set1_epi16(1)));
    }
    static I abs8(I v) { return _mm256_abs_epi8(v); }
    static I dot16(I acc, I a, I b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
    static F load_f16(const void* p) { return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
    static F f16_lo(I v) {
        const I pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8, 9, 12, 13, -1, -1,
                                        -1, -1, -1, -1, -1, -1);
        const I packed = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, pick), 0x08);  // qwords 0 and 2
        return _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
    }
    static I gather(const std::uint8_t* base, I offs) { return _mm256_i32gather_epi32(reinterpret_cast<const int*>(base), offs, 1); }
    static I offsets(Index stride) {
        return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<std::int32_t>(stride)));
    }
    // As on AVX-512 with two 128-bit chunks per vector (chunk c of load v holds row 4c + v).
    static void load_t(const std::uint8_t* base, Index stride, std::size_t off, I t[4]) {
        I q[4];
        const std::uint8_t* p0 = opaque(base + off);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
            const std::uint8_t* p = p0 + v * stride;
            q[v] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4 * stride)), 1);
        }
        const I a0 = _mm256_unpacklo_epi32(q[0], q[1]), a1 = _mm256_unpackhi_epi32(q[0], q[1]);
        const I a2 = _mm256_unpacklo_epi32(q[2], q[3]), a3 = _mm256_unpackhi_epi32(q[2], q[3]);
        t[0] = _mm256_unpacklo_epi64(a0, a2);
        t[1] = _mm256_unpackhi_epi64(a0, a2);
        t[2] = _mm256_unpacklo_epi64(a1, a3);
        t[3] = _mm256_unpackhi_epi64(a1, a3);
    }
};
inline constexpr int kNV = 2, kMR_a = 2, kMR_b = 2, kMR_gemv = 4;
#endif

using I = Isa::I;
using F = Isa::F;
inline constexpr int G = Isa::G;

// Q8_0 weights are decoded as signed bytes where the ISA lacks u8 × s8 dot products.
inline bool signed_q8(DType t) { return t == DType::q8_0 && !Isa::q8_unsigned; }

// ---- Panels ----------------------------------------------------------------------------------

// Where group v of a panel of NV groups goes, units counted from the panel's first. Decoders
// take it by value: its pointers then stay in registers across the stores.
// Decoders produce unsigned codes (nibble, w + 128, 6-bit value) and call, for each unit u:
//   o.begin_unit(u); o.step(u, s, codes of values 4s .. 4s+3) for s < unit_values / 4 (local to
//   the unit); o.sub_scale(u, j, d · sc_j) per sub-block; o.min_pair(u, i, ...), o.neg_dmin(u, ...)
//   (Q4_K, Q5_K); o.subs_done(u, j0, j1) once the steps of sub-blocks [j0, j1) are all out
//   (K-quants); o.end_unit(u).
// PanelOut writes them into a panel; the fused GEMV's sink (below) consumes them in registers.
// With `offset` set (AMX panels) the weights' integer offset is subtracted, so the steps hold the
// signed codes themselves.
struct PanelOut {
    std::uint8_t* q;      // group v's step 0; step s at q + s · qstride
    float* scale;         // sub-block j at scale + j · fstride
    std::int32_t* mins;   // pair i at mins + i · fstride
    float* negdmin;       // unit u at negdmin + u · fstride
    Index qstride, fstride, u0, steps, subs;
    I offset;
    bool is_signed;
    static constexpr bool high_x16 = false;  // see high_nibbles
    PanelOut(const Format& f, Index u0_, std::uint8_t* q_, float* scale_, std::int32_t* mins_, float* negdmin_, int NV, int v,
             int offset_ = 0)
        : q(q_ + v * 4 * G), scale(scale_ + v * G), mins(mins_ + v * G), negdmin(negdmin_ + v * G), qstride(NV * 4 * G),
          fstride(NV * G), u0(u0_), steps(f.unit_values / 4), subs(f.unit_values / f.sub), offset(Isa::set8(offset_)),
          is_signed(offset_ != 0) {}
    void begin_unit(Index) const {}
    void subs_done(Index, int, int) const {}
    void end_unit(Index) const {}
    void step(Index u, int s, I val) const {
        Isa::storei(q + ((u - u0) * steps + s) * qstride, is_signed ? Isa::sub8(val, offset) : val);
    }
    void sub_scale(Index u, int j, F val) const { Isa::storef(scale + ((u - u0) * subs + j) * fstride, val); }
    void min_pair(Index u, int i, I val) const { Isa::storei(mins + ((u - u0) * 4 + i) * fstride, val); }
    void neg_dmin(Index u, F val) const { Isa::storef(negdmin + (u - u0) * fstride, val); }
};

// The G rows of a group, equally spaced: row r at base + r · stride. A group that runs past the
// matrix's last row is first copied into `spare` with zero rows after it (those lanes are
// computed and dropped). Interleaved (the x16 dtypes; whole groups only): the rows are lanes
// lane0 .. lane0 + G − 1 of the 16-row group at base − lane0 · stride (lane0 > 0 on AVX2, G = 8).
struct Rows {
    const std::uint8_t* base;
    Index stride;
    I offs;  // lane r: r · stride (for gathers)
    bool interleaved = false;
    Index lane0 = 0;
    Rows(const std::uint8_t* rows, Index row_bytes, Index count, std::uint8_t* spare, bool interleaved_ = false, Index first_row = 0)
        : base(rows), stride(row_bytes), interleaved(interleaved_), lane0(interleaved_ ? first_row % quant::interleaved_rows : 0) {
        static_assert(quant::interleaved_rows % G == 0, "a group must lie within 16 interleaved rows");
        if (interleaved && count < G) fail("quantized matmul: a partial group of interleaved rows");  // check_part rules it out
        if (count < G) {
            std::memcpy(spare, rows, static_cast<std::size_t>(count * row_bytes));
            std::memset(spare + count * row_bytes, 0, static_cast<std::size_t>((G - count) * row_bytes));
            base = spare;
        }
        offs = Isa::offsets(row_bytes);
    }
    // Interleaved: where block u (of unit_bytes per row) of the 16-row group starts.
    const std::uint8_t* unit16(Index u, std::size_t unit_bytes) const {
        return base - lane0 * stride + static_cast<std::size_t>(u) * quant::interleaved_rows * unit_bytes;
    }
};

// ---- Decoders: units [u0, u1) of a group's rows ------------------------------------------------
// Out is PanelOut (by value: its pointers stay in registers across the stores) or a sink
// reference.

// Q4_0 and Q8_0 blocks (18 and 34 bytes) put every other f16 scale across a 4-byte lane
// boundary. Rather than gather those scales (16 lanes, about 15 cycles on Zen 4), runs of blocks
// whose length is a multiple of 4 bytes (4 Q4_0 blocks = 18 dwords, 2 Q8_0 blocks = 17) are
// transposed whole, and the blocks that start 2 bytes into a dword are realigned with shift2:
// Q4_0 16.2 -> 12.8 ns, Q8_0 19.8 -> 16.7 ns per block of 16 rows on Zen 4 (cache-resident).
// Blocks left over (K not a multiple of 128 or 64 values) take the gather.

// The high nibbles of t's bytes as codes: shifted down for a panel, or only masked (16 × the
// code) for the fused GEMV (Out::high_x16), which divides those int32 sums by 16 once per
// sub-block instead (exact: every term is a multiple of 16). Saves a shift per step.
template <class Out>
I high_nibbles(I t) {
    if constexpr (std::remove_reference_t<Out>::high_x16) return Isa::and_(t, Isa::set8(static_cast<char>(0xF0)));
    else return Isa::and_(Isa::srli16<4>(t), Isa::set8(0x0F));
}

// w[i] = dword i (lane r: bytes off + 4i .. off + 4i + 3 of row r) for i < N (N ≥ 4): load_t in
// steps of 4, the last step overlapping the one before where N is not a multiple of 4, so
// nothing past byte off + 4N is read.
template <int N>
void load_dwords(const Rows& R, std::size_t off, I* w) {
    static_assert(N >= 4);
#pragma GCC unroll 8
    for (int i = 0; i + 4 <= N; i += 4) Isa::load_t(R.base, R.stride, off + 4 * static_cast<std::size_t>(i), w + i);
    if constexpr (N % 4 != 0) {
        I t[4];
        Isa::load_t(R.base, R.stride, off + 4 * static_cast<std::size_t>(N - 4), t);
#pragma GCC unroll 4
        for (int i = 4 - N % 4; i < 4; ++i) w[N - 4 + i] = t[i];
    }
}

// Q4_0 block u at `t` (dword j: codes 4j .. 4j+3 as low nibbles, 16 + 4j .. as high), scale d.
template <class Out>
void emit_q4_0(Out& o, Index u, F d, const I* t) {
    const I m4 = Isa::set8(0x0F);
    o.begin_unit(u);
    o.sub_scale(u, 0, d);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
        o.step(u, j, Isa::and_(t[j], m4));
        o.step(u, 4 + j, high_nibbles<Out>(t[j]));
    }
    o.end_unit(u);
}

// q4_0x16 (quant/interleave.hpp): each block of 16 rows is their scales, then their code bytes
// already in lanes, so a step is one load and nothing is transposed. The same steps and scales
// as decode_q4_0 on the same blocks, so the same bits.
template <class Out>
void decode_q4_0x16(const Rows& R, Index u0, Index u1, Out o) {
    for (Index u = u0; u < u1; ++u) {
        const std::uint8_t* b = R.unit16(u, 18);
        I t[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) t[j] = Isa::loadi(b + 32 + 64 * j + 4 * R.lane0);
        emit_q4_0(o, u, Isa::load_f16(b + 2 * R.lane0), t);
    }
}

template <class Out>
void decode_q4_0(const Rows& R, Index u0, Index u1, Out o) {
    if (R.interleaved) {
        decode_q4_0x16<Out>(R, u0, u1, o);
        return;
    }
    Index u = u0;
    for (; u + 4 <= u1; u += 4) {
        const std::size_t off = static_cast<std::size_t>(u) * 18;
        // dwords 0 .. 17 of the 72 bytes: block u at byte 0 (scale in dword 0's low half), u + 1
        // at 18 (scale: dword 4's high half, codes: dwords 5 .. 8), u + 2 at 36, u + 3 at 54.
        I w[18], t[4];
        load_dwords<18>(R, off, w);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) t[j] = Isa::shift2(w[j], w[j + 1]);
        emit_q4_0(o, u, Isa::f16_lo(w[0]), t);
        emit_q4_0(o, u + 1, Isa::f16_lo(Isa::srli32<16>(w[4])), w + 5);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) t[j] = Isa::shift2(w[9 + j], w[10 + j]);
        emit_q4_0(o, u + 2, Isa::f16_lo(w[9]), t);
        emit_q4_0(o, u + 3, Isa::f16_lo(Isa::srli32<16>(w[13])), w + 14);
    }
    for (; u < u1; ++u) {
        const std::size_t off = static_cast<std::size_t>(u) * 18;
        I t[4];
        Isa::load_t(R.base, R.stride, off + 2, t);
        emit_q4_0(o, u, Isa::f16_lo(Isa::gather(R.base + off, R.offs)), t);
    }
}

// q8_0x16, as q4_0x16: the 16 rows' scales, then their code dwords already in lanes.
template <class Out>
void decode_q8_0x16(const Rows& R, Index u0, Index u1, Out o) {
    const I flip = Isa::set8(Isa::q8_unsigned ? 0x80 : 0);  // w + 128 as u8, or w as is
    for (Index u = u0; u < u1; ++u) {
        const std::uint8_t* b = R.unit16(u, 34);
        o.begin_unit(u);
        o.sub_scale(u, 0, Isa::load_f16(b + 2 * R.lane0));
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) o.step(u, j, Isa::xor_(Isa::loadi(b + 32 + 64 * j + 4 * R.lane0), flip));
        o.end_unit(u);
    }
}

template <class Out>
void decode_q8_0(const Rows& R, Index u0, Index u1, Out o) {
    if (R.interleaved) {
        decode_q8_0x16<Out>(R, u0, u1, o);
        return;
    }
    const I flip = Isa::set8(Isa::q8_unsigned ? 0x80 : 0);  // w + 128 as u8, or w as is
    Index u = u0;
    for (; u + 2 <= u1; u += 2) {
        const std::size_t off = static_cast<std::size_t>(u) * 34;
        // dwords 0 .. 16 of the 68 bytes: block u at byte 0 (scale in dword 0's low half, codes
        // from byte 2), block u + 1 at 34 (scale: dword 8's high half, codes: dwords 9 .. 16).
        I w[17];
        load_dwords<17>(R, off, w);
        o.begin_unit(u);
        o.sub_scale(u, 0, Isa::f16_lo(w[0]));
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) o.step(u, j, Isa::xor_(Isa::shift2(w[j], w[j + 1]), flip));
        o.end_unit(u);
        o.begin_unit(u + 1);
        o.sub_scale(u + 1, 0, Isa::f16_lo(Isa::srli32<16>(w[8])));
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) o.step(u + 1, j, Isa::xor_(w[9 + j], flip));
        o.end_unit(u + 1);
    }
    for (; u < u1; ++u) {
        const std::size_t off = static_cast<std::size_t>(u) * 34;
        o.begin_unit(u);
        o.sub_scale(u, 0, Isa::f16_lo(Isa::gather(R.base + off, R.offs)));
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            I t[4];
            Isa::load_t(R.base, R.stride, off + 2 + 16 * h, t);
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) o.step(u, 4 * h + j, Isa::xor_(t[j], flip));
        }
        o.end_unit(u);
    }
}

// Dwords at byte `off` of the rows (in unit u of `unit_bytes`), 4 of them, transposed: lane r of
// t[k] = dword k of row r. GGUF rows: Isa::load_t. Interleaved K-quants (quant/interleave.hpp:
// dword i of the 16 rows' blocks is one vector): 4 loads, no transpose.
template <bool Interleaved>
void load4(const Rows& R, std::size_t off, Index u, int unit_bytes, I t[4]) {
    if constexpr (Interleaved) {
        const auto ub = static_cast<std::size_t>(unit_bytes);
        const std::uint8_t* b = R.unit16(u, ub) + quant::interleaved_rows * (off - static_cast<std::size_t>(u) * ub) + 4 * R.lane0;
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) t[k] = Isa::loadi(b + 64 * k);
    } else {
        (void)u, (void)unit_bytes;
        Isa::load_t(R.base, R.stride, off, t);
    }
}

// Q4_K / Q5_K header (d, dmin, 12 bytes of 6-bit scales and mins) of unit u at `off`.
template <class Out, bool Interleaved = false>
void decode_k_header(const Rows& R, std::size_t off, Index u, int unit_bytes, Out o) {
    I h[4];  // h[0] = d | dmin << 16; h[1..3] = scale bytes 0-3, 4-7, 8-11
    load4<Interleaved>(R, off, u, unit_bytes, h);
    const F d = Isa::f16_lo(h[0]), dmin = Isa::f16_lo(Isa::srli32<16>(h[0]));
    const I m6 = Isa::set8(0x3F), m4 = Isa::set8(0x0F), top2 = Isa::set8(0x30);
    // bytes: scales 0-3, mins 0-3, scales 4-7, mins 4-7 (see quant::k_scale_min)
    const I sc_lo = Isa::and_(h[1], m6), mn_lo = Isa::and_(h[2], m6);
    const I sc_hi = Isa::or_(Isa::and_(h[3], m4), Isa::and_(Isa::srli32<2>(h[1]), top2));
    const I mn_hi = Isa::or_(Isa::and_(Isa::srli32<4>(h[3]), m4), Isa::and_(Isa::srli32<2>(h[2]), top2));
    // byte j of each lane as an int32 (one vpshufb), and bytes (2i, 2i + 1) as two int16
    auto put = [&](int j, I s) { o.sub_scale(u, j, Isa::mul(d, Isa::cvt(Isa::pick(s, 0x80808000u | (j % 4))))); };
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) put(j, sc_lo);
#pragma GCC unroll 4
    for (int j = 4; j < 8; ++j) put(j, sc_hi);
    o.min_pair(u, 0, Isa::pick(mn_lo, 0x80018000u));
    o.min_pair(u, 1, Isa::pick(mn_lo, 0x80038002u));
    o.min_pair(u, 2, Isa::pick(mn_hi, 0x80018000u));
    o.min_pair(u, 3, Isa::pick(mn_hi, 0x80038002u));
    o.neg_dmin(u, Isa::neg(dmin));
}

template <class Out, bool Interleaved = false>
void decode_q4_k(const Rows& R, Index u0, Index u1, Out o) {
    if constexpr (!Interleaved)
        if (R.interleaved) {
            decode_q4_k<Out, true>(R, u0, u1, o);
            return;
        }
    const I m4 = Isa::set8(0x0F);
    for (Index u = u0; u < u1; ++u) {
        const std::size_t off = static_cast<std::size_t>(u) * 144;
        o.begin_unit(u);
        decode_k_header<Out, Interleaved>(R, off, u, 144, o);
        // qs chunk h (16 bytes) lies in run r = h / 2: low nibbles are values 64r + 16(h%2) + 4j..,
        // high nibbles the same + 32.
#pragma GCC unroll 8
        for (int h = 0; h < 8; ++h) {
            I t[4];
            load4<Interleaved>(R, off + 16 + 16 * h, u, 144, t);
            const int s = 16 * (h / 2) + 4 * (h % 2);
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) {
                o.step(u, s + j, Isa::and_(t[j], m4));
                o.step(u, s + 8 + j, high_nibbles<Out>(t[j]));  // sub-block 2(h/2) + 1
            }
            if (h % 2 == 1) o.subs_done(u, h - 1, h + 1);
        }
        o.end_unit(u);
    }
}

template <class Out, bool Interleaved = false>
void decode_q5_k(const Rows& R, Index u0, Index u1, Out o) {
    if constexpr (!Interleaved)
        if (R.interleaved) {
            decode_q5_k<Out, true>(R, u0, u1, o);
            return;
        }
    const I m4 = Isa::set8(0x0F), bit4 = Isa::set8(0x10);
    for (Index u = u0; u < u1; ++u) {
        const std::size_t off = static_cast<std::size_t>(u) * 176;
        o.begin_unit(u);
        decode_k_header<Out, Interleaved>(R, off, u, 176, o);
        // qh[l] bit j is the fifth bit of value l of sub-block j; chunk g of qh covers l = 16g...
        I qh[2][4];
        load4<Interleaved>(R, off + 16, u, 176, qh[0]);
        load4<Interleaved>(R, off + 32, u, 176, qh[1]);
#pragma GCC unroll 8
        for (int h = 0; h < 8; ++h) {
            I t[4];
            load4<Interleaved>(R, off + 48 + 16 * h, u, 176, t);
            const int g = h % 2, s = 16 * (h / 2) + 4 * g;
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) {
                const I bits = qh[g][j];  // bits 2r and 2r+1 were shifted down to 0 and 1 below
                o.step(u, s + j, Isa::or_(Isa::and_(t[j], m4), Isa::and_(Isa::slli16<4>(bits), bit4)));
                o.step(u, s + 8 + j, Isa::or_(Isa::and_(Isa::srli16<4>(t[j]), m4), Isa::and_(Isa::slli16<3>(bits), bit4)));
            }
            if (g == 1) {  // next run: its sub-blocks' bits to positions 0 and 1
                o.subs_done(u, h - 1, h + 1);
#pragma GCC unroll 2
                for (int gg = 0; gg < 2; ++gg)
#pragma GCC unroll 4
                    for (int j = 0; j < 4; ++j) qh[gg][j] = Isa::srli16<2>(qh[gg][j]);
            }
        }
        o.end_unit(u);
    }
}

template <class Out, bool Interleaved = false>
void decode_q6_k(const Rows& R, Index u0, Index u1, Out o) {
    if constexpr (!Interleaved)
        if (R.interleaved) {
            decode_q6_k<Out, true>(R, u0, u1, o);
            return;
        }
    const I m4 = Isa::set8(0x0F), top2 = Isa::set8(0x30);
    for (Index u = u0; u < u1; ++u) {
        const std::size_t off = static_cast<std::size_t>(u) * 210;
        o.begin_unit(u);
        F d;
        if constexpr (Interleaved)  // the 16 rows' d after their 52 dwords (quant/interleave.hpp)
            d = Isa::load_f16(R.unit16(u, 210) + 52 * 64 + 2 * R.lane0);
        else
            d = Isa::f16_lo(Isa::srli32<16>(Isa::gather(R.base + off + 206, R.offs)));
        I sc[4];
        load4<Interleaved>(R, off + 192, u, 210, sc);  // int8 scales 4t .. 4t+3
#pragma GCC unroll 4
        for (int t = 0; t < 4; ++t) {
            o.sub_scale(u, 4 * t + 0, Isa::mul(d, Isa::cvt(Isa::srai32<24>(Isa::slli32<24>(sc[t])))));
            o.sub_scale(u, 4 * t + 1, Isa::mul(d, Isa::cvt(Isa::srai32<24>(Isa::slli32<16>(sc[t])))));
            o.sub_scale(u, 4 * t + 2, Isa::mul(d, Isa::cvt(Isa::srai32<24>(Isa::slli32<8>(sc[t])))));
            o.sub_scale(u, 4 * t + 3, Isa::mul(d, Isa::cvt(Isa::srai32<24>(sc[t]))));
        }
        // Half h: ql[l], ql[l + 32], qh[l] (l < 32) give values l, l + 32, l + 64, l + 96.
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h)
#pragma GCC unroll 2
            for (int g = 0; g < 2; ++g) {
                I a[4], b[4], hb[4];
                load4<Interleaved>(R, off + 64 * h + 16 * g, u, 210, a);
                load4<Interleaved>(R, off + 64 * h + 32 + 16 * g, u, 210, b);
                load4<Interleaved>(R, off + 128 + 32 * h + 16 * g, u, 210, hb);
                const int s = 32 * h + 4 * g;
#pragma GCC unroll 4
                for (int j = 0; j < 4; ++j) {
                    o.step(u, s + j, Isa::or_(Isa::and_(a[j], m4), Isa::and_(Isa::slli16<4>(hb[j]), top2)));
                    o.step(u, s + 8 + j, Isa::or_(Isa::and_(b[j], m4), Isa::and_(Isa::slli16<2>(hb[j]), top2)));
                    o.step(u, s + 16 + j, Isa::or_(Isa::and_(Isa::srli16<4>(a[j]), m4), Isa::and_(hb[j], top2)));
                    o.step(u, s + 24 + j, Isa::or_(Isa::and_(Isa::srli16<4>(b[j]), m4), Isa::and_(Isa::srli16<2>(hb[j]), top2)));
                }
                if (g == 1) o.subs_done(u, 8 * h, 8 * h + 8);
            }
        o.end_unit(u);
    }
}

template <class Out>
void decode(DType t, const Rows& R, Index u0, Index u1, Out o) {
    switch (t) {
        case DType::q8_0: decode_q8_0<Out>(R, u0, u1, o); break;
        case DType::q4_0: decode_q4_0<Out>(R, u0, u1, o); break;
        case DType::q4_k: decode_q4_k<Out>(R, u0, u1, o); break;
        case DType::q5_k: decode_q5_k<Out>(R, u0, u1, o); break;
        default: decode_q6_k<Out>(R, u0, u1, o); break;
    }
}

// ---- Activation side -------------------------------------------------------------------------

// Quantized x rows plus what a weight type needs from them, per row: corr[sub] = −offset · Σ qx
// over the sub-block (the weights' integer offset: 128 for unsigned Q8_0, 8 for Q4_0, 32 for
// Q6_K), pairs[unit][i] = (Σ qx over sub-blocks 2i and 2i+1 as two int16) for the K-quant mins.
struct Act {
    const std::int8_t* q;
    Index ldq;
    const std::int32_t* corr;
    Index ldc;
    const float* d;
    Index ldd;
    const std::int32_t* pairs;
    Index ldp;
    // Q4_0, Q4_K and Q5_K, one row, WEFT_QMM_ROW_DOTS: q rearranged for row_dots_* (make_act),
    // else null (row_dots_q6_k reads q as it is).
    const std::int8_t* q_lanes = nullptr;
    // The same rows from row m and unit u on.
    Act at(Index m, Index u, const Format& f) const {
        Act a = *this;
        a.q += m * ldq + u * f.unit_values;
        if (corr) a.corr += m * ldc + u * (f.unit_values / f.sub);
        a.d += m * ldd + u;
        if (pairs) a.pairs += m * ldp + u * 4;
        return a;
    }
};

// Builds the per-type arrays for qa (sized for qa's rows) in `store`.
inline Act make_act(DType t, const quant::QuantizedActivations& qa, std::vector<std::int32_t>& store) {
    const Format f = format_of(t);
    // The AMX kernels read the padding rows too (qa's, up to a multiple of 16); their sums are
    // zero, and so are their entries here, set with one fill instead of computed.
    const Index rows = qa.rows(), M = quant::QuantizedActivations::padded_rows(rows), K = qa.cols(), units = K / f.unit_values;
    Act a{qa.q(0), qa.ldq(), nullptr, 0, qa.d(0), units, nullptr, 0};
    const int offset = t == DType::q8_0 ? (Isa::q8_unsigned ? 128 : 0) : t == DType::q4_0 ? 8 : t == DType::q6_k ? 32 : 0;
    if (offset != 0) {
        const Index subs = K / f.sub, per = f.sub / 16;
        store.assign(static_cast<std::size_t>(M * subs), 0);
        for (Index m = 0; m < rows; ++m) {
            const std::int16_t* s = qa.sums(m);
            for (Index j = 0; j < subs; ++j) {
                std::int32_t sum = 0;
                for (Index i = 0; i < per; ++i) sum += s[j * per + i];
                store[static_cast<std::size_t>(m * subs + j)] = -offset * sum;
            }
        }
        a.corr = store.data();
        a.ldc = subs;
    } else if (f.mins) {
        store.assign(static_cast<std::size_t>(M * units * 4), 0);
        for (Index m = 0; m < rows; ++m) {
            const std::int16_t* s = qa.sums(m);
            for (Index p = 0; p < units * 4; ++p) {  // pair p: sub-blocks 2p, 2p + 1 (16 values each: sums 4p .. 4p+3)
                const std::int32_t lo = s[4 * p] + s[4 * p + 1], hi = s[4 * p + 2] + s[4 * p + 3];
                store[static_cast<std::size_t>(m * units * 4 + p)] =
                    static_cast<std::int32_t>((static_cast<std::uint32_t>(lo) & 0xFFFFu) | (static_cast<std::uint32_t>(hi) << 16));
            }
        }
        a.pairs = store.data();
        a.ldp = units * 4;
    }
#if defined(WEFT_QMM_ROW_DOTS)
    if ((t == DType::q4_0 || t == DType::q4_k || t == DType::q5_k) && qa.rows() == 1 && K >= 128) {
        // x's codes for row_dots_*: per group of 4n pieces of 16 bytes (4 Q4_0 blocks, n = 2, or a
        // K-quant super-block, n = 4), piece n·k + m to 4m + k, so that lane k of vector m meets
        // lane k of the weights' codes.
        const std::size_t used = store.size();
        store.resize(used + static_cast<std::size_t>(K / 4));
        if (a.corr != nullptr) a.corr = store.data();
        if (a.pairs != nullptr) a.pairs = store.data();
        auto* lanes = reinterpret_cast<std::int8_t*>(store.data() + used);
        const Index n = t == DType::q4_0 ? 2 : 4;
        for (Index g = 0; g + 64 * n <= K; g += 64 * n)
            for (Index k = 0; k < 4; ++k)
                for (Index m = 0; m < n; ++m) std::memcpy(lanes + g + 64 * m + 16 * k, qa.q(0) + g + 16 * (n * k + m), 16);
        a.q_lanes = lanes;
    }
#endif
    return a;
}

// ---- Microkernels: MR activation rows × NV groups over `units` units of a decoded panel --------
// acc: [MR][ldacc] floats (lanes of group v at v·G), read and written back.

struct Panel {
    const std::uint8_t* q;
    const float* scale;
    const std::int32_t* mins;
    const float* negdmin;
};

// Q8_0, Q4_0: one float step per block of 32 (8 dot steps).
template <int MR, int NV, bool SIGNED>
void kernel_blocks(Index units, const Panel& w, const Act& x, float* acc, Index ldacc) {
    F facc[MR][NV];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) facc[m][v] = Isa::loadf(acc + m * ldacc + v * G);
    for (Index u = 0; u < units; ++u) {
        I ia[MR][NV];
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            const I c = SIGNED ? Isa::zeroi() : Isa::bcast32(x.corr + m * x.ldc + u);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) ia[m][v] = c;
        }
        const std::uint8_t* wq = w.q + u * 8 * NV * 4 * G;
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) {
            I W[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) W[v] = Isa::loadi(wq + (s * NV + v) * 4 * G);
            if constexpr (SIGNED) {
#if defined(WEFT_QMM_AVX2)
                I Wa[NV];
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) Wa[v] = Isa::abs8(W[v]);
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) {
                    const I xb = Isa::bcast32(x.q + m * x.ldq + u * 32 + 4 * s);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; ++v) ia[m][v] = Isa::dot_signed(ia[m][v], Wa[v], W[v], xb);
                }
#endif
            } else {
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) {
                    const I xb = Isa::bcast32(x.q + m * x.ldq + u * 32 + 4 * s);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; ++v) ia[m][v] = Isa::dot(ia[m][v], W[v], xb);
                }
            }
        }
        F sw[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) sw[v] = Isa::loadf(w.scale + (u * NV + v) * G);
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            const F dx = Isa::bcastf(x.d + m * x.ldd + u);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) facc[m][v] = Isa::fma(Isa::mul(sw[v], dx), Isa::cvt(ia[m][v]), facc[m][v]);
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) Isa::storef(acc + m * ldacc + v * G, facc[m][v]);
}

// K-quants: SUB values per sub-block scale (32 or 16), MINS for Q4_K/Q5_K.
template <int MR, int NV, int SUB, bool MINS>
void kernel_super(Index units, const Panel& w, const Act& x, float* acc, Index ldacc) {
    constexpr int subs = 256 / SUB, steps = SUB / 4;
    for (Index u = 0; u < units; ++u) {
        F t[MR][NV];
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) t[m][v] = Isa::zerof();
        for (int j = 0; j < subs; ++j) {
            I ia[MR][NV];
#pragma GCC unroll 8
            for (int m = 0; m < MR; ++m) {
                const I c = MINS ? Isa::zeroi() : Isa::bcast32(x.corr + m * x.ldc + u * subs + j);
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) ia[m][v] = c;
            }
            const std::uint8_t* wq = w.q + (u * 64 + j * steps) * NV * 4 * G;
            const std::int8_t* xq = x.q + u * 256 + j * SUB;
#pragma GCC unroll 8
            for (int s = 0; s < steps; ++s) {
                I W[NV];
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) W[v] = Isa::loadi(wq + (s * NV + v) * 4 * G);
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) {
                    const I xb = Isa::bcast32(xq + m * x.ldq + 4 * s);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; ++v) ia[m][v] = Isa::dot(ia[m][v], W[v], xb);
                }
            }
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) {
                const F D = Isa::loadf(w.scale + ((u * subs + j) * NV + v) * G);
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) t[m][v] = Isa::fma(D, Isa::cvt(ia[m][v]), t[m][v]);
            }
        }
        if constexpr (MINS) {
            I b[MR][NV];
#pragma GCC unroll 8
            for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) b[m][v] = Isa::zeroi();
#pragma GCC unroll 4
            for (int i = 0; i < 4; ++i) {
                I mv[NV];
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) mv[v] = Isa::loadi(w.mins + ((u * 4 + i) * NV + v) * G);
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) {
                    const I xp = Isa::bcast32(x.pairs + m * x.ldp + u * 4 + i);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; ++v) b[m][v] = Isa::dot16(b[m][v], mv[v], xp);
                }
            }
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) {
                const F nd = Isa::loadf(w.negdmin + (u * NV + v) * G);
#pragma GCC unroll 8
                for (int m = 0; m < MR; ++m) t[m][v] = Isa::fma(nd, Isa::cvt(b[m][v]), t[m][v]);
            }
        }
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            const F dx = Isa::bcastf(x.d + m * x.ldd + u);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) {
                float* a = acc + m * ldacc + v * G;
                Isa::storef(a, Isa::fma(dx, t[m][v], Isa::loadf(a)));
            }
        }
    }
}

template <int MR, int NV>
void kernel(DType t, Index units, const Panel& w, const Act& x, float* acc, Index ldacc) {
    switch (t) {
        case DType::q8_0:
            if constexpr (Isa::q8_unsigned) kernel_blocks<MR, NV, false>(units, w, x, acc, ldacc);
            else kernel_blocks<MR, NV, true>(units, w, x, acc, ldacc);
            break;
        case DType::q4_0: kernel_blocks<MR, NV, false>(units, w, x, acc, ldacc); break;
        case DType::q4_k:
        case DType::q5_k: kernel_super<MR, NV, 32, true>(units, w, x, acc, ldacc); break;
        default: kernel_super<MR, NV, 16, false>(units, w, x, acc, ldacc); break;
    }
}

// Rows [m, M) in tiles of MR (the last one narrower).
template <int MR, int NV>
void kernel_rows(DType t, Index m, Index M, Index units, const Panel& w, const Act& x, const Format& f, Index u0, float* acc,
                 Index ldacc) {
    for (; m + MR <= M; m += MR) kernel<MR, NV>(t, units, w, x.at(m, u0, f), acc + m * ldacc, ldacc);
    const Index rest = M - m;
    if (rest == 0) return;
    [&]<int... R>(std::integer_sequence<int, R...>) {
        (void)((rest == R + 1 ? (kernel<R + 1, NV>(t, units, w, x.at(m, u0, f), acc + m * ldacc, ldacc), true) : false) || ...);
    }(std::make_integer_sequence<int, MR - 1>{});
}

#if defined(WEFT_QMM_AMX)
// ---- AMX tiles -------------------------------------------------------------------------------
// A 16 x 16 tile of outputs (16 activation rows, one panel group) at a time: per sub-block, tile
// A = 16 rows × SUB activation bytes, tile B = the group's SUB / 4 decoded steps (exactly the
// panel layout: 16 lanes × 4 bytes per step, NV · 64 bytes apart), tdpbsud gives C = the 16 × 16
// exact sub-block sums (signed × unsigned, as vpdpbusd with the operands swapped), which the
// AVX-512 code turns into floats in the same order as kernel_blocks / kernel_super. Two sets of
// tiles alternate so the next sub-block's product runs while this one's floats are done.

// Whether this process may use AMX: the CPU has AMX-TILE and AMX-INT8 and Linux granted the tile
// state (arch_prctl ARCH_REQ_XCOMP_PERM). Asked once.
inline bool amx_available() {
    static const bool ok = amx::available(amx::int8_unit);
    return ok;
}

// Batches from this many rows take the tiles (padded to 16 rows: AMX's cost barely depends on M).
inline constexpr Index kAmxMinRows = 16;
// The tiles read the activations 16 rows at a time: QuantizedActivations pads batches from 16 rows on.
static_assert(quant::QuantizedActivations::padded_rows(kAmxMinRows) % 16 == 0);

// Lets tests run the AVX-512 VNNI GEMM on a machine with AMX (results are the same bits).
inline std::atomic<bool>& amx_allowed() {
    static std::atomic<bool> allowed{true};
    return allowed;
}

// The GEMM's choice of tiles for M rows of type t. Q6_K's sub-blocks of 16 values halve the work
// per tile product and its float pass; VNNI is faster there (measured).
inline bool gemm_uses_amx(DType t, Index M) {
    return M >= kAmxMinRows && t != DType::q6_k && amx_allowed().load(std::memory_order_relaxed) && amx_available();
}

// Tiles 0/1: A, 2/3: B, 4/5: C (two alternating sets) for sub-blocks of `sub` values.
inline void amx_configure(int sub) {
    amx::TileConfig c;
    for (int i = 0; i < 2; ++i) {
        c.set(i, 16, sub);
        c.set(2 + i, sub / 4, 64);
        c.set(4 + i, 16, 64);
    }
    c.load();
}

// Tile set S: C = A · B for sub-block js (counted from the chunk's first), stored to c.
template <int S, int SUB>
inline void amx_product(const Panel& w, const Act& x, int NV, int v, Index js, std::int32_t* c) {
    constexpr int steps = SUB / 4;
    const void* a = x.q + js * SUB;
    const void* b = w.q + (js * steps * NV + v) * 64;
    // (GCC's tile intrinsics paste the tile number into the assembly: literals only)
    if constexpr (S == 0) {
        _tile_loadd(0, a, x.ldq);
        _tile_loadd(2, b, NV * 64);
        _tile_zero(4);
        _tile_dpbssd(4, 0, 2);
        _tile_stored(4, c, 64);
    } else {
        _tile_loadd(1, a, x.ldq);
        _tile_loadd(3, b, NV * 64);
        _tile_zero(5);
        _tile_dpbssd(5, 1, 3);
        _tile_stored(5, c, 64);
    }
}

// Outputs acc [16][ldacc] (+)= rows m .. m+15 of x (x at row m) · group v over `units` units of a
// signed panel. In batches: the tile products of up to 16 sub-blocks back to back into c (their
// latencies overlap), then the float steps over the batch.
template <int SUB, bool MINS, bool BLOCKS>
void amx_tile(Index units, const Panel& w, int NV, int v, const Act& x, float* acc, Index ldacc) {
    constexpr int subs = BLOCKS ? 1 : 256 / SUB;  // sub-blocks per unit
    constexpr int batch = BLOCKS ? 16 : subs * std::max(1, 16 / subs);
    alignas(64) std::int32_t c[batch][16][16];
    F f[16];  // Q8_0/Q4_0: the outputs; K-quants: the unit's t
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) f[r] = BLOCKS ? Isa::loadf(acc + r * ldacc) : Isa::zerof();
    const Index total = units * subs;
    for (Index j0 = 0; j0 < total; j0 += batch) {
        const Index n = std::min<Index>(batch, total - j0);
        for (Index i = 0; i < n; i += 2) {
            amx_product<0, SUB>(w, x, NV, v, j0 + i, c[i][0]);
            if (i + 1 < n) amx_product<1, SUB>(w, x, NV, v, j0 + i + 1, c[i + 1][0]);
        }
        for (Index i = 0; i < n; ++i) {
            const std::int32_t(*cs)[16] = c[i];
            const Index js = j0 + i, u = js / subs, j = js % subs;
            if constexpr (BLOCKS) {
                const F sw = Isa::loadf(w.scale + (u * NV + v) * G);
#pragma GCC unroll 16
                for (int r = 0; r < 16; ++r)
                    f[r] = Isa::fma(Isa::mul(sw, Isa::bcastf(x.d + r * x.ldd + u)), Isa::cvt(Isa::loadi(cs[r])), f[r]);
            } else {
                const F D = Isa::loadf(w.scale + (js * NV + v) * G);
#pragma GCC unroll 16
                for (int r = 0; r < 16; ++r) f[r] = Isa::fma(D, Isa::cvt(Isa::loadi(cs[r])), f[r]);
                if (j == subs - 1) {  // the unit's mins, then out = fma(dx, t, out)
                    if constexpr (MINS) {
                        I mv[4];
#pragma GCC unroll 4
                        for (int k = 0; k < 4; ++k) mv[k] = Isa::loadi(w.mins + ((u * 4 + k) * NV + v) * G);
                        const F nd = Isa::loadf(w.negdmin + (u * NV + v) * G);
#pragma GCC unroll 16
                        for (int r = 0; r < 16; ++r) {
                            I b = Isa::zeroi();
#pragma GCC unroll 4
                            for (int k = 0; k < 4; ++k) b = Isa::dot16(b, mv[k], Isa::bcast32(x.pairs + r * x.ldp + u * 4 + k));
                            f[r] = Isa::fma(nd, Isa::cvt(b), f[r]);
                        }
                    }
#pragma GCC unroll 16
                    for (int r = 0; r < 16; ++r) {
                        float* a = acc + r * ldacc;
                        Isa::storef(a, Isa::fma(Isa::bcastf(x.d + r * x.ldd + u), f[r], Isa::loadf(a)));
                        f[r] = Isa::zerof();
                    }
                }
            }
        }
    }
    if constexpr (BLOCKS)
#pragma GCC unroll 16
        for (int r = 0; r < 16; ++r) Isa::storef(acc + r * ldacc, f[r]);
}

// Rows [0, M) in tiles of 16 (the activation and acc buffers are padded to whole tiles).
template <int NV>
void amx_rows(DType t, Index M, Index units, const Panel& w, const Act& x, const Format& f, Index u0, float* acc, Index ldacc) {
    for (Index m = 0; m < M; m += 16)
        for (int v = 0; v < NV; ++v) {
            const Act xm = x.at(m, u0, f);
            float* a = acc + m * ldacc + v * G;
            switch (t) {
                case DType::q8_0:
                case DType::q4_0: amx_tile<32, false, true>(units, w, NV, v, xm, a, ldacc); break;
                case DType::q4_k:
                case DType::q5_k: amx_tile<32, true, false>(units, w, NV, v, xm, a, ldacc); break;
                default: amx_tile<16, false, false>(units, w, NV, v, xm, a, ldacc); break;
            }
        }
}

// The offset AMX panels subtract from the decoded codes (AMX multiplies signed by signed).
inline int signed_offset(DType t) { return t == DType::q8_0 ? 128 : t == DType::q4_0 ? 8 : t == DType::q6_k ? 32 : 0; }
#endif  // WEFT_QMM_AMX

// ---- Fused GEMV for one activation row (decoding) ------------------------------------------
// The decoders' codes go straight into the dot products, without a panel in memory: per unit,
// one int32 accumulator per sub-block, then the float steps of kernel_blocks / kernel_super in
// the same order (so the same bits).
template <DType T, int MR>
struct Sink {
    static constexpr bool blocks = T == DType::q8_0 || T == DType::q4_0;
    static constexpr bool mins = T == DType::q4_k || T == DType::q5_k;
    static constexpr bool signed_w = T == DType::q8_0 && !Isa::q8_unsigned;
    static constexpr bool corr = !mins && !signed_w;
    static constexpr int uv = blocks ? 32 : 256, sub = T == DType::q6_k ? 16 : 32, subs = uv / sub, steps = sub / 4;
    // Q8_0/Q4_0 have one sub-block per unit: its eight steps go to two accumulators (added at the
    // end, exactly) so that the dependency chain is four vpdpbusd long. Q4_0's second one takes
    // the high nibbles, 16 × their codes (high_nibbles), as do Q4_K's odd sub-blocks.
    static constexpr int chains = blocks ? 2 : 1;
    static constexpr bool high_x16 = (T == DType::q4_0 || T == DType::q4_k) && Isa::dot_any_u8;
    // ia[a] as the exact integer sum of its sub-block (or chain)
    static I int_sum(I v, int a) {
        if constexpr (high_x16) return a % 2 == 1 ? Isa::srai32<4>(v) : v;
        else return v;
    }
    const Act& x;
    F acc[MR], t[MR];
    I ia[subs * chains][MR];
    F D[subs];
    I mv[4];
    F nd;
    explicit Sink(const Act& x_) : x(x_) {
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) acc[m] = Isa::zerof();
    }
    void begin_unit(Index u) {
#pragma GCC unroll 16
        for (int j = 0; j < subs; ++j)
#pragma GCC unroll 8
            for (int m = 0; m < MR; ++m) ia[j][m] = corr ? Isa::bcast32(x.corr + m * x.ldc + u * subs + j) : Isa::zeroi();
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            if constexpr (chains == 2) ia[1][m] = Isa::zeroi();
            t[m] = Isa::zerof();
        }
    }
    void step(Index u, int s, I w) {
        const int a = T == DType::q4_0 ? s / 4 : chains == 2 ? s % 2 : s / steps;
#if defined(WEFT_QMM_AVX2)
        const I wa = signed_w ? Isa::abs8(w) : w;
#endif
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            const I xb = Isa::bcast32(x.q + m * x.ldq + u * uv + 4 * s);
#if defined(WEFT_QMM_AVX2)
            if constexpr (signed_w) {
                ia[a][m] = Isa::dot_signed(ia[a][m], wa, w, xb);
                continue;
            }
#endif
            ia[a][m] = Isa::dot(ia[a][m], w, xb);
        }
    }
    void sub_scale(Index, int j, F d) { D[j] = d; }
    void min_pair(Index, int i, I m) { mv[i] = m; }
    void neg_dmin(Index, F v) { nd = v; }
    // K-quants: sub-blocks [j0, j1) into t, in order (their accumulators are free after this).
    void subs_done(Index, int j0, int j1) {
        for (int j = j0; j < j1; ++j)
#pragma GCC unroll 8
            for (int m = 0; m < MR; ++m) t[m] = Isa::fma(D[j], Isa::cvt(int_sum(ia[j][m], j)), t[m]);
    }
    void end_unit(Index u) {
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
            if constexpr (blocks) {
                acc[m] = Isa::fma(Isa::mul(D[0], Isa::bcastf(x.d + m * x.ldd + u)), Isa::cvt(Isa::add32(ia[0][m], int_sum(ia[1][m], 1))), acc[m]);
            } else {
                if constexpr (mins) {
                    I b = Isa::zeroi();
#pragma GCC unroll 4
                    for (int i = 0; i < 4; ++i) b = Isa::dot16(b, mv[i], Isa::bcast32(x.pairs + m * x.ldp + u * 4 + i));
                    t[m] = Isa::fma(nd, Isa::cvt(b), t[m]);
                }
                acc[m] = Isa::fma(Isa::bcastf(x.d + m * x.ldd + u), t[m], acc[m]);
            }
        }
    }
};

#if defined(WEFT_QMM_ROW_DOTS)
// ---- Q4_0, one activation row: dot products along the rows, then the sums transposed ----------
// The decoders above transpose codes so that a lane is a row; for Q4_0 that costs about 25
// 512-bit shuffles per block of 16 rows (Zen 4 runs one 512-bit shuffle per cycle). Here each
// row's run of 4 blocks (72 bytes) is compacted with one vpermi2b into its 64 code bytes
// (128-bit lane k: block k), split into nibbles (vpand, vgf2p8affineqb) and dotted with x
// rearranged to match (Act::q_lanes), leaving lane k with 4 partial sums of block k. Those are
// exact in int16 (each at most 8 · 15 · 127 = 15240, two of them 30480), so two rounds of
// vpackssdw + vpmaddwd (× 1) add them while they interleave rows: after the second, lane k of
// quad q holds block k's sums of rows 4q .. 4q+3, and a 4 × 4 shuffle of lanes gives one vector
// per block. The scales take a tree of word permutes (about 1 ns of the block's time). Then the
// float steps of Sink::end_unit, so the same bits. One core, Zen 4, ns per block of 16 rows
// (min of 5 runs, the GEMV's driver included): 11.9 -> 10.9 on L2-resident weights, 11.2 -> 10.2
// streaming them with the prefetches.
inline constexpr auto kRowDotsIndex = [] {
    struct {
        // vpermi2b table: a run's first 64 bytes, then (index 64 + i) its bytes 56 + i
        alignas(64) std::uint8_t codes[64];
        alignas(64) std::uint16_t pair[32], quad[32], oct[32], lo[32], hi[32];  // the scale tree
    } t{};
    for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 16; ++i) t.codes[16 * k + i] = static_cast<std::uint8_t>(k < 3 ? 18 * k + 2 + i : 64 + i);
    for (int k = 0; k < 4; ++k) {  // scale k at byte 18k: rows 2p, 2p + 1 -> words 0-3, 4-7
        t.pair[k] = static_cast<std::uint16_t>(9 * k);
        t.pair[4 + k] = static_cast<std::uint16_t>(32 + 9 * k);
    }
    for (int j = 0; j < 8; ++j) {  // 4 rows × 4 blocks, then 8 rows × 4 blocks (word 4 · row + block)
        t.quad[j] = static_cast<std::uint16_t>(j);
        t.quad[8 + j] = static_cast<std::uint16_t>(32 + j);
    }
    for (int j = 0; j < 16; ++j) {
        t.oct[j] = static_cast<std::uint16_t>(j);
        t.oct[16 + j] = static_cast<std::uint16_t>(32 + j);
    }
    for (int r = 0; r < 16; ++r) {  // lo: blocks 0, 1 (16 rows each); hi: blocks 2, 3
        const int src = r < 8 ? 4 * r : 32 + 4 * (r - 8);
        t.lo[r] = static_cast<std::uint16_t>(src);
        t.lo[16 + r] = static_cast<std::uint16_t>(src + 1);
        t.hi[r] = static_cast<std::uint16_t>(src + 2);
        t.hi[16 + r] = static_cast<std::uint16_t>(src + 3);
    }
    return t;
}();

// vgf2p8affineqb matrix: each byte's bits 4-7 down to 0-3 (its high nibble as a code).
inline constexpr std::int64_t kHighNibble = 0x1020408000000000;

// Lane: a's 4 int32 and b's 4 int32, each exact in int16 -> [a0 + a1, a2 + a3, b0 + b1, b2 + b3].
inline I add_int16_pairs(I a, I b) { return _mm512_madd_epi16(_mm512_packs_epi32(a, b), _mm512_set1_epi16(1)); }

// Lane k of quad q (rows 4q .. 4q+3) to vector k (16 rows): a 4 × 4 transpose of 128-bit lanes.
inline void transpose_lanes(const I quad[4], I out[4]) {
    const I t0 = _mm512_maskz_shuffle_i32x4(Isa::all16, quad[0], quad[1], 0x44), t1 = _mm512_maskz_shuffle_i32x4(Isa::all16, quad[0], quad[1], 0xEE);
    const I t2 = _mm512_maskz_shuffle_i32x4(Isa::all16, quad[2], quad[3], 0x44), t3 = _mm512_maskz_shuffle_i32x4(Isa::all16, quad[2], quad[3], 0xEE);
    out[0] = _mm512_maskz_shuffle_i32x4(Isa::all16, t0, t2, 0x88);
    out[1] = _mm512_maskz_shuffle_i32x4(Isa::all16, t0, t2, 0xDD);
    out[2] = _mm512_maskz_shuffle_i32x4(Isa::all16, t1, t3, 0x88);
    out[3] = _mm512_maskz_shuffle_i32x4(Isa::all16, t1, t3, 0xDD);
}

// acc (lane r: row r's output) += blocks u .. u + 3 of the group's rows.
inline void row_dots_q4_0(const Rows& R, Index u, const Act& x, F& acc) {
    const auto& ix = kRowDotsIndex;
    const I codes = _mm512_load_si512(ix.codes), m4 = Isa::set8(0x0F), high = _mm512_set1_epi64(kHighNibble);
    const I x_lo = Isa::loadi(x.q_lanes + u * 32), x_hi = Isa::loadi(x.q_lanes + u * 32 + 64);  // run u / 4: 128 bytes
    const std::uint8_t* p0 = opaque(R.base + static_cast<std::size_t>(u) * 18);
    I quad_sums[4], quad_scales[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
        I pair_sums[2], pair_scales[2];
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            I sums[2], raw[2];
#pragma GCC unroll 2
            for (int i = 0; i < 2; ++i) {
                const std::uint8_t* p = p0 + (4 * q + 2 * h + i) * R.stride;
                raw[i] = Isa::loadi(p);
                const I c = _mm512_permutex2var_epi8(raw[i], codes, _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 56))));
                sums[i] = Isa::dot(Isa::dot(Isa::zeroi(), Isa::and_(c, m4), x_lo), _mm512_gf2p8affine_epi64_epi8(c, high, 0), x_hi);
            }
            pair_sums[h] = add_int16_pairs(sums[0], sums[1]);
            pair_scales[h] = _mm512_permutex2var_epi16(raw[0], _mm512_load_si512(ix.pair), raw[1]);
        }
        quad_sums[q] = add_int16_pairs(pair_sums[0], pair_sums[1]);
        quad_scales[q] = _mm512_permutex2var_epi16(pair_scales[0], _mm512_load_si512(ix.quad), pair_scales[1]);
    }
    const I oct0 = _mm512_permutex2var_epi16(quad_scales[0], _mm512_load_si512(ix.oct), quad_scales[1]);
    const I oct1 = _mm512_permutex2var_epi16(quad_scales[2], _mm512_load_si512(ix.oct), quad_scales[3]);
    const I d01 = _mm512_permutex2var_epi16(oct0, _mm512_load_si512(ix.lo), oct1);
    const I d23 = _mm512_permutex2var_epi16(oct0, _mm512_load_si512(ix.hi), oct1);
    auto f16 = [](I v, int half) {  // words [16 · half, 16 · half + 16) as floats
        return _mm512_maskz_cvtph_ps(Isa::all16, half == 0 ? _mm512_maskz_extracti64x4_epi64(Isa::all8, v, 0) : _mm512_maskz_extracti64x4_epi64(Isa::all8, v, 1));
    };
    const F d[4] = {f16(d01, 0), f16(d01, 1), f16(d23, 0), f16(d23, 1)};
    I sums[4];
    transpose_lanes(quad_sums, sums);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k)
        acc = Isa::fma(Isa::mul(d[k], Isa::bcastf(x.d + u + k)), Isa::cvt(Isa::add32(sums[k], Isa::bcast32(x.corr + u + k))), acc);
}

// Q4_K the same way, a super-block at a time. Its 128 code bytes are four runs of 32, each run's
// low nibbles one sub-block and its high nibbles the next; two 64-byte loads and two lane
// shuffles give P = the first 16 bytes of each run and Q = the last 16, so that lane k of
// lo(P), lo(Q) is sub-block 2k and of hi(P), hi(Q) sub-block 2k + 1, each dotted with its x
// (Act::q_lanes, vector m: lane k = values 64k + 16m .. + 15). A lane then holds 4 sums of 8
// products of its sub-block (at most 15240, so the same two int16 rounds apply), and two 4 × 4
// lane shuffles (even and odd sub-blocks) give one vector per sub-block. The header goes through
// decode_k_header as before (about a fifth of the time); then the float steps of Sink for Q4_K.
// One core, Zen 4, per super-block of 16 rows: 80 -> 74 ns (70 with Isa::pick in the header).
// End to end (1B, 2 threads, host at 47 GB/s), Q4_0 and Q4_K went from 65-71 % to 78-80 % of
// the read bandwidth.
struct KHeader {
    F D[8];
    I mv[4];
    F nd;
    void sub_scale(Index, int j, F d) { D[j] = d; }
    void min_pair(Index, int i, I m) { mv[i] = m; }
    void neg_dmin(Index, F v) { nd = v; }
};

// The float steps of Sink for Q4_K / Q5_K, from quads of sub-block sums (lane k of even[q] /
// odd[q]: sub-block 2k / 2k + 1 of rows 4q .. 4q+3).
inline void k_float_steps(const KHeader& h, const I even[4], const I odd[4], const Act& x, Index u, F& acc) {
    I se[4], so[4];
    transpose_lanes(even, se);
    transpose_lanes(odd, so);
    F t = Isa::zerof();
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
        t = Isa::fma(h.D[2 * k], Isa::cvt(se[k]), t);
        t = Isa::fma(h.D[2 * k + 1], Isa::cvt(so[k]), t);
    }
    I b = Isa::zeroi();
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) b = Isa::dot16(b, h.mv[i], Isa::bcast32(x.pairs + u * 4 + i));
    t = Isa::fma(h.nd, Isa::cvt(b), t);
    acc = Isa::fma(Isa::bcastf(x.d + u), t, acc);
}

// Lane: [r0 a, r0 b, r1 a, r1 b] and [r2 a, .., r3 b] -> [r0, r1, r2, r3], a + b in int32.
inline I add_pairs(I v, I w) {
    const __m512 a = _mm512_castsi512_ps(v), b = _mm512_castsi512_ps(w);
    return Isa::add32(_mm512_castps_si512(_mm512_maskz_shuffle_ps(Isa::all16, a, b, 0x88)),
                      _mm512_castps_si512(_mm512_maskz_shuffle_ps(Isa::all16, a, b, 0xDD)));
}

// acc (lane r: row r's output) += super-block u of the group's rows, Q4_K or Q5_K. Q5_K as Q4_K
// (x in the same lanes), each code with its fifth bit: qh[l] bit j belongs to value l of
// sub-block j, so P's lane k takes bits 2k (low nibbles) and 2k + 1 (high) of qh[0 .. 15], Q's of
// qh[16 .. 31], moved to bit 4 by vgf2p8affineqb with a matrix per lane. A lane's sums then reach
// 2 · 4 · 31 · 127 = 31496: one int16 round, then the int32 adds of Q6_K. One core, Zen 4, per
// super-block of 16 rows: 115 -> 88 ns.
template <DType T>
void row_dots_q45_k(const Rows& R, Index u, const Act& x, F& acc) {
    constexpr bool q5 = T == DType::q5_k;
    constexpr std::size_t unit_bytes = q5 ? 176 : 144, qs = q5 ? 48 : 16;  // qh (Q5_K) at 16
    const I m4 = Isa::set8(0x0F), high = _mm512_set1_epi64(kHighNibble);
    // lane k: bit 2k (bit 2k + 1) to bit 4, i.e. matrix byte 3 = that bit
    const I bit_lo = _mm512_setr_epi64(1 << 24, 1 << 24, 4 << 24, 4 << 24, 16 << 24, 16 << 24, 64 << 24, 64 << 24);
    const I bit_hi = _mm512_setr_epi64(2 << 24, 2 << 24, 8 << 24, 8 << 24, 32 << 24, 32 << 24, std::int64_t{128} << 24, std::int64_t{128} << 24);
    I xl[4];
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) xl[m] = Isa::loadi(x.q_lanes + u * 256 + 64 * m);
    const std::size_t off = static_cast<std::size_t>(u) * unit_bytes;
    KHeader h;
    decode_k_header<KHeader&>(R, off, u, static_cast<int>(unit_bytes), h);
    const std::uint8_t* p0 = opaque(R.base + off);
    I even[4], odd[4];  // quad q: lane k = sub-block 2k (2k + 1) of rows 4q .. 4q+3
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
        I pair_even[2], pair_odd[2];
#pragma GCC unroll 2
        for (int hh = 0; hh < 2; ++hh) {
            I se[2], so[2];
#pragma GCC unroll 2
            for (int i = 0; i < 2; ++i) {
                const std::uint8_t* p = p0 + (4 * q + 2 * hh + i) * R.stride;
                const I a = Isa::loadi(p + qs), b = Isa::loadi(p + qs + 64);
                const I P = _mm512_maskz_shuffle_i64x2(Isa::all8, a, b, 0x88), Q = _mm512_maskz_shuffle_i64x2(Isa::all8, a, b, 0xDD);
                I lo_p = Isa::and_(P, m4), lo_q = Isa::and_(Q, m4);
                I hi_p = _mm512_gf2p8affine_epi64_epi8(P, high, 0), hi_q = _mm512_gf2p8affine_epi64_epi8(Q, high, 0);
                if constexpr (q5) {
                    const I hp = _mm512_maskz_broadcast_i32x4(Isa::all16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
                    const I hq = _mm512_maskz_broadcast_i32x4(Isa::all16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32)));
                    lo_p = Isa::or_(lo_p, _mm512_gf2p8affine_epi64_epi8(hp, bit_lo, 0));
                    lo_q = Isa::or_(lo_q, _mm512_gf2p8affine_epi64_epi8(hq, bit_lo, 0));
                    hi_p = Isa::or_(hi_p, _mm512_gf2p8affine_epi64_epi8(hp, bit_hi, 0));
                    hi_q = Isa::or_(hi_q, _mm512_gf2p8affine_epi64_epi8(hq, bit_hi, 0));
                }
                se[i] = Isa::dot(Isa::dot(Isa::zeroi(), lo_p, xl[0]), lo_q, xl[1]);
                so[i] = Isa::dot(Isa::dot(Isa::zeroi(), hi_p, xl[2]), hi_q, xl[3]);
            }
            pair_even[hh] = add_int16_pairs(se[0], se[1]);
            pair_odd[hh] = add_int16_pairs(so[0], so[1]);
        }
        even[q] = q5 ? add_pairs(pair_even[0], pair_even[1]) : add_int16_pairs(pair_even[0], pair_even[1]);
        odd[q] = q5 ? add_pairs(pair_odd[0], pair_odd[1]) : add_int16_pairs(pair_odd[0], pair_odd[1]);
    }
    k_float_steps(h, even, odd, x, u, acc);
}

// Q6_K the same way. Per row and half h of the super-block, ql's 64 bytes give 4 sub-blocks of
// 16 values in their low nibbles (lanes 0-3: values 128h + 16k ..) and 4 in their high nibbles
// (128h + 64 + 16k ..); qh's 32 bytes of that half, loaded into both lane pairs, give the top
// two bits (shifted per lane pair into bits 4-5), so that codes meet x in its own order. A lane
// is then one sub-block's 4 sums of 4 products, at most 4 · 63 · 127 = 32004: one int16 round
// (vpackssdw + vpmaddwd) fits, the second adds in int32 after two vshufps. Then the float steps
// of Sink for Q6_K. One core, Zen 4, per super-block of 16 rows: 149 -> 125 ns (vpternlogd in
// place of the and/or pairs measured slower: it shares the vpdpbusd pipes).
inline void row_dots_q6_k(const Rows& R, Index u, const Act& x, F& acc) {
    const std::size_t off = static_cast<std::size_t>(u) * 210;
    const I m4 = Isa::set8(0x0F), bits45 = Isa::set8(0x30);
    // word shifts per 128-bit lane pair: qh bits 0-1 / 2-3 up to 4-5, bits 4-5 / 6-7 down to 4-5
    const I up = _mm512_maskz_inserti64x4(Isa::all8, _mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const I down = _mm512_maskz_inserti64x4(Isa::all8, _mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    I xs[2][2];  // half h: values 128h .. 128h + 63, 128h + 64 .. 128h + 127
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
        xs[h][0] = Isa::loadi(x.q + u * 256 + 128 * h);
        xs[h][1] = Isa::loadi(x.q + u * 256 + 128 * h + 64);
    }
    const std::uint8_t* p0 = opaque(R.base + off);
    I kinds[4][4];  // kind 2h + n (n: low / high nibbles), quad q: lane k = sub-block 8h + 4n + k of rows 4q ..
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
        I pairs[4][2];
#pragma GCC unroll 2
        for (int hh = 0; hh < 2; ++hh) {
            I sums[4][2];
#pragma GCC unroll 2
            for (int i = 0; i < 2; ++i) {
                const std::uint8_t* p = p0 + (4 * q + 2 * hh + i) * R.stride;
#pragma GCC unroll 2
                for (int h = 0; h < 2; ++h) {
                    const I ql = Isa::loadi(p + 64 * h);
                    const I top = _mm512_maskz_broadcast_i64x4(Isa::all8, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + 32 * h)));
                    const I lo = Isa::or_(Isa::and_(ql, m4), Isa::and_(_mm512_sllv_epi16(top, up), bits45));
                    const I hi = Isa::or_(Isa::and_(Isa::srli16<4>(ql), m4), Isa::and_(_mm512_srlv_epi16(top, down), bits45));
                    sums[2 * h][i] = Isa::dot(Isa::zeroi(), lo, xs[h][0]);
                    sums[2 * h + 1][i] = Isa::dot(Isa::zeroi(), hi, xs[h][1]);
                }
            }
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) pairs[k][hh] = add_int16_pairs(sums[k][0], sums[k][1]);
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) kinds[k][q] = add_pairs(pairs[k][0], pairs[k][1]);
    }
    I subs[16];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) transpose_lanes(kinds[k], subs + 4 * k);
    const F d = Isa::f16_lo(Isa::srli32<16>(Isa::gather(R.base + off + 206, R.offs)));
    I sc[4];
    Isa::load_t(R.base, R.stride, off + 192, sc);  // int8 scales 4t .. 4t+3
    F t = Isa::zerof();
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
        const I s = sc[j / 4];
        const I scale = j % 4 == 0 ? Isa::srai32<24>(Isa::slli32<24>(s)) : j % 4 == 1 ? Isa::srai32<24>(Isa::slli32<16>(s))
                        : j % 4 == 2 ? Isa::srai32<24>(Isa::slli32<8>(s)) : Isa::srai32<24>(s);
        // subs[4 · kind + k] holds sub-block 8h + 4n + k for kind 2h + n: that is sub-block j
        t = Isa::fma(Isa::mul(d, Isa::cvt(scale)), Isa::cvt(Isa::add32(subs[j], Isa::bcast32(x.corr + u * 16 + j))), t);
    }
    acc = Isa::fma(Isa::bcastf(x.d + u), t, acc);
}
#endif

inline std::byte* scratch(int slot, std::size_t bytes);
using detail::gemm::prefetch_l2;

// The fused GEMV's prefetch of the next group: prefetcht2 (locality 1). On Zen 4 it beat
// prefetcht1 (prefetch_l2) when the host gave 48–51 GB/s: 1B decoding 1–6 % faster for Q4_0 and
// Q8_0 and 3–13 % for Q4_K (decoding rounds of both alternated in one process); within ±2 % at
// 31–34 GB/s.
inline void prefetch_next_group(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T2); }

// Panels [p0, p1) (G rows each) of one part for MR activation rows.
template <DType T, int MR>
[[gnu::flatten]] void gemv_fused_panels(const QuantPart& part, const Act& x, Index K, Index p0, Index p1, bool interleaved) {
    const Format f = format_of(T);
    const Index units = K / f.unit_values, row_bytes = units * f.unit_bytes;
    // Units between prefetches: about a line or two per row (128 values of Q4_0, 64 of Q8_0, one
    // K-quant super-block), and whole runs of the decoders above. Prefetching in small steps
    // keeps few requests in flight at once; bursts of a whole group's 512 values (16 rows × 9
    // lines) measured 15–20 % slower here.
    const Index chunk = T == DType::q4_0 ? 4 : T == DType::q8_0 ? 2 : 1;
    const auto* base = static_cast<const std::uint8_t*>(part.w);
    std::uint8_t* spare = reinterpret_cast<std::uint8_t*>(scratch(2, static_cast<std::size_t>(G * row_bytes)));
    for (Index p = p0; p < p1; ++p) {
        const Index n0 = p * G, rows = std::min<Index>(G, part.n - n0), next_rows = std::clamp<Index>(part.n - n0 - G, 0, G);
        const Rows R(base + n0 * row_bytes, row_bytes, rows, spare, interleaved, n0);
        // Interleaved rows are one run of bytes, group after group: the hardware prefetchers
        // follow it, and prefetches of the next group only cost issue slots (1 core, Zen 4, 8192
        // rows of 2048: 23.5 -> 26.8 GB/s without them, L2-resident 40 -> 44).
        const bool next_lines = next_rows > 0 && !interleaved;
        Sink<T, MR> sink(x);
        for (Index u0 = 0; u0 < units; u0 += chunk) {
            const Index u1 = std::min(units, u0 + chunk);
            // The next group's rows, the same columns (one group ahead), also past this thread's
            // run of groups: runs are short near the end of a matrix (claimed as threads go), and
            // the next run is most often this thread's too.
            if (next_lines)
                for (Index r = 0; r < next_rows; ++r)
                    for (Index b = u0 * f.unit_bytes; b < u1 * f.unit_bytes; b += 64) prefetch_next_group(base + (n0 + G + r) * row_bytes + b);
            if constexpr (T == DType::q8_0) decode_q8_0<Sink<T, MR>&>(R, u0, u1, sink);
#if defined(WEFT_QMM_ROW_DOTS)
            else if constexpr (T == DType::q4_0 && MR == 1) {
                if (x.q_lanes != nullptr && u1 - u0 == 4 && !interleaved) row_dots_q4_0(R, u0, x, sink.acc[0]);
                else decode_q4_0<Sink<T, MR>&>(R, u0, u1, sink);
            }
            else if constexpr ((T == DType::q4_k || T == DType::q5_k) && MR == 1) {
                if (x.q_lanes != nullptr && !interleaved) row_dots_q45_k<T>(R, u0, x, sink.acc[0]);
                else if constexpr (T == DType::q4_k) decode_q4_k<Sink<T, MR>&>(R, u0, u1, sink);
                else decode_q5_k<Sink<T, MR>&>(R, u0, u1, sink);
            }
            else if constexpr (T == DType::q6_k && MR == 1) {
                if (!interleaved) row_dots_q6_k(R, u0, x, sink.acc[0]);
                else decode_q6_k<Sink<T, MR>&>(R, u0, u1, sink);
            }
#endif
            else if constexpr (T == DType::q4_0) decode_q4_0<Sink<T, MR>&>(R, u0, u1, sink);
            else if constexpr (T == DType::q4_k) decode_q4_k<Sink<T, MR>&>(R, u0, u1, sink);
            else if constexpr (T == DType::q5_k) decode_q5_k<Sink<T, MR>&>(R, u0, u1, sink);
            else decode_q6_k<Sink<T, MR>&>(R, u0, u1, sink);
        }
        for (int m = 0; m < MR; ++m) {
            alignas(64) float out[G];
            Isa::storef(out, sink.acc[m]);
            std::memcpy(part.out + m * part.ldo + n0, out, sizeof(float) * static_cast<std::size_t>(rows));
        }
    }
}

// Activation rows at most this many take the fused GEMV (more would not fit the registers).
inline constexpr Index kFusedMaxRows = 4;

template <int MR>
void gemv_fused(const QuantPart& part, const Act& x, Index K, Index p0, Index p1, bool interleaved) {
    switch (part.type) {
        case DType::q8_0: gemv_fused_panels<DType::q8_0, MR>(part, x, K, p0, p1, interleaved); break;
        case DType::q4_0: gemv_fused_panels<DType::q4_0, MR>(part, x, K, p0, p1, interleaved); break;
        case DType::q4_k: gemv_fused_panels<DType::q4_k, MR>(part, x, K, p0, p1, interleaved); break;
        case DType::q5_k: gemv_fused_panels<DType::q5_k, MR>(part, x, K, p0, p1, interleaved); break;
        default: gemv_fused_panels<DType::q6_k, MR>(part, x, K, p0, p1, interleaved); break;
    }
}

// ---- Drivers ---------------------------------------------------------------------------------

// A thread's growable 64-byte aligned scratch.
inline std::byte* scratch(int slot, std::size_t bytes) {
    thread_local AlignedBuffer buffers[3];
    if (buffers[slot].size() < bytes) buffers[slot] = AlignedBuffer(bytes);
    return buffers[slot].data();
}

// Panels [p0, p1) of one part (a panel: NV groups of G rows), all M rows of x, K in chunks of
// `chunk` units: decode a chunk of the panel's rows, run it past every row of x, next chunk.
// With `stream` set (GEMV), the next panel's chunk is prefetched while this one runs.
template <int NV, int MR>
void run_panels(const QuantPart& part, const Act& x, Index M, Index K, Index p0, Index p1, Index chunk, bool stream, bool interleaved) {
    const Format f = format_of(part.type);
    const Index units = K / f.unit_values, row_bytes = units * f.unit_bytes, width = NV * G;
    const Index subs_per_unit = f.unit_values / f.sub, steps_per_unit = f.unit_values / 4;
    chunk = std::min(chunk, units);
    const std::size_t q_bytes = static_cast<std::size_t>(chunk * steps_per_unit * width * 4);
    const std::size_t s_bytes = static_cast<std::size_t>(chunk * subs_per_unit * width) * sizeof(float);
    const std::size_t m_bytes = f.mins ? static_cast<std::size_t>(chunk * 5 * width) * 4 : 0;
    std::byte* buf = scratch(0, q_bytes + s_bytes + m_bytes);
    auto* q = reinterpret_cast<std::uint8_t*>(buf);
    auto* scale = reinterpret_cast<float*>(buf + q_bytes);
    auto* mins = reinterpret_cast<std::int32_t*>(buf + q_bytes + s_bytes);
    float* negdmin = reinterpret_cast<float*>(mins + chunk * 4 * width);
    const auto* base = static_cast<const std::uint8_t*>(part.w);
    const Panel panel{q, scale, mins, negdmin};
    int offset = 0;  // subtracted from the decoded codes: AMX panels hold signed weights
#if defined(WEFT_QMM_AMX)
    const bool amx = gemm_uses_amx(part.type, M);
    if (amx) {
        amx_configure(f.sub);
        offset = signed_offset(part.type);
    }
#endif
    std::uint8_t* spare = reinterpret_cast<std::uint8_t*>(scratch(2, static_cast<std::size_t>(G * row_bytes)));
    const Index padded = (M + 15) / 16 * 16;  // AMX computes whole tiles of 16 rows
    float* acc = reinterpret_cast<float*>(scratch(1, static_cast<std::size_t>(padded * width) * sizeof(float)));
    for (Index p = p0; p < p1; ++p) {
        const Index n0 = p * width, rows = std::min(width, part.n - n0);
        std::fill(acc, acc + padded * width, 0.0f);
        for (Index u0 = 0; u0 < units; u0 += chunk) {
            const Index u1 = std::min(units, u0 + chunk);
            for (int v = 0; v < NV && v * G < rows; ++v) {
                const Rows R(base + (n0 + v * G) * row_bytes, row_bytes, std::min<Index>(G, rows - v * G), spare, interleaved, n0 + v * G);
                decode(part.type, R, u0, u1, PanelOut(f, u0, q, scale, mins, negdmin, NV, v, offset));
            }
            if (stream && p + 1 < p1) {
                const Index next = (p + 1) * width, count = std::min(width, part.n - next);
                if (interleaved) {  // the 16-row group holding row `next`: one run of bytes
                    const std::uint8_t* group = base + next / quant::interleaved_rows * quant::interleaved_rows * row_bytes;
                    for (Index b = u0 * f.unit_bytes * quant::interleaved_rows; b < u1 * f.unit_bytes * quant::interleaved_rows; b += 64)
                        prefetch_l2(group + b);
                } else {
                    for (Index r = 0; r < count; ++r)
                        for (Index b = u0 * f.unit_bytes; b < u1 * f.unit_bytes; b += 64) prefetch_l2(base + (next + r) * row_bytes + b);
                }
            }
#if defined(WEFT_QMM_AMX)
            if (amx) {
                amx_rows<NV>(part.type, M, u1 - u0, panel, x, f, u0, acc, width);
                continue;
            }
#endif
            kernel_rows<MR, NV>(part.type, 0, M, u1 - u0, panel, x, f, u0, acc, width);
        }
        for (Index m = 0; m < M; ++m) std::memcpy(part.out + m * part.ldo + n0, acc + m * width, sizeof(float) * static_cast<std::size_t>(rows));
    }
#if defined(WEFT_QMM_AMX)
    if (amx) _tile_release();
#endif
}
#endif  // SIMD

// ---- The shared driver ------------------------------------------------------------------------
// Quantizes x once per activation format, then one parallel region over every part's panels.
template <std::size_t P>
void run(const char* op, Index M, Index K, const float* x, Index ldx, const std::array<QuantPart, P>& given, bool gemv) {
    if (M < 0 || K < 0) fail(op, ": sizes must be non-negative, got M = ", M, ", K = ", K);
    for (const QuantPart& p : given) check_part(op, p, M, K);
    // The x16 dtypes run as their GGUF types (the same blocks and arithmetic) with the rows read
    // interleaved.
    std::array<QuantPart, P> parts = given;
    std::array<bool, P> interleaved{};
    for (std::size_t i = 0; i < P; ++i) {
        interleaved[i] = quant::is_interleaved(parts[i].type);
        parts[i].type = quant::plain_dtype(parts[i].type);
    }
    if (M == 0) return;
    if (M > 1 && ldx < K) fail(op, ": x row stride ", ldx, " is smaller than K = ", K);
    bool need[2] = {false, false};
    for (const QuantPart& p : parts)
        if (p.n > 0) need[format_of(p.type).k_quant] = true;
    if (!need[0] && !need[1]) return;
    if (x == nullptr) fail(op, ": x is null");
    for (int k = 0; k < 2; ++k)
        if (need[k]) act_buffer(k == 1).quantize(x, M, K, ldx, k == 1 ? 256 : 32);
#if defined(WEFT_QMM_SCALAR)
    (void)gemv;
    std::array<Index, P> first{};
    Index total = 0;
    for (std::size_t i = 0; i < P; ++i) {
        first[i] = total;
        total += parts[i].n;
    }
    const quant::QuantizedActivations* qa[2] = {&act_buffer(false), &act_buffer(true)};  // this thread's
    detail::gemm::parallel_chunks(total, 16, [&](Index begin, Index end) {
        for (std::size_t i = 0; i < P; ++i) {
            const Index b = std::max(begin, first[i]), e = std::min(end, first[i] + parts[i].n);
            if (b < e) part_rows_scalar(given[i], *qa[format_of(parts[i].type).k_quant], K, b - first[i], e - first[i]);
        }
    });
#else
    std::array<Act, P> acts;
    thread_local std::vector<std::int32_t> stores[5];
    for (std::size_t i = 0; i < P; ++i) {
        const int slot = static_cast<int>(parts[i].type) - static_cast<int>(DType::q8_0);
        acts[i] = make_act(parts[i].type, act_buffer(format_of(parts[i].type).k_quant), stores[slot]);
    }
    const Index width = gemv ? G : kNV * G;
    std::array<Index, P> first{};
    Index total = 0;
    for (std::size_t i = 0; i < P; ++i) {
        first[i] = total;
        total += (parts[i].n + width - 1) / width;
    }
    detail::gemm::parallel_chunks(total, 1, [&](Index begin, Index end) {
        for (std::size_t i = 0; i < P; ++i) {
            const Index b = std::max(begin, first[i]), e = std::min(end, first[i] + (parts[i].n + width - 1) / width);
            if (b >= e) continue;
            const bool kq = format_of(parts[i].type).k_quant;
            const bool il = interleaved[i];
            if (gemv && M == 1) gemv_fused<1>(parts[i], acts[i], K, b - first[i], e - first[i], il);
            else if (gemv && M == 2 && kFusedMaxRows >= 2) gemv_fused<2>(parts[i], acts[i], K, b - first[i], e - first[i], il);
            else if (gemv && M == 3 && kFusedMaxRows >= 3) gemv_fused<3>(parts[i], acts[i], K, b - first[i], e - first[i], il);
            else if (gemv && M == 4 && kFusedMaxRows >= 4) gemv_fused<4>(parts[i], acts[i], K, b - first[i], e - first[i], il);
            else if (gemv) run_panels<1, kMR_gemv>(parts[i], acts[i], M, K, b - first[i], e - first[i], kq ? 2 : 16, true, il);
            else if (kq) run_panels<kNV, kMR_b>(parts[i], acts[i], M, K, b - first[i], e - first[i], 8, false, il);
            else run_panels<kNV, kMR_a>(parts[i], acts[i], M, K, b - first[i], e - first[i], 64, false, il);
        }
    }, /*guided=*/gemv);
#endif
}

}  // namespace WEFT_QMM_ISA
}  // namespace detail::qmm

// ---- Public entry points -----------------------------------------------------------------------
inline namespace WEFT_QMM_ISA {

inline bool quant_gemm_uses_amx(DType type, Index M) {
#if defined(WEFT_QMM_AMX)
    return detail::qmm::gemm_uses_amx(quant::plain_dtype(type), M);
#else
    (void)type, (void)M;
    return false;
#endif
}

template <std::size_t P>
void quant_gemv_nt_group(Index M, Index K, const float* x, Index ldx, const std::array<QuantPart, P>& parts) {
    detail::qmm::run("quant_gemv_nt", M, K, x, ldx, parts, true);
}

template <std::size_t P>
void quant_gemm_nt_group(Index M, Index K, const float* x, Index ldx, const std::array<QuantPart, P>& parts) {
    detail::qmm::run("quant_gemm_nt", M, K, x, ldx, parts, false);
}

template <std::size_t P>
void quant_matmul_nt_group(Index M, Index K, const float* x, Index ldx, const std::array<QuantPart, P>& parts) {
    detail::qmm::run("quant_matmul_nt", M, K, x, ldx, parts, M <= quant_gemv_max_rows);
}

inline void quant_gemv_nt(DType type, Index M, Index N, Index K, const float* x, Index ldx, const void* w, float* out, Index ldo) {
    quant_gemv_nt_group<1>(M, K, x, ldx, {QuantPart{type, w, N, out, ldo}});
}

inline void quant_gemm_nt(DType type, Index M, Index N, Index K, const float* x, Index ldx, const void* w, float* out, Index ldo) {
    quant_gemm_nt_group<1>(M, K, x, ldx, {QuantPart{type, w, N, out, ldo}});
}

inline void quant_matmul_nt(DType type, Index M, Index N, Index K, const float* x, Index ldx, const void* w, float* out,
                            Index ldo) {
    quant_matmul_nt_group<1>(M, K, x, ldx, {QuantPart{type, w, N, out, ldo}});
}

inline void quant_matmul_nt_reference(DType type, Index M, Index N, Index K, const float* x, Index ldx, const void* w,
                                      float* out, Index ldo) {
    namespace q = detail::qmm;
    const QuantPart part{type, w, N, out, ldo};
    q::check_part("quant_matmul_nt_reference", part, M, K);
    if (M <= 0 || N <= 0) return;
    const q::Format f = q::format_of(type);
    quant::QuantizedActivations qa;
    qa.quantize(x, M, K, ldx, f.k_quant ? 256 : 32);
    q::part_rows_scalar(part, qa, K, 0, N);
}

}  // namespace WEFT_QMM_ISA
}  // namespace weft::cpu
