//! Optimiser kernels: one launch updates one parameter buffer in place. The global gradient-norm
//! clip coefficient is computed on the GPU and read by the update kernels from a buffer.

use super::{reduce, same_shape, shader_params, u32_of, OPTIM};
use crate::tensor::Tensor;
use crate::{Error, Result};

shader_params!(
    /// The uniform block `P` of `optim.wgsl`'s update kernels.
    OptimP = "P" in Ok(OPTIM.src.to_string()), {
        n: u32,
        mode: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        wd: f32,
        bc1: f32,
        bc2: f32,
        _p0: u32,
        _p1: u32,
        _p2: u32,
    }
);

shader_params!(
    /// The uniform block `C` of `optim.wgsl`'s `clip_coef`.
    ClipP = "C" in Ok(OPTIM.src.to_string()), {
        count: u32,
        max_norm: f32,
        _p0: u32,
        _p1: u32,
    }
);

/// Hyper-parameters of one Adam/AdamW step.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// true: AdamW (decoupled decay); false: Adam (L2 decay added to the gradient).
    pub decoupled: bool,
    /// The step number, from 1.
    pub t: u32,
}

/// One Adam/AdamW step on `param` with state `m`, `v`; the gradient is scaled by `clip[0]`.
pub fn adam_(
    param: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    clip: &Tensor,
    h: AdamStep,
) -> Result<()> {
    same_shape("adam", param, grad)?;
    same_shape("adam", param, m)?;
    same_shape("adam", param, v)?;
    if h.t == 0 {
        return Err(Error::invalid("Adam step numbers start at 1"));
    }
    let bc1 = 1.0 - (h.beta1 as f64).powi(h.t as i32);
    let bc2 = 1.0 - (h.beta2 as f64).powi(h.t as i32);
    let p = OptimP {
        n: u32_of("parameter elements", param.numel())?,
        mode: u32::from(h.decoupled),
        lr: h.lr,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        wd: h.weight_decay,
        bc1: bc1 as f32,
        bc2: bc2 as f32,
        ..Default::default()
    };
    param
        .gpu()
        .launch(&OPTIM, "adam")
        .params(&p)
        .write(&param)
        .read(&grad)
        .read(&clip)
        .write(&m)
        .write(&v)
        .dispatch_1d(param.numel(), 256)
}

/// One SGD-with-momentum step (PyTorch semantics); `first` marks the first step.
#[allow(clippy::too_many_arguments)]
pub fn sgd_(
    param: &Tensor,
    grad: &Tensor,
    buf: &Tensor,
    clip: &Tensor,
    lr: f32,
    momentum: f32,
    wd: f32,
    first: bool,
) -> Result<()> {
    same_shape("sgd", param, grad)?;
    same_shape("sgd", param, buf)?;
    let bc1: f32 = if first || momentum == 0.0 { 1.0 } else { 0.0 };
    let p = OptimP {
        n: u32_of("parameter elements", param.numel())?,
        lr,
        beta1: momentum,
        wd,
        bc1,
        ..Default::default()
    };
    param
        .gpu()
        .launch(&OPTIM, "sgd")
        .params(&p)
        .write(&param)
        .read(&grad)
        .read(&clip)
        .write(&buf)
        .dispatch_1d(param.numel(), 256)
}

/// `[min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖]` over all gradients, computed on the GPU.
pub fn clip_coefficient(grads: &[Tensor], max_norm: f32) -> Result<Tensor> {
    let gpu = grads
        .first()
        .ok_or_else(|| Error::invalid("gradient clipping with no gradients"))?
        .gpu()
        .clone();
    let count: usize = grads.iter().map(|g| reduce::partial_count(g.numel())).sum();
    let partials = Tensor::empty(&gpu, &[count])?;
    let mut off = 0;
    for g in grads {
        off += reduce::sumsq_partials(g, &partials, off)?;
    }
    let out = Tensor::empty(&gpu, &[2])?;
    gpu.launch(&OPTIM, "clip_coef")
        .params(&ClipP {
            count: u32_of("partial sums", count)?,
            max_norm,
            ..Default::default()
        })
        .read(&partials)
        .write(&out)
        .dispatch([1, 1, 1])?;
    Ok(out)
}
