// 2-D convolution (cross-correlation as in PyTorch), stride 1, zero padding, f32.
//
//   out[b, o, y, x] = bias[o] + Σ_i Σ_ky Σ_kx in[b, i, y + ky - pad, x + kx - pad] · w[o, i, ky, kx]
//
// `pad` is signed: the input gradient is the same sum over the output gradient with the flipped,
// transposed filter and pad' = K - 1 - pad, which is negative when pad > K - 1 (a crop).
// K (filter size) and TO (output channels per invocation) are specialised constants, so the loops
// over the filter unroll and the register tiles stay in registers (what lavapipe runs well).
// 1-D grids of 64-wide workgroups fold into 2-D past the per-dimension limit.

struct P {
    batch: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    ho: u32,
    wo: u32,
    pad: i32,
    flags: u32,
    nxb: u32,
    nob: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: P;

const K: u32 = 3u;
const TO: u32 = 4u;
const TX: u32 = 4u;
const SEG: u32 = TX + K - 1u;
const WG: u32 = 64u;

// in[row + ix] with zero outside [0, w). `&`, not `&&`: a short-circuit operator is a branch
// (see src/ops/conv/codegen.rs, `row_lines`).
fn load_x(row: u32, ix: i32) -> f32 {
    let inb = (ix >= 0) & (ix < i32(p.w));
    let v = cx[row + u32(clamp(ix, 0, i32(p.w) - 1))];
    return select(0.0, v, inb);
}

// ---- forward: one invocation per (b, block of TO output channels, row y, block of TX columns) ----
@group(0) @binding(1) var<storage, read> cx: array<f32>;
@group(0) @binding(2) var<storage, read> cw: array<f32>;
@group(0) @binding(3) var<storage, read> cbias: array<f32>;
@group(0) @binding(4) var<storage, read_write> cout_: array<f32>;

@compute @workgroup_size(64)
fn conv_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let xb = t % p.nxb;
    var r = t / p.nxb;
    let y = r % p.ho;
    r = r / p.ho;
    let ob = r % p.nob;
    let b = r / p.nob;
    let x0 = xb * TX;
    let o0 = ob * TO;
    var acc: array<vec4<f32>, TO>;
    var wbase: array<u32, TO>;
    for (var j = 0u; j < TO; j += 1u) {
        wbase[j] = min(o0 + j, p.cout - 1u) * p.cin * K * K;
    }
    let hw = p.h * p.w;
    for (var i = 0u; i < p.cin; i += 1u) {
        let plane = (b * p.cin + i) * hw;
        for (var ky = 0u; ky < K; ky += 1u) {
            let iy = i32(y + ky) - p.pad;
            if iy < 0 || iy >= i32(p.h) { continue; }
            let row = plane + u32(iy) * p.w;
            var seg: array<f32, SEG>;
            for (var s = 0u; s < SEG; s += 1u) {
                seg[s] = load_x(row, i32(x0 + s) - p.pad);
            }
            let woff = (i * K + ky) * K;
            for (var kx = 0u; kx < K; kx += 1u) {
                let xv = vec4<f32>(seg[kx], seg[kx + 1u], seg[kx + 2u], seg[kx + 3u]);
                for (var j = 0u; j < TO; j += 1u) {
                    acc[j] = fma(vec4<f32>(cw[wbase[j] + woff + kx]), xv, acc[j]);
                }
            }
        }
    }
    for (var j = 0u; j < TO; j += 1u) {
        let o = o0 + j;
        if o >= p.cout { break; }
        var bv = 0.0;
        if (p.flags & 1u) != 0u {
            bv = cbias[o];
        }
        let obase = ((b * p.cout + o) * p.ho + y) * p.wo;
        let relu = (p.flags & 4u) != 0u;
        for (var q = 0u; q < TX; q += 1u) {
            if x0 + q < p.wo {
                let v = acc[j][q] + bv;
                cout_[obase + x0 + q] = select(v, max(v, 0.0), relu);
            }
        }
    }
}

// ---- weight gradient: dw[o, i, ky, kx] = Σ_b Σ_y Σ_x g[b, o, y, x] · in[b, i, y + ky - pad, x + kx - pad].
// One invocation per (block of 4 output channels, input channel i, filter row ky); it keeps the K
// filter columns × 4 channels in registers and slides a K-wide window of the input row along x.
// One dispatch covers the output rows r = b·ho + y in [p.nxb, p.nob) and, with p.flags bit 0,
// adds its sums to dw instead of writing them: the launcher splits a long batch into several
// dispatches so no invocation runs more loop iterations than lavapipe's loop limiter allows
// (65,535 in all, after which every loop exits early and silently).
// Bindings: 1 = input (cx), 2 = output gradient, 3 = weight gradient.
@group(0) @binding(2) var<storage, read> cg: array<f32>;
@group(0) @binding(3) var<storage, read_write> cdw: array<f32>;

@compute @workgroup_size(64)
fn conv_dw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let ky = t % K;
    var r = t / K;
    let i = r % p.cin;
    let ob = r / p.cin;
    let o0 = ob * 4u;
    var acc: array<vec4<f32>, K>;
    var oc: array<u32, 4>;
    for (var j = 0u; j < 4u; j += 1u) {
        oc[j] = min(o0 + j, p.cout - 1u);
    }
    let hw = p.h * p.w;
    let ohw = p.ho * p.wo;
    for (var r = p.nxb; r < p.nob; r += 1u) {
        let b = r / p.ho;
        let y = r % p.ho;
        let iy = i32(y + ky) - p.pad;
        if iy < 0 || iy >= i32(p.h) { continue; }
        let row = (b * p.cin + i) * hw + u32(iy) * p.w;
        let gy = y * p.wo;
        let g0 = (b * p.cout + oc[0]) * ohw + gy;
        let g1 = (b * p.cout + oc[1]) * ohw + gy;
        let g2 = (b * p.cout + oc[2]) * ohw + gy;
        let g3 = (b * p.cout + oc[3]) * ohw + gy;
        var win: array<f32, K>;
        for (var kx = 0u; kx + 1u < K; kx += 1u) {
            win[kx + 1u] = load_x(row, i32(kx) - p.pad);
        }
        for (var x = 0u; x < p.wo; x += 1u) {
            for (var kx = 0u; kx + 1u < K; kx += 1u) {
                win[kx] = win[kx + 1u];
            }
            win[K - 1u] = load_x(row, i32(x + K - 1u) - p.pad);
            let gv = vec4<f32>(cg[g0 + x], cg[g1 + x], cg[g2 + x], cg[g3 + x]);
            for (var kx = 0u; kx < K; kx += 1u) {
                acc[kx] = fma(vec4<f32>(win[kx]), gv, acc[kx]);
            }
        }
    }
    let add = (p.flags & 1u) != 0u;
    for (var j = 0u; j < 4u; j += 1u) {
        let o = o0 + j;
        if o >= p.cout { break; }
        let base = ((o * p.cin + i) * K + ky) * K;
        for (var kx = 0u; kx < K; kx += 1u) {
            cdw[base + kx] = select(acc[kx][j], cdw[base + kx] + acc[kx][j], add);
        }
    }
}

// ---- flip and transpose a filter bank: wt[i, o, ky, kx] = w[o, i, K-1-ky, K-1-kx] (for the input
// gradient). p.cout, p.cin describe w; p.total = its element count. Bindings: 1 = w, 2 = wt.
@group(0) @binding(2) var<storage, read_write> cwt: array<f32>;

@compute @workgroup_size(64)
fn flip_transpose(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let kk = K * K;
    let kx = t % K;
    let ky = (t / K) % K;
    let o = (t / kk) % p.cout;
    let i = t / (kk * p.cout);
    cwt[t] = cx[((o * p.cin + i) * K + (K - 1u - ky)) * K + (K - 1u - kx)];
}

// ---- im2col: col[b, (i*K + ky)*K + kx, y*wo + x] = in[b, i, y + ky - pad, x + kx - pad] (zero
// outside). p.total = batch · cin·K² · ho·wo. Bindings: 1 = input, 2 = col.
@compute @workgroup_size(64)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let ohw = p.ho * p.wo;
    let s = t % ohw;
    let rr = t / ohw;
    let kk = K * K;
    let q = rr % (p.cin * kk);
    let b = rr / (p.cin * kk);
    let kx = q % K;
    let ky = (q / K) % K;
    let i = q / kk;
    let y = s / p.wo;
    let x = s % p.wo;
    let iy = i32(y + ky) - p.pad;
    var v = 0.0;
    if iy >= 0 && iy < i32(p.h) {
        v = load_x((b * p.cin + i) * p.h * p.w + u32(iy) * p.w, i32(x + kx) - p.pad);
    }
    cwt[t] = v;
}

// ---- per-channel bias in place: y[b, o, s] += bias[o], then ReLU when p.flags bit 0 is set.
// p.cout channels, p.ho·p.wo = plane size, p.total = element count. Bindings: 1 = y (read_write),
// 2 = bias.
@group(0) @binding(1) var<storage, read_write> cy: array<f32>;
@group(0) @binding(2) var<storage, read> cb2: array<f32>;

@compute @workgroup_size(64)
fn add_channel_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let o = (t / (p.ho * p.wo)) % p.cout;
    let v = cy[t] + cb2[o];
    cy[t] = select(v, max(v, 0.0), (p.flags & 1u) != 0u);
}

// ---- pack a filter bank for the generated register kernels (`conv_reg`, see src/ops/conv.rs):
// wv[q, o] with q = (i*K + ky)*K + kx over the convolution's input channels and o over its output
// channels padded to p.nob (a multiple of the kernel's channel tile; zero past p.cout), so the
// kernel reads 4 output channels as one vec4. flags bit 1: the filter given is the forward filter
// w (p.cin, p.cout, K, K) of an input gradient, flipped and transposed on the fly
// (wv[(i*K + ky)*K + kx, o] = w[i, o, K-1-ky, K-1-kx]); otherwise w is (p.cout, p.cin, K, K).
// p.total = p.cin·K²·p.nob. Bindings: 1 = w, 2 = wv.
@compute @workgroup_size(64)
fn wpack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, WG);
    if t >= p.total { return; }
    let o = t % p.nob;
    let q = t / p.nob;
    let kx = q % K;
    let ky = (q / K) % K;
    let i = q / (K * K);
    var v = 0.0;
    if o < p.cout {
        if (p.flags & 2u) != 0u {
            v = cx[((i * p.cout + o) * K + (K - 1u - ky)) * K + (K - 1u - kx)];
        } else {
            v = cx[((o * p.cin + i) * K + ky) * K + kx];
        }
    }
    cwt[t] = v;
}
