//! Image and feature-map transforms on the GPU: `rot90^r` of square images and the D4 elements'
//! action on them (SPEC §9, [`crate::group`]), the C4 and D4 actions on group maps (transform space
//! and permute the orientation axis, SPEC §1 and §9), integer translation with zero fill, and zero
//! padding onto a larger canvas (centred or at an offset). Each is a gather; each backward rule is
//! the same kernel with the inverse parameters.

use super::{expect_f32, i32_of, shader_params, u32_of, TRANSFORM};
use crate::autograd::{Tape, Var};
use crate::group::{inv, Group};
use crate::tensor::Tensor;
use crate::{Error, Result};

const WG: u32 = 64;

shader_params!(
    /// The uniform block of `transform.wgsl`.
    TransformP = "P" in Ok(TRANSFORM.src.to_string()), {
        planes: u32,
        h: u32,
        w: u32,
        ho: u32,
        wo: u32,
        r: u32,
        oy: i32,
        ox: i32,
        total: u32,
        order: u32,
        _p1: u32,
        _p2: u32,
    }
);

#[allow(clippy::too_many_arguments)]
fn launch(
    entry: &'static str,
    x: &Tensor,
    out_shape: &[usize],
    planes: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    r: usize,
    oy: i64,
    ox: i64,
    order: usize,
) -> Result<Tensor> {
    let out = Tensor::empty(x.gpu(), out_shape)?;
    let n = out.numel();
    if n > 0 {
        let p = TransformP {
            planes: u32_of("planes", planes)?,
            h: u32_of("input height", h)?,
            w: u32_of("input width", w)?,
            ho: u32_of("output height", ho)?,
            wo: u32_of("output width", wo)?,
            r: u32_of("rotation", r)?,
            oy: i32_of("vertical offset", oy)?,
            ox: i32_of("horizontal offset", ox)?,
            total: u32_of("outputs", n)?,
            order: order as u32,
            ..Default::default()
        };
        x.gpu()
            .launch(&TRANSFORM, entry)
            .params(&p)
            .read(&x)
            .write(&out)
            .dispatch_1d(n, WG)?;
    }
    Ok(out)
}

fn square(op: &'static str, x: &Tensor, min_rank: usize) -> Result<usize> {
    expect_f32(op, x)?;
    let s = x.shape();
    if s.len() < min_rank || s[s.len() - 1] != s[s.len() - 2] {
        return Err(Error::shape(
            op,
            format!("needs square planes (…, n, n), got {s:?}"),
        ));
    }
    Ok(s[s.len() - 1])
}

/// `rot90^r` (counter-clockwise, numpy `rot90`) of every square plane of x (…, n, n).
pub fn rot90(x: &Tensor, r: usize) -> Result<Tensor> {
    act(x, r % 4)
}

/// `g_k·A` of every square plane A of x (…, n, n) for the D4 element k ∈ 0..8 ([`crate::group`]:
/// `flip_rows^m(rot90^r(A))`, k = 4m + r).
pub fn act(x: &Tensor, k: usize) -> Result<Tensor> {
    let n = square("rot90", x, 2)?;
    let planes = x.numel() / (n * n).max(1);
    launch("rot90", x, x.shape(), planes, n, n, n, n, k % 8, 0, 0, 4)
}

/// The C4 action `g^r` on P4 maps (…, 4, n, n): `(g·y)[.., s] = rot90(y[.., (s − 1) mod 4])`.
pub fn c4_act(y: &Tensor, r: usize) -> Result<Tensor> {
    group_act(y, r % 4, Group::C4)
}

/// The action of the element k of `group` on its group maps (…, n, n, n) (n = the group's order):
/// `(g_k·y)[.., s] = g_k·(y[.., src(k, s)])`, src(k, s) the index of g_k⁻¹ g_s (SPEC §9; for C4,
/// `rot90^k(y[.., (s − k) mod 4])`).
pub fn group_act(y: &Tensor, k: usize, group: Group) -> Result<Tensor> {
    let n = square("group_act", y, 3)?;
    let s = y.shape();
    let order = group.order();
    if s[s.len() - 3] != order || k >= order {
        return Err(Error::shape(
            "group_act",
            format!(
                "needs {group} maps (…, {order}, n, n) and an element below {order}, got {s:?} and {k}"
            ),
        ));
    }
    let outer = y.numel() / (order * n * n).max(1);
    launch("c4_act", y, s, outer, n, n, n, n, k, 0, 0, order)
}

/// `out[.., y, x] = x[.., y − oy, x − ox]` (zero outside) with output planes `ho × wo`: translation,
/// padding onto a larger canvas or cropping, by the choice of sizes and signed offsets.
pub fn shift_crop(x: &Tensor, ho: usize, wo: usize, oy: i64, ox: i64) -> Result<Tensor> {
    expect_f32("shift_crop", x)?;
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::shape(
            "shift_crop",
            format!("needs planes (…, H, W), got {s:?}"),
        ));
    }
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    let planes: usize = s[..s.len() - 2].iter().product();
    let mut shape = s.to_vec();
    let l = shape.len();
    shape[l - 2] = ho;
    shape[l - 1] = wo;
    launch("shift", x, &shape, planes, h, w, ho, wo, 0, oy, ox, 4)
}

/// Translate every plane by (dy, dx) pixels (down, right), filling with zeros.
pub fn translate(x: &Tensor, dy: i64, dx: i64) -> Result<Tensor> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::shape(
            "translate",
            format!("needs planes (…, H, W), got {s:?}"),
        ));
    }
    shift_crop(x, s[s.len() - 2], s[s.len() - 1], dy, dx)
}

/// Zero-pad every plane onto an `ht × wt` canvas with its top-left corner at (oy, ox).
pub fn pad_to(x: &Tensor, ht: usize, wt: usize, oy: usize, ox: usize) -> Result<Tensor> {
    let s = x.shape();
    if s.len() < 2 || oy + s[s.len() - 2] > ht || ox + s[s.len() - 1] > wt {
        return Err(Error::shape(
            "pad_to",
            format!("{s:?} at ({oy}, {ox}) does not fit a {ht}×{wt} canvas"),
        ));
    }
    shift_crop(x, ht, wt, oy as i64, ox as i64)
}

/// Zero-pad every plane onto an `ht × wt` canvas, centred (the extra pixel, if any, goes right/down).
pub fn pad_center(x: &Tensor, ht: usize, wt: usize) -> Result<Tensor> {
    let s = x.shape();
    if s.len() < 2 || s[s.len() - 2] > ht || s[s.len() - 1] > wt {
        return Err(Error::shape(
            "pad_center",
            format!("{s:?} does not fit a {ht}×{wt} canvas"),
        ));
    }
    pad_to(
        x,
        ht,
        wt,
        (ht - s[s.len() - 2]) / 2,
        (wt - s[s.len() - 1]) / 2,
    )
}

// ---- taped versions ----

/// Taped [`rot90`].
pub fn rot90_t(tape: &mut Tape, x: Var, r: usize) -> Result<Var> {
    let out = rot90(tape.value(x), r)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(rot90(g, (4 - r % 4) % 4)?)])),
    ))
}

/// Taped [`c4_act`].
pub fn c4_act_t(tape: &mut Tape, x: Var, r: usize) -> Result<Var> {
    group_act_t(tape, x, r % 4, Group::C4)
}

/// Taped [`group_act`]; the backward rule is the inverse element's action.
pub fn group_act_t(tape: &mut Tape, x: Var, k: usize, group: Group) -> Result<Var> {
    let out = group_act(tape.value(x), k, group)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(group_act(g, inv(k), group)?)])),
    ))
}

/// Taped [`shift_crop`] (translation, padding, cropping); the backward rule is the inverse shift.
pub fn shift_crop_t(
    tape: &mut Tape,
    x: Var,
    ho: usize,
    wo: usize,
    oy: i64,
    ox: i64,
) -> Result<Var> {
    let xv = tape.value(x);
    let out = shift_crop(xv, ho, wo, oy, ox)?;
    let s = xv.shape();
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(shift_crop(g, h, w, -oy, -ox)?)])),
    ))
}
