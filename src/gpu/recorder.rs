//! The command recorder. The dispatches of a step go into one compute pass of one command encoder
//! (a pass per dispatch only while timestamps are taken: they are written at pass boundaries); their
//! parameters go into a uniform arena written once just before the submit and bound with a dynamic
//! offset, so a bind group is built once per (pipeline, buffers, sizes) and reused from a cache.
//! Uploads are copies from a staging belt recorded in order with the dispatches (no submit per
//! write); copies and read-backs end the open pass and share the encoder.

use super::pipelines::{Access, Cached, MAX_BINDINGS, MAX_CONSTS};
use super::timing::Timing;
use super::{specialize, Gpu, Shader, MAX_PENDING_DISPATCHES};
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};

/// Bytes of uniform parameters one dispatch can carry (each dispatch takes one aligned slot).
pub(super) const UNIFORM_SLOT: u64 = 256;
pub(super) const UNIFORM_ARENA: u64 = UNIFORM_SLOT * MAX_PENDING_DISPATCHES as u64;
/// Size of one staging-belt chunk; a larger upload is written by the queue after a flush.
const BELT_CHUNK: u64 = 1 << 20;
/// Bind groups kept before the cache is emptied (each holds its buffers alive).
const MAX_BIND_GROUPS: usize = 4096;

/// Something a kernel can bind: a buffer and how many of its bytes hold data. The binding covers
/// exactly those bytes, never the rest of a pooled buffer.
pub trait Bindable {
    /// The buffer.
    fn buffer(&self) -> &wgpu::Buffer;
    /// Bytes that hold data, from offset 0 (a multiple of 4, at least 4).
    fn bytes(&self) -> u64;
    /// What to call it in an error message (a shape, say).
    fn describe(&self) -> String;
}

impl<T: Bindable + ?Sized> Bindable for &T {
    fn buffer(&self) -> &wgpu::Buffer {
        (**self).buffer()
    }
    fn bytes(&self) -> u64 {
        (**self).bytes()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// A bind group's identity: the pipeline and each storage binding's buffer and size.
#[derive(Clone, PartialEq, Eq, Hash)]
struct BindKey {
    pipeline: u64,
    buffers: [Option<(wgpu::Buffer, u64)>; MAX_BINDINGS],
}

pub(super) struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    dispatches: u32,
    uniforms: Vec<u8>,
    pub(super) timing: Option<Timing>,
    belt: wgpu::util::StagingBelt,
    belt_used: bool,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    /// The kernels whose 1-D grid has been folded into 2-D (shader, entry).
    folded: HashSet<(&'static str, &'static str)>,
    /// Under `--validate`: the kernels recorded since the last submission, in order (what a
    /// message raised at the submission may name).
    pending: Vec<(&'static str, &'static str)>,
}

impl Recorder {
    pub(super) fn new(device: &wgpu::Device) -> Recorder {
        Recorder {
            encoder: None,
            pass: None,
            dispatches: 0,
            uniforms: Vec::with_capacity(UNIFORM_ARENA as usize),
            timing: None,
            belt: wgpu::util::StagingBelt::new(device.clone(), BELT_CHUNK),
            belt_used: false,
            bind_groups: HashMap::new(),
            folded: HashSet::new(),
            pending: Vec::new(),
        }
    }

    /// The pending encoder, with any open compute pass ended (for copies).
    fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("steps"),
            })
        })
    }

    /// Forget every cached bind group (they hold their buffers alive).
    pub(super) fn clear_bind_groups(&mut self) {
        self.bind_groups.clear();
    }
}

impl Gpu {
    /// Write bytes into a buffer, in order with the dispatches recorded so far and after it: small
    /// writes go through the staging belt into the pending encoder; a write larger than a belt
    /// chunk (or not 4-byte aligned) submits the pending work first and is written by the queue.
    pub fn write(&self, buf: &wgpu::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as u64;
        self.trace_write(buf, offset, data)?;
        let mut rec = self.rec.lock().unwrap();
        if len <= BELT_CHUNK && len.is_multiple_of(4) && offset.is_multiple_of(4) {
            let size = wgpu::BufferSize::new(len).expect("non-empty write");
            rec.encoder(&self.device);
            let Recorder { encoder, belt, .. } = &mut *rec;
            let enc = encoder.as_mut().expect("pending encoder");
            belt.write_buffer(enc, buf, offset, size)
                .copy_from_slice(data);
            rec.belt_used = true;
            return Ok(());
        }
        self.submit_locked(&mut rec)?;
        self.queue.write_buffer(buf, offset, data);
        Ok(())
    }

    pub(super) fn submit_locked(&self, rec: &mut Recorder) -> Result<()> {
        rec.pass = None;
        let Some(mut encoder) = rec.encoder.take() else {
            return Ok(());
        };
        if !rec.uniforms.is_empty() {
            self.queue.write_buffer(&self.uniform_buf, 0, &rec.uniforms);
        }
        let read_timing = rec.timing.as_ref().is_some_and(|t| t.resolve(&mut encoder));
        let belt_used = std::mem::take(&mut rec.belt_used);
        if belt_used {
            rec.belt.finish();
        }
        let submitted = std::time::Instant::now();
        self.queue.submit([encoder.finish()]);
        self.count_submission(submitted);
        if belt_used {
            rec.belt.recall();
        }
        *self.submissions.lock().unwrap() += 1;
        rec.uniforms.clear();
        rec.dispatches = 0;
        let pending = std::mem::take(&mut rec.pending);
        if read_timing {
            let period = self.queue.get_timestamp_period() as f64;
            let t = rec.timing.as_mut().expect("timing state");
            t.collect(&self.device, period, read_mapped)?;
        }
        self.take_errors_for(&pending)
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
        self.trace_copy(src, dst, bytes)?;
        let mut rec = self.rec.lock().unwrap();
        rec.encoder(&self.device)
            .copy_buffer_to_buffer(src, 0, dst, 0, bytes);
        Ok(())
    }

    /// Read `bytes` bytes of a buffer back to the host (submits pending work first).
    pub fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let out = self.read_untraced(buf, offset, bytes)?;
        self.trace_read(buf, offset, &out)?;
        Ok(out)
    }

    /// [`Gpu::read_bytes`], leaving the trace out of it (how the trace reads a buffer it meets).
    pub(super) fn read_untraced(
        &self,
        buf: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<u8>> {
        let mut rec = self.rec.lock().unwrap();
        let padded = bytes.div_ceil(4) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: padded.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let enc = rec.encoder(&self.device);
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
        let (v, t) = self.timed_kernels(f)?;
        Ok(match t {
            Some(t) => (v, Some(t.total_ns * 1e-9), t.kernels),
            None => (v, None, 0),
        })
    }

    /// Run `f` with every dispatch timed, and return the time of each kernel (shader::entry,
    /// seconds, dispatches), slowest first; None where the adapter has no timestamps.
    pub fn profile<T>(
        &self,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<(T, Option<super::timing::KernelTimes>)> {
        let (v, t) = self.timed_kernels(f)?;
        let rows = t.map(|t| {
            let mut rows: super::timing::KernelTimes = t
                .by_kernel
                .into_iter()
                .map(|((s, e), (ns, n))| (format!("{s}::{e}"), ns * 1e-9, n))
                .collect();
            rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            rows
        });
        Ok((v, rows))
    }

    fn timed_kernels<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<(T, Option<Timing>)> {
        if !self.has_timestamps() {
            let v = f()?;
            self.sync()?;
            return Ok((v, None));
        }
        {
            let mut rec = self.rec.lock().unwrap();
            self.submit_locked(&mut rec)?;
            rec.timing = Some(Timing::new(&self.device));
        }
        let result = f();
        let mut rec = self.rec.lock().unwrap();
        let flushed = self.submit_locked(&mut rec);
        let t = rec.timing.take().expect("timing state");
        drop(rec);
        let v = result?;
        flushed?;
        Ok((v, Some(t)))
    }

    /// The kernels (`shader::entry`, sorted) whose 1-D grid has been folded into 2-D on this device
    /// because it had more workgroups than `max_compute_workgroups_per_dimension`: what a test
    /// of the fold checks it reached.
    pub fn folded_kernels(&self) -> Vec<String> {
        let rec = self.rec.lock().unwrap();
        let mut v: Vec<String> = rec
            .folded
            .iter()
            .map(|(s, e)| format!("{s}::{e}"))
            .collect();
        v.sort_unstable();
        v
    }

    /// Start describing one kernel launch.
    pub fn launch<'a>(&'a self, shader: &'static Shader, entry: &'static str) -> Launch<'a> {
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
        let start = self.record_start();
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::invalid(format!(
                "{}::{} needs {groups:?} workgroups, over the device's {max} per dimension \
                 (max_compute_workgroups_per_dimension)",
                l.shader.name, l.entry
            )));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        if l.params.len() as u64 > UNIFORM_SLOT {
            return Err(Error::invalid("kernel parameters over 256 bytes"));
        }
        if l.consts.len() > MAX_CONSTS || l.bufs.len() > MAX_BINDINGS {
            return Err(Error::invalid(format!(
                "{}::{} sets {} constants and {} bindings (at most {MAX_CONSTS} and {MAX_BINDINGS})",
                l.shader.name,
                l.entry,
                l.consts.len(),
                l.bufs.len()
            )));
        }
        let storage = self.limits.max_storage_buffers_per_shader_stage;
        if l.bufs.len() > storage as usize {
            return Err(Error::invalid(format!(
                "{}::{} binds {} storage buffers, over the device's {storage} \
                 (max_storage_buffers_per_shader_stage)",
                l.shader.name,
                l.entry,
                l.bufs.len()
            )));
        }
        let limit = self.limits.max_storage_buffer_binding_size;
        for (i, b) in l.bufs.iter().enumerate() {
            if b.bytes > limit {
                return Err(Error::BufferTooLarge {
                    what: format!(
                        "{} bound to {}::{} (binding {})",
                        b.what(),
                        l.shader.name,
                        l.entry,
                        i + 1
                    ),
                    requested: b.bytes,
                    limit,
                    limit_name: "max_storage_buffer_binding_size",
                    hint: String::new(),
                });
            }
        }
        let access: [Access; MAX_BINDINGS] =
            std::array::from_fn(|i| l.bufs.get(i).map_or(Access::Read, |b| b.access));
        let cached = self.pipeline(l.shader, l.entry, &l.consts, &access[..l.bufs.len()])?;
        if self.tracing() {
            let bindings: Vec<_> = l
                .bufs
                .iter()
                .map(|b| (b.buf, b.bytes, b.access == Access::ReadWrite))
                .collect();
            let source = || {
                specialize(l.shader.src, &l.consts)
                    .map(|s| super::shader::standard_wgsl(&s).into_owned())
            };
            let kernel = (
                l.shader.name,
                l.entry,
                &source as &dyn Fn() -> Result<String>,
            );
            self.trace_dispatch(kernel, &bindings, &l.params, groups)?;
        }
        let mut rec = self.rec.lock().unwrap();
        let slot = (self.limits.min_uniform_buffer_offset_alignment as u64).max(UNIFORM_SLOT);
        if rec.dispatches >= MAX_PENDING_DISPATCHES
            || rec.uniforms.len() as u64 + slot > UNIFORM_ARENA
        {
            self.submit_locked(&mut rec)?;
        }
        let offset = rec.uniforms.len() as u64;
        rec.uniforms.extend_from_slice(&l.params);
        rec.uniforms.resize((offset + slot) as usize, 0);
        let bg = self.bind_group(&mut rec, &cached, &l.bufs);
        let kernel = (l.shader.name, l.entry);
        let validate = self.validation.is_some();
        let Recorder {
            encoder,
            pass,
            timing,
            dispatches,
            pending,
            ..
        } = &mut *rec;
        // Under --validate each dispatch has a pass of its own, labelled with the kernel (on
        // Vulkan a debug label around the dispatch and the name of its command buffer).
        if timing.is_some() || validate {
            *pass = None;
        }
        let label = validate.then(|| format!("{}::{}", kernel.0, kernel.1));
        if pass.is_none() {
            let enc = encoder.get_or_insert_with(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("steps"),
                    })
            });
            let ts = timing
                .as_mut()
                .map(|t| t.pass_writes((l.shader.name, l.entry)));
            *pass = Some(
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: label.as_deref(),
                    timestamp_writes: ts,
                })
                .forget_lifetime(),
            );
        }
        let p = pass.as_mut().expect("open compute pass");
        p.set_pipeline(&cached.pipeline);
        p.set_bind_group(0, &bg, &[offset as u32]);
        p.dispatch_workgroups(groups[0], groups[1], groups[2]);
        *dispatches += 1;
        let bindings = l.bufs.iter().map(|b| (b.bytes, b.access));
        self.count_dispatch(l.shader, bindings, start);
        if validate {
            // Under --validate each dispatch is submitted on its own: wgpu checks a pass when
            // its encoder is finished, and the layer checks a command buffer when it is recorded
            // and submitted, so what either says then is about this kernel.
            pending.push(kernel);
            self.submit_locked(&mut rec)?;
        }
        Ok(())
    }

    /// The bind group of `cached` over `bufs` (and the uniform arena at a dynamic offset), from
    /// the cache or built and cached.
    fn bind_group(
        &self,
        rec: &mut Recorder,
        cached: &Cached,
        bufs: &[Binding<'_>],
    ) -> wgpu::BindGroup {
        let key = BindKey {
            pipeline: cached.id,
            buffers: std::array::from_fn(|i| bufs.get(i).map(|b| (b.buf.clone(), b.bytes))),
        };
        if let Some(bg) = rec.bind_groups.get(&key) {
            return bg.clone();
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.uniform_buf,
                offset: 0,
                size: wgpu::BufferSize::new(UNIFORM_SLOT),
            }),
        }];
        for (i, b) in bufs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b.buf,
                    offset: 0,
                    size: wgpu::BufferSize::new(b.bytes),
                }),
            });
        }
        let label = format!("{}::{}", cached.shader, cached.entry);
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&label),
            layout: &cached.layout,
            entries: &entries,
        });
        if rec.bind_groups.len() >= MAX_BIND_GROUPS {
            rec.bind_groups.clear();
        }
        rec.bind_groups.insert(key, bg.clone());
        bg
    }
}

pub(super) fn read_mapped(
    device: &wgpu::Device,
    buf: &wgpu::Buffer,
    bytes: u64,
) -> Result<Vec<u8>> {
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

/// One storage binding of a launch.
struct Binding<'a> {
    buf: &'a wgpu::Buffer,
    bytes: u64,
    access: Access,
    describe: Box<dyn Fn() -> String + 'a>,
}

impl Binding<'_> {
    fn what(&self) -> String {
        (self.describe)()
    }
}

/// A kernel launch being described: constants, parameters, buffers, then `dispatch`.
pub struct Launch<'a> {
    gpu: &'a Gpu,
    shader: &'static Shader,
    entry: &'static str,
    consts: Vec<(&'static str, u32)>,
    params: Vec<u8>,
    bufs: Vec<Binding<'a>>,
}

impl<'a> Launch<'a> {
    /// Set a shader `const NAME: u32` (the source is specialised; the pipeline is cached per value).
    pub fn constant(mut self, name: &'static str, v: u32) -> Self {
        self.consts.push((name, v));
        self
    }
    /// The kernel's uniform block (binding 0): the struct that mirrors the WGSL's.
    pub fn params<T: super::params::ShaderParams>(mut self, p: &T) -> Self {
        self.params.extend_from_slice(bytemuck::bytes_of(p));
        self
    }
    fn bind<B: Bindable + 'a>(mut self, b: &'a B, access: Access) -> Self {
        self.bufs.push(Binding {
            buf: b.buffer(),
            bytes: b.bytes(),
            access,
            describe: Box::new(move || b.describe()),
        });
        self
    }
    /// Bind the next storage buffer read-only (bindings 1, 2, ... in call order).
    pub fn read<B: Bindable + 'a>(self, b: &'a B) -> Self {
        self.bind(b, Access::Read)
    }
    /// Bind the next storage buffer read-write.
    pub fn write<B: Bindable + 'a>(self, b: &'a B) -> Self {
        self.bind(b, Access::ReadWrite)
    }
    /// Record the dispatch.
    pub fn dispatch(self, groups: [u32; 3]) -> Result<()> {
        let gpu = self.gpu;
        gpu.record(self, groups)
    }
    /// Record a 1-D dispatch over `n` items with `wg` threads per workgroup, folded into 2-D when
    /// it exceeds the per-dimension limit (kernels index with `idx()` of `shaders/common.wgsl`).
    pub fn dispatch_1d(self, n: usize, wg: u32) -> Result<()> {
        let groups = grid_1d(n, wg, self.gpu.limits.max_compute_workgroups_per_dimension)?;
        if groups[1] > 1 {
            let mut rec = self.gpu.rec.lock().unwrap();
            rec.folded.insert((self.shader.name, self.entry));
        }
        self.dispatch(groups)
    }
}

/// Workgroups for `n` items at `wg` per group, as (x, y, 1) with x ≤ max; an error when even the
/// folded grid is over the limit.
pub fn grid_1d(n: usize, wg: u32, max: u32) -> Result<[u32; 3]> {
    let groups = (n as u64).div_ceil(wg as u64);
    if groups <= max as u64 {
        return Ok([groups as u32, 1, 1]);
    }
    let x = max.min(32768);
    let y = groups.div_ceil(x as u64);
    u32::try_from(y)
        .ok()
        .filter(|&y| y <= max)
        .map(|y| [x, y, 1])
        .ok_or_else(|| {
            Error::invalid(format!(
                "{n} work items at {wg} per workgroup need {groups} workgroups, over the device's \
                 {max} × {max} (max_compute_workgroups_per_dimension {max}, folded)"
            ))
        })
}
