// fuzz/fuzz_npy.cpp — libFuzzer target for weft::npy::load (io/npy.hpp), which reads reference
// activations (tests, weft-perplexity --save-logits round trips). A bad file must end in
// weft::Error; an accepted one holds exactly the file's data bytes after its header.
#include <weft/io/npy.hpp>

#include <cstdint>
#include <cstring>

#include "fuzz_input_file.hpp"

namespace {

template <class T>
void load_as(const std::string& path, const std::uint8_t* data, std::size_t size) {
    try {
        const weft::Tensor<T> t = weft::npy::load<T>(path);
        const std::size_t nbytes = static_cast<std::size_t>(t.numel()) * sizeof(T);
        WEFT_FUZZ_CHECK(nbytes <= size);
        if (nbytes > 0) WEFT_FUZZ_CHECK(std::memcmp(t.data(), data + size - nbytes, nbytes) == 0);
    } catch (const weft::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static weft_fuzz::InputFile input;
    const std::string& path = input.write(data, size);
    load_as<float>(path, data, size);
    load_as<double>(path, data, size);
    load_as<std::int32_t>(path, data, size);
    return 0;
}
