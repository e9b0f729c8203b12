// weft/models/llama4.hpp — Llama 4 text models (Scout, Maverick), assembled from weft's blocks as
// Hugging Face's modeling_llama4.py runs them. One token's path:
//   ids → Embedding → for each layer: x += Attention(RMSNorm(x)); x += FFN(RMSNorm(x)) → RMSNorm
//       → lm_head → logits
// where most layers use RoPE (interleaved pairs), chunked-local attention and QK-norm, every 4th
// ("NoPE") uses no positions, full causal attention and temperature-tuned queries, and FFN is a
// mixture of experts (nn::MoE) on the MoE layers, a dense SwiGLU on the others.
// Loads Hugging Face directories (safetensors) and GGUF files (general.architecture "llama4", as
// llama.cpp's convert_hf_to_gguf.py writes them; io/gguf_convert_llama4.hpp writes them too).
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/tensor.hpp"
#include "weft/core/weight.hpp"
#include "weft/io/gguf.hpp"
#include "weft/io/hf_config_llama4.hpp"
#include "weft/io/safetensors.hpp"
#include "weft/models/llama.hpp"  // weft::Logits
#include "weft/nn/attention.hpp"
#include "weft/nn/linear.hpp"
#include "weft/nn/moe.hpp"
#include "weft/nn/norm.hpp"
#include "weft/nn/rope.hpp"

namespace weft {

// The hyper-parameters the model runs with, whichever file they came from.
struct Llama4Config {
    Index vocab_size = 0, dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
    Index expert_ffn_dim = 0;  // intermediate_size: each expert's and the shared expert's hidden size
    Index dense_ffn_dim = 0;   // intermediate_size_mlp: the dense SwiGLU of layers without MoE
    Index n_experts = 0, top_k = 1;
    Index max_positions = 0;   // the model's trained context length
    float norm_eps = 1e-5f;    // RMSNorm and QK-norm
    nn::RopeConfig rope;       // Llama 4 rotates interleaved pairs (2i, 2i + 1)
    Index chunk_size = 0;      // attention_chunk_size of the chunked layers (0: none)
    bool qk_norm = true;       // on RoPE layers
    bool temperature_tuning = true;  // on NoPE layers
    float attn_scale = 0.1f;
    Index floor_scale = 8192;
    // Per layer: uses RoPE (else NoPE), chunked-local attention (else full causal), MoE (else dense).
    std::vector<bool> rope_layers, chunked_layers, moe_layers;
    bool tied_embeddings = false;
    std::vector<std::int32_t> bos_ids, eos_ids;

    // The attention of layer l, as Hugging Face's Llama4TextAttention sets it up.
    nn::AttentionConfig attention(Index l) const {
        nn::AttentionConfig a;
        a.n_heads = n_heads;
        a.n_kv_heads = n_kv_heads;
        a.head_dim = head_dim;
        a.use_rope = rope_layers[static_cast<std::size_t>(l)];
        a.rope_pairing = nn::RopePairing::interleaved;
        a.chunk_size = chunked_layers[static_cast<std::size_t>(l)] ? chunk_size : 0;
        a.qk_norm = qk_norm && a.use_rope;  // Llama4TextAttention has qk_norm only if use_qk_norm and use_rope
        a.qk_norm_eps = norm_eps;
        if (temperature_tuning && !a.use_rope) {
            a.temperature_scale = attn_scale;
            a.temperature_floor = floor_scale;
        }
        return a;
    }
};

// The weights of one decoder layer: `moe` on MoE layers, `mlp` on the others.
struct Llama4Layer {
    nn::RMSNorm attn_norm;
    nn::Attention attention;
    nn::RMSNorm ffn_norm;
    bool is_moe = false;
    nn::SwiGLU mlp;
    nn::MoE moe;
};

// GGUF metadata keys for what llama.cpp does not read from a llama4 file but hard-codes (see
// Llama4::apply_llama_cpp_defaults). A file needs them only where the model departs from those
// constants; gguf::convert_llama4_hf_to_gguf writes them only then, so the conversion of Meta's
// Scout and Maverick holds exactly llama.cpp's keys. The first four are llama.cpp key names, read
// with the same meaning for other architectures; the last two are weft's own.
namespace llama4_gguf {
// u32 chunk size of the chunked layers. llama.cpp's llama4 loader reads only whether it is present
// and 0 (no chunking: convert_hf_to_gguf.py writes 0 when every layer_types entry is
// full_attention) and otherwise chunks by 8192; weft reads a non-zero value as the chunk size.
inline constexpr const char* sliding_window = "llama4.attention.sliding_window";
// Per layer (bool array; or a u32 n: layer l chunked iff n == 0 or l % n < n - 1): chunked
// attention. llama.cpp reads it so for Gemma 4; for llama4 it hard-codes the pattern 4.
inline constexpr const char* sliding_window_pattern = "llama4.attention.sliding_window_pattern";
// f32 attn_scale of temperature tuning (0: off); llama.cpp reads it so for mistral3.
inline constexpr const char* temperature_scale = "llama4.attention.temperature_scale";
// u32 floor_scale of temperature tuning; llama.cpp reads it so for mistral3.
inline constexpr const char* temperature_length = "llama4.attention.temperature_length";
// Per layer (bool array): the layer applies RoPE (Hugging Face no_rope_layers[l] == 1).
inline constexpr const char* rope_layers = "llama4.weft.rope_layers";
// bool: QK-norm on the RoPE layers (Hugging Face use_qk_norm).
inline constexpr const char* use_qk_norm = "llama4.weft.use_qk_norm";
}  // namespace llama4_gguf

class Llama4 {
public:
    // Loads a Hugging Face directory: Llama4ForConditionalGeneration (the text model only) or
    // Llama4ForCausalLM; or a GGUF file (a path ending in .gguf, or any file that starts with the
    // GGUF magic): from_gguf. `context` is the KV cache capacity of the full-attention layers in
    // tokens (0: the trained context, at most 4096); chunked layers keep one chunk.
    static Llama4 from_pretrained(const std::string& path, Index context = 0) {
        namespace fs = std::filesystem;
        if (Llama::is_gguf(path)) return from_gguf(path, context);
        if (fs::is_directory(path) && !fs::exists(fs::path(path) / "config.json"))
            fail("Llama4: '", path, "' has no config.json (expected a Hugging Face model directory)");
        const hf::Llama4TextConfig hc = hf::load_llama4_config(path);
        return from_checkpoint(hc, std::make_shared<safetensors::Checkpoint>(path), context);
    }

    // A model from a parsed config and an opened checkpoint (weights under "language_model.model."
    // or "model.").
    static Llama4 from_checkpoint(const hf::Llama4TextConfig& hc, std::shared_ptr<safetensors::Checkpoint> ckpt, Index context);

    // Loads a GGUF file whose general.architecture is "llama4", as llama.cpp reads it (see
    // config_from_gguf): tensors token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v,
    // attn_output, ffn_norm} and, on MoE layers, blk.N.{ffn_gate_inp, ffn_gate_exps, ffn_up_exps
    // [E, F, D], ffn_down_exps [E, D, F], ffn_gate_shexp, ffn_up_shexp, ffn_down_shexp}, on the
    // others blk.N.{ffn_gate, ffn_up, ffn_down}; output_norm, output (absent: tied to token_embd)
    // and rope_freqs (llama3 scaling). Q and K are not permuted: Hugging Face Llama 4 already
    // rotates interleaved pairs, as GGUF does. Weights stay in the mapped file in their stored
    // types, quantized ones (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) included, experts too.
    static Llama4 from_gguf(const std::string& path, Index context = 0, const gguf::Limits& limits = {}) {
        return from_gguf_file(std::make_shared<gguf::File>(path, limits), context);
    }

    // The hyper-parameters a Hugging Face config gives (what from_checkpoint runs with).
    static Llama4Config config_from_hf(const hf::Llama4TextConfig& hc);

    // The hyper-parameters of a llama4 GGUF file: llama4.* sizes, MoE layers (l + 1) % step == 0
    // (step: llama4.interleave_moe_layer_step), attention settings as llama.cpp derives them
    // (apply_llama_cpp_defaults) unless the llama4_gguf keys say otherwise.
    static Llama4Config config_from_gguf(const gguf::File& f);

    // What llama.cpp derives for a llama4 GGUF file beyond its keys, from c.n_layers, c.n_experts
    // and whether llama4.attention.sliding_window is present and 0 (src/llama-model.cpp,
    // load_hparams, case LLM_ARCH_LLAMA4; src/llama-hparams.h; src/models/llama-iswa.cpp).
    // Sets chunk_size, chunked_layers, rope_layers, temperature_tuning, attn_scale, floor_scale
    // and qk_norm:
    //   sliding_window absent (or non-zero): chunks of 8192 on layers l % 4 < 3
    //     (set_swa_pattern(4)); NoPE on layers (l + 1) % 4 == 0 (n_no_rope_layer_step, default 4);
    //     temperature tuning with floor 8192 and scale 0.1 at ⌊(pos + 1) / 8192⌋
    //     (f_attn_temp_offset 1) — Scout's and Maverick's values;
    //   present and 0: no chunking, no temperature tuning, n_no_rope_layer_step = n_layers (so the
    //     last layer alone is NoPE, as llama.cpp runs it);
    //   QK-norm unless the model has 128 experts (use_kq_norm = type != LLM_TYPE_17B_128E:
    //     Maverick's config says use_qk_norm false, Scout's true).
    static void apply_llama_cpp_defaults(Llama4Config& c, bool sliding_window_zero);

    // A model from blocks assembled elsewhere (a GGUF loader, or user code): layer l must match
    // config.attention(l) and config.moe_layers[l]. `keep_alive` holds whatever owns the weights.
    Llama4(const Llama4Config& config, nn::Embedding embedding, std::vector<Llama4Layer> layers, nn::RMSNorm final_norm,
           nn::Linear lm_head, Index context, std::shared_ptr<const void> keep_alive = {})
        : config_(config), embedding_(std::move(embedding)), layers_(std::move(layers)), final_norm_(std::move(final_norm)),
          lm_head_(std::move(lm_head)), rope_(config.rope), keep_alive_(std::move(keep_alive)) {
        const auto L = static_cast<std::size_t>(config_.n_layers);
        if (layers_.size() != L || config_.rope_layers.size() < L || config_.chunked_layers.size() < L || config_.moe_layers.size() < L)
            fail("Llama4: ", layers_.size(), " layers for a config of ", config_.n_layers, " (with ", config_.rope_layers.size(), " RoPE, ",
                 config_.chunked_layers.size(), " chunking and ", config_.moe_layers.size(), " MoE flags)");
        if (context <= 0) context = std::min<Index>(config_.max_positions > 0 ? config_.max_positions : 4096, 4096);
        context_ = context;
        // Embedding: one row per token; every other weight once (MoE layers: their active part).
        weight_bytes_ = stored_bytes_row(embedding_.table()) + nn::stored_bytes(lm_head_.weight()) +
                        static_cast<std::uint64_t>(config_.dim) * sizeof(float);  // final norm (counted as f32)
        caches_.reserve(L);
        for (std::size_t l = 0; l < L; ++l) {
            const Llama4Layer& layer = layers_[l];
            const nn::AttentionConfig a = config_.attention(static_cast<Index>(l));
            const nn::AttentionConfig& got = layer.attention.config();
            if (got.use_rope != a.use_rope || got.chunk_size != a.chunk_size || got.qk_norm != a.qk_norm ||
                got.temperature_floor != a.temperature_floor || got.rope_pairing != a.rope_pairing || got.n_heads != a.n_heads ||
                got.n_kv_heads != a.n_kv_heads || got.head_dim != a.head_dim)
                fail("Llama4: layer ", l, "'s attention (rope ", got.use_rope, ", chunk ", got.chunk_size, ", qk_norm ", got.qk_norm,
                     ", temperature floor ", got.temperature_floor, ") differs from the config's (rope ", a.use_rope, ", chunk ",
                     a.chunk_size, ", qk_norm ", a.qk_norm, ", temperature floor ", a.temperature_floor, ")");
            if (layer.is_moe != config_.moe_layers[l])
                fail("Llama4: layer ", l, " is ", layer.is_moe ? "MoE" : "dense", " but the config says ", config_.moe_layers[l] ? "MoE" : "dense");
            // Chunked layers keep one chunk of keys when the context is longer than a chunk.
            if (a.chunk_size > 0 && a.chunk_size < context) caches_.push_back(nn::KvCache::one_chunk(a.chunk_size, a.n_kv_heads, a.head_dim));
            else caches_.emplace_back(context, a.n_kv_heads, a.head_dim);
            weight_bytes_ += layer.attention.weight_bytes() + 2 * static_cast<std::uint64_t>(config_.dim) * sizeof(float) +
                             (layer.is_moe ? layer.moe.active_bytes_per_token() : layer.mlp.weight_bytes());
        }
    }

    const Llama4Config& config() const { return config_; }
    // Tokens the model can hold: positions 0 .. context_size() − 1.
    Index context_size() const { return context_; }
    // Tokens already in the KV cache: the position the next token gets.
    Index position() const { return n_past_; }
    // Forgets the cached tokens (the next forward starts at position 0).
    void reset() { n_past_ = 0; }
    // Drops cached tokens from position `keep` on (to rewind a conversation). The chunked layers
    // hold only the current chunk, so `keep` must lie in that chunk or start a chunk.
    void truncate(Index keep) {
        if (keep < 0 || keep > n_past_) fail("Llama4::truncate: position ", keep, " is outside 0..", n_past_);
        for (const nn::KvCache& c : caches_)
            if (c.chunk() > 0 && keep % c.chunk() != 0 && n_past_ > 0 && keep / c.chunk() != (n_past_ - 1) / c.chunk())
                fail("Llama4::truncate: position ", keep, " lies in an earlier chunk of ", c.chunk(),
                     " positions than the cached ones (", n_past_, " tokens); chunked layers keep only the current chunk");
        n_past_ = keep;
    }

    // Runs `tokens` at positions position()..position()+T-1, appending them to the KV cache.
    // Returns logits [T, vocab] (Logits::all) or [1, vocab] for the last token (Logits::last),
    // valid until the next call.
    TensorView<const float> forward(std::span<const std::int32_t> tokens, Logits which = Logits::all) {
        const Index T = static_cast<Index>(tokens.size());
        if (T == 0) fail("Llama4::forward: no tokens");
        if (n_past_ + T > context_size())
            fail("Llama4::forward: ", n_past_, " cached + ", T, " new tokens exceed the context of ", context_size(), " tokens");
        const Index rows_out = which == Logits::all ? T : 1;
        reserve(logits_, rows_out, config_.vocab_size);
        for (Index b0 = 0; b0 < T; b0 += max_batch) {
            const Index n = std::min(max_batch, T - b0);
            const bool want = which == Logits::all || b0 + n == T;
            run_batch(tokens.subspan(static_cast<std::size_t>(b0), static_cast<std::size_t>(n)), which == Logits::all ? b0 : -1, want);
        }
        return TensorView<const float>(logits_.data(), Shape{rows_out, config_.vocab_size});
    }

    // One step of generation: the logits [vocab] after `token`.
    TensorView<const float> decode(std::int32_t token) { return forward(std::span(&token, 1), Logits::last).select(0, 0); }

    // Bytes the KV caches hold: full layers keep context_size() positions, chunked layers one chunk.
    std::uint64_t kv_cache_bytes() const {
        std::uint64_t n = 0;
        for (const nn::KvCache& c : caches_) n += 2 * static_cast<std::uint64_t>(c.keys().numel()) * sizeof(float);
        return n;
    }

    // Bytes of weights read per decoded token: every dense weight once, the embedding's one row,
    // and on MoE layers the router, the shared expert and top_k experts (not all of them).
    std::uint64_t weight_bytes_per_token() const { return weight_bytes_; }

private:
    static constexpr Index max_batch = 256;

    static Llama4 from_gguf_file(std::shared_ptr<gguf::File> file, Index context);

    static std::uint64_t stored_bytes_row(const Weight& table) {
        return table.shape.rank() == 2 && table.shape[0] > 0 ? nn::stored_bytes(table) / static_cast<std::uint64_t>(table.shape[0]) : 0;
    }
    static void reserve(Tensor<float>& t, Index rows, Index cols) {
        if (t.numel() < rows * cols) t = Tensor<float>::uninitialized(Shape{rows, cols});
    }
    static TensorView<float> rows_of(Tensor<float>& t, Index rows, Index cols) { return TensorView<float>(t.data(), Shape{rows, cols}); }

    void run_batch(std::span<const std::int32_t> tokens, Index logits_row, bool want_logits) {
        const Index T = static_cast<Index>(tokens.size()), D = config_.dim;
        reserve(x_, T, D);
        reserve(h_, T, D);
        reserve(tmp_, T, D);
        auto x = rows_of(x_, T, D), h = rows_of(h_, T, D), tmp = rows_of(tmp_, T, D);

        positions_.resize(static_cast<std::size_t>(T));
        for (Index t = 0; t < T; ++t) positions_[static_cast<std::size_t>(t)] = n_past_ + t;
        angles_.compute(rope_, positions_);

        embedding_.forward(tokens, x);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const Llama4Layer& layer = layers_[l];
            layer.attn_norm.forward(x, h);
            layer.attention.forward(h, n_past_, angles_, caches_[l], attention_scratch_, tmp);
            x = x + tmp;
            layer.ffn_norm.forward(x, h);
            if (layer.is_moe) layer.moe.forward(h, moe_scratch_, tmp);
            else layer.mlp.forward(h, gate_, up_, tmp);
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

    Llama4Config config_;
    nn::Embedding embedding_;
    std::vector<Llama4Layer> layers_;
    nn::RMSNorm final_norm_;
    nn::Linear lm_head_;
    nn::Rope rope_;
    std::shared_ptr<const void> keep_alive_;
    std::vector<nn::KvCache> caches_;
    Index context_ = 0, n_past_ = 0;
    std::uint64_t weight_bytes_ = 0;

    // Workspace: grows to the largest batch, then is reused (no allocation per decoded token).
    Tensor<float> x_, h_, tmp_, gate_, up_, logits_;
    nn::AttentionScratch attention_scratch_;
    nn::MoEScratch moe_scratch_;
    nn::RopeAngles angles_;
    std::vector<Index> positions_;
};

// =============================================================================================
// Loading from Hugging Face safetensors
// =============================================================================================

inline Llama4Config Llama4::config_from_hf(const hf::Llama4TextConfig& hc) {
    Llama4Config c;
    c.vocab_size = hc.vocab_size;
    c.dim = hc.hidden_size;
    c.n_layers = hc.num_hidden_layers;
    c.n_heads = hc.num_attention_heads;
    c.n_kv_heads = hc.num_key_value_heads;
    c.head_dim = hc.head_dim;
    c.expert_ffn_dim = hc.intermediate_size;
    c.dense_ffn_dim = hc.intermediate_size_mlp;
    c.n_experts = hc.num_local_experts;
    c.top_k = hc.num_experts_per_tok;
    c.max_positions = hc.max_position_embeddings;
    c.norm_eps = static_cast<float>(hc.rms_norm_eps);
    c.chunk_size = hc.attention_chunk_size;
    c.qk_norm = hc.use_qk_norm;
    c.temperature_tuning = hc.attn_temperature_tuning;
    c.attn_scale = static_cast<float>(hc.attn_scale);
    c.floor_scale = hc.floor_scale;
    c.tied_embeddings = hc.tie_word_embeddings;
    for (long id : hc.bos_token_ids) c.bos_ids.push_back(static_cast<std::int32_t>(id));
    for (long id : hc.eos_token_ids) c.eos_ids.push_back(static_cast<std::int32_t>(id));
    c.moe_layers.assign(static_cast<std::size_t>(c.n_layers), false);
    for (int l : hc.moe_layers) c.moe_layers[static_cast<std::size_t>(l)] = true;
    for (Index l = 0; l < c.n_layers; ++l) {
        c.rope_layers.push_back(hc.no_rope_layers[static_cast<std::size_t>(l)] != 0);
        c.chunked_layers.push_back(hc.chunked_layers[static_cast<std::size_t>(l)] && c.chunk_size > 0);
    }
    // Hugging Face Llama 4 computes RoPE as a complex product over consecutive pairs (2i, 2i + 1)
    // (apply_rotary_emb: view_as_complex of x reshaped to [..., d/2, 2]): the interleaved pairing,
    // in Hugging Face checkpoints too (unlike Llama 1-3's rotate_half).
    c.rope.head_dim = static_cast<int>(c.head_dim);
    c.rope.theta = hc.rope_theta;
    c.rope.pairing = nn::RopePairing::interleaved;
    if (hc.rope_scaling) {
        const auto& s = *hc.rope_scaling;
        if (s.type == "llama3") c.rope.scaling.kind = nn::RopeScaling::Kind::llama3;
        else if (s.type == "linear") c.rope.scaling.kind = nn::RopeScaling::Kind::linear;
        c.rope.scaling.factor = s.factor;
        c.rope.scaling.low_freq_factor = s.low_freq_factor;
        c.rope.scaling.high_freq_factor = s.high_freq_factor;
        c.rope.scaling.original_max_position_embeddings = s.original_max_position_embeddings;
    }
    return c;
}

inline Llama4 Llama4::from_checkpoint(const hf::Llama4TextConfig& hc, std::shared_ptr<safetensors::Checkpoint> ckpt, Index context) {
    const Llama4Config c = config_from_hf(hc);

    // Weight names: Llama4ForConditionalGeneration checkpoints keep the text model under
    // "language_model.model." (lm_head: "language_model.lm_head.weight"); Llama4ForCausalLM
    // under "model.".
    std::string prefix, head_name;
    for (const auto& [p, head] : {std::pair<std::string, std::string>{"language_model.model.", "language_model.lm_head.weight"},
                                  {"model.language_model.", "lm_head.weight"},
                                  {"model.", "lm_head.weight"}})
        if (ckpt->contains(p + "embed_tokens.weight")) {
            prefix = p;
            head_name = head;
            break;
        }
    if (prefix.empty())
        fail("Llama4: the checkpoint has no 'language_model.model.embed_tokens.weight' nor 'model.embed_tokens.weight'");

    auto weight = [&](const std::string& name, const Shape& shape) {
        Weight w = ckpt->weight(name);
        w.expect_shape(shape);
        if (w.dtype != DType::f32 && w.dtype != DType::f16 && w.dtype != DType::bf16)
            fail("Llama4: weight '", name, "' has dtype ", w.dtype, "; expected f32, f16 or bf16");
        return w;
    };
    auto linear = [&](const std::string& name, Index out, Index in, bool bias = false) {
        return nn::Linear(weight(name + ".weight", Shape{out, in}), bias ? weight(name + ".bias", Shape{out}) : Weight{});
    };
    const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, E = c.n_experts, F = c.expert_ffn_dim;
    nn::Embedding embedding(weight(prefix + "embed_tokens.weight", Shape{c.vocab_size, D}));
    std::vector<Llama4Layer> layers;
    for (Index l = 0; l < c.n_layers; ++l) {
        const std::string p = prefix + "layers." + std::to_string(l) + ".";
        const bool b = hc.attention_bias;
        Llama4Layer layer;
        layer.attn_norm = nn::RMSNorm(weight(p + "input_layernorm.weight", Shape{D}), c.norm_eps);
        layer.attention = nn::Attention(c.attention(l), linear(p + "self_attn.q_proj", H * HD, D, b), linear(p + "self_attn.k_proj", KV * HD, D, b),
                                        linear(p + "self_attn.v_proj", KV * HD, D, b), linear(p + "self_attn.o_proj", D, H * HD, b));
        layer.ffn_norm = nn::RMSNorm(weight(p + "post_attention_layernorm.weight", Shape{D}), c.norm_eps);
        layer.is_moe = c.moe_layers[static_cast<std::size_t>(l)];
        const std::string f = p + "feed_forward.";
        if (layer.is_moe) {
            // Llama4TextExperts: gate_up_proj [E, D, 2F] (gate columns first), down_proj [E, F, D].
            nn::Experts experts = nn::Experts::fused_in_out(weight(f + "experts.gate_up_proj", Shape{E, D, 2 * F}),
                                                            weight(f + "experts.down_proj", Shape{E, F, D}));
            nn::SwiGLU shared(linear(f + "shared_expert.gate_proj", F, D), linear(f + "shared_expert.up_proj", F, D),
                              linear(f + "shared_expert.down_proj", D, F));
            layer.moe = nn::MoE(linear(f + "router", E, D), std::move(experts), c.top_k, std::move(shared));
        } else {
            const Index FD = c.dense_ffn_dim;
            layer.mlp = nn::SwiGLU(linear(f + "gate_proj", FD, D), linear(f + "up_proj", FD, D), linear(f + "down_proj", D, FD));
        }
        layers.push_back(std::move(layer));
    }
    nn::RMSNorm final_norm(weight(prefix + "norm.weight", Shape{D}), c.norm_eps);
    nn::Linear lm_head = c.tied_embeddings && !ckpt->contains(head_name) ? nn::Linear(embedding.table())
                                                                          : nn::Linear(weight(head_name, Shape{c.vocab_size, D}));
    return Llama4(c, std::move(embedding), std::move(layers), std::move(final_norm), std::move(lm_head), context, ckpt);
}

// =============================================================================================
// Loading from GGUF (llama.cpp's llama4 architecture)
// =============================================================================================

inline void Llama4::apply_llama_cpp_defaults(Llama4Config& c, bool sliding_window_zero) {
    const auto L = static_cast<std::size_t>(c.n_layers);
    // llama-iswa.cpp: use_rope = n_no_rope_layer_step > 0 && (il + 1) % n_no_rope_layer_step != 0.
    const std::size_t rope_step = sliding_window_zero ? L : 4;
    c.rope_layers.assign(L, true);
    c.chunked_layers.assign(L, false);
    for (std::size_t l = 0; l < L; ++l) c.rope_layers[l] = (l + 1) % rope_step != 0;
    if (sliding_window_zero) {  // swa_type NONE; f_attn_temp_scale and n_attn_temp_floor_scale stay 0
        c.chunk_size = 0;
        c.temperature_tuning = false;
        c.attn_scale = 0;
        c.floor_scale = 0;
    } else {  // swa_type CHUNKED, n_swa 8192, set_swa_pattern(4): layer l chunked iff l % 4 < 3
        c.chunk_size = 8192;
        for (std::size_t l = 0; l < L; ++l) c.chunked_layers[l] = l % 4 < 3;
        c.temperature_tuning = true;
        c.attn_scale = 0.1f;
        c.floor_scale = 8192;
    }
    c.qk_norm = c.n_experts != 128;
}

inline Llama4Config Llama4::config_from_gguf(const gguf::File& f) {
    auto bad = [&](const auto&... parts) { fail("Llama4: ", f.path(), ": ", parts...); };
    const gguf::Value* arch = f.find("general.architecture");
    if (!arch) bad("no general.architecture (expected \"llama4\")");
    const std::string_view arch_name = arch->as<std::string_view>();
    if (arch_name != "llama4")
        bad("general.architecture is \"", arch_name, "\"; Llama4::from_gguf reads \"llama4\"",
            arch_name == "llama" ? " (Llama 2/3 files load with weft::Llama)" : "");
    // llama4.* sizes: positive integers of any stored integer type (llama.cpp's converter writes u32).
    auto count = [&](const std::string& key) {
        const auto v = f.get<Index>("llama4." + key);
        if (v <= 0) bad("llama4.", key, " is ", v, ", expected a positive count");
        return v;
    };
    auto count_or = [&](const std::string& key, Index fallback) { return f.has("llama4." + key) ? count(key) : fallback; };

    Llama4Config c;
    c.dim = count("embedding_length");
    c.n_layers = count("block_count");
    c.n_heads = count("attention.head_count");
    c.n_kv_heads = count_or("attention.head_count_kv", c.n_heads);
    if (c.n_heads % c.n_kv_heads != 0)
        bad("llama4.attention.head_count ", c.n_heads, " is not a multiple of llama4.attention.head_count_kv ", c.n_kv_heads);
    if (!f.has("llama4.attention.key_length") && c.dim % c.n_heads != 0)
        bad("llama4.embedding_length ", c.dim, " is not a multiple of llama4.attention.head_count ", c.n_heads,
            " and llama4.attention.key_length is absent");
    c.head_dim = count_or("attention.key_length", c.dim / c.n_heads);
    if (count_or("attention.value_length", c.head_dim) != c.head_dim)
        bad("llama4.attention.value_length ", count("attention.value_length"), " differs from key_length ", c.head_dim,
            "; weft's attention uses one head size");
    // llm_build_llama_iswa asserts n_rot == the head size: every RoPE layer rotates whole heads.
    if (count_or("rope.dimension_count", c.head_dim) != c.head_dim)
        bad("llama4.rope.dimension_count ", count("rope.dimension_count"), " differs from the head size ", c.head_dim,
            " (Llama 4 rotates whole heads)");
    if (c.head_dim % 2 != 0) bad("the head size ", c.head_dim, " is odd; RoPE pairs need an even head size");
    c.max_positions = count_or("context_length", 0);
    const double eps = f.get<double>("llama4.attention.layer_norm_rms_epsilon");
    if (!(eps > 0) || !std::isfinite(eps)) bad("llama4.attention.layer_norm_rms_epsilon is ", eps, ", expected a positive number");
    c.norm_eps = static_cast<float>(eps);

    const Shape* embd = f.has_tensor("token_embd.weight") ? &f.find_tensor("token_embd.weight")->shape : nullptr;
    if (!embd) bad("no tensor 'token_embd.weight'");
    if (embd->rank() != 2 || (*embd)[1] != c.dim) bad("token_embd.weight has shape ", *embd, ", expected [vocab, ", c.dim, "]");
    c.vocab_size = (*embd)[0];
    if (f.has("llama4.vocab_size") && count("vocab_size") != c.vocab_size)
        bad("llama4.vocab_size is ", count("vocab_size"), " but token_embd.weight has ", c.vocab_size, " rows");
    if (const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
        tokens && tokens->is_array() && tokens->size() != static_cast<std::uint64_t>(c.vocab_size))
        bad("tokenizer.ggml.tokens has ", tokens->size(), " tokens but token_embd.weight has ", c.vocab_size, " rows");

    // MoE layers: llama.cpp's load_tensors makes layer l MoE iff (l + 1) % step == 0, the layers
    // Hugging Face's range(step - 1, L, step) names.
    const Index step = count("interleave_moe_layer_step");
    bool any_moe = false, any_dense = false;
    for (Index l = 0; l < c.n_layers; ++l) {
        const bool moe = (l + 1) % step == 0;
        c.moe_layers.push_back(moe);
        (moe ? any_moe : any_dense) = true;
    }
    c.n_experts = f.get_or<Index>("llama4.expert_count", 0);
    if (any_moe) {
        c.n_experts = count("expert_count");
        c.top_k = count("expert_used_count");
        if (c.top_k > c.n_experts) bad("llama4.expert_used_count ", c.top_k, " exceeds llama4.expert_count ", c.n_experts);
        c.expert_ffn_dim = count("expert_feed_forward_length");
    }
    if (any_dense) c.dense_ffn_dim = count("feed_forward_length");

    c.rope.head_dim = static_cast<int>(c.head_dim);
    c.rope.theta = f.get_or<double>("llama4.rope.freq_base", 10000.0);  // llama.cpp's rope_freq_base_train without the key
    if (!(c.rope.theta > 0) || !std::isfinite(c.rope.theta)) bad("llama4.rope.freq_base is ", c.rope.theta, ", expected a positive number");
    c.rope.pairing = nn::RopePairing::interleaved;
    const std::string scaling = f.get_or<std::string>("llama4.rope.scaling.type", "none");
    if (scaling == "linear") {
        const double factor = f.get<double>("llama4.rope.scaling.factor");
        if (!(factor > 0) || !std::isfinite(factor)) bad("llama4.rope.scaling.factor is ", factor, ", expected a positive number");
        c.rope.scaling.kind = nn::RopeScaling::Kind::linear;
        c.rope.scaling.factor = factor;
    } else if (scaling != "none") {
        bad("llama4.rope.scaling.type \"", scaling, "\" is not supported (weft reads none and linear, and rope_freqs for llama3 scaling)");
    }

    // Attention: llama.cpp's constants, then the llama4_gguf keys where a file has them.
    const gguf::Value* sw = f.find(llama4_gguf::sliding_window);
    const Index window = sw ? sw->as<Index>() : -1;
    if (sw && window < 0) bad(llama4_gguf::sliding_window, " is ", window, ", expected a chunk size or 0");
    apply_llama_cpp_defaults(c, window == 0);
    if (window > 0) c.chunk_size = window;
    const auto L = static_cast<std::uint64_t>(c.n_layers);
    auto layer_flags = [&](const char* key) {
        const gguf::Value& v = f.value(key);
        if (!v.is_array() || v.element_type() != gguf::ValueType::boolean || v.size() != L)
            bad(key, " is ", v.is_array() ? "an array of " + std::to_string(v.size()) + " " + gguf::value_type_name(v.element_type())
                                          : std::string(gguf::value_type_name(v.type())),
                ", expected an array of ", L, " bools (one per layer)");
        std::vector<bool> flags;
        for (bool b : v.array<bool>()) flags.push_back(b);
        return flags;
    };
    if (const gguf::Value* p = f.find(llama4_gguf::sliding_window_pattern)) {
        if (p->is_array()) {
            c.chunked_layers = layer_flags(llama4_gguf::sliding_window_pattern);
        } else {  // llama_hparams::set_swa_pattern(n): layer l is chunked iff n == 0 or l % n < n - 1
            const auto n = p->as<Index>();
            if (n < 0) bad(llama4_gguf::sliding_window_pattern, " is ", n, ", expected a pattern length or one bool per layer");
            for (Index l = 0; l < c.n_layers; ++l) c.chunked_layers[static_cast<std::size_t>(l)] = n == 0 || l % n < n - 1;
        }
        if (c.chunk_size == 0 && std::find(c.chunked_layers.begin(), c.chunked_layers.end(), true) != c.chunked_layers.end())
            bad(llama4_gguf::sliding_window_pattern, " marks chunked layers, but ", llama4_gguf::sliding_window, " is 0 (no chunking)");
    }
    if (f.has(llama4_gguf::rope_layers)) c.rope_layers = layer_flags(llama4_gguf::rope_layers);
    if (const gguf::Value* v = f.find(llama4_gguf::temperature_scale)) {
        const double scale = v->as<double>();
        if (!std::isfinite(scale)) bad(llama4_gguf::temperature_scale, " is ", scale, ", expected a finite number");
        c.attn_scale = static_cast<float>(scale);
        c.temperature_tuning = scale != 0;
    }
    if (const gguf::Value* v = f.find(llama4_gguf::temperature_length)) {
        c.floor_scale = v->as<Index>();
        if (c.floor_scale <= 0) bad(llama4_gguf::temperature_length, " is ", c.floor_scale, ", expected a positive position count");
    }
    if (c.temperature_tuning && c.floor_scale <= 0)
        bad(llama4_gguf::temperature_scale, " turns temperature tuning on, but ", llama4_gguf::temperature_length, " is absent");
    if (const gguf::Value* v = f.find(llama4_gguf::use_qk_norm)) c.qk_norm = v->as<bool>();

    // Special tokens: bos, and every id that ends a turn (eos, eot, eom); ids outside int32 (-1 or
    // 0xFFFFFFFF for "none") are skipped.
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
    c.tied_embeddings = !f.has_tensor("output.weight");
    return c;
}

inline Llama4 Llama4::from_gguf_file(std::shared_ptr<gguf::File> file, Index context) {
    const gguf::File& f = *file;
    auto bad = [&](const auto&... parts) { fail("Llama4: ", f.path(), ": ", parts...); };
    const Llama4Config c = config_from_gguf(f);

    auto weight = [&](const std::string& name, const Shape& shape) {
        if (!f.has_tensor(name)) bad("no tensor '", name, "'");
        Weight w = f.weight(name);
        if (!(w.shape == shape)) bad("tensor '", name, "' has shape ", w.shape, ", expected ", shape);
        return w;
    };
    // Norm weights and biases are read as floats (f32, f16 or bf16).
    auto float_weight = [&](const std::string& name, const Shape& shape) {
        Weight w = weight(name, shape);
        if (w.dtype != DType::f32 && w.dtype != DType::f16 && w.dtype != DType::bf16)
            bad("tensor '", name, "' is ", w.dtype, "; expected f32, f16 or bf16");
        return w;
    };
    // llama.cpp's llama4 loader creates no biases; a file that has them gets them used.
    auto linear = [&](const std::string& name, Index out, Index in) {
        const std::string b = name + ".bias";
        return nn::Linear(weight(name + ".weight", Shape{out, in}), f.has_tensor(b) ? float_weight(b, Shape{out}) : Weight{});
    };

    const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, E = c.n_experts, F = c.expert_ffn_dim;
    nn::Embedding embedding(weight("token_embd.weight", Shape{c.vocab_size, D}));
    std::vector<Llama4Layer> layers;
    for (Index l = 0; l < c.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        Llama4Layer layer;
        layer.attn_norm = nn::RMSNorm(float_weight(p + "attn_norm.weight", Shape{D}), c.norm_eps);
        layer.attention = nn::Attention(c.attention(l), linear(p + "attn_q", H * HD, D), linear(p + "attn_k", KV * HD, D),
                                        linear(p + "attn_v", KV * HD, D), linear(p + "attn_output", D, H * HD));
        layer.ffn_norm = nn::RMSNorm(float_weight(p + "ffn_norm.weight", Shape{D}), c.norm_eps);
        layer.is_moe = c.moe_layers[static_cast<std::size_t>(l)];
        if (layer.is_moe) {
            // GGUF's expert banks (ggml ne {D, F, E} and {F, D, E}): [E, F, D] and [E, D, F] in
            // PyTorch order, each expert an nn::Linear [out, in] view into the file.
            const Weight gate = weight(p + "ffn_gate_exps.weight", Shape{E, F, D}), up = weight(p + "ffn_up_exps.weight", Shape{E, F, D}),
                         down = weight(p + "ffn_down_exps.weight", Shape{E, D, F});
            nn::Experts experts = nn::Experts::out_in(gate, up, down);
            // llama.cpp: the shared expert's hidden size is the experts' (n_ff_shexp = n_ff_exp).
            nn::SwiGLU shared(linear(p + "ffn_gate_shexp", F, D), linear(p + "ffn_up_shexp", F, D), linear(p + "ffn_down_shexp", D, F));
            layer.moe = nn::MoE(linear(p + "ffn_gate_inp", E, D), std::move(experts), c.top_k, std::move(shared));
        } else {
            const Index FD = c.dense_ffn_dim;
            layer.mlp = nn::SwiGLU(linear(p + "ffn_gate", FD, D), linear(p + "ffn_up", FD, D), linear(p + "ffn_down", D, FD));
        }
        layers.push_back(std::move(layer));
    }
    nn::RMSNorm final_norm(float_weight("output_norm.weight", Shape{D}), c.norm_eps);
    // GGUF files of tied models have no output.weight (llama.cpp then reads token_embd).
    nn::Linear lm_head = c.tied_embeddings ? nn::Linear(embedding.table()) : nn::Linear(weight("output.weight", Shape{c.vocab_size, D}));

    // llama3 scaling comes precomputed, as Llama files carry it: inv_freq[j] / rope_freqs[j].
    std::vector<float> factors;
    if (f.has_tensor("rope_freqs.weight")) {
        const Weight r = f.weight("rope_freqs.weight");
        if (!(r.shape == Shape{HD / 2}) || (r.dtype != DType::f32 && r.dtype != DType::f16 && r.dtype != DType::bf16))
            bad("rope_freqs.weight is ", r.dtype, " ", r.shape, ", expected f32 [", HD / 2, "]");
        visit_float_weight(r, [&](auto v) {
            for (Index j = 0; j < v.numel(); ++j) factors.push_back(convert<float>(v.data()[j]));
        });
        for (std::size_t j = 0; j < factors.size(); ++j)
            if (!(factors[j] > 0) || !std::isfinite(factors[j])) bad("rope_freqs.weight[", j, "] is ", factors[j], ", expected a positive factor");
    }
    Llama4 model(c, std::move(embedding), std::move(layers), std::move(final_norm), std::move(lm_head), context, std::move(file));
    if (!factors.empty()) model.rope_.divide_frequencies(factors);
    return model;
}

}  // namespace weft
