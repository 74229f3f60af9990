//! A trace of what a device runs, in order: each buffer's contents when it is first used, writes,
//! copies, dispatches (the final WGSL of each kernel, its storage bindings, its uniform parameters
//! and its grid) and read-backs with the bytes they returned. Enough to replay the same work on
//! another WebGPU implementation and compare what it reads back (`check --export`, replayed in a
//! browser). Off unless [`Gpu::trace_start`] turns it on; the hot path then pays one branch.

use super::Gpu;
use crate::Result;
use serde::Serialize;
use std::collections::HashMap;

/// A kernel as the trace's dispatches name it: its final source, after constants are specialised.
#[derive(Clone, Debug, Serialize)]
pub struct TracedKernel {
    /// `shader::entry`.
    pub name: String,
    pub entry: String,
    pub wgsl: String,
}

/// A buffer the traced work used: its size, and its contents when the trace first met it (None:
/// all zero).
#[derive(Clone, Debug, Serialize)]
pub struct TracedBuffer {
    pub size: u64,
    #[serde(serialize_with = "b64_opt")]
    pub init: Option<Vec<u8>>,
}

/// One storage binding of a dispatch: the buffer, the bytes bound from offset 0, and whether it
/// is bound read-write.
#[derive(Clone, Debug, Serialize)]
pub struct TracedBinding {
    pub buffer: usize,
    pub bytes: u64,
    pub write: bool,
}

/// One thing the device did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Write {
        buffer: usize,
        offset: u64,
        #[serde(serialize_with = "b64")]
        data: Vec<u8>,
    },
    Copy {
        src: usize,
        dst: usize,
        bytes: u64,
    },
    Dispatch {
        kernel: usize,
        bindings: Vec<TracedBinding>,
        /// The uniform block (binding 0), as the launch set it.
        #[serde(serialize_with = "b64")]
        params: Vec<u8>,
        groups: [u32; 3],
    },
    Read {
        buffer: usize,
        offset: u64,
        bytes: u64,
        /// What the read returned on the traced device (kept to find which read an output came
        /// from; not written out).
        #[serde(skip)]
        data: Vec<u8>,
    },
}

/// What a traced stretch of work did.
#[derive(Debug, Default, Serialize)]
pub struct Trace {
    pub kernels: Vec<TracedKernel>,
    pub buffers: Vec<TracedBuffer>,
    pub steps: Vec<Step>,
    #[serde(skip)]
    ids: HashMap<wgpu::Buffer, usize>,
    #[serde(skip)]
    kernel_ids: HashMap<(String, String), usize>,
}

impl Trace {
    /// The index of the last read that returned exactly `bytes`.
    pub fn read_returning(&self, bytes: &[u8]) -> Option<usize> {
        self.steps
            .iter()
            .rposition(|s| matches!(s, Step::Read { data, .. } if data == bytes))
    }

    fn buffer(&self, b: &wgpu::Buffer) -> usize {
        self.ids[b]
    }
}

fn b64<S: serde::Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    use base64::Engine;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
}

fn b64_opt<S: serde::Serializer>(
    v: &Option<Vec<u8>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(v) => b64(v, s),
        None => s.serialize_none(),
    }
}

impl Gpu {
    /// Start tracing (a trace already started is dropped).
    pub fn trace_start(&self) {
        *self.trace.lock().unwrap() = Some(Trace::default());
    }

    /// Stop tracing and return what was traced (None when no trace was started).
    pub fn trace_take(&self) -> Option<Trace> {
        self.trace.lock().unwrap().take()
    }

    pub(super) fn tracing(&self) -> bool {
        self.trace.lock().unwrap().is_some()
    }

    /// Make sure the trace knows `bufs`, reading the contents of each it has not met yet (in order
    /// with the work recorded so far).
    pub(super) fn trace_meet(&self, bufs: &[&wgpu::Buffer]) -> Result<()> {
        if !self.tracing() {
            return Ok(());
        }
        for b in bufs {
            if self
                .trace
                .lock()
                .unwrap()
                .as_ref()
                .unwrap()
                .ids
                .contains_key(*b)
            {
                continue;
            }
            let data = self.read_untraced(b, 0, b.size())?;
            let init = data.iter().any(|&x| x != 0).then_some(data);
            let mut t = self.trace.lock().unwrap();
            let t = t.as_mut().expect("trace started");
            let id = t.buffers.len();
            t.buffers.push(TracedBuffer {
                size: b.size(),
                init,
            });
            t.ids.insert((*b).clone(), id);
        }
        Ok(())
    }

    pub(super) fn trace_write(&self, buf: &wgpu::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        self.trace_step(&[buf], |t| Step::Write {
            buffer: t.buffer(buf),
            offset,
            data: data.to_vec(),
        })
    }

    pub(super) fn trace_copy(
        &self,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<()> {
        self.trace_step(&[src, dst], |t| Step::Copy {
            src: t.buffer(src),
            dst: t.buffer(dst),
            bytes,
        })
    }

    pub(super) fn trace_read(&self, buf: &wgpu::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        self.trace_step(&[buf], |t| Step::Read {
            buffer: t.buffer(buf),
            offset,
            bytes: data.len() as u64,
            data: data.to_vec(),
        })
    }

    /// A dispatch of `kernel` (name, entry, final WGSL) over `bindings` (buffer, bytes, written).
    pub(super) fn trace_dispatch(
        &self,
        kernel: (&str, &str, &dyn Fn() -> Result<String>),
        bindings: &[(&wgpu::Buffer, u64, bool)],
        params: &[u8],
        groups: [u32; 3],
    ) -> Result<()> {
        let bufs: Vec<&wgpu::Buffer> = bindings.iter().map(|b| b.0).collect();
        self.trace_meet(&bufs)?;
        let (name, entry, source) = kernel;
        let wgsl = source()?;
        let mut t = self.trace.lock().unwrap();
        let t = t.as_mut().expect("trace started");
        let key = (format!("{name}::{entry}"), wgsl);
        let next = t.kernels.len();
        let id = *t.kernel_ids.entry(key.clone()).or_insert(next);
        if id == next {
            t.kernels.push(TracedKernel {
                name: key.0,
                entry: entry.to_string(),
                wgsl: key.1,
            });
        }
        let bindings = bindings
            .iter()
            .map(|(b, bytes, write)| TracedBinding {
                buffer: t.buffer(b),
                bytes: *bytes,
                write: *write,
            })
            .collect();
        t.steps.push(Step::Dispatch {
            kernel: id,
            bindings,
            params: params.to_vec(),
            groups,
        });
        Ok(())
    }

    fn trace_step(&self, bufs: &[&wgpu::Buffer], step: impl FnOnce(&Trace) -> Step) -> Result<()> {
        if !self.tracing() {
            return Ok(());
        }
        self.trace_meet(bufs)?;
        let mut t = self.trace.lock().unwrap();
        let t = t.as_mut().expect("trace started");
        let s = step(t);
        t.steps.push(s);
        Ok(())
    }
}
