// weft/text/sentencepiece_model.hpp — reads a SentencePiece tokenizer.model (a serialized
// sentencepiece.ModelProto) into a text::Vocabulary with a small protobuf wire-format reader.
// Only BPE models with the identity normalizer (Llama 2's) are accepted; anything else is refused
// with a message saying what was found.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/text/vocabulary.hpp"

namespace weft::text {

// Parses the bytes of a tokenizer.model; `origin` names it in error messages.
inline Vocabulary parse_sentencepiece_model(std::string_view bytes, const std::string& origin);
// `path` is a tokenizer.model file or a directory holding one.
inline Vocabulary read_sentencepiece_model(const std::string& path);

// =============================================================================================
// Implementation
// =============================================================================================

namespace detail {

// Protobuf wire format: a message is a sequence of (key varint = field << 3 | wire type, value).
class ProtoReader {
public:
    ProtoReader(std::string_view bytes, const std::string& origin, const char* message)
        : data_(bytes), origin_(origin), message_(message) {}

    bool done() const { return pos_ >= data_.size(); }

    struct Field {
        std::uint32_t number;
        std::uint32_t wire;
        std::uint64_t varint = 0;      // wire 0
        std::uint32_t fixed32 = 0;     // wire 5
        std::string_view bytes;        // wire 2
    };

    Field next() {
        const std::size_t at = pos_;
        const std::uint64_t key = varint();
        Field f{};
        f.number = static_cast<std::uint32_t>(key >> 3);
        f.wire = static_cast<std::uint32_t>(key & 7);
        if (f.number == 0 || (key >> 3) > 0x1FFFFFFF) bad(at, "a field number of 0 or beyond 2^29");
        switch (f.wire) {
            case 0: f.varint = varint(); break;
            case 1: need(8, "a 64-bit field"); pos_ += 8; break;
            case 2: {
                const std::uint64_t len = varint();
                if (len > data_.size() - pos_) bad(at, "a length-delimited field of " + std::to_string(len) + " bytes past the end");
                f.bytes = data_.substr(pos_, static_cast<std::size_t>(len));
                pos_ += static_cast<std::size_t>(len);
                break;
            }
            case 5: {
                need(4, "a 32-bit field");
                std::uint32_t v = 0;
                for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(data_[pos_ + static_cast<std::size_t>(i)]);
                f.fixed32 = v;
                pos_ += 4;
                break;
            }
            default: bad(at, "wire type " + std::to_string(f.wire) + " (groups or invalid)");
        }
        return f;
    }

    // Fails unless `f` has the wire type the schema gives the field.
    void expect(const Field& f, std::uint32_t wire, const char* name) const {
        if (f.wire != wire)
            fail(origin_, ": not a SentencePiece model: ", message_, " field ", f.number, " (", name, ") has wire type ", f.wire,
                 ", expected ", wire);
    }

private:
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= data_.size()) bad(pos_, "a varint cut off by the end");
            const auto b = static_cast<std::uint8_t>(data_[pos_++]);
            v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        bad(pos_, "a varint longer than 10 bytes");
    }
    void need(std::size_t n, const char* what) {
        if (data_.size() - pos_ < n) bad(pos_, std::string(what) + " cut off by the end");
    }
    [[noreturn]] void bad(std::size_t at, const std::string& what) const {
        fail(origin_, ": not a valid SentencePiece model: ", message_, " holds ", what, " at byte ", at, " (of ", data_.size(), ")");
    }

    std::string_view data_;
    std::size_t pos_ = 0;
    const std::string& origin_;
    const char* message_;
};

}  // namespace detail

inline Vocabulary parse_sentencepiece_model(std::string_view bytes, const std::string& origin) {
    using detail::ProtoReader;
    Vocabulary v;
    v.model = "llama";
    // TrainerSpec and NormalizerSpec, with the defaults of sentencepiece_model.proto.
    std::int64_t model_type = 1, unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
    bool byte_fallback = false, treat_whitespace_as_suffix = false;
    std::string normalizer_name;
    std::size_t charsmap_bytes = 0;
    bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
    const auto as_int32 = [](std::uint64_t x) { return static_cast<std::int64_t>(static_cast<std::int32_t>(static_cast<std::uint32_t>(x))); };

    ProtoReader model(bytes, origin, "ModelProto");
    while (!model.done()) {
        const ProtoReader::Field f = model.next();
        if (f.number == 1) {
            model.expect(f, 2, "pieces");
            ProtoReader piece(f.bytes, origin, "SentencePiece");
            std::string text;
            float score = 0;
            std::int64_t type = 1;
            while (!piece.done()) {
                const ProtoReader::Field g = piece.next();
                if (g.number == 1) piece.expect(g, 2, "piece"), text = std::string(g.bytes);
                else if (g.number == 2) piece.expect(g, 5, "score"), std::memcpy(&score, &g.fixed32, 4);
                else if (g.number == 3) piece.expect(g, 0, "type"), type = as_int32(g.varint);
            }
            const std::size_t index = v.tokens.size();
            if (text.empty()) fail(origin, ": piece ", index, " is empty");
            if (text.find('\0') != std::string::npos) fail(origin, ": piece ", index, " holds a NUL byte");
            if (type < 1 || type > 6) fail(origin, ": piece ", index, " ('", text, "') has type ", type, "; expected 1 to 6");
            if (!std::isfinite(score)) fail(origin, ": piece ", index, " ('", text, "') has score ", score);
            v.tokens.push_back(std::move(text));
            v.scores.push_back(score);
            v.types.push_back(static_cast<std::int32_t>(type));
        } else if (f.number == 2) {
            model.expect(f, 2, "trainer_spec");
            ProtoReader spec(f.bytes, origin, "TrainerSpec");
            while (!spec.done()) {
                const ProtoReader::Field g = spec.next();
                const auto varint_field = [&](const char* name) {
                    spec.expect(g, 0, name);
                    return as_int32(g.varint);
                };
                switch (g.number) {
                    case 3: model_type = varint_field("model_type"); break;
                    case 24: treat_whitespace_as_suffix = varint_field("treat_whitespace_as_suffix") != 0; break;
                    case 35: byte_fallback = varint_field("byte_fallback") != 0; break;
                    case 40: unk_id = varint_field("unk_id"); break;
                    case 41: bos_id = varint_field("bos_id"); break;
                    case 42: eos_id = varint_field("eos_id"); break;
                    case 43: pad_id = varint_field("pad_id"); break;
                    default: break;
                }
            }
        } else if (f.number == 3) {
            model.expect(f, 2, "normalizer_spec");
            ProtoReader spec(f.bytes, origin, "NormalizerSpec");
            while (!spec.done()) {
                const ProtoReader::Field g = spec.next();
                switch (g.number) {
                    case 1: spec.expect(g, 2, "name"); normalizer_name = std::string(g.bytes); break;
                    case 2: spec.expect(g, 2, "precompiled_charsmap"); charsmap_bytes = g.bytes.size(); break;
                    case 3: spec.expect(g, 0, "add_dummy_prefix"); add_dummy_prefix = g.varint != 0; break;
                    case 4: spec.expect(g, 0, "remove_extra_whitespaces"); remove_extra_whitespaces = g.varint != 0; break;
                    case 5: spec.expect(g, 0, "escape_whitespaces"); escape_whitespaces = g.varint != 0; break;
                    default: break;
                }
            }
        }
    }

    if (v.tokens.empty()) fail(origin, ": the model has no pieces (is it a SentencePiece model?)");
    if (model_type != 2)
        fail(origin, ": model_type is ", model_type == 1 ? "UNIGRAM" : model_type == 3 ? "WORD" : model_type == 4 ? "CHAR" : "unknown",
             " (", model_type, "); weft reads SentencePiece BPE models (type 2), as Llama 2 uses");
    if (charsmap_bytes != 0)
        fail(origin, ": the normalizer \"", normalizer_name, "\" rewrites text (", charsmap_bytes,
             " bytes of rules); weft supports the identity normalizer only (Llama 2's)");
    if (!escape_whitespaces) fail(origin, ": escape_whitespaces is off; weft supports SentencePiece models that write spaces as U+2581");
    if (treat_whitespace_as_suffix) fail(origin, ": treat_whitespace_as_suffix is on; weft supports whitespace as a prefix only");
    const auto n = static_cast<std::int64_t>(v.tokens.size());
    int byte_pieces = 0;
    for (std::int32_t t : v.types) byte_pieces += t == 6;
    if (byte_pieces > 0 && !byte_fallback) fail(origin, ": the model has byte pieces but byte_fallback is off");
    if (byte_fallback && byte_pieces != 256) fail(origin, ": byte_fallback is on but the model has ", byte_pieces, " byte pieces instead of 256");

    // Like SentencePieceProcessor::bos_id(): the id counts when it names a control piece.
    const auto control_or_none = [&](std::int64_t id) -> std::int32_t {
        if (id < 0 || id >= n || v.types[static_cast<std::size_t>(id)] != 3) return -1;
        return static_cast<std::int32_t>(id);
    };
    v.bos_id = control_or_none(bos_id);
    v.eos_id = control_or_none(eos_id);
    v.pad_id = control_or_none(pad_id);
    v.unk_id = unk_id >= 0 && unk_id < n && v.types[static_cast<std::size_t>(unk_id)] == 2 ? static_cast<std::int32_t>(unk_id) : -1;
    v.add_bos = v.bos_id >= 0;
    v.add_space_prefix = add_dummy_prefix;
    v.remove_extra_whitespaces = remove_extra_whitespaces;
    return v;
}

inline Vocabulary read_sentencepiece_model(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p(path);
    if (fs::is_directory(p, ec)) p /= "tokenizer.model";
    const std::string where = p.string();
    if (!fs::is_regular_file(p, ec)) fail("tokenizer: ", where, " does not exist or is not a regular file");
    const auto size = fs::file_size(p, ec);
    if (ec) fail("tokenizer: cannot read ", where, ": ", ec.message());
    constexpr std::uintmax_t max_bytes = 256u << 20;
    if (size > max_bytes) fail("tokenizer: ", where, " has ", size, " bytes; a tokenizer.model is far smaller (limit ", max_bytes, ")");
    std::ifstream in(p, std::ios::binary);
    std::string bytes(static_cast<std::size_t>(size), '\0');
    if (!in || !in.read(bytes.data(), static_cast<std::streamsize>(size))) fail("tokenizer: cannot read ", where);
    return parse_sentencepiece_model(bytes, where);
}

}  // namespace weft::text
