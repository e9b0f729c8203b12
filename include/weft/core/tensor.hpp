// weft/core/tensor.hpp — TensorView<T> (a non-owning strided view, like std::span with a shape)
// and Tensor<T> (owning, contiguous, 64-byte aligned). Both are leaves of lazy expressions:
// `y = x * w + b` reads them; assigning an expression to either evaluates it in one fused pass.
#pragma once

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/storage.hpp"
#include "weft/expr/expression.hpp"

namespace weft {

template <class T> class Tensor;
template <class T> class TensorView;

// Evaluates `expr` into `dst` (defined in weft/expr/assign.hpp, included at the end of this file).
template <class T, class E>
void assign(TensorView<T> dst, const Expr<E>& expr);

// ---- TensorView ------------------------------------------------------------------------------

// A view of elements of type T (const T for read-only) at data + Σ index[i] * strides[i].
// It does not own its memory: the tensor, buffer or mapped file it views must outlive it.
// Copying a view copies the view; assigning to it (`v = expr`) writes the elements it views.
template <class T>
class TensorView : public Expr<TensorView<T>> {
public:
    using value_type = std::remove_const_t<T>;
    using element_type = T;

    TensorView() = default;
    TensorView(T* data, const Shape& shape) : data_(data), shape_(shape), strides_(contiguous_strides(shape)) {}
    TensorView(T* data, const Shape& shape, const Strides& strides) : data_(data), shape_(shape), strides_(strides) {
        if (strides.rank() != shape.rank())
            fail("TensorView: shape ", shape, " and strides ", strides, " differ in rank");
    }
    // A view of mutable elements converts to a read-only view.
    template <class U> requires(std::is_const_v<T> && std::is_same_v<std::remove_const_t<T>, U>)
    TensorView(const TensorView<U>& other) : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

    TensorView(const TensorView&) = default;
    // Writes other's elements into the elements this view shows (shapes must match).
    TensorView& operator=(const TensorView& other) {
        assign(*this, other);
        return *this;
    }
    template <class E>
    TensorView& operator=(const Expr<E>& expr) {
        assign(*this, expr);
        return *this;
    }
    // Fills every element with `value`.
    void fill(value_type value);

    T* data() const { return data_; }
    const Shape& shape() const { return shape_; }
    const Strides& strides() const { return strides_; }
    int rank() const { return shape_.rank(); }
    Index size(int axis) const { return shape_.dim(axis); }
    Index numel() const { return shape_.numel(); }
    DType dtype() const { return dtype_of<value_type>(); }

    bool is_contiguous() const {
        Index expected = 1;
        for (int i = rank() - 1; i >= 0; --i) {
            if (shape_[i] != 1 && strides_[i] != expected) return false;
            expected *= shape_[i];
        }
        return true;
    }

    // Element access without bounds checks; at() checks and throws.
    template <class... I> requires(std::is_integral_v<I> && ...)
    T& operator()(I... index) const {
        const Index idx[] = {static_cast<Index>(index)..., 0};
        Index off = 0;
        for (std::size_t i = 0; i < sizeof...(I); ++i) off += idx[i] * strides_[static_cast<int>(i)];
        return data_[off];
    }
    template <class... I> requires(std::is_integral_v<I> && ...)
    T& at(I... index) const {
        const Index idx[] = {static_cast<Index>(index)..., 0};
        if (static_cast<int>(sizeof...(I)) != rank())
            fail("at: ", sizeof...(I), " indices for a tensor of shape ", shape_);
        Index off = 0;
        for (int i = 0; i < rank(); ++i) {
            if (idx[i] < 0 || idx[i] >= shape_[i])
                fail("at: index ", idx[i], " is out of range for axis ", i, " of shape ", shape_);
            off += idx[i] * strides_[i];
        }
        return data_[off];
    }

    // ---- views of views (no copies) ----

    // Elements start, start+step, ... before stop along `axis`. Negative start/stop count from the
    // end, as in Python; they are clamped to the axis.
    TensorView slice(int axis, Index start, Index stop, Index step = 1) const {
        const int a = shape_.normalize_axis(axis, "slice");
        if (step <= 0) fail("slice: step must be positive, got ", step);
        const Index n = shape_[a];
        auto clamp = [n](Index i) { return std::clamp<Index>(i < 0 ? i + n : i, 0, n); };
        const Index b = clamp(start), e = std::max(clamp(stop), clamp(start));
        TensorView out = *this;
        out.data_ = data_ + (b < n ? b * strides_[a] : 0);
        out.shape_[a] = (e - b + step - 1) / step;
        out.strides_[a] = strides_[a] * step;
        return out;
    }
    // The sub-tensor at `index` along `axis`; the result has one axis fewer.
    TensorView select(int axis, Index index) const {
        const int a = shape_.normalize_axis(axis, "select");
        const Index i = index < 0 ? index + shape_[a] : index;
        if (i < 0 || i >= shape_[a]) fail("select: index ", index, " is out of range for axis ", axis, " of shape ", shape_);
        TensorView out = *this;
        out.data_ = data_ + i * strides_[a];
        out.shape_.erase(a);
        out.strides_.erase(a);
        return out;
    }
    // select(0, i): the i-th row of a matrix, the i-th matrix of a batch.
    TensorView operator[](Index i) const { return select(0, i); }

    TensorView transpose(int axis0 = -2, int axis1 = -1) const {
        const int a = shape_.normalize_axis(axis0, "transpose"), b = shape_.normalize_axis(axis1, "transpose");
        TensorView out = *this;
        std::swap(out.shape_[a], out.shape_[b]);
        std::swap(out.strides_[a], out.strides_[b]);
        return out;
    }
    // Reorders the axes: result axis i is this view's axis order[i].
    TensorView permute(std::initializer_list<int> order) const {
        if (static_cast<int>(order.size()) != rank()) fail("permute: ", order.size(), " axes given for shape ", shape_);
        TensorView out = *this;
        bool used[max_rank] = {};
        int i = 0;
        for (int axis : order) {
            const int a = shape_.normalize_axis(axis, "permute");
            if (used[a]) fail("permute: axis ", axis, " appears twice for shape ", shape_);
            used[a] = true;
            out.shape_[i] = shape_[a];
            out.strides_[i] = strides_[a];
            ++i;
        }
        return out;
    }
    // Same elements, new shape; one size may be -1 (inferred). Only for contiguous views: a strided
    // view must be copied first (Tensor<T>(view)).
    TensorView reshape(std::initializer_list<Index> sizes) const { return reshape(std::span<const Index>(sizes.begin(), sizes.size())); }
    TensorView reshape(std::span<const Index> sizes) const {
        if (!is_contiguous()) fail("reshape: the view of shape ", shape_, " with strides ", strides_, " is not contiguous; copy it first");
        Shape target;
        int infer = -1;
        Index known = 1;
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            if (sizes[i] == -1) {
                if (infer >= 0) fail("reshape: more than one -1 in the new shape");
                infer = static_cast<int>(i);
                target.push_back(1);
            } else {
                if (sizes[i] < 0) fail("reshape: negative size ", sizes[i]);
                target.push_back(sizes[i]);
                known *= sizes[i];
            }
        }
        if (infer >= 0 && known != 0) target[infer] = numel() / known;
        if (target.numel() != numel()) fail("reshape: cannot view shape ", shape_, " as ", target);
        return TensorView(data_, target);
    }
    // A view that repeats size-1 axes (stride 0) to reach `target` (numpy rules).
    TensorView broadcast_to(const Shape& target) const {
        if (!(broadcast_shapes(shape_, target, "broadcast_to") == target)) fail("broadcast_to: shape ", shape_, " cannot be broadcast to ", target);
        return TensorView(data_, target, broadcast_strides(shape_, strides_, target));
    }
    TensorView unsqueeze(int axis) const {
        const int a = axis < 0 ? axis + rank() + 1 : axis;
        if (a < 0 || a > rank()) fail("unsqueeze: axis ", axis, " is out of range for shape ", shape_);
        TensorView out = *this;
        out.shape_.insert(a, 1);
        out.strides_.insert(a, a < rank() ? strides_[a] * shape_[a] : 1);
        return out;
    }
    TensorView squeeze(int axis) const {
        const int a = shape_.normalize_axis(axis, "squeeze");
        if (shape_[a] != 1) fail("squeeze: axis ", axis, " of shape ", shape_, " has size ", shape_[a], ", not 1");
        TensorView out = *this;
        out.shape_.erase(a);
        out.strides_.erase(a);
        return out;
    }

    // Contiguous elements as a span (throws for strided views).
    std::span<T> span() const {
        if (!is_contiguous()) fail("span: the view of shape ", shape_, " is not contiguous");
        return {data_, static_cast<std::size_t>(numel())};
    }

    // Expression protocol: a view is a leaf.
    template <class F> void for_each_leaf(F&& f) const { f(*this); }

private:
    T* data_ = nullptr;
    Shape shape_;
    Strides strides_;
};

// ---- Tensor ----------------------------------------------------------------------------------

// An owning, contiguous, 64-byte aligned tensor. Copying copies the elements; moving is cheap.
// Assigning an expression of another shape reallocates (as Eigen's dynamic matrices do).
template <class T>
class Tensor : public Expr<Tensor<T>> {
    static_assert(!std::is_const_v<T>, "weft: Tensor<const T> is not a thing; use TensorView<const T>");

public:
    using value_type = T;

    Tensor() : Tensor(Shape{0}) {}
    // Zero-filled tensor of the given shape.
    explicit Tensor(const Shape& shape) : Tensor(shape, T{}) {}
    Tensor(const Shape& shape, T fill_value) : buffer_(byte_size(shape)), shape_(shape) { fill(fill_value); }
    // Values in row-major order; their count must equal the shape's element count.
    Tensor(const Shape& shape, std::initializer_list<T> values) : Tensor(shape, std::span<const T>(values.begin(), values.size())) {}
    Tensor(const Shape& shape, std::span<const T> values) : buffer_(byte_size(shape)), shape_(shape) {
        if (static_cast<Index>(values.size()) != shape.numel())
            fail("Tensor: ", values.size(), " values given for shape ", shape, " (", shape.numel(), " elements)");
        if (!values.empty()) std::memcpy(buffer_.data(), values.data(), values.size() * sizeof(T));
    }
    // A tensor whose elements are left uninitialised (for outputs that are about to be written).
    static Tensor uninitialized(const Shape& shape) { return Tensor(shape, Uninit{}); }

    Tensor(const Tensor& other) : Tensor(other.shape_, Uninit{}) {
        if (numel()) std::memcpy(buffer_.data(), other.buffer_.data(), static_cast<std::size_t>(numel()) * sizeof(T));
    }
    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(const Tensor& other) {
        if (this != &other) *this = Tensor(other);
        return *this;
    }
    Tensor& operator=(Tensor&&) noexcept = default;

    // Evaluates an expression into a new tensor of the expression's shape.
    template <class E>
    Tensor(const Expr<E>& expr) : Tensor(expr.derived().shape(), Uninit{}) {
        assign(view(), expr);
    }
    // Evaluates in place when the shapes are equal (so `x = x + y` reuses x's memory),
    // else into a new buffer of the expression's shape.
    template <class E>
    Tensor& operator=(const Expr<E>& expr) {
        if (expr.derived().shape() == shape_) {
            assign(view(), expr);
        } else {
            Tensor fresh(expr);
            *this = std::move(fresh);
        }
        return *this;
    }

    T* data() { return reinterpret_cast<T*>(buffer_.data()); }
    const T* data() const { return reinterpret_cast<const T*>(buffer_.data()); }
    const Shape& shape() const { return shape_; }
    Strides strides() const { return contiguous_strides(shape_); }
    int rank() const { return shape_.rank(); }
    Index size(int axis) const { return shape_.dim(axis); }
    Index numel() const { return shape_.numel(); }
    DType dtype() const { return dtype_of<T>(); }
    std::span<T> span() { return {data(), static_cast<std::size_t>(numel())}; }
    std::span<const T> span() const { return {data(), static_cast<std::size_t>(numel())}; }

    TensorView<T> view() { return TensorView<T>(data(), shape_); }
    TensorView<const T> view() const { return TensorView<const T>(data(), shape_); }
    operator TensorView<T>() { return view(); }
    operator TensorView<const T>() const { return view(); }

    void fill(T value) { std::fill_n(data(), numel(), value); }

    template <class... I> requires(std::is_integral_v<I> && ...)
    T& operator()(I... index) { return view()(index...); }
    template <class... I> requires(std::is_integral_v<I> && ...)
    const T& operator()(I... index) const { return view()(index...); }
    template <class... I> requires(std::is_integral_v<I> && ...)
    T& at(I... index) { return view().at(index...); }
    template <class... I> requires(std::is_integral_v<I> && ...)
    const T& at(I... index) const { return view().at(index...); }

    // The view operations of TensorView, on the whole tensor.
    TensorView<T> slice(int axis, Index start, Index stop, Index step = 1) { return view().slice(axis, start, stop, step); }
    TensorView<const T> slice(int axis, Index start, Index stop, Index step = 1) const { return view().slice(axis, start, stop, step); }
    TensorView<T> select(int axis, Index index) { return view().select(axis, index); }
    TensorView<const T> select(int axis, Index index) const { return view().select(axis, index); }
    TensorView<T> operator[](Index i) { return view()[i]; }
    TensorView<const T> operator[](Index i) const { return view()[i]; }
    TensorView<T> transpose(int a = -2, int b = -1) { return view().transpose(a, b); }
    TensorView<const T> transpose(int a = -2, int b = -1) const { return view().transpose(a, b); }
    TensorView<T> permute(std::initializer_list<int> order) { return view().permute(order); }
    TensorView<const T> permute(std::initializer_list<int> order) const { return view().permute(order); }
    TensorView<T> reshape(std::initializer_list<Index> sizes) { return view().reshape(sizes); }
    TensorView<const T> reshape(std::initializer_list<Index> sizes) const { return view().reshape(sizes); }
    TensorView<const T> broadcast_to(const Shape& target) const { return view().broadcast_to(target); }
    TensorView<T> unsqueeze(int axis) { return view().unsqueeze(axis); }
    TensorView<const T> unsqueeze(int axis) const { return view().unsqueeze(axis); }
    TensorView<T> squeeze(int axis) { return view().squeeze(axis); }
    TensorView<const T> squeeze(int axis) const { return view().squeeze(axis); }

    template <class F> void for_each_leaf(F&& f) const { f(view()); }

private:
    struct Uninit {};
    Tensor(const Shape& shape, Uninit) : buffer_(byte_size(shape)), shape_(shape) {}

    static std::size_t byte_size(const Shape& shape) {
        const Index n = shape.numel();
        if (static_cast<std::uint64_t>(n) > SIZE_MAX / sizeof(T)) fail("Tensor: shape ", shape, " is too large to allocate");
        return static_cast<std::size_t>(n) * sizeof(T);
    }

    AlignedBuffer buffer_;
    Shape shape_;
};

template <class T>
void TensorView<T>::fill(value_type value) {
    static_assert(!std::is_const_v<T>, "weft: cannot fill a read-only view");
    Tensor<value_type> scalar(Shape{}, value);
    assign(*this, scalar);
}

// Views of raw memory (for example a mapped file): contiguous, in PyTorch order.
template <class T>
TensorView<T> view_of(T* data, const Shape& shape) { return TensorView<T>(data, shape); }

}  // namespace weft

#include "weft/expr/assign.hpp"
