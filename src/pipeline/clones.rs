//! The clone phase (SPEC §3): the checks that the planned clones fit the adapter (or that the
//! clones given hold them), cloning each (from random data or from a trained teacher's filters
//! and feature maps, retried when a run stalls), and the checkpoints that let `--resume` skip
//! finished clones.

use super::evaluation::operator_equivariance;
use crate::checkpoint;
use crate::clone::io::clone_metadata;
use crate::clone::{clone_key, CloneSet};
use crate::clone::{clone_random, CloneConfig, ClonedOperator, OperatorKind};
use crate::config::{ClonePlan, RunConfig, RunPlan};
use crate::data::{Batcher, Dataset, Part, Task};
use crate::files::{read_json, write_json};
use crate::models::{Model, ModelKind};
use crate::progress::Reporter;
use crate::results::CloneReport;
use crate::rng::Rng;
use crate::train;
use crate::{Error, Gpu, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Check, before any work, that every needed clone's block tensor (nb × n_out × n_in floats, the
/// largest binding of a cloned layer) fits the adapter's buffer and storage-binding limits: on an
/// adapter with WebGPU's 128 MiB per binding (lavapipe among them) the paper preset's 48×48 Z2
/// clones do not, and a run would otherwise stop there after every clone before them had been
/// trained.
pub fn check_clone_sizes(gpu: &Gpu, plan: &RunPlan) -> Result<()> {
    let cfg = &plan.cfg;
    for c in &plan.clones {
        let (kind, d) = (c.kind, c.d);
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
            return Err(e.hint(format!(
                "leave out {} (--tasks, --models), use a smaller --side, or an adapter with larger bindings (see `devices`)",
                c.users.join(", ")
            )));
        }
    }
    Ok(())
}

/// Check that clones given ready (`--clones`) hold every operator in `needed`.
pub fn check_given(set: &CloneSet, needed: &[(OperatorKind, usize)]) -> Result<()> {
    for &(kind, d) in needed {
        if !set.contains_key(&clone_key(kind, d)) {
            let have: Vec<String> = set.values().map(|o| o.kind.stem(o.d)).collect();
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

/// The reports of the planned clones already finished in `dir` (those stored with the plan's
/// hash), in plan order: what a run stopped during cloning has done.
pub fn finished(plan: &RunPlan, dir: &Path) -> Vec<CloneReport> {
    plan.clones
        .iter()
        .filter_map(|c| {
            read_json::<CloneReport>(&dir.join(format!("{}.json", c.stem())))
                .filter(|r| r.config_hash == c.hash)
        })
        .collect()
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
    let (model, wanted_task, probe_task) = match first_kind.group() {
        None => (ModelKind::Cnn, vec![Task::TransSb], Task::TransSb),
        Some(crate::group::Group::C4) => (
            ModelKind::Gcnn,
            vec![Task::Symmetric, Task::RotSb, Task::Plain],
            Task::RotSb,
        ),
        Some(crate::group::Group::D4) => (
            ModelKind::D4Gcnn,
            vec![Task::SymmetricD4, Task::MirrorSb],
            Task::MirrorSb,
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
    let arch = cfg.arch(model, task);
    let mut rng = Rng::new(cfg.seed.wrapping_add(4242));
    let m = Model::new(gpu, model, &arch, &CloneSet::new(), &mut rng)?;
    let mut tb = Batcher::new(
        gpu,
        &ds.train,
        task,
        Part::Train,
        plan.train.batch,
        cfg.seed,
    )?
    .with_canvas(cfg.canvas(task))?;
    let eb = Batcher::new(gpu, &ds.test, task, Part::Test, 256, cfg.seed)?
        .with_canvas(cfg.canvas(task))?;
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
    .with_canvas(cfg.canvas(probe_task))?
    .batch(0)?;
    let inputs = m.layer_inputs(&probe.images)?;
    let layer_sides = arch.feature_sides()?;
    let mut out = BTreeMap::new();
    for &(kind, d) in family {
        let l = (0..4)
            .find(|&l| {
                // A group layer's first clone is its lift, every later one group → group.
                let place = kind.group().is_none() || (kind.in_planes() == 1) == (l == 0);
                layer_sides[l] == d && place
            })
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

/// Make every planned clone (or reuse a finished one on `--resume`), writing
/// `<kind><d>.safetensors` and `.json` into the folder `dir` (a run's `clones/`).
pub fn clone_phase(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    needed: &[ClonePlan],
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
    for c in needed {
        let (kind, d, ccfg, h) = (c.kind, c.d, &c.config, c.hash.clone());
        let stem = c.stem();
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
                    // One teacher per family (gcnn for Lift and P4, d4-gcnn for the D4 kinds,
                    // cnn for Z2), trained once.
                    let family: Vec<(OperatorKind, usize)> = needed
                        .iter()
                        .map(|n| (n.kind, n.d))
                        .filter(|n| n.0.group() == kind.group())
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
