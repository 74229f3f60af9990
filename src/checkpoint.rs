//! Checkpoints as safetensors files (f32 tensors under their parameter names, loadable in PyTorch
//! with `safetensors.torch.load_file`), with a metadata map that records what wrote them — the
//! configuration hash a resumed run checks before reusing a file. Written atomically.

use crate::autograd::Param;
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use crate::files::write_atomic;

/// The largest safetensors header read (1 MiB; a checkpoint of this crate has a few hundred bytes).
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

fn data_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Save parameters (read back from the GPU) with metadata. A tensor holding a NaN or an infinity
/// is refused, and nothing is written: a checkpoint is always one that can be resumed from.
pub fn save(path: &Path, params: &[Param], metadata: &HashMap<String, String>) -> Result<()> {
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for p in params {
        let v = p.value().to_vec()?;
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(format!(
                "not writing {}: tensor '{}' holds {} at index {i} (training diverged; lower the learning rate)",
                path.display(),
                p.name(),
                v[i]
            )));
        }
        data.push((
            p.name().to_string(),
            p.value().shape().to_vec(),
            bytemuck::cast_slice(&v).to_vec(),
        ));
    }
    let mut views = Vec::new();
    for (name, shape, bytes) in &data {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::invalid(format!("tensor {name}: {e}")))?;
        views.push((name.clone(), view));
    }
    let bytes = safetensors::serialize(views, Some(metadata.clone()))
        .map_err(|e| Error::invalid(format!("serialising {}: {e}", path.display())))?;
    write_atomic(path, &sorted_header(path, bytes, metadata)?)
}

/// The safetensors file `bytes` with its header written again in one order: the metadata map
/// first, its keys sorted, then the tensors by name. safetensors writes the metadata in the
/// order of a `HashMap`, which changes from one process to the next; sorted, identical content
/// makes identical bytes. Every reader takes the entries in any order (the tensors' places are
/// their offsets), so files written before read the same.
fn sorted_header(
    path: &Path,
    bytes: Vec<u8>,
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Header<'a> {
        #[serde(rename = "__metadata__")]
        metadata: BTreeMap<&'a str, &'a str>,
        #[serde(flatten)]
        tensors: BTreeMap<String, serde_json::Value>,
    }
    let bad = |msg: String| Error::invalid(format!("serialising {}: {msg}", path.display()));
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| bad("no header".into()))?;
    let head = bytes
        .get(8..8 + n)
        .ok_or_else(|| bad("a header longer than the file".into()))?;
    let mut tensors: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(head).map_err(|e| bad(e.to_string()))?;
    tensors.remove("__metadata__");
    let header = Header {
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        tensors,
    };
    let mut json = serde_json::to_vec(&header).map_err(|e| bad(e.to_string()))?;
    // safetensors aligns the data to 8 bytes with spaces after the header.
    json.resize(json.len().next_multiple_of(8), b' ');
    if json.len() == n {
        // The same entries in another order: rewritten in place, the tensors not copied.
        let mut bytes = bytes;
        bytes[8..8 + n].copy_from_slice(&json);
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// The header of a safetensors file: its length and its JSON, read without reading the tensors
/// (at most [`MAX_HEADER_BYTES`]), and the file's length.
fn read_header(path: &Path) -> Result<(u64, serde_json::Value, u64)> {
    let mut f = crate::files::open_regular(path)?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut n8 = [0u8; 8];
    if len < 8 {
        return Err(data_err(
            path,
            format!("not a safetensors file: {len} bytes, shorter than the 8-byte header length"),
        ));
    }
    f.read_exact(&mut n8).map_err(|e| Error::io(path, e))?;
    let n = u64::from_le_bytes(n8);
    if n > MAX_HEADER_BYTES || n > len - 8 {
        return Err(data_err(
            path,
            format!(
                "not a safetensors file: a header of {n} bytes (the file has {len}, a header here is at most {MAX_HEADER_BYTES})"
            ),
        ));
    }
    let mut head = vec![0u8; n as usize];
    f.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
    let json: serde_json::Value = serde_json::from_slice(&head)
        .map_err(|e| data_err(path, format!("not a safetensors file: header: {e}")))?;
    if !json.is_object() {
        return Err(data_err(
            path,
            "not a safetensors file: the header is not a JSON object",
        ));
    }
    Ok((n, json, len))
}

/// What a checkpoint's header says, read without its tensors: its metadata map, the length of
/// the header and of the whole file — enough to check a file against what it must hold before
/// anything is allocated for it.
pub struct Header {
    pub metadata: HashMap<String, String>,
    pub header_bytes: u64,
    pub file_bytes: u64,
}

/// Read a checkpoint's [`Header`] (the header alone is read).
pub fn inspect(path: &Path) -> Result<Header> {
    let (header_bytes, json, file_bytes) = read_header(path)?;
    Ok(Header {
        metadata: metadata_of(path, &json)?,
        header_bytes,
        file_bytes,
    })
}

/// The metadata map of a checkpoint's header.
fn metadata_of(path: &Path, json: &serde_json::Value) -> Result<HashMap<String, String>> {
    match json.get("__metadata__") {
        None | Some(serde_json::Value::Null) => Ok(HashMap::new()),
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(data_err(
                    path,
                    format!(
                        "not a safetensors file: metadata entry \"{}\" is not a string",
                        k.escape_debug()
                    ),
                )),
            })
            .collect(),
        Some(_) => Err(data_err(
            path,
            "not a safetensors file: __metadata__ is not a map",
        )),
    }
}

/// Load every parameter from a checkpoint into the GPU tensors, checking names, shapes and that
/// every value is finite; when `expect` is given, every listed metadata entry must match (a
/// checkpoint of another configuration is refused with the differing key named). The file is
/// read only if its length is what the header and the parameters make it.
pub fn load(path: &Path, params: &[Param], expect: &HashMap<String, String>) -> Result<()> {
    let pstr = path.display().to_string();
    let meta = inspect(path)?.metadata;
    for (k, v) in expect {
        match meta.get(k) {
            Some(have) if have == v => {}
            Some(have) => {
                return Err(Error::Data {
                    path: pstr,
                    msg: format!(
                        "written for another configuration: {k} is \"{}\", this run needs \"{}\"",
                        have.escape_debug(),
                        v.escape_debug()
                    ),
                })
            }
            None => {
                return Err(Error::Data {
                    path: pstr,
                    msg: format!("has no '{k}' entry: it was not written by this configuration"),
                })
            }
        }
    }
    // Names, types and shapes from the header first, then the file's length: the file is read
    // only when it holds exactly the header and these tensors.
    let (n, header, len) = read_header(path)?;
    for p in params {
        let entry = header.get(p.name()).ok_or_else(|| Error::Data {
            path: pstr.clone(),
            msg: format!("has no tensor '{}'", p.name()),
        })?;
        let dtype = entry.get("dtype").and_then(|d| d.as_str()).unwrap_or("?");
        let shape: Option<Vec<usize>> = entry
            .get("shape")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        if dtype != "F32" || shape.as_deref() != Some(p.value().shape()) {
            return Err(Error::Data {
                path: pstr.clone(),
                msg: format!(
                    "tensor '{}' is {} {}, the model needs F32 {:?}",
                    p.name(),
                    dtype.escape_debug(),
                    shape.map_or("of no readable shape".into(), |s| format!("{s:?}")),
                    p.value().shape()
                ),
            });
        }
    }
    let need: u64 = params
        .iter()
        .map(|p| p.value().numel() as u64 * 4)
        .sum::<u64>()
        + 8
        + n;
    if len != need {
        return Err(data_err(
            path,
            format!(
                "{len} bytes, but a checkpoint of these tensors has {need} (a {n}-byte header and {} tensor bytes): the file is truncated, padded or of another model",
                need - 8 - n
            ),
        ));
    }
    // The exact length, under the bound of any checkpoint.
    let bound = crate::files::Bound::CHECKPOINT;
    let bytes = crate::files::read_bounded(path, need.min(bound.max), bound.what)?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::Data {
        path: pstr.clone(),
        msg: format!("not a safetensors file: {e}"),
    })?;
    for p in params {
        let t = st.tensor(p.name()).map_err(|_| Error::Data {
            path: pstr.clone(),
            msg: format!("has no tensor '{}'", p.name()),
        })?;
        if t.dtype() != Dtype::F32 || t.shape() != p.value().shape() {
            return Err(Error::Data {
                path: pstr.clone(),
                msg: format!(
                    "tensor '{}' is {:?} {:?}, the model needs F32 {:?}",
                    p.name(),
                    t.dtype(),
                    t.shape(),
                    p.value().shape()
                ),
            });
        }
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::Data {
                path: pstr.clone(),
                msg: format!(
                    "tensor '{}' holds {} at index {i}: a checkpoint must hold finite numbers",
                    p.name(),
                    v[i]
                ),
            });
        }
        p.write(&v)?;
    }
    Ok(())
}
