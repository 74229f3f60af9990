//! The KL penalty of SPEC §5 for one cloned tensor, computed in δ form (see shaders/kl.wgsl):
//! `mean over elements of p_new (log p_new − log p_init)`, `p = softmax` along one axis.

use super::{elementwise, reduce, same_shape, shader_params, u32_of, KL};
use crate::autograd::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

shader_params!(
    /// The uniform block of `kl.wgsl`.
    KlP = "P" in Ok(KL.src.to_string()), {
        outer: u32,
        n: u32,
        inner: u32,
        scale: f32,
    }
);

/// `(KL as a one-element tensor, ∂KL/∂w)` for `w` against its initial value `w0`, softmax along `axis`.
pub fn kl(w: &Tensor, w0: &Tensor, axis: usize) -> Result<(Tensor, Tensor)> {
    kl_scaled(w, w0, axis, 1.0)
}

/// [`kl`] with both outputs multiplied by `scale` inside the kernel: two dispatches in all (the
/// rows and their sum), where scaling after would take a pass over each output.
fn kl_scaled(w: &Tensor, w0: &Tensor, axis: usize, scale: f32) -> Result<(Tensor, Tensor)> {
    same_shape("kl", w, w0)?;
    if axis >= w.rank() {
        return Err(Error::shape(
            "kl",
            format!("axis {axis} for {:?}", w.shape()),
        ));
    }
    let s = w.shape();
    let outer: usize = s[..axis].iter().product();
    let inner: usize = s[axis + 1..].iter().product();
    let n = s[axis];
    let gpu = w.gpu();
    let rows = Tensor::empty(gpu, &[outer * inner])?;
    let grad = Tensor::empty(gpu, s)?;
    // The mean over the tensor's elements.
    let scale = scale / w.numel().max(1) as f32;
    gpu.launch(&KL, "kl_rows")
        .params(&KlP {
            outer: u32_of("outer extent", outer)?,
            n: u32_of("softmax extent", n)?,
            inner: u32_of("inner extent", inner)?,
            scale,
        })
        .read(&w)
        .read(&w0)
        .write(&rows)
        .write(&grad)
        .dispatch_1d(outer * inner, 64)?;
    Ok((reduce::sum_all(&rows)?, grad))
}

/// Taped `β · KL(w ‖ w0)`; `w0` is a constant.
pub fn kl_t(tape: &mut Tape, w: Var, w0: &Tensor, axis: usize, beta: f32) -> Result<Var> {
    // β is applied in the kernel: the gradient it keeps is already ∂(β·KL)/∂w.
    let (value, grad) = kl_scaled(tape.value(w), w0, axis, beta)?;
    Ok(tape.push(
        value,
        &[w],
        Box::new(move |g, _| Ok(vec![Some(elementwise::scale_by(&grad, g, 1.0)?)])),
    ))
}
