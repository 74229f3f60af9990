// Group filter transforms (SPEC §1 for C4, §9 for D4) and their adjoints, for a group of order
// p.order: 4 (C4, elements k = r) or 8 (D4, elements k = 4m + r). g_k·A = flip_rows^m(rot90^r(A))
// (common.wgsl: d4_src(k, a, b, p.k) is the source index of (g_k·A)[a, b] in A; src(k, s) =
// d4_mul(d4_inv(k), s), which is (s − k) mod 4 for C4).
//
//   lift: TW[o*G + k, i, a, b]       = W[o, i, d4_src(k, a, b, p.k)]                   W (Co, Ci, k, k)
//   p4:   TW[o*G + k, i*G + s, a, b] = W[o, i, src(k, s), d4_src(k, a, b, p.k)]        W (Co, Ci, G, k, k)
//
// The adjoints (the backward rules) gather: each dW entry sums, in the fixed order k = 0..G-1, the G
// dTW entries it was copied to ((g_k·A)[a, b] = A[c, d] at (a, b) = d4_src(d4_inv(k), c, d)), so there
// are no atomics and the result is deterministic. With order 4 these are the C4 transforms.
// With p.splits > 1 the adjoints read dTW as partial sums over a leading axis of splits (as the
// weight-gradient kernels write them) and sum each entry over the splits first (split_term), in
// the order of reduce.wgsl's sum_axis: the sum and the adjoint in one pass.
// lift_filter_bias and p4_filter_bias also repeat the bias over the orientations:
// TB[o*G + k] = bias[o] (its adjoint: reduce.wgsl's sum_axis over k).

struct P {
    cout: u32,
    cin: u32,
    k: u32,
    total: u32,
    order: u32,
    splits: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> bias_dst: array<f32>;

const WG: u32 = 64u;

// The source of TW[t] in W (lifting).
fn lift_at(t: u32) -> u32 {
    let kk = p.k * p.k;
    let b = t % p.k;
    let a = (t / p.k) % p.k;
    let i = (t / kk) % p.cin;
    let g = (t / (kk * p.cin)) % p.order;
    let o = t / (kk * p.cin * p.order);
    return (o * p.cin + i) * kk + d4_src(g, a, b, p.k);
}

// The source of TW[t] in W (group).
fn p4_at(t: u32) -> u32 {
    let kk = p.k * p.k;
    let b = t % p.k;
    let a = (t / p.k) % p.k;
    let n = p.order;
    let s = (t / kk) % n;
    let i = (t / (kk * n)) % p.cin;
    let g = (t / (kk * n * p.cin)) % n;
    let o = t / (kk * n * n * p.cin);
    let tt = d4_mul(d4_inv(g), s);
    return ((o * p.cin + i) * n + tt) * kk + d4_src(g, a, b, p.k);
}

// dTW[i] summed over the splits (p.total * p.order elements apart), in sum_axis's order.
fn split_term(i: u32) -> f32 {
    if p.splits <= 1u { return src[i]; }
    let stride = p.total * p.order;
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var k = 0u;
    for (; k + 4u <= p.splits; k += 4u) {
        s0 += src[i + k * stride];
        s1 += src[i + (k + 1u) * stride];
        s2 += src[i + (k + 2u) * stride];
        s3 += src[i + (k + 3u) * stride];
    }
    for (; k < p.splits; k += 1u) {
        s0 += src[i + k * stride];
    }
    return (s0 + s1) + (s2 + s3);
}

@compute @workgroup_size(64)
fn lift_filter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    dst[t] = src[lift_at(t)];
}

// lift_filter, and the bias repeated over the orientations (its p.cout * p.order entries).
@compute @workgroup_size(64)
fn lift_filter_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    dst[t] = src[lift_at(t)];
    if t < p.cout * p.order { bias_dst[t] = bias[t / p.order]; }
}

@compute @workgroup_size(64)
fn lift_filter_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let kk = p.k * p.k;
    let d = t % p.k;
    let c = (t / p.k) % p.k;
    let i = (t / kk) % p.cin;
    let o = t / (kk * p.cin);
    var s = 0.0;
    for (var g = 0u; g < p.order; g += 1u) {
        // The (a, b) with d4_src(g, a, b, p.k) = (c, d) is d4_src(d4_inv(g), c, d, p.k).
        s += split_term(((o * p.order + g) * p.cin + i) * kk + d4_src(d4_inv(g), c, d, p.k));
    }
    dst[t] = s;
}

@compute @workgroup_size(64)
fn p4_filter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    dst[t] = src[p4_at(t)];
}

// p4_filter, and the bias repeated over the orientations (its p.cout * p.order entries).
@compute @workgroup_size(64)
fn p4_filter_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    dst[t] = src[p4_at(t)];
    if t < p.cout * p.order { bias_dst[t] = bias[t / p.order]; }
}

@compute @workgroup_size(64)
fn p4_filter_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let kk = p.k * p.k;
    let d = t % p.k;
    let c = (t / p.k) % p.k;
    let n = p.order;
    let tt = (t / kk) % n;
    let i = (t / (kk * n)) % p.cin;
    let o = t / (kk * n * p.cin);
    var acc = 0.0;
    for (var g = 0u; g < n; g += 1u) {
        // src(g, s) = tt exactly at s = g·tt.
        let s = d4_mul(g, tt);
        acc += split_term(((o * n + g) * p.cin * n + i * n + s) * kk + d4_src(d4_inv(g), c, d, p.k));
    }
    dst[t] = acc;
}
