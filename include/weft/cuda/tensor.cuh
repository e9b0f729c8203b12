// weft/cuda/tensor.cuh — DeviceTensorView<T> (strided view of device memory) and DeviceTensor<T>
// (owning, contiguous): the device twins of TensorView/Tensor and leaves of the same lazy expressions;
// host <-> device copies (to_device, to_host, copy).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <span>
#include <type_traits>
#include <utility>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/tensor.hpp"
#include "weft/expr/expression.hpp"
#include "weft/expr/nodes.hpp"
#include "weft/cuda/error.cuh"
#include "weft/cuda/memory.cuh"

namespace weft::cuda {

template <class T> class DeviceTensor;
template <class T> class DeviceTensorView;

// Evaluates `expr` into `dst` with one kernel on `stream` (weft/cuda/expr.cuh).
template <class T, class E>
void assign(DeviceTensorView<T> dst, const Expr<E>& expr, cudaStream_t stream);

// ---- DeviceTensorView ------------------------------------------------------------------------

// Device elements at data + Σ index[i]·strides[i]. Holds the same pointer/shape/strides triple as a
// TensorView (and reuses its view arithmetic), but its elements live on the device: they are read
// and written only by kernels. Assigning to it (`v = expr`) writes the elements it views.
template <class T>
class DeviceTensorView : public Expr<DeviceTensorView<T>> {
public:
    using value_type = std::remove_const_t<T>;
    using element_type = T;

    DeviceTensorView() = default;
    DeviceTensorView(T* data, const Shape& shape) : v_(data, shape) {}
    DeviceTensorView(T* data, const Shape& shape, const Strides& strides) : v_(data, shape, strides) {}
    // A view of mutable elements converts to a read-only view.
    template <class U> requires(std::is_const_v<T> && std::is_same_v<std::remove_const_t<T>, U>)
    DeviceTensorView(const DeviceTensorView<U>& other) : v_(other.layout()) {}

    DeviceTensorView(const DeviceTensorView&) = default;
    // Writes other's elements into the elements this view shows (on the default stream).
    DeviceTensorView& operator=(const DeviceTensorView& other) {
        assign(*this, other, nullptr);
        return *this;
    }
    template <class E>
    DeviceTensorView& operator=(const Expr<E>& expr) {
        assign(*this, expr, nullptr);
        return *this;
    }
    // Fills every element with `value`.
    void fill(value_type value, cudaStream_t stream = nullptr) const;

    T* data() const { return v_.data(); }
    const Shape& shape() const { return v_.shape(); }
    const Strides& strides() const { return v_.strides(); }
    int rank() const { return v_.rank(); }
    Index size(int axis) const { return v_.size(axis); }
    Index numel() const { return v_.numel(); }
    DType dtype() const { return dtype_of<value_type>(); }
    bool is_contiguous() const { return v_.is_contiguous(); }
    // The pointer/shape/strides as a TensorView, for metadata only: its elements are device memory
    // and must never be dereferenced on the host.
    const TensorView<T>& layout() const { return v_; }

    // ---- views of views (no copies); same rules as TensorView ----
    DeviceTensorView slice(int axis, Index start, Index stop, Index step = 1) const { return wrap(v_.slice(axis, start, stop, step)); }
    DeviceTensorView select(int axis, Index index) const { return wrap(v_.select(axis, index)); }
    DeviceTensorView operator[](Index i) const { return select(0, i); }
    DeviceTensorView transpose(int axis0 = -2, int axis1 = -1) const { return wrap(v_.transpose(axis0, axis1)); }
    DeviceTensorView permute(std::initializer_list<int> order) const { return wrap(v_.permute(order)); }
    DeviceTensorView reshape(std::initializer_list<Index> sizes) const { return wrap(v_.reshape(sizes)); }
    DeviceTensorView reshape(std::span<const Index> sizes) const { return wrap(v_.reshape(sizes)); }
    DeviceTensorView broadcast_to(const Shape& target) const { return wrap(v_.broadcast_to(target)); }
    DeviceTensorView unsqueeze(int axis) const { return wrap(v_.unsqueeze(axis)); }
    DeviceTensorView squeeze(int axis) const { return wrap(v_.squeeze(axis)); }

    // Expression protocol: a view is a leaf.
    template <class F> void for_each_leaf(F&& f) const { f(*this); }

private:
    static DeviceTensorView wrap(const TensorView<T>& v) { return DeviceTensorView(v.data(), v.shape(), v.strides()); }
    TensorView<T> v_;  // never assigned after construction (TensorView's operator= would write elements)
};

// ---- DeviceTensor ----------------------------------------------------------------------------

// An owning, contiguous tensor in device memory. Move-only: copy explicitly with
// `DeviceTensor<T> copy(t.view());` (one kernel) so that no device copy happens by accident.
template <class T>
class DeviceTensor : public Expr<DeviceTensor<T>> {
    static_assert(!std::is_const_v<T>, "weft: DeviceTensor<const T> is not a thing; use DeviceTensorView<const T>");

public:
    using value_type = T;

    DeviceTensor() : shape_{0} {}
    // Zero-filled (all bits zero) tensor of the given shape.
    explicit DeviceTensor(const Shape& shape) : DeviceTensor(shape, Uninit{}) {
        if (buffer_.size()) WEFT_CUDA_CHECK(cudaMemset(buffer_.data(), 0, buffer_.size()));
    }
    // A tensor whose elements are left uninitialised (for outputs that are about to be written).
    static DeviceTensor uninitialized(const Shape& shape) { return DeviceTensor(shape, Uninit{}); }

    DeviceTensor(DeviceTensor&&) noexcept = default;
    DeviceTensor& operator=(DeviceTensor&&) noexcept = default;
    DeviceTensor(const DeviceTensor&) = delete;
    DeviceTensor& operator=(const DeviceTensor&) = delete;

    // Evaluates a device expression into a new tensor of its shape (default stream).
    template <class E>
    DeviceTensor(const Expr<E>& expr) : DeviceTensor(expr.derived().shape(), Uninit{}) {
        assign(view(), expr, nullptr);
    }
    // In place when the shapes are equal (so `x = x + y` reuses x's memory), else a new buffer.
    template <class E>
    DeviceTensor& operator=(const Expr<E>& expr) {
        if (expr.derived().shape() == shape_) {
            assign(view(), expr, nullptr);
        } else {
            DeviceTensor fresh(expr);
            *this = std::move(fresh);
        }
        return *this;
    }

    T* data() { return buffer_.template as<T>(); }
    const T* data() const { return buffer_.template as<const T>(); }
    const Shape& shape() const { return shape_; }
    Strides strides() const { return contiguous_strides(shape_); }
    int rank() const { return shape_.rank(); }
    Index size(int axis) const { return shape_.dim(axis); }
    Index numel() const { return shape_.numel(); }
    DType dtype() const { return dtype_of<T>(); }
    std::size_t bytes() const { return static_cast<std::size_t>(numel()) * sizeof(T); }

    DeviceTensorView<T> view() { return DeviceTensorView<T>(data(), shape_); }
    DeviceTensorView<const T> view() const { return DeviceTensorView<const T>(data(), shape_); }
    operator DeviceTensorView<T>() { return view(); }
    operator DeviceTensorView<const T>() const { return view(); }

    void fill(T value, cudaStream_t stream = nullptr) { view().fill(value, stream); }

    DeviceTensorView<T> slice(int axis, Index start, Index stop, Index step = 1) { return view().slice(axis, start, stop, step); }
    DeviceTensorView<const T> slice(int axis, Index start, Index stop, Index step = 1) const { return view().slice(axis, start, stop, step); }
    DeviceTensorView<T> select(int axis, Index index) { return view().select(axis, index); }
    DeviceTensorView<const T> select(int axis, Index index) const { return view().select(axis, index); }
    DeviceTensorView<T> operator[](Index i) { return view()[i]; }
    DeviceTensorView<const T> operator[](Index i) const { return view()[i]; }
    DeviceTensorView<T> transpose(int a = -2, int b = -1) { return view().transpose(a, b); }
    DeviceTensorView<const T> transpose(int a = -2, int b = -1) const { return view().transpose(a, b); }
    DeviceTensorView<T> permute(std::initializer_list<int> order) { return view().permute(order); }
    DeviceTensorView<const T> permute(std::initializer_list<int> order) const { return view().permute(order); }
    DeviceTensorView<T> reshape(std::initializer_list<Index> sizes) { return view().reshape(sizes); }
    DeviceTensorView<const T> reshape(std::initializer_list<Index> sizes) const { return view().reshape(sizes); }
    DeviceTensorView<const T> broadcast_to(const Shape& target) const { return view().broadcast_to(target); }
    DeviceTensorView<T> unsqueeze(int axis) { return view().unsqueeze(axis); }
    DeviceTensorView<const T> unsqueeze(int axis) const { return view().unsqueeze(axis); }
    DeviceTensorView<T> squeeze(int axis) { return view().squeeze(axis); }
    DeviceTensorView<const T> squeeze(int axis) const { return view().squeeze(axis); }

    template <class F> void for_each_leaf(F&& f) const { f(view()); }

private:
    struct Uninit {};
    DeviceTensor(const Shape& shape, Uninit) : buffer_(byte_size(shape)), shape_(shape) {}
    static std::size_t byte_size(const Shape& shape) {
        const Index n = shape.numel();
        if (static_cast<std::uint64_t>(n) > SIZE_MAX / sizeof(T)) fail("DeviceTensor: shape ", shape, " is too large to allocate");
        return static_cast<std::size_t>(n) * sizeof(T);
    }

    DeviceBuffer buffer_;
    Shape shape_;
};

// ---- which expressions are device expressions --------------------------------------------------
// A device expression reads device tensors only (plus plain numbers). A CPU tensor inside one, or
// a device tensor inside a CPU expression, is refused at compile time with a sentence.

namespace detail {

template <class E> struct leaves {  // unknown node types count as host expressions
    static constexpr bool device = false, host = true;
};
template <class T> struct leaves<DeviceTensorView<T>> { static constexpr bool device = true, host = false; };
template <class T> struct leaves<DeviceTensor<T>> { static constexpr bool device = true, host = false; };
template <class T> struct leaves<TensorView<T>> { static constexpr bool device = false, host = true; };
template <class T> struct leaves<Tensor<T>> { static constexpr bool device = false, host = true; };
template <class T> struct leaves<ScalarExpr<T>> { static constexpr bool device = false, host = false; };
template <class Op, class A> struct leaves<UnaryExpr<Op, A>> : leaves<A> {};
template <class To, class A> struct leaves<CastExpr<To, A>> : leaves<A> {};
template <class Op, class A, class B> struct leaves<BinaryExpr<Op, A, B>> {
    static constexpr bool device = leaves<A>::device || leaves<B>::device;
    static constexpr bool host = leaves<A>::host || leaves<B>::host;
};

}  // namespace detail

// An expression whose tensors all live on the device.
template <class E>
concept DeviceExpression = is_expr_v<E> && detail::leaves<std::remove_cvref_t<E>>::device && !detail::leaves<std::remove_cvref_t<E>>::host;

// ---- host <-> device copies --------------------------------------------------------------------
// Copies without a stream argument are synchronous (the legacy default stream, which waits for the
// work of every blocking stream).

// Copies a host view into a new contiguous device tensor (strided views are gathered on the host).
template <class T>
DeviceTensor<std::remove_const_t<T>> to_device(const TensorView<T>& host) {
    using U = std::remove_const_t<T>;
    DeviceTensor<U> out = DeviceTensor<U>::uninitialized(host.shape());
    if (host.numel() == 0) return out;
    if (host.is_contiguous()) {
        WEFT_CUDA_CHECK(cudaMemcpy(out.data(), host.data(), out.bytes(), cudaMemcpyHostToDevice));
    } else {
        const Tensor<U> packed(host);
        WEFT_CUDA_CHECK(cudaMemcpy(out.data(), packed.data(), out.bytes(), cudaMemcpyHostToDevice));
    }
    return out;
}
template <class T>
DeviceTensor<T> to_device(const Tensor<T>& host) { return to_device(host.view()); }

// Copies a device view into a new host tensor; waits for the copy (and for the work before it).
template <class T>
Tensor<std::remove_const_t<T>> to_host(const DeviceTensorView<T>& dev) {
    using U = std::remove_const_t<T>;
    Tensor<U> out = Tensor<U>::uninitialized(dev.shape());
    if (dev.numel() == 0) return out;
    if (dev.is_contiguous()) {
        WEFT_CUDA_CHECK(cudaMemcpy(out.data(), dev.data(), static_cast<std::size_t>(out.numel()) * sizeof(U), cudaMemcpyDeviceToHost));
    } else {
        DeviceTensor<U> packed(dev);  // one gather kernel
        WEFT_CUDA_CHECK(cudaMemcpy(out.data(), packed.data(), packed.bytes(), cudaMemcpyDeviceToHost));
    }
    return out;
}
template <class T>
Tensor<T> to_host(const DeviceTensor<T>& dev) { return to_host(dev.view()); }

// Copies host elements into an existing device view of the same shape (`stream` may be null).
template <class T>
void copy(DeviceTensorView<T> dst, TensorView<const T> src, cudaStream_t stream = nullptr) {
    if (!(dst.shape() == src.shape())) fail("cuda::copy: host shape ", src.shape(), " into a device view of shape ", dst.shape());
    if (dst.numel() == 0) return;
    if (dst.is_contiguous() && src.is_contiguous()) {
        WEFT_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), static_cast<std::size_t>(dst.numel()) * sizeof(T),
                                        cudaMemcpyHostToDevice, stream));
        if (!stream) WEFT_CUDA_CHECK(cudaStreamSynchronize(stream));
    } else {
        DeviceTensor<T> staged = to_device(src);
        assign(dst, staged, stream);
        WEFT_CUDA_CHECK(cudaStreamSynchronize(stream));  // `staged` is freed on return
    }
}

}  // namespace weft::cuda

// ---- expression operands -------------------------------------------------------------------------
// The CPU operators (`a + b`, `exp(x)`, `cast<T>(x)`) build the expression nodes; this tells them
// to hold device tensors as read-only views, and device temporaries by value (as for Tensor).
namespace weft::detail {
template <class T> struct node_of<cuda::DeviceTensorView<T>> { using type = cuda::DeviceTensorView<const T>; };
template <class T> struct node_of<cuda::DeviceTensorView<T>&> { using type = cuda::DeviceTensorView<const T>; };
template <class T> struct node_of<const cuda::DeviceTensorView<T>&> { using type = cuda::DeviceTensorView<const T>; };
template <class T> struct node_of<cuda::DeviceTensorView<T>&&> { using type = cuda::DeviceTensorView<const T>; };
template <class T> struct node_of<const cuda::DeviceTensorView<T>> { using type = cuda::DeviceTensorView<const T>; };
template <class T> struct node_of<cuda::DeviceTensor<T>&> { using type = cuda::DeviceTensorView<const T>; };
template <class T> struct node_of<const cuda::DeviceTensor<T>&> { using type = cuda::DeviceTensorView<const T>; };
template <class T> struct node_of<cuda::DeviceTensor<T>> { using type = cuda::DeviceTensor<T>; };
template <class T> struct node_of<cuda::DeviceTensor<T>&&> { using type = cuda::DeviceTensor<T>; };
template <class T> struct node_of<const cuda::DeviceTensor<T>> { using type = cuda::DeviceTensorView<const T>; };
template <class T> struct node_of<const cuda::DeviceTensor<T>&&> { using type = cuda::DeviceTensorView<const T>; };

// A device tensor inside a CPU expression (`weft::Tensor<float> y = device_x + 1`).
template <class T>
struct Evaluator<cuda::DeviceTensorView<T>> {
    static_assert(sizeof(T) == 0,
                  "weft: a CUDA device tensor in a CPU expression; copy it to the host with weft::cuda::to_host(x), or "
                  "assign the expression to a weft::cuda::DeviceTensor");
};
template <class T>
struct Evaluator<cuda::DeviceTensor<T>> : Evaluator<cuda::DeviceTensorView<const T>> {};
}  // namespace weft::detail

#include "weft/cuda/expr.cuh"
