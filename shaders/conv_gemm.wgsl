// Convolution as implicit matrix products (stride 1, zero padding, f32); no im2col buffer: each
// workgroup gathers its tile of the im2col matrix straight from the input, zero padding computed
// on the fly.
//
//   igemm_fwd:  out[o, n] = bias[o] + Σ_q w[o, q] · col[q, n]       (M = cout, N = B·Ho·Wo, K = cin·K²)
//   igemm_dw:   part[c, o, q] = Σ_{n ∈ chunk c} g[o, n] · col[q, n]  (M = cout, N = cin·K², K = a chunk of B·Ho·Wo)
//
// with n = (b, y, x), q = (i, ky, kx) and col[q, n] = in[b, i, y + ky − pad, x + kx − pad] (zero
// outside; `pad` is signed: the input gradient runs igemm_fwd over the output gradient with the
// flipped, transposed filter and pad' = K − 1 − pad, which crops when negative). The weight
// gradient's chunks are a fixed split of B·Ho·Wo; the launcher sums them in a fixed order.
//
// A workgroup is 16 × WGY invocations and owns a (4·WGY) × 64 output tile: invocation (tx, ty)
// owns rows ty + WGY·i and columns tx + 16·j (i, j < 4). The reduction runs in steps of BK = 16
// through two tiles in workgroup memory, stored with a row stride ≡ 2 (mod 32) so that neither the
// stores (16 reduction steps × 2 rows per 32 invocations) nor the loads (16 consecutive columns, or
// one broadcast row) meet a bank conflict. Tiles along N past the per-dimension limit fold into z
// (tile = wid.x + wid.z · nwg.x).

struct IG {
    batch: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    ho: u32,
    wo: u32,
    pad: i32,
    flags: u32,
    ntiles: u32,
    chunk: u32,
    nred: u32,
}

@group(0) @binding(0) var<uniform> p: IG;

const K: u32 = 3u;
const WGY: u32 = 16u;
const BK: u32 = 16u;
const BM: u32 = 4u * WGY;
const BN: u32 = 64u;
const AS: u32 = BM + 2u;
const BS: u32 = BN + 2u;
const NT: u32 = 16u * WGY;

var<workgroup> ta: array<f32, BK * AS>;
var<workgroup> tb: array<f32, BK * BS>;

// in[base + iy·w + ix] with zero outside the image (iy, ix signed). `&`, not `&&`: a
// short-circuit operator is a branch (see src/ops/conv/codegen.rs, `row_lines`).
fn gather(base: u32, iy: i32, ix: i32) -> f32 {
    let inb = (iy >= 0) & (iy < i32(p.h)) & (ix >= 0) & (ix < i32(p.w));
    let off = u32(clamp(iy, 0, i32(p.h) - 1)) * p.w + u32(clamp(ix, 0, i32(p.w) - 1));
    return select(0.0, cx[base + off], inb);
}

// The 4 × 4 products of one reduction step over the two tiles.
fn tile_mac(tx: u32, ty: u32, acc: ptr<function, array<vec4<f32>, 4>>) {
    for (var kk = 0u; kk < BK; kk += 1u) {
        let bv = vec4<f32>(tb[kk * BS + tx], tb[kk * BS + tx + 16u], tb[kk * BS + tx + 32u], tb[kk * BS + tx + 48u]);
        for (var i = 0u; i < 4u; i += 1u) {
            (*acc)[i] = fma(vec4<f32>(ta[kk * AS + ty + WGY * i]), bv, (*acc)[i]);
        }
    }
}

// ---- forward (and input gradient). Bindings: 1 = input, 2 = filter (cout, cin·K²), 3 = bias
// (read when flags bit 0), 4 = output (B, cout, Ho, Wo). p.ntiles = tiles along N. ----
@group(0) @binding(1) var<storage, read> cx: array<f32>;
@group(0) @binding(2) var<storage, read> cw: array<f32>;
@group(0) @binding(3) var<storage, read> cbias: array<f32>;
@group(0) @binding(4) var<storage, read_write> cy: array<f32>;

@compute @workgroup_size(16, WGY, 1)
fn igemm_fwd(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let tile = wid.x + wid.z * nwg.x;
    if tile >= p.ntiles { return; }
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * 16u + tx;
    let m0 = wid.y * BM;
    let n0 = tile * BN;
    let ohw = p.ho * p.wo;
    let nn = ohw * p.batch;
    let kr = p.cin * K * K;
    // This invocation's gather column: fixed for the whole reduction.
    let bn = t % BN;
    let n = n0 + bn;
    let nc = min(n, nn - 1u);
    let b = nc / ohw;
    let s = nc % ohw;
    let y0 = i32(s / p.wo) - p.pad;
    let x0 = i32(s % p.wo) - p.pad;
    let xbase = b * p.cin * p.h * p.w;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < kr; k0 += BK) {
        // Filter tile: 16 reduction steps × BM rows, 4 per invocation.
        for (var l = 0u; l < 4u; l += 1u) {
            let kk = t % BK;
            let mm = t / BK + (NT / BK) * l;
            let o = m0 + mm;
            let q = k0 + kk;
            var v = 0.0;
            if o < p.cout && q < kr {
                v = cw[o * kr + q];
            }
            ta[kk * AS + mm] = v;
        }
        // Gathered input tile: 16 reduction steps × 64 columns.
        for (var l = 0u; l < BK * BN / NT; l += 1u) {
            let kk = t / BN + (NT / BN) * l;
            let q = k0 + kk;
            var v = 0.0;
            if n < nn && q < kr {
                let i = q / (K * K);
                let r = q % (K * K);
                v = gather(xbase + i * p.h * p.w, y0 + i32(r / K), x0 + i32(r % K));
            }
            tb[kk * BS + bn] = v;
        }
        workgroupBarrier();
        tile_mac(tx, ty, &acc);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i += 1u) {
        let o = m0 + ty + WGY * i;
        if o >= p.cout { continue; }
        var bv = 0.0;
        if (p.flags & 1u) != 0u {
            bv = cbias[o];
        }
        for (var j = 0u; j < 4u; j += 1u) {
            let nj = n0 + tx + 16u * j;
            if nj < nn {
                let v = acc[i][j] + bv;
                cy[((nj / ohw) * p.cout + o) * ohw + nj % ohw] = select(v, max(v, 0.0), (p.flags & 4u) != 0u);
            }
        }
    }
}

// ---- weight gradient, one chunk of B·Ho·Wo per wid.z. Bindings: 1 = input, 2 = output gradient
// (B, cout, Ho, Wo), 3 = partial sums (chunks, cout, cin·K²). p.ntiles = tiles along cin·K²,
// p.chunk = reduction length per chunk (a multiple of BK), p.nred = B·Ho·Wo. ----
@group(0) @binding(2) var<storage, read> cg: array<f32>;
@group(0) @binding(3) var<storage, read_write> cpart: array<f32>;

@compute @workgroup_size(16, WGY, 1)
fn igemm_dw(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * 16u + tx;
    let m0 = wid.y * BM;
    let q0 = wid.x * BN;
    let ohw = p.ho * p.wo;
    let kr = p.cin * K * K;
    let r0 = wid.z * p.chunk;
    let r1 = min(r0 + p.chunk, p.nred);
    let chw = p.cin * p.h * p.w;
    // This invocation's reduction offset within a step is t % BK for both tiles; its filter taps
    // (columns of the gathered tile) are fixed for the whole reduction.
    let kk = t % BK;
    var qoff: array<u32, BK * BN / NT>;
    var qy: array<i32, BK * BN / NT>;
    var qx: array<i32, BK * BN / NT>;
    var qok: array<bool, BK * BN / NT>;
    for (var l = 0u; l < BK * BN / NT; l += 1u) {
        let q = q0 + t / BK + (NT / BK) * l;
        let qc = min(q, kr - 1u);
        let r = qc % (K * K);
        qoff[l] = (qc / (K * K)) * p.h * p.w;
        qy[l] = i32(r / K) - p.pad;
        qx[l] = i32(r % K) - p.pad;
        qok[l] = q < kr;
    }
    var acc: array<vec4<f32>, 4>;
    for (var k0 = r0; k0 < r1; k0 += BK) {
        let n = k0 + kk;
        let live = n < r1;
        let nc = min(n, p.nred - 1u);
        let b = nc / ohw;
        let s = nc % ohw;
        let y = i32(s / p.wo);
        let x = i32(s % p.wo);
        // Output-gradient tile: 16 reduction steps × BM rows.
        for (var l = 0u; l < 4u; l += 1u) {
            let mm = t / BK + (NT / BK) * l;
            let o = m0 + mm;
            var v = 0.0;
            if live && o < p.cout {
                v = cg[(b * p.cout + o) * ohw + s];
            }
            ta[kk * AS + mm] = v;
        }
        // Gathered input tile: 16 reduction steps × 64 filter taps.
        for (var l = 0u; l < BK * BN / NT; l += 1u) {
            let qq = t / BK + (NT / BK) * l;
            var v = 0.0;
            if live && qok[l] {
                v = gather(b * chw + qoff[l], y + qy[l], x + qx[l]);
            }
            tb[kk * BS + qq] = v;
        }
        workgroupBarrier();
        tile_mac(tx, ty, &acc);
        workgroupBarrier();
    }
    let base = wid.z * p.cout * kr;
    for (var i = 0u; i < 4u; i += 1u) {
        let o = m0 + ty + WGY * i;
        if o >= p.cout { continue; }
        for (var j = 0u; j < 4u; j += 1u) {
            let q = q0 + tx + 16u * j;
            if q < kr {
                cpart[base + o * kr + q] = acc[i][j];
            }
        }
    }
}
