//! The symmetry laws of SPEC §1 and §9, measured with `symclone::equivariance`: the C4 law of a
//! lift → P4 → P4 stack and the D4 law of a lift → p4m → p4m stack for all eight elements,
//! invariance after rotation pooling, translation equivariance of conv2d on the interior — and
//! deliberately wrong transforms (P4 without the axis roll; p4m with a src table that ignores how
//! a reflection reverses the turns) that must fail the check.

mod common;
use common::*;
use std::sync::Arc;
use symclone::equivariance::{c4_act_any, equivariance_error, equivariance_errors, Group};
use symclone::group;
use symclone::nn::conv::{ConvLayer, GroupConv, Lift};
use symclone::nn::Conv2d;
use symclone::ops::pool::{self, RotPool};
use symclone::ops::{conv, elementwise, gconv};
use symclone::reference::{self as r, to64};
use symclone::tensor::Tensor;
use symclone::{Error, Gpu, Result};

/// Lift(1→3) → ReLU → G(3→4) → ReLU → G(4→2), 3×3 filters, no padding, random weights, for the
/// group of order N (4: C4, 8: D4).
struct Stack<const N: usize> {
    lift: ConvLayer<Lift<N>>,
    p1: ConvLayer<GroupConv<N>>,
    p2: ConvLayer<GroupConv<N>>,
}

fn stack(g: &Arc<Gpu>, seed: u64) -> Stack<4> {
    group_stack(g, seed)
}

fn group_stack<const N: usize>(g: &Arc<Gpu>, seed: u64) -> Stack<N> {
    let mut rg = rng(seed);
    Stack {
        lift: ConvLayer::new(g, "lift", 1, 3, 3, 0, &mut rg).unwrap(),
        p1: ConvLayer::new(g, "p1", 3, 4, 3, 0, &mut rg).unwrap(),
        p2: ConvLayer::new(g, "p2", 4, 2, 3, 0, &mut rg).unwrap(),
    }
}

impl<const N: usize> Stack<N> {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let y = elementwise::relu(&self.lift.apply(x)?)?;
        let y = elementwise::relu(&self.p1.apply(&y)?)?;
        self.p2.apply(&y)
    }

    /// The same stack with the group layers' filters built on the CPU from a wrong table in place
    /// of src(k, s), then run through the same conv2d.
    fn apply_wrong(&self, x: &Tensor, table: &dyn Fn(usize, usize) -> usize) -> Result<Tensor> {
        let y = elementwise::relu(&self.lift.apply(x)?)?;
        let y = elementwise::relu(&wrong_layer(&self.p1, &y, table)?)?;
        wrong_layer(&self.p2, &y, table)
    }
}

fn wrong_layer<const N: usize>(
    layer: &ConvLayer<GroupConv<N>>,
    x: &Tensor,
    table: &dyn Fn(usize, usize) -> usize,
) -> Result<Tensor> {
    let w = layer.weight.value();
    let s = w.shape().to_vec();
    let (cout, cin, k) = (s[0], s[1], s[3]);
    let tw = r::gconv::group_filter_with(&to64(&w.to_vec()?), cout, cin, k, N, table);
    let tw: Vec<f32> = tw.iter().map(|&v| v as f32).collect();
    let tw = Tensor::from_slice(x.gpu(), &[cout * N, cin * N, k, k], &tw)?;
    let b = gconv::expand_bias(&layer.bias.value(), N)?;
    let xs = x.shape();
    let y = conv::conv2d(
        &x.reshape(&[xs[0], xs[1] * N, xs[3], xs[4]])?,
        &tw,
        Some(&b),
        layer.pad,
    )?;
    let ys = y.shape().to_vec();
    y.reshape(&[ys[0], cout, N, ys[2], ys[3]])
}

fn input(g: &Arc<Gpu>, n: usize, seed: u64) -> Tensor {
    let v = rng(seed).normal_vec(2 * n * n);
    Tensor::from_slice(g, &[2, 1, n, n], &v).unwrap()
}

#[test]
fn lift_p4_p4_stack_satisfies_the_c4_law() {
    let g = gpu();
    let s = stack(&g, 1);
    for n in [11usize, 28] {
        let x = input(&g, n, n as u64);
        let errs = equivariance_errors(&|x: &Tensor| s.apply(x), &x, &Group::C4).unwrap();
        assert_eq!(errs.len(), 3);
        eprintln!("C4 law {n}×{n}: {errs:?}");
        for (r_, e) in errs.iter().enumerate() {
            assert!(*e <= 1e-5, "{n}×{n}, r = {}: C4 law error {e:.2e}", r_ + 1);
        }
        // The output really is a P4 map of the right size and not trivially zero.
        let y = s.apply(&x).unwrap();
        assert_eq!(y.shape(), [2, 2, 4, n - 6, n - 6]);
        assert!(y.to_vec().unwrap().iter().any(|v| v.abs() > 1e-3));
    }
}

#[test]
fn rotation_pooled_stack_is_invariant() {
    let g = gpu();
    let s = stack(&g, 2);
    for n in [11usize, 28] {
        let x = input(&g, n, 100 + n as u64);
        // Rotation max pooling: (B, C, n', n') maps on which rotating the input only rotates space.
        let pooled = |x: &Tensor| pool::rot_pool(&s.apply(x)?, RotPool::Max);
        let errs = equivariance_errors(&pooled, &x, &Group::C4).unwrap();
        for (r_, e) in errs.iter().enumerate() {
            assert!(
                *e <= 1e-5,
                "{n}×{n}, r = {}: rotation-pooled error {e:.2e}",
                r_ + 1
            );
        }
        // Pooled over rotations and space: (B, C) features, invariant outright.
        let head = |x: &Tensor| pool::global_mean(&pool::rot_pool(&s.apply(x)?, RotPool::Max)?);
        let e = equivariance_error(&head, &x, &Group::C4).unwrap();
        assert!(e <= 1e-5, "{n}×{n}: invariant features error {e:.2e}");
    }
}

#[test]
fn a_p4_transform_without_the_axis_roll_fails_the_c4_law() {
    let g = gpu();
    let s = stack(&g, 3);
    let x = input(&g, 11, 5);
    // The same weights through the correct and the wrong transform.
    let good = equivariance_error(&|x: &Tensor| s.apply(x), &x, &Group::C4).unwrap();
    let no_roll = |_: usize, s: usize| s;
    let bad =
        equivariance_errors(&|x: &Tensor| s.apply_wrong(x, &no_roll), &x, &Group::C4).unwrap();
    eprintln!("correct transform {good:.2e}, no axis roll {bad:?}");
    assert!(good <= 1e-5, "{good:.2e}");
    for (r_, e) in bad.iter().enumerate() {
        assert!(
            *e > 0.05,
            "r = {}: the wrong transform gave only {e:.2e}",
            r_ + 1
        );
    }
    // Without a P4 layer (lift alone) the check passes, so the failure comes from the transform.
    let lift = |x: &Tensor| s.lift.apply(x);
    assert!(equivariance_error(&lift, &x, &Group::C4).unwrap() <= 1e-6);
}

#[test]
fn conv2d_commutes_with_translations_on_the_interior() {
    let g = gpu();
    let mut rg = rng(9);
    let shifts = vec![(1, 0), (0, -2), (3, 4), (-5, 2)];
    for (k, pad) in [(3usize, 0usize), (5, 2), (3, 1)] {
        let c = Conv2d::new(&g, "conv", 3, 4, k, pad, &mut rg).unwrap();
        let v = rg.normal_vec(2 * 3 * 20 * 17);
        let x = Tensor::from_slice(&g, &[2, 3, 20, 17], &v).unwrap();
        let group = Group::Translations {
            shifts: shifts.clone(),
            margin: pad,
        };
        let errs = equivariance_errors(&|x: &Tensor| c.apply(x), &x, &group).unwrap();
        for (e, sh) in errs.iter().zip(&shifts) {
            assert!(*e <= 1e-6, "k = {k}, pad = {pad}, shift {sh:?}: {e:.2e}");
        }
        if pad > 0 {
            // Compared on the whole map, the zero padding breaks the law: the margin matters.
            let whole = Group::Translations {
                shifts: shifts.clone(),
                margin: 0,
            };
            let e = equivariance_error(&|x: &Tensor| c.apply(x), &x, &whole).unwrap();
            assert!(
                e > 1e-3,
                "k = {k}, pad = {pad}: whole-map error only {e:.2e}"
            );
        }
    }
    // A two-layer stack of valid convolutions (margin 0) too.
    let c1 = Conv2d::new(&g, "c1", 1, 3, 3, 0, &mut rg).unwrap();
    let c2 = Conv2d::new(&g, "c2", 3, 2, 3, 0, &mut rg).unwrap();
    let x = input(&g, 16, 11);
    let phi = |x: &Tensor| c2.apply(&elementwise::relu(&c1.apply(x)?)?);
    let e = equivariance_error(&phi, &x, &Group::Translations { shifts, margin: 0 }).unwrap();
    assert!(e <= 1e-6, "{e:.2e}");
}

#[test]
fn bad_inputs_are_errors() {
    let g = gpu();
    let z = Tensor::zeros(&g, &[2, 3, 3, 4, 4]).unwrap();
    assert!(matches!(c4_act_any(&z, 1), Err(Error::Shape { .. })));
    let x = Tensor::zeros(&g, &[1, 1, 4, 5]).unwrap();
    let id = |x: &Tensor| Ok(x.clone());
    assert!(matches!(
        equivariance_error(&id, &x, &Group::C4),
        Err(Error::Shape { .. })
    ));
    let far = Group::Translations {
        shifts: vec![(9, 0)],
        margin: 0,
    };
    assert!(equivariance_error(&id, &x, &far).is_err());
    // A shift past a small map is skipped; the others are measured (one error each).
    let mixed = Group::Translations {
        shifts: vec![(1, 2), (9, 0), (-2, 1)],
        margin: 0,
    };
    let v: Vec<f32> = (0..20).map(|i| i as f32).collect();
    let x = Tensor::from_slice(&g, &[1, 1, 4, 5], &v).unwrap();
    let double = |x: &Tensor| elementwise::affine(x, 2.0, 0.0);
    let errs = equivariance_errors(&double, &x, &mixed).unwrap();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().all(|&e| e == 0.0), "{errs:?}");
}

#[test]
fn lift_p4m_p4m_stack_satisfies_the_d4_law_for_all_eight_elements() {
    let g = gpu();
    let s = group_stack::<8>(&g, 11);
    for n in [11usize, 16] {
        let x = input(&g, n, 40 + n as u64);
        let errs = equivariance_errors(&|x: &Tensor| s.apply(x), &x, &Group::D4).unwrap();
        assert_eq!(errs.len(), 7, "elements 1..7 (0 is trivially exact)");
        eprintln!("D4 law {n}×{n}: {errs:?}");
        for (k, e) in errs.iter().enumerate() {
            assert!(*e <= 1e-5, "{n}×{n}, g_{}: D4 law error {e:.2e}", k + 1);
        }
        let y = s.apply(&x).unwrap();
        assert_eq!(y.shape(), [2, 2, 8, n - 6, n - 6]);
        assert!(y.to_vec().unwrap().iter().any(|v| v.abs() > 1e-3));
        // Pooled over the eight orientations and space: D4-invariant features.
        let head = |x: &Tensor| pool::global_mean(&pool::rot_pool(&s.apply(x)?, RotPool::Mean)?);
        let e = equivariance_error(&head, &x, &Group::D4).unwrap();
        assert!(e <= 1e-5, "{n}×{n}: D4-invariant features error {e:.2e}");
    }
}

#[test]
fn a_p4m_src_table_that_ignores_the_reflection_fails_the_d4_law() {
    let g = gpu();
    let s = group_stack::<8>(&g, 12);
    let x = input(&g, 11, 6);
    // The C4 rule applied to the turns and the reflections taken apart: (m_s ⊕ m_k, (r_s − r_k)
    // mod 4), which forgets that a reflection reverses the sense of the turns.
    let naive = |k: usize, s: usize| 4 * ((k / 4) ^ (s / 4)) + (s % 4 + 4 - k % 4) % 4;
    assert!((0..8).any(|k| (0..8).any(|s| naive(k, s) != group::src(k, s))));
    let good = equivariance_error(&|x: &Tensor| s.apply(x), &x, &Group::D4).unwrap();
    let bad = equivariance_errors(&|x: &Tensor| s.apply_wrong(x, &naive), &x, &Group::D4).unwrap();
    let right =
        equivariance_error(&|x: &Tensor| s.apply_wrong(x, &group::src), &x, &Group::D4).unwrap();
    eprintln!(
        "correct transform {good:.2e}, CPU transform with src {right:.2e}, naive table {bad:?}"
    );
    assert!(good <= 1e-5 && right <= 1e-5, "{good:.2e} {right:.2e}");
    // Exactly the elements whose row of the table is wrong break the law; the others keep it.
    let mut wrong_rows = 0;
    for (i, e) in bad.iter().enumerate() {
        let k = i + 1;
        if (0..8).any(|s| naive(k, s) != group::src(k, s)) {
            wrong_rows += 1;
            assert!(*e > 0.05, "g_{k}: the wrong table gave only {e:.2e}");
        } else {
            assert!(*e <= 1e-5, "g_{k}: a right row gave {e:.2e}");
        }
    }
    assert!(wrong_rows >= 3, "{wrong_rows} wrong rows");
}
