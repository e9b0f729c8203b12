// weft/cuda/error.cuh — CUDA runtime and cuBLAS status codes turned into weft::Error (the backend
// never aborts): WEFT_CUDA_CHECK(call), WEFT_CUBLAS_CHECK(call) and WEFT_CUDA_CHECK_LAUNCH(kernel)
// name the call, the code and the source line. Also device_count(), which never throws.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "weft/core/error.hpp"

namespace weft::cuda {

namespace detail {

// Throws weft::Error for a failed CUDA runtime call:
// "CUDA: cudaMalloc(&p, n) failed with cudaErrorMemoryAllocation (out of memory) at llama.cuh:120".
inline void check_cuda(cudaError_t code, const char* call, const char* file, int line) {
    if (code == cudaSuccess) return;
    (void)cudaGetLastError();  // clear the (non-sticky) error so the next check starts clean
    fail("CUDA: ", call, " failed with ", cudaGetErrorName(code), " (", cudaGetErrorString(code), ") at ", file, ":", line);
}

inline void check_cublas(cublasStatus_t code, const char* call, const char* file, int line) {
    if (code == CUBLAS_STATUS_SUCCESS) return;
    fail("cuBLAS: ", call, " failed with ", cublasGetStatusName(code), " (", cublasGetStatusString(code), ") at ", file, ":",
         line);
}

}  // namespace detail

// Number of usable CUDA devices; 0 when there is no device, no driver, or the driver is too old
// for this runtime. Never throws (tests and programs use it to decide whether to skip).
inline int device_count() noexcept {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

}  // namespace weft::cuda

#define WEFT_CUDA_CHECK(call) ::weft::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)
#define WEFT_CUBLAS_CHECK(call) ::weft::cuda::detail::check_cublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: a bad launch configuration (or no device) becomes weft::Error naming `what`.
#define WEFT_CUDA_CHECK_LAUNCH(what) ::weft::cuda::detail::check_cuda(cudaGetLastError(), "launch of " what, __FILE__, __LINE__)
