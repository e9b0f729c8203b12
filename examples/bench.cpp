// weft-bench: prompt-processing and generation speed of a model, in a table like llama-bench's.
//   weft-bench -m PATH [-m PATH2 ...] [-p 128] [-n 64] [-t 2] [-r 3] [--json] [--device cpu|cuda] [--precision exact|fast]
//              [--no-mmap | --mmap-ab]
// ppN: one forward of N prompt tokens from an empty cache; tgN: N single-token decodes from an
// empty cache. Each figure is the mean ± standard deviation of -r runs after one warm-up run.
// Generation reads every weight once per token, so it is also given as GB/s next to the DRAM
// read bandwidth measured right before it (the ceiling), and their ratio. A prompt is given as
// GFLOP/s (GOP/s for int8; a multiply-add counts 2) next to the peak of the unit its matmuls run
// on, measured right before each run (bench/ceilings.hpp): int8 dot products for quantized
// weights, bf16 dot products for f16 / bf16 under --precision fast, else f32 FMA.
// --device cuda runs a Llama 2/3/3.x on the GPU (builds with the CUDA backend); its ceiling is a
// device-to-device copy (GB/s read + written), and each token's logits are copied back to the
// host, as generation does.
// --mmap-ab loads each model twice, mapped and copied (--no-mmap), and alternates the runs of the
// two loads, so both meet the same host bandwidth (on a shared host it can swing within seconds):
// a fair measure of what the mapping's small pages cost.
#include <weft/weft.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>

#include "../bench/ceilings.hpp"
#include "common.hpp"
#include "model.hpp"

namespace {

const char* usage = "usage: weft-bench -m PATH [-m PATH ...] [-p N] [-n N] [-t THREADS] [-r REPEATS] [--json] [--device cpu|cuda] [--precision exact|fast] [--no-mmap | --mmap-ab]";

struct Result {
    std::string model, test, backend;
    double bytes = 0, params = 0;
    int threads = 0, n_prompt = 0, n_gen = 0;
    std::vector<double> samples;  // tokens/s of each run
    double weight_bytes_per_token = 0, ceiling_gbs = 0;
    double prompt_ops = 0, peak_gops = 0;  // operations of one prompt; the peak measured with it
    std::optional<bench::Peak> peak;        // the unit whose peak applies (none: not measured)
    bool mapped = true;

    double mean() const { return std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size()); }
    double sd() const {
        if (samples.size() < 2) return 0;
        double s = 0;
        for (double x : samples) s += (x - mean()) * (x - mean());
        return std::sqrt(s / static_cast<double>(samples.size() - 1));
    }
    double gbs() const { return n_gen > 0 ? mean() * weight_bytes_per_token * 1e-9 : 0; }
    double gops() const { return n_prompt > 0 ? mean() * prompt_ops / n_prompt * 1e-9 : 0; }
};

// Bytes of the model's files: the .gguf file, or the directory's .safetensors files.
double model_file_bytes(const std::string& path) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(path)) return static_cast<double>(fs::file_size(path));
    double total = 0;
    for (const auto& entry : fs::directory_iterator(path))
        if (entry.is_regular_file() && entry.path().extension() == ".safetensors") total += static_cast<double>(entry.file_size());
    return total;
}

double parameter_count(const weft::LlamaConfig& c) {
    const double d = double(c.dim), q = double(c.n_heads * c.head_dim), kv = double(c.n_kv_heads * c.head_dim);
    const double layer = d * q * 2 + d * kv * 2 + 3 * d * double(c.ffn_dim) + 2 * d;
    return double(c.vocab_size) * d * (c.tied_embeddings ? 1 : 2) + double(c.n_layers) * layer + d;
}

// Operations of one prompt of T tokens (a multiply-add counts 2): each token's projections in
// every layer, attention's scores and weighted sums over the causal prefix, and the output layer
// for the last token only (Logits::last).
double prompt_ops(const weft::LlamaConfig& c, int T) {
    const double d = double(c.dim), q = double(c.n_heads * c.head_dim), kv = double(c.n_kv_heads * c.head_dim);
    const double per_token = 2 * (2 * d * q + 2 * d * kv + 3 * d * double(c.ffn_dim));
    const double attention = 4 * q * double(T) * double(T + 1) / 2;  // per layer: QKᵀ and PV over t + 1 keys
    return double(c.n_layers) * (double(T) * per_token + attention) + 2 * d * double(c.vocab_size);
}

std::vector<std::int32_t> prompt_tokens(int n, weft::Index vocab) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((7919LL * (i + 1)) % vocab);
    return ids;
}

template <class Model>
double time_prompt(Model& model, const std::vector<std::int32_t>& ids) {
    model.reset();
    const auto start = std::chrono::steady_clock::now();
    model.forward(ids, weft::Logits::last);
    return static_cast<double>(ids.size()) / examples::seconds_since(start);
}

template <class Model>
double time_generation(Model& model, int n) {
    model.reset();
    std::int32_t token = 1;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        const auto logits = model.decode(token);
        token = static_cast<std::int32_t>((token * 31 + 7 + static_cast<int>(logits(0) > 0)) % model.config().vocab_size);
    }
    return n / examples::seconds_since(start);
}

// The ceiling of generation: DRAM read bandwidth (CPU) or a device-to-device copy (CUDA).
double ceiling_gbs(weft::Llama&) { return bench::read_bandwidth_gbs(2); }
#if WEFT_EXAMPLES_CUDA
double ceiling_gbs(examples::CudaLlama& model) { return model.copy_bandwidth_gbs(); }
#endif

// The peak that bounds a prompt of n tokens: that of the unit nn::Linear runs it on (none for
// AMX tiles, which bench/ceilings.hpp does not measure).
std::optional<bench::Peak> prompt_peak(const weft::Llama& model, int n) {
    switch (model.layers().front().attention.wq().unit(n)) {
        case weft::nn::MatmulUnit::int8_dot: return bench::Peak::int8_dot;
        case weft::nn::MatmulUnit::bf16_dot: return bench::Peak::bf16_dot;
        case weft::nn::MatmulUnit::f32_fma: return bench::Peak::f32_fma;
        default: return std::nullopt;
    }
}
#if WEFT_EXAMPLES_CUDA
std::optional<bench::Peak> prompt_peak(const examples::CudaLlama&, int) { return std::nullopt; }
#endif

std::string human_bytes(double b) {
    char s[32];
    std::snprintf(s, sizeof s, b >= double(1 << 30) ? "%.2f GiB" : "%.1f MiB", b >= double(1 << 30) ? b / double(1 << 30) : b / double(1 << 20));
    return s;
}

void print_json(const Result& r) {
    std::printf("{\"model\": \"%s\", \"size_bytes\": %.0f, \"n_params\": %.0f, \"backend\": \"%s\", \"threads\": %d, \"test\": \"%s\", "
                "\"n_prompt\": %d, \"n_gen\": %d, \"avg_ts\": %.4f, \"stddev_ts\": %.4f, \"samples_ts\": [",
                r.model.c_str(), r.bytes, r.params, r.backend.c_str(), r.threads, r.test.c_str(), r.n_prompt, r.n_gen, r.mean(), r.sd());
    for (std::size_t i = 0; i < r.samples.size(); ++i) std::printf("%s%.4f", i ? ", " : "", r.samples[i]);
    std::printf("], \"weight_bytes_per_token\": %.0f, \"gen_gbs\": %.3f, \"read_ceiling_gbs\": %.3f, \"prompt_gops\": %.3f, "
                "\"peak_gops\": %.3f, \"peak\": \"%s\", \"precision\": \"%s\", \"mmap\": %s}\n",
                r.weight_bytes_per_token, r.gbs(), r.ceiling_gbs, r.gops(), r.peak_gops, r.peak ? bench::peak_name(*r.peak) : "",
                weft::matmul_precision() == weft::MatmulPrecision::fast ? "fast" : "exact", r.mapped ? "true" : "false");
    std::fflush(stdout);
}

void print_row(const Result& r) {
    char ceiling[96] = "";
    if (r.n_gen > 0)
        std::snprintf(ceiling, sizeof ceiling, "%.1f / %.1f GB/s (%.0f%%)", r.gbs(), r.ceiling_gbs, 100 * r.gbs() / r.ceiling_gbs);
    else if (r.peak_gops > 0)
        std::snprintf(ceiling, sizeof ceiling, "%.0f / %.0f %s (%.0f%%)", r.gops(), r.peak_gops,
                      r.peak == bench::Peak::int8_dot ? "GOP/s" : "GFLOP/s", 100 * r.gops() / r.peak_gops);
    std::printf("| %-28s | %10s | %7.2f B | %7s | %7d | %6s | %14.2f ± %-6.2f | %-28s |\n", r.model.c_str(), human_bytes(r.bytes).c_str(),
                r.params * 1e-9, r.backend.c_str(), r.threads, r.test.c_str(), r.mean(), r.sd(), ceiling);
    std::fflush(stdout);
}

// ppN and tgN of loaded models (weft::Llama or CudaLlama; several: loads of one file), printed as
// rows or JSON lines. With several, their runs alternate: run i of each before run i + 1 of any.
template <class Model>
void bench_models(const std::vector<Model*>& models, const std::vector<bool>& mapped, const char* backend, const std::string& path,
                  int n_prompt, int n_gen, int repeats, int threads, bool json) {
    std::vector<Result> pp, tg;
    for (std::size_t k = 0; k < models.size(); ++k) {
        Result base;
        base.model = std::filesystem::path(path).filename().string();
        if (base.model.empty()) base.model = std::filesystem::path(path).parent_path().filename().string();
        if (models.size() > 1) base.model += mapped[k] ? " (mapped)" : " (copied)";
        base.bytes = model_file_bytes(path);
        base.params = parameter_count(models[k]->config());
        base.backend = backend;
        base.threads = threads;
        base.weight_bytes_per_token = static_cast<double>(models[k]->weight_bytes_per_token());
        base.mapped = mapped[k];
        pp.push_back(base);
        pp.back().test = "pp" + std::to_string(n_prompt);
        pp.back().n_prompt = n_prompt;
        pp.back().prompt_ops = prompt_ops(models[k]->config(), n_prompt);
        if (const auto peak = prompt_peak(*models[k], n_prompt); peak && bench::peak_available(*peak)) pp.back().peak = peak;
        tg.push_back(base);
        tg.back().test = "tg" + std::to_string(n_gen);
        tg.back().n_gen = n_gen;
    }
    if (n_prompt > 0) {
        const auto ids = prompt_tokens(n_prompt, models[0]->config().vocab_size);
        for (Model* m : models) time_prompt(*m, ids);  // warm-up
        for (int i = 0; i < repeats; ++i)
            for (std::size_t k = 0; k < models.size(); ++k) {
                if (pp[k].peak) pp[k].peak_gops += bench::compute_peak_gops(*pp[k].peak) / repeats;
                pp[k].samples.push_back(time_prompt(*models[k], ids));
            }
        for (const Result& r : pp) json ? print_json(r) : print_row(r);
    }
    if (n_gen > 0) {
        for (Model* m : models) time_generation(*m, n_gen);  // warm-up
        for (int i = 0; i < repeats; ++i)
            for (std::size_t k = 0; k < models.size(); ++k) {
                tg[k].ceiling_gbs += ceiling_gbs(*models[k]) / repeats;
                tg[k].samples.push_back(time_generation(*models[k], n_gen));
            }
        for (const Result& r : tg) json ? print_json(r) : print_row(r);
    }
}

int run(int argc, char** argv) {
    std::vector<std::string> models;
    int n_prompt = 128, n_gen = 64, repeats = 3, threads = weft::num_threads();
    bool json = false, mmap_ab = false;
    examples::Device device = examples::Device::cpu;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-m" || a == "--model") models.push_back(examples::flag_value(argc, argv, i));
        else if (a == "-p" || a == "--n-prompt") n_prompt = examples::parse_number<int>(a, examples::flag_value(argc, argv, i));
        else if (a == "-n" || a == "--n-gen") n_gen = examples::parse_number<int>(a, examples::flag_value(argc, argv, i));
        else if (a == "-t" || a == "--threads") threads = examples::parse_number<int>(a, examples::flag_value(argc, argv, i));
        else if (a == "-r" || a == "--repetitions") repeats = examples::parse_number<int>(a, examples::flag_value(argc, argv, i));
        else if (a == "--json") json = true;
        else if (a == "--device" || a == "-dev") device = examples::parse_device(a, examples::flag_value(argc, argv, i));
        else if (a == "--precision") examples::set_precision(a, examples::flag_value(argc, argv, i));
        else if (a == "--no-mmap") weft::set_file_load(weft::FileLoad::copy);
        else if (a == "--mmap-ab") mmap_ab = true;
        else if (a == "-h" || a == "--help") {
            std::puts(usage);
            return 0;
        } else throw examples::UsageError("unknown argument '" + a + "'");
    }
    if (models.empty()) throw examples::UsageError("no model: pass -m PATH");
    if (n_prompt < 0 || n_gen < 0) throw examples::UsageError("-p and -n must be >= 0");
    if (n_prompt == 0 && n_gen == 0) throw examples::UsageError("nothing to measure: -p and -n are both 0");
    if (repeats < 1) throw examples::UsageError("-r must be >= 1");
    if (threads < 1) throw examples::UsageError("-t must be >= 1");
    if (mmap_ab && weft::file_load() == weft::FileLoad::copy) throw examples::UsageError("--mmap-ab loads both ways: drop --no-mmap");
    if (mmap_ab && device == examples::Device::cuda) throw examples::UsageError("--mmap-ab is for the CPU");
    weft::set_num_threads(threads);
    examples::require_device(device);

    if (!json) {
        std::printf("| %-28s | %10s | %9s | %7s | %7s | %6s | %23s | %-28s |\n", "model", "size", "params", "backend", "threads", "test",
                    "t/s", "measured / ceiling");
        std::printf("| %s | %s: | %s: | %s | %s: | %s: | %s: | %s |\n", std::string(28, '-').c_str(), std::string(9, '-').c_str(),
                    std::string(8, '-').c_str(), std::string(7, '-').c_str(), std::string(6, '-').c_str(), std::string(5, '-').c_str(),
                    std::string(22, '-').c_str(), std::string(28, '-').c_str());
    }
    for (const std::string& path : models) {
        const weft::Index context = std::max(n_prompt, n_gen) + 1;
        if (device == examples::Device::cuda) {
#if WEFT_EXAMPLES_CUDA
            examples::CudaLlama model = examples::CudaLlama::load(path, context);
            bench_models<examples::CudaLlama>({&model}, {weft::file_load() == weft::FileLoad::map}, "cuda", path, n_prompt, n_gen,
                                              repeats, threads, json);
#endif
        } else if (mmap_ab) {
            weft::Llama mapped = weft::Llama::from_pretrained(path, context);
            weft::set_file_load(weft::FileLoad::copy);
            weft::Llama copied = weft::Llama::from_pretrained(path, context);
            weft::set_file_load(weft::FileLoad::map);
            bench_models<weft::Llama>({&mapped, &copied}, {true, false}, "cpu", path, n_prompt, n_gen, repeats, threads, json);
        } else {
            weft::Llama model = weft::Llama::from_pretrained(path, context);
            bench_models<weft::Llama>({&model}, {weft::file_load() == weft::FileLoad::map}, "cpu", path, n_prompt, n_gen, repeats,
                                      threads, json);
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return examples::guarded_main("weft-bench", usage, [&] { return run(argc, argv); });
}
