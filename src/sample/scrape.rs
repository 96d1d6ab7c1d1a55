//! Direct scrape: without a Prometheus server, read the target's `/metrics`
//! (and a DCGM exporter's) every interval and derive the same named values
//! as the query sets' PromQL: gauges as they are, rates from counter
//! increases between two scrapes, quantiles from the increase of histogram
//! buckets (interpolated within a bucket as `histogram_quantile` does).
//! A recipe reads only the series that carry its `labels`, and falls back
//! to its `alternatives` when none of its metric names is present.
//! Every body read (or why none came) goes to the raw sink when there is
//! one, moved, never kept: memory does not grow with the run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::exposition::{self, Exposition, Sample};
use super::queries::{Query, Recipe, ScrapeOp};
use super::raw::{RawScrape, RawSink};
use super::{Reading, Source};
use crate::report::{BackendValues, ModelCounter, RunHistogram};

/// Direct scrape as a [`Source`]: every tick, every URL's `/metrics` read
/// (concurrently, concatenated), and each query's recipe evaluated against
/// it and the scrape before. The first tick gives no rates (they need two
/// scrapes); that is not a gap.
pub struct ScrapeSource {
    urls: Vec<String>,
    /// The queries that have a scrape recipe.
    queries: Vec<Query>,
    /// `None` when no HTTP client could be built: every value is a gap.
    client: Option<reqwest::Client>,
    before: Option<(Exposition, f64)>,
    /// The first scrape that answered: histograms over the run are
    /// measured from it.
    baseline: Option<Exposition>,
    /// The engines behind a router, each also read on its own (by index
    /// into `urls`).
    backends: Vec<(usize, Backend)>,
    /// Yields the run's values (false: only each backend's, beside a
    /// Prometheus that gives the run's).
    run_values: bool,
    /// Where every body read goes, as read (the run folder's raw data).
    raw: Option<Arc<dyn RawSink>>,
}

/// One engine behind a router: its own values, kept apart from the
/// run's (which sum every engine), for the per-backend table.
#[derive(Debug, Default)]
struct Backend {
    /// The pod a DCGM exporter attributes its GPUs to, and the GPU
    /// queries narrowed to it (gauges only).
    pod: Option<String>,
    gpu_queries: Vec<Query>,
    /// The GPUs seen attributed to it ("GPU 0 NVIDIA L4").
    gpus: std::collections::BTreeSet<String>,
    before: Option<(Exposition, f64)>,
    baseline: Option<Exposition>,
    store: super::SampledStore,
    answered: u64,
    missed: u64,
}

impl ScrapeSource {
    pub fn new(urls: Vec<String>, queries: Vec<Query>, interval: Duration) -> ScrapeSource {
        let client = crate::tls::client_builder()
            .timeout(interval.max(Duration::from_millis(200)))
            .build()
            .ok();
        ScrapeSource {
            urls,
            queries: queries.into_iter().filter(|q| q.scrape.is_some()).collect(),
            client,
            before: None,
            baseline: None,
            backends: Vec::new(),
            run_values: true,
            raw: None,
        }
    }

    /// Keeps only each backend's values: the run's come from elsewhere.
    pub fn per_backend_only(mut self) -> ScrapeSource {
        self.run_values = false;
        self
    }

    /// Also keeps the values of each of `backends` (URLs among this
    /// source's) apart, for the report's per-backend table; a backend with
    /// a pod also gets the GPU values of the DCGM series attributed to it.
    pub fn with_backends(mut self, backends: &[super::BackendTarget]) -> ScrapeSource {
        self.backends = backends
            .iter()
            .filter_map(|b| {
                let i = self.urls.iter().position(|u| *u == b.metrics_url)?;
                let gpu_queries = b
                    .pod
                    .as_deref()
                    .map(|pod| pod_gpu_queries(&self.queries, pod))
                    .unwrap_or_default();
                let backend = Backend {
                    pod: b.pod.clone(),
                    gpu_queries,
                    ..Backend::default()
                };
                Some((i, backend))
            })
            .collect();
        self
    }

    /// Every URL's scrape, in the order of `urls` (`None`: it did not
    /// answer); each body, or why there is none, goes to the raw sink.
    async fn scrape_each(&self) -> Vec<Option<Exposition>> {
        let Some(client) = self.client.as_ref() else {
            return vec![None; self.urls.len()];
        };
        let raw = self.raw.as_deref();
        let fetches = self.urls.iter().map(|url| async move {
            let at = chrono::Utc::now();
            let body = fetch(client, url).await;
            let parsed = body.as_deref().ok().and_then(|b| exposition::parse(b).ok());
            if let Some(sink) = raw {
                let url = url.clone();
                sink.scrape(RawScrape { at, url, body });
            }
            parsed
        });
        futures_util::future::join_all(fetches).await
    }

    /// Every URL's scrape concatenated (`None` when none answered); each
    /// backend's own scrape goes to its values first.
    async fn scrape_all(&mut self, t: f64) -> Option<Exposition> {
        let each = self.scrape_each().await;
        for (i, backend) in &mut self.backends {
            backend.sampled(&self.queries, each[*i].as_ref(), t);
        }
        let mut merged: Option<Exposition> = None;
        for e in each.into_iter().flatten() {
            merged
                .get_or_insert_with(Exposition::default)
                .samples
                .extend(e.samples);
        }
        for (_, backend) in &mut self.backends {
            backend.gpus_sampled(merged.as_ref(), t);
        }
        merged
    }

    fn readings(&self, now: Option<&Exposition>, t: f64) -> Vec<Reading> {
        if !self.run_values {
            return Vec::new();
        }
        readings(&self.queries, self.before.as_ref(), now, t)
    }

    /// Each backend's values over the run.
    fn backend_reports(&self) -> Vec<BackendValues> {
        self.backends
            .iter()
            .map(|(i, b)| b.report(&self.urls[*i], &self.queries))
            .collect()
    }
}

impl Backend {
    /// Its GPUs' values from the merged scrape (the DCGM exporter's
    /// series whose `pod` is its own), and which GPUs they were.
    fn gpus_sampled(&mut self, merged: Option<&Exposition>, t: f64) {
        let Some(pod) = &self.pod else { return };
        for reading in readings(&self.gpu_queries, None, merged, t) {
            self.store.add(reading);
        }
        for s in merged.into_iter().flat_map(|e| e.named(GPU_FAMILY)) {
            if s.labels.get(POD_LABEL) == Some(pod) {
                let gpu = s.labels.get("gpu").map_or("?", String::as_str);
                let model = s.labels.get("modelName").map_or("", String::as_str);
                self.gpus
                    .insert(format!("GPU {gpu} {model}").trim_end().to_owned());
            }
        }
    }

    fn sampled(&mut self, queries: &[Query], now: Option<&Exposition>, t: f64) {
        for reading in readings(queries, self.before.as_ref(), now, t) {
            self.store.add(reading);
        }
        match now {
            Some(now) => {
                self.answered += 1;
                self.baseline.get_or_insert_with(|| now.clone());
                self.before = Some((now.clone(), t));
            }
            None => self.missed += 1,
        }
    }

    fn report(&self, url: &str, queries: &[Query]) -> BackendValues {
        let by_model = match (&self.baseline, &self.before) {
            (Some(first), Some((last, _))) => counters_by_model(queries, first, last),
            _ => Vec::new(),
        };
        BackendValues {
            url: url.to_owned(),
            pod: self.pod.clone(),
            gpus: self.gpus.iter().cloned().collect(),
            scrapes_answered: self.answered,
            scrapes_missed: self.missed,
            values: self.store.summaries(),
            by_model,
        }
    }
}

/// One `/metrics` body, or why there is none.
async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    response.text().await.map_err(|e| e.to_string())
}

/// The DCGM exporter's Kubernetes attribution label, and a family every
/// GPU has a series of.
const POD_LABEL: &str = "pod";
const GPU_FAMILY: &str = "DCGM_FI_DEV_GPU_UTIL";

/// The gauge queries that read the DCGM exporter, narrowed to the series
/// attributed to `pod`.
fn pod_gpu_queries(queries: &[Query], pod: &str) -> Vec<Query> {
    fn narrow(recipe: &mut Recipe, pod: &str) {
        recipe.labels.insert(POD_LABEL.to_owned(), pod.to_owned());
        for alternative in &mut recipe.alternatives {
            narrow(alternative, pod);
        }
    }
    let reads_dcgm = |r: &Recipe| r.metric.iter().any(|m| m.starts_with("DCGM_"));
    queries
        .iter()
        .filter(|q| {
            q.scrape
                .as_ref()
                .is_some_and(|r| reads_dcgm(r) && !r.needs_previous())
        })
        .cloned()
        .map(|mut q| {
            if let Some(recipe) = &mut q.scrape {
                narrow(recipe, pod);
            }
            q
        })
        .collect()
}

/// Every query's reading from the scrape `now` at `t`, and the one
/// before it (for rates).
fn readings(
    queries: &[Query],
    before: Option<&(Exposition, f64)>,
    now: Option<&Exposition>,
    t: f64,
) -> Vec<Reading> {
    let previous = before.map(|(b, at)| (b, t - at));
    let mut readings = Vec::with_capacity(queries.len());
    for q in queries {
        let Some(recipe) = &q.scrape else { continue };
        if before.is_none() && recipe.needs_previous() {
            // Rates need two scrapes: the first is not a gap.
            continue;
        }
        let value = now.and_then(|e| evaluate(recipe, e, previous));
        readings.push(Reading {
            name: q.name.clone(),
            unit: q.unit.stored(),
            t,
            value: value.map(|v| q.unit.normalise(v)),
            aggregate: q.aggregate,
            query_latency_ms: None,
            source: "scrape",
        });
    }
    readings
}

impl Source for ScrapeSource {
    fn describe(&self) -> String {
        let what = if self.run_values {
            "scrape"
        } else {
            "scrape (each backend)"
        };
        format!("{what} {}", self.urls.join(", "))
    }

    fn names(&self) -> Vec<String> {
        if !self.run_values {
            return Vec::new();
        }
        self.queries.iter().map(|q| q.name.clone()).collect()
    }

    fn keep_raw(&mut self, sink: Arc<dyn RawSink>) {
        self.raw = Some(sink);
    }

    fn sample(&mut self, t: f64) -> BoxFuture<'_, Vec<Reading>> {
        Box::pin(async move {
            let now = self.scrape_all(t).await;
            let readings = self.readings(now.as_ref(), t);
            if let Some(now) = now {
                if self.baseline.is_none() {
                    self.baseline = Some(now.clone());
                }
                self.before = Some((now, t));
            }
            readings
        })
    }

    fn baseline(&mut self) -> BoxFuture<'_, Vec<Reading>> {
        Box::pin(async move {
            let Some(now) = self.scrape_all(0.0).await else {
                return Vec::new();
            };
            let readings = self.readings(Some(&now), 0.0);
            self.baseline = Some(now.clone());
            self.before = Some((now, 0.0));
            readings
        })
    }

    fn finish<'a>(
        &'a mut self,
        _window: (i64, i64),
        _store: &'a mut super::SampledStore,
    ) -> BoxFuture<'a, super::AfterRun> {
        let (histograms, by_model) = match (&self.baseline, &self.before) {
            (Some(first), Some((last, _))) if self.run_values => (
                run_histograms(&self.queries, first, last),
                counters_by_model(&self.queries, first, last),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let backends = self.backend_reports();
        Box::pin(async move {
            super::AfterRun {
                histograms,
                by_model,
                backends,
                ..super::AfterRun::default()
            }
        })
    }
}

/// The label engines name a series' model with (vLLM, SGLang).
pub const MODEL_LABEL: &str = "model_name";

/// Every counter query's increase from `first` to `last`, by the model its
/// series are labelled with; counters without that label are left out.
pub fn counters_by_model(
    queries: &[Query],
    first: &Exposition,
    last: &Exposition,
) -> Vec<ModelCounter> {
    queries
        .iter()
        .filter(|q| q.aggregate == super::queries::Aggregate::Delta)
        .filter_map(|q| {
            let recipe = q.scrape.as_ref().filter(|r| r.op == ScrapeOp::Sum)?;
            let (recipe, name) = resolve(recipe, last)?;
            let by = |e: &Exposition| {
                let mut sums: BTreeMap<String, f64> = BTreeMap::new();
                for s in matching(e, name, &recipe.labels) {
                    if let Some(model) = s.labels.get(MODEL_LABEL) {
                        *sums.entry(model.clone()).or_default() += s.value;
                    }
                }
                sums
            };
            let (before, after) = (by(first), by(last));
            let by_model: BTreeMap<String, f64> = after
                .into_iter()
                .map(|(m, v)| {
                    let increase = (v - before.get(&m).copied().unwrap_or(0.0)).max(0.0);
                    (m, increase)
                })
                .collect();
            (!by_model.is_empty()).then(|| ModelCounter {
                query: q.name.clone(),
                by_model,
            })
        })
        .collect()
}

/// Every quantile query's histogram, as it grew from `first` to `last`
/// (bucket bounds in the query's stored unit).
pub fn run_histograms(
    queries: &[Query],
    first: &Exposition,
    last: &Exposition,
) -> Vec<RunHistogram> {
    queries
        .iter()
        .filter_map(|q| {
            let recipe = q.scrape.as_ref().filter(|r| r.op == ScrapeOp::Quantile)?;
            let (recipe, name) = resolve(recipe, last)?;
            let buckets: Vec<(f64, f64)> = bucket_increase(name, &recipe.labels, last, first)
                .into_iter()
                .map(|(le, count)| {
                    (
                        if le.is_finite() {
                            q.unit.normalise(le)
                        } else {
                            le
                        },
                        count,
                    )
                })
                .collect();
            (!buckets.is_empty()).then(|| RunHistogram {
                query: q.name.clone(),
                metric: name.to_owned(),
                buckets,
            })
        })
        .collect()
}

/// The value of `recipe` given the current scrape and the one before it,
/// `elapsed_s` seconds earlier. `None` when the metric is absent (and so
/// is every alternative's), or when a rate has no previous scrape yet.
pub fn evaluate(
    recipe: &Recipe,
    now: &Exposition,
    before: Option<(&Exposition, f64)>,
) -> Option<f64> {
    let (recipe, name) = resolve(recipe, now)?;
    let labels = &recipe.labels;
    let values = || matching(now, name, labels).map(|s| s.value);
    match recipe.op {
        ScrapeOp::Sum => Some(values().sum()),
        ScrapeOp::Max => values().reduce(f64::max),
        ScrapeOp::Min => values().reduce(f64::min),
        ScrapeOp::Rate => rate(name, labels, now, before?),
        ScrapeOp::RatioOfRates => {
            let unfiltered = Labels::new();
            let over = first_present(&recipe.over, &unfiltered, now)?;
            let num = rate(name, labels, now, before?)?;
            let den = rate(over, &unfiltered, now, before?)?;
            (den > 0.0).then(|| num / den)
        }
        ScrapeOp::HistogramMean => {
            let sum = rate(&format!("{name}_sum"), labels, now, before?)?;
            let count = rate(&format!("{name}_count"), labels, now, before?)?;
            (count > 0.0).then(|| sum / count)
        }
        ScrapeOp::Quantile => {
            let q = recipe.quantile?;
            let (earlier, _) = before?;
            quantile(q, &bucket_increase(name, labels, now, earlier))
        }
    }
}

/// Required label values (label → value).
type Labels = BTreeMap<String, String>;

/// The recipe that applies to this scrape, and the metric name it reads:
/// the recipe itself when one of its names is present, else the first of
/// its alternatives (depth first) that is.
fn resolve<'a>(recipe: &'a Recipe, e: &Exposition) -> Option<(&'a Recipe, &'a str)> {
    match first_present(&recipe.metric, &recipe.labels, e) {
        Some(name) => Some((recipe, name)),
        None => recipe.alternatives.iter().find_map(|a| resolve(a, e)),
    }
}

/// The samples named `name` that carry every label value of `labels`.
fn matching<'a>(
    e: &'a Exposition,
    name: &'a str,
    labels: &'a Labels,
) -> impl Iterator<Item = &'a Sample> + 'a {
    e.named(name)
        .filter(move |s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
}

/// The first of `names` the scrape has a matching series of (histograms by
/// their `_bucket` or `_count`).
fn first_present<'a>(names: &'a [String], labels: &Labels, e: &Exposition) -> Option<&'a str> {
    let has = |n: &str| matching(e, n, labels).next().is_some();
    names
        .iter()
        .map(String::as_str)
        .find(|n| has(n) || has(&format!("{n}_bucket")) || has(&format!("{n}_count")))
}

fn total(name: &str, labels: &Labels, e: &Exposition) -> Option<f64> {
    let mut values = matching(e, name, labels).map(|s| s.value).peekable();
    values.peek()?;
    Some(values.sum())
}

/// Per-second increase of a summed counter; a reset (the total went down)
/// counts from zero, as Prometheus does.
fn rate(
    name: &str,
    labels: &Labels,
    now: &Exposition,
    (before, elapsed_s): (&Exposition, f64),
) -> Option<f64> {
    let a = total(name, labels, before).unwrap_or(0.0);
    let b = total(name, labels, now)?;
    if elapsed_s <= 0.0 {
        return None;
    }
    let increase = if b >= a { b - a } else { b };
    Some(increase / elapsed_s)
}

/// Cumulative bucket counts (by upper bound) gained between two scrapes,
/// summed over every other label.
fn bucket_increase(
    name: &str,
    labels: &Labels,
    now: &Exposition,
    before: &Exposition,
) -> Vec<(f64, f64)> {
    let bucket = format!("{name}_bucket");
    let sum_by_le = |e: &Exposition| {
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in matching(e, &bucket, labels) {
            let Some(le) = s.labels.get("le").and_then(|l| parse_le(l)) else {
                continue;
            };
            by_le.entry(order_key(le)).or_insert((le, 0.0)).1 += s.value;
        }
        by_le
    };
    let (now, before) = (sum_by_le(now), sum_by_le(before));
    now.iter()
        .map(|(k, (le, count))| {
            let earlier = before.get(k).map_or(0.0, |b| b.1);
            (*le, (count - earlier).max(0.0))
        })
        .collect()
}

fn parse_le(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        t => t.parse().ok(),
    }
}

/// A sort key that orders non-negative floats (and +Inf) numerically.
fn order_key(le: f64) -> u64 {
    le.to_bits()
}

/// `histogram_quantile` over cumulative buckets sorted by upper bound:
/// linear interpolation inside the bucket, the lower bound of the last
/// finite bucket when the rank falls in +Inf.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(previous.0);
            }
            let in_bucket = count - previous.1;
            let fraction = if in_bucket > 0.0 {
                (rank - previous.1) / in_bucket
            } else {
                1.0
            };
            return Some(previous.0 + (le - previous.0) * fraction);
        }
        previous = (le, count);
    }
    Some(previous.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::exposition::parse;

    fn recipe(op: ScrapeOp, metric: &str) -> Recipe {
        Recipe {
            op,
            metric: vec!["missing".into(), metric.into()],
            over: vec!["q_total".into()],
            quantile: Some(0.5),
            labels: Labels::new(),
            alternatives: Vec::new(),
        }
    }

    fn with_labels(mut r: Recipe, labels: &[(&str, &str)]) -> Recipe {
        r.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        r
    }

    #[test]
    fn labels_select_series_and_alternatives_stand_in_for_absent_ones() {
        let e = parse("w{reason=\"capacity\"} 12\nw{reason=\"deferred\"} 3\nplain 15\n").unwrap();
        let capacity = with_labels(recipe(ScrapeOp::Sum, "w"), &[("reason", "capacity")]);
        assert_eq!(evaluate(&capacity, &e, None), Some(12.0));
        assert_eq!(evaluate(&recipe(ScrapeOp::Sum, "w"), &e, None), Some(15.0));
        let mut preferred = with_labels(recipe(ScrapeOp::Max, "w"), &[("reason", "other")]);
        preferred.alternatives = vec![recipe(ScrapeOp::Sum, "plain")];
        assert_eq!(evaluate(&preferred, &e, None), Some(15.0), "fallback");
        preferred.labels.clear();
        assert_eq!(evaluate(&preferred, &e, None), Some(12.0), "primary");
        let zero = parse("w{reason=\"capacity\"} 0\nw{reason=\"deferred\"} 0\n").unwrap();
        let rated = with_labels(recipe(ScrapeOp::Rate, "w"), &[("reason", "capacity")]);
        assert_eq!(evaluate(&rated, &e, Some((&zero, 2.0))), Some(6.0));
        assert!(rated.needs_previous() && !capacity.needs_previous());
    }

    #[test]
    fn gauges_sum_and_max_over_series_with_aliases() {
        let e = parse("g{a=\"1\"} 2\ng{a=\"2\"} 5\n").unwrap();
        assert_eq!(evaluate(&recipe(ScrapeOp::Sum, "g"), &e, None), Some(7.0));
        assert_eq!(evaluate(&recipe(ScrapeOp::Max, "g"), &e, None), Some(5.0));
        assert_eq!(evaluate(&recipe(ScrapeOp::Sum, "nope"), &e, None), None);
    }

    #[test]
    fn rates_need_two_scrapes_and_survive_resets() {
        let a = parse("c_total 10\nq_total 100\n").unwrap();
        let b = parse("c_total 30\nq_total 140\n").unwrap();
        let r = recipe(ScrapeOp::Rate, "c_total");
        assert_eq!(evaluate(&r, &b, None), None);
        assert_eq!(evaluate(&r, &b, Some((&a, 2.0))), Some(10.0));
        assert_eq!(evaluate(&r, &a, Some((&b, 1.0))), Some(10.0), "reset");
        let ratio = recipe(ScrapeOp::RatioOfRates, "c_total");
        assert_eq!(evaluate(&ratio, &b, Some((&a, 1.0))), Some(0.5));
    }

    #[test]
    fn quantiles_come_from_bucket_increases() {
        let a =
            parse("h_bucket{le=\"0.1\"} 10\nh_bucket{le=\"0.2\"} 10\nh_bucket{le=\"+Inf\"} 10\n")
                .unwrap();
        let b =
            parse("h_bucket{le=\"0.1\"} 10\nh_bucket{le=\"0.2\"} 20\nh_bucket{le=\"+Inf\"} 20\n")
                .unwrap();
        // The ten new observations all fell in (0.1, 0.2]: the median is
        // halfway through that bucket.
        let q = evaluate(&recipe(ScrapeOp::Quantile, "h"), &b, Some((&a, 1.0))).unwrap();
        assert!((q - 0.15).abs() < 1e-9, "{q}");
        assert_eq!(
            quantile(0.99, &[(1.0, 0.0), (f64::INFINITY, 5.0)]),
            Some(1.0)
        );
        assert_eq!(quantile(0.5, &[(1.0, 0.0)]), None);
    }

    #[test]
    fn histogram_means_divide_sum_by_count_rates() {
        let a = parse("h_sum 1\nh_count 2\n").unwrap();
        let b = parse("h_sum 4\nh_count 5\n").unwrap();
        assert_eq!(
            evaluate(&recipe(ScrapeOp::HistogramMean, "h"), &b, Some((&a, 1.0))),
            Some(1.0)
        );
    }
}
