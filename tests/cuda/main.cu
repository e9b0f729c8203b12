// tests/cuda/main.cu — entry point of weft_cuda_tests: runs every TEST_CASE of tests/cuda/*.cu on
// the first CUDA device, or skips them all (exit status 0) when there is none.
//   weft_cuda_tests [SUBSTRING]      runs the test cases whose name contains SUBSTRING
#include <cstdio>
#include <cstring>
#include <exception>

#include <weft/cuda/error.cuh>

#include "runner.cuh"

int main(int argc, char** argv) {
    auto& s = weft_cuda_test::state();
    if (weft::cuda::device_count() == 0) {
        std::printf("no CUDA device: skipping %zu tests\n", s.tests.size());
        return 0;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) std::printf("CUDA device 0: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    const char* filter = argc > 1 ? argv[1] : nullptr;
    int ran = 0, failed_cases = 0;
    for (const auto& t : s.tests) {
        if (filter && t.name.find(filter) == std::string::npos) continue;
        ++ran;
        s.current = t.name.c_str();
        std::printf("[ RUN  ] %s\n", t.name.c_str());
        std::fflush(stdout);
        const int before = s.failed_checks;
        try {
            t.run();
        } catch (const weft_cuda_test::RequireFailed&) {
        } catch (const std::exception& e) {
            weft_cuda_test::report(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
        }
        const bool ok = s.failed_checks == before;
        failed_cases += ok ? 0 : 1;
        std::printf("[ %s ] %s\n", ok ? " OK " : "FAIL", t.name.c_str());
        std::fflush(stdout);
    }
    std::printf("%d test cases: %d passed, %d failed (%d failed checks)\n", ran, ran - failed_cases, failed_cases, s.failed_checks);
    return failed_cases == 0 ? 0 : 1;
}
