// bench_quant — the quantized matmul kernels (cpu/quant_matmul.hpp) against this machine's
// ceilings, measured in the same run:
//   decode GEMV (M = 1 .. 8): GB/s of weight bytes read per call, and that as % of the DRAM read
//     bandwidth measured with the same threads right before (the host drifts within minutes),
//     for the GGUF layout (a mapped file) and the interleaved one (the x16 types: a copied file);
//   prefill GEMM (M = 32 .. 256): GOP/s (2·M·N·K per call), as a fraction of the int8 VNNI peak
//     measured right before (efficiency), and as prompt tokens/s of a 1B Llama (2.47 GOP per
//     token), beside llama.cpp's 108 (Q4_0) and 90 (Q8_0) tokens/s with 2 threads on this machine.
// Weights come from a 1 GiB pool of random blocks (the L3 is 300 MiB), the next matrix each
// call. On a shared host, compare medians of repetitions: --benchmark_repetitions=5.

// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics (_mm512_undefined_*) where
// cpu/gemv.hpp's bf16 path (the calibration peer below) inlines _mm512_slli_epi32; the location is
// the compiler's header, so it can only be silenced for the whole file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/storage.hpp"
#include "weft/quant/interleave.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/gemv.hpp"
#include "weft/cpu/quant_matmul.hpp"

#include "ceilings.hpp"

namespace {

using weft::DType;
using dim = std::int64_t;

constexpr std::size_t kPoolBytes = std::size_t{1} << 30;
constexpr double kLlamaOpsPerToken = 2.47e9;  // 2 · parameters of Llama 3.2 1B

const char* type_name(DType t) { return weft::dtype_name(t); }
dim unit_values(DType t) { return static_cast<dim>(weft::block_size(t)); }
dim unit_bytes(DType t) { return static_cast<dim>(weft::block_bytes(t)); }

// 1 GiB of random bytes; scale fields set to small f16 values for the type in use (random bits
// would give infinities and NaNs).
struct Pool {
    weft::AlignedBuffer bytes{kPoolBytes};
    DType type = DType::f32;
    Pool() {
        auto* p = reinterpret_cast<std::uint64_t*>(bytes.data());
        const dim n = static_cast<dim>(kPoolBytes / 8);
#pragma omp parallel for
        for (dim i = 0; i < n; ++i) {
            std::uint64_t x = (static_cast<std::uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ull;
            x ^= x >> 29;
            x *= 0xBF58476D1CE4E5B9ull;
            p[i] = x ^ (x >> 32);
        }
    }
    void set_type(DType t) {
        if (t == type) return;
        type = t;
        if (t == DType::bf16) {  // every 16-bit word a bf16 in ±[0.5, 1): no NaN, no denormals
            auto* w = reinterpret_cast<std::uint16_t*>(bytes.data());
            const dim n = static_cast<dim>(kPoolBytes / 2);
#pragma omp parallel for
            for (dim i = 0; i < n; ++i) w[i] = static_cast<std::uint16_t>((w[i] & 0x807F) | 0x3F00);
            return;
        }
        const dim ub = unit_bytes(t), units = static_cast<dim>(kPoolBytes) / ub;
        const std::uint16_t small = weft::float_to_f16_bits(0.01f);
        std::uint8_t* b = reinterpret_cast<std::uint8_t*>(bytes.data());
        if (weft::quant::is_interleaved(t)) {  // units of 16 rows' blocks (quant/interleave.hpp)
            const DType plain = weft::quant::plain_dtype(t);
#pragma omp parallel for
            for (dim u = 0; u < units / 16; ++u)
                for (int r = 0; r < 16; ++r) {
                    std::uint8_t* blk = b + u * 16 * ub;
                    if (plain == DType::q6_k) std::memcpy(blk + 52 * 64 + 2 * r, &small, 2);
                    else if (plain == DType::q8_0 || plain == DType::q4_0) std::memcpy(blk + 2 * r, &small, 2);
                    else for (int h = 0; h < 2; ++h) std::memcpy(blk + 4 * r + 2 * h, &small, 2);  // d, dmin
                }
            return;
        }
#pragma omp parallel for
        for (dim u = 0; u < units; ++u) {
            std::uint8_t* blk = b + u * ub;
            if (t == DType::q6_k) std::memcpy(blk + 208, &small, 2);
            else std::memcpy(blk, &small, 2);
            if (t == DType::q4_k || t == DType::q5_k) std::memcpy(blk + 2, &small, 2);
        }
    }
};

Pool& pool() {
    static Pool p;
    return p;
}

// Successive [N, K] matrices of type t inside the pool.
struct Matrices {
    const std::uint8_t* base;
    dim bytes, count, next = 0;
    Matrices(DType t, dim N, dim K) {
        pool().set_type(t);
        base = reinterpret_cast<const std::uint8_t*>(pool().bytes.data());
        bytes = N * (K / unit_values(t)) * unit_bytes(t);
        count = std::max<dim>(1, static_cast<dim>(kPoolBytes) / bytes);
    }
    const void* get() {
        next = (next + 1) % count;
        return base + next * bytes;
    }
};

// ---- Ceilings ------------------------------------------------------------------------------

// DRAM read bandwidth with `threads` threads: the best of a few passes summing the whole pool
// as 64-bit integers, each thread reading its share as 4 streams side by side (GB/s).
double read_ceiling(int threads) {
    const auto* data = reinterpret_cast<const std::uint64_t*>(pool().bytes.data());
    constexpr dim kStreams = 4, kBlock = 2048;
    const dim blocks = static_cast<dim>(kPoolBytes / 8) / (kStreams * kBlock);
    double best = 0;
    for (int pass = 0; pass < 4; ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        std::uint64_t total = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : total)
        for (dim block = 0; block < blocks; ++block) {
            const std::uint64_t* p0 = data + block * kBlock;
            const std::uint64_t* p1 = p0 + blocks * kBlock;
            const std::uint64_t* p2 = p1 + blocks * kBlock;
            const std::uint64_t* p3 = p2 + blocks * kBlock;
            std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
            for (dim i = 0; i < kBlock; ++i) {
                s0 += p0[i];
                s1 += p1[i];
                s2 += p2[i];
                s3 += p3[i];
            }
            total += (s0 + s1) + (s2 + s3);
        }
        benchmark::DoNotOptimize(total);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, double(blocks * kStreams * kBlock * 8) / s * 1e-9);
    }
    return best;
}

void BM_ceiling_read_bandwidth(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    double gbs = 0;
    for (auto _ : state) gbs = read_ceiling(threads);
    state.counters["GB/s"] = gbs;
}

// int8 dot-product peak: register-resident vpdpbusd chains (bench/ceilings.hpp), GOP/s.
void BM_ceiling_vnni_peak(benchmark::State& state) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    double gops = 0;
    for (auto _ : state) gops = bench::compute_peak_gops(bench::Peak::int8_dot, 1);
    state.counters["GOP/s"] = gops;
}

// ---- Kernels -------------------------------------------------------------------------------
// Args: {type, M, K, N, threads}.

void BM_quant_gemv(benchmark::State& state) {
    const auto type = static_cast<DType>(state.range(0));
    const dim M = state.range(1), K = state.range(2), N = state.range(3);
    const int threads = static_cast<int>(state.range(4));
    Matrices w(type, N, K);
    std::vector<float> x(static_cast<std::size_t>(M * K), 0.5f), out(static_cast<std::size_t>(M * N));
    for (dim i = 0; i < M * K; ++i) x[static_cast<std::size_t>(i)] = float(i % 17) * 0.1f - 0.8f;
    const double ceiling = read_ceiling(threads);
    weft::set_num_threads(threads);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        weft::cpu::quant_gemv_nt(type, M, N, K, x.data(), K, w.get(), out.data(), N);
        benchmark::ClobberMemory();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gbs = double(w.bytes) * double(state.iterations()) / s * 1e-9;
    state.counters["W_GB/s"] = gbs;
    state.counters["ceiling_GB/s"] = ceiling;
    state.counters["pct_ceiling"] = 100.0 * gbs / ceiling;
    state.SetLabel(type_name(type));
}

// The calibration peer: weft's bf16 decode GEMV (cpu/gemv.hpp), which reaches >= 90% of the read
// ceiling on a quiet host. When both fall short together, the host is busy, not the kernel.
void BM_bf16_gemv(benchmark::State& state) {
    const dim M = state.range(0), K = state.range(1), N = state.range(2);
    const int threads = static_cast<int>(state.range(3));
    Matrices w(DType::bf16, N, K);
    std::vector<float> x(static_cast<std::size_t>(M * K), 0.5f), out(static_cast<std::size_t>(M * N));
    const double ceiling = read_ceiling(threads);
    weft::set_num_threads(threads);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        weft::cpu::gemv_nt(M, N, K, x.data(), K, static_cast<const weft::bf16*>(w.get()), out.data(), N);
        benchmark::ClobberMemory();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gbs = double(w.bytes) * double(state.iterations()) / s * 1e-9;
    state.counters["W_GB/s"] = gbs;
    state.counters["ceiling_GB/s"] = ceiling;
    state.counters["pct_ceiling"] = 100.0 * gbs / ceiling;
    state.SetLabel("bf16 (calibration peer)");
}

void BM_quant_gemm(benchmark::State& state) {
    const auto type = static_cast<DType>(state.range(0));
    const dim M = state.range(1), K = state.range(2), N = state.range(3);
    const int threads = static_cast<int>(state.range(4));
    Matrices w(type, N, K);
    std::vector<float> x(static_cast<std::size_t>(M * K)), out(static_cast<std::size_t>(M * N));
    for (dim i = 0; i < M * K; ++i) x[static_cast<std::size_t>(i)] = float(i % 17) * 0.1f - 0.8f;
    weft::set_num_threads(threads);
    const double peak = bench::compute_peak_gops(bench::Peak::int8_dot);  // 0 without VNNI
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        weft::cpu::quant_gemm_nt(type, M, N, K, x.data(), K, w.get(), out.data(), N);
        benchmark::ClobberMemory();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gops = 2.0 * double(M) * double(N) * double(K) * double(state.iterations()) / s * 1e-9;
    state.counters["GOP/s"] = gops;
    state.counters["tok/s_1B"] = gops * 1e9 / kLlamaOpsPerToken;
    if (peak > 0) {
        state.counters["int8_peak_GOP/s"] = peak;
        state.counters["efficiency"] = gops / peak;
    }
#if defined(WEFT_QMM_AMX)
    state.counters["amx"] = weft::cpu::quant_gemm_uses_amx(type, M);
#endif
    std::string label = type_name(type);
    if (type == DType::q4_0) label += " (llama.cpp: 108 tok/s on 2 threads)";
    if (type == DType::q8_0) label += " (llama.cpp: 90 tok/s on 2 threads)";
    state.SetLabel(label);
}

// ---- Registration ---------------------------------------------------------------------------

constexpr DType kTypes[] = {DType::q4_0, DType::q8_0, DType::q4_k, DType::q5_k, DType::q6_k};
constexpr std::pair<dim, dim> kGemvShapes[] = {{2048, 8192}, {8192, 2048}, {2048, 128256}};  // {K, N}
constexpr std::pair<dim, dim> kGemmShapes[] = {{2048, 2048}, {2048, 8192}, {8192, 2048}};

void register_all() {
    for (int threads : {2, 1}) {
        benchmark::RegisterBenchmark("ceiling_read_bandwidth", BM_ceiling_read_bandwidth)
            ->Arg(threads)->ArgName("threads")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
        for (auto [K, N] : kGemvShapes)
            if (N <= 8192)
                benchmark::RegisterBenchmark("bf16_gemv", BM_bf16_gemv)
                    ->Args({1, K, N, threads})
                    ->ArgNames({"M", "K", "N", "threads"})
                    ->MinTime(0.5)->UseRealTime()->Unit(benchmark::kMicrosecond);
        for (DType t : kTypes)
            for (auto [K, N] : kGemvShapes)
                for (dim M : {1, 4}) {
                    if (M != 1 && N > 8192) continue;
                    // The GGUF layout (as mapped), then the interleaved one a copied model gets.
                    for (DType layout : {t, weft::quant::interleaved_dtype(t)})
                        benchmark::RegisterBenchmark("quant_gemv", BM_quant_gemv)
                            ->Args({static_cast<dim>(layout), M, K, N, threads})
                            ->ArgNames({"type", "M", "K", "N", "threads"})
                            ->MinTime(0.5)->UseRealTime()->Unit(benchmark::kMicrosecond);
                }
    }
    for (int threads : {2, 1}) {
        if (bench::peak_available(bench::Peak::int8_dot))
            benchmark::RegisterBenchmark("ceiling_vnni_peak", BM_ceiling_vnni_peak)
                ->Arg(threads)->ArgName("threads")->MinTime(0.3)->UseRealTime()->Unit(benchmark::kMillisecond);
        for (DType t : kTypes)
            for (auto [K, N] : kGemmShapes)
                for (dim M : {32, 128, 256}) {
                    if (M != 128 && !(K == 2048 && N == 8192)) continue;
                    benchmark::RegisterBenchmark("quant_gemm", BM_quant_gemm)
                        ->Args({static_cast<dim>(t), M, K, N, threads})
                        ->ArgNames({"type", "M", "K", "N", "threads"})
                        ->MinTime(0.5)->UseRealTime()->Unit(benchmark::kMillisecond);
                }
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
