// weft/cuda/llama.cuh — weft::cuda::Llama: models/llama.hpp on one GPU, from a Hugging Face directory
// or a GGUF file. Weights copied once in their stored dtype; KV cache, RoPE table and activations on
// the device. forward() runs prompts (cuBLAS);
// decode() replays a CUDA graph (token and position read from device memory, so one graph serves all).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "weft/core/weight.hpp"
#include "weft/io/gguf.hpp"
#include "weft/io/hf_config.hpp"
#include "weft/io/safetensors.hpp"
#include "weft/models/llama.hpp"
#include "weft/nn/attention.hpp"
#include "weft/nn/rope.hpp"
#include "weft/cuda/context.cuh"
#include "weft/cuda/error.cuh"
#include "weft/cuda/expr.cuh"
#include "weft/cuda/linear.cuh"
#include "weft/cuda/memory.cuh"
#include "weft/cuda/nn.cuh"
#include "weft/cuda/reduce.cuh"
#include "weft/cuda/tensor.cuh"
#include "weft/cuda/weight.cuh"

namespace weft::cuda {

// ---- the weights on the host, by role -------------------------------------------------------------

// One decoder layer's weights as host Weights (biases empty when the model has none).
struct LlamaLayerWeights {
    Weight attn_norm, wq, wk, wv, wo, bq, bk, bv, bo, ffn_norm, gate, up, down;
    Weight bgate, bup, bdown;  // GGUF files may carry MLP biases
};

// A whole model's weights on the host (a mapped checkpoint, a GGUF file, or buffers built in
// memory), which a device Llama copies once. `keep_alive` owns whatever the Weights point into.
struct LlamaWeights {
    LlamaConfig config;
    Weight embedding, final_norm, lm_head;  // lm_head may view the embedding table (tied models)
    std::vector<LlamaLayerWeights> layers;
    std::vector<float> rope_factors;  // GGUF rope_freqs (Llama 3.1 scaling): inv_freq[j] / factor[j]
    std::shared_ptr<const void> keep_alive;

    // A Hugging Face directory (config.json + safetensors) or a GGUF file, read as
    // weft::Llama::from_pretrained reads them; the weights stay memory-mapped until they are copied
    // to the device.
    static LlamaWeights from_pretrained(const std::string& path) {
        namespace fs = std::filesystem;
        if (weft::Llama::is_gguf(path)) return from_gguf(path);
        if (fs::is_directory(path) && !fs::exists(fs::path(path) / "config.json"))
            fail("Llama: '", path, "' has no config.json (expected a Hugging Face model directory)");
        const hf::LlamaConfig hc = hf::load_llama_config(path);
        auto ckpt = std::make_shared<safetensors::Checkpoint>(path);

        LlamaWeights m;
        LlamaConfig& c = m.config;
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

        auto weight = [&](const std::string& name, const Shape& shape) {
            Weight w = ckpt->weight(name);
            w.expect_shape(shape);
            return w;
        };
        auto bias = [&](const std::string& name, Index n) { return hc.attention_bias ? weight(name, Shape{n}) : Weight{}; };
        const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, F = c.ffn_dim;
        m.embedding = weight("model.embed_tokens.weight", Shape{c.vocab_size, D});
        for (Index l = 0; l < c.n_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            LlamaLayerWeights L;
            L.attn_norm = weight(p + "input_layernorm.weight", Shape{D});
            L.wq = weight(p + "self_attn.q_proj.weight", Shape{H * HD, D});
            L.wk = weight(p + "self_attn.k_proj.weight", Shape{KV * HD, D});
            L.wv = weight(p + "self_attn.v_proj.weight", Shape{KV * HD, D});
            L.wo = weight(p + "self_attn.o_proj.weight", Shape{D, H * HD});
            L.bq = bias(p + "self_attn.q_proj.bias", H * HD);
            L.bk = bias(p + "self_attn.k_proj.bias", KV * HD);
            L.bv = bias(p + "self_attn.v_proj.bias", KV * HD);
            L.bo = bias(p + "self_attn.o_proj.bias", D);
            L.ffn_norm = weight(p + "post_attention_layernorm.weight", Shape{D});
            L.gate = weight(p + "mlp.gate_proj.weight", Shape{F, D});
            L.up = weight(p + "mlp.up_proj.weight", Shape{F, D});
            L.down = weight(p + "mlp.down_proj.weight", Shape{D, F});
            m.layers.push_back(std::move(L));
        }
        m.final_norm = weight("model.norm.weight", Shape{D});
        m.lm_head = c.tied_embeddings && !ckpt->contains("lm_head.weight") ? m.embedding : weight("lm_head.weight", Shape{c.vocab_size, D});
        m.keep_alive = ckpt;
        return m;
    }

    // A GGUF file whose general.architecture is "llama" (F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q5_K/Q6_K
    // tensors), with the keys and tensor names weft::Llama::from_gguf reads.
    static LlamaWeights from_gguf(const std::string& path, const gguf::Limits& limits = {}) {
        auto file = std::make_shared<gguf::File>(path, limits);
        const gguf::File& f = *file;
        auto bad = [&](const auto&... parts) { fail("Llama: ", f.path(), ": ", parts...); };
        const gguf::Value* arch = f.find("general.architecture");
        if (!arch) bad("no general.architecture (expected \"llama\")");
        if (arch->as<std::string_view>() != "llama")
            bad("general.architecture is \"", arch->as<std::string_view>(), "\"; weft::cuda::Llama reads \"llama\"");
        auto count = [&](const std::string& key) {
            const auto v = f.get<Index>("llama." + key);
            if (v <= 0) bad("llama.", key, " is ", v, ", expected a positive count");
            return v;
        };
        auto count_or = [&](const std::string& key, Index fallback) { return f.has("llama." + key) ? count(key) : fallback; };

        LlamaWeights m;
        LlamaConfig& c = m.config;
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
            bad("llama.attention.value_length differs from key_length ", c.head_dim, "; weft's attention uses one head size");
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
            if (scaling == "none") linear = f.get<double>("llama.rope.scale_linear");
            if (!(linear > 0) || !std::isfinite(linear)) bad("linear RoPE scaling factor is ", linear, ", expected a positive number");
            c.rope.scaling.kind = nn::RopeScaling::Kind::linear;
            c.rope.scaling.factor = linear;
        } else if (scaling != "none") {
            bad("llama.rope.scaling.type \"", scaling, "\" is not supported (weft reads none and linear, and rope_freqs)");
        }

        // bos, and every id that ends a turn (eos, eot, eom); -1 / 0xFFFFFFFF ("none") skipped.
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

        auto weight = [&](const std::string& name, const Shape& shape) {
            if (!f.has_tensor(name)) bad("no tensor '", name, "'");
            Weight w = f.weight(name);
            if (!(w.shape == shape)) bad("tensor '", name, "' has shape ", w.shape, ", expected ", shape);
            return w;
        };
        auto float_weight = [&](const std::string& name, const Shape& shape) {
            Weight w = weight(name, shape);
            if (w.dtype != DType::f32 && w.dtype != DType::f16 && w.dtype != DType::bf16)
                bad("tensor '", name, "' is ", w.dtype, "; expected f32, f16 or bf16");
            return w;
        };
        auto bias = [&](const std::string& name, Index n) { return f.has_tensor(name) ? float_weight(name, Shape{n}) : Weight{}; };

        if (!f.has_tensor("token_embd.weight")) bad("no tensor 'token_embd.weight'");
        const Shape embd = f.find_tensor("token_embd.weight")->shape;
        if (embd.rank() != 2 || embd[1] != c.dim) bad("token_embd.weight has shape ", embd, ", expected [vocab, ", c.dim, "]");
        c.vocab_size = embd[0];
        if (f.has("llama.vocab_size") && count("vocab_size") != c.vocab_size)
            bad("llama.vocab_size is ", count("vocab_size"), " but token_embd.weight has ", c.vocab_size, " rows");

        const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, F = c.ffn_dim;
        m.embedding = weight("token_embd.weight", Shape{c.vocab_size, D});
        for (Index l = 0; l < c.n_layers; ++l) {
            const std::string p = "blk." + std::to_string(l) + ".";
            LlamaLayerWeights L;
            L.attn_norm = float_weight(p + "attn_norm.weight", Shape{D});
            L.wq = weight(p + "attn_q.weight", Shape{H * HD, D});
            L.wk = weight(p + "attn_k.weight", Shape{KV * HD, D});
            L.wv = weight(p + "attn_v.weight", Shape{KV * HD, D});
            L.wo = weight(p + "attn_output.weight", Shape{D, H * HD});
            L.bq = bias(p + "attn_q.bias", H * HD);
            L.bk = bias(p + "attn_k.bias", KV * HD);
            L.bv = bias(p + "attn_v.bias", KV * HD);
            L.bo = bias(p + "attn_output.bias", D);
            L.ffn_norm = float_weight(p + "ffn_norm.weight", Shape{D});
            L.gate = weight(p + "ffn_gate.weight", Shape{F, D});
            L.up = weight(p + "ffn_up.weight", Shape{F, D});
            L.down = weight(p + "ffn_down.weight", Shape{D, F});
            L.bgate = bias(p + "ffn_gate.bias", F);
            L.bup = bias(p + "ffn_up.bias", F);
            L.bdown = bias(p + "ffn_down.bias", D);
            m.layers.push_back(std::move(L));
        }
        m.final_norm = float_weight("output_norm.weight", Shape{D});
        c.tied_embeddings = !f.has_tensor("output.weight");  // GGUF files of tied models have no output.weight
        m.lm_head = c.tied_embeddings ? m.embedding : weight("output.weight", Shape{c.vocab_size, D});
        if (f.has_tensor("rope_freqs.weight")) {
            const Weight r = f.weight("rope_freqs.weight");
            if (!(r.shape == Shape{c.rope.rotary_dim / 2}) || (r.dtype != DType::f32 && r.dtype != DType::f16 && r.dtype != DType::bf16))
                bad("rope_freqs.weight is ", r.dtype, " ", r.shape, ", expected f32 [", c.rope.rotary_dim / 2, "]");
            m.rope_factors.resize(static_cast<std::size_t>(r.shape[0]));
            quant::dequantize_row(r.dtype, r.data, m.rope_factors.data(), r.shape[0]);
            for (std::size_t j = 0; j < m.rope_factors.size(); ++j)
                if (!(m.rope_factors[j] > 0) || !std::isfinite(m.rope_factors[j]))
                    bad("rope_freqs.weight[", j, "] is ", m.rope_factors[j], ", expected a positive factor");
        }
        m.keep_alive = std::move(file);
        return m;
    }
};

// ---- the device model --------------------------------------------------------------------------

class Llama {
public:
    // Prompts longer than this run in batches of it (bounds the activation buffers).
    static constexpr Index max_batch = 512;

    // Loads a Hugging Face directory or a GGUF file and copies its weights to the current device.
    // `context`: the KV cache capacity in tokens (0: the model's trained context, at most 4096).
    static Llama from_pretrained(const std::string& path, Index context = 0) { return Llama(LlamaWeights::from_pretrained(path), context); }

    Llama(const LlamaWeights& w, Index context = 0) : config_(w.config), ctx_(std::make_unique<Context>()) {
        const LlamaConfig& c = config_;
        if (c.n_layers != static_cast<Index>(w.layers.size()))
            fail("cuda::Llama: the config has ", c.n_layers, " layers, the weights ", w.layers.size());
        if (context <= 0) context = std::min<Index>(c.max_positions > 0 ? c.max_positions : 4096, 4096);
        context_ = context;
        batch_ = std::min(max_batch, context);
        const Index D = c.dim, H = c.n_heads, KV = c.n_kv_heads, HD = c.head_dim, F = c.ffn_dim, V = c.vocab_size;
        if (H <= 0 || KV <= 0 || H % KV != 0 || HD <= 0) fail("cuda::Llama: ", H, " heads cannot be grouped over ", KV, " kv heads");
        attention_ = nn::AttentionConfig{H, KV, HD, true, c.rope.pairing, 0};
        scale_ = 1.0f / std::sqrt(static_cast<float>(HD));

        // Weights, in their stored dtypes.
        embedding_ = DeviceWeight::upload(w.embedding);
        if (!(embedding_.shape() == Shape{V, D})) fail("cuda::Llama: embedding of shape ", embedding_.shape(), ", expected [", V, ", ", D, "]");
        weight_bytes_ = embedding_.row_bytes();  // decoding reads one row of the table
        for (std::size_t l = 0; l < w.layers.size(); ++l) {
            const LlamaLayerWeights& L = w.layers[l];
            const std::string p = "layer " + std::to_string(l) + " ";
            Layer d;
            d.attn_norm = norm_weight(L.attn_norm, D);
            d.qkv = Projection({L.wq, L.wk, L.wv}, {L.bq, L.bk, L.bv}, p + "qkv");
            d.wo = Projection({L.wo}, {L.bo}, p + "o_proj");
            d.ffn_norm = norm_weight(L.ffn_norm, D);
            d.gate_up = Projection({L.gate, L.up}, {L.bgate, L.bup}, p + "gate_up");
            d.down = Projection({L.down}, {L.bdown}, p + "down");
            if (d.qkv.out != (H + 2 * KV) * HD || d.qkv.in != D || d.wo.out != D || d.wo.in != H * HD || d.gate_up.out != 2 * F ||
                d.gate_up.in != D || d.down.out != D || d.down.in != F)
                fail("cuda::Llama: layer ", l, " projections do not match dim ", D, ", ", H, "/", KV, " heads of ", HD, ", ffn ", F);
            weight_bytes_ += d.attn_norm.bytes() + d.ffn_norm.bytes() + d.qkv.bytes() + d.wo.bytes() + d.gate_up.bytes() + d.down.bytes();
            layers_.push_back(std::move(d));
        }
        final_norm_ = norm_weight(w.final_norm, D);
        lm_head_ = w.lm_head.data == w.embedding.data ? embedding_ : DeviceWeight::upload(w.lm_head);
        if (!(lm_head_.shape() == Shape{V, D})) fail("cuda::Llama: lm_head of shape ", lm_head_.shape(), ", expected [", V, ", ", D, "]");
        weight_bytes_ += final_norm_.bytes() + lm_head_.bytes();

        // KV caches (zeroed), RoPE table for every position of the context, activations.
        for (Index l = 0; l < c.n_layers; ++l) {
            caches_.emplace_back(DeviceTensor<float>(Shape{context, KV, HD}), DeviceTensor<float>(Shape{context, KV, HD}));
        }
        nn::Rope rope(c.rope);
        if (!w.rope_factors.empty()) rope.divide_frequencies(w.rope_factors);
        if (2 * static_cast<Index>(rope.inv_freq().size()) > HD) fail("cuda::Llama: rotary dimension exceeds head_dim ", HD);
        rope_table_ = RopeTable(rope, context);
        x_ = DeviceTensor<float>::uninitialized(Shape{batch_, D});
        h_ = DeviceTensor<float>::uninitialized(Shape{batch_, D});
        qkv_ = DeviceTensor<float>::uninitialized(Shape{batch_, (H + 2 * KV) * HD});
        attn_ = DeviceTensor<float>::uninitialized(Shape{batch_, H * HD});
        gate_up_ = DeviceTensor<float>::uninitialized(Shape{batch_, 2 * F});
        act_ = DeviceTensor<float>::uninitialized(Shape{batch_, F});
        last_logits_ = DeviceTensor<float>::uninitialized(Shape{1, V});
        io_ = DeviceTensor<std::int32_t>(Shape{2 * batch_});
        host_io_ = PinnedBuffer(static_cast<std::size_t>(2 * batch_) * sizeof(std::int32_t));
        argmax_ = DeviceTensor<std::int32_t>(Shape{1, 1});
        host_argmax_ = PinnedBuffer(sizeof(std::int32_t));

        // Split-KV decoding: at most 64 key ranges of at least 64 keys.
        split_.keys_per_split = std::max<Index>(64, (context + 63) / 64 + 31) / 32 * 32;
        split_.splits = static_cast<int>((context + split_.keys_per_split - 1) / split_.keys_per_split);
        split_partial_ = DeviceBuffer(split_kv_floats(1, attention_, split_.splits) * sizeof(float));
        split_.partial = split_partial_.as<float>();
        detail::prepare_attention(static_cast<int>(HD));
        WEFT_CUDA_CHECK(cudaDeviceSynchronize());
    }

    Llama(Llama&&) noexcept = default;
    Llama& operator=(Llama&&) noexcept = default;

    const LlamaConfig& config() const { return config_; }
    Index context_size() const { return context_; }
    // Tokens already in the KV cache: the position the next token gets.
    Index position() const { return n_past_; }
    void reset() { n_past_ = 0; }
    void truncate(Index keep) {
        if (keep < 0 || keep > n_past_) fail("cuda::Llama::truncate: position ", keep, " is outside 0..", n_past_);
        n_past_ = keep;
    }
    // Bytes of weights read per decoded token (every weight once; the embedding only one row).
    std::uint64_t weight_bytes_per_token() const { return weight_bytes_; }
    // Decode with a CUDA graph (default) or launch kernel by kernel (same kernels, same bits).
    void set_cuda_graphs(bool on) { use_graphs_ = on; }
    Context& context() { return *ctx_; }
    void synchronize() const { ctx_->synchronize(); }

    // Runs `tokens` at positions position()..position()+T-1, appending them to the KV cache.
    // Returns device logits [T, vocab] (Logits::all) or [1, vocab] (Logits::last), valid until
    // the next call; copy them with weft::cuda::to_host.
    DeviceTensorView<const float> forward(std::span<const std::int32_t> tokens, Logits which = Logits::all) {
        const Index T = static_cast<Index>(tokens.size()), V = config_.vocab_size;
        if (T == 0) fail("cuda::Llama::forward: no tokens");
        if (n_past_ + T > context_)
            fail("cuda::Llama::forward: ", n_past_, " cached + ", T, " new tokens exceed the context of ", context_, " tokens");
        if (which == Logits::all && logits_.numel() < T * V) {
            synchronize();
            logits_ = DeviceTensor<float>::uninitialized(Shape{T, V});
        }
        for (Index b0 = 0; b0 < T; b0 += batch_) {
            const Index n = std::min(batch_, T - b0);
            upload(tokens.subspan(static_cast<std::size_t>(b0), static_cast<std::size_t>(n)));
            const bool last_batch = b0 + n == T;
            if (which == Logits::all) run(n, logits_.data() + b0 * V, true);
            else run(n, last_batch ? last_logits_.data() : nullptr, false);
            n_past_ += n;
        }
        if (which == Logits::all) return DeviceTensorView<const float>(logits_.data(), Shape{T, V});
        return last_logits_.view();
    }

    // One step of generation: the device logits [vocab] after `token`.
    DeviceTensorView<const float> decode(std::int32_t token) {
        if (n_past_ + 1 > context_) fail("cuda::Llama::decode: the context of ", context_, " tokens is full");
        upload(std::span(&token, 1));
        if (!use_graphs_ || decodes_ == 0) {
            run(1, last_logits_.data(), false);  // the first step also loads every kernel
        } else {
            if (!graph_) capture_decode_graph();
            WEFT_CUDA_CHECK(cudaGraphLaunch(graph_.get(), ctx_->stream()));
        }
        ++decodes_;
        ++n_past_;
        return last_logits_.view().select(0, 0);
    }

    // The index of the largest logit (greedy decoding); waits for the device.
    std::int32_t argmax(DeviceTensorView<const float> logits) {
        const Index V = config_.vocab_size;
        if (logits.numel() != V || !logits.is_contiguous()) fail("cuda::Llama::argmax: logits of shape ", logits.shape(), ", expected [", V, "]");
        row_argmax(DeviceTensorView<const float>(logits.data(), Shape{1, V}), argmax_.view(), ctx_->stream());
        WEFT_CUDA_CHECK(cudaMemcpyAsync(host_argmax_.data(), argmax_.data(), sizeof(std::int32_t), cudaMemcpyDeviceToHost, ctx_->stream()));
        synchronize();
        return *host_argmax_.as<std::int32_t>();
    }

private:
    // Projections that read the same input (q/k/v, gate/up): stacked into one weight when they
    // share a dtype (one kernel), else kept apart and written to column ranges of one output.
    struct Projection {
        std::vector<DeviceWeight> parts;
        std::vector<Index> offsets;
        DeviceTensor<float> bias;  // [out] f32, empty when no part has a bias
        Index out = 0, in = 0;

        Projection() = default;
        Projection(std::vector<Weight> weights, std::vector<Weight> biases, const std::string& name) {
            bool same = true;
            for (const Weight& w : weights) {
                if (w.shape.rank() != 2) fail("cuda::Llama: ", name, ": weight '", w.name, "' of shape ", w.shape, ", expected [out, in]");
                same = same && w.dtype == weights[0].dtype;
            }
            in = weights[0].shape[1];
            if (same) parts.push_back(DeviceWeight::upload_stacked(weights, name));
            else for (const Weight& w : weights) parts.push_back(DeviceWeight::upload(w));
            bool any_bias = false;
            for (const Weight& b : biases) any_bias = any_bias || !b.empty();
            std::vector<float> host_bias;
            for (std::size_t i = 0; i < weights.size(); ++i) {
                const Index n = weights[i].shape[0];
                if (any_bias) {
                    host_bias.resize(static_cast<std::size_t>(out + n), 0.0f);
                    if (!biases[i].empty()) {
                        biases[i].expect_shape(Shape{n});
                        quant::dequantize_row(biases[i].dtype, biases[i].data, host_bias.data() + out, n);
                    }
                }
                out += n;
            }
            Index offset = 0;
            for (const DeviceWeight& p : parts) offsets.push_back(std::exchange(offset, offset + p.out_features()));
            if (any_bias) bias = to_device(Tensor<float>(Shape{out}, std::span<const float>(host_bias)));
        }
        std::size_t bytes() const {
            std::size_t total = static_cast<std::size_t>(bias.numel()) * sizeof(float);
            for (const DeviceWeight& p : parts) total += p.bytes();
            return total;
        }
        // y [M, out] (+)= x [M, in] · Wᵀ + bias.
        void forward(Context& ctx, DeviceTensorView<const float> x, DeviceTensorView<float> y, bool accumulate) const {
            for (std::size_t i = 0; i < parts.size(); ++i) {
                const Index lo = offsets[i], hi = lo + parts[i].out_features();
                const DeviceTensorView<const float> b = bias.numel() ? bias.view().slice(0, lo, hi) : DeviceTensorView<const float>();
                linear(ctx, x, parts[i], y.slice(1, lo, hi), b, accumulate);
            }
        }
    };

    struct Layer {
        DeviceWeight attn_norm, ffn_norm;
        Projection qkv, wo, gate_up, down;
    };

    // A graph instance, destroyed with the model.
    struct GraphExec {
        cudaGraphExec_t exec = nullptr;
        GraphExec() = default;
        explicit GraphExec(cudaGraphExec_t e) : exec(e) {}
        GraphExec(GraphExec&& o) noexcept : exec(std::exchange(o.exec, nullptr)) {}
        GraphExec& operator=(GraphExec&& o) noexcept {
            std::swap(exec, o.exec);
            return *this;
        }
        ~GraphExec() {
            if (exec) (void)cudaGraphExecDestroy(exec);
        }
        explicit operator bool() const { return exec != nullptr; }
        cudaGraphExec_t get() const { return exec; }
    };

    static DeviceWeight norm_weight(const Weight& w, Index dim) {
        w.expect_shape(Shape{dim});
        return DeviceWeight::upload(w);
    }

    // Token ids and positions into io_ (device): ids at [0, T), positions at [batch, batch + T).
    void upload(std::span<const std::int32_t> tokens) {
        const Index T = static_cast<Index>(tokens.size());
        for (Index t = 0; t < T; ++t)
            if (tokens[t] < 0 || tokens[t] >= config_.vocab_size)
                fail("cuda::Llama: token id ", tokens[t], " is outside the vocabulary of ", config_.vocab_size);
        io_done_.synchronize();  // the previous copy has read the pinned buffer
        std::int32_t* host = host_io_.as<std::int32_t>();
        std::memcpy(host, tokens.data(), static_cast<std::size_t>(T) * sizeof(std::int32_t));
        for (Index t = 0; t < T; ++t) host[batch_ + t] = static_cast<std::int32_t>(n_past_ + t);
        WEFT_CUDA_CHECK(cudaMemcpyAsync(io_.data(), host, static_cast<std::size_t>(2 * batch_) * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                        ctx_->stream()));
        io_done_.record(ctx_->stream());
    }

    static DeviceTensorView<float> rows(DeviceTensor<float>& t, Index n) { return t.view().slice(0, 0, n); }

    // T tokens whose ids and positions are in io_: through every layer, then logits for every row
    // (all_rows) or for the last one, into `logits` (skipped when null).
    void run(Index T, float* logits, bool all_rows) {
        const cudaStream_t s = ctx_->stream();
        const Index H = config_.n_heads, KV = config_.n_kv_heads, HD = config_.head_dim, F = config_.ffn_dim, V = config_.vocab_size;
        const float eps = config_.norm_eps;
        auto x = rows(x_, T), h = rows(h_, T), qkv = rows(qkv_, T), attn = rows(attn_, T), gu = rows(gate_up_, T), act = rows(act_, T);
        const std::int32_t* tokens = io_.data();
        const std::int32_t* positions = io_.data() + batch_;
        // q heads inside qkv: [T, H, HD] with qkv's row stride.
        const DeviceTensorView<const float> q(qkv.data(), Shape{T, H, HD}, Strides{qkv_.shape()[1], HD, 1});

        embedding(embedding_, tokens, T, x, s);
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const Layer& L = layers_[l];
            auto& [cache_k, cache_v] = caches_[l];
            rms_norm(x, L.attn_norm, eps, h, s);
            L.qkv.forward(*ctx_, h, qkv, false);
            qkv_rope_store(qkv, attention_, &rope_table_, positions, cache_k.view(), cache_v.view(), s);
            attention(attention_, scale_, q, cache_k.view(), cache_v.view(), positions, attn, s, T == 1 ? split_ : SplitKv{});
            L.wo.forward(*ctx_, attn, x, true);
            rms_norm(x, L.ffn_norm, eps, h, s);
            L.gate_up.forward(*ctx_, h, gu, false);
            assign(act, silu(gu.slice(1, 0, F)) * gu.slice(1, F, 2 * F), s);
            L.down.forward(*ctx_, act, x, true);
        }
        if (!logits) return;
        if (all_rows) {
            rms_norm(x, final_norm_, eps, h, s);
            linear(*ctx_, h, lm_head_, DeviceTensorView<float>(logits, Shape{T, V}));
        } else {
            auto last_h = h.slice(0, 0, 1);
            rms_norm(x.slice(0, T - 1, T), final_norm_, eps, last_h, s);
            linear(*ctx_, last_h, lm_head_, DeviceTensorView<float>(logits, Shape{1, V}));
        }
    }

    void capture_decode_graph() {
        const cudaStream_t s = ctx_->stream();
        cudaGraph_t graph = nullptr;
        WEFT_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        try {
            run(1, last_logits_.data(), false);
        } catch (...) {
            (void)cudaStreamEndCapture(s, &graph);
            if (graph) (void)cudaGraphDestroy(graph);
            throw;
        }
        WEFT_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
        cudaGraphExec_t exec = nullptr;
        const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
        (void)cudaGraphDestroy(graph);
        WEFT_CUDA_CHECK(e);
        graph_ = GraphExec(exec);
    }

    LlamaConfig config_;
    std::unique_ptr<Context> ctx_;
    Index context_ = 0, batch_ = 0, n_past_ = 0, decodes_ = 0;
    std::uint64_t weight_bytes_ = 0;
    bool use_graphs_ = true;
    nn::AttentionConfig attention_;
    float scale_ = 1.0f;

    DeviceWeight embedding_, final_norm_, lm_head_;
    std::vector<Layer> layers_;
    std::vector<std::pair<DeviceTensor<float>, DeviceTensor<float>>> caches_;  // keys, values: [context, KV, HD]
    RopeTable rope_table_;
    DeviceTensor<float> x_, h_, qkv_, attn_, gate_up_, act_, last_logits_, logits_;
    DeviceTensor<std::int32_t> io_, argmax_;
    PinnedBuffer host_io_, host_argmax_;
    Event io_done_;
    SplitKv split_;
    DeviceBuffer split_partial_;
    GraphExec graph_;
};

}  // namespace weft::cuda
