//! Running a sweep's unfinished cells. Every executor runs a cell the same way — `symclone-gpu
//! run --config CELL/config.json --out CELL --resume` — so a cell killed anywhere resumes from its
//! last complete phase, and its folder lock keeps two executors off it:
//! - `local`: in this process one after another, or `--jobs N` child processes;
//! - `slurm`: `DIR/sweep.sbatch`, a job array with one cell per array index, submitted with
//!   `sbatch --array=<the unfinished indices>%P`; SLURM schedules, nothing here does.

use super::{cell_dir, cell_state, read_index, CellEntry, Index, State};
use crate::config::RunConfig;
use crate::files::write_atomic;
use crate::gpu::AdapterChoice;
use crate::pipeline;
use crate::progress::Reporter;
use crate::{Error, Gpu, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where cells run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    Local,
    Slurm,
}

/// The SLURM job's settings (written into `sweep.sbatch` as its flags).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SlurmArgs {
    /// SLURM partition (default: the cluster's default partition).
    pub partition: Option<String>,
    /// Time limit per cell, in SLURM's form (e.g. 2:00:00).
    pub time: Option<String>,
    /// GPUs per cell (--gres=gpu:N; 0 leaves --gres out; the command line's default is 1).
    pub gpus: u32,
    /// At most this many cells at once (--array=…%P).
    pub throttle: Option<u32>,
}

impl SlurmArgs {
    /// Check the flags before they go into `sweep.sbatch`: a partition is a name (or a
    /// comma-separated list of names) of letters, digits, `_`, `.` and `-`; a time limit is one of
    /// SLURM's forms (`M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, `UNLIMITED`).
    pub fn check(&self) -> Result<()> {
        if let Some(p) = &self.partition {
            let name_ok = |n: &str| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            };
            if !p.split(',').all(name_ok) {
                return Err(Error::invalid(format!(
                    "--partition '{}': give a partition name (letters, digits, _ . -), or several separated by commas",
                    p.escape_debug()
                )));
            }
        }
        if let Some(t) = &self.time {
            if !slurm_time(t) {
                return Err(Error::invalid(format!(
                    "--time '{}': give SLURM's form, e.g. 90 (minutes), 2:00:00 or 1-12:00:00 (days-hours:minutes:seconds)",
                    t.escape_debug()
                )));
            }
        }
        Ok(())
    }
}

/// Whether `t` is a SLURM time limit: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`,
/// `UNLIMITED` or `INFINITE`.
fn slurm_time(t: &str) -> bool {
    if matches!(t, "UNLIMITED" | "INFINITE" | "unlimited" | "infinite") {
        return true;
    }
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, t),
    };
    if days.is_some_and(|d| !digits(d)) {
        return false;
    }
    let parts: Vec<&str> = rest.split(':').collect();
    (1..=3).contains(&parts.len()) && parts.iter().all(|p| digits(p))
}

/// The options of `sweep run`.
#[derive(Clone, Debug)]
pub struct SweepRunArgs {
    /// local (this machine) or slurm (a job array submitted with sbatch).
    pub executor: Executor,
    /// local: run this many cells at once, each in its own process (default: one after another
    /// in this process).
    pub jobs: Option<usize>,
    pub slurm: SlurmArgs,
    /// slurm: write DIR/sweep.sbatch and print the sbatch command, submit nothing.
    pub dry_run: bool,
}

/// `DIR/slurm.json`: the options of the last SLURM submission and every job submitted, so that
/// `status` can ask `squeue` and `resume` can submit again the same way.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Submissions {
    pub slurm: SlurmArgs,
    /// The program and its global flags each cell runs with.
    pub program: Vec<String>,
    pub jobs: Vec<Job>,
}

/// One submitted job array.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Job {
    pub id: String,
    /// The array indices (= cell indices) it runs.
    pub cells: Vec<usize>,
}

const SUBMISSIONS: &str = "slurm.json";
/// The job script's name inside a sweep folder.
pub const SCRIPT: &str = "sweep.sbatch";

/// What a `sweep run` did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Cells already done.
    pub done: usize,
    /// Cells run (local) or submitted (slurm).
    pub started: Vec<usize>,
    /// Cells left alone because a process holds them.
    pub busy: Vec<(usize, String)>,
    /// Cells that failed (local) or cannot run, with why.
    pub failed: Vec<(usize, String)>,
    /// slurm: the job id (None with --dry-run), and the sbatch command.
    pub job: Option<String>,
    pub command: Option<String>,
}

/// The cells to run: neither done nor held by a process nor (slurm) queued.
fn pending(dir: &Path, index: &Index, queued: &[usize], out: &mut Outcome) -> Vec<CellEntry> {
    let mut todo = Vec::new();
    for c in &index.cells {
        match cell_state(dir, &c.hash) {
            State::Done => out.done += 1,
            State::Running(who) => out.busy.push((c.index, who)),
            State::Corrupt(why) if why.contains("belongs to another grid") => {
                out.failed.push((c.index, why))
            }
            _ if queued.contains(&c.index) => out.busy.push((c.index, "the SLURM queue".into())),
            _ => todo.push(c.clone()),
        }
    }
    todo
}

/// `sweep run DIR`. `program` is the binary and its global flags (adapter choice), which child
/// processes and SLURM tasks run; `choice` opens the adapter for in-process cells; `reporter`
/// gives each in-process cell its progress display.
pub fn run(
    dir: &Path,
    args: &SweepRunArgs,
    program: &[String],
    choice: &AdapterChoice,
    reporter: &mut dyn FnMut(&CellEntry) -> Box<dyn Reporter>,
) -> Result<Outcome> {
    let index = read_index(dir)?;
    match args.executor {
        Executor::Slurm => {
            args.slurm.check()?;
            let subs = Submissions {
                slurm: args.slurm.clone(),
                program: program.to_vec(),
                jobs: read_submissions(dir)?.map(|s| s.jobs).unwrap_or_default(),
            };
            submit(dir, &index, subs, args.dry_run)
        }
        Executor::Local => {
            if args.dry_run {
                return Err(Error::invalid(
                    "--dry-run writes a SLURM job script: use it with --executor slurm",
                ));
            }
            let mut out = Outcome::default();
            let todo = pending(dir, &index, &[], &mut out);
            match args.jobs {
                None => in_process(dir, &todo, choice, reporter, &mut out)?,
                Some(0) => return Err(Error::invalid("--jobs 0: use at least 1")),
                Some(n) => children(dir, &todo, program, n, &mut out)?,
            }
            Ok(out)
        }
    }
}

/// `sweep resume DIR`: submit the unfinished cells again the way the last `sweep run --executor
/// slurm` did, or run them here when the sweep was never submitted to SLURM.
pub fn resume(
    dir: &Path,
    choice: &AdapterChoice,
    reporter: &mut dyn FnMut(&CellEntry) -> Box<dyn Reporter>,
) -> Result<Outcome> {
    let index = read_index(dir)?;
    match read_submissions(dir)? {
        Some(subs) => submit(dir, &index, subs, false),
        None => {
            let mut out = Outcome::default();
            let todo = pending(dir, &index, &[], &mut out);
            in_process(dir, &todo, choice, reporter, &mut out)?;
            Ok(out)
        }
    }
}

/// The cell's configuration, read as `run --config` reads it.
fn cell_config(dir: &Path, c: &CellEntry) -> Result<RunConfig> {
    RunConfig::base("", Some(&cell_dir(dir, &c.hash).join("config.json")))
}

fn in_process(
    dir: &Path,
    todo: &[CellEntry],
    choice: &AdapterChoice,
    reporter: &mut dyn FnMut(&CellEntry) -> Box<dyn Reporter>,
    out: &mut Outcome,
) -> Result<()> {
    if todo.is_empty() {
        return Ok(());
    }
    let gpu = Gpu::new(choice)?;
    for c in todo {
        crate::error::check_interrupt("the sweep")?;
        out.started.push(c.index);
        let cfg = match cell_config(dir, c) {
            Ok(cfg) => cfg,
            Err(e) => {
                out.failed.push((c.index, e.to_string()));
                continue;
            }
        };
        let mut rep = reporter(c);
        let cell = cell_dir(dir, &c.hash);
        // The cell's log says what became of it, as a child process's does: `sweep status`
        // reads a failure from its last line (a fresh log, so an old failure does not linger).
        let log = dir.join("logs").join(format!("local-{}.log", c.hash));
        std::fs::create_dir_all(dir.join("logs")).map_err(|e| Error::io(dir, e))?;
        let mut log = crate::files::create_log(&log)?;
        {
            use std::io::Write;
            let _ = writeln!(log, "run in process {}", std::process::id());
        }
        match pipeline::run(&gpu, &cfg, &cell, true, None, rep.as_mut()) {
            Ok(_) => {}
            Err(e @ Error::Interrupted(_)) => return Err(e),
            Err(Error::Busy(who)) => {
                out.started.retain(|&i| i != c.index);
                out.busy.push((c.index, who));
            }
            Err(e) => {
                use std::io::Write;
                let _ = writeln!(log, "symclone-gpu: {e}");
                out.failed.push((c.index, e.to_string()));
            }
        }
    }
    Ok(())
}

/// The command line that runs one cell.
fn cell_command(program: &[String], cell: &Path) -> Vec<String> {
    let mut v = program.to_vec();
    v.extend([
        "run".to_string(),
        "--config".into(),
        cell.join("config.json").display().to_string(),
        "--out".into(),
        cell.display().to_string(),
        "--resume".into(),
    ]);
    v
}

fn children(
    dir: &Path,
    todo: &[CellEntry],
    program: &[String],
    jobs: usize,
    out: &mut Outcome,
) -> Result<()> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
    let mut queue = todo.iter();
    let mut running: Vec<(usize, PathBuf, std::process::Child)> = Vec::new();
    loop {
        while running.len() < jobs {
            let Some(c) = queue.next() else { break };
            let argv = cell_command(program, &cell_dir(dir, &c.hash));
            let log_path = logs.join(format!("local-{}.log", c.hash));
            let log = crate::files::create_log(&log_path)?;
            let err = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(err))
                .spawn()
                .map_err(|e| Error::invalid(format!("could not start {}: {e}", argv[0])))?;
            out.started.push(c.index);
            running.push((c.index, log_path, child));
        }
        if running.is_empty() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut i = 0;
        while i < running.len() {
            let status = running[i].2.try_wait().map_err(|e| Error::io(dir, e))?;
            match status {
                Some(s) => {
                    let (idx, log, _) = running.swap_remove(i);
                    if s.code() == Some(crate::error::EXIT_BUSY as i32) {
                        // Another process (a second `sweep run`) holds the cell: its work.
                        out.started.retain(|&i| i != idx);
                        out.busy
                            .push((idx, format!("another process; its log: {}", log.display())));
                    } else if !s.success() {
                        out.failed
                            .push((idx, format!("{s}; its log: {}", log.display())));
                    }
                }
                None => i += 1,
            }
        }
    }
}

pub(super) fn read_submissions(dir: &Path) -> Result<Option<Submissions>> {
    let path = dir.join(SUBMISSIONS);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = crate::files::Bound::SLURM_RECORD.read(&path)?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Data {
        path: path.display().to_string(),
        msg: format!("not a SLURM record of this program ({e}): remove it and submit with `sweep run --executor slurm`"),
    })
}

/// Quote a word for the shell.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `DIR/sweep.sbatch`: one array task per cell (the array index is the cell's index), each
/// running the cell with `--resume`, logging to `DIR/logs/<job>_<index>.log`.
pub fn script(dir: &Path, index: &Index, subs: &Submissions) -> String {
    let s = &subs.slurm;
    let last = index.cells.len().saturating_sub(1);
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        "# A symclone-gpu sweep: one cell per array index (written by `symclone-gpu sweep run --executor slurm`).".into(),
        "#SBATCH --job-name=symclone-sweep".into(),
        format!("#SBATCH --array=0-{last}{}", throttle(s)),
        format!("#SBATCH --output={}", sh(&dir.join("logs/%A_%a.log").display().to_string())),
    ];
    if let Some(p) = &s.partition {
        lines.push(format!("#SBATCH --partition={}", sh(p)));
    }
    if let Some(t) = &s.time {
        lines.push(format!("#SBATCH --time={}", sh(t)));
    }
    if s.gpus > 0 {
        lines.push(format!("#SBATCH --gres=gpu:{}", s.gpus));
    }
    lines.push("set -euo pipefail".into());
    let hashes: Vec<&str> = index.cells.iter().map(|c| c.hash.as_str()).collect();
    lines.push(format!("cells=({})", hashes.join(" ")));
    lines.push(format!("sweep={}", sh(&dir.display().to_string())));
    lines.push("cell=\"$sweep/cells/${cells[$SLURM_ARRAY_TASK_ID]}\"".into());
    let program: Vec<String> = subs.program.iter().map(|w| sh(w)).collect();
    lines.push(format!(
        "exec {} run --config \"$cell/config.json\" --out \"$cell\" --resume",
        program.join(" ")
    ));
    lines.join("\n") + "\n"
}

fn throttle(s: &SlurmArgs) -> String {
    s.throttle.map(|p| format!("%{p}")).unwrap_or_default()
}

/// Array indices as SLURM writes them: `0-3,5,7-8`.
fn ranges(ix: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ix.len() {
        let mut j = i;
        while j + 1 < ix.len() && ix[j + 1] == ix[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            ix[i].to_string()
        } else {
            format!("{}-{}", ix[i], ix[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

fn submit(dir: &Path, index: &Index, mut subs: Submissions, dry_run: bool) -> Result<Outcome> {
    let dir = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Outcome::default();
    let queued = if dry_run {
        Vec::new()
    } else {
        queued_cells(&subs).into_iter().map(|(i, _)| i).collect()
    };
    let todo: Vec<usize> = pending(&dir, index, &queued, &mut out)
        .iter()
        .map(|c| c.index)
        .collect();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
    let path = dir.join(SCRIPT);
    write_atomic(&path, script(&dir, index, &subs).as_bytes())?;
    if todo.is_empty() {
        return Ok(out);
    }
    let array = format!("--array={}{}", ranges(&todo), throttle(&subs.slurm));
    out.command = Some(format!(
        "sbatch --parsable {array} {}",
        sh(&path.display().to_string())
    ));
    if dry_run {
        return Ok(out);
    }
    let res = Command::new("sbatch")
        .args(["--parsable", &array])
        .arg(&path)
        .output()
        .map_err(|e| {
            Error::invalid(if e.kind() == std::io::ErrorKind::NotFound {
                format!("sbatch is not installed here (not on PATH): submit from a SLURM login node, run the cells here with --executor local, or write {} only with --dry-run", path.display())
            } else {
                format!("could not run sbatch: {e}")
            })
        })?;
    if !res.status.success() {
        let err = String::from_utf8_lossy(&res.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no message)");
        return Err(Error::invalid(format!(
            "sbatch refused the job ({}): {}: fix --partition, --time, --gpus or --throttle, or see {}",
            res.status,
            first.trim(),
            path.display()
        )));
    }
    let id = String::from_utf8_lossy(&res.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    subs.jobs.push(Job {
        id: id.clone(),
        cells: todo.clone(),
    });
    let json = serde_json::to_string_pretty(&subs).expect("serialisable");
    write_atomic(&dir.join(SUBMISSIONS), json.as_bytes())?;
    out.job = Some(id);
    out.started = todo;
    Ok(out)
}

/// The cells (array indices) of this sweep's jobs that `squeue` lists, with their state
/// (PENDING, RUNNING, …); empty when `squeue` is not here or the sweep has no jobs.
pub fn queued_cells(subs: &Submissions) -> Vec<(usize, String)> {
    if subs.jobs.is_empty() {
        return Vec::new();
    }
    let ids: Vec<&str> = subs.jobs.iter().map(|j| j.id.as_str()).collect();
    let Ok(res) = Command::new("squeue")
        .args([
            "--noheader",
            "--array",
            "--format=%i %T",
            "--jobs",
            &ids.join(","),
        ])
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&res.stdout);
    let mut found = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(id), Some(state)) = (w.next(), w.next()) else {
            continue;
        };
        let Some((job, task)) = id.split_once('_') else {
            continue;
        };
        if !ids.contains(&job) {
            continue;
        }
        // A pending array may still be listed folded: `123_[4-6%2]`.
        let task = task.trim_start_matches('[').trim_end_matches(']');
        let task = task.split('%').next().unwrap_or("");
        for part in task.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                for i in a..=b.min(a + 100_000) {
                    found.push((i, state.to_string()));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_flags_are_checked_before_they_reach_the_script() {
        for t in [
            "90",
            "30:00",
            "2:00:00",
            "1-0",
            "1-12:00",
            "1-12:00:00",
            "UNLIMITED",
        ] {
            assert!(slurm_time(t), "{t}");
        }
        for t in ["", "2h", "1:2:3:4", "-5", "1-", "2:00\n#SBATCH --x", "1 -2"] {
            assert!(!slurm_time(t), "{t:?}");
        }
        let with = |partition: &str| SlurmArgs {
            partition: Some(partition.into()),
            ..Default::default()
        };
        assert!(with("gpu").check().is_ok());
        assert!(with("gpu,cpu-long").check().is_ok());
        assert!(with("gpu\n#SBATCH --x").check().is_err());
        assert!(with("a b").check().is_err());
    }

    #[test]
    fn array_indices_are_written_as_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(sh("a b'c"), r"'a b'\''c'");
        assert_eq!(sh("/x/y-1"), "/x/y-1");
    }
}
