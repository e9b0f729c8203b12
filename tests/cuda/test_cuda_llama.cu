// tests/cuda/test_cuda_llama.cu — weft::cuda::Llama against the float64 PyTorch reference and the
// CPU weft::Llama: the golden models of tests/data/llama (f32, bf16, f16; GQA 12/3 heads of dim 80,
// tied, llama3 scaling, biases), decode vs prefill, CUDA graphs vs kernel-by-kernel, and a random
// model with every quantized dtype against the CPU on its dequantized weights; GGUF files (Q8_0/Q4_0,
// interleaved RoPE, rope_freqs) against the float64 reference on the dequantized weights.
#include <cmath>
#include <string>

#include <weft/io/gguf_quantize.hpp>

#include "../temp_dir.hpp"
#include "cuda_helpers.cuh"

using namespace weft_cuda_test;
using weft::DType;
using weft::Weight;

namespace {

struct Variant {
    const char* name;
    bool f32;
};
const Variant variants[] = {{"gqa-f32-llama3", true}, {"gqa-f32-tied", true}, {"mha-bias-f32", true}, {"gqa-bf16-llama3", false}, {"gqa-f16-tied", false}};

// Logits of every prompt position, decoded one token at a time (the GEMV path), as [T, vocab].
Tensor<float> decode_all(wc::Llama& model, const std::vector<std::int32_t>& tokens) {
    Tensor<float> out(Shape{static_cast<Index>(tokens.size()), model.config().vocab_size});
    for (std::size_t t = 0; t < tokens.size(); ++t) out.select(0, static_cast<Index>(t)) = wc::to_host(model.decode(tokens[t]));
    return out;
}

// A random Llama held in memory with a different GGUF dtype per projection (q/k/v of three dtypes,
// so they cannot be stacked), sizes that are multiples of 256 as K-quants need.
struct QuantModel {
    std::vector<std::vector<std::byte>> buffers;
    wc::LlamaWeights weights;
};
std::shared_ptr<QuantModel> random_quant_llama() {
    auto m = std::make_shared<QuantModel>();
    weft::LlamaConfig& c = m->weights.config;
    c.vocab_size = 300, c.dim = 256, c.ffn_dim = 512, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 64;
    c.max_positions = 128;
    c.norm_eps = 1e-5f;
    c.rope.head_dim = 64;
    c.rope.theta = 10000;
    m->buffers.reserve(64);
    auto make = [&](DType t, Shape s, const std::string& name) {
        const Index rows = s.rank() == 2 ? s[0] : 1, cols = s[s.rank() - 1];
        if (s.rank() == 1) m->buffers.push_back(random_weight_bytes(DType::f32, 1, cols));
        else m->buffers.push_back(random_weight_bytes(t, rows, cols, 2e-4f, 1e-3f));
        auto& b = m->buffers.back();
        if (s.rank() == 1) {  // norm weights near 1
            float* f = reinterpret_cast<float*>(b.data());
            for (Index i = 0; i < cols; ++i) f[i] = 1.0f + 0.5f * f[i];
        }
        return Weight(s.rank() == 1 ? DType::f32 : t, b.data(), s, name);
    };
    const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, F = c.ffn_dim;
    m->weights.embedding = make(DType::q8_0, Shape{c.vocab_size, D}, "embedding");
    for (Index l = 0; l < c.n_layers; ++l) {
        wc::LlamaLayerWeights L;
        L.attn_norm = make(DType::f32, Shape{D}, "attn_norm");
        L.wq = make(DType::q4_k, Shape{H * HD, D}, "wq");
        L.wk = make(DType::q8_0, Shape{KV * HD, D}, "wk");
        L.wv = make(DType::q6_k, Shape{KV * HD, D}, "wv");
        L.wo = make(DType::q4_0, Shape{D, H * HD}, "wo");
        L.ffn_norm = make(DType::f32, Shape{D}, "ffn_norm");
        L.gate = make(DType::q5_k, Shape{F, D}, "gate");
        L.up = make(DType::q5_k, Shape{F, D}, "up");
        L.down = make(DType::q6_k, Shape{D, F}, "down");
        m->weights.layers.push_back(L);
    }
    m->weights.final_norm = make(DType::f32, Shape{D}, "final_norm");
    m->weights.lm_head = make(DType::q6_k, Shape{c.vocab_size, D}, "lm_head");
    return m;
}

}  // namespace

TEST_CASE("device Llama prompt logits match the float64 reference and the CPU Llama on the golden models") {
    for (const Variant& v : variants) {
        const std::string dir = golden_dir(v.name);
        const auto tokens = read_ids(dir + "/tokens.txt");
        const Tensor<double> want = weft::npy::load<double>(dir + "/logits.npy");
        wc::Llama model = wc::Llama::from_pretrained(dir, 64);
        const Tensor<float> got = wc::to_host(model.forward(tokens));
        REQUIRE(got.shape() == want.shape());
        weft::Llama cpu = weft::Llama::from_pretrained(dir, 64);
        const Tensor<float> cpu_logits(cpu.forward(tokens));
        const double err = max_row_rel_l2(got, want), vs_cpu = max_row_rel_l2(got, cpu_logits);
        // 16-bit weights: cuBLAS multiplies with the activations rounded to the weights' type.
        const double tolerance = v.f32 ? 1e-5 : 2e-2;
        MESSAGE(v.name, ": prompt logits, max per-position relative L2 error ", err, " (vs CPU ", vs_cpu, ")");
        CHECK_LE(err, tolerance);
    }
}

TEST_CASE("device Llama decoding matches the reference token by token and reproduces the greedy ids") {
    for (const Variant& v : variants) {
        const std::string dir = golden_dir(v.name);
        const auto tokens = read_ids(dir + "/tokens.txt");
        const auto greedy = read_ids(dir + "/greedy.txt");
        const Tensor<double> want = weft::npy::load<double>(dir + "/logits.npy");
        wc::Llama model = wc::Llama::from_pretrained(dir, 300);  // 300 positions: split-KV attention (5 ranges)
        const Tensor<float> got = decode_all(model, tokens);
        const double err = max_row_rel_l2(got, want);
        // Generation continues from the prompt: the graph replays at new positions.
        std::int32_t next = weft::row_argmax(got.slice(0, got.shape()[0] - 1, got.shape()[0]))(0, 0);
        std::vector<std::int32_t> ids;
        for (std::size_t i = 0; i < greedy.size(); ++i) {
            ids.push_back(next);
            next = model.argmax(model.decode(next));
        }
        MESSAGE(v.name, ": decode (GEMV, CUDA graph) max per-position relative L2 error ", err, "; greedy ids ",
                ids == greedy ? "match" : "DIFFER");
        CHECK_LE(err, 1e-4);
        CHECK(ids == greedy);
        CHECK(model.position() == static_cast<Index>(tokens.size() + greedy.size()));
    }
}

TEST_CASE("CUDA graph decoding is bit-identical to launching the kernels one by one") {
    const std::string dir = golden_dir("gqa-bf16-llama3");
    const auto tokens = read_ids(dir + "/tokens.txt");
    wc::Llama graphs = wc::Llama::from_pretrained(dir, 64), eager = wc::Llama::from_pretrained(dir, 64);
    eager.set_cuda_graphs(false);
    const Tensor<float> a = decode_all(graphs, tokens), b = decode_all(eager, tokens);
    CHECK(weft_test::bits_of(a) == weft_test::bits_of(b));
    // After reset the same graph serves positions from 0 again.
    graphs.reset();
    const Tensor<float> again = decode_all(graphs, tokens);
    CHECK(weft_test::bits_of(again) == weft_test::bits_of(a));
}

TEST_CASE("device Llama prompts longer than one batch match the CPU Llama") {
    const std::string dir = golden_dir("gqa-f32-tied");
    std::vector<std::int32_t> tokens(530);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>((i * 37 + 11) % 263);
    wc::Llama model = wc::Llama::from_pretrained(dir, 600);
    weft::Llama cpu = weft::Llama::from_pretrained(dir, 600);
    const Tensor<float> got = wc::to_host(model.forward(tokens));
    const Tensor<float> want(cpu.forward(tokens));
    const double err = max_row_rel_l2(got, want);
    const Tensor<float> last = wc::to_host(model.forward(std::vector<std::int32_t>{5}, weft::Logits::last));
    const Tensor<float> cpu_last(cpu.forward(std::vector<std::int32_t>{5}, weft::Logits::last));
    const double err_last = max_row_rel_l2(last, cpu_last);
    MESSAGE("530-token prompt (two batches) vs CPU: max per-position relative L2 ", err, "; next token ", err_last);
    CHECK_LE(err, 1e-5);
    CHECK_LE(err_last, 1e-5);
    CHECK(model.position() == 531);
}

TEST_CASE("a device Llama with quantized weights matches the CPU Llama on the dequantized weights") {
    const auto qm = random_quant_llama();
    wc::LlamaWeights weights = qm->weights;
    weights.keep_alive = qm;
    const wc::LlamaWeights f32 = dequantized_copy(weights);
    weft::Llama cpu = cpu_llama(f32, 64);
    wc::Llama model(weights, 64);
    const std::vector<std::int32_t> tokens = {1, 17, 299, 42, 0, 7, 7, 123, 250, 3, 88};
    const Tensor<float> want(cpu.forward(tokens));
    const Tensor<float> decoded = decode_all(model, tokens);
    const double err_decode = max_row_rel_l2(decoded, want);
    wc::Llama prefill(weights, 64);
    const double err_prefill = max_row_rel_l2(wc::to_host(prefill.forward(tokens)), want);
    MESSAGE("quantized Llama (q8_0/q4_0/q4_k/q5_k/q6_k) vs CPU on dequantized weights: decode ", err_decode, ", prompt (bf16 cuBLAS) ",
            err_prefill, "; ", model.weight_bytes_per_token(), " weight bytes per token");
    CHECK_LE(err_decode, 1e-4);
    CHECK_LE(err_prefill, 4e-2);
}

TEST_CASE("device Llama reports a full context, a bad token and a missing model clearly") {
    const std::string dir = golden_dir("gqa-f32-tied");
    wc::Llama model = wc::Llama::from_pretrained(dir, 8);
    const std::vector<std::int32_t> nine(9, 1);
    CHECK_THROWS_WITH(model.forward(nine), "0 cached + 9 new tokens exceed the context of 8 tokens");
    CHECK_THROWS_WITH(model.decode(263), "token id 263 is outside the vocabulary of 263");
    CHECK_THROWS_WITH(wc::Llama::from_pretrained(std::string(WEFT_SOURCE_DIR) + "/tests"), "has no config.json");
}

namespace {

// The golden gqa-f32-llama3 model (GQA, llama3 RoPE scaling) written by weft's quantizer as a GGUF
// file with every matrix in `type`: Q and K permuted to GGUF's interleaved RoPE pairs, the scaling
// stored as rope_freqs, as llama.cpp's converter writes them.
std::string golden_gguf(const weft_test::TempDir& dir, const std::string& type) {
    weft::gguf::QuantizeRecipe recipe = weft::gguf::quantize_recipe(type);
    recipe.pure = true;
    const std::string path = dir.file(type + ".gguf");
    weft::gguf::quantize_model(golden_dir("gqa-f32-llama3"), path, recipe);
    return path;
}

}  // namespace

HOST_TEST_CASE("device Llama weights are read from a GGUF file as weft::Llama reads them") {
    weft_test::TempDir dir("cuda_gguf_weights");
    const std::string path = golden_gguf(dir, "q8_0");
    const wc::LlamaWeights w = wc::LlamaWeights::from_pretrained(path);
    const weft::Llama cpu = weft::Llama::from_pretrained(path, 16);
    const weft::LlamaConfig &a = w.config, &b = cpu.config();
    CHECK(a.vocab_size == b.vocab_size && a.dim == b.dim && a.ffn_dim == b.ffn_dim && a.n_layers == b.n_layers);
    CHECK(a.n_heads == b.n_heads && a.n_kv_heads == b.n_kv_heads && a.head_dim == b.head_dim && a.max_positions == b.max_positions);
    CHECK(a.norm_eps == b.norm_eps && a.tied_embeddings == b.tied_embeddings && a.bos_ids == b.bos_ids && a.eos_ids == b.eos_ids);
    CHECK(a.rope.pairing == weft::nn::RopePairing::interleaved && b.rope.pairing == a.rope.pairing);
    CHECK(a.rope.rotary_dim == b.rope.rotary_dim && a.rope.theta == b.rope.theta && a.rope.scaling.kind == b.rope.scaling.kind);
    CHECK_EQ(w.rope_factors.size(), static_cast<std::size_t>(a.head_dim / 2));  // llama3 scaling, as rope_freqs
    CHECK_EQ(w.layers.size(), static_cast<std::size_t>(a.n_layers));
    CHECK(w.layers[0].wq.dtype == DType::q8_0 && w.layers[1].down.dtype == DType::q8_0 && w.lm_head.dtype == DType::q8_0);
    CHECK(w.layers[0].attn_norm.dtype == DType::f32 && w.final_norm.dtype == DType::f32 && w.layers[0].bq.empty());
    CHECK((w.lm_head.data == w.embedding.data) == a.tied_embeddings);
    CHECK_THROWS_WITH(wc::LlamaWeights::from_pretrained(dir.write("empty.gguf", "")), "empty.gguf");
}

TEST_CASE("device Llama from GGUF files (Q8_0, Q4_0) matches the float64 reference on the dequantized weights") {
    weft_test::TempDir dir("cuda_gguf_llama");
    const auto tokens = read_ids(golden_dir("gqa-f32-llama3") + "/tokens.txt");
    for (const std::string type : {"q8_0", "q4_0"}) {
        const std::string path = golden_gguf(dir, type);
        const Tensor<double> want = weft::npy::load<double>(golden_dir("quantized/" + type + "-logits.npy"));
        wc::Llama model = wc::Llama::from_pretrained(path, 64);
        const Tensor<float> decoded = decode_all(model, tokens);  // GEMV on f32 activations: the reference's arithmetic
        wc::Llama prefill = wc::Llama::from_pretrained(path, 64);
        const Tensor<float> prompt = wc::to_host(prefill.forward(tokens));
        const double err_decode = max_row_rel_l2(decoded, want), err_prefill = max_row_rel_l2(prompt, want);
        MESSAGE(type, " GGUF: decode max per-position relative L2 error ", err_decode, ", prompt (bf16 cuBLAS) ", err_prefill);
        CHECK_LE(err_decode, 1e-4);
        CHECK_LE(err_prefill, 4e-2);
    }
}
