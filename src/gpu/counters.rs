//! What the runtime counts of the work it records: dispatches, the bytes each kernel family's
//! launches bind, the CPU time spent recording them, and its submissions and the time spent in
//! them. The recorder adds every dispatch it
//! records ([`Gpu::counters`] reads the totals); a caller takes a snapshot before some work and
//! one after, and [`Counters::since`] is the work's own count (one training step, say).
//!
//! Bytes come from each launch's bindings, not from what a kernel touches: a binding covers the
//! bytes that hold its tensor's data ([`super::Bindable::bytes`]). A read-only binding counts all
//! its bytes as read; a read-write binding counts all its bytes as written and none as read (a
//! kernel that also reads it, an accumulation `y += x`, reads as many bytes again, uncounted). A
//! kernel that reads a part of a binding (a slice, a tile at the edge) still counts the whole.
//! The uniform parameters (at most 256 bytes a dispatch), copies and uploads are not counted.
//!
//! Counting is a few additions per dispatch into a fixed array, one slot per family, under a
//! lock of its own, and two reads of the monotonic clock: nothing is allocated on the recording
//! path. The time is wall clock: on a machine whose cores are busy with other work it includes
//! waits for a core.

use super::pipelines::Access;
use super::shader::{Shader, FAMILIES};
use super::Gpu;
use std::collections::BTreeMap;
use std::time::Instant;

/// Families counted apart: the WGSL families of `shaders/` (`matmul`, `conv`, `elementwise`, …)
/// in [`FAMILIES`]' order, and last `other` (a shader none of them names).
pub const FAMILY_SLOTS: usize = FAMILIES.len() + 1;

/// The name of family slot `i` (`other` for the last).
pub fn family_name(i: usize) -> &'static str {
    FAMILIES.get(i).map_or("other", |s| s.name)
}

/// The family a shader is counted under: the family whose name it has, or whose name followed by
/// `_` begins its own (a generated kernel: `matmul_reg_4x4` is `matmul`, `conv_dw_reg_3_4x4` is
/// `conv`); the longest such name wins (`conv_gemm` over `conv`); else `other`.
pub fn family_of(shader: &str) -> usize {
    let mut best = (FAMILIES.len(), 0);
    for (i, f) in FAMILIES.iter().enumerate() {
        let n = f.name;
        let named = shader
            .strip_prefix(n)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'));
        if named && n.len() > best.1 {
            best = (i, n.len());
        }
    }
    best.0
}

/// One family's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    pub dispatches: u64,
    /// Bytes of its read-only bindings.
    pub bytes_read: u64,
    /// Bytes of its read-write bindings.
    pub bytes_written: u64,
}

impl FamilyCounts {
    fn since(self, before: FamilyCounts) -> FamilyCounts {
        FamilyCounts {
            dispatches: self.dispatches.saturating_sub(before.dispatches),
            bytes_read: self.bytes_read.saturating_sub(before.bytes_read),
            bytes_written: self.bytes_written.saturating_sub(before.bytes_written),
        }
    }
}

/// The counts since the device was opened (or, from [`Counters::since`], between two snapshots).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Dispatches recorded.
    pub dispatches: u64,
    /// CPU time spent recording them (nanoseconds): from entering the recorder with a launch until
    /// its dispatch is recorded (pipeline and bind-group look-ups included, and building either
    /// the first time), less a submission made meanwhile (every [`super::MAX_PENDING_DISPATCHES`]
    /// dispatches), which is counted in `submit_ns`.
    pub record_ns: u64,
    /// Submissions made (a read-back, a flush, a full batch of dispatches).
    pub submissions: u64,
    /// Time spent in them (nanoseconds, wall clock): the driver's submit call, which a driver may
    /// make wait. On a CPU driver such as lavapipe it runs the kernels and returns when they are
    /// done.
    pub submit_ns: u64,
    /// Per family, in the order of [`family_name`].
    pub families: [FamilyCounts; FAMILY_SLOTS],
}

impl Counters {
    /// What was counted after `before` (a snapshot taken earlier from the same device).
    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            dispatches: self.dispatches.saturating_sub(before.dispatches),
            record_ns: self.record_ns.saturating_sub(before.record_ns),
            submissions: self.submissions.saturating_sub(before.submissions),
            submit_ns: self.submit_ns.saturating_sub(before.submit_ns),
            families: std::array::from_fn(|i| self.families[i].since(before.families[i])),
        }
    }

    /// Bytes of every read-only binding.
    pub fn bytes_read(&self) -> u64 {
        self.families.iter().map(|f| f.bytes_read).sum()
    }

    /// Bytes of every read-write binding.
    pub fn bytes_written(&self) -> u64 {
        self.families.iter().map(|f| f.bytes_written).sum()
    }

    /// The counts of the family called `name` (zero for a name no slot has).
    pub fn family(&self, name: &str) -> FamilyCounts {
        (0..FAMILY_SLOTS)
            .find(|&i| family_name(i) == name)
            .map_or_else(FamilyCounts::default, |i| self.families[i])
    }

    /// These counts as the mean of `steps` steps (at least 1).
    pub fn per_step(&self, steps: u64) -> StepCounts {
        let n = steps.max(1) as f64;
        let families = (0..FAMILY_SLOTS)
            .filter(|&i| self.families[i].dispatches > 0)
            .map(|i| {
                let f = self.families[i];
                let step = FamilyStep {
                    dispatches: f.dispatches as f64 / n,
                    bytes_read: f.bytes_read as f64 / n,
                    bytes_written: f.bytes_written as f64 / n,
                };
                (family_name(i).to_string(), step)
            })
            .collect();
        StepCounts {
            steps: steps.max(1),
            dispatches: self.dispatches as f64 / n,
            bytes_read: self.bytes_read() as f64 / n,
            bytes_written: self.bytes_written() as f64 / n,
            record_us: self.record_ns as f64 / 1e3 / n,
            submissions: self.submissions as f64 / n,
            submit_us: self.submit_ns as f64 / 1e3 / n,
            families,
        }
    }

    /// Add one recorded dispatch of `shader` with its storage bindings' (bytes, access).
    pub(super) fn add(
        &mut self,
        shader: &Shader,
        bindings: impl Iterator<Item = (u64, Access)>,
        record_ns: u64,
    ) {
        self.dispatches += 1;
        self.record_ns += record_ns;
        let f = &mut self.families[family_of(shader.name)];
        f.dispatches += 1;
        for (bytes, access) in bindings {
            match access {
                Access::Read => f.bytes_read += bytes,
                Access::ReadWrite => f.bytes_written += bytes,
            }
        }
    }
}

/// One family's counts per step.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FamilyStep {
    pub dispatches: f64,
    pub bytes_read: f64,
    pub bytes_written: f64,
}

/// Counts per step, the mean over `steps` steps (what `bench`'s training-step rows and the run
/// report's models keep; see the module's documentation for how bytes are counted).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepCounts {
    /// Steps the means are over.
    pub steps: u64,
    pub dispatches: f64,
    /// Bytes of read-only bindings.
    pub bytes_read: f64,
    /// Bytes of read-write bindings.
    pub bytes_written: f64,
    /// CPU time spent recording the step's dispatches (µs).
    pub record_us: f64,
    /// Submissions, and the time spent in them (µs; see [`Counters::submit_ns`]).
    #[serde(default)]
    pub submissions: f64,
    #[serde(default)]
    pub submit_us: f64,
    /// Per kernel family that ran (`matmul`, `conv`, `elementwise`, …).
    pub families: BTreeMap<String, FamilyStep>,
}

impl StepCounts {
    /// The mean of several measurements (the seeds of a model), weighted by their steps; None for
    /// none.
    pub fn mean(all: &[StepCounts]) -> Option<StepCounts> {
        let steps: u64 = all.iter().map(|c| c.steps).sum();
        if steps == 0 {
            return None;
        }
        let n = steps as f64;
        let w = |c: &StepCounts, v: f64| v * c.steps as f64 / n;
        let mut out = StepCounts {
            steps,
            ..StepCounts::default()
        };
        for c in all {
            out.dispatches += w(c, c.dispatches);
            out.bytes_read += w(c, c.bytes_read);
            out.bytes_written += w(c, c.bytes_written);
            out.record_us += w(c, c.record_us);
            out.submissions += w(c, c.submissions);
            out.submit_us += w(c, c.submit_us);
            for (name, f) in &c.families {
                let e = out.families.entry(name.clone()).or_default();
                e.dispatches += w(c, f.dispatches);
                e.bytes_read += w(c, f.bytes_read);
                e.bytes_written += w(c, f.bytes_written);
            }
        }
        Some(out)
    }

    /// One line: dispatches, MB read and written (10⁶ bytes), CPU µs recording, submissions and
    /// µs in them, per step.
    pub fn line(&self) -> String {
        format!(
            "{:.1} dispatches, {:.2} MB read, {:.2} MB written, {:.0} µs recording, {:.2} submissions ({:.0} µs) per step",
            self.dispatches,
            self.bytes_read / 1e6,
            self.bytes_written / 1e6,
            self.record_us,
            self.submissions,
            self.submit_us
        )
    }
}

impl Gpu {
    /// What the recorder has counted on this device so far (a snapshot; see [`Counters::since`]).
    pub fn counters(&self) -> Counters {
        *self.counters.lock().unwrap()
    }

    /// Put back a snapshot: the tuner's measurements are not the work of the step they happen in.
    pub(super) fn restore_counters(&self, c: Counters) {
        *self.counters.lock().unwrap() = c;
    }

    /// When a dispatch's recording starts: the time, and the submission time counted so far.
    pub(super) fn record_start(&self) -> (Instant, u64) {
        (Instant::now(), self.counters.lock().unwrap().submit_ns)
    }

    /// Count one dispatch of `shader`, whose recording started at `start` ([`Gpu::record_start`]);
    /// a submission made meanwhile is not recording.
    pub(super) fn count_dispatch(
        &self,
        shader: &Shader,
        bindings: impl Iterator<Item = (u64, Access)>,
        start: (Instant, u64),
    ) {
        let ns = start.0.elapsed().as_nanos() as u64;
        let mut c = self.counters.lock().unwrap();
        let submitting = c.submit_ns.saturating_sub(start.1);
        c.add(shader, bindings, ns.saturating_sub(submitting));
    }

    /// Count one submission, whose submit call started at `start`.
    pub(super) fn count_submission(&self, start: Instant) {
        let ns = start.elapsed().as_nanos() as u64;
        let mut c = self.counters.lock().unwrap();
        c.submissions += 1;
        c.submit_ns += ns;
    }
}
