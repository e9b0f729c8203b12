# cmake/WeftCuda.cmake — the optional CUDA backend: the INTERFACE target weft::cuda (installed and
# exported with weft's targets) and, when weft builds its own programs, the CUDA tests (ctest:
# weft_cuda_tests, skipped without a device; consumer_cuda_find_package) and the CUDA benchmark;
# examples/CMakeLists.txt adds --device cuda to weft-generate, weft-perplexity and weft-bench.
# Included once from the top-level CMakeLists.txt, after the weft target, the WEFT_BUILD_* options
# and enable_testing(); sets WEFT_HAVE_CUDA.
#   -DWEFT_CUDA=AUTO (default) builds it when nvcc is found (on PATH, $CUDACXX, $CUDA_PATH/bin, else
#    /usr/local/cuda/bin/nvcc); ON requires it; OFF skips it.
#   -DCMAKE_CUDA_ARCHITECTURES=90 builds for one GPU generation (default: 80;86;89;90). nvcc time
#    grows with each architecture: CI, which only compiles, builds one (-DCMAKE_CUDA_ARCHITECTURES=90).

set(WEFT_CUDA AUTO CACHE STRING "Build the CUDA backend: AUTO (when a CUDA compiler is found), ON or OFF")
set_property(CACHE WEFT_CUDA PROPERTY STRINGS AUTO ON OFF)

string(TOUPPER "${WEFT_CUDA}" weft_cuda_mode)
if(NOT weft_cuda_mode STREQUAL "AUTO")
    if(WEFT_CUDA)
        set(weft_cuda_mode ON)
    else()
        set(weft_cuda_mode OFF)
    endif()
endif()

set(WEFT_HAVE_CUDA OFF)
if(NOT weft_cuda_mode STREQUAL "OFF")
    # The CUDA toolkit's default place, when nvcc is not on PATH and nothing names a compiler
    # (CMake itself looks only on PATH and in $CUDA_PATH/bin).
    if(NOT DEFINED CMAKE_CUDA_COMPILER AND "$ENV{CUDACXX}" STREQUAL "" AND "$ENV{CUDA_PATH}" STREQUAL ""
       AND EXISTS /usr/local/cuda/bin/nvcc)
        find_program(weft_nvcc_on_path nvcc NO_CACHE NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH NO_CMAKE_SYSTEM_PATH)
        if(NOT weft_nvcc_on_path)
            set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)  # read by check_language's test project
        endif()
    endif()
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
        if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
            set(CMAKE_CUDA_ARCHITECTURES "80;86;89;90")  # A100, RTX 30xx/A10, RTX 40xx/L4, H100/H200
        endif()
        enable_language(CUDA)
        find_package(CUDAToolkit)
        if(TARGET CUDA::cudart AND TARGET CUDA::cublas AND TARGET CUDA::cublasLt)
            set(WEFT_HAVE_CUDA ON)
            message(STATUS "weft: CUDA backend on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
        elseif(weft_cuda_mode STREQUAL "ON")
            message(FATAL_ERROR "weft: WEFT_CUDA=ON but the CUDA toolkit of ${CMAKE_CUDA_COMPILER} lacks the runtime or cuBLAS/cuBLASLt")
        else()
            message(STATUS "weft: the CUDA toolkit of ${CMAKE_CUDA_COMPILER} lacks the runtime or cuBLAS; the CUDA backend is not built")
        endif()
    elseif(weft_cuda_mode STREQUAL "ON")
        message(FATAL_ERROR "weft: WEFT_CUDA=ON but no CUDA compiler was found; point CMAKE_CUDA_COMPILER at nvcc "
                            "(e.g. -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc) or use WEFT_CUDA=AUTO")
    else()
        message(STATUS "weft: no CUDA compiler found; the CUDA backend is not built (WEFT_CUDA=AUTO)")
    endif()
endif()

if(NOT WEFT_HAVE_CUDA)
    return()
endif()

get_filename_component(weft_cuda_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)

# ---- the library: weft plus the CUDA runtime and cuBLAS; sources that use it are .cu files ------
add_library(weft_cuda INTERFACE)
add_library(weft::cuda ALIAS weft_cuda)
set_target_properties(weft_cuda PROPERTIES EXPORT_NAME cuda)
target_link_libraries(weft_cuda INTERFACE weft CUDA::cudart CUDA::cublas CUDA::cublasLt)
# C++20 in .cu files (CMake versions older than the CUDA toolkit do not know its features).
if("cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
    target_compile_features(weft_cuda INTERFACE cuda_std_20)
else()
    target_compile_options(weft_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
endif()
# The CPU headers carry `#pragma GCC unroll`, which nvcc's front end does not know (warning 1675).
target_compile_options(weft_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:--diag-suppress=1675>)

# Flags for weft's own CUDA programs: the host compiler's warnings, and nvcc's warning 177 off
# (variables its front end sees as unused in the CPU headers' #if branches).
add_library(weft_cuda_dev_flags INTERFACE)
target_compile_options(weft_cuda_dev_flags INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --diag-suppress=177>)

# ---- tests: every CUDA op and the device Llama against the CPU ------------------------------------
# Without a CUDA device the device tests are skipped (host-side tests still run): ctest reports the
# test as skipped (exit status 77); run by hand, weft_cuda_tests exits 0.
if(WEFT_BUILD_TESTS)
    add_executable(weft_cuda_tests
        ${weft_cuda_root}/tests/cuda/main.cu
        ${weft_cuda_root}/tests/cuda/test_cuda.cu
        ${weft_cuda_root}/tests/cuda/test_cuda_llama.cu)
    target_link_libraries(weft_cuda_tests PRIVATE weft::cuda weft_cuda_dev_flags)
    target_compile_definitions(weft_cuda_tests PRIVATE WEFT_SOURCE_DIR="${weft_cuda_root}")
    add_test(NAME weft_cuda_tests COMMAND weft_cuda_tests --skip-exit-code 77)
    set_tests_properties(weft_cuda_tests PROPERTIES SKIP_RETURN_CODE 77 LABELS cuda)

    # weft::cuda from an installed weft (find_package), as a user's CUDA project gets it: configure,
    # build and run tests/cuda/consumer (it runs without a device too).
    add_test(NAME consumer_cuda_find_package
             COMMAND ${CMAKE_COMMAND} -DMODE=find_package -DWEFT_SOURCE_DIR=${weft_cuda_root}
                     -DWEFT_BUILD_DIR=${PROJECT_BINARY_DIR} -DWORK_DIR=${PROJECT_BINARY_DIR}/tests/consumer_cuda
                     -DPROJECT_DIR=${weft_cuda_root}/tests/cuda/consumer -DPROGRAMS=app_cuda
                     -P ${weft_cuda_root}/tests/consumer/run_consumer.cmake)
    # The same nvcc and GPU architectures (CMake looks for nvcc only on PATH).
    list(GET CMAKE_CUDA_ARCHITECTURES 0 weft_cuda_first_arch)
    set_tests_properties(consumer_cuda_find_package PROPERTIES LABELS "cuda;packaging"
                         ENVIRONMENT "CUDACXX=${CMAKE_CUDA_COMPILER};CUDAARCHS=${weft_cuda_first_arch}")
endif()

# ---- benchmark: decode tokens/s, prefill GEMM TFLOP/s, next to the device's own ceilings ---------
if(WEFT_BUILD_BENCH)
    add_executable(weft_bench_cuda ${weft_cuda_root}/bench/cuda/bench_cuda.cu)
    target_link_libraries(weft_bench_cuda PRIVATE weft::cuda weft_cuda_dev_flags)
endif()

# ---- examples: weft-generate, weft-perplexity and weft-bench take --device cuda (examples/CMakeLists.txt)
