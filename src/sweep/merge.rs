//! One report from a sweep's finished cells: per (task, model, setting) the accuracies over the
//! seeds with their mean and a 95 % confidence interval (Student's t), and a figure of accuracy
//! against each swept key. A cell that is not finished is listed as such; one that is corrupt (a
//! report that does not parse, or that is of another configuration, or a folder of another grid)
//! is named with the reason, never merged silently.

use super::grid::{leaves, show};
pub use super::symmetry::RowSymmetry;
use super::{cell_report, cell_state, read_index, State, INDEX};
use crate::files::kind::{self, Found, Kind};
use crate::files::write_atomic;
use crate::models::ModelKind;
use crate::report::doc::{Block, Doc, FigureBlock, Table};
use crate::report::plot::{Bar, BarSeries, Bars, Figure, Lines, Panel, Series};
use crate::results::figures::model_colour;
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The merged report (`report.json` of a sweep).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SweepReport {
    /// The sweep folders merged.
    pub sweeps: Vec<String>,
    /// The swept keys, and any other configuration key whose value differs among the merged
    /// cells.
    pub keys: Vec<String>,
    pub cells_total: usize,
    pub cells_merged: usize,
    /// Cells not finished yet (not started, stopped or running), named with their state.
    pub not_finished: Vec<String>,
    /// Cells that cannot be merged, named with the reason.
    pub left_out: Vec<String>,
    pub rows: Vec<Row>,
}

/// One (task, model, setting): the accuracies of its seeds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Row {
    pub task: String,
    pub model: ModelKind,
    /// The values of the report's keys other than the seed (null where a cell's configuration
    /// has no such key).
    pub setting: BTreeMap<String, Value>,
    pub seeds: Vec<u64>,
    /// Test accuracy per seed (fraction correct), in the order of `seeds`.
    pub accuracies: Vec<f64>,
    pub mean: f64,
    /// Sample standard deviation (0 with one seed).
    pub std: f64,
    /// Half-width of the 95 % confidence interval of the mean (Student's t with n − 1 degrees of
    /// freedom); None with one seed.
    pub ci95: Option<f64>,
    /// How much symmetry the setting's networks kept, mean over the seeds, where every cell of
    /// the row measured it. None in reports merged before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symmetry: Option<RowSymmetry>,
}

/// (task, model, setting): what a row of the merged report is about.
type GroupKey = (String, ModelKind, BTreeMap<String, Value>);

/// A row being gathered: its key, its (seed, accuracy) pairs and each cell's (seed count,
/// symmetry measures).
type Group = (GroupKey, Vec<(u64, f64)>, Vec<(usize, Option<RowSymmetry>)>);

/// The 97.5 % quantile of Student's t distribution with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => {
            // Cornish–Fisher expansion around the normal quantile (error < 1e-4 past 30).
            let (z, n) = (1.959_964f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * n)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
        }
    }
}

/// Mean, sample standard deviation and the 95 % interval's half-width.
pub fn summary(x: &[f64]) -> (f64, f64, Option<f64>) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (mean, 0.0, None);
    }
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let std = var.sqrt();
    (mean, std, Some(t975(x.len() - 1) * std / n.sqrt()))
}

/// Merge the finished cells of the sweeps in `dirs` (a cell in several of them counts once).
pub fn merge(dirs: &[PathBuf]) -> Result<SweepReport> {
    let mut keys: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let (mut total, mut merged) = (0, 0);
    let (mut not_finished, mut left_out) = (Vec::new(), Vec::new());
    // The finished cells, each with its configuration as dotted paths.
    let mut done = Vec::new();
    for dir in dirs {
        let index = read_index(dir)?;
        for k in &index.keys {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        for c in &index.cells {
            if !seen.insert(c.hash.clone()) {
                continue;
            }
            total += 1;
            let name = format!(
                "{} ({})",
                super::cell_dir(dir, &c.hash).display(),
                show(&c.values)
            );
            let report = match cell_state(dir, &c.hash) {
                State::Done => match cell_report(dir, &c.hash) {
                    Ok(r) => r,
                    Err(why) => {
                        left_out.push(format!("{name}: {why}"));
                        continue;
                    }
                },
                State::Corrupt(why) => {
                    left_out.push(format!("{name}: {why}"));
                    continue;
                }
                s => {
                    not_finished.push(format!("{name}: {}", s.word()));
                    continue;
                }
            };
            merged += 1;
            let mut paths = leaves(&serde_json::to_value(&report.config).expect("serialisable"));
            // A swept key keeps the value as the grid wrote it (5e10, not its f32 rounding).
            paths.extend(c.values.iter().map(|(k, v)| (k.clone(), v.clone())));
            done.push((paths, report));
        }
    }
    // A setting is every key a sweep swept and every other value in which the merged cells
    // differ (a value one sweep fixed and another left at its default, say), never pooling
    // cells of different configurations; the seed is what the rows are over.
    if let Some((first, _)) = done.first() {
        let all: std::collections::BTreeSet<&String> =
            done.iter().flat_map(|(p, _)| p.keys()).collect();
        for path in all {
            let varies = done.iter().any(|(p, _)| p.get(path) != first.get(path));
            if varies && !keys.contains(path) {
                keys.push(path.clone());
            }
        }
    }
    // (task, model, setting) → (seed, accuracy) pairs and each cell's (seeds, symmetry), in
    // first-seen order.
    let mut groups: Vec<Group> = Vec::new();
    for (paths, report) in &done {
        let setting: BTreeMap<String, Value> = keys
            .iter()
            .filter(|k| k.as_str() != "seed")
            .map(|k| (k.clone(), paths.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        for m in &report.results {
            let key = (m.task.clone(), m.model, setting.clone());
            let pos = match groups.iter().position(|(k, ..)| *k == key) {
                Some(p) => p,
                None => {
                    groups.push((key, Vec::new(), Vec::new()));
                    groups.len() - 1
                }
            };
            groups[pos].2.push((m.test_acc.len(), RowSymmetry::of(m)));
            for (i, &a) in m.test_acc.iter().enumerate() {
                groups[pos]
                    .1
                    .push((report.config.seed + i as u64, a as f64));
            }
        }
    }
    let rows = groups
        .into_iter()
        .map(|((task, model, setting), mut v, cells)| {
            v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let accuracies: Vec<f64> = v.iter().map(|p| p.1).collect();
            let (mean, std, ci95) = summary(&accuracies);
            Row {
                task,
                model,
                setting,
                seeds: v.iter().map(|p| p.0).collect(),
                accuracies,
                mean,
                std,
                ci95,
                symmetry: RowSymmetry::mean(&cells),
            }
        })
        .collect();
    Ok(SweepReport {
        sweeps: dirs.iter().map(|d| d.display().to_string()).collect(),
        keys,
        cells_total: total,
        cells_merged: merged,
        not_finished,
        left_out,
        rows,
    })
}

/// `symclone-gpu report DIR…`: sweeps are merged into one report in `out` (default: the one
/// sweep folder given); run folders get their report made again from their `report.json`.
/// Returns the files written and, for sweeps, the merged report.
pub fn report(dirs: &[PathBuf], out: Option<&Path>) -> Result<(Vec<PathBuf>, Option<SweepReport>)> {
    // Each folder's kind decides what is done with it: a run's report is written again in
    // place, sweeps are merged; a run folder is never given a merged report.
    let kinds = dirs
        .iter()
        .map(|d| kind::of(d))
        .collect::<Result<Vec<Option<Found>>>>()?;
    let is_sweep = |k: &Option<Found>| k.as_ref().is_some_and(|f| f.kind == Kind::Sweep);
    if !kinds.iter().any(is_sweep) {
        if out.is_some() {
            return Err(Error::invalid(
                "--out merges sweeps: the folders given are run folders, whose reports are written in place",
            ));
        }
        let mut files = Vec::new();
        for (d, k) in dirs.iter().zip(&kinds) {
            if let Some(f) = k.as_ref().filter(|f| f.kind == Kind::Report) {
                return Err(kind::refusal(
                    d,
                    f,
                    Kind::Run,
                    "write it again from its sweeps with `symclone-gpu report SWEEP… --out DIR`",
                ));
            }
            crate::results::rebuild(d)?;
            files.extend(["report.md", "report.html"].map(|f| d.join(f)));
        }
        return Ok((files, None));
    }
    if let Some((d, k)) = dirs.iter().zip(&kinds).find(|(_, k)| !is_sweep(k)) {
        return Err(match k {
            Some(f) => kind::refusal(
                d,
                f,
                Kind::Sweep,
                "the other folders are sweeps; report it on its own",
            ),
            None => Error::invalid(format!(
                "{}: not a sweep (no {INDEX}) while the other folders are: report it on its own",
                d.display()
            )),
        });
    }
    let out = match (out, dirs) {
        (Some(o), _) => o.to_path_buf(),
        (None, [one]) => one.clone(),
        _ => {
            return Err(Error::invalid(
                "several sweeps merge into one report: say where with --out DIR",
            ))
        }
    };
    // The merged report goes into a sweep's folder or into one of its own, never over a run's.
    let out_kind = kind::of(&out)?;
    if let Some(f) = out_kind.as_ref().filter(|f| f.kind == Kind::Run) {
        return Err(kind::refusal(
            &out,
            f,
            Kind::Report,
            "its report.json is the run's; write the merged report into another --out",
        ));
    }
    let r = merge(dirs)?;
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    if out_kind.is_none() {
        kind::claim(
            &out,
            Kind::Report,
            "write the merged report into another --out",
        )?;
    }
    let figs = figures(&r)?;
    let mut files = Vec::new();
    for f in &figs {
        let p = out.join(&f.file);
        write_atomic(&p, f.svg.as_bytes())?;
        files.push(p);
    }
    let json = serde_json::to_string_pretty(&r).expect("serialisable");
    let d = doc(&r, figs);
    for (name, text) in [
        ("report.json", json),
        ("report.md", d.markdown()),
        ("report.html", d.html()),
    ] {
        let p = out.join(name);
        write_atomic(&p, text.as_bytes())?;
        files.push(p);
    }
    Ok((files, Some(r)))
}

fn pct(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

/// The merged report's document.
pub fn doc(r: &SweepReport, figs: Vec<FigureBlock>) -> Doc {
    let setting_keys: Vec<&String> = r.keys.iter().filter(|k| k.as_str() != "seed").collect();
    let mut b = vec![Block::List(vec![
        format!("sweeps: {}", r.sweeps.join(", ")),
        format!("cells merged: {} of {}", r.cells_merged, r.cells_total),
        format!(
            "swept keys (and keys the cells differ in): {}",
            r.keys.join(", ")
        ),
    ])];
    b.push(Block::Heading(2, "Test accuracy over seeds".into()));
    b.push(Block::Para(
        "Mean over the seeds with the 95 % confidence interval of the mean (Student's t, n − 1 degrees of freedom); – where there is one seed.".into(),
    ));
    let mut header: Vec<String> = vec!["task".into(), "model".into()];
    header.extend(setting_keys.iter().map(|k| k.to_string()));
    header.extend(["seeds", "accuracy (%)", "95 % CI (%)", "std (%)"].map(String::from));
    let mut right = vec![false; 2 + setting_keys.len()];
    right.extend([true; 4]);
    let rows = r
        .rows
        .iter()
        .map(|row| {
            let mut v = vec![row.task.clone(), row.model.to_string()];
            v.extend(
                setting_keys
                    .iter()
                    .map(|k| row.setting.get(*k).map_or("–".into(), |x| x.to_string())),
            );
            v.push(row.seeds.len().to_string());
            v.push(pct(row.mean));
            v.push(row.ci95.map_or("–".into(), |c| {
                format!(
                    "± {} [{}, {}]",
                    pct(c),
                    pct(row.mean - c),
                    pct(row.mean + c)
                )
            }));
            v.push(pct(row.std));
            v
        })
        .collect();
    b.push(Block::Table(Table {
        header,
        right,
        rows,
    }));
    let sym: Vec<(&Row, &RowSymmetry)> = r
        .rows
        .iter()
        .filter_map(|row| row.symmetry.as_ref().map(|s| (row, s)))
        .collect();
    if !sym.is_empty() {
        b.push(Block::Heading(2, "Symmetry kept, over seeds".into()));
        b.push(Block::Para(
            "Means over the seeds (SPEC §7): each feature layer's equivariance error ‖Φ(g·x) − g·Φ(x)‖ / ‖Φ(x)‖ after training, the logits' invariance error, and for KL models the share of the cloned blocks' drift that is a common shift across the blocks, the direction SPEC §5's KL cannot see (mean over the layers' blocks tensors).".into(),
        ));
        let layers = sym
            .iter()
            .map(|(_, s)| s.layer_equivariance.len())
            .max()
            .unwrap_or(0);
        let mut header: Vec<String> = vec!["task".into(), "model".into()];
        header.extend(setting_keys.iter().map(|k| k.to_string()));
        header.extend((0..layers).map(|l| format!("layer {l}")));
        header.extend(["invariance error", "blocks' common shift"].map(String::from));
        let mut right = vec![false; 2 + setting_keys.len()];
        right.extend(vec![true; layers + 2]);
        let rows = sym
            .iter()
            .map(|(row, s)| {
                let mut v = vec![row.task.clone(), row.model.to_string()];
                v.extend(
                    setting_keys
                        .iter()
                        .map(|k| row.setting.get(*k).map_or("–".into(), |x| x.to_string())),
                );
                v.extend((0..layers).map(|l| {
                    s.layer_equivariance
                        .get(l)
                        .map_or("–".into(), |e| format!("{e:.3}"))
                }));
                v.push(format!("{:.3}", s.invariance_error));
                v.push(
                    s.blocks_common_share
                        .map_or("–".into(), |c| format!("{:.1} %", 100.0 * c)),
                );
                v
            })
            .collect();
        b.push(Block::Table(Table {
            header,
            right,
            rows,
        }));
    }
    if !r.left_out.is_empty() {
        b.push(Block::Heading(2, "Cells left out".into()));
        b.push(Block::Para(
            "These cells are not in the numbers above: their files are not a finished run of their configuration. Remove the folder and resume the sweep to run them again.".into(),
        ));
        b.push(Block::List(r.left_out.clone()));
    }
    if !r.not_finished.is_empty() {
        b.push(Block::Heading(2, "Cells not finished".into()));
        b.push(Block::List(r.not_finished.clone()));
    }
    if !figs.is_empty() {
        b.push(Block::Heading(2, "Figures".into()));
        b.extend(figs.into_iter().map(Block::Figure));
    }
    Doc {
        title: "symclone-gpu sweep report".into(),
        blocks: b,
    }
}

/// One figure per swept key other than the seed: accuracy against the key's values, one panel
/// per task, one line (numeric values) or bar series (others) per model and setting of the
/// other keys.
pub fn figures(r: &SweepReport) -> Result<Vec<FigureBlock>> {
    let mut out = Vec::new();
    let mut tasks: Vec<&String> = Vec::new();
    for row in &r.rows {
        if !tasks.contains(&&row.task) {
            tasks.push(&row.task);
        }
    }
    for key in r.keys.iter().filter(|k| k.as_str() != "seed") {
        let numeric = r
            .rows
            .iter()
            .all(|row| row.setting.get(key).is_none_or(Value::is_number));
        let mut panels = Vec::new();
        for task in &tasks {
            let rows: Vec<&super::merge::Row> =
                r.rows.iter().filter(|x| &&x.task == task).collect();
            // Series: model and the other keys' values.
            let mut series: Vec<(ModelKind, String)> = Vec::new();
            for row in &rows {
                let rest: BTreeMap<String, Value> = row
                    .setting
                    .iter()
                    .filter(|(k, _)| *k != key)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let s = (row.model, show(&rest));
                if !series.contains(&s) {
                    series.push(s);
                }
            }
            let in_series = |row: &&super::merge::Row, s: &(ModelKind, String)| {
                let rest: BTreeMap<String, Value> = row
                    .setting
                    .iter()
                    .filter(|(k, _)| *k != key)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                row.model == s.0 && show(&rest) == s.1
            };
            let label = |s: &(ModelKind, String)| {
                if s.1.is_empty() {
                    s.0.to_string()
                } else {
                    format!("{} ({})", s.0, s.1)
                }
            };
            let title = task.to_string();
            let y_label = "test accuracy (%)".to_string();
            if numeric {
                let series = series
                    .iter()
                    .map(|s| {
                        let mut points: Vec<(f64, f64)> = rows
                            .iter()
                            .filter(|row| in_series(row, s))
                            .filter_map(|row| {
                                Some((row.setting.get(key)?.as_f64()?, 100.0 * row.mean))
                            })
                            .collect();
                        points.sort_by(|a, b| a.0.total_cmp(&b.0));
                        Series {
                            label: label(s),
                            colour: model_colour(s.0),
                            points,
                            dashed: false,
                        }
                    })
                    .collect();
                panels.push(Panel::Lines(Lines {
                    title,
                    x_label: key.clone(),
                    y_label,
                    series,
                    ..Default::default()
                }));
            } else {
                let mut groups: Vec<String> = Vec::new();
                for row in &rows {
                    let g = row.setting.get(key).map_or("–".into(), |v| v.to_string());
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
                let series = series
                    .iter()
                    .map(|s| BarSeries {
                        label: label(s),
                        colour: model_colour(s.0),
                        bars: groups
                            .iter()
                            .map(|g| {
                                let row = rows.iter().find(|row| {
                                    in_series(row, s)
                                        && row
                                            .setting
                                            .get(key)
                                            .map_or("–".into(), |v| v.to_string())
                                            == *g
                                })?;
                                let m = 100.0 * row.mean;
                                let c = 100.0 * row.ci95.unwrap_or(0.0);
                                Some(Bar {
                                    value: m,
                                    err: Some((m - c, m + c)),
                                    points: row.accuracies.iter().map(|a| 100.0 * a).collect(),
                                })
                            })
                            .collect(),
                    })
                    .collect();
                panels.push(Panel::Bars(Bars {
                    title,
                    x_label: key.clone(),
                    y_label,
                    y_range: Some((0.0, 100.0)),
                    groups,
                    series,
                    ..Default::default()
                }));
            }
        }
        let f = Figure::new(
            &format!("sweep-{}", key.replace(['.', '*', '/'], "-")),
            &format!("Test accuracy against {key}"),
            &format!(
                "Test accuracy (mean over the seeds) against {key}, one panel per task, one {} per model and setting of the other swept keys{}.",
                if numeric { "line" } else { "bar series" },
                if numeric { "; the table gives the 95 % intervals" } else { "; error bars: 95 % interval of the mean, dots: the seeds" }
            ),
            panels,
        );
        out.push(FigureBlock {
            file: format!("{}.svg", f.name),
            title: f.title.clone(),
            caption: f.caption.clone(),
            svg: crate::report::render::svg(&f)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_students() {
        let (m, s, c) = summary(&[0.5, 0.7]);
        assert!((m - 0.6).abs() < 1e-12);
        assert!((s - 0.1414213562).abs() < 1e-9);
        // t(0.975, 1) = 12.706: 12.706 · 0.14142 / √2.
        assert!((c.unwrap() - 1.2706).abs() < 1e-9, "{c:?}");
        assert_eq!(summary(&[0.3]), (0.3, 0.0, None));
        // Past the table the expansion continues it smoothly (t(0.975, 40) = 2.0211).
        assert!((t975(40) - 2.0211).abs() < 5e-4, "{}", t975(40));
        assert!((t975(31) - 2.0395).abs() < 5e-4, "{}", t975(31));
    }
}
