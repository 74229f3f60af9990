//! Cloned-operator ops (SPEC §2): the coefficient map's outer product with M1 (the product with M2
//! is the matrix product), forward and backward.

use super::{expect_f32, shader_params, u32_of, CLONED};
use crate::autograd::{Tape, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

shader_params!(
    /// The uniform block of `cloned.wgsl`.
    ClonedP = "P" in Ok(CLONED.src.to_string()), {
        rows: u32,
        k2: u32,
        m: u32,
        _p0: u32,
    }
);

/// The uniform block: `mix` reads (codes, code length, M1's width), `taps` and `taps_adj`
/// (blocks, k, d).
fn p4(rows: usize, k2: usize, m: usize) -> Result<ClonedP> {
    Ok(ClonedP {
        rows: u32_of("rows", rows)?,
        k2: u32_of("k2", k2)?,
        m: u32_of("m", m)?,
        _p0: 0,
    })
}

/// `Hq[r, j·m + q] = c[r, j] · M1[j, q]` for codes c (rows, k²) and M1 (k², m).
pub fn mix(c: &Tensor, m1: &Tensor) -> Result<Tensor> {
    expect_f32("mix", c)?;
    expect_f32("mix", m1)?;
    if c.rank() != 2 || m1.rank() != 2 || c.shape()[1] != m1.shape()[0] {
        return Err(Error::shape(
            "mix",
            format!("codes {:?} with M1 {:?}", c.shape(), m1.shape()),
        ));
    }
    let (rows, k2, m) = (c.shape()[0], c.shape()[1], m1.shape()[1]);
    let out = Tensor::empty(c.gpu(), &[rows, k2 * m])?;
    c.gpu()
        .launch(&CLONED, "mix")
        .params(&p4(rows, k2, m)?)
        .read(&c)
        .read(&m1)
        .write(&out)
        .dispatch_1d(rows * k2 * m, 256)?;
    Ok(out)
}

/// The gradients of `mix` w.r.t. the codes and M1.
pub fn mix_backward(
    g: &Tensor,
    c: &Tensor,
    m1: &Tensor,
    need_c: bool,
    need_m1: bool,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (rows, k2, m) = (c.shape()[0], c.shape()[1], m1.shape()[1]);
    let gpu = c.gpu();
    let dc = if need_c {
        let out = Tensor::empty(gpu, &[rows, k2])?;
        gpu.launch(&CLONED, "mix_bwd_c")
            .params(&p4(rows, k2, m)?)
            .read(&g)
            .read(&m1)
            .write(&out)
            .dispatch_1d(rows * k2, 256)?;
        Some(out)
    } else {
        None
    };
    let dm1 = if need_m1 {
        let out = Tensor::empty(gpu, &[k2, m])?;
        gpu.launch(&CLONED, "mix_bwd_m1")
            .params(&p4(rows, k2, m)?)
            .read(&g)
            .read(&c)
            .write(&out)
            .dispatch_1d(k2 * m, 256)?;
        Some(out)
    } else {
        None
    };
    Ok((dc, dm1))
}

/// Taped `mix`.
pub fn mix_t(tape: &mut Tape, c: Var, m1: Var) -> Result<Var> {
    let (cv, mv) = (tape.value(c).clone(), tape.value(m1).clone());
    let out = mix(&cv, &mv)?;
    Ok(tape.push(
        out,
        &[c, m1],
        Box::new(move |g, need| {
            let (dc, dm) = mix_backward(g, &cv, &mv, need[0], need[1])?;
            Ok(vec![dc, dm])
        }),
    ))
}

/// The element count of blocks (nb, n_out, n_in) for a k×k valid correlation on d×d inputs, checked.
fn tap_dims(op: &'static str, nb: usize, k: usize, d: usize) -> Result<usize> {
    if k == 0 || d < k {
        return Err(Error::shape(
            op,
            format!("a {k}×{k} correlation on {d}×{d} inputs"),
        ));
    }
    let w = d + 1 - k;
    nb.checked_mul(w * w * d * d)
        .ok_or_else(|| Error::shape(op, "too many block elements".to_string()))
}

/// The tap sums `B Sᵀ` of blocks (nb, n_out, n_in) (S: the k² tap-selection matrices of a valid k×k
/// correlation on d×d inputs), without forming S: `out[b, j] = Σ_o blocks[b, o, tap_j(o)]`, (nb, k²).
pub fn taps(blocks: &Tensor, k: usize, d: usize) -> Result<Tensor> {
    expect_f32("taps", blocks)?;
    let nb = blocks.shape().first().copied().unwrap_or(0);
    if blocks.numel() != tap_dims("taps", nb, k, d)? {
        return Err(Error::shape(
            "taps",
            format!("blocks {:?} for k = {k}, d = {d}", blocks.shape()),
        ));
    }
    let out = Tensor::empty(blocks.gpu(), &[nb, k * k])?;
    blocks
        .gpu()
        .launch(&CLONED, "taps")
        .params(&p4(nb, k, d)?)
        .read(&blocks)
        .read(&blocks)
        .write(&out)
        .dispatch_1d(nb * k * k, 64)?;
    Ok(out)
}

/// The adjoint of [`taps`], `X S`: x (nb, k²) → (nb, n_out, n_in), each tap's value at its
/// positions and zero elsewhere.
pub fn taps_adj(x: &Tensor, k: usize, d: usize) -> Result<Tensor> {
    expect_f32("taps_adj", x)?;
    let nb = x.shape().first().copied().unwrap_or(0);
    if x.shape() != [nb, k * k] {
        return Err(Error::shape(
            "taps_adj",
            format!("{:?} is not (nb, {})", x.shape(), k * k),
        ));
    }
    let n = tap_dims("taps_adj", nb, k, d)?;
    let w = d + 1 - k;
    let out = Tensor::empty(x.gpu(), &[nb, w * w, d * d])?;
    x.gpu()
        .launch(&CLONED, "taps_adj")
        .params(&p4(nb, k, d)?)
        .read(&x)
        .read(&x)
        .write(&out)
        .dispatch_1d(n, 256)?;
    Ok(out)
}

/// Taped [`taps`]; its gradient is [`taps_adj`].
pub fn taps_t(tape: &mut Tape, blocks: Var, k: usize, d: usize) -> Result<Var> {
    let shape = tape.value(blocks).shape().to_vec();
    let out = taps(tape.value(blocks), k, d)?;
    Ok(tape.push(
        out,
        &[blocks],
        Box::new(move |g, _| Ok(vec![Some(taps_adj(g, k, d)?.reshape(&shape)?)])),
    ))
}

/// Taped [`taps_adj`]; its gradient is [`taps`].
pub fn taps_adj_t(tape: &mut Tape, x: Var, k: usize, d: usize) -> Result<Var> {
    let out = taps_adj(tape.value(x), k, d)?;
    Ok(tape.push(
        out,
        &[x],
        Box::new(move |g, _| Ok(vec![Some(taps(g, k, d)?)])),
    ))
}
