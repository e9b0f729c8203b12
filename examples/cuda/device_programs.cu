// examples/cuda/device_programs.cu — CudaLlama (examples/cuda/device.hpp): weft::cuda::Llama for
// weft-generate, weft-perplexity and weft-bench --device cuda. Linked into those programs when weft
// is built with its CUDA backend; the programs themselves stay C++.
#include <weft/cuda/llama.cuh>  // not the umbrella: the programs' C++ side has the rest

#include <algorithm>
#include <cstring>
#include <string>

#include "device.hpp"

namespace examples {

namespace wc = weft::cuda;

struct CudaLlama::Impl {
    wc::Llama model;
    wc::PinnedBuffer logits;  // host copy of the last logits
    std::string device;

    // Copies device logits (contiguous) into `logits` and waits for them.
    weft::TensorView<const float> to_host(wc::DeviceTensorView<const float> d) {
        const std::size_t bytes = static_cast<std::size_t>(d.numel()) * sizeof(float);
        if (logits.size() < bytes) logits = wc::PinnedBuffer(bytes + bytes / 4);
        WEFT_CUDA_CHECK(cudaMemcpyAsync(logits.data(), d.data(), bytes, cudaMemcpyDeviceToHost, model.context().stream()));
        model.synchronize();
        return weft::TensorView<const float>(logits.as<const float>(), d.shape());
    }
};

void CudaLlama::require_device() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        throw std::runtime_error(std::string("no CUDA device (") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e) +
                                 "); use --device cpu");
    }
    if (n == 0) throw std::runtime_error("no CUDA device; use --device cpu");
}

CudaLlama CudaLlama::load(const std::string& path, weft::Index context) {
    require_device();
    cudaDeviceProp prop{};
    WEFT_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    auto impl = std::unique_ptr<Impl>(new Impl{wc::Llama::from_pretrained(path, context), {}, {}});
    impl->device = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
    return CudaLlama(std::move(impl));
}

CudaLlama::CudaLlama(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaLlama::CudaLlama(CudaLlama&&) noexcept = default;
CudaLlama& CudaLlama::operator=(CudaLlama&&) noexcept = default;
CudaLlama::~CudaLlama() = default;

const weft::LlamaConfig& CudaLlama::config() const { return impl_->model.config(); }
weft::Index CudaLlama::context_size() const { return impl_->model.context_size(); }
weft::Index CudaLlama::position() const { return impl_->model.position(); }
void CudaLlama::reset() { impl_->model.reset(); }
void CudaLlama::truncate(weft::Index keep) { impl_->model.truncate(keep); }
std::uint64_t CudaLlama::weight_bytes_per_token() const { return impl_->model.weight_bytes_per_token(); }
std::string CudaLlama::device_name() const { return impl_->device; }

weft::TensorView<const float> CudaLlama::forward(std::span<const std::int32_t> tokens, weft::Logits which) {
    return impl_->to_host(impl_->model.forward(tokens, which));
}

weft::TensorView<const float> CudaLlama::decode(std::int32_t token) { return impl_->to_host(impl_->model.decode(token)); }

double CudaLlama::copy_bandwidth_gbs() {
    std::size_t free = 0, total = 0;
    WEFT_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    const std::size_t bytes = std::min<std::size_t>(std::size_t(1) << 30, free / 4) / 256 * 256;
    if (bytes == 0) return 0;
    wc::DeviceBuffer a(bytes), b(bytes);
    const cudaStream_t s = impl_->model.context().stream();
    WEFT_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, s));  // warm-up
    wc::Event start(true), stop(true);
    const int reps = 5;
    start.record(s);
    for (int i = 0; i < reps; ++i) WEFT_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, s));
    stop.record(s);
    stop.synchronize();
    return 2.0 * double(bytes) * reps / (double(stop.elapsed_ms_since(start)) * 1e-3) * 1e-9;
}

}  // namespace examples
