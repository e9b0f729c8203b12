// weft/core/weight.hpp — a weight tensor left where its file put it: dtype, bytes and shape (PyTorch
// order). Blocks hold Weights and read them in their stored dtype; nothing is copied at load.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/tensor.hpp"

namespace weft {

struct Weight {
    DType dtype = DType::f32;
    const std::byte* data = nullptr;
    Shape shape;
    std::string name;  // for error messages: "model.layers.3.self_attn.q_proj.weight"

    Weight() = default;
    Weight(DType t, const void* bytes, const Shape& s, std::string n = {})
        : dtype(t), data(static_cast<const std::byte*>(bytes)), shape(s), name(std::move(n)) {}
    // A weight viewing a tensor's memory (the tensor must outlive it).
    template <class T>
    static Weight of(const Tensor<T>& t, std::string n = {}) { return Weight(dtype_of<T>(), t.data(), t.shape(), std::move(n)); }

    bool empty() const { return data == nullptr; }

    // Bytes of one row (the last axis), for element and block-quantized dtypes alike.
    std::size_t row_bytes() const {
        const Index n = shape.rank() == 0 ? 1 : shape[shape.rank() - 1];
        const auto values_per_block = static_cast<Index>(block_size(dtype));
        if (n % values_per_block != 0)
            fail("weight '", name, "': rows of ", n, " values are not a whole number of ", dtype, " blocks of ", values_per_block);
        return static_cast<std::size_t>(n / values_per_block) * block_bytes(dtype);
    }

    // The weight as a typed view; throws if it is stored in another dtype.
    template <class T>
    TensorView<const T> view() const {
        if (dtype != dtype_of<T>()) fail("weight '", name, "' is ", dtype, ", not ", dtype_of<T>());
        return TensorView<const T>(reinterpret_cast<const T*>(data), shape);
    }

    // Throws unless the shape is exactly `expected`.
    void expect_shape(const Shape& expected) const {
        if (!(shape == expected)) fail("weight '", name, "' has shape ", shape, ", expected ", expected);
    }
};

// Calls f(TensorView<const T>) with the weight viewed in its float dtype (f32, f16 or bf16).
// Quantized weights have no element view: use quant::dequantize_row on their rows
// (quant::dequantize_interleaved_row for the interleaved x16 dtypes).
template <class F>
decltype(auto) visit_float_weight(const Weight& w, F&& f) {
    switch (w.dtype) {
        case DType::f32: return f(w.view<float>());
        case DType::f16: return f(w.view<f16>());
        case DType::bf16: return f(w.view<bf16>());
        default: fail("weight '", w.name, "': dtype ", w.dtype, " is not supported here (f32, f16 or bf16)");
    }
}

}  // namespace weft
