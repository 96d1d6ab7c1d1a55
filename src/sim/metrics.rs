//! `/metrics`: vLLM's metric families, named, typed and bucketed as vLLM's
//! V1 engine exports them, labelled `model_name` and `engine`, through the
//! `prometheus` crate's registry and text encoder (format 0.0.4, as vLLM's
//! Python client serves). Plus a few `infercheck_sim_*` families for what
//! only a simulator knows (orphaned work, cold starts, injected faults).
//!
//! [`MetricNaming`] renames the engine families as another engine (or an
//! older vLLM) exports them, so the engine profiles of `queries/` can be
//! proved against the same simulated engine: a family the other engine has
//! no equivalent of is kept (its handles work) but not exported.
//!
//! Handles are resolved per model once, so the driver's hot path is one
//! atomic add per observation. [`TelemetryFaults`] make two of them lie on
//! purpose (the running gauge, the queue-time histogram), so the
//! cross-checks can be shown to catch it.

use super::config::TelemetryFaults;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// vLLM's buckets for time to first token.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// vLLM's buckets for inter-token latency (and time per output token).
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];

/// vLLM's buckets for request-level latencies (e2e, queue, prefill, decode).
const REQUEST_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// Tokens per engine iteration.
const ITERATION_BUCKETS: &[f64] = &[
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
];

/// vLLM's 1-2-5 buckets for request sizes in tokens.
const TOKEN_COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0,
    50000.0, 100000.0,
];

const LABELS: &[&str] = &["model_name", "engine"];

/// Every family, registered once per simulator.
#[derive(Clone, Debug)]
pub(crate) struct Families {
    registry: Registry,
    running: GaugeVec,
    waiting: GaugeVec,
    kv_usage: GaugeVec,
    prefix_queries: IntCounterVec,
    prefix_hits: IntCounterVec,
    prompt_tokens: IntCounterVec,
    prompt_tokens_cached: IntCounterVec,
    generation_tokens: IntCounterVec,
    success: IntCounterVec,
    preemptions: IntCounterVec,
    ttft: HistogramVec,
    itl: HistogramVec,
    tpot: Option<HistogramVec>,
    e2e: HistogramVec,
    queue: HistogramVec,
    prefill: HistogramVec,
    decode: HistogramVec,
    inference: HistogramVec,
    iteration_tokens: HistogramVec,
    request_prompt_tokens: HistogramVec,
    request_generation_tokens: HistogramVec,
    orphaned_running: IntGaugeVec,
    orphaned_total: IntCounterVec,
    cold_starts: IntCounterVec,
    faults: IntCounterVec,
    /// What every engine's handles misreport.
    lies: TelemetryFaults,
}

/// Whose names the engine families carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetricNaming {
    /// vLLM V1 (`vllm:kv_cache_usage_perc`, `vllm:inter_token_latency_seconds`).
    #[default]
    Vllm,
    /// vLLM before 0.7: `vllm:gpu_cache_usage_perc` and
    /// `vllm:time_per_output_token_seconds` too.
    VllmLegacy,
    /// SGLang's `sglang:*` names.
    Sglang,
}

impl MetricNaming {
    pub const ALL: [MetricNaming; 3] = [
        MetricNaming::Vllm,
        MetricNaming::VllmLegacy,
        MetricNaming::Sglang,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MetricNaming::Vllm => "vllm",
            MetricNaming::VllmLegacy => "vllm-legacy",
            MetricNaming::Sglang => "sglang",
        }
    }

    pub fn parse(text: &str) -> Option<MetricNaming> {
        MetricNaming::ALL.into_iter().find(|n| n.name() == text)
    }

    /// The exported name of the family vLLM V1 calls `vllm`; `None`: this
    /// engine has no such family.
    fn rename(self, vllm: &'static str) -> Option<&'static str> {
        match self {
            MetricNaming::Vllm => Some(vllm),
            MetricNaming::VllmLegacy => Some(match vllm {
                "vllm:kv_cache_usage_perc" => "vllm:gpu_cache_usage_perc",
                other => other,
            }),
            MetricNaming::Sglang => SGLANG
                .iter()
                .find(|(v, _)| *v == vllm)
                .map(|(_, sglang)| *sglang),
        }
    }
}

/// vLLM's families and SGLang's names for them (sglang/srt/metrics); the
/// rest SGLang does not export.
const SGLANG: &[(&str, &str)] = &[
    ("vllm:num_requests_running", "sglang:num_running_reqs"),
    ("vllm:num_requests_waiting", "sglang:num_queue_reqs"),
    ("vllm:kv_cache_usage_perc", "sglang:token_usage"),
    ("vllm:prompt_tokens_total", "sglang:prompt_tokens_total"),
    (
        "vllm:prompt_tokens_cached_total",
        "sglang:cached_tokens_total",
    ),
    (
        "vllm:generation_tokens_total",
        "sglang:generation_tokens_total",
    ),
    (
        "vllm:time_to_first_token_seconds",
        "sglang:time_to_first_token_seconds",
    ),
    (
        "vllm:inter_token_latency_seconds",
        "sglang:inter_token_latency_seconds",
    ),
    (
        "vllm:e2e_request_latency_seconds",
        "sglang:e2e_request_latency_seconds",
    ),
    (
        "vllm:request_queue_time_seconds",
        "sglang:queue_time_seconds",
    ),
];

/// Registers families under one engine's names: a family it does not
/// export goes to a registry that is never rendered.
struct Namer {
    naming: MetricNaming,
    exported: Registry,
    hidden: Registry,
}

impl Namer {
    fn register<C: prometheus::core::Collector + Clone + 'static>(
        &self,
        vllm: &'static str,
        make: impl FnOnce(&str) -> C,
    ) -> C {
        let (registry, name) = match self.naming.rename(vllm) {
            Some(name) => (&self.exported, name),
            None => (&self.hidden, vllm),
        };
        let collector = make(name);
        registry
            .register(Box::new(collector.clone()))
            .expect("unique family");
        collector
    }

    fn gauge(&self, name: &'static str, help: &str) -> GaugeVec {
        self.register(name, |n| {
            GaugeVec::new(Opts::new(n, help), LABELS).expect("valid gauge")
        })
    }

    fn counter(&self, name: &'static str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(name, |n| {
            IntCounterVec::new(Opts::new(n, help), labels).expect("valid counter")
        })
    }

    fn histogram(&self, name: &'static str, help: &str, buckets: &[f64]) -> HistogramVec {
        self.register(name, |n| {
            let opts = HistogramOpts::new(n, help).buckets(buckets.to_vec());
            HistogramVec::new(opts, LABELS).expect("valid histogram")
        })
    }
}

/// infercheck's own families: the same under every naming.
fn int_gauge(r: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), LABELS).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique gauge");
    g
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    r.register(Box::new(c.clone())).expect("unique counter");
    c
}

impl Families {
    /// Registers every family; `legacy` switches the KV gauge to its pre-0.7
    /// name and adds `time_per_output_token_seconds`.
    pub fn new(naming: MetricNaming) -> Families {
        let n = Namer {
            naming,
            exported: Registry::new(),
            hidden: Registry::new(),
        };
        let r = &n.exported;
        let model_engine_reason = &["model_name", "engine", "finished_reason"];
        Families {
            running: n.gauge(
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
            ),
            waiting: n.gauge(
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
            ),
            kv_usage: n.gauge(
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
            ),
            prefix_queries: n.counter(
                "vllm:prefix_cache_queries_total",
                "Prefix cache queries, in terms of number of queried tokens.",
                LABELS,
            ),
            prefix_hits: n.counter(
                "vllm:prefix_cache_hits_total",
                "Prefix cache hits, in terms of number of cached tokens.",
                LABELS,
            ),
            prompt_tokens: n.counter(
                "vllm:prompt_tokens_total",
                "Number of prefill tokens processed.",
                LABELS,
            ),
            prompt_tokens_cached: n.counter(
                "vllm:prompt_tokens_cached_total",
                "Number of cached prompt tokens (local + external).",
                LABELS,
            ),
            generation_tokens: n.counter(
                "vllm:generation_tokens_total",
                "Number of generation tokens processed.",
                LABELS,
            ),
            success: n.counter(
                "vllm:request_success_total",
                "Count of successfully processed requests.",
                model_engine_reason,
            ),
            preemptions: n.counter(
                "vllm:num_preemptions_total",
                "Cumulative number of preemption from the engine.",
                LABELS,
            ),
            ttft: n.histogram(
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                TTFT_BUCKETS,
            ),
            itl: n.histogram(
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
                ITL_BUCKETS,
            ),
            tpot: (naming == MetricNaming::VllmLegacy).then(|| {
                n.histogram(
                    "vllm:time_per_output_token_seconds",
                    "Histogram of time per output token in seconds.",
                    ITL_BUCKETS,
                )
            }),
            e2e: n.histogram(
                "vllm:e2e_request_latency_seconds",
                "Histogram of e2e request latency in seconds.",
                REQUEST_BUCKETS,
            ),
            queue: n.histogram(
                "vllm:request_queue_time_seconds",
                "Histogram of time spent in WAITING phase for request.",
                REQUEST_BUCKETS,
            ),
            prefill: n.histogram(
                "vllm:request_prefill_time_seconds",
                "Histogram of time spent in PREFILL phase for request.",
                REQUEST_BUCKETS,
            ),
            decode: n.histogram(
                "vllm:request_decode_time_seconds",
                "Histogram of time spent in DECODE phase for request.",
                REQUEST_BUCKETS,
            ),
            inference: n.histogram(
                "vllm:request_inference_time_seconds",
                "Histogram of time spent in RUNNING phase for request.",
                REQUEST_BUCKETS,
            ),
            iteration_tokens: n.histogram(
                "vllm:iteration_tokens_total",
                "Histogram of number of tokens per engine_step.",
                ITERATION_BUCKETS,
            ),
            request_prompt_tokens: n.histogram(
                "vllm:request_prompt_tokens",
                "Number of prefill tokens processed.",
                TOKEN_COUNT_BUCKETS,
            ),
            request_generation_tokens: n.histogram(
                "vllm:request_generation_tokens",
                "Number of generation tokens processed.",
                TOKEN_COUNT_BUCKETS,
            ),
            orphaned_running: int_gauge(
                r,
                "infercheck_sim_orphaned_requests",
                "Requests still decoding although their client went away.",
            ),
            orphaned_total: counter(
                r,
                "infercheck_sim_orphaned_requests_total",
                "Requests that kept decoding after their client went away.",
                LABELS,
            ),
            cold_starts: counter(
                r,
                "infercheck_sim_cold_starts_total",
                "Model loads that delayed a request (cold starts).",
                LABELS,
            ),
            faults: counter(
                r,
                "infercheck_sim_injected_faults_total",
                "Faults injected on purpose, by kind.",
                &["model_name", "engine", "fault"],
            ),
            registry: n.exported.clone(),
            lies: TelemetryFaults::default(),
        }
    }

    /// The same families, whose engines' handles misreport as `lies` says.
    pub fn with_faults(mut self, lies: TelemetryFaults) -> Families {
        self.lies = lies;
        self
    }

    /// The handles of one model's engine.
    pub fn engine(&self, model: &str) -> EngineMetrics {
        let l = [model, "0"];
        let reason = |r: &str| self.success.with_label_values(&[model, "0", r]);
        let fault = |f: &str| self.faults.with_label_values(&[model, "0", f]);
        EngineMetrics {
            running: self.running.with_label_values(&l),
            waiting: self.waiting.with_label_values(&l),
            kv_usage: self.kv_usage.with_label_values(&l),
            prefix_queries: self.prefix_queries.with_label_values(&l),
            prefix_hits: self.prefix_hits.with_label_values(&l),
            prompt_tokens: self.prompt_tokens.with_label_values(&l),
            prompt_tokens_cached: self.prompt_tokens_cached.with_label_values(&l),
            generation_tokens: self.generation_tokens.with_label_values(&l),
            success_length: reason("length"),
            success_abort: reason("abort"),
            success_error: reason("error"),
            preemptions: self.preemptions.with_label_values(&l),
            ttft: self.ttft.with_label_values(&l),
            itl: self.itl.with_label_values(&l),
            tpot: self.tpot.as_ref().map(|h| h.with_label_values(&l)),
            e2e: self.e2e.with_label_values(&l),
            queue: self.queue.with_label_values(&l),
            prefill: self.prefill.with_label_values(&l),
            decode: self.decode.with_label_values(&l),
            inference: self.inference.with_label_values(&l),
            iteration_tokens: self.iteration_tokens.with_label_values(&l),
            request_prompt_tokens: self.request_prompt_tokens.with_label_values(&l),
            request_generation_tokens: self.request_generation_tokens.with_label_values(&l),
            orphaned_running: self.orphaned_running.with_label_values(&l),
            orphaned_total: self.orphaned_total.with_label_values(&l),
            cold_starts: self.cold_starts.with_label_values(&l),
            fault_error: fault("error_status"),
            fault_stream: fault("stream"),
            fault_shed: fault("shed"),
            lies: self.lies,
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// One engine's metric handles.
#[derive(Clone, Debug)]
pub(crate) struct EngineMetrics {
    pub running: Gauge,
    pub waiting: Gauge,
    pub kv_usage: Gauge,
    pub prefix_queries: IntCounter,
    pub prefix_hits: IntCounter,
    pub prompt_tokens: IntCounter,
    pub prompt_tokens_cached: IntCounter,
    pub generation_tokens: IntCounter,
    pub success_length: IntCounter,
    pub success_abort: IntCounter,
    /// Streams the server failed itself (vLLM's `finished_reason="error"`).
    pub success_error: IntCounter,
    pub preemptions: IntCounter,
    pub ttft: Histogram,
    pub itl: Histogram,
    pub tpot: Option<Histogram>,
    pub e2e: Histogram,
    pub queue: Histogram,
    pub prefill: Histogram,
    pub decode: Histogram,
    pub inference: Histogram,
    pub iteration_tokens: Histogram,
    pub request_prompt_tokens: Histogram,
    pub request_generation_tokens: Histogram,
    pub orphaned_running: IntGauge,
    pub orphaned_total: IntCounter,
    pub cold_starts: IntCounter,
    pub fault_error: IntCounter,
    pub fault_stream: IntCounter,
    pub fault_shed: IntCounter,
    lies: TelemetryFaults,
}

impl EngineMetrics {
    /// Publishes the running batch's size, less the share the
    /// `running_underreport` fault leaves out (whole requests, as vLLM
    /// exports them).
    pub fn set_running(&self, running: usize) {
        let kept = 1.0 - self.lies.running_underreport.clamp(0.0, 1.0);
        self.running.set((running as f64 * kept).round());
    }

    /// Observes a request's time in the queue, misreported by the
    /// `queue_time_misreport` fault.
    pub fn observe_queue(&self, seconds: f64) {
        let factor = (1.0 + self.lies.queue_time_misreport).max(0.0);
        self.queue.observe(seconds * factor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_vllm_names_types_and_labels() {
        let families = Families::new(MetricNaming::Vllm);
        let m = families.engine("we\"ird");
        m.generation_tokens.inc_by(3);
        m.ttft.observe(0.05);
        m.success_length.inc();
        let text = families.render();
        for line in [
            "# TYPE vllm:num_requests_running gauge",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            "# TYPE vllm:generation_tokens_total counter",
            "# TYPE vllm:time_to_first_token_seconds histogram",
            "# TYPE vllm:iteration_tokens_total histogram",
            "vllm:generation_tokens_total{engine=\"0\",model_name=\"we\\\"ird\"} 3",
            "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"we\\\"ird\",le=\"0.06\"} 1",
            "vllm:request_success_total{engine=\"0\",finished_reason=\"length\",model_name=\"we\\\"ird\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("gpu_cache_usage_perc"));
        assert!(!text.contains("time_per_output_token"));
    }

    #[test]
    fn legacy_names_on_request() {
        let families = Families::new(MetricNaming::VllmLegacy);
        let _ = families.engine("m");
        let text = families.render();
        assert!(text.contains("# TYPE vllm:gpu_cache_usage_perc gauge"));
        assert!(text.contains("# TYPE vllm:time_per_output_token_seconds histogram"));
        assert!(!text.contains("kv_cache_usage_perc"));
    }

    #[test]
    fn sglang_naming_exports_sglang_families_only() {
        let families = Families::new(MetricNaming::Sglang);
        let m = families.engine("m");
        m.running.set(3.0);
        m.waiting.set(2.0);
        m.preemptions.inc(); // no SGLang equivalent: counted, not exported
        let text = families.render();
        for line in [
            "# TYPE sglang:num_running_reqs gauge",
            "sglang:num_running_reqs{engine=\"0\",model_name=\"m\"} 3",
            "sglang:num_queue_reqs{engine=\"0\",model_name=\"m\"} 2",
            "# TYPE sglang:token_usage gauge",
            "# TYPE sglang:generation_tokens_total counter",
            "# TYPE sglang:time_to_first_token_seconds histogram",
            "# TYPE infercheck_sim_orphaned_requests gauge",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("vllm:"), "{text}");
        assert!(
            MetricNaming::ALL
                .iter()
                .all(|n| MetricNaming::parse(n.name()) == Some(*n))
        );
    }
}
