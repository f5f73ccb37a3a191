//! permessage-deflate's data path (RFC 7692 §7.2) as the connection uses
//! it: received messages inflated into the assembly buffer as they arrive,
//! with the limits checked on the inflated size; sent messages compressed
//! into a frame. One state per connection, each direction's zlib state
//! allocated on first use. The negotiation that sets it up is the
//! handshake's ([`handshake::extensions`](crate::handshake)).
//!
//! Without the `deflate` feature, [`Pmd`] is uninhabited, so the connection's
//! `Option<Box<Pmd>>` is always `None` and its compression paths compile away.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::prepared::PreparedMessage;
use super::recv::{Disposition, Ready, Source};
use super::{Connection, Core};
use crate::config::{Config, MessageMode};
use crate::error::ProtocolError;
use crate::frame::OpCode;
use crate::handshake::extensions::Agreement;

/// Whether a message is sent compressed, when permessage-deflate is in force.
///
/// ```
/// use wsmachine::{Compress, Config, Connection, MessageKind};
/// let mut server = Connection::open_server(Config::default());
/// // Already compressed (an image, say): spare the CPU.
/// server.send_message(MessageKind::Binary, &[0x89, b'P', b'N', b'G'], Compress::Never).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compress {
    /// Compressed when permessage-deflate was negotiated and the message
    /// reaches the configured threshold (fragmented messages always are).
    #[default]
    Auto,
    /// Sent as is.
    Never,
}

/// The wire size a compressed frame may have for `max_frame_size` bytes of
/// data ([`max_compressed_len`](crate::deflate::max_compressed_len)).
pub(super) fn max_wire_frame(max_frame_size: u64) -> u64 {
    #[cfg(feature = "deflate")]
    {
        crate::deflate::max_compressed_len(max_frame_size)
    }
    #[cfg(not(feature = "deflate"))]
    {
        max_frame_size
    }
}

/// What permessage-deflate holds for a connection.
#[derive(Debug, Default)]
pub(super) struct DeflateState {
    /// The agreement in force, once negotiated (boxed: a connection without
    /// it carries a pointer, not the state).
    pub pmd: Option<Box<Pmd>>,
    /// The message being received is compressed (RSV1 on its first frame).
    pub rx_compressed: bool,
    /// Bytes inflated so far for the message being received.
    pub inflated: u64,
    /// Streaming: inflation stopped at a full piece and resumes with the next
    /// event; `Some(frame_end)` for the frame whose payload is held.
    pub inflate_pending: Option<bool>,
}

impl DeflateState {
    /// Puts `agreement` in force, with the level and threshold of
    /// [`Config::deflate`] (or their defaults).
    pub fn start(&mut self, agreement: Agreement, config: &Config) {
        #[cfg(feature = "deflate")]
        {
            self.pmd = Some(Box::new(Pmd::new(agreement, config)));
        }
        #[cfg(not(feature = "deflate"))]
        {
            let _ = config;
            match agreement {}
        }
    }

    /// Whether to compress a message that starts with `len` bytes.
    pub fn wants(&self, len: usize, fragmented: bool, compress: Compress) -> bool {
        self.pmd
            .as_ref()
            .is_some_and(|pmd| pmd.wants(len, fragmented, compress))
    }

    /// Heap bytes of the buffers (the zlib states are documented apart).
    pub fn memory_usage(&self) -> usize {
        self.pmd.as_ref().map_or(0, |pmd| pmd.memory_usage())
    }

    /// The compressed bytes of `message` to send as they are, if it has
    /// some and the agreement allows a message compressed without context
    /// now; the connection's context then goes on as if it had compressed
    /// `message` itself.
    pub fn take_prepared<'m>(&mut self, message: &'m PreparedMessage) -> Option<&'m [u8]> {
        self.pmd.as_mut()?.take_prepared(message)
    }
}

impl Connection {
    /// A compressed message's payload arrived (RFC 7692 §7.2.2): inflates the
    /// held bytes into the assembly buffer, checking the limit on the
    /// inflated size as it grows, and validating text as it comes out.
    /// Streaming mode hands out a piece whenever the buffer holds a read's
    /// worth, and resumes from the same held bytes at the next event.
    pub(super) fn inflate(&mut self, frame_end: bool) -> Result<Option<Ready>, ProtocolError> {
        let Self { rx, core } = self;
        let (Some(Disposition::Inflate(kind)), Some(pmd)) =
            (core.recv.frame, core.deflate.pmd.as_mut())
        else {
            return Ok(None);
        };
        let end_of_message = frame_end && core.recv.reader.frame_is_final();
        let streaming = core.config.mode == MessageMode::Streaming;
        let max = core.config.max_message_size;
        // One byte over the limit is room enough to see it broken.
        let mut room = max.saturating_sub(core.deflate.inflated).saturating_add(1);
        if streaming {
            let piece = core.config.read_buffer_size.max(1);
            room = room.min(piece.saturating_sub(rx.message.len()) as u64);
        }
        let before = rx.message.len();
        let input = &rx.buf[rx.held()];
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        let inflated = pmd.inflate(input, end_of_message, &mut rx.message, room);
        // What came out before corrupt data is checked first, as it would
        // have been had the data arrived in smaller reads: the error a
        // message fails with does not depend on how the reads split it.
        // In stream order: the bytes within the limit are validated, then
        // the limit is checked (a byte past it fails the message).
        let out = &rx.message[before..];
        let within =
            usize::try_from(max.saturating_sub(core.deflate.inflated)).unwrap_or(usize::MAX);
        core.recv.reader.data(&out[..within.min(out.len())])?;
        core.deflate.inflated += out.len() as u64;
        // RFC 6455 §10.4, on the inflated size: a small message cannot expand past the limit.
        if core.deflate.inflated > max {
            return Err(ProtocolError::MessageTooLarge {
                len: core.deflate.inflated,
                max,
            });
        }
        let (used, done) = inflated?;
        rx.start += used;
        if !done {
            // Only streaming gets here: the piece is full.
            core.deflate.inflate_pending = Some(frame_end);
            return Ok(Some(core.piece(kind, false, Source::Assembled)));
        }
        if !frame_end {
            let piece = streaming && !rx.message.is_empty();
            return Ok(piece.then(|| core.piece(kind, false, Source::Assembled)));
        }
        core.recv.frame = None;
        Ok(match core.recv.reader.end_frame()? {
            Some(kind) if !streaming => Some(Ready::Message(kind, Source::Assembled)),
            Some(kind) => Some(core.piece(kind, true, Source::Assembled)),
            None if streaming && !rx.message.is_empty() => {
                Some(core.piece(kind, false, Source::Assembled))
            }
            None => None,
        })
    }
}

impl Core {
    /// Queues a data frame, compressed when `compress`: RSV1 on a message's
    /// first frame only (RFC 7692 §6.1), the tail stripped at its end (§7.2.1).
    pub(super) fn queue_data(&mut self, opcode: OpCode, fin: bool, compress: bool, data: &[u8]) {
        match self.deflate.pmd.as_mut() {
            Some(pmd) if compress => {
                let payload = pmd.compress(data, fin);
                self.tx
                    .queue(opcode, fin, opcode != OpCode::CONTINUATION, &payload);
                pmd.restore(payload);
            }
            _ => self.tx.queue(opcode, fin, false, data),
        }
    }
}

#[cfg(feature = "deflate")]
pub(super) use enabled::Pmd;

#[cfg(feature = "deflate")]
mod enabled {
    use super::*;

    use crate::deflate::{CodecPool, Compressor, Decompressor, DeflateConfig, Memory, Ticket};

    /// The permessage-deflate state of a connection.
    #[derive(Debug)]
    pub(crate) struct Pmd {
        agreement: Agreement,
        level: u32,
        threshold: usize,
        /// Shared: where the zlib states come from.
        pool: Option<Borrowing>,
        mem_level: u8,
        /// The window our compressor uses (at most the agreed one).
        own_window_bits: u8,
        /// Dedicated: kept for context takeover. Shared: borrowed for the
        /// message being sent.
        compressor: Option<Box<Compressor>>,
        /// Likewise, for the message being received.
        decompressor: Option<Box<Decompressor>>,
        /// Shared, with context takeover: the last bytes we compressed (our
        /// window's worth), the context a borrowed compressor starts from.
        sent: History,
        /// Likewise, the last bytes the peer's messages inflated to.
        received: History,
        /// Compressed output, encoded into a frame from here.
        scratch: Vec<u8>,
        /// A prepared message went out since our pooled compressor last
        /// ran: whatever context it kept is behind the peer's, so it starts
        /// again from `sent`.
        sent_prepared: bool,
    }

    /// A pool, and this connection's claims on it, one per direction.
    #[derive(Debug)]
    struct Borrowing {
        pool: CodecPool,
        sending: Ticket,
        receiving: Ticket,
    }

    /// The last bytes of a stream, at most a window (`cap` bytes) of them:
    /// the context a borrowed zlib state starts from. A ring once full, so
    /// that remembering a message costs its length, not the window's; its
    /// bytes are put in order only when a state needs them as a dictionary.
    #[derive(Debug, Default)]
    struct History {
        buf: Vec<u8>,
        /// Once `buf` holds `cap` bytes: where the oldest is.
        head: usize,
    }

    impl History {
        /// Keeps the last `cap` bytes of what it held followed by `data`,
        /// in at most `cap` bytes of capacity.
        fn remember(&mut self, mut data: &[u8], cap: usize) {
            if data.len() >= cap {
                self.buf.clear();
                self.buf.reserve_exact(cap);
                self.buf.extend_from_slice(&data[data.len() - cap..]);
                self.head = 0;
                return;
            }
            if self.buf.len() < cap {
                let fits = data.len().min(cap - self.buf.len());
                let needed = self.buf.len() + fits;
                if self.buf.capacity() < needed {
                    // Geometric growth, but never past the window.
                    let target = needed.max(2 * self.buf.capacity()).min(cap);
                    self.buf.reserve_exact(target - self.buf.len());
                }
                self.buf.extend_from_slice(&data[..fits]);
                data = &data[fits..];
            }
            // Full: the new bytes take the oldest ones' place.
            let first = data.len().min(cap - self.head);
            self.buf[self.head..self.head + first].copy_from_slice(&data[..first]);
            self.buf[..data.len() - first].copy_from_slice(&data[first..]);
            self.head = (self.head + data.len()) % cap;
        }

        /// The bytes, oldest first.
        fn in_order(&mut self) -> &[u8] {
            if self.head != 0 {
                self.buf.rotate_left(self.head);
                self.head = 0;
            }
            &self.buf
        }

        fn clear(&mut self) {
            self.buf.clear();
            self.head = 0;
        }

        fn capacity(&self) -> usize {
            self.buf.capacity()
        }
    }

    impl Pmd {
        pub fn new(agreement: Agreement, config: &Config) -> Self {
            let defaults = DeflateConfig::default();
            let config = config.deflate.as_ref().unwrap_or(&defaults);
            let (pool, mem_level, own_window_bits) = match &config.memory {
                Memory::Dedicated { mem_level } => (None, *mem_level, agreement.own_window_bits),
                Memory::Shared { pool, window_bits } => (
                    Some(Borrowing {
                        sending: pool.ticket(),
                        receiving: pool.ticket(),
                        pool: pool.clone(),
                    }),
                    crate::deflate::DEFAULT_MEM_LEVEL,
                    agreement.own_window_bits.min(*window_bits),
                ),
            };
            Self {
                agreement,
                level: config.level,
                threshold: config.threshold,
                pool,
                mem_level,
                own_window_bits,
                compressor: None,
                decompressor: None,
                sent: History::default(),
                received: History::default(),
                scratch: Vec::new(),
                sent_prepared: false,
            }
        }

        /// Whether to compress a message that starts with `len` bytes.
        pub fn wants(&self, len: usize, fragmented: bool, compress: Compress) -> bool {
            compress == Compress::Auto && (fragmented || len >= self.threshold)
        }

        /// Compresses the next fragment of a message into a buffer that the
        /// caller encodes and hands back with [`Self::restore`].
        pub fn compress(&mut self, data: &[u8], end: bool) -> Vec<u8> {
            let takeover = !self.agreement.own_no_context_takeover;
            let bits = self.own_window_bits;
            let compressor = match (&mut self.compressor, &self.pool) {
                (Some(compressor), _) => compressor,
                (slot @ None, Some(b)) => {
                    let (mut compressor, intact) =
                        b.pool.take_compressor(self.level, bits, &b.sending);
                    if !(takeover && intact && !self.sent_prepared) {
                        compressor.restart(if takeover { self.sent.in_order() } else { &[] });
                    }
                    self.sent_prepared = false;
                    slot.insert(compressor)
                }
                (slot @ None, None) => slot.insert(Box::new(Compressor::with_mem_level(
                    self.level,
                    bits,
                    self.mem_level,
                    !takeover,
                ))),
            };
            let mut out = core::mem::take(&mut self.scratch);
            out.clear();
            compressor.compress(data, end, &mut out);
            if takeover && self.pool.is_some() {
                self.sent.remember(data, 1 << bits);
            }
            if end {
                self.message_sent();
            }
            out
        }

        /// The compressed bytes of `message` to send as they are: where it
        /// has them for a window no larger than the agreed one, and no
        /// context of ours is lost by sending a message compressed without
        /// one. That is so without context takeover, and with it when our
        /// next compressor starts from the bytes sent: a pooled one (from
        /// `sent`) or a dedicated one not made yet (from nothing; the peer's
        /// window then holds more than it needs). Every message ends on a
        /// byte boundary after a sync flush (RFC 7692 §7.2.1), so the
        /// prepared blocks continue the peer's stream.
        pub fn take_prepared<'m>(&mut self, message: &'m PreparedMessage) -> Option<&'m [u8]> {
            let bytes = message.deflated_for(self.agreement.own_window_bits)?;
            let takeover = !self.agreement.own_no_context_takeover;
            if takeover {
                if self.compressor.is_some() {
                    return None;
                }
                if self.pool.is_some() {
                    self.sent
                        .remember(message.data(), 1 << self.own_window_bits);
                    self.sent_prepared = true;
                }
            }
            Some(bytes)
        }

        /// The message being sent is done: a borrowed compressor goes back,
        /// and one without context takeover is freed.
        fn message_sent(&mut self) {
            match &mut self.pool {
                Some(b) => {
                    if let Some(compressor) = self.compressor.take() {
                        let bits = self.own_window_bits;
                        b.pool
                            .put_compressor(self.level, bits, &mut b.sending, compressor);
                    }
                }
                None if self.agreement.own_no_context_takeover => self.compressor = None,
                None => {}
            }
        }

        /// Takes back the buffer [`Self::compress`] handed out, keeping a
        /// modest one for the next message.
        pub fn restore(&mut self, mut scratch: Vec<u8>) {
            if scratch.capacity() > 64 << 10 {
                scratch = Vec::new();
            }
            self.scratch = scratch;
        }

        /// Inflates compressed payload into `out`, at most `max_out` bytes:
        /// (input consumed, all done).
        pub fn inflate(
            &mut self,
            input: &[u8],
            end_of_message: bool,
            out: &mut Vec<u8>,
            max_out: usize,
        ) -> Result<(usize, bool), ProtocolError> {
            let takeover = !self.agreement.peer_no_context_takeover;
            let decompressor = match (&mut self.decompressor, &self.pool) {
                (Some(decompressor), _) => decompressor,
                (slot @ None, Some(b)) => {
                    let (mut decompressor, intact) = b.pool.take_decompressor(&b.receiving);
                    if !(takeover && intact) {
                        decompressor.restart(if takeover {
                            self.received.in_order()
                        } else {
                            &[]
                        });
                    }
                    slot.insert(decompressor)
                }
                (slot @ None, None) => slot.insert(Box::new(Decompressor::new(
                    self.agreement.peer_window_bits,
                    !takeover,
                ))),
            };
            let before = out.len();
            let inflated = match decompressor.decompress(input, end_of_message, out, max_out) {
                Ok(inflated) => inflated,
                Err(e) => {
                    // The connection fails; the state is not reused.
                    self.decompressor = None;
                    return Err(ProtocolError::InvalidCompressedData(e.0));
                }
            };
            let ended = decompressor.stream_ended();
            if takeover && self.pool.is_some() {
                let cap = 1 << self.agreement.peer_window_bits;
                self.received.remember(&out[before..], cap);
            }
            if end_of_message && inflated.done {
                self.message_received(ended);
            }
            Ok((inflated.consumed, inflated.done))
        }

        /// The message being received is done: a borrowed decompressor goes
        /// back, and one without context takeover is freed. `ended`: the
        /// peer ended its stream, and its context with it.
        fn message_received(&mut self, ended: bool) {
            if ended {
                self.received.clear();
            }
            match &mut self.pool {
                Some(b) => {
                    if let Some(decompressor) = self.decompressor.take() {
                        b.pool.put_decompressor(&mut b.receiving, decompressor);
                    }
                }
                None if self.agreement.peer_no_context_takeover => self.decompressor = None,
                None => {}
            }
        }

        /// Heap bytes of the buffers and the kept context (the zlib states
        /// are documented apart).
        pub fn memory_usage(&self) -> usize {
            self.scratch.capacity() + self.sent.capacity() + self.received.capacity()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::History;
        use alloc::vec::Vec;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the pieces, the history is the last `cap` bytes of
            /// all of them, in order, within `cap` bytes of capacity.
            #[test]
            fn history_keeps_the_last_window_in_order(
                cap_bits in 0u32..7,
                pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..150), 0..40),
                look_every in 1usize..6,
            ) {
                let cap = 1usize << cap_bits;
                let mut history = History::default();
                let mut all = Vec::new();
                for (i, piece) in pieces.iter().enumerate() {
                    history.remember(piece, cap);
                    all.extend_from_slice(piece);
                    prop_assert!(history.capacity() <= cap);
                    if i % look_every == 0 {
                        let expected = &all[all.len().saturating_sub(cap)..];
                        prop_assert_eq!(history.in_order(), expected);
                    }
                }
                let expected = &all[all.len().saturating_sub(cap)..];
                prop_assert_eq!(history.in_order(), expected);
                history.clear();
                prop_assert!(history.in_order().is_empty());
            }
        }
    }
}

/// Without the feature: never constructed.
#[cfg(not(feature = "deflate"))]
#[derive(Debug)]
pub(super) enum Pmd {}

#[cfg(not(feature = "deflate"))]
#[allow(clippy::unused_self)]
impl Pmd {
    pub fn wants(&self, _: usize, _: bool, _: Compress) -> bool {
        match *self {}
    }
    pub fn compress(&mut self, _: &[u8], _: bool) -> Vec<u8> {
        match *self {}
    }
    pub fn restore(&mut self, _: Vec<u8>) {
        match *self {}
    }
    pub fn inflate(
        &mut self,
        _: &[u8],
        _: bool,
        _: &mut Vec<u8>,
        _: usize,
    ) -> Result<(usize, bool), ProtocolError> {
        match *self {}
    }
    pub fn memory_usage(&self) -> usize {
        match *self {}
    }
    pub fn take_prepared<'m>(&mut self, _: &'m PreparedMessage) -> Option<&'m [u8]> {
        match *self {}
    }
}
