//! `check --export DIR`: every case run here under WebGPU's default limits with the device traced,
//! and written as a bundle another WebGPU implementation can replay — the final WGSL of each
//! kernel, its bindings, uniform parameters and grid, every buffer's contents when first used,
//! the writes, copies and read-backs in order, and each output's reference with its bound — beside
//! a self-contained page (`index.html`) that replays them in the browser's WebGPU and reports per
//! case. Bundles are scripts (`cases/NNNN.js`) rather than JSON so the page also runs from a file.

use super::{cell, device, exec::Kept, select, Limits, Options, Report, Row, Status};
use crate::gpu::trace::Trace;
use crate::gpu::AdapterChoice;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// The page that replays the bundles.
const PAGE: &str = include_str!("page.html");

/// One output of a bundle: which read of the trace holds it (None: it is not read straight from
/// a buffer, so a replay cannot compare it), its reference and bound.
#[derive(Serialize)]
struct Output<'a> {
    name: &'a str,
    read: Option<usize>,
    #[serde(serialize_with = "f64_b64")]
    want: &'a [f64],
    tol: f64,
    bound: &'a str,
}

/// One case as a bundle.
#[derive(Serialize)]
struct Bundle<'a> {
    name: &'a str,
    family: &'a str,
    native: String,
    #[serde(flatten)]
    trace: &'a Trace,
    outputs: Vec<Output<'a>>,
}

/// The list the page starts from.
#[derive(Serialize)]
struct IndexEntry {
    name: String,
    family: String,
    /// The bundle's path from the page; None when the case did not run here (why: `native`).
    file: Option<String>,
    native: String,
}

#[derive(Serialize)]
struct Index {
    adapter: String,
    cases: Vec<IndexEntry>,
}

fn f64_b64<S: serde::Serializer>(v: &&[f64], s: S) -> std::result::Result<S::Ok, S::Error> {
    use base64::Engine;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `name(<json>);` — a script that hands the value to the page. JSON is JavaScript but for two
/// line separators, escaped here.
fn script(call: &str, v: &impl Serialize) -> Result<Vec<u8>> {
    let json = serde_json::to_string(v)
        .map_err(|e| Error::invalid(format!("writing a bundle as JSON: {e}")))?;
    let json = json
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    Ok(format!("{call}({json});\n").into_bytes())
}

/// A folder `dir` can become: absent, or empty. The bundles are written into a fresh folder
/// beside it and renamed into place at the end, so a failure leaves nothing half-written.
fn staging_dir(dir: &Path) -> Result<tempfile::TempDir> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(Error::invalid(format!(
                "check --export {}: the folder exists and is not empty; give a new or empty folder",
                dir.display()
            )));
        }
    } else if dir.exists() {
        return Err(Error::invalid(format!(
            "check --export {}: exists and is not a folder",
            dir.display()
        )));
    }
    let parent = match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => ".".into(),
    };
    let io = |e: std::io::Error| {
        Error::invalid(format!(
            "check --export {}: cannot write in {}: {e}",
            dir.display(),
            parent.display()
        ))
    };
    std::fs::create_dir_all(&parent).map_err(io)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        // The folder becomes the export: 0777 & !umask, as create_dir_all makes one (tempfile's
        // own default is 0700).
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o777));
    }
    builder.tempdir_in(&parent).map_err(io)
}

/// Run every case `opts` selects on the adapter `choice` names, under WebGPU's default limits
/// (`opts.limits` must allow them), and write the bundles and the page into `dir` (absent or
/// empty). Returns the check's own report of the run here.
pub fn export(
    choice: &AdapterChoice,
    opts: &Options,
    dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    if !opts.limits.contains(&Limits::Webgpu) {
        return Err(Error::invalid(
            "check --export runs under WebGPU's default limits (what any browser offers): \
             leave --limits out or give --limits webgpu",
        ));
    }
    let chosen = select(opts.filter.as_deref())?;
    let staging = staging_dir(dir)?;
    let io = |e: std::io::Error| Error::io(dir, e);
    std::fs::create_dir(staging.path().join("cases")).map_err(io)?;
    let limits = Limits::Webgpu;
    let g = device(choice, limits)?;
    let adapter = g.describe();
    progress(&format!("exporting under webgpu limits from {adapter}"));
    let t0 = Instant::now();
    let mut rows = Vec::new();
    let mut index = Vec::new();
    for (i, case) in chosen.iter().enumerate() {
        // Fresh buffers (zero, as WebGPU makes them): a case's bundle carries its own inputs only.
        g.trim()?;
        g.trace_start();
        let mut kept: Vec<Kept> = Vec::new();
        let c = cell(&g, limits, case, None, Some(&mut kept));
        let trace = g.trace_take().expect("trace started");
        let native = c.show().replace("**", "");
        let file = match c.status {
            Status::Pass | Status::Fail => {
                let outputs = c
                    .outputs
                    .iter()
                    .zip(&kept)
                    .map(|(o, k)| Output {
                        name: &o.output,
                        read: trace.read_returning(bytemuck::cast_slice(&k.got)),
                        want: &k.want,
                        tol: o.tol,
                        bound: &o.bound,
                    })
                    .collect();
                let bundle = Bundle {
                    name: &case.name,
                    family: case.family,
                    native: native.clone(),
                    trace: &trace,
                    outputs,
                };
                let file = format!("cases/{:04}.js", i + 1);
                std::fs::write(staging.path().join(&file), script("symcloneCase", &bundle)?)
                    .map_err(io)?;
                Some(file)
            }
            Status::Error | Status::Skipped => None,
        };
        progress(&format!(
            "[{}/{}] {}: {native}",
            i + 1,
            chosen.len(),
            case.name
        ));
        index.push(IndexEntry {
            name: case.name.clone(),
            family: case.family.to_string(),
            file,
            native,
        });
        rows.push(Row {
            family: case.family.to_string(),
            case: case.name.clone(),
            cells: vec![c],
        });
    }
    let idx = Index {
        adapter: adapter.clone(),
        cases: index,
    };
    // `window.symcloneIndex = ({...});`
    let list = script("window.symcloneIndex = ", &idx)?;
    std::fs::write(staging.path().join("cases.js"), list).map_err(io)?;
    std::fs::write(staging.path().join("index.html"), PAGE).map_err(io)?;
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(io)?;
    }
    let kept = staging.keep();
    std::fs::rename(&kept, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        io(e)
    })?;
    Ok(Report {
        adapter,
        limits: vec![limits],
        seconds: vec![t0.elapsed().as_secs_f64()],
        rows,
    })
}
