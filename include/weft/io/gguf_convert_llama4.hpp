// weft/io/gguf_convert_llama4.hpp — converts a Hugging Face Llama 4 directory (config.json +
// safetensors; Llama4ForCausalLM or the text model of Llama4ForConditionalGeneration) to a GGUF
// file of llama.cpp's llama4 architecture, as convert_hf_to_gguf.py's Llama4Model writes it:
// llama4.* metadata, GGUF tensor names, Q and K NOT permuted (Hugging Face Llama 4 already rotates
// interleaved pairs), the fused experts split and transposed, rope_freqs for llama3 scaling. Sits
// beside gguf_convert.hpp (Llama 2/3), whose ConvertOptions and row encoders it takes, and streams
// every tensor row by row (experts in blocks of columns) while the file is written.
//
// Where a config departs from what llama.cpp hard-codes for Llama 4 (chunk size, chunked and NoPE
// layers, temperature tuning, QK-norm: Llama4::apply_llama_cpp_defaults), the llama4_gguf keys of
// models/llama4.hpp record it, so weft::Llama4 runs the file as transformers runs the directory;
// llama.cpp ignores those keys. A config with none of that (Scout, Maverick) gets exactly
// llama.cpp's keys.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/core/weight.hpp"
#include "weft/io/gguf.hpp"
#include "weft/io/gguf_convert.hpp"
#include "weft/io/hf_config_llama4.hpp"
#include "weft/io/safetensors.hpp"
#include "weft/models/llama4.hpp"

namespace weft::gguf {

// Converts the model at `hf_path` (a directory, as Llama4::from_pretrained takes) to `gguf_path`.
// options.dtype / choose_type / encoders work as for convert_hf_to_gguf; by default 1-D tensors and
// the routers (ffn_gate_inp) are F32, as convert_hf_to_gguf.py stores them, the rest keeps its dtype.
inline void convert_llama4_hf_to_gguf(const std::string& hf_path, const std::string& gguf_path, const ConvertOptions& options = {});

// The pieces, for tools that write more (a tokenizer) into the same file.
// Adds general.architecture "llama4", general.name, the llama4.* keys, the llama4_gguf keys the
// config needs, and tokenizer.ggml.bos/eos_token_id (the first of config.json's ids).
inline void add_llama4_metadata(Writer& w, const hf::Llama4TextConfig& config, const std::string& name);
// Adds the text model's tensors under their GGUF names (plus rope_freqs for llama3 scaling, and
// general.quantization_version when an encoder is used), sourced from `checkpoint`, which must
// outlive w.write(). Skips what the text model never reads (vision tower and projector, which
// llama.cpp writes to a separate mmproj file; dense weights of MoE layers and experts of dense
// layers); throws for any other tensor and for shapes the config does not predict.
inline void add_llama4_tensors(Writer& w, const hf::Llama4TextConfig& config, const safetensors::Checkpoint& checkpoint,
                               const ConvertOptions& options = {});
// The interleave_moe_layer_step whose layers (l + 1) % step == 0 are exactly config.moe_layers —
// the only MoE layout GGUF can state: the config's own step when it fits (it does unless
// moe_layers is given explicitly), else the first step in 1 .. L + 1 that fits (L + 1: no MoE
// layer); throws if none does.
inline Index llama4_moe_layer_step(const hf::Llama4TextConfig& config);

// =============================================================================================
// Implementation
// =============================================================================================

inline Index llama4_moe_layer_step(const hf::Llama4TextConfig& c) {
    const Index L = c.num_hidden_layers;
    std::vector<bool> want(static_cast<std::size_t>(L), false);
    for (int l : c.moe_layers) want[static_cast<std::size_t>(l)] = true;
    auto fits = [&](Index step) {
        for (Index l = 0; l < L; ++l)
            if (((l + 1) % step == 0) != want[static_cast<std::size_t>(l)]) return false;
        return true;
    };
    if (fits(c.interleave_moe_layer_step)) return c.interleave_moe_layer_step;
    for (Index step = 1; step <= L + 1; ++step)
        if (fits(step)) return step;
    std::string layers;
    for (int l : c.moe_layers) layers += (layers.empty() ? "" : ", ") + std::to_string(l);
    fail("gguf: the config's moe_layers [", layers, "] of ", L, " layers are not every n-th layer; GGUF (llama4.interleave_moe_layer_step) "
         "can only state MoE layers (l + 1) % n == 0");
}

inline void add_llama4_metadata(Writer& w, const hf::Llama4TextConfig& hc, const std::string& name) {
    auto u32 = [&](const std::string& key, long v) {
        if (v < 0 || v > static_cast<long>(std::numeric_limits<std::uint32_t>::max()))
            fail("gguf: ", key, " = ", v, " does not fit the u32 GGUF stores it in");
        w.add(key, static_cast<std::uint32_t>(v));
    };
    if (hc.attention_bias)
        fail("gguf: the config has attention_bias true, which a GGUF llama4 file cannot carry (llama.cpp's llama4 loader takes no biases)");
    if (hc.rope_scaling && hc.rope_scaling->type != "llama3" && hc.rope_scaling->type != "linear")
        fail("gguf: rope_scaling type \"", hc.rope_scaling->type, "\" has no llama4 GGUF form (llama3: rope_freqs; linear: llama4.rope.scaling.*)");
    const Index step = llama4_moe_layer_step(hc);

    // In the order convert_hf_to_gguf.py adds them: TextModel, LlamaModel, Llama4Model. Llama4Model
    // swaps the sizes: feed_forward_length is the dense MLP's (intermediate_size_mlp),
    // expert_feed_forward_length each expert's (intermediate_size).
    w.add("general.architecture", "llama4");
    w.add("general.name", name);
    u32("llama4.block_count", hc.num_hidden_layers);
    u32("llama4.context_length", hc.max_position_embeddings);
    u32("llama4.embedding_length", hc.hidden_size);
    u32("llama4.feed_forward_length", hc.intermediate_size_mlp);
    u32("llama4.attention.head_count", hc.num_attention_heads);
    u32("llama4.attention.head_count_kv", hc.num_key_value_heads);
    w.add("llama4.rope.freq_base", static_cast<float>(hc.rope_theta));
    w.add("llama4.attention.layer_norm_rms_epsilon", static_cast<float>(hc.rms_norm_eps));
    u32("llama4.expert_count", hc.num_local_experts);
    u32("llama4.expert_used_count", hc.num_experts_per_tok);
    u32("llama4.attention.key_length", hc.head_dim);
    u32("llama4.attention.value_length", hc.head_dim);
    u32("llama4.vocab_size", hc.vocab_size);
    u32("llama4.rope.dimension_count", hc.head_dim);
    if (hc.rope_scaling && hc.rope_scaling->type == "linear") {
        w.add("llama4.rope.scaling.type", "linear");
        w.add("llama4.rope.scaling.factor", static_cast<float>(hc.rope_scaling->factor));
    }
    u32("llama4.interleave_moe_layer_step", step);
    u32("llama4.expert_feed_forward_length", hc.intermediate_size);

    // What llama.cpp would run the file with, against what the config says.
    const Llama4Config want = Llama4::config_from_hf(hc);
    const bool any_chunked = want.chunk_size > 0 && std::find(want.chunked_layers.begin(), want.chunked_layers.end(), true) != want.chunked_layers.end();
    // No chunking is llama.cpp's sliding_window 0 (its converter writes it when every layer_types
    // entry is full_attention; here also for a null attention_chunk_size, which llama.cpp's
    // converter does not look at).
    Llama4Config base = want;
    Llama4::apply_llama_cpp_defaults(base, !any_chunked);
    if (!any_chunked) u32(llama4_gguf::sliding_window, 0);
    else {
        if (want.chunk_size != base.chunk_size) u32(llama4_gguf::sliding_window, want.chunk_size);
        if (want.chunked_layers != base.chunked_layers) w.add_array(llama4_gguf::sliding_window_pattern, want.chunked_layers);
    }
    if (want.rope_layers != base.rope_layers) w.add_array(llama4_gguf::rope_layers, want.rope_layers);
    if (!want.temperature_tuning) {
        if (base.temperature_tuning) w.add(llama4_gguf::temperature_scale, 0.0f);
    } else {
        if (!base.temperature_tuning || want.attn_scale != base.attn_scale) w.add(llama4_gguf::temperature_scale, want.attn_scale);
        if (!base.temperature_tuning || want.floor_scale != base.floor_scale) u32(llama4_gguf::temperature_length, want.floor_scale);
    }
    if (want.qk_norm != base.qk_norm) w.add(llama4_gguf::use_qk_norm, want.qk_norm);

    // GGUF has one bos and one eos id; the other ids that end a turn are tokenizer facts.
    if (!hc.bos_token_ids.empty()) u32("tokenizer.ggml.bos_token_id", hc.bos_token_ids.front());
    if (!hc.eos_token_ids.empty()) u32("tokenizer.ggml.eos_token_id", hc.eos_token_ids.front());
}

namespace detail {

// Writes one row of floats as `out` (F32 / F16 / BF16 built in, other types through `encoder`).
inline void encode_float_row(GgmlType out, std::span<const float> row, std::span<std::byte> bytes, const RowEncoder& encoder) {
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
}

// Streams columns [col0, col0 + n) of each expert of a Hugging Face bank src [E, K, ld] as the
// GGUF bank [E, n, K]: output row (e, j) is column col0 + j of expert e's [K, ld] matrix — what
// convert_hf_to_gguf.py's transpose(-1, -2) (and split of gate_up_proj) gives. A blocked
// transpose: `block` output rows at a time, the source read row by row.
inline Writer::Source transposed_experts_source(const Weight& src, Index col0, Index n, GgmlType out, RowEncoder encoder) {
    return [src, col0, n, out, encoder = std::move(encoder)](const Writer::Sink& sink) {
        const Index E = src.shape[0], K = src.shape[1], ld = src.shape[2];
        constexpr Index block = 64;
        const GgmlTypeInfo& info = ggml_type_info(out);
        std::vector<float> rows(static_cast<std::size_t>(std::min(block, n) * K));
        std::vector<std::byte> bytes(static_cast<std::size_t>(K) / info.block_size * info.block_bytes);
        visit_float_weight(src, [&](auto view) {
            const auto* p = view.data();
            for (Index e = 0; e < E; ++e)
                for (Index j0 = 0; j0 < n; j0 += block) {
                    const Index nb = std::min(block, n - j0);
                    for (Index k = 0; k < K; ++k) {
                        const auto* in = p + (e * K + k) * ld + col0 + j0;
                        for (Index j = 0; j < nb; ++j) rows[static_cast<std::size_t>(j * K + k)] = convert<float>(in[j]);
                    }
                    for (Index j = 0; j < nb; ++j) {
                        encode_float_row(out, std::span<const float>(rows.data() + j * K, static_cast<std::size_t>(K)), bytes, encoder);
                        sink(bytes);
                    }
                }
        });
    };
}

}  // namespace detail

inline void add_llama4_tensors(Writer& w, const hf::Llama4TextConfig& hc, const safetensors::Checkpoint& ckpt, const ConvertOptions& options) {
    const Llama4Config c = Llama4::config_from_hf(hc);
    const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, E = c.n_experts, F = c.expert_ffn_dim,
                FD = c.dense_ffn_dim, V = c.vocab_size;
    if (HD % 2 != 0) fail("gguf: head_dim ", HD, " is odd; RoPE pairs need an even head_dim");

    // The text model's prefix, as Llama4::from_checkpoint finds it.
    std::string prefix, head_name;
    for (const auto& [p, head] : {std::pair<std::string, std::string>{"language_model.model.", "language_model.lm_head.weight"},
                                  {"model.language_model.", "lm_head.weight"},
                                  {"model.", "lm_head.weight"}})
        if (ckpt.contains(p + "embed_tokens.weight")) {
            prefix = p;
            head_name = head;
            break;
        }
    if (prefix.empty()) fail("gguf: the checkpoint has no 'language_model.model.embed_tokens.weight' nor 'model.embed_tokens.weight'");

    std::set<std::string> used;
    bool encoded = false;  // any tensor written by an encoder (a quantizer)
    auto choose = [&](const std::string& name, const Shape& shape, DType source) {
        if (options.choose_type) return options.choose_type(name, shape, source);
        // convert_hf_to_gguf.py: 1-D tensors and norms F32; "some tensor types are always in
        // float32": FFN_GATE_INP (the router) among them.
        if (shape.rank() <= 1 || name.ends_with("ffn_gate_inp.weight")) return GgmlType::f32;
        return to_ggml(options.dtype.value_or(source));
    };
    auto encoder_for = [&](const std::string& name, GgmlType out) {
        if (out == GgmlType::f32 || out == GgmlType::f16 || out == GgmlType::bf16) return RowEncoder{};
        const auto it = options.encoders.find(out);
        if (it == options.encoders.end() || !it->second)
            fail("gguf: tensor '", name, "' is to be stored as ", ggml_type_name(out),
                 ", but ConvertOptions::encoders has no encoder for it (built in: F32, F16, BF16)");
        encoded = true;
        return it->second;
    };
    auto source = [&](const std::string& hf_name, const Shape& shape) {
        if (!ckpt.contains(hf_name)) fail("gguf: the checkpoint has no tensor '", hf_name, "'");
        const Weight src = ckpt.weight(hf_name);
        src.expect_shape(shape);
        if (src.dtype != DType::f32 && src.dtype != DType::f16 && src.dtype != DType::bf16)
            fail("gguf: tensor '", hf_name, "' has dtype ", src.dtype, "; the converter reads f32, f16 and bf16");
        used.insert(hf_name);
        return src;
    };
    // A tensor as it is (only its name and perhaps its type change).
    auto add = [&](const std::string& gguf_name, const std::string& hf_name, const Shape& shape) {
        const Weight src = source(hf_name, shape);
        const GgmlType out = choose(gguf_name, shape, src.dtype);
        w.add_tensor(gguf_name, out, shape, detail::convert_source(src, out, 0, encoder_for(gguf_name, out)));
    };
    // Columns [col0, col0 + n) of an expert bank [E, K, ld], transposed to [E, n, K].
    auto add_experts = [&](const std::string& gguf_name, const Weight& src, Index col0, Index n) {
        const Shape shape{src.shape[0], n, src.shape[1]};
        const GgmlType out = choose(gguf_name, shape, src.dtype);
        w.add_tensor(gguf_name, out, shape, detail::transposed_experts_source(src, col0, n, out, encoder_for(gguf_name, out)));
    };

    add("token_embd.weight", prefix + "embed_tokens.weight", Shape{V, D});
    if (hc.rope_scaling && hc.rope_scaling->type == "llama3") {
        // The factors llama.cpp's LlamaModel.generate_extra_tensors writes. It takes the original
        // context from a top-level original_max_position_embeddings (default 8192) rather than
        // from rope_scaling; Meta's configs say 8192 in rope_scaling, so the two agree there, and
        // here the config's own value is used, as transformers uses it.
        hf::LlamaConfig lc;
        lc.rope_scaling = hc.rope_scaling;
        lc.rope_theta = hc.rope_theta;
        lc.head_dim = HD;
        auto factors = std::make_shared<std::vector<float>>(llama3_rope_factors(lc));
        w.add_tensor("rope_freqs.weight", GgmlType::f32, Shape{static_cast<Index>(factors->size())},
                     [factors](const Writer::Sink& sink) { sink(std::as_bytes(std::span(*factors))); });
    }
    for (Index l = 0; l < c.n_layers; ++l) {
        const std::string p = prefix + "layers." + std::to_string(l) + ".", g = "blk." + std::to_string(l) + ".";
        add(g + "attn_norm.weight", p + "input_layernorm.weight", Shape{D});
        // Not permuted: Llama4Model sets undo_permute = False.
        add(g + "attn_q.weight", p + "self_attn.q_proj.weight", Shape{H * HD, D});
        add(g + "attn_k.weight", p + "self_attn.k_proj.weight", Shape{KV * HD, D});
        add(g + "attn_v.weight", p + "self_attn.v_proj.weight", Shape{KV * HD, D});
        add(g + "attn_output.weight", p + "self_attn.o_proj.weight", Shape{D, H * HD});
        add(g + "ffn_norm.weight", p + "post_attention_layernorm.weight", Shape{D});
        const std::string f = p + "feed_forward.";
        if (c.moe_layers[static_cast<std::size_t>(l)]) {
            add(g + "ffn_gate_inp.weight", f + "router.weight", Shape{E, D});
            // gate_up_proj [E, D, 2F] (gate columns first) → ffn_gate_exps, ffn_up_exps [E, F, D];
            // down_proj [E, F, D] → ffn_down_exps [E, D, F] (Llama4Model.modify_tensors).
            const Weight gate_up = source(f + "experts.gate_up_proj", Shape{E, D, 2 * F});
            const Weight down = source(f + "experts.down_proj", Shape{E, F, D});
            add_experts(g + "ffn_gate_exps.weight", gate_up, 0, F);
            add_experts(g + "ffn_up_exps.weight", gate_up, F, F);
            add_experts(g + "ffn_down_exps.weight", down, 0, D);
            add(g + "ffn_gate_shexp.weight", f + "shared_expert.gate_proj.weight", Shape{F, D});
            add(g + "ffn_up_shexp.weight", f + "shared_expert.up_proj.weight", Shape{F, D});
            add(g + "ffn_down_shexp.weight", f + "shared_expert.down_proj.weight", Shape{D, F});
        } else {
            add(g + "ffn_gate.weight", f + "gate_proj.weight", Shape{FD, D});
            add(g + "ffn_up.weight", f + "up_proj.weight", Shape{FD, D});
            add(g + "ffn_down.weight", f + "down_proj.weight", Shape{D, FD});
        }
    }
    add("output_norm.weight", prefix + "norm.weight", Shape{D});
    // Tied models have no output.weight in GGUF; a checkpoint that stores the head anyway keeps it.
    if (!c.tied_embeddings || ckpt.contains(head_name)) add("output.weight", head_name, Shape{V, D});

    // The rest must be what the text model never reads.
    auto unread = [&](std::string_view n) {
        // Llama4Model.modify_tensors drops the vision tower and the projector (mmproj's tensors).
        if (n.find("vision_model") != std::string_view::npos || n.find("multi_modal_projector") != std::string_view::npos) return true;
        if (n.ends_with(".rotary_emb.inv_freq")) return true;  // recomputed from the config
        // The feed-forward weights of the other kind (dense on MoE layers, experts on dense ones),
        // which some checkpoints carry; llama.cpp's loader would refuse a file holding them.
        const std::string layers = prefix + "layers.";
        if (!n.starts_with(layers)) return false;
        n.remove_prefix(layers.size());
        const auto dot = n.find('.');
        if (dot == 0 || dot == std::string_view::npos || !std::all_of(n.begin(), n.begin() + static_cast<std::ptrdiff_t>(dot), [](char ch) { return ch >= '0' && ch <= '9'; }))
            return false;
        if (dot > 9 || std::stol(std::string(n.substr(0, dot))) >= c.n_layers) return false;
        return n.substr(dot + 1).starts_with("feed_forward.");
    };
    for (const std::string& name : ckpt.names())
        if (!used.count(name) && !unread(name))
            fail("gguf: the checkpoint's tensor '", name, "' has no place in a GGUF llama4 file");
    if (encoded) w.add("general.quantization_version", std::uint32_t(2));  // ggml's, as llama.cpp's quantizer writes it
}

inline void convert_llama4_hf_to_gguf(const std::string& hf_path, const std::string& gguf_path, const ConvertOptions& options) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(hf_path)) fail("gguf: convert_llama4_hf_to_gguf: '", hf_path, "' is not a Hugging Face model directory");
    const hf::Llama4TextConfig config = hf::load_llama4_config(hf_path);
    const safetensors::Checkpoint checkpoint(hf_path);
    Writer w;
    std::string name = options.name;
    if (name.empty()) {
        fs::path dir = fs::absolute(fs::path(hf_path)).lexically_normal();
        if (dir.filename().empty()) dir = dir.parent_path();
        name = dir.filename().string();
    }
    add_llama4_metadata(w, config, name);
    if (options.alignment != default_alignment) w.set_alignment(options.alignment);
    add_llama4_tensors(w, config, checkpoint, options);
    w.write(gguf_path);
}

}  // namespace weft::gguf
