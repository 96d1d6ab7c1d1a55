//! Checks (k6's `check()`): per-task assertions on each response — its
//! status, its latency, a JSON pointer into its body, a string in its body,
//! non-empty generated content, the `model` it answered under. A failed
//! check is not an error: the request is counted as it ended, and the
//! check's pass rate is reported beside the errors (`checks > 99%` is a
//! threshold). Evaluation lives in `load::checks`; this module only reads
//! and validates what the plan wrote.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metric::Op;

/// Most checks one task may carry: a request's results travel as one
/// bit each in a `u32`.
pub const MAX_CHECKS: usize = 32;

/// A check as written: exactly one of `status`, `latency`, `json`,
/// `body_contains`, `content_not_empty`, `model_matches`; `json` takes one
/// of `equals`, `contains`, `not_empty`, `exists`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: Option<String>,
    pub status: Option<StatusList>,
    /// `"< 200ms"`: an operator and a duration.
    pub latency: Option<String>,
    /// A JSON pointer (RFC 6901) into a non-streamed body, like `/status`.
    pub json: Option<String>,
    pub equals: Option<serde_json::Value>,
    pub contains: Option<String>,
    pub not_empty: Option<bool>,
    pub exists: Option<bool>,
    pub body_contains: Option<String>,
    pub content_not_empty: Option<bool>,
    pub model_matches: Option<bool>,
}

/// `status = 200` or `status = [200, 204]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StatusList {
    One(u16),
    Many(Vec<u16>),
}

/// A resolved check: a name for the report and what it asserts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    #[serde(flatten)]
    pub kind: CheckKind,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckKind {
    /// The HTTP status is one of these (0 when no response came).
    Status { any_of: Vec<u16> },
    /// The request's latency (from its intended send) holds the bound.
    Latency {
        op: Op,
        #[serde(serialize_with = "millis")]
        bound: Duration,
    },
    /// The value at `pointer` of the JSON body meets `expect`.
    Json { pointer: String, expect: JsonExpect },
    /// The body holds this text.
    BodyContains { text: String },
    /// The answer carried generated text: a streamed token, or a
    /// non-empty `choices[0].message.content` / `choices[0].text`.
    ContentNotEmpty,
    /// The response's `model` is the one the request asked for.
    ModelMatches,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonExpect {
    Equals(serde_json::Value),
    /// A string value containing this text, or an array holding it.
    Contains(String),
    /// Present, and not null, "", [] or {}.
    NotEmpty,
    Exists,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl CheckKind {
    /// Reads the response body (a JSON pointer, a substring).
    pub fn reads_body(&self) -> bool {
        matches!(
            self,
            CheckKind::Json { .. } | CheckKind::BodyContains { .. }
        )
    }

    /// The name the report gives a check the plan did not name.
    fn default_name(&self) -> String {
        match self {
            CheckKind::Status { any_of } => {
                let codes: Vec<String> = any_of.iter().map(u16::to_string).collect();
                format!("status is {}", codes.join(" or "))
            }
            CheckKind::Latency { op, bound } => {
                format!("latency {op} {}", crate::units::format_duration(*bound))
            }
            CheckKind::Json { pointer, expect } => match expect {
                JsonExpect::Equals(v) => format!("{pointer} == {v}"),
                JsonExpect::Contains(t) => format!("{pointer} contains {t:?}"),
                JsonExpect::NotEmpty => format!("{pointer} is not empty"),
                JsonExpect::Exists => format!("{pointer} exists"),
            },
            CheckKind::BodyContains { text } => format!("body contains {text:?}"),
            CheckKind::ContentNotEmpty => "content is not empty".to_owned(),
            CheckKind::ModelMatches => "model matches".to_owned(),
        }
    }
}

/// What the task a check belongs to sends, for refusing checks that
/// cannot be made on it.
pub struct TaskShape<'a> {
    pub task: &'a str,
    pub streamed: bool,
    /// OpenAI chat or completions (which name a model and carry choices).
    pub openai: bool,
}

/// Resolves one check of `shape`'s task; the message says what is wrong.
pub fn resolve(raw: RawCheck, shape: &TaskShape<'_>) -> Result<Check, String> {
    let task = shape.task;
    let kind = kind(&raw).map_err(|m| format!("task `{task}`: {m}"))?;
    if kind.reads_body() && shape.streamed {
        return Err(format!(
            "task `{task}`: check \"{}\" reads the response body, which a streamed answer does not have as JSON; set stream = false on the task, or check content_not_empty",
            kind.default_name()
        ));
    }
    if matches!(kind, CheckKind::ModelMatches | CheckKind::ContentNotEmpty) && !shape.openai {
        return Err(format!(
            "task `{task}`: check \"{}\" needs an OpenAI answer (api = \"openai-chat\" or \"openai-completions\"); on a template endpoint check a JSON pointer instead",
            kind.default_name()
        ));
    }
    Ok(Check {
        name: raw.name.unwrap_or_else(|| kind.default_name()),
        kind,
    })
}

fn kind(raw: &RawCheck) -> Result<CheckKind, String> {
    let given: Vec<&str> = [
        ("status", raw.status.is_some()),
        ("latency", raw.latency.is_some()),
        ("json", raw.json.is_some()),
        ("body_contains", raw.body_contains.is_some()),
        ("content_not_empty", raw.content_not_empty.is_some()),
        ("model_matches", raw.model_matches.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let [what] = given.as_slice() else {
        return Err(format!(
            "a check asserts exactly one of status, latency, json, body_contains, content_not_empty, model_matches; this one has {}",
            if given.is_empty() {
                "none".to_owned()
            } else {
                given.join(", ")
            }
        ));
    };
    let expectations = [
        raw.equals.is_some(),
        raw.contains.is_some(),
        raw.not_empty.is_some(),
        raw.exists.is_some(),
    ];
    if *what != "json" && expectations.iter().any(|e| *e) {
        return Err(
            "equals, contains, not_empty and exists go with `json = \"/pointer\"`".to_owned(),
        );
    }
    Ok(match *what {
        "status" => CheckKind::Status {
            any_of: status_list(raw.status.as_ref())?,
        },
        "latency" => latency(raw.latency.as_deref().unwrap_or_default())?,
        "json" => json(raw)?,
        "body_contains" => CheckKind::BodyContains {
            text: raw.body_contains.clone().unwrap_or_default(),
        },
        "content_not_empty" => only_true(raw.content_not_empty, "content_not_empty")
            .map(|()| CheckKind::ContentNotEmpty)?,
        _ => only_true(raw.model_matches, "model_matches").map(|()| CheckKind::ModelMatches)?,
    })
}

fn only_true(value: Option<bool>, what: &str) -> Result<(), String> {
    match value {
        Some(true) => Ok(()),
        _ => Err(format!("`{what} = false` checks nothing; remove the check")),
    }
}

fn status_list(status: Option<&StatusList>) -> Result<Vec<u16>, String> {
    let codes = match status {
        Some(StatusList::One(code)) => vec![*code],
        Some(StatusList::Many(codes)) => codes.clone(),
        None => Vec::new(),
    };
    if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
        return Err(format!(
            "a status check needs HTTP statuses within 100..=599, got {codes:?}"
        ));
    }
    Ok(codes)
}

fn latency(text: &str) -> Result<CheckKind, String> {
    let text = text.trim();
    let op = Op::ALL
        .into_iter()
        .find(|op| text.starts_with(op.symbol()))
        .ok_or_else(|| {
            format!("a latency check is an operator and a duration, like \"< 200ms\"; got {text:?}")
        })?;
    let bound = crate::units::parse_duration(text[op.symbol().len()..].trim())
        .map_err(|e| format!("latency check {text:?}: {e}"))?;
    Ok(CheckKind::Latency { op, bound })
}

fn json(raw: &RawCheck) -> Result<CheckKind, String> {
    let pointer = raw.json.clone().unwrap_or_default();
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        return Err(format!(
            "`json = {pointer:?}` is not a JSON pointer: it starts with `/`, like \"/choices/0/text\" (\"\" is the whole body)"
        ));
    }
    let mut expect = Vec::new();
    if let Some(v) = &raw.equals {
        expect.push(JsonExpect::Equals(v.clone()));
    }
    if let Some(t) = &raw.contains {
        expect.push(JsonExpect::Contains(t.clone()));
    }
    if let Some(flag) = raw.not_empty {
        only_true(Some(flag), "not_empty")?;
        expect.push(JsonExpect::NotEmpty);
    }
    if let Some(flag) = raw.exists {
        only_true(Some(flag), "exists")?;
        expect.push(JsonExpect::Exists);
    }
    match <[JsonExpect; 1]>::try_from(expect) {
        Ok([expect]) => Ok(CheckKind::Json { pointer, expect }),
        Err(_) => Err(format!(
            "check json = {pointer:?} takes exactly one of equals, contains, not_empty = true, exists = true"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(streamed: bool, openai: bool) -> TaskShape<'static> {
        TaskShape {
            task: "t",
            streamed,
            openai,
        }
    }

    fn parse(toml_text: &str) -> RawCheck {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn every_kind_resolves_with_a_readable_default_name() {
        let cases = [
            ("status = 200", "status is 200"),
            ("status = [200, 204]", "status is 200 or 204"),
            ("latency = \"< 200ms\"", "latency < 200ms"),
            ("json = \"/status\"\nequals = \"ok\"", "/status == \"ok\""),
            ("json = \"/data\"\ncontains = \"m\"", "/data contains \"m\""),
            ("json = \"/x\"\nnot_empty = true", "/x is not empty"),
            ("json = \"/x\"\nexists = true", "/x exists"),
            ("body_contains = \"ok\"", "body contains \"ok\""),
            ("content_not_empty = true", "content is not empty"),
            ("model_matches = true", "model matches"),
        ];
        for (text, name) in cases {
            let check = resolve(parse(text), &shape(false, true)).unwrap();
            assert_eq!(check.name, name, "{text}");
        }
        let named = resolve(parse("name = \"up\"\nstatus = 200"), &shape(false, true)).unwrap();
        assert_eq!(named.name, "up");
    }

    #[test]
    fn malformed_checks_say_what_is_wrong() {
        let cases = [
            ("", "exactly one of"),
            ("status = 200\nlatency = \"< 1s\"", "status, latency"),
            ("status = 99", "100..=599"),
            ("latency = \"200ms\"", "operator and a duration"),
            ("latency = \"< soon\"", "latency check"),
            ("json = \"status\"\nequals = 1", "not a JSON pointer"),
            ("json = \"/a\"", "exactly one of equals"),
            (
                "json = \"/a\"\nequals = 1\nexists = true",
                "exactly one of equals",
            ),
            ("status = 200\nequals = 1", "go with `json"),
            ("model_matches = false", "checks nothing"),
        ];
        for (text, wanted) in cases {
            let err = resolve(parse(text), &shape(false, true)).unwrap_err();
            assert!(err.contains(wanted), "{text}: {err}");
            assert!(err.starts_with("task `t`"), "{err}");
        }
    }

    #[test]
    fn checks_the_task_cannot_answer_are_refused() {
        let err = resolve(parse("json = \"/a\"\nexists = true"), &shape(true, true)).unwrap_err();
        assert!(err.contains("streamed"), "{err}");
        let err = resolve(parse("model_matches = true"), &shape(false, false)).unwrap_err();
        assert!(err.contains("OpenAI"), "{err}");
    }
}
