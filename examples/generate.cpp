// weft-generate: run a Llama model on a prompt and generate tokens.
//   weft-generate -m PATH (-p TEXT | --tokens 1,2,3) [-n N] [--temp F] [--seed S] [-t THREADS]
//                 [--ctx N] [--print-ids]
// PATH is a Hugging Face model directory (config.json + safetensors). Timings go to stderr.
#include <weft/weft.hpp>

#include <cmath>
#include <cstdio>
#include <random>

#include "common.hpp"

namespace {

const char* usage =
    "usage: weft-generate -m PATH (-p TEXT | --tokens 1,2,3) [-n N] [--temp F] [--seed S] [-t THREADS] [--ctx N] [--print-ids]";

// Greedy at temperature 0; otherwise a draw from softmax(logits / temperature).
std::int32_t pick(weft::TensorView<const float> logits, float temperature, std::mt19937_64& rng) {
    if (temperature <= 0) return weft::row_argmax(logits)(0, 0);
    const weft::Tensor<float> p = weft::softmax(logits * (1.0f / temperature));
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    double cumulative = 0;
    for (weft::Index i = 0; i < p.numel(); ++i) {
        cumulative += p(0, i);
        if (u < cumulative) return static_cast<std::int32_t>(i);
    }
    return static_cast<std::int32_t>(p.numel() - 1);
}

int run(int argc, char** argv) {
    std::string model_path, prompt, ids_text;
    long n_generate = 32, context = 0;
    float temperature = 0.8f;
    std::uint64_t seed = 42;
    bool print_ids = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-m" || a == "--model") model_path = examples::flag_value(argc, argv, i);
        else if (a == "-p" || a == "--prompt") prompt = examples::flag_value(argc, argv, i);
        else if (a == "--tokens") ids_text = examples::flag_value(argc, argv, i);
        else if (a == "-n" || a == "--n-predict") n_generate = examples::parse_number<long>(a, examples::flag_value(argc, argv, i));
        else if (a == "--temp") temperature = examples::parse_number<float>(a, examples::flag_value(argc, argv, i));
        else if (a == "--seed") seed = examples::parse_number<std::uint64_t>(a, examples::flag_value(argc, argv, i));
        else if (a == "-t" || a == "--threads") weft::set_num_threads(examples::parse_number<int>(a, examples::flag_value(argc, argv, i)));
        else if (a == "--ctx" || a == "-c") context = examples::parse_number<long>(a, examples::flag_value(argc, argv, i));
        else if (a == "--print-ids") print_ids = true;
        else if (a == "-h" || a == "--help") {
            std::puts(usage);
            return 0;
        } else throw examples::UsageError("unknown argument '" + a + "'");
    }
    if (model_path.empty()) throw examples::UsageError("no model: pass -m PATH");
    if (n_generate < 0) throw examples::UsageError("-n must be >= 0, got " + std::to_string(n_generate));
    if (context < 0) throw examples::UsageError("--ctx must be >= 0");
    if (!prompt.empty()) throw examples::UsageError("text prompts need a tokenizer, which weft does not support yet for this model; pass --tokens 1,2,3");
    const std::vector<std::int32_t> prompt_ids = examples::parse_ids(ids_text, "--tokens");
    if (prompt_ids.empty()) throw examples::UsageError("no prompt: pass --tokens 1,2,3");

    const auto t_load = std::chrono::steady_clock::now();
    weft::Llama model = weft::Llama::from_pretrained(model_path, context);
    const double load_s = examples::seconds_since(t_load);
    if (static_cast<long>(prompt_ids.size()) + n_generate > model.context_size())
        throw examples::UsageError("prompt (" + std::to_string(prompt_ids.size()) + " tokens) + -n " + std::to_string(n_generate) +
                                   " exceed the context of " + std::to_string(model.context_size()) + " tokens (raise --ctx)");

    std::mt19937_64 rng(seed);
    const auto t_prompt = std::chrono::steady_clock::now();
    std::int32_t next = pick(model.forward(prompt_ids, weft::Logits::last), temperature, rng);
    const double prompt_s = examples::seconds_since(t_prompt);

    std::vector<std::int32_t> generated;
    const auto t_gen = std::chrono::steady_clock::now();
    for (long i = 0; i < n_generate; ++i) {
        generated.push_back(next);
        if (i + 1 < n_generate) next = pick(model.decode(next).unsqueeze(0), temperature, rng);
    }
    const double gen_s = examples::seconds_since(t_gen);

    if (print_ids) {
        for (std::size_t i = 0; i < generated.size(); ++i) std::printf("%s%d", i ? "," : "", generated[i]);
        std::printf("\n");
    }
    const double decode_steps = n_generate > 1 ? double(n_generate - 1) : 0.0;
    std::fprintf(stderr, "load: %.1f ms | prompt: %zu tokens, %.1f tokens/s | generation: %ld tokens, %.2f tokens/s (%.1f GB/s of weights) | peak RSS %.0f MiB\n",
                 load_s * 1e3, prompt_ids.size(), prompt_ids.size() / prompt_s, n_generate,
                 decode_steps > 0 ? decode_steps / gen_s : 0.0,
                 decode_steps > 0 ? decode_steps * double(model.weight_bytes_per_token()) / gen_s * 1e-9 : 0.0, examples::peak_rss_mib());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return examples::guarded_main("weft-generate", usage, [&] { return run(argc, argv); });
}
