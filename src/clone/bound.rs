//! The clonability bound (SPEC §3, **[ours]**): the lowest relative MSE any clone with `nb` shared
//! blocks can reach against a linear teacher, computed numerically.
//!
//! Which operators must the blocks span? A clone's operator for code index i at output rotation r
//! (and, for P4, input rotation s) is `Σ_b A[(i, r, s), b] B_b`: the per-(r, s) transforms and the
//! mixing are free, but **one block set is shared by every (r, s) and every code**. So the blocks
//! must span the set of the teacher's operators `O_(i, r, s)` taken one by one — not the operator
//! stacked over (r, s), which would count the 4·9 codes of a P4 layer as 36 independent directions
//! (a floor of (36 − nb)/36) where they are only 9 rotated taps. For the expected loss (isotropic
//! Gaussian codes and inputs) the best nb-dimensional span leaves, by Eckart–Young,
//!
//! ```text
//! bound = Σ_{k > nb} λ_k / Σ_k λ_k,   λ the eigenvalues of the Gram matrix ⟨O_a, O_b⟩_F.
//! ```
//!
//! Every O is a combination of the tap matrices, `O_a = Σ_j E[a, j] S_j`, so the Gram matrix is
//! `E Ks Eᵀ` with `Ks = S Sᵀ` (9 × 9), and its nonzero eigenvalues are those of the 9 × 9 matrix
//! `Lᵀ (Eᵀ E) L` for `Ks = L Lᵀ`: the bound costs microseconds at any d. For 3×3 taps the
//! operators are orthogonal with equal norms and every (r, s) uses each tap equally often, so the
//! spectrum is flat and the bound is (9 − nb)/9: 2/9 at nb = 7, 1/9 at nb = 8, 0 from 9 on. The same
//! computation serves teachers with a smaller code space (radial kernels: fewer directions in E).

use super::exact::unit_code_taps;
use super::operator::{OperatorKind, K};
use crate::reference::linalg::{cholesky, sym_eigenvalues};
use crate::{Error, Result};

const K2: usize = K * K;

/// `Ks = S Sᵀ` of the 9 tap matrices of a valid 3×3 correlation on d×d inputs, from their
/// supports: S_j has a 1 at (output (a, b), input (a + u, b + v)) for tap j = (u, v).
pub fn tap_gram(d: usize) -> Vec<f64> {
    let o = d + 1 - K;
    let col = |j: usize, a: usize, b: usize| (a + j / K) * d + b + j % K;
    let mut ks = vec![0.0; K2 * K2];
    for j in 0..K2 {
        for k in 0..K2 {
            let mut n = 0usize;
            for a in 0..o {
                for b in 0..o {
                    n += usize::from(col(j, a, b) == col(k, a, b));
                }
            }
            ks[j * K2 + k] = n as f64;
        }
    }
    ks
}

/// The eigenvalues (descending) of the Gram matrix of the operators `O_a = Σ_j e[a, j] S_j` for
/// tap coefficients `e` (rows × 9) and `Ks = S Sᵀ` (9 × 9, positive definite).
pub fn operator_spectrum(e: &[f64], ks: &[f64]) -> Result<Vec<f64>> {
    let rows = e.len() / K2;
    let l = cholesky(ks, K2)
        .ok_or_else(|| Error::invalid("the tap matrices' Gram matrix is not positive definite"))?;
    let mut ete = vec![0.0; K2 * K2];
    for r in 0..rows {
        for j in 0..K2 {
            for k in 0..K2 {
                ete[j * K2 + k] += e[r * K2 + j] * e[r * K2 + k];
            }
        }
    }
    // Lᵀ (Eᵀ E) L
    let mut m = vec![0.0; K2 * K2];
    for p in 0..K2 {
        for q in 0..K2 {
            let mut s = 0.0;
            for j in 0..K2 {
                for k in 0..K2 {
                    s += l[j * K2 + p] * ete[j * K2 + k] * l[k * K2 + q];
                }
            }
            m[p * K2 + q] = s;
        }
    }
    Ok(sym_eigenvalues(&m, K2))
}

/// The share of a spectrum's mass outside its `nb` largest eigenvalues (negative rounding
/// residues count as 0).
pub fn discarded_share(spectrum: &[f64], nb: usize) -> f64 {
    let pos = |v: &f64| v.max(0.0);
    let total: f64 = spectrum.iter().map(pos).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let share = spectrum.iter().skip(nb).map(pos).sum::<f64>() / total;
    if share > 0.0 {
        share
    } else {
        0.0 // not −0.0, the sum of nothing
    }
}

/// The clonability bound of the true `kind` layer on d×d inputs for a clone with `nb` blocks.
pub fn clonability_bound(kind: OperatorKind, d: usize, nb: usize) -> Result<f64> {
    if !(K..=super::operator::MAX_SIDE).contains(&d) {
        return Err(Error::invalid(format!(
            "the clonability bound of a {} layer needs d between {K} and {}, got {d}",
            kind.name(),
            super::operator::MAX_SIDE
        )));
    }
    let e: Vec<f64> = unit_code_taps(kind).iter().map(|&v| v as f64).collect();
    let spectrum = operator_spectrum(&e, &tap_gram(d))?;
    Ok(discarded_share(&spectrum, nb))
}
