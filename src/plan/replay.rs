//! Production traces to replay (`load = { type = "replay", file = … }`):
//! each request's arrival offset and its input and output lengths, read
//! from a local file in the Mooncake format (one JSON object a line:
//! `{"timestamp": ms, "input_length": n, "output_length": m}`) or the
//! Azure LLM inference trace format (CSV: `TIMESTAMP,ContextTokens,
//! GeneratedTokens`, timestamps as `2023-11-16 18:15:46.6805900`).
//! Offsets are measured from the first request and divided by the
//! plan's speed-up.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One recorded request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceRecord {
    /// From the trace's first request, after the speed-up.
    pub at: Duration,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFormat {
    #[default]
    Mooncake,
    Azure,
}

/// Prompt text the run would hold for a trace past this many input
/// tokens: bodies are built before the run, so a larger trace is refused
/// (replay a slice of it).
pub const MAX_TRACE_INPUT_TOKENS: u64 = 32 << 20;

#[derive(Deserialize)]
struct MooncakeLine {
    timestamp: f64,
    input_length: u32,
    output_length: u32,
}

/// Reads a trace; errors name the line.
pub fn parse(text: &str, format: TraceFormat, speedup: f64) -> Result<Arc<[TraceRecord]>, String> {
    let mut raw = match format {
        TraceFormat::Mooncake => mooncake(text)?,
        TraceFormat::Azure => azure(text)?,
    };
    if raw.is_empty() {
        return Err("the trace holds no requests".to_owned());
    }
    raw.sort_by(|a, b| a.0.total_cmp(&b.0));
    let input: u64 = raw.iter().map(|r| u64::from(r.1)).sum();
    if input > MAX_TRACE_INPUT_TOKENS {
        return Err(format!(
            "the trace asks {input} input tokens in all, more than the {MAX_TRACE_INPUT_TOKENS} a run prebuilds: replay a slice of it"
        ));
    }
    let first = raw[0].0;
    Ok(raw
        .into_iter()
        .map(|(ms, input_tokens, output_tokens)| TraceRecord {
            // To the microsecond, the finest any trace format records.
            at: Duration::from_micros(((ms - first) * 1000.0 / speedup).round() as u64),
            input_tokens: input_tokens.max(1),
            output_tokens: output_tokens.max(1),
        })
        .collect())
}

fn mooncake(text: &str) -> Result<Vec<(f64, u32, u32)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: MooncakeLine = serde_json::from_str(line)
            .map_err(|e| format!("line {}: {e} (expected {{\"timestamp\": ms, \"input_length\": n, \"output_length\": m}})", n + 1))?;
        if !r.timestamp.is_finite() || r.timestamp < 0.0 {
            return Err(format!(
                "line {}: timestamp {} is not a time",
                n + 1,
                r.timestamp
            ));
        }
        out.push((r.timestamp, r.input_length, r.output_length));
    }
    Ok(out)
}

fn azure(text: &str) -> Result<Vec<(f64, u32, u32)>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let line = n + 2;
        let row = row.map_err(|e| format!("line {line}: {e}"))?;
        let field = |i: usize| row.get(i).map(str::trim).unwrap_or("");
        let at = chrono::NaiveDateTime::parse_from_str(field(0), "%Y-%m-%d %H:%M:%S%.f")
            .map_err(|e| format!("line {line}: timestamp `{}`: {e}", field(0)))?;
        let count = |i: usize, what: &str| {
            field(i)
                .parse::<u32>()
                .map_err(|e| format!("line {line}: {what} `{}`: {e}", field(i)))
        };
        let ms = at.and_utc().timestamp_micros() as f64 / 1000.0;
        out.push((ms, count(1, "ContextTokens")?, count(2, "GeneratedTokens")?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mooncake_lines_become_offsets_from_the_first_request() {
        let text = "{\"timestamp\": 1000, \"input_length\": 30, \"output_length\": 5, \"hash_ids\": [1]}\n\
                    {\"timestamp\": 1250, \"input_length\": 10, \"output_length\": 0}\n";
        let r = parse(text, TraceFormat::Mooncake, 2.0).unwrap();
        assert_eq!(r[0].at, Duration::ZERO);
        assert_eq!(r[1].at, Duration::from_millis(125));
        assert_eq!((r[1].input_tokens, r[1].output_tokens), (10, 1));
        let bad = parse("{\"timestamp\": 1}\n", TraceFormat::Mooncake, 1.0).unwrap_err();
        assert!(bad.starts_with("line 1:"), "{bad}");
    }

    #[test]
    fn azure_rows_read_their_timestamps_to_the_microsecond() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                    2023-11-16 18:15:46.6805900,374,44\n\
                    2023-11-16 18:15:47.0000000,396,109\n";
        let r = parse(text, TraceFormat::Azure, 1.0).unwrap();
        assert_eq!(r[1].at, Duration::from_micros(319_410));
        assert_eq!((r[0].input_tokens, r[1].output_tokens), (374, 109));
        assert!(
            parse(
                "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,1\n",
                TraceFormat::Azure,
                1.0
            )
            .unwrap_err()
            .contains("line 2")
        );
    }
}
