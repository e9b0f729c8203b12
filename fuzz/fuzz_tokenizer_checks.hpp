// fuzz/fuzz_tokenizer_checks.hpp — what every weft::text::Tokenizer promises, whatever file it came
// from, checked by the fuzz targets that build tokenizers (fuzz_gguf, fuzz_tokenizer_json,
// fuzz_sentencepiece_model, fuzz_tokenize):
//   - encode gives ids inside the vocabulary; encode(text, add_bos = true) is prefix_ids(), then
//     encode(text, false), then suffix_ids();
//   - a StreamDecoder fed ids one at a time, then flushed, gives exactly decode()'s text; after the
//     flush it starts over (the same ids give the same text again);
//   - decode() gives valid UTF-8, and so does every StreamDecoder chunk (never half a character).
// A broken promise ends in WEFT_FUZZ_CHECK's __builtin_trap, which libFuzzer reports as a crash.
#pragma once

#include <weft/text/tokenizer.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input_file.hpp"

namespace weft_fuzz {

using Ids = std::vector<std::int32_t>;

inline bool valid_utf8(std::string_view s) { return weft::text::detail::is_valid_utf8(s); }

// decode(ids, skip_special), checked against a StreamDecoder (`rounds` times, across flushes).
inline std::string checked_decode(const weft::text::Tokenizer& tok, std::span<const std::int32_t> ids, bool skip_special, int rounds = 2) {
    const std::string batch = tok.decode(ids, skip_special);
    WEFT_FUZZ_CHECK(valid_utf8(batch));
    weft::text::StreamDecoder stream(tok, skip_special);
    for (int round = 0; round < rounds; ++round) {
        std::string streamed;
        for (std::int32_t id : ids) {
            const std::string part = stream.push(id);
            WEFT_FUZZ_CHECK(valid_utf8(part));
            streamed += part;
        }
        const std::string tail = stream.flush();
        WEFT_FUZZ_CHECK(valid_utf8(tail));
        streamed += tail;
        WEFT_FUZZ_CHECK(streamed == batch);
    }
    return batch;
}

// encode's framing and id range; returns encode(text, false, allow_special).
inline Ids checked_encode(const weft::text::Tokenizer& tok, std::string_view text, bool allow_special) {
    const Ids bare = tok.encode(text, false, allow_special);
    const Ids full = tok.encode(text, true, allow_special);
    Ids framed = tok.prefix_ids();
    framed.insert(framed.end(), bare.begin(), bare.end());
    framed.insert(framed.end(), tok.suffix_ids().begin(), tok.suffix_ids().end());
    WEFT_FUZZ_CHECK(full == framed);
    for (std::int32_t id : full) WEFT_FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
    return bare;
}

// Ids made from raw bytes (two bytes each, modulo the vocabulary), for decoding any sequence.
inline Ids ids_from_bytes(const std::uint8_t* data, std::size_t size, std::int32_t vocab_size, std::size_t max_ids = 512) {
    Ids ids;
    for (std::size_t i = 0; i + 1 < size && ids.size() < max_ids; i += 2)
        ids.push_back(static_cast<std::int32_t>((data[i] | (data[i + 1] << 8)) % vocab_size));
    return ids;
}

// What a tokenizer built from an untrusted file is checked with: a few texts through encode and
// decode (both ways of each flag), every token on its own, and the accessors.
inline void check_tokenizer_basics(const weft::text::Tokenizer& tok) {
    const std::int32_t n = tok.vocab_size();
    WEFT_FUZZ_CHECK(n > 0);
    for (std::int32_t id : {tok.bos_id(), tok.eos_id(), tok.eot_id(), tok.unk_id(), tok.pad_id()}) WEFT_FUZZ_CHECK(id >= -1 && id < n);
    static const std::string_view texts[] = {
        "", " ", "Hello, world!  And God said\n\tlet there be light 12345",
        "na\xC3\xAFve caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 \xE2\x96\x81x",  // naïve café 日本 😀 ▁x
        "<s></s><unk><|begin_of_text|><|eot_id|><sep>",
        "bad \xFF\xC0 utf8 \xE2\x82 cut \xF0\x9F",
    };
    for (std::string_view text : texts) {
        for (bool allow_special : {false, true}) {
            const Ids ids = checked_encode(tok, text, allow_special);
            for (bool skip : {false, true}) (void)checked_decode(tok, ids, skip);
        }
    }
    // Every token alone (its piece, its text, its kind), on a bounded sample.
    Ids all;
    for (std::int32_t id = 0; id < n && id < 1024; ++id) {
        all.push_back(id);
        (void)tok.token_to_piece(id);
        const std::string& text = tok.token_text(id);
        if (const auto back = tok.token_to_id(text)) WEFT_FUZZ_CHECK(*back >= 0 && *back < n && tok.token_text(*back) == text);
        (void)tok.is_special(id);
        (void)tok.is_end_of_generation(id);
    }
    for (bool skip : {false, true}) (void)checked_decode(tok, all, skip);
}

}  // namespace weft_fuzz
