//! The downstream phase (SPEC §4–§6): every model of every task trained over the seeds on the
//! clones, each seed's result and checkpoint stored with a hash of what made it, so `--resume`
//! reuses finished ones.

use super::evaluation::clones_unchanged;
use super::symmetry::{self, Symmetry};
use crate::checkpoint;
use crate::clone::CloneSet;
use crate::config::{ModelPlan, RunPlan};
use crate::data::{Batcher, Dataset, GpuSplit, Part};
use crate::files::{read_json, write_json};
use crate::models::Model;
use crate::progress::Reporter;
use crate::results::{KlTerm, LayerEquivariance, ModelReport};
use crate::rng::Rng;
use crate::train::{self, TrainResult};
use crate::{Error, Gpu, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The training phase of a run: what it trains on and where it writes.
pub struct Training<'a> {
    pub gpu: &'a Arc<Gpu>,
    pub plan: &'a RunPlan,
    /// The run folder: results and checkpoints go to its `models/`.
    pub out: &'a Path,
    pub resume: bool,
    pub clones: &'a CloneSet,
}

/// The data on the GPU.
struct Data {
    train: Arc<GpuSplit>,
    test: Arc<GpuSplit>,
}

impl Training<'_> {
    /// Train every model of every task over the seeds; one report per (task, model). When the
    /// run's time limit stops it ([`crate::error::stop_after`]), the reports of what was done
    /// (every model with at least one finished seed, over its finished seeds) and why it stopped.
    pub fn run(
        &self,
        ds: &Dataset,
        rep: &mut dyn Reporter,
    ) -> Result<(Vec<ModelReport>, Option<String>)> {
        let data = Data {
            train: GpuSplit::upload(self.gpu, &ds.train)?,
            test: GpuSplit::upload(self.gpu, &ds.test)?,
        };
        let mut results = Vec::new();
        for job in &self.plan.models {
            self.gpu.trim()?;
            self.gpu.reset_peak();
            let (r, stopped) = self.model(job, &data, rep)?;
            if let Some(mut r) = r {
                r.peak_bytes = self.gpu.pool_stats().peak_bytes;
                results.push(r);
            }
            if stopped.is_some() {
                return Ok((results, stopped));
            }
        }
        Ok((results, None))
    }

    /// One model on one task over the seeds: its report (None when the time limit stopped it
    /// before its first seed finished) and, when the time limit stopped it, why.
    fn model(
        &self,
        job: &ModelPlan,
        data: &Data,
        rep: &mut dyn Reporter,
    ) -> Result<(Option<ModelReport>, Option<String>)> {
        let mut accs = Vec::new();
        let mut secs = Vec::new();
        let mut params = 0;
        let mut unchanged = None;
        let mut history = Vec::new();
        let mut step_flops = 0;
        let mut counts = Vec::new();
        let mut eval_counts = Vec::new();
        let mut sym = Vec::new();
        let cfg = &self.plan.cfg;
        let mut stopped = None;
        for s in 0..cfg.seeds {
            let seed = cfg.seed.wrapping_add(s as u64);
            let (result, same, measured) = match self.seed(job, seed, data, rep) {
                Err(Error::Interrupted(why)) if crate::error::time_up() => {
                    stopped = Some(why);
                    break;
                }
                other => other?,
            };
            sym.push(measured);
            accs.push(result.test_acc);
            secs.push(result.seconds);
            params = result.trainable_params;
            step_flops = result.step_flops;
            counts.extend(result.step_counts.clone());
            eval_counts.extend(result.eval_counts.clone());
            if s == 0 {
                history = result.history.clone();
            }
            if let Some(sm) = same {
                unchanged = Some(unchanged.unwrap_or(true) && sm);
            }
        }
        if accs.is_empty() {
            return Ok((None, stopped));
        }
        let (mean, std) = mean_std(&accs);
        let s = seed_mean(&sym);
        let rotational = symmetry::rotational(job.task);
        let report = ModelReport {
            task: job.task_name.clone(),
            model: job.model,
            test_acc: accs,
            mean,
            std,
            test_samples: data.test.n,
            train_seconds: secs.iter().sum::<f64>() / secs.len().max(1) as f64,
            trainable_params: params,
            clones_unchanged: unchanged,
            history,
            peak_bytes: 0,
            step_flops,
            step_counts: crate::gpu::StepCounts::mean(&counts),
            eval_counts: crate::gpu::StepCounts::mean(&eval_counts),
            accuracy_by_rotation: rotational.then_some(s.orbit.accuracy),
            layer_equivariance: (!s.layers.is_empty()).then_some(s.layers),
            orbit_group: Some(s.orbit.group),
            orbit_consistency: Some(s.orbit.consistency),
            invariance_error: Some(s.orbit.invariance_error),
            kl_terms: (!s.kl.is_empty()).then_some(s.kl),
        };
        Ok((Some(report), stopped))
    }

    /// One seed: the stored result when `--resume` finds one with this hash, else trained (with a
    /// checkpoint after every good epoch). Also whether frozen clones stayed bit-identical, and
    /// SPEC §7's symmetry measures of the trained network.
    fn seed(
        &self,
        job: &ModelPlan,
        seed: u64,
        data: &Data,
        rep: &mut dyn Reporter,
    ) -> Result<(TrainResult, Option<bool>, Symmetry)> {
        let (task, model, arch) = (job.task, job.model, &job.arch);
        let tcfg = job.train_for(seed);
        let h = job.seed_hash(seed);
        let stem = job.stem(seed);
        let res_path = self.out.join("models").join(format!("{stem}.json"));
        type Stored = (String, TrainResult, Option<bool>, Symmetry);
        let cached: Option<Stored> = if self.resume {
            read_json(&res_path)
        } else {
            None
        };
        if let Some((ch, r, same, measured)) = cached {
            if ch == h {
                rep.phase(&format!("{} on {task}", model.name()), 1);
                rep.finish(&format!(
                    "{} on {task} (seed {seed}): reused, test accuracy {:.2}%",
                    model.name(),
                    100.0 * r.test_acc
                ));
                return Ok((r, same, measured));
            }
        }
        let mut rng = Rng::new(seed.wrapping_mul(7919).wrapping_add(17));
        let m = Model::new(self.gpu, model, arch, self.clones, &mut rng)?;
        let canvas = self.plan.cfg.canvas(task);
        let before = symmetry::layer_errors(&m, &data.test, task, canvas, symmetry::LAYER_DIGITS)?;
        let mut tb = Batcher::on(data.train.clone(), task, Part::Train, tcfg.batch, seed)?
            .with_canvas(canvas)?;
        let eb =
            Batcher::on(data.test.clone(), task, Part::Test, 256, seed)?.with_canvas(canvas)?;
        let total = (tb.steps() * tcfg.epochs) as u64;
        rep.phase(&format!("{} on {task} (seed {seed})", model.name()), total);
        let tt = std::time::Instant::now();
        let last_loss = std::cell::Cell::new(f32::NAN);
        let ckpt = self.out.join("models").join(format!("{stem}.safetensors"));
        let meta: HashMap<String, String> = [
            ("config_hash".to_string(), h.clone()),
            ("model".to_string(), model.name().to_string()),
            ("task".to_string(), job.task_name.clone()),
        ]
        .into();
        let r = train::train_with(
            &m,
            &mut tb,
            &eb,
            &tcfg,
            &mut |e, st, n| {
                let done = (e * n + st) as u64;
                let rate = done as f64 / tt.elapsed().as_secs_f64();
                let l = last_loss.get();
                let loss = if l.is_finite() {
                    format!("  loss {l:.3}")
                } else {
                    String::new()
                };
                rep.progress(
                    done,
                    &format!("epoch {}/{}{loss}  {rate:.1} steps/s", e + 1, tcfg.epochs),
                )
            },
            // A checkpoint after every good epoch: a NaN later leaves the last good one.
            &mut |log| {
                last_loss.set(log.loss);
                checkpoint::save(&ckpt, &m.params(), &meta)
            },
        )?;
        let same = clones_unchanged(model, &m, self.clones)?;
        let measured = symmetry::measure(&m, &data.test, task, canvas, &before)?;
        write_json(&res_path, &(h.clone(), &r, same, &measured))?;
        rep.finish(&format!(
            "{} on {task} (seed {seed}): test accuracy {:.2}%, {:.0} s",
            model.name(),
            100.0 * r.test_acc,
            r.seconds
        ));
        Ok((r, same, measured))
    }
}

/// The seeds' symmetry measures, averaged (the group and layer names of the first seed).
fn seed_mean(v: &[Symmetry]) -> Symmetry {
    let mut s = v[0].clone();
    let n = v.len() as f64;
    let mean = |f: &dyn Fn(&Symmetry) -> f64| v.iter().map(f).sum::<f64>() / n;
    for e in 0..s.orbit.accuracy.len() {
        s.orbit.accuracy[e] = mean(&|x| x.orbit.accuracy[e] as f64) as f32;
    }
    s.orbit.consistency = mean(&|x| x.orbit.consistency as f64) as f32;
    s.orbit.invariance_error = mean(&|x| x.orbit.invariance_error);
    s.layers = (0..s.layers.len())
        .map(|l| LayerEquivariance {
            layer: s.layers[l].layer.clone(),
            before: s.layers[l]
                .before
                .map(|_| mean(&|x| x.layers[l].before.unwrap_or(0.0))),
            after: mean(&|x| x.layers[l].after),
        })
        .collect();
    s.kl = (0..s.kl.len())
        .map(|t| {
            let opt = |f: &dyn Fn(&KlTerm) -> Option<f64>| {
                v.iter()
                    .all(|x| f(&x.kl[t]).is_some())
                    .then(|| mean(&|x| f(&x.kl[t]).unwrap_or(0.0)))
            };
            KlTerm {
                tensor: s.kl[t].tensor.clone(),
                kl: mean(&|x| x.kl[t].kl),
                l2: opt(&|k| k.l2),
                common_share: opt(&|k| k.common_share),
            }
        })
        .collect();
    s
}

/// Mean and sample standard deviation (0 for a single value).
fn mean_std(v: &[f32]) -> (f32, f32) {
    let n = v.len().max(1) as f32;
    let m = v.iter().sum::<f32>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}
