// weft/nn/rope.hpp — rotary position embeddings. Rope holds the inverse frequencies (with the
// Llama 3.1 "llama3" or linear scaling applied); RopeAngles holds cos/sin for the positions of one
// forward pass (computed in double, so positions past 100k stay accurate); rope_apply rotates
// the pairs of each head in place, in either of the two pairings checkpoints use.
#pragma once

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/core/tensor.hpp"

namespace weft::nn {

// Which elements of a head form a rotated pair.
enum class RopePairing {
    half_split,   // (i, i + d/2): Hugging Face Llama 1-3 checkpoints ("rotate_half")
    interleaved,  // (2i, 2i + 1): Meta's originals, GGUF files, Hugging Face Llama 4
};

struct RopeScaling {
    enum class Kind { none, linear, llama3 } kind = Kind::none;
    double factor = 1.0;
    double low_freq_factor = 1.0;                  // llama3
    double high_freq_factor = 4.0;                 // llama3
    double original_max_position_embeddings = 8192;  // llama3
};

struct RopeConfig {
    int head_dim = 0;    // elements per head
    int rotary_dim = 0;  // leading elements of a head that rotate (0: all of head_dim)
    double theta = 10000.0;
    RopePairing pairing = RopePairing::half_split;
    RopeScaling scaling;
};

// Inverse frequencies of one model, shared by all its layers.
class Rope {
public:
    Rope() = default;
    explicit Rope(const RopeConfig& config) : config_(config) {
        if (config_.rotary_dim == 0) config_.rotary_dim = config_.head_dim;
        const int d = config_.rotary_dim;
        if (d <= 0 || d % 2 != 0 || d > config_.head_dim)
            fail("Rope: rotary dimension ", d, " must be even, positive and at most head_dim ", config_.head_dim);
        if (!(config_.theta > 0)) fail("Rope: theta must be positive, got ", config_.theta);
        inv_freq_.resize(static_cast<std::size_t>(d / 2));
        for (int j = 0; j < d / 2; ++j) inv_freq_[j] = std::pow(config_.theta, -2.0 * j / d);
        apply_scaling(config_.scaling);
    }

    // Overrides the inverse frequencies with inv_freq[j] / factors[j] (GGUF's `rope_freqs` tensor
    // carries the Llama 3.1 factors precomputed).
    void divide_frequencies(std::span<const float> factors) {
        if (factors.size() != inv_freq_.size())
            fail("Rope: ", factors.size(), " frequency factors for ", inv_freq_.size(), " frequencies");
        for (std::size_t j = 0; j < factors.size(); ++j) inv_freq_[j] /= factors[j];
    }

    const RopeConfig& config() const { return config_; }
    const std::vector<double>& inv_freq() const { return inv_freq_; }

private:
    void apply_scaling(const RopeScaling& s) {
        using Kind = RopeScaling::Kind;
        if (s.kind == Kind::none) return;
        if (!(s.factor > 0)) fail("Rope: scaling factor must be positive, got ", s.factor);
        if (s.kind == Kind::linear) {
            for (double& f : inv_freq_) f /= s.factor;
            return;
        }
        // llama3: keep high frequencies, divide low ones by factor, blend in between.
        const double two_pi = 2 * std::numbers::pi;
        const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
        const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
        for (double& f : inv_freq_) {
            const double wavelen = two_pi / f;
            if (wavelen < high_wavelen) continue;
            if (wavelen > low_wavelen || s.high_freq_factor == s.low_freq_factor) {
                f /= s.factor;
                continue;
            }
            const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                                  (s.high_freq_factor - s.low_freq_factor);
            f = (1 - smooth) * f / s.factor + smooth * f;
        }
    }

    RopeConfig config_;
    std::vector<double> inv_freq_;
};

// cos and sin of position · inv_freq for a run of positions: [tokens, rotary_dim / 2] each.
class RopeAngles {
public:
    // Fills the tables for positions[0..n). Reuses its buffers when they are large enough.
    void compute(const Rope& rope, std::span<const Index> positions) {
        const Index half = static_cast<Index>(rope.inv_freq().size());
        const Index n = static_cast<Index>(positions.size());
        if (cos_.numel() < n * half) {
            cos_ = Tensor<float>::uninitialized(Shape{n, half});
            sin_ = Tensor<float>::uninitialized(Shape{n, half});
        }
        tokens_ = n;
        half_ = half;
        for (Index t = 0; t < n; ++t) {
            if (positions[t] < 0) fail("rope: negative position ", positions[t]);
            for (Index j = 0; j < half; ++j) {
                const double angle = static_cast<double>(positions[t]) * rope.inv_freq()[j];
                cos_.data()[t * half + j] = static_cast<float>(std::cos(angle));
                sin_.data()[t * half + j] = static_cast<float>(std::sin(angle));
            }
        }
    }
    Index tokens() const { return tokens_; }
    Index half() const { return half_; }
    const float* cos_row(Index t) const { return cos_.data() + t * half_; }
    const float* sin_row(Index t) const { return sin_.data() + t * half_; }

private:
    Tensor<float> cos_, sin_;
    Index tokens_ = 0, half_ = 0;
};

// Rotates x in place: x [tokens, heads, head_dim] (any strides with a contiguous last axis),
// token t at the positions `angles` was computed for.
inline void rope_apply(TensorView<float> x, const RopeAngles& angles, RopePairing pairing) {
    if (x.rank() != 3) fail("rope: expected [tokens, heads, head_dim], got shape ", x.shape());
    if (x.shape()[0] != angles.tokens())
        fail("rope: ", x.shape()[0], " tokens but angles for ", angles.tokens(), " positions");
    const Index heads = x.shape()[1], head_dim = x.shape()[2], half = angles.half();
    if (2 * half > head_dim) fail("rope: rotary dimension ", 2 * half, " exceeds head_dim ", head_dim);
    if (x.strides()[2] != 1) fail("rope: the last axis of shape ", x.shape(), " must be contiguous");
    for (Index t = 0; t < x.shape()[0]; ++t) {
        const float* c = angles.cos_row(t);
        const float* s = angles.sin_row(t);
        for (Index h = 0; h < heads; ++h) {
            float* v = x.data() + t * x.strides()[0] + h * x.strides()[1];
            // Pair j is (a, b) = (j, j + half) or (2j, 2j + 1): a' = a·cos − b·sin, b' = a·sin + b·cos.
            const Index step_a = pairing == RopePairing::half_split ? 1 : 2;
            const Index offset_b = pairing == RopePairing::half_split ? half : 1;
            for (Index j = 0; j < half; ++j) {
                float& a = v[j * step_a];
                float& b = v[j * step_a + offset_b];
                const float a0 = a, b0 = b;
                a = a0 * c[j] - b0 * s[j];
                b = a0 * s[j] + b0 * c[j];
            }
        }
    }
}

}  // namespace weft::nn
