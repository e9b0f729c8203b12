// weft/nn/linear.hpp — Linear (y = x·Wᵀ + b, W stored [out, in] in its file dtype) and Embedding
// (row gather). Activations are f32; weights are read in place as f32, f16, bf16 or GGUF blocks
// (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K: integer kernels on 8-bit activations, cpu/quant_matmul.hpp).
// Prompts on 16-bit weights follow MatmulPrecision (core/precision.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "weft/core/precision.hpp"
#include "weft/core/threading.hpp"
#include "weft/cpu/gemm.hpp"
#include "weft/cpu/gemm16_amx.hpp"
#include "weft/cpu/gemm_bf16.hpp"
#include "weft/cpu/gemv.hpp"
#include "weft/cpu/quant_matmul.hpp"
#include "weft/cpu/simd.hpp"
#include "weft/expr/assign.hpp"
#include "weft/core/weight.hpp"
#include "weft/quant/dequantize.hpp"
#include "weft/quant/interleave.hpp"

namespace weft::nn {

namespace detail {

// Widens n 16-bit floats to f32 (exact).
template <class W>
void widen(const W* src, float* dst, Index n) {
    using simd::VecF;
    Index i = 0;
    for (; i + VecF::width <= n; i += VecF::width) {
        if constexpr (std::is_same_v<W, f16>) VecF::load_f16(src + i).store(dst + i);
        else VecF::load_bf16(src + i).store(dst + i);
    }
    for (; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}

// out [M, N] = x [M, K] · w [N, K]ᵀ for 16-bit float weights and larger M (prefill): panels of W
// rows are widened to f32 (exactly) and multiplied with the packed f32 kernel. Each panel repacks
// x, so panels are large: up to 4 MiB of widened rows (256 rows of K = 2048: 114 → 172 GFLOP/s
// on Zen 4, against 32-row panels), and small enough for two per thread where N allows.
template <class W>
void matmul_nt_widened(Index M, Index N, Index K, const float* x, Index ldx, const W* w, float* out, Index ldo) {
    const Index by_size = (Index(1) << 20) / std::max<Index>(K, 1), by_threads = (N + 2 * num_threads() - 1) / (2 * num_threads());
    const Index panel_rows = std::clamp<Index>(std::min(by_size, by_threads) / 32 * 32, 32, 256);
    const Index panels = (N + panel_rows - 1) / panel_rows;
    parallel_for(panels, 1, [&](Index begin, Index end) {
        thread_local std::vector<float> panel;
        panel.resize(static_cast<std::size_t>(panel_rows * K));
        for (Index p = begin; p < end; ++p) {
            const Index n0 = p * panel_rows, rows = std::min(panel_rows, N - n0);
            widen(w + n0 * K, panel.data(), rows * K);
            cpu::gemm_f32(M, rows, K, x, ldx, 1, panel.data(), 1, K, out + n0, ldo);  // serial here
        }
    });
}

}  // namespace detail

// What a batch through a Linear runs on (Linear::unit): the streaming GEMV of decoding, or the
// unit whose peak bounds a prompt: f32 FMA, bf16 dot products, int8 dot products or AMX tiles.
enum class MatmulUnit { gemv, f32_fma, bf16_dot, int8_dot, amx_tiles };

// y [..., out] = x [..., in] · Wᵀ (+ bias). W: [out, in] in f32, f16, bf16 or a quantized dtype;
// bias: [out] in f32, f16 or bf16.
class Linear {
public:
    Linear() = default;
    explicit Linear(Weight weight, Weight bias = {}) : weight_(std::move(weight)), bias_(std::move(bias)) {
        if (weight_.shape.rank() != 2) fail("Linear: weight '", weight_.name, "' has shape ", weight_.shape, ", expected [out, in]");
        if (!bias_.empty()) bias_.expect_shape(Shape{out_features()});
        if (is_quantized(weight_.dtype)) (void)weight_.row_bytes();  // throws unless rows are whole blocks
        quant::check_layout(weight_.dtype, weight_.shape, weight_.name);
    }

    Index in_features() const { return weight_.shape[1]; }
    Index out_features() const { return weight_.shape[0]; }
    const Weight& weight() const { return weight_; }

    // x: [rows, in] with contiguous rows (any row stride); out: [rows, out], contiguous.
    void forward(TensorView<const float> x, TensorView<float> out) const {
        check(x, out);
        const Index M = x.shape()[0], N = out_features(), K = in_features(), ldx = x.strides()[0];
        switch (weight_.dtype) {
            case DType::f32:
                cpu::gemm_f32(M, N, K, x.data(), ldx, 1, reinterpret_cast<const float*>(weight_.data), 1, K, out.data(), N);
                break;
            case DType::f16: multiply(M, N, K, x.data(), ldx, reinterpret_cast<const f16*>(weight_.data), out.data()); break;
            case DType::bf16: multiply(M, N, K, x.data(), ldx, reinterpret_cast<const bf16*>(weight_.data), out.data()); break;
            default:
                if (!is_quantized(weight_.dtype)) fail("Linear '", weight_.name, "': weights of dtype ", weight_.dtype, " are not supported");
                cpu::quant_matmul_nt(weight_.dtype, M, N, K, x.data(), ldx, weight_.data, out.data(), N);
        }
        add_bias(out);
    }

    // outs[i] = x · layers[i]ᵀ (+ bias) for layers that read the same x (q/k/v, gate/up).
    // Decoding with 16-bit weights runs them as one GEMV region over all their rows — the same
    // bits as one by one, without each small matrix paying its own ramp-up; else one by one.
    template <std::size_t P>
    static void forward_group(TensorView<const float> x, const std::array<const Linear*, P>& layers,
                              const std::array<TensorView<float>, P>& outs) {
        for (std::size_t i = 0; i < P; ++i) layers[i]->check(x, outs[i]);
        bool quantized = true;
        for (const Linear* l : layers) quantized = quantized && is_quantized(l->weight_.dtype);
        if (quantized) {  // one activation quantization and one parallel region, decode or prefill
            std::array<cpu::QuantPart, P> parts;
            for (std::size_t i = 0; i < P; ++i)
                parts[i] = {layers[i]->weight_.dtype, layers[i]->weight_.data, layers[i]->out_features(), outs[i].data(),
                            layers[i]->out_features()};
            cpu::quant_matmul_nt_group<P>(x.shape()[0], x.shape()[1], x.data(), x.strides()[0], parts);
            for (std::size_t i = 0; i < P; ++i) layers[i]->add_bias(outs[i]);
            return;
        }
        const DType dtype = layers[0]->weight_.dtype;
        bool grouped = x.shape()[0] <= gemv_max_rows && (dtype == DType::f16 || dtype == DType::bf16);
        for (const Linear* l : layers) grouped = grouped && l->weight_.dtype == dtype;
        if (!grouped) {
            for (std::size_t i = 0; i < P; ++i) layers[i]->forward(x, outs[i]);
            return;
        }
        auto run = [&](auto tag) {
            using W = decltype(tag);
            std::array<cpu::GemvPart<W>, P> parts;
            for (std::size_t i = 0; i < P; ++i)
                parts[i] = {reinterpret_cast<const W*>(layers[i]->weight_.data), layers[i]->out_features(), outs[i].data(),
                            layers[i]->out_features()};
            cpu::gemv_nt_group<W, P>(x.shape()[0], x.shape()[1], x.data(), x.strides()[0], parts);
        };
        if (dtype == DType::f16) run(f16{});
        else run(bf16{});
        for (std::size_t i = 0; i < P; ++i) layers[i]->add_bias(outs[i]);
    }

    // Batches up to this size (decoding) stream 16-bit weights through a GEMV that widens them in
    // registers; larger ones (prefill) take AMX-BF16 tiles where the CPU has them
    // (cpu/gemm16_amx.hpp, exact), else bf16 dot products under MatmulPrecision::fast where the
    // CPU has them (cpu/gemm_bf16.hpp), else widen panels for the packed f32 GEMM.
    static constexpr Index gemv_max_rows = 8;

    // What forward() runs a batch of `rows` rows on, for weights of dtype t (these weights: unit(rows)).
    static MatmulUnit unit(DType t, Index rows) {
        if (is_quantized(t)) {
            if (rows <= cpu::quant_gemv_max_rows) return MatmulUnit::gemv;
            return cpu::quant_gemm_uses_amx(t, rows) ? MatmulUnit::amx_tiles : MatmulUnit::int8_dot;
        }
        if (t == DType::f32) return rows <= cpu::detail::gemm::kGemvMaxM ? MatmulUnit::gemv : MatmulUnit::f32_fma;
        if (rows <= gemv_max_rows) return MatmulUnit::gemv;
#if defined(WEFT_GEMM16_AMX)
        if (cpu::gemm16_amx_available()) return MatmulUnit::amx_tiles;
#endif
#if defined(WEFT_GEMM_BF16)
        if (matmul_precision() == MatmulPrecision::fast) return MatmulUnit::bf16_dot;
#endif
        return MatmulUnit::f32_fma;  // panels widened for the packed f32 GEMM
    }
    MatmulUnit unit(Index rows) const { return unit(weight_.dtype, rows); }

private:
    void check(const TensorView<const float>& x, const TensorView<float>& out) const {
        if (x.rank() != 2 || x.shape()[1] != in_features() || x.strides()[1] != 1)
            fail("Linear '", weight_.name, "': input of shape ", x.shape(), " for weight ", weight_.shape, " (expected [rows, ",
                 in_features(), "] with contiguous rows)");
        if (!(out.shape() == Shape{x.shape()[0], out_features()}) || !out.is_contiguous())
            fail("Linear '", weight_.name, "': output of shape ", out.shape(), ", expected contiguous [", x.shape()[0], ", ",
                 out_features(), "]");
    }
    void add_bias(TensorView<float> out) const {
        if (!bias_.empty()) visit_float_weight(bias_, [&](auto b) { out = out + cast<float>(b); });
    }

    template <class W>
    static void multiply(Index M, Index N, Index K, const float* x, Index ldx, const W* w, float* out) {
        switch (unit(std::is_same_v<W, f16> ? DType::f16 : DType::bf16, M)) {
            case MatmulUnit::gemv: cpu::gemv_nt(M, N, K, x, ldx, w, out, N); return;
#if defined(WEFT_GEMM16_AMX)
            case MatmulUnit::amx_tiles: cpu::gemm16_amx(M, N, K, x, ldx, w, out, N); return;
#endif
#if defined(WEFT_GEMM_BF16)
            case MatmulUnit::bf16_dot: cpu::gemm_bf16(M, N, K, x, ldx, w, out, N); return;
#endif
            default: detail::matmul_nt_widened(M, N, K, x, ldx, w, out, N);
        }
    }

    Weight weight_, bias_;
};

// Rows of a [vocab, dim] table, widened to f32: out [tokens, dim].
class Embedding {
public:
    Embedding() = default;
    explicit Embedding(Weight table) : table_(std::move(table)) {
        if (table_.shape.rank() != 2) fail("Embedding: table '", table_.name, "' has shape ", table_.shape, ", expected [vocab, dim]");
        quant::check_layout(table_.dtype, table_.shape, table_.name);
    }
    Index vocab_size() const { return table_.shape[0]; }
    Index dim() const { return table_.shape[1]; }
    const Weight& table() const { return table_; }

    void forward(std::span<const std::int32_t> tokens, TensorView<float> out) const {
        if (!(out.shape() == Shape{static_cast<Index>(tokens.size()), dim()}))
            fail("Embedding: output of shape ", out.shape(), " for ", tokens.size(), " tokens of dim ", dim());
        for (std::size_t t = 0; t < tokens.size(); ++t) {
            if (tokens[t] < 0 || tokens[t] >= vocab_size())
                fail("Embedding: token id ", tokens[t], " is outside the vocabulary of ", vocab_size());
            if (is_quantized(table_.dtype)) {
                // GGUF files often store the table quantized (Q4_K, Q6_K …): dequantize the one row.
                if (!out.is_contiguous()) fail("Embedding: a quantized table needs a contiguous output");
                float* y = out.data() + static_cast<Index>(t) * dim();
                if (quant::is_interleaved(table_.dtype)) {  // a table shared with lm_head, laid out for decoding
                    quant::dequantize_interleaved_row(table_.dtype, table_.data, dim(), tokens[t], y);
                } else {
                    const std::size_t row = table_.row_bytes();
                    quant::dequantize_row(table_.dtype, table_.data + static_cast<std::size_t>(tokens[t]) * row, y, dim());
                }
            } else {
                visit_float_weight(table_, [&](auto table) { out.select(0, static_cast<Index>(t)) = cast<float>(table.select(0, tokens[t])); });
            }
        }
    }

private:
    Weight table_;
};

}  // namespace weft::nn
