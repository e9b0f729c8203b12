// weft-expressions: a tour of weft's tensor expressions on the CPU. It builds a SwiGLU
// feed-forward block (the MLP of a Llama layer) from expressions and matmuls, checks it against a
// plain loop, and reports how fast the fused elementwise pass and the matmuls run on this machine.
//
//   weft-expressions [--threads N] [--dim D] [--tokens T]
#include <weft/weft.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

namespace {

weft::Tensor<float> random_matrix(const weft::Shape& shape, float scale, std::mt19937& rng) {
    weft::Tensor<float> t = weft::Tensor<float>::uninitialized(shape);
    std::normal_distribution<float> dist(0.0f, scale);
    for (float& x : t.span()) x = dist(rng);
    return t;
}

template <class F>
double seconds_per_run(F&& f, int runs) {
    f();  // warm up
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / runs;
}

long parse_positive(const char* flag, const char* text) {
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (!end || *end || v <= 0) {
        std::fprintf(stderr, "weft-expressions: %s needs a positive integer, got '%s'\n", flag, text);
        std::exit(2);
    }
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    long dim = 1024, tokens = 64, threads = weft::num_threads();
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if ((arg == "--threads" || arg == "-t" || arg == "--dim" || arg == "--tokens") && i + 1 < argc) {
            const long v = parse_positive(argv[i], argv[i + 1]);
            (arg == "--dim" ? dim : arg == "--tokens" ? tokens : threads) = v;
            ++i;
        } else {
            std::fprintf(stderr, "usage: weft-expressions [--threads N] [--dim D] [--tokens T]\n");
            return arg == "--help" || arg == "-h" ? 0 : 2;
        }
    }
    weft::set_num_threads(static_cast<int>(threads));
    const long hidden = dim * 8 / 3 / 64 * 64 + 64;

    std::mt19937 rng(42);
    // x: [tokens, dim]; gate and up: [hidden, dim]; down: [dim, hidden] — stored [out, in].
    const weft::Tensor<float> x = random_matrix({tokens, dim}, 1.0f, rng);
    const weft::Tensor<float> w_gate = random_matrix({hidden, dim}, 1.0f / std::sqrt(float(dim)), rng);
    const weft::Tensor<float> w_up = random_matrix({hidden, dim}, 1.0f / std::sqrt(float(dim)), rng);
    const weft::Tensor<float> w_down = random_matrix({dim, hidden}, 1.0f / std::sqrt(float(hidden)), rng);
    const weft::Tensor<float> norm_weight = random_matrix({dim}, 0.1f, rng) + 1.0f;

    // RMSNorm, then the SwiGLU MLP: down(silu(gate(h)) * up(h)). The elementwise parts are single
    // fused passes; nothing is computed until a result is assigned.
    auto mlp = [&] {
        weft::Tensor<float> h = x * weft::rsqrt(weft::row_mean(weft::square(x)) + 1e-5f) * norm_weight;  // [tokens, dim]
        weft::Tensor<float> gate = weft::matmul_nt(h, w_gate);                                         // [tokens, hidden]
        weft::Tensor<float> up = weft::matmul_nt(h, w_up);                                             // [tokens, hidden]
        gate = weft::silu(gate) * up;                                                                  // in place
        return weft::matmul_nt(gate, w_down);                                                          // [tokens, dim]
    };
    const weft::Tensor<float> y = mlp();

    // The same for one token with plain loops in double.
    double worst = 0, scale = 0;
    {
        std::vector<double> h(dim), a(hidden);
        double ms = 0;
        for (long k = 0; k < dim; ++k) ms += double(x(0, k)) * x(0, k);
        const double inv = 1 / std::sqrt(ms / dim + 1e-5);
        for (long k = 0; k < dim; ++k) h[k] = x(0, k) * inv * norm_weight(k);
        for (long j = 0; j < hidden; ++j) {
            double g = 0, u = 0;
            for (long k = 0; k < dim; ++k) g += h[k] * w_gate(j, k), u += h[k] * w_up(j, k);
            a[j] = g / (1 + std::exp(-g)) * u;
        }
        for (long i = 0; i < dim; ++i) {
            double o = 0;
            for (long j = 0; j < hidden; ++j) o += a[j] * w_down(i, j);
            worst = std::max(worst, std::abs(o - y(0, i)));
            scale = std::max(scale, std::abs(o));
        }
    }
    std::printf("weft %s (%s SIMD, %d threads)\n", weft::version_string, weft::simd::isa_name, weft::num_threads());
    std::printf("SwiGLU MLP, %ld tokens, dim %ld, hidden %ld: first row vs a float64 loop: max error %.2e of max |y| %.3f\n",
                tokens, dim, hidden, worst, scale);

    const double t_mlp = seconds_per_run(mlp, 5);
    const double flops = 2.0 * tokens * dim * hidden * 3;
    std::printf("MLP forward: %.2f ms, %.1f GFLOP/s in matmuls\n", t_mlp * 1e3, flops / t_mlp * 1e-9);

    const long n = 1L << 24;  // 64 MiB per f32 array
    weft::Tensor<float> a = random_matrix({n}, 1.0f, rng), b = random_matrix({n}, 1.0f, rng), c = random_matrix({n}, 1.0f, rng);
    weft::Tensor<float> out = weft::Tensor<float>::uninitialized({n});
    const double t_fused = seconds_per_run([&] { out = a * b + c; }, 5);
    std::printf("fused out = a * b + c over 64 MiB arrays: %.1f GB/s (3 reads + 1 write)\n", 4.0 * n * sizeof(float) / t_fused * 1e-9);
    return worst <= 1e-3 * std::max(scale, 1.0) ? 0 : 1;
}
