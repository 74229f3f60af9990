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
        flags: u32,
    }
);

/// The uniform block: `mix` reads (codes, code length, M1's width), `taps` and `taps_adj`
/// (blocks, k, d).
fn p4(rows: usize, k2: usize, m: usize) -> Result<ClonedP> {
    Ok(ClonedP {
        rows: u32_of("rows", rows)?,
        k2: u32_of("k2", k2)?,
        m: u32_of("m", m)?,
        flags: 0,
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
    taps_adj_into(x, None, None, k, d)
}

/// [`taps_adj`] written over `out` (nb, n_out, n_in) instead of a new tensor (every element is
/// written): a clone's blocks set to `X S` in place.
pub fn taps_adj_to(x: &Tensor, out: &Tensor, k: usize, d: usize) -> Result<()> {
    taps_adj_into(x, None, Some(out), k, d).map(|_| ())
}

/// `B − X S` for blocks B (nb, n_out, n_in) and x (nb, k²) in one pass: the blocks' part outside
/// the span of the taps when X = B Sᵀ / n_out (the exact cloning loss's B⊥).
pub fn taps_outside(blocks: &Tensor, x: &Tensor, k: usize, d: usize) -> Result<Tensor> {
    taps_adj_into(x, Some(blocks), None, k, d)
}

/// [`taps_adj`], subtracted from `base` when given (the `taps_adj` kernel with flags = 1), into
/// `dest` when given, else into a new tensor.
fn taps_adj_into(
    x: &Tensor,
    base: Option<&Tensor>,
    dest: Option<&Tensor>,
    k: usize,
    d: usize,
) -> Result<Tensor> {
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
    if let Some(b) = base {
        expect_f32("taps_outside", b)?;
        if b.numel() != n || b.shape().first() != Some(&nb) {
            return Err(Error::shape(
                "taps_outside",
                format!("blocks {:?} for x {:?}, d = {d}", b.shape(), x.shape()),
            ));
        }
    }
    let out = match dest {
        Some(o) => {
            expect_f32("taps_adj", o)?;
            if o.numel() != n || o.shape().first() != Some(&nb) {
                return Err(Error::shape(
                    "taps_adj",
                    format!("output {:?} for x {:?}, d = {d}", o.shape(), x.shape()),
                ));
            }
            o.clone()
        }
        None => Tensor::empty(x.gpu(), &[nb, w * w, d * d])?,
    };
    let mut p = p4(nb, k, d)?;
    p.flags = u32::from(base.is_some());
    // Workgroups: 64 inputs × one output × one block (a grid over the limit is an error naming
    // the limit, at d > 257 or over 65,535 blocks on most adapters).
    x.gpu()
        .launch(&CLONED, "taps_adj")
        .params(&p)
        .read(&x)
        .read(base.unwrap_or(x))
        .write(&out)
        .dispatch([
            u32_of("taps_adj inputs", (d * d).div_ceil(64))?,
            u32_of("taps_adj outputs", w * w)?,
            u32_of("taps_adj blocks", nb)?,
        ])?;
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

/// Taped [`taps_outside`]: the gradient passes to the blocks unchanged and to x as `−taps(g)`.
pub fn taps_outside_t(tape: &mut Tape, blocks: Var, x: Var, k: usize, d: usize) -> Result<Var> {
    let out = taps_outside(tape.value(blocks), tape.value(x), k, d)?;
    Ok(tape.push(
        out,
        &[blocks, x],
        Box::new(move |g, need| {
            let dx = if need[1] {
                Some(super::elementwise::affine(&taps(g, k, d)?, -1.0, 0.0)?)
            } else {
                None
            };
            Ok(vec![need[0].then(|| g.clone()), dx])
        }),
    ))
}

/// The lanes [`gram`] splits the columns among: about 128 columns each, a multiple of 64 from 64
/// to 4,096 (a function of the column count alone, so a result does not depend on the adapter).
pub fn gram_lanes(cols: usize) -> usize {
    (cols / 128).next_multiple_of(64).clamp(64, 4096)
}

fn expect_matrix(op: &'static str, b: &Tensor) -> Result<(usize, usize)> {
    expect_f32(op, b)?;
    match *b.shape() {
        [rows, cols] if rows > 0 => Ok((rows, cols)),
        _ => Err(Error::shape(
            op,
            format!("{:?} is not a matrix with rows", b.shape()),
        )),
    }
}

/// The Gram matrix `B Bᵀ` (nb, nb) of a skinny matrix B (nb, L): what the exact cloning loss needs of
/// the blocks outside the taps' span, with L = n_out·n_in up to millions and nb ≈ 9. The kernel
/// `gram_part` gives [`gram_lanes`] partial sums, each over every lanes-th column, with the lanes
/// along the columns (consecutive reads) and a 4 × 4 block on or above the diagonal per workgroup,
/// written at both places; one fixed-order sum over the lanes follows. Deterministic, and exactly
/// symmetric.
pub fn gram(b: &Tensor) -> Result<Tensor> {
    let (nb, cols) = expect_matrix("gram", b)?;
    let gpu = b.gpu();
    let lanes = gram_lanes(cols);
    let nbb = nb.div_ceil(4);
    let part = Tensor::empty(gpu, &[lanes, nb * nb])?;
    gpu.count_flops(2 * (nb * nb * cols) as u64);
    gpu.launch(&CLONED, "gram_part")
        .params(&p4(nb, lanes, cols)?)
        .read(&b)
        .read(&b)
        .write(&part)
        .dispatch([
            u32_of("gram lanes", lanes / 64)?,
            u32_of("gram blocks", nbb * (nbb + 1) / 2)?,
            1,
        ])?;
    super::reduce::sum_axis(&part, 0)?.reshape(&[nb, nb])
}

/// The gradient of [`gram`]: `(H + Hᵀ) B` for the output gradient H (nb, nb) and B (nb, L): the
/// symmetrised H (a transpose and a sum of nb² elements), then the matrix product, whose lanes
/// already run along B's long rows.
pub fn gram_backward(h: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (nb, _) = expect_matrix("gram_backward", b)?;
    expect_f32("gram_backward", h)?;
    if h.shape() != [nb, nb] {
        return Err(Error::shape(
            "gram_backward",
            format!("gradient {:?} for a ({nb}, {nb}) Gram matrix", h.shape()),
        ));
    }
    let ht = super::layout::swap12(h, [1, nb, nb, 1])?.reshape(&[nb, nb])?;
    super::matmul::matmul(&h.axpby(&ht, 1.0, 1.0)?, b, false, false)
}

/// Taped [`gram`]; its gradient is [`gram_backward`].
pub fn gram_t(tape: &mut Tape, b: Var) -> Result<Var> {
    let bv = tape.value(b).clone();
    let out = gram(&bv)?;
    Ok(tape.push(
        out,
        &[b],
        Box::new(move |g, _| Ok(vec![Some(gram_backward(g, &bv)?)])),
    ))
}
