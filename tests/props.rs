//! Property tests of the parsers: the IDX reader, the safetensors clone loader and the
//! run-configuration parser, fed thousands of random truncations, bit flips and size fields per
//! run. Each input gives a value or one [`symclone::Error`] — never a panic — and no single
//! allocation made while parsing exceeds a stated bound (a counting global allocator measures
//! the largest one on the parsing thread).

mod common;
use common::*;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use symclone::data::idx;

/// The system allocator, recording the largest single allocation made on a thread that asked.
struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if TRACK.with(|t| t.get()) {
            LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if TRACK.with(|t| t.get()) {
            LARGEST.fetch_max(new, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Run `f` and return its result with the largest single allocation it made on this thread.
/// (The properties run one at a time: see the mutex.)
fn largest_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = ONE.lock().unwrap_or_else(|e| e.into_inner());
    LARGEST.store(0, Ordering::Relaxed);
    TRACK.with(|t| t.set(true));
    let r = f();
    TRACK.with(|t| t.set(false));
    (r, LARGEST.load(Ordering::Relaxed))
}

const MIB: usize = 1 << 20;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A change to a valid file: a truncation, bit flips, and 32-bit (or 64-bit) fields overwritten
/// at chosen offsets (the header's size fields among them).
#[derive(Debug, Clone)]
struct Mutation {
    cut: Option<usize>,
    flips: Vec<(usize, u8)>,
    fields: Vec<(usize, u64)>,
}

fn mutation(field_offsets: Vec<usize>) -> impl Strategy<Value = Mutation> {
    let size = prop_oneof![
        Just(0u64),
        Just(1),
        Just(u32::MAX as u64),
        Just(u64::MAX),
        0u64..100_000,
        any::<u64>(),
    ];
    (
        prop::option::weighted(0.3, any::<usize>()),
        prop::collection::vec((any::<usize>(), 0u8..8), 0..4),
        prop::collection::vec((prop::sample::select(field_offsets), size), 0..3),
    )
        .prop_map(|(cut, flips, fields)| Mutation { cut, flips, fields })
}

impl Mutation {
    /// Apply to `bytes`; `width` is the byte width of the size fields, `big` their endianness.
    fn apply(&self, bytes: &[u8], width: usize, big: bool) -> Vec<u8> {
        let mut b = bytes.to_vec();
        for &(at, v) in &self.fields {
            if at + width <= b.len() {
                let le = v.to_le_bytes();
                let be = v.to_be_bytes();
                let src = if big { &be[8 - width..] } else { &le[..width] };
                b[at..at + width].copy_from_slice(src);
            }
        }
        for &(at, bit) in &self.flips {
            if !b.is_empty() {
                let i = at % b.len();
                b[i] ^= 1 << bit;
            }
        }
        if let Some(c) = self.cut {
            b.truncate(c % (b.len() + 1));
        }
        b
    }
}

fn idx_images(n: usize, h: usize, w: usize, seed: u8) -> Vec<u8> {
    idx::encode_images(&idx::Images {
        n,
        h,
        w,
        pixels: (0..n * h * w)
            .map(|i| (i as u8).wrapping_mul(seed | 1))
            .collect(),
    })
}

proptest! {
    #![proptest_config(config(3000))]

    /// The IDX reader, raw and gzip, images and labels: a value whose sizes agree with its data,
    /// or one error; never more than 2 MiB in one allocation (the file is at most 2.5 kB, and
    /// the body grows with the data that arrives, never with what the header declares).
    #[test]
    fn idx_reader_never_panics_nor_trusts_the_header(
        n in 1usize..4, h in 1usize..12, w in 1usize..12, seed in any::<u8>(),
        labels in any::<bool>(), gz in any::<bool>(),
        m in mutation(vec![0, 4, 8, 12]),
    ) {
        let good = if labels {
            idx::encode_labels(&(0..n as u8 * 7).collect::<Vec<_>>())
        } else {
            idx_images(n, h, w, seed)
        };
        // The size fields are mutated in the raw header; gzip is applied after (a mutated gzip
        // stream is covered by flipping bits of the compressed bytes).
        let raw = m.apply(&good, 4, true);
        let bytes = if gz { m.apply(&idx::gzip(&raw), 0, true) } else { raw };
        let (r, largest) = largest_alloc(|| {
            if labels {
                idx::decode_labels(&bytes, "p").map(|l| l.len())
            } else {
                idx::decode_images(&bytes, "p").map(|i| {
                    assert_eq!(i.pixels.len(), i.n * i.h * i.w);
                    i.n
                })
            }
        });
        prop_assert!(largest <= 2 * MIB, "one allocation of {largest} bytes");
        if let Err(e) = r {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("p: ") && !msg.contains('\n'), "{msg}");
        }
    }
}

fn clone_bytes(meta: &[(&str, String)], shapes: &[(&str, Vec<usize>)]) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .iter()
        .map(|(n, sh)| {
            let k: usize = sh.iter().product();
            let v: Vec<f32> = (0..k).map(|i| (i % 7) as f32 * 0.25).collect();
            (n.to_string(), sh.clone(), bytemuck::cast_slice(&v).to_vec())
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
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

proptest! {
    #![proptest_config(config(1500))]

    /// The safetensors clone loader on a mutated z2 clone for d = 5 (a 2.5 kB file): random size
    /// metadata (d, nb, m up to 2⁶⁴), truncations, bit flips and header lengths give a clone or
    /// one error naming the file; no allocation exceeds 4 × the file's size + 1 MiB.
    #[test]
    fn clone_loader_never_panics_nor_trusts_the_metadata(
        d in prop_oneof![Just("5".to_string()), (0u64..600).prop_map(|v| v.to_string()),
                         any::<u64>().prop_map(|v| v.to_string()), ".{0,3}"],
        nb in prop_oneof![Just("3".to_string()), (0u64..2000).prop_map(|v| v.to_string()),
                          any::<u64>().prop_map(|v| v.to_string())],
        mm in prop_oneof![Just("2".to_string()), (0u64..2000).prop_map(|v| v.to_string()),
                          any::<u64>().prop_map(|v| v.to_string())],
        m in mutation(vec![0]),
    ) {
        let g = gpu();
        let good = clone_bytes(
            &[("kind", "z2".into()), ("d", d), ("nb", nb), ("m", mm)],
            &[("z25.blocks", vec![3, 9, 25]), ("z25.m1", vec![9, 2]), ("z25.m2", vec![18, 3])],
        );
        let bytes = m.apply(&good, 8, false);
        let dir = std::env::temp_dir().join(format!("symclone-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clone.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let (r, largest) = largest_alloc(|| symclone::clone::io::load_clone(&g, &path));
        prop_assert!(
            largest <= 4 * bytes.len() + MIB,
            "one allocation of {largest} bytes for a file of {}",
            bytes.len()
        );
        if let Err(e) = r {
            let msg = e.to_string();
            prop_assert!(msg.contains("clone.safetensors") && !msg.contains('\n'), "{msg}");
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Identical content writes identical bytes: a checkpoint's metadata (a map whose iteration
    /// order changes from one map to the next) is written with its keys sorted, so two saves of
    /// the same tensors and the same entries, the maps built in opposite orders, are
    /// byte-identical, list the keys in order, and load back.
    #[test]
    fn identical_checkpoints_are_identical_bytes(
        entries in proptest::collection::btree_map("[a-z_]{1,12}", ".{0,16}", 1..24),
        values in proptest::collection::vec(-1e3f32..1e3, 6),
    ) {
        let g = gpu();
        let params: Vec<symclone::autograd::Param> = ["b.bias", "a.weight"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let t = symclone::tensor::Tensor::zeros(&g, &[3, i + 1]).unwrap();
                t.write_slice(&values[..3 * (i + 1)]).unwrap();
                symclone::autograd::Param::new(*name, t)
            })
            .collect();
        let forward: std::collections::HashMap<String, String> =
            entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let backward: std::collections::HashMap<String, String> =
            entries.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
        let dir = std::env::temp_dir().join(format!("symclone-props-ckpt-{}", std::process::id()));
        let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
        symclone::checkpoint::save(&a, &params, &forward).unwrap();
        symclone::checkpoint::save(&b, &params, &backward).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        prop_assert!(bytes == std::fs::read(&b).unwrap(), "the bytes differ");
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let head: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let text = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let keys: Vec<usize> = entries
            .keys()
            .map(|k| text.find(&format!("{}:", serde_json::to_string(k).unwrap())).unwrap())
            .collect();
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "{}", head);
        symclone::checkpoint::load(&a, &params, &forward).unwrap();
    }
}

/// Every number in a JSON value, with its path (for the size-field mutations).
fn number_paths(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(_) => out.push(at),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                number_paths(x, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                number_paths(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// The configuration parser and its checks on a mutated preset: numbers replaced by huge,
    /// negative or zero values, fields renamed, the text truncated or bit-flipped — a checked
    /// configuration or one one-line error; no allocation over 1 MiB.
    #[test]
    fn config_parser_never_panics_nor_accepts_nonsense(
        paper in any::<bool>(),
        picks in prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            Just(serde_json::json!(0)), Just(serde_json::json!(-1)),
            Just(serde_json::json!(1e300)), Just(serde_json::json!(-1e-30)),
            Just(serde_json::json!(u64::MAX)), Just(serde_json::json!(1_000_000_000u64)),
            Just(serde_json::json!(null)), Just(serde_json::json!("x")),
            Just(serde_json::json!([])),
        ]), 0..3),
        rename in prop::option::weighted(0.2, any::<prop::sample::Index>()),
        m in mutation(vec![0]),
    ) {
        let base = symclone::config::RunConfig::preset(if paper { "paper" } else { "quick" })
            .unwrap();
        let mut v = serde_json::to_value(&base).unwrap();
        let mut paths = Vec::new();
        number_paths(&v, String::new(), &mut paths);
        for (i, val) in &picks {
            *v.pointer_mut(&paths[i.index(paths.len())]).unwrap() = val.clone();
        }
        if let Some(i) = rename {
            let o = v.as_object_mut().unwrap();
            let keys: Vec<String> = o.keys().cloned().collect();
            let k = &keys[i.index(keys.len())];
            let x = o.remove(k).unwrap();
            o.insert(format!("{k}s"), x);
        }
        let text = serde_json::to_vec(&v).unwrap();
        let bytes = m.apply(&text, 0, false);
        let (r, largest) = largest_alloc(|| {
            symclone::config::parse_config(&bytes)
                .map_err(symclone::Error::invalid)
                .and_then(|c| c.validate().map(|_| c))
        });
        prop_assert!(largest <= MIB, "one allocation of {largest} bytes");
        match r {
            Ok(c) => {
                // Accepted: every knob is in range.
                prop_assert!(c.clone.iters >= 1 && c.clone.lr.is_finite() && c.clone.lr > 0.0);
                prop_assert!(c.tasks.iter().all(|t| !t.models.is_empty()
                    && t.train.lr.is_finite() && t.train.beta >= 0.0));
            }
            Err(e) => prop_assert!(!e.to_string().contains('\n'), "{e}"),
        }
    }
}
