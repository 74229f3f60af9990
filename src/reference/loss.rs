//! Reference losses and metrics.

/// Mean cross-entropy of logits (rows × classes) and its gradient w.r.t. the logits.
pub fn cross_entropy(logits: &[f64], labels: &[u32], classes: usize) -> (f64, Vec<f64>) {
    let rows = labels.len();
    let mut loss = 0.0;
    let mut grad = vec![0.0; logits.len()];
    for r in 0..rows {
        let x = &logits[r * classes..(r + 1) * classes];
        let mx = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + x.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        let y = labels[r] as usize;
        loss += lse - x[y];
        for j in 0..classes {
            grad[r * classes + j] =
                ((x[j] - lse).exp() - if j == y { 1.0 } else { 0.0 }) / rows as f64;
        }
    }
    (loss / rows as f64, grad)
}

/// Rows whose first arg-max equals the label.
pub fn correct_count(logits: &[f64], labels: &[u32], classes: usize) -> usize {
    labels
        .iter()
        .enumerate()
        .filter(|(r, &y)| {
            let x = &logits[r * classes..(r + 1) * classes];
            let mut best = 0;
            for j in 1..classes {
                if x[j] > x[best] {
                    best = j;
                }
            }
            best == y as usize
        })
        .count()
}

/// `mean((a − b)²)` and its gradient w.r.t. a.
pub fn mse(a: &[f64], b: &[f64]) -> (f64, Vec<f64>) {
    let n = a.len() as f64;
    let loss = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / n;
    let grad = a.iter().zip(b).map(|(x, y)| 2.0 * (x - y) / n).collect();
    (loss, grad)
}
