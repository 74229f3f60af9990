//! Ops: each launches WGSL kernels (forward) and records a backward rule on the tape.
//! Raw launchers (`fn name(&Tensor, ...) -> Result<Tensor>`) do no taping; the taped versions
//! (`fn name_t(&mut Tape, Var, ...) -> Result<Var>` or named by the layer) call them.

pub mod cloned;
pub mod conv;
pub mod elementwise;
pub mod gconv;
pub mod kl;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod transform;

use crate::gpu::Shader;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

macro_rules! shader {
    ($name:literal) => {
        Shader {
            name: $name,
            src: include_str!(concat!("../../shaders/", $name, ".wgsl")),
        }
    };
}

pub static ELEMENTWISE: Shader = shader!("elementwise");
pub static REDUCE: Shader = shader!("reduce");
pub static MATMUL: Shader = shader!("matmul");
pub static LAYOUT: Shader = shader!("layout");
pub static LOSS: Shader = shader!("loss");
pub static OPTIM: Shader = shader!("optim");
pub static CONV: Shader = shader!("conv");
pub static GCONV: Shader = shader!("gconv");
pub static POOL: Shader = shader!("pool");
pub static TRANSFORM: Shader = shader!("transform");
pub static DATA: Shader = shader!("data");
pub static CLONED: Shader = shader!("cloned");
pub static KL: Shader = shader!("kl");

/// Every shader with the constant variants the launchers use (the naga test validates each).
pub fn all_shader_variants() -> Vec<(&'static Shader, Vec<(&'static str, u32)>)> {
    let mut v: Vec<(&'static Shader, Vec<(&'static str, u32)>)> = vec![
        (&ELEMENTWISE, vec![]),
        (&REDUCE, vec![]),
        (&LAYOUT, vec![]),
        (&LOSS, vec![]),
        (&OPTIM, vec![]),
        (&CONV, vec![]),
        (&GCONV, vec![]),
        (&POOL, vec![]),
        (&TRANSFORM, vec![]),
        (&DATA, vec![]),
        (&CLONED, vec![]),
        (&KL, vec![]),
    ];
    for k in conv::KERNEL_SIZES {
        v.push((&CONV, vec![("K", *k), ("TO", conv::TILE_OUT)]));
    }
    for (tm, tn) in matmul::REG_TILES {
        v.push((&MATMUL, vec![("TM", *tm), ("TN", *tn)]));
    }
    v
}

/// Fail unless `t` is f32.
pub(crate) fn expect_f32(op: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::shape(
            op,
            format!("expected an f32 tensor, got {:?}", t.dtype()),
        ));
    }
    Ok(())
}

/// Fail unless both shapes are equal.
pub(crate) fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            op,
            format!("{:?} vs {:?}", a.shape(), b.shape()),
        ));
    }
    expect_f32(op, a)?;
    expect_f32(op, b)
}
