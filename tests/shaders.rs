//! Every WGSL shader, in every constant variant the launchers use, parses and validates with naga,
//! so a shader error fails `cargo test` with naga's message rather than at run time.

#[test]
fn every_shader_variant_validates() {
    let mut failures = Vec::new();
    for (shader, consts) in symclone::ops::all_shader_variants() {
        let src = symclone::gpu::specialize(shader.src, &consts).expect("constants exist");
        if let Err(e) = symclone::gpu::shader::validate(shader.name, &src) {
            failures.push(format!("{} {consts:?}:\n{e}", shader.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_broken_shader_is_reported_with_naga_message() {
    let e = symclone::gpu::shader::validate("broken", "fn f() -> u32 { return 1.0; }").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("broken"), "{msg}");
}

#[test]
fn specialize_rejects_unknown_constants() {
    assert!(symclone::gpu::specialize("const TM: u32 = 4u;", &[("TN", 2)]).is_err());
    let s = symclone::gpu::specialize("const TM: u32 = 4u;", &[("TM", 16)]).unwrap();
    assert_eq!(s, "const TM: u32 = 16u;");
}
