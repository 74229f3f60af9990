//! The case list: every kernel variant the engine has, each as data (what runs, on which shapes,
//! from which seed), so that a case can be listed, filtered, run on any device and, later,
//! exported on its own. Shapes are ragged: sizes that are no multiple of a tile or a workgroup.

use crate::group::Group;
use crate::ops::conv::{ConvAlgo, ConvDims, WeightGradAlgo};
use crate::ops::kl::Penalty;
use crate::ops::matmul::codegen::REG_TILES;
use crate::ops::matmul::variants::VARIANTS;
use crate::ops::pool::RotPool;
use crate::reference::matmul::Dims;

/// An elementwise op of `shaders/elementwise.wgsl` (with its backward where it has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ew {
    Axpby,
    Mul,
    Affine,
    /// `relu` and `relu_bwd`.
    Relu,
    ScaleBy,
    Acc,
    Dropout,
    /// `gelu` and `gelu_bwd`.
    Gelu,
}

/// What one case runs: the op, its variant and its shapes. Inputs are drawn from the case's seed.
#[derive(Clone, Debug)]
pub enum Kernel {
    /// A matrix product forced to `variant` (with the register tile `tile` for `mm_reg`): the
    /// taped op, forward and backward (dA, dB and the bias gradient).
    Matmul {
        variant: &'static str,
        tile: Option<(u32, u32)>,
        d: Dims,
        bias: bool,
        relu: bool,
    },
    /// The product with a constant B held in half precision (`mm_reg_h`, register tile `tile`):
    /// `A · B` and the taped `A · Bᵀ`'s `dA`, against the reference on B rounded to half precision.
    MatmulHalf {
        tile: (u32, u32),
        d: Dims,
    },
    /// A convolution algorithm's forward pass (with bias) and input gradient.
    Conv {
        algo: ConvAlgo,
        d: ConvDims,
    },
    /// A weight-gradient algorithm: the weight and the bias gradients.
    ConvWeightGrad {
        algo: WeightGradAlgo,
        d: ConvDims,
    },
    /// The fused backward of a one-input-channel layer (`conv_bwd_reg`): dx, dw and db at once.
    ConvFused {
        d: ConvDims,
    },
    Elementwise {
        op: Ew,
        n: usize,
    },
    /// `sum_axis`, `mean_axis` and the backward `broadcast_axis`.
    SumAxis {
        shape: Vec<usize>,
        axis: usize,
    },
    /// `sum_all` and `sumsq_all` (partial sums, then their sum).
    SumAll {
        n: usize,
    },
    /// `swap12` of (a, b, c, d) → (a, c, b, d) and back (its own backward).
    Swap12 {
        dims: [usize; 4],
    },
    /// `concat` of (outer, la, inner) and (outer, lb, inner) along the middle axis, `slice` and
    /// its backward `unslice`.
    Concat {
        outer: usize,
        la: usize,
        lb: usize,
        inner: usize,
    },
    /// The cloned layer's `mix` of codes (rows, k2) with M1 (k2, m), and its backward.
    Mix {
        rows: usize,
        k2: usize,
        m: usize,
    },
    /// `taps` of blocks (nb, n_out, n_in) for a k×k correlation on d×d inputs, and `taps_adj`.
    Taps {
        nb: usize,
        k: usize,
        d: usize,
    },
    /// `gram` of B (nb, cols) and `gram_backward`.
    Gram {
        nb: usize,
        cols: usize,
    },
    /// `cross_entropy` (loss and gradient) and `correct_count`.
    CrossEntropy {
        rows: usize,
        classes: usize,
    },
    Mse {
        n: usize,
    },
    /// `adam_` (AdamW when `decoupled`) or `sgd_` (`adam: false`) for `steps` steps, with the
    /// gradient-norm clip when `clip` (`clip_coefficient`).
    Optim {
        adam: bool,
        decoupled: bool,
        clip: bool,
        n: usize,
        steps: u32,
    },
    /// `lift_filter` and `p4_filter` of (cout, cin, k), with their adjoints (their backward).
    GconvFilters {
        cout: usize,
        cin: usize,
        k: usize,
        group: Group,
    },
    /// The lifting (`p4: false`) or group (P4 or p4m) convolution's forward pass, with bias.
    Gconv {
        p4: bool,
        d: ConvDims,
        group: Group,
    },
    /// `max_pool2d` (`max`) or `avg_pool2d` of (planes, h, w), window k, stride s, and backward.
    Pool {
        max: bool,
        planes: usize,
        h: usize,
        w: usize,
        k: usize,
        s: usize,
    },
    /// `rot_pool` of (b, c, n, h, w) (n = 4 or 8) and its backward.
    RotPool {
        how: RotPool,
        shape: [usize; 5],
    },
    /// `global_mean` of (b, c, h, w) and its backward.
    GlobalMean {
        shape: [usize; 4],
    },
    /// `rot90` by r quarter turns and `c4_act`, taped (backward: the inverse turn).
    Rot90 {
        planes: usize,
        n: usize,
        r: usize,
    },
    /// `shift_crop` of (planes, h, w) onto ho × wo at (oy, ox), taped (backward: its adjoint).
    ShiftCrop {
        planes: usize,
        h: usize,
        w: usize,
        ho: usize,
        wo: usize,
        oy: i64,
        ox: i64,
    },
    /// `randn` of n draws from `seed`.
    Randn {
        n: usize,
    },
    /// A drift penalty of w against w0 (value and gradient): the δ-form KL along `axis`, or the
    /// squared distance summed over the same rows.
    Kl {
        shape: Vec<usize>,
        axis: usize,
        penalty: Penalty,
    },
    /// `layer_norm` of (rows, cols) and `layer_norm_bwd`.
    LayerNorm {
        rows: usize,
        cols: usize,
    },
    /// The batch `gather` of `samples` digits (h × w, rotated and shifted) onto a canvas.
    Gather {
        images: usize,
        side: usize,
        samples: usize,
        canvas: usize,
    },
}

/// One case: a family, a name that says the variant and the shapes, what runs, and the seed of
/// its inputs.
#[derive(Clone, Debug)]
pub struct Case {
    /// The shader family (`matmul`, `conv`, `elementwise`, …).
    pub family: &'static str,
    /// `family/variant shapes`, unique; what `--filter` matches.
    pub name: String,
    pub kernel: Kernel,
    pub seed: u64,
}

fn show_conv(d: &ConvDims) -> String {
    format!(
        "{}x{}x{}x{} k{} p{} → {}",
        d.batch, d.cin, d.h, d.w, d.k, d.pad, d.cout
    )
}

fn show_mm(d: &Dims, bias: bool, relu: bool) -> String {
    let mut s = format!("{}x{}x{}", d.m, d.k, d.n);
    if d.za + d.zb > 0 {
        s += &format!(" z{}/{}", d.za, d.zb);
    }
    for (on, what) in [
        (d.ta, " ta"),
        (d.tb, " tb"),
        (bias, " bias"),
        (relu, " relu"),
    ] {
        if on {
            s += what;
        }
    }
    s
}

/// Every case, in a fixed order (the table's).
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    let mut push = |family: &'static str, name: String, kernel: Kernel| {
        let seed = 0x5eed + v.len() as u64;
        v.push(Case {
            family,
            name: format!("{family}/{name}"),
            kernel,
            seed,
        });
    };
    // Matrix products: every variant (mm_reg at every register tile) on a ragged product with
    // both epilogues and a transposed B, and on a batch with A shared and transposed.
    let mm = |za, zb, m, k, n, ta, tb| Dims {
        za,
        zb,
        m,
        k,
        n,
        ta,
        tb,
    };
    let mm_shapes = [
        (mm(0, 0, 67, 65, 130, false, true), true, true),
        (mm(3, 0, 17, 33, 9, true, false), false, false),
        (mm(0, 0, 257, 129, 33, true, true), true, false),
    ];
    for var in VARIANTS {
        let tiles: Vec<Option<(u32, u32)>> = if var.name == "mm_reg" {
            REG_TILES.iter().map(|t| Some(*t)).collect()
        } else {
            vec![None]
        };
        for tile in tiles {
            let label = match tile {
                Some((tm, tn)) => format!("{}[{tm}x{tn}]", var.name),
                None => var.name.to_string(),
            };
            for (d, bias, relu) in mm_shapes {
                push(
                    "matmul",
                    format!("{label} {}", show_mm(&d, bias, relu)),
                    Kernel::Matmul {
                        variant: var.name,
                        tile,
                        d,
                        bias,
                        relu,
                    },
                );
            }
        }
    }
    // A constant B in half precision (frozen clone blocks): the default tile and the smallest,
    // ragged N, a batched A.
    for tile in [REG_TILES[0], crate::ops::matmul::codegen::DEFAULT_REG_TILE] {
        for d in [
            mm(0, 0, 67, 65, 130, false, false),
            mm(3, 0, 17, 33, 9, false, false),
        ] {
            push(
                "matmul",
                format!(
                    "mm_reg_h[{}x{}] {}",
                    tile.0,
                    tile.1,
                    show_mm(&d, false, false)
                ),
                Kernel::MatmulHalf { tile, d },
            );
        }
    }
    // Convolutions: every algorithm at k = 1, 3 and 5 (each its own generated kernel), padding 0
    // to 2, channels past one 64-row tile.
    let conv_shapes = [
        (3, 3, 9, 7, 5, 3, 1),
        (1, 17, 9, 8, 3, 5, 2),
        (3, 5, 6, 5, 70, 1, 0),
        (1, 3, 28, 28, 17, 3, 1),
    ];
    for (name, _, algo) in crate::ops::conv::tune::ALGOS {
        for c in conv_shapes {
            let d = ConvDims::from(c);
            push(
                "conv",
                format!("{name} {}", show_conv(&d)),
                Kernel::Conv { algo: *algo, d },
            );
        }
    }
    for a in crate::ops::conv::tune::DW_ALGOS {
        for c in conv_shapes {
            let d = ConvDims::from(c);
            push(
                "conv",
                format!("{} {}", a.name, show_conv(&d)),
                Kernel::ConvWeightGrad { algo: a.algo, d },
            );
        }
    }
    for c in [(3, 1, 15, 13, 17, 3, 1), (1, 1, 8, 33, 3, 1, 0)] {
        let d = ConvDims::from(c);
        push(
            "conv",
            format!("conv_bwd_reg {}", show_conv(&d)),
            Kernel::ConvFused { d },
        );
    }
    for op in [
        Ew::Axpby,
        Ew::Mul,
        Ew::Affine,
        Ew::Relu,
        Ew::ScaleBy,
        Ew::Acc,
        Ew::Dropout,
        Ew::Gelu,
    ] {
        let n = 70_001;
        push(
            "elementwise",
            format!("{} n{n}", format!("{op:?}").to_lowercase()),
            Kernel::Elementwise { op, n },
        );
    }
    for (shape, axis) in [
        (vec![7, 33, 5], 1),
        (vec![129, 3], 0),
        (vec![4, 1000, 2], 2),
    ] {
        push(
            "reduce",
            format!("sum_axis {shape:?} axis {axis}"),
            Kernel::SumAxis { shape, axis },
        );
    }
    for n in [7, 4097, 300_001] {
        push("reduce", format!("sum_all n{n}"), Kernel::SumAll { n });
    }
    push(
        "layout",
        "swap12 [3, 5, 7, 9]".into(),
        Kernel::Swap12 { dims: [3, 5, 7, 9] },
    );
    push(
        "layout",
        "concat/slice 5x(3+4)x33".into(),
        Kernel::Concat {
            outer: 5,
            la: 3,
            lb: 4,
            inner: 33,
        },
    );
    push(
        "cloned",
        "mix 33x9 · 9x7".into(),
        Kernel::Mix {
            rows: 33,
            k2: 9,
            m: 7,
        },
    );
    push(
        "cloned",
        "taps nb9 k3 d7".into(),
        Kernel::Taps { nb: 9, k: 3, d: 7 },
    );
    push(
        "cloned",
        "gram 9x1001".into(),
        Kernel::Gram { nb: 9, cols: 1001 },
    );
    push(
        "loss",
        "cross_entropy 257x3".into(),
        Kernel::CrossEntropy {
            rows: 257,
            classes: 3,
        },
    );
    push(
        "loss",
        "cross_entropy 7x10".into(),
        Kernel::CrossEntropy {
            rows: 7,
            classes: 10,
        },
    );
    push("loss", "mse n1001".into(), Kernel::Mse { n: 1001 });
    for (adam, decoupled, clip, what) in [
        (true, false, true, "adam clip"),
        (true, true, false, "adamw"),
        (false, false, true, "sgd clip"),
    ] {
        push(
            "optim",
            format!("{what} n1001 10 steps"),
            Kernel::Optim {
                adam,
                decoupled,
                clip,
                n: 1001,
                steps: 10,
            },
        );
    }
    let gd = ConvDims::from((2, 3, 9, 7, 5, 3, 1));
    for (group, filters, lift, conv) in [
        (Group::C4, "lift/p4", "lift_c4", "p4_conv"),
        (Group::D4, "lift/p4m", "lift_d4", "p4m_conv"),
    ] {
        push(
            "gconv",
            format!("{filters} filters 5x3 k3"),
            Kernel::GconvFilters {
                cout: 5,
                cin: 3,
                k: 3,
                group,
            },
        );
        push(
            "gconv",
            format!("{lift} {}", show_conv(&gd)),
            Kernel::Gconv {
                p4: false,
                d: gd,
                group,
            },
        );
        push(
            "gconv",
            format!("{conv} {}", show_conv(&gd)),
            Kernel::Gconv {
                p4: true,
                d: gd,
                group,
            },
        );
    }
    for (max, k, s) in [(true, 2, 2), (true, 3, 2), (false, 2, 2), (false, 3, 1)] {
        let (planes, h, w) = (6, 13, 9);
        push(
            "pool",
            format!(
                "{} {planes}x{h}x{w} k{k} s{s}",
                if max { "max_pool2d" } else { "avg_pool2d" }
            ),
            Kernel::Pool {
                max,
                planes,
                h,
                w,
                k,
                s,
            },
        );
    }
    for how in [RotPool::Max, RotPool::Mean] {
        for n in [4, 8] {
            push(
                "pool",
                format!("rot_pool {how:?} [2, 3, {n}, 7, 5]").to_lowercase(),
                Kernel::RotPool {
                    how,
                    shape: [2, 3, n, 7, 5],
                },
            );
        }
    }
    push(
        "pool",
        "global_mean [3, 5, 7, 9]".into(),
        Kernel::GlobalMean {
            shape: [3, 5, 7, 9],
        },
    );
    for r in [1, 3] {
        push(
            "transform",
            format!("rot90/c4_act r{r} 8x9x9"),
            Kernel::Rot90 { planes: 8, n: 9, r },
        );
    }
    push(
        "transform",
        "shift_crop 6x9x7 → 11x5 at (2, -1)".into(),
        Kernel::ShiftCrop {
            planes: 6,
            h: 9,
            w: 7,
            ho: 11,
            wo: 5,
            oy: 2,
            ox: -1,
        },
    );
    push("random", "randn n70001".into(), Kernel::Randn { n: 70_001 });
    for penalty in Penalty::ALL {
        push(
            "kl",
            format!("{} [40, 5, 31] axis 1", penalty.name()),
            Kernel::Kl {
                shape: vec![40, 5, 31],
                axis: 1,
                penalty,
            },
        );
    }
    push(
        "norm",
        "layer_norm 67x33".into(),
        Kernel::LayerNorm { rows: 67, cols: 33 },
    );
    push(
        "data",
        "gather 13 of 5 digits 9x9 on 15".into(),
        Kernel::Gather {
            images: 5,
            side: 9,
            samples: 13,
            canvas: 15,
        },
    );
    v
}
