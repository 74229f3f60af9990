//! Sweeps: seeds × settings × models as many runs, each a content-hashed run folder.
//!
//! `sweep plan` expands a grid file ([`grid`]) into `DIR/cells/<hash>/config.json` and the index
//! `DIR/sweep.json`; `sweep run` runs every unfinished cell with one code path (`run --config
//! cell/config.json --out cell --resume`), in this process, in child processes, or as a SLURM job
//! array ([`exec`]); `sweep status` says where each cell stands from its own files (and `squeue`);
//! `report DIR…` merges the finished cells into one report ([`merge`]). Nothing here schedules:
//! SLURM does, and a cell's folder lock keeps two executors off one cell.

pub mod exec;
pub mod grid;
pub mod merge;
pub mod status;
pub mod symmetry;

pub use exec::{resume, run, Executor, SlurmArgs, SweepRunArgs};
pub use grid::{hash, Cell, Grid};
pub use merge::{merge, report, SweepReport};
pub use status::{status, status_table};

use crate::config::RunConfig;
use crate::files::write_atomic;
use crate::results::Report;
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `DIR/sweep.json`: the grid and its cells.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub version: u32,
    /// The grid file this sweep was planned from, as it was then.
    pub grid: Grid,
    /// The swept keys, in the order of the cells' values.
    pub keys: Vec<String>,
    pub cells: Vec<CellEntry>,
}

/// One cell of the index.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellEntry {
    pub index: usize,
    pub hash: String,
    pub values: BTreeMap<String, Value>,
}

/// The index file's name inside a sweep folder.
pub const INDEX: &str = "sweep.json";
const VERSION: u32 = 1;

/// A cell's folder.
pub fn cell_dir(dir: &Path, hash: &str) -> PathBuf {
    dir.join("cells").join(hash)
}

/// `sweep plan`: expand the grid file at `grid_path` into `out`. A cell already there is kept
/// (its results too) when its `config.json` is the cell's; one whose folder holds another
/// configuration is refused before anything is written. So is a folder of another kind (a run's,
/// a merged report's) and a sweep planned from a grid that lacks some of its cells (planning it
/// would drop them from `sweep.json`, and their results from status and report); planning the
/// same grid again, or one that adds cells, keeps every cell.
pub fn plan(grid_path: &Path, out: &Path) -> Result<Index> {
    use crate::files::kind::{self, Kind};
    let grid = Grid::read(grid_path)?;
    let base = grid.base_config(grid_path.parent().unwrap_or(Path::new(".")))?;
    let cells = grid.expand(&base)?;
    if let Some(found) = kind::of(out)? {
        if found.kind != Kind::Sweep {
            return Err(kind::refusal(
                out,
                &found,
                Kind::Sweep,
                "plan the sweep into a folder of its own (another --out)",
            ));
        }
    }
    // An index that cannot be read is planned again, as its own message says to.
    if let Ok(old) = read_index(out) {
        let new: std::collections::BTreeSet<&str> = cells.iter().map(|c| c.hash.as_str()).collect();
        let dropped: Vec<&CellEntry> = old
            .cells
            .iter()
            .filter(|c| !new.contains(c.hash.as_str()))
            .collect();
        if !dropped.is_empty() {
            let done = dropped
                .iter()
                .filter(|c| cell_state(out, &c.hash) == State::Done)
                .count();
            return Err(Error::invalid(format!(
                "{} is a sweep of another grid: {} of its {} cells ({done} done) are not in {}, and planning it here would drop them; plan into another --out, or plan a grid that keeps every cell here (add values rather than change them)",
                out.display(),
                dropped.len(),
                old.cells.len(),
                grid_path.display()
            )));
        }
    }
    for c in &cells {
        check_cell_dir(out, &c.hash)?;
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    kind::claim(out, Kind::Sweep, "plan the sweep into a folder of its own")?;
    for c in &cells {
        let d = cell_dir(out, &c.hash);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        write_pretty(&d.join("config.json"), &c.config)?;
    }
    let index = Index {
        version: VERSION,
        keys: grid.grid.keys().cloned().collect(),
        grid,
        cells: cells
            .iter()
            .map(|c| CellEntry {
                index: c.index,
                hash: c.hash.clone(),
                values: c.values.clone(),
            })
            .collect(),
    };
    write_pretty(&out.join(INDEX), &index)?;
    Ok(index)
}

/// JSON as `config.json` is written by a run (pretty), atomically.
fn write_pretty<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    write_atomic(
        path,
        serde_json::to_string_pretty(v)
            .expect("serialisable")
            .as_bytes(),
    )
}

/// A cell folder that exists must hold the cell's own configuration.
fn check_cell_dir(dir: &Path, hash: &str) -> Result<()> {
    let d = cell_dir(dir, hash);
    let file = d.join("config.json");
    if !d.exists() || !file.exists() {
        return Ok(());
    }
    let cfg = RunConfig::base("", Some(&file))?;
    let h = grid::hash(&cfg);
    if h != hash {
        return Err(Error::invalid(format!(
            "{}: this cell folder belongs to another grid (its config.json hashes to {h}, not {hash}): remove the folder, or plan into another --out",
            d.display()
        )));
    }
    Ok(())
}

/// Read `DIR/sweep.json`.
pub fn read_index(dir: &Path) -> Result<Index> {
    let path = dir.join(INDEX);
    if !path.exists() {
        return Err(Error::invalid(format!(
            "{}: no sweep here ({} is missing): plan one with `symclone-gpu sweep plan --grid GRID.json --out {}`",
            dir.display(),
            path.display(),
            dir.display()
        )));
    }
    let bytes = crate::files::Bound::SWEEP_INDEX.read(&path)?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| Error::Data {
        path: path.display().to_string(),
        msg: format!("not a sweep index ({e}): plan the sweep again with `sweep plan`"),
    })?;
    if index.version != VERSION {
        return Err(Error::Data {
            path: path.display().to_string(),
            msg: format!(
                "sweep index version {} (this program writes {VERSION}): plan the sweep again",
                index.version
            ),
        });
    }
    Ok(index)
}

/// Where a cell stands, from its own files.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Only its configuration is there.
    NotStarted,
    /// A process holds its folder's lock (named).
    Running(String),
    /// Started, not finished, and nothing holds it: it was stopped (killed, cancelled); a resume
    /// completes it.
    Stopped,
    /// Its last run ended with an error, the message its log gives (see `sweep status`).
    Failed(String),
    /// Its `report.json` is complete and of this cell's configuration.
    Done,
    /// Not mergeable, with the reason: a configuration of another cell, a report that does not
    /// parse or is of another configuration.
    Corrupt(String),
}

impl State {
    /// One word for tables: done, running, stopped, not started, corrupt.
    pub fn word(&self) -> &'static str {
        match self {
            State::NotStarted => "not started",
            State::Running(_) => "running",
            State::Stopped => "stopped",
            State::Failed(_) => "failed",
            State::Done => "done",
            State::Corrupt(_) => "corrupt",
        }
    }
}

/// Read a finished cell's report, checked against the cell's hash.
pub fn cell_report(dir: &Path, hash: &str) -> std::result::Result<Report, String> {
    let path = cell_dir(dir, hash).join("report.json");
    let bytes = crate::files::Bound::REPORT
        .read(&path)
        .map_err(|e| e.to_string())?;
    let r: Report = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a complete report ({e})", path.display()))?;
    r.check().map_err(|e| format!("{}: {e}", path.display()))?;
    let h = grid::hash(&r.config);
    if h != hash {
        return Err(format!(
            "{}: the report is of another configuration (hash {h}, not {hash})",
            path.display()
        ));
    }
    Ok(r)
}

/// Where the cell `hash` of the sweep in `dir` stands.
pub fn cell_state(dir: &Path, hash: &str) -> State {
    let d = cell_dir(dir, hash);
    if let Some(who) = crate::files::lock_holder(&d) {
        return State::Running(who);
    }
    if let Err(e) = check_cell_dir(dir, hash) {
        return State::Corrupt(e.to_string());
    }
    if !d.join("config.json").exists() {
        return State::Corrupt(format!(
            "{}: config.json is missing: plan the sweep again",
            d.display()
        ));
    }
    if d.join("report.json").exists() {
        return match cell_report(dir, hash) {
            Ok(_) => State::Done,
            Err(e) => State::Corrupt(e),
        };
    }
    if d.join("clones").exists() || d.join("models").exists() {
        State::Stopped
    } else {
        State::NotStarted
    }
}
