//! The `inflate` harness: permessage-deflate (RFC 7692) on the receiving side,
//! at two levels picked by bit 0 of the first byte.
//!
//! **Codec** (bit 0 clear): a [`Decompressor`] on its own.
//! 1. The payload bytes, taken as compressed input, split into chunks (some
//!    ending a message), are inflated chunk by chunk with a cap on every call
//!    (re-calling while not `done`), and, message by message, in one call with
//!    a huge cap by a second decompressor. Checks: no panic; a call appends at
//!    most its cap, consumes at most its input, consumes it all when `done`,
//!    and appends exactly its cap when not; the chunked output equals the
//!    one-shot output (a prefix of it once the one-shot hits
//!    [`ONE_SHOT_LIMIT`]); both fail on the same message or neither does.
//! 2. Round trip: the same chunks, as fragments of messages, are compressed by
//!    a [`Compressor`] (its window and context takeover from the input) and
//!    inflated with capped calls by a [`Decompressor`] of the same takeover and
//!    a window as large or larger: after every fragment the output is exactly
//!    the message so far (each fragment is flushed).
//!
//! The output vector is reused across messages (cleared), as a connection
//! reuses its assembly buffer, and may start with spare capacity: the cap of
//! a call holds whatever the vector's capacity (see [`Decompressor::decompress`]).
//!
//! **Connection** (bit 0 set): a server [`Connection::open_server_negotiated`]
//! with a permessage-deflate response and small limits from the input, fed a
//! client's byte stream built from the input: messages compressed with a
//! [`Compressor`] as a client would (RSV1 on the first frame), plain messages,
//! pings and pongs (also between fragments), a close, and raw frames with any
//! opcode, FIN, RSV bits, masking and payload (garbage, or compressed bytes
//! with RSV1 where it does not belong). The stream is fed in reads split by
//! the input, draining every event and transmit after each. Checks:
//! - nothing panics; the events are bounded by the bytes fed plus the bytes
//!   delivered; no event after [`Event::Closed`] and nothing sent after it;
//!   what the server sends is well-formed frames;
//! - whole mode: a message is at most `max_message_size`; streaming: every
//!   piece of a compressed message is at most `read_buffer_size` (1 if 0),
//!   any piece at most that or one read, only the last piece may be empty,
//!   `first`/`last` are consistent, a message at most `max_message_size`;
//! - up to the first raw frame (the "known" part of the stream), events match
//!   what was sent exactly: each message's content (streamed pieces are
//!   prefixes of it), pings and pongs; a message that cannot be delivered (over
//!   the limit, compressed or not, or compressed without the extension) fails
//!   the connection with 1009 (1002); a close frame closes it cleanly; and if
//!   neither, the connection is still open at the end with everything delivered;
//! - a failure closes with 1002, 1007 or 1009;
//! - [`Connection::memory_usage`] stays under
//!   `4 * max(max_message_size, read_buffer_size) + 4 * stream + 1 MiB`.
//!
//! Codec input layout (missing bytes read as 0):
//!
//! | bytes      | meaning                                                              |
//! |------------|----------------------------------------------------------------------|
//! | `[0]`      | bit 0 clear; bits 1–3 window bits − 8; bit 4 no context takeover; bits 5–6 extra window bits of the round trip's decompressor; bit 7 the output vector starts with 64 KiB of capacity |
//! | `[1]`      | low 4 bits compression level (mod 10); high 4 bits `n`, the number of caps |
//! | `[2]`      | low 4 bits `m`, the number of chunk sizes                             |
//! | `[3..3+n]` | output caps, one per call, cycled ([`output_cap`]; none: 64 KiB)      |
//! | next `m`   | chunk sizes, cycled ([`chunk_size`]; bit 7 ends a message); none: one chunk |
//! | rest       | the payload                                                          |
//!
//! Connection input layout (missing bytes read as 0):
//!
//! | bytes      | meaning                                                              |
//! |------------|----------------------------------------------------------------------|
//! | `[0]`      | bit 0 set; bits 1–2 `max_message_size` ([`MAX_MESSAGE_SIZES`]); bit 3 streaming; bits 4–5 `read_buffer_size` ([`READ_BUFFER_SIZES`]); bit 6 reads through `recv_buffer`; bit 7 auto-pong off |
//! | `[1]`      | the response ([`response`]): bits 0–2 window bits − 8; bit 3 `client_max_window_bits` with them; bit 4 `client_no_context_takeover`; bit 5 `server_no_context_takeover`; bit 6 `server_max_window_bits` with them; bit 7 no permessage-deflate |
//! | `[2]`      | the client's compressor: bits 0–3 level (mod 10); bits 4–6 window bits below the agreed ones; bit 7 reset after every message even with context takeover |
//! | `[3..7]`   | masking key (varied per frame)                                       |
//! | `[7]`      | low 4 bits `n`, the number of read sizes                             |
//! | `[8..8+n]` | read sizes ([`read_size`], cycled; none: one read)                   |
//! | rest       | items, each `[c, len lo, len hi, b]` and `len` data bytes (fewer at the end) |
//!
//! An item's `c` low 2 bits pick its kind:
//! - 0 compressed message, 1 plain message: bit 2 text (the data made UTF-8),
//!   bits 3–5 fragments − 1, bit 6 the data repeated `b + 1` times (else the
//!   first fragment takes `b / 256` of it, the others share the rest), bit 7 a
//!   ping after the first fragment;
//! - 2 raw frame: bits 2–5 opcode, bit 6 FIN, bit 7 RSV1; `b` bit 0 RSV2, bit
//!   1 RSV3, bit 2 the payload is the data compressed (bit 3: as a message's
//!   end), bit 4 unmasked;
//! - 3 control: bit 2 pong (else ping) with the data's first 125 bytes; bit 3
//!   a close frame (1000, "bye") instead.

use wsmachine::deflate::{Agreement, Compressor, Decompressor, InflateError};
use wsmachine::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, Role, encode_frame};
use wsmachine::handshake::Negotiated;
use wsmachine::{CloseCode, Config, Connection, Event, Initiator, MessageKind, MessageMode};

use crate::conn::{READ_BUFFER_SIZES, check_transmitted, read_size};

/// Runs one input. Panics if an invariant breaks.
pub fn run(data: &[u8]) {
    if data.first().is_some_and(|b| b & 1 == 1) {
        connection(data);
    } else {
        let input = parse_codec(data);
        inflate_raw(&input);
        round_trip(&input);
    }
}

// ----- codec -----

/// The most a one-shot inflation produces for one message.
pub const ONE_SHOT_LIMIT: usize = 1 << 20;
/// One-shot output of a run after which the comparison stops.
const TOTAL_LIMIT: usize = 2 << 20;
/// The calls of a run for its output (each cap is raised so that they stay under this).
const CALLS_PER_OUTPUT: usize = 1024;

/// Bit 7 of a chunk size: the chunk ends a message.
pub const END_OF_MESSAGE: u8 = 0x80;

/// The output cap of a call: 0 is 64 KiB, 1–64 as is, then steps of 342 bytes up to 65322.
pub fn output_cap(x: u8) -> usize {
    match x {
        0 => 64 << 10,
        1..=64 => usize::from(x),
        x => usize::from(x - 64) * 342,
    }
}

/// The size of a chunk (`None`: all the rest): low 7 bits 0 the rest, 1–63
/// as is, 64–126 multiples of 64 from 64 to 4032, 127 empty.
pub fn chunk_size(x: u8) -> Option<usize> {
    match x & 0x7F {
        0 => None,
        127 => Some(0),
        x @ 1..=63 => Some(usize::from(x)),
        x => Some(usize::from(x - 63) * 64),
    }
}

/// A decoded codec input.
#[derive(Debug, Clone)]
pub struct CodecInput<'a> {
    /// The compressor's and decompressors' window.
    pub window_bits: u8,
    /// Reset after every message.
    pub no_context_takeover: bool,
    /// Added to the round trip decompressor's window (at most 15).
    pub extra_bits: u8,
    /// The output vector starts with spare capacity.
    pub reserve: bool,
    /// The compression level.
    pub level: u32,
    /// Output caps, cycled.
    pub caps: &'a [u8],
    /// The chunks, and whether each ends a message (the last one does).
    pub chunks: Vec<(&'a [u8], bool)>,
    /// All the payload bytes.
    pub payload: &'a [u8],
}

/// Builds a codec input (the inverse of [`parse_codec`]), for seed corpora.
#[allow(clippy::too_many_arguments)]
pub fn build_codec(
    window_bits: u8,
    no_context_takeover: bool,
    extra_bits: u8,
    reserve: bool,
    level: u8,
    caps: &[u8],
    chunks: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert!((8..=15).contains(&window_bits) && extra_bits < 4 && level < 10);
    assert!(caps.len() < 16 && chunks.len() < 16);
    let mut out = vec![
        (window_bits - 8) << 1
            | u8::from(no_context_takeover) << 4
            | extra_bits << 5
            | u8::from(reserve) << 7,
        level | (caps.len() as u8) << 4,
        chunks.len() as u8,
    ];
    out.extend_from_slice(caps);
    out.extend_from_slice(chunks);
    out.extend_from_slice(payload);
    out
}

/// Splits fuzzer bytes into a [`CodecInput`].
pub fn parse_codec(data: &[u8]) -> CodecInput<'_> {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let n = usize::from(byte(1) >> 4);
    let m = usize::from(byte(2) & 0x0F);
    let at = |i: usize| i.min(data.len());
    let caps = &data[at(3)..at(3 + n)];
    let sizes = &data[at(3 + n)..at(3 + n + m)];
    let payload = &data[at(3 + n + m)..];
    CodecInput {
        window_bits: 8 + (byte(0) >> 1 & 7),
        no_context_takeover: byte(0) & 0x10 != 0,
        extra_bits: byte(0) >> 5 & 3,
        reserve: byte(0) & 0x80 != 0,
        level: u32::from(byte(1) & 0x0F) % 10,
        caps,
        chunks: split_chunks(sizes, payload),
        payload,
    }
}

/// Splits `rest` by the sizes in `spec`, cycled; the last chunk ends a message.
fn split_chunks<'a>(spec: &[u8], mut rest: &'a [u8]) -> Vec<(&'a [u8], bool)> {
    let mut chunks = Vec::new();
    if !spec.is_empty() {
        let (mut i, mut progress) = (0, false);
        while !rest.is_empty() {
            // A whole cycle of empty chunks: the rest goes at once.
            if i > 0 && i % spec.len() == 0 && !core::mem::take(&mut progress) {
                break;
            }
            let x = spec[i % spec.len()];
            i += 1;
            let n = chunk_size(x).unwrap_or(rest.len()).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            progress |= n > 0;
            chunks.push((chunk, x & END_OF_MESSAGE != 0));
        }
    }
    if rest.is_empty() && !chunks.is_empty() {
        chunks.last_mut().unwrap().1 = true;
    } else {
        chunks.push((rest, true));
    }
    chunks
}

/// The output vector a run starts with.
fn output(input: &CodecInput<'_>) -> Vec<u8> {
    if input.reserve {
        Vec::with_capacity(64 << 10)
    } else {
        Vec::new()
    }
}

/// Capped calls of a run, cycling through its caps.
struct Caps<'a> {
    caps: &'a [u8],
    next: usize,
}

impl Caps<'_> {
    /// The next call's cap, at least `floor`.
    fn next(&mut self, floor: usize) -> usize {
        let x = match self.caps {
            [] => 0,
            caps => caps[self.next % caps.len()],
        };
        self.next += 1;
        output_cap(x).max(floor)
    }
}

/// Part 1: the payload as compressed input, chunked with capped calls, against one-shot calls.
fn inflate_raw(input: &CodecInput<'_>) {
    let (bits, reset) = (input.window_bits, input.no_context_takeover);
    let mut one_shot = Decompressor::new(bits, reset);
    let mut chunked = Decompressor::new(bits, reset);
    let mut caps = Caps {
        caps: input.caps,
        next: 0,
    };
    let mut out = output(input);
    let mut total = 0;
    let mut chunks = &input.chunks[..];
    while !chunks.is_empty() {
        let n = chunks.iter().position(|c| c.1).unwrap() + 1;
        let (message, rest) = chunks.split_at(n);
        chunks = rest;

        let joined: Vec<u8> = message.iter().flat_map(|c| c.0.iter().copied()).collect();
        let mut expected = Vec::new();
        let whole = one_shot.decompress(&joined, true, &mut expected, ONE_SHOT_LIMIT);
        assert!(
            expected.len() <= ONE_SHOT_LIMIT,
            "one-shot output over its cap"
        );
        // Ok(true): complete; Ok(false): cut at the limit; Err: fails.
        let whole = whole.map(|r| {
            assert!(r.consumed <= joined.len());
            if r.done {
                assert_eq!(r.consumed, joined.len(), "done without consuming the input");
            } else {
                assert_eq!(expected.len(), ONE_SHOT_LIMIT, "stopped short of the cap");
            }
            r.done
        });
        total += expected.len();

        // The calls for this message stay bounded: caps are raised for big outputs.
        let floor = expected.len() / CALLS_PER_OUTPUT + 1;
        let max_calls = expected.len() / floor + 2 * message.len() + 2;
        let mut calls = 0;
        out.clear();
        let chunked_result = inflate_chunks(
            &mut chunked,
            message,
            &mut out,
            &mut caps,
            floor,
            |out: &[u8], before: usize| {
                calls += 1;
                match whole {
                    // The one-shot run failed: how much came out first is not
                    // compared, and a long chunked run is cut short.
                    Err(_) => calls >= max_calls,
                    _ if calls > max_calls => panic!(
                        "{calls} calls for {} bytes of one-shot output",
                        expected.len()
                    ),
                    // The output so far is the start of the one-shot output.
                    Ok(_) => {
                        assert!(
                            out.len() <= expected.len() || whole == Ok(false),
                            "chunked output longer than the one-shot output"
                        );
                        let end = out.len().min(expected.len());
                        let start = before.min(end);
                        assert!(
                            out[start..end] == expected[start..end],
                            "chunked output differs from the one-shot output at {start}..{end}"
                        );
                        // Cut at the limit: compared that far.
                        whole == Ok(false) && out.len() >= expected.len()
                    }
                }
            },
        );
        match (&whole, &chunked_result) {
            (Ok(true), Ok(true)) => {
                assert_eq!(out.len(), expected.len(), "chunked output shorter");
            }
            (Ok(false), Ok(true)) => {
                assert!(out.len() >= expected.len(), "chunked output shorter");
                return;
            }
            // Cut at the limit: the chunked run stopped there, or failed past it.
            (Ok(false), Ok(false) | Err(_)) => return,
            // Both failed, or the chunked run was cut short.
            (Err(_), Err(_) | Ok(false)) => return,
            (Ok(true), Err(e)) => panic!("chunked inflation failed ({e}), one-shot did not"),
            (Err(e), Ok(true)) => panic!("one-shot inflation failed ({e}), chunked did not"),
            (Ok(true), Ok(false)) => unreachable!(),
        }
        if total > TOTAL_LIMIT {
            return;
        }
    }
}

/// Inflates one message's chunks with capped calls, re-calling while not
/// `done`. `step(out, len_before)` runs after every call and returns true to
/// stop early. Returns whether the message was inflated to its end.
fn inflate_chunks(
    d: &mut Decompressor,
    message: &[(&[u8], bool)],
    out: &mut Vec<u8>,
    caps: &mut Caps<'_>,
    floor: usize,
    mut step: impl FnMut(&[u8], usize) -> bool,
) -> Result<bool, InflateError> {
    for &(chunk, end) in message {
        let mut rest = chunk;
        loop {
            let cap = caps.next(floor);
            let before = out.len();
            let r = d.decompress(rest, end, out, cap)?;
            let appended = out.len() - before;
            assert!(
                appended <= cap,
                "a call appended {appended} bytes under a cap of {cap}"
            );
            assert!(r.consumed <= rest.len(), "consumed more than given");
            rest = &rest[r.consumed..];
            if r.done {
                assert!(rest.is_empty(), "done with {} bytes unconsumed", rest.len());
            } else {
                assert_eq!(appended, cap, "not done, yet stopped short of the cap");
            }
            if step(out, before) {
                return Ok(false);
            }
            if r.done {
                break;
            }
        }
    }
    Ok(true)
}

/// Part 2: the chunks compressed as fragments of messages, inflated back.
fn round_trip(input: &CodecInput<'_>) {
    let reset = input.no_context_takeover;
    let mut compressor = Compressor::new(input.level, input.window_bits, reset);
    let inflate_bits = (input.window_bits + input.extra_bits).min(15);
    let mut d = Decompressor::new(inflate_bits, reset);
    let mut caps = Caps {
        caps: input.caps,
        next: 0,
    };
    let floor = input.payload.len() / CALLS_PER_OUTPUT + 1;
    let mut out = output(input);
    let mut sent = 0;
    let mut wire = Vec::new();
    for &(chunk, end) in &input.chunks {
        wire.clear();
        compressor.compress(chunk, end, &mut wire);
        // An empty fragment right after a flush may compress to nothing, a
        // message's end never does (the receiver's tail must end a block header).
        assert!(
            !wire.is_empty() || !end,
            "a message's end compressed to nothing"
        );
        sent += chunk.len();
        let max_calls = chunk.len() / floor + 2;
        let mut calls = 0;
        let done = inflate_chunks(
            &mut d,
            &[(&wire[..], end)],
            &mut out,
            &mut caps,
            floor,
            |out, _| {
                calls += 1;
                assert!(
                    calls <= max_calls,
                    "{calls} calls for {} bytes",
                    chunk.len()
                );
                assert!(out.len() <= sent, "inflated more than was compressed");
                false
            },
        );
        match done {
            Ok(true) => {}
            Ok(false) => unreachable!(),
            Err(e) => panic!("compressed data does not inflate: {e}"),
        }
        // Each fragment is flushed: everything sent so far came out.
        assert_eq!(out.len(), sent, "a fragment did not inflate whole");
        assert!(
            out[out.len() - chunk.len()..] == *chunk,
            "inflated bytes differ from the original"
        );
        if end {
            out.clear();
            sent = 0;
        }
    }
}

// ----- connection -----

/// The `max_message_size` a connection run can pick.
pub const MAX_MESSAGE_SIZES: [u64; 4] = [0, 100, 4096, 1 << 20];

/// Generated message bytes in a script, at most (enough to pass the largest limit).
const MESSAGE_BUDGET: usize = (1 << 20) + (512 << 10);

/// Reads of a run, at most: the rest then goes at once.
const MAX_READS: usize = 4096;

/// Item kinds, in the low 2 bits of an item's first byte.
pub mod item {
    /// A compressed message.
    pub const COMPRESSED: u8 = 0;
    /// A plain (uncompressed) message.
    pub const PLAIN: u8 = 1;
    /// A raw frame.
    pub const RAW: u8 = 2;
    /// A ping, pong or close.
    pub const CONTROL: u8 = 3;

    /// Message flag: text.
    pub const TEXT: u8 = 0x04;
    /// Message flag: the data repeated `b + 1` times.
    pub const REPEAT: u8 = 0x40;
    /// Message flag: a ping after the first fragment.
    pub const PING_BETWEEN: u8 = 0x80;
    /// Message: `n` fragments (1–8).
    pub const fn fragments(n: u8) -> u8 {
        (n - 1) << 3
    }

    /// Raw frame: the opcode.
    pub const fn opcode(op: u8) -> u8 {
        (op & 0x0F) << 2
    }
    /// Raw frame: FIN.
    pub const FIN: u8 = 0x40;
    /// Raw frame: RSV1.
    pub const RSV1: u8 = 0x80;
    /// Raw frame, in `b`: RSV2.
    pub const B_RSV2: u8 = 0x01;
    /// Raw frame, in `b`: RSV3.
    pub const B_RSV3: u8 = 0x02;
    /// Raw frame, in `b`: the payload is the data compressed.
    pub const B_COMPRESSED: u8 = 0x04;
    /// Raw frame, in `b`: ... compressed as a message's end.
    pub const B_END: u8 = 0x08;
    /// Raw frame, in `b`: not masked.
    pub const B_UNMASKED: u8 = 0x10;

    /// Control: a pong rather than a ping.
    pub const PONG: u8 = 0x04;
    /// Control: a close frame (1000, "bye").
    pub const CLOSE: u8 = 0x08;

    /// Encodes an item.
    pub fn encode(c: u8, b: u8, data: &[u8]) -> Vec<u8> {
        let len = u16::try_from(data.len()).expect("item data over 64 KiB");
        let mut out = vec![c];
        out.extend_from_slice(&len.to_le_bytes());
        out.push(b);
        out.extend_from_slice(data);
        out
    }
}

/// Byte 0 flags of a connection input.
pub const CONNECTION: u8 = 1;
/// Byte 0: streaming mode.
pub const STREAMING: u8 = 0x08;
/// Byte 0: reads through `recv_buffer`.
pub const VIA_BUFFER: u8 = 0x40;
/// Byte 0: auto-pong off.
pub const NO_AUTO_PONG: u8 = 0x80;
/// Byte 0 of a connection input: `max_message_size` and `read_buffer_size` indexes, and flags.
pub const fn conn_flags(max_message: u8, read_buffer: u8, flags: u8) -> u8 {
    CONNECTION | (max_message & 3) << 1 | (read_buffer & 3) << 4 | flags
}

/// Byte 1 flags: `client_max_window_bits` in the response.
pub const CLIENT_BITS: u8 = 0x08;
/// Byte 1: `client_no_context_takeover`.
pub const CLIENT_NO_TAKEOVER: u8 = 0x10;
/// Byte 1: `server_no_context_takeover`.
pub const SERVER_NO_TAKEOVER: u8 = 0x20;
/// Byte 1: `server_max_window_bits`.
pub const SERVER_BITS: u8 = 0x40;
/// Byte 1: no permessage-deflate.
pub const NO_DEFLATE: u8 = 0x80;

/// Builds a connection input, for seed corpora: the three setup bytes, the
/// masking key, read sizes and encoded items.
pub fn build_connection(setup: [u8; 3], key: [u8; 4], reads: &[u8], items: &[Vec<u8>]) -> Vec<u8> {
    assert!(setup[0] & 1 == 1 && reads.len() < 16);
    let mut out = setup.to_vec();
    out.extend_from_slice(&key);
    out.push(reads.len() as u8);
    out.extend_from_slice(reads);
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

/// The `Sec-WebSocket-Extensions` response byte 1 of an input stands for, and
/// the client's window bits and context takeover it agrees (`None`: no
/// permessage-deflate in force).
pub fn response(x: u8) -> (Option<String>, Option<(u8, bool)>) {
    let bits = 8 + (x & 7);
    if x & NO_DEFLATE != 0 {
        let other = (x & 1 == 1).then(|| String::from("x-webkit-deflate-frame"));
        return (other, None);
    }
    let mut value = String::from("permessage-deflate");
    if x & SERVER_NO_TAKEOVER != 0 {
        value.push_str("; server_no_context_takeover");
    }
    if x & CLIENT_NO_TAKEOVER != 0 {
        value.push_str("; client_no_context_takeover");
    }
    if x & SERVER_BITS != 0 {
        value.push_str(&format!("; server_max_window_bits={bits}"));
    }
    if x & CLIENT_BITS != 0 {
        value.push_str(&format!("; client_max_window_bits={bits}"));
    }
    let client_bits = if x & CLIENT_BITS != 0 { bits } else { 15 };
    (
        Some(value),
        Some((client_bits, x & CLIENT_NO_TAKEOVER != 0)),
    )
}

/// A data message the server must hand out, or a control frame.
#[derive(Debug, Clone)]
struct Message {
    kind: MessageKind,
    data: Vec<u8>,
    compressed: bool,
}

/// How the known part of the stream ends.
#[derive(Debug, Clone)]
enum End {
    /// It does not: the connection stays open.
    Open,
    /// This message fails the connection with this code (streaming may
    /// deliver a prefix of it first).
    Fail(u16, Message),
    /// A close frame (1000) closes it cleanly.
    Close,
    /// A raw frame: anything goes from there (within the generic rules).
    Unknown,
}

/// The client's byte stream, and what the server must make of it.
#[derive(Debug)]
struct Script {
    stream: Vec<u8>,
    messages: Vec<Message>,
    /// Pings (false) and pongs (true).
    controls: Vec<(bool, Vec<u8>)>,
    end: End,
}

/// A client writing frames.
struct Client {
    key: [u8; 4],
    frames: u32,
    stream: Vec<u8>,
}

impl Client {
    fn frame(&mut self, first: u8, rsv: u8, masked: bool, payload: &[u8]) {
        let key = self.key.map(|k| k ^ (self.frames as u8).wrapping_mul(0x9D));
        self.frames += 1;
        let mut header = FrameHeader::new(
            OpCode::new(first & 0x0F),
            first & 0x80 != 0,
            masked.then_some(key),
        );
        header.rsv1 = rsv & 0x40 != 0;
        header.rsv2 = rsv & 0x20 != 0;
        header.rsv3 = rsv & 0x10 != 0;
        encode_frame(&mut self.stream, &header, payload);
    }
}

/// Builds the client's stream from the items.
#[allow(clippy::too_many_arguments)]
fn script(
    mut items: &[u8],
    key: [u8; 4],
    compressor: &mut Compressor,
    deflate: bool,
    max: u64,
) -> Script {
    let mut client = Client {
        key,
        frames: 0,
        stream: Vec::new(),
    };
    let (mut messages, mut controls, mut end) = (Vec::new(), Vec::new(), End::Open);
    let mut budget = MESSAGE_BUDGET;
    while !items.is_empty() {
        let byte = |i: usize| items.get(i).copied().unwrap_or(0);
        let (c, b) = (byte(0), byte(3));
        let len = usize::from(u16::from_le_bytes([byte(1), byte(2)]));
        let data = &items[4.min(items.len())..(4 + len).min(items.len())];
        items = &items[(4 + len).min(items.len())..];
        let known = matches!(end, End::Open);
        match c & 3 {
            kind @ (item::COMPRESSED | item::PLAIN) => {
                let compressed = kind == item::COMPRESSED;
                let text = c & item::TEXT != 0;
                let repeat = c & item::REPEAT != 0;
                let mut data = if repeat {
                    let times = (usize::from(b) + 1).min(budget / data.len().max(1));
                    data.repeat(times)
                } else {
                    data.to_vec()
                };
                if text {
                    data = String::from_utf8_lossy(&data).into_owned().into_bytes();
                }
                if data.len() > budget {
                    break;
                }
                budget -= data.len();
                let kind = if text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                // The fragments: the first takes b/256 of the data unless repeated.
                let count = usize::from(c >> 3 & 7) + 1;
                let mut pieces = Vec::with_capacity(count);
                let mut rest = &data[..];
                if count > 1 && !repeat {
                    let (first, tail) = rest.split_at(data.len() * usize::from(b) / 256);
                    pieces.push(first);
                    rest = tail;
                }
                let left = count - pieces.len();
                let size = rest.len().div_ceil(left);
                for i in 0..left {
                    let n = if i + 1 == left {
                        rest.len()
                    } else {
                        size.min(rest.len())
                    };
                    let (piece, tail) = rest.split_at(n);
                    pieces.push(piece);
                    rest = tail;
                }
                let payloads: Vec<Vec<u8>> = pieces
                    .iter()
                    .enumerate()
                    .map(|(i, piece)| {
                        if compressed {
                            let mut out = Vec::new();
                            compressor.compress(piece, i + 1 == count, &mut out);
                            out
                        } else {
                            piece.to_vec()
                        }
                    })
                    .collect();
                let wire: usize = payloads.iter().map(Vec::len).sum();
                let fail = if compressed && !deflate {
                    Some(1002)
                } else if data.len() as u64 > max || (!compressed && wire as u64 > max) {
                    // A compressed message's limit is on what it inflates
                    // to, not on its wire size (within max_compressed_len
                    // of the frame limit, which is far above these).
                    Some(1009)
                } else {
                    None
                };
                // A ping between fragments only in messages that go through whole.
                let ping = c & item::PING_BETWEEN != 0 && count > 1 && fail.is_none();
                for (i, payload) in payloads.iter().enumerate() {
                    let opcode = if i == 0 { kind.opcode().bits() } else { 0 };
                    let fin = if i + 1 == count { 0x80 } else { 0 };
                    let rsv = if compressed && i == 0 { 0x40 } else { 0 };
                    client.frame(fin | opcode, rsv, true, payload);
                    if i == 0 && ping {
                        client.frame(0x89, 0, true, b"between");
                    }
                }
                if known {
                    let message = Message {
                        kind,
                        data,
                        compressed,
                    };
                    match fail {
                        None => {
                            if ping {
                                controls.push((false, b"between".to_vec()));
                            }
                            messages.push(message);
                        }
                        Some(code) => end = End::Fail(code, message),
                    }
                }
            }
            item::RAW => {
                let payload = if b & item::B_COMPRESSED != 0 {
                    let mut out = Vec::new();
                    compressor.compress(data, b & item::B_END != 0, &mut out);
                    out
                } else {
                    data.to_vec()
                };
                let first = (c >> 2 & 0x0F) | if c & item::FIN != 0 { 0x80 } else { 0 };
                let rsv = if c & item::RSV1 != 0 { 0x40 } else { 0 }
                    | if b & item::B_RSV2 != 0 { 0x20 } else { 0 }
                    | if b & item::B_RSV3 != 0 { 0x10 } else { 0 };
                client.frame(first, rsv, b & item::B_UNMASKED == 0, &payload);
                if known {
                    end = End::Unknown;
                }
            }
            _ => {
                if c & item::CLOSE != 0 {
                    let mut payload = 1000u16.to_be_bytes().to_vec();
                    payload.extend_from_slice(b"bye");
                    client.frame(0x88, 0, true, &payload);
                    if known {
                        end = End::Close;
                    }
                } else {
                    let pong = c & item::PONG != 0;
                    let payload = &data[..data.len().min(125)];
                    client.frame(if pong { 0x8A } else { 0x89 }, 0, true, payload);
                    if known {
                        controls.push((pong, payload.to_vec()));
                    }
                }
            }
        }
    }
    Script {
        stream: client.stream,
        messages,
        controls,
        end,
    }
}

/// The checker of one connection's events.
struct Observer<'s> {
    script: &'s Script,
    streaming: bool,
    max: u64,
    read_buffer: usize,
    /// The next message and control to come.
    next_message: usize,
    next_control: usize,
    /// Streaming: the message being pieced together.
    current: Option<(MessageKind, Vec<u8>)>,
    events: usize,
    fed: usize,
    last_read: usize,
    delivered: usize,
    closed: bool,
    memory_bound: usize,
    wire: Vec<u8>,
    closed_wire: Option<usize>,
}

impl Observer<'_> {
    /// What the next message must be: `None` if anything goes.
    fn expected(&self) -> Option<&Message> {
        match (
            self.script.messages.get(self.next_message),
            &self.script.end,
        ) {
            (Some(m), _) => Some(m),
            (None, End::Fail(_, m)) => Some(m),
            (None, End::Unknown) => None,
            (None, end) => panic!("a message after every one sent ({end:?})"),
        }
    }

    /// Checks that a whole message is the next one sent.
    fn message(&mut self, kind: MessageKind, data: &[u8]) {
        assert!(data.len() as u64 <= self.max, "a message over the limit");
        self.delivered += data.len();
        if let Some(expected) = self.expected() {
            assert!(
                self.next_message < self.script.messages.len(),
                "a message that should have failed the connection was delivered"
            );
            assert_eq!(kind, expected.kind, "message kind");
            assert!(
                data == expected.data,
                "message {} differs: {} bytes, sent {} (compressed {})",
                self.next_message,
                data.len(),
                expected.data.len(),
                expected.compressed
            );
            self.next_message += 1;
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Text(text) => {
                assert!(!self.streaming, "a whole message in streaming mode");
                assert!(core::str::from_utf8(text.as_bytes()).is_ok());
                self.message(MessageKind::Text, text.as_bytes());
            }
            Event::Binary(data) => {
                assert!(!self.streaming, "a whole message in streaming mode");
                self.message(MessageKind::Binary, data);
            }
            Event::Fragment(piece) => {
                assert!(self.streaming, "a fragment in whole mode");
                let len = piece.data.len();
                self.delivered += len;
                assert!(len > 0 || piece.last, "an empty piece that is not the last");
                // An inflated piece fills at most the read buffer; a plain one
                // is what one read brought in (plus a header kept from before).
                let inflated = self.read_buffer.max(1);
                assert!(
                    len <= inflated.max(self.last_read + MAX_HEADER_LEN),
                    "a piece of {len} bytes, read buffer {}, read {}",
                    self.read_buffer,
                    self.last_read
                );
                let (kind, bytes) = crate::continue_streamed(&mut self.current, &piece);
                assert!(
                    bytes.len() as u64 <= self.max,
                    "streamed message over the limit"
                );
                if let Some(expected) = self.expected() {
                    assert_eq!(kind, expected.kind, "message kind");
                    if expected.compressed {
                        assert!(len <= inflated, "an inflated piece of {len} bytes");
                    }
                    assert!(
                        expected.data.starts_with(&bytes),
                        "streamed message {} differs within its first {} bytes",
                        self.next_message,
                        bytes.len()
                    );
                }
                if piece.last {
                    if kind == MessageKind::Text {
                        assert!(core::str::from_utf8(&bytes).is_ok(), "invalid UTF-8");
                    }
                    self.delivered -= bytes.len();
                    self.message(kind, &bytes);
                } else {
                    self.current = Some((kind, bytes));
                }
            }
            Event::Ping(data) => self.control(false, data),
            Event::Pong(data) => self.control(true, data),
            Event::Closed(info) => {
                self.closed = true;
                self.current = None;
                let error = info.error().is_some();
                if error {
                    assert!(
                        [1002, 1007, 1009].contains(&info.code().0),
                        "failed with {:?}: {:?}",
                        info.code(),
                        info.error()
                    );
                    assert_eq!(info.initiator(), Initiator::Local);
                } else {
                    assert!(
                        info.is_clean(),
                        "closed, neither clean nor failed: {info:?}"
                    );
                    assert_eq!(info.initiator(), Initiator::Remote);
                }
                // Everything before the end of the known part came first.
                assert_eq!(
                    (self.next_message, self.next_control),
                    (self.script.messages.len(), self.script.controls.len()),
                    "closed before everything sent was delivered: {info:?}"
                );
                match &self.script.end {
                    End::Open => panic!("closed though every frame was valid: {info:?}"),
                    End::Fail(code, _) => {
                        assert_eq!(info.code().0, *code, "{:?}", info.error());
                        assert!(error);
                    }
                    End::Close => {
                        assert!(!error && info.code() == CloseCode::NORMAL, "{info:?}");
                    }
                    End::Unknown => {}
                }
            }
            Event::Request(_) | Event::Open(_) => panic!("a handshake event: {event:?}"),
        }
    }

    fn control(&mut self, pong: bool, data: &[u8]) {
        assert!(data.len() <= 125);
        match self.script.controls.get(self.next_control) {
            Some((p, payload)) => {
                assert_eq!((pong, data), (*p, &payload[..]), "control frame");
                self.next_control += 1;
            }
            None => assert!(
                matches!(self.script.end, End::Unknown),
                "a ping or pong that was not sent"
            ),
        }
    }

    /// Drains every event, then every transmit.
    fn drain(&mut self, conn: &mut Connection) {
        while let Some(event) = conn.poll_event() {
            assert!(!self.closed, "an event after Closed: {event:?}");
            self.events += 1;
            self.event(event);
            assert!(
                self.events <= self.fed + self.delivered + 1,
                "{} events from {} bytes, {} delivered",
                self.events,
                self.fed,
                self.delivered
            );
        }
        if self.closed {
            assert!(conn.is_closed() && conn.poll_event().is_none());
        }
        while let Some(bytes) = conn.poll_transmit() {
            let n = bytes.len();
            self.wire.extend_from_slice(bytes);
            conn.transmitted(n);
        }
        match self.closed_wire {
            Some(len) => assert_eq!(self.wire.len(), len, "bytes sent after Closed"),
            None if self.closed => self.closed_wire = Some(self.wire.len()),
            None => {}
        }
        let memory = conn.memory_usage();
        assert!(
            memory <= self.memory_bound,
            "memory_usage {memory} over {}",
            self.memory_bound
        );
    }
}

/// The connection level; see the module docs.
fn connection(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let mut config = Config::default();
    config.max_message_size = MAX_MESSAGE_SIZES[usize::from(byte(0) >> 1 & 3)];
    config.mode = if byte(0) & STREAMING != 0 {
        MessageMode::Streaming
    } else {
        MessageMode::Whole
    };
    config.read_buffer_size = READ_BUFFER_SIZES[usize::from(byte(0) >> 4 & 3)];
    let via_buffer = byte(0) & VIA_BUFFER != 0;
    config.auto_pong = byte(0) & NO_AUTO_PONG == 0;
    let (extensions, agreed) = response(byte(1));
    if let (Some(value), Some((bits, reset))) = (&extensions, agreed) {
        // The crate reads the response as the harness does.
        let agreement = Agreement::from_server_response([value.as_str()])
            .expect("a valid response not applied");
        assert_eq!(
            (
                agreement.peer_window_bits,
                agreement.peer_no_context_takeover
            ),
            (bits, reset),
            "{value}"
        );
    }
    // The client compresses within what was agreed (a smaller window, and
    // resetting more often, are its choice).
    let (peer_bits, peer_reset) = agreed.unwrap_or((15, false));
    let level = u32::from(byte(2) & 0x0F) % 10;
    let bits = peer_bits.saturating_sub(byte(2) >> 4 & 7).max(8);
    let mut compressor = Compressor::new(level, bits, peer_reset || byte(2) & 0x80 != 0);
    let key = [byte(3), byte(4), byte(5), byte(6)];
    let n = usize::from(byte(7) & 0x0F);
    let at = |i: usize| i.min(data.len());
    let reads = &data[at(8)..at(8 + n)];
    let items = &data[at(8 + n)..];

    let script = script(
        items,
        key,
        &mut compressor,
        agreed.is_some(),
        config.max_message_size,
    );
    let negotiated = Negotiated {
        protocol: None,
        extensions,
    };
    let mut conn = Connection::open_server_negotiated(config.clone(), negotiated);
    let scale = config.max_message_size.max(config.read_buffer_size as u64) as usize;
    let mut obs = Observer {
        script: &script,
        streaming: config.mode == MessageMode::Streaming,
        max: config.max_message_size,
        read_buffer: config.read_buffer_size,
        next_message: 0,
        next_control: 0,
        current: None,
        events: 0,
        fed: 0,
        last_read: 0,
        delivered: 0,
        closed: false,
        memory_bound: 4 * scale + 4 * script.stream.len() + (1 << 20),
        wire: Vec::new(),
        closed_wire: None,
    };

    let mut rest = &script.stream[..];
    let mut count = 0;
    while !rest.is_empty() {
        let size = match reads {
            _ if count >= MAX_READS => usize::MAX,
            [] => usize::MAX,
            reads => read_size(reads[count % reads.len()]),
        };
        count += 1;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        if via_buffer {
            let mut chunk = chunk;
            while !chunk.is_empty() {
                let buf = conn.recv_buffer();
                assert!(buf.len() >= crate::least_read(&config));
                let n = buf.len().min(chunk.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                conn.commit_recv(n);
                (obs.fed, obs.last_read) = (obs.fed + n, n);
                chunk = &chunk[n..];
                obs.drain(&mut conn);
            }
        } else {
            conn.handle_read(chunk);
            (obs.fed, obs.last_read) = (obs.fed + chunk.len(), chunk.len());
            obs.drain(&mut conn);
        }
    }
    obs.drain(&mut conn);
    assert_eq!(
        (obs.next_message, obs.next_control),
        (script.messages.len(), script.controls.len()),
        "not everything sent was delivered"
    );
    match &script.end {
        End::Open => assert!(
            !obs.closed && conn.is_open(),
            "closed though every frame was valid"
        ),
        End::Fail(..) | End::Close => assert!(obs.closed, "the connection did not close"),
        End::Unknown => {}
    }
    check_transmitted(Role::Server, &obs.wire, false);
}
