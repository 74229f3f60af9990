//! Reductions: sum and mean over an axis, sums over all elements, sums of squares. Fixed summation
//! order on the GPU, so results are deterministic.

use super::{expect_f32, shader_params, u32_of, REDUCE};
use crate::autograd::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Elements one workgroup of `chunk_sum` reduces.
const CHUNK: usize = 4096;

fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

fn check_axis(op: &'static str, x: &Tensor, axis: usize) -> Result<()> {
    expect_f32(op, x)?;
    if axis >= x.rank() {
        return Err(Error::shape(
            op,
            format!("axis {axis} out of range for {:?}", x.shape()),
        ));
    }
    Ok(())
}

shader_params!(
    /// The uniform block of `reduce.wgsl`.
    ReduceP = "P" in Ok(REDUCE.src.to_string()), {
        outer: u32,
        n: u32,
        inner: u32,
        alpha: f32,
        offset: u32,
        splits: u32,
        _p1: u32,
        _p2: u32,
    }
);

fn params(outer: usize, n: usize, inner: usize, alpha: f32, offset: usize) -> Result<ReduceP> {
    Ok(ReduceP {
        outer: u32_of("outer extent", outer)?,
        n: u32_of("reduced extent", n)?,
        inner: u32_of("inner extent", inner)?,
        alpha,
        offset: u32_of("offset", offset)?,
        splits: 1,
        ..Default::default()
    })
}

/// `alpha · Σ_axis x` (the axis is removed from the shape).
pub fn sum_axis_scaled(x: &Tensor, axis: usize, alpha: f32) -> Result<Tensor> {
    check_axis("sum_axis", x, axis)?;
    sum_axis_launch(x, 1, x.shape(), axis, alpha)
}

/// `Σ_s Σ_axis parts[s]`: partial sums over a leading axis of splits (as the weight-gradient
/// kernels write them), summed and then reduced over `axis` of the rest in one pass, in the order
/// of `sum_axis(&sum_axis(parts, 0), axis)` (the same float32 sums).
pub fn sum_splits_axis(parts: &Tensor, axis: usize) -> Result<Tensor> {
    check_axis("sum_splits_axis", parts, axis + 1)?;
    let (splits, rest) = parts.shape().split_first().expect("rank checked");
    if *splits == 0 {
        return Err(Error::shape(
            "sum_splits_axis",
            format!("{:?} has no splits to sum", parts.shape()),
        ));
    }
    // The loops over the splits run once per term of the sum: a loop limiter counts them all.
    let n = rest[axis];
    parts.gpu().check_loops(
        "sum_splits_axis",
        n * (splits / 4 + splits % 4 + 2),
        || format!("a sum over {n} terms of {splits} splits each"),
        "use smaller sizes or another adapter",
    )?;
    sum_axis_launch(parts, *splits, rest, axis, 1.0)
}

/// One `sum_axis` launch: `x` holds `splits` tensors of `shape`, summed over the splits and `axis`.
fn sum_axis_launch(
    x: &Tensor,
    splits: usize,
    shape: &[usize],
    axis: usize,
    alpha: f32,
) -> Result<Tensor> {
    let (outer, n, inner) = split(shape, axis);
    // The kernel's loops run n / 4 + n % 4 iterations.
    x.gpu().check_loops(
        "sum_axis",
        n / 4 + n % 4,
        || format!("a sum over {n} rows"),
        "use smaller sizes or another adapter",
    )?;
    let mut shape = shape.to_vec();
    shape.remove(axis);
    let out = Tensor::empty(x.gpu(), &shape)?;
    x.gpu()
        .launch(&REDUCE, "sum_axis")
        .params(&ReduceP {
            splits: u32_of("splits", splits)?,
            ..params(outer, n, inner, alpha, 0)?
        })
        .read(&x)
        .write(&out)
        .dispatch_1d(outer * inner, 256)?;
    Ok(out)
}

/// `Σ_axis x`.
pub fn sum_axis(x: &Tensor, axis: usize) -> Result<Tensor> {
    sum_axis_scaled(x, axis, 1.0)
}

/// Mean over an axis.
pub fn mean_axis(x: &Tensor, axis: usize) -> Result<Tensor> {
    check_axis("mean_axis", x, axis)?;
    let n = x.shape()[axis].max(1);
    sum_axis_scaled(x, axis, 1.0 / n as f32)
}

/// The backward of a ReLU whose output is `y`, and its column sums, in one launch: for `g` and
/// `y` of (rows, n), the masked gradient `g` where `y > 0` (else 0), and its sum over the rows
/// (n), the same float32 sums as `sum_axis(&relu_bwd(g, y), 0)`: a linear layer's masked gradient
/// and its bias gradient.
pub fn relu_bwd_sum_rows(g: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
    expect_f32("relu_bwd_sum_rows", g)?;
    expect_f32("relu_bwd_sum_rows", y)?;
    let &[rows, n] = g.shape() else {
        return Err(Error::shape(
            "relu_bwd_sum_rows",
            format!("expected (rows, columns), got {:?}", g.shape()),
        ));
    };
    if y.shape() != g.shape() {
        return Err(Error::shape(
            "relu_bwd_sum_rows",
            format!("output {:?} for a gradient {:?}", y.shape(), g.shape()),
        ));
    }
    g.gpu().check_loops(
        "relu_bwd_sum_rows",
        rows / 4 + rows % 4,
        || format!("a sum over {rows} rows"),
        "use smaller sizes or another adapter",
    )?;
    let gm = Tensor::empty(g.gpu(), g.shape())?;
    let out = Tensor::empty(g.gpu(), &[n])?;
    g.gpu()
        .launch(&REDUCE, "relu_bwd_sum_rows")
        .params(&params(1, rows, n, 1.0, 0)?)
        .read(g)
        .write(&out)
        .read(y)
        .write(&gm)
        .dispatch_1d(n, 256)?;
    Ok((gm, out))
}

/// Two tensors of partial sums over a leading axis of the same splits, (S, …) each, summed over
/// the splits in one launch: the same float32 sums as `sum_axis(·, 0)` of each (a convolution's
/// weight and bias gradients from its weight-gradient kernel's batch splits).
pub fn sum_splits_pair(a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    expect_f32("sum_splits_pair", a)?;
    expect_f32("sum_splits_pair", b)?;
    let (Some((&sa, ra)), Some((&sb, rb))) = (a.shape().split_first(), b.shape().split_first())
    else {
        return Err(Error::shape("sum_splits_pair", "a tensor of rank 0"));
    };
    if sa != sb || sa == 0 {
        return Err(Error::shape(
            "sum_splits_pair",
            format!(
                "{:?} and {:?} are not splits of the same count",
                a.shape(),
                b.shape()
            ),
        ));
    }
    a.gpu().check_loops(
        "sum_splits_pair",
        sa / 4 + sa % 4,
        || format!("a sum over {sa} splits"),
        "use smaller sizes or another adapter",
    )?;
    let (na, nb) = (a.numel() / sa, b.numel() / sa);
    let (sum_a, sum_b) = (Tensor::empty(a.gpu(), ra)?, Tensor::empty(a.gpu(), rb)?);
    if na + nb > 0 {
        a.gpu()
            .launch(&REDUCE, "sum_splits_pair")
            .params(&params(nb, sa, na, 1.0, 0)?)
            .read(a)
            .write(&sum_a)
            .read(b)
            .write(&sum_b)
            .dispatch_1d(na + nb, 256)?;
    }
    Ok((sum_a, sum_b))
}

/// Whether [`sum_batch_plane`] takes `b` images of `plane` values on any adapter: its loops within
/// a loop limiter's budget ([`crate::gpu::LOOP_BUDGET`]).
pub fn batch_plane_fits(b: usize, plane: usize) -> bool {
    batch_plane_loops(b, plane) <= crate::gpu::LOOP_BUDGET
}

/// The most loop iterations one invocation of `sum_batch_plane` runs in one loop (a loop limiter
/// counts a loop's iterations over all the times it is entered): the loops over a plane once for
/// each image.
fn batch_plane_loops(b: usize, plane: usize) -> usize {
    b * (plane / 4 + plane % 4 + 2)
}

/// `out[c] = Σ_b Σ_j x[b, c, j]` for x (B, C, plane) in one launch (one invocation per channel):
/// the same float32 sums as `sum_axis(&sum_axis(x, 2), 0)`.
pub fn sum_batch_plane(x: &Tensor) -> Result<Tensor> {
    expect_f32("sum_batch_plane", x)?;
    let &[b, c, plane] = x.shape() else {
        return Err(Error::shape(
            "sum_batch_plane",
            format!("expected (B, C, plane), got {:?}", x.shape()),
        ));
    };
    x.gpu().check_loops(
        "sum_batch_plane",
        batch_plane_loops(b, plane),
        || format!("a sum over {b} images of {plane} values"),
        "use smaller sizes or another adapter",
    )?;
    let out = Tensor::empty(x.gpu(), &[c])?;
    if c > 0 {
        x.gpu()
            .launch(&REDUCE, "sum_batch_plane")
            .params(&params(b, c, plane, 1.0, 0)?)
            .read(&x)
            .write(&out)
            .dispatch_1d(c, 64)?;
    }
    Ok(out)
}

/// Insert `axis` of size `n` by repeating `g` (times alpha): the backward of `sum_axis`.
pub fn broadcast_axis(g: &Tensor, axis: usize, n: usize, alpha: f32) -> Result<Tensor> {
    expect_f32("broadcast_axis", g)?;
    if axis > g.rank() {
        return Err(Error::shape(
            "broadcast_axis",
            format!("axis {axis} for {:?}", g.shape()),
        ));
    }
    let mut shape = g.shape().to_vec();
    shape.insert(axis, n);
    let (outer, _, inner) = split(&shape, axis);
    let out = Tensor::empty(g.gpu(), &shape)?;
    g.gpu()
        .launch(&REDUCE, "broadcast_axis")
        .params(&params(outer, n, inner, alpha, 0)?)
        .read(&g)
        .write(&out)
        .dispatch_1d(outer * n * inner, 256)?;
    Ok(out)
}

/// Record one `chunk_sum` pass: `out[offset + c]` = Σ (or Σ x²) over chunk c of x.
fn chunk_pass(x: &Tensor, n: usize, squares: bool, out: &Tensor, offset: usize) -> Result<usize> {
    let chunks = n.div_ceil(CHUNK).max(1);
    // One workgroup per chunk: `chunks` items at one per workgroup, folded like any 1-D grid.
    x.gpu()
        .launch(&REDUCE, "chunk_sum")
        .params(&params(
            chunks,
            n,
            CHUNK,
            if squares { 1.0 } else { 0.0 },
            offset,
        )?)
        .read(&x)
        .write(&out)
        .dispatch_1d(chunks, 1)?;
    Ok(chunks)
}

/// Number of partial sums `sumsq_partials` writes for a tensor of n elements.
pub fn partial_count(n: usize) -> usize {
    n.div_ceil(CHUNK).max(1)
}

/// Write the partial sums of squares of x into `out[offset ..]`; returns how many.
pub fn sumsq_partials(x: &Tensor, out: &Tensor, offset: usize) -> Result<usize> {
    expect_f32("sumsq", x)?;
    if offset + partial_count(x.numel()) > out.numel() {
        return Err(Error::shape("sumsq", "partials buffer too small"));
    }
    chunk_pass(x, x.numel(), true, out, offset)
}

fn total(x: &Tensor, squares: bool) -> Result<Tensor> {
    expect_f32("sum_all", x)?;
    let gpu = x.gpu();
    let mut n = x.numel();
    let mut cur = Tensor::empty(gpu, &[partial_count(n)])?;
    chunk_pass(x, n, squares, &cur, 0)?;
    n = cur.numel();
    while n > 1 {
        let next = Tensor::empty(gpu, &[partial_count(n)])?;
        chunk_pass(&cur, n, false, &next, 0)?;
        cur = next;
        n = cur.numel();
    }
    cur.reshape(&[1])
}

/// `Σ x` as a one-element tensor.
pub fn sum_all(x: &Tensor) -> Result<Tensor> {
    total(x, false)
}

/// `Σ x²` as a one-element tensor.
pub fn sumsq_all(x: &Tensor) -> Result<Tensor> {
    total(x, true)
}

// ---- taped versions ----

/// Sum over an axis.
pub fn sum_axis_t(tape: &mut Tape, x: Var, axis: usize, mean: bool) -> Result<Var> {
    let xv = tape.value(x);
    check_axis("sum_axis", xv, axis)?;
    let n = xv.shape()[axis];
    let alpha = if mean { 1.0 / n.max(1) as f32 } else { 1.0 };
    let out = sum_axis_scaled(xv, axis, alpha)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(broadcast_axis(g, axis, n, alpha)?)])),
    ))
}

/// Sum (or mean) of all elements, as a one-element tensor of shape [1].
pub fn sum_all_t(tape: &mut Tape, x: Var, mean: bool) -> Result<Var> {
    let xv = tape.value(x).clone();
    let n = xv.numel();
    let s = sum_all(&xv)?;
    let alpha = if mean { 1.0 / n.max(1) as f32 } else { 1.0 };
    let out = if mean {
        super::elementwise::affine(&s, alpha, 0.0)?
    } else {
        s
    };
    let shape = xv.shape().to_vec();
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| {
            let b = broadcast_axis(g, 0, n, alpha)?; // (n, 1)
            Ok(vec![Some(b.reshape(&shape)?)])
        }),
    ))
}

/// Taped repetition along a new axis: `broadcast_axis` forward, `sum_axis` backward.
pub fn repeat_t(tape: &mut Tape, x: Var, axis: usize, n: usize) -> Result<Var> {
    let out = broadcast_axis(tape.value(x), axis, n, 1.0)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(sum_axis(g, axis)?)])),
    ))
}
