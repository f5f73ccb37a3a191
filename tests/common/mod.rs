//! An in-memory client/server pair, with seeded entropy and control over how
//! the byte stream is split into reads. No sockets, no sleeps.
#![allow(dead_code)]

use wsmachine::frame::{FrameHeader, OpCode, encode_frame};
use wsmachine::{Config, Connection, OwnedEvent, SeededEntropy};

/// A client and a server connection wired back to back.
pub struct Pair {
    pub client: Connection,
    pub server: Connection,
}

impl Pair {
    pub fn new() -> Self {
        Self::with_configs(Config::default(), Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Self::with_configs(config.clone(), config)
    }

    pub fn with_configs(client: Config, server: Config) -> Self {
        Self {
            client: Connection::open_client(client, SeededEntropy::new(0x5eed)),
            server: Connection::open_server(server),
        }
    }

    /// Moves everything the client queued to the server in one read; returns the server's events.
    pub fn client_to_server(&mut self) -> Vec<OwnedEvent> {
        let bytes = take_transmit(&mut self.client);
        feed(&mut self.server, &bytes, &[])
    }

    /// Moves everything the server queued to the client in one read; returns the client's events.
    pub fn server_to_client(&mut self) -> Vec<OwnedEvent> {
        let bytes = take_transmit(&mut self.server);
        feed(&mut self.client, &bytes, &[])
    }

    /// Moves bytes both ways until neither side has anything to send.
    /// Returns (client events, server events). Bounded: at most 64 rounds.
    pub fn pump(&mut self) -> (Vec<OwnedEvent>, Vec<OwnedEvent>) {
        let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
        for _ in 0..64 {
            if self.client.pending_transmit() == 0 && self.server.pending_transmit() == 0 {
                break;
            }
            at_server.extend(self.client_to_server());
            at_client.extend(self.server_to_client());
        }
        (at_client, at_server)
    }
}

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
        let mut piece = &bytes[at..cut];
        at = cut;
        if i % 2 == 0 {
            conn.handle_read(piece);
        } else {
            while !piece.is_empty() {
                let buf = conn.recv_buffer();
                let n = buf.len().min(piece.len());
                buf[..n].copy_from_slice(&piece[..n]);
                conn.commit_recv(n);
                piece = &piece[n..];
                events.extend(drain_events(conn));
            }
        }
        events.extend(drain_events(conn));
    }
    events
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
