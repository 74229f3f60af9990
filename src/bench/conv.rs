//! The convolution suite: conv2d forward (direct and im2col) and backward, and the lifting and P4
//! layers, against im2col + threaded sgemm on the CPU.

use super::{cpu, time_cpu, time_gpu, wanted, Check, Options, Row};
use crate::group::Group::C4;
use crate::ops::conv::{self, ConvDims};
use crate::ops::gconv;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// Which layer a convolution case times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ConvKind {
    Plain,
    Lift,
    P4,
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn concat(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().chain(b).copied().collect()
}

/// conv2d forward (direct and im2col) and backward, and the lifting and P4 layers at the MNIST
/// shapes of SPEC §4 (batch 64), against im2col + threaded sgemm on the CPU.
pub(super) fn conv_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    use crate::reference::gconv as rg;
    let mut rng = Rng::new(11);
    let cases = [
        (ConvKind::Plain, 1usize, 32usize, 28usize, 1usize),
        (ConvKind::Plain, 32, 32, 28, 1),
        (ConvKind::Lift, 1, 10, 28, 0),
        (ConvKind::P4, 10, 20, 26, 0),
        (ConvKind::P4, 20, 20, 12, 0),
    ];
    let (batch, k) = (64usize, 3usize);
    for (kind, cin, cout, hw, pad) in cases {
        let label = match kind {
            ConvKind::Plain => format!("conv2d {cin}→{cout} {hw}×{hw} k3 p{pad} B{batch}"),
            ConvKind::Lift => format!("lift C4 conv {cin}→{cout} {hw}×{hw} B{batch}"),
            ConvKind::P4 => format!("P4 conv {cin}→{cout} {hw}×{hw} B{batch}"),
        };
        let names = [
            format!("{label} fwd"),
            format!("{label} fwd direct"),
            format!("{label} bwd"),
        ];
        if !names.iter().any(|n| wanted(opts, n)) {
            continue;
        }
        // The flat convolution every kind reduces to.
        let (cin_f, cout_f) = match kind {
            ConvKind::Plain => (cin, cout),
            ConvKind::Lift => (cin, cout * 4),
            ConvKind::P4 => (cin * 4, cout * 4),
        };
        let d = ConvDims {
            batch,
            cin: cin_f,
            h: hw,
            w: hw,
            cout: cout_f,
            k,
            pad,
        };
        let xv = rng.normal_vec(batch * cin_f * hw * hw);
        let wshape: Vec<usize> = match kind {
            ConvKind::P4 => vec![cout, cin, 4, k, k],
            _ => vec![cout, cin, k, k],
        };
        let wv = rng.uniform_vec(wshape.iter().product(), -0.3, 0.3);
        let bv = rng.uniform_vec(cout, -0.3, 0.3);
        let gv = rng.normal_vec(d.out_shape().iter().product());
        let x = Tensor::from_slice(gpu, &[batch, cin_f, hw, hw], &xv)?;
        let x5 = match kind {
            ConvKind::P4 => x.reshape(&[batch, cin, 4, hw, hw])?,
            _ => x.clone(),
        };
        let w = Tensor::from_slice(gpu, &wshape, &wv)?;
        let b = Tensor::from_slice(gpu, &[cout], &bv)?;
        let g = Tensor::from_slice(gpu, &d.out_shape(), &gv)?;
        let w64 = crate::reference::to64(&wv);
        // CPU: the transformed filters (timed with the layer), flat bias.
        let cpu_tw = || -> Vec<f32> {
            match kind {
                ConvKind::Plain => wv.clone(),
                ConvKind::Lift => f32s(&rg::lift_filter(&w64, cout, cin, k, C4.order())),
                ConvKind::P4 => f32s(&rg::group_filter(&w64, cout, cin, k, C4.order())),
            }
        };
        let bflat: Vec<f32> = match kind {
            ConvKind::Plain => bv.clone(),
            _ => bv.iter().flat_map(|&v| [v; 4]).collect(),
        };
        let gpu_tw = match kind {
            ConvKind::Plain => w.clone(),
            ConvKind::Lift => gconv::lift_filter(&w, C4)?,
            ConvKind::P4 => gconv::group_filter(&w, C4)?,
        };
        let reps = if d.flops() > 2e8 {
            opts.reps.min(5)
        } else {
            opts.reps.min(10)
        };
        let baseline = "im2col + matrixmultiply sgemm, threads over the batch";

        // Forward (direct kernel; the layers include their filter transform).
        let fwd = || -> Result<Tensor> {
            match kind {
                ConvKind::Plain => conv::conv2d(&x, &w, Some(&b), pad),
                ConvKind::Lift => gconv::lift_conv(&x, &w, Some(&b), pad, C4),
                ConvKind::P4 => gconv::group_conv(&x5, &w, Some(&b), pad, C4),
            }
        };
        let (cpu_s, cpu_y) = time_cpu(reps, || cpu::conv2d_fwd(&xv, &cpu_tw(), Some(&bflat), d));
        let cpu_y64 = crate::reference::to64(&cpu_y);
        // Each output sums Cin·k² products and the bias.
        let fwd_terms = d.cin * k * k + 1;
        if wanted(opts, &names[0]) {
            let check = Check {
                case: &names[0],
                want: &cpu_y64,
                terms: fwd_terms,
            };
            let (gpu_s, how, wall_s, out) = time_gpu(gpu, reps, check, fwd)?;
            let row = Row::kernel(
                names[0].clone(),
                gpu_s,
                how,
                wall_s,
                cpu_s,
                baseline,
                d.flops(),
                &out.to_vec()?,
                &cpu_y64,
            );
            progress(&row);
            rows.push(row);
        }
        if kind == ConvKind::Plain && wanted(opts, &names[1]) {
            let check = Check {
                case: &names[1],
                want: &cpu_y64,
                terms: fwd_terms,
            };
            let (gpu_s, how, wall_s, out) = time_gpu(gpu, reps, check, || {
                conv::conv2d_direct(&x, &w, Some(&b), pad)
            })?;
            let row = Row::kernel(
                names[1].clone(),
                gpu_s,
                how,
                wall_s,
                cpu_s,
                baseline,
                d.flops(),
                &out.to_vec()?,
                &cpu_y64,
            );
            progress(&row);
            rows.push(row);
        }
        if wanted(opts, &names[2]) {
            // Backward as the tape runs it: weight gradient (+ adjoint transform), bias gradient,
            // and the input gradient except for a first layer on images (lift).
            let need_dx = kind != ConvKind::Lift;
            let bwd = || -> Result<(Tensor, Option<Tensor>, Tensor)> {
                let [dx, dtw, dtb] = conv::conv2d_grads(&x, &gpu_tw, &g, d, [need_dx, true, true])?;
                let missing =
                    || Error::invalid("conv2d_grads left out a gradient it was asked for");
                let (dtw, dtb) = (dtw.ok_or_else(missing)?, dtb.ok_or_else(missing)?);
                let (dw, db) = match kind {
                    ConvKind::Plain => (dtw, dtb),
                    ConvKind::Lift => (
                        gconv::lift_filter_adjoint(&dtw, C4)?,
                        crate::ops::reduce::sum_axis(&dtb.reshape(&[cout, 4])?, 1)?,
                    ),
                    ConvKind::P4 => (
                        gconv::group_filter_adjoint(&dtw, C4)?,
                        crate::ops::reduce::sum_axis(&dtb.reshape(&[cout, 4])?, 1)?,
                    ),
                };
                Ok((dw, dx, db))
            };
            let (cpu_s, (cdx, cdw, cdb)) = time_cpu(reps, || {
                let (dx, dtw, dtb) = cpu::conv2d_bwd(&xv, &cpu_tw(), &gv, d, need_dx);
                let dtw64 = crate::reference::to64(&dtw);
                let (dw, db) = match kind {
                    ConvKind::Plain => (dtw, dtb),
                    ConvKind::Lift => (
                        f32s(&rg::lift_filter_adjoint(&dtw64, cout, cin, k, C4.order())),
                        dtb.chunks(4).map(|r| r.iter().sum()).collect(),
                    ),
                    ConvKind::P4 => (
                        f32s(&rg::group_filter_adjoint(&dtw64, cout, cin, k, C4.order())),
                        dtb.chunks(4).map(|r| r.iter().sum()).collect(),
                    ),
                };
                (dx, dw, db)
            });
            // The weight and bias gradients sum B·Ho·Wo products per element (and 4 rotations
            // for C4 filters); the bias gradient is checked before the timing too.
            let terms = d.batch * d.ho() * d.wo() * 4;
            let (cdw64, cdb64) = (crate::reference::to64(&cdw), crate::reference::to64(&cdb));
            let db_check = Check {
                case: &names[2],
                want: &cdb64,
                terms,
            };
            db_check.verify(&bwd()?.2.to_vec()?)?;
            let check = Check {
                case: &names[2],
                want: &cdw64,
                terms,
            };
            let (gpu_s, how, wall_s, dw) = time_gpu(gpu, reps, check, || bwd().map(|r| r.0))?;
            let (_, dx, db) = bwd()?;
            let (mut got, mut want) = (concat(&dw.to_vec()?, &db.to_vec()?), concat(&cdw, &cdb));
            if let Some(dx) = dx {
                (got, want) = (concat(&got, &dx.to_vec()?), concat(&want, &cdx));
            }
            let flops = d.flops() * if need_dx { 2.0 } else { 1.0 };
            let row = Row::kernel(
                names[2].clone(),
                gpu_s,
                how,
                wall_s,
                cpu_s,
                baseline,
                flops,
                &got,
                &crate::reference::to64(&want),
            );
            progress(&row);
            rows.push(row);
        }
    }
    Ok(())
}
