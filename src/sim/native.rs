//! The native endpoints of the inference servers in examples/003 (realizar
//! style), so that template plans are tested against a real server:
//! `POST /generate`, `/batch/generate`, `/tokenize`, `/batch/tokenize`,
//! `/model/load` and `/model/unload`. Generation goes through the same
//! engines, faults and metrics as the OpenAI endpoints.

// Errors here are the HTTP answers themselves, built once per failed
// request; boxing them would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use futures_util::future::join_all;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::engine::prefix::block_hashes;
use super::http::{
    aborted, count_request, error_response, injected_error, json_response, new_job, serving,
    submit, traceparent, unavailable,
};
use super::openai::{Endpoint, Request};
use super::state::Shared;
use super::stream::collect;
use super::tokens::count_words;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/generate", post(generate))
        .route("/batch/generate", post(batch_generate))
        .route("/tokenize", post(tokenize))
        .route("/batch/tokenize", post(batch_tokenize))
        .route("/model/load", post(load))
        .route("/model/unload", post(unload))
}

/// `strategy` (greedy, top_k, top_p) and other fields are accepted and
/// ignored: they do not change the simulated text.
#[derive(Deserialize)]
struct GenerateBody {
    prompt: String,
    max_tokens: Option<u32>,
    model: Option<String>,
}

#[derive(Deserialize)]
struct BatchGenerateBody {
    prompts: Vec<String>,
    max_tokens: Option<u32>,
    model: Option<String>,
}

#[derive(Deserialize)]
struct TokenizeBody {
    text: String,
}

#[derive(Deserialize)]
struct BatchTokenizeBody {
    texts: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ModelBody {
    model: Option<String>,
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| error_response(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")))
}

async fn generate(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let b: GenerateBody = match parse(&body) {
        Ok(b) => b,
        Err(response) => return response,
    };
    match generate_one(
        &shared,
        &headers,
        b.model.as_deref(),
        &b.prompt,
        b.max_tokens,
    )
    .await
    {
        Ok(result) => json_response(StatusCode::OK, result.to_string().into_bytes()),
        Err(response) => response,
    }
}

async fn batch_generate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: BatchGenerateBody = match parse(&body) {
        Ok(b) => b,
        Err(response) => return response,
    };
    let all = b
        .prompts
        .iter()
        .map(|p| generate_one(&shared, &headers, b.model.as_deref(), p, b.max_tokens));
    let mut results = Vec::with_capacity(b.prompts.len());
    for result in join_all(all).await {
        match result {
            Ok(value) => results.push(value),
            // One failed item fails the batch, as the servers of
            // examples/003 do.
            Err(response) => return response,
        }
    }
    json_response(
        StatusCode::OK,
        json!({ "results": results }).to_string().into_bytes(),
    )
}

/// One generation through the engine; the JSON result or the error answer.
async fn generate_one(
    shared: &Shared,
    headers: &HeaderMap,
    model: Option<&str>,
    prompt: &str,
    max_tokens: Option<u32>,
) -> Result<Value, Response> {
    if let Some(crashed) = count_request(shared) {
        return Err(crashed);
    }
    if max_tokens == Some(0) {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            "max_tokens must be at least 1",
        ));
    }
    let served = serving(shared, model)?;
    let request = Request {
        model: model.map(str::to_string),
        prompt_tokens: count_words(prompt),
        max_tokens,
        stream: false,
        include_usage: false,
        continuous_usage: false,
        block_hashes: block_hashes(prompt.split_whitespace(), shared.config.block_size),
    };
    let job = new_job(shared, served, Endpoint::Completion, &request);
    if job.faults.error {
        return Err(injected_error(shared, served).await);
    }
    let slot = submit(
        shared,
        served,
        &job,
        traceparent(headers),
        request.block_hashes,
    )
    .ok_or_else(unavailable)?;
    let (text, generated) = collect(shared, &job, &slot)
        .await
        .ok_or_else(|| aborted(shared))?;
    let token_ids: Vec<u32> = text.split_whitespace().map(token_id).collect();
    Ok(json!({
        "text": text.trim_start(),
        "token_ids": token_ids,
        "num_generated": generated,
        "model": served.engine.model,
    }))
}

/// A stable id for a word in a 32,000-entry vocabulary.
fn token_id(word: &str) -> u32 {
    let hash = word.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % 32_000
}

fn tokenized(text: &str) -> Value {
    let ids: Vec<u32> = text.split_whitespace().map(token_id).collect();
    json!({ "num_tokens": ids.len(), "token_ids": ids })
}

async fn tokenize(body: Bytes) -> Response {
    match parse::<TokenizeBody>(&body) {
        Ok(b) => json_response(StatusCode::OK, tokenized(&b.text).to_string().into_bytes()),
        Err(response) => response,
    }
}

async fn batch_tokenize(body: Bytes) -> Response {
    match parse::<BatchTokenizeBody>(&body) {
        Ok(b) => {
            let results: Vec<Value> = b.texts.iter().map(|t| tokenized(t)).collect();
            let body = json!({ "results": results }).to_string().into_bytes();
            json_response(StatusCode::OK, body)
        }
        Err(response) => response,
    }
}

async fn load(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    change_load(&shared, &body, true)
}

async fn unload(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    change_load(&shared, &body, false)
}

/// Loads or unloads a model (the first when the body names none).
fn change_load(shared: &Shared, body: &[u8], load: bool) -> Response {
    let b: ModelBody = if body.is_empty() {
        ModelBody::default()
    } else {
        match parse(body) {
            Ok(b) => b,
            Err(response) => return response,
        }
    };
    let Some(served) = shared.served(b.model.as_deref()) else {
        let name = b.model.unwrap_or_default();
        let message = format!("The model `{name}` does not exist.");
        return error_response(StatusCode::NOT_FOUND, &message);
    };
    let changed = if load {
        served.engine.load()
    } else {
        served.engine.unload()
    };
    let body = json!({ "model": served.engine.model, "loaded": load, "changed": changed });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizing_counts_words_with_stable_ids() {
        let t = tokenized("Hello world  hello");
        assert_eq!(t["num_tokens"], 3);
        assert_eq!(t["token_ids"][0], token_id("Hello"));
        assert_ne!(t["token_ids"][0], t["token_ids"][2], "case matters");
        assert!(
            t["token_ids"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v.as_u64().unwrap() < 32_000)
        );
    }
}
