//! Checkpoints as safetensors files (f32 tensors under their parameter names, loadable in PyTorch
//! with `safetensors.torch.load_file`), with a metadata map that records what wrote them — the
//! configuration hash a resumed run checks before reusing a file. Written atomically.

use crate::autograd::Param;
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

use crate::files::write_atomic;

/// Save parameters (read back from the GPU) with metadata.
pub fn save(path: &Path, params: &[Param], metadata: &HashMap<String, String>) -> Result<()> {
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for p in params {
        let v = p.value().to_vec()?;
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
    write_atomic(path, &bytes)
}

/// The metadata map of a checkpoint.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::Data {
        path: path.display().to_string(),
        msg: format!("not a safetensors file: {e}"),
    })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Load every parameter from a checkpoint into the GPU tensors, checking names and shapes; when
/// `expect` is given, every listed metadata entry must match (a checkpoint of another
/// configuration is refused with the differing key named).
pub fn load(path: &Path, params: &[Param], expect: &HashMap<String, String>) -> Result<()> {
    let pstr = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: pstr.clone(),
        source: e,
    })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::Data {
        path: pstr.clone(),
        msg: format!("not a safetensors file: {e}"),
    })?;
    let meta = read_metadata(path)?;
    for (k, v) in expect {
        match meta.get(k) {
            Some(have) if have == v => {}
            Some(have) => {
                return Err(Error::Data {
                    path: pstr,
                    msg: format!(
                        "written for another configuration: {k} is '{have}', this run needs '{v}'"
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
        p.value().write_slice(&v)?;
    }
    Ok(())
}
