//! `symclone-gpu run`: the whole method end to end on the GPU — clone the equivariant layers
//! (SPEC §3), train the downstream networks on the three tasks (SPEC §4–§6), and write the report
//! (SPEC §7): `report.json`, `report.md`, safetensors checkpoints and PNG pictures. Every phase's
//! result is stored with a hash of the configuration that made it, so `--resume` skips what is done.

pub mod config;

pub use crate::clone::io::{clone_metadata, load_clone, load_clones};
pub use config::{CloneSettings, RunConfig, TaskPlan};

use crate::clone::operator::K;
use crate::clone::{
    clone_random, CloneConfig, CloneStats, ClonedConv, ClonedOperator, OperatorKind,
};
use crate::data::resize::prepare_digits;
use crate::data::{fnv1a, Batcher, Dataset, GpuSplit, Part, Task};
use crate::equivariance::{equivariance_error, Group};
use crate::models::{clone_key, clones_needed, Arch, CloneSet, Model, ModelKind};
use crate::ops::{gconv, transform};
use crate::report::{checkpoint, plot, write_atomic};
use crate::rng::Rng;
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::train::{self, TrainResult};
use crate::{Error, Gpu, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// Where a run reports progress (the binary draws progress bars; tests stay silent).
pub trait Reporter {
    /// A phase of `total` units starts.
    fn phase(&mut self, name: &str, total: u64);
    /// Progress within the phase, with a short status (loss, speed).
    fn progress(&mut self, pos: u64, status: &str);
    /// The phase ended with a one-line summary.
    fn finish(&mut self, summary: &str);
}

/// A reporter that says nothing.
pub struct Silent;

impl Reporter for Silent {
    fn phase(&mut self, _: &str, _: u64) {}
    fn progress(&mut self, _: u64, _: &str) {}
    fn finish(&mut self, _: &str) {}
}

/// One cloned operator's results.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CloneReport {
    pub kind: OperatorKind,
    pub d: usize,
    /// "random" or "teacher".
    #[serde(default)]
    pub source: String,
    /// Cloning runs made (more than 1 when a run stalled and was retried).
    #[serde(default)]
    pub attempts: usize,
    pub stats: CloneStats,
    /// Relative MSE: best loss divided by the target's mean square.
    pub best_relative_mse: f32,
    /// `‖Φ(g·x) − g·Φ(x)‖ / ‖Φ(x)‖` of the clone and of the true layer, averaged over the group.
    pub equivariance_clone: f64,
    pub equivariance_true: f64,
    pub config_hash: String,
}

/// One model on one task, over the seeds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ModelReport {
    pub task: String,
    pub model: ModelKind,
    pub test_acc: Vec<f32>,
    pub mean: f32,
    pub std: f32,
    pub train_seconds: f64,
    pub trainable_params: usize,
    /// For frozen cloned models: whether every cloned tensor was bit-identical after training.
    pub clones_unchanged: Option<bool>,
    pub history: Vec<crate::train::EpochLog>,
}

/// SPEC §3's fidelity check.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Fidelity {
    /// MSE of (clone lift → clone P4) against (true lift → true P4) on one real digit with random
    /// filters drawn uniform on [0, 1).
    pub mse: f64,
    /// The mean square of the true output, for scale.
    pub target_mean_square: f64,
}

/// Everything a run measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub version: String,
    pub adapter: String,
    pub data: String,
    pub config: RunConfig,
    pub config_hash: String,
    pub clones: Vec<CloneReport>,
    pub fidelity: Option<Fidelity>,
    pub results: Vec<ModelReport>,
    pub seconds: f64,
}

fn hash_of<T: serde::Serialize>(v: &T) -> String {
    format!(
        "{:016x}",
        fnv1a(serde_json::to_string(v).expect("serialisable").as_bytes())
    )
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    write_atomic(
        path,
        serde_json::to_string_pretty(v)
            .expect("serialisable")
            .as_bytes(),
    )
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The configuration's data: the embedded default or `--data`, subset, brought to `side`.
pub fn load_data(cfg: &RunConfig) -> Result<Dataset> {
    let ds = match &cfg.data {
        None => Dataset::embedded()?,
        Some(dir) => Dataset::load(dir)?,
    }
    .subset(cfg.train_n, cfg.test_n)?;
    Ok(Dataset {
        train: prepare_digits(&ds.train, cfg.side, cfg.downsample)?,
        test: prepare_digits(&ds.test, cfg.side, cfg.downsample)?,
        source: ds.source,
    })
}

/// What teacher-sourced cloning takes from a trained teacher: the filter codes of the layer whose
/// inputs are d×d, the input channel of each code, the teacher's inputs to that layer on
/// group-transformed digits, and their channel count.
pub struct TeacherMaterial {
    pub codes: Vec<f32>,
    pub channels: Vec<usize>,
    pub features: Vec<f32>,
    pub cin: usize,
}

/// Train the teacher of one family of operators (gcnn for Lift/P4 on the first C4 task of the run,
/// cnn for Z2 on trans-sb) and take its material for every (kind, side) in `family`.
fn teacher_material(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    family: &[(OperatorKind, usize)],
    ds: &Dataset,
    rep: &mut dyn Reporter,
) -> Result<BTreeMap<(u8, usize), TeacherMaterial>> {
    let Some(&(first_kind, _)) = family.first() else {
        return Ok(BTreeMap::new());
    };
    let (model, wanted_task, probe_task) = match first_kind {
        OperatorKind::Z2 => (ModelKind::Cnn, vec![Task::TransSb], Task::TransSb),
        _ => (
            ModelKind::Gcnn,
            vec![Task::Symmetric, Task::RotSb, Task::Plain],
            Task::RotSb,
        ),
    };
    let plan = cfg
        .tasks
        .iter()
        .find(|t| {
            t.task
                .parse::<Task>()
                .is_ok_and(|x| wanted_task.contains(&x))
        })
        .cloned()
        .or_else(|| {
            // A run of only the other family: train the teacher with that family's settings.
            cfg.tasks.first().cloned().map(|mut t| {
                t.task = wanted_task[0].name().to_string();
                t
            })
        })
        .ok_or_else(|| {
            Error::invalid("teacher-sourced cloning needs a task to train the teacher on")
        })?;
    let task: Task = plan.task.parse()?;
    let arch = arch_for(cfg, model, task);
    let mut rng = Rng::new(cfg.seed.wrapping_add(4242));
    let m = Model::new(gpu, model, &arch, &CloneSet::new(), &mut rng)?;
    let mut tb = Batcher::new(
        gpu,
        &ds.train,
        task,
        Part::Train,
        plan.train.batch,
        cfg.seed,
    )?;
    let eb = Batcher::new(gpu, &ds.test, task, Part::Test, 256, cfg.seed)?;
    let total = (tb.steps() * plan.train.epochs) as u64;
    rep.phase(&format!("teacher {} on {task}", model.name()), total);
    let tr = train::train(&m, &mut tb, &eb, &plan.train, &mut |e, st, n| {
        rep.progress((e * n + st) as u64, &format!("epoch {}", e + 1))
    })?;
    rep.finish(&format!(
        "teacher {} on {task}: test accuracy {:.2}% (its filters and feature maps feed the clones)",
        model.name(),
        100.0 * tr.test_acc
    ));
    // Group-transformed digits: rotated (C4) or translated (T(2)) training images.
    let probe = Batcher::new(
        gpu,
        &ds.train,
        probe_task,
        Part::Train,
        256,
        cfg.seed ^ 0x7EAC,
    )?
    .batch(0)?;
    let inputs = m.layer_inputs(&probe.images)?;
    let layer_sides = arch.feature_sides()?;
    let mut out = BTreeMap::new();
    for &(kind, d) in family {
        let l = (0..4)
            .find(|&l| layer_sides[l] == d && (kind == OperatorKind::Lift) == (l == 0))
            .ok_or_else(|| Error::invalid(format!("no layer of the {} teacher takes {d}×{d} inputs for a {} clone (its layers take {layer_sides:?})", model.name(), kind.name())))?;
        let (codes, channels, cin) = m.layer_codes(l)?;
        out.insert(
            clone_key(kind, d),
            TeacherMaterial {
                codes,
                channels,
                features: inputs[l].to_vec()?,
                cin,
            },
        );
    }
    Ok(out)
}

/// The architecture of a model on a task under this configuration.
pub fn arch_for(cfg: &RunConfig, model: ModelKind, task: Task) -> Arch {
    let side = task.canvas(cfg.side).size;
    let mut a = Arch::paper(model, side, task.num_classes());
    if let Some(c) = cfg.channels {
        a.channels = c;
    }
    if let Some(m) = &cfg.mlp {
        a.mlp = m.clone();
    }
    a
}

/// A single-channel layer over an operator, with filter `code` and no bias.
fn single_channel(gpu: &Arc<Gpu>, op: &ClonedOperator, code: &[f32]) -> Result<ClonedConv> {
    let mut rng = Rng::new(0);
    let layer = ClonedConv::new(gpu, "probe", op.clone(), 1, 1, &mut rng)?;
    layer.weight.value().write_slice(code)?;
    layer.bias.value().write_slice(&[0.0])?;
    Ok(layer)
}

/// The true single-channel layer of a kind with filter `code` (no bias), as a map on tensors.
fn true_layer(gpu: &Arc<Gpu>, kind: OperatorKind, code: &[f32], x: &Tensor) -> Result<Tensor> {
    let w = match kind {
        OperatorKind::P4 => Tensor::from_slice(gpu, &[1, 1, 4, K, K], code)?,
        _ => Tensor::from_slice(gpu, &[1, 1, K, K], code)?,
    };
    match kind {
        OperatorKind::Z2 => crate::ops::conv::conv2d(x, &w, None, 0),
        OperatorKind::Lift => gconv::lift_c4(x, &w, None, 0),
        OperatorKind::P4 => gconv::p4_conv(x, &w, None, 0),
    }
}

fn clone_map(layer: &ClonedConv, x: &Tensor) -> Result<Tensor> {
    let mut tape = Tape::no_grad();
    let v = tape.input(x.clone());
    let y = layer.forward(&mut tape, v)?;
    Ok(tape.value(y).clone())
}

/// Equivariance errors (clone, true layer) of a cloned operator on Gaussian inputs.
pub fn operator_equivariance(gpu: &Arc<Gpu>, op: &ClonedOperator, seed: u64) -> Result<(f64, f64)> {
    let mut rng = Rng::new(seed);
    let code = rng.normal_vec(op.kind.code_len());
    let d = op.d;
    let shape: Vec<usize> = if op.kind == OperatorKind::P4 {
        vec![4, 1, 4, d, d]
    } else {
        vec![4, 1, d, d]
    };
    let x = Tensor::from_slice(gpu, &shape, &rng.normal_vec(shape.iter().product()))?;
    let group = match op.kind {
        OperatorKind::Z2 => Group::Translations {
            shifts: vec![(1, 2), (-2, 1), (3, -1)],
            margin: 0,
        },
        _ => Group::C4,
    };
    let layer = single_channel(gpu, op, &code)?;
    let ec = equivariance_error(&|t: &Tensor| clone_map(&layer, t), &x, &group)?;
    let et = equivariance_error(&|t: &Tensor| true_layer(gpu, op.kind, &code, t), &x, &group)?;
    Ok((ec, et))
}

/// SPEC §3's fidelity: (clone lift → clone P4) against (true lift → true P4) on one digit, with
/// random filters uniform on [0, 1).
pub fn fidelity(
    gpu: &Arc<Gpu>,
    lift: &ClonedOperator,
    p4: &ClonedOperator,
    digit: &[f32],
    seed: u64,
) -> Result<(Fidelity, Vec<Vec<f32>>)> {
    let mut rng = Rng::new(seed);
    let c1 = rng.uniform_vec(K * K, 0.0, 1.0);
    let c2 = rng.uniform_vec(4 * K * K, 0.0, 1.0);
    let d = lift.d;
    let x = Tensor::from_slice(gpu, &[1, 1, d, d], digit)?;
    let l1 = single_channel(gpu, lift, &c1)?;
    let l2 = single_channel(gpu, p4, &c2)?;
    let yc = clone_map(&l2, &clone_map(&l1, &x)?)?;
    let yt = true_layer(
        gpu,
        OperatorKind::P4,
        &c2,
        &true_layer(gpu, OperatorKind::Lift, &c1, &x)?,
    )?;
    let (a, b) = (yc.to_vec()?, yt.to_vec()?);
    let mse = a
        .iter()
        .zip(&b)
        .map(|(u, v)| (*u as f64 - *v as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    let ms = b.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / b.len() as f64;
    // Pictures: the four rotation planes of the true and the cloned lift output, for the digit
    // and for the digit rotated by 90° (whose planes are the originals rotated and rolled).
    let mut maps = Vec::new();
    let xr = transform::rot90(&x, 1)?;
    for input in [&x, &xr] {
        let t = true_layer(gpu, OperatorKind::Lift, &c1, input)?.to_vec()?;
        let c = clone_map(&l1, input)?.to_vec()?;
        let plane = (d - 2) * (d - 2);
        for src in [&t, &c] {
            for r in 0..4 {
                maps.push(src[r * plane..(r + 1) * plane].to_vec());
            }
        }
    }
    Ok((
        Fidelity {
            mse,
            target_mean_square: ms,
        },
        maps,
    ))
}

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

/// Clone every (kind, side) in `needed` (or reuse a finished clone on `--resume`), writing
/// `clones/<kind><d>.safetensors` and `.json` under `out`.
pub fn clone_phase(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    needed: &[(OperatorKind, usize)],
    out: &Path,
    resume: bool,
    ds: &Dataset,
    rep: &mut dyn Reporter,
) -> Result<(CloneSet, Vec<CloneReport>)> {
    std::fs::create_dir_all(out.join("clones")).map_err(|e| io_err(out, e))?;
    let teacher = cfg.clone.source == "teacher";
    let mut material: BTreeMap<(u8, usize), TeacherMaterial> = BTreeMap::new();
    let mut clones: CloneSet = BTreeMap::new();
    let mut clone_reports = Vec::new();
    for (i, &(kind, d)) in needed.iter().enumerate() {
        let ccfg = cfg
            .clone
            .config(kind, d, cfg.seed.wrapping_add(1000 + i as u64));
        let h = hash_of(&(&ccfg, &cfg.clone.source));
        let stem = format!("{}{d}", kind.name());
        let ckpt = out.join("clones").join(format!("{stem}.safetensors"));
        let meta_path = out.join("clones").join(format!("{stem}.json"));
        let mut rng = Rng::new(ccfg.seed);
        let fresh = ClonedOperator::new(gpu, kind, d, ccfg.nb, ccfg.m, &mut rng)?;
        let expect = clone_metadata(&fresh, &h);
        let cached: Option<CloneReport> = if resume { read_json(&meta_path) } else { None };
        let (report, op) = match cached {
            Some(r)
                if r.config_hash == h
                    && checkpoint::load(&ckpt, &fresh.params(), &expect).is_ok() =>
            {
                rep.phase(&format!("clone {stem}"), 1);
                rep.finish(&format!(
                    "clone {stem}: reused (best MSE {:.2e})",
                    r.stats.best_loss
                ));
                (r, fresh)
            }
            _ => {
                rep.phase(&format!("clone {stem}"), ccfg.iters as u64);
                let tc = std::time::Instant::now();
                if teacher && !material.contains_key(&clone_key(kind, d)) {
                    // One teacher per family (gcnn for Lift and P4, cnn for Z2), trained once.
                    let z2 = |k: OperatorKind| k == OperatorKind::Z2;
                    let family: Vec<(OperatorKind, usize)> = needed
                        .iter()
                        .copied()
                        .filter(|n| z2(n.0) == z2(kind))
                        .collect();
                    material.extend(teacher_material(gpu, cfg, &family, ds, rep)?);
                    rep.phase(&format!("clone {stem}"), ccfg.iters as u64);
                }
                let mut progress = |it: usize, l: f32| {
                    let rate = it as f64 / tc.elapsed().as_secs_f64();
                    rep.progress(it as u64, &format!("MSE {l:.3e}  {rate:.1} it/s"))
                };
                // A run that ends above the stall threshold sat at a saddle (two blocks merged:
                // the 8-block floor is 1/9 relative); retry it from the next seed.
                let mut attempts = 0;
                let (op, stats) = loop {
                    attempts += 1;
                    let acfg = CloneConfig {
                        seed: ccfg.seed.wrapping_add(7919 * (attempts - 1)),
                        ..ccfg.clone()
                    };
                    let got = match material.get(&clone_key(kind, d)) {
                        Some(t) => crate::clone::clone_from_teacher(
                            gpu,
                            &acfg,
                            &t.codes,
                            &t.channels,
                            &t.features,
                            t.cin,
                            10,
                            &mut progress,
                        )?,
                        None => clone_random(gpu, &acfg, 10, &mut progress)?,
                    };
                    if got.1.best_relative() <= cfg.clone.stall
                        || attempts > cfg.clone.retries as u64
                    {
                        break got;
                    }
                };
                let (ec, et) = operator_equivariance(gpu, &op, 7)?;
                let r = CloneReport {
                    attempts: attempts as usize,
                    kind,
                    d,
                    source: cfg.clone.source.clone(),
                    best_relative_mse: stats.best_relative(),
                    stats,
                    equivariance_clone: ec,
                    equivariance_true: et,
                    config_hash: h.clone(),
                };
                checkpoint::save(&ckpt, &op.params(), &expect)?;
                write_json(&meta_path, &r)?;
                rep.finish(&format!(
                    "clone {stem}: best MSE {:.2e} (relative {:.1e}), equivariance error {:.1e} (true layer {:.1e}), {:.0} s",
                    r.stats.best_loss, r.best_relative_mse, ec, et, r.stats.seconds
                ));
                (r, op)
            }
        };
        clone_reports.push(report);
        clones.insert(clone_key(kind, d), op);
    }
    Ok((clones, clone_reports))
}

/// Run the whole pipeline into `out`. `given` supplies ready clones (from `--clones`) instead of
/// cloning.
pub fn run(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    out: &Path,
    resume: bool,
    given: Option<CloneSet>,
    rep: &mut dyn Reporter,
) -> Result<Report> {
    cfg.validate()?;
    let t0 = std::time::Instant::now();
    std::fs::create_dir_all(out.join("clones")).map_err(|e| io_err(out, e))?;
    std::fs::create_dir_all(out.join("models")).map_err(|e| io_err(out, e))?;
    write_json(&out.join("config.json"), cfg)?;
    let ds = load_data(cfg)?;
    let data_desc = format!(
        "{} ({} train, {} test, {})",
        ds.source,
        ds.train.n,
        ds.test.n,
        if cfg.downsample {
            format!("halved to 14×14 and padded to {0}×{0}", cfg.side)
        } else {
            format!("{0}×{0} centre crop", cfg.side)
        }
    );
    let data_hash = format!(
        "{:016x}",
        fnv1a(&ds.train.images)
            ^ fnv1a(&ds.test.images).rotate_left(1)
            ^ fnv1a(&ds.train.labels).rotate_left(2)
    );

    // ---- Phase 1: clones ----
    let mut needed: Vec<(OperatorKind, usize)> = Vec::new();
    for t in &cfg.tasks {
        let task: Task = t.task.parse()?;
        for &m in &t.models {
            for k in clones_needed(m, &arch_for(cfg, m, task))? {
                if !needed.contains(&k) {
                    needed.push(k);
                }
            }
        }
    }
    let (clones, clone_reports) = match given {
        Some(set) => {
            for &(kind, d) in &needed {
                if !set.contains_key(&clone_key(kind, d)) {
                    let have: Vec<String> = set
                        .values()
                        .map(|o| format!("{}{}", o.kind.name(), o.d))
                        .collect();
                    return Err(Error::invalid(format!(
                        "the clones given hold no {} clone for {d}×{d} inputs, which this model needs (they hold: {}); clone one with `symclone-gpu clone --kind {} --dim {d}`",
                        kind.name(),
                        have.join(", "),
                        kind.name()
                    )));
                }
            }
            (set, Vec::new())
        }
        None => clone_phase(gpu, cfg, &needed, out, resume, &ds, rep)?,
    };
    let lift = clones.get(&clone_key(OperatorKind::Lift, cfg.side));
    let p4 = clones.get(&clone_key(OperatorKind::P4, cfg.side - 2));
    let fid = match (lift, p4) {
        (Some(l), Some(p)) => {
            let digit: Vec<f32> = ds.test.image(0).iter().map(|&v| v as f32 / 255.0).collect();
            let (f, maps) = fidelity(gpu, l, p, &digit, cfg.seed)?;
            crate::data::grid::write_png(
                &out.join("feature-maps.png"),
                &plot::panels(&maps, cfg.side - 2, 4, 4),
            )?;
            Some(f)
        }
        _ => None,
    };
    if !clone_reports.is_empty() {
        let series: Vec<Vec<(f64, f64)>> = clone_reports
            .iter()
            .map(|c| {
                c.stats
                    .history
                    .iter()
                    .map(|&(i, l)| (i as f64, l as f64))
                    .collect()
            })
            .collect();
        plot::write_line_plot(&out.join("clone-loss.png"), &series, true)?;
    }

    // ---- Phase 2: downstream training ----
    let train_split = GpuSplit::upload(gpu, &ds.train)?;
    let test_split = GpuSplit::upload(gpu, &ds.test)?;
    let mut results = Vec::new();
    let mut curves = Vec::new();
    for plan in &cfg.tasks {
        let task: Task = plan.task.parse()?;
        for &model in &plan.models {
            let arch = arch_for(cfg, model, task);
            let mut accs = Vec::new();
            let mut secs = Vec::new();
            let mut params = 0;
            let mut unchanged = None;
            let mut history = Vec::new();
            for s in 0..cfg.seeds {
                let seed = cfg.seed.wrapping_add(s as u64);
                let tcfg = crate::train::TrainConfig {
                    seed,
                    ..plan.train.clone()
                };
                let clone_hashes: Vec<&str> = clones_needed(model, &arch)?
                    .iter()
                    .filter_map(|&(k, d)| {
                        clone_reports
                            .iter()
                            .find(|c| c.kind == k && c.d == d)
                            .map(|c| c.config_hash.as_str())
                    })
                    .collect();
                let h = hash_of(&(&arch, &tcfg, model, &plan.task, &data_hash, &clone_hashes));
                let stem = format!("{}-{}-s{seed}", plan.task, model.name());
                let res_path = out.join("models").join(format!("{stem}.json"));
                let cached: Option<(String, TrainResult, Option<bool>)> =
                    if resume { read_json(&res_path) } else { None };
                let (result, same) = match cached {
                    Some((ch, r, same)) if ch == h => {
                        rep.phase(&format!("{} on {task}", model.name()), 1);
                        rep.finish(&format!(
                            "{} on {task} (seed {seed}): reused, test accuracy {:.2}%",
                            model.name(),
                            100.0 * r.test_acc
                        ));
                        (r, same)
                    }
                    _ => {
                        let mut rng = Rng::new(seed.wrapping_mul(7919).wrapping_add(17));
                        let m = Model::new(gpu, model, &arch, &clones, &mut rng)?;
                        let mut tb =
                            Batcher::on(train_split.clone(), task, Part::Train, tcfg.batch, seed)?;
                        let eb = Batcher::on(test_split.clone(), task, Part::Test, 256, seed)?;
                        let total = (tb.steps() * tcfg.epochs) as u64;
                        rep.phase(&format!("{} on {task} (seed {seed})", model.name()), total);
                        let tt = std::time::Instant::now();
                        let last_loss = std::cell::Cell::new(f32::NAN);
                        let ckpt = out.join("models").join(format!("{stem}.safetensors"));
                        let meta: HashMap<String, String> = [
                            ("config_hash".to_string(), h.clone()),
                            ("model".to_string(), model.name().to_string()),
                            ("task".to_string(), plan.task.clone()),
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
                                    &format!(
                                        "epoch {}/{}{loss}  {rate:.1} steps/s",
                                        e + 1,
                                        tcfg.epochs
                                    ),
                                )
                            },
                            // A checkpoint after every good epoch: a NaN later leaves the last good one.
                            &mut |log| {
                                last_loss.set(log.loss);
                                checkpoint::save(&ckpt, &m.params(), &meta)
                            },
                        )?;
                        let same = if model.cloned().is_some() && !model.kl() {
                            let mut all = true;
                            for p in m.cloned_params() {
                                let key = p.name().to_string();
                                let orig = clones
                                    .values()
                                    .flat_map(|c| c.params())
                                    .find(|q| q.name() == key);
                                if let Some(o) = orig {
                                    let (a, b) = (p.value().to_vec()?, o.value().to_vec()?);
                                    all &=
                                        a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
                                }
                            }
                            Some(all)
                        } else {
                            None
                        };
                        write_json(&res_path, &(h.clone(), &r, same))?;
                        rep.finish(&format!(
                            "{} on {task} (seed {seed}): test accuracy {:.2}%, {:.0} s",
                            model.name(),
                            100.0 * r.test_acc,
                            r.seconds
                        ));
                        (r, same)
                    }
                };
                accs.push(result.test_acc);
                secs.push(result.seconds);
                params = result.trainable_params;
                if s == 0 {
                    history = result.history.clone();
                }
                if let Some(sm) = same {
                    unchanged = Some(unchanged.unwrap_or(true) && sm);
                }
            }
            let (mean, std) = mean_std(&accs);
            curves.push(
                history
                    .iter()
                    .map(|e| (e.epoch as f64, e.loss as f64))
                    .collect::<Vec<_>>(),
            );
            results.push(ModelReport {
                task: plan.task.clone(),
                model,
                test_acc: accs,
                mean,
                std,
                train_seconds: secs.iter().sum::<f64>() / secs.len().max(1) as f64,
                trainable_params: params,
                clones_unchanged: unchanged,
                history,
            });
        }
    }
    if !curves.is_empty() {
        plot::write_line_plot(&out.join("train-loss.png"), &curves, false)?;
    }
    let report = Report {
        version: env!("CARGO_PKG_VERSION").to_string(),
        adapter: gpu.describe(),
        data: data_desc,
        config: cfg.clone(),
        config_hash: hash_of(cfg),
        clones: clone_reports,
        fidelity: fid,
        results,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_json(&out.join("report.json"), &report)?;
    write_atomic(&out.join("report.md"), markdown(&report).as_bytes())?;
    Ok(report)
}

/// The report as Markdown (SPEC §7's tables).
pub fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# symclone-gpu report\n\n- adapter: {}\n- data: {}\n- preset: {} (config hash {}), seeds: {}\n- total time: {:.0} s\n\n",
        r.adapter, r.data, r.config.preset, r.config_hash, r.config.seeds, r.seconds
    );
    s.push_str("## Test accuracy\n\n| task | model | accuracy (mean ± std) | train time | trainable parameters | clones unchanged |\n|---|---|--:|--:|--:|---|\n");
    for m in &r.results {
        s.push_str(&format!(
            "| {} | {} | {:.2} ± {:.2} % | {:.0} s | {} | {} |\n",
            m.task,
            m.model,
            100.0 * m.mean,
            100.0 * m.std,
            m.train_seconds,
            m.trainable_params,
            match m.clones_unchanged {
                Some(true) => "yes (bit-identical)",
                Some(false) => "NO",
                None => "–",
            }
        ));
    }
    if !r.clones.is_empty() {
        s.push_str("\n## Clones\n\n| operator | d | source | runs | best MSE | final MSE | best relative MSE | equivariance error (clone) | equivariance error (true layer) | time |\n|---|--:|---|--:|--:|--:|--:|--:|--:|--:|\n");
        for c in &r.clones {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {:.2e} | {:.0} s |\n",
                c.kind.name(),
                c.d,
                c.source,
                c.attempts.max(1),
                c.stats.best_loss,
                c.stats.final_loss,
                c.best_relative_mse,
                c.equivariance_clone,
                c.equivariance_true,
                c.stats.seconds
            ));
        }
    }
    if let Some(f) = &r.fidelity {
        s.push_str(&format!(
            "\n## Fidelity\n\nMSE of (clone lift → clone P4) against (true lift → true P4) on a real digit with filters uniform on [0, 1): **{:.2e}** (the true output's mean square is {:.2e}; the paper's authors printed 2.3e-5 for their clones).\n",
            f.mse, f.target_mean_square
        ));
    }
    s.push_str("\nPictures: `feature-maps.png` (rows: true lift, cloned lift for a digit; then the same for the digit rotated by 90°), `clone-loss.png` (cloning MSE, log scale), `train-loss.png` (training loss per epoch).\n");
    s
}
