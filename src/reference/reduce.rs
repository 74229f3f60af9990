//! Reference reductions.

/// `Σ` over `axis` of x with shape `shape`.
pub fn sum_axis(x: &[f64], shape: &[usize], axis: usize) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = vec![0.0; outer * inner];
    for o in 0..outer {
        for k in 0..n {
            for j in 0..inner {
                out[o * inner + j] += x[(o * n + k) * inner + j];
            }
        }
    }
    out
}

/// The backward of `sum_axis`: repeat g along the axis.
pub fn broadcast_axis(g: &[f64], shape: &[usize], axis: usize) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = vec![0.0; outer * n * inner];
    for o in 0..outer {
        for k in 0..n {
            for j in 0..inner {
                out[(o * n + k) * inner + j] = g[o * inner + j];
            }
        }
    }
    out
}

pub fn sum(x: &[f64]) -> f64 {
    x.iter().sum()
}
pub fn sumsq(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// The sum of `splits` equal parts of `x`: partial sums over a leading axis, as the
/// weight-gradient kernels leave them.
pub fn sum_splits(x: &[f64], splits: usize) -> Vec<f64> {
    let n = x.len() / splits.max(1);
    (0..n)
        .map(|i| (0..splits).map(|s| x[s * n + i]).sum())
        .collect()
}
