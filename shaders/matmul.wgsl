// Matrix products C[z] = A[z] · B[z] (+ bias) (ReLU), f32.
//
// A is read as scalars through strides, so a transposed A costs nothing: element (z, m, k) sits at
// z*sab + m*sam + k*sak. B and C are row-major with rows of n4 vec4 (B packed K × n4, C M × n4);
// the launcher packs B (transpose, zero padding) and unpacks C only when N is not a multiple of 4
// or B is transposed. Flags: bit 0 add bias[n], bit 1 apply ReLU.

struct P {
    m: u32,
    n4: u32,
    k: u32,
    sam: u32,
    sak: u32,
    sab: u32,
    sbb: u32,
    scb: u32,
    flags: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

fn epilogue(v: vec4<f32>, col: u32) -> vec4<f32> {
    var r = v;
    if (p.flags & 1u) != 0u {
        r = r + bias[col];
    }
    if (p.flags & 2u) != 0u {
        r = max(r, vec4<f32>(0.0));
    }
    return r;
}

// ---- Register-tiled: each invocation owns TM rows × TN vec4 columns; no workgroup memory. ----
const TM: u32 = 8u;
const TN: u32 = 2u;
const RWX: u32 = 8u;
const RWY: u32 = 8u;

@compute @workgroup_size(RWX, RWY, 1)
fn mm_reg(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c0 = gid.x * TN;
    let r0 = gid.y * TM;
    let z = gid.z;
    if c0 >= p.n4 || r0 >= p.m {
        return;
    }
    var acc: array<vec4<f32>, TM * TN>;
    var arow: array<u32, TM>;
    for (var i = 0u; i < TM; i += 1u) {
        arow[i] = z * p.sab + min(r0 + i, p.m - 1u) * p.sam;
    }
    var bcol: array<u32, TN>;
    for (var j = 0u; j < TN; j += 1u) {
        bcol[j] = z * p.sbb + min(c0 + j, p.n4 - 1u);
    }
    for (var k = 0u; k < p.k; k += 1u) {
        let brow = k * p.n4;
        var bv: array<vec4<f32>, TN>;
        for (var j = 0u; j < TN; j += 1u) {
            bv[j] = b[brow + bcol[j]];
        }
        let ak = k * p.sak;
        for (var i = 0u; i < TM; i += 1u) {
            let av = vec4<f32>(a[arow[i] + ak]);
            for (var j = 0u; j < TN; j += 1u) {
                acc[i * TN + j] = fma(av, bv[j], acc[i * TN + j]);
            }
        }
    }
    for (var i = 0u; i < TM; i += 1u) {
        let r = r0 + i;
        if r < p.m {
            for (var j = 0u; j < TN; j += 1u) {
                let col = c0 + j;
                if col < p.n4 {
                    c[z * p.scb + r * p.n4 + col] = epilogue(acc[i * TN + j], col);
                }
            }
        }
    }
}

// ---- Workgroup-tiled: a 64 × 64 tile per workgroup of 16 × 16, K in steps of 16 through
// workgroup memory; each invocation owns 4 rows × 1 vec4. ----
const BM: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> as_: array<array<f32, 64>, 16>;
var<workgroup> bs_: array<array<vec4<f32>, 16>, 16>;

@compute @workgroup_size(16, 16, 1)
fn mm_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let flat = ty * 16u + tx;
    let z = wid.z;
    let row0 = wid.y * BM;
    let col0 = wid.x * 16u;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var l = 0u; l < 4u; l += 1u) {
            let e = flat + l * 256u;
            let mm = e / BK;
            let kk = e % BK;
            let r = row0 + mm;
            let kg = k0 + kk;
            var v = 0.0;
            if r < p.m && kg < p.k {
                v = a[z * p.sab + r * p.sam + kg * p.sak];
            }
            as_[kk][mm] = v;
        }
        {
            let kk = flat / 16u;
            let cc = flat % 16u;
            let kg = k0 + kk;
            let col = col0 + cc;
            var v = vec4<f32>(0.0);
            if kg < p.k && col < p.n4 {
                v = b[z * p.sbb + kg * p.n4 + col];
            }
            bs_[kk][cc] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk += 1u) {
            let bv = bs_[kk][tx];
            for (var i = 0u; i < 4u; i += 1u) {
                acc[i] = fma(vec4<f32>(as_[kk][ty * 4u + i]), bv, acc[i]);
            }
        }
        workgroupBarrier();
    }
    let col = col0 + tx;
    for (var i = 0u; i < 4u; i += 1u) {
        let r = row0 + ty * 4u + i;
        if r < p.m && col < p.n4 {
            c[z * p.scb + r * p.n4 + col] = epilogue(acc[i], col);
        }
    }
}
