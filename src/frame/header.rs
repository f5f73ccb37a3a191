//! The frame header (RFC 6455 §5.2).

use core::fmt;

use crate::error::ProtocolError;

/// The longest header: 2 bytes, a 64-bit length, and a 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame opcode (RFC 6455 §5.2), as a newtype over the 4-bit wire value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpCode(u8);

impl OpCode {
    /// 0x0: continuation of a fragmented message.
    pub const CONTINUATION: Self = Self(0x0);
    /// 0x1: text frame.
    pub const TEXT: Self = Self(0x1);
    /// 0x2: binary frame.
    pub const BINARY: Self = Self(0x2);
    /// 0x8: connection close.
    pub const CLOSE: Self = Self(0x8);
    /// 0x9: ping.
    pub const PING: Self = Self(0x9);
    /// 0xA: pong.
    pub const PONG: Self = Self(0xA);

    /// The opcode with the low 4 bits of `bits`.
    pub const fn new(bits: u8) -> Self {
        Self(bits & 0x0F)
    }

    /// The wire value, 0–15.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Control frames have the high bit of the opcode set (RFC 6455 §5.5).
    pub const fn is_control(self) -> bool {
        self.0 & 0x8 != 0
    }

    /// Whether RFC 6455 reserves this opcode for future use (0x3–0x7, 0xB–0xF).
    pub const fn is_reserved(self) -> bool {
        matches!(self.0, 0x3..=0x7 | 0xB..=0xF)
    }
}

impl fmt::Debug for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::CONTINUATION => "CONTINUATION",
            Self::TEXT => "TEXT",
            Self::BINARY => "BINARY",
            Self::CLOSE => "CLOSE",
            Self::PING => "PING",
            Self::PONG => "PONG",
            _ => return write!(f, "OpCode({:#x})", self.0),
        };
        f.write_str(name)
    }
}

/// The outcome of an incremental parse: complete, or how many more bytes it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// Parsed.
    Complete(T),
    /// At least `needed` more bytes are required before anything can be parsed.
    Partial {
        /// The least number of additional bytes that may complete the parse.
        needed: usize,
    },
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1 (used by permessage-deflate, RFC 7692).
    pub rsv1: bool,
    /// RSV2.
    pub rsv2: bool,
    /// RSV3.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes (at most 2^63 - 1 on the wire).
    pub payload_len: u64,
}

impl FrameHeader {
    /// A header with no RSV bits and an empty payload.
    pub const fn new(opcode: OpCode, fin: bool, mask: Option<[u8; 4]>) -> Self {
        Self {
            fin,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: 0,
        }
    }

    /// The RSV bits as they sit in the first byte (RSV1 = 0x40, RSV2 = 0x20, RSV3 = 0x10).
    pub const fn rsv_bits(&self) -> u8 {
        (self.rsv1 as u8) << 6 | (self.rsv2 as u8) << 5 | (self.rsv3 as u8) << 4
    }

    /// Parses a header from the start of `buf`: the header and its length in
    /// bytes, or how many more bytes are needed.
    ///
    /// Non-minimal length encodings are accepted (the minimal-length rule of
    /// §5.2 binds senders). The only structural error is a 64-bit length with
    /// the top bit set.
    ///
    /// ```
    /// use wsmachine::frame::{FrameHeader, OpCode, Status};
    /// assert_eq!(FrameHeader::decode(&[0x81]).unwrap(), Status::Partial { needed: 1 });
    /// assert_eq!(FrameHeader::decode(&[0x81, 0xFE]).unwrap(), Status::Partial { needed: 6 });
    /// let Status::Complete((h, len)) = FrameHeader::decode(&[0x82, 0x7E, 0x01, 0x00]).unwrap() else { panic!() };
    /// assert_eq!((h.opcode, h.payload_len, len), (OpCode::BINARY, 256, 4));
    /// ```
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Status<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(Status::Partial {
                needed: 2 - buf.len(),
            });
        };
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + ext + if masked { 4 } else { 0 };
        if buf.len() < header_len {
            return Ok(Status::Partial {
                needed: header_len - buf.len(),
            });
        }
        let payload_len = match len7 {
            126 => u16::from_be_bytes([buf[2], buf[3]]) as u64,
            127 => {
                let mut n = [0; 8];
                n.copy_from_slice(&buf[2..10]);
                let n = u64::from_be_bytes(n);
                // RFC 6455 §5.2: the most significant bit MUST be 0.
                if n >> 63 != 0 {
                    return Err(ProtocolError::InvalidPayloadLength);
                }
                n
            }
            n => n as u64,
        };
        let mask = masked.then(|| {
            let k = 2 + ext;
            [buf[k], buf[k + 1], buf[k + 2], buf[k + 3]]
        });
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode: OpCode::new(b0),
            mask,
            payload_len,
        };
        Ok(Status::Complete((header, header_len)))
    }

    /// The length of this header on the wire, with the minimal length encoding.
    pub const fn encoded_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header with the minimal length encoding (RFC 6455 §5.2) and
    /// returns how many bytes of `out` it used. This is the header-only encoder:
    /// a caller can write a large payload after it without copying it here.
    ///
    /// `payload_len` above 2^63 - 1 cannot be represented and is clamped.
    ///
    /// ```
    /// use wsmachine::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
    /// let mut h = FrameHeader::new(OpCode::BINARY, true, None);
    /// h.payload_len = 70_000;
    /// let mut out = [0; MAX_HEADER_LEN];
    /// let n = h.encode(&mut out);
    /// assert_eq!(&out[..n], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    /// ```
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (self.fin as u8) << 7 | self.rsv_bits() | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                let len = len.min(u64::MAX >> 1);
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }
}
