#!/usr/bin/env python3
"""The GPU check's PyTorch side: the same cases as symclone-gpu's, timed in PyTorch on the same card.

  1. matmul 4096^3 in float32 with TF32 off (the arithmetic the engine's kernels do),
  2. conv2d forward and backward at SPEC §4's first two G-CNN layers (batch 64, 28x28, 3x3:
     lifting 1->10x4 and P4 10x4->20x4 as plain convolutions of the same sizes),
  3. one training epoch of gcnn and of faux-gcnn (SPEC §4's networks, 28x28, 9,000 digits, batch 64,
     Adam): gcnn with its lifting and P4 group convolutions; faux-gcnn with the same shapes as the
     engine's cloned layers (nb = 9 dense blocks per layer, Z_b = B_b X as one matrix product, then
     the contraction with the per-pair coefficients). The digits and the blocks are random: the
     timing does not depend on their values, and this script measures time only.

usage: torch-check.py [--small] [--device cuda|cpu] [--json FILE]
  --small   sizes for a CPU (matmul 512^3, 600 digits): checks the script itself
Prints one Markdown table on stdout (and JSON with --json); exits 3 when PyTorch is missing.
"""
import argparse
import json
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch-check: PyTorch is not installed here; nothing measured", file=sys.stderr)
    sys.exit(3)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(dev, f, reps):
    """Median seconds of `reps` calls of f after two warm-ups."""
    for _ in range(2):
        f()
    sync(dev)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        sync(dev)
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def rot_filters(w):
    """A P4 filter bank [o, i, 4, k, k] as the plain conv filter of the group convolution:
    out (o, r) reads in (i, s) through rot90(w[o, i, (s - r) % 4], r)."""
    o, i, _, k, _ = w.shape
    banks = []
    for r in range(4):
        shifted = torch.roll(w, shifts=r, dims=2)
        banks.append(torch.rot90(shifted, r, dims=(3, 4)))
    return torch.stack(banks, 1).reshape(o * 4, i * 4, k, k)


def lift_filters(w):
    """A lifting filter bank [o, 1, k, k] as the plain conv filter [o*4, 1, k, k]."""
    return torch.stack([torch.rot90(w, r, dims=(2, 3)) for r in range(4)], 1).reshape(
        -1, w.shape[1], w.shape[2], w.shape[3]
    )


class Gcnn(torch.nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        p = torch.nn.Parameter
        self.lift = p(torch.randn(10, 1, 3, 3) / 3)
        self.p1 = p(torch.randn(20, 10, 4, 3, 3) / 9.5)
        self.p2 = p(torch.randn(20, 20, 4, 3, 3) / 13.4)
        self.p3 = p(torch.randn(20, 20, 4, 3, 3) / 13.4)
        self.b = torch.nn.ParameterList([p(torch.zeros(c * 4)) for c in (10, 20, 20, 20)])
        self.fc1 = torch.nn.Linear(20, 50)
        self.fc2 = torch.nn.Linear(50, classes)

    def forward(self, x):
        x = F.relu(F.conv2d(x, lift_filters(self.lift), self.b[0]))
        x = F.relu(F.conv2d(x, rot_filters(self.p1), self.b[1]))
        x = F.max_pool2d(x, 2)
        x = F.relu(F.conv2d(x, rot_filters(self.p2), self.b[2]))
        x = F.relu(F.conv2d(x, rot_filters(self.p3), self.b[3]))
        x = F.max_pool2d(x, 2)
        x = x.mean(dim=(2, 3)).reshape(x.shape[0], 20, 4).mean(2)
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5, self.training))


class Cloned(torch.nn.Module):
    """A cloned layer's shape of work: nb frozen dense blocks on d x d inputs, Z_b = B_b X for every
    input map as one matrix product, then Z contracted with the trainable per-pair coefficients."""

    def __init__(self, d, cin, cout, groups_in, nb=9):
        super().__init__()
        self.d, self.nb, self.gin = d, nb, groups_in
        n_out = (d - 2) ** 2
        self.register_buffer("blocks", torch.randn(d * d, nb * n_out) / d)
        self.coef = torch.nn.Parameter(torch.randn(cout * 4, cin * groups_in, nb) / (3 * cin))
        self.bias = torch.nn.Parameter(torch.zeros(cout * 4))

    def forward(self, x):
        n, c, d, _ = x.shape
        z = (x.reshape(n * c, d * d) @ self.blocks).reshape(n, c, self.nb, -1)
        y = torch.einsum("ncbp,ocb->nop", z, self.coef) + self.bias[None, :, None]
        return y.reshape(n, -1, d - 2, d - 2)


class FauxGcnn(torch.nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.l1 = Cloned(28, 1, 10, 1)
        self.l2 = Cloned(26, 10, 10, 4)
        self.l3 = Cloned(12, 10, 20, 4)
        self.l4 = Cloned(10, 20, 20, 4)
        self.fc1 = torch.nn.Linear(20, 50)
        self.fc2 = torch.nn.Linear(50, classes)

    def forward(self, x):
        x = F.relu(self.l1(x))
        x = F.max_pool2d(F.relu(self.l2(x)), 2)
        x = F.relu(self.l3(x))
        x = F.max_pool2d(F.relu(self.l4(x)), 2)
        x = x.mean(dim=(2, 3)).reshape(x.shape[0], 20, 4).mean(2)
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5, self.training))


def epoch_seconds(dev, model, n):
    torch.manual_seed(0)
    xs = torch.rand(n, 1, 28, 28, device=dev)
    ys = torch.randint(0, 10, (n,), device=dev)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()

    def one_epoch():
        for i in range(0, n, 64):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xs[i : i + 64]), ys[i : i + 64]).backward()
            opt.step()

    one_epoch()  # warm-up: kernels chosen, memory allocated
    sync(dev)
    t = time.perf_counter()
    one_epoch()
    sync(dev)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    rows = []

    s = 512 if a.small else 4096
    m = torch.randn(s, s, device=dev)
    t = timed(dev, lambda: m @ m, 3 if a.small else 10)
    rows.append((f"torch matmul {s}³ f32, TF32 off", f"{t * 1e3:.2f} ms", f"{2 * s**3 / t / 1e9:.0f} GFLOP/s"))

    batch = 8 if a.small else 64
    for what, cin, cout, side in (("lift 1→10×4", 1, 40, 28), ("P4 10×4→20×4", 40, 80, 26)):
        x = torch.randn(batch, cin, side, side, device=dev, requires_grad=True)
        w = torch.randn(cout, cin, 3, 3, device=dev, requires_grad=True)
        fwd = timed(dev, lambda: F.conv2d(x, w), 5)
        y = F.conv2d(x, w)
        g = torch.randn_like(y)
        bwd = timed(dev, lambda: torch.autograd.grad(y, (x, w), g, retain_graph=True), 5)
        flops = 2 * batch * cout * cin * 9 * (side - 2) ** 2
        rows.append(
            (f"torch conv2d {what}, {side}×{side}, batch {batch}",
             f"fwd {fwd * 1e3:.3f} ms, bwd {bwd * 1e3:.3f} ms",
             f"fwd {flops / fwd / 1e9:.0f} GFLOP/s")
        )

    n = 600 if a.small else 9000
    for label, model in (("gcnn", Gcnn()), ("faux-gcnn", FauxGcnn())):
        t = epoch_seconds(dev, model.to(dev), n)
        rows.append((f"torch one epoch of {label}, 28×28, {n} digits, batch 64", f"{t:.2f} s", f"{n / t:.0f} images/s"))

    print(f"PyTorch {torch.__version__} on {name}\n")
    print("| case | time | rate |\n|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": name,
                       "rows": [dict(zip(("case", "time", "rate"), r)) for r in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
