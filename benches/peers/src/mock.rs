//! In-memory streams that behave like a socket: reads hand out at most
//! [`READ_CHUNK`](crate::READ_CHUNK) bytes, writes copy into a sink. The same
//! type serves the blocking (`Read + Write`) and the async (tokio
//! `AsyncRead + AsyncWrite`, always ready) libraries.

use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::READ_CHUNK;

/// Where written bytes go: each write is copied, as a socket copies into the
/// kernel. `keep` appends everything (to check it); otherwise each write
/// replaces the previous one in a reused buffer.
#[derive(Debug, Default)]
pub struct Sink {
    /// The bytes kept (all of them with `keep`, else the last write).
    pub buf: Vec<u8>,
    /// Whether to keep every byte.
    pub keep: bool,
    /// Bytes written in all.
    pub written: u64,
    /// Write calls.
    pub writes: u64,
    /// Counts what is written without copying it (a sink that stands for
    /// the kernel's copy left out).
    pub discard: bool,
    /// Where a copy of every byte written goes too, if set: a check's view of
    /// a sink that a connection holds.
    pub tap: Option<std::sync::Arc<std::sync::Mutex<Vec<u8>>>>,
}

impl Sink {
    /// A sink that keeps everything written.
    pub fn keeping() -> Self {
        Self {
            keep: true,
            ..Self::default()
        }
    }

    /// Forgets what was written (keeps the buffer's capacity).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.written = 0;
        self.writes = 0;
    }

    /// One write call of `bufs`.
    pub fn write(&mut self, bufs: &[&[u8]]) -> usize {
        if self.discard {
            let n = bufs.iter().map(|b| b.len()).sum::<usize>();
            self.written += n as u64;
            self.writes += 1;
            return n;
        }
        if !self.keep {
            self.buf.clear();
        }
        let mut n = 0;
        for b in bufs {
            self.buf.extend_from_slice(b);
            n += b.len();
        }
        if let Some(tap) = &self.tap {
            let mut tap = tap
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for b in bufs {
                tap.extend_from_slice(b);
            }
        }
        self.written += n as u64;
        self.writes += 1;
        n
    }
}

/// A stream over `input`, writing to `sink`.
#[derive(Debug)]
pub struct MockStream<'a> {
    input: &'a [u8],
    pos: usize,
    /// No read crosses this offset (as when a client waits for the 101
    /// response before it sends frames).
    boundary: usize,
    /// Where writes go.
    pub sink: &'a mut Sink,
    /// Read calls that returned data.
    pub reads: u64,
}

impl<'a> MockStream<'a> {
    /// A stream that will hand out `input` and write into `sink`.
    pub fn new(input: &'a [u8], sink: &'a mut Sink) -> Self {
        Self {
            input,
            pos: 0,
            boundary: 0,
            sink,
            reads: 0,
        }
    }

    /// Reads will not cross `offset`: what comes before it arrives first.
    pub fn with_boundary(mut self, offset: usize) -> Self {
        self.boundary = offset;
        self
    }

    /// Bytes of input not read yet.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// The next read without a copy, for a sans-IO library that takes the
    /// bytes as a slice: what [`Read::read`] would copy into a buffer of
    /// `READ_CHUNK` bytes.
    pub fn next_chunk(&mut self) -> &'a [u8] {
        self.take(READ_CHUNK)
    }

    /// The next read: at most `room` and `READ_CHUNK` bytes.
    fn take(&mut self, room: usize) -> &'a [u8] {
        let mut n = room.min(READ_CHUNK).min(self.remaining());
        if self.pos < self.boundary {
            n = n.min(self.boundary - self.pos);
        }
        let input: &'a [u8] = self.input;
        let data = &input[self.pos..self.pos + n];
        self.pos += n;
        self.reads += u64::from(n > 0);
        data
    }
}

impl Read for MockStream<'_> {
    /// Like a non-blocking socket with nothing more to come: `WouldBlock` once
    /// the input is consumed.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining() == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let data = self.take(buf.len());
        buf[..data.len()].copy_from_slice(data);
        Ok(data.len())
    }
}

impl Write for MockStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.sink.write(&[buf]))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let slices: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
        Ok(self.sink.write(&slices))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MockStream<'_> {
    /// Always ready; end of stream once the input is consumed.
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Into the spare capacity as is, as a socket read does: no zeroing first.
        let data = self.get_mut().take(buf.remaining());
        buf.put_slice(data);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MockStream<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().sink.write(&[buf])))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // At most two slices in practice (header and payload): no allocation.
        let this = self.get_mut();
        let n = match bufs {
            [] => 0,
            [a] => this.sink.write(&[a]),
            [a, b] => this.sink.write(&[a, b]),
            more => {
                let slices: Vec<&[u8]> = more.iter().map(|b| &b[..]).collect();
                this.sink.write(&slices)
            }
        };
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs a future over mock streams to completion on this thread, without a
/// runtime: the streams are always ready, so a `Pending` means a library
/// waits for something that will never come, and is a bug in the harness.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a future over always-ready mock streams stayed pending");
}
