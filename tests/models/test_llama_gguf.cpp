// weft::Llama from GGUF: each golden Hugging Face model (tests/data/llama) converted with
// gguf::convert_hf_to_gguf gives the logits of the Hugging Face directory and of the float64
// reference; the converted file has llama.cpp's keys, names, Q/K permutation and rope_freqs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../helpers.hpp"
#include "../temp_dir.hpp"

#include <weft/io/gguf_convert.hpp>

namespace test_llama_gguf {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using namespace weft_test;
namespace gguf = weft::gguf;

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
template <class W>
double max_position_rel_l2(weft::TensorView<const float> got, const W& want) {
    double worst = 0;
    for (Index t = 0; t < got.shape()[0]; ++t) {
        double num = 0, den = 0;
        for (Index v = 0; v < got.shape()[1]; ++v) {
            const double w = static_cast<double>(want(t, v)), d = got(t, v) - w;
            num += d * d;
            den += w * w;
        }
        worst = std::max(worst, std::sqrt(num / den));
    }
    return worst;
}

// max |got − want| / max |want|: the largest error relative to the largest logit.
double max_rel_to_largest(weft::TensorView<const float> got, weft::TensorView<const float> want) {
    double diff = 0, scale = 0;
    for (Index i = 0; i < want.numel(); ++i) {
        diff = std::max(diff, static_cast<double>(std::abs(got.data()[i] - want.data()[i])));
        scale = std::max(scale, static_cast<double>(std::abs(want.data()[i])));
    }
    return diff / scale;
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const weft::Error& e) {
        return e.what();
    }
    return "<no error thrown>";
}
bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

std::string sci(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2e", x);
    return buf;
}

const char* variants[] = {"gqa-f32-llama3", "gqa-f32-tied", "mha-bias-f32", "gqa-bf16-llama3", "gqa-f16-tied"};

// A Q8_0 encoder for the plug-in test (d = max|x| / 127, q = round(x / d)); the library's
// quantizers live elsewhere.
void encode_q8_0(std::span<const float> row, std::span<std::byte> out) {
    for (std::size_t b = 0; b < row.size() / 32; ++b) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::abs(row[b * 32 + j]));
        const float d = amax / 127, id = d != 0 ? 1 / d : 0;
        const std::uint16_t dh = weft::float_to_f16_bits(d);
        std::memcpy(out.data() + b * 34, &dh, 2);
        for (int j = 0; j < 32; ++j) out[b * 34 + 2 + j] = static_cast<std::byte>(static_cast<std::int8_t>(std::lround(row[b * 32 + j] * id)));
    }
}

}  // namespace

TEST_CASE("Llama from a converted GGUF file gives the Hugging Face model's logits and the reference's") {
    TempDir dir("llama_gguf_logits");
    for (const char* name : variants) {
        const std::string variant = name;
        CAPTURE(variant);
        const std::string hf = golden_dir(name), path = dir.file(variant + ".gguf");
        gguf::convert_hf_to_gguf(hf, path);
        weft::Llama from_hf = weft::Llama::from_pretrained(hf, 64);
        weft::Llama from_gguf = weft::Llama::from_pretrained(path, 64);  // dispatches on the .gguf path
        const auto tokens = read_ids(hf + "/tokens.txt");
        const Tensor<float> want_hf = from_hf.forward(tokens);
        const auto got = from_gguf.forward(tokens);
        REQUIRE(got.shape() == want_hf.shape());
        // The same weight values (16-bit ones pass through bit for bit); only the order of the q·k
        // sums (permuted head dimensions) and the rope_freqs rounding differ.
        const double vs_hf = max_rel_to_largest(got, want_hf.view());
        const double vs_reference = max_position_rel_l2(got, weft::npy::load<double>(hf + "/logits.npy"));
        const std::string report = variant + ": vs Hugging Face " + sci(vs_hf) +
                                   " (max |diff| / max |logit|), vs float64 reference " + sci(vs_reference) +
                                   " (max per-position relative L2)";
        MESSAGE(report);
        CHECK(vs_hf <= 1e-5);
        CHECK(vs_reference <= 1e-5);  // the bound tests/models/test_llama.cpp holds the HF directory to
        CHECK(from_gguf.config().bos_ids == from_hf.config().bos_ids);
        CHECK(from_gguf.config().eos_ids == std::vector<std::int32_t>{from_hf.config().eos_ids.front()});
        CHECK(from_gguf.config().tied_embeddings == from_hf.config().tied_embeddings);
        CHECK(from_gguf.config().head_dim == from_hf.config().head_dim);
        CHECK(from_gguf.config().max_positions == from_hf.config().max_positions);
        CHECK(from_gguf.config().norm_eps == from_hf.config().norm_eps);
        CHECK(from_gguf.config().rope.pairing == weft::nn::RopePairing::interleaved);
        if (variant.find("f32") != std::string::npos)  // norms are f32 in both; 16-bit models' norms become f32
            CHECK(from_gguf.weight_bytes_per_token() == from_hf.weight_bytes_per_token());
    }
}

TEST_CASE("Llama from GGUF decodes greedily to the reference's ids, token by token through the KV cache") {
    TempDir dir("llama_gguf_greedy");
    for (const char* name : {"gqa-f32-llama3", "gqa-bf16-llama3", "gqa-f16-tied"}) {
        const std::string variant = name;
        CAPTURE(variant);
        const std::string hf = golden_dir(name), path = dir.file(variant + ".gguf");
        gguf::convert_hf_to_gguf(hf, path);
        weft::Llama model = weft::Llama::from_gguf(path, 64);
        const auto tokens = read_ids(hf + "/tokens.txt");
        const auto want = read_ids(hf + "/greedy.txt");
        std::int32_t next = weft::row_argmax(model.forward(tokens, weft::Logits::last))(0, 0);
        std::vector<std::int32_t> got;
        for (std::size_t i = 0; i < want.size(); ++i) {
            got.push_back(next);
            next = weft::row_argmax(model.decode(next))(0);
        }
        CHECK(got == want);
    }
}

TEST_CASE("convert_hf_to_gguf writes llama.cpp's keys, tensor names, types and Q/K permutation") {
    TempDir dir("llama_gguf_layout");
    const std::string path = dir.file("m.gguf");
    gguf::convert_hf_to_gguf(golden_dir("gqa-bf16-llama3"), path);
    const gguf::File f(path);
    CHECK(f.get<std::string>("general.architecture") == "llama");
    CHECK(f.get<std::string>("general.name") == "gqa-bf16-llama3");
    CHECK(f.value("llama.block_count").type() == gguf::ValueType::u32);
    CHECK(f.get<std::uint32_t>("llama.block_count") == 2);
    CHECK(f.get<std::uint32_t>("llama.context_length") == 512);
    CHECK(f.get<std::uint32_t>("llama.embedding_length") == 64);
    CHECK(f.get<std::uint32_t>("llama.feed_forward_length") == 96);
    CHECK(f.get<std::uint32_t>("llama.attention.head_count") == 12);
    CHECK(f.get<std::uint32_t>("llama.attention.head_count_kv") == 3);
    CHECK(f.get<std::uint32_t>("llama.attention.key_length") == 80);
    CHECK(f.get<std::uint32_t>("llama.attention.value_length") == 80);
    CHECK(f.get<std::uint32_t>("llama.rope.dimension_count") == 80);
    CHECK(f.get<std::uint32_t>("llama.vocab_size") == 263);
    CHECK(f.get<float>("llama.rope.freq_base") == 500000.0f);
    CHECK(f.get<float>("llama.attention.layer_norm_rms_epsilon") == 1e-6f);
    CHECK(f.get<std::uint32_t>("tokenizer.ggml.bos_token_id") == 1);
    CHECK(f.get<std::uint32_t>("tokenizer.ggml.eos_token_id") == 2);
    CHECK_FALSE(f.has("llama.rope.scaling.type"));  // llama3 scaling travels as rope_freqs
    CHECK_FALSE(f.has("general.quantization_version"));

    std::vector<std::string> names;
    for (const gguf::TensorInfo& t : f.tensors()) names.push_back(t.name);
    REQUIRE(names.size() == 1 + 1 + 2 * 9 + 2);
    CHECK(names[0] == "token_embd.weight");
    CHECK(names[1] == "rope_freqs.weight");
    CHECK(names[2] == "blk.0.attn_norm.weight");
    CHECK(names[3] == "blk.0.attn_q.weight");
    CHECK(names[10] == "blk.0.ffn_down.weight");
    CHECK(names[20] == "output_norm.weight");
    CHECK(names[21] == "output.weight");
    CHECK(f.find_tensor("blk.1.attn_q.weight")->type == gguf::GgmlType::bf16);  // passed through
    CHECK(f.find_tensor("blk.1.attn_q.weight")->dims == std::vector<std::uint64_t>{64, 960});
    CHECK(f.find_tensor("blk.1.ffn_norm.weight")->type == gguf::GgmlType::f32);  // 1-D: F32, as llama.cpp stores norms
    CHECK(f.find_tensor("rope_freqs.weight")->shape == Shape{40});

    // Q and K rows: GGUF row 2i + j of each head is Hugging Face row j·d/2 + i (llama.cpp's
    // reshape(n_head, 2, d/2, ...).swapaxes(1, 2)); V and the rest are untouched.
    const weft::safetensors::Checkpoint ckpt(golden_dir("gqa-bf16-llama3"));
    auto rows_match = [&](const std::string& hf_name, const std::string& gguf_name, Index heads) {
        const weft::Weight a = ckpt.weight(hf_name), b = f.weight(gguf_name);
        REQUIRE(a.shape == b.shape);
        const Index rows = a.shape[0], cols = a.shape[1], d = rows / heads;
        int wrong = 0;
        for (Index h = 0; h < heads; ++h)
            for (Index i = 0; i < d / 2; ++i)
                for (Index j = 0; j < 2; ++j) {
                    const Index to = h * d + 2 * i + j, from = heads == 0 ? to : h * d + j * (d / 2) + i;
                    if (std::memcmp(b.data + to * cols * 2, a.data + from * cols * 2, static_cast<std::size_t>(cols) * 2) != 0) ++wrong;
                }
        return wrong;
    };
    CHECK(rows_match("model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 12) == 0);
    CHECK(rows_match("model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 3) == 0);
    CHECK(std::memcmp(ckpt.weight("model.layers.1.self_attn.v_proj.weight").data, f.weight("blk.1.attn_v.weight").data, 240 * 64 * 2) == 0);
    CHECK(std::memcmp(ckpt.weight("lm_head.weight").data, f.weight("output.weight").data, 263 * 64 * 2) == 0);
    CHECK(gguf::hf_row_of_gguf_row(1, 8, 2) == 2);  // head 0 of 4 rows: GGUF rows 0,1,2,3 ← HF rows 0,2,1,3
    CHECK(gguf::hf_row_of_gguf_row(2, 8, 2) == 1);
    CHECK(gguf::hf_row_of_gguf_row(7, 8, 2) == 7);
    CHECK(gguf::hf_row_of_gguf_row(5, 8, 2) == 6);
}

TEST_CASE("convert_hf_to_gguf permutes Q/K biases, writes linear scaling as keys and leaves tied models without output") {
    TempDir dir("llama_gguf_bias");
    const std::string bias = dir.file("bias.gguf"), tied = dir.file("tied.gguf");
    gguf::convert_hf_to_gguf(golden_dir("mha-bias-f32"), bias);
    gguf::ConvertOptions named;
    named.name = "tiny";
    gguf::convert_hf_to_gguf(golden_dir("gqa-f16-tied"), tied, named);
    const gguf::File b(bias), t(tied);
    CHECK(b.get<std::string>("llama.rope.scaling.type") == "linear");
    CHECK(b.get<float>("llama.rope.scaling.factor") == 2.0f);
    CHECK(b.get<float>("llama.attention.layer_norm_rms_epsilon") == 1e-5f);
    CHECK(b.get<std::uint32_t>("llama.attention.key_length") == 16);
    CHECK_FALSE(b.has_tensor("rope_freqs.weight"));
    const weft::safetensors::Checkpoint ckpt(golden_dir("mha-bias-f32"));
    const auto hf_q = ckpt.weight("model.layers.0.self_attn.q_proj.bias").view<float>();
    const auto gg_q = b.weight("blk.0.attn_q.bias").view<float>();
    for (Index r = 0; r < 64; ++r) CHECK(gg_q(r) == hf_q(gguf::hf_row_of_gguf_row(r, 64, 4)));
    const auto hf_v = ckpt.weight("model.layers.0.self_attn.v_proj.bias").view<float>();
    CHECK(b.weight("blk.0.attn_v.bias").view<float>()(5) == hf_v(5));
    CHECK(b.has_tensor("blk.1.attn_output.bias"));

    CHECK(t.get<std::string>("general.name") == "tiny");
    CHECK_FALSE(t.has_tensor("output.weight"));
    CHECK(t.find_tensor("token_embd.weight")->type == gguf::GgmlType::f16);
    CHECK(weft::Llama::from_gguf(tied).config().tied_embeddings);
}

TEST_CASE("rope_freqs carries Llama 3.1 scaling: dividing plain frequencies by it gives the scaled ones") {
    const weft::hf::LlamaConfig c = weft::hf::load_llama_config(golden_dir("gqa-f32-llama3"));
    const std::vector<float> factors = gguf::llama3_rope_factors(c);
    REQUIRE(factors.size() == 40);
    CHECK(factors.front() == 1.0f);  // high frequencies kept
    CHECK(factors.back() == 8.0f);   // low frequencies divided by the factor
    int between = 0;
    for (float x : factors) between += x > 1.0f && x < 8.0f;
    CHECK(between > 0);  // and some interpolated

    weft::nn::RopeConfig rc;
    rc.head_dim = 80;
    rc.theta = c.rope_theta;
    weft::nn::Rope plain(rc);
    plain.divide_frequencies(factors);
    rc.scaling.kind = weft::nn::RopeScaling::Kind::llama3;
    rc.scaling.factor = 8;
    rc.scaling.low_freq_factor = 1;
    rc.scaling.high_freq_factor = 4;
    rc.scaling.original_max_position_embeddings = 64;
    const weft::nn::Rope scaled(rc);
    double worst = 0;
    for (std::size_t j = 0; j < 40; ++j) worst = std::max(worst, std::abs(plain.inv_freq()[j] / scaled.inv_freq()[j] - 1));
    CHECK(worst < 1e-7);  // the factors are stored as f32
}

TEST_CASE("convert_hf_to_gguf converts dtypes on the way, and the models still match") {
    TempDir dir("llama_gguf_dtypes");
    const std::string hf = golden_dir("gqa-f32-llama3");
    const auto tokens = read_ids(hf + "/tokens.txt");
    const Tensor<double> reference = weft::npy::load<double>(hf + "/logits.npy");
    // bf16 → f32 is exact: the bf16 model's logits, to the same bound as pass-through.
    const std::string widened = dir.file("widened.gguf");
    gguf::ConvertOptions to_f32, to_f16;
    to_f32.dtype = weft::DType::f32;
    to_f16.dtype = weft::DType::f16;
    gguf::convert_hf_to_gguf(golden_dir("gqa-bf16-llama3"), widened, to_f32);
    CHECK(gguf::File(widened).find_tensor("blk.0.ffn_up.weight")->type == gguf::GgmlType::f32);
    weft::Llama bf16_hf = weft::Llama::from_pretrained(golden_dir("gqa-bf16-llama3"), 64);
    weft::Llama bf16_f32 = weft::Llama::from_gguf(widened, 64);
    const Tensor<float> want = bf16_hf.forward(tokens);
    CHECK(max_rel_to_largest(bf16_f32.forward(tokens), want.view()) <= 1e-5);
    // f32 → f16 rounds the weights: close to the reference, not equal.
    const std::string narrowed = dir.file("narrowed.gguf");
    gguf::convert_hf_to_gguf(hf, narrowed, to_f16);
    CHECK(gguf::File(narrowed).find_tensor("output.weight")->type == gguf::GgmlType::f16);
    weft::Llama f16_model = weft::Llama::from_gguf(narrowed, 64);
    const double err = max_position_rel_l2(f16_model.forward(tokens), reference);
    const std::string report = "f32 weights stored as f16: max per-position relative L2 error " + sci(err);
    MESSAGE(report);
    CHECK(err > 1e-5);
    CHECK(err <= 2e-3);
}

TEST_CASE("convert_hf_to_gguf takes a per-tensor type choice and row encoders, and Llama loads quantized weights in place") {
    TempDir dir("llama_gguf_quantized");
    const std::string path = dir.file("q8.gguf"), hf = golden_dir("gqa-f32-llama3");
    gguf::ConvertOptions options;
    options.choose_type = [](const std::string& name, const Shape& shape, weft::DType) {
        return shape.rank() == 2 && name != "token_embd.weight" ? gguf::GgmlType::q8_0 : gguf::GgmlType::f32;
    };
    CHECK(has(error_of([&] { gguf::convert_hf_to_gguf(hf, path, options); }),
              "gguf: tensor 'blk.0.attn_q.weight' is to be stored as Q8_0, but ConvertOptions::encoders has no encoder for it"));
    CHECK_FALSE(std::filesystem::exists(path));
    options.encoders[gguf::GgmlType::q8_0] = encode_q8_0;
    gguf::convert_hf_to_gguf(hf, path, options);

    const gguf::File f(path);
    CHECK(f.get<std::uint32_t>("general.quantization_version") == 2);
    CHECK(f.find_tensor("blk.0.ffn_down.weight")->type == gguf::GgmlType::q8_0);
    CHECK(f.find_tensor("blk.0.ffn_down.weight")->nbytes() == 64 * 3 * 34);
    CHECK(f.find_tensor("token_embd.weight")->type == gguf::GgmlType::f32);
    // Row r of the permuted Q is the Q8_0 encoding of Hugging Face row hf_row_of_gguf_row(r).
    const weft::safetensors::Checkpoint ckpt(hf);
    const auto q = ckpt.weight("model.layers.0.self_attn.q_proj.weight").view<float>();
    std::vector<std::byte> row(2 * 34);
    encode_q8_0(std::span(q.data() + gguf::hf_row_of_gguf_row(3, 960, 12) * 64, 64), row);
    CHECK(std::memcmp(f.weight("blk.0.attn_q.weight").data + 3 * 68, row.data(), 68) == 0);

    const weft::Llama model = weft::Llama::from_gguf(path, 16);
    CHECK(model.config().n_layers == 2);
    // Bytes per decoded token count Q8_0 blocks: 34 bytes per 32 values.
    const std::uint64_t q8 = (2 * (960 * 64 + 240 * 64 * 2 + 64 * 960 + 3 * 96 * 64) + 263 * 64) / 32 * 34;
    CHECK(model.weight_bytes_per_token() == q8 + 64 * 4 + 2 * 2 * 64 * 4 + 64 * 4);  // + embedding row + norms
}

TEST_CASE("Llama::from_pretrained dispatches GGUF files by magic, and from_gguf names what a file lacks") {
    TempDir dir("llama_gguf_dispatch");
    const std::string gg = dir.file("model.gguf");
    gguf::convert_hf_to_gguf(golden_dir("gqa-f32-tied"), gg);
    const std::string renamed = dir.file("model.bin");
    std::filesystem::copy_file(gg, renamed);
    CHECK(weft::Llama::is_gguf(renamed));
    CHECK_FALSE(weft::Llama::is_gguf(golden_dir("gqa-f32-tied")));
    CHECK_FALSE(weft::Llama::is_gguf(golden_dir("gqa-f32-tied") + "/config.json"));
    CHECK(weft::Llama::from_pretrained(renamed, 8).config().vocab_size == 263);
    const std::string fake = dir.write("fake.gguf", "{\"not\": \"gguf\"}");
    CHECK(has(error_of([&] { (void)weft::Llama::from_pretrained(fake); }), "gguf: " + fake + ": expected the magic \"GGUF\""));

    // Rewrites the converted file with changes: extra / replaced keys and tensors dropped.
    const gguf::File f(gg);
    auto variant = [&](const std::string& name, const std::string& key, const gguf::EncodedValue* value, const std::string& drop) {
        gguf::Writer w;
        for (const auto& e : f.metadata())
            if (e.key != key) w.add(std::string(e.key), e.value);
        if (value) w.add(key, *value);
        for (const auto& t : f.tensors())
            if (t.name != drop) w.add_tensor(t.name, t.type, t.shape, f.tensor_bytes(t.name));
        const std::string path = dir.file(name);
        w.write(path);
        return path;
    };
    const auto qwen = gguf::encode("qwen2"), yarn = gguf::encode("yarn"), zero = gguf::encode(std::uint32_t(0));
    const std::string p1 = variant("arch.gguf", "general.architecture", &qwen, "");
    CHECK(error_of([&] { (void)weft::Llama::from_gguf(p1); }) ==
          "Llama: " + p1 + ": general.architecture is \"qwen2\"; Llama::from_gguf reads \"llama\"");
    const std::string p2 = variant("no_up.gguf", "", nullptr, "blk.1.ffn_up.weight");
    CHECK(error_of([&] { (void)weft::Llama::from_gguf(p2); }) == "Llama: " + p2 + ": no tensor 'blk.1.ffn_up.weight'");
    const std::string p3 = variant("yarn.gguf", "llama.rope.scaling.type", &yarn, "");
    CHECK(has(error_of([&] { (void)weft::Llama::from_gguf(p3); }), "llama.rope.scaling.type \"yarn\" is not supported"));
    const std::string p4 = variant("zero.gguf", "llama.block_count", &zero, "");
    CHECK(error_of([&] { (void)weft::Llama::from_gguf(p4); }) == "Llama: " + p4 + ": llama.block_count is 0, expected a positive count");
    const std::string p5 = variant("no_eps.gguf", "llama.attention.layer_norm_rms_epsilon", nullptr, "");
    CHECK(error_of([&] { (void)weft::Llama::from_gguf(p5); }) == "gguf: " + p5 + ": no metadata key 'llama.attention.layer_norm_rms_epsilon'");
    const auto vocab = gguf::encode(std::uint32_t(300));
    const std::string p6 = variant("vocab.gguf", "llama.vocab_size", &vocab, "");
    CHECK(error_of([&] { (void)weft::Llama::from_gguf(p6); }) == "Llama: " + p6 + ": llama.vocab_size is 300 but token_embd.weight has 263 rows");
    const auto heads = gguf::encode(std::uint32_t(5));
    const std::string p7 = variant("kv.gguf", "llama.attention.head_count_kv", &heads, "");
    CHECK(error_of([&] { (void)weft::Llama::from_gguf(p7); }) ==
          "Llama: " + p7 + ": llama.attention.head_count 12 is not a multiple of llama.attention.head_count_kv 5");
    const auto ffn = gguf::encode(std::uint32_t(100));
    const std::string p8 = variant("ffn.gguf", "llama.feed_forward_length", &ffn, "");
    const std::string e8 = error_of([&] { (void)weft::Llama::from_gguf(p8); });  // gate, up or down: argument order is unspecified
    CHECK_MESSAGE((has(e8, "Llama: " + p8 + ": tensor 'blk.0.ffn_") && (has(e8, "expected [100, 64]") || has(e8, "expected [64, 100]"))), e8);
}

}  // namespace test_llama_gguf
