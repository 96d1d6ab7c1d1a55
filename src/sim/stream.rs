//! The streaming answer as a state machine pulled by the HTTP body: each
//! poll waits for the next event's deadline and yields its bytes. No task or
//! channel per stream; when the client goes away hyper drops the body, which
//! drops the [`Decode`] and so stops decoding and frees the slot.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;

use super::chunks::Chunks;
use super::decode::Decode;
use super::faults::StreamCut;
use super::openai::{Endpoint, Job};
use super::state::{Shared, bump};

/// The SSE body of a streaming request.
pub(crate) fn sse_body(shared: Arc<Shared>, job: Job) -> Body {
    let state = SseState {
        chunks: Chunks::new(&job),
        shared,
        job,
        phase: Phase::Admit,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        let bytes = state.step().await?;
        Some((Ok::<Bytes, Infallible>(bytes), state))
    });
    Body::from_stream(events)
}

enum Phase {
    /// Waiting for a decoding slot.
    Admit,
    /// Emitting tokens.
    Tokens(Decode),
    /// Nothing more to send.
    Done,
}

struct SseState {
    shared: Arc<Shared>,
    job: Job,
    chunks: Chunks,
    phase: Phase,
}

impl SseState {
    /// The next bytes to send, or `None` to end the body.
    async fn step(&mut self) -> Option<Bytes> {
        match self.phase {
            Phase::Admit => self.admit().await,
            Phase::Tokens(_) => self.token().await,
            Phase::Done => None,
        }
    }

    /// Waits for admission; the chat stream then announces the role at once
    /// (not a token), while a text completion goes straight to its first
    /// token.
    async fn admit(&mut self) -> Option<Bytes> {
        let Some(decode) = Decode::admit(self.shared.clone(), &self.job).await else {
            self.phase = Phase::Done;
            return None;
        };
        self.phase = Phase::Tokens(decode);
        match self.job.endpoint {
            Endpoint::Chat => Some(self.chunks.role()),
            Endpoint::Completion => self.token().await,
        }
    }

    async fn token(&mut self) -> Option<Bytes> {
        let Phase::Tokens(decode) = &mut self.phase else {
            return None;
        };
        let emitted = decode.emitted();
        if let Some(cut) = self.job.faults.cut
            && emitted == self.job.max_tokens / 2
        {
            return self.cut(cut);
        }
        if emitted == self.job.max_tokens {
            return Some(self.finish());
        }
        match decode.next_token().await {
            Some(word) => Some(self.chunks.token(word)),
            None => {
                // The server is stopping: end without [DONE].
                self.phase = Phase::Done;
                None
            }
        }
    }

    /// Ends a faulty stream after half its tokens.
    fn cut(&mut self, cut: StreamCut) -> Option<Bytes> {
        self.phase = Phase::Done;
        bump(&self.shared.counters.errors_injected, 1);
        match cut {
            StreamCut::Truncate => None,
            StreamCut::ErrorEvent => Some(Chunks::error_event()),
        }
    }

    /// Frees the slot, counts the success and sends the closing events.
    fn finish(&mut self) -> Bytes {
        self.phase = Phase::Done;
        bump(&self.shared.counters.completed, 1);
        let usage = self.job.include_usage;
        let tokens = u64::from(self.job.max_tokens);
        self.chunks
            .end(usage.then_some((self.job.prompt_tokens, tokens)))
    }
}
