//! A reader of the Prometheus text exposition format (0.0.4, and the
//! OpenMetrics text that differs from it only in ways this ignores: `# EOF`,
//! `_created` samples). It keeps what the direct-scrape sampler needs: every
//! sample's name, labels and value. Comments, timestamps and exemplars are
//! skipped; a malformed line is an error naming its number.
//!
//! Written by hand: the crates for this are unmaintained or pull in a
//! protobuf stack, and the format's sample lines are small.

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
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let value_text = rest.split_whitespace().next().ok_or("no value")?;
    let value = parse_value(value_text)?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Labels up to the closing brace; returns them and the text after it.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without =")?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let (value, rest) = quoted(s)?;
        labels.insert(key, value);
        s = rest;
    }
}

/// A quoted value with `\\`, `\"` and `\n` escapes; the text after it.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => out.push(other),
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
    }
}
