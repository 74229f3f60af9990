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
