//! `--validate`: wgpu's validation and, on Vulkan, the Khronos validation layer with
//! synchronization validation, every message of either turned into an error that names the kernel.
//!
//! wgpu's own checks report through the device's uncaptured-error handler ([`super::Gpu`] keeps
//! them). The layer reports through the debug messenger wgpu-hal installs, which writes each
//! message to the `log` crate (target `wgpu_hal::vulkan::instance`): this module installs a logger
//! that keeps those records, per thread (the layer calls back on the thread that made the Vulkan
//! call, which is the thread that records or submits), for the recorder to collect after each
//! dispatch and submission. wgpu-hal chains `VkValidationFeaturesEXT` with
//! `SYNCHRONIZATION_VALIDATION` whenever the layer offers `VK_EXT_validation_features`; the
//! layer's start-up message (its `Current Enables:` list) is how [`Validation::describe`] knows
//! the layer is loaded and synchronization validation is on.

use std::cell::RefCell;
use std::sync::{Mutex, OnceLock};

/// Most messages one thread keeps before it is asked (the first ones name the fault).
const KEEP: usize = 32;
/// Where wgpu-hal's Vulkan debug messenger logs.
const VULKAN_TARGET: &str = "wgpu_hal::vulkan::instance";

thread_local! {
    static MESSAGES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The layer's start-up messages ("Khronos Validation Layer Active: … Current Enables: …").
static STATUS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether this process's logger is ours (None: not tried yet).
static LOGGER: OnceLock<bool> = OnceLock::new();

struct Capture;

static CAPTURE: Capture = Capture;

/// Whether a record is a debug-messenger message (or its continuation): the messenger writes
/// `TYPE [VUID-or-name (0x…)]\n\tmessage`, then `\tobjects: …` / `\tcommand buffers: …` lines.
fn from_messenger(text: &str) -> bool {
    if text.starts_with('\t') {
        return true;
    }
    text.split_once(" [").is_some_and(|(kind, _)| {
        !kind.is_empty()
            && kind
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c == ' ' || c == '|')
    })
}

/// Whether a record is the GL driver's debug output (`GLES: [source/type] ID n : …`) or EGL's.
fn from_gl_debug(target: &str, text: &str) -> bool {
    target.starts_with("wgpu_hal::gles")
        && (text.starts_with("GLES: [") || text.starts_with("EGL '"))
}

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("wgpu_hal")
            && (m.level() <= log::Level::Warn
                || (m.target() == VULKAN_TARGET && m.level() <= log::Level::Debug))
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let text = r.args().to_string();
        if r.level() > log::Level::Warn {
            // The layer's information messages: only its start-up status is kept.
            if text.contains("Validation Layer Active") {
                STATUS.lock().unwrap().push(text);
            }
            return;
        }
        let ours = if r.target() == VULKAN_TARGET {
            from_messenger(&text)
        } else {
            from_gl_debug(r.target(), &text)
        };
        if !ours {
            return;
        }
        MESSAGES.with(|m| {
            let mut m = m.borrow_mut();
            if text.starts_with('\t') {
                if let Some(last) = m.last_mut() {
                    last.push('\n');
                    last.push_str(text.trim_start());
                    return;
                }
            }
            if m.len() < KEEP {
                m.push(text);
            }
        });
    }

    fn flush(&self) {}
}

/// Install the logger that keeps the layer's messages (once per process). False when another
/// logger was installed first: the messages go to it, and only wgpu's own checks are turned
/// into errors.
fn install() -> bool {
    *LOGGER.get_or_init(|| {
        let ok = log::set_logger(&CAPTURE).is_ok();
        if ok {
            log::set_max_level(log::LevelFilter::Warn);
        }
        ok
    })
}

/// The validation messages logged on this thread since the last call.
pub(super) fn drain() -> Vec<String> {
    MESSAGES.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

/// What `--validate` has in force on one instance.
#[derive(Clone, Debug)]
pub struct Validation {
    /// The layer's start-up message (None: the layer did not load).
    layer: Option<String>,
    /// The logger is ours (else the layer's messages go to another logger).
    captured: bool,
}

impl Validation {
    /// Whether the Khronos validation layer is loaded.
    pub fn layer_loaded(&self) -> bool {
        self.layer.is_some()
    }

    /// Whether the layer says synchronization validation is on.
    pub fn sync_validation(&self) -> bool {
        self.layer
            .as_deref()
            .is_some_and(|s| s.contains("SYNCHRONIZATION_VALIDATION"))
    }

    /// One line: what checks this run is under.
    pub fn describe(&self, backend: wgpu::Backend) -> String {
        if backend != wgpu::Backend::Vulkan {
            return format!(
                "validation: wgpu's own checks only (the {backend:?} backend has no Khronos validation \
                 layer{})",
                if backend == wgpu::Backend::Gl {
                    "; the GL driver's debug messages are reported too"
                } else {
                    ""
                }
            );
        }
        if !self.captured {
            return "validation: wgpu's own checks only (another logger was installed first, so the \
                    Khronos validation layer's messages go to it)"
                .into();
        }
        match &self.layer {
            Some(_) => format!(
                "validation: wgpu's own checks and the Khronos validation layer{}",
                if self.sync_validation() {
                    ", with synchronization validation"
                } else {
                    " (synchronization validation not available in this layer)"
                }
            ),
            None => {
                "validation: the Khronos validation layer (VK_LAYER_KHRONOS_validation) was not \
                     found, so wgpu's own checks only (Debian/Ubuntu: apt-get install \
                     vulkan-validationlayers)"
                    .into()
            }
        }
    }
}

/// The instance flags for a run with or without `--validate`. Without it, the backend's
/// validation stays off even in a debug build (where wgpu would turn it on), so no layer runs
/// whose messages nobody reads.
pub(super) fn flags(validate: bool) -> wgpu::InstanceFlags {
    if validate {
        wgpu::InstanceFlags::debugging()
    } else {
        wgpu::InstanceFlags::from_build_config()
            - wgpu::InstanceFlags::VALIDATION
            - wgpu::InstanceFlags::GPU_BASED_VALIDATION
    }
}

/// Make an instance with validation on, and find out from the layer's start-up message whether
/// the layer loaded. The messenger wgpu-hal creates asks for the severities the logger's level
/// lets through at that moment, so the level is raised to Debug (information messages: the
/// start-up status) while the instance is made, then lowered to warnings.
pub(super) fn instance(desc: wgpu::InstanceDescriptor) -> (wgpu::Instance, Validation) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let captured = install();
    let _one_at_a_time = SERIAL.lock().unwrap();
    STATUS.lock().unwrap().clear();
    if captured {
        log::set_max_level(log::LevelFilter::Debug);
    }
    let instance = wgpu::Instance::new(desc);
    if captured {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let layer = STATUS.lock().unwrap().pop();
    // Start-up chatter of the loader on this thread is not a fault of a kernel.
    drain();
    (instance, Validation { layer, captured })
}

/// Several lines of a message as one: `Caused by:` and blank lines dropped, the rest joined.
pub(super) fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Caused by:" && *l != "Validation Error")
        .collect::<Vec<_>>()
        .join(": ")
}

/// The label of the command buffer [`super::Gpu::provoke_hazard_for_tests`] submits.
pub const HAZARD_KERNEL: &str = "hazard::copy_twice";

impl super::Gpu {
    /// For the tests of `--validate` only, never for use: submit one command buffer, labelled
    /// [`HAZARD_KERNEL`], that copies into one buffer twice with no barrier between the copies,
    /// recorded past wgpu (which would have put one there) — a write-after-write hazard that
    /// only the layer's synchronization validation sees. Returns whether it was recorded
    /// (false off Vulkan), and the error the recorder makes of what the layer said.
    #[doc(hidden)]
    pub fn provoke_hazard_for_tests(&self) -> crate::Result<bool> {
        use wgpu::hal::CommandEncoder as _;
        type Vk = wgpu::hal::api::Vulkan;
        let buffer = |label, usage| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 256,
                usage,
                mapped_at_creation: false,
            })
        };
        let src = buffer("hazard source", wgpu::BufferUsages::COPY_SRC);
        let dst = buffer("hazard target", wgpu::BufferUsages::COPY_DST);
        self.flush()?;
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(HAZARD_KERNEL),
            });
        // SAFETY: both buffers are alive, unused by any other work and large enough for the
        // copies; nothing else touches the encoder while the callback records into it, and it is
        // not ended here (wgpu ends it in `finish`).
        let recorded = unsafe {
            let (s, d) = (src.as_hal::<Vk>(), dst.as_hal::<Vk>());
            enc.as_hal_mut::<Vk, _, _>(|e| match (e, s.as_deref(), d.as_deref()) {
                (Some(e), Some(s), Some(d)) => {
                    let region = wgpu::hal::BufferCopy {
                        src_offset: 0,
                        dst_offset: 0,
                        size: wgpu::BufferSize::new(256).expect("non-zero"),
                    };
                    e.begin_debug_marker(HAZARD_KERNEL);
                    e.copy_buffer_to_buffer(s, d, std::iter::once(region));
                    e.copy_buffer_to_buffer(s, d, std::iter::once(region));
                    e.end_debug_marker();
                    true
                }
                _ => false,
            })
        };
        self.queue.submit([enc.finish()]);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| crate::Error::Gpu(format!("waiting for the GPU: {e}")))?;
        let (shader, entry) = HAZARD_KERNEL.split_once("::").expect("shader::entry");
        self.take_errors_for(&[(shader, entry)])?;
        Ok(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messenger_records_are_recognised() {
        assert!(from_messenger(
            "VALIDATION [SYNC-HAZARD-WRITE-AFTER-WRITE (0x5c0ec5d6)]\n\tvkCmdCopyBuffer: Hazard"
        ));
        assert!(from_messenger(
            "GENERAL | VALIDATION [Loader Message (0x0)]\n\tx"
        ));
        assert!(from_messenger(
            "\tobjects: (type: BUFFER, hndl: 0x1, name: x)"
        ));
        assert!(!from_messenger("Unable to find extension: VK_EXT_foo"));
        assert!(!from_messenger("disabling [something]"));
    }

    #[test]
    fn one_line_joins_the_chain() {
        assert_eq!(
            one_line("Validation Error\n\nCaused by:\n  In a set_bind_group command\n    Buffer is too small\n"),
            "In a set_bind_group command: Buffer is too small"
        );
    }
}
