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
    /// The capacity a buffer keeps once idle ([`Config::retain_buffer_size`](crate::Config)).
    pub retain: usize,
    /// Free a buffer as soon as it empties ([`Config::buffer_release_delay`](crate::Config) is zero).
    pub release_at_once: bool,
    /// `recv_buffer` lent out the free space, not yet committed: its bytes
    /// may hold data, so the buffer is not freed meanwhile.
    pub lent: bool,
}

/// Frees an empty buffer that grew past `retain` bytes of capacity.
#[inline]
pub(crate) fn shrink(buf: &mut Vec<u8>, retain: usize) {
    if buf.is_empty() && buf.capacity() > retain {
        *buf = Vec::new();
    }
}

impl Rx {
    /// An empty receive side that keeps up to `retain` bytes of capacity per
    /// buffer when idle, freeing larger ones as they empty if `release_at_once`.
    pub fn new(retain: usize, release_at_once: bool) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            cursor: 0,
            end: 0,
            message: Vec::new(),
            retain,
            release_at_once,
            lent: false,
        }
    }

    /// Whether an empty buffer holds memory that [`release_idle`](Self::release_idle)
    /// would free (not the receive buffer while it is lent).
    pub fn holding(&self) -> bool {
        (self.start == self.end && !self.buf.is_empty() && !self.lent)
            || (self.message.is_empty() && self.message.capacity() > 0)
    }

    /// Frees the buffers that are empty (not the receive buffer while its
    /// free space is lent out), down to `keep` bytes of capacity each.
    pub fn release_idle(&mut self, keep: usize) {
        if !self.lent && self.start == self.end && self.buf.len() > keep {
            self.buf = Vec::new();
            (self.start, self.cursor, self.end) = (0, 0, 0);
        }
        shrink(&mut self.message, keep);
    }

    /// Drops the held bytes (after their event was delivered). A buffer left
    /// empty starts over at its front (and, with `release_at_once`, is freed
    /// if it grew past the retained size), unless its free space is lent
    /// out: a read may be written there, to be committed after `end`.
    #[inline]
    pub fn release(&mut self) {
        self.start = self.cursor;
        if self.start == self.end && !self.lent {
            self.start = 0;
            self.cursor = 0;
            self.end = 0;
            if self.release_at_once && self.buf.len() > self.retain {
                self.buf = Vec::new();
            }
        }
    }

    /// Empties the assembly buffer (after its message was delivered).
    #[inline]
    pub fn clear_message(&mut self) {
        self.message.clear();
        if self.release_at_once {
            shrink(&mut self.message, self.retain);
        }
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
    pub fn reserve(&mut self, mut min: usize) {
        // After an idle spell, the first read is small: a connection that
        // waits holds no more than the retained size.
        if self.buf.is_empty() && self.retain > 0 {
            min = min.min(self.retain);
        }
        if self.buf.len() - self.end >= min {
            return;
        }
        self.compact();
        if self.buf.len() - self.end < min {
            let len = (self.end + min).max(self.buf.len().saturating_mul(2));
            self.buf.resize(len, 0);
        }
    }

    /// `len` bytes appended after `end`, for the caller to write (their
    /// contents are stale; new space is zero-filled).
    pub fn append(&mut self, len: usize) -> &mut [u8] {
        if self.buf.len() - self.end < len {
            self.compact();
            if self.buf.len() - self.end < len {
                self.buf.resize(self.end + len, 0);
            }
        }
        let at = self.end;
        self.end += len;
        &mut self.buf[at..at + len]
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
