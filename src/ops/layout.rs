//! Layout ops: axis permutations that move values without arithmetic (exact, so their tests compare
//! exactly). The matrix product's vec4 packing lives in the same shader family (`layout.wgsl`).

use super::{expect_f32, shader_params, u32_of, LAYOUT};
use crate::autograd::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

shader_params!(
    /// The uniform block of `layout.wgsl` (`swap12` reads (a, b, c, d) as batch, rows, cols, n4).
    LayoutP = "P" in Ok(LAYOUT.src.to_string()), {
        rows: u32,
        cols: u32,
        n4: u32,
        trans: u32,
        batch: u32,
        _p0: u32,
        _p1: u32,
        _p2: u32,
    }
);

/// Swap the two middle axes of a tensor viewed as (a, b, c, d): result (a, c, b, d).
pub fn swap12(x: &Tensor, dims: [usize; 4]) -> Result<Tensor> {
    expect_f32("swap12", x)?;
    let [a, b, c, d] = dims;
    if a * b * c * d != x.numel() {
        return Err(Error::shape(
            "swap12",
            format!("{:?} is not {dims:?}", x.shape()),
        ));
    }
    let out = Tensor::empty(x.gpu(), &[a, c, b, d])?;
    x.gpu()
        .launch(&LAYOUT, "swap12")
        .params(&LayoutP {
            rows: u32_of("axis 1", b)?,
            cols: u32_of("axis 2", c)?,
            n4: u32_of("axis 3", d)?,
            batch: u32_of("axis 0", a)?,
            ..Default::default()
        })
        .read(&x)
        .write(&out)
        .dispatch_1d(x.numel(), 256)?;
    Ok(out)
}

/// Taped `swap12`.
pub fn swap12_t(tape: &mut Tape, x: Var, dims: [usize; 4]) -> Result<Var> {
    let xs = tape.value(x).shape().to_vec();
    let out = swap12(tape.value(x), dims)?;
    let [a, b, c, d] = dims;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(swap12(g, [a, c, b, d])?.reshape(&xs)?)])),
    ))
}

/// (outer, len, inner) of `shape` around `axis`.
fn around(op: &'static str, shape: &[usize], axis: usize) -> Result<(usize, usize, usize)> {
    if axis >= shape.len() {
        return Err(Error::shape(op, format!("axis {axis} for {shape:?}")));
    }
    Ok((
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    ))
}

/// The block of `concat`, `slice` and `unslice`, which read (rows, cols, n4, trans, batch) as
/// (length of the first part or of the whole axis, length of the second part or of the slice,
/// inner extent, start, outer extent).
fn axis_params(
    op: &str,
    first: usize,
    second: usize,
    inner: usize,
    start: usize,
    outer: usize,
) -> Result<LayoutP> {
    let what = |f: &str| format!("{op} {f}");
    Ok(LayoutP {
        rows: u32_of(&what("axis length"), first)?,
        cols: u32_of(&what("part length"), second)?,
        n4: u32_of(&what("inner extent"), inner)?,
        trans: u32_of(&what("start"), start)?,
        batch: u32_of(&what("outer extent"), outer)?,
        ..Default::default()
    })
}

/// `[a, b]` along `axis`: every other axis must agree.
pub fn concat(a: &Tensor, b: &Tensor, axis: usize) -> Result<Tensor> {
    expect_f32("concat", a)?;
    expect_f32("concat", b)?;
    let (sa, sb) = (a.shape(), b.shape());
    let (outer, la, inner) = around("concat", sa, axis)?;
    let (_, lb, _) = around("concat", sb, axis)?;
    if sa.len() != sb.len() || sa[..axis] != sb[..axis] || sa[axis + 1..] != sb[axis + 1..] {
        return Err(Error::shape(
            "concat",
            format!("{sa:?} and {sb:?} differ off axis {axis}"),
        ));
    }
    let mut shape = sa.to_vec();
    shape[axis] = la + lb;
    let out = Tensor::empty(a.gpu(), &shape)?;
    a.gpu()
        .launch(&LAYOUT, "concat")
        .params(&axis_params("concat", la, lb, inner, 0, outer)?)
        .read(&a)
        .read(&b)
        .write(&out)
        .dispatch_1d(out.numel(), 256)?;
    Ok(out)
}

/// Entries `start .. start + len` along `axis`.
pub fn slice(x: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor> {
    expect_f32("slice", x)?;
    let (outer, n, inner) = around("slice", x.shape(), axis)?;
    if start + len > n {
        return Err(Error::shape(
            "slice",
            format!("{start}..{} of axis {axis} of {:?}", start + len, x.shape()),
        ));
    }
    let mut shape = x.shape().to_vec();
    shape[axis] = len;
    let out = Tensor::empty(x.gpu(), &shape)?;
    x.gpu()
        .launch(&LAYOUT, "slice")
        .params(&axis_params("slice", n, len, inner, start, outer)?)
        .read(&x)
        .write(&out)
        .dispatch_1d(out.numel(), 256)?;
    Ok(out)
}

/// The adjoint of [`slice`]: `g` placed at `start` along `axis` in zeros of length `n`.
pub fn unslice(g: &Tensor, axis: usize, start: usize, n: usize) -> Result<Tensor> {
    expect_f32("unslice", g)?;
    let (outer, len, inner) = around("unslice", g.shape(), axis)?;
    if start + len > n {
        return Err(Error::shape(
            "unslice",
            format!("{start}..{} past {n}", start + len),
        ));
    }
    let mut shape = g.shape().to_vec();
    shape[axis] = n;
    let out = Tensor::empty(g.gpu(), &shape)?;
    g.gpu()
        .launch(&LAYOUT, "unslice")
        .params(&axis_params("unslice", n, len, inner, start, outer)?)
        .read(&g)
        .write(&out)
        .dispatch_1d(out.numel(), 256)?;
    Ok(out)
}

/// Taped [`concat`]: the backward slices the gradient back apart.
pub fn concat_t(tape: &mut Tape, a: Var, b: Var, axis: usize) -> Result<Var> {
    let out = concat(tape.value(a), tape.value(b), axis)?;
    let la = tape.value(a).shape()[axis];
    let lb = out.shape()[axis] - la;
    Ok(tape.push(
        out,
        &[a, b],
        Box::new(move |g, need| {
            Ok(vec![
                if need[0] {
                    Some(slice(g, axis, 0, la)?)
                } else {
                    None
                },
                if need[1] {
                    Some(slice(g, axis, la, lb)?)
                } else {
                    None
                },
            ])
        }),
    ))
}

/// Taped [`slice`]: the backward is [`unslice`].
pub fn slice_t(tape: &mut Tape, x: Var, axis: usize, start: usize, len: usize) -> Result<Var> {
    let out = slice(tape.value(x), axis, start, len)?;
    let n = tape.value(x).shape()[axis];
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(unslice(g, axis, start, n)?)])),
    ))
}
