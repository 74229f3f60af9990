//! Reference C4 filter transforms (SPEC §1) and their adjoints, written as scatters from the
//! formulas (the GPU kernels gather), plus the lifting and P4 convolutions they define.

use super::conv::{self, ConvDims};
use super::transform::rot_src;

/// `TW[o·4 + r, i] = rot90^r(W[o, i])`: (cout, cin, k, k) → (cout·4, cin, k, k).
pub fn lift_filter(w: &[f64], cout: usize, cin: usize, k: usize) -> Vec<f64> {
    let kk = k * k;
    let mut tw = vec![0.0; cout * 4 * cin * kk];
    for o in 0..cout {
        for r in 0..4 {
            for i in 0..cin {
                for a in 0..k {
                    for b in 0..k {
                        let (sa, sb) = rot_src(r, a, b, k);
                        tw[((o * 4 + r) * cin + i) * kk + a * k + b] =
                            w[(o * cin + i) * kk + sa * k + sb];
                    }
                }
            }
        }
    }
    tw
}

/// The adjoint of [`lift_filter`]: scatter-add each dTW entry to the W entry it came from.
pub fn lift_filter_adjoint(dtw: &[f64], cout: usize, cin: usize, k: usize) -> Vec<f64> {
    let kk = k * k;
    let mut dw = vec![0.0; cout * cin * kk];
    for o in 0..cout {
        for r in 0..4 {
            for i in 0..cin {
                for a in 0..k {
                    for b in 0..k {
                        let (sa, sb) = rot_src(r, a, b, k);
                        dw[(o * cin + i) * kk + sa * k + sb] +=
                            dtw[((o * 4 + r) * cin + i) * kk + a * k + b];
                    }
                }
            }
        }
    }
    dw
}

/// `TW[o·4 + r, i·4 + s] = rot90^r(W[o, i, (s − r) mod 4])`: (cout, cin, 4, k, k) → (cout·4, cin·4, k, k).
/// With `roll = false` the rotation axis is not rolled (`W[o, i, s]`): a deliberately wrong
/// transform that the equivariance tests must catch.
pub fn p4_filter_ex(w: &[f64], cout: usize, cin: usize, k: usize, roll: bool) -> Vec<f64> {
    let kk = k * k;
    let mut tw = vec![0.0; cout * 4 * cin * 4 * kk];
    for o in 0..cout {
        for r in 0..4 {
            for i in 0..cin {
                for s in 0..4 {
                    let t = if roll { (s + 4 - r) % 4 } else { s };
                    for a in 0..k {
                        for b in 0..k {
                            let (sa, sb) = rot_src(r, a, b, k);
                            tw[((o * 4 + r) * cin * 4 + i * 4 + s) * kk + a * k + b] =
                                w[((o * cin + i) * 4 + t) * kk + sa * k + sb];
                        }
                    }
                }
            }
        }
    }
    tw
}

/// The P4 filter transform of SPEC §1.
pub fn p4_filter(w: &[f64], cout: usize, cin: usize, k: usize) -> Vec<f64> {
    p4_filter_ex(w, cout, cin, k, true)
}

/// The adjoint of [`p4_filter`].
pub fn p4_filter_adjoint(dtw: &[f64], cout: usize, cin: usize, k: usize) -> Vec<f64> {
    let kk = k * k;
    let mut dw = vec![0.0; cout * cin * 4 * kk];
    for o in 0..cout {
        for r in 0..4 {
            for i in 0..cin {
                for s in 0..4 {
                    let t = (s + 4 - r) % 4;
                    for a in 0..k {
                        for b in 0..k {
                            let (sa, sb) = rot_src(r, a, b, k);
                            dw[((o * cin + i) * 4 + t) * kk + sa * k + sb] +=
                                dtw[((o * 4 + r) * cin * 4 + i * 4 + s) * kk + a * k + b];
                        }
                    }
                }
            }
        }
    }
    dw
}

fn expand_bias(b: &[f64]) -> Vec<f64> {
    b.iter().flat_map(|&v| [v; 4]).collect()
}

/// Lifting convolution: x (batch, cin, h, w), w (cout, cin, k, k) → (batch, cout, 4, h', w').
#[allow(clippy::too_many_arguments)]
pub fn lift_c4(
    x: &[f64],
    w: &[f64],
    bias: Option<&[f64]>,
    batch: usize,
    cin: usize,
    h: usize,
    wd: usize,
    cout: usize,
    k: usize,
    pad: usize,
) -> Vec<f64> {
    let tw = lift_filter(w, cout, cin, k);
    let b = bias.map(expand_bias);
    let d = ConvDims {
        batch,
        cin,
        h,
        w: wd,
        cout: cout * 4,
        k,
        pad,
    };
    conv::forward(x, &tw, b.as_deref(), d)
}

/// P4 convolution: x (batch, cin, 4, h, w), w (cout, cin, 4, k, k) → (batch, cout, 4, h', w').
#[allow(clippy::too_many_arguments)]
pub fn p4_conv(
    x: &[f64],
    w: &[f64],
    bias: Option<&[f64]>,
    batch: usize,
    cin: usize,
    h: usize,
    wd: usize,
    cout: usize,
    k: usize,
    pad: usize,
) -> Vec<f64> {
    let tw = p4_filter(w, cout, cin, k);
    let b = bias.map(expand_bias);
    let d = ConvDims {
        batch,
        cin: cin * 4,
        h,
        w: wd,
        cout: cout * 4,
        k,
        pad,
    };
    conv::forward(x, &tw, b.as_deref(), d)
}
