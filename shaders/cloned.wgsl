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
