// weft/sample/sampler.hpp — picks the next token from a row of logits: greedy, temperature,
// top-k, top-p, min-p, repetition / frequency / presence penalties, and a seeded generator of our
// own (xoshiro256**) so that a seed gives the same ids on every run, platform and thread count.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"

namespace weft::sample {

// ---------------------------------------------------------------------------------------------
// Random numbers, fully specified (std::uniform_real_distribution and friends differ between
// standard libraries, so they are not used).
// ---------------------------------------------------------------------------------------------

// SplitMix64 (Steele, Lea, Flood 2014): expands a 64-bit seed into the generator's state.
inline std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// xoshiro256** 1.0 (Blackman, Vigna 2018), seeded with four SplitMix64 outputs of the seed.
class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        std::uint64_t sm = seed;
        for (auto& word : s_) word = splitmix64(sm);
    }
    // The raw state, for tests that check the generator against its published reference.
    void set_state(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d) { s_[0] = a, s_[1] = b, s_[2] = c, s_[3] = d; }

    std::uint64_t next() {
        const std::uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = std::rotl(s_[3], 45);
        return result;
    }
    // Uniform in [0, 1): the top 53 bits of next() times 2^-53 (exact in double).
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    std::uint64_t s_[4]{};
};

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

// Sampling settings. The defaults are llama.cpp's (temperature 0.8, top-k 40, top-p 0.95,
// min-p 0.05, penalties off). Each filter has an "off" value.
struct SamplerOptions {
    float temperature = 0.8f;        // <= 0: greedy (argmax after the penalties; ties → lowest id)
    int top_k = 40;                  // <= 0: off
    float top_p = 0.95f;             // >= 1: off
    float min_p = 0.05f;             // <= 0: off
    float repeat_penalty = 1.0f;     // 1: off; > 1 discourages tokens seen in the window
    float frequency_penalty = 0.0f;  // 0: off; subtracted once per occurrence in the window
    float presence_penalty = 0.0f;   // 0: off; subtracted once if the token occurs in the window
    int penalty_last_n = 64;         // the window: the last n tokens of the history; 0: off, -1: all
    std::uint64_t seed = 0;
};

// Settings under which the sampler always returns the argmax.
inline SamplerOptions greedy_options() {
    SamplerOptions o;
    o.temperature = 0;
    return o;
}

// One token the sampler may still return, with its probability (already renormalised over
// the surviving candidates).
struct Candidate {
    std::int32_t id;
    double p;
};

// ---------------------------------------------------------------------------------------------
// Sampler
// ---------------------------------------------------------------------------------------------

// The chain, in this order (each step optional):
//   1. penalties    on the raw logits, over the last penalty_last_n tokens of the history
//                   (llama.cpp semantics: a seen token's logit is divided by repeat_penalty when
//                   positive, multiplied when negative, then count·frequency + presence is
//                   subtracted). They change which tokens survive, so they come first.
//   2. top-k        keep the k largest logits. A set that temperature cannot change (it is
//                   monotone), so it runs on logits, before any exponential.
//   3. temperature  logits / T, then softmax over the survivors (in double).
//   4. top-p        keep the smallest prefix, by descending probability, whose mass ≥ top_p.
//   5. min-p        keep tokens with p ≥ min_p · p_max.
//   6. draw         inverse CDF with one uniform double from the seeded generator.
// Temperature comes before top-p and min-p (as in Hugging Face transformers; llama.cpp applies
// it last) so that both filters see the distribution that is actually sampled: top_p = 0.9 means
// "the tokens that can come out carry 90% of the probability we draw with".
//
// Determinism: the survivors are kept in a canonical order (by id, or by descending logit with
// ties to the lower id — a strict total order, so every standard library sorts them the same),
// all sums run in that order in double, and the generator is specified above. The one thing
// outside our control is the last bit of std::exp in the C library: a result can only change
// where a draw or a top-p / min-p threshold falls within ~1e-16 (relative) of a boundary. (The
// logits themselves are the model's business: bit-identical for any thread count.)
//
// Allocation: buffers are sized to the vocabulary on the first call and reused after.
class Sampler {
public:
    explicit Sampler(SamplerOptions options = {}) : options_(options), rng_(options.seed) { validate(options_); }

    const SamplerOptions& options() const { return options_; }
    // Restarts the random stream (the same seed gives the same draws again).
    void reseed(std::uint64_t seed) {
        options_.seed = seed;
        rng_.reseed(seed);
    }

    // The next token for `logits` (one row, size vocab) after `history` (all tokens so far:
    // prompt and generated; only the last penalty_last_n matter).
    std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history = {}) {
        if (options_.temperature <= 0) {
            prepare(logits, history);
            return argmax();
        }
        filter(logits, history);
        // Inverse CDF over the survivors in their canonical order.
        const double target = rng_.uniform() * kept_mass_;
        double cumulative = 0;
        for (Index i = 0; i < n_; ++i) {
            cumulative += weight_[static_cast<std::size_t>(ids_[i])];
            if (target < cumulative) return ids_[i];
        }
        return ids_[n_ - 1];  // target rounded onto the total: the last survivor
    }

    // The tokens sample() could return for these inputs (after every filter, without drawing),
    // in the order the draw walks them, with renormalised probabilities. Greedy settings give the
    // argmax with p = 1. The span stays valid until the next call.
    std::span<const Candidate> distribution(std::span<const float> logits, std::span<const std::int32_t> history = {}) {
        out_.clear();
        if (options_.temperature <= 0) {
            prepare(logits, history);
            out_.push_back({argmax(), 1.0});
        } else {
            filter(logits, history);
            for (Index i = 0; i < n_; ++i)
                out_.push_back({ids_[i], weight_[static_cast<std::size_t>(ids_[i])] / kept_mass_});
        }
        return out_;
    }

    // The logits after the penalties of the last call (for inspection and tests).
    std::span<const float> penalized_logits() const { return {work_.data(), work_.size()}; }

private:
    static void validate(const SamplerOptions& o) {
        if (!std::isfinite(o.temperature)) fail("Sampler: temperature must be finite (<= 0 is greedy), got ", o.temperature);
        if (!(o.top_p == o.top_p) || !(o.min_p == o.min_p)) fail("Sampler: top_p or min_p is NaN");
        if (o.min_p > 1) fail("Sampler: min_p must be in [0, 1], got ", o.min_p);
        if (!(o.repeat_penalty > 0) || !std::isfinite(o.repeat_penalty))
            fail("Sampler: repeat_penalty must be a finite number > 0 (1 is off), got ", o.repeat_penalty);
        if (!std::isfinite(o.frequency_penalty) || !std::isfinite(o.presence_penalty))
            fail("Sampler: frequency_penalty and presence_penalty must be finite");
        if (o.penalty_last_n < -1) fail("Sampler: penalty_last_n must be -1 (all), 0 (off) or a count, got ", o.penalty_last_n);
    }

    // Orders ids by descending penalised logit, ties to the lower id: a strict total order.
    bool before(std::int32_t a, std::int32_t b) const {
        const float la = work_[static_cast<std::size_t>(a)], lb = work_[static_cast<std::size_t>(b)];
        return la > lb || (la == lb && a < b);
    }

    // Copies the logits into the work buffer and applies the penalties.
    void prepare(std::span<const float> logits, std::span<const std::int32_t> history) {
        const Index vocab = static_cast<Index>(logits.size());
        if (vocab == 0) fail("Sampler: empty logits");
        if (vocab > std::numeric_limits<std::int32_t>::max()) fail("Sampler: vocabulary of ", vocab, " tokens does not fit int32 ids");
        if (static_cast<Index>(work_.size()) != vocab) {  // first call (or a new vocabulary)
            work_.assign(static_cast<std::size_t>(vocab), 0.0f);
            weight_.assign(static_cast<std::size_t>(vocab), 0.0);
            counts_.assign(static_cast<std::size_t>(vocab), 0);
            ids_.assign(static_cast<std::size_t>(vocab), 0);
            out_.reserve(static_cast<std::size_t>(vocab));
        }
        bool any_finite = false;
        for (Index i = 0; i < vocab; ++i) {
            const float l = logits[static_cast<std::size_t>(i)];
            if (l != l) fail("Sampler: logit of token ", i, " is NaN");
            if (l == std::numeric_limits<float>::infinity()) fail("Sampler: logit of token ", i, " is +inf");
            any_finite |= l != -std::numeric_limits<float>::infinity();
            work_[static_cast<std::size_t>(i)] = l;
        }
        if (!any_finite) fail("Sampler: every logit is -inf: no token can be sampled");

        const SamplerOptions& o = options_;
        const bool penalties = o.repeat_penalty != 1.0f || o.frequency_penalty != 0.0f || o.presence_penalty != 0.0f;
        if (!penalties || o.penalty_last_n == 0 || history.empty()) return;
        const std::size_t n = o.penalty_last_n < 0 ? history.size() : std::min(history.size(), static_cast<std::size_t>(o.penalty_last_n));
        const auto window = history.subspan(history.size() - n);
        for (std::int32_t id : window) {
            if (id < 0 || id >= vocab) fail("Sampler: history holds token ", id, ", outside the vocabulary of ", vocab);
            ++counts_[static_cast<std::size_t>(id)];
        }
        // Each distinct token once (its count is reset after use, leaving counts_ all zero).
        for (std::int32_t id : window) {
            int& count = counts_[static_cast<std::size_t>(id)];
            if (count == 0) continue;
            float& l = work_[static_cast<std::size_t>(id)];
            if (l <= 0) l *= o.repeat_penalty;
            else l /= o.repeat_penalty;
            // std::fma: one rounding on every platform (a compiler may not contract it differently).
            l -= std::fma(static_cast<float>(count), o.frequency_penalty, o.presence_penalty);
            count = 0;
        }
    }

    std::int32_t argmax() const {
        std::size_t best = 0;
        for (std::size_t i = 1; i < work_.size(); ++i)
            if (work_[i] > work_[best]) best = i;  // strict: ties keep the lower id
        return static_cast<std::int32_t>(best);
    }

    // Runs the chain; leaves the survivors in ids_[0, n_) in canonical order, their unnormalised
    // probabilities in weight_[id], and their total in kept_mass_.
    void filter(std::span<const float> logits, std::span<const std::int32_t> history) {
        prepare(logits, history);
        const SamplerOptions& o = options_;
        const Index vocab = static_cast<Index>(work_.size());
        std::iota(ids_.begin(), ids_.end(), 0);
        n_ = vocab;
        sorted_ = 0;  // ids_[0, sorted_) is in descending-logit order, and precedes the rest

        // top-k: the k best, sorted. Tokens at -inf never survive (they have no probability).
        if (o.top_k > 0 && o.top_k < n_) {
            sort_prefix(o.top_k);
            n_ = o.top_k;
        }

        // temperature and softmax (unnormalised: w = exp((l − max) / T), the max has w = 1).
        float max_logit = -std::numeric_limits<float>::infinity();
        for (Index i = 0; i < n_; ++i) max_logit = std::max(max_logit, work_[static_cast<std::size_t>(ids_[i])]);
        const double inv_t = 1.0 / static_cast<double>(o.temperature);
        double total = 0;
        for (Index i = 0; i < n_; ++i) {
            const auto id = static_cast<std::size_t>(ids_[i]);
            const double w = std::exp((static_cast<double>(work_[id]) - max_logit) * inv_t);
            weight_[id] = w;
            total += w;
        }

        // top-p: the shortest prefix by descending probability with mass >= top_p · total.
        if (o.top_p < 1) {
            const double goal = static_cast<double>(o.top_p) * total;
            double cumulative = 0;
            Index keep = n_;
            for (Index i = 0; i < n_; ++i) {
                if (i >= sorted_) sort_prefix(std::min(n_, std::max<Index>(2 * sorted_, 64)));
                cumulative += weight_[static_cast<std::size_t>(ids_[i])];
                if (cumulative >= goal) {
                    keep = i + 1;
                    break;
                }
            }
            n_ = keep;
        }

        // min-p: w >= min_p · w_max, with w_max = 1 (order-preserving compaction).
        if (o.min_p > 0) {
            const double threshold = static_cast<double>(o.min_p);
            Index kept = 0;
            for (Index i = 0; i < n_; ++i)
                if (weight_[static_cast<std::size_t>(ids_[i])] >= threshold) ids_[kept++] = ids_[i];
            n_ = kept;  // never 0: the max has w = 1 >= min_p
        }

        // Drop tokens without probability (-inf logits, or exp underflow at tiny temperatures).
        Index kept = 0;
        kept_mass_ = 0;
        for (Index i = 0; i < n_; ++i) {
            const double w = weight_[static_cast<std::size_t>(ids_[i])];
            if (w > 0) {
                ids_[kept++] = ids_[i];
                kept_mass_ += w;
            }
        }
        n_ = kept;
    }

    // Extends the sorted prefix of ids_[0, n_) to its first m entries.
    void sort_prefix(Index m) {
        m = std::min(m, n_);
        if (m <= sorted_) return;
        auto first = ids_.begin() + sorted_, middle = ids_.begin() + m, last = ids_.begin() + n_;
        std::partial_sort(first, middle, last, [this](std::int32_t a, std::int32_t b) { return before(a, b); });
        sorted_ = m;
    }

    SamplerOptions options_;
    Rng rng_;
    std::vector<float> work_;        // [vocab] penalised logits
    std::vector<double> weight_;     // [vocab] exp((l − max) / T) of the candidates
    std::vector<int> counts_;        // [vocab] occurrences in the penalty window (zero between calls)
    std::vector<std::int32_t> ids_;  // [vocab] candidates; survivors in [0, n_)
    std::vector<Candidate> out_;     // distribution()'s result
    Index n_ = 0, sorted_ = 0;
    double kept_mass_ = 0;
};

}  // namespace weft::sample
