//! The run folder's small helpers, in one place: configuration hashes, and JSON files written
//! atomically and read back on `--resume`.

use crate::data::fnv1a;
use crate::report::write_atomic;
use crate::Result;
use std::path::Path;

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

/// Read a JSON file written by [`write_json`]; None when it is missing or unreadable (the phase
/// is then run again).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
