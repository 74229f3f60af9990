// C4 filter transforms (SPEC §1) and their adjoints. rot90(A)[a, b] = A[b, n-1-a] (numpy rot90,
// counter-clockwise); rot_src(r, a, b, p.k) is the source index of rot90^r(A)[a, b] in A.
//
//   lift: TW[o*4 + r, i, a, b]       = W[o, i, rot_src(r, a, b, p.k)]                  W (Co, Ci, k, k)
//   p4:   TW[o*4 + r, i*4 + s, a, b] = W[o, i, (s - r) mod 4, rot_src(r, a, b, p.k)]   W (Co, Ci, 4, k, k)
//
// The adjoints (the backward rules) gather: each dW entry sums, in the fixed order r = 0..3, the four
// dTW entries it was copied to, so there are no atomics and the result is deterministic.

struct P {
    cout: u32,
    cin: u32,
    k: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(64)
fn lift_filter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let kk = p.k * p.k;
    let b = t % p.k;
    let a = (t / p.k) % p.k;
    let i = (t / kk) % p.cin;
    let r = (t / (kk * p.cin)) % 4u;
    let o = t / (kk * p.cin * 4u);
    dst[t] = src[(o * p.cin + i) * kk + rot_src(r, a, b, p.k)];
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
    for (var r = 0u; r < 4u; r += 1u) {
        // The (a, b) with rot_src(r, a, b, p.k) = (c, d) is rot_src((4 - r) mod 4, c, d, p.k).
        s += src[((o * 4u + r) * p.cin + i) * kk + rot_src((4u - r) % 4u, c, d, p.k)];
    }
    dst[t] = s;
}

@compute @workgroup_size(64)
fn p4_filter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let kk = p.k * p.k;
    let b = t % p.k;
    let a = (t / p.k) % p.k;
    let s = (t / kk) % 4u;
    let i = (t / (kk * 4u)) % p.cin;
    let r = (t / (kk * 4u * p.cin)) % 4u;
    let o = t / (kk * 16u * p.cin);
    let tt = (s + 4u - r) % 4u;
    dst[t] = src[((o * p.cin + i) * 4u + tt) * kk + rot_src(r, a, b, p.k)];
}

@compute @workgroup_size(64)
fn p4_filter_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let kk = p.k * p.k;
    let d = t % p.k;
    let c = (t / p.k) % p.k;
    let tt = (t / kk) % 4u;
    let i = (t / (kk * 4u)) % p.cin;
    let o = t / (kk * 4u * p.cin);
    var acc = 0.0;
    for (var r = 0u; r < 4u; r += 1u) {
        let s = (tt + r) % 4u;
        acc += src[((o * 4u + r) * p.cin * 4u + i * 4u + s) * kk + rot_src((4u - r) % 4u, c, d, p.k)];
    }
    dst[t] = acc;
}
