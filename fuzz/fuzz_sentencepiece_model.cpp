// fuzz/fuzz_sentencepiece_model.cpp — libFuzzer target for the SentencePiece tokenizer.model reader
// (text/sentencepiece_model.hpp: a protobuf wire-format parser) and the Tokenizer built from what it
// reads. A bad file must end in weft::Error. An accepted one must give a Vocabulary that is
// consistent (one score and one type per piece, special ids inside the vocabulary or -1, the
// same result from the file on disk as from the bytes), and a Tokenizer built from it — or refused
// with weft::Error — must keep the promises of fuzz_tokenizer_checks.hpp.
#include <weft/text/sentencepiece_model.hpp>
#include <weft/text/tokenizer.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_input_file.hpp"
#include "fuzz_tokenizer_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    weft::text::Vocabulary v;
    try {
        v = weft::text::parse_sentencepiece_model(bytes, "fuzz/tokenizer.model");
    } catch (const weft::Error&) {
        return 0;  // refused: the expected outcome for most inputs
    }
    const auto n = static_cast<std::int64_t>(v.tokens.size());
    WEFT_FUZZ_CHECK(n > 0 && v.model == "llama");
    WEFT_FUZZ_CHECK(v.scores.size() == v.tokens.size() && v.types.size() == v.tokens.size());
    for (std::int32_t id : {v.bos_id, v.eos_id, v.unk_id, v.pad_id}) WEFT_FUZZ_CHECK(id >= -1 && id < n);
    for (std::size_t i = 0; i < v.tokens.size(); ++i) {
        WEFT_FUZZ_CHECK(!v.tokens[i].empty() && v.types[i] >= 1 && v.types[i] <= 6);
        WEFT_FUZZ_CHECK(std::isfinite(v.scores[i]));
    }
    WEFT_FUZZ_CHECK(v.add_bos == (v.bos_id >= 0));

    // The file reader gives the same vocabulary as the bytes.
    static weft_fuzz::InputFile input;
    const weft::text::Vocabulary from_file = weft::text::read_sentencepiece_model(input.write(data, size));
    WEFT_FUZZ_CHECK(from_file.tokens == v.tokens && from_file.types == v.types && from_file.bos_id == v.bos_id);

    std::optional<weft::text::Tokenizer> tok;
    try {
        tok.emplace(v, "fuzz/tokenizer.model");
    } catch (const weft::Error&) {
        return 0;
    }
    WEFT_FUZZ_CHECK(tok->vocab_size() == n);
    weft_fuzz::check_tokenizer_basics(*tok);
    return 0;
}
