//! The house (DESIGN.md, "The shape of the thing"): imports point down the layers only. Every
//! `crate::…` path in `src/` (outside comments) is checked against the layer table below, so an
//! upward import or a cycle between modules fails `cargo test` with the file, the line and the rule.

use std::path::{Path, PathBuf};

/// The crate's top-level modules, lowest layer first. A module may use modules of a lower layer
/// only; modules on one layer are siblings and use none of each other.
const LAYERS: &[&[&str]] = &[
    &["error", "rng", "reference"],
    &["files"],
    &["gpu"],
    &["tensor"],
    &["autograd"],
    &["ops"],
    &["nn", "equivariance", "data", "report"],
    &["clone"],
    &["models"],
    &["train"],
    &["bench"],
    &["pipeline"],
    &["sweep"],
];

/// What the crate root re-exports, and where each name lives.
const ROOT_NAMES: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("Gpu", "gpu"),
    ("Param", "autograd"),
    ("Tape", "autograd"),
    ("Var", "autograd"),
    ("Tensor", "tensor"),
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules a line names through `crate::`: `crate::ops::…`, `crate::{ops, Error}`, `crate::Gpu`.
fn used_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = part.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() {
                    found.push(name.to_string());
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
        rest = after;
    }
    found
        .into_iter()
        .map(|n| {
            ROOT_NAMES
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, m)| m.to_string())
                .unwrap_or(n)
        })
        .collect()
}

/// Every upward or sideways import in the crate, as "file:line: message".
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "bin" {
            continue; // the crate root re-exports; the binary stands on top of everything
        }
        let Some(own) = layer(&module) else {
            bad.push(format!(
                "{}: module `{module}` has no layer in tests/layers.rs",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for used in used_modules(code) {
                if used == module {
                    continue;
                }
                let why = if module == "reference" {
                    Some("the reference is the independent check and imports nothing of the crate")
                } else {
                    match layer(&used) {
                        None => Some("the module has no layer in tests/layers.rs"),
                        Some(l) if l == own => Some("modules on one layer do not use each other"),
                        Some(l) if l > own => Some("imports point down the layers only"),
                        Some(_) => None,
                    }
                };
                if let Some(why) = why {
                    bad.push(format!(
                        "src/{}:{}: `{module}` uses `{used}`: {why}",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn imports_point_down_the_layers() {
    // LAYERS_SRC checks another tree (an older checkout's src/, say) with the same rules.
    let src = std::path::PathBuf::from(
        std::env::var("LAYERS_SRC").unwrap_or(concat!(env!("CARGO_MANIFEST_DIR"), "/src").into()),
    );
    let bad = violations(&src);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn an_upward_import_is_found() {
    // A copy of two modules where the lower one reaches up: the check must name it.
    let dir = std::env::temp_dir().join(format!("symclone-layers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("gpu")).unwrap();
    std::fs::write(dir.join("tensor.rs"), "use crate::gpu::Gpu;\n").unwrap();
    std::fs::write(
        dir.join("gpu").join("mod.rs"),
        "// crate::ops in a comment is fine\nuse crate::{ops::matmul, Error};\n",
    )
    .unwrap();
    std::fs::write(dir.join("data.rs"), "use crate::report::plot;\n").unwrap();
    std::fs::write(dir.join("reference.rs"), "use crate::Result;\n").unwrap();
    let bad = violations(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(
        bad[0].contains("src/data.rs:1: `data` uses `report`"),
        "{}",
        bad[0]
    );
    assert!(
        bad[1].contains("src/gpu/mod.rs:2: `gpu` uses `ops`"),
        "{}",
        bad[1]
    );
    assert!(bad[2].contains("`reference` uses `error`"), "{}", bad[2]);
}
