//! The generated convolution kernels: `conv_reg` (a direct convolution with vec4 channel tiles),
//! its scalar-channel form for 1–3 output channels (`conv_reg_rows`), and the weight gradient
//! `conv_dw_reg` (which also sums the bias gradient). Each invocation's accumulators are named
//! registers and every index a literal, as in the register matrix product
//! (`ops/matmul/codegen.rs`). The keys of their shaders ([`super::ConvGen`]) live with their
//! launchers in `reg.rs`.
//! Over 600 lines: the generators share one prelude, padded row loaders and output epilogues
//! (bias, ReLU); split, each part would import the others' pieces.

use std::fmt::Write;

/// Invocations per workgroup of the generated convolution kernels (one 8-wide SIMD row on lavapipe).
pub const CONV_REG_WG: u32 = 8;

const REG_PRELUDE: &str = "struct G {
    batch: u32, cin: u32, h: u32, w: u32, cout: u32, ho: u32, wo: u32, pad: i32,
    nxb: u32, co4: u32, total: u32, aux: u32,
}
@group(0) @binding(0) var<uniform> p: G;
@group(0) @binding(1) var<storage, read> x: array<f32>;

";

/// WGSL of `fn {name}(row, ok, ix)`: `buf[row + ix]` where the row is inside the image (`ok`) and
/// ix in [0, `width`), else 0. Every generated kernel has `ld` over its input `x` (width p.w);
/// `conv_bwd_reg` also has `ldi` over the forward input `xin` (the size of its output, p.wo wide).
/// The condition is `&` of bools, not `&&`: naga lowers each short-circuit operator to a branch,
/// and a kernel calls this dozens of times inside its channel loop (see [`row_lines`]).
fn padded_load(name: &str, buf: &str, width: &str) -> String {
    format!(
        "// {buf}[row + ix] where the row is inside the image (ok) and ix in [0, {width}), else 0.
fn {name}(row: u32, ok: bool, ix: i32) -> f32 {{
    let v = {buf}[row + u32(clamp(ix, 0, i32({width}) - 1))];
    return select(0.0, v, ok & (ix >= 0) & (ix < i32({width})));
}}
"
    )
}

const LANES: [&str; 4] = ["x", "y", "z", "w"];

/// Emits, at `indent`, the three lines that place an image row for `ld`/`ldi`: `iy{tag}` = the
/// row `y` (a WGSL i32 expression), `ok{tag}` whether it lies in [0, `h`), and `{name}{tag}` =
/// `base` + the clamped row × `w` (the row's first element).
///
/// Booleans that only choose a value are `&` of comparisons, never `&&` or `||`: naga lowers a
/// short-circuit operator to a branch (SPIR-V `OpSelectionMerge`), and SwiftShader's compiler
/// takes time and memory exponential in the number of such branches inside one loop body (a
/// probe: a loop calling 9 to 13 times a load with two `&&`, 0.1 s to 26 s and 86 MB to 347 MB;
/// `conv_bwd_reg_1_1x7_p0`, with about 100, ran past 7.5 GB). With `&` there is no branch.
#[allow(clippy::too_many_arguments)]
fn row_lines(
    s: &mut String,
    indent: &str,
    tag: &str,
    y: &str,
    h: &str,
    name: &str,
    base: &str,
    w: &str,
) {
    let _ = writeln!(s, "{indent}let iy{tag} = {y};");
    let _ = writeln!(
        s,
        "{indent}let ok{tag} = (iy{tag} >= 0) & (iy{tag} < i32({h}));"
    );
    let _ = writeln!(
        s,
        "{indent}let {name}{tag} = {base}u32(clamp(iy{tag}, 0, i32({h}) - 1)) * {w};"
    );
}

/// The start of a generated convolution kernel up to its invocation index (`t`, `live`, `tt`):
/// the shared prelude, the storage bindings from 2 on (each `(access, name, element type)`), a
/// comment saying what an invocation computes, and the entry point `entry`.
fn reg_kernel_head(entry: &str, bindings: &[(&str, &str, &str)], what: &str) -> String {
    let mut s = String::from(REG_PRELUDE) + &padded_load("ld", "x", "p.w");
    for (i, (access, name, elem)) in bindings.iter().enumerate() {
        let _ = writeln!(
            s,
            "@group(0) @binding({}) var<storage, {access}> {name}: array<{elem}>;",
            i + 2
        );
    }
    let _ = writeln!(s, "// generated: {what} per invocation");
    let _ = writeln!(s, "@compute @workgroup_size({CONV_REG_WG}, 1, 1)");
    let _ = writeln!(
        s,
        "fn {entry}(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{"
    );
    let _ = writeln!(
        s,
        "    let t = (wid.z * nwg.x + wid.x) * {CONV_REG_WG}u + lid.x;"
    );
    s += "    let live = t < p.total;\n    let tt = min(t, p.total - 1u);\n";
    s
}

/// The start of a `conv_reg` kernel: [`reg_kernel_head`] with the packed filter as an array of
/// `wv_elem`, the bias and the output, and the output's activation `act` (ReLU with `p.aux` bit 1).
fn conv_reg_head(wv_elem: &str, what: &str) -> String {
    // The output's activation: ReLU where p.aux bit 1 asks for it.
    String::from("fn act(v: f32) -> f32 { return select(v, max(v, 0.0), (p.aux & 2u) != 0u); }\n")
        + &reg_kernel_head(
            "conv_reg",
            &[
                ("read", "wv", wv_elem),
                ("read", "bias", "f32"),
                ("read_write", "y", "f32"),
            ],
            what,
        )
}

/// WGSL of `conv_reg`: a direct convolution, one invocation per (image, output row, block of
/// `tx` columns) × a block of `to` output channels (the workgroup's y). Accumulators are named
/// `vec4`s over 4 output channels (`c{x}_{j}`), filter taps are read as vec4s from the packed
/// filter (`wpack`), and each input row segment (`tx + k − 1` values) is loaded once per (input
/// channel, filter row) and reused for all `k` filter columns: (tx + k − 1) + k·to/4 loads per
/// k·tx·to/4 vec4 multiply-adds, the ratio lavapipe's per-lane loads reward.
///
/// A tile of fewer than 4 channels (layers with 1–3 output channels, such as the input gradient of
/// a layer on images) is [`conv_reg_rows_source`] instead.
pub fn conv_reg_source(k: u32, to: u32, tx: u32) -> String {
    if scalar_tile(to) {
        return conv_reg_rows_source(k, to, tx);
    }
    assert!(to.is_multiple_of(4) && tx > 0 && k > 0);
    let tv = to / 4;
    let seg = tx + k - 1;
    let mut s = conv_reg_head(
        "vec4<f32>",
        &format!("k = {k}, {to} output channels x {tx} columns"),
    );
    s += "    let xb = tt % p.nxb;\n    let r = tt / p.nxb;\n    let yy = r % p.ho;\n    let b = r / p.ho;\n";
    let _ = writeln!(s, "    let xs = xb * {tx}u;");
    s += "    let x0 = i32(xs) - p.pad;\n";
    for xi in 0..tx {
        for j in 0..tv {
            let _ = writeln!(s, "    var c{xi}_{j} = vec4<f32>(0.0);");
        }
    }
    s += "    let hw = p.h * p.w;\n";
    let _ = writeln!(s, "    var wq = wid.y * {tv}u;");
    let _ = writeln!(s, "    let wstep = {k}u * p.co4;");
    s += "    for (var i = 0u; i < p.cin; i += 1u) {\n";
    s += "        let plane = (b * p.cin + i) * hw;\n";
    let _ = writeln!(s, "        for (var ky = 0u; ky < {k}u; ky += 1u) {{");
    row_lines(
        &mut s,
        "            ",
        "",
        "i32(yy + ky) - p.pad",
        "p.h",
        "row",
        "plane + ",
        "p.w",
    );
    for q in 0..seg {
        let _ = writeln!(s, "            let v{q} = ld(row, ok, x0 + {q});");
    }
    for kx in 0..k {
        for j in 0..tv {
            let _ = writeln!(
                s,
                "            let w{kx}_{j} = wv[wq + {kx}u * p.co4 + {j}u];"
            );
        }
        for xi in 0..tx {
            for j in 0..tv {
                let _ = writeln!(
                    s,
                    "            c{xi}_{j} = fma(w{kx}_{j}, vec4<f32>(v{}), c{xi}_{j});",
                    xi + kx
                );
            }
        }
    }
    s += "            wq += wstep;\n        }\n    }\n";
    s += "    if live {\n";
    let _ = writeln!(s, "        let o0 = wid.y * {to}u;");
    for j in 0..tv {
        for (c, lane) in LANES.iter().enumerate() {
            let _ = writeln!(s, "        if o0 + {}u < p.cout {{", 4 * j + c as u32);
            let _ = writeln!(s, "            let o = o0 + {}u;", 4 * j + c as u32);
            s += "            var bv = 0.0;\n            if (p.aux & 1u) != 0u { bv = bias[o]; }\n";
            s += "            let base = ((b * p.cout + o) * p.ho + yy) * p.wo + xs;\n";
            for xi in 0..tx {
                let _ = writeln!(
                    s,
                    "            if xs + {xi}u < p.wo {{ y[base + {xi}u] = act(c{xi}_{j}.{lane} + bv); }}"
                );
            }
            s += "        }\n";
        }
    }
    s += "    }\n}\n";
    s
}

/// Output rows one invocation of a scalar-channel `conv_reg` computes ([`conv_reg_rows_source`]).
pub const CONV_REG_ROWS: u32 = 4;

/// Whether a `conv_reg` tile of `to` output channels is the scalar form ([`conv_reg_rows_source`]:
/// a float per channel, [`CONV_REG_ROWS`] output rows per invocation, the packed filter read as
/// floats) rather than vec4s over channels: for 1–3 channels.
pub fn scalar_tile(to: u32) -> bool {
    to < 4
}

/// WGSL of `conv_reg` for `to` = 1…3 output channels: one invocation per (image, block of
/// [`CONV_REG_ROWS`] output rows, block of `tx` columns), a float accumulator per (row, column,
/// channel) (`c{y}_{x}_{m}`). With so few channels the loads, not the multiply-adds, are the cost
/// (every lane reads its own address), so each input row segment is loaded once and used for every
/// output row it reaches: (rows + k − 1)·(tx + k − 1) loads per rows·k²·tx·to multiply-adds, against
/// k·(tx + k − 1) per k²·tx·to for one row. The filter is read as floats (`p.co4` is its packed row
/// in floats).
pub fn conv_reg_rows_source(k: u32, to: u32, tx: u32) -> String {
    rows_kernel(k, to, tx, None)
}

/// Output rows one invocation of `conv_bwd_reg` computes ([`conv_bwd_rows_source`]): 28 = 4 × 7,
/// the side of the images a layer with one input channel sees. Taller tiles load less of the
/// gradient twice (`conv2d 1→32` backward: 14 ms at 14 rows, 17 at 7, 20–27 at 4) but grow the
/// kernel (8,000 lines at 14 rows, 1.7 s more to compile on lavapipe).
pub const CONV_BWD_ROWS: u32 = 7;

/// WGSL of `conv_bwd_reg`: the whole backward of a convolution with one input channel (a first
/// layer on images) from one read of its output gradient. It is the input gradient as
/// [`conv_reg_rows_source`] computes it (a convolution of the gradient `x` with the flipped filter
/// `wv`, padded by k − 1 − `pad`, into `y`), with [`CONV_BWD_ROWS`] rows per invocation, and each
/// gradient value it loads inside its own tile (rows y0…y0 + rows − 1, columns xs…xs + tx − 1 of
/// the gradient: the tiles partition it when 2·`pad` ≤ k − 1) also feeds the weight and bias
/// gradients: against the tile of the forward input `xin` it holds (loaded once, (rows + k − 1) ×
/// (tx + k − 1) values), into k² accumulators and one bias sum per gradient channel, written as
/// that invocation's partial sums `part[t, o, 0, ky, kx]` and `bpart[t, o]`, to be summed over t
/// in a fixed order. Without it the weight gradient reads the whole gradient again
/// (`conv_dw_reg`), and with one input channel that read costs about as much as the forward.
pub fn conv_bwd_rows_source(k: u32, tx: u32, pad: u32) -> String {
    assert!(
        2 * pad < k,
        "the tiles partition the gradient only when 2·pad ≤ k − 1"
    );
    rows_kernel(k, 1, tx, Some(pad))
}

/// The scalar-channel kernel of [`conv_reg_rows_source`], or with `fused = Some(forward pad)` that
/// of [`conv_bwd_rows_source`].
fn rows_kernel(k: u32, to: u32, tx: u32, fused: Option<u32>) -> String {
    assert!(to > 0 && scalar_tile(to) && tx > 0 && k > 0);
    let ty = if fused.is_some() {
        CONV_BWD_ROWS
    } else {
        CONV_REG_ROWS
    };
    let seg = tx + k - 1;
    let what = format!("k = {k}, {to} output channels x {ty} rows x {tx} columns");
    let mut s = match fused {
        None => conv_reg_head("f32", &what),
        Some(_) => {
            // The input gradient has no activation.
            String::from("fn act(v: f32) -> f32 { return v; }\n")
                + &padded_load("ldi", "xin", "p.wo")
                + &reg_kernel_head(
                    "conv_bwd_reg",
                    &[
                        ("read", "wv", "f32"),
                        ("read", "xin", "f32"),
                        ("read_write", "y", "f32"),
                        ("read_write", "part", "f32"),
                        ("read_write", "bpart", "f32"),
                    ],
                    &(what + ", and the weight and bias gradients of its gradient tile"),
                )
        }
    };
    let _ = writeln!(s, "    let nyb = (p.ho + {}u) / {ty}u;", ty - 1);
    s += "    let xb = tt % p.nxb;\n    let r = tt / p.nxb;\n    let yb = r % nyb;\n    let b = r / nyb;\n";
    let _ = writeln!(s, "    let xs = xb * {tx}u;\n    let y0 = yb * {ty}u;");
    s += "    let x0 = i32(xs) - p.pad;\n";
    for dy in 0..ty {
        for xi in 0..tx {
            for m in 0..to {
                let _ = writeln!(s, "    var c{dy}_{xi}_{m} = 0.0;");
            }
        }
    }
    if let Some(pf) = fused {
        // The forward input around the tile: xin row y0 + u − pad, column xs + q − pad, for the
        // gradient's (y0 + dy, xs + xi) and filter tap (ky, kx) at u = dy + ky, q = xi + kx. Its
        // size is the output's (p.ho × p.wo).
        s += "    let ohw = p.ho * p.wo;\n";
        for m in 0..to {
            for u in 0..ty + k - 1 {
                row_lines(
                    &mut s,
                    "    ",
                    &format!("{m}_{u}"),
                    &format!("i32(y0 + {u}u) - {pf}"),
                    "p.ho",
                    "xr",
                    &format!("(b * p.cout + {m}u) * ohw + "),
                    "p.wo",
                );
                for q in 0..seg {
                    let _ = writeln!(
                        s,
                        "    let z{m}_{u}_{q} = ldi(xr{m}_{u}, ok{m}_{u}, i32(xs + {q}u) - {pf});"
                    );
                }
            }
        }
    }
    s += "    let hw = p.h * p.w;\n";
    s += "    for (var i = 0u; i < p.cin; i += 1u) {\n";
    s += "        let plane = (b * p.cin + i) * hw;\n";
    let _ = writeln!(s, "        let wq = i * {} * p.co4;", k * k);
    for ky in 0..k {
        for kx in 0..k {
            for m in 0..to {
                let _ = writeln!(
                    s,
                    "        let w{ky}_{kx}_{m} = wv[wq + {}u * p.co4 + {m}u];",
                    ky * k + kx
                );
            }
        }
    }
    if fused.is_some() {
        s += "        var sb = 0.0;\n";
        for m in 0..to {
            for ky in 0..k {
                for kx in 0..k {
                    let _ = writeln!(s, "        var a{m}_{ky}_{kx} = 0.0;");
                }
            }
        }
    }
    // Input row y0 + ry − pad feeds output row dy through filter row ky = ry − dy.
    for ry in 0..ty + k - 1 {
        s += "        {\n";
        let y = format!("i32(y0 + {ry}u) - p.pad");
        row_lines(
            &mut s,
            "            ",
            "",
            &y,
            "p.h",
            "row",
            "plane + ",
            "p.w",
        );
        for q in 0..seg {
            let _ = writeln!(s, "            let v{q} = ld(row, ok, x0 + {q});");
        }
        for dy in 0..ty {
            let Some(ky) = ry.checked_sub(dy).filter(|&ky| ky < k) else {
                continue;
            };
            for kx in 0..k {
                for xi in 0..tx {
                    for m in 0..to {
                        let _ = writeln!(
                            s,
                            "            c{dy}_{xi}_{m} = fma(w{ky}_{kx}_{m}, v{}, c{dy}_{xi}_{m});",
                            xi + kx
                        );
                    }
                }
            }
        }
        // The tile's own gradient values: row y0 + dy at ry = dy + (k − 1 − pad), column xs + xi
        // at q = xi + (k − 1 − pad); outside the gradient they loaded as 0.
        if let Some(pf) = fused {
            let off = k - 1 - pf;
            if let Some(dy) = ry.checked_sub(off).filter(|&dy| dy < ty) {
                for xi in 0..tx {
                    let _ = writeln!(s, "            sb += v{};", xi + off);
                    for m in 0..to {
                        for ky in 0..k {
                            for kx in 0..k {
                                let _ = writeln!(
                                    s,
                                    "            a{m}_{ky}_{kx} = fma(v{}, z{m}_{}_{}, a{m}_{ky}_{kx});",
                                    xi + off,
                                    dy + ky,
                                    xi + kx
                                );
                            }
                        }
                    }
                }
            }
        }
        s += "        }\n";
    }
    if fused.is_some() {
        let kk = k * k;
        s += "        if live {\n            bpart[tt * p.cin + i] = sb;\n";
        let _ = writeln!(s, "            let pb = (tt * p.cin + i) * {}u;", to * kk);
        for m in 0..to {
            for ky in 0..k {
                for kx in 0..k {
                    let _ = writeln!(
                        s,
                        "            part[pb + {}u] = a{m}_{ky}_{kx};",
                        m * kk + ky * k + kx
                    );
                }
            }
        }
        s += "        }\n";
    }
    s += "    }\n";
    s += "    if live {\n";
    let _ = writeln!(s, "        let o0 = wid.y * {to}u;");
    for m in 0..to {
        let _ = writeln!(s, "        if o0 + {m}u < p.cout {{");
        let _ = writeln!(s, "            let o = o0 + {m}u;");
        if fused.is_some() {
            s += "            let bv = 0.0;\n";
        } else {
            s += "            var bv = 0.0;\n            if (p.aux & 1u) != 0u { bv = bias[o]; }\n";
        }
        for dy in 0..ty {
            let _ = writeln!(s, "            if y0 + {dy}u < p.ho {{");
            let _ = writeln!(
                s,
                "                let base = ((b * p.cout + o) * p.ho + y0 + {dy}u) * p.wo + xs;"
            );
            for xi in 0..tx {
                let _ = writeln!(
                    s,
                    "                if xs + {xi}u < p.wo {{ y[base + {xi}u] = act(c{dy}_{xi}_{m} + bv); }}"
                );
            }
            s += "            }\n";
        }
        s += "        }\n";
    }
    s += "    }\n}\n";
    s
}

/// WGSL of `conv_dw_reg`: the weight gradient, one invocation per (batch split, block of `ti`
/// input channels) × a block of `to` output channels (the workgroup's y), writing a partial sum
/// over its images: `part[s, o, i, ky, kx]`. Accumulators are named vec4s over 4 output channels
/// (`a{ti}_{ky}_{kx}_{j}`); per output pixel it loads `to` gradient values and, sliding a k-wide
/// window along each input row, `ti·k` new input values. The gradient values it loads also feed
/// the bias gradient's partial sums (`s{j}`), which the invocations of the first input-channel
/// block write to `bpart[s, o]`: the bias gradient without a pass of its own over the gradient.
pub fn conv_dw_reg_source(k: u32, to: u32, ti: u32) -> String {
    assert!(to.is_multiple_of(4) && to > 0 && ti > 0 && k > 0);
    let tv = to / 4;
    let mut s = reg_kernel_head(
        "conv_dw_reg",
        &[
            ("read", "g", "f32"),
            ("read_write", "part", "f32"),
            ("read_write", "bpart", "f32"),
        ],
        &format!("k = {k}, {to} output channels x {ti} input channels"),
    );
    // p.nxb = input-channel blocks, p.aux = images per split.
    s += "    let ib = tt % p.nxb;\n    let sp = tt / p.nxb;\n";
    let _ = writeln!(s, "    let i0 = ib * {ti}u;");
    let _ = writeln!(s, "    let o0 = wid.y * {to}u;");
    s += "    let b0 = sp * p.aux;\n    let b1 = min(b0 + p.aux, p.batch);\n";
    s += "    let hw = p.h * p.w;\n    let ohw = p.ho * p.wo;\n";
    for m in 0..to {
        let _ = writeln!(s, "    let go{m} = min(o0 + {m}u, p.cout - 1u) * ohw;");
    }
    for c in 0..ti {
        let _ = writeln!(s, "    let ic{c} = min(i0 + {c}u, p.cin - 1u);");
    }
    for c in 0..ti {
        for ky in 0..k {
            for kx in 0..k {
                for j in 0..tv {
                    let _ = writeln!(s, "    var a{c}_{ky}_{kx}_{j} = vec4<f32>(0.0);");
                }
            }
        }
    }
    for j in 0..tv {
        let _ = writeln!(s, "    var s{j} = vec4<f32>(0.0);");
    }
    s += "    for (var b = b0; b < b1; b += 1u) {\n";
    s += "        let gb = b * p.cout * ohw;\n";
    s += "        for (var yy = 0u; yy < p.ho; yy += 1u) {\n";
    for ky in 0..k {
        let y = format!("i32(yy + {ky}u) - p.pad");
        row_lines(
            &mut s,
            "            ",
            &ky.to_string(),
            &y,
            "p.h",
            "ry",
            "",
            "p.w",
        );
    }
    for c in 0..ti {
        let _ = writeln!(s, "            let pl{c} = (b * p.cin + ic{c}) * hw;");
        for ky in 0..k {
            let _ = writeln!(s, "            let row{c}_{ky} = pl{c} + ry{ky};");
            for kx in 0..k.saturating_sub(1) {
                let _ = writeln!(
                    s,
                    "            var v{c}_{ky}_{kx} = ld(row{c}_{ky}, ok{ky}, {kx} - p.pad);"
                );
            }
        }
    }
    s += "            let gy = gb + yy * p.wo;\n";
    s += "            for (var xx = 0u; xx < p.wo; xx += 1u) {\n";
    let _ = writeln!(s, "                let nx = i32(xx + {}u) - p.pad;", k - 1);
    for c in 0..ti {
        for ky in 0..k {
            let _ = writeln!(
                s,
                "                let n{c}_{ky} = ld(row{c}_{ky}, ok{ky}, nx);"
            );
        }
    }
    s += "                let gx = gy + xx;\n";
    for j in 0..tv {
        let _ = writeln!(
            s,
            "                let g{j} = vec4<f32>(g[gx + go{}], g[gx + go{}], g[gx + go{}], g[gx + go{}]);",
            4 * j,
            4 * j + 1,
            4 * j + 2,
            4 * j + 3
        );
        let _ = writeln!(s, "                s{j} += g{j};");
    }
    for c in 0..ti {
        for ky in 0..k {
            for kx in 0..k {
                let v = if kx + 1 == k {
                    format!("n{c}_{ky}")
                } else {
                    format!("v{c}_{ky}_{kx}")
                };
                for j in 0..tv {
                    let _ = writeln!(
                        s,
                        "                a{c}_{ky}_{kx}_{j} = fma(g{j}, vec4<f32>({v}), a{c}_{ky}_{kx}_{j});"
                    );
                }
            }
            // Slide the window.
            for kx in 0..k.saturating_sub(1) {
                let nv = if kx + 2 == k {
                    format!("n{c}_{ky}")
                } else {
                    format!("v{c}_{ky}_{}", kx + 1)
                };
                let _ = writeln!(s, "                v{c}_{ky}_{kx} = {nv};");
            }
        }
    }
    s += "            }\n        }\n    }\n";
    s += "    if live && ib == 0u {\n";
    for j in 0..tv {
        for (l, lane) in LANES.iter().enumerate() {
            let m = 4 * j + l as u32;
            let _ = writeln!(
                s,
                "        if o0 + {m}u < p.cout {{ bpart[sp * p.cout + o0 + {m}u] = s{j}.{lane}; }}"
            );
        }
    }
    s += "    }\n";
    s += "    if live {\n";
    let kk = k * k;
    for c in 0..ti {
        let _ = writeln!(s, "        if i0 + {c}u < p.cin {{");
        for j in 0..tv {
            for (l, lane) in LANES.iter().enumerate() {
                let m = 4 * j + l as u32;
                let _ = writeln!(s, "            if o0 + {m}u < p.cout {{");
                let _ = writeln!(
                    s,
                    "                let pb = ((sp * p.cout + o0 + {m}u) * p.cin + i0 + {c}u) * {kk}u;"
                );
                for ky in 0..k {
                    for kx in 0..k {
                        let _ = writeln!(
                            s,
                            "                part[pb + {}u] = a{c}_{ky}_{kx}_{j}.{lane};",
                            ky * k + kx
                        );
                    }
                }
                s += "            }\n";
            }
        }
        s += "        }\n";
    }
    s += "    }\n}\n";
    s
}
