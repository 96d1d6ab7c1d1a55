//! `/metrics` in the Prometheus text exposition format (0.0.4), with vLLM's
//! metric names and its `model_name` label, formatted by hand from a
//! counter snapshot. Families are written through [`Family`] so new ones
//! (histograms) slot in the same way.

use std::fmt::Write;

use super::state::SimStats;

/// Prometheus metric types used here.
#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// One metric family with a single sample.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    /// Labels besides `model_name`, already formatted (`key="value",`).
    extra_labels: &'static str,
    value: u64,
}

/// Renders every family for `model`.
pub(crate) fn render(model: &str, stats: &SimStats) -> String {
    let families = [
        Family {
            name: "vllm:num_requests_running",
            help: "Number of requests in model execution batches.",
            kind: Kind::Gauge,
            extra_labels: "",
            value: stats.running,
        },
        Family {
            name: "vllm:num_requests_waiting",
            help: "Number of requests waiting to be processed.",
            kind: Kind::Gauge,
            extra_labels: "",
            value: stats.waiting,
        },
        Family {
            name: "vllm:request_success_total",
            help: "Count of successfully processed requests.",
            kind: Kind::Counter,
            extra_labels: "finished_reason=\"length\",",
            value: stats.completed,
        },
        Family {
            name: "vllm:generation_tokens_total",
            help: "Number of generation tokens processed.",
            kind: Kind::Counter,
            extra_labels: "",
            value: stats.output_tokens,
        },
        Family {
            name: "vllm:prompt_tokens_total",
            help: "Number of prefill tokens processed.",
            kind: Kind::Counter,
            extra_labels: "",
            value: stats.prompt_tokens,
        },
    ];
    let model = escape_label_value(model);
    let mut out = String::with_capacity(1024);
    for family in &families {
        write_family(&mut out, &model, family);
    }
    out
}

fn write_family(out: &mut String, model: &str, f: &Family) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
    // vLLM (prometheus_client) prints every value as a float.
    let labels = format!("{}model_name=\"{model}\"", f.extra_labels);
    let _ = writeln!(out, "{}{{{labels}}} {}.0", f.name, f.value);
}

/// Escapes a label value as the exposition format requires: backslash,
/// double quote and line feed.
fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label_value("sim-llama-8b"), "sim-llama-8b");
    }

    #[test]
    fn families_have_help_type_and_labelled_sample() {
        let stats = SimStats {
            completed: 3,
            output_tokens: 30,
            running: 2,
            ..SimStats::default()
        };
        let text = render("m", &stats);
        assert!(text.contains("# TYPE vllm:num_requests_running gauge\n"));
        assert!(text.contains("vllm:num_requests_running{model_name=\"m\"} 2.0\n"));
        assert!(text.contains("# HELP vllm:request_success_total "));
        assert!(text.contains(
            "vllm:request_success_total{finished_reason=\"length\",model_name=\"m\"} 3.0\n"
        ));
        assert!(text.contains("vllm:generation_tokens_total{model_name=\"m\"} 30.0\n"));
        assert!(text.contains("vllm:prompt_tokens_total{model_name=\"m\"} 0.0\n"));
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 5);
    }
}
