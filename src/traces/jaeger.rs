//! The HTTP trace backends: Jaeger's query API v3 (`GET /api/v3/traces/{id}`,
//! OTLP JSON), falling back to v1 (`GET /api/traces/{id}`), and Tempo's
//! trace-by-id (`GET /api/traces/{id}`). One look-up answers found (with
//! spans), missing, or unknown.
//!
//! Invariants:
//! - A trace the backend says it does not have (404, or a not-found error
//!   inside the answer) is *missing*; a backend that could not answer
//!   (5xx, 429, timeout, refused connection, unreadable body) is *unknown*
//!   after one retry — never missing, so a struggling backend cannot pass
//!   for lost traces.
//! - Only Jaeger's by-id endpoints are used, never v1 search (removed
//!   upstream). Which API version a Jaeger serves is probed once.
//! - Answers are read up to [`MAX_BODY_BYTES`]; nothing else is kept.

use std::time::Duration;

use bytes::BytesMut;
use reqwest::StatusCode;

use super::parse::{self, Parsed};
use crate::otlp::ReceivedSpan;
use crate::trace_id::trace_id_hex;

/// Answers larger than this are refused (a look-up for one trace).
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// Retries of a look-up that got no usable answer.
const RETRIES: u32 = 1;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What one look-up found.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// The trace exists; its spans (possibly including ones with other
    /// trace ids, which the analysis ignores).
    Found(Vec<ReceivedSpan>),
    /// The backend answered that it has no such trace.
    Missing,
    /// The backend could not answer.
    Unknown(LookupError),
}

/// Why a look-up has no answer: a closed set, counted per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LookupError {
    Timeout,
    Connect,
    /// An HTTP status other than 200 and 404.
    Status(u16),
    /// A 200 whose body could not be read.
    Decode,
}

impl LookupError {
    /// e.g. `timeout`, `http_503`.
    pub fn name(self) -> String {
        match self {
            LookupError::Timeout => "timeout".into(),
            LookupError::Connect => "connect".into(),
            LookupError::Status(code) => format!("http_{code}"),
            LookupError::Decode => "decode".into(),
        }
    }

    fn retryable(self) -> bool {
        match self {
            LookupError::Status(code) => code == 429 || code >= 500,
            LookupError::Decode => false,
            LookupError::Timeout | LookupError::Connect => true,
        }
    }
}

/// Which API a backend speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    JaegerV3,
    JaegerV1,
    Tempo,
}

impl Api {
    pub fn describe(self) -> &'static str {
        match self {
            Api::JaegerV3 => "Jaeger API v3",
            Api::JaegerV1 => "Jaeger API v1",
            Api::Tempo => "Tempo",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("invalid trace backend URL `{url}`: {message}")]
    Url { url: String, message: String },
    #[error("cannot build the trace backend's HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// A Jaeger query service or a Tempo, by base URL.
#[derive(Clone, Debug)]
pub struct HttpBackend {
    client: reqwest::Client,
    base: String,
    api: Api,
}

impl HttpBackend {
    /// `api` is where to start: a Jaeger is [`Api::JaegerV3`] until
    /// [`HttpBackend::probe`] finds only v1. `timeout` bounds each look-up.
    pub fn new(base_url: &str, api: Api, timeout: Duration) -> Result<HttpBackend, BackendError> {
        Self::with_access(base_url, api, timeout, &crate::tls::Access::default())
    }

    /// [`HttpBackend::new`] with a credential and TLS settings.
    pub fn with_access(
        base_url: &str,
        api: Api,
        timeout: Duration,
        access: &crate::tls::Access,
    ) -> Result<HttpBackend, BackendError> {
        let url = url::Url::parse(base_url).map_err(|e| BackendError::Url {
            url: base_url.to_owned(),
            message: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BackendError::Url {
                url: base_url.to_owned(),
                message: "expected http:// or https://".into(),
            });
        }
        let client = access
            .builder()
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(HttpBackend {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            api,
        })
    }

    pub fn api(&self) -> Api {
        self.api
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// For a Jaeger: keeps v3 when `GET /api/v3/services` answers 200,
    /// switches to v1 when only `GET /api/services` does. Leaves the API
    /// as it is and returns false when neither answers (look-ups may then
    /// count as unknown).
    pub async fn probe(&mut self) -> bool {
        if self.api == Api::Tempo {
            return true;
        }
        if self.answers_ok("/api/v3/services").await {
            self.api = Api::JaegerV3;
        } else if self.answers_ok("/api/services").await {
            self.api = Api::JaegerV1;
        } else {
            return false;
        }
        true
    }

    async fn answers_ok(&self, path: &str) -> bool {
        let response = self.client.get(format!("{}{path}", self.base)).send().await;
        response.is_ok_and(|r| r.status() == StatusCode::OK)
    }

    /// Looks one trace up, retrying once when the backend did not answer.
    pub async fn lookup(&self, trace_id: u128) -> Lookup {
        let mut attempt = 0;
        loop {
            match self.lookup_once(trace_id).await {
                Lookup::Unknown(error) if error.retryable() && attempt < RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                other => return other,
            }
        }
    }

    async fn lookup_once(&self, trace_id: u128) -> Lookup {
        match self.api {
            Api::JaegerV3 => match self.get(Api::JaegerV3, trace_id).await {
                // A 404 that is not v3's own not-found answer is a Jaeger
                // without the v3 API: ask v1.
                Answer::NotFound { json: false } => {
                    self.get(Api::JaegerV1, trace_id).await.into_lookup()
                }
                answer => answer.into_lookup(),
            },
            api => self.get(api, trace_id).await.into_lookup(),
        }
    }

    async fn get(&self, api: Api, trace_id: u128) -> Answer {
        let path = match api {
            Api::JaegerV3 => "/api/v3/traces/",
            Api::JaegerV1 | Api::Tempo => "/api/traces/",
        };
        let url = format!("{}{path}{}", self.base, trace_id_hex(trace_id));
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Answer::Failed(transport_error(&e)),
        };
        let status = response.status();
        let body = match read_body(&mut response).await {
            Ok(body) => body,
            Err(error) => return Answer::Failed(error),
        };
        match status {
            StatusCode::OK => Answer::from_body(api, &body),
            StatusCode::NOT_FOUND => Answer::NotFound {
                json: serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            },
            other => Answer::Failed(LookupError::Status(other.as_u16())),
        }
    }
}

/// One HTTP answer, before the v3 → v1 fallback decision.
enum Answer {
    Spans(Parsed),
    NotFound { json: bool },
    Failed(LookupError),
}

impl Answer {
    fn from_body(api: Api, body: &[u8]) -> Answer {
        let parsed = match api {
            Api::JaegerV1 => parse::jaeger_v1(body),
            Api::JaegerV3 | Api::Tempo => parse::otlp_json(body),
        };
        match parsed {
            Ok(parsed) => Answer::Spans(parsed),
            Err(_) => Answer::Failed(LookupError::Decode),
        }
    }

    fn into_lookup(self) -> Lookup {
        match self {
            Answer::Spans(parsed) if parsed.spans.is_empty() => Lookup::Missing,
            Answer::Spans(parsed) => Lookup::Found(parsed.spans),
            Answer::NotFound { .. } => Lookup::Missing,
            Answer::Failed(error) => Lookup::Unknown(error),
        }
    }
}

fn transport_error(error: &reqwest::Error) -> LookupError {
    if error.is_timeout() {
        LookupError::Timeout
    } else {
        LookupError::Connect
    }
}

async fn read_body(response: &mut reqwest::Response) -> Result<BytesMut, LookupError> {
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_BODY_BYTES => {
                return Err(LookupError::Decode);
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(e) => return Err(transport_error(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_and_retry_rules() {
        let cases = [
            (LookupError::Timeout, "timeout", true),
            (LookupError::Connect, "connect", true),
            (LookupError::Status(503), "http_503", true),
            (LookupError::Status(429), "http_429", true),
            (LookupError::Status(400), "http_400", false),
            (LookupError::Decode, "decode", false),
        ];
        for (error, name, retry) in cases {
            assert_eq!((error.name(), error.retryable()), (name.to_owned(), retry));
        }
    }

    #[test]
    fn empty_answers_are_missing() {
        let empty = Answer::Spans(Parsed::default());
        assert_eq!(empty.into_lookup(), Lookup::Missing);
        let not_found = Answer::NotFound { json: true };
        assert_eq!(not_found.into_lookup(), Lookup::Missing);
    }

    #[test]
    fn urls_must_be_http() {
        let timeout = Duration::from_secs(1);
        assert!(HttpBackend::new("ftp://x", Api::JaegerV3, timeout).is_err());
        assert!(HttpBackend::new("not a url", Api::Tempo, timeout).is_err());
        let ok = HttpBackend::new("http://127.0.0.1:16686/", Api::JaegerV3, timeout).unwrap();
        assert_eq!(ok.base_url(), "http://127.0.0.1:16686");
    }
}
