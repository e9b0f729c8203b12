// weft::Llama against the float64 PyTorch reference (tests/golden/make_llama_golden.py): small
// random models with awkward shapes (GQA 12/3 heads of dim 80, tied and untied, llama3 and linear
// rope scaling, attention biases, f32/bf16/f16 weights). Errors are max per-position relative L2.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "../helpers.hpp"

namespace test_llama {

using weft::Index;
using weft::Tensor;
using namespace weft_test;

namespace {

std::string golden_dir(const std::string& variant) { return std::string(WEFT_SOURCE_DIR) + "/tests/data/llama/" + variant; }

std::vector<std::int32_t> read_ids(const std::string& path) {
    weft::MappedFile f(path);
    std::vector<std::int32_t> ids;
    std::string token;
    for (std::size_t i = 0; i <= f.size(); ++i) {
        const char ch = i < f.size() ? static_cast<char>(f.data()[i]) : ',';
        if (ch >= '0' && ch <= '9') token += ch;
        else if (!token.empty()) ids.push_back(std::stoi(token)), token.clear();
    }
    return ids;
}

// max over positions of ‖got_t − want_t‖₂ / ‖want_t‖₂
double max_position_rel_l2(weft::TensorView<const float> got, const Tensor<double>& want) {
    double worst = 0;
    for (Index t = 0; t < want.shape()[0]; ++t) {
        double num = 0, den = 0;
        for (Index v = 0; v < want.shape()[1]; ++v) {
            const double d = got(t, v) - want(t, v);
            num += d * d;
            den += want(t, v) * want(t, v);
        }
        worst = std::max(worst, std::sqrt(num / den));
    }
    return worst;
}

struct Variant {
    const char* name;
    double tolerance;
};
// The issue asks for 1e-4 (f32) and 2e-3 (16-bit weights, against the reference on the same
// rounded weights); weft measures 4e-7 .. 1.3e-6, so the bound is set tighter to catch regressions
// (a wrong rms_norm_eps default alone moves the tied logits by ~1e-4).
const Variant variants[] = {{"gqa-f32-llama3", 1e-5}, {"gqa-f32-tied", 1e-5}, {"mha-bias-f32", 1e-5},
                            {"gqa-bf16-llama3", 1e-5}, {"gqa-f16-tied", 1e-5}};

}  // namespace

TEST_CASE("Llama logits match the float64 reference at every prompt position") {
    for (const Variant& v : variants) {
        const std::string variant = v.name;
        CAPTURE(variant);
        const std::string dir = golden_dir(v.name);
        weft::Llama model = weft::Llama::from_pretrained(dir, 64);
        const auto tokens = read_ids(dir + "/tokens.txt");
        const Tensor<double> want = weft::npy::load<double>(dir + "/logits.npy");
        const auto logits = model.forward(tokens);
        REQUIRE(logits.shape() == want.shape());
        const double err = max_position_rel_l2(logits, want);
        const std::string report = variant + ": max per-position relative L2 error " + std::to_string(err);
        MESSAGE(report);
        CHECK(err <= v.tolerance);
    }
}

TEST_CASE("Llama greedy decoding reproduces the reference's ids") {
    for (const Variant& v : variants) {
        const std::string variant = v.name;
        CAPTURE(variant);
        const std::string dir = golden_dir(v.name);
        weft::Llama model = weft::Llama::from_pretrained(dir, 64);
        const auto tokens = read_ids(dir + "/tokens.txt");
        const auto want = read_ids(dir + "/greedy.txt");
        std::int32_t next = weft::row_argmax(model.forward(tokens, weft::Logits::last))(0, 0);
        std::vector<std::int32_t> got;
        for (std::size_t i = 0; i < want.size(); ++i) {
            got.push_back(next);
            next = weft::row_argmax(model.decode(next))(0);
        }
        CHECK(got == want);
    }
}

TEST_CASE("Llama decoding token by token gives the same logits as the whole prompt at once") {
    for (const char* name : {"gqa-f32-llama3", "gqa-bf16-llama3"}) {
        const std::string variant = name;
        CAPTURE(variant);
        const std::string dir = golden_dir(name);
        weft::Llama whole = weft::Llama::from_pretrained(dir, 64), stepwise = weft::Llama::from_pretrained(dir, 64);
        const auto tokens = read_ids(dir + "/tokens.txt");
        const Tensor<float> all = whole.forward(tokens);
        // f32 weights: bit for bit. bf16 weights: decode streams them through the GEMV, prefill
        // through the widening GEMM, which sum in different orders: equal to rounding.
        const bool exact = std::string(name).find("f32") != std::string::npos;
        double worst = 0;
        for (std::size_t t = 0; t < tokens.size(); ++t) {
            const auto row = stepwise.decode(tokens[t]);
            for (Index v = 0; v < row.numel(); ++v) {
                if (exact) REQUIRE(row(v) == all(static_cast<Index>(t), v));
                worst = std::max(worst, double(std::abs(row(v) - all(static_cast<Index>(t), v))));
            }
        }
        CHECK(worst <= 1e-5);
        CHECK(stepwise.position() == static_cast<Index>(tokens.size()));
    }
}

TEST_CASE("Llama with 16-bit weights under MatmulPrecision::fast: prompts at bf16 precision, decoding exact") {
    // Prompts round activations to bf16 where the CPU has bf16 dot products: per-position errors
    // of 5e-3 (bf16) and 1.1e-2 (f16 weights, rounded too) measured on Zen 4, above the 2e-3 that
    // exact mode keeps, so fast is opt-in. Bounded here at twice that, to catch a wrong layout or
    // a lost rounding (either gives errors of order 1). Decoding stays exact.
    ScopedPrecision fast(weft::MatmulPrecision::fast);
#if !defined(WEFT_GEMM_BF16)
    MESSAGE("this build does not target AVX512-BF16: MatmulPrecision::fast runs the exact path");
#endif
    for (const Variant& v : {Variant{"gqa-bf16-llama3", 1e-2}, Variant{"gqa-f16-tied", 2.5e-2}}) {
        const std::string variant = v.name;
        CAPTURE(variant);
        const std::string dir = golden_dir(v.name);
        weft::Llama whole = weft::Llama::from_pretrained(dir, 64), stepwise = weft::Llama::from_pretrained(dir, 64);
        const auto tokens = read_ids(dir + "/tokens.txt");
        const Tensor<double> want = weft::npy::load<double>(dir + "/logits.npy");
        const Tensor<float> prompt = whole.forward(tokens);
        Tensor<float> decoded(prompt.shape());
        for (std::size_t t = 0; t < tokens.size(); ++t) decoded.select(0, static_cast<Index>(t)) = stepwise.decode(tokens[t]);
        const double prompt_err = max_position_rel_l2(prompt, want), decode_err = max_position_rel_l2(decoded, want);
        MESSAGE(variant << " under fast: prompt " << prompt_err << ", decode " << decode_err << " max per-position relative L2 error");
        CHECK(prompt_err <= v.tolerance);
        CHECK(decode_err <= 1e-5);
    }
}

TEST_CASE("Llama logits are bit-identical for 1 and 2 threads") {
    const std::string dir = golden_dir("gqa-f32-llama3");
    const auto tokens = read_ids(dir + "/tokens.txt");
    auto run = [&] {
        weft::Llama model = weft::Llama::from_pretrained(dir, 64);
        return bits_of(Tensor<float>(model.forward(tokens)));
    };
    CHECK(with_threads(1, run) == with_threads(2, run));
}

TEST_CASE("Llama reports a full context, a missing directory and a missing config clearly") {
    const std::string dir = golden_dir("gqa-f32-tied");
    weft::Llama model = weft::Llama::from_pretrained(dir, 8);
    const std::vector<std::int32_t> nine(9, 1);
    CHECK_THROWS_WITH_AS(model.forward(nine), "Llama::forward: 0 cached + 9 new tokens exceed the context of 8 tokens", weft::Error);
    CHECK_THROWS_WITH_AS(weft::Llama::from_pretrained(std::string(WEFT_SOURCE_DIR) + "/tests"),
                         doctest::Contains("has no config.json"), weft::Error);
}

TEST_CASE("Llama prompts longer than one internal batch equal the same prompt fed in two parts") {
    const std::string dir = golden_dir("gqa-f32-tied");
    weft::Llama whole = weft::Llama::from_pretrained(dir, 600), parts = weft::Llama::from_pretrained(dir, 600);
    std::vector<std::int32_t> tokens(300);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>((i * 37 + 11) % 263);
    const Tensor<float> all = whole.forward(tokens);
    const Tensor<float> first = parts.forward(std::span(tokens).subspan(0, 170));
    const Tensor<float> second = parts.forward(std::span(tokens).subspan(170));
    CHECK(bits_of(Tensor<float>(all.slice(0, 0, 170))) == bits_of(first));
    CHECK(bits_of(Tensor<float>(all.slice(0, 170, 300))) == bits_of(second));
    const Tensor<float> last = whole.forward(std::vector<std::int32_t>{5}, weft::Logits::last);
    CHECK(last.shape() == weft::Shape{1, 263});
    whole.truncate(300);
    CHECK(whole.position() == 300);
    CHECK_THROWS_AS(whole.truncate(302), weft::Error);
}

}  // namespace test_llama
