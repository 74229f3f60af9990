// Image and feature-map transforms (gathers; each is a permutation or a zero-filled shift, so each
// adjoint is the same kernel with the inverse parameters).
//
//   rot90:  out[pl, a, b] = x[pl, d4_src(r, a, b, n)]     g_r on square planes: rot90^r for r < 4
//           (rot90(A)[a, b] = A[b, n-1-a]), flip_rows(rot90^(r-4)) for the D4 elements r = 4..7
//   c4_act: out[o, s, a, b] = x[o, src(r, s), d4_src(r, a, b, n)]   the action of g_r on group maps
//           with `order` orientations (4: P4 maps, where src(r, s) = (s - r) mod 4; 8: p4m maps)
//   shift:  out[pl, y, x] = x[pl, y - oy, x - ox], zero outside; output planes ho × wo (translation,
//           padding onto a larger canvas, or cropping, by the choice of sizes and signed offsets)

struct P {
    planes: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    r: u32,
    oy: i32,
    ox: i32,
    total: u32,
    order: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(64)
fn rot90(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let n = p.h;
    let nn = n * n;
    let q = t % nn;
    let pl = t / nn;
    out[t] = x[pl * nn + d4_src(p.r, q / n, q % n, n)];
}

@compute @workgroup_size(64)
fn c4_act(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let n = p.h;
    let nn = n * n;
    let q = t % nn;
    let s = (t / nn) % p.order;
    let o = t / (p.order * nn);
    let ss = d4_mul(d4_inv(p.r), s);
    out[t] = x[(o * p.order + ss) * nn + d4_src(p.r, q / n, q % n, n)];
}

@compute @workgroup_size(64)
fn shift(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let xx = i32(t % p.wo) - p.ox;
    let yy = i32((t / p.wo) % p.ho) - p.oy;
    let pl = t / (p.wo * p.ho);
    var v = 0.0;
    if xx >= 0 && yy >= 0 && xx < i32(p.w) && yy < i32(p.h) {
        v = x[(pl * p.h + u32(yy)) * p.w + u32(xx)];
    }
    out[t] = v;
}
