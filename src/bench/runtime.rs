//! The runtime's own cost: what the CPU spends recording and submitting one dispatch (a tiny kernel,
//! so the GPU's work is negligible next to it). A discrete GPU running a small-batch step of a few
//! hundred dispatches is bound by this number.

use super::{median, wanted, Options, Row};
use crate::tensor::Tensor;
use crate::{Gpu, Result};
use std::sync::Arc;
use std::time::Instant;

/// Dispatches recorded per timed sample.
const PER_SAMPLE: usize = 1000;

pub(super) fn runtime_cases(
    gpu: &Arc<Gpu>,
    opts: &Options,
    rows: &mut Vec<Row>,
    progress: &mut dyn FnMut(&Row),
) -> Result<()> {
    let case = "dispatch: record + submit one 64-element kernel (CPU time per dispatch)";
    if !wanted(opts, case) {
        return Ok(());
    }
    let n = 64;
    let acc = Tensor::zeros(gpu, &[n])?;
    let one = Tensor::full(gpu, &[n], 1.0)?;
    let mut samples = Vec::new();
    let runs = opts.reps.max(3) + 1;
    for run in 0..runs {
        gpu.sync()?;
        let t0 = Instant::now();
        for _ in 0..PER_SAMPLE {
            acc.acc_(&one, 1.0)?;
        }
        gpu.flush()?;
        if run > 0 {
            samples.push(t0.elapsed().as_secs_f64() / PER_SAMPLE as f64);
        }
    }
    // Every dispatch added one: the sum checks that none was lost or reordered into a race.
    let got = acc.to_vec()?;
    let want = vec![(runs * PER_SAMPLE) as f64; n];
    let s = median(samples);
    let row = Row {
        case: case.into(),
        gpu_s: s,
        gpu_timing: "wall",
        wall_s: s,
        cpu_s: f64::NAN,
        cpu_baseline: "—",
        work: 1.0,
        unit: "dispatch/s",
        rel_err: crate::reference::rel_err(&got, &want),
        note: String::new(),
        counts: None,
    };
    progress(&row);
    rows.push(row);
    Ok(())
}
