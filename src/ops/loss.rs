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
        mode: u32,
    }
);

/// Running sums over batches, each one element: the batches' mean cross-entropies and their
/// correct counts (exact up to 2^24 rows). [`add_batch`] adds a batch to them.
pub struct BatchSums {
    pub loss: Tensor,
    pub correct: Tensor,
}

impl BatchSums {
    /// Both sums at zero.
    pub fn zeros(gpu: &std::sync::Arc<crate::Gpu>) -> Result<BatchSums> {
        Ok(BatchSums {
            loss: Tensor::zeros(gpu, &[1])?,
            correct: Tensor::zeros(gpu, &[1])?,
        })
    }
}

/// The one loss kernel: the batch's mean cross-entropy and correct count, written to `sums` or
/// added to them, and the gradient of the mean w.r.t. the logits when `grad` is set. Labels must
/// be below the class count (the data layer checks this on load).
fn ce_batch(
    logits: &Tensor,
    labels: &Tensor,
    grad: bool,
    sums: &BatchSums,
    add: bool,
) -> Result<Option<Tensor>> {
    let (rows, classes) = check_logits("cross_entropy", logits, labels)?;
    let gpu = logits.gpu();
    let dlogits = Tensor::empty(gpu, if grad { logits.shape() } else { &[1] })?;
    gpu.launch(&LOSS, "ce_batch")
        .params(&LossP {
            rows: u32_of("rows", rows)?,
            classes: u32_of("classes", classes)?,
            inv_rows: 1.0 / rows.max(1) as f32,
            mode: u32::from(grad) | (u32::from(add) << 1),
        })
        .read(&logits)
        .read(&labels)
        .write(&sums.loss)
        .write(&sums.correct)
        .write(&dlogits)
        .dispatch([1, 1, 1])?;
    Ok(grad.then_some(dlogits))
}

/// Add a batch's mean cross-entropy and correct count to `sums` (one dispatch), and return the
/// gradient of the mean w.r.t. the logits when `grad` is set.
pub fn add_batch(
    logits: &Tensor,
    labels: &Tensor,
    sums: &BatchSums,
    grad: bool,
) -> Result<Option<Tensor>> {
    ce_batch(logits, labels, grad, sums, true)
}

fn fresh(logits: &Tensor, labels: &Tensor, grad: bool) -> Result<(BatchSums, Option<Tensor>)> {
    let gpu = logits.gpu();
    let sums = BatchSums {
        loss: Tensor::empty(gpu, &[1])?,
        correct: Tensor::empty(gpu, &[1])?,
    };
    let g = ce_batch(logits, labels, grad, &sums, false)?;
    Ok((sums, g))
}

/// Mean cross-entropy over the rows (a one-element tensor) and its gradient.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor)> {
    let (sums, grad) = fresh(logits, labels, true)?;
    Ok((sums.loss, grad.expect("asked for")))
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
    Ok(fresh(logits, labels, false)?.0.correct)
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
