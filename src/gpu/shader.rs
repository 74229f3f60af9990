//! WGSL sources (every family of `shaders/`, each behind `shaders/common.wgsl`), compile-time
//! specialisation of `const` values, naga validation, and translation to every back end wgpu
//! drives (SPIR-V for Vulkan, MSL for Metal, HLSL for DX12, GLSL for OpenGL / GLES). Kernels
//! generated in Rust are built once each by their family's [`Generated`] cache.

use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

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
pub static CONV_GEMM: Shader = family!("conv_gemm");
pub static GCONV: Shader = family!("gconv");
pub static POOL: Shader = family!("pool");
pub static TRANSFORM: Shader = family!("transform");
pub static DATA: Shader = family!("data");
pub static CLONED: Shader = family!("cloned");
pub static RANDOM: Shader = family!("random");
pub static KL: Shader = family!("kl");
pub static NORM: Shader = family!("norm");

/// Every family, for the tests that validate and translate them all.
pub static FAMILIES: [&Shader; 16] = [
    &ELEMENTWISE,
    &REDUCE,
    &MATMUL,
    &LAYOUT,
    &LOSS,
    &OPTIM,
    &CONV,
    &CONV_GEMM,
    &GCONV,
    &POOL,
    &TRANSFORM,
    &DATA,
    &CLONED,
    &RANDOM,
    &KL,
    &NORM,
];

/// A kernel generated in Rust, named by a value of its family's own key type (a tile, a filter
/// size): how to name it and how to write its WGSL.
pub trait Generate: Copy + Eq + std::hash::Hash + Send + 'static {
    /// The shader's name (its label in pipelines, kernel times and errors; unique across families).
    /// It begins with its family's name and `_` (`matmul_reg_4x4`): the family its dispatches are
    /// counted under ([`super::counters`]).
    fn name(self) -> String;
    /// The WGSL source.
    fn source(self) -> Result<String>;
}

/// The shaders one family generates, each built once on first use and kept for the process (a
/// handful of small strings: the pipeline cache keys on the shader's address). A family declares
/// one `static` of its key type; looking a built shader up allocates nothing.
pub struct Generated<K> {
    cache: OnceLock<Mutex<HashMap<K, &'static Shader>>>,
}

impl<K: Generate> Generated<K> {
    pub const fn new() -> Generated<K> {
        Generated {
            cache: OnceLock::new(),
        }
    }

    /// The shader of `key`, built on first use.
    pub fn shader(&self, key: K) -> Result<&'static Shader> {
        let mut c = self.cache.get_or_init(Default::default).lock().unwrap();
        if let Some(s) = c.get(&key) {
            return Ok(s);
        }
        let src: &'static str = Box::leak(key.source()?.into_boxed_str());
        let name: &'static str = Box::leak(key.name().into_boxed_str());
        let sh: &'static Shader = Box::leak(Box::new(Shader { name, src }));
        c.insert(key, sh);
        Ok(sh)
    }
}

impl<K: Generate> Default for Generated<K> {
    fn default() -> Generated<K> {
        Generated::new()
    }
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

/// `src` as standard WGSL, for another compiler (Tint, in a browser): the WGSL specification
/// requires `enable subgroups;` before a module uses any subgroup built-in, and Tint refuses such
/// a module without it, while naga (wgpu 30) refuses the directive itself ("not yet supported").
/// The engine's sources leave it out; this puts it in front where a source uses subgroups.
pub fn standard_wgsl(src: &str) -> std::borrow::Cow<'_, str> {
    // A subgroup built-in value (`@builtin(subgroup_size)`) or function (`subgroupShuffle`, …).
    let uses = src.contains("@builtin(subgroup_")
        || src
            .match_indices("subgroup")
            .any(|(i, w)| src[i + w.len()..].starts_with(|c: char| c.is_ascii_uppercase()));
    if uses && !src.trim_start().starts_with("enable subgroups;") {
        format!("enable subgroups;\n{src}").into()
    } else {
        src.into()
    }
}

/// Parse and validate WGSL with naga; the error names the shader and carries naga's message.
pub fn validate(name: &str, src: &str) -> Result<()> {
    parse(name, src).map(drop)
}

/// [`validate`], returning naga's module.
pub(crate) fn parse(name: &str, src: &str) -> Result<naga::Module> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| Error::Gpu(format!("{name}: {}", e.emit_to_string(src))))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| Error::Gpu(format!("{name}: {}", e.emit_to_string(src))))?;
    Ok(module)
}

/// The back ends [`translate`] writes, by name.
pub const BACK_ENDS: [&str; 5] = ["spir-v", "msl", "hlsl", "glsl es 3.10", "glsl 430 core"];

/// Parse WGSL and validate it with naga's default capabilities (no optional features: what any
/// WebGPU device accepts); the error line names the shader and carries naga's message.
fn parse_portable(
    name: &str,
    src: &str,
) -> std::result::Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| format!("{name}: parse: {}", e.emit_to_string(src)))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| format!("{name}: validate: {}", e.emit_to_string(src)))?;
    Ok((module, info))
}

/// Everything [`translate`] and [`check_limits`] check, parsing the source once: the one call the
/// portability test makes per shader.
pub fn check_portable(name: &str, src: &str, limits: &wgpu::Limits) -> Vec<String> {
    match parse_portable(name, src) {
        Ok((module, info)) => {
            let mut out = limits_of(name, &module, &info, limits);
            out.extend(translate_module(name, &module, &info));
            out
        }
        Err(e) => vec![e],
    }
}

/// [`check_portable`] for a kernel that needs subgroup operations (naga's SUBGROUP capability,
/// wgpu's SUBGROUP feature), translated to the back ends of the APIs that offer them (SPIR-V, MSL,
/// HLSL; wgpu's OpenGL back end has no subgroups).
pub fn check_subgroup(name: &str, src: &str, limits: &wgpu::Limits) -> Vec<String> {
    use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet};
    let module = match naga::front::wgsl::parse_str(src) {
        Ok(m) => m,
        Err(e) => return vec![format!("{name}: parse: {}", e.emit_to_string(src))],
    };
    let info = match naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        Capabilities::SUBGROUP,
    )
    .subgroup_stages(ShaderStages::COMPUTE)
    .subgroup_operations(SubgroupOperationSet::all())
    .validate(&module)
    {
        Ok(i) => i,
        Err(e) => return vec![format!("{name}: validate: {}", e.emit_to_string(src))],
    };
    let mut out = limits_of(name, &module, &info, limits);
    out.extend(
        translate_module(name, &module, &info)
            .into_iter()
            .filter(|f| !f.contains(", glsl ")),
    );
    out
}

/// Translate WGSL with naga to SPIR-V, MSL, HLSL (shader model 5.1) and GLSL (ES 3.10 and desktop
/// 4.30, both compute-capable), each entry point on its own as a pipeline builds it, after
/// validating it with naga's default capabilities. Returns one line per failure, naming the shader,
/// the entry point, the back end and naga's message; an empty list when every entry point
/// translates everywhere.
pub fn translate(name: &str, src: &str) -> Vec<String> {
    match parse_portable(name, src) {
        Ok((module, info)) => translate_module(name, &module, &info),
        Err(e) => vec![e],
    }
}

fn translate_module(
    name: &str,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
) -> Vec<String> {
    use naga::back::{glsl, hlsl, msl, spv};
    let mut failures = Vec::new();
    let mut fail = |entry: &str, back: &str, msg: String| {
        failures.push(format!("{name}, entry {entry}, {back}: {msg}"));
    };
    let policies = naga::proc::BoundsCheckPolicies::default();
    for ep in &module.entry_points {
        let (stage, entry) = (ep.stage, ep.name.as_str());
        // Pipeline-overridable constants take their defaults, as a pipeline with none set would.
        let (module, info) = match naga::back::pipeline_constants::process_overrides(
            module,
            info,
            Some((stage, entry)),
            &Default::default(),
        ) {
            Ok(mi) => mi,
            Err(e) => {
                fail(entry, "overrides", e.to_string());
                continue;
            }
        };
        let spv_pipe = spv::PipelineOptions {
            shader_stage: stage,
            entry_point: entry.to_string(),
        };
        if let Err(e) = spv::write_vec(&module, &info, &spv::Options::default(), Some(&spv_pipe)) {
            fail(entry, BACK_ENDS[0], e.to_string());
        }
        let msl_pipe = msl::PipelineOptions {
            entry_point: Some((stage, entry.to_string())),
            ..Default::default()
        };
        if let Err(e) = msl::write_string(&module, &info, &msl::Options::default(), &msl_pipe) {
            fail(entry, BACK_ENDS[1], e.to_string());
        }
        let hlsl_opts = hlsl::Options::default();
        let hlsl_pipe = hlsl::PipelineOptions {
            entry_point: Some((stage, entry.to_string())),
        };
        let mut out = String::new();
        if let Err(e) =
            hlsl::Writer::new(&mut out, &hlsl_opts, &hlsl_pipe).write(&module, &info, None)
        {
            fail(entry, BACK_ENDS[2], e.to_string());
        }
        for (back, version) in [
            (BACK_ENDS[3], glsl::Version::new_gles(310)),
            (BACK_ENDS[4], glsl::Version::Desktop(430)),
        ] {
            let opts = glsl::Options {
                version,
                ..Default::default()
            };
            let pipe = glsl::PipelineOptions {
                shader_stage: stage,
                entry_point: entry.to_string(),
                multiview: None,
            };
            let mut out = String::new();
            let r = glsl::Writer::new(&mut out, &module, &info, &opts, &pipe, policies)
                .and_then(|mut w| w.write());
            if let Err(e) = r {
                fail(entry, back, e.to_string());
            }
        }
    }
    failures
}

/// Check each entry point of WGSL against a device's compute limits: workgroup size per dimension,
/// invocations per workgroup, and the workgroup memory it uses. Returns one line per excess
/// (shader, entry, limit, what it needs); empty when the shader fits (`wgpu::Limits::default()`:
/// what any WebGPU device accepts).
pub fn check_limits(name: &str, src: &str, limits: &wgpu::Limits) -> Vec<String> {
    match parse_portable(name, src) {
        Ok((module, info)) => limits_of(name, &module, &info, limits),
        Err(e) => vec![e],
    }
}

fn limits_of(
    name: &str,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    limits: &wgpu::Limits,
) -> Vec<String> {
    let mut layouter = naga::proc::Layouter::default();
    if let Err(e) = layouter.update(module.to_ctx()) {
        return vec![format!("{name}: layout: {e}")];
    }
    let mut out = Vec::new();
    for (i, ep) in module.entry_points.iter().enumerate() {
        let [x, y, z] = ep.workgroup_size;
        let mut over = |what: &str, need: u64, limit: u64| {
            if need > limit {
                out.push(format!(
                    "{name}, entry {}: {what} {need} over the limit {limit}",
                    ep.name
                ));
            }
        };
        over(
            "max_compute_workgroup_size_x",
            x.into(),
            limits.max_compute_workgroup_size_x.into(),
        );
        over(
            "max_compute_workgroup_size_y",
            y.into(),
            limits.max_compute_workgroup_size_y.into(),
        );
        over(
            "max_compute_workgroup_size_z",
            z.into(),
            limits.max_compute_workgroup_size_z.into(),
        );
        over(
            "max_compute_invocations_per_workgroup",
            u64::from(x) * u64::from(y) * u64::from(z),
            limits.max_compute_invocations_per_workgroup.into(),
        );
        let fi = info.get_entry_point(i);
        let shared: u64 = module
            .global_variables
            .iter()
            .filter(|(h, g)| g.space == naga::AddressSpace::WorkGroup && !fi[*h].is_empty())
            .map(|(_, g)| u64::from(layouter[g.ty].size))
            .sum();
        over(
            "max_compute_workgroup_storage_size",
            shared,
            limits.max_compute_workgroup_storage_size.into(),
        );
    }
    out
}
