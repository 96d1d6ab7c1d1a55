//! "System Resource Utilization" says whose values it shows and reads GPU
//! pressure from the counters that measure it (issue 10, items 7 and 8):
//! a simulator run fills the profiling rows from the simulated DCGM
//! exporter and names the GPU model and this host; a node exporter behind
//! a real Prometheus names its node; the real DCGM capture in
//! shared/fixtures parses under the profiling recipes; and the labels
//! read as the measurements say (NVML's GPUs, several nodes).

use std::net::SocketAddr;

use infercheck::report::{
    self, Format, GpuModel, GpuModelSource, Machine, MachineSource, Report, SampledSummary,
};
use infercheck::sample::exposition;
use infercheck::sample::identity::dcgm_models_in;
use infercheck::sample::queries;
use infercheck::sample::scrape::evaluate;
use infercheck::stats::{Aggregate, SeriesStats};

use crate::util::prometheus::Prometheus;
use crate::util::{exclusive, run_holding};

fn markdown(report: &Report) -> String {
    let mut out = Vec::new();
    report::render(report, Format::Markdown, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The label cells of "System Resource Utilization", in order.
fn resource_labels(md: &str) -> Vec<String> {
    let start = md
        .find("### System Resource Utilization")
        .unwrap_or_else(|| panic!("no resources table in:\n{md}"));
    md[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| Resource"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap().trim().to_owned())
        .collect()
}

fn value<'a>(report: &'a Report, name: &str) -> &'a SampledSummary {
    let observed = report.observed.as_ref().expect("an observed section");
    observed
        .value(name)
        .unwrap_or_else(|| panic!("no {name} in {:#?}", observed.values))
}

fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// The strict schema (every field documented) has nothing to say about
/// the machines and GPU models of `report.json` (fields of other sections
/// are their own tests' business).
fn validate_against_schema(report_json: &std::path::Path) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_json).unwrap()).unwrap();
    assert!(json["observed"]["machines"].is_array() && json["observed"]["gpu_models"].is_array());
    let schema = crate::report::strict(crate::report::schema());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .filter(|e| e.contains("machines") || e.contains("gpu_models"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The embedded simulator under load: its DCGM exporter's profiling
/// fields fill the pressure rows (first, before utilisation, which is
/// labelled a duty cycle) in the proportions its GPU model gives them;
/// every GPU row names the simulated A10G and the exporter's host; system
/// memory and CPU are this host's, because the target is on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_run_fills_the_pressure_rows_and_names_whose_they_are() {
    let held = exclusive().await;
    let plan = "name = 'resources'\n[observe]\nnvml = false\n\
         [[phases]]\nname = 'busy'\nduration = '4s'\nload = { type = 'concurrency', concurrency = 8 }\n";
    let (result, _dir) = run_holding(&held, plan, None).await;
    let report = &result.report;

    let gr = value(report, "gpu_graphics_active");
    let tensor = value(report, "gpu_tensor_active");
    let dram = value(report, "gpu_dram_active");
    let util = value(report, "gpu_util");
    for v in [gr, tensor, dram] {
        assert_eq!(
            (v.source.as_str(), v.unit.as_str()),
            ("scrape", "ratio"),
            "{v:?}"
        );
    }
    let peak = |v: &SampledSummary| v.stats.max.unwrap();
    eprintln!(
        "peaks: graphics engine {}, tensor {}, DRAM {}, duty cycle {}",
        peak(gr),
        peak(tensor),
        peak(dram),
        peak(util)
    );
    assert!(peak(gr) > 0.1, "the GPU was busy: {gr:?}");
    // The exporter prints the engine's busy share with six decimals and
    // utilisation as a whole percent, from the same reading.
    assert!(
        (peak(gr) - peak(util)).abs() <= 0.005 + 1e-6,
        "{gr:?} {util:?}"
    );
    // Per step, tensor pipes at most 90 % and the memory interface 50–85 %
    // of the busy time (sim::gpu::StepActivity): so are the peaks.
    assert!(peak(tensor) > 0.0 && peak(tensor) <= 0.9 * peak(gr) + 1e-6);
    assert!(peak(dram) >= 0.5 * peak(gr) - 1e-6 && peak(dram) <= 0.85 * peak(gr) + 1e-6);

    let observed = report.observed.as_ref().unwrap();
    let host = this_hostname();
    assert_eq!(
        observed.gpu_models,
        [GpuModel {
            source: GpuModelSource::Dcgm,
            model: "NVIDIA A10G".into(),
            count: 1,
            hosts: vec![host.clone()],
            gpm: None,
        }]
    );
    assert!(report.target.base_url.starts_with("http://127.0.0.1:"));
    let because = "loopback target".to_owned();
    assert_eq!(
        observed.machines,
        [Machine {
            source: MachineSource::Host,
            names: vec![host.clone()],
            because: Some(because.clone()),
        }]
    );

    let gpu = format!("NVIDIA A10G on {host}");
    let machine = format!("this host {host} ({because})");
    assert_eq!(
        resource_labels(&markdown(report)),
        [
            format!("GPU Tensor Pipe Active — {gpu}"),
            format!("GPU DRAM Active — {gpu}"),
            format!("GPU Graphics Engine Active — {gpu}"),
            format!("GPU Util (duty cycle) — {gpu}"),
            format!("Memory (System) — {machine}"),
            format!("VRAM Usage — {gpu}"),
            format!("CPU Load — {machine}"),
            format!("GPU Power — {gpu}"),
        ]
    );
    validate_against_schema(&result.dir.join("report.json"));
}

/// A node exporter's text: one node, 16 GB of which 4 GB available, two
/// idle CPUs (the counters do not move: 0 cores busy).
const NODE_EXPORTER: &str = "# TYPE node_uname_info gauge\n\
    node_uname_info{nodename=\"gpu-node-1\",release=\"6.1.0\",sysname=\"Linux\"} 1\n\
    # TYPE node_memory_MemTotal_bytes gauge\nnode_memory_MemTotal_bytes 1.6e+10\n\
    # TYPE node_memory_MemAvailable_bytes gauge\nnode_memory_MemAvailable_bytes 4e+09\n\
    # TYPE node_cpu_seconds_total counter\n\
    node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1000\n\
    node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 50\n\
    node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 1000\n\
    node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} 50\n";

/// Serves [`NODE_EXPORTER`] on a loopback port until dropped.
async fn node_exporter() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { NODE_EXPORTER }));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// With a real Prometheus scraping a node exporter, the memory and CPU
/// rows are the node's, named by its `nodename`, with the node's own core
/// count; this host's rows stand beside them, named as this host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_exporter_behind_prometheus_names_its_node() {
    let held = exclusive().await;
    let (node, server) = node_exporter().await;
    let prometheus = Prometheus::start(&[("node", node)]).await;
    prometheus.wait_for_scrapes("node", 2).await;
    let plan = format!(
        "name = 'node'\n[observe]\nprometheus = '{}'\nquery_sets = ['node']\nnvml = false\n\
         [[phases]]\nname = 'p'\nduration = '2s'\nload = {{ type = 'constant', rate = 5 }}\n",
        prometheus.url()
    );
    let (result, _dir) = run_holding(&held, &plan, None).await;
    server.abort();
    let report = &result.report;
    let observed = report.observed.as_ref().unwrap();
    assert_eq!(
        observed
            .machines
            .iter()
            .find(|m| m.source == MachineSource::NodeExporter),
        Some(&Machine {
            source: MachineSource::NodeExporter,
            names: vec!["gpu-node-1".into()],
            because: None,
        })
    );
    assert_eq!(value(report, "node_memory_used").stats.max, Some(0.75));
    assert_eq!(value(report, "node_cores").stats.max, Some(2.0));

    let md = markdown(report);
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| Memory (System)") || l.starts_with("| CPU Load"))
        .collect();
    let host = this_hostname();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert_eq!(
        rows[0],
        "| Memory (System) — node gpu-node-1 | 75.00% | — | — |"
    );
    assert!(rows[1].starts_with(&format!(
        "| Memory (System) — this host {host} (loopback target) |"
    )));
    assert_eq!(
        rows[2],
        "| CPU Load — node gpu-node-1 | 0.0/2 cores | — | — |"
    );
    assert!(rows[3].starts_with(&format!(
        "| CPU Load — this host {host} (loopback target) |"
    )));
    validate_against_schema(&result.dir.join("report.json"));
}

/// The real dcgm-exporter capture (DataDog's fixture, read in place):
/// every profiling field it has parses under the `dcgm` set's recipes, to
/// the value it printed; its GPUs are named by their `modelName`, one per
/// host and UUID (its unlabelled samples name nothing).
#[test]
fn the_real_dcgm_capture_parses_under_the_profiling_recipes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/metrics/dcgm.txt"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let scraped = exposition::parse(&text).unwrap();
    let set = queries::builtin("dcgm").unwrap();
    let derived = |name: &str| {
        let q = set.iter().find(|q| q.name == name).unwrap();
        evaluate(q.scrape.as_ref().unwrap(), &scraped, None).map(|v| q.unit.normalise(v))
    };
    for (name, printed) in [
        ("gpu_graphics_active", 0.0),
        ("gpu_sm_active", 0.0),
        ("gpu_sm_occupancy", 0.0),
        ("gpu_tensor_active", 0.0),
        ("gpu_dram_active", 0.000003),
    ] {
        assert_eq!(derived(name), Some(printed), "{name}");
    }
    let models: Vec<(String, u32, Vec<String>)> = dcgm_models_in(&scraped)
        .into_iter()
        .map(|m| (m.model, m.count, m.hosts))
        .collect();
    assert_eq!(
        models,
        [
            (
                "Tesla T4".into(),
                2,
                vec!["424773df46e0".into(), "551bdf382151".into()]
            ),
            ("NVIDIA A10G".into(), 1, vec!["ip-11111".into()]),
        ]
    );
}

/// A sampled value as NVML or a scrape gives it.
fn summary(name: &str, unit: &str, source: &str, max: f64) -> SampledSummary {
    SampledSummary {
        name: name.into(),
        unit: unit.into(),
        source: source.into(),
        aggregate: Aggregate::Max,
        value: Some(max),
        stats: SeriesStats {
            samples: 3,
            max: Some(max),
            min: Some(max / 2.0),
            avg: Some(max * 0.75),
            last: Some(max),
            ..SeriesStats::default()
        },
        gaps: 0,
    }
}

/// The golden sweep report with `values`, `machines` and `gpu_models` in
/// place of what it sampled.
fn golden_with(
    values: Vec<SampledSummary>,
    machines: Vec<Machine>,
    gpu_models: Vec<GpuModel>,
) -> Report {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/sweep_fail/report.json"
    );
    let mut report: Report = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    report
        .thresholds
        .retain(|t| !matches!(t.metric, infercheck::metric::Metric::Sampled { .. }));
    let observed = report.observed.as_mut().unwrap();
    observed.values = values;
    observed.machines = machines;
    observed.gpu_models = gpu_models;
    report
}

/// NVML's GPUs are named as NVML named them, on this host, counted; GPM
/// values read as pressure rows; a DCGM model does not name NVML's values;
/// many nodes are listed by their first names and a count.
#[test]
fn labels_name_nvml_gpus_and_many_nodes_as_measured() {
    let h100 = |gpm| GpuModel {
        source: GpuModelSource::Nvml,
        model: "NVIDIA H100 80GB HBM3".into(),
        count: 2,
        hosts: Vec::new(),
        gpm: Some(gpm),
    };
    let l4 = GpuModel {
        source: GpuModelSource::Dcgm,
        model: "NVIDIA L4".into(),
        count: 1,
        hosts: vec!["elsewhere".into()],
        gpm: None,
    };
    let nodes = Machine {
        source: MachineSource::NodeExporter,
        names: ["n1", "n2", "n3", "n4", "n5"].map(String::from).to_vec(),
        because: None,
    };
    let report = golden_with(
        vec![
            summary("gpu_sm_active", "ratio", "nvml", 0.4225),
            summary("gpu_sm_occupancy", "ratio", "nvml", 0.185),
            summary("gpu_util", "ratio", "nvml", 1.0),
            summary("node_memory_used", "ratio", "prometheus", 0.5),
            summary("node_cpu_load", "cores", "prometheus", 12.5),
            summary("gpu_power", "watts", "scrape", 70.0),
        ],
        vec![nodes],
        vec![h100(2), l4],
    );
    let md = markdown(&report);
    let start = md.find("### System Resource Utilization").unwrap();
    let table: Vec<&str> = md[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| Resource"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let nvml = "2× NVIDIA H100 80GB HBM3 on this host";
    let many = "nodes n1, n2, n3 and 2 more";
    assert_eq!(
        table,
        [
            format!("| GPU SM Active — {nvml} | 42.25% | — | — |"),
            format!("| GPU SM Occupancy — {nvml} | 18.50% | — | — |"),
            format!("| GPU Util (duty cycle) — {nvml} | 100.00% | — | — |"),
            format!("| Memory (System) — {many} | 50.00% | — | — |"),
            format!("| CPU Load — {many} | 12.5 cores | — | — |"),
            "| GPU Power — NVIDIA L4 on elsewhere | 70W | — | — |".to_owned(),
        ]
    );
    // Nothing named: the rows say only what they measure.
    let unnamed = golden_with(
        vec![
            summary("gpu_util", "ratio", "scrape", 0.5),
            summary("cpu_load", "cores", "host", 1.5),
        ],
        Vec::new(),
        vec![h100(0)],
    );
    assert_eq!(
        resource_labels(&markdown(&unnamed)),
        ["GPU Util (duty cycle)", "CPU Load"]
    );
}
