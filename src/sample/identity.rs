//! Whose values they are: the machines and GPUs the resource values were
//! read from, named as the sources themselves name them, so that a report
//! row can say "node gpu-node-1" or "NVIDIA H100 80GB HBM3" from a
//! measurement rather than an assumption.
//!
//! - The server's node exporter (through Prometheus): each node's
//!   `nodename` from `node_uname_info`, else the `instance` its memory
//!   series is scraped from.
//! - A DCGM exporter (through Prometheus or a direct scrape): the
//!   `modelName` and `Hostname` labels of its series, one GPU per
//!   (`Hostname`, `UUID`) pair.
//! - This host (/proc, only when the target runs here): its hostname and
//!   why it speaks for the target (`host::target_on_this_host`).
//! - NVML: its device names (`nvml::gpu_models`).
//!
//! Read once before the run, beside the baseline; a source that does not
//! answer names nothing (the row then says only what it measures).

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_http_query::Client;
use prometheus_http_query::response::Data;

use super::exposition::{self, Exposition};
use super::{SamplingPlan, host, nvml};
use crate::report::{GpuModel, GpuModelSource, Machine, MachineSource, ObservedReport};

/// How long one look-up may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The node exporter's names for its nodes, tried in order: (PromQL, the
/// label that names a node).
const NODE_NAMES: [(&str, &str); 2] = [
    ("node_uname_info", "nodename"),
    (
        "group by (instance) (node_memory_MemTotal_bytes)",
        "instance",
    ),
];

/// Every DCGM exporter series that names its GPU's model, one per GPU.
const DCGM_GPUS: &str =
    "group by (modelName, Hostname, UUID, gpu) ({__name__=~\"DCGM_FI_.+\", modelName!=\"\"})";

/// The prefix of every DCGM exporter family.
const DCGM_PREFIX: &str = "DCGM_FI_";

/// The labels a DCGM exporter names a GPU with.
const MODEL_LABEL: &str = "modelName";
const HOST_LABEL: &str = "Hostname";
const UUID_LABEL: &str = "UUID";
const INDEX_LABEL: &str = "gpu";

/// A series' labels.
type Labels = BTreeMap<String, String>;

/// The machines and GPUs of a run, and where to look up the rest.
#[derive(Debug, Default)]
pub struct Identity {
    prometheus: Option<String>,
    scrape: Vec<String>,
    machines: Vec<Machine>,
    gpu_models: Vec<GpuModel>,
}

impl Identity {
    /// What is known when the sources start: this host when its /proc is
    /// sampled (`host`), NVML's GPUs; the exporters are looked up later.
    pub fn planned(plan: &SamplingPlan, nvml: Option<&nvml::NvmlSource>, host: bool) -> Identity {
        let because = plan
            .target_pid
            .map(|pid| format!("target pid {pid}"))
            .or_else(|| plan.target_here.clone());
        let machines = match (host, because) {
            (true, Some(because)) => vec![this_host(because)],
            _ => Vec::new(),
        };
        Identity {
            prometheus: plan.prometheus.clone(),
            scrape: plan.scrape.clone(),
            machines,
            gpu_models: nvml.map_or_else(Vec::new, |n| nvml::gpu_models(n.gpus())),
        }
    }

    /// Asks the node and DCGM exporters, through Prometheus or a direct
    /// scrape, what they are called.
    pub async fn look_up(&mut self) {
        if let Some(url) = self.prometheus.clone() {
            let Some(client) = client(&url) else { return };
            let nodes = node_names(&client).await;
            if !nodes.is_empty() {
                self.machines.push(Machine {
                    source: MachineSource::NodeExporter,
                    names: nodes,
                    because: None,
                });
            }
            let series = series(&client, DCGM_GPUS).await.unwrap_or_default();
            self.gpu_models.extend(dcgm_models(&series));
        } else if !self.scrape.is_empty() {
            let scraped = scrape_all(&self.scrape).await;
            self.gpu_models.extend(dcgm_models_in(&scraped));
        }
    }

    /// Puts what was found into the report's section.
    pub fn fill(self, report: &mut ObservedReport) {
        report.machines = self.machines;
        report.gpu_models = self.gpu_models;
    }
}

/// This host, by its hostname, and why it speaks for the target.
fn this_host(because: String) -> Machine {
    Machine {
        source: MachineSource::Host,
        names: host::hostname().into_iter().collect(),
        because: Some(because),
    }
}

fn client(url: &str) -> Option<Client> {
    let http = crate::tls::client_builder().timeout(TIMEOUT).build().ok()?;
    Client::from(http, url).ok()
}

/// The labels of every series an instant query returns; `None` when the
/// query failed.
async fn series(client: &Client, promql: &str) -> Option<Vec<Labels>> {
    let answer = client.query(promql).get().await.ok()?;
    let Data::Vector(vector) = answer.data() else {
        return Some(Vec::new());
    };
    Some(
        vector
            .iter()
            .map(|s| {
                s.metric()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .collect(),
    )
}

/// The nodes' names from the first of [`NODE_NAMES`] that has any.
async fn node_names(client: &Client) -> Vec<String> {
    for (promql, label) in NODE_NAMES {
        let names = label_values(&series(client, promql).await.unwrap_or_default(), label);
        if !names.is_empty() {
            return names;
        }
    }
    Vec::new()
}

/// The distinct values of `label`, sorted.
pub fn label_values(series: &[Labels], label: &str) -> Vec<String> {
    let mut values: Vec<String> = series
        .iter()
        .filter_map(|s| s.get(label).cloned())
        .collect();
    values.sort();
    values.dedup();
    values
}

/// Every URL's `/metrics`, concatenated (those that do not answer are
/// left out).
async fn scrape_all(urls: &[String]) -> Exposition {
    let Ok(client) = crate::tls::client_builder().timeout(TIMEOUT).build() else {
        return Exposition::default();
    };
    let fetches = urls.iter().map(|url| {
        let client = client.clone();
        async move {
            let text = client.get(url).send().await.ok()?.text().await.ok()?;
            exposition::parse(&text).ok()
        }
    });
    let mut merged = Exposition::default();
    for e in futures_util::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
    {
        merged.samples.extend(e.samples);
    }
    merged
}

/// The GPU models a scrape's DCGM series name.
pub fn dcgm_models_in(scraped: &Exposition) -> Vec<GpuModel> {
    let series: Vec<Labels> = scraped
        .samples
        .iter()
        .filter(|s| s.name.starts_with(DCGM_PREFIX))
        .map(|s| s.labels.clone())
        .collect();
    dcgm_models(&series)
}

/// The GPU models DCGM series name: one GPU per (`Hostname`, `UUID`, or
/// the `gpu` index where there is no UUID), grouped by model, in the
/// order first seen; series without a `modelName` are left out.
pub fn dcgm_models(series: &[Labels]) -> Vec<GpuModel> {
    let mut gpus: Vec<(String, String, String)> = Vec::new();
    for labels in series {
        let Some(model) = labels.get(MODEL_LABEL).filter(|m| !m.is_empty()) else {
            continue;
        };
        let host = labels.get(HOST_LABEL).cloned().unwrap_or_default();
        let id = labels
            .get(UUID_LABEL)
            .or_else(|| labels.get(INDEX_LABEL))
            .cloned()
            .unwrap_or_default();
        let gpu = (model.clone(), host, id);
        if !gpus.contains(&gpu) {
            gpus.push(gpu);
        }
    }
    let mut models: Vec<GpuModel> = Vec::new();
    for (model, host, _) in gpus {
        let entry = match models.iter_mut().position(|m| m.model == model) {
            Some(i) => &mut models[i],
            None => {
                models.push(GpuModel {
                    source: GpuModelSource::Dcgm,
                    model,
                    count: 0,
                    hosts: Vec::new(),
                    gpm: None,
                });
                models.last_mut().expect("just pushed")
            }
        };
        entry.count += 1;
        if !host.is_empty() && !entry.hosts.contains(&host) {
            entry.hosts.push(host);
        }
    }
    models
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_gpu_per_host_and_uuid_grouped_by_model() {
        let series = [
            labels(&[
                ("modelName", "Tesla T4"),
                ("Hostname", "a"),
                ("UUID", "GPU-1"),
            ]),
            // The same GPU in another family.
            labels(&[
                ("modelName", "Tesla T4"),
                ("Hostname", "a"),
                ("UUID", "GPU-1"),
            ]),
            labels(&[
                ("modelName", "Tesla T4"),
                ("Hostname", "b"),
                ("UUID", "GPU-2"),
            ]),
            labels(&[
                ("modelName", "NVIDIA A10G"),
                ("Hostname", "c"),
                ("gpu", "0"),
            ]),
            // Unlabelled samples name nothing.
            labels(&[]),
            labels(&[("modelName", ""), ("UUID", "GPU-3")]),
        ];
        let models = dcgm_models(&series);
        let seen: Vec<(&str, u32, Vec<&str>)> = models
            .iter()
            .map(|m| {
                let hosts = m.hosts.iter().map(String::as_str).collect();
                (m.model.as_str(), m.count, hosts)
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("Tesla T4", 2, vec!["a", "b"]),
                ("NVIDIA A10G", 1, vec!["c"])
            ]
        );
        assert!(
            models
                .iter()
                .all(|m| m.source == GpuModelSource::Dcgm && m.gpm.is_none())
        );
    }

    #[test]
    fn label_values_are_distinct_and_sorted() {
        let series = [
            labels(&[("nodename", "n2")]),
            labels(&[("nodename", "n1")]),
            labels(&[("nodename", "n2")]),
            labels(&[("instance", "x:9100")]),
        ];
        assert_eq!(label_values(&series, "nodename"), ["n1", "n2"]);
        assert!(label_values(&series, "job").is_empty());
    }

    #[test]
    fn this_host_is_named_only_when_its_proc_is_sampled() {
        let plan = SamplingPlan {
            target_here: Some("loopback target".into()),
            ..SamplingPlan::default()
        };
        let here = Identity::planned(&plan, None, true);
        assert_eq!(here.machines.len(), 1);
        let machine = &here.machines[0];
        assert_eq!(machine.source, MachineSource::Host);
        assert_eq!(
            machine.names,
            host::hostname().into_iter().collect::<Vec<_>>()
        );
        assert_eq!(machine.because.as_deref(), Some("loopback target"));
        assert!(Identity::planned(&plan, None, false).machines.is_empty());
        let pid = SamplingPlan {
            target_pid: Some(42),
            ..plan.clone()
        };
        let by_pid = Identity::planned(&pid, None, true);
        assert_eq!(by_pid.machines[0].because.as_deref(), Some("target pid 42"));
    }
}
