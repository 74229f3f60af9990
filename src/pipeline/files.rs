//! The run folder's small helpers, in one place: configuration hashes, JSON files written
//! atomically and read back on `--resume`, and the default folder name.

use crate::data::fnv1a;
use crate::files::write_atomic;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The hash a phase's result is stored with: `--resume` reuses the result only when it matches.
pub(crate) fn hash_of<T: serde::Serialize>(v: &T) -> String {
    format!(
        "{:016x}",
        fnv1a(serde_json::to_string(v).expect("serialisable").as_bytes())
    )
}

/// Write `v` as pretty JSON, atomically.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    write_atomic(
        path,
        serde_json::to_string_pretty(v)
            .expect("serialisable")
            .as_bytes(),
    )
}

/// The largest phase result `--resume` reads back (64 MiB; one is a few kilobytes).
const MAX_RESULT_BYTES: u64 = 64 << 20;

/// Read a JSON file written by [`write_json`]; None when it is missing, not a regular file, too
/// large or unreadable (the phase is then run again).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = crate::files::read_bounded(path, MAX_RESULT_BYTES, "a phase result").ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Read a JSON file, with an error naming the file when it is missing or not of the expected form.
pub(crate) fn read_json_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Data {
        path: path.display().to_string(),
        msg: format!("not the JSON this version of symclone-gpu writes ({e})"),
    })
}

/// `runs/<YYYYMMDD-HHMMSS>` (UTC, now): the output folder when none is given.
pub fn default_out_dir() -> PathBuf {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from(format!("runs/{}", timestamp(t)))
}

/// `YYYYMMDD-HHMMSS` (UTC) for a Unix time.
pub fn timestamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
