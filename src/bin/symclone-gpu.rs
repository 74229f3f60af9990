//! symclone-gpu: symmetry cloning on any GPU. CLI only: parse, call the library, print.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use symclone::gpu::{adapter, AdapterChoice, AdapterSummary};
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

fn choice(cli: &Cli) -> AdapterChoice {
    AdapterChoice {
        backend: cli.backend.clone(),
        name: cli.adapter.clone(),
    }
}

fn write_atomic(path: &PathBuf, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let io = |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    };
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
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
                write_atomic(
                    p,
                    &serde_json::to_string_pretty(&rows).expect("serialisable"),
                )?;
            }
            if let Some(p) = markdown {
                write_atomic(p, &md)?;
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
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("symclone-gpu: {e}");
            match e {
                Error::NoAdapter(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
