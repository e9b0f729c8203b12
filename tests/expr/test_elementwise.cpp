// Elementwise expressions against plain scalar loops in double: every op, awkward sizes,
// broadcast and strided operands, in-place and aliased assignment, 16-bit and integer dtypes,
// shape errors, and bit-identical results for any thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>

#include "../helpers.hpp"

namespace test_elementwise {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using namespace weft_test;

namespace {

// Checks build(x) against ref on contiguous and strided inputs of every awkward size.
template <class Build>
void check_unary(const char* name, Build build, double (*ref)(double), float lo, float hi, double tol) {
    for (Index n : awkward_sizes) {
        CAPTURE(name);
        CAPTURE(n);
        Tensor<float> x = random_tensor(Shape{n}, lo, hi);
        Tensor<float> y = build(x);
        std::vector<double> want;
        for (float v : x.span()) want.push_back(ref(v));
        CHECK(max_rel_error(to_doubles(y), want, 1e-6) <= tol);

        Tensor<float> wide = random_tensor(Shape{3, n}, lo, hi);
        auto strided = wide.transpose();  // [n, 3], inner stride n
        Tensor<float> ys = build(strided);
        std::vector<double> want_s;
        for (double v : to_doubles(strided)) want_s.push_back(ref(v));
        CHECK(max_rel_error(to_doubles(ys), want_s, 1e-6) <= tol);
    }
}

double ref_sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double ref_silu(double x) { return x / (1 + std::exp(-x)); }
double ref_gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double ref_neg(double x) { return -x; }
double ref_abs(double x) { return std::abs(x); }
double ref_square(double x) { return x * x; }
double ref_sqrt(double x) { return std::sqrt(x); }
double ref_rsqrt(double x) { return 1 / std::sqrt(x); }
double ref_exp(double x) { return std::exp(x); }
double ref_log(double x) { return std::log(x); }
double ref_tanh(double x) { return std::tanh(x); }

}  // namespace

TEST_CASE("unary ops match the scalar reference on awkward sizes, contiguous and strided") {
    check_unary("neg", [](const auto& x) { return Tensor<float>(-x); }, ref_neg, -3, 3, 0);
    check_unary("abs", [](const auto& x) { return Tensor<float>(weft::abs(x)); }, ref_abs, -3, 3, 0);
    check_unary("square", [](const auto& x) { return Tensor<float>(weft::square(x)); }, ref_square, -3, 3, 1e-7);
    check_unary("sqrt", [](const auto& x) { return Tensor<float>(weft::sqrt(x)); }, ref_sqrt, 0, 100, 1e-7);
    check_unary("rsqrt", [](const auto& x) { return Tensor<float>(weft::rsqrt(x)); }, ref_rsqrt, 0.01f, 100, 3e-7);
    check_unary("exp", [](const auto& x) { return Tensor<float>(weft::exp(x)); }, ref_exp, -80, 80, 5e-7);
    check_unary("log", [](const auto& x) { return Tensor<float>(weft::log(x)); }, ref_log, 1e-6f, 1e6f, 5e-7);
    check_unary("tanh", [](const auto& x) { return Tensor<float>(weft::tanh(x)); }, ref_tanh, -10, 10, 5e-7);
    check_unary("sigmoid", [](const auto& x) { return Tensor<float>(weft::sigmoid(x)); }, ref_sigmoid, -30, 30, 5e-7);
    check_unary("silu", [](const auto& x) { return Tensor<float>(weft::silu(x)); }, ref_silu, -30, 30, 5e-7);
    check_unary("gelu", [](const auto& x) { return Tensor<float>(weft::gelu(x)); }, ref_gelu, -6, 6, 5e-6);
}

TEST_CASE("binary ops broadcast like numpy and match the scalar reference") {
    struct Case {
        const char* name;
        std::function<Tensor<float>(const Tensor<float>&, const Tensor<float>&)> build;
        std::function<double(double, double)> ref;
        double tol;
    };
    const Case cases[] = {
        {"add", [](const auto& a, const auto& b) { return Tensor<float>(a + b); }, [](double a, double b) { return a + b; }, 6e-8},
        {"sub", [](const auto& a, const auto& b) { return Tensor<float>(a - b); }, [](double a, double b) { return a - b; }, 6e-8},
        {"mul", [](const auto& a, const auto& b) { return Tensor<float>(a * b); }, [](double a, double b) { return a * b; }, 6e-8},
        {"div", [](const auto& a, const auto& b) { return Tensor<float>(a / b); }, [](double a, double b) { return a / b; }, 6e-8},
        {"min", [](const auto& a, const auto& b) { return Tensor<float>(weft::min(a, b)); }, [](double a, double b) { return std::min(a, b); }, 0},
        {"max", [](const auto& a, const auto& b) { return Tensor<float>(weft::max(a, b)); }, [](double a, double b) { return std::max(a, b); }, 0},
        {"pow", [](const auto& a, const auto& b) { return Tensor<float>(weft::pow(weft::abs(a) + 0.5f, b)); },
         [](double a, double b) { return std::pow(std::abs(a) + 0.5, b); }, 2e-6},
    };
    for (const Case& c : cases) {
        for (Index n : awkward_sizes) {
            CAPTURE(c.name);
            CAPTURE(n);
            const Index m = 3;
            Tensor<float> a = random_tensor(Shape{m, n}), row = random_tensor(Shape{n}), col = random_tensor(Shape{m, 1});
            for (auto* t : {&a, &row, &col})  // keep divisors away from zero
                for (float& v : t->span()) v = v < 0 ? v - 0.25f : v + 0.25f;
            auto check = [&](const Tensor<float>& got, auto b_at) {
                REQUIRE(got.shape() == (Shape{m, n}));
                std::vector<double> want;
                for (Index i = 0; i < m; ++i)
                    for (Index j = 0; j < n; ++j) want.push_back(c.ref(a(i, j), b_at(i, j)));
                CHECK(max_rel_error(to_doubles(got), want, 1e-6) <= c.tol);
            };
            check(c.build(a, row), [&](Index, Index j) { return row(j); });
            check(c.build(a, col), [&](Index i, Index) { return col(i, 0); });
            Tensor<float> b = random_tensor(Shape{m, n}, 0.25f, 2.0f);
            check(c.build(a, b), [&](Index i, Index j) { return b(i, j); });
        }
    }
}

TEST_CASE("numbers on either side of an operator take the tensor's dtype") {
    Tensor<float> x = random_tensor(Shape{1023});
    Tensor<float> y = 2.0f * x + 1 - x / 4.0;
    for (Index i = 0; i < 1023; ++i) CHECK(y(i) == doctest::Approx(2 * x(i) + 1 - x(i) / 4.0).epsilon(1e-6));
    Tensor<float> z = weft::max(x, 0.0f);  // relu
    for (Index i = 0; i < 1023; ++i) CHECK(z(i) == std::max(x(i), 0.0f));
}

TEST_CASE("a fused expression over strided, broadcast and contiguous operands matches the reference") {
    for (Index n : awkward_sizes) {
        CAPTURE(n);
        Tensor<float> a_storage = random_tensor(Shape{n, 5});
        auto a = a_storage.slice(1, 1, 5, 2);  // [n, 2], strided rows and columns
        Tensor<float> b = random_tensor(Shape{2});
        Tensor<float> c = random_tensor(Shape{n, 1});
        Tensor<float> y = weft::silu(a) * b + weft::exp(c * 0.5f) - a / (weft::abs(b) + 1.0f);
        // The three terms may cancel: the error is measured against the sum of their magnitudes.
        double worst = 0;
        for (Index i = 0; i < n; ++i)
            for (Index j = 0; j < 2; ++j) {
                const double av = a(i, j), bv = b(j), cv = c(i, 0);
                const double t1 = ref_silu(av) * bv, t2 = std::exp(cv * 0.5), t3 = av / (std::abs(bv) + 1);
                worst = std::max(worst, std::abs(y(i, j) - (t1 + t2 - t3)) / (std::abs(t1) + std::abs(t2) + std::abs(t3)));
            }
        CHECK(worst <= 1e-6);
    }
}

TEST_CASE("assigning into an operand is correct, also when the operand is read in another order") {
    Tensor<float> x = random_tensor(Shape{4097});
    Tensor<float> y = random_tensor(Shape{4097});
    const std::vector<double> x0 = to_doubles(x), y0 = to_doubles(y);
    x = x + y;  // same elements: evaluated in place
    for (Index i = 0; i < 4097; ++i) CHECK(x(i) == static_cast<float>(static_cast<float>(x0[i]) + static_cast<float>(y0[i])));

    Tensor<float> m = random_tensor(Shape{33, 33});
    const Tensor<float> m0 = m;
    m = m.transpose() + m;  // reads elements that the same pass overwrites: staged through a copy
    for (Index i = 0; i < 33; ++i)
        for (Index j = 0; j < 33; ++j) CHECK(m(i, j) == m0(j, i) + m0(i, j));

    Tensor<float> s = random_tensor(Shape{1023});
    const Tensor<float> s0 = s;
    s.slice(0, 1, 1023) = s.slice(0, 0, 1022) * 2.0f;  // overlapping shift
    for (Index i = 1; i < 1023; ++i) CHECK(s(i) == 2 * s0(i - 1));
    CHECK(s(0) == s0(0));
}

TEST_CASE("assigning an expression of another shape to a Tensor reallocates it") {
    Tensor<float> t(Shape{2});
    Tensor<float> big = random_tensor(Shape{3, 7});
    t = big * 2.0f;
    CHECK(t.shape() == Shape{3, 7});
    CHECK(t(2, 6) == 2 * big(2, 6));
    t = t.select(0, 1) + 1.0f;  // reads t while it is replaced
    CHECK(t.shape() == Shape{7});
    CHECK(t(3) == 2 * big(1, 3) + 1);
}

TEST_CASE("f16 and bf16 expressions compute in f32 and round after each operation") {
    for (Index n : awkward_sizes) {
        CAPTURE(n);
        Tensor<float> af = random_tensor(Shape{n}), bf = random_tensor(Shape{n});
        Tensor<weft::f16> a = weft::cast<weft::f16>(af), b = weft::cast<weft::f16>(bf);
        Tensor<weft::bf16> ab = weft::cast<weft::bf16>(af), bb = weft::cast<weft::bf16>(bf);
        Tensor<weft::f16> h = a * b + a;
        Tensor<weft::bf16> hb = weft::exp(ab) - bb;
        Tensor<float> back = weft::cast<float>(h);
        for (Index i = 0; i < n; ++i) {
            REQUIRE(a(i).bits == weft::float_to_f16_bits(af(i)));
            REQUIRE(ab(i).bits == weft::float_to_bf16_bits(af(i)));
            const float prod = float(weft::f16(float(a(i)) * float(b(i))));
            REQUIRE(h(i).bits == weft::f16(prod + float(a(i))).bits);
            REQUIRE(back(i) == float(h(i)));
            const float e = float(weft::bf16(std::exp(float(ab(i)))));
            CHECK(std::abs(float(hb(i)) - float(weft::bf16(e - float(bb(i))))) <= std::abs(e) * 0.0079f);
        }
        // Strided 16-bit operands take the lane-by-lane path and must agree bit for bit.
        Tensor<weft::f16> wide = weft::cast<weft::f16>(random_tensor(Shape{2, n}));
        Tensor<weft::f16> strided = wide.transpose() * 2.0f;
        Tensor<weft::f16> contiguous_copy = wide.transpose();
        Tensor<weft::f16> from_copy = contiguous_copy * 2.0f;
        for (Index i = 0; i < n; ++i)
            for (Index j = 0; j < 2; ++j) REQUIRE(strided(i, j).bits == from_copy(i, j).bits);
    }
}

TEST_CASE("integer tensors add, multiply, divide and convert with saturation") {
    Tensor<int> i(Shape{5}, {-7, -1, 0, 3, 100});
    Tensor<int> j = i * 3 + 1;
    CHECK(j(0) == -20);
    CHECK(j(4) == 301);
    Tensor<int> q = i / 2;
    CHECK(q(0) == -3);  // truncation toward zero, as in C++
    Tensor<float> f = weft::cast<float>(i) * 0.5f;
    CHECK(f(0) == -3.5f);
    Tensor<std::int8_t> small = weft::cast<std::int8_t>(j);
    CHECK(small(0) == -20);
    CHECK(small(4) == 127);  // saturated
    Tensor<int> from_float = weft::cast<int>(Tensor<float>(Shape{3}, {2.9f, -2.9f, 1e20f}));
    CHECK(from_float(0) == 2);
    CHECK(from_float(1) == -2);
    CHECK(from_float(2) == 2147483647);
    Tensor<double> d = weft::cast<double>(i) / 4.0;
    CHECK(d(0) == -1.75);
    Tensor<float> fd = weft::cast<float>(weft::exp(d));
    CHECK(fd(3) == doctest::Approx(std::exp(0.75)).epsilon(1e-7));
}

TEST_CASE("shape mismatches throw errors that name the operation and both shapes") {
    Tensor<float> a(Shape{3, 4}), b(Shape{5});
    CHECK_THROWS_WITH_AS(a + b, "add: shapes [3, 4] and [5] cannot be broadcast together", weft::Error);
    CHECK_THROWS_WITH_AS(weft::max(a, Tensor<float>(Shape{2, 4})), "max: shapes [3, 4] and [2, 4] cannot be broadcast together",
                         weft::Error);
    auto view = a.view();
    CHECK_THROWS_WITH_AS(view = Tensor<float>(Shape{3, 1, 4}) * 2.0f,
                         "assign: an expression of shape [3, 1, 4] does not fit a destination of shape [3, 4]", weft::Error);
}

TEST_CASE("elementwise results are bit-identical for 1, 2 and 3 threads") {
    Tensor<float> x = random_tensor(Shape{7, 40009}, -5, 5);
    Tensor<float> b = random_tensor(Shape{40009});
    auto run = [&] {
        Tensor<float> y = weft::silu(x) * b + weft::tanh(x.transpose().transpose() * 0.3f) / (weft::exp(b) + 1.0f);
        Tensor<float> strided = weft::exp(x.slice(1, 0, 40009, 3)) * 2.0f;
        return std::make_pair(bits_of(y), bits_of(strided));
    };
    const auto one = with_threads(1, run), two = with_threads(2, run), three = with_threads(3, run);
    CHECK(one == two);
    CHECK(one == three);
}

TEST_CASE("empty and rank-0 tensors evaluate") {
    Tensor<float> empty(Shape{0, 5});
    Tensor<float> e2 = empty * 2.0f;
    CHECK(e2.shape() == Shape{0, 5});
    Tensor<float> scalar(Shape{}, 3.0f);
    Tensor<float> s2 = scalar * scalar + 1.0f;
    CHECK(s2.rank() == 0);
    CHECK(s2() == 10.0f);
}

TEST_CASE("outputs large enough for streaming stores are exact, also into a misaligned destination") {
    const Index n = (Index(9) << 20) / 4 + 13;  // over the 8 MiB threshold, odd length
    Tensor<float> a = random_tensor(Shape{n}), b = random_tensor(Shape{n});
    Tensor<float> out_storage(Shape{n + 1});
    auto out = out_storage.slice(0, 1, n + 1);  // starts 4 bytes past a 64-byte boundary
    auto run = [&] {
        out = weft::silu(a) * b + a;
        return bits_of(Tensor<float>(out));
    };
    const auto one = with_threads(1, run), two = with_threads(2, run);
    CHECK(one == two);
    Tensor<float> small_a = a.slice(0, 0, 1000), small_b = b.slice(0, 0, 1000);
    Tensor<float> small = weft::silu(small_a) * small_b + small_a;  // cached path, same bits
    for (Index i = 0; i < 1000; ++i) REQUIRE(out(i) == small(i));
    CHECK(out_storage(0) == 0.0f);
}

}  // namespace test_elementwise
