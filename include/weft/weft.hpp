// weft/weft.hpp — the umbrella header: everything that runs on the CPU.
//   #include <weft/weft.hpp>
// Link weft::openmp (CMake) or compile with -fopenmp for multi-threaded kernels.
#pragma once

#include "weft/version.hpp"

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/precision.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/storage.hpp"
#include "weft/core/tensor.hpp"
#include "weft/core/threading.hpp"
#include "weft/core/weight.hpp"

#include "weft/expr/assign.hpp"
#include "weft/expr/matmul.hpp"
#include "weft/expr/nodes.hpp"
#include "weft/expr/reduce.hpp"

#include "weft/quant/blocks.hpp"
#include "weft/quant/dequantize.hpp"
#include "weft/quant/interleave.hpp"
#include "weft/quant/quantize.hpp"

#include "weft/io/gguf.hpp"
#include "weft/io/gguf_convert.hpp"
#include "weft/io/gguf_quantize.hpp"
#include "weft/io/hf_config.hpp"
#include "weft/io/hf_config_llama4.hpp"
#include "weft/io/npy.hpp"
#include "weft/io/safetensors.hpp"

#include "weft/nn/attention.hpp"
#include "weft/nn/linear.hpp"
#include "weft/nn/moe.hpp"
#include "weft/nn/norm.hpp"
#include "weft/nn/rope.hpp"

#include "weft/text/chat.hpp"
#include "weft/text/load.hpp"
#include "weft/text/tokenizer.hpp"

#include "weft/sample/generate.hpp"
#include "weft/sample/sampler.hpp"

#include "weft/models/llama.hpp"
#include "weft/models/llama4.hpp"
