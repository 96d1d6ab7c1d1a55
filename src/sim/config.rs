//! Configuration of the embedded simulator: the models it serves, the cost
//! model of an engine iteration, the KV cache, the telemetry it exports and
//! the faults it injects. Plain data with defaults; no behaviour.

use std::net::SocketAddr;
use std::time::Duration;

pub use super::metrics::MetricNaming;

/// How the simulated server behaves. Every field has a vLLM-like default
/// (see [`SimConfig::default`]), calibrated so that the built-in
/// stress-sweep and staging-full plans look like examples/001 and /000.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds token text, fault draws and trace ids: the same seed and the
    /// same request sequence give the same output.
    pub seed: u64,
    /// The models served, each by its own engine on its own simulated GPU.
    /// A request naming another model is answered 404, as vLLM does; one
    /// naming none goes to the first.
    pub models: Vec<ModelSpec>,
    /// The shortest prefill: a request's first token comes no sooner than
    /// this after it is scheduled (at the end of a step).
    pub ttft: Duration,
    /// Prefill cost per prompt token not served from the prefix cache, added
    /// to the step the request is scheduled in (delaying the whole batch).
    pub prefill_per_token: Duration,
    /// A decode step with one request in the batch: the gap between tokens.
    pub per_token: Duration,
    /// Each further request in the batch makes a step this fraction longer.
    pub slowdown_per_running: f64,
    /// How many requests run in a batch at once; the rest wait in FIFO order.
    pub max_num_seqs: usize,
    /// Prompt tokens prefilled in one step.
    pub max_batched_tokens: u32,
    /// Tokens per KV-cache block.
    pub block_size: u32,
    /// KV-cache blocks per engine. Running out preempts requests.
    pub kv_blocks: u32,
    /// Output tokens for a request that gives no `max_tokens`.
    pub default_max_tokens: u32,
    /// Whose names `/metrics` uses: vLLM V1's, older vLLM's or SGLang's.
    pub metric_naming: MetricNaming,
    /// Serve simulated DCGM exporter metrics on this address.
    pub dcgm_listen: Option<SocketAddr>,
    /// OTLP/HTTP endpoint for spans (else `OTEL_EXPORTER_OTLP_ENDPOINT`;
    /// neither: no spans).
    pub otlp_endpoint: Option<String>,
    /// Faults injected on purpose (changeable at run time through
    /// `POST /admin/faults`).
    pub faults: Faults,
    /// Lies in what `/metrics` says, fixed for the server's life.
    pub telemetry_faults: TelemetryFaults,
    /// Resource pressure at start (KV blocks taken away, GPU memory
    /// climbing), changeable at run time through `POST /admin/faults`.
    pub resource_faults: ResourceFaults,
}

/// One served model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    /// Multiplies every cost of its engine (2.0 = a model twice as slow).
    pub cost_factor: f64,
}

impl ModelSpec {
    pub fn new(name: &str, cost_factor: f64) -> ModelSpec {
        ModelSpec {
            name: name.to_string(),
            cost_factor,
        }
    }
}

/// The model the simulator serves when none is configured.
pub const DEFAULT_MODEL: &str = "sim-llama-8b";

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            models: vec![ModelSpec::new(DEFAULT_MODEL, 1.0)],
            ttft: Duration::from_millis(30),
            prefill_per_token: Duration::from_micros(5),
            per_token: Duration::from_millis(9),
            slowdown_per_running: 0.012,
            max_num_seqs: 256,
            max_batched_tokens: 8192,
            block_size: 16,
            kv_blocks: 2400,
            default_max_tokens: 64,
            metric_naming: MetricNaming::Vllm,
            dcgm_listen: None,
            otlp_endpoint: None,
            faults: Faults::default(),
            telemetry_faults: TelemetryFaults::default(),
            resource_faults: ResourceFaults::default(),
        }
    }
}

impl SimConfig {
    /// Serves `names`, each model slower than the one before by half (the
    /// second costs 1.5×, the third 2×, ...).
    pub fn serving(mut self, names: &[String]) -> SimConfig {
        if !names.is_empty() {
            self.models = names
                .iter()
                .enumerate()
                .map(|(i, n)| ModelSpec::new(n, 1.0 + 0.5 * i as f64))
                .collect();
        }
        self
    }
}

/// Faults, each drawn per request from the seeded RNG or applied server-wide.
/// Rates are fractions in `[0, 1]`; the default injects nothing.
///
/// Resource pressure for fault drills — `kv_squeeze` (a share of the KV
/// blocks unavailable) and `gpu_memory_climb_mib_per_s` (GPU memory used
/// growing with wall time) — is patched through the same
/// `POST /admin/faults` and shown by its GET, but lives beside these, in
/// [`ResourceFaults`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Fraction of requests answered with `error_status` (and an OpenAI-style
    /// JSON error body) before any token.
    pub error_rate: f64,
    /// Status of injected errors (500, 503, 429, ...); 0 means 500.
    pub error_status: u16,
    /// A window in which the whole server freezes.
    pub stall: Option<Stall>,
    /// A window in which every engine step costs `factor` times more.
    pub latency_spike: Option<Spike>,
    /// Fraction of streams that stop after half their tokens and close the
    /// body cleanly without `data: [DONE]`.
    pub truncate_rate: f64,
    /// Fraction of streams that send an SSE error event after half their
    /// tokens and end.
    pub error_event_rate: f64,
    /// Fraction of streams whose connection is dropped after half their
    /// tokens (no clean end of the body).
    pub disconnect_rate: f64,
    /// Fraction of streams that send a malformed (non-JSON) chunk after half
    /// their tokens, then carry on.
    pub malformed_rate: f64,
    /// Fraction of child spans (queue, prefill, decode) not exported.
    pub span_drop_rate: f64,
    /// Fraction of whole traces not exported.
    pub trace_drop_rate: f64,
    /// Keep decoding requests whose client went away (orphaned work),
    /// counted in the simulator's metrics, instead of aborting them.
    pub orphan_on_disconnect: bool,
    /// `/metrics` answers this much later.
    pub metrics_delay: Duration,
    /// Fraction of `/metrics` scrapes answered 500.
    pub metrics_error_rate: f64,
    /// After this many completion requests the server crashes: every open
    /// connection is cut and nothing more is answered.
    pub crash_after: Option<u64>,
    /// The first request to each model waits this long (weights loading);
    /// again after `POST /model/load`.
    pub cold_start: Duration,
    /// Load shedding: a request that arrives while this many requests of
    /// its model already wait is answered 503 at once (a gateway that sheds
    /// load past capacity).
    pub shed_when_waiting: Option<u64>,
    /// Share of generated tokens `vllm:generation_tokens_total` leaves out
    /// (a server whose metrics under-report; the client↔server check must
    /// catch it).
    pub token_underreport: f64,
}

/// Telemetry that misreports while the engine itself works as configured:
/// each must make a client↔server cross-check fail (the server's own
/// laws, `analysis::little`). Set when the server starts; the default
/// tells the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TelemetryFaults {
    /// Share of the running batch `vllm:num_requests_running` leaves out
    /// (a gauge that counts only some of the requests it should).
    pub running_underreport: f64,
    /// Relative error of every queue time `vllm:request_queue_time_seconds`
    /// observes: −0.5 halves them, 1.0 doubles them (0: truthful).
    pub queue_time_misreport: f64,
}

/// Resource pressure a fault drill applies to the engine and its GPU while
/// the server runs, set and cleared through `POST /admin/faults` (fields of
/// the same names) or at start through [`SimConfig::resource_faults`]. The
/// default applies none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResourceFaults {
    /// Share of every engine's KV blocks that becomes unavailable, in
    /// `[0, 1)` (0: none). The scheduler admits and grows sequences as
    /// with a cache that much smaller, preempting when the rest runs out;
    /// the squeeze takes blocks as they come free and gives them all back
    /// when set to 0. KV usage (`vllm:kv_cache_usage_perc` and its other
    /// names) counts the squeezed blocks as used, against the whole cache,
    /// so it reads at least `kv_squeeze` even when idle. GPU memory is not
    /// changed by it.
    pub kv_squeeze: f64,
    /// MiB per second of wall time by which the framebuffer used of every
    /// simulated GPU of the server (one per model) (`DCGM_FI_DEV_FB_USED`, and `FB_FREE` with it)
    /// grows, from the moment it is set, capped at the GPU's total
    /// (0: none; setting 0 releases the extra memory; a new rate starts
    /// again from nothing at the call).
    pub gpu_memory_climb_mib_per_s: f64,
}

/// A freeze of the whole server: while it lasts no step runs, no response
/// starts and no token is emitted; pending work resumes when it ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stall {
    /// Start of the window, from server start (or from the admin call that
    /// set it).
    pub after: Duration,
    /// Length of the window.
    pub length: Duration,
}

/// A window of slow engine steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spike {
    pub after: Duration,
    pub length: Duration,
    /// Step cost multiplier inside the window.
    pub factor: f64,
}
