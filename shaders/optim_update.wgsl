// The optimiser's update kernels, behind shaders/optim.wgsl's declarations and the helpers
// src/ops/optim.rs generates for k tensors per launch: `slot(i)` (element i's tensor, k for
// none, and its index there), `weight`, `gradient` (times its tensor's scale and the clip
// coefficient), `state_at` and `set_weight`, each choosing tensor t's bindings. The arithmetic
// per element is the same whatever k is.

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = slot(idx(gid, nwg, 256u));
    if s.x == SLOTS { return; }
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
    if s.x == SLOTS { return; }
    let w = weight(s.x, s.y);
    let g = gradient(s.x, s.y) + p.wd * w;
    let o = state_at(s.x, s.y);
    let b = p.beta1 * st[o] + g;
    st[o] = b;
    set_weight(s.x, s.y, w - p.lr * b);
}
