// examples/model.hpp — opens the model at a path as the class its architecture needs (weft::Llama
// for Llama 2/3/3.x, weft::Llama4 for Llama 4; GGUF files or Hugging Face directories; on the CPU or,
// with --device cuda, as examples::CudaLlama) and its tokenizer when the files carry one. Not part of
// the library.
#pragma once

#include <weft/weft.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "cuda/device.hpp"

namespace examples {

// "llama" or "llama4", from general.architecture (GGUF) or model_type (config.json).
inline std::string model_architecture(const std::string& path) {
    namespace fs = std::filesystem;
    if (!fs::exists(path)) throw std::runtime_error("'" + path + "' does not exist");
    if (weft::Llama::is_gguf(path)) {
        const weft::gguf::File file(path, {}, weft::FileLoad::map);  // metadata only
        return file.get_or<std::string>("general.architecture", "llama");
    }
    const fs::path config = fs::path(path) / "config.json";
    if (!fs::is_regular_file(config)) return "llama";  // the loader names what is missing
    std::ifstream in(config);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    const std::string type = j.is_object() && j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "llama";
    return type.starts_with("llama4") ? "llama4" : "llama";
}

// Calls f(model) with a weft::Llama or weft::Llama4 loaded from `path` with a KV cache of
// `context` tokens (0: the model's own, capped).
template <class F>
decltype(auto) with_model(const std::string& path, weft::Index context, F&& f) {
    const std::string arch = model_architecture(path);
    if (arch == "llama4") {
        weft::Llama4 model = weft::Llama4::from_pretrained(path, context);
        return f(model);
    }
    if (arch != "llama") throw std::runtime_error("'" + path + "' holds a '" + arch + "' model; weft runs llama and llama4");
    weft::Llama model = weft::Llama::from_pretrained(path, context);
    return f(model);
}

// Fails early (before a model is read) when `device` cannot be used by this build on this machine.
inline void require_device(Device device) {
    if (device != Device::cuda) return;
#if WEFT_EXAMPLES_CUDA
    CudaLlama::require_device();
#else
    throw std::runtime_error("built without the CUDA backend (--device cuda); configure weft with -DWEFT_CUDA=ON");
#endif
}

// Calls f(model) with the model at `path` on `device`: weft::Llama or weft::Llama4 (with_model) on
// the CPU, a CudaLlama on the GPU (Llama 2/3/3.x only).
template <class F>
decltype(auto) with_device_model(Device device, const std::string& path, weft::Index context, F&& f) {
    if (device == Device::cuda) {
        require_device(device);
#if WEFT_EXAMPLES_CUDA
        const std::string arch = model_architecture(path);
        if (arch != "llama")
            throw std::runtime_error("'" + path + "' holds a '" + arch + "' model; the CUDA backend runs llama (use --device cpu)");
        CudaLlama model = CudaLlama::load(path, context);
        return f(model);
#endif
    }
    return with_model(path, context, std::forward<F>(f));
}

// The tokenizer stored with the model, or nullopt when there is none (a GGUF file without
// tokenizer.ggml.* keys, a directory without tokenizer.json / tokenizer.model).
inline std::optional<weft::text::Tokenizer> model_tokenizer(const std::string& path) {
    namespace fs = std::filesystem;
    if (fs::is_directory(path) && !fs::exists(fs::path(path) / "tokenizer.json") && !fs::exists(fs::path(path) / "tokenizer.model"))
        return std::nullopt;
    if (!fs::is_directory(path)) {
        const weft::gguf::File file(path, {}, weft::FileLoad::map);  // metadata only
        if (!file.has("tokenizer.ggml.model")) return std::nullopt;
        return weft::text::Tokenizer(weft::text::vocabulary_from_gguf(file), path);
    }
    return weft::text::load_tokenizer(path);
}

}  // namespace examples
