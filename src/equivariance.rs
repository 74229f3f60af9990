//! Equivariance as a measurement: `‖Φ(g·x) − g·Φ(x)‖ / ‖g·Φ(x)‖`, averaged over the elements of a
//! group, for any map Φ from a tensor to a tensor (a layer, a stack, a cloned layer).
//!
//! How a group element acts depends on the rank of the tensor it acts on:
//! - C4 on P4 maps (rank 5, (B, C, 4, n, n)): rotate space and roll the rotation axis
//!   (`(g·y)[.., r] = rot90(y[.., (r − 1) mod 4])`, SPEC §1); D4 likewise on p4m maps
//!   (B, C, 8, n, n): `(g_k·y)[.., s] = g_k·(y[.., src(k, s)])` (SPEC §9);
//! - C4 and D4 on Z2 maps (rank 3 or 4, (…, n, n)): `g_k·A = flip_rows^m(rot90^r(A))`, k = 4m + r;
//! - on rank 1 and 2 tensors (e.g. (B, C) pooled features) trivially: the check becomes invariance;
//! - translations by (dy, dx) on Z2 maps (…, H, W): shift with zero fill; only the interior is
//!   compared (pixels q with q and q − (dy, dx) inside `[margin, size − margin)` of the output),
//!   since zero padding and the zero fill break the law at the border. A valid (unpadded)
//!   convolution needs margin 0; a convolution padded by p needs margin p (per layer, summed).
//!
//! The transforms run on the GPU (`ops::transform`); the norms are summed on the host in f64.

use crate::ops::transform;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The group whose action is checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Group {
    /// The rotations by r·90°, r = 1, 2, 3 (r = 0 is trivially exact).
    C4,
    /// The rotations and reflections of D4, elements k = 1..7 (SPEC §9).
    D4,
    /// Integer translations by each (dy, dx) in `shifts`, compared on the interior. A shift that
    /// leaves no interior of a small output to compare is skipped (an error when every one does).
    Translations {
        shifts: Vec<(i64, i64)>,
        margin: usize,
    },
}

/// A map whose equivariance is measured.
pub type Map<'a> = &'a dyn Fn(&Tensor) -> Result<Tensor>;

/// The C4 element `g^r` acting on a tensor of any supported rank (see the module docs).
pub fn c4_act_any(x: &Tensor, r: usize) -> Result<Tensor> {
    group_act_any(x, r % 4)
}

/// The D4 element `g_k` (k ∈ 0..8; C4 for k < 4) acting on a tensor of any supported rank (see the
/// module docs): P4 maps take the rotations, p4m maps every element.
pub fn group_act_any(x: &Tensor, k: usize) -> Result<Tensor> {
    let s = x.shape();
    match s.len() {
        1 | 2 => Ok(x.clone()),
        3 | 4 => transform::act(x, k),
        5 if s[2] == 4 && k < 4 => transform::group_act(x, k, crate::group::Group::C4),
        5 if s[2] == 8 => transform::group_act(x, k, crate::group::Group::D4),
        _ => Err(Error::shape(
            "equivariance",
            format!("no action of g_{k} on a tensor of shape {s:?} (expected (B, C), (B, C, n, n), (B, C, 4, n, n) for rotations or (B, C, 8, n, n))"),
        )),
    }
}

/// The relative error for each group element (r = 1, 2, 3 for C4; k = 1..7 for D4; one per shift
/// for translations, of the shifts that leave part of the output to compare).
pub fn equivariance_errors(phi: Map<'_>, x: &Tensor, group: &Group) -> Result<Vec<f64>> {
    let y = phi(x)?;
    match group {
        Group::C4 | Group::D4 => (1..if *group == Group::C4 { 4 } else { 8 })
            .map(|k| {
                let lhs = phi(&group_act_any(x, k)?)?;
                let rhs = group_act_any(&y, k)?;
                if lhs.shape() != rhs.shape() {
                    return Err(Error::shape(
                        "equivariance",
                        format!("Φ(g·x) {:?} vs g·Φ(x) {:?}", lhs.shape(), rhs.shape()),
                    ));
                }
                Ok(rel(&lhs.to_vec()?, &rhs.to_vec()?, None))
            })
            .collect(),
        Group::Translations { shifts, margin } => {
            if x.rank() < 2 || y.rank() < 2 {
                return Err(Error::shape(
                    "equivariance",
                    format!(
                        "translations act on maps (…, H, W): input {:?}, output {:?}",
                        x.shape(),
                        y.shape()
                    ),
                ));
            }
            let ys = y.shape();
            let (ho, wo) = (ys[ys.len() - 2], ys[ys.len() - 1]);
            let m = *margin as i64;
            let inside = |q: i64, d: i64, n: usize| {
                let hi = n as i64 - m;
                q >= m && q < hi && q - d >= m && q - d < hi
            };
            let masked: Vec<((i64, i64), Vec<bool>)> = shifts
                .iter()
                .map(|&(dy, dx)| {
                    let mask = (0..ho * wo)
                        .map(|q| inside((q / wo) as i64, dy, ho) && inside((q % wo) as i64, dx, wo))
                        .collect();
                    ((dy, dx), mask)
                })
                .filter(|(_, mask): &(_, Vec<bool>)| mask.iter().any(|&b| b))
                .collect();
            if masked.is_empty() {
                return Err(Error::invalid(format!(
                    "no shift of {shifts:?} with margin {margin} leaves an interior of the {ho}×{wo} output to compare"
                )));
            }
            masked
                .iter()
                .map(|((dy, dx), mask)| {
                    let lhs = phi(&transform::translate(x, *dy, *dx)?)?;
                    let rhs = transform::translate(&y, *dy, *dx)?;
                    if lhs.shape() != rhs.shape() {
                        return Err(Error::shape(
                            "equivariance",
                            format!("Φ(g·x) {:?} vs g·Φ(x) {:?}", lhs.shape(), rhs.shape()),
                        ));
                    }
                    Ok(rel(&lhs.to_vec()?, &rhs.to_vec()?, Some(mask)))
                })
                .collect()
        }
    }
}

/// The mean over the group of [`equivariance_errors`].
pub fn equivariance_error(phi: Map<'_>, x: &Tensor, group: &Group) -> Result<f64> {
    let e = equivariance_errors(phi, x, group)?;
    Ok(e.iter().sum::<f64>() / e.len().max(1) as f64)
}

/// `‖a − b‖ / ‖b‖` over the positions the plane mask keeps (all when None); `‖a − b‖` when b is 0.
pub(crate) fn rel(a: &[f32], b: &[f32], mask: Option<&[bool]>) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        if let Some(m) = mask {
            if !m[i % m.len()] {
                continue;
            }
        }
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}
