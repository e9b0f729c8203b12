#!/usr/bin/env python3
"""Write the GGUF reference files with llama.cpp's own Python GGUF library (gguf-py), so weft's
reader and writer are checked against an implementation that is not weft's.

    python3 -m pip install gguf numpy        # gguf-py (PyPI "gguf"); 0.19.0 made the committed files
    python3 tests/golden/make_gguf_reference.py

writes, deterministically (seeded numpy; gguf-py's writer has no timestamps):

  tests/data/gguf/reference.gguf   general.architecture "weft-test"; one metadata key per GGUF value
                                   type, arrays of each, arrays of arrays (depth 2 and 3), a string
                                   that is not UTF-8; tensors F32, F16, BF16, Q8_0, Q4_0 (quantized
                                   by gguf-py from the F32 "<type>.source" tensors, with gguf-py's
                                   dequantization as "<type>.dequant"), Q4_K / Q5_K / Q6_K (random
                                   blocks with sane scales, and their "<type>.dequant"), Q2_K and
                                   IQ4_NL (types weft does not compute), I8, I16, I32, I64, F64.
  tests/data/gguf/align64.gguf     general.alignment 64 (gguf-py's add_custom_alignment), two tensors.

tests/io/test_gguf.cpp reads both, and rewrites reference.gguf with gguf::Writer byte for byte.

The other direction — gguf-py reading files weft wrote — is checked by hand (not in CI, which has
no gguf-py):

    python3 tests/golden/make_gguf_reference.py --verify FILE.gguf [HF_DIR]

parses FILE with gguf-py's GGUFReader and prints every key and tensor; given the Hugging Face
directory FILE was converted from, it also checks every tensor against the safetensors original,
permuting Q and K rows as llama.cpp's convert_hf_to_gguf.py (LlamaModel.permute) does.
Last run (gguf 0.19.0): the five tests/data/llama models converted with
weft::gguf::convert_hf_to_gguf (f32/f16/bf16 as stored, and gqa-f32-llama3 as F16) all read and
match, and so does the file of test_gguf.cpp's Writer round trip.
"""

import json
import os
import struct
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as T

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "tests", "data", "gguf")


def f16_bits(x):
    return np.array([x], dtype=np.float16).view(np.uint16)[0]


def random_k_blocks(rng, qtype, n_blocks):
    """Random K-quant blocks whose f16 scales are small normal numbers (not NaN/inf)."""
    block_size, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for b in range(n_blocks):
        d = np.array([rng.uniform(0.001, 0.01), rng.uniform(0.001, 0.01)], dtype=np.float16).view(np.uint8)
        if qtype == Q.Q6_K:
            raw[b, block_bytes - 2:] = d[:2]          # ql, qh, scales, then d
        else:
            raw[b, 0:4] = d                           # d, dmin first
    return raw


def build_reference(path):
    rng = np.random.default_rng(20251126)
    w = gguf.GGUFWriter(path, "weft-test")   # general.architecture comes first

    # One key per value type, extreme values where the type has them.
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 3.25)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "h\u00e9llo, w\u00f6rld \u2713")
    w.add_key_value("test.string_not_utf8", b"\xff\xfe bytes \x00 kept", T.STRING)
    w.add_key_value("test.string_empty", "", T.STRING)   # add_string skips empty strings
    w.add_uint64("test.u64", 2**64 - 1)
    w.add_int64("test.i64", -2**63)
    w.add_float64("test.f64", 0.1)

    # Arrays of every scalar type, and of strings.
    w.add_key_value("test.array_u8", [0, 1, 255], T.ARRAY, sub_type=T.UINT8)
    w.add_key_value("test.array_i8", [-128, 0, 127], T.ARRAY, sub_type=T.INT8)
    w.add_key_value("test.array_u16", [0, 65535], T.ARRAY, sub_type=T.UINT16)
    w.add_key_value("test.array_i16", [-32768, 32767], T.ARRAY, sub_type=T.INT16)
    w.add_key_value("test.array_u32", [0, 4294967295], T.ARRAY, sub_type=T.UINT32)
    w.add_key_value("test.array_i32", [-2147483648, 2147483647, 5], T.ARRAY, sub_type=T.INT32)
    w.add_key_value("test.array_f32", [1.5, -2.25, 1e-3], T.ARRAY, sub_type=T.FLOAT32)
    w.add_key_value("test.array_bool", [True, False, True], T.ARRAY, sub_type=T.BOOL)
    w.add_key_value("test.array_u64", [0, 2**64 - 1], T.ARRAY, sub_type=T.UINT64)
    w.add_key_value("test.array_i64", [-2**63, 2**63 - 1], T.ARRAY, sub_type=T.INT64)
    w.add_key_value("test.array_f64", [0.1, -1e300], T.ARRAY, sub_type=T.FLOAT64)
    w.add_array("test.array_string", ["a", "", "\u00fcml\u00e4ut", "<|end_of_text|>"])
    # Arrays of arrays: ints (inferred as i32 by gguf-py), strings, and f32 three deep.
    w.add_array("test.nested_i32", [[1, 2, 3], [4, 5]])
    w.add_array("test.nested_string", [["a", "bc"], ["d"]])
    w.add_array("test.nested3_f32", [[[1.5]], [[2.5, 3.5], [4.5]]])

    # Tensors. numpy shapes are PyTorch order; gguf-py reverses them into GGUF's dims.
    w.add_tensor("f32.matrix", (np.arange(15, dtype=np.float32).reshape(3, 5) * 0.25 - 1))
    w.add_tensor("f16.vector", np.array([1.0, -2.5, 0.099976, 65504.0, -0.0, 6e-8, 3.0, 0.5], dtype=np.float16))
    bf16_values = np.array([[1.0, -7.0, 3e38, 0.5], [-0.0, 2.0**-130, 1.25, -3.5]], dtype=np.float32)
    w.add_tensor("bf16.matrix", (bf16_values.view(np.uint32) >> 16).astype(np.uint16), raw_dtype=Q.BF16)
    for qtype, name in ((Q.Q8_0, "q8_0"), (Q.Q4_0, "q4_0")):
        source = (rng.standard_normal((2, 64)) * np.array([[1.0], [0.01]])).astype(np.float32)
        packed = gguf.quants.quantize(source, qtype)
        w.add_tensor(name + ".source", source)
        w.add_tensor(name + ".matrix", packed, raw_dtype=qtype)
        w.add_tensor(name + ".dequant", gguf.quants.dequantize(packed, qtype).astype(np.float32))
    for qtype, name in ((Q.Q4_K, "q4_k"), (Q.Q5_K, "q5_k"), (Q.Q6_K, "q6_k")):
        packed = random_k_blocks(rng, qtype, 2).reshape(1, -1)   # one row of 512 values
        w.add_tensor(name + ".matrix", packed, raw_dtype=qtype)
        w.add_tensor(name + ".dequant", gguf.quants.dequantize(packed, qtype).astype(np.float32))
    w.add_tensor("q2_k.raw", rng.integers(0, 256, size=(1, 84), dtype=np.uint8), raw_dtype=Q.Q2_K)
    w.add_tensor("iq4_nl.raw", rng.integers(0, 256, size=(2, 18), dtype=np.uint8), raw_dtype=Q.IQ4_NL)
    w.add_tensor("i8.vector", np.array([-128, -1, 0, 1, 2, 127], dtype=np.int8))
    w.add_tensor("i16.vector", np.array([-32768, 7, 32767], dtype=np.int16))
    w.add_tensor("i32.matrix", np.array([[1, -2, 3], [2147483647, -2147483648, 0]], dtype=np.int32))
    w.add_tensor("i64.vector", np.array([-2**63, 2**63 - 1], dtype=np.int64))
    w.add_tensor("f64.vector", np.array([0.1, -2.5, 1e300], dtype=np.float64))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build_align64(path):
    w = gguf.GGUFWriter(path, "weft-test")
    w.add_custom_alignment(64)
    w.add_tensor("a", np.array([1.0, 2.0, 3.0], dtype=np.float32))
    w.add_tensor("b", np.array([[4.0, 5.0], [6.0, 7.0]], dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- the other direction: gguf-py reads a file weft wrote ---------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = np.frombuffer(data[b:end], dtype=np.uint8)
        if e["dtype"] == "F32":
            a = raw.view(np.float32)
        elif e["dtype"] == "F16":
            a = raw.view(np.float16).astype(np.float32)
        elif e["dtype"] == "BF16":
            a = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(e["dtype"])
        out[name] = (a.reshape(e["shape"]), e["dtype"])
    return out


def llama_cpp_permute(weights, n_head, n_head_kv):
    # convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def hf_name(gguf_name):
    table = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    if gguf_name in table:
        return table[gguf_name]
    parts = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    _, layer, part, suffix = gguf_name.split(".")
    return f"model.layers.{layer}.{parts[part]}.{suffix}"


def verify(path, hf_dir=None):
    r = gguf.GGUFReader(path)
    for field in r.fields.values():
        if field.types and field.types[0] == T.ARRAY and len(field.data) > 8:
            print(f"  {field.name}: array of {len(field.data)}")
        else:
            try:
                shown = repr(field.contents())
            except UnicodeDecodeError:  # gguf-py decodes strings as UTF-8; show the bytes instead
                shown = repr(field.parts[-1].tobytes())
            print(f"  {field.name}: {shown}")
    for t in r.tensors:
        print(f"  tensor {t.name}: {t.tensor_type.name} dims {list(t.shape)} at {t.data_offset}")
    if hf_dir is None:
        return
    with open(os.path.join(hf_dir, "config.json")) as f:
        config = json.load(f)
    n_head, n_kv = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    weights = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    checked = 0
    for t in r.tensors:
        if t.name == "rope_freqs.weight":
            continue
        want, stored = weights[hf_name(t.name)]
        if ".attn_q." in t.name:
            want = llama_cpp_permute(want, n_head, n_head)
        elif ".attn_k." in t.name:
            want = llama_cpp_permute(want, n_head, n_kv)
        got = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(want.shape)
        # Exact when the type is kept or widened to F32; else within half a unit in the last place.
        exact = t.tensor_type == Q.F32 or t.tensor_type.name == stored
        tol = 0 if exact else {Q.F16: 2.0**-11, Q.BF16: 2.0**-8}.get(t.tensor_type, 1e-2)
        err = np.max(np.abs(got - want) / np.maximum(np.abs(want), 2.0**-14)) if want.size else 0
        assert err <= tol, f"{t.name}: max relative error {err}"
        checked += 1
    print(f"  {checked} tensors match {hf_dir} (Q/K permuted as llama.cpp does)")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--verify":
        verify(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
        return
    os.makedirs(OUT_DIR, exist_ok=True)
    build_reference(os.path.join(OUT_DIR, "reference.gguf"))
    build_align64(os.path.join(OUT_DIR, "align64.gguf"))
    for name in ("reference.gguf", "align64.gguf"):
        print(name, os.path.getsize(os.path.join(OUT_DIR, name)), "bytes")
        verify(os.path.join(OUT_DIR, name))


if __name__ == "__main__":
    main()
