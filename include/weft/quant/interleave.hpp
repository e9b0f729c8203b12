// weft/quant/interleave.hpp — quantized matrices with 16 rows interleaved (DType::q8_0x16,
// q4_0x16, q4_kx16, q5_kx16, q6_kx16): in-memory layouts that decoding reads faster than GGUF's,
// in the same bytes.
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
//   q8_0x16, q4_0x16 (blocks of an f16 d, then 32 or 16 code bytes): bytes 0 .. 31 the rows' d
//     (row r at 2r), then 32 + 64j + 4r: code bytes 4j .. 4j+3 of row r's block;
//   q4_kx16, q5_kx16 (144 and 176 bytes: whole dwords): 64i + 4r: dword i of row r's block;
//   q6_kx16 (210 bytes: 52 dwords, then d): the 52 dwords so, then at 52 · 64 + 2r row r's d.
// The rows' count must be a multiple of 16. Values are exactly those of the GGUF blocks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/threading.hpp"
#include "weft/quant/dequantize.hpp"

namespace weft::quant {

inline constexpr Index interleaved_rows = 16;

// The interleaved form of a GGUF quantized type (q4_0 -> q4_0x16 ...), or t itself if none.
inline DType interleaved_dtype(DType t) {
    switch (t) {
        case DType::q8_0: return DType::q8_0x16;
        case DType::q4_0: return DType::q4_0x16;
        case DType::q4_k: return DType::q4_kx16;
        case DType::q5_k: return DType::q5_kx16;
        case DType::q6_k: return DType::q6_kx16;
        default: return t;
    }
}
inline bool is_interleaved(DType t) { return t >= DType::q8_0x16 && t <= DType::q6_kx16; }
// The GGUF type an interleaved one holds, or t itself.
inline DType plain_dtype(DType t) {
    switch (t) {
        case DType::q8_0x16: return DType::q8_0;
        case DType::q4_0x16: return DType::q4_0;
        case DType::q4_kx16: return DType::q4_k;
        case DType::q5_kx16: return DType::q5_k;
        case DType::q6_kx16: return DType::q6_k;
        default: return t;
    }
}

// Whether a [rows, cols] weight of dtype t can be interleaved.
inline bool can_interleave(DType t, const Shape& shape) {
    return interleaved_dtype(t) != t && shape.rank() == 2 && shape[0] > 0 && shape[0] % interleaved_rows == 0 && shape[1] > 0 &&
           shape[1] % static_cast<Index>(block_size(t)) == 0;
}

// Throws unless a weight `name` of dtype t and this shape can be read: an interleaved one must be
// a whole number of 16-row groups of whole blocks (nothing else is ever interleaved).
inline void check_layout(DType t, const Shape& shape, const std::string& name) {
    if (is_interleaved(t) && !can_interleave(plain_dtype(t), shape))
        fail("weight '", name, "' is ", t, " of shape ", shape, ": interleaved weights are [rows, cols] with rows a multiple of ",
             interleaved_rows, " and whole blocks of ", block_size(t));
}

namespace detail {

// A GGUF block as an f16 before its dwords (Q8_0, Q4_0), its dwords alone (Q4_K, Q5_K), or its
// dwords then an f16 (Q6_K). Interleaved, 16 blocks are: the 16 leading f16 (32 bytes), dword i
// of the 16 blocks (64 bytes) for each i, the 16 trailing f16.
struct BlockParts {
    std::size_t head, dwords, tail;  // bytes, count, bytes
};
inline BlockParts block_parts(DType plain) {
    switch (plain) {
        case DType::q8_0: return {2, 8, 0};
        case DType::q4_0: return {2, 4, 0};
        case DType::q4_k: return {0, 36, 0};
        case DType::q5_k: return {0, 44, 0};
        case DType::q6_k: return {0, 52, 2};
        default: fail("interleave: ", plain, " has no interleaved form");
    }
}

// f(offset in the GGUF block, offset in the 16 rows' interleaved block, bytes) for each piece of
// row r's block.
template <class F>
void for_each_piece(const BlockParts& p, int r, F f) {
    const auto rr = static_cast<std::size_t>(r);
    const std::size_t dwords_at = p.head * interleaved_rows;
    if (p.head) f(0, p.head * rr, p.head);
    for (std::size_t i = 0; i < p.dwords; ++i) f(p.head + 4 * i, dwords_at + 64 * i + 4 * rr, 4);
    if (p.tail) f(p.head + 4 * p.dwords, dwords_at + 64 * p.dwords + p.tail * rr, p.tail);
}

// A piece's n bytes (2 or 4: sizes known to the compiler, so no call to memcpy).
inline void copy_piece(std::uint8_t* to, const std::uint8_t* from, std::size_t n) {
    if (n == 4) std::memcpy(to, from, 4);
    else std::memcpy(to, from, 2);
}

}  // namespace detail

// Rewrites a [rows, cols] matrix of GGUF quantized type t at `data` as interleaved_dtype(t), in
// place (groups of 16 rows in parallel).
inline void interleave(DType t, std::byte* data, Index rows, Index cols) {
    if (!can_interleave(t, Shape{rows, cols}))
        fail("interleave: a [", rows, ", ", cols, "] ", t, " matrix cannot be interleaved (a quantized type, rows a multiple of 16, whole blocks)");
    const detail::BlockParts parts = detail::block_parts(t);
    const std::size_t bb = block_bytes(t), units = static_cast<std::size_t>(cols) / block_size(t);
    const std::size_t group_bytes = units * bb * interleaved_rows;
    std::atomic<bool> out_of_memory{false};
    parallel_for(rows / interleaved_rows, 1, [&](Index g0, Index g1) {
        std::vector<std::uint8_t> rows_copy;
        try {  // nothing may throw out of the parallel region
            rows_copy.resize(group_bytes);
        } catch (const std::bad_alloc&) {
            out_of_memory = true;
            return;
        }
        for (Index g = g0; g < g1; ++g) {
            auto* out = reinterpret_cast<std::uint8_t*>(data) + static_cast<std::size_t>(g) * group_bytes;
            std::memcpy(rows_copy.data(), out, group_bytes);
            for (std::size_t u = 0; u < units; ++u)
                for (int r = 0; r < interleaved_rows; ++r) {
                    const std::uint8_t* b = rows_copy.data() + (static_cast<std::size_t>(r) * units + u) * bb;
                    std::uint8_t* o = out + u * bb * interleaved_rows;
                    detail::for_each_piece(parts, r, [&](std::size_t at, std::size_t to, std::size_t n) { detail::copy_piece(o + to, b + at, n); });
                }
        }
    });
    // Groups are rewritten whole or not at all, but some may be done: the matrix is then neither
    // layout, and the caller must not use it.
    if (out_of_memory) fail("interleave: out of memory for a ", group_bytes, "-byte copy of 16 rows");
}

// Block u of row `row` of an interleaved matrix (dtype t) with `cols` columns, as the GGUF block
// it was (block_bytes bytes into `out`).
inline void interleaved_block(DType t, const void* data, Index cols, Index row, Index u, void* out) {
    const DType plain = plain_dtype(t);
    const std::size_t bb = block_bytes(plain), units = static_cast<std::size_t>(cols) / block_size(plain);
    const auto g = static_cast<std::size_t>(row / interleaved_rows);
    const auto* o = static_cast<const std::uint8_t*>(data) + (g * units + static_cast<std::size_t>(u)) * bb * interleaved_rows;
    auto* b = static_cast<std::uint8_t*>(out);
    detail::for_each_piece(detail::block_parts(plain), static_cast<int>(row % interleaved_rows),
                           [&](std::size_t at, std::size_t from, std::size_t n) { detail::copy_piece(b + at, o + from, n); });
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
