//! Adapter choice: the user's backend and name filter (flags or environment), otherwise the best
//! adapter by kind — discrete, integrated, virtual, then CPU (Mesa lavapipe).

use super::validate::Validation;
use crate::{Error, Result};

/// How the user asked for an adapter.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// `vulkan`, `metal`, `dx12`, `gl` or `auto` (None = auto).
    pub backend: Option<String>,
    /// A case-insensitive substring of the adapter's name.
    pub name: Option<String>,
    /// The kernel family: `register`, `workgroup` or `auto` (None = auto: by the adapter's type).
    pub family: Option<String>,
    /// `adapter` (the adapter's own limits) or `webgpu` (WebGPU's default limits, the least any
    /// conforming GPU offers); None = adapter.
    pub limits: Option<String>,
    /// `--validate`: wgpu's validation and, on Vulkan, the Khronos validation layer with
    /// synchronization validation; every message is an error naming the kernel.
    pub validate: bool,
}

impl AdapterChoice {
    /// The choice from the environment: `SYMCLONE_BACKEND`, `SYMCLONE_ADAPTER`, `SYMCLONE_FAMILY`,
    /// `SYMCLONE_LIMITS` and `SYMCLONE_VALIDATE` (`1`, `true` or `yes`).
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        AdapterChoice {
            backend: get("SYMCLONE_BACKEND"),
            name: get("SYMCLONE_ADAPTER"),
            family: get("SYMCLONE_FAMILY"),
            limits: get("SYMCLONE_LIMITS"),
            validate: get("SYMCLONE_VALIDATE").is_some_and(|v| env_true(&v)),
        }
    }

    /// The limits to open `adapter` with: its own, or WebGPU's defaults.
    pub fn limits_for(&self, adapter: &wgpu::Adapter) -> Result<wgpu::Limits> {
        let n = self.limits.as_deref().unwrap_or("adapter").trim();
        match n.to_ascii_lowercase().as_str() {
            "adapter" | "" => Ok(adapter.limits()),
            "webgpu" | "default" => Ok(wgpu::Limits::default()),
            other => Err(Error::invalid(format!(
                "unknown limits '{other}': use adapter (the adapter's own) or webgpu (WebGPU's defaults)"
            ))),
        }
    }
}

/// Whether an environment variable's value means yes (`1`, `true`, `yes`, `on`).
pub fn env_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// Parse a backend name into wgpu's backend set.
pub fn parse_backends(name: Option<&str>) -> Result<wgpu::Backends> {
    let n = name.unwrap_or("auto").trim().to_ascii_lowercase();
    Ok(match n.as_str() {
        "auto" | "" => wgpu::Backends::all(),
        "vulkan" | "vk" => wgpu::Backends::VULKAN,
        "metal" | "mtl" => wgpu::Backends::METAL,
        "dx12" | "d3d12" => wgpu::Backends::DX12,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        other => {
            return Err(Error::invalid(format!(
                "unknown backend '{other}': use one of vulkan, metal, dx12, gl, auto"
            )))
        }
    })
}

/// Rank of a device type: lower is preferred.
pub fn device_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// Keep Mesa's Vulkan device-selection layer from printing
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` (twice) on machines without
/// a desktop session — containers, services, CI. The layer (`VK_LAYER_MESA_device_select`, an
/// implicit layer that Mesa's Vulkan drivers install) connects to a Wayland display while it
/// orders the devices, and libwayland prints that line when `XDG_RUNTIME_DIR` is missing; Mesa
/// 23.1 and later only try when `WAYLAND_DISPLAY` is set. This program orders adapters itself
/// ([`enumerate`]), so when `XDG_RUNTIME_DIR` is not a folder and nobody asked the layer for a
/// device (`MESA_VK_DEVICE_SELECT`), it turns the layer off through the layer's own switch,
/// `NODEVICE_SELECT=1`, for this process only. The binary calls this first thing, before any
/// thread starts (setting the environment is not thread-safe).
pub fn quiet_device_select_layer() {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let runtime_dir_ok =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if !runtime_dir_ok && !set("MESA_VK_DEVICE_SELECT") && !set("NODEVICE_SELECT") {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn new_instance(backends: wgpu::Backends, validate: bool) -> (wgpu::Instance, Option<Validation>) {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    desc.flags = super::validate::flags(validate);
    if validate {
        let (i, v) = super::validate::instance(desc);
        (i, Some(v))
    } else {
        (wgpu::Instance::new(desc), None)
    }
}

/// Every adapter of the given backends, in preference order (the first is what `auto` picks).
pub fn enumerate(choice: &AdapterChoice) -> Result<Vec<wgpu::Adapter>> {
    Ok(enumerate_validated(choice)?.0)
}

/// [`enumerate`], and what `choice.validate` put in force on the instance that found them.
fn enumerate_validated(choice: &AdapterChoice) -> Result<(Vec<wgpu::Adapter>, Option<Validation>)> {
    let backends = parse_backends(choice.backend.as_deref())?;
    // With no backend named, look at the primary APIs first and at GL only if they have nothing.
    let mut adapters = Vec::new();
    let mut validation = None;
    let tries: &[wgpu::Backends] = if choice.backend.is_none() || backends == wgpu::Backends::all()
    {
        &[wgpu::Backends::PRIMARY, wgpu::Backends::GL]
    } else {
        std::slice::from_ref(&backends)
    };
    for &b in tries {
        let (instance, v) = new_instance(b, choice.validate);
        validation = v;
        adapters = pollster::block_on(instance.enumerate_adapters(b));
        if !adapters.is_empty() {
            break;
        }
    }
    if let Some(name) = &choice.name {
        let needle = name.to_ascii_lowercase();
        adapters.retain(|a| a.get_info().name.to_ascii_lowercase().contains(&needle));
    }
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        // Prefer Vulkan/Metal/DX12 over GL at the same rank.
        let gl = u32::from(i.backend == wgpu::Backend::Gl);
        (device_rank(i.device_type), gl)
    });
    Ok((adapters, validation))
}

/// The message printed when no adapter is found.
pub fn no_adapter_message(choice: &AdapterChoice) -> String {
    let what = match (&choice.backend, &choice.name) {
        (Some(b), Some(n)) => format!(" for backend '{b}' with a name containing '{n}'"),
        (Some(b), None) => format!(" for backend '{b}'"),
        (None, Some(n)) => format!(" with a name containing '{n}'"),
        (None, None) => String::new(),
    };
    format!(
        "no GPU adapter found{what}: install your GPU's Vulkan/Metal/DX12 driver, or Mesa's CPU Vulkan driver \
         lavapipe (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`); `symclone-gpu devices` lists what is found"
    )
}

/// A summary of every adapter [`enumerate`] finds, in preference order; an error when there is
/// none.
pub fn summaries(choice: &AdapterChoice) -> Result<Vec<AdapterSummary>> {
    let adapters = enumerate(choice)?;
    if adapters.is_empty() {
        return Err(Error::NoAdapter(no_adapter_message(choice)));
    }
    Ok(adapters.iter().map(AdapterSummary::of).collect())
}

/// Pick the adapter the user asked for, or the best one.
pub fn choose(choice: &AdapterChoice) -> Result<wgpu::Adapter> {
    Ok(choose_validated(choice)?.0)
}

/// [`choose`], and what `choice.validate` put in force (None without it).
pub(super) fn choose_validated(
    choice: &AdapterChoice,
) -> Result<(wgpu::Adapter, Option<Validation>)> {
    let (adapters, validation) = enumerate_validated(choice)?;
    let adapter = adapters
        .into_iter()
        .next()
        .ok_or_else(|| Error::NoAdapter(no_adapter_message(choice)))?;
    Ok((adapter, validation))
}

/// A printable description of one adapter: what `symclone-gpu devices` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub timestamps: bool,
    pub shader_f16: bool,
    pub subgroups: bool,
    /// The kernel variants cached for this adapter (`symclone-gpu tune`), one line per op and bucket.
    pub kernels: Vec<String>,
}

impl AdapterSummary {
    /// Describe an adapter.
    pub fn of(a: &wgpu::Adapter) -> Self {
        let i = a.get_info();
        let l = a.limits();
        let f = a.features();
        let kernels = super::tune::cached_choices(&i)
            .iter()
            .map(|c| c.line())
            .collect();
        AdapterSummary {
            kernels,
            name: i.name,
            backend: format!("{:?}", i.backend),
            device_type: format!("{:?}", i.device_type),
            driver: i.driver,
            driver_info: i.driver_info,
            max_buffer_size: l.max_buffer_size,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            timestamps: f.contains(wgpu::Features::TIMESTAMP_QUERY),
            shader_f16: f.contains(wgpu::Features::SHADER_F16),
            subgroups: f.contains(wgpu::Features::SUBGROUP),
        }
    }

    /// One block of text per adapter.
    pub fn render(&self) -> String {
        let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0));
        let yn = |b: bool| if b { "yes" } else { "no" };
        format!(
            "{}\n  backend: {}   type: {}\n  driver: {} {}\n  max buffer: {}   max storage binding: {}\n  \
             workgroup storage: {} B   invocations/workgroup: {}   workgroups/dim: {}\n  \
             timestamps: {}   f16: {}   subgroups: {}",
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            self.driver_info,
            mib(self.max_buffer_size),
            mib(self.max_storage_buffer_binding_size),
            self.max_compute_workgroup_storage_size,
            self.max_compute_invocations_per_workgroup,
            self.max_compute_workgroups_per_dimension,
            yn(self.timestamps),
            yn(self.shader_f16),
            yn(self.subgroups)
        ) + &if self.kernels.is_empty() {
            "\n  kernels: none chosen yet (`symclone-gpu tune` times them)".to_string()
        } else {
            format!("\n  kernels (cached): {}", self.kernels.join("\n                    "))
        }
    }
}
