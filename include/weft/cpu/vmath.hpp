// weft/cpu/vmath.hpp — elementwise math on packets: exp, log, tanh, sigmoid, silu, erf, gelu,
// gelu_tanh, pow, rsqrt. Each is one template over simd::Packet (VecF and Vec1F), built only from
// exact-per-lane primitives of simd.hpp, so the vector and the one-lane paths agree bit for bit.
#pragma once

#include <bit>
#include <cstdint>

#include "weft/cpu/simd.hpp"

namespace weft::simd {

// ---- declarations ----------------------------------------------------------------------------
// Max error against the correctly rounded result, measured over tens of millions of inputs
// (tests/cpu/test_vmath.cpp asserts a bound one above where there is any doubt):
//   exp 1 ulp, log 1, tanh 1, erf 1, sigmoid 2, silu 3, gelu 4, gelu_tanh 3, pow 2, rsqrt 1.
// Every function returns the same bits on every ISA (AVX-512, AVX2, NEON, scalar), at any
// optimisation level and -ffp-contract setting, since only exact-per-lane operations are used.
// Special values follow std::: exp(-inf) = 0, exp(+inf) = inf, exp overflows to inf and
// underflows through the subnormals to 0; log(0) = -inf, log(x < 0) = NaN, log(inf) = inf;
// tanh, sigmoid, erf saturate exactly; NaN in gives NaN out.

template <Packet V> V exp(V x);
template <Packet V> V log(V x);
template <Packet V> V tanh(V x);
template <Packet V> V sigmoid(V x);     // 1 / (1 + e^-x), without overflow for either sign
template <Packet V> V silu(V x);        // x * sigmoid(x); silu(-inf) = -0 (the limit)
template <Packet V> V erf(V x);
template <Packet V> V gelu(V x);        // 0.5 x (1 + erf(x / sqrt 2)), via erfc for x < 0
template <Packet V> V gelu_tanh(V x);   // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
template <Packet V> V pow(V a, V b);    // std::pow's rules, see below
template <Packet V> V rsqrt(V x);       // 1 / sqrt(x), two correctly rounded operations

// ---- implementation --------------------------------------------------------------------------
//
// The results must not depend on whether the compiler contracts a*b+c into an fma (GCC does so
// by default for C++, even with -std=c++20): every a*b+c here is an explicit fmadd, and the few
// products that still feed an addition are exact (contracting them changes nothing) or have
// other uses that keep the compiler from fusing them. A test pins a checksum of the results, so
// every build (ISA, compiler, contraction setting) must produce the same bits.

namespace detail {

// c0 + x (c1 + x (c2 + ...)), one fused multiply-add per coefficient.
template <Packet V> V horner(V, float c0) { return V(c0); }
template <Packet V, class... C> V horner(V x, float c0, C... cs) { return fmadd(horner(x, cs...), x, V(c0)); }

inline float bits_f(std::uint32_t b) { return std::bit_cast<float>(b); }

inline constexpr float log2e = 1.442695022e+00f;
inline constexpr float ln2_hi = 6.931471825e-01f;   // float nearest ln 2
inline constexpr float ln2_lo = -1.904654212e-09f;  // ln 2 - ln2_hi
inline constexpr float ln2_hi16 = 6.931457519531e-01f;  // ln 2 to 16 bits (0x3F317200)
inline constexpr float ln2_lo16 = 1.428606765e-06f;     // ln 2 - ln2_hi16

// e^x as m * s, with s = 2^n2 and m = e^r 2^n1 both normal floats (n = n1 + n2 = round(x/ln2),
// r = x - n ln 2). Splitting the power of two keeps the factors representable from the
// subnormal results up to overflow; the caller's last multiply by s is the only rounding into
// the subnormal range, and callers fold their own factors into m first.
template <Packet V> struct ExpParts {
    V m, s;
};

// With WithLo, computes e^(x + xlo) for a small correction xlo (pow's double-float exponent).
template <bool WithLo, Packet V>
ExpParts<V> exp_parts(V x, V xlo) {
    using I = typename V::Int;
    // Below -150 every result (even times 2^40) is 0; above 89 it is inf. NaN passes through.
    x = min(max(x, V(-150.0f)), V(89.0f));
    const V n = floor(fmadd(x, V(log2e), V(0.5f)));
    // Cody-Waite: |n| <= 216 and n*ln2_hi is exact in the fma, and x - n*ln2_hi is exactly
    // representable, so r carries only the ln2_lo rounding.
    V r = fnmadd(n, V(ln2_hi), x);
    r = fnmadd(n, V(ln2_lo), r);
    if constexpr (WithLo) r = r + xlo;
    // e^r = 1 + r + r^2 q(r) on |r| <= 0.35; q is a minimax fit (relative error 2^-26.8).
    const V q = horner(r, 5.000000000e-01f, 1.666657031e-01f, 4.166664183e-02f, 8.364218287e-03f,
                       1.391392667e-03f);
    const V p = fmadd(q, r * r, r) + V(1.0f);
    const I ni = to_int(n);
    const I n1 = sra<1>(ni);
    const I n2 = ni - n1;
    return {p * as_float(sll<23>(n1 + I(127))), as_float(sll<23>(n2 + I(127)))};
}

// x = 2^e (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)); subnormal x are scaled up first. Only
// meaningful for finite x > 0; callers patch the other inputs.
template <Packet V> struct LogReduced {
    V e, f;
};
template <Packet V>
LogReduced<V> log_reduce(V x) {
    using I = typename V::Int;
    const auto sub = x < V(0x1p-126f);
    const V xs = select(sub, x * V(0x1p23f), x);
    // Subtracting the bits of sqrt(1/2) moves the exponent boundary there: the arithmetic shift
    // gives e, and the mantissa bits re-biased give 1 + f.
    const I ix = as_int(xs) - I(0x3F3504F3);
    const V e = to_float(sra<23>(ix)) - select(sub, V(23.0f), V(0.0f));
    const V m = as_float((ix & I(0x007FFFFF)) + I(0x3F3504F3));
    return {e, m - V(1.0f)};  // exact (Sterbenz)
}

// log(1 + f) = 2 atanh(s) = 2s + s R(s^2), s = f / (2 + f); R(z) = z K(z), minimax on
// z <= 0.0295 (|s| <= 0.1716); relative error of log1p from the fit: 2^-31.7.
template <Packet V> V log_k(V z) {
    return horner(z, 6.666666865e-01f, 3.999888301e-01f, 2.866100669e-01f, 2.086449564e-01f);
}

// log x as hi + lo with about 2^-32 relative error, for pow (whose result carries the absolute
// error of b log a, up to 89 times the relative error of the log).
template <Packet V> void log_df(V x, V& hi, V& lo) {
    const auto [e, f] = log_reduce(x);
    // s = f / (2 + f) in double-float: d = 2 + f exactly as dh + dl, then one Newton correction.
    const V dh = f + V(2.0f);
    const V dl = f - (dh - V(2.0f));  // Fast2Sum, |2| >= |f|
    const V s = f / dh;
    const V rem = fnmadd(s, dl, fnmadd(s, dh, f));  // f - s*dh is exact; then - s*dl
    const V s_lo = rem / dh;
    // log(1 + f) = 2s + 2 s_lo (1 + s^2) + s^3 K(s^2), K(z) = k0 + z K2(z). The s^3 k0 term is
    // about 1% of the result, so it is formed from exact products to keep its error below an ulp.
    const V z = s * s;
    const V z_lo = fmadd(s, s, -z);
    const V s3 = s * z;
    const V s3_lo = fmadd(s, z_lo, fmadd(s, z, -s3));
    const V k2 = horner(z, 3.999888301e-01f, 2.866100669e-01f, 2.086449564e-01f);
    const V t = fmadd(V(6.666666865e-01f), s3, fmadd(V(6.666666865e-01f), s3_lo, (s3 * z) * k2));
    const V s_lo2 = s_lo + s_lo;
    // e ln2 = e ln2_hi16 + e ln2_lo16: ln2_hi16 has 16 significant bits, so with |e| <= 149 the
    // product ph is exact (and stays exact if the compiler fuses it into the sums below).
    const V ph = e * V(ln2_hi16);
    // ph + 2s is a Fast2Sum: |ph| >= 0.69 > |2s| unless e = 0, where ph = 0.
    const V s2 = s + s;
    const V sum = ph + s2;
    const V err = s2 - (sum - ph);
    const V rest = err + fmadd(e, V(ln2_lo16), fmadd(s_lo2, z, s_lo2 + t));
    hi = sum + rest;
    lo = rest - (hi - sum);
}

// erf on |x| < 0.875: x (c0 + z Q(z)), z = x^2, with c0 = 2/sqrt(pi) split in two floats.
// Relative error of the fit: 2^-26.6.
template <Packet V> V erf_small(V x) {
    const V z = x * x;
    const V q = horner(z, -3.761257529e-01f, 1.128262952e-01f, -2.679641545e-02f, 5.038337316e-03f,
                       -6.231154548e-04f);
    return fmadd(x, V(1.128379226e+00f), x * fmadd(z, q, V(-5.863538342e-08f)));
}

// erfc(a*) e^(a*^2) for a* = a + delta >= 0.875 (delta: a tiny correction the caller knows, or
// none), as t G(t) with t = 1 / (1 + 0.6875 a); G is minimax on a in [0.875, 10.3], relative
// error 2^-26.6.
template <bool WithDelta, Packet V> V erfc_scaled(V a, V delta) {
    constexpr float c = 0.6875f;
    const V d = fmadd(a, V(c), V(1.0f));
    const V t = V(1.0f) / d;
    // t G(t) = t c0 + t^2 c1 + t^3 S(t): the leading terms go in through fmas (t c0 exactly), so
    // Horner's rounding errors only touch the small tail.
    const V tt = t * t;
    const V st = horner(t, 3.022385538e-01f, 6.754516810e-02f, 1.072341874e-01f, -7.595347166e-01f,
                        7.466803789e-01f, -2.410798818e-01f);
    const V h = fmadd(t, V(3.878939450e-01f), fmadd(tt, V(3.874395490e-01f), (tt * t) * st));
    // The two roundings in t cost up to 3 ulp once G magnifies them. But t is exactly
    // 1 / (1 + c a') for a' = a + r d / c, r = 1 - t (1 + c a) (computable: 1 - d is exact, and
    // the division's residual is exact), and H' = 2aH - 2/sqrt(pi) is known, so step from a' to a*.
    const V d_lo = fmadd(a, V(c), V(1.0f) - d);  // (1 + c a) - d
    const V r = fnmadd(t, d_lo, fnmadd(t, d, V(1.0f)));
    V step = (r * d) * V(1.0f / c);  // a' - a
    if constexpr (WithDelta) step = fmadd(r * d, V(1.0f / c), -delta);
    const V slope = fmadd(a + a, h, V(-1.128379226e+00f));
    return fnmadd(slope, step, h);
}

}  // namespace detail

template <Packet V> V exp(V x) {
    const auto e = detail::exp_parts<false>(x, x);
    return e.m * e.s;
}

template <Packet V> V log(V x) {
    const auto [e, f] = detail::log_reduce(x);
    // log(1 + f) = f - (hfsq - s (hfsq + R)), hfsq = f^2/2: the correction to f is small, so its
    // rounding errors barely reach the result (as in fdlibm's log).
    const V s = f / (f + V(2.0f));
    const V z = s * s;
    const V hf = V(0.5f) * f;
    const V t = fmadd(z, detail::log_k(z), hf * f);  // R + hfsq
    const V u = fnmadd(s, t, hf * f);                  // hfsq - s (R + hfsq)
    const V lo = fmadd(e, V(detail::ln2_lo), -u) + f;
    V r = fmadd(e, V(detail::ln2_hi), lo);
    const V inf(detail::inf_f());
    r = select(x == inf, inf, r);
    r = select(x == V(0.0f), -inf, r);
    r = select(x < V(0.0f), V(detail::bits_f(0x7FC00000u)), r);
    return select(is_nan(x), x, r);
}

template <Packet V> V tanh(V x) {
    const V a = abs(x);
    // |x| < 0.55: x + x^3 P(x^2), minimax (relative error 2^-29.7).
    const V z = x * x;
    const V p = detail::horner(z, -3.333331645e-01f, 1.333254427e-01f, -5.384754762e-02f,
                               2.105071396e-02f, -6.242849398e-03f);
    const V small = fmadd(x * z, p, x);
    // Otherwise 1 - 2 / (e^2|x| + 1): the quotient is at most 0.5, so its error stays below an ulp
    // of the result; e^2|x| overflowing to inf gives exactly 1.
    const auto e = detail::exp_parts<false>(a + a, a);
    const V big = V(1.0f) - V(2.0f) / fmadd(e.m, e.s, V(1.0f));
    return copysign(select(a < V(0.55f), small, big), x);  // copysign also keeps tanh(-0) = -0
}

template <Packet V> V sigmoid(V x) {
    // With e = e^-|x| <= 1: 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0. Nothing overflows, and
    // the x < 0 side keeps full relative precision down into the subnormals.
    const auto e = detail::exp_parts<false>(-abs(x), x);
    const V d = fmadd(e.m, e.s, V(1.0f));
    const auto neg = x < V(0.0f);
    return (select(neg, e.m, V(1.0f)) / d) * select(neg, e.s, V(1.0f));  // e^x's scale applied last
}

template <Packet V> V silu(V x) {
    // x / (1 + e^-x) for x >= 0, x e^x / (1 + e^x) for x < 0, with x folded into the exponential's
    // normal factor before the last (possibly subnormal) rounding. Below -200 the result is -0,
    // which also covers x = -inf.
    const auto e = detail::exp_parts<false>(-abs(x), x);
    const V d = fmadd(e.m, e.s, V(1.0f));
    const V xn = max(x, V(-200.0f));
    return select(x < V(0.0f), (xn * e.m) * e.s, x) / d;
}

template <Packet V> V erf(V x) {
    const V a = abs(x);
    // |x| >= 0.875: 1 - erfc(|x|) = 1 - e^(-a^2) erfc_scaled(a), a^2 taken exactly as hi + lo
    // (fma) into the exponential; erf rounds to 1 beyond a = 4.
    const V ac = min(a, V(4.0f));
    const V sq = ac * ac;
    const V sq_lo = fmadd(ac, ac, -sq);
    const V h = detail::erfc_scaled<false>(ac, ac);
    const auto e = detail::exp_parts<true>(-sq, -sq_lo);
    const V big = fnmadd(h * e.m, e.s, V(1.0f));
    return copysign(select(a < V(0.875f), detail::erf_small(x), big), x);  // and erf(-0) = -0
}

template <Packet V> V gelu(V x) {
    // u = x / sqrt 2. For |u| < 0.875, 1 + erf(u) directly. Beyond, with erfc(|u|) =
    // e^(-u^2) erfc_scaled(|u|): x > 0 uses 2 - erfc, and x < 0 uses erfc itself, so the negative
    // tail keeps its relative precision instead of cancelling in 1 + erf. u^2 = x^2 / 2 comes from
    // x exactly (hi + lo), since rounding u first would cost many ulps of e^(-u^2) out at |u| ~ 9.
    // |x| > 14.5 gives x or -0.
    const V half_x = V(0.5f) * x;
    const V u = x * V(7.071067691e-01f);
    const V small = half_x * (detail::erf_small(u) + V(1.0f));

    const V xc = min(max(x, V(-14.5f)), V(14.5f));
    const V ax = abs(xc);
    const V a = ax * V(7.071067691e-01f);
    const V a_err = fmadd(ax, V(1.210161749e-08f), fmadd(ax, V(7.071067691e-01f), -a));  // |x|/sqrt2 - a
    const V xx = xc * xc;
    const V sq = V(0.5f) * xx;
    const V sq_lo = V(0.5f) * fmadd(xc, xc, -xx);
    const V h = detail::erfc_scaled<true>(a, a_err);
    const auto e = detail::exp_parts<true>(-sq, -sq_lo);
    // x < 0: (x/2) h e^-(u^2), the factors that are not tiny multiplied first.
    const V neg = (((V(0.5f) * xc) * h) * e.m) * e.s;
    // x > 0: (x/2) (2 - erfc).
    const V pos = half_x * fnmadd(h * e.m, e.s, V(2.0f));
    return select(abs(u) < V(0.875f), small, select(x < V(0.0f), neg, pos));
}

template <Packet V> V gelu_tanh(V x) {
    // 0.5 x (1 + tanh(y)) = x sigmoid(2y), then as silu. 2y = x (k1 + k2 x^2) is formed in
    // double-float: e^2y magnifies an error in 2y by |2y| (about 90 near the underflow), so a
    // float 2y would cost tens of ulps. Below x = -12 the result is -0 (it underflows near
    // -10.5), which also covers -inf.
    const V k1(1.595769167e+00f), k2(7.135481387e-02f);  // 2 sqrt(2/pi), times 0.044715
    const V x2 = x * x;
    const V x2_lo = fmadd(x, x, -x2);
    const V p = k2 * x2;
    const V p_lo = fmadd(k2, x2, -p);
    const V w = k1 + p;  // TwoSum: w + w_err = k1 + p exactly
    const V bv = w - k1;
    const V w_err = (k1 - (w - bv)) + (p - bv);
    const V w_lo = fmadd(k2, x2_lo, fmadd(V(2.398832466e-09f), x2, p_lo + (w_err + V(-4.534068054e-08f))));
    const V v = x * w;
    V v_lo = fmadd(x, w_lo, fmadd(x, w, -v));
    v_lo = select(abs(v) < V(256.0f), v_lo, V(0.0f));  // beyond, e^-|v| is 0 anyway; avoids inf - inf
    const auto e = detail::exp_parts<true>(-abs(v), select(v < V(0.0f), v_lo, -v_lo));
    const V d = fmadd(e.m, e.s, V(1.0f));
    const V xn = max(x, V(-12.0f));
    return select(v < V(0.0f), (xn * e.m) * e.s, x) / d;
}

// pow(a, b) = e^(b log|a|) with log|a| in double-float (about 2^-32 relative), then the sign and
// special cases of std::pow:
//   pow(a, ±0) = 1 and pow(1, b) = 1, even for NaN; pow(-1, ±inf) = 1
//   a < 0 finite and b finite non-integer -> NaN; a < 0 and b odd integer -> -pow(|a|, b)
//   pow(±0, b < 0) = ±inf / +inf (odd / otherwise), pow(±0, b > 0) = ±0 / +0
//   b = ±inf: by |a| < 1 or > 1 (0 or inf); a = ±inf: like 1/±0
//   otherwise NaN in gives NaN. Exact integer powers are not guaranteed exact (within the bound).
template <Packet V> V pow(V a, V b) {
    const V aa = abs(a);
    V lh, ll;
    detail::log_df(aa, lh, ll);
    const V inf(detail::inf_f());
    // log_df is only defined for finite a > 0; patch 0, inf and NaN.
    lh = select(aa == V(0.0f), -inf, select(aa == inf, inf, select(is_nan(aa), aa, lh)));
    const V yh = b * lh;
    V yl = fmadd(b, ll, fmadd(b, lh, -yh));
    yl = select(abs(yh) < V(256.0f), yl, V(0.0f));  // also drops NaN from inf - inf
    const auto e = detail::exp_parts<true>(yh, yl);
    V r = e.m * e.s;

    const V fb = floor(b);
    const auto b_int = fb == b;  // true for ±inf too
    const V hb = V(0.5f) * b;
    const auto b_odd = b_int & (floor(hb) != hb) & is_finite(b);
    r = select(signbit(a) & b_odd, -r, r);
    r = select((a < V(0.0f)) & is_finite(a) & is_finite(b) & !b_int, V(detail::bits_f(0x7FC00000u)), r);
    r = select((aa == V(1.0f)) & is_inf(b), V(1.0f), r);
    return select((b == V(0.0f)) | (a == V(1.0f)), V(1.0f), r);
}

template <Packet V> V rsqrt(V x) { return V(1.0f) / sqrt(x); }

}  // namespace weft::simd
