// Cloned-operator kernels (SPEC §2): the coefficient map h(c) = flatten_{j,q}(c_j · M1[j, q]) @ M2 is
// split into `mix` (the outer product with M1, here) and a matrix product with M2 (matmul.wgsl).

struct P {
    rows: u32,
    k2: u32,
    m: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// out[r, j*m + q] = c[r, j] * m1[j, q]      (in1 = c (rows, k2), in2 = m1 (k2, m))
@compute @workgroup_size(256)
fn mix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    let w = p.k2 * p.m;
    if t >= p.rows * w { return; }
    let r = t / w;
    let jq = t % w;
    let j = jq / p.m;
    out[t] = in1[r * p.k2 + j] * in2[jq];
}

// out[r, j] = Σ_q g[r, j*m + q] * m1[j, q]  (in1 = g, in2 = m1)
@compute @workgroup_size(256)
fn mix_bwd_c(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t >= p.rows * p.k2 { return; }
    let r = t / p.k2;
    let j = t % p.k2;
    var s = 0.0;
    for (var q = 0u; q < p.m; q += 1u) {
        s += in1[r * p.k2 * p.m + j * p.m + q] * in2[j * p.m + q];
    }
    out[t] = s;
}

// out[j, q] = Σ_r g[r, j*m + q] * c[r, j]   (in1 = g, in2 = c)
@compute @workgroup_size(256)
fn mix_bwd_m1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    let w = p.k2 * p.m;
    if t >= w { return; }
    let j = t / p.m;
    var s = 0.0;
    for (var r = 0u; r < p.rows; r += 1u) {
        s += in1[r * w + t] * in2[r * p.k2 + j];
    }
    out[t] = s;
}

// The exact loss's tap sums (B Sᵀ, with S the k² tap-selection matrices of a valid k×k correlation
// on d×d inputs): out[b, ky·k + kx] = Σ_{a, c < w} in1[b, a·w + c, (a + ky)·d + c + kx], w = d − k + 1
// (in1 = blocks (rows = nb, n_out, n_in), k2 = k, m = d). One invocation per output, a then c.
@compute @workgroup_size(64)
fn taps(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 64u);
    let kk = p.k2 * p.k2;
    if t >= p.rows * kk { return; }
    let b = t / kk;
    let ky = (t % kk) / p.k2;
    let kx = t % p.k2;
    let d = p.m;
    let w = d + 1u - p.k2;
    let base = b * w * w * d * d;
    var s = 0.0;
    for (var a = 0u; a < w; a += 1u) {
        for (var c = 0u; c < w; c += 1u) {
            s += in1[base + (a * w + c) * d * d + (a + ky) * d + c + kx];
        }
    }
    out[t] = s;
}

// Its adjoint (X S): out[b, o, i] = in1[b, ky·k + kx] where input i is tap (ky, kx) of output o,
// else 0 (in1 = x (rows = nb, k²), k2 = k, m = d).
@compute @workgroup_size(256)
fn taps_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    let d = p.m;
    let w = d + 1u - p.k2;
    let n_in = d * d;
    let n_out = w * w;
    if t >= p.rows * n_out * n_in { return; }
    let i = t % n_in;
    let o = (t / n_in) % n_out;
    let b = t / (n_in * n_out);
    let a = o / w;
    let c = o % w;
    let iy = i / d;
    let ix = i % d;
    var v = 0.0;
    if iy >= a && iy < a + p.k2 && ix >= c && ix < c + p.k2 {
        v = in1[(b * p.k2 + iy - a) * p.k2 + ix - c];
    }
    out[t] = v;
}
