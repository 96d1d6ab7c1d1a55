//! Deterministic token text and token counting. Every request gets its own
//! RNG derived from (seed, request sequence number, purpose), so the text of
//! request N depends only on the seed and N, not on timing or other requests.

/// The words output tokens are drawn from. Plain lowercase ASCII so that a
/// token needs no JSON escaping and can be spliced into chunk templates.
const VOCAB: [&str; 64] = [
    " the",
    " model",
    " token",
    " latency",
    " queue",
    " batch",
    " cache",
    " prompt",
    " stream",
    " request",
    " server",
    " load",
    " graph",
    " signal",
    " metric",
    " trace",
    " span",
    " kernel",
    " memory",
    " tensor",
    " layer",
    " weight",
    " vector",
    " matrix",
    " router",
    " replica",
    " node",
    " cluster",
    " shard",
    " block",
    " page",
    " prefix",
    " decode",
    " prefill",
    " sample",
    " logit",
    " answer",
    " question",
    " system",
    " user",
    " assistant",
    " data",
    " value",
    " result",
    " time",
    " rate",
    " window",
    " budget",
    " limit",
    " lane",
    " worker",
    " thread",
    " core",
    " device",
    " driver",
    " packet",
    " socket",
    " buffer",
    " frame",
    " event",
    " chunk",
    " delta",
    " choice",
    " usage",
];

/// What a per-request RNG is used for; each purpose gets an independent
/// stream so that, e.g., fault draws never shift the token text.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    Text = 1,
    Faults = 2,
    /// Span drop draws and span/trace ids (`trace.rs`).
    Spans = 3,
    /// `/metrics` fault draws (per scrape) and GPU identities.
    Metrics = 5,
}

/// SplitMix64: tiny (8 bytes per stream), fast, and defined here, so the
/// output under a seed never changes with a dependency's version or the
/// platform (reports must stay reproducible).
#[derive(Clone, Debug)]
pub(crate) struct SimRng(u64);

impl SimRng {
    /// The RNG for one purpose of request `seq` under `seed`.
    pub fn for_request(seed: u64, seq: u64, purpose: Purpose) -> SimRng {
        SimRng(mix(mix(seed ^ mix(seq)) ^ purpose as u64))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser: spreads nearby inputs (seq 1, 2, 3...) over the
/// whole 64-bit space.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Draws the next output token, always `" word"`. The vocabulary size is a
/// power of two, so masking is unbiased.
pub(crate) fn next_token(rng: &mut SimRng) -> &'static str {
    VOCAB[(rng.next_u64() >> 58) as usize]
}

/// Prompt tokens of a text: its whitespace-separated words.
pub(crate) fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(seed: u64, seq: u64, n: usize) -> String {
        let mut rng = SimRng::for_request(seed, seq, Purpose::Text);
        (0..n).map(|_| next_token(&mut rng)).collect()
    }

    #[test]
    fn text_depends_only_on_seed_and_sequence() {
        assert_eq!(text(42, 3, 20), text(42, 3, 20));
        assert_ne!(text(42, 3, 20), text(42, 4, 20));
        assert_ne!(text(42, 3, 20), text(43, 3, 20));
    }

    #[test]
    fn floats_are_in_the_unit_interval_and_spread() {
        let mut rng = SimRng::for_request(1, 2, Purpose::Faults);
        let draws: Vec<f64> = (0..1000).map(|_| rng.next_f64()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let low = draws.iter().filter(|x| **x < 0.5).count();
        assert!((400..600).contains(&low), "{low}");
    }

    #[test]
    fn vocabulary_needs_no_json_escaping() {
        for word in VOCAB {
            assert!(word.starts_with(' '));
            assert!(word[1..].bytes().all(|b| b.is_ascii_lowercase()), "{word}");
        }
    }

    #[test]
    fn words_are_whitespace_separated() {
        assert_eq!(count_words(""), 0);
        assert_eq!(count_words("  hello   world\n\tagain "), 3);
    }
}
