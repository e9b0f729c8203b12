// f16 / bf16 conversions against an independent reference built from exact arithmetic in double:
// every one of the 65,536 bit patterns, and the float values around every rounding midpoint.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include <weft/core/dtype.hpp>

namespace test_dtype {

namespace {

// Reference value of binary16 bits, computed from the definition.
double f16_reference_value(std::uint16_t h) {
    const int sign = (h >> 15) ? -1 : 1;
    const int exp = (h >> 10) & 0x1F;
    const int mant = h & 0x3FF;
    if (exp == 0) return sign * std::ldexp(mant, -24);
    if (exp == 31) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
    return sign * std::ldexp(1024 + mant, exp - 25);
}

// Reference float -> binary16 rounding: nearest representable value by exhaustive search over the
// 31,745 non-negative finite values (ordered), ties to even bits; overflow past 65520 to infinity.
std::uint16_t f16_reference_round(float f) {
    if (std::isnan(f)) return 0x7E00;  // only NaN-ness is compared for NaN
    const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::abs(static_cast<double>(f));
    if (a >= 65520.0) return sign | 0x7C00;
    std::uint16_t lo = 0, hi = 0x7BFF;  // binary search for the largest value <= a
    while (lo < hi) {
        const std::uint16_t mid = static_cast<std::uint16_t>((lo + hi + 1) / 2);
        if (f16_reference_value(mid) <= a) lo = mid; else hi = static_cast<std::uint16_t>(mid - 1);
    }
    if (lo == 0x7BFF) return sign | lo;  // below 65520 but above max rounds down
    const double below = f16_reference_value(lo), above = f16_reference_value(static_cast<std::uint16_t>(lo + 1));
    std::uint16_t r;
    if (a - below < above - a) r = lo;
    else if (a - below > above - a) r = static_cast<std::uint16_t>(lo + 1);
    else r = (lo & 1) ? static_cast<std::uint16_t>(lo + 1) : lo;
    return sign | r;
}

bool same_f16(std::uint16_t got, std::uint16_t want) {
    const bool got_nan = (got & 0x7C00) == 0x7C00 && (got & 0x3FF);
    const bool want_nan = (want & 0x7C00) == 0x7C00 && (want & 0x3FF);
    return got_nan || want_nan ? got_nan == want_nan : got == want;
}

// Floats to test around each f16 value: the value, the midpoint to the next one, and one float
// ulp either side of the midpoint.
template <class F>
void for_each_probe(F&& f) {
    for (std::uint32_t h = 0; h < 0x7C00; ++h) {
        const double v = f16_reference_value(static_cast<std::uint16_t>(h));
        const double next = h + 1 < 0x7C00 ? f16_reference_value(static_cast<std::uint16_t>(h + 1)) : 65536.0;
        const float mid = static_cast<float>((v + next) / 2);  // exact: midpoints fit in float
        for (float x : {static_cast<float>(v), mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
            f(x);
            f(-x);
        }
    }
}

}  // namespace

TEST_CASE("f16 to float is exact for all 65,536 bit patterns") {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const auto bits = static_cast<std::uint16_t>(h);
        const double want = f16_reference_value(bits);
        for (float got : {weft::f16_bits_to_float(bits), weft::detail::f16_bits_to_float_portable(bits)}) {
            if (std::isnan(want)) {
                REQUIRE(std::isnan(got));
            } else {
                REQUIRE(static_cast<double>(got) == want);
                REQUIRE(std::signbit(got) == bool(h & 0x8000));
            }
        }
    }
}

TEST_CASE("float to f16 rounds to nearest even around every f16 value, subnormals and overflow included") {
    long checked = 0;
    for_each_probe([&](float x) {
        const std::uint16_t want = f16_reference_round(x);
        REQUIRE_MESSAGE(same_f16(weft::float_to_f16_bits(x), want), "x = ", x);
        REQUIRE_MESSAGE(same_f16(weft::detail::float_to_f16_bits_portable(x), want), "x = ", x);
        ++checked;
    });
    CHECK(checked > 200000);
    // Values far below the smallest subnormal, at the overflow boundary, and specials.
    for (float x : {1e-30f, 2.9802322e-08f, 2.9802326e-08f, 65519.996f, 65520.0f, 1e10f, INFINITY}) {
        CHECK(same_f16(weft::float_to_f16_bits(x), f16_reference_round(x)));
        CHECK(same_f16(weft::detail::float_to_f16_bits_portable(x), f16_reference_round(x)));
    }
    CHECK(weft::float_to_f16_bits(std::numeric_limits<float>::quiet_NaN()) != 0x7C00);
    CHECK((weft::float_to_f16_bits(-std::numeric_limits<float>::quiet_NaN()) & 0x7C00) == 0x7C00);
}

TEST_CASE("f16 round trip is the identity on every f16 bit pattern except NaN payload quieting") {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const auto bits = static_cast<std::uint16_t>(h);
        const std::uint16_t back = weft::float_to_f16_bits(weft::f16_bits_to_float(bits));
        const std::uint16_t back_portable = weft::detail::float_to_f16_bits_portable(weft::detail::f16_bits_to_float_portable(bits));
        const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
        if (nan) {
            CHECK(back == (bits | 0x200));
            CHECK(back_portable == (bits | 0x200));
        } else {
            REQUIRE(back == bits);
            REQUIRE(back_portable == bits);
        }
    }
}

TEST_CASE("bf16 conversions: exact widening, round to nearest even, NaN quieted, subnormals kept") {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const auto bits = static_cast<std::uint16_t>(h);
        const float f = weft::bf16_bits_to_float(bits);
        REQUIRE(std::bit_cast<std::uint32_t>(f) == (h << 16));
        const bool nan = (h & 0x7F80) == 0x7F80 && (h & 0x7F);
        REQUIRE(weft::float_to_bf16_bits(f) == (nan ? (bits | 0x40) : bits));
        if ((h & 0x7FFF) < 0x7F7F) {  // finite with a finite successor: probe the midpoint
            const std::uint32_t mid = (h << 16) | 0x8000u;
            const std::uint16_t even = (h & 1) ? static_cast<std::uint16_t>(h + 1) : bits;
            REQUIRE(weft::float_to_bf16_bits(std::bit_cast<float>(mid)) == even);
            REQUIRE(weft::float_to_bf16_bits(std::bit_cast<float>(mid + 1)) == static_cast<std::uint16_t>(h + 1));
            REQUIRE(weft::float_to_bf16_bits(std::bit_cast<float>(mid - 1)) == bits);
        }
    }
    CHECK(weft::float_to_bf16_bits(3.4e38f) == 0x7F80);  // rounds up to infinity
}

TEST_CASE("dtype tags name and size every element type") {
    CHECK(weft::dtype_of<float>() == weft::DType::f32);
    CHECK(weft::dtype_of<weft::bf16>() == weft::DType::bf16);
    CHECK(std::string(weft::dtype_name(weft::DType::f16)) == "f16");
    CHECK(weft::dtype_size(weft::DType::i8) == 1);
    CHECK(weft::dtype_size(weft::DType::bf16) == 2);
    CHECK(weft::convert<float>(weft::f16(1.5f)) == 1.5f);
    CHECK(float(weft::convert<weft::bf16>(3)) == 3.0f);
}

}  // namespace test_dtype
