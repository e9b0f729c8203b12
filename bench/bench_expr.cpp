// bench_expr: weft's fused elementwise expressions and row reductions next to their ceiling
// (a plain memory copy, 1 and 2 threads, in the same run) and their peer (Eigen arrays).
//   fused a*b + c over 64 MiB arrays: GB/s counts 3 reads + 1 write; copy counts 1 read + 1 write.
//   softmax and RMS over [512, 4096] rows (8 MiB: mostly cache-resident).
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>

#include <weft/weft.hpp>

#if defined(WEFT_BENCH_HAVE_EIGEN)
#include <Eigen/Core>
#endif

namespace {

constexpr weft::Index big = weft::Index(1) << 24;  // 16 Mi floats = 64 MiB

weft::Tensor<float>& array(int which) {
    static weft::Tensor<float> arrays[4] = {weft::Tensor<float>(weft::Shape{big}, 1.0f), weft::Tensor<float>(weft::Shape{big}, 2.0f),
                                            weft::Tensor<float>(weft::Shape{big}, 3.0f), weft::Tensor<float>(weft::Shape{big}, 0.0f)};
    return arrays[which];
}

void set_bytes(benchmark::State& state, double bytes_per_iteration) {
    state.counters["GB/s"] = benchmark::Counter(bytes_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The ceiling: memcpy of 64 MiB, split over the given number of threads.
void BM_copy(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    weft::set_num_threads(threads);
    const float* src = array(0).data();
    float* dst = array(3).data();
    for (auto _ : state) {
        weft::parallel_for(big, 1 << 16, [&](weft::Index b, weft::Index e) {
            std::memcpy(dst + b, src + b, static_cast<std::size_t>(e - b) * sizeof(float));
        });
        benchmark::ClobberMemory();
    }
    set_bytes(state, 2.0 * big * sizeof(float));
}
BENCHMARK(BM_copy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_fused_mul_add(benchmark::State& state) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    auto& a = array(0);
    auto& b = array(1);
    auto& c = array(2);
    auto out = array(3).view();
    for (auto _ : state) {
        out = a * b + c;
        benchmark::ClobberMemory();
    }
    set_bytes(state, 4.0 * big * sizeof(float));
}
BENCHMARK(BM_fused_mul_add)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

#if defined(WEFT_BENCH_HAVE_EIGEN)
// Eigen evaluates coefficient-wise expressions on one thread.
void BM_eigen_mul_add(benchmark::State& state) {
    Eigen::Map<Eigen::ArrayXf> a(array(0).data(), big), b(array(1).data(), big), c(array(2).data(), big), out(array(3).data(), big);
    for (auto _ : state) {
        out = a * b + c;
        benchmark::ClobberMemory();
    }
    set_bytes(state, 4.0 * big * sizeof(float));
}
BENCHMARK(BM_eigen_mul_add)->UseRealTime()->Unit(benchmark::kMillisecond);
#endif

weft::Tensor<float> rows_input() {
    weft::Tensor<float> x(weft::Shape{512, 4096});
    std::mt19937 rng(1);
    std::normal_distribution<float> dist;
    for (float& v : x.span()) v = dist(rng);
    return x;
}

void BM_row_softmax(benchmark::State& state) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    const weft::Tensor<float> x = rows_input();
    weft::Tensor<float> out(x.shape());
    for (auto _ : state) {
        weft::softmax(x, out.view());
        benchmark::ClobberMemory();
    }
    set_bytes(state, 2.0 * x.numel() * sizeof(float));
}
BENCHMARK(BM_row_softmax)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

// RMS normalisation: x * rsqrt(mean(x²) + eps) * w — one reduction pass, one fused pass.
void BM_row_rms_norm(benchmark::State& state) {
    weft::set_num_threads(static_cast<int>(state.range(0)));
    const weft::Tensor<float> x = rows_input();
    const weft::Tensor<float> w(weft::Shape{4096}, 1.5f);
    weft::Tensor<float> out(x.shape());
    for (auto _ : state) {
        out = x * weft::rsqrt(weft::row_mean(weft::square(x)) + 1e-5f) * w;
        benchmark::ClobberMemory();
    }
    set_bytes(state, 2.0 * x.numel() * sizeof(float));
}
BENCHMARK(BM_row_rms_norm)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

#if defined(WEFT_BENCH_HAVE_EIGEN)
void BM_eigen_row_softmax(benchmark::State& state) {
    const weft::Tensor<float> x = rows_input();
    weft::Tensor<float> out(x.shape());
    using Rows = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const Rows> in(x.data(), 512, 4096);
    Eigen::Map<Rows> o(out.data(), 512, 4096);
    for (auto _ : state) {
        o = (in.colwise() - in.rowwise().maxCoeff()).exp();
        o.colwise() /= o.rowwise().sum();
        benchmark::ClobberMemory();
    }
    set_bytes(state, 2.0 * x.numel() * sizeof(float));
}
BENCHMARK(BM_eigen_row_softmax)->UseRealTime()->Unit(benchmark::kMicrosecond);
#endif

}  // namespace

BENCHMARK_MAIN();
