// nn/moe.hpp against plain double-precision references on random data with awkward sizes:
// LinearInOut (x · W for W stored [in, out], f32/f16/bf16, column blocks of a wider matrix),
// Experts in Hugging Face's fused [in, out] and GGUF's [out, in] layouts, and the MoE block
// (router top-k, sigmoid scores applied before the expert, shared expert).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <weft/nn/moe.hpp>

#include "../helpers.hpp"

namespace test_moe {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using namespace weft_test;
namespace nn = weft::nn;

namespace {

double silu(double g) { return g / (1 + std::exp(-g)); }

// Relative to the sum of |terms|: the scale a float sum's rounding error is measured on.
struct Ref {
    std::vector<double> value, mag;
};

// x [M, K] · W[:, col .. col+N) for W [K, ld] (stored values of dtype W).
template <class W>
Ref ref_in_out(const Tensor<float>& x, const Tensor<W>& w, Index col, Index N) {
    Ref r;
    for (Index m = 0; m < x.shape()[0]; ++m)
        for (Index n = 0; n < N; ++n) {
            double s = 0, a = 0;
            for (Index k = 0; k < x.shape()[1]; ++k) {
                const double p = double(x(m, k)) * double(static_cast<float>(w(k, col + n)));
                s += p;
                a += std::abs(p);
            }
            r.value.push_back(s);
            r.mag.push_back(a);
        }
    return r;
}

double rel_error(const std::vector<double>& got, const Ref& want) {
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want.value[i]) / std::max(want.mag[i], 1e-30));
    return worst;
}

template <class W>
void check_linear_in_out(Index M, Index K, Index N, Index col, Index ld) {
    Tensor<float> x = random_tensor(Shape{M, K});
    Tensor<W> w = weft::cast<W>(random_tensor(Shape{K, ld}));
    nn::LinearInOut layer(weft::Weight::of(w, "w"), N, col);
    Tensor<float> y(Shape{M, N});
    layer.forward(x, y.view());
    CHECK(rel_error(to_doubles(y), ref_in_out(x, w, col, N)) <= 1e-6);
    // Each row alone gives the same bits as in the batch (decode GEMV vs prefill GEMM).
    for (Index m : {Index(0), M - 1}) {
        Tensor<float> one(Shape{1, N});
        layer.forward(x.slice(0, m, m + 1), one.view());
        for (Index n = 0; n < N; ++n) REQUIRE(one(0, n) == y(m, n));
    }
}

// Double reference of a SwiGLU expert given by element accessors g(j, k), u(j, k), d(i, j):
// out[i] = Σ_j silu(Σ_k x_k g(j,k)) (Σ_k x_k u(j,k)) d(i, j).
template <class G, class U, class D>
std::vector<double> ref_expert(const std::vector<double>& x, Index hidden, G g, U u, D d) {
    const Index dim = static_cast<Index>(x.size());
    std::vector<double> a(static_cast<std::size_t>(hidden)), out(static_cast<std::size_t>(dim), 0.0);
    for (Index j = 0; j < hidden; ++j) {
        double gs = 0, us = 0;
        for (Index k = 0; k < dim; ++k) gs += x[k] * g(j, k), us += x[k] * u(j, k);
        a[j] = silu(gs) * us;
    }
    for (Index i = 0; i < dim; ++i)
        for (Index j = 0; j < hidden; ++j) out[i] += a[j] * d(i, j);
    return out;
}

// A random MoE in Hugging Face's layout with its weights kept for the reference.
struct RandomMoE {
    Index E, dim, hidden, k;
    Tensor<float> router, gate_up, down, sg, su, sd;
    RandomMoE(Index E_, Index dim_, Index hidden_, Index k_) : E(E_), dim(dim_), hidden(hidden_), k(k_) {
        router = random_tensor(Shape{E, dim}, -1.0f, 1.0f);
        gate_up = random_tensor(Shape{E, dim, 2 * hidden}, -0.3f, 0.3f);
        down = random_tensor(Shape{E, hidden, dim}, -0.3f, 0.3f);
        sg = random_tensor(Shape{hidden, dim}, -0.3f, 0.3f);
        su = random_tensor(Shape{hidden, dim}, -0.3f, 0.3f);
        sd = random_tensor(Shape{dim, hidden}, -0.3f, 0.3f);
    }
    nn::MoE block(bool shared = true) const {
        nn::SwiGLU s;
        if (shared) s = nn::SwiGLU(nn::Linear(weft::Weight::of(sg)), nn::Linear(weft::Weight::of(su)), nn::Linear(weft::Weight::of(sd)));
        return nn::MoE(nn::Linear(weft::Weight::of(router, "router")),
                       nn::Experts::fused_in_out(weft::Weight::of(gate_up, "gate_up"), weft::Weight::of(down, "down")), k, std::move(s));
    }
    // Hugging Face's Llama4TextMoe in double: all experts on x·score (score 0 off the top k).
    std::vector<double> reference(const Tensor<float>& x, bool shared = true) const {
        std::vector<double> out;
        for (Index t = 0; t < x.shape()[0]; ++t) {
            std::vector<double> xt(static_cast<std::size_t>(dim)), logit(static_cast<std::size_t>(E));
            for (Index i = 0; i < dim; ++i) xt[i] = x(t, i);
            for (Index e = 0; e < E; ++e) {
                logit[e] = 0;
                for (Index i = 0; i < dim; ++i) logit[e] += xt[i] * router(e, i);
            }
            std::vector<double> score(static_cast<std::size_t>(E), 0.0), sorted = logit;
            std::sort(sorted.rbegin(), sorted.rend());
            for (Index e = 0; e < E; ++e)
                if (logit[e] >= sorted[static_cast<std::size_t>(k - 1)]) score[e] = 1 / (1 + std::exp(-logit[e]));
            std::vector<double> y(static_cast<std::size_t>(dim), 0.0);
            if (shared)
                y = ref_expert(xt, hidden, [&](Index j, Index i) { return double(sg(j, i)); }, [&](Index j, Index i) { return double(su(j, i)); },
                               [&](Index i, Index j) { return double(sd(i, j)); });
            for (Index e = 0; e < E; ++e) {
                std::vector<double> xe = xt;
                for (double& v : xe) v *= score[e];
                const auto ye = ref_expert(xe, hidden, [&](Index j, Index i) { return double(gate_up(e, i, j)); },
                                           [&](Index j, Index i) { return double(gate_up(e, i, hidden + j)); },
                                           [&](Index i, Index j) { return double(down(e, j, i)); });
                for (Index i = 0; i < dim; ++i) y[i] += ye[i];
            }
            out.insert(out.end(), y.begin(), y.end());
        }
        return out;
    }
};

}  // namespace

TEST_CASE("LinearInOut computes x · W for W stored [in, out], whole or a column block, in f32, f16 and bf16") {
    for (const auto& sizes : {std::array<Index, 5>{1, 33, 7, 0, 7}, {3, 40, 44, 0, 44}, {1, 257, 100, 31, 200}, {8, 64, 130, 3, 133},
                              {9, 31, 65, 65, 130}, {20, 100, 33, 0, 66}}) {
        const Index M = sizes[0], K = sizes[1], N = sizes[2], col = sizes[3], ld = sizes[4];  // CAPTURE cannot take bindings
        CAPTURE(M);
        CAPTURE(K);
        CAPTURE(N);
        CAPTURE(col);
        check_linear_in_out<float>(M, K, N, col, ld);
        check_linear_in_out<weft::f16>(M, K, N, col, ld);
        check_linear_in_out<weft::bf16>(M, K, N, col, ld);
    }
}

TEST_CASE("LinearInOut is bit-identical for 1 and 2 threads, and names both shapes when they do not fit") {
    Tensor<float> x = random_tensor(Shape{3, 300});
    Tensor<weft::bf16> w = weft::cast<weft::bf16>(random_tensor(Shape{300, 777}));
    nn::LinearInOut layer(weft::Weight::of(w, "experts.gate_up_proj[2]"));
    auto run = [&](Index rows) {
        Tensor<float> y(Shape{rows, 777});
        layer.forward(x.slice(0, 0, rows), y.view());
        return bits_of(y);
    };
    CHECK(with_threads(1, [&] { return run(3); }) == with_threads(2, [&] { return run(3); }));
    CHECK(with_threads(1, [&] { return run(1); }) == with_threads(2, [&] { return run(1); }));
    Tensor<float> y(Shape{3, 777});
    CHECK_THROWS_WITH_AS(layer.forward(Tensor<float>(Shape{3, 299}), y.view()),
                         "LinearInOut 'experts.gate_up_proj[2]': input of shape [3, 299] for weight [300, 777] (expected [rows, 300] with contiguous rows)",
                         weft::Error);
    CHECK_THROWS_WITH_AS(nn::LinearInOut(weft::Weight::of(w, "w"), 400, 400),
                         "LinearInOut: columns 400..799 of weight 'w' of shape [300, 777]", weft::Error);
}

TEST_CASE("Experts in the fused [in, out] and the GGUF [out, in] layouts compute the same SwiGLU experts") {
    const Index E = 3, dim = 37, F = 19;
    Tensor<float> gate_up = random_tensor(Shape{E, dim, 2 * F}, -0.5f, 0.5f), down = random_tensor(Shape{E, F, dim}, -0.5f, 0.5f);
    // The same values as GGUF stores them: gate, up [E, F, dim], down [E, dim, F].
    Tensor<float> gate(Shape{E, F, dim}), up(Shape{E, F, dim}), down_t(Shape{E, dim, F});
    for (Index e = 0; e < E; ++e)
        for (Index j = 0; j < F; ++j)
            for (Index i = 0; i < dim; ++i) {
                gate(e, j, i) = gate_up(e, i, j);
                up(e, j, i) = gate_up(e, i, F + j);
                down_t(e, i, j) = down(e, j, i);
            }
    const auto fused = nn::Experts::fused_in_out(weft::Weight::of(gate_up), weft::Weight::of(down));
    const auto gguf = nn::Experts::out_in(weft::Weight::of(gate), weft::Weight::of(up), weft::Weight::of(down_t));
    CHECK(fused.count() == E);
    CHECK(gguf.hidden() == F);
    CHECK(fused.bytes_per_expert() == 3 * F * dim * 4);
    CHECK(gguf.bytes_per_expert() == fused.bytes_per_expert());
    Tensor<float> x = random_tensor(Shape{11, dim}), a(Shape{11, dim}), b(Shape{11, dim}), act;
    for (Index e = 0; e < E; ++e) {
        fused.forward(e, x, act, a.view());
        gguf.forward(e, x, act, b.view());
        CHECK(bits_of(a) == bits_of(b));  // f32: both are the same FMA chains
        std::vector<double> want;
        for (Index t = 0; t < 11; ++t) {
            std::vector<double> xt;
            for (Index i = 0; i < dim; ++i) xt.push_back(x(t, i));
            const auto y = ref_expert(xt, F, [&](Index j, Index i) { return double(gate_up(e, i, j)); },
                                      [&](Index j, Index i) { return double(gate_up(e, i, F + j)); }, [&](Index i, Index j) { return double(down(e, j, i)); });
            want.insert(want.end(), y.begin(), y.end());
        }
        CHECK(max_rel_error(to_doubles(a), want, 1.0) <= 1e-5);
    }
    // bf16 weights in both layouts agree to rounding (the [out, in] GEMV sums in SIMD lanes).
    Tensor<weft::bf16> gub = weft::cast<weft::bf16>(gate_up), db = weft::cast<weft::bf16>(down);
    Tensor<weft::bf16> gb = weft::cast<weft::bf16>(gate), ub = weft::cast<weft::bf16>(up), dtb = weft::cast<weft::bf16>(down_t);
    const auto fused16 = nn::Experts::fused_in_out(weft::Weight::of(gub), weft::Weight::of(db));
    const auto gguf16 = nn::Experts::out_in(weft::Weight::of(gb), weft::Weight::of(ub), weft::Weight::of(dtb));
    CHECK(fused16.bytes_per_expert() == 3 * F * dim * 2);
    for (Index rows : {1, 11}) {
        fused16.forward(1, x.slice(0, 0, rows), act, a.slice(0, 0, rows));
        gguf16.forward(1, x.slice(0, 0, rows), act, b.slice(0, 0, rows));
        CHECK(max_rel_error(to_doubles(a.slice(0, 0, rows)), to_doubles(b.slice(0, 0, rows)), 1.0) <= 1e-5);
    }
    CHECK_THROWS_WITH_AS(nn::Experts::fused_in_out(weft::Weight::of(gate_up, "gu"), weft::Weight::of(down_t, "d")),
                         "Experts: gate_up 'gu' [3, 37, 38] and down 'd' [3, 37, 19] do not fit together (expected [E, dim, 2·hidden] and [E, hidden, dim])",
                         weft::Error);
}

TEST_CASE("MoE routes each token to its top-k experts, scales the input by sigmoid(logit) and adds the shared expert") {
    for (const auto& sizes : {std::array<Index, 5>{4, 37, 19, 1, 13}, {5, 40, 22, 2, 9}, {6, 33, 17, 3, 1}, {16, 24, 8, 1, 40}}) {
        const Index E = sizes[0], dim = sizes[1], hidden = sizes[2], k = sizes[3], T = sizes[4];  // CAPTURE cannot take bindings
        CAPTURE(E);
        CAPTURE(k);
        CAPTURE(T);
        RandomMoE r(E, dim, hidden, k);
        Tensor<float> x = random_tensor(Shape{T, dim}), out(Shape{T, dim}), no_shared(Shape{T, dim});
        nn::MoEScratch s;
        r.block().forward(x, s, out.view());
        CHECK(max_rel_error(to_doubles(out), r.reference(x), 1.0) <= 1e-5);
        // Switching the shared expert off changes the output by exactly what it added.
        r.block(false).forward(x, s, no_shared.view());
        CHECK(max_rel_error(to_doubles(no_shared), r.reference(x, false), 1.0) <= 1e-5);
        CHECK(max_rel_error(to_doubles(no_shared), to_doubles(out), 1.0) > 1e-2);
        // Every token alone (decoding) gives the bits it gets in the batch.
        for (Index t = 0; t < T; ++t) {
            Tensor<float> one(Shape{1, dim});
            r.block().forward(x.slice(0, t, t + 1), s, one.view());
            for (Index i = 0; i < dim; ++i) REQUIRE(one(0, i) == out(t, i));
        }
        CHECK(r.block().active_bytes_per_token() == 4 * static_cast<std::uint64_t>(E * dim + 3 * hidden * dim + k * 3 * hidden * dim));
    }
}

TEST_CASE("MoE reads only the chosen experts' weights") {
    // Poison every expert but the chosen ones with NaN: the output stays finite only if the block
    // never runs the others (decode reads k experts, not E).
    RandomMoE r(8, 32, 12, 2);
    Tensor<float> x = random_tensor(Shape{1, 32});
    std::vector<double> logit(8, 0.0);
    for (Index e = 0; e < 8; ++e)
        for (Index i = 0; i < 32; ++i) logit[e] += double(x(0, i)) * r.router(e, i);
    std::vector<Index> order{0, 1, 2, 3, 4, 5, 6, 7};
    std::sort(order.begin(), order.end(), [&](Index a, Index b) { return logit[a] > logit[b]; });
    const std::vector<double> want = r.reference(x);
    for (Index e : std::vector<Index>(order.begin() + 2, order.end())) {
        r.gate_up.select(0, e).fill(std::numeric_limits<float>::quiet_NaN());
        r.down.select(0, e).fill(std::numeric_limits<float>::quiet_NaN());
    }
    Tensor<float> out(Shape{1, 32});
    nn::MoEScratch s;
    r.block().forward(x, s, out.view());
    for (float v : out.span()) REQUIRE(std::isfinite(v));
    CHECK(max_rel_error(to_doubles(out), want, 1.0) <= 1e-5);
}

TEST_CASE("MoE output is bit-identical for 1 and 2 threads, and its errors name the shapes") {
    RandomMoE r(5, 40, 22, 2);
    Tensor<float> x = random_tensor(Shape{17, 40});
    auto run = [&] {
        Tensor<float> out(Shape{17, 40});
        nn::MoEScratch s;
        r.block().forward(x, s, out.view());
        return bits_of(out);
    };
    CHECK(with_threads(1, run) == with_threads(2, run));
    const auto experts = nn::Experts::fused_in_out(weft::Weight::of(r.gate_up, "gate_up"), weft::Weight::of(r.down, "down"));
    CHECK_THROWS_WITH_AS(nn::MoE(nn::Linear(weft::Weight::of(r.sg, "router")), experts, 1),
                         "MoE: router 'router' of shape [22, 40] for 5 experts of dim 40", weft::Error);
    CHECK_THROWS_WITH_AS(nn::MoE(nn::Linear(weft::Weight::of(r.router, "router")), experts, 6), "MoE: top_k 6 must be in 1..5 (the experts)",
                         weft::Error);
    Tensor<float> out(Shape{17, 39});
    nn::MoEScratch s;
    CHECK_THROWS_WITH_AS(r.block().forward(x, s, out.view()), "MoE: input of shape [17, 40] and output of shape [17, 39] for dim 40 (expected [tokens, 40] each, the output contiguous)", weft::Error);
}

}  // namespace test_moe
