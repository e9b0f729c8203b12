// weft/cuda.cuh — umbrella header of the optional CUDA backend (namespace weft::cuda; .cu files, nvcc):
// device tensors and fused expressions, reductions, Linear (GEMV / cuBLAS), RMSNorm, RoPE, attention
// and a device Llama. Includes <weft/weft.hpp>. Link weft::cuda (CMake).
#pragma once

#if !defined(__CUDACC__)
#error "weft/cuda.cuh holds CUDA kernels: compile this file with nvcc (a .cu file), or include <weft/weft.hpp> for the CPU backend"
#endif

#include "weft/weft.hpp"

#include "weft/cuda/error.cuh"
#include "weft/cuda/memory.cuh"
#include "weft/cuda/dtype.cuh"
#include "weft/cuda/launch.cuh"
#include "weft/cuda/tensor.cuh"
#include "weft/cuda/expr.cuh"
#include "weft/cuda/reduce.cuh"
#include "weft/cuda/context.cuh"
#include "weft/cuda/quant.cuh"
#include "weft/cuda/weight.cuh"
#include "weft/cuda/linear.cuh"
#include "weft/cuda/nn.cuh"
#include "weft/cuda/llama.cuh"
