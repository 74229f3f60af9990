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
pub mod norm;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod transform;

use crate::gpu::shader::{Generate, Shader, FAMILIES};
use crate::gpu::tune::Op;
use crate::Result;

pub use crate::gpu::shader::{
    CLONED, CONV, CONV_GEMM, DATA, ELEMENTWISE, GCONV, KL, LAYOUT, LOSS, MATMUL, NORM, OPTIM, POOL,
    RANDOM, REDUCE, TRANSFORM,
};

/// Every shader with the constant variants the launchers use (the naga tests validate and
/// translate each; the kernels generated in Rust are in [`all_shader_sources`]).
pub fn all_shader_variants() -> Vec<(&'static Shader, Vec<(&'static str, u32)>)> {
    let mut v: Vec<(&'static Shader, Vec<(&'static str, u32)>)> = FAMILIES
        .iter()
        .filter(|s| s.name != "matmul")
        .map(|s| (*s, vec![]))
        .collect();
    for k in conv::KERNEL_SIZES {
        v.push((&CONV, vec![("K", *k), ("TO", conv::TILE_OUT)]));
        for wgy in conv::IGEMM_ROWS {
            v.push((&CONV_GEMM, vec![("K", *k), ("WGY", *wgy)]));
        }
    }
    for (tm, tn) in matmul::codegen::REG_TILES {
        v.push((&MATMUL, vec![("TM", *tm), ("TN", *tn)]));
    }
    for c in matmul::variants::block_constants() {
        v.push((&MATMUL, c));
    }
    v
}

pub(crate) use crate::gpu::params::{i32_of, shader_params, u32_of};
pub(crate) use crate::tensor::{expect_f32, same_shape};

/// Every kernel generated in Rust that the launchers can run, as (name, source): `mm_reg` for every
/// register tile and every tile it shrinks to, `conv_reg`, `conv_dw_reg` and `conv_bwd_reg` for
/// every tile at k ∈ {1, 3, 5}, and the optimiser's update for 1 to `optim::CAP` tensors.
pub fn generated_sources() -> Result<Vec<(String, String)>> {
    fn sources<K: Generate>(keys: Vec<K>) -> Result<Vec<(String, String)>> {
        keys.into_iter()
            .map(|g| Ok((g.name(), g.source()?)))
            .collect()
    }
    let mut v = sources(matmul::codegen::generated_variants())?;
    v.extend(sources(conv::generated_variants())?);
    v.extend(sources(optim::generated_variants())?);
    Ok(v)
}

/// Every op the tuner chooses a kernel for (`gpu::tune`), in the order their choices list: each
/// family declares its own beside its candidates.
pub const TUNED_OPS: [Op; 4] = [matmul::OP, conv::FWD, conv::INPUT_GRAD, conv::WEIGHT_GRAD];

/// The tuned op called `name` (as the cache file and `tune` name it).
pub fn tuned_op(name: &str) -> Result<Op> {
    TUNED_OPS
        .into_iter()
        .find(|o| o.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = TUNED_OPS.iter().map(|o| o.name()).collect();
            crate::Error::invalid(format!("unknown op '{name}': one of {}", names.join(", ")))
        })
}

/// The layout of every kernel parameter struct of the ops and the tensor (the data layer's batch
/// gather has one more, `data::batch::GatherP`). tests/shaders.rs holds each against naga's
/// reflection of every WGSL source.
pub fn param_layouts() -> Vec<crate::gpu::params::ParamLayout> {
    use crate::gpu::params::layout_of;
    vec![
        layout_of::<crate::tensor::ElementwiseP>(),
        layout_of::<reduce::ReduceP>(),
        layout_of::<matmul::MatmulP>(),
        layout_of::<layout::LayoutP>(),
        layout_of::<loss::LossP>(),
        layout_of::<optim::OptimP>(),
        layout_of::<optim::ClipP>(),
        layout_of::<conv::ConvP>(),
        layout_of::<conv::GenConvP>(),
        layout_of::<conv::IgemmP>(),
        layout_of::<gconv::GconvP>(),
        layout_of::<pool::PoolP>(),
        layout_of::<transform::TransformP>(),
        layout_of::<cloned::ClonedP>(),
        layout_of::<random::RandomP>(),
        layout_of::<kl::KlP>(),
        layout_of::<norm::NormP>(),
    ]
}

/// Every WGSL source the launchers can build, as (a label naming the shader and its constants or
/// tile, the complete source): [`all_shader_variants`] specialised, then [`generated_sources`].
pub fn all_shader_sources() -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (shader, consts) in all_shader_variants() {
        let label = if consts.is_empty() {
            shader.name.to_string()
        } else {
            let c: Vec<String> = consts.iter().map(|(n, v)| format!("{n}={v}")).collect();
            format!("{} [{}]", shader.name, c.join(", "))
        };
        out.push((label, crate::gpu::specialize(shader.src, &consts)?));
    }
    out.extend(generated_sources()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuned_ops_keep_their_cache_names_and_order() {
        // The names key the choices in every cache file written so far; the order is that of
        // `tune`'s table and the run report.
        let names: Vec<&str> = TUNED_OPS.iter().map(|o| o.name()).collect();
        assert_eq!(
            names,
            ["matmul", "conv_fwd", "conv_input_grad", "conv_weight_grad"]
        );
        assert!(TUNED_OPS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(tuned_op("conv_fwd").unwrap(), conv::FWD);
        assert!(tuned_op("conv")
            .unwrap_err()
            .to_string()
            .contains("one of matmul, conv_fwd, conv_input_grad, conv_weight_grad"));
    }
}
