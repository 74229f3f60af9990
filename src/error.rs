//! The crate's error type: every fallible call returns `Result<_, Error>` with a message that names
//! the value at fault and, where there is one, the fix.

/// Errors raised by the library. The binary prints them as one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter could be found (or none matched the user's choice).
    #[error("{0}")]
    NoAdapter(String),
    /// Tensors whose shapes do not fit the operation.
    #[error("shape mismatch in {op}: {detail}")]
    Shape { op: &'static str, detail: String },
    /// A buffer larger than the adapter allows.
    #[error("{what} needs {requested} bytes, more than the adapter's {limit_name} limit of {limit} bytes{hint}")]
    BufferTooLarge {
        what: String,
        requested: u64,
        limit: u64,
        limit_name: &'static str,
        /// What to change, when the caller knows (`; lower --batch …`), else empty.
        hint: String,
    },
    /// An error reported by the GPU driver or wgpu.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// A message of wgpu's validation or of the Vulkan validation layer, under `--validate`.
    #[error("validation failed in kernel {kernel}: {message}")]
    Validation { kernel: String, message: String },
    /// An invalid argument (a batch size of 0, an unknown name, ...).
    #[error("{0}")]
    Invalid(String),
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The user interrupted the run (Ctrl-C); everything written so far is complete.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A malformed data file.
    #[error("{path}: {msg}")]
    Data { path: String, msg: String },
    /// The folder is held by another process (its lock): nothing failed, the work is theirs.
    #[error("{0}")]
    Busy(String),
}

/// The exit status of [`Error::Busy`]: 75, `EX_TEMPFAIL` of sysexits.h ("try again later").
pub const EXIT_BUSY: u8 = 75;

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The same error with what the user can change to avoid it (`lower --batch (now 64)`),
    /// when it is a size over an adapter limit; any other error is returned as it is.
    pub fn hint(mut self, what_to_change: impl std::fmt::Display) -> Error {
        if let Error::BufferTooLarge { hint, .. } = &mut self {
            *hint = format!("; {what_to_change}");
        }
        self
    }

    /// A shape error for operation `op`.
    pub fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op,
            detail: detail.into(),
        }
    }
    /// An invalid-argument error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    /// The exit status the binary ends with: 2 when no adapter was found, 130 when interrupted,
    /// 75 when another process holds the folder, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NoAdapter(_) => 2,
            Error::Busy(_) => EXIT_BUSY,
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }
    /// An I/O failure on the file or folder at `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

static INTERRUPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set with [`INTERRUPT`] when the stop comes from a time limit ([`stop_after`]), not Ctrl-C.
static TIME_UP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ask long loops to stop at their next check (the binary calls this on Ctrl-C).
pub fn request_interrupt() {
    INTERRUPT.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// For a binary: the first Ctrl-C asks long loops to stop at their next check (saying so on
/// stderr), a second one exits at once with status 130.
pub fn stop_on_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        eprintln!("\nstopping after the current step (Ctrl-C again to abort at once)...");
        if interrupt_requested() {
            std::process::exit(130);
        }
        request_interrupt();
    });
}

/// Ask long loops to stop at their next check once `limit` has passed (a wall-clock limit, from
/// now): work then stops after the current step, as on Ctrl-C, and [`time_up`] says why.
pub fn stop_after(limit: std::time::Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        TIME_UP.store(true, std::sync::atomic::Ordering::SeqCst);
        request_interrupt();
    });
}

/// Whether the stop that was requested is a time limit's ([`stop_after`]).
pub fn time_up() -> bool {
    TIME_UP.load(std::sync::atomic::Ordering::SeqCst)
}

/// Whether an interrupt was requested.
pub fn interrupt_requested() -> bool {
    INTERRUPT.load(std::sync::atomic::Ordering::SeqCst)
}

/// Fail with [`Error::Interrupted`] if an interrupt was requested; `what` names the work stopped.
pub fn check_interrupt(what: &str) -> Result<()> {
    if INTERRUPT.load(std::sync::atomic::Ordering::SeqCst) {
        let why = if time_up() {
            "the time limit was reached"
        } else {
            "stopped"
        };
        Err(Error::Interrupted(format!(
            "{why} during {what}; files written so far are complete"
        )))
    } else {
        Ok(())
    }
}

// ---- Checks of numeric knobs, shared by every layer that takes one ----

/// A finite number above zero, or an error naming the knob.
pub fn positive(what: &str, v: f32) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {v}: use a finite number above 0"
        )))
    }
}

/// A finite number at or above zero, or an error naming the knob.
pub fn non_negative(what: &str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {v}: use a finite number, 0 or above"
        )))
    }
}

/// A decay factor in (0, 1], or an error naming the knob.
pub fn unit_decay(what: &str, v: f32) -> Result<()> {
    if v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {v}: use a factor above 0 and at most 1 (1 = constant)"
        )))
    }
}
