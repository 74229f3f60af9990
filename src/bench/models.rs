//! Training steps of the networks of SPEC §4 on the rot-sb task (the task where all five run):
//! `gcnn`, `faux-gcnn`, `faux-gcnn-kl`, `cnn`, `mlp`, at the quick preset's sizes and at the medium
//! preset's (28×28, SPEC §4's channels, batch 64), each step the one `run` trains with
//! ([`crate::train::train_step`], the quick preset's learning rate, weight decay and β), on a
//! fixed batch of random digits. The cloned models take fresh (untrained) clones of 9 blocks: a
//! step's work does not depend on what a clone has learned. No CPU baseline; each row carries its per-step counts
//! (dispatches, bytes bound per kernel family, CPU time recording).

use super::e2e::time_steps;
use super::{wanted, Options, Row};
use crate::clone::{clone_key, CloneSet, ClonedOperator};
use crate::models::{clones_needed, Arch, Model, ModelKind};
use crate::nn::{Optimizer, OptimizerKind};
use crate::ops::kl::Penalty;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::train::{train_step, StepSums};
use crate::{Gpu, Result};
use std::sync::Arc;

/// The models these rows train, in order.
pub const MODELS: [ModelKind; 5] = [
    ModelKind::Gcnn,
    ModelKind::FauxGcnn,
    ModelKind::FauxGcnnKl,
    ModelKind::Cnn,
    ModelKind::Mlp,
];

/// The quick preset's training settings on rot-sb: batch, learning rate, Adam's weight decay, KL
/// weight β (tests/bench.rs holds them to the preset).
pub const QUICK_TRAIN: (usize, f32, f32, f32) = (32, 2e-3, 1e-3, 1e8);
/// The quick preset's clones: blocks `nb` and M1's width `m`.
pub const QUICK_CLONE: (usize, usize) = (9, 10);

/// The quick preset's network of `kind` on rot-sb: 16×16 inputs, 20 classes, channels 4-8-8-8,
/// MLP 256-128.
pub fn quick_arch(kind: ModelKind) -> Arch {
    let mut a = Arch::paper(kind, 16, 20);
    a.channels = [4, 8, 8, 8];
    a.mlp = vec![256, 128];
    a
}

/// The medium preset's network of `kind` on rot-sb: SPEC §4's sizes at 28×28, 20 classes.
pub fn medium_arch(kind: ModelKind) -> Arch {
    Arch::paper(kind, 28, 20)
}

/// The medium preset's batch on rot-sb (SPEC §6's symmetric-task batch, the larger of the two).
pub const MEDIUM_BATCH: usize = 64;

/// The geometries each model's rows train at, quick then medium: (name, network, batch); for a
/// model on frozen clones, each again with the blocks read in half precision (`--half-blocks`).
fn geometries(kind: ModelKind) -> Vec<(String, Arch, usize)> {
    let mut v = vec![
        (case_name(kind), quick_arch(kind), QUICK_TRAIN.0),
        (
            format!(
                "train step {} medium (28×28, SPEC channels, B{MEDIUM_BATCH}, Adam)",
                kind.name()
            ),
            medium_arch(kind),
            MEDIUM_BATCH,
        ),
    ];
    if kind.cloned().is_some() && !kind.kl() {
        let half: Vec<_> = v
            .iter()
            .map(|(name, arch, batch)| {
                let name = format!("{}, f16 blocks)", name.trim_end_matches(')'));
                let arch = Arch {
                    half_blocks: true,
                    ..arch.clone()
                };
                (name, arch, *batch)
            })
            .collect();
        v.extend(half);
    }
    v
}

/// The quick row's name for `kind`.
pub fn case_name(kind: ModelKind) -> String {
    format!(
        "train step {} quick (16×16, 4-8-8-8, B{}, Adam)",
        kind.name(),
        QUICK_TRAIN.0
    )
}

pub(super) fn model_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    let (_, lr, wd, beta) = QUICK_TRAIN;
    let cases = MODELS
        .into_iter()
        .flat_map(|kind| geometries(kind).into_iter().map(move |g| (kind, g)));
    for (kind, (case, arch, batch)) in cases {
        if !wanted(opts, &case) {
            continue;
        }
        let mut rng = Rng::new(29);
        let mut clones = CloneSet::new();
        for (ok, d) in clones_needed(kind, &arch)? {
            let op = ClonedOperator::new(gpu, ok, d, QUICK_CLONE.0, QUICK_CLONE.1, &mut rng)?;
            clones.insert(clone_key(ok, d), op);
        }
        let model = Model::new(gpu, kind, &arch, &clones, &mut rng)?;
        let side = arch.side;
        let images = Tensor::from_slice(
            gpu,
            &[batch, 1, side, side],
            &rng.uniform_vec(batch * side * side, 0.0, 1.0),
        )?;
        let labels: Vec<u32> = (0..batch).map(|i| (i * 7 % arch.classes) as u32).collect();
        let labels = Tensor::from_u32(gpu, &[batch], &labels)?;
        let mut opt = Optimizer::new(OptimizerKind::adam(wd), lr, &model.params());
        let mut seed = 0u32;
        let sums = StepSums::zeros(gpu, kind.kl())?;
        let mut step = || -> Result<Tensor> {
            seed += 1;
            train_step(
                &model,
                &mut opt,
                &images,
                &labels,
                (Penalty::Kl, beta),
                seed,
                &sums,
            )?;
            Ok(sums.batch.loss.clone())
        };
        let (warm, steps) = (2, opts.reps.clamp(3, 10));
        let (s, _, counts) = time_steps(gpu, warm, steps, &mut step)?;
        if std::env::var_os("SYMCLONE_PROFILE").is_some_and(|v| !v.is_empty()) {
            print_step_kernels(gpu, &case, &mut step)?;
        }
        let row = Row {
            case,
            gpu_s: s,
            gpu_timing: "wall",
            wall_s: s,
            cpu_s: f64::NAN,
            cpu_baseline: "none",
            work: 1.0,
            unit: "steps/s",
            rel_err: f64::NAN,
            note: String::new(),
            counts: Some(counts),
        };
        progress(&row);
        rows.push(row);
    }
    Ok(())
}

/// One more step with every kernel timed (`SYMCLONE_PROFILE`): its kernels, dispatches and
/// microseconds, to stderr.
fn print_step_kernels(
    gpu: &Gpu,
    case: &str,
    step: &mut dyn FnMut() -> Result<Tensor>,
) -> Result<()> {
    let (_, rows) = gpu.profile(step)?;
    eprintln!("kernels of one step of {case}:");
    for (k, s, n) in rows.unwrap_or_default() {
        eprintln!("  {n:>4} × {k:<40} {:>9.1} µs", s * 1e6);
    }
    Ok(())
}
