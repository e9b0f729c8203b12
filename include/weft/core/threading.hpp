// weft/core/threading.hpp — the thread-count setting and a deterministic parallel loop.
// Work is split into fixed contiguous chunks, so which thread computes an element never
// changes what is computed: results are identical for any thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace weft {

namespace detail {
inline int default_thread_count() {
#if defined(_OPENMP)
    return std::max(1, omp_get_max_threads());
#else
    return 1;
#endif
}
// The library's only global state: how many threads kernels may use.
inline std::atomic<int> thread_count{default_thread_count()};
}  // namespace detail

// Threads that weft kernels use; 1 when weft is compiled without OpenMP.
inline int num_threads() { return detail::thread_count.load(std::memory_order_relaxed); }

// Sets the threads weft kernels use (values below 1 mean 1). Without OpenMP this has no effect.
inline void set_num_threads(int n) {
    detail::thread_count.store(std::max(1, n), std::memory_order_relaxed);
}

// Calls body(begin, end) over [0, n) split into at most num_threads() contiguous chunks, one per
// thread, each a multiple of `grain` long (except the last). Runs serially when n < 2 * grain,
// when one thread is set, or when already inside a parallel region (no nested teams).
// Exceptions thrown by body are not allowed (it runs inside OpenMP).
template <class Body>
void parallel_for(std::ptrdiff_t n, std::ptrdiff_t grain, Body&& body) {
    if (n <= 0) return;
    grain = std::max<std::ptrdiff_t>(grain, 1);
    const std::ptrdiff_t blocks = (n + grain - 1) / grain;
    int threads = static_cast<int>(std::min<std::ptrdiff_t>(num_threads(), blocks));
#if defined(_OPENMP)
    if (omp_in_parallel()) threads = 1;
#endif
    if (threads <= 1) {
        body(std::ptrdiff_t{0}, n);
        return;
    }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
    {
        const std::ptrdiff_t t = omp_get_thread_num();
        const std::ptrdiff_t nt = omp_get_num_threads();
        const std::ptrdiff_t begin = std::min(n, (blocks * t / nt) * grain);
        const std::ptrdiff_t end = std::min(n, (blocks * (t + 1) / nt) * grain);
        if (begin < end) body(begin, end);
    }
#else
    body(std::ptrdiff_t{0}, n);
#endif
}

// Like parallel_for, but threads claim chunks as they go: large ones first (a share of what is
// left), then smaller, down to `grain`. For memory-bound loops (decoding's matrix × vector),
// where one core often streams faster than the other and fixed halves would leave it waiting.
// Which thread runs a chunk varies from run to run; what body computes for an index must not
// depend on it (chunk boundaries are multiples of `grain`, but their sizes vary).
template <class Body>
void parallel_for_guided(std::ptrdiff_t n, std::ptrdiff_t grain, Body&& body) {
    if (n <= 0) return;
    grain = std::max<std::ptrdiff_t>(grain, 1);
    const std::ptrdiff_t blocks = (n + grain - 1) / grain;
    int threads = static_cast<int>(std::min<std::ptrdiff_t>(num_threads(), blocks));
#if defined(_OPENMP)
    if (omp_in_parallel()) threads = 1;
#endif
    if (threads <= 1) {
        body(std::ptrdiff_t{0}, n);
        return;
    }
#if defined(_OPENMP)
    std::atomic<std::ptrdiff_t> next{0};  // first block not yet claimed
#pragma omp parallel num_threads(threads)
    {
        const std::ptrdiff_t nt = omp_get_num_threads();
        std::ptrdiff_t first = next.load(std::memory_order_relaxed);
        while (first < blocks) {
            const std::ptrdiff_t size = std::max<std::ptrdiff_t>(1, (blocks - first) / (2 * nt));
            if (!next.compare_exchange_weak(first, first + size, std::memory_order_relaxed)) continue;
            body(first * grain, std::min(n, (first + size) * grain));
            first = next.load(std::memory_order_relaxed);
        }
    }
#else
    body(std::ptrdiff_t{0}, n);
#endif
}

}  // namespace weft
