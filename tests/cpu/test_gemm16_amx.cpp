// The AMX-BF16 GEMM for 16-bit weights (cpu/gemm16_amx.hpp) against a float64 reference on the
// exactly widened weights, on awkward sizes; and through nn::Linear, against the widening f32
// GEMM it replaces. On machines (or builds) without AMX-BF16 the cases say so and check nothing
// more than that the fallback is taken.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <random>
#include <vector>

#include <weft/cpu/gemm16_amx.hpp>
#include <weft/nn/linear.hpp>

namespace test_gemm16_amx {

namespace {

using weft::Index;

template <class W>
std::vector<W> random_weights(Index n, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<W> w(static_cast<std::size_t>(n));
    for (auto& v : w) v = W(dist(rng));
    return w;
}

// max over outputs of |out − ref| / (Σ_k |x·w|): the error relative to the size of the terms
// summed, which is what f32 summation bounds (out itself may be near 0 by cancellation).
template <class W>
double gemm_error(Index M, Index N, Index K, Index ldx, const std::vector<float>& x, const std::vector<W>& w,
                  const std::vector<float>& out, Index ldo) {
    double worst = 0;
    for (Index m = 0; m < M; ++m)
        for (Index n = 0; n < N; ++n) {
            double ref = 0, scale = 0;
            for (Index k = 0; k < K; ++k) {
                const double p = double(x[static_cast<std::size_t>(m * ldx + k)]) * double(float(w[static_cast<std::size_t>(n * K + k)]));
                ref += p;
                scale += std::abs(p);
            }
            worst = std::max(worst, std::abs(double(out[static_cast<std::size_t>(m * ldo + n)]) - ref) / std::max(scale, 1e-30));
        }
    return worst;
}

}  // namespace

#if defined(WEFT_GEMM16_AMX)
TEST_CASE_TEMPLATE("gemm16_amx equals the float64 product of the exact inputs on awkward sizes", W, weft::bf16, weft::f16) {
    if (!weft::cpu::gemm16_amx_available()) {
        MESSAGE("AMX-BF16 tiles are not available on this machine: gemm16_amx not tested");
        return;
    }
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    double worst = 0;
    for (Index M : {1, 16, 17, 33, 70})
        for (Index N : {1, 31, 32, 45, 100})
            for (Index K : {1, 31, 32, 33, 100, 1030}) {
                CAPTURE(M);
                CAPTURE(N);
                CAPTURE(K);
                const Index ldx = K + 3, ldo = N + 5;  // rows of x and out not contiguous
                std::vector<float> x(static_cast<std::size_t>(M * ldx));
                for (auto& v : x) v = dist(rng) * 3.0f;
                const auto w = random_weights<W>(N * K, rng);
                std::vector<float> out(static_cast<std::size_t>(M * ldo), -7.0f);
                weft::cpu::gemm16_amx(M, N, K, x.data(), ldx, w.data(), out.data(), ldo);
                const double err = gemm_error(M, N, K, ldx, x, w, out, ldo);
                worst = std::max(worst, err);
                CHECK(err <= 4e-6);  // f32 summation of exact products (K ≤ 1030 terms)
                for (Index m = 0; m < M; ++m)  // the gaps between output rows are left alone
                    for (Index n = N; n < ldo && m * ldo + n < static_cast<Index>(out.size()); ++n)
                        REQUIRE(out[static_cast<std::size_t>(m * ldo + n)] == -7.0f);
            }
    MESSAGE("gemm16_amx max error relative to the summed magnitudes: ", worst);
}

TEST_CASE("gemm16_amx: an output row does not depend on the other rows or the thread count") {
    if (!weft::cpu::gemm16_amx_available()) return;
    std::mt19937 rng(11);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    const Index M = 37, N = 75, K = 300;
    std::vector<float> x(static_cast<std::size_t>(M * K));
    for (auto& v : x) v = dist(rng);
    const auto w = random_weights<weft::bf16>(N * K, rng);
    std::vector<float> all(static_cast<std::size_t>(M * N)), one_thread(all.size()), row(static_cast<std::size_t>(N));
    weft::cpu::gemm16_amx(M, N, K, x.data(), K, w.data(), all.data(), N);
    const int threads = weft::num_threads();
    weft::set_num_threads(1);
    weft::cpu::gemm16_amx(M, N, K, x.data(), K, w.data(), one_thread.data(), N);
    weft::set_num_threads(threads);
    CHECK(all == one_thread);
    weft::cpu::gemm16_amx(1, N, K, x.data() + 20 * K, K, w.data(), row.data(), N);
    for (Index n = 0; n < N; ++n) REQUIRE(row[static_cast<std::size_t>(n)] == all[static_cast<std::size_t>(20 * N + n)]);
}

TEST_CASE("gemm16_amx: activations of every magnitude are split exactly") {
    if (!weft::cpu::gemm16_amx_available()) return;
    // One weight of 1 picks a single activation: the output must be that activation exactly
    // (its three bf16 parts add back to it), for values with all 24 significant bits set.
    const Index K = 64;
    std::vector<weft::bf16> w(static_cast<std::size_t>(K), weft::bf16(0.0f));
    w[5] = weft::bf16(1.0f);
    for (float v : {1.0f + 0x1.fffffcp-1f, -3.3333333f, 0x1.abcdefp+100f, 0x1.fffffep-100f, 123456.789f}) {
        std::vector<float> x(static_cast<std::size_t>(16 * K), 0.0f);
        x[5] = v;
        float out[16];
        weft::cpu::gemm16_amx(16, 1, K, x.data(), K, w.data(), out, 1);
        CHECK(out[0] == v);
    }
}
#endif

TEST_CASE("Linear with 16-bit weights: the prefill GEMM (AMX tiles where present) matches the widening f32 GEMM") {
    std::mt19937 rng(3);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    const Index M = 40, N = 96, K = 200;
    const auto w = random_weights<weft::bf16>(N * K, rng);
    weft::nn::Linear linear(weft::Weight(weft::DType::bf16, w.data(), weft::Shape{N, K}, "w"));
    weft::Tensor<float> x(weft::Shape{M, K});
    for (Index i = 0; i < x.numel(); ++i) x.data()[i] = dist(rng);
    weft::Tensor<float> fast(weft::Shape{M, N}), widened(weft::Shape{M, N});
    linear.forward(x, fast);
#if defined(WEFT_GEMM16_AMX)
    weft::cpu::detail::gemm16::tiles_allowed() = false;
    linear.forward(x, widened);
    weft::cpu::detail::gemm16::tiles_allowed() = true;
    const std::string used = weft::cpu::gemm16_amx_available() ? "used" : "not available";
    MESSAGE("AMX-BF16 prefill GEMM ", used);
#else
    linear.forward(x, widened);
#endif
    double worst = 0;
    for (Index i = 0; i < fast.numel(); ++i) worst = std::max(worst, double(std::abs(fast.data()[i] - widened.data()[i])));
    CHECK(worst <= 1e-4);
}

}  // namespace test_gemm16_amx
