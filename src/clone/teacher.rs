//! Teacher-sourced cloning (**[ours]** in SPEC §3): the sampled loss with a trained teacher's
//! filters as codes and its feature maps as inputs, on the shared regression loop of `train`.

use super::exact::CloneLoss;
use super::operator::ClonedOperator;
use super::train::{fit, optimizer, shifts_for, student_and_target, CloneConfig, CloneStats};
use crate::autograd::{Tape, Var};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// Teacher-sourced cloning (**[ours]** in SPEC §3): the filter codes are those of one layer of a
/// trained teacher (`codes`, (n_codes, code_len), each with the input channel it reads), and the
/// inputs are the teacher's own feature maps at that layer on group-transformed digits
/// (`features`, (N, C_in, planes, d, d) flattened). Each iteration draws `filters` codes and, for
/// each, `batch` maps of its input channel. The teacher's codes and maps are data, not Gaussian,
/// so the loss is always the sampled one (`cfg.loss` is not used).
#[allow(clippy::too_many_arguments)]
pub fn clone_from_teacher(
    gpu: &Arc<Gpu>,
    cfg: &CloneConfig,
    codes: &[f32],
    code_channels: &[usize],
    features: &[f32],
    cin: usize,
    log_every: usize,
    progress: &mut dyn FnMut(usize, f32),
) -> Result<(ClonedOperator, CloneStats)> {
    let cfg = &CloneConfig {
        loss: CloneLoss::Sampled,
        ..cfg.clone()
    };
    cfg.check(gpu)?;
    let code_len = cfg.kind.code_len();
    let planes = cfg.kind.in_planes();
    let (_, n_in) = ClonedOperator::io(cfg.d);
    let per_map = planes * n_in;
    let n_maps = features.len() / (cin * per_map).max(1);
    if codes.len() != code_channels.len() * code_len
        || code_channels.is_empty()
        || n_maps == 0
        || features.len() != n_maps * cin * per_map
    {
        return Err(Error::invalid(format!(
            "teacher-sourced cloning of a {} layer at d = {}: codes ({} values for {} channels) or feature maps ({} values, {cin} channels of {per_map}) do not fit",
            cfg.kind.name(),
            cfg.d,
            codes.len(),
            code_channels.len(),
            features.len()
        )));
    }
    let mut rng = Rng::new(cfg.seed);
    let op = ClonedOperator::new(gpu, cfg.kind, cfg.d, cfg.nb, cfg.m, &mut rng)?;
    let shifts = shifts_for(gpu, cfg.d)?;
    let bs = cfg.batch;
    let mut sample = |rng: &mut Rng, tape: &mut Tape, f: usize| -> Result<(Var, Tensor)> {
        let mut c = Vec::with_capacity(f * code_len);
        let mut x = vec![0.0f32; f * per_map * bs];
        for fi in 0..f {
            let k = rng.below(code_channels.len());
            c.extend(&codes[k * code_len..(k + 1) * code_len]);
            let ch = code_channels[k];
            for j in 0..bs {
                let n = rng.below(n_maps);
                let src = &features[(n * cin + ch) * per_map..(n * cin + ch + 1) * per_map];
                for (i, v) in src.iter().enumerate() {
                    x[(fi * per_map + i) * bs + j] = *v;
                }
            }
        }
        let xt = Tensor::from_slice(gpu, &[f, per_map, bs], &x)?;
        student_and_target(gpu, tape, &op, &shifts, &c, xt)
    };
    let stats = fit(
        gpu,
        cfg,
        optimizer(cfg, &op.params()),
        &mut rng,
        &mut sample,
        log_every,
        progress,
    )?;
    Ok((op, stats))
}
