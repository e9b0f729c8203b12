// Tests for text/load.hpp: a Vocabulary written into a GGUF file's tokenizer.ggml.* keys comes
// back as the same tokenizer (SentencePiece and byte-level), and files without one are refused.
#include <doctest/doctest.h>

#include <weft/text/load.hpp>

#include "../temp_dir.hpp"
#include "text_golden.hpp"

namespace test_load {

using namespace weft_test::text;

namespace {

using weft::text::Tokenizer;
using weft::text::Vocabulary;

// Writes `v` as llama.cpp's converter would, next to a dummy tensor.
std::string write_gguf(const weft_test::TempDir& dir, const std::string& name, const Vocabulary& v) {
    weft::gguf::Writer w;
    w.add("general.architecture", std::string("llama"));
    w.add("tokenizer.ggml.model", v.model);
    if (v.model == "gpt2") w.add("tokenizer.ggml.pre", v.pre);
    w.add_array("tokenizer.ggml.tokens", v.tokens);
    if (!v.scores.empty()) w.add_array("tokenizer.ggml.scores", v.scores);
    if (!v.types.empty()) w.add_array("tokenizer.ggml.token_type", v.types);
    if (!v.merges.empty()) w.add_array("tokenizer.ggml.merges", v.merges);
    if (v.bos_id >= 0) w.add("tokenizer.ggml.bos_token_id", std::uint32_t(v.bos_id));
    if (v.eos_id >= 0) w.add("tokenizer.ggml.eos_token_id", std::uint32_t(v.eos_id));
    if (v.unk_id >= 0) w.add("tokenizer.ggml.unknown_token_id", std::uint32_t(v.unk_id));
    w.add("tokenizer.ggml.padding_token_id", std::uint32_t(0xFFFFFFFFu));  // "none", as some converters write it
    w.add("tokenizer.ggml.add_bos_token", v.add_bos);
    w.add("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
    static const float one = 1.0f;
    w.add_tensor("dummy", weft::DType::f32, weft::Shape{1}, std::as_bytes(std::span(&one, 1)));
    const std::string path = dir.file(name);
    w.write(path);
    return path;
}

}  // namespace

TEST_CASE("a tokenizer stored in GGUF metadata encodes and decodes exactly like the Vocabulary it came from") {
    weft_test::TempDir dir("gguf_tokenizers");
    std::vector<std::pair<std::string, Vocabulary>> vocabularies;
    vocabularies.emplace_back("spm", weft::text::read_sentencepiece_model(data_path("spm/tokenizer.model")));
    for (const char* variant : {"llama3", "llama4"}) {
        const json& entry = golden()["tokenizers"][variant];
        vocabularies.emplace_back(variant, byte_level_vocabulary(variant_json(entry), entry["pre"].get<std::string>()));
    }
    for (const auto& named : vocabularies) {
        const std::string& name = named.first;  // a named reference: clang 14's INFO cannot capture a structured binding
        const Vocabulary& v = named.second;
        INFO(name);
        const Tokenizer direct(v, name);
        const Tokenizer loaded = weft::text::load_tokenizer(write_gguf(dir, name + ".gguf", v));
        CHECK(loaded.vocab_size() == direct.vocab_size());
        CHECK(loaded.bos_id() == direct.bos_id());
        CHECK(loaded.pad_id() == -1);
        for (const Case& c : cases()) {
            INFO(c.name);
            const auto ids = direct.encode(c.bytes, true, true);
            CHECK(loaded.encode(c.bytes, true, true) == ids);
            CHECK(loaded.encode(c.bytes, false, false) == direct.encode(c.bytes, false, false));
            CHECK(escaped(loaded.decode(ids)) == escaped(direct.decode(ids)));
        }
    }
}

TEST_CASE("load_tokenizer names the file when a GGUF file has no tokenizer or an unknown one") {
    weft_test::TempDir dir("gguf_no_tokenizer");
    weft::gguf::Writer w;
    w.add("general.architecture", std::string("llama"));
    const std::string bare = dir.file("bare.gguf");
    w.write(bare);
    CHECK_THROWS_WITH_AS(weft::text::load_tokenizer(bare),
                         doctest::Contains("has no tokenizer (tokenizer.ggml.model and tokenizer.ggml.tokens are absent)"), weft::Error);
    weft::gguf::Writer u;
    u.add("tokenizer.ggml.model", std::string("bert"));
    u.add_array("tokenizer.ggml.tokens", std::vector<std::string>{"a"});
    const std::string unknown = dir.file("bert.gguf");
    u.write(unknown);
    CHECK_THROWS_WITH_AS(weft::text::load_tokenizer(unknown), doctest::Contains("tokenizer.ggml.model is 'bert'"), weft::Error);
}

}  // namespace test_load
