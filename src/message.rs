//! The message layer (RFC 6455 §5.4, §5.6, §8.1): fragment sequencing with
//! control frames interleaved, incremental UTF-8 validation of text, and the
//! message size limit.
//!
//! It holds validation state only, no payload: the caller decides where bytes
//! live (in place in a receive buffer, in an assembly buffer, or passed on as
//! a stream), and reports each frame's header, payload chunks and end.

use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode};
use crate::utf8::Utf8Validator;

/// The type of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Binary data (opcode 0x2).
    Binary,
}

impl MessageKind {
    /// The opcode that starts a message of this kind.
    pub const fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::TEXT,
            Self::Binary => OpCode::BINARY,
        }
    }
}

/// Where a frame belongs, as decided by [`MessageReader::begin_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameClass {
    /// A control frame (close, ping, pong), which may come between fragments.
    Control(OpCode),
    /// A frame of a data message.
    Data {
        /// The message's kind (a continuation inherits it).
        kind: MessageKind,
        /// Whether this frame starts the message.
        first: bool,
        /// Whether this frame ends the message.
        fin: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InProgress {
    kind: MessageKind,
    /// Payload bytes announced by the message's frames so far.
    len: u64,
    /// Whether the current frame is the last of the message.
    fin: bool,
    /// The message is compressed (permessage-deflate): its size is checked
    /// on what it inflates to, by the caller, not on the wire.
    compressed: bool,
}

/// Sequences frames into messages and validates their content.
///
/// ```
/// use wsmachine::frame::{FrameHeader, OpCode};
/// use wsmachine::message::{FrameClass, MessageKind, MessageReader};
/// let mut reader = MessageReader::new(1024);
/// let mut first = FrameHeader::new(OpCode::TEXT, false, None);
/// first.payload_len = 2;
/// assert!(matches!(reader.begin_frame(&first), Ok(FrameClass::Data { first: true, .. })));
/// reader.data(&[0xe2, 0x82]).unwrap();          // "€" split across fragments
/// assert_eq!(reader.end_frame().unwrap(), None);  // message not finished
/// let mut last = FrameHeader::new(OpCode::CONTINUATION, true, None);
/// last.payload_len = 1;
/// reader.begin_frame(&last).unwrap();
/// reader.data(&[0xac]).unwrap();
/// assert_eq!(reader.end_frame().unwrap(), Some(MessageKind::Text));
/// ```
#[derive(Debug, Clone)]
pub struct MessageReader {
    max_message_size: u64,
    current: Option<InProgress>,
    utf8: Utf8Validator,
}

impl MessageReader {
    /// A reader that refuses messages over `max_message_size` bytes.
    pub const fn new(max_message_size: u64) -> Self {
        Self {
            max_message_size,
            current: None,
            utf8: Utf8Validator::new(),
        }
    }

    /// The kind of the message in progress, if a data frame has started one.
    pub fn in_progress(&self) -> Option<MessageKind> {
        self.current.map(|c| c.kind)
    }

    /// Whether the current data frame ends its message.
    pub fn frame_is_final(&self) -> bool {
        self.current.is_some_and(|c| c.fin)
    }

    /// Payload bytes announced so far by the message in progress.
    pub fn message_len(&self) -> u64 {
        self.current.map_or(0, |c| c.len)
    }

    /// Places a frame whose header the frame layer has validated.
    pub fn begin_frame(&mut self, header: &FrameHeader) -> Result<FrameClass, ProtocolError> {
        self.place(header, false)
    }

    /// [`begin_frame`](Self::begin_frame) with permessage-deflate in force
    /// (RFC 7692 §6.1): a message whose first frame has RSV1 set is
    /// compressed, and its wire size is not limited here, since a compressor
    /// may make data larger (a stored block costs 5 bytes, each flush more):
    /// the caller checks `max_message_size` on what the message inflates to.
    pub fn begin_frame_deflate(
        &mut self,
        header: &FrameHeader,
    ) -> Result<FrameClass, ProtocolError> {
        self.place(header, header.rsv1)
    }

    fn place(&mut self, header: &FrameHeader, rsv1: bool) -> Result<FrameClass, ProtocolError> {
        let opcode = header.opcode;
        if opcode.is_control() {
            return Ok(FrameClass::Control(opcode));
        }
        let (kind, first, len, compressed) = match (opcode, self.current) {
            // RFC 6455 §5.4: a continuation needs a message in progress ...
            (OpCode::CONTINUATION, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::CONTINUATION, Some(c)) => (c.kind, false, c.len, c.compressed),
            // ... and fragments of two messages never interleave.
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (OpCode::TEXT, None) => (MessageKind::Text, true, 0, rsv1),
            (_, None) => (MessageKind::Binary, true, 0, rsv1),
        };
        // RFC 6455 §10.4: check the limit on the header, before any payload is kept.
        let len = len.saturating_add(header.payload_len);
        if len > self.max_message_size && !compressed {
            return Err(ProtocolError::MessageTooLarge {
                len,
                max: self.max_message_size,
            });
        }
        self.current = Some(InProgress {
            kind,
            len,
            fin: header.fin,
            compressed,
        });
        Ok(FrameClass::Data {
            kind,
            first,
            fin: header.fin,
        })
    }

    /// Validates the next payload chunk of the current data frame (UTF-8 for
    /// text, failing as soon as the bytes make the text invalid). A chunk given
    /// with no data frame in progress is ignored.
    #[inline]
    pub fn data(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        match self.current {
            Some(InProgress {
                kind: MessageKind::Text,
                ..
            }) => self
                .utf8
                .feed(chunk)
                .map_err(|_| ProtocolError::InvalidUtf8),
            _ => Ok(()),
        }
    }

    /// Ends the current data frame. Returns the message's kind when the frame
    /// ends the message, after checking that text does not stop mid code point.
    pub fn end_frame(&mut self) -> Result<Option<MessageKind>, ProtocolError> {
        match self.current {
            Some(c) if c.fin => {
                self.current = None;
                if c.kind == MessageKind::Text {
                    self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                Ok(Some(c.kind))
            }
            _ => Ok(None),
        }
    }
}

/// A whole data message, owned: text (valid UTF-8) or binary. What a test
/// sends and expects back, and what the `proptest` strategies and the
/// `arbitrary` implementations generate.
///
/// ```
/// use wsmachine::message::Message;
/// use wsmachine::{Config, Connection, OwnedEvent};
///
/// let message = Message::text("héllo");
/// let mut server = Connection::open_server(Config::default());
/// message.send(&mut server).unwrap();
/// assert_eq!(OwnedEvent::from(message.clone()), OwnedEvent::Text("héllo".into()));
/// assert_eq!(Message::try_from(OwnedEvent::Text("héllo".into())), Ok(message));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    kind: MessageKind,
    data: alloc::vec::Vec<u8>,
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<alloc::string::String>) -> Self {
        Self {
            kind: MessageKind::Text,
            data: text.into().into_bytes(),
        }
    }

    /// A binary message.
    pub fn binary(data: impl Into<alloc::vec::Vec<u8>>) -> Self {
        Self {
            kind: MessageKind::Binary,
            data: data.into(),
        }
    }

    /// A message of `kind`; `None` for text that is not UTF-8.
    pub fn new(kind: MessageKind, data: alloc::vec::Vec<u8>) -> Option<Self> {
        if kind == MessageKind::Text && !crate::utf8::is_valid(&data) {
            return None;
        }
        Some(Self { kind, data })
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The payload of a text message as a string.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Text => core::str::from_utf8(&self.data).ok(),
            MessageKind::Binary => None,
        }
    }

    /// The payload, owned.
    pub fn into_data(self) -> alloc::vec::Vec<u8> {
        self.data
    }
}

/// A message cut into fragments (RFC 6455 §5.4): the sizes of its pieces,
/// one frame each, which add up to the message. Text may be cut inside a
/// code point; an empty piece is a valid (empty) fragment.
///
/// ```
/// use wsmachine::message::{Fragmented, Message};
/// use wsmachine::{Config, Connection, OwnedEvent};
///
/// let fragmented = Fragmented::new(Message::text("aé"), vec![2, 0, 1]).unwrap();
/// assert_eq!(fragmented.pieces().collect::<Vec<_>>(), [&b"a\xc3"[..], b"", b"\xa9"]);
///
/// let mut client = Connection::open_client(Config::default(), wsmachine::SeededEntropy::new(1));
/// let mut server = Connection::open_server(Config::default());
/// fragmented.send(&mut client).unwrap();
/// let mut wire = Vec::new();
/// client.drain_transmit(&mut wire);
/// server.handle_read(&wire);
/// assert_eq!(server.poll_event().unwrap().into_owned(), OwnedEvent::Text("aé".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fragmented {
    message: Message,
    sizes: alloc::vec::Vec<usize>,
}

impl Fragmented {
    /// `message` in pieces of `sizes` bytes; `None` unless there is at least
    /// one piece and the sizes add up to the message's length.
    pub fn new(message: Message, sizes: alloc::vec::Vec<usize>) -> Option<Self> {
        let total = sizes
            .iter()
            .try_fold(0usize, |sum, &size| sum.checked_add(size))?;
        (!sizes.is_empty() && total == message.data.len()).then_some(Self { message, sizes })
    }

    /// The whole message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The sizes of the pieces.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = 0;
        self.sizes.iter().map(move |&size| {
            let piece = &self.message.data[at..at + size];
            at += size;
            piece
        })
    }

    /// The frames that carry the message, as its sender would write them
    /// (no extension), each masked with the key `mask` returns (`None` for a
    /// server).
    pub fn frames(
        &self,
        mut mask: impl FnMut() -> Option<[u8; 4]>,
    ) -> alloc::vec::Vec<crate::frame::OwnedFrame> {
        let last = self.sizes.len() - 1;
        self.pieces()
            .enumerate()
            .map(|(i, piece)| {
                let opcode = if i == 0 {
                    self.message.kind.opcode()
                } else {
                    OpCode::CONTINUATION
                };
                let mut header = FrameHeader::new(opcode, i == last, mask());
                header.payload_len = piece.len() as u64;
                crate::frame::OwnedFrame {
                    header,
                    payload: piece.to_vec(),
                }
            })
            .collect()
    }
}
