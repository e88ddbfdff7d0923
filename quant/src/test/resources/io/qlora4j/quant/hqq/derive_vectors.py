# Independent numpy float32 transcription of hqq 0.2.8.post1 Quantizer.quantize (CPU float32 path) with
# ATen's cascade_sum order (AVX2, one thread), used only to derive expected test vectors for qlora4j.
import numpy as np, json, sys
np.seterr(all='ignore')
f32 = np.float32

def ceil_log2(x): return 1 if x <= 2 else int(x - 1).bit_length()

def multi_row_sum(rows, width):
    size = len(rows)
    lp = max(4, ceil_log2(size) // 4); step = 1 << lp; mask = step - 1
    acc = [np.zeros(width, f32) for _ in range(4)]
    i = 0
    while i + step <= size:
        for _ in range(step):
            acc[0] = (acc[0] + rows[i]).astype(f32); i += 1
        for j in range(1, 4):
            acc[j] = (acc[j] + acc[j - 1]).astype(f32); acc[j - 1] = np.zeros(width, f32)
            if (i & (mask << (j * lp))) != 0: break
    while i < size:
        acc[0] = (acc[0] + rows[i]).astype(f32); i += 1
    for j in range(1, 4): acc[0] = (acc[0] + acc[j]).astype(f32)
    return acc[0]

def row_sum_scalar(x):
    n = len(x); s = n // 4
    p = multi_row_sum([x[4 * i:4 * i + 4] for i in range(s)], 4).copy()
    for i in range(4 * s, n): p[0] = f32(p[0] + x[i])
    for k in range(1, 4): p[0] = f32(p[0] + p[k])
    return p[0]

def inner_sum(x):
    n = len(x)
    if n < 8: return row_sum_scalar(x)
    vec = n // 8; s = vec // 4
    p = multi_row_sum([x[32 * i:32 * i + 32] for i in range(s)], 32).copy()
    for v in range(4 * s, vec): p[0:8] = (p[0:8] + x[8 * v:8 * v + 8]).astype(f32)
    for k in range(1, 4): p[0:8] = (p[0:8] + p[8 * k:8 * k + 8]).astype(f32)
    acc = f32(0)
    for i in range(vec * 8, n): acc = f32(acc + x[i])
    for l in range(8): acc = f32(acc + p[l])
    return acc

def sum_rows(G):  # reduce dim 0 of [R, C]
    R, C = G.shape
    if C == 1: return np.array([[inner_sum(G[:, 0].copy())]], f32)
    full = C // 32 * 32 if C >= 8 else C // 4 * 4
    out = np.zeros(C, f32)
    if full: out[:full] = multi_row_sum([G[r, :full] for r in range(R)], full)
    for c in range(full, C): out[c] = row_sum_scalar(G[:, c].copy())
    return out.reshape(1, C)

def sum_cols(G):  # reduce dim 1 of [R, C]
    return np.array([[inner_sum(G[r].copy())] for r in range(G.shape[0])], f32)

def shrink(x):
    out = np.abs(x)
    # |x|^-0.3 correctly rounded to float32 (numpy's own float32 power is not; torch uses Sleef's 1-ulp powf)
    power = np.power(out.astype(np.float64), np.float64(f32(-0.3))).astype(f32)
    out = (out - (f32(0.1) * power).astype(f32)).astype(f32)
    out = np.maximum(out, f32(0))
    return (out * np.sign(x)).astype(f32)

def quantize(W, nbits, g, axis, optimize=True, round_zero=False):
    W = W.astype(f32)
    G = W.reshape(-1, g) if axis == 1 else W.reshape(g, -1)
    mn = G.min(axis=axis, keepdims=True); mx = G.max(axis=axis, keepdims=True)
    max_v = f32(2 ** nbits - 1)
    denom = (mx - mn).astype(f32)
    scale = ((f32(1) / denom).astype(f32) * max_v).astype(f32)
    scale = np.where(np.abs(denom) <= f32(1e-4), f32(1), scale).astype(f32)
    scale = np.minimum(scale, f32(2e4))
    zero = (-mn * scale).astype(f32)
    if round_zero: zero = np.round(zero).astype(f32)
    iters = 0
    if optimize:
        best = f32(np.inf)
        for _ in range(20):
            iters += 1
            Wq = np.clip(np.round(((G * scale).astype(f32) + zero).astype(f32)), 0, max_v).astype(f32)
            Wr = ((Wq - zero).astype(f32) / scale).astype(f32)
            D = (G - Wr).astype(f32)
            We = shrink(D)
            T = (Wq - ((G - We).astype(f32) * scale).astype(f32)).astype(f32)
            s = sum_rows(T) if axis == 0 else sum_cols(T)
            zero = (s / f32(G.shape[axis])).astype(f32)
            err = f32(inner_sum(np.abs(D).ravel().astype(f32)) / f32(D.size))
            if err < best: best = err
            else: break
    Wq = np.clip(np.round(((G * scale).astype(f32) + zero).astype(f32)), 0, max_v).astype(np.uint8)
    return Wq, (f32(1) / scale).astype(f32), zero, iters

def lcg_weights(n, seed, exp):
    # w = (u1 + u2 - 2^23) * 2^-exp with u = 23-bit LCG outputs: exact float32, triangular around 0
    x = seed & 0xFFFFFFFF; out = np.empty(n, f32)
    for i in range(n):
        x = (1664525 * x + 1013904223) & 0xFFFFFFFF; u1 = x >> 9
        x = (1664525 * x + 1013904223) & 0xFFFFFFFF; u2 = x >> 9
        out[i] = f32((u1 + u2 - (1 << 23)) * 2.0 ** -exp)
    return out

cases = []
specs = [  # name, shape, g, axis, nbits list, seed, exp
    ("axis0-16x24-g8", (16, 24), 8, 0, [1, 2, 3, 4, 5, 6, 8], 1, 24),
    ("axis0-64x40-g64", (64, 40), 64, 0, [1, 2, 3, 4, 8], 2, 28),
    ("axis0-8x3-g8", (8, 3), 8, 0, [2, 3, 4, 8], 3, 23),
    ("axis0-64x1-g64", (64, 1), 64, 0, [2, 4], 4, 25),
    ("axis1-16x64-g64", (16, 64), 64, 1, [1, 2, 3, 4, 8], 5, 26),
    ("axis1-4x16-g8", (4, 16), 8, 1, [1, 2, 3, 4], 6, 22),
    ("axis0-256x32-g128-wide", (256, 32), 128, 0, [2, 3, 4], 7, 23),
]
for name, shape, g, axis, bits, seed, exp in specs:
    n = shape[0] * shape[1]
    W = lcg_weights(n, seed, exp)
    for b in bits:
        Wq, scale, zero, iters = quantize(W.reshape(shape), b, g, axis, True, b == 4)
        cases.append({"name": name, "shape": list(shape), "groupSize": g, "axis": axis, "nbits": b,
                      "seed": seed, "exponent": exp, "iterations": iters,
                      "codes": "".join("%02x" % c for c in Wq.ravel()),
                      "scale": [int(v) for v in scale.ravel().view(np.int32)],
                      "zero": [int(v) for v in zero.ravel().view(np.int32)]})
json.dump({"cases": cases}, sys.stdout, indent=1)

# float32-large.json: 256x256 weights (65536 elements, above torch's serial-reduction grain), SHA-256 of the
# codes (one byte each, row-major), of the scales and of the zeros (little-endian float32 bits):
#   ("large-256x256-g64", seed 31, exponent 29, 4 bits) and ("large-256x256-g64-shrink", seed 32, exponent 23, 2 bits)
