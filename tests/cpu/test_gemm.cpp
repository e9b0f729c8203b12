// Tests for weft/cpu/gemm.hpp: gemm_f32 against a double-precision triple loop on awkward sizes
// and layouts, bit-exact against gemm_f32_reference, and bit-identical for any thread count.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "weft/core/threading.hpp"
#include "weft/cpu/gemm.hpp"

namespace test_gemm {

namespace {

using dim = std::ptrdiff_t;

// One problem: operands with explicit strides, so a test can lay them out any way it likes.
struct Problem {
    dim M, N, K;
    std::vector<float> a, b, c;
    dim a_rs, a_cs, b_rs, b_cs, ldc;
};

enum class Layout { nt, nn, nt_transposed_a, generic };

// Random operands in [-1, 1); C is pre-filled with noise so overwrite vs accumulate is visible.
// nt: B = W^T with W: [N, K] row-major.  nn: B: [K, N] row-major.
// nt_transposed_a: like nt but A stored [K, M] (a_rs = 1).  generic: no unit stride anywhere.
Problem make_problem(dim M, dim N, dim K, Layout layout, dim ldc_pad = 0, unsigned seed = 1) {
    Problem p{M, N, K, {}, {}, {}, 0, 0, 0, 0, N + ldc_pad};
    std::mt19937 rng(seed * 7919u + static_cast<unsigned>(M * 131 + N * 17 + K));
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    switch (layout) {
        case Layout::nt: p.a_rs = K, p.a_cs = 1, p.b_rs = 1, p.b_cs = K; break;
        case Layout::nn: p.a_rs = K, p.a_cs = 1, p.b_rs = N, p.b_cs = 1; break;
        case Layout::nt_transposed_a: p.a_rs = 1, p.a_cs = M, p.b_rs = 1, p.b_cs = K; break;
        case Layout::generic: p.a_rs = 2 * K, p.a_cs = 2, p.b_rs = 3, p.b_cs = 3 * K; break;
    }
    const dim a_size = (M - 1) * p.a_rs + (K - 1) * p.a_cs + 1;
    const dim b_size = (K - 1) * p.b_rs + (N - 1) * p.b_cs + 1;
    p.a.resize(static_cast<std::size_t>(std::max<dim>(a_size, 1)));
    p.b.resize(static_cast<std::size_t>(std::max<dim>(b_size, 1)));
    p.c.resize(static_cast<std::size_t>(M * p.ldc));
    for (float& x : p.a) x = dist(rng);
    for (float& x : p.b) x = dist(rng);
    for (float& x : p.c) x = dist(rng);
    return p;
}

std::vector<float> run_gemm(const Problem& p, bool accumulate) {
    std::vector<float> c = p.c;
    weft::cpu::gemm_f32(p.M, p.N, p.K, p.a.data(), p.a_rs, p.a_cs, p.b.data(), p.b_rs, p.b_cs,
                        c.data(), p.ldc, accumulate);
    return c;
}

std::vector<float> run_reference(const Problem& p, bool accumulate) {
    std::vector<float> c = p.c;
    weft::cpu::gemm_f32_reference(p.M, p.N, p.K, p.a.data(), p.a_rs, p.a_cs, p.b.data(), p.b_rs,
                                  p.b_cs, c.data(), p.ldc, accumulate);
    return c;
}

// Checks c against a double-precision triple loop: |c - exact| <= 1e-5 * (|c0| + sum_k |a||b|),
// the scale f32 rounding errors grow with. Padding columns past N must be untouched.
void check_against_double(const Problem& p, const std::vector<float>& c, bool accumulate) {
    double worst = 0.0;
    for (dim m = 0; m < p.M; ++m) {
        for (dim n = 0; n < p.N; ++n) {
            const float c0 = p.c[static_cast<std::size_t>(m * p.ldc + n)];
            double exact = accumulate ? c0 : 0.0, scale = accumulate ? std::fabs(c0) : 0.0;
            for (dim k = 0; k < p.K; ++k) {
                const double prod = double(p.a[static_cast<std::size_t>(m * p.a_rs + k * p.a_cs)]) *
                                    double(p.b[static_cast<std::size_t>(k * p.b_rs + n * p.b_cs)]);
                exact += prod;
                scale += std::fabs(prod);
            }
            const double err = std::fabs(double(c[static_cast<std::size_t>(m * p.ldc + n)]) - exact);
            worst = std::max(worst, err / std::max(scale, 1e-30));
        }
        for (dim n = p.N; n < p.ldc; ++n)
            REQUIRE(c[static_cast<std::size_t>(m * p.ldc + n)] == p.c[static_cast<std::size_t>(m * p.ldc + n)]);
    }
    INFO("M=", p.M, " N=", p.N, " K=", p.K, " worst relative error ", worst);
    CHECK(worst <= 1e-5);
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](float u, float v) {
               return std::memcmp(&u, &v, sizeof(float)) == 0;
           });
}

// Restores the thread count a test changed, even when a check fails.
struct ThreadCountGuard {
    int saved = weft::num_threads();
    ~ThreadCountGuard() { weft::set_num_threads(saved); }
};

const dim kMs[] = {1, 2, 3, 7, 17, 33, 130};
const dim kSizes[] = {1, 7, 31, 33, 257, 1023};

// Keeps the size sweep inside the time budget: skips the largest products.
bool affordable(dim M, dim N, dim K) { return M * N * K <= 20'000'000; }

}  // namespace

TEST_CASE("gemm_f32 matches the double-precision triple loop in the nt layout (B = W^T)") {
    for (dim M : kMs)
        for (dim N : kSizes)
            for (dim K : kSizes) {
                if (!affordable(M, N, K)) continue;
                const Problem p = make_problem(M, N, K, Layout::nt);
                check_against_double(p, run_gemm(p, false), false);
            }
}

TEST_CASE("gemm_f32 matches the double-precision triple loop in the nn layout (B: [K, N])") {
    for (dim M : kMs)
        for (dim N : kSizes)
            for (dim K : kSizes) {
                if (!affordable(M, N, K)) continue;
                const Problem p = make_problem(M, N, K, Layout::nn);
                check_against_double(p, run_gemm(p, false), false);
            }
}

TEST_CASE("gemm_f32 handles a transposed A and fully strided operands") {
    for (dim M : kMs)
        for (dim N : {7, 33, 257})
            for (dim K : {1, 31, 257}) {
                const Problem t = make_problem(M, N, K, Layout::nt_transposed_a);
                check_against_double(t, run_gemm(t, false), false);
                const Problem g = make_problem(M, N, K, Layout::generic);
                check_against_double(g, run_gemm(g, false), false);
            }
}

TEST_CASE("gemm_f32 writes only N columns of each C row when ldc > N") {
    for (dim M : {1, 3, 17, 130})
        for (Layout layout : {Layout::nt, Layout::nn}) {
            const Problem p = make_problem(M, 33, 257, layout, /*ldc_pad=*/5);
            check_against_double(p, run_gemm(p, false), false);  // also checks the padding
        }
}

TEST_CASE("gemm_f32 with accumulate adds to C instead of overwriting it") {
    for (dim M : {1, 2, 7, 33, 130})
        for (Layout layout : {Layout::nt, Layout::nn, Layout::generic}) {
            const Problem p = make_problem(M, 257, 1023, layout, /*ldc_pad=*/3);
            check_against_double(p, run_gemm(p, true), true);
        }
}

TEST_CASE("gemm_f32 equals the reference FMA chain bit for bit on every path") {
    for (dim M : {1, 2, 5, 8, 9, 16, 17, 130})
        for (Layout layout : {Layout::nt, Layout::nn, Layout::nt_transposed_a, Layout::generic})
            for (bool accumulate : {false, true}) {
                const Problem p = make_problem(M, 75, 600, layout, /*ldc_pad=*/1);
                INFO("M=", M, " layout=", static_cast<int>(layout), " accumulate=", accumulate);
                CHECK(same_bits(run_gemm(p, accumulate), run_reference(p, accumulate)));
            }
}

TEST_CASE("gemm_f32 results are bit-identical for 1, 2 and 3 threads") {
    ThreadCountGuard guard;
    struct Case {
        dim M, N, K;
        Layout layout;
    };
    // GEMV paths (M <= 16), the packed path split by columns, and split by rows (N = 33).
    const Case cases[] = {{1, 1023, 257, Layout::nt},  {3, 1023, 257, Layout::nn},  {16, 1023, 257, Layout::nt},
                          {17, 1023, 257, Layout::nt}, {130, 1023, 257, Layout::nn}, {130, 33, 257, Layout::nt},
                          {130, 33, 257, Layout::generic}};
    for (const Case& k : cases) {
        const Problem p = make_problem(k.M, k.N, k.K, k.layout);
        weft::set_num_threads(1);
        const std::vector<float> one = run_gemm(p, false);
        for (int threads : {2, 3}) {
            weft::set_num_threads(threads);
            INFO("M=", k.M, " N=", k.N, " layout=", static_cast<int>(k.layout), " threads=", threads);
            CHECK(same_bits(run_gemm(p, false), one));
        }
    }
}

TEST_CASE("a row of C does not depend on how many rows are computed with it (batch invariance)") {
    // The first rows of a 130-row product (packed path) equal the same rows computed in a batch of
    // 1 or 9 (GEMV paths) or 17 (packed again, other tiling).
    for (Layout layout : {Layout::nt, Layout::nn}) {
        const Problem big = make_problem(130, 257, 1023, layout);
        const std::vector<float> all = run_gemm(big, false);
        for (dim rows : {1, 9, 17}) {
            Problem part = big;
            part.M = rows;
            part.c.resize(static_cast<std::size_t>(rows * part.ldc));
            const std::vector<float> some = run_gemm(part, false);
            CHECK(same_bits(some, std::vector<float>(all.begin(), all.begin() + rows * big.ldc)));
        }
    }
}

TEST_CASE("gemm_f32 with K = 0 writes zeros, or leaves C alone when accumulating") {
    std::vector<float> c(6, 5.0f);
    const float dummy = 0.0f;
    weft::cpu::gemm_f32(2, 3, 0, &dummy, 0, 1, &dummy, 3, 1, c.data(), 3, /*accumulate=*/true);
    CHECK(c == std::vector<float>(6, 5.0f));
    weft::cpu::gemm_f32(2, 3, 0, &dummy, 0, 1, &dummy, 3, 1, c.data(), 3);
    CHECK(c == std::vector<float>(6, 0.0f));
    weft::cpu::gemm_f32(0, 3, 4, nullptr, 4, 1, nullptr, 3, 1, nullptr, 3);  // empty: no work
}

TEST_CASE("gemm_f32 rejects negative sizes and overlapping C rows with weft::Error") {
    float x[16] = {};
    CHECK_THROWS_AS(weft::cpu::gemm_f32(-1, 2, 2, x, 2, 1, x, 2, 1, x, 2), weft::Error);
    CHECK_THROWS_AS(weft::cpu::gemm_f32(2, 2, -3, x, 2, 1, x, 2, 1, x, 2), weft::Error);
    CHECK_THROWS_WITH_AS(weft::cpu::gemm_f32(2, 4, 2, x, 2, 1, x, 4, 1, x, 3),
                         "gemm_f32: ldc=3 is smaller than N=4; rows of C would overlap", weft::Error);
    CHECK_THROWS_AS(weft::cpu::gemm_f32(2, 2, 2, nullptr, 2, 1, x, 2, 1, x, 2), weft::Error);
}

}  // namespace test_gemm
