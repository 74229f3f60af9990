// The optimiser's declarations and its gradient-norm clip. The update kernels (`adam`, `sgd`) are
// generated in Rust for k parameter tensors per launch (src/ops/optim.rs, `OptimGen`): this file
// up to the marker below, k (parameter, gradient) binding pairs with the helpers that find an
// element's tensor, then shaders/optim_update.wgsl (the per-element arithmetic, the same for
// every k). Element i of a launch belongs to tensor 0 when i < n[0], to tensor 1 when
// i < n[0] + n[1], and so on (tensor t's entries at n[t / 4][t % 4]: a uniform array's stride is
// 16 bytes). The state buffer holds every tensor's first moment (SGD: its momentum buffer) at
// o_t and, for Adam, its second moment at total + o_t. Each gradient is multiplied by its
// tensor's s_t and by the clip coefficient clip[0] (1 when clipping is off), computed on the GPU
// from the global norm. A launch binds 2 + 2k storage buffers: k is as large as the device's
// max_storage_buffers_per_shader_stage allows, up to 16 (3 under WebGPU's default 8).

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
    _p0: u32,
    _p1: u32,
    _p2: u32,
    // Per tensor, 16 of each (ops::optim::CAP): its elements, where its state starts, its
    // gradient's scale.
    n: array<vec4<u32>, 4>,
    o: array<vec4<u32>, 4>,
    s: array<vec4<f32>, 4>,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> clip: array<f32>;
@group(0) @binding(2) var<storage, read_write> st: array<f32>;

// ---- Gradient-norm clip ----

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
