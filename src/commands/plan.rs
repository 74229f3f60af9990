//! `symclone-gpu plan`: what a configuration needs on the chosen adapter, without training it.
//!
//! Memory is measured, not modelled: the configuration runs one step of everything (one cloning
//! iteration per clone, one training step per model and seed 1, evaluation on one batch) in a
//! temporary folder, with the pool's high-water mark recorded per phase and per model, and the
//! floating-point work of its matrix products and convolutions counted per step. The full run's
//! work is that per-step count times its steps. The training rows add what the full data set
//! takes on the GPU beyond the one-step run's (one byte a pixel). A phase that cannot even start (a
//! binding over the adapter's limit) is reported with the error that stopped it.

use crate::config::RunConfig;
use crate::pipeline::run;
use crate::progress::Silent;
use crate::results::Report;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// One row of a plan: a phase, a clone or a model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlanRow {
    pub what: String,
    /// The pool's high-water mark (bytes); None where only the phase's is measured.
    pub peak_bytes: Option<u64>,
    /// Floating-point operations of one step (a cloning iteration, a training step).
    pub step_flops: u64,
    /// Steps in the full configuration.
    pub steps: u64,
}

impl PlanRow {
    /// Floating-point operations of the full configuration's steps.
    pub fn total_flops(&self) -> f64 {
        self.step_flops as f64 * self.steps as f64
    }
}

/// What a configuration needs: rows, and the error that stopped the one-step run, if any.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    pub adapter: String,
    /// The memory the plan is held against (bytes).
    pub budget_bytes: u64,
    pub rows: Vec<PlanRow>,
    /// Why the one-step run stopped (the configuration does not fit this adapter's limits).
    pub failure: Option<String>,
}

/// The configuration cut to one step of everything (see the module's documentation).
pub fn one_step(cfg: &RunConfig) -> RunConfig {
    let mut one = cfg.clone();
    one.seeds = 1;
    one.clone.iters = 1;
    one.clone.accum = 1;
    one.clone.warmup = 0;
    one.clone.retries = 0;
    let batch = cfg.tasks.iter().map(|t| t.train.batch).max().unwrap_or(1);
    one.train_n = Some(cfg.train_n.map_or(batch, |n| n.min(batch)));
    one.test_n = Some(cfg.test_n.map_or(batch, |n| n.min(batch)));
    for t in &mut one.tasks {
        t.train.epochs = 1;
    }
    one
}

/// Plan `cfg` on `gpu` against a memory budget of `budget_bytes`.
pub fn plan(gpu: &Arc<Gpu>, cfg: &RunConfig, budget_bytes: u64) -> Result<Plan> {
    cfg.validate()?;
    let one = one_step(cfg);
    // The one-step run holds at most `one.train_n` and `one.test_n` of the full run's digits.
    let full = cfg.load_data()?;
    let cut = |n: usize, to: Option<usize>| to.map_or(n, |t| n.min(t));
    let (train, test) = (full.train.n, full.test.n);
    let dropped = (train - cut(train, one.train_n)) + (test - cut(test, one.test_n));
    let extra_data = (dropped * cfg.side * cfg.side) as u64;
    let train_n = train as u64;
    let dir = tempfile::tempdir().map_err(|e| Error::io(&std::env::temp_dir(), e))?;
    let mut plan = Plan {
        adapter: gpu.describe(),
        budget_bytes,
        rows: Vec::new(),
        failure: None,
    };
    match run(gpu, &one, dir.path(), false, None, &mut Silent) {
        Ok(report) => plan.rows = rows(cfg, &report, train_n, extra_data),
        Err(e @ (Error::Interrupted(_) | Error::Io { .. })) => return Err(e),
        Err(e) => plan.failure = Some(e.to_string()),
    }
    Ok(plan)
}

/// The plan's rows from the one-step run's report.
fn rows(cfg: &RunConfig, r: &Report, train_n: u64, extra_data: u64) -> Vec<PlanRow> {
    let phase_peak = |name: &str| r.memory.iter().find(|p| p.phase == name);
    let mut rows = Vec::new();
    if let Some(p) = phase_peak("clones") {
        rows.push(PlanRow {
            what: "cloning (all clones)".into(),
            peak_bytes: Some(p.peak_bytes),
            step_flops: r.clones.iter().map(|c| c.stats.iter_flops).sum(),
            steps: cfg.clone.iters as u64,
        });
    }
    for c in &r.clones {
        rows.push(PlanRow {
            what: format!("  clone {}", c.kind.stem(c.d)),
            peak_bytes: None,
            step_flops: c.stats.iter_flops,
            steps: cfg.clone.iters as u64,
        });
    }
    if let Some(p) = phase_peak("fidelity") {
        rows.push(PlanRow {
            what: "fidelity check".into(),
            peak_bytes: Some(p.peak_bytes),
            step_flops: p.flops,
            steps: 1,
        });
    }
    for m in &r.results {
        let steps = cfg.tasks.iter().find(|t| t.task == m.task).map_or(0, |t| {
            t.train.epochs as u64 * train_n.div_ceil(t.train.batch.max(1) as u64)
        });
        rows.push(PlanRow {
            what: format!("training {} on {}", m.model, m.task),
            peak_bytes: Some(m.peak_bytes + extra_data),
            step_flops: m.step_flops,
            steps: steps * cfg.seeds as u64,
        });
    }
    rows
}

/// Write the plan into `out` as `plan.md` ([`markdown`]) and `plan.json`; the path of `plan.md`.
pub fn write(out: &std::path::Path, plan: &Plan) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let md = out.join("plan.md");
    crate::files::write_atomic(&md, markdown(plan).as_bytes())?;
    crate::files::write_json(&out.join("plan.json"), plan)?;
    Ok(md)
}

/// The plan as Markdown: a table, the totals, and what does not fit.
pub fn markdown(p: &Plan) -> String {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut s = format!(
        "adapter: {}\nbudget: {:.1} GiB\n\n| phase | peak | GFLOP per step | steps | total TFLOP | fits |\n|---|--:|--:|--:|--:|---|\n",
        p.adapter,
        gib(p.budget_bytes)
    );
    for r in &p.rows {
        let (peak, fits) = match r.peak_bytes {
            Some(b) => (
                format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
                if b <= p.budget_bytes { "yes" } else { "**no**" },
            ),
            None => (String::new(), ""),
        };
        s += &format!(
            "| {} | {peak} | {:.3} | {} | {:.3} | {fits} |\n",
            r.what,
            r.step_flops as f64 / 1e9,
            r.steps,
            r.total_flops() / 1e12
        );
    }
    let total: f64 = p
        .rows
        .iter()
        .filter(|r| !r.what.starts_with("  "))
        .map(PlanRow::total_flops)
        .fold(0.0, |a, b| a + b);
    s += &format!(
        "\ntotal work: {:.2} TFLOP (matrix products and convolutions)\n",
        total / 1e12
    );
    match &p.failure {
        Some(f) => s += &format!("\ndoes not fit this adapter: {f}\n"),
        None => {
            let over: Vec<&str> = p
                .rows
                .iter()
                .filter(|r| r.peak_bytes.is_some_and(|b| b > p.budget_bytes))
                .map(|r| r.what.as_str())
                .collect();
            if over.is_empty() {
                s += "every phase fits the budget\n";
            } else {
                s += &format!(
                    "over the budget: {} (lower --clone-filters or --clone-batch for cloning, --batch for training)\n",
                    over.join(", ")
                );
            }
        }
    }
    s
}
