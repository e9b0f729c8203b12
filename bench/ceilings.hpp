// bench/ceilings.hpp — this machine's limits measured in the same run as a figure, so each figure
// can be quoted as a fraction of what the hardware allowed at that moment (the host drifts).
// Used by the Google Benchmark programs and by weft-bench.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

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

}  // namespace bench
