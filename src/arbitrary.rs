//! [`Arbitrary`] for the crate's frame and message types (feature
//! `arbitrary`), so that users' fuzz targets can take them as input.
//!
//! The frame-level types take any value the wire can carry, valid or not
//! (reserved opcodes, RSV bits, any mask): that is what a fuzzer should throw
//! at a parser. [`Message`], [`Fragmented`] and [`CloseFrame`] are always
//! valid (text is UTF-8, a close code is sendable, a reason fits), since
//! they describe what a conforming peer sends.
//!
//! ```
//! use arbitrary::{Arbitrary, Unstructured};
//! use wsmachine::frame::OwnedFrame;
//! use wsmachine::message::Fragmented;
//!
//! // In a fuzz target: `fuzz_target!(|input: (Fragmented, Vec<OwnedFrame>)| { ... })`.
//! let bytes = [7u8; 64];
//! let mut u = Unstructured::new(&bytes);
//! let fragmented = Fragmented::arbitrary(&mut u).unwrap();
//! let total: usize = fragmented.sizes().iter().sum();
//! assert_eq!(total, fragmented.message().data().len());
//! let frame = OwnedFrame::arbitrary(&mut u).unwrap();
//! assert_eq!(frame.header.payload_len, frame.payload.len() as u64);
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::frame::{FrameHeader, OpCode, OwnedFrame, Role};
use crate::message::{Fragmented, Message};
use crate::{CloseCode, CloseFrame, MAX_REASON_LEN, MessageKind};

/// Any of the 16 wire values, reserved ones included.
impl<'a> Arbitrary<'a> for OpCode {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(OpCode::new(u.arbitrary()?))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(1))
    }
}

/// Any header the wire can carry: any bits, any mask, a length below 2^63.
impl<'a> Arbitrary<'a> for FrameHeader {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let bits: u8 = u.arbitrary()?;
        let mut header = FrameHeader::new(OpCode::new(bits), bits & 0x80 != 0, u.arbitrary()?);
        header.rsv1 = bits & 0x40 != 0;
        header.rsv2 = bits & 0x20 != 0;
        header.rsv3 = bits & 0x10 != 0;
        header.payload_len = u.arbitrary::<u64>()? >> 1;
        Ok(header)
    }
}

/// A header (any bits, as [`FrameHeader`]'s) with its payload; the header's
/// length is the payload's.
impl<'a> Arbitrary<'a> for OwnedFrame {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let header = FrameHeader::arbitrary(u)?;
        Ok(OwnedFrame::new(header, u.arbitrary()?))
    }
}

/// Any `u16`, sendable or not.
impl<'a> Arbitrary<'a> for CloseCode {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(CloseCode(u.arbitrary()?))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (2, Some(2))
    }
}

/// A sendable code and a UTF-8 reason cut to 123 bytes.
impl<'a> Arbitrary<'a> for CloseFrame {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let code = match u.int_in_range(0..=2)? {
            0 => u.int_in_range(1000..=1003)?,
            1 => u.int_in_range(1007..=1014)?,
            _ => u.int_in_range(3000..=4999)?,
        };
        let mut reason: String = u.arbitrary()?;
        let mut end = reason.len().min(MAX_REASON_LEN);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        Ok(CloseFrame::new(CloseCode(code), &reason).expect("a sendable code and a short reason"))
    }
}

impl<'a> Arbitrary<'a> for MessageKind {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(if u.arbitrary()? {
            MessageKind::Text
        } else {
            MessageKind::Binary
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(1))
    }
}

impl<'a> Arbitrary<'a> for Role {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(if u.arbitrary()? {
            Role::Client
        } else {
            Role::Server
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(1))
    }
}

/// Text (any `String`) or binary (any bytes).
impl<'a> Arbitrary<'a> for Message {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match MessageKind::arbitrary(u)? {
            MessageKind::Text => Message::text(String::arbitrary(u)?),
            MessageKind::Binary => Message::binary(Vec::<u8>::arbitrary(u)?),
        })
    }
}

/// A message cut at arbitrary offsets (inside code points too) into one or
/// more pieces.
impl<'a> Arbitrary<'a> for Fragmented {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let message = Message::arbitrary(u)?;
        let len = message.data().len();
        let mut cuts = Vec::new();
        // Bounded by the input: each cut takes at least one byte of it.
        while !u.is_empty() && cuts.len() < 64 && u.arbitrary()? {
            cuts.push(u.int_in_range(0..=len)?);
        }
        cuts.sort_unstable();
        let mut sizes = Vec::with_capacity(cuts.len() + 1);
        let mut at = 0;
        for cut in cuts.into_iter().chain([len]) {
            sizes.push(cut - at);
            at = cut;
        }
        Ok(Fragmented::new(message, sizes).expect("sizes add up"))
    }
}
