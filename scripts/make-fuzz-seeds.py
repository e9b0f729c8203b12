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
    models = sorted(os.listdir(DATA))
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


if __name__ == "__main__":
    main()
