// ggml_reads_weft_gguf.cpp — does llama.cpp's own GGUF reader accept a file weft wrote (weft-quantize),
// and do ggml's dequantizers give the same values as weft's? Not part of the test suite (it needs
// ggml, which CI does not install); run it by hand after changing the writer or the quantizers:
//
//   ggml from llama.cpp's sources (e.g. the vendor/llama.cpp of `pip download --no-binary :all:
//   llama-cpp-python`): cmake -S vendor/llama.cpp/ggml -B ggml-build && cmake --build ggml-build
//   --target ggml-base
//   g++ -std=c++20 -O2 -march=native -Iinclude -I$GGML/include tests/golden/ggml_reads_weft_gguf.cpp \
//       -Lggml-build/src -lggml-base -Wl,-rpath,ggml-build/src -o ggml_reads_weft_gguf
//   ./ggml_reads_weft_gguf model.gguf
//
// Prints one line per tensor type (tensors, values, max |ggml − weft|) and exits 1 on any
// difference or any tensor ggml places elsewhere than weft.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "ggml.h"
#include "gguf.h"

#include <weft/io/gguf.hpp>
#include <weft/quant/dequantize.hpp>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: ggml_reads_weft_gguf FILE.gguf\n");
        return 2;
    }
    gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
    gguf_context* g = gguf_init_from_file(argv[1], params);
    if (!g) {
        std::fprintf(stderr, "ggml's gguf_init_from_file rejected %s\n", argv[1]);
        return 1;
    }
    const weft::gguf::File file = weft::gguf::File::open(argv[1]);
    const auto& tensors = file.tensors();
    if (static_cast<std::size_t>(gguf_get_n_tensors(g)) != tensors.size()) {
        std::fprintf(stderr, "ggml sees %lld tensors, weft %zu\n", static_cast<long long>(gguf_get_n_tensors(g)), tensors.size());
        return 1;
    }
    const std::int64_t arch = gguf_find_key(g, "general.architecture");
    std::printf("ggml: GGUF v%u, %lld keys, architecture %s, data at %zu\n", gguf_get_version(g),
                static_cast<long long>(gguf_get_n_kv(g)), arch >= 0 ? gguf_get_val_str(g, arch) : "(none)", gguf_get_data_offset(g));
    struct Summary {
        long tensors = 0;
        double values = 0, worst = 0;
    };
    std::map<std::string, Summary> by_type;
    bool ok = true;
    for (std::int64_t i = 0; i < gguf_get_n_tensors(g); ++i) {
        const weft::gguf::TensorInfo& t = tensors[static_cast<std::size_t>(i)];
        const ggml_type type = gguf_get_tensor_type(g, i);
        if (t.name != gguf_get_tensor_name(g, i) || gguf_get_data_offset(g) + gguf_get_tensor_offset(g, i) != t.begin) {
            std::fprintf(stderr, "tensor %lld: ggml has %s at %zu, weft %s\n", static_cast<long long>(i), gguf_get_tensor_name(g, i),
                         gguf_get_tensor_offset(g, i), t.name.c_str());
            ok = false;
            continue;
        }
        const weft::Weight w = file.weight(t.name);
        const weft::Index cols = t.shape[t.shape.rank() - 1], rows = t.shape.numel() / cols;
        const std::size_t row_bytes = ggml_row_size(type, cols);
        std::vector<float> a(static_cast<std::size_t>(cols)), b(a.size());
        Summary& s = by_type[ggml_type_name(type)];
        ++s.tensors;
        for (weft::Index r = 0; r < rows; ++r) {
            const void* row = w.data + static_cast<std::size_t>(r) * row_bytes;
            if (type == GGML_TYPE_F32) std::memcpy(a.data(), row, a.size() * sizeof(float));  // (no to_float for f32)
            else ggml_get_type_traits(type)->to_float(row, a.data(), cols);
            weft::quant::dequantize_row(w.dtype, row, b.data(), cols);
            for (std::size_t k = 0; k < a.size(); ++k) {
                const double d = std::abs(double(a[k]) - double(b[k]));
                if (!(d <= s.worst)) s.worst = std::isnan(d) ? INFINITY : d;
            }
            s.values += double(cols);
        }
    }
    for (const auto& [type, s] : by_type) {
        std::printf("%-6s %4ld tensors %14.0f values  max |ggml - weft| = %g\n", type.c_str(), s.tensors, s.values, s.worst);
        ok = ok && s.worst == 0;
    }
    gguf_free(g);
    std::puts(ok ? "ggml reads the file; every value equals weft's" : "DIFFERENCES");
    return ok ? 0 : 1;
}
