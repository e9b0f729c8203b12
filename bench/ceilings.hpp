// bench/ceilings.hpp — this machine's limits measured in the same run as a figure, so each figure
// can be quoted as a fraction of what the hardware allowed at that moment (the host drifts).
// Used by the Google Benchmark programs and by weft-bench.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <weft/core/tensor.hpp>
#include <weft/core/threading.hpp>
#include <weft/cpu/simd.hpp>

namespace bench {

// Sums `floats` floats with weft's threads; returns the bytes read per second of the best of
// `repeats` passes. A 512 MiB array is far larger than any cache, so this is DRAM read bandwidth.
// Threads claim 256 KiB chunks as they go (parallel_for_guided), as decoding's kernels do, so a
// core that streams faster than the other is not held back: the ceiling is what the two cores
// can read together.
inline double read_bandwidth_gbs(int repeats = 3, weft::Index floats = weft::Index(1) << 27) {
    constexpr weft::Index chunk = weft::Index(1) << 16;
    static weft::Tensor<float> data;
    if (data.numel() != floats) data = weft::Tensor<float>(weft::Shape{floats}, 1.0f);
    std::vector<float> partial(static_cast<std::size_t>((floats + chunk - 1) / chunk), 0.0f);
    double best = 0;
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        weft::parallel_for_guided(floats, chunk, [&](weft::Index b, weft::Index e) {
            using weft::simd::VecF;
            for (weft::Index c = b; c < e; c += chunk) {
                const weft::Index ce = std::min(e, c + chunk);
                VecF a0 = VecF::zero(), a1 = VecF::zero(), a2 = VecF::zero(), a3 = VecF::zero();
                weft::Index i = c;
                for (; i + 4 * VecF::width <= ce; i += 4 * VecF::width) {
                    a0 = a0 + VecF::load(data.data() + i);
                    a1 = a1 + VecF::load(data.data() + i + VecF::width);
                    a2 = a2 + VecF::load(data.data() + i + 2 * VecF::width);
                    a3 = a3 + VecF::load(data.data() + i + 3 * VecF::width);
                }
                float tail = 0;
                for (; i < ce; ++i) tail += data.data()[i];
                partial[static_cast<std::size_t>(c / chunk)] = weft::simd::reduce_add((a0 + a1) + (a2 + a3)) + tail;
            }
        });
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        volatile float sink = 0;
        for (float p : partial) sink = sink + p;
        best = std::max(best, static_cast<double>(floats) * sizeof(float) / seconds * 1e-9);
    }
    return best;
}

// ---- Compute peaks ---------------------------------------------------------------------------
// What a prompt's matmuls can reach: 12 independent register-resident chains of one instruction
// on each of weft's threads, the widest form the build has. A multiply-add counts as 2
// operations (GFLOP/s, or GOP/s for int8).
//   f32_fma:  vfmadd (AVX-512 / AVX2 + FMA; else scalar fma): the exact f32 GEMM's unit;
//   bf16_dot: vdpbf16ps (AVX512-BF16): --precision fast on f16 / bf16 weights (cpu/gemm_bf16.hpp);
//   int8_dot: vpdpbusd (AVX-512 VNNI or AVX-VNNI): the quantized GEMM (cpu/quant_matmul.hpp).
enum class Peak { f32_fma, bf16_dot, int8_dot };

inline const char* peak_name(Peak p) {
    return p == Peak::f32_fma ? "f32 FMA" : p == Peak::bf16_dot ? "bf16 dot" : "int8 dot";
}

inline bool peak_available(Peak p) {
    switch (p) {
        case Peak::f32_fma: return true;
#if defined(__AVX512BF16__) && defined(__AVX512F__)
        case Peak::bf16_dot: return true;
#endif
#if defined(__AVX512VNNI__) || defined(__AVXVNNI__)
        case Peak::int8_dot: return true;
#endif
        default: return false;
    }
}

namespace detail {

inline constexpr int kChains = 12;  // more than latency × ports of each instruction here

// Runs `steps` rounds of op over kChains accumulators; returns operations done (2 per MAC lane).
template <class V, class A, class Op>
double run_chains(std::int64_t steps, V start, A a, A b, Op op, double ops_per_instruction) {
    V acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = start;
    for (std::int64_t s = 0; s < steps; ++s) {
#pragma GCC unroll 12
        for (int i = 0; i < kChains; ++i) acc[i] = op(acc[i], a, b);
    }
    volatile V sink = acc[0];
    for (int i = 1; i < kChains; ++i) sink = acc[i];
    (void)sink;
    return ops_per_instruction * kChains * static_cast<double>(steps);
}

inline double chains(Peak p, std::int64_t steps) {
    switch (p) {
        case Peak::f32_fma:
#if defined(__AVX512F__)
            return run_chains(steps, _mm512_set1_ps(1.0f), _mm512_set1_ps(0.999999f), _mm512_set1_ps(1e-7f),
                              [](__m512 c, __m512 m, __m512 a) { return _mm512_fmadd_ps(c, m, a); }, 32);
#elif defined(__AVX2__) && defined(__FMA__)
            return run_chains(steps, _mm256_set1_ps(1.0f), _mm256_set1_ps(0.999999f), _mm256_set1_ps(1e-7f),
                              [](__m256 c, __m256 m, __m256 a) { return _mm256_fmadd_ps(c, m, a); }, 16);
#else
            return run_chains(steps, 1.0f, 0.999999f, 1e-7f, [](float c, float m, float a) { return std::fma(c, m, a); }, 2);
#endif
#if defined(__AVX512BF16__) && defined(__AVX512F__)
        case Peak::bf16_dot: {
            // bf16 pairs (1.0, 1e-3): the accumulators stay finite
            const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3A833F80), y = (__m512bh)_mm512_set1_epi32(0x3A833F80);
            return run_chains(steps, _mm512_setzero_ps(), x, y,
                              [](__m512 c, __m512bh a, __m512bh b) { return _mm512_dpbf16_ps(c, a, b); }, 64);
        }
#endif
#if defined(__AVX512VNNI__)
        case Peak::int8_dot:
            return run_chains(steps, _mm512_setzero_si512(), _mm512_set1_epi32(0x01020304), _mm512_set1_epi32(0x01FF0102),
                              [](__m512i c, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(c, a, b); }, 128);
#elif defined(__AVXVNNI__)
        case Peak::int8_dot:
            return run_chains(steps, _mm256_setzero_si256(), _mm256_set1_epi32(0x01020304), _mm256_set1_epi32(0x01FF0102),
                              [](__m256i c, __m256i a, __m256i b) { return _mm256_dpbusd_avx_epi32(c, a, b); }, 64);
#endif
        default: return 0;
    }
}

}  // namespace detail

// The peak of `p` on weft's threads (weft::num_threads()), best of `repeats` passes (about 8 ms
// each on Zen 4), in GFLOP/s (GOP/s for int8); 0 where the build lacks the instruction.
inline double compute_peak_gops(Peak p, int repeats = 3, std::int64_t steps = std::int64_t(1) << 21) {
    if (!peak_available(p)) return 0;
    const int threads = weft::num_threads();
    double best = 0;
    for (int r = 0; r < repeats; ++r) {
        std::vector<double> ops(static_cast<std::size_t>(threads), 0.0);
        const auto start = std::chrono::steady_clock::now();
        weft::parallel_for(threads, 1, [&](weft::Index b, weft::Index e) {
            for (weft::Index t = b; t < e; ++t) ops[static_cast<std::size_t>(t)] = detail::chains(p, steps);
        });
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        double total = 0;
        for (double o : ops) total += o;
        best = std::max(best, total / seconds * 1e-9);
    }
    return best;
}

}  // namespace bench
