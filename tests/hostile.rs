//! Hostile inputs against the binary: every one gives one line on stderr, a non-zero exit, no
//! panic, no hang, bounded memory, and leaves no file behind. One case per class of flaw: unbounded
//! reads, sizes trusted before checked, overflowing size arithmetic, NaN and nonsense accepted,
//! half-written files, two runs on one folder, sloppy messages. Unix only: it makes FIFOs and
//! symbolic links and reads the children's peak memory with getrusage.
//! Over 600 lines: every hostile case shares one harness (spawn, bound, check the one line), so
//! the classes stay in one file.
#![cfg(unix)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use symclone::config::RunConfig;
use symclone::data::idx;

fn temp_dir(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("symclone-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Run the binary with a deadline (a hang is a failure, not a stuck test); (status, stderr).
fn run(args: &[&str], deadline: Duration) -> (i32, String) {
    run_with(args, &[], None, deadline)
}

/// [`run`] with environment variables set and, when given, the child's umask.
fn run_with(
    args: &[&str],
    env: &[(&str, &str)],
    umask: Option<libc::mode_t>,
    deadline: Duration,
) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"));
    cmd.args(args).envs(env.iter().copied());
    if let Some(m) = umask {
        use std::os::unix::process::CommandExt;
        // SAFETY: umask is async-signal-safe and touches nothing but the child's mask.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(m);
                Ok(())
            });
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} hung: still running after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

/// The largest resident set of any child so far, in bytes.
fn children_max_rss() -> u64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss as u64 * 1024
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                v.extend(files_under(&p));
            }
            v.push(p);
        }
    }
    v
}

/// Run a bad input: exit 1, exactly one line of ours that contains every needle, no panic, no
/// raw escape byte, and `out` (the run's --out, when it has one) not created.
fn refused(args: &[&str], out: Option<&Path>, needles: &[&str]) -> String {
    refused_with(1, args, out, needles)
}

/// [`refused`] with another exit status (75: the folder is another process's).
fn refused_with(status: i32, args: &[&str], out: Option<&Path>, needles: &[&str]) -> String {
    let (code, err) = run(args, Duration::from_secs(120));
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("symclone-gpu:"))
        .collect();
    assert_eq!(code, status, "{args:?}: exit {code}, stderr:\n{err}");
    assert_eq!(ours.len(), 1, "{args:?}: expected one line, got:\n{err}");
    for n in needles {
        assert!(ours[0].contains(n), "{args:?}: {:?} lacks {n:?}", ours[0]);
    }
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    assert!(
        !err.contains('\u{1b}'),
        "{args:?} printed a raw escape:\n{err:?}"
    );
    // Nothing else of ours either (the GPU driver may add its own noise).
    assert!(
        !err.lines()
            .any(|l| l.starts_with("adapter:") || l.starts_with("writing to")),
        "{args:?} printed more than its error:\n{err}"
    );
    if let Some(o) = out {
        assert!(
            !o.exists(),
            "{args:?} left {} behind: {:?}",
            o.display(),
            files_under(o)
        );
    }
    ours[0].to_string()
}

fn images(n: usize) -> Vec<u8> {
    idx::encode_images(&idx::Images {
        n,
        h: 28,
        w: 28,
        pixels: (0..n * 784).map(|i| (i % 251) as u8).collect(),
    })
}

fn labels(n: usize) -> Vec<u8> {
    idx::encode_labels(&(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>())
}

/// A gzip file of `header` then `zeros` zero bytes, written as many small gzip members (one per
/// MiB; a reader must inflate them all as one stream): a few kilobytes on disk for gigabytes of
/// data.
fn gz_zeros(path: &Path, header: &[u8], zeros: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&idx::gzip(header)).unwrap();
    const MIB: u64 = 1 << 20;
    let member = idx::gzip(&vec![0u8; MIB as usize]);
    for _ in 0..zeros / MIB {
        f.write_all(&member).unwrap();
    }
    if !zeros.is_multiple_of(MIB) {
        f.write_all(&idx::gzip(&vec![0u8; (zeros % MIB) as usize]))
            .unwrap();
    }
}

fn be(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// A folder with the four standard names, good test files, and the given train files.
fn std_folder(dir: &Path, train_images: Option<&[u8]>, train_labels: Option<&[u8]>) {
    std::fs::create_dir_all(dir).unwrap();
    if let Some(b) = train_images {
        std::fs::write(dir.join("train-images-idx3-ubyte"), b).unwrap();
    }
    if let Some(b) = train_labels {
        std::fs::write(dir.join("train-labels-idx1-ubyte"), b).unwrap();
    }
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images(20)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels(20)).unwrap();
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Class 1: unbounded reads. A gzip bomb, a header declaring gigabytes, devices and FIFOs where
/// files belong, and an honest 2.35 GB file of which a run asks for 200 images.
#[test]
fn unbounded_reads_are_bounded() {
    let d = temp_dir("reads");
    let out = d.join("out");
    let o = s(&out);
    // A 300 MiB gzip bomb behind a header that promises 100 images (78,400 bytes).
    let bomb = d.join("bomb");
    std_folder(&bomb, None, Some(&labels(100)));
    gz_zeros(
        &bomb.join("train-images-idx3-ubyte"),
        &be(&[2051, 100, 28, 28]),
        300 << 20,
    );
    let t = Instant::now();
    refused(
        &["run", "--data", s(&bomb), "--out", o],
        Some(&out),
        &[
            "train-images-idx3-ubyte",
            "or more unexpected bytes after the 100 images of 28×28",
        ],
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // A header that declares 4·10⁹ images: refused before reading, naming the bound and the fix.
    let huge = d.join("huge");
    std_folder(&huge, None, Some(&labels(100)));
    gz_zeros(
        &huge.join("train-images-idx3-ubyte"),
        &be(&[2051, 4_000_000_000, 28, 28]),
        1 << 20,
    );
    refused(
        &["run", "--data", s(&huge), "--out", o],
        Some(&out),
        &["count mismatch"],
    );
    std::fs::write(
        huge.join("train-labels-idx1-ubyte"),
        idx::gzip(&be(&[2049, 4_000_000_000])),
    )
    .unwrap();
    refused(
        &["data", "--data", s(&huge), "--out", o],
        Some(&out),
        &[
            "more than the 1073741824 bytes one read may hold",
            "--train-n",
        ],
    );
    // Devices and FIFOs where a folder or a file belongs: refused at once, never read or waited on.
    refused(
        &["run", "--data", "/dev/zero", "--out", o],
        Some(&out),
        &["/dev/zero", "not a folder"],
    );
    refused(
        &["run", "--config", "/dev/zero", "--out", o],
        Some(&out),
        &["/dev/zero", "not a regular file"],
    );
    let fifo_dir = d.join("fifo");
    std_folder(&fifo_dir, None, Some(&labels(20)));
    mkfifo(&fifo_dir.join("train-images-idx3-ubyte"));
    refused(
        &["run", "--data", s(&fifo_dir), "--out", o],
        Some(&out),
        &["train-images-idx3-ubyte", "not a regular file"],
    );
    let fifo = d.join("config.fifo");
    mkfifo(&fifo);
    refused(
        &["run", "--config", s(&fifo), "--out", o],
        Some(&out),
        &["config.fifo", "not a regular file"],
    );
    let clones = d.join("clones-fifo");
    std::fs::create_dir_all(&clones).unwrap();
    mkfifo(&clones.join("lift16.safetensors"));
    refused(
        &[
            "finetune",
            "--model",
            "faux-gcnn",
            "--task",
            "symmetric",
            "--clones",
            s(&clones),
            "--out",
            o,
        ],
        Some(&out),
        &["lift16.safetensors", "not a regular file"],
    );
    assert!(
        children_max_rss() < 1 << 30,
        "a refused input took {} MB",
        children_max_rss() >> 20
    );
    // An honest 2.35 GB gzip file (3,000,000 images): --train-n 200 reads 200 of them.
    let honest = d.join("honest");
    std_folder(&honest, None, None);
    gz_zeros(
        &honest.join("train-images-idx3-ubyte"),
        &be(&[2051, 3_000_000, 28, 28]),
        3_000_000 * 784,
    );
    gz_zeros(
        &honest.join("train-labels-idx1-ubyte"),
        &be(&[2049, 3_000_000]),
        3_000_000,
    );
    let t = Instant::now();
    let (code, err) = run(
        &[
            "data",
            "--data",
            s(&honest),
            "--train-n",
            "200",
            "--test-n",
            "10",
            "--task",
            "plain",
            "--count",
            "4",
            "--out",
            o,
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "reading 200 images took {:?}",
        t.elapsed()
    );
    assert!(
        children_max_rss() < 1 << 30,
        "reading 200 images took {} MB",
        children_max_rss() >> 20
    );
    // Without --train-n the whole file is more than one read may hold: one line with the fix.
    std::fs::remove_dir_all(&out).unwrap();
    refused(
        &["data", "--data", s(&honest), "--out", o],
        Some(&out),
        &["more than the 1073741824 bytes", "--train-n"],
    );
    let _ = std::fs::remove_dir_all(&d);
}

fn config_json(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v = serde_json::to_value(RunConfig::preset("quick").unwrap()).unwrap();
    edit(&mut v);
    serde_json::to_vec_pretty(&v).unwrap()
}

/// A clone checkpoint with the given metadata and tensors (names, shapes, values).
fn clone_file(path: &Path, meta: &[(&str, &str)], tensors: &[(&str, Vec<usize>, f32)]) {
    use safetensors::tensor::{Dtype, TensorView};
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, sh, v)| {
            let k: usize = sh.iter().product();
            (
                n.to_string(),
                sh.clone(),
                bytemuck::cast_slice(&vec![*v; k]).to_vec(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, sh, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, sh.clone(), b).unwrap(),
            )
        })
        .collect();
    let meta = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

/// The tensors of a lift clone for d = 16 with nb = 10, m = 10, all holding `v`.
fn lift16(v: f32) -> Vec<(&'static str, Vec<usize>, f32)> {
    vec![
        ("lift16.blocks", vec![10, 196, 256], v),
        ("lift16.m1", vec![9, 10], v),
        ("lift16.m2", vec![90, 10], v),
        ("lift16.t", vec![36, 9], v),
    ]
}

fn finetune(clones: &Path, out: &str) -> Vec<String> {
    [
        "finetune",
        "--model",
        "faux-gcnn",
        "--task",
        "symmetric",
        "--clones",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([s(clones).to_string(), "--out".into(), out.into()])
    .collect()
}

/// Classes 2 and 3: sizes from a file, a config or a flag are checked (with checked arithmetic)
/// before anything is allocated.
#[test]
fn sizes_are_checked_before_allocation() {
    let d = temp_dir("sizes");
    let out = d.join("out");
    let o = s(&out);
    // An MLP width of 10⁹ in a config file.
    let cfg = d.join("wide.json");
    std::fs::write(
        &cfg,
        config_json(|v| v["mlp"] = serde_json::json!([1_000_000_000u64])),
    )
    .unwrap();
    refused(
        &["run", "--config", s(&cfg), "--out", o],
        Some(&out),
        &["mlp width 1000000000: use 1 to 65536"],
    );
    // Clone metadata that asks for m = 10¹²: refused naming the file, nothing allocated.
    let cl = d.join("clones-m");
    std::fs::create_dir_all(&cl).unwrap();
    clone_file(
        &cl.join("lift16.safetensors"),
        &[
            ("kind", "lift"),
            ("d", "16"),
            ("nb", "10"),
            ("m", "1000000000000"),
        ],
        &lift16(0.5),
    );
    let args = finetune(&cl, o);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        &args,
        Some(&out),
        &["lift16.safetensors", "got m = 1000000000000"],
    );
    // A side whose operator does not fit the adapter: the adapter's limit is named.
    std::fs::write(
        cl.join("lift16.safetensors"),
        std::fs::read(cl.join("lift16.safetensors")).unwrap(),
    )
    .unwrap();
    clone_file(
        &cl.join("lift16.safetensors"),
        &[("kind", "lift"), ("d", "500"), ("nb", "1024"), ("m", "10")],
        &lift16(0.5),
    );
    refused(
        &args,
        Some(&out),
        &["lift16.safetensors", "lift500.blocks needs", "limit"],
    );
    // Class 3: a side whose product overflows 64 bits, from the flag.
    refused(
        &["clone", "--dim", "4294967296", "--out", o],
        Some(&out),
        &["--dim 4294967296", "at most 512"],
    );
    refused(
        &["clone", "--dim", "18446744073709551615", "--out", o],
        Some(&out),
        &["at most 512"],
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Class 4: NaN and nonsense are refused at the start; a clone full of NaN is not loaded.
#[test]
fn nan_and_nonsense_are_refused() {
    let d = temp_dir("nan");
    let out = d.join("out");
    let o = s(&out);
    for (args, needle) in [
        (
            vec!["run", "--clone-lr-decay", "nan"],
            "--clone-lr-decay NaN",
        ),
        (vec!["run", "--clone-lr-decay", "0"], "--clone-lr-decay 0"),
        (
            vec!["run", "--clone-lr=-0.1"],
            "cloning learning rate (--clone-lr) -0.1",
        ),
        (
            vec!["run", "--clone-lr", "inf"],
            "cloning learning rate (--clone-lr) inf",
        ),
        (vec!["run", "--lr", "0"], "learning rate (--lr) 0"),
        (vec!["run", "--lr", "NaN"], "learning rate (--lr) NaN"),
        (vec!["run", "--clone-iters", "0"], "--clone-iters 0"),
        (vec!["clone", "--clone-iters", "0"], "--clone-iters 0"),
        (
            vec![
                "finetune",
                "--model",
                "faux-gcnn-kl",
                "--task",
                "rot-sb",
                "--clones",
                "/x",
                "--beta",
                "nan",
            ],
            "KL weight β (--beta) NaN",
        ),
        (
            vec![
                "finetune",
                "--model",
                "faux-gcnn-kl",
                "--task",
                "rot-sb",
                "--clones",
                "/x",
                "--beta=-1",
            ],
            "KL weight β (--beta) -1",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--out", o]);
        refused(&a, Some(&out), &[needle]);
    }
    // Negative clip and decay in a config file.
    let cfg = d.join("clip.json");
    std::fs::write(&cfg, config_json(|v| v["clone"]["clip"] = (-1.0).into())).unwrap();
    refused(
        &["run", "--config", s(&cfg), "--out", o],
        Some(&out),
        &["cloning gradient clip -1"],
    );
    // A clone file full of NaN (and one of infinities).
    for (v, what) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let cl = d.join(format!("clones-{what}"));
        std::fs::create_dir_all(&cl).unwrap();
        clone_file(
            &cl.join("lift16.safetensors"),
            &[("kind", "lift"), ("d", "16"), ("nb", "10"), ("m", "10")],
            &lift16(v),
        );
        let args = finetune(&cl, o);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(
            &args,
            Some(&out),
            &["lift16.safetensors", &format!("holds {what} at index 0")],
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Class 7: messages that say what the path is, name the file and the closest field, and show
/// text from files escaped.
#[test]
fn messages_say_what_is_wrong() {
    let d = temp_dir("messages");
    let out = d.join("out");
    let o = s(&out);
    // A directory or a symlink loop where an IDX file belongs; a file where a folder belongs.
    let dir = d.join("dir");
    std_folder(&dir, None, Some(&labels(20)));
    std::fs::create_dir_all(dir.join("train-images-idx3-ubyte")).unwrap();
    refused(
        &["data", "--data", s(&dir), "--out", o],
        Some(&out),
        &["train-images-idx3-ubyte", "is a directory"],
    );
    let lp = d.join("loop");
    std_folder(&lp, None, Some(&labels(20)));
    std::os::unix::fs::symlink(
        "train-images-idx3-ubyte",
        lp.join("train-images-idx3-ubyte"),
    )
    .unwrap();
    let m = refused(
        &["data", "--data", s(&lp), "--out", o],
        Some(&out),
        &["train-images-idx3-ubyte", "symbolic links"],
    );
    assert!(!m.contains("missing file"), "{m}");
    let file = d.join("file.bin");
    std::fs::write(&file, images(2)).unwrap();
    refused(
        &["run", "--data", s(&file), "--out", o],
        Some(&out),
        &["file.bin", "is a file, not a folder"],
    );
    // Unknown and misspelt config fields, empty lists.
    for (edit, needles) in [
        (
            Box::new(|v: &mut serde_json::Value| v["tasks"][0]["train"]["lrr"] = 0.1.into())
                as Box<dyn FnOnce(&mut serde_json::Value)>,
            &["unknown field \"lrr\"", "did you mean \"lr\"?"][..],
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["clone"]["iter"] = 5.into()),
            &["unknown field \"iter\"", "did you mean \"iters\"?"][..],
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["zzzzzz"] = 5.into()),
            &["unknown field \"zzzzzz\"", "the fields here are preset"][..],
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["tasks"] = serde_json::json!([])),
            &["runs no task"][..],
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["tasks"][1]["models"] = serde_json::json!([])),
            &["task rot-sb trains no model"][..],
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["tasks"][0]["task"] = "rot\u{1b}[2J".into()),
            &["unknown task 'rot\\u{1b}[2J'"][..],
        ),
    ] {
        let cfg = d.join("cfg.json");
        std::fs::write(&cfg, config_json(edit)).unwrap();
        refused(
            &["run", "--config", s(&cfg), "--out", o],
            Some(&out),
            needles,
        );
    }
    // Text from clone metadata is escaped, and every metadata error names the file.
    let cl = d.join("clones-esc");
    std::fs::create_dir_all(&cl).unwrap();
    let args = finetune(&cl, o);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for (meta, needle) in [
        (
            [
                ("kind", "\u{1b}[31mlift"),
                ("d", "16"),
                ("nb", "10"),
                ("m", "10"),
            ],
            "unknown operator kind \"\\u{1b}[31mlift\"",
        ),
        (
            [
                ("kind", "lift"),
                ("d", "1\u{7}6"),
                ("nb", "10"),
                ("m", "10"),
            ],
            "entry 'd' is \"1\\u{7}6\"",
        ),
        (
            [("kind", "lift"), ("d", "16"), ("nb", "0"), ("m", "10")],
            "got nb = 0",
        ),
        (
            [("kind", "lift"), ("d", "2"), ("nb", "10"), ("m", "10")],
            "got d = 2",
        ),
    ] {
        clone_file(&cl.join("lift16.safetensors"), &meta, &lift16(0.5));
        refused(&args, Some(&out), &["lift16.safetensors", needle]);
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Classes 5 and 6: atomic writes follow no planted path and leave nothing when they fail; a run
/// folder is held by one process, named to the second.
#[test]
fn writes_are_atomic_and_a_folder_has_one_writer() {
    use symclone::files::{write_atomic, FolderLock, LOCK_NAME};
    let d = temp_dir("atomic");
    // A symlink planted at the old fixed temporary name (and at a few others) is not followed.
    let victim = d.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let target = d.join("config.json");
    for name in ["config.json.tmp", ".config.json.tmp"] {
        std::os::unix::fs::symlink(&victim, d.join(name)).unwrap();
    }
    write_atomic(&target, b"{}").unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(std::fs::read(&target).unwrap(), b"{}");
    // A failed rename (the target is a non-empty folder) leaves no temporary file.
    let blocked = d.join("blocked");
    std::fs::create_dir_all(blocked.join("inside")).unwrap();
    assert!(write_atomic(&blocked, b"data").is_err());
    // A failed create (the parent is a file) names the path.
    let e = write_atomic(&victim.join("x"), b"data")
        .unwrap_err()
        .to_string();
    assert!(e.contains("victim"), "{e}");
    let left: Vec<_> = files_under(&d)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp") && !p.is_symlink())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Two writers of one folder: the second is refused with the first's process id, and exit
    // status 75 (try again later: a sweep counts the cell as held, not failed).
    let run_dir = d.join("run");
    let lock = FolderLock::acquire(&run_dir).unwrap();
    let e = FolderLock::acquire(&run_dir).err().unwrap().to_string();
    assert!(
        e.contains(&format!("process {}", std::process::id())),
        "{e}"
    );
    let m = refused_with(
        75,
        &[
            "clone",
            "--kind",
            "z2",
            "--dim",
            "5",
            "--clone-iters",
            "1",
            "--out",
            s(&run_dir),
        ],
        None,
        &[&format!(
            "process {} is writing to this folder",
            std::process::id()
        )],
    );
    assert!(m.contains("--out"), "{m}");
    // Nothing was written by the refused run: the folder holds only the lock file.
    let mut names: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".symclone-kind", LOCK_NAME]);
    drop(lock);
    assert!(!run_dir.join(LOCK_NAME).exists());
    // Released: the next writer gets it.
    drop(FolderLock::acquire(&run_dir).unwrap());
    // A link planted at the lock file is not followed: the file outside stays as it was, and
    // the binary refuses the folder with one line. A FIFO there is refused without blocking.
    let planted = d.join("planted");
    std::fs::create_dir_all(&planted).unwrap();
    std::os::unix::fs::symlink(&victim, planted.join(LOCK_NAME)).unwrap();
    let e = FolderLock::acquire(&planted).err().unwrap().to_string();
    assert!(e.contains("symbolic link"), "{e}");
    refused(
        &[
            "clone",
            "--kind",
            "z2",
            "--dim",
            "5",
            "--clone-iters",
            "1",
            "--out",
            s(&planted),
        ],
        None,
        &["lock file is a symbolic link"],
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // A link planted at a folder the run writes into (its clones) is not followed either: the
    // folder it names stays empty.
    let linked = d.join("linked");
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, linked.join("clones")).unwrap();
    let (code, err) = run(
        &[
            "clone",
            "--kind",
            "z2",
            "--dim",
            "8",
            "--clone-iters",
            "1",
            "--out",
            s(&linked),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("clones: a symbolic link inside"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    let fifo = d.join("fifo");
    std::fs::create_dir_all(&fifo).unwrap();
    let c = std::ffi::CString::new(fifo.join(LOCK_NAME).to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = FolderLock::acquire(&fifo).err().unwrap().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A configuration, a grid and the flags are normalised before any work: the same (task, model)
/// twice, counts past their bounds and flags the command does not use are refused with one line;
/// what `tune` says is what happened.
#[test]
fn configurations_are_normalised_and_statuses_say_what_happened() {
    let d = temp_dir("normalised");
    let out = d.join("out");
    let o = s(&out);
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // The same model twice on one task (another lr): one checkpoint name, two rows.
    let twice = write(
        "twice.json",
        &config_json(|v| {
            let t = v["tasks"][0].clone();
            let mut t2 = t.clone();
            t2["train"]["lr"] = serde_json::json!(0.5);
            v["tasks"] = serde_json::json!([t, t2]);
        }),
    );
    refused(
        &["run", "--config", s(&twice), "--out", o],
        Some(&out),
        &["listed twice for task"],
    );
    // Counts past their bounds: epochs 2^64 − 1 in a file, a mixer 100,000 blocks deep.
    let forever = write(
        "forever.json",
        &config_json(|v| v["tasks"][0]["train"]["epochs"] = serde_json::json!(u64::MAX)),
    );
    refused(
        &["run", "--config", s(&forever), "--out", o],
        Some(&out),
        &["--epochs", "at most"],
    );
    refused(
        &[
            "clone",
            "--kind",
            "mixer-conv",
            "--mixer-depth",
            "100000",
            "--out",
            o,
        ],
        Some(&out),
        &["--mixer-depth 100000", "at most 64"],
    );
    // Flags the kind does not use.
    refused(
        &[
            "clone",
            "--kind",
            "mixer-conv",
            "--blocks",
            "9",
            "--epochs",
            "3",
            "--out",
            o,
        ],
        Some(&out),
        &["does not use --blocks, --epochs"],
    );
    refused(
        &["clone", "--kind", "lift", "--mixer-depth", "3", "--out", o],
        Some(&out),
        &["does not use the mixer's --mixer-depth"],
    );
    // A byte-order mark in front of a configuration is not an error (the next one is: no task).
    let bom = write(
        "bom.json",
        &[
            b"\xEF\xBB\xBF".as_slice(),
            &config_json(|v| v["tasks"] = serde_json::json!([])),
        ]
        .concat(),
    );
    refused(
        &["run", "--config", s(&bom), "--out", o],
        Some(&out),
        &["runs no task"],
    );

    // The tuner's cache cannot be written: `tune` says so and fails (it said "choices cached").
    let blocker = write("not-a-folder", b"x");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"));
    let tuned = cmd
        .args(["tune", "--presets", "none", "--budget", "2"])
        .env("SYMCLONE_CACHE", blocker.join("cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&tuned.stderr);
    assert_eq!(tuned.status.code(), Some(1), "{err}");
    assert!(
        err.contains("were not cached") && !err.contains("choices cached in"),
        "{err}"
    );
    assert_eq!(
        err.matches("warning: the kernel-choice cache was not saved")
            .count(),
        1,
        "{err}"
    );

    let _ = std::fs::remove_dir_all(&d);
}

/// A run of about a second (one task, the MLP alone, 64 digits, one epoch) into `out`, with the
/// given environment, umask and extra flags; it must succeed.
fn tiny_run(
    out: &Path,
    env: &[(&str, &str)],
    umask: Option<libc::mode_t>,
    extra: &[&str],
) -> String {
    let mut args = tiny_args(out);
    args.extend(extra);
    let (code, err) = run_with(&args, env, umask, Duration::from_secs(120));
    assert_eq!(code, 0, "{args:?}: {err}");
    err
}

/// The flags of [`tiny_run`].
fn tiny_args(out: &Path) -> Vec<&str> {
    vec![
        "run",
        "--tasks",
        "symmetric",
        "--models",
        "mlp",
        "--train-n",
        "64",
        "--test-n",
        "32",
        "--epochs",
        "1",
        "--out",
        s(out),
    ]
}

/// Plant at `path` (whatever was there removed) the thing `what` names: a FIFO, a link to
/// /dev/zero, or a 3 GB sparse file.
fn plant(path: &Path, what: &str) {
    let _ = std::fs::remove_file(path);
    match what {
        "fifo" => mkfifo(path),
        "zero" => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        "sparse" => std::fs::File::create(path)
            .unwrap()
            .set_len(3 << 30)
            .unwrap(),
        _ => unreachable!(),
    }
}

/// Class 1, continued: every file the program reads goes through one bounded reader. A run's
/// report.json and the tuner's cache as a FIFO, a link to /dev/zero or a 3 GB sparse file: the
/// report is refused with one line naming the file and the bound; the cache is ignored with a
/// warning naming them (training goes on), never read whole nor waited on.
#[test]
fn reports_and_caches_are_read_through_the_bounded_reader() {
    let d = temp_dir("bounded");
    let cache = d.join("cache");
    let env = [("SYMCLONE_CACHE", s(&cache))];
    let run_dir = d.join("run");
    tiny_run(&run_dir, &env, None, &[]);
    let report = run_dir.join("report.json");
    let good = std::fs::read(&report).unwrap();
    // The FIFO first: before the bounded reader it hung, which the deadline turns into a failure.
    for what in ["fifo", "zero", "sparse"] {
        plant(&report, what);
        let m = refused(&["report", s(&run_dir)], None, &["report.json", "a report"]);
        assert!(m.contains("at most 67108864 bytes (64 MiB)"), "{what}: {m}");
    }
    std::fs::write(&report, &good).unwrap();
    let cached: Vec<PathBuf> = files_under(&cache)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(cached.len(), 1, "the run left no tuner cache: {cached:?}");
    for what in ["fifo", "zero", "sparse"] {
        plant(&cached[0], what);
        let err = tiny_run(&d.join(format!("run-{what}")), &env, None, &[]);
        let name = cached[0].file_name().unwrap().to_str().unwrap();
        assert!(
            err.lines().any(|l| l.starts_with("warning:")
                && l.contains(name)
                && l.contains("a kernel-choice cache")
                && l.contains("16 MiB")),
            "{what}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(
        children_max_rss() < 1 << 30,
        "a hostile report or cache took {} MB",
        children_max_rss() >> 20
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Class 7: no write replaces a record of another kind. A run folder, a sweep folder and a merged
/// report's folder each know what they are; a command given a folder of another kind refuses it
/// with one line and writes nothing there, and a sweep planned again from another grid does not
/// drop its cells. A folder written before the kinds existed has its kind inferred.
#[test]
fn a_folder_of_another_kind_is_refused() {
    let d = temp_dir("kinds");
    let run_dir = d.join("run");
    tiny_run(&run_dir, &[], None, &[]);
    let run_report = std::fs::read(run_dir.join("report.json")).unwrap();
    let grid = |name: &str, seeds: &[u64]| {
        let p = d.join(name);
        let g = serde_json::json!({"base": "quick", "grid": {"seed": seeds}});
        std::fs::write(&p, g.to_string()).unwrap();
        p
    };
    let (g01, g23, g012) = (
        grid("g01.json", &[0, 1]),
        grid("g23.json", &[2, 3]),
        grid("g012.json", &[0, 1, 2]),
    );
    // A sweep planned into a run folder: refused, nothing written.
    refused(
        &["sweep", "plan", "--grid", s(&g01), "--out", s(&run_dir)],
        None,
        &["is a run folder", "another --out"],
    );
    assert!(!run_dir.join("sweep.json").exists());
    // A run into a sweep folder, a merged report over a run's: refused.
    let sweep = d.join("sweep");
    let (code, err) = run(
        &["sweep", "plan", "--grid", s(&g01), "--out", s(&sweep)],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let index = std::fs::read(sweep.join("sweep.json")).unwrap();
    let before = files_under(&sweep);
    refused(
        &tiny_args(&sweep),
        None,
        &["is a sweep folder", "another --out"],
    );
    assert_eq!(files_under(&sweep), before);
    refused(
        &["report", s(&sweep), "--out", s(&run_dir)],
        None,
        &["is a run folder", "another --out"],
    );
    assert_eq!(
        std::fs::read(run_dir.join("report.json")).unwrap(),
        run_report
    );
    // Another grid into the sweep: refused (it would drop the two cells), the index kept; the
    // same grid again and a grid that adds a cell are planned.
    refused(
        &["sweep", "plan", "--grid", s(&g23), "--out", s(&sweep)],
        None,
        &[
            "is a sweep of another grid",
            "2 of its 2 cells",
            "another --out",
        ],
    );
    assert_eq!(std::fs::read(sweep.join("sweep.json")).unwrap(), index);
    for g in [&g01, &g012] {
        let (code, err) = run(
            &["sweep", "plan", "--grid", s(g), "--out", s(&sweep)],
            Duration::from_secs(60),
        );
        assert_eq!(code, 0, "{err}");
    }
    // A merged report's folder takes no run.
    let merged = d.join("merged");
    let (code, err) = run(
        &["report", s(&sweep), "--out", s(&merged)],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    refused(&tiny_args(&merged), None, &["is a merged report's folder"]);
    // A folder of an older version (no marker) holding a run's report.json and a sweep.json
    // planned into it then: `report` writes the run's views again and keeps its report.json.
    std::fs::remove_file(run_dir.join(".symclone-kind")).unwrap();
    std::fs::write(run_dir.join("sweep.json"), &index).unwrap();
    let (code, err) = run(&["report", s(&run_dir)], Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(run_dir.join("report.json")).unwrap(),
        run_report
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Class 8: output files honour the umask (`0666 & !umask`, folders `0777 & !umask`), as every
/// Unix tool's do: a results folder shared with a group is readable by it.
#[test]
fn output_files_honour_the_umask() {
    let d = temp_dir("umask");
    for mask in [0o022, 0o077, 0o002] {
        let out = d.join(format!("run-{mask:03o}"));
        tiny_run(&out, &[], Some(mask), &[]);
        let sweep = d.join(format!("sweep-{mask:03o}"));
        let grid = d.join("grid.json");
        std::fs::write(&grid, r#"{"base": "quick", "grid": {"seed": [0]}}"#).unwrap();
        let (code, err) = run_with(
            &["sweep", "plan", "--grid", s(&grid), "--out", s(&sweep)],
            &[],
            Some(mask),
            Duration::from_secs(60),
        );
        assert_eq!(code, 0, "{err}");
        let mut files = files_under(&out);
        files.extend(files_under(&sweep));
        assert!(files.len() > 8, "{files:?}");
        for p in files {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::symlink_metadata(&p).unwrap();
            let want = if m.is_dir() { 0o777 } else { 0o666 } & !mask;
            assert_eq!(
                m.permissions().mode() & 0o777,
                want,
                "{} under umask {mask:03o}",
                p.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Class 5, continued: `--resume` removes the temporary files a killed writer left (SIGKILL
/// between creating one and renaming it), and only those: files of the program's own naming
/// (`.NAME.XXXXXX.tmp`), regular, in the run folder and the folders under it. A link named like
/// one is neither followed nor removed; the user's own files stay.
#[test]
fn resume_removes_stale_temporaries_of_its_own_naming() {
    let d = temp_dir("stale");
    let out = d.join("run");
    tiny_run(&out, &[], None, &[]);
    let victim = d.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let stale = [
        out.join(".report.html.Ab12Cd.tmp"),
        out.join(".training.svg.zzzzzz.tmp"),
        out.join("models")
            .join(".symmetric-mlp-s0.safetensors.x9Y8z7.tmp"),
    ];
    for p in &stale {
        std::fs::write(p, b"half a file").unwrap();
    }
    let link = out.join(".accuracy.svg.abcdef.tmp");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let kept = [
        out.join("notes.tmp"),
        out.join(".notes.tmp"),
        out.join(".notes.toolong7.tmp"),
    ];
    for p in &kept {
        std::fs::write(p, b"the user's").unwrap();
    }
    let dir_like = out.join(".figs.abcdef.tmp");
    std::fs::create_dir_all(&dir_like).unwrap();
    tiny_run(&out, &[], None, &["--resume"]);
    for p in &stale {
        assert!(!p.exists(), "{} was left", p.display());
    }
    assert!(link.is_symlink(), "the planted link was removed");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    for p in &kept {
        assert_eq!(std::fs::read(p).unwrap(), b"the user's", "{}", p.display());
    }
    assert!(dir_like.is_dir());
    let _ = std::fs::remove_dir_all(&d);
}
