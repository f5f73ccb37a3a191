//! The tokio adapter's engine, in poll form: a [`Driver`] and its stream,
//! stepped toward a goal inside one `poll`. The futures of [`WebSocket`]
//! (`poll_fn` over these methods) and the split halves (the same methods
//! under a lock taken for one poll, never across an await) share it.
//!
//! Each method takes two wakers: `read` for the stream's readability and the
//! connection's timer, `write` for its writability. A whole `WebSocket`
//! passes its task's waker as both; the split halves pass, for writes, a
//! waker that wakes every half waiting to write, since a stream keeps one
//! waker per direction and either half may write (the reader writes the
//! pongs and close echoes its reads cause).
//!
//! [`WebSocket`]: super::WebSocket

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::time::{Instant, Sleep};

use crate::adapter::Error;
use crate::{Driver, Goal, Step};

/// A driver over its stream, with the clock and the timer of its reads.
#[derive(Debug)]
pub(super) struct Io<S> {
    pub(super) stream: S,
    pub(super) driver: Driver,
    /// The origin of the driver's clock.
    origin: Instant,
    /// One timer for the connection's deadlines, kept across reads: it is
    /// moved only when a deadline comes earlier than where it is set, so a
    /// read costs no timer of its own (a later deadline wakes it early once,
    /// harmlessly). Made at the first deadline, inside the runtime (creating
    /// a `Sleep` needs one; `from_connection` does not).
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub(super) fn new(stream: S, driver: Driver) -> Self {
        Self {
            stream,
            driver,
            origin: Instant::now(),
            sleep: None,
        }
    }

    /// The time on the driver's clock.
    pub(super) fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Where the timer is set, on the driver's clock (`None`: not set, or
    /// already fired).
    pub(super) fn timer(&self) -> Option<Duration> {
        let sleep = self.sleep.as_ref().filter(|s| !s.is_elapsed())?;
        Some(sleep.deadline().saturating_duration_since(self.origin))
    }

    /// Steps toward [`Goal::Event`] until an event is ready (take it with
    /// `driver.event()`), or the connection is closed ([`Error::Closed`]).
    pub(super) fn poll_event(&mut self, read: &Waker, write: &Waker) -> Poll<Result<(), Error>> {
        loop {
            match self.driver.step(Goal::Event) {
                Step::Event => return Poll::Ready(Ok(())),
                Step::Closed => return Poll::Ready(Err(Error::Closed)),
                step => ready!(self.poll_step(step, read, write))?,
            }
        }
    }

    /// Steps toward [`Goal::Flush`]: everything queued written and flushed.
    pub(super) fn poll_flush(&mut self, write: &Waker) -> Poll<Result<(), Error>> {
        loop {
            match self.driver.step(Goal::Flush) {
                Step::Done => return Poll::Ready(Ok(())),
                // Flushing only writes: the read waker is never used.
                step => ready!(self.poll_step(step, write, write))?,
            }
        }
    }

    /// Steps toward [`Goal::CloseTransport`]: `Ready(Ok(true))` when the
    /// transport should be shut down now, `Ready(Ok(false))` when there is
    /// nothing to do (the connection is not closed).
    pub(super) fn poll_close_transport(
        &mut self,
        read: &Waker,
        write: &Waker,
    ) -> Poll<Result<bool, Error>> {
        loop {
            match self.driver.step(Goal::CloseTransport) {
                Step::Done => return Poll::Ready(Ok(false)),
                Step::CloseTransport => return Poll::Ready(Ok(true)),
                step => ready!(self.poll_step(step, read, write))?,
            }
        }
    }

    /// Shuts the stream's write side down.
    pub(super) fn poll_shutdown(&mut self, write: &Waker) -> Poll<Result<(), Error>> {
        let mut cx = Context::from_waker(write);
        Poll::Ready(Ok(ready!(
            Pin::new(&mut self.stream).poll_shutdown(&mut cx)
        )?))
    }

    /// Carries out one step of I/O: a write, a flush, or a read.
    pub(super) fn poll_step(
        &mut self,
        step: Step,
        read: &Waker,
        write: &Waker,
    ) -> Poll<Result<(), Error>> {
        let outcome = match step {
            Step::Write => {
                let mut cx = Context::from_waker(write);
                let stream = Pin::new(&mut self.stream);
                match ready!(stream.poll_write(&mut cx, self.driver.transmit())) {
                    Ok(0) => Err(ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.driver.wrote(n);
                        Ok(())
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Step::Flush => {
                let mut cx = Context::from_waker(write);
                ready!(Pin::new(&mut self.stream).poll_flush(&mut cx))
                    .map(|()| self.driver.flushed())
            }
            Step::Read { deadline } => return self.poll_read(deadline, read),
            _ => Ok(()),
        };
        Poll::Ready(match outcome {
            Err(e) if self.driver.write_failed() => Err(e.into()),
            _ => Ok(()),
        })
    }

    /// Reads once into the connection's receive buffer, or fires the
    /// connection's timers when `deadline` comes first. A pending read keeps
    /// nothing of the buffer (tokio's `poll_read` contract): polled again,
    /// it reads into the buffer as it is then.
    fn poll_read(&mut self, deadline: Option<Duration>, waker: &Waker) -> Poll<Result<(), Error>> {
        let mut cx = Context::from_waker(waker);
        let mut buf = ReadBuf::new(self.driver.recv_buffer());
        let result = match Pin::new(&mut self.stream).poll_read(&mut cx, &mut buf) {
            Poll::Ready(result) => Some(result.map(|()| buf.filled().len())),
            Poll::Pending if self.poll_deadline(deadline, &mut cx).is_ready() => None,
            Poll::Pending => return Poll::Pending,
        };
        let now = self.now();
        match result {
            Some(Ok(n)) => self.driver.read(now, n),
            // A deadline passed: what it queued goes out at the next step.
            None => self.driver.no_read(now),
            Some(Err(e)) => {
                self.driver.no_read(now);
                if e.kind() != ErrorKind::Interrupted {
                    return Poll::Ready(Err(e.into()));
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Sets the timer for `deadline` (on the driver's clock) and polls it.
    fn poll_deadline(&mut self, deadline: Option<Duration>, cx: &mut Context<'_>) -> Poll<()> {
        // A deadline past what `Instant` can hold is no deadline.
        let Some(at) = deadline.and_then(|at| self.origin.checked_add(at)) else {
            return Poll::Pending;
        };
        let sleep = match &mut self.sleep {
            // Set no later than `at` and pending: it wakes in time (early if
            // the deadline moved later, which is harmless).
            Some(sleep) if sleep.deadline() <= at && !sleep.is_elapsed() => sleep,
            Some(sleep) => {
                sleep.as_mut().reset(at);
                sleep
            }
            None => self.sleep.insert(Box::pin(::tokio::time::sleep_until(at))),
        };
        sleep.as_mut().poll(cx)
    }
}
