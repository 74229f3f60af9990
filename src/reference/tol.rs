//! The error bounds a GPU result is held to against its f64 reference (DESIGN.md, "Numbers"):
//! derived from the arithmetic, one copy for the tests, the tuner and `symclone-gpu check`.

use super::rel_err;

/// One f32 rounding, relative: 2⁻²⁴.
pub const ULP: f64 = 1.0 / 16_777_216.0;

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Relative f32 error bound, norm-wise, for outputs that are K-term sums: rounding errors of a
/// K-term sum grow like √K·2⁻²⁴ relative; ×4 for the spread over many outputs, plus 2·2⁻²⁴ for
/// rounding the products and the result. No floor: a K of 1 gets 6 ulps.
pub fn sum_tol(k: usize) -> f64 {
    (4.0 * (k.max(1) as f64).sqrt() + 2.0) * ULP
}

/// The bound for `want`, whose entries are K-term sums, with `want_abs` the same sums over the
/// terms' absolute values. A sum's rounding error scales with Σ|terms|, not with |Σ terms|: where
/// terms cancel, the error relative to the result grows by ‖want_abs‖ / ‖want‖ (at least 1), so
/// the bound is [`sum_tol`]`(k)` times that condition number.
pub fn sum_bound(want: &[f64], want_abs: &[f64], k: usize) -> f64 {
    let cond = norm(want_abs) / norm(want).max(f64::MIN_POSITIVE);
    sum_tol(k) * cond.max(1.0)
}

/// `got`'s relative norm-wise error against `want` and the bound [`sum_bound`] gives it:
/// (error, bound); NaN or a length mismatch is an infinite error.
pub fn sum_error(got: &[f32], want: &[f64], want_abs: &[f64], k: usize) -> (f64, f64) {
    let tol = sum_bound(want, want_abs, k);
    if got.len() != want.len() || want.len() != want_abs.len() {
        return (f64::INFINITY, tol);
    }
    let e = rel_err(got, want);
    (if e.is_finite() { e } else { f64::INFINITY }, tol)
}

/// The error bound of the GPU's δ-form KL (shaders/kl.wgsl) against the f64 reference on the same
/// f32 values: (absolute bound on the value, relative norm-wise bound on the gradient).
/// - Each row's softmax p takes exps of w0 − max: Vulkan allows 3 + 2|x| ulps for exp, with |x| up
///   to the row's range; then an n-term sum and a division. Every later quantity (μ, e, y, L, the
///   row's KL, p_new) adds a product and an n-term sum: with 4 such steps, a relative error of
///   (4 + 2·range + 4n)·2⁻²⁴ per row, and sum_tol(rows) for the mean over rows.
/// - Where |e| ≥ 10⁻², expm1(e) − e is computed as exp(e) − 1 − e: exp's error near 1,
///   (3 + 2|e|) ulps, plus two subtractions, is absolute, not relative to e²/2; it enters the row's
///   KL three times (in y, in Σ p q and in expm1(e − L)).
pub fn kl_tol(w: &[f64], w0: &[f64], shape: &[usize], axis: usize, want: f64) -> (f64, f64) {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let (mut rel, mut cancel, mut e2) = (0.0f64, 0.0f64, 0.0f64);
    let mut cancel_rows = 0.0f64;
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * n + i) * inner + j;
            let row0: Vec<f64> = (0..n).map(|i| w0[at(i)]).collect();
            let mx = row0.iter().cloned().fold(f64::MIN, f64::max);
            let mn = row0.iter().cloned().fold(f64::MAX, f64::min);
            let z: f64 = row0.iter().map(|v| (v - mx).exp()).sum();
            let p: Vec<f64> = row0.iter().map(|v| (v - mx).exp() / z).collect();
            let d: Vec<f64> = (0..n).map(|i| w[at(i)] - w0[at(i)]).collect();
            let mu: f64 = p.iter().zip(&d).map(|(a, b)| a * b).sum();
            rel = rel.max((4.0 + 2.0 * (mx - mn) + 4.0 * n as f64) * ULP);
            let mut c = 0.0;
            for i in 0..n {
                let e = d[i] - mu;
                e2 += p[i] * e * e;
                if e.abs() >= 1e-2 {
                    c += p[i] * 3.0 * (5.0 + 2.0 * e.abs()) * ULP;
                }
            }
            cancel += c;
            cancel_rows = cancel_rows.max(c);
        }
    }
    let rows = outer * inner;
    let value = (rel + sum_tol(rows)) * want + cancel / w.len() as f64;
    // The gradient p_new (e − L − KL_row): the absolute errors of L and KL_row against e's size.
    let e_rms = (e2 / rows as f64).sqrt();
    (value, rel + cancel_rows / e_rms)
}

/// The sums of absolute values behind LayerNorm's outputs over rows of `cols` (the `want_abs` of
/// [`sum_bound`]), for input x, scale gamma, shift beta and upstream gradient g:
/// - forward: mean and variance are cols-term sums (error √cols·U relative to the row's scale);
///   x̂ inherits it, then the scale and shift add two roundings: |x̂·gamma| + |beta|, cols terms;
/// - dx = rstd·(ĝ − mean ĝ − x̂·mean(ĝx̂)), ĝ = g·gamma: cols-term sums of absolute size
///   rstd·(|ĝ| + mean|ĝ| + |x̂|·mean|ĝx̂|);
/// - dgamma and dbeta: rows-term sums of |g·x̂| and |g| (x̂ itself carries the forward's cols-term
///   error, so dgamma's bound is for rows + cols terms).
pub struct LayerNormAbs {
    pub y: Vec<f64>,
    pub dx: Vec<f64>,
    pub dgamma: Vec<f64>,
    pub dbeta: Vec<f64>,
}

/// [`LayerNormAbs`] of x (rows × cols, cols = gamma's length) with `eps` inside the square root.
pub fn layer_norm_abs(x: &[f64], gamma: &[f64], beta: &[f64], g: &[f64], eps: f64) -> LayerNormAbs {
    let cols = gamma.len();
    let n = cols as f64;
    let xh = super::norm::layer_norm(x, &vec![1.0; cols], &vec![0.0; cols], eps);
    let y = xh
        .iter()
        .enumerate()
        .map(|(i, v)| (v * gamma[i % cols]).abs() + beta[i % cols].abs())
        .collect();
    let mut dx = Vec::with_capacity(x.len());
    for (ri, row) in x.chunks(cols).enumerate() {
        let mean = row.iter().sum::<f64>() / n;
        let rstd = 1.0 / (row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n + eps).sqrt();
        let gh: Vec<f64> = (0..cols)
            .map(|j| (g[ri * cols + j] * gamma[j]).abs())
            .collect();
        let xr: Vec<f64> = (0..cols).map(|j| xh[ri * cols + j].abs()).collect();
        let mg = gh.iter().sum::<f64>() / n;
        let mgx = gh.iter().zip(&xr).map(|(a, b)| a * b).sum::<f64>() / n;
        for j in 0..cols {
            dx.push(rstd * (gh[j] + mg + xr[j] * mgx));
        }
    }
    let mut dgamma = vec![0.0; cols];
    let mut dbeta = vec![0.0; cols];
    for i in 0..x.len() {
        dgamma[i % cols] += (g[i] * xh[i]).abs();
        dbeta[i % cols] += g[i].abs();
    }
    LayerNormAbs {
        y,
        dx,
        dgamma,
        dbeta,
    }
}

/// The bound on standard normal draws made from uniform ones by Box–Muller on the GPU: Vulkan lets
/// sin and cos err by 2⁻¹¹ absolute (log and sqrt far less), and each draw is rad·cos or rad·sin
/// with E[rad²] = 2, so the error's norm is at most 2⁻¹¹·√2 of the draws' norm.
pub fn randn_tol() -> f64 {
    2f64.powi(-11) * 2f64.sqrt()
}
