// Tokenizers against their reference encoders on a stress corpus (tests/data/text/golden.json, made
// by tests/golden/make_tokenizer_golden.py): sentencepiece for tokenizer.model, HF tokenizers for
// every tokenizer.json variant and for the same vocabularies given as a text::Vocabulary (the
// GGUF path). Ids must be identical; decodes, round trips and streaming must agree.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "text_golden.hpp"

namespace test_tokenizer_golden {

namespace {

using weft::text::StreamDecoder;
using weft::text::Tokenizer;
using namespace weft_test::text;

// Decoding one id at a time gives decode()'s text and never splits a UTF-8 character.
void check_streaming(const Tokenizer& tok, const std::vector<std::int32_t>& ids, bool skip_special, const std::string& expect,
                     const std::string& what) {
    StreamDecoder stream(tok, skip_special);
    std::string text;
    for (std::int32_t id : ids) {
        const std::string part = stream.push(id);
        INFO(what << ": chunk '" << escaped(part) << "'");
        CHECK(weft::text::detail::is_valid_utf8(part));
        text += part;
    }
    text += stream.flush();
    INFO(what);
    CHECK(escaped(text) == escaped(expect));
}

// For each case: encode with and without special tokens, decode both ways, stream.
void check_hf_variant(const Tokenizer& tok, const json& entry, const std::string& variant) {
    CHECK(tok.prefix_ids() == ids_of(entry["prefix"]));
    int compared = 0;
    for (std::size_t i = 0; i < cases().size(); ++i) {
        const Case& c = cases()[i];
        if (entry["encode_special"][i].is_null()) continue;  // not UTF-8: no reference
        INFO(variant << " / " << c.name);
        const auto special = ids_of(entry["encode_special"][i]);
        CHECK(tok.encode(c.bytes, false, true) == special);
        CHECK(tok.encode(c.bytes, false, false) == ids_of(entry["encode_plain"][i]));
        std::vector<std::int32_t> with_bos = tok.prefix_ids();
        with_bos.insert(with_bos.end(), special.begin(), special.end());
        with_bos.insert(with_bos.end(), tok.suffix_ids().begin(), tok.suffix_ids().end());
        CHECK(tok.encode(c.bytes, true, true) == with_bos);
        const std::string decoded = entry["decode"][i].get<std::string>();
        const std::string decoded_skip = entry["decode_skip"][i].get<std::string>();
        CHECK(escaped(tok.decode(special, false)) == escaped(decoded));
        CHECK(escaped(tok.decode(special, true)) == escaped(decoded_skip));
        check_streaming(tok, special, false, decoded, variant + " / " + c.name + " streamed");
        check_streaming(tok, special, true, decoded_skip, variant + " / " + c.name + " streamed, specials skipped");
        ++compared;
    }
    CHECK(compared >= 50);
}

}  // namespace

TEST_CASE("the golden corpus covers what it promises") {
    REQUIRE(cases().size() >= 55);
    int invalid = 0;
    std::size_t longest = 0;
    for (const Case& c : cases()) {
        invalid += !c.utf8;
        longest = std::max(longest, c.bytes.size());
    }
    CHECK(invalid >= 8);
    CHECK(longest >= 4000);
    for (const char* name : {"spm", "spm_remove_extra_whitespaces", "spm_no_dummy_prefix", "spm_hf", "spm_hf_metaspace",
                             "spm_hf_metaspace_decoder", "llama3",
                             "llama4", "gpt2_pattern"})
        CHECK(golden()["tokenizers"].contains(name));
}

TEST_CASE("SentencePiece BPE from tokenizer.model gives sentencepiece's ids for every case, invalid UTF-8 included") {
    for (const char* variant : {"spm", "spm_remove_extra_whitespaces", "spm_no_dummy_prefix"}) {
        const json& entry = golden()["tokenizers"][variant];
        const Tokenizer tok(spm_vocabulary(entry), variant);
        for (std::size_t i = 0; i < cases().size(); ++i) {
            const Case& c = cases()[i];
            INFO(variant << " / " << c.name);
            const auto expect = ids_of(entry["encode_plain"][i]);
            const auto ids = tok.encode(c.bytes, false, false);
            CHECK(ids == expect);
            // sentencepiece's decode drops control tokens: skip_special = true.
            const std::string decoded = entry["decode_skip"][i].get<std::string>();
            CHECK(escaped(tok.decode(expect, true)) == escaped(decoded));
            check_streaming(tok, expect, true, decoded, std::string(variant) + " / " + c.name + " streamed");
            std::vector<std::int32_t> with_bos{tok.bos_id()};
            with_bos.insert(with_bos.end(), expect.begin(), expect.end());
            CHECK(tok.encode(c.bytes) == with_bos);
        }
    }
}

TEST_CASE("SentencePiece decoding matches sentencepiece on cut byte runs, control tokens and <unk>") {
    const json& entry = golden()["tokenizers"]["spm"];
    const Tokenizer tok(spm_vocabulary(entry));
    int n = 0;
    for (const json& r : entry["random_decodes"]) {
        const auto ids = ids_of(r["ids"]);
        const std::string expect = r["text"].get<std::string>();
        INFO("ids " << r["ids"].dump());
        CHECK(escaped(tok.decode(ids, true)) == escaped(expect));
        check_streaming(tok, ids, true, expect, "random ids " + r["ids"].dump());
        ++n;
    }
    CHECK(n >= 80);
}

TEST_CASE("SentencePiece BPE read from the tokenizer.model file and from its directory are the same tokenizer") {
    const Tokenizer a = Tokenizer::from_sentencepiece_model(data_path("spm/tokenizer.model"));
    const Tokenizer b = Tokenizer::from_pretrained(data_path("spm/tokenizer.model"));
    const json& entry = golden()["tokenizers"]["spm"];
    for (std::size_t i = 0; i < cases().size(); ++i) {
        INFO(cases()[i].name);
        CHECK(a.encode(cases()[i].bytes, false) == ids_of(entry["encode_plain"][i]));
        CHECK(b.encode(cases()[i].bytes, false) == ids_of(entry["encode_plain"][i]));
    }
    CHECK(a.chat_template().find("[INST]") != std::string::npos);  // from tokenizer_config.json beside it
}

TEST_CASE("Llama 2 tokenizer.json (legacy and Metaspace forms) gives HF tokenizers' ids and decodes") {
    for (const char* variant : {"spm_hf", "spm_hf_metaspace", "spm_hf_metaspace_decoder"}) {
        const json& entry = golden()["tokenizers"][variant];
        const Tokenizer tok = Tokenizer::from_tokenizer_json_text(variant_json(entry), variant_config(entry), variant);
        check_hf_variant(tok, entry, variant);
    }
}

TEST_CASE("byte-level BPE tokenizer.json (Llama 3, Llama 4, GPT-2 patterns) gives HF tokenizers' ids and decodes") {
    for (const char* variant : {"llama3", "llama4", "gpt2_pattern"}) {
        const json& entry = golden()["tokenizers"][variant];
        const Tokenizer tok = Tokenizer::from_tokenizer_json_text(variant_json(entry), variant_config(entry), variant);
        CHECK(tok.kind() == weft::text::TokenizerKind::byte_level);
        check_hf_variant(tok, entry, variant);
    }
}

TEST_CASE("byte-level BPE decoding matches HF tokenizers on random ids, partial UTF-8 and specials included") {
    for (const char* variant : {"llama3", "llama4"}) {
        const json& entry = golden()["tokenizers"][variant];
        const Tokenizer tok = Tokenizer::from_tokenizer_json_text(variant_json(entry), variant_config(entry), variant);
        for (const json& r : entry["random_decodes"]) {
            const auto ids = ids_of(r["ids"]);
            INFO(variant << " ids " << r["ids"].dump());
            CHECK(escaped(tok.decode(ids, false)) == escaped(r["text"].get<std::string>()));
            CHECK(escaped(tok.decode(ids, true)) == escaped(r["text_skip"].get<std::string>()));
            check_streaming(tok, ids, false, r["text"].get<std::string>(), "random ids");
            check_streaming(tok, ids, true, r["text_skip"].get<std::string>(), "random ids, skipping specials");
        }
    }
}

TEST_CASE("a byte-level Vocabulary (what a GGUF file holds) encodes exactly like its tokenizer.json") {
    for (const char* variant : {"llama3", "llama4", "gpt2_pattern"}) {
        const json& entry = golden()["tokenizers"][variant];
        const std::string text = variant_json(entry);
        const Tokenizer tok(byte_level_vocabulary(text, entry["pre"].get<std::string>()), variant);
        for (std::size_t i = 0; i < cases().size(); ++i) {
            if (entry["encode_special"][i].is_null()) continue;
            INFO(variant << " / " << cases()[i].name);
            CHECK(tok.encode(cases()[i].bytes, false, true) == ids_of(entry["encode_special"][i]));
            CHECK(tok.encode(cases()[i].bytes, false, false) == ids_of(entry["encode_plain"][i]));
            CHECK(escaped(tok.decode(ids_of(entry["encode_special"][i]))) == escaped(entry["decode"][i].get<std::string>()));
        }
    }
}

TEST_CASE("byte-level BPE gives back any bytes, invalid UTF-8 included, through token_to_piece") {
    for (const char* variant : {"llama3", "llama4", "gpt2_pattern"}) {
        const json& entry = golden()["tokenizers"][variant];
        const Tokenizer tok = Tokenizer::from_tokenizer_json_text(variant_json(entry), variant_config(entry), variant);
        for (const Case& c : cases()) {
            INFO(variant << " / " << c.name);
            std::string back;
            for (std::int32_t id : tok.encode(c.bytes, false, true)) back += tok.token_to_piece(id);
            CHECK(escaped(back) == escaped(c.bytes));
            if (c.utf8) CHECK(escaped(tok.decode(tok.encode(c.bytes, false, true))) == escaped(c.bytes));
            else CHECK(weft::text::detail::is_valid_utf8(tok.decode(tok.encode(c.bytes, false, true))));
        }
    }
}

TEST_CASE("SentencePiece decode(encode(text)) gives the text back for UTF-8 text") {
    const Tokenizer tok = Tokenizer::from_sentencepiece_model(data_path("spm/tokenizer.model"));
    const Tokenizer hf = Tokenizer::from_tokenizer_json(data_path("spm"));
    for (const Case& c : cases()) {
        if (!c.utf8) continue;
        INFO(c.name);
        CHECK(escaped(tok.decode(tok.encode(c.bytes), true)) == escaped(c.bytes));
        // The legacy tokenizer.json prepends "▁" to the text after every added token (<sep> here),
        // as HF tokenizers does, so the space it adds comes back in those cases.
        if (c.bytes.find("<sep>") == std::string::npos && c.bytes.find("<|note|>") == std::string::npos)
            CHECK(escaped(hf.decode(hf.encode(c.bytes), true)) == escaped(c.bytes));
    }
}

TEST_CASE("the SentencePiece scorer and HF's rank-ordered merges agree on this model's ordinary text") {
    // Same vocabulary, two merge orders (scores vs. transformers' generated ranks): equal ids on the
    // corpus except where the two pipelines are known to differ (special and user-defined tokens).
    // Invalid UTF-8 included: both read a bad byte as U+FFFD (HF tokenizers cannot be given one).
    const Tokenizer spm = Tokenizer::from_sentencepiece_model(data_path("spm/tokenizer.model"));
    const Tokenizer hf = Tokenizer::from_tokenizer_json(data_path("spm"));
    for (const Case& c : cases()) {
        if (c.name.find("special") != std::string::npos || c.name == "user_defined") continue;
        INFO(c.name);
        CHECK(spm.encode(c.bytes, false) == hf.encode(c.bytes, false));
    }
}

}  // namespace test_tokenizer_golden
