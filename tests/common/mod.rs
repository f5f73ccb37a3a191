//! Helpers for the tests: feeding bytes in chosen reads, hand-made frames,
//! decoding what a connection sent, and checks on the events. No sockets, no
//! sleeps. For a client and a server wired back to back, tests use
//! `wsmachine::testing::Pair` (the `testing` feature, which the crate's
//! dev-dependency on itself turns on).
#![allow(dead_code)]

use wsmachine::frame::{Frame, FrameHeader, OpCode, Status, encode_frame};
use wsmachine::{
    CloseCode, Config, Connection, Error, Initiator, MessageKind, OwnedEvent, ProtocolError,
    SeededEntropy,
};

/// Takes every byte a connection has queued to send.
pub fn take_transmit(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    conn.drain_transmit(&mut out);
    out
}

/// Every event the connection has ready, owned.
pub fn drain_events(conn: &mut Connection) -> Vec<OwnedEvent> {
    let mut events = Vec::new();
    // Bounded: a connection yields at most one event per frame it holds.
    for _ in 0..1_000_000 {
        match conn.poll_event() {
            Some(event) => events.push(event.into_owned()),
            None => return events,
        }
    }
    panic!("poll_event did not run dry");
}

/// Feeds `bytes` to `conn` as separate reads cut at `cuts` (offsets into `bytes`,
/// any order, out-of-range ones ignored), draining events after every read as
/// the run loop does. Half of the reads go through `recv_buffer`/`commit_recv`,
/// half through `handle_read`, so both input paths are exercised.
pub fn feed(conn: &mut Connection, bytes: &[u8], cuts: &[usize]) -> Vec<OwnedEvent> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < bytes.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.push(bytes.len());
    let mut events = Vec::new();
    let mut at = 0;
    for (i, cut) in cuts.into_iter().enumerate() {
        let piece = &bytes[at..cut];
        at = cut;
        if i % 2 == 0 {
            conn.handle_read(piece);
        } else {
            read_through_buffer(conn, piece, |conn| events.extend(drain_events(conn)));
        }
        events.extend(drain_events(conn));
    }
    events
}

/// Reads `piece` in through `recv_buffer`/`commit_recv`, as many commits as
/// the lent space needs, calling `after` after each.
pub fn read_through_buffer(
    conn: &mut Connection,
    mut piece: &[u8],
    mut after: impl FnMut(&mut Connection),
) {
    while !piece.is_empty() {
        let buf = conn.recv_buffer();
        let n = buf.len().min(piece.len());
        buf[..n].copy_from_slice(&piece[..n]);
        conn.commit_recv(n);
        piece = &piece[n..];
        after(conn);
    }
}

/// Feeds bytes one read per byte.
pub fn feed_bytewise(conn: &mut Connection, bytes: &[u8]) -> Vec<OwnedEvent> {
    let cuts: Vec<usize> = (1..bytes.len()).collect();
    feed(conn, bytes, &cuts)
}

/// Encodes a raw frame, for sending deliberately broken input. `opcode_bits`
/// and `rsv` (0x40/0x20/0x10) go on the wire as given.
pub fn raw_frame(
    fin: bool,
    rsv: u8,
    opcode_bits: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut header = FrameHeader::new(OpCode::new(opcode_bits), fin, mask);
    header.rsv1 = rsv & 0x40 != 0;
    header.rsv2 = rsv & 0x20 != 0;
    header.rsv3 = rsv & 0x10 != 0;
    let mut out = Vec::new();
    encode_frame(&mut out, &header, payload);
    out
}

/// A frame as a client sends it (masked).
pub fn client_frame(fin: bool, opcode_bits: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, 0, opcode_bits, Some([0x37, 0xfa, 0x21, 0x3d]), payload)
}

/// A frame as a server sends it (unmasked).
pub fn server_frame(fin: bool, opcode_bits: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, 0, opcode_bits, None, payload)
}

/// The close event among `events`, which must be the last one.
pub fn closed(events: &[OwnedEvent]) -> &wsmachine::CloseInfo {
    match events.last() {
        Some(OwnedEvent::Closed(info)) => info,
        other => panic!("expected a Closed event last, got {other:?} in {events:?}"),
    }
}

/// Parses the close frame a connection queued: (code, reason), or None for an empty close.
pub fn sent_close(wire: &[u8]) -> Option<(u16, String)> {
    let mut buf = wire.to_vec();
    let mut rest = &mut buf[..];
    loop {
        let wsmachine::frame::Status::Complete((frame, used)) =
            wsmachine::frame::Frame::decode(rest).expect("our own output decodes")
        else {
            panic!("no close frame in the output");
        };
        if frame.header.opcode == OpCode::CLOSE {
            return match frame.payload {
                [] => None,
                [hi, lo, reason @ ..] => Some((
                    u16::from_be_bytes([*hi, *lo]),
                    String::from_utf8(reason.to_vec()).unwrap(),
                )),
                _ => panic!("1-byte close payload sent"),
            };
        }
        rest = &mut rest[used..];
    }
}

/// The default config without permessage-deflate.
pub fn plain() -> Config {
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    config
}

/// A pair through the opening handshake, which negotiates permessage-deflate
/// when the configs have it.
pub fn handshake_pair(client: Config, server: Config) -> wsmachine::testing::Pair {
    let request = wsmachine::handshake::ClientRequest::new("ws://localhost/").unwrap();
    wsmachine::testing::Pair::handshake(
        &request,
        client,
        server,
        wsmachine::handshake::Accept::new(),
    )
    .unwrap()
}

/// A server connection whose default config is adjusted by `adjust`.
pub fn server_with(adjust: impl FnOnce(&mut Config)) -> Connection {
    let mut config = Config::default();
    adjust(&mut config);
    Connection::open_server(config)
}

/// A client connection (seeded entropy) whose default config is adjusted by `adjust`.
pub fn client_with(adjust: impl FnOnce(&mut Config)) -> Connection {
    let mut config = Config::default();
    adjust(&mut config);
    Connection::open_client(config, SeededEntropy::new(0x5eed))
}

/// Concatenates encoded frames into one byte stream.
pub fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// Splits a connection's output into frames: (header, unmasked payload) each.
/// Panics if the output does not end on a frame boundary.
pub fn decode_all(wire: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut buf = wire.to_vec();
    let mut rest = &mut buf[..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let Status::Complete((frame, used)) = Frame::decode(rest).expect("output decodes") else {
            panic!("output ends mid-frame");
        };
        frames.push((frame.header, frame.payload.to_vec()));
        rest = &mut rest[used..];
    }
    frames
}

/// Asserts that `events` end with the connection failing on `error`: the event
/// reports it with close code `code`, initiator Local, not clean; the connection
/// queued a close frame with `code`; and no further event follows.
pub fn expect_failure(
    conn: &mut Connection,
    events: &[OwnedEvent],
    code: u16,
    error: ProtocolError,
) {
    let info = closed(events);
    assert_eq!(
        info.error(),
        Some(&Error::Protocol(error)),
        "events: {events:?}"
    );
    assert_eq!(info.code(), CloseCode(code));
    assert_eq!(info.initiator(), Initiator::Local);
    assert!(!info.is_clean());
    assert!(conn.is_closed());
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, OwnedEvent::Closed(_)))
            .count(),
        1,
        "exactly one Closed event"
    );
    let wire = take_transmit(conn);
    assert_eq!(
        sent_close(&wire).map(|(c, _)| c),
        Some(code),
        "close frame sent"
    );
    assert!(
        conn.poll_event().is_none(),
        "nothing after the Closed event"
    );
}

/// Collapses streamed pieces into (kind, message bytes), keeping other events in
/// place, and checks the first/last flags on the way.
pub fn assemble_streamed(events: &[OwnedEvent]) -> Vec<OwnedEvent> {
    let mut out = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match event {
            OwnedEvent::Fragment {
                kind,
                data,
                first,
                last,
            } => {
                assert_eq!(*first, current.is_none(), "first flag in {events:?}");
                let (k, buf) = current.get_or_insert((*kind, Vec::new()));
                assert_eq!(k, kind, "kind changed mid-message");
                buf.extend_from_slice(data);
                if *last {
                    let (kind, buf) = current.take().unwrap();
                    out.push(match kind {
                        MessageKind::Text => OwnedEvent::Text(String::from_utf8(buf).unwrap()),
                        MessageKind::Binary => OwnedEvent::Binary(buf),
                    });
                }
            }
            other => out.push(other.clone()),
        }
    }
    assert!(current.is_none(), "message left unfinished: {events:?}");
    out
}

/// Message sizes on either side of every boundary of the frame length's
/// encoding (126 B, 64 KiB) and of the adapters' vectored writes (8 KiB), up
/// to 1 MiB.
pub const EDGE_SIZES: [usize; 10] = [
    0,
    1,
    125,
    126,
    8_191,
    8_192,
    65_535,
    65_536,
    200_000,
    1 << 20,
];

/// Sizes the adapters send by copying them into the connection (below their
/// 8 KiB vectored-write threshold), and sizes they write from where they lie.
pub const COPIED_SIZES: [usize; 2] = [125, 8_191];
pub const OWN_SLICE_SIZES: [usize; 4] = [8_192, 16 << 10, 200_000, 1 << 20];

/// Given the slice lengths of every vectored write a stream saw, one list per
/// write: each payload of `own` went out as a slice of its own after its
/// header (not copied into the connection, where header and payload would be
/// one buffer), and no payload of `copied` did.
pub fn assert_written_from_where_they_lie(writes: &[Vec<usize>], own: &[usize], copied: &[usize]) {
    for &size in own {
        assert!(
            writes
                .iter()
                .any(|w| w.len() >= 2 && w.last() == Some(&size)),
            "no vectored write had the {size}-byte payload as its own slice: {writes:?}"
        );
    }
    for &size in copied {
        assert!(
            !writes.iter().any(|w| w.contains(&size)),
            "the {size}-byte payload went out as its own slice, not copied: {writes:?}"
        );
    }
}

/// A text and a binary message of each size, with content that shows any
/// byte moved or lost.
pub fn text_and_binary(sizes: &[usize]) -> Vec<OwnedEvent> {
    sizes
        .iter()
        .flat_map(|&size| {
            let text: String = (0..size)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 256) as u8).collect();
            [OwnedEvent::Text(text), OwnedEvent::Binary(data)]
        })
        .collect()
}
