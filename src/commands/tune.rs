//! `symclone-gpu tune`: choose every kernel variant ahead of time for the shapes the given presets
//! use (one step of everything, as `plan` runs it) and for the benchmark's square products, cache
//! the choices for this adapter, and show them (op × shape bucket → variant, with the times).

use super::plan;
use crate::config::RunConfig;
use crate::gpu::{Choice, Gpu};
use crate::ops::matmul;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;

/// Square products the benchmark times (and the ragged one), tuned besides the presets' shapes.
pub const BENCH_SQUARES: &[usize] = &[256, 1000, 1024];

/// Run one step of each preset with a measurement budget of `budget_s` seconds, and the benchmark's
/// square products; return the choices made (each op and bucket once).
pub fn tune(gpu: &Arc<Gpu>, presets: &[String], budget_s: f64) -> Result<Vec<Choice>> {
    if !(budget_s.is_finite() && budget_s > 0.0) {
        return Err(Error::invalid(format!(
            "--budget {budget_s}: give the seconds of measurement allowed, e.g. 120"
        )));
    }
    gpu.set_tune_budget(budget_s);
    for &s in BENCH_SQUARES {
        let a = Tensor::zeros(gpu, &[s, s])?;
        matmul::matmul(&a, &a, false, false)?;
    }
    for p in presets.iter().filter(|p| p.as_str() != "none") {
        let cfg = RunConfig::preset(p)?;
        let plan = plan::plan(gpu, &cfg, u64::MAX)?;
        if let Some(f) = plan.failure {
            eprintln!("warning: preset {p} stopped early on this adapter: {f}");
        }
    }
    gpu.sync()?;
    Ok(gpu.choices())
}

/// The choices as a Markdown table: op, bucket, variant, how it was chosen, and each candidate's
/// time per run at the size it was timed at.
pub fn table(choices: &[Choice]) -> String {
    let mut s = String::from(
        "| op | bucket | variant | how | timed at | candidates (ms per run) |\n|---|---|---|---|---|---|\n",
    );
    for c in choices {
        let mut times: Vec<String> = c
            .times
            .iter()
            .map(|(n, t)| format!("{n} {:.3}", t * 1e3))
            .collect();
        times.extend(c.rejected.iter().map(|n| format!("rejected {n}")));
        s += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            c.op,
            c.bucket,
            c.variant,
            c.how,
            c.timed_at,
            times.join(", ")
        );
    }
    s
}

/// `symclone-gpu tune`: tune, print the table, say where the cache is.
pub fn command(gpu: &Arc<Gpu>, presets: &[String], budget_s: f64) -> Result<()> {
    eprintln!("adapter: {}", gpu.describe());
    if let Some(f) = gpu.family_forced() {
        eprintln!(
            "--family {} forces that family's default variants: nothing is timed (use --family auto)",
            f.name()
        );
    }
    let choices = tune(gpu, presets, budget_s)?;
    print!("{}", table(&choices));
    match gpu.cache_saved() {
        Ok(p) => {
            eprintln!("choices cached in {}", p.display());
            Ok(())
        }
        Err(why) => Err(Error::invalid(format!(
            "tune: the choices above were not cached: {why}"
        ))),
    }
}
