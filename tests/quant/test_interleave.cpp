// q4_0x16 (quant/interleave.hpp): interleaving keeps every block's bytes (checked by taking them
// back out), rows dequantize to Q4_0's values, and Linear and Embedding give Q4_0's bits. The
// kernels' own checks against Q4_0 are in tests/cpu/test_quant_kernels.cpp.
#include <doctest/doctest.h>

#include <bit>
#include <cstring>
#include <random>
#include <vector>

#include <weft/nn/linear.hpp>
#include <weft/quant/interleave.hpp>

namespace test_interleave {

using weft::DType;
using weft::Index;
using weft::Shape;
namespace quant = weft::quant;

namespace {

// rows × cols values as Q4_0 blocks: random codes, scales of either sign.
std::vector<quant::BlockQ4_0> random_q4_0(Index rows, Index cols, std::mt19937& rng) {
    std::vector<quant::BlockQ4_0> w(static_cast<std::size_t>(rows * cols / 32));
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
    for (auto& b : w) {
        b.d = weft::float_to_f16_bits(scale(rng));
        for (auto& q : b.qs) q = static_cast<std::uint8_t>(byte(rng));
    }
    return w;
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
    std::vector<std::uint32_t> b(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) b[i] = std::bit_cast<std::uint32_t>(v[i]);
    return b;
}

}  // namespace

TEST_CASE("interleave_q4_0 keeps every block: each row comes back byte for byte and dequantizes alike") {
    std::mt19937 rng(5);
    for (Index rows : {16, 48})
        for (Index cols : {32, 96, 2048}) {
            const auto w = random_q4_0(rows, cols, rng);
            auto wi = w;
            quant::interleave_q4_0(reinterpret_cast<std::byte*>(wi.data()), rows, cols);
            CAPTURE(rows);
            CAPTURE(cols);
            CHECK(std::memcmp(wi.data(), w.data(), w.size() * sizeof(quant::BlockQ4_0)) != 0);
            const Index units = cols / 32;
            std::vector<quant::BlockQ4_0> back(static_cast<std::size_t>(units));
            std::vector<float> want(static_cast<std::size_t>(cols)), got(want.size());
            for (Index r = 0; r < rows; ++r) {
                quant::deinterleave_q4_0_row(wi.data(), cols, r, back.data());
                CHECK(std::memcmp(back.data(), w.data() + r * units, back.size() * sizeof(quant::BlockQ4_0)) == 0);
                quant::dequantize_row(DType::q4_0, w.data() + r * units, want.data(), cols);
                quant::dequantize_q4_0x16_row(wi.data(), cols, r, got.data());
                CHECK(bits(got) == bits(want));
            }
            // The layout itself: row 5's block 1 scale at 2 · 5, its code bytes 4..7 in vector 1.
            if (units > 1) {
                const auto* o = reinterpret_cast<const std::uint8_t*>(wi.data()) + quant::q4_0x16_block_bytes;
                const quant::BlockQ4_0& b = w[static_cast<std::size_t>(5 * units + 1)];
                CHECK(std::memcmp(o + 10, &b.d, 2) == 0);
                CHECK(std::memcmp(o + 32 + 64 + 20, b.qs + 4, 4) == 0);
            }
        }
}

TEST_CASE("which weights can be interleaved, and shapes that cannot") {
    CHECK(quant::can_interleave(DType::q4_0, Shape{32, 64}));
    CHECK_FALSE(quant::can_interleave(DType::q4_0, Shape{17, 64}));
    CHECK_FALSE(quant::can_interleave(DType::q4_0, Shape{32, 48}));
    CHECK_FALSE(quant::can_interleave(DType::q4_0, Shape{32 * 64}));
    CHECK_FALSE(quant::can_interleave(DType::q8_0, Shape{32, 64}));
    std::vector<quant::BlockQ4_0> w(34);
    CHECK_THROWS_WITH_AS(quant::interleave_q4_0(reinterpret_cast<std::byte*>(w.data()), 17, 64),
                         doctest::Contains("[17, 64] Q4_0 matrix cannot be interleaved"), weft::Error);
    std::vector<float> y(64);
    CHECK_THROWS_WITH_AS(quant::dequantize_row(DType::q4_0x16, w.data(), y.data(), 64), doctest::Contains("interleaved"), weft::Error);
}

TEST_CASE("Linear and Embedding on q4_0x16 weights give Q4_0's bits") {
    std::mt19937 rng(9);
    const Index rows = 48, cols = 96;
    const auto w = random_q4_0(rows, cols, rng);
    auto wi = w;
    quant::interleave_q4_0(reinterpret_cast<std::byte*>(wi.data()), rows, cols);
    const weft::Weight plain(DType::q4_0, w.data(), Shape{rows, cols}, "plain"), interleaved(DType::q4_0x16, wi.data(), Shape{rows, cols}, "il");

    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (Index batch : {1, 3, 20}) {
        weft::Tensor<float> x(Shape{batch, cols});
        for (Index i = 0; i < x.numel(); ++i) x.data()[i] = u(rng);
        std::vector<float> a(static_cast<std::size_t>(batch * rows)), b(a.size());
        weft::nn::Linear(plain).forward(x, weft::TensorView<float>(a.data(), Shape{batch, rows}));
        weft::nn::Linear(interleaved).forward(x, weft::TensorView<float>(b.data(), Shape{batch, rows}));
        CAPTURE(batch);
        CHECK(bits(a) == bits(b));
    }

    const std::vector<std::int32_t> tokens = {0, 17, 47, 5, 17};
    std::vector<float> a(tokens.size() * cols), b(a.size());
    weft::nn::Embedding(plain).forward(tokens, weft::TensorView<float>(a.data(), Shape{Index(tokens.size()), cols}));
    weft::nn::Embedding(interleaved).forward(tokens, weft::TensorView<float>(b.data(), Shape{Index(tokens.size()), cols}));
    CHECK(bits(a) == bits(b));
}

}  // namespace test_interleave
