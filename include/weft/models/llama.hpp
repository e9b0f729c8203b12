// weft/models/llama.hpp — Llama 2 / 3 / 3.1 / 3.2, assembled only from weft's public blocks: the
// example of how to build a model. One token's path:
//   ids → Embedding → for each layer: x += Attention(RMSNorm(x)); x += SwiGLU(RMSNorm(x))
//       → RMSNorm → lm_head → logits
// Weights stay where the file put them (memory-mapped, in their stored dtype; a file copied into
// memory instead has its quantized matrices laid out for decoding, quant/interleave.hpp); memory
// is the file + the KV cache + a workspace that grows to its size during warm-up, then stays.
// Loads Hugging Face directories (safetensors) and GGUF files (llama.cpp's format, quantized too).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "weft/core/tensor.hpp"
#include "weft/core/weight.hpp"
#include "weft/io/gguf.hpp"
#include "weft/io/hf_config.hpp"
#include "weft/io/safetensors.hpp"
#include "weft/nn/attention.hpp"
#include "weft/nn/linear.hpp"
#include "weft/nn/norm.hpp"
#include "weft/nn/rope.hpp"
#include "weft/quant/interleave.hpp"

namespace weft {

// The hyper-parameters the model runs with, whichever file they came from.
struct LlamaConfig {
    Index vocab_size = 0, dim = 0, ffn_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
    Index max_positions = 0;  // the model's trained context length
    float norm_eps = 1e-6f;
    nn::RopeConfig rope;
    bool tied_embeddings = false;
    std::vector<std::int32_t> bos_ids, eos_ids;
};

// The weights of one decoder layer.
struct LlamaLayer {
    nn::RMSNorm attn_norm;
    nn::Attention attention;
    nn::RMSNorm ffn_norm;
    nn::SwiGLU mlp;
};

// Which positions forward() computes logits for.
enum class Logits { all, last };

class Llama {
public:
    // Loads a Hugging Face directory (config.json + model.safetensors or sharded safetensors), or a
    // GGUF file (a path ending in .gguf, or any file that starts with the GGUF magic): from_gguf.
    // `context` is the KV cache capacity in tokens (0: the model's trained context, at most 4096).
    static Llama from_pretrained(const std::string& path, Index context = 0) {
        namespace fs = std::filesystem;
        if (is_gguf(path)) return from_gguf(path, context);
        if (fs::is_directory(path) && !fs::exists(fs::path(path) / "config.json"))
            fail("Llama: '", path, "' has no config.json (expected a Hugging Face model directory)");
        const hf::LlamaConfig hc = hf::load_llama_config(path);
        auto checkpoint = std::make_shared<safetensors::Checkpoint>(path);
        return from_checkpoint(hc, checkpoint, context);
    }

    // Loads a GGUF file whose general.architecture is "llama": llama.* hyper-parameters, tensors
    // token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
    // ffn_down} (biases where present), output_norm, output (absent: tied to token_embd) and
    // rope_freqs (Llama 3.1 scaling). GGUF Llama files pair RoPE dimensions (2i, 2i+1). Weights stay
    // in the mapped file in their stored types, quantized ones included (FileLoad::copy: in the
    // copy, quantized matrices interleaved for decoding).
    static Llama from_gguf(const std::string& path, Index context = 0, const gguf::Limits& limits = {}) {
        auto file = std::make_shared<gguf::File>(path, limits);
        return from_gguf_file(file, context);
    }

    // True if `path` names a GGUF file: it ends in .gguf (and is no directory), or it is a regular
    // file starting with "GGUF".
    static bool is_gguf(const std::string& path) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (fs::is_directory(path, ec)) return false;
        if (path.ends_with(".gguf")) return true;
        if (!fs::is_regular_file(path, ec)) return false;
        std::ifstream in(path, std::ios::binary);
        char magic[4] = {};
        return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
    }

    // A model from blocks assembled elsewhere (a GGUF loader, or user code). `keep_alive` holds
    // whatever owns the weights' memory.
    Llama(const LlamaConfig& config, nn::Embedding embedding, std::vector<LlamaLayer> layers, nn::RMSNorm final_norm,
          nn::Linear lm_head, Index context, std::shared_ptr<const void> keep_alive = {})
        : config_(config), embedding_(std::move(embedding)), layers_(std::move(layers)), final_norm_(std::move(final_norm)),
          lm_head_(std::move(lm_head)), rope_(config.rope), keep_alive_(std::move(keep_alive)) {
        if (context <= 0) context = std::min<Index>(config.max_positions > 0 ? config.max_positions : 4096, 4096);
        caches_.reserve(layers_.size());
        for (std::size_t i = 0; i < layers_.size(); ++i) caches_.emplace_back(context, config.n_kv_heads, config.head_dim);
    }

    const LlamaConfig& config() const { return config_; }
    // The decoder layers and the output projection, to inspect (their weights' dtypes, shapes).
    const std::vector<LlamaLayer>& layers() const { return layers_; }
    const nn::Linear& lm_head() const { return lm_head_; }
    Index context_size() const { return caches_.empty() ? 0 : caches_[0].capacity(); }
    // Tokens already in the KV cache: the position the next token gets.
    Index position() const { return n_past_; }
    // Forgets the cached tokens (the next forward starts at position 0).
    void reset() { n_past_ = 0; }
    // Drops cached tokens from position `keep` on (to rewind a conversation).
    void truncate(Index keep) {
        if (keep < 0 || keep > n_past_) fail("Llama::truncate: position ", keep, " is outside 0..", n_past_);
        n_past_ = keep;
    }

    // Runs `tokens` at positions position()..position()+T-1, appending them to the KV cache.
    // Returns logits [T, vocab] (Logits::all) or [1, vocab] for the last token (Logits::last).
    // The view stays valid until the next call.
    TensorView<const float> forward(std::span<const std::int32_t> tokens, Logits which = Logits::all) {
        const Index T = static_cast<Index>(tokens.size());
        if (T == 0) fail("Llama::forward: no tokens");
        if (n_past_ + T > context_size())
            fail("Llama::forward: ", n_past_, " cached + ", T, " new tokens exceed the context of ", context_size(), " tokens");
        const Index rows_out = which == Logits::all ? T : 1;
        reserve(logits_, rows_out, config_.vocab_size);
        // Long prompts run in batches so the workspace stays bounded.
        for (Index b0 = 0; b0 < T; b0 += max_batch) {
            const Index n = std::min(max_batch, T - b0);
            const bool want = which == Logits::all || b0 + n == T;
            run_batch(tokens.subspan(static_cast<std::size_t>(b0), static_cast<std::size_t>(n)),
                      which == Logits::all ? b0 : -1, want);
        }
        return TensorView<const float>(logits_.data(), Shape{rows_out, config_.vocab_size});
    }

    // One step of generation: the logits [vocab] after `token`.
    TensorView<const float> decode(std::int32_t token) { return forward(std::span(&token, 1), Logits::last).select(0, 0); }

    // Bytes of weights read per decoded token (every weight once; the embedding only one row).
    std::uint64_t weight_bytes_per_token() const { return weight_bytes_; }

private:
    static constexpr Index max_batch = 256;

    static void reserve(Tensor<float>& t, Index rows, Index cols) {
        if (t.numel() < rows * cols) t = Tensor<float>::uninitialized(Shape{rows, cols});
    }
    static TensorView<float> rows_of(Tensor<float>& t, Index rows, Index cols) { return TensorView<float>(t.data(), Shape{rows, cols}); }

    // Runs one batch; writes its logits at row `logits_row` of logits_ (all rows), or the last row's
    // logits at row 0 when logits_row < 0 and want_logits.
    void run_batch(std::span<const std::int32_t> tokens, Index logits_row, bool want_logits) {
        const Index T = static_cast<Index>(tokens.size()), D = config_.dim;
        reserve(x_, T, D);
        reserve(h_, T, D);
        reserve(tmp_, T, D);
        auto x = rows_of(x_, T, D), h = rows_of(h_, T, D), tmp = rows_of(tmp_, T, D);

        positions_.resize(static_cast<std::size_t>(T));
        for (Index t = 0; t < T; ++t) positions_[t] = n_past_ + t;
        angles_.compute(rope_, positions_);

        embedding_.forward(tokens, x);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const LlamaLayer& layer = layers_[l];
            layer.attn_norm.forward(x, h);
            layer.attention.forward(h, n_past_, angles_, caches_[l], attention_scratch_, tmp);
            x = x + tmp;
            layer.ffn_norm.forward(x, h);
            layer.mlp.forward(h, gate_, up_, tmp);
            x = x + tmp;
        }
        n_past_ += T;
        if (!want_logits) return;
        if (logits_row >= 0) {
            final_norm_.forward(x, h);
            lm_head_.forward(h, TensorView<float>(logits_.data() + logits_row * config_.vocab_size, Shape{T, config_.vocab_size}));
        } else {
            auto last = x.slice(0, T - 1, T), last_h = h.slice(0, T - 1, T);
            final_norm_.forward(last, last_h);
            lm_head_.forward(last_h, TensorView<float>(logits_.data(), Shape{1, config_.vocab_size}));
        }
    }

    static Llama from_checkpoint(const hf::LlamaConfig& hc, std::shared_ptr<safetensors::Checkpoint> ckpt, Index context) {
        LlamaConfig c;
        c.vocab_size = hc.vocab_size;
        c.dim = hc.hidden_size;
        c.ffn_dim = hc.intermediate_size;
        c.n_layers = hc.num_hidden_layers;
        c.n_heads = hc.num_attention_heads;
        c.n_kv_heads = hc.num_key_value_heads;
        c.head_dim = hc.head_dim;
        c.max_positions = hc.max_position_embeddings;
        c.norm_eps = static_cast<float>(hc.rms_norm_eps);
        c.tied_embeddings = hc.tie_word_embeddings;
        for (long id : hc.bos_token_ids) c.bos_ids.push_back(static_cast<std::int32_t>(id));
        for (long id : hc.eos_token_ids) c.eos_ids.push_back(static_cast<std::int32_t>(id));
        c.rope.head_dim = static_cast<int>(c.head_dim);
        c.rope.theta = hc.rope_theta;
        c.rope.pairing = nn::RopePairing::half_split;  // Hugging Face Llama checkpoints
        if (hc.rope_scaling) {
            const auto& s = *hc.rope_scaling;
            if (s.type == "llama3") c.rope.scaling.kind = nn::RopeScaling::Kind::llama3;
            else if (s.type == "linear") c.rope.scaling.kind = nn::RopeScaling::Kind::linear;
            c.rope.scaling.factor = s.factor;
            c.rope.scaling.low_freq_factor = s.low_freq_factor;
            c.rope.scaling.high_freq_factor = s.high_freq_factor;
            c.rope.scaling.original_max_position_embeddings = s.original_max_position_embeddings;
        }

        std::uint64_t bytes = 0;
        auto weight = [&](const std::string& name, const Shape& shape) {
            Weight w = ckpt->weight(name);
            w.expect_shape(shape);
            if (w.dtype != DType::f32 && w.dtype != DType::f16 && w.dtype != DType::bf16)
                fail("Llama: weight '", name, "' has dtype ", w.dtype, "; expected f32, f16 or bf16");
            bytes += nn::stored_bytes(w);
            return w;
        };
        auto optional_bias = [&](const std::string& name, Index n) {
            return hc.attention_bias ? weight(name, Shape{n}) : Weight{};
        };
        const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, F = c.ffn_dim;
        nn::Embedding embedding(weight("model.embed_tokens.weight", Shape{c.vocab_size, D}));
        const std::uint64_t embedding_bytes = bytes;
        std::vector<LlamaLayer> layers;
        nn::AttentionConfig ac{H, KV, HD, true, nn::RopePairing::half_split, 0};
        for (Index l = 0; l < c.n_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            LlamaLayer layer;
            layer.attn_norm = nn::RMSNorm(weight(p + "input_layernorm.weight", Shape{D}), c.norm_eps);
            layer.attention = nn::Attention(ac, nn::Linear(weight(p + "self_attn.q_proj.weight", Shape{H * HD, D}), optional_bias(p + "self_attn.q_proj.bias", H * HD)),
                                            nn::Linear(weight(p + "self_attn.k_proj.weight", Shape{KV * HD, D}), optional_bias(p + "self_attn.k_proj.bias", KV * HD)),
                                            nn::Linear(weight(p + "self_attn.v_proj.weight", Shape{KV * HD, D}), optional_bias(p + "self_attn.v_proj.bias", KV * HD)),
                                            nn::Linear(weight(p + "self_attn.o_proj.weight", Shape{D, H * HD}), optional_bias(p + "self_attn.o_proj.bias", D)));
            layer.ffn_norm = nn::RMSNorm(weight(p + "post_attention_layernorm.weight", Shape{D}), c.norm_eps);
            layer.mlp = nn::SwiGLU(nn::Linear(weight(p + "mlp.gate_proj.weight", Shape{F, D})), nn::Linear(weight(p + "mlp.up_proj.weight", Shape{F, D})),
                                   nn::Linear(weight(p + "mlp.down_proj.weight", Shape{D, F})));
            layers.push_back(std::move(layer));
        }
        nn::RMSNorm final_norm(weight("model.norm.weight", Shape{D}), c.norm_eps);
        // Tied models reuse the embedding table as the output projection (Hugging Face omits
        // lm_head.weight, or stores a copy).
        nn::Linear lm_head;
        if (c.tied_embeddings && !ckpt->contains("lm_head.weight")) {
            lm_head = nn::Linear(embedding.table());
            bytes += embedding_bytes;  // the table is read in full as lm_head
        } else {
            lm_head = nn::Linear(weight("lm_head.weight", Shape{c.vocab_size, D}));
        }
        Llama model(c, std::move(embedding), std::move(layers), std::move(final_norm), std::move(lm_head), context, ckpt);
        // Decoding reads one embedding row, not the table.
        model.weight_bytes_ = bytes - embedding_bytes + embedding_bytes / static_cast<std::uint64_t>(c.vocab_size);
        return model;
    }

    static Llama from_gguf_file(std::shared_ptr<gguf::File> file, Index context) {
        gguf::File& f = *file;
        auto bad = [&](const auto&... parts) { fail("Llama: ", f.path(), ": ", parts...); };
        const gguf::Value* arch = f.find("general.architecture");
        if (!arch) bad("no general.architecture (expected \"llama\")");
        if (arch->as<std::string_view>() != "llama")
            bad("general.architecture is \"", arch->as<std::string_view>(), "\"; Llama::from_gguf reads \"llama\"");
        // llama.* sizes: positive integers of any stored integer type (llama.cpp writes u32).
        auto count = [&](const std::string& key) {
            const auto v = f.get<Index>("llama." + key);
            if (v <= 0) bad("llama.", key, " is ", v, ", expected a positive count");
            return v;
        };
        auto count_or = [&](const std::string& key, Index fallback) { return f.has("llama." + key) ? count(key) : fallback; };

        LlamaConfig c;
        c.dim = count("embedding_length");
        c.n_layers = count("block_count");
        c.ffn_dim = count("feed_forward_length");
        c.n_heads = count("attention.head_count");
        c.n_kv_heads = count_or("attention.head_count_kv", c.n_heads);
        if (c.n_heads % c.n_kv_heads != 0)
            bad("llama.attention.head_count ", c.n_heads, " is not a multiple of llama.attention.head_count_kv ", c.n_kv_heads);
        if (!f.has("llama.attention.key_length") && c.dim % c.n_heads != 0)
            bad("llama.embedding_length ", c.dim, " is not a multiple of llama.attention.head_count ", c.n_heads,
                " and llama.attention.key_length is absent");
        c.head_dim = count_or("attention.key_length", c.dim / c.n_heads);
        if (count_or("attention.value_length", c.head_dim) != c.head_dim)
            bad("llama.attention.value_length ", count("attention.value_length"), " differs from key_length ", c.head_dim,
                "; weft's attention uses one head size");
        c.max_positions = count_or("context_length", 0);
        const double eps = f.get<double>("llama.attention.layer_norm_rms_epsilon");
        if (!(eps > 0) || !std::isfinite(eps)) bad("llama.attention.layer_norm_rms_epsilon is ", eps, ", expected a positive number");
        c.norm_eps = static_cast<float>(eps);

        c.rope.head_dim = static_cast<int>(c.head_dim);
        c.rope.rotary_dim = static_cast<int>(count_or("rope.dimension_count", c.head_dim));
        c.rope.theta = f.get_or<double>("llama.rope.freq_base", 10000.0);
        c.rope.pairing = nn::RopePairing::interleaved;  // GGUF Llama files: converters permuted Q and K
        const std::string scaling = f.get_or<std::string>("llama.rope.scaling.type", "none");
        double linear = f.get_or<double>("llama.rope.scaling.factor", 0.0);
        if (scaling == "linear" || (scaling == "none" && f.has("llama.rope.scale_linear"))) {
            if (scaling == "none") linear = f.get<double>("llama.rope.scale_linear");  // the older key
            if (!(linear > 0) || !std::isfinite(linear)) bad("linear RoPE scaling factor is ", linear, ", expected a positive number");
            c.rope.scaling.kind = nn::RopeScaling::Kind::linear;
            c.rope.scaling.factor = linear;
        } else if (scaling != "none") {
            bad("llama.rope.scaling.type \"", scaling, "\" is not supported (weft reads none and linear, and rope_freqs)");
        }

        // Special tokens: bos, and every id that ends a turn (eos, eot, eom). Some writers store -1
        // or 0xFFFFFFFF for "none"; such ids are skipped.
        auto token = [&](const char* key) -> std::optional<std::int32_t> {
            const gguf::Value* v = f.find(key);
            if (!v) return std::nullopt;
            const auto id = v->as<std::int64_t>();
            if (id < 0 || id > std::numeric_limits<std::int32_t>::max()) return std::nullopt;
            return static_cast<std::int32_t>(id);
        };
        if (const auto id = token("tokenizer.ggml.bos_token_id")) c.bos_ids.push_back(*id);
        for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
            if (const auto id = token(key); id && std::find(c.eos_ids.begin(), c.eos_ids.end(), *id) == c.eos_ids.end())
                c.eos_ids.push_back(*id);

        std::uint64_t bytes = 0;
        // A copied file (FileLoad::copy) is ours to rewrite: the quantized matrices that decoding
        // multiplies take their x16 forms (q4_0 -> q4_0x16 ...), the layouts it reads fastest
        // (quant/interleave.hpp), in place, all in one edit before the model is returned. Mapped
        // files are read as stored.
        struct Rewrite {
            const gguf::TensorInfo* info;
            DType type;
        };
        std::vector<Rewrite> rewrites;
        auto weight = [&](const std::string& name, const Shape& shape, bool matmul = true) {
            if (!f.has_tensor(name)) bad("no tensor '", name, "'");
            Weight w = f.weight(name);
            if (!(w.shape == shape)) bad("tensor '", name, "' has shape ", w.shape, ", expected ", shape);
            bytes += nn::stored_bytes(w);
            if (matmul && f.copied() && quant::can_interleave(w.dtype, w.shape)) {  // each tensor is fetched once
                rewrites.push_back({f.find_tensor(name), w.dtype});
                w.dtype = quant::interleaved_dtype(w.dtype);
            }
            return w;
        };
        // Norm weights and biases are read as floats (f32, f16 or bf16).
        auto float_weight = [&](const std::string& name, const Shape& shape) {
            Weight w = weight(name, shape);
            if (w.dtype != DType::f32 && w.dtype != DType::f16 && w.dtype != DType::bf16)
                bad("tensor '", name, "' is ", w.dtype, "; expected f32, f16 or bf16");
            return w;
        };
        auto bias = [&](const std::string& name, Index n) { return f.has_tensor(name) ? float_weight(name, Shape{n}) : Weight{}; };

        if (!f.has_tensor("token_embd.weight")) bad("no tensor 'token_embd.weight'");
        const Shape embd = f.find_tensor("token_embd.weight")->shape;
        if (embd.rank() != 2 || embd[1] != c.dim)
            bad("token_embd.weight has shape ", embd, ", expected [vocab, ", c.dim, "]");
        c.vocab_size = embd[0];
        if (f.has("llama.vocab_size") && count("vocab_size") != c.vocab_size)
            bad("llama.vocab_size is ", count("vocab_size"), " but token_embd.weight has ", c.vocab_size, " rows");
        if (const gguf::Value* tokens = f.find("tokenizer.ggml.tokens"); tokens && tokens->is_array() &&
                                                                        tokens->size() != static_cast<std::uint64_t>(c.vocab_size))
            bad("tokenizer.ggml.tokens has ", tokens->size(), " tokens but token_embd.weight has ", c.vocab_size, " rows");

        const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, F = c.ffn_dim;
        // The table is also lm_head when the file has no output.weight.
        nn::Embedding embedding(weight("token_embd.weight", Shape{c.vocab_size, D}, /*matmul=*/!f.has_tensor("output.weight")));
        const std::uint64_t embedding_bytes = bytes;
        std::vector<LlamaLayer> layers;
        nn::AttentionConfig ac{H, KV, HD, true, nn::RopePairing::interleaved, 0};
        for (Index l = 0; l < c.n_layers; ++l) {
            const std::string p = "blk." + std::to_string(l) + ".";
            LlamaLayer layer;
            layer.attn_norm = nn::RMSNorm(float_weight(p + "attn_norm.weight", Shape{D}), c.norm_eps);
            layer.attention = nn::Attention(ac, nn::Linear(weight(p + "attn_q.weight", Shape{H * HD, D}), bias(p + "attn_q.bias", H * HD)),
                                            nn::Linear(weight(p + "attn_k.weight", Shape{KV * HD, D}), bias(p + "attn_k.bias", KV * HD)),
                                            nn::Linear(weight(p + "attn_v.weight", Shape{KV * HD, D}), bias(p + "attn_v.bias", KV * HD)),
                                            nn::Linear(weight(p + "attn_output.weight", Shape{D, H * HD}), bias(p + "attn_output.bias", D)));
            layer.ffn_norm = nn::RMSNorm(float_weight(p + "ffn_norm.weight", Shape{D}), c.norm_eps);
            layer.mlp = nn::SwiGLU(nn::Linear(weight(p + "ffn_gate.weight", Shape{F, D}), bias(p + "ffn_gate.bias", F)),
                                   nn::Linear(weight(p + "ffn_up.weight", Shape{F, D}), bias(p + "ffn_up.bias", F)),
                                   nn::Linear(weight(p + "ffn_down.weight", Shape{D, F}), bias(p + "ffn_down.bias", D)));
            layers.push_back(std::move(layer));
        }
        nn::RMSNorm final_norm(float_weight("output_norm.weight", Shape{D}), c.norm_eps);
        // GGUF files of tied models have no output.weight.
        nn::Linear lm_head;
        c.tied_embeddings = !f.has_tensor("output.weight");
        if (c.tied_embeddings) {
            lm_head = nn::Linear(embedding.table());
            bytes += embedding_bytes;
        } else {
            lm_head = nn::Linear(weight("output.weight", Shape{c.vocab_size, D}));
        }
        // Llama 3.1 scaling comes precomputed: inv_freq[j] / rope_freqs[j].
        std::vector<float> factors;
        if (f.has_tensor("rope_freqs.weight")) {
            const Weight r = f.weight("rope_freqs.weight");  // read once here, so not counted in bytes
            if (!(r.shape == Shape{c.rope.rotary_dim / 2}) || (r.dtype != DType::f32 && r.dtype != DType::f16 && r.dtype != DType::bf16))
                bad("rope_freqs.weight is ", r.dtype, " ", r.shape, ", expected f32 [", c.rope.rotary_dim / 2, "]");
            visit_float_weight(r, [&](auto v) {
                for (Index j = 0; j < v.numel(); ++j) factors.push_back(convert<float>(v.data()[j]));
            });
            for (std::size_t j = 0; j < factors.size(); ++j)
                if (!(factors[j] > 0) || !std::isfinite(factors[j]))
                    bad("rope_freqs.weight[", j, "] is ", factors[j], ", expected a positive factor");
        }
        if (!rewrites.empty())
            f.edit([&](std::span<std::byte> stored) {
                for (const Rewrite& r : rewrites) quant::interleave(r.type, stored.data() + r.info->begin, r.info->shape[0], r.info->shape[1]);
            });
        Llama model(c, std::move(embedding), std::move(layers), std::move(final_norm), std::move(lm_head), context, std::move(file));
        if (!factors.empty()) model.rope_.divide_frequencies(factors);
        model.weight_bytes_ = bytes - embedding_bytes + embedding_bytes / static_cast<std::uint64_t>(c.vocab_size);
        return model;
    }

    LlamaConfig config_;
    nn::Embedding embedding_;
    std::vector<LlamaLayer> layers_;
    nn::RMSNorm final_norm_;
    nn::Linear lm_head_;
    nn::Rope rope_;
    std::shared_ptr<const void> keep_alive_;
    std::vector<nn::KvCache> caches_;
    Index n_past_ = 0;
    std::uint64_t weight_bytes_ = 0;

    // Workspace: grows to the largest batch, then is reused (no allocation per decoded token).
    Tensor<float> x_, h_, tmp_, gate_, up_, logits_;
    nn::AttentionScratch attention_scratch_;
    nn::RopeAngles angles_;
    std::vector<Index> positions_;
};

}  // namespace weft
