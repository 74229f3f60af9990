// Cloned-operator kernels (SPEC §2): the coefficient map h(c) = flatten_{j,q}(c_j · M1[j, q]) @ M2 is
// split into `mix` (the outer product with M1, here) and a matrix product with M2 (matmul.wgsl).

struct P {
    rows: u32,
    k2: u32,
    m: u32,
    flags: u32,
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
// else 0 (in1 = x (rows = nb, k²), k2 = k, m = d); with flags = 1, in2[b, o, i] minus that (B − X S,
// in2 = the blocks). Grid: x over the inputs i, 64 per workgroup (the lanes write consecutive
// inputs), y = output o, z = block b: no division of a flat index.
@compute @workgroup_size(64)
fn taps_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let d = p.m;
    let w = d + 1u - p.k2;
    let n_in = d * d;
    let i = gid.x;
    if i >= n_in { return; }
    let o = wid.y;
    let b = wid.z;
    let a = o / w;
    let c = o - a * w;
    let iy = i / d;
    let ix = i - iy * d;
    var v = 0.0;
    if iy >= a && iy < a + p.k2 && ix >= c && ix < c + p.k2 {
        v = in1[(b * p.k2 + iy - a) * p.k2 + ix - c];
    }
    let at = (b * w * w + o) * n_in + i;
    if p.flags == 1u {
        v = in2[at] - v;
    }
    out[at] = v;
}

// The Gram matrix B Bᵀ of a skinny B (rows = nb, m = L columns), as partial sums over k2 = T lanes:
// out[t, r, c] = Σ_{j ≡ t (mod T)} B[r, j]·B[c, j], j ascending. Workgroup y picks a 4 × 4 block
// (r, c) on or above the diagonal and writes it at (r, c) and (c, r), so the result is exactly
// symmetric; the lanes of a workgroup read consecutive columns. A fixed-order sum over t follows,
// so the result is deterministic.
fn gram_ld(r: u32, j: u32) -> f32 {
    return select(0.0, in1[min(r, p.rows - 1u) * p.m + j], r < p.rows);
}

fn gram_put(t: u32, r: u32, c: u32, v: f32) {
    if r < p.rows && c < p.rows {
        out[(t * p.rows + r) * p.rows + c] = v;
        out[(t * p.rows + c) * p.rows + r] = v;
    }
}

@compute @workgroup_size(64)
fn gram_part(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = gid.x;
    if t >= p.k2 { return; }
    // Block pair number wid.y → (rb, cb), rb ≤ cb, row by row.
    let nbb = (p.rows + 3u) / 4u;
    var rb = 0u;
    var q = wid.y;
    while q >= nbb - rb {
        q -= nbb - rb;
        rb += 1u;
    }
    let r0 = rb * 4u;
    let c0 = (rb + q) * 4u;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var j = t; j < p.m; j += p.k2) {
        let vr = vec4<f32>(gram_ld(r0, j), gram_ld(r0 + 1u, j), gram_ld(r0 + 2u, j), gram_ld(r0 + 3u, j));
        let vc = vec4<f32>(gram_ld(c0, j), gram_ld(c0 + 1u, j), gram_ld(c0 + 2u, j), gram_ld(c0 + 3u, j));
        a0 = fma(vr, vec4<f32>(vc.x), a0);
        a1 = fma(vr, vec4<f32>(vc.y), a1);
        a2 = fma(vr, vec4<f32>(vc.z), a2);
        a3 = fma(vr, vec4<f32>(vc.w), a3);
    }
    var acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    for (var cc = 0u; cc < 4u; cc += 1u) {
        for (var rr = 0u; rr < 4u; rr += 1u) {
            gram_put(t, r0 + rr, c0 + cc, acc[cc][rr]);
        }
    }
}
