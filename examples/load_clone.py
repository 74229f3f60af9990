#!/usr/bin/env python3
"""Load a symclone-gpu clone checkpoint with numpy and safetensors only, rebuild the cloned layer's
output on a digit, and print how far it is from the true equivariant layer.

    python3 examples/load_clone.py runs/<run>/clones/lift16.safetensors
    python3 examples/load_clone.py CLONE --probe probe.safetensors   # also compare with the engine

A clone checkpoint (SPEC.md sections 2 and 9) holds, for a clone named <stem> (z2<d>, lift<d>, p4<d>,
lift-d4-<d> or p4m<d>; d the input side; n_in = d*d, n_out = (d-2)**2):

    <stem>.blocks  (nb, n_out, n_in)   the blocks B_b
    <stem>.m1      (9, m)              mixing matrix M1
    <stem>.m2      (9*m, nb)           mixing matrix M2
    <stem>.t       lift: (4*9, 9)      the code transforms T_r, stacked over r (lift-d4: 8*9)
                   p4:   (16*9, 4*9)   T_{r,s}, stacked over (r, s); columns (t, tap)
                                       (p4m: (64*9, 8*9))

and metadata kind, d, nb, m. For a 3x3 filter code c the coefficients are
h(c) = flatten_{j,q}(c_j * M1[j, q]) @ M2 and the layer is x -> sum_b h(c)_b B_b x:

    z2:   y    = sum_b h(c)_b B_b x
    lift: y[r] = sum_b h(T_r c)_b B_b x,                      r = 0..3 (lift-d4: 0..7)
    p4:   y[r] = sum_s sum_b h(T_{r,s} c)_b B_b x[s],          c of 4*9 (one 3x3 per input plane;
                                                              p4m: 8 planes, 8*9)

The true layers (SPEC.md sections 1 and 9; corr = valid cross-correlation as PyTorch's conv2d; the
group element k = 4m + r acts on a plane as g_k A = flipud^m(rot90(A, r)), numpy's functions):
z2 corr(x, c); the lifts y[k] = corr(x, g_k c); p4 and p4m y[k] = sum_s corr(x[s], g_k c[src(k, s)]),
src(k, s) the index of g_k^-1 g_s (SPEC section 9's table; (s - k) mod 4 for C4).

The digit is the first image of the embedded MNIST subset (assets/mnist-10k), brought to d x d as
the quick preset does (halved to 14x14 by 2x2 means and centred), or the input of --probe. A P4 clone
takes four planes, a p4m clone eight; the digit under each group element serves.

With --probe FILE (a safetensors file with tensors input, code, clone_output and true_output, as
tests/python_example.rs writes from the engine) the script also checks that its outputs agree with
the engine's to float32 precision, and exits with status 1 when they do not.
"""

import argparse
import gzip
import math
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

K = 3

# SPEC section 9: SRC[k][s] is the index of g_k^-1 g_s; its upper-left 4x4 corner is C4's.
SRC = [
    [0, 1, 2, 3, 4, 5, 6, 7],
    [3, 0, 1, 2, 5, 6, 7, 4],
    [2, 3, 0, 1, 6, 7, 4, 5],
    [1, 2, 3, 0, 7, 4, 5, 6],
    [4, 5, 6, 7, 0, 1, 2, 3],
    [5, 6, 7, 4, 3, 0, 1, 2],
    [6, 7, 4, 5, 2, 3, 0, 1],
    [7, 4, 5, 6, 1, 2, 3, 0],
]

# Input and output planes of each kind.
PLANES_IN = {"z2": 1, "lift": 1, "p4": 4, "lift-d4": 1, "p4m": 8}
PLANES_OUT = {"z2": 1, "lift": 4, "p4": 4, "lift-d4": 8, "p4m": 8}


def act(a, k):
    """The group element k = 4m + r on a plane: flipud^m(rot90(a, r))."""
    b = np.rot90(a, k % 4)
    return np.flipud(b) if k >= 4 else b


def stem(kind, d):
    """The clone's name: kind and d, with a '-' after a kind name that ends in a digit of its own."""
    return f"{kind}-{d}" if kind == "lift-d4" else f"{kind}{d}"


def coefficients(codes, m1, m2):
    """h(c) for codes (rows, 9): flatten_{j,q}(c_j M1[j,q]) @ M2 -> (rows, nb)."""
    rows = codes.shape[0]
    mixed = (codes[:, :, None] * m1[None, :, :]).reshape(rows, -1)
    return mixed @ m2


def transformed_codes(kind, t, code):
    """The codes the coefficient map sees, (R, 9): z2 c; the lifts T_r c; p4 and p4m T_{r,s} c."""
    if kind == "z2":
        return code.reshape(1, K * K)
    return (t @ code).reshape(-1, K * K)


def clone_output(kind, tensors, code, x, absolute=False):
    """The clone's output on x ((d, d), or (S, d, d) for p4 and p4m): (o, o), or (R, o, o).

    With absolute=True every factor is replaced by its absolute value: the same sums without
    cancellation, whose size bounds the rounding error of the float32 computation."""
    f = np.abs if absolute else (lambda a: a)
    blocks, m1, m2 = (f(tensors[n].astype(np.float64)) for n in ("blocks", "m1", "m2"))
    t = f(tensors["t"].astype(np.float64)) if "t" in tensors else None
    nb, n_out, n_in = blocks.shape
    o = math.isqrt(n_out)
    h = coefficients(transformed_codes(kind, t, f(code.astype(np.float64))), m1, m2)
    pin, pout = PLANES_IN[kind], PLANES_OUT[kind]
    if pin > 1:
        xs = f(x.astype(np.float64)).reshape(pin, n_in)
        bx = np.einsum("bon,sn->sbo", blocks, xs)  # B_b x_s: (S, nb, n_out)
        h = h.reshape(pout, pin, nb)  # (r, s, nb)
        return np.einsum("rsb,sbo->ro", h, bx).reshape(pout, o, o)
    bx = blocks @ f(x.astype(np.float64)).reshape(n_in)  # (nb, n_out)
    y = h @ bx  # (R, n_out)
    return y.reshape(o, o) if kind == "z2" else y.reshape(pout, o, o)


def corr(x, w):
    """Valid cross-correlation of a (d, d) image with a (3, 3) filter."""
    d = x.shape[0]
    o = d - K + 1
    y = np.zeros((o, o))
    for u in range(K):
        for v in range(K):
            y += w[u, v] * x[u : u + o, v : v + o]
    return y


def true_output(kind, code, x):
    """The true equivariant layer with filter `code` (no bias) on x."""
    x = x.astype(np.float64)
    code = code.astype(np.float64)
    pin, pout = PLANES_IN[kind], PLANES_OUT[kind]
    if kind == "z2":
        return corr(x, code.reshape(K, K))
    if pin == 1:
        w = code.reshape(K, K)
        return np.stack([corr(x, act(w, k)) for k in range(pout)])
    w = code.reshape(pin, K, K)
    return np.stack(
        [sum(corr(x[s], act(w[SRC[k][s]], k)) for s in range(pin)) for k in range(pout)]
    )


def digit(d):
    """The first embedded MNIST digit at d x d, values in [0, 1] (v / 255, as the engine)."""
    path = os.path.join(os.path.dirname(__file__), "..", "assets", "mnist-10k", "images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as fh:
        raw = fh.read(16 + 28 * 28)
    img = np.frombuffer(raw[16:], dtype=np.uint8).reshape(28, 28).astype(np.uint32)
    if d < 28:  # halve by 2x2 means (rounded), then centre on d x d (or crop to it)
        img = (img[0::2, 0::2] + img[0::2, 1::2] + img[1::2, 0::2] + img[1::2, 1::2] + 2) // 4
    s = img.shape[0]
    out = np.zeros((d, d), dtype=np.uint32)
    if d >= s:
        o = (d - s) // 2
        out[o : o + s, o : o + s] = img
    else:
        o = (s - d) // 2
        out = img[o : o + d, o : o + d]
    return out.astype(np.float32) / 255.0


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clone", help="a clone checkpoint, e.g. runs/<run>/clones/lift16.safetensors")
    ap.add_argument("--probe", help="the engine's input, code and outputs to compare with")
    ap.add_argument("--seed", type=int, default=0, help="seed of the filter code (without --probe)")
    args = ap.parse_args()

    with safe_open(args.clone, framework="numpy") as fh:
        meta = fh.metadata() or {}
    kind, d = meta["kind"], int(meta["d"])
    name = stem(kind, d)
    pin = PLANES_IN[kind]
    tensors = {k[len(name) + 1 :]: v for k, v in load_file(args.clone).items() if k.startswith(name + ".")}
    for k, v in sorted(tensors.items()):
        print(f"{name}.{k}: {v.dtype} {list(v.shape)}")

    if args.probe:
        probe = load_file(args.probe)
        code, x = probe["code"].reshape(-1), probe["input"]
    else:
        rng = np.random.default_rng(args.seed)
        code = rng.uniform(0.0, 1.0, size=pin * K * K).astype(np.float32)
        x = digit(d)
    x = x.reshape((pin, d, d) if pin > 1 else (d, d))
    if pin > 1 and not args.probe:
        x = np.stack([act(x[0], s) for s in range(pin)])

    y = clone_output(kind, tensors, code, x)
    y_true = true_output(kind, code, x)
    print(f"{name} clone: output {list(y.shape)}, mean square {np.mean(y_true ** 2):.4g} (true layer)")
    print(f"clone vs true layer: relative difference {rel(y, y_true):.3e}, MSE {np.mean((y - y_true) ** 2):.3e}")

    if not args.probe:
        return 0
    # float32 rounding: each of the chained sums (T, M1/M2, the blocks over n_in and the planes)
    # adds about sqrt(terms) * 2^-24 of the size of the sums without cancellation.
    nb, _, n_in = tensors["blocks"].shape
    m = tensors["m1"].shape[1]
    terms = code.size + K * K * m + nb + n_in * pin
    scale = np.linalg.norm(clone_output(kind, tensors, code, x, absolute=True))
    tol = 4.0 * math.sqrt(terms) * 2.0**-24 * scale / max(np.linalg.norm(y), 1e-300)
    e_clone = rel(y.reshape(-1), probe["clone_output"].astype(np.float64).reshape(-1))
    e_true = rel(y_true.reshape(-1), probe["true_output"].astype(np.float64).reshape(-1))
    tol_true = 4.0 * math.sqrt(K * K * max(pin, 4)) * 2.0**-24 * np.linalg.norm(
        true_output(kind, np.abs(code), np.abs(x))
    ) / max(np.linalg.norm(y_true), 1e-300)
    ok = e_clone <= tol and e_true <= tol_true
    print(f"engine vs numpy, clone output: relative difference {e_clone:.3e} (float32 bound {tol:.3e})")
    print(f"engine vs numpy, true layer: relative difference {e_true:.3e} (float32 bound {tol_true:.3e})")
    print("agree" if ok else "DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
