//! The house (DESIGN.md, "The shape of the thing"): imports point down the layers only. Every
//! `crate::…` path in `src/` (outside comments) is checked against the layer table below, so an
//! upward import or a cycle between modules fails `cargo test` with the file, the line and the rule.
//! Inside a layer, the files' imports form no circle either: every path a file names
//! (`crate::a::b`, `super::b`, a child module's `b::…`) is an arrow to the file that defines that
//! module — except a re-export (`pub use child::Name;`, a module's façade) and a use of the
//! file's own ancestor (`super::helper` in a child of `ops/mod.rs`: Rust's nesting) — and a
//! circle of arrows fails with the files and the lines that make it.

use std::path::{Path, PathBuf};

/// The crate's top-level modules, lowest layer first. A module may use modules of a lower layer
/// only; modules on one layer are siblings and use none of each other.
const LAYERS: &[&[&str]] = &[
    &["error", "rng", "reference"],
    &["files", "progress", "group"],
    &["gpu"],
    &["tensor"],
    &["autograd"],
    &["ops"],
    &["nn", "equivariance", "data", "report", "checkpoint"],
    &["clone"],
    &["models"],
    &["train"],
    &["bench", "config", "check"],
    &["results"],
    &["pipeline"],
    &["commands", "sweep"],
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

/// A file's module path from `src/`: `pipeline/config.rs` → `pipeline::config`,
/// `ops/conv/mod.rs` → `ops::conv`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The paths a line of code names: each `crate::…`, `super::…`, `self::…` path and each path that
/// starts with one of `children` (the file's own submodules), as segments, with one level of
/// `{a, b::c}` groups expanded.
fn named_paths(code: &str, children: &[String]) -> Vec<Vec<String>> {
    let bytes: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < bytes.len() {
        if !ident(bytes[i]) || (i > 0 && (ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
            i += 1;
            continue;
        }
        // A path starts here: read `seg::seg::…` and an optional `{…}` group.
        let mut segs = Vec::new();
        let mut j = i;
        let mut group = None;
        loop {
            let s = j;
            while j < bytes.len() && ident(bytes[j]) {
                j += 1;
            }
            segs.push(bytes[s..j].iter().collect::<String>());
            if j + 1 < bytes.len() && bytes[j] == ':' && bytes[j + 1] == ':' {
                j += 2;
                if j < bytes.len() && bytes[j] == '{' {
                    let end = bytes[j..].iter().position(|&c| c == '}').map(|e| j + e);
                    let end = end.unwrap_or(bytes.len());
                    group = Some(bytes[j + 1..end].iter().collect::<String>());
                    j = end;
                    break;
                }
                if j < bytes.len() && ident(bytes[j]) {
                    continue;
                }
            }
            break;
        }
        i = j.max(i + 1);
        let head = segs[0].as_str();
        let rooted =
            ["crate", "super", "self"].contains(&head) || children.iter().any(|c| c == head);
        if !rooted || (segs.len() < 2 && group.is_none()) {
            continue;
        }
        match group {
            Some(g) => {
                for part in g.split(',') {
                    let mut p = segs.clone();
                    p.extend(part.trim().split("::").map(|x| x.trim().to_string()));
                    p.retain(|x| !x.is_empty() && x != "self");
                    out.push(p);
                }
            }
            None => out.push(segs),
        }
    }
    out
}

/// The arrows between files: (from, to, line), each file named by its path under `src/`. Lines
/// after `#[cfg(test)]` (a file's own tests) are left out, and so is the crate root.
fn file_arrows(src: &Path) -> Vec<(String, String, usize)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut modules: std::collections::BTreeMap<Vec<String>, String> = Default::default();
    for f in &files {
        let rel = f.strip_prefix(src).unwrap();
        if rel.starts_with("bin") || rel == Path::new("lib.rs") {
            continue;
        }
        modules.insert(module_of(rel), rel.display().to_string());
    }
    let mut arrows = Vec::new();
    for (module, file) in &modules {
        let children: Vec<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m.last().unwrap().clone())
            .collect();
        // `super` in a mod.rs or a plain file is the parent module.
        let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            // A module's re-exports (`pub use child::Name;`) are its façade, not a use of the
            // child: the child may use what its parent defines.
            if code.trim_start().starts_with("pub") && code.contains(" use ") {
                continue;
            }
            for path in named_paths(code, &children) {
                let mut abs: Vec<String> = match path[0].as_str() {
                    "crate" => vec![],
                    "super" => parent.clone(),
                    "self" => module.clone(),
                    _ => module.clone(),
                };
                let rest = if ["crate", "self"].contains(&path[0].as_str()) {
                    &path[1..]
                } else if path[0] == "super" {
                    let mut k = 1;
                    while path.get(k).is_some_and(|s| s == "super") {
                        abs.pop();
                        k += 1;
                    }
                    &path[k..]
                } else {
                    &path[..]
                };
                abs.extend(rest.iter().cloned());
                // The longest prefix that is a file's module is the file used.
                let target = (1..=abs.len())
                    .rev()
                    .find(|&k| modules.contains_key(&abs[..k]));
                // A file using its own ancestor (`super::helper` from a child of `ops/mod.rs`) is
                // Rust's nesting, not an arrow between rooms.
                if let Some(k) = target.filter(|&k| !module.starts_with(&abs[..k])) {
                    arrows.push((file.clone(), modules[&abs[..k]].clone(), n + 1));
                }
            }
        }
    }
    arrows.sort();
    arrows.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    arrows
}

/// Every circle of arrows between files, as "a.rs:LINE → b.rs:LINE → a.rs" (one per strongly
/// connected group of files, through its first file).
fn circles(src: &Path) -> Vec<String> {
    let arrows = file_arrows(src);
    let mut next: std::collections::BTreeMap<&str, Vec<(&str, usize)>> = Default::default();
    for (a, b, line) in &arrows {
        next.entry(a.as_str())
            .or_default()
            .push((b.as_str(), *line));
    }
    let reach = |from: &str| -> std::collections::BTreeMap<String, Vec<String>> {
        // Breadth-first from `from`: each file reached, with the path of arrows to it.
        let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut queue = std::collections::VecDeque::from([(from.to_string(), vec![])]);
        while let Some((f, path)) = queue.pop_front() {
            for (t, line) in next.get(f.as_str()).into_iter().flatten() {
                if !seen.contains_key(*t) {
                    let mut p = path.clone();
                    p.push(format!("{f}:{line}"));
                    seen.insert(t.to_string(), p.clone());
                    queue.push_back((t.to_string(), p));
                }
            }
        }
        seen
    };
    let mut found = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for f in next.keys() {
        if covered.contains(*f) {
            continue;
        }
        let r = reach(f);
        if let Some(path) = r.get(*f) {
            for step in path {
                covered.insert(step.split(':').next().unwrap().to_string());
            }
            found.push(format!("src/{} → src/{f}", path.join(" → src/")));
        }
    }
    found
}

#[test]
fn no_import_circle_between_files() {
    let src = std::path::PathBuf::from(
        std::env::var("LAYERS_SRC").unwrap_or(concat!(env!("CARGO_MANIFEST_DIR"), "/src").into()),
    );
    let found = circles(&src);
    assert!(
        found.is_empty(),
        "import circles between files (each arrow: the file and the line that imports):\n{}",
        found.join("\n")
    );
}

#[test]
fn an_import_circle_is_found() {
    // Three files of one module: a and b use each other (one through a `{…}` group, one through
    // a `crate::` path in code), c and a too; b's own tests (after `#[cfg(test)]`) and a's
    // comment are not arrows. The check names both circles, with their lines.
    let dir = std::env::temp_dir().join(format!("symclone-circles-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("pipeline")).unwrap();
    std::fs::write(
        dir.join("pipeline").join("mod.rs"),
        "pub mod a;\npub mod b;\npub mod c;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pipeline").join("a.rs"),
        "// use super::c::X; (a comment)\nuse super::{b::Thing, c};\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pipeline").join("b.rs"),
        "fn f() {\n    crate::pipeline::a::go();\n}\n#[cfg(test)]\nuse super::c::Y;\n",
    )
    .unwrap();
    std::fs::write(dir.join("pipeline").join("c.rs"), "use super::a::go;\n").unwrap();
    let found = circles(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(
        found[0],
        "src/pipeline/a.rs:2 → src/pipeline/b.rs:2 → src/pipeline/a.rs"
    );
    assert_eq!(
        found[1],
        "src/pipeline/c.rs:1 → src/pipeline/a.rs:2 → src/pipeline/c.rs"
    );
}

/// The Rust files over `max` lines under `root`'s src/, tests/, benches/ and examples/ whose first
/// ten lines have no `//! Over 600 lines: <why>` line.
fn long_files_without_reason(root: &Path, max: usize) -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    files.sort();
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines = text.lines().count();
        let says_why = text
            .lines()
            .take(10)
            .any(|l| l.starts_with("//! Over 600 lines: ") && l.len() > 30);
        if lines > max && !says_why {
            bad.push(format!(
                "{}: {lines} lines, and no `//! Over 600 lines: <why>` line at its top",
                f.strip_prefix(root).unwrap().display()
            ));
        }
    }
    bad
}

#[test]
fn a_file_over_600_lines_says_why() {
    let bad = long_files_without_reason(Path::new(env!("CARGO_MANIFEST_DIR")), 600);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn a_long_file_without_its_reason_is_found() {
    let dir = std::env::temp_dir().join(format!("symclone-long-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let body = "fn f() {}\n".repeat(20);
    std::fs::write(dir.join("src").join("short.rs"), "fn f() {}\n").unwrap();
    std::fs::write(dir.join("src").join("long.rs"), &body).unwrap();
    std::fs::write(
        dir.join("src").join("said.rs"),
        format!("//! A module.\n//! Over 600 lines: one table of cases, kept whole.\n{body}"),
    )
    .unwrap();
    let bad = long_files_without_reason(&dir, 15);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(bad[0].starts_with("src/long.rs: 20 lines"), "{}", bad[0]);
}
