// fuzz/fuzz_safetensors.cpp — libFuzzer target for weft::safetensors::File (io/safetensors.hpp).
// Every input is a whole .safetensors file. A bad file must end in weft::Error (any other
// exception, a crash or a sanitizer report is a bug); a file the loader accepts must satisfy what
// the loader promises: every tensor lies inside the data area, its bytes are what its dtype and
// shape need, the tensors tile the area exactly, and each Weight points at those bytes (in place,
// or in an aligned copy holding the same bytes).
#include <weft/io/safetensors.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_input_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static weft_fuzz::InputFile input;
    const std::string& path = input.write(data, size);
    try {
        const weft::safetensors::File file(path);
        WEFT_FUZZ_CHECK(file.bytes().size() == size);
        WEFT_FUZZ_CHECK(size >= 8);
        std::uint64_t header = 0;
        for (int i = 7; i >= 0; --i) header = (header << 8) | data[i];
        const std::uint64_t data_start = 8 + header;
        WEFT_FUZZ_CHECK(data_start <= size);

        std::uint64_t covered = data_start;
        for (const weft::safetensors::TensorInfo& t : file.tensors()) {
            // In file order, with no hole or overlap.
            WEFT_FUZZ_CHECK(t.begin == covered);
            WEFT_FUZZ_CHECK(t.begin <= t.end && t.end <= size);
            const std::uint64_t nbytes = static_cast<std::uint64_t>(t.shape.numel()) * weft::dtype_size(t.dtype);
            WEFT_FUZZ_CHECK(t.end - t.begin == nbytes);
            covered = t.end;

            WEFT_FUZZ_CHECK(file.find(t.name) == &t);
            const weft::Weight w = file.weight(t.name);
            WEFT_FUZZ_CHECK(w.dtype == t.dtype && w.shape == t.shape && w.name == t.name);
            if (nbytes > 0) {
                WEFT_FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(w.data) % weft::dtype_size(t.dtype) == 0);
                WEFT_FUZZ_CHECK(std::memcmp(w.data, data + t.begin, nbytes) == 0);
            }
        }
        WEFT_FUZZ_CHECK(covered == size);
        for (const auto& [key, value] : file.metadata()) WEFT_FUZZ_CHECK(key.size() + value.size() <= header);
    } catch (const weft::Error&) {
        // A refused file: the expected outcome for almost every input.
    }
    return 0;
}
