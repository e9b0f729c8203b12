// The nn blocks against plain double-precision references on random data with awkward sizes:
// Linear (f32/f16/bf16 weights, bias), Embedding, RMSNorm, LayerNorm, RoPE (both pairings,
// llama3 and linear scaling, positions past 100k), attention (MHA/GQA/MQA, causal and chunked,
// prefill vs token-by-token decode) and SwiGLU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <numbers>

#include "../helpers.hpp"

namespace test_blocks {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using namespace weft_test;
namespace nn = weft::nn;

namespace {

template <class W>
double linear_error(Index M, Index N, Index K, bool bias) {
    Tensor<float> x = random_tensor(Shape{M, K});
    Tensor<W> w = weft::cast<W>(random_tensor(Shape{N, K}));
    Tensor<float> b = random_tensor(Shape{N});
    nn::Linear layer(weft::Weight::of(w, "w"), bias ? weft::Weight::of(b, "b") : weft::Weight{});
    Tensor<float> y(Shape{M, N});
    layer.forward(x, y.view());
    double worst = 0;
    for (Index m = 0; m < M; ++m)
        for (Index n = 0; n < N; ++n) {
            double s = bias ? b(n) : 0.0, mag = std::abs(s);
            for (Index k = 0; k < K; ++k) {
                const double p = double(x(m, k)) * double(static_cast<float>(w(n, k)));
                s += p;
                mag += std::abs(p);
            }
            worst = std::max(worst, std::abs(y(m, n) - s) / std::max(mag, 1e-30));
        }
    return worst;
}

}  // namespace

TEST_CASE("Linear matches the double reference for f32, f16 and bf16 weights, with and without bias") {
    for (const auto& size : {std::array<Index, 3>{1, 7, 33}, {3, 65, 31}, {17, 33, 257}, {40, 130, 64}}) {
        const Index M = size[0], N = size[1], K = size[2];  // named copies: clang 14's CAPTURE cannot take bindings
        CAPTURE(M);
        CAPTURE(N);
        CAPTURE(K);
        CHECK(linear_error<float>(M, N, K, false) <= 1e-6);
        CHECK(linear_error<float>(M, N, K, true) <= 1e-6);
        CHECK(linear_error<weft::f16>(M, N, K, true) <= 1e-6);
        CHECK(linear_error<weft::bf16>(M, N, K, false) <= 1e-6);
    }
}

TEST_CASE("Linear gives a row the same bits alone or in a batch of the same kernel") {
    // f32 weights: one FMA chain per output for every batch size. 16-bit weights: batches of up to
    // gemv_max_rows share the decode GEMV (bit-identical); larger batches take the widening GEMM,
    // whose summation order differs (equal to rounding).
    for (int dtype = 0; dtype < 3; ++dtype) {
        CAPTURE(dtype);
        Tensor<float> x = random_tensor(Shape{21, 100});
        Tensor<float> wf = random_tensor(Shape{77, 100});
        Tensor<weft::bf16> wb = weft::cast<weft::bf16>(wf);
        Tensor<weft::f16> wh = weft::cast<weft::f16>(wf);
        const weft::Weight w = dtype == 0 ? weft::Weight::of(wf) : dtype == 1 ? weft::Weight::of(wb) : weft::Weight::of(wh);
        nn::Linear layer(w);
        Tensor<float> all(Shape{21, 77}), few(Shape{5, 77}), one(Shape{1, 77});
        layer.forward(x, all.view());
        layer.forward(x.slice(0, 0, 5), few.view());
        for (Index m : {0, 3, 4}) {
            layer.forward(x.slice(0, m, m + 1), one.view());
            for (Index n = 0; n < 77; ++n) {
                REQUIRE(one(0, n) == few(m, n));
                if (dtype == 0) REQUIRE(one(0, n) == all(m, n));
                else REQUIRE(one(0, n) == doctest::Approx(all(m, n)).epsilon(1e-5).scale(10));
            }
        }
    }
}

TEST_CASE("Linear with 16-bit weights under MatmulPrecision::fast: prompts within the bf16 rounding bound, decoding exact") {
    // Batches above gemv_max_rows round x (and f16 weights) to bf16 where the CPU has bf16 dot
    // products: each product is then off by at most 2^-9 relative per rounded factor, so the error
    // is at most 2^-9 (bf16 weights) or 2^-8 (f16) of Σ|x·w|, plus f32 summation. Decode batches
    // stay exact. Rows of a prompt do not depend on the other rows.
    ScopedPrecision fast(weft::MatmulPrecision::fast);
#if !defined(WEFT_GEMM_BF16)
    MESSAGE("this build does not target AVX512-BF16: MatmulPrecision::fast runs the exact path");
#endif
    for (const auto& size : {std::array<Index, 3>{3, 65, 31}, {9, 33, 257}, {40, 130, 64}, {17, 31, 1031}}) {
        const Index M = size[0], N = size[1], K = size[2];
        CAPTURE(M);
        CAPTURE(N);
        CAPTURE(K);
        const bool prompt = M > nn::Linear::gemv_max_rows;
        CHECK(linear_error<weft::bf16>(M, N, K, true) <= (prompt ? 0x1p-9 + 1e-6 : 1e-6));
        CHECK(linear_error<weft::f16>(M, N, K, false) <= (prompt ? 0x1p-8 + 1e-5 : 1e-6));
    }
    Tensor<float> x = random_tensor(Shape{30, 100});
    const Tensor<weft::f16> w = weft::cast<weft::f16>(random_tensor(Shape{77, 100}));
    nn::Linear layer(weft::Weight::of(w));
    Tensor<float> all(Shape{30, 77}), some(Shape{12, 77});
    layer.forward(x, all.view());
    layer.forward(x.slice(0, 10, 22), some.view());
    for (Index m = 0; m < 12; ++m)
        for (Index n = 0; n < 77; ++n) REQUIRE(some(m, n) == all(m + 10, n));
}

TEST_CASE("Linear::unit names the kernel forward() takes for a batch") {
    using weft::DType;
    using U = nn::MatmulUnit;
    const Index decode = nn::Linear::gemv_max_rows, prompt = 128;
    for (DType t : {DType::f16, DType::bf16, DType::q4_0, DType::q8_0, DType::q4_k, DType::q4_0x16}) CHECK(nn::Linear::unit(t, decode) == U::gemv);
    CHECK(nn::Linear::unit(DType::f32, prompt) == U::f32_fma);
    const U int8 = nn::Linear::unit(DType::q4_0, prompt);
    CHECK((int8 == U::int8_dot || (int8 == U::amx_tiles && weft::cpu::quant_gemm_uses_amx(DType::q4_0, prompt))));
    CHECK(nn::Linear::unit(DType::q6_k, prompt) == U::int8_dot);  // Q6_K stays off the tiles
    CHECK(nn::Linear::unit(DType::q6_kx16, prompt) == U::int8_dot);  // interleaved: as its GGUF type
    CHECK(nn::Linear::unit(DType::q4_0x16, prompt) == int8);
    const U exact = nn::Linear::unit(DType::f16, prompt);
    U fast = U::gemv;
    {
        ScopedPrecision p(weft::MatmulPrecision::fast);
        fast = nn::Linear::unit(DType::f16, prompt);
    }
#if defined(WEFT_GEMM16_AMX)
    if (weft::cpu::gemm16_amx_available()) {
        CHECK(exact == U::amx_tiles);
        CHECK(fast == U::amx_tiles);
        return;
    }
#endif
    CHECK(exact == U::f32_fma);
#if defined(WEFT_GEMM_BF16)
    CHECK(fast == U::bf16_dot);
#else
    CHECK(fast == U::f32_fma);
#endif
}

TEST_CASE("Linear rejects mismatched shapes with both shapes in the message") {
    Tensor<float> w(Shape{4, 6});
    nn::Linear layer(weft::Weight::of(w, "blk.0.q"));
    Tensor<float> x(Shape{2, 5}), y(Shape{2, 4});
    CHECK_THROWS_WITH_AS(layer.forward(x, y.view()),
                         "Linear 'blk.0.q': input of shape [2, 5] for weight [4, 6] (expected [rows, 6] with contiguous rows)", weft::Error);
}

TEST_CASE("Embedding gathers rows in f32 from any float table and rejects ids outside the vocabulary") {
    Tensor<weft::bf16> table = weft::cast<weft::bf16>(random_tensor(Shape{11, 7}));
    nn::Embedding embed(weft::Weight::of(table, "tok"));
    Tensor<float> out(Shape{3, 7});
    const std::int32_t ids[] = {10, 0, 10};
    embed.forward(ids, out.view());
    for (Index j = 0; j < 7; ++j) {
        CHECK(out(0, j) == static_cast<float>(table(10, j)));
        CHECK(out(1, j) == static_cast<float>(table(0, j)));
    }
    const std::int32_t bad[] = {11};
    Tensor<float> one(Shape{1, 7});
    CHECK_THROWS_WITH_AS(embed.forward(bad, one.view()), "Embedding: token id 11 is outside the vocabulary of 11", weft::Error);
}

TEST_CASE("Embedding dequantizes one row of a quantized table (Q8_0, Q4_K) exactly as dequantize_row does") {
    for (weft::DType type : {weft::DType::q8_0, weft::DType::q4_k}) {
        CAPTURE(type);
        const Index vocab = 5, dim = 512, row_bytes = dim / Index(weft::block_size(type)) * Index(weft::block_bytes(type));
        std::vector<std::uint8_t> bytes(static_cast<std::size_t>(vocab * row_bytes));
        std::uint32_t state = 12345;
        for (auto& b : bytes) b = static_cast<std::uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
        // Every block begins with its f16 scale(s): make them small and finite.
        for (Index off = 0; off < vocab * row_bytes; off += Index(weft::block_bytes(type))) {
            const std::uint16_t d = weft::float_to_f16_bits(0.01f + 0.001f * float(off % 7));
            std::memcpy(&bytes[static_cast<std::size_t>(off)], &d, 2);
            if (type == weft::DType::q4_k) std::memcpy(&bytes[static_cast<std::size_t>(off) + 2], &d, 2);
        }
        nn::Embedding embed(weft::Weight(type, bytes.data(), Shape{vocab, dim}, "token_embd"));
        Tensor<float> out(Shape{2, dim});
        const std::int32_t ids[] = {4, 1};
        embed.forward(ids, out.view());
        std::vector<float> expected(static_cast<std::size_t>(dim));
        for (int i = 0; i < 2; ++i) {
            weft::quant::dequantize_row(type, bytes.data() + ids[i] * row_bytes, expected.data(), dim);
            for (Index j = 0; j < dim; ++j) REQUIRE(out(i, j) == expected[static_cast<std::size_t>(j)]);
        }
    }
}

TEST_CASE("RMSNorm and LayerNorm match the double reference on awkward widths") {
    for (Index n : awkward_sizes) {
        CAPTURE(n);
        Tensor<float> x = random_tensor(Shape{3, n}, -3, 3);
        Tensor<float> w = random_tensor(Shape{n});
        Tensor<weft::bf16> wb = weft::cast<weft::bf16>(w);
        Tensor<float> b = random_tensor(Shape{n});
        Tensor<float> y(Shape{3, n}), yb(Shape{3, n}), z(Shape{3, n});
        nn::RMSNorm(weft::Weight::of(w), 1e-6f).forward(x, y.view());
        nn::RMSNorm(weft::Weight::of(wb), 1e-6f).forward(x, yb.view());
        nn::LayerNorm(weft::Weight::of(w), weft::Weight::of(b), 1e-5f).forward(x, z.view());
        double worst_rms = 0, worst_rms_b = 0, worst_ln = 0;
        for (Index r = 0; r < 3; ++r) {
            double ss = 0, mean = 0, var = 0;
            for (Index j = 0; j < n; ++j) ss += double(x(r, j)) * x(r, j), mean += x(r, j);
            mean /= n;
            for (Index j = 0; j < n; ++j) var += (x(r, j) - mean) * (x(r, j) - mean);
            var /= n;
            const double inv = 1 / std::sqrt(ss / n + 1e-6), inv_std = 1 / std::sqrt(var + 1e-5);
            for (Index j = 0; j < n; ++j) {
                const double want = x(r, j) * inv * w(j);
                const double want_b = x(r, j) * inv * static_cast<float>(wb(j));
                const double want_ln = (x(r, j) - mean) * inv_std * w(j) + b(j);
                worst_rms = std::max(worst_rms, std::abs(y(r, j) - want) / (std::abs(x(r, j) * inv * w(j)) + 1e-3));
                worst_rms_b = std::max(worst_rms_b, std::abs(yb(r, j) - want_b) / (std::abs(want_b) + 1e-3));
                worst_ln = std::max(worst_ln, std::abs(z(r, j) - want_ln) / (std::abs((x(r, j) - mean) * inv_std * w(j)) + std::abs(b(j)) + 1e-3));
            }
        }
        CHECK(worst_rms <= 2e-6);
        CHECK(worst_rms_b <= 2e-6);
        CHECK(worst_ln <= 2e-6);
    }
}

TEST_CASE("RMSNorm works in place") {
    Tensor<float> x = random_tensor(Shape{4, 33});
    Tensor<float> w = random_tensor(Shape{33});
    nn::RMSNorm norm(weft::Weight::of(w), 1e-6f);
    Tensor<float> y(Shape{4, 33});
    norm.forward(x, y.view());
    norm.forward(x, x.view());
    CHECK(bits_of(x) == bits_of(y));
}

TEST_CASE("llama3 rope scaling keeps high frequencies, divides low ones and blends in between") {
    nn::RopeConfig c;
    c.head_dim = 128;
    c.theta = 500000;
    c.scaling = {nn::RopeScaling::Kind::llama3, 8.0, 1.0, 4.0, 8192};
    nn::Rope rope(c);
    int kept = 0, divided = 0, blended = 0;
    for (int j = 0; j < 64; ++j) {
        const double base = std::pow(500000.0, -2.0 * j / 128);
        const double wavelen = 2 * std::numbers::pi / base;
        double want;
        if (wavelen < 8192 / 4.0) want = base, ++kept;
        else if (wavelen > 8192 / 1.0) want = base / 8, ++divided;
        else {
            const double s = (8192 / wavelen - 1) / (4 - 1);
            want = (1 - s) * base / 8 + s * base, ++blended;
        }
        CHECK(rope.inv_freq()[j] == doctest::Approx(want).epsilon(1e-15));
    }
    CHECK(kept > 0);
    CHECK(divided > 0);
    CHECK(blended > 0);
    c.scaling = {nn::RopeScaling::Kind::linear, 4.0, 1, 4, 8192};
    CHECK(nn::Rope(c).inv_freq()[5] == doctest::Approx(std::pow(500000.0, -10.0 / 128) / 4).epsilon(1e-15));
    c.scaling = {nn::RopeScaling::Kind::llama3, 8.0, 2.0, 2.0, 8192};  // low == high: no division by zero
    const nn::Rope guarded(c);
    for (double f : guarded.inv_freq()) CHECK(std::isfinite(f));
}

TEST_CASE("rope_apply rotates both pairings like the reference, also at positions past 100k") {
    for (auto pairing : {nn::RopePairing::half_split, nn::RopePairing::interleaved}) {
        nn::RopeConfig c;
        c.head_dim = 80;
        c.theta = 10000;
        c.pairing = pairing;
        nn::Rope rope(c);
        const std::vector<Index> positions = {0, 1, 7, 4095, 131071, 250000};
        nn::RopeAngles angles;
        angles.compute(rope, positions);
        Tensor<float> x = random_tensor(Shape{6, 3, 80});
        const Tensor<float> x0 = x;
        nn::rope_apply(x.view(), angles, pairing);
        double worst = 0;
        for (Index t = 0; t < 6; ++t)
            for (Index h = 0; h < 3; ++h)
                for (Index j = 0; j < 40; ++j) {
                    const Index ia = pairing == nn::RopePairing::half_split ? j : 2 * j;
                    const Index ib = pairing == nn::RopePairing::half_split ? j + 40 : 2 * j + 1;
                    const long double angle = (long double)positions[t] * std::pow(10000.0L, -2.0L * j / 80);
                    const long double cs = std::cos(angle), sn = std::sin(angle);
                    const double a = x0(t, h, ia), b = x0(t, h, ib);
                    worst = std::max({worst, std::abs(double(x(t, h, ia) - (a * cs - b * sn))), std::abs(double(x(t, h, ib) - (a * sn + b * cs)))});
                }
        CHECK(worst <= 2e-6);  // absolute, on values of magnitude ~2: angles stay accurate at 250k
    }
}

namespace {

// Naive attention in double: every query over its visible keys with a full softmax.
std::vector<double> reference_attention(const Tensor<float>& q, const Tensor<float>& k, const Tensor<float>& v, Index start,
                                        Index kv_heads, Index chunk, float scale) {
    const Index T = q.shape()[0], H = q.shape()[1], D = q.shape()[2];
    std::vector<double> out;
    for (Index t = 0; t < T; ++t)
        for (Index h = 0; h < H; ++h) {
            const Index g = h / (H / kv_heads), pos = start + t, first = chunk ? pos / chunk * chunk : 0;
            std::vector<double> s;
            double m = -INFINITY;
            for (Index j = first; j <= pos; ++j) {
                double d = 0;
                for (Index e = 0; e < D; ++e) d += double(q(t, h, e)) * k(j, g, e);
                s.push_back(d * scale);
                m = std::max(m, s.back());
            }
            double z = 0;
            for (double& x : s) z += (x = std::exp(x - m));
            for (Index e = 0; e < D; ++e) {
                double o = 0;
                for (Index j = first; j <= pos; ++j) o += s[static_cast<std::size_t>(j - first)] / z * v(j, g, e);
                out.push_back(o);
            }
        }
    return out;
}

}  // namespace

TEST_CASE("attend matches naive attention for MHA, GQA and MQA, causal and chunked") {
    for (const auto& size : {std::array<Index, 4>{4, 4, 16, 0}, {12, 3, 80, 0}, {6, 1, 33, 0}, {4, 2, 24, 5}}) {
        const Index H = size[0], KV = size[1], D = size[2], chunk = size[3];  // named copies, for clang 14's CAPTURE
        CAPTURE(H);
        CAPTURE(KV);
        CAPTURE(chunk);
        const Index start = 3, T = 150;  // T > the 64-key tile: several tiles per query
        nn::KvCache cache(start + T, KV, D);
        Tensor<float> k = random_tensor(Shape{start + T, KV, D}), v = random_tensor(Shape{start + T, KV, D});
        cache.keys() = k;
        cache.values() = v;
        Tensor<float> q = random_tensor(Shape{T, H, D});
        nn::AttentionConfig c{H, KV, D, true, nn::RopePairing::half_split, chunk};
        Tensor<float> out(Shape{T, H * D});
        const float scale = 1.0f / std::sqrt(float(D));
        nn::attend(q, cache, start, c, scale, out.view());
        // Outputs are convex combinations of values in [-2, 2] and may cancel to ~0: the error is
        // measured on that O(1) scale (floor 1).
        CHECK(max_rel_error(to_doubles(out), reference_attention(q, k, v, start, KV, chunk, scale), 1.0) <= 2e-6);
    }
}

TEST_CASE("an Attention block gives the same bits for a prompt at once and token by token") {
    const Index dim = 40, H = 6, KV = 2, D = 12, T = 11;
    Tensor<float> wq = random_tensor(Shape{H * D, dim}, -0.3f, 0.3f), wk = random_tensor(Shape{KV * D, dim}, -0.3f, 0.3f);
    Tensor<float> wv = random_tensor(Shape{KV * D, dim}, -0.3f, 0.3f), wo = random_tensor(Shape{dim, H * D}, -0.3f, 0.3f);
    nn::AttentionConfig c{H, KV, D, true, nn::RopePairing::interleaved, 0};
    nn::Attention attn(c, nn::Linear(weft::Weight::of(wq)), nn::Linear(weft::Weight::of(wk)), nn::Linear(weft::Weight::of(wv)),
                       nn::Linear(weft::Weight::of(wo)));
    nn::RopeConfig rc;
    rc.head_dim = D;
    rc.pairing = nn::RopePairing::interleaved;
    nn::Rope rope(rc);
    Tensor<float> x = random_tensor(Shape{T, dim});

    nn::KvCache cache_a(16, KV, D), cache_b(16, KV, D);
    nn::AttentionScratch sa, sb;
    nn::RopeAngles angles;
    std::vector<Index> pos(T);
    for (Index t = 0; t < T; ++t) pos[t] = t;
    angles.compute(rope, pos);
    Tensor<float> all(Shape{T, dim});
    attn.forward(x, 0, angles, cache_a, sa, all.view());
    for (Index t = 0; t < T; ++t) {
        const Index p[] = {t};
        angles.compute(rope, p);
        Tensor<float> one(Shape{1, dim});
        attn.forward(x.slice(0, t, t + 1), t, angles, cache_b, sb, one.view());
        for (Index j = 0; j < dim; ++j) REQUIRE(one(0, j) == all(t, j));
    }
    const Index p[] = {15, 16};
    angles.compute(rope, p);
    Tensor<float> two(Shape{2, dim});
    CHECK_THROWS_WITH_AS(attn.forward(x.slice(0, 0, 2), 15, angles, cache_b, sb, two.view()),
                         "Attention: positions 15..16 exceed the KV cache capacity of 16", weft::Error);
}

TEST_CASE("SwiGLU computes down(silu(gate(x)) * up(x))") {
    const Index dim = 19, hidden = 37, T = 5;
    Tensor<float> g = random_tensor(Shape{hidden, dim}), u = random_tensor(Shape{hidden, dim}), d = random_tensor(Shape{dim, hidden});
    nn::SwiGLU mlp(nn::Linear(weft::Weight::of(g)), nn::Linear(weft::Weight::of(u)), nn::Linear(weft::Weight::of(d)));
    Tensor<float> x = random_tensor(Shape{T, dim}), out(Shape{T, dim}), gb, ub;
    mlp.forward(x, gb, ub, out.view());
    std::vector<double> want, mag;
    for (Index t = 0; t < T; ++t) {
        std::vector<double> a(hidden);
        for (Index j = 0; j < hidden; ++j) {
            double gs = 0, us = 0;
            for (Index k = 0; k < dim; ++k) gs += double(x(t, k)) * g(j, k), us += double(x(t, k)) * u(j, k);
            a[j] = gs / (1 + std::exp(-gs)) * us;
        }
        for (Index i = 0; i < dim; ++i) {
            double o = 0, m = 0;
            for (Index j = 0; j < hidden; ++j) o += a[j] * d(i, j), m += std::abs(a[j] * d(i, j));
            want.push_back(o);
            mag.push_back(m);
        }
    }
    const auto got = to_doubles(out);
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]) / mag[i]);
    CHECK(worst <= 1e-5);
}

TEST_CASE("attend checks its arguments and names the shapes") {
    nn::KvCache cache(8, 2, 16);
    nn::AttentionConfig c{4, 2, 16, true, nn::RopePairing::half_split, 0};
    Tensor<float> q(Shape{3, 4, 16}), out(Shape{3, 64});
    CHECK_NOTHROW(nn::attend(q, cache, 0, c, 0.25f, out.view()));
    CHECK_THROWS_WITH_AS(nn::attend(Tensor<float>(Shape{3, 5, 16}), cache, 0, c, 0.25f, out.view()),
                         doctest::Contains("queries of shape [3, 5, 16] for 4 heads of dim 16"), weft::Error);
    CHECK_THROWS_WITH_AS(nn::attend(q, cache, 0, c, 0.25f, Tensor<float>(Shape{3, 60}).view()),
                         "attend: output of shape [3, 60], expected [3, 64] with contiguous rows", weft::Error);
    CHECK_THROWS_WITH_AS(nn::attend(q, cache, 6, c, 0.25f, out.view()), "attend: positions 6..8 exceed the KV cache capacity of 8",
                         weft::Error);
}

TEST_CASE("Linear::forward_group gives the same bits as one forward per layer, biases included") {
    for (int dtype = 0; dtype < 3; ++dtype)
        for (Index M : {1, 5, 12}) {
            CAPTURE(dtype);
            CAPTURE(M);
            Tensor<float> x = random_tensor(Shape{M, 75});
            Tensor<float> a = random_tensor(Shape{130, 75}), b = random_tensor(Shape{7, 75}), bias = random_tensor(Shape{7});
            Tensor<weft::bf16> ab = weft::cast<weft::bf16>(a), bb = weft::cast<weft::bf16>(b);
            Tensor<weft::f16> ah = weft::cast<weft::f16>(a), bh = weft::cast<weft::f16>(b);
            auto pick = [&](const Tensor<float>& f, const Tensor<weft::bf16>& bf, const Tensor<weft::f16>& h) {
                return dtype == 0 ? weft::Weight::of(f) : dtype == 1 ? weft::Weight::of(bf) : weft::Weight::of(h);
            };
            const nn::Linear la(pick(a, ab, ah)), lb(pick(b, bb, bh), weft::Weight::of(bias));
            Tensor<float> ya(Shape{M, 130}), yb(Shape{M, 7}), ga(Shape{M, 130}), gb(Shape{M, 7});
            la.forward(x, ya.view());
            lb.forward(x, yb.view());
            nn::Linear::forward_group<2>(x, {&la, &lb}, {ga.view(), gb.view()});
            CHECK(bits_of(ga) == bits_of(ya));
            CHECK(bits_of(gb) == bits_of(yb));
        }
}

}  // namespace test_blocks
