// weft-generate: run a Llama model on a prompt and stream the generated text.
//   weft-generate [-m PATH] (-p TEXT | -f FILE | --tokens 1,2,3 | --chat) [-n N] [sampling flags]
//                 [--seed S] [-t THREADS] [--ctx N] [--print-ids] [--no-bos] [--special] [--device cpu|cuda]
// PATH is a GGUF file or a Hugging Face directory (Llama 2/3/3.x or Llama 4); without -m, the demo
// model shipped in models/demo/. Text goes to stdout as it is generated; timings to stderr.
// --device cuda runs a Llama 2/3/3.x on the GPU (builds with the CUDA backend; examples/cuda/device.hpp).
#include <weft/weft.hpp>
#include <weft/sample/generate.hpp>
#include <weft/sample/sampler.hpp>
#include <weft/text/chat.hpp>

#include <cstdio>
#include <iostream>

#include "common.hpp"
#include "model.hpp"

#ifndef WEFT_DEMO_MODEL
#define WEFT_DEMO_MODEL "models/demo/kjv-llama.gguf"
#endif

namespace {

const char* usage =
    "usage: weft-generate [-m PATH] (-p TEXT | -f FILE | --tokens 1,2,3 | --chat) [-n N] [--temp F] [--top-k N] [--top-p F]\n"
    "                     [--min-p F] [--repeat-penalty F] [--repeat-last-n N] [--frequency-penalty F] [--presence-penalty F]\n"
    "                     [--seed S] [-t THREADS] [--ctx N] [--print-ids] [--no-bos] [--special]\n"
    "                     [--chat-template llama2|llama3|llama4] [--system TEXT] [--device cpu|cuda] [--precision exact|fast]\n"
    "                     [--no-mmap]\n"
    "  without -m: the demo model " WEFT_DEMO_MODEL;

struct Options {
    std::string model_path = WEFT_DEMO_MODEL, prompt, prompt_file, ids_text, chat_template, system;
    long n_generate = 64, context = 0;
    bool print_ids = false, no_bos = false, special = false, chat = false;
    examples::Device device = examples::Device::cpu;
    weft::sample::SamplerOptions sampling;
};

Options parse(int argc, char** argv) {
    using examples::flag_value;
    using examples::parse_number;
    Options o;
    o.sampling.seed = 42;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto number = [&]<class T>(T) { return parse_number<T>(a, flag_value(argc, argv, i)); };
        if (a == "-m" || a == "--model") o.model_path = flag_value(argc, argv, i);
        else if (a == "-p" || a == "--prompt") o.prompt = flag_value(argc, argv, i);
        else if (a == "-f" || a == "--file") o.prompt_file = flag_value(argc, argv, i);
        else if (a == "--tokens") o.ids_text = flag_value(argc, argv, i);
        else if (a == "--chat") o.chat = true;
        else if (a == "--chat-template") o.chat_template = flag_value(argc, argv, i);
        else if (a == "--system") o.system = flag_value(argc, argv, i);
        else if (a == "-n" || a == "--n-predict") o.n_generate = number(0L);
        else if (a == "--temp") o.sampling.temperature = number(0.0f);
        else if (a == "--top-k") o.sampling.top_k = number(0);
        else if (a == "--top-p") o.sampling.top_p = number(0.0f);
        else if (a == "--min-p") o.sampling.min_p = number(0.0f);
        else if (a == "--repeat-penalty") o.sampling.repeat_penalty = number(0.0f);
        else if (a == "--repeat-last-n") o.sampling.penalty_last_n = number(0);
        else if (a == "--frequency-penalty") o.sampling.frequency_penalty = number(0.0f);
        else if (a == "--presence-penalty") o.sampling.presence_penalty = number(0.0f);
        else if (a == "--seed") o.sampling.seed = number(std::uint64_t(0));
        else if (a == "-t" || a == "--threads") {
            const int t = number(0);
            if (t < 1) throw examples::UsageError("-t must be >= 1");
            weft::set_num_threads(t);
        } else if (a == "--ctx" || a == "-c") o.context = number(0L);
        else if (a == "--precision") examples::set_precision(a, examples::flag_value(argc, argv, i));
        else if (a == "--no-mmap") weft::set_file_load(weft::FileLoad::copy);
        else if (a == "--print-ids") o.print_ids = true;
        else if (a == "--no-bos") o.no_bos = true;
        else if (a == "--special") o.special = true;
        else if (a == "--device" || a == "-dev") o.device = examples::parse_device(a, flag_value(argc, argv, i));
        else if (a == "-h" || a == "--help") throw examples::UsageError("help");
        else throw examples::UsageError("unknown argument '" + a + "'");
    }
    if (o.n_generate < 0) throw examples::UsageError("-n must be >= 0, got " + std::to_string(o.n_generate));
    if (o.context < 0) throw examples::UsageError("--ctx must be >= 0");
    const int sources = !o.prompt.empty() + !o.prompt_file.empty() + !o.ids_text.empty() + o.chat;
    if (sources == 0) throw examples::UsageError("no prompt: pass -p TEXT, -f FILE, --tokens 1,2,3 or --chat");
    if (sources > 1) throw examples::UsageError("pass only one of -p, -f, --tokens and --chat");
    if (!o.prompt_file.empty()) o.prompt = examples::read_file(o.prompt_file);
    return o;
}

void print_timings(double load_s, std::size_t prompt_n, double prompt_s, weft::Index generated, double gen_s, std::uint64_t bytes) {
    std::fprintf(stderr,
                 "load: %.1f ms | prompt: %zu tokens, %.1f tokens/s | generation: %lld tokens, %.2f tokens/s (%.1f GB/s of weights) "
                 "| peak RSS %.0f MiB\n",
                 load_s * 1e3, prompt_n, prompt_s > 0 ? double(prompt_n) / prompt_s : 0.0, static_cast<long long>(generated),
                 generated > 0 ? double(generated) / gen_s : 0.0, generated > 0 ? double(generated) * double(bytes) / gen_s * 1e-9 : 0.0,
                 examples::peak_rss_mib());
}

// One generation from `prompt_ids`, streaming text (or collecting ids); returns the stop reason.
template <class Model>
weft::GenerateResult run_once(Model& model, const std::optional<weft::text::Tokenizer>& tokenizer, const Options& o,
                              std::span<const std::int32_t> prompt_ids, weft::sample::Sampler& sampler,
                              const std::vector<std::int32_t>& stop_ids, std::vector<std::int32_t>& generated, double& prompt_s,
                              double& gen_s) {
    weft::GenerateOptions g;
    g.sampling = o.sampling;
    g.max_tokens = o.n_generate;
    g.stop_ids = stop_ids;
    std::optional<weft::text::StreamDecoder> stream;
    if (tokenizer && !o.print_ids) {
        // Primed with the prompt, so the first generated piece gets the spacing it has after it
        // (a SentencePiece decoder drops the leading space of a text's first piece).
        stream.emplace(*tokenizer, /*skip_special=*/!o.special);
        for (std::int32_t id : prompt_ids) stream->push(id);
    }
    auto t0 = std::chrono::steady_clock::now();
    bool first = true;
    const auto result = weft::generate(model, prompt_ids, g, sampler, [&](std::int32_t id) {
        if (first) {  // the prompt ran before the first id was sampled
            prompt_s = examples::seconds_since(t0);
            t0 = std::chrono::steady_clock::now();
            first = false;
        }
        generated.push_back(id);
        if (stream) {
            std::fputs(stream->push(id).c_str(), stdout);
            std::fflush(stdout);
        }
        return true;
    });
    if (first) prompt_s = examples::seconds_since(t0);
    else gen_s = examples::seconds_since(t0);
    if (stream) std::fputs(stream->flush().c_str(), stdout);
    return result;
}

template <class Model>
int run_model(Model& model, const std::optional<weft::text::Tokenizer>& tokenizer, const Options& o, double load_s) {
    weft::sample::Sampler sampler(o.sampling);
    std::vector<std::int32_t> stop_ids = model.config().eos_ids;

    if (!o.chat) {
        std::vector<std::int32_t> prompt_ids;
        if (!o.ids_text.empty()) {
            prompt_ids = examples::parse_ids(o.ids_text, "--tokens");
            if (prompt_ids.empty()) throw examples::UsageError("no prompt: --tokens holds no ids");
        } else {
            if (!tokenizer) throw examples::UsageError("'" + o.model_path + "' has no tokenizer (tokenizer.json, tokenizer.model or GGUF tokenizer keys); pass --tokens 1,2,3");
            prompt_ids = tokenizer->encode(o.prompt, !o.no_bos, o.special);
            if (prompt_ids.empty()) throw examples::UsageError("the prompt is empty after tokenization");
        }
        if (static_cast<weft::Index>(prompt_ids.size()) + o.n_generate > model.context_size())
            throw examples::UsageError("prompt (" + std::to_string(prompt_ids.size()) + " tokens) + -n " + std::to_string(o.n_generate) +
                                       " exceed the context of " + std::to_string(model.context_size()) + " tokens (raise --ctx)");
        if (o.ids_text.empty() && !o.print_ids) std::fputs(o.prompt.c_str(), stdout);  // the text continues the prompt
        std::vector<std::int32_t> generated;
        double prompt_s = 0, gen_s = 0;
        run_once(model, tokenizer, o, prompt_ids, sampler, stop_ids, generated, prompt_s, gen_s);
        if (o.print_ids) {
            for (std::size_t i = 0; i < generated.size(); ++i) std::printf("%s%d", i ? "," : "", generated[i]);
        }
        std::printf("\n");
        print_timings(load_s, prompt_ids.size(), prompt_s, static_cast<weft::Index>(generated.size()), gen_s, model.weight_bytes_per_token());
        return 0;
    }

    // --chat: each line on stdin is a user turn; the reply streams back; the KV cache carries the
    // conversation, so each turn only runs its own new tokens.
    if (!tokenizer) throw examples::UsageError("--chat needs the model's tokenizer");
    if (o.n_generate + 1 > model.context_size())
        throw examples::UsageError("-n " + std::to_string(o.n_generate) + " does not fit in the context of " +
                                   std::to_string(model.context_size()) + " tokens (raise --ctx)");
    const std::string jinja = tokenizer->chat_template();
    if (o.chat_template.empty() && jinja.empty())
        throw examples::UsageError("the model declares no chat template; pass --chat-template llama2|llama3|llama4");
    const weft::text::ChatTemplate tmpl = o.chat_template.empty() ? weft::text::detect_chat_template(jinja)
                                                                  : weft::text::chat_template_from_name(o.chat_template);
    for (std::string_view stop : weft::text::chat_stop_tokens(tmpl))
        if (const auto id = tokenizer->token_to_id(stop)) stop_ids.push_back(*id);
    bool first_turn = true;
    std::fprintf(stderr, "chat (%s template): type a message and press enter; an empty line or end of input quits\n",
                 std::string(weft::text::chat_template_name(tmpl)).c_str());
    for (std::string line; std::fprintf(stderr, "> "), std::getline(std::cin, line) && !line.empty();) {
        std::vector<weft::text::ChatMessage> turn;
        if (first_turn && !o.system.empty()) turn.push_back({"system", o.system});
        turn.push_back({"user", line});
        const std::string text = first_turn ? weft::text::render(tmpl, turn, true) : weft::text::render_next(tmpl, turn, true);
        first_turn = false;
        const auto ids = tokenizer->encode(text, /*add_bos=*/false, /*allow_special=*/true);
        if (model.position() + static_cast<weft::Index>(ids.size()) + 1 > model.context_size()) {
            std::fprintf(stderr, "weft-generate: the conversation has filled the context of %lld tokens\n",
                         static_cast<long long>(model.context_size()));
            return 1;
        }
        std::vector<std::int32_t> generated;
        double prompt_s = 0, gen_s = 0;
        const auto result = run_once(model, tokenizer, o, ids, sampler, stop_ids, generated, prompt_s, gen_s);
        std::printf("\n");
        std::fflush(stdout);
        print_timings(load_s, ids.size(), prompt_s, static_cast<weft::Index>(generated.size()), gen_s, model.weight_bytes_per_token());
        load_s = 0;
        if (result.reason == weft::StopReason::context_full) {
            std::fprintf(stderr, "weft-generate: the conversation has filled the context\n");
            return 1;
        }
    }
    return 0;
}

int run(int argc, char** argv) {
    const Options o = parse(argc, argv);
    examples::require_device(o.device);
    examples::prefetch_model(o.model_path);
    const auto t_load = std::chrono::steady_clock::now();
    return examples::with_device_model(o.device, o.model_path, o.context, [&](auto& model) {
        const auto tokenizer = examples::model_tokenizer(o.model_path);
        return run_model(model, tokenizer, o, examples::seconds_since(t_load));
    });
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "-h" || std::string(argv[i]) == "--help") return std::puts(usage), 0;
    return examples::guarded_main("weft-generate", usage, [&] { return run(argc, argv); });
}
