//! Real workloads: prompts and answer lengths from a ShareGPT file (made
//! here; nothing is downloaded) and a system prompt shared by every
//! request, checked against the simulator's own token and prefix-cache
//! counters.

use crate::util::{exact_sim, run, sim, sim_counter as counter};

fn words(n: usize, word: &str) -> String {
    vec![word; n].join(" ")
}

/// Three conversations ask 4, 8 and 16 words and were answered in 5, 9
/// and 13; a fourth has no answer and is skipped. From the totals the
/// server counted, the number of requests of each conversation is solved
/// exactly: every request asked its conversation's prompt and its
/// recorded answer's length (the phase's max_tokens of 64 would give
/// 60 × 64 output tokens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharegpt_file_replays_its_prompts_with_their_answers_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let turn =
        |from: &str, n: usize, w: &str| serde_json::json!({"from": from, "value": words(n, w)});
    let data = serde_json::json!([
        {"id": "a", "conversations": [turn("human", 4, "alpha"), turn("gpt", 5, "x")]},
        {"id": "b", "conversations": [turn("system", 3, "rules"), turn("human", 8, "beta"), turn("gpt", 9, "y"), turn("human", 2, "more")]},
        {"id": "c", "conversations": [turn("user", 16, "gamma"), turn("assistant", 13, "z")]},
        {"id": "d", "conversations": [turn("human", 6, "lost")]},
    ]);
    let file = dir.path().join("sharegpt.json");
    std::fs::write(&file, data.to_string()).unwrap();
    let server = sim(exact_sim(5, 1)).await;
    let plan = format!(
        "[target]\nstream = false\n[workload]\nmax_tokens = 64\nprompts_file = '{}'\nprompts_format = 'sharegpt'\n\
         [[phases]]\nname = 'replay'\nrequests = 60\nload = {{ type = 'concurrency', concurrency = 4 }}\n",
        file.display()
    );
    let (result, _dir) = run(&plan, Some(&server.base_url())).await;
    let s = &result.report.overall;
    assert_eq!((s.requests, s.ok), (60, 60));
    let (prompt, output) = (s.prompt_tokens as i64, s.output_tokens as i64);
    assert_eq!(
        counter(&server.base_url(), "vllm:generation_tokens_total").await as i64,
        output
    );
    assert_eq!(
        counter(&server.base_url(), "vllm:prompt_tokens_total").await as i64,
        prompt
    );
    // a + b + c = 60, 4a + 8b + 16c = prompt, 5a + 9b + 13c = output.
    let (p4, o4) = (prompt - 240, output - 300);
    assert!(
        p4 % 4 == 0 && o4 % 4 == 0,
        "{prompt} / {output} are not sums of the dataset's lengths"
    );
    let c = p4 / 4 - o4 / 4;
    let b = o4 / 4 - 2 * c;
    let a = 60 - b - c;
    assert!(
        a > 0 && b > 0 && c > 0,
        "a={a} b={b} c={c} from {prompt} / {output}"
    );
    assert_eq!(result.report.plan["workload"]["skipped_conversations"], 1);
    server.stop().await;
}

/// A 256-token system prompt shared by every request: after the first
/// requests, each finds its 16 blocks in the server's prefix cache, and
/// the server's own hit counter counts exactly those tokens. The user's
/// own 15 tokens are less than one 16-token block, so they are never a
/// cached block themselves: without the shared prompt nothing hits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_system_prompt_is_found_in_the_prefix_cache() {
    let measure = |shared: u32| async move {
        let server = sim(exact_sim(5, 1)).await;
        let plan = format!(
            "[target]\nstream = false\n[workload]\nmax_tokens = 4\nshared_prefix_tokens = {shared}\n\
             prompts = [{{ tokens = 15 }}]\n\
             [[phases]]\nname = 'p'\nrequests = 40\nload = {{ type = 'concurrency', concurrency = 2 }}\n"
        );
        let (result, _dir) = run(&plan, Some(&server.base_url())).await;
        assert_eq!(result.report.overall.ok, 40);
        let per_request = result.report.overall.prompt_tokens / 40;
        let hits = counter(&server.base_url(), "vllm:prefix_cache_hits_total").await;
        let queries = counter(&server.base_url(), "vllm:prefix_cache_queries_total").await;
        server.stop().await;
        (per_request, hits, queries)
    };
    let (per_request, hits, queries) = measure(256).await;
    assert_eq!(per_request, 256 + 15);
    assert_eq!(queries, 40.0 * 271.0);
    // The two first requests (sent together) miss; every later one hits
    // the 256 shared tokens.
    assert!(
        (38.0 * 256.0..=39.0 * 256.0).contains(&hits),
        "{hits} hit tokens of {queries}"
    );
    let (per_request, hits, _) = measure(0).await;
    assert_eq!(per_request, 15);
    assert_eq!(hits, 0.0);
}

/// A Mooncake-style trace (made here: 200 requests at irregular offsets
/// with their own lengths) replays every request at its offset, with its
/// input and output lengths: the simulator's own token counters hold the
/// trace's sums, and the sends kept time (schedule lag p99 under 5 ms at
/// 1×). At 2× the same requests take half the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mooncake_trace_replays_its_arrivals_and_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let mut state: u64 = 7;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let (mut at, mut lines, mut input, mut output) = (1_700_000_000_000u64, Vec::new(), 0, 0);
    for _ in 0..200 {
        at += 2 + next(38);
        let (i, o) = (8 + next(56), 2 + next(10));
        input += i;
        output += o;
        lines.push(format!(
            "{{\"timestamp\": {at}, \"input_length\": {i}, \"output_length\": {o}, \"hash_ids\": [1, 2]}}"
        ));
    }
    std::fs::write(dir.path().join("trace.jsonl"), lines.join("\n")).unwrap();
    let first: u64 = lines[0]
        .split(['{', ':', ','])
        .nth(2)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let span_ms = (at - first) as f64;
    for speedup in [1.0, 2.0] {
        let server = sim(exact_sim(5, 1)).await;
        let plan = format!(
            "[target]\nstream = false\n[[phases]]\nname = 'replay'\n\
             load = {{ type = 'replay', file = '{}', speedup = {speedup:?} }}\n",
            dir.path().join("trace.jsonl").display()
        );
        let (result, _dir) = run(&plan, Some(&server.base_url())).await;
        let phase = &result.report.phases[0];
        assert_eq!(
            (phase.stats.requests, phase.stats.ok),
            (200, 200),
            "{speedup}×"
        );
        assert_eq!(
            phase.load,
            format!(
                "replay of {} (200 requests, {speedup}× speed)",
                dir.path().join("trace.jsonl").display()
            )
        );
        let base = server.base_url();
        assert_eq!(
            counter(&base, "vllm:prompt_tokens_total").await as u64,
            input
        );
        assert_eq!(
            counter(&base, "vllm:generation_tokens_total").await as u64,
            output
        );
        let planned_ms = phase.planned_duration_s * 1000.0;
        assert!(
            (planned_ms - (span_ms / speedup + 1.0)).abs() < 0.01,
            "{planned_ms}ms for a {span_ms}ms trace at {speedup}×"
        );
        if speedup == 1.0 {
            let lag = phase
                .stats
                .quantiles(infercheck::stats::Distribution::ScheduleLag)
                .unwrap();
            assert!(lag.p99 < 5.0, "schedule lag p99 {}ms", lag.p99);
        }
        server.stop().await;
    }
}

/// The Azure LLM inference trace's CSV replays the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_trace_replays_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
               2023-11-16 18:15:46.6805900,30,4\n\
               2023-11-16 18:15:46.7105900,12,7\n\
               2023-11-16 18:15:46.9000000,20,3\n";
    std::fs::write(dir.path().join("azure.csv"), csv).unwrap();
    let server = sim(exact_sim(5, 1)).await;
    let plan = format!(
        "[target]\nstream = false\n[[phases]]\nname = 'replay'\n\
         load = {{ type = 'replay', file = '{}', format = 'azure' }}\n",
        dir.path().join("azure.csv").display()
    );
    let (result, _dir) = run(&plan, Some(&server.base_url())).await;
    assert_eq!(result.report.overall.ok, 3);
    assert_eq!(
        counter(&server.base_url(), "vllm:prompt_tokens_total").await,
        62.0
    );
    assert_eq!(
        counter(&server.base_url(), "vllm:generation_tokens_total").await,
        14.0
    );
    assert!((result.report.phases[0].planned_duration_s - 0.22041).abs() < 1e-6);
    server.stop().await;
}

/// Multi-turn sessions from the workload's prompts: each turn carries the
/// conversation so far, so the server counts turn k's prompt as k
/// questions and k − 1 answers (32 and 16 words), and finds the earlier
/// turns' full 16-token blocks in its prefix cache: at least 2 blocks on
/// turn 2 and 5 on turn 3 of every session. One user, 30 requests: ten
/// whole sessions of three turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_turn_sessions_carry_the_conversation_and_hit_the_prefix_cache() {
    let server = sim(exact_sim(2, 1)).await;
    let plan = "[target]\nstream = true\n[workload]\nmax_tokens = 16\nturns = 3\n\
                prompts = [{ tokens = 32 }]\n\
                [[phases]]\nname = 'chat'\nrequests = 30\nload = { type = 'concurrency', concurrency = 1 }\n";
    let (result, _dir) = run(plan, Some(&server.base_url())).await;
    let report = &result.report;
    assert_eq!(report.overall.ok, 30, "{:?}", report.overall.errors);
    let s = report.sessions.as_ref().expect("a sessions section");
    assert_eq!(
        (s.started, s.completed, s.turns, s.failed_turns),
        (10, 10, 30, 0)
    );
    assert_eq!(s.turns_per_session, Some(3.0));
    let prompts: Vec<Option<f64>> = s.by_turn.iter().map(|t| t.prompt_tokens_avg).collect();
    assert_eq!(prompts, [Some(32.0), Some(80.0), Some(128.0)]);
    assert!(
        s.by_turn
            .iter()
            .all(|t| t.requests == 10 && t.ttft_ms.is_some())
    );
    // A session's length is its three turns: time per turn is a third of it.
    let (length, per_turn) = (s.duration_ms.unwrap(), s.time_per_turn_ms.unwrap());
    assert!(
        (per_turn.mean * 3.0 - length.mean).abs() < 0.5,
        "{length:?} {per_turn:?}"
    );
    let hits = counter(&server.base_url(), "vllm:prefix_cache_hits_total").await;
    assert!(
        (10.0 * (32.0 + 80.0)..=10.0 * (32.0 + 80.0 + 128.0)).contains(&hits),
        "{hits} hit tokens"
    );
    assert_eq!(
        counter(&server.base_url(), "vllm:prompt_tokens_total").await as u64,
        report.overall.prompt_tokens
    );
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    assert!(md.contains("## Multi-Turn Sessions"), "{md}");
    let schema = crate::report::strict(crate::report::schema());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let written = serde_json::to_value(report).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    server.stop().await;
}

/// A ShareGPT conversation of two exchanges replays as a two-turn
/// session: turn 2 carries the recorded first question and answer, and
/// each turn asks its recorded answer's length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharegpt_conversation_replays_turn_by_turn() {
    let dir = tempfile::tempdir().unwrap();
    let turn = |from: &str, n: usize| serde_json::json!({"from": from, "value": words(n, "w")});
    let data = serde_json::json!([
        {"conversations": [turn("human", 4), turn("gpt", 5), turn("human", 3), turn("gpt", 6)]},
    ]);
    let file = dir.path().join("chats.json");
    std::fs::write(&file, data.to_string()).unwrap();
    let server = sim(exact_sim(2, 1)).await;
    let plan = format!(
        "[target]\nstream = false\n[workload]\nturns = 8\nprompts_file = '{}'\nprompts_format = 'sharegpt'\n\
         [[phases]]\nname = 'p'\nrequests = 6\nload = {{ type = 'concurrency', concurrency = 1 }}\n",
        file.display()
    );
    let (result, _dir) = run(&plan, Some(&server.base_url())).await;
    let s = result.report.sessions.as_ref().unwrap();
    assert_eq!((s.max_turns, s.conversations, s.completed), (8, 1, 3));
    let prompts: Vec<Option<f64>> = s
        .by_turn
        .iter()
        .filter(|t| t.requests > 0)
        .map(|t| t.prompt_tokens_avg)
        .collect();
    assert_eq!(prompts, [Some(4.0), Some(12.0)]);
    assert_eq!(result.report.overall.output_tokens, 3 * (5 + 6));
    server.stop().await;
}

#[test]
fn sessions_on_an_open_load_are_refused() {
    let plan = "[workload]\nturns = 3\n[[phases]]\nname = 'open'\nduration = '1s'\n\
                load = { type = 'constant', rate = 5 }\n";
    let err = infercheck::plan::resolve_source("plan.toml", plan, None, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("open load") && err.contains("turns"), "{err}");
}
