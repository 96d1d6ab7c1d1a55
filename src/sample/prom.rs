//! The Prometheus sampler, through prometheus-http-query: every interval the
//! query set runs as concurrent instant queries, each value stored with the
//! query's latency; a query that returns nothing falls back to its aliases
//! (renamed metrics) and remembers the one that answered. After the run,
//! range queries over the window at the same step fill the gaps (and, with
//! a raw sink, export every query's series as Prometheus answered them),
//! and the alerts that fired during the window are read back.
//!
//! Prometheus down or slow is measured (a gap and an error), never a crash:
//! every call has an HTTP timeout one interval long, so a slow server cannot
//! pile queries up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, join_all};
use prometheus_http_query::Client;

use crate::tls::Access;
use prometheus_http_query::response::{Data, Rule};

use super::queries::{Query, ScrapeOp, expand};
use super::raw::{RawExport, RawSeries, RawSink};
use super::{AfterRun, Reading, SampledStore, Source};
use crate::report::{FiredAlert, RulesHealth, RunHistogram};

/// One query's answer at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub value: Option<f64>,
    pub latency: Duration,
    pub error: Option<String>,
}

/// The sampler for one Prometheus server and one set of queries.
pub struct PromSampler {
    client: Client,
    queries: Vec<Query>,
    interval: Duration,
    /// Per query, the expression that last answered (0 = `promql`).
    chosen: Vec<usize>,
}

impl std::fmt::Debug for PromSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromSampler")
            .field("queries", &self.queries.len())
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl PromSampler {
    pub fn new(
        url: &str,
        queries: Vec<Query>,
        interval: Duration,
        access: &Access,
    ) -> Result<PromSampler, String> {
        let http = access
            .builder()
            .timeout(interval.max(Duration::from_millis(200)))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let client = Client::from(http, url).map_err(|e| format!("Prometheus URL {url}: {e}"))?;
        Ok(PromSampler {
            chosen: vec![0; queries.len()],
            client,
            queries,
            interval,
        })
    }

    pub fn queries(&self) -> &[Query] {
        &self.queries
    }

    /// Every query once, concurrently; answers in query order.
    pub async fn sample(&mut self) -> Vec<Answer> {
        let this = &*self;
        let answers = join_all((0..this.queries.len()).map(|i| this.answer(i))).await;
        answers
            .into_iter()
            .enumerate()
            .map(|(i, (answer, chosen))| {
                self.chosen[i] = chosen;
                answer
            })
            .collect()
    }

    /// Query `i`: its chosen expression, then the others in order while
    /// they return no data.
    async fn answer(&self, i: usize) -> (Answer, usize) {
        let q = &self.queries[i];
        let exprs: Vec<&String> = std::iter::once(&q.promql).chain(&q.aliases).collect();
        let start = Instant::now();
        let order = std::iter::once(self.chosen[i])
            .chain((0..exprs.len()).filter(|j| *j != self.chosen[i]));
        let mut last_error = None;
        for j in order {
            match self.instant(exprs[j]).await {
                Ok(Some(value)) => {
                    let answer = Answer {
                        value: Some(value),
                        latency: start.elapsed(),
                        error: None,
                    };
                    return (answer, j);
                }
                Ok(None) => {}
                Err(e) => {
                    // The server failed, not the name: aliases would too.
                    last_error = Some(e);
                    break;
                }
            }
        }
        let answer = Answer {
            value: None,
            latency: start.elapsed(),
            error: last_error,
        };
        (answer, self.chosen[i])
    }

    async fn instant(&self, expr: &str) -> Result<Option<f64>, String> {
        let expr = expand(expr, self.interval.as_secs_f64());
        let timeout_ms = self.interval.as_millis().max(100) as i64;
        let result = self
            .client
            .query(expr)
            .timeout(timeout_ms)
            .get()
            .await
            .map_err(|e| e.to_string())?;
        Ok(value_of(result.data()))
    }

    /// Every quantile query's histogram over the run's window (Unix
    /// seconds): `sum by (le) (increase(<metric>_bucket[window]))` at its
    /// end, with the recipe's metric names tried in order.
    pub async fn run_histograms(&self, (start, end): (i64, i64)) -> Vec<RunHistogram> {
        let range = (end - start).max(1);
        let mut found = Vec::new();
        for q in &self.queries {
            let Some(recipe) = q.scrape.as_ref().filter(|r| r.op == ScrapeOp::Quantile) else {
                continue;
            };
            let selector: Vec<String> = recipe
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            for name in &recipe.metric {
                let expr = format!(
                    "sum by (le) (increase({name}_bucket{{{}}}[{range}s]))",
                    selector.join(",")
                );
                let Ok(answer) = self.client.query(expr).at(end).get().await else {
                    break; // the server failed, not the name
                };
                let buckets = buckets_of(answer.data(), q.unit);
                if !buckets.is_empty() {
                    found.push(RunHistogram {
                        query: q.name.clone(),
                        metric: name.clone(),
                        buckets,
                    });
                    break;
                }
            }
        }
        found
    }

    /// A range query over `[start, end]` (Unix seconds) at this sampler's
    /// step, with the expression that answered during the run; summed over
    /// series per timestamp, as instant answers are.
    pub async fn range(&self, i: usize, start: i64, end: i64) -> Result<Vec<(f64, f64)>, String> {
        Ok(summed(&self.range_export(i, start, end).await.series?))
    }

    /// The range query of [`range`](Self::range) with every series as
    /// Prometheus answered it (the run folder's export).
    pub async fn range_export(&self, i: usize, start: i64, end: i64) -> RawExport {
        let q = &self.queries[i];
        let expr = std::iter::once(&q.promql)
            .chain(&q.aliases)
            .nth(self.chosen[i])
            .unwrap_or(&q.promql);
        let step = range_step(self.interval, start, end);
        let query = expand(expr, step);
        let result = self
            .client
            .query_range(query.clone(), start, end, step)
            .get()
            .await;
        let series = match result {
            Ok(answer) => Ok(match answer.data() {
                Data::Matrix(series) => series.iter().map(raw_series).collect(),
                _ => Vec::new(),
            }),
            Err(e) => Err(e.to_string()),
        };
        RawExport {
            name: q.name.clone(),
            query,
            step_s: step,
            series,
        }
    }

    /// Alerts firing at any point in `[start, end]` (Unix seconds), each
    /// with whether it was already firing before the window began.
    pub async fn alerts(&self, start: i64, end: i64) -> Result<Vec<FiredAlert>, String> {
        let step = self.interval.as_secs_f64().max(1.0);
        let firing = self
            .client
            .query_range("ALERTS{alertstate=\"firing\"}", start, end, step)
            .get()
            .await
            .map_err(|e| e.to_string())?;
        let Data::Matrix(series) = firing.data() else {
            return Ok(Vec::new());
        };
        let mut alerts = Vec::new();
        for s in series {
            let labels = s.metric();
            let name = labels.get("alertname").cloned().unwrap_or_default();
            let first = s.samples().first().map_or(start as f64, |x| x.timestamp());
            let began = self.active_since(labels, start).await;
            alerts.push(FiredAlert {
                name,
                labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                first_seen_unix: first,
                began_during_run: began.is_none_or(|t| t >= start as f64),
            });
        }
        Ok(alerts)
    }

    /// When an alert became active, from ALERTS_FOR_STATE at `at`.
    async fn active_since(
        &self,
        labels: &std::collections::HashMap<String, String>,
        at: i64,
    ) -> Option<f64> {
        let selector: Vec<String> = labels
            .iter()
            .filter(|(k, _)| *k != "__name__" && *k != "alertstate")
            .map(|(k, v)| format!("{k}={:?}", v))
            .collect();
        let expr = format!("ALERTS_FOR_STATE{{{}}}", selector.join(","));
        let result = self.client.query(expr).at(at).get().await.ok()?;
        value_of(result.data())
    }

    /// Rule health: (rules, rules whose last evaluation failed, names).
    pub async fn rules_health(&self) -> Result<RulesHealth, String> {
        let groups = self.client.rules().get().await.map_err(|e| e.to_string())?;
        let mut health = RulesHealth::default();
        for group in &groups {
            for rule in group.rules() {
                let (name, ok) = match rule {
                    Rule::Alerting(r) => (r.name().to_string(), r.health().is_good()),
                    Rule::Recording(r) => (r.name().to_string(), r.health().is_good()),
                };
                health.rules += 1;
                if !ok {
                    health.unhealthy.push(name);
                }
            }
        }
        Ok(health)
    }
}

/// Prometheus as a [`Source`]: every tick the query set as concurrent
/// instant queries (each reading carries its query's latency); after the
/// load, range queries for the queries that missed samples, then the
/// alerts and the rules' health.
#[derive(Debug)]
pub struct PromSource {
    url: String,
    sampler: PromSampler,
    /// Where every query's range export goes after the load.
    raw: Option<Arc<dyn RawSink>>,
}

impl PromSource {
    pub fn new(
        url: &str,
        queries: Vec<Query>,
        interval: Duration,
        access: &Access,
    ) -> Result<PromSource, String> {
        Ok(PromSource {
            url: url.to_owned(),
            sampler: PromSampler::new(url, queries, interval, access)?,
            raw: None,
        })
    }

    /// Fills the store's gaps from range queries over `window` (Unix
    /// seconds), and hands each query's range answer to the raw sink. Only
    /// queries that missed samples are asked again when there is no sink;
    /// with one, every query is asked once, its answer serving both.
    async fn backfill(&self, window: (i64, i64), store: &mut SampledStore) -> u64 {
        let mut filled = 0;
        for (i, q) in self.sampler.queries().iter().enumerate() {
            let gaps = store.has_gaps(&q.name);
            if !gaps && self.raw.is_none() {
                continue;
            }
            let export = self.sampler.range_export(i, window.0, window.1).await;
            if let (true, Ok(series)) = (gaps, &export.series) {
                let on_run_clock: Vec<(f64, f64)> = summed(series)
                    .iter()
                    .map(|(unix, v)| (unix - window.0 as f64, q.unit.normalise(*v)))
                    .collect();
                filled += store.backfill(&q.name, &on_run_clock, export.step_s);
            }
            if let Some(sink) = &self.raw {
                sink.export(export);
            }
        }
        filled
    }
}

impl Source for PromSource {
    fn describe(&self) -> String {
        format!("prometheus {}", self.url)
    }

    fn names(&self) -> Vec<String> {
        self.sampler
            .queries()
            .iter()
            .map(|q| q.name.clone())
            .collect()
    }

    fn keep_raw(&mut self, sink: Arc<dyn RawSink>) {
        self.raw = Some(sink);
    }

    fn sample(&mut self, t: f64) -> BoxFuture<'_, Vec<Reading>> {
        Box::pin(async move {
            let answers = self.sampler.sample().await;
            self.sampler
                .queries()
                .iter()
                .zip(answers)
                .map(|(q, a)| Reading {
                    name: q.name.clone(),
                    unit: q.unit.stored(),
                    t,
                    value: a.value.map(|v| q.unit.normalise(v)),
                    aggregate: q.aggregate,
                    query_latency_ms: Some(a.latency.as_secs_f64() * 1000.0),
                    source: "prometheus",
                })
                .collect()
        })
    }

    /// Every query once before the run (Prometheus's last scrape of the
    /// idle server), stamped second 0.
    fn baseline(&mut self) -> BoxFuture<'_, Vec<Reading>> {
        self.sample(0.0)
    }

    fn finish<'a>(
        &'a mut self,
        window: (i64, i64),
        store: &'a mut SampledStore,
    ) -> BoxFuture<'a, AfterRun> {
        Box::pin(async move {
            AfterRun {
                backfilled: self.backfill(window, store).await,
                alerts: Some(self.sampler.alerts(window.0, window.1).await),
                rules: Some(self.sampler.rules_health().await),
                histograms: self.sampler.run_histograms(window).await,
                by_model: Vec::new(),
                backends: Vec::new(),
            }
        })
    }
}

/// Most points Prometheus returns for one series of a range query.
const MAX_RANGE_POINTS: f64 = 11_000.0;

/// The step of a range query over `[start, end]`: the sampling interval
/// (at least a second), coarser when the window would need more points
/// than Prometheus returns for a series (a run of over three hours at 1 s).
fn range_step(interval: Duration, start: i64, end: i64) -> f64 {
    let fits = ((end - start).max(0) as f64 / MAX_RANGE_POINTS).ceil();
    interval.as_secs_f64().max(1.0).max(fits)
}

fn raw_series(s: &prometheus_http_query::response::RangeVector) -> RawSeries {
    RawSeries {
        metric: s
            .metric()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        values: s
            .samples()
            .iter()
            .map(|x| (x.timestamp(), x.value()))
            .collect(),
    }
}

/// Series summed per timestamp (finite sums only), in time order.
fn summed(series: &[RawSeries]) -> Vec<(f64, f64)> {
    let mut by_time: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for s in series {
        for (t, v) in &s.values {
            let key = (t * 1000.0).round() as i64;
            by_time.entry(key).or_insert((*t, 0.0)).1 += v;
        }
    }
    by_time
        .into_values()
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// (le, cumulative count) of a `sum by (le)` answer, ascending, bounds in
/// the stored unit.
fn buckets_of(data: &Data, unit: super::Unit) -> Vec<(f64, f64)> {
    let Data::Vector(v) = data else {
        return Vec::new();
    };
    let mut buckets: Vec<(f64, f64)> = v
        .iter()
        .filter_map(|s| {
            let le: f64 = match s.metric().get("le")?.as_str() {
                "+Inf" => f64::INFINITY,
                text => text.parse().ok()?,
            };
            let le = if le.is_finite() {
                unit.normalise(le)
            } else {
                le
            };
            Some((le, s.sample().value()))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The instances of Prometheus job `job` (`up{job="…"}`, up or down), as
/// base URLs (`http://` + the `instance` label), in the answer's order.
pub async fn job_instances(url: &str, job: &str, access: &Access) -> Result<Vec<String>, String> {
    let http = access
        .builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let client = Client::from(http, url).map_err(|e| format!("Prometheus URL {url}: {e}"))?;
    let answer = client
        .query(format!("up{{job=\"{job}\"}}"))
        .get()
        .await
        .map_err(|e| format!("{url}: up{{job=\"{job}\"}}: {e}"))?;
    let Data::Vector(series) = answer.data() else {
        return Err(format!("{url}: up{{job=\"{job}\"}} is not a vector"));
    };
    let mut found: Vec<String> = Vec::new();
    for s in series {
        if let Some(instance) = s.metric().get("instance") {
            let base = format!("http://{instance}");
            if !found.contains(&base) {
                found.push(base);
            }
        }
    }
    Ok(found)
}

/// The value of an instant answer: a scalar, or the sum of a vector's
/// series (query sets aggregate, so this is normally one series); `None`
/// for no data.
fn value_of(data: &Data) -> Option<f64> {
    match data {
        Data::Scalar(s) => Some(s.value()).filter(|v| v.is_finite()),
        Data::Vector(v) if v.is_empty() => None,
        Data::Vector(v) => {
            let sum: f64 = v.iter().map(|s| s.sample().value()).sum();
            sum.is_finite().then_some(sum)
        }
        Data::Matrix(_) => None,
    }
}
