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
        row_off: u32,
        add: u32,
        _p0: u32,
        _p1: u32,
    }
);

/// `(KL as a one-element tensor, ∂KL/∂w)` for `w` against its initial value `w0`, softmax along `axis`.
pub fn kl(w: &Tensor, w0: &Tensor, axis: usize) -> Result<(Tensor, Tensor)> {
    kl_scaled(w, w0, axis, 1.0)
}

/// [`kl`] with both outputs multiplied by `scale` inside the kernel: two dispatches in all (the
/// rows and their sum), where scaling after would take a pass over each output.
fn kl_scaled(w: &Tensor, w0: &Tensor, axis: usize, scale: f32) -> Result<(Tensor, Tensor)> {
    let rows = Tensor::empty(w.gpu(), &[kl_row_count(w, axis)?])?;
    let grad = Tensor::empty(w.gpu(), w.shape())?;
    kl_into(w, w0, axis, scale, &rows, 0, &grad, false)?;
    Ok((reduce::sum_all(&rows)?, grad))
}

/// The rows [`kl_into`] writes for `w` with its softmax along `axis`.
pub fn kl_row_count(w: &Tensor, axis: usize) -> Result<usize> {
    if axis >= w.rank() {
        return Err(Error::shape(
            "kl",
            format!("axis {axis} for {:?}", w.shape()),
        ));
    }
    Ok(w.numel() / w.shape()[axis].max(1))
}

/// One dispatch: `scale · KL(w ‖ w0)`'s rows (their sum is the value, the mean over the tensor's
/// elements included) written to `rows` from `offset`, and its gradient written to `grad` or,
/// with `add`, added to it (a parameter's accumulated gradient: no pass of its own to add it).
/// Several tensors' rows side by side in one `rows` are summed at once.
#[allow(clippy::too_many_arguments)]
pub fn kl_into(
    w: &Tensor,
    w0: &Tensor,
    axis: usize,
    scale: f32,
    rows: &Tensor,
    offset: usize,
    grad: &Tensor,
    add: bool,
) -> Result<()> {
    same_shape("kl", w, w0)?;
    let count = kl_row_count(w, axis)?;
    if grad.numel() != w.numel() || offset + count > rows.numel() {
        return Err(Error::shape(
            "kl",
            format!(
                "gradient {:?} for {:?}, or rows {}..{} past {}",
                grad.shape(),
                w.shape(),
                offset,
                offset + count,
                rows.numel()
            ),
        ));
    }
    let s = w.shape();
    let inner: usize = s[axis + 1..].iter().product();
    let n = s[axis];
    // The mean over the tensor's elements.
    let scale = scale / w.numel().max(1) as f32;
    w.gpu()
        .launch(&KL, "kl_rows")
        .params(&KlP {
            outer: u32_of("outer extent", count / inner.max(1))?,
            n: u32_of("softmax extent", n)?,
            inner: u32_of("inner extent", inner)?,
            scale,
            row_off: u32_of("row offset", offset)?,
            add: u32::from(add),
            ..Default::default()
        })
        .read(&w)
        .read(&w0)
        .write(&rows)
        .write(&grad)
        .dispatch_1d(count, 64)
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
