//! `symclone-gpu check`: what to run on a new GPU before trusting a result. Every kernel variant
//! the engine has — the fixed WGSL and the generated kernels, each matrix-product variant (every
//! register tile, the subgroup kernel where the adapter has subgroups), every convolution
//! algorithm (those the tuner picks only on a GPU too), and every other op family — forward and
//! backward on ragged shapes, against the CPU reference (`reference`), within the bounds
//! `reference::tol` derives; on the adapter's own limits and on WebGPU's default limits.
//!
//! Each case is data ([`Case`]: the op, its variant, its shapes and the seed of its inputs), so a
//! case can be listed, filtered and run on its own.

mod cases;
mod exec;
mod export;
mod others;
mod products;

pub use cases::{all as cases, Case, Ew, Kernel};
pub use exec::Compared;
pub use export::export;

use crate::gpu::{AdapterChoice, Gpu};
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The limits a device is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Limits {
    /// The adapter's own.
    Adapter,
    /// WebGPU's defaults, the least any conforming GPU offers.
    Webgpu,
}

impl Limits {
    pub fn name(self) -> &'static str {
        match self {
            Limits::Adapter => "adapter",
            Limits::Webgpu => "webgpu",
        }
    }

    /// Both, or the one `--limits` names (`adapter` or `webgpu`).
    pub fn parse(name: Option<&str>) -> Result<Vec<Limits>> {
        match name.map(str::trim) {
            None | Some("") => Ok(vec![Limits::Adapter, Limits::Webgpu]),
            Some("adapter") => Ok(vec![Limits::Adapter]),
            Some("webgpu") | Some("default") => Ok(vec![Limits::Webgpu]),
            Some(other) => Err(Error::invalid(format!(
                "unknown limits '{other}': use adapter (the adapter's own) or webgpu (WebGPU's defaults)"
            ))),
        }
    }
}

/// What to check.
#[derive(Clone, Debug)]
pub struct Options {
    pub limits: Vec<Limits>,
    /// Only cases whose name contains this text (case-insensitive).
    pub filter: Option<String>,
}

/// How a case came out on one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Error,
    Skipped,
}

/// One case on one device.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub limits: Limits,
    pub status: Status,
    /// The output furthest from its reference, relative to its bound.
    pub worst: Option<Compared>,
    /// Every output compared.
    pub outputs: Vec<Compared>,
    /// The error, or why the case was skipped.
    pub detail: String,
}

impl Cell {
    /// `pass 3.1e-7 ≤ 2.4e-6`, `FAIL dA 3.0e-2 > 2.4e-6`, `error: …`, `skipped: …`.
    pub fn show(&self) -> String {
        let cmp = |c: &Compared, op: &str| format!("{} {:.1e} {op} {:.1e}", c.output, c.err, c.tol);
        match (self.status, &self.worst) {
            (Status::Pass, Some(c)) => format!("pass ({})", cmp(c, "≤")),
            (Status::Pass, None) => "pass".into(),
            (Status::Fail, Some(c)) => format!("**FAIL** ({})", cmp(c, ">")),
            (Status::Fail, None) => "**FAIL**".into(),
            (Status::Error, _) => format!("**error**: {}", self.detail),
            (Status::Skipped, _) => format!("skipped: {}", self.detail),
        }
    }
}

/// One case on every device checked.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub family: String,
    pub case: String,
    pub cells: Vec<Cell>,
}

/// The whole check.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub adapter: String,
    pub limits: Vec<Limits>,
    /// Seconds each device's cases took, in the order of `limits`.
    pub seconds: Vec<f64>,
    pub rows: Vec<Row>,
}

impl Report {
    fn count(&self, s: Status) -> usize {
        self.rows
            .iter()
            .flat_map(|r| &r.cells)
            .filter(|c| c.status == s)
            .count()
    }

    /// Cells that failed or could not run.
    pub fn failures(&self) -> usize {
        self.count(Status::Fail) + self.count(Status::Error)
    }

    /// `148 passed, 0 failed, 0 errors, 2 skipped`.
    pub fn summary(&self) -> String {
        format!(
            "{} cases × {} limits: {} passed, {} failed, {} errors, {} skipped",
            self.rows.len(),
            self.limits.len(),
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Error),
            self.count(Status::Skipped)
        )
    }

    /// Ok when every case passed or was skipped; else one line saying how many did not.
    pub fn verdict(&self) -> Result<()> {
        if self.failures() == 0 {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "check: {} of {} case runs failed or could not run on {} (see the table)",
            self.failures(),
            self.rows.len() * self.limits.len(),
            self.adapter
        )))
    }

    /// The table: case × limits → pass / FAIL / error / skipped, with the worst output's error
    /// against its bound.
    pub fn markdown(&self) -> String {
        let mut s = format!("# symclone-gpu check: {}\n\n", self.adapter);
        let heads: Vec<String> = self
            .limits
            .iter()
            .zip(&self.seconds)
            .map(|(l, t)| format!("{} limits ({t:.1} s)", l.name()))
            .collect();
        s += &format!("| family | case | {} |\n", heads.join(" | "));
        s += &format!("|---|---|{}\n", "---|".repeat(heads.len()));
        for r in &self.rows {
            let cells: Vec<String> = r.cells.iter().map(Cell::show).collect();
            s += &format!("| {} | {} | {} |\n", r.family, r.case, cells.join(" | "));
        }
        s += &format!("\n{}\n", self.summary());
        s
    }

    /// Write the report as JSON and/or Markdown (each atomically).
    pub fn write(&self, json: Option<&Path>, markdown: Option<&Path>) -> Result<()> {
        if let Some(p) = json {
            let bytes = serde_json::to_vec_pretty(self)
                .map_err(|e| Error::invalid(format!("the check report as JSON: {e}")))?;
            crate::files::write_atomic(p, &bytes)?;
        }
        if let Some(p) = markdown {
            crate::files::write_atomic(p, self.markdown().as_bytes())?;
        }
        Ok(())
    }
}

/// The cases `filter` selects (all without one); none is an error naming the filter.
pub fn select(filter: Option<&str>) -> Result<Vec<Case>> {
    let all = cases();
    let Some(f) = filter else { return Ok(all) };
    let f = f.to_lowercase();
    let chosen: Vec<Case> = all
        .into_iter()
        .filter(|c| c.name.to_lowercase().contains(&f))
        .collect();
    if chosen.is_empty() {
        return Err(Error::invalid(format!(
            "--filter '{f}' matches no case (names look like matmul/mm_reg[8x2] 67x65x130 tb bias relu; families: matmul, conv, elementwise, reduce, layout, cloned, loss, optim, gconv, pool, transform, random, kl, norm, data)"
        )));
    }
    Ok(chosen)
}

/// Why `case` cannot run on `g`, if it cannot (not a failure).
fn unsupported(g: &Gpu, case: &Case) -> Option<String> {
    if let Kernel::Matmul { variant, .. } = &case.kernel {
        let v = crate::ops::matmul::variants::variant(variant)?;
        if !v.runs_on(g) {
            return Some(format!("{} has no subgroup operations", g.info.name));
        }
    }
    None
}

/// Run `case` on `g`, comparing every output with the reference; with `kept`, each output's
/// values and reference go there too.
fn run_case(
    g: &Arc<Gpu>,
    case: &Case,
    perturb: Option<&str>,
    kept: Option<&mut Vec<exec::Kept>>,
) -> Result<Vec<Compared>> {
    let mut o = exec::Out {
        list: Vec::new(),
        perturb,
        kept: kept.as_ref().map(|_| Vec::new()),
    };
    let mut rg = crate::rng::Rng::new(case.seed);
    if !products::run(g, &mut o, &mut rg, case)? {
        others::run(g, &mut o, &mut rg, case)?;
    }
    if let (Some(k), Some(o_kept)) = (kept, o.kept) {
        *k = o_kept;
    }
    Ok(o.list)
}

/// Run one case on a device opened with `limits` (the name the cell carries): pass or FAIL
/// against its bounds, an error, or skipped with why when the device cannot run it.
pub fn run_one(g: &Arc<Gpu>, limits: Limits, case: &Case) -> Cell {
    cell(g, limits, case, None, None)
}

/// Run one case on `g` into a cell (with `kept`: keeping each output's values and reference).
fn cell(
    g: &Arc<Gpu>,
    limits: Limits,
    case: &Case,
    perturb: Option<&str>,
    kept: Option<&mut Vec<exec::Kept>>,
) -> Cell {
    let mut c = Cell {
        limits,
        status: Status::Pass,
        worst: None,
        outputs: Vec::new(),
        detail: String::new(),
    };
    if let Some(why) = unsupported(g, case) {
        c.status = Status::Skipped;
        c.detail = why;
        return c;
    }
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_case(g, case, perturb, kept)
    }));
    match ran {
        Ok(Ok(outputs)) => {
            let ratio = |o: &Compared| {
                if o.err == 0.0 {
                    0.0
                } else {
                    o.err / o.tol
                }
            };
            c.worst = outputs
                .iter()
                .max_by(|a, b| ratio(a).total_cmp(&ratio(b)))
                .cloned();
            if outputs.iter().any(|o| !o.passed()) {
                c.status = Status::Fail;
            }
            c.outputs = outputs;
        }
        Ok(Err(e @ Error::BufferTooLarge { .. })) => {
            c.status = Status::Skipped;
            c.detail = format!("over the device's limits: {e}").replace('|', "/");
        }
        Ok(Err(e)) => {
            c.status = Status::Error;
            c.detail = e.to_string().replace('|', "/");
        }
        Err(p) => {
            c.status = Status::Error;
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            c.detail = format!(
                "panicked: {}",
                msg.lines().next().unwrap_or("").replace('|', "/")
            );
        }
    }
    c
}

/// Run every selected case on the adapter `choice` names, once per limits in `opts`; `progress`
/// gets a line per case.
pub fn run(
    choice: &AdapterChoice,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    run_inner(choice, opts, None, progress)
}

/// [`run`] with references moved off their values: `perturb` is `CASE::OUTPUT`, and every output
/// whose name contains OUTPUT, of every case whose name contains CASE, is compared with a wrong
/// reference (its first value moved by 1 + its size; `CASE` alone: all of that case's outputs).
/// How the tests provoke a failure; no flag or variable reaches it.
#[doc(hidden)]
pub fn run_perturbed(
    choice: &AdapterChoice,
    opts: &Options,
    perturb: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    run_inner(choice, opts, Some(perturb), progress)
}

/// The adapter `choice` names, opened with `limits` for checking: ops that choose a kernel by
/// measurement (a group convolution's inner product) take the adapter type's default, untimed and
/// uncached: every variant is a case of its own, and a check leaves the tuner's cache as it was.
fn device(choice: &AdapterChoice, limits: Limits) -> Result<Arc<Gpu>> {
    let g = Gpu::new(&AdapterChoice {
        limits: Some(limits.name().to_string()),
        ..choice.clone()
    })?;
    g.set_tune_budget(0.0);
    Ok(g)
}

fn run_inner(
    choice: &AdapterChoice,
    opts: &Options,
    perturb: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    let chosen = select(opts.filter.as_deref())?;
    let mut rows: Vec<Row> = chosen
        .iter()
        .map(|c| Row {
            family: c.family.to_string(),
            case: c.name.clone(),
            cells: Vec::new(),
        })
        .collect();
    let mut adapter = String::new();
    let mut seconds = Vec::new();
    for &limits in &opts.limits {
        let g = device(choice, limits)?;
        adapter = g.describe();
        progress(&format!("{} limits: {adapter}", limits.name()));
        let t0 = Instant::now();
        for (i, (case, row)) in chosen.iter().zip(&mut rows).enumerate() {
            // The perturbation names a case and, optionally, one of its outputs.
            let p = perturb.and_then(|p| {
                let (case_part, out_part) = p.split_once("::").unwrap_or((p, ""));
                case.name.contains(case_part).then_some(out_part)
            });
            let c = cell(&g, limits, case, p, None);
            progress(&format!(
                "[{}/{}] {} {}: {}",
                i + 1,
                chosen.len(),
                limits.name(),
                case.name,
                c.show().replace("**", "")
            ));
            row.cells.push(c);
        }
        seconds.push(t0.elapsed().as_secs_f64());
    }
    Ok(Report {
        adapter,
        limits: opts.limits.clone(),
        seconds,
        rows,
    })
}
