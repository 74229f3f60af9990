//! The report a person reads, from a tiny run of the binary with stderr in a file: progress lines
//! and no error line on stderr; `report DIR` rebuilding the same report from report.json alone;
//! report.html rendered by a real headless browser (Debian's `chromium`: with CI set the test
//! needs it, without CI it skips with one line when it is missing).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use symclone::config::RunConfig;
use symclone::models::ModelKind;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_symclone-gpu"))
}

/// One tiny run for all tests here: the symmetric task, three models, two seeds, clones of a few
/// iterations; stderr goes to `stderr.txt` beside the run folder.
fn tiny_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("symclone-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = RunConfig::preset("quick").unwrap();
        c.tasks.retain(|t| t.task == "symmetric");
        c.tasks[0].models = vec![ModelKind::Gcnn, ModelKind::FauxGcnn, ModelKind::Mlp];
        c.tasks[0].train.epochs = 3;
        c.tasks[0].train.batch = 64;
        c.train_n = Some(192);
        c.test_n = Some(64);
        c.channels = Some([2, 2, 3, 3]);
        c.mlp = Some(vec![16]);
        c.seeds = 2;
        c.clone.iters = 6;
        c.clone.retries = 0;
        c.clone.filters = 2;
        let cfg = dir.join("config.json");
        std::fs::write(&cfg, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        let err = std::fs::File::create(dir.join("stderr.txt")).unwrap();
        let status = bin()
            .args(["run", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(dir.join("run"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .status()
            .unwrap();
        let log = std::fs::read_to_string(dir.join("stderr.txt")).unwrap();
        assert!(status.success(), "the tiny run failed:\n{log}");
        dir
    })
}

#[test]
fn stderr_in_a_file_gets_progress_lines_and_no_error_line() {
    let log = std::fs::read_to_string(tiny_run().join("stderr.txt")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    // No driver noise (Mesa's device-select layer and its XDG_RUNTIME_DIR line) and no errors.
    let bad: Vec<&&str> = lines
        .iter()
        .filter(|l| l.to_ascii_lowercase().contains("error:") || l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert!(bad.is_empty(), "error lines on stderr: {bad:?}\n{log}");
    // Each phase starts and ends with a line; progress lines carry a share, the loss, the speed
    // and an ETA.
    for phase in ["clone lift16", "clone p414", "gcnn on symmetric (seed 1)"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{phase}: started ("))),
            "no start line for {phase}:\n{log}"
        );
    }
    let progress = |what: &str| {
        lines
            .iter()
            .filter(|l| l.contains("%) ") && l.contains(what) && l.contains("/s"))
            .count()
    };
    assert!(progress("MSE ") >= 2, "no cloning progress lines:\n{log}");
    assert!(progress("loss ") >= 2, "no training progress lines:\n{log}");
    assert!(lines.iter().any(|l| l.contains(", ETA ")), "{log}");
    assert!(lines.iter().any(|l| l.contains("test accuracy")), "{log}");
    assert!(
        lines.last().is_some_and(|l| l.starts_with("done in ")),
        "{log}"
    );
}

#[test]
fn the_report_command_rebuilds_the_views_from_report_json_alone() {
    let run = tiny_run().join("run");
    let copy = tiny_run().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(run.join("report.json"), copy.join("report.json")).unwrap();
    let o = bin().arg("report").arg(&copy).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "report.md",
        "report.html",
        "clone-loss.svg",
        "training.svg",
        "accuracy.svg",
        "equivariance.svg",
        "feature-maps.svg",
    ] {
        let (a, b) = (std::fs::read(run.join(f)), std::fs::read(copy.join(f)));
        assert!(b.is_ok(), "report did not write {f}");
        assert!(a.unwrap() == b.unwrap(), "{f} differs from the run's");
    }
    // report.md links every figure as a file beside it.
    let md = std::fs::read_to_string(copy.join("report.md")).unwrap();
    assert!(md.contains("![Feature maps of the lift layer, true and cloned](feature-maps.svg)"));
    // A folder without report.json is one clear line.
    let o = bin()
        .arg("report")
        .arg(tiny_run().join("none"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("report.json"), "{err}");
    // A report.json claiming an accuracy of −500 % is refused in one line, not drawn.
    let bad = tiny_run().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    r["results"][0]["test_acc"][0] = serde_json::json!(-5.0);
    std::fs::write(bad.join("report.json"), r.to_string()).unwrap();
    let o = bin().arg("report").arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("test accuracy") && err.contains("not a fraction"),
        "{err}"
    );
    assert!(!bad.join("report.html").exists(), "{err}");
}

/// Every `data:image/png;base64,` image in the page decodes as a PNG (the feature maps).
fn embedded_pngs(html: &str) -> usize {
    use base64::Engine;
    let mut n = 0;
    for part in html.split("data:image/png;base64,").skip(1) {
        let b64 = &part[..part.find('"').unwrap()];
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("an embedded image is not a PNG");
        n += 1;
    }
    n
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(PathBuf::from)
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            !ci(),
            "CI is set and no chromium was found (apt-get install chromium)"
        );
        println!("skipping the browser test: no chromium (apt-get install chromium)");
        return;
    };
    let run = tiny_run().join("run");
    let page = run.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no scripts, nothing fetched (the SVG namespaces are names, not fetches).
    for pat in [
        "<script",
        "src=\"http",
        "href=\"http",
        "url(",
        "@import",
        "<link",
    ] {
        assert!(!html.contains(pat), "report.html has {pat}");
    }
    let url = format!("file://{}", page.display());
    let headless = |args: &[&str]| {
        Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(["--enable-logging=stderr", "--v=0"])
            .args(args)
            .arg(&url)
            .output()
            .unwrap()
    };
    // The DOM as the browser built it: every figure of report.md is there, each with its SVG.
    let dom = headless(&["--dump-dom"]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    let figures = md.matches("\n![").count();
    // Cloning loss, training, test accuracy, accuracy per rotation, per-layer equivariance, feature maps.
    assert_eq!(figures, 6, "{md}");
    assert_eq!(dom_text.matches("<figure").count(), figures, "{dom_text}");
    assert_eq!(
        dom_text.matches("<figure id=\"").count(),
        dom_text.matches("<figcaption>").count()
    );
    for f in dom_text.split("<figure").skip(1) {
        assert!(f.trim_start().contains("<svg"), "a figure without its SVG");
    }
    // The feature maps (4 input cells, 16 planes and a colour scale) decode as PNG.
    assert_eq!(embedded_pngs(&dom_text), 2 + 16 + 1);
    // No console message from the page.
    let log = String::from_utf8_lossy(&dom.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "{console:?}");
    // The screenshot: not blank, and the figures' colours are on it.
    let shot = tiny_run().join("report.png");
    let o = headless(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,7000",
    ]);
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::copy(
        &shot,
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png"),
    );
    let mut dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    let px: Vec<[f64; 3]> = buf[..info.buffer_size()]
        .chunks(ch)
        .map(|p| [p[0] as f64, p[1 % ch] as f64, p[2 % ch] as f64])
        .collect();
    assert_eq!((info.width, info.height), (1280, 7000));
    let mean = px.iter().map(|p| p[0] + p[1] + p[2]).sum::<f64>() / (3 * px.len()) as f64;
    let var = px
        .iter()
        .map(|p| ((p[0] + p[1] + p[2]) / 3.0 - mean).powi(2))
        .sum::<f64>()
        / px.len() as f64;
    assert!(
        var > 100.0,
        "the screenshot is nearly blank (variance {var:.1})"
    );
    // Pixels in the palette's blue (#0072b2: lines and bars) and viridis' yellow end (#fde725 or
    // near: the feature maps' colour scale).
    let near = |p: &[f64; 3], c: [f64; 3]| (0..3).all(|i| (p[i] - c[i]).abs() < 24.0);
    let blue = px.iter().filter(|p| near(p, [0.0, 114.0, 178.0])).count();
    let yellow = px.iter().filter(|p| near(p, [253.0, 231.0, 37.0])).count();
    assert!(blue > 2000, "only {blue} pixels of the figures' blue");
    assert!(
        yellow > 50,
        "only {yellow} pixels of the colour scale's yellow"
    );
}

/// `report RUN --readme PAGE` writes the run's summary between the page's marker lines: every
/// model's row and the claims' verdicts, the text around kept, the old block gone, the same page
/// when run again; a page without the markers, or two folders, are refused and nothing changes.
#[test]
fn the_report_command_quotes_a_run_in_a_page_between_its_markers() {
    use symclone::results::readme::{BEGIN, END};
    let run = tiny_run().join("run");
    let dir = tiny_run().join("quoted");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("page.md");
    std::fs::write(
        &page,
        format!("# Page\n\nbefore\n\n{BEGIN}\n\nstale numbers\n\n{END}\n\nafter\n"),
    )
    .unwrap();
    let quote = |dirs: &[&Path], page: &Path| {
        bin()
            .arg("report")
            .args(dirs)
            .arg("--readme")
            .arg(page)
            .output()
            .unwrap()
    };
    let o = quote(&[&run], &page);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(!text.contains("stale numbers"), "{text}");
    assert!(
        text.starts_with("# Page\n\nbefore\n\n") && text.ends_with(&format!("{END}\n\nafter\n"))
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    for m in r["results"].as_array().unwrap() {
        let row = format!(
            "| {} | {} | {:.2} ",
            m["task"].as_str().unwrap(),
            serde_json::from_value::<symclone::models::ModelKind>(m["model"].clone()).unwrap(),
            100.0 * m["mean"].as_f64().unwrap()
        );
        assert!(text.contains(&row), "no row {row} in\n{text}");
    }
    assert!(quote(&[&run], &page).status.success());
    assert_eq!(
        std::fs::read_to_string(&page).unwrap(),
        text,
        "a second run changed the page"
    );

    let plain = dir.join("plain.md");
    std::fs::write(&plain, "no markers here\n").unwrap();
    let o = quote(&[&run], &plain);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no block to write into"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&plain).unwrap(),
        "no markers here\n"
    );
    let o = quote(&[&run, &run], &page);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("one run folder"),
        "{err}"
    );
}
