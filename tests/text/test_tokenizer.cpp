// text::Tokenizer and text::StreamDecoder as a user meets them: special tokens on and off, BOS,
// the ids a model needs, streaming, the merge orders spelled out on tiny vocabularies, and an error
// for each way a Vocabulary, a tokenizer.json or a tokenizer.model can be wrong.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <weft/text/tokenizer.hpp>

#include "../temp_dir.hpp"
#include "text_golden.hpp"

namespace test_tokenizer {

namespace {

using weft::text::StreamDecoder;
using weft::text::Tokenizer;
using weft::text::Vocabulary;
using namespace weft_test::text;
using Ids = std::vector<std::int32_t>;

const Tokenizer& llama3() {
    static const Tokenizer t = Tokenizer::from_tokenizer_json(data_path("llama3"));
    return t;
}
const Tokenizer& llama4() {
    static const Tokenizer t = Tokenizer::from_pretrained(data_path("llama4"));
    return t;
}
const Tokenizer& spm() {
    static const Tokenizer t = Tokenizer::from_sentencepiece_model(data_path("spm"));
    return t;
}

std::int32_t id_of(const Tokenizer& t, const std::string& text) {
    const auto id = t.token_to_id(text);
    REQUIRE_MESSAGE(id.has_value(), "no token '" << text << "'");
    return *id;
}

// A SentencePiece vocabulary: <unk>, <s>, </s>, then the given pieces (score, type).
Vocabulary tiny_spm(const std::vector<std::tuple<std::string, float, int>>& pieces) {
    Vocabulary v;
    v.model = "llama";
    v.tokens = {"<unk>", "<s>", "</s>"};
    v.scores = {0, 0, 0};
    v.types = {2, 3, 3};
    for (const auto& [text, score, type] : pieces) {
        v.tokens.push_back(text);
        v.scores.push_back(score);
        v.types.push_back(type);
    }
    v.unk_id = 0, v.bos_id = 1, v.eos_id = 2;
    v.add_bos = false;
    return v;
}

// A byte-level vocabulary: the 256 byte characters (id = byte), then `extra` tokens, with merges.
Vocabulary tiny_byte_level(const std::vector<std::string>& extra, const std::vector<std::string>& merges, const std::string& pre) {
    Vocabulary v;
    v.model = "gpt2";
    v.pre = pre;
    for (int b = 0; b < 256; ++b) {
        std::string s;
        weft::text::append_utf8(s, weft::text::byte_to_char(static_cast<std::uint8_t>(b)));
        v.tokens.push_back(s);
    }
    for (const std::string& e : extra) v.tokens.push_back(e);
    v.merges = merges;
    v.add_bos = false;
    return v;
}

// Protobuf writing, for hand-made tokenizer.model files.
std::string varint(std::uint64_t v) {
    std::string out;
    do {
        out += static_cast<char>((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return out;
}
std::string field_bytes(int number, const std::string& bytes) { return varint(static_cast<std::uint64_t>(number) << 3 | 2) + varint(bytes.size()) + bytes; }
std::string field_varint(int number, std::uint64_t v) { return varint(static_cast<std::uint64_t>(number) << 3) + varint(v); }
std::string field_float(int number, float f) {
    std::string out = varint(static_cast<std::uint64_t>(number) << 3 | 5);
    char b[4];
    std::memcpy(b, &f, 4);
    return out + std::string(b, 4);
}
std::string piece(const std::string& text, float score, int type) {
    return field_bytes(1, field_bytes(1, text) + field_float(2, score) + field_varint(3, static_cast<std::uint64_t>(type)));
}
// <unk> <s> </s> ▁ a b ▁a, BPE, identity normalizer unless told otherwise.
std::string tiny_model(int model_type = 2, const std::string& extra_normalizer = {}, const std::string& extra_pieces = {}) {
    std::string m = piece("<unk>", 0, 2) + piece("<s>", 0, 3) + piece("</s>", 0, 3) + piece("\xE2\x96\x81", -1, 1) + piece("a", -2, 1) +
                    piece("b", -3, 1) + piece("\xE2\x96\x81" "a", -0.5f, 1) + extra_pieces;
    m += field_bytes(2, field_varint(3, static_cast<std::uint64_t>(model_type)));
    m += field_bytes(3, field_bytes(1, "identity") + field_varint(4, 0) + extra_normalizer);
    return m;
}

}  // namespace

TEST_CASE("special tokens in text become one id only when the caller allows it") {
    const Tokenizer& t = llama3();
    const std::int32_t eot = id_of(t, "<|eot_id|>");
    CHECK(t.encode("<|eot_id|>", false, true) == Ids{eot});
    const Ids plain = t.encode("<|eot_id|>", false, false);
    CHECK(plain.size() > 1);
    CHECK(std::find(plain.begin(), plain.end(), eot) == plain.end());
    CHECK(t.decode(plain) == "<|eot_id|>");
    // Non-special added tokens are recognised either way.
    const std::int32_t note = id_of(t, "<|note|>");
    CHECK(t.encode("<|note|>", false, false) == Ids{note});
    CHECK_FALSE(t.is_special(note));
    CHECK(t.is_special(eot));
}

TEST_CASE("SentencePiece control tokens are split off only when allowed, each following text getting the dummy prefix") {
    const Tokenizer& t = spm();
    Ids expect{1};
    for (std::int32_t id : t.encode("Hello", false)) expect.push_back(id);
    expect.push_back(2);
    CHECK(t.encode("<s>Hello</s>", false, true) == expect);
    const Ids plain = t.encode("<s>Hello</s>", false, false);
    CHECK(std::find(plain.begin(), plain.end(), 1) == plain.end());
    CHECK(t.decode(plain) == "<s>Hello</s>");
}

TEST_CASE("encode adds what the configuration asks around the text when add_bos is true") {
    Ids expect{llama3().bos_id()};
    for (auto id : llama3().encode("hi", false)) expect.push_back(id);
    CHECK(llama3().encode("hi") == expect);
    CHECK(spm().encode("") == Ids{1});
    CHECK(spm().encode("", false).empty());
    CHECK(llama3().encode("", false).empty());
    // A Vocabulary with add_bos = false adds nothing; add_eos appends EOS.
    Vocabulary v = weft::text::read_sentencepiece_model(data_path("spm/tokenizer.model"));
    v.add_bos = false;
    v.add_eos = true;
    const Tokenizer t(v);
    CHECK_FALSE(t.adds_bos());
    const Ids ids = t.encode("x");
    REQUIRE(!ids.empty());
    CHECK(ids.back() == 2);
    CHECK(ids.front() != 1);
}

TEST_CASE("bos, eos, end of turn and the chat template come from the files") {
    CHECK(llama3().token_text(llama3().bos_id()) == "<|begin_of_text|>");
    CHECK(llama3().token_text(llama3().eos_id()) == "<|eot_id|>");  // tokenizer_config.json's eos_token
    CHECK(llama3().token_text(llama3().eot_id()) == "<|eot_id|>");
    CHECK(llama3().is_end_of_generation(id_of(llama3(), "<|eom_id|>")));
    CHECK(llama3().is_end_of_generation(id_of(llama3(), "<|end_of_text|>")));
    CHECK_FALSE(llama3().is_end_of_generation(llama3().bos_id()));
    CHECK(llama3().chat_template().find("<|start_header_id|>") != std::string::npos);
    CHECK(llama4().token_text(llama4().eot_id()) == "<|eot|>");
    CHECK(llama4().kind() == weft::text::TokenizerKind::byte_level);
    CHECK(spm().bos_id() == 1);
    CHECK(spm().eos_id() == 2);
    CHECK(spm().unk_id() == 0);
    CHECK(spm().eot_id() == 2);
    CHECK(spm().kind() == weft::text::TokenizerKind::sentencepiece);
    CHECK(spm().vocab_size() == 3000);
    CHECK(spm().is_special(1));
    CHECK_FALSE(spm().is_special(0));
}

TEST_CASE("a chat_template.jinja beside tokenizer.json is the chat template when the config has none") {
    weft_test::TempDir dir("chat_template_jinja");
    dir.write("tokenizer.json", slurp(data_path("llama3/tokenizer.json")));
    dir.write("chat_template.jinja", "{{ bos_token }}{{ messages }}");
    CHECK(Tokenizer::from_pretrained(dir.path.string()).chat_template() == "{{ bos_token }}{{ messages }}");
    dir.write("tokenizer_config.json", slurp(data_path("llama3/tokenizer_config.json")));
    CHECK(Tokenizer::from_pretrained(dir.path.string()).chat_template() == llama3().chat_template());
}

TEST_CASE("token_to_piece gives the exact bytes a token stands for") {
    CHECK(spm().token_to_piece(id_of(spm(), "<0x0A>")) == "\n");
    CHECK(spm().token_to_piece(id_of(spm(), "\xE2\x96\x81the")) == " the");
    CHECK(spm().token_to_piece(1) == "<s>");
    CHECK(spm().token_to_piece(0) == " \xE2\x81\x87 ");  // sentencepiece's " ⁇ " for <unk>
    CHECK(llama3().token_to_piece(id_of(llama3(), "\xC4\xA0the")) == " the");  // "Ġthe"
    CHECK(llama3().token_to_piece(id_of(llama3(), "\xC3\xA4")) == "\xE4");    // "ä" stands for byte 0xE4
    CHECK(llama3().token_text(id_of(llama3(), "<|eot_id|>")) == "<|eot_id|>");
    CHECK_FALSE(llama3().token_to_id("no such token").has_value());
}

TEST_CASE("StreamDecoder holds a UTF-8 character until its last byte arrives") {
    // SentencePiece byte tokens for 中 (E4 B8 AD).
    StreamDecoder s(spm());
    CHECK(s.push(id_of(spm(), "<0xE4>")).empty());
    CHECK(s.push(id_of(spm(), "<0xB8>")).empty());
    CHECK(s.push(id_of(spm(), "<0xAD>")) == "中");
    CHECK(s.flush().empty());
    // Byte-level tokens standing for single bytes.
    StreamDecoder b(llama3());
    const std::string tok_e4 = "\xC3\xA4", tok_b8 = "\xC2\xB8", tok_ad = "\xC5\x83";  // ä, ¸, Ń stand for E4, B8, AD
    CHECK(b.push(id_of(llama3(), tok_e4)).empty());
    CHECK(b.push(id_of(llama3(), tok_b8)).empty());
    CHECK(b.push(id_of(llama3(), tok_ad)) == "中");
    CHECK(b.push(id_of(llama3(), "the")) == "the");
}

TEST_CASE("StreamDecoder turns an unfinished character into U+FFFD at flush, then starts over") {
    StreamDecoder b(llama3());
    CHECK(b.push(id_of(llama3(), "\xC3\xA4")).empty());
    CHECK(b.flush() == "\xEF\xBF\xBD");
    CHECK(b.push(id_of(llama3(), "the")) == "the");
    // SentencePiece: a byte that cannot continue the character is replaced at once, byte by byte.
    StreamDecoder s(spm());
    CHECK(s.push(id_of(spm(), "<0xE4>")).empty());
    CHECK(s.push(id_of(spm(), "<0x41>")) == "\xEF\xBF\xBD" "A");
    // The dummy prefix's space is dropped for the first piece only.
    StreamDecoder d(spm(), true);
    std::string text;
    for (std::int32_t id : spm().encode("Hello world")) text += d.push(id);
    text += d.flush();
    CHECK(text == "Hello world");
}

TEST_CASE("decode rejects ids outside the vocabulary") {
    CHECK_THROWS_WITH_AS(spm().decode(Ids{3000}), doctest::Contains("token id 3000 is outside the vocabulary [0, 3000)"), weft::Error);
    CHECK_THROWS_AS(spm().token_to_piece(-1), weft::Error);
    StreamDecoder s(llama3());
    CHECK_THROWS_AS(s.push(1 << 20), weft::Error);
}

TEST_CASE("SentencePiece BPE merges the pair whose result scores highest, leftmost on ties, not by id order") {
    const std::string sp = "\xE2\x96\x81";
    // "bc" outscores "ab": abc → a + bc.
    Tokenizer t(tiny_spm({{sp, -1, 1}, {"a", -2, 1}, {"b", -2, 1}, {"c", -2, 1}, {"ab", -5, 1}, {"bc", -1, 1}}));
    CHECK(t.encode("abc", false) == Ids{3, 4, 8});
    Tokenizer u(tiny_spm({{sp, -1, 1}, {"a", -2, 1}, {"b", -2, 1}, {"c", -2, 1}, {"ab", -1, 1}, {"bc", -5, 1}}));
    CHECK(u.encode("abc", false) == Ids{3, 7, 6});
    // Equal scores: the leftmost pair first. aaa → aa + a.
    Tokenizer w(tiny_spm({{sp, -1, 1}, {"a", -2, 1}, {"aa", -1, 1}}));
    CHECK(w.encode("aaa", false) == Ids{3, 5, 4});
}

TEST_CASE("SentencePiece unused pieces may be merged through but are split back; user-defined pieces stay whole") {
    const std::string sp = "\xE2\x96\x81";
    // "ab" is unused: it appears as a step towards "abc" but never in the output.
    Tokenizer t(tiny_spm({{sp, -1, 1}, {"a", -2, 1}, {"b", -2, 1}, {"c", -2, 1}, {"ab", 0, 5}, {"abc", -1, 1}}));
    CHECK(t.encode("abc", false) == Ids{3, 8});
    CHECK(t.encode("ab", false) == Ids{3, 4, 5});
    // A user-defined piece is matched whole and never merged with its neighbours.
    Tokenizer u(tiny_spm({{sp, -1, 1}, {"a", -2, 1}, {"<x>", 0, 4}, {sp + "<", -1, 1}, {"<", -2, 1}, {"x", -2, 1}, {">", -2, 1}}));
    CHECK(u.encode("a<x>", false) == Ids{3, 4, 5});
    CHECK(u.decode(Ids{3, 4, 5}) == "a<x>");
}

TEST_CASE("SentencePiece without byte tokens emits one <unk> for a run of unknown characters") {
    const std::string sp = "\xE2\x96\x81";
    Tokenizer t(tiny_spm({{sp, -1, 1}, {"a", -2, 1}}));
    CHECK(t.encode("a中文a", false) == Ids{3, 4, 0, 4});
    CHECK(t.decode(Ids{3, 4, 0, 4}) == "a \xE2\x81\x87 a");
}

TEST_CASE("SentencePiece pieces stored as bytes that are not UTF-8 decode with U+FFFD, so decode() stays valid UTF-8") {
    // Found by fuzz/fuzz_sentencepiece_model (fuzz/corpus/sentencepiece_model/invalid-utf8-piece.model):
    // a tokenizer.model or GGUF vocabulary may hold any bytes as a piece's text.
    const std::string sp = "\xE2\x96\x81", bad = "\xEF\xBF\xBD";
    Tokenizer t(tiny_spm({{sp, -1, 1}, {"a", -2, 1}, {"\xE2\x96\xC1" "and", -3, 1}, {"<\xFF>", 0, 3}}));
    CHECK(t.decode(Ids{4, 5}) == "a" + bad + bad + bad + "and");
    CHECK(t.decode(Ids{6, 4}) == "<" + bad + ">a");
    CHECK(t.decode(Ids{6, 4}, true) == "a");
    StreamDecoder s(t);
    std::string streamed;
    for (std::int32_t id : Ids{4, 5, 6}) streamed += s.push(id);
    streamed += s.flush();
    CHECK(streamed == t.decode(Ids{4, 5, 6}));
    CHECK(weft::text::detail::is_valid_utf8(streamed));
}

TEST_CASE("byte-level BPE applies the listed merges by rank, and emits a whole-token piece at once under ignore_merges") {
    // Merges "b c" before "a b": abc → a + bc.
    Tokenizer t(tiny_byte_level({"ab", "bc", "abc"}, {"b c", "a b"}, "gpt2"));
    CHECK(t.encode("abc") == Ids{'a', 257});
    Tokenizer u(tiny_byte_level({"ab", "bc", "abc"}, {"a b", "b c"}, "gpt2"));
    CHECK(u.encode("abc") == Ids{256, 'c'});
    // "abc" is a token but no merge reaches it: plain BPE cannot, tiktoken semantics (llama3) can.
    CHECK(t.encode("abc") != Ids{258});
    Tokenizer w(tiny_byte_level({"ab", "bc", "abc"}, {"b c", "a b"}, "llama-bpe"));
    CHECK(w.encode("abc") == Ids{258});
    CHECK(w.encode("abcabc") == Ids{'a', 257, 'a', 257});  // one pre-token, not a token: merged by rank
    CHECK(w.decode(w.encode(" abc\n")) == " abc\n");
}

TEST_CASE("a Vocabulary that lies is refused with a message naming the problem") {
    const std::string sp = "\xE2\x96\x81";
    const auto fails = [](const Vocabulary& v, const char* message) {
        CHECK_THROWS_WITH_AS(Tokenizer(v, "test"), doctest::Contains(message), weft::Error);
    };
    Vocabulary v = tiny_spm({{sp, -1, 1}, {"a", -2, 1}});
    Vocabulary bad = v;
    bad.model = "unigram";
    fails(bad, "tokenizer model \"unigram\" is not supported");
    bad = v, bad.types.pop_back();
    fails(bad, "4 token types for 5 tokens");
    bad = v, bad.scores.clear();
    fails(bad, "0 scores for 5 tokens");
    bad = v, bad.types[4] = 9;
    fails(bad, "has type 9; expected 0 to 6");
    bad = v, bad.tokens[4] = sp;
    fails(bad, "appears twice, at ids 3 and 4");
    bad = v, bad.bos_id = 5;
    fails(bad, "bos_id 5 is outside the vocabulary [0, 5)");
    bad = v, bad.types[0] = 1, bad.unk_id = -1;
    fails(bad, "no unknown token");
    bad = v, bad.scores[3] = std::numeric_limits<float>::quiet_NaN();
    fails(bad, "NaN score");
    bad = v, bad.tokens.push_back("<0x41>"), bad.scores.push_back(0), bad.types.push_back(6);
    fails(bad, "1 of the 256 byte tokens");
    bad = v, bad.tokens.push_back("<0x4g>"), bad.scores.push_back(0), bad.types.push_back(6);
    fails(bad, "has type byte but is not spelled <0xNN>");
    bad = v, bad.add_bos = true, bad.bos_id = -1;
    fails(bad, "add_bos is set but the vocabulary has no BOS token");
    fails(Vocabulary{}, "the vocabulary has no tokens");

    Vocabulary b = tiny_byte_level({"ab"}, {"a b"}, "llama-bpe");
    bad = b, bad.merges = {"a qq"};
    fails(bad, "merge 0 ('a qq') names 'qq', which is not a token");
    bad = b, bad.merges = {"b a"};
    fails(bad, "makes 'ba', which is not a token");
    bad = b, bad.merges = {"ab"};
    fails(bad, "is not two tokens separated by a space");
    bad = b, bad.pre = "falcon";
    fails(bad, "pre-tokenizer \"falcon\" is not supported");
    bad = b, bad.tokens[32] = "<space>";  // instead of the character that stands for the space byte
    fails(bad, "has no token for byte 0x20");
}

TEST_CASE("a tokenizer.json that Llama tokenizers never look like is refused by name") {
    const std::string good = slurp(data_path("llama3/tokenizer.json"));
    const auto with = [&](const char* pointer, const json& value) {
        json doc = json::parse(good);
        doc[json::json_pointer(pointer)] = value;
        return doc.dump();
    };
    const auto fails = [](const std::string& text, const char* message) {
        CHECK_THROWS_WITH_AS(Tokenizer::from_tokenizer_json_text(text), doctest::Contains(message), weft::Error);
    };
    fails("{not json", "not valid JSON");
    fails(with("/model/type", "Unigram"), "model type is Unigram");
    fails(with("/normalizer", json{{"type", "NFKC"}}), "normalizer NFKC is not supported");
    fails(with("/pre_tokenizer/pretokenizers/0/pattern/Regex", "\\p{L}+"), "regex is not one weft knows");
    fails(with("/decoder", json{{"type", "WordPiece"}}), "decoder WordPiece is not supported");
    fails(with("/post_processor", json{{"type", "RobertaProcessing"}}), "post_processor RobertaProcessing is not supported");
    fails(with("/model/merges/0", json::array({"qqqzz", "zz"})), "names 'qqqzz', which is not in model.vocab");
    {
        json doc = json::parse(good);  // 3000 + 12 ids, one added token listed twice: 3014 entries
        doc["added_tokens"].push_back(doc["added_tokens"][0]);
        doc["model"]["vocab"]["zzz"] = 3013;
        fails(doc.dump(), "no token has id 3012");
    }
    fails(with("/model/vocab/zzz", 260000000), "ids must run from 0 to");  // refused before any table is sized by it
    fails(with("/added_tokens/0/id", 1u << 31), "ids must run from 0 to");
    fails(with("/model/vocab/zzz", 5), "id 5 is both");
    fails(with("/added_tokens/0/id", 7), "id 7 is both");
    fails(with("/model/unk_token", "<nope>"), "model.unk_token '<nope>' is not in model.vocab");
    fails(with("/model/continuing_subword_prefix", "##"), "continuing_subword_prefix is not supported");
    CHECK_THROWS_WITH_AS(Tokenizer::from_tokenizer_json_text(good, "{\"bos_token\": \"<nope>\"}"),
                         doctest::Contains("bos_token '<nope>' is not in the vocabulary"), weft::Error);
    CHECK_THROWS_WITH_AS(Tokenizer::from_tokenizer_json(data_path("no-such-dir")), doctest::Contains("does not exist"), weft::Error);
    CHECK_THROWS_WITH_AS(Tokenizer::from_pretrained(WEFT_SOURCE_DIR "/tests/data"), doctest::Contains("neither tokenizer.json nor tokenizer.model"),
                         weft::Error);
}

TEST_CASE("a hand-made tokenizer.model is read field by field and encoded like SentencePiece") {
    const Vocabulary v = weft::text::parse_sentencepiece_model(tiny_model(), "tiny.model");
    CHECK(v.tokens.size() == 7);
    CHECK(v.types == std::vector<std::int32_t>{2, 3, 3, 1, 1, 1, 1});
    CHECK(v.scores[6] == -0.5f);
    CHECK(v.bos_id == 1);
    CHECK(v.eos_id == 2);
    CHECK(v.unk_id == 0);
    CHECK_FALSE(v.remove_extra_whitespaces);
    const Tokenizer t(v);
    CHECK(t.encode("a ab") == Ids{1, 6, 6, 5});  // ▁a ▁a b
    CHECK(t.decode(t.encode("a ab"), true) == "a ab");
}

TEST_CASE("a tokenizer.model that is not a Llama-style SentencePiece BPE model is refused") {
    const auto fails = [](const std::string& bytes, const char* message) {
        CHECK_THROWS_WITH_AS(weft::text::parse_sentencepiece_model(bytes, "bad.model"), doctest::Contains(message), weft::Error);
    };
    const std::string good = tiny_model();
    fails(good.substr(0, good.size() - 3), "bytes past the end");
    fails(good + "\x08", "a varint cut off by the end");
    fails(tiny_model(1), "model_type is UNIGRAM");
    fails(tiny_model(2, field_bytes(2, std::string(16, 'x'))), "weft supports the identity normalizer only");
    fails(tiny_model(2, field_varint(5, 0)), "escape_whitespaces is off");
    fails(tiny_model(2, {}, piece("<0x41>", 0, 6)), "byte pieces but byte_fallback is off");
    fails(tiny_model(2, {}, piece("", 0, 1)), "piece 7 is empty");
    fails(tiny_model(2, {}, piece("q", 0, 9)), "has type 9");
    fails(field_varint(1, 5), "field 1 (pieces) has wire type 0, expected 2");
    fails(std::string("\x0b", 1), "wire type 3");
    fails("", "the model has no pieces");
    weft_test::TempDir dir("tokenizer_model");
    CHECK_THROWS_WITH_AS(weft::text::read_sentencepiece_model(dir.file("missing.model")), doctest::Contains("does not exist"), weft::Error);
    dir.write("tokenizer.model", tiny_model());
    CHECK(Tokenizer::from_pretrained(dir.path.string()).vocab_size() == 7);
}

}  // namespace test_tokenizer
