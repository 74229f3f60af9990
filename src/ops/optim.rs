//! Optimiser kernels: one launch updates as many parameter tensors as the device's storage
//! bindings allow (up to [`CAP`]; 3 under WebGPU's default limits), their moments packed in one
//! state buffer. The update kernels are generated for each number of tensors ([`OptimGen`]); the
//! global gradient-norm clip coefficient is computed on the GPU and read by them from a buffer.

use super::{reduce, same_shape, shader_params, u32_of, OPTIM};
use crate::gpu::shader::{Generate, Generated, Shader};
use crate::gpu::Gpu;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::fmt::Write;

shader_params!(
    /// The uniform block `P` of the update kernels (`shaders/optim.wgsl`): per tensor `t`, its
    /// elements `n[t]`, where its state starts `o[t]` and its gradient's scale `s[t]` (each WGSL
    /// array a `vec4` per four tensors).
    OptimP = "P" in OptimGen { slots: 3 }.source(), {
        mode: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        wd: f32,
        bc1: f32,
        bc2: f32,
        total: u32,
        _p0: u32,
        _p1: u32,
        _p2: u32,
        n: [u32; CAP],
        o: [u32; CAP],
        s: [f32; CAP],
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

/// The most parameter tensors one update launch takes (its uniform block has room for this many;
/// 2 + 2 · 16 = 34 storage bindings).
pub const CAP: usize = 16;

const _: () = assert!(2 + 2 * CAP <= crate::gpu::MAX_BINDINGS && CAP.is_multiple_of(4));

/// Parameter tensors per update launch on a device with `limits`: its storage buffers per shader
/// stage hold the clip coefficient, the packed state and a (parameter, gradient) pair per tensor,
/// up to [`CAP`]. WebGPU's default 8 give 3. Below 4 it is still 1, whose launch the device then
/// refuses, naming the limit.
pub fn slots_for(limits: &wgpu::Limits) -> usize {
    let storage = limits.max_storage_buffers_per_shader_stage as usize;
    (storage.saturating_sub(2) / 2).clamp(1, CAP)
}

/// [`slots_for`] the device's limits (those it was opened with).
pub fn slots_per_launch(gpu: &Gpu) -> usize {
    slots_for(&gpu.limits)
}

/// An update kernel for `slots` tensors (1 ..= [`CAP`]): the key of its shader, `optim_k{slots}`,
/// with the entry points `adam` and `sgd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OptimGen {
    pub slots: u32,
}

/// The marker in `shaders/optim.wgsl` where the update kernels' declarations end.
const CLIP_MARKER: &str = "// ---- Gradient-norm clip";

impl Generate for OptimGen {
    /// `optim_k12`.
    fn name(self) -> String {
        format!("optim_k{}", self.slots)
    }

    /// `shaders/optim.wgsl` up to its clip kernel, a (parameter, gradient) binding pair and the
    /// helpers' case for each tensor, then `shaders/optim_update.wgsl`.
    fn source(self) -> Result<String> {
        let k = self.slots;
        if k == 0 || k as usize > CAP {
            return Err(Error::invalid(format!(
                "an optimiser launch takes 1 to {CAP} tensors, not {k}"
            )));
        }
        let cut = OPTIM
            .src
            .find(CLIP_MARKER)
            .ok_or_else(|| Error::Gpu(format!("optim.wgsl lost its `{CLIP_MARKER}` marker")))?;
        let mut s = OPTIM.src[..cut].to_string();
        let _ = writeln!(s, "// ---- Generated: {k} tensors per launch. ----");
        let _ = writeln!(s, "const SLOTS: u32 = {k}u;");
        for t in 0..k {
            let _ = writeln!(
                s,
                "@group(0) @binding({}) var<storage, read_write> w{t}: array<f32>;",
                3 + 2 * t
            );
            let _ = writeln!(
                s,
                "@group(0) @binding({}) var<storage, read> g{t}: array<f32>;",
                4 + 2 * t
            );
        }
        // Tensor t's entry of a per-tensor array of P.
        let at =
            |a: &str, t: u32| format!("p.{a}[{}].{}", t / 4, ["x", "y", "z", "w"][t as usize % 4]);
        s += "\n// Which tensor element i of the launch belongs to (SLOTS: none) and its index there.\n";
        s += "fn slot(i: u32) -> vec2<u32> {\n    var j = i;\n";
        for t in 0..k {
            let n = at("n", t);
            let _ = writeln!(s, "    if j < {n} {{ return vec2<u32>({t}u, j); }}");
            if t + 1 < k {
                let _ = writeln!(s, "    j -= {n};");
            }
        }
        s += "    return vec2<u32>(SLOTS, 0u);\n}\n";
        // One function per helper: a switch over the tensors, the last one its default.
        let mut helper = |head: &str, body: &dyn Fn(u32) -> String| {
            let _ = writeln!(s, "{head} {{\n    switch t {{");
            for t in 0..k {
                let case = if t + 1 < k {
                    format!("case {t}u")
                } else {
                    "default".to_string()
                };
                let _ = writeln!(s, "        {case}: {{ {} }}", body(t));
            }
            s += "    }\n}\n";
        };
        helper("fn weight(t: u32, j: u32) -> f32", &|t| {
            format!("return w{t}[j];")
        });
        // The gradient times its tensor's scale and the clip coefficient.
        helper("fn gradient(t: u32, j: u32) -> f32", &|t| {
            format!("return g{t}[j] * {} * clip[0];", at("s", t))
        });
        helper("fn state_at(t: u32, j: u32) -> u32", &|t| {
            format!("return {} + j;", at("o", t))
        });
        helper("fn set_weight(t: u32, j: u32, w: f32)", &|t| {
            format!("w{t}[j] = w;")
        });
        s += include_str!("../../shaders/optim_update.wgsl");
        Ok(s)
    }
}

static SHADERS: Generated<OptimGen> = Generated::new();

impl OptimGen {
    /// The shader of this variant, built on first use.
    pub fn shader(self) -> Result<&'static Shader> {
        SHADERS.shader(self)
    }
}

/// Every update kernel a launch can run: 1 to [`CAP`] tensors.
pub fn generated_variants() -> Vec<OptimGen> {
    (1..=CAP as u32).map(|slots| OptimGen { slots }).collect()
}

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

impl<'a> Slot<'a> {
    /// One slot per tensor: `params[i]` with `grads[i]`, `scales[i]` and state at `offsets[i]`.
    pub fn each(
        params: &'a [Tensor],
        grads: &'a [Tensor],
        scales: &[f32],
        offsets: &[usize],
    ) -> Vec<Slot<'a>> {
        params
            .iter()
            .zip(grads)
            .zip(scales.iter().zip(offsets))
            .map(|((param, grad), (&scale, &offset))| Slot {
                param,
                grad,
                scale,
                offset,
            })
            .collect()
    }
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

/// One optimiser step on every slot's parameter, [`slots_per_launch`] tensors per launch (in
/// order). `state` packs the moments: a slot's first moment (SGD: its momentum buffer) at
/// `offset .. offset + n` and, for Adam, its second at `total + offset ..`, where `total` is half
/// the state's length; it starts at zero. Each gradient is multiplied by its slot's scale and by
/// `clip[0]`. The result is the same bit for bit however the slots are grouped into launches.
pub fn step_(slots: &[Slot], state: &Tensor, clip: &Tensor, rule: Rule) -> Result<()> {
    let Some(first) = slots.first() else {
        return Ok(());
    };
    let per_launch = slots_per_launch(first.param.gpu());
    step_in_launches_of(slots, state, clip, rule, per_launch)
}

/// [`step_`], `per_launch` tensors per launch (1 ..= [`CAP`]; more than the device's
/// [`slots_per_launch`] is refused at the launch, naming the limit).
pub fn step_in_launches_of(
    slots: &[Slot],
    state: &Tensor,
    clip: &Tensor,
    rule: Rule,
    per_launch: usize,
) -> Result<()> {
    let Some(first) = slots.first() else {
        return Ok(());
    };
    if per_launch == 0 || per_launch > CAP {
        return Err(Error::invalid(format!(
            "an optimiser launch takes 1 to {CAP} tensors, not {per_launch}"
        )));
    }
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
    for group in slots.chunks(per_launch) {
        // A kernel with as many (parameter, gradient) pairs as the group has tensors.
        let shader = OptimGen {
            slots: group.len() as u32,
        }
        .shader()?;
        // The entries past the group's tensors stay 0 (the kernel reads none of them).
        let mut q = p;
        for (k, s) in group.iter().enumerate() {
            q.n[k] = u32_of("parameter elements", s.param.numel())?;
            q.o[k] = u32_of("optimiser state", s.offset)?;
            q.s[k] = s.scale;
        }
        let elements: usize = group.iter().map(|s| s.param.numel()).sum();
        let mut l = gpu.launch(shader, entry).params(&q).read(clip).write(state);
        for s in group {
            l = l.write(s.param).read(s.grad);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_per_launch_follow_the_storage_bindings() {
        let with = |n: u32| {
            slots_for(&wgpu::Limits {
                max_storage_buffers_per_shader_stage: n,
                ..Default::default()
            })
        };
        // WebGPU's default 8: the clip coefficient, the state and three pairs.
        assert_eq!(slots_for(&wgpu::Limits::default()), 3);
        assert_eq!([with(3), with(4), with(9), with(10)], [1, 1, 3, 4]);
        assert_eq!([with(34), with(35), with(1_000_000)], [CAP; 3]);
        assert_eq!(with(33), CAP - 1);
    }

    #[test]
    fn every_update_kernel_validates_and_names_its_family() {
        for g in generated_variants() {
            let src = g.source().unwrap();
            crate::gpu::shader::validate(&g.name(), &src).unwrap();
            assert_eq!(
                crate::gpu::counters::family_name(crate::gpu::counters::family_of(&g.name())),
                "optim"
            );
            let pairs = src.matches("var<storage, read> g").count();
            assert_eq!(pairs, g.slots as usize, "{}", g.name());
        }
        assert!(OptimGen { slots: 0 }.source().is_err());
        assert!(OptimGen {
            slots: CAP as u32 + 1
        }
        .source()
        .is_err());
    }
}
