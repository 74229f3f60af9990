//! Variant choice by measurement. Each op with several kernels (an [`Op`] its family declares: the
//! matrix product, each convolution pass) names its candidates; the first time a shape bucket
//! (sizes rounded to powers of two) is needed, every candidate runs at the bucket's representative
//! size on this adapter, is checked against the CPU reference, and the fastest that agrees is kept:
//! in memory for the process and on disk per adapter, driver and crate version, so later runs reuse
//! the choice without timing.
//!
//! What decides, in order:
//! 1. a variant forced for the op ([`Gpu::force`]; tests, benchmarks);
//! 2. a forced kernel family (`--family register|workgroup`, `SYMCLONE_FAMILY`): that family's
//!    default variant (its first candidate), without timing;
//! 3. `auto`: the choice made before (this process, then the cache file), else a measurement.
//!    Buckets under [`MIN_TIMED_MACS`] multiply-adds, and every bucket once this process has spent
//!    its budget ([`DEFAULT_BUDGET_S`]), take the adapter type's default (register kernels on CPU
//!    adapters, workgroup kernels on GPUs) and are not written to the cache.
//!
//! Variants sum in different orders, so two variants give results that differ in the last bits:
//! a run is bit-reproducible per seed for a given set of choices, which the cache keeps stable and
//! the run report records ([`Gpu::choices`]).
//!
//! The cache lives in `$SYMCLONE_CACHE`, else `$XDG_CACHE_HOME/symclone-gpu/`, else
//! `~/.cache/symclone-gpu/`; it is written atomically (a unique temporary file, then a rename). A
//! file that cannot be read as a cache is ignored with one warning and rewritten.

use super::{Gpu, KernelFamily};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Seconds of measurement one process may spend choosing variants (`symclone-gpu tune` raises it).
pub const DEFAULT_BUDGET_S: f64 = 4.0;
/// Buckets with fewer multiply-adds than this are not timed (launch overheads would decide).
pub const MIN_TIMED_MACS: u64 = 1 << 20;

/// An op whose kernel is chosen among variants, as its family declares it: the name that keys its
/// choices in the cache file and heads its rows in `tune` and `devices`, and a rank that orders
/// its choices among the other ops' ([`Gpu::choices`]). Its candidates come with each
/// [`Gpu::choose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Op {
    rank: u32,
    name: &'static str,
}

impl Op {
    /// The op called `name` (`matmul`, `conv_fwd`, …), listed after the ops of lower `rank`.
    pub const fn new(rank: u32, name: &'static str) -> Op {
        Op { rank, name }
    }

    pub fn name(self) -> &'static str {
        self.name
    }
}

/// One variant an op may run, and the family it belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub name: &'static str,
    pub family: KernelFamily,
}

/// One candidate's measurement: its seconds per run, or why it was rejected without timing
/// (its result disagreed with the CPU reference: the error and the bound).
pub type Measured = std::result::Result<f64, String>;

/// How a bucket's variant was chosen, and the times behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub op: String,
    pub bucket: String,
    pub variant: String,
    /// `timed`, `cache`, `forced`, `family`, `small` (not worth timing) or `budget` (spent).
    pub how: String,
    /// The size the candidates were timed at (empty when not timed here).
    pub timed_at: String,
    /// Seconds per run of each candidate that agreed with the reference.
    pub times: Vec<(String, f64)>,
    /// Candidates that disagreed with the reference or failed to run, each as `name: why`
    /// (`mm_tiled: relative error 3.1e-2 over the bound 2.2e-6`); never the variant chosen.
    pub rejected: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    adapter: String,
    driver: String,
    version: String,
    choices: BTreeMap<String, Choice>,
}

/// The tuner's state on one device.
#[derive(Default)]
pub(super) struct Tuner {
    forced: BTreeMap<Op, String>,
    memo: BTreeMap<(Op, String), Choice>,
    disk: Option<BTreeMap<String, Choice>>,
    spent_s: f64,
    budget_s: Option<f64>,
    dir: Option<PathBuf>,
    /// Why the last save of the cache failed (warned about once; None after a save that worked).
    save_error: Option<String>,
}

fn key(op: Op, bucket: &str) -> String {
    format!("{}/{bucket}", op.name())
}

/// The cache file of an adapter (its name, driver and the crate version) in `dir`.
pub fn cache_file(dir: &std::path::Path, info: &wgpu::AdapterInfo) -> PathBuf {
    let id = format!(
        "{}|{}|{}|{}",
        info.name,
        info.driver,
        info.driver_info,
        env!("CARGO_PKG_VERSION")
    );
    let hash = sha2::Sha256::digest(id.as_bytes());
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    let name: String = info
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(48)
        .collect();
    dir.join(format!("{name}-{hex}.json"))
}

/// The choices cached for an adapter (empty when there is no readable cache; `devices` shows them).
pub fn cached_choices(info: &wgpu::AdapterInfo) -> Vec<Choice> {
    default_cache_dir()
        .and_then(|d| {
            crate::files::Bound::TUNER_CACHE
                .read(&cache_file(&d, info))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
        .map(|f| f.choices.into_values().collect())
        .unwrap_or_default()
}

impl Choice {
    /// `matmul m1024n1024k1024 → mm_reg (timed)`.
    pub fn line(&self) -> String {
        format!(
            "{} {} → {} ({})",
            self.op, self.bucket, self.variant, self.how
        )
    }
}

/// The cache folder: `$SYMCLONE_CACHE`, `$XDG_CACHE_HOME/symclone-gpu`, `~/.cache/symclone-gpu`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("SYMCLONE_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("symclone-gpu")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("symclone-gpu")))
}

impl Gpu {
    /// Run `variant` for every launch of `op` on this device (None: choose again).
    pub fn force(&self, op: Op, variant: Option<&str>) {
        let mut t = self.tuner.lock().unwrap();
        match variant {
            Some(v) => t.forced.insert(op, v.to_string()),
            None => t.forced.remove(&op),
        };
    }

    /// The variant forced for `op`, if any ([`Gpu::force`]).
    pub fn forced(&self, op: Op) -> Option<String> {
        self.tuner.lock().unwrap().forced.get(&op).cloned()
    }

    /// Keep the choice cache in `dir` instead of the default folder.
    pub fn set_cache_dir(&self, dir: PathBuf) {
        let mut t = self.tuner.lock().unwrap();
        t.dir = Some(dir);
        t.disk = None;
        t.memo.clear();
    }

    /// Seconds of measurement this device may still spend choosing variants.
    pub fn set_tune_budget(&self, seconds: f64) {
        self.tuner.lock().unwrap().budget_s = Some(seconds);
    }

    /// The cache file of this adapter, driver and crate version.
    pub fn cache_path(&self) -> Option<PathBuf> {
        let dir = self.tuner.lock().unwrap().dir.clone();
        Some(cache_file(&dir.or_else(default_cache_dir)?, &self.info))
    }

    /// The choices made on this device so far (each op and bucket once), sorted.
    pub fn choices(&self) -> Vec<Choice> {
        self.tuner.lock().unwrap().memo.values().cloned().collect()
    }

    fn load_disk(&self) -> BTreeMap<String, Choice> {
        let Some(path) = self.cache_path() else {
            return BTreeMap::new();
        };
        let bytes = match crate::files::Bound::TUNER_CACHE.read(&path) {
            Ok(b) => b,
            // No cache yet: nothing to say.
            Err(_) if std::fs::symlink_metadata(&path).is_err() => return BTreeMap::new(),
            Err(e) => {
                eprintln!("warning: {e}; the kernel-choice cache is ignored and will be rewritten");
                return BTreeMap::new();
            }
        };
        match serde_json::from_slice::<CacheFile>(&bytes) {
            Ok(f) if f.version == env!("CARGO_PKG_VERSION") && f.adapter == self.info.name => {
                f.choices
            }
            Ok(_) => {
                eprintln!(
                    "warning: {} is the kernel-choice cache of another adapter or version; it is ignored and will be rewritten",
                    path.display()
                );
                BTreeMap::new()
            }
            Err(e) => {
                eprintln!(
                    "warning: the kernel-choice cache {} cannot be read ({e}); it is ignored and will be rewritten",
                    path.display()
                );
                BTreeMap::new()
            }
        }
    }

    fn save_disk(&self, choices: &BTreeMap<String, Choice>) {
        let Some(path) = self.cache_path() else {
            return;
        };
        let file = CacheFile {
            adapter: self.info.name.clone(),
            driver: format!("{} {}", self.info.driver, self.info.driver_info),
            version: env!("CARGO_PKG_VERSION").to_string(),
            choices: choices.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        let saved = crate::files::write_atomic(&path, &bytes);
        let mut t = self.tuner.lock().unwrap();
        match saved {
            Ok(()) => t.save_error = None,
            Err(e) => {
                // Once per device: a read-only cache folder is one warning, not one per choice.
                if t.save_error.is_none() {
                    eprintln!("warning: the kernel-choice cache was not saved (choices are kept for this run only): {e}");
                }
                t.save_error = Some(e.to_string());
            }
        }
    }

    /// Where the choices made so far are kept: the cache file, or why they are not kept (no cache
    /// folder, or the last save failed).
    pub fn cache_saved(&self) -> std::result::Result<PathBuf, String> {
        let path = self
            .cache_path()
            .ok_or_else(|| "no cache folder (set SYMCLONE_CACHE or HOME)".to_string())?;
        match &self.tuner.lock().unwrap().save_error {
            Some(e) => Err(e.clone()),
            None => Ok(path),
        }
    }

    /// The variant of `op` for `bucket` among `cands` (each family's default first). `timed_at`
    /// names the representative size; `macs` is its work; `measure` runs one candidate there,
    /// checks its result against the CPU reference first and returns its seconds per run, or why
    /// it disagrees ([`Measured`]): a candidate that disagrees or fails is never chosen, and the
    /// choice lists it with the reason.
    pub fn choose(
        &self,
        op: Op,
        bucket: &str,
        cands: &[Candidate],
        timed_at: &str,
        macs: u64,
        measure: &mut dyn FnMut(&'static str, f64) -> Result<Measured>,
    ) -> Result<&'static str> {
        let find = |name: &str| cands.iter().find(|c| c.name == name).map(|c| c.name);
        let record = |variant: &'static str, how: &str| {
            let c = Choice {
                op: op.name().into(),
                bucket: bucket.into(),
                variant: variant.into(),
                how: how.into(),
                timed_at: String::new(),
                times: Vec::new(),
                rejected: Vec::new(),
            };
            let mut t = self.tuner.lock().unwrap();
            t.memo.insert((op, bucket.to_string()), c);
            variant
        };
        let family_default = |f: KernelFamily| {
            cands
                .iter()
                .find(|c| c.family == f)
                .unwrap_or(&cands[0])
                .name
        };
        let (forced, budget_left) = {
            let mut t = self.tuner.lock().unwrap();
            let forced = t.forced.get(&op).cloned();
            if forced.is_none() && self.family_forced().is_none() {
                let made = t.memo.get(&(op, bucket.to_string()));
                if let Some(c) = made.filter(|c| c.how != "forced" && c.how != "family") {
                    if let Some(v) = find(&c.variant) {
                        return Ok(v);
                    }
                }
                if t.disk.is_none() {
                    drop(t);
                    let d = self.load_disk();
                    t = self.tuner.lock().unwrap();
                    t.disk = Some(d);
                }
                let hit = t
                    .disk
                    .as_ref()
                    .and_then(|d| d.get(&key(op, bucket)).cloned());
                if let Some(mut c) = hit {
                    if let Some(v) = find(&c.variant) {
                        c.how = "cache".into();
                        t.memo.insert((op, bucket.to_string()), c);
                        return Ok(v);
                    }
                }
            }
            let left = t.budget_s.unwrap_or(DEFAULT_BUDGET_S) - t.spent_s;
            (forced, left)
        };
        if let Some(name) = forced {
            let v = find(&name).ok_or_else(|| {
                let names: Vec<&str> = cands.iter().map(|c| c.name).collect();
                Error::invalid(format!(
                    "unknown {} variant '{name}': one of {}",
                    op.name(),
                    names.join(", ")
                ))
            })?;
            return Ok(record(v, "forced"));
        }
        if let Some(f) = self.family_forced() {
            return Ok(record(family_default(f), "family"));
        }
        let default = family_default(self.default_family());
        if macs < MIN_TIMED_MACS {
            return Ok(record(default, "small"));
        }
        if budget_left <= 0.0 {
            return Ok(record(default, "budget"));
        }
        let t0 = Instant::now();
        // The measurement's dispatches are not counted as the work of the step it happens in.
        let counted = self.counters();
        let mut times: Vec<(String, f64)> = Vec::new();
        let mut rejected = Vec::new();
        // The default family's candidates first, so a slow candidate meets a good bound early.
        let mut order: Vec<&Candidate> = cands.iter().collect();
        let first_family = self.default_family();
        order.sort_by_key(|c| c.family != first_family);
        for c in order {
            // The budget holds within a bucket too: once it is spent, the candidates left are
            // not timed (the best of those timed is kept).
            if !times.is_empty() && t0.elapsed().as_secs_f64() > budget_left {
                break;
            }
            let bound = times.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
            match measure(c.name, bound) {
                Ok(Ok(s)) => times.push((c.name.to_string(), s)),
                Ok(Err(why)) => {
                    eprintln!(
                        "warning: {} variant {} disagrees with the CPU reference at {timed_at} ({why}); it is not chosen",
                        op.name(),
                        c.name
                    );
                    rejected.push(format!("{}: {why}", c.name));
                }
                Err(e) => {
                    eprintln!(
                        "warning: {} variant {} failed while being timed: {e}",
                        op.name(),
                        c.name
                    );
                    rejected.push(format!("{}: failed: {e}", c.name));
                }
            }
        }
        self.restore_counters(counted);
        let best = times
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .and_then(|(n, _)| find(n))
            .ok_or_else(|| {
                Error::Gpu(format!(
                    "no {} variant agreed with the CPU reference at {timed_at} (rejected: {})",
                    op.name(),
                    rejected.join(", ")
                ))
            })?;
        let choice = Choice {
            op: op.name().into(),
            bucket: bucket.into(),
            variant: best.into(),
            how: "timed".into(),
            timed_at: timed_at.into(),
            times,
            rejected,
        };
        let disk = {
            let mut t = self.tuner.lock().unwrap();
            t.spent_s += t0.elapsed().as_secs_f64();
            t.memo.insert((op, bucket.to_string()), choice.clone());
            let d = t.disk.get_or_insert_with(BTreeMap::new);
            d.insert(key(op, bucket), choice);
            d.clone()
        };
        self.save_disk(&disk);
        Ok(best)
    }
}

/// Timed runs of a candidate after its checked first run took `first` seconds, when the best
/// candidate so far ran in `bound`: none (the first run's time stands) when it is already over
/// 4× the bound and half a second, so a kernel family that is slow on this adapter costs one run
/// per bucket, not two; else one for a slow kernel, three for a fast one.
pub fn timed_runs(first: f64, bound: f64) -> usize {
    if first > (4.0 * bound).max(0.5) {
        0
    } else if first > 0.25 {
        1
    } else {
        3
    }
}

/// The time a candidate is kept at after its checked first run took `first` seconds: that time
/// where [`timed_runs`] asks for no more runs, else the best of `run` so many times, each ended by
/// a full sync.
pub fn best_time(
    gpu: &Gpu,
    first: f64,
    bound: f64,
    run: &mut dyn FnMut() -> Result<()>,
) -> Result<f64> {
    let reps = timed_runs(first, bound);
    if reps == 0 {
        return Ok(first);
    }
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t0 = Instant::now();
        run()?;
        gpu.sync()?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// A size rounded to the nearest power of two, as its exponent (0 for 0 and 1).
pub fn log2_bucket(x: usize) -> u32 {
    if x <= 1 {
        return 0;
    }
    let lo = usize::BITS - 1 - x.leading_zeros();
    // Nearest in ratio: round up when x ≥ 2^lo · √2.
    if (x as f64) >= (1u64 << lo) as f64 * std::f64::consts::SQRT_2 {
        lo + 1
    } else {
        lo
    }
}
