//! symclone-gpu: symmetry cloning on any GPU. CLI only: parse, call the library, print.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use symclone::gpu::{adapter, AdapterChoice, AdapterSummary};
use symclone::pipeline::RunArgs;
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
        /// Matrix-product kernel family: register or workgroup (default: by adapter type).
        #[arg(long)]
        family: Option<String>,
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
        #[command(flatten)]
        opts: RunArgs,
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

/// Progress bars on stderr, one per phase.
struct Bars {
    bar: Option<ProgressBar>,
}

impl symclone::pipeline::Reporter for Bars {
    fn phase(&mut self, name: &str, total: u64) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{prefix:>28} [{bar:30}] {pos}/{len} {msg} ({elapsed}, ETA {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_prefix(name.to_string());
        self.bar = Some(b);
    }
    fn progress(&mut self, pos: u64, status: &str) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
            b.set_message(status.to_string());
        }
    }
    fn finish(&mut self, summary: &str) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        eprintln!("{summary}");
    }
}

fn run_pipeline(
    gpu: &std::sync::Arc<Gpu>,
    cfg: &symclone::pipeline::RunConfig,
    out: &std::path::Path,
    resume: bool,
    given: Option<symclone::models::CloneSet>,
) -> Result<(), Error> {
    eprintln!("adapter: {}", gpu.describe());
    eprintln!("writing to {}", out.display());
    let t = std::time::Instant::now();
    let report = symclone::pipeline::run(gpu, cfg, out, resume, given, &mut Bars { bar: None })?;
    println!("{}", symclone::pipeline::markdown(&report));
    eprintln!(
        "done in {:.0} s; report: {}",
        t.elapsed().as_secs_f64(),
        out.join("report.md").display()
    );
    Ok(())
}

fn choice(cli: &Cli) -> AdapterChoice {
    AdapterChoice {
        backend: cli.backend.clone(),
        name: cli.adapter.clone(),
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Devices { json } => {
            let c = choice(&cli);
            let adapters = adapter::enumerate(&c)?;
            if adapters.is_empty() {
                return Err(Error::NoAdapter(adapter::no_adapter_message(&c)));
            }
            let sums: Vec<AdapterSummary> = adapters.iter().map(AdapterSummary::of).collect();
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
            family,
        } => {
            let gpu = Gpu::new(&choice(&cli))?;
            if let Some(t) = reg_tile {
                let (r, c) = t
                    .split_once('x')
                    .and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)))
                    .ok_or_else(|| {
                        Error::invalid(format!("--reg-tile '{t}': expected ROWSxCOLS, e.g. 8x2"))
                    })?;
                gpu.set_reg_tile((r, c))?;
            }
            match family.as_deref() {
                None => {}
                Some("register") => gpu.set_family(symclone::gpu::KernelFamily::Register),
                Some("workgroup") => gpu.set_family(symclone::gpu::KernelFamily::Workgroup),
                Some(o) => {
                    return Err(Error::invalid(format!(
                        "--family '{o}': use register or workgroup"
                    )))
                }
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
                symclone::report::write_atomic(p, json.as_bytes())?;
            }
            if let Some(p) = markdown {
                symclone::report::write_atomic(p, md.as_bytes())?;
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
            opts,
        } => {
            use symclone::clone::OperatorKind;
            let mut cfg = opts.run_config()?;
            cfg.clone.source = source.clone();
            if let Some(nb) = blocks {
                if *nb == 0 {
                    return Err(Error::invalid("--blocks 0: use at least 1"));
                }
                cfg.clone.nb = *nb;
            }
            cfg.validate()?;
            let needed: Vec<(OperatorKind, usize)> = match kind.as_str() {
                "z2" => vec![(OperatorKind::Z2, *dim)],
                "lift" => vec![(OperatorKind::Lift, *dim)],
                "p4" => vec![(OperatorKind::P4, *dim)],
                "lift+p4" => vec![
                    (OperatorKind::Lift, *dim),
                    (OperatorKind::P4, dim.saturating_sub(2)),
                ],
                k => {
                    return Err(Error::invalid(format!(
                        "--kind {k}: use z2, lift, p4 or lift+p4"
                    )))
                }
            };
            if *dim < 3 || (kind == "lift+p4" && *dim < 5) {
                return Err(Error::invalid(format!(
                    "--dim {dim} is too small for a 3×3 layer"
                )));
            }
            let gpu = Gpu::new(&choice(&cli))?;
            let out = opts.out_dir();
            eprintln!("adapter: {}", gpu.describe());
            let ds = symclone::pipeline::load_data(&cfg)?;
            let mut bars = Bars { bar: None };
            let dir = out.join("clones");
            let (set, reports) =
                symclone::pipeline::clone_phase(&gpu, &cfg, &needed, &dir, false, &ds, &mut bars)?;
            for r in &reports {
                println!(
                    "{}{}: best MSE {:.3e} (relative {:.2e}), final {:.3e}, equivariance error {:.2e} (true layer {:.2e}), {:.0} s",
                    r.kind.name(), r.d, r.stats.best_loss, r.best_relative_mse, r.stats.final_loss, r.equivariance_clone, r.equivariance_true, r.stats.seconds
                );
            }
            if kind == "lift+p4" {
                // SPEC §3's end-to-end two-layer clone, warm-started from the two layers just cloned.
                let (l, p) = (
                    &set[&symclone::models::clone_key(OperatorKind::Lift, *dim)],
                    &set[&symclone::models::clone_key(OperatorKind::P4, dim - 2)],
                );
                let ccfg = cfg
                    .clone
                    .config(OperatorKind::Lift, *dim, cfg.seed.wrapping_add(77));
                use symclone::pipeline::Reporter;
                bars.phase("clone lift+p4 jointly", ccfg.iters as u64);
                let (l2, p2, st) = symclone::clone::clone_lift_p4(
                    &gpu,
                    &ccfg,
                    Some((l, p)),
                    10,
                    &mut |it, loss| bars.progress(it as u64, &format!("MSE {loss:.3e}")),
                )?;
                bars.finish(&format!("lift{dim}+p4{}: end-to-end MSE best {:.3e}, final {:.3e} (45-vector codes), {:.0} s", dim - 2, st.best_loss, st.final_loss, st.seconds));
                for op in [&l2, &p2] {
                    let h = format!("joint-{}", cfg.seed);
                    let path =
                        out.join("clones")
                            .join(format!("{}{}.safetensors", op.kind.name(), op.d));
                    symclone::report::checkpoint::save(
                        &path,
                        &op.params(),
                        &symclone::pipeline::clone_metadata(op, &h),
                    )?;
                }
                let digit: Vec<f32> = ds.test.image(0).iter().map(|&v| v as f32 / 255.0).collect();
                if digit.len() == dim * dim {
                    let (f, _) = symclone::pipeline::fidelity(&gpu, &l2, &p2, &digit, cfg.seed)?;
                    println!("fidelity (clone lift → clone P4 vs true, one digit, filters U[0,1)): MSE {:.3e} (true output mean square {:.3e})", f.mse, f.target_mean_square);
                }
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
            let set = symclone::pipeline::load_clones(&gpu, clones)?;
            run_pipeline(&gpu, &cfg, &opts.out_dir(), false, Some(set))?;
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
                Some(d) => Dataset::load(d)?,
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
    let _ = ctrlc::set_handler(|| {
        eprintln!("\nstopping after the current step (Ctrl-C again to abort at once)...");
        if symclone::error::interrupt_requested() {
            std::process::exit(130);
        }
        symclone::error::request_interrupt();
    });
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("symclone-gpu: {e}");
            match e {
                Error::NoAdapter(_) => ExitCode::from(2),
                Error::Interrupted(_) => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
