// Reductions. A tensor is viewed as (outer, n, inner); sums run over n in a fixed order, so results
// are deterministic (no float atomics).

struct P {
    outer: u32,
    n: u32,
    inner: u32,
    alpha: f32,
    offset: u32,
    splits: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// With p.splits > 1, the term x[i] of the sum summed over a leading axis of splits (partial
// sums, p.outer * p.n * p.inner elements apart), in sum_axis's order over the splits: sum_axis
// over the splits, then over n, in one pass.
fn split_term(i: u32) -> f32 {
    let stride = p.outer * p.n * p.inner;
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var k = 0u;
    for (; k + 4u <= p.splits; k += 4u) {
        s0 += x[i + k * stride];
        s1 += x[i + (k + 1u) * stride];
        s2 += x[i + (k + 2u) * stride];
        s3 += x[i + (k + 3u) * stride];
    }
    for (; k < p.splits; k += 1u) {
        s0 += x[i + k * stride];
    }
    return (s0 + s1) + (s2 + s3);
}

// out[o, j] = alpha * sum_k x[o, k, j] (each term summed over the splits first: split_term); one
// invocation per output, 4 partial sums for ILP.
@compute @workgroup_size(256)
fn sum_axis(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t >= p.outer * p.inner { return; }
    let o = t / p.inner;
    let j = t % p.inner;
    let base = o * p.n * p.inner + j;
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var k = 0u;
    if p.splits <= 1u {
        // No loop inside the loop here: lavapipe's loop limiter would count its checks too.
        for (; k + 4u <= p.n; k += 4u) {
            s0 += x[base + k * p.inner];
            s1 += x[base + (k + 1u) * p.inner];
            s2 += x[base + (k + 2u) * p.inner];
            s3 += x[base + (k + 3u) * p.inner];
        }
        for (; k < p.n; k += 1u) {
            s0 += x[base + k * p.inner];
        }
    } else {
        for (; k + 4u <= p.n; k += 4u) {
            s0 += split_term(base + k * p.inner);
            s1 += split_term(base + (k + 1u) * p.inner);
            s2 += split_term(base + (k + 2u) * p.inner);
            s3 += split_term(base + (k + 3u) * p.inner);
        }
        for (; k < p.n; k += 1u) {
            s0 += split_term(base + k * p.inner);
        }
    }
    out[t] = p.alpha * ((s0 + s1) + (s2 + s3));
}

// out[o, k, j] = alpha * x[o, j]: the backward of sum_axis.
@compute @workgroup_size(256)
fn broadcast_axis(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t >= p.outer * p.n * p.inner { return; }
    let j = t % p.inner;
    let o = t / (p.n * p.inner);
    out[t] = p.alpha * x[o * p.inner + j];
}

// Partial sums of squares (alpha = 1) or plain sums (alpha = 0) over chunks of `inner` elements:
// out[offset + c] = sum over x[c*inner .. min((c+1)*inner, n)]. One workgroup per chunk, tree reduction.
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn chunk_sum(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = wid.x + wid.y * nwg.x;
    let start = c * p.inner;
    let end = min(start + p.inner, p.n);
    var s = 0.0;
    var i = start + lid.x;
    for (; i < end; i += 256u) {
        let v = x[i];
        s += select(v, v * v, p.alpha != 0.0);
    }
    part[lid.x] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if lid.x < w {
            part[lid.x] = part[lid.x] + part[lid.x + w];
        }
        workgroupBarrier();
    }
    if lid.x == 0u && c < p.outer {
        out[p.offset + c] = part[0];
    }
}

// out[c] = Σ_b Σ_j x[b, c, j] for x of (p.outer = B, p.n = C, p.inner = plane): the bias gradient
// of a (B, C, …) gradient in one pass, one invocation per channel. Each image's plane is summed as
// sum_axis over the plane does, and those sums are added as they come into the 4 partial sums of
// sum_axis over the batch: the same float32 sums as those two passes. (No workgroup array and no
// barrier: lavapipe runs a workgroup with a barrier as one fiber per invocation, at several times
// the cost.)
fn plane_sum(base: u32) -> f32 {
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var k = 0u;
    for (; k + 4u <= p.inner; k += 4u) {
        s0 += x[base + k];
        s1 += x[base + k + 1u];
        s2 += x[base + k + 2u];
        s3 += x[base + k + 3u];
    }
    for (; k < p.inner; k += 1u) {
        s0 += x[base + k];
    }
    return (s0 + s1) + (s2 + s3);
}

@compute @workgroup_size(64)
fn sum_batch_plane(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = idx(gid, nwg, 64u);
    if c >= p.n { return; }
    let stride = p.n * p.inner;
    let base = c * p.inner;
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var b = 0u;
    for (; b + 4u <= p.outer; b += 4u) {
        s0 += plane_sum(base + b * stride);
        s1 += plane_sum(base + (b + 1u) * stride);
        s2 += plane_sum(base + (b + 2u) * stride);
        s3 += plane_sum(base + (b + 3u) * stride);
    }
    for (; b < p.outer; b += 1u) {
        s0 += plane_sum(base + b * stride);
    }
    out[c] = (s0 + s1) + (s2 + s3);
}

// The backward of a ReLU whose output is y, and the column sums of the result, in one pass:
// gm[r, j] = x[r, j] where y[r, j] > 0 (else 0), out[j] = Σ_r gm[r, j] over the p.n rows of
// p.inner columns, summed as sum_axis over the rows does (4 partial sums): a linear layer's
// masked gradient and its bias gradient. One invocation per column.
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> gm: array<f32>;

fn masked(i: u32) -> f32 {
    let v = select(0.0, x[i], y[i] > 0.0);
    gm[i] = v;
    return v;
}

@compute @workgroup_size(256)
fn relu_bwd_sum_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = idx(gid, nwg, 256u);
    if j >= p.inner { return; }
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var k = 0u;
    for (; k + 4u <= p.n; k += 4u) {
        s0 += masked(j + k * p.inner);
        s1 += masked(j + (k + 1u) * p.inner);
        s2 += masked(j + (k + 2u) * p.inner);
        s3 += masked(j + (k + 3u) * p.inner);
    }
    for (; k < p.n; k += 1u) {
        s0 += masked(j + k * p.inner);
    }
    out[j] = (s0 + s1) + (s2 + s3);
}

// Two tensors of partial sums over a leading axis of the same p.n splits, summed over it in one
// launch, in sum_axis's order: out[j] = Σ_s x[s * p.inner + j] for the p.inner entries of the
// first, gm[j] = Σ_s y[s * p.outer + j] for the p.outer entries of the second (y and gm: the
// bindings relu_bwd_sum_rows declares). A convolution's weight and bias gradients.
fn split_sum_x(j: u32) -> f32 {
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var k = 0u;
    for (; k + 4u <= p.n; k += 4u) {
        s0 += x[j + k * p.inner];
        s1 += x[j + (k + 1u) * p.inner];
        s2 += x[j + (k + 2u) * p.inner];
        s3 += x[j + (k + 3u) * p.inner];
    }
    for (; k < p.n; k += 1u) {
        s0 += x[j + k * p.inner];
    }
    return (s0 + s1) + (s2 + s3);
}

fn split_sum_y(j: u32) -> f32 {
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    var k = 0u;
    for (; k + 4u <= p.n; k += 4u) {
        s0 += y[j + k * p.outer];
        s1 += y[j + (k + 1u) * p.outer];
        s2 += y[j + (k + 2u) * p.outer];
        s3 += y[j + (k + 3u) * p.outer];
    }
    for (; k < p.n; k += 1u) {
        s0 += y[j + k * p.outer];
    }
    return (s0 + s1) + (s2 + s3);
}

@compute @workgroup_size(256)
fn sum_splits_pair(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = idx(gid, nwg, 256u);
    if t < p.inner {
        out[t] = split_sum_x(t);
    } else if t < p.inner + p.outer {
        gm[t - p.inner] = split_sum_y(t - p.inner);
    }
}
