//! symclone-gpu: symmetry cloning on any GPU. CLI only: parse, call the library, print.

mod args;
mod open;
mod sweep;

use args::{CheckArgs, MixerFlags, RunArgs, SweepRunFlags};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use open::{choice, open};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use symclone::clone::CloneSet;
use symclone::config::RunConfig;
use symclone::gpu::adapter;
use symclone::progress::Bars;
use symclone::{commands, pipeline, results};
use symclone::{Error, Gpu};

#[derive(Parser)]
#[command(
    name = "symclone-gpu",
    version,
    about = "Symmetry cloning (arXiv 2410.03989) on any GPU through wgpu: hand-written WGSL kernels, \
             an autograd tape, CPU references for every kernel.",
    long_about = None
)]
struct Cli {
    /// Graphics backend: vulkan, metal, dx12, gl or auto.
    #[arg(long, global = true, env = "SYMCLONE_BACKEND")]
    backend: Option<String>,
    /// Use the adapter whose name contains this text (case-insensitive); see `devices`.
    #[arg(long, global = true, env = "SYMCLONE_ADAPTER")]
    adapter: Option<String>,
    /// Kernel family: register (register tiles: CPU drivers), workgroup (shared-memory tiles:
    /// GPUs), each running its default variants untimed; or auto (variants chosen by measurement
    /// on this adapter and cached: `tune`).
    #[arg(long, global = true, env = "SYMCLONE_FAMILY")]
    family: Option<String>,
    /// Device limits: adapter (the adapter's own) or webgpu (WebGPU's defaults, the least any
    /// conforming GPU offers: what a run needs to fit everywhere).
    #[arg(long, global = true, env = "SYMCLONE_LIMITS")]
    limits: Option<String>,
    /// Run under wgpu's validation and, on Vulkan, the Khronos validation layer with
    /// synchronization validation (when installed); any message stops the command with an error
    /// naming the kernel. Slow: for checking, not for measuring.
    #[arg(long, global = true, env = "SYMCLONE_VALIDATE")]
    validate: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// List every adapter with its backend, type, driver, limits and features.
    Devices {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run every kernel variant, forward and backward, against its CPU reference on this adapter,
    /// under its own limits and WebGPU's defaults (`--limits` narrows it): what to run first on a
    /// new GPU. Prints the table; exits non-zero when any case fails.
    Check {
        #[command(flatten)]
        opts: CheckArgs,
    },
    /// Time each GPU kernel against a CPU baseline and check that they agree.
    Bench {
        /// Only cases whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Timed repetitions per case (the median is reported).
        #[arg(long, default_value_t = 20)]
        reps: usize,
        /// Largest square matrix-product size.
        #[arg(long, default_value_t = 2048)]
        max_square: usize,
        /// Write the rows as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the Markdown table here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Register tile of the register matrix-product kernel, as ROWSxVEC4COLS (e.g. 8x2).
        #[arg(long)]
        reg_tile: Option<String>,
    },
    /// Time every kernel variant for the shapes the presets use, cache the choices for this adapter
    /// and print them (op × shape bucket → variant, with each candidate's time).
    Tune {
        /// Presets whose shapes to tune (`none`: only the benchmark's square products).
        #[arg(long, value_delimiter = ',', default_value = "quick,paper")]
        presets: Vec<String>,
        /// Seconds of measurement allowed in all.
        #[arg(long, default_value_t = 120.0)]
        budget: f64,
    },
    /// The whole method: clone the equivariant layers, train every model on the three tasks,
    /// write report.md, report.json, checkpoints and pictures.
    Run {
        #[command(flatten)]
        opts: RunArgs,
        /// Skip phases whose results are already in --out with the same configuration.
        #[arg(long)]
        resume: bool,
        /// Wall-clock limit (e.g. 600, 90s, 30m, 2h): when it is reached the run stops after the
        /// current step, keeps every finished phase and writes the report of what is done;
        /// `run --resume` with the same --out goes on from there.
        #[arg(long)]
        time_limit: Option<String>,
    },
    /// What a configuration needs on this adapter, without training it: each phase's and model's
    /// peak GPU memory (measured by running one step of each) and floating-point work, held
    /// against a memory budget. With --out, also writes plan.md and plan.json there.
    Plan {
        #[command(flatten)]
        opts: RunArgs,
        /// The memory to hold the plan against, in GiB (default: a 16 GiB card).
        #[arg(long, default_value_t = 16.0)]
        memory: f64,
    },
    /// Clone one equivariant layer into a dense operator (SPEC §3; random or teacher-sourced).
    Clone {
        /// z2 (convolution), lift (Z2→P4), p4 (P4→P4), lift-d4 (Z2→p4m) and p4m (p4m→p4m) for
        /// the reflections of SPEC §9, or lift+p4 (a lift clone for d and a P4 clone for d−2: the
        /// pair the fidelity check and faux-gcnn's first two layers use);
        /// mixer-conv or mixer-radial: the MLP-Mixer student of SPEC §8 (4→4 channel 3×3 conv, or
        /// 5×5 isotropic conv), beside a 9-block operator clone of the same conv.
        #[arg(long, default_value = "lift")]
        kind: String,
        /// Input side d of the layer (default 28, MNIST's first layer; 7 for the mixer kinds).
        #[arg(long)]
        dim: Option<usize>,
        /// Number of blocks (9 can be exact; 7 and 8 cannot).
        #[arg(long)]
        blocks: Option<usize>,
        /// Where filters and inputs come from: random (Gaussian filters and noise, SPEC §3) or
        /// teacher (a gcnn/cnn teacher is trained first; its filters and its feature maps on
        /// rotated/translated digits are the cloning data).
        #[arg(long, default_value = "random")]
        source: String,
        /// Clone once per number of blocks, A..B (inclusive) or N, and write each beside its
        /// clonability bound to <out>/capacity.md and capacity.json (replaces --blocks).
        #[arg(long)]
        capacity: Option<String>,
        #[command(flatten)]
        opts: RunArgs,
        #[command(flatten)]
        mixer: MixerFlags,
        /// Skip stages whose results are already in --out with the same configuration.
        #[arg(long)]
        resume: bool,
    },
    /// Train a teacher (an ordinary network: gcnn, d4-gcnn, cnn or mlp) on a task.
    Teacher {
        /// gcnn, d4-gcnn, cnn or mlp.
        #[arg(long)]
        model: String,
        /// plain, symmetric, rot-sb, trans-sb, symmetric-d4 or mirror-sb.
        #[arg(long)]
        task: String,
        #[command(flatten)]
        opts: RunArgs,
    },
    /// Train a network built on cloned layers: faux-gcnn, faux-gcnn-kl, faux-cnn, faux-cnn-kl,
    /// faux-d4-gcnn or faux-d4-gcnn-kl.
    Finetune {
        #[arg(long)]
        model: String,
        /// plain, symmetric, rot-sb, trans-sb, symmetric-d4 or mirror-sb.
        #[arg(long)]
        task: String,
        /// Folder of clone checkpoints (the --out of `clone` or `run`).
        #[arg(long)]
        clones: PathBuf,
        /// KL weight β for the -kl models (default: the preset's for the task).
        #[arg(long)]
        beta: Option<f32>,
        #[command(flatten)]
        opts: RunArgs,
    },
    /// Write report.md, report.html and the figures of a run folder again from its report.json;
    /// or merge the finished cells of sweeps into one report (mean ± 95 % interval over seeds).
    Report {
        /// Run folders (the --out of `run`), or sweep folders (the --out of `sweep plan`).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged report of several sweeps goes (default: the one sweep folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also quote the run's results (its facts, test accuracies and claims with their
        /// verdicts) in this Markdown page, between its two marker lines (the README's "What
        /// `run` shows" is written so); one run folder only.
        #[arg(long, value_name = "FILE")]
        readme: Option<PathBuf>,
    },
    /// Seeds × settings as many runs: plan a grid, run its cells here or as a SLURM job array,
    /// follow them, resume the unfinished ones; `report DIR` merges them.
    Sweep {
        #[command(subcommand)]
        command: SweepCommand,
    },
    /// Show a data set (counts, class histograms) and write PNG grids of each task's inputs.
    Data {
        /// Folder of IDX files (the four standard MNIST names, or one images/labels pair); default:
        /// the embedded 10,000-digit MNIST subset.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Only this task: plain, symmetric, rot-sb, trans-sb, symmetric-d4 or mirror-sb (default:
        /// all six).
        #[arg(long)]
        task: Option<String>,
        /// Write the grids here.
        #[arg(long, default_value = "runs/data")]
        out: PathBuf,
        /// Use only the first N train images.
        #[arg(long)]
        train_n: Option<usize>,
        /// Use only the first N test images.
        #[arg(long)]
        test_n: Option<usize>,
        /// Seed of the per-sample transforms and the shuffle.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Samples per grid.
        #[arg(long, default_value_t = 64)]
        count: usize,
    },
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Expand a grid file into DIR/cells/<hash>/config.json and the index DIR/sweep.json.
    Plan {
        /// {"base": "quick" or a config.json, "fixed": {KEY: VALUE}, "grid": {KEY: [VALUES]}}.
        #[arg(long)]
        grid: PathBuf,
        /// The sweep folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run every unfinished cell (`run --config CELL/config.json --out CELL --resume`).
    Run {
        /// The sweep folder.
        dir: PathBuf,
        #[command(flatten)]
        opts: SweepRunFlags,
    },
    /// Each cell's state (done, running, stopped, not started, corrupt) and SLURM's.
    Status {
        /// The sweep folder.
        dir: PathBuf,
    },
    /// Run or submit again only the unfinished cells, as the last `sweep run` did.
    Resume {
        /// The sweep folder.
        dir: PathBuf,
    },
}

fn run_pipeline(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    out: &Path,
    resume: bool,
    given: Option<CloneSet>,
) -> Result<(), Error> {
    // Said once the inputs are checked (at the first phase): a refused run prints one line.
    let mut bars = Bars::with_header(vec![
        format!("adapter: {}", gpu.describe()),
        format!("writing to {}", out.display()),
    ]);
    let t = std::time::Instant::now();
    let report = pipeline::profiled(gpu, out, || {
        pipeline::run(gpu, cfg, out, resume, given, &mut bars)
    })?;
    println!("{}", results::markdown(&report));
    if let Some(why) = &report.incomplete {
        eprintln!(
            "{why}: the report holds what was done; `symclone-gpu run --resume --out {}` (with the same options) goes on",
            out.display()
        );
    }
    eprintln!(
        "{} in {:.0} s; report: {} (and report.md, report.json)",
        if report.incomplete.is_some() {
            "stopped"
        } else {
            "done"
        },
        t.elapsed().as_secs_f64(),
        out.join("report.html").display()
    );
    Ok(())
}

/// `clone --kind mixer-conv | mixer-radial` (SPEC §8).
fn mixer_clone(
    cli: &Cli,
    teacher: symclone::clone::mixer::MixerTeacher,
    dim: Option<usize>,
    opts: &RunArgs,
    flags: &MixerFlags,
) -> Result<(), Error> {
    let args = &flags.args();
    let (cfg, op) = commands::mixer::mixer_config(teacher, &opts.preset, dim, opts.seed(), args)?;
    let gpu = open(cli)?;
    let out = opts.out_dir();
    let mut bars = Bars::with_header(vec![format!("adapter: {}", gpu.describe())]);
    let report = commands::mixer::mixer_command(&gpu, &cfg, &op, args, &out, &mut bars)?;
    println!("{}", commands::mixer::markdown(&report));
    println!(
        "report written to {} (and report.md, report.json)",
        out.join("report.html").display()
    );
    Ok(())
}

fn run(cli: Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Devices { json } => {
            let sums = adapter::summaries(&choice(&cli))?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&sums).expect("serialisable")
                );
            } else {
                for (i, s) in sums.iter().enumerate() {
                    println!(
                        "[{i}]{} {}",
                        if i == 0 { " (default)" } else { "" },
                        s.render()
                    );
                }
            }
        }
        Command::Bench {
            filter,
            reps,
            max_square,
            json,
            markdown,
            reg_tile,
        } => {
            let gpu = open(&cli)?;
            if let Some(t) = reg_tile {
                symclone::ops::matmul::set_reg_tile_str(&gpu, t)?;
            }
            eprintln!("adapter: {}", gpu.describe());
            eprintln!(
                "register tile of mm_reg: {:?}",
                symclone::ops::matmul::reg_tile(&gpu)
            );
            let opts = symclone::bench::Options {
                filter: filter.clone(),
                reps: (*reps).max(1),
                max_square: *max_square,
            };
            let rows = symclone::bench::run(&gpu, &opts, &mut |r| eprintln!("{}", r.line()))?;
            symclone::bench::write_results(&gpu, &rows, json.as_deref(), markdown.as_deref())?;
        }
        Command::Check { opts } => {
            let o = symclone::check::Options {
                limits: symclone::check::Limits::parse(cli.limits.as_deref())?,
                filter: opts.filter.clone(),
            };
            let report = match &opts.export {
                Some(dir) => {
                    let r =
                        symclone::check::export(&choice(&cli), &o, dir, &mut |l| eprintln!("{l}"))?;
                    eprintln!("wrote {}: open its index.html in a browser", dir.display());
                    r
                }
                None => symclone::check::run(&choice(&cli), &o, &mut |l| eprintln!("{l}"))?,
            };
            print!("{}", report.markdown());
            report.write(opts.json.as_deref(), opts.markdown.as_deref())?;
            eprintln!("{}", report.summary());
            report.verdict()?;
        }
        Command::Tune { presets, budget } => {
            commands::tune::command(&open(&cli)?, presets, *budget)?
        }
        Command::Run {
            opts,
            resume,
            time_limit,
        } => {
            let cfg = opts.run_config()?;
            if let Some(t) = time_limit {
                symclone::error::stop_after(symclone::progress::parse_duration(t)?);
            }
            let gpu = open(&cli)?;
            run_pipeline(&gpu, &cfg, &opts.out_dir(), *resume, None)?;
        }
        Command::Plan { opts, memory } => {
            if !(memory.is_finite() && *memory > 0.0 && *memory < 1e6) {
                return Err(Error::invalid(format!(
                    "--memory {memory}: give the card's memory in GiB, e.g. 16"
                )));
            }
            let cfg = opts.run_config()?;
            let gpu = open(&cli)?;
            eprintln!("running one step of every phase to measure it…");
            let plan = commands::plan::plan(&gpu, &cfg, (*memory * (1u64 << 30) as f64) as u64)?;
            print!("{}", commands::plan::markdown(&plan));
            if let Some(out) = &opts.out {
                let md = commands::plan::write(out, &plan)?;
                eprintln!("plan written to {}", md.display());
            }
            if plan.failure.is_some() {
                return Err(Error::invalid(
                    "the configuration does not fit this adapter (see above)",
                ));
            }
        }
        Command::Clone {
            kind,
            dim,
            blocks,
            source,
            capacity,
            opts,
            mixer,
            resume,
        } => {
            if let Some(teacher) = commands::mixer::mixer_kind(kind) {
                return mixer_clone(&cli, teacher, *dim, opts, mixer);
            }
            let dim = &dim.unwrap_or(28);
            let cfg = commands::clone::clone_config(opts.run_config()?, source, *blocks)?;
            commands::clone::requested(kind, *dim)?;
            let nbs = capacity
                .as_deref()
                .map(commands::capacity::parse_capacity)
                .transpose()?;
            let gpu = open(&cli)?;
            let out = opts.out_dir();
            let mut bars = Bars::with_header(vec![format!("adapter: {}", gpu.describe())]);
            if let Some(nbs) = nbs {
                let cap = commands::capacity::capacity_command(
                    &gpu, &cfg, kind, *dim, &nbs, &out, *resume, &mut bars,
                )?;
                println!("{}", cap.markdown());
                println!("written to {}", out.join("capacity.md").display());
                return Ok(());
            }
            let (reports, fidelity) = pipeline::profiled(&gpu, &out, || {
                commands::clone::clone_command(&gpu, &cfg, kind, *dim, &out, *resume, &mut bars)
            })?;
            for r in &reports {
                println!("{}", r.summary());
            }
            if let Some(f) = fidelity {
                println!("fidelity (clone lift → clone P4 vs true, one digit, filters U[0,1)): MSE {:.3e} (true output mean square {:.3e})", f.mse, f.target_mean_square);
            }
            println!("clones written to {}", out.join("clones").display());
        }
        Command::Teacher { model, task, opts } => {
            let cfg = opts.single_task(model, task, None, false)?;
            let gpu = open(&cli)?;
            run_pipeline(&gpu, &cfg, &opts.out_dir(), false, None)?;
        }
        Command::Finetune {
            model,
            task,
            clones,
            beta,
            opts,
        } => {
            let cfg = opts.single_task(model, task, *beta, true)?;
            let gpu = open(&cli)?;
            let set = symclone::clone::io::load_clones(&gpu, clones)?;
            run_pipeline(&gpu, &cfg, &opts.out_dir(), false, Some(set))?;
        }
        Command::Report { dirs, out, readme } => {
            if readme.is_some() && (dirs.len() != 1 || out.is_some()) {
                return Err(Error::invalid(
                    "--readme quotes one run's results: give one run folder, and no --out",
                ));
            }
            let (files, merged) = symclone::sweep::report(dirs, out.as_deref())?;
            let was_sweep = merged.is_some();
            if let Some(r) = merged {
                println!("merged {} of {} cells", r.cells_merged, r.cells_total);
                for l in &r.left_out {
                    eprintln!("left out: {l}");
                }
                for l in &r.not_finished {
                    eprintln!("not finished: {l}");
                }
            }
            for f in files {
                println!("wrote {}", f.display());
            }
            if let Some(page) = readme {
                if was_sweep {
                    return Err(Error::invalid(
                        "--readme quotes a run folder's results, and this is a sweep (its merged report is written)",
                    ));
                }
                let r = symclone::results::rebuild(&dirs[0])?;
                symclone::results::readme::write_into(page, &r, &dirs[0])?;
                println!("wrote the run's results into {}", page.display());
            }
        }
        Command::Sweep { command } => sweep::sweep(&cli, command)?,
        Command::Data {
            data,
            task,
            out,
            train_n,
            test_n,
            seed,
            count,
        } => {
            use symclone::data::{Dataset, Task};
            let tasks: Vec<Task> = match task {
                Some(t) => vec![t.parse()?],
                None => Task::ALL.to_vec(),
            };
            if *count == 0 {
                return Err(Error::invalid(
                    "--count 0: a grid needs at least one sample",
                ));
            }
            let ds = match data {
                Some(d) => Dataset::load_first(d, *train_n, *test_n)?,
                None => Dataset::embedded()?,
            }
            .subset(*train_n, *test_n)?;
            print!("{}", ds.describe());
            let gpu = open(&cli)?;
            eprintln!("adapter: {}", gpu.describe());
            for f in symclone::data::write_grids(&gpu, &ds, &tasks, out, *seed, *count)? {
                println!("wrote {}", f.display());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    adapter::quiet_device_select_layer();
    symclone::error::stop_on_ctrl_c();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let Err(e) = args::unused_flags(&matches) {
        eprintln!("symclone-gpu: {e}");
        return ExitCode::from(e.exit_code());
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("symclone-gpu: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
