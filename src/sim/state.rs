//! State shared by every connection of one simulator: configuration, the
//! engines (one per model), server-wide counters, the fault state swapped
//! by `/admin/faults`, the metric families, the span exporter, and the stop
//! and crash flags. The request path reads atomics and the fault snapshot;
//! it takes no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::engine::{
    A10G, A10G_NAME, Engine, EngineContext, EngineSpec, Limits, SimGpu, StepCosts,
};
use super::faults::FaultState;
use super::gpu::{GpuIdentity, GpuSample};
use super::metrics::{EngineMetrics, Families};
use super::tokens::{Purpose, SimRng};
use super::trace::Tracing;

/// A snapshot of the simulator's counters and gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SimStats {
    /// Completion requests received (chat and text, malformed included).
    pub requests: u64,
    /// Requests that produced every output token.
    pub completed: u64,
    /// Faults injected: error statuses and broken streams.
    pub errors_injected: u64,
    /// Output tokens generated.
    pub output_tokens: u64,
    /// Prompt tokens of requests that were scheduled.
    pub prompt_tokens: u64,
    /// Requests in a batch now, all engines.
    pub running: u64,
    /// Requests queued now, all engines.
    pub waiting: u64,
    /// Requests decoding although their client left (orphan fault).
    pub orphaned: u64,
    /// Requests that kept decoding after their client left, ever.
    pub orphaned_total: u64,
    /// Requests the engine aborted (their client left, no orphan fault).
    pub aborted: u64,
}

/// The live counters behind [`SimStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub completed: AtomicU64,
    pub errors_injected: AtomicU64,
    pub output_tokens: AtomicU64,
    pub prompt_tokens: AtomicU64,
}

/// Adds to a counter. Relaxed ordering: the counters are independent
/// statistics, nothing is synchronised through them.
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Waits up to this long are not woken by a stop; longer ones (a stall)
/// are, so that stopping never hangs on them.
const SHORT_WAIT: Duration = Duration::from_millis(100);

/// One served model: its engine and metric handles.
#[derive(Debug)]
pub(crate) struct Served {
    pub engine: Engine,
    pub metrics: EngineMetrics,
}

/// Everything one simulator's handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: SimConfig,
    pub counters: Arc<Counters>,
    pub models: Vec<Served>,
    pub families: Families,
    faults: Arc<ArcSwap<FaultState>>,
    /// Told of every fault change, so idle engines refresh what they show.
    faults_changed: watch::Sender<()>,
    next_seq: AtomicU64,
    scrapes: AtomicU64,
    stopping: AtomicBool,
    crashed: AtomicBool,
    /// Wakes long waits (stalls) and ends the HTTP server and the engines.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// Builds the state and starts one engine per model on the current
    /// runtime. Fault windows are placed from `started`.
    pub fn new(config: SimConfig, tracing: Arc<Tracing>, started: Instant) -> Shared {
        let counters = Arc::new(Counters::default());
        let faults = Arc::new(ArcSwap::from_pointee(
            FaultState::new(config.faults.clone(), started)
                .with_resources(config.resource_faults, started),
        ));
        let (faults_changed, faults_seen) = watch::channel(());
        let families = Families::new(config.metric_naming).with_faults(config.telemetry_faults);
        let shutdown = CancellationToken::new();
        let ctx = EngineContext {
            faults: faults.clone(),
            faults_changed: faults_seen,
            tracing: tracing.clone(),
            counters: counters.clone(),
            shutdown: shutdown.clone(),
        };
        let models = config
            .models
            .iter()
            .enumerate()
            .map(|(i, model)| {
                let metrics = families.engine(&model.name);
                let spec = engine_spec(&config, &model.name, model.cost_factor);
                let gpu = SimGpu::new(
                    gpu_identity(config.seed, i as u32, &model.name),
                    A10G,
                    spec.weights_mib,
                    spec.kv_block_kib,
                );
                let engine = Engine::start(spec, gpu, metrics.clone(), ctx.clone());
                Served { engine, metrics }
            })
            .collect();
        Shared {
            config,
            counters,
            models,
            families,
            faults,
            faults_changed,
            next_seq: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            crashed: AtomicBool::new(false),
            shutdown,
        }
    }

    /// The engine serving `model` (the first when `None`).
    pub fn served(&self, model: Option<&str>) -> Option<&Served> {
        match model {
            None => self.models.first(),
            Some(name) => self.models.iter().find(|m| m.engine.model == name),
        }
    }

    pub fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        let sum = |f: &dyn Fn(&EngineMetrics) -> f64| {
            self.models.iter().map(|m| f(&m.metrics)).sum::<f64>() as u64
        };
        SimStats {
            requests: get(&c.requests),
            completed: get(&c.completed),
            errors_injected: get(&c.errors_injected),
            output_tokens: get(&c.output_tokens),
            prompt_tokens: get(&c.prompt_tokens),
            running: sum(&|m| m.running.get()),
            waiting: sum(&|m| m.waiting.get()),
            orphaned: sum(&|m| m.orphaned_running.get() as f64),
            orphaned_total: sum(&|m| m.orphaned_total.get() as f64),
            aborted: sum(&|m| m.success_abort.get() as f64),
        }
    }

    /// The fault state in force.
    pub fn faults(&self) -> Arc<FaultState> {
        self.faults.load_full()
    }

    /// Replaces the faults (their windows already placed) and tells the
    /// engines.
    pub fn set_faults(&self, state: FaultState) {
        self.faults.store(Arc::new(state));
        self.faults_changed.send_replace(());
    }

    /// The next request sequence number (0, 1, 2, ... in arrival order).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// An RNG for the n-th `/metrics` scrape's fault draw.
    pub fn scrape_rng(&self) -> SimRng {
        let n = self.scrapes.fetch_add(1, Ordering::Relaxed);
        SimRng::for_request(self.config.seed, n, Purpose::Metrics)
    }

    /// Every simulated GPU and its reading now, the GPU memory climb
    /// included.
    pub fn gpu_samples(&self) -> Vec<GpuSample> {
        let now = Instant::now();
        let climbed_mib = self.faults().climbed_mib(now);
        self.models
            .iter()
            .map(|m| GpuSample {
                identity: m.engine.gpu.identity.clone(),
                reading: m.engine.gpu.reading(now, climbed_mib),
            })
            .collect()
    }

    /// Starts shutting down: engines abort what they hold, the HTTP server
    /// stops accepting.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.shutdown.cancel();
    }

    /// The crash fault: like a stop, but open connections are cut.
    pub fn crash(&self) {
        self.crashed.store(true, Ordering::Relaxed);
        self.stop();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn is_crashed(&self) -> bool {
        self.crashed.load(Ordering::Relaxed)
    }

    /// Holds back a response that would start inside a stall window.
    /// Returns `false` when the server stopped meanwhile.
    pub async fn wait_out_stall(&self) -> bool {
        let now = Instant::now();
        let at = self.faults().release_at(now);
        at == now || self.sleep_or_stop(at).await
    }

    /// Sleeps until `at`; `false` when the server stopped first.
    pub async fn sleep_or_stop(&self, at: Instant) -> bool {
        if at.saturating_duration_since(Instant::now()) <= SHORT_WAIT {
            tokio::time::sleep_until(at).await;
            return !self.is_stopping();
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }
}

/// The engine of `model` under `config`, its costs scaled by `factor`.
fn engine_spec(config: &SimConfig, model: &str, factor: f64) -> EngineSpec {
    let factor = if factor.is_finite() && factor > 0.0 {
        factor
    } else {
        1.0
    };
    EngineSpec {
        model: model.to_string(),
        costs: StepCosts {
            per_token: config.per_token.mul_f64(factor),
            slowdown_per_running: config.slowdown_per_running,
            prefill_per_token: config.prefill_per_token.mul_f64(factor),
            ttft: config.ttft.mul_f64(factor),
        },
        limits: Limits {
            max_num_seqs: config.max_num_seqs,
            max_batched_tokens: config.max_batched_tokens,
            block_size: config.block_size,
            kv_blocks: config.kv_blocks,
        },
        // An 8B model in bf16 is about 15 GiB; slower models are bigger.
        weights_mib: (15_400.0 * factor.min(1.3)) as u64,
        // Llama-3-8B: 32 layers × 8 KV heads × 128 dims × 2 (K, V) × 2 bytes
        // = 128 KiB per token.
        kv_block_kib: 128 * u64::from(config.block_size.max(1)),
    }
}

/// A stable identity for GPU `index` under `seed`.
fn gpu_identity(seed: u64, index: u32, model: &str) -> GpuIdentity {
    let mut rng = SimRng::for_request(seed, u64::from(index), Purpose::Metrics);
    let a = rng.next_u64();
    let b = rng.next_u64();
    let uuid = format!(
        "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    );
    GpuIdentity {
        index,
        uuid,
        name: A10G_NAME.to_string(),
        device: format!("nvidia{index}"),
        pci_bus_id: format!("00000000:{:02X}:1E.0", index),
        fb_total_mib: A10G.fb_total_mib,
        served_model: model.to_string(),
        pod: None,
    }
}
