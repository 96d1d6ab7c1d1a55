//! Value parsers for the units plans are written in: durations (`500ms`,
//! `2m`), rates (`50`, `50/s`, `3000/m`), think-time ranges (`1s..3s`).
//! Errors quote the input and say what was expected.

use std::time::Duration;

/// Parses a duration such as `500ms`, `30s`, `2m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    humantime::parse_duration(trimmed).map_err(|_| {
        format!(
            "invalid duration \"{text}\": expected a number with a unit, like 500ms, 30s, 5m or 1h"
        )
    })
}

/// Parses a request rate in requests per second: `50`, `50/s`, `3000/m`,
/// `0.5/s`. Must be positive and finite.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, per_seconds) = match trimmed.split_once('/') {
        None => (trimmed, 1.0),
        Some((n, "s" | "sec")) => (n, 1.0),
        Some((n, "m" | "min")) => (n, 60.0),
        Some((n, "h")) => (n, 3600.0),
        Some(_) => {
            return Err(format!(
                "invalid rate \"{text}\": the unit must be /s, /m or /h"
            ));
        }
    };
    let value: f64 = number.trim().parse().map_err(|_| {
        format!("invalid rate \"{text}\": expected a number of requests, like 50 or 50/s")
    })?;
    check_rate(value / per_seconds).map_err(|e| format!("invalid rate \"{text}\": {e}"))
}

/// A rate must be positive and finite.
pub fn check_rate(per_second: f64) -> Result<f64, String> {
    if !per_second.is_finite() || per_second <= 0.0 {
        return Err(format!(
            "a rate must be a positive number of requests per second, got {per_second}"
        ));
    }
    Ok(per_second)
}

/// Parses a think-time range `1s..3s`, or a single duration `2s`.
pub fn parse_duration_range(text: &str) -> Result<(Duration, Duration), String> {
    let (low, high) = match text.split_once("..") {
        Some((a, b)) => (parse_duration(a)?, parse_duration(b)?),
        None => {
            let d = parse_duration(text)?;
            (d, d)
        }
    };
    if low > high {
        return Err(format!(
            "invalid range \"{text}\": the lower bound is above the upper"
        ));
    }
    Ok((low, high))
}

/// Formats a duration compactly for reports and messages: `150ms`, `2.5s`, `5m`, `1h30m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        return trim_float(secs, "s");
    }
    let whole = d.as_secs();
    let (h, m, s) = (whole / 3600, whole % 3600 / 60, whole % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn trim_float(value: f64, unit: &str) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            (" 5m ", 300_000),
            ("1m30s", 90_000),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in ["", "5", "5x", "-1s", "fast"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(&format!("\"{bad}\"")), "{err}");
        }
    }

    #[test]
    fn rates() {
        let ok = [
            ("50", 50.0),
            ("50/s", 50.0),
            ("3000/m", 50.0),
            ("0.5/s", 0.5),
            ("7200/h", 2.0),
        ];
        for (text, rate) in ok {
            assert_eq!(parse_rate(text), Ok(rate), "{text}");
        }
        for bad in ["-5", "0", "abc", "5/d", "inf", "NaN"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse_duration_range("1s..3s"),
            Ok((Duration::from_secs(1), Duration::from_secs(3)))
        );
        assert_eq!(
            parse_duration_range("2s"),
            Ok((Duration::from_secs(2), Duration::from_secs(2)))
        );
        assert!(parse_duration_range("3s..1s").is_err());
        assert!(parse_duration_range("1s..x").is_err());
    }

    #[test]
    fn formatting() {
        let cases = [
            (150, "150ms"),
            (2_500, "2.5s"),
            (30_000, "30s"),
            (300_000, "5m"),
            (5_400_000, "1h30m"),
            (90_000, "1m30s"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_duration(Duration::from_millis(ms)), text);
        }
    }
}
