//! WGSL sources, compile-time specialisation of `const` values, and naga validation.

use crate::{Error, Result};

/// A WGSL source file from `shaders/`.
#[derive(Debug)]
pub struct Shader {
    pub name: &'static str,
    pub src: &'static str,
}

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
