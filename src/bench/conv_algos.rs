//! Every convolution algorithm side by side: forward, input gradient and weight gradient rows for
//! each of `ConvAlgo::ALL` and `WeightGradAlgo::ALL` (named `conv algo <shape> <pass> <algo>`), at
//! the plain 32→32 layer and the flat convolution of the lifting layer (1 → 4·10 channels), batch 64.

use super::{cpu, time_cpu, time_gpu, wanted, Check, Options, Row};
use crate::ops::conv::{self, ConvAlgo, ConvDims, WeightGradAlgo};
use crate::reference::to64;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Gpu, Result};
use std::sync::Arc;

const BASELINE: &str = "im2col + matrixmultiply sgemm, threads over the batch";

/// The filter of the input gradient as a forward convolution: (cin, cout, k, k), flipped.
fn flip_transpose(w: &[f32], d: ConvDims) -> Vec<f32> {
    let k = d.k;
    let mut out = vec![0.0; w.len()];
    for o in 0..d.cout {
        for i in 0..d.cin {
            for ky in 0..k {
                for kx in 0..k {
                    out[((i * d.cout + o) * k + ky) * k + kx] =
                        w[((o * d.cin + i) * k + (k - 1 - ky)) * k + (k - 1 - kx)];
                }
            }
        }
    }
    out
}

/// Rows `conv algo … fwd|dx|dw <algo>` for every algorithm at two shapes.
pub(super) fn algo_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    let mut rng = Rng::new(12);
    // (label, batch, cin, cout, side, pad): SPEC-size layers, and the quick preset's P4 layer
    // (4 → 8 channels × 4 rotations at 14×14, batch 32).
    let shapes = [
        (
            "conv algo 32→32 28×28 k3 p1 B64",
            64,
            32usize,
            32usize,
            28,
            1usize,
        ),
        ("conv algo lift 1→40 28×28 k3 p0 B64", 64, 1, 40, 28, 0),
        ("conv algo 1→32 28×28 k3 p1 B64", 64, 1, 32, 28, 1),
        ("conv algo p4 16→32 14×14 k3 p0 B32", 32, 16, 32, 14, 0),
    ];
    for (label, batch, cin, cout, side, pad) in shapes {
        let mut names = Vec::new();
        for a in ConvAlgo::ALL {
            names.push((format!("{label} fwd {}", a.name()), Some(a), None));
        }
        for a in ConvAlgo::ALL {
            names.push((format!("{label} dx {}", a.name()), Some(a), None));
        }
        for a in WeightGradAlgo::ALL {
            names.push((format!("{label} dw {}", a.name()), None, Some(a)));
        }
        if !names.iter().any(|(n, _, _)| wanted(opts, n)) {
            continue;
        }
        let d = ConvDims {
            batch,
            cin,
            h: side,
            w: side,
            cout,
            k: 3,
            pad,
        };
        let xv = rng.normal_vec(batch * cin * side * side);
        let wv = rng.uniform_vec(cout * cin * 9, -0.3, 0.3);
        let bv = rng.uniform_vec(cout, -0.3, 0.3);
        let gv = rng.normal_vec(d.out_shape().iter().product());
        let x = Tensor::from_slice(gpu, &[batch, cin, side, side], &xv)?;
        let w = Tensor::from_slice(gpu, &[cout, cin, 3, 3], &wv)?;
        let b = Tensor::from_slice(gpu, &[cout], &bv)?;
        let g = Tensor::from_slice(gpu, &d.out_shape(), &gv)?;
        let reps = opts.reps.min(5);
        // The input gradient on the CPU: the forward convolution of g with the flipped, transposed
        // filter, padded by k − 1 − p.
        let dxd = ConvDims {
            batch,
            cin: cout,
            h: d.ho(),
            w: d.wo(),
            cout: cin,
            k: 3,
            pad: 2 - pad,
        };
        let wt = flip_transpose(&wv, d);
        let mut cpu_fwd = None;
        let mut cpu_dx = None;
        let mut cpu_dw = None;
        for (name, algo, wgrad) in names {
            if !wanted(opts, &name) {
                continue;
            }
            let pass = name.split(' ').rev().nth(1).unwrap_or("");
            let (cpu_s, want) = match pass {
                "fwd" => cpu_fwd
                    .get_or_insert_with(|| {
                        time_cpu(reps, || cpu::conv2d_fwd(&xv, &wv, Some(&bv), d))
                    })
                    .clone(),
                "dx" => cpu_dx
                    .get_or_insert_with(|| time_cpu(reps, || cpu::conv2d_fwd(&gv, &wt, None, dxd)))
                    .clone(),
                _ => cpu_dw
                    .get_or_insert_with(|| {
                        time_cpu(reps, || cpu::conv2d_bwd(&xv, &wv, &gv, d, false).1)
                    })
                    .clone(),
            };
            let want = to64(&want);
            // Terms per output: Cin·k² and the bias (forward), Cout·k² (input gradient), B·Ho·Wo
            // (weight gradient).
            let terms = match pass {
                "fwd" => d.cin * d.k * d.k + 1,
                "dx" => d.cout * d.k * d.k,
                _ => d.batch * d.ho() * d.wo(),
            };
            let check = Check {
                case: &name,
                want: &want,
                terms,
            };
            let (gpu_s, how, wall_s, out) =
                time_gpu(gpu, reps, check, || match (pass, algo, wgrad) {
                    ("fwd", Some(a), _) => conv::conv2d_with(a, &x, &w, Some(&b), pad),
                    ("dx", Some(a), _) => conv::conv2d_input_grad_with(a, &g, &w, d),
                    (_, _, Some(a)) => conv::conv2d_weight_grad_with(a, &x, &g, d),
                    _ => unreachable!("every row names its algorithm"),
                })?;
            let row = Row::kernel(
                name,
                gpu_s,
                how,
                wall_s,
                cpu_s,
                BASELINE,
                d.flops(),
                &out.to_vec()?,
                &want,
            );
            progress(&row);
            rows.push(row);
        }
    }
    Ok(())
}
