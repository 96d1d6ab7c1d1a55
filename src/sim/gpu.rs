//! The simulated GPU behind one engine: its identity (what a DCGM exporter
//! or NVML would name it) and a reading derived from the batch state.
//! Readings are computed by the engine; `dcgm.rs` exports them under DCGM
//! exporter names.
//!
//! Besides utilisation (a duty cycle: the share of time a kernel ran), a
//! reading carries the profiling ratios DCGM reads from the hardware
//! counters, modelled per step by [`StepActivity`]: while the GPU computes
//! a step, its graphics engine is active; the tensor pipes are busy for a
//! share of that time that grows with the tokens in the step (a small
//! decode batch is bound by streaming the weights, a large one by
//! arithmetic), and the memory interface for a share that shrinks with it.

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
    /// Served model on this GPU.
    pub served_model: String,
    /// The pod using it, as dcgm-exporter's Kubernetes attribution labels
    /// it (`pod`, with `namespace` and `container`); `None` outside a
    /// cluster.
    pub pod: Option<String>,
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
    /// Ratio of the window the graphics/compute engine was active
    /// (`DCGM_FI_PROF_GR_ENGINE_ACTIVE`, 0..=1).
    pub gr_engine_active: f64,
    /// Ratio of the window's cycles the tensor pipes were active
    /// (`DCGM_FI_PROF_PIPE_TENSOR_ACTIVE`, 0..=1).
    pub tensor_active: f64,
    /// Ratio of the window's cycles the memory interface was active
    /// (`DCGM_FI_PROF_DRAM_ACTIVE`, 0..=1).
    pub dram_active: f64,
}

/// How busy one step keeps the GPU's units while it computes, as shares of
/// the step's compute time (0..=1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepActivity {
    pub tensor: f64,
    pub dram: f64,
}

impl StepActivity {
    /// Tensor pipes' share of compute time with an unbounded batch.
    const TENSOR_MAX: f64 = 0.9;
    /// Memory interface's share with a batch of one token (weights
    /// streamed for a single row of arithmetic), and what it falls to.
    const DRAM_SMALL_BATCH: f64 = 0.85;
    const DRAM_LARGE_BATCH: f64 = 0.5;

    /// A step of `batch_tokens` tokens on a GPU whose tensor pipes are busy
    /// half of their most at `half_tokens` tokens: the batch's share
    /// `tokens / (tokens + half_tokens)` sets both.
    pub fn of(batch_tokens: u32, half_tokens: f64) -> StepActivity {
        let tokens = f64::from(batch_tokens);
        let share = if tokens > 0.0 {
            tokens / (tokens + half_tokens.max(f64::MIN_POSITIVE))
        } else {
            0.0
        };
        StepActivity {
            tensor: Self::TENSOR_MAX * share,
            dram: Self::DRAM_SMALL_BATCH
                - (Self::DRAM_SMALL_BATCH - Self::DRAM_LARGE_BATCH) * share,
        }
    }
}

/// One GPU and its current reading.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSample {
    pub identity: GpuIdentity,
    pub reading: GpuReading,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_activity_rises_and_memory_activity_falls_with_the_batch() {
        let at = |tokens| StepActivity::of(tokens, 64.0);
        assert_eq!(at(0).tensor, 0.0);
        assert_eq!(at(64).tensor, 0.45, "half of the most at half_tokens");
        assert!((at(64).dram - 0.675).abs() < 1e-12, "{:?}", at(64));
        let batches = [1, 8, 64, 256, 4096].map(at);
        assert!(batches.windows(2).all(|w| w[0].tensor < w[1].tensor));
        assert!(batches.windows(2).all(|w| w[0].dram > w[1].dram));
        assert!(batches.iter().all(|a| a.tensor < 0.9 && a.dram > 0.5));
    }
}
