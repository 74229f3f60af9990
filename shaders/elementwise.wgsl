// Element-wise kernels. Binding 0 is the parameter block; storage buffers follow in the order the
// launcher binds them. One invocation per element; 1-D grids fold into 2-D past 65535 groups.

struct P {
    n: u32,
    alpha: f32,
    beta: f32,
    seed: u32,   // dropout only
}

@group(0) @binding(0) var<uniform> p: P;

// unary: x -> out
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out2: array<f32>;
// binary: x, y -> out
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out3: array<f32>;
// in-place: buffer 1 is written
@group(0) @binding(1) var<storage, read_write> inplace: array<f32>;

const WG: u32 = 256u;

// out = alpha * x + beta * y
@compute @workgroup_size(256)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    out3[i] = p.alpha * x[i] + p.beta * y[i];
}

// out = alpha * x * y
@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    out3[i] = p.alpha * x[i] * y[i];
}

// out = alpha * x + beta
@compute @workgroup_size(256)
fn affine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    out2[i] = p.alpha * x[i] + p.beta;
}

// out = max(x, 0)
@compute @workgroup_size(256)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    out2[i] = max(x[i], 0.0);
}

// out = g where the forward output y > 0, else 0 (x = g, y = the ReLU output)
@compute @workgroup_size(256)
fn relu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    out3[i] = select(0.0, x[i], y[i] > 0.0);
}

// out = x * s where s = y[0] (a scalar held on the GPU)
@compute @workgroup_size(256)
fn scale_by(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    out3[i] = p.alpha * x[i] * y[0];
}

// buffer = alpha
@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    inplace[i] = p.alpha;
}

// buffer += alpha * x   (binding 1 = buffer, binding 2 = x)
@group(0) @binding(2) var<storage, read> src2: array<f32>;
@compute @workgroup_size(256)
fn acc(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    inplace[i] = inplace[i] + p.alpha * src2[i];
}

// Inverted dropout with a counter-based mask: keep element i when hash(seed, i) ≥ p·2^32, scale
// kept elements by 1/(1-p). alpha = p, beta = 1/(1-p), _pad = seed. The same (seed, i) gives the
// same mask in the backward pass (out = g · mask).
fn hash32(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

@compute @workgroup_size(256)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    let h = hash32(i ^ hash32(p.seed));
    let keep = f32(h >> 8u) / 16777216.0 >= p.alpha;
    out2[i] = select(0.0, x[i] * p.beta, keep);
}

// GELU, tanh form (as PyTorch's `gelu(approximate="tanh")`):
// gelu(x) = 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³). The argument of tanh is clamped to
// ±15, where tanh is ±1 to f32 precision (1 − tanh(15) ≈ 2e-13), so no back end meets an
// overflowing exp inside tanh.
const GELU_C: f32 = 0.7978845608028654;
const GELU_A: f32 = 0.044715;

fn gelu_tanh(v: f32) -> f32 {
    return tanh(clamp(GELU_C * (v + GELU_A * v * v * v), -15.0, 15.0));
}

@compute @workgroup_size(256)
fn gelu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    let v = x[i];
    out2[i] = 0.5 * v * (1.0 + gelu_tanh(v));
}

// GELU backward: out = g · gelu'(v) (x = g, y = the forward input v),
// gelu'(v) = 0.5·(1 + t) + 0.5·v·(1 − t²)·√(2/π)·(1 + 3·0.044715·v²), t = tanh(u).
@compute @workgroup_size(256)
fn gelu_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = idx(gid, nwg, WG);
    if i >= p.n { return; }
    let v = y[i];
    let t = gelu_tanh(v);
    let d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * v * v);
    out3[i] = x[i] * d;
}
