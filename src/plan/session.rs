//! Multi-turn sessions (`[workload] turns = N`): a user works through a
//! conversation turn by turn, each request carrying the conversation so
//! far — the earlier questions and answers, then the new question — so a
//! server's prefix cache can reuse every earlier turn. Conversations come
//! from a ShareGPT file (its recorded questions and answers, the answer's
//! length asked as `max_tokens`) or are built from the workload's prompts
//! with synthetic answers of the asked length.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{Prompt, synthetic_prompt};

/// Most turns a session may have.
pub const MAX_TURNS: u32 = 64;
/// Synthetic conversations built from the workload's prompts.
pub const SYNTHETIC_SESSIONS: usize = 32;

/// One conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub turns: Vec<SessionTurn>,
}

/// One exchange: the question sent and the answer carried into the next
/// turns' history.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionTurn {
    pub question: String,
    pub question_tokens: u32,
    pub answer: String,
    /// The output length this turn asks for (the recorded answer's).
    pub max_tokens: u32,
}

/// What the resolved plan shows of its sessions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sessions {
    /// Turns per session, at most.
    pub turns: u32,
    /// Conversations to draw from.
    pub conversations: usize,
    #[serde(skip)]
    pub all: std::sync::Arc<[Session]>,
}

/// `words` words of a question or answer.
fn words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// A recorded conversation's exchanges, questions paired with the answer
/// that follows, at most `turns` of them; `None` without one.
pub fn recorded(exchanges: &[(String, String)], turns: u32) -> Option<Session> {
    let turns: Vec<SessionTurn> = exchanges
        .iter()
        .filter(|(q, a)| words(q) > 0 && words(a) > 0)
        .take(turns as usize)
        .map(|(q, a)| SessionTurn {
            question: q.clone(),
            question_tokens: words(q),
            answer: a.clone(),
            max_tokens: words(a),
        })
        .collect();
    (!turns.is_empty()).then_some(Session { turns })
}

/// [`SYNTHETIC_SESSIONS`] conversations of `turns` turns, questions drawn
/// from `prompts` by weight, answers `max_tokens` words long.
pub fn synthetic(prompts: &[Prompt], turns: u32, max_tokens: u32, seed: u64) -> Vec<Session> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5E55_1015);
    let total: f64 = prompts.iter().map(|p| p.weight).sum();
    (0..SYNTHETIC_SESSIONS)
        .map(|s| Session {
            turns: (0..turns)
                .map(|t| {
                    let mut draw = rng.random::<f64>() * total;
                    let prompt = prompts
                        .iter()
                        .find(|p| {
                            draw -= p.weight;
                            draw < 0.0
                        })
                        .unwrap_or(&prompts[prompts.len() - 1]);
                    let salt = seed
                        .wrapping_add((s as u64) << 20)
                        .wrapping_add(u64::from(t));
                    let asked = prompt.max_tokens.unwrap_or(max_tokens);
                    SessionTurn {
                        question: synthetic_prompt(prompt.tokens, salt),
                        question_tokens: prompt.tokens,
                        answer: synthetic_prompt(asked, !salt),
                        max_tokens: asked,
                    }
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_sessions_pair_questions_with_answers_up_to_the_cap() {
        let ex = |q: &str, a: &str| (q.to_owned(), a.to_owned());
        let all = [
            ex("a b", "c d e"),
            ex("", "skipped"),
            ex("f", "g"),
            ex("h", "i"),
        ];
        let s = recorded(&all, 2).unwrap();
        let got: Vec<(u32, u32)> = s
            .turns
            .iter()
            .map(|t| (t.question_tokens, t.max_tokens))
            .collect();
        assert_eq!(got, [(2, 3), (1, 1)]);
        assert!(recorded(&[ex("", "")], 4).is_none());
    }

    #[test]
    fn synthetic_sessions_have_the_asked_lengths_and_are_deterministic() {
        let prompt = Prompt {
            text: String::new(),
            tokens: 7,
            weight: 1.0,
            max_tokens: None,
        };
        let a = synthetic(std::slice::from_ref(&prompt), 3, 5, 1);
        assert_eq!(a.len(), SYNTHETIC_SESSIONS);
        assert!(a.iter().all(|s| s.turns.len() == 3));
        let t = &a[0].turns[2];
        assert_eq!(
            (words(&t.question), words(&t.answer), t.max_tokens),
            (7, 5, 5)
        );
        assert_eq!(a, synthetic(&[prompt], 3, 5, 1));
    }
}
