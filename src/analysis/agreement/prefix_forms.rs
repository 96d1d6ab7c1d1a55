//! The prefix-cache hit rate in its two forms, side by side: the lookup
//! form (tokens the cache found / tokens looked up: vLLM's
//! `prefix_cache_hits` / `prefix_cache_queries`) and the prompt form
//! (prompt tokens served from the cache / prompt tokens:
//! `prompt_tokens_cached` / `prompt_tokens`).
//!
//! They measure different things but count the same tokens when nothing
//! intervenes: a request is looked up once, when it is first scheduled,
//! with its prompt, and what the lookup found is what its prompt was served
//! from. Two things make the lookup form count more: a preempted request
//! is looked up again when it resumes, with its prompt and what it had
//! generated (so both hits and lookups may grow by up to prompt +
//! max_tokens for each preemption), and a request abandoned before its
//! first token may be looked up without its prompt ever being counted.
//! Beyond those, and 1 % on each counter for scrape timing, a difference
//! means the two counters count different things.

use super::{COUNTER_TOLERANCE, increase};
use crate::report::{CheckUnit, CrossCheck, ObservedReport, Reference, StatsBlock};

/// The four counters' increases, and the tokens the lookup form may count
/// beyond the prompt form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Forms {
    pub hits: f64,
    pub queries: f64,
    pub cached: f64,
    pub prompt: f64,
    pub extra: f64,
}

impl Forms {
    /// The lookup form's rate the prompt form allows: [low, high].
    fn allowed(&self) -> (f64, f64) {
        let hit_slack = (self.cached * COUNTER_TOLERANCE).max(1.0);
        let prompt_slack = (self.prompt * COUNTER_TOLERANCE).max(1.0);
        let low = (self.cached - hit_slack).max(0.0) / (self.prompt + self.extra + prompt_slack);
        let high = (self.cached + self.extra + hit_slack) / (self.prompt - prompt_slack).max(1.0);
        (low, high.min(1.0))
    }
}

pub(super) fn judge(f: &Forms, why_extra: &str) -> CrossCheck {
    let lookup = f.hits / f.queries;
    let prompt = f.cached / f.prompt;
    let (low, high) = f.allowed();
    let pass = (low..=high).contains(&lookup);
    let mut detail = format!(
        "lookups: {:.0} of {:.0} tokens hit ({:.1}%); prompt tokens: {:.0} of {:.0} served from the cache ({:.1}%); {:+.1} points",
        f.hits,
        f.queries,
        lookup * 100.0,
        f.cached,
        f.prompt,
        prompt * 100.0,
        (lookup - prompt) * 100.0
    );
    if !pass {
        detail.push_str(": the two forms count different things here — one counter in blocks and the other in tokens, hits from an external KV-cache tier counted in cached prompt tokens only, re-lookups of preempted requests beyond the allowance, or a broken counter");
    }
    let mut tolerance = format!(
        "lookup rate within {:.1}%…{:.1}% (±1% on each counter",
        low * 100.0,
        high * 100.0
    );
    if f.extra > 0.0 {
        tolerance.push_str(&format!(
            ", and {:.0} tokens looked up again {why_extra}",
            f.extra
        ));
    }
    tolerance.push(')');
    CrossCheck {
        check: "Prefix-cache hit rate: lookups vs prompt tokens".to_owned(),
        unit: CheckUnit::Ratio,
        client: prompt,
        server_low: lookup,
        server_high: Some(lookup),
        tolerance,
        pass,
        detail,
        reference: Reference::Server,
    }
}

/// Both forms from the run's counters, or why they could not be read.
pub(super) fn check(
    observed: &ObservedReport,
    overall: &StatsBlock,
    max_tokens: u32,
    abandoned: u64,
) -> Result<CrossCheck, String> {
    const LABEL: &str = "Prefix-cache hit rate, both forms";
    let counter = |name: &str| {
        increase(observed, name)
            .ok_or_else(|| format!("{LABEL}: the server exports no `{name}` counter"))
    };
    let (hits, queries) = (
        counter("prefix_cache_hits_tokens")?,
        counter("prefix_cache_queries_tokens")?,
    );
    let (cached, prompt) = (
        counter("server_prompt_tokens_cached")?,
        counter("prompt_tokens")?,
    );
    if queries <= 0.0 || prompt <= 0.0 {
        return Err(format!("{LABEL}: no prompt token was looked up"));
    }
    let preemptions = increase(observed, "preemptions").unwrap_or(0.0).max(0.0);
    let mean_prompt = overall
        .prompt_tokens
        .checked_div(overall.ok)
        .map_or(prompt, |p| p as f64);
    let extra =
        preemptions * (mean_prompt + f64::from(max_tokens)) + abandoned as f64 * mean_prompt;
    let why =
        format!("for {preemptions:.0} preemptions and {abandoned} requests the client gave up on");
    Ok(judge(
        &Forms {
            hits,
            queries,
            cached,
            prompt,
            extra,
        },
        &why,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(hits: f64, queries: f64, cached: f64, prompt: f64) -> Forms {
        Forms {
            hits,
            queries,
            cached,
            prompt,
            extra: 0.0,
        }
    }

    #[test]
    fn equal_counters_agree_and_the_rates_sit_side_by_side() {
        let same = judge(&forms(2_000.0, 10_000.0, 2_000.0, 10_000.0), "");
        assert!(same.pass, "{same:?}");
        assert_eq!((same.server_low, same.client), (0.2, 0.2));
        assert!(same.detail.ends_with("+0.0 points"), "{}", same.detail);
        // 1 % on each counter: 20.0 % vs 20.4 % still agrees.
        assert!(judge(&forms(2_040.0, 10_000.0, 2_000.0, 10_000.0), "").pass);
    }

    #[test]
    fn a_lookup_counter_in_blocks_disagrees_and_says_by_how_much() {
        // Hits and queries counted in 16-token blocks, rounded down per
        // request: 100 requests of 100 tokens with 40 cached look up
        // 6 blocks and find 2: 33.3 % vs 40 %.
        let blocks = judge(&forms(200.0, 600.0, 4_000.0, 10_000.0), "");
        assert!(!blocks.pass);
        assert!(blocks.detail.contains("-6.7 points"), "{}", blocks.detail);
        assert!(blocks.detail.contains("in blocks"));
    }

    #[test]
    fn preemptions_allow_the_lookup_form_more() {
        // 10 preemptions re-look-up 100 tokens each, all hits.
        let mut f = forms(3_000.0, 11_000.0, 2_000.0, 10_000.0);
        assert!(!judge(&f, "").pass);
        f.extra = 1_000.0;
        let allowed = judge(&f, "for 10 preemptions");
        assert!(allowed.pass, "{allowed:?}");
        assert!(
            allowed
                .tolerance
                .contains("1000 tokens looked up again for 10 preemptions")
        );
    }
}
