// tests/helpers.hpp — shared test utilities: seeded random tensors, scalar references, error
// measures. Errors are reported as max relative error, as the project's standards ask.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <weft/weft.hpp>

namespace weft_test {

inline std::mt19937& rng() {
    static std::mt19937 g(12345);
    return g;
}

// A tensor of shape `s` with values uniform in [lo, hi).
template <class T = float>
weft::Tensor<T> random_tensor(const weft::Shape& s, float lo = -2.0f, float hi = 2.0f) {
    weft::Tensor<T> t(s);
    std::uniform_real_distribution<float> dist(lo, hi);
    for (auto& x : t.span()) {
        if constexpr (std::is_integral_v<T>) x = static_cast<T>(std::lround(dist(rng())));
        else x = T(dist(rng()));
    }
    return t;
}

// Max over elements of |got - want| / max(|want|, floor).
inline double max_rel_error(const std::vector<double>& got, const std::vector<double>& want, double floor = 1e-30) {
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double d = std::abs(got[i] - want[i]);
        if (std::isnan(got[i]) != std::isnan(want[i])) return INFINITY;
        if (std::isnan(got[i])) continue;
        if (std::isinf(want[i]) || std::isinf(got[i])) {
            if (got[i] != want[i]) return INFINITY;
            continue;
        }
        worst = std::max(worst, d / std::max(std::abs(want[i]), floor));
    }
    return worst;
}

// Elements of any view in row-major order, as doubles.
template <class T>
std::vector<double> to_doubles(const weft::TensorView<T>& v) {
    std::vector<double> out;
    out.reserve(static_cast<std::size_t>(v.numel()));
    const int r = v.rank();
    std::vector<weft::Index> idx(static_cast<std::size_t>(r), 0);
    for (weft::Index n = 0; n < v.numel(); ++n) {
        weft::Index off = 0;
        for (int d = 0; d < r; ++d) off += idx[d] * v.strides()[d];
        out.push_back(static_cast<double>(weft::convert<float>(v.data()[off])));
        if constexpr (std::is_same_v<std::remove_const_t<T>, double>) out.back() = v.data()[off];
        for (int d = r - 1; d >= 0; --d) {
            if (++idx[d] < v.shape()[d]) break;
            idx[d] = 0;
        }
    }
    return out;
}
template <class T>
std::vector<double> to_doubles(const weft::Tensor<T>& t) { return to_doubles(t.view()); }

// Bit patterns of a float tensor, to check bit-identical results.
inline std::vector<std::uint32_t> bits_of(const weft::Tensor<float>& t) {
    std::vector<std::uint32_t> out;
    for (float f : t.span()) out.push_back(std::bit_cast<std::uint32_t>(f));
    return out;
}

// Runs f with `n` weft threads, restoring the previous setting.
template <class F>
auto with_threads(int n, F&& f) {
    const int before = weft::num_threads();
    weft::set_num_threads(n);
    auto result = f();
    weft::set_num_threads(before);
    return result;
}

// Sets the matmul precision (core/precision.hpp) for a scope.
struct ScopedPrecision {
    weft::MatmulPrecision before = weft::matmul_precision();
    explicit ScopedPrecision(weft::MatmulPrecision p) { weft::set_matmul_precision(p); }
    ~ScopedPrecision() { weft::set_matmul_precision(before); }
    ScopedPrecision(const ScopedPrecision&) = delete;
    ScopedPrecision& operator=(const ScopedPrecision&) = delete;
};

inline const weft::Index awkward_sizes[] = {1, 7, 31, 33, 257, 1023, 4097};

}  // namespace weft_test
