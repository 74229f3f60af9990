//! Every matrix-product variant, forced on its own device, forward and backward (the taped op's
//! gradients) against the CPU reference on ragged shapes, every transpose, batches and shared
//! operands, bias and ReLU; and each under WebGPU's default limits.

mod common;
use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use symclone::autograd::Tape;
use symclone::ops::matmul::{self, variants::VARIANTS};
use symclone::ops::{elementwise, reduce};
use symclone::reference::{self as r, matmul::Dims, to64};
use symclone::tensor::Tensor;
use symclone::Gpu;

/// A device on the test adapter with every matrix product forced to `variant` (one per variant
/// per test binary; `webgpu`: opened with WebGPU's default limits).
type Devices = Mutex<HashMap<(&'static str, bool), Arc<Gpu>>>;

fn forced(variant: &'static str, webgpu: bool) -> Arc<Gpu> {
    static G: OnceLock<Devices> = OnceLock::new();
    let mut map = G.get_or_init(Default::default).lock().unwrap();
    map.entry((variant, webgpu))
        .or_insert_with(|| {
            let g = if webgpu {
                gpu_with_limits(wgpu::Limits::default())
            } else {
                Gpu::from_env().expect("adapter")
            };
            g.force(matmul::OP, Some(variant));
            g
        })
        .clone()
}

/// One test per variant for each body, like candle's `test_device!`: `$name::$variant`.
macro_rules! test_variants {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[test]
            fn mm_reg() {
                $body("mm_reg");
            }
            #[test]
            fn mm_block64x64() {
                $body("mm_block64x64");
            }
            #[test]
            fn mm_block128x64() {
                $body("mm_block128x64");
            }
            #[test]
            fn mm_block64x128() {
                $body("mm_block64x128");
            }
            #[test]
            fn mm_tiled() {
                $body("mm_tiled");
            }
            #[test]
            fn mm_subgroup() {
                if subgroups_here() {
                    $body("mm_subgroup");
                }
            }
        }
    };
}

/// The variants the macro above lists, which must be every variant the launcher has.
const LISTED: [&str; 6] = [
    "mm_reg",
    "mm_block64x64",
    "mm_block128x64",
    "mm_block64x128",
    "mm_tiled",
    "mm_subgroup",
];

/// Whether the test adapter has subgroup operations; lavapipe (what CI runs) must, so the
/// subgroup variant cannot go untested there. Elsewhere the variant is said to be skipped.
fn subgroups_here() -> bool {
    let g = forced("mm_reg", false);
    if g.info.name.contains("llvmpipe") && g.info.backend == wgpu::Backend::Vulkan {
        assert!(
            g.has_subgroups(),
            "lavapipe offers subgroups; the device must request them"
        );
    }
    if !g.has_subgroups() {
        eprintln!(
            "mm_subgroup skipped: {} has no subgroup operations",
            g.info.name
        );
    }
    g.has_subgroups()
}

#[test]
fn the_macro_lists_every_variant() {
    let all: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
    assert_eq!(all, LISTED, "update test_variants! and LISTED");
}

fn dims(za: usize, zb: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Dims {
    Dims {
        za,
        zb,
        m,
        k,
        n,
        ta,
        tb,
    }
}

/// Forward and backward of `op(A)·op(B) (+ bias) (ReLU)` on `g`, against the reference.
fn check(g: &Arc<Gpu>, d: Dims, bias: bool, relu: bool, seed: u64) {
    let mut rg = rng(seed);
    let (a_shape, b_shape) = (d.a_shape(), d.b_shape());
    let a = rg.normal_vec(a_shape.iter().product());
    let b = rg.normal_vec(b_shape.iter().product());
    let bi = rg.normal_vec(d.n);
    let w = rg.normal_vec(d.batch() * d.m * d.n);
    let (a6, b6, bi6, w6) = (to64(&a), to64(&b), to64(&bi), to64(&w));
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();

    let mut tape = Tape::new();
    let va = tape.leaf(Tensor::from_slice(g, &a_shape, &a).unwrap());
    let vb = tape.leaf(Tensor::from_slice(g, &b_shape, &b).unwrap());
    let vbias = bias.then(|| tape.leaf(Tensor::from_slice(g, &[d.n], &bi).unwrap()));
    let c = matmul::matmul_t(&mut tape, va, vb, d.ta, d.tb, vbias, relu).unwrap();
    let what = format!("{d:?} bias={bias} relu={relu}");

    let bref = bias.then_some(&bi6[..]);
    let want = r::matmul::forward(&a6, &b6, d, bref, relu);
    let babs = abs(&bi6);
    let want_abs = r::matmul::forward(&abs(&a6), &abs(&b6), d, bias.then_some(&babs[..]), relu);
    let got = tape.value(c).to_vec().unwrap();
    assert_sum_close(&format!("C {what}"), &got, &want, &want_abs, d.k);

    let wt = Tensor::from_slice(g, tape.value(c).shape(), &w).unwrap();
    tape.backward_with(c, wt).unwrap();
    let gmask = if relu {
        r::elementwise::relu_bwd(&w6, &want)
    } else {
        w6.clone()
    };
    let (da, db, dbias) = r::matmul::backward(&a6, &b6, d, &gmask);
    let (da_abs, db_abs, _) = r::matmul::backward(&abs(&a6), &abs(&b6), d, &abs(&gmask));
    // dA sums over N (and the batch when A is shared), dB over M (likewise).
    let ka = d.n * if d.za == 0 { d.batch() } else { 1 };
    let kb = d.m * if d.zb == 0 { d.batch() } else { 1 };
    let ga = tape.grad(va).unwrap().to_vec().unwrap();
    assert_sum_close(&format!("dA {what}"), &ga, &da, &da_abs, ka);
    let gb = tape.grad(vb).unwrap().to_vec().unwrap();
    assert_sum_close(&format!("dB {what}"), &gb, &db, &db_abs, kb);
    if let Some(vbias) = vbias {
        let gbias = tape.grad(vbias).unwrap().to_vec().unwrap();
        let dbias_abs = r::matmul::backward(&a6, &b6, d, &abs(&gmask)).2;
        assert_sum_close(
            &format!("dbias {what}"),
            &gbias,
            &dbias,
            &dbias_abs,
            d.batch() * d.m,
        );
    }
}

/// Ragged sizes as M, K and N (K and N further along the list), every transpose combination.
fn ragged(variant: &'static str) {
    let g = forced(variant, false);
    let sizes = [1, 7, 33, 129, 257];
    let mut seed = 0;
    for (i, &m) in sizes.iter().enumerate() {
        let k = sizes[(i + 2) % sizes.len()];
        let n = sizes[(i + 4) % sizes.len()];
        for ta in [false, true] {
            for tb in [false, true] {
                seed += 1;
                check(&g, dims(0, 0, m, k, n, ta, tb), false, false, seed);
            }
        }
    }
    // A long sum and a tall product.
    check(&g, dims(0, 0, 33, 1000, 7, false, true), false, false, 50);
    check(&g, dims(0, 0, 300, 65, 130, true, false), false, false, 51);
}

/// Bias, ReLU and both, batched on both sides and on each side with the other shared.
fn epilogue_and_batches(variant: &'static str) {
    let g = forced(variant, false);
    for (i, (m, k, n)) in [(7, 33, 1), (33, 7, 129), (65, 64, 66)]
        .into_iter()
        .enumerate()
    {
        for (bias, relu) in [(true, false), (false, true), (true, true)] {
            check(
                &g,
                dims(0, 0, m, k, n, false, true),
                bias,
                relu,
                100 + i as u64,
            );
        }
    }
    for (za, zb) in [(3, 3), (0, 4), (5, 0)] {
        for (ta, tb) in [(false, false), (true, true), (true, false)] {
            check(&g, dims(za, zb, 17, 9, 6, ta, tb), true, true, 200);
            check(&g, dims(za, zb, 70, 33, 129, ta, tb), false, false, 201);
        }
    }
}

/// A few cases on a device opened with WebGPU's default limits.
fn webgpu_limits(variant: &'static str) {
    let g = forced(variant, true);
    check(&g, dims(0, 0, 129, 257, 33, false, true), true, true, 300);
    check(&g, dims(2, 0, 33, 7, 257, true, false), false, false, 301);
}

test_variants!(ragged_shapes_all_transposes, ragged);
test_variants!(bias_relu_batches_shared_operands, epilogue_and_batches);
test_variants!(under_webgpu_default_limits, webgpu_limits);

#[test]
fn an_unknown_variant_is_a_one_line_error() {
    let g = gpu();
    let a = Tensor::zeros(&g, &[2, 2]).unwrap();
    let e = matmul::matmul_variant("mm_nope", &a, &a, false, false, None, false).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("mm_nope") && msg.contains("mm_block64x64"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}

#[test]
fn the_register_tile_set_on_a_device_is_the_one_mm_reg_runs() {
    // The tile is the matmul family's per-device setting (`Gpu::with_state`): set on one device,
    // refused when unknown, run by `mm_reg` there, and absent from a fresh device.
    let g = Gpu::from_env().expect("adapter");
    g.force(matmul::OP, Some("mm_reg"));
    matmul::set_reg_tile(&g, (8, 2)).unwrap();
    assert!(matmul::set_reg_tile(&g, (9, 9)).is_err());
    assert!(matmul::set_reg_tile_str(&g, "8").is_err());
    assert_eq!(matmul::reg_tile(&g), (8, 2));
    let a = Tensor::from_slice(&g, &[64, 64], &vec![1.0; 64 * 64]).unwrap();
    let (c, times) = g.profile(|| matmul::matmul(&a, &a, false, false)).unwrap();
    assert!(c.to_vec().unwrap().iter().all(|&v| v == 64.0));
    if let Some(t) = times {
        assert!(
            t.iter().any(|(k, _, _)| k == "matmul_reg_8x2::mm_reg"),
            "{t:?}"
        );
    }
    let h = Gpu::from_env().expect("adapter");
    assert_eq!(matmul::reg_tile(&h), matmul::codegen::DEFAULT_REG_TILE);
}

/// B of `d` as the packing pass lays it out: untransposed, each row zero-padded to a multiple of
/// 4 columns. Returns its shape and values.
fn packed_b(b: &[f32], d: Dims) -> (Vec<usize>, Vec<f32>) {
    let (z, n4) = (d.zb.max(1), d.n.div_ceil(4) * 4);
    let mut out = vec![0.0; z * d.k * n4];
    for zi in 0..z {
        for ki in 0..d.k {
            for ni in 0..d.n {
                let at = if d.tb { ni * d.k + ki } else { ki * d.n + ni };
                out[(zi * d.k + ki) * n4 + ni] = b[zi * d.k * d.n + at];
            }
        }
    }
    let shape = if d.zb == 0 {
        vec![d.k, n4]
    } else {
        vec![d.zb, d.k, n4]
    };
    (shape, out)
}

/// The strided kernels, for products whose B is transposed or whose N is not a multiple of 4:
/// `mm_strided` (one column per invocation, for small products) and `mm_reg_s` (the register
/// tile, which the launcher runs instead of packing B and unpacking C around `mm_reg`). Against
/// the reference on ragged shapes, every transpose, batches on each side, bias and ReLU; both bit
/// for bit the result of `mm_reg` on B packed as the packing pass lays it out (the same fma chain
/// over k), `mm_reg_s` on several register tiles; the launcher's choice of one dispatch for a
/// small product of that kind, and for a large one on the register kernel, but packing for a
/// large one on a workgroup kernel.
#[test]
fn the_strided_kernels_match_the_reference_and_the_packed_path() {
    let g = Gpu::from_env().expect("adapter");
    // A device of its own: the register tile changes below.
    let packed = Gpu::from_env().expect("adapter");
    packed.force(matmul::OP, Some("mm_reg"));
    let mut rg = rng(300);
    let mut n_cases = 0;
    for (za, zb) in [(0, 0), (3, 3), (0, 4), (5, 0)] {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 33, 9),
            (33, 7, 130),
            (65, 64, 66),
            (2, 300, 5),
        ] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                for (bias, relu) in [(false, false), (true, true)] {
                    n_cases += 1;
                    let d = dims(za, zb, m, k, n, ta, tb);
                    let a = rg.normal_vec(d.a_shape().iter().product());
                    let b = rg.normal_vec(d.b_shape().iter().product());
                    let bi = rg.normal_vec(n);
                    let up =
                        |g: &Arc<Gpu>, s: &[usize], v: &[f32]| Tensor::from_slice(g, s, v).unwrap();
                    let run = |g: &Arc<Gpu>, strided: bool| {
                        let (ga, gb) = (up(g, &d.a_shape(), &a), up(g, &d.b_shape(), &b));
                        let gbias = bias.then(|| up(g, &[n], &bi));
                        let c = if strided {
                            matmul::matmul_strided(&ga, &gb, ta, tb, gbias.as_ref(), relu)
                        } else {
                            matmul::matmul_ex(&ga, &gb, ta, tb, gbias.as_ref(), relu)
                        };
                        c.unwrap().to_vec().unwrap()
                    };
                    let got = run(&g, true);
                    let bi6 = to64(&bi);
                    let want =
                        r::matmul::forward(&to64(&a), &to64(&b), d, bias.then_some(&bi6[..]), relu);
                    let abs = |v: &[f32]| v.iter().map(|x| x.abs() as f64).collect::<Vec<_>>();
                    let babs = abs(&bi);
                    let want_abs =
                        r::matmul::forward(&abs(&a), &abs(&b), d, bias.then_some(&babs[..]), relu);
                    let what = format!("{d:?} bias={bias} relu={relu}");
                    assert_sum_close(&format!("strided {what}"), &got, &want, &want_abs, k);
                    // mm_reg on B packed (and its bias padded) on the host, C cropped.
                    let (pshape, pb) = packed_b(&b, d);
                    let n4 = pshape[pshape.len() - 1];
                    let mut pbias = bi.clone();
                    pbias.resize(n4, 0.0);
                    let gbias = bias.then(|| up(&packed, &[n4], &pbias));
                    let c = matmul::matmul_variant(
                        "mm_reg",
                        &up(&packed, &d.a_shape(), &a),
                        &up(&packed, &pshape, &pb),
                        ta,
                        false,
                        gbias.as_ref(),
                        relu,
                    )
                    .unwrap()
                    .to_vec()
                    .unwrap();
                    let cropped: Vec<f32> = c
                        .chunks(n4)
                        .flat_map(|row| row[..n].iter().copied())
                        .collect();
                    assert_eq!(got, cropped, "mm_strided and packed mm_reg differ: {what}");
                    let tiles: &[(u32, u32)] = if bias && tb {
                        &[(4, 2), (16, 12), (32, 8)]
                    } else {
                        &[(32, 8)]
                    };
                    for &t in tiles {
                        matmul::set_reg_tile(&packed, t).unwrap();
                        let regs = run(&packed, false);
                        matmul::set_reg_tile(&packed, matmul::codegen::DEFAULT_REG_TILE).unwrap();
                        assert_eq!(
                            regs, cropped,
                            "mm_reg_s {t:?} and packed mm_reg differ: {what}"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(n_cases, 4 * 5 * 4 * 2);

    // The launcher's choice: one dispatch for a small transposed product; for a large one, one
    // on the register kernel (`mm_reg_s`), the packed path (pack, product, unpack where N is
    // ragged) on a workgroup kernel; the tiled kernel alone for an aligned untransposed one.
    let count = |g: &Arc<Gpu>, m: usize, k: usize, n: usize, tb: bool| {
        let a = Tensor::zeros(g, &[m, k]).unwrap();
        let b = Tensor::zeros(g, &if tb { [n, k] } else { [k, n] }).unwrap();
        g.sync().unwrap();
        let before = g.counters();
        matmul::matmul(&a, &b, false, tb).unwrap();
        let c = g.counters().since(&before);
        g.sync().unwrap();
        c.dispatches
    };
    assert_eq!(count(&g, 64, 9, 10, true), 1, "small, transposed B");
    assert_eq!(count(&g, 512, 10, 9, false), 1, "small, N = 9");
    assert_eq!(count(&g, 64, 9, 12, false), 1, "aligned");
    assert_eq!(
        count(&packed, 512, 512, 512, true),
        1,
        "large, transposed B, mm_reg"
    );
    assert_eq!(
        count(&packed, 512, 300, 257, false),
        1,
        "large, N = 257, mm_reg"
    );
    let block = forced("mm_block64x64", false);
    assert_eq!(
        count(&block, 512, 512, 512, true),
        2,
        "large, transposed B, mm_block: pack and product"
    );
    assert_eq!(
        count(&block, 512, 300, 257, false),
        3,
        "large, N = 257, mm_block: pack, product, unpack"
    );
    let (a, b) = (
        Tensor::zeros(&packed, &[512, 64]).unwrap(),
        Tensor::zeros(&packed, &[257, 64]).unwrap(),
    );
    let (_, times) = packed
        .profile(|| matmul::matmul(&a, &b, false, true))
        .unwrap();
    if let Some(t) = times {
        assert!(
            t.len() == 1 && t[0].0 == "matmul_regs_32x8::mm_reg_s",
            "{t:?}"
        );
    }
}

/// A constant B in half precision (`mm_reg_h`): the packing puts each element's binary16 bits in
/// its word's low half first; `A · B` and, taped, `A · Bᵀ` with `dA = G · B` equal the reference on
/// B rounded to half precision within f32 summation (ragged N, batched A, every register tile the
/// device shrinks to), read half the bytes of the f32 product's B, and differ from the f32 product
/// by about half precision's rounding, not more.
#[test]
fn half_precision_constant_operand() {
    use symclone::autograd::Tape;
    use symclone::ops::matmul::half::{half_words, matmul_half, matmul_half_const_t, HalfMatrix};
    // 1.0 = 0x3C00, 2.0 = 0x4000, -2.0 = 0xC000; a row of 3 is padded to 4.
    assert_eq!(
        half_words(&[1.0, 2.0, -2.0, 0.5, 1.0, 0.0], 2, 3).unwrap(),
        [0x4000_3C00, 0x0000_C000, 0x3C00_3800, 0x0000_0000]
    );
    let g = forced("mm_reg", false);
    // The decoding, value by value: I · B is B exactly, for normals of both signs, subnormals
    // (|v| < 2⁻¹⁴), zeros, values that round up a binade and the largest half.
    let special = [
        1.0f32, -2.5, 0.1, -3.3e-3, 6.0e-5, -1.0e-6, 3.0e-8, 0.0, -0.0, 65504.0, -4095.7, 1.9999,
    ];
    let k = 5;
    let n = special.len();
    let b: Vec<f32> = (0..k * n).map(|i| special[(i * 5 + i / n) % n]).collect();
    let eye: Vec<f32> = (0..k * k)
        .map(|i| if i % (k + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let h = HalfMatrix::from_f32(&Tensor::from_slice(&g, &[k, n], &b).unwrap()).unwrap();
    let got = matmul_half(&Tensor::from_slice(&g, &[k, k], &eye).unwrap(), &h)
        .unwrap()
        .to_vec()
        .unwrap();
    let want: Vec<f32> = b.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    // (Compared as numbers: the sum turns -0 into +0.)
    assert_eq!(got, want, "decoded halves");
    assert!(want.contains(&5.9604645e-8) && want.contains(&65504.0));
    for bad in [65536.0f32, f32::NAN, f32::INFINITY] {
        let e = half_words(&[bad], 1, 1).unwrap_err().to_string();
        assert!(e.contains("half precision"), "{e}");
    }
    let mut rg = rng(41);
    for &(za, m, k, n) in &[
        (0usize, 33usize, 20usize, 12usize),
        (0, 7, 9, 18),
        (3, 5, 36, 1764),
        (0, 300, 196, 225),
    ] {
        let a_shape: Vec<usize> = if za == 0 { vec![m, k] } else { vec![za, m, k] };
        let a = rg.normal_vec(a_shape.iter().product());
        let b = rg.normal_vec(k * n);
        let at = Tensor::from_slice(&g, &a_shape, &a).unwrap();
        let bt = Tensor::from_slice(&g, &[k, n], &b).unwrap();
        let bh = HalfMatrix::from_f32(&bt).unwrap();
        let rounded: Vec<f64> = b.iter().map(|&x| r::matmul::round_half(x as f64)).collect();
        assert_eq!(
            bh.to_f32().unwrap(),
            rounded.iter().map(|&x| x as f32).collect::<Vec<_>>()
        );
        assert_eq!(bh.bytes(), k * n.div_ceil(4) * 8);
        let d = dims(za, 0, m, k, n, false, false);
        let got = matmul_half(&at, &bh).unwrap();
        assert_eq!(
            got.shape()[..],
            {
                let mut s = a_shape.clone();
                s[a_shape.len() - 1] = n;
                s
            }[..]
        );
        let got = got.to_vec().unwrap();
        let a6 = to64(&a);
        let want = r::matmul::forward(&a6, &rounded, d, None, false);
        let want_abs = r::matmul::forward(&abs64(&a6), &abs64(&rounded), d, None, false);
        assert_sum_close(&format!("A·B half {d:?}"), &got, &want, &want_abs, k);
        // Against the f32 product: about 2⁻¹¹ relative to |A|·|B|, so the half path is taken.
        let exact = matmul::matmul(&at, &bt, false, false)
            .unwrap()
            .to_vec()
            .unwrap();
        let (mut worst, mut seen) = (0f64, 0f64);
        for ((x, y), s) in got.iter().zip(&exact).zip(&want_abs) {
            worst = worst.max(((x - y).abs() as f64) / s);
            seen = seen.max((x - y).abs() as f64);
        }
        assert!(worst < 1e-3 && seen > 0.0, "{d:?}: {worst:e} {seen:e}");

        // Taped: y = A · Bᵀ for a constant B (n', k') = (k, n) here read as Bᵀ = the matrix above.
        let bn = Tensor::from_slice(&g, &[n, k], &{
            let mut t = vec![0f32; n * k];
            for i in 0..k {
                for j in 0..n {
                    t[j * k + i] = b[i * n + j];
                }
            }
            t
        })
        .unwrap();
        let bnh = HalfMatrix::from_f32(&bn).unwrap();
        let gy = rg.normal_vec(za.max(1) * m * n);
        let mut shape = a_shape.clone();
        shape[a_shape.len() - 1] = n;
        let mut tape = Tape::new();
        let va = tape.leaf(at.clone());
        let y = matmul_half_const_t(&mut tape, va, &bnh, &bh).unwrap();
        tape.backward_with(y, Tensor::from_slice(&g, &shape, &gy).unwrap())
            .unwrap();
        assert_eq!(tape.value(y).to_vec().unwrap(), got, "taped forward {d:?}");
        let (want_da, _, _) = r::matmul::backward(&a6, &rounded, d, &to64(&gy));
        let (da_abs, _, _) =
            r::matmul::backward(&abs64(&a6), &abs64(&rounded), d, &abs64(&to64(&gy)));
        assert_sum_close(
            &format!("dA half {d:?}"),
            &tape.grad(va).unwrap().to_vec().unwrap(),
            &want_da,
            &da_abs,
            n,
        );
    }
    // A transpose that does not fit, and a K that does not match, are refused.
    let a = Tensor::zeros(&g, &[2, 3]).unwrap();
    let h = HalfMatrix::from_f32(&Tensor::zeros(&g, &[4, 5]).unwrap()).unwrap();
    assert!(matmul_half(&a, &h).is_err());
    let mut tape = Tape::new();
    let va = tape.input(a);
    assert!(matmul_half_const_t(&mut tape, va, &h, &h).is_err());
}

/// A linear layer's ReLU backward and bias gradient in one launch (`relu_bwd_sum_rows`) equal the
/// ReLU backward and then the sum over the rows bit for bit, at row counts around its 4-way
/// partial sums; ill-fitting shapes are refused.
#[test]
fn relu_backward_with_the_bias_sum_equals_the_two_passes() {
    let g = gpu();
    let mut rg = rng(83);
    for (rows, n) in [(1, 1), (3, 10), (32, 64), (129, 7), (64, 300)] {
        let gy = Tensor::from_slice(&g, &[rows, n], &rg.normal_vec(rows * n)).unwrap();
        let y = Tensor::from_slice(&g, &[rows, n], &rg.normal_vec(rows * n)).unwrap();
        let (gm, db) = reduce::relu_bwd_sum_rows(&gy, &y).unwrap();
        let masked = elementwise::relu_bwd(&gy, &y).unwrap();
        assert_eq!(bits(&gm), bits(&masked), "masked gradient {rows}×{n}");
        let sum = reduce::sum_axis(&masked, 0).unwrap();
        assert_eq!(bits(&db), bits(&sum), "bias gradient {rows}×{n}");
    }
    let a = Tensor::zeros(&g, &[2, 3]).unwrap();
    let b = Tensor::zeros(&g, &[3, 2]).unwrap();
    assert!(reduce::relu_bwd_sum_rows(&a, &b).is_err());
    assert!(
        reduce::relu_bwd_sum_rows(&a.reshape(&[6]).unwrap(), &a.reshape(&[6]).unwrap()).is_err()
    );
}
