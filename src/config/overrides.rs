//! A configuration as a command asks for it: a preset or a `--config` file, with the command
//! line's overrides applied and the result checked.

use super::checks::parse_config;
use super::presets::{all_tasks, d4_tasks};
use super::types::RunConfig;
use crate::data::Task;
use crate::models::ModelKind;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The settings a command line overrides in a preset (or a `--config` file), each named as its
/// flag; unset ones leave the setting as it is.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Folder of IDX files (default: the embedded 10,000-digit MNIST subset).
    pub data: Option<PathBuf>,
    /// Use only the first N train images.
    pub train_n: Option<usize>,
    /// Use only the first N test images.
    pub test_n: Option<usize>,
    /// Input side: digits are centre-cropped to it (28 = whole), or with --downsample true
    /// halved to 14×14 and padded to it.
    pub side: Option<usize>,
    /// Halve the digits' resolution before padding to --side (true or false; quick: true).
    pub downsample: Option<bool>,
    /// Channels of the four feature layers, e.g. 10,20,20,20.
    pub channels: Option<Vec<usize>>,
    /// Read the faux models' frozen clone blocks in half precision (true or false).
    pub half_blocks: Option<bool>,
    /// The `trans-sb` canvas's padding in pixels (0: SPEC's canvas scaled to the side).
    pub trans_pad: Option<usize>,
    /// Seeds per model (the report gives mean ± std).
    pub seeds: Option<usize>,
    /// First seed.
    pub seed: Option<u64>,
    /// The symmetry groups whose tasks run: c4 (the paper's tasks) and d4 (SPEC §9's).
    pub groups: Option<Vec<String>>,
    /// Only these tasks (comma-separated).
    pub tasks: Option<Vec<String>>,
    /// Only these models (comma-separated).
    pub models: Option<Vec<String>>,
    /// Training epochs.
    pub epochs: Option<usize>,
    /// Training batch size.
    pub batch: Option<usize>,
    /// Training learning rate.
    pub lr: Option<f32>,
    /// What β weighs in `*-kl` models: kl (SPEC §5) or l2 (squared distance to the clone).
    pub penalty: Option<String>,
    /// Cloning iterations.
    pub clone_iters: Option<usize>,
    /// Filter codes per cloning iteration.
    pub clone_filters: Option<usize>,
    /// Noise images per filter when cloning (P4 clones use half).
    pub clone_batch: Option<usize>,
    /// Learning-rate decay per cloning step (1 = constant, the paper's).
    pub clone_lr_decay: Option<f32>,
    /// Where cloning takes filters and inputs from: random or teacher.
    pub clone_source: Option<String>,
    /// Cloning learning rate for Z2 and Lift clones (P4 clones use half, as SPEC §3).
    pub clone_lr: Option<f32>,
    /// Cloning learning-rate warm-up, in optimiser steps (0 = none).
    pub clone_warmup: Option<usize>,
    /// Cloning loss: sampled (SPEC §3), inputs (exact over the noise images) or exact (exact over
    /// codes and images, Gram form).
    pub clone_loss: Option<String>,
}

impl RunConfig {
    /// A `--config` file (as written to `<out>/config.json`) when one is given, else the preset.
    pub fn base(preset: &str, file: Option<&Path>) -> Result<RunConfig> {
        match file {
            Some(p) => {
                let bytes = crate::files::Bound::CONFIG.read(p)?;
                parse_config(&bytes).map_err(|msg| Error::Data {
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

    /// `--groups`: keep the C4 tasks only when c4 is asked for, add SPEC §9's D4 tasks when d4 is
    /// (or when `--tasks` names one of them). Without either flag the configuration is unchanged.
    fn apply_groups(&mut self, o: &Overrides) -> Result<()> {
        use crate::group::Group;
        let d4 = |t: &str| t.parse::<Task>().is_ok_and(|t| t.group() == Group::D4);
        let named_d4 = o.tasks.iter().flatten().any(|t| d4(t));
        let groups = match &o.groups {
            Some(gs) => gs
                .iter()
                .map(|g| g.parse::<Group>())
                .collect::<Result<Vec<_>>>()?,
            None if named_d4 => vec![Group::C4, Group::D4],
            None => return Ok(()),
        };
        if groups.contains(&Group::D4) {
            let missing: Vec<_> = d4_tasks(self)
                .into_iter()
                .filter(|p| !self.tasks.iter().any(|q| q.task == p.task))
                .collect();
            self.tasks.extend(missing);
        }
        if !groups.contains(&Group::C4) {
            self.tasks.retain(|p| d4(&p.task));
        }
        if !groups.contains(&Group::D4) {
            self.tasks.retain(|p| !d4(&p.task));
        }
        Ok(())
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
        if let Some(h) = o.half_blocks {
            self.half_blocks = h;
        }
        if let Some(p) = o.trans_pad {
            self.trans_pad = (p > 0).then_some(p);
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
        self.apply_groups(o)?;
        if let Some(ts) = &o.tasks {
            for t in ts {
                t.parse::<Task>()?;
            }
            let had: Vec<String> = self.tasks.iter().map(|p| p.task.clone()).collect();
            self.tasks.retain(|p| ts.contains(&p.task));
            if self.tasks.is_empty() {
                return Err(Error::invalid(format!(
                    "--tasks {}: the configuration runs none of these (it has {})",
                    ts.join(","),
                    had.join(", ")
                )));
            }
        }
        if let Some(ms) = &o.models {
            let kinds: Vec<ModelKind> = ms.iter().map(|m| m.parse()).collect::<Result<_, _>>()?;
            // Chosen among every model SPEC §6 runs on the task, so that a model a preset leaves
            // out for time can be asked for by name.
            let mut spec = all_tasks(1);
            spec.extend(d4_tasks(self));
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
            if let Some(p) = &o.penalty {
                t.train.penalty = p.parse()?;
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
            // Every task's settings are there to choose from, SPEC §9's included.
            groups: Some(vec!["c4".into(), "d4".into()]),
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
