// weft/text/pipeline.hpp — the inside of text::Tokenizer: one description (Pipeline) that every
// source fills (a Vocabulary, a tokenizer.json, a tokenizer.model), the encode path (added-token
// split → normalizer → pre-tokenizer → BPE) and the streaming decode state machine. Not public API:
// use text/tokenizer.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/text/bpe.hpp"
#include "weft/text/pretokenizer.hpp"
#include "weft/text/unicode.hpp"
#include "weft/text/vocabulary.hpp"

namespace weft::text::detail {

// "▁" (U+2581), SentencePiece's stand-in for a space.
inline constexpr std::string_view metaspace_symbol = "\xE2\x96\x81";

enum class TokenKind : std::uint8_t { normal, unknown, control, user_defined, unused, byte };

// A token recognised in the text before any model runs (HF added_tokens; SentencePiece control
// tokens). Special ones are matched only when the caller allows it.
struct AddedToken {
    std::string content;
    std::int32_t id = -1;
    bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

struct NormalizerStep {
    enum Kind { prepend, replace } kind;
    std::string from, to;  // prepend: `to` only
};

struct PreTokenizerStep {
    enum Kind { metaspace, split, byte_level } kind;
    // metaspace
    std::string replacement;
    enum Prepend { always, first, never } prepend = always;
    bool split_words = false;
    // split
    SplitPattern pattern = SplitPattern::gpt2;
    // byte_level
    bool add_prefix_space = false;
    bool use_regex = false;
};

enum class Engine { sentencepiece, ranked };
enum class DecodeStyle {
    sentencepiece,  // pieces are text; <0xNN> tokens assemble UTF-8; a bad byte → U+FFFD each
    byte_level,     // every token is bytes; bad UTF-8 → one U+FFFD per maximal invalid subpart
};
enum class LeadingSpace {
    keep,
    sentencepiece,          // drop the first piece's leading space (the dummy prefix), SentencePiece's rule
    metaspace_first_token,  // the first rendered token loses every "▁" (HF's Metaspace decoder)
};

struct Pipeline {
    std::string origin;  // names the source in error messages
    Engine engine = Engine::ranked;
    std::vector<std::string> tokens;  // id → token text as stored
    std::vector<TokenKind> kinds;
    std::vector<std::string> pieces;  // id → the bytes the token decodes to
    StringMap<std::int32_t> ids;      // token text → id

    std::vector<AddedToken> added;             // matched in the raw text
    std::vector<AddedToken> added_normalized;  // HF: matched in normalized text
    // Positions in `added` / `added_normalized` by the first byte of the content (built by finish()).
    using AddedIndex = std::array<std::vector<std::uint32_t>, 256>;
    AddedIndex added_index, added_normalized_index;

    // Engine::sentencepiece
    std::optional<SentencePieceBpe> spm;
    bool add_dummy_prefix = true, remove_extra_whitespaces = false;
    // Engine::ranked
    std::optional<RankedBpe> bpe;
    std::vector<NormalizerStep> normalizer;
    std::vector<PreTokenizerStep> pre_tokenizer;
    bool byte_level_input = false;  // a ByteLevel pre-tokenizer ends the sequence

    std::vector<std::int32_t> prefix, suffix;  // put around the text by encode(add_bos = true)
    std::int32_t bos = -1, eos = -1, eot = -1, unk = -1, pad = -1;
    std::vector<std::int32_t> end_of_generation;

    DecodeStyle decode_style = DecodeStyle::sentencepiece;
    LeadingSpace leading_space = LeadingSpace::keep;
    std::string first_token_drop;  // metaspace_first_token: the replacement removed from the first token
    std::vector<std::pair<std::string, std::string>> decode_replacements;  // applied to each token's text
    std::string chat_template;

    std::int32_t size() const { return static_cast<std::int32_t>(tokens.size()); }
    void check_id(std::int32_t id, const char* what) const {
        if (id < 0 || id >= size()) fail(what, ": token id ", id, " is outside the vocabulary [0, ", size(), ")");
    }

    // Fills `pieces`, `ids` and end_of_generation from tokens/kinds and the decode settings.
    void finish();

    void encode(std::string_view text, bool add_bos, bool allow_special, std::vector<std::int32_t>& out) const;

private:
    struct Segment {
        std::string_view text;      // when id < 0
        std::int32_t id = -1;       // an added token
        std::size_t offset = 0;     // of `text` in the string it was cut from
    };
    static void split_added(std::string_view text, const std::vector<AddedToken>& added, const AddedIndex& index,
                            bool allow_special, std::vector<Segment>& out);
    void encode_sentencepiece(std::string_view text, std::vector<std::int32_t>& out) const;
    void encode_ranked(std::string_view text, bool first, std::vector<std::int32_t>& out) const;
};

// Streaming decode: feed ids, get text that is final (whole UTF-8 characters); decode(ids) is
// this machine run over all ids and flushed, so both agree by construction.
// SentencePiece style follows sentencepiece's decoder for tokenizer.json files too; it differs from
// HF tokenizers' ByteFallback decoder only on invalid byte runs (HF turns a whole run with a bad
// byte into U+FFFDs, sentencepiece only the bad bytes) and on skipped specials inside a byte run.
class DecodeState {
public:
    DecodeState(const Pipeline& p, bool skip_special) : p_(&p), skip_special_(skip_special) {}
    void push(std::int32_t id, std::string& out);
    void flush(std::string& out);

private:
    void emit_decided(std::string& out, bool final);
    void append(std::string& out, std::string_view s) {
        out += s;
        if (!s.empty()) text_emitted_ = true;
    }

    const Pipeline* p_;
    bool skip_special_;
    std::string pending_;           // bytes that do not yet form whole characters
    bool leading_ = true;           // SentencePiece: still before the first text
    bool leading_space_seen_ = false;
    bool first_token_done_ = false;  // Metaspace: the first rendered token has been decoded
    bool text_emitted_ = false;
};

// Builds the pipeline a Vocabulary describes (model "llama" or "gpt2"), validating it.
inline Pipeline pipeline_from_vocabulary(const Vocabulary& v, const std::string& origin);

// =============================================================================================
// Implementation
// =============================================================================================

inline std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    if (from.empty()) return s;
    std::string out;
    out.reserve(s.size());
    std::size_t pos = 0;
    for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out += to;
    }
    out.append(s, pos, std::string::npos);
    return out;
}

// Each byte that does not start a whole UTF-8 character becomes U+FFFD (SentencePiece's rule).
inline std::string replace_invalid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const Utf8Prefix u = utf8_prefix(s.substr(i));
        if (u.kind == Utf8Prefix::complete) {
            out.append(s.substr(i, static_cast<std::size_t>(u.length)));
            i += static_cast<std::size_t>(u.length);
        } else {
            out += replacement_character;
            i += 1;
        }
    }
    return out;
}

inline bool is_valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const Utf8Prefix u = utf8_prefix(s.substr(i));
        if (u.kind != Utf8Prefix::complete) return false;
        i += static_cast<std::size_t>(u.length);
    }
    return true;
}

inline void Pipeline::finish() {
    for (auto [list, index] : {std::pair{&added, &added_index}, std::pair{&added_normalized, &added_normalized_index}}) {
        for (auto& bucket : *index) bucket.clear();
        for (std::size_t k = 0; k < list->size(); ++k)
            if (!(*list)[k].content.empty()) (*index)[static_cast<std::uint8_t>((*list)[k].content[0])].push_back(static_cast<std::uint32_t>(k));
    }
    const std::size_t n = tokens.size();
    pieces.assign(n, {});
    for (std::size_t i = 0; i < n; ++i) {
        const std::string& t = tokens[i];
        std::string& piece = pieces[i];
        if (engine == Engine::sentencepiece) {
            switch (kinds[i]) {
                case TokenKind::byte: piece.assign(1, static_cast<char>(byte_token_value(t))); break;
                case TokenKind::control: piece = t; break;
                case TokenKind::unknown: piece = " \xE2\x81\x87 "; break;  // SentencePiece's unk surface " ⁇ "
                default: piece = replace_all(t, metaspace_symbol, " ");
            }
        } else if (decode_style == DecodeStyle::byte_level) {
            // tokenizers' ByteLevel decoder: characters of the alphabet → their bytes; a token with
            // any other character (an added token like " foo") passes through as it is.
            std::string bytes;
            bool all = true;
            for (std::size_t k = 0; k < t.size() && all;) {
                const Utf8Prefix u = utf8_prefix(std::string_view(t).substr(k));
                const int b = u.kind == Utf8Prefix::complete ? char_to_byte(u.cp) : -1;
                if (b < 0) all = false;
                else bytes += static_cast<char>(b);
                k += u.kind == Utf8Prefix::complete ? static_cast<std::size_t>(u.length) : 1;
            }
            piece = all ? bytes : t;
        } else if (kinds[i] == TokenKind::byte) {
            piece.assign(1, static_cast<char>(byte_token_value(t)));
        } else {
            piece = t;
            for (const auto& [from, to] : decode_replacements) piece = replace_all(piece, from, to);
        }
        // SentencePiece-style pieces are text, written out as they are, and decode() promises valid
        // UTF-8: a token stored as bytes that are not UTF-8 (a file that lies; SentencePiece's own
        // pieces are UTF-8) decodes with a U+FFFD for each bad byte. Byte tokens are assembled and
        // checked as they stream.
        if (decode_style == DecodeStyle::sentencepiece && kinds[i] != TokenKind::byte && !is_valid_utf8(piece))
            piece = replace_invalid_utf8(piece);
    }
    ids.clear();
    ids.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        if (!tokens[i].empty()) ids.emplace(tokens[i], static_cast<std::int32_t>(i));
    // Tokens that end a generated turn, by name, when they are special.
    end_of_generation.clear();
    for (std::int32_t id : {eos, eot})
        if (id >= 0) end_of_generation.push_back(id);
    for (const char* name : {"</s>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>", "<|eot|>", "<|eom|>", "<|im_end|>", "<end_of_turn>"})
        if (auto it = ids.find(std::string_view(name)); it != ids.end() && kinds[static_cast<std::size_t>(it->second)] == TokenKind::control)
            end_of_generation.push_back(it->second);
    std::sort(end_of_generation.begin(), end_of_generation.end());
    end_of_generation.erase(std::unique(end_of_generation.begin(), end_of_generation.end()), end_of_generation.end());
}

// ----- encode ---------------------------------------------------------------------------------

inline void Pipeline::split_added(std::string_view text, const std::vector<AddedToken>& added, const AddedIndex& index,
                                  bool allow_special, std::vector<Segment>& out) {
    if (added.empty()) {
        if (!text.empty()) out.push_back({text, -1, 0});
        return;
    }
    const auto is_space_at = [](std::string_view s, std::size_t i, std::size_t& len) {
        const Utf8Prefix u = utf8_prefix(s.substr(i));
        len = u.kind == Utf8Prefix::complete ? static_cast<std::size_t>(u.length) : 1;
        return u.kind == Utf8Prefix::complete && char_class(u.cp) == CharClass::space;
    };
    // Word characters for single_word: letters and numbers (an approximation of Rust's is_alphanumeric).
    const auto is_word_char = [](char32_t c) {
        const CharClass k = char_class(c);
        return is_letter(k) || k == CharClass::number || c == '_';
    };
    const auto last_char = [](std::string_view s) -> std::optional<char32_t> {
        for (std::size_t back = 1; back <= std::min<std::size_t>(4, s.size()); ++back) {
            const Utf8Prefix u = utf8_prefix(s.substr(s.size() - back));
            if (u.kind == Utf8Prefix::complete && static_cast<std::size_t>(u.length) == back) return u.cp;
        }
        return std::nullopt;
    };

    std::size_t start_offset = 0;  // end of the previous match
    std::size_t pos = 0;
    while (pos < text.size()) {
        // Leftmost, then longest, match (tokenizers uses a leftmost-longest Aho-Corasick automaton).
        const AddedToken* best = nullptr;
        for (const std::uint32_t k : index[static_cast<std::uint8_t>(text[pos])]) {
            const AddedToken& t = added[k];
            if (t.special && !allow_special) continue;
            if (t.content.empty() || t.content.size() > text.size() - pos) continue;
            if (text.compare(pos, t.content.size(), t.content) != 0) continue;
            if (best && best->content.size() >= t.content.size()) continue;
            if (t.single_word) {
                const auto before = last_char(text.substr(0, pos));
                const Utf8Prefix after = pos + t.content.size() < text.size() ? utf8_prefix(text.substr(pos + t.content.size()))
                                                                               : Utf8Prefix{Utf8Prefix::invalid, 0, 0};
                if ((before && is_word_char(*before)) || (after.kind == Utf8Prefix::complete && is_word_char(after.cp))) continue;
            }
            best = &t;
        }
        if (!best) {
            ++pos;
            continue;
        }
        std::size_t start = pos, stop = pos + best->content.size();
        if (best->lstrip) {  // swallow the whitespace before it (not what an earlier match took)
            std::size_t k = start_offset, last_non_space = start_offset;
            for (std::size_t len; k < start; k += len)
                if (!is_space_at(text, k, len)) last_non_space = k + len;
            start = last_non_space;
        }
        if (best->rstrip) {
            for (std::size_t len; stop < text.size() && is_space_at(text, stop, len);) stop += len;
        }
        if (start_offset < start) out.push_back({text.substr(start_offset, start - start_offset), -1, start_offset});
        out.push_back({{}, best->id, start});
        start_offset = stop;
        pos = stop;
    }
    if (start_offset < text.size()) out.push_back({text.substr(start_offset), -1, start_offset});
}

inline void Pipeline::encode(std::string_view text, bool add_bos, bool allow_special, std::vector<std::int32_t>& out) const {
    if (add_bos) out.insert(out.end(), prefix.begin(), prefix.end());
    // SentencePiece-style text is UTF-8 by the time the model sees it: each bad byte becomes U+FFFD.
    // Byte-level BPE encodes the bytes as they are.
    std::string cleaned;
    if (engine == Engine::ranked && !byte_level_input && !is_valid_utf8(text)) {
        cleaned = replace_invalid_utf8(text);
        text = cleaned;
    }
    std::vector<Segment> segments;
    split_added(text, added, added_index, allow_special, segments);
    for (const Segment& s : segments) {
        if (s.id >= 0) {
            out.push_back(s.id);
        } else if (engine == Engine::sentencepiece) {
            encode_sentencepiece(s.text, out);
        } else {
            encode_ranked(s.text, s.offset == 0, out);
        }
    }
    if (add_bos) out.insert(out.end(), suffix.begin(), suffix.end());
}

// SentencePiece's normalizer (identity rules) and then its BPE.
inline void Pipeline::encode_sentencepiece(std::string_view text, std::vector<std::int32_t>& out) const {
    std::string normalized;
    normalized.reserve(text.size() + 8);
    std::size_t i = 0;
    const auto next_char = [&](std::string_view& ch) {
        const Utf8Prefix u = utf8_prefix(text.substr(i));
        if (u.kind == Utf8Prefix::complete) {
            ch = text.substr(i, static_cast<std::size_t>(u.length));
            i += static_cast<std::size_t>(u.length);
        } else {  // a malformed byte reads as U+FFFD and consumes one byte
            ch = replacement_character;
            i += 1;
        }
    };
    if (remove_extra_whitespaces)
        while (i < text.size() && text[i] == ' ') ++i;
    if (i == text.size()) return;
    if (add_dummy_prefix) normalized += metaspace_symbol;
    bool prev_space = remove_extra_whitespaces;
    while (i < text.size()) {
        std::string_view ch;
        next_char(ch);
        if (prev_space && ch == " ") continue;
        if (ch == " ") normalized += metaspace_symbol;
        else normalized += ch;
        prev_space = remove_extra_whitespaces && ch == " ";
    }
    if (remove_extra_whitespaces)
        while (normalized.size() >= metaspace_symbol.size() && normalized.ends_with(metaspace_symbol)) normalized.resize(normalized.size() - metaspace_symbol.size());
    spm->encode(normalized, out);
}

inline void Pipeline::encode_ranked(std::string_view text, bool first, std::vector<std::int32_t>& out) const {
    std::string normalized(text);
    for (const NormalizerStep& n : normalizer) {
        if (n.kind == NormalizerStep::prepend) {
            if (!normalized.empty()) normalized.insert(0, n.to);
        } else {
            normalized = replace_all(std::move(normalized), n.from, n.to);
        }
    }
    std::vector<Segment> parts;
    split_added(normalized, added_normalized, added_normalized_index, true, parts);
    for (std::size_t pi = 0; pi < parts.size(); ++pi) {
        const Segment& part = parts[pi];
        if (part.id >= 0) {
            out.push_back(part.id);
            continue;
        }
        std::vector<std::string> words{std::string(part.text)};
        const bool is_first = first && part.offset == 0;
        for (const PreTokenizerStep& step : pre_tokenizer) {
            std::vector<std::string> next;
            for (std::string& w : words) {
                switch (step.kind) {
                    case PreTokenizerStep::metaspace: {
                        w = replace_all(std::move(w), " ", step.replacement);
                        const bool prepend = step.prepend == PreTokenizerStep::always || (step.prepend == PreTokenizerStep::first && is_first);
                        if (prepend && !w.starts_with(step.replacement)) w.insert(0, step.replacement);
                        if (!step.split_words) {
                            next.push_back(std::move(w));
                            break;
                        }
                        // Split before each replacement character (merged with what follows).
                        std::size_t from = 0;
                        for (std::size_t hit = w.find(step.replacement, 1); hit != std::string::npos;
                             hit = w.find(step.replacement, hit + step.replacement.size())) {
                            if (hit > from) next.push_back(w.substr(from, hit - from));
                            from = hit;
                        }
                        if (from < w.size()) next.push_back(w.substr(from));
                        break;
                    }
                    case PreTokenizerStep::split:
                        for (std::string_view piece : pretokenize(step.pattern, w)) next.emplace_back(piece);
                        break;
                    case PreTokenizerStep::byte_level:
                        if (step.add_prefix_space && !w.starts_with(' ')) w.insert(0, " ");
                        if (step.use_regex) {
                            for (std::string_view piece : pretokenize(SplitPattern::gpt2, w)) next.emplace_back(piece);
                        } else {
                            next.push_back(std::move(w));
                        }
                        break;
                }
            }
            words = std::move(next);
        }
        for (const std::string& w : words) bpe->encode(w, out);
    }
}

// ----- decode ---------------------------------------------------------------------------------

inline void DecodeState::emit_decided(std::string& out, bool final) {
    std::size_t i = 0;
    std::string text;
    while (i < pending_.size()) {
        const Utf8Prefix u = utf8_prefix(std::string_view(pending_).substr(i));
        if (u.kind == Utf8Prefix::complete) {
            text.append(pending_, i, static_cast<std::size_t>(u.length));
            i += static_cast<std::size_t>(u.length);
        } else if (u.kind == Utf8Prefix::incomplete && !final) {
            break;  // may still become a character
        } else {
            text += replacement_character;
            // SentencePiece replaces one byte at a time; Rust's from_utf8_lossy (tokenizers' ByteLevel
            // decoder) replaces each maximal invalid subpart, or an unfinished one at the end, once.
            i += p_->decode_style == DecodeStyle::sentencepiece ? 1 : static_cast<std::size_t>(u.length);
        }
    }
    pending_.erase(0, i);
    append(out, text);
}

inline void DecodeState::push(std::int32_t id, std::string& out) {
    p_->check_id(id, "decode");
    const auto k = static_cast<std::size_t>(id);
    const TokenKind kind = p_->kinds[k];
    const bool skip = skip_special_ && kind == TokenKind::control;

    if (p_->decode_style == DecodeStyle::byte_level) {
        if (skip) return;  // tokenizers drops it before decoding: bytes around it join up
        pending_ += p_->pieces[k];
        emit_decided(out, false);
        return;
    }

    if (kind == TokenKind::byte && !skip) {
        pending_ += p_->pieces[k];
        first_token_done_ = true;
        emit_decided(out, false);
        return;
    }
    emit_decided(out, true);  // any other token ends a run of byte tokens
    if (p_->leading_space == LeadingSpace::sentencepiece) {
        if (leading_space_seen_ || text_emitted_) leading_ = false;
    }
    if (skip) {
        leading_space_seen_ = false;
        return;
    }
    std::string_view piece = p_->pieces[k];
    std::string first;
    if (kind == TokenKind::control || kind == TokenKind::unknown) {
        leading_space_seen_ = false;
    } else if (p_->leading_space == LeadingSpace::sentencepiece) {
        leading_space_seen_ = false;
        if (leading_ && piece.starts_with(' ')) {
            piece.remove_prefix(1);
            leading_space_seen_ = !p_->remove_extra_whitespaces;
        }
    } else if (p_->leading_space == LeadingSpace::metaspace_first_token && !first_token_done_) {
        first = replace_all(p_->tokens[k], p_->first_token_drop, "");
        for (const auto& [from, to] : p_->decode_replacements) first = replace_all(std::move(first), from, to);
        piece = first;
    }
    first_token_done_ = true;
    append(out, piece);
}

inline void DecodeState::flush(std::string& out) { emit_decided(out, true); }

// ----- from a Vocabulary ----------------------------------------------------------------------

inline Pipeline pipeline_from_vocabulary(const Vocabulary& v, const std::string& origin) {
    Pipeline p;
    p.origin = origin;
    const std::size_t n = v.tokens.size();
    const bool spm = v.model == "llama";
    if (!spm && v.model != "gpt2")
        fail(origin, ": tokenizer model \"", v.model, "\" is not supported; weft knows \"llama\" (SentencePiece BPE) and \"gpt2\" (byte-level BPE)");
    if (n == 0) fail(origin, ": the vocabulary has no tokens");
    if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) fail(origin, ": the vocabulary has ", n, " tokens, more than token ids can count");
    if (!v.types.empty() && v.types.size() != n)
        fail(origin, ": ", v.types.size(), " token types for ", n, " tokens; expected one per token (or none)");
    if (spm && v.scores.size() != n) fail(origin, ": ", v.scores.size(), " scores for ", n, " tokens; a SentencePiece vocabulary needs one per token");
    if (!spm && !v.scores.empty() && v.scores.size() != n)
        fail(origin, ": ", v.scores.size(), " scores for ", n, " tokens; expected one per token (or none)");
    const auto check_special = [&](std::int32_t id, const char* name) {
        if (id < -1 || id >= static_cast<std::int32_t>(n)) fail(origin, ": ", name, " ", id, " is outside the vocabulary [0, ", n, ")");
    };
    check_special(v.bos_id, "bos_id");
    check_special(v.eos_id, "eos_id");
    check_special(v.eot_id, "eot_id");
    check_special(v.unk_id, "unk_id");
    check_special(v.pad_id, "pad_id");

    p.tokens = v.tokens;
    std::vector<TokenType> types(n, TokenType::normal);
    for (std::size_t i = 0; i < n; ++i) {
        if (!v.types.empty()) {
            const std::int32_t t = v.types[i];
            if (t < 0 || t > 6) fail(origin, ": token ", i, " ('", v.tokens[i], "') has type ", t, "; expected 0 to 6");
            types[i] = t == 0 ? TokenType::normal : static_cast<TokenType>(t);
        } else if (spm && byte_token_value(v.tokens[i]) >= 0) {
            types[i] = TokenType::byte;
        }
    }
    if (spm && v.types.empty() && v.unk_id >= 0) types[static_cast<std::size_t>(v.unk_id)] = TokenType::unknown;

    {   // No token text twice: lookups by text would be ambiguous.
        StringMap<std::int32_t> seen;
        seen.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            if (v.tokens[i].empty()) continue;
            auto [it, fresh] = seen.emplace(v.tokens[i], static_cast<std::int32_t>(i));
            if (!fresh) fail(origin, ": token '", v.tokens[i], "' appears twice, at ids ", it->second, " and ", i);
        }
    }

    p.kinds.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        switch (types[i]) {
            case TokenType::unknown: p.kinds[i] = TokenKind::unknown; break;
            case TokenType::control: p.kinds[i] = TokenKind::control; break;
            case TokenType::user_defined: p.kinds[i] = TokenKind::user_defined; break;
            case TokenType::unused: p.kinds[i] = TokenKind::unused; break;
            case TokenType::byte: p.kinds[i] = spm ? TokenKind::byte : TokenKind::normal; break;
            default: p.kinds[i] = TokenKind::normal;
        }
        if (v.tokens[i].empty() && (types[i] == TokenType::control || types[i] == TokenType::user_defined))
            fail(origin, ": token ", i, " is ", types[i] == TokenType::control ? "a control" : "a user-defined", " token with empty text");
    }
    p.bos = v.bos_id, p.eos = v.eos_id, p.eot = v.eot_id, p.unk = v.unk_id, p.pad = v.pad_id;
    p.chat_template = v.chat_template;

    if (spm) {
        p.engine = Engine::sentencepiece;
        p.decode_style = DecodeStyle::sentencepiece;
        p.add_dummy_prefix = v.add_space_prefix;
        p.remove_extra_whitespaces = v.remove_extra_whitespaces;
        p.leading_space = v.add_space_prefix || v.remove_extra_whitespaces ? LeadingSpace::sentencepiece : LeadingSpace::keep;
        std::int32_t unk = -1;
        int byte_count = 0;
        std::vector<bool> byte_seen(256, false);
        for (std::size_t i = 0; i < n; ++i) {
            if (std::isnan(v.scores[i])) fail(origin, ": token ", i, " ('", v.tokens[i], "') has a NaN score");
            if (types[i] == TokenType::unknown) {
                if (unk >= 0) fail(origin, ": tokens ", unk, " and ", i, " are both of type unknown; a SentencePiece vocabulary has one");
                unk = static_cast<std::int32_t>(i);
            }
            if (types[i] == TokenType::byte) {
                const int b = byte_token_value(v.tokens[i]);
                if (b < 0) fail(origin, ": token ", i, " ('", v.tokens[i], "') has type byte but is not spelled <0xNN>");
                if (!byte_seen[static_cast<std::size_t>(b)]) ++byte_count;
                byte_seen[static_cast<std::size_t>(b)] = true;
            }
            if (v.tokens[i].empty()) fail(origin, ": token ", i, " is empty; SentencePiece pieces never are");
        }
        if (unk < 0) unk = v.unk_id;
        if (unk < 0) fail(origin, ": the vocabulary has no unknown token (no token of type 2 and no unk_id); SentencePiece needs one");
        if (v.unk_id >= 0 && v.unk_id != unk)
            fail(origin, ": unk_id is ", v.unk_id, " but the token of type unknown is ", unk);
        types[static_cast<std::size_t>(unk)] = TokenType::unknown;
        p.kinds[static_cast<std::size_t>(unk)] = TokenKind::unknown;
        p.unk = unk;
        const bool byte_fallback = byte_count > 0;
        if (byte_fallback && byte_count != 256)
            fail(origin, ": the vocabulary has ", byte_count, " of the 256 byte tokens <0x00>..<0xFF>; byte fallback needs all of them");
        p.spm.emplace(v.tokens, v.scores, types, unk, byte_fallback);
        for (std::size_t i = 0; i < n; ++i)
            if (types[i] == TokenType::control) p.added.push_back({v.tokens[i], static_cast<std::int32_t>(i), true});
    } else {
        p.engine = Engine::ranked;
        p.decode_style = DecodeStyle::byte_level;
        const SplitPattern pattern = split_pattern_from_name(v.pre);
        PreTokenizerStep split{};
        split.kind = PreTokenizerStep::split;
        split.pattern = pattern;
        PreTokenizerStep bytes{};
        bytes.kind = PreTokenizerStep::byte_level;
        p.pre_tokenizer = {split, bytes};
        p.byte_level_input = true;
        StringMap<std::int32_t> vocab;
        vocab.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            if (!v.tokens[i].empty() && p.kinds[i] != TokenKind::control && p.kinds[i] != TokenKind::user_defined)
                vocab.emplace(v.tokens[i], static_cast<std::int32_t>(i));
        for (int b = 0; b < 256; ++b) {
            std::string s;
            append_utf8(s, byte_to_char(static_cast<std::uint8_t>(b)));
            if (vocab.find(s) == vocab.end())
                fail(origin, ": the byte-level vocabulary has no token for byte 0x", "0123456789ABCDEF"[b >> 4], "0123456789ABCDEF"[b & 15],
                     " ('", s, "'); byte-level BPE needs all 256");
        }
        std::vector<std::array<std::int32_t, 3>> merges;
        merges.reserve(v.merges.size());
        for (std::size_t r = 0; r < v.merges.size(); ++r) {
            const std::string& m = v.merges[r];
            const std::size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
            if (sp == std::string::npos || sp + 1 >= m.size())
                fail(origin, ": merge ", r, " ('", m, "') is not two tokens separated by a space");
            const std::string_view a = std::string_view(m).substr(0, sp), b = std::string_view(m).substr(sp + 1);
            const auto ia = vocab.find(a), ib = vocab.find(b), iab = vocab.find(std::string(a) + std::string(b));
            if (ia == vocab.end() || ib == vocab.end())
                fail(origin, ": merge ", r, " ('", m, "') names '", ia == vocab.end() ? a : b, "', which is not a token");
            if (iab == vocab.end()) fail(origin, ": merge ", r, " ('", m, "') makes '", a, b, "', which is not a token");
            merges.push_back({ia->second, ib->second, iab->second});
        }
        RankedBpe::Options o;
        o.byte_level = true;
        o.ignore_merges = pattern != SplitPattern::gpt2;  // tiktoken semantics for Llama 3/4
        o.unk_id = v.unk_id;
        p.bpe.emplace(std::move(vocab), merges, o);
        for (std::size_t i = 0; i < n; ++i) {
            if (p.kinds[i] == TokenKind::control) p.added.push_back({v.tokens[i], static_cast<std::int32_t>(i), true});
            if (p.kinds[i] == TokenKind::user_defined) p.added.push_back({v.tokens[i], static_cast<std::int32_t>(i), false});
        }
    }
    if (v.add_bos) {
        if (v.bos_id < 0) fail(origin, ": add_bos is set but the vocabulary has no BOS token (bos_id is -1)");
        p.prefix.push_back(v.bos_id);
    }
    if (v.add_eos) {
        if (v.eos_id < 0) fail(origin, ": add_eos is set but the vocabulary has no EOS token (eos_id is -1)");
        p.suffix.push_back(v.eos_id);
    }
    p.finish();
    if (p.eot < 0)
        for (const char* name : {"<|eot_id|>", "<|eot|>", "<|im_end|>", "<end_of_turn>"})
            if (auto it = p.ids.find(std::string_view(name)); it != p.ids.end() && p.kinds[static_cast<std::size_t>(it->second)] == TokenKind::control) {
                p.eot = it->second;
                break;
            }
    if (p.eot < 0) p.eot = p.eos;
    return p;
}

}  // namespace weft::text::detail
