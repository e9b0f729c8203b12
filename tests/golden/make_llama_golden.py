#!/usr/bin/python3
"""Generate the golden Llama test models and their float64 reference logits.

Run from the repository root with Debian's Python (torch + numpy):

    /usr/bin/python3 tests/golden/make_llama_golden.py

For each variant it writes tests/data/llama/<variant>/ containing
  config.json        Hugging Face LlamaForCausalLM config
  model.safetensors  weights (F32 / BF16 / F16), HF tensor names
  tokens.txt         the prompt: T = 19 comma-separated token ids
  logits.npy         float64 [T, vocab]: reference logits at every prompt position
  greedy.txt         8 comma-separated ids: greedy continuation of the prompt

The reference (reference_logits) follows transformers' modeling_llama semantics,
re-implemented here with plain torch float64 ops; it is computed from the weights
AS STORED (bf16/f16 values upcast exactly to float64).

Everything is deterministic: numpy's legacy RandomState (a frozen stream) seeds
weights and prompts; the only search is over seed offsets until every greedy step
has a top-1/top-2 logit margin of at least MIN_MARGIN, so an f32 implementation
cannot flip an argmax by rounding.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "tests", "data", "llama")

T_PROMPT = 19
N_GREEDY = 8
MIN_MARGIN = 0.1  # absolute logit gap between top-1 and top-2 at each greedy step

# ----------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}


def _base_config():
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 263,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "hidden_act": "silu",
        "rope_theta": 500000.0,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


def _variant_configs():
    a = _base_config()
    a.update({
        "num_attention_heads": 12,
        "num_key_value_heads": 3,
        "head_dim": 80,
        "rms_norm_eps": 1e-6,
        "rope_scaling": dict(LLAMA3_SCALING),
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
        "eos_token_id": [2, 3],
        "torch_dtype": "float32",
    })
    b = _base_config()
    b.update({
        "num_attention_heads": 12,
        "num_key_value_heads": 3,
        "head_dim": 80,
        # rms_norm_eps deliberately omitted: HF default 1e-6
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    })
    c = dict(a, torch_dtype="bfloat16", rope_scaling=dict(LLAMA3_SCALING))
    d = dict(b, torch_dtype="float16")
    e = _base_config()
    e.update({
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        # no head_dim key: hidden_size / num_attention_heads = 16
        "attention_bias": True,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": {"type": "linear", "factor": 2.0},
        "max_position_embeddings": 256,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    })
    return {
        "gqa-f32-llama3": a,
        "gqa-f32-tied": b,
        "gqa-bf16-llama3": c,
        "gqa-f16-tied": d,
        "mha-bias-f32": e,
    }


# Variants in one family share the master (float32) weights and the prompt;
# the lower-precision member stores them rounded to nearest-even.
#
# residual_gain multiplies o_proj and down_proj (the residual branches). With a
# tied head and N(0, 1) embeddings, the input token's own embedding dominates the
# residual stream and greedy decoding just repeats the last prompt token; a gain
# of 6 lets attention/MLP steer the prediction (residual stream stays ~O(10)).
FAMILIES = [
    # (base seed, residual_gain, variants)
    (1000, 1.0, ["gqa-f32-llama3", "gqa-bf16-llama3"]),
    (2000, 6.0, ["gqa-f32-tied", "gqa-f16-tied"]),
    (3000, 1.0, ["mha-bias-f32"]),
]
MIN_DISTINCT_GREEDY = 4  # greedy continuation must not be a trivial repetition

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}

# ----------------------------------------------------------------------------
# Config helpers (HF defaults)
# ----------------------------------------------------------------------------


def head_dim_of(cfg):
    hd = cfg.get("head_dim")
    return hd if hd is not None else cfg["hidden_size"] // cfg["num_attention_heads"]


def n_kv_heads_of(cfg):
    kv = cfg.get("num_key_value_heads")
    return kv if kv is not None else cfg["num_attention_heads"]


def eps_of(cfg):
    return cfg.get("rms_norm_eps", 1e-6)


# ----------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------


def make_master_weights(cfg, rng, residual_gain=1.0):
    """float32 master weights with HF names, in file order."""
    V, D, F = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    H, KV, hd = cfg["num_attention_heads"], n_kv_heads_of(cfg), head_dim_of(cfg)

    def lin(out_f, in_f):  # N(0, 1/fan_in)
        return rng.standard_normal((out_f, in_f)) / math.sqrt(in_f)

    def norm(n):
        return 1.0 + 0.1 * rng.standard_normal(n)

    def bias(n):
        return 0.1 * rng.standard_normal(n)

    w = {}
    w["model.embed_tokens.weight"] = rng.standard_normal((V, D))
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(D)
        w[p + "self_attn.q_proj.weight"] = lin(H * hd, D)
        w[p + "self_attn.k_proj.weight"] = lin(KV * hd, D)
        w[p + "self_attn.v_proj.weight"] = lin(KV * hd, D)
        w[p + "self_attn.o_proj.weight"] = residual_gain * lin(D, H * hd)
        if cfg.get("attention_bias", False):
            w[p + "self_attn.q_proj.bias"] = bias(H * hd)
            w[p + "self_attn.k_proj.bias"] = bias(KV * hd)
            w[p + "self_attn.v_proj.bias"] = bias(KV * hd)
            w[p + "self_attn.o_proj.bias"] = bias(D)
        w[p + "post_attention_layernorm.weight"] = norm(D)
        w[p + "mlp.gate_proj.weight"] = lin(F, D)
        w[p + "mlp.up_proj.weight"] = lin(F, D)
        w[p + "mlp.down_proj.weight"] = residual_gain * lin(D, F)
    w["model.norm.weight"] = norm(D)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = lin(V, D)
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in w.items()}


def to_stored(master, cfg):
    """Round master float32 weights to the variant's storage dtype (round-to-nearest-even)."""
    dt = TORCH_DTYPES[cfg["torch_dtype"]]
    return {k: v.to(dt).contiguous() for k, v in master.items()}


# ----------------------------------------------------------------------------
# safetensors writer
# ----------------------------------------------------------------------------


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        if t.dtype in (torch.bfloat16, torch.float16):
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        elif t.dtype == torch.float32:
            raw = t.numpy().astype("<f4").tobytes()
        else:
            raise ValueError(t.dtype)
        assert len(raw) == t.numel() * t.element_size()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    """Independent reader used to check the writer round-trips."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buf = data[8 + n:]
    np_dt = {"F32": "<f4", "BF16": "<u2", "F16": "<f2"}
    out, spans = {}, []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        spans.append((b, en))
        a = np.frombuffer(buf[b:en], dtype=np_dt[e["dtype"]]).reshape(e["shape"])
        if e["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(a.astype(np.float64))
    spans.sort()
    pos = 0
    for b, en in spans:
        assert b == pos, "hole or overlap in safetensors data"
        pos = en
    assert pos == len(buf), "data does not end at end of file"
    return out


# ----------------------------------------------------------------------------
# float64 reference (HF modeling_llama semantics)
# ----------------------------------------------------------------------------


def rope_inv_freq(cfg):
    """inv_freq [d/2] in float64, with HF rope_scaling applied."""
    d = head_dim_of(cfg)
    theta = float(cfg.get("rope_theta", 10000.0))
    j = torch.arange(0, d // 2, dtype=torch.float64)
    inv_freq = theta ** (-(2.0 * j) / d)                       # [d/2]
    rs = cfg.get("rope_scaling")
    if rs is None:
        return inv_freq
    rope_type = rs.get("rope_type", rs.get("type", "default"))
    if rope_type == "default":
        return inv_freq
    if rope_type == "linear":
        return inv_freq / float(rs["factor"])
    if rope_type == "llama3":
        factor = float(rs["factor"])
        low = float(rs.get("low_freq_factor", 1.0))
        high = float(rs.get("high_freq_factor", 4.0))
        L0 = float(rs["original_max_position_embeddings"])
        lam_lo = L0 / low                                      # wavelengths above: divided by factor
        lam_hi = L0 / high                                     # wavelengths below: kept
        out = torch.empty_like(inv_freq)
        for k in range(inv_freq.numel()):
            f = inv_freq[k].item()
            lam = 2.0 * math.pi / f
            if lam < lam_hi:                                   # high frequency: keep
                out[k] = f
            elif lam > lam_lo:                                 # low frequency: divide
                out[k] = f / factor
            else:                                              # medium: interpolate
                if high == low:
                    s = 1.0 if lam <= lam_hi else 0.0
                else:
                    s = (L0 / lam - low) / (high - low)
                out[k] = (1.0 - s) * f / factor + s * f
        return out
    raise ValueError(f"unsupported rope_type {rope_type}")


def rope_cos_sin(cfg, positions):
    """cos, sin [T, d] for the given integer positions (HF: emb = cat(freqs, freqs))."""
    inv_freq = rope_inv_freq(cfg)                              # [d/2]
    pos = torch.as_tensor(positions, dtype=torch.float64)      # [T]
    freqs = pos[:, None] * inv_freq[None, :]                   # [T, d/2]
    emb = torch.cat([freqs, freqs], dim=-1)                    # [T, d]
    return torch.cos(emb), torch.sin(emb)


def rotate_half(x):
    """[..., d] -> cat(-x[..., d/2:], x[..., :d/2]); pairs (i, i + d/2)."""
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x, cos, sin):
    """x [n_heads, T, d]; cos/sin [T, d]."""
    return x * cos[None] + rotate_half(x) * sin[None]


def rms_norm(x, w, eps):
    """x [T, D]; w [D]."""
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def linear(x, W, b=None):
    """x [T, in]; W [out, in] (HF layout); b [out]."""
    y = x @ W.t()
    return y + b if b is not None else y


def _w64(weights):
    return {k: v.to(torch.float64) for k, v in weights.items()}


def reference_logits(config, weights, tokens):
    """float64 logits [T, vocab] for every position of `tokens` (full causal sequence)."""
    W = _w64(weights)
    cfg = config
    D = cfg["hidden_size"]
    H, KV, hd = cfg["num_attention_heads"], n_kv_heads_of(cfg), head_dim_of(cfg)
    group = H // KV
    eps = eps_of(cfg)
    T = len(tokens)

    x = W["model.embed_tokens.weight"][torch.as_tensor(tokens)]     # [T, D]
    cos, sin = rope_cos_sin(cfg, list(range(T)))                     # [T, hd]
    causal = torch.ones(T, T, dtype=torch.bool).tril()               # [T, T], key j <= query i

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        # --- attention block ---
        a = rms_norm(x, W[p + "input_layernorm.weight"], eps)       # [T, D]
        q = linear(a, W[p + "self_attn.q_proj.weight"], W.get(p + "self_attn.q_proj.bias"))  # [T, H*hd]
        k = linear(a, W[p + "self_attn.k_proj.weight"], W.get(p + "self_attn.k_proj.bias"))  # [T, KV*hd]
        v = linear(a, W[p + "self_attn.v_proj.weight"], W.get(p + "self_attn.v_proj.bias"))  # [T, KV*hd]
        q = q.view(T, H, hd).transpose(0, 1)                         # [H, T, hd]
        k = k.view(T, KV, hd).transpose(0, 1)                        # [KV, T, hd]
        v = v.view(T, KV, hd).transpose(0, 1)                        # [KV, T, hd]
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        k = k.repeat_interleave(group, dim=0)                        # [H, T, hd]; head h uses kv h // group
        v = v.repeat_interleave(group, dim=0)                        # [H, T, hd]
        s = (q @ k.transpose(1, 2)) / math.sqrt(hd)                  # [H, T, T]
        s = s.masked_fill(~causal[None], float("-inf"))
        prob = torch.softmax(s, dim=-1)                              # [H, T, T]
        o = prob @ v                                                 # [H, T, hd]
        o = o.transpose(0, 1).reshape(T, H * hd)                     # [T, H*hd]
        x = x + linear(o, W[p + "self_attn.o_proj.weight"], W.get(p + "self_attn.o_proj.bias"))  # [T, D]
        # --- MLP block ---
        m = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = linear(m, W[p + "mlp.gate_proj.weight"])                 # [T, F]
        u = linear(m, W[p + "mlp.up_proj.weight"])                   # [T, F]
        x = x + linear(torch.nn.functional.silu(g) * u, W[p + "mlp.down_proj.weight"])  # [T, D]

    x = rms_norm(x, W["model.norm.weight"], eps)                     # [T, D]
    head = W["lm_head.weight"] if not cfg["tie_word_embeddings"] else W["model.embed_tokens.weight"]
    return x @ head.t()                                              # [T, V]


def reference_logits_incremental(config, weights, tokens):
    """Same model, one token at a time with an explicit KV cache and no mask.

    Written separately (per-position loops, explicit kv-head index h // group)
    so that agreement with reference_logits checks the causal masking, RoPE
    positions and GQA mapping."""
    W = _w64(weights)
    cfg = config
    H, KV, hd = cfg["num_attention_heads"], n_kv_heads_of(cfg), head_dim_of(cfg)
    group = H // KV
    eps = eps_of(cfg)
    L = cfg["num_hidden_layers"]
    kcache = [[] for _ in range(L)]   # per layer: list of [KV, hd]
    vcache = [[] for _ in range(L)]
    head = W["lm_head.weight"] if not cfg["tie_word_embeddings"] else W["model.embed_tokens.weight"]
    rows = []
    for pos, tok in enumerate(tokens):
        x = W["model.embed_tokens.weight"][tok][None]                # [1, D]
        cos, sin = rope_cos_sin(cfg, [pos])                          # [1, hd]
        for i in range(L):
            p = f"model.layers.{i}."
            a = rms_norm(x, W[p + "input_layernorm.weight"], eps)
            q = linear(a, W[p + "self_attn.q_proj.weight"], W.get(p + "self_attn.q_proj.bias")).view(H, 1, hd)
            k = linear(a, W[p + "self_attn.k_proj.weight"], W.get(p + "self_attn.k_proj.bias")).view(KV, 1, hd)
            v = linear(a, W[p + "self_attn.v_proj.weight"], W.get(p + "self_attn.v_proj.bias")).view(KV, hd)
            q = apply_rope(q, cos, sin)[:, 0]                        # [H, hd]
            k = apply_rope(k, cos, sin)[:, 0]                        # [KV, hd]
            kcache[i].append(k)
            vcache[i].append(v)
            K = torch.stack(kcache[i], dim=1)                        # [KV, pos+1, hd]
            Vc = torch.stack(vcache[i], dim=1)                       # [KV, pos+1, hd]
            heads = []
            for h in range(H):
                kv = h // group
                s = K[kv] @ q[h] / math.sqrt(hd)                     # [pos+1]
                pr = torch.exp(s - s.max())
                pr = pr / pr.sum()
                heads.append(pr @ Vc[kv])                            # [hd]
            o = torch.cat(heads)[None]                               # [1, H*hd]
            x = x + linear(o, W[p + "self_attn.o_proj.weight"], W.get(p + "self_attn.o_proj.bias"))
            m = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
            g = linear(m, W[p + "mlp.gate_proj.weight"])
            u = linear(m, W[p + "mlp.up_proj.weight"])
            x = x + linear(g * torch.sigmoid(g) * u, W[p + "mlp.down_proj.weight"])
        x = rms_norm(x, W["model.norm.weight"], eps)
        rows.append((x @ head.t())[0])
    return torch.stack(rows)                                         # [T, V]


def greedy(config, weights, tokens, n):
    """Greedy continuation (argmax at the last position, append, repeat); also the
    top-1 minus top-2 margin at each step."""
    seq = list(tokens)
    out, margins = [], []
    for _ in range(n):
        last = reference_logits(config, weights, seq)[-1]
        top2 = torch.topk(last, 2).values
        nxt = int(torch.argmax(last))
        out.append(nxt)
        margins.append(float(top2[0] - top2[1]))
        seq.append(nxt)
    return out, margins


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------


def eos_ids(cfg):
    e = cfg.get("eos_token_id")
    return set(e) if isinstance(e, list) else ({e} if e is not None else set())


def build_family(base_seed, residual_gain, names, configs):
    """First seed (base_seed, base_seed + 1, ...) whose greedy runs are robust for
    every variant of the family: top-1/top-2 margin >= MIN_MARGIN at each step and at
    the last prompt position, no EOS id generated (so a generate loop that stops at
    EOS yields all N_GREEDY ids), at least MIN_DISTINCT_GREEDY distinct ids."""
    for attempt in range(200):
        seed = base_seed + attempt
        rng = np.random.RandomState(seed)
        master = make_master_weights(configs[names[0]], rng, residual_gain)
        tokens = [int(t) for t in rng.randint(0, configs[names[0]]["vocab_size"], size=T_PROMPT)]
        results, ok = {}, True
        for name in names:
            cfg = configs[name]
            stored = to_stored(master, cfg)
            logits = reference_logits(cfg, stored, tokens)
            gen, margins = greedy(cfg, stored, tokens, N_GREEDY)
            if (min(margins) < MIN_MARGIN or eos_ids(cfg) & set(gen)
                    or len(set(gen)) < MIN_DISTINCT_GREEDY):
                ok = False
                break
            results[name] = (stored, tokens, logits, gen, margins, seed)
        if ok:
            return results
    raise RuntimeError(f"no seed with margin >= {MIN_MARGIN} for {names}")


def check_reference(name, cfg, stored, tokens, logits):
    inc = reference_logits_incremental(cfg, stored, tokens)
    err = float((inc - logits).abs().max())
    assert err <= 1e-12, f"{name}: incremental vs full differ by {err}"
    # logits must depend on position (i.e. on context), not only on the token
    spread = float((logits - logits.mean(dim=0, keepdim=True)).abs().max())
    assert spread > 0.1, f"{name}: logits barely vary across positions ({spread})"
    for t in range(1, len(tokens)):
        assert not torch.allclose(logits[t], logits[0]), f"{name}: position {t} equals position 0"
    return err, spread


def describe_llama3_regimes(cfg):
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type") != "llama3":
        return ""
    d = head_dim_of(cfg)
    theta = float(cfg["rope_theta"])
    L0 = rs["original_max_position_embeddings"]
    lam_lo, lam_hi = L0 / rs["low_freq_factor"], L0 / rs["high_freq_factor"]
    n_hi = n_lo = n_mid = 0
    for j in range(d // 2):
        lam = 2 * math.pi / theta ** (-(2.0 * j) / d)
        if lam < lam_hi:
            n_hi += 1
        elif lam > lam_lo:
            n_lo += 1
        else:
            n_mid += 1
    assert n_hi and n_lo and n_mid, "llama3 scaling should exercise all three regimes"
    return f" llama3 regimes: keep {n_hi}, interpolate {n_mid}, divide {n_lo}"


def main():
    configs = _variant_configs()
    os.makedirs(OUT_DIR, exist_ok=True)
    for base_seed, residual_gain, names in FAMILIES:
        results = build_family(base_seed, residual_gain, names, configs)
        for name in names:
            cfg = configs[name]
            stored, tokens, logits, gen, margins, seed = results[name]
            d = os.path.join(OUT_DIR, name)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
                f.write("\n")
            st_path = os.path.join(d, "model.safetensors")
            write_safetensors(st_path, stored)
            with open(os.path.join(d, "tokens.txt"), "w") as f:
                f.write(",".join(str(t) for t in tokens) + "\n")
            np.save(os.path.join(d, "logits.npy"), logits.numpy().astype("<f8"))
            with open(os.path.join(d, "greedy.txt"), "w") as f:
                f.write(",".join(str(t) for t in gen) + "\n")

            # round-trip checks: the reference on the file as read back
            with open(os.path.join(d, "config.json")) as f:
                cfg_rt = json.load(f)
            back = read_safetensors(st_path)
            assert set(back) == set(stored)
            for k in stored:
                assert torch.equal(back[k], stored[k].to(torch.float64)), k
            logits_rt = reference_logits(cfg_rt, back, tokens)
            assert torch.equal(logits_rt, logits)
            assert np.array_equal(np.load(os.path.join(d, "logits.npy")), logits.numpy())

            err, spread = check_reference(name, cfg_rt, back, tokens, logits)
            size = sum(os.path.getsize(os.path.join(d, fn)) for fn in os.listdir(d))
            print(f"{name}: seed {seed}, dir {size} bytes, max|logit| {float(logits.abs().max()):.4f}, "
                  f"incremental err {err:.2e}, position spread {spread:.3f}, "
                  f"min greedy margin {min(margins):.4f}, greedy {gen}" + describe_llama3_regimes(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
