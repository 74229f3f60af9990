//! The convolution's tuned ops (one per pass) and the algorithms the tuner (`gpu::tune`) chooses
//! among, per pass and shape bucket: each
//! candidate runs at the bucket's representative size, is checked against the CPU reference, and
//! the fastest that agrees is kept. A new algorithm is one line in [`ALGOS`] or [`DW_ALGOS`] (each
//! family's default first: what a forced `--family` runs without timing).

use super::{
    conv2d_input_grad_with, conv_any, fwd_geo, weight_grad_by, ConvAlgo, ConvDims, WeightGradAlgo,
};
use crate::gpu::tune::{log2_bucket, Candidate, Measured, Op};
use crate::gpu::{Gpu, KernelFamily};
use crate::reference::{self, to64};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Instant;

/// The forward pass, as the tuner keys it (its choices list after the matrix product's).
pub const FWD: Op = Op::new(1, "conv_fwd");
/// The input gradient.
pub const INPUT_GRAD: Op = Op::new(2, "conv_input_grad");
/// The weight gradient.
pub const WEIGHT_GRAD: Op = Op::new(3, "conv_weight_grad");

/// Forward and input-gradient algorithms: (name, family, algorithm).
pub const ALGOS: &[(&str, KernelFamily, ConvAlgo)] = &[
    ("conv_reg", KernelFamily::Register, ConvAlgo::Reg),
    ("conv_direct", KernelFamily::Workgroup, ConvAlgo::Direct),
    ("conv_im2col", KernelFamily::Workgroup, ConvAlgo::Im2col),
    ("conv_igemm", KernelFamily::Workgroup, ConvAlgo::Igemm),
];

/// One weight-gradient algorithm.
pub struct DwAlgo {
    pub name: &'static str,
    pub family: KernelFamily,
    pub algo: WeightGradAlgo,
}

/// Weight-gradient algorithms.
pub const DW_ALGOS: &[DwAlgo] = &[
    DwAlgo {
        name: "dw_reg",
        family: KernelFamily::Register,
        algo: WeightGradAlgo::Reg,
    },
    DwAlgo {
        name: "dw_direct",
        family: KernelFamily::Workgroup,
        algo: WeightGradAlgo::Direct,
    },
    DwAlgo {
        name: "dw_gemm",
        family: KernelFamily::Workgroup,
        algo: WeightGradAlgo::Gemm,
    },
];

/// The largest convolution timed while choosing (multiply-adds); a bucket above it is timed with a
/// smaller batch, then smaller images, then fewer channels.
const TIMED_MACS: u64 = 1 << 23;

fn macs(d: &ConvDims) -> u64 {
    (d.batch * d.cout * d.cin * d.k * d.k) as u64 * (d.ho() * d.wo()) as u64
}

/// The bucket of `d` (sizes rounded to powers of two; k and the padding exact), its representative
/// dims and the size it is timed at.
fn bucket(d: ConvDims) -> (String, ConvDims, ConvDims) {
    let p2 = |x: usize| 1usize << log2_bucket(x);
    let mut rep = ConvDims {
        batch: p2(d.batch),
        cin: p2(d.cin),
        cout: p2(d.cout),
        h: p2(d.h).max(d.k),
        w: p2(d.w).max(d.k),
        ..d
    };
    let name = format!(
        "k{}p{}b{}i{}o{}h{}w{}",
        d.k, d.pad, rep.batch, rep.cin, rep.cout, rep.h, rep.w
    );
    let full = rep;
    while macs(&rep) > TIMED_MACS {
        if rep.batch > 1 {
            rep.batch /= 2;
        } else if rep.h.max(rep.w) > 2 * rep.k.max(4) {
            rep.h = (rep.h / 2).max(rep.k);
            rep.w = (rep.w / 2).max(rep.k);
        } else if rep.cin.max(rep.cout) > 1 {
            if rep.cin >= rep.cout {
                rep.cin /= 2
            } else {
                rep.cout /= 2
            }
        } else {
            break;
        }
    }
    (name, full, rep)
}

fn at(d: &ConvDims) -> String {
    format!(
        "{}x{}x{}x{} k{} → {}",
        d.batch, d.cin, d.h, d.w, d.k, d.cout
    )
}

/// Random inputs of dims `d` and the reference's (forward, dx, dw), each with its Σ|terms|.
struct Case {
    x: Tensor,
    w: Tensor,
    g: Tensor,
    want: [Vec<f64>; 3],
    want_abs: [Vec<f64>; 3],
}

fn case(gpu: &Arc<Gpu>, d: ConvDims) -> Result<Case> {
    let mut rng = Rng::new(0xc0de);
    let xs = [d.batch, d.cin, d.h, d.w];
    let ws = [d.cout, d.cin, d.k, d.k];
    let x = rng.normal_vec(xs.iter().product());
    let w = rng.normal_vec(ws.iter().product());
    let g = rng.normal_vec(d.out_shape().iter().product());
    let (x6, w6, g6) = (to64(&x), to64(&w), to64(&g));
    let abs = |v: &[f64]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let (xa, wa, ga) = (abs(&x6), abs(&w6), abs(&g6));
    let fwd = reference::conv::forward(&x6, &w6, None, d);
    let fwd_abs = reference::conv::forward(&xa, &wa, None, d);
    let (dx, dw, _) = reference::conv::backward(&x6, &w6, &g6, d);
    let (dxa, dwa, _) = reference::conv::backward(&xa, &wa, &ga, d);
    Ok(Case {
        x: Tensor::from_slice(gpu, &xs, &x)?,
        w: Tensor::from_slice(gpu, &ws, &w)?,
        g: Tensor::from_slice(gpu, &d.out_shape(), &g)?,
        want: [fwd, dx, dw],
        want_abs: [fwd_abs, dxa, dwa],
    })
}

/// Run `f` once against the reference (why, when it disagrees), then time it.
fn measure(
    gpu: &Gpu,
    got_want: (usize, &Case),
    k: usize,
    bound: f64,
    f: &dyn Fn() -> Result<Tensor>,
) -> Result<Measured> {
    let (i, c) = got_want;
    let t0 = Instant::now();
    let got = f()?.to_vec()?;
    let first = t0.elapsed().as_secs_f64();
    let (err, tol) = reference::tol::sum_error(&got, &c.want[i], &c.want_abs[i], k);
    if err.is_nan() || err > tol {
        return Ok(Err(format!(
            "relative error {err:.2e} over the bound {tol:.2e}"
        )));
    }
    let best = crate::gpu::tune::best_time(gpu, first, bound, &mut || f().map(drop))?;
    Ok(Ok(best))
}

/// One candidate's measurement: its name, the bucket's case, the case's dims, the best time so far.
type Run<'a> = &'a dyn Fn(&str, &Case, ConvDims, f64) -> Result<Measured>;

/// Time `cands` for the bucket of `d`: `run` gets a candidate's name, the case at the bucket's
/// representative dims (built once, for the first candidate), those dims and the best time so far.
fn choose_in_bucket(
    gpu: &Arc<Gpu>,
    op: Op,
    d: ConvDims,
    cands: &[Candidate],
    run: Run<'_>,
) -> Result<&'static str> {
    let (name, full, rep) = bucket(d);
    let mut made: Option<Case> = None;
    gpu.choose(op, &name, cands, &at(&rep), macs(&full), &mut |n, bound| {
        if made.is_none() {
            made = Some(case(gpu, rep)?);
        }
        run(n, made.as_ref().expect("made above"), rep, bound)
    })
}

/// The forward ([`FWD`]) or input-gradient ([`INPUT_GRAD`]) algorithm for dims `d`.
pub(super) fn choose(gpu: &Arc<Gpu>, op: Op, d: ConvDims) -> Result<ConvAlgo> {
    let cands: Vec<Candidate> = ALGOS
        .iter()
        .map(|&(name, family, _)| Candidate { name, family })
        .collect();
    let chosen = choose_in_bucket(gpu, op, d, &cands, &|n, c, rep, bound| {
        let algo = algo(n)?;
        if op == INPUT_GRAD {
            let f = || conv2d_input_grad_with(algo, &c.g, &c.w, rep);
            measure(gpu, (1, c), rep.cout * rep.k * rep.k, bound, &f)
        } else {
            let f = || conv_any(&c.x, &c.w, None, fwd_geo(&rep), algo);
            measure(gpu, (0, c), rep.cin * rep.k * rep.k, bound, &f)
        }
    })?;
    algo(chosen)
}

fn algo(name: &str) -> Result<ConvAlgo> {
    ALGOS
        .iter()
        .find(|a| a.0 == name)
        .map(|a| a.2)
        .ok_or_else(|| Error::invalid(format!("unknown convolution algorithm '{name}'")))
}

/// The weight-gradient algorithm for dims `d`.
pub(super) fn choose_dw(gpu: &Arc<Gpu>, d: ConvDims) -> Result<&'static DwAlgo> {
    let cands: Vec<Candidate> = DW_ALGOS
        .iter()
        .map(|a| Candidate {
            name: a.name,
            family: a.family,
        })
        .collect();
    let op = WEIGHT_GRAD;
    let chosen = choose_in_bucket(gpu, op, d, &cands, &|n, c, rep, bound| {
        let a = dw_algo(n)?;
        let f = || {
            let dw = Tensor::empty(gpu, &[rep.cout, rep.cin, rep.k, rep.k])?;
            weight_grad_by(a.algo, &c.x, &c.g, rep, dw)
        };
        measure(gpu, (2, c), rep.batch * rep.ho() * rep.wo(), bound, &f)
    })?;
    dw_algo(chosen)
}

fn dw_algo(name: &str) -> Result<&'static DwAlgo> {
    DW_ALGOS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| Error::invalid(format!("unknown weight-gradient algorithm '{name}'")))
}
