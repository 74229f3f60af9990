//! Kernel parameters: one `#[repr(C)]` Pod struct per WGSL uniform struct, declared with
//! [`shader_params!`] so that the Rust struct, its field list and the WGSL that declares it travel
//! together. `tests/shaders.rs` holds every such struct against naga's reflection of the WGSL: the
//! same size, and the same field names at the same byte offsets. A launch takes only such a struct
//! ([`crate::gpu::Launch::params`]), never a bare array.
//!
//! Every count, size and offset goes into a struct through [`u32_of`]: one that does not fit a
//! `u32` is an error naming it, never a wrapped value.

use crate::{Error, Result};

/// A kernel's uniform block as the WGSL declares it.
pub trait ShaderParams: bytemuck::Pod {
    /// The WGSL struct's name.
    const STRUCT: &'static str;
    /// A WGSL source that declares the struct (its family, or one generated variant).
    fn wgsl() -> Result<String>;
    /// Every field's name and byte offset, in declaration order.
    fn fields() -> Vec<(&'static str, usize)>;
}

/// A parameter struct's layout, for the reflection test.
pub struct ParamLayout {
    /// The Rust struct's name.
    pub rust: &'static str,
    pub wgsl_struct: &'static str,
    pub wgsl: Result<String>,
    pub size: usize,
    pub fields: Vec<(&'static str, usize)>,
}

/// The layout of `T`.
pub fn layout_of<T: ShaderParams>() -> ParamLayout {
    ParamLayout {
        rust: std::any::type_name::<T>(),
        wgsl_struct: T::STRUCT,
        wgsl: T::wgsl(),
        size: std::mem::size_of::<T>(),
        fields: T::fields(),
    }
}

/// `n` as a `u32`, or an error naming `what` and the value.
pub fn u32_of(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::invalid(format!(
            "{what} = {n} does not fit a kernel's 32-bit parameter (at most {}): split the work (a smaller --batch or --clone-batch)",
            u32::MAX
        ))
    })
}

/// `n` as an `i32`, or an error naming `what` and the value.
pub fn i32_of(what: &str, n: i64) -> Result<i32> {
    i32::try_from(n).map_err(|_| {
        Error::invalid(format!(
            "{what} = {n} does not fit a kernel's signed 32-bit parameter"
        ))
    })
}

/// Declare a kernel's parameter struct: `shader_params!(Name = "WgslStruct" in SOURCE_EXPR { field: u32, … });`
/// where `SOURCE_EXPR` evaluates to `Result<String>` (the WGSL that declares the struct).
macro_rules! shader_params {
    ($(#[$m:meta])* $name:ident = $wgsl:literal in $src:expr, { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t),*
        }
        impl $crate::gpu::params::ShaderParams for $name {
            const STRUCT: &'static str = $wgsl;
            fn wgsl() -> $crate::Result<String> {
                $src
            }
            fn fields() -> Vec<(&'static str, usize)> {
                vec![$((stringify!($f), std::mem::offset_of!($name, $f))),*]
            }
        }
    };
}
pub(crate) use shader_params;
