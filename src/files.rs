//! Files the program reads and writes.
//!
//! Writing: every file goes to a fresh temporary file in the target's folder (a unique name,
//! created exclusively, so a path planted there in advance — a symbolic link, say — is never
//! followed), is synced, then renamed over its path; a failed write removes the temporary file, so
//! a crash or an error never leaves half a file. A run folder is held by one process at a time
//! ([`FolderLock`]). Grey images are encoded as PNG.
//!
//! Created files honour the process's umask (`0666 & !umask`, as every Unix tool makes them), so
//! a results folder shared with a group is readable by it when the umask says so.
//!
//! Reading: every file the program reads goes through [`read_bounded`], with a [`Bound`] that says
//! what the file is and the most bytes it can legitimately hold; [`open_regular`] refuses what is
//! not a regular file (a folder, a device such as `/dev/zero`, a FIFO, a dangling link) with one
//! line.

pub mod kind;

use crate::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// `bytes` without a UTF-8 byte-order mark in front (some Windows editors write one; JSON
/// parsers refuse it as "expected value at line 1 column 1").
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Write `bytes` to `path` atomically: a fresh temporary file next to `path` (created with
/// `O_EXCL` under a random name, `.NAME.XXXXXX.tmp`, mode `0666 & !umask`),
/// synced to disk, then renamed over `path`. On any failure the temporary file is removed and
/// `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    inside_locked_folder(path)?;
    let io = |e| Error::io(path, e);
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // Dropping `tmp` before `persist` (an error below) deletes the temporary file.
    let prefix = format!(".{stem}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
    #[cfg(unix)]
    {
        // tempfile creates 0600 by default; ask for 0666 and let the umask take its part.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(&dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The folders this process holds ([`FolderLock`]): what is written below one stays inside it.
static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Refuse to write `path` when it lies below a folder this process holds and one of the folders
/// between (`clones`, `models`, a cell's folder, …) is a symbolic link: a link planted there could
/// take the write outside the folder. The held folder itself may be a link (a user's
/// `runs -> /scratch/runs`); only what is inside it is checked.
fn inside_locked_folder(path: &Path) -> Result<()> {
    let held = HELD.lock().unwrap().clone();
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    for root in held.iter().filter(|r| parent.starts_with(r)) {
        let mut at = root.clone();
        for part in parent
            .strip_prefix(root)
            .unwrap_or(Path::new(""))
            .components()
        {
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::invalid(format!(
                    "{}: a symbolic link inside {} (not followed: it could take {} outside the folder); remove it",
                    at.display(),
                    root.display(),
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// How [`write_atomic`]'s temporary files end.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Whether `name` is one of [`write_atomic`]'s temporary files: `.NAME.XXXXXX.tmp` (a dot, a
/// name, a dot, six random letters or digits, `.tmp`).
pub fn is_temp_name(name: &str) -> bool {
    let Some(inner) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    match inner.rsplit_once('.') {
        Some((stem, rand)) => {
            !stem.is_empty() && rand.len() == 6 && rand.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

fn remove_temporaries_in(dir: &Path, depth: usize, removed: &mut Vec<PathBuf>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        // file_type() does not follow links: a link is neither a file nor a folder here.
        let Ok(t) = e.file_type() else { continue };
        let p = e.path();
        // A folder with a lock or a kind of its own is another folder's business.
        let own = |p: &Path| {
            std::fs::symlink_metadata(p.join(LOCK_NAME)).is_err()
                && std::fs::symlink_metadata(p.join(kind::MARKER)).is_err()
        };
        if t.is_dir() && depth < 4 && own(&p) {
            remove_temporaries_in(&p, depth + 1, removed)?;
        } else if t.is_file() && e.file_name().to_str().is_some_and(is_temp_name) {
            std::fs::remove_file(&p).map_err(|err| Error::io(&p, err))?;
            removed.push(p);
        }
    }
    Ok(())
}

/// What a file the program reads is, and the most bytes it can legitimately hold: a read of a
/// longer file is refused with one line naming the file and the bound, before it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// What the file is, for messages ("a run configuration").
    pub what: &'static str,
    /// The most bytes it may hold.
    pub max: u64,
}

impl Bound {
    /// `--config` (a few kilobytes).
    pub const CONFIG: Bound = Bound::new("a run configuration", 4 << 20);
    /// A sweep's grid file (a few kilobytes).
    pub const GRID: Bound = Bound::new("a sweep grid", 4 << 20);
    /// `sweep.json` (a few hundred bytes a cell).
    pub const SWEEP_INDEX: Bound = Bound::new("a sweep index", 64 << 20);
    /// `report.json`, a run's or a merged sweep's (a few hundred kilobytes; a mixer's or a long
    /// run's training curves are the largest part).
    pub const REPORT: Bound = Bound::new("a report", 64 << 20);
    /// A phase's result `--resume` reads back (a few kilobytes).
    pub const PHASE_RESULT: Bound = Bound::new("a phase result", 64 << 20);
    /// The tuner's cache of kernel choices (a few kilobytes).
    pub const TUNER_CACHE: Bound = Bound::new("a kernel-choice cache", 16 << 20);
    /// A sweep's record of its SLURM jobs (a few hundred bytes a job).
    pub const SLURM_RECORD: Bound = Bound::new("a sweep's SLURM record", 16 << 20);
    /// A cell's log, read for its last error (a few kilobytes).
    pub const LOG: Bound = Bound::new("a cell's log", 64 << 20);
    /// A checkpoint: the paper preset's largest (a P4 clone of 28×28 inputs, a few hundred MB)
    /// with a wide margin. A checkpoint is read only when its length is the one its header and
    /// the model make it, so this bounds what a header can ask for.
    pub const CHECKPOINT: Bound = Bound::new("a checkpoint", 4 << 30);

    /// A bound of `max` bytes for files that are `what`.
    pub const fn new(what: &'static str, max: u64) -> Bound {
        Bound { what, max }
    }

    /// Read the regular file at `path` whole, under this bound ([`read_bounded`]).
    pub fn read(self, path: &Path) -> Result<Vec<u8>> {
        read_bounded(path, self.max, self.what)
    }

    /// `at most 67108864 bytes (64 MiB)`.
    fn describe(self) -> String {
        let m = self.max;
        let unit = if m >= 1 << 30 && m.is_multiple_of(1 << 30) {
            format!(" ({} GiB)", m >> 30)
        } else if m >= 1 << 20 && m.is_multiple_of(1 << 20) {
            format!(" ({} MiB)", m >> 20)
        } else {
            String::new()
        };
        format!("at most {m} bytes{unit}")
    }
}

/// Why a path cannot be read as a regular file, in words; None when it is one.
fn not_regular(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some("is a directory, not a file".into()),
        Ok(_) => {
            Some("is not a regular file (a device, a FIFO or a socket): give a file on disk".into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(path).is_ok() {
                Some("is a symbolic link to nothing (its target does not exist)".into())
            } else {
                Some("missing file (no such file)".into())
            }
        }
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

/// Open a regular file for reading. A folder, a device, a FIFO, a socket, a dangling link or a
/// link loop is an [`Error::Data`] naming the path and what it is, without blocking on it.
pub fn open_regular(path: &Path) -> Result<std::fs::File> {
    let bad = |msg: String| Error::Data {
        path: path.display().to_string(),
        msg,
    };
    if let Some(why) = not_regular(path) {
        return Err(bad(why));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        // A FIFO swapped in after the check above must not block the open.
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let f = opts.open(path).map_err(|e| Error::io(path, e))?;
    let m = f.metadata().map_err(|e| Error::io(path, e))?;
    if !m.is_file() {
        return Err(bad(
            "is not a regular file (a device, a FIFO or a socket): give a file on disk".into(),
        ));
    }
    Ok(f)
}

/// Read a regular file whole, refusing one longer than `max` bytes (`what` says what the file is
/// for in the message, e.g. "a run configuration"). The one reader of the program's files: what
/// is not a regular file (a device, a FIFO, a folder, a dangling link) and what is longer than
/// the bound are refused with one line naming the file, what it should be and the bound, before
/// anything is read. Most callers name a [`Bound`].
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let bound = Bound { what: "", max }.describe();
    let f = open_regular(path).map_err(|e| match e {
        // Something is there, but not a regular file: say what belongs there.
        Error::Data { path: p, msg } if std::fs::symlink_metadata(path).is_ok() => Error::Data {
            path: p,
            msg: format!("{msg} ({what} is a regular file of {bound})"),
        },
        e => e,
    })?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let too_long = |len: String| Error::Data {
        path: path.display().to_string(),
        msg: format!("{len}, more than {what} can be ({bound})"),
    };
    if len > max {
        return Err(too_long(format!("{len} bytes")));
    }
    let mut out = Vec::with_capacity(len as usize);
    // The file may grow while it is read: read at most one byte past the bound.
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(path, e))?;
    if out.len() as u64 > max {
        return Err(too_long(format!("over {max} bytes")));
    }
    Ok(out)
}

/// An exclusive lock on a run folder, held while a run writes there: a second run on the same
/// folder is refused at once, naming the process that holds it, and so is a folder of another
/// kind ([`kind`]: a sweep's or a merged report's); a folder without a kind is marked a run's. The lock is an advisory `flock`
/// (the fs4 crate) on `<folder>/.symclone.lock`, a file that holds the holder's process id; the
/// operating system releases it when the process ends, however it ends, and the file is removed
/// when the lock is dropped.
pub struct FolderLock {
    path: PathBuf,
    /// The folder held (what [`write_atomic`] keeps writes inside of).
    dir: PathBuf,
    file: Option<std::fs::File>,
}

/// The name of the lock file inside a locked folder.
pub const LOCK_NAME: &str = ".symclone.lock";

impl FolderLock {
    /// Remove the temporary files [`write_atomic`] left in the locked folder and the folders
    /// under it (not those with a lock or a kind of their own) when its process was killed
    /// between creating one and renaming it (SIGKILL, a power cut): only regular files whose
    /// names are of its making ([`is_temp_name`]); a link is never followed nor removed,
    /// whatever its name, and a linked folder is not entered. Holding the lock, no live writer's
    /// file is removed. Returns the paths removed, sorted.
    pub fn remove_stale_temporaries(&self) -> Result<Vec<PathBuf>> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut removed = Vec::new();
        remove_temporaries_in(dir, 0, &mut removed)?;
        removed.sort();
        Ok(removed)
    }

    /// Take the lock on `dir` (created if missing), or fail naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        use fs4::fs_std::FileExt;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_NAME);
        for _ in 0..8 {
            let file = open_lock_file(&path)?;
            if !file.try_lock_exclusive().map_err(|e| Error::io(&path, e))? {
                let mut holder = String::new();
                let _ = (&file).take(64).read_to_string(&mut holder);
                let who = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!("process {pid}"),
                    Err(_) => "another process".into(),
                };
                return Err(Error::Busy(format!(
                    "{}: {who} is writing to this folder (it holds {}); wait for it to finish or choose another --out",
                    dir.display(),
                    path.display()
                )));
            }
            // The holder before us may have removed the file between our open and our lock: the
            // lock counts only if the path still names the file we locked.
            if same_file(&file, &path) {
                HELD.lock().unwrap().push(dir.to_path_buf());
                let mut f = &file;
                let _ = file.set_len(0);
                let _ = write!(f, "{}", std::process::id());
                let _ = file.sync_all();
                let lock = FolderLock {
                    path,
                    dir: dir.to_path_buf(),
                    file: Some(file),
                };
                // A locked folder is a run's: one of another kind is refused (the lock is
                // dropped, and its file removed, on the way out).
                kind::claim(
                    dir,
                    kind::Kind::Run,
                    "a run writes into a folder of its own; choose another --out",
                )?;
                return Ok(lock);
            }
        }
        Err(Error::invalid(format!(
            "{}: could not take the folder's lock {} (it keeps being replaced)",
            dir.display(),
            path.display()
        )))
    }
}

/// Open (creating it if missing) the lock file at `path` for reading and writing, without
/// following a link planted there (the open fails, and so nothing outside the folder is ever
/// opened for writing) and without blocking on a FIFO; anything but a regular file is refused
/// with one line.
fn open_lock_file(path: &Path) -> Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    open_no_follow(path, opts, "the folder's lock file")
}

/// Create (or empty) the log at `path` for writing: a link planted there is not followed and
/// anything but a regular file is refused, as for the lock ([`open_no_follow`]).
pub fn create_log(path: &Path) -> Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    open_no_follow(path, opts, "a log file")
}

/// Open `path` with `opts`, never following a link at `path` (`O_NOFOLLOW`: the open fails, and
/// nothing outside the folder is ever opened for writing) and never blocking on a FIFO
/// (`O_NONBLOCK`); a link or anything but a regular file there is refused with one line naming
/// `what` it should be.
fn open_no_follow(
    path: &Path,
    mut opts: std::fs::OpenOptions,
    what: &str,
) -> Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let refused = |is: &str| {
        Error::invalid(format!(
            "{}: {what} is {is}; remove it, or choose another --out",
            path.display()
        ))
    };
    let file = opts.open(path).map_err(|e| {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            refused("a symbolic link (not followed: it could point outside the folder)")
        } else {
            Error::io(path, e)
        }
    })?;
    let m = file.metadata().map_err(|e| Error::io(path, e))?;
    if !m.is_file() {
        return Err(refused("not a regular file (a FIFO, a device or a socket)"));
    }
    Ok(file)
}

/// Who holds the lock on `dir`, if anyone: the process id its lock file names ("another
/// process" when it names none), or None when the folder is not locked. A probe with a shared
/// lock, released at once: it never removes or rewrites the file.
pub fn lock_holder(dir: &Path) -> Option<String> {
    use fs4::fs_std::FileExt;
    let path = dir.join(LOCK_NAME);
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        // A link or a FIFO planted there is not a lock of ours: never followed, never waited on.
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = opts.open(&path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    match FileExt::try_lock_shared(&file) {
        Ok(true) => {
            let _ = FileExt::unlock(&file);
            None
        }
        Ok(false) => {
            let mut holder = String::new();
            let _ = (&file).take(64).read_to_string(&mut holder);
            Some(match holder.trim().parse::<u32>() {
                Ok(pid) => format!("process {pid}"),
                Err(_) => "another process".into(),
            })
        }
        Err(_) => None,
    }
}

#[cfg(unix)]
fn same_file(f: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::File, path: &Path) -> bool {
    path.exists()
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock, then release it (closing the file).
        let _ = std::fs::remove_file(&self.path);
        let mut held = HELD.lock().unwrap();
        if let Some(i) = held.iter().position(|d| *d == self.dir) {
            held.swap_remove(i);
        }
        drop(held);
        drop(self.file.take());
    }
}

/// A grey image.
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Encode a grey image as PNG and write it atomically.
pub fn write_png(path: &Path, img: &Gray) -> Result<()> {
    let mut bytes = Vec::new();
    {
        let err = |e: png::EncodingError| Error::Data {
            path: path.display().to_string(),
            msg: format!("encoding PNG: {e}"),
        };
        let (w, h) = (u32::try_from(img.width), u32::try_from(img.height));
        let (Ok(w), Ok(h)) = (w, h) else {
            return Err(Error::invalid(format!(
                "{}: an image of {}×{} pixels is too large for PNG",
                path.display(),
                img.width,
                img.height
            )));
        };
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(&img.pixels).map_err(err)?;
    }
    write_atomic(path, &bytes)
}

/// The SHA-256 of the parts one after another (each preceded by its length, so that moving bytes
/// from one part to the next changes the hash), as 64 hex digits.
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash a result is stored with: the SHA-256 of the value's JSON. `--resume` reuses a
/// result only when the hash of what would make it now is the same.
pub fn content_hash<T: serde::Serialize>(v: &T) -> String {
    sha256_hex(&[serde_json::to_string(v).expect("serialisable").as_bytes()])
}

/// Write `v` as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    write_atomic(
        path,
        serde_json::to_string_pretty(v)
            .expect("serialisable")
            .as_bytes(),
    )
}

/// Read a JSON file written by [`write_json`]; None when it is missing, not a regular file, too
/// large or unreadable (a phase whose result it is then runs again).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = Bound::PHASE_RESULT.read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Read a JSON file under `bound`, with an error naming the file when it is missing, not a
/// regular file, too long or not of the expected form.
pub fn read_json_file<T: serde::de::DeserializeOwned>(path: &Path, bound: Bound) -> Result<T> {
    let bytes = bound.read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Data {
        path: path.display().to_string(),
        msg: format!("not the JSON this version of symclone-gpu writes ({e})"),
    })
}

/// `runs/<YYYYMMDD-HHMMSS>` (UTC, now): the output folder when none is given.
pub fn default_out_dir() -> PathBuf {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from(format!("runs/{}", timestamp(t)))
}

/// `YYYYMMDD-HHMMSS` (UTC) for a Unix time.
pub fn timestamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
