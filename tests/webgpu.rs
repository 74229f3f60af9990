//! `check --export`, replayed in a browser's WebGPU: the bundles are served on localhost and a
//! headless Chromium (Dawn, with Tint compiling the WGSL) runs the exported page, which posts its
//! per-case results back. Every case must pass there; and a bundle with a wrong reference is a
//! FAIL, a kernel that does not compile an error, each on its own case (so the page's verdicts
//! can fail). Without Chromium the test is skipped, unless CI is set.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

const CHROMIUM: &str = "/usr/bin/chromium";

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("symclone-webgpu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Chromium, or None (saying why) where it is not installed and CI is not set.
fn chromium() -> Option<&'static str> {
    if Path::new(CHROMIUM).exists() {
        return Some(CHROMIUM);
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set and {CHROMIUM} is missing (apt-get install chromium)");
    }
    println!("skipped: no {CHROMIUM} here; CI=1 makes this a failure");
    None
}

/// Serve `dir` on 127.0.0.1 (GET: its files; POST /result: the body goes to the receiver).
fn serve(dir: PathBuf) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
            let path = path
                .split('?')
                .next()
                .unwrap_or("/")
                .trim_start_matches('/');
            if method == "POST" && path == "result" {
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
                continue;
            }
            let file = dir.join(path);
            let reply = match std::fs::read(&file) {
                Ok(bytes) if !path.contains("..") => {
                    let kind = if path.ends_with(".html") {
                        "text/html; charset=utf-8"
                    } else {
                        "text/javascript; charset=utf-8"
                    };
                    let mut head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    )
                    .into_bytes();
                    head.extend(bytes);
                    head
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = s.write_all(&reply);
        }
    });
    (port, rx)
}

/// Kills the browser when the test ends, however it ends.
struct Browser(Child);
impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Export the cases `filter` selects into a new folder.
fn export(name: &str, filter: Option<&str>) -> PathBuf {
    let dir = tmp(name);
    let mut args = vec!["check", "--export", dir.to_str().unwrap()];
    if let Some(f) = filter {
        args.extend(["--filter", f]);
    }
    let (code, err) = common::run_binary(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        dir.join("index.html").is_file() && dir.join("cases.js").is_file(),
        "{err}"
    );
    dir
}

/// Replay `dir` in headless Chromium; the page's report.
fn replay(browser: &str, dir: &Path, name: &str) -> Value {
    let (port, results) = serve(dir.to_path_buf());
    let profile = tmp(&format!("{name}-profile"));
    let child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--enable-unsafe-webgpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            &format!("http://127.0.0.1:{port}/index.html?post"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let _browser = Browser(child);
    let body = results
        .recv_timeout(Duration::from_secs(900))
        .expect("the page posted its results within 15 minutes");
    let _ = std::fs::remove_dir_all(&profile);
    let report: Value = serde_json::from_str(&body).expect("the page posts JSON");
    assert!(
        report["fatal"].is_null(),
        "the page could not run: {report}"
    );
    report
}

fn case<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the report"))
}

/// Rewrite the bundle of case `name` in `dir` with `f`.
fn tamper(dir: &Path, name: &str, f: impl FnOnce(&mut Value)) {
    let index = std::fs::read_to_string(dir.join("cases.js")).unwrap();
    let json = &index[index.find('(').unwrap() + 1..index.rfind(')').unwrap()];
    let index: Value = serde_json::from_str(json).unwrap();
    let file = index["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["file"].as_str())
        .unwrap_or_else(|| panic!("{name} has no bundle"));
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let json = &text[text.find('(').unwrap() + 1..text.rfind(')').unwrap()];
    let mut bundle: Value = serde_json::from_str(json).unwrap();
    f(&mut bundle);
    std::fs::write(&path, format!("symcloneCase({bundle});\n")).unwrap();
}

fn summary(report: &Value) -> String {
    let bad: Vec<String> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| format!("{}: {} {}", c["name"], c["status"], c["detail"]))
        .collect();
    format!("{}\n{}", report["summary"], bad.join("\n"))
}

#[test]
fn every_exported_case_passes_in_chromium_webgpu_and_a_wrong_one_is_caught() {
    let Some(browser) = chromium() else { return };

    // A wrong reference and a kernel that does not compile, each on a case of its own.
    let dir = export("tampered", Some("elementwise"));
    tamper(&dir, "elementwise/mul n70001", |b| {
        use base64::Engine;
        let e = base64::engine::general_purpose::STANDARD;
        let want = b["outputs"][0]["want"].as_str().unwrap();
        let mut bytes = e.decode(want).unwrap();
        let v = f64::from_le_bytes(bytes[..8].try_into().unwrap());
        bytes[..8].copy_from_slice(&(v + 1.0 + v.abs()).to_le_bytes());
        b["outputs"][0]["want"] = e.encode(bytes).into();
    });
    tamper(&dir, "elementwise/affine n70001", |b| {
        let src = b["kernels"][0]["wgsl"].as_str().unwrap().to_string();
        b["kernels"][0]["wgsl"] = format!("{src}\nfn broken( {{").into();
    });
    let report = replay(browser, &dir, "tampered");
    let s = summary(&report);
    assert_eq!(
        case(&report, "elementwise/mul n70001")["status"],
        "FAIL",
        "{s}"
    );
    let affine = case(&report, "elementwise/affine n70001");
    assert_eq!(affine["status"], "error", "{s}");
    assert!(
        affine["detail"]
            .as_str()
            .unwrap()
            .contains("does not compile"),
        "{s}"
    );
    assert_eq!(
        report["passed"],
        report["cases"].as_array().unwrap().len() - 2,
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Every case, untouched.
    let dir = export("all", None);
    let report = replay(browser, &dir, "all");
    let s = summary(&report);
    println!("{s}");
    let cases = report["cases"].as_array().unwrap().len();
    assert!(cases >= 100, "{s}");
    assert_eq!(report["failed"], 0, "{s}");
    assert_eq!(report["errors"], 0, "{s}");
    assert_eq!(report["passed"], cases, "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_into_an_unwritable_or_full_folder_is_one_line_and_writes_nothing() {
    // A folder that is not empty.
    let full = tmp("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let (code, err) = common::run_binary(&[
        "check",
        "--export",
        full.to_str().unwrap(),
        "--filter",
        "axpby",
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1, "{err}");

    // Under a file, where no folder can be made.
    let (code, err) = common::run_binary(&[
        "check",
        "--export",
        full.join("keep.txt/sub").to_str().unwrap(),
        "--filter",
        "axpby",
    ]);
    assert_ne!(code, 0, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot write"), "{err}");

    // --limits adapter does not go with --export.
    let (code, err) = common::run_binary(&[
        "--limits",
        "adapter",
        "check",
        "--export",
        tmp("limits").to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("WebGPU's default limits"), "{err}");
    assert!(!tmp("limits").exists());
    let _ = std::fs::remove_dir_all(&full);
}
