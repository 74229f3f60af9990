//! `symclone-gpu run`: the whole method end to end on the GPU — clone the equivariant layers
//! (SPEC §3), train the downstream networks on the three tasks (SPEC §4–§6), and write the report
//! (SPEC §7): `report.json`, `report.md`, `report.html`, SVG figures and safetensors
//! checkpoints. The configuration is resolved once into a [`RunPlan`] (every model's
//! architecture, every clone, the content hash of every result), which the phases receive; every
//! phase's result is stored with its hash, so `--resume` skips what is done.
//!
//! One file per phase: [`clones`], [`evaluation`] (the clones' checks), [`training`] with
//! [`symmetry`] (SPEC §7's measures of a trained network); this file only sequences them. The
//! configuration is in [`crate::config`], the report's types and views in [`crate::results`].

pub mod clones;
pub mod evaluation;
pub mod symmetry;
pub mod training;

use crate::clone::CloneSet;
use crate::config::{RunConfig, RunPlan};
use crate::data::Dataset;
use crate::files::{write_json, FolderLock};
use crate::progress::Reporter;
use crate::results::{CloneReport, PhaseMemory, Report};
use crate::{Error, Gpu, Result};
use std::path::Path;
use std::sync::Arc;
use training::Training;

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
    let t0 = std::time::Instant::now();
    // Every input is checked before anything is written: a bad one leaves no file behind.
    cfg.validate()?;
    let ds = cfg.load_data()?;
    let plan = RunPlan::new(cfg, &ds, given.is_some())?;
    run_plan(gpu, &plan, &ds, out, resume, given, rep, t0)
}

/// [`run`] once the configuration is resolved into `plan` and its data `ds` is loaded.
#[allow(clippy::too_many_arguments)]
fn run_plan(
    gpu: &Arc<Gpu>,
    plan: &RunPlan,
    ds: &Dataset,
    out: &Path,
    resume: bool,
    given: Option<CloneSet>,
    rep: &mut dyn Reporter,
    t0: std::time::Instant,
) -> Result<Report> {
    let cfg = &plan.cfg;
    clones::check_clone_sizes(gpu, plan)?;
    if let Some(set) = &given {
        clones::check_given(set, &plan.needed())?;
    }
    let lock = FolderLock::acquire(out)?;
    if resume {
        // What a killed run left half-written is written again; its temporaries go.
        lock.remove_stale_temporaries()?;
    }
    std::fs::create_dir_all(out.join("clones")).map_err(|e| Error::io(out, e))?;
    std::fs::create_dir_all(out.join("models")).map_err(|e| Error::io(out, e))?;
    write_json(&out.join("config.json"), cfg)?;

    // Each phase starts from a trimmed pool and records its high-water mark.
    let mut memory = Vec::new();
    let mut flops0 = gpu.flops();
    let mut phase_done = |name: &str| -> Result<()> {
        memory.push(PhaseMemory {
            phase: name.to_string(),
            peak_bytes: gpu.pool_stats().peak_bytes,
            flops: gpu.flops() - flops0,
        });
        flops0 = gpu.flops();
        gpu.trim()?;
        gpu.reset_peak();
        Ok(())
    };
    gpu.trim()?;
    gpu.reset_peak();

    // Phase 3, whenever the run ends: the report of what was done.
    let finish =
        |clones: Vec<CloneReport>, fidelity, results, memory, incomplete| -> Result<Report> {
            let report = Report {
                version: env!("CARGO_PKG_VERSION").to_string(),
                adapter: gpu.describe(),
                data: cfg.describe_data(ds),
                config: cfg.clone(),
                config_hash: plan.config_hash.clone(),
                clones,
                fidelity,
                results,
                seconds: t0.elapsed().as_secs_f64(),
                memory,
                kernels: gpu.choices(),
                incomplete,
            };
            crate::results::write(out, &report)?;
            Ok(report)
        };

    // Phase 1: the clones (or the ones given), their fidelity and loss curves.
    let made = match given {
        Some(set) => Ok((set, Vec::new())),
        None => clones::clone_phase(gpu, cfg, &plan.clones, &out.join("clones"), resume, ds, rep),
    };
    let (clones, clone_reports) = match made {
        Err(Error::Interrupted(why)) if crate::error::time_up() => {
            // The time limit fell while cloning: the report holds the clones finished so far.
            let done = clones::finished(plan, &out.join("clones"));
            return finish(done, None, Vec::new(), memory, Some(why));
        }
        other => other.map_err(|e| {
            e.hint(format!(
                "lower --clone-filters (now {}) or --clone-batch (now {})",
                cfg.clone.filters, cfg.clone.batch
            ))
        })?,
    };
    phase_done("clones")?;
    let fidelity = evaluation::fidelity_check(gpu, plan, &clones, ds)?;
    phase_done("fidelity")?;

    // Phase 2: downstream training.
    let training = Training {
        gpu,
        plan,
        out,
        resume,
        clones: &clones,
    };
    let (results, incomplete) = training.run(ds, rep).map_err(|e| {
        let batches: Vec<String> = cfg
            .tasks
            .iter()
            .map(|t| t.train.batch.to_string())
            .collect();
        e.hint(format!("lower --batch (now {})", batches.join(", ")))
    })?;
    phase_done("training")?;
    finish(clone_reports, fidelity, results, memory, incomplete)
}

/// `f`, with every kernel timed when `SYMCLONE_PROFILE` is set (non-empty): the per-kernel table
/// ([`profile_markdown`]) is printed to stderr and written to `<out>/profile.md`.
pub fn profiled<T>(gpu: &Gpu, out: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if std::env::var_os("SYMCLONE_PROFILE").is_none_or(|v| v.is_empty()) {
        return f();
    }
    let t = std::time::Instant::now();
    let (v, rows) = gpu.profile(f)?;
    let md = profile_markdown(rows.as_deref(), t.elapsed().as_secs_f64());
    eprint!("{md}");
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    crate::files::write_atomic(&out.join("profile.md"), md.as_bytes())?;
    Ok(v)
}

/// A per-kernel profile (from [`Gpu::profile`]) as a Markdown table: each
/// kernel's summed time, dispatches, mean time and share of the kernel total, and the kernel total
/// against `wall_s`, the wall time of the profiled work. None: the adapter has no timestamps.
fn profile_markdown(rows: Option<&[(String, f64, u64)]>, wall_s: f64) -> String {
    let Some(rows) = rows else {
        return "no kernel profile: this adapter has no timestamp queries\n".into();
    };
    let total: f64 = rows.iter().map(|r| r.1).sum();
    let mut md = format!(
        "## Kernel profile\n\nKernel time {total:.2} s of {wall_s:.2} s wall ({:.0} %), {} dispatches. \
         Each dispatch ran in a compute pass of its own to be timed, so the wall time is longer than \
         in an unprofiled run.\n\n| kernel | seconds | dispatches | µs each | share |\n|---|--:|--:|--:|--:|\n",
        100.0 * total / wall_s.max(1e-9),
        rows.iter().map(|r| r.2).sum::<u64>()
    );
    for (k, s, n) in rows {
        md += &format!(
            "| {k} | {s:.3} | {n} | {:.1} | {:.1} % |\n",
            s * 1e6 / (*n).max(1) as f64,
            100.0 * s / total.max(1e-12)
        );
    }
    md
}
