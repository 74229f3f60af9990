#!/usr/bin/env python3
"""Load a symclone-gpu clone checkpoint with numpy and safetensors only, rebuild the cloned layer's
output on a digit, and print how far it is from the true equivariant layer.

    python3 examples/load_clone.py runs/<run>/clones/lift16.safetensors
    python3 examples/load_clone.py CLONE --probe probe.safetensors   # also compare with the engine

A clone checkpoint (SPEC.md section 2) holds, for a clone named <kind><d> (z2, lift or p4; d the
input side; n_in = d*d, n_out = (d-2)**2):

    <kind><d>.blocks  (nb, n_out, n_in)   the blocks B_b
    <kind><d>.m1      (9, m)              mixing matrix M1
    <kind><d>.m2      (9*m, nb)           mixing matrix M2
    <kind><d>.t       lift: (4*9, 9)      the code transforms T_r, stacked over r
                      p4:   (16*9, 4*9)   T_{r,s}, stacked over (r, s); columns (t, tap)

and metadata kind, d, nb, m. For a 3x3 filter code c the coefficients are
h(c) = flatten_{j,q}(c_j * M1[j, q]) @ M2 and the layer is x -> sum_b h(c)_b B_b x:

    z2:   y    = sum_b h(c)_b B_b x
    lift: y[r] = sum_b h(T_r c)_b B_b x,                      r = 0..3
    p4:   y[r] = sum_s sum_b h(T_{r,s} c)_b B_b x[s],          c of 4*9 (one 3x3 per input rotation)

The true layers (SPEC.md section 1; corr = valid cross-correlation as PyTorch's conv2d, rot90 =
numpy's counter-clockwise rotation): z2 corr(x, c); lift y[r] = corr(x, rot90^r(c)); p4
y[r] = sum_s corr(x[s], rot90^r(c[(s - r) mod 4])).

The digit is the first image of the embedded MNIST subset (assets/mnist-10k), brought to d x d as
the quick preset does (halved to 14x14 by 2x2 means and centred), or the input of --probe. A P4 clone
takes four planes; the digit's four rotations serve.

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


def coefficients(codes, m1, m2):
    """h(c) for codes (rows, 9): flatten_{j,q}(c_j M1[j,q]) @ M2 -> (rows, nb)."""
    rows = codes.shape[0]
    mixed = (codes[:, :, None] * m1[None, :, :]).reshape(rows, -1)
    return mixed @ m2


def transformed_codes(kind, t, code):
    """The codes the coefficient map sees, (R, 9): z2 c; lift T_r c; p4 T_{r,s} c in (r, s) order."""
    if kind == "z2":
        return code.reshape(1, K * K)
    return (t @ code).reshape(-1, K * K)


def clone_output(kind, tensors, code, x, absolute=False):
    """The clone's output on x ((d, d), or (4, d, d) for p4): (o, o), or (4, o, o).

    With absolute=True every factor is replaced by its absolute value: the same sums without
    cancellation, whose size bounds the rounding error of the float32 computation."""
    f = np.abs if absolute else (lambda a: a)
    blocks, m1, m2 = (f(tensors[n].astype(np.float64)) for n in ("blocks", "m1", "m2"))
    t = f(tensors["t"].astype(np.float64)) if "t" in tensors else None
    nb, n_out, n_in = blocks.shape
    o = math.isqrt(n_out)
    h = coefficients(transformed_codes(kind, t, f(code.astype(np.float64))), m1, m2)
    if kind == "p4":
        xs = f(x.astype(np.float64)).reshape(4, n_in)
        bx = np.einsum("bon,sn->sbo", blocks, xs)  # B_b x_s: (4 s, nb, n_out)
        h = h.reshape(4, 4, nb)  # (r, s, nb)
        return np.einsum("rsb,sbo->ro", h, bx).reshape(4, o, o)
    bx = blocks @ f(x.astype(np.float64)).reshape(n_in)  # (nb, n_out)
    y = h @ bx  # (R, n_out)
    return y.reshape(o, o) if kind == "z2" else y.reshape(4, o, o)


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
    if kind == "z2":
        return corr(x, code.reshape(K, K))
    if kind == "lift":
        w = code.reshape(K, K)
        return np.stack([corr(x, np.rot90(w, r)) for r in range(4)])
    w = code.reshape(4, K, K)
    return np.stack(
        [sum(corr(x[s], np.rot90(w[(s - r) % 4], r)) for s in range(4)) for r in range(4)]
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
    name = f"{kind}{d}"
    tensors = {k[len(name) + 1 :]: v for k, v in load_file(args.clone).items() if k.startswith(name + ".")}
    for k, v in sorted(tensors.items()):
        print(f"{name}.{k}: {v.dtype} {list(v.shape)}")

    if args.probe:
        probe = load_file(args.probe)
        code, x = probe["code"].reshape(-1), probe["input"]
    else:
        rng = np.random.default_rng(args.seed)
        code = rng.uniform(0.0, 1.0, size=(36 if kind == "p4" else 9)).astype(np.float32)
        x = digit(d)
    x = x.reshape((4, d, d) if kind == "p4" else (d, d))
    if kind == "p4" and not args.probe:
        x = np.stack([np.rot90(x[0], s) for s in range(4)])

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
    terms = code.size + K * K * m + nb + n_in * (4 if kind == "p4" else 1)
    scale = np.linalg.norm(clone_output(kind, tensors, code, x, absolute=True))
    tol = 4.0 * math.sqrt(terms) * 2.0**-24 * scale / max(np.linalg.norm(y), 1e-300)
    e_clone = rel(y.reshape(-1), probe["clone_output"].astype(np.float64).reshape(-1))
    e_true = rel(y_true.reshape(-1), probe["true_output"].astype(np.float64).reshape(-1))
    tol_true = 4.0 * math.sqrt(K * K * 4) * 2.0**-24 * np.linalg.norm(
        true_output(kind, np.abs(code), np.abs(x))
    ) / max(np.linalg.norm(y_true), 1e-300)
    ok = e_clone <= tol and e_true <= tol_true
    print(f"engine vs numpy, clone output: relative difference {e_clone:.3e} (float32 bound {tol:.3e})")
    print(f"engine vs numpy, true layer: relative difference {e_true:.3e} (float32 bound {tol_true:.3e})")
    print("agree" if ok else "DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
