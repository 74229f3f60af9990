//! `sweep status`: where each cell stands, from its own files (and SLURM's queue where the sweep
//! was submitted), and the table it prints.

use super::exec::{queued_cells, read_submissions, Submissions};
use super::{cell_state, read_index, CellEntry, State};
use crate::Result;
use std::path::Path;

/// What `sweep status` shows per cell: its state from its files, and SLURM's where it has one.
pub fn status(dir: &Path) -> Result<Vec<(CellEntry, State, Option<String>)>> {
    let index = read_index(dir)?;
    let subs = read_submissions(dir)?;
    let queued = subs.as_ref().map(queued_cells).unwrap_or_default();
    Ok(index
        .cells
        .iter()
        .map(|c| {
            let q = queued
                .iter()
                .find(|(i, _)| *i == c.index)
                .map(|(_, s)| s.to_lowercase());
            let state = match cell_state(dir, &c.hash) {
                s @ (State::Stopped | State::NotStarted) => match last_error(dir, c, &subs) {
                    Some(e) => State::Failed(e),
                    None => s,
                },
                s => s,
            };
            (c.clone(), state, q)
        })
        .collect())
}

/// [`status`]'s rows as the table `sweep status` prints: a line per cell (index, hash, state,
/// SLURM's word for it when queued, its values, and why when running, failed or corrupt), then
/// the counts.
pub fn status_table(rows: &[(CellEntry, State, Option<String>)]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    let mut out = String::new();
    for (c, state, queue) in rows {
        *counts.entry(state.word()).or_insert(0) += 1;
        let detail = match state {
            State::Running(who) => format!(" ({who})"),
            State::Corrupt(why) | State::Failed(why) => format!(": {why}"),
            _ => String::new(),
        };
        let q = queue
            .as_ref()
            .map(|q| format!(" [slurm: {q}]"))
            .unwrap_or_default();
        out += &format!(
            "{:>4} {} {:<11}{q} {}{detail}\n",
            c.index,
            c.hash,
            state.word(),
            super::grid::show(&c.values)
        );
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out += &format!("{} cells: {}\n", rows.len(), summary.join(", "));
    out
}

/// The error line (`symclone-gpu: …`) that ends the newest log of a cell, if its last run failed.
fn last_error(dir: &Path, c: &CellEntry, subs: &Option<Submissions>) -> Option<String> {
    let logs = dir.join("logs");
    let mut files = vec![logs.join(format!("local-{}.log", c.hash))];
    if let Some(s) = subs {
        for j in s.jobs.iter().filter(|j| j.cells.contains(&c.index)) {
            files.push(logs.join(format!("{}_{}.log", j.id, c.index)));
        }
    }
    let newest = files
        .iter()
        .filter_map(|f| Some((std::fs::metadata(f).ok()?.modified().ok()?, f)))
        .max_by_key(|(t, _)| *t)?
        .1;
    let bytes = crate::files::Bound::LOG.read(newest).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    last.strip_prefix("symclone-gpu: ")
        .map(|e| format!("{e} (log: {})", newest.display()))
}
