// The bf16-dot prefill GEMM (cpu/gemm_bf16.hpp): exact on integer data (every index of the packing
// and the tiles), against a double reference on the bf16-rounded inputs for random data, with
// awkward sizes (odd K, partial panels and tiles, K across packed blocks), strided rows, and
// results independent of the thread count and of the other rows of the batch.
#include <doctest/doctest.h>

#include <weft/cpu/gemm_bf16.hpp>

#if defined(WEFT_GEMM_BF16)

#include <cmath>
#include <random>
#include <vector>

#include <weft/core/threading.hpp>

#include "../helpers.hpp"

namespace test_gemm_bf16 {

namespace {

using weft::bf16;
using weft::f16;

struct Case {
    std::int64_t M, N, K;
};
// Groups of 6 weight rows (partial: N % 6), blocks of 64 activation rows in vectors of 16
// (partial blocks and vectors), K in steps of 16 pairs (odd K: bf16 rows rounded into a buffer,
// as f16 rows always are; even K: bf16 rows read in place).
const Case cases[] = {{1, 1, 1},      {9, 5, 2},     {12, 32, 32},   {13, 33, 33},   {25, 31, 64},  {7, 100, 1025},
                      {37, 64, 2051}, {130, 17, 31}, {3, 70, 3000},  {24, 96, 1024}, {11, 45, 4097}, {65, 7, 2048},
                      {200, 13, 34},  {64, 6, 36},   {129, 1, 3}};

template <class W>
struct Problem {
    std::int64_t M, N, K, ldx, ldo;
    std::vector<float> x, out;
    std::vector<W> w;
    Problem(const Case& c, bool integers, unsigned seed) : M(c.M), N(c.N), K(c.K), ldx(c.K + 3), ldo(c.N + 5) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> dist(-1, 1);
        std::uniform_int_distribution<int> small(-8, 8);
        x.resize(static_cast<std::size_t>(M * ldx));
        w.resize(static_cast<std::size_t>(N * K));
        for (float& v : x) v = integers ? float(small(rng)) : dist(rng);
        for (W& v : w) v = W(integers ? float(small(rng)) : dist(rng));
        out.assign(static_cast<std::size_t>(M * ldo), -7.0f);
    }
    void run() { weft::cpu::gemm_bf16(M, N, K, x.data(), ldx, w.data(), out.data(), ldo); }
    // Σ_k bf16(x) · bf16(w) in double, and Σ |products|.
    std::pair<double, double> reference(std::int64_t m, std::int64_t n) const {
        double s = 0, mag = 0;
        for (std::int64_t k = 0; k < K; ++k) {
            const double p = double(float(bf16(x[m * ldx + k]))) * double(float(bf16(float(w[n * K + k]))));
            s += p;
            mag += std::abs(p);
        }
        return {s, mag};
    }
};

template <class W>
void check_integers(const Case& c) {
    CAPTURE(c.M);
    CAPTURE(c.N);
    CAPTURE(c.K);
    Problem<W> p(c, true, static_cast<unsigned>(c.M * 7 + c.N * 3 + c.K));
    p.run();
    // Small integers are bf16 values and every partial sum is an integer below 2^24: exact.
    std::int64_t wrong = 0;
    for (std::int64_t m = 0; m < c.M; ++m) {
        for (std::int64_t n = 0; n < c.N; ++n) wrong += p.out[m * p.ldo + n] != float(p.reference(m, n).first);
        for (std::int64_t n = c.N; n < p.ldo; ++n) REQUIRE(p.out[m * p.ldo + n] == -7.0f);  // padding untouched
    }
    CHECK(wrong == 0);
}

template <class W>
double max_error(const Case& c) {
    Problem<W> p(c, false, static_cast<unsigned>(c.M + c.N + c.K));
    p.run();
    double worst = 0;
    for (std::int64_t m = 0; m < c.M; ++m)
        for (std::int64_t n = 0; n < c.N; ++n) {
            const auto [want, mag] = p.reference(m, n);
            worst = std::max(worst, std::abs(p.out[m * p.ldo + n] - want) / std::max(mag, 1e-30));
        }
    return worst;
}

}  // namespace

TEST_CASE("gemm_bf16 is exact on integer data for bf16 and f16 weights on awkward sizes") {
    for (const Case& c : cases) {
        check_integers<bf16>(c);
        check_integers<f16>(c);
    }
}

TEST_CASE("gemm_bf16 matches the double reference on the bf16-rounded inputs") {
    double worst = 0;
    for (const Case& c : cases) {
        worst = std::max(worst, max_error<bf16>(c));
        worst = std::max(worst, max_error<f16>(c));
    }
    MESSAGE("gemm_bf16: max error relative to the summed magnitudes " << worst);
    CHECK(worst <= 1e-6);
}

TEST_CASE("gemm_bf16 rounds activations to the nearest bf16, ties to even") {
    // x = 1 + 2^-8 (a tie: rounds to 1), 1 + 3·2^-8 (a tie: rounds to 1 + 2^-6), 1 + 2^-8 + 2^-20
    // (above the tie: rounds up to 1 + 2^-7); w = 1.
    const float xs[3] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f};
    const float want[3] = {1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f};
    const bf16 one(1.0f);
    for (int i = 0; i < 3; ++i) {
        float out = 0;
        weft::cpu::gemm_bf16(1, 1, 1, &xs[i], 1, &one, &out, 1);
        CHECK(out == want[i]);
    }
}

template <class W>
void check_deterministic(const Case& c) {
    CAPTURE(c.K);
    Problem<W> p(c, false, 99);
    auto run = [&] {
        p.out.assign(p.out.size(), 0.0f);
        p.run();
        return p.out;
    };
    const auto one = weft_test::with_threads(1, run), two = weft_test::with_threads(2, run), three = weft_test::with_threads(3, run);
    CHECK(one == two);
    CHECK(one == three);
    // Row 29 alone (M = 1) equals row 29 of the batch.
    std::vector<float> row(static_cast<std::size_t>(c.N));
    weft::cpu::gemm_bf16(1, c.N, c.K, p.x.data() + 29 * p.ldx, p.ldx, p.w.data(), row.data(), c.N);
    for (std::int64_t n = 0; n < c.N; ++n) REQUIRE(row[static_cast<std::size_t>(n)] == one[static_cast<std::size_t>(29 * p.ldo + n)]);
}

TEST_CASE("gemm_bf16 rows are bit-identical for any thread count and batch") {
    check_deterministic<f16>({37, 100, 2051});   // rows rounded into the buffer
    check_deterministic<bf16>({70, 100, 2048});  // rows read in place
}

TEST_CASE("gemm_bf16 reads bf16 weights in place at any 2-byte alignment") {
    // Weights from a file (safetensors) may start at any even byte: the pairs read in place are
    // then not 4-byte aligned. The same bits as from an aligned copy.
    const Case c{70, 13, 64};
    Problem<bf16> p(c, false, 5);
    p.run();
    std::vector<bf16> shifted(p.w.size() + 1);
    std::copy(p.w.begin(), p.w.end(), shifted.begin() + 1);
    std::vector<float> out(p.out.size(), -7.0f);
    weft::cpu::gemm_bf16(p.M, p.N, p.K, p.x.data(), p.ldx, shifted.data() + 1, out.data(), p.ldo);
    CHECK(out == p.out);
}

TEST_CASE("gemm_bf16 rejects bad sizes and strides") {
    float x = 0, out = 0;
    const bf16 w(0.0f);
    CHECK_THROWS_WITH_AS(weft::cpu::gemm_bf16(-1, 1, 1, &x, 1, &w, &out, 1), doctest::Contains("non-negative"), weft::Error);
    CHECK_THROWS_WITH_AS(weft::cpu::gemm_bf16(2, 1, 4, &x, 3, &w, &out, 1), doctest::Contains("x row stride 3 is smaller than K = 4"),
                         weft::Error);
    CHECK_THROWS_WITH_AS(weft::cpu::gemm_bf16(1, 1, 1, &x, 1, static_cast<const bf16*>(nullptr), &out, 1), doctest::Contains("null"),
                         weft::Error);
}

}  // namespace test_gemm_bf16

#endif  // WEFT_GEMM_BF16
