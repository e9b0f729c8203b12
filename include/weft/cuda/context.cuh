// weft/cuda/context.cuh — Context: the stream device work is queued on, the cuBLAS handle bound to
// it (created on first use) and reusable scratch buffers (activations converted for cuBLAS,
// dequantized weight panels). Pass one Context to the ops that need more than a stream.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <memory>
#include <utility>

#include "weft/cuda/error.cuh"
#include "weft/cuda/memory.cuh"

namespace weft::cuda {

class Context {
public:
    // A context with its own (blocking) stream.
    Context() : owned_(std::make_unique<Stream>()), stream_(owned_->get()) {}
    // A context that queues work on a stream the caller owns (nullptr: the legacy default stream).
    explicit Context(cudaStream_t stream) : stream_(stream) {}
    ~Context() {
        if (blas_) (void)cublasDestroy(blas_);
    }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    cudaStream_t stream() const { return stream_; }
    void synchronize() const { WEFT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

    // The cuBLAS handle, bound to this context's stream; f32 GEMMs stay f32 (no TF32).
    cublasHandle_t blas() {
        if (!blas_) {
            WEFT_CUBLAS_CHECK(cublasCreate(&blas_));
            WEFT_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
            WEFT_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
        }
        return blas_;
    }

    // Scratch buffer `slot` (0..3) of at least `bytes`; its contents do not survive the next
    // request that makes it grow. Growing waits for the stream (the old buffer may be in use).
    void* scratch(int slot, std::size_t bytes) {
        DeviceBuffer& b = scratch_.at(static_cast<std::size_t>(slot));
        if (b.size() < bytes) {
            synchronize();
            b = DeviceBuffer(bytes + bytes / 4);
        }
        return b.data();
    }

private:
    std::unique_ptr<Stream> owned_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t blas_ = nullptr;
    std::array<DeviceBuffer, 4> scratch_;
};

}  // namespace weft::cuda
