//! Property tests for every parser that reads outside input: SSE streams,
//! Prometheus expositions, plan files and thresholds, OTLP bodies, Jaeger
//! and Tempo answers, and trace ids. Inputs are the real fixtures under
//! `../shared/fixtures` (read in place) mutated at random, and arbitrary
//! bytes. The property is always at least: no panic. Case counts and input
//! sizes are small so the whole module runs in seconds in debug builds.

use std::io::Write;
use std::sync::LazyLock;

use infercheck::load::sse::{self, Chunk, Parser};
use infercheck::otlp::decode::{self, Format};
use infercheck::plan::{Overrides, resolve_source, threshold};
use infercheck::sample::exposition;
use infercheck::trace_id::{
    TraceParent, client_span_id, parse_span_id, parse_trace_id, trace_id_hex, traceparent,
};
use infercheck::traces::parse::{jaeger_v1, otlp_json};
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;

// ------------------------------------------------------------------ fixtures

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures");

fn fixture(path: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}/{path}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Every file of a fixture directory (or of a directory of this crate),
/// sorted by name, as (name, bytes).
fn dir(path: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {path}");
    files
}

static SSE_STREAMS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let lf = fixture("sse/vllm-v1-chat-stream.txt");
    // The same stream as a CRLF server would send it.
    let crlf = String::from_utf8_lossy(&lf)
        .replace('\n', "\r\n")
        .into_bytes();
    vec![lf, crlf, fixture("sse/vllm-v1-chat.json")]
});

static METRICS: LazyLock<Vec<(String, Vec<u8>)>> =
    LazyLock::new(|| dir(&format!("{FIXTURES}/metrics")));

/// The built-in plans as the binary holds them (a suite's shared
/// `plans/tasks/` file appended where it has one).
static PLANS: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(|| {
    infercheck::plan::BUILTIN
        .iter()
        .map(|b| (format!("{}.toml", b.name), b.source.as_bytes().to_vec()))
        .collect()
});

static JAEGER: LazyLock<Vec<(String, Vec<u8>)>> =
    LazyLock::new(|| dir(&format!("{FIXTURES}/jaeger")));

/// The OTLP JSON trace exports among the Jaeger fixtures.
static OTLP_JSON: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    [
        "jaeger/otlp-example_trace.json",
        "jaeger/otlp-multi-in-combined.json",
        "jaeger/otlp2jaeger-in.json",
    ]
    .iter()
    .map(|p| fixture(p))
    .collect()
});

/// The same exports as protobuf bodies (what an OTLP/HTTP exporter sends).
static OTLP_PROTOBUF: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    OTLP_JSON
        .iter()
        .map(|json| {
            decode::parse(Format::Json, json)
                .expect("OTLP JSON fixture parses")
                .encode_to_vec()
        })
        .collect()
});

const THRESHOLDS: &[&str] = &[
    "p95(ttft) < 500ms",
    "p99(ttft) < 1.5s",
    "p95(latency) < 950ms",
    "p99(latency) < 1.5s",
    "avg(itl) <= 20",
    "p50(tokens_per_s) > 30",
    "error_rate < 1%",
    "error_rate < 0.01",
    "timeout_rate < 0.5%",
    "peak_rps >= 150",
    "rps>=150",
    "max(gpu_util) < 80%",
    "max(vram_used) < 20GiB",
    "avg(cpu_load) < 12",
    "p95(prom_query_latency) < 100ms",
    "trace_coverage >= 95%",
    "missing_spans == 0",
    "alerts_fired == 0",
];

// ----------------------------------------------------------------- mutations

/// One random edit of a byte string.
#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    /// Copies up to 64 bytes from the first place to the second.
    Splice(Index, Index, u8),
    /// Duplicates the line holding the place.
    DuplicateLine(Index),
    /// Replaces the digits at the place with a nasty number.
    Number(Index, Index),
    /// Replaces the inside of the quoted string at the place.
    Quoted(Index, String),
}

const NASTY_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0.0",
    "1e309",
    "-1e309",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "+Inf",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "9223372036854775807",
    "99999999999999999999999",
    "0x10",
    "1_000",
    "",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), any::<Index>(), any::<u8>())
            .prop_map(|(a, b, n)| Edit::Splice(a, b, n)),
        2 => any::<Index>().prop_map(Edit::DuplicateLine),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Number(a, b)),
        2 => (any::<Index>(), "[ -~\\\\\"\n\u{e9}\u{1f600}]{0,24}")
            .prop_map(|(i, s)| Edit::Quoted(i, s)),
    ]
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..6)
}

/// `base` with `edits` applied; never longer than `base` plus a few KiB.
fn mutate(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = base.to_vec();
    for edit in edits {
        if out.is_empty() {
            out.push(b'x');
        }
        let at = |i: &Index, len: usize| i.index(len);
        match edit {
            Edit::Flip(i, b) => {
                let i = at(i, out.len());
                out[i] ^= b.max(&1);
            }
            Edit::Insert(i, b) => {
                let i = at(i, out.len() + 1);
                out.insert(i, *b);
            }
            Edit::Delete(i) => {
                let i = at(i, out.len());
                out.remove(i);
            }
            Edit::Truncate(i) => {
                let i = at(i, out.len() + 1);
                out.truncate(i);
            }
            Edit::Splice(from, to, n) => {
                let from = at(from, out.len());
                let end = (from + usize::from(*n % 64)).min(out.len());
                let piece = out[from..end].to_vec();
                let to = at(to, out.len() + 1);
                out.splice(to..to, piece);
            }
            Edit::DuplicateLine(i) => {
                let i = at(i, out.len());
                let start = out[..i]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = out[i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(out.len(), |p| i + p + 1);
                let line = out[start..end].to_vec();
                if line.len() <= 4096 {
                    out.splice(start..start, line);
                }
            }
            Edit::Number(i, which) => {
                let i = at(i, out.len());
                if let Some(p) = out[i..].iter().position(u8::is_ascii_digit) {
                    let start = i + p;
                    let end = out[start..]
                        .iter()
                        .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                        .map_or(out.len(), |q| start + q);
                    let number = NASTY_NUMBERS[which.index(NASTY_NUMBERS.len())];
                    out.splice(start..end, number.bytes());
                }
            }
            Edit::Quoted(i, text) => {
                let i = at(i, out.len());
                if let Some(p) = out[i..].iter().position(|b| *b == b'"') {
                    let start = i + p + 1;
                    if let Some(q) = out[start..].iter().position(|b| *b == b'"') {
                        out.splice(start..start + q, text.bytes());
                    }
                }
            }
        }
    }
    out
}

fn pick<'a, T>(items: &'a [T], i: &Index) -> &'a T {
    &items[i.index(items.len())]
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Every case holds the load tests' lock: a case is pure CPU, and on a
/// 2-core machine it would otherwise sit beside a run whose schedule lag
/// and latency are being measured.
fn quiet() -> tokio::sync::MutexGuard<'static, ()> {
    crate::util::exclusive_blocking()
}

/// Bytes made mostly of the characters that steer a line-oriented parser.
fn structural_bytes(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(alphabet),
            1 => any::<u8>(),
        ],
        0..max,
    )
}

// ----------------------------------------------------------------------- SSE

type OwnedEvent = (Vec<u8>, Vec<u8>, String);

/// Feeds `bytes` cut at `cuts`, returning each event with its
/// classification, and whether the parser holds a partial event at the end.
fn sse_events(bytes: &[u8], cuts: &[Index], asked: Option<&str>) -> (Vec<OwnedEvent>, bool) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    let mut parser = Parser::default();
    let mut events = Vec::new();
    for pair in points.windows(2) {
        parser.feed(&bytes[pair[0]..pair[1]], |event| {
            let class = format!("{:?}", sse::classify(&event, asked));
            events.push((event.name.to_vec(), event.data.to_vec(), class));
        });
    }
    (events, parser.has_partial())
}

#[test]
fn sse_fixture_stream_reads_as_tokens_then_done() {
    for stream in &SSE_STREAMS[..2] {
        let mut parser = Parser::default();
        let mut chunks = Vec::new();
        parser.feed(stream, |event| {
            chunks.push(sse::classify(&event, Some("tiny-llama")))
        });
        assert!(!parser.has_partial());
        assert_eq!(chunks.last(), Some(&Chunk::Done));
        assert!(
            chunks
                .iter()
                .all(|c| matches!(c, Chunk::Data(i) if !i.other_model) || *c == Chunk::Done)
        );
        assert!(
            chunks
                .iter()
                .any(|c| matches!(c, Chunk::Data(i) if i.has_token))
        );
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Cutting a real stream anywhere yields the same events as one feed.
    #[test]
    fn sse_fixture_split_anywhere_matches_one_feed(
        which in any::<Index>(),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        let _quiet = quiet();
        let stream = pick::<Vec<u8>>(&SSE_STREAMS, &which);
        let whole = sse_events(stream, &[], Some("tiny-llama"));
        prop_assert_eq!(sse_events(stream, &cuts, Some("tiny-llama")), whole);
    }

    /// The same for mutated streams: framing never depends on the cuts.
    #[test]
    fn sse_mutated_stream_split_anywhere_matches_one_feed(
        which in any::<Index>(),
        edits in edits(),
        cuts in prop::collection::vec(any::<Index>(), 0..16),
    ) {
        let _quiet = quiet();
        let stream = mutate(pick::<Vec<u8>>(&SSE_STREAMS, &which), &edits);
        prop_assert_eq!(sse_events(&stream, &cuts, None), sse_events(&stream, &[], None));
    }

    /// Arbitrary bytes (invalid UTF-8, lone `\r`, colons) never panic, and
    /// a reset parser reads a real stream as a fresh one would.
    #[test]
    fn sse_arbitrary_bytes_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4096),
            structural_bytes(b"data:event: \r\n[DONE]{}\"", 4096),
        ],
        cuts in prop::collection::vec(any::<Index>(), 0..16),
        asked in prop::option::of("[a-z-]{0,12}"),
    ) {
        let _quiet = quiet();
        let split = sse_events(&bytes, &cuts, asked.as_deref());
        prop_assert_eq!(&split, &sse_events(&bytes, &[], asked.as_deref()));
        let mut parser = Parser::default();
        parser.feed(&bytes, |_| {});
        parser.reset();
        prop_assert!(!parser.has_partial());
        let mut after_reset = Vec::new();
        parser.feed(&SSE_STREAMS[0], |e| after_reset.push((e.name.to_vec(), e.data.to_vec())));
        let fresh: Vec<_> = sse_events(&SSE_STREAMS[0], &[], None)
            .0
            .into_iter()
            .map(|(name, data, _)| (name, data))
            .collect();
        prop_assert_eq!(after_reset, fresh);
    }

    /// Classification of arbitrary event data (valid-looking JSON included).
    #[test]
    fn sse_classify_arbitrary_data_never_panics(
        name in prop::collection::vec(any::<u8>(), 0..8),
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            structural_bytes(b"{}[]\":,choices delta content usage model error 0123", 512),
        ],
        asked in prop::option::of("[a-z-]{0,12}"),
    ) {
        let _quiet = quiet();
        let _ = sse::classify(&sse::Event { name: &name, data: &data }, asked.as_deref());
    }
}

proptest! {
    #![proptest_config(config(8))]

    /// A huge line without a newline, fed in pieces, is held and then
    /// framed correctly once the blank line arrives.
    #[test]
    fn sse_huge_line_never_panics(
        byte in any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
        len in 65_536usize..400_000,
        piece in 1usize..65_536,
    ) {
        let _quiet = quiet();
        let mut parser = Parser::default();
        let mut seen = 0;
        let mut line = b"data: ".to_vec();
        line.resize(len, byte);
        for chunk in line.chunks(piece) {
            parser.feed(chunk, |_| seen += 1);
        }
        prop_assert_eq!(seen, 0);
        parser.feed(b"\n\n", |_| seen += 1);
        prop_assert!(seen <= 1);
        prop_assert!(!parser.has_partial());
    }
}

// ---------------------------------------------------------------- exposition

#[test]
fn exposition_fixtures_parse() {
    for (name, bytes) in METRICS.iter() {
        let text = std::str::from_utf8(bytes).unwrap();
        let parsed = exposition::parse(text);
        if name.contains("metric-families") {
            continue; // a list of family names and types, not an exposition
        }
        if name.contains("-bad-") {
            assert!(parsed.is_err(), "{name} is a bad-input fixture");
        } else {
            assert!(parsed.is_ok(), "{name}: {:?}", parsed.err());
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Mutated captures (byte edits, truncation, duplicated lines, odd
    /// label values and numbers) give Ok or Err, never a panic.
    #[test]
    fn exposition_mutated_fixtures_never_panic(which in any::<Index>(), edits in edits()) {
        let _quiet = quiet();
        let (_, base) = pick(&METRICS, &which);
        let text = String::from_utf8_lossy(&mutate(base, &edits)).into_owned();
        if let Err(e) = exposition::parse(&text) {
            prop_assert!(e.starts_with("line "), "{}", e);
        }
    }

    #[test]
    fn exposition_arbitrary_text_never_panics(
        text in prop_oneof![
            any::<String>(),
            "[a-z_:{}=\",# \\\\\n0-9.eE+-]{0,512}",
            "(# (EOF|TYPE|HELP) )?[a-z_]{1,8}(\\{([a-z]{1,4}=\"[^\"]{0,8}\",?){0,3}\\})? [-+0-9.eEinfINFa]{0,12}( [0-9-]{0,14})?( # \\{[^}]{0,10}\\} [0-9.]{0,6})?\n{0,2}",
        ],
    ) {
        let _quiet = quiet();
        let _ = exposition::parse(&text);
    }
}

// --------------------------------------------------------- plans, thresholds

#[test]
fn builtin_plans_resolve() {
    for (name, bytes) in PLANS.iter() {
        let source = std::str::from_utf8(bytes).unwrap();
        if let Err(e) = resolve_source(name, source, None, &Overrides::default()) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn threshold_examples_parse() {
    for expression in THRESHOLDS {
        let parsed = threshold::parse(expression).unwrap_or_else(|e| panic!("{e}"));
        let _ = (parsed.target_display(), parsed.display_value(1.0));
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// A mutated built-in plan resolves or fails with a displayable error.
    #[test]
    fn mutated_plans_never_panic(which in any::<Index>(), edits in edits()) {
        let _quiet = quiet();
        let (name, base) = pick(&PLANS, &which);
        let source = String::from_utf8_lossy(&mutate(base, &edits)).into_owned();
        if let Err(e) = resolve_source(name, &source, None, &Overrides::default()) {
            let _ = e.to_string();
            let _ = format!("{e:?}");
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn threshold_arbitrary_text_never_panics(
        text in prop_oneof![
            any::<String>(),
            "[a-z_0-9()<>=!%. \u{b5}\u{e9}-]{0,40}",
        ],
    ) {
        let _quiet = quiet();
        if let Ok(t) = threshold::parse(&text) {
            let _ = (t.to_string(), t.target_display());
        }
    }

    /// Valid expressions with mutated bytes or extreme bounds.
    #[test]
    fn threshold_mutated_examples_never_panic(
        which in any::<Index>(),
        edits in edits(),
        value in prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY)],
    ) {
        let _quiet = quiet();
        let base = pick(THRESHOLDS, &which);
        let text = String::from_utf8_lossy(&mutate(base.as_bytes(), &edits)).into_owned();
        if let Ok(t) = threshold::parse(&text) {
            let _ = (t.to_string(), t.target_display(), t.display_value(value));
        }
    }
}

// ---------------------------------------------------------------- OTLP decode

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Decompresses and decodes as the receiver does; spans of a decoded body
/// are extracted too.
fn otlp_decode(format: Format, encoding: Option<&str>, body: &[u8]) {
    let decoded = decode::decompress(encoding, body).and_then(|raw| decode::parse(format, &raw));
    match decoded {
        Ok(request) => {
            let _ = decode::spans(request, 8);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

#[test]
fn otlp_fixtures_decode_in_both_encodings() {
    for (json, protobuf) in OTLP_JSON.iter().zip(OTLP_PROTOBUF.iter()) {
        let from_json = decode::spans(decode::parse(Format::Json, json).unwrap(), 8);
        let from_protobuf = decode::spans(decode::parse(Format::Protobuf, protobuf).unwrap(), 8);
        assert!(!from_json.0.is_empty());
        assert_eq!(from_json, from_protobuf);
        let unzipped = decode::decompress(Some("gzip"), &gzip(protobuf)).unwrap();
        assert_eq!(&unzipped, protobuf);
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn otlp_mutated_json_never_panics(which in any::<Index>(), edits in edits()) {
        let _quiet = quiet();
        otlp_decode(Format::Json, None, &mutate(pick::<Vec<u8>>(&OTLP_JSON, &which), &edits));
    }

    #[test]
    fn otlp_mutated_protobuf_never_panics(
        which in any::<Index>(),
        edits in edits(),
        zipped in any::<bool>(),
    ) {
        let _quiet = quiet();
        let body = mutate(pick::<Vec<u8>>(&OTLP_PROTOBUF, &which), &edits);
        match zipped {
            true => otlp_decode(Format::Protobuf, Some("gzip"), &gzip(&body)),
            false => otlp_decode(Format::Protobuf, None, &body),
        }
    }

    /// A mutated gzip stream: a bad body, never a panic.
    #[test]
    fn otlp_mutated_gzip_never_panics(which in any::<Index>(), edits in edits()) {
        let _quiet = quiet();
        let body = mutate(&gzip(pick::<Vec<u8>>(&OTLP_PROTOBUF, &which)), &edits);
        otlp_decode(Format::Protobuf, Some("gzip"), &body);
    }

    #[test]
    fn otlp_arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        encoding in prop::option::of(prop::sample::select(&["gzip", "identity", "", "br", " GZIP "][..])),
    ) {
        let _quiet = quiet();
        otlp_decode(Format::Protobuf, encoding, &bytes);
        otlp_decode(Format::Json, encoding, &bytes);
        let _ = Format::from_content_type(&String::from_utf8_lossy(&bytes));
    }
}

// ----------------------------------------------------------- Jaeger and Tempo

#[test]
fn jaeger_fixtures_parse_with_their_reader() {
    for (name, bytes) in JAEGER.iter() {
        if name.starts_with("otlp") || name == "v3-GetTrace.json" || name == "v3-FindTraces.json" {
            let parsed = otlp_json(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!parsed.spans.is_empty(), "{name}");
        } else if name.starts_with("v1") {
            let parsed = jaeger_v1(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!parsed.spans.is_empty(), "{name}");
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Any mutated Jaeger answer, given to either reader.
    #[test]
    fn jaeger_mutated_answers_never_panic(which in any::<Index>(), edits in edits()) {
        let _quiet = quiet();
        let (_, base) = pick(&JAEGER, &which);
        let body = mutate(base, &edits);
        if let Err(e) = otlp_json(&body) {
            let _ = e.to_string();
        }
        if let Err(e) = jaeger_v1(&body) {
            let _ = e.to_string();
        }
    }

    #[test]
    fn jaeger_arbitrary_bytes_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4096),
            structural_bytes(b"{}[]\":,0123456789abcdef traceID spanID resourceSpans data", 2048),
        ],
    ) {
        let _quiet = quiet();
        let _ = otlp_json(&bytes);
        let _ = jaeger_v1(&bytes);
    }
}

// ------------------------------------------------------------------ trace ids

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn trace_ids_arbitrary_text_never_panics(
        text in prop_oneof![
            any::<String>(),
            "[0-9a-fA-F\\-+/= \u{e9}]{0,70}",
            "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[ -~]{0,8})?",
        ],
    ) {
        let _quiet = quiet();
        if let Some(parsed) = TraceParent::parse(&text) {
            prop_assert_ne!(parsed.trace_id, 0);
            prop_assert_ne!(parsed.parent_span_id, 0);
            prop_assert_eq!(TraceParent::parse(&parsed.header()), Some(parsed));
        }
        prop_assert_ne!(parse_trace_id(&text), Some(0));
        prop_assert_ne!(parse_span_id(&text), Some(0));
    }

    #[test]
    fn traceparent_round_trips(id in 1..=u128::MAX) {
        let _quiet = quiet();
        let header = traceparent(id);
        let parsed = TraceParent::parse(&header);
        prop_assert_eq!(
            parsed,
            Some(TraceParent { trace_id: id, parent_span_id: client_span_id(id), sampled: true })
        );
        prop_assert_eq!(parse_trace_id(&trace_id_hex(id)), Some(id));
        prop_assert_eq!(parse_trace_id(&format!("{id:X}")), Some(id));
        let base64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(id.to_be_bytes())
        };
        prop_assert_eq!(parse_trace_id(&base64), Some(id));
    }

    #[test]
    fn span_ids_round_trip(id in 1..=u64::MAX) {
        let _quiet = quiet();
        prop_assert_eq!(parse_span_id(&format!("{id:016x}")), Some(id));
        prop_assert_eq!(parse_span_id(&format!("{id:x}")), Some(id));
    }
}
