//! A [`WebSocket`] split into a reader and a writer for two tasks.
//!
//! Both halves share the connection and the stream under a lock that one
//! `poll` takes and gives back: never held across an await, so neither half
//! waits for the other's I/O, only for its few instructions. The reader
//! writes what its reads cause (pongs, the echo of a close) itself, so they
//! reach the wire while the writer is idle; when the peer is slow to take
//! bytes, the reader goes on reading and handing out events, and its writes
//! resume when the stream is writable again. A stream keeps one waker per
//! direction, so the halves hand it a waker that wakes every half waiting
//! to write.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker, ready};

use ::tokio::io::{AsyncRead, AsyncWrite};

use super::io::Io;
use super::{Data, Error, VECTORED_MIN, WebSocket};
use crate::{
    BroadcastReport, CloseCode, Connection, Delivery, Event, Goal, Lagging, MessageKind,
    OwnedEvent, PreparedMessage, Step,
};

/// The receiving half of a split [`WebSocket`] ([`WebSocket::into_split`]).
///
/// ```no_run
/// use wsmachine::adapter::tokio::WebSocket;
/// use wsmachine::{Config, OwnedEvent};
/// # async fn run(stream: tokio::net::TcpStream) -> Result<(), wsmachine::adapter::Error> {
/// let ws = WebSocket::accept(stream, Config::default()).await?;
/// let (mut reader, mut writer) = ws.into_split();
/// let sender = tokio::spawn(async move {
///     for i in 0..3 {
///         writer.send_text(&format!("tick {i}")).await?;
///     }
///     Ok::<_, wsmachine::adapter::Error>(writer)
/// });
/// while let Ok(event) = reader.recv().await {
///     if let OwnedEvent::Text(text) = event {
///         println!("{text}");
///     }
/// }
/// let writer = sender.await.expect("the sender")?;
/// let mut ws = reader.reunite(writer).expect("halves of one WebSocket");
/// ws.close_transport().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
}

/// The sending half of a split [`WebSocket`] ([`WebSocket::into_split`]).
#[derive(Debug)]
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
}

/// Two halves that are not of one [`WebSocket`], given back
/// ([`ReadHalf::reunite`]).
#[derive(Debug, thiserror::Error)]
#[error("the halves are not of one WebSocket")]
pub struct ReuniteError<S>(pub ReadHalf<S>, pub WriteHalf<S>);

#[derive(Debug)]
struct Shared<S> {
    locked: Mutex<Locked<S>>,
    /// The halves waiting to write.
    writers: Arc<Writers>,
    /// Wakes them all: the waker the stream gets for writes.
    write_waker: Waker,
}

#[derive(Debug)]
struct Locked<S> {
    io: Io<S>,
    /// The reader's waker while its read is pending, woken when a command of
    /// the writer brings the connection's next deadline before the reader's
    /// timer (a close starts the close timeout).
    reader: Option<Waker>,
}

/// The wakers of the halves waiting to write: [`READER`] and [`WRITER`].
#[derive(Debug, Default)]
struct Writers {
    slots: Mutex<[Option<Waker>; 2]>,
}

const READER: usize = 0;
const WRITER: usize = 1;

impl Writers {
    /// Whoever polls a write registers first, so that no wake is lost
    /// between a pending write and the registration.
    fn register(&self, half: usize, waker: &Waker) {
        let mut slots = lock(&self.slots);
        match &slots[half] {
            Some(w) if w.will_wake(waker) => {}
            _ => slots[half] = Some(waker.clone()),
        }
    }
}

impl Wake for Writers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let slots = std::mem::take(&mut *lock(&self.slots));
        for waker in slots.into_iter().flatten() {
            waker.wake();
        }
    }
}

/// A panic in another half while the lock was held leaves the connection
/// as consistent as any cancelled future does: go on with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn split<S>(io: Io<S>) -> (ReadHalf<S>, WriteHalf<S>) {
    let writers = Arc::new(Writers::default());
    let shared = Arc::new(Shared {
        locked: Mutex::new(Locked { io, reader: None }),
        write_waker: Waker::from(writers.clone()),
        writers,
    });
    (
        ReadHalf {
            shared: shared.clone(),
        },
        WriteHalf { shared },
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next event, owned. After the [`OwnedEvent::Closed`] event every
    /// call returns [`Error::Closed`]. Cancel-safe.
    pub async fn recv(&mut self) -> Result<OwnedEvent, Error> {
        self.recv_with(|event| event.into_owned()).await
    }

    /// The next event, lent to `f` without a copy. `f` runs while the
    /// halves' lock is held: the writer waits for it, so keep it short (copy
    /// or parse, never block), and do not reach the connection through
    /// either half from inside it (the lock is not reentrant).
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Result<R, Error> {
        let mut f = Some(f);
        poll_fn(|cx| self.poll_event_with(cx, &mut |event| f.take().map(|f| f(event)))).await
    }

    /// Steps toward the next event and lends it to `f`, until `f` returns
    /// `Some`.
    pub(super) fn poll_event_with<R>(
        &self,
        cx: &mut Context<'_>,
        f: &mut dyn FnMut(Event<'_>) -> Option<R>,
    ) -> Poll<Result<R, Error>> {
        let shared = &*self.shared;
        let mut locked = lock(&shared.locked);
        let locked = &mut *locked;
        shared.writers.register(READER, cx.waker());
        loop {
            let ready = poll_reader(&mut locked.io, cx.waker(), &shared.write_waker);
            if ready.is_pending() {
                match &locked.reader {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => locked.reader = Some(cx.waker().clone()),
                }
            }
            ready!(ready)?;
            if let Some(r) = locked.io.driver.event().and_then(&mut *f) {
                return Poll::Ready(Ok(r));
            }
        }
    }

    /// Ends the transport the way RFC 6455 §7.1.1 asks, once the connection
    /// is closed ([`WebSocket::close_transport`]).
    pub async fn close_transport(&mut self) -> Result<(), Error> {
        let shared = &*self.shared;
        poll_fn(|cx| {
            let mut locked = lock(&shared.locked);
            shared.writers.register(READER, cx.waker());
            let io = &mut locked.io;
            if ready!(io.poll_close_transport(cx.waker(), &shared.write_waker))? {
                ready!(io.poll_shutdown(&shared.write_waker))?;
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Puts the halves back together, if they are of one WebSocket.
    pub fn reunite(self, writer: WriteHalf<S>) -> Result<WebSocket<S>, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.shared, &writer.shared) {
            return Err(ReuniteError(self, writer));
        }
        drop(writer);
        let Ok(shared) = Arc::try_unwrap(self.shared) else {
            unreachable!("both halves are here, and only they hold the shared state");
        };
        let locked = shared
            .locked
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(WebSocket { io: locked.io })
    }

    /// Runs `f` on the connection (its state, its negotiated parameters).
    pub fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(lock(&self.shared.locked).io.driver.connection())
    }
}

/// Steps the reader toward an event. Writes go first, as they do for a
/// whole WebSocket; but when the stream cannot take them now, the reader
/// hands out the event that waits, or reads on, rather than wait for a peer
/// that does not read: the writes go out when the stream is writable (which
/// wakes this half).
fn poll_reader<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<S>,
    read: &Waker,
    write: &Waker,
) -> Poll<Result<(), Error>> {
    loop {
        let step = io.driver.step(Goal::Event);
        match step {
            Step::Event => return Poll::Ready(Ok(())),
            Step::Closed => return Poll::Ready(Err(Error::Closed)),
            Step::Write | Step::Flush => {
                if io.poll_step(step, read, write)?.is_ready() {
                    continue;
                }
                if io.driver.connection_mut().has_event() {
                    return Poll::Ready(Ok(()));
                }
                let deadline = io.driver.deadline();
                ready!(io.poll_step(Step::Read { deadline }, read, write))?;
            }
            step => ready!(io.poll_step(step, read, write))?,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(Data::Text(text)).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(Data::Binary(data)).await
    }

    /// Sends a [`PreparedMessage`], waiting for room as every send does;
    /// [`broadcast_prepared`](Self::broadcast_prepared) never waits.
    pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        self.send(Data::Prepared(message)).await
    }

    /// For a broadcast, without waiting: queues `message` if the connection
    /// can take it now, else applies `lagging` to it
    /// ([`Connection::broadcast_prepared`] says how), then writes what it
    /// can right away, as far as the stream takes it without waiting. The
    /// rest goes out when the stream is writable again, written by whichever
    /// half polls next (the reader, waiting in `recv`, is woken for it).
    /// From 8 KiB on, a server writes the prepared bytes where they lie
    /// (vectored) when nothing is queued before them, and queues only what
    /// the stream did not take.
    ///
    /// A write that fails wakes the reader, whose `recv` returns the error;
    /// the delivery says what the connection did with the message.
    ///
    /// The writes are not counted against tokio's cooperative budget (see
    /// [`broadcast`]).
    pub fn broadcast_prepared(&self, message: &PreparedMessage, lagging: Lagging) -> Delivery {
        unbudgeted(|| self.broadcast_one(message, lagging))
    }

    fn broadcast_one(&self, message: &PreparedMessage, lagging: Lagging) -> Delivery {
        let shared = &*self.shared;
        let mut locked = lock(&shared.locked);
        let Locked { io, reader } = &mut *locked;
        // What is still queued goes first, as far as the stream takes it:
        // a connection whose reader is not polling now is judged by what
        // its stream could not take, not by what nobody tried to write.
        if let Poll::Ready(Err(_)) = io.poll_flush(&shared.write_waker)
            && let Some(reader) = reader.take()
        {
            reader.wake();
        }
        let vectored = message.data().len() >= VECTORED_MIN
            && io.stream.is_write_vectored()
            && io.driver.connection().pending_transmit() == 0;
        let delivery = if vectored {
            match io.driver.broadcast_prepared_vectored(message, lagging) {
                Ok(mut transmit) => {
                    let mut cx = Context::from_waker(&shared.write_waker);
                    while !transmit.is_empty() {
                        let slices = transmit.io_slices();
                        match Pin::new(&mut io.stream).poll_write_vectored(&mut cx, &slices) {
                            Poll::Ready(Ok(n)) if n > 0 => transmit.advance(n),
                            // Pending, or a failure that the flush below
                            // meets again: the rest is queued as it drops.
                            _ => break,
                        }
                    }
                    Delivery::Sent
                }
                Err(delivery) => delivery,
            }
        } else {
            io.driver
                .connection_mut()
                .broadcast_prepared(message, lagging)
        };
        wake_if_deadline_moved(io, reader);
        if matches!(delivery, Delivery::Sent | Delivery::Closed)
            && let Poll::Ready(Err(_)) = io.poll_flush(&shared.write_waker)
            && let Some(reader) = reader.take()
        {
            reader.wake();
        }
        delivery
    }

    /// Framed whole into the connection's transmit buffer, large or not: a
    /// vectored write straight from `data` would keep the lock across awaits.
    async fn send(&mut self, data: Data<'_>) -> Result<(), Error> {
        self.command(|conn| data.send(conn)).await
    }

    /// Sends one fragment of a message (see [`Connection::send_fragment`]).
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.command(|conn| conn.send_fragment(kind, data, fin))
            .await
    }

    /// Sends a ping.
    pub async fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.command(|conn| conn.send_ping(payload)).await
    }

    /// Sends a pong.
    pub async fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.command(|conn| conn.send_pong(payload)).await
    }

    /// Starts the closing handshake; the reader receives until
    /// [`OwnedEvent::Closed`] to complete it.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.command(|conn| conn.close(code, reason)).await
    }

    /// Writes everything the connection has queued, and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush(cx, false)).await
    }

    /// Polls the queued bytes out; with `tick`, gives the connection the
    /// time first (before a command: what a deadline queued goes out first).
    pub(super) fn poll_flush(&self, cx: &mut Context<'_>, tick: bool) -> Poll<Result<(), Error>> {
        let shared = &*self.shared;
        let mut locked = lock(&shared.locked);
        shared.writers.register(WRITER, cx.waker());
        if tick {
            let now = locked.io.now();
            locked.io.driver.tick(now);
        }
        locked.io.poll_flush(&shared.write_waker)
    }

    /// Waits until what is queued is written (backpressure: the transmit
    /// buffer holds at most one message more), gives the connection the
    /// time, runs `command` on it, and flushes. Cancel-safe: a cancelled
    /// command is queued or not run at all, never half.
    async fn command(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), crate::Error>,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush(cx, true)).await?;
        self.queue(command)?;
        self.flush().await
    }

    /// Runs `command` on the connection. A deadline it brings before the
    /// reader's timer (a close starts the close timeout) wakes the reader,
    /// which sets its timer anew.
    pub(super) fn queue(
        &self,
        command: impl FnOnce(&mut Connection) -> Result<(), crate::Error>,
    ) -> Result<(), Error> {
        let mut locked = lock(&self.shared.locked);
        let Locked { io, reader } = &mut *locked;
        command(io.driver.connection_mut())?;
        wake_if_deadline_moved(io, reader);
        Ok(())
    }

    /// Runs `f` on the connection (its state, its negotiated parameters, or
    /// commands batched before a [`flush`](Self::flush)).
    pub fn with_connection<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        f(lock(&self.shared.locked).io.driver.connection_mut())
    }
}

/// Wakes the reader, waiting in `recv`, when a command brought the
/// connection's next deadline before the reader's timer (a close starts the
/// close timeout): it sets its timer anew.
fn wake_if_deadline_moved<S: AsyncRead + AsyncWrite + Unpin>(
    io: &Io<S>,
    reader: &mut Option<Waker>,
) {
    let moved = match (io.driver.deadline(), io.timer()) {
        (Some(deadline), Some(timer)) => deadline < timer,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if moved && let Some(waker) = reader.take() {
        waker.wake();
    }
}

/// Sends `message` on every half of `halves` that can take it now, applying
/// `lagging` to those that cannot ([`WriteHalf::broadcast_prepared`] for
/// each), and counts what happened. It never waits: no connection holds up
/// another, nor the caller; each writes what its stream takes at once, and
/// the rest when the stream is writable again.
///
/// It waits only for each connection's lock, which a reader half holds for
/// the few instructions of one poll. So never call it from inside a
/// [`ReadHalf::recv_with`] closure of a connection in `halves`: that lock
/// is held there, and is not reentrant.
///
/// The writes are not counted against tokio's cooperative budget, which
/// makes a task's I/O return `Pending` after 128 operations in one poll: a
/// broadcast is one synchronous call that yields nowhere anyway, and a spent
/// budget would only leave every later connection's bytes queued for its
/// reader half, at the cost of a task wakeup each (over loopback, a ticker to
/// 10,000 connections woke a reader for nearly every update).
///
/// ```no_run
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use tokio::net::TcpStream;
/// use wsmachine::adapter::tokio::{WriteHalf, broadcast};
/// use wsmachine::{CloseCode, Lagging, PreparedMessage};
///
/// fn tick(room: &Mutex<HashMap<u64, WriteHalf<TcpStream>>>, price: f64) {
///     let update = PreparedMessage::text(&format!(r#"{{"price":{price}}}"#));
///     // A subscriber 8 updates behind is closed with 1013 (try again later).
///     let lagging = Lagging::Close { after: 8, code: CloseCode::TRY_AGAIN_LATER };
///     let report = broadcast(&update, room.lock().unwrap().values(), lagging);
///     println!("sent to {}, {} lagging", report.sent, report.skipped);
/// }
/// ```
pub fn broadcast<'h, S: AsyncRead + AsyncWrite + Unpin + 'h>(
    message: &PreparedMessage,
    halves: impl IntoIterator<Item = &'h WriteHalf<S>>,
    lagging: Lagging,
) -> BroadcastReport {
    unbudgeted(|| {
        let mut report = BroadcastReport::default();
        for half in halves {
            report.count(half.broadcast_one(message, lagging));
        }
        report
    })
}

/// Runs `f` outside tokio's cooperative budget (`coop::unconstrained`,
/// polled once: it is ready at once).
fn unbudgeted<R>(f: impl FnOnce() -> R) -> R {
    let mut f = Some(f);
    let ready = std::future::poll_fn(|_| Poll::Ready(f.take().map(|f| f())));
    let mut run = std::pin::pin!(::tokio::task::coop::unconstrained(ready));
    match run.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Some(r)) => r,
        _ => unreachable!("a ready future, polled once"),
    }
}
