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
        let opcode = header.opcode;
        if opcode.is_control() {
            return Ok(FrameClass::Control(opcode));
        }
        let (kind, first, len) = match (opcode, self.current) {
            // RFC 6455 §5.4: a continuation needs a message in progress ...
            (OpCode::CONTINUATION, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::CONTINUATION, Some(c)) => (c.kind, false, c.len),
            // ... and fragments of two messages never interleave.
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (OpCode::TEXT, None) => (MessageKind::Text, true, 0),
            (_, None) => (MessageKind::Binary, true, 0),
        };
        // RFC 6455 §10.4: check the limit on the header, before any payload is kept.
        let len = len.saturating_add(header.payload_len);
        if len > self.max_message_size {
            return Err(ProtocolError::MessageTooLarge {
                len,
                max: self.max_message_size,
            });
        }
        self.current = Some(InProgress {
            kind,
            len,
            fin: header.fin,
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
