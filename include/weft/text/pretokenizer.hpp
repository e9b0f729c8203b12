// weft/text/pretokenizer.hpp — the regex pre-tokenizers of byte-level BPE, matched by hand: GPT-2's
// pattern, Llama 3's (cl100k-style) and Llama 4's (o200k-style). Each splits text into pre-tokens
// exactly as a backtracking regex engine (Oniguruma in HF tokenizers, fancy-regex in tiktoken,
// Python's `regex`) splits it with leftmost-first alternation; text/bpe.hpp then encodes each piece.
// Classes come from text/unicode_tables.hpp (Unicode 14.0); those engines carry newer tables, so a
// character assigned after Unicode 14 is "other" here and may split differently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/text/unicode.hpp"

namespace weft::text {

// The supported pre-tokenizer regexes (each spelled out in split_pattern_regex).
enum class SplitPattern {
    gpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    llama3,  // Llama 3 / cl100k: case-insensitive contractions, 1-3 digit numbers
    llama4,  // Llama 4 / o200k: words split at case changes, contractions attached, [\r\n/]* after symbols
};

// The regex, exactly as tokenizer.json files write it.
inline std::string_view split_pattern_regex(SplitPattern p);
inline std::string_view split_pattern_name(SplitPattern p);
// A GGUF `tokenizer.ggml.pre` name: "llama-bpe", "llama3" → llama3; "llama4", "gpt-4o", "o200k" → llama4;
// "gpt2", "gpt-2", "default" → gpt2. Throws weft::Error naming the known names otherwise.
inline SplitPattern split_pattern_from_name(std::string_view name);
// The pattern whose regex is exactly `regex`; nullopt if it is none of the three.
inline std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex);

// The pre-tokens of `text`: the successive regex matches, which tile the text (every character
// matches some alternative). Bytes that are not valid UTF-8 count as one character each, of no
// class (neither \s nor \p{L} nor \p{N}), the way a lone surrogate does in Python's `regex`.
inline std::vector<std::string_view> pretokenize(SplitPattern p, std::string_view text);

// =============================================================================================
// Implementation
// =============================================================================================

inline std::string_view split_pattern_regex(SplitPattern p) {
    switch (p) {
        case SplitPattern::gpt2:
            return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
        case SplitPattern::llama3:
            return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
        case SplitPattern::llama4:
            return R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    }
    return {};
}

inline std::string_view split_pattern_name(SplitPattern p) {
    switch (p) {
        case SplitPattern::gpt2: return "gpt2";
        case SplitPattern::llama3: return "llama3";
        case SplitPattern::llama4: return "llama4";
    }
    return {};
}

inline SplitPattern split_pattern_from_name(std::string_view name) {
    if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") return SplitPattern::llama3;
    if (name == "llama4" || name == "gpt-4o" || name == "o200k") return SplitPattern::llama4;
    if (name == "gpt2" || name == "gpt-2" || name == "default") return SplitPattern::gpt2;
    fail("tokenizer: pre-tokenizer \"", name, "\" is not supported; weft knows \"llama-bpe\"/\"llama3\" (Llama 3), "
         "\"llama4\"/\"gpt-4o\" (Llama 4, o200k) and \"gpt2\"/\"default\"");
}

inline std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex) {
    for (SplitPattern p : {SplitPattern::gpt2, SplitPattern::llama3, SplitPattern::llama4})
        if (regex == split_pattern_regex(p)) return p;
    return std::nullopt;
}

namespace detail {

// The text as characters: code point (invalid_cp for a byte that is not valid UTF-8), class and
// byte offset; offsets has one more entry, the end of the text.
struct CharRun {
    static constexpr char32_t invalid_cp = 0xFFFFFFFF;
    std::vector<char32_t> cps;
    std::vector<CharClass> cls;
    std::vector<std::size_t> offsets;

    explicit CharRun(std::string_view text) {
        cps.reserve(text.size());
        cls.reserve(text.size());
        offsets.reserve(text.size() + 1);
        std::size_t i = 0;
        while (i < text.size()) {
            offsets.push_back(i);
            const Utf8Prefix u = utf8_prefix(text.substr(i));
            if (u.kind == Utf8Prefix::complete) {
                cps.push_back(u.cp);
                cls.push_back(u.cp < 0x80 ? ascii_class(u.cp) : char_class(u.cp));
                i += static_cast<std::size_t>(u.length);
            } else {
                cps.push_back(invalid_cp);
                cls.push_back(CharClass::other);
                i += 1;
            }
        }
        offsets.push_back(text.size());
    }

    static CharClass ascii_class(char32_t c) {
        if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::space;
        if (c >= 'A' && c <= 'Z') return CharClass::Lu;
        if (c >= 'a' && c <= 'z') return CharClass::Ll;
        if (c >= '0' && c <= '9') return CharClass::number;
        return CharClass::other;
    }
};

// One matcher per text; each alternative returns the end of its match at i, or npos.
class PatternMatcher {
public:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    explicit PatternMatcher(const CharRun& run) : c_(run), n_(run.cps.size()) {}

    // The end of the match starting at character i (always > i).
    std::size_t match(SplitPattern p, std::size_t i) const {
        std::size_t e = npos;
        switch (p) {
            case SplitPattern::gpt2: e = match_gpt2(i); break;
            case SplitPattern::llama3: e = match_llama3(i); break;
            case SplitPattern::llama4: e = match_llama4(i); break;
        }
        return e == npos || e <= i ? i + 1 : e;  // every character matches some alternative; guard anyway
    }

private:
    char32_t cp(std::size_t i) const { return c_.cps[i]; }
    CharClass cls(std::size_t i) const { return c_.cls[i]; }
    bool is_space(std::size_t i) const { return cls(i) == CharClass::space; }
    bool is_letter_at(std::size_t i) const { return is_letter(cls(i)); }
    bool is_number(std::size_t i) const { return cls(i) == CharClass::number; }
    bool is_crlf(std::size_t i) const { return cp(i) == '\r' || cp(i) == '\n'; }
    // [^\s\p{L}\p{N}]
    bool is_symbol(std::size_t i) const { return !is_space(i) && !is_letter_at(i) && !is_number(i); }
    // [^\r\n\p{L}\p{N}]
    bool is_word_prefix(std::size_t i) const { return !is_crlf(i) && !is_letter_at(i) && !is_number(i); }
    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}]
    bool is_upperish(std::size_t i) const {
        const CharClass k = cls(i);
        return k == CharClass::Lu || k == CharClass::Lt || k == CharClass::Lm || k == CharClass::Lo || k == CharClass::mark;
    }
    bool is_lowerish(std::size_t i) const {
        const CharClass k = cls(i);
        return k == CharClass::Ll || k == CharClass::Lm || k == CharClass::Lo || k == CharClass::mark;
    }

    template <class Pred>
    std::size_t run_of(std::size_t i, Pred pred) const {
        while (i < n_ && (this->*pred)(i)) ++i;
        return i;
    }

    // Lower-case of an ASCII letter; under (?i) also U+017F LONG S → 's' (its simple case folding).
    char32_t fold(std::size_t i, bool ignore_case) const {
        const char32_t c = cp(i);
        if (!ignore_case) return c;
        if (c >= 'A' && c <= 'Z') return c + ('a' - 'A');
        if (c == 0x17F) return 's';
        return c;
    }

    // 's|'t|'re|'ve|'m|'ll|'d at i: its length, or 0.
    std::size_t contraction(std::size_t i, bool ignore_case) const {
        if (i + 1 >= n_ || cp(i) != '\'') return 0;
        const char32_t a = fold(i + 1, ignore_case);
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if (i + 2 >= n_) return 0;
        const char32_t b = fold(i + 2, ignore_case);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        return 0;
    }

    // \s+(?!\S) then \s+ at i (which must be whitespace).
    std::size_t trailing_space(std::size_t i) const {
        const std::size_t j = run_of(i, &PatternMatcher::is_space);
        if (j == n_) return j;   // whitespace up to the end: all of it
        if (j - i >= 2) return j - 1;  // leave the last one to prefix the next word
        return j;                // \s+ alone
    }

    // \s*[\r\n]+ at i: whitespace up to and including the last \r or \n of the run.
    std::size_t space_then_newlines(std::size_t i) const {
        const std::size_t j = run_of(i, &PatternMatcher::is_space);
        for (std::size_t k = j; k > i; --k)
            if (is_crlf(k - 1)) return k;
        return npos;
    }

    // ` ?X+` followed by a run of `tail` characters (tail may be null).
    template <class Pred>
    std::size_t optional_space_then(std::size_t i, Pred pred, bool (PatternMatcher::*tail)(std::size_t) const = nullptr) const {
        const std::size_t s = cp(i) == ' ' ? i + 1 : i;
        if (s >= n_ || !(this->*pred)(s)) return npos;  // without the space, ' ' itself fails X
        std::size_t e = run_of(s, pred);
        if (tail) e = run_of(e, tail);
        return e;
    }

    bool is_crlf_or_slash(std::size_t i) const { return is_crlf(i) || cp(i) == '/'; }

    std::size_t match_gpt2(std::size_t i) const {
        if (const std::size_t k = contraction(i, false)) return i + k;
        if (std::size_t e = optional_space_then(i, &PatternMatcher::is_letter_at); e != npos) return e;
        if (std::size_t e = optional_space_then(i, &PatternMatcher::is_number); e != npos) return e;
        if (std::size_t e = optional_space_then(i, &PatternMatcher::is_symbol); e != npos) return e;
        if (is_space(i)) return trailing_space(i);
        return npos;
    }

    std::size_t match_llama3(std::size_t i) const {
        if (const std::size_t k = contraction(i, true)) return i + k;
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (is_word_prefix(i) && i + 1 < n_ && is_letter_at(i + 1)) return run_of(i + 1, &PatternMatcher::is_letter_at);
        if (is_letter_at(i)) return run_of(i, &PatternMatcher::is_letter_at);
        // \p{N}{1,3}
        if (is_number(i)) {
            std::size_t e = i + 1;
            while (e < n_ && e < i + 3 && is_number(e)) ++e;
            return e;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        if (std::size_t e = optional_space_then(i, &PatternMatcher::is_symbol, &PatternMatcher::is_crlf); e != npos) return e;
        if (is_space(i)) {
            if (std::size_t e = space_then_newlines(i); e != npos) return e;
            return trailing_space(i);
        }
        return npos;
    }

    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ at s: the greedy star gives
    // characters back until the plus can match, so the plus starts at the last "lowerish"
    // position k in [s, end of the star run] and runs on from there.
    std::size_t upper_then_lower(std::size_t s) const {
        const std::size_t b = run_of(s, &PatternMatcher::is_upperish);
        for (std::size_t k = b + 1; k > s; --k)
            if (k - 1 < n_ && is_lowerish(k - 1)) return run_of(k - 1, &PatternMatcher::is_lowerish);
        return npos;
    }
    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]* at s.
    std::size_t upper_plus(std::size_t s) const {
        if (s >= n_ || !is_upperish(s)) return npos;
        return run_of(run_of(s, &PatternMatcher::is_upperish), &PatternMatcher::is_lowerish);
    }

    std::size_t match_llama4(std::size_t i) const {
        const auto with_contraction = [&](std::size_t e) { return e + contraction(e, true); };
        // Both word alternatives try the optional [^\r\n\p{L}\p{N}] first, then without it.
        const bool prefix = is_word_prefix(i);
        if (prefix && i + 1 < n_)
            if (std::size_t e = upper_then_lower(i + 1); e != npos) return with_contraction(e);
        if (std::size_t e = upper_then_lower(i); e != npos) return with_contraction(e);
        if (prefix && i + 1 < n_)
            if (std::size_t e = upper_plus(i + 1); e != npos) return with_contraction(e);
        if (std::size_t e = upper_plus(i); e != npos) return with_contraction(e);
        if (is_number(i)) {
            std::size_t e = i + 1;
            while (e < n_ && e < i + 3 && is_number(e)) ++e;
            return e;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
        if (std::size_t e = optional_space_then(i, &PatternMatcher::is_symbol, &PatternMatcher::is_crlf_or_slash); e != npos)
            return e;
        if (is_space(i)) {
            if (std::size_t e = space_then_newlines(i); e != npos) return e;
            return trailing_space(i);
        }
        return npos;
    }

    const CharRun& c_;
    std::size_t n_;
};

}  // namespace detail

inline std::vector<std::string_view> pretokenize(SplitPattern p, std::string_view text) {
    std::vector<std::string_view> out;
    if (text.empty()) return out;
    const detail::CharRun run(text);
    const detail::PatternMatcher m(run);
    const std::size_t n = run.cps.size();
    for (std::size_t i = 0; i < n;) {
        const std::size_t e = m.match(p, i);
        out.push_back(text.substr(run.offsets[i], run.offsets[e] - run.offsets[i]));
        i = e;
    }
    return out;
}

}  // namespace weft::text
