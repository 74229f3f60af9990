//! The symmetry laws of SPEC §1, measured with `symclone::equivariance`: the C4 law of a
//! lift → P4 → P4 stack, invariance after rotation pooling, translation equivariance of conv2d on
//! the interior — and a deliberately wrong P4 transform (no axis roll) that must fail the C4 check.

mod common;
use common::*;
use std::sync::Arc;
use symclone::equivariance::{c4_act_any, equivariance_error, equivariance_errors, Group};
use symclone::nn::{Conv2d, GroupConvC4, LiftC4};
use symclone::ops::pool::{self, RotPool};
use symclone::ops::{conv, elementwise, gconv};
use symclone::reference::{self as r, to64};
use symclone::tensor::Tensor;
use symclone::{Error, Gpu, Result};

struct Stack {
    lift: LiftC4,
    p1: GroupConvC4,
    p2: GroupConvC4,
}

/// Lift(1→3) → ReLU → P4(3→4) → ReLU → P4(4→2), 3×3 filters, no padding, random weights.
fn stack(g: &Arc<Gpu>, seed: u64) -> Stack {
    let mut rg = rng(seed);
    Stack {
        lift: LiftC4::new(g, "lift", 1, 3, 3, 0, &mut rg).unwrap(),
        p1: GroupConvC4::new(g, "p1", 3, 4, 3, 0, &mut rg).unwrap(),
        p2: GroupConvC4::new(g, "p2", 4, 2, 3, 0, &mut rg).unwrap(),
    }
}

impl Stack {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let y = elementwise::relu(&self.lift.apply(x)?)?;
        let y = elementwise::relu(&self.p1.apply(&y)?)?;
        self.p2.apply(&y)
    }

    /// The same stack with the P4 layers' filters built by a wrong transform (no roll of the
    /// rotation axis), on the CPU, then run through the same conv2d.
    fn apply_wrong(&self, x: &Tensor) -> Result<Tensor> {
        let y = elementwise::relu(&self.lift.apply(x)?)?;
        let y = elementwise::relu(&wrong_p4(&self.p1, &y)?)?;
        wrong_p4(&self.p2, &y)
    }
}

fn wrong_p4(layer: &GroupConvC4, x: &Tensor) -> Result<Tensor> {
    let w = layer.weight.value();
    let s = w.shape().to_vec();
    let (cout, cin, k) = (s[0], s[1], s[3]);
    let tw = r::gconv::p4_filter_ex(&to64(&w.to_vec()?), cout, cin, k, false);
    let tw: Vec<f32> = tw.iter().map(|&v| v as f32).collect();
    let tw = Tensor::from_slice(x.gpu(), &[cout * 4, cin * 4, k, k], &tw)?;
    let b = gconv::expand_bias4(&layer.bias.value())?;
    let xs = x.shape();
    let y = conv::conv2d(
        &x.reshape(&[xs[0], xs[1] * 4, xs[3], xs[4]])?,
        &tw,
        Some(&b),
        layer.pad,
    )?;
    let ys = y.shape().to_vec();
    y.reshape(&[ys[0], cout, 4, ys[2], ys[3]])
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
    let bad = equivariance_errors(&|x: &Tensor| s.apply_wrong(x), &x, &Group::C4).unwrap();
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
}
