// ---- Subgroup matrix product (appended to the matmul prelude: P, a, b, bias, c, epilogue). ----
// For adapters with subgroup operations (wgpu's SUBGROUP feature). A workgroup of SG_WX invocations
// along the columns owns a block of SG_TM rows; each invocation owns SG_TM rows × SG_TN vec4
// columns in registers. K advances in chunks of the subgroup's width w: lane l loads the SG_TM
// values A[r, k0 + l] of its chunk (one coalesced load per row where A is row-major), and every lane
// then takes A[r, k0 + kk] from lane kk by subgroupShuffle instead of loading it again. No
// workgroup memory and no barriers. Nothing returns early (every lane of a subgroup takes part in
// each shuffle); edges are clamped for loads and skipped at the store. A subgroup wider than the
// workgroup (possible on some mobile GPUs) is used only over its first SG_WX lanes.
const SG_WX: u32 = 64u;
const SG_TM: u32 = 8u;
const SG_TN: u32 = 2u;

@compute @workgroup_size(64, 1, 1)
fn mm_subgroup(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_size) sgs: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let c0 = (wid.x * SG_WX + lid.x) * SG_TN;
    let r0 = wid.y * SG_TM;
    let z = wid.z;
    let w = min(sgs, SG_WX);
    var arow: array<u32, SG_TM>;
    for (var i = 0u; i < SG_TM; i += 1u) {
        arow[i] = z * p.sab + min(r0 + i, p.m - 1u) * p.sam;
    }
    var bcol: array<u32, SG_TN>;
    for (var j = 0u; j < SG_TN; j += 1u) {
        bcol[j] = z * p.sbb + min(c0 + j, p.n4 - 1u);
    }
    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += w) {
        let kl = k0 + lane;
        let kc = min(kl, p.k - 1u) * p.sak;
        var av: array<f32, SG_TM>;
        for (var i = 0u; i < SG_TM; i += 1u) {
            av[i] = select(0.0, a[arow[i] + kc], kl < p.k);
        }
        let n = min(w, p.k - k0);
        for (var kk = 0u; kk < n; kk += 1u) {
            let brow = (k0 + kk) * p.n4;
            var bv: array<vec4<f32>, SG_TN>;
            for (var j = 0u; j < SG_TN; j += 1u) {
                bv[j] = b[brow + bcol[j]];
            }
            for (var i = 0u; i < SG_TM; i += 1u) {
                let s = vec4<f32>(subgroupShuffle(av[i], kk));
                for (var j = 0u; j < SG_TN; j += 1u) {
                    acc[i * SG_TN + j] = fma(s, bv[j], acc[i * SG_TN + j]);
                }
            }
        }
    }
    for (var i = 0u; i < SG_TM; i += 1u) {
        let r = r0 + i;
        if r < p.m {
            for (var j = 0u; j < SG_TN; j += 1u) {
                let col = c0 + j;
                if col < p.n4 {
                    c[z * p.scb + r * p.n4 + col] = epilogue(acc[i * SG_TN + j], col);
                }
            }
        }
    }
}
