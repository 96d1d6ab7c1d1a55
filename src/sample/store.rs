//! What the samplers delivered during a run, kept on the run clock: one
//! series per named value (a failed or empty sample is a gap, never a
//! zero), gaps counted per name, and the latency of every Prometheus query.
//! Pure data; summarised for the report by [`SampledStore::summaries`].

use std::collections::BTreeMap;

use crate::report::SampledSummary;
use crate::stats::{Aggregate, Histogram, Quantiles, Series};

/// One value delivered by a sampler.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub name: String,
    /// The stored unit (see `queries::Unit::stored`).
    pub unit: &'static str,
    /// Seconds since the run started.
    pub t: f64,
    /// `None`: the sample failed or had no data (a gap).
    pub value: Option<f64>,
    /// How the value is summarised over the run.
    pub aggregate: Aggregate,
    /// The Prometheus query's latency, when it came from one.
    pub query_latency_ms: Option<f64>,
    /// Where it came from: "prometheus", "scrape", "host", "nvml".
    pub source: &'static str,
}

#[derive(Debug, Default)]
struct Entry {
    series: Series,
    aggregate: Option<Aggregate>,
    source: &'static str,
    gaps: u64,
}

/// Every reading of a run (query latencies in microseconds).
#[derive(Debug, Default)]
pub struct SampledStore {
    entries: BTreeMap<String, Entry>,
    query_latency_ms: Histogram,
    queries: u64,
    failed_queries: u64,
}

impl SampledStore {
    pub fn add(&mut self, r: Reading) {
        if let Some(ms) = r.query_latency_ms {
            self.queries += 1;
            self.failed_queries += u64::from(r.value.is_none());
            self.query_latency_ms
                .record((ms * 1000.0).round().max(1.0) as u64);
        }
        let entry = self.entries.entry(r.name.clone()).or_insert_with(|| Entry {
            series: Series::new(&r.name, r.unit),
            ..Entry::default()
        });
        entry.aggregate = Some(r.aggregate);
        entry.source = r.source;
        match r.value {
            Some(v) if v.is_finite() => entry.series.push(r.t, v),
            _ => entry.gaps += 1,
        }
    }

    /// Whether `name` missed any sample.
    pub fn has_gaps(&self, name: &str) -> bool {
        self.entries.get(name).is_some_and(|e| e.gaps > 0)
    }

    /// Fills gaps from a range query after the run: samples at instants
    /// (run-clock seconds) where the series has none within half a step.
    pub fn backfill(&mut self, name: &str, samples: &[(f64, f64)], step_s: f64) -> u64 {
        let Some(entry) = self.entries.get_mut(name) else {
            return 0;
        };
        let mut filled = 0;
        for &(t, v) in samples {
            let covered = entry
                .series
                .samples
                .iter()
                .any(|s| (s.t - t).abs() < step_s / 2.0);
            if !covered && entry.gaps > 0 {
                entry.series.push(t, v);
                entry.gaps -= 1;
                filled += 1;
            }
        }
        entry.series.samples.sort_by(|a, b| a.t.total_cmp(&b.t));
        filled
    }

    /// The latest value of each name at or before `t` within `within_s`
    /// seconds (for intervals.jsonl).
    pub fn latest(&self, t: f64, within_s: f64) -> BTreeMap<String, Option<f64>> {
        self.entries
            .iter()
            .map(|(name, e)| {
                let v = e
                    .series
                    .samples
                    .iter()
                    .rev()
                    .find(|s| s.t <= t && t - s.t <= within_s)
                    .map(|s| s.value);
                (name.clone(), v)
            })
            .collect()
    }

    /// The newest sample of `name`: (run-clock second, value).
    pub fn newest(&self, name: &str) -> Option<(f64, f64)> {
        let sample = self.entries.get(name)?.series.samples.last()?;
        Some((sample.t, sample.value))
    }

    pub fn series(&self) -> Vec<Series> {
        self.entries.values().map(|e| e.series.clone()).collect()
    }

    pub fn query_latency(&self) -> Option<Quantiles> {
        self.query_latency_ms.quantiles(1000.0)
    }

    pub fn query_counts(&self) -> (u64, u64) {
        (self.queries, self.failed_queries)
    }

    pub fn summaries(&self) -> Vec<SampledSummary> {
        self.entries
            .iter()
            .map(|(name, e)| summarise(name, e))
            .collect()
    }
}

fn summarise(name: &str, e: &Entry) -> SampledSummary {
    let stats = e.series.stats();
    let aggregate = e.aggregate.unwrap_or(Aggregate::Last);
    SampledSummary {
        name: name.to_string(),
        unit: e.series.unit.clone(),
        source: e.source.to_string(),
        aggregate,
        value: aggregate.of(&stats),
        stats,
        gaps: e.gaps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(name: &str, t: f64, value: Option<f64>, aggregate: Aggregate) -> Reading {
        Reading {
            name: name.into(),
            unit: "count",
            t,
            value,
            aggregate,
            query_latency_ms: Some(2.0),
            source: "prometheus",
        }
    }

    #[test]
    fn gaps_are_counted_not_zeroed_and_aggregates_follow_the_query() {
        let mut store = SampledStore::default();
        for (t, v) in [
            (1.0, Some(3.0)),
            (2.0, None),
            (3.0, Some(9.0)),
            (4.0, Some(6.0)),
        ] {
            store.add(reading("queue_depth", t, v, Aggregate::Max));
            store.add(reading(
                "preemptions",
                t,
                v.map(|x| x * 10.0),
                Aggregate::Delta,
            ));
        }
        let s = store.summaries();
        let queue = s.iter().find(|s| s.name == "queue_depth").unwrap();
        assert_eq!(
            (queue.value, queue.stats.samples, queue.gaps),
            (Some(9.0), 3, 1)
        );
        assert_eq!(queue.stats.avg, Some(6.0));
        let pre = s.iter().find(|s| s.name == "preemptions").unwrap();
        assert_eq!(pre.value, Some(30.0));
        assert_eq!(store.query_counts(), (8, 2));
        assert!(store.query_latency().is_some());
    }

    #[test]
    fn backfill_fills_only_gaps() {
        let mut store = SampledStore::default();
        store.add(reading("x", 1.0, Some(1.0), Aggregate::Max));
        store.add(reading("x", 2.0, None, Aggregate::Max));
        let filled = store.backfill("x", &[(1.0, 5.0), (2.0, 7.0), (3.0, 8.0)], 1.0);
        assert_eq!(filled, 1, "one gap, one fill; 1.0 was covered");
        let x = &store.summaries()[0];
        assert_eq!((x.stats.max, x.gaps, x.stats.samples), (Some(7.0), 0, 2));
        assert_eq!(store.latest(2.5, 1.0)["x"], Some(7.0));
    }
}
