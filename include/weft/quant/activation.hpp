// weft/quant/activation.hpp — f32 activations quantized to 8 bits per block, the integer side of
// the quantized matmul kernels (cpu/quant_matmul.hpp): blocks of 32 values (for Q8_0 / Q4_0
// weights) or 256 (K-quants), each with an f32 scale, plus the sum of every 16 quantized values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/storage.hpp"
#include "weft/core/threading.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#define WEFT_QACT_AVX512 1
#include <immintrin.h>
#elif defined(__AVX2__)
#define WEFT_QACT_AVX2 1
#include <immintrin.h>
#endif

namespace weft::quant {

// x [rows, cols] as q [rows, cols] (int8 in [-127, 127]) with x ≈ d·q, one d per block of
// `block` values (32 or 256):
//   amax = max |x| over the block;  d = amax / 127;  q = round-half-even(x · (1 / d))
// all in f32, so every ISA gives the same bytes. A block with amax < 1e-30 is all zeros (d = 0);
// a block holding an infinity or NaN gets d = NaN (and q = 0), so the outputs it feeds are NaN,
// as they would be in f32. sums[r, i] = q[r, 16i] + ... + q[r, 16i + 15] (the kernels fold the
// weights' offsets, −8 for Q4_0, −32 for Q6_K, the K-quant mins, into these). Batches of 16 rows
// or more are padded to a multiple of 16 rows, the padding rows all zeros (d = 0), so the AMX
// kernels may read whole tiles; fewer rows (decoding) are not padded.
class QuantizedActivations {
public:
    Index rows() const { return rows_; }
    Index cols() const { return cols_; }
    Index block() const { return block_; }
    Index ldq() const { return ldq_; }  // bytes between rows of q (cols rounded up to 64)

    const std::int8_t* q(Index r) const { return q_ + r * ldq_; }           // [cols]
    const float* d(Index r) const { return d_ + r * (cols_ / block_); }    // [cols / block]
    const std::int16_t* sums(Index r) const { return s_ + r * (cols_ / 16); }  // [cols / 16]

    // Rows of storage for `rows` rows: whole tiles of 16 from 16 rows on (see above).
    static constexpr Index padded_rows(Index rows) { return rows < 16 ? rows : (rows + 15) / 16 * 16; }

    // Quantizes x [rows, cols] (row stride ldx); cols must be a multiple of block (32 or 256).
    // Reuses this object's memory when it is large enough (no allocation in a decode loop).
    void quantize(const float* x, Index rows, Index cols, Index ldx, Index block);

private:
    AlignedBuffer buffer_;
    Index rows_ = 0, cols_ = 0, block_ = 32, ldq_ = 0;
    std::int8_t* q_ = nullptr;
    float* d_ = nullptr;
    std::int16_t* s_ = nullptr;
};

// ============================================================================================
// Implementation
// ============================================================================================

namespace detail {

inline constexpr float act_tiny = 1e-30f;

// The scale of one block from its max |x| and whether it held a non-finite value; id = 1 / d
// (0 when the block quantizes to zeros).
inline void act_scale(float amax, bool finite, float& d, float& id) {
    if (!finite) {
        d = std::numeric_limits<float>::quiet_NaN();
        id = 0.0f;
    } else if (amax < act_tiny) {
        d = 0.0f;
        id = 0.0f;
    } else {
        d = amax / 127.0f;
        id = 1.0f / d;
    }
}

inline void zero_block(std::int8_t* q, std::int16_t* sums, Index block) {
    std::memset(q, 0, static_cast<std::size_t>(block));
    for (Index i = 0; i < block / 16; ++i) sums[i] = 0;
}

// One row, portable: q [n], d [n / block], sums [n / 16].
inline void quantize_row_scalar(const float* x, Index n, Index block, std::int8_t* q, float* d, std::int16_t* sums) {
    for (Index b = 0; b < n / block; ++b) {
        const float* xb = x + b * block;
        float amax = 0.0f;
        bool finite = true;
        for (Index i = 0; i < block; ++i) {
            const float a = std::fabs(xb[i]);
            finite = finite && a <= std::numeric_limits<float>::max();
            amax = a > amax ? a : amax;
        }
        float id;
        act_scale(amax, finite, d[b], id);
        for (Index i = 0; i < block; ++i) {
            const long r = id == 0.0f ? 0 : std::lrint(xb[i] * id);  // round half to even
            q[b * block + i] = static_cast<std::int8_t>(std::clamp<long>(r, -127, 127));
        }
    }
    for (Index i = 0; i < n / 16; ++i) {
        int s = 0;
        for (Index j = 0; j < 16; ++j) s += q[16 * i + j];
        sums[i] = static_cast<std::int16_t>(s);
    }
}

#if defined(WEFT_QACT_AVX512)
// The same on AVX-512, sixteen values per vector (cvtps rounds half to even by default).
inline void quantize_row_simd(const float* x, Index n, Index block, std::int8_t* q, float* d, std::int16_t* sums) {
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    const __m512 big = _mm512_set1_ps(std::numeric_limits<float>::max());
    constexpr __mmask16 all = 0xFFFF;  // maskz_ forms: the plain ones trip GCC 12's -Wuninitialized
    for (Index b = 0; b < n / block; ++b) {
        const float* xb = x + b * block;
        __m512 amax = _mm512_setzero_ps();
        __mmask16 bad = 0;
        for (Index i = 0; i < block; i += 16) {
            const __m512 a = _mm512_and_ps(_mm512_loadu_ps(xb + i), sign);
            bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ);  // inf or NaN
            amax = _mm512_maskz_max_ps(all, amax, a);
        }
        // max over the lanes, each lane against its mirror 8, 4, 2, 1 lanes away
        amax = _mm512_maskz_max_ps(all, amax, _mm512_maskz_shuffle_f32x4(all, amax, amax, 0x4E));
        amax = _mm512_maskz_max_ps(all, amax, _mm512_maskz_shuffle_f32x4(all, amax, amax, 0xB1));
        amax = _mm512_maskz_max_ps(all, amax, _mm512_maskz_permute_ps(all, amax, 0x4E));
        amax = _mm512_maskz_max_ps(all, amax, _mm512_maskz_permute_ps(all, amax, 0xB1));
        float id;
        act_scale(_mm512_cvtss_f32(amax), bad == 0, d[b], id);
        if (id == 0.0f) {  // zeros (and never inf · 0)
            zero_block(q + b * block, sums + b * block / 16, block);
            continue;
        }
        const __m512 vid = _mm512_set1_ps(id);
        for (Index i = 0; i < block; i += 16) {
            const __m512i r = _mm512_maskz_cvtps_epi32(all, _mm512_mul_ps(_mm512_loadu_ps(xb + i), vid));
            const __m128i q16 = _mm512_maskz_cvtsepi32_epi8(all, r);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * block + i), q16);
            // Σ of the 16 bytes: sad against zero on the bytes + 128 gives two 8-byte sums
            const __m128i sad = _mm_sad_epu8(_mm_xor_si128(q16, _mm_set1_epi8(-128)), _mm_setzero_si128());
            const int total = _mm_cvtsi128_si32(sad) + _mm_extract_epi16(sad, 4) - 16 * 128;
            sums[(b * block + i) / 16] = static_cast<std::int16_t>(total);
        }
    }
}
#elif defined(WEFT_QACT_AVX2)
inline void quantize_row_simd(const float* x, Index n, Index block, std::int8_t* q, float* d, std::int16_t* sums) {
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 big = _mm256_set1_ps(std::numeric_limits<float>::max());
    for (Index b = 0; b < n / block; ++b) {
        const float* xb = x + b * block;
        __m256 amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
        for (Index i = 0; i < block; i += 8) {
            const __m256 a = _mm256_and_ps(_mm256_loadu_ps(xb + i), sign);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, big, _CMP_NLE_UQ));
            amax = _mm256_max_ps(amax, a);
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        float id;
        act_scale(_mm_cvtss_f32(m), _mm256_movemask_ps(bad) == 0, d[b], id);
        if (id == 0.0f) {
            zero_block(q + b * block, sums + b * block / 16, block);
            continue;
        }
        const __m256 vid = _mm256_set1_ps(id);
        for (Index i = 0; i < block; i += 16) {
            const __m256i r0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i), vid));
            const __m256i r1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 8), vid));
            // int32 -> int16 -> int8 (values are within [-127, 127]; packs keep them exact)
            const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);  // 16 x int16 in order
            const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * block + i), _mm_packs_epi16(lo, hi));
            __m128i s = _mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(r0), _mm256_extracti128_si256(r0, 1)),
                                      _mm_add_epi32(_mm256_castsi256_si128(r1), _mm256_extracti128_si256(r1, 1)));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
            sums[(b * block + i) / 16] = static_cast<std::int16_t>(_mm_cvtsi128_si32(s));
        }
    }
}
#endif

}  // namespace detail

inline void QuantizedActivations::quantize(const float* x, Index rows, Index cols, Index ldx, Index block) {
    if (block != 32 && block != 256) fail("quantize activations: block must be 32 or 256, got ", block);
    if (rows < 0 || cols < 0 || cols % block != 0)
        fail("quantize activations: [", rows, ", ", cols, "] is not a whole number of blocks of ", block);
    if (rows > 1 && ldx < cols) fail("quantize activations: row stride ", ldx, " is smaller than the row length ", cols);
    const Index ldq = (cols + 63) / 64 * 64, padded = padded_rows(rows);
    const std::size_t q_bytes = static_cast<std::size_t>(padded * ldq);
    const std::size_t d_bytes = static_cast<std::size_t>(padded * (cols / block)) * sizeof(float);
    const std::size_t s_bytes = static_cast<std::size_t>(padded * (cols / 16)) * sizeof(std::int16_t);
    const std::size_t d_at = (q_bytes + 63) / 64 * 64, s_at = d_at + (d_bytes + 63) / 64 * 64;
    if (buffer_.size() < s_at + s_bytes) buffer_ = AlignedBuffer(s_at + s_bytes);
    rows_ = rows;
    cols_ = cols;
    block_ = block;
    ldq_ = ldq;
    q_ = reinterpret_cast<std::int8_t*>(buffer_.data());
    d_ = reinterpret_cast<float*>(buffer_.data() + d_at);
    s_ = reinterpret_cast<std::int16_t*>(buffer_.data() + s_at);
    if (rows == 0 || cols == 0) return;
    if (padded > rows) {  // the padding rows: zeros
        std::memset(q_ + rows * ldq, 0, static_cast<std::size_t>((padded - rows) * ldq));
        std::fill(d_ + rows * (cols / block), d_ + padded * (cols / block), 0.0f);
        std::fill(s_ + rows * (cols / 16), s_ + padded * (cols / 16), std::int16_t{0});
    }
    const Index grain = std::max<Index>(1, 16384 / cols);  // rows per thread chunk: ~16K values
    parallel_for(rows, grain, [&](Index r0, Index r1) {
        for (Index r = r0; r < r1; ++r) {
            std::int8_t* qr = q_ + r * ldq;
#if defined(WEFT_QACT_AVX512) || defined(WEFT_QACT_AVX2)
            detail::quantize_row_simd(x + r * ldx, cols, block, qr, d_ + r * (cols / block), s_ + r * (cols / 16));
#else
            detail::quantize_row_scalar(x + r * ldx, cols, block, qr, d_ + r * (cols / block), s_ + r * (cols / 16));
#endif
            std::memset(qr + cols, 0, static_cast<std::size_t>(ldq - cols));  // padding reads as zeros
        }
    });
}

}  // namespace weft::quant
