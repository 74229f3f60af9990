//! Sweeps through the binary: planning (stable hashes, bad grids), a local sweep merged into one
//! report (a held cell left alone, a corrupt cell named and left out), the SLURM job script, and
//! a real single-node SLURM cluster (scripts/slurm-test-cluster.sh): submit, cancel one array task
//! mid-run, resume, and merge to the same numbers as an uninterrupted local sweep.
//! Over 600 lines: one local sweep and one SLURM cluster each serve a sequence of steps that
//! build on one another (held, corrupt, failed, planted link, completed), so they stay together.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use symclone::config::RunConfig;
use symclone::sweep::SweepReport;

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("symclone-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The binary with `args` (and extra environment); (exit status, stdout, stderr).
fn bin(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, out, err) = bin(args, env);
    assert_eq!(code, 0, "{args:?} failed:\n{out}\n{err}");
    out
}

/// The one line the program printed for a refused input (drivers may print their own noise).
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, _, err) = bin(args, env);
    assert_eq!(code, 1, "{args:?} was not refused: {err}");
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("symclone-gpu:"))
        .collect();
    assert_eq!(ours.len(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    ours[0].to_string()
}

/// A base configuration that runs in seconds on a CPU driver: one task, a plain and a cloned
/// model (so a cell has a cloning phase and a training phase), tiny sizes.
fn tiny_base(dir: &Path) -> PathBuf {
    let mut c = RunConfig::preset("quick").unwrap();
    c.tasks.truncate(1);
    c.tasks[0].models = vec![
        symclone::models::ModelKind::Gcnn,
        symclone::models::ModelKind::FauxGcnn,
        symclone::models::ModelKind::FauxGcnnKl,
    ];
    c.tasks[0].train.epochs = 1;
    c.tasks[0].train.batch = 64;
    c.train_n = Some(192);
    c.test_n = Some(64);
    c.channels = Some([2, 2, 3, 3]);
    c.mlp = Some(vec![16]);
    c.clone.iters = 6;
    c.clone.retries = 0;
    c.clone.filters = 2;
    c.clone.batch = 4;
    c.clone.batch_p4 = 2;
    let p = dir.join("base.json");
    std::fs::write(&p, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    p
}

/// 2 seeds × 2 values of nb on the tiny base.
fn tiny_grid(dir: &Path, nb: [usize; 2]) -> PathBuf {
    tiny_base(dir);
    let p = dir.join("grid.json");
    let g = json!({"base": "base.json", "grid": {"seed": [0, 1], "clone.nb": nb}});
    std::fs::write(&p, g.to_string()).unwrap();
    p
}

fn index(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("sweep.json")).unwrap()).unwrap()
}

fn hashes(dir: &Path) -> Vec<String> {
    index(dir)["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hash"].as_str().unwrap().to_string())
        .collect()
}

fn merged(dir: &Path) -> SweepReport {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn planning_is_stable_and_bad_grids_are_refused() {
    let d = tmp("plan");
    let grid = tiny_grid(&d, [8, 9]);
    let out = d.join("sweep");
    let (g, o) = (grid.to_str().unwrap(), out.to_str().unwrap());
    ok(&["sweep", "plan", "--grid", g, "--out", o], &[]);
    let first = hashes(&out);
    assert_eq!(first.len(), 4);
    for h in &first {
        let cfg = out.join("cells").join(h).join("config.json");
        let c = RunConfig::base("", Some(&cfg)).unwrap();
        assert_eq!(symclone::sweep::hash(&c), *h);
    }
    // Planned again: the same cells.
    ok(&["sweep", "plan", "--grid", g, "--out", o], &[]);
    assert_eq!(hashes(&out), first);
    // One value changed (nb 9 → 7): the nb = 8 cells keep their hashes, the others change.
    // Planned over this sweep it would drop the nb = 9 cells from its index: refused, the index
    // kept; planned into a folder of its own it is the grid's sweep.
    let index_before = std::fs::read(out.join("sweep.json")).unwrap();
    let grid2 = tiny_grid(&d, [8, 7]);
    let e = refused(
        &[
            "sweep",
            "plan",
            "--grid",
            grid2.to_str().unwrap(),
            "--out",
            o,
        ],
        &[],
    );
    assert!(
        e.contains("is a sweep of another grid") && e.contains("2 of its 4 cells"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join("sweep.json")).unwrap(), index_before);
    let out2 = d.join("sweep-nb7");
    ok(
        &[
            "sweep",
            "plan",
            "--grid",
            grid2.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
        ],
        &[],
    );
    let second = hashes(&out2);
    assert_eq!(second[..2], first[..2]);
    assert!(second[2..].iter().all(|h| !first.contains(h)));
    assert_eq!(
        index(&out2)["cells"][2]["values"],
        json!({"clone.nb": 7, "seed": 0})
    );
    tiny_grid(&d, [8, 9]);

    // A cell folder that holds another grid's configuration is refused, naming it.
    let foreign = out.join("cells").join(&first[0]).join("config.json");
    let mut other = RunConfig::base("", Some(&foreign)).unwrap();
    other.train_n = Some(100);
    std::fs::write(&foreign, serde_json::to_string_pretty(&other).unwrap()).unwrap();
    let e = refused(&["sweep", "plan", "--grid", g, "--out", o], &[]);
    assert!(
        e.contains("belongs to another grid") && e.contains(&first[0]),
        "{e}"
    );
    let st = ok(&["sweep", "status", o], &[]);
    assert!(
        st.contains("corrupt") && st.contains("belongs to another grid"),
        "{st}"
    );

    // Bad grids: one line naming the problem and the fix.
    let bad = |name: &str, g: Value, want: &str| {
        let p = d.join(name);
        std::fs::write(&p, g.to_string()).unwrap();
        let o = d.join(format!("{name}-out"));
        let e = refused(
            &[
                "sweep",
                "plan",
                "--grid",
                p.to_str().unwrap(),
                "--out",
                o.to_str().unwrap(),
            ],
            &[],
        );
        assert!(e.contains(want), "{name}: {e}");
        assert!(!o.exists(), "{name}: a refused grid wrote {}", o.display());
    };
    bad(
        "unknown",
        json!({"base": "quick", "grid": {"clone.nbb": [8]}}),
        "unknown key 'clone.nbb'",
    );
    bad(
        "empty",
        json!({"base": "quick", "grid": {"seed": []}}),
        "grid key 'seed' has an empty list",
    );
    bad(
        "type",
        json!({"base": "quick", "grid": {"clone.nb": ["8"]}}),
        "grid key 'clone.nb': the value \"8\" does not fit",
    );
    bad(
        "range",
        json!({"base": "quick", "grid": {"clone.nb": [0]}}),
        "clone blocks 0",
    );
    bad(
        "field",
        json!({"base": "quick", "grids": {"seed": [0]}}),
        "unknown field `grids`",
    );
    bad(
        "base",
        json!({"base": "nowhere.json", "grid": {"seed": [0]}}),
        "grid base 'nowhere.json': no such preset",
    );
    let e = refused(&["sweep", "status", d.join("none").to_str().unwrap()], &[]);
    assert!(
        e.contains("no sweep here") && e.contains("sweep plan"),
        "{e}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_job_script_has_every_flag_and_sbatch_missing_is_one_line() {
    let d = tmp("script");
    let out = planned(&d, &[]);
    let o = out.to_str().unwrap();
    let printed = ok(
        &[
            "sweep",
            "run",
            o,
            "--executor",
            "slurm",
            "--partition",
            "gpu",
            "--time",
            "1:00:00",
            "--gpus",
            "2",
            "--throttle",
            "3",
            "--dry-run",
        ],
        &[],
    );
    assert!(
        printed.contains("sbatch --parsable --array=0-3%3"),
        "{printed}"
    );
    let s = std::fs::read_to_string(out.join("sweep.sbatch")).unwrap();
    for want in [
        "#SBATCH --array=0-3%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=1:00:00",
        "#SBATCH --gres=gpu:2",
        "/logs/%A_%a.log",
        "run --config \"$cell/config.json\" --out \"$cell\" --resume",
    ] {
        assert!(s.contains(want), "sweep.sbatch lacks {want}:\n{s}");
    }
    assert!(!out.join("slurm.json").exists(), "--dry-run submitted");
    // No sbatch on PATH.
    let e = refused(
        &["sweep", "run", o, "--executor", "slurm"],
        &[("PATH", "/nonexistent")],
    );
    assert!(
        e.contains("sbatch is not installed") && e.contains("--executor local"),
        "{e}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// The tiny grid (nb 8 and 9) written in `dir` and planned into `dir/sweep`, which is returned.
fn planned(dir: &Path, env: &[(&str, &str)]) -> PathBuf {
    let grid = tiny_grid(dir, [8, 9]);
    let out = dir.join("sweep");
    let (g, o) = (grid.to_str().unwrap(), out.to_str().unwrap());
    ok(&["sweep", "plan", "--grid", g, "--out", o], env);
    out
}

/// Run a local sweep of the tiny grid in `dir` and merge it.
fn local_sweep(dir: &Path) -> SweepReport {
    let out = planned(dir, &[]);
    let o = out.to_str().unwrap();
    ok(&["sweep", "run", o], &[]);
    ok(&["report", o], &[]);
    merged(&out)
}

#[test]
fn a_local_sweep_merges_and_names_held_and_corrupt_cells() {
    let d = tmp("local");
    let r = local_sweep(&d);
    let out = d.join("sweep");
    let o = out.to_str().unwrap();
    assert_eq!((r.cells_merged, r.cells_total), (4, 4));
    // symmetric × {gcnn, faux-gcnn, faux-gcnn-kl} × nb ∈ {8, 9}, each over seeds 0 and 1 with
    // an interval, and with the symmetry its networks kept: the blocks' common shift for the KL
    // model only.
    assert_eq!(r.rows.len(), 6, "{:#?}", r.rows);
    for row in &r.rows {
        assert_eq!(row.seeds, vec![0, 1]);
        assert!(row.ci95.is_some());
        assert!(row.setting.contains_key("clone.nb") && !row.setting.contains_key("seed"));
        let s = row.symmetry.as_ref().expect("symmetry measured");
        assert_eq!(s.layer_equivariance.len(), 4);
        let kl = row.model == symclone::models::ModelKind::FauxGcnnKl;
        assert_eq!(s.blocks_common_share.is_some(), kl, "{row:?}");
        assert!(s
            .blocks_common_share
            .is_none_or(|c| (0.0..=1.0).contains(&c)));
    }
    assert!(out.join("sweep-clone-nb.svg").is_file());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("95 % CI") && md.contains("clone.nb"), "{md}");
    assert!(md.contains("Symmetry kept, over seeds"), "{md}");
    let st = ok(&["sweep", "status", o], &[]);
    assert!(st.contains("4 cells: 4 done"), "{st}");

    // A second sweep that fixes a value the first left at the base's (β), merged with it: its
    // cell is a setting of its own, not a third seed of the first sweep's nb = 8 rows.
    let g2 = d.join("grid2.json");
    let grid2 = json!({"base": "base.json", "fixed": {"tasks.0.train.beta": 1.0},
                       "grid": {"seed": [0], "clone.nb": [8]}});
    std::fs::write(&g2, grid2.to_string()).unwrap();
    let out2 = d.join("sweep2");
    let o2 = out2.to_str().unwrap();
    ok(
        &["sweep", "plan", "--grid", g2.to_str().unwrap(), "--out", o2],
        &[],
    );
    ok(&["sweep", "run", o2], &[]);
    let both = d.join("both");
    ok(&["report", o, o2, "--out", both.to_str().unwrap()], &[]);
    let m = merged(&both);
    assert_eq!(m.cells_merged, 5);
    assert!(
        m.keys.contains(&"tasks.0.train.beta".to_string()),
        "{:?}",
        m.keys
    );
    assert_eq!(m.rows.len(), 9, "{:#?}", m.rows);
    for row in &m.rows {
        let beta = row.setting["tasks.0.train.beta"].as_f64().unwrap();
        let want: Vec<u64> = if beta == 1.0 { vec![0] } else { vec![0, 1] };
        assert_eq!(row.seeds, want, "{row:?}");
    }

    // A cell held by another process is left alone by the executor and shown as running.
    let h = hashes(&out);
    let cell0 = out.join("cells").join(&h[0]);
    std::fs::remove_file(cell0.join("report.json")).unwrap();
    let lock = symclone::files::FolderLock::acquire(&cell0).unwrap();
    let me = format!("process {}", std::process::id());
    let st = ok(&["sweep", "status", o], &[]);
    assert!(st.contains("running") && st.contains(&me), "{st}");
    let ran = ok(&["sweep", "run", o], &[]);
    assert!(
        ran.contains(&format!("cell 0: left alone, held by {me}")),
        "{ran}"
    );
    assert!(
        !cell0.join("report.json").exists(),
        "a held cell was written"
    );
    drop(lock);
    let st = ok(&["sweep", "status", o], &[]);
    assert!(st.contains("stopped"), "{st}");

    // A half-written report is named by status and report, and never merged.
    let cell1 = out.join("cells").join(&h[1]);
    let text = std::fs::read(cell1.join("report.json")).unwrap();
    std::fs::write(cell1.join("report.json"), &text[..text.len() / 2]).unwrap();
    let st = ok(&["sweep", "status", o], &[]);
    assert!(
        st.contains("corrupt") && st.contains("not a complete report"),
        "{st}"
    );
    let (code, _, err) = bin(&["report", o], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("left out:") && err.contains(&h[1]), "{err}");
    let r2 = merged(&out);
    assert_eq!(r2.cells_merged, 2);
    assert_eq!(r2.left_out.len(), 1);
    assert!(r2.left_out[0].contains(&h[1]), "{:?}", r2.left_out);
    assert!(std::fs::read_to_string(out.join("report.md"))
        .unwrap()
        .contains("Cells left out"));
    // A cell that fails in this process (a file where its clones folder belongs) is "failed"
    // with the error, not "not started" or "stopped" (the same run completes the stopped cell 0).
    for sub in ["clones", "models", "report.json"] {
        let p = cell1.join(sub);
        let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
    }
    std::fs::write(cell1.join("clones"), "in the way").unwrap();
    let (code, _, err) = bin(&["sweep", "run", o], &[]);
    assert_eq!(code, 1, "{err}");
    let st = ok(&["sweep", "status", o], &[]);
    let line = st.lines().find(|l| l.contains(&h[1])).unwrap_or_default();
    assert!(
        line.contains(" failed ") && line.contains("File exists"),
        "{st}"
    );
    std::fs::remove_file(cell1.join("clones")).unwrap();
    // A cell whose run fails is named "failed" with the last line of its log.
    let (code, _, err) = bin(
        &[
            "--adapter",
            "no-such-card",
            "sweep",
            "run",
            o,
            "--jobs",
            "1",
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    let st = ok(&["sweep", "status", o], &[]);
    assert!(
        st.contains(" failed ") && st.contains("no-such-card"),
        "{st}"
    );
    // A link planted at a cell's log is not followed: the file it points to stays as it was.
    let outside = d.join("outside.txt");
    std::fs::write(&outside, "mine").unwrap();
    let planted = out.join("logs").join(format!("local-{}.log", h[1]));
    let _ = std::fs::remove_file(&planted);
    std::os::unix::fs::symlink(&outside, &planted).unwrap();
    let (code, _, err) = bin(&["sweep", "run", o, "--jobs", "2"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("a log file is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "mine");
    std::fs::remove_file(&planted).unwrap();
    // Child processes complete it (each logging to logs/local-<hash>.log), and the merge gives
    // the first numbers again.
    let ran = ok(&["sweep", "run", o, "--jobs", "2"], &[]);
    assert!(ran.contains("3 cells done before, 1 run"), "{ran}");
    assert!(out
        .join("logs")
        .join(format!("local-{}.log", h[1]))
        .is_file());
    ok(&["report", o], &[]);
    assert_eq!(merged(&out).rows, r.rows);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A SLURM cluster started for one test, stopped (by the daemons' own process ids) when dropped.
struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    /// Start one, or None (printing why) when SLURM is not installed or cannot start and CI is
    /// not set; with CI set, failing to start fails the test.
    fn start() -> Option<Cluster> {
        let dir = tmp("slurm");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm-test-cluster.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .arg(&dir)
            .output();
        let why = match &out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                if let Some(conf) = text.lines().find_map(|l| l.strip_prefix("SLURM_CONF=")) {
                    return Some(Cluster {
                        dir,
                        conf: conf.to_string(),
                    });
                }
                "the script printed no SLURM_CONF".to_string()
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(&dir)
            .status();
        if std::env::var_os("CI").is_some() {
            panic!("CI is set and the SLURM test cluster did not start: {why}");
        }
        println!("skipped: no SLURM test cluster here ({why}); CI=1 makes this a failure");
        None
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("SLURM_CONF", self.conf.as_str())]
    }

    /// `squeue`'s lines for job `id` (array tasks one per line: "ID_TASK STATE").
    fn queue(&self, id: &str) -> Vec<String> {
        let out = Command::new("squeue")
            .args(["--noheader", "--array", "--format=%i %T", "--jobs", id])
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn wait_empty(&self, id: &str) {
        let t = Instant::now();
        while !self.queue(id).is_empty() {
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "job {id} still queued after 10 minutes"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm-test-cluster.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn job_id(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no job id in {printed}"))
        .to_string()
}

#[test]
fn a_slurm_sweep_survives_a_cancelled_task_and_matches_a_local_sweep() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let t0 = Instant::now();
    let env = cluster.env();
    let d = tmp("on-slurm");
    let out = planned(&d, &env);
    let o = out.to_str().unwrap();
    // sbatch refusing the job is one line naming it.
    let e = refused(
        &[
            "sweep",
            "run",
            o,
            "--executor",
            "slurm",
            "--gpus",
            "0",
            "--partition",
            "nosuch",
        ],
        &env,
    );
    assert!(
        e.contains("sbatch refused the job") && e.contains("--partition"),
        "{e}"
    );

    // One cell at a time; cancel array task 1 once its cloning phase is written.
    let printed = ok(
        &[
            "sweep",
            "run",
            o,
            "--executor",
            "slurm",
            "--gpus",
            "0",
            "--throttle",
            "1",
        ],
        &env,
    );
    let id = job_id(&printed);
    let h = hashes(&out);
    let cell1 = out.join("cells").join(&h[1]);
    let t = Instant::now();
    while !cell1.join("clones").join("lift16.json").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "cell 1 never started cloning"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = ok(&["sweep", "status", o], &env);
    assert!(st.contains("[slurm: running]"), "{st}");
    let c = Command::new("scancel")
        .arg(format!("{id}_1"))
        .env("SLURM_CONF", &cluster.conf)
        .status()
        .unwrap();
    assert!(c.success());
    cluster.wait_empty(&id);
    assert!(
        !cell1.join("report.json").exists(),
        "cell 1 finished before it was cancelled: the test needs it stopped mid-run"
    );
    let st = ok(&["sweep", "status", o], &env);
    assert!(st.contains("4 cells: 3 done, 1 stopped"), "{st}");
    let part = ok(&["report", o], &env);
    assert!(part.contains("merged 3 of 4 cells"), "{part}");

    // Resume submits only the stopped cell.
    let printed = ok(&["sweep", "resume", o], &env);
    assert!(printed.contains("--array=1%1"), "{printed}");
    assert!(
        printed.contains("3 cells done before, 1 submitted"),
        "{printed}"
    );
    cluster.wait_empty(&job_id(&printed));
    let st = ok(&["sweep", "status", o], &env);
    assert!(st.contains("4 cells: 4 done"), "{st}");
    ok(&["report", o], &env);
    let on_slurm = merged(&out);
    let slurm_s = t0.elapsed().as_secs_f64();

    // The same grid, uninterrupted, in this machine's process: the same numbers.
    let local_dir = tmp("on-slurm-local");
    let local = local_sweep(&local_dir);
    assert_eq!(on_slurm.rows, local.rows);
    assert_eq!(on_slurm.cells_merged, 4);
    println!(
        "SLURM scenario: {slurm_s:.1} s (submit, cancel, resume, merge); local sweep: {:.1} s",
        t0.elapsed().as_secs_f64() - slurm_s
    );
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::remove_dir_all(&local_dir).unwrap();
}
