// weft-generate-cuda: weft-generate on a CUDA device (weft::cuda::Llama): the same flags and output.
//   weft-generate-cuda -m PATH --tokens 1,2,3 [-n N] [--temp F] [--seed S] [--ctx N] [--print-ids] [--no-graphs]
// PATH is a Hugging Face model directory (config.json + safetensors). Weights are copied to the GPU
// in their stored dtype; decoding replays a CUDA graph. Timings go to stderr.
#include <weft/cuda.cuh>

#include <cmath>
#include <cstdio>
#include <random>

#include "../common.hpp"

namespace {

const char* usage =
    "usage: weft-generate-cuda -m PATH --tokens 1,2,3 [-n N] [--temp F] [--seed S] [--ctx N] [--print-ids] [--no-graphs]";

// Greedy at temperature 0 (argmax on the device); otherwise a draw from softmax(logits / temperature).
std::int32_t pick(weft::cuda::Llama& model, weft::cuda::DeviceTensorView<const float> logits, float temperature, std::mt19937_64& rng) {
    if (temperature <= 0) return model.argmax(logits);
    const weft::Tensor<float> host = weft::cuda::to_host(logits);
    const weft::Tensor<float> p = weft::softmax(host.reshape({1, host.numel()}) * (1.0f / temperature));
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    double cumulative = 0;
    for (weft::Index i = 0; i < p.numel(); ++i) {
        cumulative += p(0, i);
        if (u < cumulative) return static_cast<std::int32_t>(i);
    }
    return static_cast<std::int32_t>(p.numel() - 1);
}

int run(int argc, char** argv) {
    std::string model_path, ids_text;
    long n_generate = 32, context = 0;
    float temperature = 0.8f;
    std::uint64_t seed = 42;
    bool print_ids = false, graphs = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-m" || a == "--model") model_path = examples::flag_value(argc, argv, i);
        else if (a == "--tokens") ids_text = examples::flag_value(argc, argv, i);
        else if (a == "-n" || a == "--n-predict") n_generate = examples::parse_number<long>(a, examples::flag_value(argc, argv, i));
        else if (a == "--temp") temperature = examples::parse_number<float>(a, examples::flag_value(argc, argv, i));
        else if (a == "--seed") seed = examples::parse_number<std::uint64_t>(a, examples::flag_value(argc, argv, i));
        else if (a == "--ctx" || a == "-c") context = examples::parse_number<long>(a, examples::flag_value(argc, argv, i));
        else if (a == "--print-ids") print_ids = true;
        else if (a == "--no-graphs") graphs = false;
        else if (a == "-h" || a == "--help") {
            std::puts(usage);
            return 0;
        } else throw examples::UsageError("unknown argument '" + a + "'");
    }
    if (model_path.empty()) throw examples::UsageError("no model: pass -m PATH");
    if (n_generate < 0) throw examples::UsageError("-n must be >= 0, got " + std::to_string(n_generate));
    if (context < 0) throw examples::UsageError("--ctx must be >= 0");
    const std::vector<std::int32_t> prompt_ids = examples::parse_ids(ids_text, "--tokens");
    if (prompt_ids.empty()) throw examples::UsageError("no prompt: pass --tokens 1,2,3");
    if (weft::cuda::device_count() == 0) throw std::runtime_error("no CUDA device (use weft-generate for the CPU)");

    const auto t_load = std::chrono::steady_clock::now();
    weft::cuda::Llama model = weft::cuda::Llama::from_pretrained(model_path, context);
    model.set_cuda_graphs(graphs);
    const double load_s = examples::seconds_since(t_load);
    if (static_cast<long>(prompt_ids.size()) + n_generate > model.context_size())
        throw examples::UsageError("prompt (" + std::to_string(prompt_ids.size()) + " tokens) + -n " + std::to_string(n_generate) +
                                   " exceed the context of " + std::to_string(model.context_size()) + " tokens (raise --ctx)");

    std::mt19937_64 rng(seed);
    const auto t_prompt = std::chrono::steady_clock::now();
    std::int32_t next = pick(model, model.forward(prompt_ids, weft::Logits::last).select(0, 0), temperature, rng);
    const double prompt_s = examples::seconds_since(t_prompt);

    std::vector<std::int32_t> generated;
    const auto t_gen = std::chrono::steady_clock::now();
    for (long i = 0; i < n_generate; ++i) {
        generated.push_back(next);
        if (i + 1 < n_generate) next = pick(model, model.decode(next), temperature, rng);
    }
    model.synchronize();
    const double gen_s = examples::seconds_since(t_gen);

    if (print_ids) {
        for (std::size_t i = 0; i < generated.size(); ++i) std::printf("%s%d", i ? "," : "", generated[i]);
        std::printf("\n");
    }
    const double decode_steps = n_generate > 1 ? double(n_generate - 1) : 0.0;
    std::fprintf(stderr, "load: %.1f ms | prompt: %zu tokens, %.1f tokens/s | generation: %ld tokens, %.2f tokens/s (%.1f GB/s of weights) | CUDA graphs %s\n",
                 load_s * 1e3, prompt_ids.size(), prompt_ids.size() / prompt_s, n_generate, decode_steps > 0 ? decode_steps / gen_s : 0.0,
                 decode_steps > 0 ? decode_steps * double(model.weight_bytes_per_token()) / gen_s * 1e-9 : 0.0, graphs ? "on" : "off");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return examples::guarded_main("weft-generate-cuda", usage, [&] { return run(argc, argv); });
}
