//! Error types, typed by fault: the peer ([`ProtocolError`]) or the caller
//! ([`UsageError`]). Each protocol variant cites the RFC rule it enforces.

use crate::close::CloseCode;

/// Any error this crate reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol; the connection was failed with
    /// [`ProtocolError::close_code`].
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The caller used the API in a way the protocol forbids.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The opening handshake failed (RFC 6455 §4).
    #[error(transparent)]
    Handshake(#[from] crate::handshake::HandshakeError),
    /// A deadline of [`Config`](crate::Config) passed.
    #[error(transparent)]
    Timeout(#[from] Timeout),
}

/// Which deadline passed (see the timeouts of [`Config`](crate::Config)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Timeout {
    /// The opening handshake did not complete in
    /// [`handshake_timeout`](crate::Config::handshake_timeout).
    #[error("the opening handshake did not complete in time")]
    Handshake,
    /// The peer did not answer a keepalive ping in
    /// [`keepalive_timeout`](crate::Config::keepalive_timeout): it is unresponsive.
    #[error("the peer is unresponsive: no answer to a keepalive ping in time")]
    Keepalive,
    /// The peer did not answer our close frame in
    /// [`close_timeout`](crate::Config::close_timeout) (RFC 6455 §7.1.1).
    #[error("the peer did not answer the close frame in time")]
    Close,
}

/// The peer broke RFC 6455. Each variant maps to the close code sent to the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RFC 6455 §5.1: a server MUST close the connection upon an unmasked frame.
    #[error("received an unmasked frame from the client (RFC 6455 §5.1)")]
    UnmaskedFrame,
    /// RFC 6455 §5.1: a client MUST close the connection upon a masked frame.
    #[error("received a masked frame from the server (RFC 6455 §5.1)")]
    MaskedFrame,
    /// RFC 6455 §5.2: RSV1–3 MUST be 0 unless an extension defines them.
    #[error("reserved bits {0:#05b} set without a negotiated extension (RFC 6455 §5.2)")]
    ReservedBits(u8),
    /// RFC 6455 §5.2: opcodes 0x3–0x7 and 0xB–0xF are reserved.
    #[error("reserved opcode {0:#x} (RFC 6455 §5.2)")]
    ReservedOpcode(u8),
    /// RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
    #[error("64-bit payload length with the most significant bit set (RFC 6455 §5.2)")]
    InvalidPayloadLength,
    /// RFC 6455 §5.5: control frames carry at most 125 bytes of payload.
    #[error("control frame payload of {0} bytes, over 125 (RFC 6455 §5.5)")]
    ControlFrameTooLong(u64),
    /// RFC 6455 §5.5: control frames MUST NOT be fragmented.
    #[error("fragmented control frame (RFC 6455 §5.5)")]
    FragmentedControlFrame,
    /// RFC 6455 §5.4: a continuation frame without a message in progress.
    #[error("continuation frame without a fragmented message in progress (RFC 6455 §5.4)")]
    UnexpectedContinuation,
    /// RFC 6455 §5.4: fragments of one message MUST NOT interleave with another.
    #[error("new data frame while a fragmented message is in progress (RFC 6455 §5.4)")]
    ExpectedContinuation,
    /// RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection (1007).
    #[error("invalid UTF-8 in a text message (RFC 6455 §8.1)")]
    InvalidUtf8,
    /// RFC 6455 §5.5.1: a close body starts with a 2-byte code, so 1 byte is invalid.
    #[error("close frame with a 1-byte payload (RFC 6455 §5.5.1)")]
    InvalidClosePayload,
    /// RFC 6455 §7.4: a code that may not be sent in a close frame.
    #[error("close code {0} may not be sent on the wire (RFC 6455 §7.4)")]
    InvalidCloseCode(u16),
    /// RFC 6455 §5.5.1 and §8.1: the close reason MUST be UTF-8.
    #[error("invalid UTF-8 in a close reason (RFC 6455 §5.5.1)")]
    InvalidCloseReason,
    /// RFC 6455 §10.4: a frame over the configured limit (1009).
    #[error("frame of {len} bytes exceeds the limit of {max} (RFC 6455 §10.4)")]
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// RFC 7692 §6.1: only the first frame of a data message may set RSV1
    /// ("Per-Message Compressed"), never a continuation or control frame.
    #[error("RSV1 set on a continuation or control frame (RFC 7692 §6.1)")]
    CompressedBitMisplaced,
    /// RFC 7692 §7.2.2: the compressed payload does not inflate. The data is
    /// inconsistent with the message (1007, RFC 6455 §7.4.1). The field is
    /// zlib's description of the fault; it stays out of the message (and so
    /// out of the close reason sent), because it can differ with where the
    /// reads split the payload.
    #[error("invalid compressed data (RFC 7692 §7.2.2)")]
    InvalidCompressedData(alloc::string::String),
    /// RFC 6455 §10.4: a message over the configured limit (1009).
    #[error("message of at least {len} bytes exceeds the limit of {max} (RFC 6455 §10.4)")]
    MessageTooLarge {
        /// The message size known so far (including the frame that broke the limit).
        len: u64,
        /// The configured limit.
        max: u64,
    },
}

impl ProtocolError {
    /// The close code sent to the peer for this error (RFC 6455 §7.4.1).
    ///
    /// ```
    /// use wsmachine::{CloseCode, ProtocolError};
    /// assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode::INVALID_PAYLOAD);
    /// assert_eq!(ProtocolError::UnmaskedFrame.close_code(), CloseCode::PROTOCOL_ERROR);
    /// ```
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::InvalidCompressedData(_) => {
                CloseCode::INVALID_PAYLOAD
            }
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// The caller asked for something the protocol or the connection's state forbids.
/// Nothing was queued; the connection is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// RFC 6455 §5.5.1: no data frames after a close frame was sent; and
    /// nothing at all once the connection is closed.
    #[error("the connection is closing or closed")]
    Closed,
    /// RFC 6455 §5.5: control frame payloads are at most 125 bytes.
    #[error("control frame payload of {0} bytes, over 125 (RFC 6455 §5.5)")]
    ControlPayloadTooLong(usize),
    /// RFC 6455 §5.5.1: the reason must fit in a control frame after the code.
    #[error("close reason of {0} bytes, over 123 (RFC 6455 §5.5.1)")]
    CloseReasonTooLong(usize),
    /// RFC 6455 §7.4: this code may not be sent in a close frame.
    #[error("close code {0} may not be sent on the wire (RFC 6455 §7.4)")]
    InvalidCloseCode(u16),
    /// The transmit buffer holds `queued` unsent bytes and this frame would
    /// take it past [`Config::max_send_buffer`](crate::Config::max_send_buffer):
    /// write out what is queued, then retry. Nothing was queued.
    #[error(
        "{queued} bytes wait to be sent; {more} more would pass the send buffer's mark of {limit}"
    )]
    SendBufferFull {
        /// Unsent bytes in the transmit buffer.
        queued: usize,
        /// Bytes of the refused frame's payload.
        more: usize,
        /// The mark, [`Config::max_send_buffer`](crate::Config::max_send_buffer).
        limit: usize,
    },
    /// RFC 6455 §5.4: a fragmented message is in progress; finish it first.
    #[error("a fragmented message is in progress (RFC 6455 §5.4)")]
    FragmentInProgress,
    /// The fragment's kind differs from the message in progress.
    #[error("fragment kind differs from the message in progress")]
    FragmentKindMismatch,
    /// RFC 6455 §5.6: text fragments must form valid UTF-8.
    #[error("text fragments are not valid UTF-8 (RFC 6455 §5.6)")]
    InvalidUtf8,
    /// RFC 6455 §4.1: nothing can be sent before the opening handshake completes.
    #[error("the opening handshake has not completed (RFC 6455 §4.1)")]
    HandshakeInProgress,
    /// `accept` or `reject` without an upgrade request waiting for an answer.
    #[error("no upgrade request is waiting for an answer")]
    NoPendingRequest,
    /// RFC 6455 §4.2.2: the selected subprotocol must be one the client offered.
    #[error("the selected subprotocol was not offered by the client (RFC 6455 §4.2.2)")]
    ProtocolNotOffered,
    /// A header field that is not valid HTTP: a name that is not a token
    /// (RFC 9110 §5.1), or a value with control characters other than tab.
    #[error("a header field holds characters that would break the HTTP message")]
    InvalidHeader,
    /// A rejection needs a final status from 200 to 599 other than 101.
    #[error("{0} is not a status to reject an upgrade with")]
    InvalidStatus(u16),
    /// The client request's URI or fields are unusable.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] crate::handshake::UriError),
    /// `send_received` without a received message to send: the last event
    /// handed out was not a whole text or binary message, or an input since
    /// released its bytes.
    #[error(
        "no received message to send: the last event was not a whole message, or an input since released it"
    )]
    NoReceivedMessage,
}
