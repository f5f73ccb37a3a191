//! Sending a large payload without copying it into the connection: the
//! frame header and the caller's own bytes are handed out to be written
//! together (a vectored write), and whatever is not written by the end is
//! copied into the transmit buffer, so nothing is ever lost.

use core::fmt;

use super::transmit::TxQueue;
use crate::frame::{FrameHeader, MAX_HEADER_LEN};

/// The bytes of one message to write in order, borrowed from the connection
/// (what was queued before it, and the frame header) and from the caller (the
/// payload), from [`Connection::send_vectored`](super::Connection::send_vectored).
///
/// Write [`slices`](Self::slices) (or [`io_slices`](Self::io_slices)) and
/// report progress with [`advance`](Self::advance) until it
/// [`is_empty`](Self::is_empty). Dropped before that, it copies the rest into
/// the connection's transmit buffer: [`poll_transmit`](super::Connection::poll_transmit)
/// then hands it out as usual. A write that fails or is cancelled loses nothing.
/// (That takes its `Drop`: a `Transmit` leaked with `mem::forget` after a
/// partial write leaves the peer a truncated frame.)
///
/// ```
/// use wsmachine::{Config, Connection, MessageKind};
/// let mut server = Connection::open_server(Config::default());
/// let payload = vec![7u8; 1 << 20];
/// let mut socket = Vec::new(); // stands for a stream with write_vectored
///
/// let mut transmit = server.send_vectored(MessageKind::Binary, &payload).unwrap();
/// while !transmit.is_empty() {
///     let mut n = 0;
///     for slice in transmit.slices() {
///         socket.extend_from_slice(slice);
///         n += slice.len();
///     }
///     transmit.advance(n);
/// }
/// drop(transmit);
/// assert_eq!(socket.len(), 10 + payload.len()); // a 10-byte header, then the payload
/// assert!(server.poll_transmit().is_none());
/// ```
pub struct Transmit<'a> {
    tx: &'a mut TxQueue,
    /// What the transmit buffer keeps when it empties.
    release_to: Option<usize>,
    head: [u8; MAX_HEADER_LEN],
    head_len: u8,
    head_pos: u8,
    payload: &'a [u8],
}

impl<'a> Transmit<'a> {
    /// A frame to hand out without a copy: `header` before `payload`, after
    /// whatever the connection had queued.
    pub(super) fn new(
        tx: &'a mut TxQueue,
        release_to: Option<usize>,
        header: &FrameHeader,
        payload: &'a [u8],
    ) -> Self {
        let mut head = [0; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head) as u8;
        Self {
            tx,
            release_to,
            head,
            head_len,
            head_pos: 0,
            payload,
        }
    }

    /// Everything is already in the connection's transmit buffer.
    pub(super) fn queued(tx: &'a mut TxQueue, release_to: Option<usize>) -> Self {
        Self {
            tx,
            release_to,
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            head_pos: 0,
            payload: &[],
        }
    }

    /// The bytes still to write, in order: those queued in the connection,
    /// the frame header, the payload. Any of them may be empty.
    pub fn slices(&self) -> [&[u8]; 3] {
        [
            self.tx.unsent(),
            &self.head[self.head_pos as usize..self.head_len as usize],
            self.payload,
        ]
    }

    /// [`slices`](Self::slices) for [`std::io::Write::write_vectored`] and
    /// its async counterparts.
    #[cfg(feature = "std")]
    pub fn io_slices(&self) -> [std::io::IoSlice<'_>; 3] {
        self.slices().map(std::io::IoSlice::new)
    }

    /// Bytes still to write.
    pub fn remaining(&self) -> usize {
        self.slices().iter().map(|s| s.len()).sum()
    }

    /// Whether everything was written.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reports that the first `n` bytes of [`slices`](Self::slices) were
    /// written. `n` is clamped to what remains.
    pub fn advance(&mut self, mut n: usize) {
        let pending = self.tx.pending();
        if pending > 0 {
            let k = n.min(pending);
            self.tx.transmitted(k, self.release_to);
            n -= k;
        }
        let head = (self.head_len - self.head_pos) as usize;
        let k = n.min(head);
        self.head_pos += k as u8;
        n -= k;
        self.payload = &self.payload[n.min(self.payload.len())..];
    }
}

impl Drop for Transmit<'_> {
    fn drop(&mut self) {
        // Not written: queued in order, after the connection's own bytes.
        let head = &self.head[self.head_pos as usize..self.head_len as usize];
        if !head.is_empty() || !self.payload.is_empty() {
            self.tx.append(head, self.payload);
        }
    }
}

impl fmt::Debug for Transmit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transmit")
            .field("remaining", &self.remaining())
            .finish()
    }
}
