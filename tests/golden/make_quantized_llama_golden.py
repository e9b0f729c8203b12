#!/usr/bin/python3
"""Float64 reference logits of a Llama whose matrices are Q8_0 / Q4_0 quantized.

    python3 tests/golden/make_quantized_llama_golden.py      (needs: pip install gguf)

For tests/data/llama/gqa-f32-llama3 and each of Q8_0 and Q4_0, every matrix (embedding and
output head included: weft-quantize's `--pure` recipe) is quantized and dequantized with
llama.cpp's own gguf-py (whose Q8_0 / Q4_0 quantizers are byte-identical to ggml's C, and to
weft's: tests/quant/test_quantize.cpp), then the float64 reference of make_llama_golden.py runs on
the dequantized weights. Writes tests/data/llama/quantized/<type>-logits.npy, float64 [T, vocab].
Row permutations (GGUF's interleaved Q/K order) move whole rows, so they do not change the blocks.
"""
import os
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType, quants

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_llama_golden as golden  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(ROOT, "tests", "data", "llama", "gqa-f32-llama3")
OUT = os.path.join(ROOT, "tests", "data", "llama", "quantized")


def main():
    import json
    with open(os.path.join(MODEL, "config.json")) as f:
        config = json.load(f)
    weights = golden.read_safetensors(os.path.join(MODEL, "model.safetensors"))
    with open(os.path.join(MODEL, "tokens.txt")) as f:
        tokens = [int(t) for t in f.read().replace(",", " ").split()]
    os.makedirs(OUT, exist_ok=True)
    for name, qtype in (("q8_0", GGMLQuantizationType.Q8_0), ("q4_0", GGMLQuantizationType.Q4_0)):
        deq = {}
        for k, v in weights.items():
            a = v.to(torch.float32).numpy()
            if a.ndim == 2:
                a = quants.dequantize(quants.quantize(a, qtype), qtype).reshape(a.shape)
            deq[k] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        logits = golden.reference_logits(config, deq, tokens).numpy()
        np.save(os.path.join(OUT, name + "-logits.npy"), logits)
        full = golden.reference_logits(config, weights, tokens).numpy()
        rel = np.linalg.norm(logits - full, axis=1) / np.linalg.norm(full, axis=1)
        print(f"{name}: logits {logits.shape}, quantization moves them by {rel.max():.3e} (max per-position relative L2)")


if __name__ == "__main__":
    main()
