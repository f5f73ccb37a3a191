//! What a connection reports to the application.

use alloc::string::String;
use alloc::vec::Vec;

use crate::close::{CloseCode, CloseFrame};
use crate::error::Error;
use crate::handshake::{Negotiated, Request};
use crate::message::{Message, MessageKind};

/// Something that happened on the connection, from [`Connection::poll_event`](crate::Connection::poll_event).
///
/// Data borrows the connection's buffers until its next mutation: a single-frame
/// message is handed out in place, without a copy. [`Event::into_owned`] makes
/// an owned copy to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// Server: a valid upgrade request arrived. Answer it with
    /// [`Connection::accept`](crate::Connection::accept) or
    /// [`Connection::reject`](crate::Connection::reject); check its Origin
    /// here (RFC 6455 §10.2).
    Request(&'a Request),
    /// The opening handshake completed (both roles): the connection is open,
    /// with what was negotiated.
    Open(&'a Negotiated),
    /// A whole text message (whole-message mode), valid UTF-8.
    Text(&'a str),
    /// A whole binary message (whole-message mode).
    Binary(&'a [u8]),
    /// A piece of a data message (streaming mode).
    Fragment(Fragment<'a>),
    /// A ping and its payload. With [`Config::auto_pong`](crate::Config::auto_pong)
    /// the pong is already queued.
    Ping(&'a [u8]),
    /// A pong and its payload.
    Pong(&'a [u8]),
    /// The connection is closed: the close handshake completed, the connection
    /// failed, or the stream ended. This is the last event.
    Closed(&'a CloseInfo),
}

/// A piece of a data message in streaming mode.
///
/// The pieces of one message concatenate to the message; for text, the whole
/// is valid UTF-8 (a piece may end mid code point, so pieces are bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The message's kind.
    pub kind: MessageKind,
    /// The bytes that arrived.
    pub data: &'a [u8],
    /// This is the message's first piece.
    pub first: bool,
    /// This is the message's last piece (for text: UTF-8 validated to the end).
    pub last: bool,
}

/// Which endpoint started the closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// This endpoint: the application called `close`, or the connection failed
    /// on a peer's error.
    Local,
    /// The peer: it sent the first close frame, or the stream ended.
    Remote,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    pub(crate) code: CloseCode,
    pub(crate) frame: Option<CloseFrame>,
    pub(crate) initiator: Initiator,
    pub(crate) clean: bool,
    pub(crate) error: Option<Error>,
}

impl CloseInfo {
    /// The connection close code (RFC 6455 §7.1.5): the code of the peer's close
    /// frame, 1005 if it had none, 1006 if the stream ended without one; when the
    /// connection failed, the code sent to the peer (1002, 1007, 1009, ...).
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The close reason (RFC 6455 §7.1.6): from the peer's close frame, or the
    /// one sent when the connection failed; empty otherwise.
    pub fn reason(&self) -> &str {
        self.frame.as_ref().map_or("", CloseFrame::reason)
    }

    /// Who started the closing.
    pub fn initiator(&self) -> Initiator {
        self.initiator
    }

    /// Whether both close frames were exchanged (RFC 6455 §7.1.4).
    pub fn is_clean(&self) -> bool {
        self.clean
    }

    /// Why the connection failed, if it did.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
}

/// An [`Event`] that owns its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedEvent {
    /// See [`Event::Request`].
    Request(alloc::boxed::Box<Request>),
    /// See [`Event::Open`].
    Open(Negotiated),
    /// See [`Event::Text`].
    Text(String),
    /// See [`Event::Binary`].
    Binary(Vec<u8>),
    /// See [`Event::Fragment`].
    Fragment {
        /// The message's kind.
        kind: MessageKind,
        /// The bytes.
        data: Vec<u8>,
        /// First piece.
        first: bool,
        /// Last piece.
        last: bool,
    },
    /// See [`Event::Ping`].
    Ping(Vec<u8>),
    /// See [`Event::Pong`].
    Pong(Vec<u8>),
    /// See [`Event::Closed`].
    Closed(CloseInfo),
}

impl Event<'_> {
    /// Copies the event's data so that it outlives the borrow of the connection.
    pub fn into_owned(self) -> OwnedEvent {
        match self {
            Event::Request(r) => OwnedEvent::Request(alloc::boxed::Box::new(r.clone())),
            Event::Open(n) => OwnedEvent::Open(n.clone()),
            Event::Text(s) => OwnedEvent::Text(s.into()),
            Event::Binary(b) => OwnedEvent::Binary(b.to_vec()),
            Event::Fragment(f) => OwnedEvent::Fragment {
                kind: f.kind,
                data: f.data.to_vec(),
                first: f.first,
                last: f.last,
            },
            Event::Ping(b) => OwnedEvent::Ping(b.to_vec()),
            Event::Pong(b) => OwnedEvent::Pong(b.to_vec()),
            Event::Closed(info) => OwnedEvent::Closed(info.clone()),
        }
    }
}

// The owned message type of the message layer, as an event and back.
impl From<Message> for OwnedEvent {
    fn from(message: Message) -> Self {
        match message.kind() {
            // Checked on construction.
            MessageKind::Text => {
                OwnedEvent::Text(String::from_utf8(message.into_data()).unwrap_or_default())
            }
            MessageKind::Binary => OwnedEvent::Binary(message.into_data()),
        }
    }
}

impl TryFrom<OwnedEvent> for Message {
    type Error = OwnedEvent;

    /// A `Text` or `Binary` event as a message; any other event back.
    fn try_from(event: OwnedEvent) -> Result<Self, Self::Error> {
        match event {
            OwnedEvent::Text(text) => Ok(Self::text(text)),
            OwnedEvent::Binary(data) => Ok(Self::binary(data)),
            other => Err(other),
        }
    }
}
