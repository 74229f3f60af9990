//! The files made from a report: `report.json`, then `report.md`, `report.html` and the figures
//! (`*.svg`), which [`rebuild`] (`symclone-gpu report DIR`) makes again from `report.json` alone.

use super::types::{ModelReport, Report};
use super::{compare, figures};
use crate::files::{read_json_file, write_atomic, write_json, Bound};
use crate::models::ModelKind;
use crate::report::doc::{Block, Doc, FigureBlock, Table};
use crate::Result;
use std::path::Path;

/// `report.json`, then everything [`rebuild`] makes from it, under `out`.
pub fn write(out: &Path, report: &Report) -> Result<()> {
    write_json(&out.join("report.json"), report)?;
    write_views(out, report)
}

/// `symclone-gpu report DIR`: read `DIR/report.json` and write `report.md`, `report.html` and
/// the figures again.
pub fn rebuild(dir: &Path) -> Result<Report> {
    let report: Report = read_json_file(&dir.join("report.json"), Bound::REPORT)?;
    report.check()?;
    write_views(dir, &report)?;
    Ok(report)
}

/// The figures as SVG files, `report.md` linking them and `report.html` holding them inline.
fn write_views(out: &Path, report: &Report) -> Result<()> {
    let figs = figures::render(report)?;
    for f in &figs {
        write_atomic(&out.join(&f.file), f.svg.as_bytes())?;
    }
    let d = doc(report, figs);
    write_atomic(&out.join("report.md"), d.markdown().as_bytes())?;
    write_atomic(&out.join("report.html"), d.html().as_bytes())
}

/// The report as Markdown (SPEC §7's tables, the figures linked as files beside it).
pub fn markdown(r: &Report) -> String {
    let figs = figures::render(r).unwrap_or_default();
    doc(r, figs).markdown()
}

/// The report as one self-contained HTML page.
pub fn html(r: &Report) -> Result<String> {
    Ok(doc(r, figures::render(r)?).html())
}

fn strings<const N: usize>(v: [&str; N]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The report's document: the run's facts, SPEC §7's tables, the figures and the configuration.
pub fn doc(r: &Report, figs: Vec<FigureBlock>) -> Doc {
    let mut facts = vec![
        format!("adapter: {}", r.adapter),
        format!("data: {}", r.data),
        format!(
            "preset: {} (config hash {}), seeds: {}",
            r.config.preset, r.config_hash, r.config.seeds
        ),
        format!("symclone-gpu {}; total time: {:.0} s", r.version, r.seconds),
    ];
    if r.config.half_blocks {
        facts.push(
            "frozen clone blocks read in half precision (`--half-blocks true`): the faux models' products and the fidelity check below"
                .into(),
        );
    }
    let mut b = vec![Block::List(facts)];
    if let Some(why) = &r.incomplete {
        b.push(Block::Para(format!(
            "**Incomplete:** {why}. This report holds what was done (each model over its finished seeds); `symclone-gpu run --resume` with the same `--out` goes on from there."
        )));
    }
    if !r.kernels.is_empty() {
        b.push(Block::Heading(2, "Kernel variants".into()));
        b.push(Block::Para(
            "The variant each op ran, over its shape buckets, and how each choice was made (timed here, read from the cache, forced, a family's default, too small to time, or the timing budget spent); report.json lists every bucket. The results are bit-reproducible for these choices."
                .into(),
        ));
        b.push(Block::Table(Table {
            header: strings(["op", "variant", "buckets", "chosen by"]),
            right: vec![false, false, true, false],
            rows: kernel_rows(&r.kernels),
        }));
    }
    b.push(Block::Heading(2, "Test accuracy".into()));
    b.push(Block::Table(Table {
        header: strings([
            "task",
            "model",
            "accuracy (mean ± std)",
            "train time",
            "trainable parameters",
            "clones unchanged",
        ]),
        right: vec![false, false, true, true, true, false],
        rows: r
            .results
            .iter()
            .map(|m| {
                vec![
                    m.task.clone(),
                    m.model.to_string(),
                    format!("{:.2} ± {:.2} %", 100.0 * m.mean, 100.0 * m.std),
                    format!("{:.0} s", m.train_seconds),
                    m.trainable_params.to_string(),
                    match m.clones_unchanged {
                        Some(true) => "yes (bit-identical)",
                        Some(false) => "NO",
                        None => "–",
                    }
                    .to_string(),
                ]
            })
            .collect(),
    }));
    let rotated: Vec<&ModelReport> = r
        .results
        .iter()
        .filter(|m| m.accuracy_by_rotation.is_some())
        .collect();
    if !rotated.is_empty() {
        // Four columns for C4, eight when a D4 task ran (its C4 rows leave the flipped ones empty).
        let order = rotated
            .iter()
            .map(|m| m.accuracy_by_rotation.as_ref().map_or(0, Vec::len))
            .max()
            .unwrap_or(4);
        let mut header = strings(["task", "model"]);
        header.extend((0..order).map(|k| crate::group::element_name(k).to_string()));
        let mut right = vec![false, false];
        right.resize(2 + order, true);
        b.push(Block::Heading(2, "Accuracy per test rotation".into()));
        b.push(Block::Table(Table {
            header,
            right,
            rows: rotated
                .iter()
                .map(|m| {
                    let mut row = vec![m.task.clone(), m.model.to_string()];
                    for a in m.accuracy_by_rotation.iter().flatten() {
                        row.push(format!("{:.2} %", 100.0 * a));
                    }
                    row.resize(2 + order, String::new());
                    row
                })
                .collect(),
        }));
    }
    b.extend(group_transfer(&r.results));
    b.extend(compare::section(&r.results));
    symmetry_tables(r, &mut b);
    if !r.clones.is_empty() {
        let bound = r.clones.iter().any(|c| c.clonability_bound.is_some());
        let mut header = strings([
            "operator",
            "d",
            "source",
            "runs",
            "best MSE",
            "final MSE",
            "best relative MSE",
        ]);
        if bound {
            header.push("clonability bound".into());
        }
        header.extend(strings([
            "equivariance error (clone)",
            "equivariance error (true layer)",
            "time",
        ]));
        let mut right = vec![true; header.len()];
        right[0] = false;
        right[2] = false;
        b.push(Block::Heading(2, "Clones".into()));
        b.push(Block::Table(Table {
            header,
            right,
            rows: r
                .clones
                .iter()
                .map(|c| {
                    let mut row = vec![
                        c.kind.name().to_string(),
                        c.d.to_string(),
                        c.source.clone(),
                        c.attempts.max(1).to_string(),
                        format!("{:.2e}", c.stats.best_loss),
                        format!("{:.2e}", c.stats.final_loss),
                        format!("{:.2e}", c.best_relative_mse),
                    ];
                    if bound {
                        row.push(
                            c.clonability_bound
                                .map_or("–".into(), |v| format!("{v:.2e}")),
                        );
                    }
                    row.extend([
                        format!("{:.2e}", c.equivariance_clone),
                        format!("{:.2e}", c.equivariance_true),
                        format!("{:.0} s", c.stats.seconds),
                    ]);
                    row
                })
                .collect(),
        }));
    }
    if let Some(f) = &r.fidelity {
        b.push(Block::Heading(2, "Fidelity".into()));
        b.push(Block::Para(format!(
            "MSE of (clone lift → clone P4) against (true lift → true P4) on a real digit with filters uniform on [0, 1): **{:.2e}** (the true output's mean square is {:.2e}; the paper's authors printed 2.3e-5 for their clones).",
            f.mse, f.target_mean_square
        )));
    }
    if !r.memory.is_empty() {
        b.push(Block::Heading(2, "GPU memory and work".into()));
        b.push(Block::Para(
            "The buffer pool's high-water mark (the pool is trimmed between phases and models), and the floating-point work of the matrix products and convolutions (2 per multiply-add; element-wise kernels not counted)."
                .into(),
        ));
        let mut rows: Vec<Vec<String>> = r
            .memory
            .iter()
            .map(|p| vec![p.phase.clone(), mib(p.peak_bytes), gflop(p.flops)])
            .collect();
        rows.extend(r.results.iter().filter(|m| m.peak_bytes > 0).map(|m| {
            vec![
                format!("training {} on {}", m.model, m.task),
                mib(m.peak_bytes),
                format!("{} per step", gflop(m.step_flops)),
            ]
        }));
        b.push(Block::Table(Table {
            header: strings(["phase", "peak", "GFLOP"]),
            right: vec![false, true, true],
            rows,
        }));
    }
    if !figs.is_empty() {
        b.push(Block::Heading(2, "Figures".into()));
        b.extend(figs.into_iter().map(Block::Figure));
    }
    b.push(Block::Heading(2, "Configuration".into()));
    b.push(Block::Pre(
        "json".into(),
        serde_json::to_string_pretty(&r.config).expect("serialisable"),
    ));
    Doc {
        title: "symclone-gpu report".into(),
        blocks: b,
    }
}

/// The rotation tasks of both groups side by side, when a C4 and a D4 rotation task both ran:
/// every model's mean test accuracy on `symmetric`, `symmetric-d4`, `rot-sb` and `mirror-sb`, so
/// the reader sees what a C4 network carries to the reflections and what it cannot.
fn group_transfer(results: &[ModelReport]) -> Vec<Block> {
    const TASKS: [&str; 4] = ["symmetric", "symmetric-d4", "rot-sb", "mirror-sb"];
    let ran = |t: &str| results.iter().any(|m| m.task == t);
    let c4 = ran("symmetric") || ran("rot-sb");
    let d4 = ran("symmetric-d4") || ran("mirror-sb");
    if !(c4 && d4) {
        return Vec::new();
    }
    let mut models: Vec<ModelKind> = results
        .iter()
        .filter(|m| TASKS.contains(&m.task.as_str()))
        .map(|m| m.model)
        .collect();
    models.sort();
    models.dedup();
    let mut b = vec![Block::Heading(2, "C4 and D4 side by side".into())];
    b.push(Block::Para(
        "Mean test accuracy of every model on the rotation tasks of both groups (– where it did not run): symmetric and symmetric-d4 test on turned (and, for D4, mirrored) digits after upright training; rot-sb and mirror-sb ask the network to tell a turn by 180° or a mirror image apart, which a network invariant to it cannot."
            .into(),
    ));
    let mut header = strings(["model"]);
    header.extend(TASKS.map(String::from));
    b.push(Block::Table(Table {
        header,
        right: vec![false, true, true, true, true],
        rows: models
            .iter()
            .map(|&k| {
                let mut row = vec![k.to_string()];
                row.extend(TASKS.map(|t| {
                    results
                        .iter()
                        .find(|m| m.task == t && m.model == k)
                        .map_or("–".to_string(), |m| format!("{:.2} %", 100.0 * m.mean))
                }));
                row
            })
            .collect(),
    }));
    b
}

/// SPEC §7's symmetry measures: orbit consistency and invariance error, the per-layer
/// equivariance error before and after fine-tuning, and the drift of each cloned tensor.
fn symmetry_tables(r: &Report, b: &mut Vec<Block>) {
    let orbit: Vec<&ModelReport> = r
        .results
        .iter()
        .filter(|m| m.orbit_consistency.is_some())
        .collect();
    if !orbit.is_empty() {
        b.push(Block::Heading(2, "Symmetry of the trained networks".into()));
        b.push(Block::Para(
            "Orbit consistency: the share of test digits whose transforms (rotations by 0°, 90°, 180°, 270°; on the D4 tasks also each of those flipped; on trans-sb, left or right by s px, each unshifted or shifted down by s px, s the canvas's padding up to 10 px: the T(2) row of the next table names it) all get the same prediction, up to the +10 label shift the task asks for. Invariance error: ‖f(g·x) − f(x)‖ / ‖f(x)‖ of the logits, mean over the digits and the transforms the task labels alike."
                .into(),
        ));
        b.push(Block::Table(Table {
            header: strings([
                "task",
                "model",
                "group",
                "orbit consistency",
                "invariance error",
            ]),
            right: vec![false, false, false, true, true],
            rows: orbit
                .iter()
                .map(|m| {
                    vec![
                        m.task.clone(),
                        m.model.to_string(),
                        m.orbit_group.clone().unwrap_or_default(),
                        format!("{:.2} %", 100.0 * m.orbit_consistency.unwrap_or_default()),
                        m.invariance_error
                            .map_or("–".into(), |v| format!("{v:.2e}")),
                    ]
                })
                .collect(),
        }));
    }
    let mut rows = Vec::new();
    for m in &r.results {
        for l in m.layer_equivariance.iter().flatten() {
            rows.push(vec![
                m.task.clone(),
                m.model.to_string(),
                l.layer.clone(),
                l.before.map_or("–".into(), |v| format!("{v:.2e}")),
                format!("{:.2e}", l.after),
            ]);
        }
    }
    if !rows.is_empty() {
        b.push(Block::Heading(2, "Per-layer equivariance error".into()));
        b.push(Block::Para(
            "‖Φ(g·x) − g·Φ(x)‖ / ‖Φ(x)‖ of each feature layer alone (no ReLU or pool), on the maps the network feeds it for a few test digits: C4 on the rotation tasks, D4 on the D4 tasks (C4 for a network with four orientations), translations on trans-sb. Before: the network as built (cloned layers as cloned, filters at initialisation); after: trained."
                .into(),
        ));
        b.push(Block::Table(Table {
            header: strings(["task", "model", "layer", "before", "after"]),
            right: vec![false, false, false, true, true],
            rows,
        }));
    }
    let mut rows = Vec::new();
    for m in &r.results {
        for t in m.kl_terms.iter().flatten() {
            let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_default();
            rows.push(vec![
                m.task.clone(),
                m.model.to_string(),
                t.tensor.clone(),
                format!("{:.3e}", t.kl),
                opt(t.l2, &|v| format!("{v:.3e}")),
                opt(t.common_share, &|v| format!("{:.1} %", 100.0 * v)),
            ]);
        }
    }
    if !rows.is_empty() {
        b.push(Block::Heading(2, "Drift of each cloned tensor".into()));
        b.push(Block::Para(
            "How far each cloned tensor drifted from the clone it started from, at the end of training. KL: KL_t of SPEC §5, without β. mean δ²: the squared distance, δ = w − w0, mean over the tensor's elements (the l2 penalty without β). Common shift: the share of Σ δ² that adds one value to every entry along the KL's softmax axis, the direction the KL cannot see."
                .into(),
        ));
        b.push(Block::Table(Table {
            header: strings(["task", "model", "tensor", "KL", "mean δ²", "common shift"]),
            right: vec![false, false, false, true, true, true],
            rows,
        }));
    }
}

/// One row per (op, variant): its buckets and how they were chosen (`12 small, 3 cache`).
fn kernel_rows(kernels: &[crate::gpu::Choice]) -> Vec<Vec<String>> {
    let mut groups: std::collections::BTreeMap<
        (&str, &str),
        std::collections::BTreeMap<&str, usize>,
    > = Default::default();
    for c in kernels {
        *groups
            .entry((&c.op, &c.variant))
            .or_default()
            .entry(&c.how)
            .or_default() += 1;
    }
    groups
        .into_iter()
        .map(|((op, variant), how)| {
            let n: usize = how.values().sum();
            let by: Vec<String> = how.iter().map(|(h, k)| format!("{k} {h}")).collect();
            vec![op.into(), variant.into(), n.to_string(), by.join(", ")]
        })
        .collect()
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Floating-point operations in GFLOP, with enough digits for a small step.
fn gflop(flops: u64) -> String {
    let g = flops as f64 / 1e9;
    if g >= 100.0 {
        format!("{g:.0}")
    } else {
        format!("{g:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::compare::tests::model;
    use ModelKind::*;

    #[test]
    fn the_group_table_shows_exactly_when_both_groups_ran() {
        let c4 = [model("symmetric", Gcnn, &[0.9], 100)];
        let d4 = [
            model("mirror-sb", Gcnn, &[0.6], 100),
            model("mirror-sb", D4Gcnn, &[0.4], 100),
        ];
        assert!(group_transfer(&c4).is_empty());
        assert!(group_transfer(&d4).is_empty());
        let both: Vec<ModelReport> = c4.iter().chain(&d4).cloned().collect();
        let b = group_transfer(&both);
        let Some(Block::Table(t)) = b.last() else {
            panic!("no table: {b:?}")
        };
        assert_eq!(
            t.header,
            ["model", "symmetric", "symmetric-d4", "rot-sb", "mirror-sb"]
        );
        assert_eq!(
            t.rows,
            [
                ["gcnn", "90.00 %", "–", "–", "60.00 %"],
                ["d4-gcnn", "–", "–", "–", "40.00 %"],
            ]
        );
    }
}
