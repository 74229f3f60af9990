//! The clone phase (SPEC §3): which operators a run needs, cloning each (from random data or from
//! a trained teacher's filters and feature maps, retried when a run stalls), SPEC §3's end-to-end
//! lift+P4 clone, and the checkpoints that let `--resume` skip finished clones.

use super::config::arch_for;
use super::evaluation::{fidelity, operator_equivariance};
use super::files::{hash_of, read_json, write_json};
use super::report::{CloneReport, Fidelity};
use super::{Reporter, RunConfig};
use crate::clone::io::clone_metadata;
use crate::clone::{clone_key, CloneSet};
use crate::clone::{clone_random, CloneConfig, CloneStats, ClonedOperator, OperatorKind};
use crate::data::{Batcher, Dataset, Part, Task};
use crate::models::{clones_needed, Model, ModelKind};
use crate::report::checkpoint;
use crate::rng::Rng;
use crate::train;
use crate::{Error, Gpu, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The (kind, side) of every cloned operator the configuration's models need, in first-use order.
pub fn needed_clones(cfg: &RunConfig) -> Result<Vec<(OperatorKind, usize)>> {
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
    Ok(needed)
}

/// Check, before any work, that every needed clone's block tensor (nb × n_out × n_in floats, the
/// largest binding of a cloned layer) fits the adapter's buffer and storage-binding limits: on an
/// adapter with WebGPU's 128 MiB per binding (lavapipe among them) the paper preset's 48×48 Z2
/// clones do not, and a run would otherwise stop there after every clone before them had been
/// trained.
pub fn check_clone_sizes(
    gpu: &Gpu,
    cfg: &RunConfig,
    needed: &[(OperatorKind, usize)],
) -> Result<()> {
    for &(kind, d) in needed {
        let (n_out, n_in) = ClonedOperator::io(d);
        let bytes = (cfg.clone.nb as u64)
            .saturating_mul(n_out as u64)
            .saturating_mul(n_in as u64)
            .saturating_mul(4);
        let what = format!(
            "the {}{d} clone's blocks ({} × {n_out} × {n_in} floats)",
            kind.name(),
            cfg.clone.nb
        );
        if let Err(e) = gpu.check_size(&what, bytes) {
            let mut users = Vec::new();
            for t in &cfg.tasks {
                let task: Task = t.task.parse()?;
                for &m in &t.models {
                    if clones_needed(m, &arch_for(cfg, m, task))?.contains(&(kind, d)) {
                        users.push(format!("{m} on {}", t.task));
                    }
                }
            }
            return Err(e.hint(format!(
                "leave out {} (--tasks, --models), use a smaller --side, or an adapter with larger bindings (see `devices`)",
                users.join(", ")
            )));
        }
    }
    Ok(())
}

/// Check that clones given ready (`--clones`) hold every operator in `needed`.
pub fn check_given(set: &CloneSet, needed: &[(OperatorKind, usize)]) -> Result<()> {
    for &(kind, d) in needed {
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
    Ok(())
}

/// The operators `clone --kind KIND --dim D` makes: z2, lift or p4 for d, or lift+p4 (a lift clone
/// for d and a P4 clone for d − 2).
pub fn requested(kind: &str, dim: usize) -> Result<Vec<(OperatorKind, usize)>> {
    let needed = match kind {
        "z2" => vec![(OperatorKind::Z2, dim)],
        "lift" => vec![(OperatorKind::Lift, dim)],
        "p4" => vec![(OperatorKind::P4, dim)],
        "lift+p4" => vec![
            (OperatorKind::Lift, dim),
            (OperatorKind::P4, dim.saturating_sub(2)),
        ],
        k => {
            return Err(Error::invalid(format!(
                "--kind {k}: use z2, lift, p4, lift+p4, mixer-conv or mixer-radial"
            )))
        }
    };
    if dim < 3 || (kind == "lift+p4" && dim < 5) {
        return Err(Error::invalid(format!(
            "--dim {dim} is too small for a 3×3 layer"
        )));
    }
    let max = crate::clone::operator::MAX_SIDE;
    if dim > max {
        return Err(Error::invalid(format!(
            "--dim {dim}: a clone's input side is at most {max} (its dense operator has (d−2)²·d² entries per block)"
        )));
    }
    Ok(needed)
}

/// The run configuration of `clone`: `source` (random or teacher) and, when given, `blocks`.
pub fn clone_config(mut cfg: RunConfig, source: &str, blocks: Option<usize>) -> Result<RunConfig> {
    cfg.clone.source = source.to_string();
    if let Some(nb) = blocks {
        if nb == 0 {
            return Err(Error::invalid("--blocks 0: use at least 1"));
        }
        cfg.clone.nb = nb;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// `clone --kind KIND --dim D` into `out/clones`: the per-layer clones' reports, and for lift+p4
/// (see [`clone_lift_p4`]) the end-to-end clone's fidelity.
pub fn clone_command(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    kind: &str,
    dim: usize,
    out: &Path,
    resume: bool,
    rep: &mut dyn Reporter,
) -> Result<(Vec<CloneReport>, Option<Fidelity>)> {
    let needed = requested(kind, dim)?;
    cfg.validate()?;
    let ds = super::load_data(cfg)?;
    for &(k, d) in &needed {
        ClonedOperator::check_sizes(gpu, k, d, cfg.clone.nb, cfg.clone.m)?;
    }
    let _lock = crate::files::FolderLock::acquire(out)?;
    if kind == "lift+p4" {
        let made = clone_lift_p4(gpu, cfg, dim, out, resume, &ds, rep)?;
        Ok((made.layers, made.fidelity))
    } else {
        let dir = out.join("clones");
        let (_, reports) = clone_phase(gpu, cfg, &needed, &dir, resume, &ds, rep)?;
        Ok((reports, None))
    }
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

/// Clone every (kind, side) in `needed` (or reuse a finished clone on `--resume`), writing
/// `<kind><d>.safetensors` and `.json` into the folder `dir` (a run's `clones/`).
pub fn clone_phase(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    needed: &[(OperatorKind, usize)],
    dir: &Path,
    resume: bool,
    ds: &Dataset,
    rep: &mut dyn Reporter,
) -> Result<(CloneSet, Vec<CloneReport>)> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
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
        let ckpt = dir.join(format!("{stem}.safetensors"));
        let meta_path = dir.join(format!("{stem}.json"));
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
                // A run that ends above its bound by more than the stall threshold sat at a
                // saddle (two blocks merged: the 8-block floor is 1/9 relative); retry it from
                // the next seed. The bound is for Gaussian codes and inputs; a teacher's are not.
                let bound = if teacher {
                    None
                } else {
                    Some(crate::clone::bound::clonability_bound(kind, d, ccfg.nb)?)
                };
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
                    let floor = bound.unwrap_or(0.0) as f32;
                    if got.1.best_relative() <= floor + cfg.clone.stall
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
                    clonability_bound: bound,
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

/// The end-to-end lift+P4 clone's result, stored as `clones/lift<d>+p4<d−2>.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct JointReport {
    pub stats: CloneStats,
    pub config_hash: String,
}

/// What `clone --kind lift+p4` made.
pub struct LiftP4 {
    /// The two per-layer clones the end-to-end clone starts from (kept in `clones/layers/`).
    pub layers: Vec<CloneReport>,
    /// The end-to-end clone: its lift and P4 operators (`clones/lift<d>.safetensors`,
    /// `clones/p4<d−2>.safetensors`) and its losses.
    pub lift: ClonedOperator,
    pub p4: ClonedOperator,
    pub joint: JointReport,
    /// SPEC §3's fidelity on the first test digit, when the digits are d×d.
    pub fidelity: Option<Fidelity>,
}

/// `clone --kind lift+p4`: a lift clone for `dim` and a P4 clone for `dim − 2` (under
/// `out/clones/layers/`), then SPEC §3's end-to-end two-layer clone warm-started from them (under
/// `out/clones/`, where `finetune --clones` finds it). With `resume`, each stage whose checkpoint
/// holds this configuration's hash is reused.
pub fn clone_lift_p4(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    dim: usize,
    out: &Path,
    resume: bool,
    ds: &Dataset,
    rep: &mut dyn Reporter,
) -> Result<LiftP4> {
    let needed = requested("lift+p4", dim)?;
    let dir = out.join("clones");
    let (set, layers) = clone_phase(gpu, cfg, &needed, &dir.join("layers"), resume, ds, rep)?;
    let (l, p) = (
        &set[&clone_key(OperatorKind::Lift, dim)],
        &set[&clone_key(OperatorKind::P4, dim - 2)],
    );
    // The composed clone is not linear in its blocks, so it has no inputs or exact form: the
    // end-to-end stage is trained on the sampled loss whatever the per-layer clones used.
    let ccfg = CloneConfig {
        loss: crate::clone::CloneLoss::Sampled,
        ..cfg
            .clone
            .config(OperatorKind::Lift, dim, cfg.seed.wrapping_add(77))
    };
    let layer_hashes: Vec<&str> = layers.iter().map(|r| r.config_hash.as_str()).collect();
    let h = hash_of(&(&ccfg, &cfg.clone.source, &layer_hashes));
    let name = format!("lift{dim}+p4{}", dim - 2);
    let meta_path = dir.join(format!("{name}.json"));
    let ckpt = |op: &ClonedOperator| dir.join(format!("{}{}.safetensors", op.kind.name(), op.d));
    let cached: Option<JointReport> = if resume { read_json(&meta_path) } else { None };
    let reused = match cached {
        Some(r) if r.config_hash == h => {
            let mut rng = Rng::new(0);
            let l2 = ClonedOperator::new(gpu, OperatorKind::Lift, dim, l.nb, l.m, &mut rng)?;
            let p2 = ClonedOperator::new(gpu, OperatorKind::P4, dim - 2, p.nb, p.m, &mut rng)?;
            let loaded = [&l2, &p2].iter().all(|op| {
                checkpoint::load(&ckpt(op), &op.params(), &clone_metadata(op, &h)).is_ok()
            });
            loaded.then_some((l2, p2, r))
        }
        _ => None,
    };
    let (lift, p4, joint) = match reused {
        Some((l2, p2, r)) => {
            rep.phase("clone lift+p4 jointly", 1);
            rep.finish(&format!(
                "{name}: reused (end-to-end MSE best {:.3e}, final {:.3e})",
                r.stats.best_loss, r.stats.final_loss
            ));
            (l2, p2, r)
        }
        None => {
            // SPEC §3's end-to-end two-layer clone, warm-started from the two layers just cloned.
            rep.phase("clone lift+p4 jointly", ccfg.iters as u64);
            let (l2, p2, st) =
                crate::clone::clone_lift_p4(gpu, &ccfg, Some((l, p)), 10, &mut |it, loss| {
                    rep.progress(it as u64, &format!("MSE {loss:.3e}"))
                })?;
            rep.finish(&format!("lift{dim}+p4{}: end-to-end MSE best {:.3e}, final {:.3e} (45-vector codes, sampled loss: the composed clone has no exact form), {:.0} s", dim - 2, st.best_loss, st.final_loss, st.seconds));
            for op in [&l2, &p2] {
                checkpoint::save(&ckpt(op), &op.params(), &clone_metadata(op, &h))?;
            }
            let r = JointReport {
                stats: st,
                config_hash: h,
            };
            write_json(&meta_path, &r)?;
            (l2, p2, r)
        }
    };
    let digit: Vec<f32> = ds.test.image(0).iter().map(|&v| v as f32 / 255.0).collect();
    let fidelity = if digit.len() == dim * dim {
        Some(fidelity(gpu, &lift, &p4, &digit, cfg.seed)?)
    } else {
        None
    };
    Ok(LiftP4 {
        layers,
        lift,
        p4,
        joint,
        fidelity,
    })
}
