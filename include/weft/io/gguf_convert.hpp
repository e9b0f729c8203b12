// weft/io/gguf_convert.hpp — converts a Hugging Face Llama directory (config.json + safetensors) to
// GGUF as llama.cpp's convert_hf_to_gguf.py does: llama.* metadata, GGUF tensor names, Q and K rows
// permuted from Hugging Face's half-split RoPE pairs to GGUF's interleaved ones, and a rope_freqs
// tensor for Llama 3.1 scaling. Tensors are converted row by row while the file is written, so
// nothing is held in memory in full. Which type each tensor gets is a callback, and row encoders
// for other types (quantizers) plug in beside the built-in F32 / F16 / BF16.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numbers>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/weight.hpp"
#include "weft/io/gguf.hpp"
#include "weft/io/hf_config.hpp"
#include "weft/io/safetensors.hpp"

namespace weft::gguf {

// Encodes one row of values — a whole number of the type's blocks — into exactly the bytes that
// row takes in the output (`out.size()` = values / block_size · block_bytes).
using RowEncoder = std::function<void(std::span<const float> row, std::span<std::byte> out)>;

struct ConvertOptions {
    // The type of tensors with two or more axes when choose_type is not set; nullopt keeps the
    // checkpoint's dtype (F32, F16 or BF16 pass through bit for bit).
    std::optional<DType> dtype;
    // Chooses each tensor's stored type from its GGUF name ("blk.3.attn_q.weight"), its shape in
    // PyTorch order and its dtype in the checkpoint. Default: 1-D tensors (norms, biases) F32, as
    // llama.cpp stores them; the others `dtype`, or as stored. rope_freqs is always F32.
    std::function<GgmlType(const std::string& name, const Shape& shape, DType source)> choose_type;
    // Encoders for types other than F32, F16 and BF16, e.g. {GgmlType::q8_0, quantize_row_q8_0}.
    std::map<GgmlType, RowEncoder> encoders;
    // general.name; empty: the directory's name.
    std::string name;
    std::uint32_t alignment = default_alignment;
};

// Converts the model at `hf_path` (a directory, as Llama::from_pretrained takes) to `gguf_path`.
inline void convert_hf_to_gguf(const std::string& hf_path, const std::string& gguf_path, const ConvertOptions& options = {});

// The pieces, for tools that write more (tokenizer, quantization notes) into the same file.
// Adds general.architecture, general.name and the llama.* keys (and bos/eos token ids).
inline void add_llama_metadata(Writer& w, const hf::LlamaConfig& config, const std::string& name);
// Adds every tensor of the checkpoint under its GGUF name (plus rope_freqs for llama3 scaling, and
// general.quantization_version when an encoder is used), sourcing them from `checkpoint`, which must
// outlive w.write(). Throws for a tensor with no GGUF counterpart or a shape the config does not predict.
inline void add_llama_tensors(Writer& w, const hf::LlamaConfig& config, const safetensors::Checkpoint& checkpoint,
                              const ConvertOptions& options = {});
// Hugging Face → GGUF tensor name: "model.layers.3.self_attn.q_proj.weight" → "blk.3.attn_q.weight";
// nullopt if the name has no GGUF counterpart.
inline std::optional<std::string> gguf_tensor_name(std::string_view hf_name);
// The Q/K permutation of convert_hf_to_gguf.py: row r of the GGUF tensor is row
// hf_row_of_gguf_row(r, rows, heads) of the Hugging Face one. Within each head of d = rows / heads
// rows, GGUF row 2i + j holds Hugging Face row j·d/2 + i, so RoPE pair (i, i + d/2) becomes (2i, 2i+1).
inline Index hf_row_of_gguf_row(Index r, Index rows, Index heads);
// Llama 3.1 ("llama3") scaling as the per-frequency divisors GGUF stores in rope_freqs:
// inv_freq_gguf[j] = inv_freq[j] / factors[j] gives the scaled frequencies.
inline std::vector<float> llama3_rope_factors(const hf::LlamaConfig& config);

// =============================================================================================
// Implementation
// =============================================================================================

inline Index hf_row_of_gguf_row(Index r, Index rows, Index heads) {
    const Index d = rows / heads, h = r / d, within = r % d;
    return h * d + (within % 2) * (d / 2) + within / 2;
}

inline std::optional<std::string> gguf_tensor_name(std::string_view n) {
    if (n == "model.embed_tokens.weight") return "token_embd.weight";
    if (n == "model.norm.weight") return "output_norm.weight";
    if (n == "lm_head.weight") return "output.weight";
    constexpr std::string_view layers = "model.layers.";
    if (!n.starts_with(layers)) return std::nullopt;
    n.remove_prefix(layers.size());
    const auto dot = n.find('.');
    if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
    const std::string_view index = n.substr(0, dot), rest = n.substr(dot + 1);
    if (!std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
    static const std::pair<std::string_view, std::string_view> parts[] = {
        {"input_layernorm", "attn_norm"}, {"self_attn.q_proj", "attn_q"},   {"self_attn.k_proj", "attn_k"},
        {"self_attn.v_proj", "attn_v"},   {"self_attn.o_proj", "attn_output"}, {"post_attention_layernorm", "ffn_norm"},
        {"mlp.gate_proj", "ffn_gate"},    {"mlp.up_proj", "ffn_up"},       {"mlp.down_proj", "ffn_down"},
    };
    for (const auto& [hf, gg] : parts) {
        if (!rest.starts_with(hf)) continue;
        const std::string_view suffix = rest.substr(hf.size());
        if (suffix == ".weight" || suffix == ".bias")
            return "blk." + std::string(index) + "." + std::string(gg) + std::string(suffix);
    }
    return std::nullopt;
}

inline std::vector<float> llama3_rope_factors(const hf::LlamaConfig& c) {
    if (!c.rope_scaling || c.rope_scaling->type != "llama3") fail("gguf: llama3_rope_factors: the config has no llama3 rope scaling");
    const auto& s = *c.rope_scaling;
    // The same arithmetic as nn::Rope's llama3 scaling (double precision), as divisors.
    const double L0 = s.original_max_position_embeddings;
    const double low_wavelen = L0 / s.low_freq_factor, high_wavelen = L0 / s.high_freq_factor;
    const Index d = c.head_dim;
    std::vector<float> factors;
    for (Index j = 0; j < d / 2; ++j) {
        const double inv = std::pow(c.rope_theta, -2.0 * static_cast<double>(j) / static_cast<double>(d));
        const double wavelen = 2 * std::numbers::pi / inv;
        double f;
        if (wavelen < high_wavelen) f = 1;
        else if (wavelen > low_wavelen || s.high_freq_factor == s.low_freq_factor) f = s.factor;
        else {
            const double smooth = (L0 / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
            f = 1 / ((1 - smooth) / s.factor + smooth);
        }
        factors.push_back(static_cast<float>(f));
    }
    return factors;
}

inline void add_llama_metadata(Writer& w, const hf::LlamaConfig& c, const std::string& name) {
    auto u32 = [&](const char* key, long v) {
        if (v < 0 || v > static_cast<long>(std::numeric_limits<std::uint32_t>::max()))
            fail("gguf: ", key, " = ", v, " does not fit the u32 GGUF stores it in");
        w.add(key, static_cast<std::uint32_t>(v));
    };
    w.add("general.architecture", "llama");
    w.add("general.name", name);
    u32("llama.block_count", c.num_hidden_layers);
    u32("llama.context_length", c.max_position_embeddings);
    u32("llama.embedding_length", c.hidden_size);
    u32("llama.feed_forward_length", c.intermediate_size);
    u32("llama.attention.head_count", c.num_attention_heads);
    u32("llama.attention.head_count_kv", c.num_key_value_heads);
    w.add("llama.rope.freq_base", static_cast<float>(c.rope_theta));
    w.add("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps));
    u32("llama.attention.key_length", c.head_dim);
    u32("llama.attention.value_length", c.head_dim);
    u32("llama.vocab_size", c.vocab_size);
    u32("llama.rope.dimension_count", c.head_dim);
    if (c.rope_scaling && c.rope_scaling->type == "linear") {
        w.add("llama.rope.scaling.type", "linear");
        w.add("llama.rope.scaling.factor", static_cast<float>(c.rope_scaling->factor));
    }
    // GGUF has one bos and one eos id; extra eos ids of config.json (Llama 3.1's eot and eom) are
    // tokenizer facts the tokenizer conversion writes (tokenizer.ggml.eot_token_id / eom_token_id).
    if (!c.bos_token_ids.empty()) u32("tokenizer.ggml.bos_token_id", c.bos_token_ids.front());
    if (!c.eos_token_ids.empty()) u32("tokenizer.ggml.eos_token_id", c.eos_token_ids.front());
}

namespace detail {

// Streams one checkpoint tensor into the GGUF file as `out`, row by row: Q/K rows permuted
// (`permute_heads` > 0), values converted through f32 unless the stored type is unchanged.
inline Writer::Source convert_source(const Weight& src, GgmlType out, Index permute_heads, RowEncoder encoder) {
    return [src, out, permute_heads, encoder = std::move(encoder)](const Writer::Sink& sink) {
        const Index numel = src.shape.numel();
        const bool same = to_dtype(out) == src.dtype;
        const std::size_t src_size = dtype_size(src.dtype);
        if (numel == 0) return;
        // A 1-D tensor (a bias) is one row; its elements are what a permutation moves.
        const bool vector = src.shape.rank() <= 1;
        const Index rows = vector ? 1 : src.shape[0], cols = numel / rows;

        if (same && permute_heads == 0) {  // unchanged: the mapped bytes as they are
            sink(std::span<const std::byte>(src.data, static_cast<std::size_t>(numel) * src_size));
            return;
        }
        std::vector<float> row(static_cast<std::size_t>(cols));
        auto load_row = [&](Index r) {  // row r of the source, as floats
            visit_float_weight(src, [&](auto view) {
                const auto* p = view.data() + r * cols;
                for (Index i = 0; i < cols; ++i) row[static_cast<std::size_t>(i)] = convert<float>(p[i]);
            });
        };
        const GgmlTypeInfo& info = ggml_type_info(out);
        std::vector<std::byte> bytes(static_cast<std::size_t>(cols) / info.block_size * info.block_bytes);
        auto emit = [&] {
            switch (out) {
                case GgmlType::f32: std::memcpy(bytes.data(), row.data(), bytes.size()); break;
                case GgmlType::f16:
                    for (std::size_t i = 0; i < row.size(); ++i) {
                        const std::uint16_t b = float_to_f16_bits(row[i]);
                        std::memcpy(bytes.data() + 2 * i, &b, 2);
                    }
                    break;
                case GgmlType::bf16:
                    for (std::size_t i = 0; i < row.size(); ++i) {
                        const std::uint16_t b = float_to_bf16_bits(row[i]);
                        std::memcpy(bytes.data() + 2 * i, &b, 2);
                    }
                    break;
                default: encoder(row, bytes);
            }
            sink(bytes);
        };
        if (vector) {
            load_row(0);
            if (permute_heads > 0) {
                std::vector<float> permuted(row.size());
                for (Index r = 0; r < cols; ++r)
                    permuted[static_cast<std::size_t>(r)] = row[static_cast<std::size_t>(hf_row_of_gguf_row(r, cols, permute_heads))];
                row.swap(permuted);
            }
            emit();
            return;
        }
        for (Index r = 0; r < rows; ++r) {
            const Index from = permute_heads > 0 ? hf_row_of_gguf_row(r, rows, permute_heads) : r;
            if (same) {
                sink(std::span<const std::byte>(src.data + static_cast<std::size_t>(from * cols) * src_size,
                                                static_cast<std::size_t>(cols) * src_size));
                continue;
            }
            load_row(from);
            emit();
        }
    };
}

}  // namespace detail

inline void add_llama_tensors(Writer& w, const hf::LlamaConfig& c, const safetensors::Checkpoint& ckpt, const ConvertOptions& options) {
    const Index D = c.hidden_size, H = c.num_attention_heads, KV = c.num_key_value_heads, HD = c.head_dim,
                F = c.intermediate_size, V = c.vocab_size;
    if (HD % 2 != 0) fail("gguf: head_dim ", HD, " is odd; RoPE pairs need an even head_dim");
    std::set<std::string> used;
    bool encoded = false;  // any tensor written by an encoder (a quantizer)

    auto choose = [&](const std::string& name, const Shape& shape, DType source) {
        if (options.choose_type) return options.choose_type(name, shape, source);
        if (shape.rank() <= 1) return GgmlType::f32;
        return to_ggml(options.dtype.value_or(source));
    };
    auto add = [&](const std::string& hf_name, const Shape& shape, Index permute_heads, bool optional) {
        if (optional && !ckpt.contains(hf_name)) return;
        const Weight src = ckpt.weight(hf_name);
        src.expect_shape(shape);
        const std::string name = *gguf_tensor_name(hf_name);
        const GgmlType out = choose(name, shape, src.dtype);
        RowEncoder encoder;
        if (out != GgmlType::f32 && out != GgmlType::f16 && out != GgmlType::bf16) {
            const auto it = options.encoders.find(out);
            if (it == options.encoders.end() || !it->second)
                fail("gguf: tensor '", name, "' is to be stored as ", ggml_type_name(out),
                     ", but ConvertOptions::encoders has no encoder for it (built in: F32, F16, BF16)");
            encoder = it->second;
            encoded = true;
        }
        w.add_tensor(name, out, shape, detail::convert_source(src, out, permute_heads, encoder));
        used.insert(hf_name);
    };

    add("model.embed_tokens.weight", Shape{V, D}, 0, false);
    if (c.rope_scaling && c.rope_scaling->type == "llama3") {
        auto factors = std::make_shared<std::vector<float>>(llama3_rope_factors(c));
        w.add_tensor("rope_freqs.weight", GgmlType::f32, Shape{static_cast<Index>(factors->size())},
                     [factors](const Writer::Sink& sink) { sink(std::as_bytes(std::span(*factors))); });
    }
    for (Index l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", Shape{D}, 0, false);
        add(p + "self_attn.q_proj.weight", Shape{H * HD, D}, H, false);
        add(p + "self_attn.q_proj.bias", Shape{H * HD}, H, true);
        add(p + "self_attn.k_proj.weight", Shape{KV * HD, D}, KV, false);
        add(p + "self_attn.k_proj.bias", Shape{KV * HD}, KV, true);
        add(p + "self_attn.v_proj.weight", Shape{KV * HD, D}, 0, false);
        add(p + "self_attn.v_proj.bias", Shape{KV * HD}, 0, true);
        add(p + "self_attn.o_proj.weight", Shape{D, H * HD}, 0, false);
        add(p + "self_attn.o_proj.bias", Shape{D}, 0, true);
        add(p + "post_attention_layernorm.weight", Shape{D}, 0, false);
        add(p + "mlp.gate_proj.weight", Shape{F, D}, 0, false);
        add(p + "mlp.gate_proj.bias", Shape{F}, 0, true);
        add(p + "mlp.up_proj.weight", Shape{F, D}, 0, false);
        add(p + "mlp.up_proj.bias", Shape{F}, 0, true);
        add(p + "mlp.down_proj.weight", Shape{D, F}, 0, false);
        add(p + "mlp.down_proj.bias", Shape{D}, 0, true);
    }
    add("model.norm.weight", Shape{D}, 0, false);
    // Tied models have no output.weight in GGUF; a checkpoint that stores lm_head anyway keeps it.
    add("lm_head.weight", Shape{V, D}, 0, c.tie_word_embeddings);

    for (const std::string& name : ckpt.names()) {
        if (used.count(name) || name.ends_with(".rotary_emb.inv_freq")) continue;  // inv_freq: recomputed from the config
        fail("gguf: the checkpoint's tensor '", name, "' has no place in a GGUF Llama file",
             gguf_tensor_name(name) ? " (its layer is beyond the config's num_hidden_layers)" : "");
    }
    // ggml's quantization format version, which llama.cpp's quantizer writes beside quantized data.
    if (encoded) w.add("general.quantization_version", std::uint32_t(2));
}

inline void convert_hf_to_gguf(const std::string& hf_path, const std::string& gguf_path, const ConvertOptions& options) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(hf_path)) fail("gguf: convert_hf_to_gguf: '", hf_path, "' is not a Hugging Face model directory");
    const hf::LlamaConfig config = hf::load_llama_config(hf_path);
    const safetensors::Checkpoint checkpoint(hf_path);
    Writer w;
    std::string name = options.name;
    if (name.empty()) {
        fs::path dir = fs::absolute(fs::path(hf_path)).lexically_normal();
        if (dir.filename().empty()) dir = dir.parent_path();  // "models/Llama-3.2-1B/"
        name = dir.filename().string();
    }
    add_llama_metadata(w, config, name);
    if (options.alignment != default_alignment) w.set_alignment(options.alignment);
    add_llama_tensors(w, config, checkpoint, options);
    w.write(gguf_path);
}

}  // namespace weft::gguf
