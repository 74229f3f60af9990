//! symclone-gpu: symmetry cloning on any GPU. CLI only: parse, call the library, print.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use symclone::clone::CloneSet;
use symclone::gpu::{adapter, AdapterChoice};
use symclone::pipeline::{self, Bars, RunArgs, RunConfig};
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
    /// GPUs) or auto (by the adapter's type).
    #[arg(long, global = true, env = "SYMCLONE_FAMILY")]
    family: Option<String>,
    /// Device limits: adapter (the adapter's own) or webgpu (WebGPU's defaults, the least any
    /// conforming GPU offers: what a run needs to fit everywhere).
    #[arg(long, global = true, env = "SYMCLONE_LIMITS")]
    limits: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter with its backend, type, driver, limits and features.
    Devices {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
    /// The whole method: clone the equivariant layers, train every model on the three tasks,
    /// write report.md, report.json, checkpoints and pictures.
    Run {
        #[command(flatten)]
        opts: RunArgs,
        /// Skip phases whose results are already in --out with the same configuration.
        #[arg(long)]
        resume: bool,
    },
    /// Clone one equivariant layer into a dense operator (SPEC §3; random or teacher-sourced).
    Clone {
        /// z2 (convolution), lift (Z2→P4), p4 (P4→P4), or lift+p4 (a lift clone for d and a P4
        /// clone for d−2: the pair the fidelity check and faux-gcnn's first two layers use).
        #[arg(long, default_value = "lift")]
        kind: String,
        /// Input side d of the layer (28 for MNIST's first layer).
        #[arg(long, default_value_t = 28)]
        dim: usize,
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
        /// Skip stages whose results are already in --out with the same configuration.
        #[arg(long)]
        resume: bool,
    },
    /// Train a teacher (an ordinary network: gcnn, cnn or mlp) on a task.
    Teacher {
        /// gcnn, cnn or mlp.
        #[arg(long)]
        model: String,
        /// plain, symmetric, rot-sb or trans-sb.
        #[arg(long)]
        task: String,
        #[command(flatten)]
        opts: RunArgs,
    },
    /// Train a network built on cloned layers: faux-gcnn, faux-gcnn-kl, faux-cnn or faux-cnn-kl.
    Finetune {
        #[arg(long)]
        model: String,
        /// plain, symmetric, rot-sb or trans-sb.
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
    /// Write report.md, report.html and the figures of a run folder again from its report.json.
    Report {
        /// The run folder (the --out of `run`).
        dir: PathBuf,
    },
    /// Show a data set (counts, class histograms) and write PNG grids of each task's inputs.
    Data {
        /// Folder of IDX files (the four standard MNIST names, or one images/labels pair); default:
        /// the embedded 10,000-digit MNIST subset.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Only this task: plain, symmetric, rot-sb or trans-sb (default: all four).
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
    let report = pipeline::run(gpu, cfg, out, resume, given, &mut bars)?;
    println!("{}", pipeline::markdown(&report));
    eprintln!(
        "done in {:.0} s; report: {} (and report.md, report.json)",
        t.elapsed().as_secs_f64(),
        out.join("report.html").display()
    );
    Ok(())
}

fn choice(cli: &Cli) -> AdapterChoice {
    AdapterChoice {
        backend: cli.backend.clone(),
        name: cli.adapter.clone(),
        family: cli.family.clone(),
        limits: cli.limits.clone(),
    }
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
            let gpu = Gpu::new(&choice(&cli))?;
            if let Some(t) = reg_tile {
                gpu.set_reg_tile_str(t)?;
            }
            eprintln!("adapter: {}", gpu.describe());
            eprintln!(
                "matmul kernel: {:?}, register tile {:?}",
                gpu.family(),
                gpu.reg_tile()
            );
            let opts = symclone::bench::Options {
                filter: filter.clone(),
                reps: (*reps).max(1),
                max_square: *max_square,
            };
            let rows = symclone::bench::run(&gpu, &opts, &mut |r| {
                eprintln!(
                    "{:<40} gpu {:>9.3} ms ({:>7.1} {})  cpu {:>9.3} ms ({:>7.1} {})  err {:.1e}",
                    r.case,
                    r.gpu_s * 1e3,
                    r.gpu_rate(),
                    r.unit,
                    r.cpu_s * 1e3,
                    r.cpu_rate(),
                    r.unit,
                    r.rel_err
                )
            })?;
            let md = symclone::bench::markdown(&gpu, &rows);
            println!("{md}");
            let stats = gpu.pool_stats();
            println!(
                "buffer pool: {} hits, {} misses ({:.1}% hits)",
                stats.hits,
                stats.misses,
                100.0 * stats.hit_rate()
            );
            if let Some(p) = json {
                let json = serde_json::to_string_pretty(&rows).expect("serialisable");
                symclone::files::write_atomic(p, json.as_bytes())?;
            }
            if let Some(p) = markdown {
                symclone::files::write_atomic(p, md.as_bytes())?;
            }
        }
        Command::Run { opts, resume } => {
            let cfg = opts.run_config()?;
            let gpu = Gpu::new(&choice(&cli))?;
            run_pipeline(&gpu, &cfg, &opts.out_dir(), *resume, None)?;
        }
        Command::Clone {
            kind,
            dim,
            blocks,
            source,
            capacity,
            opts,
            resume,
        } => {
            let cfg = pipeline::clones::clone_config(opts.run_config()?, source, *blocks)?;
            pipeline::clones::requested(kind, *dim)?;
            let nbs = capacity
                .as_deref()
                .map(pipeline::capacity::parse_capacity)
                .transpose()?;
            let gpu = Gpu::new(&choice(&cli))?;
            let out = opts.out_dir();
            let mut bars = Bars::with_header(vec![format!("adapter: {}", gpu.describe())]);
            if let Some(nbs) = nbs {
                let cap = pipeline::capacity::capacity_command(
                    &gpu, &cfg, kind, *dim, &nbs, &out, *resume, &mut bars,
                )?;
                println!("{}", cap.markdown());
                println!("written to {}", out.join("capacity.md").display());
                return Ok(());
            }
            let (reports, fidelity) =
                pipeline::clones::clone_command(&gpu, &cfg, kind, *dim, &out, *resume, &mut bars)?;
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
            let gpu = Gpu::new(&choice(&cli))?;
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
            let gpu = Gpu::new(&choice(&cli))?;
            let set = pipeline::load_clones(&gpu, clones)?;
            run_pipeline(&gpu, &cfg, &opts.out_dir(), false, Some(set))?;
        }
        Command::Report { dir } => {
            pipeline::rebuild(dir)?;
            for f in ["report.md", "report.html"] {
                println!("wrote {}", dir.join(f).display());
            }
        }
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
            let gpu = Gpu::new(&choice(&cli))?;
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
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("symclone-gpu: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
