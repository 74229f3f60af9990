//! A run resolved once, before any work: for every task × model its architecture, training
//! settings and the clones it is built on; every clone the run makes with its settings and seed;
//! and the content hash (SHA-256) of each result, which `--resume` compares with what is stored.
//! The phases receive this plan and derive none of it again.

use super::types::RunConfig;
use crate::clone::{CloneConfig, OperatorKind};
use crate::data::{Dataset, Task};
use crate::files::{content_hash, sha256_hex};
use crate::models::{clones_needed, Arch, ModelKind};
use crate::train::TrainConfig;
use crate::Result;

/// One cloned operator a run makes.
#[derive(Clone, Debug)]
pub struct ClonePlan {
    pub kind: OperatorKind,
    pub d: usize,
    /// Its cloning run (the seed included).
    pub config: CloneConfig,
    /// The hash its checkpoint is stored with: of its cloning run and the clone source.
    pub hash: String,
    /// The models that need it, as "MODEL on TASK".
    pub users: Vec<String>,
}

impl ClonePlan {
    /// `<kind><d>` ([`crate::clone::OperatorKind::stem`]): the stem of its files in `clones/`.
    pub fn stem(&self) -> String {
        self.kind.stem(self.d)
    }
}

/// One model on one task.
#[derive(Clone, Debug)]
pub struct ModelPlan {
    /// The task as the configuration names it.
    pub task_name: String,
    pub task: Task,
    pub model: ModelKind,
    pub arch: Arch,
    /// Its training (the seed is set per seed: [`ModelPlan::train_for`]).
    pub train: TrainConfig,
    /// The (kind, side) of each cloned operator it is built on.
    pub clones: Vec<(OperatorKind, usize)>,
    /// The hashes of those clones when the run makes them (empty for clones given ready).
    clone_hashes: Vec<String>,
    /// The hash of the data it trains and tests on.
    data_hash: String,
}

impl ModelPlan {
    /// Its training with one seed.
    pub fn train_for(&self, seed: u64) -> TrainConfig {
        TrainConfig {
            seed,
            ..self.train.clone()
        }
    }

    /// The hash one seed's result and checkpoint are stored with: of the architecture, the
    /// training, the model, the task, the data and the clones it is built on.
    pub fn seed_hash(&self, seed: u64) -> String {
        content_hash(&(
            &self.arch,
            &self.train_for(seed),
            self.model,
            &self.task_name,
            &self.data_hash,
            &self.clone_hashes,
        ))
    }

    /// `<task>-<model>-s<seed>`: the stem of one seed's files in `models/`.
    pub fn stem(&self, seed: u64) -> String {
        format!("{}-{}-s{seed}", self.task_name, self.model.name())
    }
}

/// A run resolved: what it clones and what it trains, in order.
#[derive(Clone, Debug)]
pub struct RunPlan {
    pub cfg: RunConfig,
    /// Every cloned operator the models need, in first-use order.
    pub clones: Vec<ClonePlan>,
    /// Every model of every task, in the configuration's order.
    pub models: Vec<ModelPlan>,
    /// Whether the clones are given ready (`finetune --clones`) instead of made by the run.
    pub clones_given: bool,
    /// The hash of the configuration, kept in the report.
    pub config_hash: String,
}

/// The hash of a data set: of both parts' images and labels.
pub fn data_hash(ds: &Dataset) -> String {
    sha256_hex(&[
        &ds.train.images,
        &ds.train.labels,
        &ds.test.images,
        &ds.test.labels,
    ])
}

/// The clone runs for `needed` (in that order) under `cfg`: the i-th is seeded `seed + 1000 + i`.
pub fn clone_plans(cfg: &RunConfig, needed: &[(OperatorKind, usize)]) -> Vec<ClonePlan> {
    needed
        .iter()
        .enumerate()
        .map(|(i, &(kind, d))| {
            let config = cfg
                .clone
                .config(kind, d, cfg.seed.wrapping_add(1000 + i as u64));
            ClonePlan {
                kind,
                d,
                hash: content_hash(&(&config, &cfg.clone.source)),
                config,
                users: Vec::new(),
            }
        })
        .collect()
}

impl RunPlan {
    /// Resolve a checked configuration on the data it trains on; `clones_given`: the clones come
    /// ready (`--clones`), so the models' results are not keyed by cloning settings.
    pub fn new(cfg: &RunConfig, ds: &Dataset, clones_given: bool) -> Result<RunPlan> {
        cfg.validate()?;
        let data = data_hash(ds);
        let mut needed: Vec<(OperatorKind, usize)> = Vec::new();
        let mut models = Vec::new();
        for t in &cfg.tasks {
            let task: Task = t.task.parse()?;
            for &model in &t.models {
                let arch = cfg.arch(model, task);
                let clones = clones_needed(model, &arch)?;
                for k in &clones {
                    if !needed.contains(k) {
                        needed.push(*k);
                    }
                }
                models.push(ModelPlan {
                    task_name: t.task.clone(),
                    task,
                    model,
                    arch,
                    train: t.train.clone(),
                    clones,
                    clone_hashes: Vec::new(),
                    data_hash: data.clone(),
                });
            }
        }
        let mut clones = clone_plans(cfg, &needed);
        for c in &mut clones {
            c.users = models
                .iter()
                .filter(|m| m.clones.contains(&(c.kind, c.d)))
                .map(|m| format!("{} on {}", m.model, m.task_name))
                .collect();
        }
        if !clones_given {
            for m in &mut models {
                m.clone_hashes = m
                    .clones
                    .iter()
                    .filter_map(|&k| clones.iter().find(|c| (c.kind, c.d) == k))
                    .map(|c| c.hash.clone())
                    .collect();
            }
        }
        Ok(RunPlan {
            cfg: cfg.clone(),
            clones,
            models,
            clones_given,
            config_hash: content_hash(cfg),
        })
    }

    /// The (kind, side) of every clone, in first-use order.
    pub fn needed(&self) -> Vec<(OperatorKind, usize)> {
        self.clones.iter().map(|c| (c.kind, c.d)).collect()
    }
}
