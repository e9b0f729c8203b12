#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora under fuzz/corpus/ (committed; CI does not run this).

Seeds are small valid inputs, one per way a real file looks, so the fuzzer starts from the
accepting paths of each loader instead of the first check:
  safetensors        tests/data/llama/*/model.safetensors with every axis cut to at most 2 (real
                     names, dtypes, metadata, header padding), plus edge cases: a misaligned tensor
                     (copied by the loader), an empty tensor, no tensors at all
  safetensors_index  shard indexes for fuzz_safetensors_index's fixed two-shard directory
  hf_config          tests/data/llama/*/config.json plus variants (linear RoPE, no head_dim, ...)
  npy                format 1.0 and 2.0 files of float32, float64 and int32, scalar and empty
  gguf               tests/data/gguf/*.gguf, plus small files made here: every metadata value type
                     (nested arrays, strings, bools), tensors of every type weft computes with and
                     one it does not, a 0-d, an empty and a 4-d tensor, alignment 8, a version 2
                     file, and SentencePiece and byte-level tokenizers in tokenizer.ggml.* keys
                     (tests/data/text's vocabularies cut to a few hundred tokens)
  tokenizer_json     tests/data/text/{spm,llama3,llama4}/tokenizer.json cut to a few hundred tokens
                     (ids renumbered, merges kept when all three of their tokens are kept), alone
                     and followed by a NUL and the tokenizer_config.json beside them
  sentencepiece_model  tests/data/text/spm/tokenizer.model cut the same way, and a variant without
                     byte fallback
  tokenize           the texts of tests/data/text/golden.json's corpus (invalid UTF-8 included)

Usage: scripts/make-fuzz-seeds.py   (from anywhere; overwrites the generated files)
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "llama")
OUT = os.path.join(ROOT, "fuzz", "corpus")
DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2}


def write(kind, name, payload):
    os.makedirs(os.path.join(OUT, kind), exist_ok=True)
    mode = "wb" if isinstance(payload, bytes) else "w"
    with open(os.path.join(OUT, kind, name), mode) as f:
        f.write(payload)


def safetensors(entries, metadata=None, align=8):
    """entries: [(name, dtype, shape, data bytes)] in data order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, blob in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % align)
    return struct.pack("<Q", len(text)) + text + data


def shrunk_model(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", None)
    entries = []
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        shape = [min(d, 2) for d in t["shape"]]
        count = 1
        for d in shape:
            count *= d
        begin = 8 + n + t["data_offsets"][0]
        entries.append((name, t["dtype"], shape, raw[begin:begin + count * DTYPE_SIZE[t["dtype"]]]))
    return safetensors(entries, metadata)


def npy(descr, shape, values_bytes, version=1):
    shape_text = "()" if not shape else "(%s,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(map(str, shape))
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    prefix = 10 if version == 1 else 12
    d += " " * ((-(prefix + len(d) + 1)) % 64) + "\n"
    length = struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes([version, 0]) + length + d.encode() + values_bytes


def main():
    models = sorted(m for m in os.listdir(DATA) if os.path.isfile(os.path.join(DATA, m, "model.safetensors")))
    for m in models:
        write("safetensors", m + ".safetensors", shrunk_model(os.path.join(DATA, m, "model.safetensors")))
        write("hf_config", m + ".json", open(os.path.join(DATA, m, "config.json")).read())
    f32 = struct.pack("<3f", 1.0, -2.5, 3.25)
    # "odd" starts 2 bytes into the data area: not 4-byte aligned, so the loader copies it.
    write("safetensors", "misaligned.safetensors",
          safetensors([("half", "F16", [1], b"\x00\x3c"), ("odd", "F32", [3], f32)], {"format": "pt"}))
    write("safetensors", "empty-tensor.safetensors",
          safetensors([("empty", "BF16", [0, 4], b""), ("x", "F32", [1, 3], f32)], {"format": "pt", "note": "é"}))
    write("safetensors", "no-tensors.safetensors", safetensors([], {}))

    shards = {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
              "c": "model-00002-of-00002.safetensors"}
    write("safetensors_index", "two-shards.json",
          json.dumps({"metadata": {"total_size": 24}, "weight_map": shards}, indent=2))
    write("safetensors_index", "one-shard.json", json.dumps({"weight_map": {"c": shards["c"]}}))

    base = json.loads(open(os.path.join(DATA, models[0], "config.json")).read())
    variants = {
        "linear-rope.json": dict(base, rope_scaling={"type": "linear", "factor": 2.0}),
        "minimal.json": {k: base[k] for k in ("vocab_size", "hidden_size", "intermediate_size",
                                              "num_hidden_layers", "num_attention_heads")},
        "nulls.json": dict(base, rope_scaling=None, bos_token_id=None, eos_token_id=None, head_dim=None,
                           num_key_value_heads=None, dtype="float16"),
    }
    for name, cfg in variants.items():
        write("hf_config", name, json.dumps(cfg, indent=2))

    write("npy", "f4-2x3.npy", npy("<f4", [2, 3], struct.pack("<6f", *range(6))))
    write("npy", "f8-3.npy", npy("<f8", [3], struct.pack("<3d", 0.5, -1.0, 2.0)))
    write("npy", "i4-scalar.npy", npy("<i4", [], struct.pack("<i", 128000)))
    write("npy", "f4-empty-v2.npy", npy("<f4", [0, 5], b"", version=2))


# ---- GGUF --------------------------------------------------------------------------------------

TEXT = os.path.join(ROOT, "tests", "data", "text")
GGUF_TYPE = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "string": 8,
             "array": 9, "u64": 10, "i64": 11, "f64": 12}
GGUF_FMT = {"u8": "<B", "i8": "<b", "u16": "<H", "i16": "<h", "u32": "<I", "i32": "<i", "f32": "<f", "bool": "<?",
            "u64": "<Q", "i64": "<q", "f64": "<d"}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(kind, value):
    """(type id, payload) of a scalar or string."""
    if kind == "string":
        return GGUF_TYPE["string"], gstr(value)
    return GGUF_TYPE[kind], struct.pack(GGUF_FMT[kind], value)


def garr(kind, values):
    """(type id, payload) of an array; kind "array" takes (type, payload) pairs of inner arrays."""
    if kind == "array":
        return GGUF_TYPE["array"], struct.pack("<IQ", GGUF_TYPE["array"], len(values)) + b"".join(p for _, p in values)
    return GGUF_TYPE["array"], struct.pack("<IQ", GGUF_TYPE[kind], len(values)) + b"".join(gval(kind, v)[1] for v in values)


def gguf(kvs, tensors=(), version=3, alignment=32):
    """kvs: [(key, (type id, payload))]; tensors: [(name, ggml type, dims in ggml order, data)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, (t, payload) in kvs:
        out += gstr(key) + struct.pack("<I", t) + payload
    offset, data = 0, b""
    for name, ggml_type, dims, blob in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
        blob += b"\0" * ((-len(blob)) % alignment)
        data += blob
        offset += len(blob)
    out += b"\0" * ((-len(out)) % alignment)
    return out + data


# ---- SentencePiece tokenizer.model (protobuf) ----------------------------------------------------

def varint(value):
    out = b""
    while True:
        b = value & 0x7F
        value >>= 7
        out += bytes([b | (0x80 if value else 0)])
        if not value:
            return out


def proto_fields(buf):
    """[(field, wire type, value)] of a protobuf message (wire types 0, 1, 2, 5)."""
    i, out = 0, []

    def read_varint():
        nonlocal i
        v = shift = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while i < len(buf):
        key = read_varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = read_varint()
        elif wire == 2:
            n = read_varint()
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        else:
            raise ValueError("wire type %d" % wire)
        out.append((field, wire, value))
    return out


def proto(fields):
    out = b""
    for field, wire, value in fields:
        out += varint(field << 3 | wire)
        if wire == 0:
            out += varint(value)
        elif wire == 2:
            out += varint(len(value)) + value
        else:
            out += value
    return out


def spm_pieces():
    """The pieces of tests/data/text/spm/tokenizer.model as (text, score, type), and its other fields."""
    fields = proto_fields(open(os.path.join(TEXT, "spm", "tokenizer.model"), "rb").read())
    pieces = []
    for field, _, value in fields:
        if field == 1:
            p = {f: v for f, _, v in proto_fields(value)}
            pieces.append((p[1], struct.unpack("<f", p.get(2, b"\0\0\0\0"))[0], p.get(3, 1)))
    return pieces, [f for f in fields if f[0] != 1]


def spm_kept_ids(pieces, merged=60):
    """Specials and byte pieces, the first `merged` merged pieces, and the single ASCII characters."""
    keep = [i for i, (_, _, t) in enumerate(pieces) if t != 1]
    normal = [i for i, (_, _, t) in enumerate(pieces) if t == 1]
    keep += normal[:merged]
    keep += [i for i in normal[merged:] if len(pieces[i][0].decode("utf-8", "replace")) == 1 and
             (pieces[i][0] == "\u2581".encode() or pieces[i][0].isascii())]
    return sorted(set(keep))


def spm_model(byte_fallback=True):
    pieces, others = spm_pieces()
    keep = spm_kept_ids(pieces)
    if not byte_fallback:
        keep = [i for i in keep if pieces[i][2] != 6]
    fields = []
    for i in keep:
        text, score, kind = pieces[i]
        p = [(1, 2, text), (2, 5, struct.pack("<f", score))]
        if kind != 1:
            p.append((3, 0, kind))
        fields.append((1, 2, proto(p)))
    for field, wire, value in others:
        if field == 2 and not byte_fallback:  # trainer_spec: byte_fallback (35) off
            value = proto([(f, w, 0 if f == 35 else v) for f, w, v in proto_fields(value)])
        fields.append((field, wire, value))
    return proto(fields)


# ---- tokenizer.json ------------------------------------------------------------------------------

def merge_pair(m):
    """A merge as a pair: ["a", "b"], or "a b" split at the first space after the first character."""
    if isinstance(m, list):
        return tuple(m)
    space = m.find(" ", 1)
    return m[:space], m[space + 1:]


def shrunk_tokenizer_json(variant, keep_ids=None, merges=150):
    """tests/data/text/<variant>/tokenizer.json with a small vocabulary, ids renumbered from 0."""
    doc = json.load(open(os.path.join(TEXT, variant, "tokenizer.json"), encoding="utf-8"))
    vocab = doc["model"]["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    if keep_ids is None:  # byte-level: the 256-character alphabet, then what the first merges make
        kept = {by_id[i] for i in range(256)}
        for m in doc["model"]["merges"]:
            a, b = merge_pair(m)
            if a in kept and b in kept and len(kept) < 256 + merges:
                kept.add(a + b)
    else:
        kept = {by_id[i] for i in keep_ids}
    added = {a["content"] for a in doc["added_tokens"]}
    order = sorted((i for i, t in by_id.items() if t in kept or t in added))
    renumber = {old: new for new, old in enumerate(order)}
    doc["model"]["vocab"] = {by_id[i]: renumber[i] for i in order if by_id[i] in vocab and vocab[by_id[i]] == i}
    next_id = len(doc["model"]["vocab"])
    for a in doc["added_tokens"]:
        if a["id"] in renumber:
            a["id"] = renumber[a["id"]]
        else:
            a["id"], next_id = next_id, next_id + 1
    doc["model"]["merges"] = [m for m in doc["model"]["merges"]
                              if all(x in doc["model"]["vocab"] for x in (*merge_pair(m), "".join(merge_pair(m))))]
    if doc.get("post_processor"):
        ids = {a["content"]: a["id"] for a in doc["added_tokens"]}
        for proc in [doc["post_processor"]] + doc["post_processor"].get("processors", []):
            for name, entry in proc.get("special_tokens", {}).items():
                entry["ids"] = [ids[t] for t in entry.get("tokens", [name])]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def byte_level_vocab_kvs(tokenizer_json_text, pre):
    """The tokenizer.ggml.* keys of a byte-level tokenizer.json, as llama.cpp's converter writes them."""
    doc = json.loads(tokenizer_json_text)
    by_id = {i: t for t, i in doc["model"]["vocab"].items()}
    types = {i: 1 for i in by_id}
    for a in doc["added_tokens"]:
        by_id[a["id"]] = a["content"]
        types[a["id"]] = 3 if a["special"] else 4
    tokens = [by_id[i] for i in range(len(by_id))]
    bos = tokens.index("<|begin_of_text|>")
    return [
        ("tokenizer.ggml.model", gval("string", "gpt2")),
        ("tokenizer.ggml.pre", gval("string", pre)),
        ("tokenizer.ggml.tokens", garr("string", tokens)),
        ("tokenizer.ggml.token_type", garr("i32", [types[i] for i in range(len(tokens))])),
        ("tokenizer.ggml.merges", garr("string", [" ".join(merge_pair(m)) for m in doc["model"]["merges"]])),
        ("tokenizer.ggml.bos_token_id", gval("u32", bos)),
        ("tokenizer.ggml.eos_token_id", gval("u32", tokens.index("<|end_of_text|>"))),
        ("tokenizer.ggml.padding_token_id", gval("u32", 0xFFFFFFFF)),
        ("tokenizer.ggml.add_bos_token", gval("bool", True)),
    ]


def spm_vocab_kvs():
    pieces, _ = spm_pieces()
    keep = spm_kept_ids(pieces, merged=30)
    return [
        ("tokenizer.ggml.model", gval("string", "llama")),
        ("tokenizer.ggml.tokens", garr("string", [pieces[i][0] for i in keep])),
        ("tokenizer.ggml.scores", garr("f32", [pieces[i][1] for i in keep])),
        ("tokenizer.ggml.token_type", garr("i32", [pieces[i][2] for i in keep])),
        ("tokenizer.ggml.bos_token_id", gval("u32", 1)),
        ("tokenizer.ggml.eos_token_id", gval("u32", 2)),
        ("tokenizer.ggml.unknown_token_id", gval("u32", 0)),
        ("tokenizer.ggml.add_bos_token", gval("bool", True)),
        ("tokenizer.ggml.add_space_prefix", gval("bool", True)),
        ("tokenizer.chat_template", gval("string", "{{ bos_token }}{{ messages[0]['content'] }}")),
    ]


def gguf_seeds():
    for name in sorted(os.listdir(os.path.join(ROOT, "tests", "data", "gguf"))):
        write("gguf", name, open(os.path.join(ROOT, "tests", "data", "gguf", name), "rb").read())
    arch = ("general.architecture", gval("string", "llama"))
    every_type = [
        arch,
        ("general.alignment", gval("u32", 8)),
        ("t.u8", gval("u8", 255)), ("t.i8", gval("i8", -128)), ("t.u16", gval("u16", 65535)),
        ("t.i16", gval("i16", -32768)), ("t.u32", gval("u32", 4294967295)), ("t.i32", gval("i32", -1)),
        ("t.f32", gval("f32", 1.5)), ("t.bool", gval("bool", True)), ("t.string", gval("string", "h\u00e9llo")),
        ("t.u64", gval("u64", 2 ** 64 - 1)), ("t.i64", gval("i64", -2 ** 63)), ("t.f64", gval("f64", -0.25)),
        ("t.empty_string", gval("string", "")),
        ("t.bools", garr("bool", [True, False, True])),
        ("t.strings", garr("string", ["a", "", "\u2581b"])),
        ("t.empty_array", garr("f32", [])),
        ("t.nested", garr("array", [garr("i16", [1, -2]), garr("string", ["x"]), garr("array", [garr("u8", [7])])])),
        ("llama.context_length", gval("u32", 64)),
        ("llama.rope.freq_base", gval("f32", 10000.0)),
    ]
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    tensors = [
        ("f32", 0, [4], f32),
        ("f16", 1, [2, 2], struct.pack("<4e", 1.0, -2.0, 0.5, 3.0)),
        ("bf16", 30, [2], b"\x80\x3f\x00\xc0"),
        ("q8_0", 8, [32], b"\x00\x3c" + bytes(range(32))),
        ("q4_0", 2, [32], b"\x00\x3c" + bytes(range(16))),
        ("q4_k", 12, [256], bytes(144)),
        ("q6_k", 14, [256], bytes(210)),
        ("i8", 24, [3], b"\x01\xff\x02"),
        ("i32", 26, [1], struct.pack("<i", -7)),
        ("f64", 28, [1], struct.pack("<d", 2.5)),
        ("q4_1", 3, [32], bytes(20)),  # weft validates but does not compute with Q4_1
        ("scalar", 0, [], struct.pack("<f", 4.0)),
        ("empty", 0, [0, 3], b""),
        ("four_d", 0, [1, 2, 1, 2], f32),
    ]
    write("gguf", "every-type.gguf", gguf(every_type, tensors, alignment=8))
    write("gguf", "v2-metadata-only.gguf", gguf([arch, ("general.name", gval("string", "v2"))], version=2))
    write("gguf", "no-metadata.gguf", gguf([], [("x", 0, [2], f32[:8])]))
    one = [("token_embd.weight", 0, [1], struct.pack("<f", 1.0))]
    write("gguf", "tokenizer-spm.gguf", gguf([arch] + spm_vocab_kvs(), one))
    bpe = shrunk_tokenizer_json("llama3", merges=40)
    write("gguf", "tokenizer-llama3.gguf", gguf([arch] + byte_level_vocab_kvs(bpe, "llama-bpe"), one))


def tokenizer_seeds():
    pieces, _ = spm_pieces()
    spm_json = shrunk_tokenizer_json("spm", keep_ids=spm_kept_ids(pieces))
    files = {"spm": spm_json, "llama3": shrunk_tokenizer_json("llama3"), "llama4": shrunk_tokenizer_json("llama4")}
    for variant, text in files.items():
        write("tokenizer_json", variant + ".json", text.encode())
        config = open(os.path.join(TEXT, variant, "tokenizer_config.json"), "rb").read()
        write("tokenizer_json", variant + "+config.json", text.encode() + b"\0" + config)
    write("sentencepiece_model", "spm-byte-fallback.model", spm_model())
    write("sentencepiece_model", "spm-no-byte-fallback.model", spm_model(byte_fallback=False))
    golden = json.load(open(os.path.join(TEXT, "golden.json"), encoding="utf-8"))
    for case in golden["cases"]:
        text = case["text"].encode() if "text" in case else bytes.fromhex(case["hex"])
        write("tokenize", case["name"] + ".txt", text)


if __name__ == "__main__":
    main()
    gguf_seeds()
    tokenizer_seeds()
