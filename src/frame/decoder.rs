//! A validating, incremental frame decoder that unmasks payload in place.

use super::{FrameHeader, Role, Status, apply_mask, mask_copy};
use crate::error::ProtocolError;

/// What the [`FrameDecoder`] checks on every header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// The role of the endpoint that receives: a server requires masked frames,
    /// a client unmasked ones (RFC 6455 §5.1).
    pub role: Role,
    /// Largest accepted payload (RFC 6455 §10.4); larger gives
    /// [`ProtocolError::FrameTooLarge`] before any payload is read.
    pub max_frame_size: u64,
    /// RSV bits that negotiated extensions define (RSV1 = 0x40, RSV2 = 0x20,
    /// RSV3 = 0x10); any other bit set fails the frame (RFC 6455 §5.2).
    pub allowed_rsv: u8,
}

/// One step of decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// A valid header was read; it took the first `len` bytes of the buffer.
    /// When `header.payload_len` is 0 the frame is already complete.
    Header {
        /// The header.
        header: FrameHeader,
        /// Bytes of the buffer it took.
        len: usize,
    },
    /// The first `len` bytes of the buffer were payload and are now unmasked in place.
    Payload {
        /// Payload bytes taken from the start of the buffer (at least 1).
        len: usize,
        /// Whether they end the frame.
        frame_end: bool,
    },
    /// Nothing can be decoded until at least `needed` more bytes arrive.
    Partial {
        /// The least number of additional bytes that may allow progress.
        needed: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Payload {
        mask: Option<[u8; 4]>,
        remaining: u64,
        offset: usize,
    },
}

/// Decodes a stream of frames incrementally: a header once it is whole, then
/// payload in whatever pieces arrive, unmasked in place.
///
/// It enforces every per-frame rule of RFC 6455 §5: masking by role, RSV bits,
/// reserved opcodes, control frame size and fragmentation, and the size limit.
/// Rules across frames (fragment sequencing, UTF-8) belong to the message layer.
///
/// ```
/// use wsmachine::frame::{Decoded, DecoderConfig, FrameDecoder, Role};
/// let mut decoder = FrameDecoder::new(DecoderConfig { role: Role::Client, max_frame_size: 1 << 20, allowed_rsv: 0 });
/// let mut wire = *b"\x81\x05hello";
/// let Decoded::Header { header, len } = decoder.decode(&mut wire).unwrap() else { panic!() };
/// assert_eq!((header.payload_len, len), (5, 2));
/// assert_eq!(decoder.decode(&mut wire[2..]).unwrap(), Decoded::Payload { len: 5, frame_end: true });
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    config: DecoderConfig,
    state: State,
    /// Payload bytes at the start of the next input that
    /// [`copy_payload`](Self::copy_payload) already unmasked.
    unmasked: usize,
}

impl FrameDecoder {
    /// A decoder that expects a header first.
    pub const fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            state: State::Header,
            unmasked: 0,
        }
    }

    /// The rules in force.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Changes the allowed RSV bits, for example once an extension is negotiated.
    pub fn set_allowed_rsv(&mut self, bits: u8) {
        self.config.allowed_rsv = bits & 0x70;
    }

    /// Changes the largest payload accepted (for example once an extension
    /// that may grow payloads is in force), effective from the next frame.
    pub fn set_max_frame_size(&mut self, max: u64) {
        self.config.max_frame_size = max;
    }

    /// Payload bytes of the current frame still to come (0 between frames).
    pub fn remaining(&self) -> u64 {
        match self.state {
            State::Header => 0,
            State::Payload { remaining, .. } => remaining,
        }
    }

    /// How many bytes of new input [`copy_payload`](Self::copy_payload)
    /// can take: payload of the current frame, masked, that will follow
    /// `queued` bytes already in the caller's buffer and not yet decoded. It
    /// is 0 unless all of those are payload it copied itself (and between
    /// frames, and for unmasked frames).
    pub fn copyable(&self, queued: usize) -> usize {
        match self.state {
            State::Payload {
                mask: Some(_),
                remaining,
                ..
            } if queued == self.unmasked => {
                let left = remaining - queued as u64;
                usize::try_from(left).unwrap_or(usize::MAX)
            }
            _ => 0,
        }
    }

    /// For a caller that copies received bytes into its buffer: copies
    /// `src`, the next payload bytes of the current frame, into `dst` (the
    /// same length), unmasking them on the way: one pass instead of a copy
    /// and then an unmask in place. `src.len()` must be at most
    /// [`copyable(queued)`](Self::copyable), and `dst` must follow the
    /// `queued` bytes in the buffer that [`decode`](Self::decode) is given
    /// next, which then hands these bytes out as payload without unmasking
    /// them again.
    ///
    /// ```
    /// use wsmachine::frame::{Decoded, DecoderConfig, FrameDecoder, Role};
    /// let mut decoder = FrameDecoder::new(DecoderConfig { role: Role::Server, max_frame_size: 1 << 20, allowed_rsv: 0 });
    /// // "hello" masked with the key 1, 2, 3, 4, in two reads.
    /// let wire = [0x81, 0x85, 1, 2, 3, 4, b'h' ^ 1, b'e' ^ 2, b'l' ^ 3, b'l' ^ 4, b'o' ^ 1];
    /// let mut buf = wire[..8].to_vec();
    /// let Decoded::Header { len, .. } = decoder.decode(&mut buf).unwrap() else { panic!() };
    /// buf.drain(..len);
    /// let src = &wire[8..];
    /// assert_eq!(decoder.copyable(buf.len()), 0); // two bytes in `buf` still masked
    /// assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::Payload { len: 2, frame_end: false });
    /// assert_eq!(decoder.copyable(0), 3);
    /// let mut rest = [0; 3];
    /// decoder.copy_payload(&mut rest, src);
    /// buf.extend_from_slice(&rest);
    /// assert_eq!(decoder.decode(&mut buf[2..]).unwrap(), Decoded::Payload { len: 3, frame_end: true });
    /// assert_eq!(buf, b"hello");
    /// ```
    ///
    /// # Panics
    /// If the lengths differ, or `src` is longer than the decoder can take.
    pub fn copy_payload(&mut self, dst: &mut [u8], src: &[u8]) {
        let State::Payload {
            mask: Some(key),
            remaining,
            offset,
        } = self.state
        else {
            panic!("copy_payload: not in a masked frame's payload");
        };
        let ahead = self.unmasked + src.len();
        assert!(
            ahead as u64 <= remaining,
            "copy_payload: more than the frame's payload"
        );
        mask_copy(dst, src, key, (offset + self.unmasked) & 3);
        self.unmasked = ahead;
    }

    /// Decodes the next step from the start of `buf`.
    ///
    /// The caller drops the bytes each step took and calls again with the rest.
    /// After an error the stream cannot be resynchronised: the connection must fail.
    #[inline]
    pub fn decode(&mut self, buf: &mut [u8]) -> Result<Decoded, ProtocolError> {
        match self.state {
            State::Header => {
                let (header, len) = match FrameHeader::decode(buf)? {
                    Status::Complete(parsed) => parsed,
                    Status::Partial { needed } => return Ok(Decoded::Partial { needed }),
                };
                self.check(&header)?;
                if header.payload_len > 0 {
                    self.state = State::Payload {
                        mask: header.mask,
                        remaining: header.payload_len,
                        offset: 0,
                    };
                }
                Ok(Decoded::Header { header, len })
            }
            State::Payload {
                mask,
                remaining,
                offset,
            } => {
                if buf.is_empty() {
                    return Ok(Decoded::Partial { needed: 1 });
                }
                let len = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                if let Some(key) = mask {
                    // What `copy_payload` unmasked on its way in is skipped.
                    let done = self.unmasked.min(len);
                    self.unmasked -= done;
                    apply_mask(&mut buf[done..len], key, (offset + done) & 3);
                }
                let remaining = remaining - len as u64;
                self.state = if remaining == 0 {
                    State::Header
                } else {
                    State::Payload {
                        mask,
                        remaining,
                        offset: (offset + len) & 3,
                    }
                };
                Ok(Decoded::Payload {
                    len,
                    frame_end: remaining == 0,
                })
            }
        }
    }

    fn check(&self, h: &FrameHeader) -> Result<(), ProtocolError> {
        // RFC 6455 §5.1: a server MUST close the connection upon an unmasked frame;
        // a client MUST close it upon a masked frame.
        match (self.config.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        // RFC 6455 §5.2: RSV bits MUST be 0 unless an extension defines them.
        let stray = h.rsv_bits() & !self.config.allowed_rsv;
        if stray != 0 {
            return Err(ProtocolError::ReservedBits(stray >> 4));
        }
        // RFC 6455 §5.2: reserved opcodes fail the connection.
        if h.opcode.is_reserved() {
            return Err(ProtocolError::ReservedOpcode(h.opcode.bits()));
        }
        if h.opcode.is_control() {
            // RFC 6455 §5.5: at most 125 bytes, and never fragmented.
            if h.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong(h.payload_len));
            }
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        // RFC 6455 §10.4: refuse an oversize frame before buffering any of it.
        if h.payload_len > self.config.max_frame_size {
            return Err(ProtocolError::FrameTooLarge {
                len: h.payload_len,
                max: self.config.max_frame_size,
            });
        }
        Ok(())
    }
}
