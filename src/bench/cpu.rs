//! Honest CPU baselines for the benchmark: a well-kept threaded GEMM (matrixmultiply, as ndarray
//! uses) for products.

/// `op(A)·op(B)` for square-or-not row-major f32 matrices, (m × k)·(k × n), via matrixmultiply.
pub fn sgemm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the strides describe matrices inside the slices' bounds (checked by the asserts).
    assert!(a.len() >= m * k && b.len() >= k * n);
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    c
}

/// Worker threads for the threaded baselines (the machine's parallelism).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The im2col matrix (cin·k², ho·wo) of one image (cin, h, w) for a k×k filter padded by `pad`.
#[allow(clippy::too_many_arguments)]
fn im2col(
    x: &[f32],
    cin: usize,
    h: usize,
    w: usize,
    k: usize,
    pad: usize,
    ho: usize,
    wo: usize,
    col: &mut [f32],
) {
    for i in 0..cin {
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut col[((i * k + ky) * k + kx) * ho * wo..][..ho * wo];
                for y in 0..ho {
                    let iy = (y + ky) as isize - pad as isize;
                    for xx in 0..wo {
                        let ix = (xx + kx) as isize - pad as isize;
                        row[y * wo + xx] =
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                x[(i * h + iy as usize) * w + ix as usize]
                            } else {
                                0.0
                            };
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: scatter-add the columns back into an image.
#[allow(clippy::too_many_arguments)]
fn col2im(
    col: &[f32],
    cin: usize,
    h: usize,
    w: usize,
    k: usize,
    pad: usize,
    ho: usize,
    wo: usize,
    dx: &mut [f32],
) {
    for i in 0..cin {
        for ky in 0..k {
            for kx in 0..k {
                let row = &col[((i * k + ky) * k + kx) * ho * wo..][..ho * wo];
                for y in 0..ho {
                    let iy = (y + ky) as isize - pad as isize;
                    if iy < 0 || iy as usize >= h {
                        continue;
                    }
                    for xx in 0..wo {
                        let ix = (xx + kx) as isize - pad as isize;
                        if ix >= 0 && (ix as usize) < w {
                            dx[(i * h + iy as usize) * w + ix as usize] += row[y * wo + xx];
                        }
                    }
                }
            }
        }
    }
}

/// Row-major `C (m × n) = op(A) · op(B)` into a given slice (beta = 0 or 1).
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    beta: f32,
) {
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the strides describe matrices inside the slices' bounds (checked above).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// conv2d forward on the CPU: im2col + sgemm per image, images split over threads.
pub fn conv2d_fwd(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    d: crate::ops::conv::ConvDims,
) -> Vec<f32> {
    let (ho, wo) = (d.ho(), d.wo());
    let (kk, plane_in, plane_out) = (d.cin * d.k * d.k, d.cin * d.h * d.w, d.cout * ho * wo);
    let mut out = vec![0.0f32; d.batch * plane_out];
    let per = d.batch.div_ceil(threads()).max(1);
    std::thread::scope(|s| {
        for (t, chunk) in out.chunks_mut(per * plane_out).enumerate() {
            s.spawn(move || {
                let mut col = vec![0.0f32; kk * ho * wo];
                for (j, y) in chunk.chunks_mut(plane_out).enumerate() {
                    let b = t * per + j;
                    im2col(
                        &x[b * plane_in..][..plane_in],
                        d.cin,
                        d.h,
                        d.w,
                        d.k,
                        d.pad,
                        ho,
                        wo,
                        &mut col,
                    );
                    gemm_into(w, &col, y, d.cout, kk, ho * wo, false, false, 0.0);
                    if let Some(bias) = bias {
                        for (o, row) in y.chunks_mut(ho * wo).enumerate() {
                            row.iter_mut().for_each(|v| *v += bias[o]);
                        }
                    }
                }
            });
        }
    });
    out
}

/// conv2d backward on the CPU: (dx, dw, db) of `Σ g ⊙ y` (dx left zero unless `need_dx`), images
/// split over threads, each thread accumulating its own dw and db, summed at the end.
pub fn conv2d_bwd(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    d: crate::ops::conv::ConvDims,
    need_dx: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (ho, wo) = (d.ho(), d.wo());
    let (kk, plane_in, plane_out) = (d.cin * d.k * d.k, d.cin * d.h * d.w, d.cout * ho * wo);
    let mut dx = vec![0.0f32; d.batch * plane_in];
    let per = d.batch.div_ceil(threads()).max(1);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = dx
            .chunks_mut(per * plane_in)
            .enumerate()
            .map(|(t, chunk)| {
                s.spawn(move || {
                    let mut col = vec![0.0f32; kk * ho * wo];
                    let mut dw = vec![0.0f32; d.cout * kk];
                    let mut db = vec![0.0f32; d.cout];
                    for (j, dxb) in chunk.chunks_mut(plane_in).enumerate() {
                        let b = t * per + j;
                        let gb = &g[b * plane_out..][..plane_out];
                        im2col(
                            &x[b * plane_in..][..plane_in],
                            d.cin,
                            d.h,
                            d.w,
                            d.k,
                            d.pad,
                            ho,
                            wo,
                            &mut col,
                        );
                        gemm_into(gb, &col, &mut dw, d.cout, ho * wo, kk, false, true, 1.0);
                        for (o, row) in gb.chunks(ho * wo).enumerate() {
                            db[o] += row.iter().sum::<f32>();
                        }
                        if need_dx {
                            gemm_into(w, gb, &mut col, kk, d.cout, ho * wo, true, false, 0.0);
                            col2im(&col, d.cin, d.h, d.w, d.k, d.pad, ho, wo, dxb);
                        }
                    }
                    (dw, db)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("conv worker"))
            .collect()
    });
    let mut dw = vec![0.0f32; d.cout * kk];
    let mut db = vec![0.0f32; d.cout];
    for (pw, pb) in partials {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (dx, dw, db)
}

/// Adam (PyTorch semantics, no weight decay) over a list of flat parameters.
pub struct Adam {
    lr: f32,
    t: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Adam {
    pub fn new(lr: f32, params: &[Vec<f32>]) -> Self {
        let z = || params.iter().map(|p| vec![0.0; p.len()]).collect();
        Adam {
            lr,
            t: 0,
            m: z(),
            v: z(),
        }
    }

    /// One update of every parameter by its gradient.
    pub fn step(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>]) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        self.t += 1;
        let (bc1, bc2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                p[i] -= (self.lr / bc1) * m[i] / (v[i].sqrt() / bc2.sqrt() + eps);
            }
        }
    }
}

/// Mean cross-entropy of `logits` (rows × classes) and its gradient.
fn cross_entropy(logits: &[f32], labels: &[u32], classes: usize) -> (f32, Vec<f32>) {
    let rows = labels.len();
    let mut grad = vec![0.0f32; logits.len()];
    let mut loss = 0.0f64;
    for (r, &lab) in labels.iter().enumerate() {
        let z = &logits[r * classes..][..classes];
        let mx = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let s: f32 = z.iter().map(|&v| (v - mx).exp()).sum();
        loss += (s.ln() + mx - z[lab as usize]) as f64;
        for c in 0..classes {
            let pr = (z[c] - mx).exp() / s;
            grad[r * classes + c] = (pr - f32::from(c == lab as usize)) / rows as f32;
        }
    }
    ((loss / rows as f64) as f32, grad)
}

/// `y = a Wᵀ + b` for a (rows × in), W (out × in).
fn linear_fwd(a: &[f32], w: &[f32], b: &[f32], rows: usize, nin: usize, nout: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; rows * nout];
    gemm_into(a, w, &mut y, rows, nin, nout, false, true, 0.0);
    for row in y.chunks_mut(nout) {
        row.iter_mut().zip(b).for_each(|(v, bb)| *v += bb);
    }
    y
}

/// The gradients (dW, db, da) of `y = a Wᵀ + b` given dy; da only when `need_da`.
fn linear_bwd(
    a: &[f32],
    w: &[f32],
    dy: &[f32],
    (rows, nin, nout): (usize, usize, usize),
    need_da: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dw = vec![0.0f32; nout * nin];
    gemm_into(dy, a, &mut dw, nout, rows, nin, true, false, 0.0);
    let mut db = vec![0.0f32; nout];
    for row in dy.chunks(nout) {
        db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
    }
    let mut da = Vec::new();
    if need_da {
        da = vec![0.0f32; rows * nin];
        gemm_into(dy, w, &mut da, rows, nout, nin, false, false, 0.0);
    }
    (dw, db, da)
}

fn relu_(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
}

/// `g ⊙ (a > 0)` in place.
fn relu_mask_(g: &mut [f32], a: &[f32]) {
    g.iter_mut().zip(a).for_each(|(g, &a)| {
        if a <= 0.0 {
            *g = 0.0
        }
    });
}

/// One Adam training step of a ReLU MLP (`params` = W1, b1, W2, b2, …, PyTorch layout) on one
/// batch: matrixmultiply for the products, plain loops for the rest. Returns the step's loss.
pub fn mlp_step(
    params: &mut [Vec<f32>],
    adam: &mut Adam,
    sizes: &[usize],
    x: &[f32],
    labels: &[u32],
) -> f32 {
    let rows = labels.len();
    let layers = sizes.len() - 1;
    let mut acts = vec![x.to_vec()];
    for l in 0..layers {
        let mut y = linear_fwd(
            &acts[l],
            &params[2 * l],
            &params[2 * l + 1],
            rows,
            sizes[l],
            sizes[l + 1],
        );
        if l + 1 < layers {
            relu_(&mut y);
        }
        acts.push(y);
    }
    let (loss, mut dy) = cross_entropy(&acts[layers], labels, sizes[layers]);
    let mut grads = vec![Vec::new(); 2 * layers];
    for l in (0..layers).rev() {
        let (dw, db, mut da) = linear_bwd(
            &acts[l],
            &params[2 * l],
            &dy,
            (rows, sizes[l], sizes[l + 1]),
            l > 0,
        );
        grads[2 * l] = dw;
        grads[2 * l + 1] = db;
        if l > 0 {
            relu_mask_(&mut da, &acts[l]);
            dy = da;
        }
    }
    adam.step(params, &grads);
    loss
}

/// One Adam training step of the small CNN (conv 1→C, ReLU, conv C→C, ReLU, global mean, linear
/// C→classes; `params` = W1, b1, W2, b2, W3, b3): the threaded im2col + sgemm convolutions above,
/// matrixmultiply for the linear layer, plain loops for the rest. Returns the step's loss.
pub fn cnn_step(
    params: &mut [Vec<f32>],
    adam: &mut Adam,
    (d1, d2): (crate::ops::conv::ConvDims, crate::ops::conv::ConvDims),
    classes: usize,
    x: &[f32],
    labels: &[u32],
) -> f32 {
    let rows = labels.len();
    let c = d2.cout;
    let plane = d2.ho() * d2.wo();
    let mut a1 = conv2d_fwd(x, &params[0], Some(&params[1]), d1);
    relu_(&mut a1);
    let mut a2 = conv2d_fwd(&a1, &params[2], Some(&params[3]), d2);
    relu_(&mut a2);
    let pooled: Vec<f32> = a2
        .chunks(plane)
        .map(|p| p.iter().sum::<f32>() / plane as f32)
        .collect();
    let logits = linear_fwd(&pooled, &params[4], &params[5], rows, c, classes);
    let (loss, dl) = cross_entropy(&logits, labels, classes);
    let (dw3, db3, dp) = linear_bwd(&pooled, &params[4], &dl, (rows, c, classes), true);
    let mut g2: Vec<f32> = dp
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v / plane as f32, plane))
        .collect();
    relu_mask_(&mut g2, &a2);
    let (mut g1, dw2, db2) = conv2d_bwd(&a1, &params[2], &g2, d2, true);
    relu_mask_(&mut g1, &a1);
    let (_, dw1, db1) = conv2d_bwd(x, &params[0], &g1, d1, false);
    adam.step(params, &[dw1, db1, dw2, db2, dw3, db3]);
    loss
}
