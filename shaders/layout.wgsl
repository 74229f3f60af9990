// Layout kernels used around the matrix product: pack a (possibly transposed) row-major matrix
// into zero-padded vec4 rows, and unpack padded vec4 rows into a dense matrix.

struct P {
    rows: u32,   // K (pack) or M (unpack)
    cols: u32,   // N
    n4: u32,     // padded columns / 4
    trans: u32,  // pack: source stored (cols, rows) instead of (rows, cols)
    batch: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// dst4[z, r, c4] = (src(z, r, 4c4 .. 4c4+3)), zero past `cols`.
@compute @workgroup_size(256)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t >= p.batch * p.rows * p.n4 { return; }
    let c4 = t % p.n4;
    let r = (t / p.n4) % p.rows;
    let z = t / (p.n4 * p.rows);
    let base = z * p.rows * p.cols;
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j += 1u) {
        let col = c4 * 4u + j;
        if col < p.cols {
            if p.trans != 0u {
                v[j] = src[base + col * p.rows + r];
            } else {
                v[j] = src[base + r * p.cols + col];
            }
        }
    }
    dst4[t] = v;
}

// dst[z, r, c] = src[z, r, c] from rows padded to 4*n4.
@compute @workgroup_size(256)
fn unpack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t >= p.batch * p.rows * p.cols { return; }
    let col = t % p.cols;
    let zr = t / p.cols;
    dst[t] = src[zr * p.n4 * 4u + col];
}

// dst[a, c, b, d] = src[a, b, c, d]: swap the two middle axes of (A, B, C, D).
// Here rows = B, cols = C, n4 = D, batch = A.
@compute @workgroup_size(256)
fn swap12(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    let total = p.batch * p.rows * p.cols * p.n4;
    if t >= total { return; }
    let d = t % p.n4;
    let b = (t / p.n4) % p.rows;
    let c = (t / (p.n4 * p.rows)) % p.cols;
    let a = t / (p.n4 * p.rows * p.cols);
    dst[t] = src[((a * p.rows + b) * p.cols + c) * p.n4 + d];
}

// Concatenation along an axis, on tensors viewed as (outer, len, inner): rows = len of the first
// operand, cols = len of the second, n4 = inner, batch = outer.
@group(0) @binding(2) var<storage, read> src_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst3: array<f32>;

// dst3[o, j, i] = src[o, j, i] for j < rows, src_b[o, j − rows, i] after.
@compute @workgroup_size(256)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    let len = p.rows + p.cols;
    if t >= p.batch * len * p.n4 { return; }
    let i = t % p.n4;
    let j = (t / p.n4) % len;
    let o = t / (p.n4 * len);
    if j < p.rows {
        dst3[t] = src[(o * p.rows + j) * p.n4 + i];
    } else {
        dst3[t] = src_b[(o * p.cols + (j - p.rows)) * p.n4 + i];
    }
}

// A window along an axis: src is (outer, rows, inner), dst (outer, cols, inner); trans = start.
// dst[o, j, i] = src[o, start + j, i].
@compute @workgroup_size(256)
fn slice(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t >= p.batch * p.cols * p.n4 { return; }
    let i = t % p.n4;
    let j = (t / p.n4) % p.cols;
    let o = t / (p.n4 * p.cols);
    dst[t] = src[(o * p.rows + p.trans + j) * p.n4 + i];
}

// The window's adjoint (its backward): src is (outer, cols, inner), dst (outer, rows, inner) with
// src placed at `start` (= trans) and zeros elsewhere.
@compute @workgroup_size(256)
fn unslice(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t >= p.batch * p.rows * p.n4 { return; }
    let i = t % p.n4;
    let j = (t / p.n4) % p.rows;
    let o = t / (p.n4 * p.rows);
    var v = 0.0;
    if j >= p.trans && j < p.trans + p.cols {
        v = src[(o * p.cols + (j - p.trans)) * p.n4 + i];
    }
    dst[t] = v;
}
