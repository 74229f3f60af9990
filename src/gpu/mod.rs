//! The GPU runtime: device and limits ([`device`]), buffer pool, pipeline cache ([`pipelines`]),
//! command recorder ([`recorder`]) and what it counts ([`counters`]), kernel timing ([`timing`]),
//! WGSL sources and the cache of kernels generated in Rust ([`shader`]), and variant choice by
//! measurement ([`tune`]). Nothing here imports the ops, the tape or the layers: each op family
//! brings its own generators and tuned ops.
//!
//! Dispatches are recorded into one command encoder and submitted only when the host reads a buffer,
//! when `flush` is called, or every [`MAX_PENDING_DISPATCHES`] dispatches. Kernel parameters go into a
//! uniform arena that is written once per submission, just before it, so `queue.write_buffer` never
//! races a dispatch recorded earlier.

pub mod adapter;
pub mod counters;
mod device;
pub mod params;
mod pipelines;
mod pool;
mod recorder;
pub mod shader;
mod timing;
pub mod trace;
pub mod tune;
mod validate;

pub use adapter::{AdapterChoice, AdapterSummary};
pub use counters::{Counters, StepCounts};
pub use device::{Gpu, KernelFamily};
pub use pipelines::MAX_BINDINGS;
pub use pool::{PoolStats, PooledBuffer};
pub use recorder::{grid_1d, Bindable, Launch};
pub use shader::{specialize, Shader};
pub use timing::KernelTimes;
pub use tune::{Candidate, Choice, Op};
pub use validate::Validation;

/// Submit after this many recorded dispatches even if nobody reads.
pub const MAX_PENDING_DISPATCHES: u32 = 256;

/// The most loop iterations one invocation of a kernel may run in all, counted over every loop
/// it enters (a loop whose trip count is a compile-time constant unrolls and does not count).
/// lavapipe (llvmpipe) counts them against one limiter of 65,535 per invocation and, past it,
/// exits every loop early and silently (Mesa's `LP_MAX_TGSI_LOOP_ITERATIONS`): a kernel that
/// loops longer gives wrong sums there, and right ones on every other driver. Launchers whose
/// loops grow with the data split their work to stay under this, which leaves a margin.
pub const LOOP_BUDGET: usize = 60_000;
