// weft::generate: the loop's stop reasons and KV-cache bookkeeping on a scripted fake model, then
// greedy generation on the golden test model (tests/data/llama) and on the demo model
// (models/demo), whose ids must equal their float64 PyTorch references.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <weft/sample/generate.hpp>

namespace test_generate {

using weft::GenerateOptions;
using weft::Index;
using weft::StopReason;

namespace {

// A model whose next token is a scripted function of the last token; it keeps the ids it was fed
// (its "KV cache") and counts its calls.
class FakeModel {
public:
    struct Config {
        std::vector<std::int32_t> eos_ids;
    };

    FakeModel(Index vocab, Index context, std::vector<std::int32_t> eos, std::function<std::int32_t(std::int32_t)> next)
        : vocab_(vocab), context_(context), config_{std::move(eos)}, next_(std::move(next)), logits_(static_cast<std::size_t>(vocab)) {}

    const Config& config() const { return config_; }
    Index position() const { return static_cast<Index>(cache.size()); }
    Index context_size() const { return context_; }

    weft::TensorView<const float> forward(std::span<const std::int32_t> tokens, weft::Logits which) {
        if (which != weft::Logits::last) weft::fail("FakeModel: only Logits::last");
        if (position() + static_cast<Index>(tokens.size()) > context_) weft::fail("FakeModel: context overflow");
        ++forward_calls;
        cache.insert(cache.end(), tokens.begin(), tokens.end());
        std::fill(logits_.begin(), logits_.end(), 0.0f);
        logits_[static_cast<std::size_t>(next_(tokens.back()))] = 8.0f;
        return weft::TensorView<const float>(logits_.data(), weft::Shape{1, vocab_});
    }
    weft::TensorView<const float> decode(std::int32_t id) {
        ++decode_calls;
        return forward(std::span(&id, 1), weft::Logits::last).select(0, 0);
    }

    std::vector<std::int32_t> cache;
    int forward_calls = 0, decode_calls = 0;

private:
    Index vocab_, context_;
    Config config_;
    std::function<std::int32_t(std::int32_t)> next_;
    std::vector<float> logits_;
};

// Counts upwards: after t comes t + 1; after 4 comes 5, the end-of-text id.
FakeModel counting_model(Index context = 64) {
    return FakeModel(8, context, {5}, [](std::int32_t t) { return t + 1 < 8 ? t + 1 : 0; });
}

GenerateOptions greedy(Index max_tokens) {
    GenerateOptions o;
    o.sampling = weft::sample::greedy_options();
    o.max_tokens = max_tokens;
    return o;
}

std::vector<std::int32_t> read_ids(const std::string& path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot read " << path);
    std::vector<std::int32_t> ids;
    std::string token;
    char ch;
    while (in.get(ch)) {
        if (ch >= '0' && ch <= '9') token += ch;
        else if (!token.empty()) ids.push_back(std::stoi(token)), token.clear();
    }
    if (!token.empty()) ids.push_back(std::stoi(token));
    return ids;
}

}  // namespace

TEST_CASE("generate stops at the model's end-of-text id without passing it on or caching it") {
    FakeModel m = counting_model();
    std::vector<std::int32_t> got;
    const std::vector<std::int32_t> prompt = {0, 1};
    const auto r = weft::generate(m, prompt, greedy(100), [&](std::int32_t id) { return got.push_back(id), true; });
    CHECK(r.reason == StopReason::eos);
    CHECK(r.stop_id == 5);
    CHECK(r.generated == 3);
    CHECK(got == std::vector<std::int32_t>{2, 3, 4});
    CHECK(m.cache == std::vector<std::int32_t>{0, 1, 2, 3, 4});
    CHECK(m.forward_calls == 1 + 3);  // the prompt in one call, then one decode per generated id
    CHECK(m.decode_calls == 3);
}

TEST_CASE("generate stops after max_tokens with every passed id in the KV cache") {
    FakeModel m = FakeModel(8, 64, {}, [](std::int32_t t) { return (t + 3) % 8; });
    std::vector<std::int32_t> got;
    const std::vector<std::int32_t> prompt = {1};
    const auto r = weft::generate(m, prompt, greedy(4), [&](std::int32_t id) { return got.push_back(id), true; });
    CHECK(r.reason == StopReason::length);
    CHECK(r.stop_id == -1);
    CHECK(got == std::vector<std::int32_t>{4, 7, 2, 5});
    CHECK(m.cache == std::vector<std::int32_t>{1, 4, 7, 2, 5});
    FakeModel zero = counting_model();
    CHECK(weft::generate(zero, prompt, greedy(0), [](std::int32_t) { return true; }).generated == 0);
    CHECK(zero.cache == prompt);
}

TEST_CASE("generate returns context_full when the KV cache has no position left") {
    FakeModel m = FakeModel(8, 6, {}, [](std::int32_t t) { return (t + 1) % 8; });
    std::vector<std::int32_t> got;
    const std::vector<std::int32_t> prompt = {0, 1, 2, 3};
    const auto r = weft::generate(m, prompt, greedy(-1), [&](std::int32_t id) { return got.push_back(id), true; });
    CHECK(r.reason == StopReason::context_full);
    CHECK(got == std::vector<std::int32_t>{4, 5});
    CHECK(m.position() == 6);
    // A prompt that does not fit is an error, and nothing runs.
    FakeModel small = counting_model(3);
    CHECK_THROWS_WITH_AS(weft::generate(small, prompt, greedy(1), [](std::int32_t) { return true; }),
                         doctest::Contains("does not fit"), weft::Error);
    CHECK(small.forward_calls == 0);
    CHECK_THROWS_AS(weft::generate(small, std::span<const std::int32_t>{}, greedy(1), [](std::int32_t) { return true; }), weft::Error);
}

TEST_CASE("generate stops when the callback returns false, keeping that id in the cache") {
    FakeModel m = counting_model();
    std::vector<std::int32_t> got;
    const std::vector<std::int32_t> prompt = {0};
    const auto r = weft::generate(m, prompt, greedy(100), [&](std::int32_t id) { return got.push_back(id), id != 2; });
    CHECK(r.reason == StopReason::callback);
    CHECK(r.generated == 2);
    CHECK(got == std::vector<std::int32_t>{1, 2});
    CHECK(m.cache == std::vector<std::int32_t>{0, 1, 2});
}

TEST_CASE("stop_ids replace the model's declared end ids") {
    FakeModel m = counting_model();
    GenerateOptions o = greedy(100);
    o.stop_ids = {3, 7};
    const std::vector<std::int32_t> prompt = {0};
    const auto r = weft::generate(m, prompt, o, [](std::int32_t) { return true; });
    CHECK(r.reason == StopReason::eos);
    CHECK(r.stop_id == 3);
    CHECK(m.cache == std::vector<std::int32_t>{0, 1, 2});
}

TEST_CASE("a second generate call continues from the model's position (a chat keeps its cache)") {
    FakeModel m = counting_model();
    const std::vector<std::int32_t> first = {0}, second = {6};
    weft::generate(m, first, greedy(2), [](std::int32_t) { return true; });
    CHECK(m.cache == std::vector<std::int32_t>{0, 1, 2});
    std::vector<std::int32_t> got;
    const auto r = weft::generate(m, second, greedy(3), [&](std::int32_t id) { return got.push_back(id), true; });
    CHECK(r.reason == StopReason::length);
    CHECK(got == std::vector<std::int32_t>{7, 0, 1});
    CHECK(m.cache == std::vector<std::int32_t>{0, 1, 2, 6, 7, 0, 1});
}

TEST_CASE("sampled generation is reproducible from the seed") {
    // Logits all equal: every token is equally likely, so the ids come from the generator alone.
    auto run = [](std::uint64_t seed) {
        FakeModel m(8, 64, {}, [](std::int32_t) { return 0; });
        GenerateOptions o;
        o.sampling = weft::sample::SamplerOptions{};
        o.sampling.temperature = 100.0f;  // nearly flat
        o.sampling.top_k = 0;
        o.sampling.top_p = 1.0f;
        o.sampling.min_p = 0.0f;
        o.sampling.seed = seed;
        o.max_tokens = 40;
        std::vector<std::int32_t> got;
        const std::vector<std::int32_t> prompt = {3};
        weft::generate(m, prompt, o, [&](std::int32_t id) { return got.push_back(id), true; });
        return got;
    };
    CHECK(run(11) == run(11));
    CHECK(run(11) != run(12));
}

TEST_CASE("greedy generate on the golden Llama reproduces the float64 reference's ids") {
    const std::string dir = std::string(WEFT_SOURCE_DIR) + "/tests/data/llama/gqa-f32-llama3";
    weft::Llama model = weft::Llama::from_pretrained(dir, 64);
    const auto prompt = read_ids(dir + "/tokens.txt");
    const auto want = read_ids(dir + "/greedy.txt");
    std::vector<std::int32_t> got;
    const auto r = weft::generate(model, prompt, greedy(static_cast<Index>(want.size())),
                                  [&](std::int32_t id) { return got.push_back(id), true; });
    CHECK(r.reason == StopReason::length);
    CHECK(got == want);
    CHECK(model.position() == static_cast<Index>(prompt.size() + want.size()));
}

TEST_CASE("greedy generate on the demo model reproduces models/demo/golden.json") {
    const std::string root = std::string(WEFT_SOURCE_DIR) + "/models/demo";
    REQUIRE_MESSAGE(std::filesystem::exists(root + "/kjv-llama.gguf"), "models/demo/kjv-llama.gguf is missing: run models/demo/train.py");
    std::ifstream in(root + "/golden.json");
    const auto golden = nlohmann::json::parse(in);
    const auto prompt = golden.at("prompt_ids").get<std::vector<std::int32_t>>();
    auto want = golden.at("greedy_ids").get<std::vector<std::int32_t>>();
    weft::Llama model = weft::Llama::from_pretrained(root + "/kjv-llama.gguf");
    // The reference ran past end-of-text; generate stops there.
    const auto& eos = model.config().eos_ids;
    const auto end = std::find_if(want.begin(), want.end(), [&](std::int32_t id) { return std::find(eos.begin(), eos.end(), id) != eos.end(); });
    const bool stops = end != want.end();
    want.erase(end, want.end());
    std::vector<std::int32_t> got;
    const auto r = weft::generate(model, prompt, greedy(static_cast<Index>(golden.at("greedy_ids").size())),
                                  [&](std::int32_t id) { return got.push_back(id), true; });
    CHECK(r.reason == (stops ? StopReason::eos : StopReason::length));
    CHECK(got == want);
}

}  // namespace test_generate
