//! Data: IDX loading, the embedded default, the tasks, GPU batching.
//!
//! A [`Dataset`] is a train and a test [`Split`] of 28×28 u8 digits with labels 0–9. It comes from
//! the embedded default ([`Dataset::embedded`]: 10,000 MNIST digits compiled into the binary, split
//! 9,000 / 1,000) or from a folder ([`Dataset::load`]) holding either the four standard MNIST file
//! names or a single images/labels pair. [`tasks`] says what each task does to a sample;
//! [`batch::Batcher`] uploads a split once and gathers transformed batches on the GPU.

pub mod batch;
pub mod grid;
pub mod idx;
pub mod resize;
pub mod tasks;

pub use batch::{Batch, Batcher, GpuSplit};
pub use tasks::{Canvas, Part, Sample, Task};

use crate::rng::Rng;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Side of the digits every model expects.
pub const SIDE: usize = 28;
/// Number of digit classes in a data set (tasks may double it).
pub const CLASSES: usize = 10;
/// Seed of the fixed train/test split of a single images/labels pair (independent of `--seed`, so
/// the test set never changes between runs).
pub const SPLIT_SEED: u64 = 0x5359_4D43_4C4F_4E45;
/// Size of the test part of the embedded default.
pub const EMBEDDED_TEST: usize = 1000;

static EMBEDDED_IMAGES: &[u8] = include_bytes!("../../assets/mnist-10k/images-idx3-ubyte.gz");
static EMBEDDED_LABELS: &[u8] = include_bytes!("../../assets/mnist-10k/labels-idx1-ubyte.gz");

/// The four standard file names (without `.gz`) of MNIST and Fashion-MNIST.
pub const STANDARD_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// `n` digits of `h × w` u8 grey levels (row-major, image after image) with labels 0–9.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

/// A train and a test split, and where they came from.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub train: Split,
    pub test: Split,
    /// "embedded MNIST-10k" or the folder or files read.
    pub source: String,
}

fn data_err(path: &str, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_string(),
        msg: msg.into(),
    }
}

impl Split {
    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let s = self.h * self.w;
        &self.images[i * s..(i + 1) * s]
    }

    /// How many images of each class 0–9.
    pub fn histogram(&self) -> [usize; CLASSES] {
        let mut h = [0; CLASSES];
        for &l in &self.labels {
            if (l as usize) < CLASSES {
                h[l as usize] += 1;
            }
        }
        h
    }

    /// The images at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Split {
        let s = self.h * self.w;
        let mut images = Vec::with_capacity(idx.len() * s);
        for &i in idx {
            images.extend_from_slice(self.image(i));
        }
        Split {
            images,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            n: idx.len(),
            h: self.h,
            w: self.w,
        }
    }

    /// The first `n` images.
    pub fn first(&self, n: usize) -> Split {
        self.select(&(0..n.min(self.n)).collect::<Vec<_>>())
    }

    /// Check the split against what the models take: 28×28 images, labels below 10, at least one
    /// image. `name` goes into the error messages (the file the split came from).
    pub fn validate(&self, name: &str) -> Result<()> {
        if self.n == 0 {
            return Err(data_err(name, "zero images"));
        }
        if (self.h, self.w) != (SIDE, SIDE) {
            return Err(data_err(
                name,
                format!(
                    "wrong image size for the model: {}×{}, the models take {SIDE}×{SIDE}",
                    self.h, self.w
                ),
            ));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= CLASSES)
        {
            return Err(data_err(
                name,
                format!("label {l} at index {i} is not below the number of classes ({CLASSES})"),
            ));
        }
        Ok(())
    }
}

/// Join decoded images and labels into a split, checking that they agree and fit the models.
fn pair(images: idx::Images, labels: Vec<u8>, img_name: &str, lab_name: &str) -> Result<Split> {
    if images.n != labels.len() {
        return Err(data_err(
            lab_name,
            format!(
                "count mismatch: {} labels but {img_name} holds {} images",
                labels.len(),
                images.n
            ),
        ));
    }
    let split = Split {
        images: images.pixels,
        labels,
        n: images.n,
        h: images.h,
        w: images.w,
    };
    if (split.h, split.w) != (SIDE, SIDE) {
        return Err(data_err(
            img_name,
            format!(
                "wrong image size for the model: {}×{}, the models take {SIDE}×{SIDE}",
                split.h, split.w
            ),
        ));
    }
    split.validate(lab_name)?;
    Ok(split)
}

/// `path` or `path.gz`, whichever exists (the plain name first); `None` if neither does. Anything
/// at the name counts (a folder, a FIFO, a dangling link): opening it then says what it is.
fn either(dir: &Path, base: &str) -> Option<PathBuf> {
    [base.to_string(), format!("{base}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| std::fs::symlink_metadata(p).is_ok())
}

impl Dataset {
    /// The embedded default: 10,000 MNIST digits split by a fixed seeded shuffle into 9,000 train and
    /// 1,000 test (every class in both).
    pub fn embedded() -> Result<Dataset> {
        let images = idx::decode_images(EMBEDDED_IMAGES, "assets/mnist-10k/images-idx3-ubyte.gz")?;
        let labels = idx::decode_labels(EMBEDDED_LABELS, "assets/mnist-10k/labels-idx1-ubyte.gz")?;
        let all = pair(
            images,
            labels,
            "assets/mnist-10k/images-idx3-ubyte.gz",
            "assets/mnist-10k/labels-idx1-ubyte.gz",
        )?;
        let (train, test) = split_fixed(&all, EMBEDDED_TEST);
        Ok(Dataset {
            train,
            test,
            source: "embedded MNIST-10k".into(),
        })
    }

    /// Load a folder: the four standard names (`train-images-idx3-ubyte[.gz]`,
    /// `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`)
    /// or exactly one pair `*images-idx3-ubyte[.gz]` + `*labels-idx1-ubyte[.gz]`, which is split
    /// 90 % / 10 % by a fixed seeded shuffle. Gzip is detected from the content.
    pub fn load(dir: &Path) -> Result<Dataset> {
        Self::load_first(dir, None, None)
    }

    /// [`Dataset::load`] reading only what a run asks for: with the four standard names, the
    /// first `train_n` train and `test_n` test images (None: all) are read and the rest of each
    /// file is not (an uncompressed file's length is still checked against its header). A
    /// single pair is split by a shuffle over all its images, so it is read whole.
    pub fn load_first(
        dir: &Path,
        train_n: Option<usize>,
        test_n: Option<usize>,
    ) -> Result<Dataset> {
        for (n, what) in [(train_n, "train"), (test_n, "test")] {
            if n == Some(0) {
                return Err(Error::invalid(format!(
                    "--{what}-n 0: a subset needs at least one image"
                )));
            }
        }
        let dname = dir.display().to_string();
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                let what = if m.is_file() {
                    "a file"
                } else {
                    "a device, FIFO or socket"
                };
                return Err(data_err(
                    &dname,
                    format!(
                        "is {what}, not a folder: --data takes the folder that holds the IDX files"
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let what = if std::fs::symlink_metadata(dir).is_ok() {
                    "a symbolic link to nothing (its target does not exist)"
                } else {
                    "missing data folder (no such directory)"
                };
                return Err(data_err(&dname, what));
            }
            Err(e) => return Err(data_err(&dname, format!("cannot be read: {e}"))),
        }
        let std_found: Vec<Option<PathBuf>> =
            STANDARD_NAMES.iter().map(|b| either(dir, b)).collect();
        if std_found.iter().any(Option::is_some) {
            let mut paths = Vec::new();
            for (b, p) in STANDARD_NAMES.iter().zip(&std_found) {
                match p {
                    Some(p) => paths.push(p.clone()),
                    None => {
                        return Err(data_err(
                            &dir.join(b).display().to_string(),
                            format!(
                                "missing file (neither {b} nor {b}.gz exists; a folder with \
                                 standard names needs all four: {})",
                                STANDARD_NAMES.join(", ")
                            ),
                        ))
                    }
                }
            }
            let train = Self::load_pair_first(&paths[0], &paths[1], train_n)?;
            let test = Self::load_pair_first(&paths[2], &paths[3], test_n)?;
            return Ok(Dataset {
                train,
                test,
                source: dname,
            });
        }
        let entries = std::fs::read_dir(dir).map_err(|e| Error::Io {
            path: dname.clone(),
            source: e,
        })?;
        let (mut imgs, mut labs) = (Vec::new(), Vec::new());
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = name.strip_suffix(".gz").unwrap_or(&name);
            if base.ends_with("images-idx3-ubyte") {
                imgs.push(e.path());
            } else if base.ends_with("labels-idx1-ubyte") {
                labs.push(e.path());
            }
        }
        imgs.sort();
        labs.sort();
        let hint =
            "a data folder holds train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], \
                    t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz], or one pair \
                    images-idx3-ubyte[.gz] + labels-idx1-ubyte[.gz]";
        match (imgs.len(), labs.len()) {
            (1, 1) => {
                let all = Self::load_pair(&imgs[0], &labs[0])?;
                if all.n < 2 {
                    return Err(data_err(
                        &imgs[0].display().to_string(),
                        "only one image: a single pair is split into train and test, which needs two",
                    ));
                }
                let (train, test) = split_fixed(&all, all.n.div_ceil(10));
                Ok(Dataset {
                    train,
                    test,
                    source: dname,
                })
            }
            (0, 0) => Err(data_err(&dname, format!("no IDX files found: {hint}"))),
            (0, _) => Err(data_err(
                &dname,
                format!("missing file: found labels but no *images-idx3-ubyte[.gz]; {hint}"),
            )),
            (_, 0) => Err(data_err(
                &dname,
                format!("missing file: found images but no *labels-idx1-ubyte[.gz]; {hint}"),
            )),
            (i, l) => Err(data_err(
                &dname,
                format!("{i} image files and {l} label files: ambiguous, {hint}"),
            )),
        }
    }

    /// Read one images file and one labels file (gzip or raw) into a split, checking that they agree
    /// and fit the models.
    pub fn load_pair(images: &Path, labels: &Path) -> Result<Split> {
        Self::load_pair_first(images, labels, None)
    }

    /// [`Dataset::load_pair`] reading only the first `limit` images and labels (None: all). The
    /// headers are checked (magic, sizes, counts that agree) before any data is read.
    pub fn load_pair_first(images: &Path, labels: &Path, limit: Option<usize>) -> Result<Split> {
        let (iname, lname) = (images.display().to_string(), labels.display().to_string());
        let img = idx::IdxStream::open(images, idx::IMAGES_MAGIC)?;
        let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
        if n > 0 && (h, w) != (SIDE, SIDE) {
            return Err(data_err(
                &iname,
                format!("wrong image size for the model: {h}×{w}, the models take {SIDE}×{SIDE}"),
            ));
        }
        let lab = idx::IdxStream::open(labels, idx::LABELS_MAGIC)?;
        if n > 0 && lab.dims[0] > 0 && lab.dims[0] != n {
            return Err(data_err(
                &lname,
                format!(
                    "count mismatch: {} labels but {iname} holds {n} images",
                    lab.dims[0]
                ),
            ));
        }
        let img = img.images(limit)?;
        let lab = lab.labels(limit)?;
        pair(img, lab, &iname, &lname)
    }

    /// The first `train_n` train and `test_n` test images (None keeps a part whole). Asking for zero
    /// or for more than there are is an error.
    pub fn subset(&self, train_n: Option<usize>, test_n: Option<usize>) -> Result<Dataset> {
        let take = |s: &Split, n: Option<usize>, what: &str| -> Result<Split> {
            match n {
                None => Ok(s.clone()),
                Some(0) => Err(Error::invalid(format!(
                    "--{what}-n 0: a subset needs at least one image"
                ))),
                Some(n) if n > s.n => Err(Error::invalid(format!(
                    "--{what}-n {n}: {} holds only {} {what} images",
                    self.source, s.n
                ))),
                Some(n) => Ok(s.first(n)),
            }
        };
        Ok(Dataset {
            train: take(&self.train, train_n, "train")?,
            test: take(&self.test, test_n, "test")?,
            source: self.source.clone(),
        })
    }

    /// The split of a part.
    pub fn part(&self, part: Part) -> &Split {
        match part {
            Part::Train => &self.train,
            Part::Test => &self.test,
        }
    }
}

/// Split deterministically: a shuffle with [`SPLIT_SEED`] picks `n_test` test images; both parts keep
/// the original order.
pub fn split_fixed(all: &Split, n_test: usize) -> (Split, Split) {
    let perm = Rng::new(SPLIT_SEED).permutation(all.n);
    let mut test: Vec<usize> = perm[..n_test].to_vec();
    let mut train: Vec<usize> = perm[n_test..].to_vec();
    test.sort_unstable();
    train.sort_unstable();
    (all.select(&train), all.select(&test))
}

impl Dataset {
    /// Counts and per-class histograms of both parts, as text.
    pub fn describe(&self) -> String {
        let mut s = format!("data: {}\n", self.source);
        let header: String = (0..CLASSES).map(|c| format!("{c:>7}")).collect();
        s += &format!("{:<7}{:>8} {header}\n", "part", "images");
        for part in [Part::Train, Part::Test] {
            let sp = self.part(part);
            let h: String = sp.histogram().iter().map(|c| format!("{c:>7}")).collect();
            s += &format!("{:<7}{:>8} {h}\n", part.name(), sp.n);
        }
        s
    }
}

/// Write, for each task and part, a PNG grid of the first `count` inputs of epoch 0 as the GPU batch
/// path builds them (`{task}-{part}.png`, labels drawn under each digit) and the labels as text
/// (`{task}-{part}-labels.txt`, one grid row per line). Returns the files written.
pub fn write_grids(
    gpu: &std::sync::Arc<crate::Gpu>,
    ds: &Dataset,
    tasks: &[Task],
    out: &Path,
    seed: u64,
    count: usize,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::Io {
        path: out.display().to_string(),
        source: e,
    })?;
    let cols = 8;
    let mut written = Vec::new();
    for part in [Part::Train, Part::Test] {
        let split = GpuSplit::upload(gpu, ds.part(part))?;
        for &task in tasks {
            let b = Batcher::on(split.clone(), task, part, count.max(1), seed)?;
            let batch = b.batch(0)?;
            let images = batch.images.to_vec()?;
            let labels = batch.labels.to_vec_u32()?;
            let side = b.canvas().size;
            let zoom = if side < 40 { 3 } else { 2 };
            let img = grid::render(&images, &labels, side, cols, zoom);
            let png = out.join(format!("{}-{}.png", task.name(), part.name()));
            crate::files::write_png(&png, &img)?;
            let text: String = labels
                .chunks(cols)
                .map(|r| {
                    let row: Vec<String> = r.iter().map(|l| format!("{l:>2}")).collect();
                    row.join(" ") + "\n"
                })
                .collect();
            let txt = out.join(format!("{}-{}-labels.txt", task.name(), part.name()));
            crate::files::write_atomic(&txt, text.as_bytes())?;
            written.push(png);
            written.push(txt);
        }
    }
    Ok(written)
}
