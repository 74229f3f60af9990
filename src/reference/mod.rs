//! CPU references for every kernel: plain loops in f64, obviously right, used by the tests (and,
//! through the benchmark's threaded baselines, as the ground truth for agreement checks).

pub mod cloned;
pub mod conv;
pub mod d4;
pub mod data;
pub mod elementwise;
pub mod gconv;
pub mod kl;
pub mod layout;
pub mod linalg;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod tol;
pub mod transform;

/// `‖a − b‖ / ‖b‖` (or `‖a − b‖` when b is zero).
pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_err: lengths differ");
    let mut num = 0.0;
    let mut den = 0.0;
    for (x, y) in a.iter().zip(b) {
        num += (*x as f64 - y).powi(2);
        den += y * y;
    }
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// `‖a − b‖ / ‖b‖` for two f64 slices.
pub fn rel_err64(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_err64: lengths differ");
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// Whether `got` agrees with the f64 `want`, whose entries are `k`-term sums (`want_abs`: the
/// same sums over the terms' absolute values), within the rounding of f32 arithmetic
/// ([`tol::sum_error`]).
pub fn sum_agrees(got: &[f32], want: &[f64], want_abs: &[f64], k: usize) -> bool {
    let (e, tol) = tol::sum_error(got, want, want_abs, k);
    e <= tol
}

/// Widen to f64.
pub fn to64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Central finite differences of a scalar function `f` at `x` with step `h`.
pub fn finite_diff(x: &[f64], h: f64, mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = xp[i];
            xp[i] = orig + h;
            let fp = f(&xp);
            xp[i] = orig - h;
            let fm = f(&xp);
            xp[i] = orig;
            (fp - fm) / (2.0 * h)
        })
        .collect()
}
