//! Server-sent-event chunks of a streaming answer, built from per-request
//! templates: the JSON envelope (id, object, created, model) is serialised
//! once per request, and a token chunk is three slices copied into one
//! buffer, so the hot path allocates only the `Bytes` it sends.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::openai::{Endpoint, Job, usage_json};

/// The SSE error event of the `error_event_rate` fault.
const ERROR_EVENT: &str =
    "data: {\"error\":{\"message\":\"simulated\",\"type\":\"server_error\"}}\n\n";

/// The chunk of the `malformed_rate` fault: cut off mid-JSON.
const MALFORMED: &str = "data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\":\n\n";

/// The end-of-stream marker.
const DONE: &str = "data: [DONE]\n\n";

/// Templates for one streaming request.
#[derive(Debug)]
pub(crate) struct Chunks {
    endpoint: Endpoint,
    /// `data: {"id":..,"object":..,"created":..,"model":..,` — every chunk
    /// of the request starts with it.
    head: String,
    /// `head` plus the opening of a token's text field.
    token_open: String,
}

impl Chunks {
    pub fn new(job: &Job) -> Chunks {
        let object = match job.endpoint {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completion => "text_completion",
        };
        // The model comes from the client, so it goes through the JSON
        // serialiser for escaping; everything else is known to be plain.
        let model = serde_json::to_string(&job.model).unwrap_or_else(|_| "\"\"".into());
        let head = format!(
            "data: {{\"id\":\"{}\",\"object\":\"{object}\",\"created\":{},\"model\":{model},",
            job.endpoint.response_id(job.seq),
            job.created,
        );
        let open = match job.endpoint {
            Endpoint::Chat => "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
            Endpoint::Completion => "\"choices\":[{\"index\":0,\"text\":\"",
        };
        let token_open = format!("{head}{open}");
        Chunks {
            endpoint: job.endpoint,
            head,
            token_open,
        }
    }

    /// The chat stream's first chunk: the assistant role, no token.
    pub fn role(&self) -> Bytes {
        let tail = "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\
                    \"logprobs\":null,\"finish_reason\":null}]}\n\n";
        concat(&[&self.head, tail])
    }

    /// One token chunk. `word` must need no JSON escaping (the vocabulary
    /// guarantees it).
    #[cfg(test)]
    pub fn token(&self, word: &str) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.token_open.len() + word.len() + 64);
        self.push_token(&mut buf, word, None);
        buf.freeze()
    }

    /// Appends one token chunk to `buf` (several tokens that are due at once
    /// go out in one write). With `usage` (prompt, completion so far), the
    /// chunk carries it, as vLLM's `continuous_usage_stats` does.
    pub fn push_token(&self, buf: &mut BytesMut, word: &str, usage: Option<(u64, u64)>) {
        let close = match self.endpoint {
            Endpoint::Chat => "\"},\"logprobs\":null,\"finish_reason\":null}]",
            Endpoint::Completion => "\",\"logprobs\":null,\"finish_reason\":null}]",
        };
        buf.put_slice(self.token_open.as_bytes());
        buf.put_slice(word.as_bytes());
        buf.put_slice(close.as_bytes());
        if let Some((prompt, completion)) = usage {
            // Written in place: no allocation per token.
            let _ = write!(
                buf,
                ",\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{}}}",
                prompt + completion
            );
        }
        buf.put_slice(b"}\n\n");
    }

    /// The malformed chunk of the `malformed_rate` fault.
    pub fn malformed() -> Bytes {
        Bytes::from_static(MALFORMED.as_bytes())
    }

    /// Everything after the last token in one write: the finish chunk, the
    /// usage chunk when asked for, and `[DONE]`.
    pub fn end(&self, usage: Option<(u64, u64)>) -> Bytes {
        let finish = match self.endpoint {
            Endpoint::Chat => {
                "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n"
            }
            Endpoint::Completion => {
                "\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n"
            }
        };
        let usage = usage.map(|(prompt, completion)| {
            format!(
                "\"choices\":[],\"usage\":{}}}\n\n",
                usage_json(prompt, completion)
            )
        });
        match &usage {
            Some(u) => concat(&[&self.head, finish, &self.head, u, DONE]),
            None => concat(&[&self.head, finish, DONE]),
        }
    }

    /// The error event that ends a faulty stream.
    pub fn error_event() -> Bytes {
        Bytes::from_static(ERROR_EVENT.as_bytes())
    }
}

/// Concatenates slices into one exactly-sized buffer (one allocation).
fn concat(parts: &[&str]) -> Bytes {
    let mut buf = BytesMut::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        buf.put_slice(part.as_bytes());
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::faults::FaultPlan;
    use serde_json::Value;

    fn job(endpoint: Endpoint) -> Job {
        Job {
            endpoint,
            seq: 3,
            model: "we\"ird".into(),
            prompt_tokens: 4,
            max_tokens: 2,
            stream: true,
            include_usage: true,
            continuous_usage: false,
            faults: FaultPlan::default(),
            created: 1700000000,
        }
    }

    /// The JSON payloads of the `data:` events in `bytes`.
    fn events(bytes: &Bytes) -> Vec<String> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with("\n\n"));
        let events = text.trim_end().split("\n\n");
        events
            .map(|e| e.strip_prefix("data: ").unwrap().to_string())
            .collect()
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn chat_chunks_are_valid_json_with_the_escaped_model() {
        let c = Chunks::new(&job(Endpoint::Chat));
        let role = json(&events(&c.role())[0]);
        assert_eq!(role["model"], "we\"ird");
        assert_eq!(role["id"], "chatcmpl-sim-3");
        assert_eq!(role["object"], "chat.completion.chunk");
        assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
        let token = json(&events(&c.token(" cache"))[0]);
        assert_eq!(token["choices"][0]["delta"]["content"], " cache");
        let end = events(&c.end(Some((4, 2))));
        assert_eq!(end.len(), 3);
        assert_eq!(json(&end[0])["choices"][0]["finish_reason"], "length");
        assert_eq!(json(&end[1])["usage"]["total_tokens"], 6);
        assert_eq!(json(&end[1])["choices"], json("[]"));
        assert_eq!(end[2], "[DONE]");
    }

    #[test]
    fn continuous_usage_rides_on_every_token_chunk() {
        let c = Chunks::new(&job(Endpoint::Chat));
        let mut buf = BytesMut::new();
        c.push_token(&mut buf, " a", Some((4, 1)));
        c.push_token(&mut buf, " b", Some((4, 2)));
        let chunks: Vec<Value> = events(&buf.freeze()).iter().map(|e| json(e)).collect();
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], " b");
        assert_eq!(chunks[1]["usage"]["completion_tokens"], 2);
        assert_eq!(chunks[1]["usage"]["total_tokens"], 6);
        assert_eq!(chunks[0]["usage"]["completion_tokens"], 1);
    }

    #[test]
    fn completion_chunks_carry_text() {
        let c = Chunks::new(&job(Endpoint::Completion));
        let token = json(&events(&c.token(" page"))[0]);
        assert_eq!(token["object"], "text_completion");
        assert_eq!(token["choices"][0]["text"], " page");
        let end = events(&c.end(None));
        assert_eq!(end.len(), 2);
        assert_eq!(json(&end[0])["choices"][0]["finish_reason"], "length");
        assert_eq!(end[1], "[DONE]");
    }
}
