//! The documentation: every relative link in README.md, BENCHMARKS.md and docs/*.md names a file that exists, and
//! every `#anchor` in one names a heading of its target (GitHub's slugs); the README stays short
//! (at most 300 lines) and its first code block holds the two commands a newcomer runs first. The
//! helpers are also tested on small in-memory pages, so each check is seen to fail.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

const README_MAX_LINES: usize = 300;

/// The lines of `md` outside fenced code blocks, with their 1-based numbers.
fn prose_lines(md: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for (i, line) in md.lines().enumerate() {
        let t = line.trim_start();
        let marker = if t.starts_with("```") {
            Some("```")
        } else if t.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// `line` without its inline code spans (`` `…` ``), so that code is never read as a link.
fn strip_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every markdown link `[text](target)` (images included) outside code: (line, target).
fn links(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(md) {
        let line = strip_code_spans(line);
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            // `[a](b "title")`: the target is the first word; `<b>` is b.
            let target = after[..end].split_whitespace().next().unwrap_or("");
            let target = target.trim_start_matches('<').trim_end_matches('>');
            out.push((n, target.to_string()));
            rest = &after[end + 1..];
        }
    }
    out
}

/// Whether a link leaves the repository (a web address or a mail).
fn is_external(target: &str) -> bool {
    let t = target.to_ascii_lowercase();
    t.starts_with("http://") || t.starts_with("https://") || t.starts_with("mailto:")
}

/// GitHub's anchor for a heading's text: lowercase, every character but letters, digits, spaces,
/// '-' and '_' dropped, each space a '-'.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of every heading of `md` (ATX headings outside code; a repeated slug gets GitHub's
/// `-1`, `-2`, … suffix).
fn anchors(md: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (_, line) in prose_lines(md) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let text = line[hashes..].trim().trim_end_matches('#').trim();
        let s = slug(text);
        let n = seen.entry(s.clone()).or_insert(0);
        out.push(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

/// `path` with `.` and `..` resolved lexically (the repository's links never go through links).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Every broken relative link of the page `file` (a path relative to the repository root) whose
/// text is `md`; `read` gives a repository file's text, or None where there is no such file.
fn broken_links(file: &Path, md: &str, read: &dyn Fn(&Path) -> Option<String>) -> Vec<String> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut errors = Vec::new();
    for (line, target) in links(md) {
        if is_external(&target) {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target.as_str(), None),
        };
        let at = format!("{}:{line}: link to {target}", file.display());
        let text = if path.is_empty() {
            Some(md.to_string())
        } else {
            let full = normalise(&dir.join(path));
            match read(&full) {
                Some(t) => Some(t),
                None => {
                    errors.push(format!("{at}: no file {}", full.display()));
                    continue;
                }
            }
        };
        if let (Some(a), Some(text)) = (anchor, text) {
            if !anchors(&text).iter().any(|h| h == a) {
                errors.push(format!("{at}: no heading with anchor #{a}"));
            }
        }
    }
    errors
}

/// The text of the first fenced code block of `md`.
fn first_code_block(md: &str) -> Option<String> {
    let mut lines = md.lines();
    lines.by_ref().find(|l| l.trim_start().starts_with("```"))?;
    let body: Vec<&str> = lines
        .take_while(|l| !l.trim_start().starts_with("```"))
        .collect();
    Some(body.join("\n"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, BENCHMARKS.md and every docs/*.md, relative to the repository root.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("README.md"), PathBuf::from("BENCHMARKS.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| Path::new("docs").join(p.file_name().unwrap()))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

fn read_repo_file(rel: &Path) -> Option<String> {
    let p = root().join(rel);
    if !p.is_file() {
        return None;
    }
    // A link to a file that is not text (an image) resolves; it has no headings.
    Some(std::fs::read_to_string(&p).unwrap_or_default())
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let mut errors = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let md = std::fs::read_to_string(root().join(&page)).unwrap();
        checked += links(&md).iter().filter(|(_, t)| !is_external(t)).count();
        errors.extend(broken_links(&page, &md, &read_repo_file));
    }
    assert!(checked > 20, "only {checked} relative links found");
    assert!(errors.is_empty(), "broken links:\n{}", errors.join("\n"));
}

#[test]
fn the_readme_is_at_most_300_lines() {
    let md = std::fs::read_to_string(root().join("README.md")).unwrap();
    let n = md.lines().count();
    assert!(
        n <= README_MAX_LINES,
        "README.md has {n} lines, more than {README_MAX_LINES}: move the detail into docs/"
    );
}

#[test]
fn the_readmes_first_code_block_runs_the_method_and_the_tests() {
    let md = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = first_code_block(&md).expect("README.md has a fenced code block");
    for cmd in ["cargo run --release -- run", "cargo test --release"] {
        assert!(
            block.contains(cmd),
            "the README's first code block lacks `{cmd}`:\n{block}"
        );
    }
}

// The helpers on small pages held in memory.

fn in_memory(files: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
    let map: HashMap<PathBuf, String> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect();
    move |p: &Path| map.get(p).cloned()
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Quick start"), "quick-start");
    assert_eq!(slug("Mixer cloning (SPEC §8)"), "mixer-cloning-spec-8");
    assert_eq!(
        slug("The cloning loss (`--clone-loss`)"),
        "the-cloning-loss---clone-loss"
    );
    assert_eq!(slug("Will it fit? `plan`"), "will-it-fit-plan");
    assert_eq!(slug("The paper preset's plan"), "the-paper-presets-plan");
    assert_eq!(slug("The 1/9 plateau"), "the-19-plateau");
    assert_eq!(slug("snake_case and Ünïcode"), "snake_case-and-ünïcode");
    let md = "# A\n## B\n```sh\n# not a heading\n```\n## B\n#not\n";
    assert_eq!(anchors(md), ["a", "b", "b-1"]);
}

#[test]
fn links_are_found_outside_code_only() {
    let md = "See [a](a.md) and ![pic](img.png \"title\") and [web](https://x.org).\n\
              `[not](code.md)` but [b](<b.md#x>)\n```\n[no](fenced.md)\n```\n";
    let found: Vec<String> = links(md).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        found,
        ["a.md", "img.png", "https://x.org", "b.md#x"].map(String::from)
    );
}

#[test]
fn a_broken_link_or_anchor_is_reported() {
    let read = in_memory(&[
        ("README.md", ""),
        ("docs/a.md", "# Title\n\n## A section (§1)\n"),
    ]);
    let good =
        "[a](docs/a.md) [s](docs/a.md#a-section-1) [t](#top) [w](https://example.com/x)\n\n# Top\n";
    assert_eq!(
        broken_links(Path::new("README.md"), good, &read),
        Vec::<String>::new()
    );
    // From inside docs/, `..` leads back to the root.
    let back = "[r](../README.md) [s](a.md#title)\n";
    assert!(broken_links(Path::new("docs/b.md"), back, &read).is_empty());

    let bad = "line one\n[gone](docs/missing.md)\n[anchor](docs/a.md#no-such-section)\n[here](#nowhere)\n";
    let errors = broken_links(Path::new("README.md"), bad, &read);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].contains("README.md:2") && errors[0].contains("no file docs/missing.md"));
    assert!(errors[1].contains("README.md:3") && errors[1].contains("#no-such-section"));
    assert!(errors[2].contains("README.md:4") && errors[2].contains("#nowhere"));
}

#[test]
fn the_first_code_block_is_found() {
    let md = "# T\n\ntext `cargo run`\n\n```sh\ncargo run --release -- run\ncargo test --release\n```\n\n```\nlater\n```\n";
    let block = first_code_block(md).unwrap();
    assert!(block.contains("cargo run --release -- run") && block.contains("cargo test --release"));
    assert!(!block.contains("later"));
    assert_eq!(first_code_block("no code here\n"), None);
}

/// The README's results are a run's own summary (`report RUN --readme README.md`), between the
/// two marker lines: the line naming the run's report, a results table and the claims' verdicts.
#[test]
fn the_readme_quotes_a_run_between_the_markers() {
    use symclone::results::readme::{BEGIN, END};
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (b, e) = (
        readme.find(BEGIN).expect("begin marker"),
        readme.find(END).expect("end marker"),
    );
    let block = &readme[b..e];
    assert!(
        block.contains("report.json` by `symclone-gpu report"),
        "{block}"
    );
    assert!(
        block.contains("| task | model | test accuracy | train time |"),
        "{block}"
    );
    assert!(block.contains("| verdict |"), "{block}");
}
