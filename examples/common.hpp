// examples/common.hpp — small helpers shared by weft's example programs: strict number parsing,
// token-id lists, timing and peak memory. Not part of the library.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/core/precision.hpp>
#include <weft/core/storage.hpp>

namespace examples {

// Thrown for bad command lines; main prints it as one line and exits with status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <class T>
T parse_number(const std::string& flag, const std::string& text) {
    T value{};
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end || text.empty()) throw UsageError(flag + " expects a number, got '" + text + "'");
    return value;
}

// Ids separated by commas and/or whitespace: "1, 2 3".
inline std::vector<std::int32_t> parse_ids(const std::string& text, const std::string& origin) {
    std::vector<std::int32_t> ids;
    std::string token;
    auto flush = [&] {
        if (token.empty()) return;
        ids.push_back(parse_number<std::int32_t>(origin, token));
        token.clear();
    };
    for (char ch : text) {
        if (ch == ',' || ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') flush();
        else token += ch;
    }
    flush();
    return ids;
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError("cannot read '" + path + "'");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Peak resident memory of this process in MiB.
inline double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Reads a model's files (a .gguf file, or a directory's .safetensors files) into the page cache,
// drawing a progress bar on stderr when it is a terminal and the model is large. The model then
// maps the same pages without waiting for the disk token by token.
inline void prefetch_model(const std::string& path) {
    namespace fs = std::filesystem;
    std::vector<std::string> files;
    if (fs::is_directory(path)) {
        for (const auto& entry : fs::directory_iterator(path))
            if (entry.is_regular_file() && entry.path().extension() == ".safetensors") files.push_back(entry.path().string());
    } else if (fs::is_regular_file(path)) {
        files.push_back(path);
    }
    std::uintmax_t total = 0, done = 0;
    for (const auto& f : files) total += fs::file_size(f);
    const bool bar = ::isatty(STDERR_FILENO) && total >= (std::uintmax_t(256) << 20);
    for (const auto& f : files) {
        weft::MappedFile file(f, weft::FileLoad::map);  // warms the page cache (for a later copy too)
        file.prefetch([&](std::size_t file_done, std::size_t file_total) {
            if (!bar) return;
            const double fraction = double(done + file_done) / double(total);
            const int width = 40, filled = static_cast<int>(fraction * width);
            std::fprintf(stderr, "\rloading [%s%s] %3.0f%%", std::string(std::size_t(filled), '#').c_str(),
                         std::string(std::size_t(width - filled), ' ').c_str(), 100 * fraction);
            if (file_done == file_total && done + file_done == total) std::fprintf(stderr, "\n");
        });
        done += file.size();
    }
}

// --precision exact|fast: how prompts multiply 16-bit weights (weft/core/precision.hpp).
inline void set_precision(const std::string& flag, const std::string& value) {
    if (value == "exact") weft::set_matmul_precision(weft::MatmulPrecision::exact);
    else if (value == "fast") weft::set_matmul_precision(weft::MatmulPrecision::fast);
    else throw UsageError(flag + " expects exact or fast, got '" + value + "'");
}

// The value after a flag; throws if the command line ends.
inline std::string flag_value(int argc, char** argv, int& i) {
    if (i + 1 >= argc) throw UsageError(std::string(argv[i]) + " expects a value");
    return argv[++i];
}

// The main() of every example: runs `run`, turning errors into one line on stderr and an exit
// status (2 for a bad command line, 1 for anything else).
template <class Run>
int guarded_main(const char* program, const char* usage, Run&& run) {
    try {
        return run();
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%s: %s\n%s\n", program, e.what(), usage);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 1;
    }
}

}  // namespace examples
