// weft/quant/dequantize.hpp — quantized blocks back to f32, written plainly from the block
// definitions in quant/blocks.hpp. This is the reference the SIMD kernels are tested against.
#pragma once

#include <cstdint>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/quant/blocks.hpp"

namespace weft::quant {

inline float half(std::uint16_t bits) { return f16_bits_to_float(bits); }

inline void dequantize(const BlockQ8_0& b, float* y) {
    const float d = half(b.d);
    for (int j = 0; j < qk8_0; ++j) y[j] = d * static_cast<float>(b.qs[j]);
}

inline void dequantize(const BlockQ4_0& b, float* y) {
    const float d = half(b.d);
    for (int j = 0; j < qk8_0 / 2; ++j) {
        y[j] = d * static_cast<float>((b.qs[j] & 0xF) - 8);
        y[j + qk8_0 / 2] = d * static_cast<float>((b.qs[j] >> 4) - 8);
    }
}

inline void dequantize(const BlockQ4_K& b, float* y) {
    const float d = half(b.d), dmin = half(b.dmin);
    // Four runs of 32 bytes; run r holds sub-block 2r in its low nibbles and 2r + 1 in its high.
    for (int r = 0; r < 4; ++r) {
        std::uint8_t sc_lo, m_lo, sc_hi, m_hi;
        k_scale_min(2 * r, b.scales, sc_lo, m_lo);
        k_scale_min(2 * r + 1, b.scales, sc_hi, m_hi);
        const float d_lo = d * sc_lo, min_lo = dmin * m_lo, d_hi = d * sc_hi, min_hi = dmin * m_hi;
        const std::uint8_t* q = b.qs + 32 * r;
        for (int l = 0; l < 32; ++l) {
            y[64 * r + l] = d_lo * static_cast<float>(q[l] & 0xF) - min_lo;
            y[64 * r + 32 + l] = d_hi * static_cast<float>(q[l] >> 4) - min_hi;
        }
    }
}

inline void dequantize(const BlockQ5_K& b, float* y) {
    const float d = half(b.d), dmin = half(b.dmin);
    for (int r = 0; r < 4; ++r) {
        std::uint8_t sc_lo, m_lo, sc_hi, m_hi;
        k_scale_min(2 * r, b.scales, sc_lo, m_lo);
        k_scale_min(2 * r + 1, b.scales, sc_hi, m_hi);
        const float d_lo = d * sc_lo, min_lo = dmin * m_lo, d_hi = d * sc_hi, min_hi = dmin * m_hi;
        const std::uint8_t* q = b.qs + 32 * r;
        // The fifth bit of value l of sub-block j is bit j of qh[l].
        const int bit_lo = 2 * r, bit_hi = 2 * r + 1;
        for (int l = 0; l < 32; ++l) {
            const int lo = (q[l] & 0xF) | (((b.qh[l] >> bit_lo) & 1) << 4);
            const int hi = (q[l] >> 4) | (((b.qh[l] >> bit_hi) & 1) << 4);
            y[64 * r + l] = d_lo * static_cast<float>(lo) - min_lo;
            y[64 * r + 32 + l] = d_hi * static_cast<float>(hi) - min_hi;
        }
    }
}

inline void dequantize(const BlockQ6_K& b, float* y) {
    const float d = half(b.d);
    // Two halves of 128 values; in half h, byte l of ql (64 bytes) and qh (32 bytes) hold values
    // l, l + 32, l + 64, l + 96 as: low nibble of ql[l] / ql[l + 32], high nibble of the same,
    // with bit pairs 0-1, 2-3, 4-5, 6-7 of qh[l] as the top two bits. Scales cover 16 values.
    for (int h = 0; h < 2; ++h) {
        const std::uint8_t* ql = b.ql + 64 * h;
        const std::uint8_t* qh = b.qh + 32 * h;
        const std::int8_t* sc = b.scales + 8 * h;
        float* out = y + 128 * h;
        for (int l = 0; l < 32; ++l) {
            const int s = l / 16;
            const int q0 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q1 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            out[l] = d * static_cast<float>(sc[s + 0]) * static_cast<float>(q0);
            out[l + 32] = d * static_cast<float>(sc[s + 2]) * static_cast<float>(q1);
            out[l + 64] = d * static_cast<float>(sc[s + 4]) * static_cast<float>(q2);
            out[l + 96] = d * static_cast<float>(sc[s + 6]) * static_cast<float>(q3);
        }
    }
}

// Dequantizes n values (a multiple of the block size) stored as `type` at `src` into y.
// Element types (f32, f16, bf16) are widened, so callers can treat every weight dtype alike.
inline void dequantize_row(DType type, const void* src, float* y, Index n) {
    const auto blocks_of = [&](auto block_tag) {
        using B = decltype(block_tag);
        constexpr Index values = B::values;
        if (n % values != 0) fail("dequantize_row: ", n, " values is not a multiple of the ", type, " block size ", values);
        const B* blocks = static_cast<const B*>(src);
        for (Index i = 0; i < n / values; ++i) dequantize(blocks[i], y + i * values);
    };
    switch (type) {
        case DType::f32: for (Index i = 0; i < n; ++i) y[i] = static_cast<const float*>(src)[i]; break;
        case DType::f16: for (Index i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<const f16*>(src)[i]); break;
        case DType::bf16: for (Index i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<const bf16*>(src)[i]); break;
        case DType::q8_0: blocks_of(BlockQ8_0{}); break;
        case DType::q4_0: blocks_of(BlockQ4_0{}); break;
        case DType::q4_k: blocks_of(BlockQ4_K{}); break;
        case DType::q5_k: blocks_of(BlockQ5_K{}); break;
        case DType::q6_k: blocks_of(BlockQ6_K{}); break;
        case DType::q8_0x16: case DType::q4_0x16: case DType::q4_kx16: case DType::q5_kx16:
        case DType::q6_kx16: fail("dequantize_row: ", type, " rows are interleaved, not contiguous (quant::dequantize_interleaved_row)");
        default: fail("dequantize_row: ", type, " is not a weight dtype");
    }
}

}  // namespace weft::quant
