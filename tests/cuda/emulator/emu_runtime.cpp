// tests/cuda/emulator/emu_runtime.cpp — host stand-ins for the CUDA runtime and cuBLAS calls weft
// makes: device memory is host memory (filled with garbage bytes on allocation), streams and events
// are no-ops, stream capture records launches that cudaGraphLaunch replays, cublasGemmEx is a loop.
#include "emu.hpp"

#include <cstdint>

#include <cstdio>
#include <cstdlib>
#include <vector>

struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};
struct cublasContext {};

extern "C" {
cudaError_t cudaMalloc(void** p, size_t n) {
    if (n > (size_t(1) << 36)) { *p = nullptr; return cudaErrorMemoryAllocation; }
    *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
    std::memset(*p, 0xAB, n);  // garbage
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) { std::free(p); return cudaSuccess; }
cudaError_t cudaMallocHost(void** p, size_t n) { *p = std::malloc(n ? n : 1); return cudaSuccess; }
cudaError_t cudaFreeHost(void* p) { std::free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) { std::memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) {
    if (emu::capturing()) { std::fprintf(stderr, "emu: memcpy during capture\n"); std::abort(); }
    std::memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemset(void* d, int v, size_t n) { std::memset(d, v, n); return cudaSuccess; }
cudaError_t cudaStreamCreate(cudaStream_t* s) { static int dummy; *s = reinterpret_cast<cudaStream_t>(&dummy); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { static int dummy; *e = reinterpret_cast<cudaEvent_t>(&dummy); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) { *ms = 1; return cudaSuccess; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
const char* cudaGetErrorName(cudaError_t e) { return e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : "cudaError?"; }
const char* cudaGetErrorString(cudaError_t) { return "emulated error"; }
cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties_v2(cudaDeviceProp* p, int) { std::memset(p, 0, sizeof(*p)); std::strcpy(p->name, "emulated"); p->major = 9; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) { return cudaGetDeviceProperties_v2(p, d); }
cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int) {
    if (emu::capturing()) { std::fprintf(stderr, "emu: cudaFuncSetAttribute during capture\n"); std::abort(); }
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) { emu::capturing() = true; emu::captured().clear(); return cudaSuccess; }
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* g) {
    emu::capturing() = false;
    *g = new CUgraph_st{std::move(emu::captured())};
    emu::captured().clear();
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) { *e = new CUgraphExec_st{g->ops}; return cudaSuccess; }
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) { delete e; return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) { for (auto& op : e->ops) op(); return cudaSuccess; }

cublasStatus_t cublasCreate_v2(cublasHandle_t* h) { *h = new cublasContext; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
const char* cublasGetStatusName(cublasStatus_t) { return "CUBLAS_STATUS_?"; }
const char* cublasGetStatusString(cublasStatus_t) { return "emulated"; }

static float load_elem(const void* p, cudaDataType_t t, long i) {
    switch (t) {
        case CUDA_R_32F: return static_cast<const float*>(p)[i];
        case CUDA_R_16F: return __half2float(static_cast<const __half*>(p)[i]);
        case CUDA_R_16BF: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
        default: std::abort();
    }
}
// Column-major C (m×n) = alpha·op(A)·op(B) + beta·C.
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void* alpha, const void* A,
                            cudaDataType_t at, int lda, const void* B, cudaDataType_t bt, int ldb, const void* beta, void* C, cudaDataType_t ct,
                            int ldc, cublasComputeType_t, cublasGemmAlgo_t) {
    if (ct != CUDA_R_32F) std::abort();
    const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
    float* c = static_cast<float*>(C);
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            float s = 0;
            for (int l = 0; l < k; ++l) {
                const float av = ta == CUBLAS_OP_N ? load_elem(A, at, i + long(l) * lda) : load_elem(A, at, l + long(i) * lda);
                const float bv = tb == CUBLAS_OP_N ? load_elem(B, bt, l + long(j) * ldb) : load_elem(B, bt, j + long(l) * ldb);
                s += av * bv;
            }
            float& out = c[i + long(j) * ldc];
            out = a * s + (b != 0 ? b * out : 0.0f);
        }
    return CUBLAS_STATUS_SUCCESS;
}
}
