//! The cloned operator of SPEC §2 and the multi-channel layer of SPEC §4 built on it.
//!
//! An operator holds `nb` blocks `B_b` (n_out × n_in), the mixing matrices M1 (k² × m), M2 (k²·m × nb)
//! and, for the group kinds (C4, D4), the learned code transforms T. A filter code c gives coefficients
//! `h(c) = flatten(c_j · M1[j, q]) @ M2` and the map `x ↦ Σ_b h(c)_b B_b x`.

use crate::autograd::Param;
use crate::autograd::{Tape, Var};
use crate::group::{self, Group};
use crate::ops::matmul::half::{self, HalfMatrix};
use crate::ops::{cloned as cl, conv, layout, matmul, reduce};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Gpu, Result};
use std::sync::Arc;

/// Filter side of every cloned layer (SPEC: 3×3).
pub const K: usize = 3;
const K2: usize = K * K;

/// The largest input side a clone may have. A block is (d−2)²×d² floats, so at this side one block
/// alone is 2^36 bytes, past every adapter's buffer limit: the adapter check is what refuses a
/// large side in practice; this bound keeps every size computed from `d` far from overflowing.
pub const MAX_SIDE: usize = 512;
/// The most blocks (`nb`) a clone may have (SPEC: 9; the quick preset 10).
pub const MAX_BLOCKS: usize = 1024;
/// The widest M1 (`m`) a clone may have (SPEC: 10).
pub const MAX_MIX: usize = 1024;

/// Which equivariant layer an operator clones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OperatorKind {
    /// A plain convolution (translations, T(2)).
    Z2,
    /// The lifting C4 convolution Z2 → P4.
    Lift,
    /// The P4 → P4 group convolution.
    P4,
    /// The lifting D4 convolution Z2 → p4m (SPEC §9).
    LiftD4,
    /// The p4m → p4m group convolution (SPEC §9).
    P4m,
}

impl OperatorKind {
    /// Every kind, in the order of their checkpoint keys.
    pub const ALL: [OperatorKind; 5] = [
        OperatorKind::Z2,
        OperatorKind::Lift,
        OperatorKind::P4,
        OperatorKind::LiftD4,
        OperatorKind::P4m,
    ];
    /// The rotation group whose orientations the layer's output carries (None for Z2).
    pub fn group(self) -> Option<Group> {
        match self {
            OperatorKind::Z2 => None,
            OperatorKind::Lift | OperatorKind::P4 => Some(Group::C4),
            OperatorKind::LiftD4 | OperatorKind::P4m => Some(Group::D4),
        }
    }
    /// Length of one filter code: 9 for Z2 and the lifts, 4·9 for P4, 8·9 for p4m.
    pub fn code_len(self) -> usize {
        self.in_planes() * K2
    }
    /// Input planes per channel (the 4 or 8 orientations of P4 and p4m inputs).
    pub fn in_planes(self) -> usize {
        match self {
            OperatorKind::P4 | OperatorKind::P4m => self.out_planes(),
            _ => 1,
        }
    }
    /// Output planes per channel (the group's order for the group kinds).
    pub fn out_planes(self) -> usize {
        self.group().map_or(1, Group::order)
    }
    /// Transformed codes per filter: 1, 4 or 8 (k), 16 or 64 (k, s).
    pub fn codes_per_filter(self) -> usize {
        self.in_planes() * self.out_planes()
    }
    pub fn name(self) -> &'static str {
        match self {
            OperatorKind::Z2 => "z2",
            OperatorKind::Lift => "lift",
            OperatorKind::P4 => "p4",
            OperatorKind::LiftD4 => "lift-d4",
            OperatorKind::P4m => "p4m",
        }
    }
    /// The stem of an operator's names (its tensors, its files in `clones/`): the kind's name and
    /// d, with a `-` between them when the name ends in a digit of its own (`lift-d4-16`; the C4
    /// kinds keep their `p414` of old, which checkpoints already carry).
    pub fn stem(self, d: usize) -> String {
        match self {
            OperatorKind::LiftD4 => format!("{}-{d}", self.name()),
            _ => format!("{}{d}", self.name()),
        }
    }
    /// The kind named `name` (as [`OperatorKind::name`] writes it).
    pub fn from_name(name: &str) -> Option<OperatorKind> {
        OperatorKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The exact transformed codes of the true equivariant layer (SPEC §1, §9), row-major (R, 9) per
/// filter: Z2: c; the lifts: g_k·c for every element k; P4 and p4m: g_k·c_{src(k, s)} for (k, s).
pub fn true_codes(kind: OperatorKind, code: &[f32]) -> Vec<f32> {
    let (rn, sn) = (kind.out_planes(), kind.in_planes());
    let mut out = Vec::with_capacity(kind.codes_per_filter() * K2);
    for k in 0..rn {
        for s in 0..sn {
            let t = if sn > 1 { group::src(k, s) } else { 0 };
            out.extend(group::act_planes(&code[t * K2..(t + 1) * K2], K, k));
        }
    }
    out
}

/// The 9 0/1 shift matrices of a valid 3×3 correlation on d×d inputs, (9, n_out, n_in): with them as
/// blocks and the code itself as coefficients the operator is exactly the true layer.
pub fn shift_blocks(d: usize) -> Vec<f32> {
    let o = d + 1 - K;
    let (n_out, n_in) = (o * o, d * d);
    let mut s = vec![0.0f32; K2 * n_out * n_in];
    for u in 0..K {
        for v in 0..K {
            let j = u * K + v;
            for a in 0..o {
                for b in 0..o {
                    s[(j * n_out + a * o + b) * n_in + (a + u) * d + (b + v)] = 1.0;
                }
            }
        }
    }
    s
}

/// A cloned operator for one (kind, input size d).
#[derive(Clone)]
pub struct ClonedOperator {
    pub kind: OperatorKind,
    pub d: usize,
    pub nb: usize,
    pub m: usize,
    /// (nb, n_out, n_in)
    pub blocks: Param,
    /// (9, m)
    pub m1: Param,
    /// (9·m, nb)
    pub m2: Param,
    /// The lifts: (R·9, 9) — T_k stacked (R = 4 or 8); P4 and p4m: (R·9, code_len) — T_{k,s}
    /// with columns (t, b) (R = 16 or 64).
    pub t: Option<Param>,
}

impl std::fmt::Debug for ClonedOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClonedOperator({:?}, d = {}, nb = {}, m = {})",
            self.kind, self.d, self.nb, self.m
        )
    }
}

impl ClonedOperator {
    /// A fresh operator as SPEC §2 initialises it: blocks zero, M1, M2 and T uniform on [0, 1).
    pub fn new(
        gpu: &Arc<Gpu>,
        kind: OperatorKind,
        d: usize,
        nb: usize,
        m: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        Self::check_sizes(gpu, kind, d, nb, m)?;
        let (n_out, n_in) = Self::io(d);
        let name = kind.stem(d);
        let blocks = Param::new(
            format!("{name}.blocks"),
            Tensor::zeros(gpu, &[nb, n_out, n_in])?,
        );
        let m1 = Param::new(
            format!("{name}.m1"),
            Tensor::from_slice(gpu, &[K2, m], &rng.uniform_vec(K2 * m, 0.0, 1.0))?,
        );
        let m2 = Param::new(
            format!("{name}.m2"),
            Tensor::from_slice(gpu, &[K2 * m, nb], &rng.uniform_vec(K2 * m * nb, 0.0, 1.0))?,
        );
        let t = match Self::t_shape(kind) {
            None => None,
            Some([rows, cols]) => Some(Param::new(
                format!("{name}.t"),
                Tensor::from_slice(gpu, &[rows, cols], &rng.uniform_vec(rows * cols, 0.0, 1.0))?,
            )),
        };
        Ok(ClonedOperator {
            kind,
            d,
            nb,
            m,
            blocks,
            m1,
            m2,
            t,
        })
    }

    /// Check the sizes of an operator before anything is allocated for it: `d` between 3 and
    /// [`MAX_SIDE`], `nb` between 1 and [`MAX_BLOCKS`], `m` between 1 and [`MAX_MIX`], and each of
    /// its tensors within the adapter's buffer limits.
    pub fn check_sizes(gpu: &Gpu, kind: OperatorKind, d: usize, nb: usize, m: usize) -> Result<()> {
        if !(K..=MAX_SIDE).contains(&d) {
            return Err(Error::invalid(format!(
                "a cloned layer takes inputs of {K}×{K} to {MAX_SIDE}×{MAX_SIDE}, got d = {d}"
            )));
        }
        if !(1..=MAX_BLOCKS).contains(&nb) {
            return Err(Error::invalid(format!(
                "a clone has 1 to {MAX_BLOCKS} blocks, got nb = {nb}"
            )));
        }
        if !(1..=MAX_MIX).contains(&m) {
            return Err(Error::invalid(format!(
                "a clone's M1 has 1 to {MAX_MIX} columns, got m = {m}"
            )));
        }
        let (n_out, n_in) = Self::io(d);
        let name = kind.stem(d);
        gpu.check_shape(&format!("{name}.blocks"), &[nb, n_out, n_in])?;
        gpu.check_shape(&format!("{name}.shifts"), &[K2, n_out, n_in])?;
        gpu.check_shape(&format!("{name}.m2"), &[K2 * m, nb])?;
        Ok(())
    }

    /// The shapes of an operator's tensors, in [`ClonedOperator::params`] order (call
    /// [`ClonedOperator::check_sizes`] first: the products are then known not to overflow).
    pub fn param_shapes(kind: OperatorKind, d: usize, nb: usize, m: usize) -> Vec<Vec<usize>> {
        let (n_out, n_in) = Self::io(d);
        let mut v = vec![vec![nb, n_out, n_in], vec![K2, m], vec![K2 * m, nb]];
        v.extend(Self::t_shape(kind).map(Vec::from));
        v
    }

    /// The shape of T: (R·9, code_len), one 9 × code_len transform per output code; none for Z2.
    fn t_shape(kind: OperatorKind) -> Option<[usize; 2]> {
        (kind != OperatorKind::Z2).then(|| [kind.codes_per_filter() * K2, kind.code_len()])
    }

    /// (n_out, n_in) for input size d.
    pub fn io(d: usize) -> (usize, usize) {
        let o = d + 1 - K;
        (o * o, d * d)
    }

    /// Output side length.
    pub fn out_side(&self) -> usize {
        self.d + 1 - K
    }

    /// Every tensor of the operator, with the softmax axis the KL penalty uses (SPEC §5).
    pub fn params_with_axes(&self) -> Vec<(Param, Vec<usize>, usize)> {
        let (n_out, n_in) = Self::io(self.d);
        let mut v = vec![
            (self.blocks.clone(), vec![self.nb, n_out * n_in], 0),
            (self.m1.clone(), vec![K2, self.m], 1),
            (self.m2.clone(), vec![K2 * self.m, self.nb], 1),
        ];
        if let Some(t) = &self.t {
            v.push((t.clone(), vec![t.numel() / K2, K2], 1));
        }
        v
    }

    pub fn params(&self) -> Vec<Param> {
        self.params_with_axes().into_iter().map(|p| p.0).collect()
    }

    /// A copy with the same values whose tensors are frozen (`trainable = false`) or trainable.
    pub fn with_trainable(&self, trainable: bool) -> Result<Self> {
        let cp = |p: &Param| -> Result<Param> {
            let v = p.value().deep_clone()?;
            Ok(if trainable {
                Param::new(p.name(), v)
            } else {
                Param::frozen(p.name(), v)
            })
        };
        Ok(ClonedOperator {
            kind: self.kind,
            d: self.d,
            nb: self.nb,
            m: self.m,
            blocks: cp(&self.blocks)?,
            m1: cp(&self.m1)?,
            m2: cp(&self.m2)?,
            t: self.t.as_ref().map(cp).transpose()?,
        })
    }

    /// Transformed codes: (rows, code_len) → (rows·R, 9), R = codes per filter, in (row, r[, s]) order.
    pub fn codes_t(&self, tape: &mut Tape, c: Var) -> Result<Var> {
        let rows = tape.value(c).shape()[0];
        match &self.t {
            None => Ok(c),
            Some(t) => {
                let tv = tape.param(t);
                let y = matmul::matmul_t(tape, c, tv, false, true, None, false)?;
                tape.reshape(y, &[rows * self.kind.codes_per_filter(), K2])
            }
        }
    }

    /// Coefficients h(c) for codes (rows, 9) → (rows, nb).
    pub fn coefficients_t(&self, tape: &mut Tape, codes: Var) -> Result<Var> {
        let m1 = tape.param(&self.m1);
        let m2 = tape.param(&self.m2);
        let hq = cl::mix_t(tape, codes, m1)?;
        matmul::matmul_t(tape, hq, m2, false, false, None, false)
    }

    /// Cloning form (SPEC §3): each of F filters has its own batch. `codes` (F, code_len); `x`
    /// (F, in_planes·n_in, bs) with columns the samples. Returns (F, out_planes·n_out·bs) laid out
    /// (F, r, n_out, bs).
    pub fn forward_per_filter(&self, tape: &mut Tape, codes: Var, x: Var) -> Result<Var> {
        let blocks = tape.param(&self.blocks);
        let tc = self.codes_t(tape, codes)?;
        let h = self.coefficients_t(tape, tc)?;
        per_filter_apply(tape, self.kind, self.d, h, blocks, x)
    }
}

impl ClonedOperator {
    /// The dense operators `W = Σ_b h(T c)_b B_b` of F filter codes: (F·R, n_out·n_in), rows in
    /// (filter, r[, s]) order — what the expected-loss form of cloning compares directly.
    pub fn dense_t(&self, tape: &mut Tape, codes: Var) -> Result<Var> {
        let (n_out, n_in) = Self::io(self.d);
        let blocks = tape.param(&self.blocks);
        let bflat = tape.reshape(blocks, &[self.nb, n_out * n_in])?;
        let tc = self.codes_t(tape, codes)?;
        let h = self.coefficients_t(tape, tc)?;
        matmul::matmul_t(tape, h, bflat, false, false, None, false)
    }
}

/// The true layer's dense operators for host codes: (F·R, n_out·n_in), built from the shift
/// matrices (`shifts`, (9, n_out, n_in)) and the exactly transformed codes.
pub fn true_dense(
    gpu: &Arc<Gpu>,
    kind: OperatorKind,
    d: usize,
    codes: &[f32],
    shifts: &Tensor,
) -> Result<Tensor> {
    let (n_out, n_in) = ClonedOperator::io(d);
    let mut tc = Vec::with_capacity(codes.len() / kind.code_len() * kind.codes_per_filter() * K2);
    for c in codes.chunks(kind.code_len()) {
        tc.extend(true_codes(kind, c));
    }
    let h = Tensor::from_slice(gpu, &[tc.len() / K2, K2], &tc)?;
    matmul::matmul(&h, &shifts.reshape(&[K2, n_out * n_in])?, false, false)
}

/// The shared tail of the cloning form, for the clone (h from the coefficient map, blocks learned)
/// and for the true layer (h = the transformed code itself, blocks = shift matrices).
pub fn per_filter_apply(
    tape: &mut Tape,
    kind: OperatorKind,
    d: usize,
    h: Var,
    blocks: Var,
    x: Var,
) -> Result<Var> {
    let (n_out, n_in) = ClonedOperator::io(d);
    let xs = tape.value(x).shape().to_vec();
    let (f, bs) = (xs[0], xs[2]);
    let nb = tape.value(blocks).shape()[0];
    let bflat = tape.reshape(blocks, &[nb, n_out * n_in])?;
    let r = kind.codes_per_filter();
    let (rn, sn) = (kind.out_planes(), kind.in_planes());
    let w = matmul::matmul_t(tape, h, bflat, false, false, None, false)?; // (F·R, n_out·n_in)
    let w = tape.reshape(w, &[f * r, n_out, n_in])?;
    let xin = if rn == 1 {
        x
    } else {
        // Every output orientation k reads all the input planes s: (F, k, s·n_in·bs).
        let x = tape.reshape(x, &[f, sn * n_in * bs])?;
        let xr = reduce::repeat_t(tape, x, 1, rn)?;
        tape.reshape(xr, &[f * r, n_in, bs])?
    };
    let y = matmul::matmul_t(tape, w, xin, false, false, None, false)?; // (F·R, n_out, bs)
    if sn > 1 {
        let y = tape.reshape(y, &[f * rn, sn, n_out * bs])?;
        let y = reduce::sum_axis_t(tape, y, 1, false)?; // sum over s
        tape.reshape(y, &[f, rn * n_out * bs])
    } else {
        tape.reshape(y, &[f, rn * n_out * bs])
    }
}

/// The true layer in cloning form, for F filters with their own batches (the cloning target).
pub fn true_per_filter(
    gpu: &Arc<Gpu>,
    tape: &mut Tape,
    kind: OperatorKind,
    d: usize,
    codes: &[f32],
    shifts: &Tensor,
    x: Var,
) -> Result<Var> {
    let cl_len = kind.code_len();
    let f = codes.len() / cl_len;
    let mut tc = Vec::with_capacity(f * kind.codes_per_filter() * K2);
    for c in codes.chunks(cl_len) {
        tc.extend(true_codes(kind, c));
    }
    let h = tape.input(Tensor::from_slice(
        gpu,
        &[f * kind.codes_per_filter(), K2],
        &tc,
    )?);
    let b = tape.input(shifts.clone());
    per_filter_apply(tape, kind, d, h, b, x)
}

/// A multi-channel cloned layer (SPEC §4): trainable filters `w[o, i]` (code_len each) and
/// `bias[o]` over a cloned operator, computed as `Z_b = B_b X` for all input maps and one
/// contraction with the coefficients — never a dense matrix per channel pair.
pub struct ClonedConv {
    pub op: ClonedOperator,
    pub cin: usize,
    pub cout: usize,
    /// (Cout, Cin, code_len)
    pub weight: Param,
    /// (Cout)
    pub bias: Param,
    /// Frozen blocks read in half precision ([`ClonedConv::with_half_blocks`]).
    half_blocks: bool,
}

impl ClonedConv {
    /// Filters and bias initialised `U(±1/√(Cin·9))` (SPEC §4; rotation planes not counted).
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        op: ClonedOperator,
        cin: usize,
        cout: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        let cl_len = op.kind.code_len();
        if cin == 0 || cout == 0 {
            return Err(Error::invalid(format!(
                "{name}: a cloned layer needs Cin and Cout ≥ 1 (got {cin} and {cout})"
            )));
        }
        let n = gpu.check_shape(&format!("{name}.weight"), &[cout, cin, cl_len])?;
        let bound = 1.0 / ((cin * K2) as f32).sqrt();
        let w = rng.uniform_vec(n, -bound, bound);
        let b = rng.uniform_vec(cout, -bound, bound);
        Ok(ClonedConv {
            op,
            cin,
            cout,
            weight: Param::new(
                format!("{name}.weight"),
                Tensor::from_slice(gpu, &[cout, cin, cl_len], &w)?,
            ),
            bias: Param::new(
                format!("{name}.bias"),
                Tensor::from_slice(gpu, &[cout], &b)?,
            ),
            half_blocks: false,
        })
    }

    /// With `half`, frozen blocks are read by the layer's products in half precision (IEEE
    /// binary16, converted once from the f32 values, which stay as they are for checkpoints and
    /// checks): half the bytes of the largest tensor the layer reads. Trainable blocks (the KL
    /// models', changed every step) stay f32 whatever `half` says.
    pub fn with_half_blocks(mut self, half: bool) -> Self {
        if half && !self.op.blocks.trainable() && !self.half_blocks {
            // A parameter of its own over the same values: its derived tensors are the half ones.
            self.op.blocks = Param::frozen(self.op.blocks.name(), self.op.blocks.value());
            self.half_blocks = true;
        }
        self
    }

    /// x: (B, Cin, [S,] d, d) → (B, Cout, [R,] d−2, d−2), S and R the kind's input and output
    /// planes (4 or 8 orientations for the group kinds).
    pub fn forward(&self, tape: &mut Tape, x: Var) -> Result<Var> {
        self.forward_ex(tape, x, false)
    }

    /// [`ClonedConv::forward`], followed by ReLU when `relu` (taken into the bias's pass).
    pub fn forward_ex(&self, tape: &mut Tape, x: Var, relu: bool) -> Result<Var> {
        let kind = self.op.kind;
        let d = self.op.d;
        let (n_out, n_in) = ClonedOperator::io(d);
        let xs = tape.value(x).shape().to_vec();
        let s = kind.in_planes();
        let expect_rank = if s > 1 { 5 } else { 4 };
        if xs.len() != expect_rank
            || xs[1] != self.cin
            || xs[xs.len() - 1] != d
            || xs[xs.len() - 2] != d
            || (s > 1 && xs[2] != s)
        {
            return Err(Error::shape(
                "cloned layer",
                format!(
                    "a {} clone for d = {d} with {} input channels takes (B, {}{}, {d}, {d}), got {xs:?}",
                    kind.name(),
                    self.cin,
                    self.cin,
                    if s > 1 { format!(", {s}") } else { String::new() }
                ),
            ));
        }
        let b = xs[0];
        let nb = self.op.nb;
        // Z = X Bᵀ: (B·Cin·S, n_in)·(nb·n_out, n_in)ᵀ → (B, Cin·S·nb, n_out)
        let xrows = tape.reshape(x, &[b * self.cin * s, n_in])?;
        let z = if self.op.blocks.trainable() {
            let blocks = tape.param(&self.op.blocks);
            let bview = tape.reshape(blocks, &[nb * n_out, n_in])?;
            matmul::matmul_t(tape, xrows, bview, false, true, None, false)?
        } else if self.half_blocks {
            // Frozen blocks in half precision, both layouts made once.
            let bflat = self.op.blocks.value().reshape(&[nb * n_out, n_in])?;
            let h = self.op.blocks.derived_all(|_| {
                let bt = layout::swap12(&bflat, [1, nb * n_out, n_in, 1])?
                    .reshape(&[n_in, nb * n_out])?;
                Ok(vec![
                    HalfMatrix::from_f32(&bflat)?.data,
                    HalfMatrix::from_f32(&bt)?.data,
                ])
            })?;
            let b = HalfMatrix {
                data: h[0].clone(),
                k: nb * n_out,
                n: n_in,
            };
            let bt = HalfMatrix {
                data: h[1].clone(),
                k: n_in,
                n: nb * n_out,
            };
            half::matmul_half_const_t(tape, xrows, &b, &bt)?
        } else {
            // Frozen blocks: their transpose is made once, not repacked every step.
            let bflat = self.op.blocks.value().reshape(&[nb * n_out, n_in])?;
            let bt = self.op.blocks.derived(|_| {
                layout::swap12(&bflat, [1, nb * n_out, n_in, 1])?.reshape(&[n_in, nb * n_out])
            })?;
            matmul::matmul_const_t(tape, xrows, &bflat, &bt)?
        };
        let z = tape.reshape(z, &[b, self.cin * s * nb, n_out])?;
        // Coefficients for every (o, i, r[, s]) → H (Cout·R', Cin·S·nb)
        let w = tape.param(&self.weight);
        let w = tape.reshape(w, &[self.cout * self.cin, kind.code_len()])?;
        let codes = self.op.codes_t(tape, w)?;
        let h = self.op.coefficients_t(tape, codes)?; // (Cout·Cin·R, nb), rows (o, i, r, s)
        let rp = kind.out_planes();
        let hm = if rp == 1 {
            tape.reshape(h, &[self.cout, self.cin * nb])?
        } else {
            let sw = layout::swap12_t(tape, h, [self.cout, self.cin, rp, s * nb])?; // (o, r, i, s·nb)
            tape.reshape(sw, &[self.cout * rp, self.cin * s * nb])?
        };
        let y = matmul::matmul_t(tape, hm, z, false, false, None, false)?; // (B, Cout·R', n_out)
        let o = self.op.out_side();
        let shape: Vec<usize> = if rp == 1 {
            vec![b, self.cout, o, o]
        } else {
            vec![b, self.cout, rp, o, o]
        };
        let y = tape.reshape(y, &shape)?;
        let bias = tape.param(&self.bias);
        conv::channel_bias_relu_t(tape, y, bias, relu)
    }

    /// The layer's own parameters (filters and bias), without the operator's.
    pub fn own_params(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}
