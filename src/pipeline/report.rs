//! What a run measured (SPEC §7): the report's types, its Markdown tables, and the files a run
//! leaves behind — `report.json`, `report.md` and the loss plots.

use super::files::write_json;
use super::RunConfig;
use crate::clone::{CloneStats, OperatorKind};
use crate::files::write_atomic;
use crate::models::ModelKind;
use crate::report::plot;
use crate::Result;
use std::path::Path;

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

impl CloneReport {
    /// One line: the clone, its losses, its equivariance error and its time.
    pub fn summary(&self) -> String {
        format!(
            "{}{}: best MSE {:.3e} (relative {:.2e}), final {:.3e}, equivariance error {:.2e} (true layer {:.2e}), {:.0} s",
            self.kind.name(), self.d, self.stats.best_loss, self.best_relative_mse, self.stats.final_loss, self.equivariance_clone, self.equivariance_true, self.stats.seconds
        )
    }
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
    /// The GPU buffer pool's high-water mark while this model trained (bytes; the data and clones
    /// already on the GPU included).
    #[serde(default)]
    pub peak_bytes: u64,
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
    /// The GPU buffer pool's high-water mark per phase (the pool is trimmed between phases).
    #[serde(default)]
    pub memory: Vec<PhaseMemory>,
}

/// One phase's peak GPU memory.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PhaseMemory {
    pub phase: String,
    /// The most bytes the buffer pool held at once during the phase.
    pub peak_bytes: u64,
}

/// `clone-loss.png`: every clone's loss curve (log scale); nothing when no clone was trained.
pub fn write_clone_loss_plot(out: &Path, clones: &[CloneReport]) -> Result<()> {
    if clones.is_empty() {
        return Ok(());
    }
    let series: Vec<Vec<(f64, f64)>> = clones
        .iter()
        .map(|c| {
            c.stats
                .history
                .iter()
                .map(|&(i, l)| (i as f64, l as f64))
                .collect()
        })
        .collect();
    plot::write_line_plot(&out.join("clone-loss.png"), &series, true)
}

/// `train-loss.png`: the first seed's training loss per epoch of every model on every task.
pub fn write_train_loss_plot(out: &Path, results: &[ModelReport]) -> Result<()> {
    let curves: Vec<Vec<(f64, f64)>> = results
        .iter()
        .map(|m| {
            m.history
                .iter()
                .map(|e| (e.epoch as f64, e.loss as f64))
                .collect::<Vec<_>>()
        })
        .collect();
    if !curves.is_empty() {
        plot::write_line_plot(&out.join("train-loss.png"), &curves, false)?;
    }
    Ok(())
}

/// `report.json` and `report.md` under `out`.
pub fn write(out: &Path, report: &Report) -> Result<()> {
    write_json(&out.join("report.json"), report)?;
    write_atomic(&out.join("report.md"), markdown(report).as_bytes())
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
    if !r.memory.is_empty() {
        s.push_str("\n## GPU memory\n\nThe buffer pool's high-water mark (the pool is trimmed between phases and models).\n\n| phase | peak |\n|---|--:|\n");
        for p in &r.memory {
            s.push_str(&format!("| {} | {} |\n", p.phase, mib(p.peak_bytes)));
        }
        for m in r.results.iter().filter(|m| m.peak_bytes > 0) {
            s.push_str(&format!(
                "| training {} on {} | {} |\n",
                m.model,
                m.task,
                mib(m.peak_bytes)
            ));
        }
    }
    s.push_str("\nPictures: `feature-maps.png` (rows: true lift, cloned lift for a digit; then the same for the digit rotated by 90°), `clone-loss.png` (cloning MSE, log scale), `train-loss.png` (training loss per epoch).\n");
    s
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}
