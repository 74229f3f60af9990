//! Training and evaluation of the downstream networks (SPEC §6): an epoch loop over GPU batches,
//! the learning rate multiplied by a decay after each epoch, loss and accuracy accumulated on the
//! GPU and read once per epoch, the KL penalty added for `*-kl` models.

use crate::autograd::Tape;
use crate::data::Batcher;
use crate::error::{non_negative, positive, unit_decay};
use crate::models::Model;
use crate::nn::{Optimizer, OptimizerKind};
use crate::ops::kl::Penalty;
use crate::ops::loss;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The most epochs a model may train (SPEC's longest schedule is 100).
pub const MAX_EPOCHS: usize = 100_000;
/// The largest training batch.
pub const MAX_BATCH: usize = 1 << 16;

/// How a network is trained.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    /// Multiply the learning rate by this after every epoch (SPEC: 0.95).
    pub lr_decay: f32,
    /// "adam" (L2 weight decay) or "adamw" (decoupled).
    pub optimizer: String,
    pub weight_decay: f32,
    /// KL weight β for `*-kl` models.
    pub beta: f32,
    /// What β weighs: SPEC §5's KL (the default) or the squared distance to the clone.
    #[serde(default)]
    pub penalty: Penalty,
    pub seed: u64,
}

impl TrainConfig {
    /// Check every number before a run starts: at least one epoch and one image per batch, a
    /// finite positive learning rate, a decay in (0, 1], a finite non-negative weight decay and
    /// KL weight β, a known optimiser.
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::invalid("a batch size of 0: use at least 1"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("--epochs 0: use at least 1"));
        }
        if self.epochs > MAX_EPOCHS {
            return Err(Error::invalid(format!(
                "--epochs {}: use at most {MAX_EPOCHS}",
                self.epochs
            )));
        }
        if self.batch > MAX_BATCH {
            return Err(Error::invalid(format!(
                "a batch size of {}: use at most {MAX_BATCH}",
                self.batch
            )));
        }
        positive("learning rate (--lr)", self.lr)?;
        unit_decay("learning-rate decay", self.lr_decay)?;
        non_negative("weight decay", self.weight_decay)?;
        non_negative("KL weight β (--beta)", self.beta)?;
        self.optimizer_kind()?;
        Ok(())
    }

    /// The optimiser this configuration names.
    pub fn optimizer_kind(&self) -> Result<OptimizerKind> {
        match self.optimizer.as_str() {
            "adam" => Ok(OptimizerKind::adam(self.weight_decay)),
            "adamw" => Ok(OptimizerKind::adamw(self.weight_decay)),
            o => Err(Error::invalid(format!(
                "unknown optimiser \"{}\": use adam or adamw",
                o.escape_debug()
            ))),
        }
    }
}

/// One epoch's record.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    /// Mean classification loss over the epoch's batches.
    pub loss: f32,
    /// Mean KL penalty (β·KL) over the epoch, for KL models.
    pub penalty: Option<f32>,
    pub train_acc: f32,
    pub seconds: f64,
}

/// What a training run measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TrainResult {
    pub history: Vec<EpochLog>,
    pub test_acc: f32,
    pub seconds: f64,
    pub trainable_params: usize,
    /// Floating-point operations of the first training step (forward, backward and optimiser;
    /// matrix products and convolutions, see [`crate::Gpu::flops`]).
    #[serde(default)]
    pub step_flops: u64,
    /// Dispatches, bytes bound per kernel family and CPU recording time per training step, the
    /// mean over the steps after the first (the first builds pipelines); the last epoch's
    /// evaluation is not counted. None in results written before they were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_counts: Option<crate::gpu::StepCounts>,
    /// The same per batch of the evaluation after the last epoch (forward passes only, at the
    /// test batcher's batch size). None in results written before they were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_counts: Option<crate::gpu::StepCounts>,
}

/// Progress callback: (epoch, step in epoch, steps per epoch).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, usize);

/// Accuracy of a model on every batch of a batcher (no-grad tapes, counts summed on the GPU).
pub fn evaluate(model: &Model, batches: &Batcher) -> Result<f32> {
    let sums = loss::BatchSums::zeros(batches.gpu())?;
    let mut n = 0usize;
    for step in 0..batches.steps() {
        let b = batches.batch(step)?;
        let mut tape = Tape::no_grad();
        let x = tape.input(b.images.clone());
        let logits = model.forward(&mut tape, x, false, 0)?;
        loss::add_batch(tape.value(logits), &b.labels, &sums, false)?;
        n += b.len;
    }
    let c = if n == 0 { 0.0 } else { sums.correct.item()? };
    Ok(c / n.max(1) as f32)
}

/// Train a model for `cfg.epochs` epochs over `train`, then evaluate on `test`.
pub fn train(
    model: &Model,
    train: &mut Batcher,
    test: &Batcher,
    cfg: &TrainConfig,
    progress: Progress,
) -> Result<TrainResult> {
    train_with(model, train, test, cfg, progress, &mut |_| Ok(()))
}

/// `train`, calling `on_epoch` after every epoch whose loss is finite (the pipeline writes a
/// checkpoint there, so a later NaN leaves the last good one on disk).
pub fn train_with(
    model: &Model,
    train: &mut Batcher,
    test: &Batcher,
    cfg: &TrainConfig,
    progress: Progress,
    on_epoch: &mut dyn FnMut(&EpochLog) -> Result<()>,
) -> Result<TrainResult> {
    cfg.validate()?;
    let t0 = std::time::Instant::now();
    let params = model.params();
    let mut opt = Optimizer::new(cfg.optimizer_kind()?, cfg.lr, &params);
    let mut history = Vec::new();
    let mut global_step = 0u64;
    let mut step_flops = 0u64;
    let gpu = train.gpu().clone();
    let (start, mut after_first) = (gpu.counters(), None);
    for epoch in 0..cfg.epochs {
        let te = std::time::Instant::now();
        train.set_epoch(epoch)?;
        let steps = train.steps();
        let sums = StepSums::zeros(&gpu, model.kind.kl())?;
        let mut seen = 0usize;
        for step in 0..steps {
            crate::error::check_interrupt("training")?;
            let b = train.batch(step)?;
            let flops0 = gpu.flops();
            let seed = (cfg.seed as u32) ^ (global_step as u32).wrapping_mul(0x9E37_79B9);
            let penalty = (cfg.penalty, cfg.beta);
            train_step(model, &mut opt, &b.images, &b.labels, penalty, seed, &sums)?;
            if global_step == 0 {
                step_flops = gpu.flops() - flops0;
                after_first = Some(gpu.counters());
            }
            seen += b.len;
            global_step += 1;
            progress(epoch, step + 1, steps);
        }
        let loss = sums.batch.loss.item()? / steps.max(1) as f32;
        if !loss.is_finite() {
            return Err(Error::invalid(format!(
                "the training loss of {} became {loss} in epoch {} (by step {global_step}); lower the learning rate or β",
                model.kind,
                epoch + 1
            )));
        }
        let penalty = sums
            .penalty
            .map(|t| t.item())
            .transpose()?
            .map(|p| p / steps.max(1) as f32);
        let train_acc = sums.batch.correct.item()? / seen.max(1) as f32;
        history.push(EpochLog {
            epoch: epoch + 1,
            loss,
            penalty,
            train_acc,
            seconds: te.elapsed().as_secs_f64(),
        });
        on_epoch(history.last().expect("just pushed"))?;
        opt.lr *= cfg.lr_decay;
    }
    // The first step builds pipelines (and may have kernel variants chosen): the counts are the
    // steps after it, epoch boundaries included, where there are any.
    let end = gpu.counters();
    let step_counts = match after_first {
        Some(first) if global_step > 1 => end.since(&first).per_step(global_step - 1),
        _ => end.since(&start).per_step(global_step),
    };
    let before_eval = gpu.counters();
    let test_acc = evaluate(model, test)?;
    let eval_counts = gpu
        .counters()
        .since(&before_eval)
        .per_step(test.steps() as u64);
    Ok(TrainResult {
        history,
        test_acc,
        seconds: t0.elapsed().as_secs_f64(),
        trainable_params: model.trainable_count(),
        step_flops,
        step_counts: Some(step_counts),
        eval_counts: Some(eval_counts),
    })
}

/// The running sums of an epoch's steps, on the GPU: the batches' mean classification losses and
/// correct counts, and for `*-kl` models their KL penalties (β·KL).
pub struct StepSums {
    pub batch: loss::BatchSums,
    pub penalty: Option<Tensor>,
}

impl StepSums {
    /// Every sum at zero; a penalty sum when `kl`.
    pub fn zeros(gpu: &std::sync::Arc<crate::Gpu>, kl: bool) -> Result<StepSums> {
        Ok(StepSums {
            batch: loss::BatchSums::zeros(gpu)?,
            penalty: if kl {
                Some(Tensor::zeros(gpu, &[1])?)
            } else {
                None
            },
        })
    }
}

/// One training step on a batch: the forward pass with dropout masks from `seed`, cross-entropy
/// (plus, for `*-kl` models, `penalty`: the drift penalty and its weight β), the backward pass and the
/// optimiser's step; the gradients are zeroed after it. The batch's loss, correct count and
/// penalty are added to `sums`; nothing is read back.
///
/// The loss kernel writes the logits' gradient itself (with the loss and the count, one
/// dispatch), so the backward pass starts from the logits; the penalty, which depends on the
/// cloned tensors only, then adds its gradient to theirs ([`Model::add_kl_penalty`]).
pub fn train_step(
    model: &Model,
    opt: &mut Optimizer,
    images: &Tensor,
    labels: &Tensor,
    penalty: (Penalty, f32),
    seed: u32,
    sums: &StepSums,
) -> Result<()> {
    let mut tape = Tape::new();
    let x = tape.input(images.clone());
    let logits = model.forward(&mut tape, x, true, seed)?;
    let dlogits = loss::add_batch(tape.value(logits), labels, &sums.batch, true)?
        .expect("the gradient was asked for");
    tape.backward_with(logits, dlogits)?;
    drop(tape);
    match &sums.penalty {
        Some(sum) => model.add_kl_penalty(penalty.1, penalty.0, sum)?,
        None if model.kind.kl() => {
            return Err(Error::invalid(format!(
                "a step of {} needs a sum for its KL penalty (StepSums::zeros(gpu, true))",
                model.kind
            )))
        }
        None => {}
    }
    opt.step()?;
    opt.zero_grad();
    Ok(())
}
