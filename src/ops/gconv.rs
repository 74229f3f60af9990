//! Group convolutions for C4 (SPEC §1) and D4 (SPEC §9): the lifting and group filter transforms
//! with their adjoints, and the lifting (Z2 → G) and group (G → G) convolutions built from a
//! transform plus [`conv2d`](super::conv::conv2d) on the (B, C·n, H, W) view of group maps
//! (B, C, n, H, W), n = 4 (C4: P4 maps) or 8 (D4: p4m maps). Elements and their action: [`crate::group`].
//!
//! Lifting: W (Cout, Cin, k, k) → TW (Cout·n, Cin, k, k), `TW[o·n + k, i] = g_k·W[o, i]`.
//! Group: W (Cout, Cin, n, k, k) → TW (Cout·n, Cin·n, k, k), `TW[o·n + k, i·n + s] = g_k·W[o, i, src(k, s)]`
//! (for C4, `rot90^r(W[o, i, (s − r) mod 4])`).
//! The bias is shared over k: `bias[o]` is expanded to channel o·n + k (by the transform's own
//! launch), and its gradient summed back. The taped layers read the weight gradient as partial
//! sums over splits of the batch, which the adjoints sum as they read them.

use super::conv::{conv2d, conv2d_transformed_t};
use super::{expect_f32, reduce, shader_params, u32_of, GCONV};
use crate::autograd::{Tape, Var};
use crate::group::Group;
use crate::tensor::Tensor;
use crate::{Error, Result};

const WG: u32 = 64;

shader_params!(
    /// The uniform block of `gconv.wgsl`.
    GconvP = "P" in Ok(GCONV.src.to_string()), {
        cout: u32,
        cin: u32,
        k: u32,
        total: u32,
        order: u32,
        splits: u32,
        _p1: u32,
        _p2: u32,
    }
);

/// One transform launch: `entry` reads `src` (with `splits` partial sums of it for an adjoint)
/// and writes a tensor of `out_shape`; with `bias`, the bias repeated over the orientations too
/// (the `*_bias` entries).
#[allow(clippy::too_many_arguments)]
fn launch(
    entry: &'static str,
    src: &Tensor,
    out_shape: &[usize],
    (cout, cin, k): (usize, usize, usize),
    group: Group,
    splits: usize,
    bias: Option<&Tensor>,
) -> Result<(Tensor, Option<Tensor>)> {
    let out = Tensor::empty(src.gpu(), out_shape)?;
    let n = group.order();
    let total = out.numel();
    if total == 0 {
        // No filter elements to carry the bias's threads: the bias is repeated on its own.
        return Ok((out, bias.map(|b| expand_bias(b, n)).transpose()?));
    }
    let launch = src
        .gpu()
        .launch(&GCONV, entry)
        .params(&GconvP {
            cout: u32_of("output channels", cout)?,
            cin: u32_of("input channels", cin)?,
            k: u32_of("filter side", k)?,
            total: u32_of("filter elements", total)?,
            order: n as u32,
            splits: u32_of("splits", splits)?,
            ..Default::default()
        })
        .read(src)
        .write(&out);
    let Some(b) = bias else {
        launch.dispatch_1d(total, WG)?;
        return Ok((out, None));
    };
    let bias_out = Tensor::empty(src.gpu(), &[cout * n])?;
    launch.read(b).write(&bias_out).dispatch_1d(total, WG)?;
    Ok((out, Some(bias_out)))
}

/// A bias (Cout) for [`launch`]'s `*_bias` entries.
fn check_bias(op: &'static str, b: &Tensor, cout: usize) -> Result<()> {
    expect_f32(op, b)?;
    if b.shape() != [cout] {
        return Err(Error::shape(
            op,
            format!("bias {:?} does not fit {cout} output channels", b.shape()),
        ));
    }
    Ok(())
}

/// The leading axis of splits of an adjoint's input: `rank` axes without one (a single split),
/// `rank + 1` with.
fn splits_of(op: &'static str, dtw: &Tensor, rank: usize) -> Result<(usize, Vec<usize>)> {
    let s = dtw.shape();
    match s.len() {
        r if r == rank => Ok((1, s.to_vec())),
        r if r == rank + 1 && s[0] > 0 => {
            // The loops over the splits run once per orientation (up to 8): a loop limiter
            // counts them all.
            dtw.gpu().check_loops(
                op,
                8 * (s[0] / 4 + s[0] % 4 + 2),
                || format!("a sum over {} splits", s[0]),
                "use smaller sizes or another adapter",
            )?;
            Ok((s[0], s[1..].to_vec()))
        }
        _ => Err(Error::shape(
            op,
            format!("expected a rank-{rank} gradient, or splits of one, got {s:?}"),
        )),
    }
}

fn square_filter(op: &'static str, s: &[usize], rank: usize, what: &str) -> Result<()> {
    if s.len() != rank || s[rank - 1] != s[rank - 2] || s[rank - 1] == 0 {
        return Err(Error::shape(op, format!("expected {what}, got {s:?}")));
    }
    Ok(())
}

/// Lifting transform: (Cout, Cin, k, k) → (Cout·n, Cin, k, k).
pub fn lift_filter(w: &Tensor, group: Group) -> Result<Tensor> {
    Ok(lift_filter_bias(w, None, group)?.0)
}

/// [`lift_filter`], and with `bias` (Cout) the bias repeated over the orientations
/// ([`expand_bias`]) by the same launch.
pub fn lift_filter_bias(
    w: &Tensor,
    bias: Option<&Tensor>,
    group: Group,
) -> Result<(Tensor, Option<Tensor>)> {
    expect_f32("lift_filter", w)?;
    let s = w.shape();
    square_filter("lift_filter", s, 4, "filters (Cout, Cin, k, k)")?;
    if let Some(b) = bias {
        check_bias("lift_filter", b, s[0])?;
    }
    let n = group.order();
    launch(
        if bias.is_some() {
            "lift_filter_bias"
        } else {
            "lift_filter"
        },
        w,
        &[s[0] * n, s[1], s[2], s[3]],
        (s[0], s[1], s[2]),
        group,
        1,
        bias,
    )
}

/// The adjoint of [`lift_filter`]: (Cout·n, Cin, k, k) → (Cout, Cin, k, k); given partial sums
/// (splits, Cout·n, Cin, k, k), the adjoint of their sum, in one launch.
pub fn lift_filter_adjoint(dtw: &Tensor, group: Group) -> Result<Tensor> {
    const OP: &str = "lift_filter_adjoint";
    expect_f32(OP, dtw)?;
    let (splits, s) = splits_of(OP, dtw, 4)?;
    square_filter(OP, &s, 4, "(Cout·n, Cin, k, k)")?;
    let n = group.order();
    if !s[0].is_multiple_of(n) {
        return Err(Error::shape(
            OP,
            format!("{s:?}: the first axis is not a multiple of {n} ({group})"),
        ));
    }
    let shape = [s[0] / n, s[1], s[2], s[3]];
    let cik = (s[0] / n, s[1], s[2]);
    Ok(launch("lift_filter_adj", dtw, &shape, cik, group, splits, None)?.0)
}

/// Group transform: (Cout, Cin, n, k, k) → (Cout·n, Cin·n, k, k).
pub fn group_filter(w: &Tensor, group: Group) -> Result<Tensor> {
    Ok(group_filter_bias(w, None, group)?.0)
}

/// [`group_filter`], and with `bias` (Cout) the bias repeated over the orientations
/// ([`expand_bias`]) by the same launch.
pub fn group_filter_bias(
    w: &Tensor,
    bias: Option<&Tensor>,
    group: Group,
) -> Result<(Tensor, Option<Tensor>)> {
    expect_f32("group_filter", w)?;
    let s = w.shape();
    square_filter("group_filter", s, 5, "filters (Cout, Cin, n, k, k)")?;
    let n = group.order();
    if s[2] != n {
        return Err(Error::shape(
            "group_filter",
            format!("filters {s:?}: axis 2 must have size {n} ({group})"),
        ));
    }
    if let Some(b) = bias {
        check_bias("group_filter", b, s[0])?;
    }
    launch(
        if bias.is_some() {
            "p4_filter_bias"
        } else {
            "p4_filter"
        },
        w,
        &[s[0] * n, s[1] * n, s[3], s[4]],
        (s[0], s[1], s[3]),
        group,
        1,
        bias,
    )
}

/// The adjoint of [`group_filter`]: (Cout·n, Cin·n, k, k) → (Cout, Cin, n, k, k); given partial
/// sums (splits, Cout·n, Cin·n, k, k), the adjoint of their sum, in one launch.
pub fn group_filter_adjoint(dtw: &Tensor, group: Group) -> Result<Tensor> {
    const OP: &str = "group_filter_adjoint";
    expect_f32(OP, dtw)?;
    let (splits, s) = splits_of(OP, dtw, 4)?;
    square_filter(OP, &s, 4, "(Cout·n, Cin·n, k, k)")?;
    let n = group.order();
    if !s[0].is_multiple_of(n) || !s[1].is_multiple_of(n) {
        return Err(Error::shape(
            OP,
            format!("{s:?}: the first two axes must be multiples of {n} ({group})"),
        ));
    }
    let shape = [s[0] / n, s[1] / n, n, s[2], s[3]];
    let cik = (s[0] / n, s[1] / n, s[2]);
    Ok(launch("p4_filter_adj", dtw, &shape, cik, group, splits, None)?.0)
}

/// `bias[o]` → channel o·n + k: (Cout) → (Cout·n).
pub fn expand_bias(b: &Tensor, n: usize) -> Result<Tensor> {
    expect_f32("expand_bias", b)?;
    if b.rank() != 1 {
        return Err(Error::shape(
            "expand_bias",
            format!("bias must be rank 1, got {:?}", b.shape()),
        ));
    }
    let c = b.numel();
    reduce::broadcast_axis(b, 1, n, 1.0)?.reshape(&[c * n])
}

fn lift_check(x: &Tensor, w: &Tensor) -> Result<()> {
    expect_f32("lift_conv", x)?;
    if x.rank() != 4 {
        return Err(Error::shape(
            "lift_conv",
            format!("input must be (B, Cin, H, W), got {:?}", x.shape()),
        ));
    }
    if w.rank() != 4 {
        return Err(Error::shape(
            "lift_conv",
            format!("filters must be (Cout, Cin, k, k), got {:?}", w.shape()),
        ));
    }
    Ok(())
}

fn group_check(x: &Tensor, w: &Tensor, group: Group) -> Result<()> {
    expect_f32("group_conv", x)?;
    let n = group.order();
    if x.rank() != 5 || x.shape()[2] != n {
        return Err(Error::shape(
            "group_conv",
            format!(
                "input must be {group} maps (B, Cin, {n}, H, W), got {:?}",
                x.shape()
            ),
        ));
    }
    if w.rank() != 5 || w.shape()[1] != x.shape()[1] {
        return Err(Error::shape(
            "group_conv",
            format!(
                "filters {:?} do not fit the input {:?}: expected (Cout, {}, {n}, k, k)",
                w.shape(),
                x.shape(),
                x.shape()[1]
            ),
        ));
    }
    Ok(())
}

fn group_out(y: &Tensor, cout: usize, n: usize) -> Result<Tensor> {
    let s = y.shape();
    y.reshape(&[s[0], cout, n, s[2], s[3]])
}

/// Lifting convolution Z2 → G: x (B, Cin, H, W), w (Cout, Cin, k, k), bias (Cout) → (B, Cout, n, H', W').
pub fn lift_conv(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
    group: Group,
) -> Result<Tensor> {
    lift_check(x, w)?;
    let (tw, b) = lift_filter_bias(w, bias, group)?;
    group_out(
        &conv2d(x, &tw, b.as_ref(), pad)?,
        w.shape()[0],
        group.order(),
    )
}

/// Group convolution G → G: x (B, Cin, n, H, W), w (Cout, Cin, n, k, k), bias (Cout) → (B, Cout, n, H', W').
pub fn group_conv(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
    group: Group,
) -> Result<Tensor> {
    group_check(x, w, group)?;
    let n = group.order();
    let (tw, b) = group_filter_bias(w, bias, group)?;
    let s = x.shape();
    let flat = x.reshape(&[s[0], s[1] * n, s[3], s[4]])?;
    group_out(&conv2d(&flat, &tw, b.as_ref(), pad)?, w.shape()[0], n)
}

/// Taped [`lift_conv`].
pub fn lift_conv_t(
    tape: &mut Tape,
    x: Var,
    w: Var,
    b: Option<Var>,
    pad: usize,
    group: Group,
) -> Result<Var> {
    lift_conv_relu_t(tape, x, (w, b), (pad, false), group)
}

/// Taped [`lift_conv`], then ReLU when `relu` (applied by the convolution's own launch).
pub fn lift_conv_relu_t(
    tape: &mut Tape,
    x: Var,
    (w, b): (Var, Option<Var>),
    pad_relu: (usize, bool),
    group: Group,
) -> Result<Var> {
    lift_check(tape.value(x), tape.value(w))?;
    let made = lift_filter_bias(tape.value(w), b.map(|b| tape.value(b)), group)?;
    conv_over_group_t(tape, x, (w, b), made, pad_relu, group, lift_filter_adjoint)
}

/// Taped [`group_conv`].
pub fn group_conv_t(
    tape: &mut Tape,
    x: Var,
    w: Var,
    b: Option<Var>,
    pad: usize,
    group: Group,
) -> Result<Var> {
    group_conv_relu_t(tape, x, (w, b), (pad, false), group)
}

/// Taped [`group_conv`], then ReLU when `relu` (applied by the convolution's own launch).
pub fn group_conv_relu_t(
    tape: &mut Tape,
    x: Var,
    (w, b): (Var, Option<Var>),
    pad_relu: (usize, bool),
    group: Group,
) -> Result<Var> {
    group_check(tape.value(x), tape.value(w), group)?;
    let xs = tape.value(x).shape().to_vec();
    let xf = tape.reshape(x, &[xs[0], xs[1] * group.order(), xs[3], xs[4]])?;
    let made = group_filter_bias(tape.value(w), b.map(|b| tape.value(b)), group)?;
    conv_over_group_t(
        tape,
        xf,
        (w, b),
        made,
        pad_relu,
        group,
        group_filter_adjoint,
    )
}

/// The shared tail of the taped lifting and group convolutions: the plain convolution of `x` (its
/// orientations folded into the channels) with the transformed filters and the bias repeated over
/// the orientations (`made`, by one launch), as one tape node whose backward takes the weight
/// gradient's partial sums through the transform's adjoint (`filter_adjoint`) and the bias
/// gradient's through a sum over the splits and the orientations, one launch each; and the output's
/// orientations taken out of its channels again (Cout from the untransformed filters `w`).
fn conv_over_group_t(
    tape: &mut Tape,
    x: Var,
    (w, b): (Var, Option<Var>),
    made: (Tensor, Option<Tensor>),
    pad_relu: (usize, bool),
    group: Group,
    filter_adjoint: fn(&Tensor, Group) -> Result<Tensor>,
) -> Result<Var> {
    let n = group.order();
    let cout = tape.value(w).shape()[0];
    let adjoint = move |dw: Option<&Tensor>, db: Option<&Tensor>| {
        let dw = dw.map(|p| filter_adjoint(p, group)).transpose()?;
        // (splits, Cout·n) → (Cout): over the splits, then the orientations.
        let db = db
            .map(|p| reduce::sum_splits_axis(&p.reshape(&[p.shape()[0], cout, n])?, 1))
            .transpose()?;
        Ok((dw, db))
    };
    let y = conv2d_transformed_t(tape, x, (w, b), made, pad_relu, Box::new(adjoint))?;
    let s = tape.value(y).shape().to_vec();
    tape.reshape(y, &[s[0], cout, n, s[2], s[3]])
}
