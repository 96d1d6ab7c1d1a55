//! The simulated GPU behind one engine: its identity (what a DCGM exporter
//! or NVML would name it) and a reading derived from the batch state.
//! Readings are computed by the engine; `dcgm.rs` exports them under DCGM
//! exporter names.

/// A GPU's fixed identity.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuIdentity {
    /// Index on its host ("gpu" label).
    pub index: u32,
    /// "GPU-xxxxxxxx-xxxx-..." ("UUID" label), stable for a seed.
    pub uuid: String,
    /// Product name ("modelName" label), e.g. "NVIDIA L4".
    pub name: String,
    /// Device name ("device" label), e.g. "nvidia0".
    pub device: String,
    /// PCI bus id ("pci_bus_id" label).
    pub pci_bus_id: String,
    /// Total framebuffer memory in MiB.
    pub fb_total_mib: u64,
    /// Served model on this GPU (the exporter's Kubernetes-style
    /// attribution is out of scope; kept for the router's labels).
    pub served_model: String,
}

/// A GPU's state at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GpuReading {
    /// Percent of the last sampling window a kernel was running (0..=100).
    pub util_percent: f64,
    /// Percent of the window the memory interface was busy (0..=100).
    pub mem_copy_util_percent: f64,
    pub fb_used_mib: u64,
    pub fb_free_mib: u64,
    pub fb_reserved_mib: u64,
    pub power_watts: f64,
    /// Energy since the simulator started, in millijoules (a counter).
    pub energy_mj: u64,
    pub gpu_temp_c: f64,
    pub memory_temp_c: f64,
    pub sm_clock_mhz: u64,
    pub mem_clock_mhz: u64,
}

/// One GPU and its current reading.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSample {
    pub identity: GpuIdentity,
    pub reading: GpuReading,
}
