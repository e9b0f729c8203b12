// weft/io/hf_config.hpp — reads a Hugging Face LlamaForCausalLM config.json into LlamaConfig,
// with transformers' defaults and a check of every field the model code relies on. Sits beside
// io/safetensors.hpp: the config says what shapes to expect, the checkpoint holds the weights.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "weft/core/error.hpp"

namespace weft::hf {

struct RopeScalingConfig {
    std::string type = "default";  // "default", "linear" or "llama3"
    double factor = 1, low_freq_factor = 1, high_freq_factor = 4, original_max_position_embeddings = 8192;
};

struct LlamaConfig {
    std::vector<std::string> architectures;
    std::string model_type;
    long vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0, num_attention_heads = 0,
         num_key_value_heads = 0,        // default: num_attention_heads (multi-head attention)
         head_dim = 0,                   // default: hidden_size / num_attention_heads
         max_position_embeddings = 2048;
    double rms_norm_eps = 1e-6, rope_theta = 10000;
    std::optional<RopeScalingConfig> rope_scaling;  // nullopt: plain RoPE
    bool tie_word_embeddings = false, attention_bias = false, mlp_bias = false;
    std::vector<long> bos_token_ids, eos_token_ids;  // empty when the config gives none
    std::string torch_dtype;                         // "" when absent
};

// Parses config.json text; `origin` names the file in error messages.
inline LlamaConfig parse_llama_config(const std::string& json_text, const std::string& origin);
// `path` is a config.json or a directory containing one.
inline LlamaConfig load_llama_config(const std::string& path);

// =============================================================================================
// Implementation
// =============================================================================================

namespace detail {

using json = nlohmann::json;

// Reads fields of one JSON object, failing with "<origin>: '<key>' must be ..., got <value>".
// A key that is absent or null takes the default, as transformers' `x if x is not None else d` does.
class ConfigReader {
public:
    ConfigReader(const json& object, const std::string& origin, std::string prefix = {})
        : obj_(object), origin_(origin), prefix_(std::move(prefix)) {}

    const json* get(const char* key) const {
        const auto it = obj_.find(key);
        return it == obj_.end() || it->is_null() ? nullptr : &*it;
    }
    bool has(const char* key) const { return get(key) != nullptr; }

    [[noreturn]] void bad(const char* key, const char* expected, const json& got) const {
        std::string shown = got.dump();
        if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
        fail(origin_, ": ", prefix_, "'", key, "' must be ", expected, ", got ", shown);
    }
    [[noreturn]] void missing(const char* key, const char* why) const {
        fail(origin_, ": ", prefix_, "'", key, "' is missing; ", why);
    }

    long positive_int(const char* key, long fallback) const {
        const json* v = get(key);
        return v ? positive_int(key, *v) : fallback;
    }
    long required_positive_int(const char* key) const {
        const json* v = get(key);
        if (!v) missing(key, "a Llama config.json must give it");
        return positive_int(key, *v);
    }
    double positive_number(const char* key, double fallback) const {
        const json* v = get(key);
        if (!v) return fallback;
        if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() <= 0)
            bad(key, "a positive number", *v);
        return v->get<double>();
    }
    double required_positive_number(const char* key, const char* why) const {
        if (!has(key)) missing(key, why);
        return positive_number(key, 0);
    }
    bool boolean(const char* key, bool fallback) const {
        const json* v = get(key);
        if (!v) return fallback;
        if (!v->is_boolean()) bad(key, "true or false", *v);
        return v->get<bool>();
    }
    std::string string(const char* key) const {
        const json* v = get(key);
        if (!v) return {};
        if (!v->is_string()) bad(key, "a string", *v);
        return v->get<std::string>();
    }
    // An id, a list of ids, or null (none).
    std::vector<long> token_ids(const char* key) const {
        const json* v = get(key);
        std::vector<long> out;
        if (!v) return out;
        const char* expected = "a token id, a list of token ids or null";
        auto id = [&](const json& x) {
            // Non-negative integer literals are the unsigned ones in nlohmann's model.
            if (!x.is_number_unsigned() || x.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<long>::max()))
                bad(key, expected, *v);
            return static_cast<long>(x.get<std::uint64_t>());
        };
        if (v->is_array()) {
            for (const json& x : *v) out.push_back(id(x));
        } else {
            out.push_back(id(*v));
        }
        return out;
    }

private:
    long positive_int(const char* key, const json& v) const {
        // Integers only: 2048.0 or "2048" would mean a hand-edited or foreign file.
        if (v.is_number_unsigned()) {
            const auto u = v.get<std::uint64_t>();
            if (u > 0 && u <= static_cast<std::uint64_t>(std::numeric_limits<long>::max())) return static_cast<long>(u);
        }
        bad(key, "a positive integer", v);
    }

    const json& obj_;
    const std::string& origin_;
    std::string prefix_;
};

inline RopeScalingConfig parse_rope_scaling(const json& v, const std::string& origin) {
    if (!v.is_object()) {
        std::string shown = v.dump();
        if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
        fail(origin, ": 'rope_scaling' must be an object or null, got ", shown);
    }
    const ConfigReader r(v, origin, "rope_scaling ");
    RopeScalingConfig out;
    // transformers reads "rope_type" and falls back to the legacy "type".
    const char* type_key = r.has("rope_type") ? "rope_type" : "type";
    if (!r.has(type_key)) r.missing("rope_type", "rope_scaling must say its type (\"default\", \"linear\" or \"llama3\")");
    out.type = r.string(type_key);
    if (out.type == "default") {
        // Plain RoPE: the other fields, if any, do not matter.
    } else if (out.type == "linear") {
        out.factor = r.required_positive_number("factor", "linear scaling divides positions by it");
    } else if (out.type == "llama3") {
        const char* why = "llama3 scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings";
        out.factor = r.required_positive_number("factor", why);
        out.low_freq_factor = r.required_positive_number("low_freq_factor", why);
        out.high_freq_factor = r.required_positive_number("high_freq_factor", why);
        out.original_max_position_embeddings = r.required_positive_number("original_max_position_embeddings", why);
        if (out.low_freq_factor > out.high_freq_factor)
            fail(origin, ": rope_scaling low_freq_factor (", out.low_freq_factor, ") must not exceed high_freq_factor (",
                 out.high_freq_factor, ")");
    } else {
        fail(origin, ": rope_scaling type \"", out.type, "\" is not supported (weft knows \"default\", \"linear\" and \"llama3\")");
    }
    return out;
}

}  // namespace detail

inline LlamaConfig parse_llama_config(const std::string& json_text, const std::string& origin) {
    using detail::json;
    // nlohmann would stop reading at a NUL byte; JSON text never holds one.
    if (const auto z = json_text.find('\0'); z != std::string::npos)
        fail(origin, ": not valid JSON: it holds a NUL byte at offset ", z);
    json root;
    try {
        root = json::parse(json_text);
    } catch (const json::exception& e) {
        fail(origin, ": not valid JSON: ", e.what());
    }
    if (!root.is_object()) fail(origin, ": the config is a JSON ", root.type_name(), ", expected an object");
    const detail::ConfigReader r(root, origin);
    LlamaConfig c;

    if (const json* a = r.get("architectures")) {
        if (!a->is_array()) r.bad("architectures", "a list of strings", *a);
        for (const json& x : *a) {
            if (!x.is_string()) r.bad("architectures", "a list of strings", *a);
            c.architectures.push_back(x.get<std::string>());
        }
    }
    // Only model_type is checked, not the architecture name: old conversions call it
    // "LLaMAForCausalLM" and are still Llama. Mistral, Llama 4 ("llama4", with a nested
    // text_config) and others differ in ways this struct does not describe.
    c.model_type = r.string("model_type");
    if (r.has("model_type") && c.model_type != "llama")
        fail(origin, ": model_type is \"", c.model_type, "\", expected \"llama\" (weft reads LlamaForCausalLM configs)");
    // The model code implements SwiGLU only.
    if (r.has("hidden_act") && r.string("hidden_act") != "silu")
        fail(origin, ": hidden_act is \"", r.string("hidden_act"), "\", expected \"silu\" (Llama's SwiGLU)");

    c.vocab_size = r.required_positive_int("vocab_size");
    c.hidden_size = r.required_positive_int("hidden_size");
    c.intermediate_size = r.required_positive_int("intermediate_size");
    c.num_hidden_layers = r.required_positive_int("num_hidden_layers");
    c.num_attention_heads = r.required_positive_int("num_attention_heads");
    c.num_key_value_heads = r.positive_int("num_key_value_heads", c.num_attention_heads);
    if (c.num_attention_heads % c.num_key_value_heads != 0)
        fail(origin, ": num_attention_heads (", c.num_attention_heads, ") must be a multiple of num_key_value_heads (",
             c.num_key_value_heads, ")");
    if (r.has("head_dim")) {
        c.head_dim = r.positive_int("head_dim", 0);
    } else {
        if (c.hidden_size % c.num_attention_heads != 0)
            fail(origin, ": hidden_size (", c.hidden_size, ") must be a multiple of num_attention_heads (",
                 c.num_attention_heads, ") when head_dim is not given");
        c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    c.max_position_embeddings = r.positive_int("max_position_embeddings", 2048);

    c.rms_norm_eps = r.positive_number("rms_norm_eps", 1e-6);
    c.rope_theta = r.positive_number("rope_theta", 10000);
    if (const json* s = r.get("rope_scaling")) c.rope_scaling = detail::parse_rope_scaling(*s, origin);

    c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
    c.attention_bias = r.boolean("attention_bias", false);
    c.mlp_bias = r.boolean("mlp_bias", false);
    c.bos_token_ids = r.token_ids("bos_token_id");
    c.eos_token_ids = r.token_ids("eos_token_id");
    // Newer transformers write "dtype" where older ones wrote "torch_dtype".
    c.torch_dtype = r.has("torch_dtype") ? r.string("torch_dtype") : r.string("dtype");
    return c;
}

inline LlamaConfig load_llama_config(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p(path);
    if (fs::is_directory(p, ec)) p /= "config.json";
    const std::string where = p.string();
    if (!fs::is_regular_file(p, ec)) fail("hf: ", where, " does not exist or is not a regular file");
    const auto size = fs::file_size(p, ec);
    if (ec) fail("hf: cannot read ", where, ": ", ec.message());
    // A config.json is a few kilobytes; refuse to slurp something that is clearly not one.
    constexpr std::uintmax_t max_config_bytes = 16u << 20;
    if (size > max_config_bytes) fail("hf: ", where, " has ", size, " bytes; a config.json is far smaller (limit ", max_config_bytes, ")");
    std::ifstream in(p, std::ios::binary);
    std::string text(static_cast<std::size_t>(size), '\0');
    if (!in || !in.read(text.data(), static_cast<std::streamsize>(size))) fail("hf: cannot read ", where);
    return parse_llama_config(text, where);
}

}  // namespace weft::hf
