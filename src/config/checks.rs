//! The checks a run configuration passes before any work starts (and before the GPU is opened),
//! and the strict parser of `--config` files.

use super::types::{CloneSettings, RunConfig};
use crate::data::Task;
use crate::models::ModelKind;
use crate::{Error, Result};

impl RunConfig {
    /// Check the configuration before any work starts (and before the GPU is opened): known
    /// names, at least one task and one model per task, every size within its range (see
    /// [`crate::models::Arch::check`] and the clone bounds in [`crate::clone::operator`]), every
    /// number finite and in range, at least one iteration, epoch, seed and image.
    pub fn validate(&self) -> Result<()> {
        if !["random", "teacher"].contains(&self.clone.source.as_str()) {
            return Err(Error::invalid(format!(
                "clone source '{}': use random or teacher",
                self.clone.source.escape_debug()
            )));
        }
        if self.seeds == 0 {
            return Err(Error::invalid("--seeds 0: use at least 1"));
        }
        if self.seeds > MAX_SEEDS {
            return Err(Error::invalid(format!(
                "--seeds {}: use at most {MAX_SEEDS}",
                self.seeds
            )));
        }
        if !(16..=28).contains(&self.side) {
            return Err(Error::invalid(format!(
                "--side {}: use a side between 16 and 28 pixels",
                self.side
            )));
        }
        if let Some(p) = self.trans_pad {
            if !(1..=MAX_TRANS_PAD).contains(&p) {
                return Err(Error::invalid(format!(
                    "--trans-pad {p}: use 1 to {MAX_TRANS_PAD} pixels (0 on the command line: SPEC's canvas)"
                )));
            }
        }
        for (n, what) in [(self.train_n, "train"), (self.test_n, "test")] {
            if n == Some(0) {
                return Err(Error::invalid(format!(
                    "--{what}-n 0: a subset needs at least one image"
                )));
            }
        }
        self.clone.validate()?;
        if self.tasks.is_empty() {
            return Err(Error::invalid(
                "the configuration runs no task: list at least one under \"tasks\"",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.tasks {
            let task: Task = t.task.parse()?;
            if t.models.is_empty() {
                return Err(Error::invalid(format!(
                    "task {task} trains no model: list at least one under \"models\""
                )));
            }
            t.train.validate()?;
            for m in &t.models {
                // One checkpoint and one report row per (task, model): a second entry would
                // overwrite the first's files and records.
                if !seen.insert((task, *m)) {
                    return Err(Error::invalid(format!(
                        "model {m} is listed twice for task {task}: each (task, model) pair trains once per seed (give it once, or use a sweep to compare settings)"
                    )));
                }
                let group = m.orientations() > 1;
                let t2 = matches!(m, ModelKind::FauxCnn | ModelKind::FauxCnnKl);
                let fits = match task {
                    Task::TransSb => !group,
                    _ => !t2,
                };
                if !fits {
                    return Err(Error::invalid(format!(
                        "model {m} does not go with task {task}: the group models (gcnn, faux-gcnn, faux-gcnn-kl, d4-gcnn, faux-d4-gcnn, faux-d4-gcnn-kl) are for the rotation tasks (plain, symmetric, rot-sb, symmetric-d4, mirror-sb); faux-cnn and faux-cnn-kl are for trans-sb"
                    )));
                }
                self.arch(*m, task).check()?;
            }
        }
        Ok(())
    }
}

/// The most seeds per model a run may train.
pub const MAX_SEEDS: usize = 1000;

/// The largest `trans-sb` padding a configuration may ask for (SPEC's own is 10 px at 28 px).
pub const MAX_TRANS_PAD: usize = 10;
/// The most iterations (and warm-up steps) of one clone (SPEC §3's is 10,000).
pub const MAX_CLONE_ITERS: usize = 100_000_000;
/// The most filter codes or noise images per filter of a cloning iteration.
pub const MAX_CLONE_BATCH: usize = 1 << 20;

impl CloneSettings {
    /// Check the cloning knobs: block and mixing sizes in range, at least one iteration, filter,
    /// image and iteration per step, finite positive learning rates and clip, decay in (0, 1],
    /// finite non-negative weight decay and stall threshold.
    pub fn validate(&self) -> Result<()> {
        use crate::clone::operator::{MAX_BLOCKS, MAX_MIX};
        use crate::error::{non_negative, positive, unit_decay};
        if !(1..=MAX_BLOCKS).contains(&self.nb) {
            return Err(Error::invalid(format!(
                "clone blocks {}: use 1 to {MAX_BLOCKS}",
                self.nb
            )));
        }
        if !(1..=MAX_MIX).contains(&self.m) {
            return Err(Error::invalid(format!(
                "clone m {}: use 1 to {MAX_MIX}",
                self.m
            )));
        }
        if self.iters == 0 {
            return Err(Error::invalid(
                "--clone-iters 0: a clone needs at least one iteration (an untrained clone is all zeros)",
            ));
        }
        for (what, v) in [
            ("--clone-iters", self.iters),
            ("--clone-warmup", self.warmup),
        ] {
            if v > MAX_CLONE_ITERS {
                return Err(Error::invalid(format!(
                    "{what} {v}: use at most {MAX_CLONE_ITERS}"
                )));
            }
        }
        for (what, v) in [
            ("--clone-filters", self.filters),
            ("clone filters_p4", self.filters_p4.unwrap_or(1)),
            ("--clone-batch", self.batch),
            ("clone batch_p4", self.batch_p4),
            ("clone accum", self.accum),
        ] {
            if !(1..=MAX_CLONE_BATCH).contains(&v) {
                return Err(Error::invalid(format!(
                    "{what} {v}: use 1 to {MAX_CLONE_BATCH}"
                )));
            }
        }
        positive("cloning learning rate (--clone-lr)", self.lr)?;
        positive("P4 cloning learning rate (lr_p4)", self.lr_p4)?;
        positive("cloning gradient clip", self.clip)?;
        unit_decay("--clone-lr-decay", self.lr_decay)?;
        non_negative("cloning weight decay", self.weight_decay)?;
        non_negative("clone stall threshold", self.stall)?;
        if self.retries > 100 {
            return Err(Error::invalid(format!(
                "clone retries {}: use at most 100",
                self.retries
            )));
        }
        Ok(())
    }
}

/// Parse a run configuration strictly: an unknown field is refused, naming it, where it is and
/// the closest known field; the message is one line. A UTF-8 byte-order mark in front (as some
/// Windows editors write) is skipped.
pub fn parse_config(bytes: &[u8]) -> std::result::Result<RunConfig, String> {
    serde_json::from_slice::<RunConfig>(crate::files::without_bom(bytes)).map_err(|e| {
        let msg = e.to_string();
        let place = format!("line {}, column {}", e.line(), e.column());
        match unknown_field(&msg) {
            Some((field, known)) => {
                let best = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(&field, k), k))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .filter(|(s, _)| *s >= 0.7);
                let hint = match best {
                    Some((_, k)) => format!("did you mean \"{k}\"? "),
                    None => String::new(),
                };
                format!(
                    "not a run configuration: unknown field \"{}\" at {place}: {hint}(the fields here are {})",
                    field.escape_debug(),
                    known.join(", ")
                )
            }
            None => format!(
                "not a run configuration: {}",
                msg.escape_debug()
            ),
        }
    })
}

/// The field and the expected ones of serde's "unknown field `x`, expected one of `a`, `b`".
fn unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    let field = rest[..end].to_string();
    let known: Vec<String> = rest[end + 1..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((field, known))
}
