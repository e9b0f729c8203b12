#!/usr/bin/python3
"""Chart of weft's speed figures against this machine's ceilings measured in the same runs.

    scripts/plot_bench.py OUT.png RESULTS...

RESULTS are files holding either `weft-bench --json` output (one JSON object per line) or a
Google Benchmark report (`--benchmark_format=json` / `--benchmark_out=F.json`). Each figure
becomes one bar: its percentage of the ceiling it is bounded by.
- weft-bench generation results: effective GB/s of weights read ÷ the read bandwidth measured
  right before (`gen_gbs` / `read_ceiling_gbs`).
- weft-bench prompt results: GFLOP/s (GOP/s for int8) ÷ the peak of the unit the prompt's
  matmuls run on, measured right before (`prompt_gops` / `peak_gops`).
- Google Benchmark entries with an `efficiency` counter (a fraction of the ceiling measured in the
  same run, as bench_llama and bench_quant report).
- weft-bench prompt results against a peer given with --peer NAME=TOKENS_PER_S (for example
  --peer pp128=108 for llama.cpp's Q4_0 prompt rate): bar = weft's rate ÷ the peer's.
Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_results(path):
    """(label, percent, text) for every figure with a ceiling in the file."""
    with open(path) as f:
        text = f.read()
    bars = []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "benchmarks" in doc:
        for b in doc["benchmarks"]:
            if "efficiency" in b and b.get("run_type", "iteration") == "iteration":
                figure = ", ".join(f"{b[k]:.1f} {k}" for k in ("GB/s", "tokens/s", "GOP/s", "GFLOP/s") if k in b)
                bars.append((b["name"], 100 * b["efficiency"], figure))
        return bars, []
    prompts = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        label = f'{r["model"]} {r["test"]} t={r["threads"]}'
        if r.get("n_gen", 0) > 0 and r.get("read_ceiling_gbs", 0) > 0:
            bars.append((label, 100 * r["gen_gbs"] / r["read_ceiling_gbs"],
                         f'{r["avg_ts"]:.1f} tok/s = {r["gen_gbs"]:.1f} of {r["read_ceiling_gbs"]:.1f} GB/s'))
        elif r.get("n_prompt", 0) > 0:
            if r.get("peak_gops", 0) > 0:
                unit = "GOP/s" if r["peak"] == "int8 dot" else "GFLOP/s"
                bars.append((label, 100 * r["prompt_gops"] / r["peak_gops"],
                             f'{r["avg_ts"]:.1f} tok/s = {r["prompt_gops"]:.0f} of {r["peak_gops"]:.0f} {unit} ({r["peak"]} peak)'))
            prompts.append((label, r["test"], r["avg_ts"]))
    return bars, prompts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("results", nargs="+")
    parser.add_argument("--peer", action="append", default=[], help="TEST=TOKENS_PER_S, e.g. pp128=108")
    parser.add_argument("--title", default="weft: figures as % of the ceiling measured in the same run")
    args = parser.parse_args()
    peers = {}
    for p in args.peer:
        test, _, rate = p.partition("=")
        peers[test] = float(rate)

    bars = []
    for path in args.results:
        file_bars, prompts = read_results(path)
        bars += file_bars
        for label, test, rate in prompts:
            if test in peers:
                bars.append((label + " vs peer", 100 * rate / peers[test], f"{rate:.1f} vs {peers[test]:.1f} tok/s"))
    if not bars:
        sys.exit("plot_bench: no figure with a ceiling in " + ", ".join(args.results))

    fig, ax = plt.subplots(figsize=(11, 0.45 * len(bars) + 1.5))
    labels = [b[0] for b in bars]
    values = [b[1] for b in bars]
    colors = ["#2a9d8f" if v >= 90 else "#e9c46a" if v >= 75 else "#e76f51" for v in values]
    ax.barh(range(len(bars)), values, color=colors)
    for i, (_, v, text) in enumerate(bars):
        ax.text(v + 1, i, f"{v:.0f}%  ({text})", va="center", fontsize=8)
    ax.axvline(100, color="black", linewidth=1)
    ax.axvline(90, color="gray", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(150, max(values) * 1.35))
    ax.set_xlabel("% of ceiling (dashed: 90% target)")
    ax.set_title(args.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot_bench: {len(bars)} figures -> {args.out}")


if __name__ == "__main__":
    main()
