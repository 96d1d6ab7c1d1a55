//! The answers to completion requests, driven by the engine through the
//! request's [`SeqSlot`]: a streaming answer is a state machine pulled by
//! the HTTP body (each poll waits for the engine's next update and yields
//! every token produced since); a non-streaming one waits for the end. No
//! task or channel per request. When the client goes away hyper drops the
//! body, whose [`SlotGuard`] cancels the request in the engine.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};

use super::chunks::Chunks;
use super::engine::slot::{SlotGuard, Status};
use super::faults::StreamCut;
use super::openai::{Endpoint, Job};
use super::state::{Shared, bump};
use super::tokens::{Purpose, SimRng, next_token};

/// The SSE body of a streaming request.
pub(crate) fn sse_body(shared: Arc<Shared>, job: Job, slot: SlotGuard) -> Body {
    let state = SseState {
        chunks: Chunks::new(&job),
        rng: SimRng::for_request(shared.config.seed, job.seq, Purpose::Text),
        shared,
        job,
        slot,
        sent: 0,
        phase: Phase::Admit,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        let item = state.step().await?;
        Some((item, state))
    });
    Body::from_stream(events)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting to be scheduled.
    Admit,
    /// Emitting tokens.
    Tokens,
    /// Nothing more to send.
    Done,
}

struct SseState {
    shared: Arc<Shared>,
    job: Job,
    slot: SlotGuard,
    chunks: Chunks,
    rng: SimRng,
    sent: u32,
    phase: Phase,
}

type Item = Result<Bytes, io::Error>;

impl SseState {
    /// The next bytes to send, an error to cut the connection, or `None` to
    /// end the body.
    async fn step(&mut self) -> Option<Item> {
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Admit => {
                    if let Some(item) = self.admit().await {
                        return item;
                    }
                }
                Phase::Tokens => {
                    if let Some(item) = self.tokens().await {
                        return item;
                    }
                }
            }
        }
    }

    /// Waits until scheduled; the chat stream then announces the role (not
    /// a token). `None` to go on to the tokens.
    async fn admit(&mut self) -> Option<Option<Item>> {
        loop {
            match self.slot.status() {
                Status::Queued if self.slot.generated() == 0 => self.slot.changed().await,
                Status::Aborted => return Some(self.aborted()),
                _ => break,
            }
        }
        self.phase = Phase::Tokens;
        match self.job.endpoint {
            Endpoint::Chat => Some(Some(Ok(self.chunks.role()))),
            Endpoint::Completion => None,
        }
    }

    /// Sends what the engine produced, or the end; `None` to wait again.
    async fn tokens(&mut self) -> Option<Option<Item>> {
        let half = self.job.max_tokens / 2;
        if self.sent == half
            && let Some(cut) = self.job.faults.cut.take()
        {
            return self.cut(cut);
        }
        let generated = self.slot.generated();
        if self.sent < generated {
            let upto = match self.job.faults.cut {
                Some(_) => generated.min(half),
                None => generated,
            };
            return Some(Some(Ok(self.emit(upto))));
        }
        match self.slot.status() {
            Status::Finished => Some(Some(Ok(self.finish()))),
            Status::Aborted => Some(self.aborted()),
            _ => {
                self.slot.changed().await;
                None
            }
        }
    }

    /// Tokens `sent..upto` in one write.
    fn emit(&mut self, upto: u32) -> Bytes {
        let mut buf = BytesMut::with_capacity(256 * (upto - self.sent) as usize);
        let per_chunk_usage = self.job.include_usage && self.job.continuous_usage;
        while self.sent < upto {
            self.sent += 1;
            let usage = per_chunk_usage.then_some((self.job.prompt_tokens, u64::from(self.sent)));
            self.chunks
                .push_token(&mut buf, next_token(&mut self.rng), usage);
        }
        buf.freeze()
    }

    /// Applies the stream's fault at half its tokens (a malformed chunk is
    /// sent once, then the tokens go on).
    fn cut(&mut self, cut: StreamCut) -> Option<Option<Item>> {
        bump(&self.shared.counters.errors_injected, 1);
        if cut != StreamCut::Malformed {
            self.slot.mark_faulted();
        }
        if let Some(m) = self.shared.served(Some(&self.job.model)) {
            m.metrics.fault_stream.inc();
        }
        match cut {
            StreamCut::Malformed => Some(Some(Ok(Chunks::malformed()))),
            StreamCut::Truncate => self.end(None),
            StreamCut::ErrorEvent => {
                self.phase = Phase::Done;
                Some(Some(Ok(Chunks::error_event())))
            }
            StreamCut::Disconnect => self.end(Some(io::Error::other("simulated disconnect"))),
        }
    }

    fn end(&mut self, error: Option<io::Error>) -> Option<Option<Item>> {
        self.phase = Phase::Done;
        Some(error.map(Err))
    }

    /// The engine dropped the request: the server is stopping (end without
    /// `[DONE]`) or crashing (cut the connection).
    fn aborted(&mut self) -> Option<Item> {
        self.phase = Phase::Done;
        self.shared
            .is_crashed()
            .then(|| Err(io::Error::other("simulated crash")))
    }

    /// The closing events after the last token.
    fn finish(&mut self) -> Bytes {
        self.phase = Phase::Done;
        let usage = self.job.include_usage;
        self.chunks
            .end(usage.then_some((self.job.prompt_tokens, u64::from(self.sent))))
    }
}

/// Waits for a non-streaming request to end; returns its text and token
/// count, or `None` when it was aborted.
pub(crate) async fn collect(shared: &Shared, job: &Job, slot: &SlotGuard) -> Option<(String, u32)> {
    loop {
        match slot.status() {
            Status::Finished => break,
            Status::Aborted => return None,
            _ => slot.changed().await,
        }
    }
    let generated = slot.generated();
    let mut rng = SimRng::for_request(shared.config.seed, job.seq, Purpose::Text);
    // Capped: max_tokens comes from the client.
    let mut text = String::with_capacity(generated.min(4096) as usize * 8);
    for _ in 0..generated {
        text.push_str(next_token(&mut rng));
    }
    Some((text, generated))
}
