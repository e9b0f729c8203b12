// weft/text/bpe.hpp — the two BPE merge loops behind text::Tokenizer:
//   SentencePieceBpe: SentencePiece's BPE (bpe_model.cc): repeatedly merge the adjacent pair whose
//     concatenation is the highest-scoring piece (leftmost on ties), then byte fallback;
//   RankedBpe: Hugging Face tokenizers' BPE (models/bpe): repeatedly apply the listed merge of
//     lowest rank (leftmost on ties), with ignore_merges, byte fallback and unk fusing.
// Both work on one already-normalized piece of text and append token ids; they own their tables.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/text/unicode.hpp"
#include "weft/text/vocabulary.hpp"

namespace weft::text::detail {

// unordered_map<std::string, V> that can be searched with a string_view.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// "<0x41>" → 0x41; -1 for anything else. Exactly SentencePiece's spelling: two upper-case hex digits.
inline int byte_token_value(std::string_view s) {
    if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
    int v = 0;
    for (char ch : s.substr(3, 2)) {
        v *= 16;
        if (ch >= '0' && ch <= '9') v += ch - '0';
        else if (ch >= 'A' && ch <= 'F') v += ch - 'A' + 10;
        else return -1;
    }
    return v;
}

inline std::string byte_token_text(std::uint8_t b) {
    static const char* hex = "0123456789ABCDEF";
    return std::string{'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
}

// =============================================================================================
// SentencePiece BPE
// =============================================================================================

class SentencePieceBpe {
public:
    // `types` has one entry per token. Normal, user-defined and unused tokens can result from
    // merges; control, unknown and byte tokens cannot. User-defined tokens are matched whole in
    // the text (longest first) and never merged with neighbours. `unk_id` must be a valid id.
    SentencePieceBpe(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                     const std::vector<TokenType>& types, std::int32_t unk_id, bool byte_fallback)
        : scores_(scores), types_(types), unk_id_(unk_id), byte_fallback_(byte_fallback) {
        byte_ids_.fill(-1);
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            const auto id = static_cast<std::int32_t>(i);
            const TokenType t = types[i];
            if (tokens[i].empty()) continue;
            if (t == TokenType::normal || t == TokenType::user_defined || t == TokenType::unused)
                pieces_.emplace(tokens[i], id);
            else
                reserved_.emplace(tokens[i], id);
            if (t == TokenType::user_defined) user_defined_[static_cast<std::uint8_t>(tokens[i][0])].push_back(tokens[i]);
            if (t == TokenType::byte) byte_ids_[static_cast<std::size_t>(byte_token_value(tokens[i]))] = id;
        }
        for (auto& bucket : user_defined_)
            std::sort(bucket.begin(), bucket.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    }

    // Appends the ids of `normalized` (the output of SentencePiece's normalizer: "▁" for spaces,
    // valid UTF-8).
    void encode(std::string_view normalized, std::vector<std::int32_t>& out) const;

private:
    struct Symbol {
        int prev, next;
        bool freeze;
        std::string_view piece;
    };
    struct Pair {
        float score;
        int left, right;
        std::size_t size;
    };
    // priority_queue keeps the "largest" on top: highest score, then smallest left index.
    struct PairOrder {
        bool operator()(const Pair& a, const Pair& b) const {
            return a.score < b.score || (a.score == b.score && a.left > b.left);
        }
    };

    std::size_t prefix_match(std::string_view s, bool& frozen) const {
        for (const std::string& u : user_defined_[static_cast<std::uint8_t>(s[0])])
            if (s.substr(0, u.size()) == u) {
                frozen = true;
                return u.size();
            }
        frozen = false;
        // SentencePiece's OneCharLen: the length the lead byte announces (the text is valid UTF-8).
        static constexpr std::uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
        return std::min<std::size_t>(s.size(), len[static_cast<std::uint8_t>(s[0]) >> 4]);
    }

    std::int32_t piece_to_id(std::string_view piece) const {
        if (auto it = reserved_.find(piece); it != reserved_.end()) return it->second;
        if (auto it = pieces_.find(piece); it != pieces_.end()) return it->second;
        return unk_id_;
    }

    StringMap<std::int32_t> pieces_;    // normal, user-defined, unused
    StringMap<std::int32_t> reserved_;  // control, unknown, byte
    std::vector<float> scores_;
    std::vector<TokenType> types_;
    std::array<std::vector<std::string>, 256> user_defined_;  // by first byte, longest first
    std::array<std::int32_t, 256> byte_ids_{};
    std::int32_t unk_id_;
    bool byte_fallback_;
};

inline void SentencePieceBpe::encode(std::string_view normalized, std::vector<std::int32_t>& out) const {
    if (normalized.empty()) return;
    std::vector<Symbol> symbols;
    symbols.reserve(normalized.size());
    for (std::string_view rest = normalized; !rest.empty();) {
        Symbol s{};
        const std::size_t n = prefix_match(rest, s.freeze);
        const int index = static_cast<int>(symbols.size());
        s.piece = rest.substr(0, n);
        s.prev = index - 1;
        rest.remove_prefix(n);
        s.next = rest.empty() ? -1 : index + 1;
        symbols.push_back(s);
    }

    std::priority_queue<Pair, std::vector<Pair>, PairOrder> agenda;
    // Merged pieces of unused tokens, to split them again at the end: piece → (left, right).
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
    const auto maybe_add_pair = [&](int left, int right) {
        if (left == -1 || right == -1 || symbols[left].freeze || symbols[right].freeze) return;
        const std::string_view piece(symbols[left].piece.data(), symbols[left].piece.size() + symbols[right].piece.size());
        const auto it = pieces_.find(piece);
        if (it == pieces_.end()) return;
        agenda.push(Pair{scores_[static_cast<std::size_t>(it->second)], left, right, piece.size()});
        if (types_[static_cast<std::size_t>(it->second)] == TokenType::unused)
            rev_merge[piece] = {symbols[left].piece, symbols[right].piece};
    };
    for (std::size_t i = 1; i < symbols.size(); ++i) maybe_add_pair(static_cast<int>(i) - 1, static_cast<int>(i));

    while (!agenda.empty()) {
        const Pair top = agenda.top();
        agenda.pop();
        Symbol& l = symbols[static_cast<std::size_t>(top.left)];
        Symbol& r = symbols[static_cast<std::size_t>(top.right)];
        // Stale: one side was merged away or grew since the pair was queued.
        if (l.piece.empty() || r.piece.empty() || l.piece.size() + r.piece.size() != top.size) continue;
        l.piece = std::string_view(l.piece.data(), l.piece.size() + r.piece.size());
        l.next = r.next;
        if (r.next >= 0) symbols[static_cast<std::size_t>(r.next)].prev = top.left;
        r.piece = {};
        maybe_add_pair(l.prev, top.left);
        maybe_add_pair(top.left, l.next);
    }

    // Unused pieces are split back into the pieces they were merged from, recursively.
    std::vector<std::string_view> pieces;
    const std::function<void(std::string_view)> resegment = [&](std::string_view w) {
        const auto it = pieces_.find(w);
        if (it != pieces_.end() && types_[static_cast<std::size_t>(it->second)] == TokenType::unused) {
            if (const auto rm = rev_merge.find(w); rm != rev_merge.end()) {
                resegment(rm->second.first);
                resegment(rm->second.second);
                return;
            }
        }
        pieces.push_back(w);
    };
    for (int i = 0; i != -1; i = symbols[static_cast<std::size_t>(i)].next) resegment(symbols[static_cast<std::size_t>(i)].piece);

    bool prev_unk = false;
    for (std::string_view w : pieces) {
        const std::int32_t id = piece_to_id(w);
        const bool is_unk = types_[static_cast<std::size_t>(id)] == TokenType::unknown;
        if (is_unk && byte_fallback_) {
            for (char ch : w) out.push_back(byte_ids_[static_cast<std::uint8_t>(ch)]);
        } else if (!(is_unk && prev_unk)) {  // a run of unknown pieces becomes one unknown token
            out.push_back(id);
        }
        prev_unk = is_unk;
    }
}

// =============================================================================================
// Hugging Face tokenizers' BPE
// =============================================================================================

class RankedBpe {
public:
    struct Options {
        bool byte_level = false;     // words arrive as raw bytes; the vocabulary is in GPT-2's alphabet
        bool ignore_merges = false;  // a word that is a token is emitted whole
        bool byte_fallback = false;  // an unknown character becomes <0xNN> tokens (when all exist)
        bool fuse_unk = false;       // consecutive unknown characters become one unk token
        std::int32_t unk_id = -1;    // -1: unknown characters are dropped (as tokenizers does)
    };

    // `vocab`: token text → id for the model's tokens. `merges`: (left id, right id, merged id) in
    // rank order (first = rank 0). The caller has checked that every id exists.
    RankedBpe(StringMap<std::int32_t> vocab, const std::vector<std::array<std::int32_t, 3>>& merges, const Options& options)
        : vocab_(std::move(vocab)), options_(options) {
        merges_.reserve(merges.size());
        for (std::size_t rank = 0; rank < merges.size(); ++rank) {
            const auto& m = merges[rank];
            // A pair listed twice keeps its last rank, as in tokenizers (its merge map is built in order).
            merges_.insert_or_assign(key(m[0], m[1]), std::pair{static_cast<std::int32_t>(rank), m[2]});
        }
        byte_ids_.fill(-1);
        for (int b = 0; b < 256; ++b) {
            std::string s;
            if (options_.byte_level) append_utf8(s, byte_to_char(static_cast<std::uint8_t>(b)));
            else s = byte_token_text(static_cast<std::uint8_t>(b));
            if (auto it = vocab_.find(s); it != vocab_.end()) byte_ids_[static_cast<std::size_t>(b)] = it->second;
        }
    }

    const Options& options() const { return options_; }
    // Id of the token for byte b: its GPT-2 character (byte-level) or <0xNN>; -1 if absent.
    std::int32_t byte_id(std::uint8_t b) const { return byte_ids_[b]; }

    // Appends the ids of one pre-token: raw bytes (byte-level) or normalized UTF-8 text.
    void encode(std::string_view word, std::vector<std::int32_t>& out) const {
        if (word.empty()) return;
        std::vector<std::int32_t> ids;
        if (options_.byte_level) {
            if (options_.ignore_merges) {
                std::string mapped;
                for (char ch : word) append_utf8(mapped, byte_to_char(static_cast<std::uint8_t>(ch)));
                if (auto it = vocab_.find(mapped); it != vocab_.end()) {
                    out.push_back(it->second);
                    return;
                }
            }
            ids.reserve(word.size());
            for (char ch : word) ids.push_back(byte_ids_[static_cast<std::uint8_t>(ch)]);  // all 256 exist (checked)
        } else {
            if (options_.ignore_merges)
                if (auto it = vocab_.find(word); it != vocab_.end()) {
                    out.push_back(it->second);
                    return;
                }
            initial_symbols(word, ids);
        }
        merge(ids, out);
    }

private:
    static std::uint64_t key(std::int32_t a, std::int32_t b) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
    }

    // One symbol per character; unknown characters become byte tokens or unk (fused when asked).
    void initial_symbols(std::string_view word, std::vector<std::int32_t>& ids) const {
        bool pending_unk = false;
        for (std::size_t i = 0; i < word.size();) {
            const Utf8Prefix u = utf8_prefix(word.substr(i));
            const std::size_t n = u.kind == Utf8Prefix::complete ? static_cast<std::size_t>(u.length) : 1;
            const std::string_view ch = word.substr(i, n);
            i += n;
            if (auto it = vocab_.find(ch); it != vocab_.end()) {
                if (pending_unk) ids.push_back(options_.unk_id), pending_unk = false;
                ids.push_back(it->second);
                continue;
            }
            if (options_.byte_fallback &&
                std::all_of(ch.begin(), ch.end(), [&](char b) { return byte_ids_[static_cast<std::uint8_t>(b)] >= 0; })) {
                // tokenizers leaves a pending unk pending here: it is pushed before the next known character.
                for (char b : ch) ids.push_back(byte_ids_[static_cast<std::uint8_t>(b)]);
                continue;
            }
            if (options_.unk_id < 0) continue;  // no unk token: the character is dropped
            if (pending_unk && !options_.fuse_unk) ids.push_back(options_.unk_id);
            pending_unk = true;
        }
        if (pending_unk) ids.push_back(options_.unk_id);
    }

    void merge(const std::vector<std::int32_t>& ids, std::vector<std::int32_t>& out) const {
        struct Symbol {
            std::int32_t id;
            int prev, next;
            bool alive;
        };
        struct Candidate {
            std::int32_t rank;
            int pos;
            std::int32_t new_id;
            bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
        };
        const int n = static_cast<int>(ids.size());
        std::vector<Symbol> sym(ids.size());
        for (int i = 0; i < n; ++i) sym[static_cast<std::size_t>(i)] = {ids[static_cast<std::size_t>(i)], i - 1, i + 1 < n ? i + 1 : -1, true};
        std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
        const auto push_pair = [&](int left) {
            const int right = sym[static_cast<std::size_t>(left)].next;
            if (right < 0) return;
            const auto it = merges_.find(key(sym[static_cast<std::size_t>(left)].id, sym[static_cast<std::size_t>(right)].id));
            if (it != merges_.end()) queue.push({it->second.first, left, it->second.second});
        };
        for (int i = 0; i + 1 < n; ++i) push_pair(i);
        while (!queue.empty()) {
            const Candidate top = queue.top();
            queue.pop();
            Symbol& s = sym[static_cast<std::size_t>(top.pos)];
            if (!s.alive || s.next < 0) continue;
            Symbol& r = sym[static_cast<std::size_t>(s.next)];
            const auto it = merges_.find(key(s.id, r.id));
            if (it == merges_.end() || it->second.second != top.new_id) continue;  // stale
            s.id = top.new_id;
            r.alive = false;
            s.next = r.next;
            if (r.next >= 0) sym[static_cast<std::size_t>(r.next)].prev = top.pos;
            if (s.prev >= 0) push_pair(s.prev);
            push_pair(top.pos);
        }
        for (const Symbol& s : sym)
            if (s.alive) out.push_back(s.id);
    }

    StringMap<std::int32_t> vocab_;
    std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges_;  // (a, b) → (rank, merged id)
    std::array<std::int32_t, 256> byte_ids_{};
    Options options_;
};

}  // namespace weft::text::detail
