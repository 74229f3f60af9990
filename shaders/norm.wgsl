// LayerNorm over the last axis of a (rows, cols) tensor, with a learned scale (gamma) and shift
// (beta) per column: y = (x − mean)·rstd·gamma + beta, rstd = 1/√(var + eps), var the biased
// (population) variance, as PyTorch's `LayerNorm`. One invocation per row; two passes over the row
// (mean, then the centred squares) so a large mean does not cancel the variance away.

struct P {
    rows: u32,
    cols: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
// forward
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;   // (rows, 2): mean, rstd
// backward
@group(0) @binding(3) var<storage, read> stats_in: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> gxhat: array<f32>;  // g·x̂, summed over rows for dgamma

const WG: u32 = 64u;

@compute @workgroup_size(64)
fn ln_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = idx(gid, nwg, WG);
    if r >= p.rows { return; }
    let base = r * p.cols;
    let n = f32(p.cols);
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) { s += x[base + j]; }
    let mean = s / n;
    var q = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let c = x[base + j] - mean;
        q += c * c;
    }
    let rstd = 1.0 / sqrt(q / n + p.eps);
    for (var j = 0u; j < p.cols; j++) {
        y[base + j] = (x[base + j] - mean) * rstd * gamma[j] + beta[j];
    }
    stats[2u * r] = mean;
    stats[2u * r + 1u] = rstd;
}

// dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·gamma; gxhat = g·x̂ (dgamma = Σ_rows gxhat,
// dbeta = Σ_rows g, both by the reduce family's fixed-order sums).
@compute @workgroup_size(64)
fn ln_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = idx(gid, nwg, WG);
    if r >= p.rows { return; }
    let base = r * p.cols;
    let n = f32(p.cols);
    let mean = stats_in[2u * r];
    let rstd = stats_in[2u * r + 1u];
    var sg = 0.0;
    var sgx = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let xh = (x[base + j] - mean) * rstd;
        let gh = g[base + j] * gamma[j];
        sg += gh;
        sgx += gh * xh;
        gxhat[base + j] = g[base + j] * xh;
    }
    let mg = sg / n;
    let mgx = sgx / n;
    for (var j = 0u; j < p.cols; j++) {
        let xh = (x[base + j] - mean) * rstd;
        dx[base + j] = rstd * (g[base + j] * gamma[j] - mg - xh * mgx);
    }
}
