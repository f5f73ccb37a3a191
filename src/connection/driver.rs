//! The driver step: what every adapter does with a [`Connection`], written
//! once. An adapter (tokio, blocking, io_uring, an event loop, an embedded
//! stack) is a `match` over [`Driver::step`] plus its own I/O.

use core::time::Duration;

use super::{Connection, Event, Transmit};
use crate::error::Error;
use crate::message::MessageKind;

/// What the adapter is driving the connection toward, given to
/// [`Driver::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// The next event for the application (a `recv`).
    Event,
    /// Everything queued written and the transport flushed (after a command,
    /// and before one, for backpressure).
    Flush,
    /// The transport's end, the way RFC 6455 §7.1.1 asks, once the
    /// connection is closed: the server closes first; the client waits for
    /// that, at most [`Config::close_timeout`](crate::Config::close_timeout).
    CloseTransport,
}

/// What to do next, from [`Driver::step`]. It borrows nothing: the bytes,
/// the buffer and the event come from the driver's accessors, so an async
/// adapter can hold a `Step` across an await and a completion-based one
/// (io_uring) can keep it with its submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Write [`Driver::transmit`] to the transport; report how much was
    /// written with [`Driver::wrote`], or a failed write with
    /// [`Driver::write_failed`].
    Write,
    /// Everything is written: flush the transport's own buffers (TLS
    /// records, a `BufWriter`); then [`Driver::flushed`].
    Flush,
    /// An event is ready: take it with [`Driver::event`] and hand it to the
    /// application.
    Event,
    /// Read into [`Driver::recv_buffer`], waiting no later than `deadline`
    /// (on the driver's clock; `None`: as long as it takes); then report
    /// with [`Driver::read`], or [`Driver::no_read`] if the deadline came
    /// first or the read failed or was cancelled.
    Read {
        /// When the connection's next timer fires.
        deadline: Option<Duration>,
    },
    /// Close the transport: shut its write side down, or drop it.
    CloseTransport,
    /// The connection is closed and its [`Event::Closed`] was handed out:
    /// there is nothing more to receive.
    Closed,
    /// The goal is reached: everything is written and flushed
    /// ([`Goal::Flush`]), or the connection is not closed
    /// ([`Goal::CloseTransport`]).
    Done,
}

/// A [`Connection`] with the rules an adapter must keep, in code: what to do
/// next ([`step`](Self::step)) and what happened (the other methods). The
/// adapter owns the transport, the clock and the entropy; the driver owns
/// the order of things:
///
/// - Bytes that parsing queued (a pong, the echo of a close, the close
///   frame of a failure) are written before the event that caused them is
///   handed out, so they are never left behind by an application that
///   stops reading.
/// - Once the connection is closed, a write that fails is no error while
///   the closing event waits: the peer that has gone cannot take the echo of
///   its close, and the [`Event::Closed`] still goes out.
/// - Time is given before received bytes are committed, so they are timed at
///   the read; a buffer lent to a read that gave nothing comes back before
///   the time is given.
/// - The driver's clock starts at zero when it takes the connection,
///   whatever the connection's clock said: its times are shifted, so a
///   connection whose clock had started keeps its deadlines.
/// - The transport is flushed only after bytes were written.
///
/// ```
/// use std::time::Duration;
/// use wsmachine::{Config, Connection, Driver, Event, Goal, Step};
///
/// // The transport: bytes from the peer, and what we wrote.
/// let mut incoming: &[u8] = &[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
/// let mut outgoing = Vec::new();
/// let mut driver = Driver::new(Connection::open_server(Config::default()));
/// let now = Duration::ZERO; // the adapter's clock
/// let text = loop {
///     match driver.step(Goal::Event) {
///         Step::Write => {
///             let bytes = driver.transmit();
///             outgoing.extend_from_slice(bytes);
///             let n = bytes.len();
///             driver.wrote(n);
///         }
///         Step::Flush => driver.flushed(),
///         Step::Event => match driver.event() {
///             Some(Event::Text(text)) => break text.to_string(),
///             _ => {}
///         },
///         Step::Read { .. } => {
///             let buf = driver.recv_buffer();
///             let n = incoming.len().min(buf.len());
///             buf[..n].copy_from_slice(&incoming[..n]);
///             incoming = &incoming[n..];
///             driver.read(now, n); // 0 is the end of the stream
///         }
///         Step::CloseTransport | Step::Closed | Step::Done => unreachable!(),
///     }
/// };
/// assert_eq!(text, "hi");
/// ```
#[derive(Debug)]
pub struct Driver {
    conn: Connection,
    /// The connection's time at the driver's zero.
    base: Duration,
    /// The goal of the last step.
    goal: Goal,
    /// Bytes were written since the transport was last flushed.
    unflushed: bool,
    /// A write failed once closed: the event goes out without it.
    skip_write: bool,
    /// [`recv_buffer`](Self::recv_buffer) lent the buffer to a read.
    lent: bool,
}

impl Driver {
    /// Drives `conn`, in any state. The driver's clock starts at zero now:
    /// for a connection whose clock has not started, that starts it.
    pub fn new(mut conn: Connection) -> Self {
        let base = match conn.time() {
            Some(time) => time,
            None => {
                conn.handle_timeout(Duration::ZERO);
                Duration::ZERO
            }
        };
        Self {
            conn,
            base,
            goal: Goal::Event,
            unflushed: false,
            skip_write: false,
            lent: false,
        }
    }

    /// What to do next toward `goal`.
    pub fn step(&mut self, goal: Goal) -> Step {
        self.goal = goal;
        let writing = self.conn.pending_transmit() > 0 && !self.skip_write;
        match goal {
            Goal::Flush => self.written().unwrap_or(Step::Done),
            Goal::Event if self.conn.has_event() => {
                // What parsing queued goes out before the event.
                let before = if writing { Some(Step::Write) } else { None };
                before.or_else(|| self.written()).unwrap_or(Step::Event)
            }
            Goal::Event => self.written().unwrap_or_else(|| {
                if self.conn.is_closed() {
                    Step::Closed
                } else {
                    self.read_step()
                }
            }),
            Goal::CloseTransport if !self.conn.is_closed() => Step::Done,
            Goal::CloseTransport => self.written().unwrap_or_else(|| {
                if self.conn.should_close_transport() {
                    Step::CloseTransport
                } else {
                    self.read_step()
                }
            }),
        }
    }

    /// Write or flush, until everything is written and flushed.
    fn written(&self) -> Option<Step> {
        if self.conn.pending_transmit() > 0 && !self.skip_write {
            Some(Step::Write)
        } else if self.unflushed {
            Some(Step::Flush)
        } else {
            None
        }
    }

    fn read_step(&self) -> Step {
        Step::Read {
            deadline: self.deadline(),
        }
    }

    /// When the connection's next timer fires, on the driver's clock.
    pub fn deadline(&self) -> Option<Duration> {
        self.conn
            .poll_timeout()
            .map(|at| at.saturating_sub(self.base))
    }

    /// For [`Step::Write`]: the bytes to write.
    pub fn transmit(&self) -> &[u8] {
        self.conn.poll_transmit().unwrap_or_default()
    }

    /// `n` bytes of [`transmit`](Self::transmit) were written.
    pub fn wrote(&mut self, n: usize) {
        self.conn.transmitted(n);
        self.unflushed |= n > 0;
    }

    /// A write (or flush) failed. Returns whether the adapter reports the
    /// error: not when the connection is closed and its closing event waits
    /// to go out ([`Goal::Event`]), which the next step hands out.
    pub fn write_failed(&mut self) -> bool {
        let waiting = self.goal == Goal::Event && self.conn.is_closed() && self.conn.has_event();
        self.skip_write = waiting;
        self.unflushed &= !waiting;
        !waiting
    }

    /// For [`Step::Flush`]: the transport was flushed.
    pub fn flushed(&mut self) {
        self.unflushed = false;
    }

    /// For [`Step::Event`]: the event, which borrows the connection until
    /// its next mutation.
    pub fn event(&mut self) -> Option<Event<'_>> {
        self.skip_write = false;
        self.conn.poll_event()
    }

    /// For [`Step::Read`]: where to read to. Report with
    /// [`read`](Self::read) or [`no_read`](Self::no_read).
    pub fn recv_buffer(&mut self) -> &mut [u8] {
        self.lent = true;
        self.conn.recv_buffer()
    }

    /// The read into [`recv_buffer`](Self::recv_buffer) returned `n` bytes
    /// (`0`: the end of the stream) at `now` on the driver's clock.
    pub fn read(&mut self, now: Duration, n: usize) {
        if n == 0 {
            self.no_read(now);
            self.conn.handle_eof();
        } else {
            self.lent = false;
            self.conn.handle_timeout(self.base.saturating_add(now));
            self.conn.commit_recv(n);
        }
    }

    /// No bytes were read (the deadline came first, or the read failed or
    /// was cancelled); the time is `now`. Timers that are due fire: drain
    /// the outputs with [`step`](Self::step).
    pub fn no_read(&mut self, now: Duration) {
        if core::mem::take(&mut self.lent) {
            self.conn.commit_recv(0);
        }
        self.tick(now);
    }

    /// Gives the connection the time, `now` on the driver's clock: before a
    /// command, which is timed by it (the close timeout runs from the close,
    /// the idle time from a message).
    pub fn tick(&mut self, now: Duration) {
        self.conn.handle_timeout(self.base.saturating_add(now));
    }

    /// [`Connection::send_vectored`] for text known to be UTF-8 (an
    /// adapter's `send_text(&str)`): the bytes are written outside the
    /// driver, so the transport is flushed after them.
    #[cfg_attr(not(any(feature = "tokio", feature = "blocking")), allow(dead_code))]
    pub(crate) fn send_vectored_valid<'a>(
        &'a mut self,
        kind: MessageKind,
        data: &'a [u8],
    ) -> Result<Transmit<'a>, Error> {
        self.unflushed = true;
        self.conn.send_vectored_valid(kind, data)
    }

    /// [`Connection::send_received_vectored`], the bytes written outside
    /// the driver, so the transport is flushed after them.
    #[cfg_attr(not(any(feature = "tokio", feature = "blocking")), allow(dead_code))]
    pub(crate) fn send_received_vectored(&mut self) -> Result<Transmit<'_>, Error> {
        self.unflushed = true;
        self.conn.send_received_vectored()
    }

    /// [`Connection::send_prepared_vectored`], the bytes written outside
    /// the driver, so the transport is flushed after them.
    #[cfg_attr(not(any(feature = "tokio", feature = "blocking")), allow(dead_code))]
    pub(crate) fn send_prepared_vectored<'a>(
        &'a mut self,
        message: &'a crate::PreparedMessage,
    ) -> Result<Transmit<'a>, Error> {
        self.unflushed = true;
        self.conn.send_prepared_vectored(message)
    }

    /// [`Connection::broadcast_prepared_vectored`], the bytes written
    /// outside the driver, so the transport is flushed after them.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn broadcast_prepared_vectored<'a>(
        &'a mut self,
        message: &'a crate::PreparedMessage,
        lagging: crate::Lagging,
    ) -> Result<Transmit<'a>, crate::Delivery> {
        let transmit = self.conn.broadcast_prepared_vectored(message, lagging)?;
        self.unflushed = true;
        Ok(transmit)
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection, for commands (then [`Goal::Flush`]).
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection back.
    pub fn into_connection(self) -> Connection {
        self.conn
    }
}
