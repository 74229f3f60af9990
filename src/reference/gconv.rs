//! Reference group filter transforms for C4 (SPEC §1) and D4 (SPEC §9) and their adjoints, written
//! as scatters from the formulas (the GPU kernels gather), plus the lifting and group convolutions
//! they define. n is the group's order (4 for C4, 8 for D4); the elements and their action are
//! the reference's own ([`super::d4`]).

use super::conv::{self, ConvDims};
use super::d4::{act, inv, src};

/// `TW[o·n + k, i] = g_k·W[o, i]`: (cout, cin, k, k) → (cout·n, cin, k, k).
pub fn lift_filter(w: &[f64], cout: usize, cin: usize, k: usize, n: usize) -> Vec<f64> {
    let kk = k * k;
    let mut tw = Vec::with_capacity(cout * n * cin * kk);
    for o in 0..cout {
        for g in 0..n {
            tw.extend(act(&w[o * cin * kk..][..cin * kk], k, g));
        }
    }
    tw
}

/// The adjoint of [`lift_filter`]: each dTW plane taken back by `g_k⁻¹` (a permutation's adjoint
/// is its inverse) and added to the W plane it came from.
pub fn lift_filter_adjoint(dtw: &[f64], cout: usize, cin: usize, k: usize, n: usize) -> Vec<f64> {
    let kk = k * k;
    let mut dw = vec![0.0; cout * cin * kk];
    for o in 0..cout {
        for g in 0..n {
            let back = act(&dtw[(o * n + g) * cin * kk..][..cin * kk], k, inv(g));
            for (d, v) in dw[o * cin * kk..][..cin * kk].iter_mut().zip(back) {
                *d += v;
            }
        }
    }
    dw
}

/// `TW[o·n + k, i·n + s] = g_k·W[o, i, table(k, s)]`: (cout, cin, n, k, k) → (cout·n, cin·n, k, k),
/// with `table` SPEC's `src` ([`group_filter`]) or, for the negative controls of the equivariance
/// tests, a deliberately wrong one.
pub fn group_filter_with(
    w: &[f64],
    cout: usize,
    cin: usize,
    k: usize,
    n: usize,
    table: impl Fn(usize, usize) -> usize,
) -> Vec<f64> {
    let kk = k * k;
    let mut tw = Vec::with_capacity(cout * n * cin * n * kk);
    for o in 0..cout {
        for g in 0..n {
            for i in 0..cin {
                for s in 0..n {
                    let t = table(g, s);
                    tw.extend(act(&w[((o * cin + i) * n + t) * kk..][..kk], k, g));
                }
            }
        }
    }
    tw
}

/// The group filter transform of SPEC §1 (C4) and §9 (D4).
pub fn group_filter(w: &[f64], cout: usize, cin: usize, k: usize, n: usize) -> Vec<f64> {
    group_filter_with(w, cout, cin, k, n, src)
}

/// The adjoint of [`group_filter`].
pub fn group_filter_adjoint(dtw: &[f64], cout: usize, cin: usize, k: usize, n: usize) -> Vec<f64> {
    let kk = k * k;
    let mut dw = vec![0.0; cout * cin * n * kk];
    for o in 0..cout {
        for g in 0..n {
            for i in 0..cin {
                for s in 0..n {
                    let at = ((o * n + g) * cin * n + i * n + s) * kk;
                    let back = act(&dtw[at..][..kk], k, inv(g));
                    let to = ((o * cin + i) * n + src(g, s)) * kk;
                    for (d, v) in dw[to..][..kk].iter_mut().zip(back) {
                        *d += v;
                    }
                }
            }
        }
    }
    dw
}

/// `bias[o]` repeated over the orientations: channel o·n + k.
pub fn expand_bias(b: &[f64], n: usize) -> Vec<f64> {
    b.iter().flat_map(|&v| std::iter::repeat_n(v, n)).collect()
}

/// Lifting convolution: x (batch, cin, h, w), w (cout, cin, k, k) → (batch, cout, n, h', w').
#[allow(clippy::too_many_arguments)]
pub fn lift_conv(
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
    n: usize,
) -> Vec<f64> {
    let tw = lift_filter(w, cout, cin, k, n);
    let b = bias.map(|b| expand_bias(b, n));
    let d = ConvDims {
        batch,
        cin,
        h,
        w: wd,
        cout: cout * n,
        k,
        pad,
    };
    conv::forward(x, &tw, b.as_deref(), d)
}

/// Group convolution: x (batch, cin, n, h, w), w (cout, cin, n, k, k) → (batch, cout, n, h', w').
#[allow(clippy::too_many_arguments)]
pub fn group_conv(
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
    n: usize,
) -> Vec<f64> {
    let tw = group_filter(w, cout, cin, k, n);
    let b = bias.map(|b| expand_bias(b, n));
    let d = ConvDims {
        batch,
        cin: cin * n,
        h,
        w: wd,
        cout: cout * n,
        k,
        pad,
    };
    conv::forward(x, &tw, b.as_deref(), d)
}
