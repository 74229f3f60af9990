//! `clone --capacity A..B`: one clone per number of blocks, each beside its clonability bound
//! (SPEC §3; the paper's authors swept nb = 7, 8, 9), written to `capacity.md` and `capacity.json`.

use super::clone::requested;
use crate::clone::operator::K;
use crate::clone::OperatorKind;
use crate::config::plan::clone_plans;
use crate::config::RunConfig;
use crate::files::write_atomic;
use crate::files::write_json;
use crate::pipeline::clones::clone_phase;
use crate::progress::Reporter;
use crate::{Error, Gpu, Result};
use std::path::Path;
use std::sync::Arc;

/// The most blocks `--capacity` takes: 4·k² (four times the 9 a 3×3 layer needs).
pub const MAX_CAPACITY: usize = 4 * K * K;

/// `--capacity`: `A..B` (inclusive: `6..10` is 6, 7, 8, 9 and 10) or a single `N`, each between
/// 1 and [`MAX_CAPACITY`].
pub fn parse_capacity(s: &str) -> Result<Vec<usize>> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "--capacity '{}': {why} (use A..B, e.g. 6..10, or one number, each 1 to {MAX_CAPACITY})",
            s.escape_debug()
        ))
    };
    let num = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| bad("not a number of blocks"))
    };
    let (lo, hi) = match s.split_once("..") {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(s)?;
            (n, n)
        }
    };
    if lo == 0 || hi > MAX_CAPACITY {
        return Err(bad("out of range"));
    }
    if lo > hi {
        return Err(bad("the range is reversed"));
    }
    Ok((lo..=hi).collect())
}

/// One row of the capacity table.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CapacityRow {
    pub nb: usize,
    /// Best loss over the targets' mean square.
    pub relative_mse: f32,
    /// The lowest relative MSE any clone with `nb` blocks can reach.
    pub bound: Option<f64>,
    pub seconds: f64,
}

/// The capacity sweep: what it cloned and its rows.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Capacity {
    pub kind: OperatorKind,
    pub d: usize,
    pub loss: crate::clone::CloneLoss,
    pub iters: usize,
    pub rows: Vec<CapacityRow>,
}

impl Capacity {
    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Clone capacity: {} layer, d = {}\n\n{} loss, {} iterations per clone. The bound is the lowest relative MSE any clone with nb blocks can reach (SPEC §3).\n\n| nb | relative MSE | bound | time |\n|--:|--:|--:|--:|\n",
            self.kind.name(),
            self.d,
            self.loss,
            self.iters
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {:.3e} | {} | {:.1} s |\n",
                r.nb,
                r.relative_mse,
                r.bound.map_or("–".into(), |b| format!("{b:.3e}")),
                r.seconds
            ));
        }
        s
    }
}

#[allow(clippy::too_many_arguments)]
/// `clone --kind KIND --dim D --capacity A..B`: a clone for every nb (under
/// `out/capacity/nb<N>/`, resumable), then `out/capacity.md` and `out/capacity.json`.
pub fn capacity_command(
    gpu: &Arc<Gpu>,
    cfg: &RunConfig,
    kind: &str,
    dim: usize,
    nbs: &[usize],
    out: &Path,
    resume: bool,
    rep: &mut dyn Reporter,
) -> Result<Capacity> {
    let needed = requested(kind, dim)?;
    let &[(op_kind, d)] = needed.as_slice() else {
        return Err(Error::invalid(
            "--capacity sweeps one layer: use --kind z2, lift or p4",
        ));
    };
    cfg.validate()?;
    let ds = cfg.load_data()?;
    let lock = crate::files::FolderLock::acquire(out)?;
    if resume {
        lock.remove_stale_temporaries()?;
    }
    let mut rows = Vec::new();
    for &nb in nbs {
        let mut c = cfg.clone();
        c.clone.nb = nb;
        let dir = out.join("capacity").join(format!("nb{nb}"));
        let (_, reports) = clone_phase(gpu, &c, &clone_plans(&c, &needed), &dir, resume, &ds, rep)?;
        let r = &reports[0];
        rows.push(CapacityRow {
            nb,
            relative_mse: r.best_relative_mse,
            bound: r.clonability_bound,
            seconds: r.stats.seconds,
        });
    }
    let cap = Capacity {
        kind: op_kind,
        d,
        loss: cfg.clone.loss,
        iters: cfg.clone.iters,
        rows,
    };
    write_json(&out.join("capacity.json"), &cap)?;
    write_atomic(&out.join("capacity.md"), cap.markdown().as_bytes())?;
    Ok(cap)
}
