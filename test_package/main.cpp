// test_package: one fused expression, one row reduction and a config.json parsed with the
// nlohmann/json that came with the package; prints what it computed and exits 1 if it is wrong.
#include <weft/weft.hpp>

#include <cmath>
#include <cstdio>

int main() {
    // x: [2, 4]
    weft::Tensor<float> x(weft::Shape{2, 4}, {1, 2, 3, 4, -1, -2, -3, -4});
    weft::Tensor<float> w(weft::Shape{4}, {1, 1, 2, 2});
    // RMSNorm: one reduction pass, one fused elementwise pass.
    weft::Tensor<float> h = x * weft::rsqrt(weft::row_mean(weft::square(x)) + 1e-5f) * w;  // [2, 4]
    const float rms = std::sqrt((1.0f + 4.0f + 9.0f + 16.0f) / 4.0f + 1e-5f);
    const bool norm_ok = std::abs(h(0, 3) - 4.0f * 2.0f / rms) < 1e-5f && std::abs(h(1, 0) + 1.0f / rms) < 1e-5f;

    const weft::hf::LlamaConfig config = weft::hf::parse_llama_config(
        R"({"vocab_size": 32, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 1})",
        "test_package config");
    const bool config_ok = config.head_dim == 4 && config.num_key_value_heads == 1;

    std::printf("weft %s test_package: h[0, 3] = %.6f, head_dim = %ld: %s\n", weft::version_string, h(0, 3),
                config.head_dim, norm_ok && config_ok ? "ok" : "WRONG");
    return norm_ok && config_ok ? 0 : 1;
}
