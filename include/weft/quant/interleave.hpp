// weft/quant/interleave.hpp — Q4_0 and Q4_K matrices with 16 rows interleaved (DType::q4_0x16,
// DType::q4_kx16): in-memory layouts that decoding reads faster than GGUF's, in the same bytes.
//
// Why: decoding computes W·x for one x, 16 rows at a time, one vector lane per row. From GGUF's
// layout (each row's blocks one after another) the kernel must first bring the 16 rows' bytes into
// lanes, with shuffles: on Zen 4 that caps one core at about 30 GB/s of Q4_0 weights, under what
// two cores can read. Interleaved, the bytes are already in lanes (one 64-byte load = 4 bytes of
// each of 16 rows), and a core runs the same arithmetic on them at about 44 GB/s.
//
// Layout: rows [16g, 16g + 16) of a [rows, cols] matrix keep their place, bytes
// [16g · row_bytes, (16g + 16) · row_bytes); inside, block u of the 16 rows takes 16 blocks'
// bytes at 16u · block_bytes:
//   q4_0x16 (18-byte blocks, not whole dwords): bytes 0 .. 31 the rows' f16 scales d (row r at
//     2r), then 32 + 64j + 4r: code bytes 4j .. 4j+3 of row r's block (j < 4);
//   q4_kx16 (144-byte blocks, 36 dwords): 64i + 4r: dword i of row r's block.
// The rows' count must be a multiple of 16. Values are exactly those of the GGUF blocks.
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

// The interleaved form of a GGUF type (q4_0 -> q4_0x16, q4_k -> q4_kx16), or t itself if none.
inline DType interleaved_dtype(DType t) { return t == DType::q4_0 ? DType::q4_0x16 : t == DType::q4_k ? DType::q4_kx16 : t; }
inline bool is_interleaved(DType t) { return t == DType::q4_0x16 || t == DType::q4_kx16; }
// The GGUF type an interleaved one holds.
inline DType plain_dtype(DType t) { return t == DType::q4_0x16 ? DType::q4_0 : t == DType::q4_kx16 ? DType::q4_k : t; }

// Whether a [rows, cols] weight of dtype t can be interleaved.
inline bool can_interleave(DType t, const Shape& shape) {
    return interleaved_dtype(t) != t && shape.rank() == 2 && shape[0] > 0 && shape[0] % interleaved_rows == 0 && shape[1] > 0 &&
           shape[1] % static_cast<Index>(block_size(t)) == 0;
}

namespace detail {

// Byte b (< block_bytes) of row r's block, within the 16 rows' interleaved block.
inline std::size_t interleaved_offset(DType plain, int r, std::size_t b) {
    if (plain == DType::q4_0) return b < 2 ? 2 * r + b : 32 + 64 * ((b - 2) / 4) + 4 * r + (b - 2) % 4;
    return 64 * (b / 4) + 4 * r + b % 4;
}

}  // namespace detail

// Rewrites a [rows, cols] matrix of GGUF type t (q4_0 or q4_k) at `data` as interleaved_dtype(t),
// in place (groups of 16 rows in parallel).
inline void interleave(DType t, std::byte* data, Index rows, Index cols) {
    if (!can_interleave(t, Shape{rows, cols}))
        fail("interleave: a [", rows, ", ", cols, "] ", t, " matrix cannot be interleaved (q4_0 or q4_k, rows a multiple of 16, whole blocks)");
    const std::size_t bb = block_bytes(t), units = static_cast<std::size_t>(cols) / block_size(t);
    const std::size_t group_bytes = units * bb * interleaved_rows;
    parallel_for(rows / interleaved_rows, 1, [&](Index g0, Index g1) {
        std::vector<std::uint8_t> rows_copy(group_bytes);
        for (Index g = g0; g < g1; ++g) {
            auto* out = reinterpret_cast<std::uint8_t*>(data) + static_cast<std::size_t>(g) * group_bytes;
            std::memcpy(rows_copy.data(), out, group_bytes);
            for (std::size_t u = 0; u < units; ++u)
                for (int r = 0; r < interleaved_rows; ++r) {
                    const std::uint8_t* b = rows_copy.data() + (static_cast<std::size_t>(r) * units + u) * bb;
                    std::uint8_t* o = out + u * bb * interleaved_rows;
                    for (std::size_t i = 0; i < bb; i += 2) std::memcpy(o + detail::interleaved_offset(t, r, i), b + i, 2);
                }
        }
    });
}

// Block u of row `row` of an interleaved matrix (dtype t) with `cols` columns, as the GGUF block
// it was (block_bytes(t) bytes into `out`).
inline void interleaved_block(DType t, const void* data, Index cols, Index row, Index u, void* out) {
    const DType plain = plain_dtype(t);
    const std::size_t bb = block_bytes(plain), units = static_cast<std::size_t>(cols) / block_size(plain);
    const auto g = static_cast<std::size_t>(row / interleaved_rows);
    const int r = static_cast<int>(row % interleaved_rows);
    const auto* o = static_cast<const std::uint8_t*>(data) + (g * units + static_cast<std::size_t>(u)) * bb * interleaved_rows;
    for (std::size_t i = 0; i < bb; i += 2) std::memcpy(static_cast<std::uint8_t*>(out) + i, o + detail::interleaved_offset(plain, r, i), 2);
}

// The inverse of interleave: row `row` back as GGUF blocks (cols / block_size values into `out`).
inline void deinterleave_row(DType t, const void* data, Index cols, Index row, void* out) {
    const DType plain = plain_dtype(t);
    const Index units = cols / static_cast<Index>(block_size(plain));
    for (Index u = 0; u < units; ++u)
        interleaved_block(t, data, cols, row, u, static_cast<std::uint8_t*>(out) + static_cast<std::size_t>(u) * block_bytes(plain));
}

// Row `row` of an interleaved matrix with `cols` columns, dequantized into y (cols values).
inline void dequantize_interleaved_row(DType t, const void* data, Index cols, Index row, float* y) {
    const DType plain = plain_dtype(t);
    const Index values = static_cast<Index>(block_size(plain));
    alignas(8) std::uint8_t block[256];
    for (Index u = 0; u < cols / values; ++u) {
        interleaved_block(t, data, cols, row, u, block);
        dequantize_row(plain, block, y + u * values, values);
    }
}

}  // namespace weft::quant
