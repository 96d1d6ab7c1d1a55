//! The receiver's memory: received spans grouped by 128-bit trace id, under
//! fixed caps on traces and spans. When a cap is reached new spans are
//! refused (and counted), never older ones evicted, so what is kept is the
//! beginning of the run and a count says how much is missing.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One span as received, reduced to what trace checks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedSpan {
    pub trace_id: u128,
    pub span_id: u64,
    /// `None` for a root span.
    pub parent_span_id: Option<u64>,
    pub name: String,
    /// The resource's `service.name` (`unknown_service` when absent).
    pub service_name: String,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub status: SpanStatus,
    /// The first [`Limits::max_attributes`] attributes, values rendered as
    /// text (integers in decimal, arrays joined with `,`).
    pub attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    /// The value of attribute `key`, if it was kept.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A span's status code (OTLP `Status.code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanStatus {
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    /// From the OTLP enum value; unknown values read as unset.
    pub fn from_code(code: i32) -> SpanStatus {
        match code {
            1 => SpanStatus::Ok,
            2 => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }
}

/// Caps on what the receiver keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Distinct trace ids kept.
    pub max_traces: usize,
    /// Spans kept over all traces.
    pub max_spans: usize,
    /// Attributes kept per span (the rest are ignored, not counted).
    pub max_attributes: usize,
}

impl Default for Limits {
    /// About 100 MB at worst: 500,000 spans of about 200 bytes each.
    fn default() -> Self {
        Limits {
            max_traces: 100_000,
            max_spans: 500_000,
            max_attributes: 8,
        }
    }
}

/// Spans by trace id, shared between the HTTP handler and the API.
#[derive(Debug)]
pub(crate) struct Store {
    limits: Limits,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    traces: HashMap<u128, Vec<ReceivedSpan>>,
    spans: usize,
    dropped_spans: u64,
}

impl Store {
    pub fn new(limits: Limits) -> Store {
        Store {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Keeps what fits under the caps; returns how many spans were refused.
    pub fn insert(&self, spans: Vec<ReceivedSpan>) -> u64 {
        let mut inner = self.lock();
        let mut refused = 0;
        for span in spans {
            if !inner.admit(&span, self.limits) {
                refused += 1;
                continue;
            }
            inner.spans += 1;
            inner.traces.entry(span.trace_id).or_default().push(span);
        }
        inner.dropped_spans += refused;
        refused
    }

    pub fn trace(&self, trace_id: u128) -> Option<Vec<ReceivedSpan>> {
        self.lock().traces.get(&trace_id).cloned()
    }

    pub fn has_trace(&self, trace_id: u128) -> bool {
        self.lock().traces.contains_key(&trace_id)
    }

    /// Every trace id held, ascending.
    pub fn trace_ids(&self) -> Vec<u128> {
        let mut ids: Vec<u128> = self.lock().traces.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn span_count(&self) -> usize {
        self.lock().spans
    }

    pub fn dropped_spans(&self) -> u64 {
        self.lock().dropped_spans
    }

    /// A poisoned lock only means a panic elsewhere while holding it; the
    /// map itself is still consistent (every update is one push).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn admit(&self, span: &ReceivedSpan, limits: Limits) -> bool {
        if self.spans >= limits.max_spans {
            return false;
        }
        self.traces.contains_key(&span.trace_id) || self.traces.len() < limits.max_traces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace_id: u128, span_id: u64) -> ReceivedSpan {
        ReceivedSpan {
            trace_id,
            span_id,
            parent_span_id: None,
            name: "s".into(),
            service_name: "svc".into(),
            start_unix_nanos: 1,
            end_unix_nanos: 2,
            status: SpanStatus::Unset,
            attributes: vec![("k".into(), "v".into())],
        }
    }

    #[test]
    fn caps_refuse_new_spans_and_count_them() {
        let limits = Limits {
            max_traces: 2,
            max_spans: 4,
            max_attributes: 8,
        };
        let store = Store::new(limits);
        // Third trace refused; trace 1 still grows until the span cap.
        let batch = vec![span(1, 1), span(2, 1), span(3, 1), span(1, 2), span(1, 3)];
        assert_eq!(store.insert(batch), 1);
        assert_eq!(store.trace_ids(), vec![1, 2]);
        assert_eq!(store.insert(vec![span(2, 2)]), 1);
        assert_eq!(store.span_count(), 4);
        assert_eq!(store.dropped_spans(), 2);
        assert_eq!(store.trace(1).map(|t| t.len()), Some(3));
        assert_eq!(store.trace(3), None);
    }

    #[test]
    fn status_codes_follow_otlp() {
        let cases = [
            (0, SpanStatus::Unset),
            (1, SpanStatus::Ok),
            (2, SpanStatus::Error),
        ];
        for (code, status) in cases {
            assert_eq!(SpanStatus::from_code(code), status);
        }
        assert_eq!(SpanStatus::from_code(7), SpanStatus::Unset);
        assert_eq!(span(1, 1).attribute("k"), Some("v"));
        assert_eq!(span(1, 1).attribute("x"), None);
    }
}
