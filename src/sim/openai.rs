//! The OpenAI wire format on the server side: parsing chat and text
//! completion requests into a [`Job`], and the JSON bodies of non-streaming
//! answers and errors. Streaming chunks live in `chunks.rs`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::config::Faults;
use super::engine::prefix::block_hashes;
use super::faults::FaultPlan;
use super::tokens::{Purpose, SimRng, count_words};

/// Which OpenAI endpoint a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completion,
}

impl Endpoint {
    /// The `id` of a response: `chatcmpl-sim-N` or `cmpl-sim-N`.
    pub fn response_id(self, seq: u64) -> String {
        match self {
            Endpoint::Chat => format!("chatcmpl-sim-{seq}"),
            Endpoint::Completion => format!("cmpl-sim-{seq}"),
        }
    }
}

/// The fields of a request the simulator uses; everything else is ignored.
#[derive(Debug, PartialEq)]
pub(crate) struct Request {
    pub model: Option<String>,
    pub prompt_tokens: u64,
    pub max_tokens: Option<u32>,
    pub stream: bool,
    pub include_usage: bool,
    /// `stream_options.continuous_usage_stats`: usage on every chunk.
    pub continuous_usage: bool,
    /// Chained hashes of the prompt's full KV blocks (prefix caching).
    pub block_hashes: Vec<u64>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
    continuous_usage_stats: Option<bool>,
}

#[derive(Deserialize)]
struct ChatBody {
    model: Option<String>,
    messages: Vec<Message>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<Value>,
}

#[derive(Deserialize)]
struct CompletionBody {
    model: Option<String>,
    prompt: Prompt,
    max_tokens: Option<u32>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Prompt {
    One(String),
    Many(Vec<String>),
}

/// Parses a request body, cutting the prompt into KV blocks of
/// `block_size` words; the error is the message for a 400 answer.
pub(crate) fn parse(endpoint: Endpoint, body: &[u8], block_size: u32) -> Result<Request, String> {
    let request = match endpoint {
        Endpoint::Chat => parse_chat(body, block_size)?,
        Endpoint::Completion => parse_completion(body, block_size)?,
    };
    if request.max_tokens == Some(0) {
        return Err("max_tokens must be at least 1".to_string());
    }
    Ok(request)
}

fn parse_chat(body: &[u8], block_size: u32) -> Result<Request, String> {
    let b: ChatBody = serde_json::from_slice(body).map_err(|e| format!("invalid request: {e}"))?;
    let prompt_tokens = b
        .messages
        .iter()
        .map(|m| content_words(m.content.as_ref()))
        .sum();
    let words = b
        .messages
        .iter()
        .flat_map(|m| content_texts(m.content.as_ref()))
        .flat_map(str::split_whitespace);
    Ok(Request {
        block_hashes: block_hashes(words, block_size),
        model: b.model,
        prompt_tokens,
        max_tokens: b.max_completion_tokens.or(b.max_tokens),
        stream: b.stream.unwrap_or(false),
        include_usage: include_usage(b.stream_options.as_ref()),
        continuous_usage: continuous_usage(b.stream_options.as_ref()),
    })
}

fn parse_completion(body: &[u8], block_size: u32) -> Result<Request, String> {
    let b: CompletionBody =
        serde_json::from_slice(body).map_err(|e| format!("invalid request: {e}"))?;
    let texts: Vec<&str> = match &b.prompt {
        Prompt::One(text) => vec![text.as_str()],
        Prompt::Many(texts) => texts.iter().map(String::as_str).collect(),
    };
    let prompt_tokens = texts.iter().map(|t| count_words(t)).sum();
    let words = texts.iter().flat_map(|t| t.split_whitespace());
    Ok(Request {
        block_hashes: block_hashes(words, block_size),
        model: b.model,
        prompt_tokens,
        max_tokens: b.max_tokens,
        stream: b.stream.unwrap_or(false),
        include_usage: include_usage(b.stream_options.as_ref()),
        continuous_usage: continuous_usage(b.stream_options.as_ref()),
    })
}

fn include_usage(options: Option<&StreamOptions>) -> bool {
    options.and_then(|o| o.include_usage).unwrap_or(false)
}

fn continuous_usage(options: Option<&StreamOptions>) -> bool {
    options
        .and_then(|o| o.continuous_usage_stats)
        .unwrap_or(false)
}

/// The texts of a message's content: a string, or the `text` parts.
fn content_texts(content: Option<&Value>) -> Vec<&str> {
    match content {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    }
}

/// Words in a message's content: a string, or an array of content parts of
/// which the `text` ones count.
fn content_words(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(text)) => count_words(text),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(count_words)
            .sum(),
        _ => 0,
    }
}

/// One accepted request, numbered and with its faults drawn.
#[derive(Debug)]
pub(crate) struct Job {
    pub endpoint: Endpoint,
    pub seq: u64,
    /// The model echoed back: the request's, or the served one.
    pub model: String,
    pub prompt_tokens: u64,
    pub max_tokens: u32,
    pub stream: bool,
    pub include_usage: bool,
    /// Usage on every token chunk (vLLM's `continuous_usage_stats`).
    pub continuous_usage: bool,
    pub faults: FaultPlan,
    /// Unix seconds, for the `created` field.
    pub created: u64,
}

/// What a job is built from besides the request.
pub(crate) struct JobContext<'a> {
    pub seed: u64,
    pub seq: u64,
    /// The served model's name.
    pub model: &'a str,
    pub default_max_tokens: u32,
    pub faults: &'a Faults,
}

impl Job {
    pub fn new(ctx: JobContext<'_>, endpoint: Endpoint, request: &Request) -> Job {
        let mut rng = SimRng::for_request(ctx.seed, ctx.seq, Purpose::Faults);
        Job {
            endpoint,
            seq: ctx.seq,
            model: ctx.model.to_string(),
            prompt_tokens: request.prompt_tokens,
            max_tokens: request.max_tokens.unwrap_or(ctx.default_max_tokens).max(1),
            stream: request.stream,
            include_usage: request.include_usage,
            continuous_usage: request.continuous_usage,
            faults: FaultPlan::draw(ctx.faults, &mut rng),
            created: unix_now(),
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `usage` object for `completion_tokens` output tokens.
pub(crate) fn usage_json(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// The body of a finished non-streaming answer.
pub(crate) fn completion_body(job: &Job, text: &str, completion_tokens: u64) -> Vec<u8> {
    let choice = match job.endpoint {
        Endpoint::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": null,
            "finish_reason": "length",
        }),
        Endpoint::Completion => json!({
            "index": 0,
            "text": text,
            "logprobs": null,
            "finish_reason": "length",
        }),
    };
    let object = match job.endpoint {
        Endpoint::Chat => "chat.completion",
        Endpoint::Completion => "text_completion",
    };
    let body = json!({
        "id": job.endpoint.response_id(job.seq),
        "object": object,
        "created": job.created,
        "model": job.model,
        "choices": [choice],
        "usage": usage_json(job.prompt_tokens, completion_tokens),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// An OpenAI-style error body.
pub(crate) fn error_body(message: &str, kind: &str, code: u16) -> Vec<u8> {
    let body = json!({"error": {"message": message, "type": kind, "code": code}});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The body of `GET /v1/models`.
pub(crate) fn models_body<'a>(models: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let data: Vec<Value> = models
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "infercheck-sim"}))
        .collect();
    let body = json!({"object": "list", "data": data});
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_counts_words_of_every_message_and_ignores_unknown_fields() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"one two three"}]}],
            "max_tokens":7,"stream":true,"stream_options":{"include_usage":true},
            "temperature":0.2,"foo":{"bar":1}}"#;
        let r = parse(Endpoint::Chat, body, 2).unwrap();
        let want = Request {
            model: Some("m".into()),
            prompt_tokens: 5,
            max_tokens: Some(7),
            stream: true,
            include_usage: true,
            continuous_usage: false,
            block_hashes: block_hashes("be brief one two three".split_whitespace(), 2),
        };
        assert_eq!(r, want);
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let body = br#"{"messages":[],"max_tokens":7,"max_completion_tokens":9}"#;
        assert_eq!(parse(Endpoint::Chat, body, 16).unwrap().max_tokens, Some(9));
    }

    #[test]
    fn completion_prompt_may_be_a_string_or_a_list() {
        let one = parse(Endpoint::Completion, br#"{"prompt":"a b c"}"#, 16).unwrap();
        assert_eq!(
            (one.prompt_tokens, one.stream, one.max_tokens),
            (3, false, None)
        );
        let many = parse(Endpoint::Completion, br#"{"prompt":["a b","c"]}"#, 16).unwrap();
        assert_eq!(many.prompt_tokens, 3);
    }

    #[test]
    fn malformed_or_invalid_requests_are_rejected() {
        assert!(parse(Endpoint::Chat, b"{not json", 16).is_err());
        assert!(parse(Endpoint::Chat, br#"{"model":"m"}"#, 16).is_err());
        assert!(parse(Endpoint::Chat, br#"{"messages":[],"max_tokens":-1}"#, 16).is_err());
        assert!(parse(Endpoint::Chat, br#"{"messages":[],"max_tokens":0}"#, 16).is_err());
        assert!(parse(Endpoint::Completion, br#"{"prompt":5}"#, 16).is_err());
    }
}
