// weft/cpu/gemm16_amx.hpp — out [M, N] = x [M, K] · w [N, K]ᵀ for f16 / bf16 weights on AMX-BF16
// tiles: the prefill GEMM of 16-bit models on CPUs that have them (Intel Sapphire Rapids and
// later), several times the f32 FMA rate.
//
// Exact inputs, f32 sums. tdpbf16ps multiplies bf16 pairs and adds in f32, so f32 activations are
// split exactly into three bf16 parts, x = x0 + x1 + x2 (truncation: 8 significant bits each, 24
// in all, as many as f32 has); a bf16 weight is one part and an f16 weight two, w = w0 + w1 (11
// significant bits). Every product of parts is exact in f32, so the result is the f32 dot
// product up to the order of the sums (like the widening f32 GEMM, which it replaces when tiles
// are there). The order is fixed per output — K in order, then parts — so it does not depend on
// M, on other rows or columns, or on the thread count. (Tiles flush f32 subnormals: parts below
// 2^-126, i.e. the third part of |x| < 2^-110, count as zero.)
//
// Layout: C = W · Xᵀ, transposed. Tile A is 16 weight rows × 32 K values, loaded straight from
// the weights ([N, K] row-major, 2·K bytes apart) when the block is whole; tile B is 16
// activation rows × 32 K values in the pair-interleaved layout tdpbf16ps wants, packed once per
// call; tile C (16 weight rows × 16 activation rows, f32) is transposed into out at the end.
// Blocks of 32 weight rows × 32 activation rows (4 C tiles, 2 A, 2 B); K in slices whose packed
// activations stay in L2; threads split the weight rows.
#pragma once

#include "weft/cpu/amx.hpp"

#if defined(WEFT_AMX_TILE) && defined(__AMX_BF16__) && defined(__AVX512F__) && defined(__AVX512BW__)
#define WEFT_GEMM16_AMX 1

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/storage.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/gemm.hpp"

namespace weft::cpu {

namespace detail::gemm16 {

using index = std::int64_t;

// Whether this process may use AMX-BF16 tiles (asked once).
inline bool tiles_available() {
    static const bool ok = amx::available(amx::bf16_unit);
    return ok;
}

// Lets tests compare with the widening f32 GEMM on a machine with tiles.
inline std::atomic<bool>& tiles_allowed() {
    static std::atomic<bool> allowed{true};
    return allowed;
}

// Packs x [M, K] (rows ldx apart) into its three bf16 parts, each as B tiles: for K step s (32
// values) and row block r (16 rows), one 1 KiB tile whose row p holds, for rows m = 0..15, the
// pair (x[16r + m, 32s + 2p], x[16r + m, 32s + 2p + 1]). Rows past M and columns past K are zero.
// Tile (part i, step s, block r) sits at ((i · steps + s) · blocks + r) · 512 bf16.
inline void pack_activations(index M, index K, const float* x, index ldx, index steps, index blocks, std::uint16_t* packed) {
    const index tile = 512, part = steps * blocks * tile;
    const __m512i top = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
    alignas(64) std::uint16_t odd[32];  // u16 2k + 1 of two vectors: the top halves of 32 floats
    for (int k = 0; k < 32; ++k) odd[k] = static_cast<std::uint16_t>(2 * k + 1);
    const __m512i pick = _mm512_load_si512(odd);
    const __m512i column = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16));
    parallel_for(blocks, 1, [&](index r0, index r1) {
        for (index r = r0; r < r1; ++r)
            for (index s = 0; s < steps; ++s) {
                std::uint16_t* t0 = packed + (s * blocks + r) * tile;
                const index k0 = 32 * s;
                const __mmask16 lo = static_cast<__mmask16>(K - k0 >= 16 ? 0xFFFF : (1u << (K - k0)) - 1);
                const __mmask16 hi = static_cast<__mmask16>(K - k0 >= 32 ? 0xFFFF : K - k0 <= 16 ? 0 : (1u << (K - k0 - 16)) - 1);
                for (index m = 0; m < 16; ++m) {
                    const index row = 16 * r + m;
                    __m512 v[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
                    if (row < M) {
                        v[0] = _mm512_maskz_loadu_ps(lo, x + row * ldx + k0);
                        v[1] = _mm512_maskz_loadu_ps(hi, x + row * ldx + k0 + 16);
                    }
                    for (int i = 0; i < 3; ++i) {
                        __m512i bits[2];
                        for (int h = 0; h < 2; ++h) {
                            bits[h] = _mm512_and_si512(_mm512_castps_si512(v[h]), top);
                            v[h] = _mm512_sub_ps(v[h], _mm512_castsi512_ps(bits[h]));  // exact: the rest below the part
                        }
                        // pair p (values 2p, 2p + 1) to row p, column m of the tile
                        const __m512i pairs = _mm512_permutex2var_epi16(bits[0], pick, bits[1]);
                        _mm512_i32scatter_epi32(t0 + i * part + 2 * m, column, pairs, 4);
                    }
                }
            }
    });
}

// Tiles: 0-3 C (C[2a + b] = weight rows 16a.., activation rows 16b..), 4-5 A, 6-7 B.
inline void configure() {
    amx::TileConfig c;
    for (int t = 0; t < 8; ++t) c.set(t, 16, 64);
    c.load();
}

// The 4 C tiles of one block += (2 A tiles at a, a + 16 rows) · Σ_i (2 B tiles of part i at
// b + i · part, + 512): one K step of 32 values, the three activation parts in order.
// (GCC's tile intrinsics paste the tile number into the assembly: literals only.)
// Tiles have no renaming: a load waits for the products still reading its register, so each
// load comes as long after its register's last use as the order allows.
inline void block_step(const void* a, index lda, const std::uint16_t* b, index part) {
    _tile_loadd(4, a, lda);
    _tile_loadd(6, b, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, b + 512, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, static_cast<const std::uint8_t*>(a) + 16 * lda, lda);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    for (int i = 1; i < 3; ++i) {
        _tile_loadd(6, b + i * part, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(2, 5, 6);
        _tile_loadd(7, b + i * part + 512, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(3, 5, 7);
    }
}

// A K slice [k0, k0 + kc) of 32 weight rows from n0 as bf16 part `j` (0 or 1 for f16, 0 for
// bf16), 64·kc/32 bytes per row in `dst`; rows past N and columns past K are zero.
template <class W>
void pack_weights(const W* w, index N, index K, index n0, index k0, index kc, int j, std::uint16_t* dst) {
    const __m512i top = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
    for (index r = 0; r < 32; ++r) {
        std::uint16_t* out = dst + r * kc;
        const index n = n0 + r, valid = n < N ? std::clamp<index>(K - k0, 0, kc) : 0;
        const W* src = w + n * K + k0;
        if constexpr (std::is_same_v<W, bf16>) {
            std::memcpy(out, src, static_cast<std::size_t>(valid) * sizeof(std::uint16_t));
        } else {
            for (index k = 0; k < valid; k += 16) {  // 16 at a time: widen, keep part j's top half
                const __mmask16 mask = static_cast<__mmask16>(valid - k >= 16 ? 0xFFFF : (1u << (valid - k)) - 1);
                __m512 v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, src + k));
                __m512i part = _mm512_and_si512(_mm512_castps_si512(v), top);
                if (j == 1) part = _mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(v, _mm512_castsi512_ps(part))), top);
                _mm256_mask_storeu_epi16(out + k, mask, _mm512_cvtepi32_epi16(_mm512_srli_epi32(part, 16)));
            }
        }
        std::fill(out + valid, out + kc, std::uint16_t{0});
    }
}

// Prefetches the 32 weight rows × 64 bytes that K step s + ahead of block nb will read (past the
// slice's end: the next block's first steps). Rows past N are not asked for.
template <class W>
void prefetch_ahead(const W* w, index N, index K, index nb, index nb1, index s, index s0, index s1) {
    constexpr index ahead = 6;
    index step = s + ahead, n0 = 32 * nb;
    if (step >= s1) {
        if (nb + 1 >= nb1) return;
        step = s0 + (step - s1);
        n0 += 32;
    }
    if (32 * step >= K) return;
    for (index r = 0; r < 32 && n0 + r < N; ++r) _mm_prefetch(reinterpret_cast<const char*>(w + (n0 + r) * K + 32 * step), _MM_HINT_T0);
}

template <class W>
void gemm(index M, index N, index K, const float* x, index ldx, const W* w, float* out, index ldo) {
    constexpr int wparts = std::is_same_v<W, bf16> ? 1 : 2;
    const index steps = (K + 31) / 32, blocks16 = (M + 15) / 16, mblocks = (blocks16 + 1) / 2, nblocks = (N + 31) / 32;
    const index bl = 2 * mblocks;  // 16-row blocks of the packed activations (a whole number of 32-row blocks)
    // Packed activations: 3 parts × steps × bl tiles of 512 bf16.
    thread_local AlignedBuffer packed_x;
    const std::size_t x_bytes = static_cast<std::size_t>(3 * steps * bl * 512) * sizeof(std::uint16_t);
    if (packed_x.size() < x_bytes) packed_x = AlignedBuffer(x_bytes);
    auto* px = reinterpret_cast<std::uint16_t*>(packed_x.data());
    pack_activations(M, K, x, ldx, steps, bl, px);
    const index part_stride = steps * bl * 512;

    // K slices whose packed activations (3 parts) take at most ~1 MiB of L2.
    const index slice_steps = std::clamp<index>((index(1) << 20) / (3 * bl * 1024), 1, 32);
    detail::gemm::parallel_chunks(nblocks, 1, [&](index nb0, index nb1) {
        // C of this thread's blocks, [block][m block][4 tiles of 256 floats]
        thread_local AlignedBuffer c_buffer, w_buffer;
        const std::size_t c_bytes = static_cast<std::size_t>((nb1 - nb0) * mblocks * 4 * 256) * sizeof(float);
        if (c_buffer.size() < c_bytes) c_buffer = AlignedBuffer(c_bytes);
        const std::size_t w_bytes = static_cast<std::size_t>(wparts * 32 * slice_steps * 32) * sizeof(std::uint16_t);
        if (w_buffer.size() < w_bytes) w_buffer = AlignedBuffer(w_bytes);
        auto* cb = reinterpret_cast<float*>(c_buffer.data());
        auto* wb = reinterpret_cast<std::uint16_t*>(w_buffer.data());
        configure();
        for (index s0 = 0; s0 < steps; s0 += slice_steps) {
            const index s1 = std::min(steps, s0 + slice_steps), kc = 32 * (s1 - s0);
            for (index nb = nb0; nb < nb1; ++nb) {
                const index n0 = 32 * nb;
                // Whole bf16 blocks are read in place; edges and f16 weights go through wb.
                const bool direct = std::is_same_v<W, bf16> && n0 + 32 <= N && 32 * s1 <= K;
                if (!direct)
                    for (int j = 0; j < wparts; ++j) pack_weights(w, N, K, n0, 32 * s0, kc, j, wb + j * 32 * kc);
                for (index mb = 0; mb < mblocks; ++mb) {
                    float* c = cb + ((nb - nb0) * mblocks + mb) * 1024;
                    if (s0 == 0) {
                        _tile_zero(0);
                        _tile_zero(1);
                        _tile_zero(2);
                        _tile_zero(3);
                    } else {
                        _tile_loadd(0, c, 64);
                        _tile_loadd(1, c + 256, 64);
                        _tile_loadd(2, c + 512, 64);
                        _tile_loadd(3, c + 768, 64);
                    }
                    for (index s = s0; s < s1; ++s) {
                        // The first pass over the block reads the weights from DRAM: ask for the
                        // rows `ahead` steps further (into the next block at the slice's end).
                        if (direct && mb == 0) prefetch_ahead(w, N, K, nb, nb1, s, s0, s1);
                        for (int j = 0; j < wparts; ++j) {
                            const void* a = direct ? static_cast<const void*>(w + n0 * K + 32 * s)
                                                   : static_cast<const void*>(wb + j * 32 * kc + 32 * (s - s0));
                            const index lda = direct ? 2 * K : 2 * kc;
                            block_step(a, lda, px + (s * bl + 2 * mb) * 512, part_stride);
                        }
                    }
                    _tile_stored(0, c, 64);
                    _tile_stored(1, c + 256, 64);
                    _tile_stored(2, c + 512, 64);
                    _tile_stored(3, c + 768, 64);
                }
            }
        }
        _tile_release();
        // out[m, n] = C[n, m]
        for (index nb = nb0; nb < nb1; ++nb)
            for (index mb = 0; mb < mblocks; ++mb) {
                const float* c = cb + ((nb - nb0) * mblocks + mb) * 1024;
                for (int t = 0; t < 4; ++t) {
                    const index nbase = 32 * nb + 16 * (t / 2), mbase = 32 * mb + 16 * (t % 2);
                    for (index r = 0; r < 16 && nbase + r < N; ++r)
                        for (index m = 0; m < 16 && mbase + m < M; ++m) out[(mbase + m) * ldo + nbase + r] = c[t * 256 + r * 16 + m];
                }
            }
    });
}

}  // namespace detail::gemm16

// Whether gemm16_amx runs here (AMX-BF16 tiles granted, and not switched off for a test).
inline bool gemm16_amx_available() {
    return detail::gemm16::tiles_available() && detail::gemm16::tiles_allowed().load(std::memory_order_relaxed);
}

// out [M, N] (rows ldo apart) = x [M, K] (rows ldx apart) · w [N, K]ᵀ for f16 or bf16 w, on
// AMX-BF16 tiles. Only call it when gemm16_amx_available().
template <class W>
void gemm16_amx(std::int64_t M, std::int64_t N, std::int64_t K, const float* x, std::int64_t ldx, const W* w, float* out,
                std::int64_t ldo) {
    static_assert(std::is_same_v<W, f16> || std::is_same_v<W, bf16>, "weft: gemm16_amx reads f16 or bf16 weights");
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (std::int64_t m = 0; m < M; ++m) std::fill_n(out + m * ldo, N, 0.0f);
        return;
    }
    detail::gemm16::gemm(M, N, K, x, ldx, w, out, ldo);
}

}  // namespace weft::cpu
#endif
