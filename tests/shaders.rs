//! Every WGSL shader, in every constant variant the launchers use, and every kernel generated in
//! Rust (every register tile and the tiles it shrinks to, every convolution tile at k ∈ {1, 3, 5},
//! the optimiser's update for each number of tensors per launch),
//! parses and validates with naga, and translates with naga to SPIR-V, MSL, HLSL and GLSL (ES 3.10
//! and 4.30 core), entry point by entry point: a shader that would fail on Vulkan, Metal, DX12 or
//! OpenGL fails `cargo test` here with naga's message, without that hardware.

use symclone::gpu::shader::{self, BACK_ENDS};

#[test]
fn every_shader_validates_fits_default_limits_and_translates_to_spirv_msl_hlsl_glsl() {
    // Each source is parsed and validated (with naga's default capabilities, stricter than the
    // pipeline cache's), checked against WebGPU's default compute limits (workgroup size,
    // invocations, workgroup memory), then translated: this is also the validation test.
    let sources = symclone::ops::all_shader_sources().expect("sources");
    // Every family, each conv K, each loop-form and generated register tile, and the generated
    // convolution kernels are there.
    let has = |p: &str| sources.iter().any(|(l, _)| l.starts_with(p));
    for p in [
        "elementwise",
        "kl",
        "conv [K=5",
        "conv_gemm [K=5, WGY=8]",
        "conv_gemm [K=1, WGY=16]",
        "matmul [TM=16, TN=12]",
        "matmul_reg_32x8",
        "matmul_reg_1x1",
        "conv_reg_1_4x1",
        "conv_reg_5_16x28",
        "conv_dw_reg_5_16x2",
        "conv_bwd_reg_3_1x28_p1",
        "conv_bwd_reg_1_1x7_p0",
        "optim_k1",
        "optim_k3",
        "optim_k16",
    ] {
        assert!(has(p), "no shader labelled {p}");
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = sources.len().div_ceil(threads);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .flat_map(|(label, src)| {
                            shader::check_portable(label, src, &wgpu::Limits::default())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("translation thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} translations failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_subgroup_kernel_validates_with_subgroups_only_and_translates() {
    let src = symclone::ops::matmul::codegen::subgroup_source().expect("source");
    let failures = shader::check_subgroup("matmul_subgroup", &src, &wgpu::Limits::default());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Without the capability it is refused: it is rightly kept out of the portable sources.
    assert!(!shader::check_portable("matmul_subgroup", &src, &wgpu::Limits::default()).is_empty());
}

#[test]
fn standard_wgsl_enables_subgroups_exactly_where_a_kernel_uses_them() {
    // Tint refuses a subgroup built-in without `enable subgroups;`; naga refuses the directive.
    let src = symclone::ops::matmul::codegen::subgroup_source().expect("source");
    let std = shader::standard_wgsl(&src);
    assert!(std.starts_with("enable subgroups;\n"), "{}", &std[..80]);
    assert_eq!(shader::standard_wgsl(&std), std, "added twice");
    for s in shader::FAMILIES {
        assert_eq!(
            shader::standard_wgsl(s.src),
            s.src,
            "{} uses no subgroups",
            s.name
        );
    }
    let value_only = "@compute @workgroup_size(1) fn f(@builtin(subgroup_size) n: u32) {}";
    assert!(shader::standard_wgsl(value_only).starts_with("enable subgroups;"));
}

#[test]
fn a_kernel_over_webgpu_default_compute_limits_is_reported() {
    // 512 invocations and 16 KiB + 4 bytes of workgroup memory: both over WebGPU's defaults.
    let limits = wgpu::Limits::default();
    let big = "var<workgroup> t: array<f32, 4097>;
        @group(0) @binding(0) var<storage, read_write> o: array<f32>;
        @compute @workgroup_size(16, 16, 2)
        fn f(@builtin(local_invocation_index) i: u32) { t[i] = 1.0; o[i] = t[0]; }";
    let e = shader::check_limits("big", big, &limits);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].contains("max_compute_invocations_per_workgroup 512"),
        "{e:?}"
    );
    assert!(
        e[1].contains("max_compute_workgroup_storage_size 16388"),
        "{e:?}"
    );
}

#[test]
fn a_construct_a_back_end_rejects_is_reported_with_shader_entry_and_back_end() {
    // Valid WGSL that GLSL ES 3.10 cannot express (it has no query for a texture's mip levels):
    // the translation must fail there, and only there, naming everything needed to find it.
    let src = "
        @group(0) @binding(0) var t: texture_2d<f32>;
        @group(0) @binding(1) var<storage, read_write> out: array<u32>;
        @compute @workgroup_size(1)
        fn levels() { out[0] = textureNumLevels(t); }
    ";
    shader::validate("levels-probe", src).expect("valid WGSL");
    let failures = shader::translate("levels-probe", src);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    for part in [
        "levels-probe",
        "entry levels",
        BACK_ENDS[3],
        "TEXTURE_LEVELS",
    ] {
        assert!(f.contains(part), "{f} lacks {part}");
    }
    // A shader that does not parse is reported too.
    let bad = shader::translate("broken", "fn f() -> u32 { return 1.0; }");
    assert!(bad.len() == 1 && bad[0].starts_with("broken"), "{bad:?}");
}

#[test]
fn a_broken_shader_is_reported_with_naga_message() {
    let e = shader::validate("broken", "fn f() -> u32 { return 1.0; }").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("broken"), "{msg}");
}

#[test]
fn specialize_rejects_unknown_constants() {
    assert!(symclone::gpu::specialize("const TM: u32 = 4u;", &[("TN", 2)]).is_err());
    let s = symclone::gpu::specialize("const TM: u32 = 4u;", &[("TM", 16)]).unwrap();
    assert_eq!(s, "const TM: u32 = 16u;");
}

#[test]
fn every_parameter_struct_matches_the_uniform_struct_naga_reflects_in_every_source() {
    use symclone::gpu::params::{layout_of, ParamLayout};
    let mut layouts: Vec<ParamLayout> = symclone::ops::param_layouts();
    layouts.push(layout_of::<symclone::data::batch::GatherP>());
    let members = |src: &str, name: &str| -> Option<(usize, Vec<(String, usize)>)> {
        let module = naga::front::wgsl::parse_str(src).expect("parses");
        let found = module.types.iter().find_map(|(_, t)| match &t.inner {
            naga::TypeInner::Struct { members, span } if t.name.as_deref() == Some(name) => Some((
                *span as usize,
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                    .collect(),
            )),
            _ => None,
        });
        found
    };
    let rust = |l: &ParamLayout| -> (usize, Vec<(String, usize)>) {
        let fields = l.fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
        (l.size, fields)
    };
    // Each Rust struct against the WGSL that declares it: size, names and offsets.
    for l in &layouts {
        let src = l.wgsl.as_ref().expect("source");
        let wgsl = members(src, l.wgsl_struct)
            .unwrap_or_else(|| panic!("{}: no struct {} in its WGSL", l.rust, l.wgsl_struct));
        assert_eq!(
            rust(l),
            wgsl,
            "{} against WGSL struct {}",
            l.rust,
            l.wgsl_struct
        );
    }
    // Every uniform block of every source the launchers build (each family, constant variant and
    // generated kernel) is mirrored by one of them.
    for (label, src) in symclone::ops::all_shader_sources().expect("sources") {
        let module = naga::front::wgsl::parse_str(&src).expect("parses");
        for (_, g) in module.global_variables.iter() {
            if g.space != naga::AddressSpace::Uniform {
                continue;
            }
            let name = module.types[g.ty].name.clone().unwrap_or_default();
            let wgsl = members(&src, &name).expect("a struct");
            assert!(
                layouts
                    .iter()
                    .any(|l| l.wgsl_struct == name && rust(l) == wgsl),
                "{label}: uniform struct {name} {wgsl:?} has no Rust parameter struct"
            );
        }
    }
}

#[test]
fn no_kernel_computes_a_value_with_a_short_circuit_operator() {
    // naga lowers `&&` and `||` to branches, and SwiftShader's compiler takes time and memory
    // exponential in the branches of one loop body (src/ops/conv/codegen.rs, `row_lines`): a
    // boolean that chooses a value or guards a load is `&` / `|` of comparisons. Only an `if`
    // (one branch either way) may short-circuit.
    let sources = symclone::ops::all_shader_sources().expect("sources");
    let bad: Vec<String> = sources
        .iter()
        .flat_map(|(label, src)| {
            src.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("//") && (l.contains("&&") || l.contains("||")))
                .filter(|l| !(l.starts_with("if ") || l.starts_with("} else if ")))
                .map(move |l| format!("{label}: {l}"))
        })
        .collect();
    assert!(bad.is_empty(), "short-circuit values:\n{}", bad.join("\n"));
}
