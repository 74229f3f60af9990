// Optimiser steps over up to three parameter tensors per launch (a multi-tensor step: one
// dispatch where there would be one per tensor). WebGPU's 8 storage bindings hold the clip
// coefficient, the packed state and three (parameter, gradient) pairs. Element i of the launch
// belongs to tensor 0 when i < n0, to tensor 1 when i < n0 + n1, to tensor 2 below n0 + n1 + n2.
// The state buffer holds every tensor's first moment (SGD: its momentum buffer) at o_k and, for
// Adam, its second moment at total + o_k. Each gradient is multiplied by its tensor's s_k and by
// the clip coefficient clip[0] (1 when clipping is off), computed on the GPU from the global norm.

struct P {
    mode: u32,      // adam: 0 = Adam (L2 weight decay added to the gradient), 1 = AdamW (decoupled)
    lr: f32,
    beta1: f32,     // sgd: momentum
    beta2: f32,
    eps: f32,
    wd: f32,
    bc1: f32,       // 1 - beta1^t
    bc2: f32,       // 1 - beta2^t
    total: u32,     // where the second moments start in the state
    n0: u32,
    n1: u32,
    n2: u32,
    o0: u32,
    o1: u32,
    o2: u32,
    _p0: u32,
    s0: f32,
    s1: f32,
    s2: f32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> clip: array<f32>;
@group(0) @binding(2) var<storage, read_write> st: array<f32>;
@group(0) @binding(3) var<storage, read_write> w0: array<f32>;
@group(0) @binding(4) var<storage, read> g0: array<f32>;
@group(0) @binding(5) var<storage, read_write> w1: array<f32>;
@group(0) @binding(6) var<storage, read> g1: array<f32>;
@group(0) @binding(7) var<storage, read_write> w2: array<f32>;
@group(0) @binding(8) var<storage, read> g2: array<f32>;

// Which tensor element i of the launch belongs to (3: none) and its index there.
fn slot(i: u32) -> vec2<u32> {
    if i < p.n0 { return vec2<u32>(0u, i); }
    let j = i - p.n0;
    if j < p.n1 { return vec2<u32>(1u, j); }
    let k = j - p.n1;
    if k < p.n2 { return vec2<u32>(2u, k); }
    return vec2<u32>(3u, 0u);
}

fn weight(t: u32, j: u32) -> f32 {
    switch t {
        case 0u: { return w0[j]; }
        case 1u: { return w1[j]; }
        default: { return w2[j]; }
    }
}

// The gradient times its tensor's scale and the clip coefficient.
fn gradient(t: u32, j: u32) -> f32 {
    switch t {
        case 0u: { return g0[j] * p.s0 * clip[0]; }
        case 1u: { return g1[j] * p.s1 * clip[0]; }
        default: { return g2[j] * p.s2 * clip[0]; }
    }
}

fn state_at(t: u32, j: u32) -> u32 {
    switch t {
        case 0u: { return p.o0 + j; }
        case 1u: { return p.o1 + j; }
        default: { return p.o2 + j; }
    }
}

fn set_weight(t: u32, j: u32, w: f32) {
    switch t {
        case 0u: { w0[j] = w; }
        case 1u: { w1[j] = w; }
        default: { w2[j] = w; }
    }
}

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = slot(idx(gid, nwg, 256u));
    if s.x == 3u { return; }
    var w = weight(s.x, s.y);
    var g = gradient(s.x, s.y);
    if p.mode == 1u {
        w = w * (1.0 - p.lr * p.wd);
    } else {
        g = g + p.wd * w;
    }
    let o = state_at(s.x, s.y);
    let mi = p.beta1 * st[o] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * st[p.total + o] + (1.0 - p.beta2) * g * g;
    st[o] = mi;
    st[p.total + o] = vi;
    let denom = sqrt(vi) / sqrt(p.bc2) + p.eps;
    set_weight(s.x, s.y, w - (p.lr / p.bc1) * mi / denom);
}

// SGD with momentum (PyTorch semantics: no dampening; the buffer starts as the first gradient,
// which is what momentum · 0 + g gives from the zeroed state).
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = slot(idx(gid, nwg, 256u));
    if s.x == 3u { return; }
    let w = weight(s.x, s.y);
    let g = gradient(s.x, s.y) + p.wd * w;
    let o = state_at(s.x, s.y);
    let b = p.beta1 * st[o] + g;
    st[o] = b;
    set_weight(s.x, s.y, w - p.lr * b);
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
