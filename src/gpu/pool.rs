//! A buffer pool keyed by size class. A dropped [`PooledBuffer`] goes back to its class's free list,
//! so a training loop that allocates the same shapes every step stops creating buffers after step one.

use super::Gpu;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Pool counters.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct PoolStats {
    /// Requests served from a free list.
    pub hits: u64,
    /// Requests that created a buffer.
    pub misses: u64,
    /// Bytes in buffers created so far and not destroyed.
    pub bytes_created: u64,
    /// Bytes in free lists now.
    pub bytes_free: u64,
    /// The most bytes held at once (in use and free) since the last [`Gpu::reset_peak`].
    pub peak_bytes: u64,
}

impl PoolStats {
    /// Fraction of requests served from the pool.
    pub fn hit_rate(&self) -> f64 {
        let t = self.hits + self.misses;
        if t == 0 {
            0.0
        } else {
            self.hits as f64 / t as f64
        }
    }
}

#[derive(Default)]
pub(crate) struct Pool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    stats: Mutex<PoolStats>,
}

/// The size class of a request: 256 bytes at least, then steps of 2^k and 1.5·2^k, so at most a
/// third of a buffer is slack.
pub fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    let p = b.next_power_of_two();
    let three_quarters = p / 4 * 3;
    if b <= three_quarters {
        three_quarters
    } else {
        p
    }
}

impl Pool {
    pub(crate) fn take(&self, gpu: &Arc<Gpu>, bytes: u64) -> PooledBuffer {
        // The class never exceeds the device's largest buffer (a limit need not be a class: 100 MB,
        // or 2^31 − 1), so a tensor that fits is never refused for its rounding.
        let largest = gpu.limits.max_buffer_size / 4 * 4;
        let class = size_class(bytes).min(largest.max(bytes));
        let reused = self
            .free
            .lock()
            .unwrap()
            .get_mut(&class)
            .and_then(|v| v.pop());
        let mut s = self.stats.lock().unwrap();
        let buf = match reused {
            Some(b) => {
                s.hits += 1;
                s.bytes_free -= class;
                b
            }
            None => {
                s.misses += 1;
                s.bytes_created += class;
                s.peak_bytes = s.peak_bytes.max(s.bytes_created);
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size: class,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        PooledBuffer {
            buf: Some(buf),
            class,
            gpu: gpu.clone(),
        }
    }

    fn give_back(&self, class: u64, buf: wgpu::Buffer) {
        self.stats.lock().unwrap().bytes_free += class;
        self.free
            .lock()
            .unwrap()
            .entry(class)
            .or_default()
            .push(buf);
    }

    pub(crate) fn stats(&self) -> PoolStats {
        *self.stats.lock().unwrap()
    }

    /// Destroy every buffer in the free lists; returns the bytes freed.
    pub(crate) fn trim(&self) -> u64 {
        let freed: Vec<wgpu::Buffer> = self
            .free
            .lock()
            .unwrap()
            .drain()
            .flat_map(|(_, v)| v)
            .collect();
        let bytes: u64 = freed.iter().map(|b| b.size()).sum();
        drop(freed); // wgpu frees each once the work already submitted no longer uses it
        let mut s = self.stats.lock().unwrap();
        s.bytes_free -= bytes;
        s.bytes_created -= bytes;
        bytes
    }

    /// Start a new high-water mark at the bytes held now.
    pub(crate) fn reset_peak(&self) {
        let mut s = self.stats.lock().unwrap();
        s.peak_bytes = s.bytes_created;
    }
}

/// A storage buffer borrowed from the pool; returned to it on drop.
pub struct PooledBuffer {
    buf: Option<wgpu::Buffer>,
    class: u64,
    gpu: Arc<Gpu>,
}

impl PooledBuffer {
    /// The wgpu buffer.
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buf.as_ref().expect("live pooled buffer")
    }
    /// The device this buffer lives on.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
    /// Capacity in bytes (the size class).
    pub fn capacity(&self) -> u64 {
        self.class
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.gpu.pool.give_back(self.class, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;
    #[test]
    fn size_classes_bound_the_slack() {
        assert_eq!(size_class(1), 256);
        assert_eq!(size_class(300), 384);
        assert_eq!(size_class(384), 384);
        assert_eq!(size_class(385), 512);
        for b in [1000u64, 4097, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let c = size_class(b);
            assert!(c >= b && (c as f64) <= b as f64 * 1.5 + 256.0, "{b} -> {c}");
        }
    }
}
