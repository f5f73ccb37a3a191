//! Close status codes (RFC 6455 §7.4) and close frame payloads (§5.5.1).

use core::fmt;

use crate::error::ProtocolError;

/// A close status code (RFC 6455 §7.4), as a newtype over the wire value.
///
/// Every `u16` can be represented, so codes from the registry that this crate
/// does not name (and private codes 4000–4999) pass through unchanged.
///
/// ```
/// use wsmachine::CloseCode;
/// assert!(CloseCode::NORMAL.is_sendable());
/// assert!(!CloseCode::ABNORMAL.is_sendable()); // 1006 never goes on the wire
/// assert!(CloseCode(4000).is_sendable());      // private use
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a type of data the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: closed without a close frame (never sent on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: data inconsistent with the message type, such as invalid UTF-8 in text.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message is too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: bad gateway (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may appear in a close frame on the wire.
    ///
    /// RFC 6455 §7.4: 0–999 are unused, 1004 is reserved, 1005, 1006 and 1015
    /// MUST NOT be sent, 1016–2999 are reserved for future protocol revisions.
    /// 1012–1014 are registered with IANA; 3000–4999 belong to libraries,
    /// frameworks and applications.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

/// The longest close reason that fits a control frame: 125 bytes less the code.
pub const MAX_REASON_LEN: usize = 123;

/// A close frame's payload: a status code and a UTF-8 reason, stored inline
/// (no heap), so that a closed connection can report it without allocating.
#[derive(Clone, PartialEq, Eq)]
pub struct CloseFrame {
    code: CloseCode,
    reason: [u8; MAX_REASON_LEN],
    reason_len: u8,
}

impl CloseFrame {
    /// A close payload with `code` and `reason`, or `None` if the reason is
    /// longer than [`MAX_REASON_LEN`] bytes.
    pub fn new(code: CloseCode, reason: &str) -> Option<Self> {
        if reason.len() > MAX_REASON_LEN {
            return None;
        }
        let mut buf = [0; MAX_REASON_LEN];
        buf[..reason.len()].copy_from_slice(reason.as_bytes());
        Some(Self {
            code,
            reason: buf,
            reason_len: reason.len() as u8,
        })
    }

    /// The status code.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason text (may be empty).
    pub fn reason(&self) -> &str {
        // The constructors only store valid UTF-8; an empty string is never reached.
        core::str::from_utf8(&self.reason[..self.reason_len as usize]).unwrap_or_default()
    }

    /// Parses and validates a received close payload (RFC 6455 §5.5.1).
    ///
    /// Returns `Ok(None)` for an empty payload (the close code is then 1005 for the
    /// application, and nothing is echoed but an empty close).
    pub fn parse(payload: &[u8]) -> Result<Option<Self>, ProtocolError> {
        match payload {
            [] => Ok(None),
            // RFC 6455 §5.5.1: if there is a body, its first two bytes MUST be a code.
            [_] => Err(ProtocolError::InvalidClosePayload),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                // RFC 6455 §7.4.1/§7.4.2: codes that must not be sent on the wire.
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                // RFC 6455 §5.5.1: the reason is UTF-8; §8.1 makes invalid UTF-8 a 1007.
                let reason =
                    core::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
                // A control frame is at most 125 bytes, so the reason always fits.
                Self::new(code, reason)
                    .ok_or(ProtocolError::ControlFrameTooLong(payload.len() as u64))
                    .map(Some)
            }
        }
    }

    /// Writes the wire payload (code in network byte order, then the reason).
    pub fn payload(&self, out: &mut [u8; 125]) -> usize {
        out[..2].copy_from_slice(&self.code.0.to_be_bytes());
        let n = self.reason_len as usize;
        out[2..2 + n].copy_from_slice(&self.reason[..n]);
        2 + n
    }
}

impl fmt::Debug for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloseFrame")
            .field("code", &self.code)
            .field("reason", &self.reason())
            .finish()
    }
}
