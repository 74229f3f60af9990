//! The penalties on a cloned tensor's drift from its clone (shaders/kl.wgsl): SPEC §5's KL,
//! `mean over elements of p_new (log p_new − log p_init)`, `p = softmax` along one axis, computed
//! in δ form; and the squared distance `mean over elements of (w − w0)²`, which also sees the
//! shift along the softmax axis that the KL cannot.

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

/// Which drift a `*-kl` model's penalty measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Penalty {
    /// SPEC §5: the KL of the softmax along each tensor's axis (blind to a shift along it).
    #[default]
    Kl,
    /// The squared distance to the cloned tensor, element mean: sees the whole drift.
    L2,
}

impl Penalty {
    /// Every penalty, in the order `--penalty` lists them.
    pub const ALL: [Penalty; 2] = [Penalty::Kl, Penalty::L2];

    /// The name `--penalty` and the configuration use.
    pub fn name(self) -> &'static str {
        match self {
            Penalty::Kl => "kl",
            Penalty::L2 => "l2",
        }
    }

    /// The kernel of `kl.wgsl` that computes it.
    fn entry(self) -> &'static str {
        match self {
            Penalty::Kl => "kl_rows",
            Penalty::L2 => "l2_rows",
        }
    }
}

impl std::str::FromStr for Penalty {
    type Err = Error;
    fn from_str(s: &str) -> Result<Penalty> {
        Penalty::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "penalty '{}': use kl (SPEC §5) or l2 (the squared distance to the clone)",
                    s.escape_debug()
                ))
            })
    }
}

/// `(KL as a one-element tensor, ∂KL/∂w)` for `w` against its initial value `w0`, softmax along `axis`.
pub fn kl(w: &Tensor, w0: &Tensor, axis: usize) -> Result<(Tensor, Tensor)> {
    penalty(Penalty::Kl, w, w0, axis, 1.0)
}

/// `(penalty as a one-element tensor, its gradient)`, both multiplied by `scale` inside the
/// kernel: two dispatches in all (the rows and their sum), where scaling after would take a pass
/// over each output. `axis` sets the rows (the KL's softmax axis; the squared distance sums
/// the same rows).
pub fn penalty(
    kind: Penalty,
    w: &Tensor,
    w0: &Tensor,
    axis: usize,
    scale: f32,
) -> Result<(Tensor, Tensor)> {
    let rows = Tensor::empty(w.gpu(), &[kl_row_count(w, axis)?])?;
    let grad = Tensor::empty(w.gpu(), w.shape())?;
    penalty_into(kind, w, w0, axis, scale, &rows, 0, &grad, false)?;
    Ok((reduce::sum_all(&rows)?, grad))
}

/// The rows [`penalty_into`] writes for `w` with its softmax along `axis`.
pub fn kl_row_count(w: &Tensor, axis: usize) -> Result<usize> {
    if axis >= w.rank() {
        return Err(Error::shape(
            "kl",
            format!("axis {axis} for {:?}", w.shape()),
        ));
    }
    Ok(w.numel() / w.shape()[axis].max(1))
}

/// One dispatch: `scale · penalty(w, w0)`'s rows (their sum is the value, the mean over the
/// tensor's elements included) written to `rows` from `offset`, and its gradient written to
/// `grad` or, with `add`, added to it (a parameter's accumulated gradient: no pass of its own to
/// add it). Several tensors' rows side by side in one `rows` are summed at once.
#[allow(clippy::too_many_arguments)]
pub fn penalty_into(
    kind: Penalty,
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
        .launch(&KL, kind.entry())
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
    let (value, grad) = penalty(Penalty::Kl, tape.value(w), w0, axis, beta)?;
    Ok(tape.push(
        value,
        &[w],
        Box::new(move |g, _| Ok(vec![Some(elementwise::scale_by(&grad, g, 1.0)?)])),
    ))
}
