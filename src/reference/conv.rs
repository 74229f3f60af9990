//! Reference 2-D convolution (cross-correlation, stride 1, zero padding) and its gradients.

/// The sizes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub pad: usize,
}

impl From<(usize, usize, usize, usize, usize, usize, usize)> for ConvDims {
    /// `(batch, cin, h, w, cout, k, pad)`: the order the case tables list them in.
    fn from(
        (batch, cin, h, w, cout, k, pad): (usize, usize, usize, usize, usize, usize, usize),
    ) -> Self {
        ConvDims {
            batch,
            cin,
            h,
            w,
            cout,
            k,
            pad,
        }
    }
}

impl ConvDims {
    /// Output height.
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }
    /// Output width.
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }
    /// Output shape (B, Cout, Ho, Wo).
    pub fn out_shape(&self) -> Vec<usize> {
        vec![self.batch, self.cout, self.ho(), self.wo()]
    }
    /// Multiply-adds of the forward pass, times two.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.cout * self.ho() * self.wo() * self.cin * self.k * self.k) as f64
    }
}

fn at(x: &[f64], d: &ConvDims, b: usize, i: usize, y: isize, xx: isize) -> f64 {
    if y < 0 || xx < 0 || y >= d.h as isize || xx >= d.w as isize {
        0.0
    } else {
        x[((b * d.cin + i) * d.h + y as usize) * d.w + xx as usize]
    }
}

/// `y[b, o, oy, ox] = bias[o] + Σ_{i,ky,kx} x[b, i, oy + ky − p, ox + kx − p] · w[o, i, ky, kx]`.
pub fn forward(x: &[f64], w: &[f64], bias: Option<&[f64]>, d: ConvDims) -> Vec<f64> {
    let (ho, wo, k, p) = (d.ho(), d.wo(), d.k, d.pad as isize);
    let mut out = vec![0.0; d.batch * d.cout * ho * wo];
    for b in 0..d.batch {
        for o in 0..d.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut s = bias.map_or(0.0, |bi| bi[o]);
                    for i in 0..d.cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                s +=
                                    at(x, &d, b, i, (oy + ky) as isize - p, (ox + kx) as isize - p)
                                        * w[((o * d.cin + i) * k + ky) * k + kx];
                            }
                        }
                    }
                    out[((b * d.cout + o) * ho + oy) * wo + ox] = s;
                }
            }
        }
    }
    out
}

/// Gradients of `Σ g ⊙ y` w.r.t. x, w and the bias.
pub fn backward(x: &[f64], w: &[f64], g: &[f64], d: ConvDims) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (ho, wo, k, p) = (d.ho(), d.wo(), d.k, d.pad as isize);
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; d.cout];
    for b in 0..d.batch {
        for o in 0..d.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let gv = g[((b * d.cout + o) * ho + oy) * wo + ox];
                    db[o] += gv;
                    for i in 0..d.cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (y, xx) = ((oy + ky) as isize - p, (ox + kx) as isize - p);
                                if y < 0 || xx < 0 || y >= d.h as isize || xx >= d.w as isize {
                                    continue;
                                }
                                let xi = ((b * d.cin + i) * d.h + y as usize) * d.w + xx as usize;
                                let wi = ((o * d.cin + i) * k + ky) * k + kx;
                                dx[xi] += gv * w[wi];
                                dw[wi] += gv * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw, db)
}
