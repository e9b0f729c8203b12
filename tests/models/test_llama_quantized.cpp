// weft::Llama with Q8_0 / Q4_0 weights (written by gguf::quantize_model, read from GGUF) against
// the float64 reference on the same dequantized weights (tests/golden/make_quantized_llama_golden.py).
// The difference that remains is weft's 8-bit quantization of the activations (the integer
// kernels' input); errors are max per-position relative L2 of the logits.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include <weft/io/gguf_quantize.hpp>

#include "../helpers.hpp"
#include "../temp_dir.hpp"

namespace test_llama_quantized {

using weft::Index;
using weft::Tensor;
using namespace weft_test;

namespace {

std::string data_dir(const std::string& name) { return std::string(WEFT_SOURCE_DIR) + "/tests/data/llama/" + name; }

std::vector<std::int32_t> prompt_ids() {
    weft::MappedFile f(data_dir("gqa-f32-llama3/tokens.txt"));
    std::vector<std::int32_t> ids;
    std::string token;
    for (std::size_t i = 0; i <= f.size(); ++i) {
        const char ch = i < f.size() ? static_cast<char>(f.data()[i]) : ',';
        if (ch >= '0' && ch <= '9') token += ch;
        else if (!token.empty()) ids.push_back(std::stoi(token)), token.clear();
    }
    return ids;
}

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

// f() with weft::set_file_load(how), restored after (also if f throws).
template <class F>
auto with_file_load(weft::FileLoad how, F&& f) {
    struct Restore {
        weft::FileLoad before = weft::file_load();
        ~Restore() { weft::set_file_load(before); }
    } restore;
    weft::set_file_load(how);
    return f();
}

std::string quantized_model(const TempDir& dir, const std::string& type) {
    weft::gguf::QuantizeRecipe recipe = weft::gguf::quantize_recipe(type);
    recipe.pure = true;  // every matrix in `type`, as the reference has it
    const std::string path = dir.file(type + ".gguf");
    weft::gguf::quantize_model(data_dir("gqa-f32-llama3"), path, recipe);
    return path;
}

}  // namespace

TEST_CASE("Q8_0 and Q4_0 Llama logits match the float64 reference on the dequantized weights") {
    TempDir dir("quantized_llama");
    const auto ids = prompt_ids();
    // Measured: 1.42e-2 (Q8_0), 1.38e-2 (Q4_0): the 8-bit activations of this narrow model (hidden
    // size 64, two blocks of 32 per row). For scale, quantizing the weights moves the reference
    // logits by 1.6e-2 (Q8_0) and 2.9e-1 (Q4_0), so a wrong block would show far above the bound.
    for (const auto& type_tolerance : {std::pair{std::string("q8_0"), 2.5e-2}, std::pair{std::string("q4_0"), 2.5e-2}}) {
        const std::string type = type_tolerance.first;  // CAPTURE cannot take structured bindings
        const double tolerance = type_tolerance.second;
        CAPTURE(type);
        weft::Llama model = weft::Llama::from_pretrained(quantized_model(dir, type), 64);
        const Tensor<double> want = weft::npy::load<double>(data_dir("quantized/" + type + "-logits.npy"));
        const double err = max_position_rel_l2(model.forward(ids), want);
        MESSAGE(type, ": max per-position relative L2 error vs the float64 reference: ", err);
        CHECK(err <= tolerance);
    }
}

TEST_CASE("quantized Llama logits are bit-identical for 1 and 2 threads and decode equals prefill") {
    TempDir dir("quantized_llama_threads");
    const auto ids = prompt_ids();
    for (const std::string type : {"q8_0", "q4_0"}) {
        CAPTURE(type);
        weft::Llama model = weft::Llama::from_pretrained(quantized_model(dir, type), 64);
        const Tensor<float> one = with_threads(1, [&] { return Tensor<float>(model.forward(ids)); });
        model.reset();
        const Tensor<float> two = with_threads(2, [&] { return Tensor<float>(model.forward(ids)); });
        CHECK(bits_of(one) == bits_of(two));
        // Token by token through the KV cache: the GEMV path, against the prefill's GEMM.
        model.reset();
        double worst = 0;
        for (std::size_t t = 0; t < ids.size(); ++t) {
            const auto row = model.decode(ids[t]);
            for (Index v = 0; v < row.shape()[0]; ++v)
                worst = std::max(worst, std::abs(double(row(v)) - double(one(Index(t), v))) / (std::abs(double(one(Index(t), v))) + 1e-3));
        }
        MESSAGE(type, ": decode vs prefill max relative difference ", worst);
        CHECK(worst <= 1e-4);
    }
}

TEST_CASE("a copied Q8_0 or Q4_0 GGUF (FileLoad::copy) runs interleaved (x16) with the mapped file's bits") {
    TempDir dir("quantized_llama_copy");
    const auto ids = prompt_ids();
    for (const std::string type : {"q8_0", "q4_0"}) {
        CAPTURE(type);
        const std::string path = quantized_model(dir, type);
        weft::Llama mapped = weft::Llama::from_gguf(path, 64);
        weft::Llama copied = with_file_load(weft::FileLoad::copy, [&] { return weft::Llama::from_gguf(path, 64); });
        const weft::DType stored = weft::quant::plain_dtype(copied.layers()[0].attention.wq().weight().dtype);
        CHECK(weft::dtype_name(stored) == type);
#if defined(WEFT_HAVE_MMAP)  // else "mapped" is a copy too
        CHECK(mapped.layers()[0].attention.wq().weight().dtype == stored);
#endif
        for (const auto& layer : copied.layers()) {
            CHECK(layer.attention.wq().weight().dtype == weft::quant::interleaved_dtype(stored));
            CHECK(layer.mlp.down().weight().dtype == weft::quant::interleaved_dtype(stored));
        }
        // vocab 263 is no whole number of 16-row groups: the output head stays as stored
        CHECK(copied.lm_head().weight().dtype == stored);
        const Tensor<float> want(mapped.forward(ids));
        CHECK(bits_of(Tensor<float>(copied.forward(ids))) == bits_of(want));
        copied.reset();
        mapped.reset();
        for (std::size_t t = 0; t < ids.size(); ++t)  // the decoding GEMV
            CHECK(bits_of(Tensor<float>(copied.decode(ids[t]))) == bits_of(Tensor<float>(mapped.decode(ids[t]))));
    }
}

}  // namespace test_llama_quantized
