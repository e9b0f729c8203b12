// weft-quantize: writes a quantized GGUF file that weft and llama.cpp both read.
//   weft-quantize IN OUT TYPE [-t THREADS] [--pure]
// IN is a Hugging Face Llama directory or a GGUF file with f32 / f16 / bf16 weights. TYPE is
// q8_0, q4_0, q4_k, q5_k, q6_k, a llama.cpp-style mix (q4_k_m, q5_k_m), or f16 / bf16 / f32.
// --pure stores every matrix as TYPE (no Q6_K output head or mixed layers).
#include <weft/weft.hpp>
#include <weft/io/gguf_quantize.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "common.hpp"

namespace {

const char* usage = "usage: weft-quantize IN OUT TYPE [-t THREADS] [--pure]\n"
                    "  TYPE: q8_0, q4_0, q4_k, q5_k, q6_k, q4_k_m, q5_k_m, f16, bf16, f32";

std::uintmax_t input_bytes(const std::string& path) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(path)) return fs::file_size(path);
    std::uintmax_t total = 0;
    for (const auto& entry : fs::directory_iterator(path))
        if (entry.is_regular_file() && entry.path().extension() == ".safetensors") total += entry.file_size();
    return total;
}

int run(int argc, char** argv) {
    std::vector<std::string> positional;
    bool pure = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-t" || a == "--threads") weft::set_num_threads(examples::parse_number<int>(a, examples::flag_value(argc, argv, i)));
        else if (a == "--pure") pure = true;
        else if (a == "-h" || a == "--help") {
            std::puts(usage);
            return 0;
        } else if (a.starts_with("-") && a.size() > 1) throw examples::UsageError("unknown argument '" + a + "'");
        else positional.push_back(a);
    }
    if (positional.size() != 3) throw examples::UsageError("expected IN OUT TYPE, got " + std::to_string(positional.size()) + " arguments");
    const std::string& in = positional[0];
    const std::string& out = positional[1];
    if (!std::filesystem::exists(in)) throw examples::UsageError("'" + in + "' does not exist");
    weft::gguf::QuantizeRecipe recipe = weft::gguf::quantize_recipe(positional[2]);
    recipe.pure = pure;

    const bool bar = ::isatty(STDERR_FILENO);
    int last_percent = -1;
    const auto start = std::chrono::steady_clock::now();
    weft::gguf::quantize_model(in, out, recipe, [&](std::uint64_t done, std::uint64_t total) {
        if (!bar || total == 0) return;
        const int percent = static_cast<int>(100 * done / total);
        if (percent == last_percent) return;
        last_percent = percent;
        const int filled = percent * 40 / 100;
        std::fprintf(stderr, "\rquantizing [%s%s] %3d%%", std::string(std::size_t(filled), '#').c_str(),
                     std::string(std::size_t(40 - filled), ' ').c_str(), percent);
        if (done == total) std::fprintf(stderr, "\n");
    });
    const double seconds = examples::seconds_since(start);
    const double in_mib = double(input_bytes(in)) / (1 << 20), out_mib = double(std::filesystem::file_size(out)) / (1 << 20);
    std::fprintf(stderr, "weft-quantize: %s (%.1f MiB) -> %s (%.1f MiB, %s) in %.1f s\n", in.c_str(), in_mib, out.c_str(), out_mib,
                 recipe.name.c_str(), seconds);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return examples::guarded_main("weft-quantize", usage, [&] { return run(argc, argv); });
}
