//! WGSL sources (every family of `shaders/`, each behind `shaders/common.wgsl`), compile-time
//! specialisation of `const` values, and naga validation.

use crate::{Error, Result};

/// A WGSL source file from `shaders/`.
#[derive(Debug)]
pub struct Shader {
    pub name: &'static str,
    pub src: &'static str,
}

/// A family's source with the shared helpers of `shaders/common.wgsl` in front of it.
macro_rules! family {
    ($name:literal) => {
        Shader {
            name: $name,
            src: concat!(
                include_str!("../../shaders/common.wgsl"),
                include_str!(concat!("../../shaders/", $name, ".wgsl"))
            ),
        }
    };
}

pub static ELEMENTWISE: Shader = family!("elementwise");
pub static REDUCE: Shader = family!("reduce");
pub static MATMUL: Shader = family!("matmul");
pub static LAYOUT: Shader = family!("layout");
pub static LOSS: Shader = family!("loss");
pub static OPTIM: Shader = family!("optim");
pub static CONV: Shader = family!("conv");
pub static GCONV: Shader = family!("gconv");
pub static POOL: Shader = family!("pool");
pub static TRANSFORM: Shader = family!("transform");
pub static DATA: Shader = family!("data");
pub static CLONED: Shader = family!("cloned");
pub static RANDOM: Shader = family!("random");
pub static KL: Shader = family!("kl");

/// Every family, for the tests that validate and translate them all.
pub static FAMILIES: [&Shader; 14] = [
    &ELEMENTWISE,
    &REDUCE,
    &MATMUL,
    &LAYOUT,
    &LOSS,
    &OPTIM,
    &CONV,
    &GCONV,
    &POOL,
    &TRANSFORM,
    &DATA,
    &CLONED,
    &RANDOM,
    &KL,
];

/// Replace the value of each `const NAME: u32 = ...;` declaration in `src`.
/// Every named constant must exist in the source.
pub fn specialize(src: &str, consts: &[(&str, u32)]) -> Result<String> {
    let mut out = src.to_string();
    for (name, v) in consts {
        let pat = format!("const {name}: u32 = ");
        let start = out
            .find(&pat)
            .ok_or_else(|| Error::Gpu(format!("shader has no `const {name}: u32`")))?;
        let vstart = start + pat.len();
        let end = vstart
            + out[vstart..]
                .find(';')
                .ok_or_else(|| Error::Gpu(format!("unterminated const {name}")))?;
        out.replace_range(vstart..end, &format!("{v}u"));
    }
    Ok(out)
}

/// Parse and validate WGSL with naga; the error names the shader and carries naga's message.
pub fn validate(name: &str, src: &str) -> Result<()> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| Error::Gpu(format!("{name}: {}", e.emit_to_string(src))))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| Error::Gpu(format!("{name}: {}", e.emit_to_string(src))))?;
    Ok(())
}
