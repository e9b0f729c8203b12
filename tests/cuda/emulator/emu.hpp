// tests/cuda/emulator/emu.hpp — runs weft's CUDA kernels on the CPU (g++, no GPU) to check their
// logic: CUDA threads are fibers, __syncthreads and shuffles are barriers, device memory is host
// memory. Force-included (-include) before the headers that transform.py rewrote. Not a simulator of
// timing, memory coalescing or the hardware memory model: the real proof is the GPU run.
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>

#include <array>
#include <ucontext.h>
#include <csetjmp>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <vector>

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline
#define __launch_bounds__(...)

namespace emu {
// Threads of a block are fibers (ucontext) run by one OS thread: a barrier (__syncthreads, or a warp's
// half of a shuffle) parks the fiber until every live member of the block (warp) has arrived; a
// barrier that can never complete (divergent __syncthreads) aborts with a message.
struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    uint3 thread;
    int waiting = 0;  // 0 running, 1 warp barrier, 2 block barrier
    bool done = false, started = false;
    void* fake = nullptr;
    jmp_buf jb;
};
struct Block {
    std::vector<Fiber>* fibers;
    std::vector<std::array<std::uint64_t, 32>> exch;
    void* smem;
    uint3 block;
    dim3 bdim, gdim;
    int current = 0;
    std::function<void()>* body;
};
inline Block* blk = nullptr;
inline jmp_buf sched_jb;
inline const void* sched_bottom = nullptr;
inline std::size_t sched_size = 0;
inline Fiber& me() { return (*blk->fibers)[blk->current]; }

template <class T> T* dynamic_smem() { return static_cast<T*>(blk->smem); }

struct Cfg {
    dim3 grid, block;
    std::size_t smem;
    Cfg(dim3 g, dim3 b, std::size_t s = 0, cudaStream_t = nullptr) : grid(g), block(b), smem(s) {}
};

inline bool& capturing() { static bool c = false; return c; }
inline std::vector<std::function<void()>>& captured() { static std::vector<std::function<void()>> v; return v; }
inline long& launches() { static long n = 0; return n; }

inline void to_scheduler(bool finishing) {
    Fiber& f = me();
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(finishing ? nullptr : &f.fake, sched_bottom, sched_size);
#endif
    if (finishing) _longjmp(sched_jb, 1);
    if (!_setjmp(f.jb)) _longjmp(sched_jb, 1);
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(f.fake, nullptr, nullptr);
#endif
}
inline void wait(int kind) {
    me().waiting = kind;
    to_scheduler(false);
}
inline void trampoline() {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(nullptr, &sched_bottom, &sched_size);
#endif
    (*blk->body)();
    me().done = true;
    to_scheduler(true);
}

inline std::vector<Fiber>& fiber_pool(unsigned n) {
    static std::vector<Fiber> pool;
    if (pool.size() < n) pool.resize(n);
    for (auto& f : pool)
        if (f.stack.empty()) f.stack.resize(512 * 1024);
    return pool;
}

template <class Body>
void run_grid(const Cfg& c, Body&& body) {
    ++launches();
    const unsigned nt = c.block.x * c.block.y * c.block.z;
    if (nt % 32 != 0 || c.block.y != 1 || c.block.z != 1 || nt > 1024) { std::fprintf(stderr, "emu: block of %u threads\n", nt); std::abort(); }
    std::vector<char> smem(c.smem + 16);
    std::vector<Fiber>& pool = fiber_pool(nt);
    std::function<void()> fn = body;
    for (unsigned bz = 0; bz < c.grid.z; ++bz)
        for (unsigned by = 0; by < c.grid.y; ++by)
            for (unsigned bx = 0; bx < c.grid.x; ++bx) {
                std::memset(smem.data(), 0xCD, smem.size());  // garbage, as uninitialised shared memory
                Block b{&pool, std::vector<std::array<std::uint64_t, 32>>(nt / 32), smem.data(), uint3{bx, by, bz}, c.block, c.grid, 0, &fn};
                blk = &b;
                for (unsigned t = 0; t < nt; ++t) {
                    Fiber& f = pool[t];
                    f.thread = uint3{t, 0, 0};
                    f.waiting = 0;
                    f.done = false;
                    f.started = false;
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = f.stack.data();
                    f.ctx.uc_stack.ss_size = f.stack.size();
                    f.ctx.uc_link = nullptr;
                    makecontext(&f.ctx, trampoline, 0);
                }
                for (;;) {
                    bool any_alive = false, progress = false;
                    for (unsigned t = 0; t < nt; ++t) {
                        Fiber& f = pool[t];
                        if (f.done) continue;
                        any_alive = true;
                        if (f.waiting) continue;
                        b.current = static_cast<int>(t);
#if defined(__SANITIZE_ADDRESS__)
                        void* fake = nullptr;
                        __sanitizer_start_switch_fiber(&fake, f.stack.data(), f.stack.size());
#endif
                        if (!_setjmp(sched_jb)) {
                            if (!f.started) {
                                f.started = true;
                                setcontext(&f.ctx);
                            }
                            _longjmp(f.jb, 1);
                        }
#if defined(__SANITIZE_ADDRESS__)
                        __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
                        progress = true;
                    }
                    if (!any_alive) break;
                    // Release complete barriers.
                    for (unsigned w = 0; w < nt / 32; ++w) {
                        int live = 0, at = 0;
                        for (unsigned l = 0; l < 32; ++l) {
                            const Fiber& f = pool[w * 32 + l];
                            if (!f.done) ++live, at += f.waiting == 1;
                        }
                        if (live && at == live) {
                            for (unsigned l = 0; l < 32; ++l) pool[w * 32 + l].waiting = 0;
                            progress = true;
                        }
                    }
                    int live = 0, at = 0;
                    for (unsigned t = 0; t < nt; ++t)
                        if (!pool[t].done) ++live, at += pool[t].waiting == 2;
                    if (live && at == live) {
                        for (unsigned t = 0; t < nt; ++t) pool[t].waiting = 0;
                        progress = true;
                    }
                    if (!progress) { std::fprintf(stderr, "emu: deadlock (divergent barrier) in block (%u,%u,%u)\n", bx, by, bz); std::abort(); }
                }
                blk = nullptr;
            }
}

template <class F, class... A>
void launch(const Cfg& c, F f, A... args) {
    auto run = [c, f, args...] { run_grid(c, [&] { f(args...); }); };
    if (capturing()) captured().push_back(run);
    else run();
}

template <class T>
T shfl(T v, int src) {
    static_assert(sizeof(T) <= 8);
    const unsigned lane = me().thread.x % 32, w = me().thread.x / 32;
    auto& slot = blk->exch[w];
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    slot[lane] = bits;
    wait(1);
    T r;
    std::memcpy(&r, &slot[src & 31], sizeof(T));
    wait(1);
    return r;
}

}  // namespace emu

#define threadIdx (::emu::me().thread)
#define blockIdx (::emu::blk->block)
#define blockDim (::emu::blk->bdim)
#define gridDim (::emu::blk->gdim)

inline void __syncthreads() { ::emu::wait(2); }
template <class T> T __shfl_xor_sync(unsigned, T v, int o) { return ::emu::shfl(v, int(::emu::me().thread.x % 32) ^ o); }
template <class T> T __shfl_sync(unsigned, T v, int src) { return ::emu::shfl(v, src); }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
template <class T> cudaError_t cudaFuncSetAttribute(T* f, cudaFuncAttribute a, int v) { return cudaFuncSetAttribute(reinterpret_cast<const void*>(f), a, v); }
// weft/cuda.cuh refuses to compile without nvcc; the emulation stands in for it.
#define __CUDACC__ 1
