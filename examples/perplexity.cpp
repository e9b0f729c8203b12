// weft-perplexity: perplexity of a model on a token sequence, over one window of at most --ctx
// tokens: exp of the mean negative log-likelihood of each token given the ones before it.
//   weft-perplexity -m PATH (--tokens-file F | -f TEXT) [--ctx N] [-t N] [--save-logits OUT.npy] [--device cpu|cuda]
// -f reads a text file and tokenizes it with the model's tokenizer (BOS first when the model adds one).
// --device cuda runs a Llama 2/3/3.x on the GPU (builds with the CUDA backend).
#include <weft/weft.hpp>

#include <cmath>
#include <cstdio>

#include "common.hpp"
#include "model.hpp"

namespace {

const char* usage = "usage: weft-perplexity -m PATH (--tokens-file F | -f TEXT) [--ctx N] [-t N] [--save-logits OUT.npy] [--device cpu|cuda] [--precision exact|fast] [--no-mmap]";

int run(int argc, char** argv) {
    std::string model_path, tokens_file, text_file, save_path;
    long context = 0;
    examples::Device device = examples::Device::cpu;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-m" || a == "--model") model_path = examples::flag_value(argc, argv, i);
        else if (a == "--tokens-file") tokens_file = examples::flag_value(argc, argv, i);
        else if (a == "-f" || a == "--file") text_file = examples::flag_value(argc, argv, i);
        else if (a == "--ctx" || a == "-c") context = examples::parse_number<long>(a, examples::flag_value(argc, argv, i));
        else if (a == "-t" || a == "--threads") weft::set_num_threads(examples::parse_number<int>(a, examples::flag_value(argc, argv, i)));
        else if (a == "--save-logits") save_path = examples::flag_value(argc, argv, i);
        else if (a == "--device" || a == "-dev") device = examples::parse_device(a, examples::flag_value(argc, argv, i));
        else if (a == "--precision") examples::set_precision(a, examples::flag_value(argc, argv, i));
        else if (a == "--no-mmap") weft::set_file_load(weft::FileLoad::copy);
        else if (a == "-h" || a == "--help") {
            std::puts(usage);
            return 0;
        } else throw examples::UsageError("unknown argument '" + a + "'");
    }
    if (model_path.empty()) throw examples::UsageError("no model: pass -m PATH");
    if (context < 0) throw examples::UsageError("--ctx must be >= 0");
    if (tokens_file.empty() == text_file.empty()) throw examples::UsageError("pass one input: --tokens-file F (ids) or -f TEXT");
    examples::require_device(device);
    std::vector<std::int32_t> ids;
    if (!tokens_file.empty()) {
        ids = examples::parse_ids(examples::read_file(tokens_file), tokens_file);
    } else {
        const std::string text = examples::read_file(text_file);
        const auto tokenizer = examples::model_tokenizer(model_path);
        if (!tokenizer) throw examples::UsageError("'" + model_path + "' has no tokenizer; pass --tokens-file with ids");
        ids = tokenizer->encode(text);
    }
    if (ids.size() < 2) throw examples::UsageError("perplexity needs at least 2 tokens, got " + std::to_string(ids.size()));

    return examples::with_device_model(device, model_path, context, [&](auto& model) {
        if (static_cast<weft::Index>(ids.size()) > model.context_size()) ids.resize(static_cast<std::size_t>(model.context_size()));
        if (ids.size() < 2)
            throw examples::UsageError("a context of " + std::to_string(model.context_size()) + " token holds too few tokens to score");
        const auto start = std::chrono::steady_clock::now();
        const weft::TensorView<const float> logits = model.forward(ids, weft::Logits::all);  // [T, vocab]
        const double seconds = examples::seconds_since(start);
        const weft::Tensor<float> log_probs = weft::log_softmax(logits.slice(0, 0, logits.shape()[0] - 1));
        double nll = 0;
        for (std::size_t t = 0; t + 1 < ids.size(); ++t) nll -= log_probs(static_cast<weft::Index>(t), ids[t + 1]);
        const double mean_nll = nll / static_cast<double>(ids.size() - 1);
        std::printf("perplexity: %.6f\n", std::exp(mean_nll));
        std::fprintf(stderr, "%zu tokens in %.2f s (%.1f tokens/s), peak RSS %.0f MiB\n", ids.size(), seconds, ids.size() / seconds,
                     examples::peak_rss_mib());
        if (!save_path.empty()) weft::npy::save(save_path, weft::Tensor<float>(logits));
        return 0;
    });
}

}  // namespace

int main(int argc, char** argv) {
    return examples::guarded_main("weft-perplexity", usage, [&] { return run(argc, argv); });
}
