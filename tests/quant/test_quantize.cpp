// Tests for weft/quant/quantize.hpp: the weight quantizers against ggml's.
//
// How each quantizer is checked (golden files in tests/data/quant/, made by
// tests/golden/make_quant_golden.py, which also says how ggml was built and called):
//   Q8_0, Q4_0  byte for byte against ggml's reference quantizers on 512 blocks of random and
//               awkward values (bytes_q8_0.bin / bytes_q4_0.bin: gguf-py's numpy port, checked
//               equal to ggml's C ggml_quantize_chunk by the script), and their round-trip RMSE
//               equal to ggml's on the data sets;
//   Q4_K, Q5_K, Q6_K  round-trip RMSE on seven data sets no worse than ggml's own
//               (ggml_quantize_chunk without an importance matrix) by more than 0.1 %, both
//               printed; plus properties: zeros stay zeros, importance weights shift the error
//               to the values with low weight, bytes do not depend on the thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include <weft/quant/dequantize.hpp>
#include <weft/quant/quantize.hpp>

namespace test_quantize {

namespace {

using weft::DType;
using weft::Index;
namespace q = weft::quant;

const std::string data_dir = std::string(WEFT_SOURCE_DIR) + "/tests/data/quant/";

std::vector<char> read_bytes(const std::string& name) {
    std::ifstream f(data_dir + name, std::ios::binary);
    REQUIRE_MESSAGE(f.good(), "cannot open " << data_dir + name << " (made by tests/golden/make_quant_golden.py)");
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<float> read_f32(const std::string& name, std::size_t count) {
    const std::vector<char> raw = read_bytes(name);
    REQUIRE(raw.size() == count * sizeof(float));
    std::vector<float> x(count);
    std::memcpy(x.data(), raw.data(), raw.size());
    return x;
}

nlohmann::json read_json(const std::string& name) {
    const std::vector<char> raw = read_bytes(name);
    return nlohmann::json::parse(raw.begin(), raw.end());
}

// x quantized as `type` and decoded again.
std::vector<float> round_trip(DType type, const std::vector<float>& x, Index rows, Index cols,
                              const float* importance = nullptr) {
    const std::size_t row_bytes = q::quantized_row_bytes(type, cols);
    std::vector<std::byte> bytes(row_bytes * static_cast<std::size_t>(rows));
    q::quantize_rows(type, x.data(), bytes.data(), rows, cols, importance);
    std::vector<float> y(x.size());
    for (Index r = 0; r < rows; ++r)
        q::dequantize_row(type, bytes.data() + static_cast<std::size_t>(r) * row_bytes, y.data() + r * cols, cols);
    return y;
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = static_cast<double>(a[i]) - b[i];
        s += d * d;
    }
    return std::sqrt(s / static_cast<double>(a.size()));
}

std::vector<float> normal_values(std::size_t n, float sigma, unsigned seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> x(n);
    for (float& v : x) v = dist(g);
    return x;
}

template <class Block>
void check_bytes_against_golden(DType type, const char* golden) {
    const nlohmann::json manifest = read_json("manifest.json");
    const auto blocks = manifest["bytes"]["blocks"].get<std::size_t>();
    const std::vector<float> x = read_f32(manifest["bytes"]["input"].get<std::string>(), blocks * 32);
    const std::vector<char> want = read_bytes(manifest["bytes"][golden].get<std::string>());
    REQUIRE(want.size() == blocks * sizeof(Block));

    std::vector<Block> got(blocks);
    if constexpr (std::is_same_v<Block, q::BlockQ8_0>) q::quantize_q8_0(x.data(), got.data(), static_cast<Index>(x.size()));
    else q::quantize_q4_0(x.data(), got.data(), static_cast<Index>(x.size()));

    std::size_t differ = 0;
    for (std::size_t b = 0; b < blocks; ++b) {
        if (std::memcmp(&got[b], want.data() + b * sizeof(Block), sizeof(Block)) != 0) {
            if (differ < 5) {
                std::ostringstream hex;
                for (std::size_t i = 0; i < sizeof(Block); ++i)
                    hex << std::hex << std::setw(2) << std::setfill('0') << int(reinterpret_cast<const std::uint8_t*>(&got[b])[i]) << ' ';
                FAIL_CHECK(std::string(weft::dtype_name(type)) << " block " << b << " (first value " << x[b * 32]
                                                  << ") differs; weft's bytes: " << hex.str());
            }
            ++differ;
        }
    }
    MESSAGE(std::string(weft::dtype_name(type)), ": ", blocks - differ, " of ", blocks, " blocks byte-identical to ggml's reference quantizer");
    CHECK(differ == 0);
}

}  // namespace

TEST_CASE("quantize_q8_0 is byte-identical to ggml's quantize_row_q8_0_ref on random and awkward blocks") {
    // Awkward: zeros (±0), ties in max|x|, huge values (d overflowing f16), tiny and denormal
    // values (d underflowing f16, 1/d overflowing f32), x·(1/d) landing exactly on k + 0.5.
    check_bytes_against_golden<q::BlockQ8_0>(DType::q8_0, "q8_0");
}

TEST_CASE("quantize_q4_0 is byte-identical to ggml's quantize_row_q4_0_ref on random and awkward blocks") {
    // Awkward as above, plus ties of opposite sign (the first wins and sets d's sign) and values
    // where x·(1/d) + 8.5 rounds up onto an integer in f32 (a fused multiply-add would not).
    check_bytes_against_golden<q::BlockQ4_0>(DType::q4_0, "q4_0");
}

TEST_CASE("Q8_0 and Q4_0 follow ggml's rounding rules on hand-made blocks") {
    float x[32] = {};
    SUBCASE("Q8_0 rounds halves away from zero") {
        x[0] = 127.0f;  // d = 1, 1/d = 1
        x[1] = 2.5f;
        x[2] = -2.5f;
        x[3] = 0.49999997f;
        x[4] = -126.5f;
        q::BlockQ8_0 b;
        q::quantize_q8_0(x, &b, 32);
        CHECK(b.d == weft::float_to_f16_bits(1.0f));
        CHECK(b.qs[0] == 127);
        CHECK(b.qs[1] == 3);
        CHECK(b.qs[2] == -3);
        CHECK(b.qs[3] == 0);
        CHECK(b.qs[4] == -127);
    }
    SUBCASE("Q4_0 takes the first value of largest magnitude and truncates x/d + 8.5 as f32 does") {
        x[0] = -8.0f;  // d = 1: q = trunc(x + 8.5)
        x[1] = 8.0f;   // as large, but not first: clamps to 15
        x[2] = 0.49999997f;  // 8.99999997 rounds to 9.0 in f32
        x[3] = -0.5f;
        q::BlockQ4_0 b;
        q::quantize_q4_0(x, &b, 32);
        CHECK(b.d == weft::float_to_f16_bits(1.0f));
        CHECK((b.qs[0] & 0xF) == 0);
        CHECK((b.qs[1] & 0xF) == 15);
        CHECK((b.qs[2] & 0xF) == 9);
        CHECK((b.qs[3] & 0xF) == 8);
        CHECK((b.qs[4] & 0xF) == 8);  // zeros
    }
    SUBCASE("a block of zeros gives d = -0 in Q4_0 (as ggml's C does) and zero quants in Q8_0") {
        q::BlockQ4_0 b4;
        q::quantize_q4_0(x, &b4, 32);
        CHECK(b4.d == 0x8000);
        for (std::uint8_t v : b4.qs) CHECK(v == 0x88);
        q::BlockQ8_0 b8;
        q::quantize_q8_0(x, &b8, 32);
        CHECK(b8.d == 0);
        for (std::int8_t v : b8.qs) CHECK(v == 0);
    }
}

TEST_CASE("every weight type's round-trip RMSE is no worse than ggml's on the golden data sets") {
    // ggml_rmse.json: ggml's own ggml_quantize_chunk + to_float on the same files.
    const nlohmann::json manifest = read_json("manifest.json");
    const nlohmann::json ggml = read_json("ggml_rmse.json");
    const DType types[] = {DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k};
    for (DType type : types) {
        std::ostringstream table;
        for (const auto& set : manifest["datasets"]) {
            const std::string name = set["name"];
            const Index rows = set["rows"], cols = set["cols"];
            const std::vector<float> x = read_f32(set["file"], static_cast<std::size_t>(rows * cols));
            const double weft_rmse = rmse(round_trip(type, x, rows, cols), x);
            const double ggml_rmse = ggml["rmse"][weft::dtype_name(type)][name].get<double>();
            table << "\n  " << name << ": weft " << weft_rmse << ", ggml " << ggml_rmse << " (ratio "
                  << weft_rmse / ggml_rmse << ")";
            INFO(std::string(weft::dtype_name(type)), " on ", name, ": weft ", weft_rmse, " vs ggml ", ggml_rmse);
            if (type == DType::q8_0 || type == DType::q4_0)
                CHECK(std::abs(weft_rmse - ggml_rmse) <= 1e-9 * ggml_rmse);  // the same bytes
            else
                CHECK(weft_rmse <= ggml_rmse * (1 + 1e-3));
        }
        MESSAGE(std::string(weft::dtype_name(type)), " round-trip RMSE, weft vs ggml:", table.str());
    }
}

TEST_CASE("K-quants keep zeros and constants, and stay accurate and finite from tiny to huge scales") {
    for (DType type : {DType::q4_k, DType::q5_k, DType::q6_k}) {
        const std::string type_name = weft::dtype_name(type);
        CAPTURE(type_name);
        std::vector<float> x(512, 0.0f);
        CHECK(round_trip(type, x, 1, 512) == x);  // zeros decode to zeros

        std::fill(x.begin(), x.end(), -0.75f);  // a constant: exactly representable in all three
        CHECK(rmse(round_trip(type, x, 1, 512), x) <= 1e-3 * 0.75);

        std::ostringstream table;
        for (float scale : {1e-6f, 1e-5f, 1e-3f, 1.0f, 1e3f}) {
            CAPTURE(scale);
            std::vector<float> y = normal_values(512, scale, 3);
            const std::vector<float> back = round_trip(type, y, 2, 256);
            for (float v : back) REQUIRE(std::isfinite(v));
            double sumsq = 0;
            for (float v : y) sumsq += double(v) * v;
            // 4-bit quantization of a normal block: ~7 % relative RMSE; 6-bit: ~2 %. At 1e-6 the
            // f16 super-block scale is near its smallest subnormal (ggml's rounds to 0 there).
            table << " " << scale << ": " << rmse(back, y) / std::sqrt(sumsq / 512) << ";";
            CHECK(rmse(back, y) <= 0.15 * std::sqrt(sumsq / 512));
        }
        MESSAGE(type_name, " relative RMSE of N(0, scale^2) blocks at scale", table.str());

        // Beyond f16's range (d saturates at 65504) and below it (denormal inputs): finite.
        for (float scale : {1e-40f, 1e30f}) {
            CAPTURE(scale);
            for (float v : round_trip(type, normal_values(512, scale, 4), 2, 256)) REQUIRE(std::isfinite(v));
        }
    }
}

TEST_CASE("importance weights move the K-quant error away from the important values") {
    const Index n = 4096;
    const std::vector<float> x = normal_values(n, 1.0f, 11);
    std::vector<float> importance(n, 1.0f);
    for (Index i = 0; i < n; i += 8) importance[i] = 100.0f;  // every 8th column matters most
    const auto error_on = [&](const std::vector<float>& y, bool important) {
        double s = 0;
        int count = 0;
        for (Index i = 0; i < n; ++i) {
            if ((importance[i] > 1) != important) continue;
            s += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
            ++count;
        }
        return std::sqrt(s / count);
    };
    for (DType type : {DType::q4_k, DType::q5_k, DType::q6_k}) {
        const std::string type_name = weft::dtype_name(type);
        CAPTURE(type_name);
        const std::vector<float> plain = round_trip(type, x, 1, n);
        const std::vector<float> weighted = round_trip(type, x, 1, n, importance.data());
        MESSAGE(type_name, ": RMSE on the important values ", error_on(plain, true), " -> ", error_on(weighted, true),
                ", on the others ", error_on(plain, false), " -> ", error_on(weighted, false));
        CHECK(error_on(weighted, true) < 0.9 * error_on(plain, true));
        CHECK(error_on(weighted, false) > error_on(plain, false));
        // Uniform importance is the same as none.
        const std::vector<float> ones(n, 4.0f);  // a power of two: every sum scales exactly
        CHECK(round_trip(type, x, 1, n, ones.data()) == plain);
    }
}

TEST_CASE("quantize_rows gives the same bytes as quantize_row per row, whatever the thread count") {
    const Index rows = 7, cols = 768;
    const std::vector<float> x = normal_values(static_cast<std::size_t>(rows * cols), 0.05f, 5);
    for (DType type : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k}) {
        const std::string type_name = weft::dtype_name(type);
        CAPTURE(type_name);
        const std::size_t row_bytes = q::quantized_row_bytes(type, cols);
        std::vector<std::byte> serial(row_bytes * rows), parallel(row_bytes * rows), single(row_bytes * rows);
        for (Index r = 0; r < rows; ++r) q::quantize_row(type, x.data() + r * cols, serial.data() + r * row_bytes, cols);
        const int before = weft::num_threads();
        weft::set_num_threads(1);
        q::quantize_rows(type, x.data(), single.data(), rows, cols);
        weft::set_num_threads(4);
        q::quantize_rows(type, x.data(), parallel.data(), rows, cols);
        weft::set_num_threads(before);
        CHECK(serial == single);
        CHECK(serial == parallel);
        std::vector<float> back(static_cast<std::size_t>(cols));
        q::dequantize_row(type, serial.data(), back.data(), cols);
        if (!weft::is_quantized(type)) {
            for (Index i = 0; i < cols; ++i) {
                const float want = type == DType::f32 ? x[i] : type == DType::f16 ? float(weft::f16(x[i])) : float(weft::bf16(x[i]));
                REQUIRE(back[i] == want);
            }
        }
    }
    // The per-type entry points write the same blocks.
    std::vector<q::BlockQ4_K> k4(cols / 256);
    std::vector<q::BlockQ6_K> k6(cols / 256);
    q::quantize_q4_k(x.data(), k4.data(), cols);
    q::quantize_q6_k(x.data(), k6.data(), cols);
    std::vector<std::byte> r4(q::quantized_row_bytes(DType::q4_k, cols)), r6(q::quantized_row_bytes(DType::q6_k, cols));
    q::quantize_row(DType::q4_k, x.data(), r4.data(), cols);
    q::quantize_row(DType::q6_k, x.data(), r6.data(), cols);
    CHECK(std::memcmp(k4.data(), r4.data(), r4.size()) == 0);
    CHECK(std::memcmp(k6.data(), r6.data(), r6.size()) == 0);
}

TEST_CASE("quantizers reject partial blocks, non-weight dtypes and bad importance with a sentence") {
    std::vector<float> x(512, 1.0f);
    std::vector<std::byte> out(4096);
    CHECK_THROWS_WITH_AS(q::quantize_row(DType::q4_k, x.data(), out.data(), 300), doctest::Contains("300 values is not a whole number of q4_k blocks of 256"), weft::Error);
    CHECK_THROWS_WITH_AS(q::quantize_rows(DType::q8_0, x.data(), out.data(), 2, 48), doctest::Contains("q8_0 blocks of 32"), weft::Error);
    CHECK_THROWS_WITH_AS(q::quantize_row(DType::i32, x.data(), out.data(), 32), doctest::Contains("i32 is not a weight dtype"), weft::Error);
    CHECK_THROWS_WITH_AS(q::quantized_row_bytes(DType::q6_k, 100), doctest::Contains("q6_k blocks of 256"), weft::Error);
    std::vector<float> importance(256, 1.0f);
    importance[17] = -1.0f;
    CHECK_THROWS_WITH_AS(q::quantize_row(DType::q6_k, x.data(), out.data(), 256, importance.data()), doctest::Contains("importance[17] is -1"), weft::Error);
    importance[17] = NAN;
    CHECK_THROWS_AS(q::quantize_row(DType::q4_k, x.data(), out.data(), 256, importance.data()), weft::Error);
    CHECK(q::quantized_row_bytes(DType::q4_k, 512) == 288);
    CHECK(q::quantized_row_bytes(DType::f16, 10) == 20);
}

}  // namespace test_quantize
