// A downstream program: a few tensor expressions through the installed or added weft.
#include <weft/weft.hpp>

#include <cmath>
#include <cstdio>

int main() {
    weft::Tensor<float> x(weft::Shape{2, 3}, {1, 2, 3, 4, 5, 6});
    weft::Tensor<float> bias(weft::Shape{3}, {0.5f, -0.5f, 1});
    weft::Tensor<float> y = weft::silu(x) * 2.0f + bias;
    weft::Tensor<float> p = weft::softmax(y);
    weft::Tensor<float> w(weft::Shape{4, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1});
    weft::Tensor<float> z = weft::matmul_nt(x, w);
    const float want = 2.0f * 2.0f / (1.0f + std::exp(-2.0f)) - 0.5f;
    const bool ok = std::abs(y(0, 1) - want) < 1e-5f && std::abs(weft::row_sum(p)(1, 0) - 1.0f) < 1e-5f && z(1, 3) == 15.0f;
    std::printf("weft %s consumer: %s\n", weft::version_string, ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
