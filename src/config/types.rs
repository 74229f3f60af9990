//! The configuration of a whole run as it is written to `config.json`: what a run clones, on
//! which tasks it trains which models, and how. [`RunConfig::arch`] is the one place a model's
//! architecture under a configuration is decided.

use crate::clone::{CloneConfig, CloneLoss, OperatorKind};
use crate::data::Task;
use crate::models::{Arch, ModelKind};
use crate::train::TrainConfig;
use std::path::PathBuf;

/// How the cloned operators are trained.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CloneSettings {
    pub nb: usize,
    pub m: usize,
    pub filters: usize,
    /// Filter codes per iteration for P4 clones (each has 16 transformed codes, so its dense
    /// operators are 4× those of a lift clone's).
    #[serde(default)]
    pub filters_p4: Option<usize>,
    /// Noise images per filter for Z2 and Lift clones.
    pub batch: usize,
    /// Noise images per filter for P4 clones.
    pub batch_p4: usize,
    pub iters: usize,
    pub accum: usize,
    pub lr: f32,
    pub lr_p4: f32,
    pub weight_decay: f32,
    pub clip: f32,
    pub lr_decay: f32,
    /// Where filters and inputs come from: "random" (Gaussian filters and noise, SPEC §3) or
    /// "teacher" (a trained teacher's filters and its feature maps on transformed digits, **[ours]**).
    #[serde(default = "random_source")]
    pub source: String,
    /// The form of the random-source cloning loss: sampled, inputs or exact (see `CloneLoss`).
    #[serde(default)]
    pub loss: CloneLoss,
    /// Read from configuration files written before `loss` existed: `true` meant `inputs`.
    #[serde(default, skip_serializing)]
    pub expected: bool,
    /// Learning-rate warm-up steps (see `CloneConfig::warmup`).
    #[serde(default)]
    pub warmup: usize,
    /// Retry a clone from another seed when its best relative MSE ends above `stall`
    /// (**[ours]**; 0 in the paper preset).
    #[serde(default)]
    pub retries: u32,
    #[serde(default = "default_stall")]
    pub stall: f32,
}

pub(super) fn default_stall() -> f32 {
    1e-2
}

pub(super) fn random_source() -> String {
    "random".into()
}

impl CloneSettings {
    /// The cloning run for one operator.
    pub fn config(&self, kind: OperatorKind, d: usize, seed: u64) -> CloneConfig {
        // P4 and p4m: the group → group kinds take the P4 settings.
        let p4 = kind.in_planes() > 1;
        CloneConfig {
            kind,
            d,
            nb: self.nb,
            m: self.m,
            filters: if p4 {
                self.filters_p4.unwrap_or(self.filters)
            } else {
                self.filters
            },
            batch: if p4 { self.batch_p4 } else { self.batch },
            iters: self.iters,
            accum: self.accum,
            lr: if p4 { self.lr_p4 } else { self.lr },
            weight_decay: self.weight_decay,
            clip: self.clip,
            lr_decay: self.lr_decay,
            seed,
            loss: match (self.loss, self.expected) {
                (CloneLoss::Sampled, true) => CloneLoss::Inputs,
                (l, _) => l,
            },
            warmup: self.warmup,
            chunk: None,
            stop_at: None,
        }
    }
}

/// One task and the models trained on it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskPlan {
    /// plain, symmetric, rot-sb, trans-sb, symmetric-d4 or mirror-sb.
    pub task: String,
    pub models: Vec<ModelKind>,
    pub train: TrainConfig,
}

/// Everything a run does.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub preset: String,
    /// A data folder (None: the embedded MNIST subset).
    pub data: Option<PathBuf>,
    pub train_n: Option<usize>,
    pub test_n: Option<usize>,
    /// Digits are centre-cropped to this side (28: unchanged). MNIST digits sit in the central
    /// 20×20 box, so a 20-pixel crop keeps them whole and makes the dense clones 4× cheaper.
    pub side: usize,
    /// Halve the digits' resolution (28 → 14, 2×2 means) and pad them to `side` instead of
    /// cropping: the whole digit at a quarter of the pixels, for CPU drivers.
    #[serde(default)]
    pub downsample: bool,
    /// Channels of the four feature layers (None: SPEC §4's per model).
    pub channels: Option<[usize; 4]>,
    /// Hidden widths of the MLP (None: SPEC §4's).
    pub mlp: Option<Vec<usize>>,
    /// The faux models' frozen clone blocks read in half precision (f32 when false, the
    /// default; left out of `config.json` then, so the hashes of earlier runs stay as they were).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub half_blocks: bool,
    /// The `trans-sb` canvas's padding in pixels, shifts within it ([`crate::data::Canvas::compact`]);
    /// None: SPEC §6's canvas scaled to the side (left out of `config.json` then, so the hashes
    /// of earlier runs stay as they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trans_pad: Option<usize>,
    pub seeds: usize,
    pub seed: u64,
    pub clone: CloneSettings,
    pub tasks: Vec<TaskPlan>,
}

impl RunConfig {
    /// The canvas a task's digits are placed on under this configuration.
    pub fn canvas(&self, task: Task) -> crate::data::Canvas {
        task.canvas_for(self.side, self.trans_pad)
    }

    /// The architecture of a model on a task under this configuration: SPEC §4's for the task's
    /// canvas, with the configuration's channels (÷ √2 for the D4 networks) and MLP widths when it sets
    /// them.
    pub fn arch(&self, model: ModelKind, task: Task) -> Arch {
        let side = self.canvas(task).size;
        let mut a = Arch::paper(model, side, task.num_classes());
        if let Some(c) = self.channels {
            // The configuration's channels are the C4 network's; the D4 one divides them by √2.
            a.channels = if model.orientations() == 8 {
                crate::models::d4_channels(c)
            } else {
                c
            };
        }
        if let Some(m) = &self.mlp {
            a.mlp = m.clone();
        }
        a.half_blocks = self.half_blocks;
        a
    }
}
