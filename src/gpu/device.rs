//! One GPU device: the adapter opened with its own limits (or lower ones, such as WebGPU's
//! defaults), its queue, and the state the other runtime parts keep (pool, pipeline cache,
//! recorder).

use super::pipelines::{Cached, PipelineKey};
use super::pool::{self, PoolStats, PooledBuffer};
use super::recorder::{Recorder, UNIFORM_ARENA};
use super::AdapterChoice;
use crate::{Error, Result};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which kernel family (matrix products and convolutions) suits the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum KernelFamily {
    /// Register tiling with vec4 loads and no workgroup memory: what CPU drivers (lavapipe) run well.
    Register,
    /// Workgroup-shared tiles: what real GPUs run well.
    Workgroup,
}

impl KernelFamily {
    /// `register`, `workgroup`, or `auto`/None (None: let the adapter's type decide).
    pub fn parse(name: Option<&str>) -> Result<Option<KernelFamily>> {
        match name.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("auto") | Some("") => Ok(None),
            Some("register") => Ok(Some(KernelFamily::Register)),
            Some("workgroup") => Ok(Some(KernelFamily::Workgroup)),
            Some(o) => Err(Error::invalid(format!(
                "unknown kernel family '{o}': use register, workgroup or auto (--family or SYMCLONE_FAMILY)"
            ))),
        }
    }

    /// The name `--family` takes.
    pub fn name(self) -> &'static str {
        match self {
            KernelFamily::Register => "register",
            KernelFamily::Workgroup => "workgroup",
        }
    }
}

/// One GPU device with its queue, pool, pipeline cache and recorder. Shared as `Arc<Gpu>`.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The device's limits (the adapter's own, or those it was opened with).
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// The forced kernel family (None: `auto`, variants chosen by measurement).
    pub(super) family: Mutex<Option<KernelFamily>>,
    pub(super) tuner: Mutex<super::tune::Tuner>,
    /// Per-device values the layers above keep, one per type ([`Gpu::with_state`]).
    pub(super) state: Mutex<HashMap<TypeId, Box<dyn Any + Send>>>,
    pub(super) pool: pool::Pool,
    pub(super) pipelines: Mutex<HashMap<PipelineKey, Arc<Cached>>>,
    pub(super) rec: Mutex<Recorder>,
    pub(super) uniform_buf: wgpu::Buffer,
    pub(super) errors: Arc<Mutex<Vec<String>>>,
    /// What `--validate` put in force (None: not asked for).
    pub(super) validation: Option<super::Validation>,
    pub(super) submissions: Mutex<u64>,
    /// Floating-point operations of the matrix products and convolutions launched so far.
    pub(super) flops: std::sync::atomic::AtomicU64,
    /// What the device runs, while a trace is on ([`Gpu::trace_start`]).
    pub(super) trace: Mutex<Option<super::trace::Trace>>,
    /// Dispatches, bytes bound per kernel family and recording time ([`Gpu::counters`]).
    pub(super) counters: Mutex<super::Counters>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({} / {:?})", self.info.name, self.info.backend)
    }
}

impl Gpu {
    /// Open the adapter chosen by `choice` (or the best one), with the limits it names (the
    /// adapter's own unless `choice.limits` says `webgpu`) and the kernel family it names (by the
    /// adapter's type when it names none, or `auto`).
    pub fn new(choice: &AdapterChoice) -> Result<Arc<Gpu>> {
        let family = KernelFamily::parse(choice.family.as_deref())?;
        let (adapter, validation) = super::adapter::choose_validated(choice)?;
        let limits = choice.limits_for(&adapter)?;
        let gpu = Self::open(adapter, limits, validation)?;
        if let Some(f) = family {
            gpu.set_family(f);
        }
        Ok(gpu)
    }

    /// Open the adapter chosen by the environment (`SYMCLONE_BACKEND`, `SYMCLONE_ADAPTER`,
    /// `SYMCLONE_LIMITS`).
    pub fn from_env() -> Result<Arc<Gpu>> {
        Self::new(&AdapterChoice::from_env())
    }

    /// Open a given adapter with its own limits.
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Arc<Gpu>> {
        let limits = adapter.limits();
        Self::from_adapter_with_limits(adapter, limits)
    }

    /// Open the adapter chosen by `choice` with the given limits (`wgpu::Limits::default()`:
    /// WebGPU's defaults, the least any conforming GPU offers; or the adapter's with some lowered).
    pub fn with_limits(choice: &AdapterChoice, limits: wgpu::Limits) -> Result<Arc<Gpu>> {
        let (adapter, validation) = super::adapter::choose_validated(choice)?;
        Self::open(adapter, limits, validation)
    }

    /// Open a given adapter with the given limits. Each must be within what the adapter offers
    /// (lower is allowed); the engine then keeps to them: sizes are checked, 1-D grids fold, and
    /// chunking follows the device's limits, not the adapter's.
    pub fn from_adapter_with_limits(
        adapter: wgpu::Adapter,
        limits: wgpu::Limits,
    ) -> Result<Arc<Gpu>> {
        Self::open(adapter, limits, None)
    }

    fn open(
        adapter: wgpu::Adapter,
        limits: wgpu::Limits,
        validation: Option<super::Validation>,
    ) -> Result<Arc<Gpu>> {
        let info = adapter.get_info();
        let mut short = Vec::new();
        limits.check_limits_with_fail_fn(&adapter.limits(), false, |name, want, has| {
            short.push(format!("{name} {want} (the adapter offers {has})"))
        });
        if !short.is_empty() {
            return Err(Error::Gpu(format!(
                "{} cannot be opened with the requested limits: {}",
                info.name,
                short.join(", ")
            )));
        }
        let wanted =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let desc = wgpu::DeviceDescriptor {
            label: Some("symclone"),
            required_features: features,
            required_limits: limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Gpu(format!("could not open {}: {e}", info.name)))?;
        // What the device was opened with, which every size check and grid keeps to.
        let limits = device.limits();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let uniform_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform arena"),
            size: UNIFORM_ARENA,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let rec = Recorder::new(&device);
        Ok(Arc::new(Gpu {
            device,
            queue,
            info,
            limits,
            features,
            family: Mutex::new(None),
            tuner: Mutex::default(),
            state: Mutex::default(),
            pool: pool::Pool::default(),
            pipelines: Mutex::default(),
            rec: Mutex::new(rec),
            uniform_buf,
            errors,
            validation,
            submissions: Mutex::new(0),
            flops: std::sync::atomic::AtomicU64::new(0),
            trace: Mutex::new(None),
            counters: Mutex::default(),
        }))
    }

    /// The kernel family in force: the forced one, else the adapter type's default.
    pub fn family(&self) -> KernelFamily {
        self.family_forced()
            .unwrap_or_else(|| self.default_family())
    }

    /// The forced kernel family (None: `auto`, variants chosen by measurement, see [`super::tune`]).
    pub fn family_forced(&self) -> Option<KernelFamily> {
        *self.family.lock().unwrap()
    }

    /// Whether this driver stops every loop of an invocation after [`super::LOOP_BUDGET`]-odd
    /// iterations in all (lavapipe and the other llvmpipe drivers; see `LOOP_BUDGET`).
    pub fn loop_limited(&self) -> bool {
        self.info.name.contains("llvmpipe") || self.info.driver.contains("llvmpipe")
    }

    /// An error, on a driver that stops long loops ([`Gpu::loop_limited`]), when one invocation
    /// of `kernel` would run more than [`super::LOOP_BUDGET`] loop iterations: there its results
    /// would be silently wrong. `what` says what is that long (made only for the error: launchers
    /// call this on every launch) and `fix` what to do instead.
    pub fn check_loops(
        &self,
        kernel: &str,
        iterations: usize,
        what: impl FnOnce() -> String,
        fix: &str,
    ) -> Result<()> {
        if iterations > super::LOOP_BUDGET && self.loop_limited() {
            return Err(Error::invalid(format!(
                "{kernel}: {} makes one invocation run {iterations} loop iterations, and {} stops every loop after 65,535 (its sums would be silently wrong): {fix}",
                what(),
                self.info.name
            )));
        }
        Ok(())
    }

    /// The family an adapter of this type starts from where nothing was measured: register
    /// kernels on CPU adapters (lavapipe), workgroup kernels elsewhere.
    pub fn default_family(&self) -> KernelFamily {
        match self.info.device_type {
            wgpu::DeviceType::Cpu => KernelFamily::Register,
            _ => KernelFamily::Workgroup,
        }
    }

    /// Force the kernel family (tests run both on one adapter; the benchmark compares them).
    pub fn set_family(&self, f: KernelFamily) {
        *self.family.lock().unwrap() = Some(f);
    }

    /// Let measurement choose the variants again (`--family auto`).
    pub fn set_family_auto(&self) {
        *self.family.lock().unwrap() = None;
    }

    /// Run `f` on this device's value of type `T`, made by `T::default()` on first use: a setting
    /// an op family keeps per device without the runtime knowing it (the register tile of the
    /// matrix product's generated kernel, say). `f` must not call `with_state` itself.
    pub fn with_state<T: Default + Send + 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut m = self.state.lock().unwrap();
        let v = m
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        f(v.downcast_mut::<T>()
            .expect("each value is keyed by its type"))
    }

    /// Whether kernels may use subgroup operations (wgpu's SUBGROUP feature, requested wherever the
    /// adapter offers it).
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Whether kernel times come from timestamp queries.
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// A one-line description of the adapter and the kernel family in use.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, {} {}; {} kernels)",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info,
            self.family_forced().map_or("auto (measured)", |f| f.name())
        )
    }

    /// Check a buffer size against the device's limits.
    pub fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        if bytes > self.limits.max_buffer_size {
            return Err(Error::BufferTooLarge {
                what: what.to_string(),
                requested: bytes,
                limit: self.limits.max_buffer_size,
                limit_name: "max_buffer_size",
                hint: String::new(),
            });
        }
        if bytes > self.limits.max_storage_buffer_binding_size {
            return Err(Error::BufferTooLarge {
                what: what.to_string(),
                requested: bytes,
                limit: self.limits.max_storage_buffer_binding_size,
                limit_name: "max_storage_buffer_binding_size",
                hint: String::new(),
            });
        }
        Ok(())
    }

    /// Check an f32 tensor of `shape` against the adapter's limits before anything is allocated
    /// for it (on the host or the GPU): the element count with checked arithmetic (an overflow is
    /// an error naming the shape, never a wrap), its bytes against the buffer limits. Returns the
    /// element count.
    pub fn check_shape(&self, what: &str, shape: &[usize]) -> Result<usize> {
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|n| n.checked_mul(4).is_some())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{what}: a tensor of shape {shape:?} has more elements than can be counted"
                ))
            })?;
        self.check_size(what, n as u64 * 4)?;
        Ok(n)
    }

    /// A pooled storage buffer of at least `bytes` bytes (contents undefined).
    pub fn alloc(self: &Arc<Self>, bytes: u64) -> Result<PooledBuffer> {
        self.check_size("a tensor", bytes)?;
        Ok(self.pool.take(self, bytes))
    }

    /// Buffer-pool statistics (hits, misses, bytes held, the high-water mark).
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Give the pool's free buffers back to the driver (between phases, so one phase's peak is not
    /// held through the next) and forget the bind groups that kept them alive; returns the bytes
    /// freed. Pending work is submitted first.
    pub fn trim(&self) -> Result<u64> {
        let mut rec = self.rec.lock().unwrap();
        self.submit_locked(&mut rec)?;
        rec.clear_bind_groups();
        drop(rec);
        Ok(self.pool.trim())
    }

    /// Start a new high-water mark of pool memory at what is held now (see [`PoolStats::peak_bytes`]).
    pub fn reset_peak(&self) {
        self.pool.reset_peak();
    }

    /// Count `n` floating-point operations (the launchers of matrix products and convolutions
    /// call this: 2 per multiply-add).
    pub fn count_flops(&self, n: u64) {
        self.flops
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Floating-point operations of the matrix products and convolutions launched so far (the
    /// work that dominates every phase; element-wise kernels are not counted).
    pub fn flops(&self) -> u64 {
        self.flops.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Submissions made so far.
    pub fn submissions(&self) -> u64 {
        *self.submissions.lock().unwrap()
    }

    /// What `--validate` put in force on this device (None: it was not asked for).
    pub fn validation(&self) -> Option<&super::Validation> {
        self.validation.as_ref()
    }

    /// The one line that says what checks this device runs under (None without `--validate`).
    pub fn validation_line(&self) -> Option<String> {
        self.validation
            .as_ref()
            .map(|v| v.describe(self.info.backend))
    }

    pub(super) fn take_errors(&self) -> Result<()> {
        self.take_errors_for(&[])
    }

    /// The errors wgpu reported since the last call and, under `--validate`, the validation
    /// layer's messages on this thread, as one error. `kernels` are the kernels that may have
    /// caused them (the one being recorded, or those of a submission): under `--validate` the
    /// error names the one the message names (by its label), else the only or the last one.
    pub(super) fn take_errors_for(&self, kernels: &[(&'static str, &'static str)]) -> Result<()> {
        let mut msgs = std::mem::take(&mut *self.errors.lock().unwrap());
        if self.validation.is_none() {
            return if msgs.is_empty() {
                Ok(())
            } else {
                Err(Error::Gpu(msgs.join("; ")))
            };
        }
        msgs.extend(
            super::validate::drain()
                .into_iter()
                .map(|m| format!("Khronos validation layer: {m}")),
        );
        let Some(first) = msgs.first() else {
            return Ok(());
        };
        let named = kernels
            .iter()
            .map(|(s, e)| format!("{s}::{e}"))
            .find(|k| msgs.iter().any(|m| names(m, k)));
        let kernel = match (named, kernels) {
            (Some(k), _) => k,
            (None, []) => "(none: outside any dispatch)".to_string(),
            (None, [(s, e)]) => format!("{s}::{e}"),
            (None, [.., (s, e)]) => {
                format!(
                    "{s}::{e} or one of the {} kernels submitted with it",
                    kernels.len() - 1
                )
            }
        };
        let more = match msgs.len() {
            1 => String::new(),
            n => format!(" (and {} more messages)", n - 1),
        };
        Err(Error::Validation {
            kernel,
            message: format!("{}{more}", super::validate::one_line(first)),
        })
    }
}

/// Whether `message` names `kernel` (`shader::entry`) as a whole word: a label in wgpu's message,
/// an object's or command buffer's name in the layer's.
fn names(message: &str, kernel: &str) -> bool {
    message.match_indices(kernel).any(|(i, _)| {
        let word = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
        let before = message[..i].chars().next_back();
        let after = message[i + kernel.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}
