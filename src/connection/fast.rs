//! The fast path for the most common input: an unfragmented, uncompressed
//! data frame, whole in the buffer, between messages, in whole-message
//! mode, with a length under 64 KiB. It is handed out in place after one
//! pass that unmasks it (and validates it as UTF-8 if it is text).
//!
//! It enforces the same rules as the general path (masking by role, RSV
//! bits, the size limits, UTF-8) by taking only frames that pass them:
//! anything else, valid or not, returns `None` with nothing changed, and
//! the general path decides.
//!
//! Its invariants:
//! - It runs only between frames (no frame in progress) and between messages
//!   (no fragmented message in progress), in whole-message mode.
//! - It takes a frame only when FIN is set, RSV1–3 are clear, the opcode is
//!   text or binary, the mask bit matches the role (RFC 6455 §5.1), the
//!   length is in 7 or 16 bits and within both `max_frame_size` and
//!   `max_message_size`, and the whole frame is in the buffer.
//! - It changes nothing unless it takes the frame: it then unmasks the
//!   payload in place, validates text in the same pass, and moves the held
//!   range over the payload so that the event borrows it, as the general path
//!   would for a single-frame message kept in place (`Source::InPlace`).
//! - Text that is not UTF-8 fails the connection with 1007, as the general
//!   path would.

use super::Connection;
use super::recv::{Ready, Source};
use crate::config::MessageMode;
use crate::error::ProtocolError;
use crate::frame::{Role, apply_mask};
use crate::message::MessageKind;
use crate::utf8;

impl Connection {
    #[inline(always)]
    pub(super) fn fast_message(&mut self) -> Option<Ready> {
        let core = &mut self.core;
        if core.recv.frame.is_some()
            || core.config.mode != MessageMode::Whole
            || core.recv.reader.in_progress().is_some()
        {
            return None;
        }
        let rx = &mut self.rx;
        let buf = rx.buf.get_mut(rx.cursor..rx.end)?;
        let [b0, b1, ..] = *buf else { return None };
        // FIN set, RSV bits clear (RFC 6455 §5.2, RFC 7692 §6.1), text or binary.
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return None,
        };
        // RFC 6455 §5.1: frames to a server are masked, frames to a client not.
        let masked = b1 & 0x80 != 0;
        if masked != (core.role == Role::Server) {
            return None;
        }
        let (len, ext) = match b1 & 0x7F {
            126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 2),
            127 => return None,
            n => (n as usize, 0),
        };
        let header = 2 + ext + 4 * masked as usize;
        // RFC 6455 §10.4: the limits (the general path reports a breach).
        if len as u64 > core.config.max_frame_size.min(core.config.max_message_size)
            || buf.len() < header + len
        {
            return None;
        }
        let (head, rest) = buf.split_at_mut(header);
        let payload = &mut rest[..len];
        if masked {
            let key = [
                head[header - 4],
                head[header - 3],
                head[header - 2],
                head[header - 1],
            ];
            apply_mask(payload, key, 0);
        }
        // RFC 6455 §8.1: text is valid UTF-8, checked while the bytes are hot.
        if kind == MessageKind::Text && !utf8::is_valid(payload) {
            core.fail(ProtocolError::InvalidUtf8);
            return Some(Ready::Closed);
        }
        rx.start = rx.cursor + header;
        rx.cursor = rx.start + len;
        Some(Ready::Message(kind, Source::InPlace))
    }
}
