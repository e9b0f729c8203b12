// Hugging Face config.json → LlamaConfig: real Llama 2, 3.1 and 3.2 configs, transformers'
// defaults, and an error for each way a config can be wrong.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <weft/io/hf_config.hpp>

namespace test_hf_config {

namespace {

using nlohmann::json;
using weft::hf::LlamaConfig;
using weft::hf::parse_llama_config;

// meta-llama/Llama-3.2-1B-Instruct, as published.
const char* llama32_1b = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

// meta-llama/Llama-2-7b-hf: no head_dim, rope_scaling null, eos a single id.
const char* llama2_7b = R"({
  "_name_or_path": "meta-llama/Llama-2-7b-hf",
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 11008,
  "max_position_embeddings": 4096,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 32,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "tie_word_embeddings": false,
  "torch_dtype": "float16",
  "transformers_version": "4.31.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
})";

// meta-llama/Llama-3.1-8B: llama3 scaling with factor 8, legacy-free rope_type key.
const char* llama31_8b = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

// The five fields a Llama config must give.
json minimal() {
    return {{"vocab_size", 32000}, {"hidden_size", 512}, {"intermediate_size", 1376},
            {"num_hidden_layers", 4}, {"num_attention_heads", 8}};
}

// The message parse_llama_config throws for `config` (origin "config.json"), or a marker.
std::string error_of(const json& config) {
    try {
        parse_llama_config(config.dump(), "config.json");
    } catch (const weft::Error& e) {
        return e.what();
    }
    return "<no error thrown>";
}
std::string error_of_text(const std::string& text) {
    try {
        parse_llama_config(text, "config.json");
    } catch (const weft::Error& e) {
        return e.what();
    }
    return "<no error thrown>";
}

json with(json base, const std::string& key, const json& value) {
    base[key] = value;
    return base;
}
json without(json base, const std::string& key) {
    base.erase(key);
    return base;
}

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("hf config: Llama 3.2 1B reads with GQA, head_dim, llama3 scaling, tied embeddings and an eos list") {
    const LlamaConfig c = parse_llama_config(llama32_1b, "Llama-3.2-1B/config.json");
    CHECK(c.architectures == std::vector<std::string>{"LlamaForCausalLM"});
    CHECK(c.model_type == "llama");
    CHECK(c.vocab_size == 128256);
    CHECK(c.hidden_size == 2048);
    CHECK(c.intermediate_size == 8192);
    CHECK(c.num_hidden_layers == 16);
    CHECK(c.num_attention_heads == 32);
    CHECK(c.num_key_value_heads == 8);
    CHECK(c.head_dim == 64);
    CHECK(c.max_position_embeddings == 131072);
    CHECK(c.rms_norm_eps == 1e-5);
    CHECK(c.rope_theta == 500000.0);
    REQUIRE(c.rope_scaling.has_value());
    CHECK(c.rope_scaling->type == "llama3");
    CHECK(c.rope_scaling->factor == 32.0);
    CHECK(c.rope_scaling->low_freq_factor == 1.0);
    CHECK(c.rope_scaling->high_freq_factor == 4.0);
    CHECK(c.rope_scaling->original_max_position_embeddings == 8192.0);
    CHECK(c.tie_word_embeddings);
    CHECK_FALSE(c.attention_bias);
    CHECK_FALSE(c.mlp_bias);
    CHECK(c.bos_token_ids == std::vector<long>{128000});
    CHECK(c.eos_token_ids == std::vector<long>{128001, 128008, 128009});
    CHECK(c.torch_dtype == "bfloat16");
}

TEST_CASE("hf config: Llama 2 7B derives head_dim, has no rope scaling and a single eos id") {
    const LlamaConfig c = parse_llama_config(llama2_7b, "Llama-2-7b-hf/config.json");
    CHECK(c.vocab_size == 32000);
    CHECK(c.hidden_size == 4096);
    CHECK(c.intermediate_size == 11008);
    CHECK(c.num_key_value_heads == 32);
    CHECK(c.head_dim == 128);  // 4096 / 32
    CHECK(c.max_position_embeddings == 4096);
    CHECK(c.rope_theta == 10000.0);  // absent: transformers' default
    CHECK_FALSE(c.rope_scaling.has_value());
    CHECK_FALSE(c.tie_word_embeddings);
    CHECK(c.bos_token_ids == std::vector<long>{1});
    CHECK(c.eos_token_ids == std::vector<long>{2});
    CHECK(c.torch_dtype == "float16");
}

TEST_CASE("hf config: Llama 3.1 8B carries llama3 scaling with factor 8") {
    const LlamaConfig c = parse_llama_config(llama31_8b, "Llama-3.1-8B/config.json");
    CHECK(c.intermediate_size == 14336);
    CHECK(c.num_key_value_heads == 8);
    CHECK(c.head_dim == 128);
    REQUIRE(c.rope_scaling.has_value());
    CHECK(c.rope_scaling->type == "llama3");
    CHECK(c.rope_scaling->factor == 8.0);
    CHECK(c.rope_scaling->original_max_position_embeddings == 8192.0);
    CHECK(c.eos_token_ids == std::vector<long>{128001});
}

TEST_CASE("hf config: absent and null fields take transformers' LlamaConfig defaults") {
    const LlamaConfig c = parse_llama_config(minimal().dump(), "config.json");
    CHECK(c.architectures.empty());
    CHECK(c.model_type.empty());
    CHECK(c.num_key_value_heads == 8);  // = num_attention_heads
    CHECK(c.head_dim == 64);            // = 512 / 8
    CHECK(c.max_position_embeddings == 2048);
    CHECK(c.rms_norm_eps == 1e-6);
    CHECK(c.rope_theta == 10000.0);
    CHECK_FALSE(c.rope_scaling.has_value());
    CHECK_FALSE(c.tie_word_embeddings);
    CHECK_FALSE(c.attention_bias);
    CHECK_FALSE(c.mlp_bias);
    CHECK(c.bos_token_ids.empty());
    CHECK(c.eos_token_ids.empty());
    CHECK(c.torch_dtype.empty());

    json nulls = minimal();
    for (const char* key : {"num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_theta",
                            "rope_scaling", "tie_word_embeddings", "bos_token_id", "eos_token_id", "torch_dtype"})
        nulls[key] = nullptr;
    const LlamaConfig n = parse_llama_config(nulls.dump(), "config.json");
    CHECK(n.num_key_value_heads == 8);
    CHECK(n.head_dim == 64);
    CHECK(n.max_position_embeddings == 2048);
    CHECK_FALSE(n.rope_scaling.has_value());
    CHECK(n.eos_token_ids.empty());
}

TEST_CASE("hf config: token ids may be an id, a list of ids or null") {
    CHECK(parse_llama_config(with(minimal(), "bos_token_id", 1).dump(), "c").bos_token_ids == std::vector<long>{1});
    CHECK(parse_llama_config(with(minimal(), "eos_token_id", {2, 32000}).dump(), "c").eos_token_ids == std::vector<long>{2, 32000});
    CHECK(parse_llama_config(with(minimal(), "eos_token_id", json::array()).dump(), "c").eos_token_ids.empty());
    CHECK(parse_llama_config(with(minimal(), "eos_token_id", nullptr).dump(), "c").eos_token_ids.empty());
}

TEST_CASE("hf config: rope_scaling accepts default, linear and the legacy 'type' key") {
    const LlamaConfig d = parse_llama_config(with(minimal(), "rope_scaling", {{"rope_type", "default"}}).dump(), "c");
    REQUIRE(d.rope_scaling.has_value());
    CHECK(d.rope_scaling->type == "default");
    CHECK(d.rope_scaling->factor == 1.0);
    const LlamaConfig l = parse_llama_config(with(minimal(), "rope_scaling", {{"type", "linear"}, {"factor", 2.0}}).dump(), "c");
    CHECK(l.rope_scaling->type == "linear");
    CHECK(l.rope_scaling->factor == 2.0);
    // rope_type wins over the legacy key, as in transformers.
    const LlamaConfig both = parse_llama_config(
        with(minimal(), "rope_scaling", {{"type", "yarn"}, {"rope_type", "linear"}, {"factor", 4}}).dump(), "c");
    CHECK(both.rope_scaling->type == "linear");
    // Equal low and high frequency factors are allowed (the RoPE code guards the division).
    const LlamaConfig eq = parse_llama_config(
        with(minimal(), "rope_scaling", {{"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 2},
                                         {"high_freq_factor", 2}, {"original_max_position_embeddings", 8192}}).dump(), "c");
    CHECK(eq.rope_scaling->low_freq_factor == eq.rope_scaling->high_freq_factor);
}

TEST_CASE("hf config: head_dim may be given when hidden_size is not a multiple of the heads") {
    json c = minimal();
    c["hidden_size"] = 500;
    c["head_dim"] = 64;
    CHECK(parse_llama_config(c.dump(), "c").head_dim == 64);
    c["torch_dtype"] = nullptr;
    c["dtype"] = "bfloat16";  // the name newer transformers write
    CHECK(parse_llama_config(c.dump(), "c").torch_dtype == "bfloat16");
}

TEST_CASE("hf config: every size must be a positive integer, and the message says which and what it got") {
    CHECK(error_of(with(minimal(), "num_attention_heads", "abc")) ==
          "config.json: 'num_attention_heads' must be a positive integer, got \"abc\"");
    CHECK(error_of(with(minimal(), "hidden_size", 0)) == "config.json: 'hidden_size' must be a positive integer, got 0");
    CHECK(error_of(with(minimal(), "vocab_size", -5)) == "config.json: 'vocab_size' must be a positive integer, got -5");
    CHECK(error_of(with(minimal(), "intermediate_size", 1376.5)) ==
          "config.json: 'intermediate_size' must be a positive integer, got 1376.5");
    CHECK(error_of(with(minimal(), "num_hidden_layers", 4.0)) ==
          "config.json: 'num_hidden_layers' must be a positive integer, got 4.0");
    CHECK(error_of(with(minimal(), "num_hidden_layers", true)) ==
          "config.json: 'num_hidden_layers' must be a positive integer, got true");
    CHECK(error_of(with(minimal(), "num_key_value_heads", {8})) ==
          "config.json: 'num_key_value_heads' must be a positive integer, got [8]");
    CHECK(error_of(with(minimal(), "head_dim", 0)) == "config.json: 'head_dim' must be a positive integer, got 0");
    CHECK(error_of(with(minimal(), "max_position_embeddings", "4k")) ==
          "config.json: 'max_position_embeddings' must be a positive integer, got \"4k\"");
    CHECK(has(error_of(with(minimal(), "vocab_size", json::parse("18446744073709551615"))), "'vocab_size' must be a positive integer"));
}

TEST_CASE("hf config: each required size missing or null is named") {
    for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"}) {
        CAPTURE(key);
        CHECK(error_of(without(minimal(), key)) ==
              std::string("config.json: '") + key + "' is missing; a Llama config.json must give it");
        CHECK(has(error_of(with(minimal(), key, nullptr)), std::string("'") + key + "' is missing"));
    }
}

TEST_CASE("hf config: head counts must divide, and hidden_size must split into heads when head_dim is absent") {
    CHECK(error_of(with(minimal(), "num_key_value_heads", 3)) ==
          "config.json: num_attention_heads (8) must be a multiple of num_key_value_heads (3)");
    CHECK(error_of(with(minimal(), "num_key_value_heads", 16)) ==
          "config.json: num_attention_heads (8) must be a multiple of num_key_value_heads (16)");
    CHECK(error_of(with(minimal(), "hidden_size", 500)) ==
          "config.json: hidden_size (500) must be a multiple of num_attention_heads (8) when head_dim is not given");
}

TEST_CASE("hf config: rms_norm_eps and rope_theta must be positive numbers") {
    CHECK(error_of(with(minimal(), "rms_norm_eps", 0)) == "config.json: 'rms_norm_eps' must be a positive number, got 0");
    CHECK(error_of(with(minimal(), "rms_norm_eps", -1e-5)) == "config.json: 'rms_norm_eps' must be a positive number, got -1e-05");
    CHECK(error_of(with(minimal(), "rms_norm_eps", "1e-5")) ==
          "config.json: 'rms_norm_eps' must be a positive number, got \"1e-5\"");
    CHECK(error_of(with(minimal(), "rope_theta", 0.0)) == "config.json: 'rope_theta' must be a positive number, got 0.0");
    CHECK(error_of(with(minimal(), "rope_theta", false)) == "config.json: 'rope_theta' must be a positive number, got false");
}

TEST_CASE("hf config: rope_scaling must name a known type and, for llama3, all four positive fields") {
    const json llama3 = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    CHECK(error_of(with(minimal(), "rope_scaling", "llama3")) ==
          "config.json: 'rope_scaling' must be an object or null, got \"llama3\"");
    CHECK(error_of(with(minimal(), "rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}})) ==
          "config.json: rope_scaling type \"yarn\" is not supported (weft knows \"default\", \"linear\" and \"llama3\")");
    CHECK(has(error_of(with(minimal(), "rope_scaling", {{"type", "dynamic"}, {"factor", 2.0}})), "type \"dynamic\" is not supported"));
    CHECK(has(error_of(with(minimal(), "rope_scaling", {{"factor", 8.0}})), "rope_scaling 'rope_type' is missing"));
    CHECK(error_of(with(minimal(), "rope_scaling", {{"rope_type", 3}})) ==
          "config.json: rope_scaling 'rope_type' must be a string, got 3");
    CHECK(has(error_of(with(minimal(), "rope_scaling", {{"rope_type", "linear"}})), "rope_scaling 'factor' is missing"));
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
        CAPTURE(key);
        CHECK(error_of(with(minimal(), "rope_scaling", without(llama3, key))) ==
              std::string("config.json: rope_scaling '") + key +
                  "' is missing; llama3 scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings");
        json bad = llama3;
        bad[key] = 0;
        CHECK(error_of(with(minimal(), "rope_scaling", bad)) ==
              std::string("config.json: rope_scaling '") + key + "' must be a positive number, got 0");
        bad[key] = "8";
        CHECK(has(error_of(with(minimal(), "rope_scaling", bad)), "must be a positive number, got \"8\""));
    }
    json swapped = llama3;
    swapped["low_freq_factor"] = 4.0;
    swapped["high_freq_factor"] = 1.0;
    CHECK(error_of(with(minimal(), "rope_scaling", swapped)) ==
          "config.json: rope_scaling low_freq_factor (4) must not exceed high_freq_factor (1)");
}

TEST_CASE("hf config: flags, token ids and strings must have their JSON types") {
    CHECK(error_of(with(minimal(), "tie_word_embeddings", "true")) ==
          "config.json: 'tie_word_embeddings' must be true or false, got \"true\"");
    CHECK(error_of(with(minimal(), "attention_bias", 0)) == "config.json: 'attention_bias' must be true or false, got 0");
    CHECK(error_of(with(minimal(), "mlp_bias", "no")) == "config.json: 'mlp_bias' must be true or false, got \"no\"");
    CHECK(error_of(with(minimal(), "eos_token_id", "2")) ==
          "config.json: 'eos_token_id' must be a token id, a list of token ids or null, got \"2\"");
    CHECK(error_of(with(minimal(), "eos_token_id", {2, "x"})) ==
          "config.json: 'eos_token_id' must be a token id, a list of token ids or null, got [2,\"x\"]");
    CHECK(error_of(with(minimal(), "bos_token_id", -1)) ==
          "config.json: 'bos_token_id' must be a token id, a list of token ids or null, got -1");
    CHECK(error_of(with(minimal(), "bos_token_id", 1.5)) ==
          "config.json: 'bos_token_id' must be a token id, a list of token ids or null, got 1.5");
    CHECK(error_of(with(minimal(), "torch_dtype", 16)) == "config.json: 'torch_dtype' must be a string, got 16");
    CHECK(error_of(with(minimal(), "architectures", "LlamaForCausalLM")) ==
          "config.json: 'architectures' must be a list of strings, got \"LlamaForCausalLM\"");
    CHECK(error_of(with(minimal(), "architectures", {1})) == "config.json: 'architectures' must be a list of strings, got [1]");
    CHECK(error_of(with(minimal(), "model_type", 1)) == "config.json: 'model_type' must be a string, got 1");
}

TEST_CASE("hf config: only Llama (model_type llama, SwiGLU) configs are accepted") {
    CHECK(error_of(with(minimal(), "model_type", "mistral")) ==
          "config.json: model_type is \"mistral\", expected \"llama\" (weft reads LlamaForCausalLM configs)");
    CHECK(has(error_of(with(minimal(), "model_type", "llama4")), "model_type is \"llama4\""));
    CHECK(error_of(with(minimal(), "hidden_act", "gelu")) ==
          "config.json: hidden_act is \"gelu\", expected \"silu\" (Llama's SwiGLU)");
    // Old conversions spell the architecture differently and are still Llama.
    CHECK(parse_llama_config(with(with(minimal(), "architectures", {"LLaMAForCausalLM"}), "model_type", "llama").dump(), "c")
              .architectures.front() == "LLaMAForCausalLM");
}

TEST_CASE("hf config: text that is not a JSON object is refused with the file's name") {
    CHECK(has(error_of_text("{\"vocab_size\": 32000,"), "config.json: not valid JSON: "));
    CHECK(has(error_of_text(""), "config.json: not valid JSON"));
    CHECK(has(error_of_text(std::string("{}\0{\"x\":1}", 9)), "config.json: not valid JSON: it holds a NUL byte at offset 2"));
    CHECK(error_of_text("[1, 2]") == "config.json: the config is a JSON array, expected an object");
}

TEST_CASE("hf config: load_llama_config reads a config.json by path or from its directory") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::current_path() / "weft_test_hf_config";
    fs::remove_all(dir);
    fs::create_directories(dir);
    {
        std::ofstream out(dir / "config.json");
        out << llama32_1b;
    }
    CHECK(weft::hf::load_llama_config(dir.string()).hidden_size == 2048);
    CHECK(weft::hf::load_llama_config((dir / "config.json").string()).num_hidden_layers == 16);
    {
        std::ofstream out(dir / "config.json");
        out << with(minimal(), "hidden_size", "big").dump();
    }
    try {
        weft::hf::load_llama_config(dir.string());
        CHECK(false);
    } catch (const weft::Error& e) {
        CHECK(std::string(e.what()) == (dir / "config.json").string() + ": 'hidden_size' must be a positive integer, got \"big\"");
    }
    fs::remove(dir / "config.json");
    try {
        weft::hf::load_llama_config(dir.string());
        CHECK(false);
    } catch (const weft::Error& e) {
        CHECK(has(e.what(), (dir / "config.json").string() + " does not exist"));
    }
    fs::remove_all(dir);
}

}  // namespace test_hf_config
