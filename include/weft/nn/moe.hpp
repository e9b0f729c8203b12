// weft/nn/moe.hpp — mixture of experts as Llama 4 runs it: a router picks the top-k experts of each
// token, each expert a SwiGLU MLP fed the token scaled by its router score, plus a shared expert.
// Experts stay in their file's layout: Hugging Face's fused [in, out] tensors or GGUF's [out, in].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "weft/core/threading.hpp"
#include "weft/core/weight.hpp"
#include "weft/cpu/gemm.hpp"
#include "weft/cpu/gemv.hpp"
#include "weft/cpu/simd.hpp"
#include "weft/nn/attention.hpp"
#include "weft/nn/linear.hpp"

namespace weft::nn {

// y [rows, out] = x [rows, in] · W for a weight stored [in, out] (the orientation of `x @ W`, as
// Hugging Face stores Llama 4's experts; nn::Linear reads the transposed [out, in]). W's rows may
// be `ld` ≥ out values apart, so W can be a column block of a wider matrix (the gate or the up half
// of a fused gate_up). f32, f16 or bf16, read in place.
//
// Every output is the FMA chain acc = +0; for k in order: acc = fma(x[m, k], W[k, n], acc) — the
// chain gemm_f32 computes — on every path (decode GEMV, prefill GEMM, any thread count), so a row's
// result never depends on the batch it runs in.
class LinearInOut {
public:
    LinearInOut() = default;
    // `w` is [in, out] (ld = out), or [in, ld] of which columns [col, col + out) are used.
    LinearInOut(Weight w, Index out = 0, Index col = 0) : weight_(std::move(w)) {
        if (weight_.shape.rank() != 2) fail("LinearInOut: weight '", weight_.name, "' has shape ", weight_.shape, ", expected [in, out]");
        if (weight_.dtype != DType::f32 && weight_.dtype != DType::f16 && weight_.dtype != DType::bf16)
            fail("LinearInOut: weight '", weight_.name, "' has dtype ", weight_.dtype, "; expected f32, f16 or bf16");
        ld_ = weight_.shape[1];
        out_ = out > 0 ? out : ld_;
        if (col < 0 || col + out_ > ld_)
            fail("LinearInOut: columns ", col, "..", col + out_ - 1, " of weight '", weight_.name, "' of shape ", weight_.shape);
        first_ = weight_.data + static_cast<std::size_t>(col) * dtype_size(weight_.dtype);
    }
    Index in_features() const { return weight_.shape[0]; }
    Index out_features() const { return out_; }
    const Weight& weight() const { return weight_; }
    // Bytes of the columns this layer reads.
    std::uint64_t weight_bytes() const { return static_cast<std::uint64_t>(in_features() * out_) * dtype_size(weight_.dtype); }

    // x: [rows, in] with contiguous rows (any row stride); out: [rows, out] with contiguous rows.
    void forward(TensorView<const float> x, TensorView<float> out) const {
        if (x.rank() != 2 || x.shape()[1] != in_features() || x.strides()[1] != 1)
            fail("LinearInOut '", weight_.name, "': input of shape ", x.shape(), " for weight ", weight_.shape, " (expected [rows, ",
                 in_features(), "] with contiguous rows)");
        if (out.rank() != 2 || out.shape()[0] != x.shape()[0] || out.shape()[1] != out_ || out.strides()[1] != 1)
            fail("LinearInOut '", weight_.name, "': output of shape ", out.shape(), ", expected [", x.shape()[0], ", ", out_,
                 "] with contiguous rows");
        const Index M = x.shape()[0], K = in_features();
        switch (weight_.dtype) {
            case DType::f32:
                cpu::gemm_f32(M, out_, K, x.data(), x.strides()[0], 1, reinterpret_cast<const float*>(first_), ld_, 1, out.data(),
                              out.strides()[0]);
                break;
            case DType::f16: multiply(M, K, x.data(), x.strides()[0], reinterpret_cast<const f16*>(first_), out.data(), out.strides()[0]); break;
            default: multiply(M, K, x.data(), x.strides()[0], reinterpret_cast<const bf16*>(first_), out.data(), out.strides()[0]); break;
        }
    }

    // Batches up to this size stream 16-bit weights through the GEMV; larger ones widen panels.
    static constexpr Index gemv_max_rows = 8;

private:
    template <class W>
    void multiply(Index M, Index K, const float* x, Index ldx, const W* w, float* out, Index ldo) const {
        if (M <= gemv_max_rows) gemv(M, K, x, ldx, w, out, ldo);
        else gemm_widened(M, K, x, ldx, w, out, ldo);
    }

    // Decode: each thread owns a run of output columns and walks all K rows of W across them,
    // accumulating a block of columns (for all M rows of x) in L1; each row of W is read as one
    // contiguous run per block, four rows per pass (four streams in flight, a quarter of the
    // accumulator traffic), each output's FMAs still in k order.
    template <class W>
    void gemv(Index M, Index K, const float* x, Index ldx, const W* w, float* out, Index ldo) const {
        using simd::VecF;
        constexpr Index L = VecF::width;
        constexpr Index acc_floats = 4096;  // 16 KiB of accumulators
        const Index block = std::max<Index>(64, acc_floats / M / 64 * 64);
        parallel_for(out_, 64, [&](Index n0, Index n1) {
            alignas(64) float acc[acc_floats];
            for (Index b0 = n0; b0 < n1; b0 += block) {
                const Index width = std::min(block, n1 - b0);
                std::fill_n(acc, M * width, 0.0f);
                // acc[m, j .. j+n) advanced over rows k .. k+R of W.
                auto pass = [&]<int R>(Index k) {
                    const W* rows = w + k * ld_ + b0;
                    for (Index j = 0; j < width; j += 64 / static_cast<Index>(sizeof(W)))  // 8 rows ahead, once per line
                        for (int r = 0; r < R; ++r)
                            if (k + 8 + r < K) cpu::detail::prefetch(rows + (8 + r) * ld_ + j);
                    for (Index m = 0; m < M; ++m) {
                        VecF xb[R];
                        for (int r = 0; r < R; ++r) xb[r] = VecF::broadcast(x[m * ldx + k + r]);
                        float* a = acc + m * width;
                        Index j = 0;
#if defined(WEFT_SIMD_AVX512)
                        if constexpr (std::is_same_v<W, bf16>) {
                            // A 64-byte line of bf16 is 32 columns: its 32-bit words shifted left by
                            // 16 are the even columns, the words with the low half cleared the odd
                            // ones. acc keeps each 32-column group as [16 even | 16 odd].
                            const __m512i high_half = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
                            for (; j + 32 <= width; j += 32) {
                                VecF even = VecF::load(a + j), odd = VecF::load(a + j + 16);
                                for (int r = 0; r < R; ++r) {
                                    const __m512i v = _mm512_loadu_si512(rows + r * ld_ + j);
                                    even = simd::fmadd(xb[r], VecF(_mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, v, 16))), even);
                                    odd = simd::fmadd(xb[r], VecF(_mm512_castsi512_ps(_mm512_and_si512(v, high_half))), odd);
                                }
                                even.store(a + j);
                                odd.store(a + j + 16);
                            }
                        }
#endif
                        for (; j + L <= width; j += L) {
                            VecF v = VecF::load(a + j);
                            for (int r = 0; r < R; ++r) v = simd::fmadd(xb[r], cpu::detail::load_widened<W, VecF>(rows + r * ld_ + j), v);
                            v.store(a + j);
                        }
                        if (j < width) {
                            const int n = static_cast<int>(width - j);
                            VecF v = VecF::load_partial(a + j, n);
                            for (int r = 0; r < R; ++r)
                                v = simd::fmadd(xb[r], cpu::detail::load_widened_partial<W, VecF>(rows + r * ld_ + j, n), v);
                            v.store_partial(a + j, n);
                        }
                    }
                };
                Index k = 0;
                for (; k + 4 <= K; k += 4) pass.template operator()<4>(k);
                for (; k < K; ++k) pass.template operator()<1>(k);
                for (Index m = 0; m < M; ++m) {
                    const float* a = acc + m * width;
                    float* o = out + m * ldo + b0;
                    Index j = 0;
#if defined(WEFT_SIMD_AVX512)
                    if constexpr (std::is_same_v<W, bf16>)
                        for (; j + 32 <= width; j += 32)  // [16 even | 16 odd] back to column order
                            for (Index i = 0; i < 16; ++i) o[j + 2 * i] = a[j + i], o[j + 2 * i + 1] = a[j + 16 + i];
#endif
                    std::copy_n(a + j, width - j, o + j);
                }
            }
        });
    }

    // Prefill: panels of 32 columns of W are widened to f32 (exactly) and multiplied with the
    // packed f32 GEMM (which runs serially inside this parallel loop).
    template <class W>
    void gemm_widened(Index M, Index K, const float* x, Index ldx, const W* w, float* out, Index ldo) const {
        constexpr Index cols = 32;
        const Index panels = (out_ + cols - 1) / cols;
        parallel_for(panels, 1, [&](Index begin, Index end) {
            thread_local std::vector<float> panel;
            panel.resize(static_cast<std::size_t>(cols * K));
            for (Index p = begin; p < end; ++p) {
                const Index n0 = p * cols, n = std::min(cols, out_ - n0);
                for (Index k = 0; k < K; ++k)
                    for (Index j = 0; j < n; ++j) panel[static_cast<std::size_t>(k * cols + j)] = static_cast<float>(w[k * ld_ + n0 + j]);
                cpu::gemm_f32(M, n, K, x, ldx, 1, panel.data(), cols, 1, out + n0, ldo);
            }
        });
    }

    Weight weight_;
    const std::byte* first_ = nullptr;  // element (0, col)
    Index ld_ = 0, out_ = 0;
};

// How a bank of E experts is stored.
enum class ExpertLayout {
    // Hugging Face Llama 4: gate_up_proj [E, dim, 2·hidden] (gate columns first, then up) and
    // down_proj [E, hidden, dim], used as x @ W.
    fused_in_out,
    // GGUF (ffn_gate_exps, ffn_up_exps [E, hidden, dim]; ffn_down_exps [E, dim, hidden]): each
    // expert's matrices in nn::Linear's [out, in] orientation.
    out_in,
};

// E SwiGLU experts: expert e maps x [rows, dim] to down_e(silu(gate_e(x)) · up_e(x)) [rows, dim].
// Each expert is a view into the 3D tensors; nothing is copied.
class Experts {
public:
    Experts() = default;

    // gate_up: [E, dim, 2·hidden]; down: [E, hidden, dim].
    static Experts fused_in_out(const Weight& gate_up, const Weight& down) {
        if (gate_up.shape.rank() != 3 || down.shape.rank() != 3 || gate_up.shape[2] % 2 != 0 || down.shape[0] != gate_up.shape[0] ||
            down.shape[1] * 2 != gate_up.shape[2] || down.shape[2] != gate_up.shape[1])
            fail("Experts: gate_up '", gate_up.name, "' ", gate_up.shape, " and down '", down.name, "' ", down.shape,
                 " do not fit together (expected [E, dim, 2·hidden] and [E, hidden, dim])");
        Experts x;
        x.layout_ = ExpertLayout::fused_in_out;
        x.count_ = gate_up.shape[0];
        x.dim_ = gate_up.shape[1];
        x.hidden_ = down.shape[1];
        for (Index e = 0; e < x.count_; ++e) {
            x.gate_up_.emplace_back(slice(gate_up, e));
            x.down_in_out_.emplace_back(slice(down, e));
        }
        return x;
    }

    // gate, up: [E, hidden, dim]; down: [E, dim, hidden].
    static Experts out_in(const Weight& gate, const Weight& up, const Weight& down) {
        if (gate.shape.rank() != 3 || !(up.shape == gate.shape) || down.shape.rank() != 3 || down.shape[0] != gate.shape[0] ||
            down.shape[1] != gate.shape[2] || down.shape[2] != gate.shape[1])
            fail("Experts: gate '", gate.name, "' ", gate.shape, ", up '", up.name, "' ", up.shape, " and down '", down.name, "' ",
                 down.shape, " do not fit together (expected [E, hidden, dim], [E, hidden, dim] and [E, dim, hidden])");
        Experts x;
        x.layout_ = ExpertLayout::out_in;
        x.count_ = gate.shape[0];
        x.dim_ = gate.shape[2];
        x.hidden_ = gate.shape[1];
        for (Index e = 0; e < x.count_; ++e) {
            x.gate_.emplace_back(slice(gate, e));
            x.up_.emplace_back(slice(up, e));
            x.down_.emplace_back(slice(down, e));
        }
        return x;
    }

    ExpertLayout layout() const { return layout_; }
    Index count() const { return count_; }
    Index dim() const { return dim_; }
    Index hidden() const { return hidden_; }
    // Bytes of one expert's three matrices: what running it on a token reads.
    std::uint64_t bytes_per_expert() const {
        if (count_ == 0) return 0;
        if (layout_ == ExpertLayout::fused_in_out) return gate_up_[0].weight_bytes() + down_in_out_[0].weight_bytes();
        return stored_bytes(gate_[0].weight()) + stored_bytes(up_[0].weight()) + stored_bytes(down_[0].weight());
    }

    // out [rows, dim] = expert e applied to x [rows, dim]. act: scratch of at least [rows, 2·hidden].
    void forward(Index e, TensorView<const float> x, Tensor<float>& act, TensorView<float> out) const {
        if (e < 0 || e >= count_) fail("Experts: expert ", e, " of ", count_);
        const Index M = x.shape()[0], F = hidden_;
        if (act.numel() < M * 2 * F) act = Tensor<float>::uninitialized(Shape{M, 2 * F});
        if (layout_ == ExpertLayout::fused_in_out) {
            // gu: [M, 2F], gate columns then up columns, from one pass over the fused matrix.
            TensorView<float> gu(act.data(), Shape{M, 2 * F});
            gate_up_[e].forward(x, gu);
            auto g = gu.slice(1, 0, F), u = gu.slice(1, F, 2 * F);
            // silu(gate) · up into the gate half, row by row (as whole views the two halves
            // interleave, and the aliasing check would stage them through a temporary).
            for (Index m = 0; m < M; ++m) g.select(0, m) = silu(g.select(0, m)) * u.select(0, m);
            down_in_out_[e].forward(g, out);
        } else {
            TensorView<float> g(act.data(), Shape{M, F}), u(act.data() + M * F, Shape{M, F});
            Linear::forward_group<2>(x, {&gate_[e], &up_[e]}, {g, u});
            g = silu(g) * u;
            down_[e].forward(g, out);
        }
    }

private:
    // Expert e of a [E, a, b] weight, as a 2D [a, b] weight into the same bytes.
    static Weight slice(const Weight& w, Index e) {
        const Shape s{w.shape[1], w.shape[2]};
        const Weight one(w.dtype, w.data, s, w.name + "[" + std::to_string(e) + "]");
        return Weight(w.dtype, w.data + static_cast<std::size_t>(e) * stored_bytes(one), s, one.name);
    }

    ExpertLayout layout_ = ExpertLayout::fused_in_out;
    Index count_ = 0, dim_ = 0, hidden_ = 0;
    std::vector<LinearInOut> gate_up_, down_in_out_;  // fused_in_out
    std::vector<Linear> gate_, up_, down_;            // out_in
};

// Buffers an MoE forward pass uses (grown to the largest batch, then reused).
struct MoEScratch {
    Tensor<float> logits, routed, input, act, output, shared_gate, shared_up;
    std::vector<std::int32_t> choice;   // [T, k] expert ids
    std::vector<float> score;           // [T, k] sigmoid of the kept logits
    std::vector<Index> start, order;    // per expert: its (token, slot) entries, counting-sorted
};

// The Llama 4 mixture-of-experts feed-forward block (Hugging Face Llama4TextMoe):
//   logits = x · W_rᵀ                       W_r: [E, dim], no bias
//   keep the top-k logits of each token, score = sigmoid(logit) (the others' −∞ → 0)
//   out = shared(x) + Σ_{e in top-k} expert_e(x · score_e)     (scaled BEFORE the expert)
// Tokens are grouped by expert, so each active expert's weights are read once per call, and a
// decoded token reads only its k experts.
class MoE {
public:
    MoE() = default;
    MoE(Linear router, Experts experts, Index top_k, SwiGLU shared = {})
        : router_(std::move(router)), experts_(std::move(experts)), shared_(std::move(shared)), top_k_(top_k) {
        if (router_.out_features() != experts_.count() || router_.in_features() != experts_.dim())
            fail("MoE: router '", router_.weight().name, "' of shape ", router_.weight().shape, " for ", experts_.count(),
                 " experts of dim ", experts_.dim());
        if (top_k_ < 1 || top_k_ > experts_.count()) fail("MoE: top_k ", top_k_, " must be in 1..", experts_.count(), " (the experts)");
    }
    Index dim() const { return experts_.dim(); }
    Index top_k() const { return top_k_; }
    const Experts& experts() const { return experts_; }
    bool has_shared_expert() const { return !shared_.empty(); }
    // Bytes one token reads: the router, the shared expert and k experts.
    std::uint64_t active_bytes_per_token() const {
        return stored_bytes(router_.weight()) + shared_.weight_bytes() + static_cast<std::uint64_t>(top_k_) * experts_.bytes_per_expert();
    }

    // x: [T, dim] with contiguous rows; out: [T, dim] contiguous (not overlapping x).
    void forward(TensorView<const float> x, MoEScratch& s, TensorView<float> out) const {
        if (x.rank() != 2 || x.shape()[1] != dim() || !(out.shape() == Shape{x.shape()[0], dim()}) || !out.is_contiguous())
            fail("MoE: input of shape ", x.shape(), " and output of shape ", out.shape(), " for dim ", dim(), " (expected [tokens, ", dim(),
                 "] each, the output contiguous)");
        const Index T = x.shape()[0], D = dim(), E = experts_.count(), K = top_k_;
        reserve(s.logits, T, E);
        reserve(s.routed, T, D);
        TensorView<float> logits(s.logits.data(), Shape{T, E}), routed(s.routed.data(), Shape{T, D});
        router_.forward(x, logits);

        // Top-k per token: repeatedly the largest logit not yet taken (the lower id on ties).
        s.choice.resize(static_cast<std::size_t>(T * K));
        s.score.resize(static_cast<std::size_t>(T * K));
        for (Index t = 0; t < T; ++t) {
            const float* l = logits.data() + t * E;
            for (Index i = 0; i < K; ++i) {
                Index best = -1;
                for (Index e = 0; e < E; ++e) {
                    bool taken = false;
                    for (Index j = 0; j < i; ++j) taken = taken || s.choice[static_cast<std::size_t>(t * K + j)] == e;
                    if (!taken && (best < 0 || l[e] > l[best] || (std::isnan(l[e]) && !std::isnan(l[best])))) best = e;
                }
                s.choice[static_cast<std::size_t>(t * K + i)] = static_cast<std::int32_t>(best);
                s.score[static_cast<std::size_t>(t * K + i)] = 1.0f / (1.0f + std::exp(-l[best]));
            }
        }
        // Group the (token, slot) entries by expert, tokens in order within an expert.
        s.start.assign(static_cast<std::size_t>(E + 1), 0);
        for (Index i = 0; i < T * K; ++i) ++s.start[static_cast<std::size_t>(s.choice[static_cast<std::size_t>(i)] + 1)];
        for (Index e = 0; e < E; ++e) s.start[static_cast<std::size_t>(e + 1)] += s.start[static_cast<std::size_t>(e)];
        s.order.resize(static_cast<std::size_t>(T * K));
        // start[e] serves as expert e's write cursor, which leaves it at expert e + 1's start;
        // shifting by one restores the starts.
        for (Index i = 0; i < T * K; ++i) {
            const auto e = static_cast<std::size_t>(s.choice[static_cast<std::size_t>(i)]);
            s.order[static_cast<std::size_t>(s.start[e]++)] = i;
        }
        for (Index e = E; e > 0; --e) s.start[static_cast<std::size_t>(e)] = s.start[static_cast<std::size_t>(e - 1)];
        s.start[0] = 0;

        // Each active expert on its tokens, scaled by their scores; summed per token in expert order.
        std::fill_n(routed.data(), T * D, 0.0f);  // (TensorView::fill would allocate a scalar)
        for (Index e = 0; e < E; ++e) {
            const Index b = s.start[static_cast<std::size_t>(e)], n = s.start[static_cast<std::size_t>(e + 1)] - b;
            if (n == 0) continue;
            reserve(s.input, n, D);
            reserve(s.output, n, D);
            TensorView<float> in(s.input.data(), Shape{n, D}), y(s.output.data(), Shape{n, D});
            for (Index r = 0; r < n; ++r) {
                const Index entry = s.order[static_cast<std::size_t>(b + r)];
                in.select(0, r) = x.select(0, entry / K) * s.score[static_cast<std::size_t>(entry)];
            }
            experts_.forward(e, in, s.act, y);
            for (Index r = 0; r < n; ++r) {
                const Index t = s.order[static_cast<std::size_t>(b + r)] / K;
                routed.select(0, t) = routed.select(0, t) + y.select(0, r);
            }
        }
        // Hugging Face: out = shared_expert(x); out += Σ routed.
        if (shared_.empty()) {
            out = routed;
        } else {
            shared_.forward(x, s.shared_gate, s.shared_up, out);
            out = out + routed;
        }
    }

private:
    static void reserve(Tensor<float>& t, Index rows, Index cols) {
        if (t.numel() < rows * cols) t = Tensor<float>::uninitialized(Shape{rows, cols});
    }

    Linear router_;
    Experts experts_;
    SwiGLU shared_;
    Index top_k_ = 1;
};

}  // namespace weft::nn
