#!/usr/bin/env python3
"""Writes the seed corpus of adversarial rows for the row harnesses (fuzz/corpus/rows/).

Input layout (see fuzz/row_harness.hpp): byte 0 flags (bit 0 double, bit 1 raw IEEE values,
bit 2 NaN/+inf allowed, bit 4 constant upstream gradient), byte 1 exponent e + 140 for byte
codes, bytes 2-3 alpha code (little endian; < 64 picks 1.5, 2, 1.25, 3, 1.1, 1.01, 1.75, 4),
then the row: raw float/double values, or one byte per value (0 -inf, 1 NaN, 2 +inf, 3 the
smallest subnormal, b -> (b - 128) * 2^e).
"""
import math
import os
import random
import struct
import sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "rows")
os.makedirs(out, exist_ok=True)
rng = random.Random(20261128)
INF = float("inf")
NAN = float("nan")
FLT_MAX = 3.4028234663852886e38
ALPHAS = [0, 1, 2, 3, 4, 5, 6, 7, 40000, 20000, 60000]   # codes: common values and 1+10^x
count = 0


def raw(name, values, double, alpha=0, specials=False, const_dp=False):
    global count
    flags = 2 | (1 if double else 0) | (4 if specials else 0) | (16 if const_dp else 0)
    fmt = "<%d%s" % (len(values), "d" if double else "f")
    vals = [v if double or not math.isfinite(v) else max(-FLT_MAX, min(FLT_MAX, v)) for v in values]
    data = bytes([flags, 140]) + struct.pack("<H", alpha) + struct.pack(fmt, *vals)
    with open(os.path.join(out, "%s_%s_a%d" % (name, "f64" if double else "f32", alpha)), "wb") as f:
        f.write(data)
    count += 1


def coded(name, codes, exponent, alpha=0, specials=False, double=False):
    global count
    flags = (1 if double else 0) | (4 if specials else 0)
    data = bytes([flags, exponent + 140]) + struct.pack("<H", alpha) + bytes(codes)
    with open(os.path.join(out, "%s_e%d_a%d" % (name, exponent, alpha)), "wb") as f:
        f.write(data)
    count += 1


def gauss(n, s=1.0):
    return [rng.gauss(0, s) for _ in range(n)]


for double in (False, True):
    for a in ALPHAS:
        for n in (1, 2, 3, 7, 8, 9, 15, 16, 17, 33):
            raw("gauss_n%d" % n, gauss(n), double, a)
        raw("pm1e30", [1e30, -1e30, 1e30, 0.0, -1e30, 5e29, 1e30 * (1 - 1e-7)], double, a)
        raw("scale1e-30", [x * 1e-30 for x in gauss(19)], double, a)
        raw("ties", [2.0] * 5 + [1.0] * 6 + [2.0] * 6, double, a)
        raw("all_equal", [-7.5] * 23, double, a)
        raw("all_negative", [-1000.0 - i for i in range(21)], double, a)
        raw("exp_overflow", [89.0, 100.0, 710.0, 1e4, 88.7, 709.8, -745.2, 0.0, 1e5], double, a)
        raw("neg_inf_but_one", [-INF] * 16 + [3.0] + [-INF] * 16, double, a)
        raw("all_neg_inf", [-INF] * 17, double, a)
        raw("nan_inside", gauss(8) + [NAN] + gauss(8), double, a, specials=True)
        raw("pos_inf_inside", gauss(9) + [INF] + [-INF] + gauss(6), double, a, specials=True)
        raw("max_range", [FLT_MAX, -FLT_MAX, 0.0, FLT_MAX, -1.0], double, a)
        raw("denormals", [1e-45, -1e-45, 0.0, 1e-40, 1e-310 if double else 1e-44], double, a)
        raw("const_dp", gauss(31, 0.3), double, a, const_dp=True)
        raw("dense_n1000", gauss(1000, 0.25), double, a)
        raw("sparse_n1000", gauss(1000), double, a)
        raw("one_dominant", [50.0] + gauss(40), double, a)
        raw("near_ties", [1.0 + i * (1e-7 if not double else 1e-15) for i in range(17)], double, a)
for a in ALPHAS:
    for e in (-140, -100, -20, -7, 0, 20, 100, 115):
        coded("bytes_rand", [rng.randrange(4, 256) for _ in range(37)], e, a)
        coded("bytes_masked", [rng.choice([0, 0, 0, rng.randrange(4, 256)]) for _ in range(41)], e, a, double=True)
    coded("bytes_ties", [200] * 9 + [100] * 9 + [200] * 8, -3, a)
    coded("bytes_specials", [130, 1, 140, 0, 2, 128], 0, a, specials=True)

# Attention (fuzz/fuzz_attention.cpp): flags (bit 0 double, 1 causal, 2 key_lengths, 3 mask,
# 4 poison unseen K/V, 5 per-batch/head mask, 6-7 normalizer), shape bytes (B/H/KH, Nq, Nk, D),
# scale code, alpha byte, magnitude byte, threads byte, then key lengths / mask density /
# planted ties and spikes.
att = os.path.join(os.path.dirname(out), "attention")
os.makedirs(att, exist_ok=True)
acount = 0
for norm in range(4):
    for double in (0, 1):
        for variant in range(6):
            flags = double | (norm << 6) | [0, 2, 4 | 16, 8 | 16, 2 | 4 | 8 | 16 | 32, 2 | 16][variant]
            shape = [rng.randrange(256), rng.choice([1, 3, 7, 9]), rng.choice([0, 1, 5, 8, 16, 17, 33, 40]),
                     rng.choice([0, 1, 4, 8, 16, 17])]
            tail = [rng.choice([0, 16, 20]), rng.randrange(256), rng.choice([12, 14, 20, 23, 0]), rng.randrange(3)]
            extra = [rng.randrange(256) for _ in range(12)]
            with open(os.path.join(att, "att_n%d_%s_v%d" % (norm, "f64" if double else "f32", variant)), "wb") as f:
                f.write(bytes([flags] + shape + tail + extra))
            acount += 1
print("wrote %d seeds to %s and %d to %s" % (count, out, acount, att), file=sys.stderr)
