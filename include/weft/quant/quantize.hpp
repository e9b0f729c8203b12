// weft/quant/quantize.hpp — f32 rows to GGUF's quantized blocks, the inverse of dequantize.hpp.
// Q8_0 and Q4_0 are byte-identical to ggml's reference quantizers; Q4_K, Q5_K and Q6_K come from
// a weighted search for each sub-block's scale (and min), then a refit of the super-block scales.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/simd.hpp"
#include "weft/quant/blocks.hpp"

namespace weft::quant {

// ---- the API --------------------------------------------------------------------------------
// x holds n values, n a multiple of the type's block size (32 for Q8_0 / Q4_0, 256 for the
// K-quants); y receives n / block_size blocks. Inputs must be finite.
//
// `importance` (optional, n values ≥ 0) weighs the squared error of value i in the K-quant
// searches, e.g. the mean square of the activations that meet column i (llama.cpp's imatrix);
// nullptr weighs every value alike, so the searches minimise the plain round-trip error.
// Q8_0 and Q4_0 have no search (their one scale per block is fixed by the format's rule) and
// ignore it.

// Q8_0, byte-identical to ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x · (1/d))
// with halves away from zero, d stored as f16 of the f32 d.
inline void quantize_q8_0(const float* x, BlockQ8_0* y, Index n);

// Q4_0, byte-identical to ggml's quantize_row_q4_0_ref: m = the first x of largest |x|,
// d = m / -8, q = min(15, trunc(x · (1/d) + 8.5)) in f32 arithmetic.
inline void quantize_q4_0(const float* x, BlockQ4_0* y, Index n);

// K-quants: per sub-block a weighted least-squares search over candidate scales (and mins);
// then the f16 super-block scale(s) and 6/8-bit sub-block scales are chosen together: each
// sub-block's quantized scale (and min) is picked from the neighbours of the rounded fit with
// every value requantized, and the super-block scales are refitted by least squares.
inline void quantize_q4_k(const float* x, BlockQ4_K* y, Index n, const float* importance = nullptr);
inline void quantize_q5_k(const float* x, BlockQ5_K* y, Index n, const float* importance = nullptr);
inline void quantize_q6_k(const float* x, BlockQ6_K* y, Index n, const float* importance = nullptr);

// Bytes of a row of n values stored as `type` (element or quantized); throws if n is not a whole
// number of blocks.
inline std::size_t quantized_row_bytes(DType type, Index n);

// One row of n values into `type` at dst (quantized types, and f32 / f16 / bf16, which are
// rounded to nearest even). Throws weft::Error for other dtypes or a partial block.
inline void quantize_row(DType type, const float* x, void* dst, Index n, const float* importance = nullptr);

// A whole tensor: `rows` rows of n values (x: [rows, n], contiguous) into rows of
// quantized_row_bytes(type, n) bytes at dst, split over weft's threads by blocks. The bytes do
// not depend on the thread count. `importance` has n values and applies to every row.
inline void quantize_rows(DType type, const float* x, void* dst, Index rows, Index n,
                          const float* importance = nullptr);

// =============================================================================================
// Implementation
// =============================================================================================

namespace detail {

// ---- Q8_0 and Q4_0: ggml's rules to the bit --------------------------------------------------
//
// Two details decide byte identity. (1) The products x · id must be rounded to f32 before the
// rounding step that follows them; a compiler that contracts x * id + c into one fused
// multiply-add (GCC does by default, -ffp-contract=fast, whenever the target has FMA, in
// -std=c++20 as in gnu++20) would skip that rounding. So nothing below adds to a product directly: Q8_0 rounds |p|
// through an integer comparison, Q4_0 adds 8.5 in double (exact) and then applies f32's
// rounding by a threshold. (2) When 1/d overflows (|d| < 2^-128, a block of tiny values whose
// f16 d is 0 anyway) ggml casts ±inf or NaN to an integer, which x86 turns into 0; so do we.

// round-half-away-from-zero of p (|p| ≤ 128), as C's roundf followed by a cast to int.
inline int round_half_away(float p) {
    const float a = std::fabs(p);
    const int t = static_cast<int>(a);                 // trunc: exact
    const int r = t + (a - static_cast<float>(t) >= 0.5f ? 1 : 0);  // a - t is exact
    return p < 0.0f ? -r : r;
}

// Half the spacing of the floats just below the integer k (1 ≤ k ≤ 16): an exact sum y rounds
// to k in f32 iff y ≥ k - half_ulp_below(k) (the tie goes to k, whose last mantissa bit is 0).
inline double half_ulp_below(int k) {
    const int e = static_cast<int>(std::bit_width(static_cast<unsigned>(k - 1))) - 1;  // binade of k⁻
    return 1.0 / static_cast<double>(1u << (24 - e));
}

// min(15, trunc(fl(p + 8.5f))) for p = fl(x · id), |p| ≤ 8.5.
inline int q4_0_level(float p) {
    const double y = static_cast<double>(p) + 8.5;     // exact: p has 24 significant bits
    int q = static_cast<int>(y);                       // y ≥ 0
    if (q < 15 && y >= (q + 1) - half_ulp_below(q + 1)) ++q;  // f32 rounds the sum up onto q + 1
    return std::min(q, 15);
}

inline void quantize_block(const float* x, BlockQ8_0& b) {
    float amax = 0.0f;
    for (int j = 0; j < qk8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = float_to_f16_bits(d);
    if (!std::isfinite(id)) {
        std::memset(b.qs, 0, sizeof b.qs);
        return;
    }
    for (int j = 0; j < qk8_0; ++j) {
        const float p = x[j] * id;
        b.qs[j] = static_cast<std::int8_t>(round_half_away(p));
    }
}

inline void quantize_block(const float* x, BlockQ4_0& b) {
    // The first value of largest magnitude; ggml starts from +0, so a block of zeros gets
    // d = +0 / -8 = -0 whatever the zeros' signs.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < qk8_0; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = float_to_f16_bits(d);
    if (!std::isfinite(id)) {
        std::memset(b.qs, 0, sizeof b.qs);
        return;
    }
    for (int j = 0; j < qk8_0 / 2; ++j) {
        const float p0 = x[j] * id;
        const float p1 = x[j + qk8_0 / 2] * id;
        b.qs[j] = static_cast<std::uint8_t>(q4_0_level(p0) | (q4_0_level(p1) << 4));
    }
}

// ---- K-quants ----------------------------------------------------------------------------------
//
// The models: Q4_K / Q5_K store x ≈ (d·ls_j)·l − dmin·lm_j on sub-blocks j of 32 values, with
// l ∈ [0, nmax] (15 or 31), ls_j and lm_j 6-bit, d and dmin f16; Q6_K stores x ≈ (d·sc_j)·l on
// sub-blocks of 16 values with l ∈ [−32, 31], sc_j int8, d f16. Both quantizers minimise the
// weighted squared error Σ w_i (x_i − x̂_i)² in two stages:
//   1. each sub-block alone, with a real scale (and offset): level sets from a spread of scales
//      (and, for Q4_K / Q5_K, of rounding phases), each refitted by weighted least squares; the
//      best is polished by requantizing and refitting while that lowers the error;
//   2. the super-block: d (and dmin) from the largest sub-block scale (and min); each sub-block's
//      integer scale (and min) is chosen among the neighbours of its rounded value, with every
//      value requantized, by the exact error of the stored block; then d (and dmin) are refitted
//      by least squares for the chosen integers, rounded to f16, and the integers chosen again,
//      while that lowers the error.
// Stage 1 takes a candidate's error from the weighted moments (in float lanes: good to ~1e-5 of
// the error, enough to rank candidates); stage 2 measures the stored values' error directly.

using simd::VecF;
static_assert(16 % VecF::width == 0, "sub-blocks of 16 and 32 values must be whole packets");

inline float round_f16(float v) { return f16_bits_to_float(float_to_f16_bits(v)); }

// A super-block scale rounded to f16, but never rounded to zero when it is not zero: scales
// below f16's range still give the sub-blocks something (ggml stores 0 and loses the block).
inline float scale_to_f16(float v) {
    const float r = round_f16(v);
    constexpr float tiny = 5.9604645e-08f;  // 2^-24, the smallest f16 subnormal
    return r == 0 && v != 0 ? std::copysign(tiny, v) : r;
}

// The largest finite f16: super-block scales are clamped to it rather than stored as infinity.
inline constexpr float f16_max = 65504.0f;

// v clamped to [lo, hi] (|lo|, |hi| < 2^22) and rounded to the nearest integer, ties to even:
// adding 1.5 · 2^23 pushes the fraction bits out of the mantissa.
inline VecF round_clamped(VecF v, VecF lo, VecF hi) {
    const VecF magic(12582912.0f);
    v = min(max(v, lo), hi);
    return (v + magic) - magic;
}

// Σw, Σwx, Σwx² of one sub-block.
struct Moments {
    float sw = 0, swx = 0, swx2 = 0;
};

template <int N>
inline Moments moments(const float* x, const float* w) {
    VecF a = VecF::zero(), b = VecF::zero(), c = VecF::zero();
    for (int i = 0; i < N; i += VecF::width) {
        const VecF wi = VecF::load(w + i), wx = wi * VecF::load(x + i);
        a += wi;
        b += wx;
        c += wx * VecF::load(x + i);
    }
    return {reduce_add(a), reduce_add(b), reduce_add(c)};
}

// ---- Q4_K / Q5_K -------------------------------------------------------------------------------

// x ≈ scale · l + offset on one sub-block; scale ≥ 0 and offset ≤ 0 (it is stored as −dmin · m
// with m ≥ 0). err: the weighted squared error.
struct AffineFit {
    float scale = 0, offset = 0;
    double err = std::numeric_limits<double>::infinity();
};

// l = round((x − origin) · inv_scale + phase), clamped to [0, nmax].
template <int N>
inline void affine_levels(const float* x, float inv_scale, float origin, float phase, float nmax, float* l) {
    const VecF inv(inv_scale), org(origin), ph(phase), lo(0.0f), hi(nmax);
    for (int i = 0; i < N; i += VecF::width)
        round_clamped((VecF::load(x + i) - org) * inv + ph, lo, hi).store(l + i);
}

// Weighted least-squares scale and offset for the levels l, under the constraints above.
template <int N>
inline AffineFit fit_affine(const float* x, const float* w, const float* l, const Moments& m) {
    VecF vl = VecF::zero(), vl2 = VecF::zero(), vlx = VecF::zero();
    for (int i = 0; i < N; i += VecF::width) {
        const VecF li = VecF::load(l + i), wl = VecF::load(w + i) * li;
        vl += wl;
        vl2 += wl * li;
        vlx += wl * VecF::load(x + i);
    }
    const double sl = reduce_add(vl), sl2 = reduce_add(vl2), slx = reduce_add(vlx);
    const double sw = m.sw, swx = m.swx;
    double s = 0, o = 0;
    const double det = sw * sl2 - sl * sl;
    if (det > 0) {
        const double inv_det = 1.0 / det;
        s = (sw * slx - swx * sl) * inv_det;
        o = (sl2 * swx - sl * slx) * inv_det;
        if (o > 0) {
            o = 0;
            s = slx / sl2;
        }
    } else if (sl2 > 0 && swx >= 0) {  // one level only, and x's mean is not below zero
        s = slx / sl2;
    }
    if (!(s > 0)) {  // also when det ≤ 0 otherwise: the offset alone
        s = 0;
        o = sw > 0 ? std::min(swx / sw, 0.0) : 0.0;
    }
    AffineFit f;
    f.scale = static_cast<float>(s);
    f.offset = static_cast<float>(o);
    f.err = m.swx2 - 2 * s * slx - 2 * o * swx + s * s * sl2 + 2 * s * o * sl + o * o * sw;
    return f;
}

// The best affine fit of one sub-block; l receives its levels.
template <int N>
inline AffineFit search_affine(const float* x, const float* w, float nmax, float* l) {
    float mn = x[0], mx = x[0];
    for (int i = 1; i < N; ++i) {
        mn = std::min(mn, x[i]);
        mx = std::max(mx, x[i]);
    }
    const Moments m = moments<N>(x, w);
    mn = std::min(mn, 0.0f);
    if (!(mx > mn)) {  // constant and ≤ 0: the offset alone
        std::fill(l, l + N, 0.0f);
        AffineFit f;
        f.offset = mn;
        f.err = 0;
        return f;
    }
    AffineFit best;
    alignas(64) float cand[N];
    const auto consider = [&](const AffineFit& f) {
        if (!(f.err < best.err)) return false;
        best = f;
        std::copy(cand, cand + N, l);
        return true;
    };
    // Levels counted from the minimum with nmax − 1 … nmax + 1.1 steps across the range, each
    // rounded with three phases (a cluster of values can fall on a level or between two).
    for (int k = 0; k < 8; ++k) {
        const float inv = (nmax - 1.0f + 0.3f * static_cast<float>(k)) / (mx - mn);
        for (const float phase : {0.0f, 1.0f / 3, -1.0f / 3}) {
            affine_levels<N>(x, inv, mn, phase, nmax, cand);
            consider(fit_affine<N>(x, w, cand, m));
        }
    }
    for (int it = 0; it < 4 && best.scale > 0; ++it) {
        affine_levels<N>(x, 1.0f / best.scale, best.offset, 0.0f, nmax, cand);
        if (!consider(fit_affine<N>(x, w, cand, m))) break;
    }
    return best;
}

// Levels of one sub-block of 32 for the stored scale d·ls and min dmin·lm (as the dequantizer
// forms them); returns the weighted squared error of the stored values.
inline float requantize_affine(const float* x, const float* w, float scale, float min, float nmax, float* l) {
    const VecF inv(scale > 0 ? 1.0f / scale : 0.0f), sc(scale), mn(min), lo(0.0f), hi(nmax);
    VecF e = VecF::zero();
    for (int i = 0; i < 32; i += VecF::width) {
        const VecF xi = VecF::load(x + i);
        const VecF li = round_clamped((xi + mn) * inv, lo, hi);
        li.store(l + i);
        const VecF r = li * sc - mn - xi;
        e += VecF::load(w + i) * r * r;
    }
    return reduce_add(e);
}

// A Q4_K / Q5_K super-block in the making.
struct AffineSuper {
    float d = 0, dmin = 0;  // f16 values
    std::uint8_t ls[8] = {}, lm[8] = {};
    alignas(64) float l[qk_k] = {};  // levels 0..nmax
    float err = 0;
};

// For the given d and dmin, picks each sub-block's (ls, lm) among the neighbours (±1) of the
// current ones by the error of its requantized values; sets s.l and s.err.
inline void choose_affine_scales(const float* x, const float* w, float nmax, AffineSuper& s) {
    alignas(64) float cand[32];
    s.err = 0;
    for (int j = 0; j < 8; ++j) {
        const int ls0 = s.ls[j], lm0 = s.lm[j];
        float best = std::numeric_limits<float>::infinity();
        for (int a = std::max(0, ls0 - 1); a <= std::min(63, ls0 + 1); ++a) {
            for (int b = std::max(0, lm0 - 1); b <= std::min(63, lm0 + 1); ++b) {
                const float e = requantize_affine(x + 32 * j, w + 32 * j, s.d * static_cast<float>(a),
                                                  s.dmin * static_cast<float>(b), nmax, cand);
                if (e < best) {
                    best = e;
                    s.ls[j] = static_cast<std::uint8_t>(a);
                    s.lm[j] = static_cast<std::uint8_t>(b);
                    std::copy(cand, cand + 32, s.l + 32 * j);
                }
            }
        }
        s.err += best;
    }
}

// One super-block of 256 values to the Q4_K / Q5_K model with levels 0..nmax.
inline void quantize_affine_super(const float* x, const float* w, float nmax, AffineSuper& s) {
    AffineFit fit[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        fit[j] = search_affine<32>(x + 32 * j, w + 32 * j, nmax, s.l + 32 * j);
        max_scale = std::max(max_scale, fit[j].scale);
        max_min = std::max(max_min, -fit[j].offset);
    }
    s.d = scale_to_f16(std::min(max_scale / 63.0f, f16_max));
    s.dmin = scale_to_f16(std::min(max_min / 63.0f, f16_max));
    for (int j = 0; j < 8; ++j) {
        const float ls = s.d > 0 ? std::nearbyint(fit[j].scale / s.d) : 0.0f;
        const float lm = s.dmin > 0 ? std::nearbyint(-fit[j].offset / s.dmin) : 0.0f;
        s.ls[j] = static_cast<std::uint8_t>(std::clamp(ls, 0.0f, 63.0f));
        s.lm[j] = static_cast<std::uint8_t>(std::clamp(lm, 0.0f, 63.0f));
    }
    choose_affine_scales(x, w, nmax, s);

    // Refit d and dmin for the chosen integers: x ≈ d·(ls_j·l) + dmin·(−lm_j), least squares.
    for (int round = 0; round < 2; ++round) {
        double saa = 0, sab = 0, sbb = 0, sax = 0, sbx = 0;
        for (int j = 0; j < 8; ++j) {
            const double b = -static_cast<double>(s.lm[j]);
            for (int i = 32 * j; i < 32 * j + 32; ++i) {
                const double a = static_cast<double>(s.ls[j]) * s.l[i], wi = w[i], xi = x[i];
                saa += wi * a * a;
                sab += wi * a * b;
                sbb += wi * b * b;
                sax += wi * a * xi;
                sbx += wi * b * xi;
            }
        }
        const double det = saa * sbb - sab * sab;
        if (!(det > 0)) break;
        AffineSuper t = s;
        t.d = scale_to_f16(static_cast<float>(std::clamp((sax * sbb - sab * sbx) / det, 0.0, double(f16_max))));
        t.dmin = scale_to_f16(static_cast<float>(std::clamp((saa * sbx - sab * sax) / det, 0.0, double(f16_max))));
        if (t.d == s.d && t.dmin == s.dmin) break;
        choose_affine_scales(x, w, nmax, t);
        if (!(t.err < s.err)) break;
        s = t;
    }
}

// The 12 bytes of 6-bit scales and mins, laid out as k_scale_min reads them.
inline void pack_scales(const std::uint8_t* ls, const std::uint8_t* lm, std::uint8_t* out) {
    for (int j = 0; j < 4; ++j) {
        out[j] = static_cast<std::uint8_t>(ls[j] | ((ls[j + 4] >> 4) << 6));
        out[j + 4] = static_cast<std::uint8_t>(lm[j] | ((lm[j + 4] >> 4) << 6));
        out[j + 8] = static_cast<std::uint8_t>((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
    }
}

// ---- Q6_K --------------------------------------------------------------------------------------

// x ≈ scale · l on one sub-block (scale of either sign); err: the weighted squared error.
struct ScaleFit {
    float scale = 0;
    double err = std::numeric_limits<double>::infinity();
};

// l = round(x · inv_scale), clamped to [−32, 31].
template <int N>
inline void symmetric_levels(const float* x, float inv_scale, float* l) {
    const VecF inv(inv_scale), lo(-32.0f), hi(31.0f);
    for (int i = 0; i < N; i += VecF::width) round_clamped(VecF::load(x + i) * inv, lo, hi).store(l + i);
}

template <int N>
inline ScaleFit fit_scale(const float* x, const float* w, const float* l, const Moments& m) {
    VecF vl2 = VecF::zero(), vlx = VecF::zero();
    for (int i = 0; i < N; i += VecF::width) {
        const VecF li = VecF::load(l + i), wl = VecF::load(w + i) * li;
        vl2 += wl * li;
        vlx += wl * VecF::load(x + i);
    }
    const double sl2 = reduce_add(vl2), slx = reduce_add(vlx);
    ScaleFit f;
    const double s = sl2 > 0 ? slx / sl2 : 0.0;
    f.scale = static_cast<float>(s);
    f.err = m.swx2 - s * slx;
    return f;
}

// The best scale of one Q6_K sub-block: the value of largest |x| sent to −32 − t or to 31 + t
// for stretches t ∈ [−1, 0.4], each refitted, the best polished by requantize-and-refit rounds.
template <int N>
inline ScaleFit search_symmetric(const float* x, const float* w, float* l) {
    float amax = 0, max = 0;
    for (int i = 0; i < N; ++i) {
        if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    }
    if (amax == 0) {
        std::fill(l, l + N, 0.0f);
        return {0.0f, 0.0};
    }
    const Moments m = moments<N>(x, w);
    ScaleFit best;
    alignas(64) float cand[N];
    const auto consider = [&](const ScaleFit& f) {
        if (!(f.err < best.err)) return false;
        best = f;
        std::copy(cand, cand + N, l);
        return true;
    };
    for (int k = 0; k < 8; ++k) {
        const float t = -1.0f + 0.2f * static_cast<float>(k);
        symmetric_levels<N>(x, -(32.0f + t) / max, cand);
        consider(fit_scale<N>(x, w, cand, m));
        symmetric_levels<N>(x, (31.0f + t) / max, cand);
        consider(fit_scale<N>(x, w, cand, m));
    }
    for (int it = 0; it < 4 && best.scale != 0; ++it) {
        symmetric_levels<N>(x, 1.0f / best.scale, cand);
        if (!consider(fit_scale<N>(x, w, cand, m))) break;
    }
    return best;
}

// Levels of one sub-block of 16 for the stored scale d·sc; returns the stored values' error.
inline float requantize_symmetric(const float* x, const float* w, float scale, float* l) {
    const VecF inv(scale != 0 ? 1.0f / scale : 0.0f), sc(scale), lo(-32.0f), hi(31.0f);
    VecF e = VecF::zero();
    for (int i = 0; i < 16; i += VecF::width) {
        const VecF xi = VecF::load(x + i);
        const VecF li = round_clamped(xi * inv, lo, hi);
        li.store(l + i);
        const VecF r = li * sc - xi;
        e += VecF::load(w + i) * r * r;
    }
    return reduce_add(e);
}

// A Q6_K super-block in the making.
struct Q6Super {
    float d = 0;  // an f16 value
    std::int8_t sc[16] = {};
    alignas(64) float l[qk_k] = {};  // levels −32..31
    float err = 0;
};

// For the given d, picks each sub-block's scale among sc − 1 … sc + 1; sets s.l and s.err.
inline void choose_q6_scales(const float* x, const float* w, Q6Super& s) {
    alignas(64) float cand[16];
    s.err = 0;
    for (int j = 0; j < 16; ++j) {
        const int sc0 = s.sc[j];
        float best = std::numeric_limits<float>::infinity();
        for (int a = std::max(-128, sc0 - 1); a <= std::min(127, sc0 + 1); ++a) {
            const float e = requantize_symmetric(x + 16 * j, w + 16 * j, s.d * static_cast<float>(a), cand);
            if (e < best) {
                best = e;
                s.sc[j] = static_cast<std::int8_t>(a);
                std::copy(cand, cand + 16, s.l + 16 * j);
            }
        }
        s.err += best;
    }
}

inline void quantize_q6_super(const float* x, const float* w, Q6Super& s) {
    ScaleFit fit[16];
    float amax = 0, max = 0;
    for (int j = 0; j < 16; ++j) {
        fit[j] = search_symmetric<16>(x + 16 * j, w + 16 * j, s.l + 16 * j);
        if (std::fabs(fit[j].scale) > amax) {
            amax = std::fabs(fit[j].scale);
            max = fit[j].scale;
        }
    }
    // The largest scale becomes −128 (the int8 end with room), the others follow.
    s.d = scale_to_f16(std::clamp(max / -128.0f, -f16_max, f16_max));
    if (s.d == 0) {
        s = Q6Super{};
        return;
    }
    for (int j = 0; j < 16; ++j)
        s.sc[j] = static_cast<std::int8_t>(std::clamp(std::nearbyint(fit[j].scale / s.d), -128.0f, 127.0f));
    choose_q6_scales(x, w, s);

    // Refit d for the chosen integers: x ≈ d·(sc_j·l), least squares.
    for (int round = 0; round < 2; ++round) {
        double saa = 0, sax = 0;
        for (int j = 0; j < 16; ++j) {
            for (int i = 16 * j; i < 16 * j + 16; ++i) {
                const double a = static_cast<double>(s.sc[j]) * s.l[i], wi = w[i];
                saa += wi * a * a;
                sax += wi * a * x[i];
            }
        }
        if (!(saa > 0)) break;
        Q6Super t = s;
        t.d = scale_to_f16(static_cast<float>(std::clamp(sax / saa, -double(f16_max), double(f16_max))));
        if (t.d == s.d || t.d == 0) break;
        choose_q6_scales(x, w, t);
        if (!(t.err < s.err)) break;
        s = t;
    }
}

// Per-value weights of one super-block: the importance, or 1 for every value; a sub-block of
// `sub` values whose importance is all zero gets weights 1 (so that it still has a fit).
inline void k_weights(const float* importance, int sub, float* w) {
    std::fill(w, w + qk_k, 1.0f);
    if (!importance) return;
    for (int j = 0; j < qk_k; j += sub) {
        float sum = 0;
        for (int i = j; i < j + sub; ++i) sum += importance[i];
        if (sum > 0) std::copy(importance + j, importance + j + sub, w + j);
    }
}

inline void quantize_block(const float* x, BlockQ4_K& b, const float* importance) {
    alignas(64) float w[qk_k];
    k_weights(importance, 32, w);
    AffineSuper s;
    quantize_affine_super(x, w, 15.0f, s);
    b.d = float_to_f16_bits(s.d);
    b.dmin = float_to_f16_bits(s.dmin);
    pack_scales(s.ls, s.lm, b.scales);
    for (int r = 0; r < 4; ++r) {
        for (int i = 0; i < 32; ++i) {
            const int lo = static_cast<int>(s.l[64 * r + i]), hi = static_cast<int>(s.l[64 * r + 32 + i]);
            b.qs[32 * r + i] = static_cast<std::uint8_t>(lo | (hi << 4));
        }
    }
}

inline void quantize_block(const float* x, BlockQ5_K& b, const float* importance) {
    alignas(64) float w[qk_k];
    k_weights(importance, 32, w);
    AffineSuper s;
    quantize_affine_super(x, w, 31.0f, s);
    b.d = float_to_f16_bits(s.d);
    b.dmin = float_to_f16_bits(s.dmin);
    pack_scales(s.ls, s.lm, b.scales);
    std::memset(b.qh, 0, sizeof b.qh);
    for (int r = 0; r < 4; ++r) {
        for (int i = 0; i < 32; ++i) {
            const int lo = static_cast<int>(s.l[64 * r + i]), hi = static_cast<int>(s.l[64 * r + 32 + i]);
            b.qs[32 * r + i] = static_cast<std::uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
            b.qh[i] = static_cast<std::uint8_t>(b.qh[i] | ((lo >> 4) << (2 * r)) | ((hi >> 4) << (2 * r + 1)));
        }
    }
}

inline void quantize_block(const float* x, BlockQ6_K& b, const float* importance) {
    alignas(64) float w[qk_k];
    k_weights(importance, 16, w);
    Q6Super s;
    quantize_q6_super(x, w, s);
    b.d = float_to_f16_bits(s.d);
    std::memcpy(b.scales, s.sc, sizeof b.scales);
    for (int h = 0; h < 2; ++h) {
        const float* l = s.l + 128 * h;
        for (int i = 0; i < 32; ++i) {
            const int q0 = static_cast<int>(l[i]) + 32, q1 = static_cast<int>(l[i + 32]) + 32;
            const int q2 = static_cast<int>(l[i + 64]) + 32, q3 = static_cast<int>(l[i + 96]) + 32;
            b.ql[64 * h + i] = static_cast<std::uint8_t>((q0 & 0xF) | ((q2 & 0xF) << 4));
            b.ql[64 * h + i + 32] = static_cast<std::uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
            b.qh[32 * h + i] = static_cast<std::uint8_t>((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
        }
    }
}

// Blocks [begin, end) of a [rows, n] tensor; block i covers columns (i mod per_row) · B onwards.
template <class B>
inline void quantize_blocks(const float* x, B* y, Index n, Index begin, Index end, const float* importance) {
    const Index per_row = n / B::values;
    for (Index i = begin; i < end; ++i) {
        const float* xi = x + i * B::values;
        if constexpr (std::is_same_v<B, BlockQ8_0> || std::is_same_v<B, BlockQ4_0>) {
            quantize_block(xi, y[i]);
        } else {
            quantize_block(xi, y[i], importance ? importance + (i % per_row) * B::values : nullptr);
        }
    }
}

inline void check_row(const char* what, DType type, Index n, const float* importance = nullptr) {
    const auto values = static_cast<Index>(block_size(type));
    if (n < 0 || n % values != 0)
        fail(what, ": ", n, " values is not a whole number of ", type, " blocks of ", values);
    if (importance) {
        for (Index i = 0; i < n; ++i) {
            if (!(importance[i] >= 0) || !std::isfinite(importance[i]))
                fail(what, ": importance[", i, "] is ", importance[i], "; weights must be finite and >= 0");
        }
    }
}

}  // namespace detail

inline void quantize_q8_0(const float* x, BlockQ8_0* y, Index n) {
    detail::check_row("quantize_q8_0", DType::q8_0, n);
    detail::quantize_blocks(x, y, n, 0, n / qk8_0, nullptr);
}

inline void quantize_q4_0(const float* x, BlockQ4_0* y, Index n) {
    detail::check_row("quantize_q4_0", DType::q4_0, n);
    detail::quantize_blocks(x, y, n, 0, n / qk8_0, nullptr);
}

inline void quantize_q4_k(const float* x, BlockQ4_K* y, Index n, const float* importance) {
    detail::check_row("quantize_q4_k", DType::q4_k, n, importance);
    detail::quantize_blocks(x, y, n, 0, n / qk_k, importance);
}

inline void quantize_q5_k(const float* x, BlockQ5_K* y, Index n, const float* importance) {
    detail::check_row("quantize_q5_k", DType::q5_k, n, importance);
    detail::quantize_blocks(x, y, n, 0, n / qk_k, importance);
}

inline void quantize_q6_k(const float* x, BlockQ6_K* y, Index n, const float* importance) {
    detail::check_row("quantize_q6_k", DType::q6_k, n, importance);
    detail::quantize_blocks(x, y, n, 0, n / qk_k, importance);
}

inline std::size_t quantized_row_bytes(DType type, Index n) {
    detail::check_row("quantized_row_bytes", type, n);
    return static_cast<std::size_t>(n / static_cast<Index>(block_size(type))) * block_bytes(type);
}

namespace detail {

// Calls f(B* blocks) with dst cast to the block type of a quantized dtype.
template <class F>
inline void with_blocks(const char* what, DType type, void* dst, F&& f) {
    switch (type) {
        case DType::q8_0: f(static_cast<BlockQ8_0*>(dst)); break;
        case DType::q4_0: f(static_cast<BlockQ4_0*>(dst)); break;
        case DType::q4_k: f(static_cast<BlockQ4_K*>(dst)); break;
        case DType::q5_k: f(static_cast<BlockQ5_K*>(dst)); break;
        case DType::q6_k: f(static_cast<BlockQ6_K*>(dst)); break;
        default: fail(what, ": ", type, " is not a weight dtype (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)");
    }
}

// f32 values to f32 / f16 / bf16; false for other dtypes.
inline bool store_elements(DType type, const float* x, void* dst, Index count) {
    switch (type) {
        case DType::f32: std::memcpy(dst, x, static_cast<std::size_t>(count) * sizeof(float)); return true;
        case DType::f16:
            for (Index i = 0; i < count; ++i) static_cast<f16*>(dst)[i] = f16(x[i]);
            return true;
        case DType::bf16:
            for (Index i = 0; i < count; ++i) static_cast<bf16*>(dst)[i] = bf16(x[i]);
            return true;
        default: return false;
    }
}

}  // namespace detail

inline void quantize_row(DType type, const float* x, void* dst, Index n, const float* importance) {
    detail::check_row("quantize_row", type, n, importance);
    if (detail::store_elements(type, x, dst, n)) return;
    detail::with_blocks("quantize_row", type, dst, [&](auto* y) {
        using B = std::remove_pointer_t<decltype(y)>;
        detail::quantize_blocks(x, y, n, 0, n / B::values, importance);
    });
}

inline void quantize_rows(DType type, const float* x, void* dst, Index rows, Index n, const float* importance) {
    if (rows < 0) fail("quantize_rows: ", rows, " rows");
    detail::check_row("quantize_rows", type, n, importance);
    if (detail::store_elements(type, x, dst, rows * n)) return;
    detail::with_blocks("quantize_rows", type, dst, [&](auto* y) {
        using B = std::remove_pointer_t<decltype(y)>;
        // Blocks per task: a K-quant block takes ~10 µs, a Q8_0 / Q4_0 block ~0.1 µs.
        const Index grain = B::values == qk_k ? 16 : 4096;
        parallel_for(rows * (n / B::values), grain, [&](std::ptrdiff_t begin, std::ptrdiff_t end) {
            detail::quantize_blocks(x, y, n, begin, end, importance);
        });
    });
}

}  // namespace weft::quant
