// tests/cuda/runner.cuh — a tiny test runner for the CUDA tests (doctest's spelling: TEST_CASE,
// CHECK, REQUIRE, MESSAGE), so that the suite needs nothing but nvcc and can skip cleanly when the
// machine has no CUDA device: main() runs only the HOST_TEST_CASEs (host-side code of the backend,
// no device call), prints "no CUDA device: N tests skipped" and exits 0 (or --skip-exit-code).
#pragma once

#include <cstdio>
#include <exception>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace weft_cuda_test {

struct TestCase {
    std::string name;
    void (*run)();
    bool host_only = false;  // runs without a device
};

struct State {
    std::vector<TestCase> tests;
    int failed_checks = 0;
    const char* current = "";
};
inline State& state() {
    static State s;
    return s;
}

struct Register {
    Register(const char* name, void (*run)(), bool host_only = false) { state().tests.push_back({name, run, host_only}); }
};

// Thrown by REQUIRE to end the test case.
struct RequireFailed {};

inline void report(const char* file, int line, const std::string& what) {
    ++state().failed_checks;
    std::printf("  FAILED %s:%d: %s\n      in \"%s\"\n", file, line, what.c_str(), state().current);
}

template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}

}  // namespace weft_cuda_test

#define WEFT_TEST_CAT2(a, b) a##b
#define WEFT_TEST_CAT(a, b) WEFT_TEST_CAT2(a, b)
#define TEST_CASE(name)                                                                                                  \
    static void WEFT_TEST_CAT(weft_test_fn_, __LINE__)();                                                                \
    static ::weft_cuda_test::Register WEFT_TEST_CAT(weft_test_reg_, __LINE__)(name, &WEFT_TEST_CAT(weft_test_fn_, __LINE__)); \
    static void WEFT_TEST_CAT(weft_test_fn_, __LINE__)()

// A test of host-side code only (loaders, configuration): it runs on machines without a device too.
#define HOST_TEST_CASE(name)                                                                                             \
    static void WEFT_TEST_CAT(weft_test_fn_, __LINE__)();                                                                \
    static ::weft_cuda_test::Register WEFT_TEST_CAT(weft_test_reg_, __LINE__)(name, &WEFT_TEST_CAT(weft_test_fn_, __LINE__), true); \
    static void WEFT_TEST_CAT(weft_test_fn_, __LINE__)()

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) ::weft_cuda_test::report(__FILE__, __LINE__, "CHECK(" #cond ")");          \
    } while (0)
#define REQUIRE(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            ::weft_cuda_test::report(__FILE__, __LINE__, "REQUIRE(" #cond ")");                 \
            throw ::weft_cuda_test::RequireFailed{};                                            \
        }                                                                                       \
    } while (0)
// CHECK_LE(a, b) prints both values when it fails.
#define CHECK_LE(a, b)                                                                                                     \
    do {                                                                                                                   \
        const auto weft_a_ = (a);                                                                                          \
        const auto weft_b_ = (b);                                                                                          \
        if (!(weft_a_ <= weft_b_))                                                                                         \
            ::weft_cuda_test::report(__FILE__, __LINE__, ::weft_cuda_test::concat("CHECK_LE(" #a ", " #b "): ", weft_a_, " > ", weft_b_)); \
    } while (0)
#define CHECK_EQ(a, b)                                                                                                     \
    do {                                                                                                                   \
        const auto weft_a_ = (a);                                                                                          \
        const auto weft_b_ = (b);                                                                                          \
        if (!(weft_a_ == weft_b_))                                                                                         \
            ::weft_cuda_test::report(__FILE__, __LINE__, ::weft_cuda_test::concat("CHECK_EQ(" #a ", " #b "): ", weft_a_, " != ", weft_b_)); \
    } while (0)
// The statement throws weft::Error whose message contains `text`.
#define CHECK_THROWS_WITH(stmt, text)                                                                                      \
    do {                                                                                                                   \
        bool weft_threw_ = false;                                                                                          \
        try {                                                                                                              \
            stmt;                                                                                                          \
        } catch (const weft::Error& e) {                                                                                   \
            weft_threw_ = true;                                                                                            \
            if (std::string(e.what()).find(text) == std::string::npos)                                                     \
                ::weft_cuda_test::report(__FILE__, __LINE__, ::weft_cuda_test::concat(#stmt " threw \"", e.what(), "\", expected \"", text, "\"")); \
        }                                                                                                                  \
        if (!weft_threw_) ::weft_cuda_test::report(__FILE__, __LINE__, #stmt " did not throw weft::Error");               \
    } while (0)
#define MESSAGE(...) std::printf("  %s\n", ::weft_cuda_test::concat(__VA_ARGS__).c_str())
