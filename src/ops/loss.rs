//! Losses and metrics: fused log-softmax cross-entropy with integer labels, MSE, and the count of
//! correct predictions (arg-max == label), all on the GPU.

use super::{elementwise, expect_f32, reduce, same_shape, shader_params, u32_of, LOSS};
use crate::autograd::{Tape, Var};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

fn check_logits(op: &'static str, logits: &Tensor, labels: &Tensor) -> Result<(usize, usize)> {
    expect_f32(op, logits)?;
    if logits.rank() != 2 {
        return Err(Error::shape(
            op,
            format!("logits must be (rows, classes), got {:?}", logits.shape()),
        ));
    }
    if labels.dtype() != DType::U32 || labels.shape() != [logits.shape()[0]] {
        return Err(Error::shape(
            op,
            format!(
                "labels must be u32 of shape [{}], got {:?} {:?}",
                logits.shape()[0],
                labels.dtype(),
                labels.shape()
            ),
        ));
    }
    if logits.shape()[1] == 0 {
        return Err(Error::shape(op, "zero classes"));
    }
    Ok((logits.shape()[0], logits.shape()[1]))
}

shader_params!(
    /// The uniform block of `loss.wgsl`.
    LossP = "P" in Ok(LOSS.src.to_string()), {
        rows: u32,
        classes: u32,
        inv_rows: f32,
        _p0: u32,
    }
);

fn loss_params(rows: usize, classes: usize) -> Result<LossP> {
    Ok(LossP {
        rows: u32_of("rows", rows)?,
        classes: u32_of("classes", classes)?,
        ..Default::default()
    })
}

/// Per-row losses `logsumexp(x) - x[label]` and the gradient of their mean w.r.t. the logits.
/// Labels must be below the class count (the data layer checks this on load).
pub fn cross_entropy_rows(logits: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor)> {
    let (rows, classes) = check_logits("cross_entropy", logits, labels)?;
    let gpu = logits.gpu();
    let loss = Tensor::empty(gpu, &[rows])?;
    let grad = Tensor::empty(gpu, logits.shape())?;
    gpu.launch(&LOSS, "ce")
        .params(&LossP {
            inv_rows: 1.0 / rows.max(1) as f32,
            ..loss_params(rows, classes)?
        })
        .read(&logits)
        .read(&labels)
        .write(&loss)
        .write(&grad)
        .dispatch_1d(rows, 64)?;
    Ok((loss, grad))
}

/// Mean cross-entropy over the rows (a one-element tensor) and its gradient.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor)> {
    let (rows_loss, grad) = cross_entropy_rows(logits, labels)?;
    let n = rows_loss.numel().max(1);
    let mean = elementwise::affine(&reduce::sum_all(&rows_loss)?, 1.0 / n as f32, 0.0)?;
    Ok((mean, grad))
}

/// Taped mean cross-entropy.
pub fn cross_entropy_t(tape: &mut Tape, logits: Var, labels: &Tensor) -> Result<Var> {
    let (mean, grad) = cross_entropy(tape.value(logits), labels)?;
    Ok(tape.push(
        mean,
        &[logits],
        Box::new(move |g, _| Ok(vec![Some(elementwise::scale_by(&grad, g, 1.0)?)])),
    ))
}

/// The number of rows whose first arg-max equals the label, as a one-element f32 tensor
/// (exact up to 2^24 rows).
pub fn correct_count(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (rows, classes) = check_logits("correct_count", logits, labels)?;
    let gpu = logits.gpu();
    let flags = Tensor::empty(gpu, &[rows])?;
    gpu.launch(&LOSS, "correct")
        .params(&loss_params(rows, classes)?)
        .read(&logits)
        .read(&labels)
        .write(&flags)
        .dispatch_1d(rows, 64)?;
    reduce::sum_all(&flags)
}

/// Mean squared error `mean((a - b)²)` as a one-element tensor.
pub fn mse(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mse", a, b)?;
    let d = a.axpby(b, 1.0, -1.0)?;
    elementwise::affine(&reduce::sumsq_all(&d)?, 1.0 / a.numel().max(1) as f32, 0.0)
}

/// Taped MSE.
pub fn mse_t(tape: &mut Tape, a: Var, b: Var) -> Result<Var> {
    let (av, bv) = (tape.value(a).clone(), tape.value(b).clone());
    let out = mse(&av, &bv)?;
    let n = av.numel().max(1) as f32;
    Ok(tape.push(
        out,
        &[a, b],
        Box::new(move |g, need| {
            let d = av.axpby(&bv, 1.0, -1.0)?;
            let da = elementwise::scale_by(&d, g, 2.0 / n)?;
            let db = if need[1] {
                Some(elementwise::affine(&da, -1.0, 0.0)?)
            } else {
                None
            };
            Ok(vec![Some(da), db])
        }),
    ))
}
