//! Running one case on one device: its inputs from its seed, the kernels, the CPU reference and
//! the comparison of every output within its derived bound (`reference::tol`).

use crate::gpu::Gpu;
use crate::reference::{self as r, to64, tol};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::Result;
use serde::Serialize;
use std::sync::Arc;

/// One output of a case against its reference: the relative norm-wise error and its bound.
#[derive(Clone, Debug, Serialize)]
pub struct Compared {
    pub output: String,
    pub err: f64,
    pub tol: f64,
    /// Where the bound comes from: `sums of K terms`, `exact`, or the bound a test states.
    pub bound: String,
}

impl Compared {
    pub fn passed(&self) -> bool {
        self.err <= self.tol
    }
}

/// What a case's run collects.
pub(super) struct Out<'a> {
    pub(super) list: Vec<Compared>,
    /// Outputs whose name contains this text get a perturbed reference (the test hook).
    pub(super) perturb: Option<&'a str>,
    /// When kept (an export): each output's values and the reference it was compared with, in
    /// the order of `list`.
    pub(super) kept: Option<Vec<Kept>>,
}

/// One output's values as read back, and its reference.
pub(super) struct Kept {
    pub(super) got: Vec<f32>,
    pub(super) want: Vec<f64>,
}

pub(super) fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

impl Out<'_> {
    fn want<'w>(&self, output: &str, want: &'w [f64]) -> std::borrow::Cow<'w, [f64]> {
        match self.perturb {
            Some(p) if output.contains(p) && !want.is_empty() => {
                let mut w = want.to_vec();
                w[0] += 1.0 + w[0].abs();
                std::borrow::Cow::Owned(w)
            }
            _ => std::borrow::Cow::Borrowed(want),
        }
    }

    fn push(&mut self, output: String, got: &[f32], want: &[f64], tol: f64, bound: String) {
        let want = self.want(&output, want);
        let err = if got.len() != want.len() {
            f64::INFINITY
        } else {
            let e = r::rel_err(got, &want);
            if e.is_nan() {
                f64::INFINITY
            } else {
                e
            }
        };
        if let Some(k) = &mut self.kept {
            k.push(Kept {
                got: got.to_vec(),
                want: want.to_vec(),
            });
        }
        self.list.push(Compared {
            output,
            err,
            tol,
            bound,
        });
    }

    /// Outputs that are K-term sums (`want_abs`: the sums over the terms' absolute values).
    pub(super) fn sums(
        &mut self,
        output: &str,
        got: &Tensor,
        want: &[f64],
        want_abs: &[f64],
        k: usize,
    ) -> Result<()> {
        let tol = tol::sum_bound(want, want_abs, k);
        self.push(
            output.into(),
            &got.to_vec()?,
            want,
            tol,
            format!("sums of {k} terms"),
        );
        Ok(())
    }

    /// Outputs that are copies, permutations, maxima or other exact operations.
    pub(super) fn exact(&mut self, output: &str, got: &Tensor, want: &[f64]) -> Result<()> {
        self.push(output.into(), &got.to_vec()?, want, 0.0, "exact".into());
        Ok(())
    }

    /// Outputs held to a bound given with its reason.
    pub(super) fn within(&mut self, output: &str, got: &[f32], want: &[f64], tol: f64, why: &str) {
        self.push(output.into(), got, want, tol, why.into());
    }
}

/// Random normal values of `shape` on the device, and their f64 copy.
pub(super) fn up(g: &Arc<Gpu>, shape: &[usize], rg: &mut Rng) -> Result<(Tensor, Vec<f64>)> {
    let v = rg.normal_vec(shape.iter().product());
    Ok((Tensor::from_slice(g, shape, &v)?, to64(&v)))
}

/// The bound the tests state for ops with transcendental functions or many steps (softmax, GELU,
/// the optimisers' square roots), which are not yet derived term by term.
pub(super) const STATED: f64 = 1e-5;
pub(super) const STATED_WHY: &str = "1e-5 as tests/kernels.rs states it (not derived)";
