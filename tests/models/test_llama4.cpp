// weft::Llama4 against the float64 PyTorch reference (tests/golden/make_llama4_golden.py, itself
// checked against transformers' own modeling_llama4.py code run in float64): two small random
// models — every layer MoE (top-1 of 4, Llama4ForCausalLM) and MoE every 2nd layer (top-2,
// Llama4ForConditionalGeneration with tied embeddings) — with chunks shorter than the prompt,
// NoPE layers, temperature tuning that is visible at these lengths, QK-norm and llama3 rope
// scaling; and the first model with each feature switched off in turn. Errors are max
// per-position relative L2.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include <weft/models/llama4.hpp>

#include "../helpers.hpp"

namespace test_llama4 {

using weft::Index;
using weft::Tensor;
using namespace weft_test;
namespace nn = weft::nn;

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

// max over positions of ‖got_t − want_t‖₂ / ‖want_t‖₂
template <class G, class W>
double max_position_rel_l2(const G& got, const W& want) {
    double worst = 0;
    for (Index t = 0; t < want.shape()[0]; ++t) {
        double num = 0, den = 0;
        for (Index v = 0; v < want.shape()[1]; ++v) {
            const double d = double(got(t, v)) - double(want(t, v));
            num += d * d;
            den += double(want(t, v)) * double(want(t, v));
        }
        worst = std::max(worst, std::sqrt(num / den));
    }
    return worst;
}

std::string sci(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2e", x);
    return buf;
}

const char* const models[] = {"moe-step1", "moe-step2-cg"};

// The issue asks for 1e-4; weft measures ~1e-6 (see the MESSAGEs), so the bound is tighter to
// catch regressions.
constexpr double tolerance = 1e-5;

// A model with the checkpoint of `model` and the config of one of its ablations.
weft::Llama4 load_variant(const std::string& model, const std::string& variant, Index context = 64) {
    const auto hc = weft::hf::load_llama4_config(golden_dir(model) + "/ablations/" + variant);
    return weft::Llama4::from_checkpoint(hc, std::make_shared<weft::safetensors::Checkpoint>(golden_dir(model)), context);
}

// Llama4 assembled through the public constructor from the checkpoint's weights, as a GGUF loader
// would: experts in GGUF's [out, in] layout (transposed copies kept in `store`), optionally
// without the shared expert.
struct BlockBuilt {
    std::vector<Tensor<float>> store;
    std::shared_ptr<weft::safetensors::Checkpoint> ckpt;
    std::unique_ptr<weft::Llama4> model;
};
std::unique_ptr<BlockBuilt> build_from_blocks(const std::string& model, bool gguf_layout, bool shared_expert) {
    auto b = std::make_unique<BlockBuilt>();
    const std::string dir = golden_dir(model);
    const auto hc = weft::hf::load_llama4_config(dir);
    b->ckpt = std::make_shared<weft::safetensors::Checkpoint>(dir);
    b->store.reserve(64);
    // The config the loader would derive: take it from a loaded model.
    const weft::Llama4Config c = weft::Llama4::from_checkpoint(hc, b->ckpt, 64).config();
    const std::string pre = hc.nested ? "language_model.model." : "model.";
    auto w = [&](const std::string& name) { return b->ckpt->weight(name); };
    auto lin = [&](const std::string& name) { return nn::Linear(w(name + ".weight")); };
    // [E, a, b] -> a copy [E, b, a] (per-expert transpose).
    auto transpose_experts = [&](const weft::Weight& x) {
        const auto v = x.view<float>();
        const Index E = v.shape()[0], A = v.shape()[1], B = v.shape()[2];
        Tensor<float> t(weft::Shape{E, B, A});
        for (Index e = 0; e < E; ++e)
            for (Index i = 0; i < A; ++i)
                for (Index j = 0; j < B; ++j) t(e, j, i) = v(e, i, j);
        return t;
    };
    auto keep = [&](Tensor<float> t, const std::string& name) {
        b->store.push_back(std::move(t));
        return weft::Weight::of(b->store.back(), name);
    };
    std::vector<weft::Llama4Layer> layers;
    for (Index l = 0; l < c.n_layers; ++l) {
        const std::string p = pre + "layers." + std::to_string(l) + ".", f = p + "feed_forward.";
        weft::Llama4Layer layer;
        layer.attn_norm = nn::RMSNorm(w(p + "input_layernorm.weight"), c.norm_eps);
        layer.attention = nn::Attention(c.attention(l), lin(p + "self_attn.q_proj"), lin(p + "self_attn.k_proj"), lin(p + "self_attn.v_proj"),
                                        lin(p + "self_attn.o_proj"));
        layer.ffn_norm = nn::RMSNorm(w(p + "post_attention_layernorm.weight"), c.norm_eps);
        layer.is_moe = c.moe_layers[static_cast<std::size_t>(l)];
        if (layer.is_moe) {
            nn::Experts experts;
            if (gguf_layout) {
                // gate_up [E, D, 2F] -> [E, 2F, D]: gate rows, then up rows; down [E, F, D] -> [E, D, F].
                const Tensor<float> gu = transpose_experts(w(f + "experts.gate_up_proj"));
                const Index F = gu.shape()[1] / 2;
                const weft::Weight gate = keep(Tensor<float>(gu.slice(1, 0, F)), "ffn_gate_exps");
                const weft::Weight up = keep(Tensor<float>(gu.slice(1, F, 2 * F)), "ffn_up_exps");
                CHECK(gate.shape == weft::Shape{gu.shape()[0], F, gu.shape()[2]});
                experts = nn::Experts::out_in(gate, up, keep(transpose_experts(w(f + "experts.down_proj")), "ffn_down_exps"));
            } else {
                experts = nn::Experts::fused_in_out(w(f + "experts.gate_up_proj"), w(f + "experts.down_proj"));
            }
            nn::SwiGLU shared;
            if (shared_expert) shared = nn::SwiGLU(lin(f + "shared_expert.gate_proj"), lin(f + "shared_expert.up_proj"), lin(f + "shared_expert.down_proj"));
            layer.moe = nn::MoE(lin(f + "router"), std::move(experts), c.top_k, std::move(shared));
        } else {
            layer.mlp = nn::SwiGLU(lin(f + "gate_proj"), lin(f + "up_proj"), lin(f + "down_proj"));
        }
        layers.push_back(std::move(layer));
    }
    nn::Embedding embedding(w(pre + "embed_tokens.weight"));
    nn::Linear head = c.tied_embeddings ? nn::Linear(embedding.table()) : lin("lm_head");
    b->model = std::make_unique<weft::Llama4>(c, std::move(embedding), std::move(layers), nn::RMSNorm(w(pre + "norm.weight"), c.norm_eps),
                                              std::move(head), 64, b->ckpt);
    return b;
}

}  // namespace

TEST_CASE("Llama4 logits match the float64 reference at every prompt position") {
    for (const char* name : models) {
        const std::string model = name;
        CAPTURE(model);
        weft::Llama4 m = weft::Llama4::from_pretrained(golden_dir(model), 64);
        const auto tokens = read_ids(golden_dir(model) + "/tokens.txt");
        const Tensor<double> want = weft::npy::load<double>(golden_dir(model) + "/logits.npy");
        const auto logits = m.forward(tokens);
        REQUIRE(logits.shape() == want.shape());
        const double err = max_position_rel_l2(logits, want);
        const std::string report = model + ": max per-position relative L2 error " + sci(err);
        MESSAGE(report);
        CHECK(err <= tolerance);
    }
}

TEST_CASE("Llama4 greedy decoding reproduces the reference's ids across chunk boundaries") {
    for (const char* name : models) {
        const std::string model = name;
        CAPTURE(model);
        weft::Llama4 m = weft::Llama4::from_pretrained(golden_dir(model), 64);
        const auto tokens = read_ids(golden_dir(model) + "/tokens.txt");
        const auto want = read_ids(golden_dir(model) + "/greedy.txt");
        std::int32_t next = weft::row_argmax(m.forward(tokens, weft::Logits::last))(0, 0);
        std::vector<std::int32_t> got;
        for (std::size_t i = 0; i < want.size(); ++i) {
            got.push_back(next);
            next = weft::row_argmax(m.decode(next))(0);
        }
        CHECK(got == want);
        // 21 prompt + 8 generated tokens: chunks of 8 (6) end at 24 (18, 24) on the way.
        CHECK(m.position() == 29);
    }
}

TEST_CASE("Llama4 gives the same bits token by token, in uneven parts and at once, with one-chunk KV caches") {
    for (const char* name : models) {
        const std::string model = name;
        CAPTURE(model);
        const std::string dir = golden_dir(model);
        auto tokens = read_ids(dir + "/tokens.txt");
        const auto more = read_ids(dir + "/greedy.txt");
        tokens.insert(tokens.end(), more.begin(), more.end());  // 29 tokens: 4-5 chunks
        weft::Llama4 whole = weft::Llama4::from_pretrained(dir, 64), steps = weft::Llama4::from_pretrained(dir, 64),
                     parts = weft::Llama4::from_pretrained(dir, 64);
        const Tensor<float> all(whole.forward(tokens));
        for (std::size_t t = 0; t < tokens.size(); ++t) {
            const auto row = steps.decode(tokens[t]);
            for (Index v = 0; v < row.numel(); ++v) REQUIRE(row(v) == all(static_cast<Index>(t), v));
        }
        // Parts that start and end inside chunks and span several.
        std::size_t at = 0;
        for (std::size_t n : {5u, 13u, 1u, 10u}) {
            const Tensor<float> got(parts.forward(std::span(tokens).subspan(at, n)));
            CHECK(bits_of(got) == bits_of(Tensor<float>(all.slice(0, static_cast<Index>(at), static_cast<Index>(at + n)))));
            at += n;
        }
        // The one-chunk caches hold less than the full ones.
        const auto& c = whole.config();
        std::uint64_t chunked = 0;
        for (Index l = 0; l < c.n_layers; ++l) chunked += c.chunked_layers[static_cast<std::size_t>(l)];
        const std::uint64_t row_bytes = 2 * sizeof(float) * static_cast<std::uint64_t>(c.n_kv_heads * c.head_dim);
        CHECK(whole.kv_cache_bytes() == row_bytes * (chunked * static_cast<std::uint64_t>(c.chunk_size) + (c.n_layers - chunked) * 64));
    }
}

TEST_CASE("Llama4 logits are bit-identical for 1 and 2 threads") {
    for (const char* name : models) {
        const std::string dir = golden_dir(name);
        const auto tokens = read_ids(dir + "/tokens.txt");
        auto run = [&] {
            weft::Llama4 m = weft::Llama4::from_pretrained(dir, 64);
            std::vector<std::uint32_t> bits = bits_of(Tensor<float>(m.forward(tokens)));
            for (std::int32_t t : {7, 99, 3}) {
                const auto b = bits_of(Tensor<float>(m.decode(t)));
                bits.insert(bits.end(), b.begin(), b.end());
            }
            return bits;
        };
        CHECK(with_threads(1, run) == with_threads(2, run));
    }
}

TEST_CASE("each Llama 4 feature switched off changes the logits as the reference does") {
    const std::string model = "moe-step1";
    const auto tokens = read_ids(golden_dir(model) + "/tokens.txt");
    weft::Llama4 base = weft::Llama4::from_pretrained(golden_dir(model), 64);
    const Tensor<float> base_logits(base.forward(tokens));
    for (const char* name : {"dense", "no-chunking", "no-qk-norm", "no-temperature", "no-nope"}) {
        const std::string variant = name;
        CAPTURE(variant);
        weft::Llama4 m = load_variant(model, variant);
        const Tensor<double> want = weft::npy::load<double>(golden_dir(model) + "/ablations/" + variant + "/logits.npy");
        const auto logits = m.forward(tokens);
        const double err = max_position_rel_l2(logits, want), change = max_position_rel_l2(base_logits, want);
        const std::string report = variant + ": max per-position relative L2 error " + sci(err) +
                                   ", change from the full model " + sci(change);
        MESSAGE(report);
        CHECK(err <= tolerance);
        CHECK(change >= 0.1);
    }
}

TEST_CASE("Llama4 from blocks: GGUF-layout experts give the Hugging Face layout's bits; no shared expert changes the logits") {
    for (const char* name : models) {
        const std::string model = name;
        CAPTURE(model);
        const auto tokens = read_ids(golden_dir(model) + "/tokens.txt");
        weft::Llama4 loaded = weft::Llama4::from_pretrained(golden_dir(model), 64);
        const Tensor<float> want(loaded.forward(tokens));
        auto hf = build_from_blocks(model, false, true);
        CHECK(bits_of(Tensor<float>(hf->model->forward(tokens))) == bits_of(want));
        CHECK(hf->model->weight_bytes_per_token() == loaded.weight_bytes_per_token());
        // f32 experts: the [out, in] GEMM and the [in, out] GEMM compute the same FMA chains.
        auto gguf = build_from_blocks(model, true, true);
        CHECK(bits_of(Tensor<float>(gguf->model->forward(tokens))) == bits_of(want));
        CHECK(gguf->model->weight_bytes_per_token() == loaded.weight_bytes_per_token());
        auto no_shared = build_from_blocks(model, false, false);
        const double change = max_position_rel_l2(no_shared->model->forward(tokens), want);
        const std::string report = model + ": without the shared expert the logits move by " + sci(change);
        MESSAGE(report);
        CHECK(change >= 0.1);
        CHECK(no_shared->model->weight_bytes_per_token() < loaded.weight_bytes_per_token());
    }
}

TEST_CASE("Llama4 weight_bytes_per_token counts the active experts only") {
    weft::Llama4 m = weft::Llama4::from_pretrained(golden_dir("moe-step2-cg"), 64);
    const auto& c = m.config();
    const std::uint64_t D = c.dim, F = c.expert_ffn_dim, FD = c.dense_ffn_dim, V = c.vocab_size;
    const std::uint64_t attention = D * (c.n_heads + 2 * c.n_kv_heads) * c.head_dim + c.n_heads * c.head_dim * D;
    const std::uint64_t moe = c.n_experts * D + 3 * F * D + c.top_k * 3 * F * D;  // router, shared, top-k experts
    const std::uint64_t dense = 3 * FD * D;
    // 4 layers (2 MoE, 2 dense), 9 norms, one embedding row, the tied head read in full.
    const std::uint64_t values = 4 * attention + 2 * moe + 2 * dense + 9 * D + D + V * D;
    CHECK(m.weight_bytes_per_token() == 4 * values);
    CHECK(c.top_k == 2);
    CHECK(c.n_experts == 4);
}

TEST_CASE("Llama4 reads configuration_llama4.py's defaults, Meta's files and nested text configs") {
    const std::string origin = "config.json";
    const auto d = weft::hf::parse_llama4_config(R"({"model_type": "llama4_text"})", origin);
    CHECK(d.vocab_size == 202048);
    CHECK(d.hidden_size == 5120);
    CHECK(d.num_hidden_layers == 48);
    CHECK(d.num_key_value_heads == 8);
    CHECK(d.head_dim == 128);
    CHECK(d.intermediate_size == 8192);
    CHECK(d.intermediate_size_mlp == 16384);
    CHECK(d.rms_norm_eps == 1e-5);
    CHECK(d.rope_theta == 500000);
    CHECK(d.attention_chunk_size == 8192);
    CHECK(d.floor_scale == 8192);
    CHECK(d.attn_scale == doctest::Approx(0.1));
    CHECK(d.use_qk_norm);
    CHECK(d.attn_temperature_tuning);
    CHECK(d.moe_layers.size() == 48);
    CHECK(d.no_rope_layers.size() == 48);
    CHECK(d.no_rope_layers[2] == 1);
    CHECK(d.no_rope_layers[3] == 0);  // every 4th layer is NoPE
    CHECK(d.chunked_layers[3] == false);
    CHECK(d.chunked_layers[4] == true);
    CHECK(d.bos_token_ids == std::vector<long>{1});

    // Scout-like text_config: integer attn_temperature_tuning, empty no_rope_layers, llama3 scaling.
    const auto s = weft::hf::parse_llama4_config(R"({"model_type": "llama4", "tie_word_embeddings": false,
        "text_config": {"attn_temperature_tuning": 4, "no_rope_layers": [], "num_hidden_layers": 8, "interleave_moe_layer_step": 2,
                        "head_dim": null, "hidden_size": 640, "num_attention_heads": 5, "num_key_value_heads": null,
                        "rope_scaling": {"rope_type": "llama3", "factor": 16.0, "low_freq_factor": 1.0, "high_freq_factor": 1.0,
                                         "original_max_position_embeddings": 8192},
                        "bos_token_id": 200000, "eos_token_id": [200001, 200007, 200008]}})",
                                                 origin);
    CHECK(s.nested);
    CHECK(s.attn_temperature_tuning);
    CHECK(s.head_dim == 128);             // null: hidden_size / heads
    CHECK(s.num_key_value_heads == 5);    // null: num_attention_heads
    CHECK(s.moe_layers == std::vector<int>{1, 3, 5, 7});
    CHECK(s.no_rope_layers == std::vector<int>{1, 1, 1, 0, 1, 1, 1, 0});
    REQUIRE(s.rope_scaling.has_value());
    CHECK(s.rope_scaling->factor == 16.0);
    CHECK(s.eos_token_ids == std::vector<long>{200001, 200007, 200008});

    // transformers 5 writes rope_parameters; null chunk size means no chunking.
    const auto r = weft::hf::parse_llama4_config(R"({"model_type": "llama4_text", "attention_chunk_size": null,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}, "moe_layers": [0, 2], "num_hidden_layers": 3})",
                                                 origin);
    CHECK(r.rope_theta == 10000.0);
    CHECK_FALSE(r.rope_scaling.has_value());
    CHECK(r.attention_chunk_size == 0);
    CHECK(r.moe_layers == std::vector<int>{0, 2});

    CHECK_THROWS_WITH_AS(weft::hf::parse_llama4_config(R"({"model_type": "llama"})", origin),
                         "config.json: model_type is \"llama\", expected \"llama4\" or \"llama4_text\" (a Llama 4 config)", weft::Error);
    CHECK_THROWS_WITH_AS(weft::hf::parse_llama4_config(R"({"model_type": "llama4"})", origin),
                         doctest::Contains("'text_config' is missing"), weft::Error);
    CHECK_THROWS_WITH_AS(weft::hf::parse_llama4_config(R"({"model_type": "llama4_text", "num_hidden_layers": 4, "no_rope_layers": [1, 0]})", origin),
                         "config.json: no_rope_layers has 2 entries for 4 layers", weft::Error);
    CHECK_THROWS_WITH_AS(weft::hf::parse_llama4_config(R"({"model_type": "llama4_text", "attn_temperature_tuning": "yes"})", origin),
                         "config.json: 'attn_temperature_tuning' must be true, false or an integer, got \"yes\"", weft::Error);
    CHECK_THROWS_WITH_AS(weft::hf::parse_llama4_config(R"({"model_type": "llama4", "text_config": {"num_local_experts": 4, "num_experts_per_tok": 5}})", origin),
                         "config.json: text_config num_experts_per_tok (5) exceeds num_local_experts (4)", weft::Error);
}

TEST_CASE("Llama4 reports a full context and a Llama 2/3 directory clearly") {
    weft::Llama4 m = weft::Llama4::from_pretrained(golden_dir("moe-step1"), 12);
    const std::vector<std::int32_t> thirteen(13, 1);
    CHECK_THROWS_WITH_AS(m.forward(thirteen), "Llama4::forward: 0 cached + 13 new tokens exceed the context of 12 tokens", weft::Error);
    CHECK_THROWS_WITH_AS(weft::Llama4::from_pretrained(std::string(WEFT_SOURCE_DIR) + "/tests/data/llama/gqa-f32-tied"),
                         doctest::Contains("model_type is \"llama\", expected \"llama4\""), weft::Error);
}

TEST_CASE("Llama4 truncates within the current chunk or to a chunk start, and the rewound run gives the same bits") {
    const std::string dir = golden_dir("moe-step1");  // chunks of 8
    const auto tokens = read_ids(dir + "/tokens.txt");  // 21 tokens: the last chunk holds 16..20
    weft::Llama4 m = weft::Llama4::from_pretrained(dir, 64);
    const Tensor<float> all(m.forward(tokens));
    for (Index keep : {18, 16, 8, 0}) {
        CAPTURE(keep);
        weft::Llama4 r = weft::Llama4::from_pretrained(dir, 64);
        r.forward(tokens);
        r.truncate(keep);
        CHECK(r.position() == keep);
        const Tensor<float> again(r.forward(std::span(tokens).subspan(static_cast<std::size_t>(keep))));
        CHECK(bits_of(again) == bits_of(Tensor<float>(all.slice(0, keep, 21))));
    }
    CHECK_THROWS_WITH_AS(m.truncate(13),
                         "Llama4::truncate: position 13 lies in an earlier chunk of 8 positions than the cached ones (21 tokens); chunked layers keep only the current chunk",
                         weft::Error);
    CHECK_THROWS_WITH_AS(m.truncate(22), "Llama4::truncate: position 22 is outside 0..21", weft::Error);
}

}  // namespace test_llama4
