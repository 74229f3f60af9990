//! Clone checkpoints on disk: the metadata a clone's safetensors file carries, and loading one
//! clone or a folder of them (the `--clones` of `finetune`).

use super::{ClonedOperator, OperatorKind};
use crate::checkpoint;
use crate::clone::{clone_key, CloneSet};
use crate::rng::Rng;
use crate::{Error, Gpu, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The metadata a clone checkpoint carries: what it clones, its sizes and its configuration hash.
pub fn clone_metadata(op: &ClonedOperator, hash: &str) -> HashMap<String, String> {
    [
        ("kind", op.kind.name().to_string()),
        ("d", op.d.to_string()),
        ("nb", op.nb.to_string()),
        ("m", op.m.to_string()),
        ("config_hash", hash.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Load a clone checkpoint written by `run` or `clone`. Its metadata is read first (from the
/// header alone) and its sizes checked ([`ClonedOperator::check_sizes`]: ranges and the adapter's
/// limits) before anything is allocated; every error names the file, and text taken from the
/// file is shown escaped.
pub fn load_clone(gpu: &Arc<Gpu>, path: &Path) -> Result<ClonedOperator> {
    let head = checkpoint::inspect(path)?;
    let meta = &head.metadata;
    let bad = |msg: String| Error::Data {
        path: path.display().to_string(),
        msg,
    };
    let get = |k: &str| {
        meta.get(k).cloned().ok_or_else(|| {
            bad(format!(
                "has no '{k}' entry: not a clone written by symclone-gpu"
            ))
        })
    };
    let name = get("kind")?;
    let kind = OperatorKind::from_name(&name).ok_or_else(|| {
        bad(format!(
            "unknown operator kind \"{}\" (a clone is z2, lift, p4, lift-d4 or p4m)",
            name.escape_debug()
        ))
    })?;
    let num = |k: &str| -> Result<usize> {
        let v = get(k)?;
        v.parse().map_err(|_| {
            bad(format!(
                "entry '{k}' is \"{}\", not a whole number",
                v.escape_debug()
            ))
        })
    };
    let (d, nb, m) = (num("d")?, num("nb")?, num("m")?);
    let in_file = |e: Error| match e {
        Error::Data { .. } => e,
        other => bad(other.to_string()),
    };
    ClonedOperator::check_sizes(gpu, kind, d, nb, m).map_err(in_file)?;
    // The file must hold exactly these tensors: checked before the operator is allocated.
    let tensor_bytes: u64 = ClonedOperator::param_shapes(kind, d, nb, m)
        .iter()
        .map(|s| 4 * s.iter().product::<usize>() as u64)
        .sum();
    let (header, len) = (head.header_bytes, head.file_bytes);
    if len != 8 + header + tensor_bytes {
        return Err(bad(format!(
            "{len} bytes, but a {} clone with d = {d}, nb = {nb}, m = {m} has {} (a {header}-byte header and {tensor_bytes} tensor bytes): the file is truncated, padded or its metadata is wrong",
            kind.name(),
            8 + header + tensor_bytes
        )));
    }
    let op = ClonedOperator::new(gpu, kind, d, nb, m, &mut Rng::new(0)).map_err(in_file)?;
    checkpoint::load(path, &op.params(), meta).map_err(in_file)?;
    Ok(op)
}

/// Every clone checkpoint (`*.safetensors`) in a folder (or its `clones/` subfolder).
pub fn load_clones(gpu: &Arc<Gpu>, dir: &Path) -> Result<CloneSet> {
    let sub = dir.join("clones");
    let dir = if sub.is_dir() { sub } else { dir.to_path_buf() };
    let mut set = CloneSet::new();
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    for entry in rd {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let op = load_clone(gpu, &path)?;
            set.insert(clone_key(op.kind, op.d), op);
        }
    }
    if set.is_empty() {
        return Err(Error::invalid(format!(
            "{} holds no clone checkpoints (*.safetensors): run `symclone-gpu clone` first",
            dir.display()
        )));
    }
    Ok(set)
}
