// Optimiser steps: one kernel over one parameter buffer. The gradient is multiplied by the clip
// coefficient clip[0] (1 when clipping is off), computed on the GPU from the global gradient norm.

struct P {
    n: u32,
    mode: u32,      // adam: 0 = Adam (L2 weight decay added to the gradient), 1 = AdamW (decoupled)
    lr: f32,
    beta1: f32,     // sgd: momentum
    beta2: f32,
    eps: f32,
    wd: f32,
    bc1: f32,       // 1 - beta1^t ; sgd: 1 on the first step (buffer = gradient)
    bc2: f32,       // 1 - beta2^t
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read> clip: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, 256u);
    if i >= p.n { return; }
    var w = param[i];
    var g = grad[i] * clip[0];
    if p.mode == 1u {
        w = w * (1.0 - p.lr * p.wd);
    } else {
        g = g + p.wd * w;
    }
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let denom = sqrt(vi) / sqrt(p.bc2) + p.eps;
    param[i] = w - (p.lr / p.bc1) * mi / denom;
}

// SGD with momentum (PyTorch semantics: no dampening; the buffer starts as the first gradient).
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, 256u);
    if i >= p.n { return; }
    let w = param[i];
    let g = grad[i] * clip[0] + p.wd * w;
    var b = g;
    if p.bc1 == 0.0 {
        b = p.beta1 * m[i] + g;
    }
    m[i] = b;
    param[i] = w - p.lr * b;
}

// clip_out[0] = min(1, max_norm / (sqrt(sum partials) + 1e-6)), clip_out[1] = the norm.
// Binding 1 here is the partial sums of squares (read_write slot reused as read), binding 2 the output.
struct C {
    count: u32,
    max_norm: f32,
    _p0: u32,
    _p1: u32,
}
@group(0) @binding(0) var<uniform> pc: C;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> clip_out: array<f32>;

@compute @workgroup_size(1)
fn clip_coef() {
    var s = 0.0;
    for (var i = 0u; i < pc.count; i += 1u) {
        s += partials[i];
    }
    let norm = sqrt(s);
    clip_out[0] = min(1.0, pc.max_norm / (norm + 1e-6));
    clip_out[1] = norm;
}
