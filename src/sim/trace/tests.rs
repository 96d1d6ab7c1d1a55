//! Specifications of the simulator's span export: `traceparent` parsing,
//! the deterministic drop draws, and spans from synthetic timelines reaching
//! an embedded OTLP receiver with the right ids and times.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::otlp::{OtlpReceiver, ReceivedSpan, SpanStatus};

#[test]
fn traceparent_parsing_follows_w3c() {
    let ok = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let parsed = TraceParent::parse(ok).unwrap();
    assert_eq!(parsed.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
    assert_eq!(parsed.parent_span_id, 0xb7ad6b7169203331);
    assert!(parsed.sampled);
    assert_eq!(parsed.header(), ok);
    let unsampled = TraceParent::parse(&ok.replace("-01", "-00")).unwrap();
    assert!(!unsampled.sampled);
    assert_eq!(unsampled.header(), ok.replace("-01", "-00"));
    // A later version may append fields.
    let future = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03-what";
    assert!(TraceParent::parse(future).unwrap().sampled);
    let bad = [
        "",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
        "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ];
    for header in bad {
        assert_eq!(TraceParent::parse(header), None, "{header:?}");
    }
}

#[test]
fn drop_draws_depend_only_on_seed_and_sequence() {
    let drops = SpanDrops {
        span_rate: 0.1,
        trace_rate: 0.1,
    };
    let plan = |seed: u64, seq: u64| {
        DropPlan::draw(&mut SimRng::for_request(seed, seq, Purpose::Spans), drops)
    };
    assert_eq!(plan(7, 3), plan(7, 3));
    let plans: Vec<DropPlan> = (0..10_000).map(|seq| plan(7, seq)).collect();
    let traces = plans.iter().filter(|p| p.whole_trace).count();
    let spans = plans
        .iter()
        .flat_map(|p| p.keep_child)
        .filter(|keep| !keep)
        .count();
    // Binomial(10,000, 0.1): sd 30; Binomial(30,000, 0.1): sd 52.
    assert!((850..1150).contains(&traces), "{traces}");
    assert!((2700..3300).contains(&spans), "{spans}");
    let none = SpanDrops::default();
    let kept = DropPlan::draw(&mut SimRng::for_request(7, 1, Purpose::Spans), none);
    assert_eq!((kept.whole_trace, kept.keep_child), (false, [true; 3]));
}

#[test]
fn router_contexts_continue_the_incoming_trace_with_a_fresh_span() {
    let tracing = Tracing::disabled(5);
    let incoming = TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let child = tracing.router_context(1, incoming);
    assert_eq!(child.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
    assert_ne!(child.parent_span_id, 0xb7ad6b7169203331);
    assert_eq!(tracing.router_context(1, incoming), child);
    assert_ne!(tracing.router_context(2, incoming), child);
    let root = tracing.router_context(1, None);
    assert!(root.sampled && root.trace_id != 0 && root.parent_span_id != 0);
    assert_ne!(root.trace_id, tracing.router_context(2, None).trace_id);
}

const T0_NANOS: u64 = 1_700_000_000_000_000_000;

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(T0_NANOS) + Duration::from_millis(ms)
}

fn nanos(ms: u64) -> u64 {
    T0_NANOS + ms * 1_000_000
}

fn timeline(seq: u64, finish_reason: FinishReason) -> Timeline {
    Timeline {
        model: "sim-llama-8b".into(),
        seq,
        arrived: at(0),
        scheduled: Some(at(5)),
        first_token: Some(at(45)),
        finished: at(100),
        prompt_tokens: 12,
        cached_tokens: 4,
        output_tokens: 6,
        preemptions: 1,
        finish_reason,
    }
}

async fn receiver() -> OtlpReceiver {
    OtlpReceiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn tracing_to(receiver: &OtlpReceiver, seed: u64) -> Tracing {
    Tracing::new(TraceConfig {
        endpoint: Some(receiver.endpoint()),
        service_name: "sim-test".into(),
        seed,
    })
    .unwrap()
}

fn parent(seq: u64) -> TraceParent {
    TraceParent {
        trace_id: 0xabc0_0000_0000_0000_0000_0000_0000_0000 + u128::from(seq),
        parent_span_id: 0x1000 + seq,
        sampled: true,
    }
}

fn find<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} span in {spans:?}"))
}

#[tokio::test]
async fn engine_spans_reach_the_receiver_under_the_incoming_trace() {
    let receiver = receiver().await;
    let tracing = tracing_to(&receiver, 1);
    let parent = parent(1);
    tracing.export(
        Some(parent),
        &timeline(1, FinishReason::Length),
        SpanDrops::default(),
    );
    tracing.shutdown().await.unwrap();

    let spans = receiver.trace(parent.trace_id).expect("the trace arrived");
    assert_eq!(spans.len(), 4, "{spans:?}");
    let engine = find(&spans, "engine");
    assert_eq!(engine.parent_span_id, Some(parent.parent_span_id));
    assert_eq!(
        (engine.start_unix_nanos, engine.end_unix_nanos),
        (nanos(0), nanos(100))
    );
    assert_eq!(engine.service_name, "sim-test");
    assert_eq!(engine.status, SpanStatus::Unset);
    assert_eq!(
        engine.attribute("gen_ai.request.model"),
        Some("sim-llama-8b")
    );
    assert_eq!(engine.attribute("gen_ai.usage.input_tokens"), Some("12"));
    assert_eq!(engine.attribute("gen_ai.usage.output_tokens"), Some("6"));
    assert_eq!(
        engine.attribute("gen_ai.response.finish_reasons"),
        Some("length")
    );
    let phases = [("queue", 0, 5), ("prefill", 5, 45), ("decode", 45, 100)];
    for (name, start_ms, end_ms) in phases {
        let span = find(&spans, name);
        assert_eq!(span.parent_span_id, Some(engine.span_id), "{name}");
        assert_eq!(span.start_unix_nanos, nanos(start_ms), "{name}");
        assert_eq!(span.end_unix_nanos, nanos(end_ms), "{name}");
    }
    receiver.stop().await;
}

#[tokio::test]
async fn errors_are_marked_unsampled_parents_honoured_and_fresh_traces_seeded() {
    let receiver = receiver().await;
    let tracing = tracing_to(&receiver, 9);
    let mut unsampled = parent(1);
    unsampled.sampled = false;
    tracing.export(
        Some(unsampled),
        &timeline(1, FinishReason::Length),
        SpanDrops::default(),
    );
    tracing.export(
        Some(parent(2)),
        &timeline(2, FinishReason::Error),
        SpanDrops::default(),
    );
    let mut never_scheduled = timeline(3, FinishReason::Abort);
    never_scheduled.scheduled = None;
    never_scheduled.first_token = None;
    tracing.export(None, &never_scheduled, SpanDrops::default());
    tracing.shutdown().await.unwrap();

    assert_eq!(receiver.trace(unsampled.trace_id), None);
    let failed = receiver.trace(parent(2).trace_id).unwrap();
    assert_eq!(find(&failed, "engine").status, SpanStatus::Error);
    // Without a parent: a root span in a fresh trace, queue only.
    let fresh: Vec<u128> = receiver
        .trace_ids()
        .into_iter()
        .filter(|id| *id != parent(2).trace_id)
        .collect();
    assert_eq!(fresh.len(), 1);
    let spans = receiver.trace(fresh[0]).unwrap();
    let names: BTreeSet<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["engine", "queue"]));
    assert_eq!(find(&spans, "engine").parent_span_id, None);
    assert_eq!(find(&spans, "queue").end_unix_nanos, nanos(100));
    // The fresh trace id is a function of the seed and the sequence.
    let mut rng = SimRng::for_request(9, 3, Purpose::Spans);
    DropPlan::draw(&mut rng, SpanDrops::default());
    assert_eq!(EngineIds::draw(&mut rng, None).trace_id, fresh[0]);
    receiver.stop().await;
}

/// Exports 1,000 requests (trace id = parent(seq)) and returns the
/// (trace id, span name) pairs that did not arrive.
async fn missing_after(seed: u64, drops: SpanDrops) -> BTreeSet<(u128, String)> {
    let receiver = receiver().await;
    let tracing = tracing_to(&receiver, seed);
    for seq in 0..1000 {
        tracing.export(
            Some(parent(seq)),
            &timeline(seq, FinishReason::Length),
            drops,
        );
    }
    tracing.shutdown().await.unwrap();
    let mut missing = BTreeSet::new();
    for seq in 0..1000 {
        let trace_id = parent(seq).trace_id;
        let spans = receiver.trace(trace_id).unwrap_or_default();
        for name in ["engine", "queue", "prefill", "decode"] {
            if !spans.iter().any(|s| s.name == name) {
                missing.insert((trace_id, name.to_string()));
            }
        }
    }
    assert_eq!(receiver.dropped_spans(), 0);
    receiver.stop().await;
    missing
}

#[tokio::test]
async fn span_drops_hit_about_their_rate_and_repeat_under_a_seed() {
    let drops = SpanDrops {
        span_rate: 0.1,
        trace_rate: 0.0,
    };
    let missing = missing_after(3, drops).await;
    // 3,000 child spans at 10%: mean 300, sd 16.
    assert!((210..=390).contains(&missing.len()), "{}", missing.len());
    assert!(missing.iter().all(|(_, name)| name != "engine"));
    assert_eq!(missing_after(3, drops).await, missing);
    assert_ne!(missing_after(4, drops).await, missing);
}

#[tokio::test]
async fn trace_drops_hit_about_their_rate_and_repeat_under_a_seed() {
    let drops = SpanDrops {
        span_rate: 0.0,
        trace_rate: 0.1,
    };
    let missing = missing_after(3, drops).await;
    let traces: BTreeSet<u128> = missing.iter().map(|(trace, _)| *trace).collect();
    // 1,000 traces at 10%: mean 100, sd 9.5; a dropped trace loses all 4.
    assert!((70..=130).contains(&traces.len()), "{}", traces.len());
    assert_eq!(missing.len(), traces.len() * 4);
    assert_eq!(missing_after(3, drops).await, missing);
}

#[test]
fn an_unusable_endpoint_is_an_error() {
    let config = TraceConfig {
        endpoint: Some("not a url".into()),
        service_name: "s".into(),
        seed: 1,
    };
    assert!(Tracing::new(config).is_err());
}

#[test]
fn disabled_tracing_exports_nothing() {
    let tracing = Tracing::disabled(1);
    assert!(!tracing.is_enabled());
    assert_eq!(tracing.traces_url(), None);
    tracing.export(
        None,
        &timeline(1, FinishReason::Length),
        SpanDrops::default(),
    );
}
