//! The simulated GPU of one engine: utilisation is the share of each
//! one-second window the engine spent computing (a step's time minus the
//! host-side gap during which the GPU waits for the scheduler), as DCGM
//! averages `GPU_UTIL` over its sampling period; power, temperature, clocks
//! and energy follow utilisation; framebuffer use is weights, CUDA context,
//! the KV blocks in use, the activations of the current batch and what a
//! GPU memory climb fault adds, capped at the total. The
//! profiling ratios (graphics engine, tensor pipes, memory interface) are
//! each step's busy time weighted by its [`StepActivity`], per second.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::sim::gpu::{GpuIdentity, GpuReading, StepActivity};

/// The hardware being simulated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GpuSpec {
    pub fb_total_mib: u64,
    pub idle_watts: f64,
    pub max_watts: f64,
    /// Fraction of a decode step's base cost spent on the host (scheduling,
    /// sampling, detokenising) with the GPU idle.
    pub host_fraction: f64,
    /// Tokens in a step at which the tensor pipes are busy half of their
    /// most (see [`StepActivity::of`]).
    pub tensor_half_tokens: f64,
}

pub(crate) const A10G: GpuSpec = GpuSpec {
    fb_total_mib: 23_028,
    idle_watts: 38.0,
    max_watts: 300.0,
    host_fraction: 0.6,
    tensor_half_tokens: 64.0,
};

pub(crate) const A10G_NAME: &str = "NVIDIA A10G";

/// Memory held regardless of load.
const CUDA_CONTEXT_MIB: u64 = 520;

/// Activation memory per token in flight in a step.
const ACTIVATION_KIB_PER_TOKEN: u64 = 96;

/// Busy time per wall-clock second.
#[derive(Debug)]
struct Windows {
    current_second: u64,
    current_busy: Duration,
    previous_second: u64,
    previous_busy: Duration,
    total_busy: Duration,
    batch_tokens: u32,
    /// Seconds of tensor-pipe and memory-interface activity in the current
    /// and the previous second.
    current_units: Units,
    previous_units: Units,
}

/// Seconds each unit was active within one second.
#[derive(Clone, Copy, Debug, Default)]
struct Units {
    tensor_s: f64,
    dram_s: f64,
}

/// The GPU's live state, written by the engine driver after every step and
/// read by the DCGM exporter.
#[derive(Debug)]
pub(crate) struct SimGpu {
    pub identity: GpuIdentity,
    spec: GpuSpec,
    epoch: Instant,
    /// Model weights in MiB (0 while the model is unloaded).
    weights_mib: std::sync::atomic::AtomicU64,
    kv_block_kib: u64,
    kv_blocks_used: std::sync::atomic::AtomicU32,
    windows: Mutex<Windows>,
}

impl SimGpu {
    pub fn new(
        identity: GpuIdentity,
        spec: GpuSpec,
        weights_mib: u64,
        kv_block_kib: u64,
    ) -> SimGpu {
        SimGpu {
            identity,
            spec,
            epoch: Instant::now(),
            weights_mib: weights_mib.into(),
            kv_block_kib,
            kv_blocks_used: 0.into(),
            windows: Mutex::new(Windows {
                current_second: 0,
                current_busy: Duration::ZERO,
                previous_second: u64::MAX,
                previous_busy: Duration::ZERO,
                total_busy: Duration::ZERO,
                batch_tokens: 0,
                current_units: Units::default(),
                previous_units: Units::default(),
            }),
        }
    }

    pub fn spec(&self) -> GpuSpec {
        self.spec
    }

    pub fn set_weights_mib(&self, mib: u64) {
        self.weights_mib
            .store(mib, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records a step that ended at `end`, computing for `busy`, with
    /// `batch_tokens` tokens in flight and `kv_blocks_used` blocks held.
    pub fn record_step(
        &self,
        end: Instant,
        busy: Duration,
        batch_tokens: u32,
        kv_blocks_used: u32,
    ) {
        self.kv_blocks_used
            .store(kv_blocks_used, std::sync::atomic::Ordering::Relaxed);
        let second = self.second_of(end);
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if second != w.current_second {
            w.previous_second = w.current_second;
            w.previous_busy = w.current_busy;
            w.previous_units = w.current_units;
            w.current_second = second;
            w.current_busy = Duration::ZERO;
            w.current_units = Units::default();
        }
        let activity = StepActivity::of(batch_tokens, self.spec.tensor_half_tokens);
        w.current_units.tensor_s += busy.as_secs_f64() * activity.tensor;
        w.current_units.dram_s += busy.as_secs_f64() * activity.dram;
        w.current_busy += busy;
        w.total_busy += busy;
        w.batch_tokens = batch_tokens;
    }

    /// The engine went idle: nothing in flight.
    pub fn record_idle(&self, kv_blocks_used: u32) {
        self.kv_blocks_used
            .store(kv_blocks_used, std::sync::atomic::Ordering::Relaxed);
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .batch_tokens = 0;
    }

    fn second_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_secs()
    }

    /// Utilisation of the last complete second, 0..=1, and its units'
    /// active seconds.
    fn util(&self, w: &Windows, now: Instant) -> (f64, Units) {
        let last = self.second_of(now).checked_sub(1);
        let (busy, units) = match last {
            Some(s) if w.current_second == s => (w.current_busy, w.current_units),
            Some(s) if w.previous_second == s => (w.previous_busy, w.previous_units),
            _ => (Duration::ZERO, Units::default()),
        };
        (busy.as_secs_f64().clamp(0.0, 1.0), units)
    }

    /// The reading at `now`, with `extra_mib` more framebuffer used (the
    /// GPU memory climb fault; the sum is capped at the total).
    pub fn reading(&self, now: Instant, extra_mib: u64) -> GpuReading {
        let w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let (util, units) = self.util(&w, now);
        let elapsed = now.saturating_duration_since(self.epoch).as_secs_f64();
        let spec = self.spec;
        let power = spec.idle_watts + (spec.max_watts - spec.idle_watts) * util;
        let energy_j = spec.idle_watts * elapsed
            + (spec.max_watts - spec.idle_watts) * w.total_busy.as_secs_f64();
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        let kv_mib = u64::from(self.kv_blocks_used.load(relaxed)) * self.kv_block_kib / 1024;
        let activations_mib = u64::from(w.batch_tokens) * ACTIVATION_KIB_PER_TOKEN / 1024;
        let used = (CUDA_CONTEXT_MIB + self.weights_mib.load(relaxed) + kv_mib + activations_mib)
            .saturating_add(extra_mib)
            .min(spec.fb_total_mib);
        let reserved = 0;
        let gpu_temp = 31.0 + 47.0 * util;
        GpuReading {
            util_percent: (util * 100.0).round(),
            mem_copy_util_percent: (util * 62.0).round(),
            fb_used_mib: used,
            fb_free_mib: spec.fb_total_mib - used - reserved,
            fb_reserved_mib: reserved,
            power_watts: (power * 1000.0).round() / 1000.0,
            energy_mj: (energy_j * 1000.0) as u64,
            gpu_temp_c: gpu_temp.round(),
            memory_temp_c: (gpu_temp + 6.0).round(),
            sm_clock_mhz: if util > 0.0 { 1710 } else { 210 },
            mem_clock_mhz: 6251,
            gr_engine_active: util,
            tensor_active: units.tensor_s.clamp(0.0, 1.0),
            dram_active: units.dram_s.clamp(0.0, 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu() -> SimGpu {
        let identity = GpuIdentity {
            index: 0,
            uuid: "GPU-0".into(),
            name: A10G_NAME.into(),
            device: "nvidia0".into(),
            pci_bus_id: "00000000:00:1E.0".into(),
            fb_total_mib: A10G.fb_total_mib,
            served_model: "m".into(),
            pod: None,
        };
        SimGpu::new(identity, A10G, 15_400, 2048)
    }

    #[test]
    fn utilisation_is_busy_share_of_the_last_complete_second() {
        let g = gpu();
        let t0 = g.epoch;
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        g.record_step(t0 + ms(500), ms(300), 10, 0);
        g.record_step(t0 + ms(900), ms(450), 10, 0);
        // During second 0 the previous second is "-1": nothing yet.
        assert_eq!(g.reading(t0 + ms(950), 0).util_percent, 0.0);
        let r = g.reading(t0 + s(1) + ms(10), 0);
        assert_eq!(r.util_percent, 75.0);
        assert!(r.power_watts > A10G.idle_watts && r.power_watts < A10G.max_watts);
        // An idle second reads 0.
        assert_eq!(g.reading(t0 + s(3), 0).util_percent, 0.0);
    }

    #[test]
    fn profiling_ratios_weight_each_steps_busy_time_by_its_batch() {
        let g = gpu();
        let t0 = g.epoch;
        let ms = Duration::from_millis;
        // 400 ms at 64 tokens (tensor 0.45, dram 0.675), 200 ms at 192
        // tokens (tensor 0.675, dram 0.5875).
        g.record_step(t0 + ms(400), ms(400), 64, 0);
        g.record_step(t0 + ms(600), ms(200), 192, 0);
        let r = g.reading(t0 + ms(1010), 0);
        assert_eq!(r.gr_engine_active, 0.6);
        assert!(
            (r.tensor_active - (0.4 * 0.45 + 0.2 * 0.675)).abs() < 1e-12,
            "{r:?}"
        );
        assert!(
            (r.dram_active - (0.4 * 0.675 + 0.2 * 0.5875)).abs() < 1e-12,
            "{r:?}"
        );
        // A larger batch for the same busy time: more tensor, less DRAM.
        g.record_step(t0 + ms(1600), ms(600), 1024, 0);
        let big = g.reading(t0 + ms(2010), 0);
        assert!(big.tensor_active > r.tensor_active && big.dram_active < r.dram_active);
        assert_eq!(g.reading(t0 + ms(3010), 0).tensor_active, 0.0);
    }

    #[test]
    fn framebuffer_counts_weights_kv_and_activations() {
        let g = gpu();
        let idle = g.reading(g.epoch, 0);
        assert_eq!(idle.fb_used_mib, CUDA_CONTEXT_MIB + 15_400);
        assert_eq!(idle.fb_used_mib + idle.fb_free_mib, A10G.fb_total_mib);
        g.record_step(g.epoch, Duration::ZERO, 1024, 1000);
        let busy = g.reading(g.epoch, 0);
        assert_eq!(busy.fb_used_mib, idle.fb_used_mib + 2000 + 96);
        g.set_weights_mib(0);
        assert!(g.reading(g.epoch, 0).fb_used_mib < 3000);
    }

    #[test]
    fn a_memory_climb_adds_to_the_framebuffer_up_to_its_total() {
        use crate::sim::config::ResourceFaults;
        use crate::sim::faults::FaultState;
        let g = gpu();
        let t0 = g.epoch;
        let base = g.reading(t0, 0);
        let climb = FaultState::default().with_resources(
            ResourceFaults {
                gpu_memory_climb_mib_per_s: 512.0,
                ..ResourceFaults::default()
            },
            t0,
        );
        let at = |secs| {
            let now = t0 + Duration::from_secs(secs);
            g.reading(now, climb.climbed_mib(now))
        };
        let after_3s = at(3);
        assert_eq!(after_3s.fb_used_mib, base.fb_used_mib + 3 * 512);
        assert_eq!(after_3s.fb_free_mib, base.fb_free_mib - 3 * 512);
        // 15,920 MiB at first, 7,108 free: full after 14 s.
        let full = at(14);
        assert_eq!((full.fb_used_mib, full.fb_free_mib), (A10G.fb_total_mib, 0));
        assert_eq!(at(3_600).fb_used_mib, A10G.fb_total_mib, "capped");
        assert_eq!(g.reading(t0, u64::MAX).fb_free_mib, 0);
        let cleared = FaultState::default();
        let now = t0 + Duration::from_secs(20);
        assert_eq!(g.reading(now, cleared.climbed_mib(now)), g.reading(now, 0));
        assert_eq!(g.reading(now, 0).fb_used_mib, base.fb_used_mib);
    }
}
