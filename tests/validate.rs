//! `--validate` (docs/gpu.md): wgpu's validation and, on Vulkan, the Khronos validation layer with
//! synchronization validation. Each fault is provoked on purpose and must come back as an error
//! that names the kernel — silence alone proves nothing — and a small workload must pass with no
//! message; without the layer the binary says in one line what it uses instead and goes on.

use std::process::Command;
use std::sync::Arc;
use symclone::gpu::{AdapterChoice, Bindable, Shader};
use symclone::ops::{elementwise, matmul, reduce};
use symclone::tensor::Tensor;
use symclone::{Error, Gpu};

/// A device opened as `--validate` opens it, on the adapter the environment chooses.
fn validating() -> Arc<Gpu> {
    Gpu::new(&AdapterChoice {
        validate: true,
        ..AdapterChoice::from_env()
    })
    .expect("the tests need a wgpu adapter (lavapipe: apt-get install mesa-vulkan-drivers)")
}

fn on_vulkan(g: &Gpu) -> bool {
    g.info.backend == wgpu::Backend::Vulkan
}

/// Whether CI asks for everything to be installed (the layer included).
fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Two copy kernels of this test's own (binding 0, the uniform block, is unused).
static PROBE: Shader = Shader {
    name: "probe",
    src: r#"
struct P { unused: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn copy(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x < arrayLength(&dst) && g.x < arrayLength(&src)) { dst[g.x] = src[g.x]; }
}

@compute @workgroup_size(64)
fn copy_again(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x < arrayLength(&dst) && g.x < arrayLength(&src)) { dst[g.x] = src[g.x] + 1.0; }
}
"#,
};

/// A tensor that claims more bytes than its buffer holds: what an op with a wrong size computation
/// would bind.
struct Overstated<'a>(&'a Tensor);

impl Bindable for Overstated<'_> {
    fn buffer(&self) -> &wgpu::Buffer {
        self.0.raw()
    }
    fn bytes(&self) -> u64 {
        self.0.raw().size() + 256
    }
    fn describe(&self) -> String {
        "an overstated tensor".into()
    }
}

fn expect_validation(r: Result<(), Error>, kernel: &str) -> String {
    match r {
        Err(Error::Validation { kernel: k, message }) => {
            assert_eq!(k, kernel, "the error names the wrong kernel: {message}");
            let line = Error::Validation {
                kernel: k,
                message: message.clone(),
            }
            .to_string();
            assert!(!line.contains('\n'), "not one line: {line}");
            eprintln!("{line}");
            message
        }
        other => panic!("expected a validation error naming {kernel}, got {other:?}"),
    }
}

#[test]
fn a_binding_past_the_end_of_its_buffer_is_an_error_naming_the_kernel() {
    let g = validating();
    let a = Tensor::zeros(&g, &[64]).unwrap();
    let b = Tensor::zeros(&g, &[64]).unwrap();
    let r = g
        .launch(&PROBE, "copy")
        .read(&Overstated(&a))
        .write(&b)
        .dispatch([1, 1, 1])
        .and_then(|()| g.sync());
    let m = expect_validation(r, "probe::copy");
    assert!(m.to_lowercase().contains("bind"), "{m}");
}

#[test]
fn a_buffer_bound_for_reading_and_writing_is_an_error_naming_the_kernel() {
    let g = validating();
    let a = Tensor::zeros(&g, &[64]).unwrap();
    let b = Tensor::zeros(&g, &[64]).unwrap();
    // The faulty dispatch comes first and a sound one after it, in one submission: the error must
    // name the faulty one, not the last.
    let r = g
        .launch(&PROBE, "copy_again")
        .read(&a)
        .write(&a)
        .dispatch([1, 1, 1])
        .and_then(|()| {
            g.launch(&PROBE, "copy")
                .read(&a)
                .write(&b)
                .dispatch([1, 1, 1])
        })
        .and_then(|()| g.sync());
    expect_validation(r, "probe::copy_again");
}

#[test]
fn a_hazard_only_synchronization_validation_sees_is_an_error_naming_its_command_buffer() {
    let g = validating();
    let v = g.validation().expect("validating").clone();
    if !on_vulkan(&g) || !v.layer_loaded() {
        assert!(
            !(ci() && on_vulkan(&g)),
            "CI: the Khronos validation layer must be installed (apt-get install vulkan-validationlayers)"
        );
        eprintln!(
            "skipped: no Khronos validation layer here ({})",
            g.validation_line().unwrap()
        );
        return;
    }
    assert!(v.sync_validation(), "{}", g.validation_line().unwrap());
    let m = expect_validation(g.provoke_hazard_for_tests().map(drop), "hazard::copy_twice");
    assert!(m.contains("SYNC-HAZARD-WRITE-AFTER-WRITE"), "{m}");
    // The layer names the buffer by its label: wgpu hands the labels on.
    assert!(m.contains("[hazard target]"), "{m}");
}

#[test]
fn a_small_workload_passes_with_no_message() {
    let g = validating();
    let a = Tensor::from_slice(
        &g,
        &[33, 17],
        &(0..33 * 17).map(|i| (i % 7) as f32).collect::<Vec<_>>(),
    )
    .unwrap();
    let b = Tensor::from_slice(
        &g,
        &[17, 9],
        &(0..17 * 9)
            .map(|i| (i % 5) as f32 - 2.0)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let c = matmul::matmul(&a, &b, false, false).unwrap();
    let r = elementwise::relu(&c).unwrap();
    let s = reduce::sum_axis(&r, 0).unwrap();
    let got = s.to_vec().unwrap();
    // The same on the host (exact: small integers).
    let (av, bv) = (a.to_vec().unwrap(), b.to_vec().unwrap());
    let mut want = vec![0f32; 9];
    for i in 0..33 {
        for (j, w) in want.iter_mut().enumerate() {
            let x: f32 = (0..17).map(|k| av[i * 17 + k] * bv[k * 9 + j]).sum();
            *w += x.max(0.0);
        }
    }
    assert_eq!(got, want);
    g.sync().unwrap();
}

fn binary(env: &[(&str, &std::path::Path)]) -> (bool, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_symclone-gpu"));
    c.args([
        "--validate",
        "bench",
        "--filter",
        "no-such-case",
        "--reps",
        "1",
    ]);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_says_in_one_line_what_checks_are_on_and_without_the_layer_goes_on() {
    let g = validating();
    if !on_vulkan(&g) {
        eprintln!("skipped: the layer is a Vulkan one");
        return;
    }
    let lines = |err: &str| -> Vec<String> {
        err.lines()
            .filter(|l| l.starts_with("validation:"))
            .map(String::from)
            .collect()
    };
    if g.validation().unwrap().layer_loaded() {
        let (ok, err) = binary(&[]);
        assert!(ok, "{err}");
        assert_eq!(
            lines(&err),
            ["validation: wgpu's own checks and the Khronos validation layer, with synchronization validation"],
            "{err}"
        );
    }
    // No layer where the loader looks (VK_LAYER_PATH replaces its search path for layers).
    let empty = tempfile::tempdir().unwrap();
    let (ok, err) = binary(&[("VK_LAYER_PATH", empty.path())]);
    assert!(ok, "{err}");
    let l = lines(&err);
    assert_eq!(l.len(), 1, "{err}");
    assert!(
        l[0].contains("was not found, so wgpu's own checks only"),
        "{err}"
    );
}
