// Losses and metrics over logits (rows, classes) with integer labels.

struct P {
    rows: u32,
    classes: u32,
    inv_rows: f32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> row_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

// Fused log-softmax cross-entropy, forward and backward: row_out[r] = logsumexp(x_r) - x_r[label],
// dlogits[r] = (softmax(x_r) - onehot(label)) / rows (the gradient of the batch mean).
@compute @workgroup_size(64)
fn ce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = idx(gid, nwg, 64u);
    if r >= p.rows { return; }
    let base = r * p.classes;
    var mx = logits[base];
    for (var j = 1u; j < p.classes; j += 1u) {
        mx = max(mx, logits[base + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < p.classes; j += 1u) {
        s += exp(logits[base + j] - mx);
    }
    let lse = mx + log(s);
    let y = labels[r];
    row_out[r] = lse - logits[base + y];
    for (var j = 0u; j < p.classes; j += 1u) {
        let sm = exp(logits[base + j] - lse);
        dlogits[base + j] = (sm - select(0.0, 1.0, j == y)) * p.inv_rows;
    }
}

// row_out[r] = 1 if the first arg-max of row r equals its label, else 0.
@compute @workgroup_size(64)
fn correct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = idx(gid, nwg, 64u);
    if r >= p.rows { return; }
    let base = r * p.classes;
    var best = 0u;
    var mx = logits[base];
    for (var j = 1u; j < p.classes; j += 1u) {
        let v = logits[base + j];
        if v > mx {
            mx = v;
            best = j;
        }
    }
    row_out[r] = select(0.0, 1.0, best == labels[r]);
}
