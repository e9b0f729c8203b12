// The x16 dtypes (quant/interleave.hpp): interleaving keeps every block's bytes (checked by taking
// them back out), rows dequantize to the GGUF type's values, and Linear and Embedding give its
// bits. The kernels' own checks are in tests/cpu/test_quant_kernels.cpp.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <string>
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

constexpr DType kTypes[] = {DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k};

std::uint16_t f16(float v) { return weft::float_to_f16_bits(v); }

// rows × cols values as blocks of t: random codes and scale bytes, f16 scales of either sign
// (Q4_K, Q5_K: positive d and dmin).
std::vector<std::uint8_t> random_blocks(DType t, Index rows, Index cols, std::mt19937& rng) {
    const std::size_t bb = weft::block_bytes(t), blocks = static_cast<std::size_t>(rows * cols) / weft::block_size(t);
    std::vector<std::uint8_t> w(blocks * bb);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
    for (auto& b : w) b = static_cast<std::uint8_t>(byte(rng));
    for (std::size_t i = 0; i < blocks; ++i) {
        const bool k_min = t == DType::q4_k || t == DType::q5_k;
        const std::uint16_t d = f16(k_min ? std::abs(scale(rng)) / 8 : scale(rng) / 8), dmin = f16(std::abs(scale(rng)) / 8);
        std::memcpy(w.data() + i * bb + (t == DType::q6_k ? 208 : 0), &d, 2);
        if (k_min) std::memcpy(w.data() + i * bb + 2, &dmin, 2);
    }
    return w;
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
    std::vector<std::uint32_t> b(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) b[i] = std::bit_cast<std::uint32_t>(v[i]);
    return b;
}

}  // namespace

TEST_CASE("interleave keeps every block: each row comes back byte for byte and dequantizes alike") {
    std::mt19937 rng(5);
    for (DType t : kTypes)
        for (Index rows : {16, 48})
            for (Index cols : {256, 768, 2048}) {
                const auto w = random_blocks(t, rows, cols, rng);
                auto wi = w;
                quant::interleave(t, reinterpret_cast<std::byte*>(wi.data()), rows, cols);
                const DType il = quant::interleaved_dtype(t);
                const std::string name = weft::dtype_name(il);
                CAPTURE(name);
                CAPTURE(rows);
                CAPTURE(cols);
                CHECK(wi != w);
                const std::size_t row_bytes = w.size() / static_cast<std::size_t>(rows);
                std::vector<std::uint8_t> back(row_bytes);
                std::vector<float> want(static_cast<std::size_t>(cols)), got(want.size());
                for (Index r = 0; r < rows; ++r) {
                    quant::deinterleave_row(il, wi.data(), cols, r, back.data());
                    CHECK(std::memcmp(back.data(), w.data() + static_cast<std::size_t>(r) * row_bytes, row_bytes) == 0);
                    quant::dequantize_row(t, w.data() + static_cast<std::size_t>(r) * row_bytes, want.data(), cols);
                    quant::dequantize_interleaved_row(il, wi.data(), cols, r, got.data());
                    CHECK(bits(got) == bits(want));
                }
                // The layouts themselves, for row 5's second block.
                const std::size_t bb = weft::block_bytes(t);
                const std::uint8_t* o = wi.data() + 16 * bb;
                const std::uint8_t* b = w.data() + 5 * row_bytes + bb;
                if (cols == 256 && weft::block_size(t) == 256) continue;  // one block per row
                if (t == DType::q4_0 || t == DType::q8_0) {  // d at 2 · 5; code bytes 4 .. 7 (block bytes 6 .. 9) in vector 1
                    CHECK(std::memcmp(o + 10, b, 2) == 0);
                    CHECK(std::memcmp(o + 32 + 64 + 20, b + 6, 4) == 0);
                } else {  // dword 7 (bytes 28 .. 31) at 64 · 7 + 4 · 5
                    CHECK(std::memcmp(o + 64 * 7 + 20, b + 28, 4) == 0);
                    if (t == DType::q6_k) CHECK(std::memcmp(o + 52 * 64 + 10, b + 208, 2) == 0);  // d after the dwords
                }
            }
}

TEST_CASE("which weights can be interleaved, and shapes that cannot") {
    CHECK(quant::can_interleave(DType::q4_0, Shape{32, 64}));
    CHECK(quant::can_interleave(DType::q4_k, Shape{32, 512}));
    CHECK_FALSE(quant::can_interleave(DType::q4_0, Shape{17, 64}));
    CHECK_FALSE(quant::can_interleave(DType::q4_0, Shape{32, 48}));
    CHECK_FALSE(quant::can_interleave(DType::q4_k, Shape{32, 128}));
    CHECK_FALSE(quant::can_interleave(DType::q4_0, Shape{32 * 64}));
    CHECK(quant::can_interleave(DType::q6_k, Shape{32, 256}));
    CHECK_FALSE(quant::can_interleave(DType::f16, Shape{32, 64}));
    CHECK_FALSE(quant::can_interleave(DType::q4_0x16, Shape{32, 64}));
    CHECK(quant::plain_dtype(DType::q4_kx16) == DType::q4_k);
    CHECK(quant::interleaved_dtype(DType::bf16) == DType::bf16);
    std::vector<std::uint8_t> w(34 * 18);
    CHECK_THROWS_WITH_AS(quant::interleave(DType::q4_0, reinterpret_cast<std::byte*>(w.data()), 17, 64),
                         doctest::Contains("[17, 64] q4_0 matrix cannot be interleaved"), weft::Error);
    std::vector<float> y(64);
    CHECK_THROWS_WITH_AS(quant::dequantize_row(DType::q4_0x16, w.data(), y.data(), 64), doctest::Contains("interleaved"), weft::Error);
    // Weights that claim an interleaved dtype must be whole groups of 16 rows, or blocks would
    // be read past the matrix.
    const weft::Weight odd(DType::q4_0x16, w.data(), Shape{17, 64}, "odd");
    CHECK_THROWS_WITH_AS(weft::nn::Linear{odd}, doctest::Contains("weight 'odd' is q4_0x16 of shape [17, 64]"), weft::Error);
    CHECK_THROWS_WITH_AS(weft::nn::Embedding{odd}, doctest::Contains("rows a multiple of 16"), weft::Error);
}

TEST_CASE("Linear and Embedding on interleaved weights give the GGUF type's bits") {
    std::mt19937 rng(9);
    const Index rows = 48, cols = 512;
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (DType t : kTypes) {
        const auto w = random_blocks(t, rows, cols, rng);
        auto wi = w;
        quant::interleave(t, reinterpret_cast<std::byte*>(wi.data()), rows, cols);
        const weft::Weight plain(t, w.data(), Shape{rows, cols}, "plain");
        const weft::Weight interleaved(quant::interleaved_dtype(t), wi.data(), Shape{rows, cols}, "interleaved");
        const std::string name = weft::dtype_name(t);
        CAPTURE(name);
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
}

}  // namespace test_interleave
