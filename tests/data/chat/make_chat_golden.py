#!/usr/bin/python3
"""Render conversations with the official Llama chat templates, for tests/text/test_chat.cpp.

    apt-get install -y python3-jinja2
    /usr/bin/python3 tests/data/chat/make_chat_golden.py

Templates (the Jinja text as published, next to this script):
  llama2.jinja  meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json "chat_template"
  llama3.jinja  meta-llama/Meta-Llama-3-8B-Instruct, tokenizer_config.json "chat_template"
  llama4.jinja  meta-llama/Llama-4-Scout-17B-16E-Instruct (transformers'
                models/llama4/processing_llama4.py carries the same text)

They are rendered the way transformers' apply_chat_template(tokenize=False) does: a sandboxed
Jinja environment with trim_blocks, lstrip_blocks and loop controls, raise_exception(), a
json.dumps-based tojson, and bos_token / eos_token set. Output: golden.json, one list of cases
per template; a case holds either the rendered "text" or "error" (the template raised).
"""

import json
import os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))

SPECIALS = {
    "llama2": {"bos_token": "<s>", "eos_token": "</s>"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama4": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot|>"},
}


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def m(role, content):
    return {"role": role, "content": content}


SYS = "You are a helpful assistant. Answer briefly."
CASES = [
    ("one user message", [m("user", "Hello!")], True),
    ("one user message, no generation prompt", [m("user", "Hello!")], False),
    ("system and user", [m("system", SYS), m("user", "What is the capital of France?")], True),
    ("a full exchange", [m("user", "Hi"), m("assistant", "Hello! How can I help?")], False),
    ("two turns with a system message",
     [m("system", SYS), m("user", "Name a colour."), m("assistant", "Blue."), m("user", "Another one?")], True),
    ("three turns without a system message",
     [m("user", "1"), m("assistant", "2"), m("user", "3"), m("assistant", "4"), m("user", "5")], True),
    ("surrounding whitespace is trimmed, inner whitespace kept",
     [m("system", "  \tBe terse.\n\n"), m("user", "\n  two  spaces\tand\ttabs \n\n"),
      m("assistant", "   ok   "), m("user", " next ")], True),
    ("unicode whitespace counts as whitespace (Python str.strip)",
     [m("user", "\u00a0\u3000 wide \u2009\x1c"), m("assistant", "\u2028reply\u0085"), m("user", "\x1f\u00a0x")], True),
    ("non-ASCII text passes through", [m("user", "Ünïcödé: 日本語, émoji 🦙, Ελληνικά")], True),
    ("an empty user message after a system message", [m("system", "Rules.  "), m("user", "")], True),
    ("special-token text in content is left alone", [m("user", "say [INST] and <|eot_id|> and <s>")], True),
    ("user messages twice in a row", [m("user", "a"), m("user", "b")], True),
    ("assistant first", [m("assistant", "I start."), m("user", "ok")], True),
    ("a tool message", [m("user", "Weather?"), m("assistant", "Calling."), m("tool", "sunny")], True),
    ("a tool message with characters that JSON escapes",
     [m("user", "Run it."), m("assistant", "Running."), m("ipython", 'out:\n"q" \\ \t\x01\x7f é')], True),
    ("only a system message", [m("system", SYS)], True),
    ("no messages", [], True),
]


def main():
    env = environment()
    out = {}
    for name in ("llama2", "llama3", "llama4"):
        with open(os.path.join(HERE, name + ".jinja")) as f:
            template = env.from_string(f.read())
        cases = []
        for title, messages, gen in CASES:
            case = {"name": title, "messages": messages, "add_generation_prompt": gen}
            try:
                case["text"] = template.render(messages=messages, add_generation_prompt=gen, **SPECIALS[name])
            except jinja2.exceptions.TemplateError as e:
                case["error"] = str(e)
            cases.append(case)
        out[name] = cases
    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for name, cases in out.items():
        print(name, sum("text" in c for c in cases), "rendered,", sum("error" in c for c in cases), "errors")


if __name__ == "__main__":
    main()
