//! Reference LayerNorm over the last axis (rows of `cols`), PyTorch's definition: biased variance,
//! `eps` inside the square root.

/// `y = (x − mean)/√(var + eps)·gamma + beta` per row.
pub fn layer_norm(x: &[f64], gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let cols = gamma.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let (mean, rstd) = moments(row, eps);
        for (j, v) in row.iter().enumerate() {
            y.push((v - mean) * rstd * gamma[j] + beta[j]);
        }
    }
    y
}

fn moments(row: &[f64], eps: f64) -> (f64, f64) {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// The backward for upstream `g`: (dx, dgamma, dbeta).
pub fn layer_norm_bwd(
    g: &[f64],
    x: &[f64],
    gamma: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let cols = gamma.len();
    let n = cols as f64;
    let mut dx = Vec::with_capacity(x.len());
    let mut dgamma = vec![0.0; cols];
    let mut dbeta = vec![0.0; cols];
    for (row, grow) in x.chunks(cols).zip(g.chunks(cols)) {
        let (mean, rstd) = moments(row, eps);
        let xh: Vec<f64> = row.iter().map(|v| (v - mean) * rstd).collect();
        let gh: Vec<f64> = grow.iter().zip(gamma).map(|(g, w)| g * w).collect();
        let mg = gh.iter().sum::<f64>() / n;
        let mgx = gh.iter().zip(&xh).map(|(a, b)| a * b).sum::<f64>() / n;
        for j in 0..cols {
            dx.push(rstd * (gh[j] - mg - xh[j] * mgx));
            dgamma[j] += grow[j] * xh[j];
            dbeta[j] += grow[j];
        }
    }
    (dx, dgamma, dbeta)
}
