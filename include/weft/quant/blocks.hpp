// weft/quant/blocks.hpp — GGUF's quantized block layouts, byte for byte, so that the bytes of a
// mapped file are used in place. Each struct is one block; a row of n values is n / block_size
// consecutive blocks. Layouts follow ggml's definitions (ggml-common.h / docs/gguf.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/core/dtype.hpp"

namespace weft::quant {

inline constexpr int qk8_0 = 32;   // values per Q8_0 / Q4_0 block
inline constexpr int qk_k = 256;   // values per K-quant super-block
inline constexpr int k_scale_bytes = 12;

// Q8_0: x = d·q.
struct BlockQ8_0 {
    static constexpr int values = qk8_0;
    std::uint16_t d;            // f16 bits
    std::int8_t qs[qk8_0];
};

// Q4_0: x[j] = d·((qs[j] & 0xF) − 8), x[j + 16] = d·((qs[j] >> 4) − 8).
struct BlockQ4_0 {
    static constexpr int values = qk8_0;
    std::uint16_t d;            // f16 bits
    std::uint8_t qs[qk8_0 / 2];
};

// Q4_K: 8 sub-blocks of 32; x = d·sc_j·q − dmin·m_j with 6-bit sc_j, m_j packed in `scales`.
// Each 32-byte run of qs holds two sub-blocks: low nibbles first, then high nibbles.
struct BlockQ4_K {
    static constexpr int values = qk_k;
    std::uint16_t d;            // f16 bits: super-block scale for the scales
    std::uint16_t dmin;         // f16 bits: super-block scale for the mins
    std::uint8_t scales[k_scale_bytes];
    std::uint8_t qs[qk_k / 2];
};

// Q5_K: as Q4_K with a fifth bit per value in qh (bit j of qh[l] belongs to sub-block j).
struct BlockQ5_K {
    static constexpr int values = qk_k;
    std::uint16_t d;
    std::uint16_t dmin;
    std::uint8_t scales[k_scale_bytes];
    std::uint8_t qh[qk_k / 8];
    std::uint8_t qs[qk_k / 2];
};

// Q6_K: 16 sub-blocks of 16; q = (low 4 bits | high 2 bits << 4) − 32; x = d·scales[j]·q.
struct BlockQ6_K {
    static constexpr int values = qk_k;
    std::uint8_t ql[qk_k / 2];
    std::uint8_t qh[qk_k / 4];
    std::int8_t scales[qk_k / 16];
    std::uint16_t d;            // f16 bits
};

static_assert(sizeof(BlockQ8_0) == 34 && alignof(BlockQ8_0) == 2);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// The block struct of a quantized DType.
template <DType T> struct block_of;
template <> struct block_of<DType::q8_0> { using type = BlockQ8_0; };
template <> struct block_of<DType::q4_0> { using type = BlockQ4_0; };
template <> struct block_of<DType::q4_k> { using type = BlockQ4_K; };
template <> struct block_of<DType::q5_k> { using type = BlockQ5_K; };
template <> struct block_of<DType::q6_k> { using type = BlockQ6_K; };
template <DType T> using block_t = typename block_of<T>::type;

// Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block.
inline void k_scale_min(int j, const std::uint8_t* s, std::uint8_t& scale, std::uint8_t& min) {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = static_cast<std::uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        min = static_cast<std::uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

}  // namespace weft::quant
