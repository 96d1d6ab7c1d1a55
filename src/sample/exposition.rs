//! A reader of the Prometheus text exposition format (0.0.4) and of the
//! OpenMetrics text format, as far as the direct-scrape sampler needs: every
//! sample's name, labels and value. Comments (`# HELP`, `# TYPE`, any other)
//! are skipped and reading stops at OpenMetrics' `# EOF`; a sample's
//! timestamp and OpenMetrics exemplar (` # {labels} value [timestamp]`) are
//! checked, then dropped. A malformed line is an error naming its number.
//!
//! Written by hand: the crates for this are unmaintained, strict about one
//! of the two formats, or pull in a parser-generator stack, and the format's
//! sample lines are small:
//!
//! ```text
//! name [{label="value",...}] value [timestamp] [# {label="value",...} value [timestamp]]
//! ```

use std::collections::BTreeMap;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of a scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Samples named exactly `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.named(name).next().is_some()
    }
}

/// Parses a whole scrape.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line == "# EOF" {
            break;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_line(line).map_err(|e| format!("line {}: {e}: {line:?}", i + 1))?;
        samples.push(sample);
    }
    Ok(Exposition { samples })
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        (labels, rest) = parse_labels(after)?;
    }
    let (value, rest) = value_and_timestamp(rest)?;
    if !rest.is_empty() {
        exemplar(rest)?;
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `value [timestamp]` and what follows them (an exemplar, or nothing).
fn value_and_timestamp(s: &str) -> Result<(f64, &str), String> {
    let (value_text, rest) = token(s).ok_or("no value")?;
    let value = parse_value(value_text)?;
    match token(rest) {
        Some((ts, after)) if !ts.starts_with('#') => {
            parse_timestamp(ts)?;
            Ok((value, after.trim_start()))
        }
        _ => Ok((value, rest.trim_start())),
    }
}

/// An OpenMetrics exemplar: `# {labels} value [timestamp]`, nothing after.
fn exemplar(s: &str) -> Result<(), String> {
    let labels = s
        .strip_prefix('#')
        .map(str::trim_start)
        .and_then(|s| s.strip_prefix('{'))
        .ok_or_else(|| format!("unexpected text {s:?} after the value"))?;
    let (_, rest) = parse_labels(labels)?;
    let (_, rest) = value_and_timestamp(rest).map_err(|e| format!("exemplar: {e}"))?;
    match rest.is_empty() {
        true => Ok(()),
        false => Err(format!("unexpected text {rest:?} after the exemplar")),
    }
}

/// The next whitespace-separated token and the text after it.
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// Labels up to the closing brace (a trailing comma allowed); returns them
/// and the text after the brace.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut s = s.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without =")?;
        let key = s[..eq].trim();
        if !is_label_name(key) {
            return Err(format!("bad label name {key:?}"));
        }
        let value = s[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let (value, rest) = quoted(value)?;
        labels.insert(key.to_string(), value);
        s = rest.trim_start();
        match s.strip_prefix(',') {
            Some(rest) => s = rest.trim_start(),
            None if s.starts_with('}') => {}
            None => return Err("expected , or } after a label value".into()),
        }
    }
}

/// A quoted value with `\\`, `\"` and `\n` escapes (any other backslash is
/// kept as it is); the text after the closing quote.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, c @ ('\\' | '"'))) => out.push(c),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        t => t.parse().map_err(|_| format!("bad value {t:?}")),
    }
}

/// Milliseconds (Prometheus text) or seconds with a fraction (OpenMetrics):
/// any finite number.
fn parse_timestamp(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .ok_or_else(|| format!("bad timestamp {text:?}"))
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_labels_values_and_skips_comments() {
        let text = "# HELP vllm:x help\n# TYPE vllm:x gauge\n\
                    vllm:x{model_name=\"a\\\"b\",engine=\"0\"} 3.5\n\
                    up 1 1700000000000\n\
                    h_bucket{le=\"+Inf\"} 7\n# EOF\n";
        let e = parse(text).unwrap();
        assert_eq!(e.samples.len(), 3);
        assert_eq!(e.samples[0].name, "vllm:x");
        assert_eq!(e.samples[0].labels["model_name"], "a\"b");
        assert_eq!(e.samples[0].value, 3.5);
        assert_eq!(e.named("up").next().unwrap().value, 1.0);
        assert_eq!(e.samples[2].labels["le"], "+Inf");
    }

    #[test]
    fn malformed_lines_are_errors_with_their_number() {
        let err = parse("ok 1\nbad{x=\"1\" 2\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert!(parse("x notanumber").unwrap_err().contains("bad value"));
        assert!(parse("x 1 z").unwrap_err().contains("bad timestamp"));
        assert!(parse("x 1 2 3").unwrap_err().contains("unexpected text"));
        assert!(
            parse("x{1a=\"b\"} 1")
                .unwrap_err()
                .contains("bad label name")
        );
        assert!(parse("9x 1").unwrap_err().contains("bad metric name"));
    }

    #[test]
    fn exemplars_timestamps_odd_spacing_and_escapes() {
        let text = "a_bucket{le=\"1\"} 2 # {trace_id=\"x\"} 0.5 1.5e3\n\
                    a_total 0 123 # {a=\"b\"} 0.5\n\
                    name {l=\"v\",} 0.23 1234567890\n\
                    name2{ l = \"w\" , }-Inf\n\
                    esc{a=\"b\\\\a\\z\",b=\"x # \"} 4\n";
        let e = parse(text).unwrap();
        let values: Vec<f64> = e.samples.iter().map(|s| s.value).collect();
        assert_eq!(values, [2.0, 0.0, 0.23, f64::NEG_INFINITY, 4.0]);
        assert_eq!(e.samples[2].labels["l"], "v");
        assert_eq!(e.samples[3].labels["l"], "w");
        assert_eq!(e.samples[4].labels["a"], "b\\a\\z");
        assert_eq!(e.samples[4].labels["b"], "x # ");
        let err = parse("ok 1\na_bucket{le=\"+Inf\"} 1 #\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/metrics");

    /// Files that are not valid exposition and must be rejected: the
    /// OpenMetrics negative cases, and a `name type` list of vLLM families
    /// (SOURCES.md: "NOT exposition").
    fn must_reject(file: &str) -> bool {
        file.starts_with("expfmt-om-bad-") || file == "vllm-v0.26.0-metric-families.txt"
    }

    #[test]
    fn every_fixture_parses_and_the_bad_ones_are_rejected_with_a_line() {
        let mut files: Vec<_> = std::fs::read_dir(FIXTURES)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 20, "{} files in {FIXTURES}", files.len());
        for path in files {
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            match (parse(&text), must_reject(&file)) {
                (Ok(e), false) => assert!(!e.samples.is_empty(), "{file}: no samples"),
                (Err(err), true) => assert!(err.starts_with("line "), "{file}: {err}"),
                (Ok(_), true) => panic!("{file}: parsed, but must be rejected"),
                (Err(err), false) => panic!("{file}: {err}"),
            }
        }
    }

    #[test]
    fn fixture_values_survive_escapes_nan_and_timestamps() {
        let read = |file: &str| std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap();
        let e = parse(&read("expfmt-parse-escaping-nan-inf.txt")).unwrap();
        let name: Vec<&Sample> = e.named("name").collect();
        assert!(name[0].value.is_nan());
        assert_eq!(name[1].labels["basename"], "base\"v\\al\nue");
        assert_eq!(e.named("name2").count(), 2);
        let om = parse(&read("expfmt-om-timestamps.txt")).unwrap();
        assert_eq!(om.named("a_total").count(), 5);
        let ex = parse(&read("expfmt-om-histogram-exemplars.txt")).unwrap();
        assert_eq!(ex.samples.last().unwrap().value, 3.0);
        let bad = parse(&read("expfmt-om-bad-timestamp-0.txt")).unwrap_err();
        assert!(
            bad.starts_with("line 1") && bad.contains("timestamp"),
            "{bad}"
        );
    }
}
