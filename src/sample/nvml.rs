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
//! [`summarize`] is pure: peaks and means over a slice of snapshots.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

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
        loop {
            let snapshot = GpuSnapshot {
                at: self.clock_start.elapsed(),
                gpus: devices
                    .iter()
                    .map(|(info, device)| read_gpu(&nvml, info, device))
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

/// One GPU's values; each field on its own, so one failed call costs one field.
fn read_gpu(nvml: &Nvml, info: &GpuInfo, device: &Device<'_>) -> GpuStat {
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
    }
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

/// Peaks and means over a run's snapshots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuSummary {
    /// Snapshots summarised.
    pub snapshots: usize,
    /// Highest utilisation of any GPU in any snapshot.
    pub peak_util_percent: Option<u32>,
    /// Mean utilisation over every GPU reading.
    pub mean_util_percent: Option<f64>,
    /// Highest memory used by any one GPU.
    pub peak_mem_used_bytes: Option<u64>,
    /// Highest memory used summed over the GPUs of one snapshot.
    pub peak_total_mem_used_bytes: Option<u64>,
    /// Memory installed, summed over the GPUs (largest seen per GPU).
    pub mem_total_bytes: Option<u64>,
    /// Highest power of any one GPU.
    pub peak_power_watts: Option<f64>,
    /// Highest temperature of any one GPU.
    pub peak_temperature_c: Option<u32>,
    /// Per GPU, in index order.
    pub gpus: Vec<GpuStatSummary>,
}

/// One GPU's peaks and means.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuStatSummary {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    /// Snapshots that carried this GPU.
    pub readings: usize,
    pub peak_util_percent: Option<u32>,
    pub mean_util_percent: Option<f64>,
    pub peak_mem_util_percent: Option<u32>,
    pub peak_mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub peak_power_watts: Option<f64>,
    pub mean_power_watts: Option<f64>,
    pub peak_temperature_c: Option<u32>,
    /// Highest memory each process held, by pid (ascending).
    pub peak_process_bytes: Vec<(u32, u64)>,
}

/// Running per-GPU accumulation for [`summarize`].
struct Acc {
    summary: GpuStatSummary,
    util_sum: f64,
    util_n: usize,
    power_sum: f64,
    power_n: usize,
}

/// Summarises snapshots (any order); fields never read are `None`.
pub fn summarize(snapshots: &[GpuSnapshot]) -> GpuSummary {
    let mut per_gpu: Vec<Acc> = Vec::new();
    let mut peak_total_used: Option<u64> = None;
    for snapshot in snapshots {
        let mut total_used: Option<u64> = None;
        for stat in &snapshot.gpus {
            let acc = match per_gpu.iter().position(|a| a.summary.index == stat.index) {
                Some(i) => &mut per_gpu[i],
                None => {
                    per_gpu.push(Acc::new(stat));
                    per_gpu.last_mut().expect("just pushed")
                }
            };
            acc.add(stat);
            if let Some(used) = stat.mem_used_bytes {
                total_used = Some(total_used.unwrap_or(0) + used);
            }
        }
        peak_total_used = max_opt(peak_total_used, total_used);
    }
    per_gpu.sort_by_key(|a| a.summary.index);

    let mut summary = GpuSummary {
        snapshots: snapshots.len(),
        peak_total_mem_used_bytes: peak_total_used,
        ..GpuSummary::default()
    };
    let (mut util_sum, mut util_n) = (0.0, 0);
    for acc in per_gpu {
        util_sum += acc.util_sum;
        util_n += acc.util_n;
        let gpu = acc.finish();
        summary.peak_util_percent = max_opt(summary.peak_util_percent, gpu.peak_util_percent);
        summary.peak_mem_used_bytes = max_opt(summary.peak_mem_used_bytes, gpu.peak_mem_used_bytes);
        if let Some(total) = gpu.mem_total_bytes {
            summary.mem_total_bytes = Some(summary.mem_total_bytes.unwrap_or(0) + total);
        }
        summary.peak_power_watts = max_f64(summary.peak_power_watts, gpu.peak_power_watts);
        summary.peak_temperature_c = max_opt(summary.peak_temperature_c, gpu.peak_temperature_c);
        summary.gpus.push(gpu);
    }
    summary.mean_util_percent = (util_n > 0).then(|| util_sum / util_n as f64);
    summary
}

impl Acc {
    fn new(stat: &GpuStat) -> Self {
        Self {
            summary: GpuStatSummary {
                index: stat.index,
                uuid: stat.uuid.clone(),
                name: stat.name.clone(),
                readings: 0,
                peak_util_percent: None,
                mean_util_percent: None,
                peak_mem_util_percent: None,
                peak_mem_used_bytes: None,
                mem_total_bytes: None,
                peak_power_watts: None,
                mean_power_watts: None,
                peak_temperature_c: None,
                peak_process_bytes: Vec::new(),
            },
            util_sum: 0.0,
            util_n: 0,
            power_sum: 0.0,
            power_n: 0,
        }
    }

    fn add(&mut self, stat: &GpuStat) {
        let s = &mut self.summary;
        s.readings += 1;
        s.peak_util_percent = max_opt(s.peak_util_percent, stat.util_percent);
        s.peak_mem_util_percent = max_opt(s.peak_mem_util_percent, stat.mem_util_percent);
        s.peak_mem_used_bytes = max_opt(s.peak_mem_used_bytes, stat.mem_used_bytes);
        s.mem_total_bytes = max_opt(s.mem_total_bytes, stat.mem_total_bytes);
        s.peak_power_watts = max_f64(s.peak_power_watts, stat.power_watts);
        s.peak_temperature_c = max_opt(s.peak_temperature_c, stat.temperature_c);
        if let Some(util) = stat.util_percent {
            self.util_sum += f64::from(util);
            self.util_n += 1;
        }
        if let Some(watts) = stat.power_watts {
            self.power_sum += watts;
            self.power_n += 1;
        }
        for &(pid, bytes) in &stat.processes {
            match s.peak_process_bytes.binary_search_by_key(&pid, |&(p, _)| p) {
                Ok(i) => s.peak_process_bytes[i].1 = s.peak_process_bytes[i].1.max(bytes),
                Err(i) => s.peak_process_bytes.insert(i, (pid, bytes)),
            }
        }
    }

    fn finish(mut self) -> GpuStatSummary {
        self.summary.mean_util_percent =
            (self.util_n > 0).then(|| self.util_sum / self.util_n as f64);
        self.summary.mean_power_watts =
            (self.power_n > 0).then(|| self.power_sum / self.power_n as f64);
        self.summary
    }
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn max_f64(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
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
        }
    }

    fn snap(secs: u64, gpus: Vec<GpuStat>) -> GpuSnapshot {
        GpuSnapshot {
            at: Duration::from_secs(secs),
            gpus,
        }
    }

    #[test]
    fn empty_summary_has_no_values() {
        let summary = summarize(&[]);
        assert_eq!(summary, GpuSummary::default());
    }

    #[test]
    fn summary_table() {
        struct Case {
            name: &'static str,
            snapshots: Vec<GpuSnapshot>,
            peak_util: Option<u32>,
            mean_util: Option<f64>,
            peak_used: Option<u64>,
            peak_total_used: Option<u64>,
            total: Option<u64>,
        }
        let cases = [
            Case {
                name: "ramp on one GPU",
                snapshots: (1..=9)
                    .map(|i| snap(i, vec![stat(0, Some(i as u32 * 10), Some(i * 100))]))
                    .collect(),
                peak_util: Some(90),
                mean_util: Some(50.0),
                peak_used: Some(900),
                peak_total_used: Some(900),
                total: Some(1000),
            },
            Case {
                name: "failed reads are skipped, not zeros",
                snapshots: vec![
                    snap(0, vec![stat(0, Some(20), Some(100))]),
                    snap(1, vec![stat(0, None, None)]),
                    snap(2, vec![stat(0, Some(40), Some(300))]),
                ],
                peak_util: Some(40),
                mean_util: Some(30.0),
                peak_used: Some(300),
                peak_total_used: Some(300),
                total: Some(1000),
            },
            Case {
                name: "two GPUs: peak of either, memory summed per snapshot",
                snapshots: vec![
                    snap(
                        0,
                        vec![stat(0, Some(10), Some(600)), stat(1, Some(70), Some(100))],
                    ),
                    snap(
                        1,
                        vec![stat(0, Some(30), Some(200)), stat(1, Some(50), Some(700))],
                    ),
                ],
                peak_util: Some(70),
                mean_util: Some(40.0),
                peak_used: Some(700),
                peak_total_used: Some(900),
                total: Some(2000),
            },
            Case {
                name: "nothing ever read",
                snapshots: vec![snap(0, vec![stat(0, None, None)])],
                peak_util: None,
                mean_util: None,
                peak_used: None,
                peak_total_used: None,
                total: Some(1000),
            },
        ];
        for case in cases {
            let s = summarize(&case.snapshots);
            assert_eq!(s.snapshots, case.snapshots.len(), "{}", case.name);
            assert_eq!(s.peak_util_percent, case.peak_util, "{}", case.name);
            assert_eq!(s.mean_util_percent, case.mean_util, "{}", case.name);
            assert_eq!(s.peak_mem_used_bytes, case.peak_used, "{}", case.name);
            assert_eq!(
                s.peak_total_mem_used_bytes, case.peak_total_used,
                "{}",
                case.name
            );
            assert_eq!(s.mem_total_bytes, case.total, "{}", case.name);
        }
    }

    #[test]
    fn summary_per_gpu_and_processes() {
        let mut a = stat(1, Some(10), Some(100));
        a.processes = vec![(7, 50), (3, 10)];
        let mut b = stat(1, Some(20), Some(200));
        b.processes = vec![(7, 40), (9, 90)];
        let c = stat(0, Some(5), Some(1));
        let s = summarize(&[snap(0, vec![a]), snap(1, vec![b, c])]);
        assert_eq!(s.gpus.len(), 2);
        assert_eq!(s.gpus[0].index, 0);
        assert_eq!(s.gpus[0].readings, 1);
        let gpu1 = &s.gpus[1];
        assert_eq!(gpu1.readings, 2);
        assert_eq!(gpu1.peak_util_percent, Some(20));
        assert_eq!(gpu1.mean_util_percent, Some(15.0));
        assert_eq!(gpu1.peak_mem_util_percent, Some(10));
        assert_eq!(gpu1.peak_power_watts, Some(60.0));
        assert_eq!(gpu1.mean_power_watts, Some(45.0));
        assert_eq!(gpu1.peak_temperature_c, Some(42));
        assert_eq!(gpu1.peak_process_bytes, vec![(3, 10), (7, 50), (9, 90)]);
        assert_eq!(s.peak_power_watts, Some(60.0));
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
