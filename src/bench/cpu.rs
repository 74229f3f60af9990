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
