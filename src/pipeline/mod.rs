//! `symclone-gpu run`: the whole method end to end on the GPU — clone the equivariant layers
//! (SPEC §3), train the downstream networks on the three tasks (SPEC §4–§6), and write the report
//! (SPEC §7): `report.json`, `report.md`, `report.html`, SVG figures and safetensors
//! checkpoints. Every phase's result is stored with a hash of the configuration that made it, so
//! `--resume` skips what is done.
//!
//! One file per phase: [`config`] (presets and flag overrides), [`clones`], [`evaluation`] (the
//! clones' checks), [`training`], [`report`]; this file only sequences them.

pub mod capacity;
pub mod checks;
pub mod clones;
pub mod compare;
pub mod config;
pub mod evaluation;
pub mod figures;
mod files;
pub mod medium;
pub mod mixer;
pub mod mixer_report;
pub mod plan;
pub mod progress;
pub mod report;
pub mod symmetry;
pub mod training;
pub mod tune;

pub use crate::clone::io::{clone_metadata, load_clone, load_clones};
pub use checks::{parse_config, MAX_CONFIG_BYTES};
pub use clones::{clone_lift_p4, clone_phase, LiftP4};
pub use config::{arch_for, CloneSettings, Overrides, RunArgs, RunConfig, TaskPlan};
pub use evaluation::{fidelity, operator_equivariance};
pub use files::default_out_dir;
pub use progress::Bars;
pub use report::{
    markdown, rebuild, CloneReport, FeatureMaps, Fidelity, LayerEquivariance, ModelReport, Report,
};

use crate::clone::CloneSet;
use crate::data::resize::prepare_digits;
use crate::data::Dataset;
use crate::files::FolderLock;
use crate::{Error, Gpu, Result};
use files::write_json;
use std::path::Path;
use std::sync::Arc;
use training::Training;

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

/// The configuration's data: the embedded default or `--data`, subset, brought to `side`.
pub fn load_data(cfg: &RunConfig) -> Result<Dataset> {
    let ds = match &cfg.data {
        None => Dataset::embedded()?,
        Some(dir) => Dataset::load_first(dir, cfg.train_n, cfg.test_n)?,
    }
    .subset(cfg.train_n, cfg.test_n)?;
    Ok(Dataset {
        train: prepare_digits(&ds.train, cfg.side, cfg.downsample)?,
        test: prepare_digits(&ds.test, cfg.side, cfg.downsample)?,
        source: ds.source,
    })
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
    // Every input is checked before anything is written: a bad one leaves no file behind.
    let ds = load_data(cfg)?;
    let needed = clones::needed_clones(cfg)?;
    clones::check_clone_sizes(gpu, cfg, &needed)?;
    if let Some(set) = &given {
        clones::check_given(set, &needed)?;
    }
    let _lock = FolderLock::acquire(out)?;
    std::fs::create_dir_all(out.join("clones")).map_err(|e| Error::io(out, e))?;
    std::fs::create_dir_all(out.join("models")).map_err(|e| Error::io(out, e))?;
    write_json(&out.join("config.json"), cfg)?;

    // Each phase starts from a trimmed pool and records its high-water mark.
    let mut memory = Vec::new();
    let mut flops0 = gpu.flops();
    let mut phase_done = |name: &str| -> Result<()> {
        memory.push(report::PhaseMemory {
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

    // Phase 1: the clones (or the ones given), their fidelity and loss curves.
    let (clones, clone_reports) = match given {
        Some(set) => (set, Vec::new()),
        None => {
            clone_phase(gpu, cfg, &needed, &out.join("clones"), resume, &ds, rep).map_err(|e| {
                e.hint(format!(
                    "lower --clone-filters (now {}) or --clone-batch (now {})",
                    cfg.clone.filters, cfg.clone.batch
                ))
            })?
        }
    };
    phase_done("clones")?;
    let fidelity = evaluation::fidelity_check(gpu, cfg, &clones, &ds)?;
    phase_done("fidelity")?;

    // Phase 2: downstream training.
    let training = Training {
        gpu,
        cfg,
        out,
        resume,
        clones: &clones,
        clone_reports: &clone_reports,
    };
    let results = training.run(&ds, rep).map_err(|e| {
        let batches: Vec<String> = cfg
            .tasks
            .iter()
            .map(|t| t.train.batch.to_string())
            .collect();
        e.hint(format!("lower --batch (now {})", batches.join(", ")))
    })?;
    phase_done("training")?;

    // Phase 3: the report.
    let report = Report {
        version: env!("CARGO_PKG_VERSION").to_string(),
        adapter: gpu.describe(),
        data: describe_data(cfg, &ds),
        config: cfg.clone(),
        config_hash: files::hash_of(cfg),
        clones: clone_reports,
        fidelity,
        results,
        seconds: t0.elapsed().as_secs_f64(),
        memory,
        kernels: gpu.choices(),
    };
    report::write(out, &report)?;
    Ok(report)
}

/// The data line of the report: source, counts and how the digits were brought to the side.
fn describe_data(cfg: &RunConfig, ds: &Dataset) -> String {
    format!(
        "{} ({} train, {} test, {})",
        ds.source,
        ds.train.n,
        ds.test.n,
        if cfg.downsample {
            format!("halved to 14×14 and padded to {0}×{0}", cfg.side)
        } else {
            format!("{0}×{0} centre crop", cfg.side)
        }
    )
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
