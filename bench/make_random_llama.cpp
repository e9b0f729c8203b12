// make-random-llama: writes a Hugging Face Llama directory with random weights of a named shape,
// for speed measurements with weft-generate / weft-bench.
//   make-random-llama SHAPE DTYPE DIR      SHAPE: 1b | 110m | 8b   DTYPE: f32 | bf16 | f16
#include <cstdio>
#include <exception>

#include "random_model.hpp"

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: make-random-llama SHAPE DTYPE DIR   (SHAPE: 1b | 110m | 8b, DTYPE: f32 | bf16 | f16)\n");
        return 2;
    }
    try {
        std::printf("%s\n", bench::ensure_random_model(argv[3], bench::model_shape(argv[1]), argv[2]).c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make-random-llama: %s\n", e.what());
        return 1;
    }
    return 0;
}
