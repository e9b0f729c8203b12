// weft/nn/norm.hpp — RMSNorm (Llama) and LayerNorm over the last axis, each one reduction pass
// and one fused elementwise pass; weights in any float dtype, activations f32.
#pragma once

#include <cmath>

#include "weft/core/threading.hpp"
#include "weft/cpu/vector.hpp"
#include "weft/expr/assign.hpp"
#include "weft/expr/nodes.hpp"
#include "weft/expr/reduce.hpp"
#include "weft/core/weight.hpp"

namespace weft::nn {

// y = x / sqrt(mean(x²) + eps) · weight      x, y: [..., dim]; weight: [dim]
class RMSNorm {
public:
    RMSNorm() = default;
    RMSNorm(Weight weight, float eps) : weight_(std::move(weight)), eps_(eps) {
        if (weight_.shape.rank() != 1) fail("RMSNorm: weight '", weight_.name, "' has shape ", weight_.shape, ", expected [dim]");
    }
    // x, out: [rows, dim] with contiguous rows; out may be x itself. Allocates nothing.
    void forward(TensorView<const float> x, TensorView<float> out) const {
        if (x.rank() != 2 || x.shape()[1] != dim() || x.strides()[1] != 1 || !(out.shape() == x.shape()) || out.strides()[1] != 1)
            fail("RMSNorm '", weight_.name, "': input ", x.shape(), " and output ", out.shape(), " must be [rows, ", dim(),
                 "] with contiguous rows");
        const Index rows = x.shape()[0], n = dim();
        parallel_for(rows, 1, [&](Index begin, Index end) {
            for (Index r = begin; r < end; ++r) {
                const float* xr = x.data() + r * x.strides()[0];
                const float inv_rms = 1.0f / std::sqrt(cpu::dot(xr, xr, n) / static_cast<float>(n) + eps_);
                visit_float_weight(weight_, [&](auto w) { out.select(0, r) = x.select(0, r) * inv_rms * cast<float>(w); });
            }
        });
    }
    Index dim() const { return weight_.shape[0]; }
    float eps() const { return eps_; }

private:
    Weight weight_;
    float eps_ = 1e-6f;
};

// y = (x − mean) / sqrt(var + eps) · weight + bias   (biased variance, as PyTorch's LayerNorm)
class LayerNorm {
public:
    LayerNorm() = default;
    LayerNorm(Weight weight, Weight bias, float eps) : weight_(std::move(weight)), bias_(std::move(bias)), eps_(eps) {
        if (weight_.shape.rank() != 1) fail("LayerNorm: weight '", weight_.name, "' has shape ", weight_.shape, ", expected [dim]");
        if (!bias_.empty()) bias_.expect_shape(weight_.shape);
    }
    void forward(TensorView<const float> x, TensorView<float> out) const {
        const Tensor<float> mean = row_mean(x);
        const Tensor<float> inv_std = rsqrt(row_mean(square(x - mean)) + eps_);
        visit_float_weight(weight_, [&](auto w) {
            if (bias_.empty()) {
                out = (x - mean) * inv_std * cast<float>(w);
            } else {
                visit_float_weight(bias_, [&](auto b) { out = (x - mean) * inv_std * cast<float>(w) + cast<float>(b); });
            }
        });
    }

private:
    Weight weight_, bias_;
    float eps_ = 1e-5f;
};

}  // namespace weft::nn
