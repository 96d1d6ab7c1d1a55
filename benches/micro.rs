//! Criterion micro-benchmarks of the hot path: histogram record and merge,
//! SSE parsing and chunk classification, request picking, schedule ticks.
//! `cargo bench --bench micro`; results in benches/README.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use infercheck::load::sse::{Parser, classify};
use infercheck::load::{Arrivals, RequestSet};
use infercheck::plan::{Overrides, resolve_source};
use infercheck::stats::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn histogram(c: &mut Criterion) {
    let mut h = Histogram::new();
    let mut v = 1u64;
    c.bench_function("histogram_record", |b| {
        b.iter(|| {
            v = v
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            h.record(black_box(v % 10_000_000));
        })
    });
    let mut other = Histogram::new();
    for i in 0..100_000u64 {
        other.record(i * 37 % 5_000_000);
    }
    c.bench_function("histogram_merge", |b| {
        let mut into = Histogram::new();
        b.iter(|| into.merge(black_box(&other)))
    });
}

fn sse(c: &mut Criterion) {
    let chunk = br#"data: {"id":"cmpl-1","object":"chat.completion.chunk","created":1,"model":"sim","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}

"#;
    let mut parser = Parser::default();
    c.bench_function("sse_parse_and_classify_one_token", |b| {
        b.iter(|| {
            let mut tokens = 0;
            parser.feed(black_box(chunk), |event| {
                if let infercheck::load::sse::Chunk::Data(info) = classify(&event, Some("sim")) {
                    tokens += u32::from(info.has_token);
                }
            });
            tokens
        })
    });
}

fn requests(c: &mut Criterion) {
    let plan = resolve_source(
        "bench.toml",
        "[[models]]\nname='a'\nweight=70\n[[models]]\nname='b'\nweight=30\n\
         [workload]\nprompts=[{tokens=64,weight=10},{tokens=128,weight=5},{tokens=256,weight=2}]\n\
         [[phases]]\nname='p'\nduration='1s'\nload={type='constant',rate=1}\n",
        None,
        &Overrides::default(),
    )
    .expect("the bench plan is valid");
    let set = RequestSet::build(&plan, &plan.phases[0]);
    let mut rng = SmallRng::seed_from_u64(1);
    c.bench_function("request_pick_and_clone_body", |b| {
        b.iter(|| set.pick(&mut rng).body.clone())
    });
}

fn schedule(c: &mut Criterion) {
    let ramp = Arrivals::Ramp {
        from: 10.0,
        to: 5000.0,
        duration: Duration::from_secs(3600),
    };
    c.bench_function("schedule_ramp_1000_ticks", |b| {
        b.iter(|| ramp.iter(Duration::from_secs(3600)).take(1000).count())
    });
    let poisson = Arrivals::Poisson {
        rate: 1000.0,
        seed: 1,
    };
    c.bench_function("schedule_poisson_1000_ticks", |b| {
        b.iter(|| poisson.iter(Duration::from_secs(3600)).take(1000).count())
    });
}

criterion_group!(benches, histogram, sse, requests, schedule);
criterion_main!(benches);
