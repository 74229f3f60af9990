//! The command recorder: dispatches of a step go into one encoder, their parameters into a uniform
//! arena written once just before the submit; read-backs and copies share the encoder.

use super::timing::Timing;
use super::{Gpu, Shader, MAX_PENDING_DISPATCHES};
use crate::{Error, Result};

/// Bytes of uniform parameters one submission can carry (each dispatch takes one aligned slot).
const UNIFORM_SLOT: u64 = 256;
pub(super) const UNIFORM_ARENA: u64 = UNIFORM_SLOT * MAX_PENDING_DISPATCHES as u64;

/// How a storage buffer is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

pub(super) struct Recorder {
    pub(super) encoder: Option<wgpu::CommandEncoder>,
    pub(super) dispatches: u32,
    pub(super) uniforms: Vec<u8>,
    pub(super) timing: Option<Timing>,
}

impl Gpu {
    /// Write bytes into a buffer. Pending dispatches are submitted first, so the write cannot be
    /// seen by a dispatch recorded before it.
    pub fn write(&self, buf: &wgpu::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        self.flush()?;
        if !data.is_empty() {
            self.queue.write_buffer(buf, offset, data);
        }
        Ok(())
    }

    pub(super) fn submit_locked(&self, rec: &mut Recorder) -> Result<()> {
        let Some(mut encoder) = rec.encoder.take() else {
            return Ok(());
        };
        if !rec.uniforms.is_empty() {
            self.queue.write_buffer(&self.uniform_buf, 0, &rec.uniforms);
        }
        let read_timing = rec.timing.as_ref().is_some_and(|t| t.resolve(&mut encoder));
        self.queue.submit([encoder.finish()]);
        *self.submissions.lock().unwrap() += 1;
        rec.uniforms.clear();
        rec.dispatches = 0;
        if read_timing {
            let period = self.queue.get_timestamp_period() as f64;
            let t = rec.timing.as_mut().expect("timing state");
            t.collect(&self.device, period, read_mapped)?;
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
            rec.timing = Some(Timing::new(&self.device));
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
        let ts = timing.as_mut().map(|t| t.pass_writes());
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
