// weft/text/unicode.hpp — the Unicode pieces the tokenizers need: strict UTF-8 decoding and
// encoding, the class of a code point (letter by subcategory, mark, number, White_Space) from the
// generated tables in text/unicode_tables.hpp, and GPT-2's byte ↔ character map for byte-level BPE.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "weft/text/unicode_tables.hpp"

namespace weft::text {

// What the pre-tokenizer regexes ask of a code point: \p{L} by subcategory, \p{M}, \p{N},
// \s (Unicode White_Space), or none of these. Values match scripts/gen_unicode_tables.py.
enum class CharClass : std::uint8_t { other = 0, Lu, Ll, Lt, Lm, Lo, mark, number, space };

// The class of code point `cp` (Unicode version: unicode_data::unicode_version).
inline CharClass char_class(char32_t cp);

inline bool is_letter(CharClass c) { return c >= CharClass::Lu && c <= CharClass::Lo; }

// U+FFFD, in UTF-8.
inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

// What the bytes at the start of `s` hold, under the strict rules of Unicode Table 3-7 (no
// overlong forms, no surrogates, nothing above U+10FFFF):
//   complete:   a whole character of `length` bytes, code point `cp`;
//   incomplete: all of `s` (length bytes, 1 to 3) is a proper prefix of some character;
//   invalid:    the first `length` bytes (1 to 3) are the longest prefix that could begin a
//               character, and the next byte (or the first byte itself, when length is 1)
//               cannot continue it.
struct Utf8Prefix {
    enum Kind { complete, incomplete, invalid } kind;
    int length;
    char32_t cp;
};
inline Utf8Prefix utf8_prefix(std::string_view s);

// Appends the UTF-8 encoding of `cp` (which must be a Unicode scalar value).
inline void append_utf8(std::string& out, char32_t cp);

// GPT-2's byte-level alphabet: byte b stands for the character byte_to_char(b); printable
// Latin-1 bytes map to themselves, the others to U+0100 + n in byte order.
inline char32_t byte_to_char(std::uint8_t b);
// The byte that character `c` stands for, or -1 if `c` is not in the alphabet.
inline int char_to_byte(char32_t c);

// =============================================================================================
// Implementation
// =============================================================================================

inline CharClass char_class(char32_t cp) {
    const auto& runs = unicode_data::class_runs;
    if (cp >= 0x110000) return CharClass::other;
    const std::uint32_t key = (static_cast<std::uint32_t>(cp) << 8) | 0xFFu;
    // The last run starting at or before cp.
    const auto* it = std::upper_bound(std::begin(runs), std::end(runs), key);
    return static_cast<CharClass>(*(it - 1) & 0xFFu);
}

inline Utf8Prefix utf8_prefix(std::string_view s) {
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
    const std::uint8_t b0 = byte(0);
    if (b0 < 0x80) return {Utf8Prefix::complete, 1, b0};
    int need;
    char32_t cp;
    std::uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2, cp = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3, cp = b0 & 0x0Fu;
        if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
        if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4, cp = b0 & 0x07u;
        if (b0 == 0xF0) lo = 0x90;  // no overlong forms
        if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return {Utf8Prefix::invalid, 1, 0};  // a continuation byte, C0, C1 or F5..FF
    }
    for (int i = 1; i < need; ++i) {
        if (static_cast<std::size_t>(i) >= s.size()) return {Utf8Prefix::incomplete, i, 0};
        const std::uint8_t b = byte(static_cast<std::size_t>(i));
        const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        if (!ok) return {Utf8Prefix::invalid, i, 0};
        cp = (cp << 6) | (b & 0x3Fu);
    }
    return {Utf8Prefix::complete, need, cp};
}

inline void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

namespace detail {

struct ByteLevelMaps {
    std::array<char32_t, 256> to_char{};
    std::array<std::int16_t, 0x144> to_byte{};  // every character of the alphabet is below U+0144
    ByteLevelMaps() {
        to_byte.fill(-1);
        int next = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            to_char[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(0x100 + next++);
            to_byte[to_char[static_cast<std::size_t>(b)]] = static_cast<std::int16_t>(b);
        }
    }
};

inline const ByteLevelMaps& byte_level_maps() {
    static const ByteLevelMaps maps;
    return maps;
}

}  // namespace detail

inline char32_t byte_to_char(std::uint8_t b) { return detail::byte_level_maps().to_char[b]; }

inline int char_to_byte(char32_t c) {
    const auto& m = detail::byte_level_maps().to_byte;
    return c < m.size() ? m[c] : -1;
}

}  // namespace weft::text
