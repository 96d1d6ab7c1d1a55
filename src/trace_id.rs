//! Trace ids as numbers, shared by the load engine, the trace-coverage
//! check and the simulator: drawing them for requests, writing the W3C
//! `traceparent` header without a per-request allocation, parsing an
//! incoming one ([`TraceParent`]), and reading ids back from whatever a
//! backend prints (16- or 32-char hex with or without leading zeros, or
//! base64 where a gRPC gateway encoded the bytes).
//!
//! Ground floor: imports nothing of the project.
//!
//! Ids are compared as `u128` (trace) and `u64` (span) everywhere, never as
//! text: Jaeger v1 prints 16 hex chars when a trace id's top half is zero.

use std::fmt;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use rand::Rng;

/// `00-` + 32 hex + `-` + 16 hex + `-01`.
pub const TRACEPARENT_LEN: usize = 55;

/// Bytes reserved at a time for header values: one allocation serves
/// about 1,000 requests.
const ARENA_BYTES: usize = TRACEPARENT_LEN * 1024;

/// The span id infercheck puts in a request's `traceparent`: its own
/// client span, derived from the trace id so that nothing but the trace id
/// needs to travel with the request's outcome. Never zero.
pub fn client_span_id(trace_id: u128) -> u64 {
    let folded = (trace_id as u64) ^ ((trace_id >> 64) as u64).rotate_left(32);
    splitmix64(folded ^ 0x696e_6665_7263_6865).max(1)
}

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit hash.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fresh random trace id (never zero, the invalid id).
pub fn random_trace_id(rng: &mut impl Rng) -> u128 {
    rng.random::<u128>().max(1)
}

/// Writes `00-<trace id>-<client span id>-01` (sampled) into `out`.
pub fn write_traceparent(trace_id: u128, out: &mut [u8; TRACEPARENT_LEN]) {
    out[..3].copy_from_slice(b"00-");
    write_hex(trace_id, &mut out[3..35]);
    out[35] = b'-';
    write_hex(u128::from(client_span_id(trace_id)), &mut out[36..52]);
    out[52..].copy_from_slice(b"-01");
}

/// The header value as text (tests, logs).
pub fn traceparent(trace_id: u128) -> String {
    let mut buf = [0u8; TRACEPARENT_LEN];
    write_traceparent(trace_id, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Lowercase hex of the low `out.len() * 4` bits of `value`, zero-padded.
fn write_hex(mut value: u128, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// A parsed W3C `traceparent` header
/// (`00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    /// The span the receiver's span becomes a child of.
    pub parent_span_id: u64,
    /// Flags bit 0: the caller records this trace.
    pub sampled: bool,
}

impl TraceParent {
    /// Parses a `traceparent` value; `None` when malformed, when either id
    /// is all zeros, or for the forbidden version `ff`. Later versions may
    /// append fields after the flags (W3C Trace Context, "versioning").
    pub fn parse(header: &str) -> Option<TraceParent> {
        let header = header.trim();
        let version = header.get(0..2).and_then(hex_u8)?;
        if version == 0xff || header.get(2..3) != Some("-") {
            return None;
        }
        let rest = &header[3..];
        // 32 + 1 + 16 + 1 + 2 characters.
        let fixed = rest.get(..52)?;
        let tail = &rest[52..];
        if (version == 0 && !tail.is_empty()) || (!tail.is_empty() && !tail.starts_with('-')) {
            return None;
        }
        let mut parts = fixed.split('-');
        let trace_id = parts.next().filter(|p| p.len() == 32).and_then(hex_u128)?;
        let parent_span_id = parts.next().filter(|p| p.len() == 16).and_then(hex_u64)?;
        let flags = parts.next().filter(|p| p.len() == 2).and_then(hex_u8)?;
        if trace_id == 0 || parent_span_id == 0 {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// Formats the header value (version 00).
    pub fn header(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = u8::from(self.sampled);
        write!(
            f,
            "00-{:032x}-{:016x}-{flags:02x}",
            self.trace_id, self.parent_span_id
        )
    }
}

/// Lowercase hex only: W3C forbids uppercase in `traceparent`.
fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex_u128(text: &str) -> Option<u128> {
    is_lower_hex(text)
        .then(|| u128::from_str_radix(text, 16).ok())
        .flatten()
}

fn hex_u64(text: &str) -> Option<u64> {
    is_lower_hex(text)
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
}

fn hex_u8(text: &str) -> Option<u8> {
    is_lower_hex(text)
        .then(|| u8::from_str_radix(text, 16).ok())
        .flatten()
}

/// `traceparent` header values for one worker, cut from a shared buffer:
/// each value is a slice of a larger allocation, so the hot path does not
/// allocate per request (one allocation per [`ARENA_BYTES`]).
#[derive(Debug, Default)]
pub struct TraceHeaders {
    arena: BytesMut,
}

impl TraceHeaders {
    pub fn value(&mut self, trace_id: u128) -> HeaderValue {
        let mut buf = [0u8; TRACEPARENT_LEN];
        write_traceparent(trace_id, &mut buf);
        if self.arena.capacity() < TRACEPARENT_LEN {
            self.arena = BytesMut::with_capacity(ARENA_BYTES);
        }
        self.arena.extend_from_slice(&buf);
        let bytes: Bytes = self.arena.split_to(TRACEPARENT_LEN).freeze();
        HeaderValue::from_maybe_shared(bytes).expect("a traceparent is visible ASCII")
    }
}

/// A worker's source of trace contexts: decides which requests carry a
/// `traceparent` (a share `fraction` of them) and draws their fresh random
/// ids from the OS-seeded generator it owns (never from the plan's seed:
/// two runs must not reuse ids in a shared backend). One RNG call per
/// request, two when sampling.
#[derive(Debug)]
pub struct RequestTracer {
    fraction: f64,
    rng: rand::rngs::SmallRng,
    headers: TraceHeaders,
}

impl RequestTracer {
    pub fn new(fraction: f64) -> RequestTracer {
        RequestTracer {
            fraction,
            rng: rand::SeedableRng::from_os_rng(),
            headers: TraceHeaders::default(),
        }
    }

    /// The next request's trace id and header value, or `None` when it is
    /// not among the traced share.
    pub fn draw(&mut self) -> Option<(u128, HeaderValue)> {
        if self.fraction < 1.0 && self.rng.random::<f64>() >= self.fraction {
            return None;
        }
        let trace_id = random_trace_id(&mut self.rng);
        Some((trace_id, self.headers.value(trace_id)))
    }
}

/// Reads a trace id: 1–32 hex digits (any case, leading zeros optional,
/// so Jaeger v1's 16-char form reads as the same number), or the base64
/// of 16 bytes. `None` for anything else, and for zero.
pub fn parse_trace_id(text: &str) -> Option<u128> {
    let text = text.trim();
    let id = match parse_hex(text, 32) {
        Some(id) => id,
        None => u128::from_be_bytes(base64_bytes::<16>(text)?),
    };
    (id != 0).then_some(id)
}

/// Reads a span id: 1–16 hex digits, or the base64 of 8 bytes; `None` for
/// anything else and for zero.
pub fn parse_span_id(text: &str) -> Option<u64> {
    let text = text.trim();
    let id = match parse_hex(text, 16) {
        Some(id) => id as u64,
        None => u64::from_be_bytes(base64_bytes::<8>(text)?),
    };
    (id != 0).then_some(id)
}

fn parse_hex(text: &str, max_digits: usize) -> Option<u128> {
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

fn base64_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
        .ok()?;
    bytes.try_into().ok()
}

/// The 32-char lowercase hex form backends take in URLs.
pub fn trace_id_hex(trace_id: u128) -> String {
    format!("{trace_id:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ids_read_as_numbers_whatever_their_spelling() {
        let cases: &[(&str, Option<u128>)] = &[
            ("00000000000000000000000000000001", Some(1)),
            ("0000000000000001", Some(1)),
            ("1", Some(1)),
            ("00000000000000ff", Some(255)),
            (
                "C620759E5D60FAFB8EE0922B30E06BC6",
                Some(0xc620759e5d60fafb8ee0922b30e06bc6),
            ),
            ("AAAAAAAAAAAAAAAAAAAAAQ==", Some(1)), // base64 of 15 zero bytes and 0x01
            ("00000000000000000000000000000000", None),
            ("000000000000000000000000000000001", None), // 33 digits
            ("xyz", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_trace_id(text), *want, "{text}");
        }
        assert_eq!(parse_span_id("0000000000000002"), Some(2));
        assert_eq!(parse_span_id("AAAAAAAAAAI="), Some(2));
        assert_eq!(parse_span_id("00000000000000000"), None);
        assert_eq!(parse_span_id("0"), None);
    }

    #[test]
    fn traceparent_is_w3c_version_00_and_sampled() {
        let id = 0x0000_0000_0000_0000_0000_0000_0000_00ab;
        let header = traceparent(id);
        assert_eq!(header.len(), TRACEPARENT_LEN);
        assert!(header.starts_with("00-000000000000000000000000000000ab-"));
        assert!(header.ends_with("-01"));
        let span = &header[36..52];
        assert_eq!(parse_span_id(span), Some(client_span_id(id)));
        let parsed = TraceParent::parse(&header).unwrap();
        assert_eq!((parsed.trace_id, parsed.sampled), (id, true));
    }

    #[test]
    fn header_values_share_one_buffer_and_stay_intact() {
        let mut headers = TraceHeaders::default();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let ids: Vec<u128> = (0..3000).map(|_| random_trace_id(&mut rng)).collect();
        let values: Vec<HeaderValue> = ids.iter().map(|id| headers.value(*id)).collect();
        for (id, value) in ids.iter().zip(&values) {
            assert_eq!(value.to_str().unwrap(), traceparent(*id));
        }
    }

    #[test]
    fn a_tracer_traces_its_share_of_requests() {
        let mut all = RequestTracer::new(1.0);
        assert!((0..100).all(|_| all.draw().is_some()));
        let mut some = RequestTracer::new(0.25);
        let traced = (0..10_000).filter(|_| some.draw().is_some()).count();
        assert!((2200..=2800).contains(&traced), "{traced}");
    }

    #[test]
    fn client_span_ids_are_stable_and_nonzero() {
        assert_eq!(client_span_id(7), client_span_id(7));
        assert_ne!(client_span_id(7), client_span_id(8));
        assert_ne!(client_span_id(0), 0);
        assert_eq!(trace_id_hex(1), "00000000000000000000000000000001");
    }
}
