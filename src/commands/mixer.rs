//! `clone --kind mixer-conv | mixer-radial` (SPEC §8): train the MLP-Mixer student on its teacher,
//! measure it on fresh filters and inputs, and — in the same run — train the 9-block operator
//! clone of the same convolution, so the compute each needs for the same fidelity is measured
//! side by side. Writes `report.md`, `report.json`, `fidelity-vs-compute.svg` and the
//! checkpoints (`mixer/<kind>.safetensors`, `clones/z2<d>.safetensors`) in `--out`.

use crate::clone::mixer::{concat_all, MixerConfig, MixerTeacher};
use crate::clone::mixer_train::{train_mixer, EvalSet};
use crate::clone::train::{clone_random, CloneConfig, CloneStats};
use crate::clone::{ClonedConv, OperatorKind};
use crate::files::FolderLock;
use crate::ops::layout;
use crate::progress::{human, Reporter};
pub use crate::results::mixer::markdown;
use crate::results::mixer::{write_report, MixerReport, StudentReport, LEARNED};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result, Tape};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The mixer's knobs as a command line sets them; unset ones take the preset's (SPEC §8's for
/// `paper`).
#[derive(Clone, Debug)]
pub struct MixerArgs {
    /// Mixer kinds: training iterations (paper: 12,000 v5, 80,000 v6).
    pub iters: Option<usize>,
    /// Mixer kinds: kernel side k (paper: 3 v5, 5 v6).
    pub kernel: Option<usize>,
    /// Mixer kinds: channels of the teacher convolution, in and out (paper: 4).
    pub mixer_channels: Option<usize>,
    /// Mixer kinds: width of the mixers (paper: 24).
    pub mixer_width: Option<usize>,
    /// Mixer kinds: blocks per mixer (paper: 2).
    pub mixer_depth: Option<usize>,
    /// Mixer kinds: token-mixing expansion, T → m·T → T (paper: 4).
    pub mixer_token_mult: Option<usize>,
    /// Mixer kinds: channel-mixing hidden width (paper: 12).
    pub mixer_channel_hidden: Option<usize>,
    /// Mixer kinds: filters per iteration (paper: 50).
    pub mixer_filters: Option<usize>,
    /// Mixer kinds: inputs per filter (paper: 200 v5, 2000 v6).
    pub mixer_batch: Option<usize>,
    /// Mixer kinds: iterations per optimiser step (paper: 25 v5, 10 v6).
    pub mixer_accum: Option<usize>,
    /// Mixer kinds: AdamW learning rate (paper: 1e-3 v5, 2e-4 v6).
    pub mixer_lr: Option<f32>,
    /// Mixer kinds: optimiser steps of linear learning-rate warm-up (paper: 0).
    pub mixer_warmup: Option<usize>,
    /// Mixer kinds: learning-rate multiplier after every optimiser step (paper: 1, constant).
    pub mixer_lr_decay: Option<f32>,
    /// Mixer kinds: AdamW weight decay (paper: 0.01).
    pub mixer_wd: Option<f32>,
    /// Mixer kinds: global gradient-norm clip (paper: 1.0).
    pub mixer_clip: Option<f32>,
    /// Mixer kinds: iterations of the 9-block operator clone trained beside it (paper: 10,000).
    pub operator_iters: Option<usize>,
    /// Mixer kinds: held-out filters for fidelity and equivariance (default 8).
    pub eval_filters: usize,
    /// Mixer kinds: held-out inputs per filter (default 16).
    pub eval_inputs: usize,
}

impl Default for MixerArgs {
    fn default() -> MixerArgs {
        MixerArgs {
            iters: None,
            kernel: None,
            mixer_channels: None,
            mixer_width: None,
            mixer_depth: None,
            mixer_token_mult: None,
            mixer_channel_hidden: None,
            mixer_filters: None,
            mixer_batch: None,
            mixer_accum: None,
            mixer_lr: None,
            mixer_warmup: None,
            mixer_lr_decay: None,
            mixer_wd: None,
            mixer_clip: None,
            operator_iters: None,
            eval_filters: 8,
            eval_inputs: 16,
        }
    }
}

/// The teacher of a `--kind`, or None for the operator kinds.
pub fn mixer_kind(kind: &str) -> Option<MixerTeacher> {
    match kind {
        "mixer-conv" => Some(MixerTeacher::Conv),
        "mixer-radial" => Some(MixerTeacher::Radial),
        _ => None,
    }
}

/// The run's settings: the preset (`quick` or `paper`), then the flags.
pub fn mixer_config(
    teacher: MixerTeacher,
    preset: &str,
    dim: Option<usize>,
    seed: Option<u64>,
    a: &MixerArgs,
) -> Result<(MixerConfig, CloneConfig)> {
    let paper = match preset {
        "quick" => false,
        "paper" => true,
        p => {
            return Err(Error::invalid(format!(
                "unknown preset '{p}': use quick or paper"
            )))
        }
    };
    let base = if paper {
        MixerConfig::paper(teacher)
    } else {
        MixerConfig::quick(teacher)
    };
    let cfg = MixerConfig {
        d: dim.unwrap_or(base.d),
        k: a.kernel.unwrap_or(base.k),
        channels: a.mixer_channels.unwrap_or(base.channels),
        width: a.mixer_width.unwrap_or(base.width),
        depth: a.mixer_depth.unwrap_or(base.depth),
        token_mult: a.mixer_token_mult.unwrap_or(base.token_mult),
        channel_hidden: a.mixer_channel_hidden.unwrap_or(base.channel_hidden),
        filters: a.mixer_filters.unwrap_or(base.filters),
        batch: a.mixer_batch.unwrap_or(base.batch),
        iters: a.iters.unwrap_or(base.iters),
        accum: a.mixer_accum.unwrap_or(base.accum),
        lr: a.mixer_lr.unwrap_or(base.lr),
        weight_decay: a.mixer_wd.unwrap_or(base.weight_decay),
        clip: a.mixer_clip.unwrap_or(base.clip),
        seed: seed.unwrap_or(0),
        warmup: a.mixer_warmup.unwrap_or(base.warmup),
        lr_decay: a.mixer_lr_decay.unwrap_or(base.lr_decay),
        teacher,
    };
    cfg.check()?;
    if a.eval_filters == 0 || a.eval_inputs == 0 {
        return Err(Error::invalid(
            "mixer: --eval-filters and --eval-inputs must be at least 1",
        ));
    }
    // The operator clone of the same convolution (one operator serves every channel pair):
    // SPEC §3's recipe, shorter in the quick preset.
    let mut op = CloneConfig::paper(OperatorKind::Z2, cfg.d);
    op.seed = cfg.seed;
    if !paper {
        // A step every iteration, and room to reach the mixer's fidelity (it stops there).
        op.iters = 2000;
        op.accum = 1;
        op.filters = 32;
        op.batch = 64;
    }
    if let Some(i) = a.operator_iters {
        op.iters = i;
    }
    Ok((cfg, op))
}

fn curve(stats: &CloneStats, flops_per_iter: f64) -> Vec<(f64, f64)> {
    let ms = stats.target_mean_square.max(f32::MIN_POSITIVE) as f64;
    stats
        .history
        .iter()
        .map(|&(it, l)| (it as f64 * flops_per_iter, l as f64 / ms))
        .collect()
}

fn progress_fn<'a>(rep: &'a mut dyn Reporter, t0: Instant) -> impl FnMut(usize, f32) + 'a {
    move |it, loss| {
        let rate = it as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        rep.progress(it as u64, &format!("loss {loss:.3e}, {rate:.1} it/s"));
    }
}

/// The operator clone applied as the multi-channel layer of SPEC §4 with each held-out filter's
/// taps as its weights: (F·bs, C, d, d) → (F·bs, C, o, o).
fn operator_map(layer: &ClonedConv, weights: &Tensor, x: &Tensor) -> Result<Tensor> {
    let ws = weights.shape().to_vec();
    let (f, c) = (ws[0], ws[1]);
    let bs = x.shape()[0] / f.max(1);
    let mut parts = Vec::with_capacity(f);
    for i in 0..f {
        layout::slice(weights, 0, i, 1)?
            .reshape(&[c, c, ws[3] * ws[4]])?
            .copy_into(&layer.weight.value())?;
        let mut tape = Tape::no_grad();
        let xv = tape.input(layout::slice(x, 0, i * bs, bs)?);
        let y = layer.forward(&mut tape, xv)?;
        parts.push(tape.value(y).clone());
    }
    concat_all(parts, 0)
}

/// The whole `clone --kind mixer-*` run into `out`.
pub fn mixer_command(
    gpu: &Arc<Gpu>,
    cfg: &MixerConfig,
    op_cfg: &CloneConfig,
    args: &MixerArgs,
    out: &Path,
    rep: &mut dyn Reporter,
) -> Result<MixerReport> {
    let with_operator = cfg.teacher == MixerTeacher::Conv && cfg.k == 3;
    if with_operator {
        op_cfg.check(gpu)?;
    }
    let _lock = FolderLock::acquire(out)?;
    let t_run = Instant::now();
    let name = cfg.teacher.name();
    let log_every = (cfg.iters / 50).max(1);
    rep.phase(&format!("{name} d={} k={}", cfg.d, cfg.k), cfg.iters as u64);
    let t0 = Instant::now();
    let (model, stats) = train_mixer(gpu, cfg, log_every, &mut progress_fn(rep, t0))?;
    let mut meta = HashMap::new();
    meta.insert("kind".to_string(), name.to_string());
    meta.insert(
        "config".to_string(),
        serde_json::to_string(cfg).expect("serialisable"),
    );
    let ckpt = out.join("mixer").join(format!("{name}.safetensors"));
    crate::checkpoint::save(&ckpt, &model.params(), &meta)?;
    let set = EvalSet::new(
        gpu,
        cfg,
        args.eval_filters,
        args.eval_inputs,
        cfg.seed ^ 0xe7a1,
    )?;
    let phi = |x: &Tensor| model.predict(x, &set.filters.tokens);
    let fid = set.fidelity(&phi)?;
    let (eq, teacher_eq) = set.equivariance(cfg, &phi)?;
    let flops = cfg.iteration_flops();
    let mixer = StudentReport {
        name: "mixer".into(),
        parameters: model.parameter_count(),
        iterations: cfg.iters,
        seconds: stats.seconds,
        flops_per_iteration: flops,
        curve: curve(&stats, flops),
        flops_to_mixer_fidelity: Some(cfg.iters as f64 * flops),
        fidelity: fid.clone(),
        equivariance_error: eq,
        stats,
    };
    rep.finish(&format!(
        "{name}: fidelity MSE {:.3e} ({:.3e} relative), equivariance error {eq:.2e}, {}",
        fid.mse,
        fid.relative(),
        human(Duration::from_secs_f64(mixer.seconds))
    ));
    // The operator is trained to the mixer's fidelity: it stops at the first log point whose
    // training relative MSE reaches the mixer's held-out one (on a fine log grid).
    let op_cfg = &CloneConfig {
        stop_at: (fid.relative() < LEARNED).then_some(fid.relative() as f32),
        ..op_cfg.clone()
    };
    let operator = if with_operator {
        rep.phase(
            &format!("9-block operator z2 d={}", cfg.d),
            op_cfg.iters as u64,
        );
        let t0 = Instant::now();
        let log = (op_cfg.iters / 500).max(1);
        let (op, st) = clone_random(gpu, op_cfg, log, &mut progress_fn(rep, t0))?;
        let done = st.history.last().map_or(op_cfg.iters, |h| h.0);
        let ckpt = out.join("clones").join(format!("z2{}.safetensors", cfg.d));
        crate::checkpoint::save(
            &ckpt,
            &op.params(),
            &crate::clone::io::clone_metadata(&op, "mixer-side-by-side"),
        )?;
        let params = op.params().iter().map(|p| p.numel()).sum();
        let mut rng = Rng::new(cfg.seed);
        let layer = ClonedConv::new(gpu, "operator", op, cfg.channels, cfg.channels, &mut rng)?;
        layer.bias.value().fill_(0.0)?;
        let w = &set.filters.weights;
        let phi = |x: &Tensor| operator_map(&layer, w, x);
        let ofid = set.fidelity(&phi)?;
        let (oeq, _) = set.equivariance(cfg, &phi)?;
        let (n_out, n_in) = crate::clone::ClonedOperator::io(cfg.d);
        let oflops = 3.0
            * op_cfg.filters as f64
            * 2.0
            * (op_cfg.nb * n_out * n_in + n_out * n_in * op_cfg.batch) as f64;
        let c = curve(&st, oflops);
        rep.finish(&format!(
            "9-block operator: fidelity MSE {:.3e} ({:.3e} relative), {}",
            ofid.mse,
            ofid.relative(),
            human(Duration::from_secs_f64(st.seconds))
        ));
        Some(StudentReport {
            name: "9-block operator".into(),
            parameters: params,
            iterations: done,
            seconds: st.seconds,
            flops_per_iteration: oflops,
            flops_to_mixer_fidelity: first_below(&c, fid.relative()),
            curve: c,
            fidelity: ofid,
            equivariance_error: oeq,
            stats: st,
        })
    } else {
        None
    };
    let compute_ratio = operator
        .as_ref()
        .filter(|_| fid.relative() < LEARNED)
        .and_then(|o| o.flops_to_mixer_fidelity)
        .map(|f| mixer.total_flops() / f);
    let report = MixerReport {
        kind: name.into(),
        adapter: gpu.describe(),
        config: cfg.clone(),
        operator_config: with_operator.then(|| op_cfg.clone()),
        teacher_equivariance_error: teacher_eq,
        mixer,
        operator,
        compute_ratio,
        seconds: t_run.elapsed().as_secs_f64(),
    };
    write_report(&report, out)?;
    Ok(report)
}

/// The first cumulative FLOPs at which a curve's relative MSE is at or below `target`.
fn first_below(curve: &[(f64, f64)], target: f64) -> Option<f64> {
    curve.iter().find(|(_, r)| *r <= target).map(|(f, _)| *f)
}
