// weft::text chat templates: byte-for-byte against strings rendered by the official Jinja templates
// (tests/data/chat/make_chat_golden.py), the incremental form against the whole render, template
// detection from Jinja text and model directories, names, stop tokens.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <weft/text/chat.hpp>

#include "../temp_dir.hpp"

namespace test_chat {

using weft::text::ChatMessage;
using weft::text::ChatTemplate;

namespace {

std::string chat_data(const std::string& name) { return std::string(WEFT_SOURCE_DIR) + "/tests/data/chat/" + name; }

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot read " << path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

const ChatTemplate all_templates[] = {ChatTemplate::llama2, ChatTemplate::llama3, ChatTemplate::llama4};

}  // namespace

TEST_CASE("render reproduces the official Jinja templates byte for byte") {
    const auto golden = nlohmann::json::parse(slurp(chat_data("golden.json")));
    int rendered = 0, rejected = 0;
    for (ChatTemplate t : all_templates) {
        const std::string name(weft::text::chat_template_name(t));
        REQUIRE(golden.contains(name));
        for (const auto& c : golden.at(name)) {
            const std::string title = name + ": " + c.at("name").get<std::string>();
            CAPTURE(title);
            std::vector<ChatMessage> messages;
            for (const auto& m : c.at("messages")) messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
            const bool gen = c.at("add_generation_prompt").get<bool>();
            if (c.contains("error")) {
                CHECK_THROWS_AS(weft::text::render(t, messages, gen), weft::Error);
                ++rejected;
            } else {
                CHECK(weft::text::render(t, messages, gen) == c.at("text").get<std::string>());
                ++rendered;
            }
        }
    }
    CHECK(rendered >= 40);
    CHECK(rejected >= 5);
}

TEST_CASE("the incremental render continues a conversation exactly as the whole render would") {
    const std::vector<ChatMessage> history = {{"system", "Be brief."}, {"user", "Name a colour."}};
    const std::string reply = "Blue.";
    const std::vector<ChatMessage> next = {{"user", "Another one?"}};
    std::vector<ChatMessage> whole = history;
    whole.push_back({"assistant", reply});
    whole.insert(whole.end(), next.begin(), next.end());
    for (ChatTemplate t : all_templates) {
        const std::string name(weft::text::chat_template_name(t));
        CAPTURE(name);
        // What the model has seen: the prompt, then its reply (Llama 2 replies begin with a space,
        // as its template writes ' ' + reply).
        const std::string seen = weft::text::render(t, history, true) + (t == ChatTemplate::llama2 ? " " : "") + reply;
        CHECK(seen + weft::text::render_next(t, next) == weft::text::render(t, whole, true));
        // Two more turns at once.
        std::vector<ChatMessage> more = {{"user", "Thanks."}, {"assistant", "You're welcome."}, {"user", "Bye."}};
        std::vector<ChatMessage> longer = whole;
        longer.push_back({"assistant", "Red."});
        longer.insert(longer.end(), more.begin(), more.end());
        const std::string seen2 = weft::text::render(t, whole, true) + (t == ChatTemplate::llama2 ? " " : "") + "Red.";
        CHECK(seen2 + weft::text::render_next(t, more) == weft::text::render(t, longer, true));
    }
    // Without closing (the stop token was fed to the model) and without the generation prompt.
    CHECK(weft::text::render_next(ChatTemplate::llama3, next, false, false) == "<|start_header_id|>user<|end_header_id|>\n\nAnother one?<|eot_id|>");
    CHECK(weft::text::render_next(ChatTemplate::llama4, next, true, true) ==
          "<|eot|><|header_start|>user<|header_end|>\n\nAnother one?<|eot|><|header_start|>assistant<|header_end|>\n\n");
    CHECK(weft::text::render_next(ChatTemplate::llama2, next) == " </s><s>[INST] Another one? [/INST]");
    // Llama 2 expects a user turn after the assistant's reply.
    const std::vector<ChatMessage> wrong = {{"assistant", "again"}};
    CHECK_THROWS_AS(weft::text::render_next(ChatTemplate::llama2, wrong), weft::Error);
}

TEST_CASE("chat templates are found by name, and an unknown name lists the known ones") {
    for (ChatTemplate t : all_templates) CHECK(weft::text::chat_template_from_name(weft::text::chat_template_name(t)) == t);
    CHECK_THROWS_WITH_AS(weft::text::chat_template_from_name("chatml"), doctest::Contains("llama2, llama3, llama4"), weft::Error);
    CHECK_THROWS_AS(weft::text::chat_template_from_name("Llama3"), weft::Error);
}

TEST_CASE("detect_chat_template recognises the official templates and refuses to guess otherwise") {
    CHECK(weft::text::detect_chat_template(slurp(chat_data("llama2.jinja"))) == ChatTemplate::llama2);
    CHECK(weft::text::detect_chat_template(slurp(chat_data("llama3.jinja"))) == ChatTemplate::llama3);
    CHECK(weft::text::detect_chat_template(slurp(chat_data("llama4.jinja"))) == ChatTemplate::llama4);
    const std::string mistral = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}";
    CHECK_THROWS_WITH_AS(weft::text::detect_chat_template(mistral), doctest::Contains("Mistral"), weft::Error);
    const std::string chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}";
    CHECK_THROWS_WITH_AS(weft::text::detect_chat_template(chatml), doctest::Contains("matches none"), weft::Error);
    CHECK_THROWS_AS(weft::text::detect_chat_template(""), weft::Error);
}

TEST_CASE("read_chat_template finds the template in a Hugging Face model directory") {
    weft_test::TempDir dir("chat_template");
    CHECK_THROWS_WITH_AS(weft::text::read_chat_template(dir.path), doctest::Contains("neither"), weft::Error);
    const std::string llama3 = slurp(chat_data("llama3.jinja"));
    dir.write("tokenizer_config.json", nlohmann::json{{"bos_token", "<|begin_of_text|>"}, {"chat_template", llama3}}.dump());
    CHECK(weft::text::read_chat_template(dir.path) == llama3);
    CHECK(weft::text::detect_chat_template(weft::text::read_chat_template(dir.path)) == ChatTemplate::llama3);
    // A list of named templates: the one named "default".
    dir.write("tokenizer_config.json",
              nlohmann::json{{"chat_template", nlohmann::json::array({{{"name", "tool_use"}, {"template", "x"}}, {{"name", "default"}, {"template", llama3}}})}}.dump());
    CHECK(weft::text::read_chat_template(dir.path) == llama3);
    dir.write("tokenizer_config.json", nlohmann::json{{"chat_template", nlohmann::json::array({{{"name", "tool_use"}, {"template", "x"}}})}}.dump());
    CHECK_THROWS_WITH_AS(weft::text::read_chat_template(dir.path), doctest::Contains("default"), weft::Error);
    dir.write("tokenizer_config.json", "{\"bos_token\": \"<s>\"}");
    CHECK_THROWS_WITH_AS(weft::text::read_chat_template(dir.path), doctest::Contains("no chat_template"), weft::Error);
    dir.write("tokenizer_config.json", "{not json");
    CHECK_THROWS_WITH_AS(weft::text::read_chat_template(dir.path), doctest::Contains("not valid JSON"), weft::Error);
    // chat_template.jinja (newer transformers) takes precedence.
    const std::string llama4 = slurp(chat_data("llama4.jinja"));
    dir.write("chat_template.jinja", llama4);
    CHECK(weft::text::read_chat_template(dir.path) == llama4);
}

TEST_CASE("each template names its BOS and the tokens that end an assistant turn") {
    using V = std::vector<std::string_view>;
    auto stops = [](ChatTemplate t) {
        const auto s = weft::text::chat_stop_tokens(t);
        return V(s.begin(), s.end());
    };
    CHECK(stops(ChatTemplate::llama2) == V{"</s>"});
    CHECK(stops(ChatTemplate::llama3) == V{"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"});
    CHECK(stops(ChatTemplate::llama4) == V{"<|eot|>", "<|eom|>", "<|end_of_text|>"});
    CHECK(weft::text::chat_bos_token(ChatTemplate::llama2) == "<s>");
    CHECK(weft::text::chat_bos_token(ChatTemplate::llama3) == "<|begin_of_text|>");
    CHECK(weft::text::chat_bos_token(ChatTemplate::llama4) == "<|begin_of_text|>");
    // Every rendered conversation starts with that BOS (the tokenizer must not add another).
    const std::vector<ChatMessage> one = {{"user", "hi"}};
    for (ChatTemplate t : all_templates) CHECK(weft::text::render(t, one, true).rfind(weft::text::chat_bos_token(t), 0) == 0);
}

}  // namespace test_chat
