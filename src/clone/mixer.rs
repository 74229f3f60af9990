//! The MLP-Mixer student of SPEC §8: it takes the image *and the filter* as tokens and learns the
//! bilinear map (x, W) ↦ corr(x, W) of a multi-channel convolution (v5: 3×3 filters; v6: 5×5
//! isotropic filters from a 3-ring radial basis). Built from the engine's ops: linear maps
//! (matrix products), LayerNorm, GELU (tanh form), axis swaps for token mixing, concatenation and
//! windows along an axis.

use crate::autograd::{Param, Tape, Var};
use crate::nn::Linear;
use crate::ops::{conv, elementwise, layout, matmul, norm, random, reduce};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// Which teacher (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MixerTeacher {
    /// v5: a multi-channel k×k convolution with N(0, 1) filter entries (translations).
    Conv,
    /// v6: an isotropic filter, 3 radial rings per channel pair with N(0, 1) coefficients.
    Radial,
}

impl MixerTeacher {
    pub fn name(self) -> &'static str {
        match self {
            MixerTeacher::Conv => "mixer-conv",
            MixerTeacher::Radial => "mixer-radial",
        }
    }
}

/// Rings of the radial basis (SPEC §8, **[ours]** profile).
pub const RINGS: usize = 3;
/// Frequency bands per axis of the positional features.
pub const BANDS: usize = 4;
/// Positional features per token: y, x and sin/cos of both at every band.
pub const FEATURES: usize = 2 + 4 * BANDS;

/// A mixer cloning run's settings; [`MixerConfig::paper`] holds SPEC §8's values.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct MixerConfig {
    pub teacher: MixerTeacher,
    /// Input side d.
    pub d: usize,
    /// Kernel side k.
    pub k: usize,
    /// Input and output channels of the teacher.
    pub channels: usize,
    /// Mixer width (SPEC: 24).
    pub width: usize,
    /// Mixer blocks per mixer (SPEC: 2).
    pub depth: usize,
    /// Token-mixing expansion (SPEC: 4, T → 4T → T).
    pub token_mult: usize,
    /// Channel-mixing hidden width (SPEC: 12).
    pub channel_hidden: usize,
    /// Filters per iteration (SPEC: 50).
    pub filters: usize,
    /// Inputs per filter (SPEC: 200 v5, 2000 v6).
    pub batch: usize,
    pub iters: usize,
    /// Iterations per optimiser step (SPEC: 25 v5, 10 v6).
    pub accum: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub clip: f32,
    pub seed: u64,
    /// Optimiser steps of linear learning-rate warm-up (**[ours]**; SPEC: none).
    #[serde(default)]
    pub warmup: usize,
    /// Learning-rate multiplier after every optimiser step (**[ours]**; SPEC: 1, constant).
    #[serde(default = "one")]
    pub lr_decay: f32,
}

fn one() -> f32 {
    1.0
}

impl MixerConfig {
    /// SPEC §8 unchanged.
    pub fn paper(teacher: MixerTeacher) -> Self {
        let v6 = teacher == MixerTeacher::Radial;
        MixerConfig {
            teacher,
            d: 7,
            k: if v6 { 5 } else { 3 },
            channels: 4,
            width: 24,
            depth: 2,
            token_mult: 4,
            channel_hidden: 12,
            filters: 50,
            batch: if v6 { 2000 } else { 200 },
            iters: if v6 { 80_000 } else { 12_000 },
            accum: if v6 { 10 } else { 25 },
            lr: if v6 { 2e-4 } else { 1e-3 },
            weight_decay: 0.01,
            clip: 1.0,
            seed: 0,
            warmup: 0,
            lr_decay: 1.0,
        }
    }

    /// The short preset for a CPU driver (about 2 minutes on lavapipe): the SPEC teacher's kind (a
    /// 3×3 convolution with N(0, 1) taps on Gaussian inputs) cut to one channel on 4×4 images, a
    /// one-block mixer of width 16, and an optimiser step every iteration on 48 filters × 1 input
    /// (lr 1e-2 after a 10-step warm-up, × 0.997 per step, 300 iterations). SPEC §8's recipe takes
    /// a step every 25 iterations: a short run would take a handful of steps, and the mixer leaves
    /// its starting plateau (predicting zero, relative MSE 1) only after about a hundred.
    pub fn quick(teacher: MixerTeacher) -> Self {
        let paper = Self::paper(teacher);
        MixerConfig {
            d: if teacher == MixerTeacher::Radial {
                paper.d
            } else {
                4
            },
            channels: 1,
            width: 16,
            depth: 1,
            filters: 48,
            batch: 1,
            iters: 300,
            accum: 1,
            lr: 1e-2,
            warmup: 10,
            lr_decay: 0.997,
            ..paper
        }
    }

    /// Output side d − k + 1.
    pub fn out_side(&self) -> usize {
        self.d + 1 - self.k
    }

    /// Filter tokens: k² taps (v5) or the ring coefficients (v6).
    pub fn filter_tokens(&self) -> usize {
        match self.teacher {
            MixerTeacher::Conv => self.k * self.k,
            MixerTeacher::Radial => RINGS,
        }
    }

    /// Tokens T = d² + K + o².
    pub fn tokens(&self) -> usize {
        self.d * self.d + self.filter_tokens() + self.out_side().pow(2)
    }

    /// Channels of an input token: pixel values and positional features.
    pub fn token_channels(&self) -> usize {
        self.channels + FEATURES
    }

    /// Check the settings before anything is allocated: one clear error per bad value.
    pub fn check(&self) -> Result<()> {
        use crate::error::{non_negative, positive};
        if self.k == 0 || self.d == 0 {
            return Err(Error::invalid(format!(
                "mixer: image side {} and kernel side {} must be at least 1",
                self.d, self.k
            )));
        }
        if self.k > self.d {
            return Err(Error::invalid(format!(
                "mixer: kernel {}×{} is larger than the {}×{} image (output side {} < 1): use --kernel ≤ --dim",
                self.k, self.k, self.d, self.d, self.d as i64 - self.k as i64 + 1
            )));
        }
        if self.teacher == MixerTeacher::Radial && self.k < 2 * RINGS - 1 {
            return Err(Error::invalid(format!(
                "mixer-radial: a {RINGS}-ring radial filter needs a kernel of at least {} (got {})",
                2 * RINGS - 1,
                self.k
            )));
        }
        if self.iters == 0 {
            return Err(Error::invalid(
                "mixer cloning for 0 iterations: use --iters 1 or more",
            ));
        }
        // Upper bounds far above any useful mixer (SPEC §8's are 4, 24, 2, 4, 12, 50, 2,000, 25
        // and 80,000), so a typo is one line, not hours of work or an allocation that fails.
        for (what, v, most) in [
            ("--dim", self.d, 256),
            ("--mixer-channels", self.channels, 256),
            ("--mixer-width", self.width, 4096),
            ("--mixer-depth", self.depth, 64),
            ("--mixer-token-mult", self.token_mult, 64),
            ("--mixer-channel-hidden", self.channel_hidden, 4096),
            ("--mixer-filters", self.filters, 1 << 16),
            ("--mixer-batch", self.batch, 1 << 20),
            ("--mixer-accum", self.accum, 1 << 16),
            ("--iters", self.iters, 100_000_000),
            ("--mixer-warmup", self.warmup, 100_000_000),
        ] {
            if v == 0 && what != "--mixer-warmup" {
                return Err(Error::invalid(format!("mixer: {what} 0: use at least 1")));
            }
            if v > most {
                return Err(Error::invalid(format!(
                    "mixer: {what} {v}: use at most {most}"
                )));
            }
        }
        positive("mixer learning rate", self.lr)?;
        positive("mixer gradient clip", self.clip)?;
        non_negative("mixer weight decay", self.weight_decay)?;
        crate::error::unit_decay("mixer learning-rate decay", self.lr_decay)?;
        Ok(())
    }

    /// Matrix-product FLOPs of one forward pass over `n` samples of `f` filters.
    pub fn forward_flops(&self, f: usize, n: usize) -> f64 {
        let (t, w, c) = (
            self.tokens() as f64,
            self.width as f64,
            self.channels as f64,
        );
        let cin = self.token_channels() as f64;
        let block = 2.0 * 2.0 * w * t * (self.token_mult as f64 * t)
            + 2.0 * 2.0 * t * w * self.channel_hidden as f64;
        let mixer = |ci: f64| 2.0 * t * ci * w + self.depth as f64 * block + 2.0 * t * w * c;
        let embed = 2.0 * (self.filter_tokens() as f64) * c * c * cin * f as f64;
        embed + n as f64 * (mixer(cin) + mixer(c + cin))
    }

    /// FLOPs of one training iteration: forward and backward (twice the forward's products).
    pub fn iteration_flops(&self) -> f64 {
        3.0 * self.forward_flops(self.filters, self.filters * self.batch)
    }
}

/// The positional features of SPEC §8 for a side-n grid: (n², 18), row-major tokens.
pub fn features(n: usize) -> Vec<f32> {
    let lin = |a: f64, b: f64, m: usize, i: usize| {
        if m == 1 {
            a
        } else {
            a + (b - a) * i as f64 / (m - 1) as f64
        }
    };
    let pos: Vec<f64> = (0..n).map(|i| lin(-1.0, 1.0, n, i)).collect();
    let bands: Vec<f64> = (0..BANDS)
        .map(|i| lin(1.0, n as f64 / 2.0, BANDS, i))
        .collect();
    let pi = std::f64::consts::PI;
    let mut out = Vec::with_capacity(n * n * FEATURES);
    for a in 0..n {
        for b in 0..n {
            let (y, x) = (pos[a], pos[b]);
            out.extend([y, x].map(|v| v as f32));
            for trig in [f64::sin, f64::cos] {
                for v in [y, x] {
                    out.extend(bands.iter().map(|f| trig(pi * f * v) as f32));
                }
            }
        }
    }
    out
}

/// The radial basis of v6: (RINGS, k²), ring ρ with profile `exp(−(|p| − ρ)²/(2·0.6²))` around
/// the centre, each ring normalised to unit norm.
pub fn radial_basis(k: usize) -> Vec<f32> {
    let c = (k as f64 - 1.0) / 2.0;
    let mut out = Vec::with_capacity(RINGS * k * k);
    for rho in 0..RINGS {
        let ring: Vec<f64> = (0..k * k)
            .map(|t| {
                let (a, b) = ((t / k) as f64 - c, (t % k) as f64 - c);
                let r = (a * a + b * b).sqrt();
                (-(r - rho as f64).powi(2) / (2.0 * 0.36)).exp()
            })
            .collect();
        let nrm = ring.iter().map(|v| v * v).sum::<f64>().sqrt();
        out.extend(ring.iter().map(|v| (v / nrm) as f32));
    }
    out
}

/// One iteration's teacher: F filters drawn on the GPU and, for each, the conv weight.
pub struct Filters {
    /// The filter tokens' values: (F, K, C·C), one token per tap (v5) or ring (v6).
    pub tokens: Tensor,
    /// The conv weights: (F, C, C, k, k).
    pub weights: Tensor,
}

/// Draw F filters on the GPU (N(0, 1) entries or ring coefficients) with the seed.
pub fn draw_filters(gpu: &Arc<Gpu>, cfg: &MixerConfig, f: usize, seed: u64) -> Result<Filters> {
    let (c, k, kt) = (cfg.channels, cfg.k, cfg.filter_tokens());
    let raw = random::randn(gpu, &[f * c * c, kt], seed)?; // (F·C·C, K)
    let weights = match cfg.teacher {
        MixerTeacher::Conv => raw.reshape(&[f, c, c, k, k])?,
        MixerTeacher::Radial => {
            let basis = Tensor::from_slice(gpu, &[RINGS, k * k], &radial_basis(k))?;
            matmul::matmul(&raw, &basis, false, false)?.reshape(&[f, c, c, k, k])?
        }
    };
    let tokens = layout::swap12(&raw, [f, c * c, kt, 1])?.reshape(&[f, kt, c * c])?;
    Ok(Filters { tokens, weights })
}

/// Pairwise concatenation of many parts along `axis` (a balanced tree: each value moves
/// log₂(parts) times).
pub fn concat_all(mut parts: Vec<Tensor>, axis: usize) -> Result<Tensor> {
    while parts.len() > 1 {
        let mut next = Vec::with_capacity(parts.len().div_ceil(2));
        let mut it = parts.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => layout::concat(&a, &b, axis)?,
                None => a,
            });
        }
        parts = next;
    }
    parts
        .pop()
        .ok_or_else(|| Error::invalid("concatenating no tensors"))
}

/// The teacher's outputs for inputs x (F·bs, C, d, d), filter f on its own bs inputs, with the
/// engine's convolution: (F·bs, C, o, o).
pub fn teacher_outputs(x: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let ws = weights.shape().to_vec();
    let f = ws[0];
    let bs = x.shape()[0] / f.max(1);
    let mut parts = Vec::with_capacity(f);
    for i in 0..f {
        let xi = layout::slice(x, 0, i * bs, bs)?;
        let wi = layout::slice(weights, 0, i, 1)?.reshape(&ws[1..])?;
        parts.push(conv::conv2d(&xi, &wi, None, 0)?);
    }
    concat_all(parts, 0)
}

struct Block {
    ln1: (Param, Param),
    tok1: Linear,
    tok2: Linear,
    ln2: (Param, Param),
    ch1: Linear,
    ch2: Linear,
}

/// SPEC §8's Mixer(C): `Linear(C → width)`, `depth` pre-LayerNorm residual blocks of token mixing
/// (across the T tokens to token_mult·T, GELU, back) and channel mixing (width → hidden, GELU,
/// back), a final LayerNorm.
struct Mixer {
    input: Linear,
    blocks: Vec<Block>,
    ln: (Param, Param),
}

fn layer_norm_params(gpu: &Arc<Gpu>, name: &str, n: usize) -> Result<(Param, Param)> {
    Ok((
        Param::new(format!("{name}.weight"), Tensor::full(gpu, &[n], 1.0)?),
        Param::new(format!("{name}.bias"), Tensor::zeros(gpu, &[n])?),
    ))
}

fn ln_t(tape: &mut Tape, x: Var, p: &(Param, Param)) -> Result<Var> {
    let (g, b) = (tape.param(&p.0), tape.param(&p.1));
    norm::layer_norm_t(tape, x, g, b)
}

/// (A, B, C) → (A, C, B) on the tape.
fn swap_t(tape: &mut Tape, x: Var, [a, b, c]: [usize; 3]) -> Result<Var> {
    let y = layout::swap12_t(tape, x, [a, b, c, 1])?;
    tape.reshape(y, &[a, c, b])
}

/// A linear map over the last axis of (N, T, C).
fn linear_last(tape: &mut Tape, l: &Linear, x: Var, gelu: bool) -> Result<Var> {
    let s = tape.value(x).shape().to_vec();
    let c = s[s.len() - 1];
    let rows = tape.reshape(x, &[s.iter().product::<usize>() / c, c])?;
    let mut y = l.forward(tape, rows, false)?;
    if gelu {
        y = elementwise::gelu_t(tape, y)?;
    }
    let out = tape.value(y).shape()[1];
    let mut shape = s;
    let last = shape.len() - 1;
    shape[last] = out;
    tape.reshape(y, &shape)
}

impl Mixer {
    fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        cfg: &MixerConfig,
        c_in: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        let (t, w) = (cfg.tokens(), cfg.width);
        let mut blocks = Vec::new();
        for i in 0..cfg.depth {
            let n = format!("{name}.blocks.{i}");
            blocks.push(Block {
                ln1: layer_norm_params(gpu, &format!("{n}.ln1"), w)?,
                tok1: Linear::new(gpu, &format!("{n}.token1"), t, cfg.token_mult * t, rng)?,
                tok2: Linear::new(gpu, &format!("{n}.token2"), cfg.token_mult * t, t, rng)?,
                ln2: layer_norm_params(gpu, &format!("{n}.ln2"), w)?,
                ch1: Linear::new(gpu, &format!("{n}.channel1"), w, cfg.channel_hidden, rng)?,
                ch2: Linear::new(gpu, &format!("{n}.channel2"), cfg.channel_hidden, w, rng)?,
            });
        }
        Ok(Mixer {
            input: Linear::new(gpu, &format!("{name}.input"), c_in, w, rng)?,
            blocks,
            ln: layer_norm_params(gpu, &format!("{name}.ln"), w)?,
        })
    }

    /// (N, T, C) → (N, T, width).
    fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var> {
        let mut h = linear_last(tape, &self.input, x, false)?;
        for b in &self.blocks {
            let s = tape.value(h).shape().to_vec();
            let (n, t, w) = (s[0], s[1], s[2]);
            // Token mixing: across the T tokens, per channel.
            let y = ln_t(tape, h, &b.ln1)?;
            let y = swap_t(tape, y, [n, t, w])?; // (N, W, T)
            let y = linear_last(tape, &b.tok1, y, true)?;
            let y = linear_last(tape, &b.tok2, y, false)?;
            let y = swap_t(tape, y, [n, w, t])?; // (N, T, W)
            h = elementwise::add_t(tape, h, y)?;
            // Channel mixing: per token.
            let y = ln_t(tape, h, &b.ln2)?;
            let y = linear_last(tape, &b.ch1, y, true)?;
            let y = linear_last(tape, &b.ch2, y, false)?;
            h = elementwise::add_t(tape, h, y)?;
        }
        ln_t(tape, h, &self.ln)
    }

    fn params(&self) -> Vec<Param> {
        let mut p = self.input.params();
        for b in &self.blocks {
            p.extend([b.ln1.0.clone(), b.ln1.1.clone()]);
            p.extend(b.tok1.params());
            p.extend(b.tok2.params());
            p.extend([b.ln2.0.clone(), b.ln2.1.clone()]);
            p.extend(b.ch1.params());
            p.extend(b.ch2.params());
        }
        p.extend([self.ln.0.clone(), self.ln.1.clone()]);
        p
    }
}

/// The mixer student of SPEC §8.
pub struct MixerModel {
    pub cfg: MixerConfig,
    filter_embed: Linear,
    context: Param,
    encoder: Mixer,
    encoder_head: Linear,
    query: Param,
    decoder: Mixer,
    head: Linear,
    /// Image-token features (d², 18) and the fixed output query tokens (o², C + 18).
    image_features: Tensor,
    output_queries: Tensor,
}

impl MixerModel {
    /// PyTorch's default initialisation for the linear maps, N(0, 1) learned tokens, LayerNorm
    /// scale 1 and shift 0.
    pub fn new(gpu: &Arc<Gpu>, cfg: &MixerConfig, rng: &mut Rng) -> Result<Self> {
        cfg.check()?;
        let (c, o) = (cfg.channels, cfg.out_side());
        let cin = cfg.token_channels();
        let (d2, kt) = (cfg.d * cfg.d, cfg.filter_tokens());
        let mut queries = Vec::with_capacity(o * o * cin);
        for f in features(o).chunks(FEATURES) {
            queries.extend(std::iter::repeat_n(1.0, c));
            queries.extend_from_slice(f);
        }
        Ok(MixerModel {
            cfg: cfg.clone(),
            filter_embed: Linear::new(gpu, "mixer.filter_embed", c * c, cin, rng)?,
            context: Param::new(
                "mixer.context",
                Tensor::from_slice(gpu, &[o * o, cin], &rng.normal_vec(o * o * cin))?,
            ),
            encoder: Mixer::new(gpu, "mixer.encoder", cfg, cin, rng)?,
            encoder_head: Linear::new(gpu, "mixer.encoder_head", cfg.width, c, rng)?,
            query: Param::new(
                "mixer.query",
                Tensor::from_slice(gpu, &[d2 + kt, cin], &rng.normal_vec((d2 + kt) * cin))?,
            ),
            decoder: Mixer::new(gpu, "mixer.decoder", cfg, c + cin, rng)?,
            head: Linear::new(gpu, "mixer.head", cfg.width, c, rng)?,
            image_features: Tensor::from_slice(gpu, &[d2, FEATURES], &features(cfg.d))?,
            output_queries: Tensor::from_slice(gpu, &[o * o, cin], &queries)?,
        })
    }

    /// Every parameter, in a fixed order (checkpoints, the optimiser).
    pub fn params(&self) -> Vec<Param> {
        let mut p = self.filter_embed.params();
        p.push(self.context.clone());
        p.extend(self.encoder.params());
        p.extend(self.encoder_head.params());
        p.push(self.query.clone());
        p.extend(self.decoder.params());
        p.extend(self.head.params());
        p
    }

    /// Trainable parameter count.
    pub fn parameter_count(&self) -> usize {
        self.params().iter().map(|p| p.numel()).sum()
    }

    /// The prediction for inputs x (F·bs, C, d, d), filter f's tokens (F, K, C·C) applying to
    /// its bs inputs: (F·bs, o², C), token-major (transpose to (F·bs, C, o, o) for the conv's
    /// layout with [`to_conv_layout`]).
    pub fn forward(&self, tape: &mut Tape, x: Var, filter_tokens: Var) -> Result<Var> {
        let cfg = &self.cfg;
        let (c, o, cin) = (cfg.channels, cfg.out_side(), cfg.token_channels());
        let (d2, kt, t) = (cfg.d * cfg.d, cfg.filter_tokens(), cfg.tokens());
        let n = tape.value(x).shape()[0];
        let f = tape.value(filter_tokens).shape()[0];
        if f == 0 || !n.is_multiple_of(f) || tape.value(x).shape()[1..] != [c, cfg.d, cfg.d] {
            return Err(Error::shape(
                "mixer",
                format!(
                    "inputs {:?} for {f} filters of {c} channels on {}×{} images",
                    tape.value(x).shape(),
                    cfg.d,
                    cfg.d
                ),
            ));
        }
        let bs = n / f;
        // Image tokens: [pixels (C), features (18)].
        let px = swap_t(tape, x, [n, c, d2])?; // (N, d², C)
        let feats = tape.input(reduce::broadcast_axis(&self.image_features, 0, n, 1.0)?);
        let img = layout::concat_t(tape, px, feats, 2)?; // (N, d², cin)
                                                         // Filter tokens: Linear(C·C → cin) per tap, shared by the filter's bs inputs.
        let ft = linear_last(tape, &self.filter_embed, filter_tokens, false)?; // (F, K, cin)
        let ft = tape.reshape(ft, &[f, 1, kt * cin])?;
        let ft = reduce::repeat_t(tape, ft, 1, bs)?;
        let ft = tape.reshape(ft, &[n, kt, cin])?;
        // Learned context tokens.
        let ctx = tape.param(&self.context);
        let ctx = tape.reshape(ctx, &[1, o * o * cin])?;
        let ctx = reduce::repeat_t(tape, ctx, 0, n)?;
        let ctx = tape.reshape(ctx, &[n, o * o, cin])?;
        let tokens = layout::concat_t(tape, img, ft, 1)?;
        let tokens = layout::concat_t(tape, tokens, ctx, 1)?; // (N, T, cin)
        let e = self.encoder.forward(tape, tokens)?;
        let e = linear_last(tape, &self.encoder_head, e, false)?; // (N, T, C)
                                                                  // Queries: learned (d² + K) tokens, then the fixed output-grid tokens.
        let q = tape.param(&self.query);
        let fixed = tape.input(self.output_queries.clone());
        let q = layout::concat_t(tape, q, fixed, 0)?; // (T, cin)
        let q = tape.reshape(q, &[1, t * cin])?;
        let q = reduce::repeat_t(tape, q, 0, n)?;
        let q = tape.reshape(q, &[n, t, cin])?;
        let z = layout::concat_t(tape, e, q, 2)?; // (N, T, C + cin)
        let y = self.decoder.forward(tape, z)?;
        let y = linear_last(tape, &self.head, y, false)?; // (N, T, C)
        layout::slice_t(tape, y, 1, t - o * o, o * o)
    }

    /// The prediction in the conv's layout (F·bs, C, o, o), without a tape.
    pub fn predict(&self, x: &Tensor, filter_tokens: &Tensor) -> Result<Tensor> {
        let mut tape = Tape::no_grad();
        let xv = tape.input(x.clone());
        let fv = tape.input(filter_tokens.clone());
        let y = self.forward(&mut tape, xv, fv)?;
        to_conv_layout(tape.value(y), self.cfg.channels)
    }
}

/// (N, o², C) token-major → (N, C, o, o).
pub fn to_conv_layout(y: &Tensor, c: usize) -> Result<Tensor> {
    let n = y.shape()[0];
    let o2 = y.numel() / (n * c).max(1);
    let o = (o2 as f64).sqrt().round() as usize;
    layout::swap12(y, [n, o2, c, 1])?.reshape(&[n, c, o, o])
}

/// (N, C, o, o) → (N, o², C), the prediction's layout (for targets).
pub fn to_token_layout(y: &Tensor) -> Result<Tensor> {
    let s = y.shape().to_vec();
    layout::swap12(y, [s[0], s[1], s[2] * s[3], 1])?.reshape(&[s[0], s[2] * s[3], s[1]])
}
