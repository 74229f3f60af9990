//! LayerNorm over the last axis with a learned scale and shift (PyTorch's `LayerNorm(cols)`,
//! eps 1e-5): forward, and the backward for the input, the scale and the shift.

use super::{expect_f32, reduce, shader_params, u32_of, NORM};
use crate::autograd::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// PyTorch's default epsilon.
pub const EPS: f32 = 1e-5;
const WG: u32 = 64;

fn dims(x: &Tensor, gamma: &Tensor) -> Result<(usize, usize)> {
    expect_f32("layer_norm", x)?;
    expect_f32("layer_norm", gamma)?;
    let cols = *x
        .shape()
        .last()
        .ok_or_else(|| Error::shape("layer_norm", "a scalar has no last axis"))?;
    if gamma.shape() != [cols] || cols == 0 {
        return Err(Error::shape(
            "layer_norm",
            format!("scale {:?} for rows of {cols}", gamma.shape()),
        ));
    }
    let rows = x.numel() / cols;
    u32::try_from(x.numel())
        .map_err(|_| Error::shape("layer_norm", format!("{} elements", x.numel())))?;
    Ok((rows, cols))
}

shader_params!(
    /// The uniform block of `norm.wgsl`.
    NormP = "P" in Ok(NORM.src.to_string()), {
        rows: u32,
        cols: u32,
        eps: f32,
        _pad: u32,
    }
);

fn params(rows: usize, cols: usize) -> Result<NormP> {
    Ok(NormP {
        rows: u32_of("layer_norm rows", rows)?,
        cols: u32_of("layer_norm columns", cols)?,
        eps: EPS,
        _pad: 0,
    })
}

/// `y = (x − mean)·rstd·gamma + beta` per row of the last axis; also returns the per-row
/// (mean, rstd) as a (rows, 2) tensor for the backward.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<(Tensor, Tensor)> {
    let (rows, cols) = dims(x, gamma)?;
    if beta.shape() != gamma.shape() {
        return Err(Error::shape(
            "layer_norm",
            format!("shift {:?} vs scale {:?}", beta.shape(), gamma.shape()),
        ));
    }
    let y = Tensor::empty(x.gpu(), x.shape())?;
    let stats = Tensor::empty(x.gpu(), &[rows, 2])?;
    x.gpu()
        .launch(&NORM, "ln_fwd")
        .params(&params(rows, cols)?)
        .read(&x)
        .read(&gamma)
        .read(&beta)
        .write(&y)
        .write(&stats)
        .dispatch_1d(rows, WG)?;
    Ok((y, stats))
}

/// The backward: (dx, dgamma, dbeta) for the upstream gradient `g`.
pub fn layer_norm_bwd(
    g: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    stats: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (rows, cols) = dims(x, gamma)?;
    super::same_shape("layer_norm_bwd", g, x)?;
    let dx = Tensor::empty(x.gpu(), x.shape())?;
    let gxhat = Tensor::empty(x.gpu(), &[rows, cols])?;
    x.gpu()
        .launch(&NORM, "ln_bwd")
        .params(&params(rows, cols)?)
        .read(&x)
        .read(&gamma)
        .read(&stats)
        .read(&g)
        .write(&dx)
        .write(&gxhat)
        .dispatch_1d(rows, WG)?;
    let dgamma = reduce::sum_axis(&gxhat, 0)?;
    let dbeta = reduce::sum_axis(&g.reshape(&[rows, cols])?, 0)?;
    Ok((dx, dgamma, dbeta))
}

/// Taped LayerNorm over the last axis of `x` with scale `gamma` and shift `beta` (both (cols)).
pub fn layer_norm_t(tape: &mut Tape, x: Var, gamma: Var, beta: Var) -> Result<Var> {
    let (xv, gv) = (tape.value(x).clone(), tape.value(gamma).clone());
    let (y, stats) = layer_norm(&xv, &gv, tape.value(beta))?;
    Ok(tape.push(
        y,
        &[x, gamma, beta],
        Box::new(move |g, need| {
            let (dx, dg, db) = layer_norm_bwd(g, &xv, &gv, &stats)?;
            Ok(vec![
                need[0].then_some(dx),
                need[1].then_some(dg),
                need[2].then_some(db),
            ])
        }),
    ))
}
