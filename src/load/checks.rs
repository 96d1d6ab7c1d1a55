//! Judging a task's checks (`plan::check`) on one exchange, bit `i` of a
//! `u32` for check `i`. Body checks run in the client while it holds the
//! body; the rest run on the finished outcome. A request that ended
//! before a body was read fails the checks that need one. Nothing here
//! allocates unless a check fails (its sample's text).

use serde_json::Value;

use crate::outcome::Outcome;
use crate::plan::check::{Check, CheckKind, JsonExpect};

/// Longest text of a sample's detail (a body value shown in the report).
const SAMPLE_CHARS: usize = 160;

/// One task's checks, as the engine needs them.
#[derive(Clone, Debug, Default)]
pub struct TaskChecks {
    pub checks: Vec<Check>,
    pub stream: bool,
}

impl TaskChecks {
    /// Check `i` needs the non-streamed body.
    fn on_body(&self, check: &Check) -> bool {
        check.kind.reads_body() || (!self.stream && check.kind == CheckKind::ContentNotEmpty)
    }

    /// The client must read the body for some check.
    pub fn reads_body(&self) -> bool {
        self.checks.iter().any(|c| self.on_body(c))
    }

    /// Some check reads the body as JSON.
    pub fn needs_json(&self) -> bool {
        self.checks
            .iter()
            .any(|c| self.on_body(c) && !matches!(c.kind, CheckKind::BodyContains { .. }))
    }

    /// Judges the body checks on `bytes` (`json`: the body parsed, when it
    /// is JSON). Returns the failed bits and, for the first failure, its
    /// check and what was found.
    pub fn judge_body(&self, bytes: &[u8], json: Option<&Value>) -> (u32, Option<(u8, Box<str>)>) {
        let mut failed = 0u32;
        let mut sample = None;
        for (i, check) in self.checks.iter().enumerate() {
            if !self.on_body(check) {
                continue;
            }
            if let Err(found) = body_check(&check.kind, bytes, json) {
                failed |= 1 << i;
                sample.get_or_insert_with(|| (i as u8, found().into_boxed_str()));
            }
        }
        (failed, sample)
    }

    /// Judges every check on a finished request: how many were judged
    /// (0 for a request the run cancelled) and which failed. `body` is the
    /// client's body verdict, `None` when no body was read.
    pub fn judge(&self, outcome: &Outcome, body: Option<u32>) -> (u8, u32) {
        if self.checks.is_empty() || outcome.error == Some(crate::outcome::ErrorKind::Cancelled) {
            return (0, 0);
        }
        let mut failed = 0u32;
        for (i, check) in self.checks.iter().enumerate() {
            let passed = if self.on_body(check) {
                body.is_some_and(|mask| mask & (1 << i) == 0)
            } else {
                outcome_check(&check.kind, outcome)
            };
            if !passed {
                failed |= 1 << i;
            }
        }
        (self.checks.len() as u8, failed)
    }

    /// What check `i` saw on `outcome`, for a failure's sample when the
    /// client gave none.
    pub fn describe(&self, i: usize, outcome: &Outcome, body_read: bool) -> String {
        let Some(check) = self.checks.get(i) else {
            return String::new();
        };
        let ended = match outcome.error {
            Some(kind) => format!("{kind}, status {}", outcome.status),
            None => format!("status {}", outcome.status),
        };
        if self.on_body(check) && !body_read {
            return format!("no body to check ({ended})");
        }
        match &check.kind {
            CheckKind::Status { .. } => ended,
            CheckKind::Latency { .. } => format!(
                "latency {} ({ended})",
                crate::units::format_duration(outcome.latency())
            ),
            CheckKind::ModelMatches => format!("answered under another model's name ({ended})"),
            CheckKind::ContentNotEmpty => format!("no content token arrived ({ended})"),
            _ => ended,
        }
    }
}

fn outcome_check(kind: &CheckKind, outcome: &Outcome) -> bool {
    match kind {
        CheckKind::Status { any_of } => any_of.contains(&outcome.status),
        CheckKind::Latency { op, bound } => {
            op.holds(outcome.latency().as_secs_f64(), bound.as_secs_f64())
        }
        CheckKind::ModelMatches => outcome.error.is_none() && !outcome.other_model,
        // Streamed: judged by the stream (non-streamed goes to the body).
        CheckKind::ContentNotEmpty => outcome.error.is_none() && outcome.first_token.is_some(),
        CheckKind::Json { .. } | CheckKind::BodyContains { .. } => false,
    }
}

/// `Err` with a closure that says what was found (run only for a sample).
type Found<'a> = Box<dyn FnOnce() -> String + 'a>;

fn body_check<'a>(
    kind: &'a CheckKind,
    bytes: &'a [u8],
    json: Option<&'a Value>,
) -> Result<(), Found<'a>> {
    match kind {
        CheckKind::BodyContains { text } => {
            let needle = text.as_bytes();
            if needle.is_empty() || bytes.windows(needle.len()).any(|w| w == needle) {
                Ok(())
            } else {
                Err(Box::new(move || {
                    format!(
                        "body without it: {}",
                        shorten(&String::from_utf8_lossy(bytes))
                    )
                }))
            }
        }
        CheckKind::Json { pointer, expect } => {
            let Some(json) = json else {
                return Err(Box::new(move || {
                    format!(
                        "body is not JSON: {}",
                        shorten(&String::from_utf8_lossy(bytes))
                    )
                }));
            };
            let value = json.pointer(pointer);
            if json_holds(value, expect) {
                Ok(())
            } else {
                Err(Box::new(move || match value {
                    None => format!("{pointer} is missing"),
                    Some(v) => format!("{pointer} is {}", shorten(&v.to_string())),
                }))
            }
        }
        CheckKind::ContentNotEmpty => {
            let content = json.and_then(|j| {
                j.pointer("/choices/0/message/content")
                    .or_else(|| j.pointer("/choices/0/text"))
            });
            if content
                .and_then(Value::as_str)
                .is_some_and(|c| !c.is_empty())
            {
                Ok(())
            } else {
                Err(Box::new(move || match content {
                    None => "no choices[0] content in the answer".to_owned(),
                    Some(v) => format!("content is {}", shorten(&v.to_string())),
                }))
            }
        }
        _ => Ok(()),
    }
}

fn json_holds(value: Option<&Value>, expect: &JsonExpect) -> bool {
    match (expect, value) {
        (JsonExpect::Exists, found) => found.is_some(),
        (_, None) => false,
        (JsonExpect::Equals(wanted), Some(v)) => numbers_equal(v, wanted) || v == wanted,
        (JsonExpect::Contains(text), Some(Value::String(s))) => s.contains(text.as_str()),
        (JsonExpect::Contains(text), Some(Value::Array(items))) => {
            items.iter().any(|i| i.as_str() == Some(text.as_str()))
        }
        (JsonExpect::Contains(_), Some(_)) => false,
        (JsonExpect::NotEmpty, Some(v)) => match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        },
    }
}

/// 200 and 200.0 are the same number (TOML writes floats, JSON either).
fn numbers_equal(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(SAMPLE_CHARS).collect();
    if text.chars().nth(SAMPLE_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plan::check::{RawCheck, TaskShape, resolve};

    fn checks(texts: &[&str], stream: bool) -> TaskChecks {
        let shape = TaskShape {
            task: "t",
            streamed: stream,
            openai: true,
        };
        TaskChecks {
            checks: texts
                .iter()
                .map(|t| resolve(toml::from_str::<RawCheck>(t).unwrap(), &shape).unwrap())
                .collect(),
            stream,
        }
    }

    /// A request intended at 0 that ended `latency_ms` later with
    /// `status`, no content token, no error.
    fn outcome(status: u16, latency_ms: u64) -> Outcome {
        Outcome {
            intended: Duration::ZERO,
            end: Duration::from_millis(latency_ms),
            first_token: None,
            status,
            ..crate::outcome::example(None)
        }
    }

    #[test]
    fn json_pointers_compare_found_values() {
        let body = br#"{"status":"healthy","n":200,"tags":["a","b"],"empty":""}"#;
        let json: Value = serde_json::from_slice(body).unwrap();
        let set = checks(
            &[
                "json = \"/status\"\nequals = \"healthy\"",
                "json = \"/n\"\nequals = 200.0",
                "json = \"/tags\"\ncontains = \"b\"",
                "json = \"/empty\"\nnot_empty = true",
                "json = \"/missing\"\nexists = true",
                "body_contains = \"healthy\"",
            ],
            false,
        );
        let (failed, sample) = set.judge_body(body, Some(&json));
        assert_eq!(failed, 0b11000);
        assert_eq!(sample.unwrap(), (3, "/empty is \"\"".into()));
    }

    #[test]
    fn a_body_that_is_not_json_fails_pointer_checks_with_what_it_was() {
        let set = checks(
            &["json = \"/a\"\nexists = true", "body_contains = \"<html\""],
            false,
        );
        let (failed, sample) = set.judge_body(b"<html>oops</html>", None);
        assert_eq!(failed, 0b01);
        assert_eq!(
            sample.unwrap().1.as_ref(),
            "body is not JSON: <html>oops</html>"
        );
    }

    #[test]
    fn outcome_checks_and_missing_bodies() {
        let set = checks(
            &[
                "status = 200",
                "latency = \"< 200ms\"",
                "json = \"/a\"\nexists = true",
            ],
            false,
        );
        assert_eq!(set.judge(&outcome(200, 150), Some(0)), (3, 0));
        assert_eq!(set.judge(&outcome(200, 250), Some(0)), (3, 0b010));
        // A 503 read no body: the body check fails too.
        let mut failed = outcome(503, 10);
        failed.error = Some(crate::outcome::ErrorKind::Http5xx);
        assert_eq!(set.judge(&failed, None), (3, 0b101));
        assert_eq!(
            set.describe(2, &failed, false),
            "no body to check (http_5xx, status 503)"
        );
        failed.error = Some(crate::outcome::ErrorKind::Cancelled);
        assert_eq!(set.judge(&failed, None), (0, 0));
    }

    #[test]
    fn streamed_content_is_judged_by_its_tokens() {
        let set = checks(&["content_not_empty = true", "model_matches = true"], true);
        assert!(!set.reads_body());
        let mut answered = outcome(200, 10);
        assert_eq!(set.judge(&answered, None), (2, 0b01));
        answered.first_token = Some(Duration::from_millis(5));
        answered.other_model = true;
        assert_eq!(set.judge(&answered, None), (2, 0b10));
        let unstreamed = checks(&["content_not_empty = true"], false);
        let json: Value = serde_json::json!({"choices": [{"message": {"content": "hi"}}]});
        assert_eq!(unstreamed.judge_body(b"", Some(&json)).0, 0);
    }
}
