// weft/text/chat.hpp — chat templates of the Llama 2, 3 and 4 instruct models, written out in C++
// (no Jinja): render a conversation to the text the model was tuned on, detect the template from
// a model's metadata, and name the tokens that end an assistant turn.
//
// The rendered text contains the special tokens as text, BOS included ("<s>", "<|begin_of_text|>"),
// exactly as Hugging Face's apply_chat_template(tokenize=False) returns it: tokenize it with special-
// token parsing on and WITHOUT adding another BOS. tests/data/chat/ holds strings produced by the
// official Jinja templates, which the tests compare against byte for byte.
#pragma once

#include <array>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "weft/core/error.hpp"

namespace weft::text {

enum class ChatTemplate {
    llama2,  // Llama 2 chat: <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>
    llama3,  // Llama 3 instruct: <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
    llama4,  // Llama 4 instruct: <|header_start|>{role}<|header_end|>\n\n{content}<|eot|>
};

struct ChatMessage {
    std::string role;  // "system", "user", "assistant" (llama3 also renders any other role verbatim)
    std::string content;
};

// "llama2", "llama3", "llama4".
inline std::string_view chat_template_name(ChatTemplate t);
// The template called `name`; an unknown name throws weft::Error listing the known ones.
inline ChatTemplate chat_template_from_name(std::string_view name);

// Which of the three a Jinja chat template (tokenizer.chat_template in GGUF, "chat_template" in
// tokenizer_config.json) is, from the markers it writes: <|header_start|> → llama4,
// <|start_header_id|> → llama3, [INST] with <<SYS>> → llama2. Anything else throws (no guessing:
// pass a name to chat_template_from_name instead).
inline ChatTemplate detect_chat_template(std::string_view jinja);
// The Jinja chat template of a Hugging Face model directory: chat_template.jinja, else
// tokenizer_config.json's "chat_template" (a string, or a list of {name, template} with "default").
inline std::string read_chat_template(const std::filesystem::path& model_dir);

// The whole conversation as text. add_generation_prompt appends the assistant header (llama3,
// llama4); Llama 2's template has none (its prompt already ends with "[/INST]").
// Differences from the Jinja originals, all of which reject rather than render differently:
// llama2 throws where its template would silently drop a message of another role. Like the
// originals, llama2 and llama4 throw for an empty conversation; llama4 renders tool / ipython
// messages under an "ipython" header as a JSON string (tool calls and images are not supported).
inline std::string render(ChatTemplate t, std::span<const ChatMessage> messages, bool add_generation_prompt);

// The incremental form, for a chat that keeps its KV cache. The model has consumed
// render(t, history, true) and then its reply, up to but not including the stop token (as
// weft::generate leaves it). This returns the text to feed next: the end of that reply
// (close_reply; e.g. "<|eot_id|>"), the new messages, and the generation prompt. For a reply whose
// text is already trimmed, render(history, true) + reply + render_next(new) ==
// render(history + {assistant, reply} + new, true) exactly (Llama 2: " " + reply, as its template
// writes the reply after a space). Pass close_reply = false if the stop token was fed to the model.
inline std::string render_next(ChatTemplate t, std::span<const ChatMessage> new_messages, bool add_generation_prompt = true,
                               bool close_reply = true);

// The text of the BOS token the rendered text begins with.
inline std::string_view chat_bos_token(ChatTemplate t);
// Tokens that end an assistant turn (map them to ids with the tokenizer; pass those as
// GenerateOptions::stop_ids): llama2 </s>; llama3 <|eot_id|> <|eom_id|> <|end_of_text|>;
// llama4 <|eot|> <|eom|> <|end_of_text|>.
inline std::span<const std::string_view> chat_stop_tokens(ChatTemplate t);

// ---------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------

namespace detail {

inline constexpr std::array<std::string_view, 3> chat_template_names = {"llama2", "llama3", "llama4"};

// Python's str.strip() (what Jinja's trim filter and the templates' .strip() call): removes the
// characters for which str.isspace() is true, read as UTF-8, from both ends.
inline std::size_t python_space_at(std::string_view s, std::size_t i) {  // length of the space at i, or 0
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
    auto cp_at = [&](std::size_t n) -> char32_t {  // the code point of an n-byte sequence at i, or 0
        if (i + n > s.size()) return 0;
        char32_t cp = n == 2 ? (c & 0x1F) : (c & 0x0F);
        for (std::size_t k = 1; k < n; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (b & 0x3F);
        }
        return cp;
    };
    if (c == 0xC2) {
        const char32_t cp = cp_at(2);
        return cp == 0x85 || cp == 0xA0 ? 2 : 0;
    }
    if (c == 0xE1 || c == 0xE2 || c == 0xE3) {
        const char32_t cp = cp_at(3);
        const bool space = cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
                           cp == 0x202F || cp == 0x205F || cp == 0x3000;
        return space ? 3 : 0;
    }
    return 0;
}

inline std::string python_strip(std::string_view s) {
    std::size_t begin = 0;
    while (begin < s.size()) {
        const std::size_t n = python_space_at(s, begin);
        if (n == 0) break;
        begin += n;
    }
    // From the right: find the last non-space character by scanning forward (UTF-8 is not
    // self-synchronising for this purpose from the end without care; strings here are short).
    std::size_t end = begin, i = begin;
    while (i < s.size()) {
        const std::size_t n = python_space_at(s, i);
        if (n) {
            i += n;
        } else {
            ++i;
            while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;  // rest of a code point
            end = i;
        }
    }
    return std::string(s.substr(begin, end - begin));
}

inline void llama2_check_role(const ChatMessage& m, std::size_t index_in_loop) {
    const bool user_expected = index_in_loop % 2 == 0;
    if ((m.role == "user") != user_expected || (m.role != "user" && m.role != "assistant"))
        fail("chat template llama2: conversation roles must alternate user/assistant/user/assistant/... (after an "
             "optional first system message); message ", index_in_loop, " has role '", m.role, "'");
}

inline void llama2_message(std::string& out, const ChatMessage& m, std::string_view content) {
    if (m.role == "user") out += "<s>[INST] " + python_strip(content) + " [/INST]";
    else out += " " + python_strip(content) + " </s>";
}

inline void llama3_message(std::string& out, const ChatMessage& m) {
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + python_strip(m.content) + "<|eot_id|>";
}

// A JSON string literal as Python's json.dumps(s, ensure_ascii=False) writes it (the tojson
// filter of transformers' chat templates).
inline std::string json_quote(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    static constexpr char hex[] = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += ch;
                }
        }
    }
    return out + "\"";
}

inline void llama4_message(std::string& out, const ChatMessage& m) {
    // Tool results go under an "ipython" header, JSON-encoded (a string is "iterable" to Jinja).
    if (m.role == "tool" || m.role == "ipython") out += "<|header_start|>ipython<|header_end|>\n\n" + json_quote(m.content) + "<|eot|>";
    else out += "<|header_start|>" + m.role + "<|header_end|>\n\n" + m.content + "<|eot|>";
}

inline void check_roles(std::span<const ChatMessage> messages, ChatTemplate t) {
    for (std::size_t i = 0; i < messages.size(); ++i)
        if (messages[i].role.empty()) fail("chat template ", chat_template_name(t), ": message ", i, " has an empty role");
}

}  // namespace detail

inline std::string_view chat_template_name(ChatTemplate t) {
    switch (t) {
        case ChatTemplate::llama2: return "llama2";
        case ChatTemplate::llama3: return "llama3";
        case ChatTemplate::llama4: return "llama4";
    }
    fail("chat_template_name: invalid ChatTemplate value ", static_cast<int>(t));
}

inline ChatTemplate chat_template_from_name(std::string_view name) {
    for (std::size_t i = 0; i < detail::chat_template_names.size(); ++i)
        if (name == detail::chat_template_names[i]) return static_cast<ChatTemplate>(i);
    fail("chat template '", name, "' is unknown; weft knows llama2, llama3, llama4");
}

inline ChatTemplate detect_chat_template(std::string_view jinja) {
    const auto has = [&](std::string_view marker) { return jinja.find(marker) != std::string_view::npos; };
    if (jinja.empty()) fail("detect_chat_template: the model has no chat template; name one with chat_template_from_name (llama2, llama3, llama4)");
    if (has("<|header_start|>")) return ChatTemplate::llama4;
    if (has("<|start_header_id|>")) return ChatTemplate::llama3;
    if (has("[INST]") && has("<<SYS>>")) return ChatTemplate::llama2;
    if (has("[INST]"))
        fail("detect_chat_template: the template uses [INST] without <<SYS>> (Mistral style), which is not Llama 2's; "
             "name one with chat_template_from_name if it is meant to be (llama2, llama3, llama4)");
    fail("detect_chat_template: the template matches none of llama2 ([INST] + <<SYS>>), llama3 (<|start_header_id|>), "
         "llama4 (<|header_start|>); it begins '", jinja.substr(0, 80), "'");
}

inline std::string read_chat_template(const std::filesystem::path& model_dir) {
    auto slurp = [](const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        if (!in) fail("read_chat_template: cannot read '", p.string(), "'");
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    };
    if (std::filesystem::exists(model_dir / "chat_template.jinja")) return slurp(model_dir / "chat_template.jinja");
    const auto config_path = model_dir / "tokenizer_config.json";
    if (!std::filesystem::exists(config_path))
        fail("read_chat_template: '", model_dir.string(), "' has neither chat_template.jinja nor tokenizer_config.json");
    nlohmann::json config;
    try {
        config = nlohmann::json::parse(slurp(config_path));
    } catch (const nlohmann::json::exception& e) {
        fail("read_chat_template: '", config_path.string(), "' is not valid JSON: ", e.what());
    }
    const auto it = config.find("chat_template");
    if (it == config.end() || it->is_null()) fail("read_chat_template: '", config_path.string(), "' has no chat_template");
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array()) {
        for (const auto& entry : *it)
            if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") && entry["template"].is_string())
                return entry["template"].get<std::string>();
        fail("read_chat_template: '", config_path.string(), "' lists chat templates but none named \"default\"");
    }
    fail("read_chat_template: '", config_path.string(), "': chat_template is neither a string nor a list");
}

inline std::string render(ChatTemplate t, std::span<const ChatMessage> messages, bool add_generation_prompt) {
    detail::check_roles(messages, t);
    if (messages.empty() && t != ChatTemplate::llama3) fail("chat template ", chat_template_name(t), ": no messages to render");
    std::string out;
    switch (t) {
        case ChatTemplate::llama2: {
            // A first system message is folded into the first user message.
            const bool has_system = !messages.empty() && messages[0].role == "system";
            const auto loop = messages.subspan(has_system ? 1 : 0);
            for (std::size_t i = 0; i < loop.size(); ++i) {
                detail::llama2_check_role(loop[i], i);
                if (i == 0 && has_system)
                    detail::llama2_message(out, loop[i], "<<SYS>>\n" + messages[0].content + "\n<</SYS>>\n\n" + loop[i].content);
                else
                    detail::llama2_message(out, loop[i], loop[i].content);
            }
            return out;  // no generation prompt in Llama 2's template
        }
        case ChatTemplate::llama3: {
            for (std::size_t i = 0; i < messages.size(); ++i) {
                if (i == 0) out += "<|begin_of_text|>";
                detail::llama3_message(out, messages[i]);
            }
            if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
            return out;
        }
        case ChatTemplate::llama4: {
            out += "<|begin_of_text|>";
            auto rest = messages;
            if (!messages.empty() && messages[0].role == "system") {
                out += "<|header_start|>system<|header_end|>\n\n" + detail::python_strip(messages[0].content) + "<|eot|>";
                rest = messages.subspan(1);
            }
            for (const ChatMessage& m : rest) detail::llama4_message(out, m);
            if (add_generation_prompt) out += "<|header_start|>assistant<|header_end|>\n\n";
            return out;
        }
    }
    fail("render: invalid ChatTemplate value ", static_cast<int>(t));
}

inline std::string render_next(ChatTemplate t, std::span<const ChatMessage> new_messages, bool add_generation_prompt, bool close_reply) {
    detail::check_roles(new_messages, t);
    std::string out;
    switch (t) {
        case ChatTemplate::llama2:
            if (close_reply) out += " </s>";
            for (std::size_t i = 0; i < new_messages.size(); ++i) {
                detail::llama2_check_role(new_messages[i], i);  // the reply was an assistant turn: a user turn is next
                detail::llama2_message(out, new_messages[i], new_messages[i].content);
            }
            return out;
        case ChatTemplate::llama3:
            if (close_reply) out += "<|eot_id|>";
            for (const ChatMessage& m : new_messages) detail::llama3_message(out, m);
            if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
            return out;
        case ChatTemplate::llama4:
            if (close_reply) out += "<|eot|>";
            for (const ChatMessage& m : new_messages) detail::llama4_message(out, m);
            if (add_generation_prompt) out += "<|header_start|>assistant<|header_end|>\n\n";
            return out;
    }
    fail("render_next: invalid ChatTemplate value ", static_cast<int>(t));
}

inline std::string_view chat_bos_token(ChatTemplate t) { return t == ChatTemplate::llama2 ? "<s>" : "<|begin_of_text|>"; }

inline std::span<const std::string_view> chat_stop_tokens(ChatTemplate t) {
    static constexpr std::array<std::string_view, 1> llama2 = {"</s>"};
    static constexpr std::array<std::string_view, 3> llama3 = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};
    static constexpr std::array<std::string_view, 3> llama4 = {"<|eot|>", "<|eom|>", "<|end_of_text|>"};
    switch (t) {
        case ChatTemplate::llama2: return llama2;
        case ChatTemplate::llama3: return llama3;
        case ChatTemplate::llama4: return llama4;
    }
    fail("chat_stop_tokens: invalid ChatTemplate value ", static_cast<int>(t));
}

}  // namespace weft::text
