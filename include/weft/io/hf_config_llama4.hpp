// weft/io/hf_config_llama4.hpp — reads the text part of a Hugging Face Llama 4 config.json:
// Llama4ForConditionalGeneration (model_type "llama4", the text model under "text_config") or
// Llama4ForCausalLM (model_type "llama4_text"), with configuration_llama4.py's defaults.
#pragma once

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "weft/core/error.hpp"
#include "weft/io/hf_config.hpp"

namespace weft::hf {

struct Llama4TextConfig {
    std::string model_type;  // "llama4" (text_config nested) or "llama4_text"
    bool nested = false;     // read from "text_config" of a Llama4ForConditionalGeneration config
    long vocab_size = 202048, hidden_size = 5120,
         intermediate_size = 8192,       // each expert's (and the shared expert's) hidden size
         intermediate_size_mlp = 16384,  // the dense MLP's hidden size (layers without MoE)
         num_hidden_layers = 48, num_attention_heads = 40, num_key_value_heads = 8, head_dim = 128,
         max_position_embeddings = 4096 * 32, num_local_experts = 16, num_experts_per_tok = 1,
         interleave_moe_layer_step = 1, no_rope_layer_interval = 4,
         attention_chunk_size = 8192,  // 0: no chunking (the config gave null)
         floor_scale = 8192;
    double rms_norm_eps = 1e-5, rope_theta = 500000, attn_scale = 0.1;
    std::optional<RopeScalingConfig> rope_scaling;
    bool use_qk_norm = true, attn_temperature_tuning = true, tie_word_embeddings = false, attention_bias = false;
    std::vector<int> moe_layers;            // indices of the MoE layers (filled in from the step)
    std::vector<int> no_rope_layers;        // per layer: 1 = the layer USES RoPE, 0 = NoPE
    std::vector<bool> chunked_layers;       // per layer: chunked-local attention ("chunked_attention")
    std::vector<long> bos_token_ids, eos_token_ids;
    std::string torch_dtype;
};

inline Llama4TextConfig parse_llama4_config(const std::string& json_text, const std::string& origin);
// `path` is a config.json or a directory containing one.
inline Llama4TextConfig load_llama4_config(const std::string& path);

// =============================================================================================
// Implementation
// =============================================================================================

namespace detail {

// A list of non-negative integers; `what` says what they are for in the message.
inline std::vector<long> int_list(const ConfigReader& r, const char* key, const char* what) {
    std::vector<long> out;
    const json* v = r.get(key);
    if (!v) return out;
    if (!v->is_array()) r.bad(key, what, *v);
    for (const json& x : *v) {
        if (!x.is_number_unsigned()) r.bad(key, what, *v);
        out.push_back(static_cast<long>(x.get<std::uint64_t>()));
    }
    return out;
}

// transformers keeps whatever the file says and tests it for truth: Meta's Scout and Maverick
// configs write "attn_temperature_tuning": 4. Accept true/false and integers (non-zero = on).
inline bool truthy(const ConfigReader& r, const char* key, bool fallback) {
    const json* v = r.get(key);
    if (!v) return fallback;
    if (v->is_boolean()) return v->get<bool>();
    if (v->is_number_integer()) return v->get<std::int64_t>() != 0;
    r.bad(key, "true, false or an integer", *v);
}

}  // namespace detail

inline Llama4TextConfig parse_llama4_config(const std::string& json_text, const std::string& origin) {
    using detail::json;
    if (const auto z = json_text.find('\0'); z != std::string::npos)
        fail(origin, ": not valid JSON: it holds a NUL byte at offset ", z);
    json root;
    try {
        root = json::parse(json_text);
    } catch (const json::exception& e) {
        fail(origin, ": not valid JSON: ", e.what());
    }
    if (!root.is_object()) fail(origin, ": the config is a JSON ", root.type_name(), ", expected an object");
    const detail::ConfigReader top(root, origin);
    Llama4TextConfig c;
    c.model_type = top.string("model_type");
    const json* text = &root;
    std::string prefix;
    if (c.model_type == "llama4") {
        text = top.get("text_config");
        if (!text) top.missing("text_config", "a Llama4ForConditionalGeneration config nests the text model there");
        if (!text->is_object()) top.bad("text_config", "an object", *text);
        c.nested = true;
        prefix = "text_config ";
    } else if (c.model_type != "llama4_text") {
        fail(origin, ": model_type is \"", c.model_type, "\", expected \"llama4\" or \"llama4_text\" (a Llama 4 config)");
    }
    const detail::ConfigReader r(*text, origin, prefix);
    if (r.has("hidden_act") && r.string("hidden_act") != "silu")
        fail(origin, ": ", prefix, "hidden_act is \"", r.string("hidden_act"), "\", expected \"silu\" (Llama 4's SwiGLU)");

    c.vocab_size = r.positive_int("vocab_size", c.vocab_size);
    c.hidden_size = r.positive_int("hidden_size", c.hidden_size);
    c.intermediate_size = r.positive_int("intermediate_size", c.intermediate_size);
    c.intermediate_size_mlp = r.positive_int("intermediate_size_mlp", c.intermediate_size_mlp);
    c.num_hidden_layers = r.positive_int("num_hidden_layers", c.num_hidden_layers);
    c.num_attention_heads = r.positive_int("num_attention_heads", c.num_attention_heads);
    // configuration_llama4.py: num_key_value_heads defaults to 8 and an explicit null means
    // num_attention_heads; head_dim defaults to 128 and null means hidden_size / heads.
    const auto present_null = [&](const char* key) { return text->contains(key) && (*text)[key].is_null(); };
    c.num_key_value_heads = present_null("num_key_value_heads") ? c.num_attention_heads : r.positive_int("num_key_value_heads", 8);
    if (c.num_attention_heads % c.num_key_value_heads != 0)
        fail(origin, ": ", prefix, "num_attention_heads (", c.num_attention_heads, ") must be a multiple of num_key_value_heads (",
             c.num_key_value_heads, ")");
    if (present_null("head_dim")) {
        if (c.hidden_size % c.num_attention_heads != 0)
            fail(origin, ": ", prefix, "hidden_size (", c.hidden_size, ") must be a multiple of num_attention_heads (",
                 c.num_attention_heads, ") when head_dim is null");
        c.head_dim = c.hidden_size / c.num_attention_heads;
    } else {
        c.head_dim = r.positive_int("head_dim", 128);
    }
    c.max_position_embeddings = r.positive_int("max_position_embeddings", c.max_position_embeddings);
    c.rms_norm_eps = r.positive_number("rms_norm_eps", 1e-5);

    c.num_local_experts = r.positive_int("num_local_experts", c.num_local_experts);
    c.num_experts_per_tok = r.positive_int("num_experts_per_tok", c.num_experts_per_tok);
    if (c.num_experts_per_tok > c.num_local_experts)
        fail(origin, ": ", prefix, "num_experts_per_tok (", c.num_experts_per_tok, ") exceeds num_local_experts (", c.num_local_experts, ")");
    c.interleave_moe_layer_step = r.positive_int("interleave_moe_layer_step", 1);
    // moe_layers overrides the step; else range(step - 1, L, step).
    if (r.has("moe_layers")) {
        for (long l : detail::int_list(r, "moe_layers", "a list of layer indices or null")) {
            if (l >= c.num_hidden_layers) fail(origin, ": ", prefix, "moe_layers names layer ", l, " of ", c.num_hidden_layers);
            c.moe_layers.push_back(static_cast<int>(l));
        }
    } else {
        for (long l = c.interleave_moe_layer_step - 1; l < c.num_hidden_layers; l += c.interleave_moe_layer_step)
            c.moe_layers.push_back(static_cast<int>(l));
    }

    // Positions: rope_theta + rope_scaling (the files Meta published), or transformers 5's
    // rope_parameters holding both.
    if (const json* p = r.get("rope_parameters")) {
        if (!p->is_object()) r.bad("rope_parameters", "an object or null", *p);
        const detail::ConfigReader rp(*p, origin, prefix + "rope_parameters ");
        c.rope_theta = rp.positive_number("rope_theta", 500000);
        if (rp.has("rope_type") || rp.has("type")) {
            const RopeScalingConfig s = detail::parse_rope_scaling(*p, origin);
            if (s.type != "default") c.rope_scaling = s;
        }
    } else {
        c.rope_theta = r.positive_number("rope_theta", 500000);
        if (const json* s = r.get("rope_scaling")) {
            const RopeScalingConfig sc = detail::parse_rope_scaling(*s, origin);
            if (sc.type != "default") c.rope_scaling = sc;
        }
    }
    c.use_qk_norm = r.boolean("use_qk_norm", true);
    // no_rope_layers: a missing, null or EMPTY list takes the default (transformers tests it for
    // truth), int((i + 1) % no_rope_layer_interval != 0); 1 means the layer uses RoPE.
    c.no_rope_layer_interval = r.positive_int("no_rope_layer_interval", 4);
    for (long v : detail::int_list(r, "no_rope_layers", "a list of 0/1 flags or null")) {
        if (v > 1) fail(origin, ": ", prefix, "no_rope_layers holds ", v, "; expected 0 (NoPE) or 1 (RoPE)");
        c.no_rope_layers.push_back(static_cast<int>(v));
    }
    if (c.no_rope_layers.empty())
        for (long i = 0; i < c.num_hidden_layers; ++i) c.no_rope_layers.push_back((i + 1) % c.no_rope_layer_interval != 0 ? 1 : 0);
    if (static_cast<long>(c.no_rope_layers.size()) < c.num_hidden_layers)
        fail(origin, ": ", prefix, "no_rope_layers has ", c.no_rope_layers.size(), " entries for ", c.num_hidden_layers, " layers");
    // attention_chunk_size: absent takes 8192; null means no chunking.
    c.attention_chunk_size = present_null("attention_chunk_size") ? 0 : r.positive_int("attention_chunk_size", 8192);
    // layer_types (newer transformers) names each layer's mask; by default chunked where RoPE is used.
    if (const json* lt = r.get("layer_types")) {
        if (!lt->is_array() || static_cast<long>(lt->size()) < c.num_hidden_layers)
            r.bad("layer_types", "a list of \"chunked_attention\" / \"full_attention\", one per layer", *lt);
        for (long i = 0; i < c.num_hidden_layers; ++i) {
            const json& t = (*lt)[static_cast<std::size_t>(i)];
            if (!t.is_string() || (t != "chunked_attention" && t != "full_attention"))
                r.bad("layer_types", "a list of \"chunked_attention\" / \"full_attention\", one per layer", *lt);
            c.chunked_layers.push_back(t == "chunked_attention");
        }
    } else {
        for (long i = 0; i < c.num_hidden_layers; ++i) c.chunked_layers.push_back(c.no_rope_layers[static_cast<std::size_t>(i)] != 0);
    }
    c.attn_temperature_tuning = detail::truthy(r, "attn_temperature_tuning", true);
    c.floor_scale = r.positive_int("floor_scale", 8192);
    {
        const json* v = r.get("attn_scale");
        if (v && (!v->is_number() || !std::isfinite(v->get<double>()))) r.bad("attn_scale", "a number", *v);
        c.attn_scale = v ? v->get<double>() : 0.1;
    }
    c.attention_bias = r.boolean("attention_bias", false);
    // Tying: the text config's flag, else the outer config's (both default to false).
    c.tie_word_embeddings = r.has("tie_word_embeddings") ? r.boolean("tie_word_embeddings", false) : top.boolean("tie_word_embeddings", false);
    c.bos_token_ids = r.has("bos_token_id") ? r.token_ids("bos_token_id") : top.token_ids("bos_token_id");
    c.eos_token_ids = r.has("eos_token_id") ? r.token_ids("eos_token_id") : top.token_ids("eos_token_id");
    if (!text->contains("bos_token_id") && !root.contains("bos_token_id")) c.bos_token_ids = {1};
    if (!text->contains("eos_token_id") && !root.contains("eos_token_id")) c.eos_token_ids = {2};
    c.torch_dtype = r.has("torch_dtype") ? r.string("torch_dtype") : r.has("dtype") ? r.string("dtype")
                  : top.has("torch_dtype") ? top.string("torch_dtype") : top.string("dtype");
    return c;
}

inline Llama4TextConfig load_llama4_config(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p(path);
    if (fs::is_directory(p, ec)) p /= "config.json";
    const std::string where = p.string();
    if (!fs::is_regular_file(p, ec)) fail("hf: ", where, " does not exist or is not a regular file");
    const auto size = fs::file_size(p, ec);
    if (ec) fail("hf: cannot read ", where, ": ", ec.message());
    constexpr std::uintmax_t max_config_bytes = 16u << 20;
    if (size > max_config_bytes) fail("hf: ", where, " has ", size, " bytes; a config.json is far smaller (limit ", max_config_bytes, ")");
    std::ifstream in(p, std::ios::binary);
    std::string text(static_cast<std::size_t>(size), '\0');
    if (!in || !in.read(text.data(), static_cast<std::streamsize>(size))) fail("hf: cannot read ", where);
    return parse_llama4_config(text, where);
}

}  // namespace weft::hf
