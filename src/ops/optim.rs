//! Optimiser kernels: one launch updates up to [`SLOTS`] parameter tensors in place, their
//! moments packed in one state buffer. The global gradient-norm clip coefficient is computed on
//! the GPU and read by the update kernels from a buffer.

use super::{reduce, same_shape, shader_params, u32_of, OPTIM};
use crate::tensor::Tensor;
use crate::{Error, Result};

shader_params!(
    /// The uniform block `P` of `optim.wgsl`'s update kernels.
    OptimP = "P" in Ok(OPTIM.src.to_string()), {
        mode: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        wd: f32,
        bc1: f32,
        bc2: f32,
        total: u32,
        n0: u32,
        n1: u32,
        n2: u32,
        o0: u32,
        o1: u32,
        o2: u32,
        _p0: u32,
        s0: f32,
        s1: f32,
        s2: f32,
        _p1: u32,
    }
);

shader_params!(
    /// The uniform block `C` of `optim.wgsl`'s `clip_coef`.
    ClipP = "C" in Ok(OPTIM.src.to_string()), {
        count: u32,
        max_norm: f32,
        _p0: u32,
        _p1: u32,
    }
);

/// Hyper-parameters of one Adam/AdamW step.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// true: AdamW (decoupled decay); false: Adam (L2 decay added to the gradient).
    pub decoupled: bool,
    /// The step number, from 1.
    pub t: u32,
}

/// How many parameter tensors one update launch takes: WebGPU's 8 storage bindings hold the clip
/// coefficient, the packed state and three (parameter, gradient) pairs.
pub const SLOTS: usize = 3;

/// One parameter tensor of an update: its value (updated in place), its gradient, a factor the
/// gradient is multiplied by (before the clip coefficient), and where its state starts in the
/// packed state buffer.
#[derive(Clone, Copy, Debug)]
pub struct Slot<'a> {
    pub param: &'a Tensor,
    pub grad: &'a Tensor,
    pub scale: f32,
    pub offset: usize,
}

/// The update rule of [`step_`].
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    Adam(AdamStep),
    /// SGD with momentum, PyTorch's semantics (the buffer starts as the first gradient: the
    /// state must start at zero).
    Sgd {
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    },
}

impl Rule {
    /// State entries per parameter element: the two moments of Adam, SGD's momentum buffer.
    pub fn moments(&self) -> usize {
        match self {
            Rule::Adam(_) => 2,
            Rule::Sgd { .. } => 1,
        }
    }
}

/// One optimiser step on every slot's parameter, [`SLOTS`] tensors per launch. `state` packs the
/// moments: a slot's first moment (SGD: its momentum buffer) at `offset .. offset + n` and, for
/// Adam, its second at `total + offset ..`, where `total` is half the state's length; it starts
/// at zero. Each gradient is multiplied by its slot's scale and by `clip[0]`.
pub fn step_(slots: &[Slot], state: &Tensor, clip: &Tensor, rule: Rule) -> Result<()> {
    let Some(first) = slots.first() else {
        return Ok(());
    };
    let gpu = first.param.gpu();
    if !state.numel().is_multiple_of(rule.moments()) {
        return Err(Error::shape(
            "optimiser step",
            format!(
                "a state of {} entries for {} moments",
                state.numel(),
                rule.moments()
            ),
        ));
    }
    let total = state.numel() / rule.moments();
    let mut ranges = Vec::with_capacity(slots.len());
    for s in slots {
        same_shape("optimiser step", s.param, s.grad)?;
        if s.offset + s.param.numel() > total {
            return Err(Error::shape(
                "optimiser step",
                format!(
                    "a state of {total} entries per moment has no room for {} at {}",
                    s.param.numel(),
                    s.offset
                ),
            ));
        }
        ranges.push((s.offset, s.offset + s.param.numel()));
    }
    ranges.sort_unstable();
    if ranges.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(Error::invalid(
            "optimiser step: two tensors share state entries",
        ));
    }
    let mut p = match rule {
        Rule::Adam(h) => {
            if h.t == 0 {
                return Err(Error::invalid("Adam step numbers start at 1"));
            }
            OptimP {
                mode: u32::from(h.decoupled),
                lr: h.lr,
                beta1: h.beta1,
                beta2: h.beta2,
                eps: h.eps,
                wd: h.weight_decay,
                bc1: (1.0 - (h.beta1 as f64).powi(h.t as i32)) as f32,
                bc2: (1.0 - (h.beta2 as f64).powi(h.t as i32)) as f32,
                ..Default::default()
            }
        }
        Rule::Sgd {
            lr,
            momentum,
            weight_decay,
        } => OptimP {
            lr,
            beta1: momentum,
            wd: weight_decay,
            ..Default::default()
        },
    };
    p.total = u32_of("optimiser state", total)?;
    let entry = match rule {
        Rule::Adam(_) => "adam",
        Rule::Sgd { .. } => "sgd",
    };
    for group in slots.chunks(SLOTS) {
        // Unused pairs get one-element stand-ins, each its own buffer (never read: their counts
        // are 0).
        let spare = (2 * group.len()..2 * SLOTS)
            .map(|_| Tensor::empty(gpu, &[1]))
            .collect::<Result<Vec<_>>>()?;
        let mut n = [0u32; SLOTS];
        let mut o = [0u32; SLOTS];
        let mut sc = [1f32; SLOTS];
        for (k, s) in group.iter().enumerate() {
            n[k] = u32_of("parameter elements", s.param.numel())?;
            o[k] = u32_of("optimiser state", s.offset)?;
            sc[k] = s.scale;
        }
        [p.n0, p.n1, p.n2] = n;
        [p.o0, p.o1, p.o2] = o;
        [p.s0, p.s1, p.s2] = sc;
        let elements: usize = group.iter().map(|s| s.param.numel()).sum();
        let mut l = gpu.launch(&OPTIM, entry).params(&p).read(clip).write(state);
        for k in 0..SLOTS {
            l = match group.get(k) {
                Some(s) => l.write(s.param).read(s.grad),
                None => {
                    let j = 2 * (k - group.len());
                    l.write(&spare[j]).read(&spare[j + 1])
                }
            };
        }
        l.dispatch_1d(elements, 256)?;
    }
    Ok(())
}

/// `[min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖]` over all gradients, computed on the GPU.
pub fn clip_coefficient(grads: &[Tensor], max_norm: f32) -> Result<Tensor> {
    let gpu = grads
        .first()
        .ok_or_else(|| Error::invalid("gradient clipping with no gradients"))?
        .gpu()
        .clone();
    let count: usize = grads.iter().map(|g| reduce::partial_count(g.numel())).sum();
    let partials = Tensor::empty(&gpu, &[count])?;
    let mut off = 0;
    for g in grads {
        off += reduce::sumsq_partials(g, &partials, off)?;
    }
    let out = Tensor::empty(&gpu, &[2])?;
    gpu.launch(&OPTIM, "clip_coef")
        .params(&ClipP {
            count: u32_of("partial sums", count)?,
            max_norm,
            ..Default::default()
        })
        .read(&partials)
        .write(&out)
        .dispatch([1, 1, 1])?;
    Ok(out)
}
