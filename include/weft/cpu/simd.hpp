// weft/cpu/simd.hpp — the packet layer: VecF (the widest float vector the target compiles for:
// AVX-512, AVX2+FMA, NEON or one scalar lane) and Vec1F (always one lane), with identical APIs.
// Kernels and vmath.hpp are templates over the two; every op is exact per lane, so an element
// gets the same bits whether it went through VecF or Vec1F.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "weft/core/dtype.hpp"

// ---- ISA selection (the only macros here) ----------------------------------------------------
// Exactly one WEFT_SIMD_* is defined to 1. AVX2 is used only together with FMA; NEON only on
// AArch64 (32-bit ARM lacks vector division, sqrt and directed rounding, so it gets scalar).
#if defined(__AVX512F__)
#define WEFT_SIMD_AVX512 1
#include <immintrin.h>
#elif defined(__AVX2__) && defined(__FMA__)
#define WEFT_SIMD_AVX2 1
#include <immintrin.h>
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define WEFT_SIMD_NEON 1
#include <arm_neon.h>
#else
#define WEFT_SIMD_SCALAR 1
#endif

namespace weft::simd {

// Each ISA gets its own inline namespace, so translation units compiled for different ISAs do
// not silently share (ODR-merge) inline functions whose bodies differ.
#if defined(WEFT_SIMD_AVX512)
inline namespace isa_avx512 {
inline constexpr const char* isa_name = "avx512";
#elif defined(WEFT_SIMD_AVX2)
inline namespace isa_avx2 {
inline constexpr const char* isa_name = "avx2";
#elif defined(WEFT_SIMD_NEON)
inline namespace isa_neon {
inline constexpr const char* isa_name = "neon";
#else
inline namespace isa_scalar {
inline constexpr const char* isa_name = "scalar";
#endif

// The API every packet type V (VecF and Vec1F) has:
//   V::width; V::Mask (lane predicate); V::Int (int32 lanes, for bit tricks)
//   V(float) broadcasts; V::broadcast(x), V::zero()
//   V::load(p) (unaligned), V::load_partial(p, n): lanes [0, n) from p, the rest 0, never
//     reading p[n] or beyond; v.store(p), v.store_partial(p, n): writes only p[0, n)
//   V::load_f16 / load_bf16 / load_i32 / load_i8 (+ _partial): convert to float, exactly
//     (int32 rounds to nearest even, as static_cast<float> does)
//   store_f16(p, v) / store_bf16(p, v) (+ _partial(p, v, n)), round_to_f16(v), round_to_bf16(v):
//     round to nearest even, bit-identical to weft::float_to_f16_bits / float_to_bf16_bits
//   + - * / and unary - (and += -= *= /=, the right side may be a float), fmadd(a, b, c) =
//     a*b+c and fnmadd(a, b, c) = c-a*b, rounded once
//   min, max, abs, sqrt (correctly rounded), floor, copysign
//   comparisons < <= > >= == (false on NaN) and != (true on NaN) give V::Mask;
//   masks combine with & | !, select(m, a, b) picks a where m holds; any(m), all(m);
//   is_nan, is_finite, is_inf, signbit give masks
//   reduce_add / reduce_max / reduce_min: a fixed halving tree, lane i with lane i + width/2,
//     then again on the lower half, down to lane 0 (deterministic, independent of data)
//   reduce_add_each(v[width]): lane j = reduce_add(v[j]), bit for bit, with the trees of all
//     the packets interleaved (AVX-512: 30 shuffles and 15 adds for 16 sums)
//   Int: + - & | ^, sll<k> / srl<k> / sra<k> (shift by constant), as_int(v) / as_float(i)
//     (reinterpret bits), to_int(v) (truncates; out-of-range lanes are unspecified),
//     to_float(i)
//
// min and max propagate NaN (as torch.minimum/maximum do): if a is NaN the result is a, else if b
// is NaN it is b. Between equal values (+0 and -0) they return b. NaN payloads are kept where
// the hardware keeps them; only NaN-ness is guaranteed to match across paths. (One such case:
// F16C/AVX-512/NEON quiet a signaling f16 NaN on load, weft's portable f16_bits_to_float does not,
// so on a build without F16C the two paths differ in that bit.)

template <class V>
concept Packet = requires {
    V::width;
    typename V::Int;
    typename V::Mask;
};

namespace detail {
inline constexpr std::uint32_t sign_bit = 0x80000000u;
inline constexpr std::uint32_t abs_bits = 0x7FFFFFFFu;
inline float inf_f() { return std::bit_cast<float>(0x7F800000u); }

// float -> bf16 bits on a whole 32-bit word: round to nearest even, NaN quieted (0x0040 set).
inline std::uint32_t bf16_round_word(std::uint32_t x) {
    if ((x & abs_bits) > 0x7F800000u) return (x | 0x00400000u) & 0xFFFF0000u;
    return (x + 0x7FFFu + ((x >> 16) & 1u)) & 0xFFFF0000u;
}
}  // namespace detail

// =============================================================================================
// Vec1F: one float lane. The reference for every wider type; also the tail/strided path.
// =============================================================================================

struct Mask1 {
    bool m;
};
inline Mask1 operator&(Mask1 a, Mask1 b) { return {a.m && b.m}; }
inline Mask1 operator|(Mask1 a, Mask1 b) { return {a.m || b.m}; }
inline Mask1 operator!(Mask1 a) { return {!a.m}; }
inline bool any(Mask1 a) { return a.m; }
inline bool all(Mask1 a) { return a.m; }

struct Vec1I {
    std::int32_t v;
    Vec1I() = default;
    Vec1I(std::int32_t x) : v(x) {}
};
// Wrapping arithmetic, as the vector units do (done in unsigned to avoid signed overflow).
inline Vec1I operator+(Vec1I a, Vec1I b) {
    return Vec1I(static_cast<std::int32_t>(static_cast<std::uint32_t>(a.v) + static_cast<std::uint32_t>(b.v)));
}
inline Vec1I operator-(Vec1I a, Vec1I b) {
    return Vec1I(static_cast<std::int32_t>(static_cast<std::uint32_t>(a.v) - static_cast<std::uint32_t>(b.v)));
}
inline Vec1I operator&(Vec1I a, Vec1I b) { return Vec1I(a.v & b.v); }
inline Vec1I operator|(Vec1I a, Vec1I b) { return Vec1I(a.v | b.v); }
inline Vec1I operator^(Vec1I a, Vec1I b) { return Vec1I(a.v ^ b.v); }
template <int K> Vec1I sll(Vec1I a) { return Vec1I(static_cast<std::int32_t>(static_cast<std::uint32_t>(a.v) << K)); }
template <int K> Vec1I srl(Vec1I a) { return Vec1I(static_cast<std::int32_t>(static_cast<std::uint32_t>(a.v) >> K)); }
template <int K> Vec1I sra(Vec1I a) { return Vec1I(a.v >> K); }  // arithmetic since C++20

struct Vec1F {
    static constexpr int width = 1;
    using Mask = Mask1;
    using Int = Vec1I;
    float v;

    Vec1F() = default;
    Vec1F(float x) : v(x) {}
    static Vec1F broadcast(float x) { return Vec1F(x); }
    static Vec1F zero() { return Vec1F(0.0f); }

    static Vec1F load(const float* p) { return Vec1F(*p); }
    static Vec1F load_partial(const float* p, int n) { return Vec1F(n > 0 ? *p : 0.0f); }
    void store(float* p) const { *p = v; }
    void store_partial(float* p, int n) const {
        if (n > 0) *p = v;
    }

    static Vec1F load_f16(const f16* p) { return Vec1F(f16_bits_to_float(p->bits)); }
    static Vec1F load_f16_partial(const f16* p, int n) { return n > 0 ? load_f16(p) : zero(); }
    static Vec1F load_bf16(const bf16* p) { return Vec1F(bf16_bits_to_float(p->bits)); }
    static Vec1F load_bf16_partial(const bf16* p, int n) { return n > 0 ? load_bf16(p) : zero(); }
    static Vec1F load_i32(const std::int32_t* p) { return Vec1F(static_cast<float>(*p)); }
    static Vec1F load_i32_partial(const std::int32_t* p, int n) { return n > 0 ? load_i32(p) : zero(); }
    static Vec1F load_i8(const std::int8_t* p) { return Vec1F(static_cast<float>(*p)); }
    static Vec1F load_i8_partial(const std::int8_t* p, int n) { return n > 0 ? load_i8(p) : zero(); }
};

inline void store_f16(f16* p, Vec1F a) { p->bits = float_to_f16_bits(a.v); }
inline void store_f16_partial(f16* p, Vec1F a, int n) {
    if (n > 0) store_f16(p, a);
}
inline void store_bf16(bf16* p, Vec1F a) { p->bits = float_to_bf16_bits(a.v); }
inline void store_bf16_partial(bf16* p, Vec1F a, int n) {
    if (n > 0) store_bf16(p, a);
}
inline Vec1F round_to_f16(Vec1F a) { return Vec1F(f16_bits_to_float(float_to_f16_bits(a.v))); }
inline Vec1F round_to_bf16(Vec1F a) {
    return Vec1F(std::bit_cast<float>(detail::bf16_round_word(std::bit_cast<std::uint32_t>(a.v))));
}

inline Vec1F operator+(Vec1F a, Vec1F b) { return Vec1F(a.v + b.v); }
// A store that bypasses the caches (for outputs far larger than them); p aligned to the vector.
inline void store_stream(float* p, Vec1F a) { *p = a.v; }
inline Vec1F operator-(Vec1F a, Vec1F b) { return Vec1F(a.v - b.v); }
inline Vec1F operator*(Vec1F a, Vec1F b) { return Vec1F(a.v * b.v); }
inline Vec1F operator/(Vec1F a, Vec1F b) { return Vec1F(a.v / b.v); }
inline Vec1F operator-(Vec1F a) { return Vec1F(-a.v); }
inline Vec1F fmadd(Vec1F a, Vec1F b, Vec1F c) { return Vec1F(std::fma(a.v, b.v, c.v)); }
inline Vec1F fnmadd(Vec1F a, Vec1F b, Vec1F c) { return Vec1F(std::fma(-a.v, b.v, c.v)); }

inline Mask1 operator<(Vec1F a, Vec1F b) { return {a.v < b.v}; }
inline Mask1 operator<=(Vec1F a, Vec1F b) { return {a.v <= b.v}; }
inline Mask1 operator>(Vec1F a, Vec1F b) { return {a.v > b.v}; }
inline Mask1 operator>=(Vec1F a, Vec1F b) { return {a.v >= b.v}; }
inline Mask1 operator==(Vec1F a, Vec1F b) { return {a.v == b.v}; }
inline Mask1 operator!=(Vec1F a, Vec1F b) { return {a.v != b.v}; }
inline Mask1 is_nan(Vec1F a) { return {a.v != a.v}; }
inline Mask1 signbit(Vec1F a) { return {std::signbit(a.v)}; }
inline Vec1F select(Mask1 m, Vec1F a, Vec1F b) { return m.m ? a : b; }

// x86 MAXPS/MINPS semantics (b unless a is strictly greater/less), then NaN in a wins.
inline Vec1F max(Vec1F a, Vec1F b) { return Vec1F(a.v != a.v ? a.v : (a.v > b.v ? a.v : b.v)); }
inline Vec1F min(Vec1F a, Vec1F b) { return Vec1F(a.v != a.v ? a.v : (a.v < b.v ? a.v : b.v)); }
inline Vec1F abs(Vec1F a) { return Vec1F(std::bit_cast<float>(std::bit_cast<std::uint32_t>(a.v) & detail::abs_bits)); }
inline Vec1F sqrt(Vec1F a) { return Vec1F(std::sqrt(a.v)); }
inline Vec1F floor(Vec1F a) { return Vec1F(std::floor(a.v)); }

inline float reduce_add(Vec1F a) { return a.v; }
inline float reduce_max(Vec1F a) { return a.v; }
inline float reduce_min(Vec1F a) { return a.v; }

inline Vec1I as_int(Vec1F a) { return Vec1I(std::bit_cast<std::int32_t>(a.v)); }
inline Vec1F as_float(Vec1I a) { return Vec1F(std::bit_cast<float>(a.v)); }
// Truncates like x86 cvttps2dq, which gives INT32_MIN for NaN and out-of-range lanes (the cast
// itself would be undefined behaviour there).
inline Vec1I to_int(Vec1F a) {
    return Vec1I(a.v >= -2147483648.0f && a.v < 2147483648.0f ? static_cast<std::int32_t>(a.v)
                                                              : std::int32_t(INT32_MIN));
}
inline Vec1F to_float(Vec1I a) { return Vec1F(static_cast<float>(a.v)); }

// =============================================================================================
// AVX-512: 16 lanes. Needs only AVX512F; uses BW+VL masked 8/16-bit loads when present.
// =============================================================================================
#if defined(WEFT_SIMD_AVX512)

// GCC 12's AVX-512 intrinsics trip its own -W(maybe-)uninitialized (`__m512 __Y = __Y;` in
// _mm512_undefined_ps, GCC bug 105593); the warning is false, so it is silenced for this section.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace detail {
inline __mmask16 lanes16(int n) {
    return n <= 0 ? __mmask16(0) : n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u);
}
}  // namespace detail

struct Mask16 {
    __mmask16 m;
};
inline Mask16 operator&(Mask16 a, Mask16 b) { return {__mmask16(a.m & b.m)}; }
inline Mask16 operator|(Mask16 a, Mask16 b) { return {__mmask16(a.m | b.m)}; }
inline Mask16 operator!(Mask16 a) { return {__mmask16(~a.m)}; }
inline bool any(Mask16 a) { return a.m != 0; }
inline bool all(Mask16 a) { return a.m == 0xFFFF; }

struct Vec16I {
    __m512i v;
    Vec16I() = default;
    Vec16I(std::int32_t x) : v(_mm512_set1_epi32(x)) {}
    explicit Vec16I(__m512i x) : v(x) {}
};
inline Vec16I operator+(Vec16I a, Vec16I b) { return Vec16I(_mm512_add_epi32(a.v, b.v)); }
inline Vec16I operator-(Vec16I a, Vec16I b) { return Vec16I(_mm512_sub_epi32(a.v, b.v)); }
inline Vec16I operator&(Vec16I a, Vec16I b) { return Vec16I(_mm512_and_si512(a.v, b.v)); }
inline Vec16I operator|(Vec16I a, Vec16I b) { return Vec16I(_mm512_or_si512(a.v, b.v)); }
inline Vec16I operator^(Vec16I a, Vec16I b) { return Vec16I(_mm512_xor_si512(a.v, b.v)); }
template <int K> Vec16I sll(Vec16I a) { return Vec16I(_mm512_slli_epi32(a.v, K)); }
template <int K> Vec16I srl(Vec16I a) { return Vec16I(_mm512_srli_epi32(a.v, K)); }
template <int K> Vec16I sra(Vec16I a) { return Vec16I(_mm512_srai_epi32(a.v, K)); }

struct Vec16F {
    static constexpr int width = 16;
    using Mask = Mask16;
    using Int = Vec16I;
    __m512 v;

    Vec16F() = default;
    Vec16F(float x) : v(_mm512_set1_ps(x)) {}
    explicit Vec16F(__m512 x) : v(x) {}
    static Vec16F broadcast(float x) { return Vec16F(x); }
    static Vec16F zero() { return Vec16F(_mm512_setzero_ps()); }

    static Vec16F load(const float* p) { return Vec16F(_mm512_loadu_ps(p)); }
    // Masked-off lanes of a masked load are never accessed, so they cannot fault.
    static Vec16F load_partial(const float* p, int n) {
        return Vec16F(_mm512_maskz_loadu_ps(detail::lanes16(n), p));
    }
    void store(float* p) const { _mm512_storeu_ps(p, v); }
    void store_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, detail::lanes16(n), v); }

    static Vec16F load_f16(const f16* p) {
        return Vec16F(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
    }
    static Vec16F load_f16_partial(const f16* p, int n) { return Vec16F(_mm512_cvtph_ps(load16_partial(p, n))); }
    static Vec16F load_bf16(const bf16* p) {
        return from_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static Vec16F load_bf16_partial(const bf16* p, int n) { return from_bf16(load16_partial(p, n)); }
    static Vec16F load_i32(const std::int32_t* p) { return Vec16F(_mm512_cvtepi32_ps(_mm512_loadu_si512(p))); }
    static Vec16F load_i32_partial(const std::int32_t* p, int n) {
        return Vec16F(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(detail::lanes16(n), p)));
    }
    static Vec16F load_i8(const std::int8_t* p) {
        return Vec16F(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))));
    }
    static Vec16F load_i8_partial(const std::int8_t* p, int n) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
        const __m128i b = _mm_maskz_loadu_epi8(detail::lanes16(n), p);
#else
        alignas(16) std::int8_t buf[16] = {};
        if (n > 0) std::memcpy(buf, p, std::size_t(n < 16 ? n : 16));
        const __m128i b = _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
#endif
        return Vec16F(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)));
    }

    // 16-bit lanes [0, n) of p, the rest 0.
    template <class T>
    static __m256i load16_partial(const T* p, int n) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
        return _mm256_maskz_loadu_epi16(detail::lanes16(n), p);
#else
        alignas(32) std::uint16_t buf[16] = {};
        if (n > 0) std::memcpy(buf, p, std::size_t(n < 16 ? n : 16) * 2);
        return _mm256_load_si256(reinterpret_cast<const __m256i*>(buf));
#endif
    }
    static Vec16F from_bf16(__m256i h) {
        return Vec16F(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
};

namespace detail {
// bf16 rounding on 32-bit lanes: (x + 0x7FFF + lsb) with the low half cleared; NaN -> x | quiet.
inline __m512i bf16_round_words(__m512 a) {
    const __m512i x = _mm512_castps_si512(a);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7FFF)), lsb);
    const __m512i q = _mm512_or_si512(x, _mm512_set1_epi32(0x00400000));
    const __mmask16 nan = _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    return _mm512_and_si512(_mm512_mask_blend_epi32(nan, r, q), _mm512_set1_epi32(int(0xFFFF0000u)));
}
inline __m256i f16_bits16(__m512 a) { return _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
}  // namespace detail

inline void store_f16(f16* p, Vec16F a) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), detail::f16_bits16(a.v));
}
// vpmovdw with a mask writes only the selected 16-bit lanes (AVX512F, no BW needed).
inline void store_f16_partial(f16* p, Vec16F a, int n) {
    _mm512_mask_cvtepi32_storeu_epi16(p, detail::lanes16(n), _mm512_cvtepu16_epi32(detail::f16_bits16(a.v)));
}
inline void store_bf16(bf16* p, Vec16F a) {
    const __m512i w = _mm512_srli_epi32(detail::bf16_round_words(a.v), 16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(w));
}
inline void store_bf16_partial(bf16* p, Vec16F a, int n) {
    const __m512i w = _mm512_srli_epi32(detail::bf16_round_words(a.v), 16);
    _mm512_mask_cvtepi32_storeu_epi16(p, detail::lanes16(n), w);
}
inline Vec16F round_to_f16(Vec16F a) { return Vec16F(_mm512_cvtph_ps(detail::f16_bits16(a.v))); }
inline Vec16F round_to_bf16(Vec16F a) { return Vec16F(_mm512_castsi512_ps(detail::bf16_round_words(a.v))); }

inline Vec16F operator+(Vec16F a, Vec16F b) { return Vec16F(_mm512_add_ps(a.v, b.v)); }
inline void store_stream(float* p, Vec16F a) { _mm512_stream_ps(p, a.v); }
inline Vec16F operator-(Vec16F a, Vec16F b) { return Vec16F(_mm512_sub_ps(a.v, b.v)); }
inline Vec16F operator*(Vec16F a, Vec16F b) { return Vec16F(_mm512_mul_ps(a.v, b.v)); }
inline Vec16F operator/(Vec16F a, Vec16F b) { return Vec16F(_mm512_div_ps(a.v, b.v)); }
inline Vec16F operator-(Vec16F a) {
    return Vec16F(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(int(detail::sign_bit)))));
}
inline Vec16F fmadd(Vec16F a, Vec16F b, Vec16F c) { return Vec16F(_mm512_fmadd_ps(a.v, b.v, c.v)); }
inline Vec16F fnmadd(Vec16F a, Vec16F b, Vec16F c) { return Vec16F(_mm512_fnmadd_ps(a.v, b.v, c.v)); }

inline Mask16 operator<(Vec16F a, Vec16F b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
inline Mask16 operator<=(Vec16F a, Vec16F b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)}; }
inline Mask16 operator>(Vec16F a, Vec16F b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
inline Mask16 operator>=(Vec16F a, Vec16F b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }
inline Mask16 operator==(Vec16F a, Vec16F b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)}; }
inline Mask16 operator!=(Vec16F a, Vec16F b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_NEQ_UQ)}; }
inline Mask16 is_nan(Vec16F a) { return {_mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q)}; }
inline Mask16 signbit(Vec16F a) {
    return {_mm512_test_epi32_mask(_mm512_castps_si512(a.v), _mm512_set1_epi32(int(detail::sign_bit)))};
}
inline Vec16F select(Mask16 m, Vec16F a, Vec16F b) { return Vec16F(_mm512_mask_blend_ps(m.m, b.v, a.v)); }

inline Vec16F max(Vec16F a, Vec16F b) { return Vec16F(_mm512_mask_blend_ps(is_nan(a).m, _mm512_max_ps(a.v, b.v), a.v)); }
inline Vec16F min(Vec16F a, Vec16F b) { return Vec16F(_mm512_mask_blend_ps(is_nan(a).m, _mm512_min_ps(a.v, b.v), a.v)); }
inline Vec16F abs(Vec16F a) {
    return Vec16F(_mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(int(detail::abs_bits)))));
}
inline Vec16F sqrt(Vec16F a) { return Vec16F(_mm512_sqrt_ps(a.v)); }
inline Vec16F floor(Vec16F a) { return Vec16F(_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)); }

namespace detail {
inline __m256 upper8(__m512 a) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)); }
// The halving tree on 8 lanes, with op applied lane i <- (lane i, lane i + half).
template <class Op>
inline float tree8(__m256 a, Op op) {
    __m128 b = op(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = op(b, _mm_movehl_ps(b, b));
    b = op(b, _mm_shuffle_ps(b, b, 1));
    return _mm_cvtss_f32(b);
}
// NaN-propagating max/min on 128/256-bit registers with the same rule as max(Vec16F, Vec16F).
inline __m128 max128(__m128 a, __m128 b) { return _mm_blendv_ps(_mm_max_ps(a, b), a, _mm_cmpunord_ps(a, a)); }
inline __m128 min128(__m128 a, __m128 b) { return _mm_blendv_ps(_mm_min_ps(a, b), a, _mm_cmpunord_ps(a, a)); }
inline __m256 max256(__m256 a, __m256 b) {
    return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}
inline __m256 min256(__m256 a, __m256 b) {
    return _mm256_blendv_ps(_mm256_min_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}
}  // namespace detail

inline float reduce_add(Vec16F a) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a.v), detail::upper8(a.v));
    return detail::tree8(h, [](__m128 x, __m128 y) { return _mm_add_ps(x, y); });
}
inline float reduce_max(Vec16F a) {
    const __m256 h = detail::max256(_mm512_castps512_ps256(a.v), detail::upper8(a.v));
    return detail::tree8(h, detail::max128);
}
inline float reduce_min(Vec16F a) {
    const __m256 h = detail::min256(_mm512_castps512_ps256(a.v), detail::upper8(a.v));
    return detail::tree8(h, detail::min128);
}

namespace detail {
// The 128-bit lanes of a and b that immediate LO picks, plus those that HI picks (template
// arguments: the immediates must be constants even at -O0).
template <int LO, int HI>
inline __m512 add_lanes(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, LO), _mm512_shuffle_f32x4(a, b, HI));
}
}  // namespace detail

// reduce_add's tree for 16 packets at once: each level adds lane i and lane i + 8, i + 4, i + 2,
// i + 1 of several packets per register. The last level leaves slot i's sum in lane
// 4 (i % 4) + i / 4, so slot i takes that packet.
inline Vec16F reduce_add_each(const Vec16F (&v)[16]) {
    __m512 s[8], t[4], u[2];
    auto slot = [&](int i) { return v[4 * (i % 4) + i / 4].v; };
    for (int k = 0; k < 8; ++k) s[k] = detail::add_lanes<0x44, 0xEE>(slot(2 * k), slot(2 * k + 1));  // i + 8
    for (int k = 0; k < 4; ++k) t[k] = detail::add_lanes<0x88, 0xDD>(s[2 * k], s[2 * k + 1]);          // i + 4
    for (int k = 0; k < 2; ++k)                                                                        // i + 2
        u[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[2 * k]), _mm512_castps_pd(t[2 * k + 1]))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[2 * k]), _mm512_castps_pd(t[2 * k + 1]))));
    return Vec16F(_mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x88), _mm512_shuffle_ps(u[0], u[1], 0xDD)));  // i + 1
}

inline Vec16I as_int(Vec16F a) { return Vec16I(_mm512_castps_si512(a.v)); }
inline Vec16F as_float(Vec16I a) { return Vec16F(_mm512_castsi512_ps(a.v)); }
inline Vec16I to_int(Vec16F a) { return Vec16I(_mm512_cvttps_epi32(a.v)); }
inline Vec16F to_float(Vec16I a) { return Vec16F(_mm512_cvtepi32_ps(a.v)); }

using VecF = Vec16F;

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// =============================================================================================
// AVX2 + FMA: 8 lanes. f16 through F16C when present, else lane by lane through dtype.hpp.
// =============================================================================================
#elif defined(WEFT_SIMD_AVX2)

namespace detail {
inline __m256i lanes8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// Elements [0, n) of p copied into a zeroed 8-element buffer, so nothing past p + n is read.
template <class T>
inline void copy_partial8(T* buf, const T* p, int n) {
    if (n > 0) std::memcpy(buf, p, std::size_t(n < 8 ? n : 8) * sizeof(T));
}
}  // namespace detail

struct Mask8 {
    __m256 m;
};
inline Mask8 operator&(Mask8 a, Mask8 b) { return {_mm256_and_ps(a.m, b.m)}; }
inline Mask8 operator|(Mask8 a, Mask8 b) { return {_mm256_or_ps(a.m, b.m)}; }
inline Mask8 operator!(Mask8 a) { return {_mm256_xor_ps(a.m, _mm256_castsi256_ps(_mm256_set1_epi32(-1)))}; }
inline bool any(Mask8 a) { return _mm256_movemask_ps(a.m) != 0; }
inline bool all(Mask8 a) { return _mm256_movemask_ps(a.m) == 0xFF; }

struct Vec8I {
    __m256i v;
    Vec8I() = default;
    Vec8I(std::int32_t x) : v(_mm256_set1_epi32(x)) {}
    explicit Vec8I(__m256i x) : v(x) {}
};
inline Vec8I operator+(Vec8I a, Vec8I b) { return Vec8I(_mm256_add_epi32(a.v, b.v)); }
inline Vec8I operator-(Vec8I a, Vec8I b) { return Vec8I(_mm256_sub_epi32(a.v, b.v)); }
inline Vec8I operator&(Vec8I a, Vec8I b) { return Vec8I(_mm256_and_si256(a.v, b.v)); }
inline Vec8I operator|(Vec8I a, Vec8I b) { return Vec8I(_mm256_or_si256(a.v, b.v)); }
inline Vec8I operator^(Vec8I a, Vec8I b) { return Vec8I(_mm256_xor_si256(a.v, b.v)); }
template <int K> Vec8I sll(Vec8I a) { return Vec8I(_mm256_slli_epi32(a.v, K)); }
template <int K> Vec8I srl(Vec8I a) { return Vec8I(_mm256_srli_epi32(a.v, K)); }
template <int K> Vec8I sra(Vec8I a) { return Vec8I(_mm256_srai_epi32(a.v, K)); }

struct Vec8F {
    static constexpr int width = 8;
    using Mask = Mask8;
    using Int = Vec8I;
    __m256 v;

    Vec8F() = default;
    Vec8F(float x) : v(_mm256_set1_ps(x)) {}
    explicit Vec8F(__m256 x) : v(x) {}
    static Vec8F broadcast(float x) { return Vec8F(x); }
    static Vec8F zero() { return Vec8F(_mm256_setzero_ps()); }

    static Vec8F load(const float* p) { return Vec8F(_mm256_loadu_ps(p)); }
    // vmaskmovps never touches masked-off lanes, so reading past p + n cannot fault.
    static Vec8F load_partial(const float* p, int n) { return Vec8F(_mm256_maskload_ps(p, detail::lanes8(n))); }
    void store(float* p) const { _mm256_storeu_ps(p, v); }
    void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, detail::lanes8(n), v); }

    static Vec8F load_f16(const f16* p) {
#if defined(__F16C__)
        return Vec8F(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#else
        alignas(32) float f[8];
        for (int i = 0; i < 8; ++i) f[i] = f16_bits_to_float(p[i].bits);
        return Vec8F(_mm256_load_ps(f));
#endif
    }
    static Vec8F load_f16_partial(const f16* p, int n) {
        alignas(16) f16 buf[8] = {};
        detail::copy_partial8(buf, p, n);
        return load_f16(buf);
    }
    static Vec8F load_bf16(const bf16* p) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return Vec8F(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    static Vec8F load_bf16_partial(const bf16* p, int n) {
        alignas(16) bf16 buf[8] = {};
        detail::copy_partial8(buf, p, n);
        return load_bf16(buf);
    }
    static Vec8F load_i32(const std::int32_t* p) {
        return Vec8F(_mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
    }
    static Vec8F load_i32_partial(const std::int32_t* p, int n) {
        return Vec8F(_mm256_cvtepi32_ps(_mm256_maskload_epi32(p, detail::lanes8(n))));
    }
    static Vec8F load_i8(const std::int8_t* p) {
        return Vec8F(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
    }
    static Vec8F load_i8_partial(const std::int8_t* p, int n) {
        alignas(16) std::int8_t buf[8] = {};
        detail::copy_partial8(buf, p, n);
        return load_i8(buf);
    }
};

namespace detail {
inline __m256i bf16_round_words(__m256 a) {
    const __m256i x = _mm256_castps_si256(a);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7FFF)), lsb);
    const __m256i q = _mm256_or_si256(x, _mm256_set1_epi32(0x00400000));
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    return _mm256_and_si256(_mm256_blendv_epi8(r, q, nan), _mm256_set1_epi32(int(0xFFFF0000u)));
}
// The 8 upper halves as 16-bit values (each <= 0xFFFF, so the saturating pack is exact).
inline __m128i bf16_bits8(__m256 a) {
    const __m256i w = _mm256_srli_epi32(bf16_round_words(a), 16);
    return _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}
inline __m128i f16_bits8(__m256 a) {
#if defined(__F16C__)
    return _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    alignas(32) float f[8];
    alignas(16) std::uint16_t h[8];
    _mm256_store_ps(f, a);
    for (int i = 0; i < 8; ++i) h[i] = float_to_f16_bits(f[i]);
    return _mm_load_si128(reinterpret_cast<const __m128i*>(h));
#endif
}
inline __m256 f16_bits8_to_float(__m128i h) {
#if defined(__F16C__)
    return _mm256_cvtph_ps(h);
#else
    alignas(16) std::uint16_t b[8];
    alignas(32) float f[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(b), h);
    for (int i = 0; i < 8; ++i) f[i] = f16_bits_to_float(b[i]);
    return _mm256_load_ps(f);
#endif
}
inline void store16_partial(void* p, __m128i h, int n) {
    alignas(16) std::uint16_t buf[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(buf), h);
    if (n > 0) std::memcpy(p, buf, std::size_t(n < 8 ? n : 8) * 2);
}
}  // namespace detail

inline void store_f16(f16* p, Vec8F a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), detail::f16_bits8(a.v)); }
inline void store_f16_partial(f16* p, Vec8F a, int n) { detail::store16_partial(p, detail::f16_bits8(a.v), n); }
inline void store_bf16(bf16* p, Vec8F a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), detail::bf16_bits8(a.v)); }
inline void store_bf16_partial(bf16* p, Vec8F a, int n) { detail::store16_partial(p, detail::bf16_bits8(a.v), n); }
inline Vec8F round_to_f16(Vec8F a) { return Vec8F(detail::f16_bits8_to_float(detail::f16_bits8(a.v))); }
inline Vec8F round_to_bf16(Vec8F a) { return Vec8F(_mm256_castsi256_ps(detail::bf16_round_words(a.v))); }

inline Vec8F operator+(Vec8F a, Vec8F b) { return Vec8F(_mm256_add_ps(a.v, b.v)); }
inline void store_stream(float* p, Vec8F a) { _mm256_stream_ps(p, a.v); }
inline Vec8F operator-(Vec8F a, Vec8F b) { return Vec8F(_mm256_sub_ps(a.v, b.v)); }
inline Vec8F operator*(Vec8F a, Vec8F b) { return Vec8F(_mm256_mul_ps(a.v, b.v)); }
inline Vec8F operator/(Vec8F a, Vec8F b) { return Vec8F(_mm256_div_ps(a.v, b.v)); }
inline Vec8F operator-(Vec8F a) { return Vec8F(_mm256_xor_ps(a.v, _mm256_castsi256_ps(_mm256_set1_epi32(int(detail::sign_bit))))); }
inline Vec8F fmadd(Vec8F a, Vec8F b, Vec8F c) { return Vec8F(_mm256_fmadd_ps(a.v, b.v, c.v)); }
inline Vec8F fnmadd(Vec8F a, Vec8F b, Vec8F c) { return Vec8F(_mm256_fnmadd_ps(a.v, b.v, c.v)); }

inline Mask8 operator<(Vec8F a, Vec8F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
inline Mask8 operator<=(Vec8F a, Vec8F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)}; }
inline Mask8 operator>(Vec8F a, Vec8F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
inline Mask8 operator>=(Vec8F a, Vec8F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
inline Mask8 operator==(Vec8F a, Vec8F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
inline Mask8 operator!=(Vec8F a, Vec8F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_NEQ_UQ)}; }
inline Mask8 is_nan(Vec8F a) { return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)}; }
inline Mask8 signbit(Vec8F a) { return {_mm256_castsi256_ps(_mm256_srai_epi32(_mm256_castps_si256(a.v), 31))}; }
inline Vec8F select(Mask8 m, Vec8F a, Vec8F b) { return Vec8F(_mm256_blendv_ps(b.v, a.v, m.m)); }

inline Vec8F max(Vec8F a, Vec8F b) { return Vec8F(_mm256_blendv_ps(_mm256_max_ps(a.v, b.v), a.v, is_nan(a).m)); }
inline Vec8F min(Vec8F a, Vec8F b) { return Vec8F(_mm256_blendv_ps(_mm256_min_ps(a.v, b.v), a.v, is_nan(a).m)); }
inline Vec8F abs(Vec8F a) { return Vec8F(_mm256_and_ps(a.v, _mm256_castsi256_ps(_mm256_set1_epi32(int(detail::abs_bits))))); }
inline Vec8F sqrt(Vec8F a) { return Vec8F(_mm256_sqrt_ps(a.v)); }
inline Vec8F floor(Vec8F a) { return Vec8F(_mm256_round_ps(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)); }

namespace detail {
template <class Op>
inline float tree8(__m256 a, Op op) {
    __m128 b = op(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = op(b, _mm_movehl_ps(b, b));
    b = op(b, _mm_shuffle_ps(b, b, 1));
    return _mm_cvtss_f32(b);
}
inline __m128 max128(__m128 a, __m128 b) { return _mm_blendv_ps(_mm_max_ps(a, b), a, _mm_cmpunord_ps(a, a)); }
inline __m128 min128(__m128 a, __m128 b) { return _mm_blendv_ps(_mm_min_ps(a, b), a, _mm_cmpunord_ps(a, a)); }
}  // namespace detail

inline float reduce_add(Vec8F a) {
    return detail::tree8(a.v, [](__m128 x, __m128 y) { return _mm_add_ps(x, y); });
}
inline float reduce_max(Vec8F a) { return detail::tree8(a.v, detail::max128); }
inline float reduce_min(Vec8F a) { return detail::tree8(a.v, detail::min128); }

// reduce_add's tree for 8 packets at once (as for AVX-512): slot i's sum ends in lane
// 4 (i % 2) + i / 2, so slot i takes that packet.
inline Vec8F reduce_add_each(const Vec8F (&v)[8]) {
    auto slot = [&](int i) { return v[4 * (i % 2) + i / 2].v; };
    __m256 s[4], t[2];
    for (int k = 0; k < 4; ++k)  // i + 4
        s[k] = _mm256_add_ps(_mm256_permute2f128_ps(slot(2 * k), slot(2 * k + 1), 0x20), _mm256_permute2f128_ps(slot(2 * k), slot(2 * k + 1), 0x31));
    for (int k = 0; k < 2; ++k)  // i + 2
        t[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(s[2 * k]), _mm256_castps_pd(s[2 * k + 1]))),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(s[2 * k]), _mm256_castps_pd(s[2 * k + 1]))));
    return Vec8F(_mm256_add_ps(_mm256_shuffle_ps(t[0], t[1], 0x88), _mm256_shuffle_ps(t[0], t[1], 0xDD)));  // i + 1
}

inline Vec8I as_int(Vec8F a) { return Vec8I(_mm256_castps_si256(a.v)); }
inline Vec8F as_float(Vec8I a) { return Vec8F(_mm256_castsi256_ps(a.v)); }
inline Vec8I to_int(Vec8F a) { return Vec8I(_mm256_cvttps_epi32(a.v)); }
inline Vec8F to_float(Vec8I a) { return Vec8F(_mm256_cvtepi32_ps(a.v)); }

using VecF = Vec8F;

// =============================================================================================
// NEON (AArch64): 4 lanes. No masked loads, so partial loads go through a zeroed buffer.
// Assumes the default FPCR (round to nearest, no flush-to-zero, no default-NaN mode).
// =============================================================================================
#elif defined(WEFT_SIMD_NEON)

namespace detail {
template <class T>
inline void copy_partial4(T* buf, const T* p, int n) {
    if (n > 0) std::memcpy(buf, p, std::size_t(n < 4 ? n : 4) * sizeof(T));
}
}  // namespace detail

struct Mask4 {
    uint32x4_t m;
};
inline Mask4 operator&(Mask4 a, Mask4 b) { return {vandq_u32(a.m, b.m)}; }
inline Mask4 operator|(Mask4 a, Mask4 b) { return {vorrq_u32(a.m, b.m)}; }
inline Mask4 operator!(Mask4 a) { return {vmvnq_u32(a.m)}; }
inline bool any(Mask4 a) { return vmaxvq_u32(a.m) != 0; }
inline bool all(Mask4 a) { return vminvq_u32(a.m) != 0; }

struct Vec4I {
    int32x4_t v;
    Vec4I() = default;
    Vec4I(std::int32_t x) : v(vdupq_n_s32(x)) {}
    explicit Vec4I(int32x4_t x) : v(x) {}
};
inline Vec4I operator+(Vec4I a, Vec4I b) { return Vec4I(vaddq_s32(a.v, b.v)); }
inline Vec4I operator-(Vec4I a, Vec4I b) { return Vec4I(vsubq_s32(a.v, b.v)); }
inline Vec4I operator&(Vec4I a, Vec4I b) { return Vec4I(vandq_s32(a.v, b.v)); }
inline Vec4I operator|(Vec4I a, Vec4I b) { return Vec4I(vorrq_s32(a.v, b.v)); }
inline Vec4I operator^(Vec4I a, Vec4I b) { return Vec4I(veorq_s32(a.v, b.v)); }
template <int K> Vec4I sll(Vec4I a) { return Vec4I(vshlq_n_s32(a.v, K)); }
template <int K> Vec4I srl(Vec4I a) {
    return Vec4I(vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a.v), K)));
}
template <int K> Vec4I sra(Vec4I a) { return Vec4I(vshrq_n_s32(a.v, K)); }

struct Vec4F {
    static constexpr int width = 4;
    using Mask = Mask4;
    using Int = Vec4I;
    float32x4_t v;

    Vec4F() = default;
    Vec4F(float x) : v(vdupq_n_f32(x)) {}
    explicit Vec4F(float32x4_t x) : v(x) {}
    static Vec4F broadcast(float x) { return Vec4F(x); }
    static Vec4F zero() { return Vec4F(vdupq_n_f32(0.0f)); }

    static Vec4F load(const float* p) { return Vec4F(vld1q_f32(p)); }
    static Vec4F load_partial(const float* p, int n) {
        float buf[4] = {};
        detail::copy_partial4(buf, p, n);
        return load(buf);
    }
    void store(float* p) const { vst1q_f32(p, v); }
    void store_partial(float* p, int n) const {
        float buf[4];
        vst1q_f32(buf, v);
        if (n > 0) std::memcpy(p, buf, std::size_t(n < 4 ? n : 4) * sizeof(float));
    }

    // The f16/bf16 bits go through a uint16_t buffer (memcpy) rather than a cast pointer.
    static Vec4F load_f16(const f16* p) {
        std::uint16_t b[4];
        std::memcpy(b, p, sizeof b);
        return Vec4F(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(b))));
    }
    static Vec4F load_f16_partial(const f16* p, int n) {
        f16 buf[4] = {};
        detail::copy_partial4(buf, p, n);
        return load_f16(buf);
    }
    static Vec4F load_bf16(const bf16* p) {
        std::uint16_t b[4];
        std::memcpy(b, p, sizeof b);
        return Vec4F(vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(b), 16)));
    }
    static Vec4F load_bf16_partial(const bf16* p, int n) {
        bf16 buf[4] = {};
        detail::copy_partial4(buf, p, n);
        return load_bf16(buf);
    }
    static Vec4F load_i32(const std::int32_t* p) { return Vec4F(vcvtq_f32_s32(vld1q_s32(p))); }
    static Vec4F load_i32_partial(const std::int32_t* p, int n) {
        std::int32_t buf[4] = {};
        detail::copy_partial4(buf, p, n);
        return load_i32(buf);
    }
    static Vec4F load_i8(const std::int8_t* p) {
        std::int8_t b[8] = {};
        std::memcpy(b, p, 4);
        return Vec4F(vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(b))))));
    }
    static Vec4F load_i8_partial(const std::int8_t* p, int n) {
        std::int8_t buf[4] = {};
        detail::copy_partial4(buf, p, n);
        return load_i8(buf);
    }
};

namespace detail {
inline uint32x4_t bf16_round_words(float32x4_t a) {
    const uint32x4_t x = vreinterpretq_u32_f32(a);
    const uint32x4_t lsb = vandq_u32(vshrq_n_u32(x, 16), vdupq_n_u32(1));
    const uint32x4_t r = vaddq_u32(vaddq_u32(x, vdupq_n_u32(0x7FFF)), lsb);
    const uint32x4_t q = vorrq_u32(x, vdupq_n_u32(0x00400000));
    const uint32x4_t nan = vmvnq_u32(vceqq_f32(a, a));
    return vandq_u32(vbslq_u32(nan, q, r), vdupq_n_u32(0xFFFF0000u));
}
// AArch64 FCVTN rounds by FPCR (nearest even by default) and quiets NaN keeping the top payload
// bits, which is what weft::float_to_f16_bits does.
inline uint16x4_t f16_bits4(float32x4_t a) { return vreinterpret_u16_f16(vcvt_f16_f32(a)); }
inline void store16(void* p, uint16x4_t h, int n) {
    std::uint16_t b[4];
    vst1_u16(b, h);
    if (n > 0) std::memcpy(p, b, std::size_t(n < 4 ? n : 4) * 2);
}
}  // namespace detail

inline void store_f16(f16* p, Vec4F a) { detail::store16(p, detail::f16_bits4(a.v), 4); }
inline void store_f16_partial(f16* p, Vec4F a, int n) { detail::store16(p, detail::f16_bits4(a.v), n); }
inline void store_bf16(bf16* p, Vec4F a) { detail::store16(p, vshrn_n_u32(detail::bf16_round_words(a.v), 16), 4); }
inline void store_bf16_partial(bf16* p, Vec4F a, int n) {
    detail::store16(p, vshrn_n_u32(detail::bf16_round_words(a.v), 16), n);
}
inline Vec4F round_to_f16(Vec4F a) { return Vec4F(vcvt_f32_f16(vcvt_f16_f32(a.v))); }
inline Vec4F round_to_bf16(Vec4F a) { return Vec4F(vreinterpretq_f32_u32(detail::bf16_round_words(a.v))); }

inline Vec4F operator+(Vec4F a, Vec4F b) { return Vec4F(vaddq_f32(a.v, b.v)); }
inline void store_stream(float* p, Vec4F a) { vst1q_f32(p, a.v); }
inline Vec4F operator-(Vec4F a, Vec4F b) { return Vec4F(vsubq_f32(a.v, b.v)); }
inline Vec4F operator*(Vec4F a, Vec4F b) { return Vec4F(vmulq_f32(a.v, b.v)); }
inline Vec4F operator/(Vec4F a, Vec4F b) { return Vec4F(vdivq_f32(a.v, b.v)); }
inline Vec4F operator-(Vec4F a) { return Vec4F(vnegq_f32(a.v)); }
inline Vec4F fmadd(Vec4F a, Vec4F b, Vec4F c) { return Vec4F(vfmaq_f32(c.v, a.v, b.v)); }
inline Vec4F fnmadd(Vec4F a, Vec4F b, Vec4F c) { return Vec4F(vfmsq_f32(c.v, a.v, b.v)); }

inline Mask4 operator<(Vec4F a, Vec4F b) { return {vcltq_f32(a.v, b.v)}; }
inline Mask4 operator<=(Vec4F a, Vec4F b) { return {vcleq_f32(a.v, b.v)}; }
inline Mask4 operator>(Vec4F a, Vec4F b) { return {vcgtq_f32(a.v, b.v)}; }
inline Mask4 operator>=(Vec4F a, Vec4F b) { return {vcgeq_f32(a.v, b.v)}; }
inline Mask4 operator==(Vec4F a, Vec4F b) { return {vceqq_f32(a.v, b.v)}; }
inline Mask4 operator!=(Vec4F a, Vec4F b) { return {vmvnq_u32(vceqq_f32(a.v, b.v))}; }
inline Mask4 is_nan(Vec4F a) { return {vmvnq_u32(vceqq_f32(a.v, a.v))}; }
inline Mask4 signbit(Vec4F a) { return {vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_f32(a.v), 31))}; }
inline Vec4F select(Mask4 m, Vec4F a, Vec4F b) { return Vec4F(vbslq_f32(m.m, a.v, b.v)); }

// FMAX/FMIN treat NaN and signed zeros differently from x86; compare-and-select reproduces the
// Vec1F rule exactly.
inline Vec4F max(Vec4F a, Vec4F b) {
    return Vec4F(vbslq_f32(is_nan(a).m, a.v, vbslq_f32(vcgtq_f32(a.v, b.v), a.v, b.v)));
}
inline Vec4F min(Vec4F a, Vec4F b) {
    return Vec4F(vbslq_f32(is_nan(a).m, a.v, vbslq_f32(vcltq_f32(a.v, b.v), a.v, b.v)));
}
inline Vec4F abs(Vec4F a) { return Vec4F(vabsq_f32(a.v)); }
inline Vec4F sqrt(Vec4F a) { return Vec4F(vsqrtq_f32(a.v)); }
inline Vec4F floor(Vec4F a) { return Vec4F(vrndmq_f32(a.v)); }

inline float reduce_add(Vec4F a) {
    const float32x2_t h = vadd_f32(vget_low_f32(a.v), vget_high_f32(a.v));
    return vget_lane_f32(h, 0) + vget_lane_f32(h, 1);
}
inline float reduce_max(Vec4F a) {
    const Vec4F h = max(a, Vec4F(vcombine_f32(vget_high_f32(a.v), vget_high_f32(a.v))));
    return max(Vec1F(vgetq_lane_f32(h.v, 0)), Vec1F(vgetq_lane_f32(h.v, 1))).v;
}
inline float reduce_min(Vec4F a) {
    const Vec4F h = min(a, Vec4F(vcombine_f32(vget_high_f32(a.v), vget_high_f32(a.v))));
    return min(Vec1F(vgetq_lane_f32(h.v, 0)), Vec1F(vgetq_lane_f32(h.v, 1))).v;
}

inline Vec4I as_int(Vec4F a) { return Vec4I(vreinterpretq_s32_f32(a.v)); }
inline Vec4F as_float(Vec4I a) { return Vec4F(vreinterpretq_f32_s32(a.v)); }
inline Vec4I to_int(Vec4F a) { return Vec4I(vcvtq_s32_f32(a.v)); }
inline Vec4F to_float(Vec4I a) { return Vec4F(vcvtq_f32_s32(a.v)); }

using VecF = Vec4F;

#else  // portable scalar

using VecF = Vec1F;

#endif

// =============================================================================================
// Helpers built from the primitives, for every packet type.
// =============================================================================================

// compound assignment, for kernels' accumulators (the right side may be a float)
template <Packet V> V& operator+=(V& a, std::type_identity_t<V> b) { return a = a + b; }
template <Packet V> V& operator-=(V& a, std::type_identity_t<V> b) { return a = a - b; }
template <Packet V> V& operator*=(V& a, std::type_identity_t<V> b) { return a = a * b; }
template <Packet V> V& operator/=(V& a, std::type_identity_t<V> b) { return a = a / b; }

// reduce_add_each where the ISA has no interleaved tree: one reduce_add per packet.
template <Packet V> V reduce_add_each(const V (&v)[V::width]) {
    alignas(64) float sums[V::width];
    for (int j = 0; j < V::width; ++j) sums[j] = reduce_add(v[j]);
    return V::load(sums);
}

template <Packet V> typename V::Mask is_inf(V a) { return abs(a) == V(detail::inf_f()); }
template <Packet V> typename V::Mask is_finite(V a) { return abs(a) < V(detail::inf_f()); }
// |mag| with the sign of sgn.
template <Packet V> V copysign(V mag, V sgn) {
    using I = typename V::Int;
    return as_float((as_int(mag) & I(std::int32_t(detail::abs_bits))) | (as_int(sgn) & I(std::int32_t(detail::sign_bit))));
}

}  // inline namespace
}  // namespace weft::simd
