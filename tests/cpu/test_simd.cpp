// Tests for weft/cpu/simd.hpp: every packet op of VecF and Vec1F against plain scalar code,
// partial loads/stores against guard pages and guard bytes, and the f16/bf16 conversions against
// weft's scalar converters over all 65,536 bit patterns.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "weft/cpu/simd.hpp"

#if __has_include(<sys/mman.h>) && __has_include(<unistd.h>)
#include <sys/mman.h>
#include <unistd.h>
#define WEFT_TEST_GUARD_PAGES 1
#endif

namespace test_simd {

namespace {

using weft::bf16;
using weft::f16;
namespace simd = weft::simd;

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }
float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }

// Same value, or both NaN (NaN payloads are not part of the contract).
bool same(float a, float b) { return (a != a && b != b) || bits(a) == bits(b); }

// Floats that exercise the corners: signed zeros, subnormals, extremes, NaN, inf, ties.
std::vector<float> interesting_floats() {
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 3.0f,
                            1e-45f, -1e-45f, 1e-40f, -1e-40f, 1.17549435e-38f, 3.4028235e38f,
                            -3.4028235e38f, inf, -inf, std::numeric_limits<float>::quiet_NaN(),
                            from_bits(0xFFC00001u), from_bits(0x7F800001u), 8388608.5f, -8388607.5f,
                            16777217.0f, 1e10f, -1e10f, 2147483520.0f, -2147483648.0f, 0.1f, -0.7f};
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-100.0f, 100.0f);
    for (int i = 0; i < 400; ++i) v.push_back(u(rng));
    for (int i = 0; i < 400; ++i) v.push_back(from_bits(rng()));  // any bit pattern
    return v;
}

// Runs op over xs in packets of V (tail through load_partial), returns the results.
template <class V, class Op>
std::vector<float> map1(const std::vector<float>& xs, Op op) {
    std::vector<float> out(xs.size());
    const int n = int(xs.size());
    int i = 0;
    for (; i + V::width <= n; i += V::width) op(V::load(&xs[i])).store(&out[i]);
    if (i < n) op(V::load_partial(&xs[i], n - i)).store_partial(&out[i], n - i);
    return out;
}
template <class V, class Op>
std::vector<float> map2(const std::vector<float>& xs, const std::vector<float>& ys, Op op) {
    std::vector<float> out(xs.size());
    const int n = int(xs.size());
    int i = 0;
    for (; i + V::width <= n; i += V::width) op(V::load(&xs[i]), V::load(&ys[i])).store(&out[i]);
    if (i < n) op(V::load_partial(&xs[i], n - i), V::load_partial(&ys[i], n - i)).store_partial(&out[i], n - i);
    return out;
}

// A buffer whose end touches an inaccessible page, so reading one element too far faults.
struct GuardedBuffer {
    char* base = nullptr;
    std::size_t page = 4096;
    explicit GuardedBuffer() {
#if defined(WEFT_TEST_GUARD_PAGES)
        page = std::size_t(sysconf(_SC_PAGESIZE));
        void* p = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        base = static_cast<char*>(p);
        REQUIRE(mprotect(base + page, page, PROT_NONE) == 0);
#else
        static char fallback[8192];
        base = fallback;
#endif
    }
    ~GuardedBuffer() {
#if defined(WEFT_TEST_GUARD_PAGES)
        munmap(base, 2 * page);
#endif
    }
    // n elements of T ending exactly at the guard page.
    template <class T> T* tail(int n) { return reinterpret_cast<T*>(base + page - std::size_t(n) * sizeof(T)); }
};

}  // namespace

TEST_CASE("the ISA name matches the compiled packet width") {
    const std::string name = simd::isa_name;
    if (name == "avx512") CHECK(simd::VecF::width == 16);
    else if (name == "avx2") CHECK(simd::VecF::width == 8);
    else if (name == "neon") CHECK(simd::VecF::width == 4);
    else CHECK((name == "scalar" && simd::VecF::width == 1));
    CHECK(simd::Vec1F::width == 1);
}

TEST_CASE_TEMPLATE("arithmetic ops match scalar float arithmetic lane by lane", V, simd::VecF, simd::Vec1F) {
    const std::vector<float> xs = interesting_floats();
    std::vector<float> ys(xs.rbegin(), xs.rend());
    std::vector<float> zs(xs);
    std::rotate(zs.begin(), zs.begin() + 17, zs.end());
    const auto add = map2<V>(xs, ys, [](V a, V b) { return a + b; });
    const auto sub = map2<V>(xs, ys, [](V a, V b) { return a - b; });
    const auto mul = map2<V>(xs, ys, [](V a, V b) { return a * b; });
    const auto div = map2<V>(xs, ys, [](V a, V b) { return a / b; });
    const auto neg = map1<V>(xs, [](V a) { return -a; });
    std::vector<float> fma(xs.size()), fnma(xs.size());
    for (std::size_t i = 0; i < xs.size(); i += V::width) {
        const int n = int(std::min<std::size_t>(V::width, xs.size() - i));
        const V a = V::load_partial(&xs[i], n), b = V::load_partial(&ys[i], n), c = V::load_partial(&zs[i], n);
        simd::fmadd(a, b, c).store_partial(&fma[i], n);
        simd::fnmadd(a, b, c).store_partial(&fnma[i], n);
    }
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const float x = xs[i], y = ys[i], z = zs[i];
        CAPTURE(x);
        CAPTURE(y);
        CHECK(same(add[i], x + y));
        CHECK(same(sub[i], x - y));
        CHECK(same(mul[i], x * y));
        CHECK(same(div[i], x / y));
        CHECK(bits(neg[i]) == (bits(x) ^ 0x80000000u));
        CHECK(same(fma[i], std::fma(x, y, z)));
        CHECK(same(fnma[i], std::fma(-x, y, z)));
    }
}

TEST_CASE_TEMPLATE("abs, sqrt, floor and copysign match the C++ library", V, simd::VecF, simd::Vec1F) {
    const std::vector<float> xs = interesting_floats();
    std::vector<float> ys(xs.rbegin(), xs.rend());
    const auto ab = map1<V>(xs, [](V a) { return simd::abs(a); });
    const auto sq = map1<V>(xs, [](V a) { return simd::sqrt(a); });
    const auto fl = map1<V>(xs, [](V a) { return simd::floor(a); });
    const auto cs = map2<V>(xs, ys, [](V a, V b) { return simd::copysign(a, b); });
    for (std::size_t i = 0; i < xs.size(); ++i) {
        CAPTURE(xs[i]);
        CHECK(bits(ab[i]) == (bits(xs[i]) & 0x7FFFFFFFu));
        CHECK(same(sq[i], std::sqrt(xs[i])));
        CHECK(same(fl[i], std::floor(xs[i])));
        CHECK(bits(cs[i]) == ((bits(xs[i]) & 0x7FFFFFFFu) | (bits(ys[i]) & 0x80000000u)));
    }
}

TEST_CASE_TEMPLATE("min and max propagate NaN and otherwise follow the x86 rule", V, simd::VecF, simd::Vec1F) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> xs = {1.0f, 2.0f, nan, 3.0f, nan, -0.0f, 0.0f, -1.0f, 5.0f, -5.0f};
    std::vector<float> ys = {2.0f, 1.0f, 3.0f, nan, nan, 0.0f, -0.0f, -1.0f, -5.0f, 5.0f};
    const auto more = interesting_floats();
    xs.insert(xs.end(), more.begin(), more.end());
    ys.insert(ys.end(), more.rbegin(), more.rend());
    const auto mx = map2<V>(xs, ys, [](V a, V b) { return simd::max(a, b); });
    const auto mn = map2<V>(xs, ys, [](V a, V b) { return simd::min(a, b); });
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const float a = xs[i], b = ys[i];
        CAPTURE(a);
        CAPTURE(b);
        if (a != a || b != b) {
            CHECK(mx[i] != mx[i]);
            CHECK(mn[i] != mn[i]);
        } else {
            CHECK(bits(mx[i]) == bits(a > b ? a : b));  // equal values (+0, -0): b
            CHECK(bits(mn[i]) == bits(a < b ? a : b));
        }
    }
}

TEST_CASE_TEMPLATE("comparisons, masks and select agree with scalar predicates", V, simd::VecF, simd::Vec1F) {
    const std::vector<float> xs = interesting_floats();
    std::vector<float> ys(xs.rbegin(), xs.rend());
    auto as_float = [](auto m) { return simd::select(m, V(1.0f), V(0.0f)); };
    const auto lt = map2<V>(xs, ys, [&](V a, V b) { return as_float(a < b); });
    const auto le = map2<V>(xs, ys, [&](V a, V b) { return as_float(a <= b); });
    const auto gt = map2<V>(xs, ys, [&](V a, V b) { return as_float(a > b); });
    const auto ge = map2<V>(xs, ys, [&](V a, V b) { return as_float(a >= b); });
    const auto eq = map2<V>(xs, ys, [&](V a, V b) { return as_float(a == b); });
    const auto ne = map2<V>(xs, ys, [&](V a, V b) { return as_float(a != b); });
    const auto andm = map2<V>(xs, ys, [&](V a, V b) { return as_float((a < b) & (a > V(0.0f))); });
    const auto orm = map2<V>(xs, ys, [&](V a, V b) { return as_float((a < b) | simd::is_nan(b)); });
    const auto notm = map2<V>(xs, ys, [&](V a, V b) { return as_float(!(a < b)); });
    const auto nan = map1<V>(xs, [&](V a) { return as_float(simd::is_nan(a)); });
    const auto inf = map1<V>(xs, [&](V a) { return as_float(simd::is_inf(a)); });
    const auto fin = map1<V>(xs, [&](V a) { return as_float(simd::is_finite(a)); });
    const auto sgn = map1<V>(xs, [&](V a) { return as_float(simd::signbit(a)); });
    const auto sel = map2<V>(xs, ys, [&](V a, V b) { return simd::select(a < b, a, b); });
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const float a = xs[i], b = ys[i];
        CAPTURE(a);
        CAPTURE(b);
        CHECK(lt[i] == float(a < b));
        CHECK(le[i] == float(a <= b));
        CHECK(gt[i] == float(a > b));
        CHECK(ge[i] == float(a >= b));
        CHECK(eq[i] == float(a == b));
        CHECK(ne[i] == float(a != b));
        CHECK(andm[i] == float(a < b && a > 0));
        CHECK(orm[i] == float(a < b || b != b));
        CHECK(notm[i] == float(!(a < b)));
        CHECK(nan[i] == float(std::isnan(a)));
        CHECK(inf[i] == float(std::isinf(a)));
        CHECK(fin[i] == float(std::isfinite(a)));
        CHECK(sgn[i] == float(std::signbit(a)));
        CHECK(same(sel[i], a < b ? a : b));
    }
}

TEST_CASE_TEMPLATE("any and all see every lane", V, simd::VecF, simd::Vec1F) {
    for (int k = 0; k < V::width; ++k) {
        float x[V::width];
        for (int i = 0; i < V::width; ++i) x[i] = i == k ? 1.0f : 0.0f;
        const V v = V::load(x);
        CHECK(simd::any(v > V(0.5f)));
        CHECK(simd::all(v > V(0.5f)) == (V::width == 1));
        CHECK(!simd::any(v > V(2.0f)));
        CHECK(simd::all(v < V(2.0f)));
    }
}

TEST_CASE_TEMPLATE("integer lanes: bit casts, shifts, wrapping arithmetic and conversions", V, simd::VecF, simd::Vec1F) {
    using I = typename V::Int;
    std::mt19937 rng(3);
    std::vector<float> xs(257);
    for (auto& x : xs) x = from_bits(rng());
    const auto check = [&](auto op, auto ref) {
        const auto got = map1<V>(xs, op);
        for (std::size_t i = 0; i < xs.size(); ++i) {
            CAPTURE(bits(xs[i]));
            CHECK(bits(got[i]) == ref(bits(xs[i])));
        }
    };
    check([](V a) { return simd::as_float(simd::as_int(a)); }, [](std::uint32_t b) { return b; });
    check([](V a) { return simd::as_float(simd::sll<7>(simd::as_int(a))); }, [](std::uint32_t b) { return b << 7; });
    check([](V a) { return simd::as_float(simd::srl<9>(simd::as_int(a))); }, [](std::uint32_t b) { return b >> 9; });
    check([](V a) { return simd::as_float(simd::sra<9>(simd::as_int(a))); },
          [](std::uint32_t b) { return std::uint32_t(std::int32_t(b) >> 9); });
    check([](V a) { return simd::as_float(simd::as_int(a) + I(0x7FFFFFFF)); },
          [](std::uint32_t b) { return b + 0x7FFFFFFFu; });
    check([](V a) { return simd::as_float(simd::as_int(a) - I(-5)); }, [](std::uint32_t b) { return b + 5u; });
    check([](V a) { return simd::as_float((simd::as_int(a) & I(0x0F0F0F0F)) | I(0x10)); },
          [](std::uint32_t b) { return (b & 0x0F0F0F0Fu) | 0x10u; });
    check([](V a) { return simd::as_float(simd::as_int(a) ^ I(-1)); }, [](std::uint32_t b) { return ~b; });

    // to_int truncates in range; to_float rounds to nearest even like static_cast.
    std::vector<float> vals;
    for (int i = 0; i < 300; ++i) vals.push_back(std::uniform_real_distribution<float>(-3e9f, 3e9f)(rng) / float(1 << (i % 31)));
    vals.insert(vals.end(), {0.5f, -0.5f, 1.5f, -1.5f, 2147483520.0f, -2147483648.0f});
    const auto back = map1<V>(vals, [](V a) { return simd::to_float(simd::to_int(a)); });
    for (std::size_t i = 0; i < vals.size(); ++i) {
        if (!(vals[i] >= -2147483648.0f && vals[i] < 2147483648.0f)) continue;  // unspecified
        CAPTURE(vals[i]);
        CHECK(back[i] == static_cast<float>(static_cast<std::int32_t>(vals[i])));
    }
}

TEST_CASE_TEMPLATE("reductions use the fixed halving tree and propagate NaN", V, simd::VecF, simd::Vec1F) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1e4f, 1e4f);
    for (int trial = 0; trial < 200; ++trial) {
        float x[V::width];
        for (float& f : x) f = u(rng) * (trial % 3 == 0 ? 1e-6f : 1.0f);
        // The documented order: lane i with lane i + w/2, halving down to lane 0.
        float t[V::width];
        std::memcpy(t, x, sizeof t);
        for (int w = V::width / 2; w >= 1; w /= 2)
            for (int i = 0; i < w; ++i) t[i] = t[i] + t[i + w];
        const V v = V::load(x);
        CHECK(bits(simd::reduce_add(v)) == bits(t[0]));
        CHECK(bits(simd::reduce_add(v)) == bits(simd::reduce_add(V::load(x))));  // deterministic
        float mx = x[0], mn = x[0];
        for (float f : x) mx = std::max(mx, f), mn = std::min(mn, f);
        CHECK(simd::reduce_max(v) == mx);
        CHECK(simd::reduce_min(v) == mn);
        x[trial % V::width] = std::numeric_limits<float>::quiet_NaN();
        CHECK(std::isnan(simd::reduce_max(V::load(x))));
        CHECK(std::isnan(simd::reduce_min(V::load(x))));
        CHECK(std::isnan(simd::reduce_add(V::load(x))));
    }
}

TEST_CASE_TEMPLATE("reduce_add_each gives each packet's reduce_add in its lane, bit for bit", V, simd::VecF, simd::Vec1F) {
    std::mt19937 rng(12);
    std::uniform_real_distribution<float> u(-1e4f, 1e4f);
    for (int trial = 0; trial < 200; ++trial) {
        V v[V::width];
        for (int j = 0; j < V::width; ++j) {
            float x[V::width];
            for (float& f : x) f = u(rng) * (trial % 3 == 0 ? 1e-6f : 1.0f);  // sums that round differently per tree
            if (trial % 7 == 0 && j == trial % V::width) x[trial % V::width] = std::numeric_limits<float>::infinity();
            v[j] = V::load(x);
        }
        float sums[V::width];
        simd::reduce_add_each(v).store(sums);
        for (int j = 0; j < V::width; ++j) {
            CAPTURE(j);
            CHECK(bits(sums[j]) == bits(simd::reduce_add(v[j])));
        }
    }
}

TEST_CASE_TEMPLATE("broadcast, zero, load and store round-trip every lane", V, simd::VecF, simd::Vec1F) {
    float x[V::width], y[V::width];
    for (int i = 0; i < V::width; ++i) x[i] = float(i) + 0.25f;
    V::load(x).store(y);
    for (int i = 0; i < V::width; ++i) CHECK(y[i] == x[i]);
    V::broadcast(-3.5f).store(y);
    for (float f : y) CHECK(f == -3.5f);
    V(2.0f).store(y);
    for (float f : y) CHECK(f == 2.0f);
    V::zero().store(y);
    for (float f : y) CHECK(bits(f) == 0u);
    V acc = V::zero();
    acc += 1.0f;
    acc *= V(3.0f);
    acc -= 0.5f;
    acc /= 2.0f;
    acc.store(y);
    for (float f : y) CHECK(f == 1.25f);
}

TEST_CASE_TEMPLATE("partial loads read nothing past n and zero the other lanes", V, simd::VecF, simd::Vec1F) {
    GuardedBuffer buf;
    for (int n = 0; n <= V::width; ++n) {
        CAPTURE(n);
        float out[V::width];
        {
            float* p = buf.tail<float>(n);
            for (int i = 0; i < n; ++i) p[i] = float(i + 1);
            V::load_partial(p, n).store(out);
            for (int i = 0; i < V::width; ++i) CHECK(out[i] == (i < n ? float(i + 1) : 0.0f));
        }
        {
            f16* p = buf.tail<f16>(n);
            for (int i = 0; i < n; ++i) p[i] = f16(float(i + 1));
            V::load_f16_partial(p, n).store(out);
            for (int i = 0; i < V::width; ++i) CHECK(out[i] == (i < n ? float(i + 1) : 0.0f));
        }
        {
            bf16* p = buf.tail<bf16>(n);
            for (int i = 0; i < n; ++i) p[i] = bf16(float(i + 1));
            V::load_bf16_partial(p, n).store(out);
            for (int i = 0; i < V::width; ++i) CHECK(out[i] == (i < n ? float(i + 1) : 0.0f));
        }
        {
            std::int32_t* p = buf.tail<std::int32_t>(n);
            for (int i = 0; i < n; ++i) p[i] = -(i + 1);
            V::load_i32_partial(p, n).store(out);
            for (int i = 0; i < V::width; ++i) CHECK(out[i] == (i < n ? -float(i + 1) : 0.0f));
        }
        {
            std::int8_t* p = buf.tail<std::int8_t>(n);
            for (int i = 0; i < n; ++i) p[i] = std::int8_t(-(i + 1));
            V::load_i8_partial(p, n).store(out);
            for (int i = 0; i < V::width; ++i) CHECK(out[i] == (i < n ? -float(i + 1) : 0.0f));
        }
    }
    // Full-width loads of exactly width elements end at the guard page too.
    float out[V::width];
    V::load(buf.tail<float>(V::width)).store(out);
    V::load_f16(buf.tail<f16>(V::width)).store(out);
    V::load_bf16(buf.tail<bf16>(V::width)).store(out);
    V::load_i32(buf.tail<std::int32_t>(V::width)).store(out);
    V::load_i8(buf.tail<std::int8_t>(V::width)).store(out);
}

TEST_CASE_TEMPLATE("partial stores write exactly n elements and no byte around them", V, simd::VecF, simd::Vec1F) {
    float src[V::width];
    for (int i = 0; i < V::width; ++i) src[i] = float(i) + 1.5f;
    const V v = V::load(src);
    constexpr unsigned char guard = 0xA5;
    for (int n = 0; n <= V::width; ++n) {
        CAPTURE(n);
        auto check_bytes = [&](const unsigned char* raw, std::size_t elem, auto expect_elem) {
            const std::size_t pad = 64;
            for (std::size_t b = 0; b < pad; ++b) CHECK(raw[b] == guard);
            for (std::size_t b = pad + std::size_t(n) * elem; b < pad * 2 + V::width * elem; ++b) CHECK(raw[b] == guard);
            expect_elem(raw + pad);
        };
        unsigned char raw[64 * 2 + 16 * 4];
        std::memset(raw, guard, sizeof raw);
        v.store_partial(reinterpret_cast<float*>(raw + 64), n);
        check_bytes(raw, 4, [&](const unsigned char* p) {
            for (int i = 0; i < n; ++i) {
                float f;
                std::memcpy(&f, p + 4 * i, 4);
                CHECK(f == src[i]);
            }
        });
        std::memset(raw, guard, sizeof raw);
        simd::store_f16_partial(reinterpret_cast<f16*>(raw + 64), v, n);
        check_bytes(raw, 2, [&](const unsigned char* p) {
            for (int i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                CHECK(h == weft::float_to_f16_bits(src[i]));
            }
        });
        std::memset(raw, guard, sizeof raw);
        simd::store_bf16_partial(reinterpret_cast<bf16*>(raw + 64), v, n);
        check_bytes(raw, 2, [&](const unsigned char* p) {
            for (int i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                CHECK(h == weft::float_to_bf16_bits(src[i]));
            }
        });
    }
}

namespace {

// Floats near every rounding boundary of a 16-bit format: each representable value, the exact
// midpoints between neighbours, and the floats just either side of each midpoint.
template <class ToFloat>
std::vector<float> around_midpoints(ToFloat to_float) {
    std::vector<float> v;
    v.reserve(65536 * 5);
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const float a = to_float(std::uint16_t(h));
        if (std::isnan(a)) continue;
        v.push_back(a);
        if (std::isinf(a)) continue;
        const float b = to_float(std::uint16_t(h + 1));  // next magnitude (same sign)
        if (!std::isfinite(b) || (h & 0x7FFFu) == 0x7FFFu) continue;
        const double mid = (double(a) + double(b)) / 2;  // exact in double, often exact in float
        const float m = float(mid);
        v.push_back(m);
        v.push_back(std::nextafter(m, std::numeric_limits<float>::infinity()));
        v.push_back(std::nextafter(m, -std::numeric_limits<float>::infinity()));
    }
    // Beyond the largest finite values, and NaNs whose payload sits only in the low bits.
    for (float f : {65519.99f, 65520.0f, 65520.01f, 3.38953139e38f, 3.4028235e38f, 1e-8f, 2.98e-8f, 5.96e-8f})
        v.push_back(f), v.push_back(-f);
    for (std::uint32_t b : {0x7F800001u, 0xFF800001u, 0x7FC00000u, 0x7F80FFFFu, 0x7FFFFFFFu, 0x7F8F0000u, 0xFFFF8000u})
        v.push_back(from_bits(b));
    return v;
}

}  // namespace

TEST_CASE_TEMPLATE("f16 loads are bit-identical to f16_bits_to_float for all 65536 patterns", V, simd::VecF, simd::Vec1F) {
    std::vector<f16> all(65536);
    for (std::uint32_t h = 0; h < 65536; ++h) all[h] = f16::from_bits(std::uint16_t(h));
    std::vector<float> got(65536);
    for (int i = 0; i < 65536; i += V::width) V::load_f16(&all[i]).store(&got[i]);
    for (std::uint32_t h = 0; h < 65536; ++h) {
        CAPTURE(h);
        REQUIRE(bits(got[h]) == bits(weft::f16_bits_to_float(std::uint16_t(h))));
    }
}

TEST_CASE_TEMPLATE("bf16 loads are bit-identical to bf16_bits_to_float for all 65536 patterns", V, simd::VecF, simd::Vec1F) {
    std::vector<bf16> all(65536);
    for (std::uint32_t h = 0; h < 65536; ++h) all[h] = bf16::from_bits(std::uint16_t(h));
    std::vector<float> got(65536);
    for (int i = 0; i < 65536; i += V::width) V::load_bf16(&all[i]).store(&got[i]);
    for (std::uint32_t h = 0; h < 65536; ++h) {
        CAPTURE(h);
        REQUIRE(bits(got[h]) == bits(weft::bf16_bits_to_float(std::uint16_t(h))));
    }
}

TEST_CASE_TEMPLATE("f16 stores and round_to_f16 are bit-identical to float_to_f16_bits around every midpoint", V, simd::VecF, simd::Vec1F) {
    std::vector<float> xs = around_midpoints(weft::f16_bits_to_float);
    std::mt19937 rng(5);
    for (int i = 0; i < 200000; ++i) xs.push_back(from_bits(rng()));
    std::vector<f16> out(xs.size());
    const int n = int(xs.size());
    int i = 0;
    for (; i + V::width <= n; i += V::width) simd::store_f16(&out[i], V::load(&xs[i]));
    simd::store_f16_partial(&out[i], V::load_partial(&xs[i], n - i), n - i);
    const auto rounded = map1<V>(xs, [](V a) { return simd::round_to_f16(a); });
    for (std::size_t k = 0; k < xs.size(); ++k) {
        CAPTURE(bits(xs[k]));
        const std::uint16_t want = weft::float_to_f16_bits(xs[k]);
        REQUIRE(out[k].bits == want);
        REQUIRE(bits(rounded[k]) == bits(weft::f16_bits_to_float(want)));
    }
}

TEST_CASE_TEMPLATE("bf16 stores and round_to_bf16 are bit-identical to float_to_bf16_bits around every midpoint", V, simd::VecF, simd::Vec1F) {
    std::vector<float> xs = around_midpoints(weft::bf16_bits_to_float);
    std::mt19937 rng(6);
    for (int i = 0; i < 200000; ++i) xs.push_back(from_bits(rng()));
    std::vector<bf16> out(xs.size());
    const int n = int(xs.size());
    int i = 0;
    for (; i + V::width <= n; i += V::width) simd::store_bf16(&out[i], V::load(&xs[i]));
    simd::store_bf16_partial(&out[i], V::load_partial(&xs[i], n - i), n - i);
    const auto rounded = map1<V>(xs, [](V a) { return simd::round_to_bf16(a); });
    for (std::size_t k = 0; k < xs.size(); ++k) {
        CAPTURE(bits(xs[k]));
        const std::uint16_t want = weft::float_to_bf16_bits(xs[k]);
        REQUIRE(out[k].bits == want);
        REQUIRE(bits(rounded[k]) == bits(weft::bf16_bits_to_float(want)));
    }
}

TEST_CASE("bf16 rounding keeps subnormals, rounds ties to even and quiets NaN") {
    CHECK(weft::float_to_bf16_bits(from_bits(0x00008000u)) == 0x0000u);  // tie, even stays
    CHECK(weft::float_to_bf16_bits(from_bits(0x00018000u)) == 0x0002u);  // tie, odd rounds up
    CHECK(weft::float_to_bf16_bits(from_bits(0x00008001u)) == 0x0001u);  // subnormal kept
    CHECK(weft::float_to_bf16_bits(from_bits(0x7F800001u)) == 0x7FC0u);  // sNaN -> qNaN, not inf
    CHECK(weft::float_to_bf16_bits(from_bits(0x7F7FFFFFu)) == 0x7F80u);  // overflow to inf
    // ...and the packets agree on these.
    alignas(64) float x[16] = {from_bits(0x00008000u), from_bits(0x00018000u), from_bits(0x00008001u),
                               from_bits(0x7F800001u), from_bits(0x7F7FFFFFu)};
    bf16 out[16];
    for (int i = 0; i < 16; i += simd::VecF::width) simd::store_bf16(out + i, simd::VecF::load(x + i));
    for (int i = 0; i < 16; ++i) CHECK(out[i].bits == weft::float_to_bf16_bits(x[i]));
}

TEST_CASE_TEMPLATE("int8 and int32 loads convert like static_cast<float>", V, simd::VecF, simd::Vec1F) {
    std::vector<std::int8_t> i8(256 + 16);
    for (int i = 0; i < 256; ++i) i8[i] = std::int8_t(i - 128);
    for (int i = 0; i < 256; i += V::width) {
        float out[V::width];
        V::load_i8(&i8[i]).store(out);
        for (int k = 0; k < V::width; ++k) CHECK(out[k] == float(i8[i + k]));
    }
    std::mt19937 rng(9);
    std::vector<std::int32_t> i32(4096);
    for (auto& v : i32) v = std::int32_t(rng()) >> (rng() % 32);  // all magnitudes, ties at 2^24+
    i32[0] = INT32_MIN;
    i32[1] = INT32_MAX;
    i32[2] = 16777217;
    i32[3] = -16777219;
    for (std::size_t i = 0; i < i32.size(); i += V::width) {
        float out[V::width];
        V::load_i32(&i32[i]).store(out);
        for (int k = 0; k < V::width; ++k) CHECK(bits(out[k]) == bits(static_cast<float>(i32[i + k])));
    }
}

}  // namespace test_simd
