//! Pooling: spatial max and average pooling (k×k, stride s, no padding) over the last two axes,
//! rotation pooling (max or mean) over the orientation axis of P4 maps (B, C, 4, H, W) or p4m maps
//! (B, C, 8, H, W), and the global
//! mean over rotations and space (B, C, …) → (B, C) of the `gcnn` head. Forward and backward each;
//! max pooling routes the gradient to the arg-max, ties going to the first index in row-major
//! window order (rotation pooling: the lowest r).

use super::{expect_f32, shader_params, u32_of, POOL};
use crate::autograd::{Tape, Var};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

const WG: u32 = 64;

/// Sizes of one spatial pooling: planes, input h × w, output ho × wo, window k, stride s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolDims {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub s: usize,
}

impl PoolDims {
    pub fn ho(&self) -> usize {
        (self.h - self.k) / self.s + 1
    }
    pub fn wo(&self) -> usize {
        (self.w - self.k) / self.s + 1
    }
}

/// Check a spatial pooling of x (…, H, W) and return its sizes.
pub fn pool_dims(op: &'static str, shape: &[usize], k: usize, s: usize) -> Result<PoolDims> {
    if shape.len() < 2 {
        return Err(Error::shape(
            op,
            format!("needs planes (…, H, W), got {shape:?}"),
        ));
    }
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    if k == 0 || s == 0 || h < k || w < k {
        return Err(Error::shape(
            op,
            format!("a {k}×{k} window with stride {s} does not fit planes of {h}×{w} ({shape:?})"),
        ));
    }
    Ok(PoolDims {
        planes: shape[..shape.len() - 2].iter().product(),
        h,
        w,
        k,
        s,
    })
}

fn out_shape(shape: &[usize], d: &PoolDims) -> Vec<usize> {
    let mut o = shape.to_vec();
    let l = o.len();
    o[l - 2] = d.ho();
    o[l - 1] = d.wo();
    o
}

shader_params!(
    /// The uniform block of `pool.wgsl`.
    PoolP = "P" in Ok(POOL.src.to_string()), {
        planes: u32,
        h: u32,
        w: u32,
        ho: u32,
        wo: u32,
        k: u32,
        s: u32,
        total: u32,
        alpha: f32,
        relu: u32,
        _p1: u32,
        _p2: u32,
    }
);

fn params(d: &PoolDims, total: usize, alpha: f32) -> Result<PoolP> {
    Ok(PoolP {
        w: u32_of("input width", d.w)?,
        ho: u32_of("output height", d.ho())?,
        wo: u32_of("output width", d.wo())?,
        s: u32_of("stride", d.s)?,
        ..simple_params(d.planes, d.h, d.k, total, alpha)?
    })
}

/// The block of the kernels that read only planes, a plane size, k, the count and alpha.
fn simple_params(planes: usize, h: usize, k: usize, total: usize, alpha: f32) -> Result<PoolP> {
    Ok(PoolP {
        planes: u32_of("planes", planes)?,
        h: u32_of("plane size", h)?,
        k: u32_of("window", k)?,
        total: u32_of("outputs", total)?,
        alpha,
        ..Default::default()
    })
}

/// Max pooling: returns the pooled maps and the arg-max (u32, flat index within each input plane).
pub fn max_pool2d(x: &Tensor, k: usize, s: usize) -> Result<(Tensor, Tensor)> {
    max_pool2d_ex(x, k, s, false)
}

/// Max pooling followed by ReLU when `relu` (the same maps as pooling the ReLU of `x`, in one
/// pass over `x`): a window whose max is not positive gives 0 and an arg-max no input has, so
/// [`max_pool2d_bwd`] passes it no gradient, as ReLU's backward would.
pub fn max_pool2d_ex(x: &Tensor, k: usize, s: usize, relu: bool) -> Result<(Tensor, Tensor)> {
    expect_f32("max_pool2d", x)?;
    let d = pool_dims("max_pool2d", x.shape(), k, s)?;
    let shape = out_shape(x.shape(), &d);
    let out = Tensor::empty(x.gpu(), &shape)?;
    let arg = Tensor::empty_typed(x.gpu(), &shape, DType::U32)?;
    let n = out.numel();
    if n > 0 {
        x.gpu()
            .launch(&POOL, "maxpool")
            .params(&PoolP {
                relu: u32::from(relu),
                ..params(&d, n, 0.0)?
            })
            .read(&x)
            .write(&out)
            .write(&arg)
            .dispatch_1d(n, WG)?;
    }
    Ok((out, arg))
}

/// The max-pooling backward: each input gets the gradients of the windows whose arg-max it is
/// (where the windows tile the planes exactly, each window writes its own inputs instead).
pub fn max_pool2d_bwd(
    g: &Tensor,
    arg: &Tensor,
    in_shape: &[usize],
    k: usize,
    s: usize,
) -> Result<Tensor> {
    expect_f32("max_pool2d_bwd", g)?;
    let d = pool_dims("max_pool2d_bwd", in_shape, k, s)?;
    let os = out_shape(in_shape, &d);
    if g.shape() != os || arg.shape() != os || arg.dtype() != DType::U32 {
        return Err(Error::shape(
            "max_pool2d_bwd",
            format!(
                "gradient {:?} and arg-max {:?} for pooled maps {os:?}",
                g.shape(),
                arg.shape()
            ),
        ));
    }
    let dx = Tensor::empty(g.gpu(), in_shape)?;
    let n = dx.numel();
    // Windows that tile the planes exactly: one invocation per window writes its inputs.
    let tiled = d.k == d.s && d.ho() * d.s == d.h && d.wo() * d.s == d.w;
    let (entry, items) = if tiled {
        ("maxpool_bwd_tiled", g.numel())
    } else {
        ("maxpool_bwd", n)
    };
    if n > 0 {
        g.gpu()
            .launch(&POOL, entry)
            .params(&params(&d, items, 0.0)?)
            .read(&g)
            .read(&arg)
            .write(&dx)
            .dispatch_1d(items, WG)?;
    }
    Ok(dx)
}

/// Average pooling.
pub fn avg_pool2d(x: &Tensor, k: usize, s: usize) -> Result<Tensor> {
    expect_f32("avg_pool2d", x)?;
    let d = pool_dims("avg_pool2d", x.shape(), k, s)?;
    let out = Tensor::empty(x.gpu(), &out_shape(x.shape(), &d))?;
    let n = out.numel();
    if n > 0 {
        x.gpu()
            .launch(&POOL, "avgpool")
            .params(&params(&d, n, 1.0 / (k * k) as f32)?)
            .read(&x)
            .write(&out)
            .dispatch_1d(n, WG)?;
    }
    Ok(out)
}

/// The average-pooling backward.
pub fn avg_pool2d_bwd(g: &Tensor, in_shape: &[usize], k: usize, s: usize) -> Result<Tensor> {
    expect_f32("avg_pool2d_bwd", g)?;
    let d = pool_dims("avg_pool2d_bwd", in_shape, k, s)?;
    if g.shape() != out_shape(in_shape, &d) {
        return Err(Error::shape(
            "avg_pool2d_bwd",
            format!("gradient {:?} for input {in_shape:?}", g.shape()),
        ));
    }
    let dx = Tensor::empty(g.gpu(), in_shape)?;
    let n = dx.numel();
    if n > 0 {
        g.gpu()
            .launch(&POOL, "avgpool_bwd")
            .params(&params(&d, n, 1.0 / (k * k) as f32)?)
            .read(&g)
            .write(&dx)
            .dispatch_1d(n, WG)?;
    }
    Ok(dx)
}

/// How rotation pooling combines the 4 (P4) or 8 (p4m) orientations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotPool {
    Max,
    Mean,
}

/// (outer, plane, pooled shape, orientations) of group maps (B, C, n, H, W), n = 4 or 8.
fn rot_dims(op: &'static str, shape: &[usize]) -> Result<(usize, usize, Vec<usize>, usize)> {
    if shape.len() != 5 || !matches!(shape[2], 4 | 8) {
        return Err(Error::shape(
            op,
            format!("needs P4 maps (B, C, 4, H, W) or p4m maps (B, C, 8, H, W), got {shape:?}"),
        ));
    }
    let plane = shape[3] * shape[4];
    Ok((
        shape[0] * shape[1],
        plane,
        vec![shape[0], shape[1], shape[3], shape[4]],
        shape[2],
    ))
}

fn simple(
    entry: &'static str,
    x: &Tensor,
    out_shape: &[usize],
    planes: usize,
    h: usize,
    k: usize,
    alpha: f32,
) -> Result<Tensor> {
    let out = Tensor::empty(x.gpu(), out_shape)?;
    let n = out.numel();
    if n > 0 {
        let p = simple_params(planes, h, k, n, alpha)?;
        x.gpu()
            .launch(&POOL, entry)
            .params(&p)
            .read(&x)
            .write(&out)
            .dispatch_1d(n, WG)?;
    }
    Ok(out)
}

/// Rotation pooling (B, C, n, H, W) → (B, C, H, W), n = 4 (P4) or 8 (p4m).
pub fn rot_pool(x: &Tensor, how: RotPool) -> Result<Tensor> {
    expect_f32("rot_pool", x)?;
    let (outer, plane, shape, n) = rot_dims("rot_pool", x.shape())?;
    let entry = match how {
        RotPool::Max => "rotpool_max",
        RotPool::Mean => "rotpool_mean",
    };
    simple(entry, x, &shape, outer, plane, n, 1.0 / n as f32)
}

/// The rotation-pooling backward; `x` is the forward input (needed for max).
pub fn rot_pool_bwd(g: &Tensor, x: &Tensor, how: RotPool) -> Result<Tensor> {
    expect_f32("rot_pool_bwd", g)?;
    let (outer, plane, shape, n) = rot_dims("rot_pool_bwd", x.shape())?;
    if g.shape() != shape {
        return Err(Error::shape(
            "rot_pool_bwd",
            format!("gradient {:?} for input {:?}", g.shape(), x.shape()),
        ));
    }
    match how {
        RotPool::Mean => simple("spread", g, x.shape(), outer, plane, n, 1.0 / n as f32),
        RotPool::Max => {
            let dx = Tensor::empty(g.gpu(), x.shape())?;
            let total = dx.numel();
            if total > 0 {
                let p = simple_params(outer, plane, n, total, 0.0)?;
                g.gpu()
                    .launch(&POOL, "rotpool_max_bwd")
                    .params(&p)
                    .read(&g)
                    .read(&x)
                    .write(&dx)
                    .dispatch_1d(total, WG)?;
            }
            Ok(dx)
        }
    }
}

fn gm_dims(op: &'static str, shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::shape(op, format!("needs (B, C, …), got {shape:?}")));
    }
    Ok((shape[0] * shape[1], shape[2..].iter().product()))
}

/// The mean over every axis after the first two: (B, C, …) → (B, C).
pub fn global_mean(x: &Tensor) -> Result<Tensor> {
    expect_f32("global_mean", x)?;
    let (rows, n) = gm_dims("global_mean", x.shape())?;
    if n == 0 {
        return Err(Error::shape(
            "global_mean",
            format!("mean over an empty extent: {:?}", x.shape()),
        ));
    }
    simple(
        "global_mean",
        x,
        &x.shape()[..2],
        rows,
        1,
        n,
        1.0 / n as f32,
    )
}

/// The global-mean backward: g (B, C) spread over `in_shape`, divided by the extent.
pub fn global_mean_bwd(g: &Tensor, in_shape: &[usize]) -> Result<Tensor> {
    expect_f32("global_mean_bwd", g)?;
    let (rows, n) = gm_dims("global_mean_bwd", in_shape)?;
    if g.shape() != &in_shape[..2] || n == 0 {
        return Err(Error::shape(
            "global_mean_bwd",
            format!("gradient {:?} for input {in_shape:?}", g.shape()),
        ));
    }
    simple("spread", g, in_shape, rows, 1, n, 1.0 / n as f32)
}

// ---- taped versions ----

/// Taped max pooling.
pub fn max_pool2d_t(tape: &mut Tape, x: Var, k: usize, s: usize) -> Result<Var> {
    max_pool2d_ex_t(tape, x, k, s, false)
}

/// Taped max pooling followed by ReLU when `relu` ([`max_pool2d_ex`]).
pub fn max_pool2d_ex_t(tape: &mut Tape, x: Var, k: usize, s: usize, relu: bool) -> Result<Var> {
    let shape = tape.value(x).shape().to_vec();
    let (out, arg) = max_pool2d_ex(tape.value(x), k, s, relu)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(max_pool2d_bwd(g, &arg, &shape, k, s)?)])),
    ))
}

/// Taped average pooling.
pub fn avg_pool2d_t(tape: &mut Tape, x: Var, k: usize, s: usize) -> Result<Var> {
    let shape = tape.value(x).shape().to_vec();
    let out = avg_pool2d(tape.value(x), k, s)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(avg_pool2d_bwd(g, &shape, k, s)?)])),
    ))
}

/// Taped rotation pooling.
pub fn rot_pool_t(tape: &mut Tape, x: Var, how: RotPool) -> Result<Var> {
    let xv = tape.value(x).clone();
    let out = rot_pool(&xv, how)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(rot_pool_bwd(g, &xv, how)?)])),
    ))
}

/// Taped global mean.
pub fn global_mean_t(tape: &mut Tape, x: Var) -> Result<Var> {
    let shape = tape.value(x).shape().to_vec();
    let out = global_mean(tape.value(x))?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(global_mean_bwd(g, &shape)?)])),
    ))
}
