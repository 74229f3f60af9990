//! Checks on the clones: the equivariance error of each cloned operator, SPEC §3's fidelity of
//! the cloned lift → P4 pair against the true layers (with the feature-map picture), and whether a
//! frozen network's cloned tensors stayed bit-identical through training.

use crate::autograd::Tape;
use crate::clone::operator::K;
use crate::clone::{clone_key, CloneSet};
use crate::clone::{ClonedConv, ClonedOperator, OperatorKind};
use crate::config::RunPlan;
use crate::data::Dataset;
use crate::equivariance::{equivariance_error, Group};
use crate::models::{Model, ModelKind};
use crate::ops::{gconv, transform};
use crate::results::{FeatureMaps, Fidelity};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// A single-channel layer over an operator, with filter `code` and no bias; with `half`, its
/// blocks frozen and read in half precision, as a network with `--half-blocks` reads them.
fn single_channel(
    gpu: &Arc<Gpu>,
    op: &ClonedOperator,
    code: &[f32],
    half: bool,
) -> Result<ClonedConv> {
    let mut rng = Rng::new(0);
    let op = if half {
        op.with_trainable(false)?
    } else {
        op.clone()
    };
    let layer = ClonedConv::new(gpu, "probe", op, 1, 1, &mut rng)?.with_half_blocks(half);
    layer.weight.value().write_slice(code)?;
    layer.bias.value().write_slice(&[0.0])?;
    Ok(layer)
}

/// The true single-channel layer of a kind with filter `code` (no bias), as a map on tensors.
fn true_layer(gpu: &Arc<Gpu>, kind: OperatorKind, code: &[f32], x: &Tensor) -> Result<Tensor> {
    let s = kind.in_planes();
    let w = if s > 1 {
        Tensor::from_slice(gpu, &[1, 1, s, K, K], code)?
    } else {
        Tensor::from_slice(gpu, &[1, 1, K, K], code)?
    };
    match (kind.group(), s > 1) {
        (None, _) => crate::ops::conv::conv2d(x, &w, None, 0),
        (Some(g), false) => gconv::lift_conv(x, &w, None, 0, g),
        (Some(g), true) => gconv::group_conv(x, &w, None, 0, g),
    }
}

fn clone_map(layer: &ClonedConv, x: &Tensor) -> Result<Tensor> {
    let mut tape = Tape::no_grad();
    let v = tape.input(x.clone());
    let y = layer.forward(&mut tape, v)?;
    Ok(tape.value(y).clone())
}

/// One cloned operator and the true layer it clones, as single-channel layers with filter `code`
/// (no bias), on one input: (B, 1, d, d) for Z2 and the lifts, (B, 1, S, d, d) for P4 and p4m
/// (S = 4 or 8 orientations; row-major in
/// `input`). Returns (clone output, true output), row-major; what `examples/load_clone.py`
/// rebuilds from a clone checkpoint.
pub fn layer_outputs(
    gpu: &Arc<Gpu>,
    op: &ClonedOperator,
    code: &[f32],
    input: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let d = op.d;
    let planes = op.kind.in_planes();
    let b = input.len() / (planes * d * d);
    let shape: Vec<usize> = if planes > 1 {
        vec![b, 1, planes, d, d]
    } else {
        vec![b, 1, d, d]
    };
    let x = Tensor::from_slice(gpu, &shape, input)?;
    let layer = single_channel(gpu, op, code, false)?;
    Ok((
        clone_map(&layer, &x)?.to_vec()?,
        true_layer(gpu, op.kind, code, &x)?.to_vec()?,
    ))
}

/// Equivariance errors (clone, true layer) of a cloned operator on Gaussian inputs.
pub fn operator_equivariance(gpu: &Arc<Gpu>, op: &ClonedOperator, seed: u64) -> Result<(f64, f64)> {
    let mut rng = Rng::new(seed);
    let code = rng.normal_vec(op.kind.code_len());
    let d = op.d;
    let planes = op.kind.in_planes();
    let shape: Vec<usize> = if planes > 1 {
        vec![4, 1, planes, d, d]
    } else {
        vec![4, 1, d, d]
    };
    let x = Tensor::from_slice(gpu, &shape, &rng.normal_vec(shape.iter().product()))?;
    let group = match op.kind.group() {
        None => Group::Translations {
            shifts: vec![(1, 2), (-2, 1), (3, -1)],
            margin: 0,
        },
        Some(crate::group::Group::D4) => Group::D4,
        Some(_) => Group::C4,
    };
    let layer = single_channel(gpu, op, &code, false)?;
    // A zero map is trivially equivariant: an operator whose output is zero (untrained blocks)
    // has no equivariance error worth reporting.
    if clone_map(&layer, &x)?.to_vec()?.iter().all(|&v| v == 0.0) {
        return Err(Error::invalid(format!(
            "the {} clone for d = {d} maps every input to zero (its blocks are untrained): its equivariance error would be a meaningless 0",
            op.kind.name()
        )));
    }
    let ec = equivariance_error(&|t: &Tensor| clone_map(&layer, t), &x, &group)?;
    let et = equivariance_error(&|t: &Tensor| true_layer(gpu, op.kind, &code, t), &x, &group)?;
    Ok((ec, et))
}

/// SPEC §3's fidelity: (clone lift → clone P4) against (true lift → true P4) on one digit, with
/// random filters uniform on [0, 1); with `half`, the clones' blocks read in half precision.
pub fn fidelity(
    gpu: &Arc<Gpu>,
    lift: &ClonedOperator,
    p4: &ClonedOperator,
    digit: &[f32],
    seed: u64,
    half: bool,
) -> Result<Fidelity> {
    let mut rng = Rng::new(seed);
    let c1 = rng.uniform_vec(K * K, 0.0, 1.0);
    let c2 = rng.uniform_vec(4 * K * K, 0.0, 1.0);
    let d = lift.d;
    let x = Tensor::from_slice(gpu, &[1, 1, d, d], digit)?;
    let l1 = single_channel(gpu, lift, &c1, half)?;
    let l2 = single_channel(gpu, p4, &c2, half)?;
    let yc = clone_map(&l2, &clone_map(&l1, &x)?)?;
    let yt = true_layer(
        gpu,
        OperatorKind::P4,
        &c2,
        &true_layer(gpu, OperatorKind::Lift, &c1, &x)?,
    )?;
    let (a, b) = (yc.to_vec()?, yt.to_vec()?);
    let mse = a
        .iter()
        .zip(&b)
        .map(|(u, v)| (*u as f64 - *v as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    let ms = b.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / b.len() as f64;
    // For the figure: the four rotation planes of the true and the cloned lift output, for the
    // digit and for the digit turned by 90° (whose planes are the originals turned and rolled).
    let xr = transform::rot90(&x, 1)?;
    let plane = (d - 2) * (d - 2);
    let planes = |v: Vec<f32>| -> Vec<Vec<f32>> { v.chunks(plane).map(<[f32]>::to_vec).collect() };
    let mut maps = FeatureMaps {
        side: d,
        inputs: Vec::new(),
        true_planes: Vec::new(),
        clone_planes: Vec::new(),
    };
    for input in [&x, &xr] {
        maps.inputs.push(input.to_vec()?);
        maps.true_planes.push(planes(
            true_layer(gpu, OperatorKind::Lift, &c1, input)?.to_vec()?,
        ));
        maps.clone_planes
            .push(planes(clone_map(&l1, input)?.to_vec()?));
    }
    Ok(Fidelity {
        mse,
        target_mean_square: ms,
        maps: Some(maps),
    })
}

/// The fidelity check of a run whose clones include the lift for its input side and the P4 after
/// it, on the first test digit (with the feature maps the report's figure shows). None without
/// that pair.
pub fn fidelity_check(
    gpu: &Arc<Gpu>,
    plan: &RunPlan,
    clones: &CloneSet,
    ds: &Dataset,
) -> Result<Option<Fidelity>> {
    let cfg = &plan.cfg;
    let lift = clones.get(&clone_key(OperatorKind::Lift, cfg.side));
    let p4 = clones.get(&clone_key(OperatorKind::P4, cfg.side - 2));
    Ok(match (lift, p4) {
        (Some(l), Some(p)) => {
            let digit: Vec<f32> = ds.test.image(0).iter().map(|&v| v as f32 / 255.0).collect();
            Some(fidelity(gpu, l, p, &digit, cfg.seed, cfg.half_blocks)?)
        }
        _ => None,
    })
}

/// For a network on frozen clones: whether every cloned tensor of the trained model `m` is
/// bit-identical to the clone it started from. None for other networks (KL ones move theirs). A
/// model with no cloned tensor, or one whose tensor has no clone to compare with, is an error:
/// the check never says "unchanged" about nothing.
pub fn clones_unchanged(model: ModelKind, m: &Model, clones: &CloneSet) -> Result<Option<bool>> {
    if model.cloned().is_none() || model.kl() {
        return Ok(None);
    }
    let mut all = true;
    let mut compared = 0;
    for p in m.cloned_params() {
        let key = p.name().to_string();
        let o = clones
            .values()
            .flat_map(|c| c.params())
            .find(|q| q.name() == key)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "frozen-clone check of {model}: its tensor {key} matches no clone given"
                ))
            })?;
        let (a, b) = (p.value().to_vec()?, o.value().to_vec()?);
        all &= a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
        compared += 1;
    }
    if compared == 0 {
        return Err(Error::invalid(format!(
            "frozen-clone check of {model}: the model has no cloned tensor to compare"
        )));
    }
    Ok(Some(all))
}
