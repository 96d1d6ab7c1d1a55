//! Incremental Server-Sent Events parsing and the reading of OpenAI
//! streaming chunks. Bytes arrive in arbitrary network pieces; events are
//! emitted as soon as their terminating blank line is seen, so token
//! timestamps are taken when the client first could see the token.

use std::borrow::Cow;

use serde::Deserialize;

/// One complete SSE event.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, empty for the default "message" type.
    pub name: &'a [u8],
    /// `data:` lines joined by '\n'.
    pub data: &'a [u8],
}

/// The most one buffered line or event may hold unless the parser is given
/// a smaller limit ([`Parser::set_limit`]).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Stateful SSE parser; reuses its buffers across events and requests.
/// Its buffers are bounded: a line or an event's data past the limit
/// stops the parser ([`Parser::overflowed`]) instead of growing memory.
#[derive(Default)]
pub struct Parser {
    pending: Vec<u8>,
    data: Vec<u8>,
    name: Vec<u8>,
    has_data: bool,
    /// 0 means [`MAX_EVENT_BYTES`].
    limit: usize,
    overflowed: bool,
}

impl Parser {
    pub fn reset(&mut self) {
        self.pending.clear();
        self.data.clear();
        self.name.clear();
        self.has_data = false;
        self.overflowed = false;
    }

    /// Caps one buffered line and one event's data at `bytes` (at most
    /// [`MAX_EVENT_BYTES`]; 0 restores that default).
    pub fn set_limit(&mut self, bytes: usize) {
        self.limit = bytes.min(MAX_EVENT_BYTES);
    }

    fn limit(&self) -> usize {
        if self.limit == 0 {
            MAX_EVENT_BYTES
        } else {
            self.limit
        }
    }

    /// True once a line or an event passed the limit; the parser then
    /// ignores input until [`Parser::reset`].
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Feeds a network chunk, calling `on_event` for each completed event.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(Event<'_>)) {
        if self.overflowed {
            return;
        }
        // Taken out of `self` so lines can borrow it while `line` mutates
        // the event state; put back afterwards to keep its capacity.
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(pos) = memchr_newline(&pending[start..]) {
            let line_end = start + pos;
            let line = &pending[start..line_end];
            self.line(line.strip_suffix(b"\r").unwrap_or(line), &mut on_event);
            start = line_end + 1;
            if self.overflowed {
                break;
            }
        }
        pending.drain(..start);
        if pending.len() > self.limit() {
            self.overflowed = true; // one line with no newline in sight
        }
        if self.overflowed {
            pending.clear();
            self.data.clear();
            self.has_data = false;
        }
        self.pending = pending;
    }

    /// True when bytes of an unfinished event are buffered.
    pub fn has_partial(&self) -> bool {
        !self.pending.is_empty() || self.has_data
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(Event<'_>)) {
        if line.is_empty() {
            if self.has_data {
                on_event(Event {
                    name: &self.name,
                    data: &self.data,
                });
            }
            self.data.clear();
            self.name.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return; // a comment (keep-alive)
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => (&line[..i], strip_space(&line[i + 1..])),
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limit() {
                    self.overflowed = true; // one event of many data lines
                    return;
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.name.clear();
                self.name.extend_from_slice(value);
            }
            _ => {} // id, retry: not needed for timing
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

fn strip_space(value: &[u8]) -> &[u8] {
    value.strip_prefix(b" ").unwrap_or(value)
}

/// What one OpenAI streaming chunk tells the timer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Carries non-empty content or reasoning text: a token arrived.
    pub has_token: bool,
    pub usage_completion_tokens: Option<u32>,
    pub usage_prompt_tokens: Option<u32>,
    /// Has a non-empty `choices` array (usage on such a chunk is per chunk:
    /// `continuous_usage_stats`).
    pub has_choices: bool,
    /// An `error` object instead of a completion chunk.
    pub is_error: bool,
    /// Names a `model` other than the one asked for.
    pub other_model: bool,
}

/// The classification of one event's data.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    Done,
    Data(ChunkInfo),
    /// Not JSON, or JSON of an unexpected shape.
    Malformed,
}

#[derive(Deserialize)]
struct WireChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<WireChoice<'a>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    usage: Option<WireUsage>,
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(borrow)]
    delta: Option<WireDelta<'a>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireUsage {
    completion_tokens: Option<u32>,
    prompt_tokens: Option<u32>,
}

/// Reads an event of an OpenAI chat or completions stream; `asked` is the
/// model the request named (`None`: not checked).
pub fn classify(event: &Event<'_>, asked: Option<&str>) -> Chunk {
    if event.name == b"error" {
        return Chunk::Data(ChunkInfo {
            is_error: true,
            ..ChunkInfo::default()
        });
    }
    let data = event.data.trim_ascii();
    if data == b"[DONE]" {
        return Chunk::Done;
    }
    let Ok(wire) = serde_json::from_slice::<WireChunk<'_>>(data) else {
        return Chunk::Malformed;
    };
    let non_empty = |s: &Option<Cow<'_, str>>| s.as_deref().is_some_and(|s| !s.is_empty());
    let has_token = wire.choices.iter().any(|c| {
        non_empty(&c.text)
            || c.delta.as_ref().is_some_and(|d| {
                non_empty(&d.content) || non_empty(&d.reasoning_content) || non_empty(&d.reasoning)
            })
    });
    Chunk::Data(ChunkInfo {
        has_token,
        usage_completion_tokens: wire.usage.as_ref().and_then(|u| u.completion_tokens),
        usage_prompt_tokens: wire.usage.as_ref().and_then(|u| u.prompt_tokens),
        has_choices: !wire.choices.is_empty(),
        is_error: wire.error.is_some(),
        other_model: differs(wire.model.as_deref(), asked),
    })
}

/// Whether a response naming `answered` is for another model than
/// `asked` (both known).
pub fn differs(answered: Option<&str>, asked: Option<&str>) -> bool {
    matches!((answered, asked), (Some(a), Some(b)) if a != b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_unchecked(event: &Event<'_>) -> Chunk {
        classify(event, None)
    }

    #[test]
    fn a_chunk_naming_another_model_is_flagged() {
        let event = |data: &'static [u8]| Event { name: b"", data };
        let chunk = br#"{"model":"b","choices":[{"delta":{"content":"x"}}]}"#;
        let other = |asked| match classify(&event(chunk), asked) {
            Chunk::Data(info) => info.other_model,
            other => panic!("{other:?}"),
        };
        assert!(other(Some("a")));
        assert!(!other(Some("b")));
        assert!(!other(None), "not checked without a model asked for");
        let unnamed = classify(&event(br#"{"choices":[]}"#), Some("a"));
        assert!(matches!(
            unnamed,
            Chunk::Data(ChunkInfo {
                other_model: false,
                ..
            })
        ));
    }

    fn events(pieces: &[&[u8]]) -> Vec<(String, String)> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for piece in pieces {
            parser.feed(piece, |e| {
                out.push((
                    String::from_utf8_lossy(e.name).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                ))
            });
        }
        out
    }

    #[test]
    fn events_split_across_arbitrary_chunks() {
        let stream = b"data: {\"a\":1}\n\ndata: [DONE]\n\n";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            let got = events(&[a, b]);
            assert_eq!(
                got,
                vec![
                    ("".into(), "{\"a\":1}".into()),
                    ("".into(), "[DONE]".into())
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn crlf_comments_multiline_data_and_event_names() {
        let got = events(&[b": keep-alive\r\n\r\nevent: error\r\ndata: a\r\ndata: b\r\n\r\n"]);
        assert_eq!(got, vec![("error".into(), "a\nb".into())]);
    }

    #[test]
    fn a_line_or_an_event_past_the_limit_overflows_and_stops() {
        let mut parser = Parser::default();
        parser.set_limit(16);
        let mut seen = 0;
        parser.feed(b"data: short\n\n", |_| seen += 1);
        assert_eq!((seen, parser.overflowed()), (1, false));
        parser.feed(&[b'x'; 17], |_| seen += 1);
        assert!(parser.overflowed(), "17 bytes with no newline");
        parser.feed(b"\n\ndata: ok\n\n", |_| seen += 1);
        assert_eq!(seen, 1, "nothing after an overflow until reset");
        parser.reset();
        assert!(!parser.overflowed());
        for _ in 0..3 {
            parser.feed(b"data: 0123456\n", |_| seen += 1);
        }
        assert!(parser.overflowed(), "three 7-byte data lines in one event");
        assert!(!parser.has_partial());
        assert_eq!(seen, 1);
    }

    #[test]
    fn an_unterminated_event_is_reported_as_partial() {
        let mut parser = Parser::default();
        parser.feed(b"data: {\"choices\":[]}", |_| {
            panic!("no complete event yet")
        });
        assert!(parser.has_partial());
    }

    fn classify_data(data: &str) -> Chunk {
        classify_unchecked(&Event {
            name: b"",
            data: data.as_bytes(),
        })
    }

    #[test]
    fn role_only_and_empty_chunks_are_not_tokens() {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        let no_token = Chunk::Data(ChunkInfo {
            has_choices: true,
            ..ChunkInfo::default()
        });
        assert_eq!(classify_data(role), no_token);
        let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#;
        assert_eq!(classify_data(finish), no_token);
    }

    #[test]
    fn content_reasoning_and_completion_text_are_tokens() {
        for data in [
            r#"{"choices":[{"delta":{"content":" hi"}}]}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#,
            r#"{"choices":[{"delta":{"reasoning":"think"}}]}"#,
            r#"{"choices":[{"text":" hi","index":0}]}"#,
            r#"{"choices":[{"delta":{"content":"\u00e9"}}]}"#,
        ] {
            assert!(
                matches!(
                    classify_data(data),
                    Chunk::Data(ChunkInfo {
                        has_token: true,
                        ..
                    })
                ),
                "{data}"
            );
        }
    }

    #[test]
    fn usage_done_errors_and_garbage() {
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":32,"total_tokens":37}}"#;
        assert_eq!(
            classify_data(usage),
            Chunk::Data(ChunkInfo {
                usage_completion_tokens: Some(32),
                usage_prompt_tokens: Some(5),
                ..Default::default()
            })
        );
        assert_eq!(classify_data("[DONE]"), Chunk::Done);
        let err = r#"{"error":{"message":"boom","type":"server_error"}}"#;
        assert!(matches!(
            classify_data(err),
            Chunk::Data(ChunkInfo { is_error: true, .. })
        ));
        assert_eq!(classify_data("{not json"), Chunk::Malformed);
        assert!(matches!(
            classify_unchecked(&Event {
                name: b"error",
                data: b"x"
            }),
            Chunk::Data(ChunkInfo { is_error: true, .. })
        ));
    }
}
