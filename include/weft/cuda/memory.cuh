// weft/cuda/memory.cuh — RAII owners of CUDA resources: DeviceBuffer (cudaMalloc), PinnedBuffer
// (page-locked host memory for asynchronous copies), Stream and Event. All move-only; destructors
// never throw (a failure to free is ignored, as std::vector ignores one).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "weft/core/error.hpp"
#include "weft/cuda/error.cuh"

namespace weft::cuda {

// Bytes of device memory, uninitialised. Allocated with cudaMalloc (256-byte aligned).
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t bytes) : size_(bytes) {
        if (bytes == 0) return;
        const cudaError_t e = cudaMalloc(&data_, bytes);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            data_ = nullptr;
            fail("CUDA: cannot allocate ", bytes, " bytes of device memory: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
        }
    }
    ~DeviceBuffer() { release(); }
    DeviceBuffer(DeviceBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            release();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    void* data() const { return data_; }
    std::size_t size() const { return size_; }
    template <class T> T* as() const { return static_cast<T*>(data_); }

    // Makes the buffer at least `bytes` long (contents are lost when it grows).
    void reserve(std::size_t bytes) {
        if (bytes > size_) *this = DeviceBuffer(bytes);
    }

private:
    void release() noexcept {
        if (data_) (void)cudaFree(data_);
        data_ = nullptr;
    }
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

// Page-locked host memory: the source or target of copies that run asynchronously on a stream
// (and of copies a CUDA graph replays).
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(std::size_t bytes) : size_(bytes) {
        if (bytes) WEFT_CUDA_CHECK(cudaMallocHost(&data_, bytes));
    }
    ~PinnedBuffer() {
        if (data_) (void)cudaFreeHost(data_);
    }
    PinnedBuffer(PinnedBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(size_, o.size_);
        return *this;
    }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    void* data() const { return data_; }
    std::size_t size() const { return size_; }
    template <class T> T* as() const { return static_cast<T*>(data_); }

private:
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

// A CUDA stream. Created "blocking": it also orders against work on the legacy default stream
// (stream 0), which `dst = expr` without a stream uses.
class Stream {
public:
    Stream() { WEFT_CUDA_CHECK(cudaStreamCreate(&stream_)); }
    ~Stream() {
        if (stream_) (void)cudaStreamDestroy(stream_);
    }
    Stream(Stream&& o) noexcept : stream_(std::exchange(o.stream_, nullptr)) {}
    Stream& operator=(Stream&& o) noexcept {
        std::swap(stream_, o.stream_);
        return *this;
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    cudaStream_t get() const { return stream_; }
    operator cudaStream_t() const { return stream_; }
    void synchronize() const { WEFT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

private:
    cudaStream_t stream_ = nullptr;
};

// A CUDA event; timing disabled unless asked for.
class Event {
public:
    explicit Event(bool timing = false) {
        WEFT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
    }
    ~Event() {
        if (event_) (void)cudaEventDestroy(event_);
    }
    Event(Event&& o) noexcept : event_(std::exchange(o.event_, nullptr)) {}
    Event& operator=(Event&& o) noexcept {
        std::swap(event_, o.event_);
        return *this;
    }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    cudaEvent_t get() const { return event_; }
    void record(cudaStream_t stream) { WEFT_CUDA_CHECK(cudaEventRecord(event_, stream)); }
    void synchronize() const { WEFT_CUDA_CHECK(cudaEventSynchronize(event_)); }
    // Milliseconds between `start` and this event (both recorded with timing on).
    float elapsed_ms_since(const Event& start) const {
        float ms = 0;
        WEFT_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
        return ms;
    }

private:
    cudaEvent_t event_ = nullptr;
};

}  // namespace weft::cuda
