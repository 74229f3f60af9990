//! C4 group convolutions (SPEC §1): the lifting and P4 filter transforms with their adjoints, and
//! the lifting (Z2 → P4) and group (P4 → P4) convolutions built from a transform plus [`conv2d`](super::conv::conv2d)
//! on the (B, C·4, H, W) view of P4 maps (B, C, 4, H, W).
//!
//! Lifting: W (Cout, Cin, k, k) → TW (Cout·4, Cin, k, k), `TW[o·4 + r, i] = rot90^r(W[o, i])`.
//! P4: W (Cout, Cin, 4, k, k) → TW (Cout·4, Cin·4, k, k), `TW[o·4 + r, i·4 + s] = rot90^r(W[o, i, (s − r) mod 4])`.
//! The bias is shared over r: `bias[o]` is expanded to channel o·4 + r, and its gradient summed back.

use super::conv::{conv2d, conv2d_t};
use super::{expect_f32, reduce, shader_params, u32_of, GCONV};
use crate::autograd::{Tape, Var};
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
    }
);

fn launch(
    entry: &'static str,
    src: &Tensor,
    out_shape: &[usize],
    cout: usize,
    cin: usize,
    k: usize,
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

/// Lifting transform: (Cout, Cin, k, k) → (Cout·4, Cin, k, k).
pub fn lift_filter(w: &Tensor) -> Result<Tensor> {
    expect_f32("lift_filter", w)?;
    let s = w.shape();
    square_filter("lift_filter", s, 4, "filters (Cout, Cin, k, k)")?;
    launch(
        "lift_filter",
        w,
        &[s[0] * 4, s[1], s[2], s[3]],
        s[0],
        s[1],
        s[2],
    )
}

/// The adjoint of [`lift_filter`]: (Cout·4, Cin, k, k) → (Cout, Cin, k, k).
pub fn lift_filter_adjoint(dtw: &Tensor) -> Result<Tensor> {
    expect_f32("lift_filter_adjoint", dtw)?;
    let s = dtw.shape();
    square_filter("lift_filter_adjoint", s, 4, "(Cout·4, Cin, k, k)")?;
    if !s[0].is_multiple_of(4) {
        return Err(Error::shape(
            "lift_filter_adjoint",
            format!("{s:?}: the first axis is not a multiple of 4"),
        ));
    }
    launch(
        "lift_filter_adj",
        dtw,
        &[s[0] / 4, s[1], s[2], s[3]],
        s[0] / 4,
        s[1],
        s[2],
    )
}

/// P4 transform: (Cout, Cin, 4, k, k) → (Cout·4, Cin·4, k, k).
pub fn p4_filter(w: &Tensor) -> Result<Tensor> {
    expect_f32("p4_filter", w)?;
    let s = w.shape();
    square_filter("p4_filter", s, 5, "filters (Cout, Cin, 4, k, k)")?;
    if s[2] != 4 {
        return Err(Error::shape(
            "p4_filter",
            format!("filters {s:?}: axis 2 must have size 4"),
        ));
    }
    launch(
        "p4_filter",
        w,
        &[s[0] * 4, s[1] * 4, s[3], s[4]],
        s[0],
        s[1],
        s[3],
    )
}

/// The adjoint of [`p4_filter`]: (Cout·4, Cin·4, k, k) → (Cout, Cin, 4, k, k).
pub fn p4_filter_adjoint(dtw: &Tensor) -> Result<Tensor> {
    expect_f32("p4_filter_adjoint", dtw)?;
    let s = dtw.shape();
    square_filter("p4_filter_adjoint", s, 4, "(Cout·4, Cin·4, k, k)")?;
    if !s[0].is_multiple_of(4) || !s[1].is_multiple_of(4) {
        return Err(Error::shape(
            "p4_filter_adjoint",
            format!("{s:?}: the first two axes must be multiples of 4"),
        ));
    }
    launch(
        "p4_filter_adj",
        dtw,
        &[s[0] / 4, s[1] / 4, 4, s[2], s[3]],
        s[0] / 4,
        s[1] / 4,
        s[2],
    )
}

/// Taped [`lift_filter`].
pub fn lift_filter_t(tape: &mut Tape, w: Var) -> Result<Var> {
    let out = lift_filter(tape.value(w))?;
    Ok(tape.push(
        out,
        &[w],
        Box::new(|g, _| Ok(vec![Some(lift_filter_adjoint(g)?)])),
    ))
}

/// Taped [`p4_filter`].
pub fn p4_filter_t(tape: &mut Tape, w: Var) -> Result<Var> {
    let out = p4_filter(tape.value(w))?;
    Ok(tape.push(
        out,
        &[w],
        Box::new(|g, _| Ok(vec![Some(p4_filter_adjoint(g)?)])),
    ))
}

/// `bias[o]` → channel o·4 + r: (Cout) → (Cout·4).
pub fn expand_bias4(b: &Tensor) -> Result<Tensor> {
    expect_f32("expand_bias4", b)?;
    if b.rank() != 1 {
        return Err(Error::shape(
            "expand_bias4",
            format!("bias must be rank 1, got {:?}", b.shape()),
        ));
    }
    let n = b.numel();
    reduce::broadcast_axis(b, 1, 4, 1.0)?.reshape(&[n * 4])
}

/// Taped [`expand_bias4`]; the gradient sums over r.
pub fn expand_bias4_t(tape: &mut Tape, b: Var) -> Result<Var> {
    let out = expand_bias4(tape.value(b))?;
    Ok(tape.push(
        out,
        &[b],
        Box::new(|g, _| {
            let n = g.numel() / 4;
            Ok(vec![Some(reduce::sum_axis(&g.reshape(&[n, 4])?, 1)?)])
        }),
    ))
}

fn p4_out(y: &Tensor, cout: usize) -> Result<Tensor> {
    let s = y.shape();
    y.reshape(&[s[0], cout, 4, s[2], s[3]])
}

fn lift_check(x: &Tensor, w: &Tensor) -> Result<()> {
    expect_f32("lift_c4", x)?;
    if x.rank() != 4 {
        return Err(Error::shape(
            "lift_c4",
            format!("input must be (B, Cin, H, W), got {:?}", x.shape()),
        ));
    }
    if w.rank() != 4 {
        return Err(Error::shape(
            "lift_c4",
            format!("filters must be (Cout, Cin, k, k), got {:?}", w.shape()),
        ));
    }
    Ok(())
}

fn p4_check(x: &Tensor, w: &Tensor) -> Result<()> {
    expect_f32("p4_conv", x)?;
    if x.rank() != 5 || x.shape()[2] != 4 {
        return Err(Error::shape(
            "p4_conv",
            format!("input must be (B, Cin, 4, H, W), got {:?}", x.shape()),
        ));
    }
    if w.rank() != 5 || w.shape()[1] != x.shape()[1] {
        return Err(Error::shape(
            "p4_conv",
            format!(
                "filters {:?} do not fit the input {:?}: expected (Cout, {}, 4, k, k)",
                w.shape(),
                x.shape(),
                x.shape()[1]
            ),
        ));
    }
    Ok(())
}

fn flat_p4(x: &Tensor) -> Result<Tensor> {
    let s = x.shape();
    x.reshape(&[s[0], s[1] * 4, s[3], s[4]])
}

/// Lifting convolution Z2 → P4: x (B, Cin, H, W), w (Cout, Cin, k, k), bias (Cout) → (B, Cout, 4, H', W').
pub fn lift_c4(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, pad: usize) -> Result<Tensor> {
    lift_check(x, w)?;
    let tw = lift_filter(w)?;
    let b = bias.map(expand_bias4).transpose()?;
    p4_out(&conv2d(x, &tw, b.as_ref(), pad)?, w.shape()[0])
}

/// Group convolution P4 → P4: x (B, Cin, 4, H, W), w (Cout, Cin, 4, k, k), bias (Cout) → (B, Cout, 4, H', W').
pub fn p4_conv(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, pad: usize) -> Result<Tensor> {
    p4_check(x, w)?;
    let tw = p4_filter(w)?;
    let b = bias.map(expand_bias4).transpose()?;
    p4_out(&conv2d(&flat_p4(x)?, &tw, b.as_ref(), pad)?, w.shape()[0])
}

/// Taped [`lift_c4`].
pub fn lift_c4_t(tape: &mut Tape, x: Var, w: Var, b: Option<Var>, pad: usize) -> Result<Var> {
    lift_check(tape.value(x), tape.value(w))?;
    let cout = tape.value(w).shape()[0];
    let tw = lift_filter_t(tape, w)?;
    let bb = b.map(|b| expand_bias4_t(tape, b)).transpose()?;
    let y = conv2d_t(tape, x, tw, bb, pad)?;
    let s = tape.value(y).shape().to_vec();
    tape.reshape(y, &[s[0], cout, 4, s[2], s[3]])
}

/// Taped [`p4_conv`].
pub fn p4_conv_t(tape: &mut Tape, x: Var, w: Var, b: Option<Var>, pad: usize) -> Result<Var> {
    p4_check(tape.value(x), tape.value(w))?;
    let cout = tape.value(w).shape()[0];
    let xs = tape.value(x).shape().to_vec();
    let xf = tape.reshape(x, &[xs[0], xs[1] * 4, xs[3], xs[4]])?;
    let tw = p4_filter_t(tape, w)?;
    let bb = b.map(|b| expand_bias4_t(tape, b)).transpose()?;
    let y = conv2d_t(tape, xf, tw, bb, pad)?;
    let s = tape.value(y).shape().to_vec();
    tape.reshape(y, &[s[0], cout, 4, s[2], s[3]])
}
