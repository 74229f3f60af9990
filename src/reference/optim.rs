//! Reference optimiser steps (PyTorch semantics), in f64.

/// Global-norm clip coefficient `min(1, max_norm / (‖g‖ + 1e-6))`.
pub fn clip_coef(grads: &[&[f64]], max_norm: f64) -> f64 {
    let norm = grads
        .iter()
        .flat_map(|g| g.iter())
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt();
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// One Adam (decoupled = false) or AdamW (decoupled = true) step at step number t (from 1).
#[allow(clippy::too_many_arguments)]
pub fn adam(
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    decoupled: bool,
    t: u32,
    scale: f64,
) {
    let bc1 = 1.0 - b1.powi(t as i32);
    let bc2 = 1.0 - b2.powi(t as i32);
    for i in 0..p.len() {
        let mut gi = g[i] * scale;
        if decoupled {
            p[i] *= 1.0 - lr * wd;
        } else {
            gi += wd * p[i];
        }
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        p[i] -= (lr / bc1) * m[i] / (v[i].sqrt() / bc2.sqrt() + eps);
    }
}

/// One SGD-with-momentum step; `first` starts the momentum buffer at the gradient.
#[allow(clippy::too_many_arguments)]
pub fn sgd(
    p: &mut [f64],
    g: &[f64],
    buf: &mut [f64],
    lr: f64,
    momentum: f64,
    wd: f64,
    first: bool,
    scale: f64,
) {
    for i in 0..p.len() {
        let gi = g[i] * scale + wd * p[i];
        buf[i] = if first { gi } else { momentum * buf[i] + gi };
        p[i] -= lr * buf[i];
    }
}
