//! The command line's argument types, and how each maps to the library's settings.

use crate::Cli;
use clap::CommandFactory;
use std::path::PathBuf;
use symclone::commands::mixer::MixerArgs;
use symclone::config::{Overrides, RunConfig};
use symclone::sweep::{Executor, SlurmArgs, SweepRunArgs};
use symclone::Result;

/// The flags every pipeline command shares that override the preset (or `--config`) setting of
/// the same name; unset ones leave it as it is.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct OverrideArgs {
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
    /// Read the faux models' frozen clone blocks in half precision (IEEE binary16, decoded in the
    /// kernel, on any adapter): half the bytes of those tensors, a tenfold (still small)
    /// equivariance error; the clones, their checkpoints and the KL models' trainable blocks stay
    /// f32 (true or false; default false)
    #[arg(long)]
    pub half_blocks: Option<bool>,
    /// The trans-sb canvas's padding in pixels: the digit with this many pixels of zeros on each
    /// side, shifted left or right by ⌈N/3⌉ to N pixels and down by 0 to N, so that none of it
    /// leaves the canvas (1 to 10; 0: SPEC §6's canvas, scaled to --side, whose shifts reach
    /// past its padding)
    #[arg(long)]
    pub trans_pad: Option<usize>,
    /// Seeds per model (the report gives mean ± std).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// First seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The symmetry groups whose tasks run (comma-separated): c4 (the paper's: symmetric, rot-sb,
    /// trans-sb; the default) and d4 (SPEC §9's reflections: symmetric-d4, mirror-sb, with gcnn,
    /// d4-gcnn, cnn and mlp, trained as symmetric and rot-sb). Naming a d4 task in --tasks adds d4.
    #[arg(long, value_delimiter = ',')]
    pub groups: Option<Vec<String>>,
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
    /// What β weighs in the -kl models: kl (SPEC §5's KL of the softmaxes, blind to a shift
    /// along their axis) or l2 (the squared distance to the cloned tensors: the whole drift).
    #[arg(long)]
    pub penalty: Option<String>,
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

impl OverrideArgs {
    /// The library's overrides.
    fn overrides(&self) -> Overrides {
        Overrides {
            data: self.data.clone(),
            train_n: self.train_n,
            test_n: self.test_n,
            side: self.side,
            downsample: self.downsample,
            channels: self.channels.clone(),
            half_blocks: self.half_blocks,
            trans_pad: self.trans_pad,
            seeds: self.seeds,
            seed: self.seed,
            groups: self.groups.clone(),
            tasks: self.tasks.clone(),
            models: self.models.clone(),
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            penalty: self.penalty.clone(),
            clone_iters: self.clone_iters,
            clone_filters: self.clone_filters,
            clone_batch: self.clone_batch,
            clone_lr_decay: self.clone_lr_decay,
            clone_source: self.clone_source.clone(),
            clone_lr: self.clone_lr,
            clone_warmup: self.clone_warmup,
            clone_loss: self.clone_loss.clone(),
        }
    }
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
    pub over: OverrideArgs,
    /// Output folder (default: runs/<timestamp>).
    #[arg(long, display_order = 500)]
    pub out: Option<PathBuf>,
}

impl RunArgs {
    /// The run configuration these options describe.
    pub fn run_config(&self) -> Result<RunConfig> {
        RunConfig::resolve(&self.preset, self.config.as_deref(), &self.over.overrides())
    }

    /// One model on one task (`teacher`, `finetune`): see [`RunConfig::single_task`].
    pub fn single_task(
        &self,
        model: &str,
        task: &str,
        beta: Option<f32>,
        on_clones: bool,
    ) -> Result<RunConfig> {
        let (file, over) = (self.config.as_deref(), self.over.overrides());
        RunConfig::single_task(&self.preset, file, &over, model, task, beta, on_clones)
    }

    /// The first seed the flags set, if any.
    pub fn seed(&self) -> Option<u64> {
        self.over.seed
    }

    /// `--out`, or `runs/<timestamp>`.
    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(symclone::files::default_out_dir)
    }
}

/// The mixer's knobs on the command line; unset ones take the preset's (SPEC §8's for `paper`).
#[derive(clap::Parser, Clone, Debug)]
pub struct MixerFlags {
    /// Mixer kinds: training iterations (paper: 12,000 v5, 80,000 v6).
    #[arg(long)]
    pub iters: Option<usize>,
    /// Mixer kinds: kernel side k (paper: 3 v5, 5 v6).
    #[arg(long)]
    pub kernel: Option<usize>,
    /// Mixer kinds: channels of the teacher convolution, in and out (paper: 4).
    #[arg(long)]
    pub mixer_channels: Option<usize>,
    /// Mixer kinds: width of the mixers (paper: 24).
    #[arg(long)]
    pub mixer_width: Option<usize>,
    /// Mixer kinds: blocks per mixer (paper: 2).
    #[arg(long)]
    pub mixer_depth: Option<usize>,
    /// Mixer kinds: token-mixing expansion, T → m·T → T (paper: 4).
    #[arg(long)]
    pub mixer_token_mult: Option<usize>,
    /// Mixer kinds: channel-mixing hidden width (paper: 12).
    #[arg(long)]
    pub mixer_channel_hidden: Option<usize>,
    /// Mixer kinds: filters per iteration (paper: 50).
    #[arg(long)]
    pub mixer_filters: Option<usize>,
    /// Mixer kinds: inputs per filter (paper: 200 v5, 2000 v6).
    #[arg(long)]
    pub mixer_batch: Option<usize>,
    /// Mixer kinds: iterations per optimiser step (paper: 25 v5, 10 v6).
    #[arg(long)]
    pub mixer_accum: Option<usize>,
    /// Mixer kinds: AdamW learning rate (paper: 1e-3 v5, 2e-4 v6).
    #[arg(long)]
    pub mixer_lr: Option<f32>,
    /// Mixer kinds: optimiser steps of linear learning-rate warm-up (paper: 0).
    #[arg(long)]
    pub mixer_warmup: Option<usize>,
    /// Mixer kinds: learning-rate multiplier after every optimiser step (paper: 1, constant).
    #[arg(long)]
    pub mixer_lr_decay: Option<f32>,
    /// Mixer kinds: AdamW weight decay (paper: 0.01).
    #[arg(long)]
    pub mixer_wd: Option<f32>,
    /// Mixer kinds: global gradient-norm clip (paper: 1.0).
    #[arg(long)]
    pub mixer_clip: Option<f32>,
    /// Mixer kinds: iterations of the 9-block operator clone trained beside it (paper: 10,000).
    #[arg(long)]
    pub operator_iters: Option<usize>,
    /// Mixer kinds: held-out filters for fidelity and equivariance.
    #[arg(long, default_value_t = 8)]
    pub eval_filters: usize,
    /// Mixer kinds: held-out inputs per filter.
    #[arg(long, default_value_t = 16)]
    pub eval_inputs: usize,
}

impl MixerFlags {
    /// The library's mixer settings.
    pub fn args(&self) -> MixerArgs {
        MixerArgs {
            iters: self.iters,
            kernel: self.kernel,
            mixer_channels: self.mixer_channels,
            mixer_width: self.mixer_width,
            mixer_depth: self.mixer_depth,
            mixer_token_mult: self.mixer_token_mult,
            mixer_channel_hidden: self.mixer_channel_hidden,
            mixer_filters: self.mixer_filters,
            mixer_batch: self.mixer_batch,
            mixer_accum: self.mixer_accum,
            mixer_lr: self.mixer_lr,
            mixer_warmup: self.mixer_warmup,
            mixer_lr_decay: self.mixer_lr_decay,
            mixer_wd: self.mixer_wd,
            mixer_clip: self.mixer_clip,
            operator_iters: self.operator_iters,
            eval_filters: self.eval_filters,
            eval_inputs: self.eval_inputs,
        }
    }
}

/// Where a sweep's cells run.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ExecutorArg {
    Local,
    Slurm,
}

/// The SLURM job's flags (written into `sweep.sbatch`).
#[derive(clap::Args, Clone, Debug)]
pub struct SlurmFlags {
    /// SLURM partition (default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per cell, in SLURM's form (e.g. 2:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// GPUs per cell (--gres=gpu:N; 0 leaves --gres out).
    #[arg(long, default_value_t = 1)]
    pub gpus: u32,
    /// At most this many cells at once (--array=…%P).
    #[arg(long)]
    pub throttle: Option<u32>,
}

/// The options of `sweep run`.
#[derive(clap::Args, Clone, Debug)]
pub struct SweepRunFlags {
    /// local (this machine) or slurm (a job array submitted with sbatch).
    #[arg(long, value_enum, default_value = "local")]
    pub executor: ExecutorArg,
    /// local: run this many cells at once, each in its own process (default: one after another
    /// in this process).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub slurm: SlurmFlags,
    /// slurm: write DIR/sweep.sbatch and print the sbatch command, submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl SweepRunFlags {
    /// The library's `sweep run` options.
    pub fn args(&self) -> SweepRunArgs {
        SweepRunArgs {
            executor: match self.executor {
                ExecutorArg::Local => Executor::Local,
                ExecutorArg::Slurm => Executor::Slurm,
            },
            jobs: self.jobs,
            slurm: SlurmArgs {
                partition: self.slurm.partition.clone(),
                time: self.slurm.time.clone(),
                gpus: self.slurm.gpus,
                throttle: self.slurm.throttle,
            },
            dry_run: self.dry_run,
        }
    }
}

/// The flags of `check`.
#[derive(clap::Args, Clone, Debug)]
pub struct CheckArgs {
    /// Only cases whose name contains this text (e.g. matmul, mm_subgroup, conv_igemm, norm).
    #[arg(long)]
    pub filter: Option<String>,
    /// Write the table as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Also write every case, as run here under WebGPU's default limits, into this new (or empty)
    /// folder: each case's final WGSL, bindings, parameters, inputs, grids, expected outputs and
    /// bounds, beside index.html, a page that replays them in a browser's WebGPU (Chrome: Dawn
    /// and Tint) and reports per case. Serve the folder (python3 -m http.server -d DIR) or open
    /// index.html as a file.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
}

/// The ids of the flags of `m` given on the command line or through the environment, but for the
/// global flags (--adapter, …) and the ids of flattened groups (`MixerFlags`).
fn given(m: &clap::ArgMatches) -> Vec<&str> {
    let global: Vec<String> = Cli::command()
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    m.ids()
        .map(|id| id.as_str())
        .filter(|id| !global.iter().any(|g| g == id) && !id.starts_with(char::is_uppercase))
        .filter(|id| {
            matches!(
                m.value_source(id),
                Some(
                    clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable
                )
            )
        })
        .collect()
}

/// `clone` reads the mixer's flags only for the mixer kinds, and the mixer kinds read only
/// --preset, --seed, --dim and --out: a flag the kind does not use is refused, not ignored.
pub fn unused_flags(m: &clap::ArgMatches) -> Result<()> {
    let Some(("clone", c)) = m.subcommand() else {
        return Ok(());
    };
    let mixer_names: Vec<String> = MixerFlags::command()
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    let mixer_ids: Vec<&str> = mixer_names.iter().map(String::as_str).collect();
    let kind = c
        .get_one::<String>("kind")
        .map(String::as_str)
        .unwrap_or("");
    let mixer = symclone::commands::mixer::mixer_kind(kind).is_some();
    let used = ["kind", "dim", "preset", "seed", "out"];
    let unused: Vec<String> = given(c)
        .into_iter()
        .filter(|id| {
            let of_mixer = mixer_ids.contains(id);
            if mixer {
                !of_mixer && !used.contains(id)
            } else {
                of_mixer
            }
        })
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    let what = if mixer {
        format!("--kind {kind} (the MLP-Mixer student) does not use")
    } else {
        format!("--kind {kind} does not use the mixer's")
    };
    if unused.is_empty() {
        return Ok(());
    }
    Err(symclone::Error::invalid(format!(
        "clone {what} {}: leave {} out",
        unused.join(", "),
        if unused.len() == 1 { "it" } else { "them" }
    )))
}
