// Pooling. A tensor is viewed as planes (N, H, W) for spatial pooling, as (outer, 4, plane) for
// rotation pooling, and as (rows, n) for the global mean. Backward passes gather (each input element
// sums the outputs it fed), or, where max-pooling windows tile the planes, each window writes its
// own inputs: no input is written twice, so there are no atomics and results are deterministic.
//
// Max pooling breaks ties by the first index in row-major window order (strict > while scanning);
// the forward pass stores the arg-max (flat index in the plane) for the backward pass.

struct P {
    planes: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    k: u32,
    s: u32,
    total: u32,
    alpha: f32,
    relu: u32,      // max pooling: 1 = ReLU after the pool (a window whose max is not > 0 gives 0, and no arg-max)
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
// backward of max pooling: 1 = g, 2 = arg (read), 3 = dx
@group(0) @binding(2) var<storage, read> arg_r: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx3: array<f32>;
// backward of rotation max pooling: 1 = g, 2 = x (forward input), 3 = dx
@group(0) @binding(2) var<storage, read> xin: array<f32>;

const WG: u32 = 64u;

// ---- spatial max pool k×k stride s: x (N, H, W) → out, arg (N, Ho, Wo) ----
// With p.relu, ReLU follows: max(0, max(window)) is the max of the window's ReLUs, and a window
// whose max is not positive passes no gradient back (its arg-max is NO_ARG, which no input is).
const NO_ARG: u32 = 0xffffffffu;
@compute @workgroup_size(64)
fn maxpool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let ox = t % p.wo;
    let oy = (t / p.wo) % p.ho;
    let pl = t / (p.wo * p.ho);
    let base = pl * p.h * p.w;
    var best = x[base + oy * p.s * p.w + ox * p.s];
    var bi = oy * p.s * p.w + ox * p.s;
    for (var dy = 0u; dy < p.k; dy += 1u) {
        for (var dxx = 0u; dxx < p.k; dxx += 1u) {
            let q = (oy * p.s + dy) * p.w + ox * p.s + dxx;
            let v = x[base + q];
            if v > best {
                best = v;
                bi = q;
            }
        }
    }
    if p.relu != 0u && !(best > 0.0) {
        out[t] = 0.0;
        arg[t] = NO_ARG;
        return;
    }
    out[t] = best;
    arg[t] = bi;
}

// The output windows (range of oy) containing input row y: oy*s <= y < oy*s + k.
fn win_lo(y: u32) -> u32 {
    if y + 1u <= p.k { return 0u; }
    return (y + 1u - p.k + p.s - 1u) / p.s;
}

// dx[pl, y, x] = Σ over windows containing (y, x) whose arg-max is (y, x) of g.
@compute @workgroup_size(64)
fn maxpool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let xx = t % p.w;
    let yy = (t / p.w) % p.h;
    let pl = t / (p.w * p.h);
    let q = yy * p.w + xx;
    var acc = 0.0;
    let ylo = win_lo(yy);
    let yhi = min(yy / p.s + 1u, p.ho);
    let xlo = win_lo(xx);
    let xhi = min(xx / p.s + 1u, p.wo);
    for (var oy = ylo; oy < yhi; oy += 1u) {
        for (var ox = xlo; ox < xhi; ox += 1u) {
            let o = (pl * p.ho + oy) * p.wo + ox;
            if arg_r[o] == q {
                acc += x[o];
            }
        }
    }
    dx3[t] = acc;
}

// The same when the windows tile the planes exactly (k = s, h = ho·s, w = wo·s): one invocation per
// window writes its k² inputs (the gradient at the arg-max, 0 elsewhere), so every input is
// written once, with no search over the windows that contain it. p.total = the outputs.
@compute @workgroup_size(64)
fn maxpool_bwd_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let ox = t % p.wo;
    let oy = (t / p.wo) % p.ho;
    let pl = t / (p.wo * p.ho);
    let a = arg_r[t];
    let gv = x[t];
    let base = pl * p.h * p.w;
    for (var dy = 0u; dy < p.k; dy += 1u) {
        for (var dxx = 0u; dxx < p.k; dxx += 1u) {
            let q = (oy * p.s + dy) * p.w + ox * p.s + dxx;
            dx3[base + q] = select(0.0, gv, q == a);
        }
    }
}

// ---- spatial average pool k×k stride s ----
@compute @workgroup_size(64)
fn avgpool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let ox = t % p.wo;
    let oy = (t / p.wo) % p.ho;
    let pl = t / (p.wo * p.ho);
    let base = pl * p.h * p.w;
    var acc = 0.0;
    for (var dy = 0u; dy < p.k; dy += 1u) {
        for (var dxx = 0u; dxx < p.k; dxx += 1u) {
            acc += x[base + (oy * p.s + dy) * p.w + ox * p.s + dxx];
        }
    }
    out[t] = acc * p.alpha;
}

// dx[pl, y, x] = alpha · Σ over windows containing (y, x) of g. Bindings: 1 = g, 2 = dx.
@compute @workgroup_size(64)
fn avgpool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let xx = t % p.w;
    let yy = (t / p.w) % p.h;
    let pl = t / (p.w * p.h);
    var acc = 0.0;
    let yhi = min(yy / p.s + 1u, p.ho);
    let xhi = min(xx / p.s + 1u, p.wo);
    for (var oy = win_lo(yy); oy < yhi; oy += 1u) {
        for (var ox = win_lo(xx); ox < xhi; ox += 1u) {
            acc += x[(pl * p.ho + oy) * p.wo + ox];
        }
    }
    out[t] = acc * p.alpha;
}

// ---- rotation pooling: x (outer, n, plane) → out (outer, plane) over the orientation axis of a
// group map (n = p.k: 4 for P4, 8 for p4m); p.planes = outer, p.h = plane ----
@compute @workgroup_size(64)
fn rotpool_max(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let q = t % p.h;
    let o = t / p.h;
    let base = o * p.k * p.h + q;
    var best = x[base];
    for (var r = 1u; r < p.k; r += 1u) {
        best = max(best, x[base + r * p.h]);
    }
    out[t] = best;
}

// The mean sums each run of four orientations in pairs, ((x0 + x1) + (x2 + x3)), and the runs in
// order (n is 4 or 8).
@compute @workgroup_size(64)
fn rotpool_mean(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let q = t % p.h;
    let o = t / p.h;
    var acc = 0.0;
    for (var j = 0u; j < p.k; j += 4u) {
        let base = (o * p.k + j) * p.h + q;
        acc += (x[base] + x[base + p.h]) + (x[base + 2u * p.h] + x[base + 3u * p.h]);
    }
    out[t] = acc * p.alpha;
}

// dx[o, r, q] = g[o, q] if r is the first arg-max of x[o, :, q], else 0. Bindings: 1 = g, 2 = x, 3 = dx.
@compute @workgroup_size(64)
fn rotpool_max_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let q = t % p.h;
    let r = (t / p.h) % p.k;
    let o = t / (p.k * p.h);
    let base = o * p.k * p.h + q;
    var best = xin[base];
    var br = 0u;
    for (var s = 1u; s < p.k; s += 1u) {
        let v = xin[base + s * p.h];
        if v > best {
            best = v;
            br = s;
        }
    }
    dx3[t] = select(0.0, x[o * p.h + q], br == r);
}

// dx[o, r, q] = alpha · g[o, q] (mean over rotations: alpha = 1/4; global mean: plane = 1, alpha = 1/n).
// Bindings: 1 = g, 2 = dx. p.h = plane, p.k = the length of the pooled axis.
@compute @workgroup_size(64)
fn spread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let q = t % p.h;
    let o = t / (p.k * p.h);
    out[t] = x[o * p.h + q] * p.alpha;
}

// ---- global mean: x (rows, n) → out (rows); p.planes = rows, p.k = n, 4 partial sums, fixed order ----
@compute @workgroup_size(64)
fn global_mean(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let base = t * p.k;
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var j = 0u;
    for (; j + 4u <= p.k; j += 4u) {
        s0 += x[base + j];
        s1 += x[base + j + 1u];
        s2 += x[base + j + 2u];
        s3 += x[base + j + 3u];
    }
    for (; j < p.k; j += 1u) {
        s0 += x[base + j];
    }
    out[t] = ((s0 + s1) + (s2 + s3)) * p.alpha;
}
