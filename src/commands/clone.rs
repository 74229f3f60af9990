//! `symclone-gpu clone --kind z2|lift|p4|lift-d4|p4m|lift+p4 --dim D`: one clone (the D4 kinds of
//! SPEC §9 included), or SPEC §3's end-to-end
//! lift+P4 clone warm-started from its two per-layer clones, with checkpoints that let `--resume`
//! skip finished stages.

use crate::checkpoint;
use crate::clone::io::clone_metadata;
use crate::clone::{clone_key, CloneConfig, CloneStats, ClonedOperator, OperatorKind};
use crate::config::plan::clone_plans;
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::files::{content_hash, read_json, write_json};
use crate::pipeline::clones::clone_phase;
use crate::pipeline::evaluation::fidelity;
use crate::progress::Reporter;
use crate::results::{CloneReport, Fidelity};
use crate::rng::Rng;
use crate::{Error, Gpu, Result};
use std::path::Path;
use std::sync::Arc;

/// The operators `clone --kind KIND --dim D` makes: z2, lift, p4, lift-d4 or p4m for d, or lift+p4
/// (a lift clone for d and a P4 clone for d − 2).
pub fn requested(kind: &str, dim: usize) -> Result<Vec<(OperatorKind, usize)>> {
    let needed = match kind {
        "z2" => vec![(OperatorKind::Z2, dim)],
        "lift" => vec![(OperatorKind::Lift, dim)],
        "p4" => vec![(OperatorKind::P4, dim)],
        "lift-d4" => vec![(OperatorKind::LiftD4, dim)],
        "p4m" => vec![(OperatorKind::P4m, dim)],
        "lift+p4" => vec![
            (OperatorKind::Lift, dim),
            (OperatorKind::P4, dim.saturating_sub(2)),
        ],
        k => {
            return Err(Error::invalid(format!(
                "--kind {k}: use z2, lift, p4, lift+p4, lift-d4, p4m, mixer-conv or mixer-radial"
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
    let ds = cfg.load_data()?;
    for &(k, d) in &needed {
        ClonedOperator::check_sizes(gpu, k, d, cfg.clone.nb, cfg.clone.m)?;
    }
    let lock = crate::files::FolderLock::acquire(out)?;
    if resume {
        lock.remove_stale_temporaries()?;
    }
    if kind == "lift+p4" {
        let made = clone_lift_p4(gpu, cfg, dim, out, resume, &ds, rep)?;
        Ok((made.layers, made.fidelity))
    } else {
        let dir = out.join("clones");
        let plans = clone_plans(cfg, &needed);
        let (_, reports) = clone_phase(gpu, cfg, &plans, &dir, resume, &ds, rep)?;
        Ok((reports, None))
    }
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
    let plans = clone_plans(cfg, &needed);
    let (set, layers) = clone_phase(gpu, cfg, &plans, &dir.join("layers"), resume, ds, rep)?;
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
    let h = content_hash(&(&ccfg, &cfg.clone.source, &layer_hashes));
    let name = format!("lift{dim}+p4{}", dim - 2);
    let meta_path = dir.join(format!("{name}.json"));
    let ckpt = |op: &ClonedOperator| dir.join(format!("{}.safetensors", op.kind.stem(op.d)));
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
        Some(fidelity(
            gpu,
            &lift,
            &p4,
            &digit,
            cfg.seed,
            cfg.half_blocks,
        )?)
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
