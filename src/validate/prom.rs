//! The validator's Prometheus calls: range queries timed one by one,
//! the metric names that exist in a window, label values of a metric,
//! the scrape interval, and the rules as `/api/v1/rules` gives them
//! (health and `lastError`, which the client crate's typed answer leaves
//! out, read from its raw JSON).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use prometheus_http_query::Client;
use prometheus_http_query::response::Data;
use serde_json::Value;

/// Timeout of one call: a dashboard query slower than this is a failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Label values listed for a metric whose selector matched nothing.
const MAX_LABEL_VALUES: usize = 10;

/// One Prometheus server.
pub struct Prom {
    client: Client,
    pub url: String,
}

/// A range query's answer: series with at least one sample inside
/// `[from, to]`, and the round trip.
pub struct Timed {
    pub series: Result<usize, String>,
    pub latency: Duration,
}

impl Prom {
    pub fn new(url: &str, access: &crate::tls::Access) -> Result<Prom, String> {
        let http = access
            .builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let client = Client::from(http, url).map_err(|e| format!("Prometheus URL {url}: {e}"))?;
        Ok(Prom {
            client,
            url: url.to_owned(),
        })
    }

    /// `expr` over `[start, end]` at `step`; series counted only when they
    /// have a sample inside `[from, to]`.
    pub async fn range(
        &self,
        expr: &str,
        (start, end): (f64, f64),
        step: f64,
        (from, to): (f64, f64),
    ) -> Timed {
        let began = Instant::now();
        let answer = self
            .client
            .query_range(expr, start as i64, end.ceil() as i64, step.max(1.0))
            .get()
            .await;
        let latency = began.elapsed();
        let series = answer.map_err(|e| e.to_string()).map(|r| match r.data() {
            Data::Matrix(series) => series
                .iter()
                .filter(|s| {
                    s.samples()
                        .iter()
                        .any(|p| p.timestamp() >= from - step && p.timestamp() <= to + step)
                })
                .count(),
            Data::Vector(v) => v.len(),
            Data::Scalar(_) => 1,
        });
        Timed { series, latency }
    }

    /// Every metric name with a sample in `[start, end]`.
    pub async fn names(&self, (start, end): (f64, f64)) -> Result<BTreeSet<String>, String> {
        self.client
            .label_values("__name__")
            .start(start as i64)
            .end(end.ceil() as i64)
            .get()
            .await
            .map(|v| v.into_iter().collect())
            .map_err(|e| format!("{}: metric names: {e}", self.url))
    }

    /// Whether `selector` matched any series in the `range_s` before `at`.
    pub async fn matches(&self, selector: &str, at: f64, range_s: f64) -> bool {
        let expr = format!(
            "count(last_over_time({selector}[{}s]))",
            range_s.ceil() as u64
        );
        self.instant(&expr, at).await.is_some_and(|d| !d.is_empty())
    }

    /// The values `metric` carries for `label` in the `range_s` before `at`.
    pub async fn label_values(
        &self,
        metric: &str,
        label: &str,
        at: f64,
        range_s: f64,
    ) -> Vec<String> {
        let expr = format!(
            "group by ({label}) (last_over_time({metric}[{}s]))",
            range_s.ceil() as u64
        );
        let mut values: Vec<String> = self
            .instant(&expr, at)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|labels| labels.get(label).cloned().unwrap_or_default())
            .collect();
        values.sort();
        values.truncate(MAX_LABEL_VALUES);
        values
    }

    /// A scalar: the sum of an instant vector's values; `None` for no data.
    pub async fn scalar(&self, expr: &str, at: f64) -> Option<f64> {
        let answer = self.client.query(expr).at(at as i64).get().await.ok()?;
        match answer.data() {
            Data::Vector(v) if !v.is_empty() => Some(v.iter().map(|s| s.sample().value()).sum()),
            Data::Scalar(s) => Some(s.value()),
            _ => None,
        }
    }

    /// An instant vector's label sets.
    async fn instant(&self, expr: &str, at: f64) -> Option<Vec<HashMap<String, String>>> {
        let answer = self.client.query(expr).at(at as i64).get().await.ok()?;
        match answer.data() {
            Data::Vector(v) => Some(v.iter().map(|s| s.metric().clone()).collect()),
            _ => None,
        }
    }

    /// The scrape interval of the active targets (the shortest), seconds.
    pub async fn scrape_interval_s(&self) -> Option<f64> {
        let targets = self.client.targets(None).await.ok()?;
        targets
            .active()
            .iter()
            .map(|t| t.scrape_interval().as_seconds_f64())
            .filter(|s| *s > 0.0)
            .min_by(f64::total_cmp)
    }

    /// `/api/v1/rules`' `data.groups`, as JSON.
    pub async fn rule_groups(&self) -> Result<Vec<Value>, String> {
        let response = self
            .client
            .rules()
            .get_raw()
            .await
            .map_err(|e| format!("{}: rules: {e}", self.url))?;
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("{}: rules: {e}", self.url))?;
        body.pointer("/data/groups")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| format!("{}: rules: no data.groups in the answer", self.url))
    }

    /// `ALERTS{alertstate="firing"}` over `[start, end]` at `step`: per
    /// series its labels and the timestamps it was firing at.
    pub async fn firing(
        &self,
        (start, end): (f64, f64),
        step: f64,
    ) -> Result<Vec<(HashMap<String, String>, Vec<f64>)>, String> {
        let answer = self
            .client
            .query_range(
                "ALERTS{alertstate=\"firing\"}",
                start as i64,
                end.ceil() as i64,
                step,
            )
            .get()
            .await
            .map_err(|e| format!("{}: ALERTS: {e}", self.url))?;
        let Data::Matrix(series) = answer.data() else {
            return Ok(Vec::new());
        };
        Ok(series
            .iter()
            .map(|s| {
                let times = s.samples().iter().map(|p| p.timestamp()).collect();
                (s.metric().clone(), times)
            })
            .collect())
    }
}
