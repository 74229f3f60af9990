//! The configuration of a whole run: its two presets, `quick` (sized to finish in minutes on a
//! CPU Vulkan driver) and `paper` (SPEC §3–§6 unchanged), the command-line flags that override a
//! preset ([`Overrides`]), and the checks made before any work starts.

use crate::clone::{CloneConfig, CloneLoss, OperatorKind};
use crate::data::Task;
use crate::models::{Arch, ModelKind};
use crate::train::TrainConfig;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

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

fn default_stall() -> f32 {
    1e-2
}

fn random_source() -> String {
    "random".into()
}

impl CloneSettings {
    /// The cloning run for one operator.
    pub fn config(&self, kind: OperatorKind, d: usize, seed: u64) -> CloneConfig {
        let p4 = kind == OperatorKind::P4;
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
    /// plain, symmetric, rot-sb or trans-sb.
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
    pub seeds: usize,
    pub seed: u64,
    pub clone: CloneSettings,
    pub tasks: Vec<TaskPlan>,
}

/// The flags every pipeline command shares that override the preset (or `--config`) setting of
/// the same name; unset ones leave it as it is. The binary flattens these into its options.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Overrides {
    /// Folder of IDX files (default: the embedded 10,000-digit MNIST subset).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use only the first N train images.
    #[arg(long)]
    pub train_n: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    pub test_n: Option<usize>,
    /// Input side: digits are centre-cropped to it (28 = whole), or with --downsample true
    /// halved to 14×14 and padded to it.
    #[arg(long)]
    pub side: Option<usize>,
    /// Halve the digits' resolution before padding to --side (true or false; quick: true).
    #[arg(long)]
    pub downsample: Option<bool>,
    /// Channels of the four feature layers, e.g. 10,20,20,20.
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<usize>>,
    /// Seeds per model (the report gives mean ± std).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// First seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only these tasks (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Only these models (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Training epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training batch size.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Training learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Cloning iterations.
    #[arg(long)]
    pub clone_iters: Option<usize>,
    /// Filter codes per cloning iteration.
    #[arg(long)]
    pub clone_filters: Option<usize>,
    /// Noise images per filter when cloning (P4 clones use half).
    #[arg(long)]
    pub clone_batch: Option<usize>,
    /// Learning-rate decay per cloning step (1 = constant, the paper's).
    #[arg(long)]
    pub clone_lr_decay: Option<f32>,
    /// Where cloning takes filters and inputs from: random or teacher.
    #[arg(long)]
    pub clone_source: Option<String>,
    /// Cloning learning rate for Z2 and Lift clones (P4 clones use half, as SPEC §3).
    #[arg(long)]
    pub clone_lr: Option<f32>,
    /// Cloning learning-rate warm-up, in optimiser steps (0 = none).
    #[arg(long)]
    pub clone_warmup: Option<usize>,
    /// Cloning loss: sampled (SPEC §3), inputs (exact over the noise images) or exact (exact over
    /// codes and images, Gram form).
    #[arg(long)]
    pub clone_loss: Option<String>,
}

/// The options every pipeline command (`run`, `clone`, `teacher`, `finetune`) shares: the preset
/// or a `--config` file, the flags that override it, and the output folder.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// quick (minutes on a CPU driver), medium (SPEC sizes, 28×28, minutes on a laptop GPU) or
    /// paper (SPEC §3–§6 unchanged).
    #[arg(long, default_value = "quick")]
    pub preset: String,
    /// A JSON run configuration (as written to <out>/config.json) instead of a preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    // Listed in --help as before the split: the overrides, with --out right after --data.
    #[command(flatten, next_display_order = 500)]
    pub over: Overrides,
    /// Output folder (default: runs/<timestamp>).
    #[arg(long, display_order = 500)]
    pub out: Option<PathBuf>,
}

impl RunArgs {
    /// The run configuration these options describe.
    pub fn run_config(&self) -> Result<RunConfig> {
        RunConfig::resolve(&self.preset, self.config.as_deref(), &self.over)
    }

    /// One model on one task (`teacher`, `finetune`): see [`RunConfig::single_task`].
    pub fn single_task(
        &self,
        model: &str,
        task: &str,
        beta: Option<f32>,
        on_clones: bool,
    ) -> Result<RunConfig> {
        let file = self.config.as_deref();
        RunConfig::single_task(&self.preset, file, &self.over, model, task, beta, on_clones)
    }

    /// `--out`, or `runs/<timestamp>`.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(super::default_out_dir)
    }
}

fn symmetric_train(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 64,
        lr: 1e-3,
        lr_decay: 0.95,
        optimizer: "adamw".into(),
        weight_decay: 0.0,
        beta: 1e15,
        seed: 0,
    }
}

fn breaking_train(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 32,
        lr: 5e-4,
        lr_decay: 0.95,
        optimizer: "adam".into(),
        weight_decay: 1e-3,
        beta: 5e10,
        seed: 0,
    }
}

fn all_tasks(epochs: usize) -> Vec<TaskPlan> {
    use ModelKind::*;
    vec![
        TaskPlan {
            task: "symmetric".into(),
            models: vec![Gcnn, FauxGcnn, FauxGcnnKl, Cnn, Mlp],
            train: symmetric_train(epochs),
        },
        TaskPlan {
            task: "rot-sb".into(),
            models: vec![Gcnn, FauxGcnn, FauxGcnnKl, Cnn, Mlp],
            train: breaking_train(epochs),
        },
        TaskPlan {
            task: "trans-sb".into(),
            models: vec![Cnn, Mlp, FauxCnn, FauxCnnKl],
            train: breaking_train(epochs),
        },
    ]
}

impl RunConfig {
    /// A named preset.
    pub fn preset(name: &str) -> Result<RunConfig> {
        match name {
            "paper" => Ok(RunConfig {
                preset: "paper".into(),
                data: None,
                train_n: None,
                test_n: None,
                side: 28,
                downsample: false,
                channels: None,
                mlp: None,
                seeds: 1,
                seed: 0,
                clone: CloneSettings {
                    nb: 9,
                    m: 10,
                    filters: 128,
                    filters_p4: None,
                    batch: 1000,
                    batch_p4: 500,
                    iters: 10_000,
                    accum: 5,
                    lr: 1e-2,
                    lr_p4: 5e-3,
                    weight_decay: 0.01,
                    clip: 1.0,
                    lr_decay: 1.0,
                    source: random_source(),
                    loss: CloneLoss::Sampled,
                    expected: false,
                    warmup: 0,
                    retries: 0,
                    stall: default_stall(),
                },
                tasks: all_tasks(50),
            }),
            "quick" => {
                // Sized for a CPU Vulkan driver (README, "The presets"): digits halved to 14×14
                // on a 16×16 canvas (the T(2) task's canvas scales with them to 28×28), 4-8-8-8
                // channels, 2,000 training digits, 12 epochs. Clones on the exact expected loss
                // (trained in the span of the taps: a step costs the same at every d) with SPEC
                // §2's 9 blocks, 600 iterations after a 20-step warm-up at a high learning rate
                // decaying by 0.995 per step (long enough to leave the 8-block saddle, where two
                // blocks act as one, on every seed tried), and a retry when a run ends there.
                // faux-gcnn-kl runs on rot-sb, where its point is made. The T(2) task runs cnn
                // and mlp: its faux models' dense layers on the 28×28 canvas cost 50 s (faux-cnn)
                // and 2.5 minutes (faux-cnn-kl) per epoch here, which would more than double the
                // run (`--models` asks for them).
                use ModelKind::*;
                let mut tasks = all_tasks(12);
                for t in &mut tasks {
                    t.train.batch = 32;
                    t.train.lr = 2e-3;
                    t.models.retain(|m| match t.task.as_str() {
                        "symmetric" => *m != FauxGcnnKl,
                        "trans-sb" => !matches!(m, FauxCnn | FauxCnnKl),
                        _ => true,
                    });
                }
                Ok(RunConfig {
                    preset: "quick".into(),
                    data: None,
                    train_n: Some(2000),
                    test_n: Some(1000),
                    side: 16,
                    downsample: true,
                    channels: Some([4, 8, 8, 8]),
                    mlp: Some(vec![256, 128]),
                    seeds: 1,
                    seed: 0,
                    clone: CloneSettings {
                        nb: 9,
                        m: 10,
                        filters: 16,
                        filters_p4: None,
                        batch: 32,
                        batch_p4: 16,
                        iters: 600,
                        accum: 1,
                        lr: 0.1,
                        lr_p4: 0.05,
                        weight_decay: 0.01,
                        clip: 1.0,
                        lr_decay: 0.995,
                        source: random_source(),
                        loss: CloneLoss::Exact,
                        expected: false,
                        warmup: 20,
                        retries: 1,
                        stall: default_stall(),
                    },
                    tasks,
                })
            }
            "medium" => super::medium::preset(),
            other => Err(Error::invalid(format!(
                "unknown preset '{other}': use quick, medium or paper"
            ))),
        }
    }

    /// A `--config` file (as written to `<out>/config.json`) when one is given, else the preset.
    pub fn base(preset: &str, file: Option<&Path>) -> Result<RunConfig> {
        match file {
            Some(p) => {
                let bytes = crate::files::read_bounded(
                    p,
                    super::checks::MAX_CONFIG_BYTES,
                    "a run configuration",
                )?;
                super::checks::parse_config(&bytes).map_err(|msg| Error::Data {
                    path: p.display().to_string(),
                    msg,
                })
            }
            None => RunConfig::preset(preset),
        }
    }

    /// [`RunConfig::base`] with the flags' overrides applied, checked.
    pub fn resolve(preset: &str, file: Option<&Path>, o: &Overrides) -> Result<RunConfig> {
        let mut c = RunConfig::base(preset, file)?;
        c.apply(o)?;
        Ok(c)
    }

    /// Apply the flags' overrides, then check the result ([`RunConfig::validate`]).
    pub fn apply(&mut self, o: &Overrides) -> Result<()> {
        if o.data.is_some() {
            self.data = o.data.clone();
        }
        if o.train_n.is_some() {
            self.train_n = o.train_n;
        }
        if o.test_n.is_some() {
            self.test_n = o.test_n;
        }
        if let Some(s) = o.side {
            self.side = s;
        }
        if let Some(d) = o.downsample {
            self.downsample = d;
        }
        if let Some(ch) = &o.channels {
            let a: [usize; 4] = ch
                .as_slice()
                .try_into()
                .map_err(|_| Error::invalid("--channels takes four numbers, e.g. 10,20,20,20"))?;
            self.channels = Some(a);
        }
        if let Some(s) = o.seeds {
            self.seeds = s;
        }
        if let Some(s) = o.seed {
            self.seed = s;
        }
        if let Some(ts) = &o.tasks {
            for t in ts {
                t.parse::<Task>()?;
            }
            self.tasks.retain(|p| ts.contains(&p.task));
            if self.tasks.is_empty() {
                return Err(Error::invalid(format!("--tasks {}: the preset runs none of these (it has symmetric, rot-sb, trans-sb)", ts.join(","))));
            }
        }
        if let Some(ms) = &o.models {
            let kinds: Vec<ModelKind> = ms.iter().map(|m| m.parse()).collect::<Result<_, _>>()?;
            // Chosen among every model SPEC §6 runs on the task, so that a model a preset leaves
            // out for time can be asked for by name.
            let spec = all_tasks(1);
            for t in &mut self.tasks {
                let all = spec.iter().find(|p| p.task == t.task).map(|p| &p.models);
                t.models = all
                    .unwrap_or(&t.models)
                    .iter()
                    .copied()
                    .filter(|m| kinds.contains(m))
                    .collect();
            }
            self.tasks.retain(|t| !t.models.is_empty());
            if self.tasks.is_empty() {
                return Err(Error::invalid(format!(
                    "--models {}: no task of the configuration trains any of these",
                    ms.join(",")
                )));
            }
        }
        for t in &mut self.tasks {
            if let Some(e) = o.epochs {
                t.train.epochs = e;
            }
            if let Some(b) = o.batch {
                t.train.batch = b;
            }
            if let Some(l) = o.lr {
                t.train.lr = l;
            }
        }
        if let Some(v) = o.clone_iters {
            self.clone.iters = v;
        }
        if let Some(v) = o.clone_filters {
            self.clone.filters = v;
            self.clone.filters_p4 = None;
        }
        if let Some(v) = o.clone_batch {
            self.clone.batch = v;
            self.clone.batch_p4 = (v / 2).max(1);
        }
        if let Some(v) = o.clone_lr_decay {
            self.clone.lr_decay = v;
        }
        if let Some(v) = o.clone_lr {
            self.clone.lr = v;
            self.clone.lr_p4 = v / 2.0;
        }
        if let Some(v) = o.clone_warmup {
            self.clone.warmup = v;
        }
        if let Some(v) = &o.clone_source {
            self.clone.source = v.clone();
        }
        if let Some(v) = &o.clone_loss {
            self.clone.loss = v.parse()?;
            self.clone.expected = false;
        }
        self.validate()
    }

    /// A configuration that trains one model on one task with the preset's settings for that task
    /// (plain uses the symmetric task's); `beta` overrides the KL weight. The flags' `--tasks` and
    /// `--models` are ignored. `on_clones`: the model must be built on clones (`finetune`), or
    /// must not be (`teacher`).
    pub fn single_task(
        preset: &str,
        file: Option<&Path>,
        o: &Overrides,
        model: &str,
        task: &str,
        beta: Option<f32>,
        on_clones: bool,
    ) -> Result<RunConfig> {
        let kind: ModelKind = model.parse()?;
        let t: Task = task.parse()?;
        let o = Overrides {
            tasks: None,
            models: None,
            ..o.clone()
        };
        let mut cfg = RunConfig::resolve(preset, file, &o)?;
        let key = if t == Task::Plain {
            "symmetric"
        } else {
            t.name()
        };
        let mut plan = cfg
            .tasks
            .iter()
            .find(|p| p.task == key)
            .cloned()
            .ok_or_else(|| Error::invalid(format!("the preset has no settings for {task}")))?;
        plan.task = t.name().to_string();
        plan.models = vec![kind];
        if let Some(b) = beta {
            plan.train.beta = b;
        }
        cfg.tasks = vec![plan];
        cfg.validate()?;
        match (on_clones, kind.cloned().is_some()) {
            (false, true) => Err(Error::invalid(format!(
                "{model} is built on clones: use `finetune --clones DIR`"
            ))),
            (true, false) => Err(Error::invalid(format!(
                "{model} has no cloned layers: use `teacher`"
            ))),
            _ => Ok(cfg),
        }
    }
}

/// The architecture of a model on a task under this configuration.
pub fn arch_for(cfg: &RunConfig, model: ModelKind, task: Task) -> Arch {
    let side = task.canvas(cfg.side).size;
    let mut a = Arch::paper(model, side, task.num_classes());
    if let Some(c) = cfg.channels {
        a.channels = c;
    }
    if let Some(m) = &cfg.mlp {
        a.mlp = m.clone();
    }
    a
}
