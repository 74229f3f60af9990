//! The GPU runtime: device and limits, buffer pool, pipeline cache, command recorder, timers.
//!
//! Dispatches are recorded into one command encoder and submitted only when the host reads a buffer,
//! when `flush` is called, or every [`MAX_PENDING_DISPATCHES`] dispatches. Kernel parameters go into a
//! uniform arena that is written once per submission, just before it, so `queue.write_buffer` never
//! races a dispatch recorded earlier.

pub mod adapter;
mod pool;
pub mod shader;

pub use adapter::{AdapterChoice, AdapterSummary};
pub use pool::{PoolStats, PooledBuffer};
pub use shader::{specialize, Shader};

use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Submit after this many recorded dispatches even if nobody reads.
pub const MAX_PENDING_DISPATCHES: u32 = 256;
/// Bytes of uniform parameters one submission can carry (each dispatch takes one aligned slot).
const UNIFORM_SLOT: u64 = 256;
const UNIFORM_ARENA: u64 = UNIFORM_SLOT * MAX_PENDING_DISPATCHES as u64;
/// Timestamp queries per submission (two per dispatch).
const MAX_QUERIES: u32 = 2 * MAX_PENDING_DISPATCHES;

/// Which matrix-product kernel family suits the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum KernelFamily {
    /// Register tiling with vec4 loads and no workgroup memory: what CPU drivers (lavapipe) run well.
    Register,
    /// Workgroup-shared tiles: what real GPUs run well.
    Workgroup,
}

/// How a storage buffer is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

struct Cached {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

struct Timing {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    next: u32,
    total_ns: f64,
    kernels: u64,
}

struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    dispatches: u32,
    uniforms: Vec<u8>,
    timing: Option<Timing>,
}

/// One GPU device with its queue, pool, pipeline cache and recorder. Shared as `Arc<Gpu>`.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    family: Mutex<KernelFamily>,
    reg_tile: Mutex<(u32, u32)>,
    pool: pool::Pool,
    pipelines: Mutex<HashMap<String, Arc<Cached>>>,
    rec: Mutex<Recorder>,
    uniform_buf: wgpu::Buffer,
    errors: Arc<Mutex<Vec<String>>>,
    submissions: Mutex<u64>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({} / {:?})", self.info.name, self.info.backend)
    }
}

impl Gpu {
    /// Open the adapter chosen by `choice` (or the best one), with the adapter's own limits.
    pub fn new(choice: &AdapterChoice) -> Result<Arc<Gpu>> {
        let adapter = adapter::choose(choice)?;
        Self::from_adapter(adapter)
    }

    /// Open the adapter chosen by the environment (`SYMCLONE_BACKEND`, `SYMCLONE_ADAPTER`).
    pub fn from_env() -> Result<Arc<Gpu>> {
        Self::new(&AdapterChoice::from_env())
    }

    /// Open a given adapter.
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Arc<Gpu>> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16;
        let features = adapter.features() & wanted;
        let desc = wgpu::DeviceDescriptor {
            label: Some("symclone"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Gpu(format!("could not open {}: {e}", info.name)))?;
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
        let family = match info.device_type {
            wgpu::DeviceType::Cpu => KernelFamily::Register,
            _ => KernelFamily::Workgroup,
        };
        Ok(Arc::new(Gpu {
            device,
            queue,
            info,
            limits,
            features,
            family: Mutex::new(family),
            reg_tile: Mutex::new(crate::ops::matmul::DEFAULT_REG_TILE),
            pool: pool::Pool::default(),
            pipelines: Mutex::default(),
            rec: Mutex::new(Recorder {
                encoder: None,
                dispatches: 0,
                uniforms: Vec::with_capacity(UNIFORM_ARENA as usize),
                timing: None,
            }),
            uniform_buf,
            errors,
            submissions: Mutex::new(0),
        }))
    }

    /// The kernel family used for matrix products on this adapter.
    pub fn family(&self) -> KernelFamily {
        *self.family.lock().unwrap()
    }

    /// Override the kernel family (tests run both on one adapter; the benchmark compares them).
    pub fn set_family(&self, f: KernelFamily) {
        *self.family.lock().unwrap() = f;
    }

    /// The register tile (rows, vec4 columns) of the register matrix-product kernel.
    pub fn reg_tile(&self) -> (u32, u32) {
        *self.reg_tile.lock().unwrap()
    }

    /// Choose the register tile (one of `ops::matmul::REG_TILES`).
    pub fn set_reg_tile(&self, t: (u32, u32)) -> Result<()> {
        if !crate::ops::matmul::REG_TILES.contains(&t) {
            return Err(Error::invalid(format!(
                "register tile {t:?} is not one of {:?}",
                crate::ops::matmul::REG_TILES
            )));
        }
        *self.reg_tile.lock().unwrap() = t;
        Ok(())
    }

    /// Apply a register tile given as `ROWSxCOLS` (e.g. `8x2`) and a kernel family (`register` or
    /// `workgroup`), as the benchmark's `--reg-tile` and `--family` name them.
    pub fn set_kernels(&self, reg_tile: Option<&str>, family: Option<&str>) -> Result<()> {
        if let Some(t) = reg_tile {
            let (r, c) = t
                .split_once('x')
                .and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)))
                .ok_or_else(|| {
                    Error::invalid(format!("--reg-tile '{t}': expected ROWSxCOLS, e.g. 8x2"))
                })?;
            self.set_reg_tile((r, c))?;
        }
        match family {
            None => {}
            Some("register") => self.set_family(KernelFamily::Register),
            Some("workgroup") => self.set_family(KernelFamily::Workgroup),
            Some(o) => {
                return Err(Error::invalid(format!(
                    "--family '{o}': use register or workgroup"
                )))
            }
        }
        Ok(())
    }

    /// Whether kernel times come from timestamp queries.
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// A one-line description of the adapter.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, {} {})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info
        )
    }

    /// Check a buffer size against the adapter's limits.
    pub fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        if bytes > self.limits.max_buffer_size {
            return Err(Error::BufferTooLarge {
                what: what.to_string(),
                requested: bytes,
                limit: self.limits.max_buffer_size,
                limit_name: "max_buffer_size",
            });
        }
        if bytes > self.limits.max_storage_buffer_binding_size {
            return Err(Error::BufferTooLarge {
                what: what.to_string(),
                requested: bytes,
                limit: self.limits.max_storage_buffer_binding_size,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        Ok(())
    }

    /// A pooled storage buffer of at least `bytes` bytes (contents undefined).
    pub fn alloc(self: &Arc<Self>, bytes: u64) -> Result<PooledBuffer> {
        self.check_size("a tensor", bytes)?;
        Ok(self.pool.take(self, bytes))
    }

    /// Buffer-pool statistics (hits, misses, bytes held).
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Submissions made so far.
    pub fn submissions(&self) -> u64 {
        *self.submissions.lock().unwrap()
    }

    /// Write bytes into a buffer. Pending dispatches are submitted first, so the write cannot be
    /// seen by a dispatch recorded before it.
    pub fn write(&self, buf: &wgpu::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        self.flush()?;
        if !data.is_empty() {
            self.queue.write_buffer(buf, offset, data);
        }
        Ok(())
    }

    fn take_errors(&self) -> Result<()> {
        let mut e = self.errors.lock().unwrap();
        if e.is_empty() {
            Ok(())
        } else {
            let msg = e.join("; ");
            e.clear();
            Err(Error::Gpu(msg))
        }
    }

    fn submit_locked(&self, rec: &mut Recorder) -> Result<()> {
        let Some(mut encoder) = rec.encoder.take() else {
            return Ok(());
        };
        if !rec.uniforms.is_empty() {
            self.queue.write_buffer(&self.uniform_buf, 0, &rec.uniforms);
        }
        let mut read_timing = false;
        if let Some(t) = &rec.timing {
            if t.next > 0 {
                encoder.resolve_query_set(&t.query_set, 0..t.next, &t.resolve, 0);
                encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.read, 0, t.next as u64 * 8);
                read_timing = true;
            }
        }
        self.queue.submit([encoder.finish()]);
        *self.submissions.lock().unwrap() += 1;
        rec.uniforms.clear();
        rec.dispatches = 0;
        if read_timing {
            let t = rec.timing.as_mut().unwrap();
            let bytes = read_mapped(&self.device, &t.read, t.next as u64 * 8)?;
            let ticks: &[u64] = bytemuck::cast_slice(&bytes);
            let period = self.queue.get_timestamp_period() as f64;
            for pair in ticks.chunks_exact(2) {
                t.total_ns += pair[1].saturating_sub(pair[0]) as f64 * period;
                t.kernels += 1;
            }
            t.next = 0;
        }
        self.take_errors()
    }

    /// Submit everything recorded so far.
    pub fn flush(&self) -> Result<()> {
        let mut rec = self.rec.lock().unwrap();
        self.submit_locked(&mut rec)
    }

    /// Submit and wait until the GPU is idle.
    pub fn sync(&self) -> Result<()> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        self.take_errors()
    }

    /// Record a buffer-to-buffer copy in the pending encoder.
    pub fn copy_buffer(&self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let mut rec = self.rec.lock().unwrap();
        let enc = rec.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("steps"),
                })
        });
        enc.copy_buffer_to_buffer(src, 0, dst, 0, bytes);
        Ok(())
    }

    /// Read `bytes` bytes of a buffer back to the host (submits pending work first).
    pub fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let mut rec = self.rec.lock().unwrap();
        let padded = bytes.div_ceil(4) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: padded.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let enc = rec.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("steps"),
                })
        });
        if padded > 0 {
            enc.copy_buffer_to_buffer(buf, offset, &staging, 0, padded);
        }
        self.submit_locked(&mut rec)?;
        drop(rec);
        let mut out = read_mapped(&self.device, &staging, padded)?;
        out.truncate(bytes as usize);
        self.take_errors()?;
        Ok(out)
    }

    /// Run `f` with every dispatch timed by timestamp queries; returns `f`'s result, the summed
    /// kernel time in seconds (None where the adapter has no timestamps) and the kernel count.
    pub fn timed<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<(T, Option<f64>, u64)> {
        if !self.has_timestamps() {
            let v = f()?;
            self.sync()?;
            return Ok((v, None, 0));
        }
        {
            let mut rec = self.rec.lock().unwrap();
            self.submit_locked(&mut rec)?;
            let query_set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: MAX_QUERIES,
            });
            let mk = |usage| {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps"),
                    size: MAX_QUERIES as u64 * 8,
                    usage,
                    mapped_at_creation: false,
                })
            };
            rec.timing = Some(Timing {
                query_set,
                resolve: mk(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
                read: mk(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
                next: 0,
                total_ns: 0.0,
                kernels: 0,
            });
        }
        let result = f();
        let mut rec = self.rec.lock().unwrap();
        let flushed = self.submit_locked(&mut rec);
        let t = rec.timing.take().expect("timing state");
        drop(rec);
        let v = result?;
        flushed?;
        Ok((v, Some(t.total_ns * 1e-9), t.kernels))
    }

    /// The cached pipeline for (shader, entry, constants, binding layout).
    fn pipeline(
        &self,
        shader: &Shader,
        entry: &str,
        consts: &[(&str, u32)],
        access: &[Access],
    ) -> Result<Arc<Cached>> {
        let key = format!("{}|{entry}|{consts:?}|{access:?}", shader.name);
        if let Some(c) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(c.clone());
        }
        let src = specialize(shader.src, consts)?;
        shader::validate(shader.name, &src)?;
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, a) in access.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *a == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(shader.name),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(shader.name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        self.take_errors()
            .map_err(|e| Error::Gpu(format!("building {}::{entry}: {e}", shader.name)))?;
        let c = Arc::new(Cached { pipeline, layout });
        self.pipelines.lock().unwrap().insert(key, c.clone());
        Ok(c)
    }

    /// Start describing one kernel launch.
    pub fn launch<'a>(&'a self, shader: &'a Shader, entry: &'a str) -> Launch<'a> {
        Launch {
            gpu: self,
            shader,
            entry,
            consts: Vec::new(),
            params: Vec::new(),
            bufs: Vec::new(),
        }
    }

    fn record(&self, l: Launch<'_>, groups: [u32; 3]) -> Result<()> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::invalid(format!(
                "{}::{} needs {groups:?} workgroups, over the adapter's {max} per dimension",
                l.shader.name, l.entry
            )));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        if l.params.len() as u64 > UNIFORM_SLOT {
            return Err(Error::invalid("kernel parameters over 256 bytes"));
        }
        let access: Vec<Access> = l.bufs.iter().map(|b| b.1).collect();
        let cached = self.pipeline(l.shader, l.entry, &l.consts, &access)?;
        let mut rec = self.rec.lock().unwrap();
        let slot = (self.limits.min_uniform_buffer_offset_alignment as u64).max(UNIFORM_SLOT);
        if rec.dispatches >= MAX_PENDING_DISPATCHES
            || rec.uniforms.len() as u64 + slot > UNIFORM_ARENA
        {
            self.submit_locked(&mut rec)?;
        }
        let offset = rec.uniforms.len() as u64;
        let mut p = l.params.clone();
        p.resize(p.len().max(16).div_ceil(16) * 16, 0);
        let psize = p.len() as u64;
        rec.uniforms.extend_from_slice(&p);
        rec.uniforms.resize((offset + slot) as usize, 0);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.uniform_buf,
                offset,
                size: wgpu::BufferSize::new(psize),
            }),
        }];
        for (i, (buf, _)) in l.bufs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: buf.as_entire_binding(),
            });
        }
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &cached.layout,
            entries: &entries,
        });
        let Recorder {
            encoder,
            timing,
            dispatches,
            ..
        } = &mut *rec;
        let enc = encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("steps"),
                })
        });
        let ts = timing.as_mut().map(|t| {
            let i = t.next;
            t.next += 2;
            wgpu::ComputePassTimestampWrites {
                query_set: &t.query_set,
                beginning_of_pass_write_index: Some(i),
                end_of_pass_write_index: Some(i + 1),
            }
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: ts,
            });
            pass.set_pipeline(&cached.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        *dispatches += 1;
        Ok(())
    }
}

fn read_mapped(device: &wgpu::Device, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    buf.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("waiting for a read-back: {e}")))?;
    rx.recv()
        .map_err(|_| Error::Gpu("read-back callback dropped".into()))?
        .map_err(|e| Error::Gpu(format!("mapping a read-back buffer: {e}")))?;
    let out = buf
        .get_mapped_range(0..bytes)
        .map_err(|e| Error::Gpu(format!("mapping a read-back buffer: {e}")))?
        .to_vec();
    buf.unmap();
    Ok(out)
}

/// A kernel launch being described: constants, parameters, buffers, then `dispatch`.
pub struct Launch<'a> {
    gpu: &'a Gpu,
    shader: &'a Shader,
    entry: &'a str,
    consts: Vec<(&'a str, u32)>,
    params: Vec<u8>,
    bufs: Vec<(&'a wgpu::Buffer, Access)>,
}

impl<'a> Launch<'a> {
    /// Set a shader `const NAME: u32` (the source is specialised; the pipeline is cached per value).
    pub fn constant(mut self, name: &'a str, v: u32) -> Self {
        self.consts.push((name, v));
        self
    }
    /// Append 32-bit parameters to the uniform block (binding 0).
    pub fn params<T: bytemuck::Pod>(mut self, p: &[T]) -> Self {
        self.params.extend_from_slice(bytemuck::cast_slice(p));
        self
    }
    /// Bind the next storage buffer read-only (bindings 1, 2, ... in call order).
    pub fn read(mut self, b: &'a wgpu::Buffer) -> Self {
        self.bufs.push((b, Access::Read));
        self
    }
    /// Bind the next storage buffer read-write.
    pub fn write(mut self, b: &'a wgpu::Buffer) -> Self {
        self.bufs.push((b, Access::ReadWrite));
        self
    }
    /// Record the dispatch.
    pub fn dispatch(self, groups: [u32; 3]) -> Result<()> {
        let gpu = self.gpu;
        gpu.record(self, groups)
    }
    /// Record a 1-D dispatch over `n` items with `wg` threads per workgroup, folded into 2-D when
    /// it exceeds the per-dimension limit (kernels index with [`linear_index`](shader) helpers).
    pub fn dispatch_1d(self, n: usize, wg: u32) -> Result<()> {
        let groups = grid_1d(n, wg, self.gpu.limits.max_compute_workgroups_per_dimension);
        self.dispatch(groups)
    }
}

/// Workgroups for `n` items at `wg` per group, as (x, y, 1) with x ≤ max.
pub fn grid_1d(n: usize, wg: u32, max: u32) -> [u32; 3] {
    let groups = (n as u64).div_ceil(wg as u64);
    if groups <= max as u64 {
        [groups as u32, 1, 1]
    } else {
        let x = max.min(32768);
        [x, groups.div_ceil(x as u64) as u32, 1]
    }
}
