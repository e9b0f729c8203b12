// bench_matmul — f32 C = A·Wᵀ (weights W: [N, K] row-major, how models store them) for weft,
// Eigen and OpenBLAS side by side, with this machine's ceilings in the same run: DRAM read
// bandwidth (for M = 1, where reading W is the whole cost) and register-only FMA throughput;
// and, where the CPU has AVX512-BF16, weft's 16-bit-weight prompt GEMM (f16 / bf16 W under
// --precision fast) against the bf16 dot-product peak.
//
// Each iteration multiplies by the next W of a pool of >= 512 MiB, more than the last-level
// cache, so every library reads its weights from DRAM as it would in a real model.
// On a shared host the figures swing by tens of percent from run to run; compare the best of
// a few: --benchmark_repetitions=5 (the whole run takes ~35 s once).

// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics (_mm512_undefined_ps) when
// Eigen's packing code inlines them; the warning location is the compiler's header, so it can
// only be silenced for the whole file.
#if defined(WEFT_BENCH_HAVE_EIGEN) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <unistd.h>
#endif

#include "weft/core/threading.hpp"
#include "weft/cpu/gemm.hpp"
#include "weft/cpu/gemm_bf16.hpp"

#include "ceilings.hpp"

#if defined(WEFT_BENCH_HAVE_EIGEN)
// Defined at all (even as 0), this macro turns Eigen's OpenMP threads off; the 2-thread figure
// would then be a 1-thread figure.
#undef EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>
#endif

#if defined(WEFT_BENCH_HAVE_OPENBLAS)
#include <cblas.h>  // OpenBLAS's: also declares openblas_set_num_threads, openblas_get_corename
#endif

namespace {

using dim = std::ptrdiff_t;

constexpr std::size_t kPoolBytes = std::size_t{512} << 20;

// Values in [-1, 1) from a counter hash: cheap to fill 512 MiB, and no denormals or infinities.
void fill(std::vector<float>& v, std::uint64_t seed) {
    const dim n = static_cast<dim>(v.size());
#pragma omp parallel for
    for (dim i = 0; i < n; ++i) {
        std::uint64_t x = (static_cast<std::uint64_t>(i) + seed) * 0x9E3779B97F4A7C15ull;
        x ^= x >> 29;
        v[static_cast<std::size_t>(i)] = static_cast<float>(x >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
}

// The operands of one shape: A: [512, K] (the largest M used), a pool of W: [N, K], C: [512, N].
struct Operands {
    dim K, N;
    std::vector<float> a, c;
    std::vector<std::vector<float>> w;
    std::size_t next = 0;

    Operands(dim k, dim n) : K(k), N(n), a(static_cast<std::size_t>(512 * k)), c(static_cast<std::size_t>(512 * n)) {
        fill(a, 1);
        const std::size_t w_bytes = static_cast<std::size_t>(k * n) * sizeof(float);
        const std::size_t copies = std::max<std::size_t>(2, (kPoolBytes + w_bytes - 1) / w_bytes);
        for (std::size_t i = 0; i < copies; ++i) {
            w.emplace_back(static_cast<std::size_t>(k * n));
            fill(w.back(), 1000 + i);
        }
    }
    const float* next_w() {
        next = (next + 1) % w.size();
        return w[next].data();
    }
};

Operands& operands(dim K, dim N) {
    static std::map<std::pair<dim, dim>, Operands> cache;
    auto it = cache.find({K, N});
    if (it == cache.end()) it = cache.try_emplace({K, N}, K, N).first;
    return it->second;
}

// Args: {M, K, N, threads}. Reports GFLOP/s (2·M·N·K per product) and, for M = 1, GB/s of W.
void set_counters(benchmark::State& state, dim M, dim K, dim N) {
    state.counters["GFLOP"] = benchmark::Counter(2e-9 * double(M) * double(N) * double(K),
                                                 benchmark::Counter::kIsIterationInvariantRate);
    if (M == 1)
        state.counters["W_GB"] = benchmark::Counter(4e-9 * double(N) * double(K),
                                                    benchmark::Counter::kIsIterationInvariantRate);
}

void BM_weft_matmul_nt(benchmark::State& state) {
    const dim M = state.range(0), K = state.range(1), N = state.range(2);
    weft::set_num_threads(static_cast<int>(state.range(3)));
    Operands& op = operands(K, N);
    for (auto _ : state) {
        // a: [M, K], w: [N, K] read as B = Wᵀ: [K, N] (b_rs = 1, b_cs = K), c: [M, N]
        weft::cpu::gemm_f32(M, N, K, op.a.data(), K, 1, op.next_w(), 1, K, op.c.data(), N);
        benchmark::ClobberMemory();
    }
    set_counters(state, M, K, N);
}

// The same product with B stored [K, N] row-major (plain matmul), for the decoding GEMV path.
void BM_weft_matmul_nn(benchmark::State& state) {
    const dim M = state.range(0), K = state.range(1), N = state.range(2);
    weft::set_num_threads(static_cast<int>(state.range(3)));
    Operands& op = operands(K, N);
    for (auto _ : state) {
        weft::cpu::gemm_f32(M, N, K, op.a.data(), K, 1, op.next_w(), N, 1, op.c.data(), N);
        benchmark::ClobberMemory();
    }
    set_counters(state, M, K, N);
}

#if defined(WEFT_BENCH_HAVE_EIGEN)
void BM_eigen_matmul_nt(benchmark::State& state) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const dim M = state.range(0), K = state.range(1), N = state.range(2);
    Eigen::setNbThreads(static_cast<int>(state.range(3)));
    Operands& op = operands(K, N);
    Eigen::Map<const RowMajor> A(op.a.data(), M, K);
    Eigen::Map<RowMajor> C(op.c.data(), M, N);
    for (auto _ : state) {
        Eigen::Map<const RowMajor> W(op.next_w(), N, K);
        C.noalias() = A * W.transpose();
        benchmark::ClobberMemory();
    }
    set_counters(state, M, K, N);
    state.counters["eigen_threads"] = Eigen::nbThreads();
}
#endif

#if defined(WEFT_BENCH_HAVE_OPENBLAS)
void BM_openblas_matmul_nt(benchmark::State& state) {
    const dim M = state.range(0), K = state.range(1), N = state.range(2);
    openblas_set_num_threads(static_cast<int>(state.range(3)));
    Operands& op = operands(K, N);
    for (auto _ : state) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                    static_cast<int>(K), 1.0f, op.a.data(), static_cast<int>(K), op.next_w(),
                    static_cast<int>(K), 0.0f, op.c.data(), static_cast<int>(N));
        benchmark::ClobberMemory();
    }
    set_counters(state, M, K, N);
}
#endif

#if defined(WEFT_GEMM_BF16)
// The prompt GEMM of 16-bit weights under MatmulPrecision::fast (cpu/gemm_bf16.hpp): f32
// activations rounded to bf16, vdpbf16ps. Its ceiling is the bf16 dot-product peak, measured
// right before (efficiency = GFLOP/s ÷ that peak). Args: {M, K, N, threads}; W from a pool of
// >= 512 MiB like the f32 benchmarks.
template <class W>
void BM_weft_gemm_bf16(benchmark::State& state) {
    const dim M = state.range(0), K = state.range(1), N = state.range(2);
    weft::set_num_threads(static_cast<int>(state.range(3)));
    Operands& op = operands(K, N);
    static std::map<std::pair<dim, dim>, std::vector<std::vector<W>>> pools;
    auto& pool = pools[{K, N}];
    if (pool.empty())
        for (const auto& w : op.w) pool.emplace_back(w.begin(), w.end());  // same values, rounded
    const double peak = bench::compute_peak_gops(bench::Peak::bf16_dot);
    std::size_t next = 0;
    for (auto _ : state) {
        next = (next + 1) % pool.size();
        weft::cpu::gemm_bf16(M, N, K, op.a.data(), K, pool[next].data(), op.c.data(), N);
        benchmark::ClobberMemory();
    }
    set_counters(state, M, K, N);
    state.counters["bf16_peak_GFLOP/s"] = peak;
    state.counters["efficiency"] = benchmark::Counter(2e-9 * double(M) * double(N) * double(K) / peak,
                                                      benchmark::Counter::kIsIterationInvariantRate);
}
#endif

// ---- Ceilings ------------------------------------------------------------------------------

// DRAM read bandwidth: sums 512 MiB of floats with `threads` threads. Each thread reads its
// share as 4 streams side by side; a core reaches ~10% more bandwidth that way than with one.
void BM_ceiling_read_bandwidth(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    static std::vector<float> data = [] {
        std::vector<float> v(kPoolBytes / sizeof(float));
        fill(v, 7);
        return v;
    }();
    constexpr dim kStreams = 4, kBlock = 4096;
    const dim blocks = static_cast<dim>(data.size()) / (kStreams * kBlock);
    for (auto _ : state) {
        float total = 0.0f;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : total)
        for (dim block = 0; block < blocks; ++block) {
            // stream s reads part s of the array: [s * blocks * kBlock, (s + 1) * blocks * kBlock)
            const float* p0 = data.data() + block * kBlock;
            const float* p1 = p0 + blocks * kBlock;
            const float* p2 = p1 + blocks * kBlock;
            const float* p3 = p2 + blocks * kBlock;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
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
    }
    state.counters["GB"] = benchmark::Counter(1e-9 * double(blocks * kStreams * kBlock * sizeof(float)),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// FP32 FMA and bf16 dot-product peaks: register-resident chains (bench/ceilings.hpp).
void BM_ceiling_peak(benchmark::State& state) {
    const auto peak = static_cast<bench::Peak>(state.range(0));
    weft::set_num_threads(static_cast<int>(state.range(1)));
    double gflops = 0;
    for (auto _ : state) gflops = bench::compute_peak_gops(peak, 1);
    state.counters["GFLOP/s"] = gflops;
    state.SetLabel(bench::peak_name(peak));
}

// ---- Registration ---------------------------------------------------------------------------
// Grouped by thread count, and each group opens with its ceilings: on a shared host, memory
// bandwidth drifts within seconds, so a figure is best read against the ceiling measured just
// before it. Libraries run one after another (weft, Eigen, OpenBLAS), so that one library's idle
// threads, still spinning, do not land in another's measurement.

const std::pair<dim, dim> kShapes[] = {{2048, 8192}, {8192, 2048}};  // {K, N}
const dim kMs[] = {1, 16, 128, 512};

using BenchFn = void (*)(benchmark::State&);

void add_matmul(const char* name, BenchFn fn, int threads, bool only_m1 = false, dim min_m = 1) {
    for (dim M : kMs)
        for (auto [K, N] : kShapes) {
            if ((only_m1 && M != 1) || M < min_m) continue;
            benchmark::RegisterBenchmark(name, fn)
                ->Args({M, K, N, threads})
                ->ArgNames({"M", "K", "N", "threads"})
                ->MinTime(0.3)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
        }
}

void register_all() {
    for (int threads : {1, 2}) {
        benchmark::RegisterBenchmark("ceiling_read_bandwidth", BM_ceiling_read_bandwidth)
            ->Arg(threads)->ArgName("threads")->MinTime(0.5)->UseRealTime()->Unit(benchmark::kMillisecond);
        for (bench::Peak peak : {bench::Peak::f32_fma, bench::Peak::bf16_dot})
            if (bench::peak_available(peak))
                benchmark::RegisterBenchmark(peak == bench::Peak::f32_fma ? "ceiling_fma_peak" : "ceiling_bf16_peak", BM_ceiling_peak)
                    ->Args({static_cast<dim>(peak), threads})->ArgNames({"peak", "threads"})->MinTime(0.3)->UseRealTime()
                    ->Unit(benchmark::kMillisecond);
        add_matmul("weft_matmul_nt", BM_weft_matmul_nt, threads);
        add_matmul("weft_matmul_nn", BM_weft_matmul_nn, threads, /*only_m1=*/true);
#if defined(WEFT_GEMM_BF16)
        add_matmul("weft_gemm_bf16<bf16>", BM_weft_gemm_bf16<weft::bf16>, threads, /*only_m1=*/false, /*min_m=*/128);
        add_matmul("weft_gemm_bf16<f16>", BM_weft_gemm_bf16<weft::f16>, threads, /*only_m1=*/false, /*min_m=*/128);
#endif
#if defined(WEFT_BENCH_HAVE_EIGEN)
        add_matmul("eigen_matmul_nt", BM_eigen_matmul_nt, threads);
#endif
#if defined(WEFT_BENCH_HAVE_OPENBLAS)
        add_matmul("openblas_matmul_nt", BM_openblas_matmul_nt, threads);
#endif
    }
}

}  // namespace

int main(int argc, char** argv) {
#if defined(WEFT_BENCH_HAVE_OPENBLAS)
#if defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    // OpenBLAS picks its kernels when it loads. One older than the CPU falls back to its generic
    // "Prescott" (SSE3) kernels and runs 5-8x below its real speed; start again with its
    // AVX-512 kernels so the comparison is fair. An OPENBLAS_CORETYPE you set is kept.
    if (std::getenv("OPENBLAS_CORETYPE") == nullptr && std::strcmp(openblas_get_corename(), "Prescott") == 0 &&
        __builtin_cpu_supports("avx512f")) {
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
    }
#endif
    benchmark::AddCustomContext("openblas_core", openblas_get_corename());
#endif
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
