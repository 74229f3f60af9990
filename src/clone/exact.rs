//! The three forms of the cloning loss (SPEC §3) and the exact expected loss in Gram form.
//!
//! The true layers are linear in the filter code and in the input, and so is the clone for fixed
//! mixing: the coefficients of code index i on block b are `A[i, b]` (the clone's transforms and
//! mixing applied to the unit code e_i), and the true layer's are `E[i, j]` on the tap matrices S_j.
//! For Gaussian codes and inputs the SPEC's sampled loss therefore has the closed-form expectation
//!
//! ```text
//! L = Σ_i ‖Σ_b A[i, b] B_b − Σ_j E[i, j] S_j‖²_F / (out_planes · n_out)
//! ```
//!
//! summed over every row i = (code index, r[, s]). The S_j of a valid correlation are orthogonal
//! with ‖S_j‖²_F = n_out, so with `X = B Sᵀ / n_out` (nb × 9, the blocks' part in the span of the
//! taps) and `B⊥ = B − X S` (what lies outside it, K⊥ = B⊥ B⊥ᵀ, nb × nb):
//!
//! ```text
//! L · out_planes · n_out = n_out ‖A X − E‖²_F + tr(A K⊥ Aᵀ)
//! ```
//!
//! This is the Gram form of SPEC §3 (`tr(A K Aᵀ) − 2 tr(A C Eᵀ) + const` with `K = B Bᵀ`,
//! `C = B Sᵀ`) with the blocks split along the taps first: the same value and the same gradient
//! (`dL/dB ∝ 2 H B − 2 Q S`), at the same cost O(nb²·n_out·n_in) per step, independent of the
//! number of filters and images, but without the cancellation of three large terms that would cap
//! an f32 loss near 1e-5 relative. Everything is composed of taped ops (matrix products with
//! transposes, elementwise, reductions), so the gradient is the tape's.
//!
//! **The taps without S.** `C = B Sᵀ` and `B − X S` go through two kernels over the 9·n_out tap
//! positions (`ops::cloned::taps`, and its adjoint `taps_adj` subtracting from B): the
//! tap-selection matrices S, nine dense n_out × n_in 0/1 matrices, are never formed or multiplied.
//!
//! **The Gram kernel.** `B⊥ B⊥ᵀ` (nb × nb) has an inner dimension of n_out·n_in (530,000 at
//! d = 28) and an output smaller than one matrix-product tile, so a plain product would run on a
//! single tile's threads. `ops::cloned::gram` puts the lanes along that inner dimension instead:
//! each sums every T-th column for a 4 × 4 block of the result, then one fixed-order sum over the
//! lanes, so the loss stays deterministic; its gradient `(H + Hᵀ) B⊥` is a plain matrix product
//! (long rows: the register tiles fill).

use super::operator::{true_codes, ClonedOperator, OperatorKind, K};
use crate::autograd::{Tape, Var};
use crate::ops::{cloned, elementwise, loss, matmul, reduce};
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

const K2: usize = K * K;

/// Which form of the cloning loss a clone is trained on.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CloneLoss {
    /// SPEC §3: F random codes per iteration, each with `batch` Gaussian noise images.
    #[default]
    Sampled,
    /// **[ours]** The expectation over the Gaussian inputs only: F random codes per iteration, the
    /// distance between the clone's and the true layer's dense operators.
    Inputs,
    /// **[ours]** The expectation over codes and inputs (this module): no sampling at all.
    Exact,
}

impl CloneLoss {
    pub fn name(self) -> &'static str {
        match self {
            CloneLoss::Sampled => "sampled",
            CloneLoss::Inputs => "inputs",
            CloneLoss::Exact => "exact",
        }
    }
}

impl std::str::FromStr for CloneLoss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sampled" => Ok(CloneLoss::Sampled),
            "inputs" => Ok(CloneLoss::Inputs),
            "exact" => Ok(CloneLoss::Exact),
            other => Err(Error::invalid(format!(
                "clone loss '{}': use sampled, inputs or exact",
                other.escape_debug()
            ))),
        }
    }
}

impl std::fmt::Display for CloneLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The true layer's tap coefficients of every unit code, (code_len·R, 9), rows in
/// (code index, r[, s]) order — the `E` of the module's formula.
pub fn unit_code_taps(kind: OperatorKind) -> Vec<f32> {
    let n = kind.code_len();
    let mut e = Vec::with_capacity(n * kind.codes_per_filter() * K2);
    for i in 0..n {
        let mut unit = vec![0.0f32; n];
        unit[i] = 1.0;
        e.extend(true_codes(kind, &unit));
    }
    e
}

/// The constant parts of the exact loss for one (kind, d): the unit codes and the true layer's tap
/// coefficients, on the GPU.
pub struct ExactLoss {
    kind: OperatorKind,
    n_out: usize,
    /// (code_len, code_len) identity: the unit codes.
    eye: Tensor,
    /// (code_len·R, 9): E.
    taps: Tensor,
    /// The targets' mean square, E over codes and inputs of the mean of y² (the relative MSE's
    /// denominator): ‖E‖²_F / out_planes (9 for Z2 and Lift, 36 for P4).
    target_mean_square: f32,
}

impl ExactLoss {
    pub fn new(gpu: &Arc<Gpu>, kind: OperatorKind, d: usize) -> Result<Self> {
        let (n_out, _) = ClonedOperator::io(d);
        let n = kind.code_len();
        let mut eye = vec![0.0f32; n * n];
        for i in 0..n {
            eye[i * n + i] = 1.0;
        }
        let e = unit_code_taps(kind);
        let sq: f64 = e.iter().map(|&v| (v as f64) * (v as f64)).sum();
        Ok(ExactLoss {
            kind,
            n_out,
            eye: Tensor::from_slice(gpu, &[n, n], &eye)?,
            taps: Tensor::from_slice(gpu, &[e.len() / K2, K2], &e)?,
            target_mean_square: (sq / kind.out_planes() as f64) as f32,
        })
    }

    /// What an all-zero clone scores: the denominator of the relative MSE.
    pub fn target_mean_square(&self) -> f32 {
        self.target_mean_square
    }

    /// The exact expected loss of `op` on the tape (a one-element tensor).
    pub fn loss_t(&self, tape: &mut Tape, op: &ClonedOperator) -> Result<Var> {
        let a = self.unit_coefficients_t(tape, op)?;
        let (n_out, n_in) = ClonedOperator::io(op.d);
        // X = B Sᵀ / n_out and B⊥ = B − X S, by the tap kernels (S is never formed); then
        // K⊥ = B⊥ B⊥ᵀ by the Gram kernel, with B⊥ as (nb, n_out·n_in).
        let blocks = tape.param(&op.blocks);
        let c = cloned::taps_t(tape, blocks, K, op.d)?;
        let x = elementwise::scale_t(tape, c, 1.0 / n_out as f32)?;
        let bp = cloned::taps_outside_t(tape, blocks, x, K, op.d)?;
        let bp = tape.reshape(bp, &[op.nb, n_out * n_in])?;
        let kp = cloned::gram_t(tape, bp)?;
        let (inside, w_inside) = self.inside_mse_t(tape, a, x)?;
        // tr(A K⊥ Aᵀ): the part outside it.
        let ak = matmul::matmul_t(tape, a, kp, false, false, None, false)?;
        let prod = elementwise::mul_t(tape, ak, a)?;
        let outside = reduce::sum_all_t(tape, prod, false)?;
        let norm = (self.kind.out_planes() * n_out) as f32;
        elementwise::lin_comb_t(tape, inside, outside, w_inside, 1.0 / norm)
    }

    /// The exact loss of an operator whose blocks lie in the span of the taps, `B = X S` with `x`
    /// (nb, 9) on the tape: the part outside the span is zero, so the loss is its part inside,
    /// `n_out ‖A X − E‖²` (normalised as [`Self::loss_t`]), at a cost independent of d. The
    /// operator's own blocks are not read (see `train::clone_random`).
    pub fn span_loss_t(&self, tape: &mut Tape, op: &ClonedOperator, x: Var) -> Result<Var> {
        let a = self.unit_coefficients_t(tape, op)?;
        if tape.value(x).shape() != [op.nb, K2] {
            return Err(Error::shape(
                "span loss",
                format!("tap coefficients {:?} for {op:?}", tape.value(x).shape()),
            ));
        }
        let (inside, w_inside) = self.inside_mse_t(tape, a, x)?;
        elementwise::scale_t(tape, inside, w_inside)
    }

    /// A: the clone's coefficients of every unit code, (code_len·R, nb), after checking that the
    /// loss was built for `op`'s layer.
    fn unit_coefficients_t(&self, tape: &mut Tape, op: &ClonedOperator) -> Result<Var> {
        if op.kind != self.kind || ClonedOperator::io(op.d).0 != self.n_out {
            return Err(Error::invalid(format!(
                "the exact loss was built for another layer than {op:?}"
            )));
        }
        let eye = tape.input(self.eye.clone());
        let tc = op.codes_t(tape, eye)?;
        op.coefficients_t(tape, tc)
    }

    /// The part of the loss in the span of the taps, `n_out ‖A X − E‖²` over out_planes·n_out, as
    /// the mean square of `A X − E` and the weight that turns it into that.
    fn inside_mse_t(&self, tape: &mut Tape, a: Var, x: Var) -> Result<(Var, f32)> {
        let rows = self.taps.shape()[0];
        let ax = matmul::matmul_t(tape, a, x, false, false, None, false)?;
        let e = tape.input(self.taps.clone());
        let mse = loss::mse_t(tape, ax, e)?;
        let norm = (self.kind.out_planes() * self.n_out) as f32;
        Ok((mse, (rows * K2 * self.n_out) as f32 / norm))
    }
}
