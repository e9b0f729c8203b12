// Tests for weft/cpu/vmath.hpp: each function against the C++ library computed in double (and
// rounded to float) on millions of inputs spread over the whole range, with its special values;
// and VecF against Vec1F, which must give the same bits for every element.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "weft/cpu/vmath.hpp"

namespace test_vmath {

namespace {

namespace simd = weft::simd;
using simd::Vec1F;
using simd::VecF;

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float qnan = std::numeric_limits<float>::quiet_NaN();

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// Position of f on the number line counted in floats (-0 and +0 both 0), so the distance between
// two positions is the distance in ulps, continuous across zero and the subnormals; inf is the
// step after the largest finite float.
std::int64_t ordinal(float f) {
    const std::int32_t i = std::bit_cast<std::int32_t>(f);
    return i < 0 ? std::int64_t(INT32_MIN) - i : std::int64_t(i);
}
float from_ordinal(std::int64_t o) {
    return std::bit_cast<float>(std::int32_t(o < 0 ? std::int64_t(INT32_MIN) - o : o));
}
std::uint64_t ulp_distance(float a, float b) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : UINT64_MAX;
    const std::int64_t d = ordinal(a) - ordinal(b);
    return std::uint64_t(d < 0 ? -d : d);
}

// Inputs: `count` floats uniform over the floats in [lo, hi] (every binade equally likely, so
// tiny and subnormal values get their share), `count` uniform over the reals in [lo, hi], and
// the special values.
std::vector<float> inputs(float lo, float hi, int count, std::uint32_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<float> v;
    v.reserve(std::size_t(count) * 2 + 64);
    std::uniform_int_distribution<std::int64_t> ord(ordinal(lo), ordinal(hi));
    for (int i = 0; i < count; ++i) v.push_back(from_ordinal(ord(rng)));
    std::uniform_real_distribution<double> lin(lo, hi);
    for (int i = 0; i < count; ++i) v.push_back(float(lin(rng)));
    for (float f : {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 2.0f, -2.0f, 1e-45f, -1e-45f, 1e-38f, -1e-38f,
                    3.4028235e38f, -3.4028235e38f, inf, -inf, qnan, lo, hi})
        v.push_back(f);
    return v;
}

template <class V, class F>
std::vector<float> run(const std::vector<float>& xs, F f) {
    std::vector<float> out(xs.size());
    const int n = int(xs.size());
    int i = 0;
    for (; i + V::width <= n; i += V::width) f(V::load(&xs[i])).store(&out[i]);
    if (i < n) f(V::load_partial(&xs[i], n - i)).store_partial(&out[i], n - i);
    return out;
}

// Checks f on xs: VecF and Vec1F give the same bits (NaN: both NaN), and the result is within
// `bound` ulps of ref (computed in double, rounded once to float). Returns the max ulp error.
template <class F, class Ref>
std::uint64_t check_function(const std::string& name, const std::vector<float>& xs, F f, Ref ref, std::uint64_t bound) {
    const std::vector<float> vec = run<VecF>(xs, f);
    const std::vector<float> one = std::is_same_v<VecF, Vec1F> ? vec : run<Vec1F>(xs, f);  // scalar build
    std::size_t mismatches = 0, first = 0;
    std::uint64_t worst = 0;
    float worst_x = 0, worst_got = 0, worst_want = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const bool both_nan = std::isnan(vec[i]) && std::isnan(one[i]);
        if (!both_nan && bits(vec[i]) != bits(one[i]) && mismatches++ == 0) first = i;
        const float want = float(ref(double(xs[i])));
        const std::uint64_t d = ulp_distance(vec[i], want);
        if (d > worst) worst = d, worst_x = xs[i], worst_got = vec[i], worst_want = want;
    }
    INFO(name << ": VecF and Vec1F differ on " << mismatches << " inputs, first x = " << xs[first] << " ("
              << vec[first] << " vs " << one[first] << ")");
    CHECK(mismatches == 0);
    MESSAGE(name << " (" << std::string(simd::isa_name) << "): max " << worst << " ulp over " << xs.size() << " inputs, at x = "
                 << worst_x << " (got " << worst_got << ", want " << worst_want << ")");
    CHECK(worst <= bound);
    return worst;
}

// Per distribution, so each function sees 2 million inputs (1 million on the slow scalar build).
constexpr int count = VecF::width > 1 ? 1 << 20 : 1 << 19;

}  // namespace

TEST_CASE("exp is within 2 ulp of std::exp over the finite range") {
    auto xs = inputs(-110.0f, 95.0f, count, 1);
    const auto all = inputs(-inf, inf, 1 << 16, 2);  // any float at all
    xs.insert(xs.end(), all.begin(), all.end());
    check_function("exp", xs, [](auto v) { return simd::exp(v); }, [](double x) { return std::exp(x); }, 2);
}

TEST_CASE("log is within 2 ulp of std::log for every positive float, subnormals included") {
    auto xs = inputs(0.0f, inf, count, 3);
    const auto near1 = inputs(0.5f, 2.0f, count / 2, 4);
    const auto neg = inputs(-inf, -0.0f, 1 << 12, 5);
    xs.insert(xs.end(), near1.begin(), near1.end());
    xs.insert(xs.end(), neg.begin(), neg.end());
    check_function("log", xs, [](auto v) { return simd::log(v); }, [](double x) { return std::log(x); }, 2);
}

TEST_CASE("tanh is within 2 ulp of std::tanh and saturates to ±1") {
    auto xs = inputs(-20.0f, 20.0f, count, 6);
    const auto all = inputs(-inf, inf, 1 << 16, 7);
    xs.insert(xs.end(), all.begin(), all.end());
    check_function("tanh", xs, [](auto v) { return simd::tanh(v); }, [](double x) { return std::tanh(x); }, 2);
}

TEST_CASE("sigmoid is within 3 ulp of 1/(1+exp(-x)), down into the subnormal results") {
    auto xs = inputs(-120.0f, 120.0f, count, 8);
    const auto all = inputs(-inf, inf, 1 << 16, 9);
    xs.insert(xs.end(), all.begin(), all.end());
    check_function("sigmoid", xs, [](auto v) { return simd::sigmoid(v); },
                   [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, 3);
}

TEST_CASE("erf is within 2 ulp of std::erf") {
    auto xs = inputs(-6.0f, 6.0f, count, 10);
    const auto all = inputs(-inf, inf, 1 << 16, 11);
    xs.insert(xs.end(), all.begin(), all.end());
    check_function("erf", xs, [](auto v) { return simd::erf(v); }, [](double x) { return std::erf(x); }, 2);
}

TEST_CASE("silu is within 4 ulp of x/(1+exp(-x))") {
    auto xs = inputs(-220.0f, 100.0f, count, 12);
    const auto all = inputs(-inf, inf, 1 << 16, 13);
    xs.insert(xs.end(), all.begin(), all.end());
    check_function("silu", xs, [](auto v) { return simd::silu(v); },
                   [](double x) { return std::isinf(x) && x < 0 ? -0.0 : x / (1.0 + std::exp(-x)); }, 4);
}

TEST_CASE("gelu is within 4 ulp of 0.5x·erfc(-x/√2), the negative tail included") {
    auto xs = inputs(-20.0f, 20.0f, count, 14);
    const auto all = inputs(-inf, inf, 1 << 16, 15);
    xs.insert(xs.end(), all.begin(), all.end());
    check_function("gelu", xs, [](auto v) { return simd::gelu(v); },
                   [](double x) { return std::isinf(x) && x < 0 ? -0.0 : 0.5 * x * std::erfc(-x * 0.70710678118654752440); },
                   4);
}

TEST_CASE("gelu_tanh is within 4 ulp of x/(1+exp(-2y)), y = √(2/π)(x + 0.044715x³)") {
    auto xs = inputs(-20.0f, 20.0f, count, 16);
    const auto all = inputs(-inf, inf, 1 << 16, 17);
    xs.insert(xs.end(), all.begin(), all.end());
    check_function("gelu_tanh", xs, [](auto v) { return simd::gelu_tanh(v); },
                   [](double x) {
                       const double y2 = 2 * 0.79788456080286535588 * (x + 0.044715 * x * x * x);
                       return std::isinf(x) ? (x < 0 ? -0.0 : x) : x / (1.0 + std::exp(-y2));
                   },
                   4);
}

TEST_CASE("pow is within 3 ulp of std::pow when the result is a normal float") {
    std::mt19937_64 rng(18);
    std::vector<float> as, bs;
    const auto base = inputs(0.0f, inf, count / 2, 19);
    std::uniform_real_distribution<double> t(-88.0, 88.0);
    for (float a : base) {  // exponents that keep the result in range: b = t / log(a)
        if (!(a > 0) || a == 1.0f || std::isinf(a)) continue;
        as.push_back(a);
        bs.push_back(float(t(rng) / std::log(double(a))));
    }
    std::uniform_real_distribution<float> small_a(0.0f, 10.0f), small_b(-10.0f, 10.0f);
    std::uniform_int_distribution<int> ints(-20, 20);
    for (int i = 0; i < count / 4; ++i) {
        as.push_back(small_a(rng));
        bs.push_back(small_b(rng));
        as.push_back(-small_a(rng));  // negative base, integer exponent
        bs.push_back(float(ints(rng)));
    }
    // Run the pairs through both paths, measure against std::pow in double.
    std::vector<float> vec(as.size()), one(as.size());
    const int n = int(as.size());
    int i = 0;
    for (; i + VecF::width <= n; i += VecF::width) simd::pow(VecF::load(&as[i]), VecF::load(&bs[i])).store(&vec[i]);
    if (i < n) simd::pow(VecF::load_partial(&as[i], n - i), VecF::load_partial(&bs[i], n - i)).store_partial(&vec[i], n - i);
    for (int k = 0; k < n; ++k) one[k] = simd::pow(Vec1F(as[k]), Vec1F(bs[k])).v;
    std::size_t mismatches = 0;
    std::uint64_t worst = 0;
    float wa = 0, wb = 0;
    for (int k = 0; k < n; ++k) {
        if (bits(vec[k]) != bits(one[k]) && !(std::isnan(vec[k]) && std::isnan(one[k]))) ++mismatches;
        const double want = std::pow(double(as[k]), double(bs[k]));
        if (!(std::fabs(want) >= 1.17549435e-38 && std::fabs(want) <= 3.4028235e38)) continue;
        const std::uint64_t d = ulp_distance(vec[k], float(want));
        if (d > worst) worst = d, wa = as[k], wb = bs[k];
    }
    CHECK(mismatches == 0);
    MESSAGE("pow (" << std::string(simd::isa_name) << "): max " << worst << " ulp over " << n << " pairs, at pow(" << wa << ", " << wb << ")");
    CHECK(worst <= 3);
}

TEST_CASE("rsqrt is within 2 ulp of 1/sqrt(x)") {
    check_function("rsqrt", inputs(-1.0f, inf, count, 20), [](auto v) { return simd::rsqrt(v); },
                   [](double x) { return 1.0 / std::sqrt(x); }, 2);
}

// ---- special values, on both paths -----------------------------------------------------------

namespace {
template <class V, class F>
float at(F f, float x) {
    float out[V::width];
    f(V(x)).store(out);
    return out[V::width - 1];
}
}  // namespace

TEST_CASE_TEMPLATE("exp and log give the IEEE special values", V, VecF, Vec1F) {
    const auto e = [](V v) { return simd::exp(v); };
    const auto l = [](V v) { return simd::log(v); };
    CHECK(at<V>(e, 0.0f) == 1.0f);
    CHECK(at<V>(e, -0.0f) == 1.0f);
    CHECK(at<V>(e, inf) == inf);
    CHECK(at<V>(e, -inf) == 0.0f);
    CHECK(std::isnan(at<V>(e, qnan)));
    CHECK(ulp_distance(at<V>(e, 88.72283f), float(std::exp(double(88.72283f)))) <= 1);  // largest finite result
    CHECK(at<V>(e, 88.7229f) == inf);                    // first overflow
    CHECK(ulp_distance(at<V>(e, -87.33655f), float(std::exp(double(-87.33655f)))) <= 1);  // near the smallest normal
    CHECK(at<V>(e, -103.27893f) == 1e-45f);  // the smallest subnormal
    CHECK(at<V>(e, -103.9721f) == 0.0f);
    CHECK(at<V>(e, -1e30f) == 0.0f);
    CHECK(at<V>(l, 1.0f) == 0.0f);
    CHECK(!std::signbit(at<V>(l, 1.0f)));
    CHECK(at<V>(l, 0.0f) == -inf);
    CHECK(at<V>(l, -0.0f) == -inf);
    CHECK(at<V>(l, inf) == inf);
    CHECK(std::isnan(at<V>(l, -1.0f)));
    CHECK(std::isnan(at<V>(l, -inf)));
    CHECK(std::isnan(at<V>(l, qnan)));
    CHECK(ulp_distance(at<V>(l, 1e-45f), float(std::log(double(1e-45f)))) <= 1);
    CHECK(ulp_distance(at<V>(l, 3.4028235e38f), float(std::log(double(3.4028235e38f)))) <= 1);
}

TEST_CASE_TEMPLATE("tanh, sigmoid, silu, erf, gelu and gelu_tanh saturate exactly", V, VecF, Vec1F) {
    const auto th = [](V v) { return simd::tanh(v); };
    const auto sg = [](V v) { return simd::sigmoid(v); };
    const auto sl = [](V v) { return simd::silu(v); };
    const auto ef = [](V v) { return simd::erf(v); };
    const auto ge = [](V v) { return simd::gelu(v); };
    const auto gt = [](V v) { return simd::gelu_tanh(v); };
    CHECK(at<V>(th, inf) == 1.0f);
    CHECK(at<V>(th, -inf) == -1.0f);
    CHECK(at<V>(th, 10.0f) == 1.0f);
    CHECK(bits(at<V>(th, -0.0f)) == bits(-0.0f));
    CHECK(std::isnan(at<V>(th, qnan)));
    CHECK(at<V>(sg, inf) == 1.0f);
    CHECK(at<V>(sg, -inf) == 0.0f);
    CHECK(at<V>(sg, 0.0f) == 0.5f);
    CHECK(at<V>(sg, -100.0f) > 0.0f);  // subnormal, not flushed
    CHECK(std::isnan(at<V>(sg, qnan)));
    CHECK(at<V>(sl, inf) == inf);
    CHECK(bits(at<V>(sl, -inf)) == bits(-0.0f));
    CHECK(std::isnan(at<V>(sl, qnan)));
    CHECK(at<V>(ef, inf) == 1.0f);
    CHECK(at<V>(ef, -inf) == -1.0f);
    CHECK(at<V>(ef, 4.0f) == 1.0f);
    CHECK(bits(at<V>(ef, -0.0f)) == bits(-0.0f));
    CHECK(std::isnan(at<V>(ef, qnan)));
    CHECK(at<V>(ge, inf) == inf);
    CHECK(bits(at<V>(ge, -inf)) == bits(-0.0f));
    CHECK(at<V>(ge, 100.0f) == 100.0f);
    CHECK(std::isnan(at<V>(ge, qnan)));
    CHECK(at<V>(gt, inf) == inf);
    CHECK(bits(at<V>(gt, -inf)) == bits(-0.0f));
    CHECK(at<V>(gt, 100.0f) == 100.0f);
    CHECK(std::isnan(at<V>(gt, qnan)));
}

TEST_CASE_TEMPLATE("pow follows std::pow on every combination of special operands", V, VecF, Vec1F) {
    const float vals[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 2.0f, -2.0f, 3.0f, -3.0f, 2.5f, -2.5f,
                          1e-40f, -1e-40f, 3e38f, -3e38f, inf, -inf, qnan, 1e30f, -1e30f, 16777216.0f, 16777215.0f};
    for (float a : vals) {
        for (float b : vals) {
            CAPTURE(a);
            CAPTURE(b);
            float out[V::width];
            simd::pow(V(a), V(b)).store(out);
            const float got = out[0];
            const float want = std::pow(a, b);
            if (std::isnan(want)) {
                CHECK(std::isnan(got));
            } else if (want == 0 || std::isinf(want) || want == 1 || want == -1) {
                CHECK(bits(got) == bits(want));  // exact, signs included
            } else {
                CHECK(ulp_distance(got, want) <= 4);
                CHECK(std::signbit(got) == std::signbit(want));
            }
        }
    }
}

// ---- the same bits everywhere ----------------------------------------------------------------

namespace {
// FNV-1a over the result bits (NaN counted as one value: payloads are not part of the contract).
template <class V, class F>
std::uint64_t checksum(const std::vector<float>& xs, F f) {
    const std::vector<float> out = run<V>(xs, f);
    std::uint64_t h = 1469598103934665603ull;
    for (float o : out) h = (h ^ (std::isnan(o) ? 0x7FC00000u : bits(o))) * 1099511628211ull;
    return h;
}
}  // namespace

TEST_CASE_TEMPLATE("every build computes the same bits: ISA, compiler and -ffp-contract do not matter", V, VecF, Vec1F) {
    // Inputs from integer arithmetic only (a float distribution could itself be compiled with
    // fused operations): half arbitrary bit patterns, half multiples of 1e-4 in [-30, 30].
    std::mt19937 rng(3);
    std::vector<float> xs(1 << 16), ys(1 << 16);
    for (float& x : xs) {
        const std::uint32_t b = rng();
        x = (b & 1) ? std::bit_cast<float>(b) : float(int(rng() % 600001) - 300000) / 10000.0f;
    }
    for (float& y : ys) y = float(int(rng() % 600001) - 300000) / 100000.0f;
    std::uint64_t h = 0;
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::exp(v); });
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::log(v); });
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::tanh(v); });
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::sigmoid(v); });
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::silu(v); });
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::erf(v); });
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::gelu(v); });
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::gelu_tanh(v); });
    h = h * 31 + checksum<V>(xs, [](auto v) { return simd::rsqrt(v); });
    std::vector<float> powed(xs.size());
    for (std::size_t i = 0; i < xs.size(); i += V::width)
        simd::pow(simd::abs(V::load(&xs[i])), V::load(&ys[i])).store(&powed[i]);
    h = h * 31 + checksum<V>(powed, [](auto v) { return v; });
    // Changing a polynomial or an algorithm changes this value: re-run the accuracy tests, then
    // update it from the failure message.
    CHECK(h == 0x4f2488e69379185dull);
}

}  // namespace test_vmath
