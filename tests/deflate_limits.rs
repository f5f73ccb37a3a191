//! Limits under compression: a message within `max_message_size` (and a frame
//! within `max_frame_size`) passes whether or not it was compressed, however
//! its sender's compressor grew it on the wire; one byte over still gets
//! 1009, checked while inflating, with memory bounded. Both roles.
#![cfg(feature = "deflate")]

use wsmachine::deflate::{Compressor, DeflateConfig, max_compressed_len};
use wsmachine::frame::{FrameHeader, OpCode, encode_frame};
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::testing::{Pair, Side};
use wsmachine::{CloseCode, Config, OwnedEvent};

const LIMIT: u64 = 64 << 10;

/// Deterministic bytes that do not compress.
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Text that compresses well.
fn text(len: usize) -> String {
    "the quick brown fox jumps over the lazy dog; "
        .repeat(len / 45 + 1)
        .chars()
        .take(len)
        .collect()
}

/// Both sides with deflate and the limits at [`LIMIT`].
fn pair() -> Pair {
    let mut config = Config::default();
    config.max_frame_size = LIMIT;
    config.max_message_size = LIMIT;
    config.deflate = Some(DeflateConfig::default());
    let request = ClientRequest::new("ws://example.com/").unwrap();
    Pair::handshake(&request, config.clone(), config, Accept::new()).unwrap()
}

/// The frames of `data` compressed the worst way a compliant peer may: zlib
/// memLevel 1, a 512-byte window, level 0 (stored blocks), `pieces`
/// fragments, each flushed. Masked when `to` is the server.
fn frames(data: &[u8], pieces: usize, to: Side, opcode: OpCode) -> Vec<u8> {
    let mut compressor = Compressor::with_mem_level(0, 9, 1, false);
    let size = data.len().div_ceil(pieces).max(1);
    let chunks: Vec<&[u8]> = data.chunks(size).collect();
    let mut wire = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let mut payload = Vec::new();
        compressor.compress(chunk, last, &mut payload);
        let op = if i == 0 { opcode } else { OpCode::CONTINUATION };
        let mask = (to == Side::Server).then_some([1, 2, 3, 4]);
        let mut header = FrameHeader::new(op, last, mask);
        header.rsv1 = i == 0;
        encode_frame(&mut wire, &header, &payload);
    }
    wire
}

fn deliver(pair: &mut Pair, to: Side, wire: &[u8]) -> Vec<OwnedEvent> {
    pair.inject(to, wire);
    pair.deliver(to, usize::MAX)
}

fn closed_with(events: &[OwnedEvent]) -> Option<CloseCode> {
    events.iter().find_map(|e| match e {
        OwnedEvent::Closed(info) => Some(info.code()),
        _ => None,
    })
}

#[test]
fn incompressible_data_at_the_limit_passes_in_both_roles() {
    for to in [Side::Server, Side::Client] {
        let mut pair = pair();
        let data = random(LIMIT as usize, 7);
        let wire = frames(&data, 1, to, OpCode::BINARY);
        assert!(wire.len() as u64 > LIMIT, "the wire is over the limit");
        assert_eq!(deliver(&mut pair, to, &wire), [OwnedEvent::Binary(data)]);
    }
}

#[test]
fn text_at_the_limit_passes_compressed_and_in_many_fragments() {
    for to in [Side::Server, Side::Client] {
        let mut pair = pair();
        let message = text(LIMIT as usize);
        // 1,000 fragments of stored blocks: the flushes alone add kilobytes.
        let wire = frames(message.as_bytes(), 1000, to, OpCode::TEXT);
        assert!(wire.len() as u64 > LIMIT);
        assert_eq!(deliver(&mut pair, to, &wire), [OwnedEvent::Text(message)]);
    }
}

#[test]
fn one_byte_over_gets_1009_while_inflating() {
    for to in [Side::Server, Side::Client] {
        let mut pair = pair();
        let data = random(LIMIT as usize + 1, 9);
        let wire = frames(&data, 1, to, OpCode::BINARY);
        let events = deliver(&mut pair, to, &wire);
        assert_eq!(closed_with(&events), Some(CloseCode::MESSAGE_TOO_BIG));
        // Bounded: at most the limit (and a read's worth) was ever held.
        assert!(pair.conn(to).memory_usage() < 3 * LIMIT as usize);
        // Well compressed, the same: the limit is on the inflated size.
        let mut pair = self::pair();
        let message = text(LIMIT as usize + 1);
        let wire = frames(message.as_bytes(), 3, to, OpCode::TEXT);
        let events = deliver(&mut pair, to, &wire);
        assert_eq!(closed_with(&events), Some(CloseCode::MESSAGE_TOO_BIG));
    }
}

#[test]
fn uncompressed_frames_keep_the_frame_limit() {
    for to in [Side::Server, Side::Client] {
        let mut pair = pair();
        let mask = (to == Side::Server).then_some([9, 9, 9, 9]);
        let mut header = FrameHeader::new(OpCode::BINARY, true, mask);
        header.payload_len = LIMIT + 1;
        let mut wire = Vec::new();
        encode_frame(&mut wire, &header, &random(LIMIT as usize + 1, 3));
        let events = deliver(&mut pair, to, &wire);
        assert_eq!(closed_with(&events), Some(CloseCode::MESSAGE_TOO_BIG));
    }
}

#[test]
fn a_compressed_frame_past_its_allowance_gets_1009_before_its_payload() {
    let mut pair = pair();
    let mut header = FrameHeader::new(OpCode::BINARY, true, Some([1, 2, 3, 4]));
    header.rsv1 = true;
    header.payload_len = max_compressed_len(LIMIT) + 1;
    let mut head = [0; 14];
    let n = header.encode(&mut head);
    // The header alone: the frame is refused before any payload arrives.
    let events = deliver(&mut pair, Side::Server, &head[..n]);
    assert_eq!(closed_with(&events), Some(CloseCode::MESSAGE_TOO_BIG));
}
