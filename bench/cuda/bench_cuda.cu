// bench_cuda: the CUDA backend's speed next to the device's own ceilings, measured in the same run.
//   copy    cudaMemcpy device-to-device of 2 GiB: GB/s moved (read + write), the decode ceiling
//   gemm    cuBLAS bf16 GEMM 8192³ (the peak the prefill path can reach) beside weft::cuda::linear on
//           prefill shapes (512 and 2048 tokens) with bf16 and Q8_0 weights
//   decode  weft::cuda::Llama tokens/s for the Llama 3.2 1B and 3.1 8B shapes in bf16, Q8_0 and Q4_0
//           (random weights built on the host), GB/s of weights read and % of the copy ceiling
// $WEFT_BENCH_SHAPES (default "1b,8b"), $WEFT_BENCH_DTYPES (default "bf16,q8_0,q4_0"),
// $WEFT_BENCH_TOKENS (decode steps timed, default 256). Exits 0 with a message without a GPU.
#include <weft/cuda.cuh>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace wc = weft::cuda;
using weft::DType;
using weft::Index;
using weft::Shape;

namespace {

std::vector<std::string> split_list(const char* env, const char* fallback) {
    std::vector<std::string> out;
    std::stringstream s(env ? env : fallback);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

// ---- random weights, fast: one xorshift draw gives 8 bytes ----

struct Random {
    std::uint64_t state = 0x9E3779B97F4A7C15ull;
    std::uint64_t next() {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        return state;
    }
};

// rows × cols weights stored as `t`: bf16 values ±(1..2)·2⁻⁷; quantized blocks of random bytes
// with a scale of 0.002 (Q8_0 and Q4_0: values up to ±0.25 and ±0.016).
std::vector<std::byte> random_weights(DType t, Index rows, Index cols, Random& rng) {
    const std::size_t bytes = wc::stored_bytes(t, Shape{rows, cols}, "random");
    std::vector<std::byte> out(bytes);
    std::size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        std::uint64_t r = rng.next();
        if (t == DType::bf16) r = (r & 0x807F807F807F807Full) | 0x3C003C003C003C00ull;
        std::memcpy(out.data() + i, &r, 8);
    }
    for (; i < bytes; ++i) out[i] = static_cast<std::byte>(rng.next());
    if (t == DType::q8_0 || t == DType::q4_0) {
        const std::uint16_t d = weft::float_to_f16_bits(0.002f);
        for (std::size_t b = 0; b < bytes; b += weft::block_bytes(t)) std::memcpy(out.data() + b, &d, 2);
    } else if (t != DType::bf16) {
        throw std::runtime_error(std::string("bench: no random generator for ") + weft::dtype_name(t));
    }
    return out;
}

struct ModelShape {
    std::string name;
    Index vocab, dim, layers, heads, kv_heads, ffn;
    bool tied;
};
ModelShape model_shape(const std::string& name) {
    if (name == "1b") return {"1b", 128256, 2048, 16, 32, 8, 8192, true};     // Llama 3.2 1B
    if (name == "8b") return {"8b", 128256, 4096, 32, 32, 8, 14336, false};  // Llama 3.1 8B
    throw std::runtime_error("bench: unknown model shape '" + name + "' (1b, 8b)");
}

// A random model on the host: every layer views the same host bytes (the device copies are
// separate, so decoding reads every layer's weights from device memory as a real model does).
struct HostModel {
    std::vector<std::vector<std::byte>> buffers;
    wc::LlamaWeights weights;
};
std::unique_ptr<HostModel> random_model(const ModelShape& s, DType t) {
    auto m = std::make_unique<HostModel>();
    Random rng;
    weft::LlamaConfig& c = m->weights.config;
    c.vocab_size = s.vocab, c.dim = s.dim, c.ffn_dim = s.ffn, c.n_layers = s.layers, c.n_heads = s.heads, c.n_kv_heads = s.kv_heads;
    c.head_dim = s.dim / s.heads;
    c.max_positions = 4096;
    c.norm_eps = 1e-5f;
    c.rope.head_dim = static_cast<int>(c.head_dim);
    c.rope.theta = 500000.0;
    c.tied_embeddings = s.tied;
    m->buffers.reserve(16);
    auto make = [&](DType dt, Index rows, Index cols, const char* name) {
        m->buffers.push_back(random_weights(dt, rows, cols, rng));
        return weft::Weight(dt, m->buffers.back().data(), Shape{rows, cols}, name);
    };
    m->buffers.push_back(std::vector<std::byte>(static_cast<std::size_t>(s.dim) * 4));
    float* ones = reinterpret_cast<float*>(m->buffers.back().data());
    for (Index i = 0; i < s.dim; ++i) ones[i] = 1.0f;
    const weft::Weight norm(DType::f32, ones, Shape{s.dim}, "norm");
    const Index HD = c.head_dim;
    wc::LlamaLayerWeights L;
    L.attn_norm = L.ffn_norm = norm;
    L.wq = make(t, s.heads * HD, s.dim, "wq");
    L.wk = make(t, s.kv_heads * HD, s.dim, "wk");
    L.wv = make(t, s.kv_heads * HD, s.dim, "wv");
    L.wo = make(t, s.dim, s.heads * HD, "wo");
    L.gate = make(t, s.ffn, s.dim, "gate");
    L.up = make(t, s.ffn, s.dim, "up");
    L.down = make(t, s.dim, s.ffn, "down");
    m->weights.layers.assign(static_cast<std::size_t>(s.layers), L);
    m->weights.embedding = make(t, s.vocab, s.dim, "embedding");
    m->weights.final_norm = norm;
    m->weights.lm_head = s.tied ? m->weights.embedding : make(t, s.vocab, s.dim, "lm_head");
    return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- ceilings ----

double copy_gbs() {
    const std::size_t bytes = std::size_t(2) << 30;
    wc::DeviceBuffer a(bytes), b(bytes);
    WEFT_CUDA_CHECK(cudaMemset(a.data(), 1, bytes));
    wc::Event start(true), stop(true);
    WEFT_CUDA_CHECK(cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));  // warm-up
    const int reps = 10;
    start.record(nullptr);
    for (int i = 0; i < reps; ++i) WEFT_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, nullptr));
    stop.record(nullptr);
    stop.synchronize();
    return 2.0 * double(bytes) * reps / (stop.elapsed_ms_since(start) * 1e-3) * 1e-9;
}

// Milliseconds per call of f (queued on `stream`), after one warm-up call.
template <class F>
double time_ms(cudaStream_t stream, int reps, F&& f) {
    f();
    wc::Event start(true), stop(true);
    start.record(stream);
    for (int i = 0; i < reps; ++i) f();
    stop.record(stream);
    stop.synchronize();
    return stop.elapsed_ms_since(start) / reps;
}

double cublas_bf16_tflops(wc::Context& ctx) {
    const Index n = 8192;
    wc::DeviceBuffer a(n * n * 2), b(n * n * 2), c(n * n * 4);
    WEFT_CUDA_CHECK(cudaMemset(a.data(), 0, a.size()));
    WEFT_CUDA_CHECK(cudaMemset(b.data(), 0, b.size()));
    const float alpha = 1, beta = 0;
    const double ms = time_ms(ctx.stream(), 10, [&] {
        WEFT_CUBLAS_CHECK(cublasGemmEx(ctx.blas(), CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(n), int(n), &alpha, a.data(), CUDA_R_16BF, int(n),
                                       b.data(), CUDA_R_16BF, int(n), &beta, c.data(), CUDA_R_32F, int(n), CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT));
    });
    return 2.0 * double(n) * n * n / (ms * 1e-3) * 1e-12;
}

double linear_tflops(wc::Context& ctx, DType t, Index M, Index N, Index K) {
    Random rng;
    const std::vector<std::byte> bytes = random_weights(t, N, K, rng);
    const wc::DeviceWeight w = wc::DeviceWeight::upload(weft::Weight(t, bytes.data(), Shape{N, K}, "w"));
    wc::DeviceTensor<float> x(Shape{M, K}), y(Shape{M, N});
    const double ms = time_ms(ctx.stream(), 10, [&] { wc::linear(ctx, x, w, y); });
    return 2.0 * double(M) * N * K / (ms * 1e-3) * 1e-12;
}

}  // namespace

int main() {
    try {
        if (wc::device_count() == 0) {
            std::printf("bench_cuda: no CUDA device: nothing to measure\n");
            return 0;
        }
        cudaDeviceProp prop{};
        WEFT_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        std::printf("device: %s (sm_%d%d), %d SMs, %.1f GiB\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                    double(prop.totalGlobalMem) / (1 << 30));

        const double ceiling = copy_gbs();
        std::printf("copy ceiling: cudaMemcpy device-to-device, 2 GiB: %.0f GB/s moved (read + write)\n", ceiling);

        wc::Context ctx;
        const double peak = cublas_bf16_tflops(ctx);
        std::printf("gemm: cuBLAS bf16 8192x8192x8192 (f32 out): %.0f TFLOP/s  <- prefill peak\n", peak);
        for (Index M : {512, 2048}) {
            for (DType t : {DType::bf16, DType::q8_0}) {
                const double tf = linear_tflops(ctx, t, M, 14336, 4096);
                std::printf("gemm: weft::cuda::linear %s, x [%ld, 4096] . W [14336, 4096]^T: %.0f TFLOP/s (%.0f%% of cuBLAS peak)\n",
                            weft::dtype_name(t), static_cast<long>(M), tf, 100.0 * tf / peak);
            }
        }

        const char* tokens_env = std::getenv("WEFT_BENCH_TOKENS");
        const int steps = tokens_env ? std::atoi(tokens_env) : 256;
        for (const std::string& shape : split_list(std::getenv("WEFT_BENCH_SHAPES"), "1b,8b")) {
            for (const std::string& dtype : split_list(std::getenv("WEFT_BENCH_DTYPES"), "bf16,q8_0,q4_0")) {
                const DType t = dtype == "bf16" ? DType::bf16 : dtype == "q8_0" ? DType::q8_0 : dtype == "q4_0" ? DType::q4_0 : DType::f64;
                if (t == DType::f64) throw std::runtime_error("bench: unknown dtype '" + dtype + "' (bf16, q8_0, q4_0)");
                const auto t0 = std::chrono::steady_clock::now();
                auto host = random_model(model_shape(shape), t);
                wc::Llama model(host->weights, steps + 64);
                host.reset();
                const double load_s = seconds_since(t0);
                const std::vector<std::int32_t> prompt = {1, 15, 99, 7, 3, 300, 42, 8};
                model.forward(prompt, weft::Logits::last);
                std::int32_t token = model.argmax(model.decode(100));  // kernel by kernel (loads the kernels)
                token = model.argmax(model.decode(token));            // captures the CUDA graph
                // Device throughput: graph replays back to back, one wait at the end.
                auto t1 = std::chrono::steady_clock::now();
                for (int i = 0; i < steps / 2; ++i) model.decode(token);
                model.synchronize();
                const double replay_s = seconds_since(t1);
                // Generation: greedy argmax copied back after every token.
                t1 = std::chrono::steady_clock::now();
                for (int i = 0; i < steps / 2; ++i) token = model.argmax(model.decode(token));
                const double greedy_s = seconds_since(t1);
                const double bytes = double(model.weight_bytes_per_token());
                const double tps = (steps / 2) / replay_s, gtps = (steps / 2) / greedy_s;
                std::printf("decode %s %s: %.1f tokens/s, %.0f GB/s of weights (%.0f%% of the copy ceiling); with greedy argmax per "
                            "token %.1f tokens/s (%.0f%%); %.2f GB per token, built and loaded in %.1f s\n",
                            shape.c_str(), dtype.c_str(), tps, tps * bytes * 1e-9, 100.0 * tps * bytes * 1e-9 / ceiling, gtps,
                            100.0 * gtps * bytes * 1e-9 / ceiling, bytes * 1e-9, load_s);
                std::fflush(stdout);
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_cuda: %s\n", e.what());
        return 1;
    }
}
