// weft/quant/interleave.hpp — Q4_0 matrices with 16 rows interleaved (DType::q4_0x16): an
// in-memory layout that decoding reads faster than GGUF's, in the same bytes.
//
// Why: decoding computes W·x for one x, 16 rows at a time, one vector lane per row. From GGUF's
// layout (each row's 18-byte blocks one after another) the kernel must first bring the 16 rows'
// codes into lanes, with shuffles: on Zen 4 that caps one core at about 30 GB/s of Q4_0 weights,
// under what two cores can read. Interleaved, the codes are already in lanes (one 64-byte load =
// 4 bytes of each of 16 rows), and a core runs the same arithmetic at about 50 GB/s.
//
// Layout: rows [16g, 16g + 16) of a [rows, cols] matrix keep their place, bytes
// [16g · row_bytes, (16g + 16) · row_bytes); inside, block u of the 16 rows is 288 bytes at
// 288u:
//   bytes 0 .. 31:           the 16 rows' f16 scales d (row r at 2r)
//   bytes 32 + 64j + 4r ...: code bytes 4j .. 4j+3 of row r's block (j < 4), i.e. the low
//                            nibbles of values 4j .. 4j+3 and the high ones of 16 + 4j ..
// The rows' count must be a multiple of 16. Values are exactly Q4_0's: d · (code − 8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/threading.hpp"
#include "weft/quant/blocks.hpp"
#include "weft/quant/dequantize.hpp"

namespace weft::quant {

inline constexpr Index interleaved_rows = 16;
inline constexpr std::size_t q4_0x16_block_bytes = interleaved_rows * sizeof(BlockQ4_0);  // 288

// Whether a [rows, cols] weight of dtype t can be laid out as q4_0x16.
inline bool can_interleave(DType t, const Shape& shape) {
    return t == DType::q4_0 && shape.rank() == 2 && shape[0] > 0 && shape[0] % interleaved_rows == 0 &&
           shape[1] > 0 && shape[1] % qk8_0 == 0;
}

namespace detail {
inline void check_interleaved(const char* op, Index rows, Index cols) {
    if (rows <= 0 || rows % interleaved_rows != 0 || cols <= 0 || cols % qk8_0 != 0)
        fail(op, ": a [", rows, ", ", cols, "] Q4_0 matrix cannot be interleaved (rows must be a multiple of 16, columns of 32)");
}
}  // namespace detail

// Rewrites a [rows, cols] Q4_0 matrix at `data` as q4_0x16, in place (groups of 16 rows in parallel).
inline void interleave_q4_0(std::byte* data, Index rows, Index cols) {
    detail::check_interleaved("interleave_q4_0", rows, cols);
    const Index units = cols / qk8_0;
    const std::size_t group_bytes = static_cast<std::size_t>(units) * q4_0x16_block_bytes;
    parallel_for(rows / interleaved_rows, 1, [&](Index g0, Index g1) {
        std::vector<std::uint8_t> rows_copy(group_bytes);
        for (Index g = g0; g < g1; ++g) {
            auto* out = reinterpret_cast<std::uint8_t*>(data) + static_cast<std::size_t>(g) * group_bytes;
            std::memcpy(rows_copy.data(), out, group_bytes);
            for (Index u = 0; u < units; ++u) {
                std::uint8_t* o = out + static_cast<std::size_t>(u) * q4_0x16_block_bytes;
                for (Index r = 0; r < interleaved_rows; ++r) {
                    const std::uint8_t* b = rows_copy.data() + static_cast<std::size_t>(r * units + u) * sizeof(BlockQ4_0);
                    std::memcpy(o + 2 * r, b, 2);
                    for (int j = 0; j < 4; ++j) std::memcpy(o + 32 + 64 * j + 4 * r, b + 2 + 4 * j, 4);
                }
            }
        }
    });
}

// Block u of row `row` of a q4_0x16 matrix with `cols` columns, as the Q4_0 block it was.
inline BlockQ4_0 q4_0x16_block(const void* data, Index cols, Index row, Index u) {
    const Index units = cols / qk8_0, g = row / interleaved_rows, r = row % interleaved_rows;
    const auto* o = static_cast<const std::uint8_t*>(data) + static_cast<std::size_t>(g * units + u) * q4_0x16_block_bytes;
    BlockQ4_0 b;
    std::memcpy(&b.d, o + 2 * r, 2);
    for (int j = 0; j < 4; ++j) std::memcpy(b.qs + 4 * j, o + 32 + 64 * j + 4 * r, 4);
    return b;
}

// The inverse of interleave_q4_0: row `row` of a q4_0x16 matrix back as GGUF Q4_0 blocks (`out`:
// cols / 32 blocks).
inline void deinterleave_q4_0_row(const void* data, Index cols, Index row, BlockQ4_0* out) {
    for (Index u = 0; u < cols / qk8_0; ++u) out[u] = q4_0x16_block(data, cols, row, u);
}

// Row `row` of a q4_0x16 matrix with `cols` columns, dequantized into y (cols values).
inline void dequantize_q4_0x16_row(const void* data, Index cols, Index row, float* y) {
    for (Index u = 0; u < cols / qk8_0; ++u) dequantize(q4_0x16_block(data, cols, row, u), y + u * qk8_0);
}

}  // namespace weft::quant
