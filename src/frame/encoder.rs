//! The frame encoder: minimal lengths, masking fused with the copy.

use alloc::vec::Vec;

use super::{FrameHeader, MAX_HEADER_LEN, mask_copy};

/// Appends a whole frame to `out`: the header (with `payload_len` taken from
/// `payload`) and the payload, masked with `header.mask` if set.
///
/// ```
/// use wsmachine::frame::{encode_frame, FrameHeader, OpCode};
/// let mut out = Vec::new();
/// encode_frame(&mut out, &FrameHeader::new(OpCode::TEXT, true, None), b"hi");
/// assert_eq!(out, b"\x81\x02hi");
/// ```
#[inline]
pub fn encode_frame(out: &mut Vec<u8>, header: &FrameHeader, payload: &[u8]) {
    let mut header = *header;
    header.payload_len = payload.len() as u64;
    let mut head = [0; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    out.reserve(n + payload.len());
    out.extend_from_slice(&head[..n]);
    match header.mask {
        None => out.extend_from_slice(payload),
        Some(key) => {
            let start = out.len();
            out.resize(start + payload.len(), 0);
            mask_copy(&mut out[start..], payload, key, 0);
        }
    }
}
