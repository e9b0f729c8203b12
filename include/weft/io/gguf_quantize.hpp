// weft/io/gguf_quantize.hpp — writes a quantized GGUF Llama file from a Hugging Face directory or
// from a GGUF file with f32 / f16 / bf16 weights, following a recipe: one type for every matrix
// (q8_0, q4_0, q4_k, q5_k, q6_k) or a llama.cpp-style mix (q4_k_m, q5_k_m). llama.cpp reads the
// result (same names, metadata and block layouts).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <system_error>
#include <string>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/io/gguf.hpp"
#include "weft/io/gguf_convert.hpp"
#include "weft/quant/dequantize.hpp"
#include "weft/quant/quantize.hpp"

namespace weft::gguf {

// Which type each tensor gets. Matrices take `base`; a mixed recipe ("_m") gives more bits where
// llama.cpp's Q4_K_M / Q5_K_M do: attn_v and ffn_down of the first and last eighth of the layers
// and every third layer between take Q6_K. Unless `pure`, the output head takes Q6_K (it is read
// once per token and decides every logit), again as llama.cpp does. Vectors (norms) stay F32.
struct QuantizeRecipe {
    std::string name;
    DType base = DType::q8_0;
    bool mixed = false;
    bool pure = false;
};

inline QuantizeRecipe quantize_recipe(const std::string& name) {
    static const std::vector<std::pair<std::string, QuantizeRecipe>> known = {
        {"q8_0", {"q8_0", DType::q8_0}},    {"q4_0", {"q4_0", DType::q4_0}},    {"q4_k", {"q4_k", DType::q4_k}},
        {"q5_k", {"q5_k", DType::q5_k}},    {"q6_k", {"q6_k", DType::q6_k}},    {"q4_k_m", {"q4_k_m", DType::q4_k, true}},
        {"q5_k_m", {"q5_k_m", DType::q5_k, true}}, {"f16", {"f16", DType::f16}}, {"bf16", {"bf16", DType::bf16}},
        {"f32", {"f32", DType::f32}},
    };
    std::string names;
    for (const auto& [n, recipe] : known) {
        if (n == name) return recipe;
        names += (names.empty() ? "" : ", ") + n;
    }
    fail("quantize: unknown type '", name, "' (known: ", names, ")");
}

namespace detail {

// llama.cpp's rule for the layers that get more bits in the mixed recipes.
inline bool more_bits(Index layer, Index layers) {
    return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

inline Index layer_of(const std::string& name) {
    if (!name.starts_with("blk.")) return -1;
    return static_cast<Index>(std::stol(name.substr(4, name.find('.', 4) - 4)));
}

}  // namespace detail

// The stored type of tensor `name` ([rows, cols] in PyTorch order) in a model of `layers` layers.
// Rows that are no whole number of the chosen type's blocks fall back to Q8_0 (blocks of 32),
// or to F16 when even that does not fit (llama.cpp falls back similarly).
inline DType choose_quantized_type(const QuantizeRecipe& recipe, const std::string& name, const Shape& shape, Index layers) {
    if (shape.rank() < 2 || name == "rope_freqs.weight") return DType::f32;
    DType t = recipe.base;
    if (!recipe.pure && is_quantized(t)) {
        if (name == "output.weight") t = DType::q6_k;
        if (recipe.mixed && (name.ends_with(".attn_v.weight") || name.ends_with(".ffn_down.weight")) &&
            detail::more_bits(detail::layer_of(name), layers))
            t = DType::q6_k;
    }
    const Index cols = shape[shape.rank() - 1];
    if (cols % static_cast<Index>(block_size(t)) != 0) t = cols % 32 == 0 ? DType::q8_0 : DType::f16;
    return t;
}

// progress(values_done, values_total) is called as matrices are encoded.
using QuantizeProgress = std::function<void(std::uint64_t, std::uint64_t)>;

// Writes `out_path` from `in_path` (a Hugging Face directory, or a GGUF file whose matrices are
// f32 / f16 / bf16) with every matrix stored as `recipe` says. Metadata are kept; the tensors are
// encoded row by row while the file is written, so memory stays small.
inline void quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeRecipe& recipe,
                           const QuantizeProgress& progress = {}) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::equivalent(in_path, out_path, ec))
        fail("quantize: the output '", out_path, "' is the input file");
    auto done = std::make_shared<std::uint64_t>(0);
    auto total = std::make_shared<std::uint64_t>(0);
    auto encode = [=](DType type, const float* x, void* dst, Index rows, Index cols) {
        quant::quantize_rows(type, x, dst, rows, cols);
        *done += static_cast<std::uint64_t>(rows * cols);
        if (progress) progress(*done, *total);
    };

    if (fs::is_directory(in_path)) {
        const hf::LlamaConfig config = hf::load_llama_config(in_path);
        ConvertOptions options;
        options.choose_type = [&](const std::string& name, const Shape& shape, DType) {
            const DType t = choose_quantized_type(recipe, name, shape, config.num_hidden_layers);
            if (is_quantized(t)) *total += static_cast<std::uint64_t>(shape.numel());
            return to_ggml(t);
        };
        for (DType t : {DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k})
            options.encoders[to_ggml(t)] = [=](std::span<const float> row, std::span<std::byte> out) {
                encode(t, row.data(), out.data(), 1, static_cast<Index>(row.size()));
            };
        convert_hf_to_gguf(in_path, out_path, options);
        return;
    }

    const File in(in_path);
    const std::string arch = in.get_or<std::string>("general.architecture", "");
    const Index layers = static_cast<Index>(in.get_or<std::uint64_t>(arch + ".block_count", 0));
    Writer w;
    for (const auto& [key, value] : in.metadata()) {
        if (key == "general.file_type" || key == "general.quantization_version") continue;
        w.add(std::string(key), value);
    }
    w.add("general.quantization_version", std::uint32_t(2));
    for (const TensorInfo& t : in.tensors()) {
        const std::optional<DType> source = to_dtype(t.type);
        const bool is_float = source && (*source == DType::f32 || *source == DType::f16 || *source == DType::bf16);
        const DType target = choose_quantized_type(recipe, t.name, t.shape, layers);
        const Weight weight = in.weight(t.name);
        if (!is_float || to_ggml(target) == t.type) {
            if (is_float || t.shape.rank() < 2 || (source && *source == target)) {  // kept as stored
                w.add_tensor(t.name, t.type, t.shape, std::span<const std::byte>(weight.data, t.nbytes()));
                continue;
            }
            fail("quantize: tensor '", t.name, "' is already ", ggml_type_name(t.type), "; quantize from an f32, f16 or bf16 file");
        }
        const Index cols = t.shape[t.shape.rank() - 1], rows = t.shape.numel() / cols;
        *total += is_quantized(target) ? static_cast<std::uint64_t>(rows * cols) : 0;
        w.add_tensor(t.name, to_ggml(target), t.shape, [=](const Writer::Sink& sink) {
            constexpr Index chunk = 64;  // rows encoded at a time (and in parallel)
            std::vector<float> x(static_cast<std::size_t>(chunk * cols));
            std::vector<std::byte> bytes(quant::quantized_row_bytes(target, cols) * chunk);
            const std::size_t src_row = weight.row_bytes(), dst_row = quant::quantized_row_bytes(target, cols);
            for (Index r0 = 0; r0 < rows; r0 += chunk) {
                const Index n = std::min(chunk, rows - r0);
                for (Index r = 0; r < n; ++r)
                    quant::dequantize_row(*source, weight.data + static_cast<std::size_t>(r0 + r) * src_row,
                                          x.data() + r * cols, cols);
                if (is_quantized(target)) encode(target, x.data(), bytes.data(), n, cols);
                else quant::quantize_rows(target, x.data(), bytes.data(), n, cols);
                sink(std::span<const std::byte>(bytes.data(), dst_row * static_cast<std::size_t>(n)));
            }
        });
    }
    w.write(out_path);
}

}  // namespace weft::gguf
