//! Reference cloned-operator pieces (f64): the coefficient map h(c) and its outer product with M1
//! (`mix`, forward and backward), the C4 code transforms, the exact loss and its tap sums.

/// `mix`: `Hq[r, j·m + q] = c[r, j] · M1[j, q]` for codes c (rows × k2) and M1 (k2 × m), giving
/// (rows × k2·m): one product per entry.
pub fn mix(c: &[f64], m1: &[f64], k2: usize, m: usize) -> Vec<f64> {
    assert_eq!(m1.len(), k2 * m, "mix: M1 is not {k2} × {m}");
    assert_eq!(c.len() % k2, 0, "mix: codes are not rows of {k2}");
    let mut out = Vec::with_capacity(c.len() * m);
    for code in c.chunks(k2) {
        for (j, cj) in code.iter().enumerate() {
            out.extend(m1[j * m..(j + 1) * m].iter().map(|v| cj * v));
        }
    }
    out
}

/// The gradients of [`mix`] for the output gradient g (rows × k2·m): (dc, dM1) with
/// `dc[r, j] = Σ_q g[r, j·m + q] · M1[j, q]` (m-term sums, rows × k2) and
/// `dM1[j, q] = Σ_r g[r, j·m + q] · c[r, j]` (rows-term sums, k2 × m).
pub fn mix_backward(g: &[f64], c: &[f64], m1: &[f64], k2: usize, m: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(m1.len(), k2 * m, "mix_backward: M1 is not {k2} × {m}");
    assert_eq!(
        g.len(),
        c.len() * m,
        "mix_backward: g is not rows × {k2}·{m}"
    );
    let rows = c.len() / k2;
    let mut dc = vec![0.0; rows * k2];
    let mut dm1 = vec![0.0; k2 * m];
    for r in 0..rows {
        for j in 0..k2 {
            for q in 0..m {
                let gv = g[(r * k2 + j) * m + q];
                dc[r * k2 + j] += gv * m1[j * m + q];
                dm1[j * m + q] += gv * c[r * k2 + j];
            }
        }
    }
    (dc, dm1)
}

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

/// The true transformed codes of one code `c` (SPEC §1, §9), one 3×3 tap vector per (k[, s]):
/// Z2 (`out_planes` 1): c; the lifts (1 in, 4 or 8 out): g_k·c; P4 and p4m (4 or 8 in and out):
/// g_k·c_{src(k, s)}, with the reference's own D4 table ([`super::d4`]).
pub fn true_tap_codes(c: &[f64], in_planes: usize, out_planes: usize) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for k in 0..out_planes {
        for s in 0..in_planes {
            let t = if in_planes > 1 {
                super::d4::src(k, s)
            } else {
                0
            };
            out.push(super::d4::act(&c[t * 9..(t + 1) * 9], 3, k));
        }
    }
    out
}

/// The exact expected cloning loss (SPEC §3), straight from its definition: for every unit code
/// e_i and every (r[, s]), the clone's dense operator `Σ_b h(T_{rs} e_i)_b B_b` against the true
/// layer's (the 3×3 valid correlation with the transformed code), squared Frobenius distances
/// summed and divided by out_planes·n_out. Blocks (nb, n_out, n_in), M1 (9 × m), M2 (9·m × nb),
/// T (R·9 × code_len, rows (r, s, j)) or None for Z2.
#[allow(clippy::too_many_arguments)]
pub fn exact_clone_loss(
    in_planes: usize,
    out_planes: usize,
    d: usize,
    blocks: &[f64],
    nb: usize,
    m1: &[f64],
    m2: &[f64],
    m: usize,
    t: Option<&[f64]>,
) -> f64 {
    let o = d - 2;
    let (n_out, n_in) = (o * o, d * d);
    let code_len = 9 * in_planes;
    let mut total = 0.0;
    for i in 0..code_len {
        let mut unit = vec![0.0; code_len];
        unit[i] = 1.0;
        let truth = true_tap_codes(&unit, in_planes, out_planes);
        for (p, tap) in truth.iter().enumerate() {
            let tc: Vec<f64> = match t {
                None => unit.clone(),
                Some(t) => (0..9)
                    .map(|j| {
                        (0..code_len)
                            .map(|k| t[(p * 9 + j) * code_len + k] * unit[k])
                            .sum()
                    })
                    .collect(),
            };
            let h = coefficients(&tc, m1, m2, m, nb);
            let mut w: Vec<f64> = (0..n_out * n_in)
                .map(|e| (0..nb).map(|b| h[b] * blocks[b * n_out * n_in + e]).sum())
                .collect();
            for a in 0..o {
                for b in 0..o {
                    for u in 0..3 {
                        for v in 0..3 {
                            w[(a * o + b) * n_in + (a + u) * d + b + v] -= tap[u * 3 + v];
                        }
                    }
                }
            }
            total += w.iter().map(|x| x * x).sum::<f64>();
        }
    }
    total / (out_planes * n_out) as f64
}

/// The tap sums `B Sᵀ` of blocks (nb, n_out, n_in) for a k×k valid correlation on d×d inputs, with
/// the tap-selection matrices S built densely: (nb, k²).
pub fn taps(blocks: &[f64], nb: usize, k: usize, d: usize) -> Vec<f64> {
    let w = d + 1 - k;
    let (n_out, n_in) = (w * w, d * d);
    let mut out = vec![0.0; nb * k * k];
    for b in 0..nb {
        for j in 0..k * k {
            let s = shift(k, d, j);
            out[b * k * k + j] = (0..n_out * n_in)
                .map(|e| blocks[b * n_out * n_in + e] * s[e])
                .sum();
        }
    }
    out
}

/// `X S` for x (nb, k²): (nb, n_out, n_in).
pub fn taps_adj(x: &[f64], nb: usize, k: usize, d: usize) -> Vec<f64> {
    let w = d + 1 - k;
    let n = w * w * d * d;
    let mut out = vec![0.0; nb * n];
    for b in 0..nb {
        for j in 0..k * k {
            for (e, s) in shift(k, d, j).into_iter().enumerate() {
                out[b * n + e] += x[b * k * k + j] * s;
            }
        }
    }
    out
}

/// The 0/1 matrix (n_out × n_in) selecting tap j = ky·k + kx of every output.
fn shift(k: usize, d: usize, j: usize) -> Vec<f64> {
    let w = d + 1 - k;
    let mut s = vec![0.0; w * w * d * d];
    for a in 0..w {
        for c in 0..w {
            s[(a * w + c) * d * d + (a + j / k) * d + c + j % k] = 1.0;
        }
    }
    s
}

/// `B Bᵀ` (nb × nb) of B (nb × cols).
pub fn gram(b: &[f64], nb: usize) -> Vec<f64> {
    let cols = b.len() / nb;
    let mut k = vec![0.0; nb * nb];
    for r in 0..nb {
        for c in 0..nb {
            k[r * nb + c] = (0..cols).map(|j| b[r * cols + j] * b[c * cols + j]).sum();
        }
    }
    k
}

/// The gradient of [`gram`] for the output gradient H: `(H + Hᵀ) B`.
pub fn gram_backward(h: &[f64], b: &[f64], nb: usize) -> Vec<f64> {
    let cols = b.len() / nb;
    let mut out = vec![0.0; b.len()];
    for r in 0..nb {
        for c in 0..nb {
            let s = h[r * nb + c] + h[c * nb + r];
            for j in 0..cols {
                out[r * cols + j] += s * b[c * cols + j];
            }
        }
    }
    out
}
