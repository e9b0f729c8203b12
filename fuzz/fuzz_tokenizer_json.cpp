// fuzz/fuzz_tokenizer_json.cpp — libFuzzer target for Hugging Face tokenizer.json parsing
// (text/tokenizer_json.hpp, through Tokenizer::from_tokenizer_json_text). An input is a
// tokenizer.json, optionally followed by a NUL byte and a tokenizer_config.json (JSON never holds a
// raw NUL, so the split is unambiguous). A bad file must end in weft::Error; a tokenizer that is
// built must keep the promises of fuzz_tokenizer_checks.hpp (ids in range, StreamDecoder equal to
// decode, valid UTF-8 out).
#include <weft/text/tokenizer.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_input_file.hpp"
#include "fuzz_tokenizer_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t nul = input.find('\0');
    const std::string_view tokenizer_json = input.substr(0, nul);
    const std::string_view config_json = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
    std::optional<weft::text::Tokenizer> tok;
    try {
        tok.emplace(weft::text::Tokenizer::from_tokenizer_json_text(tokenizer_json, config_json, "fuzz/tokenizer.json"));
    } catch (const weft::Error&) {
        return 0;  // refused: the expected outcome for most inputs
    }
    weft_fuzz::check_tokenizer_basics(*tok);
    return 0;
}
