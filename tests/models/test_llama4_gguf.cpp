// weft::Llama4 from GGUF: each golden Hugging Face Llama 4 model (tests/data/llama4) and each
// ablation of the first one, converted with gguf::convert_llama4_hf_to_gguf, gives the logits of
// the Hugging Face directory and of the float64 reference; the converted file has llama.cpp's
// llama4 keys, tensor names, types and expert layouts, plus weft's keys exactly where a config
// departs from what llama.cpp hard-codes; quantized experts load in place; broken files are named.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../helpers.hpp"
#include "../temp_dir.hpp"

#include <weft/io/gguf_convert_llama4.hpp>

namespace test_llama4_gguf {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using namespace weft_test;
namespace gguf = weft::gguf;
namespace fs = std::filesystem;

namespace {

std::string golden_dir(const std::string& model) { return std::string(WEFT_SOURCE_DIR) + "/tests/data/llama4/" + model; }

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

// max over positions of ‖got_t − want_t‖₂ / ‖want_t‖₂ (test_llama4.cpp's measure)
template <class W>
double max_position_rel_l2(weft::TensorView<const float> got, const W& want) {
    double worst = 0;
    for (Index t = 0; t < want.shape()[0]; ++t) {
        double num = 0, den = 0;
        for (Index v = 0; v < want.shape()[1]; ++v) {
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

const char* const models[] = {"moe-step1", "moe-step2-cg"};
const char* const ablations[] = {"dense", "no-chunking", "no-nope", "no-qk-norm", "no-temperature"};

// test_llama4.cpp's bound against the float64 reference.
constexpr double tolerance = 1e-5;

// Every hyper-parameter the two loaders derive, compared one by one (CHECKs name the field).
void check_same_config(const weft::Llama4Config& got, const weft::Llama4Config& want) {
    CHECK(got.vocab_size == want.vocab_size);
    CHECK(got.dim == want.dim);
    CHECK(got.n_layers == want.n_layers);
    CHECK(got.n_heads == want.n_heads);
    CHECK(got.n_kv_heads == want.n_kv_heads);
    CHECK(got.head_dim == want.head_dim);
    CHECK(got.n_experts == want.n_experts);
    CHECK(got.top_k == want.top_k);
    CHECK(got.max_positions == want.max_positions);
    CHECK(got.norm_eps == want.norm_eps);
    CHECK(got.rope.theta == want.rope.theta);
    CHECK(got.rope.pairing == weft::nn::RopePairing::interleaved);
    CHECK(got.moe_layers == want.moe_layers);
    CHECK(got.rope_layers == want.rope_layers);
    CHECK(got.chunked_layers == want.chunked_layers);
    if (std::find(want.chunked_layers.begin(), want.chunked_layers.end(), true) != want.chunked_layers.end())
        CHECK(got.chunk_size == want.chunk_size);
    CHECK(got.qk_norm == want.qk_norm);
    CHECK(got.temperature_tuning == want.temperature_tuning);
    if (want.temperature_tuning) {
        CHECK(got.attn_scale == want.attn_scale);
        CHECK(got.floor_scale == want.floor_scale);
    }
    CHECK(got.tied_embeddings == want.tied_embeddings);
    CHECK(got.bos_ids == want.bos_ids);
    CHECK(got.eos_ids == std::vector<std::int32_t>{want.eos_ids.front()});  // GGUF keeps one eos id
    bool moe = false, dense = false;
    for (bool m : want.moe_layers) (m ? moe : dense) = true;
    if (moe) CHECK(got.expert_ffn_dim == want.expert_ffn_dim);
    if (dense) CHECK(got.dense_ffn_dim == want.dense_ffn_dim);
}

// A Hugging Face directory with `config` and the checkpoint of `model` (copied).
std::string hf_dir_with_config(const TempDir& dir, const std::string& name, const std::string& config_path, const std::string& model) {
    const fs::path d = dir.path / name;
    fs::create_directories(d);
    fs::copy_file(config_path, d / "config.json");
    fs::copy_file(golden_dir(model) + "/model.safetensors", d / "model.safetensors");
    return d.string();
}

// Rewrites a GGUF file with changes: a key replaced, added or dropped, a tensor dropped.
std::string rewrite(const TempDir& dir, const gguf::File& f, const std::string& name, const std::string& key,
                    const gguf::EncodedValue* value, const std::string& drop_tensor = "") {
    gguf::Writer w;
    for (const auto& e : f.metadata())
        if (e.key != key) w.add(std::string(e.key), e.value);
    if (value) w.add(key, *value);
    for (const auto& t : f.tensors())
        if (t.name != drop_tensor) w.add_tensor(t.name, t.type, t.shape, f.tensor_bytes(t.name));
    const std::string path = dir.file(name);
    w.write(path);
    return path;
}

// A minimal safetensors writer (f32 tensors), for a synthetic checkpoint.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor<float>>>& tensors) {
    nlohmann::json header = nlohmann::json::object();
    std::uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        std::vector<Index> shape;
        for (int i = 0; i < t.shape().rank(); ++i) shape.push_back(t.shape()[i]);
        const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * 4;
        header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    while (text.size() % 8 != 0) text += ' ';
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), static_cast<std::streamsize>(n));
    for (const auto& [name, t] : tensors) out.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.numel() * 4));
}

}  // namespace

TEST_CASE("Llama4 from a converted GGUF file gives the Hugging Face directory's logits and the float64 reference's") {
    TempDir dir("llama4_gguf_logits");
    for (const char* name : models) {
        const std::string model = name, hf = golden_dir(model), path = dir.file(model + ".gguf");
        CAPTURE(model);
        gguf::convert_llama4_hf_to_gguf(hf, path);
        weft::Llama4 from_hf = weft::Llama4::from_pretrained(hf, 64);
        weft::Llama4 from_gguf = weft::Llama4::from_pretrained(path, 64);  // dispatches on the .gguf path
        check_same_config(from_gguf.config(), from_hf.config());
        const auto tokens = read_ids(hf + "/tokens.txt");
        const Tensor<float> want(from_hf.forward(tokens));
        const auto got = from_gguf.forward(tokens);
        REQUIRE(got.shape() == want.shape());
        // The same f32 weights; the experts are read [out, in] instead of [in, out] (the same FMA
        // chains), and llama3 scaling comes as f32 rope_freqs divisors.
        const double vs_hf = max_rel_to_largest(got, want.view());
        const double vs_reference = max_position_rel_l2(got, weft::npy::load<double>(hf + "/logits.npy"));
        const std::string report = model + ": vs Hugging Face " + sci(vs_hf) + " (max |diff| / max |logit|), vs float64 reference " +
                                   sci(vs_reference) + " (max per-position relative L2)";
        MESSAGE(report);
        CHECK(vs_hf <= 1e-5);
        CHECK(vs_reference <= tolerance);
        CHECK(from_gguf.weight_bytes_per_token() == from_hf.weight_bytes_per_token());
    }
}

TEST_CASE("Llama4 from GGUF decodes greedily to the reference's ids across chunk boundaries") {
    TempDir dir("llama4_gguf_greedy");
    for (const char* name : models) {
        const std::string model = name, path = dir.file(model + ".gguf");
        CAPTURE(model);
        gguf::convert_llama4_hf_to_gguf(golden_dir(model), path);
        weft::Llama4 m = weft::Llama4::from_gguf(path, 64);
        const auto tokens = read_ids(golden_dir(model) + "/tokens.txt");
        const auto want = read_ids(golden_dir(model) + "/greedy.txt");
        std::int32_t next = weft::row_argmax(m.forward(tokens, weft::Logits::last))(0, 0);
        std::vector<std::int32_t> got;
        for (std::size_t i = 0; i < want.size(); ++i) {
            got.push_back(next);
            next = weft::row_argmax(m.decode(next))(0);
        }
        CHECK(got == want);
    }
}

TEST_CASE("each ablation survives conversion: weft's keys carry what llama.cpp hard-codes, and the logits match the reference") {
    TempDir dir("llama4_gguf_ablations");
    const std::string model = "moe-step1";
    const auto tokens = read_ids(golden_dir(model) + "/tokens.txt");
    for (const char* name : ablations) {
        const std::string variant = name, ablation = golden_dir(model) + "/ablations/" + variant;
        CAPTURE(variant);
        const std::string hf = hf_dir_with_config(dir, variant, ablation + "/config.json", model), path = dir.file(variant + ".gguf");
        gguf::convert_llama4_hf_to_gguf(hf, path);
        weft::Llama4 from_gguf = weft::Llama4::from_pretrained(path, 64);
        weft::Llama4 from_hf = weft::Llama4::from_pretrained(hf, 64);
        check_same_config(from_gguf.config(), from_hf.config());
        const Tensor<float> want(from_hf.forward(tokens));
        const auto got = from_gguf.forward(tokens);
        const double vs_hf = max_rel_to_largest(got, want.view());
        const double vs_reference = max_position_rel_l2(got, weft::npy::load<double>(ablation + "/logits.npy"));
        const std::string report = variant + ": vs Hugging Face " + sci(vs_hf) + ", vs float64 reference " + sci(vs_reference);
        MESSAGE(report);
        CHECK(vs_hf <= 1e-5);
        CHECK(vs_reference <= tolerance);

        // The keys each ablation needs beyond llama.cpp's (the base model's are checked below).
        const gguf::File f(path);
        namespace k = weft::llama4_gguf;
        if (variant == "dense") {  // moe_layers []: every 5th of 4 layers
            CHECK(f.get<std::uint32_t>("llama4.interleave_moe_layer_step") == 5);
            CHECK_FALSE(f.has_tensor("blk.0.ffn_gate_inp.weight"));
            CHECK(f.has_tensor("blk.3.ffn_gate.weight"));
        } else {
            CHECK(f.get<std::uint32_t>("llama4.interleave_moe_layer_step") == 1);
            CHECK_FALSE(f.has_tensor("blk.0.ffn_gate.weight"));  // the checkpoint's unused dense weights stay out
        }
        if (variant == "no-chunking") {  // llama.cpp's own form: every layer_types entry full_attention
            CHECK(f.get<std::uint32_t>(k::sliding_window) == 0);
            CHECK_FALSE(f.has(k::sliding_window_pattern));
        } else {
            CHECK(f.get<std::uint32_t>(k::sliding_window) == 8);
        }
        // Chunked where RoPE is used (layers 0 and 2), not llama.cpp's l % 4 < 3.
        CHECK(f.has(k::sliding_window_pattern) == (variant != "no-chunking"));
        if (variant != "no-chunking")
            CHECK(f.get_array<bool>(k::sliding_window_pattern).to_vector() == std::vector<bool>{true, false, true, false});
        CHECK(f.has(k::use_qk_norm) == (variant == "no-qk-norm"));
        if (variant == "no-qk-norm") CHECK_FALSE(f.get<bool>(k::use_qk_norm));
        if (variant == "no-temperature") CHECK(f.get<float>(k::temperature_scale) == 0.0f);
        else CHECK(f.get<float>(k::temperature_scale) == 0.25f);
        if (variant == "no-nope") CHECK(f.get_array<bool>(k::rope_layers).to_vector() == std::vector<bool>{true, true, true, true});
        else CHECK(f.get_array<bool>(k::rope_layers).to_vector() == std::vector<bool>{true, false, true, false});
    }
}

TEST_CASE("convert_llama4_hf_to_gguf writes llama.cpp's llama4 keys, tensor names, types and expert layouts") {
    TempDir dir("llama4_gguf_layout");
    const std::string hf = golden_dir("moe-step2-cg"), path = dir.file("cg.gguf");
    gguf::convert_llama4_hf_to_gguf(hf, path);
    const gguf::File f(path);
    CHECK(f.get<std::string>("general.architecture") == "llama4");
    CHECK(f.get<std::string>("general.name") == "moe-step2-cg");
    CHECK(f.get<std::uint32_t>("llama4.block_count") == 4);
    CHECK(f.get<std::uint32_t>("llama4.context_length") == 256);
    CHECK(f.get<std::uint32_t>("llama4.embedding_length") == 40);
    CHECK(f.get<std::uint32_t>("llama4.feed_forward_length") == 36);         // intermediate_size_mlp
    CHECK(f.get<std::uint32_t>("llama4.expert_feed_forward_length") == 22);  // intermediate_size
    CHECK(f.get<std::uint32_t>("llama4.expert_count") == 4);
    CHECK(f.get<std::uint32_t>("llama4.expert_used_count") == 2);
    CHECK(f.get<std::uint32_t>("llama4.interleave_moe_layer_step") == 2);
    CHECK(f.get<std::uint32_t>("llama4.attention.head_count") == 6);
    CHECK(f.get<std::uint32_t>("llama4.attention.head_count_kv") == 3);
    CHECK(f.get<std::uint32_t>("llama4.attention.key_length") == 10);
    CHECK(f.get<std::uint32_t>("llama4.attention.value_length") == 10);
    CHECK(f.get<std::uint32_t>("llama4.rope.dimension_count") == 10);
    CHECK(f.get<std::uint32_t>("llama4.vocab_size") == 131);
    CHECK(f.get<float>("llama4.rope.freq_base") == 10000.0f);
    CHECK(f.get<float>("llama4.attention.layer_norm_rms_epsilon") == 1e-5f);
    CHECK(f.get<std::uint32_t>("tokenizer.ggml.bos_token_id") == 1);
    CHECK(f.get<std::uint32_t>("tokenizer.ggml.eos_token_id") == 2);
    CHECK_FALSE(f.has("llama4.rope.scaling.type"));  // llama3 scaling travels as rope_freqs
    // no_rope_layers [1, 1, 0, 1] and chunks of 6 where RoPE is used: not llama.cpp's pattern.
    CHECK(f.get<std::uint32_t>(weft::llama4_gguf::sliding_window) == 6);
    CHECK(f.get_array<bool>(weft::llama4_gguf::sliding_window_pattern).to_vector() == std::vector<bool>{true, true, false, true});
    CHECK(f.get_array<bool>(weft::llama4_gguf::rope_layers).to_vector() == std::vector<bool>{true, true, false, true});
    CHECK_FALSE(f.get<bool>(weft::llama4_gguf::use_qk_norm));  // use_qk_norm false, but llama.cpp turns it on unless 128 experts
    CHECK(f.get<float>(weft::llama4_gguf::temperature_scale) == 0.2f);
    CHECK(f.get<std::uint32_t>(weft::llama4_gguf::temperature_length) == 5);

    // Names, types and ggml dims (dims[0] contiguous): llama.cpp's create_tensor shapes.
    auto dims = [&](const std::string& name) { return f.find_tensor(name)->dims; };
    using D = std::vector<std::uint64_t>;
    CHECK(f.tensors().size() == 1 + 1 + 4 * 6 + 2 * 3 + 2 * 7 + 1);  // embd, rope_freqs, layers, output_norm (tied: no output)
    CHECK_FALSE(f.has_tensor("output.weight"));
    CHECK(dims("token_embd.weight") == D{40, 131});
    CHECK(dims("rope_freqs.weight") == D{5});
    CHECK(dims("blk.0.attn_q.weight") == D{40, 60});
    CHECK(dims("blk.0.attn_k.weight") == D{40, 30});
    CHECK(dims("blk.0.attn_output.weight") == D{60, 40});
    CHECK(dims("blk.0.ffn_gate.weight") == D{40, 36});
    CHECK(dims("blk.0.ffn_down.weight") == D{36, 40});
    CHECK_FALSE(f.has_tensor("blk.0.ffn_gate_inp.weight"));
    CHECK_FALSE(f.has_tensor("blk.1.ffn_gate.weight"));
    CHECK(dims("blk.1.ffn_gate_inp.weight") == D{40, 4});
    CHECK(dims("blk.1.ffn_gate_exps.weight") == D{40, 22, 4});  // {n_embd, n_ff_exp, n_expert}
    CHECK(dims("blk.1.ffn_up_exps.weight") == D{40, 22, 4});
    CHECK(dims("blk.1.ffn_down_exps.weight") == D{22, 40, 4});  // {n_ff_exp, n_embd, n_expert}
    CHECK(dims("blk.3.ffn_gate_shexp.weight") == D{40, 22});
    CHECK(dims("blk.3.ffn_down_shexp.weight") == D{22, 40});
    for (const auto& t : f.tensors()) CHECK(t.type == gguf::GgmlType::f32);  // an f32 checkpoint stays f32

    // Values: experts transposed (gate columns first), Q and K as they are (no permutation).
    const weft::safetensors::Checkpoint ckpt(hf);
    const auto gate_up = ckpt.weight("language_model.model.layers.1.feed_forward.experts.gate_up_proj").view<float>();  // [E, D, 2F]
    const auto down = ckpt.weight("language_model.model.layers.1.feed_forward.experts.down_proj").view<float>();        // [E, F, D]
    const auto gate_exps = f.weight("blk.1.ffn_gate_exps.weight").view<float>(), up_exps = f.weight("blk.1.ffn_up_exps.weight").view<float>();
    const auto down_exps = f.weight("blk.1.ffn_down_exps.weight").view<float>();
    int mismatches = 0;
    for (Index e = 0; e < 4; ++e)
        for (Index j = 0; j < 22; ++j)
            for (Index d = 0; d < 40; ++d) {
                mismatches += gate_exps(e, j, d) != gate_up(e, d, j);
                mismatches += up_exps(e, j, d) != gate_up(e, d, 22 + j);
                mismatches += down_exps(e, d, j) != down(e, j, d);
            }
    CHECK(mismatches == 0);
    CHECK(std::memcmp(ckpt.weight("language_model.model.layers.2.self_attn.q_proj.weight").data, f.weight("blk.2.attn_q.weight").data, 60 * 40 * 4) == 0);
    CHECK(std::memcmp(ckpt.weight("language_model.model.layers.2.self_attn.k_proj.weight").data, f.weight("blk.2.attn_k.weight").data, 30 * 40 * 4) == 0);
}

TEST_CASE("a Scout- or Maverick-shaped config gets exactly llama.cpp's keys, and llama.cpp's constants reproduce its config") {
    TempDir dir("llama4_gguf_meta");
    // Meta's text configs, shrunk (8 layers, small sizes), keeping what decides the attention.
    const std::string scout = R"({"model_type": "llama4_text", "num_hidden_layers": 8, "hidden_size": 64, "vocab_size": 8,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 32, "intermediate_size_mlp": 64,
        "num_local_experts": 16, "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "attn_temperature_tuning": 4,
        "no_rope_layers": [], "use_qk_norm": true, "attention_chunk_size": 8192, "floor_scale": 8192, "attn_scale": 0.1,
        "rope_scaling": {"rope_type": "llama3", "factor": 16.0, "low_freq_factor": 1.0, "high_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192},
        "bos_token_id": 200000, "eos_token_id": [200001, 200007, 200008]})";
    const std::string maverick = R"({"model_type": "llama4_text", "num_hidden_layers": 8, "hidden_size": 64, "vocab_size": 8,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 32, "intermediate_size_mlp": 64,
        "num_local_experts": 128, "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "attn_temperature_tuning": true,
        "no_rope_layers": [], "use_qk_norm": false, "attention_chunk_size": 8192,
        "bos_token_id": 200000, "eos_token_id": [200001, 200007, 200008]})";
    for (const auto& config : {std::pair<std::string, std::string>{"scout", scout}, {"maverick", maverick}}) {
        const std::string& label = config.first;  // CAPTURE cannot take structured bindings
        const std::string& json = config.second;
        CAPTURE(label);
        const auto hc = weft::hf::parse_llama4_config(json, label);
        gguf::Writer w;
        gguf::add_llama4_metadata(w, hc, label);
        const Tensor<float> embd(Shape{8, 64});
        w.add_tensor("token_embd.weight", weft::Weight::of(embd));
        w.add_tensor("output.weight", weft::Weight::of(embd));
        const std::string path = dir.file(label + ".gguf");
        w.write(path);
        const gguf::File f(path);
        std::vector<std::string> keys;
        for (const auto& e : f.metadata()) keys.emplace_back(e.key);
        const std::vector<std::string> llama_cpp = {
            "general.architecture", "general.name", "llama4.block_count", "llama4.context_length", "llama4.embedding_length",
            "llama4.feed_forward_length", "llama4.attention.head_count", "llama4.attention.head_count_kv", "llama4.rope.freq_base",
            "llama4.attention.layer_norm_rms_epsilon", "llama4.expert_count", "llama4.expert_used_count", "llama4.attention.key_length",
            "llama4.attention.value_length", "llama4.vocab_size", "llama4.rope.dimension_count", "llama4.interleave_moe_layer_step",
            "llama4.expert_feed_forward_length", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
        CHECK(keys == llama_cpp);
        check_same_config(weft::Llama4::config_from_gguf(f), weft::Llama4::config_from_hf(hc));
        CHECK(weft::Llama4::config_from_gguf(f).qk_norm == (label == "scout"));
    }
}

TEST_CASE("convert_llama4_hf_to_gguf converts dtypes on the way, experts included, and the model still matches") {
    TempDir dir("llama4_gguf_dtypes");
    const std::string hf = golden_dir("moe-step1");
    const auto tokens = read_ids(hf + "/tokens.txt");
    const Tensor<double> reference = weft::npy::load<double>(hf + "/logits.npy");
    for (const weft::DType dtype : {weft::DType::bf16, weft::DType::f16}) {
        CAPTURE(dtype);
        gguf::ConvertOptions options;
        options.dtype = dtype;
        const std::string path = dir.file(std::string(weft::dtype_name(dtype)) + ".gguf");
        gguf::convert_llama4_hf_to_gguf(hf, path, options);
        const gguf::File f(path);
        const gguf::GgmlType want = gguf::to_ggml(dtype);
        CHECK(f.find_tensor("blk.0.ffn_gate_exps.weight")->type == want);
        CHECK(f.find_tensor("blk.0.ffn_down_exps.weight")->type == want);
        CHECK(f.find_tensor("blk.0.ffn_up_shexp.weight")->type == want);
        CHECK(f.find_tensor("blk.0.attn_q.weight")->type == want);
        CHECK(f.find_tensor("token_embd.weight")->type == want);
        CHECK(f.find_tensor("blk.0.ffn_gate_inp.weight")->type == gguf::GgmlType::f32);  // the router stays f32, as in llama.cpp
        CHECK(f.find_tensor("blk.0.attn_norm.weight")->type == gguf::GgmlType::f32);
        CHECK(f.find_tensor("rope_freqs.weight")->type == gguf::GgmlType::f32);
        // Element (e, j, d) of the gate bank is gate_up[e, d, j] rounded once.
        const weft::safetensors::Checkpoint ckpt(hf);
        const auto gu = ckpt.weight("model.layers.2.feed_forward.experts.gate_up_proj").view<float>();
        const weft::Weight gate = f.weight("blk.2.ffn_up_exps.weight");
        const float got = dtype == weft::DType::bf16 ? static_cast<float>(gate.view<weft::bf16>()(3, 5, 7))
                                                     : static_cast<float>(gate.view<weft::f16>()(3, 5, 7));
        const float exact = gu(3, 7, 22 + 5);
        CHECK(got == (dtype == weft::DType::bf16 ? static_cast<float>(weft::bf16(exact)) : static_cast<float>(weft::f16(exact))));

        weft::Llama4 m = weft::Llama4::from_gguf(path, 64);
        const double err = max_position_rel_l2(m.forward(tokens), reference);
        const std::string report = std::string(weft::dtype_name(dtype)) + " weights: max per-position relative L2 error " + sci(err);
        MESSAGE(report);
        CHECK(err > 1e-5);
        CHECK(err <= (dtype == weft::DType::bf16 ? 3e-2 : 3e-3));
    }
}

TEST_CASE("quantized experts: a Q8_0 conversion loads in place and stays close to the f32 model") {
    // A synthetic Llama 4 whose rows are whole Q8_0 blocks (dim 64, expert hidden 32).
    TempDir dir("llama4_gguf_q8");
    const fs::path hf = dir.path / "hf";
    fs::create_directories(hf);
    const Index D = 64, F = 32, FD = 64, V = 96, L = 2, E = 4, H = 4, KV = 2, HD = 16;
    std::ofstream(hf / "config.json") << R"({"model_type": "llama4_text", "vocab_size": 96, "hidden_size": 64, "intermediate_size": 32,
        "intermediate_size_mlp": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "num_local_experts": 4, "num_experts_per_tok": 2, "interleave_moe_layer_step": 2, "attention_chunk_size": 8,
        "no_rope_layer_interval": 2, "floor_scale": 4, "attn_scale": 0.5, "rope_theta": 10000.0, "tie_word_embeddings": false})";
    std::vector<std::pair<std::string, Tensor<float>>> tensors;
    auto add = [&](const std::string& name, const Shape& s, float scale) { tensors.emplace_back(name, random_tensor(s, -scale, scale)); };
    add("model.embed_tokens.weight", Shape{V, D}, 1.0f);
    add("lm_head.weight", Shape{V, D}, 0.2f);
    add("model.norm.weight", Shape{D}, 1.5f);
    for (Index l = 0; l < L; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", Shape{D}, 1.5f);
        add(p + "post_attention_layernorm.weight", Shape{D}, 1.5f);
        add(p + "self_attn.q_proj.weight", Shape{H * HD, D}, 0.2f);
        add(p + "self_attn.k_proj.weight", Shape{KV * HD, D}, 0.2f);
        add(p + "self_attn.v_proj.weight", Shape{KV * HD, D}, 0.2f);
        add(p + "self_attn.o_proj.weight", Shape{D, H * HD}, 0.2f);
        if (l == 1) {
            add(p + "feed_forward.router.weight", Shape{E, D}, 0.3f);
            add(p + "feed_forward.experts.gate_up_proj", Shape{E, D, 2 * F}, 0.2f);
            add(p + "feed_forward.experts.down_proj", Shape{E, F, D}, 0.2f);
            add(p + "feed_forward.shared_expert.gate_proj.weight", Shape{F, D}, 0.2f);
            add(p + "feed_forward.shared_expert.up_proj.weight", Shape{F, D}, 0.2f);
            add(p + "feed_forward.shared_expert.down_proj.weight", Shape{D, F}, 0.2f);
        } else {
            add(p + "feed_forward.gate_proj.weight", Shape{FD, D}, 0.2f);
            add(p + "feed_forward.up_proj.weight", Shape{FD, D}, 0.2f);
            add(p + "feed_forward.down_proj.weight", Shape{D, FD}, 0.2f);
        }
    }
    write_safetensors((hf / "model.safetensors").string(), tensors);

    gguf::ConvertOptions q8;
    q8.choose_type = [](const std::string& name, const Shape& shape, weft::DType) {
        return shape.rank() >= 2 && name != "token_embd.weight" && !name.ends_with("ffn_gate_inp.weight") ? gguf::GgmlType::q8_0
                                                                                                          : gguf::GgmlType::f32;
    };
    q8.encoders[gguf::GgmlType::q8_0] = [](std::span<const float> row, std::span<std::byte> out) {
        weft::quant::quantize_row(weft::DType::q8_0, row.data(), out.data(), static_cast<Index>(row.size()));
    };
    const std::string q8_path = dir.file("q8.gguf"), f32_path = dir.file("f32.gguf");
    gguf::convert_llama4_hf_to_gguf(hf.string(), q8_path, q8);
    gguf::convert_llama4_hf_to_gguf(hf.string(), f32_path);

    const gguf::File f(q8_path);
    CHECK(f.get<std::uint32_t>("general.quantization_version") == 2);
    CHECK(f.find_tensor("blk.1.ffn_gate_exps.weight")->type == gguf::GgmlType::q8_0);
    CHECK(f.find_tensor("blk.1.ffn_down_exps.weight")->type == gguf::GgmlType::q8_0);
    CHECK(f.find_tensor("blk.1.ffn_down_exps.weight")->nbytes() == static_cast<std::uint64_t>(E * D * (F / 32) * 34));
    CHECK(f.find_tensor("blk.1.ffn_gate_inp.weight")->type == gguf::GgmlType::f32);
    // Row (e = 2, j = 5) of the down bank is the Q8_0 encoding of column 5 of expert 2's [F, D] matrix.
    const weft::safetensors::Checkpoint ckpt(hf.string());
    const auto hf_down = ckpt.weight("model.layers.1.feed_forward.experts.down_proj").view<float>();
    std::vector<float> column(F);
    for (Index k = 0; k < F; ++k) column[static_cast<std::size_t>(k)] = hf_down(2, k, 5);
    std::vector<std::byte> row(static_cast<std::size_t>(F / 32 * 34));
    weft::quant::quantize_row(weft::DType::q8_0, column.data(), row.data(), F);
    CHECK(std::memcmp(f.weight("blk.1.ffn_down_exps.weight").data + (2 * D + 5) * (F / 32 * 34), row.data(), row.size()) == 0);

    std::vector<std::int32_t> tokens;
    for (int i = 0; i < 20; ++i) tokens.push_back((i * 37 + 11) % V);
    weft::Llama4 from_hf = weft::Llama4::from_pretrained(hf.string(), 32);
    weft::Llama4 from_f32 = weft::Llama4::from_pretrained(f32_path, 32);
    weft::Llama4 from_q8 = weft::Llama4::from_pretrained(q8_path, 32);
    const Tensor<float> want(from_hf.forward(tokens));
    CHECK(max_rel_to_largest(from_f32.forward(tokens), want.view()) <= 1e-5);
    // The Q8_0 model takes the prompt in parts of 8, 8 and 4 tokens (parts of fewer than 16 rows
    // keep the quantized GEMM off its AMX path, which crashed on the development machine).
    Tensor<float> got(Shape{20, V});
    for (Index at = 0; at < 20; at += 8) {
        const Index n = std::min<Index>(8, 20 - at);
        got.slice(0, at, at + n) = from_q8.forward(std::span(tokens).subspan(static_cast<std::size_t>(at), static_cast<std::size_t>(n)));
    }
    const double err = max_rel_to_largest(got.view(), want.view());
    const std::string report = "Q8_0 weights (experts included): max |diff| / max |logit| " + sci(err) + " from the f32 model";
    MESSAGE(report);
    CHECK(err > 0);
    CHECK(err <= 3e-2);
    // A decoded token reads Q8_0 experts: 34 bytes per 32 values.
    CHECK(from_q8.weight_bytes_per_token() < from_f32.weight_bytes_per_token() / 3);
    CHECK(from_q8.config().top_k == 2);
}

TEST_CASE("Llama4::from_gguf names what a file lacks or gets wrong, and the converter what GGUF cannot hold") {
    TempDir dir("llama4_gguf_errors");
    const std::string gg = dir.file("model.gguf");
    gguf::convert_llama4_hf_to_gguf(golden_dir("moe-step1"), gg);
    const gguf::File f(gg);

    // Dispatch by magic, whatever the name.
    const std::string renamed = dir.file("model.bin");
    fs::copy_file(gg, renamed);
    CHECK(weft::Llama4::from_pretrained(renamed, 8).config().n_experts == 4);
    const std::string fake = dir.write("fake.gguf", "not a gguf file at all");
    CHECK(has(error_of([&] { (void)weft::Llama4::from_pretrained(fake); }), "gguf: " + fake + ": expected the magic \"GGUF\""));

    const std::string p1 = rewrite(dir, f, "no_up.gguf", "", nullptr, "blk.2.ffn_up_exps.weight");
    CHECK(error_of([&] { (void)weft::Llama4::from_gguf(p1); }) == "Llama4: " + p1 + ": no tensor 'blk.2.ffn_up_exps.weight'");
    const std::string p1b = rewrite(dir, f, "no_shexp.gguf", "", nullptr, "blk.0.ffn_down_shexp.weight");
    CHECK(error_of([&] { (void)weft::Llama4::from_gguf(p1b); }) == "Llama4: " + p1b + ": no tensor 'blk.0.ffn_down_shexp.weight'");

    const auto llama = gguf::encode("llama");
    const std::string p2 = rewrite(dir, f, "arch.gguf", "general.architecture", &llama);
    CHECK(error_of([&] { (void)weft::Llama4::from_gguf(p2); }) ==
          "Llama4: " + p2 + ": general.architecture is \"llama\"; Llama4::from_gguf reads \"llama4\" (Llama 2/3 files load with weft::Llama)");
    CHECK(error_of([&] { (void)weft::Llama::from_gguf(gg); }) == "Llama: " + gg + ": general.architecture is \"llama4\"; Llama::from_gguf reads \"llama\"");

    const std::string p3 = rewrite(dir, f, "no_step.gguf", "llama4.interleave_moe_layer_step", nullptr);
    CHECK(error_of([&] { (void)weft::Llama4::from_gguf(p3); }) == "gguf: " + p3 + ": no metadata key 'llama4.interleave_moe_layer_step'");

    const auto ffn = gguf::encode(std::uint32_t(21));
    const std::string p4 = rewrite(dir, f, "ffn.gguf", "llama4.expert_feed_forward_length", &ffn);
    CHECK(error_of([&] { (void)weft::Llama4::from_gguf(p4); }) ==
          "Llama4: " + p4 + ": tensor 'blk.0.ffn_gate_exps.weight' has shape [4, 22, 40], expected [4, 21, 40]");

    const auto three = gguf::encode_array(std::vector<bool>{true, false, true});
    const std::string p5 = rewrite(dir, f, "rope_layers.gguf", weft::llama4_gguf::rope_layers, &three);
    CHECK(error_of([&] { (void)weft::Llama4::from_gguf(p5); }) ==
          "Llama4: " + p5 + ": llama4.weft.rope_layers is an array of 3 bool, expected an array of 4 bools (one per layer)");

    const auto rot = gguf::encode(std::uint32_t(6));
    const std::string p6 = rewrite(dir, f, "rot.gguf", "llama4.rope.dimension_count", &rot);
    CHECK(error_of([&] { (void)weft::Llama4::from_gguf(p6); }) ==
          "Llama4: " + p6 + ": llama4.rope.dimension_count 6 differs from the head size 12 (Llama 4 rotates whole heads)");

    const auto zero_temp_len = gguf::encode(std::uint32_t(0));
    const std::string p7 = rewrite(dir, f, "temp.gguf", weft::llama4_gguf::temperature_length, &zero_temp_len);
    CHECK(error_of([&] { (void)weft::Llama4::from_gguf(p7); }) ==
          "Llama4: " + p7 + ": llama4.attention.temperature_length is 0, expected a positive position count");

    // A file cut short: the last tensor's bytes are missing.
    const std::string cut = dir.file("cut.gguf");
    fs::copy_file(gg, cut);
    fs::resize_file(cut, fs::file_size(gg) - 100);
    CHECK(has(error_of([&] { (void)weft::Llama4::from_gguf(cut); }), "ends at byte"));

    // The converter: MoE layers GGUF cannot state, and tensors with no place.
    TempDir hfdir("llama4_gguf_errors_hf");
    const auto moe_step1 = nlohmann::json::parse(std::ifstream(golden_dir("moe-step1") + "/config.json"));
    auto odd = moe_step1;
    odd["moe_layers"] = {0, 3};
    const std::string odd_config = hfdir.write("odd.json", odd.dump());
    const std::string odd_hf = hf_dir_with_config(hfdir, "odd", odd_config, "moe-step1");
    CHECK(error_of([&] { gguf::convert_llama4_hf_to_gguf(odd_hf, dir.file("odd.gguf")); }) ==
          "gguf: the config's moe_layers [0, 3] of 4 layers are not every n-th layer; GGUF (llama4.interleave_moe_layer_step) can only "
          "state MoE layers (l + 1) % n == 0");
    CHECK_FALSE(fs::exists(dir.file("odd.gguf")));
    auto biased = moe_step1;
    biased["attention_bias"] = true;
    const std::string biased_hf = hf_dir_with_config(hfdir, "biased", hfdir.write("biased.json", biased.dump()), "moe-step1");
    CHECK(has(error_of([&] { gguf::convert_llama4_hf_to_gguf(biased_hf, dir.file("biased.gguf")); }), "attention_bias true"));
    auto fewer = moe_step1;
    fewer["num_hidden_layers"] = 3;
    const std::string fewer_hf = hf_dir_with_config(hfdir, "fewer", hfdir.write("fewer.json", fewer.dump()), "moe-step1");
    CHECK(error_of([&] { gguf::convert_llama4_hf_to_gguf(fewer_hf, dir.file("fewer.gguf")); }) ==
          "gguf: the checkpoint's tensor 'model.layers.3.feed_forward.down_proj.weight' has no place in a GGUF llama4 file");
}

}  // namespace test_llama4_gguf
