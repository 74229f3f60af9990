//! What an output folder is: a run's, a sweep's or a merged report's. Each knows its kind from a
//! small marker file, [`MARKER`], written when the folder is first used; a command refuses a
//! folder of another kind with one line, so that no write replaces a record of another kind (a
//! merged report over a run's `report.json`, a run over a sweep). A folder written before the
//! marker existed has its kind inferred from what it holds.

use super::{write_atomic, Bound};
use crate::{Error, Result};
use std::path::Path;

/// The marker's name inside a folder; it holds the kind's word and a newline.
pub const MARKER: &str = ".symclone-kind";

/// The kinds of output folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// What `run` (and `clone`, `finetune`, `teacher`, a sweep's cell) writes: checkpoints,
    /// phase results and the run's `report.json`.
    Run,
    /// What `sweep plan` makes: `sweep.json` and `cells/` (and the merged report of its cells).
    Sweep,
    /// What `report SWEEP… --out DIR` writes: a merged report alone.
    Report,
}

impl Kind {
    /// The word the marker holds: `run`, `sweep`, `report`.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Sweep => "sweep",
            Kind::Report => "report",
        }
    }

    /// `a run folder`, `a sweep folder`, `a merged report's folder`.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Run => "a run folder",
            Kind::Sweep => "a sweep folder",
            Kind::Report => "a merged report's folder",
        }
    }

    fn parse(word: &str) -> Option<Kind> {
        [Kind::Run, Kind::Sweep, Kind::Report]
            .into_iter()
            .find(|k| k.word() == word)
    }
}

/// What a folder is and how that is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    /// `its .symclone-kind says so`, or what the kind was inferred from.
    pub because: String,
}

/// The kind of the folder `dir`: its marker's, or for a folder without one (written by an older
/// version), the kind inferred from what is there — a `report.json` of a run: a run; a
/// `sweep.json`: a sweep; a merged report alone: a merged report; a run's phase files: a run.
/// None for a folder that does not exist or holds nothing of the program's. A marker that is not
/// a regular file, or names no kind, is an error naming it.
pub fn of(dir: &Path) -> Result<Option<Found>> {
    let marker = dir.join(MARKER);
    if std::fs::symlink_metadata(&marker).is_ok() {
        let bytes = Bound::new("a folder's kind marker", 64).read(&marker)?;
        let word = String::from_utf8_lossy(&bytes).trim().to_string();
        return match Kind::parse(&word) {
            Some(kind) => Ok(Some(Found {
                kind,
                because: format!("its {MARKER} says so"),
            })),
            None => Err(Error::Data {
                path: marker.display().to_string(),
                msg: format!(
                    "holds \"{}\", not one of run, sweep or report: remove it if the folder is yours",
                    word.escape_debug()
                ),
            }),
        };
    }
    let found = |kind, because: &str| {
        Ok(Some(Found {
            kind,
            because: because.to_string(),
        }))
    };
    let report = dir.join("report.json");
    let merged = if std::fs::symlink_metadata(&report).is_ok() {
        // A report that cannot be read or parsed counts as a run's: the record is kept.
        let v: Option<serde_json::Value> = Bound::REPORT
            .read(&report)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let merged = v.is_some_and(|v| v.get("sweeps").is_some() && v.get("cells_total").is_some());
        if !merged {
            return found(Kind::Run, "it holds a run's report.json");
        }
        true
    } else {
        false
    };
    if std::fs::symlink_metadata(dir.join("sweep.json")).is_ok() {
        return found(Kind::Sweep, "it holds sweep.json");
    }
    if merged {
        return found(Kind::Report, "it holds a merged report.json");
    }
    for name in ["clones", "models", "config.json"] {
        if std::fs::symlink_metadata(dir.join(name)).is_ok() {
            return found(Kind::Run, &format!("it holds a run's {name}"));
        }
    }
    Ok(None)
}

/// Use `dir` as a folder of `kind`: when it is one already (or holds nothing of the program's),
/// write the marker if it has none and return; when it is a folder of another kind, refuse with
/// one line saying what it is and `what_to_do`.
pub fn claim(dir: &Path, kind: Kind, what_to_do: &str) -> Result<()> {
    let found = of(dir)?;
    if let Some(f) = &found {
        if f.kind != kind {
            return Err(refusal(dir, f, kind, what_to_do));
        }
    }
    if std::fs::symlink_metadata(dir.join(MARKER)).is_err() {
        write_atomic(&dir.join(MARKER), format!("{}\n", kind.word()).as_bytes())?;
    }
    Ok(())
}

/// `DIR is a run folder (it holds a run's report.json), not a sweep folder: WHAT_TO_DO`.
pub fn refusal(dir: &Path, found: &Found, wanted: Kind, what_to_do: &str) -> Error {
    Error::invalid(format!(
        "{} is {} ({}), not {}: {what_to_do}",
        dir.display(),
        found.kind.describe(),
        found.because,
        wanted.describe()
    ))
}
