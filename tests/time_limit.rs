//! `run --time-limit`: a run stopped by its wall-clock limit keeps what it finished, writes the
//! report of what is done (marked incomplete), and `run --resume` goes on from there to the same
//! results a run without a limit gives.

mod common;
use common::run_binary as run;

fn report(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

fn accuracies(r: &serde_json::Value) -> Vec<f64> {
    r["results"][0]["test_acc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn a_run_stopped_by_its_time_limit_reports_what_is_done_and_resumes() {
    let dir = std::env::temp_dir().join(format!("symclone-time-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.to_str().unwrap();
    // One small model over many seeds, no clones: the limit falls between two seeds.
    let args = [
        "run",
        "--tasks",
        "symmetric",
        "--models",
        "mlp",
        "--train-n",
        "100",
        "--test-n",
        "100",
        "--epochs",
        "1",
        "--seeds",
        "200",
        "--out",
        out,
    ];
    let mut first = args.to_vec();
    first.extend(["--time-limit", "4s"]);
    let (code, err) = run(&first);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the time limit was reached"), "{err}");
    let r = report(&dir);
    assert!(
        r["incomplete"].as_str().unwrap().contains("time limit"),
        "{r}"
    );
    let done = accuracies(&r);
    assert!(
        !done.is_empty() && done.len() < 200,
        "{} of 200 seeds in the stopped run's report",
        done.len()
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("**Incomplete:**"), "{md}");

    let mut again = args.to_vec();
    again.push("--resume");
    let (code, err) = run(&again);
    assert_eq!(code, 0, "{err}");
    let r = report(&dir);
    assert!(r["incomplete"].is_null(), "{r}");
    let all = accuracies(&r);
    assert_eq!(all.len(), 200);
    // The finished seeds were reused, and the others trained as a run without a limit would.
    assert_eq!(all[..done.len()], done[..]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_time_limit_reached_while_cloning_reports_the_clones_done() {
    let dir = std::env::temp_dir().join(format!("symclone-time-clone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, err) = run(&[
        "run",
        "--tasks",
        "symmetric",
        "--models",
        "faux-gcnn",
        "--train-n",
        "100",
        "--test-n",
        "100",
        "--clone-iters",
        "1000000",
        "--time-limit",
        "3s",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = report(&dir);
    assert!(
        r["incomplete"].as_str().unwrap().contains("during cloning"),
        "{r}"
    );
    assert_eq!(r["results"].as_array().unwrap().len(), 0, "{r}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_time_limit_is_one_line() {
    for bad in ["0", "ten", "1h30", "5d"] {
        let (code, err) = run(&["run", "--time-limit", bad, "--out", "/nonexistent/x"]);
        assert_eq!(code, 1, "{bad}: {err}");
        let ours: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("symclone-gpu:"))
            .collect();
        assert_eq!(ours.len(), 1, "{bad}: {err}");
        assert!(ours[0].contains("duration"), "{bad}: {err}");
    }
}
