//! The receive side's bytes: one buffer read into in place, and the assembly
//! buffer for fragmented messages.

use alloc::vec::Vec;
use core::ops::Range;

/// Receive buffer. `buf` is always initialised (so it can be handed out for
/// reading without `unsafe`); its bytes are laid out as
/// `[released | held: start..cursor | unparsed: cursor..end | free: end..]`.
/// Held bytes are the unmasked payload of the frame being read when it is
/// kept in place (a control frame, or a single-frame message).
#[derive(Debug)]
pub(crate) struct Rx {
    pub buf: Vec<u8>,
    pub start: usize,
    pub cursor: usize,
    pub end: usize,
    /// Fragments of a message in progress (whole-message mode).
    pub message: Vec<u8>,
    /// The capacity a buffer keeps once empty ([`Config::retain_buffer_size`](crate::Config)).
    pub retain: usize,
}

/// Frees an empty buffer that grew past `retain` bytes of capacity.
#[inline]
pub(crate) fn shrink(buf: &mut Vec<u8>, retain: usize) {
    if buf.is_empty() && buf.capacity() > retain {
        *buf = Vec::new();
    }
}

impl Rx {
    /// An empty receive side that keeps up to `retain` bytes of capacity per buffer.
    pub fn new(retain: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            cursor: 0,
            end: 0,
            message: Vec::new(),
            retain,
        }
    }

    /// Drops the held bytes (after their event was delivered). A buffer left
    /// empty is freed if it grew past the retained size.
    #[inline]
    pub fn release(&mut self) {
        self.start = self.cursor;
        if self.start == self.end {
            self.start = 0;
            self.cursor = 0;
            self.end = 0;
            if self.buf.len() > self.retain {
                self.buf = Vec::new();
            }
        }
    }

    /// Empties the assembly buffer (after its message was delivered).
    #[inline]
    pub fn clear_message(&mut self) {
        self.message.clear();
        shrink(&mut self.message, self.retain);
    }

    /// The held bytes' range.
    #[inline]
    pub fn held(&self) -> Range<usize> {
        self.start..self.cursor
    }

    /// Moves the live bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.cursor -= self.start;
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Makes at least `min` initialised bytes free after `end`, moving the live
    /// bytes to the front before growing the buffer (geometrically, so that
    /// zero-filling new space stays amortised).
    pub fn reserve(&mut self, min: usize) {
        if self.buf.len() - self.end >= min {
            return;
        }
        self.compact();
        if self.buf.len() - self.end < min {
            let len = (self.end + min).max(self.buf.len().saturating_mul(2));
            self.buf.resize(len, 0);
        }
    }

    /// Appends received bytes (no zero-filling: the bytes after `end` are dead).
    pub fn extend(&mut self, data: &[u8]) {
        if self.buf.len() - self.end < data.len() {
            self.compact();
            self.buf.truncate(self.end);
            self.buf.extend_from_slice(data);
        } else {
            self.buf[self.end..self.end + data.len()].copy_from_slice(data);
        }
        self.end += data.len();
    }
}
