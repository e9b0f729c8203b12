// The quantized matmul kernels (cpu/quant_matmul.hpp) and the activation quantizer
// (quant/activation.hpp): the GEMV and GEMM paths give exactly the bits of the scalar definition
// (quant_matmul_nt_reference) on awkward shapes, for any thread count; the definition agrees with
// "dequantize (quant/dequantize.hpp), then multiply in double" to within its float rounding on the
// quantized activations, and to within the activation quantization error on the f32 ones.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <weft/core/threading.hpp>
#include <weft/cpu/quant_matmul.hpp>
#include <weft/quant/activation.hpp>
#include <weft/quant/dequantize.hpp>
#include <weft/quant/interleave.hpp>

namespace test_quant_kernels {

namespace {

using weft::DType;
using weft::Index;

constexpr DType kTypes[] = {DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k};

bool is_k_quant(DType t) { return t == DType::q4_k || t == DType::q5_k || t == DType::q6_k; }
Index unit_values(DType t) { return is_k_quant(t) ? 256 : 32; }
Index unit_bytes(DType t) {
    switch (t) {
        case DType::q8_0: return 34;
        case DType::q4_0: return 18;
        case DType::q4_k: return 144;
        case DType::q5_k: return 176;
        default: return 210;
    }
}

void put_f16(std::uint8_t* p, float v) {
    const std::uint16_t h = weft::float_to_f16_bits(v);
    std::memcpy(p, &h, 2);
}

// N rows of K values as valid blocks: random code bytes, scales as a quantizer would make them
// (Q8_0/Q4_0: either sign; K-quants: positive d and dmin, signed 6-bit... int8 Q6_K scales).
std::vector<std::uint8_t> random_weights(DType t, Index N, Index K, std::mt19937& rng) {
    const Index units = N * (K / unit_values(t)), ub = unit_bytes(t);
    std::vector<std::uint8_t> w(static_cast<std::size_t>(units * ub));
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> mag(0.002f, 0.02f);
    for (auto& b : w) b = static_cast<std::uint8_t>(byte(rng));
    for (Index u = 0; u < units; ++u) {
        std::uint8_t* b = w.data() + u * ub;
        switch (t) {
            case DType::q8_0:
            case DType::q4_0: put_f16(b, byte(rng) & 1 ? mag(rng) : -mag(rng)); break;
            case DType::q4_k:
            case DType::q5_k:
                put_f16(b, mag(rng) / 8);
                put_f16(b + 2, mag(rng) / 8);
                break;
            default: put_f16(b + 208, mag(rng) / 16); break;
        }
    }
    return w;
}

// Activations like a transformer's: mostly in [-1, 1], a few large outliers.
std::vector<float> random_activations(Index M, Index ld, std::mt19937& rng) {
    std::vector<float> x(static_cast<std::size_t>(M * ld));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : x) v = u(rng) * (u(rng) > 0.98f ? 20.0f : 1.0f);
    return x;
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
    std::vector<std::uint32_t> b(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) b[i] = std::bit_cast<std::uint32_t>(v[i]);
    return b;
}

// For a K-quant value k of a row: dmin · m_j, the part of the weight that the mins subtract (the
// kernels' float rounding is relative to the weight's two parts, not to their difference).
double min_part(DType t, const std::uint8_t* row, Index k) {
    if (t != DType::q4_k && t != DType::q5_k) return 0.0;
    const std::uint8_t* b = row + (k / 256) * unit_bytes(t);
    std::uint16_t h;
    std::memcpy(&h, b + 2, 2);
    std::uint8_t sc, m;
    weft::quant::k_scale_min(static_cast<int>(k % 256 / 32), b + 4, sc, m);
    return std::abs(double(weft::f16_bits_to_float(h)) * m);
}

struct Case {
    DType type;
    Index M, N, K;
};

// The worst errors seen, relative to their bounds (reported once per type).
struct Worst {
    double q = 0, f = 0;
};

// Runs every path on one shape and checks them as the file's header says.
void check_case(const Case& c, std::mt19937& rng, Worst& worst) {
    const DType type = c.type;  // (plain names: lambdas below capture them)
    const Index M = c.M, N = c.N, K = c.K;
    const Index ldx = K + 5, ldo = N + 3;
    const auto w = random_weights(type, N, K, rng);
    const auto x = random_activations(M, ldx, rng);
    const Index row_bytes = K / unit_values(type) * unit_bytes(type);

    std::vector<float> ref(static_cast<std::size_t>(M * ldo), -7.0f);
    weft::cpu::quant_matmul_nt_reference(type, M, N, K, x.data(), ldx, w.data(), ref.data(), ldo);
    auto run = [&](auto fn) {
        std::vector<float> out(static_cast<std::size_t>(M * ldo), -7.0f);
        fn(type, M, N, K, x.data(), ldx, w.data(), out.data(), ldo);
        return out;
    };
    const auto gemv = run(weft::cpu::quant_gemv_nt);
    const auto gemm = run(weft::cpu::quant_gemm_nt);
    const auto any = run(weft::cpu::quant_matmul_nt);
    // Bit for bit (padding columns included: they must still hold -7).
    CHECK(bits(gemv) == bits(ref));
    CHECK(bits(gemm) == bits(ref));
    CHECK(bits(any) == bits(ref));

    // Against double arithmetic on the dequantized weights.
    weft::quant::QuantizedActivations qa;
    qa.quantize(x.data(), M, K, ldx, unit_values(type));
    std::vector<float> wrow(static_cast<std::size_t>(K));
    // Float steps in each output's chain: one per block (Q8_0/Q4_0), or per sub-block plus two per
    // super-block (K-quants); each rounds by at most 2^-24 of the magnitudes it adds.
    const double steps = is_k_quant(type) ? double(K / 256) * (type == DType::q6_k ? 18 : 10) : double(K / 32) + 1;
    const double tol = (steps + 2) * std::ldexp(1.0, -24);
    double worst_q = 0, worst_f = 0;
    for (Index n = 0; n < N; ++n) {
        const std::uint8_t* row = w.data() + n * row_bytes;
        weft::quant::dequantize_row(type, row, wrow.data(), K);
        for (Index m = 0; m < M; ++m) {
            double sum_q = 0, mag = 0, sum_f = 0, qerr = 0;
            for (Index k = 0; k < K; ++k) {
                const double dx = qa.d(m)[k / unit_values(type)];
                const double xq = dx * qa.q(m)[k], wk = wrow[static_cast<std::size_t>(k)];
                sum_q += wk * xq;
                mag += (std::abs(wk) + 2 * min_part(type, row, k)) * std::abs(xq);
                sum_f += wk * double(x[static_cast<std::size_t>(m * ldx + k)]);
                qerr += std::abs(wk) * 0.5 * dx * (1 + 1e-6);  // |x - dx·qx| <= dx / 2
            }
            const double got = ref[static_cast<std::size_t>(m * ldo + n)];
            const double eq = std::abs(got - sum_q), ef = std::abs(got - sum_f);
            worst_q = std::max(worst_q, eq / std::max(mag, 1e-30));
            worst_f = std::max(worst_f, ef / std::max(qerr + tol * mag, 1e-30));
            if (!(eq <= tol * mag + 1e-30) || !(ef <= qerr + tol * mag + 1e-30)) {
                CAPTURE(m);
                CAPTURE(n);
                CAPTURE(got);
                CAPTURE(sum_q);
                CAPTURE(sum_f);
                CHECK(eq <= tol * mag);
                CHECK(ef <= qerr + tol * mag);
                return;
            }
        }
    }
    worst.q = std::max(worst.q, worst_q / tol);
    worst.f = std::max(worst.f, worst_f);
}

}  // namespace

TEST_CASE("quantized GEMV and GEMM give the reference's bits and match double arithmetic on awkward shapes") {
    std::mt19937 rng(2024);
    for (DType type : kTypes) {
        Worst worst;
        const std::vector<Index> Ks = is_k_quant(type) ? std::vector<Index>{256, 768, 1280} : std::vector<Index>{32, 224, 544};
        for (Index M : {1, 2, 3, 4, 7, 8, 9, 16, 65})
            for (Index N : {1, 3, 17, 33, 255})
                for (Index K : Ks) {
                    // The largest shapes only at one K, to keep the double reference quick.
                    if (M * N * K > 65 * 255 * 256 && K != Ks[1]) continue;
                    const std::string name = weft::dtype_name(type);
                    CAPTURE(name);
                    CAPTURE(M);
                    CAPTURE(N);
                    CAPTURE(K);
                    check_case({type, M, N, K}, rng, worst);
                }
        MESSAGE(std::string(weft::dtype_name(type)), ": worst error / bound ", worst.q, " on quantized activations, ", worst.f,
                " on f32 activations");
    }
}

TEST_CASE("quantized matmul results are bit-identical for 1, 2 and 3 threads") {
    std::mt19937 rng(7);
    const int before = weft::num_threads();
    for (DType type : kTypes) {
        const Index K = is_k_quant(type) ? 512 : 160, N = 301;
        const auto w = random_weights(type, N, K, rng);
        for (Index M : {1, 5, 40}) {
            const auto x = random_activations(M, K, rng);
            auto run = [&](int threads, bool gemv) {
                weft::set_num_threads(threads);
                std::vector<float> out(static_cast<std::size_t>(M * N));
                if (gemv) weft::cpu::quant_gemv_nt(type, M, N, K, x.data(), K, w.data(), out.data(), N);
                else weft::cpu::quant_gemm_nt(type, M, N, K, x.data(), K, w.data(), out.data(), N);
                return bits(out);
            };
            for (bool gemv : {true, false}) {
                const std::string name = weft::dtype_name(type);
                CAPTURE(name);
                CAPTURE(M);
                CAPTURE(gemv);
                const auto one = run(1, gemv);
                CHECK(one == run(2, gemv));
                CHECK(one == run(3, gemv));
            }
        }
    }
    weft::set_num_threads(before);
}

TEST_CASE("a grouped quantized matmul over mixed types gives each part's own bits") {
    std::mt19937 rng(11);
    const Index K = 512;
    const DType types[3] = {DType::q4_k, DType::q6_k, DType::q8_0};
    const Index ns[3] = {40, 17, 33};
    std::vector<std::uint8_t> w[3];
    for (int i = 0; i < 3; ++i) w[i] = random_weights(types[i], ns[i], K, rng);
    for (Index M : {1, 3, 12, 20}) {
        const auto x = random_activations(M, K, rng);
        for (bool gemv : {true, false}) {
            std::vector<float> outs[3], alone[3];
            std::array<weft::cpu::QuantPart, 3> parts;
            for (int i = 0; i < 3; ++i) {
                outs[i].assign(static_cast<std::size_t>(M * ns[i]), 0.0f);
                alone[i].assign(static_cast<std::size_t>(M * ns[i]), 0.0f);
                parts[static_cast<std::size_t>(i)] = {types[i], w[i].data(), ns[i], outs[i].data(), ns[i]};
                weft::cpu::quant_matmul_nt_reference(types[i], M, ns[i], K, x.data(), K, w[i].data(), alone[i].data(), ns[i]);
            }
            if (gemv) weft::cpu::quant_gemv_nt_group(M, K, x.data(), K, parts);
            else weft::cpu::quant_gemm_nt_group(M, K, x.data(), K, parts);
            CAPTURE(M);
            CAPTURE(gemv);
            for (int i = 0; i < 3; ++i) CHECK(bits(outs[i]) == bits(alone[i]));
            weft::cpu::quant_matmul_nt_group(M, K, x.data(), K, parts);
            for (int i = 0; i < 3; ++i) CHECK(bits(outs[i]) == bits(alone[i]));
        }
    }
}

TEST_CASE("the x16 dtypes (16 rows interleaved) give their GGUF type's bits on every path and thread count") {
    std::mt19937 rng(31);
    const int before = weft::num_threads();
    for (DType type : kTypes) {
        const DType il = weft::quant::interleaved_dtype(type);
        const std::vector<Index> Ks = is_k_quant(type) ? std::vector<Index>{256, 768, 2048} : std::vector<Index>{32, 96, 224, 2048};
        for (Index N : {16, 48, 272})
            for (Index K : Ks) {
                const auto w = random_weights(type, N, K, rng);
                auto wi = w;
                weft::quant::interleave(type, reinterpret_cast<std::byte*>(wi.data()), N, K);
                REQUIRE(wi != w);
                for (Index M : {1, 2, 3, 4, 5, 8, 9, 16, 65}) {
                    if (M * N * K > 65 * 48 * 2048) continue;
                    const Index ldx = K + 3, ldo = N + 5;
                    const auto x = random_activations(M, ldx, rng);
                    auto run = [&](auto fn, DType t, const std::vector<std::uint8_t>& weights) {
                        std::vector<float> out(static_cast<std::size_t>(M * ldo), -7.0f);
                        fn(t, M, N, K, x.data(), ldx, weights.data(), out.data(), ldo);
                        return bits(out);
                    };
                    const std::string name = weft::dtype_name(il);
                    CAPTURE(name);
                    CAPTURE(N);
                    CAPTURE(K);
                    CAPTURE(M);
                    const auto ref = run(weft::cpu::quant_matmul_nt_reference, type, w);
                    CHECK(run(weft::cpu::quant_matmul_nt_reference, il, wi) == ref);
                    for (int threads : {1, 2, 3}) {
                        CAPTURE(threads);
                        weft::set_num_threads(threads);
                        CHECK(run(weft::cpu::quant_gemv_nt, il, wi) == ref);
                        CHECK(run(weft::cpu::quant_gemm_nt, il, wi) == ref);
                        CHECK(run(weft::cpu::quant_matmul_nt, il, wi) == ref);
                    }
                    weft::set_num_threads(before);
                }
            }
    }
    // In a group with other types (one activation quantization per format, one parallel region).
    const Index K = 256;
    const auto w4 = random_weights(DType::q4_0, 32, K, rng), wk = random_weights(DType::q4_k, 48, K, rng),
               w6 = random_weights(DType::q6_k, 19, K, rng);
    auto w4i = w4, wki = wk;
    weft::quant::interleave(DType::q4_0, reinterpret_cast<std::byte*>(w4i.data()), 32, K);
    weft::quant::interleave(DType::q4_k, reinterpret_cast<std::byte*>(wki.data()), 48, K);
    for (Index M : {1, 4, 20}) {
        const auto x = random_activations(M, K, rng);
        std::vector<float> a(static_cast<std::size_t>(M * 32)), b(static_cast<std::size_t>(M * 48)), c(static_cast<std::size_t>(M * 19));
        std::vector<float> ra(a.size()), rb(b.size()), rc(c.size());
        weft::cpu::quant_matmul_nt_reference(DType::q4_0, M, 32, K, x.data(), K, w4.data(), ra.data(), 32);
        weft::cpu::quant_matmul_nt_reference(DType::q4_k, M, 48, K, x.data(), K, wk.data(), rb.data(), 48);
        weft::cpu::quant_matmul_nt_reference(DType::q6_k, M, 19, K, x.data(), K, w6.data(), rc.data(), 19);
        weft::cpu::quant_matmul_nt_group<3>(M, K, x.data(), K, {weft::cpu::QuantPart{DType::q4_0x16, w4i.data(), 32, a.data(), 32},
                                                               weft::cpu::QuantPart{DType::q4_kx16, wki.data(), 48, b.data(), 48},
                                                               weft::cpu::QuantPart{DType::q6_k, w6.data(), 19, c.data(), 19}});
        CAPTURE(M);
        CHECK(bits(a) == bits(ra));
        CHECK(bits(b) == bits(rb));
        CHECK(bits(c) == bits(rc));
    }
    // Rows not a whole number of interleaved groups.
    std::vector<float> out(64);
    CHECK_THROWS_WITH_AS(weft::cpu::quant_gemv_nt(DType::q4_0x16, 1, 17, 32, out.data(), 32, w4i.data(), out.data(), 17),
                         doctest::Contains("not whole groups of 16"), weft::Error);
}

#if defined(WEFT_QMM_AMX)
TEST_CASE("the AMX and the AVX-512 VNNI GEMM give the same bits") {
    std::mt19937 rng(13);
    auto& allowed = weft::cpu::detail::qmm::amx_allowed();
    for (DType type : kTypes) {
        const Index K = is_k_quant(type) ? 768 : 224, N = 70, M = 37;
        const auto w = random_weights(type, N, K, rng);
        const auto x = random_activations(M, K, rng);
        std::vector<float> amx(static_cast<std::size_t>(M * N)), vnni(amx.size());
        weft::cpu::quant_gemm_nt(type, M, N, K, x.data(), K, w.data(), amx.data(), N);
        allowed = false;
        weft::cpu::quant_gemm_nt(type, M, N, K, x.data(), K, w.data(), vnni.data(), N);
        allowed = true;
        const std::string name = weft::dtype_name(type);
        CAPTURE(name);
        CHECK(bits(amx) == bits(vnni));
    }
}
#endif

TEST_CASE("activation quantization: codes within [-127, 127], error at most half a step, sums, same bits as scalar") {
    std::mt19937 rng(3);
    for (Index block : {32, 256}) {
        const Index M = 5, K = 1024, ldx = K + 1;
        auto x = random_activations(M, ldx, rng);
        for (Index k = 0; k < block; ++k) x[static_cast<std::size_t>(2 * ldx + k)] = 0.0f;                    // a zero block
        for (Index k = 0; k < block; ++k) x[static_cast<std::size_t>(3 * ldx + k)] = k % 3 == 0 ? 1e-35f : 0.f;  // below 1e-30
        weft::quant::QuantizedActivations qa;
        qa.quantize(x.data(), M, K, ldx, block);
        REQUIRE(qa.rows() == M);
        REQUIRE(qa.cols() == K);
        std::vector<std::int8_t> q(static_cast<std::size_t>(K));
        std::vector<float> d(static_cast<std::size_t>(K / block));
        std::vector<std::int16_t> s(static_cast<std::size_t>(K / 16));
        for (Index m = 0; m < M; ++m) {
            weft::quant::detail::quantize_row_scalar(x.data() + m * ldx, K, block, q.data(), d.data(), s.data());
            CHECK(std::memcmp(q.data(), qa.q(m), static_cast<std::size_t>(K)) == 0);
            CHECK(std::memcmp(d.data(), qa.d(m), sizeof(float) * d.size()) == 0);
            CHECK(std::memcmp(s.data(), qa.sums(m), sizeof(std::int16_t) * s.size()) == 0);
            for (Index k = 0; k < K; ++k) {
                const float dk = qa.d(m)[k / block];
                const int qk = qa.q(m)[k];
                REQUIRE(qk >= -127);
                REQUIRE(qk <= 127);
                REQUIRE(std::abs(double(x[static_cast<std::size_t>(m * ldx + k)]) - double(dk) * qk) <= 0.5 * dk * (1 + 1e-6) + 1e-30);
            }
            for (Index i = 0; i < K / 16; ++i) {
                int sum = 0;
                for (Index j = 0; j < 16; ++j) sum += qa.q(m)[16 * i + j];
                REQUIRE(qa.sums(m)[i] == sum);
            }
        }
        CHECK(qa.d(2)[0] == 0.0f);
        CHECK(qa.d(3)[0] == 0.0f);
    }
}

TEST_CASE("quantized matmul: a non-finite activation makes its outputs NaN; zeros give zeros") {
    std::mt19937 rng(5);
    for (DType type : kTypes) {
        const Index K = is_k_quant(type) ? 512 : 64, N = 20, M = 3;
        const auto w = random_weights(type, N, K, rng);
        std::vector<float> x(static_cast<std::size_t>(M * K), 0.0f);
        x[static_cast<std::size_t>(K + 7)] = std::numeric_limits<float>::infinity();
        x[static_cast<std::size_t>(2 * K + 3)] = std::numeric_limits<float>::quiet_NaN();
        for (bool gemv : {true, false}) {
            std::vector<float> out(static_cast<std::size_t>(M * N), 1.0f);
            if (gemv) weft::cpu::quant_gemv_nt(type, M, N, K, x.data(), K, w.data(), out.data(), N);
            else weft::cpu::quant_gemm_nt(type, M, N, K, x.data(), K, w.data(), out.data(), N);
            const std::string name = weft::dtype_name(type);
            CAPTURE(name);
            for (Index n = 0; n < N; ++n) {
                CHECK(out[static_cast<std::size_t>(n)] == 0.0f);
                CHECK(std::isnan(out[static_cast<std::size_t>(N + n)]));
                CHECK(std::isnan(out[static_cast<std::size_t>(2 * N + n)]));
            }
        }
    }
}

TEST_CASE("quantized matmul rejects bad shapes and dtypes with weft::Error") {
    std::vector<std::uint8_t> w(4096);
    std::vector<float> x(1024), out(64);
    CHECK_THROWS_AS(weft::cpu::quant_matmul_nt(DType::q4_0, 1, 2, 48, x.data(), 48, w.data(), out.data(), 2), weft::Error);
    CHECK_THROWS_AS(weft::cpu::quant_matmul_nt(DType::q4_k, 1, 2, 128, x.data(), 128, w.data(), out.data(), 2), weft::Error);
    CHECK_THROWS_AS(weft::cpu::quant_matmul_nt(DType::bf16, 1, 2, 32, x.data(), 32, w.data(), out.data(), 2), weft::Error);
    CHECK_THROWS_AS(weft::cpu::quant_matmul_nt(DType::q8_0, 2, 4, 32, x.data(), 32, w.data(), out.data(), 3), weft::Error);
    CHECK_THROWS_AS(weft::cpu::quant_matmul_nt(DType::q8_0, 2, 4, 32, x.data(), 16, w.data(), out.data(), 4), weft::Error);
    CHECK_NOTHROW(weft::cpu::quant_matmul_nt(DType::q8_0, 0, 4, 32, x.data(), 32, w.data(), out.data(), 4));
}

}  // namespace test_quant_kernels
