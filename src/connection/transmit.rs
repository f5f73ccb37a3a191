//! The transmit queue: every frame the connection sends is encoded (and, for
//! a client, masked) here, and waits here until the caller reports it
//! written. It owns backpressure (the high-water mark a command may not
//! pass) and pong coalescing (a peer that pings and does not read cannot
//! grow the queue).

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::Connection;
use super::buffer::shrink;
use crate::close::CloseFrame;
use crate::entropy::Entropy;
use crate::error::UsageError;
use crate::frame::{FrameHeader, OpCode, encode_frame};
use crate::handshake::{ClientRequest, ExpectedResponse};

/// Unsent bytes under which every ping gets a pong of its own; from there on,
/// a newer ping's pong replaces the unsent one (see [`TxQueue::queue_pong`]).
const PONG_BACKLOG: usize = 4096;

/// Bytes queued to send: `buf[pos..]` is unsent.
pub(super) struct TxQueue {
    buf: Vec<u8>,
    pos: usize,
    /// Where in `buf` the latest automatic pong waits whole and unsent: under
    /// a backlog, a newer ping replaces it (RFC 6455 §5.5.3).
    pong_at: Option<usize>,
    /// A client's masking keys (and its `Sec-WebSocket-Key`); `None` for a server.
    entropy: Option<Box<dyn Entropy + Send>>,
}

impl TxQueue {
    pub fn new(entropy: Option<Box<dyn Entropy + Send>>) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            pong_at: None,
            entropy,
        }
    }

    /// The bytes waiting to be sent.
    #[inline]
    pub fn unsent(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// How many bytes wait to be sent.
    #[inline]
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether an empty queue still holds memory.
    pub fn holding(&self) -> bool {
        self.buf.is_empty() && self.buf.capacity() > 0
    }

    /// Frees the queue's buffer if it is empty (after an idle spell).
    pub fn release_idle(&mut self) {
        shrink(&mut self.buf, 0);
    }

    /// Raw bytes to send as they are (an HTTP response).
    pub fn raw(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Client: queues the opening request with a fresh `Sec-WebSocket-Key`.
    pub fn encode_request(&mut self, request: &ClientRequest) -> ExpectedResponse {
        let mut nonce = [0; 16];
        if let Some(entropy) = self.entropy.as_mut() {
            entropy.fill(&mut nonce);
        }
        request.encode(nonce, &mut self.buf)
    }

    /// Whether frames are masked (a client's).
    pub fn masks(&self) -> bool {
        self.entropy.is_some()
    }

    /// Encodes a frame; a client masks it with a fresh key. RSV1 is the
    /// "Per-Message Compressed" bit (RFC 7692 §6).
    #[inline]
    pub fn queue(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
        let mask = self.entropy.as_mut().map(|entropy| {
            let mut key = [0; 4];
            entropy.fill(&mut key);
            key
        });
        let mut header = FrameHeader::new(opcode, fin, mask);
        header.rsv1 = rsv1;
        encode_frame(&mut self.buf, &header, payload);
    }

    /// Queues the automatic answer to a ping. Once [`PONG_BACKLOG`] bytes wait
    /// unsent, it replaces the answer to the previous ping if that one waits
    /// unsent too (RFC 6455 §5.5.3 allows answering only the most recent): a
    /// peer that sends pings and does not read cannot grow the queue.
    pub fn queue_pong(&mut self, payload: &[u8]) {
        if self.pending() < PONG_BACKLOG {
            self.pong_at = None;
        }
        if let Some(at) = self.pong_at.take() {
            // Our own frame: 2 header bytes, a key if we mask, the payload.
            let len =
                2 + 4 * usize::from(self.buf[at + 1] >> 7) + usize::from(self.buf[at + 1] & 0x7F);
            self.buf.drain(at..at + len);
        }
        self.pong_at = Some(self.buf.len());
        self.queue(OpCode::PONG, true, false, payload);
    }

    /// Queues a close frame, with no payload for `None` (RFC 6455 §5.5.1).
    pub fn queue_close(&mut self, frame: Option<&CloseFrame>) {
        let mut payload = [0; 125];
        let n = frame.map_or(0, |f| f.payload(&mut payload));
        self.queue(OpCode::CLOSE, true, false, &payload[..n]);
    }

    /// `n` bytes of the queue were written (clamped to what was pending).
    /// An emptied buffer keeps at most `release_to` bytes of capacity, if given.
    pub fn transmitted(&mut self, n: usize, release_to: Option<usize>) {
        self.pos = self.pos.saturating_add(n).min(self.buf.len());
        // A pong that began to go out can no longer be replaced.
        if self.pong_at.is_some_and(|at| at < self.pos) || self.pos == self.buf.len() {
            self.pong_at = None;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if let Some(retain) = release_to {
                shrink(&mut self.buf, retain);
            }
        }
    }

    /// Appends every unsent byte to `out` (taking the buffer itself when
    /// `out` is empty) and marks them sent.
    pub fn drain(&mut self, out: &mut Vec<u8>, release_to: Option<usize>) {
        if out.is_empty() && self.pos == 0 {
            core::mem::swap(out, &mut self.buf);
        } else {
            out.extend_from_slice(&self.buf[self.pos..]);
        }
        self.transmitted(usize::MAX, release_to);
    }

    /// Queues the unwritten rest of a vectored write, after the queue's own bytes.
    pub fn append(&mut self, head: &[u8], payload: &[u8]) {
        self.buf.reserve(head.len() + payload.len());
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(payload);
    }

    /// Backpressure: a frame with `len` payload bytes may be queued unless it
    /// would take a non-empty queue past the high-water mark `limit`
    /// ([`Config::max_send_buffer`](crate::Config::max_send_buffer)).
    pub fn check_room(&self, len: usize, limit: usize) -> Result<(), UsageError> {
        let queued = self.pending();
        if queued > 0 && queued.saturating_add(len) > limit {
            return Err(UsageError::SendBufferFull {
                queued,
                more: len,
                limit,
            });
        }
        Ok(())
    }
}

impl Connection {
    /// Output: the bytes waiting to be sent, or `None` if there are none.
    /// Report how many were written with [`transmitted`](Self::transmitted).
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        let pending = self.core.tx.unsent();
        (!pending.is_empty()).then_some(pending)
    }

    /// Input: `n` bytes from [`poll_transmit`](Self::poll_transmit) were written.
    /// `n` is clamped to what was pending.
    pub fn transmitted(&mut self, n: usize) {
        let release_to = self.core.tx_release_to();
        self.core.tx.transmitted(n, release_to);
    }

    /// Output: appends every byte waiting to be sent to `out` and marks them sent.
    pub fn drain_transmit(&mut self, out: &mut Vec<u8>) {
        let release_to = self.core.tx_release_to();
        self.core.tx.drain(out, release_to);
    }

    /// Bytes waiting to be sent.
    pub fn pending_transmit(&self) -> usize {
        self.core.tx.pending()
    }
}
