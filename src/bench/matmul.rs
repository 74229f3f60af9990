//! The matrix-product suite: square products up to `max_square`, and the transposed forms at 1024,
//! by the variant chosen for this adapter; then every variant forced, side by side, at 256³, 1000³
//! (ragged: no size a multiple of a block) and 1024³; against threaded sgemm on the CPU.

use super::{cpu, time_cpu, time_gpu, wanted, Check, Options, Row};
use crate::ops::matmul;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Gpu, Result};
use std::sync::Arc;

/// Square and transposed matrix-product cases.
pub(super) fn matmul_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    let mut rng = Rng::new(7);
    let mut sizes = vec![256, 1024, 2048, 4096];
    sizes.retain(|&s| s <= opts.max_square);
    let mut cases: Vec<(usize, bool, bool)> = sizes.iter().map(|&s| (s, false, false)).collect();
    cases.extend([(1024, true, false), (1024, false, true), (1024, true, true)]);
    for (s, ta, tb) in cases {
        let name = format!(
            "matmul {s}x{s}x{s}{}{}",
            if ta { " Aᵀ" } else { "" },
            if tb { " Bᵀ" } else { "" }
        );
        if !wanted(opts, &name) {
            continue;
        }
        let a = rng.normal_vec(s * s);
        let b = rng.normal_vec(s * s);
        let ga = Tensor::from_slice(gpu, &[s, s], &a)?;
        let gb = Tensor::from_slice(gpu, &[s, s], &b)?;
        let reps = if s >= 2048 {
            opts.reps.min(5)
        } else {
            opts.reps
        };
        let (cpu_s, c) = time_cpu(reps.min(5), || cpu::sgemm(&a, &b, s, s, s, ta, tb));
        let want = crate::reference::to64(&c);
        let row = square_row(gpu, reps, name, s, (cpu_s, &want), || {
            matmul::matmul(&ga, &gb, ta, tb)
        })?;
        progress(&row);
        rows.push(row);
    }
    variant_cases(gpu, opts, rows, progress)
}

/// Every matrix-product variant as its own row, at 256³, 1000³ and 1024³.
fn variant_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    let mut rng = Rng::new(8);
    for s in [256, 1000, 1024] {
        let names: Vec<String> = matmul::variants::VARIANTS
            .iter()
            .filter(|v| v.runs_on(gpu))
            .map(|v| format!("matmul {s}x{s}x{s} {}", v.name))
            .filter(|n| s <= opts.max_square && wanted(opts, n))
            .collect();
        if names.is_empty() {
            continue;
        }
        let a = rng.normal_vec(s * s);
        let b = rng.normal_vec(s * s);
        let ga = Tensor::from_slice(gpu, &[s, s], &a)?;
        let gb = Tensor::from_slice(gpu, &[s, s], &b)?;
        let (cpu_s, c) = time_cpu(opts.reps.min(5), || {
            cpu::sgemm(&a, &b, s, s, s, false, false)
        });
        let want = crate::reference::to64(&c);
        for v in matmul::variants::VARIANTS {
            let name = format!("matmul {s}x{s}x{s} {}", v.name);
            if !names.contains(&name) {
                continue;
            }
            let reps = opts.reps.min(if v.family == gpu.default_family() {
                20
            } else {
                3
            });
            let row = square_row(gpu, reps, name, s, (cpu_s, &want), || {
                matmul::matmul_variant(v.name, &ga, &gb, false, false, None, false)
            })?;
            progress(&row);
            rows.push(row);
        }
    }
    Ok(())
}

/// One s×s×s product's row: checked against the CPU result `want` (timed at `cpu_s`), then timed.
fn square_row(
    gpu: &Gpu,
    reps: usize,
    name: String,
    s: usize,
    (cpu_s, want): (f64, &[f64]),
    f: impl FnMut() -> Result<Tensor>,
) -> Result<Row> {
    let check = Check {
        case: &name,
        want,
        terms: s,
    };
    let (gpu_s, how, wall_s, out) = time_gpu(gpu, reps, check, f)?;
    Ok(Row::kernel(
        name,
        gpu_s,
        how,
        wall_s,
        cpu_s,
        "matrixmultiply sgemm, threaded",
        2.0 * (s * s * s) as f64,
        &out.to_vec()?,
        want,
    ))
}
