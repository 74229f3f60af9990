//! Element-wise ops: mul, affine, ReLU, scaling by a GPU scalar, dropout. Fill, in-place
//! accumulation, `α·x + β·y` and copies, which the tape itself needs, are [`Tensor`] methods
//! (`fill_`, `acc_`, `axpby`, `copy_into`) launching kernels of the same shader family.

use super::{same_shape, ELEMENTWISE};
use crate::autograd::{Tape, Var};
use crate::tensor::Tensor;
use crate::tensor::{elementwise_params as params, ELEMENTWISE_WG as WG};
use crate::Result;

fn binary(entry: &'static str, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<Tensor> {
    let out = Tensor::empty(x.gpu(), x.shape())?;
    x.gpu()
        .launch(&ELEMENTWISE, entry)
        .params(&params(x.numel(), alpha, beta)?)
        .read(&x)
        .read(&y)
        .write(&out)
        .dispatch_1d(x.numel(), WG)?;
    Ok(out)
}

fn unary(entry: &'static str, x: &Tensor, alpha: f32, beta: f32) -> Result<Tensor> {
    super::expect_f32("unary", x)?;
    let out = Tensor::empty(x.gpu(), x.shape())?;
    x.gpu()
        .launch(&ELEMENTWISE, entry)
        .params(&params(x.numel(), alpha, beta)?)
        .read(&x)
        .write(&out)
        .dispatch_1d(x.numel(), WG)?;
    Ok(out)
}

/// `alpha·x·y` element-wise.
pub fn mul(x: &Tensor, y: &Tensor, alpha: f32) -> Result<Tensor> {
    same_shape("mul", x, y)?;
    binary("mul", x, y, alpha, 0.0)
}

/// `alpha·x + beta`.
pub fn affine(x: &Tensor, alpha: f32, beta: f32) -> Result<Tensor> {
    unary("affine", x, alpha, beta)
}

/// `max(x, 0)`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    unary("relu", x, 0.0, 0.0)
}

/// The ReLU backward: `g` where the forward output `y > 0`, else 0.
pub fn relu_bwd(g: &Tensor, y: &Tensor) -> Result<Tensor> {
    same_shape("relu_bwd", g, y)?;
    binary("relu_bwd", g, y, 0.0, 0.0)
}

/// `alpha·x·s` where `s` is a one-element tensor on the GPU.
pub fn scale_by(x: &Tensor, s: &Tensor, alpha: f32) -> Result<Tensor> {
    super::expect_f32("scale_by", x)?;
    if s.numel() != 1 {
        return Err(crate::Error::shape(
            "scale_by",
            format!("scale must be a scalar, got {:?}", s.shape()),
        ));
    }
    binary("scale_by", x, s, alpha, 0.0)
}

/// Inverted dropout: zero each element with probability `p` (mask from `seed` and the index),
/// scale the rest by 1/(1−p).
pub fn dropout(x: &Tensor, p: f32, seed: u32) -> Result<Tensor> {
    super::expect_f32("dropout", x)?;
    if !(0.0..1.0).contains(&p) {
        return Err(crate::Error::invalid(format!(
            "dropout probability {p} is not in [0, 1)"
        )));
    }
    let out = Tensor::empty(x.gpu(), x.shape())?;
    x.gpu()
        .launch(&ELEMENTWISE, "dropout")
        .params(&crate::tensor::ElementwiseP {
            alpha: p,
            beta: 1.0 / (1.0 - p),
            seed,
            ..params(x.numel(), 0.0, 0.0)?
        })
        .read(&x)
        .write(&out)
        .dispatch_1d(x.numel(), WG)?;
    Ok(out)
}

// ---- taped versions ----

/// `a + b`.
pub fn add_t(tape: &mut Tape, a: Var, b: Var) -> Result<Var> {
    lin_comb_t(tape, a, b, 1.0, 1.0)
}

/// `a - b`.
pub fn sub_t(tape: &mut Tape, a: Var, b: Var) -> Result<Var> {
    lin_comb_t(tape, a, b, 1.0, -1.0)
}

/// `alpha·a + beta·b`.
pub fn lin_comb_t(tape: &mut Tape, a: Var, b: Var, alpha: f32, beta: f32) -> Result<Var> {
    let out = tape.value(a).axpby(tape.value(b), alpha, beta)?;
    Ok(tape.push(
        out,
        &[a, b],
        Box::new(move |g, need| {
            Ok(vec![
                if need[0] {
                    Some(affine(g, alpha, 0.0)?)
                } else {
                    None
                },
                if need[1] {
                    Some(affine(g, beta, 0.0)?)
                } else {
                    None
                },
            ])
        }),
    ))
}

/// `a ⊙ b`.
pub fn mul_t(tape: &mut Tape, a: Var, b: Var) -> Result<Var> {
    let (av, bv) = (tape.value(a).clone(), tape.value(b).clone());
    let out = mul(&av, &bv, 1.0)?;
    Ok(tape.push(
        out,
        &[a, b],
        Box::new(move |g, need| {
            Ok(vec![
                if need[0] {
                    Some(mul(g, &bv, 1.0)?)
                } else {
                    None
                },
                if need[1] {
                    Some(mul(g, &av, 1.0)?)
                } else {
                    None
                },
            ])
        }),
    ))
}

/// `s·a` for a host scalar s.
pub fn scale_t(tape: &mut Tape, a: Var, s: f32) -> Result<Var> {
    let out = affine(tape.value(a), s, 0.0)?;
    Ok(tape.push(
        out,
        &[a],
        Box::new(move |g, _| Ok(vec![Some(affine(g, s, 0.0)?)])),
    ))
}

/// `max(a, 0)`.
pub fn relu_t(tape: &mut Tape, a: Var) -> Result<Var> {
    let out = relu(tape.value(a))?;
    let y = out.clone();
    Ok(tape.push(
        out,
        &[a],
        Box::new(move |g, _| Ok(vec![Some(relu_bwd(g, &y)?)])),
    ))
}

/// Taped dropout (the backward applies the same mask).
pub fn dropout_t(tape: &mut Tape, a: Var, p: f32, seed: u32) -> Result<Var> {
    let out = dropout(tape.value(a), p, seed)?;
    Ok(tape.push(
        out,
        &[a],
        Box::new(move |g, _| Ok(vec![Some(dropout(g, p, seed)?)])),
    ))
}

/// GELU in its tanh form, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (PyTorch's
/// `gelu(approximate="tanh")`; the reference uses the same form).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    unary("gelu", x, 0.0, 0.0)
}

/// The GELU backward: `g · gelu'(x)` for the forward input `x`.
pub fn gelu_bwd(g: &Tensor, x: &Tensor) -> Result<Tensor> {
    same_shape("gelu_bwd", g, x)?;
    binary("gelu_bwd", g, x, 0.0, 0.0)
}

/// Taped GELU (tanh form).
pub fn gelu_t(tape: &mut Tape, a: Var) -> Result<Var> {
    let x = tape.value(a).clone();
    let out = gelu(&x)?;
    Ok(tape.push(
        out,
        &[a],
        Box::new(move |g, _| Ok(vec![Some(gelu_bwd(g, &x)?)])),
    ))
}
