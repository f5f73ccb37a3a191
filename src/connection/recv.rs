//! The receive path: bytes in (`handle_read`, or `recv_buffer` and
//! `commit_recv` to read in place; `handle_eof`), the parser that turns them
//! into events (frame by frame, payload chunk by chunk, the end of each
//! frame), control frames in, and `poll_event`. The fast path for whole
//! small frames is the [`fast`](super::fast) room's, compressed payload the
//! [`deflate`](super::deflate) room's, the opening handshake the
//! [`opening`](super::opening) room's.

use core::ops::Range;

use super::buffer::Rx;
use super::{Connection, Core, Event, Fragment, State};
use crate::config::{Config, MessageMode};
use crate::error::ProtocolError;
use crate::frame::{Decoded, DecoderConfig, FrameDecoder, FrameHeader, OpCode, Role};
use crate::message::{FrameClass, MessageKind, MessageReader};
use crate::utf8;

/// The most [`Connection::recv_buffer`] reserves ahead for a frame's announced length.
const MAX_READ_AHEAD: u64 = 1 << 20;

/// The most [`Connection::recv_buffer`] offers once the connection is
/// closed: what arrives then is discarded, read only to see the end of stream.
const DISCARD_READ: usize = 512;

/// The parser's state.
pub(super) struct Receiving {
    pub decoder: FrameDecoder,
    pub reader: MessageReader,
    /// How the frame being read is handled, once its header is read.
    pub frame: Option<Disposition>,
    /// What to drop at the next mutation: the bytes of the event handed out.
    release: Release,
    /// The kind of the whole message handed out last, while its bytes are
    /// held (for `send_received`).
    delivered: Option<MessageKind>,
    /// An event parsed by [`Connection::has_event`] and not yet handed out.
    pub pending: Option<Ready>,
    /// Streaming mode: whether the message in progress has delivered a piece.
    pub streamed: bool,
    /// The peer closed its side of the stream.
    pub eof: bool,
}

impl Receiving {
    /// The whole message handed out last, while its bytes are held: in
    /// place in `rx`, or in its assembly buffer.
    pub fn received<'a>(&self, rx: &'a Rx) -> Option<(MessageKind, &'a [u8])> {
        let kind = self.delivered?;
        match self.release {
            Release::Held => Some((kind, &rx.buf[rx.held()])),
            Release::Message => Some((kind, &rx.message[..])),
            Release::Nothing => None,
        }
    }

    pub fn new(role: Role, config: &Config) -> Self {
        Self {
            decoder: FrameDecoder::new(DecoderConfig {
                role,
                max_frame_size: config.max_frame_size,
                allowed_rsv: 0,
            }),
            reader: MessageReader::new(config.max_message_size),
            frame: None,
            release: Release::Nothing,
            delivered: None,
            pending: None,
            streamed: false,
            eof: false,
        }
    }

    /// permessage-deflate is in force: RSV1 becomes legal on received
    /// frames, and a frame may take up to `wire_limit` bytes on the wire
    /// (a compressed one; `begin_frame` holds the others to the limit).
    pub fn allow_compressed(&mut self, wire_limit: u64) {
        self.decoder.set_allowed_rsv(0x40);
        self.decoder.set_max_frame_size(wire_limit);
    }

    /// The connection ended: the frame being read is dropped.
    pub fn abandon_frame(&mut self) {
        self.frame = None;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disposition {
    /// A control frame, kept whole in the receive buffer.
    Control(OpCode),
    /// A single-frame message in whole-message mode, kept in place and handed out without a copy.
    InPlace(MessageKind),
    /// A fragment of a message in whole-message mode, copied to the assembly buffer.
    Assembled,
    /// Streaming mode: each chunk is handed out as it arrives.
    Streamed(MessageKind),
    /// A frame of a compressed message (RFC 7692 §7.2.2), inflated into the
    /// assembly buffer as it arrives.
    Inflate(MessageKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    Nothing,
    Held,
    Message,
}

/// An event found by the parser, turned into an [`Event`] when handed out.
/// Payloads are the receive buffer's held bytes (`Rx::held`), which stay valid
/// when the buffer is compacted, or the assembly buffer: no positions to go stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ready {
    /// A whole message; text is already validated.
    Message(MessageKind, Source),
    /// A streamed piece of a message.
    Piece {
        kind: MessageKind,
        first: bool,
        last: bool,
        source: Source,
    },
    Ping,
    Pong,
    Request,
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The held bytes of the receive buffer.
    InPlace,
    /// The assembly buffer (also where compressed messages are inflated).
    Assembled,
}

impl Connection {
    /// Input: bytes received from the peer. They are copied into the
    /// connection's buffer and parsed by [`poll_event`](Self::poll_event).
    /// Bytes received after the connection closed are discarded.
    ///
    /// Payload of a masked frame (what a server receives) is unmasked as it
    /// is copied, in one pass: for bytes that are already in the caller's
    /// memory (a runtime's registered buffers, a TLS layer's plaintext), this
    /// costs less than reading them in with
    /// [`recv_buffer`](Self::recv_buffer), which copies and then unmasks.
    pub fn handle_read(&mut self, mut data: &[u8]) {
        self.rx.lent = false;
        self.settle();
        if self.is_closed() || data.is_empty() {
            return;
        }
        let decoder = &mut self.core.recv.decoder;
        let fused = decoder
            .copyable(self.rx.end - self.rx.cursor)
            .min(data.len());
        if fused > 0 {
            let (payload, rest) = data.split_at(fused);
            decoder.copy_payload(self.rx.append(fused), payload);
            data = rest;
        }
        self.rx.extend(data);
        self.core.received();
    }

    /// Input, without a copy: free space in the receive buffer to read into,
    /// at least [`Config::read_buffer_size`] bytes, except for the first read
    /// into an empty connection (new, or idle for
    /// [`Config::buffer_release_delay`]), which gets
    /// [`Config::retain_buffer_size`] so that a connection waiting for input
    /// holds no more. Report what was read with [`commit_recv`](Self::commit_recv)
    /// (`0` if the read failed or was cancelled).
    pub fn recv_buffer(&mut self) -> &mut [u8] {
        self.settle();
        let mut want = self.core.config.read_buffer_size.max(1);
        if self.is_closed() {
            // What arrives now is discarded: a small buffer will do.
            want = want.min(DISCARD_READ);
        } else if let Some(Disposition::Control(_) | Disposition::InPlace(_)) = self.core.recv.frame
        {
            // A frame kept whole in place may take its remainder in one read, up to
            // 1 MiB ahead of what arrived: an announced length is not trusted further.
            let unparsed = (self.rx.end - self.rx.cursor) as u64;
            let missing = self.core.recv.decoder.remaining().saturating_sub(unparsed);
            want = want.max(missing.min(MAX_READ_AHEAD) as usize);
        }
        self.rx.reserve(want);
        self.rx.lent = true;
        let free = &mut self.rx.buf[self.rx.end..];
        match self.core.state {
            State::Closed { .. } => {
                let len = free.len().min(DISCARD_READ);
                &mut free[..len]
            }
            _ => free,
        }
    }

    /// Input: `n` bytes were written at the start of [`recv_buffer`](Self::recv_buffer).
    /// `n` is clamped to the buffer handed out.
    pub fn commit_recv(&mut self, n: usize) {
        self.rx.lent = false;
        if n == 0 && self.rx.release_at_once {
            self.rx.release_idle(self.rx.retain);
        }
        if self.is_closed() {
            return;
        }
        let n = n.min(self.rx.buf.len() - self.rx.end);
        self.rx.end += n;
        if n > 0 {
            self.core.received();
        }
    }

    /// Input: the peer closed its side of the stream (a read returned 0 bytes).
    /// Bytes already received are still parsed; if the closing handshake has not
    /// completed by then, the connection closes with 1006 (RFC 6455 §7.1.5).
    pub fn handle_eof(&mut self) {
        self.core.recv.eof = true;
    }

    /// Output: the next event, parsing received bytes as needed. Returns `None`
    /// when more input is needed (or after the [`Event::Closed`] was delivered).
    ///
    /// The event borrows the connection until its next mutation.
    #[allow(unsafe_code)] // one block: text validated while parsing (SAFETY below)
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if !self.has_event() {
            return None;
        }
        let ready = self.core.recv.pending.take()?;
        if matches!(ready, Ready::Message(..) | Ready::Piece { .. }) {
            self.core.timers.message();
        }
        let Self { rx, core } = self;
        core.recv.release = match ready {
            Ready::Message(_, Source::Assembled)
            | Ready::Piece {
                source: Source::Assembled,
                ..
            } => Release::Message,
            Ready::Message(_, Source::InPlace)
            | Ready::Piece {
                source: Source::InPlace,
                ..
            }
            | Ready::Ping
            | Ready::Pong => Release::Held,
            Ready::Request | Ready::Open | Ready::Closed => Release::Nothing,
        };
        core.recv.delivered = match ready {
            Ready::Message(kind, _) => Some(kind),
            _ => None,
        };
        let held = &rx.buf[rx.held()];
        let bytes = |source| match source {
            Source::InPlace => held,
            Source::Assembled => &rx.message[..],
        };
        Some(match ready {
            Ready::Message(kind, source) => {
                let bytes = bytes(source);
                match kind {
                    MessageKind::Binary => Event::Binary(bytes),
                    // Validated while parsing: whole, or chunk by chunk.
                    // SAFETY: a text message is handed out only once all of it
                    // was validated, in order: whole by `utf8::is_valid` on the
                    // fast path, or chunk by chunk through the `MessageReader`'s
                    // `Utf8Validator`, ended by `finish` (which fails on a
                    // truncated code point), as it was copied, kept in place or
                    // inflated; and those bytes are not written from that check
                    // to here: held bytes are only moved (compaction keeps their
                    // order), the assembly buffer only appended to until the
                    // message ends.
                    MessageKind::Text => Event::Text(unsafe { utf8::assume_validated(bytes) }),
                }
            }
            Ready::Piece {
                kind,
                first,
                last,
                source,
            } => Event::Fragment(Fragment {
                kind,
                data: bytes(source),
                first,
                last,
            }),
            // The request waits in `Opening` until accepted, rejected, or
            // timed out; it cannot be handed out after that.
            Ready::Request => Event::Request(core.opening.request.as_deref()?),
            Ready::Open => Event::Open(&core.opening.negotiated),
            Ready::Ping => Event::Ping(held),
            Ready::Pong => Event::Pong(held),
            Ready::Closed => Event::Closed(core.close_info()?),
        })
    }

    /// Output: parses received bytes up to the next event without handing it
    /// out, and says whether there is one. Whatever parsing queued (a pong, the
    /// echo of a close, the close frame of a failure) is already in
    /// [`poll_transmit`](Self::poll_transmit), so an adapter can write it
    /// before it hands the event to the application; the next
    /// [`poll_event`](Self::poll_event) returns the event.
    pub fn has_event(&mut self) -> bool {
        // A request parsed but not handed out is stale once the state moved
        // on (the application accepted it, or the handshake timed out).
        if self.core.recv.pending == Some(Ready::Request) && self.core.opening.request.is_none() {
            self.core.recv.pending = None;
        }
        if self.core.recv.pending.is_none() {
            self.settle();
            self.core.recv.pending = self.parse();
        }
        self.core.recv.pending.is_some()
    }

    /// Drops the bytes of the event handed out last.
    #[inline]
    fn settle(&mut self) {
        self.core.recv.delivered = None;
        match core::mem::replace(&mut self.core.recv.release, Release::Nothing) {
            Release::Nothing => {}
            Release::Held => self.rx.release(),
            Release::Message => self.rx.clear_message(),
        }
    }

    /// Parses received bytes until an event is ready or more bytes are needed.
    fn parse(&mut self) -> Option<Ready> {
        match &mut self.core.state {
            State::Closed { reported, .. } => {
                return (!core::mem::replace(reported, true)).then_some(Ready::Closed);
            }
            State::AwaitRequest | State::AwaitResponse(_) => return self.parse_handshake(),
            State::RequestReceived => return None,
            State::Open | State::CloseSent => {}
        }
        if core::mem::take(&mut self.core.opening.announce_open) {
            return Some(Ready::Open);
        }
        if let Some(frame_end) = self.core.deflate.inflate_pending.take() {
            match self.inflate(frame_end) {
                Ok(None) => {}
                Ok(Some(ready)) => return Some(ready),
                Err(e) => {
                    self.core.fail(e);
                    return Some(Ready::Closed);
                }
            }
        }
        if let Some(ready) = self.fast_message() {
            return Some(ready);
        }
        loop {
            let step = {
                let rx = &mut self.rx;
                self.core
                    .recv
                    .decoder
                    .decode(&mut rx.buf[rx.cursor..rx.end])
            };
            let result = match step {
                Ok(Decoded::Partial { .. }) => {
                    if self.core.recv.eof {
                        self.core.end_of_stream();
                        return Some(Ready::Closed);
                    }
                    return None;
                }
                Ok(Decoded::Header { header, len }) => {
                    // Nothing is held between frames: the header bytes go at once.
                    self.rx.cursor += len;
                    self.rx.release();
                    self.begin_frame(&header)
                }
                Ok(Decoded::Payload { len, frame_end }) => {
                    let range = self.rx.cursor..self.rx.cursor + len;
                    self.rx.cursor += len;
                    self.payload(range, frame_end)
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(None) => {}
                Ok(Some(ready)) => return Some(ready),
                Err(e) => {
                    self.core.fail(e);
                    return Some(Ready::Closed);
                }
            }
        }
    }

    pub(super) fn begin_frame(
        &mut self,
        header: &FrameHeader,
    ) -> Result<Option<Ready>, ProtocolError> {
        let core = &mut self.core;
        let deflate = core.deflate.pmd.is_some();
        if deflate {
            // RFC 6455 §10.4 for a frame that is not compressed (the decoder
            // let it through with a compressed frame's allowance, RFC 7692).
            let in_progress = core.recv.reader.in_progress().is_some();
            let compressed = match header.opcode {
                OpCode::TEXT | OpCode::BINARY => header.rsv1 && !in_progress,
                OpCode::CONTINUATION => !header.rsv1 && in_progress && core.deflate.rx_compressed,
                _ => false,
            };
            let max = core.config.max_frame_size;
            if !compressed && header.payload_len > max {
                return Err(ProtocolError::FrameTooLarge {
                    len: header.payload_len,
                    max,
                });
            }
        }
        let class = if deflate {
            core.recv.reader.begin_frame_deflate(header)?
        } else {
            core.recv.reader.begin_frame(header)?
        };
        // RFC 7692 §6.1: RSV1 (the decoder allows it only with permessage-deflate)
        // marks a compressed message on its first frame, and nowhere else.
        if header.rsv1 && !matches!(class, FrameClass::Data { first: true, .. }) {
            return Err(ProtocolError::CompressedBitMisplaced);
        }
        let disposition = match class {
            FrameClass::Control(opcode) => Disposition::Control(opcode),
            FrameClass::Data { kind, first, fin } => {
                if first {
                    core.recv.streamed = false;
                    core.deflate.rx_compressed = header.rsv1;
                    core.deflate.inflated = 0;
                }
                match core.config.mode {
                    _ if core.deflate.rx_compressed => Disposition::Inflate(kind),
                    MessageMode::Whole if first && fin => Disposition::InPlace(kind),
                    MessageMode::Whole => Disposition::Assembled,
                    MessageMode::Streaming => Disposition::Streamed(kind),
                }
            }
        };
        core.recv.frame = Some(disposition);
        match (header.payload_len, disposition) {
            (0, Disposition::Inflate(_)) => self.inflate(true),
            (0, _) => self.end_frame(true),
            _ => Ok(None),
        }
    }

    fn payload(
        &mut self,
        range: Range<usize>,
        frame_end: bool,
    ) -> Result<Option<Ready>, ProtocolError> {
        let core = &mut self.core;
        let chunk = &self.rx.buf[range.clone()];
        match core.recv.frame {
            // Kept whole in place; text is validated as it arrives, in one pass.
            Some(Disposition::InPlace(_)) => core.recv.reader.data(chunk)?,
            Some(Disposition::Control(_)) | None => {}
            Some(Disposition::Assembled) => {
                core.recv.reader.data(chunk)?;
                // RFC 6455 §10.4: the limit was checked on the header.
                self.rx.message.extend_from_slice(chunk);
                self.rx.release();
            }
            Some(Disposition::Streamed(kind)) => {
                core.recv.reader.data(chunk)?;
                if !frame_end {
                    return Ok(Some(core.piece(kind, false, Source::InPlace)));
                }
            }
            Some(Disposition::Inflate(_)) => return self.inflate(frame_end),
        }
        if frame_end {
            return self.end_frame(range.is_empty());
        }
        Ok(None)
    }

    /// The current frame is complete; `empty_tail`: its last chunk was empty.
    fn end_frame(&mut self, empty_tail: bool) -> Result<Option<Ready>, ProtocolError> {
        let core = &mut self.core;
        let held = &self.rx.buf[self.rx.held()];
        let Some(disposition) = core.recv.frame.take() else {
            return Ok(None);
        };
        Ok(match disposition {
            Disposition::Control(opcode) => core.control(opcode, held)?,
            Disposition::InPlace(_) => core
                .recv
                .reader
                .end_frame()?
                .map(|kind| Ready::Message(kind, Source::InPlace)),
            Disposition::Assembled => core
                .recv
                .reader
                .end_frame()?
                .map(|kind| Ready::Message(kind, Source::Assembled)),
            Disposition::Streamed(kind) => {
                let done = core.recv.reader.end_frame()?.is_some();
                // An empty frame that does not end the message has nothing to say.
                (done || !empty_tail).then(|| core.piece(kind, done, Source::InPlace))
            }
            // Ended by `inflate`, which never hands the frame back here.
            Disposition::Inflate(_) => None,
        })
    }
}

impl Core {
    pub(super) fn piece(&mut self, kind: MessageKind, last: bool, source: Source) -> Ready {
        let first = !core::mem::replace(&mut self.recv.streamed, true);
        Ready::Piece {
            kind,
            first,
            last,
            source,
        }
    }

    /// A whole control frame arrived (RFC 6455 §5.5).
    fn control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<Option<Ready>, ProtocolError> {
        Ok(Some(match opcode {
            OpCode::PING => {
                // RFC 6455 §5.5.2: answer with a pong carrying the same data, unless
                // a close was already sent (nothing more is sent after it).
                if self.config.auto_pong && matches!(self.state, State::Open) {
                    self.tx.queue_pong(payload);
                }
                Ready::Ping
            }
            OpCode::PONG => {
                self.timers.pong(payload);
                Ready::Pong
            }
            _ => self.close_received(payload)?,
        }))
    }

    /// Bytes were received: a sign of life for the keepalive.
    fn received(&mut self) {
        self.timers.received(self.config.keepalive_needs_pong);
    }
}
