//! Data: the IDX reader on hand-built files (and every malformed case), the embedded default, the
//! task rules, and GPU batches against the CPU reference.
//! Over 600 lines: one file per data path (reader, default, tasks, batches), so a reader finds
//! every check of a malformed file in one place.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use symclone::data::idx::{self, Images};
use symclone::data::{Batcher, Dataset, GpuSplit, Part, Split, Task, SIDE};
use symclone::reference::data as rd;

/// A fresh empty folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("symclone-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// `n` random-ish images of `h × w` with labels 0–9.
fn fake(n: usize, h: usize, w: usize, seed: u64) -> (Images, Vec<u8>) {
    let mut r = rng(seed);
    let pixels = (0..n * h * w).map(|_| r.below(256) as u8).collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    (Images { n, h, w, pixels }, labels)
}

fn write(path: &Path, bytes: &[u8], gz: bool) {
    std::fs::write(path, if gz { idx::gzip(bytes) } else { bytes.to_vec() }).unwrap();
}

fn err_of<T>(r: symclone::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_msg(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn idx_round_trip_raw_and_gzip() {
    let d = temp_dir("roundtrip");
    let (img, lab) = fake(7, 28, 28, 1);
    for gz in [false, true] {
        // Names that lie about compression: detection is by content.
        let ip = d.join(format!("a{gz}-images"));
        let lp = d.join(format!("a{gz}-labels.gz"));
        write(&ip, &idx::encode_images(&img), gz);
        write(&lp, &idx::encode_labels(&lab), gz);
        assert_eq!(idx::read_images(&ip).unwrap(), img);
        assert_eq!(idx::read_labels(&lp).unwrap(), lab);
        let s = Dataset::load_pair(&ip, &lp).unwrap();
        assert_eq!((s.n, s.h, s.w), (7, 28, 28));
        assert_eq!(s.images, img.pixels);
        assert_eq!(s.labels, lab);
    }
    // Non-square, non-28 images still round-trip through the reader itself.
    let (odd, _) = fake(3, 5, 9, 2);
    let p = d.join("odd");
    write(&p, &idx::encode_images(&odd), true);
    assert_eq!(idx::read_images(&p).unwrap(), odd);
}

#[test]
fn folder_with_the_four_standard_names_gz_and_raw() {
    let d = temp_dir("standard");
    let (tri, trl) = fake(30, 28, 28, 3);
    let (tei, tel) = fake(12, 28, 28, 4);
    write(
        &d.join("train-images-idx3-ubyte.gz"),
        &idx::encode_images(&tri),
        true,
    );
    write(
        &d.join("train-labels-idx1-ubyte"),
        &idx::encode_labels(&trl),
        false,
    );
    write(
        &d.join("t10k-images-idx3-ubyte"),
        &idx::encode_images(&tei),
        false,
    );
    write(
        &d.join("t10k-labels-idx1-ubyte.gz"),
        &idx::encode_labels(&tel),
        true,
    );
    let ds = Dataset::load(&d).unwrap();
    assert_eq!((ds.train.n, ds.test.n), (30, 12));
    assert_eq!(ds.train.images, tri.pixels);
    assert_eq!(ds.test.labels, tel);
    let sub = ds.subset(Some(10), None).unwrap();
    assert_eq!((sub.train.n, sub.test.n), (10, 12));
    assert_eq!(sub.train.image(9), ds.train.image(9));
    assert_msg(&err_of(ds.subset(Some(31), None)), &["--train-n 31", "30"]);
    assert_msg(&err_of(ds.subset(None, Some(0))), &["--test-n 0"]);
}

#[test]
fn a_corrupt_gzip_stream_is_refused_even_when_few_images_are_read() {
    // A stream whose checksum is wrong, or that has bytes after its end, is refused whatever
    // --train-n asks for: the whole stream is read to verify it, never only its start.
    let d = temp_dir("corrupt-gz");
    let (tri, trl) = fake(40, 28, 28, 6);
    let (tei, tel) = fake(12, 28, 28, 7);
    let good = idx::gzip(&idx::encode_images(&tri));
    let mut bad_crc = good.clone();
    let at = bad_crc.len() - 8; // the gzip trailer: CRC-32, then the length
    bad_crc[at] ^= 0xff;
    let mut garbage = good.clone();
    garbage.extend_from_slice(b"garbage after the stream");
    write(
        &d.join("train-labels-idx1-ubyte"),
        &idx::encode_labels(&trl),
        false,
    );
    write(
        &d.join("t10k-images-idx3-ubyte"),
        &idx::encode_images(&tei),
        false,
    );
    write(
        &d.join("t10k-labels-idx1-ubyte"),
        &idx::encode_labels(&tel),
        false,
    );
    let images = d.join("train-images-idx3-ubyte.gz");
    std::fs::write(&images, &good).unwrap();
    let few = Dataset::load_first(&d, Some(5), Some(5)).unwrap();
    assert_eq!(few.train.images[..5 * 28 * 28], tri.pixels[..5 * 28 * 28]);
    for (what, bytes) in [("bad checksum", &bad_crc), ("trailing bytes", &garbage)] {
        std::fs::write(&images, bytes).unwrap();
        for n in [Some(5), Some(40), None] {
            let e = err_of(Dataset::load_first(&d, n, Some(5)));
            assert_msg(&e, &["train-images-idx3-ubyte.gz"]);
            assert!(!e.is_empty(), "{what}, {n:?}: {e}");
        }
    }
}

#[test]
fn folder_with_one_pair_is_split_deterministically() {
    let d = temp_dir("pair");
    let (img, lab) = fake(100, 28, 28, 5);
    write(
        &d.join("images-idx3-ubyte.gz"),
        &idx::encode_images(&img),
        true,
    );
    write(
        &d.join("labels-idx1-ubyte.gz"),
        &idx::encode_labels(&lab),
        true,
    );
    let a = Dataset::load(&d).unwrap();
    let b = Dataset::load(&d).unwrap();
    assert_eq!((a.train.n, a.test.n), (90, 10));
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
    // Every image lands in exactly one part.
    let mut seen: Vec<&[u8]> = (0..90).map(|i| a.train.image(i)).collect();
    seen.extend((0..10).map(|i| a.test.image(i)));
    seen.sort();
    let mut all: Vec<&[u8]> = img.pixels.chunks(784).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn every_malformed_input_names_the_file_and_the_problem() {
    let d = temp_dir("malformed");
    let (img, lab) = fake(5, 28, 28, 6);
    let good_i = idx::encode_images(&img);
    let good_l = idx::encode_labels(&lab);
    let ip = d.join("x-images");
    let lp = d.join("x-labels");
    write(&lp, &good_l, false);

    // missing file
    let msg = err_of(idx::read_images(&d.join("nope")));
    assert_msg(&msg, &["nope", "missing file"]);
    // wrong magic (a label file where images belong), raw and gzip
    for gz in [false, true] {
        write(&ip, &good_l, gz);
        let msg = err_of(Dataset::load_pair(&ip, &lp));
        assert_msg(
            &msg,
            &["x-images", "wrong magic number 2049", "expected 2051"],
        );
    }
    write(&ip, &[0, 0, 0, 0, 1, 2, 3], false);
    assert_msg(
        &err_of(idx::read_images(&ip)),
        &["x-images", "wrong magic number 0"],
    );
    // truncated header, truncated body (raw and gzip), truncated gzip stream, trailing bytes
    write(&ip, &good_i[..10], false);
    assert_msg(
        &err_of(idx::read_images(&ip)),
        &["x-images", "truncated header"],
    );
    for gz in [false, true] {
        write(&ip, &good_i[..good_i.len() - 1], gz);
        assert_msg(
            &err_of(idx::read_images(&ip)),
            &[
                "x-images",
                "truncated data",
                "5 images of 28×28",
                "3919 bytes",
            ],
        );
    }
    let z = idx::gzip(&good_i);
    std::fs::write(&ip, &z[..z.len() / 2]).unwrap();
    assert_msg(&err_of(idx::read_images(&ip)), &["x-images", "gzip"]);
    let mut long = good_i.clone();
    long.extend_from_slice(&[1, 2, 3]);
    write(&ip, &long, false);
    assert_msg(
        &err_of(idx::read_images(&ip)),
        &["x-images", "3 unexpected bytes"],
    );
    let mut short_l = good_l.clone();
    short_l.pop();
    write(&d.join("short-labels"), &short_l, true);
    assert_msg(
        &err_of(idx::read_labels(&d.join("short-labels"))),
        &["short-labels", "truncated data", "5 labels"],
    );
    // count mismatch
    write(&ip, &good_i, false);
    write(
        &d.join("six-labels"),
        &idx::encode_labels(&[0, 1, 2, 3, 4, 5]),
        false,
    );
    assert_msg(
        &err_of(Dataset::load_pair(&ip, &d.join("six-labels"))),
        &["six-labels", "count mismatch", "6 labels", "5 images"],
    );
    // label ≥ number of classes
    write(
        &d.join("bad-labels"),
        &idx::encode_labels(&[0, 1, 12, 3, 4]),
        false,
    );
    assert_msg(
        &err_of(Dataset::load_pair(&ip, &d.join("bad-labels"))),
        &[
            "bad-labels",
            "label 12 at index 2",
            "number of classes (10)",
        ],
    );
    // zero images, zero labels
    let empty = Images {
        n: 0,
        h: 28,
        w: 28,
        pixels: vec![],
    };
    write(&ip, &idx::encode_images(&empty), true);
    assert_msg(&err_of(idx::read_images(&ip)), &["x-images", "zero images"]);
    write(&d.join("no-labels"), &idx::encode_labels(&[]), false);
    assert_msg(
        &err_of(idx::read_labels(&d.join("no-labels"))),
        &["no-labels", "zero labels"],
    );
    // wrong image size for the model
    let (big, _) = fake(5, 32, 32, 7);
    write(&ip, &idx::encode_images(&big), false);
    assert_msg(
        &err_of(Dataset::load_pair(&ip, &lp)),
        &["x-images", "wrong image size for the model: 32×32", "28×28"],
    );
}

#[test]
fn malformed_folders_are_reported() {
    let d = temp_dir("folders");
    let (img, lab) = fake(5, 28, 28, 8);
    // not a folder
    assert_msg(
        &err_of(Dataset::load(&d.join("absent"))),
        &["absent", "missing data folder"],
    );
    // an empty folder
    assert_msg(&err_of(Dataset::load(&d)), &["no IDX files found"]);
    // standard names with one missing
    write(
        &d.join("train-images-idx3-ubyte.gz"),
        &idx::encode_images(&img),
        true,
    );
    write(
        &d.join("train-labels-idx1-ubyte.gz"),
        &idx::encode_labels(&lab),
        true,
    );
    write(
        &d.join("t10k-images-idx3-ubyte.gz"),
        &idx::encode_images(&img),
        true,
    );
    assert_msg(
        &err_of(Dataset::load(&d)),
        &["t10k-labels-idx1-ubyte", "missing file"],
    );
    // a pair with the labels missing
    let p = temp_dir("folders-pair");
    write(
        &p.join("images-idx3-ubyte.gz"),
        &idx::encode_images(&img),
        true,
    );
    assert_msg(
        &err_of(Dataset::load(&p)),
        &["folders-pair", "missing file", "labels-idx1-ubyte"],
    );
}

fn hash_batch(images: &[f32], labels: &[u32]) -> u64 {
    let mut bytes: Vec<u8> = bytemuck::cast_slice(images).to_vec();
    bytes.extend_from_slice(bytemuck::cast_slice(labels));
    fnv1a(&bytes)
}

/// FNV-1a hash of bytes (stable across platforms): pins the embedded split and its batches.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[test]
fn embedded_split_is_stable_with_every_class_in_both_parts() {
    let ds = Dataset::embedded().unwrap();
    assert_eq!((ds.train.n, ds.test.n), (9000, 1000));
    assert_eq!((ds.train.h, ds.train.w), (SIDE, SIDE));
    let (tr, te) = (ds.train.histogram(), ds.test.histogram());
    assert!(tr.iter().all(|&c| c > 0), "train classes {tr:?}");
    assert!(te.iter().all(|&c| c > 0), "test classes {te:?}");
    let total: Vec<usize> = tr.iter().zip(&te).map(|(a, b)| a + b).collect();
    assert_eq!(
        total,
        [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    // The split is a partition of the embedded file: every digit in exactly one part.
    let whole = idx::decode_images(
        include_bytes!("../assets/mnist-10k/images-idx3-ubyte.gz"),
        "embedded",
    )
    .unwrap();
    let mut parts: Vec<&[u8]> = (0..ds.train.n)
        .map(|i| ds.train.image(i))
        .chain((0..ds.test.n).map(|i| ds.test.image(i)))
        .collect();
    let mut all: Vec<&[u8]> = whole.pixels.chunks(SIDE * SIDE).collect();
    parts.sort_unstable();
    all.sort_unstable();
    assert!(parts == all, "train + test is not the embedded set");
    // The first batch of a seed is the same from two independent batchers, bit for bit, and
    // another seed's differs.
    let first = |seed: u64| {
        let b = Batcher::new(&gpu(), &ds.train, Task::Plain, Part::Train, 64, seed).unwrap();
        let batch = b.batch(0).unwrap();
        hash_batch(
            &batch.images.to_vec().unwrap(),
            &batch.labels.to_vec_u32().unwrap(),
        )
    };
    assert_eq!(first(0), first(0));
    assert_ne!(first(0), first(1));
}

#[test]
fn task_names_classes_and_sizes() {
    for (name, t, c, s) in [
        ("plain", Task::Plain, 10, 28),
        ("symmetric", Task::Symmetric, 10, 28),
        ("rot-sb", Task::RotSb, 20, 28),
        ("trans-sb", Task::TransSb, 20, 48),
        ("symmetric-d4", Task::SymmetricD4, 10, 28),
        ("mirror-sb", Task::MirrorSb, 20, 28),
    ] {
        let parsed: Task = name.parse().unwrap();
        assert_eq!(parsed, t);
        assert_eq!(t.to_string(), name);
        assert_eq!((t.num_classes(), t.image_size()), (c, s));
    }
    let e = "rotated".parse::<Task>().unwrap_err().to_string();
    assert_msg(
        &e,
        &[
            "unknown task 'rotated'",
            "plain, symmetric, rot-sb, trans-sb, symmetric-d4, mirror-sb",
        ],
    );
}

/// The GPU batch converted back to grey levels.
fn to_u8(v: &[f32]) -> Vec<u8> {
    v.iter().map(|x| (x * 255.0).round() as u8).collect()
}

#[test]
fn each_task_follows_its_rule() {
    let g = gpu();
    let ds = Dataset::embedded()
        .unwrap()
        .subset(Some(400), Some(400))
        .unwrap();
    for task in Task::ALL {
        for part in [Part::Train, Part::Test] {
            let split = ds.part(part);
            let b = Batcher::new(&g, split, task, part, 400, 3).unwrap();
            let batch = b.batch(0).unwrap();
            let imgs = to_u8(&batch.images.to_vec().unwrap());
            let labels = batch.labels.to_vec_u32().unwrap();
            let s = task.image_size();
            let mut rots = [0usize; 8];
            let (mut left, mut right) = (0, 0);
            for (k, smp) in b.samples().iter().enumerate() {
                let digit = split.labels[smp.index as usize] as u32;
                let got = &imgs[k * s * s..(k + 1) * s * s];
                let orig = split.image(smp.index as usize);
                rots[smp.rot as usize] += 1;
                match task {
                    Task::Plain => {
                        assert_eq!((smp.rot, smp.dx, smp.dy), (0, 0, 0));
                        assert_eq!(labels[k], digit);
                        assert_eq!(got, orig);
                    }
                    Task::Symmetric | Task::RotSb => {
                        assert_eq!((smp.dx, smp.dy), (0, 0));
                        if task == Task::Symmetric && part == Part::Train {
                            assert_eq!(smp.rot, 0, "symmetric trains upright");
                        }
                        let want = if task == Task::RotSb && smp.rot >= 2 {
                            digit + 10
                        } else {
                            digit
                        };
                        assert_eq!(labels[k], want, "{task} rot {}", smp.rot);
                        assert_eq!(
                            got,
                            rd::rot90_k(orig, SIDE, smp.rot),
                            "{task} rot {}",
                            smp.rot
                        );
                    }
                    Task::SymmetricD4 | Task::MirrorSb => {
                        assert_eq!((smp.dx, smp.dy), (0, 0));
                        if task == Task::SymmetricD4 && part == Part::Train {
                            assert_eq!(smp.rot, 0, "symmetric-d4 trains upright");
                        }
                        let mirrored = smp.rot >= 4;
                        let want = digit
                            + if task == Task::MirrorSb && mirrored {
                                10
                            } else {
                                0
                            };
                        assert_eq!(labels[k], want, "{task} element {}", smp.rot);
                        // Turned r times, then the rows reversed (numpy's flipud) when m = 1.
                        let turned = rd::rot90_k(orig, SIDE, smp.rot % 4);
                        let want_img: Vec<u8> = if mirrored {
                            turned.chunks(SIDE).rev().flatten().copied().collect()
                        } else {
                            turned
                        };
                        assert_eq!(got, want_img, "{task} element {}", smp.rot);
                    }
                    Task::TransSb => {
                        assert_eq!(smp.rot, 0);
                        assert!((5..=15).contains(&smp.dx.abs()), "dx {}", smp.dx);
                        assert!((0..=15).contains(&smp.dy), "dy {}", smp.dy);
                        if smp.dx > 0 {
                            right += 1;
                        } else {
                            left += 1;
                        }
                        assert_eq!(labels[k], digit + if smp.dx > 0 { 10 } else { 0 });
                        // Pixel (y, x) of the digit sits at (10 + y + dy, 10 + x + dx) or is lost.
                        for y in 0..SIDE {
                            for x in 0..SIDE {
                                let (ty, tx) = (10 + y as i32 + smp.dy, 10 + x as i32 + smp.dx);
                                if (0..48).contains(&ty) && (0..48).contains(&tx) {
                                    assert_eq!(
                                        got[ty as usize * 48 + tx as usize],
                                        orig[y * SIDE + x]
                                    );
                                }
                            }
                        }
                        let mass = |v: &[u8]| v.iter().map(|&p| p as u64).sum::<u64>();
                        assert!(mass(got) <= mass(orig));
                    }
                }
            }
            if task.rotates(part) {
                let n = task.elements(part);
                assert!(
                    rots[..n].iter().all(|&c| c > 25) && rots[n..].iter().all(|&c| c == 0),
                    "{task} {part:?} elements {rots:?}"
                );
            }
            if task == Task::TransSb {
                assert!(left > 150 && right > 150, "left {left} right {right}");
            }
        }
    }
}

#[test]
fn rotation_is_numpy_rot90_counter_clockwise_and_the_mirror_flips_the_rows() {
    // One bright pixel at the top-right corner: rot90 (counter-clockwise) takes it to the top-left,
    // then the bottom-left, then the bottom-right.
    let n = 64;
    let mut img = vec![0u8; SIDE * SIDE];
    img[SIDE - 1] = 255;
    let split = Split {
        images: img.repeat(n),
        labels: vec![3; n],
        n,
        h: SIDE,
        w: SIDE,
    };
    let last = SIDE - 1;
    // The mirror elements (m = 1) flip the rows after the turns: numpy's flipud(rot90(A, r)).
    let corners = [
        (0, last),
        (0, 0),
        (last, 0),
        (last, last),
        (last, last),
        (last, 0),
        (0, 0),
        (0, last),
    ];
    for task in [Task::RotSb, Task::MirrorSb] {
        let b = Batcher::new(&gpu(), &split, task, Part::Train, n, 1).unwrap();
        let out = b.batch(0).unwrap().images.to_vec().unwrap();
        let mut seen = [false; 8];
        for (k, s) in b.samples().iter().enumerate() {
            seen[s.rot as usize] = true;
            let want = corners[s.rot as usize];
            let lit: Vec<(usize, usize)> = (0..SIDE * SIDE)
                .filter(|&i| out[k * SIDE * SIDE + i] != 0.0)
                .map(|i| (i / SIDE, i % SIDE))
                .collect();
            assert_eq!(lit, vec![want], "{task} element {}", s.rot);
            assert_eq!(out[k * SIDE * SIDE + want.0 * SIDE + want.1], 1.0);
        }
        assert_eq!(
            seen.iter().filter(|&&x| x).count(),
            task.elements(Part::Train)
        );
    }
}

#[test]
fn gpu_batches_equal_the_cpu_reference_bit_for_bit() {
    let g = gpu();
    let ds = Dataset::embedded()
        .unwrap()
        .subset(Some(300), Some(100))
        .unwrap();
    for part in [Part::Train, Part::Test] {
        let split = ds.part(part);
        let up = GpuSplit::upload(&g, split).unwrap();
        for task in Task::ALL {
            for resample in [false, true] {
                let mut b = Batcher::on(up.clone(), task, part, 64, 11)
                    .unwrap()
                    .resample(resample)
                    .unwrap();
                for epoch in [0, 1] {
                    b.set_epoch(epoch).unwrap();
                    for step in [0, b.steps() - 1] {
                        let batch = b.batch(step).unwrap();
                        let samples: Vec<rd::Sample> = b
                            .batch_samples(step)
                            .unwrap()
                            .iter()
                            .map(|s| (s.index, s.rot, s.dx, s.dy, s.label))
                            .collect();
                        let (want_i, want_l) = rd::gather(
                            &split.images,
                            SIDE,
                            SIDE,
                            &samples,
                            (b.canvas().size, b.canvas().pad),
                        );
                        let got_i = batch.images.to_vec().unwrap();
                        assert_eq!(
                            batch.images.shape(),
                            [batch.len, 1, b.canvas().size, b.canvas().size]
                        );
                        let same = got_i
                            .iter()
                            .zip(&want_i)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(
                            same && got_i.len() == want_i.len(),
                            "{task} {part:?} epoch {epoch} step {step}"
                        );
                        assert_eq!(batch.labels.to_vec_u32().unwrap(), want_l);
                    }
                }
            }
        }
    }
}

#[test]
fn epochs_shuffle_the_train_part_from_the_seed() {
    let g = gpu();
    let ds = Dataset::embedded()
        .unwrap()
        .subset(Some(200), Some(50))
        .unwrap();
    let up = GpuSplit::upload(&g, &ds.train).unwrap();
    let b = Batcher::on(up.clone(), Task::RotSb, Part::Train, 32, 5).unwrap();
    let (e0, e1) = (b.plan(0), b.plan(1));
    assert_ne!(e0, e1, "each epoch has its own order");
    assert_eq!(b.steps(), 7);
    assert_eq!(b.batch_samples(6).unwrap().len(), 200 - 6 * 32);
    assert!(b.batch(7).is_err());
    let mut idx: Vec<u32> = e1.iter().map(|s| s.index).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..200).collect::<Vec<u32>>());
    // Fixed transforms: the same image gets the same rotation in every epoch.
    let by_index = |p: &[symclone::data::Sample]| {
        let mut v = p.to_vec();
        v.sort_by_key(|s| s.index);
        v
    };
    assert_eq!(by_index(&e0), by_index(&e1));
    // Same seed, same plan; another seed, another plan.
    let again = Batcher::on(up.clone(), Task::RotSb, Part::Train, 32, 5).unwrap();
    assert_eq!(again.plan(1), e1);
    let other = Batcher::on(up, Task::RotSb, Part::Train, 32, 6).unwrap();
    assert_ne!(other.plan(0), e0);
    // The test part keeps its order.
    let t = Batcher::new(&g, &ds.test, Task::Symmetric, Part::Test, 16, 5).unwrap();
    assert!(t
        .plan(3)
        .iter()
        .enumerate()
        .all(|(i, s)| s.index == i as u32));
    assert_msg(
        &err_of(Batcher::new(&g, &ds.test, Task::Plain, Part::Test, 0, 5)),
        &["batch size of 0"],
    );
}

/// Needs Fashion-MNIST on disk: `.ci/run` installs it and runs this test with `--ignored`; on a
/// machine without it the test is reported as ignored, not passed.
#[test]
#[ignore = "needs /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist); .ci/run runs it"]
fn fashion_mnist_loads_when_installed() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    let ds = Dataset::load(dir)
        .unwrap_or_else(|e| panic!("{e} (apt-get install dataset-fashion-mnist)"));
    assert_eq!((ds.train.n, ds.test.n), (60_000, 10_000));
    assert_eq!(ds.train.histogram(), [6000; 10]);
    assert_eq!(ds.test.histogram(), [1000; 10]);
    // Reading the first 100 of each part reads only those.
    let few = Dataset::load_first(dir, Some(100), Some(50)).unwrap();
    assert_eq!((few.train.n, few.test.n), (100, 50));
    assert_eq!(few.train.images[..], ds.train.images[..100 * 784]);
}

/// `trans-sb` on a compact canvas (`--trans-pad`): with p pixels of padding the canvas is the
/// digit plus p on each side, every shift is ⌈p/3⌉..p left or right and 0..p down, the digit
/// arrives whole (every pixel at its shifted place, none lost), the label follows the side,
/// and both sides and every shift occur; the batcher refuses a canvas too small for its digits.
#[test]
fn trans_sb_on_a_compact_canvas_keeps_every_digit_whole() {
    use symclone::data::Canvas;
    let g = gpu();
    let ds = Dataset::embedded()
        .unwrap()
        .subset(Some(400), Some(10))
        .unwrap();
    let split = &ds.train;
    for pad in [1usize, 2, 3] {
        let c = Canvas::compact(SIDE, pad);
        assert_eq!((c.size, c.pad), (SIDE + 2 * pad, pad));
        let b = Batcher::new(&g, split, Task::TransSb, Part::Train, 400, 5)
            .unwrap()
            .with_canvas(c)
            .unwrap();
        let batch = b.batch(0).unwrap();
        assert_eq!(batch.images.shape(), [400, 1, c.size, c.size]);
        let imgs = to_u8(&batch.images.to_vec().unwrap());
        let labels = batch.labels.to_vec_u32().unwrap();
        let (s, p) = (c.size, pad as i32);
        let lo = pad.div_ceil(3) as i32;
        let mut seen = std::collections::BTreeSet::new();
        for (k, smp) in b.samples().iter().enumerate() {
            assert!((lo..=p).contains(&smp.dx.abs()), "pad {pad}: dx {}", smp.dx);
            assert!((0..=p).contains(&smp.dy), "pad {pad}: dy {}", smp.dy);
            seen.insert((smp.dx, smp.dy));
            let digit = split.labels[smp.index as usize] as u32;
            assert_eq!(labels[k], digit + if smp.dx > 0 { 10 } else { 0 });
            let got = &imgs[k * s * s..(k + 1) * s * s];
            let mut want = vec![0u8; s * s];
            let orig = split.image(smp.index as usize);
            for y in 0..SIDE {
                for x in 0..SIDE {
                    let ty = (p + y as i32 + smp.dy) as usize;
                    let tx = (p + x as i32 + smp.dx) as usize;
                    want[ty * s + tx] = orig[y * SIDE + x];
                }
            }
            assert_eq!(got, want, "pad {pad}: digit {k} not whole at its place");
        }
        let shifts = 2 * (p - lo + 1) * (p + 1);
        assert_eq!(
            seen.len() as i32,
            shifts,
            "pad {pad}: shifts drawn {seen:?}"
        );
    }
    let small = Canvas {
        size: SIDE + 1,
        ..Canvas::compact(SIDE, 1)
    };
    let e = Batcher::new(&g, split, Task::TransSb, Part::Train, 8, 5)
        .unwrap()
        .with_canvas(small)
        .err()
        .expect("a canvas smaller than the digit and its padding");
    assert!(e.to_string().contains("cannot hold"), "{e}");
}
