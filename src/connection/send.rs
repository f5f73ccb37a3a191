//! The send path: the commands that queue messages, fragments, pings and
//! pongs (the close command is the [`close`](super::close) room's). Each
//! checks what RFC 6455 and the limits allow before anything is queued, so a
//! refused command leaves no trace.

use super::{Compress, Connection, Core, State, Transmit};
use crate::error::{Error, UsageError};
use crate::frame::{FrameHeader, OpCode};
use crate::message::{Fragmented, Message, MessageKind};
use crate::utf8::{self, Utf8Validator};

/// The message being sent, if a fragmented one is in progress.
#[derive(Debug, Default)]
pub(super) struct Sending {
    /// The kind of the fragmented message being sent, if any.
    pub(super) message: Option<MessageKind>,
    /// Its text so far, validated across fragments.
    utf8: Utf8Validator,
    /// It is compressed.
    pub compressed: bool,
    /// Broadcast messages skipped in a row for want of room.
    pub broadcast_skips: u32,
}

impl Connection {
    /// Command: sends a text message in one frame, compressed if
    /// permessage-deflate is in force and the text reaches the threshold.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.core
            .send_message(MessageKind::Text, text.as_bytes(), Compress::Auto)
    }

    /// Command: sends a binary message in one frame, compressed if
    /// permessage-deflate is in force and the data reaches the threshold.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.core
            .send_message(MessageKind::Binary, data, Compress::Auto)
    }

    /// Command: sends a message in one frame, choosing whether it may be
    /// compressed ([`Compress::Never`] opts this message out of
    /// permessage-deflate). `data` must be UTF-8 for a text message.
    pub fn send_message(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        compress: Compress,
    ) -> Result<(), Error> {
        if kind == MessageKind::Text && !utf8::is_valid(data) {
            return Err(UsageError::InvalidUtf8.into());
        }
        self.core.send_message(kind, data, compress)
    }

    /// Command and output at once, for large payloads: sends `data` as a
    /// message in one frame and hands out the frame header and `data` itself to
    /// be written together (a vectored write), instead of copying `data` into
    /// the transmit buffer. See [`Transmit`] for the write loop; what is left
    /// unwritten when it is dropped is queued as usual, so nothing is lost.
    ///
    /// A client masks its frames and a compressed message is new bytes: those
    /// are queued as by [`send_message`](Self::send_message) with
    /// [`Compress::Auto`], and the [`Transmit`] hands out the transmit buffer.
    /// `data` must be UTF-8 for a text message.
    pub fn send_vectored<'a>(
        &'a mut self,
        kind: MessageKind,
        data: &'a [u8],
    ) -> Result<Transmit<'a>, Error> {
        if kind == MessageKind::Text && !utf8::is_valid(data) {
            return Err(UsageError::InvalidUtf8.into());
        }
        self.send_vectored_valid(kind, data)
    }

    /// [`send_vectored`](Self::send_vectored) for text known to be UTF-8
    /// (the adapters' `send_text(&str)`), which is not validated again.
    pub(crate) fn send_vectored_valid<'a>(
        &'a mut self,
        kind: MessageKind,
        data: &'a [u8],
    ) -> Result<Transmit<'a>, Error> {
        self.core.send_vectored_valid(kind, data)
    }

    /// Command: sends on the message that [`poll_event`](Self::poll_event)
    /// handed out last (an [`Event::Text`](crate::Event::Text) or
    /// [`Event::Binary`](crate::Event::Binary)), straight from where it was
    /// received: the echo or relay of a message without copying it out of
    /// the connection first (the event borrows the connection, so its bytes
    /// cannot be given to [`send_message`](Self::send_message)). Call it
    /// before the next input or event: those release the bytes
    /// ([`UsageError::NoReceivedMessage`]). Text is not validated again.
    ///
    /// ```
    /// use wsmachine::{Compress, Config, Connection, Event};
    /// let mut server = Connection::open_server(Config::default());
    /// server.handle_read(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
    /// assert!(matches!(server.poll_event(), Some(Event::Text("hi"))));
    /// server.send_received(Compress::Auto).unwrap();
    /// assert_eq!(server.poll_transmit(), Some(&b"\x81\x02hi"[..]));
    /// ```
    pub fn send_received(&mut self, compress: Compress) -> Result<(), Error> {
        let Self { rx, core } = self;
        let (kind, data) = core
            .recv
            .received(rx)
            .ok_or(UsageError::NoReceivedMessage)?;
        core.send_message(kind, data, compress)
    }

    /// The text or binary message that [`poll_event`](Self::poll_event)
    /// handed out last, while its bytes are held (until the next input or
    /// event): what [`send_received`](Self::send_received) sends. Another
    /// connection can send these bytes on without a copy, with
    /// [`send_vectored`](Self::send_vectored) (a relay or a fan-out).
    ///
    /// ```
    /// use wsmachine::{Config, Connection, Event, MessageKind};
    /// let mut from = Connection::open_server(Config::default());
    /// let mut to = Connection::open_server(Config::default());
    /// from.handle_read(&[0x82, 0x83, 1, 2, 3, 4, 1 ^ 1, 2 ^ 2, 3 ^ 3]);
    /// assert!(matches!(from.poll_event(), Some(Event::Binary(_))));
    /// let (kind, data) = from.received().unwrap();
    /// assert_eq!((kind, data), (MessageKind::Binary, &[1, 2, 3][..]));
    /// let transmit = to.send_vectored(kind, data).unwrap();
    /// // The header from `to`, the payload where `from` received it.
    /// assert_eq!(transmit.slices()[2].as_ptr(), data.as_ptr());
    /// ```
    pub fn received(&self) -> Option<(MessageKind, &[u8])> {
        self.core.recv.received(&self.rx)
    }

    /// [`send_message`](Self::send_message) for text known to be UTF-8 (a
    /// `&str`, or a received message), which is not validated again.
    #[cfg_attr(not(any(feature = "tokio", feature = "blocking")), allow(dead_code))]
    pub(crate) fn send_valid(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        self.core.send_message(kind, data, Compress::Auto)
    }

    /// [`send_received`](Self::send_received) with a vectored write, as
    /// [`send_vectored`](Self::send_vectored) does: a server writes the
    /// frame header and the received bytes where they are, without a copy.
    pub fn send_received_vectored(&mut self) -> Result<Transmit<'_>, Error> {
        let Self { rx, core } = self;
        let (kind, data) = core
            .recv
            .received(rx)
            .ok_or(UsageError::NoReceivedMessage)?;
        core.send_vectored_valid(kind, data)
    }
}

impl Core {
    /// Frames `data` (valid UTF-8 if text) for a vectored write, or queues
    /// it where it must be new bytes (masked or compressed).
    fn send_vectored_valid<'a>(
        &'a mut self,
        kind: MessageKind,
        data: &'a [u8],
    ) -> Result<Transmit<'a>, Error> {
        let core = self;
        let compress = core.begin_message(data.len(), Compress::Auto)?;
        if compress || core.tx.masks() {
            core.queue_data(kind.opcode(), true, compress, data);
            let release_to = core.tx_release_to();
            return Ok(Transmit::queued(&mut core.tx, release_to));
        }
        let mut header = FrameHeader::new(kind.opcode(), true, None);
        header.payload_len = data.len() as u64;
        let release_to = core.tx_release_to();
        Ok(Transmit::new(&mut core.tx, release_to, &header, data))
    }
}

impl Connection {
    /// Command: sends one fragment of a message (RFC 6455 §5.4). The first call
    /// starts a message of `kind`; later calls continue it (with the same
    /// `kind`) until one has `fin` set. Text fragments may split a code point,
    /// but together they must be valid UTF-8. Pings, pongs and a close may be
    /// sent between fragments; other messages may not.
    ///
    /// ```
    /// use wsmachine::{Config, Connection, MessageKind};
    /// let mut server = Connection::open_server(Config::default());
    /// server.send_fragment(MessageKind::Text, "hel".as_bytes(), false).unwrap();
    /// server.send_ping(b"between").unwrap();
    /// server.send_fragment(MessageKind::Text, "lo".as_bytes(), true).unwrap();
    /// ```
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.core.send_fragment(kind, data, fin, Compress::Auto)
    }

    /// Command: [`send_fragment`](Self::send_fragment), choosing on the
    /// message's first fragment whether it may be compressed (later
    /// fragments follow that choice). Under [`Compress::Auto`] a fragmented
    /// message is compressed whatever its size; each fragment is flushed, so
    /// its bytes can be sent at once.
    pub fn send_fragment_with(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
        compress: Compress,
    ) -> Result<(), Error> {
        self.core.send_fragment(kind, data, fin, compress)
    }

    /// Command: sends a ping (payload at most 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.core.send_control(OpCode::PING, payload)
    }

    /// Command: sends a pong (payload at most 125 bytes), for example when
    /// [`Config::auto_pong`](crate::Config::auto_pong) is off, or unsolicited as a heartbeat (RFC 6455 §5.5.3).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.core.send_control(OpCode::PONG, payload)
    }
}

impl Core {
    /// Whether frames may be sent: not before the opening handshake completes
    /// (RFC 6455 §4.1), and nothing after a close frame (§5.5.1).
    pub(super) fn check_open(&self) -> Result<(), UsageError> {
        match self.state {
            State::Open => Ok(()),
            State::AwaitRequest | State::AwaitResponse(_) | State::RequestReceived => {
                Err(UsageError::HandshakeInProgress)
            }
            State::CloseSent | State::Closed { .. } => Err(UsageError::Closed),
        }
    }

    fn send_message(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        compress: Compress,
    ) -> Result<(), Error> {
        let compress = self.begin_message(data.len(), compress)?;
        self.queue_data(kind.opcode(), true, compress, data);
        Ok(())
    }

    /// Checks that a message of `len` bytes may be sent now and counts it for
    /// the idle timer; returns whether it is to be compressed.
    pub(super) fn begin_message(&mut self, len: usize, compress: Compress) -> Result<bool, Error> {
        self.check_open()?;
        if self.send.message.is_some() {
            return Err(UsageError::FragmentInProgress.into());
        }
        self.tx.check_room(len, self.config.max_send_buffer)?;
        self.timers.message();
        Ok(self.deflate.wants(len, false, compress))
    }

    fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
        compress: Compress,
    ) -> Result<(), Error> {
        self.check_open()?;
        self.tx
            .check_room(data.len(), self.config.max_send_buffer)?;
        let opcode = match self.send.message {
            None => kind.opcode(),
            Some(current) if current == kind => OpCode::CONTINUATION,
            Some(_) => return Err(UsageError::FragmentKindMismatch.into()),
        };
        if kind == MessageKind::Text {
            // Validate on a copy so that a refused fragment leaves no trace.
            let mut utf8 = self.send.utf8.clone();
            utf8.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
            if fin {
                utf8.finish().map_err(|_| UsageError::InvalidUtf8)?;
            }
            self.send.utf8 = utf8;
        }
        if opcode != OpCode::CONTINUATION {
            self.send.compressed = self.deflate.wants(data.len(), !fin, compress);
        }
        self.queue_data(opcode, fin, self.send.compressed, data);
        self.send.message = if fin { None } else { Some(kind) };
        self.timers.message();
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        // RFC 6455 §5.5: control frame payloads are at most 125 bytes.
        if payload.len() > 125 {
            return Err(UsageError::ControlPayloadTooLong(payload.len()).into());
        }
        self.tx
            .check_room(payload.len(), self.config.max_send_buffer)?;
        self.tx.queue(opcode, true, false, payload);
        Ok(())
    }
}

impl Message {
    /// Sends the message on `conn` in one frame
    /// ([`Connection::send_message`]).
    pub fn send(&self, conn: &mut Connection) -> Result<(), Error> {
        conn.send_message(self.kind(), self.data(), Compress::Auto)
    }
}

impl Fragmented {
    /// Sends the pieces on `conn` as fragments ([`Connection::send_fragment`]).
    pub fn send(&self, conn: &mut Connection) -> Result<(), Error> {
        let last = self.sizes().len() - 1;
        for (i, piece) in self.pieces().enumerate() {
            conn.send_fragment(self.message().kind(), piece, i == last)?;
        }
        Ok(())
    }
}
