//! permessage-deflate (RFC 7692) data paths over a connection negotiated with a
//! real in-memory handshake: every window size with and without context
//! takeover, both directions, whole and streaming delivery; fragmented
//! compressed messages; `Compress::Never` and the threshold; compression
//! bombs against the message limit (with a counting allocator); and the
//! protocol errors of compressed frames.
#![cfg(feature = "deflate")]

mod common;
use common::*;
#[path = "common/counting.rs"]
mod counting;
use counting::peak_heap_growth;

use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::Index;
use wsmachine::deflate::{Compressor, DEFAULT_SHARED_WINDOW_BITS, Decompressor, DeflateConfig};
use wsmachine::frame::OpCode;
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::{
    CloseCode, Compress, Config, Connection, Error, Event, MessageKind, MessageMode, OwnedEvent,
    ProtocolError, SeededEntropy,
};

const MIB: usize = 1 << 20;

// ----- connecting with a handshake -----

fn deflate(window: u8, no_takeover: bool) -> DeflateConfig {
    let mut d = DeflateConfig::default();
    d.server_max_window_bits = window;
    d.client_max_window_bits = window;
    d.server_no_context_takeover = no_takeover;
    d.client_no_context_takeover = no_takeover;
    d
}

/// The receive buffer size in streaming mode: odd, so that inflated pieces
/// split code points.
const STREAM_READ: usize = 4093;

fn config(deflate: Option<DeflateConfig>, mode: MessageMode) -> Config {
    let mut c = Config::default();
    c.deflate = deflate;
    c.mode = mode;
    if mode == MessageMode::Streaming {
        c.read_buffer_size = STREAM_READ;
    }
    c
}

/// The `Sec-WebSocket-Extensions` response a server on the default memory
/// (shared, 12-bit windows) should send to the default client offer
/// (`permessage-deflate; client_max_window_bits`): it asks a client that
/// lets it choose for a window of 12 bits at most.
fn expected_extensions(window: u8, no_takeover: bool) -> String {
    expected_response(window, window.min(DEFAULT_SHARED_WINDOW_BITS), no_takeover)
}

/// The response that limits the server's window to `window` and the
/// client's to `client`.
fn expected_response(window: u8, client: u8, no_takeover: bool) -> String {
    let mut s = String::from("permessage-deflate");
    if no_takeover {
        s.push_str("; server_no_context_takeover; client_no_context_takeover");
    }
    if window < 15 {
        write!(s, "; server_max_window_bits={window}").unwrap();
    }
    if client < 15 {
        write!(s, "; client_max_window_bits={client}").unwrap();
    }
    s
}

/// A client and a server after an in-memory opening handshake: (client,
/// server, the extensions both report in `Event::Open`).
fn connect(client: Config, server: Config, seed: u64) -> (Connection, Connection, Option<String>) {
    let request = ClientRequest::new("ws://a/").unwrap();
    let mut client = Connection::client(&request, client, SeededEntropy::new(seed)).unwrap();
    let mut server = Connection::server(server);
    server.handle_read(&take_transmit(&mut client));
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(Accept::new()).unwrap();
    let at_server = match server.poll_event() {
        Some(Event::Open(n)) => n.extensions.clone(),
        other => panic!("server: expected Open, got {other:?}"),
    };
    assert!(server.poll_event().is_none());
    client.handle_read(&take_transmit(&mut server));
    let at_client = match client.poll_event() {
        Some(Event::Open(n)) => n.extensions.clone(),
        other => panic!("client: expected Open, got {other:?}"),
    };
    assert!(client.poll_event().is_none());
    assert_eq!(at_client, at_server, "both ends report the same extensions");
    (client, server, at_server)
}

/// A pair negotiated with `window` bits both ways and the takeover flags,
/// each side in its own mode, each with dedicated zlib states (so that each
/// compresses with the whole window agreed).
fn deflate_pair(
    window: u8,
    no_takeover: bool,
    client_mode: MessageMode,
    server_mode: MessageMode,
) -> (Connection, Connection) {
    let dedicated = |mut d: DeflateConfig| {
        d.memory = DeflateConfig::dedicated(8).memory;
        d
    };
    let (client, server, extensions) = connect(
        config(Some(dedicated(DeflateConfig::default())), client_mode),
        config(Some(dedicated(deflate(window, no_takeover))), server_mode),
        u64::from(window) * 31 + u64::from(no_takeover),
    );
    assert_eq!(
        extensions.as_deref(),
        Some(&*expected_response(window, window, no_takeover)),
        "negotiated extensions for window {window}, no_takeover {no_takeover}"
    );
    (client, server)
}

// ----- test data -----

fn lcg(x: &mut u32) -> u32 {
    *x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
    *x >> 16
}

/// Compressible JSON-like text of exactly `len` bytes.
fn json(len: usize, seed: u32) -> String {
    let mut x = seed;
    let mut s = String::from("[");
    let mut i = 0u32;
    while s.len() < len {
        let r = lcg(&mut x);
        write!(
            s,
            "{{\"id\":{i},\"name\":\"user{}\",\"active\":{},\"score\":{}}},",
            i % 50,
            r & 1 == 0,
            r % 10
        )
        .unwrap();
        i += 1;
    }
    s.truncate(len.saturating_sub(1));
    if len > 0 {
        s.push(']');
    }
    s
}

/// Incompressible bytes (splitmix64, as `SeededEntropy` makes them).
fn random_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut out = vec![0; len];
    wsmachine::Entropy::fill(
        &mut SeededEntropy::new(u64::from(seed) << 32 | 0x5eed),
        &mut out,
    );
    out
}

/// Text of 1- to 4-byte code points in a pseudo-random order, about `len`
/// bytes: any cut through it, by a read, a fragment or an inflated piece,
/// is likely to split a code point.
fn multibyte(len: usize, seed: u32) -> String {
    let chars = ['a', 'é', '€', '😀', '中', 'ß', '𝄞', ' ', 'ж'];
    let mut x = seed;
    let mut s = String::new();
    while s.len() < len {
        s.push(chars[lcg(&mut x) as usize % chars.len()]);
    }
    s
}

// ----- receiving -----

/// Feeds `wire` to `conn` in reads of at most `read` bytes (the first few
/// reads tiny), draining events after each.
fn deliver(conn: &mut Connection, wire: &[u8], read: usize) -> Vec<OwnedEvent> {
    let mut cuts = vec![1, 2, 3, 7];
    let mut at = 7;
    while at < wire.len() {
        at += read;
        cuts.push(at);
    }
    feed(conn, wire, &cuts)
}

/// Messages out of `events`, which must be data only: whole events in
/// whole-message mode, pieces (checked for kind and first/last flags, and
/// when `max_piece` is given, their size) in streaming mode.
fn messages(
    events: &[OwnedEvent],
    mode: MessageMode,
    max_piece: Option<usize>,
) -> Vec<(MessageKind, Vec<u8>)> {
    let mut out = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match (event, mode) {
            (OwnedEvent::Text(t), MessageMode::Whole) => {
                out.push((MessageKind::Text, t.clone().into_bytes()));
            }
            (OwnedEvent::Binary(b), MessageMode::Whole) => {
                out.push((MessageKind::Binary, b.clone()))
            }
            (
                OwnedEvent::Fragment {
                    kind,
                    data,
                    first,
                    last,
                },
                MessageMode::Streaming,
            ) => {
                assert_eq!(*first, current.is_none(), "first flag");
                if let Some(max) = max_piece {
                    assert!(data.len() <= max, "piece of {} over {max}", data.len());
                }
                let (k, buf) = current.get_or_insert((*kind, Vec::new()));
                assert_eq!(k, kind, "kind changed mid-message");
                buf.extend_from_slice(data);
                if *last {
                    let (kind, buf) = current.take().unwrap();
                    if kind == MessageKind::Text {
                        assert!(std::str::from_utf8(&buf).is_ok(), "streamed text is UTF-8");
                    }
                    out.push((kind, buf));
                }
            }
            (other, _) => panic!("unexpected event in {mode:?} mode: {}", brief(other)),
        }
    }
    assert!(current.is_none(), "a streamed message was left unfinished");
    out
}

/// An event described without its (possibly large) data.
fn brief(event: &OwnedEvent) -> String {
    match event {
        OwnedEvent::Text(t) => format!("Text({} bytes)", t.len()),
        OwnedEvent::Binary(b) => format!("Binary({} bytes)", b.len()),
        OwnedEvent::Fragment {
            kind,
            data,
            first,
            last,
        } => format!(
            "Fragment({kind:?}, {} bytes, first {first}, last {last})",
            data.len()
        ),
        OwnedEvent::Closed(info) => format!("Closed({:?}, {:?})", info.code(), info.error()),
        other => format!("{other:?}"),
    }
}

fn modes() -> [MessageMode; 2] {
    [MessageMode::Whole, MessageMode::Streaming]
}

// ----- 1. the matrix -----

#[test]
fn client_to_server_every_window_takeover_and_mode() {
    matrix(true);
}

#[test]
fn server_to_client_every_window_takeover_and_mode() {
    matrix(false);
}

/// Sends each message from one end to the other for every window and
/// takeover setting, and both receive modes.
fn matrix(client_sends: bool) {
    let json64 = json(64 << 10, 1);
    let snippet = json(8 << 10, 2);
    let random = random_bytes(200 << 10, 3);
    let utf8 = multibyte(40 << 10, 4);
    let short = format!("{}a", "é".repeat(62));
    assert_eq!(short.len(), 125);

    for window in 8..=15u8 {
        for no_takeover in [false, true] {
            for mode in modes() {
                let what = format!(
                    "client_sends {client_sends}, window {window}, no_takeover {no_takeover}, {mode:?}"
                );
                // The mode is the receiver's.
                let (cm, sm) = if client_sends {
                    (MessageMode::Whole, mode)
                } else {
                    (mode, MessageMode::Whole)
                };
                let (mut client, mut server) = deflate_pair(window, no_takeover, cm, sm);
                let (tx, rx) = if client_sends {
                    (&mut client, &mut server)
                } else {
                    (&mut server, &mut client)
                };
                // A window probe: a random block repeated at a distance of
                // twice the window cannot be matched; one repeated at a
                // quarter of it can.
                let far_block = random_bytes(2 << window, u32::from(window));
                let far = [&far_block[..], &far_block[..]].concat();
                let near_block = random_bytes(1 << (window - 2), 7);
                let near = [&near_block[..], &near_block[..]].concat();
                let script: Vec<(MessageKind, &[u8])> = vec![
                    (MessageKind::Text, b""),
                    (MessageKind::Binary, b"\x42"),
                    (MessageKind::Text, short.as_bytes()),
                    (MessageKind::Text, json64.as_bytes()),
                    (MessageKind::Binary, &random),
                    (MessageKind::Text, json64.as_bytes()),
                    (MessageKind::Text, snippet.as_bytes()),
                    (MessageKind::Text, snippet.as_bytes()),
                    (MessageKind::Text, utf8.as_bytes()),
                    (MessageKind::Binary, &far),
                    (MessageKind::Binary, &near),
                ];
                let mut payloads = Vec::new();
                for (i, (kind, data)) in script.iter().enumerate() {
                    tx.send_message(*kind, data, Compress::Auto).unwrap();
                    let wire = take_transmit(tx);
                    let frames = decode_all(&wire);
                    assert_eq!(frames.len(), 1, "{what}: message {i} in one frame");
                    let (header, payload) = &frames[0];
                    // Under the 32-byte threshold: sent as is; from it: compressed.
                    assert_eq!(
                        header.rsv1,
                        data.len() >= 32,
                        "{what}: message {i} ({} bytes) RSV1",
                        data.len()
                    );
                    assert_eq!(wire[0] & 0x40 != 0, header.rsv1);
                    if i == 3 {
                        assert!(
                            wire.len() < data.len() / 4,
                            "{what}: 64 KiB JSON went out in {} bytes",
                            wire.len()
                        );
                    }
                    payloads.push(payload.clone());
                    let events = deliver(rx, &wire, 7919);
                    let read = rx.config().read_buffer_size;
                    let max_piece = header.rsv1.then_some(read);
                    let got = messages(&events, mode, max_piece);
                    assert_eq!(got.len(), 1, "{what}: message {i} arrives once");
                    assert_eq!(got[0].0, *kind, "{what}: message {i} kind");
                    assert!(
                        got[0].1 == *data,
                        "{what}: message {i} arrived changed: {} bytes for {}",
                        got[0].1.len(),
                        data.len()
                    );
                    assert!(
                        rx.poll_transmit().is_none(),
                        "{what}: the receiver has nothing to say"
                    );
                }
                // Context takeover: the repeated snippet refers back to the
                // first copy when the window reaches it (8 KiB + the
                // 262-byte margin fits 14 bits and over); without
                // takeover each message compresses from scratch, alike.
                let (first, second) = (&payloads[6], &payloads[7]);
                if no_takeover {
                    assert!(first == second, "{what}: no takeover: the same bytes twice");
                } else if window >= 14 {
                    // Level 1 (the default) searches short match chains:
                    // the repeat shrinks by 2.5x rather than 4x at level 6.
                    assert!(
                        second.len() * 2 < first.len(),
                        "{what}: takeover: repeat in {} bytes, first {}",
                        second.len(),
                        first.len()
                    );
                }
                // The window is honoured.
                let (far_out, near_out) = (payloads[9].len(), payloads[10].len());
                assert!(
                    far_out >= far.len() * 99 / 100,
                    "{what}: a repeat beyond the window matched: {far_out} bytes for {}",
                    far.len()
                );
                assert!(
                    near_out < near.len() * 3 / 4,
                    "{what}: a repeat within the window did not match: {near_out} bytes for {}",
                    near.len()
                );
            }
        }
    }
}

// ----- 2. fragmented compressed messages -----

/// The first header byte of each frame in `wire` (FIN, RSV1-3, opcode), walked
/// by hand rather than with the crate's decoder.
fn first_bytes(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        out.push(wire[at]);
        let masked = wire[at + 1] & 0x80 != 0;
        let (len, ext) = match wire[at + 1] & 0x7f {
            126 => (
                u64::from(u16::from_be_bytes([wire[at + 2], wire[at + 3]])),
                2,
            ),
            127 => (
                u64::from_be_bytes(wire[at + 2..at + 10].try_into().unwrap()),
                8,
            ),
            n => (u64::from(n), 0),
        };
        at += 2 + ext + if masked { 4 } else { 0 } + len as usize;
    }
    assert_eq!(at, wire.len(), "the output ends on a frame boundary");
    out
}

#[test]
fn fragmented_compressed_messages_with_pings_between() {
    let text = multibyte(30_000, 9);
    let bytes = text.as_bytes();
    // Fragment boundaries through code points, an empty fragment in the
    // middle, and an empty last fragment.
    let cuts = [0, 1, 5, 5, 4_000, 17_001, bytes.len(), bytes.len()];
    assert!(
        !text.is_char_boundary(1) || !text.is_char_boundary(5) || !text.is_char_boundary(17_001)
    );
    for client_sends in [true, false] {
        for mode in modes() {
            for no_takeover in [false, true] {
                let what =
                    format!("client_sends {client_sends}, {mode:?}, no_takeover {no_takeover}");
                let (cm, sm) = if client_sends {
                    (MessageMode::Whole, mode)
                } else {
                    (mode, MessageMode::Whole)
                };
                let (mut client, mut server) = deflate_pair(11, no_takeover, cm, sm);
                let (tx, rx) = if client_sends {
                    (&mut client, &mut server)
                } else {
                    (&mut server, &mut client)
                };
                // Twice, so the second message inflates with the first's context.
                for round in 0..2 {
                    let mut wire = Vec::new();
                    for (n, w) in cuts.windows(2).enumerate() {
                        let fin = n == cuts.len() - 2;
                        tx.send_fragment_with(
                            MessageKind::Text,
                            &bytes[w[0]..w[1]],
                            fin,
                            Compress::Auto,
                        )
                        .unwrap();
                        if !fin {
                            tx.send_ping(format!("p{n}").as_bytes()).unwrap();
                        }
                        wire.extend(take_transmit(tx));
                    }
                    let frames = decode_all(&wire);
                    let data: Vec<_> = frames
                        .iter()
                        .filter(|(h, _)| !h.opcode.is_control())
                        .collect();
                    assert_eq!(data.len(), cuts.len() - 1, "{what}");
                    assert_eq!(data[0].0.opcode, OpCode::TEXT);
                    assert!(data[0].0.rsv1, "{what}: RSV1 on the first frame");
                    for (h, _) in &data[1..] {
                        assert_eq!(h.opcode, OpCode::CONTINUATION);
                        assert!(!h.rsv1, "{what}: no RSV1 on a continuation");
                    }
                    // An empty last fragment still ends the DEFLATE data
                    // (RFC 7692 §7.2.3.6: a single 0x00).
                    assert_eq!(
                        data.last().unwrap().1,
                        [0x00],
                        "{what}: empty last fragment"
                    );
                    for (h, _) in frames.iter().filter(|(h, _)| h.opcode.is_control()) {
                        assert_eq!(h.opcode, OpCode::PING);
                        assert!(!h.rsv1, "{what}: no RSV1 on a ping");
                    }
                    // The raw bytes too: RSV1 (0x40) on the first frame's first
                    // byte, not on the continuations' nor the pings'.
                    let mut expected = vec![0x41];
                    for _ in 2..cuts.len() - 1 {
                        expected.extend([0x89, 0x00]);
                    }
                    expected.extend([0x89, 0x80]);
                    assert_eq!(first_bytes(&wire), expected, "{what}: first bytes");
                    let total: usize = data.iter().map(|(_, p)| p.len()).sum();
                    assert!(total < bytes.len(), "{what}: compressed to {total}");

                    let events = deliver(rx, &wire, 1_000);
                    let pings: Vec<_> = events
                        .iter()
                        .filter_map(|e| match e {
                            OwnedEvent::Ping(p) => Some(p.clone()),
                            _ => None,
                        })
                        .collect();
                    let expected: Vec<Vec<u8>> = (0..cuts.len() - 2)
                        .map(|n| format!("p{n}").into_bytes())
                        .collect();
                    assert_eq!(pings, expected, "{what}: pings in order");
                    let rest: Vec<_> = events
                        .iter()
                        .filter(|e| !matches!(e, OwnedEvent::Ping(_)))
                        .cloned()
                        .collect();
                    let max_piece = (mode == MessageMode::Streaming).then_some(STREAM_READ);
                    let got = messages(&rest, mode, max_piece);
                    assert_eq!(got.len(), 1, "{what}");
                    assert_eq!(got[0].0, MessageKind::Text);
                    assert!(
                        got[0].1 == bytes,
                        "{what} round {round}: {} bytes for {}",
                        got[0].1.len(),
                        bytes.len()
                    );
                    // Each ping is answered.
                    let pongs = deliver(tx, &take_transmit(rx), 1 << 16);
                    assert_eq!(pongs.len(), cuts.len() - 2, "{what}: pongs");
                    assert!(pongs.iter().all(|e| matches!(e, OwnedEvent::Pong(_))));
                }
            }
        }
    }
}

#[test]
fn small_fragmented_message_is_compressed_whatever_its_size() {
    let (mut client, mut server) = deflate_pair(15, false, MessageMode::Whole, MessageMode::Whole);
    client
        .send_fragment(MessageKind::Binary, b"a", false)
        .unwrap();
    client
        .send_fragment(MessageKind::Binary, b"b", true)
        .unwrap();
    let wire = take_transmit(&mut client);
    let frames = decode_all(&wire);
    assert_eq!(frames.len(), 2);
    assert!(frames[0].0.rsv1 && !frames[1].0.rsv1);
    let events = deliver(&mut server, &wire, 3);
    assert_eq!(events, vec![OwnedEvent::Binary(b"ab".to_vec())]);
}

#[test]
fn fragmented_message_with_compress_never_goes_uncompressed() {
    for mode in modes() {
        let (mut client, mut server) = deflate_pair(15, false, MessageMode::Whole, mode);
        let data = json(5_000, 3);
        let (a, b) = data.as_bytes().split_at(2_000);
        client
            .send_fragment_with(MessageKind::Text, a, false, Compress::Never)
            .unwrap();
        // Later fragments follow the first one's choice.
        client
            .send_fragment_with(MessageKind::Text, b, true, Compress::Auto)
            .unwrap();
        let wire = take_transmit(&mut client);
        let frames = decode_all(&wire);
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|(h, _)| !h.rsv1), "{mode:?}");
        assert!(frames[0].1 == a && frames[1].1 == b, "sent as is");
        let got = messages(&deliver(&mut server, &wire, 999), mode, None);
        assert_eq!(got.len(), 1);
        assert!(got[0].1 == data.as_bytes());
        // And the next compressed message still inflates.
        client.send_text(&data).unwrap();
        let wire = take_transmit(&mut client);
        assert_eq!(wire[0] & 0x40, 0x40);
        let got = messages(&deliver(&mut server, &wire, 999), mode, None);
        assert!(got.len() == 1 && got[0].1 == data.as_bytes());
    }
}

// ----- 3. any message, any fragmentation, any reads -----

#[derive(Clone)]
struct Sent {
    kind: MessageKind,
    bytes: Vec<u8>,
    /// Fragment boundaries (sorted); none: sent with `send_message`.
    splits: Vec<usize>,
}

/// Lengths only: the payloads can be kilobytes.
impl std::fmt::Debug for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}({} bytes, splits {:?})",
            self.kind,
            self.bytes.len(),
            self.splits
        )
    }
}

fn content() -> impl Strategy<Value = (MessageKind, Vec<u8>)> {
    prop_oneof![
        any::<String>().prop_map(|s| (MessageKind::Text, s.into_bytes())),
        proptest::collection::vec(any::<char>(), 0..4_000).prop_map(|c| (
            MessageKind::Text,
            c.into_iter().collect::<String>().into_bytes()
        )),
        proptest::collection::vec(any::<u8>(), 0..400).prop_map(|b| (MessageKind::Binary, b)),
        (any::<u32>(), 0usize..20_000)
            .prop_map(|(seed, n)| (MessageKind::Binary, random_bytes(n, seed))),
        // Highly compressible: a short unit repeated.
        (
            proptest::collection::vec(any::<char>(), 1..6),
            0usize..20_000
        )
            .prop_map(|(unit, n)| {
                let s: String = unit.iter().cycle().take(n).collect();
                (MessageKind::Text, s.into_bytes())
            }),
        (proptest::collection::vec(any::<u8>(), 1..6), 0usize..20_000).prop_map(|(unit, n)| {
            (
                MessageKind::Binary,
                unit.iter().copied().cycle().take(n).collect(),
            )
        }),
    ]
}

fn sent() -> impl Strategy<Value = Sent> {
    (content(), proptest::collection::vec(any::<Index>(), 0..5)).prop_map(
        |((kind, bytes), picks)| {
            let mut splits: Vec<usize> = picks.iter().map(|i| i.index(bytes.len() + 1)).collect();
            splits.sort_unstable();
            Sent {
                kind,
                bytes,
                splits,
            }
        },
    )
}

fn read_size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), 1usize..64, 1usize..6_000]
}

fn send(tx: &mut Connection, m: &Sent) {
    if m.splits.is_empty() {
        tx.send_message(m.kind, &m.bytes, Compress::Auto).unwrap();
        return;
    }
    let mut at = 0;
    for &cut in &m.splits {
        tx.send_fragment(m.kind, &m.bytes[at..cut], false).unwrap();
        at = cut;
    }
    tx.send_fragment(m.kind, &m.bytes[at..], true).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_messages_fragments_and_reads_round_trip(
        script in proptest::collection::vec(sent(), 1..5),
        client_sends in any::<bool>(),
        window in 8u8..=15,
        no_takeover in any::<bool>(),
        streaming in any::<bool>(),
        level in prop_oneof![Just(0u32), Just(1), Just(6), Just(9)],
        reads in proptest::collection::vec(read_size(), 1..8),
    ) {
        let mode = if streaming { MessageMode::Streaming } else { MessageMode::Whole };
        let (cm, sm) = if client_sends { (MessageMode::Whole, mode) } else { (mode, MessageMode::Whole) };
        let mut client_deflate = DeflateConfig::default();
        client_deflate.level = level;
        let mut server_deflate = deflate(window, no_takeover);
        server_deflate.level = level;
        let (mut client, mut server, extensions) = connect(
            config(Some(client_deflate), cm),
            config(Some(server_deflate), sm),
            u64::from(window),
        );
        prop_assert_eq!(extensions, Some(expected_extensions(window, no_takeover)));
        let (tx, rx) = if client_sends { (&mut client, &mut server) } else { (&mut server, &mut client) };
        for m in &script {
            send(tx, m);
        }
        let wire = take_transmit(tx);
        let mut cuts = Vec::new();
        let mut at = 0;
        for r in reads.iter().cycle() {
            at += r;
            if at >= wire.len() {
                break;
            }
            cuts.push(at);
        }
        let events = feed(rx, &wire, &cuts);
        let got = messages(&events, mode, None);
        prop_assert_eq!(got.len(), script.len());
        for (i, (m, (kind, bytes))) in script.iter().zip(&got).enumerate() {
            prop_assert_eq!(*kind, m.kind, "message {}", i);
            prop_assert!(*bytes == m.bytes, "message {} changed: {} bytes for {}", i, bytes.len(), m.bytes.len());
        }
        prop_assert!(rx.poll_transmit().is_none());
    }
}

// ----- 4. Compress::Never and the threshold -----

#[test]
fn compress_never_sends_as_is_and_arrives_intact() {
    let data = json(10_000, 11);
    for client_sends in [true, false] {
        for mode in modes() {
            let (cm, sm) = if client_sends {
                (MessageMode::Whole, mode)
            } else {
                (mode, MessageMode::Whole)
            };
            let (mut client, mut server) = deflate_pair(12, false, cm, sm);
            let (tx, rx) = if client_sends {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            for (kind, compress) in [
                (MessageKind::Text, Compress::Never),
                (MessageKind::Binary, Compress::Never),
                (MessageKind::Text, Compress::Auto),
                (MessageKind::Binary, Compress::Never),
                (MessageKind::Binary, Compress::Auto),
            ] {
                let what = format!("client_sends {client_sends}, {mode:?}, {kind:?} {compress:?}");
                tx.send_message(kind, data.as_bytes(), compress).unwrap();
                let wire = take_transmit(tx);
                let frames = decode_all(&wire);
                assert_eq!(frames.len(), 1);
                let compressed = compress == Compress::Auto;
                assert_eq!(wire[0] & 0x40 != 0, compressed, "{what}: RSV1");
                assert_eq!(frames[0].0.rsv1, compressed, "{what}");
                if compressed {
                    assert!(frames[0].1.len() < data.len() / 4, "{what}");
                } else {
                    assert!(
                        frames[0].1 == data.as_bytes(),
                        "{what}: the payload is the data"
                    );
                }
                let got = messages(&deliver(rx, &wire, 3_001), mode, None);
                assert_eq!(got.len(), 1, "{what}");
                assert_eq!(got[0].0, kind, "{what}");
                assert!(
                    got[0].1 == data.as_bytes(),
                    "{what}: {} bytes",
                    got[0].1.len()
                );
            }
        }
    }
}

#[test]
fn messages_under_the_threshold_go_uncompressed() {
    let mut client_deflate = DeflateConfig::default();
    client_deflate.threshold = 100;
    let mut server_deflate = DeflateConfig::default();
    server_deflate.threshold = 100;
    let (mut client, mut server, extensions) = connect(
        config(Some(client_deflate), MessageMode::Whole),
        config(Some(server_deflate), MessageMode::Whole),
        3,
    );
    assert_eq!(extensions, Some(expected_extensions(15, false)));
    let text = "a".repeat(200);
    for client_sends in [true, false] {
        let (tx, rx) = if client_sends {
            (&mut client, &mut server)
        } else {
            (&mut server, &mut client)
        };
        for len in [0, 1, 31, 32, 99, 100, 101, 200] {
            tx.send_text(&text[..len]).unwrap();
            let wire = take_transmit(tx);
            assert_eq!(wire[0] & 0x40 != 0, len >= 100, "{len} bytes");
            tx.send_binary(&text.as_bytes()[..len]).unwrap();
            let wire2 = take_transmit(tx);
            assert_eq!(wire2[0] & 0x40 != 0, len >= 100, "{len} bytes");
            if len >= 100 {
                assert!(wire.len() < 60, "{len} bytes went out in {}", wire.len());
            }
            let events = deliver(rx, &[wire, wire2].concat(), 7);
            assert_eq!(
                events,
                vec![
                    OwnedEvent::Text(text[..len].to_owned()),
                    OwnedEvent::Binary(text.as_bytes()[..len].to_vec())
                ]
            );
        }
    }
}

// ----- 5. compression bombs -----

/// A DEFLATE bit writer: values LSB first, Huffman codes MSB first (RFC 1951 §3.1.1).
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u32, len: u32) {
        let reversed = (0..len).fold(0, |r, i| r | ((code >> i) & 1) << (len - 1 - i));
        self.put(reversed, len);
    }

    /// `count` zero bits, in bulk once byte aligned.
    fn zeros(&mut self, mut count: usize) {
        while self.n != 0 && count > 0 {
            self.put(0, 1);
            count -= 1;
        }
        self.out.resize(self.out.len() + count / 8, 0);
        self.put(0, (count % 8) as u32);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A permessage-deflate payload of `repeats / 4` bytes or so that inflates
/// to `1 + 258 * repeats` zeros: one dynamic block whose only codes are the
/// literal 0, end-of-block and length 258, and distance 1, with 1-bit codes
/// for length 258 and distance 1, so each 258 zeros take 2 bits (the best
/// DEFLATE can do, about 1032:1). Then the header of the empty stored block
/// whose `00 00 ff ff` rest was stripped (RFC 7692 §7.2.1). Crafted by hand:
/// compressing a gigabyte of zeros in a debug build would take minutes.
fn bomb(repeats: usize) -> Vec<u8> {
    let mut b = Bits::default();
    b.put(0, 1); // BFINAL: not the last block
    b.put(2, 2); // BTYPE 10: dynamic Huffman
    b.put(286 - 257, 5); // HLIT: literal/length codes 0..=285
    b.put(2 - 1, 5); // HDIST: distance codes 0 and 1
    b.put(18 - 4, 4); // HCLEN: 18 code length code lengths
    // Code length code lengths in RFC 1951 order: symbol 18 (a run of
    // zeros) gets 1 bit, symbols 1 and 2 get 2 bits.
    let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
    for symbol in order {
        let len = match symbol {
            18 => 1,
            1 | 2 => 2,
            _ => 0,
        };
        b.put(len, 3);
    }
    // Canonical codes: 18 -> 0, 1 -> 10, 2 -> 11.
    let len_2 = |b: &mut Bits| b.code(0b11, 2);
    let len_1 = |b: &mut Bits| b.code(0b10, 2);
    let zero_run = |b: &mut Bits, n: u32| {
        b.code(0, 1);
        b.put(n - 11, 7);
    };
    len_2(&mut b); // literal 0: 2 bits
    zero_run(&mut b, 138); // literals 1..=138 unused
    zero_run(&mut b, 117); // literals 139..=255 unused
    len_2(&mut b); // end of block: 2 bits
    zero_run(&mut b, 28); // lengths 257..=284 unused
    len_1(&mut b); // length 258 (285): 1 bit
    len_1(&mut b); // distance code 0 (distance 1): 1 bit
    len_1(&mut b); // distance code 1: 1 bit (completes the code)
    // Literal/length codes: 285 -> 0, literal 0 -> 10, end of block -> 11.
    b.code(0b10, 2); // one zero
    b.zeros(2 * repeats); // (length 258, distance 1) x repeats
    b.code(0b11, 2); // end of block
    b.put(0, 3); // the empty stored block's header (BFINAL 0, BTYPE 00)
    b.finish()
}

#[test]
fn the_crafted_bomb_is_valid_deflate() {
    for repeats in [0, 1, 3, 1000] {
        let payload = bomb(repeats);
        let mut out = Vec::new();
        let r = Decompressor::new(15, false)
            .decompress(&payload, true, &mut out, usize::MAX)
            .unwrap();
        assert!(r.done && r.consumed == payload.len());
        assert_eq!(out.len(), 1 + 258 * repeats);
        assert!(out.iter().all(|&b| b == 0));
    }
    // About 1032:1.
    assert!(bomb(4_000_000).len() < 1_000_100);
    // And a connection inflates it, twice in a row on the same DEFLATE stream.
    let (_client, mut server, _) = connect(
        config(Some(DeflateConfig::default()), MessageMode::Whole),
        config(Some(DeflateConfig::default()), MessageMode::Whole),
        1,
    );
    let frame = raw_frame(true, 0x40, 0x2, Some([1, 2, 3, 4]), &bomb(5_000));
    let events = deliver(&mut server, &[&frame[..], &frame[..]].concat(), 10_000);
    assert_eq!(events.len(), 2);
    for event in &events {
        let OwnedEvent::Binary(data) = event else {
            panic!("{}", brief(event));
        };
        assert!(data.len() == 1 + 258 * 5_000 && data.iter().all(|&b| b == 0));
    }
}

/// A server after the handshake, with `max_message_size` and `mode`, and a
/// client frame carrying a bomb of just under 1 MiB that inflates to about 1 GiB.
fn bomb_target(max_message_size: u64, mode: MessageMode) -> (Connection, Vec<u8>) {
    let mut server_config = config(Some(DeflateConfig::default()), mode);
    server_config.max_message_size = max_message_size;
    server_config.read_buffer_size = 16 << 10;
    let (_client, server, extensions) = connect(
        config(Some(DeflateConfig::default()), MessageMode::Whole),
        server_config,
        2,
    );
    assert_eq!(extensions, Some(expected_extensions(15, false)));
    let payload = bomb(4 * (MIB - 4096));
    assert!(
        payload.len() < MIB && payload.len() > MIB - 8192,
        "{}",
        payload.len()
    );
    let frame = raw_frame(true, 0x40, 0x2, Some([0x11, 0x22, 0x33, 0x44]), &payload);
    (server, frame)
}

fn assert_too_big(server: &mut Connection, info: &wsmachine::CloseInfo) {
    assert_eq!(info.code(), CloseCode::MESSAGE_TOO_BIG);
    // The inflated size broke the limit, not the compressed frame (under it).
    match info.error() {
        Some(Error::Protocol(ProtocolError::MessageTooLarge { len, max })) => {
            assert_eq!(*max, MIB as u64);
            assert!(*len > MIB as u64, "{len}");
        }
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    let wire = take_transmit(server);
    assert_eq!(sent_close(&wire).map(|(code, _)| code), Some(1009));
}

#[test]
fn bomb_in_whole_mode_closes_1009_within_bounded_memory() {
    let (mut server, frame) = bomb_target(MIB as u64, MessageMode::Whole);
    let (closed, growth) = peak_heap_growth(|| {
        server.handle_read(&frame);
        let event = server.poll_event().map(Event::into_owned);
        let usage = server.memory_usage();
        (event, usage)
    });
    let (event, usage) = closed;
    let Some(OwnedEvent::Closed(info)) = event else {
        panic!("expected Closed, got {:?}", event.as_ref().map(brief));
    };
    assert_too_big(&mut server, &info);
    assert!(server.poll_event().is_none());
    assert!(usage < 3 * MIB, "memory_usage {usage}");
    assert!(
        growth < 4 * MIB as u64,
        "heap grew by {growth} while the server read the bomb"
    );
}

#[test]
fn bomb_in_streaming_mode_closes_1009_within_bounded_memory() {
    let (mut server, frame) = bomb_target(MIB as u64, MessageMode::Streaming);
    let read = server.config().read_buffer_size;
    let (outcome, growth) = peak_heap_growth(|| {
        server.handle_read(&frame);
        let (mut delivered, mut pieces) = (0usize, 0usize);
        let mut usage = 0;
        let info = loop {
            let event = server.poll_event();
            match event {
                Some(Event::Fragment(f)) => {
                    assert!(f.data.len() <= read, "piece of {}", f.data.len());
                    assert!(f.data.iter().all(|&b| b == 0));
                    assert_eq!((f.first, f.last), (pieces == 0, false));
                    delivered += f.data.len();
                    pieces += 1;
                }
                Some(Event::Closed(info)) => break info.clone(),
                other => panic!("unexpected {other:?}"),
            }
            usage = usage.max(server.memory_usage());
        };
        (info, delivered, usage)
    });
    let (info, delivered, usage) = outcome;
    assert_too_big(&mut server, &info);
    assert!(
        delivered <= MIB && delivered > 0,
        "{delivered} bytes delivered"
    );
    assert!(usage < 3 * MIB, "memory_usage {usage}");
    assert!(
        growth < 4 * MIB as u64,
        "heap grew by {growth} while the server read the bomb"
    );
}

#[test]
fn bomb_streams_out_in_bounded_pieces_without_a_limit() {
    let (mut server, frame) = bomb_target(u64::MAX, MessageMode::Streaming);
    let read = server.config().read_buffer_size;
    let target = 64 * MIB;
    let (outcome, growth) = peak_heap_growth(|| {
        server.handle_read(&frame);
        let (mut delivered, mut pieces, mut usage) = (0usize, 0usize, 0usize);
        while delivered < target {
            match server.poll_event() {
                Some(Event::Fragment(f)) => {
                    assert!(f.data.len() <= read, "piece of {}", f.data.len());
                    assert!(!f.data.is_empty());
                    assert_eq!((f.first, f.last), (pieces == 0, false));
                    // Spot checks: scanning 64 MiB in a debug build is slow.
                    assert!(f.data[0] == 0 && f.data[f.data.len() - 1] == 0);
                    delivered += f.data.len();
                    pieces += 1;
                }
                other => panic!("unexpected {other:?} after {delivered} bytes"),
            }
            usage = usage.max(server.memory_usage());
        }
        (delivered, pieces, usage)
    });
    let (delivered, pieces, usage) = outcome;
    assert!(delivered >= target);
    assert!(pieces >= target / read, "{pieces} pieces");
    assert!(usage < 3 * MIB, "memory_usage {usage}");
    assert!(
        growth < 4 * MIB as u64,
        "heap grew by {growth} over {delivered} inflated bytes"
    );
    assert!(server.is_open());
}

/// The assembly buffer keeps its capacity from message to message; a big
/// uncompressed fragmented message can leave it larger than the room the
/// next, compressed, message has under the limit.
#[test]
fn bomb_after_a_large_fragmented_message_closes_1009_within_bounded_memory() {
    let (mut server, frame) = bomb_target(MIB as u64, MessageMode::Whole);
    // 600 KiB then 400 KiB, sent as is: 1000 KiB, under the 1 MiB limit.
    let a = raw_frame(false, 0, 0x2, Some([5, 6, 7, 8]), &vec![7; 600 << 10]);
    let b = raw_frame(true, 0, 0x0, Some([5, 6, 7, 8]), &vec![7; 400 << 10]);
    server.handle_read(&[a, b].concat());
    match server.poll_event() {
        Some(Event::Binary(data)) => assert_eq!(data.len(), 1000 << 10),
        other => panic!("expected the message, got {other:?}"),
    }
    let (closed, growth) = peak_heap_growth(|| {
        server.handle_read(&frame);
        let event = server.poll_event().map(Event::into_owned);
        (event, server.memory_usage())
    });
    let (event, usage) = closed;
    let Some(OwnedEvent::Closed(info)) = event else {
        panic!("expected Closed, got {:?}", event.as_ref().map(brief));
    };
    assert_too_big(&mut server, &info);
    assert!(usage < 4 * MIB, "memory_usage {usage}");
    assert!(
        growth < 4 * MIB as u64,
        "heap grew by {growth} while the server read the bomb"
    );
}

/// The root cause of the two failures above, on the codec alone:
/// `Decompressor::decompress` promises to append at most `max_out` bytes,
/// but fills whatever spare capacity `out` already has.
#[test]
fn decompress_appends_at_most_max_out_whatever_the_capacity() {
    let mut wire = Vec::new();
    Compressor::new(6, 15, false).compress(&[0; 100_000], true, &mut wire);
    let mut out = Vec::with_capacity(100);
    let result = Decompressor::new(15, false).decompress(&wire, true, &mut out, 10);
    assert!(
        out.len() <= 10,
        "appended {} bytes for max_out 10",
        out.len()
    );
    assert!(matches!(result, Ok(r) if !r.done));
}

// ----- 6. protocol errors -----

/// A client and a server that negotiated permessage-deflate, the server in `mode`.
fn negotiated_server(mode: MessageMode) -> Connection {
    let (_client, server, extensions) = connect(
        config(Some(DeflateConfig::default()), MessageMode::Whole),
        config(Some(DeflateConfig::default()), mode),
        4,
    );
    assert_eq!(extensions, Some(expected_extensions(15, false)));
    server
}

fn compressed(data: &[u8], end: bool) -> Vec<u8> {
    let mut out = Vec::new();
    Compressor::new(6, 15, false).compress(data, end, &mut out);
    out
}

const KEY: Option<[u8; 4]> = Some([0xa1, 0xb2, 0xc3, 0xd4]);

#[test]
fn rsv1_on_a_continuation_is_a_protocol_error() {
    for mode in modes() {
        for first_rsv in [0x40, 0] {
            let mut server = negotiated_server(mode);
            // Compressed or not, the message's continuation may not carry RSV1.
            let first = if first_rsv == 0 {
                b"hel".to_vec()
            } else {
                compressed(b"hel", false)
            };
            let wire = [
                raw_frame(false, first_rsv, 0x1, KEY, &first),
                raw_frame(true, 0x40, 0x0, KEY, &compressed(b"lo", true)),
            ]
            .concat();
            let events = deliver(&mut server, &wire, 2);
            expect_failure(
                &mut server,
                &events,
                1002,
                ProtocolError::CompressedBitMisplaced,
            );
        }
    }
}

#[test]
fn rsv1_on_control_frames_is_a_protocol_error() {
    for opcode in [0x9, 0xA, 0x8] {
        let mut server = negotiated_server(MessageMode::Whole);
        let wire = raw_frame(true, 0x40, opcode, KEY, b"");
        let events = deliver(&mut server, &wire, 1);
        expect_failure(
            &mut server,
            &events,
            1002,
            ProtocolError::CompressedBitMisplaced,
        );
    }
    // Between the fragments of a compressed message too.
    let mut server = negotiated_server(MessageMode::Streaming);
    let wire = [
        raw_frame(false, 0x40, 0x1, KEY, &compressed(b"hello", false)),
        raw_frame(true, 0x40, 0x9, KEY, b"ping"),
    ]
    .concat();
    let events = deliver(&mut server, &wire, 5);
    expect_failure(
        &mut server,
        &events,
        1002,
        ProtocolError::CompressedBitMisplaced,
    );
}

#[test]
fn rsv1_without_permessage_deflate_is_a_protocol_error() {
    // The client does not offer it, or the server does not accept it.
    for (client, server) in [
        (None, Some(DeflateConfig::default())),
        (Some(DeflateConfig::default()), None),
    ] {
        let (mut client, mut server, extensions) = connect(
            config(client, MessageMode::Whole),
            config(server, MessageMode::Whole),
            5,
        );
        assert_eq!(extensions, None);
        let wire = raw_frame(true, 0x40, 0x1, KEY, &compressed(b"hello", true));
        let events = deliver(&mut server, &wire, 3);
        expect_failure(
            &mut server,
            &events,
            1002,
            ProtocolError::ReservedBits(0b100),
        );
        // And the client does not compress, even above the threshold.
        client.send_text(&"x".repeat(1000)).unwrap();
        assert_eq!(take_transmit(&mut client)[0] & 0x40, 0);
    }
    // A server frame to the client as well.
    let mut client_config = config(Some(DeflateConfig::default()), MessageMode::Whole);
    client_config.deflate = None;
    let (mut client, _server, _) = connect(
        client_config,
        config(Some(DeflateConfig::default()), MessageMode::Whole),
        6,
    );
    let wire = raw_frame(true, 0x40, 0x2, None, &compressed(b"hello", true));
    let events = deliver(&mut client, &wire, 3);
    expect_failure(
        &mut client,
        &events,
        1002,
        ProtocolError::ReservedBits(0b100),
    );
}

/// Asserts `events` end with a 1007 failure on data that does not inflate.
fn expect_invalid_compressed(conn: &mut Connection, events: &[OwnedEvent], what: &str) {
    let info = closed(events);
    assert_eq!(info.code(), CloseCode::INVALID_PAYLOAD, "{what}");
    assert!(
        matches!(
            info.error(),
            Some(Error::Protocol(ProtocolError::InvalidCompressedData(_)))
        ),
        "{what}: {:?}",
        info.error()
    );
    assert_eq!(
        sent_close(&take_transmit(conn)).map(|(c, _)| c),
        Some(1007),
        "{what}"
    );
    assert!(conn.poll_event().is_none());
}

#[test]
fn garbage_compressed_data_closes_1007() {
    // Block type 11 is reserved; a stored block whose length check fails;
    // a distance before the start of the data.
    let garbage: [&[u8]; 3] = [
        &[0xff, 0xff, 0xff],
        &[0x00, 0x05, 0x00, 0x05, 0x00],
        &[0x03, 0x01, 0x00],
    ];
    for mode in modes() {
        for (i, payload) in garbage.iter().enumerate() {
            for opcode in [0x1, 0x2] {
                let what = format!("{mode:?}, garbage {i}, opcode {opcode}");
                let mut server = negotiated_server(mode);
                let wire = raw_frame(true, 0x40, opcode, KEY, payload);
                let events = deliver(&mut server, &wire, 1);
                expect_invalid_compressed(&mut server, &events, &what);
            }
        }
        // Garbage after valid data, in a later fragment.
        let mut server = negotiated_server(mode);
        let wire = [
            raw_frame(false, 0x40, 0x2, KEY, &compressed(&[1; 5000], false)),
            raw_frame(true, 0, 0x0, KEY, &[0xff, 0xff, 0xff]),
        ]
        .concat();
        let events = deliver(&mut server, &wire, 100);
        expect_invalid_compressed(&mut server, &events, "garbage in a continuation");
        // Data after a final block (BFINAL) in the same message.
        let mut server = negotiated_server(mode);
        let mut payload = final_block(b"hello");
        payload.extend_from_slice(&compressed(b"more", true));
        let wire = raw_frame(true, 0x40, 0x2, KEY, &payload);
        let events = deliver(&mut server, &wire, 100);
        expect_invalid_compressed(&mut server, &events, "data after the final block");
    }
}

#[test]
fn compressed_text_that_inflates_to_invalid_utf8_closes_1007() {
    let mut long_then_bad = "ü".repeat(20_000).into_bytes();
    long_then_bad.push(0xff);
    let truncated = "ab€".as_bytes()[..4].to_vec();
    let cases: [(&str, Vec<u8>); 4] = [
        ("0xff", vec![b'a', 0xff, b'b']),
        ("surrogate", vec![0xed, 0xa0, 0x80]),
        ("bad after 40 KB", long_then_bad),
        ("truncated code point at the end", truncated),
    ];
    for mode in modes() {
        for (what, bytes) in &cases {
            let mut server = negotiated_server(mode);
            let wire = raw_frame(true, 0x40, 0x1, KEY, &compressed(bytes, true));
            let events = deliver(&mut server, &wire, 1000);
            expect_failure(&mut server, &events, 1007, ProtocolError::InvalidUtf8);
            // Nothing of the text was handed out as a whole message.
            assert!(
                !events.iter().any(|e| matches!(e, OwnedEvent::Text(_))),
                "{mode:?} {what}"
            );
        }
        // Split over compressed fragments: the code point ends in the second.
        let mut server = negotiated_server(mode);
        let mut c = Compressor::new(6, 15, false);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        c.compress(&[b'x', 0xe2, 0x82], false, &mut a);
        c.compress(b"x", true, &mut b);
        let wire = [
            raw_frame(false, 0x40, 0x1, KEY, &a),
            raw_frame(true, 0, 0x0, KEY, &b),
        ]
        .concat();
        let events = deliver(&mut server, &wire, 1);
        expect_failure(&mut server, &events, 1007, ProtocolError::InvalidUtf8);
    }
}

// ----- final blocks -----

/// One DEFLATE block with fixed codes and BFINAL set (RFC 1951 §3.2.6):
/// the peer ended its stream, which RFC 7692 §7.2.3.4 allows.
fn final_block(data: &[u8]) -> Vec<u8> {
    let mut b = Bits::default();
    b.put(1, 1); // BFINAL
    b.put(1, 2); // BTYPE 01: fixed Huffman
    for &byte in data {
        match byte {
            0..=143 => b.code(0x30 + u32::from(byte), 8),
            _ => b.code(0x190 + u32::from(byte) - 144, 9),
        }
    }
    b.code(0, 7); // end of block
    b.finish()
}

#[test]
fn messages_ending_in_a_final_block_inflate_and_the_next_starts_afresh() {
    for mode in modes() {
        let mut server = negotiated_server(mode);
        let mut takeover = Compressor::new(6, 15, false);
        let (mut third, mut fourth) = (Vec::new(), Vec::new());
        takeover.compress(b"again and again", true, &mut third);
        // With context takeover: refers back to the third message.
        takeover.compress(b"again and again", true, &mut fourth);
        let wire = [
            raw_frame(true, 0x40, 0x1, KEY, &final_block("héllo".as_bytes())),
            raw_frame(true, 0x40, 0x2, KEY, &final_block(&[0, 200, 255, 144, 143])),
            raw_frame(true, 0x40, 0x1, KEY, &third),
            raw_frame(true, 0x40, 0x1, KEY, &fourth),
        ]
        .concat();
        let events = deliver(&mut server, &wire, 3);
        let got = messages(&events, mode, None);
        let expected: Vec<(MessageKind, Vec<u8>)> = vec![
            (MessageKind::Text, "héllo".as_bytes().to_vec()),
            (MessageKind::Binary, vec![0, 200, 255, 144, 143]),
            (MessageKind::Text, b"again and again".to_vec()),
            (MessageKind::Text, b"again and again".to_vec()),
        ];
        assert_eq!(got, expected, "{mode:?}");
    }
}

// ----- a handshake answered by another HTTP stack; text checked on send -----

#[test]
fn open_server_negotiated_applies_a_deflate_response() {
    // What an HTTP stack answered, handed to the connection with the stream.
    let negotiated = |extensions: Option<&str>| wsmachine::handshake::Negotiated {
        protocol: None,
        extensions: extensions.map(String::from),
    };
    let text = json(20_000, 9);
    // The client compresses with its window of 10 bits, as answered.
    let mut payload = Vec::new();
    Compressor::new(6, 10, false).compress(text.as_bytes(), true, &mut payload);
    let wire = raw_frame(true, 0x40, 0x1, KEY, &payload);
    let extensions = "permessage-deflate; client_max_window_bits=10";
    let mut server = Connection::open_server_negotiated(
        config(Some(DeflateConfig::default()), MessageMode::Whole),
        negotiated(Some(extensions)),
    );
    assert_eq!(server.negotiated().extensions.as_deref(), Some(extensions));
    let events = deliver(&mut server, &wire, 4096);
    assert!(
        matches!(&events[..], [OwnedEvent::Text(t)] if *t == text),
        "{}",
        events.iter().map(brief).collect::<Vec<_>>().join(", ")
    );
    // And it compresses what it sends: RSV1, far fewer bytes.
    server.send_text(&text).unwrap();
    let sent = server.poll_transmit().unwrap();
    assert_eq!(sent[0], 0x80 | 0x40 | 0x1);
    assert!(sent.len() * 4 < text.len(), "{} bytes", sent.len());

    // Without the extension in the response, RSV1 is a protocol error.
    let mut plain = Connection::open_server_negotiated(
        config(Some(DeflateConfig::default()), MessageMode::Whole),
        negotiated(Some("x-other")),
    );
    let events = deliver(&mut plain, &wire, 4096);
    expect_failure(
        &mut plain,
        &events,
        1002,
        ProtocolError::ReservedBits(0b100),
    );
}

#[test]
fn send_message_refuses_text_that_is_not_utf8_and_queues_nothing() {
    let mut server = negotiated_server(MessageMode::Whole);
    for compress in [Compress::Auto, Compress::Never] {
        let bad = [b"valid, then ".as_slice(), &[0xff; 40]].concat();
        assert_eq!(
            server.send_message(MessageKind::Text, &bad, compress),
            Err(Error::Usage(wsmachine::UsageError::InvalidUtf8))
        );
        assert!(server.poll_transmit().is_none());
    }
    // Binary takes any bytes.
    server
        .send_message(MessageKind::Binary, &[0xff; 40], Compress::Auto)
        .unwrap();
    assert!(server.poll_transmit().is_some());
}

#[test]
fn send_vectored_compresses_like_send_message_and_the_peer_inflates_it() {
    let (mut client, mut server) = deflate_pair(15, false, MessageMode::Whole, MessageMode::Whole);
    let text = "compressible ".repeat(10_000);
    let transmit = server
        .send_vectored(MessageKind::Text, text.as_bytes())
        .unwrap();
    // A compressed message is new bytes: queued, not handed out from `text`.
    let [queued, header, payload] = transmit.slices();
    assert!(header.is_empty() && payload.is_empty());
    assert!(queued.len() < text.len() / 10, "{} bytes", queued.len());
    assert_eq!(queued[0] & 0x40, 0x40, "RSV1: compressed");
    drop(transmit);
    let events = feed(&mut client, &take_transmit(&mut server), &[]);
    assert_eq!(events, vec![OwnedEvent::Text(text)]);
}

/// A compressed text message that inflates to invalid UTF-8 and then hits
/// corrupt data fails with the same error however the reads split it: what
/// came out before the corruption is checked first (found by the
/// response_parser fuzz target, which compares whole and split reads). The
/// same for a message that passes the size limit before its corruption.
#[test]
fn the_first_fault_of_a_compressed_message_wins_whatever_the_reads() {
    let negotiated = wsmachine::handshake::Negotiated {
        protocol: None,
        extensions: Some("permessage-deflate".into()),
    };
    let mut compressor = Compressor::new(1, 15, false);
    let mut payload = Vec::new();
    // Compressible: a few dozen bytes on the wire, 5,000 inflated.
    let mut inflated = b"\xff\xfe not UTF-8 ".to_vec();
    inflated.extend([b'a'; 5000]);
    compressor.compress(&inflated, false, &mut payload);
    // A block header of the reserved type 3: corrupt.
    payload.extend_from_slice(&[0xff; 8]);
    let text = raw_frame(true, 0x40, 0x1, Some([1, 2, 3, 4]), &payload);
    let binary = raw_frame(true, 0x40, 0x2, Some([1, 2, 3, 4]), &payload);
    assert!(text.len() < 100);
    // The first fault in the inflated bytes wins: invalid UTF-8 at byte 0
    // comes before the limit of 100 is passed; binary has no UTF-8 to check.
    for (frame, limit, expected) in [
        (&text, 1 << 20, ProtocolError::InvalidUtf8),
        (&text, 100, ProtocolError::InvalidUtf8),
        (
            &binary,
            100,
            ProtocolError::MessageTooLarge { len: 0, max: 100 },
        ),
    ] {
        let mut outcomes = Vec::new();
        for read in [frame.len(), 1, 7, 64] {
            let mut config = Config::default();
            config.max_message_size = limit;
            let mut server = Connection::open_server_negotiated(config, negotiated.clone());
            let events = deliver(&mut server, frame, read);
            let error = closed(&events).error().cloned();
            outcomes.push(match error {
                Some(Error::Protocol(ProtocolError::MessageTooLarge { max, .. })) => {
                    ProtocolError::MessageTooLarge { len: 0, max }
                }
                Some(Error::Protocol(e)) => e,
                other => panic!("not a protocol error: {other:?}"),
            });
        }
        assert!(
            outcomes.iter().all(|e| *e == expected),
            "limit {limit}: {outcomes:?}"
        );
    }
}
