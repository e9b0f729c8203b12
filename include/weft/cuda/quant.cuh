// weft/cuda/quant.cuh — weights read on the device in their stored dtype, GGUF bytes in place:
// weight_value<T>(row, i) decodes one element exactly as quant/dequantize.hpp does; GemvUnit<T>
// decodes 8 weights in registers and dots them with an f32 row (the GEMV's inner step).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/quant/blocks.hpp"
#include "weft/cuda/dtype.cuh"

namespace weft::cuda::detail {

using u8 = unsigned char;

__device__ __forceinline__ std::uint16_t u16_at(const u8* p) { return *reinterpret_cast<const std::uint16_t*>(p); }
__device__ __forceinline__ std::uint32_t u32_at(const u8* p) { return *reinterpret_cast<const std::uint32_t*>(p); }
__device__ __forceinline__ float half_at(const u8* p) { return f16_to_float(u16_at(p)); }

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block (quant::k_scale_min).
__device__ __forceinline__ void k_scale_min(int j, const u8* s, int& scale, int& min) {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// The same from three 32-bit words holding the 12 scale bytes (kept in registers).
__device__ __forceinline__ int scale_byte(const std::uint32_t (&w)[3], int i) {
    const std::uint32_t word = i < 4 ? w[0] : (i < 8 ? w[1] : w[2]);
    return static_cast<int>((word >> (8 * (i & 3))) & 0xFF);
}
__device__ __forceinline__ void k_scale_min(int j, const std::uint32_t (&w)[3], int& scale, int& min) {
    if (j < 4) {
        scale = scale_byte(w, j) & 63;
        min = scale_byte(w, j + 4) & 63;
    } else {
        scale = (scale_byte(w, j + 4) & 0xF) | ((scale_byte(w, j - 4) >> 6) << 4);
        min = (scale_byte(w, j + 4) >> 4) | ((scale_byte(w, j) >> 6) << 4);
    }
}

// The weight dtypes the device reads, and the C++ element type of the float ones.
template <DType T> struct element_of { using type = void; };
template <> struct element_of<DType::f32> { using type = float; };
template <> struct element_of<DType::f16> { using type = f16; };
template <> struct element_of<DType::bf16> { using type = bf16; };

// Calls f(std::integral_constant<DType, T>{}) for a weight dtype the device supports; throws otherwise.
template <class F>
decltype(auto) visit_weight_dtype(DType t, const char* what, F&& f) {
    switch (t) {
        case DType::f32: return f(std::integral_constant<DType, DType::f32>{});
        case DType::f16: return f(std::integral_constant<DType, DType::f16>{});
        case DType::bf16: return f(std::integral_constant<DType, DType::bf16>{});
        case DType::q8_0: return f(std::integral_constant<DType, DType::q8_0>{});
        case DType::q4_0: return f(std::integral_constant<DType, DType::q4_0>{});
        case DType::q4_k: return f(std::integral_constant<DType, DType::q4_k>{});
        case DType::q5_k: return f(std::integral_constant<DType, DType::q5_k>{});
        case DType::q6_k: return f(std::integral_constant<DType, DType::q6_k>{});
        default: fail(what, ": weights of dtype ", t, " are not supported on CUDA (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)");
    }
}

// ---- one element --------------------------------------------------------------------------------
// Element i of a row stored as T. The products use __fmul_rn/__fadd_rn so that nvcc does not fuse
// them into FMAs: the values are the ones quant::dequantize computes.

template <DType T>
__device__ __forceinline__ float weight_value(const u8* row, Index i) {
    if constexpr (T == DType::f32 || T == DType::f16 || T == DType::bf16) {
        using E = typename element_of<T>::type;
        return load(reinterpret_cast<const E*>(row) + i);
    } else if constexpr (T == DType::q8_0) {
        const u8* b = row + (i / 32) * 34;
        const int j = static_cast<int>(i % 32);
        return __fmul_rn(half_at(b), static_cast<float>(static_cast<std::int8_t>(b[2 + j])));
    } else if constexpr (T == DType::q4_0) {
        const u8* b = row + (i / 32) * 18;
        const int j = static_cast<int>(i % 32);
        const int q = j < 16 ? (b[2 + j] & 0xF) - 8 : (b[2 + j - 16] >> 4) - 8;
        return __fmul_rn(half_at(b), static_cast<float>(q));
    } else if constexpr (T == DType::q4_k || T == DType::q5_k) {
        constexpr int bytes = T == DType::q4_k ? 144 : 176, qs_at = T == DType::q4_k ? 16 : 48;
        const u8* b = row + (i / 256) * bytes;
        const int j = static_cast<int>(i % 256), r = j / 64, w = j % 64, l = w % 32, high = w >= 32, sub = 2 * r + high;
        const u8 qbyte = b[qs_at + 32 * r + l];
        int q = high ? (qbyte >> 4) : (qbyte & 0xF);
        if constexpr (T == DType::q5_k) q |= ((b[16 + l] >> sub) & 1) << 4;
        int sc, m;
        k_scale_min(sub, b + 4, sc, m);
        const float d = __fmul_rn(half_at(b), static_cast<float>(sc)), dm = __fmul_rn(half_at(b + 2), static_cast<float>(m));
        return __fsub_rn(__fmul_rn(d, static_cast<float>(q)), dm);
    } else {
        static_assert(T == DType::q6_k, "weight_value: unsupported dtype");
        const u8* b = row + (i / 256) * 210;
        const int j = static_cast<int>(i % 256), h = j / 128, rem = j % 128, k = rem / 32, l = rem % 32, s = l / 16;
        const u8 qlb = b[64 * h + l + 32 * (k & 1)];
        const int low = k < 2 ? (qlb & 0xF) : (qlb >> 4);
        const int q = (low | (((b[128 + 32 * h + l] >> (2 * k)) & 3) << 4)) - 32;
        const float sc = static_cast<float>(static_cast<std::int8_t>(b[192 + 8 * h + s + 2 * k]));
        return __fmul_rn(__fmul_rn(half_at(b + 208), sc), static_cast<float>(q));
    }
}

// ---- GEMV units: 8 weights of a row, decoded in registers -----------------------------------------
// A row of K values is K / values units; lane l of a warp takes units l, l + 32, ... Each unit type
// has `load` (the raw bytes, issued early so several loads are in flight) and `dot` (decode and
// multiply with x, an f32 activation row, 16-byte aligned). For the quantized types, the 32 units of
// a warp step cover consecutive bytes, so the warp reads whole blocks.

__device__ __forceinline__ float4 x4(const float* x, Index i) { return *reinterpret_cast<const float4*>(x + i); }
__device__ __forceinline__ float2 x2(const float* x, Index i) { return *reinterpret_cast<const float2*>(x + i); }
__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

template <DType T, bool Vector> struct GemvUnit;

// f32/f16/bf16, one element per unit (any K, any alignment).
template <DType T>
struct GemvUnit<T, false> {
    static constexpr int values = 1;
    using E = typename element_of<T>::type;
    struct Regs {
        float w;
    };
    __device__ static Regs load(const u8* row, Index u) { return {static_cast<float>(detail::load(reinterpret_cast<const E*>(row) + u))}; }
    __device__ static float dot(const Regs& r, const float* x, Index u) { return r.w * x[u]; }
};

// f32, 8 elements per unit (K % 8 == 0).
template <>
struct GemvUnit<DType::f32, true> {
    static constexpr int values = 8;
    struct Regs {
        float4 a, b;
    };
    __device__ static Regs load(const u8* row, Index u) {
        const float4* p = reinterpret_cast<const float4*>(row) + 2 * u;
        return {p[0], p[1]};
    }
    __device__ static float dot(const Regs& r, const float* x, Index u) { return dot4(r.a, x4(x, 8 * u)) + dot4(r.b, x4(x, 8 * u + 4)); }
};

// f16 / bf16, 8 elements (16 bytes) per unit (K % 8 == 0).
template <DType T> requires(T == DType::f16 || T == DType::bf16)
struct GemvUnit<T, true> {
    static constexpr int values = 8;
    struct Regs {
        uint4 w;
    };
    __device__ static Regs load(const u8* row, Index u) { return {reinterpret_cast<const uint4*>(row)[u]}; }
    __device__ static float2 pair(std::uint32_t w) {
        if constexpr (T == DType::bf16) return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
        else return __half22float2(*reinterpret_cast<const __half2*>(&w));
    }
    __device__ static float dot(const Regs& r, const float* x, Index u) {
        const float4 xa = x4(x, 8 * u), xb = x4(x, 8 * u + 4);
        const float2 p0 = pair(r.w.x), p1 = pair(r.w.y), p2 = pair(r.w.z), p3 = pair(r.w.w);
        return p0.x * xa.x + p0.y * xa.y + p1.x * xa.z + p1.y * xa.w + p2.x * xb.x + p2.y * xb.y + p3.x * xb.z + p3.y * xb.w;
    }
};

// Q8_0: unit u is values 8p..8p+7 (p = u % 4) of block u / 4; x = d·q.
template <>
struct GemvUnit<DType::q8_0, true> {
    static constexpr int values = 8;
    struct Regs {
        std::uint16_t d, q[4];
    };
    __device__ static Regs load(const u8* row, Index u) {
        const u8* blk = row + (u >> 2) * 34;
        const u8* q = blk + 2 + 8 * (u & 3);  // qs begin 2 bytes into the block
        return {u16_at(blk), {u16_at(q), u16_at(q + 2), u16_at(q + 4), u16_at(q + 6)}};
    }
    __device__ static float dot(const Regs& r, const float* x, Index u) {
        const float4 xa = x4(x, 8 * u), xb = x4(x, 8 * u + 4);
        auto q = [&](int k) { return static_cast<float>(static_cast<std::int8_t>(r.q[k / 2] >> (8 * (k % 2)))); };
        const float s = q(0) * xa.x + q(1) * xa.y + q(2) * xa.z + q(3) * xa.w + q(4) * xb.x + q(5) * xb.y + q(6) * xb.z + q(7) * xb.w;
        return f16_to_float(r.d) * s;
    }
};

// Q4_0: unit u holds qs bytes 4p..4p+3 (p = u % 4) of block u / 4: values 4p..4p+3 (low nibbles)
// and 16+4p..16+4p+3 (high nibbles); x = d·(q − 8).
template <>
struct GemvUnit<DType::q4_0, true> {
    static constexpr int values = 8;
    struct Regs {
        std::uint16_t d, q[2];
    };
    __device__ static Regs load(const u8* row, Index u) {
        const u8* blk = row + (u >> 2) * 18;
        const u8* b = blk + 2 + 4 * (u & 3);
        return {u16_at(blk), {u16_at(b), u16_at(b + 2)}};
    }
    __device__ static float dot(const Regs& r, const float* x, Index u) {
        const Index base = (u >> 2) * 32 + 4 * (u & 3);
        const float4 lo = x4(x, base), hi = x4(x, base + 16);
        const std::uint32_t q = std::uint32_t(r.q[0]) | (std::uint32_t(r.q[1]) << 16);
        auto nib = [&](int c, int shift) { return static_cast<float>(static_cast<int>((q >> (8 * c + shift)) & 0xF) - 8); };
        const float s = nib(0, 0) * lo.x + nib(1, 0) * lo.y + nib(2, 0) * lo.z + nib(3, 0) * lo.w +
                        nib(0, 4) * hi.x + nib(1, 4) * hi.y + nib(2, 4) * hi.z + nib(3, 4) * hi.w;
        return f16_to_float(r.d) * s;
    }
};

// Q4_K / Q5_K: unit u is qs bytes 4l..4l+3 (l = u % 32) of super-block u / 32: run r = l / 8 at
// position 4(l % 8): sub-block 2r in the low nibbles, 2r + 1 in the high ones (plus, for Q5_K, bit
// 2r / 2r + 1 of qh[pos]). x = d·sc·q − dmin·m.
template <DType T> requires(T == DType::q4_k || T == DType::q5_k)
struct GemvUnit<T, true> {
    static constexpr int values = 8;
    static constexpr int bytes = T == DType::q4_k ? 144 : 176, qs_at = T == DType::q4_k ? 16 : 48;
    struct Regs {
        std::uint32_t dm, sc[3], qh, q;
    };
    __device__ static Regs load(const u8* row, Index u) {
        const u8* blk = row + (u >> 5) * bytes;
        const int l = static_cast<int>(u & 31), pos = 4 * (l & 7);
        Regs r;
        r.dm = u32_at(blk);
        r.sc[0] = u32_at(blk + 4), r.sc[1] = u32_at(blk + 8), r.sc[2] = u32_at(blk + 12);
        r.qh = T == DType::q5_k ? u32_at(blk + 16 + pos) : 0u;
        r.q = u32_at(blk + qs_at + 4 * l);
        return r;
    }
    __device__ static float dot(const Regs& r, const float* x, Index u) {
        const int l = static_cast<int>(u & 31), run = l >> 3, pos = 4 * (l & 7);
        const Index base = (u >> 5) * 256 + 64 * run + pos;
        const float4 xl = x4(x, base), xh = x4(x, base + 32);
        float ql[4], qh[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const std::uint32_t byte = (r.q >> (8 * c)) & 0xFF;
            ql[c] = static_cast<float>((byte & 0xF) | (((r.qh >> (8 * c + 2 * run)) & 1) << 4));
            qh[c] = static_cast<float>((byte >> 4) | (((r.qh >> (8 * c + 2 * run + 1)) & 1) << 4));
        }
        int sc_lo, m_lo, sc_hi, m_hi;
        k_scale_min(2 * run, r.sc, sc_lo, m_lo);
        k_scale_min(2 * run + 1, r.sc, sc_hi, m_hi);
        const float d = f16_to_float(static_cast<std::uint16_t>(r.dm)), dmin = f16_to_float(static_cast<std::uint16_t>(r.dm >> 16));
        const float dot_lo = ql[0] * xl.x + ql[1] * xl.y + ql[2] * xl.z + ql[3] * xl.w;
        const float dot_hi = qh[0] * xh.x + qh[1] * xh.y + qh[2] * xh.z + qh[3] * xh.w;
        const float sum_lo = xl.x + xl.y + xl.z + xl.w, sum_hi = xh.x + xh.y + xh.z + xh.w;
        return d * (static_cast<float>(sc_lo) * dot_lo + static_cast<float>(sc_hi) * dot_hi) -
               dmin * (static_cast<float>(m_lo) * sum_lo + static_cast<float>(m_hi) * sum_hi);
    }
};

// Q6_K: unit u (l = u % 32) is half h = l / 16, positions l0, l0 + 1 (l0 = 2(l % 16)) of super-block
// u / 32: values 128h + l0 + e + 32k for k = 0..3, e = 0, 1 (see quant::dequantize for Q6_K).
template <>
struct GemvUnit<DType::q6_k, true> {
    static constexpr int values = 8;
    struct Regs {
        std::uint16_t ql_a, ql_b, qh, d;
        std::int8_t sc[4];
    };
    __device__ static Regs load(const u8* row, Index u) {
        const u8* blk = row + (u >> 5) * 210;
        const int l = static_cast<int>(u & 31), h = l >> 4, l0 = 2 * (l & 15), s = l0 >> 4;
        Regs r;
        r.ql_a = u16_at(blk + 64 * h + l0);
        r.ql_b = u16_at(blk + 64 * h + 32 + l0);
        r.qh = u16_at(blk + 128 + 32 * h + l0);
        r.d = u16_at(blk + 208);
#pragma unroll
        for (int k = 0; k < 4; ++k) r.sc[k] = static_cast<std::int8_t>(blk[192 + 8 * h + s + 2 * k]);
        return r;
    }
    __device__ static float dot(const Regs& r, const float* x, Index u) {
        const int l = static_cast<int>(u & 31), h = l >> 4, l0 = 2 * (l & 15);
        const Index base = (u >> 5) * 256 + 128 * h + l0;
        float sums[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const float2 xv = x2(x, base + 32 * k);
            const std::uint32_t src = (k & 1) ? r.ql_b : r.ql_a;
            float s = 0;
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const std::uint32_t byte = (src >> (8 * e)) & 0xFF;
                const std::uint32_t low = k < 2 ? (byte & 0xF) : (byte >> 4);
                const std::uint32_t high = (std::uint32_t(r.qh) >> (8 * e + 2 * k)) & 3;
                const float q = static_cast<float>(static_cast<int>(low | (high << 4)) - 32);
                s += q * (e == 0 ? xv.x : xv.y);
            }
            sums[k] = s;
        }
        const float total = static_cast<float>(r.sc[0]) * sums[0] + static_cast<float>(r.sc[1]) * sums[1] +
                            static_cast<float>(r.sc[2]) * sums[2] + static_cast<float>(r.sc[3]) * sums[3];
        return f16_to_float(r.d) * total;
    }
};

}  // namespace weft::cuda::detail
