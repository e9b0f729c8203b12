# tests/cuda/emulator/transform.py SRC DST — copies the CUDA headers (*.cuh under SRC) to DST with
# each launch `K<<<cfg>>>(args)` rewritten as `::emu::launch(::emu::Cfg(cfg), [&](auto... a) { K(a...); },
# args)` (arguments evaluated at the launch, as CUDA does) and dynamic shared memory as emu's buffer.
import os, re, sys, shutil
src, dst = sys.argv[1], sys.argv[2]
def kernel_start(s, i):  # s[i] is the char before '<<<'
    j = i
    while j >= 0:
        c = s[j]
        if c == '>':
            depth = 0
            while j >= 0:
                if s[j] == '>': depth += 1
                elif s[j] == '<':
                    depth -= 1
                    if depth == 0: break
                j -= 1
            j -= 1
        elif c.isalnum() or c in '_:':
            j -= 1
        else:
            break
    return j + 1
def transform(s):
    s = s.replace('extern __shared__ float smem[];', 'float* smem = ::emu::dynamic_smem<float>();')
    out = s
    while True:
        i = out.find('<<<')
        if i < 0: break
        k0 = kernel_start(out, i - 1)
        kernel = out[k0:i]
        j = out.find('>>>', i)
        cfg = out[i+3:j]
        assert out[j+3] == '(', out[j:j+20]
        depth, p = 0, j + 3
        while True:
            if out[p] == '(': depth += 1
            elif out[p] == ')':
                depth -= 1
                if depth == 0: break
            p += 1
        args = out[j+4:p]
        rep = '::emu::launch(::emu::Cfg(%s), [&](auto... a) { %s(a...); }, %s)' % (cfg, kernel, args)
        out = out[:k0] + rep + out[p+1:]
    return out
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith('.cuh'): continue
        p = os.path.join(root, f)
        rel = os.path.relpath(p, src)
        q = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(q), exist_ok=True)
        open(q, 'w').write(transform(open(p).read()))
