// Row reductions and softmax against double-precision loops: awkward row lengths, strided and
// fused inputs, f16 inputs, NaN and infinities, and thread-count determinism.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "../helpers.hpp"

namespace test_reduce {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using namespace weft_test;

namespace {

// Rows of a rank-2 view as doubles.
std::vector<std::vector<double>> rows_of(const weft::TensorView<const float>& v) {
    std::vector<std::vector<double>> rows;
    for (Index i = 0; i < v.shape()[0]; ++i) {
        rows.emplace_back();
        for (Index j = 0; j < v.shape()[1]; ++j) rows.back().push_back(v(i, j));
    }
    return rows;
}

}  // namespace

TEST_CASE("row_sum, row_mean, row_sum_squares and row_max match double loops on awkward lengths") {
    for (Index n : awkward_sizes) {
        CAPTURE(n);
        Tensor<float> x = random_tensor(Shape{5, n});
        std::vector<double> sum, mean, squares, maxima, magnitude;
        for (const auto& row : rows_of(x.view())) {
            double s = 0, q = 0, m = -INFINITY, a = 0;
            for (double v : row) s += v, q += v * v, m = std::max(m, v), a += std::abs(v);
            sum.push_back(s), mean.push_back(s / n), squares.push_back(q), maxima.push_back(m), magnitude.push_back(a);
        }
        // Float summation error grows with Σ|x| (terms cancel): bound |error| by 1e-6 · Σ|x|, far
        // inside the classical n·ε·Σ|x| bound. Sums of squares have no cancellation.
        auto scaled_error = [&](const Tensor<float>& got, const std::vector<double>& want, double divisor) {
            double worst = 0;
            const auto g = to_doubles(got);
            for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - want[i]) / (magnitude[i] / divisor));
            return worst;
        };
        CHECK(weft::row_sum(x).shape() == Shape{5, 1});
        CHECK(scaled_error(weft::row_sum(x), sum, 1) <= 1e-6);
        CHECK(scaled_error(weft::row_mean(x), mean, double(n)) <= 1e-6);
        CHECK(max_rel_error(to_doubles(weft::row_sum_squares(x)), squares) <= 1e-5);
        CHECK(max_rel_error(to_doubles(weft::row_max(x)), maxima) == 0);
    }
}

TEST_CASE("reductions read strided views and fused expressions without materialising them") {
    for (Index n : awkward_sizes) {
        CAPTURE(n);
        Tensor<float> wide = random_tensor(Shape{n, 4});
        auto cols = wide.transpose();  // [4, n], rows walk with stride 4
        Tensor<float> bias = random_tensor(Shape{n});
        Tensor<float> got = weft::row_sum_squares(cols * 2.0f + bias);
        std::vector<double> want;
        for (Index i = 0; i < 4; ++i) {
            double q = 0;
            for (Index j = 0; j < n; ++j) {
                const double v = 2.0 * cols(i, j) + bias(j);
                q += v * v;
            }
            want.push_back(q);
        }
        CHECK(max_rel_error(to_doubles(got), want) <= 1e-5);
    }
}

TEST_CASE("row_argmax returns the first maximum, or the first NaN") {
    Tensor<float> x(Shape{3, 5}, {1, 5, 3, 5, 0, -1, -2, -0.5f, -3, -9, 0, NAN, 7, NAN, 1});
    Tensor<int> idx = weft::row_argmax(x);
    CHECK(idx.shape() == Shape{3, 1});
    CHECK(idx(0, 0) == 1);
    CHECK(idx(1, 0) == 2);
    CHECK(idx(2, 0) == 1);
    Tensor<float> big = random_tensor(Shape{2, 4097});
    big(1, 4000) = 10.0f;
    CHECK(weft::row_argmax(big)(1, 0) == 4000);
}

TEST_CASE("softmax and log_softmax match the double reference, including -inf entries") {
    for (Index n : awkward_sizes) {
        CAPTURE(n);
        Tensor<float> x = random_tensor(Shape{4, n}, -20, 20);
        if (n > 1) x(2, n - 1) = -INFINITY;  // a masked position
        Tensor<float> p = weft::softmax(x);
        Tensor<float> lp = weft::log_softmax(x);
        std::vector<double> want_p, want_lp;
        for (const auto& row : rows_of(x.view())) {
            double m = -INFINITY, s = 0;
            for (double v : row) m = std::max(m, v);
            for (double v : row) s += std::exp(v - m);
            for (double v : row) want_p.push_back(std::exp(v - m) / s), want_lp.push_back(v - m - std::log(s));
        }
        // Rounding x - max to float (|x - max| <= 40) perturbs exp's argument by up to 40·ε/2, a
        // relative error of 2.4e-6 in each probability; the float sum of n terms adds ~√n·ε (the
        // scalar build sums serially). Log-softmax errors are absolute, ~ 40·ε.
        CHECK(max_rel_error(to_doubles(p), want_p, 1e-30) <= 1e-5);
        CHECK(max_rel_error(to_doubles(lp), want_lp, 40.0) <= 1e-6);
        if (n > 1) CHECK(p(2, n - 1) == 0.0f);
    }
}

TEST_CASE("softmax writes in place, into strided outputs, and from f16 inputs") {
    Tensor<float> x = random_tensor(Shape{6, 257});
    const Tensor<float> want = weft::softmax(x);
    weft::softmax(x, x.view());  // in place
    CHECK(bits_of(x) == bits_of(want));

    Tensor<float> out_storage(Shape{257, 6});
    Tensor<float> y = random_tensor(Shape{6, 257});
    weft::softmax(y, out_storage.transpose());
    Tensor<float> direct = weft::softmax(y);
    Tensor<float> through = out_storage.transpose();
    // A strided output row is summed lane by lane, a contiguous one in SIMD lanes: equal up to
    // rounding, not bit for bit.
    CHECK(max_rel_error(to_doubles(through), to_doubles(direct)) <= 1e-6);

    Tensor<weft::f16> h = weft::cast<weft::f16>(y);
    Tensor<float> from_h = weft::softmax(h);
    Tensor<float> from_f = weft::softmax(weft::cast<float>(h));
    CHECK(bits_of(from_h) == bits_of(from_f));

    CHECK_THROWS_WITH_AS(weft::softmax(y, out_storage.view()), "softmax: output of shape [257, 6] for an input of shape [6, 257]",
                         weft::Error);
    CHECK_THROWS_AS(weft::row_sum(Tensor<float>(Shape{3, 0})), weft::Error);
}

TEST_CASE("reductions are bit-identical for 1, 2 and 3 threads") {
    Tensor<float> x = random_tensor(Shape{301, 1023}, -10, 10);
    auto run = [&] {
        return std::make_tuple(bits_of(weft::row_sum(x * 1.5f)), bits_of(weft::softmax(x)), bits_of(weft::log_softmax(x.transpose())),
                               bits_of(weft::row_sum_squares(x.transpose())));
    };
    const auto one = with_threads(1, run);
    CHECK(one == with_threads(2, run));
    CHECK(one == with_threads(3, run));
}

}  // namespace test_reduce
