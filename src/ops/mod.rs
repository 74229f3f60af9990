//! Ops: each launches WGSL kernels (forward) and records a backward rule on the tape.
//! Raw launchers (`fn name(&Tensor, ...) -> Result<Tensor>`) do no taping; the taped versions
//! (`fn name_t(&mut Tape, Var, ...) -> Result<Var>` or named by the layer) call them.

pub mod cloned;
pub mod conv;
pub mod elementwise;
pub mod gconv;
pub mod kl;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod transform;

use crate::gpu::shader::{Shader, FAMILIES};

pub use crate::gpu::shader::{
    CLONED, CONV, DATA, ELEMENTWISE, GCONV, KL, LAYOUT, LOSS, MATMUL, OPTIM, POOL, RANDOM, REDUCE,
    TRANSFORM,
};

/// Every shader with the constant variants the launchers use (the naga test validates each).
pub fn all_shader_variants() -> Vec<(&'static Shader, Vec<(&'static str, u32)>)> {
    let mut v: Vec<(&'static Shader, Vec<(&'static str, u32)>)> = FAMILIES
        .iter()
        .filter(|s| s.name != "matmul")
        .map(|s| (*s, vec![]))
        .collect();
    for k in conv::KERNEL_SIZES {
        v.push((&CONV, vec![("K", *k), ("TO", conv::TILE_OUT)]));
    }
    for (tm, tn) in crate::gpu::codegen::REG_TILES {
        v.push((&MATMUL, vec![("TM", *tm), ("TN", *tn)]));
    }
    v
}

pub(crate) use crate::tensor::{expect_f32, same_shape};
