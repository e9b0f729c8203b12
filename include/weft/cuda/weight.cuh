// weft/cuda/weight.cuh — DeviceWeight: a weight copied to device memory once, in its stored dtype
// (f32, f16, bf16 or GGUF blocks, byte for byte; the CPU's interleaved layouts as the GGUF rows
// they came from), with its shape in PyTorch order. Several weights
// that read the same input (q/k/v, gate/up) can be stacked into one, row after row.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/weight.hpp"
#include "weft/quant/dequantize.hpp"
#include "weft/quant/interleave.hpp"
#include "weft/cuda/error.cuh"
#include "weft/cuda/memory.cuh"

namespace weft::cuda {

// Bytes of a weight of `shape` stored as `dtype` (rows of whole blocks for quantized dtypes).
inline std::size_t stored_bytes(DType dtype, const Shape& shape, const std::string& name) {
    if (shape.rank() == 0) fail("weight '", name, "' has no axes");
    const Index cols = shape[shape.rank() - 1];
    const Index per_block = static_cast<Index>(block_size(dtype));
    if (cols % per_block != 0)
        fail("weight '", name, "' of shape ", shape, " is ", dtype, ", whose rows must hold whole blocks of ", per_block, " values");
    if (block_bytes(dtype) == 0) fail("weight '", name, "': dtype ", dtype, " has no storage size");
    return static_cast<std::size_t>(shape.numel() / per_block) * block_bytes(dtype);
}

// The device reads GGUF's own row layouts: an interleaved weight (the x16 dtypes: the CPU's
// decoding layouts) as the rows it came from, rebuilt in `host`; any other weight as it is.
inline Weight device_layout(const Weight& w, std::vector<std::byte>& host) {
    if (!quant::is_interleaved(w.dtype)) return w;
    quant::check_layout(w.dtype, w.shape, w.name);
    const Index rows = w.shape[0], cols = w.shape[1];
    const std::size_t row_bytes = w.row_bytes();
    host.resize(static_cast<std::size_t>(rows) * row_bytes);
    for (Index r = 0; r < rows; ++r) quant::deinterleave_row(w.dtype, w.data, cols, r, host.data() + static_cast<std::size_t>(r) * row_bytes);
    return Weight(quant::plain_dtype(w.dtype), host.data(), w.shape, w.name);
}

class DeviceWeight {
public:
    DeviceWeight() = default;

    // Copies a host weight (for example one in a memory-mapped file) to the device as it is stored.
    static DeviceWeight upload(const Weight& stored) {
        std::vector<std::byte> host;
        const Weight w = device_layout(stored, host);
        DeviceWeight d;
        d.dtype_ = w.dtype;
        d.shape_ = w.shape;
        d.name_ = w.name;
        const std::size_t bytes = stored_bytes(w.dtype, w.shape, w.name);
        d.storage_ = std::make_shared<DeviceBuffer>(bytes);
        if (bytes) WEFT_CUDA_CHECK(cudaMemcpy(d.storage_->data(), w.data, bytes, cudaMemcpyHostToDevice));
        d.data_ = static_cast<const std::byte*>(d.storage_->data());
        return d;
    }

    // Stacks the rows of 2-D weights with the same dtype and column count into one [Σ rows, cols]
    // weight, so that one kernel computes all their outputs (q/k/v, gate/up).
    static DeviceWeight upload_stacked(std::span<const Weight> stored, std::string name) {
        if (stored.empty()) fail("upload_stacked: no weights for '", name, "'");
        std::vector<std::vector<std::byte>> hosts(stored.size());
        std::vector<Weight> parts;
        for (std::size_t i = 0; i < stored.size(); ++i) parts.push_back(device_layout(stored[i], hosts[i]));
        const Weight& first = parts[0];
        Index rows = 0;
        for (const Weight& w : parts) {
            if (w.shape.rank() != 2 || w.dtype != first.dtype || w.shape[1] != first.shape[1])
                fail("upload_stacked: '", w.name, "' (", w.dtype, " ", w.shape, ") cannot be stacked under '", first.name, "' (",
                     first.dtype, " ", first.shape, ")");
            rows += w.shape[0];
        }
        DeviceWeight d;
        d.dtype_ = first.dtype;
        d.shape_ = Shape{rows, first.shape[1]};
        d.name_ = std::move(name);
        d.storage_ = std::make_shared<DeviceBuffer>(stored_bytes(d.dtype_, d.shape_, d.name_));
        std::size_t offset = 0;
        for (const Weight& w : parts) {
            const std::size_t bytes = stored_bytes(w.dtype, w.shape, w.name);
            if (bytes) WEFT_CUDA_CHECK(cudaMemcpy(d.storage_->as<std::byte>() + offset, w.data, bytes, cudaMemcpyHostToDevice));
            offset += bytes;
        }
        d.data_ = static_cast<const std::byte*>(d.storage_->data());
        return d;
    }

    // A 1-D float weight (a bias, a norm weight) widened to f32 on the device.
    static DeviceWeight upload_f32(const Weight& w) {
        if (w.shape.rank() != 1) fail("upload_f32: weight '", w.name, "' has shape ", w.shape, ", expected [n]");
        std::vector<float> host(static_cast<std::size_t>(w.shape[0]));
        quant::dequantize_row(w.dtype, w.data, host.data(), w.shape[0]);
        return upload(Weight(DType::f32, host.data(), w.shape, w.name));
    }

    // Rows [begin, end) of a 2-D weight, sharing its device memory.
    DeviceWeight rows(Index begin, Index end) const {
        if (shape_.rank() != 2 || begin < 0 || end < begin || end > shape_[0])
            fail("DeviceWeight::rows: rows ", begin, "..", end, " of '", name_, "' of shape ", shape_);
        DeviceWeight d = *this;
        d.shape_[0] = end - begin;
        d.data_ = data_ + static_cast<std::size_t>(begin) * row_bytes();
        return d;
    }

    bool empty() const { return data_ == nullptr; }
    DType dtype() const { return dtype_; }
    const Shape& shape() const { return shape_; }
    const std::string& name() const { return name_; }
    const std::byte* data() const { return data_; }  // device memory
    Index cols() const { return shape_[shape_.rank() - 1]; }
    Index out_features() const { return shape_[0]; }
    Index in_features() const { return cols(); }
    std::size_t row_bytes() const { return static_cast<std::size_t>(cols() / static_cast<Index>(block_size(dtype_))) * block_bytes(dtype_); }
    std::size_t bytes() const { return empty() ? 0 : stored_bytes(dtype_, shape_, name_); }

private:
    DType dtype_ = DType::f32;
    Shape shape_;
    std::string name_;
    std::shared_ptr<DeviceBuffer> storage_;
    const std::byte* data_ = nullptr;
};

}  // namespace weft::cuda
