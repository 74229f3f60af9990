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

fn p4(rows: usize, k2: usize, m: usize) -> Result<ClonedP> {
    Ok(ClonedP {
        rows: u32_of("codes", rows)?,
        k2: u32_of("code length", k2)?,
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
