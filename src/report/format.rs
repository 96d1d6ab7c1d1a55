//! How numbers read in every report: "847ms", "1.20s", "0.23%", "2,847",
//! "2m 30s" — the units of the hand-written reports (examples/000, 001).
//! Pure functions; a value that is not finite reads "—".

/// What a cell shows when the model has no value (e.g. no GPU sampler).
pub(crate) const NONE: &str = "—";

/// "2,847": thousands separators, as the hand-written reports use.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A number with `decimals` decimals and separators in its integer part.
pub(crate) fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let grouped = count(int.parse().unwrap_or(0));
    // No "-0.0": a negative value that rounds to zero prints as zero.
    let rounds_to_zero = text.chars().all(|c| c == '0' || c == '.');
    let sign = if v < 0.0 && !rounds_to_zero { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// Milliseconds for reading: 1 decimal below 100ms ("56.6ms"), whole
/// milliseconds below 10s ("1,203ms", like examples/000), then seconds
/// ("12.35s") because five-digit millisecond counts are hard to compare.
pub(crate) fn ms(v: f64) -> String {
    if !v.is_finite() {
        NONE.to_owned()
    } else if v.abs() < 99.95 {
        format!("{}ms", fixed(v, 1))
    } else if v.abs() < 9_999.5 {
        format!("{}ms", fixed(v, 0))
    } else {
        format!("{}s", fixed(v / 1000.0, 2))
    }
}

pub(crate) fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| NONE.to_owned(), ms)
}

/// Milliseconds as seconds with 2 decimals and no unit ("1.13"): the
/// sweep table's "p95 Latency (s)" column, as in examples/001.
pub(crate) fn secs2(ms: f64) -> String {
    fixed(ms / 1000.0, 2)
}

/// A wall-clock span: "2.5s", "45s", "2m 30s", "27m", "1h 05m".
pub(crate) fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return NONE.to_owned();
    }
    if s < 9.95 {
        return format!("{s:.1}s");
    }
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m, sec) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m {sec:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

/// A fraction as a percentage with 2 decimals: 0.0023 → "0.23%".
pub(crate) fn pct(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.2}%", fraction * 100.0)
    } else {
        NONE.to_owned()
    }
}

/// A rate with 1 decimal: "152.3", "2,847.0".
pub(crate) fn rate(v: f64) -> String {
    fixed(v, 1)
}

/// A planned rate as written in a plan: "150", "12.5".
pub(crate) fn target_rate(v: f64) -> String {
    if v.fract() == 0.0 {
        fixed(v, 0)
    } else {
        fixed(v, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        let cases = [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (2_847, "2,847"),
            (1_234_567, "1,234,567"),
        ];
        for (n, want) in cases {
            assert_eq!(count(n), want, "{n}");
        }
    }

    #[test]
    fn milliseconds_read_like_the_hand_written_reports() {
        let cases = [
            (0.0, "0.0ms"),
            (8.84, "8.8ms"),
            (56.6, "56.6ms"),
            (99.94, "99.9ms"),
            // Rounding to 1 decimal would print "100.0ms": switch to whole ms.
            (99.96, "100ms"),
            (847.4, "847ms"),
            (1_203.0, "1,203ms"),
            (9_999.4, "9,999ms"),
            (12_345.0, "12.35s"),
            (f64::NAN, "—"),
        ];
        for (v, want) in cases {
            assert_eq!(ms(v), want, "{v}");
        }
        assert_eq!(opt_ms(None), "—");
    }

    #[test]
    fn sweep_seconds_have_two_decimals_and_no_unit() {
        for (v, want) in [
            (1_130.0, "1.13"),
            (4_371.0, "4.37"),
            (40.0, "0.04"),
            (12_000.0, "12.00"),
        ] {
            assert_eq!(secs2(v), want, "{v}");
        }
    }

    #[test]
    fn durations_use_the_largest_sensible_unit() {
        let cases = [
            (2.5, "2.5s"),
            (45.0, "45s"),
            (60.0, "1m"),
            (150.0, "2m 30s"),
            (1_620.0, "27m"),
            (3_900.0, "1h 05m"),
            (-1.0, "—"),
        ];
        for (v, want) in cases {
            assert_eq!(duration(v), want, "{v}");
        }
    }

    #[test]
    fn percentages_and_rates() {
        for (v, want) in [
            (0.0023, "0.23%"),
            (0.0, "0.00%"),
            (1.0, "100.00%"),
            (0.7, "70.00%"),
        ] {
            assert_eq!(pct(v), want, "{v}");
        }
        for (v, want) in [
            (152.34, "152.3"),
            (2_847.0, "2,847.0"),
            (0.04, "0.0"),
            (-3.26, "-3.3"),
            (-0.01, "0.0"),
        ] {
            assert_eq!(rate(v), want, "{v}");
        }
        for (v, want) in [(150.0, "150"), (12.5, "12.5"), (1_500.0, "1,500")] {
            assert_eq!(target_rate(v), want, "{v}");
        }
    }
}
