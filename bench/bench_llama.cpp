// bench_llama: end-to-end Llama speed on random-weight models of real shapes, next to the
// ceilings measured in the same run. Decoding one token reads every weight once, so
//   efficiency = tokens/s × weight bytes per token ÷ read bandwidth.
// Models are generated on first use under $WEFT_BENCH_DIR (default /tmp/weft-bench-models).
// $WEFT_BENCH_SHAPES (default "110m,1b") and $WEFT_BENCH_DTYPES (default "f32,bf16") choose them.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>

#include <weft/weft.hpp>

#include "ceilings.hpp"
#include "random_model.hpp"

namespace {


std::vector<std::string> split(const char* env, const char* fallback) {
    std::vector<std::string> out;
    std::stringstream s(env ? env : fallback);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

weft::Llama& model(const std::string& shape, const std::string& dtype) {
    static std::map<std::string, std::unique_ptr<weft::Llama>> models;
    const std::string key = shape + "-" + dtype;
    auto& slot = models[key];
    if (!slot) {
        const char* base = std::getenv("WEFT_BENCH_DIR");
        const std::string dir = std::string(base ? base : "/tmp/weft-bench-models") + "/" + key;
        bench::ensure_random_model(dir, bench::model_shape(shape), dtype);
        slot = std::make_unique<weft::Llama>(weft::Llama::from_pretrained(dir, 512));
    }
    return *slot;
}

// The decode ceiling: streaming reads of 512 MiB with the given threads (bench/ceilings.hpp).
void BM_read_bandwidth(benchmark::State& state) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    double best = 0;
    for (auto _ : state) best = std::max(best, bench::read_bandwidth_gbs(1));
    state.counters["GB/s"] = best;
}

void BM_decode(benchmark::State& state, std::string shape, std::string dtype) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    weft::Llama& m = model(shape, dtype);
    // The host's bandwidth drifts within minutes: each repetition's ceiling is the best read
    // bandwidth measured right before and right after it.
    double ceiling = bench::read_bandwidth_gbs(3);
    m.reset();
    const std::vector<std::int32_t> prompt = {1, 15, 99, 7, 3, 300, 42, 8};
    m.forward(prompt, weft::Logits::last);
    std::int32_t token = 100;
    for (auto _ : state) {
        // Positions cycle through 8 .. 136: the KV cache read per token stays small next to the
        // weights (at position 512 it would add ~38 MB per token on the 110M shape).
        if (m.position() >= static_cast<weft::Index>(prompt.size()) + 128) {
            state.PauseTiming();
            m.reset();
            m.forward(prompt, weft::Logits::last);
            state.ResumeTiming();
        }
        auto logits = m.decode(token);
        benchmark::DoNotOptimize(logits.data());
        token = (token * 31 + 7) % 1000;
    }
    ceiling = std::max(ceiling, bench::read_bandwidth_gbs(3));
    const double bytes = static_cast<double>(m.weight_bytes_per_token());
    state.counters["tokens/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["weight_MB"] = bytes * 1e-6;
    state.counters["read_GB/s_ceiling"] = ceiling;
    state.counters["efficiency"] = benchmark::Counter(bytes * 1e-9 / ceiling, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_prefill(benchmark::State& state, std::string shape, std::string dtype) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    weft::Llama& m = model(shape, dtype);
    std::vector<std::int32_t> prompt(128);
    for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>((i * 7919) % 30000);
    for (auto _ : state) {
        m.reset();
        auto logits = m.forward(prompt, weft::Logits::last);
        benchmark::DoNotOptimize(logits.data());
    }
    // Matmul work: 2 FLOPs per weight per token (the embedding is a gather, not a matmul).
    const auto& c = m.config();
    const double params = static_cast<double>(m.weight_bytes_per_token()) / (dtype == "f32" ? 4.0 : 2.0) - static_cast<double>(c.dim);
    state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(prompt.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * params * static_cast<double>(prompt.size()) * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::RegisterBenchmark("BM_read_bandwidth", BM_read_bandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    for (const std::string& shape : split(std::getenv("WEFT_BENCH_SHAPES"), "110m,1b"))
        for (const std::string& dtype : split(std::getenv("WEFT_BENCH_DTYPES"), "f32,bf16")) {
            benchmark::RegisterBenchmark(("BM_decode/" + shape + "/" + dtype).c_str(), BM_decode, shape, dtype)
                ->Arg(2)->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMillisecond);
            benchmark::RegisterBenchmark(("BM_prefill128/" + shape + "/" + dtype).c_str(), BM_prefill, shape, dtype)
                ->Arg(2)->UseRealTime()->Iterations(2)->Unit(benchmark::kMillisecond);
        }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
