#!/usr/bin/python3
"""Train small reference tokenizers and record what the reference encoders make of a stress corpus.

Run from the repository root (needs Debian's bible-kjv-text and, from PyPI, sentencepiece,
tokenizers, transformers, protobuf and regex):

    apt-get install -y bible-kjv-text
    /usr/bin/python3 -m pip install --break-system-packages sentencepiece tokenizers transformers protobuf regex
    /usr/bin/python3 tests/golden/make_tokenizer_golden.py

It writes tests/data/text/:
  spm/tokenizer.model       SentencePiece BPE (Llama 2 settings: byte_fallback, identity normalizer,
                            dummy prefix, extra whitespace kept, digits split), vocab 3000, trained
                            with one thread (deterministic) on the King James Bible + the corpus below;
                            one user-defined symbol "<sep>".
  spm/tokenizer.json        the same model as Hugging Face's Llama 2 tokenizer.json (legacy format:
                            Prepend + Replace normalizer, "a b" merges, <s> template, Strip decoder);
                            vocab and merges from transformers' conversion of the .model.
  spm/tokenizer_config.json add_bos_token, special tokens, a chat template.
  llama3/tokenizer.json     byte-level BPE trained with HF tokenizers: Llama 3 Split regex +
                            ByteLevel(use_regex=False), ignore_merges, vocab 3000 + Llama 3 special
                            tokens and one non-special added token "<|note|>"; <|begin_of_text|> template.
  llama4/tokenizer.json     the same with the Llama 4 (o200k) regex and Llama 4 special tokens.
  */tokenizer_config.json   bos/eos tokens and a chat template.
  golden.json               the corpus (text, or hex when it is not UTF-8) and, per tokenizer
                            variant, the reference ids and decodes; the pre-tokenizer splits of the
                            GPT-2, Llama 3 and Llama 4 regexes by Python's `regex` module (checked
                            here against HF tokenizers' Oniguruma split on every UTF-8 case).

References: sentencepiece (SentencePieceProcessor.encode/decode, bytes in, so invalid UTF-8 too)
for the .model and its variants; HF tokenizers (Tokenizer.encode/decode) for every tokenizer.json
variant, UTF-8 cases only (a Python str cannot hold invalid UTF-8). Variants that differ from a
committed file only in a few JSON fields are stored as patches (JSON pointer → value) that the
C++ test applies too.
"""

import copy
import json
import os
import random
import subprocess
import sys
import tempfile

import regex
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as spm_pb
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "text")

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA4_PATTERN = (r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
                  r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
                  r"""|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
PATTERNS = {"gpt2": GPT2_PATTERN, "llama3": LLAMA3_PATTERN, "llama4": LLAMA4_PATTERN}

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                   "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
                   "<|eot_id|>", "<|python_tag|>"]
LLAMA4_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                   "<|header_start|>", "<|header_end|>", "<|eom|>", "<|eot|>", "<|step|>", "<|python_start|>", "<|python_end|>"]

LLAMA2_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
                   "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}")
LLAMA3_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' "
                   "+ message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
                   "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
LLAMA4_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '<|header_start|>' + message['role'] + '<|header_end|>\n\n' "
                   "+ message['content'] | trim + '<|eot|>' }}{% endfor %}{% if add_generation_prompt %}"
                   "{{ '<|header_start|>assistant<|header_end|>\n\n' }}{% endif %}")

VOCAB_SIZE = 3000


def kjv_text():
    try:
        out = subprocess.run(["bible", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"cannot run `bible` (apt-get install bible-kjv-text): {e}")
    if len(out) < 1_000_000:
        sys.exit("`bible` printed less than expected; is bible-kjv-text complete?")
    return out


def corpus(kjv):
    u = lambda s: s.encode("utf-8")
    cases = [
        ("empty", u("")),
        ("single_char", u("x")),
        ("ascii", u("Hello, world! How are you today?")),
        ("leading_space", u(" leading space")),
        ("two_leading_spaces", u("  two leading")),
        ("space_runs", u("a  b   c    d\t\te\t \tf")),
        ("trailing_spaces", u("trailing spaces   ")),
        ("only_spaces", u("     ")),
        ("only_newline", u("\n")),
        ("space_newline_space", u(" \n ")),
        ("newlines", u("line one\nline two\r\nline three\n\n\nend")),
        ("crlf_runs", u("\r\n\r\n  \n\t\n x \r\r\n")),
        ("digits", u("1234567890 3.14159 1,000,000 007 ９８７ x2y33z444")),
        ("long_number", u("123456789012345678901234567890")),
        ("numbers_unicode", u("٣٤٥٦ ๑๒๓๔ ₁₂₃ ①②③ ½ ⅓ Ⅻ")),
        ("contractions", u("I'm sure you're right, it's what we'd've done; they'll see, won't they?")),
        ("contractions_upper", u("DON'T STOP. I'LL GO. WE'RE HERE. YOU'VE SEEN. HE'D KNOW. SHE'S 'M 'LL")),
        ("contractions_mixed", u("It'S tHe'Ll wOn'T 's 't 're X'Ve 'rE 'x '")),
        ("long_s", u("the ſhip'ſ maſt 'ſ 'ſt")),
        ("apostrophes_unicode", u("it’s “quoted” ‘single’ — dash … ellipsis")),
        ("cjk", u("今日は良い天気ですね。我爱北京天安门。")),
        ("hangul", u("안녕하세요 세계! 한국어 텍스트") + "안녕".encode("utf-8") + " 안".encode("utf-8")),
        ("arabic", u("مرحبا بالعالم، كيف حالك؟ ١٢٣")),
        ("devanagari", u("नमस्ते दुनिया, हिन्दी")),
        ("emoji_zwj", u("family: 👨‍👩‍👧‍👦, flag: 🇫🇷, thumbs: 👍🏽, heart ❤️, 🙂🙂🙂")),
        ("combining", u("e\u0301te\u0301 cafe\u0301 a\u0308\u0304 Z\u0351\u0352 ÉCOLE\u0301 E\u0301COLE")),
        ("marks_only", u("\u0301\u0302 x\u0301\u0302 \u0301A")),
        ("greek_cyrillic", u("Ελληνικά ΕΛΛΗΝΙΚΑ Русский ТЕКСТ текст")),
        ("titlecase", u("ǅemal ǈudevit ǋ ǲ ᾈ Dž")),
        ("modifier_letters", u("ʰʲʷ ˈstress ꜰ ʼnot")),
        ("mixed_case", u("HelloWorld camelCase XMLHttpRequest iPhone McDONALD'S ABCdef ABC'S abc'S")),
        ("mixed_script_words", u("abcДЕЖ中文def123ghi")),
        ("fraktur_gothic", u("𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 𝐀𝐁𝐂")),
        ("math", u("∑ x² ≤ ∞, α+β=γ, ∀x∈ℝ")),
        ("code", u("def f(x):\n    return x**2 + 1  # comment\n\nif __name__ == '__main__':\n\tprint(f(3))\n"
                   "int main() { std::vector<int> v{1,2,3}; return v[0]; } // done\n")),
        ("paths_urls", u("path/to/file.txt http://example.com/a/b?c=d&e=f ../../x //y a/b//c/\n/\r\nd!/\n")),
        ("symbols", u("!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} <<< >>> /// \\\\\\ ||| ~~~ `` \"\" ''")),
        ("tabs_code", u("\t\tindented\n    spaces\n\t \t mixed\n")),
        ("unicode_spaces", u("a\u00a0b\u2003c\u3000d\u2028e\u0085f\u200bg\u1680h\u202fi")),
        ("control_chars", u("bell\x07 null\x00 esc\x1b fs\x1c us\x1f del\x7f")),
        ("private_use", u("\ue000\uf8ff \U0010fffd x")),
        ("unseen_chars", u("ꙮ ⸘ 𓂀 ☃")),
        ("repeated", u("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbb the the the the")),
        ("special_llama3", u("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                             "<|start_header_id|>assistant<|end_header_id|>\n\n")),
        ("special_llama2", u("<s>[INST] Hi there [/INST] Hello</s><s> again")),
        ("special_llama4", u("<|begin_of_text|><|header_start|>user<|header_end|>\n\nHi<|eot|>")),
        ("special_mixed", u("text <|eot_id|> more <s> and </s> <sep> <|note|> <|header_start|>x<|header_end|> <|eot|>")),
        ("special_partial", u("<|eot_id| <|eot_id <s <|begin_of_text|>> <<s>>")),
        ("special_at_edges", u("<|eot_id|>x<|eot_id|>")),
        ("user_defined", u("before<sep>after <sep> spaced<sep><sep> <|note|>x<|note|>")),
        ("invalid_lone_ff", b"ab\xffcd"),
        ("invalid_truncated", b"\xe4\xb8 truncated"),
        ("invalid_overlong", b"\xc0\xaf overlong \xe0\x80\xaf"),
        ("invalid_surrogate", b"\xed\xa0\x80 surrogate"),
        ("invalid_too_big", b"\xf4\x90\x80\x80 too big \xf5"),
        ("invalid_lone_trail", b"trail\x80\x80 x\xbf"),
        ("invalid_at_end", "中文".encode("utf-8") + b"\xe6\x96"),
        ("invalid_emoji_cut", b"mix \xf0\x9f\x98 emoji cut \xf0\x9f\x98\x80"),
        ("invalid_between_letters", b"abc\xe4def \xa0ghi"),
    ]
    # A few KB of KJV, as `bible` prints it (chapter headings, verse numbers, wrapped lines).
    start = kjv.index("Psalms 23")
    cases.append(("kjv_long", kjv[start:start + 4500].encode("utf-8")))
    names = [n for n, _ in cases]
    assert len(names) == len(set(names))
    return cases


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def training_lines(kjv, cases):
    extra = []
    for _, b in cases:
        if is_utf8(b) and b and not b.startswith(b"<"):
            extra += b.decode("utf-8").split("\n")
    return kjv.split("\n") + [x for x in extra if x.strip()] * 3


# ----- tokenizers -------------------------------------------------------------------------------

def train_sentencepiece(lines, workdir):
    path = os.path.join(workdir, "train.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    spm.SentencePieceTrainer.train(
        input=path, model_prefix=os.path.join(workdir, "spm"), vocab_size=VOCAB_SIZE, model_type="bpe",
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        split_digits=True, allow_whitespace_only_pieces=True, character_coverage=1.0, num_threads=1,
        user_defined_symbols=["<sep>"], max_sentencepiece_length=16, minloglevel=2)
    proto = spm_pb.ModelProto()
    with open(os.path.join(workdir, "spm.model"), "rb") as f:
        proto.ParseFromString(f.read())
    # The trainer records where it read and wrote (a temporary directory): keep the file reproducible.
    proto.trainer_spec.input[:] = ["kjv+corpus.txt"]
    proto.trainer_spec.model_prefix = "tokenizer"
    return proto.SerializeToString(deterministic=True)


def spm_to_hf_json(model_bytes, workdir):
    """Hugging Face's Llama 2 tokenizer.json for the model: vocab and merges from transformers'
    conversion, laid out like meta-llama/Llama-2-7b-hf's file (legacy normalizer, string merges)."""
    from transformers import LlamaTokenizer
    d = os.path.join(workdir, "hf_spm")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(model_bytes)
    converted = json.loads(LlamaTokenizer.from_pretrained(d).backend_tokenizer.to_str())
    m = converted["model"]
    assert m["type"] == "BPE" and m["byte_fallback"], m["type"]
    merges = [" ".join(x) if isinstance(x, list) else x for x in m["merges"]]
    assert all(len(x.split(" ")) == 2 for x in merges)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": converted["added_tokens"],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": m["vocab"], "merges": merges},
    }


def train_byte_level(lines, pattern, specials, bos):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(lines, trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_tokens([AddedToken("<|note|>", special=False, normalized=False)])
    bos_id = tok.token_to_id(bos)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)])])
    j = json.loads(tok.to_str())
    assert j["model"]["ignore_merges"] is True
    return j


def set_pointer(doc, pointer, value):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = doc
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value


def patched(doc, patch):
    doc = copy.deepcopy(doc)
    for pointer, value in patch.items():
        set_pointer(doc, pointer, value)
    return doc


def dump_compact(doc):
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


# ----- references -------------------------------------------------------------------------------

def splits(pattern, b):
    s = b.decode("utf-8", errors="surrogateescape")
    ends, pos = [], 0
    for piece in regex.findall(pattern, s):
        pos += len(piece.encode("utf-8", errors="surrogateescape"))
        ends.append(pos)
    assert pos == len(b), "the regex must tile the text"
    return ends


def check_splits_against_onig(cases):
    for name, pattern in PATTERNS.items():
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)
        for case, b in cases:
            if not is_utf8(b):
                continue
            s = b.decode("utf-8")
            ours = regex.findall(pattern, s)
            onig = [p for p, _ in split.pre_tokenize_str(s)]
            if ours != onig:
                sys.exit(f"regex and Oniguruma split '{case}' differently with the {name} pattern:\n{ours}\n{onig}")


def hf_reference(tok_json, cases):
    tok = Tokenizer.from_str(dump_compact(tok_json))
    out = {"prefix": tok.encode("", add_special_tokens=True).ids, "encode_special": [], "encode_plain": [],
           "decode": [], "decode_skip": []}
    for _, b in cases:
        if not is_utf8(b):
            for k in ("encode_special", "encode_plain", "decode", "decode_skip"):
                out[k].append(None)
            continue
        s = b.decode("utf-8")
        tok.encode_special_tokens = False
        ids = tok.encode(s, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        plain = tok.encode(s, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        out["encode_special"].append(ids)
        out["encode_plain"].append(plain)
        out["decode"].append(tok.decode(ids, skip_special_tokens=False))
        out["decode_skip"].append(tok.decode(ids, skip_special_tokens=True))
    return out, tok


def random_decodes_hf(tok, n_vocab, rng, count=60):
    """Random id sequences (partial UTF-8, specials in between) and HF's decode of them."""
    out = []
    for _ in range(count):
        ids = [rng.randrange(n_vocab) for _ in range(rng.randint(1, 10))]
        out.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                    "text_skip": tok.decode(ids, skip_special_tokens=True)})
    return out


def random_decodes_spm(sp, model_proto, rng, count=80):
    """Id sequences built to exercise SentencePiece's decoder: byte runs cut short, control tokens,
    <unk>, pieces with and without a leading ▁ at the start; and sp.decode of each."""
    types = [p.type for p in model_proto.pieces]
    pieces = [p.piece for p in model_proto.pieces]
    byte = {int(pieces[i][3:5], 16): i for i in range(len(pieces)) if types[i] == 6}
    normal = [i for i in range(len(pieces)) if types[i] == 1]
    spaced = [i for i in normal if pieces[i].startswith("▁")]
    control = [i for i in range(len(pieces)) if types[i] == 3]
    unk = [i for i in range(len(pieces)) if types[i] == 2]
    user = [i for i in range(len(pieces)) if types[i] == 4]
    utf8_runs = [[byte[x] for x in "中".encode()], [byte[x] for x in "😀".encode()], [byte[0xE4], byte[0xB8]],
                 [byte[0xF0], byte[0x9F], byte[0x98]], [byte[0x80]], [byte[0xFF]], [byte[0xC3]], [byte[0x41]],
                 [byte[0x20]], [byte[0xE2], byte[0x96], byte[0x81]]]
    fixed = [
        [spaced[0]], [spaced[0], spaced[1]], [control[0], spaced[0]], [byte[0xE4], byte[0xB8], byte[0xAD], spaced[0]],
        [byte[0xE4], byte[0xB8], spaced[0]], [byte[0xE4], control[0], byte[0xB8], byte[0xAD]], [unk[0], spaced[0]],
        [pieces.index("▁"), spaced[0]], [pieces.index("▁"), pieces.index("▁")], [byte[0x20], spaced[0]],
        [user[0], spaced[0]], [normal[5], spaced[0]],
    ]
    out = [{"ids": ids, "text": sp.decode(ids)} for ids in fixed]
    pools = [normal, spaced, control, unk, user]
    for _ in range(count):
        ids = []
        for _ in range(rng.randint(1, 8)):
            r = rng.random()
            if r < 0.4:
                ids += rng.choice(utf8_runs)
            else:
                ids.append(rng.choice(rng.choice(pools)))
        out.append({"ids": ids, "text": sp.decode(ids)})
    return out


def main():
    os.makedirs(os.path.join(OUT, "spm"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "llama3"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "llama4"), exist_ok=True)
    kjv = kjv_text()
    cases = corpus(kjv)
    lines = training_lines(kjv, cases)
    check_splits_against_onig(cases)

    golden = {
        "note": "generated by tests/golden/make_tokenizer_golden.py; do not edit",
        "cases": [{"name": n, "text": b.decode("utf-8")} if is_utf8(b) else {"name": n, "hex": b.hex()} for n, b in cases],
        "splits": {name: [splits(p, b) for _, b in cases] for name, p in PATTERNS.items()},
        "tokenizers": {},
    }

    with tempfile.TemporaryDirectory() as work:
        # ----- SentencePiece ---------------------------------------------------------------------
        model_bytes = train_sentencepiece(lines, work)
        with open(os.path.join(OUT, "spm", "tokenizer.model"), "wb") as f:
            f.write(model_bytes)
        proto = spm_pb.ModelProto()
        proto.ParseFromString(model_bytes)
        rng = random.Random(20261126)
        for variant, field, value in [("spm", None, None), ("spm_remove_extra_whitespaces", "remove_extra_whitespaces", True),
                                      ("spm_no_dummy_prefix", "add_dummy_prefix", False)]:
            p = spm_pb.ModelProto()
            p.CopyFrom(proto)
            if field:
                setattr(p.normalizer_spec, field, value)
            sp = spm.SentencePieceProcessor(model_proto=p.SerializeToString())
            ids = [sp.encode(b) for _, b in cases]
            entry = {"source": "spm/tokenizer.model", "vocabulary_patch": {field: value} if field else {},
                     "encode_plain": ids, "decode_skip": [sp.decode(x) for x in ids]}
            if variant == "spm":
                entry["random_decodes"] = random_decodes_spm(sp, p, rng)
            golden["tokenizers"][variant] = entry

        spm_json = spm_to_hf_json(model_bytes, work)
        with open(os.path.join(OUT, "spm", "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(dump_compact(spm_json) + "\n")
        with open(os.path.join(OUT, "spm", "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                       "unk_token": "<unk>", "legacy": True, "tokenizer_class": "LlamaTokenizer",
                       "chat_template": LLAMA2_TEMPLATE}, f, indent=2, ensure_ascii=False)
        # What transformers writes today (legacy=False): no normalizer, a Metaspace pre-tokenizer that
        # prepends "▁" to the first section only. And the same with a Metaspace decoder.
        metaspace_patch = {"/normalizer": None,
                           "/pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}}
        metaspace_decoder_patch = {**metaspace_patch, "/decoder": {"type": "Sequence", "decoders": [
            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
            {"type": "ByteFallback"}, {"type": "Fuse"}]}}
        for variant, patch in [("spm_hf", {}), ("spm_hf_metaspace", metaspace_patch),
                               ("spm_hf_metaspace_decoder", metaspace_decoder_patch)]:
            ref, _ = hf_reference(patched(spm_json, patch), cases)
            golden["tokenizers"][variant] = {"source": "spm/tokenizer.json", "json_patch": patch, **ref}

        # ----- byte-level --------------------------------------------------------------------------
        for name, pattern, specials, config in [
            ("llama3", LLAMA3_PATTERN, LLAMA3_SPECIALS,
             {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA3_TEMPLATE}),
            ("llama4", LLAMA4_PATTERN, LLAMA4_SPECIALS,
             {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot|>", "chat_template": LLAMA4_TEMPLATE}),
        ]:
            tok_json = train_byte_level(lines, pattern, specials, "<|begin_of_text|>")
            with open(os.path.join(OUT, name, "tokenizer.json"), "w", encoding="utf-8") as f:
                f.write(dump_compact(tok_json) + "\n")
            with open(os.path.join(OUT, name, "tokenizer_config.json"), "w", encoding="utf-8") as f:
                json.dump({**config, "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 131072}, f, indent=2,
                          ensure_ascii=False)
            ref, tok = hf_reference(tok_json, cases)
            n_vocab = tok.get_vocab_size(with_added_tokens=True)
            golden["tokenizers"][name] = {"source": f"{name}/tokenizer.json", "json_patch": {}, "pre": name, **ref,
                                          "random_decodes": random_decodes_hf(tok, n_vocab, rng)}
            if name == "llama3":
                # GPT-2's pre-tokenizer (ByteLevel with its own regex) and plain BPE merging, same vocabulary.
                gpt2_patch = {"/pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
                              "/model/ignore_merges": False}
                ref, _ = hf_reference(patched(tok_json, gpt2_patch), cases)
                golden["tokenizers"]["gpt2_pattern"] = {"source": "llama3/tokenizer.json", "json_patch": gpt2_patch, "pre": "gpt2", **ref}

    with open(os.path.join(OUT, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    sizes = {os.path.relpath(os.path.join(d, x), OUT): os.path.getsize(os.path.join(d, x))
             for d, _, files in os.walk(OUT) for x in files}
    print(f"wrote {len(cases)} cases; files: {sizes}; total {sum(sizes.values())} bytes")


if __name__ == "__main__":
    main()
