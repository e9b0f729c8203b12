// tests/cuda/test_cuda.cu — every CUDA op against the CPU backend (or a float64 reference) on random
// data and awkward shapes (odd sizes, not multiples of 32, strided views, broadcasts), as llama.cpp's
// test-backend-ops does. Each test prints its max relative error per dtype.
#include <cmath>
#include <limits>
#include <tuple>

#include "cuda_helpers.cuh"

using namespace weft_cuda_test;
using weft::bf16;
using weft::DType;
using weft::f16;
using weft::Weight;

namespace {

template <class T = float>
Tensor<T> rnd(const Shape& s, float lo = -2.0f, float hi = 2.0f) { return weft_test::random_tensor<T>(s, lo, hi); }

// Evaluates f on the CPU tensors and on device copies of them; max relative error (floor as in
// weft_test::max_rel_error) of the device result against the CPU one.
template <class F, class... T>
double expr_error(double floor, F&& f, const Tensor<T>&... in) {
    const auto want = weft::eval(f(in...));
    std::tuple<wc::DeviceTensor<T>...> dev{wc::to_device(in)...};
    const auto got = std::apply([&](const auto&... d) { return wc::to_host(wc::eval(f(d...))); }, dev);
    REQUIRE(got.shape() == want.shape());
    return weft_test::max_rel_error(weft_test::to_doubles(got), weft_test::to_doubles(want), floor);
}

const Shape elementwise_shapes[] = {Shape{1}, Shape{7}, Shape{31, 33}, Shape{3, 257}, Shape{2, 3, 1023}};

}  // namespace

// ---- memory and views ------------------------------------------------------------------------------

TEST_CASE("device tensors round-trip through host copies in every dtype, strided views included") {
    auto round_trip = [](auto tag) {
        using T = decltype(tag);
        const Tensor<T> h = rnd<T>(Shape{7, 33}, -100, 100);
        const wc::DeviceTensor<T> d = wc::to_device(h);
        const Tensor<T> back = wc::to_host(d);
        CHECK(std::memcmp(back.data(), h.data(), h.numel() * sizeof(T)) == 0);
        // A strided host view goes up gathered; a strided device view comes back gathered.
        const Tensor<T> ht = wc::to_host(wc::to_device(h.transpose()));
        const Tensor<T> want(h.transpose());
        CHECK(std::memcmp(ht.data(), want.data(), want.numel() * sizeof(T)) == 0);
        const Tensor<T> dt = wc::to_host(d.transpose().slice(0, 1, 30, 3));
        const Tensor<T> want2(h.transpose().slice(0, 1, 30, 3));
        CHECK(dt.shape() == want2.shape());
        CHECK(std::memcmp(dt.data(), want2.data(), want2.numel() * sizeof(T)) == 0);
    };
    round_trip(float{});
    round_trip(f16{});
    round_trip(bf16{});
    round_trip(std::int32_t{});
    round_trip(std::int8_t{});
    wc::DeviceTensor<float> z(Shape{5, 3});
    const Tensor<float> zeros = wc::to_host(z);
    for (float v : zeros.span()) CHECK(v == 0.0f);
    z.slice(1, 0, 3, 2).fill(3.0f);
    const Tensor<float> filled = wc::to_host(z);
    CHECK(filled(4, 0) == 3.0f && filled(4, 1) == 0.0f && filled(4, 2) == 3.0f);
}

// ---- fused expressions -----------------------------------------------------------------------------

TEST_CASE("fused f32 expressions match the CPU on awkward shapes, broadcasts and strided views") {
    double arith = 0, transcendental = 0;
    for (const Shape& s : elementwise_shapes) {
        const Tensor<float> a = rnd(s), b = rnd(s), c = rnd(s), pos = rnd(s, 0.1f, 3.0f);
        arith = std::max(arith, expr_error(1.0, [](const auto& x, const auto& y, const auto& z) { return x * y + z; }, a, b, c));
        arith = std::max(arith, expr_error(1.0, [](const auto& x, const auto& y) { return (x - y) / (y * y + 1.0f); }, a, b));
        arith = std::max(arith, expr_error(1.0, [](const auto& x, const auto& y) { return weft::min(x, y) + weft::max(x, 0.5f) - abs(y); }, a, b));
        arith = std::max(arith, expr_error(1.0, [](const auto& x) { return -square(x) * 3.0f; }, a));
        transcendental = std::max(transcendental, expr_error(1.0, [](const auto& x) { return exp(x) + tanh(x) + sigmoid(x); }, a));
        transcendental = std::max(transcendental, expr_error(1.0, [](const auto& x, const auto& y) { return silu(x) * y + gelu(y); }, a, b));
        transcendental = std::max(transcendental, expr_error(1.0, [](const auto& p) { return sqrt(p) + rsqrt(p) + log(p); }, pos));
        transcendental = std::max(transcendental, expr_error(1.0, [](const auto& p, const auto& y) { return weft::pow(p, y); }, pos, b));
    }
    // Broadcasting and strided operands.
    const Tensor<float> col = rnd(Shape{33, 1}), row = rnd(Shape{1, 31}), m = rnd(Shape{31, 33}), bias = rnd(Shape{33});
    arith = std::max(arith, expr_error(1.0, [](const auto& x, const auto& y) { return x * y + 1.0f; }, col, row));
    arith = std::max(arith, expr_error(1.0, [](const auto& x, const auto& y) { return x + y; }, m, bias));
    arith = std::max(arith, expr_error(1.0, [](const auto& x, const auto& y) { return x.transpose() * y; }, m, col));
    arith = std::max(arith, expr_error(1.0, [](const auto& x) { return x.slice(1, 1, 30, 3) * 2.0f; }, m));
    arith = std::max(arith, expr_error(1.0, [](const auto& x) { return x.permute({1, 0}).unsqueeze(0) - 1.0f; }, m));
    MESSAGE("f32 arithmetic: max relative error ", arith, "; exp/log/tanh/sigmoid/silu/gelu/sqrt/rsqrt/pow: ", transcendental);
    CHECK_LE(arith, 1e-6);
    CHECK_LE(transcendental, 4e-6);
}

TEST_CASE("f16 and bf16 expressions round after each op as the CPU does") {
    double e16 = 0, eb16 = 0, casts = 0;
    for (const Shape& s : elementwise_shapes) {
        const Tensor<float> a = rnd(s), b = rnd(s);
        const Tensor<f16> ha = weft::cast<f16>(a), hb = weft::cast<f16>(b);
        const Tensor<bf16> ba = weft::cast<bf16>(a), bb = weft::cast<bf16>(b);
        auto f = [](const auto& x, const auto& y) { return silu(x) * y + x * 0.5f; };
        e16 = std::max(e16, expr_error(1.0, f, ha, hb));
        eb16 = std::max(eb16, expr_error(1.0, f, ba, bb));
        // Conversions: f32 -> f16/bf16 round to nearest even exactly as weft::f16/bf16 do.
        casts = std::max(casts, expr_error(0.0, [](const auto& x) { return weft::cast<bf16>(x * 3.0f); }, a));
        casts = std::max(casts, expr_error(0.0, [](const auto& x) { return weft::cast<f16>(x * 3.0f); }, a));
        casts = std::max(casts, expr_error(0.0, [](const auto& x) { return weft::cast<float>(x); }, ba));
    }
    MESSAGE("f16 expressions: max relative error ", e16, "; bf16: ", eb16, "; f32 <-> f16/bf16 casts: ", casts);
    // One rounding of a transcendental may land on the other side of a 16-bit tie: ~1 ulp of f16/bf16.
    CHECK_LE(e16, 4e-3);
    CHECK_LE(eb16, 3e-2);
    CHECK(casts == 0.0);
}

TEST_CASE("integer expressions and saturating casts are exact") {
    double worst = 0;
    for (const Shape& s : elementwise_shapes) {
        const Tensor<std::int32_t> a = rnd<std::int32_t>(s, -1000, 1000), b = rnd<std::int32_t>(s, -1000, 1000);
        const Tensor<std::int32_t> d = rnd<std::int32_t>(s, 1, 9);
        worst = std::max(worst, expr_error(0.0, [](const auto& x, const auto& y) { return x * y + 7 - abs(y); }, a, b));
        worst = std::max(worst, expr_error(0.0, [](const auto& x, const auto& y) { return weft::max(x, y) / y; }, a, d));
        worst = std::max(worst, expr_error(0.0, [](const auto& x) { return weft::cast<std::int8_t>(x); }, a));  // saturates
        worst = std::max(worst, expr_error(0.0, [](const auto& x) { return weft::cast<float>(-x); }, a));
        const Tensor<float> f = rnd(s, -3e9f, 3e9f);
        worst = std::max(worst, expr_error(0.0, [](const auto& x) { return weft::cast<std::int32_t>(x); }, f));
    }
    const Tensor<float> special(Shape{4}, {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, -2.7f});
    worst = std::max(worst, expr_error(0.0, [](const auto& x) { return weft::cast<std::int32_t>(x); }, special));
    MESSAGE("i32/i8 expressions and casts: max error ", worst);
    CHECK(worst == 0.0);
}

TEST_CASE("assignment in place, through aliasing views and with shape errors") {
    const Tensor<float> h = rnd(Shape{33, 33});
    Tensor<float> want = h;
    want = want.transpose() + want;  // staged on the CPU too
    wc::DeviceTensor<float> d = wc::to_device(h);
    d = d.transpose() + d;
    CHECK_LE(weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(d)), weft_test::to_doubles(want), 1.0), 0.0);
    d = d * 2.0f + 1.0f;
    want = want * 2.0f + 1.0f;
    CHECK_LE(weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(d)), weft_test::to_doubles(want), 1.0), 1e-7);
    // Shifted overlap: d[1:] = d[:-1] reads elements it overwrites.
    Tensor<float> ws = want;
    ws.slice(0, 1, 33) = ws.slice(0, 0, 32);
    d.slice(0, 1, 33) = d.slice(0, 0, 32);
    CHECK_LE(weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(d)), weft_test::to_doubles(ws), 1.0), 0.0);
    wc::DeviceTensor<float> small(Shape{3, 4});
    CHECK_THROWS_WITH(small.view() = d + 1.0f, "assign: shapes [3, 4] and [33, 33] cannot be broadcast together");
    CHECK_THROWS_WITH(small.view() = wc::DeviceTensor<float>(Shape{1, 3, 4}) + 1.0f, "does not fit a destination of shape [3, 4]");
    CHECK_THROWS_WITH(wc::eval(small + d), "cannot be broadcast together");
}

// ---- reductions ------------------------------------------------------------------------------------

TEST_CASE("row reductions, argmax and softmax match the CPU on awkward rows and strided inputs") {
    double sums = 0, maxes = 0, soft = 0, logsoft = 0;
    int argmax_mismatches = 0;
    const Shape shapes[] = {Shape{1, 1}, Shape{7, 33}, Shape{3, 1023}, Shape{5, 4097}, Shape{2, 3, 257}, Shape{40, 7}};
    for (const Shape& s : shapes) {
        const Tensor<float> x = rnd(s);
        const wc::DeviceTensor<float> dx = wc::to_device(x);
        auto check_all = [&](const auto& hx, const auto& ddx) {
            // Sums against float64 (the CPU's own float sums are no closer than the device's),
            // normwise: error / Σ|x| (Σx² for the sum of squares).
            const Tensor<float> values = weft::eval(hx);
            const Index n = values.shape()[values.rank() - 1], rows = values.numel() / n;
            std::vector<double> sum(rows), abs_sum(rows), squares(rows);
            for (Index r = 0; r < rows; ++r)
                for (Index i = 0; i < n; ++i) {
                    const double v = values.data()[r * n + i];
                    sum[r] += v, abs_sum[r] += std::abs(v), squares[r] += v * v;
                }
            auto normwise = [&](const Tensor<float>& got, auto want, auto scale) {
                double e = 0;
                for (Index r = 0; r < rows; ++r) e = std::max(e, std::abs(double(got.data()[r]) - want(r)) / std::max(scale(r), 1e-30));
                return e;
            };
            sums = std::max(sums, normwise(wc::to_host(wc::row_sum(ddx)), [&](Index r) { return sum[r]; }, [&](Index r) { return abs_sum[r]; }));
            sums = std::max(sums, normwise(wc::to_host(wc::row_sum_squares(ddx)), [&](Index r) { return squares[r]; },
                                           [&](Index r) { return squares[r]; }));
            sums = std::max(sums, normwise(wc::to_host(wc::row_mean(ddx)), [&](Index r) { return sum[r] / double(n); },
                                           [&](Index r) { return abs_sum[r] / double(n); }));
            maxes = std::max(maxes, weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(wc::row_max(ddx))),
                                                              weft_test::to_doubles(weft::row_max(hx))));
            const Tensor<std::int32_t> ga = wc::to_host(wc::row_argmax(ddx)), wa = weft::row_argmax(hx);
            for (Index i = 0; i < wa.numel(); ++i) argmax_mismatches += ga.data()[i] != wa.data()[i];
            soft = std::max(soft, weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(wc::softmax(ddx))),
                                                           weft_test::to_doubles(weft::softmax(hx)), 1.0));
            logsoft = std::max(logsoft, weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(wc::log_softmax(ddx))),
                                                                 weft_test::to_doubles(weft::log_softmax(hx)), 1.0));
        };
        check_all(x, dx);
        check_all(exp(x) * 0.5f, exp(dx) * 0.5f);  // an expression computed on the fly
        if (s.rank() == 2) check_all(x.transpose(), dx.transpose());
    }
    // Ties take the first index, a NaN wins, an all -inf row gives 0; softmax in place.
    const Tensor<float> special(Shape{3, 5}, {1, 3, 3, 0, 3, 1, NAN, 2, NAN, 9, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY});
    const Tensor<std::int32_t> ga = wc::to_host(wc::row_argmax(wc::to_device(special)));
    CHECK(ga(0, 0) == 1 && ga(1, 0) == 1 && ga(2, 0) == 0);
    CHECK(std::isnan(wc::to_host(wc::row_max(wc::to_device(special)))(1, 0)));
    const Tensor<float> x = rnd(Shape{6, 129});
    wc::DeviceTensor<float> dx = wc::to_device(x);
    wc::softmax(dx, dx.view());
    const double in_place = weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(dx)), weft_test::to_doubles(weft::softmax(x)), 1.0);
    MESSAGE("row_sum/sum_squares/mean (normwise, against float64): ", sums, "; row_max: ", maxes, "; argmax mismatches: ", argmax_mismatches,
            "; softmax: ", soft, " (in place ", in_place, "); log_softmax: ", logsoft);
    CHECK_LE(sums, 1e-6);
    CHECK_LE(maxes, 1e-6);  // exact for tensors; exp() on the fly differs by an ulp or two
    CHECK(argmax_mismatches == 0);
    CHECK_LE(soft, 1e-6);
    CHECK_LE(in_place, 1e-6);
    CHECK_LE(logsoft, 4e-6);
}

// ---- blocks ----------------------------------------------------------------------------------------

TEST_CASE("rms_norm matches nn::RMSNorm for f32, f16 and bf16 weights, in place too") {
    double worst[3] = {0, 0, 0};
    for (Index dim : {1, 7, 33, 257, 4097}) {
        for (Index rows : {1, 5}) {
            const Tensor<float> x = rnd(Shape{rows, dim}), w = rnd(Shape{dim}, 0.5f, 1.5f);
            const Tensor<f16> w16 = weft::cast<f16>(w);
            const Tensor<bf16> wb16 = weft::cast<bf16>(w);
            const Weight ws[3] = {Weight::of(w, "w32"), Weight::of(w16, "w16"), Weight::of(wb16, "wbf16")};
            for (int i = 0; i < 3; ++i) {
                Tensor<float> want(x.shape());
                weft::nn::RMSNorm(ws[i], 1e-5f).forward(x, want);
                wc::DeviceTensor<float> dx = wc::to_device(x);
                wc::rms_norm(dx, wc::DeviceWeight::upload(ws[i]), 1e-5f, dx.view());  // in place
                worst[i] = std::max(worst[i], weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(dx)), weft_test::to_doubles(want), 1.0));
            }
        }
    }
    MESSAGE("rms_norm max relative error: f32 weights ", worst[0], ", f16 ", worst[1], ", bf16 ", worst[2]);
    for (double e : worst) CHECK_LE(e, 2e-6);
}

TEST_CASE("rope matches nn::rope_apply for both pairings, llama3 scaling, partial rotation and far positions") {
    double worst = 0;
    for (auto pairing : {weft::nn::RopePairing::half_split, weft::nn::RopePairing::interleaved}) {
        for (int rotary : {80, 64}) {
            weft::nn::RopeConfig rc;
            rc.head_dim = 80;
            rc.rotary_dim = rotary;
            rc.theta = 500000.0;
            rc.pairing = pairing;
            rc.scaling.kind = weft::nn::RopeScaling::Kind::llama3;
            rc.scaling.factor = 8;
            rc.scaling.original_max_position_embeddings = 64;
            const weft::nn::Rope rope(rc);
            const std::vector<Index> positions = {0, 1, 7, 500, 8191, 3};
            const Index T = static_cast<Index>(positions.size());
            const Tensor<float> x = rnd(Shape{T, 5, 80});
            Tensor<float> want = x;
            weft::nn::RopeAngles angles;
            angles.compute(rope, positions);
            weft::nn::rope_apply(want.view(), angles, pairing);
            const wc::RopeTable table(rope, 8192);
            std::vector<std::int32_t> pos32(positions.begin(), positions.end());
            const wc::DeviceTensor<std::int32_t> dpos = wc::to_device(Tensor<std::int32_t>(Shape{T}, std::span<const std::int32_t>(pos32)));
            // A strided view: heads 0..4 of a wider buffer.
            wc::DeviceTensor<float> wide = wc::DeviceTensor<float>(Shape{T, 7, 80});
            wc::DeviceTensorView<float> dx = wide.slice(1, 1, 6);
            wc::copy(dx, x.view());
            wc::rope_apply(dx, table, dpos.data(), pairing);
            worst = std::max(worst, weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(dx)), weft_test::to_doubles(want), 1.0));
        }
    }
    MESSAGE("rope max relative error ", worst, worst == 0 ? " (bit-identical)" : "");
    CHECK_LE(worst, 1e-6);
}

TEST_CASE("qkv_rope_store rotates q in place and writes rotated k and v to the caches at their positions") {
    const Index H = 12, KV = 3, D = 80, T = 7, start = 21, capacity = 40;
    weft::nn::RopeConfig rc;
    rc.head_dim = static_cast<int>(D);
    const weft::nn::Rope rope(rc);
    const weft::nn::AttentionConfig ac{H, KV, D, true, weft::nn::RopePairing::half_split, 0};
    const Tensor<float> qkv = rnd(Shape{T, (H + 2 * KV) * D});
    // CPU: the steps of nn::Attention::forward.
    Tensor<float> q(qkv.slice(1, 0, H * D)), k(qkv.slice(1, H * D, (H + KV) * D));
    const Tensor<float> v(qkv.slice(1, (H + KV) * D, (H + 2 * KV) * D));
    std::vector<Index> positions;
    for (Index t = 0; t < T; ++t) positions.push_back(start + t);
    weft::nn::RopeAngles angles;
    angles.compute(rope, positions);
    weft::nn::rope_apply(q.reshape({T, H, D}), angles, ac.rope_pairing);
    weft::nn::rope_apply(k.reshape({T, KV, D}), angles, ac.rope_pairing);
    // Device.
    wc::DeviceTensor<float> dqkv = wc::to_device(qkv);
    wc::DeviceTensor<float> ck(Shape{capacity, KV, D}), cv(Shape{capacity, KV, D});
    const wc::RopeTable table(rope, capacity);
    std::vector<std::int32_t> pos32(positions.begin(), positions.end());
    const wc::DeviceTensor<std::int32_t> dpos = wc::to_device(Tensor<std::int32_t>(Shape{T}, std::span<const std::int32_t>(pos32)));
    wc::qkv_rope_store(dqkv, ac, &table, dpos.data(), ck, cv);
    const Tensor<float> got_qkv = wc::to_host(dqkv), got_k = wc::to_host(ck), got_v = wc::to_host(cv);
    const double eq = weft_test::max_rel_error(weft_test::to_doubles(got_qkv.slice(1, 0, H * D)), weft_test::to_doubles(q), 1.0);
    const double ek = weft_test::max_rel_error(weft_test::to_doubles(got_k.slice(0, start, start + T)), weft_test::to_doubles(k.reshape({T, KV, D})), 1.0);
    const double ev = weft_test::max_rel_error(weft_test::to_doubles(got_v.slice(0, start, start + T)), weft_test::to_doubles(v.reshape({T, KV, D})), 1.0);
    const Tensor<float> untouched = got_k.slice(0, 0, start);
    bool zeros = true;
    for (float f : untouched.span()) zeros = zeros && f == 0.0f;
    MESSAGE("qkv_rope_store: q ", eq, ", k ", ek, ", v ", ev);
    CHECK_LE(eq, 1e-6);
    CHECK_LE(ek, 1e-6);
    CHECK(ev == 0.0);
    CHECK(zeros);
}

TEST_CASE("embedding gathers rows of every weight dtype") {
    const Index vocab = 37, dim = 256;
    const std::vector<std::int32_t> ids = {0, 36, 5, 5, 17};
    const Index T = static_cast<Index>(ids.size());
    const wc::DeviceTensor<std::int32_t> dids = wc::to_device(Tensor<std::int32_t>(Shape{T}, std::span<const std::int32_t>(ids)));
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k}) {
        const std::vector<std::byte> bytes = random_weight_bytes(t, vocab, dim);
        const Weight w(t, bytes.data(), Shape{vocab, dim}, "table");
        const Tensor<float> table = dequantized(w);
        wc::DeviceTensor<float> out(Shape{T, dim});
        wc::embedding(wc::DeviceWeight::upload(w), dids.data(), T, out);
        const Tensor<float> got = wc::to_host(out);
        double e = 0;
        for (Index i = 0; i < T; ++i)
            for (Index c = 0; c < dim; ++c) e = std::max(e, double(std::abs(got(i, c) - table(ids[i], c))));
        MESSAGE("embedding ", weft::dtype_name(t), ": max error ", e);
        CHECK(e == 0.0);
    }
}

TEST_CASE("dequantize on the device equals quant::dequantize_row for every block type") {
    for (DType t : {DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k, DType::bf16, DType::f16}) {
        const Index rows = 3, cols = 512;
        const std::vector<std::byte> bytes = random_weight_bytes(t, rows, cols);
        const Weight w(t, bytes.data(), Shape{rows, cols}, "w");
        const Tensor<float> want = dequantized(w);
        wc::DeviceTensor<float> out(Shape{rows, cols});
        wc::dequantize(wc::DeviceWeight::upload(w), out);
        const double e = weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(out)), weft_test::to_doubles(want), 1e-30);
        MESSAGE("dequantize ", weft::dtype_name(t), ": max relative error ", e, e == 0 ? " (bit-identical)" : "");
        CHECK_LE(e, 1e-6);
    }
}

namespace {

// y = x·Wᵀ in float64 from the weight's values.
Tensor<double> linear_reference(const Tensor<float>& x, const Tensor<float>& w, Tensor<double>* magnitude) {
    const Index M = x.shape()[0], N = w.shape()[0], K = w.shape()[1];
    Tensor<double> y(Shape{M, N});
    if (magnitude) *magnitude = Tensor<double>(Shape{M, N});
    for (Index m = 0; m < M; ++m)
        for (Index n = 0; n < N; ++n) {
            double s = 0, a = 0;
            for (Index k = 0; k < K; ++k) {
                s += double(x(m, k)) * w(n, k);
                a += std::abs(double(x(m, k)) * w(n, k));
            }
            y(m, n) = s;
            if (magnitude) (*magnitude)(m, n) = a;
        }
    return y;
}

// max |got − want| / Σ_k |x_k·w_k| (the error a sum of K products can be expected to carry).
double normwise(const Tensor<float>& got, const Tensor<double>& want, const Tensor<double>& magnitude) {
    double e = 0;
    for (Index i = 0; i < want.numel(); ++i)
        e = std::max(e, std::abs(double(got.data()[i]) - want.data()[i]) / std::max(magnitude.data()[i], 1e-30));
    return e;
}

}  // namespace

TEST_CASE("linear matches a float64 reference for every weight dtype, on the GEMV and the cuBLAS paths") {
    struct Case {
        Index M, N, K;
    };
    // K % 8 != 0 takes the GEMV's element-by-element path; M > 8 takes cuBLAS.
    const Case float_cases[] = {{1, 33, 64}, {3, 257, 264}, {8, 7, 1023}, {1, 1, 1}, {9, 33, 64}, {100, 130, 257}};
    const Case quant_cases[] = {{1, 33, 256}, {8, 65, 512}, {5, 3, 1024}, {9, 33, 512}, {40, 70, 1024}};
    wc::Context ctx;
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k}) {
        double gemv = 0, gemm = 0, with_bias = 0;
        const bool quantized = weft::is_quantized(t);
        for (const Case& c : quantized ? std::span<const Case>(quant_cases) : std::span<const Case>(float_cases)) {
            const std::vector<std::byte> bytes = random_weight_bytes(t, c.N, c.K);
            const Weight w(t, bytes.data(), Shape{c.N, c.K}, "w");
            const wc::DeviceWeight dw = wc::DeviceWeight::upload(w);
            const Tensor<float> x = rnd(Shape{c.M, c.K}), y0 = rnd(Shape{c.M, c.N}), b = rnd(Shape{c.N});
            Tensor<double> magnitude;
            const Tensor<double> want = linear_reference(x, dequantized(w), &magnitude);
            const wc::DeviceTensor<float> dx = wc::to_device(x), db = wc::to_device(b);
            wc::DeviceTensor<float> dy(Shape{c.M, c.N});
            wc::linear(ctx, dx, dw, dy);
            const double e = normwise(wc::to_host(dy), want, magnitude);
            (c.M <= wc::gemv_max_rows ? gemv : gemm) = std::max(c.M <= wc::gemv_max_rows ? gemv : gemm, e);
            // y += x·Wᵀ + b (a residual with a bias).
            wc::DeviceTensor<float> dacc = wc::to_device(y0);
            wc::linear(ctx, dx, dw, dacc, db, true);
            Tensor<double> want_acc = want;
            for (Index m = 0; m < c.M; ++m)
                for (Index n = 0; n < c.N; ++n) want_acc(m, n) += double(y0(m, n)) + b(n);
            with_bias = std::max(with_bias, normwise(wc::to_host(dacc), want_acc, magnitude + 4.0));
        }
        // cuBLAS rounds the activations (and dequantized weights) to the 16-bit type; f32 stays f32.
        const double gemm_tolerance = t == DType::f32 ? 2e-6 : t == DType::f16 ? 2e-3 : 1e-2;
        MESSAGE("linear ", weft::dtype_name(t), ": GEMV (M <= 8) max normwise error ", gemv, "; cuBLAS (M > 8) ", gemm,
                "; accumulate + bias ", with_bias);
        CHECK_LE(gemv, quantized ? 1e-5 : 2e-6);  // K-quants sum d·sc·Σqx and dmin·m·Σx apart
        CHECK_LE(gemm, gemm_tolerance);
        CHECK_LE(with_bias, gemm_tolerance);
    }
}

TEST_CASE("linear reports mismatched shapes and unsupported dtypes") {
    wc::Context ctx;
    const Tensor<float> w32 = rnd(Shape{4, 8});
    const wc::DeviceWeight dw = wc::DeviceWeight::upload(Weight::of(w32, "blk.0.w"));
    wc::DeviceTensor<float> x(Shape{2, 7}), y(Shape{2, 4});
    CHECK_THROWS_WITH(wc::linear(ctx, x, dw, y), "linear 'blk.0.w': input of shape [2, 7] for weight [4, 8]");
    const Tensor<std::int32_t> wi(Shape{4, 8});
    CHECK_THROWS_WITH(wc::linear(ctx, wc::DeviceTensor<float>(Shape{2, 8}), wc::DeviceWeight::upload(Weight::of(wi, "ids")), y),
                      "weights of dtype i32 are not supported on CUDA");
    CHECK_THROWS_WITH(wc::DeviceBuffer(std::size_t(1) << 62), "cannot allocate");
}

// ---- attention -------------------------------------------------------------------------------------

TEST_CASE("attention matches nn::attend for prefill and split-KV decode, GQA, chunked and wide heads") {
    struct Case {
        Index H, KV, D, chunk;
    };
    const Case cases[] = {{12, 3, 80, 0}, {8, 8, 128, 0}, {4, 1, 64, 16}, {2, 2, 256, 0}, {6, 2, 40, 0}};
    const Index capacity = 300;
    double worst_prefill = 0, worst_decode = 0;
    for (const Case& c : cases) {
        const weft::nn::AttentionConfig ac{c.H, c.KV, c.D, true, weft::nn::RopePairing::half_split, c.chunk};
        const float scale = 1.0f / std::sqrt(float(c.D));
        weft::nn::KvCache cache(capacity, c.KV, c.D);
        cache.keys() = rnd(Shape{capacity, c.KV, c.D});
        cache.values() = rnd(Shape{capacity, c.KV, c.D});
        const wc::DeviceTensor<float> dk = wc::to_device(cache.keys()), dv = wc::to_device(cache.values());
        const int splits = static_cast<int>((capacity + 63) / 64);
        wc::DeviceBuffer partial(wc::split_kv_floats(1, ac, splits) * sizeof(float));
        struct Run {
            Index start, T;
            bool split;
        };
        for (const Run r : {Run{0, 33, false}, Run{100, 7, false}, Run{250, 50, false}, Run{0, 1, false}, Run{0, 1, true}, Run{31, 1, true},
                            Run{200, 1, true}, Run{299, 1, true}, Run{64, 1, false}}) {
            const Tensor<float> q = rnd(Shape{r.T, c.H, c.D});
            Tensor<float> want(Shape{r.T, c.H * c.D});
            weft::nn::attend(q, cache, r.start, ac, scale, want);
            std::vector<std::int32_t> pos;
            for (Index t = 0; t < r.T; ++t) pos.push_back(static_cast<std::int32_t>(r.start + t));
            const wc::DeviceTensor<std::int32_t> dpos = wc::to_device(Tensor<std::int32_t>(Shape{r.T}, std::span<const std::int32_t>(pos)));
            const wc::DeviceTensor<float> dq = wc::to_device(q);
            wc::DeviceTensor<float> out(Shape{r.T, c.H * c.D});
            const wc::SplitKv split = r.split ? wc::SplitKv{partial.as<float>(), splits, 64} : wc::SplitKv{};
            wc::attention(ac, scale, dq, dk, dv, dpos.data(), out, nullptr, split);
            const double e = weft_test::max_rel_error(weft_test::to_doubles(wc::to_host(out)), weft_test::to_doubles(want), 1.0);
            (r.T == 1 ? worst_decode : worst_prefill) = std::max(r.T == 1 ? worst_decode : worst_prefill, e);
        }
    }
    MESSAGE("attention max relative error (floor 1): prefill ", worst_prefill, ", decode (split-KV and not) ", worst_decode);
    CHECK_LE(worst_prefill, 5e-6);
    CHECK_LE(worst_decode, 5e-6);
}
