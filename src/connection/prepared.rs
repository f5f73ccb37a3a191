//! Prepared messages: one message made ready once (validated, and
//! compressed where that is asked for) and sent by any number of
//! connections without encoding it again (a broadcast, a ticker, a chat
//! room). The bytes are shared behind an [`Arc`], so a prepared message
//! moves between tasks and threads by a pointer.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;

use super::{Compress, Connection, Transmit};
use crate::close::CloseCode;
use crate::error::{Error, UsageError};
use crate::frame::FrameHeader;
use crate::message::MessageKind;
use crate::utf8;

/// A message framed once for any number of connections
/// ([`Connection::send_prepared`]).
///
/// A server sends its payload as it is: the frame header is the only thing
/// made per connection (two to ten bytes), and
/// [`send_prepared_vectored`](Connection::send_prepared_vectored) writes the
/// payload from here without a copy. A client masks every frame with a key
/// of its own, so each client copies the payload once, masking it as it
/// copies.
///
/// With the `deflate` feature, [`compressed`](Self::compressed) also
/// compresses the payload once, on its own (no context). A connection sends
/// those bytes where the RFC 7692 agreement allows a message compressed
/// without context: our side's window at least the prepared one, and either
/// no context takeover on our side or a compressor that takes its context
/// from the bytes sent (the shared pool's, or one not yet made). Any other
/// connection compresses the payload with its own context, or sends it
/// plain under its threshold or without the extension: never wrong bytes,
/// only less sharing.
///
/// Cloning is cheap: the clones share the bytes.
///
/// ```
/// use wsmachine::{Config, Connection};
/// use wsmachine::PreparedMessage;
///
/// let ticker = PreparedMessage::text(r#"{"price":101.5}"#);
/// let mut servers: Vec<Connection> =
///     (0..3).map(|_| Connection::open_server(Config::default())).collect();
/// for server in &mut servers {
///     server.send_prepared(&ticker).unwrap();
///     assert_eq!(server.poll_transmit().unwrap()[2..], *br#"{"price":101.5}"#);
/// }
/// ```
#[derive(Clone)]
pub struct PreparedMessage {
    inner: Arc<Inner>,
}

struct Inner {
    kind: MessageKind,
    data: Box<[u8]>,
    /// The payload compressed without context, and the window it is valid for.
    #[cfg(feature = "deflate")]
    deflated: Option<(u8, Box<[u8]>)>,
}

impl PreparedMessage {
    /// A message of `kind` with payload `data`, which must be UTF-8 for a
    /// text message ([`UsageError::InvalidUtf8`]).
    pub fn new(kind: MessageKind, data: &[u8]) -> Result<Self, UsageError> {
        if kind == MessageKind::Text && !utf8::is_valid(data) {
            return Err(UsageError::InvalidUtf8);
        }
        Ok(Self::valid(kind, data))
    }

    /// A text message.
    pub fn text(text: &str) -> Self {
        Self::valid(MessageKind::Text, text.as_bytes())
    }

    /// A binary message.
    pub fn binary(data: &[u8]) -> Self {
        Self::valid(MessageKind::Binary, data)
    }

    fn valid(kind: MessageKind, data: &[u8]) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                data: data.into(),
                #[cfg(feature = "deflate")]
                deflated: None,
            }),
        }
    }

    /// A message of `kind` (UTF-8 if text) prepared plain and compressed
    /// once by `compressor`, which is restarted first, so that the output
    /// stands alone (no context): the connections whose agreement allows it
    /// send these bytes, the others what they would send for
    /// [`new`](Self::new)'s message. Make `compressor` with the window the
    /// connections agreed (15 unless a smaller `server_max_window_bits` was
    /// negotiated) and the level they use; one compressor serves every
    /// message prepared.
    ///
    /// ```
    /// use wsmachine::{Config, Connection};
    /// use wsmachine::PreparedMessage;
    /// use wsmachine::deflate::Compressor;
    /// use wsmachine::handshake::Negotiated;
    /// use wsmachine::MessageKind;
    ///
    /// let mut compressor = Compressor::new(1, 15, true);
    /// let news = "the same news for everyone, ".repeat(10);
    /// let prepared = PreparedMessage::compressed(MessageKind::Text, news.as_bytes(), &mut compressor).unwrap();
    /// assert!(prepared.compressed_len().unwrap() < news.len());
    ///
    /// let negotiated = Negotiated { protocol: None, extensions: Some("permessage-deflate".into()) };
    /// let mut server = Connection::open_server_negotiated(Config::default(), negotiated);
    /// server.send_prepared(&prepared).unwrap();
    /// let frame = server.poll_transmit().unwrap();
    /// assert_eq!(frame[0], 0xC1); // FIN, RSV1 (compressed), text
    /// assert_eq!(frame.len(), 2 + prepared.compressed_len().unwrap());
    /// ```
    #[cfg(feature = "deflate")]
    pub fn compressed(
        kind: MessageKind,
        data: &[u8],
        compressor: &mut crate::deflate::Compressor,
    ) -> Result<Self, UsageError> {
        let mut prepared = Self::new(kind, data)?;
        compressor.restart(&[]);
        let mut out = alloc::vec::Vec::new();
        compressor.compress(data, true, &mut out);
        compressor.restart(&[]);
        if let Some(inner) = Arc::get_mut(&mut prepared.inner) {
            inner.deflated = Some((compressor.window_bits(), out.into()));
        }
        Ok(prepared)
    }

    /// Its kind.
    pub fn kind(&self) -> MessageKind {
        self.inner.kind
    }

    /// Its payload, as sent without compression.
    pub fn data(&self) -> &[u8] {
        &self.inner.data
    }

    /// The length of its compressed payload, if it was prepared compressed.
    pub fn compressed_len(&self) -> Option<usize> {
        #[cfg(feature = "deflate")]
        {
            self.inner.deflated.as_ref().map(|(_, bytes)| bytes.len())
        }
        #[cfg(not(feature = "deflate"))]
        {
            None
        }
    }

    /// The compressed payload, if there is one valid for a window of
    /// `window_bits`.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(super) fn deflated_for(&self, window_bits: u8) -> Option<&[u8]> {
        #[cfg(feature = "deflate")]
        {
            let (bits, bytes) = self.inner.deflated.as_ref()?;
            (*bits <= window_bits).then_some(&bytes[..])
        }
        #[cfg(not(feature = "deflate"))]
        {
            let _ = window_bits;
            None
        }
    }
}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("kind", &self.kind())
            .field("len", &self.data().len())
            .field("compressed_len", &self.compressed_len())
            .finish()
    }
}

impl Connection {
    /// Command: sends a [`PreparedMessage`] in one frame, copying its bytes
    /// into the transmit buffer (a client masks them as it copies). It is
    /// compressed under the same rule as [`send_text`](Self::send_text), with
    /// the prepared compressed bytes where this connection's agreement
    /// allows them.
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        if let Some((payload, rsv1)) = self.prepared_payload(message)? {
            self.core
                .tx
                .queue(message.kind().opcode(), true, rsv1, payload);
        }
        Ok(())
    }

    /// Command and output at once: [`send_prepared`](Self::send_prepared)
    /// with a vectored write, as [`send_vectored`](Self::send_vectored)
    /// does. A server hands out the frame header and the prepared bytes
    /// (plain or compressed) where they are: a broadcast writes one payload
    /// to every connection without a copy. Where the connection must make new
    /// bytes (a client's masking, its own compression), they are queued and
    /// the [`Transmit`] hands out the transmit buffer.
    ///
    /// ```
    /// use wsmachine::{Config, Connection};
    /// use wsmachine::PreparedMessage;
    ///
    /// let prepared = PreparedMessage::binary(&[1; 1000]);
    /// let mut server = Connection::open_server(Config::default());
    /// let transmit = server.send_prepared_vectored(&prepared).unwrap();
    /// assert_eq!(transmit.slices()[2].as_ptr(), prepared.data().as_ptr());
    /// ```
    pub fn send_prepared_vectored<'a>(
        &'a mut self,
        message: &'a PreparedMessage,
    ) -> Result<Transmit<'a>, Error> {
        let Some((payload, rsv1)) = self.prepared_payload(message)? else {
            let release_to = self.core.tx_release_to();
            return Ok(Transmit::queued(&mut self.core.tx, release_to));
        };
        let core = &mut self.core;
        let release_to = core.tx_release_to();
        if core.tx.masks() {
            core.tx.queue(message.kind().opcode(), true, rsv1, payload);
            return Ok(Transmit::queued(&mut core.tx, release_to));
        }
        let mut header = FrameHeader::new(message.kind().opcode(), true, None);
        header.rsv1 = rsv1;
        header.payload_len = payload.len() as u64;
        Ok(Transmit::new(&mut core.tx, release_to, &header, payload))
    }

    /// Checks that `message` may be sent now and picks what goes out: its
    /// payload and RSV1 (the prepared bytes, compressed or not), or `None`
    /// where this connection compressed it with its own context (queued).
    fn prepared_payload<'m>(
        &mut self,
        message: &'m PreparedMessage,
    ) -> Result<Option<(&'m [u8], bool)>, Error> {
        let core = &mut self.core;
        let data = message.data();
        if !core.begin_message(data.len(), Compress::Auto)? {
            return Ok(Some((data, false)));
        }
        if let Some(deflated) = core.deflate.take_prepared(message) {
            return Ok(Some((deflated, true)));
        }
        core.queue_data(message.kind().opcode(), true, true, data);
        Ok(None)
    }
}

/// What a broadcast does with a connection that cannot take its message now:
/// its send buffer past [`Config::max_send_buffer`](crate::Config::max_send_buffer)
/// (a slow reader), or a fragmented message of its own half sent. A
/// broadcast never waits for such a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lagging {
    /// Skip the message for it, and count the skip
    /// ([`Connection::broadcast_skips`]).
    Skip,
    /// Skip it, and once `after` messages in a row were skipped, close the
    /// connection with `code`: 1008 ([`CloseCode::POLICY_VIOLATION`]) or
    /// 1013 ([`CloseCode::TRY_AGAIN_LATER`]) tell the peer why. The close
    /// handshake's timeout ends a peer that reads nothing at all.
    Close {
        /// The skips in a row that close the connection (at least 1).
        after: u32,
        /// The close code sent.
        code: CloseCode,
    },
}

/// What a broadcast did with one connection
/// ([`Connection::broadcast_prepared`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The message is queued.
    Sent,
    /// Skipped, lagging: the skips in a row so far, this one included.
    Skipped(u32),
    /// Lagging once too often: closed now, with the policy's code.
    Closed,
    /// Not open (its handshake not done, or closing or closed): skipped,
    /// not counted.
    NotOpen,
}

/// What a broadcast did with each of its connections, counted
/// ([`PreparedMessage::broadcast`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastReport {
    /// Connections the message was queued on.
    pub sent: usize,
    /// Connections that skipped it, lagging.
    pub skipped: usize,
    /// Connections closed for lagging by this broadcast.
    pub closed: usize,
    /// Connections not open, left alone.
    pub not_open: usize,
}

impl BroadcastReport {
    /// Counts one connection's delivery.
    pub(crate) fn count(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Sent => self.sent += 1,
            Delivery::Skipped(_) => self.skipped += 1,
            Delivery::Closed => self.closed += 1,
            Delivery::NotOpen => self.not_open += 1,
        }
    }
}

impl Connection {
    /// Command, for a broadcast: sends `message` as
    /// [`send_prepared`](Self::send_prepared) does if the connection can take
    /// it now, else applies `lagging` to it. Never fails: what happened is
    /// the [`Delivery`]. A message sent resets the count of skips.
    ///
    /// ```
    /// use wsmachine::{CloseCode, Config, Connection, Delivery, Lagging, PreparedMessage};
    /// let mut config = Config::default();
    /// config.max_send_buffer = 64;
    /// let mut slow = Connection::open_server(config);
    /// let update = PreparedMessage::binary(&[0; 40]);
    /// let policy = Lagging::Close { after: 2, code: CloseCode::TRY_AGAIN_LATER };
    /// assert_eq!(slow.broadcast_prepared(&update, policy), Delivery::Sent);
    /// // The peer reads nothing: the queue stays past the mark.
    /// assert_eq!(slow.broadcast_prepared(&update, policy), Delivery::Skipped(1));
    /// assert_eq!(slow.broadcast_prepared(&update, policy), Delivery::Closed);
    /// assert_eq!(slow.broadcast_prepared(&update, policy), Delivery::NotOpen);
    /// ```
    pub fn broadcast_prepared(&mut self, message: &PreparedMessage, lagging: Lagging) -> Delivery {
        if let Err(delivery) = self.broadcast_admit(message, lagging) {
            return delivery;
        }
        match self.send_prepared(message) {
            Ok(()) => Delivery::Sent,
            // Admitted: open, not lagging, and a prepared message is valid.
            Err(_) => Delivery::NotOpen,
        }
    }

    /// Command and output at once, for a broadcast:
    /// [`broadcast_prepared`](Self::broadcast_prepared) with a vectored
    /// write, as [`send_prepared_vectored`](Self::send_prepared_vectored)
    /// does it. `Ok` is [`Delivery::Sent`], with the bytes to write; `Err`
    /// says what happened instead (nothing to write but what is queued).
    ///
    /// ```
    /// use wsmachine::{Config, Connection, Lagging, PreparedMessage};
    /// let snapshot = PreparedMessage::binary(&[7; 16 << 10]);
    /// let mut conn = Connection::open_server(Config::default());
    /// let transmit = conn.broadcast_prepared_vectored(&snapshot, Lagging::Skip).unwrap();
    /// assert_eq!(transmit.slices()[2].as_ptr(), snapshot.data().as_ptr());
    /// ```
    pub fn broadcast_prepared_vectored<'a>(
        &'a mut self,
        message: &'a PreparedMessage,
        lagging: Lagging,
    ) -> Result<Transmit<'a>, Delivery> {
        self.broadcast_admit(message, lagging)?;
        self.send_prepared_vectored(message)
            .map_err(|_| Delivery::NotOpen)
    }

    /// Whether the connection takes a broadcast `message` now: `Ok` if so
    /// (its skips reset), else the [`Delivery`] of `lagging` applied to it
    /// (or [`Delivery::NotOpen`]).
    fn broadcast_admit(
        &mut self,
        message: &PreparedMessage,
        lagging: Lagging,
    ) -> Result<(), Delivery> {
        if !self.is_open() {
            return Err(Delivery::NotOpen);
        }
        let core = &mut self.core;
        let lagging_behind = core.send.message.is_some()
            || core
                .tx
                .check_room(message.data().len(), core.config.max_send_buffer)
                .is_err();
        if !lagging_behind {
            core.send.broadcast_skips = 0;
            return Ok(());
        }
        let skips = core.send.broadcast_skips.saturating_add(1);
        core.send.broadcast_skips = skips;
        Err(match lagging {
            Lagging::Close { after, code } if skips >= after.max(1) => {
                match self.close(code, "lagging behind") {
                    Ok(()) => Delivery::Closed,
                    Err(_) => Delivery::NotOpen,
                }
            }
            _ => Delivery::Skipped(skips),
        })
    }

    /// Broadcast messages skipped in a row for this connection
    /// ([`broadcast_prepared`](Self::broadcast_prepared)), 0 since one was sent.
    pub fn broadcast_skips(&self) -> u32 {
        self.core.send.broadcast_skips
    }
}

impl PreparedMessage {
    /// Sends this message on every connection of `connections` that can take
    /// it now, applying `lagging` to those that cannot, and counts what
    /// happened ([`Connection::broadcast_prepared`] says it per connection).
    /// It only queues: the caller's write loop sends each connection's bytes
    /// as usual, and no connection waits for another.
    ///
    /// ```
    /// use wsmachine::{Config, Connection, Lagging, PreparedMessage};
    /// let mut room: Vec<Connection> = (0..3).map(|_| Connection::open_server(Config::default())).collect();
    /// room[2].close(wsmachine::CloseCode::GOING_AWAY, "").unwrap();
    /// let report = PreparedMessage::text("hello, room").broadcast(&mut room, Lagging::Skip);
    /// assert_eq!((report.sent, report.not_open), (2, 1));
    /// ```
    pub fn broadcast<'c>(
        &self,
        connections: impl IntoIterator<Item = &'c mut Connection>,
        lagging: Lagging,
    ) -> BroadcastReport {
        let mut report = BroadcastReport::default();
        for conn in connections {
            report.count(conn.broadcast_prepared(self, lagging));
        }
        report
    }
}
