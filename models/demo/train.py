#!/usr/bin/python3
"""Train weft's demo model: a small Llama on the King James Bible, written as GGUF.

Run from the repository root with Debian's Python (torch, numpy, sentencepiece) and the
`gguf` package from PyPI (only this script needs it; the outputs are committed):

    apt-get install -y bible-kjv python3-sentencepiece python3-torch python3-numpy
    /usr/bin/python3 -m pip install --break-system-packages --no-deps gguf
    nice -n 10 /usr/bin/python3 models/demo/train.py            # ~30 minutes on one idle core

Steps (each seeded; one CPU thread, deterministic algorithms, a fixed number of steps, so a
rerun on the same torch/sentencepiece versions reproduces the same weights):
  1. text:      `bible -f Gen1:1-Rev22:21` (Debian's bible-kjv, public domain); one document
                per chapter, its verses joined by spaces
  2. tokenizer: SentencePiece BPE, byte fallback, Llama 2's normalisation settings
  3. model:     Llama (pre-norm RMSNorm, interleaved RoPE, GQA, SwiGLU, tied embeddings),
                AdamW with warm-up and cosine decay on 512-token windows of BOS+chapter+EOS
  4. outputs, in models/demo/:
       kjv-llama.gguf      GGUF v3, f16 matrices / f32 norms, SentencePiece vocabulary
       hf/                 the same weights as a Hugging Face directory (config.json,
                           model.safetensors with half-split RoPE rows, tokenizer.model)
       tokenizer.model     the SentencePiece model
       golden.json         float64 reference: prompt ids, greedy continuation ids, logit margins
       train_log.txt       losses during training
Q/K rows: the model is trained with interleaved RoPE pairs (2j, 2j+1), the order GGUF Llama
files use, so the GGUF gets them as trained; the Hugging Face copy is permuted to the
half-split order (j, j + d/2) that transformers' LlamaForCausalLM expects.
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------
# Hyper-parameters
# ----------------------------------------------------------------------------

SEED = 1611
VOCAB = 3072
DIM = 192
N_LAYERS = 4
N_HEADS = 6
N_KV_HEADS = 2
HEAD_DIM = DIM // N_HEADS
FFN = 512
NORM_EPS = 1e-5
ROPE_THETA = 10000.0
SEQ = 256            # training window = the model's context_length
BATCH = 16           # windows per step
STEPS = 700
LR = 3e-3
MIN_LR = 3e-4
WARMUP = 60
WEIGHT_DECAY = 0.1
VAL_FRACTION = 0.01  # chapters held out (every 100th) for the validation loss
GOLDEN_PROMPT = "In the beginning"
GOLDEN_TOKENS = 32
BOS, EOS, UNK = 1, 2, 0


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------
# 1. Text
# ----------------------------------------------------------------------------

def kjv_chapters():
    """[(reference, text)] per chapter, from Debian's `bible` program."""
    out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    chapters, order = {}, []
    for line in out.splitlines():
        ref, _, verse = line.partition(" ")
        key = ref.split(":")[0]  # "Ge1"
        if key not in chapters:
            chapters[key] = []
            order.append(key)
        chapters[key].append(verse.strip())
    if len(order) != 1189:
        sys.exit(f"expected 1189 chapters from `bible`, got {len(order)}")
    return [(k, " ".join(chapters[k])) for k in order], [v for k in order for v in chapters[k]]


# ----------------------------------------------------------------------------
# 2. Tokenizer
# ----------------------------------------------------------------------------

def train_tokenizer(verses, prefix):
    import sentencepiece as spm
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(verses), model_prefix=prefix, model_type="bpe", vocab_size=VOCAB,
        byte_fallback=True, character_coverage=1.0, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, allow_whitespace_only_pieces=True,
        unk_id=UNK, bos_id=BOS, eos_id=EOS, pad_id=-1, num_threads=1, shuffle_input_sentence=False,
        input_sentence_size=0, minloglevel=2)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


# ----------------------------------------------------------------------------
# 3. Model (interleaved RoPE; written for clarity, float32 or float64)
# ----------------------------------------------------------------------------

def rope_tables(T, dtype):
    inv = ROPE_THETA ** (-torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM)  # [hd/2]
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]                      # [T, hd/2]
    return ang.cos().to(dtype), ang.sin().to(dtype)


def rope_interleaved(x, cos, sin):
    # x: [B, heads, T, hd]; pairs (2j, 2j+1) rotate by angle pos * inv_freq_j
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS) * w


class Llama(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Parameter(torch.randn(VOCAB, DIM) * 0.02)
        self.layers = torch.nn.ModuleList()
        out_std = 0.02 / math.sqrt(2 * N_LAYERS)
        for _ in range(N_LAYERS):
            L = torch.nn.ParameterDict({
                "attn_norm": torch.nn.Parameter(torch.ones(DIM)),
                "wq": torch.nn.Parameter(torch.randn(N_HEADS * HEAD_DIM, DIM) * 0.02),
                "wk": torch.nn.Parameter(torch.randn(N_KV_HEADS * HEAD_DIM, DIM) * 0.02),
                "wv": torch.nn.Parameter(torch.randn(N_KV_HEADS * HEAD_DIM, DIM) * 0.02),
                "wo": torch.nn.Parameter(torch.randn(DIM, N_HEADS * HEAD_DIM) * out_std),
                "ffn_norm": torch.nn.Parameter(torch.ones(DIM)),
                "w_gate": torch.nn.Parameter(torch.randn(FFN, DIM) * 0.02),
                "w_up": torch.nn.Parameter(torch.randn(FFN, DIM) * 0.02),
                "w_down": torch.nn.Parameter(torch.randn(DIM, FFN) * out_std),
            })
            self.layers.append(L)
        self.norm = torch.nn.Parameter(torch.ones(DIM))

    def forward(self, ids, weights=None):
        """ids: [B, T] → logits [B, T, vocab]. `weights`: an optional dict (name → tensor) to run
        instead of the parameters (the float64 reference runs the f16-rounded weights)."""
        W = weights if weights is not None else self.state()
        B, T = ids.shape
        dtype = W["embed"].dtype
        cos, sin = rope_tables(T, dtype)
        mask = torch.full((T, T), float("-inf"), dtype=dtype).triu(1)
        x = W["embed"][ids]                                              # [B, T, dim]
        for l in range(N_LAYERS):
            p = lambda n: W[f"layers.{l}.{n}"]
            h = rms_norm(x, p("attn_norm"))
            q = (h @ p("wq").T).view(B, T, N_HEADS, HEAD_DIM).transpose(1, 2)      # [B, H, T, hd]
            k = (h @ p("wk").T).view(B, T, N_KV_HEADS, HEAD_DIM).transpose(1, 2)   # [B, KV, T, hd]
            v = (h @ p("wv").T).view(B, T, N_KV_HEADS, HEAD_DIM).transpose(1, 2)
            q, k = rope_interleaved(q, cos, sin), rope_interleaved(k, cos, sin)
            rep = N_HEADS // N_KV_HEADS
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD_DIM) + mask           # [B, H, T, T]
            o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, N_HEADS * HEAD_DIM)
            x = x + o @ p("wo").T
            h = rms_norm(x, p("ffn_norm"))
            x = x + (F.silu(h @ p("w_gate").T) * (h @ p("w_up").T)) @ p("w_down").T
        return rms_norm(x, W["norm"]) @ W["embed"].T                      # tied output

    def state(self):
        return {n: p for n, p in self.named_parameters()}


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------

def lr_at(step):
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    t = (step - WARMUP) / max(1, STEPS - WARMUP)
    return MIN_LR + 0.5 * (LR - MIN_LR) * (1 + math.cos(math.pi * t))


def train(model, train_ids, val_ids, steps, log_file):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.RandomState(SEED)
    data = torch.from_numpy(train_ids.astype(np.int64))
    val = torch.from_numpy(val_ids.astype(np.int64))

    def batch_at(src, starts):
        x = torch.stack([src[s:s + SEQ] for s in starts])
        y = torch.stack([src[s + 1:s + SEQ + 1] for s in starts])
        return x, y

    def val_loss():
        model.eval()
        with torch.no_grad():
            starts = range(0, len(val) - SEQ - 1, SEQ)
            losses = []
            for s in starts:
                x, y = batch_at(val, [s])
                losses.append(F.cross_entropy(model(x).view(-1, VOCAB), y.view(-1)).item())
        model.train()
        return float(np.mean(losses))

    t0 = time.time()
    smooth = None
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        starts = rng.randint(0, len(data) - SEQ - 1, size=BATCH)
        x, y = batch_at(data, starts)
        loss = F.cross_entropy(model(x).view(-1, VOCAB), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            line = f"step {step:5d}  loss {loss.item():.4f}  smoothed {smooth:.4f}  lr {lr_at(step):.2e}  {time.time() - t0:7.1f} s"
            if step % 200 == 0 or step == steps - 1:
                line += f"  val {val_loss():.4f}"
            log(line)
            log_file.write(line + "\n")
            log_file.flush()
    return smooth, val_loss()


# ----------------------------------------------------------------------------
# Sampling (a sanity check of the trained model)
# ----------------------------------------------------------------------------

def sample(model, sp, prompt, n, temperature=0.8, top_k=40, seed=0, weights=None):
    g = torch.Generator().manual_seed(seed)
    ids = [BOS] + sp.encode(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids[-SEQ:]]), weights)[0, -1].double()
            if temperature <= 0:
                nxt = int(logits.argmax())
            else:
                v, i = torch.topk(logits / temperature, top_k)
                nxt = int(i[torch.multinomial(v.softmax(-1), 1, generator=g)])
            if nxt == EOS:
                break
            ids.append(nxt)
    return sp.decode(ids)


# ----------------------------------------------------------------------------
# 4. Outputs
# ----------------------------------------------------------------------------

def f16_weights(model):
    """Weights as stored: matrices rounded to f16, norms kept f32 (as llama.cpp stores them)."""
    out = {}
    for n, p in model.state().items():
        t = p.detach().float()
        out[n] = t.half() if t.dim() == 2 else t
    return out


def token_types(sp):
    types = []
    for i in range(sp.get_piece_size()):
        if sp.is_unknown(i): types.append(2)
        elif sp.is_control(i): types.append(3)
        elif sp.is_byte(i): types.append(6)
        elif sp.is_unused(i): types.append(5)
        else: types.append(1)
    return types


def write_gguf(path, W, sp):
    import gguf
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("kjv-llama")
    w.add_description("weft's demo model: a small Llama trained on the King James Bible by models/demo/train.py")
    w.add_license("MIT (model); training text public domain")
    w.add_file_type(1)  # mostly f16
    w.add_context_length(SEQ)
    w.add_embedding_length(DIM)
    w.add_block_count(N_LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEADS)
    w.add_head_count_kv(N_KV_HEADS)
    w.add_layer_norm_rms_eps(NORM_EPS)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_vocab_size(VOCAB)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([sp.id_to_piece(i).encode("utf-8") for i in range(VOCAB)])
    w.add_token_scores([float(sp.get_score(i)) for i in range(VOCAB)])
    w.add_token_types(token_types(sp))
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)
    w.add_unk_token_id(UNK)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    names = {"attn_norm": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
             "ffn_norm": "ffn_norm", "w_gate": "ffn_gate", "w_up": "ffn_up", "w_down": "ffn_down"}
    w.add_tensor("token_embd.weight", W["embed"].numpy())
    for l in range(N_LAYERS):
        for ours, theirs in names.items():
            w.add_tensor(f"blk.{l}.{theirs}.weight", W[f"layers.{l}.{ours}"].numpy())
    w.add_tensor("output_norm.weight", W["norm"].numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def to_half_split(t, heads):
    """Rows of a Q/K projection from interleaved pairs (2j, 2j+1) to half-split (j, j + hd/2):
    the inverse of llama.cpp's convert_hf_to_gguf permute."""
    return t.reshape(heads, HEAD_DIM // 2, 2, DIM).transpose(1, 2).reshape(heads * HEAD_DIM, DIM).contiguous()


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": {torch.float16: "F16", torch.float32: "F32"}[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_hf(dir_, W, tokenizer_model):
    os.makedirs(dir_, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_size": DIM,
        "intermediate_size": FFN, "num_hidden_layers": N_LAYERS, "num_attention_heads": N_HEADS,
        "num_key_value_heads": N_KV_HEADS, "head_dim": HEAD_DIM, "hidden_act": "silu",
        "max_position_embeddings": SEQ, "rms_norm_eps": NORM_EPS, "rope_theta": ROPE_THETA,
        "rope_scaling": None, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": True,
        "bos_token_id": BOS, "eos_token_id": EOS, "torch_dtype": "float16",
    }
    with open(os.path.join(dir_, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    hf_names = {"attn_norm": "input_layernorm", "wq": "self_attn.q_proj", "wk": "self_attn.k_proj",
                "wv": "self_attn.v_proj", "wo": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
                "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj"}
    T = {"model.embed_tokens.weight": W["embed"]}
    for l in range(N_LAYERS):
        for ours, theirs in hf_names.items():
            t = W[f"layers.{l}.{ours}"]
            if ours == "wq": t = to_half_split(t, N_HEADS)
            if ours == "wk": t = to_half_split(t, N_KV_HEADS)
            T[f"model.layers.{l}.{theirs}.weight"] = t
    T["model.norm.weight"] = W["norm"]
    write_safetensors(os.path.join(dir_, "model.safetensors"), T)
    with open(tokenizer_model, "rb") as src, open(os.path.join(dir_, "tokenizer.model"), "wb") as dst:
        dst.write(src.read())
    with open(os.path.join(dir_, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                   "add_bos_token": True, "add_eos_token": False, "legacy": True, "model_max_length": SEQ}, f, indent=2)
        f.write("\n")


def hf_reference_logits(W64, ids):
    """Logits [T, vocab] of the Hugging Face layout (half-split RoPE, permuted Q/K), float64:
    checks that the permutation written to hf/ computes the same function."""
    T = len(ids)
    inv = ROPE_THETA ** (-torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)   # [T, hd]
    rot = lambda x: torch.cat((-x[..., HEAD_DIM // 2:], x[..., :HEAD_DIM // 2]), -1)
    x = W64["embed"][torch.tensor(ids)]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for l in range(N_LAYERS):
        p = lambda n: W64[f"layers.{l}.{n}"]
        h = rms_norm(x, p("attn_norm"))
        q = (h @ to_half_split(p("wq"), N_HEADS).T).view(T, N_HEADS, HEAD_DIM).transpose(0, 1)
        k = (h @ to_half_split(p("wk"), N_KV_HEADS).T).view(T, N_KV_HEADS, HEAD_DIM).transpose(0, 1)
        v = (h @ p("wv").T).view(T, N_KV_HEADS, HEAD_DIM).transpose(0, 1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(N_HEADS // N_KV_HEADS, 0), v.repeat_interleave(N_HEADS // N_KV_HEADS, 0)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD_DIM) + mask
        x = x + (att.softmax(-1) @ v).transpose(0, 1).reshape(T, -1) @ p("wo").T
        h = rms_norm(x, p("ffn_norm"))
        x = x + (F.silu(h @ p("w_gate").T) * (h @ p("w_up").T)) @ p("w_down").T
    return rms_norm(x, W64["norm"]) @ W64["embed"].T


def golden(model, sp, W):
    """Greedy continuation of GOLDEN_PROMPT by the float64 model on the weights as stored."""
    W64 = {n: t.double() for n, t in W.items()}
    ids = [BOS] + sp.encode(GOLDEN_PROMPT)
    prompt = list(ids)
    margins = []
    with torch.no_grad():
        for _ in range(GOLDEN_TOKENS):
            logits = model(torch.tensor([ids]), W64)[0, -1]
            top = torch.topk(logits, 2).values
            margins.append(float(top[0] - top[1]))
            ids.append(int(logits.argmax()))
        full = model(torch.tensor([ids]), W64)[0]
        hf = hf_reference_logits(W64, ids)
        diff = float((full - hf).abs().max())
        if diff > 1e-9:
            sys.exit(f"Hugging Face layout disagrees with the trained layout by {diff}")
    return {"prompt": GOLDEN_PROMPT, "prompt_ids": prompt, "greedy_ids": ids[len(prompt):],
            "greedy_text": sp.decode(ids[len(prompt):]), "margins": [round(m, 6) for m in margins],
            "min_margin": round(min(margins), 6),
            "note": "float64 forward of the stored weights (f16 matrices upcast exactly); "
                    "margins are the top-1 minus top-2 logit at each greedy step"}


# ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=STEPS, help="training steps (default %(default)s)")
    ap.add_argument("--out", default=HERE, help="output folder (default: models/demo)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)

    chapters, verses = kjv_chapters()
    log(f"text: {len(chapters)} chapters, {len(verses)} verses, {sum(len(t) for _, t in chapters)} characters")
    sp = train_tokenizer(verses, os.path.join(args.out, "tokenizer"))
    os.remove(os.path.join(args.out, "tokenizer.vocab"))
    train_ids, val_ids = [], []
    for i, (_, text) in enumerate(chapters):
        (val_ids if i % int(1 / VAL_FRACTION) == 50 else train_ids).extend([BOS] + sp.encode(text) + [EOS])
    train_ids, val_ids = np.array(train_ids, np.int32), np.array(val_ids, np.int32)
    log(f"tokens: {len(train_ids)} train, {len(val_ids)} validation ({sum(len(t) for _, t in chapters) / (len(train_ids) + len(val_ids)):.2f} characters/token)")

    model = Llama()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters; {args.steps} steps of {BATCH}x{SEQ} tokens "
        f"({args.steps * BATCH * SEQ / len(train_ids):.2f} epochs)")
    with open(os.path.join(args.out, "train_log.txt"), "w") as log_file:
        log_file.write(f"# models/demo/train.py: {n_params} parameters, {args.steps} steps, batch {BATCH}x{SEQ}, "
                       f"{len(train_ids)} training tokens, torch {torch.__version__}\n")
        train_loss, val = train(model, train_ids, val_ids, args.steps, log_file)
        log_file.write(f"final: smoothed train loss {train_loss:.4f}, validation loss {val:.4f} (f32 weights)\n")

    W = f16_weights(model)
    write_gguf(os.path.join(args.out, "kjv-llama.gguf"), W, sp)
    write_hf(os.path.join(args.out, "hf"), W, os.path.join(args.out, "tokenizer.model"))
    g = golden(model, sp, W)
    g["n_params"] = n_params
    g["train_loss"] = round(train_loss, 4)
    g["val_loss"] = round(val, 4)
    with open(os.path.join(args.out, "golden.json"), "w") as f:
        json.dump(g, f, indent=1)
        f.write("\n")
    log(f"golden greedy ({GOLDEN_PROMPT!r}): {g['greedy_text']!r}, min margin {g['min_margin']}")
    W32 = {n: t.float() for n, t in W.items()}
    for seed, prompt in enumerate(["In the beginning", "And Jesus said unto them,", "The LORD is my shepherd;"]):
        log(f"sample {seed}: {sample(model, sp, prompt, 80, seed=seed, weights=W32)!r}")


if __name__ == "__main__":
    main()
