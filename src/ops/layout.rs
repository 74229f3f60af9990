//! Layout ops: axis permutations that move values without arithmetic (exact, so their tests compare
//! exactly). The matrix product's vec4 packing lives in the same shader family (`layout.wgsl`).

use super::{expect_f32, LAYOUT};
use crate::autograd::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

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
        .params(&[b as u32, c as u32, d as u32, 0, a as u32, 0, 0, 0])
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

fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape(op, format!("size {v} does not fit in 32 bits")))
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
    let u = |v| u32_of("concat", v);
    a.gpu()
        .launch(&LAYOUT, "concat")
        .params(&[u(la)?, u(lb)?, u(inner)?, 0, u(outer)?, 0, 0, 0])
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
    let u = |v| u32_of("slice", v);
    x.gpu()
        .launch(&LAYOUT, "slice")
        .params(&[u(n)?, u(len)?, u(inner)?, u(start)?, u(outer)?, 0, 0, 0])
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
    let u = |v| u32_of("unslice", v);
    g.gpu()
        .launch(&LAYOUT, "unslice")
        .params(&[u(n)?, u(len)?, u(inner)?, u(start)?, u(outer)?, 0, 0, 0])
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
