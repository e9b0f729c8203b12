// examples/cuda/device.hpp — `--device cpu|cuda` for weft-generate, weft-perplexity and weft-bench.
// The programs are C++ (g++, -march=native). When weft is built with its CUDA backend they also link
// examples/cuda/device_programs.cu (nvcc) and are compiled with WEFT_EXAMPLES_CUDA=1; `--device cuda`
// then runs the model as a CudaLlama: a weft::cuda::Llama behind the interface the programs use with
// weft::Llama (config, context_size, position, reset, forward, decode, weight_bytes_per_token), its
// logits copied back to host memory. examples/model.hpp picks the device (with_device_model). No CUDA
// header here, and little else: device_programs.cu includes it. Not part of the library.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include <weft/models/llama.hpp>

#include "../common.hpp"

#ifndef WEFT_EXAMPLES_CUDA
#define WEFT_EXAMPLES_CUDA 0
#endif

namespace examples {

enum class Device { cpu, cuda };

// The value of --device (llama.cpp's flag): cpu or cuda.
inline Device parse_device(const std::string& flag, const std::string& value) {
    if (value == "cpu") return Device::cpu;
    if (value == "cuda") return Device::cuda;
    throw UsageError(flag + " expects cpu or cuda, got '" + value + "'");
}

// A Llama (GGUF file or Hugging Face directory) on CUDA device 0. Defined in
// examples/cuda/device_programs.cu, so only programs built with WEFT_EXAMPLES_CUDA may use it.
class CudaLlama {
public:
    // Throws std::runtime_error with one line when the machine has no usable CUDA device.
    static void require_device();
    static CudaLlama load(const std::string& path, weft::Index context);

    CudaLlama(CudaLlama&&) noexcept;
    CudaLlama& operator=(CudaLlama&&) noexcept;
    ~CudaLlama();

    const weft::LlamaConfig& config() const;
    weft::Index context_size() const;
    weft::Index position() const;
    void reset();
    void truncate(weft::Index keep);
    // As weft::Llama::forward / decode; the logits are a host copy, valid until the next call.
    weft::TensorView<const float> forward(std::span<const std::int32_t> tokens, weft::Logits which = weft::Logits::all);
    weft::TensorView<const float> decode(std::int32_t token);
    std::uint64_t weight_bytes_per_token() const;
    // "NVIDIA H200 (sm_90)".
    std::string device_name() const;
    // GB/s moved (read + write) by a device-to-device copy: the ceiling of decoding.
    double copy_bandwidth_gbs();

private:
    struct Impl;
    explicit CudaLlama(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace examples
