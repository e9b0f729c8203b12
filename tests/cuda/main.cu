// tests/cuda/main.cu — entry point of weft_cuda_tests: runs every TEST_CASE of tests/cuda/*.cu on
// the first CUDA device. Without a device it runs only the HOST_TEST_CASEs and skips the rest, with
// "no CUDA device: N tests skipped", exiting 0 (or the --skip-exit-code status, for ctest).
//   weft_cuda_tests [--skip-exit-code N] [SUBSTRING]    runs the test cases whose name contains SUBSTRING
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include <cuda_runtime.h>

#include "runner.cuh"

int main(int argc, char** argv) {
    auto& s = weft_cuda_test::state();
    const char* filter = nullptr;
    int skip_exit_code = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--skip-exit-code") == 0 && i + 1 < argc) skip_exit_code = std::atoi(argv[++i]);
        else filter = argv[i];
    }
    int devices = 0;
    const cudaError_t e = cudaGetDeviceCount(&devices);
    const bool device = e == cudaSuccess && devices > 0;
    if (device) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) std::printf("CUDA device 0: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    }
    int ran = 0, failed_cases = 0, skipped = 0;
    for (const auto& t : s.tests) {
        if (filter && t.name.find(filter) == std::string::npos) continue;
        if (!device && !t.host_only) {
            ++skipped;
            continue;
        }
        ++ran;
        s.current = t.name.c_str();
        std::printf("[ RUN  ] %s\n", t.name.c_str());
        std::fflush(stdout);
        const int before = s.failed_checks;
        try {
            t.run();
        } catch (const weft_cuda_test::RequireFailed&) {
        } catch (const std::exception& ex) {
            weft_cuda_test::report(__FILE__, __LINE__, std::string("unexpected exception: ") + ex.what());
        }
        const bool ok = s.failed_checks == before;
        failed_cases += ok ? 0 : 1;
        std::printf("[ %s ] %s\n", ok ? " OK " : "FAIL", t.name.c_str());
        std::fflush(stdout);
    }
    std::printf("%d test cases: %d passed, %d failed (%d failed checks)\n", ran, ran - failed_cases, failed_cases, s.failed_checks);
    if (failed_cases) return 1;
    if (!device) {
        std::printf("no CUDA device (%s): %d tests skipped\n", e == cudaSuccess ? "none found" : cudaGetErrorName(e), skipped);
        return skip_exit_code;
    }
    return 0;
}
