//! The NVML GPU sampler: per-GPU utilisation, memory, power, temperature and
//! per-process memory, read through `nvml-wrapper` on the run's clock.
//!
//! NVML calls block (a GPU that fell off the bus can stall a call for
//! seconds), so the sampler owns a dedicated OS thread: NVML is loaded and
//! initialised there, read every `interval`, and shut down there (by
//! `nvml-wrapper`'s `Drop`, which calls `nvmlShutdown`). Each reading is sent
//! to the caller as plain data ([`GpuSnapshot`]) over a bounded channel; a
//! full channel drops the snapshot and counts it ([`NvmlSampler::dropped`]),
//! so a caller that stops draining never grows memory without bound.
//!
//! A failed read of one field gives `None` (or an empty process list) for that
//! field in that snapshot; the sampler carries on. A machine without the
//! library, without a GPU, or whose driver refuses to initialise gives
//! [`GpuUnavailable`] from [`NvmlSampler::start`] with a one-line reason for
//! the report, never a panic.
//!
//! Memory is read with `nvmlDeviceGetMemoryInfo_v2` (what `nvml-wrapper`
//! 0.13 calls; `used` excludes the driver's reserved memory). Drivers that
//! lack the v2 call fall back to `nvmlDeviceGetMemoryInfo` (whose `used`
//! includes the reserved memory).
//!
//! Utilisation (`nvmlDeviceGetUtilizationRates`) is a duty cycle: the
//! share of the sample period in which any kernel ran, so one small kernel
//! keeps it near 100 % long before the GPU is saturated. Where the GPU has
//! GPM (GPU Performance Monitoring: Hopper and later, asked with
//! `nvmlGpmQueryDeviceSupport` once at start), the thread also reads what
//! does measure pressure ([`GpmStat`]): graphics engine activity, SM
//! activity and occupancy, tensor pipe activity and DRAM bandwidth, each
//! computed by NVML between the previous tick's GPM sample and this one's.
//! A GPU without GPM gives none of these, and no error.
//!
//! [`NvmlSource`] is the sampler as a [`super::Source`]: its readings
//! under the DCGM queries' names ([`readings`], pure).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::gpm_metrics_get;
use nvml_wrapper::{Device, GpmSample, Nvml};

use super::{AfterRun, Reading, SampledStore, Source};
use crate::report::{GpuModel, GpuModelSource};
use crate::stats::Aggregate;

/// The library NVML is loaded from when [`NvmlOptions::lib_path`] is `None`
/// (the dynamic loader's search path applies).
pub const DEFAULT_LIB: &str = "libnvidia-ml.so.1";

/// The default sampling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Snapshots the channel holds before new ones are dropped (and counted):
/// over an hour at the default interval.
const CHANNEL_CAPACITY: usize = 4096;

/// How long [`NvmlSampler::start`] waits for NVML to initialise.
const INIT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long [`NvmlSampler::stop`] waits for a read in progress to finish
/// before it leaves the thread behind.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest interval the sampler honours.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// How the sampler finds NVML and how often it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmlOptions {
    /// The NVML shared library; `None` loads [`DEFAULT_LIB`].
    pub lib_path: Option<PathBuf>,
    /// Time between readings (at least 1 ms).
    pub interval: Duration,
}

impl Default for NvmlOptions {
    fn default() -> Self {
        Self {
            lib_path: None,
            interval: DEFAULT_INTERVAL,
        }
    }
}

/// Why GPU sampling is not available, in one line for the report:
/// `GPU: not available (<reason>)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("GPU: not available ({reason})")]
pub struct GpuUnavailable {
    /// The reason alone, e.g. `libnvidia-ml.so.1 not found`, `no GPU found`,
    /// `NVML init failed: NVIDIA driver is not loaded`.
    pub reason: String,
}

impl GpuUnavailable {
    fn new(reason: impl Into<String>) -> Self {
        // One line, whatever the loader or driver said.
        let reason = reason
            .into()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Self { reason }
    }
}

/// A GPU as NVML names it, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// NVML's device index.
    pub index: u32,
    /// `GPU-…` UUID (`unknown` when NVML would not say).
    pub uuid: String,
    /// Product name (`unknown` when NVML would not say).
    pub name: String,
    /// Whether NVML computes GPM metrics for it (Hopper and later).
    pub gpm: bool,
}

/// One reading of every GPU, taken at `at` on the run clock.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSnapshot {
    /// When the reading started, since the run clock's start.
    pub at: Duration,
    /// One entry per GPU, in index order.
    pub gpus: Vec<GpuStat>,
}

/// One GPU's values in a [`GpuSnapshot`]. A field NVML failed to read is
/// `None` (processes: empty).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuStat {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    /// Share of the last sample period a kernel was running, 0–100.
    pub util_percent: Option<u32>,
    /// Share of the last sample period device memory was read or written, 0–100.
    pub mem_util_percent: Option<u32>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub power_watts: Option<f64>,
    pub temperature_c: Option<u32>,
    /// Running compute processes: (pid, GPU memory used in bytes). Processes
    /// whose memory NVML reports as unavailable are left out.
    pub processes: Vec<(u32, u64)>,
    /// GPM metrics since the previous snapshot; `None` without GPM, and at
    /// the first snapshot (a GPM metric needs two samples).
    pub gpm: Option<GpmStat>,
}

/// A GPU's GPM metrics over one interval, each 0–100 as NVML gives them;
/// a metric NVML did not compute this time is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpmStat {
    /// Share of time the graphics/compute engine was active
    /// (`NVML_GPM_METRIC_GRAPHICS_UTIL`, DCGM's `GR_ENGINE_ACTIVE`).
    pub graphics_active: Option<f64>,
    /// Share of SM cycles with at least one warp assigned, over all SMs
    /// (`SM_UTIL`, DCGM's `SM_ACTIVE`).
    pub sm_active: Option<f64>,
    /// Resident warps against the SMs' maximum (`SM_OCCUPANCY`).
    pub sm_occupancy: Option<f64>,
    /// Share of cycles any tensor pipe was active (`ANY_TENSOR_UTIL`,
    /// DCGM's `PIPE_TENSOR_ACTIVE`).
    pub tensor_active: Option<f64>,
    /// Share of DRAM bandwidth used (`DRAM_BW_UTIL`, DCGM's `DRAM_ACTIVE`).
    pub dram_active: Option<f64>,
}

/// One GPM metric: NVML's id, the name its reading goes by (the DCGM
/// profiling query's), and its field in [`GpmStat`].
struct GpmMetric {
    id: GpmMetricId,
    name: &'static str,
    field: fn(&mut GpmStat) -> &mut Option<f64>,
}

/// The GPM metrics read, in the order they are asked for.
const GPM_METRICS: [GpmMetric; 5] = [
    GpmMetric {
        id: GpmMetricId::GraphicsUtil,
        name: "gpu_graphics_active",
        field: |s| &mut s.graphics_active,
    },
    GpmMetric {
        id: GpmMetricId::SmUtil,
        name: "gpu_sm_active",
        field: |s| &mut s.sm_active,
    },
    GpmMetric {
        id: GpmMetricId::SmOccupancy,
        name: "gpu_sm_occupancy",
        field: |s| &mut s.sm_occupancy,
    },
    GpmMetric {
        id: GpmMetricId::AnyTensorUtil,
        name: "gpu_tensor_active",
        field: |s| &mut s.tensor_active,
    },
    GpmMetric {
        id: GpmMetricId::DramBwUtil,
        name: "gpu_dram_active",
        field: |s| &mut s.dram_active,
    },
];

impl GpmStat {
    /// The value of one metric (0–100).
    fn get(self, metric: &GpmMetric) -> Option<f64> {
        let mut copy = self;
        *(metric.field)(&mut copy)
    }
}

/// A running NVML sampler. Drain [`samples`](Self::samples) while it runs;
/// [`stop`](Self::stop) ends it and hands back what was not drained.
/// Dropping it without `stop` signals the thread to end and does not wait.
#[derive(Debug)]
pub struct NvmlSampler {
    gpus: Vec<GpuInfo>,
    driver_version: Option<String>,
    samples: Receiver<GpuSnapshot>,
    dropped: Arc<AtomicU64>,
    stop: Option<mpsc::Sender<()>>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// What the thread reports once NVML is up (or why it is not).
type Ready = Result<(Vec<GpuInfo>, Option<String>), GpuUnavailable>;

impl NvmlSampler {
    /// Loads NVML on a new thread and starts reading every
    /// `options.interval`, the first reading at once. `clock_start` is the
    /// run clock's zero: every snapshot's `at` is measured from it.
    ///
    /// Returns [`GpuUnavailable`] when the library cannot be loaded, NVML
    /// does not initialise (within 15 s), or it reports no GPU.
    pub fn start(options: NvmlOptions, clock_start: Instant) -> Result<Self, GpuUnavailable> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Ready>(1);
        let (sample_tx, samples) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel::<()>();
        let dropped = Arc::new(AtomicU64::new(0));
        let thread_dropped = Arc::clone(&dropped);
        let thread = std::thread::Builder::new()
            .name("infercheck-nvml".into())
            .spawn(move || {
                // Dropped when the thread ends, however it ends: `stop` waits
                // on the disconnection.
                let _done = done_tx;
                let worker = Worker {
                    interval: options.interval.max(MIN_INTERVAL),
                    clock_start,
                    samples: sample_tx,
                    stop: stop_rx,
                    dropped: thread_dropped,
                };
                worker.run(options.lib_path, ready_tx);
            })
            .map_err(|e| GpuUnavailable::new(format!("could not start the NVML thread: {e}")))?;

        match ready_rx.recv_timeout(INIT_TIMEOUT) {
            Ok(Ok((gpus, driver_version))) => Ok(Self {
                gpus,
                driver_version,
                samples,
                dropped,
                stop: Some(stop_tx),
                done,
                thread: Some(thread),
            }),
            Ok(Err(unavailable)) => {
                // The thread returns right after reporting.
                let _ = thread.join();
                Err(unavailable)
            }
            // `stop_tx` is dropped on return: the thread ends once init does.
            Err(RecvTimeoutError::Timeout) => Err(GpuUnavailable::new(format!(
                "NVML init did not finish within {} s",
                INIT_TIMEOUT.as_secs()
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                Err(GpuUnavailable::new(
                    "NVML init failed: the NVML thread panicked",
                ))
            }
        }
    }

    /// The GPUs being read, in index order.
    pub fn gpus(&self) -> &[GpuInfo] {
        &self.gpus
    }

    /// The driver version NVML reports, when it does.
    pub fn driver_version(&self) -> Option<&str> {
        self.driver_version.as_deref()
    }

    /// Snapshots as they are taken; drain with `try_recv` or `recv_timeout`.
    pub fn samples(&self) -> &Receiver<GpuSnapshot> {
        &self.samples
    }

    /// Snapshots dropped because the channel was full (the caller did not
    /// drain it).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops the sampler: a reading in progress finishes (the thread is
    /// left behind if it takes longer than 2 s), NVML is shut down, and the
    /// snapshots not yet drained are returned in order.
    pub fn stop(mut self) -> Vec<GpuSnapshot> {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            // `done` disconnects when the thread function returns.
            if let Err(RecvTimeoutError::Disconnected) = self.done.recv_timeout(STOP_TIMEOUT) {
                let _ = thread.join();
            }
        }
        self.samples.try_iter().collect()
    }
}

impl Drop for NvmlSampler {
    fn drop(&mut self) {
        // Signal only; `stop` is the place that waits.
        self.stop.take();
    }
}

/// The sampling thread's state.
struct Worker {
    interval: Duration,
    clock_start: Instant,
    samples: SyncSender<GpuSnapshot>,
    stop: Receiver<()>,
    dropped: Arc<AtomicU64>,
}

impl Worker {
    fn run(self, lib_path: Option<PathBuf>, ready: SyncSender<Ready>) {
        let nvml = match init(lib_path.as_deref()) {
            Ok(nvml) => nvml,
            Err(unavailable) => {
                let _ = ready.send(Err(unavailable));
                return;
            }
        };
        let devices = match open_devices(&nvml) {
            Ok(devices) => devices,
            Err(unavailable) => {
                let _ = ready.send(Err(unavailable));
                return;
            }
        };
        let infos = devices.iter().map(|(info, _)| info.clone()).collect();
        if ready
            .send(Ok((infos, nvml.sys_driver_version().ok())))
            .is_err()
        {
            return;
        }
        drop(ready);

        // Fixed rate: tick k is due at first + k × interval; ticks missed by a
        // slow read are skipped rather than bunched.
        let first = Instant::now();
        let mut tick: u32 = 0;
        // Each GPM-capable GPU's sample from the previous tick.
        let mut gpm_before: Vec<Option<GpmSample<'_>>> = devices.iter().map(|_| None).collect();
        loop {
            let snapshot = GpuSnapshot {
                at: self.clock_start.elapsed(),
                gpus: devices
                    .iter()
                    .zip(&mut gpm_before)
                    .map(|((info, device), before)| read_gpu(&nvml, info, device, before))
                    .collect(),
            };
            match self.samples.try_send(snapshot) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
            let now = Instant::now();
            let mut due = first + self.interval * tick;
            while due <= now {
                tick = tick.saturating_add(1);
                due = first + self.interval * tick;
            }
            match self.stop.recv_timeout(due - now) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Loads and initialises NVML, naming the failure in one line.
fn init(lib_path: Option<&std::path::Path>) -> Result<Nvml, GpuUnavailable> {
    let lib: &OsStr = lib_path.map_or(OsStr::new(DEFAULT_LIB), |p| p.as_os_str());
    let shown = lib.to_string_lossy();
    Nvml::builder().lib_path(lib).init().map_err(|e| match e {
        NvmlError::LibloadingError(load) => {
            let detail = load.to_string();
            if detail.contains("No such file") {
                GpuUnavailable::new(format!("{shown} not found"))
            } else {
                GpuUnavailable::new(format!("could not load {shown}: {detail}"))
            }
        }
        other => GpuUnavailable::new(format!("NVML init failed: {other}")),
    })
}

/// Every GPU NVML can open, with its name and UUID.
fn open_devices(nvml: &Nvml) -> Result<Vec<(GpuInfo, Device<'_>)>, GpuUnavailable> {
    let count = nvml
        .device_count()
        .map_err(|e| GpuUnavailable::new(format!("NVML could not count GPUs: {e}")))?;
    if count == 0 {
        return Err(GpuUnavailable::new("no GPU found"));
    }
    let mut devices = Vec::with_capacity(count as usize);
    let mut last_error = None;
    for index in 0..count {
        match nvml.device_by_index(index) {
            Ok(device) => {
                let info = GpuInfo {
                    index,
                    uuid: device.uuid().unwrap_or_else(|_| "unknown".into()),
                    name: device.name().unwrap_or_else(|_| "unknown".into()),
                    // A driver without the GPM calls has no GPM either.
                    gpm: device.gpm_support().unwrap_or(false),
                };
                devices.push((info, device));
            }
            Err(e) => last_error = Some(e),
        }
    }
    match (devices.is_empty(), last_error) {
        (true, Some(e)) => Err(GpuUnavailable::new(format!(
            "none of {count} GPUs could be opened: {e}"
        ))),
        _ => Ok(devices),
    }
}

/// One GPU's values; each field on its own, so one failed call costs one
/// field. `gpm_before` is its GPM sample from the previous tick (replaced
/// by this tick's).
fn read_gpu<'nvml>(
    nvml: &'nvml Nvml,
    info: &GpuInfo,
    device: &Device<'nvml>,
    gpm_before: &mut Option<GpmSample<'nvml>>,
) -> GpuStat {
    let util = device.utilization_rates().ok();
    let memory = memory_used_total(nvml, device);
    GpuStat {
        index: info.index,
        uuid: info.uuid.clone(),
        name: info.name.clone(),
        util_percent: util.as_ref().map(|u| u.gpu),
        mem_util_percent: util.as_ref().map(|u| u.memory),
        mem_used_bytes: memory.map(|(used, _)| used),
        mem_total_bytes: memory.map(|(_, total)| total),
        power_watts: device
            .power_usage()
            .ok()
            .map(|milliwatts| f64::from(milliwatts) / 1000.0),
        temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
        processes: device
            .running_compute_processes()
            .map(|processes| {
                processes
                    .into_iter()
                    .filter_map(|p| match p.used_gpu_memory {
                        UsedGpuMemory::Used(bytes) => Some((p.pid, bytes)),
                        UsedGpuMemory::Unavailable => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        gpm: info
            .gpm
            .then(|| read_gpm(nvml, device, gpm_before))
            .flatten(),
    }
}

/// The GPM metrics between the previous tick's sample and one taken now
/// (which becomes the next tick's `before`). `None` when there is no
/// previous sample to compare with; a failed sample or computation gives
/// every metric `None` (gaps), and the next tick starts afresh.
fn read_gpm<'nvml>(
    nvml: &'nvml Nvml,
    device: &Device<'nvml>,
    before: &mut Option<GpmSample<'nvml>>,
) -> Option<GpmStat> {
    let Ok(now) = device.gpm_sample() else {
        *before = None;
        return Some(GpmStat::default());
    };
    let earlier = before.replace(now)?;
    let now = before.as_ref()?;
    let ids = GPM_METRICS.map(|m| m.id);
    let Ok(results) = gpm_metrics_get(nvml, &earlier, now, &ids) else {
        *before = None;
        return Some(GpmStat::default());
    };
    let mut stat = GpmStat::default();
    for (metric, result) in GPM_METRICS.iter().zip(results) {
        *(metric.field)(&mut stat) = result
            .ok()
            .filter(|r| r.metric_id == metric.id && r.value.is_finite())
            .map(|r| r.value);
    }
    Some(stat)
}

/// (used, total) bytes: the v2 call, or v1 where the driver has no v2.
fn memory_used_total(nvml: &Nvml, device: &Device<'_>) -> Option<(u64, u64)> {
    match device.memory_info() {
        Ok(memory) => Some((memory.used, memory.total)),
        Err(
            NvmlError::FailedToLoadSymbol(_)
            | NvmlError::FunctionNotFound
            | NvmlError::NotSupported
            // NVML_ERROR_ARGUMENT_VERSION_MISMATCH, which nvml-wrapper does not name.
            | NvmlError::UnexpectedVariant(25),
        ) => memory_v1(nvml, device),
        Err(_) => None,
    }
}

fn memory_v1(nvml: &Nvml, device: &Device<'_>) -> Option<(u64, u64)> {
    use nvml_wrapper_sys::bindings::{nvmlMemory_t, nvmlReturn_enum_NVML_SUCCESS};
    let call = nvml.lib().nvmlDeviceGetMemoryInfo.as_ref().ok()?;
    let mut memory = nvmlMemory_t {
        total: 0,
        free: 0,
        used: 0,
    };
    // SAFETY: `call` is the library's nvmlDeviceGetMemoryInfo with the
    // signature from NVML's header; the handle belongs to this `nvml`, which
    // is still initialised; `memory` outlives the call.
    let code = unsafe { call(device.handle(), &mut memory) };
    (code == nvmlReturn_enum_NVML_SUCCESS).then_some((memory.used, memory.total))
}

/// NVML as a [`Source`], under the names the DCGM queries use, so a
/// threshold or a report row reads the same whichever gave the value:
/// `gpu_util` (busiest GPU, ratio), `vram_used` (fullest GPU, bytes),
/// `vram_free` (least free, bytes), `gpu_power` (all GPUs, watts),
/// `gpu_temp` (hottest, °C), and with a target pid `target_vram` (its GPU
/// memory on every GPU, bytes); where a GPU has GPM, the DCGM profiling
/// queries' `gpu_graphics_active`, `gpu_sm_active`, `gpu_sm_occupancy`,
/// `gpu_tensor_active` and `gpu_dram_active` (busiest GPU, ratio). The
/// thread takes its own readings; each tick drains them, stamped with the
/// instant they were taken.
pub struct NvmlSource {
    sampler: Option<NvmlSampler>,
    target_pid: Option<u32>,
    /// The run clock's zero on the sampler's own clock (which started when
    /// NVML did, before the run): snapshots are shifted by it, and those
    /// taken before the run are left out.
    run_offset: Option<Duration>,
    sampler_start: Instant,
}

/// The values NVML yields: (name, unit, how a run sums it up, reading).
type Mapping = (
    &'static str,
    &'static str,
    Aggregate,
    fn(&[GpuStat], Option<u32>) -> Option<f64>,
);

const MAPPINGS: [Mapping; 6] = [
    ("gpu_util", "ratio", Aggregate::Max, |g, _| {
        max(g
            .iter()
            .filter_map(|g| g.util_percent.map(|u| f64::from(u) / 100.0)))
    }),
    ("vram_used", "bytes", Aggregate::Max, |g, _| {
        max(g.iter().filter_map(|g| g.mem_used_bytes.map(|b| b as f64)))
    }),
    ("vram_free", "bytes", Aggregate::Min, |g, _| {
        g.iter()
            .filter_map(|g| Some(g.mem_total_bytes?.saturating_sub(g.mem_used_bytes?) as f64))
            .reduce(f64::min)
    }),
    ("gpu_power", "watts", Aggregate::Max, |g, _| {
        g.iter().filter_map(|g| g.power_watts).reduce(|a, b| a + b)
    }),
    ("gpu_temp", "celsius", Aggregate::Max, |g, _| {
        max(g.iter().filter_map(|g| g.temperature_c.map(f64::from)))
    }),
    ("target_vram", "bytes", Aggregate::Max, |g, pid| {
        let pid = pid?;
        let used = g
            .iter()
            .flat_map(|g| &g.processes)
            .filter(|(p, _)| *p == pid);
        Some(used.map(|(_, bytes)| *bytes as f64).sum())
    }),
];

fn max(values: impl Iterator<Item = f64>) -> Option<f64> {
    values.reduce(f64::max)
}

/// One snapshot's readings under the DCGM names (`target_vram` only with
/// a pid; the GPM values only when some GPU gave GPM metrics since the
/// snapshot before). A value no GPU could give is a gap, never a zero.
pub fn readings(snapshot: &GpuSnapshot, target_pid: Option<u32>) -> Vec<Reading> {
    let t = snapshot.at.as_secs_f64();
    let reading = |name: &str, unit, aggregate, value| Reading {
        name: name.to_owned(),
        unit,
        t,
        value,
        aggregate,
        query_latency_ms: None,
        source: "nvml",
    };
    let basic = MAPPINGS
        .iter()
        .filter(|(name, ..)| target_pid.is_some() || *name != "target_vram")
        .map(|&(name, unit, aggregate, read)| {
            reading(name, unit, aggregate, read(&snapshot.gpus, target_pid))
        });
    let gpm: Vec<GpmStat> = snapshot.gpus.iter().filter_map(|g| g.gpm).collect();
    let pressure = GPM_METRICS
        .iter()
        .filter(|_| !gpm.is_empty())
        .map(|metric| {
            let busiest = max(gpm.iter().filter_map(|g| g.get(metric)));
            reading(
                metric.name,
                "ratio",
                Aggregate::Max,
                busiest.map(|p| p / 100.0),
            )
        });
    basic.chain(pressure).collect()
}

/// The GPUs as the report names them: one entry per product name, with
/// how many there are and how many give GPM metrics.
pub fn gpu_models(gpus: &[GpuInfo]) -> Vec<GpuModel> {
    let mut models: Vec<GpuModel> = Vec::new();
    for gpu in gpus {
        let model = match models.iter_mut().find(|m| m.model == gpu.name) {
            Some(model) => model,
            None => {
                models.push(GpuModel {
                    source: GpuModelSource::Nvml,
                    model: gpu.name.clone(),
                    count: 0,
                    hosts: Vec::new(),
                    gpm: Some(0),
                });
                models.last_mut().expect("just pushed")
            }
        };
        model.count += 1;
        if gpu.gpm {
            model.gpm = model.gpm.map(|n| n + 1);
        }
    }
    models
}

impl NvmlSource {
    /// Every name NVML can yield (with a pid, and a GPU with GPM).
    pub const NAMES: [&'static str; 11] = [
        "gpu_util",
        "vram_used",
        "vram_free",
        "gpu_power",
        "gpu_temp",
        "target_vram",
        "gpu_graphics_active",
        "gpu_sm_active",
        "gpu_sm_occupancy",
        "gpu_tensor_active",
        "gpu_dram_active",
    ];

    /// The GPUs being read (none once stopped).
    pub fn gpus(&self) -> &[GpuInfo] {
        self.sampler.as_ref().map_or(&[], |s| s.gpus())
    }

    /// Starts NVML when `options` asks for it (before the run clock does:
    /// an init can take seconds), with the report's one line on the GPUs:
    /// which were found, or why none could be read.
    pub fn start(
        options: Option<&NvmlOptions>,
        target_pid: Option<u32>,
    ) -> (Option<NvmlSource>, Option<String>) {
        let Some(options) = options else {
            return (None, None);
        };
        let sampler_start = Instant::now();
        match NvmlSampler::start(options.clone(), sampler_start) {
            Ok(sampler) => {
                let names: Vec<String> = sampler
                    .gpus()
                    .iter()
                    .map(|g| format!("{} {}", g.index, g.name))
                    .collect();
                let line = format!("GPU: {} via NVML ({})", names.len(), names.join(", "));
                let source = NvmlSource {
                    sampler: Some(sampler),
                    target_pid,
                    run_offset: None,
                    sampler_start,
                };
                (Some(source), Some(line))
            }
            Err(unavailable) => (None, Some(unavailable.to_string())),
        }
    }

    /// The readings of `snapshots` on the run clock; those taken before
    /// the run started (or before `begin`) are left out.
    fn on_run_clock(&self, snapshots: Vec<GpuSnapshot>) -> Vec<Reading> {
        let Some(offset) = self.run_offset else {
            return Vec::new();
        };
        snapshots
            .into_iter()
            .filter(|s| s.at >= offset)
            .map(|s| GpuSnapshot {
                at: s.at - offset,
                gpus: s.gpus,
            })
            .flat_map(|s| readings(&s, self.target_pid))
            .collect()
    }

    fn drained(&self) -> Vec<Reading> {
        let Some(sampler) = &self.sampler else {
            return Vec::new();
        };
        self.on_run_clock(sampler.samples().try_iter().collect())
    }
}

impl Source for NvmlSource {
    fn describe(&self) -> String {
        "nvml".to_owned()
    }

    /// The GPM names only when some GPU has GPM: otherwise the DCGM
    /// profiling queries keep them.
    fn names(&self) -> Vec<String> {
        let with_pid = self.target_pid.is_some();
        let with_gpm = self.gpus().iter().any(|g| g.gpm);
        let gpm = |n: &str| GPM_METRICS.iter().any(|m| m.name == n);
        Self::NAMES
            .iter()
            .filter(|n| with_pid || **n != "target_vram")
            .filter(|n| with_gpm || !gpm(n))
            .map(|n| (*n).to_owned())
            .collect()
    }

    fn begin(&mut self, run_start: tokio::time::Instant) {
        self.run_offset = Some(
            run_start
                .into_std()
                .saturating_duration_since(self.sampler_start),
        );
    }

    fn sample(&mut self, _t: f64) -> BoxFuture<'_, Vec<Reading>> {
        Box::pin(std::future::ready(self.drained()))
    }

    /// Stops the thread (off the async workers: a read in progress may
    /// take up to 2 s) and stores what it took since the last tick.
    fn finish<'a>(
        &'a mut self,
        _window: (i64, i64),
        store: &'a mut SampledStore,
    ) -> BoxFuture<'a, AfterRun> {
        Box::pin(async move {
            let rest = match self.sampler.take() {
                Some(sampler) => tokio::task::spawn_blocking(move || sampler.stop())
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            for reading in self.on_run_clock(rest) {
                store.add(reading);
            }
            AfterRun::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(index: u32, util: Option<u32>, used: Option<u64>) -> GpuStat {
        GpuStat {
            index,
            uuid: format!("GPU-{index}"),
            name: "Fake".into(),
            util_percent: util,
            mem_util_percent: util.map(|u| u / 2),
            mem_used_bytes: used,
            mem_total_bytes: Some(1000),
            power_watts: util.map(|u| f64::from(u) * 3.0),
            temperature_c: Some(40 + util.unwrap_or(0) / 10),
            processes: Vec::new(),
            gpm: None,
        }
    }

    fn snap(secs: u64, gpus: Vec<GpuStat>) -> GpuSnapshot {
        GpuSnapshot {
            at: Duration::from_secs(secs),
            gpus,
        }
    }

    /// (name, value) of a snapshot's readings.
    fn values(snapshot: &GpuSnapshot, pid: Option<u32>) -> Vec<(String, Option<f64>)> {
        readings(snapshot, pid)
            .into_iter()
            .map(|r| (r.name, r.value))
            .collect()
    }

    fn value(snapshot: &GpuSnapshot, pid: Option<u32>, name: &str) -> Option<f64> {
        values(snapshot, pid)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
    }

    #[test]
    fn one_gpu_reads_under_the_dcgm_names() {
        let s = snap(3, vec![stat(0, Some(90), Some(700))]);
        assert_eq!(
            values(&s, None),
            [
                ("gpu_util".to_owned(), Some(0.9)),
                ("vram_used".to_owned(), Some(700.0)),
                ("vram_free".to_owned(), Some(300.0)),
                ("gpu_power".to_owned(), Some(270.0)),
                ("gpu_temp".to_owned(), Some(49.0)),
            ]
        );
        assert!(
            readings(&s, None)
                .iter()
                .all(|r| r.t == 3.0 && r.source == "nvml")
        );
    }

    #[test]
    fn several_gpus_combine_as_the_dcgm_queries_do() {
        // Busiest, fullest, least free, hottest; power summed.
        let s = snap(
            0,
            vec![stat(0, Some(10), Some(600)), stat(1, Some(70), Some(100))],
        );
        assert_eq!(value(&s, None, "gpu_util"), Some(0.7));
        assert_eq!(value(&s, None, "vram_used"), Some(600.0));
        assert_eq!(value(&s, None, "vram_free"), Some(400.0));
        assert_eq!(value(&s, None, "gpu_power"), Some(240.0));
        assert_eq!(value(&s, None, "gpu_temp"), Some(47.0));
    }

    #[test]
    fn failed_reads_are_gaps_not_zeros() {
        let s = snap(1, vec![stat(0, None, None)]);
        for name in ["gpu_util", "vram_used", "vram_free", "gpu_power"] {
            assert_eq!(value(&s, None, name), None, "{name}");
        }
        // One GPU read, the other not: the one that was read counts.
        let s = snap(1, vec![stat(0, None, None), stat(1, Some(40), Some(300))]);
        assert_eq!(value(&s, None, "gpu_util"), Some(0.4));
    }

    #[test]
    fn a_target_pid_adds_its_gpu_memory() {
        let mut a = stat(0, Some(10), Some(100));
        a.processes = vec![(7, 50), (3, 10)];
        let mut b = stat(1, Some(20), Some(200));
        b.processes = vec![(7, 40), (9, 90)];
        let s = snap(0, vec![a, b]);
        assert_eq!(value(&s, Some(7), "target_vram"), Some(90.0));
        assert_eq!(value(&s, Some(42), "target_vram"), Some(0.0));
        assert!(values(&s, None).iter().all(|(n, _)| n != "target_vram"));
    }

    #[test]
    fn snapshots_are_put_on_the_run_clock_and_earlier_ones_left_out() {
        let mut source = NvmlSource {
            sampler: None,
            target_pid: None,
            run_offset: None,
            sampler_start: Instant::now(),
        };
        let snapshots = || {
            vec![
                GpuSnapshot {
                    at: Duration::from_millis(50),
                    gpus: vec![stat(0, Some(10), Some(1))],
                },
                GpuSnapshot {
                    at: Duration::from_millis(350),
                    gpus: vec![stat(0, Some(50), Some(1))],
                },
            ]
        };
        assert!(source.on_run_clock(snapshots()).is_empty(), "not begun yet");
        source.begin(tokio::time::Instant::from_std(
            source.sampler_start + Duration::from_millis(100),
        ));
        let util: Vec<(f64, Option<f64>)> = source
            .on_run_clock(snapshots())
            .into_iter()
            .filter(|r| r.name == "gpu_util")
            .map(|r| (r.t, r.value))
            .collect();
        assert_eq!(util, [(0.25, Some(0.5))]);
    }

    #[test]
    fn unavailable_reason_is_one_line() {
        let e = GpuUnavailable::new("could not load x:\n  bad ELF\theader");
        assert_eq!(e.reason, "could not load x: bad ELF header");
        assert_eq!(
            e.to_string(),
            "GPU: not available (could not load x: bad ELF header)"
        );
    }

    #[test]
    fn missing_library_is_unavailable_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libnvidia-ml.so.1");
        let started = Instant::now();
        let err = NvmlSampler::start(
            NvmlOptions {
                lib_path: Some(lib.clone()),
                interval: Duration::from_millis(10),
            },
            Instant::now(),
        )
        .unwrap_err();
        assert_eq!(err.reason, format!("{} not found", lib.display()));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
