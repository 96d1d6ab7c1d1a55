//! Simulated DCGM exporter: the engine's GPU readings on `/metrics` as
//! NVIDIA's dcgm-exporter serves them — its default counters' names, types
//! and help texts (etc/default-counters.csv), its labels and its value
//! formatting — so that dashboards and queries written for a real GPU fleet
//! run unchanged against the simulator. That includes the profiling fields
//! the default counters enable (`DCGM_FI_PROF_GR_ENGINE_ACTIVE`,
//! `PIPE_TENSOR_ACTIVE`, `DRAM_ACTIVE`: ratios, what measures GPU pressure
//! beside `GPU_UTIL`'s duty cycle).
//!
//! It owns the exposition of [`GpuSample`]s and a small listener,
//! [`DcgmExporter`]. It must not compute readings (the engine does, see
//! `gpu.rs`) or keep state between scrapes: every scrape asks its
//! [`GpuSource`] for fresh samples.

use std::fmt::{self, Write};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::serve::Background;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::gpu::{GpuIdentity, GpuReading, GpuSample};

/// Where an exporter reads its GPUs at every scrape.
pub type GpuSource = Arc<dyn Fn() -> Vec<GpuSample> + Send + Sync>;

/// The driver version the simulated GPUs report. dcgm-exporter turns
/// `DCGM_FI_DRIVER_VERSION` (type `label` in default-counters.csv) into a
/// label on every sample.
const DRIVER_VERSION: &str = "550.54.15";

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long [`DcgmExporter::stop`] waits for the serving task.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Prometheus metric types used by the exported fields.
#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// A field's value as DCGM types it: the exporter prints integer fields
/// with Go's `%d` and double fields with `%f` (six decimals).
enum FieldValue {
    Int(i64),
    Float(f64),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Int(v) => write!(f, "{v}"),
            FieldValue::Float(v) => write!(f, "{v:.6}"),
        }
    }
}

/// One exported DCGM field: a metric family with one sample per GPU.
struct Field {
    name: &'static str,
    kind: Kind,
    /// As in default-counters.csv, unit included.
    help: &'static str,
    value: fn(&GpuReading) -> FieldValue,
}

/// DCGM reports temperatures and utilisation as integers.
fn int(value: f64) -> FieldValue {
    FieldValue::Int(value.round() as i64)
}

fn count(value: u64) -> FieldValue {
    FieldValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The exported fields, in default-counters.csv's order (the exporter's).
const FIELDS: [Field; 14] = [
    Field {
        name: "DCGM_FI_DEV_SM_CLOCK",
        kind: Kind::Gauge,
        help: "SM clock frequency (in MHz).",
        value: |r| count(r.sm_clock_mhz),
    },
    Field {
        name: "DCGM_FI_DEV_MEM_CLOCK",
        kind: Kind::Gauge,
        help: "Memory clock frequency (in MHz).",
        value: |r| count(r.mem_clock_mhz),
    },
    Field {
        name: "DCGM_FI_DEV_MEMORY_TEMP",
        kind: Kind::Gauge,
        help: "Memory temperature (in C).",
        value: |r| int(r.memory_temp_c),
    },
    Field {
        name: "DCGM_FI_DEV_GPU_TEMP",
        kind: Kind::Gauge,
        help: "GPU temperature (in C).",
        value: |r| int(r.gpu_temp_c),
    },
    Field {
        name: "DCGM_FI_DEV_POWER_USAGE",
        kind: Kind::Gauge,
        help: "Power draw (in W).",
        value: |r| FieldValue::Float(r.power_watts),
    },
    Field {
        name: "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        kind: Kind::Counter,
        help: "Total energy consumption since boot (in mJ).",
        value: |r| count(r.energy_mj),
    },
    Field {
        name: "DCGM_FI_DEV_GPU_UTIL",
        kind: Kind::Gauge,
        help: "GPU utilization (in %).",
        value: |r| int(r.util_percent),
    },
    Field {
        name: "DCGM_FI_DEV_MEM_COPY_UTIL",
        kind: Kind::Gauge,
        help: "Memory utilization (in %).",
        value: |r| int(r.mem_copy_util_percent),
    },
    Field {
        name: "DCGM_FI_DEV_FB_FREE",
        kind: Kind::Gauge,
        help: "Framebuffer memory free (in MiB).",
        value: |r| count(r.fb_free_mib),
    },
    Field {
        name: "DCGM_FI_DEV_FB_USED",
        kind: Kind::Gauge,
        help: "Framebuffer memory used (in MiB).",
        value: |r| count(r.fb_used_mib),
    },
    Field {
        name: "DCGM_FI_DEV_FB_RESERVED",
        kind: Kind::Gauge,
        help: "Framebuffer memory reserved (in MiB).",
        value: |r| count(r.fb_reserved_mib),
    },
    Field {
        name: "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        kind: Kind::Gauge,
        help: "Ratio of time the graphics engine is active.",
        value: |r| FieldValue::Float(r.gr_engine_active),
    },
    Field {
        name: "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        kind: Kind::Gauge,
        help: "Ratio of cycles the tensor (HMMA) pipe is active.",
        value: |r| FieldValue::Float(r.tensor_active),
    },
    Field {
        name: "DCGM_FI_PROF_DRAM_ACTIVE",
        kind: Kind::Gauge,
        help: "Ratio of cycles the device memory interface is active sending or receiving data.",
        value: |r| FieldValue::Float(r.dram_active),
    },
];

/// The text exposition (0.0.4) a dcgm-exporter on `hostname` serves for
/// `samples`: per field a HELP and TYPE line, then one sample per GPU.
pub(crate) fn render(samples: &[GpuSample], hostname: &str) -> String {
    let hostname = escape_label_value(hostname);
    let labels: Vec<String> = samples
        .iter()
        .map(|s| labels(&s.identity, &hostname))
        .collect();
    let mut out = String::with_capacity(FIELDS.len() * (100 + 250 * samples.len()));
    for field in &FIELDS {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}", field.name, field.help);
        let _ = writeln!(out, "# TYPE {} {}", field.name, field.kind.as_str());
        for (sample, labels) in samples.iter().zip(&labels) {
            let value = (field.value)(&sample.reading);
            let _ = writeln!(out, "{}{{{labels}}} {value}", field.name);
        }
    }
    out
}

/// The labels dcgm-exporter puts on every sample of a whole GPU, in its
/// order, with its Kubernetes pod attribution when the GPU has a pod (MIG
/// labels are out of scope).
fn labels(gpu: &GpuIdentity, hostname: &str) -> String {
    let pod = gpu.pod.as_ref().map_or(String::new(), |pod| {
        format!(
            ",container=\"vllm\",namespace=\"{POD_NAMESPACE}\",pod=\"{}\"",
            escape_label_value(pod)
        )
    });
    format!(
        "gpu=\"{}\",UUID=\"{}\",pci_bus_id=\"{}\",device=\"{}\",modelName=\"{}\",\
         Hostname=\"{hostname}\",DCGM_FI_DRIVER_VERSION=\"{DRIVER_VERSION}\"{pod}",
        gpu.index,
        escape_label_value(&gpu.uuid),
        escape_label_value(&gpu.pci_bus_id),
        escape_label_value(&gpu.device),
        escape_label_value(&gpu.name),
    )
}

/// The namespace of the simulated cluster's pods.
const POD_NAMESPACE: &str = "infercheck-sim";

/// Escapes a label value as the exposition format requires: backslash,
/// double quote and line feed (as `metrics.rs` does for vLLM's families).
fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// What the `/metrics` handler reads.
struct Exporter {
    source: GpuSource,
    hostname: String,
}

/// A running simulated DCGM exporter. Dropping it stops it too (without
/// waiting).
#[derive(Debug)]
pub struct DcgmExporter {
    addr: SocketAddr,
    server: Background,
}

impl DcgmExporter {
    /// Binds `listen` (use "127.0.0.1:0" in tests; a real exporter listens
    /// on :9400) and serves `GET /metrics` on the current tokio runtime,
    /// labelling samples with `Hostname="{hostname}"`. Returns at once.
    pub async fn start(
        listen: SocketAddr,
        source: GpuSource,
        hostname: impl Into<String>,
    ) -> io::Result<DcgmExporter> {
        let listener = super::bind(listen)?;
        let addr = listener.local_addr()?;
        let exporter = Arc::new(Exporter {
            source,
            hostname: hostname.into(),
        });
        let app = Router::new()
            .route("/metrics", get(metrics))
            .with_state(exporter);
        Ok(DcgmExporter {
            addr,
            server: Background::serve(listener, app),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/metrics`, loopback in place of an unspecified address.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", super::connectable(self.addr))
    }

    /// Stops accepting and waits (bounded) for the serving task to end.
    pub async fn stop(mut self) {
        self.server.stop(STOP_GRACE).await;
    }
}

async fn metrics(State(exporter): State<Arc<Exporter>>) -> Response {
    let text = render(&(exporter.source)(), &exporter.hostname);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// dcgm-exporter's default counters (NVIDIA/dcgm-exporter
    /// etc/default-counters.csv), read where the fixtures live.
    const DEFAULT_COUNTERS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/dcgm/default-counters.csv"
    );

    /// Field name → (type, help) for every line that is not a comment.
    fn default_counters() -> BTreeMap<String, (String, String)> {
        let text = std::fs::read_to_string(DEFAULT_COUNTERS)
            .unwrap_or_else(|e| panic!("read {DEFAULT_COUNTERS}: {e}"));
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let mut parts = line.splitn(3, ',').map(str::trim);
                let mut next = || parts.next().expect("three columns").to_owned();
                (next(), (next(), next()))
            })
            .collect()
    }

    fn gpu(index: u32, util_percent: f64) -> GpuSample {
        GpuSample {
            identity: GpuIdentity {
                index,
                uuid: format!("GPU-0c1e2d3f-0000-4000-8000-00000000000{index}"),
                name: "NVIDIA L4".into(),
                device: format!("nvidia{index}"),
                pci_bus_id: format!("00000000:0{index}:00.0"),
                fb_total_mib: 23034,
                served_model: "sim-llama-8b".into(),
                pod: None,
            },
            reading: GpuReading {
                util_percent,
                mem_copy_util_percent: 12.4,
                fb_used_mib: 20000,
                fb_free_mib: 2600,
                fb_reserved_mib: 434,
                power_watts: 61.25,
                energy_mj: 123_456_789,
                gpu_temp_c: 54.5,
                memory_temp_c: 0.0,
                sm_clock_mhz: 2040,
                mem_clock_mhz: 6250,
                gr_engine_active: util_percent / 100.0,
                tensor_active: 0.3125,
                dram_active: 0.0625,
            },
        }
    }

    /// `(name, kind, help)` of every family, from the HELP and TYPE lines.
    fn families(text: &str) -> Vec<(String, String, String)> {
        let helps = text.lines().filter_map(|l| l.strip_prefix("# HELP "));
        let types = text.lines().filter_map(|l| l.strip_prefix("# TYPE "));
        helps
            .zip(types)
            .map(|(help, kind)| {
                let (name, help) = help.split_once(' ').unwrap();
                let (type_name, kind) = kind.split_once(' ').unwrap();
                assert_eq!(name, type_name, "HELP and TYPE pair up");
                (name.to_owned(), kind.to_owned(), help.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_family_is_a_default_counter_with_its_type_and_help() {
        let counters = default_counters();
        let text = render(&[gpu(0, 40.0)], "node-a");
        let families = families(&text);
        assert_eq!(families.len(), FIELDS.len());
        for (name, kind, help) in families {
            let (csv_kind, csv_help) = counters
                .get(&name)
                .unwrap_or_else(|| panic!("{name} is not in default-counters.csv"));
            assert_eq!(&kind, csv_kind, "{name}'s type");
            assert_eq!(&help, csv_help, "{name}'s help");
        }
    }

    /// Every family's help names its unit; the profiling fields are ratios
    /// and say so.
    #[test]
    fn help_names_the_unit() {
        let text = render(&[], "node-a");
        let table = [
            ("DCGM_FI_DEV_SM_CLOCK", "MHz"),
            ("DCGM_FI_DEV_MEM_CLOCK", "MHz"),
            ("DCGM_FI_DEV_MEMORY_TEMP", "C"),
            ("DCGM_FI_DEV_GPU_TEMP", "C"),
            ("DCGM_FI_DEV_POWER_USAGE", "W"),
            ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "mJ"),
            ("DCGM_FI_DEV_GPU_UTIL", "%"),
            ("DCGM_FI_DEV_MEM_COPY_UTIL", "%"),
            ("DCGM_FI_DEV_FB_FREE", "MiB"),
            ("DCGM_FI_DEV_FB_USED", "MiB"),
            ("DCGM_FI_DEV_FB_RESERVED", "MiB"),
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Ratio"),
            ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "Ratio"),
            ("DCGM_FI_PROF_DRAM_ACTIVE", "Ratio"),
        ];
        let families = families(&text);
        assert_eq!(families.len(), table.len());
        for ((name, _, help), (want_name, unit)) in families.iter().zip(table) {
            assert_eq!(name, want_name);
            let named = match unit {
                "Ratio" => help.starts_with("Ratio of "),
                unit => help.contains(&format!("(in {unit})")),
            };
            assert!(named, "{name}: {help}");
        }
    }

    #[test]
    fn samples_carry_the_exporters_labels() {
        let text = render(&[gpu(0, 40.0)], "node-a");
        let want = "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",\
            UUID=\"GPU-0c1e2d3f-0000-4000-8000-000000000000\",pci_bus_id=\"00000000:00:00.0\",\
            device=\"nvidia0\",modelName=\"NVIDIA L4\",Hostname=\"node-a\",\
            DCGM_FI_DRIVER_VERSION=\"550.54.15\"} 40\n";
        assert!(text.contains(want), "{text}");
    }

    #[test]
    fn values_are_formatted_like_the_exporter() {
        let text = render(&[gpu(0, 37.6)], "h");
        let value = |name: &str| {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name}{{")))
                .unwrap_or_else(|| panic!("no {name} sample"));
            line.rsplit_once(' ').unwrap().1.to_owned()
        };
        let table = [
            ("DCGM_FI_DEV_GPU_UTIL", "38"),
            ("DCGM_FI_DEV_MEM_COPY_UTIL", "12"),
            ("DCGM_FI_DEV_GPU_TEMP", "55"),
            ("DCGM_FI_DEV_MEMORY_TEMP", "0"),
            ("DCGM_FI_DEV_POWER_USAGE", "61.250000"),
            ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "123456789"),
            ("DCGM_FI_DEV_FB_USED", "20000"),
            ("DCGM_FI_DEV_FB_FREE", "2600"),
            ("DCGM_FI_DEV_FB_RESERVED", "434"),
            ("DCGM_FI_DEV_SM_CLOCK", "2040"),
            ("DCGM_FI_DEV_MEM_CLOCK", "6250"),
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0.376000"),
            ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "0.312500"),
            ("DCGM_FI_PROF_DRAM_ACTIVE", "0.062500"),
        ];
        for (name, want) in table {
            assert_eq!(value(name), want, "{name}");
        }
    }

    #[test]
    fn one_family_header_and_one_sample_per_gpu() {
        let text = render(&[gpu(0, 10.0), gpu(1, 90.0)], "h");
        assert_eq!(text.matches("# TYPE DCGM_FI_DEV_GPU_UTIL ").count(), 1);
        assert!(text.contains("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\","));
        assert!(text.contains("DCGM_FI_DEV_GPU_UTIL{gpu=\"1\","));
        assert_eq!(text.lines().count(), FIELDS.len() * 4);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut odd = gpu(0, 1.0);
        odd.identity.name = "a\"b\\c\nd".into();
        let text = render(&[odd], "h\"");
        assert!(text.contains("modelName=\"a\\\"b\\\\c\\nd\",Hostname=\"h\\\"\","));
    }

    /// What promtool's linter says about dcgm-exporter's own naming, which
    /// dashboards depend on: camelCase labels (`modelName`, `Hostname`) and
    /// a counter without `_total`.
    const EXPORTER_NAMING_LINTS: [&str; 2] = [
        "label names should be written in 'snake_case' not 'camelCase'",
        "counter metrics should have \"_total\" suffix",
    ];

    /// `promtool check metrics` exits 1 when the text does not parse and 3
    /// when it parses with lint findings; those must all be the exporter's
    /// naming.
    #[test]
    fn promtool_parses_the_exposition() {
        let text = render(&[gpu(0, 10.0), gpu(1, 90.0)], "node-a");
        let Some((code, said)) = promtool_check_metrics(&text) else {
            eprintln!("promtool not found, check skipped (apt-get install -y prometheus)");
            return;
        };
        assert_eq!(code, Some(3), "parses, with lint findings only: {said}");
        let findings: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!findings.is_empty());
        for finding in findings {
            assert!(
                EXPORTER_NAMING_LINTS
                    .iter()
                    .any(|lint| finding.ends_with(lint)),
                "unexpected finding: {finding}"
            );
        }
    }

    /// Runs `promtool check metrics` on `text`: its exit code and output,
    /// or `None` when promtool is not installed.
    fn promtool_check_metrics(text: &str) -> Option<(Option<i32>, String)> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => panic!("run promtool: {e}"),
        };
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Some((output.status.code(), said))
    }

    #[tokio::test]
    async fn serves_the_sources_samples_on_metrics() {
        let source: GpuSource = Arc::new(|| vec![gpu(0, 73.0)]);
        let listen = "127.0.0.1:0".parse().unwrap();
        let exporter = DcgmExporter::start(listen, source, "node-a").await.unwrap();
        let client = crate::tls::client();
        let response = client.get(exporter.metrics_url()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(content_type.starts_with("text/plain; version=0.0.4"));
        let text = response.text().await.unwrap();
        assert!(text.contains("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\","));
        assert!(text.contains("Hostname=\"node-a\""));
        assert!(text.contains("} 73\n"));
        exporter.stop().await;
    }
}
