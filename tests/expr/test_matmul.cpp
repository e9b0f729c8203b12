// matmul / matmul_nt on tensors: shapes, leading batch axes, strided views, output views, errors,
// and thread-count determinism (the kernel itself is tested in tests/cpu/test_gemm.cpp).
#include <doctest/doctest.h>

#include <cmath>

#include "../helpers.hpp"

namespace test_matmul {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using namespace weft_test;

namespace {

// out[i, n] = Σ_k a[i, k] · b(k, n) in double; also returns Σ |a||b| per element for the bound.
template <class BAt>
std::vector<double> reference_product(const weft::TensorView<const float>& a, Index N, BAt b_at, std::vector<double>& magnitude) {
    std::vector<double> out;
    magnitude.clear();
    const Index K = a.shape()[a.rank() - 1];
    const Index M = a.numel() / std::max<Index>(K, 1);
    const auto flat = to_doubles(a);
    for (Index i = 0; i < M; ++i)
        for (Index n = 0; n < N; ++n) {
            double s = 0, m = 0;
            for (Index k = 0; k < K; ++k) {
                s += flat[static_cast<std::size_t>(i * K + k)] * b_at(k, n);
                m += std::abs(flat[static_cast<std::size_t>(i * K + k)] * b_at(k, n));
            }
            out.push_back(s);
            magnitude.push_back(m);
        }
    return out;
}

double max_scaled_error(const Tensor<float>& got, const std::vector<double>& want, const std::vector<double>& magnitude) {
    const auto g = to_doubles(got);
    double worst = 0;
    for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - want[i]) / std::max(magnitude[i], 1e-30));
    return worst;
}

}  // namespace

TEST_CASE("matmul_nt multiplies by stored [out, in] weights, with batch axes and strided inputs") {
    for (Index K : {1, 7, 33, 257}) {
        for (Index N : {1, 31, 33}) {
            CAPTURE(K);
            CAPTURE(N);
            Tensor<float> a = random_tensor(Shape{2, 3, K});
            Tensor<float> w = random_tensor(Shape{N, K});
            Tensor<float> y = weft::matmul_nt(a, w);
            REQUIRE(y.shape() == Shape{2, 3, N});
            std::vector<double> mag;
            auto want = reference_product(a.view(), N, [&](Index k, Index n) { return double(w(n, k)); }, mag);
            CHECK(max_scaled_error(y, want, mag) <= 1e-6);

            Tensor<float> a_wide = random_tensor(Shape{K, 5});
            auto a_t = a_wide.transpose();  // [5, K], column-major in memory
            Tensor<float> y2 = weft::matmul_nt(a_t, w);
            auto want2 = reference_product(a_t, N, [&](Index k, Index n) { return double(w(n, k)); }, mag);
            CHECK(max_scaled_error(y2, want2, mag) <= 1e-6);
        }
    }
}

TEST_CASE("matmul multiplies [.., K] by [K, N], also for transposed and fused operands") {
    for (Index M : {1, 3, 17}) {
        Tensor<float> a = random_tensor(Shape{M, 33});
        Tensor<float> b = random_tensor(Shape{33, 19});
        Tensor<float> y = weft::matmul(a, b);
        std::vector<double> mag;
        auto want = reference_product(a.view(), 19, [&](Index k, Index n) { return double(b(k, n)); }, mag);
        CHECK(max_scaled_error(y, want, mag) <= 1e-6);

        Tensor<float> bt = random_tensor(Shape{19, 33});
        Tensor<float> y2 = weft::matmul(a * 2.0f, bt.transpose());  // fused left operand, strided right
        Tensor<float> a2 = a * 2.0f;
        auto want2 = reference_product(a2.view(), 19, [&](Index k, Index n) { return double(bt(n, k)); }, mag);
        CHECK(max_scaled_error(y2, want2, mag) <= 1e-6);
    }
}

TEST_CASE("matmul writes into an output view, strided or overlapping its input") {
    Tensor<float> a = random_tensor(Shape{4, 8});
    Tensor<float> w = random_tensor(Shape{8, 8});
    const Tensor<float> want = weft::matmul_nt(a, w);
    Tensor<float> out_storage(Shape{8, 4});
    weft::matmul_nt(a, w, out_storage.transpose());  // strided destination
    Tensor<float> got = out_storage.transpose();
    CHECK(bits_of(got) == bits_of(want));
    weft::matmul_nt(a, w, a.view());  // in place: a is read before it is overwritten
    CHECK(bits_of(a) == bits_of(want));
}

TEST_CASE("matmul errors name both shapes") {
    Tensor<float> a(Shape{2, 5}), w(Shape{3, 4});
    CHECK_THROWS_WITH_AS(weft::matmul_nt(a, w), "matmul_nt: inner sizes differ: shapes [2, 5] and [3, 4]", weft::Error);
    CHECK_THROWS_WITH_AS(weft::matmul(a, w), "matmul: inner sizes differ: shapes [2, 5] and [3, 4]", weft::Error);
    Tensor<float> out(Shape{2, 2});
    CHECK_THROWS_WITH_AS(weft::matmul_nt(a, Tensor<float>(Shape{3, 5}), out.view()),
                         "matmul_nt: output of shape [2, 2] for inputs [2, 5] and [3, 5] (expected [2, 3])", weft::Error);
}

TEST_CASE("matmul results are bit-identical for 1, 2 and 3 threads") {
    Tensor<float> a = random_tensor(Shape{37, 300});
    Tensor<float> w = random_tensor(Shape{515, 300});
    auto run = [&] { return bits_of(weft::matmul_nt(a, w)); };
    const auto one = with_threads(1, run);
    CHECK(one == with_threads(2, run));
    CHECK(one == with_threads(3, run));
}

}  // namespace test_matmul
