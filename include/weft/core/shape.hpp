// weft/core/shape.hpp — Shape: the sizes of a tensor's axes in PyTorch order (row-major, last axis
// contiguous), with a fixed capacity so shapes never allocate. The same type carries strides
// (in elements) for views.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <ostream>
#include <span>
#include <string>

#include "weft/core/error.hpp"

namespace weft {

using Index = std::int64_t;

// Highest tensor rank weft supports.
inline constexpr int max_rank = 8;

class Shape {
public:
    Shape() = default;
    Shape(std::initializer_list<Index> dims) { assign(std::span<const Index>(dims.begin(), dims.size())); }
    explicit Shape(std::span<const Index> dims) { assign(dims); }

    // Rank r shape of all `value` (used for strides and broadcast tests).
    static Shape filled(int rank, Index value) {
        check_rank(rank);
        Shape s;
        s.rank_ = rank;
        std::fill_n(s.dims_.begin(), rank, value);
        return s;
    }

    int rank() const { return rank_; }
    bool empty() const { return rank_ == 0; }

    // Size of axis `axis`; negative values count from the end (-1 is the last axis).
    Index operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
    Index& operator[](int axis) { return dims_[static_cast<std::size_t>(axis)]; }
    Index dim(int axis) const { return dims_[static_cast<std::size_t>(normalize_axis(axis, "Shape::dim"))]; }

    const Index* begin() const { return dims_.data(); }
    const Index* end() const { return dims_.data() + rank_; }
    Index* begin() { return dims_.data(); }
    Index* end() { return dims_.data() + rank_; }
    std::span<const Index> span() const { return {dims_.data(), static_cast<std::size_t>(rank_)}; }

    // Product of the sizes (1 for rank 0). Throws if it overflows.
    Index numel() const {
        Index n = 1;
        for (int i = 0; i < rank_; ++i) {
            if (dims_[i] != 0 && n > std::numeric_limits<Index>::max() / dims_[i])
                fail("Shape ", *this, ": element count overflows 64 bits");
            n *= dims_[i];
        }
        return n;
    }

    void push_back(Index d) {
        check_rank(rank_ + 1);
        dims_[rank_++] = d;
    }
    void insert(int pos, Index d) {
        check_rank(rank_ + 1);
        for (int i = rank_; i > pos; --i) dims_[i] = dims_[i - 1];
        dims_[pos] = d;
        ++rank_;
    }
    void erase(int pos) {
        for (int i = pos; i + 1 < rank_; ++i) dims_[i] = dims_[i + 1];
        --rank_;
    }

    // Maps a possibly negative axis into [0, rank); throws naming `op` if out of range.
    int normalize_axis(int axis, const char* op) const {
        const int a = axis < 0 ? axis + rank_ : axis;
        if (a < 0 || a >= rank_) fail(op, ": axis ", axis, " is out of range for shape ", *this);
        return a;
    }

    friend bool operator==(const Shape& a, const Shape& b) {
        return a.rank_ == b.rank_ && std::equal(a.begin(), a.end(), b.begin());
    }

    std::string str() const { return detail::concat(*this); }

    friend std::ostream& operator<<(std::ostream& out, const Shape& s) {
        out << '[';
        for (int i = 0; i < s.rank_; ++i) out << (i ? ", " : "") << s.dims_[i];
        return out << ']';
    }

private:
    static void check_rank(int rank) {
        if (rank < 0 || rank > max_rank) fail("Shape: rank ", rank, " exceeds weft's maximum of ", max_rank);
    }
    void assign(std::span<const Index> dims) {
        check_rank(static_cast<int>(dims.size()));
        rank_ = static_cast<int>(dims.size());
        for (int i = 0; i < rank_; ++i) {
            if (dims[i] < 0) fail("Shape: negative size ", dims[i], " on axis ", i);
            dims_[i] = dims[i];
        }
    }

    std::array<Index, max_rank> dims_{};
    int rank_ = 0;
};

// Strides in elements, one per axis, in the same small container.
using Strides = Shape;

// Row-major (C order) strides of a contiguous tensor of shape `s`.
inline Strides contiguous_strides(const Shape& s) {
    Strides st = Shape::filled(s.rank(), 1);
    for (int i = s.rank() - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
    return st;
}

// numpy broadcasting: shapes aligned at the right; sizes equal or 1. Throws naming `op` and both
// shapes when they are incompatible.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const int rank = std::max(a.rank(), b.rank());
    Shape out = Shape::filled(rank, 1);
    for (int i = 0; i < rank; ++i) {
        const int ia = a.rank() - rank + i, ib = b.rank() - rank + i;
        const Index da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1)
            fail(op, ": shapes ", a, " and ", b, " cannot be broadcast together");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

// Strides that read a tensor of shape `s` with strides `st` as if it had the larger shape `target`
// (right-aligned; stride 0 along broadcast axes). The caller has checked compatibility.
inline Strides broadcast_strides(const Shape& s, const Strides& st, const Shape& target) {
    Strides out = Shape::filled(target.rank(), 0);
    const int offset = target.rank() - s.rank();
    for (int i = 0; i < s.rank(); ++i) out[offset + i] = (s[i] == 1 && target[offset + i] != 1) ? 0 : st[i];
    return out;
}

}  // namespace weft
