# cmake/WeftCuda.cmake — the optional CUDA backend: the INTERFACE target weft::cuda and, when weft
# builds its own programs, the CUDA tests (registered with ctest), the CUDA benchmark and the CUDA
# generate example. Included once from the top-level CMakeLists.txt, after the weft target and the
# WEFT_BUILD_* options (and enable_testing()) exist:
#     include(cmake/WeftCuda.cmake)
#   -DWEFT_CUDA=AUTO (default) builds it when a CUDA compiler is found; ON requires one; OFF skips it.
#   -DCMAKE_CUDA_ARCHITECTURES=90 builds for one GPU generation (default: 80;86;89;90).

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
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
        if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
            set(CMAKE_CUDA_ARCHITECTURES "80;86;89;90")  # A100, RTX 30xx/A10, RTX 40xx/L4, H100/H200
        endif()
        enable_language(CUDA)
        find_package(CUDAToolkit REQUIRED)
        set(WEFT_HAVE_CUDA ON)
        message(STATUS "weft: CUDA backend on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
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

# ---- tests: every CUDA op and the device Llama against the CPU; skip (exit 0) without a GPU ------
if(WEFT_BUILD_TESTS)
    add_executable(weft_cuda_tests
        ${weft_cuda_root}/tests/cuda/main.cu
        ${weft_cuda_root}/tests/cuda/test_cuda.cu
        ${weft_cuda_root}/tests/cuda/test_cuda_llama.cu)
    target_link_libraries(weft_cuda_tests PRIVATE weft::cuda weft_cuda_dev_flags)
    target_compile_definitions(weft_cuda_tests PRIVATE WEFT_SOURCE_DIR="${weft_cuda_root}")
    add_test(NAME weft_cuda_tests COMMAND weft_cuda_tests)
endif()

# ---- benchmark: decode tokens/s, prefill GEMM TFLOP/s, next to the device's own ceilings ---------
if(WEFT_BUILD_BENCH)
    add_executable(weft_bench_cuda ${weft_cuda_root}/bench/cuda/bench_cuda.cu)
    target_link_libraries(weft_bench_cuda PRIVATE weft::cuda weft_cuda_dev_flags)
endif()

# ---- example: weft-generate on the GPU ---------------------------------------------------------
if(WEFT_BUILD_EXAMPLES)
    add_executable(weft-generate-cuda ${weft_cuda_root}/examples/cuda/generate_cuda.cu)
    target_link_libraries(weft-generate-cuda PRIVATE weft::cuda weft_cuda_dev_flags)
endif()
