//! The base framing protocol (RFC 6455 §5.2): header codec, masking, a
//! validating incremental decoder and an encoder.
//!
//! This layer is usable on its own, for example by a fuzzer or a proxy that
//! only needs frames.

mod decoder;
mod encoder;
mod header;
mod mask;

pub use decoder::{Decoded, DecoderConfig, FrameDecoder};
pub use encoder::encode_frame;
pub use header::{FrameHeader, MAX_HEADER_LEN, OpCode, Status};
pub use mask::{apply_mask, mask_copy};

/// Which end of the connection this is; it decides who masks (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The client masks every frame it sends and receives unmasked frames.
    Client,
    /// The server receives masked frames and sends unmasked ones.
    Server,
}

/// A whole frame: its header and its (unmasked) payload.
///
/// ```
/// use wsmachine::frame::{Frame, FrameHeader, OpCode, Status};
/// let frame = Frame { header: FrameHeader::new(OpCode::TEXT, true, Some([1, 2, 3, 4])), payload: b"hi" };
/// let mut wire = Vec::new();
/// frame.encode(&mut wire);
/// let Status::Complete((decoded, used)) = Frame::decode(&mut wire).unwrap() else { panic!() };
/// assert_eq!((decoded.payload, used), (&b"hi"[..], 8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The header; `payload_len` is ignored by [`Frame::encode`], which uses the payload's length.
    pub header: FrameHeader,
    /// The payload, unmasked.
    pub payload: &'a [u8],
}

/// A whole frame that owns its payload (unmasked): what the `proptest`
/// strategies and the `arbitrary` implementations generate.
///
/// ```
/// use wsmachine::frame::{Frame, FrameHeader, OpCode, OwnedFrame, Status};
/// let frame = OwnedFrame::new(FrameHeader::new(OpCode::PING, true, None), b"are you there".to_vec());
/// let mut wire = frame.encode_to_vec();
/// let Status::Complete((decoded, _)) = Frame::decode(&mut wire).unwrap() else { panic!() };
/// assert_eq!(decoded, frame.as_frame());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// The header; its `payload_len` is the payload's length.
    pub header: FrameHeader,
    /// The payload, unmasked.
    pub payload: alloc::vec::Vec<u8>,
}

impl OwnedFrame {
    /// A frame of `header` (its `payload_len` set to the payload's length) and `payload`.
    pub fn new(mut header: FrameHeader, payload: alloc::vec::Vec<u8>) -> Self {
        header.payload_len = payload.len() as u64;
        Self { header, payload }
    }

    /// The frame, borrowed.
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            header: self.header,
            payload: &self.payload,
        }
    }

    /// The frame on the wire, masked if the header has a key.
    pub fn encode_to_vec(&self) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec::Vec::with_capacity(MAX_HEADER_LEN + self.payload.len());
        self.as_frame().encode(&mut out);
        out
    }
}

impl<'a> Frame<'a> {
    /// Decodes one whole frame from the start of `buf`, unmasking its payload in
    /// place. Returns the frame and the number of bytes it took, or how many more
    /// bytes are needed. Only structural errors are reported here; the rules that
    /// depend on the role and the limits are the [`FrameDecoder`]'s.
    pub fn decode(buf: &'a mut [u8]) -> Result<Status<(Frame<'a>, usize)>, crate::ProtocolError> {
        let (header, header_len) = match FrameHeader::decode(buf)? {
            Status::Complete(parsed) => parsed,
            Status::Partial { needed } => return Ok(Status::Partial { needed }),
        };
        let available = (buf.len() - header_len) as u64;
        if available < header.payload_len {
            let needed = header.payload_len - available;
            return Ok(Status::Partial {
                needed: usize::try_from(needed).unwrap_or(usize::MAX),
            });
        }
        // payload_len <= available <= usize::MAX here.
        let end = header_len + header.payload_len as usize;
        let payload = &mut buf[header_len..end];
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        Ok(Status::Complete((Frame { header, payload }, end)))
    }

    /// Appends the frame to `out`, masking the payload with `header.mask` if set.
    pub fn encode(&self, out: &mut alloc::vec::Vec<u8>) {
        encode_frame(out, &self.header, self.payload);
    }
}
