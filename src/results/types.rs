//! What a run measured (SPEC §7): the report's types, as `report.json` holds them.

use crate::clone::{CloneStats, OperatorKind};
use crate::config::RunConfig;
use crate::models::ModelKind;

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
    /// The lowest relative MSE any student with this many blocks can reach (SPEC §3's
    /// clonability bound), when the run computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clonability_bound: Option<f64>,
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
    /// Test digits each seed's accuracy is measured on (0 in reports written before it was kept).
    #[serde(default)]
    pub test_samples: usize,
    pub train_seconds: f64,
    pub trainable_params: usize,
    /// For frozen cloned models: whether every cloned tensor was bit-identical after training.
    pub clones_unchanged: Option<bool>,
    pub history: Vec<crate::train::EpochLog>,
    /// The GPU buffer pool's high-water mark while this model trained (bytes; the data and clones
    /// already on the GPU included).
    #[serde(default)]
    pub peak_bytes: u64,
    /// Floating-point operations of one training step (matrix products and convolutions).
    #[serde(default)]
    pub step_flops: u64,
    /// Per training step: dispatches, bytes read and written per kernel family (from each
    /// launch's bindings, see `gpu::counters`) and CPU time spent recording; the mean over the
    /// seeds' steps after their first. None in reports written before they were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_counts: Option<crate::gpu::StepCounts>,
    /// The same per batch of the evaluation after training (forward passes only), the mean over
    /// the seeds. None in reports written before they were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_counts: Option<crate::gpu::StepCounts>,
    /// Test accuracy per test rotation (0°, 90°, 180°, 270°; on the D4 tasks those and then each
    /// with the rows flipped: the element k of [`crate::group::element_name`]), mean over the
    /// seeds, when the run measured it (SPEC §7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_by_rotation: Option<Vec<f32>>,
    /// The per-layer equivariance error of the network's feature layers, before and after
    /// fine-tuning, when the run measured it (SPEC §7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_equivariance: Option<Vec<LayerEquivariance>>,
    /// The group of the orbit measures, in words (C4 on the rotation tasks, label-preserving
    /// translations on trans-sb; see `pipeline::symmetry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orbit_group: Option<String>,
    /// Share of test digits whose four orbit transforms get the same prediction, up to the
    /// task's label shift (mean over the seeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orbit_consistency: Option<f32>,
    /// `‖f(g·x) − f(x)‖ / ‖f(x)‖` of the logits, mean over test digits and group elements (and
    /// the seeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invariance_error: Option<f64>,
    /// For KL models: each cloned tensor's `KL_t` (no β) at the end of training, mean over the
    /// seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl_terms: Option<Vec<KlTerm>>,
}

pub use crate::models::KlTerm;

/// One feature layer's equivariance error `‖Φ(g·x) − g·Φ(x)‖ / ‖Φ(x)‖`, before and after
/// fine-tuning.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerEquivariance {
    pub layer: String,
    pub before: Option<f64>,
    pub after: f64,
}

/// SPEC §3's fidelity check.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Fidelity {
    /// MSE of (clone lift → clone P4) against (true lift → true P4) on one real digit with random
    /// filters drawn uniform on [0, 1).
    pub mse: f64,
    /// The mean square of the true output, for scale.
    pub target_mean_square: f64,
    /// The feature maps of the true and the cloned lift layer the figure shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps: Option<FeatureMaps>,
}

/// The lift layer's output planes, true and cloned, for a digit and for the digit turned by 90°
/// (the filter is the fidelity check's).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FeatureMaps {
    /// Input side d (planes are (d − 2) × (d − 2)).
    pub side: usize,
    /// The digit and the digit turned by 90°, d × d each, values in [0, 1].
    pub inputs: Vec<Vec<f32>>,
    /// `true_planes[i][r]`: plane r of the true lift layer's output on input i.
    pub true_planes: Vec<Vec<Vec<f32>>>,
    /// The same for the clone.
    pub clone_planes: Vec<Vec<Vec<f32>>>,
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
    /// The kernel variant each op ran, per shape bucket, and how it was chosen (`gpu::tune`): the
    /// results are bit-reproducible for these choices.
    #[serde(default)]
    pub kernels: Vec<crate::gpu::Choice>,
    /// Why the run stopped before the end (its time limit), when it did: the report then holds
    /// what was done, and `run --resume` with the same folder goes on from there.
    #[serde(default)]
    pub incomplete: Option<String>,
}

/// One phase's peak GPU memory.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PhaseMemory {
    pub phase: String,
    /// The most bytes the buffer pool held at once during the phase.
    pub peak_bytes: u64,
    /// Floating-point operations of the phase's matrix products and convolutions.
    #[serde(default)]
    pub flops: u64,
}

impl Report {
    /// Check what a report read back claims before it is drawn: accuracies and the other
    /// fractions in [0, 1], spreads and times finite and not negative; the error
    /// names the model and the value (a hand-edited or corrupt report.json is refused, not
    /// rendered as an accuracy of −500 %).
    pub fn check(&self) -> crate::Result<()> {
        let bad = |what: String, v: f64, range: &str| {
            crate::Error::invalid(format!(
                "report.json: {what} is {v}, not {range}: the file is corrupt or edited by hand; run again (or `run --resume`) to write it anew"
            ))
        };
        let fraction = |what: String, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(bad(what, v, "a fraction in [0, 1]"))
            }
        };
        let size = |what: String, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(bad(what, v, "a finite number ≥ 0"))
            }
        };
        for m in &self.results {
            let who = format!("{} on {}", m.model, m.task);
            for (i, a) in m.test_acc.iter().enumerate() {
                fraction(format!("the test accuracy of {who}, seed {i}"), *a as f64)?;
            }
            fraction(format!("the mean accuracy of {who}"), m.mean as f64)?;
            size(format!("the accuracy spread of {who}"), m.std as f64)?;
            size(format!("the training time of {who}"), m.train_seconds)?;
            for (r, a) in m.accuracy_by_rotation.iter().flatten().enumerate() {
                fraction(format!("the accuracy of {who} at rotation {r}"), *a as f64)?;
            }
            if let Some(o) = m.orbit_consistency {
                fraction(format!("the orbit consistency of {who}"), o as f64)?;
            }
            for e in &m.history {
                fraction(
                    format!("the training accuracy of {who}, epoch {}", e.epoch),
                    e.train_acc as f64,
                )?;
            }
        }
        size("the run's time".into(), self.seconds)
    }
}
