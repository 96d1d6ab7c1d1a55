//! Integration tests: sim. Each test starts its own simulator on
//! 127.0.0.1:0, talks to it over real HTTP with reqwest, and is bounded by a
//! timeout. Synchronisation waits on conditions (a chunk arriving, a gauge
//! reaching a value), never on fixed sleeps; timing assertions use lower
//! bounds that the model guarantees and generous upper bounds.

use std::future::Future;
use std::time::Duration;

use infercheck::sim::{Faults, ModelSpec, SimConfig, SimServer, SimStats, Stall};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Every test finishes well within this, or fails instead of hanging.
const BOUND: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("test timed out")
}

/// A fast model so functional tests take milliseconds.
fn fast() -> SimConfig {
    SimConfig {
        ttft: Duration::from_millis(5),
        per_token: Duration::from_millis(1),
        slowdown_per_running: 0.0,
        ..SimConfig::default()
    }
}

/// A running simulator and one client for it (a reqwest client is costly
/// to build: it must not be inside a timed section).
struct Sim {
    server: SimServer,
    client: reqwest::Client,
}

async fn start(config: SimConfig) -> Sim {
    let listen = "127.0.0.1:0".parse().unwrap();
    let server = SimServer::start(listen, config)
        .await
        .expect("start simulator");
    Sim {
        server,
        client: infercheck::tls::client(),
    }
}

impl Sim {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    fn stats(&self) -> SimStats {
        self.server.stats()
    }

    async fn send(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .expect("send request")
    }

    /// Sends a non-streaming request; returns the status and parsed body.
    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self.send(path, body).await;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("read body");
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("read body"))
    }

    /// Waits (bounded by the test's timeout) until `ok` holds for the stats.
    async fn until_stats(&self, ok: impl Fn(&SimStats) -> bool) {
        while !ok(&self.stats()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// infercheck's own exposition parser (the direct-scrape sampler's) reads
/// every family the simulator serves.
#[tokio::test]
async fn the_scrape_parser_reads_what_the_simulator_serves() {
    bounded(async {
        let sim = start(fast()).await;
        let (status, _) = sim
            .post_json("/v1/chat/completions", &chat_body(4, false, false))
            .await;
        assert_eq!(status, 200);
        let (status, text) = sim.get_text("/metrics").await;
        assert_eq!(status, 200);
        let e = infercheck::sample::exposition::parse(&text)
            .expect("the simulator's exposition parses");
        assert!(e.has("vllm:num_requests_running"));
        assert!(e.named("vllm:time_to_first_token_seconds_bucket").count() > 10);
        sim.stop().await;
    })
    .await;
}

fn chat_body(max_tokens: u32, stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": "sim-llama-8b",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "count these five words"},
        ],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "stream": stream,
        "some_unknown_field": [1, 2, 3],
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn completion_body(max_tokens: u32, stream: bool) -> Value {
    json!({"model": "sim-llama-8b", "prompt": "one two three", "max_tokens": max_tokens, "stream": stream})
}

/// One SSE event and when the client had all of it.
struct Event {
    at: Instant,
    data: String,
}

/// Reads a whole SSE body, splitting it into `data:` events as they arrive.
async fn read_events(mut response: reqwest::Response) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buf = String::new();
    while let Some(chunk) = response.chunk().await.expect("read chunk") {
        buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event
                .trim_end()
                .strip_prefix("data: ")
                .expect("data: event");
            let at = Instant::now();
            events.push(Event {
                at,
                data: data.to_string(),
            });
        }
    }
    assert!(buf.is_empty(), "body ended mid-event: {buf:?}");
    events
}

fn parse(event: &Event) -> Value {
    serde_json::from_str(&event.data).expect("event JSON")
}

/// Whether an event carries a token (content or text).
fn is_token(event: &Event) -> bool {
    event.data != "[DONE]" && token_text(&parse(event)).is_some()
}

/// Content of a chat chunk's delta, or text of a completion chunk.
fn token_text(chunk: &Value) -> Option<&str> {
    let choice = &chunk["choices"][0];
    let text = choice["delta"]["content"]
        .as_str()
        .or(choice["text"].as_str())?;
    (!text.is_empty()).then_some(text)
}

#[tokio::test]
async fn non_streaming_chat_has_openai_shape_and_usage() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(fast()).await;
        let (status, body) = server
            .post_json("/v1/chat/completions", &chat_body(7, false, false))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(
            body["model"], "sim-llama-8b",
            "the request's model is echoed"
        );
        assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let choice = &body["choices"][0];
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(choice["finish_reason"], "length");
        let content = choice["message"]["content"].as_str().unwrap();
        assert_eq!(content.split_whitespace().count(), 7);
        let usage = json!({"prompt_tokens": 7, "completion_tokens": 7, "total_tokens": 14});
        assert_eq!(body["usage"], usage);
        let stats = server.stats();
        assert_eq!(
            (stats.requests, stats.completed, stats.output_tokens),
            (1, 1, 7)
        );
        assert_eq!(
            (stats.prompt_tokens, stats.running, stats.waiting),
            (7, 0, 0)
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn non_streaming_completion_has_text_and_default_max_tokens() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let config = SimConfig {
            default_max_tokens: 5,
            ..fast()
        };
        let server = start(config).await;
        let (status, body) = server
            .post_json("/v1/completions", &completion_body(3, false))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["object"], "text_completion");
        assert_eq!(body["model"], "sim-llama-8b");
        let text = body["choices"][0]["text"].as_str().unwrap();
        assert_eq!(text.split_whitespace().count(), 3);
        assert_eq!(body["choices"][0]["finish_reason"], "length");
        assert_eq!(body["usage"]["prompt_tokens"], 3);
        assert_eq!(body["usage"]["completion_tokens"], 3);
        assert_eq!(body["usage"]["total_tokens"], 6);
        // Without max_tokens the configured default applies.
        let (_, body) = server
            .post_json("/v1/completions", &json!({"prompt": "x"}))
            .await;
        assert_eq!(body["usage"]["completion_tokens"], 5);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn streaming_chat_sends_role_tokens_finish_usage_done() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(fast()).await;
        let response = server
            .send("/v1/chat/completions", &chat_body(6, true, true))
            .await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let events = read_events(response).await;
        assert_eq!(events.last().unwrap().data, "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1].iter().map(parse).collect();
        // Role-only first chunk: not a token.
        assert_eq!(chunks[0]["object"], "chat.completion.chunk");
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(token_text(&chunks[0]), None);
        let tokens: Vec<&Value> = chunks.iter().filter(|c| token_text(c).is_some()).collect();
        assert_eq!(tokens.len(), 6);
        assert!(chunks[1..7].iter().all(|c| token_text(c).is_some()));
        assert_eq!(chunks[7]["choices"][0]["finish_reason"], "length");
        assert_eq!(chunks[7]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[8]["choices"], json!([]));
        assert_eq!(chunks[8]["usage"]["completion_tokens"], 6);
        assert_eq!(chunks[8]["usage"]["prompt_tokens"], 7);
        assert_eq!(chunks.len(), 9);
        assert!(chunks.iter().all(|c| c["model"] == "sim-llama-8b"));
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn streaming_without_include_usage_has_no_usage_chunk() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(fast()).await;
        let response = server
            .send("/v1/chat/completions", &chat_body(3, true, false))
            .await;
        let events = read_events(response).await;
        // role, 3 tokens, finish, [DONE]
        assert_eq!(events.len(), 6);
        assert_eq!(events[5].data, "[DONE]");
        assert!(events[..5].iter().all(|e| parse(e).get("usage").is_none()));
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn streaming_completion_sends_text_chunks() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(fast()).await;
        let response = server
            .send("/v1/completions", &completion_body(4, true))
            .await;
        let events = read_events(response).await;
        assert_eq!(events.last().unwrap().data, "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1].iter().map(parse).collect();
        assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
        assert_eq!(chunks.iter().filter(|c| token_text(c).is_some()).count(), 4);
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "length"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_json_is_a_400_with_an_openai_error() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(fast()).await;
        let url = server.url("/v1/chat/completions");
        let response = server.client.post(url).body("{oops").send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["message"].as_str().unwrap().len() > 3);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn health_and_models() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(SimConfig {
            models: vec![ModelSpec::new("served", 1.0)],
            ..fast()
        })
        .await;
        let (status, health) = server.get_text("/health").await;
        assert_eq!(
            (status, serde_json::from_str::<Value>(&health).unwrap()),
            (200, json!({"status": "ok"}))
        );
        let (status, models) = server.get_text("/v1/models").await;
        let models: Value = serde_json::from_str(&models).unwrap();
        assert_eq!(status, 200);
        assert_eq!(models["object"], "list");
        assert_eq!(models["data"][0]["id"], "served");
        server.stop().await;
    })
    .await;
}

/// ttft 50 ms + 19 gaps of 5 ms = 145 ms for 20 tokens, without drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_duration_follows_the_model() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let config = SimConfig {
            ttft: Duration::from_millis(50),
            per_token: Duration::from_millis(5),
            slowdown_per_running: 0.0,
            ..SimConfig::default()
        };
        let server = start(config).await;
        let body = chat_body(20, false, false);
        let mut durations = Vec::new();
        for _ in 0..3 {
            let sent = Instant::now();
            let (status, _) = server.post_json("/v1/chat/completions", &body).await;
            assert_eq!(status, 200);
            durations.push(sent.elapsed());
        }
        // The model guarantees the lower bound for every request; the upper
        // bound allows a loaded 2-core machine to delay one of them.
        assert!(
            durations.iter().all(|d| *d >= Duration::from_millis(145)),
            "{durations:?}"
        );
        let best = durations.iter().min().unwrap();
        assert!(*best <= Duration::from_millis(160), "{durations:?}");
        server.stop().await;
    })
    .await;
}

/// Streams with 1 ms gaps: the last token must not drift from its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_tokens_follow_absolute_deadlines() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let config = SimConfig {
            ttft: Duration::from_millis(20),
            per_token: Duration::from_millis(2),
            slowdown_per_running: 0.0,
            ..SimConfig::default()
        };
        let server = start(config).await;
        let sent = Instant::now();
        let response = server
            .send("/v1/chat/completions", &chat_body(100, true, false))
            .await;
        let events = read_events(response).await;
        let first = events
            .iter()
            .find(|e| token_text(&parse(e)).is_some())
            .unwrap();
        assert!(first.at - sent >= Duration::from_millis(20));
        // 20 + 99 * 2 = 218 ms; relative sleeps would add ~1 ms per token.
        let total = events.last().unwrap().at - sent;
        assert!(total >= Duration::from_millis(218), "{total:?}");
        assert!(total < Duration::from_millis(270), "{total:?}");
        server.stop().await;
    })
    .await;
}

/// Texts of `n` sequential non-streaming requests to a fresh server.
async fn texts(seed: u64, n: usize) -> Vec<String> {
    let server = start(SimConfig { seed, ..fast() }).await;
    let mut out = Vec::new();
    for i in 0..n {
        let (_, body) = server
            .post_json("/v1/completions", &completion_body(10 + i as u32, false))
            .await;
        out.push(body["choices"][0]["text"].as_str().unwrap().to_string());
    }
    server.stop().await;
    out
}

#[tokio::test]
async fn same_seed_same_text_different_seed_different_text() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let a = texts(7, 3).await;
        assert_eq!(a, texts(7, 3).await);
        assert_ne!(a, texts(8, 3).await);
        // Within one run, successive requests differ too.
        assert_ne!(a[0], a[1][..a[0].len()]);
    })
    .await;
}

#[tokio::test]
async fn streamed_and_unstreamed_text_agree_for_the_same_sequence() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let unstreamed = texts(11, 1).await;
        let server = start(SimConfig { seed: 11, ..fast() }).await;
        let response = server
            .send("/v1/completions", &completion_body(10, true))
            .await;
        let events = read_events(response).await;
        let streamed: String = events[..events.len() - 1]
            .iter()
            .filter_map(|e| token_text(&parse(e)).map(str::to_string))
            .collect();
        assert_eq!(streamed, unstreamed[0]);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn metrics_expose_vllm_families_with_model_label() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(SimConfig {
            models: vec![ModelSpec::new("m-x", 1.0)],
            ..fast()
        })
        .await;
        let mut body = chat_body(4, false, false);
        body["model"] = json!("m-x");
        for _ in 0..3 {
            server.post_json("/v1/chat/completions", &body).await;
        }
        let response = server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap();
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        for family in [
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:request_success_total",
            "vllm:generation_tokens_total",
            "vllm:prompt_tokens_total",
        ] {
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family}\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family}\n{text}"
            );
        }
        for sample in [
            "vllm:num_requests_running{engine=\"0\",model_name=\"m-x\"} 0",
            "vllm:num_requests_waiting{engine=\"0\",model_name=\"m-x\"} 0",
            "vllm:request_success_total{engine=\"0\",finished_reason=\"length\",model_name=\"m-x\"} 3",
            "vllm:generation_tokens_total{engine=\"0\",model_name=\"m-x\"} 12",
            "vllm:prompt_tokens_total{engine=\"0\",model_name=\"m-x\"} 21",
        ] {
            assert!(text.contains(sample), "{sample}\n{text}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn error_rate_one_answers_the_configured_status() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let faults = Faults {
            error_rate: 1.0,
            error_status: 503,
            ..Faults::default()
        };
        let server = start(SimConfig { faults, ..fast() }).await;
        for path in ["/v1/chat/completions", "/v1/completions"] {
            let body = if path.contains("chat") {
                chat_body(5, true, true)
            } else {
                completion_body(5, false)
            };
            let (status, body) = server.post_json(path, &body).await;
            assert_eq!(status, 503);
            assert_eq!(body["error"]["type"], "server_error");
        }
        let stats = server.stats();
        assert_eq!(
            (stats.errors_injected, stats.output_tokens, stats.completed),
            (2, 0, 0)
        );
        // error_status 0 means 500.
        let faults = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        let server = start(SimConfig { faults, ..fast() }).await;
        let (status, _) = server
            .post_json("/v1/completions", &completion_body(5, false))
            .await;
        assert_eq!(status, 500);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn truncate_rate_one_ends_without_done() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let faults = Faults {
            truncate_rate: 1.0,
            ..Faults::default()
        };
        let server = start(SimConfig { faults, ..fast() }).await;
        let response = server
            .send("/v1/chat/completions", &chat_body(10, true, true))
            .await;
        assert_eq!(response.status(), 200);
        let events = read_events(response).await;
        assert!(events.iter().all(|e| e.data != "[DONE]"));
        let tokens = events.iter().filter(|e| is_token(e)).count();
        assert_eq!(tokens, 5, "half the tokens");
        assert!(events.iter().all(|e| parse(e).get("usage").is_none()));
        let stats = server.stats();
        assert_eq!((stats.errors_injected, stats.completed), (1, 0));
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn error_event_rate_one_sends_the_error_event() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let faults = Faults {
            error_event_rate: 1.0,
            ..Faults::default()
        };
        let server = start(SimConfig { faults, ..fast() }).await;
        let response = server
            .send("/v1/completions", &completion_body(8, true))
            .await;
        let events = read_events(response).await;
        let last = parse(events.last().unwrap());
        let want = json!({"error": {"message": "simulated", "type": "server_error"}});
        assert_eq!(last, want);
        let tokens = events.iter().filter(|e| is_token(e)).count();
        assert_eq!(tokens, 4);
        assert!(events.iter().all(|e| e.data != "[DONE]"));
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn stall_at_start_delays_the_end_by_its_length() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let stall = Stall {
            after: Duration::ZERO,
            length: Duration::from_millis(300),
        };
        let faults = Faults {
            stall: Some(stall),
            ..Faults::default()
        };
        let before_start = Instant::now();
        let server = start(SimConfig { faults, ..fast() }).await;
        let (status, _) = server
            .post_json("/v1/chat/completions", &chat_body(5, false, false))
            .await;
        assert_eq!(status, 200);
        // 300 ms stall, then 5 ms + 4 * 1 ms of decoding.
        let took = before_start.elapsed();
        assert!(took >= Duration::from_millis(309), "{took:?}");
        // Metrics stay readable after (and during) a stall.
        assert_eq!(server.get_text("/metrics").await.0, 200);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn stall_mid_stream_holds_tokens_then_resumes() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let stall = Stall {
            after: Duration::from_millis(100),
            length: Duration::from_millis(200),
        };
        let faults = Faults {
            stall: Some(stall),
            ..Faults::default()
        };
        let config = SimConfig {
            per_token: Duration::from_millis(10),
            faults,
            ..fast()
        };
        let before_start = Instant::now();
        let server = start(config).await;
        let response = server
            .send("/v1/chat/completions", &chat_body(30, true, false))
            .await;
        let events = read_events(response).await;
        let tokens: Vec<Instant> = events
            .iter()
            .filter(|e| is_token(e))
            .map(|e| e.at)
            .collect();
        assert_eq!(tokens.len(), 30);
        // Nothing came out inside the window, and one gap spans most of it.
        let window =
            before_start + Duration::from_millis(100)..before_start + Duration::from_millis(300);
        let widest = tokens.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(widest >= Duration::from_millis(190), "{widest:?}");
        let inside: Vec<_> = tokens
            .iter()
            .filter(|t| window.contains(t))
            .map(|t| *t - before_start)
            .collect();
        // One step may end inside the window, and a token due just before
        // it may be delivered just after it starts on a busy machine.
        assert!(inside.len() <= 2, "{inside:?}");
        // 5 + 29 * 10 = 295 ms of decoding, shifted by up to the stall.
        let total = *tokens.last().unwrap() - before_start;
        assert!(total >= Duration::from_millis(300), "{total:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn max_num_seqs_one_makes_the_second_request_wait() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let config = SimConfig {
            max_num_seqs: 1,
            ttft: Duration::from_millis(20),
            per_token: Duration::from_millis(10),
            ..fast()
        };
        let server = start(config).await;
        // The first stream holds the only slot once its role chunk is out.
        let mut first = server
            .send("/v1/chat/completions", &chat_body(10, true, false))
            .await;
        assert!(first.chunk().await.unwrap().unwrap().starts_with(b"data: "));
        let sent = Instant::now();
        let url = server.url("");
        let client = server.client.clone();
        let second = tokio::spawn(async move {
            let body = serde_json::to_vec(&chat_body(10, false, false)).unwrap();
            let url = format!("{url}/v1/chat/completions");
            let response = client.post(url).body(body).send().await.unwrap();
            (response.status().as_u16(), sent.elapsed())
        });
        server
            .until_stats(|s| s.waiting == 1 && s.running == 1)
            .await;
        let (_, metrics) = server.get_text("/metrics").await;
        assert!(
            metrics
                .contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"sim-llama-8b\"} 1"),
            "{metrics}"
        );
        read_events(first).await;
        let (status, waited) = second.await.unwrap();
        assert_eq!(status, 200);
        // Its own 20 + 9 * 10 ms, after the first one's remaining decode.
        assert!(waited >= Duration::from_millis(110), "{waited:?}");
        assert_eq!(server.stats().waiting, 0);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn latency_grows_with_running_requests() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let config = SimConfig {
            ttft: Duration::from_millis(20),
            per_token: Duration::from_millis(10),
            slowdown_per_running: 1.0,
            ..fast()
        };
        let server = start(config).await;
        let body = chat_body(10, false, false);
        let started = Instant::now();
        let (a, b) = tokio::join!(
            server.post_json("/v1/chat/completions", &body),
            server.post_json("/v1/chat/completions", &body),
        );
        assert_eq!((a.0, b.0), (200, 200));
        // Alone: 20 + 9 * 10 = 110 ms. Two running double every gap.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(180), "{took:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn client_disconnect_stops_decoding() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let config = SimConfig {
            per_token: Duration::from_millis(10),
            ..fast()
        };
        let server = start(config).await;
        let mut response = server
            .send("/v1/chat/completions", &chat_body(1000, true, false))
            .await;
        response.chunk().await.unwrap().unwrap();
        assert_eq!(server.stats().running, 1);
        drop(response);
        server.until_stats(|s| s.running == 0).await;
        let stats = server.stats();
        assert_eq!(stats.completed, 0);
        assert!(stats.output_tokens < 1000, "{stats:?}");
        // The server still serves.
        let (status, _) = server
            .post_json("/v1/completions", &completion_body(2, false))
            .await;
        assert_eq!(status, 200);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn stop_ends_open_streams_and_returns_promptly() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let config = SimConfig {
            per_token: Duration::from_millis(10),
            ..fast()
        };
        let server = start(config).await;
        let url = server.url("");
        let mut response = server
            .send("/v1/chat/completions", &chat_body(100_000, true, false))
            .await;
        response.chunk().await.unwrap().unwrap();
        let stopping = Instant::now();
        server.stop().await;
        assert!(stopping.elapsed() < Duration::from_secs(2));
        // The open stream ends without [DONE] (or with a transport error).
        let mut rest = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            rest.extend_from_slice(&chunk);
        }
        assert!(!String::from_utf8_lossy(&rest).contains("[DONE]"));
        // Nothing listens any more.
        assert!(reqwest::get(format!("{url}/health")).await.is_err());
    })
    .await;
}

/// The value of the first sample of `family` in an exposition text.
fn sample(text: &str, family: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {family} in\n{text}"))
}

fn chat_with_prompt(prompt: &str, max_tokens: u32) -> Value {
    json!({"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens})
}

/// A repeated prompt is served from the prefix cache (vLLM's queries and
/// hits counters, in tokens).
#[tokio::test]
async fn a_repeated_prompt_hits_the_prefix_cache() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(fast()).await;
        let prompt: String = (0..64).map(|i| format!("w{i} ")).collect();
        for _ in 0..3 {
            let (status, _) = server
                .post_json("/v1/chat/completions", &chat_with_prompt(&prompt, 2))
                .await;
            assert_eq!(status, 200);
        }
        let (_, text) = server.get_text("/metrics").await;
        assert_eq!(sample(&text, "vllm:prefix_cache_queries_total"), 3.0 * 64.0);
        // The first request computes all four 16-word blocks; the next two
        // find them cached, less the last prompt token, which is always
        // computed: 63 hits each.
        assert_eq!(sample(&text, "vllm:prefix_cache_hits_total"), 2.0 * 63.0);
        server.stop().await;
    })
    .await;
}

/// A KV cache too small for the batch preempts requests, which recompute
/// and still finish.
#[tokio::test]
async fn kv_exhaustion_preempts_and_every_request_still_finishes() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(SimConfig {
            kv_blocks: 12,
            ..fast()
        })
        .await;
        let sends = (0..6).map(|i| {
            let prompt: String = (0..20).map(|k| format!("r{i}w{k} ")).collect();
            let body = chat_with_prompt(&prompt, 30);
            let server = &server;
            async move { server.post_json("/v1/chat/completions", &body).await }
        });
        for (status, body) in futures_util::future::join_all(sends).await {
            assert_eq!(status, 200);
            assert_eq!(body["usage"]["completion_tokens"], 30);
        }
        let (_, text) = server.get_text("/metrics").await;
        assert!(sample(&text, "vllm:num_preemptions_total") > 0.0, "{text}");
        assert_eq!(sample(&text, "vllm:kv_cache_usage_perc"), 0.0);
        server.stop().await;
    })
    .await;
}

/// The simulated DCGM exporter follows the batch: utilisation and
/// framebuffer use rise while requests run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcgm_gpu_readings_follow_the_load() {
    let _exclusive = crate::util::exclusive().await;
    bounded(async {
        let server = start(SimConfig {
            dcgm_listen: Some("127.0.0.1:0".parse().unwrap()),
            per_token: Duration::from_millis(5),
            ..fast()
        })
        .await;
        let dcgm = server.server.dcgm_url().expect("a DCGM listener");
        let read = |client: reqwest::Client, url: String| async move {
            let text = client.get(url).send().await.unwrap().text().await.unwrap();
            (
                sample(&text, "DCGM_FI_DEV_GPU_UTIL"),
                sample(&text, "DCGM_FI_DEV_FB_USED"),
            )
        };
        let (idle_util, idle_fb) = read(server.client.clone(), dcgm.clone()).await;
        assert_eq!(idle_util, 0.0);
        // 40 streams of 800 tokens at 5 ms keep the engine busy for 4 s.
        let prompt: String = (0..200).map(|k| format!("w{k} ")).collect();
        let mut body = chat_with_prompt(&prompt, 800);
        body["stream"] = json!(true);
        let streams: Vec<_> = (0..40)
            .map(|_| {
                let client = server.client.clone();
                let url = server.url("/v1/chat/completions");
                let body = body.to_string();
                tokio::spawn(async move {
                    let r = client
                        .post(url)
                        .body(body)
                        .header("content-type", "application/json");
                    r.send().await.unwrap().bytes().await.unwrap()
                })
            })
            .collect();
        let (mut util, mut fb) = (0.0, 0.0);
        while util == 0.0 || fb <= idle_fb {
            tokio::time::sleep(Duration::from_millis(50)).await;
            (util, fb) = read(server.client.clone(), dcgm.clone()).await;
        }
        assert!(util > 10.0 && util <= 100.0, "util {util}");
        // 40 × (200 + tokens so far) tokens of KV at 128 KiB each: > 1 GiB.
        assert!(fb - idle_fb > 1000.0, "fb {fb} vs idle {idle_fb}");
        for stream in streams {
            stream.abort();
        }
        server.stop().await;
    })
    .await;
}
