//! Reference matrix product and its gradients.

/// Shapes of `op(A)·op(B)`: batch sizes (0 = a shared rank-2 operand), M, K, N, transposes.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub za: usize,
    pub zb: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub ta: bool,
    pub tb: bool,
}

impl Dims {
    /// The stored shape of A: (M, K) or (K, M) when transposed, with the batch in front if any.
    pub fn a_shape(&self) -> Vec<usize> {
        let (r, c) = if self.ta {
            (self.k, self.m)
        } else {
            (self.m, self.k)
        };
        if self.za == 0 {
            vec![r, c]
        } else {
            vec![self.za, r, c]
        }
    }
    /// The stored shape of B: (K, N) or (N, K) when transposed, with the batch in front if any.
    pub fn b_shape(&self) -> Vec<usize> {
        let (r, c) = if self.tb {
            (self.n, self.k)
        } else {
            (self.k, self.n)
        };
        if self.zb == 0 {
            vec![r, c]
        } else {
            vec![self.zb, r, c]
        }
    }
    pub fn batch(&self) -> usize {
        self.za.max(self.zb).max(1)
    }
    fn a_at(&self, a: &[f64], z: usize, m: usize, k: usize) -> f64 {
        let base = if self.za == 0 { 0 } else { z * self.m * self.k };
        a[base
            + if self.ta {
                k * self.m + m
            } else {
                m * self.k + k
            }]
    }
    fn b_at(&self, b: &[f64], z: usize, k: usize, n: usize) -> f64 {
        let base = if self.zb == 0 { 0 } else { z * self.k * self.n };
        b[base
            + if self.tb {
                n * self.k + k
            } else {
                k * self.n + n
            }]
    }
    fn a_index(&self, z: usize, m: usize, k: usize) -> usize {
        let base = if self.za == 0 { 0 } else { z * self.m * self.k };
        base + if self.ta {
            k * self.m + m
        } else {
            m * self.k + k
        }
    }
    fn b_index(&self, z: usize, k: usize, n: usize) -> usize {
        let base = if self.zb == 0 { 0 } else { z * self.k * self.n };
        base + if self.tb {
            n * self.k + k
        } else {
            k * self.n + n
        }
    }
}

/// `C = op(A)·op(B) (+ bias) (ReLU)`, C of shape (batch, M, N).
pub fn forward(a: &[f64], b: &[f64], d: Dims, bias: Option<&[f64]>, relu: bool) -> Vec<f64> {
    let mut c = vec![0.0; d.batch() * d.m * d.n];
    for z in 0..d.batch() {
        for i in 0..d.m {
            for j in 0..d.n {
                let mut s = 0.0;
                for k in 0..d.k {
                    s += d.a_at(a, z, i, k) * d.b_at(b, z, k, j);
                }
                if let Some(bias) = bias {
                    s += bias[j];
                }
                if relu {
                    s = s.max(0.0);
                }
                c[(z * d.m + i) * d.n + j] = s;
            }
        }
    }
    c
}

/// Gradients of `Σ g ⊙ C` w.r.t. A, B and the bias, where `g` is already masked by the ReLU.
/// A shared (rank-2) operand gets the sum over the batch.
pub fn backward(a: &[f64], b: &[f64], d: Dims, g: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut da = vec![0.0; a.len()];
    let mut db = vec![0.0; b.len()];
    let mut dbias = vec![0.0; d.n];
    for z in 0..d.batch() {
        for i in 0..d.m {
            for j in 0..d.n {
                let gij = g[(z * d.m + i) * d.n + j];
                dbias[j] += gij;
                for k in 0..d.k {
                    da[d.a_index(z, i, k)] += gij * d.b_at(b, z, k, j);
                    db[d.b_index(z, k, j)] += gij * d.a_at(a, z, i, k);
                }
            }
        }
    }
    (da, db, dbias)
}

/// `x` rounded to IEEE binary16 (round to nearest, ties to even) and back: what a constant
/// operand stored in half precision holds. Overflow goes to ±∞ and underflow through the
/// subnormals to ±0, as the format does.
pub fn round_half(x: f64) -> f64 {
    half::f16::from_f64(x).to_f64()
}
