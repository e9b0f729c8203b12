// weft/sample/generate.hpp — the generation loop for applications that embed weft: runs a prompt,
// then samples one token at a time and hands each id to a callback, until a stop id, a length
// limit, the end of the context, or the callback says stop. Text streaming is the caller's layer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/models/llama.hpp"  // weft::Logits, and the interface the loop drives
#include "weft/sample/sampler.hpp"

namespace weft {

// Why generate() returned.
enum class StopReason {
    eos,           // the sampler picked a stop id (an end-of-turn / end-of-text token)
    length,        // max_tokens tokens were generated
    context_full,  // the KV cache is full: the next token has no position left
    callback,      // the callback returned false
};

inline const char* to_string(StopReason r) {
    switch (r) {
        case StopReason::eos: return "eos";
        case StopReason::length: return "length";
        case StopReason::context_full: return "context_full";
        case StopReason::callback: return "callback";
    }
    return "?";
}

struct GenerateOptions {
    sample::SamplerOptions sampling;     // temperature <= 0: greedy
    Index max_tokens = 256;              // tokens to generate at most; < 0: no limit but the context
    std::vector<std::int32_t> stop_ids;  // empty: the model's config().eos_ids (every end-of-turn /
                                         // end-of-text id it declares)
};

struct GenerateResult {
    StopReason reason = StopReason::length;
    Index generated = 0;        // ids passed to the callback
    std::int32_t stop_id = -1;  // the stop id sampled (reason eos), else -1
};

// Receives each generated id; returns false to stop.
using TokenCallback = std::function<bool(std::int32_t id)>;

// Runs `prompt_ids` from the model's current position (so a chat can continue its KV cache), then
// generates. The model type needs Llama's interface: forward(tokens, Logits::last) → [1, vocab]
// logits, decode(id) → [vocab] logits, position(), context_size(), config().eos_ids.
//
// On return, the KV cache holds the prompt and every id passed to the callback (each is decoded
// right after the callback sees it, the last one included); a stop id is neither passed on nor
// cached (a chat template's next turn supplies it as text). A prompt that does not fit in the
// context throws weft::Error (nothing has run); running out of context while generating returns
// StopReason::context_full. The sampler's penalties see this call's prompt and generated ids.
// No allocation per token: the history is reserved up front.
template <class Model>
GenerateResult generate(Model& model, std::span<const std::int32_t> prompt_ids, const GenerateOptions& options,
                        sample::Sampler& sampler, const TokenCallback& on_token) {
    if (prompt_ids.empty()) fail("generate: empty prompt (the first token's logits need at least one token)");
    const Index start = model.position(), context = model.context_size();
    const Index prompt_n = static_cast<Index>(prompt_ids.size());
    if (start + prompt_n > context)
        fail("generate: the prompt of ", prompt_n, " tokens does not fit: ", start, " of the context's ", context,
             " positions are taken (reset or truncate the model, or raise its context)");
    const std::vector<std::int32_t>& declared = model.config().eos_ids;
    const std::vector<std::int32_t>& stops = options.stop_ids.empty() ? declared : options.stop_ids;
    auto is_stop = [&](std::int32_t id) { return std::find(stops.begin(), stops.end(), id) != stops.end(); };

    const Index room = context - start - prompt_n;
    const Index budget = options.max_tokens < 0 ? room : std::min(options.max_tokens, room);
    std::vector<std::int32_t> history;
    history.reserve(static_cast<std::size_t>(prompt_n + budget));
    history.assign(prompt_ids.begin(), prompt_ids.end());

    GenerateResult result;
    auto logits = model.forward(prompt_ids, Logits::last).span();
    for (;;) {
        if (options.max_tokens >= 0 && result.generated >= options.max_tokens) {
            result.reason = StopReason::length;
            return result;
        }
        const std::int32_t id = sampler.sample(logits, history);
        if (is_stop(id)) {
            result.reason = StopReason::eos;
            result.stop_id = id;
            return result;
        }
        if (model.position() >= context) {
            result.reason = StopReason::context_full;
            return result;
        }
        history.push_back(id);
        ++result.generated;
        const bool go_on = on_token(id);
        logits = model.decode(id).span();
        if (!go_on) {
            result.reason = StopReason::callback;
            return result;
        }
    }
}

// The same with a fresh sampler from options.sampling (seeded with options.sampling.seed).
template <class Model>
GenerateResult generate(Model& model, std::span<const std::int32_t> prompt_ids, const GenerateOptions& options,
                        const TokenCallback& on_token) {
    sample::Sampler sampler(options.sampling);
    return generate(model, prompt_ids, options, sampler, on_token);
}

}  // namespace weft
