//! Training and measuring the mixer student (SPEC §8): per iteration F filters drawn on the GPU,
//! each with its own batch of Gaussian inputs, the teacher's outputs from the engine's
//! convolution, MSE, AdamW with global-norm clipping and an optimiser step every `accum`
//! iterations — the regression loop of [`super::train`], shared.

use super::mixer::{
    draw_filters, teacher_outputs, to_token_layout, Filters, MixerConfig, MixerModel,
};
use super::train::{fit, mse_against, optimizer, CloneConfig, CloneStats};
use super::OperatorKind;
use crate::autograd::{Tape, Var};
use crate::equivariance::{equivariance_error, Group};
use crate::ops::random;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Gpu, Result};
use std::sync::Arc;

/// The shared loop's settings for a mixer run: its optimiser, schedule and sample counts (the
/// operator fields are unused: the mixer's sample function builds the student's output).
fn loop_config(cfg: &MixerConfig) -> CloneConfig {
    CloneConfig {
        filters: cfg.filters,
        batch: cfg.batch,
        iters: cfg.iters,
        accum: cfg.accum,
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        clip: cfg.clip,
        lr_decay: cfg.lr_decay,
        warmup: cfg.warmup,
        seed: cfg.seed,
        chunk: Some(cfg.filters),
        ..CloneConfig::paper(OperatorKind::Z2, cfg.d.max(3))
    }
}

/// One training sample: inputs x (F·bs, C, d, d) drawn on the GPU, filter tokens, and the target
/// in the prediction's layout (F·bs, o², C).
pub fn sample(
    gpu: &Arc<Gpu>,
    cfg: &MixerConfig,
    f: usize,
    rng: &mut Rng,
) -> Result<(Tensor, Tensor, Tensor)> {
    let filters = draw_filters(gpu, cfg, f, rng.next_u64())?;
    let x = random::randn(
        gpu,
        &[f * cfg.batch, cfg.channels, cfg.d, cfg.d],
        rng.next_u64(),
    )?;
    let target = to_token_layout(&teacher_outputs(&x, &filters.weights)?)?;
    Ok((x, filters.tokens, target))
}

/// Train a fresh mixer (seeded by `cfg.seed`); `progress(iteration, loss)` at each log point.
pub fn train_mixer(
    gpu: &Arc<Gpu>,
    cfg: &MixerConfig,
    log_every: usize,
    progress: &mut dyn FnMut(usize, f32),
) -> Result<(MixerModel, CloneStats)> {
    cfg.check()?;
    let mut rng = Rng::new(cfg.seed);
    let model = MixerModel::new(gpu, cfg, &mut rng)?;
    let mut draw = |rng: &mut Rng, tape: &mut Tape, f: usize| -> Result<(Var, Tensor)> {
        let (x, tokens, target) = sample(gpu, cfg, f, rng)?;
        let xv = tape.input(x);
        let tv = tape.input(tokens);
        let y = model.forward(tape, xv, tv)?;
        mse_against(tape, y, target)
    };
    let loop_cfg = loop_config(cfg);
    let stats = fit(
        gpu,
        &loop_cfg,
        optimizer(&loop_cfg, &model.params()),
        &mut rng,
        &mut draw,
        log_every,
        progress,
    )?;
    Ok((model, stats))
}

/// Fidelity on fresh filters and inputs.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Fidelity {
    pub mse: f64,
    /// The teacher outputs' mean square (what an all-zero prediction scores).
    pub target_mean_square: f64,
    pub filters: usize,
    pub inputs_per_filter: usize,
}

impl Fidelity {
    pub fn relative(&self) -> f64 {
        self.mse / self.target_mean_square.max(f64::MIN_POSITIVE)
    }
}

/// Mean square difference of two tensors, and the second's mean square (f64 on the host).
pub fn mse_and_scale(a: &Tensor, b: &Tensor) -> Result<(f64, f64)> {
    let (a, b) = (a.to_vec()?, b.to_vec()?);
    let n = b.len().max(1) as f64;
    let d = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>();
    let s = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>();
    Ok((d / n, s / n))
}

/// A held-out set: `filters` fresh filters with `per_filter` fresh inputs each, seeded by `seed`
/// (a stream training never draws): the filters, the inputs (F·bs, C, d, d) and the teacher's
/// outputs (F·bs, C, o, o).
pub struct EvalSet {
    pub filters: Filters,
    pub x: Tensor,
    pub target: Tensor,
}

impl EvalSet {
    pub fn new(
        gpu: &Arc<Gpu>,
        cfg: &MixerConfig,
        filters: usize,
        per_filter: usize,
        seed: u64,
    ) -> Result<EvalSet> {
        let mut rng = Rng::new(seed);
        let f = draw_filters(gpu, cfg, filters, rng.next_u64())?;
        let x = random::randn(
            gpu,
            &[filters * per_filter, cfg.channels, cfg.d, cfg.d],
            rng.next_u64(),
        )?;
        let target = teacher_outputs(&x, &f.weights)?;
        Ok(EvalSet {
            filters: f,
            x,
            target,
        })
    }

    /// Fidelity of a map Φ(x) → (F·bs, C, o, o) (with this set's filters) on this set.
    pub fn fidelity(&self, phi: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Fidelity> {
        let (mse, target_mean_square) = mse_and_scale(&phi(&self.x)?, &self.target)?;
        let f = self.filters.weights.shape()[0];
        Ok(Fidelity {
            mse,
            target_mean_square,
            filters: f,
            inputs_per_filter: self.x.shape()[0] / f.max(1),
        })
    }

    /// The equivariance errors (Φ, teacher) on this set's inputs under the teacher's symmetry;
    /// the teacher's is exact up to rounding.
    pub fn equivariance(
        &self,
        cfg: &MixerConfig,
        phi: &dyn Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<(f64, f64)> {
        let group = symmetry(cfg);
        let learned = equivariance_error(phi, &self.x, &group)?;
        let w = &self.filters.weights;
        let teacher = equivariance_error(&|x: &Tensor| teacher_outputs(x, w), &self.x, &group)?;
        Ok((learned, teacher))
    }
}

/// The mixer's fidelity on a fresh [`EvalSet`].
pub fn mixer_fidelity(
    gpu: &Arc<Gpu>,
    model: &MixerModel,
    filters: usize,
    per_filter: usize,
    seed: u64,
) -> Result<Fidelity> {
    let set = EvalSet::new(gpu, &model.cfg, filters, per_filter, seed)?;
    set.fidelity(&|x: &Tensor| model.predict(x, &set.filters.tokens))
}

/// The symmetry the teacher has: translations by one pixel each way (v5), or 90° rotations (v6,
/// whose filters are isotropic).
pub fn symmetry(cfg: &MixerConfig) -> Group {
    match cfg.teacher {
        super::mixer::MixerTeacher::Conv => Group::Translations {
            shifts: vec![(1, 0), (0, 1), (-1, 0), (0, -1)],
            margin: 0,
        },
        super::mixer::MixerTeacher::Radial => Group::C4,
    }
}
