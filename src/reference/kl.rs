//! Reference drift penalties (f64): the KL's naive form and δ form, with the gradient, and the
//! squared distance.

fn rows(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

fn softmax_row(x: &[f64]) -> Vec<f64> {
    let mx = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - mx).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

fn gather(x: &[f64], o: usize, n: usize, inner: usize, j: usize) -> Vec<f64> {
    (0..n).map(|i| x[(o * n + i) * inner + j]).collect()
}

/// Naive `mean(p_new (log p_new − log p_init))`: log-softmaxes subtracted directly.
pub fn kl_naive(w: &[f64], w0: &[f64], shape: &[usize], axis: usize) -> f64 {
    let (outer, n, inner) = rows(shape, axis);
    let mut s = 0.0;
    for o in 0..outer {
        for j in 0..inner {
            let a = gather(w, o, n, inner, j);
            let b = gather(w0, o, n, inner, j);
            let pa = softmax_row(&a);
            let pb = softmax_row(&b);
            for i in 0..n {
                s += pa[i] * (pa[i].ln() - pb[i].ln());
            }
        }
    }
    s / w.len() as f64
}

/// The δ form: exact for tiny δ = w − w0 (uses ln_1p / exp_m1), and its gradient w.r.t. w.
pub fn kl_delta(w: &[f64], w0: &[f64], shape: &[usize], axis: usize) -> (f64, Vec<f64>) {
    let (outer, n, inner) = rows(shape, axis);
    let mut total = 0.0;
    let mut grad = vec![0.0; w.len()];
    let nel = w.len() as f64;
    for o in 0..outer {
        for j in 0..inner {
            let b = gather(w0, o, n, inner, j);
            let p = softmax_row(&b);
            let d: Vec<f64> = (0..n)
                .map(|i| w[(o * n + i) * inner + j] - w0[(o * n + i) * inner + j])
                .collect();
            // log p_new − log p_init = δ_i − log Σ p e^δ
            let mu: f64 = p.iter().zip(&d).map(|(a, b)| a * b).sum();
            let l = mu
                + p.iter()
                    .zip(&d)
                    .map(|(a, b)| a * (b - mu).exp_m1())
                    .sum::<f64>()
                    .ln_1p();
            let mut kl = 0.0;
            let lr: Vec<f64> = d.iter().map(|di| di - l).collect();
            for i in 0..n {
                kl += p[i] * lr[i].exp() * lr[i];
            }
            total += kl;
            for i in 0..n {
                grad[(o * n + i) * inner + j] = p[i] * lr[i].exp() * (lr[i] - kl) / nel;
            }
        }
    }
    (total / nel, grad)
}

/// The squared distance `mean((w − w0)²)` over the elements, and its gradient `2 (w − w0) / n`.
pub fn l2(w: &[f64], w0: &[f64]) -> (f64, Vec<f64>) {
    let n = w.len().max(1) as f64;
    let d: Vec<f64> = w.iter().zip(w0).map(|(a, b)| a - b).collect();
    let value = d.iter().map(|v| v * v).sum::<f64>() / n;
    (value, d.iter().map(|v| 2.0 * v / n).collect())
}
