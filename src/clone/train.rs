//! Cloning as supervised regression (SPEC §3): random Gaussian filter codes, fresh Gaussian noise
//! inputs per filter (generated on the GPU), MSE against the true layer, AdamW with weight decay
//! 0.01, global gradient-norm clipping at 1.0 and one optimiser step every `accum` iterations.

use super::operator::{
    per_filter_apply, shift_blocks, true_codes, ClonedOperator, OperatorKind, K,
};
use crate::nn::{Optimizer, OptimizerKind};
use crate::ops::{cloned as cl, elementwise, loss};
use crate::rng::Rng;
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// One cloning run's settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct CloneConfig {
    pub kind: OperatorKind,
    /// Input side length.
    pub d: usize,
    /// Number of blocks (9 can be exact; 7 and 8 cannot).
    pub nb: usize,
    /// Width of M1.
    pub m: usize,
    /// Filter codes per iteration (SPEC: 128).
    pub filters: usize,
    /// Noise images per filter (SPEC: 1000 for Z2/Lift, 500 for P4).
    pub batch: usize,
    /// Iterations (SPEC: 10,000).
    pub iters: usize,
    /// Iterations per optimiser step (SPEC: 5).
    pub accum: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub clip: f32,
    /// Multiply the learning rate by this after every optimiser step (1.0 = constant, the paper's).
    pub lr_decay: f32,
    pub seed: u64,
}

impl CloneConfig {
    /// SPEC §3's settings for a kind and input size.
    pub fn paper(kind: OperatorKind, d: usize) -> Self {
        let p4 = kind == OperatorKind::P4;
        CloneConfig {
            kind,
            d,
            nb: 9,
            m: 10,
            filters: 128,
            batch: if p4 { 500 } else { 1000 },
            iters: 10_000,
            accum: 5,
            lr: if p4 { 5e-3 } else { 1e-2 },
            weight_decay: 0.01,
            clip: 1.0,
            lr_decay: 1.0,
            seed: 0,
        }
    }
}

/// What a cloning run measured.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CloneStats {
    /// (iteration, loss) at each log point.
    pub history: Vec<(usize, f32)>,
    pub best_loss: f32,
    pub final_loss: f32,
    pub seconds: f64,
}

/// Train a fresh operator against the true layer on random filters and noise.
/// `progress(iteration, loss)` is called at each log point (every `log_every` iterations).
pub fn clone_random(
    gpu: &Arc<Gpu>,
    cfg: &CloneConfig,
    log_every: usize,
    progress: &mut dyn FnMut(usize, f32),
) -> Result<(ClonedOperator, CloneStats)> {
    if cfg.filters == 0 || cfg.batch == 0 || cfg.accum == 0 {
        return Err(Error::invalid(
            "cloning needs at least one filter, one image and one iteration per step",
        ));
    }
    let t0 = std::time::Instant::now();
    let mut rng = Rng::new(cfg.seed);
    let op = ClonedOperator::new(gpu, cfg.kind, cfg.d, cfg.nb, cfg.m, &mut rng)?;
    let (_, n_in) = ClonedOperator::io(cfg.d);
    let shifts = Tensor::from_slice(
        gpu,
        &[K * K, (cfg.d + 1 - K).pow(2), n_in],
        &shift_blocks(cfg.d),
    )?;
    let mut opt = Optimizer::new(OptimizerKind::adamw(cfg.weight_decay), cfg.lr, &op.params())
        .with_clip(cfg.clip);
    let mut stats = CloneStats {
        best_loss: f32::INFINITY,
        ..Default::default()
    };
    let planes = cfg.kind.in_planes();
    let code_len = cfg.kind.code_len();
    let mut window: Option<Tensor> = None;
    let mut in_window = 0usize;
    for it in 1..=cfg.iters {
        crate::error::check_interrupt("cloning")?;
        let codes = rng.normal_vec(cfg.filters * code_len);
        let noise_seed = rng.next_u64();
        let mut tape = Tape::new();
        let x = tape.input(cl::randn(
            gpu,
            &[cfg.filters, planes * n_in, cfg.batch],
            noise_seed,
        )?);
        let target = {
            let mut tc = Vec::with_capacity(cfg.filters * cfg.kind.codes_per_filter() * K * K);
            for c in codes.chunks(code_len) {
                tc.extend(true_codes(cfg.kind, c));
            }
            let mut nt = Tape::no_grad();
            let h = nt.input(Tensor::from_slice(gpu, &[tc.len() / (K * K), K * K], &tc)?);
            let b = nt.input(shifts.clone());
            let xv = nt.input(tape.value(x).clone());
            let y = per_filter_apply(&mut nt, cfg.kind, cfg.d, h, b, xv)?;
            nt.value(y).clone()
        };
        let tv = tape.input(target);
        let c = tape.input(Tensor::from_slice(gpu, &[cfg.filters, code_len], &codes)?);
        let y = op.forward_per_filter(&mut tape, c, x)?;
        let l = loss::mse_t(&mut tape, y, tv)?;
        match &window {
            None => window = Some(tape.value(l).deep_clone()?),
            Some(w) => elementwise::acc_(w, tape.value(l), 1.0)?,
        }
        in_window += 1;
        let scaled = elementwise::scale_t(&mut tape, l, 1.0 / cfg.accum as f32)?;
        tape.backward(scaled)?;
        drop(tape);
        if it % cfg.accum == 0 || it == cfg.iters {
            opt.step()?;
            opt.zero_grad();
            opt.lr *= cfg.lr_decay;
        }
        if it % log_every.max(1) == 0 || it == cfg.iters {
            // One read-back per log point: the mean loss since the last one.
            let sum = window.take().map(|w| w.item()).transpose()?.unwrap_or(0.0);
            let lv = sum / in_window.max(1) as f32;
            in_window = 0;
            if !lv.is_finite() {
                return Err(Error::invalid(format!(
                    "cloning loss became {lv} at iteration {it}"
                )));
            }
            stats.best_loss = stats.best_loss.min(lv);
            stats.final_loss = lv;
            stats.history.push((it, lv));
            progress(it, lv);
        }
    }
    stats.seconds = t0.elapsed().as_secs_f64();
    Ok((op, stats))
}
