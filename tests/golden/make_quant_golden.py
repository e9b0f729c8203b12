#!/usr/bin/env python3
"""Generate the golden data for weft's weight quantizers (tests/quant/test_quantize.cpp).

Run from the repository root (needs numpy and gguf-py: `pip install gguf`):

    python3 tests/golden/make_quant_golden.py            # data + gguf-py bytes (+ ggml, if built)

It writes tests/data/quant/:

  bytes_input.f32     f32 [BYTE_BLOCKS * 32]: random and awkward 32-value blocks (all zeros, ties
                      in max|x| with either sign first, one value, huge and tiny magnitudes, f16
                      overflow and underflow of d, denormals, blocks where x * (1/d) lands exactly
                      on k + 0.5 or where x * (1/d) + 8.5 rounds up to an integer in f32)
  bytes_q8_0.bin      what gguf-py's numpy Q8_0 quantizer (bit-exact with ggml's C reference,
                      quantize_row_q8_0_ref) makes of bytes_input.f32: BYTE_BLOCKS * 34 bytes
  bytes_q4_0.bin      the same for Q4_0 (quantize_row_q4_0_ref): BYTE_BLOCKS * 18 bytes; in
                      blocks of zeros d is -0.0 as ggml's C makes it (gguf-py's numpy says +0.0
                      when the first zero is -0.0; the script patches that one difference)
  rmse_<name>.f32     f32 [rows, cols] data sets (cols a multiple of 256) for the round-trip
                      error of every weight type; names and shapes in manifest.json
  manifest.json       the files above, their shapes, what each data set is
  ggml_rmse.json      ggml's own round-trip RMSE on each data set for Q8_0, Q4_0, Q4_K, Q5_K, Q6_K
                      (written only when ggml is available, see below; otherwise kept as is)

Everything is deterministic (numpy's legacy RandomState, a frozen stream). The test reads these
files; it never needs Python, pip or ggml.

ggml's RMSE (the bar the K-quant quantizers must clear) comes from ggml itself: ggml's public
`ggml_quantize_chunk` (no importance matrix, i.e. ggml's reference quantizers
quantize_row_{q8_0,q4_0,q4_K,q5_K,q6_K}_ref) and `ggml_get_type_traits(type)->to_float`,
called by tests/golden/ggml_quant_rmse.c. To build ggml (only the ggml-base library is needed;
the quantizers live there):

    mkdir -p /tmp/ggml-build && cd /tmp/ggml-build
    pip download --no-binary :all: --no-deps llama-cpp-python     # sdist with vendor/llama.cpp
    tar xzf llama_cpp_python-*.tar.gz
    touch llama_cpp_python-*/vendor/llama.cpp/ggml/ggml.pc.in      # missing from the sdist
    cmake -S llama_cpp_python-*/vendor/llama.cpp/ggml -B build -DCMAKE_BUILD_TYPE=Release \\
          -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON -DGGML_OPENMP=OFF
    nice -n 10 cmake --build build -j1 --target ggml-base

(GGML_NATIVE affects only ggml-cpu: ggml-base, which holds the reference quantizers, is built for
plain x86-64, without FMA, so no multiply-add is fused there.) Then run this script with
GGML_DIR=/tmp/ggml-build (the default): it compiles
ggml_quant_rmse.c against it, runs it on the data sets, writes ggml_rmse.json and checks that
ggml's Q8_0 / Q4_0 bytes equal gguf-py's on bytes_input.f32. The committed files were made with
llama-cpp-python 0.3.36 (ggml 0.25.3).
"""

import glob
import json
import os
import subprocess
import sys
import warnings

import numpy as np

from gguf import GGMLQuantizationType as QType
from gguf.quants import dequantize, quantize

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "tests", "data", "quant")
GGML_DIR = os.environ.get("GGML_DIR", "/tmp/ggml-build")

F32 = np.float32
BYTE_BLOCKS = 512  # 32-value blocks in bytes_input.f32

# ----------------------------------------------------------------------------
# Byte-identity blocks for Q8_0 / Q4_0
# ----------------------------------------------------------------------------


def f32(v):
    return np.asarray(v, dtype=F32)


def q8_id(block):
    """(d, id) as ggml's Q8_0 reference computes them, in f32."""
    amax = np.max(np.abs(block))
    d = F32(amax / F32(127))
    return d, (F32(1) / d if d != 0 else F32(0))


def q4_id(block):
    """(d, id) as ggml's Q4_0 reference computes them, in f32 (first largest |x| wins)."""
    m = block[int(np.argmax(np.abs(block)))]
    d = F32(m / F32(-8))
    return d, (F32(1) / d if d != 0 else F32(0))


def land_on_half(rs, block, slots):
    """Nudges block[slots] (keeping max|x| fixed) so that fl(x * id) is exactly k + 0.5 (Q8_0)."""
    _, idv = q8_id(block)
    amax = np.max(np.abs(block))
    for s in slots:
        k = rs.randint(-126, 126)
        target = F32(k + 0.5)
        x0 = F32(target / idv)
        for step in range(-8, 9):
            x = F32(x0)
            x = np.nextafter(x, F32(np.inf) if step > 0 else F32(-np.inf), dtype=F32) if step else x
            for _ in range(abs(step) - 1):
                x = np.nextafter(x, F32(np.inf) if step > 0 else F32(-np.inf), dtype=F32)
            if abs(x) < amax and F32(x * idv) == target:
                block[s] = x
                break
    return block


def q4_round_up(rs, block, slots):
    """Nudges block[slots] so that fl(x * id) + 8.5 rounds (in f32) up onto an integer although the
    exact sum is below it, or lands exactly on k + 0.5 before the + 8.5 (Q4_0's truncation edge)."""
    _, idv = q4_id(block)
    if idv == 0:
        return block
    m = np.max(np.abs(block))
    for s in slots:
        k = rs.randint(1, 16)  # fl(p + 8.5) == k with p < k - 8.5
        edge = F32(k - 8.5)
        x0 = F32(edge / idv)
        best = None
        for step in range(-40, 41):
            x = x0
            for _ in range(abs(step)):
                x = np.nextafter(x, F32(np.inf) if step > 0 else F32(-np.inf), dtype=F32)
            if not abs(x) < m:
                continue
            p = F32(x * idv)
            if F32(p + F32(8.5)) == F32(k) and p < edge:
                best = x
                break
            if best is None and p == edge:
                best = x
        if best is not None:
            block[s] = best
    return block


def byte_blocks():
    rs = np.random.RandomState(20261126)
    blocks = []

    def add(b):
        b = f32(b).reshape(32)
        blocks.append(b.copy())

    def normal(scale=1.0):
        return f32(rs.standard_normal(32) * scale)

    # All zeros, +0 and -0 (Q4_0 takes d = x / -8 of the first largest |x|: the sign of zero shows).
    add(np.zeros(32))
    add(-np.zeros(32))
    z = np.zeros(32, F32); z[7] = -0.0; add(z)
    # One value, everything else zero.
    for v in [1.0, -1.0, 3e-3, -7.25, 1e5]:
        z = np.zeros(32, F32); z[rs.randint(32)] = v; add(z)
    # Constant blocks.
    for v in [0.3, -0.3, 1.0, 127.0, -8.0]:
        add(np.full(32, v))
    # Ties in max|x|: opposite signs in both orders, equal signs, many ties.
    for first, second in [(2.0, -2.0), (-2.0, 2.0), (0.7, 0.7), (-0.7, -0.7)]:
        for _ in range(3):
            b = normal(0.3)
            i, j = sorted(rs.choice(32, 2, replace=False))
            b[i], b[j] = first, second
            add(b)
    b = f32(rs.choice([-1.5, 1.5], 32)); add(b)
    b = f32(rs.choice([-1.0, 1.0, 0.5, -0.5, 0.0], 32)); add(b)
    # Integers: d = 1 (Q8_0 with max 127) or d = ∓1 (Q4_0 with max ∓8); halves land on .5 exactly.
    for _ in range(4):
        b = f32(rs.randint(-127, 128, 32)); b[rs.randint(32)] = 127; add(b)
        b = f32(rs.randint(-254, 255, 32) / 2.0); b[rs.randint(32)] = -127; add(b)
        b = f32(rs.randint(-16, 17, 32) / 2.0); b[rs.randint(32)] = -8; add(b)
        b = f32(rs.randint(-16, 17, 32) / 2.0); b = np.clip(b, -7.5, 7.5); b[rs.randint(32)] = 8; add(b)
    # Q4_0's truncation edge with d = 1 by hand: 0.49999997 + 8.5 rounds to 9.0 in f32.
    b = np.zeros(32, F32); b[0] = -8
    b[1:9] = [0.49999997, -0.50000006, 0.5, -0.5, 1.4999999, -1.5000001, 6.4999995, -7.4999995]
    add(b)
    b = -b; add(b)
    # Huge, tiny and denormal magnitudes; d overflowing f16 (d > 65504) and underflowing it.
    for scale in [1e30, 3e38 / 4, 65504.0 * 127 * 1.0001, 65504.0 * 8 * 1.0001, 65504.0 * 127 * 0.999,
                  1e6, 1e-3, 1e-6, 6e-8, 1e-8, 1e-12, 1e-20, 1e-30, 1e-36, 5e-37, 1e-37, 3e-38]:
        b = normal(scale)
        add(b)
    # Denormals: mixed with normal values, and blocks of denormals only (1/d overflows: q = 0).
    for _ in range(3):
        b = normal(1e-3)
        b[rs.choice(32, 6, replace=False)] = f32(rs.standard_normal(6) * 1e-40)
        add(b)
    add(f32(rs.standard_normal(32) * 1e-40))
    b = np.zeros(32, F32); b[3] = 1e-45; add(b)
    b = np.zeros(32, F32); b[3] = -1.4e-45; b[4] = 1.4e-45; add(b)
    b = f32(rs.standard_normal(32) * 1e-39); add(b)
    # x * id landing exactly on k + 0.5 (Q8_0) and x * id + 8.5 rounding onto an integer (Q4_0).
    for _ in range(24):
        b = normal(10 ** rs.uniform(-3, 3))
        add(land_on_half(rs, b, rs.choice(32, 12, replace=False)))
    for _ in range(24):
        b = normal(10 ** rs.uniform(-3, 3))
        add(q4_round_up(rs, b, rs.choice(32, 12, replace=False)))
    # Random blocks at many scales and shapes.
    while len(blocks) < BYTE_BLOCKS:
        kind = rs.randint(5)
        scale = 10 ** rs.uniform(-5, 5)
        if kind == 0:
            b = normal(scale)
        elif kind == 1:
            b = f32(rs.uniform(-scale, scale, 32))
        elif kind == 2:
            b = f32(rs.standard_t(3, 32) * scale)
        elif kind == 3:
            b = f32(rs.uniform(0, scale, 32))       # all positive
        else:
            b = f32(-rs.exponential(scale, 32))     # all negative
        add(b)
    return np.stack(blocks[:BYTE_BLOCKS]).astype(F32)


# ----------------------------------------------------------------------------
# Round-trip RMSE data sets (rows of 256 * k values)
# ----------------------------------------------------------------------------


def rmse_datasets():
    rs = np.random.RandomState(7)
    sets = []

    def add(name, x, what):
        x = f32(x)
        assert x.ndim == 2 and x.shape[1] % 256 == 0
        sets.append((name, x, what))

    add("normal", rs.standard_normal((4, 1024)) * 0.02, "N(0, 0.02^2), like a weight matrix")
    add("uniform", rs.uniform(-1, 1, (16, 256)), "U(-1, 1)")
    add("student_t3", rs.standard_t(3, (2, 2048)) * 0.02, "Student-t with 3 degrees of freedom, heavy tails")
    x = rs.standard_normal((8, 512)) * 0.02
    mask = rs.uniform(size=x.shape) < 0.01
    x[mask] *= 25.0
    add("outliers", x, "N(0, 0.02^2) with 1% of the values 25x larger")
    add("laplace", rs.laplace(0, 0.01, (2, 2048)), "Laplace(0, 0.01)")
    add("shifted", rs.standard_normal((4, 1024)) * 0.5 + 1.0, "N(1, 0.5^2): mostly positive, so mins matter")
    # Sub-blocks of very different scales inside one super-block, and awkward super-blocks.
    x = rs.standard_normal((4, 1024)) * (10 ** rs.uniform(-4, 0, (4, 1024 // 16)).repeat(16, axis=1))
    x[0, 0:256] = 0.0                                  # a zero super-block
    x[0, 288:320] = 0.0                                # a zero sub-block
    x[1, 0:32] = 0.25                                  # a constant sub-block
    x[1, 256:512] = -np.abs(x[1, 256:512])             # all negative
    x[1, 512:768] = np.abs(x[1, 512:768])              # all positive
    x[2, 10] = 50.0                                    # one outlier
    x[3, 256:512] = rs.randint(-3, 4, 256)             # a few levels only
    add("mixed_scales", x, "sub-blocks of scales 1e-4..1 with zero, constant, one-signed, outlier and few-level super-blocks")
    return sets


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------


def rmse(a, b):
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def run_ggml(manifest):
    """Builds and runs ggml_quant_rmse.c against ggml in GGML_DIR; returns its JSON or None."""
    libs = glob.glob(os.path.join(GGML_DIR, "build", "src", "libggml-base.so"))
    incs = glob.glob(os.path.join(GGML_DIR, "llama_cpp_python-*", "vendor", "llama.cpp", "ggml", "include"))
    if not libs or not incs:
        print(f"ggml not found under {GGML_DIR}: keeping the committed ggml_rmse.json")
        return None
    libdir = os.path.dirname(libs[0])
    exe = os.path.join(GGML_DIR, "ggml_quant_rmse")
    src = os.path.join(ROOT, "tests", "golden", "ggml_quant_rmse.c")
    subprocess.run(["cc", "-O2", "-std=c11", "-I", incs[0], src, "-o", exe, "-L", libdir,
                    "-lggml-base", "-lm", f"-Wl,-rpath,{libdir}"], check=True)
    args = [exe, OUT_DIR, str(BYTE_BLOCKS)]
    for d in manifest["datasets"]:
        args += [d["name"], str(d["rows"]), str(d["cols"])]
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True).stdout  # speed: stderr
    return json.loads(out)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)

    blocks = byte_blocks()
    blocks.tofile(os.path.join(OUT_DIR, "bytes_input.f32"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow to f16 inf, inf * 0 in denormal-only blocks
        q8 = quantize(blocks, QType.Q8_0)
        q4 = quantize(blocks, QType.Q4_0)
    # The one place gguf-py's numpy and ggml's C reference part: in a block of zeros ggml keeps its
    # running max at +0.0 (it only replaces it on a strictly larger |x|), so d = +0.0 / -8 = -0.0
    # whatever the zeros' signs; numpy's argmax takes the first zero, and a -0.0 there gives +0.0.
    zero_blocks = np.max(np.abs(blocks), axis=1) == 0
    q4[zero_blocks, 0:2] = np.array([0x00, 0x80], np.uint8)  # f16 -0.0, little-endian
    assert q8.shape == (BYTE_BLOCKS, 34) and q4.shape == (BYTE_BLOCKS, 18)
    q8.tofile(os.path.join(OUT_DIR, "bytes_q8_0.bin"))
    q4.tofile(os.path.join(OUT_DIR, "bytes_q4_0.bin"))

    manifest = {
        "generator": "tests/golden/make_quant_golden.py",
        "bytes": {"input": "bytes_input.f32", "blocks": BYTE_BLOCKS, "q8_0": "bytes_q8_0.bin", "q4_0": "bytes_q4_0.bin",
                  "made_by": "gguf-py (gguf.quants.quantize) with Q4_0's d = -0.0 in zero blocks as in ggml's C; equal to ggml's quantize_row_q8_0_ref / q4_0_ref bytes"},
        "datasets": [],
    }
    gguf_rmse = {"q8_0": {}, "q4_0": {}}
    for name, x, what in rmse_datasets():
        fname = f"rmse_{name}.f32"
        x.tofile(os.path.join(OUT_DIR, fname))
        manifest["datasets"].append({"name": name, "file": fname, "rows": x.shape[0], "cols": x.shape[1], "what": what})
        for t, key in [(QType.Q8_0, "q8_0"), (QType.Q4_0, "q4_0")]:
            gguf_rmse[key][name] = rmse(dequantize(quantize(x, t), t), x)
    with open(os.path.join(OUT_DIR, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")

    ggml = run_ggml(manifest)
    if ggml is not None:
        # ggml's C reference and gguf-py's numpy must agree byte for byte on the awkward blocks ...
        for key in ["q8_0", "q4_0"]:
            mism = ggml["bytes_mismatches"][key]
            print(f"ggml vs gguf-py {key}: {mism} of {BYTE_BLOCKS} blocks differ")
            assert mism == 0, f"ggml's {key} bytes differ from gguf-py's"
        # ... and on the RMSE of the data sets.
        for key in ["q8_0", "q4_0"]:
            for name, v in gguf_rmse[key].items():
                assert abs(ggml["rmse"][key][name] - v) <= 1e-9 * max(v, 1e-30), (key, name, v, ggml["rmse"][key][name])
        with open(os.path.join(OUT_DIR, "ggml_rmse.json"), "w") as f:
            json.dump(ggml, f, indent=1)
            f.write("\n")
        for t, per in ggml["rmse"].items():
            print(t, " ".join(f"{k}={v:.4e}" for k, v in per.items()))

    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f"wrote {OUT_DIR}: {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
