//! An owned message for futures' `Stream` and `Sink` (feature `futures`):
//! payloads are [`Bytes`], so a message moves between tasks and is cloned
//! for many receivers without copying its bytes.

use core::fmt;
use core::ops::Deref;

use bytes::Bytes;

use crate::{CloseCode, CloseFrame, CloseInfo, Event, MessageKind};

/// A message as a WebSocket's `Stream` yields it and its `Sink` takes it.
///
/// ```
/// use wsmachine::adapter::Message;
/// let hello = Message::text("hello");
/// assert_eq!(hello.as_text(), Some("hello"));
/// let data = Message::binary(vec![1, 2, 3]);
/// assert_eq!(data.payload().as_ref(), &[1, 2, 3]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping. Received, it was answered already (the connection sends the
    /// pong); sent, the peer answers with a pong.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A piece of a message, in [`MessageMode::Streaming`](crate::MessageMode::Streaming)
    /// (received), or a fragment to send (`fin`: the last).
    Fragment {
        /// The message's kind.
        kind: MessageKind,
        /// The bytes.
        data: Bytes,
        /// The last piece.
        fin: bool,
    },
    /// Received: the connection ended without a failure, with its close code
    /// and reason (RFC 6455 §7.1.5; `None` for 1005, a close frame without
    /// a code); the stream ends after it. Sent: starts the closing handshake
    /// with this code and reason (`None`: 1000, no reason).
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// The text, if it is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The payload's bytes (a close's: empty).
    pub fn payload(&self) -> Bytes {
        match self {
            Self::Text(text) => text.0.clone(),
            Self::Binary(data)
            | Self::Ping(data)
            | Self::Pong(data)
            | Self::Fragment { data, .. } => data.clone(),
            Self::Close(_) => Bytes::new(),
        }
    }

    /// Queues it on `conn` as a command.
    pub(crate) fn send(&self, conn: &mut crate::Connection) -> Result<(), crate::Error> {
        match self {
            Self::Text(text) => conn.send_text(text),
            Self::Binary(data) => conn.send_binary(data),
            Self::Ping(data) => conn.send_ping(data),
            Self::Pong(data) => conn.send_pong(data),
            Self::Fragment { kind, data, fin } => conn.send_fragment(*kind, data, *fin),
            Self::Close(frame) => match frame {
                Some(frame) => conn.close(frame.code(), frame.reason()),
                None => conn.close(CloseCode::NORMAL, ""),
            },
        }
    }

    /// The message for a received event; `Err` for a connection that
    /// failed; `None` for the opening handshake's events.
    pub(crate) fn from_event(event: Event<'_>) -> Option<Result<Self, crate::Error>> {
        Some(Ok(match event {
            Event::Text(text) => Self::Text(Utf8Bytes(Bytes::copy_from_slice(text.as_bytes()))),
            Event::Binary(data) => Self::Binary(Bytes::copy_from_slice(data)),
            Event::Ping(data) => Self::Ping(Bytes::copy_from_slice(data)),
            Event::Pong(data) => Self::Pong(Bytes::copy_from_slice(data)),
            Event::Fragment(fragment) => Self::Fragment {
                kind: fragment.kind,
                data: Bytes::copy_from_slice(fragment.data),
                fin: fragment.last,
            },
            Event::Closed(info) => return Some(Self::closed(info)),
            _ => return None,
        }))
    }

    fn closed(info: &CloseInfo) -> Result<Self, crate::Error> {
        if let Some(error) = info.error() {
            return Err(error.clone());
        }
        Ok(Self::Close(
            (info.code() != CloseCode::NO_STATUS)
                .then(|| CloseFrame::new(info.code(), info.reason()))
                .flatten(),
        ))
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::binary(data)
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

/// [`Bytes`] that hold UTF-8: a text message's payload, read as a `str`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// The text.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor takes a `str` or validates the bytes
        // (`TryFrom<Bytes>`), and `Bytes` never change: they are UTF-8. A
        // check per access would cost a pass over a message of any size.
        unsafe { crate::utf8::assume_validated(&self.0) }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The bytes, owned.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// From a static string, without a copy.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = crate::InvalidUtf8;

    /// Checks that `bytes` are UTF-8.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        let mut validator = crate::Utf8Validator::new();
        validator.feed(&bytes)?;
        validator.finish()?;
        Ok(Self(bytes))
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}
