//! Reference cloned-operator pieces (f64): the coefficient map h(c) and the C4 code transforms.

/// `h(c) = flatten_{j,q}(c_j · M1[j, q]) @ M2` for one code c (k²), M1 (k² × m), M2 (k²·m × nb).
pub fn coefficients(c: &[f64], m1: &[f64], m2: &[f64], m: usize, nb: usize) -> Vec<f64> {
    let k2 = c.len();
    let mut h = vec![0.0; nb];
    for j in 0..k2 {
        for q in 0..m {
            let v = c[j] * m1[j * m + q];
            for b in 0..nb {
                h[b] += v * m2[(j * m + q) * nb + b];
            }
        }
    }
    h
}

/// `rot90(A)` of a k×k filter, numpy's counter-clockwise rotation: `rot90(A)[a, b] = A[b, k-1-a]`.
pub fn rot90(a: &[f64], k: usize) -> Vec<f64> {
    let mut out = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            out[i * k + j] = a[j * k + (k - 1 - i)];
        }
    }
    out
}

/// `rot90^r(A)`.
pub fn rot90_r(a: &[f64], k: usize, r: usize) -> Vec<f64> {
    let mut out = a.to_vec();
    for _ in 0..r % 4 {
        out = rot90(&out, k);
    }
    out
}

/// Valid cross-correlation of one d×d image with one k×k filter.
pub fn corr_valid(x: &[f64], d: usize, c: &[f64], k: usize) -> Vec<f64> {
    let o = d + 1 - k;
    let mut y = vec![0.0; o * o];
    for a in 0..o {
        for b in 0..o {
            let mut s = 0.0;
            for u in 0..k {
                for v in 0..k {
                    s += x[(a + u) * d + b + v] * c[u * k + v];
                }
            }
            y[a * o + b] = s;
        }
    }
    y
}
