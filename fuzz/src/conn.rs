//! The `server_connection` and `client_connection` harness: a [`Connection`]
//! fed arbitrary bytes in reads of varying size through both input paths, with
//! end of stream and commands interleaved, draining every event and transmit
//! after each step.
//!
//! Checks:
//! - nothing panics, and the number of events is bounded by the bytes fed;
//! - after [`Event::Closed`], no event ever again and nothing more is queued;
//! - delivered data respects the limits of the [`Config`];
//! - streamed pieces follow their `first`/`last` flags, text pieces are a
//!   valid UTF-8 prefix and a whole streamed text is valid UTF-8;
//! - differential: the same script fed with each run of reads merged into one
//!   `handle_read` gives the same messages, close and command results, and
//!   the same frames sent, but for pongs: a run that writes less often may
//!   answer only the latest of several pings (RFC 6455 §5.5.3), so each run's
//!   pongs need only answer its pings in order, and masking keys (a client's)
//!   follow the frames sent;
//! - the transmitted bytes are well-formed frames for the peer, with at most
//!   one close frame, and it comes last; nothing is sent after `Closed`.
//!
//! [`execute_on`] also runs connections created with the opening handshake to
//! do ([`Handshake`]), for the `handshake` harness: the observer then expects
//! `Request` (answered at once) and `Open` before any message, and records
//! how many bytes were fed when the handshake settled.
//!
//! Input layout (missing bytes read as 0):
//!
//! | bytes        | meaning                                                             |
//! |--------------|---------------------------------------------------------------------|
//! | `[0]`        | bit 0 streaming; bit 1 auto-pong off; bits 2–3 read buffer size index ([`READ_BUFFER_SIZES`]); bits 4–7 entropy seed |
//! | `[1..3]`     | `max_frame_size`, u16 little endian                                 |
//! | `[3..5]`     | `max_message_size`, u16 little endian                               |
//! | `[5]`        | low 5 bits: `n`, the number of op bytes that follow                 |
//! | `[6..6+n]`   | ops, used in turn and cycled (none: one read of everything)         |
//! | rest         | the bytes received from the peer                                    |
//!
//! An op's top 3 bits pick the step and its low 5 bits `x` its argument:
//! 0–2 `handle_read`, 3–5 `recv_buffer` + `commit_recv` (of [`read_size`]`(x)`
//! bytes), 6 command `x` (see [`command`]; at most [`MAX_COMMANDS`] in a
//! script), 7 `handle_eof` if `x == 31`, else `handle_read`.

use wsmachine::frame::{Decoded, DecoderConfig, FrameDecoder, MAX_HEADER_LEN, OpCode, Role};
use wsmachine::handshake::{Accept, Negotiated, Reject, Request};
use wsmachine::{
    CloseCode, CloseFrame, Config, Connection, Error, Event, Initiator, MessageKind, MessageMode,
    SeededEntropy, UsageError,
};

/// The `read_buffer_size` a run can pick.
pub const READ_BUFFER_SIZES: [usize; 4] = [16 << 10, 1, 7, 256];

/// The most commands a script runs.
pub const MAX_COMMANDS: usize = 32;

/// A step of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Bytes received, through `handle_read` (`false`) or `recv_buffer` (`true`).
    Read(&'a [u8], bool),
    /// A command, see [`command`].
    Command(u8),
    /// `handle_eof`.
    Eof,
}

/// A decoded harness input.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The configuration.
    pub config: Config,
    /// The client's entropy seed.
    pub seed: u64,
    /// What to do, in order.
    pub steps: Vec<Step<'a>>,
}

/// Bytes a read op of argument `x` takes: 0 all the rest, 1–16 as is, then powers of two to 512 KiB.
pub fn read_size(x: u8) -> usize {
    match x & 0x1F {
        0 => usize::MAX,
        x @ 1..=16 => usize::from(x),
        x => 1 << (x - 12),
    }
}

/// Flags of the first byte.
pub const STREAMING: u8 = 1;
/// Flags of the first byte.
pub const NO_AUTO_PONG: u8 = 2;

/// An op byte: `handle_read` of [`read_size`]`(x)` bytes.
pub const fn op_read(x: u8) -> u8 {
    x & 0x1F
}
/// An op byte: `recv_buffer` + `commit_recv` of [`read_size`]`(x)` bytes.
pub const fn op_buffer(x: u8) -> u8 {
    3 << 5 | (x & 0x1F)
}
/// An op byte: command `x`.
pub const fn op_command(x: u8) -> u8 {
    6 << 5 | (x & 0x1F)
}
/// An op byte: `handle_eof`.
pub const OP_EOF: u8 = 0xFF;

/// Builds a harness input (the inverse of [`parse`]), for seed corpora.
pub fn build(flags: u8, max_frame: u16, max_message: u16, ops: &[u8], stream: &[u8]) -> Vec<u8> {
    assert!(ops.len() < 32);
    let mut out = vec![flags];
    out.extend_from_slice(&max_frame.to_le_bytes());
    out.extend_from_slice(&max_message.to_le_bytes());
    out.push(ops.len() as u8);
    out.extend_from_slice(ops);
    out.extend_from_slice(stream);
    out
}

/// Splits fuzzer bytes into an [`Input`].
pub fn parse(data: &[u8]) -> Input<'_> {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let mut config = Config::default();
    config.mode = if byte(0) & STREAMING != 0 {
        MessageMode::Streaming
    } else {
        MessageMode::Whole
    };
    config.auto_pong = byte(0) & NO_AUTO_PONG == 0;
    config.read_buffer_size = READ_BUFFER_SIZES[usize::from(byte(0) >> 2 & 3)];
    config.max_frame_size = u64::from(u16::from_le_bytes([byte(1), byte(2)]));
    config.max_message_size = u64::from(u16::from_le_bytes([byte(3), byte(4)]));
    let seed = u64::from(byte(0) >> 4);
    let n = usize::from(byte(5) & 0x1F);
    let ops = &data[6.min(data.len())..(6 + n).min(data.len())];
    let mut rest = &data[(6 + n).min(data.len())..];

    let mut steps = Vec::new();
    if ops.is_empty() {
        if !rest.is_empty() {
            steps.push(Step::Read(rest, false));
        }
        return Input {
            config,
            seed,
            steps,
        };
    }
    let (mut i, mut commands, mut read_in_cycle) = (0, 0, false);
    // Cycle through the ops while bytes remain, then finish the cycle (so a
    // script can end with commands), reads taking nothing by then.
    while !rest.is_empty() || i % ops.len() != 0 {
        if i % ops.len() == 0 && i > 0 && !core::mem::take(&mut read_in_cycle) {
            // A whole cycle without a read: read the rest at once.
            steps.push(Step::Read(rest, false));
            break;
        }
        let op = ops[i % ops.len()];
        i += 1;
        let x = op & 0x1F;
        let step = match op >> 5 {
            // Commands are capped: each may queue up to 70 KB to send.
            6 if commands == MAX_COMMANDS => continue,
            6 => {
                commands += 1;
                Step::Command(x)
            }
            7 if x == 0x1F => Step::Eof,
            kind => {
                if rest.is_empty() {
                    continue;
                }
                let (chunk, tail) = rest.split_at(read_size(x).min(rest.len()));
                rest = tail;
                read_in_cycle = true;
                Step::Read(chunk, (3..=5).contains(&kind))
            }
        };
        steps.push(step);
    }
    Input {
        config,
        seed,
        steps,
    }
}

/// Runs command `x` (taken modulo 16) on `conn`.
pub fn command(conn: &mut Connection, x: u8) -> Result<(), Error> {
    let euro = "€".as_bytes();
    match x % 16 {
        0 => conn.send_text("hello"),
        1 => conn.send_text(""),
        2 => conn.send_binary(&[0xAB; 300]),
        3 => conn.send_ping(b"ping"),
        4 => conn.send_pong(b""),
        5 => conn.close(CloseCode::NORMAL, "bye"),
        6 => conn.close(CloseCode(4000), ""),
        // Refused: 1005 never goes on the wire.
        7 => conn.close(CloseCode::NO_STATUS, ""),
        // A code point split across two fragments.
        8 => conn.send_fragment(MessageKind::Text, &[b'h', euro[0]], false),
        9 => conn.send_fragment(MessageKind::Text, &euro[1..], true),
        10 => conn.send_fragment(MessageKind::Binary, b"ab", false),
        11 => conn.send_fragment(MessageKind::Binary, b"", true),
        // Refused: over 125 bytes.
        12 => conn.send_ping(&[0; 126]),
        // A 64-bit length on the wire.
        13 => conn.send_text(&"x".repeat(70_000)),
        // Refused: the reason does not fit.
        14 => conn.close(CloseCode::GOING_AWAY, &"r".repeat(124)),
        _ => conn.send_fragment(MessageKind::Text, b"x", true),
    }
}

/// What a run observed, normalised so that runs that split reads differently compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A whole text message (or a streamed one, reassembled).
    Text(String),
    /// A whole binary message (or a streamed one, reassembled).
    Binary(Vec<u8>),
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The end.
    Closed {
        /// Close code.
        code: CloseCode,
        /// Close reason.
        reason: String,
        /// Who closed.
        initiator: Initiator,
        /// Clean close.
        clean: bool,
        /// The failure, if any.
        error: Option<Error>,
    },
    /// A command's result.
    Command(u8, Result<(), Error>),
    /// Server: the upgrade request handed out.
    Request(Box<Request>),
    /// Server: the result of answering it (see [`Handshake`]).
    Answer(Result<(), Error>),
    /// The opening handshake completed.
    Open(Negotiated),
}

/// Whether a run starts with the opening handshake, and how a server answers
/// the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// The connection is created open: a handshake event is a bug.
    Off,
    /// A client that sent its request and waits for the response.
    Client,
    /// A server that accepts the request, selecting the first subprotocol
    /// offered if `protocol`.
    Accept {
        /// Select the first subprotocol offered, if any.
        protocol: bool,
    },
    /// A server that refuses the request with [`REJECT_STATUS`] and [`REJECT_BODY`].
    Reject,
}

/// How a [`Handshake::Reject`] server refuses.
pub const REJECT_STATUS: u16 = 403;
/// How a [`Handshake::Reject`] server refuses.
pub const REJECT_BODY: &[u8] = b"origin not allowed";

/// Everything a run observed.
#[derive(Debug, Default)]
pub struct Record {
    /// Events and command results in order.
    pub seen: Vec<Seen>,
    /// Every byte transmitted.
    pub wire: Vec<u8>,
    /// With a handshake: the bytes fed when it was settled (request or
    /// response parsed, or the connection closed before).
    pub handshake_fed: Option<usize>,
}

/// The checker for one connection's events.
struct Observer {
    mode: MessageMode,
    max_frame: u64,
    max_message: u64,
    /// Events delivered so far, and bytes fed so far.
    events: usize,
    fed: usize,
    /// Size of the last read.
    last_read: usize,
    closed: bool,
    /// Streaming: the message being pieced together.
    streaming: Option<(MessageKind, Vec<u8>)>,
    record: Record,
    handshake: Handshake,
    /// The handshake completed (always, for a connection created open).
    opened: bool,
    /// Server: the request handed out waits for an answer, with the protocol to select.
    to_answer: Option<Option<String>>,
    /// Bytes on the wire when the `Closed` event was handed out.
    closed_wire: Option<usize>,
    /// permessage-deflate is in force (a request may offer it by hand): a
    /// streamed piece is then inflated output, up to `read_buffer_size`,
    /// and a few input bytes may make many events.
    compressed: bool,
    read_buffer: usize,
    /// Message bytes handed out so far.
    delivered: usize,
}

impl Observer {
    fn new(config: &Config, handshake: Handshake) -> Self {
        Self {
            handshake,
            opened: handshake == Handshake::Off,
            to_answer: None,
            closed_wire: None,
            compressed: false,
            read_buffer: config.read_buffer_size.max(1),
            delivered: 0,
            mode: config.mode,
            max_frame: config.max_frame_size,
            max_message: config.max_message_size,
            events: 0,
            fed: 0,
            last_read: 0,
            closed: false,
            streaming: None,
            record: Record::default(),
        }
    }

    /// Drains every event, then every transmit (in pieces if `piecewise`).
    fn drain(&mut self, conn: &mut Connection, piecewise: bool) {
        loop {
            // Known once the handshake is done, which may be in this drain.
            self.compressed = conn
                .negotiated()
                .extensions
                .as_deref()
                .is_some_and(|e| e.contains("permessage-deflate"));
            let Some(event) = conn.poll_event() else {
                break;
            };
            assert!(!self.closed, "an event after Closed: {event:?}");
            self.events += 1;
            // Each event but the last takes at least one byte of input, or
            // (inflating) hands out at least one byte.
            assert!(
                self.events <= self.fed + 1 + if self.compressed { self.delivered } else { 0 },
                "{} events from {} bytes",
                self.events,
                self.fed
            );
            self.event(event);
            if let Some(protocol) = self.to_answer.take() {
                let result = match self.handshake {
                    Handshake::Reject => conn.reject(&Reject::new(REJECT_STATUS).body(REJECT_BODY)),
                    _ => conn.accept(match protocol {
                        Some(p) => Accept::new().protocol(&p),
                        None => Accept::new(),
                    }),
                };
                // Nothing in the request can make a well-formed answer fail.
                assert_eq!(result, Ok(()), "answering the request failed");
                self.record.seen.push(Seen::Answer(result));
            }
        }
        if self.closed {
            assert!(conn.is_closed() && !conn.is_open());
            assert!(conn.poll_event().is_none());
        }
        if piecewise {
            // Write in uneven pieces through poll_transmit / transmitted.
            let mut sizes = [1usize, 7, usize::MAX].into_iter().cycle();
            while let Some(bytes) = conn.poll_transmit() {
                let n = bytes.len().min(sizes.next().unwrap());
                self.record.wire.extend_from_slice(&bytes[..n]);
                conn.transmitted(n);
            }
        } else {
            conn.drain_transmit(&mut self.record.wire);
        }
        assert_eq!(conn.pending_transmit(), 0);
        // What was queued up to the Closed event went out with it; nothing after.
        match self.closed_wire {
            Some(len) => assert_eq!(self.record.wire.len(), len, "bytes sent after Closed"),
            None if self.closed => self.closed_wire = Some(self.record.wire.len()),
            None => {}
        }
    }

    fn event(&mut self, event: Event<'_>) {
        let seen = match event {
            Event::Request(_) | Event::Open(_) if self.handshake == Handshake::Off => {
                panic!("a handshake event on a connection created open: {event:?}")
            }
            Event::Request(request) => {
                assert!(
                    matches!(self.handshake, Handshake::Accept { .. } | Handshake::Reject),
                    "a request handed out to a client"
                );
                assert!(
                    self.record.handshake_fed.is_none(),
                    "a second request handed out"
                );
                self.record.handshake_fed = Some(self.fed);
                let protocol = match self.handshake {
                    Handshake::Accept { protocol: true } => {
                        request.protocols().next().map(String::from)
                    }
                    _ => None,
                };
                self.to_answer = Some(protocol);
                Seen::Request(Box::new(request.clone()))
            }
            Event::Open(negotiated) => {
                assert!(!self.opened, "a second Open");
                assert!(
                    !matches!(self.handshake, Handshake::Reject),
                    "Open after the request was refused"
                );
                if self.handshake == Handshake::Client {
                    assert!(self.record.handshake_fed.is_none());
                    self.record.handshake_fed = Some(self.fed);
                }
                self.opened = true;
                Seen::Open(negotiated.clone())
            }
            _ if !self.opened && !matches!(event, Event::Closed(_)) => {
                panic!("a message event before the handshake completed: {event:?}")
            }
            Event::Text(text) => {
                assert_eq!(
                    self.mode,
                    MessageMode::Whole,
                    "a whole message in streaming mode"
                );
                assert!(text.len() as u64 <= self.max_message, "text over the limit");
                self.delivered += text.len();
                Seen::Text(text.into())
            }
            Event::Binary(data) => {
                assert_eq!(
                    self.mode,
                    MessageMode::Whole,
                    "a whole message in streaming mode"
                );
                assert!(
                    data.len() as u64 <= self.max_message,
                    "binary over the limit"
                );
                self.delivered += data.len();
                Seen::Binary(data.into())
            }
            Event::Fragment(piece) => {
                assert_eq!(
                    self.mode,
                    MessageMode::Streaming,
                    "a fragment in whole mode"
                );
                let len = piece.data.len();
                self.delivered += len;
                // max_frame_size bounds frames on the wire, not inflated output.
                assert!(
                    self.compressed || len as u64 <= self.max_frame,
                    "piece over max_frame_size"
                );
                // A piece is part of one frame, and of what one read brought
                // in (plus at most an unfinished header kept from the read
                // before); a piece of a compressed message is inflated
                // output, bounded by the read buffer instead.
                assert!(
                    len < self.last_read + MAX_HEADER_LEN
                        || (self.compressed && len <= self.read_buffer),
                    "piece of {len} bytes from a read of {}",
                    self.last_read
                );
                assert!(len > 0 || piece.last, "an empty piece that is not the last");
                let (kind, bytes) = crate::continue_streamed(&mut self.streaming, &piece);
                assert!(
                    bytes.len() as u64 <= self.max_message,
                    "streamed message over the limit"
                );
                if kind == MessageKind::Text {
                    // Every piece delivered is validated: the text so far is a UTF-8 prefix.
                    if let Err(e) = core::str::from_utf8(&bytes) {
                        assert!(
                            e.error_len().is_none() && !piece.last,
                            "invalid UTF-8 delivered"
                        );
                    }
                }
                if !piece.last {
                    self.streaming = Some((kind, bytes));
                    return;
                }
                match kind {
                    MessageKind::Text => Seen::Text(String::from_utf8(bytes).unwrap()),
                    MessageKind::Binary => Seen::Binary(bytes),
                }
            }
            Event::Ping(data) => {
                assert!(data.len() <= 125);
                Seen::Ping(data.into())
            }
            Event::Pong(data) => {
                assert!(data.len() <= 125);
                Seen::Pong(data.into())
            }
            Event::Closed(info) => {
                self.closed = true;
                if self.record.handshake_fed.is_none() && self.handshake != Handshake::Off {
                    self.record.handshake_fed = Some(self.fed);
                }
                self.streaming = None;
                Seen::Closed {
                    code: info.code(),
                    reason: info.reason().into(),
                    initiator: info.initiator(),
                    clean: info.is_clean(),
                    error: info.error().cloned(),
                }
            }
        };
        self.record.seen.push(seen);
    }
}

fn open(role: Role, config: &Config, seed: u64) -> Connection {
    match role {
        Role::Client => Connection::open_client(config.clone(), SeededEntropy::new(seed)),
        Role::Server => Connection::open_server(config.clone()),
    }
}

/// Runs `steps` on a fresh connection. `merge`: feed each run of reads as
/// one `handle_read` and drain the transmits at once (the reference run).
pub fn execute(role: Role, config: &Config, seed: u64, steps: &[Step<'_>], merge: bool) -> Record {
    execute_on(open(role, config, seed), steps, merge, Handshake::Off)
}

/// Runs `steps` on `conn` (created with a handshake to do unless `handshake`
/// is [`Handshake::Off`]); see [`execute`].
pub fn execute_on(
    mut conn: Connection,
    steps: &[Step<'_>],
    merge: bool,
    handshake: Handshake,
) -> Record {
    let config = &conn.config().clone();
    let mut obs = Observer::new(config, handshake);
    // A client with a handshake to do has its request queued already.
    obs.drain(&mut conn, false);
    let mut pending: Vec<u8> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let piecewise = !merge && i % 2 == 1;
        match *step {
            Step::Read(data, via_buffer) => {
                if merge {
                    pending.extend_from_slice(data);
                    if matches!(steps.get(i + 1), Some(Step::Read(..))) {
                        continue;
                    }
                    obs.fed += pending.len();
                    obs.last_read = pending.len();
                    conn.handle_read(&pending);
                    pending.clear();
                } else if via_buffer {
                    // As an adapter does: read into the connection's buffer,
                    // as much as fits, and commit what was read.
                    let mut data = data;
                    while !data.is_empty() {
                        let buf = conn.recv_buffer();
                        assert!(buf.len() >= crate::least_read(&config));
                        let n = buf.len().min(data.len());
                        buf[..n].copy_from_slice(&data[..n]);
                        conn.commit_recv(n);
                        obs.fed += n;
                        obs.last_read = n;
                        data = &data[n..];
                        if !data.is_empty() {
                            obs.drain(&mut conn, piecewise);
                        }
                    }
                } else {
                    obs.fed += data.len();
                    obs.last_read = data.len();
                    conn.handle_read(data);
                }
            }
            Step::Command(x) => {
                let result = command(&mut conn, x);
                if obs.closed {
                    assert!(result.is_err(), "command {x} accepted after Closed");
                } else if !obs.opened {
                    // Refused: for the handshake, or (7, 14) for invalid arguments first.
                    assert!(
                        matches!(result, Err(Error::Usage(_))),
                        "command {x} before the handshake completed: {result:?}"
                    );
                    if ![7, 14].contains(&(x % 16)) {
                        assert_eq!(result, Err(UsageError::HandshakeInProgress.into()));
                    }
                }
                obs.record.seen.push(Seen::Command(x, result));
            }
            Step::Eof => conn.handle_eof(),
        }
        obs.drain(&mut conn, piecewise);
    }
    obs.record
}

/// Checks that `wire`, sent by `role`, is well-formed for the peer: whole
/// frames, masked by a client only, and nothing after a close frame; RSV1
/// only if `compressed` (permessage-deflate is in force).
pub fn check_transmitted(role: Role, wire: &[u8], compressed: bool) {
    let peer = match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut decoder = FrameDecoder::new(DecoderConfig {
        role: peer,
        max_frame_size: u64::MAX,
        allowed_rsv: if compressed { 0x40 } else { 0 },
    });
    let mut buf = wire.to_vec();
    let mut pos = 0;
    let mut closed = false;
    let mut opcode = OpCode::CONTINUATION;
    let mut payload_start = 0;
    while pos < buf.len() {
        match decoder.decode(&mut buf[pos..]) {
            Ok(Decoded::Header { header, len }) => {
                assert!(!closed, "a frame sent after the close frame");
                opcode = header.opcode;
                pos += len;
                payload_start = pos;
                if header.payload_len == 0 && opcode == OpCode::CLOSE {
                    closed = true;
                }
            }
            Ok(Decoded::Payload { len, frame_end }) => {
                pos += len;
                if frame_end && opcode == OpCode::CLOSE {
                    let payload = &buf[payload_start..pos];
                    assert!(CloseFrame::parse(payload).is_ok(), "a bad close frame sent");
                    closed = true;
                }
            }
            other => panic!("sent bytes are not frames: {other:?}"),
        }
    }
    assert_eq!(decoder.remaining(), 0, "a frame sent in part");
}

/// The frames in `wire` sent by `role`, unmasked: (opcode, fin, RSV bits,
/// payload), pongs apart.
fn frames(role: Role, wire: &[u8]) -> (Vec<(OpCode, bool, u8, Vec<u8>)>, Vec<Vec<u8>>) {
    let mut buf = wire.to_vec();
    let mut rest = &mut buf[..];
    let (mut frames, mut pongs) = (Vec::new(), Vec::new());
    while !rest.is_empty() {
        let Ok(wsmachine::frame::Status::Complete((frame, used))) =
            wsmachine::frame::Frame::decode(rest)
        else {
            panic!("{role:?} sent bytes that are not whole frames");
        };
        let h = frame.header;
        if h.opcode == OpCode::PONG {
            pongs.push(frame.payload.to_vec());
        } else {
            frames.push((h.opcode, h.fin, h.rsv_bits(), frame.payload.to_vec()));
        }
        rest = &mut rest[used..];
    }
    (frames, pongs)
}

/// Whether `pongs` answer pings of `seen`, in order (each pong carries the
/// payload of a ping received before it and after the one the previous pong
/// answered). Empty pongs are left out: command 4 sends one unsolicited.
fn answers_in_order(pongs: &[Vec<u8>], seen: &[Seen]) -> bool {
    let mut pings = seen.iter().filter_map(|s| match s {
        Seen::Ping(p) if !p.is_empty() => Some(p),
        _ => None,
    });
    pongs
        .iter()
        .filter(|pong| !pong.is_empty())
        .all(|pong| pings.any(|ping| ping == pong))
}

/// Runs one input for `role`. Panics if an invariant breaks.
pub fn run(role: Role, data: &[u8]) {
    let input = parse(data);
    let chunked = execute(role, &input.config, input.seed, &input.steps, false);
    check_transmitted(role, &chunked.wire, false);
    let merged = execute(role, &input.config, input.seed, &input.steps, true);
    // Pieces of a streamed message count only once it completes, so how the
    // reads were split must not show here.
    assert_eq!(
        chunked.seen, merged.seen,
        "splitting reads changed what was seen"
    );
    let (chunked_frames, chunked_pongs) = frames(role, &chunked.wire);
    let (merged_frames, merged_pongs) = frames(role, &merged.wire);
    assert_eq!(
        chunked_frames, merged_frames,
        "splitting reads changed what was sent"
    );
    if input.config.auto_pong {
        assert!(
            answers_in_order(&chunked_pongs, &chunked.seen),
            "pongs out of order"
        );
        assert!(
            answers_in_order(&merged_pongs, &merged.seen),
            "pongs out of order"
        );
    }
}
