// weft::sample::Sampler: each filter against a plain reference on small hand-made logits, the
// whole chain against a reference on random cases, the generator against its published outputs,
// draws against ids computed by an independent Python implementation, and chi-square checks of
// the sampled frequencies.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include <weft/sample/sampler.hpp>

namespace test_sampler {

using weft::sample::Candidate;
using weft::sample::Rng;
using weft::sample::Sampler;
using weft::sample::SamplerOptions;

namespace {

// Options with every filter off: plain softmax sampling at temperature `t`.
SamplerOptions plain(float t = 1.0f) {
    SamplerOptions o;
    o.temperature = t;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    return o;
}

std::set<std::int32_t> ids_of(std::span<const Candidate> c) {
    std::set<std::int32_t> s;
    for (const auto& x : c) s.insert(x.id);
    return s;
}

double probability_of(std::span<const Candidate> c, std::int32_t id) {
    for (const auto& x : c)
        if (x.id == id) return x.p;
    return 0.0;
}

// Logits whose softmax is exactly (up to rounding) the given probabilities.
std::vector<float> logits_for(const std::vector<double>& p) {
    std::vector<float> l;
    for (double x : p) l.push_back(static_cast<float>(std::log(x)));
    return l;
}

// The documented chain, written the plain way: penalties, full sort, top-k, temperature +
// softmax, top-p, min-p. Returns id → renormalised probability.
std::map<std::int32_t, double> reference_chain(std::vector<float> l, const std::vector<std::int32_t>& history, const SamplerOptions& o) {
    const int V = static_cast<int>(l.size());
    const std::size_t n = o.penalty_last_n < 0 ? history.size() : std::min<std::size_t>(history.size(), o.penalty_last_n);
    std::map<std::int32_t, int> counts;
    for (std::size_t i = history.size() - n; i < history.size(); ++i) ++counts[history[i]];
    for (auto [id, count] : counts) {
        float& x = l[id];
        x = x <= 0 ? x * o.repeat_penalty : x / o.repeat_penalty;
        x -= static_cast<float>(count) * o.frequency_penalty + o.presence_penalty;
    }
    std::vector<int> order(V);
    for (int i = 0; i < V; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    if (o.top_k > 0 && o.top_k < V) order.resize(o.top_k);
    std::vector<double> p;
    double sum = 0;
    for (int id : order) p.push_back(std::exp((double(l[id]) - double(l[order[0]])) / double(o.temperature))), sum += p.back();
    for (double& x : p) x /= sum;
    std::size_t keep = order.size();
    if (o.top_p < 1) {
        double c = 0;
        for (std::size_t i = 0; i < p.size(); ++i) {
            c += p[i];
            if (c >= o.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    std::map<std::int32_t, double> out;
    double kept = 0;
    for (std::size_t i = 0; i < keep; ++i)
        if (p[i] >= o.min_p * p[0] && p[i] > 0) out[order[i]] = p[i], kept += p[i];
    for (auto& [id, x] : out) x /= kept;
    return out;
}

// Pearson's chi-square statistic of observed counts against expected probabilities.
double chi_square(const std::vector<long>& observed, const std::vector<double>& expected_p) {
    long n = 0;
    for (long o : observed) n += o;
    double chi2 = 0;
    for (std::size_t i = 0; i < observed.size(); ++i) {
        const double e = expected_p[i] * double(n);
        chi2 += (double(observed[i]) - e) * (double(observed[i]) - e) / e;
    }
    return chi2;
}

}  // namespace

TEST_CASE("xoshiro256** and splitmix64 reproduce their published reference outputs") {
    Rng rng;
    rng.set_state(1, 2, 3, 4);
    CHECK(rng.next() == 11520u);
    CHECK(rng.next() == 0u);
    CHECK(rng.next() == 1509978240u);
    CHECK(rng.next() == 1215971899390074240u);
    std::uint64_t state = 0;
    CHECK(weft::sample::splitmix64(state) == 0xE220A8397B1DCDAFull);
}

TEST_CASE("Rng::uniform is the top 53 bits of next() scaled into [0, 1)") {
    Rng a(42), b(42);
    CHECK(a.next() == 1546998764402558742u);  // seeded through splitmix64 (Python reference)
    b.next();
    for (int i = 0; i < 1000; ++i) {
        const std::uint64_t bits = a.next();
        const double u = b.uniform();
        CHECK(u == double(bits >> 11) * 0x1.0p-53);
        CHECK(u >= 0.0);
        CHECK(u < 1.0);
    }
}

TEST_CASE("greedy returns the argmax, ties going to the lowest id") {
    Sampler greedy(weft::sample::greedy_options());
    const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 2.5f};
    CHECK(greedy.sample(logits) == 1);
    const std::vector<float> all_equal(7, 0.25f);
    CHECK(greedy.sample(all_equal) == 0);
    SamplerOptions negative = plain(-1.0f);  // any temperature <= 0 is greedy
    negative.top_k = 1000;
    CHECK(Sampler(negative).sample(logits) == 1);
    const auto d = greedy.distribution(logits);
    REQUIRE(d.size() == 1);
    CHECK(d[0].id == 1);
    CHECK(d[0].p == 1.0);
}

TEST_CASE("greedy decoding applies the penalties before taking the argmax") {
    SamplerOptions o = weft::sample::greedy_options();
    o.repeat_penalty = 1.5f;  // 2.0 / 1.5 = 1.33 < 1.9
    Sampler s(o);
    const std::vector<float> logits = {2.0f, 1.9f, -1.0f};
    const std::vector<std::int32_t> history = {0};
    CHECK(s.sample(logits, history) == 1);
    CHECK(s.sample(logits) == 0);  // no history, no penalty
}

TEST_CASE("penalties follow llama.cpp: divide positive, multiply negative, subtract count*frequency + presence") {
    const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
    const std::vector<std::int32_t> history = {0, 0, 1, 3, 3, 1, 3, 5};
    SamplerOptions o = weft::sample::greedy_options();
    o.repeat_penalty = 1.25f;
    o.frequency_penalty = 0.25f;
    o.presence_penalty = 0.5f;
    SUBCASE("within the last n tokens only") {
        o.penalty_last_n = 6;  // window {1, 3, 3, 1, 3, 5}: token 0 is outside it
        Sampler s(o);
        s.sample(logits, history);
        const auto got = s.penalized_logits();
        CHECK(got[0] == 2.0f);
        CHECK(got[1] == -1.0f * 1.25f - (2 * 0.25f + 0.5f));
        CHECK(got[2] == 0.5f);
        CHECK(got[3] == 3.0f / 1.25f - (3 * 0.25f + 0.5f));
        CHECK(got[4] == -2.0f);
        CHECK(got[5] == 1.0f / 1.25f - (1 * 0.25f + 0.5f));
        // The same call again gives the same values (the per-token counts reset between calls).
        s.sample(logits, history);
        CHECK(s.penalized_logits()[3] == got[3]);
        CHECK(s.penalized_logits()[3] == 3.0f / 1.25f - (3 * 0.25f + 0.5f));
    }
    SUBCASE("-1 means the whole history, 0 turns penalties off") {
        o.penalty_last_n = -1;
        Sampler all(o);
        all.sample(logits, history);
        CHECK(all.penalized_logits()[0] == 2.0f / 1.25f - (2 * 0.25f + 0.5f));
        o.penalty_last_n = 0;
        Sampler off(o);
        off.sample(logits, history);
        for (std::size_t i = 0; i < logits.size(); ++i) CHECK(off.penalized_logits()[i] == logits[i]);
    }
}

TEST_CASE("top-k keeps exactly the k largest logits, ties to the lower id") {
    const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f, 0.5f, 3.0f};
    SamplerOptions o = plain();
    o.top_k = 3;
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{5, 1, 3});
    o.top_k = 2;
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{5, 1});
    o.top_k = 1;
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{5});
    o.top_k = 100;  // more than the vocabulary: everything
    CHECK(Sampler(o).distribution(logits).size() == logits.size());
    // The survivors' probabilities are the softmax over the survivors alone.
    o.top_k = 2;
    Sampler s(o);
    const auto d = s.distribution(logits);
    const double e = std::exp(2.0 - 3.0);
    CHECK(probability_of(d, 5) == doctest::Approx(1.0 / (1.0 + e)).epsilon(1e-12));
    CHECK(probability_of(d, 1) == doctest::Approx(e / (1.0 + e)).epsilon(1e-12));
}

TEST_CASE("temperature divides the logits before the softmax") {
    const std::vector<float> logits = {1.0f, 0.0f, -0.5f, 2.0f};
    for (float t : {0.5f, 1.0f, 2.0f}) {
        CAPTURE(t);
        Sampler s(plain(t));
        const auto d = s.distribution(logits);
        REQUIRE(d.size() == 4);
        double z = 0;
        for (float l : logits) z += std::exp(double(l) / double(t));
        for (std::int32_t i = 0; i < 4; ++i) CHECK(probability_of(d, i) == doctest::Approx(std::exp(double(logits[i]) / double(t)) / z).epsilon(1e-12));
    }
}

TEST_CASE("top-p keeps the smallest set of most probable tokens whose mass reaches p") {
    // Probabilities 0.05, 0.5, 0.1, 0.2, 0.15 (shuffled on purpose).
    const auto logits = logits_for({0.05, 0.5, 0.1, 0.2, 0.15});
    SamplerOptions o = plain();
    o.top_p = 0.8f;  // 0.5 + 0.2 = 0.7 < 0.8 <= 0.85
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{1, 3, 4});
    o.top_p = 0.69f;
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{1, 3});
    o.top_p = 0.1f;  // the most probable token alone already covers it
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{1});
    o.top_p = 0.99f;
    CHECK(ids_of(Sampler(o).distribution(logits)).size() == 5);
    o.top_p = 0.8f;
    Sampler s(o);
    const auto d = s.distribution(logits);
    CHECK(probability_of(d, 1) == doctest::Approx(0.5 / 0.85).epsilon(1e-6));
}

TEST_CASE("min-p keeps the tokens with probability at least min_p times the largest") {
    const auto logits = logits_for({0.05, 0.5, 0.1, 0.2, 0.15});
    SamplerOptions o = plain();
    o.min_p = 0.25f;  // threshold 0.125
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{1, 3, 4});
    o.min_p = 0.35f;  // threshold 0.175
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{1, 3});
    o.min_p = 1.0f;
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{1});
    // min-p sees the tempered distribution: at T = 0.5 the ratios square (0.2/0.5 → 0.16).
    o = plain(0.5f);
    o.min_p = 0.25f;
    CHECK(ids_of(Sampler(o).distribution(logits)) == std::set<std::int32_t>{1});
}

TEST_CASE("tokens at -inf are never candidates") {
    const float ninf = -std::numeric_limits<float>::infinity();
    const std::vector<float> logits = {ninf, 0.0f, ninf, 1.0f};
    Sampler s(plain());
    CHECK(ids_of(s.distribution(logits)) == std::set<std::int32_t>{1, 3});
    for (int i = 0; i < 200; ++i) {
        const auto id = s.sample(logits);
        CHECK((id == 1 || id == 3));
    }
}

TEST_CASE("the whole chain matches the plain reference on random logits and settings") {
    std::mt19937 gen(2024);
    std::uniform_real_distribution<float> logit(-4.0f, 4.0f), unit(0.0f, 1.0f);
    std::uniform_int_distribution<int> vocab_size(1, 80);
    for (int trial = 0; trial < 300; ++trial) {
        CAPTURE(trial);
        const int V = vocab_size(gen);
        std::vector<float> logits(V);
        for (float& l : logits) l = std::round(logit(gen) * 8) / 8;  // coarse values: many exact ties
        std::vector<std::int32_t> history(std::uniform_int_distribution<int>(0, 30)(gen));
        for (auto& id : history) id = std::uniform_int_distribution<int>(0, V - 1)(gen);
        SamplerOptions o;
        o.temperature = 0.2f + 1.8f * unit(gen);
        o.top_k = trial % 3 == 0 ? 0 : std::uniform_int_distribution<int>(1, V + 2)(gen);
        o.top_p = trial % 4 == 0 ? 1.0f : 0.05f + 0.95f * unit(gen);
        o.min_p = trial % 5 == 0 ? 0.0f : 0.3f * unit(gen);
        o.repeat_penalty = trial % 2 ? 1.0f : 1.0f + unit(gen);
        o.frequency_penalty = trial % 3 ? 0.0f : 0.5f * unit(gen);
        o.presence_penalty = trial % 7 ? 0.0f : unit(gen);
        o.penalty_last_n = std::uniform_int_distribution<int>(-1, 20)(gen);
        const auto want = reference_chain(logits, history, o);
        Sampler s(o);
        const auto got = s.distribution(logits, history);
        REQUIRE(got.size() == want.size());
        for (const auto& c : got) {
            REQUIRE(want.count(c.id) == 1);
            CHECK(c.p == doctest::Approx(want.at(c.id)).epsilon(1e-9));
        }
        // sample() only ever returns a candidate.
        for (int i = 0; i < 5; ++i) CHECK(want.count(s.sample(logits, history)) == 1);
    }
}

TEST_CASE("draws equal an independent Python implementation of the generator and the inverse CDF") {
    // Computed by a separate Python script: xoshiro256** seeded through splitmix64, u = (next >> 11)
    // * 2^-53, weights exp((l - max) / T) summed in walk order, first token whose cumulative
    // weight exceeds u * total.
    const std::vector<float> logits = {1.5f, -0.25f, 0.75f, 2.0f, 0.0f, -1.0f, 1.0f, 0.5f};
    SamplerOptions o = plain(1.0f);
    o.seed = 42;
    Sampler s(o);
    std::vector<std::int32_t> got;
    for (int i = 0; i < 24; ++i) got.push_back(s.sample(logits));
    CHECK(got == std::vector<std::int32_t>{0, 3, 3, 7, 7, 5, 3, 6, 4, 3, 3, 2, 6, 2, 3, 6, 3, 6, 3, 3, 0, 0, 3, 3});

    // top-k: the walk runs in descending-logit order (3, 0, 6, 2).
    o = plain(0.7f);
    o.top_k = 4;
    o.seed = 7;
    Sampler k(o);
    got.clear();
    for (int i = 0; i < 24; ++i) got.push_back(k.sample(logits));
    CHECK(got == std::vector<std::int32_t>{0, 3, 6, 2, 2, 6, 3, 3, 3, 3, 0, 0, 2, 6, 3, 0, 3, 3, 3, 3, 3, 0, 0, 3});
}

TEST_CASE("the same seed and settings give the same ids; another seed gives others") {
    std::vector<float> logits(500);
    std::mt19937 gen(5);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    for (float& l : logits) l = normal(gen);
    auto run = [&](std::uint64_t seed) {
        SamplerOptions o;  // the defaults: every filter on
        o.seed = seed;
        o.repeat_penalty = 1.1f;
        Sampler s(o);
        std::vector<std::int32_t> ids;
        for (int i = 0; i < 300; ++i) ids.push_back(s.sample(logits, ids));
        return ids;
    };
    const auto a = run(123), b = run(123), c = run(124);
    CHECK(a == b);
    CHECK(a != c);
    // reseed() restarts the stream.
    SamplerOptions o = plain();
    o.seed = 9;
    Sampler s(o);
    std::vector<std::int32_t> first, second;
    for (int i = 0; i < 50; ++i) first.push_back(s.sample(logits));
    s.reseed(9);
    for (int i = 0; i < 50; ++i) second.push_back(s.sample(logits));
    CHECK(first == second);
}

TEST_CASE("sampled frequencies pass a chi-square test against the filtered distribution") {
    // The 0.999999 quantile of chi-square: 4 degrees of freedom 33.4, 2 degrees 27.6. The draws are
    // seeded, so the check is deterministic; the last part shows the test has power to fail.
    const std::vector<double> p = {0.4, 0.25, 0.2, 0.1, 0.05};
    const auto logits = logits_for(p);
    const long n = 100000;
    auto frequencies = [&](const SamplerOptions& o) {
        Sampler s(o);
        std::vector<long> count(p.size(), 0);
        for (long i = 0; i < n; ++i) ++count[static_cast<std::size_t>(s.sample(logits))];
        return count;
    };
    SUBCASE("plain softmax") {
        const auto count = frequencies(plain(1.0f));
        CHECK(chi_square(count, p) < 33.4);
        // The same counts against a slightly different distribution (temperature 1.1) fail.
        std::vector<double> hotter;
        double z = 0;
        for (double x : p) hotter.push_back(std::pow(x, 1 / 1.1)), z += hotter.back();
        for (double& x : hotter) x /= z;
        CHECK(chi_square(count, hotter) > 100);
    }
    SUBCASE("top-k 3 at temperature 0.7") {
        SamplerOptions o = plain(0.7f);
        o.top_k = 3;
        o.seed = 31;
        const auto count = frequencies(o);
        CHECK(count[3] == 0);
        CHECK(count[4] == 0);
        std::vector<double> q;
        double z = 0;
        for (int i = 0; i < 3; ++i) q.push_back(std::pow(p[i], 1 / 0.7)), z += q.back();
        for (double& x : q) x /= z;
        CHECK(chi_square({count[0], count[1], count[2]}, q) < 27.6);
    }
}

TEST_CASE("the sampler rejects bad logits, histories and settings with weft::Error") {
    Sampler s(plain());
    const std::vector<float> empty;
    CHECK_THROWS_AS(s.sample(empty), weft::Error);
    const std::vector<float> with_nan = {0.0f, std::nanf(""), 1.0f};
    CHECK_THROWS_WITH_AS(s.sample(with_nan), doctest::Contains("token 1 is NaN"), weft::Error);
    const float ninf = -std::numeric_limits<float>::infinity();
    const std::vector<float> all_ninf = {ninf, ninf};
    CHECK_THROWS_AS(s.sample(all_ninf), weft::Error);
    SamplerOptions o = plain();
    o.repeat_penalty = 1.2f;
    Sampler penalized(o);
    const std::vector<float> logits = {0.0f, 1.0f};
    const std::vector<std::int32_t> bad_history = {0, 7};
    CHECK_THROWS_WITH_AS(penalized.sample(logits, bad_history), doctest::Contains("token 7"), weft::Error);
    o.repeat_penalty = 0.0f;
    CHECK_THROWS_AS(Sampler{o}, weft::Error);
    o = plain();
    o.min_p = 1.5f;
    CHECK_THROWS_AS(Sampler{o}, weft::Error);
    o = plain(std::numeric_limits<float>::infinity());
    CHECK_THROWS_AS(Sampler{o}, weft::Error);
}

}  // namespace test_sampler
