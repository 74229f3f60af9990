// The KL penalty of SPEC §5 for one tensor, in δ form. The tensor is viewed as (outer, n, inner);
// each softmax runs over n. With p = softmax(w0) and δ = w - w0 (exact in f32 when w ≈ w0):
//   μ = Σ p δ,  e = δ - μ,  q = expm1(e) - e,  y = Σ p e + Σ p q,  L = log1p(y)
//   KL_row = Σ p_i expm1(e_i - L) e_i - Σ p_i q_i + (y - log1p(y))
//   ∂KL_row/∂w_i = p_new_i (e_i - L - KL_row),  p_new_i = p_i exp(e_i - L)
// so no two nearly equal log-probabilities are ever subtracted.

// Both outputs are multiplied by `scale` (1 / the tensor's size for the mean, times β for the
// penalty), so the caller needs no pass of its own to scale them. Row t is written at
// kl_row[row_off + t] (several tensors' rows side by side, summed at once); with `add` set the
// gradient is added to `grad` (a parameter's accumulated gradient) instead of written.
struct P {
    outer: u32,
    n: u32,
    inner: u32,
    scale: f32,
    row_off: u32,
    add: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> w0: array<f32>;
@group(0) @binding(3) var<storage, read_write> kl_row: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

// expm1(x) - x, accurate for small x.
fn expm1_minus_x(x: f32) -> f32 {
    if abs(x) < 1e-2 {
        let x2 = x * x;
        return x2 * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0))));
    }
    return exp(x) - 1.0 - x;
}

fn expm1_(x: f32) -> f32 {
    return x + expm1_minus_x(x);
}

fn log1p_(y: f32) -> f32 {
    if abs(y) < 1e-2 {
        return y - y * y * (0.5 - y * (1.0 / 3.0 - y * 0.25));
    }
    return log(1.0 + y);
}

// y - log1p(y), accurate for small y.
fn y_minus_log1p(y: f32) -> f32 {
    if abs(y) < 1e-2 {
        return y * y * (0.5 - y * (1.0 / 3.0 - y * 0.25));
    }
    return y - log(1.0 + y);
}

// The first element of row t (outer index t / inner, inner index t % inner); the row's n
// elements follow at a stride of p.inner.
fn row_base(t: u32) -> u32 {
    return (t / p.inner) * p.n * p.inner + t % p.inner;
}

@compute @workgroup_size(64)
fn kl_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 64u);
    if t >= p.outer * p.inner { return; }
    let base = row_base(t);
    let st = p.inner;
    // p = softmax(w0)
    var mx = w0[base];
    for (var i = 1u; i < p.n; i += 1u) {
        mx = max(mx, w0[base + i * st]);
    }
    var z = 0.0;
    for (var i = 0u; i < p.n; i += 1u) {
        z += exp(w0[base + i * st] - mx);
    }
    var mu = 0.0;
    for (var i = 0u; i < p.n; i += 1u) {
        let k = base + i * st;
        mu += exp(w0[k] - mx) / z * (w[k] - w0[k]);
    }
    var spe = 0.0;
    var spq = 0.0;
    for (var i = 0u; i < p.n; i += 1u) {
        let k = base + i * st;
        let pi = exp(w0[k] - mx) / z;
        let e = (w[k] - w0[k]) - mu;
        spe += pi * e;
        spq += pi * expm1_minus_x(e);
    }
    let y = spe + spq;
    let l = log1p_(y);
    var a = 0.0;
    for (var i = 0u; i < p.n; i += 1u) {
        let k = base + i * st;
        let pi = exp(w0[k] - mx) / z;
        let e = (w[k] - w0[k]) - mu;
        a += pi * expm1_(e - l) * e;
    }
    let kl = a - spq + y_minus_log1p(y);
    kl_row[p.row_off + t] = kl * p.scale;
    for (var i = 0u; i < p.n; i += 1u) {
        let k = base + i * st;
        let pi = exp(w0[k] - mx) / z;
        let e = (w[k] - w0[k]) - mu;
        let pn = pi * exp(e - l);
        let gk = pn * ((e - l) - kl) * p.scale;
        grad[k] = select(gk, grad[k] + gk, p.add != 0u);
    }
}

// The squared distance to the clone (`Penalty::L2` in src/ops/kl.rs): row t holds Σ (w − w0)² over
// the same n elements as kl_rows' row t (so the two penalties share row counts and offsets), times
// `scale`, and the gradient is 2 (w − w0) · scale. δ = w − w0 is exact in f32 when w ≈ w0. Unlike
// the KL, this sees a shift added to all n elements of a row, the direction a softmax ignores.
@compute @workgroup_size(64)
fn l2_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 64u);
    if t >= p.outer * p.inner { return; }
    let base = row_base(t);
    var s = 0.0;
    for (var i = 0u; i < p.n; i += 1u) {
        let k = base + i * p.inner;
        let d = w[k] - w0[k];
        s += d * d;
        let gk = 2.0 * d * p.scale;
        grad[k] = select(gk, grad[k] + gk, p.add != 0u);
    }
    kl_row[p.row_off + t] = s * p.scale;
}
