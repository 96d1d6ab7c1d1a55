//! Prompt datasets in the ShareGPT conversation format (a local file;
//! nothing is downloaded): a JSON array, or one object a line, of
//! `{"conversations": [{"from": "human", "value": …}, {"from": "gpt",
//! "value": …}, …]}`. Each conversation's first human turn is a prompt
//! and the answer that follows sets its output length, in words (the
//! simulator's tokens; a real tokenizer's count is near it), so a run
//! asks what the recorded conversations asked and as long an answer.

use serde::Deserialize;

use super::Prompt;
use super::error::{Located, PlanError};

#[derive(Deserialize)]
struct Conversation {
    #[serde(default)]
    conversations: Vec<Turn>,
}

#[derive(Deserialize)]
struct Turn {
    from: String,
    value: String,
}

/// What a ShareGPT file held: the prompts and how many conversations had
/// no human turn followed by an answer (skipped, and said so).
pub struct Dataset {
    pub prompts: Vec<Prompt>,
    pub skipped: usize,
    /// Each conversation's (question, answer) exchanges in order, for
    /// multi-turn sessions.
    pub exchanges: Vec<Vec<(String, String)>>,
}

/// Reads a ShareGPT file's text; `label` names it in errors.
pub fn parse_sharegpt(label: &str, text: &str) -> Result<Dataset, PlanError> {
    let conversations = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<Conversation>>(text)
            .map_err(|e| invalid(label, text, line_offset(text, e.line(), e.column()), &e))?
    } else {
        let mut all = Vec::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            if !line.trim().is_empty() {
                let c = serde_json::from_str::<Conversation>(line.trim())
                    .map_err(|e| invalid(label, text, offset + e.column().saturating_sub(1), &e))?;
                all.push(c);
            }
            offset += line.len();
        }
        all
    };
    let total = conversations.len();
    let prompts: Vec<Prompt> = conversations.iter().filter_map(first_exchange).collect();
    Ok(Dataset {
        skipped: total - prompts.len(),
        prompts,
        exchanges: conversations.iter().map(exchanges).collect(),
    })
}

/// Every human turn followed by an answer, as (question, answer).
fn exchanges(c: &Conversation) -> Vec<(String, String)> {
    c.conversations
        .windows(2)
        .filter(|w| is_human(&w[0].from) && !is_human(&w[1].from) && w[1].from != "system")
        .map(|w| (w[0].value.clone(), w[1].value.clone()))
        .collect()
}

/// The first human turn and the length of the answer after it.
fn first_exchange(c: &Conversation) -> Option<Prompt> {
    let asked = c.conversations.iter().position(|t| is_human(&t.from))?;
    let question = &c.conversations[asked];
    let answer = c.conversations[asked + 1..].first()?;
    let words = |text: &str| u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX);
    let (tokens, answered) = (words(&question.value), words(&answer.value));
    (tokens > 0 && answered > 0 && !is_human(&answer.from)).then(|| Prompt {
        text: question.value.clone(),
        tokens,
        weight: 1.0,
        max_tokens: Some(answered),
    })
}

fn is_human(from: &str) -> bool {
    matches!(from, "human" | "user")
}

fn line_offset(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    start + column.saturating_sub(1)
}

fn invalid(label: &str, text: &str, at: usize, e: &serde_json::Error) -> PlanError {
    PlanError::Invalid(Box::new(
        Located::new(
            label,
            text,
            Some(at..at + 1),
            format!("invalid ShareGPT conversation: {e}"),
        )
        .with_hint(
            "each conversation is {\"conversations\": [{\"from\": \"human\", \"value\": \"...\"}, {\"from\": \"gpt\", \"value\": \"...\"}]}",
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_exchange_of_each_conversation_is_a_prompt_with_its_answers_length() {
        let text = r#"[
 {"id": "a", "conversations": [{"from": "system", "value": "be kind"}, {"from": "human", "value": "why is the sky blue"}, {"from": "gpt", "value": "because of Rayleigh scattering"}, {"from": "human", "value": "more"}]},
 {"id": "b", "conversations": [{"from": "gpt", "value": "hello"}]},
 {"id": "c", "conversations": [{"from": "user", "value": "hi"}, {"from": "assistant", "value": "hello there"}]}
]"#;
        let d = parse_sharegpt("d.json", text).unwrap();
        assert_eq!(d.skipped, 1);
        let got: Vec<(&str, u32, Option<u32>)> = d
            .prompts
            .iter()
            .map(|p| (p.text.as_str(), p.tokens, p.max_tokens))
            .collect();
        assert_eq!(
            got,
            [("why is the sky blue", 5, Some(4)), ("hi", 1, Some(2))]
        );
        let lines = "{\"conversations\": [{\"from\": \"human\", \"value\": \"a b\"}, {\"from\": \"gpt\", \"value\": \"c\"}]}\n";
        assert_eq!(parse_sharegpt("d.jsonl", lines).unwrap().prompts.len(), 1);
    }

    #[test]
    fn a_broken_file_is_located() {
        let error = parse_sharegpt(
            "d.jsonl",
            "{\"conversations\": []}\n{\"conversations\": [}\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("d.jsonl:2:"), "{error}");
    }
}
