// bench_llama4: Llama 4 decode speed, a random mixture-of-experts model (16 experts, top-1, a
// shared expert, every layer MoE as in Scout) next to its dense equivalent (a SwiGLU as wide as
// the shared expert plus one expert: the same active parameters), with the read ceiling measured
// in the same run. A decoded token reads only its active weights, so
//   efficiency = tokens/s × active weight bytes per token ÷ read bandwidth
// and the MoE model should run about as fast as the dense one although it holds ~9× the FFN
// weights. Models are built in memory from random weights (nothing is written to disk).
// Before each decoded token (untimed) 384 MB are read to evict the caches: the dense model's
// 107 MB would otherwise stay in a large L3 while the MoE's 450 MB of experts cannot, and real
// models are far larger than any cache ($WEFT_BENCH_WARM=1 skips this).
// $WEFT_BENCH_DTYPES (default "bf16") picks f32 / bf16 / f16 weights.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>

#include <weft/models/llama4.hpp>

#include "ceilings.hpp"

namespace {


// Shape of the benchmark models (Scout's proportions, scaled down to run on a laptop).
struct Shape4 {
    weft::Index vocab = 16384, dim = 768, layers = 8, heads = 12, kv_heads = 4, head_dim = 64, expert_ffn = 768, experts = 16, top_k = 1,
                chunk = 8192;
};

// Random weights of one dtype, kept alive by the model (keep_alive).
struct Store {
    std::vector<std::shared_ptr<void>> tensors;
    std::uint64_t state = 0x9E3779B97F4A7C15ull;
    template <class W>
    weft::Weight make(const weft::Shape& s, float scale, float offset = 0) {
        auto t = std::make_shared<weft::Tensor<W>>(s);
        for (auto& x : t->span()) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            const float u = static_cast<float>(state >> 40) * (2.0f / 16777216.0f) - 1.0f;
            x = W(offset + scale * u);
        }
        tensors.push_back(t);
        return weft::Weight::of(*t);
    }
};

template <class W>
std::unique_ptr<weft::Llama4> make_model(const Shape4& s, bool moe) {
    namespace nn = weft::nn;
    auto store = std::make_shared<Store>();
    auto w = [&](const weft::Shape& shape, weft::Index fan_in) { return store->make<W>(shape, 1.7320508f / std::sqrt(float(fan_in))); };
    auto norm = [&]() { return nn::RMSNorm(store->make<W>(weft::Shape{s.dim}, 0.1f, 1.0f), 1e-5f); };
    weft::Llama4Config c;
    c.vocab_size = s.vocab;
    c.dim = s.dim;
    c.n_layers = s.layers;
    c.n_heads = s.heads;
    c.n_kv_heads = s.kv_heads;
    c.head_dim = s.head_dim;
    c.expert_ffn_dim = s.expert_ffn;
    c.dense_ffn_dim = (s.top_k + 1) * s.expert_ffn;  // the shared expert + top_k experts, as one SwiGLU
    c.n_experts = s.experts;
    c.top_k = s.top_k;
    c.max_positions = 4096;
    c.rope.head_dim = static_cast<int>(s.head_dim);
    c.rope.theta = 500000;
    c.rope.pairing = nn::RopePairing::interleaved;
    c.chunk_size = s.chunk;
    c.floor_scale = 8192;
    for (weft::Index l = 0; l < s.layers; ++l) {
        c.rope_layers.push_back((l + 1) % 4 != 0);
        c.chunked_layers.push_back((l + 1) % 4 != 0);
        c.moe_layers.push_back(moe);
    }
    const weft::Index D = s.dim, F = s.expert_ffn, FD = c.dense_ffn_dim, E = s.experts;
    std::vector<weft::Llama4Layer> layers;
    for (weft::Index l = 0; l < s.layers; ++l) {
        weft::Llama4Layer layer;
        layer.attn_norm = norm();
        layer.attention = nn::Attention(c.attention(l), nn::Linear(w({s.heads * s.head_dim, D}, D)), nn::Linear(w({s.kv_heads * s.head_dim, D}, D)),
                                        nn::Linear(w({s.kv_heads * s.head_dim, D}, D)), nn::Linear(w({D, s.heads * s.head_dim}, s.heads * s.head_dim)));
        layer.ffn_norm = norm();
        layer.is_moe = moe;
        if (moe) {
            nn::SwiGLU shared(nn::Linear(w({F, D}, D)), nn::Linear(w({F, D}, D)), nn::Linear(w({D, F}, F)));
            layer.moe = nn::MoE(nn::Linear(w({E, D}, D)), nn::Experts::fused_in_out(w({E, D, 2 * F}, D), w({E, F, D}, F)), s.top_k,
                                std::move(shared));
        } else {
            layer.mlp = nn::SwiGLU(nn::Linear(w({FD, D}, D)), nn::Linear(w({FD, D}, D)), nn::Linear(w({D, FD}, FD)));
        }
        layers.push_back(std::move(layer));
    }
    nn::Embedding embedding(store->make<W>(weft::Shape{s.vocab, D}, 1.0f));
    nn::Linear head(w({s.vocab, D}, D));
    return std::make_unique<weft::Llama4>(c, std::move(embedding), std::move(layers), norm(), std::move(head), 1024, store);
}

weft::Llama4& model(const std::string& kind, const std::string& dtype) {
    static std::map<std::string, std::unique_ptr<weft::Llama4>> models;
    auto& slot = models[kind + "-" + dtype];
    if (!slot) {
        const bool moe = kind == "moe16";
        if (dtype == "f32") slot = make_model<float>(Shape4{}, moe);
        else if (dtype == "f16") slot = make_model<weft::f16>(Shape4{}, moe);
        else slot = make_model<weft::bf16>(Shape4{}, moe);
    }
    return *slot;
}

weft::Tensor<float>& big_buffer() {
    static weft::Tensor<float> data(weft::Shape{weft::Index(1) << 28}, 1.0f);  // 1 GiB
    return data;
}

// Reads 384 MB (more than the last-level cache), so the next token finds its weights in DRAM.
void evict_caches() {
    const float* p = big_buffer().data();
    float sum = 0;
    for (weft::Index i = 0; i < (weft::Index(96) << 20); i += 16) sum += p[i];
    benchmark::DoNotOptimize(sum);
}

void BM_decode(benchmark::State& state, std::string kind, std::string dtype) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    weft::Llama4& m = model(kind, dtype);
    // The host's bandwidth drifts within minutes: each repetition's ceiling is the best read
    // bandwidth measured right before and right after it (bench/ceilings.hpp).
    double ceiling = bench::read_bandwidth_gbs(3);
    m.reset();
    const std::vector<std::int32_t> prompt = {1, 15, 99, 7, 3, 300, 42, 8};
    m.forward(prompt, weft::Logits::last);
    std::int32_t token = 100;
    const bool cold = std::getenv("WEFT_BENCH_WARM") == nullptr;
    for (auto _ : state) {
        if (cold || m.position() >= static_cast<weft::Index>(prompt.size()) + 128) {
            state.PauseTiming();
            if (m.position() >= static_cast<weft::Index>(prompt.size()) + 128) {  // keep KV reads small next to the weights
                m.reset();
                m.forward(prompt, weft::Logits::last);
            }
            if (cold) evict_caches();
            state.ResumeTiming();
        }
        auto logits = m.decode(token);
        benchmark::DoNotOptimize(logits.data());
        token = (token * 31 + 7) % 16000;  // different tokens route to different experts
    }
    ceiling = std::max(ceiling, bench::read_bandwidth_gbs(3));
    const double bytes = static_cast<double>(m.weight_bytes_per_token());
    state.counters["tokens/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["active_MB/token"] = bytes * 1e-6;
    state.counters["read_GB/s_ceiling"] = ceiling;
    state.counters["efficiency"] = benchmark::Counter(bytes * 1e-9 / ceiling, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_prefill(benchmark::State& state, std::string kind, std::string dtype) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    weft::Llama4& m = model(kind, dtype);
    std::vector<std::int32_t> prompt(128);
    for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>((i * 7919) % 16000);
    for (auto _ : state) {
        m.reset();
        auto logits = m.forward(prompt, weft::Logits::last);
        benchmark::DoNotOptimize(logits.data());
    }
    state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(prompt.size()), benchmark::Counter::kIsIterationInvariantRate);
}

std::vector<std::string> split(const char* env, const char* fallback) {
    std::vector<std::string> out;
    std::stringstream s(env ? env : fallback);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    for (const std::string& dtype : split(std::getenv("WEFT_BENCH_DTYPES"), "bf16"))
        for (const std::string kind : {"moe16", "dense"}) {
            benchmark::RegisterBenchmark(("BM_decode/" + kind + "/" + dtype).c_str(), BM_decode, kind, dtype)
                ->Arg(2)->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMillisecond);
            benchmark::RegisterBenchmark(("BM_prefill128/" + kind + "/" + dtype).c_str(), BM_prefill, kind, dtype)
                ->Arg(2)->UseRealTime()->Iterations(2)->Unit(benchmark::kMillisecond);
        }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
