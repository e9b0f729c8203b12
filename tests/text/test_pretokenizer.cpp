// The hand-written regex pre-tokenizers (GPT-2, Llama 3, Llama 4) against Python's `regex` module on
// the golden corpus, plus the rules of each pattern spelled out case by case; and the Unicode
// pieces they stand on (code point classes, strict UTF-8, GPT-2's byte alphabet).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <weft/text/pretokenizer.hpp>

#include "text_golden.hpp"

namespace test_pretokenizer {

namespace {

using weft::text::CharClass;
using weft::text::pretokenize;
using weft::text::SplitPattern;
using weft::text::Utf8Prefix;
using namespace weft_test::text;

std::vector<std::string> pieces(SplitPattern p, const std::string& text) {
    std::vector<std::string> out;
    for (std::string_view s : pretokenize(p, text)) out.emplace_back(s);
    return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("pre-tokenizer splits equal Python regex's on every golden case, for all three patterns") {
    for (const auto& named : {std::pair{"gpt2", SplitPattern::gpt2}, std::pair{"llama3", SplitPattern::llama3},
                              std::pair{"llama4", SplitPattern::llama4}}) {
        const char* const name = named.first;  // a named copy: clang 14's INFO cannot capture a structured binding
        const SplitPattern pattern = named.second;
        const json& splits = golden()["splits"][name];
        REQUIRE(splits.size() == cases().size());
        for (std::size_t i = 0; i < cases().size(); ++i) {
            const std::string& text = cases()[i].bytes;
            std::vector<std::size_t> ends;
            std::size_t pos = 0;
            for (std::string_view s : pretokenize(pattern, text)) {
                CHECK(s.data() == text.data() + pos);  // pieces tile the text in order
                pos += s.size();
                ends.push_back(pos);
            }
            INFO(name << " / " << cases()[i].name);
            CHECK(ends == splits[i].get<std::vector<std::size_t>>());
        }
    }
}

TEST_CASE("the regexes are recognised exactly as tokenizer.json spells them, and by GGUF pre names") {
    using weft::text::split_pattern_from_name;
    using weft::text::split_pattern_from_regex;
    using weft::text::split_pattern_regex;
    for (SplitPattern p : {SplitPattern::gpt2, SplitPattern::llama3, SplitPattern::llama4})
        CHECK(split_pattern_from_regex(split_pattern_regex(p)) == p);
    CHECK_FALSE(split_pattern_from_regex(R"(\p{L}+|\s+)").has_value());
    CHECK(split_pattern_from_name("llama-bpe") == SplitPattern::llama3);
    CHECK(split_pattern_from_name("llama4") == SplitPattern::llama4);
    CHECK(split_pattern_from_name("gpt-4o") == SplitPattern::llama4);
    CHECK(split_pattern_from_name("default") == SplitPattern::gpt2);
    CHECK_THROWS_WITH_AS(split_pattern_from_name("qwen2"), doctest::Contains("pre-tokenizer \"qwen2\" is not supported"), weft::Error);
}

TEST_CASE("Llama 3 pre-tokenizer: case-insensitive contractions, a one-character word prefix, numbers in threes") {
    CHECK(pieces(SplitPattern::llama3, "DON'T I'LL we'Re") == V{"DON", "'T", " I", "'LL", " we", "'Re"});
    CHECK(pieces(SplitPattern::llama3, "x'ſ") == V{"x", "'ſ"});  // U+017F folds to s
    CHECK(pieces(SplitPattern::llama3, "1234567") == V{"123", "456", "7"});
    CHECK(pieces(SplitPattern::llama3, " 12") == V{" ", "12"});  // numbers take no space
    CHECK(pieces(SplitPattern::llama3, "(hello)") == V{"(hello", ")"});  // any non-letter, non-digit prefixes a word
    CHECK(pieces(SplitPattern::llama3, "a\n\nb") == V{"a", "\n\n", "b"});
    CHECK(pieces(SplitPattern::llama3, "a \n \n  b") == V{"a", " \n \n", " ", " b"});
    CHECK(pieces(SplitPattern::llama3, "a   b") == V{"a", "  ", " b"});  // \s+(?!\S) leaves one space for the word
    CHECK(pieces(SplitPattern::llama3, "a   ") == V{"a", "   "});
    CHECK(pieces(SplitPattern::llama3, "?!\n\nx") == V{"?!\n\n", "x"});
    CHECK(pieces(SplitPattern::llama3, " ...") == V{" ..."});
}

TEST_CASE("Llama 4 pre-tokenizer: words split where lower case turns upper, contractions stay attached") {
    CHECK(pieces(SplitPattern::llama4, "HelloWorld") == V{"Hello", "World"});
    CHECK(pieces(SplitPattern::llama4, "XMLHttpRequest") == V{"XMLHttp", "Request"});
    CHECK(pieces(SplitPattern::llama4, "DON'T stop") == V{"DON'T", " stop"});
    CHECK(pieces(SplitPattern::llama4, "they'll") == V{"they'll"});
    CHECK(pieces(SplitPattern::llama4, "1234") == V{"123", "4"});
    CHECK(pieces(SplitPattern::llama4, "a/b//\nc") == V{"a", "/b", "//\n", "c"});
    CHECK(pieces(SplitPattern::llama4, "e\xCC\x81t\xC3\xA9") == V{"e\xCC\x81t\xC3\xA9"});  // marks belong to words
}

TEST_CASE("GPT-2 pre-tokenizer: lower-case contractions only, a space prefixes words, numbers and symbols") {
    CHECK(pieces(SplitPattern::gpt2, "I'm DON'T") == V{"I", "'m", " DON", "'", "T"});
    CHECK(pieces(SplitPattern::gpt2, "a 123456 !!") == V{"a", " 123456", " !!"});
    CHECK(pieces(SplitPattern::gpt2, "a\n\nb") == V{"a", "\n", "\n", "b"});
}

TEST_CASE("pre-tokenizers treat each byte of invalid UTF-8 as a symbol and never lose a byte") {
    const std::string text = "ab\xFF" "cd \xE4\xB8 x\xF0\x9F\x98";
    for (SplitPattern p : {SplitPattern::gpt2, SplitPattern::llama3, SplitPattern::llama4}) {
        std::string joined;
        for (std::string_view s : pretokenize(p, text)) joined += s;
        CHECK(joined == text);
    }
    CHECK(pieces(SplitPattern::llama3, "ab\xFF" "cd") == V{"ab", "\xFF" "cd"});
    CHECK(pretokenize(SplitPattern::llama3, "").empty());
}

TEST_CASE("code point classes follow Unicode: letters by case, marks, numbers, White_Space") {
    using weft::text::char_class;
    CHECK(char_class(U'A') == CharClass::Lu);
    CHECK(char_class(U'z') == CharClass::Ll);
    CHECK(char_class(0x01C5) == CharClass::Lt);    // ǅ
    CHECK(char_class(0x02B0) == CharClass::Lm);    // ʰ
    CHECK(char_class(0x4E2D) == CharClass::Lo);    // 中
    CHECK(char_class(0x0301) == CharClass::mark);  // combining acute
    CHECK(char_class(0x0663) == CharClass::number);  // Arabic-Indic three
    CHECK(char_class(0x2162) == CharClass::number);  // Ⅲ (Nl)
    CHECK(char_class(0x00BD) == CharClass::number);  // ½ (No)
    for (char32_t ws : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000})
        CHECK(char_class(ws) == CharClass::space);
    for (char32_t not_ws : {0x1C, 0x1F, 0x200B, 0x180E, 0xFEFF}) CHECK(char_class(not_ws) != CharClass::space);
    CHECK(char_class(0x1F600) == CharClass::other);  // emoji
    CHECK(char_class(0x10FFFF) == CharClass::other);
    CHECK(char_class(0x110000) == CharClass::other);
    CHECK(std::string(weft::text::unicode_data::unicode_version) == "14.0.0");
}

TEST_CASE("utf8_prefix accepts exactly the well-formed sequences of Unicode Table 3-7") {
    using weft::text::utf8_prefix;
    const auto kind = [](const std::string& s) { return utf8_prefix(s).kind; };
    CHECK(utf8_prefix("\xE4\xB8\xAD").cp == 0x4E2D);
    CHECK(utf8_prefix("\xF0\x9F\x98\x80").length == 4);
    CHECK(kind("\xE4\xB8") == Utf8Prefix::incomplete);
    CHECK(kind("\xC0\xAF") == Utf8Prefix::invalid);      // overlong
    CHECK(kind("\xE0\x80\xAF") == Utf8Prefix::invalid);  // overlong
    CHECK(kind("\xED\xA0\x80") == Utf8Prefix::invalid);  // surrogate
    CHECK(kind("\xF4\x90\x80\x80") == Utf8Prefix::invalid);  // above U+10FFFF
    CHECK(kind("\xF5") == Utf8Prefix::invalid);
    CHECK(kind("\x80") == Utf8Prefix::invalid);
    CHECK(utf8_prefix("\xE4\xB8X").length == 2);  // the maximal subpart that could have been a character
    CHECK(kind(std::string("\x00", 1)) == Utf8Prefix::complete);
}

TEST_CASE("GPT-2's byte alphabet maps the 256 bytes to 256 distinct characters and back") {
    using weft::text::byte_to_char;
    using weft::text::char_to_byte;
    CHECK(byte_to_char(' ') == 0x120);   // Ġ
    CHECK(byte_to_char('\n') == 0x10A);  // Ċ
    CHECK(byte_to_char('A') == U'A');
    CHECK(byte_to_char(0xAD) == 0x143);
    for (int b = 0; b < 256; ++b) CHECK(char_to_byte(byte_to_char(static_cast<std::uint8_t>(b))) == b);
    CHECK(char_to_byte(U' ') == -1);
    CHECK(char_to_byte(0x144) == -1);
}

}  // namespace test_pretokenizer
