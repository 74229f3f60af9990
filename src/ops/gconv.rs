//! Group convolutions for C4 (SPEC §1) and D4 (SPEC §9): the lifting and group filter transforms
//! with their adjoints, and the lifting (Z2 → G) and group (G → G) convolutions built from a
//! transform plus [`conv2d`](super::conv::conv2d) on the (B, C·n, H, W) view of group maps
//! (B, C, n, H, W), n = 4 (C4: P4 maps) or 8 (D4: p4m maps). Elements and their action: [`crate::group`].
//!
//! Lifting: W (Cout, Cin, k, k) → TW (Cout·n, Cin, k, k), `TW[o·n + k, i] = g_k·W[o, i]`.
//! Group: W (Cout, Cin, n, k, k) → TW (Cout·n, Cin·n, k, k), `TW[o·n + k, i·n + s] = g_k·W[o, i, src(k, s)]`
//! (for C4, `rot90^r(W[o, i, (s − r) mod 4])`).
//! The bias is shared over k: `bias[o]` is expanded to channel o·n + k, and its gradient summed back.

use super::conv::{conv2d, conv2d_t};
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
        _p0: u32,
        _p1: u32,
        _p2: u32,
    }
);

fn launch(
    entry: &'static str,
    src: &Tensor,
    out_shape: &[usize],
    cout: usize,
    cin: usize,
    k: usize,
    group: Group,
) -> Result<Tensor> {
    let out = Tensor::empty(src.gpu(), out_shape)?;
    let n = out.numel();
    if n > 0 {
        src.gpu()
            .launch(&GCONV, entry)
            .params(&GconvP {
                cout: u32_of("output channels", cout)?,
                cin: u32_of("input channels", cin)?,
                k: u32_of("filter side", k)?,
                total: u32_of("filter elements", n)?,
                order: group.order() as u32,
                ..Default::default()
            })
            .read(&src)
            .write(&out)
            .dispatch_1d(n, WG)?;
    }
    Ok(out)
}

fn square_filter(op: &'static str, s: &[usize], rank: usize, what: &str) -> Result<()> {
    if s.len() != rank || s[rank - 1] != s[rank - 2] || s[rank - 1] == 0 {
        return Err(Error::shape(op, format!("expected {what}, got {s:?}")));
    }
    Ok(())
}

/// Lifting transform: (Cout, Cin, k, k) → (Cout·n, Cin, k, k).
pub fn lift_filter(w: &Tensor, group: Group) -> Result<Tensor> {
    expect_f32("lift_filter", w)?;
    let s = w.shape();
    square_filter("lift_filter", s, 4, "filters (Cout, Cin, k, k)")?;
    let n = group.order();
    launch(
        "lift_filter",
        w,
        &[s[0] * n, s[1], s[2], s[3]],
        s[0],
        s[1],
        s[2],
        group,
    )
}

/// The adjoint of [`lift_filter`]: (Cout·n, Cin, k, k) → (Cout, Cin, k, k).
pub fn lift_filter_adjoint(dtw: &Tensor, group: Group) -> Result<Tensor> {
    expect_f32("lift_filter_adjoint", dtw)?;
    let s = dtw.shape();
    square_filter("lift_filter_adjoint", s, 4, "(Cout·n, Cin, k, k)")?;
    let n = group.order();
    if !s[0].is_multiple_of(n) {
        return Err(Error::shape(
            "lift_filter_adjoint",
            format!("{s:?}: the first axis is not a multiple of {n} ({group})"),
        ));
    }
    launch(
        "lift_filter_adj",
        dtw,
        &[s[0] / n, s[1], s[2], s[3]],
        s[0] / n,
        s[1],
        s[2],
        group,
    )
}

/// Group transform: (Cout, Cin, n, k, k) → (Cout·n, Cin·n, k, k).
pub fn group_filter(w: &Tensor, group: Group) -> Result<Tensor> {
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
    launch(
        "p4_filter",
        w,
        &[s[0] * n, s[1] * n, s[3], s[4]],
        s[0],
        s[1],
        s[3],
        group,
    )
}

/// The adjoint of [`group_filter`]: (Cout·n, Cin·n, k, k) → (Cout, Cin, n, k, k).
pub fn group_filter_adjoint(dtw: &Tensor, group: Group) -> Result<Tensor> {
    expect_f32("group_filter_adjoint", dtw)?;
    let s = dtw.shape();
    square_filter("group_filter_adjoint", s, 4, "(Cout·n, Cin·n, k, k)")?;
    let n = group.order();
    if !s[0].is_multiple_of(n) || !s[1].is_multiple_of(n) {
        return Err(Error::shape(
            "group_filter_adjoint",
            format!("{s:?}: the first two axes must be multiples of {n} ({group})"),
        ));
    }
    launch(
        "p4_filter_adj",
        dtw,
        &[s[0] / n, s[1] / n, n, s[2], s[3]],
        s[0] / n,
        s[1] / n,
        s[2],
        group,
    )
}

/// Taped [`lift_filter`].
pub fn lift_filter_t(tape: &mut Tape, w: Var, group: Group) -> Result<Var> {
    let out = lift_filter(tape.value(w), group)?;
    Ok(tape.push(
        out,
        &[w],
        Box::new(move |g, _| Ok(vec![Some(lift_filter_adjoint(g, group)?)])),
    ))
}

/// Taped [`group_filter`].
pub fn group_filter_t(tape: &mut Tape, w: Var, group: Group) -> Result<Var> {
    let out = group_filter(tape.value(w), group)?;
    Ok(tape.push(
        out,
        &[w],
        Box::new(move |g, _| Ok(vec![Some(group_filter_adjoint(g, group)?)])),
    ))
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

/// Taped [`expand_bias`]; the gradient sums over the group axis.
pub fn expand_bias_t(tape: &mut Tape, b: Var, n: usize) -> Result<Var> {
    let out = expand_bias(tape.value(b), n)?;
    Ok(tape.push(
        out,
        &[b],
        Box::new(move |g, _| {
            let c = g.numel() / n;
            Ok(vec![Some(reduce::sum_axis(&g.reshape(&[c, n])?, 1)?)])
        }),
    ))
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
    let n = group.order();
    let tw = lift_filter(w, group)?;
    let b = bias.map(|b| expand_bias(b, n)).transpose()?;
    group_out(&conv2d(x, &tw, b.as_ref(), pad)?, w.shape()[0], n)
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
    let tw = group_filter(w, group)?;
    let b = bias.map(|b| expand_bias(b, n)).transpose()?;
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
    lift_check(tape.value(x), tape.value(w))?;
    let tw = lift_filter_t(tape, w, group)?;
    conv_over_group_t(tape, x, w, tw, b, pad, group)
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
    group_check(tape.value(x), tape.value(w), group)?;
    let xs = tape.value(x).shape().to_vec();
    let xf = tape.reshape(x, &[xs[0], xs[1] * group.order(), xs[3], xs[4]])?;
    let tw = group_filter_t(tape, w, group)?;
    conv_over_group_t(tape, xf, w, tw, b, pad, group)
}

/// The shared tail of the taped lifting and group convolutions: the bias repeated over the
/// orientations, the plain convolution of `x` (its orientations folded into the channels) with the
/// transformed filters `tw`, and the output's orientations taken out of its channels again
/// (Cout from the untransformed filters `w`).
fn conv_over_group_t(
    tape: &mut Tape,
    x: Var,
    w: Var,
    tw: Var,
    b: Option<Var>,
    pad: usize,
    group: Group,
) -> Result<Var> {
    let n = group.order();
    let cout = tape.value(w).shape()[0];
    let bb = b.map(|b| expand_bias_t(tape, b, n)).transpose()?;
    let y = conv2d_t(tape, x, tw, bb, pad)?;
    let s = tape.value(y).shape().to_vec();
    tape.reshape(y, &[s[0], cout, n, s[2], s[3]])
}
