// weft/core/dtype.hpp — element types: f32, f16, bf16, i32, i8 (and f64 for references).
// f16 and bf16 are 16-bit storage types; converting to and from float is exact
// round-to-nearest-even with NaN, infinities and subnormals handled as IEEE 754 says.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <type_traits>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace weft {

// ---- conversions on bit patterns -----------------------------------------------------------

namespace detail {

// Portable conversions; the public functions below use F16C instructions when available.
inline float f16_bits_to_float_portable(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;
    std::uint32_t bits;
    if (exp == 0x1F) {  // inf or NaN: keep the payload, top-aligned, and quiet a NaN (as F16C does)
        bits = sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
    } else if (exp != 0) {  // normal
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    } else if (mant == 0) {  // zero
        bits = sign;
    } else {  // subnormal: normalise
        int shift = std::countl_zero(mant) - 21;  // leading zeros within the 10-bit field + 1
        mant = (mant << shift) & 0x3FFu;
        exp = std::uint32_t(127 - 15 + 1 - shift);
        bits = sign | (exp << 23) | (mant << 13);
    }
    return std::bit_cast<float>(bits);
}

inline std::uint16_t float_to_f16_bits_portable(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u)  // NaN
        return static_cast<std::uint16_t>(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
    if (ax >= 0x477FF000u)  // >= 65520 rounds to infinity
        return static_cast<std::uint16_t>(sign | 0x7C00u);
    if (ax >= 0x38800000u) {  // normal f16 range (>= 2^-14)
        const std::uint32_t rounded = ax + 0xFFFu + ((ax >> 13) & 1u);
        return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
    }
    if (ax < 0x33000000u)  // < 2^-25: rounds to zero (2^-25 itself is a tie and rounds to even 0)
        return sign;
    // Subnormal result: value = m * 2^-24 with m = round(ax_value / 2^-24).
    const std::uint32_t e = ax >> 23;                    // biased exponent, 102..112
    const std::uint32_t mant = (ax & 0x7FFFFFu) | 0x800000u;  // 24-bit significand
    const std::uint32_t shift = 126 - e;               // bits to drop: 14..24
    const std::uint32_t q = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1);
    const std::uint32_t half = 1u << (shift - 1);
    const std::uint32_t r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
    return static_cast<std::uint16_t>(sign | r);
}

}  // namespace detail

// IEEE binary16 bits -> float (exact: every f16 value is a float value).
inline float f16_bits_to_float(std::uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return detail::f16_bits_to_float_portable(h);
#endif
}

// float -> IEEE binary16 bits, rounding to nearest, ties to even. NaN stays NaN (quieted,
// payload's top bits kept); overflow goes to infinity; tiny values become subnormals or zero.
inline std::uint16_t float_to_f16_bits(float f) {
#if defined(__F16C__)
    return static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#else
    return detail::float_to_f16_bits_portable(f);
#endif
}

// bfloat16 bits -> float (exact).
inline float bf16_bits_to_float(std::uint16_t b) {
    return std::bit_cast<float>(std::uint32_t(b) << 16);
}

// float -> bfloat16 bits, round to nearest even; NaN stays NaN (quieted); subnormals kept.
// (AVX-512 BF16's vcvtneps2bf16 flushes subnormal inputs to zero, so it is not used here.)
inline std::uint16_t float_to_bf16_bits(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
    return static_cast<std::uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// ---- storage types -------------------------------------------------------------------------

// IEEE 754 half precision, stored as bits. Converts to and from float; arithmetic on tensors of
// f16 happens in float and is rounded back after each operation.
struct f16 {
    std::uint16_t bits = 0;
    f16() = default;
    explicit f16(float f) : bits(float_to_f16_bits(f)) {}
    static f16 from_bits(std::uint16_t b) { f16 h; h.bits = b; return h; }
    explicit operator float() const { return f16_bits_to_float(bits); }
    friend bool operator==(f16 a, f16 b) { return float(a) == float(b); }
};

// bfloat16 (the top half of a float), stored as bits.
struct bf16 {
    std::uint16_t bits = 0;
    bf16() = default;
    explicit bf16(float f) : bits(float_to_bf16_bits(f)) {}
    static bf16 from_bits(std::uint16_t b) { bf16 h; h.bits = b; return h; }
    explicit operator float() const { return bf16_bits_to_float(bits); }
    friend bool operator==(bf16 a, bf16 b) { return float(a) == float(b); }
};

inline std::ostream& operator<<(std::ostream& out, f16 h) { return out << float(h); }
inline std::ostream& operator<<(std::ostream& out, bf16 h) { return out << float(h); }

// ---- runtime dtype tags --------------------------------------------------------------------

// Element types, then GGUF's block-quantized weight types (a block of block_size(t) values is
// stored in block_bytes(t) bytes; layouts in weft/quant/blocks.hpp). Tensors hold element types
// only; Weights may hold either. The x16 types are not file types: the GGUF type's blocks of 16
// rows interleaved in memory for decoding (weft/quant/interleave.hpp), the same bytes per block.
enum class DType : std::uint8_t { f32, f16, bf16, i32, i8, f64, q8_0, q4_0, q4_k, q5_k, q6_k, q8_0x16, q4_0x16, q4_kx16, q5_kx16, q6_kx16 };

inline const char* dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "f32";
        case DType::f16: return "f16";
        case DType::bf16: return "bf16";
        case DType::i32: return "i32";
        case DType::i8: return "i8";
        case DType::f64: return "f64";
        case DType::q8_0: return "q8_0";
        case DType::q4_0: return "q4_0";
        case DType::q4_k: return "q4_k";
        case DType::q5_k: return "q5_k";
        case DType::q6_k: return "q6_k";
        case DType::q8_0x16: return "q8_0x16";
        case DType::q4_0x16: return "q4_0x16";
        case DType::q4_kx16: return "q4_kx16";
        case DType::q5_kx16: return "q5_kx16";
        case DType::q6_kx16: return "q6_kx16";
    }
    return "?";
}

inline bool is_quantized(DType t) { return t >= DType::q8_0; }

// Values per block: 1 for element types, 32 or 256 for the quantized ones.
inline std::size_t block_size(DType t) {
    switch (t) {
        case DType::q8_0: case DType::q4_0: case DType::q8_0x16: case DType::q4_0x16: return 32;
        case DType::q4_k: case DType::q5_k: case DType::q6_k: case DType::q4_kx16: case DType::q5_kx16: case DType::q6_kx16: return 256;
        default: return 1;
    }
}

inline std::size_t dtype_size(DType t) {
    switch (t) {
        case DType::f32: case DType::i32: return 4;
        case DType::f16: case DType::bf16: return 2;
        case DType::i8: return 1;
        case DType::f64: return 8;
        default: return 0;  // quantized: no per-element size; see block_bytes
    }
}

// Bytes per block: the element size for element types.
inline std::size_t block_bytes(DType t) {
    switch (t) {
        case DType::q8_0: case DType::q8_0x16: return 34;
        case DType::q4_0: case DType::q4_0x16: return 18;
        case DType::q4_k: case DType::q4_kx16: return 144;
        case DType::q5_k: case DType::q5_kx16: return 176;
        case DType::q6_k: case DType::q6_kx16: return 210;
        default: return dtype_size(t);
    }
}

inline std::ostream& operator<<(std::ostream& out, DType t) { return out << dtype_name(t); }

template <class T> inline constexpr bool is_element_type_v =
    std::is_same_v<T, float> || std::is_same_v<T, f16> || std::is_same_v<T, bf16> ||
    std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int8_t> || std::is_same_v<T, double>;

template <class T> constexpr DType dtype_of() {
    static_assert(is_element_type_v<std::remove_const_t<T>>,
                  "weft: tensors hold f32 (float), f16, bf16, i32 (int32_t), i8 (int8_t) or f64 (double)");
    using U = std::remove_const_t<T>;
    if constexpr (std::is_same_v<U, float>) return DType::f32;
    else if constexpr (std::is_same_v<U, f16>) return DType::f16;
    else if constexpr (std::is_same_v<U, bf16>) return DType::bf16;
    else if constexpr (std::is_same_v<U, std::int32_t>) return DType::i32;
    else if constexpr (std::is_same_v<U, std::int8_t>) return DType::i8;
    else return DType::f64;
}

// The type arithmetic on T is done in: float for the 16-bit float types, T itself otherwise.
template <class T> struct compute_type { using type = T; };
template <> struct compute_type<f16> { using type = float; };
template <> struct compute_type<bf16> { using type = float; };
template <class T> using compute_t = typename compute_type<std::remove_const_t<T>>::type;

// Converts between element types, through float for the 16-bit types.
template <class To, class From>
inline To convert(From x) {
    if constexpr (std::is_same_v<To, From>) return x;
    else if constexpr (std::is_same_v<From, f16> || std::is_same_v<From, bf16>)
        return convert<To>(static_cast<float>(x));
    else if constexpr (std::is_same_v<To, f16> || std::is_same_v<To, bf16>)
        return To(static_cast<float>(x));
    else return static_cast<To>(x);
}

}  // namespace weft
