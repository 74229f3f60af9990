//! The cloning-loss suite: the three forms of the cloning loss — exact (trained in the
//! span of the taps, as `clone_random` does, and on the dense blocks in Gram form, `exact-dense`),
//! inputs (expected over the noise images) and sampled (SPEC §3) — on a lift clone at d = 28 and a
//! P4 clone at d = 26 with 9 blocks: the time per iteration, and the iterations (and seconds) to a
//! relative MSE of 1e-6, each run stopped at an iteration cap so the suite ends.

use super::{wanted, Options, Row};
use crate::clone::{clone_random_with, CloneConfig, CloneLoss, ExactForm, OperatorKind};
use crate::{Gpu, Result};
use std::sync::Arc;
use std::time::Instant;

/// The relative MSE the rows time the clones to.
pub const GOAL: f32 = 1e-6;

/// The settings of one row: the medium preset's schedule (lr 0.1, P4 0.05, after a 20-step
/// linear warm-up, decaying by 0.99 per step, a step per iteration) with 9 blocks; the sampled and inputs forms draw the e2e rows'
/// filters and images per iteration (lift 16 × 32, P4 8 × 16). `cap`: the iteration cap.
pub fn row_config(kind: OperatorKind, d: usize, loss: CloneLoss, cap: usize) -> CloneConfig {
    let p4 = kind.in_planes() > 1;
    CloneConfig {
        nb: 9,
        filters: if p4 { 8 } else { 16 },
        batch: if p4 { 16 } else { 32 },
        iters: cap,
        accum: 1,
        lr: if p4 { 0.05 } else { 0.1 },
        lr_decay: 0.99,
        warmup: 20,
        loss,
        stop_at: Some(GOAL),
        ..CloneConfig::paper(kind, d)
    }
}

/// The iteration caps (`--reps` scales them: 50·reps for the exact form in the span of the taps,
/// 10·reps on the dense blocks, 5·reps for the others), so that each row ends.
fn cap(loss: CloneLoss, form: ExactForm, opts: &Options) -> usize {
    match (loss, form) {
        (CloneLoss::Exact, ExactForm::Span) => 50 * opts.reps.clamp(1, 60),
        (CloneLoss::Exact, ExactForm::Dense) => 10 * opts.reps.clamp(1, 60),
        _ => 5 * opts.reps.clamp(1, 40),
    }
}

pub(super) fn clone_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    for (kind, d) in [(OperatorKind::Lift, 28usize), (OperatorKind::P4, 26)] {
        for (loss, form) in [
            (CloneLoss::Exact, ExactForm::Span),
            (CloneLoss::Exact, ExactForm::Dense),
            (CloneLoss::Inputs, ExactForm::Span),
            (CloneLoss::Sampled, ExactForm::Span),
        ] {
            let dense = if form == ExactForm::Dense {
                "-dense"
            } else {
                ""
            };
            let name = format!("clone to 1e-6 {loss}{dense} {} d{d} nb9", kind.name());
            if !wanted(opts, &name) {
                continue;
            }
            // Warm-up: the pipelines built, then the timed run from the same seed.
            let warm = row_config(kind, d, loss, 2);
            clone_random_with(gpu, &warm, form, 1, &mut |_, _| {})?;
            let cfg = row_config(kind, d, loss, cap(loss, form, opts));
            let before = gpu.counters();
            let t0 = Instant::now();
            let (_, stats) = clone_random_with(gpu, &cfg, form, 10, &mut |_, _| {})?;
            gpu.sync()?;
            let secs = t0.elapsed().as_secs_f64();
            let ran = stats.history.last().map_or(cfg.iters, |h| h.0);
            // Per iteration, the run's setup (its teacher, its first evaluation) included.
            let counts = gpu.counters().since(&before).per_step(ran.max(1) as u64);
            let per_iter = secs / ran.max(1) as f64;
            let last = stats.history.last().map_or(f32::NAN, |h| h.1) / stats.target_mean_square;
            let note = if last <= GOAL {
                format!(
                    "{name}: relative MSE {last:.1e} reached 1e-6 at iteration {ran} ({secs:.1} s)."
                )
            } else {
                format!(
                    "{name}: 1e-6 not reached in {ran} iterations ({secs:.1} s; best relative MSE {:.1e}).",
                    stats.best_relative()
                )
            };
            eprintln!("{note}");
            let row = Row {
                case: name,
                gpu_s: per_iter,
                gpu_timing: "wall",
                wall_s: per_iter,
                cpu_s: f64::NAN,
                cpu_baseline: "none",
                work: 1.0,
                unit: "iters/s",
                rel_err: f64::NAN,
                note,
                counts: Some(counts),
            };
            progress(&row);
            rows.push(row);
        }
    }
    Ok(())
}
