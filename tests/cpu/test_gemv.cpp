// The decode GEMV (cpu/gemv.hpp) against a double reference for f32, f16 and bf16 weights on
// awkward sizes, with strided x and out rows, and bit-identical results for any thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include <weft/core/threading.hpp>
#include <weft/cpu/gemv.hpp>

namespace test_gemv {

namespace {

template <class W>
void check_gemv(std::int64_t M, std::int64_t N, std::int64_t K) {
    std::mt19937 rng(static_cast<unsigned>(M * 1000 + N * 10 + K));
    std::uniform_real_distribution<float> dist(-1, 1);
    const std::int64_t ldx = K + 3, ldo = N + 5;
    std::vector<float> x(static_cast<std::size_t>(M * ldx)), out(static_cast<std::size_t>(M * ldo), -7.0f);
    std::vector<W> w(static_cast<std::size_t>(N * K));
    for (float& v : x) v = dist(rng);
    for (W& v : w) v = W(dist(rng));
    weft::cpu::gemv_nt(M, N, K, x.data(), ldx, w.data(), out.data(), ldo);
    double worst = 0;
    for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t n = 0; n < N; ++n) {
            double s = 0, mag = 0;
            for (std::int64_t k = 0; k < K; ++k) {
                const double p = double(x[m * ldx + k]) * double(static_cast<float>(w[n * K + k]));
                s += p;
                mag += std::abs(p);
            }
            worst = std::max(worst, std::abs(out[m * ldo + n] - s) / std::max(mag, 1e-30));
        }
    CHECK(worst <= 1e-6);
    for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t n = N; n < ldo; ++n) REQUIRE(out[m * ldo + n] == -7.0f);  // padding untouched
}

}  // namespace

TEST_CASE("gemv_nt matches the double reference for f32, f16 and bf16 weights on awkward sizes") {
    for (std::int64_t M : {1, 2, 5, 8})
        for (std::int64_t N : {1, 3, 7, 65, 257})
            for (std::int64_t K : {1, 15, 16, 33, 1023}) {
                CAPTURE(M);
                CAPTURE(N);
                CAPTURE(K);
                check_gemv<float>(M, N, K);
                check_gemv<weft::f16>(M, N, K);
                check_gemv<weft::bf16>(M, N, K);
            }
}

TEST_CASE("gemv_nt results are bit-identical for 1, 2 and 3 threads") {
    const std::int64_t M = 3, N = 1001, K = 515;
    std::vector<float> x(static_cast<std::size_t>(M * K));
    std::vector<weft::bf16> w(static_cast<std::size_t>(N * K));
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> dist(-1, 1);
    for (float& v : x) v = dist(rng);
    for (auto& v : w) v = weft::bf16(dist(rng));
    auto run = [&](int threads) {
        weft::set_num_threads(threads);
        std::vector<float> out(static_cast<std::size_t>(M * N));
        weft::cpu::gemv_nt(M, N, K, x.data(), K, w.data(), out.data(), N);
        return out;
    };
    const int before = weft::num_threads();
    const auto one = run(1);
    CHECK(one == run(2));
    CHECK(one == run(3));
    weft::set_num_threads(before);
}

}  // namespace test_gemv
