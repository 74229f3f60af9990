//! Small dense linear algebra in f64: the eigenvalues of a symmetric matrix (cyclic Jacobi) and
//! a Cholesky factor, for the clonability bound's 9×9 Gram matrices.

/// The eigenvalues of the symmetric n×n matrix `a` (row-major), in descending order, by cyclic
/// Jacobi rotations until the off-diagonal mass is below 1e-30 of the total (or 100 sweeps).
pub fn sym_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    assert_eq!(
        a.len(),
        n * n,
        "sym_eigenvalues: {} values for {n}×{n}",
        a.len()
    );
    let mut m = a.to_vec();
    let total: f64 = m.iter().map(|v| v * v).sum();
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum();
        if off <= 1e-30 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes m[p][q] (Golub & Van Loan, Algorithm 8.4.1).
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
    ev.sort_by(|x, y| y.total_cmp(x));
    ev
}

/// The lower Cholesky factor L (row-major) of a symmetric positive definite n×n matrix, `a = L Lᵀ`;
/// None when `a` is not positive definite.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
}
