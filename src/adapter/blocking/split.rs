//! A [`WebSocket`] split into a reader and a writer for two threads, over a
//! stream cloned once ([`TryClone`]): the reader reads from one handle, the
//! writes of both halves go through the other.
//!
//! The connection is shared under a lock that is never held across I/O: a
//! half takes it to step the driver, copy bytes in or out, or run a
//! command, and lets go of it to read or write. The write handle has a lock
//! of its own, held by whoever writes (locks are taken in that order: the
//! write handle's, then the connection's). The reader writes what its reads
//! cause (pongs, the echo of a close) itself when the write handle is free,
//! so they reach the wire while the writer is idle; when the writer is
//! writing, it writes them too before it lets go, and the reader reads on
//! and hands out events meanwhile. So a send to a peer slow to read never
//! holds up the reader, and the reader never waits for a send.
//!
//! The price is a copy each way: received bytes are read into the reader's
//! own buffer ([`Config::read_buffer_size`](crate::Config::read_buffer_size),
//! kept for the halves' life) and copied into the connection under the lock;
//! bytes to send are copied out of the connection (64 KiB at a time) to be
//! written without it. Messages from 8 KiB up are written straight from the
//! caller's buffer, with a vectored write, as by a whole [`WebSocket`].

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use super::{ReadTimeout, WebSocket, read_within, write_all};
use crate::adapter::{Data, Error, VECTORED_MIN};
use crate::{CloseCode, Connection, Driver, Event, Goal, MessageKind, OwnedEvent, Step};

/// A stream with a second handle to itself, for [`WebSocket::into_split`]:
/// reads on one and writes on the other do not wait for each other.
pub trait TryClone: Sized {
    /// Another handle to the same stream (for a socket, the same socket).
    fn try_clone(&self) -> io::Result<Self>;
}

impl TryClone for std::net::TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::net::TcpStream::try_clone(self)
    }
}

#[cfg(unix)]
impl TryClone for std::os::unix::net::UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }
}

impl<S: TryClone> TryClone for super::NoTimeout<S> {
    fn try_clone(&self) -> io::Result<Self> {
        self.0.try_clone().map(super::NoTimeout)
    }
}

/// How long the reader waits in one read when no deadline comes sooner
/// ([`ReadHalf::set_max_wait`]).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// At most this much is copied out of the connection for one write.
const CHUNK: usize = 64 << 10;

/// The receiving half of a split [`WebSocket`] ([`WebSocket::into_split`]).
/// It holds the stream's first handle, which it reads from.
///
/// ```no_run
/// use std::net::TcpStream;
/// use wsmachine::adapter::blocking::WebSocket;
/// use wsmachine::{Config, OwnedEvent};
/// # fn run(stream: TcpStream) -> Result<(), wsmachine::adapter::Error> {
/// let ws = WebSocket::accept(stream, Config::default())?;
/// let (mut reader, mut writer) = ws.into_split()?;
/// let sender = std::thread::spawn(move || {
///     for i in 0..3 {
///         writer.send_text(&format!("tick {i}"))?;
///     }
///     Ok::<_, wsmachine::adapter::Error>(writer)
/// });
/// while let Ok(event) = reader.recv() {
///     if let OwnedEvent::Text(text) = event {
///         println!("{text}");
///     }
/// }
/// let writer = sender.join().expect("the sender")?;
/// let mut ws = reader.reunite(writer).expect("halves of one WebSocket");
/// ws.close_transport()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
    reader: Reader<S>,
}

/// The reader's own: the first handle, and its reads.
#[derive(Debug)]
struct Reader<S> {
    stream: S,
    /// What a read returned, before it is copied into the connection.
    buf: Vec<u8>,
    /// The read timeout last set on the stream.
    read_timeout: Option<Option<Duration>>,
    max_wait: Duration,
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

/// What the halves share. Whoever holds `writer` and finds nothing more to
/// write lets go of it while it holds `driver` ([`Held`]), so a half that
/// queued bytes under `driver` and found `writer` taken can leave them to
/// the holder: the holder looks at the queue again after them.
#[derive(Debug)]
struct Shared<S> {
    driver: Mutex<Driver>,
    /// The origin of the driver's clock.
    origin: Instant,
    writer: Mutex<Writer<S>>,
}

#[derive(Debug)]
struct Writer<S> {
    /// The second handle.
    stream: S,
    /// Bytes taken from the connection and not written yet: after a failed
    /// write, what is left goes out first at the next.
    out: Vec<u8>,
}

/// A panic while a lock is held does not panic the other half in turn. It
/// is sound to go on: under the driver's lock the panic can only be in
/// `recv_with`'s closure or `with_connection`'s, between two calls of the
/// connection, which is as consistent as after any of them; under the
/// writer's, only in the stream's own write, after which the bytes in
/// `out` may be partly on the wire, as they may after any failed write.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The write handle's lock, and the driver's while no I/O runs. Fields drop
/// in order: the writer's lock goes first, while the driver's is held.
struct Held<'a, S> {
    writer: MutexGuard<'a, Writer<S>>,
    driver: Option<MutexGuard<'a, Driver>>,
    shared: &'a Shared<S>,
}

impl<'a, S: Write> Held<'a, S> {
    /// Both locks, in their order (blocking).
    fn new(shared: &'a Shared<S>) -> Self {
        let writer = lock(&shared.writer);
        Self {
            writer,
            driver: Some(lock(&shared.driver)),
            shared,
        }
    }

    /// The write handle's lock if it is free, with `driver` (already held).
    fn try_new(shared: &'a Shared<S>, driver: MutexGuard<'a, Driver>) -> Option<Self> {
        let writer = match shared.writer.try_lock() {
            Ok(writer) => writer,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(Self {
            writer,
            driver: Some(driver),
            shared,
        })
    }

    fn driver(&mut self) -> &mut Driver {
        let shared = self.shared;
        self.driver.get_or_insert_with(|| lock(&shared.driver))
    }

    /// Writes and flushes toward `goal` until the driver has nothing more
    /// to write; returns with the driver's lock held.
    fn drain(&mut self, goal: Goal) -> Result<(), Error> {
        loop {
            let flush = match self.writer.out.is_empty() {
                // What a failed write left goes before the rest.
                false => false,
                true => {
                    let driver = self.driver.get_or_insert_with(|| lock(&self.shared.driver));
                    match driver.step(goal) {
                        Step::Write => {
                            let bytes = driver.transmit();
                            let n = bytes.len().min(CHUNK);
                            self.writer.out.extend_from_slice(&bytes[..n]);
                            driver.wrote(n);
                            false
                        }
                        Step::Flush => true,
                        _ => return Ok(()),
                    }
                }
            };
            self.driver = None;
            let writer = &mut *self.writer;
            let result = match flush {
                true => writer.stream.flush(),
                false => writer.write_out(&[]),
            };
            match result {
                Ok(()) if flush => self.driver().flushed(),
                Ok(()) => {}
                Err(e) => return self.failed(goal, e),
            }
        }
    }

    /// A write or flush toward `goal` failed: the driver says whether that
    /// is an error (not while the closing event waits to go out).
    fn failed(&mut self, goal: Goal, e: io::Error) -> Result<(), Error> {
        let driver = self.driver();
        // Its verdict is for the goal of the last step, which the other half
        // may have taken meanwhile: ours again.
        driver.step(goal);
        match driver.write_failed() {
            true => Err(e.into()),
            false => Ok(()),
        }
    }
}

impl<S: Write> Writer<S> {
    /// Writes `out`, then `then` (the caller's payload); whatever is not
    /// written stays in `out`.
    fn write_out(&mut self, then: &[u8]) -> io::Result<()> {
        let (n, result) = write_all(&mut self.stream, [&self.out[..], then]);
        let taken = n.min(self.out.len());
        self.out.drain(..taken);
        if result.is_err() {
            self.out.extend_from_slice(&then[n - taken..]);
        } else if self.out.capacity() > CHUNK {
            // What a failed large write left is gone: so is its room.
            self.out.shrink_to(CHUNK);
        }
        result
    }
}

impl<S> Shared<S> {
    /// The time on the driver's clock.
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

impl<S: Read + Write + ReadTimeout + TryClone> WebSocket<S> {
    /// Splits it into a reader and a writer for two threads ([`ReadHalf`],
    /// [`WriteHalf`]): the stream is cloned once ([`TryClone`]), the reader
    /// reads from one handle and both halves write through the other. Fails
    /// only if the stream cannot be cloned (the WebSocket is then dropped).
    ///
    /// No I/O runs under the connection's lock, so a send never waits for a
    /// read, and a send to a peer slow to read never stops the reader from
    /// reading and handing out events. The reader writes the pongs and close
    /// echoes its reads cause itself when the writer is idle, and leaves
    /// them to the writer when it is writing. That costs a copy each way:
    /// reads go into the reader's own buffer of
    /// [`Config::read_buffer_size`](crate::Config::read_buffer_size) (held
    /// while the halves live), then into the connection; queued bytes are
    /// copied out of it to be written. Messages from 8 KiB up are written
    /// straight from the caller's buffer, as by [`send_binary`](Self::send_binary).
    ///
    /// A blocked read cannot be woken, so it waits at most
    /// [`ReadHalf::set_max_wait`] (1 s): a deadline that the writer brings
    /// earlier (a close starts the close timeout) fires at most that late.
    /// The stream closes with its last handle: drop both halves.
    ///
    /// ```no_run
    /// use std::net::TcpStream;
    /// use wsmachine::{Config, OwnedEvent, adapter::blocking::WebSocket, handshake::ClientRequest};
    ///
    /// let request = ClientRequest::new("ws://127.0.0.1:9001/")?;
    /// let stream = TcpStream::connect(("127.0.0.1", 9001))?;
    /// let (mut reader, mut writer) = WebSocket::connect(stream, &request, Config::default())?
    ///     .into_split()?;
    /// let sender = std::thread::spawn(move || writer.send_text("hello").map(|()| writer));
    /// if let OwnedEvent::Text(text) = reader.recv()? {
    ///     println!("{text}");
    /// }
    /// let writer = sender.join().unwrap()?;
    /// let ws = reader.reunite(writer)?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_split(self) -> Result<(ReadHalf<S>, WriteHalf<S>), Error> {
        let write = self.stream.try_clone()?;
        let size = self.driver.connection().config().read_buffer_size.max(1);
        let shared = Arc::new(Shared {
            driver: Mutex::new(self.driver),
            origin: self.origin,
            writer: Mutex::new(Writer {
                stream: write,
                out: Vec::new(),
            }),
        });
        let reader = ReadHalf {
            shared: shared.clone(),
            reader: Reader {
                stream: self.stream,
                buf: vec![0; size],
                read_timeout: self.read_timeout,
                max_wait: MAX_WAIT,
            },
        };
        Ok((reader, WriteHalf { shared }))
    }
}

impl<S: Read + Write + ReadTimeout> ReadHalf<S> {
    /// The next event, owned. After the [`OwnedEvent::Closed`] event every
    /// call returns [`Error::Closed`].
    pub fn recv(&mut self) -> Result<OwnedEvent, Error> {
        self.recv_with(|event| event.into_owned())
    }

    /// The next event, lent to `f` without a copy. `f` runs while the
    /// connection's lock is held: the writer waits for it, so keep it short
    /// (copy or parse, never block), and do not reach the connection through
    /// either half from inside it (the lock is not reentrant: a deadlock).
    pub fn recv_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Result<R, Error> {
        let Self { shared, reader } = self;
        loop {
            let mut driver = lock(&shared.driver);
            let deadline = match driver.step(Goal::Event) {
                Step::Event => match driver.event() {
                    Some(event) => return Ok(f(event)),
                    None => continue,
                },
                Step::Closed => return Err(Error::Closed),
                Step::Read { deadline } => deadline,
                Step::Write | Step::Flush => {
                    let Some(mut held) = Held::try_new(shared, driver) else {
                        // The writer is writing, and writes these too before
                        // it lets go: meanwhile, step as if they were written.
                        let mut driver = lock(&shared.driver);
                        let conn = driver.connection_mut();
                        if conn.has_event() {
                            match driver.event() {
                                Some(event) => return Ok(f(event)),
                                None => continue,
                            }
                        } else if conn.is_closed() {
                            return Err(Error::Closed);
                        }
                        let deadline = driver.deadline();
                        drop(driver);
                        reader.read(shared, deadline)?;
                        continue;
                    };
                    held.drain(Goal::Event)?;
                    continue;
                }
                Step::CloseTransport | Step::Done => continue,
            };
            drop(driver);
            reader.read(shared, deadline)?;
        }
    }

    /// Waits for the transport's end the way RFC 6455 §7.1.1 asks, once the
    /// connection is closed ([`WebSocket::close_transport`]). The stream
    /// closes with its last handle: drop both halves (or the WebSocket they
    /// reunite into) after it.
    pub fn close_transport(&mut self) -> Result<(), Error> {
        loop {
            let mut driver = lock(&self.shared.driver);
            match driver.step(Goal::CloseTransport) {
                Step::Read { deadline } => {
                    drop(driver);
                    self.reader.read(&self.shared, deadline)?;
                }
                Step::Write | Step::Flush => {
                    // Waits for the writer, if it is writing.
                    drop(driver);
                    Held::new(&self.shared).drain(Goal::CloseTransport)?;
                }
                Step::Done | Step::CloseTransport | Step::Event | Step::Closed => return Ok(()),
            }
        }
    }

    /// How long one read waits at most when no deadline comes sooner (1 s
    /// by default; at least 1 ms). A blocked read cannot be woken: a
    /// deadline that a command of the writer brings earlier (a
    /// [`close`](WriteHalf::close) starts the close timeout) fires at most
    /// this late.
    pub fn set_max_wait(&mut self, max_wait: Duration) {
        self.reader.max_wait = max_wait.max(Duration::from_millis(1));
    }

    /// Puts the halves back together, if they are of one WebSocket. The
    /// writer's handle to the stream is dropped (with, after a failed write,
    /// what it left unwritten).
    pub fn reunite(self, writer: WriteHalf<S>) -> Result<WebSocket<S>, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.shared, &writer.shared) {
            return Err(ReuniteError(self, writer));
        }
        drop(writer);
        let Ok(shared) = Arc::try_unwrap(self.shared) else {
            unreachable!("both halves are here, and only they hold the shared state");
        };
        let driver = shared
            .driver
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(WebSocket {
            stream: self.reader.stream,
            driver,
            origin: shared.origin,
            read_timeout: self.reader.read_timeout,
        })
    }

    /// Runs `f` on the connection (its state, its negotiated parameters).
    pub fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(lock(&self.shared.driver).connection())
    }
}

impl<S: Read + ReadTimeout> Reader<S> {
    /// Reads once, into the reader's buffer without the connection's lock,
    /// then copies what came into the connection; or fires the connection's
    /// timers when `deadline` comes first. The wait is at most the
    /// [`max_wait`](ReadHalf::set_max_wait), since a command of the writer may
    /// bring the deadline earlier.
    fn read<W>(&mut self, shared: &Shared<W>, deadline: Option<Duration>) -> Result<(), Error> {
        let now = shared.now();
        let left = deadline.map_or(self.max_wait, |at| {
            at.saturating_sub(now).min(self.max_wait)
        });
        let result = match left.is_zero() {
            true => Ok(None),
            false => read_within(
                &mut self.stream,
                &mut self.read_timeout,
                Some(left),
                &mut self.buf,
            ),
        };
        let now = shared.now();
        let mut driver = lock(&shared.driver);
        match result {
            Ok(Some(0)) => driver.read(now, 0),
            Ok(Some(n)) => {
                let mut bytes = &self.buf[..n];
                while !bytes.is_empty() {
                    let space = driver.recv_buffer();
                    let k = space.len().min(bytes.len());
                    if k == 0 {
                        // The connection lends at least a byte: never here.
                        driver.no_read(now);
                        break;
                    }
                    space[..k].copy_from_slice(&bytes[..k]);
                    driver.read(now, k);
                    bytes = &bytes[k..];
                }
            }
            // The deadline (or the max wait) came: what it fired goes out
            // at the next step.
            Ok(None) => driver.no_read(now),
            Err(e) => {
                driver.no_read(now);
                return Err(e.into());
            }
        }
        Ok(())
    }
}

impl<S: Write> WriteHalf<S> {
    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(Data::Text(text))
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(Data::Binary(data))
    }

    /// Sends a [`PreparedMessage`](crate::PreparedMessage), copied into the
    /// connection (compressed where its agreement allows it, once for every
    /// connection that sends it).
    pub fn send_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), Error> {
        self.send(Data::Prepared(message))
    }

    /// A large message goes out with a vectored write straight from `data`
    /// (the frame header and what was queued before it are copied out of
    /// the connection), without the connection's lock.
    fn send(&mut self, data: Data<'_>) -> Result<(), Error> {
        // A prepared message may go out compressed: its payload is not the
        // bytes written below, so it is copied.
        if data.len() < VECTORED_MIN || matches!(data, Data::Prepared(_)) {
            return self.command(true, |conn| data.send(conn));
        }
        let mut held = Held::new(&self.shared);
        let now = self.shared.now();
        held.driver().tick(now);
        held.drain(Goal::Flush)?;
        let (kind, bytes) = data.parts();
        let Held { writer, driver, .. } = &mut held;
        let guard = driver.get_or_insert_with(|| lock(&self.shared.driver));
        let mut transmit = guard.send_vectored_valid(kind, bytes)?;
        let [queued, head, payload] = transmit.slices();
        if payload.is_empty() {
            // Masked or compressed: new bytes, queued in the connection.
            drop(transmit);
            return held.drain(Goal::Flush);
        }
        debug_assert!(std::ptr::eq(payload, bytes), "the payload is the caller's");
        writer.out.extend_from_slice(queued);
        writer.out.extend_from_slice(head);
        // The writer owns those bytes now, and writes them before any other.
        transmit.advance(transmit.remaining());
        drop(transmit);
        *driver = None;
        if let Err(e) = writer.write_out(bytes) {
            return held.failed(Goal::Flush, e);
        }
        held.drain(Goal::Flush)
    }

    /// Sends one fragment of a message (see [`Connection::send_fragment`]).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.command(true, |conn| conn.send_fragment(kind, data, fin))
    }

    /// Sends a ping.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.command(true, |conn| conn.send_ping(payload))
    }

    /// Sends a pong.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.command(true, |conn| conn.send_pong(payload))
    }

    /// Starts the closing handshake; the reader receives until
    /// [`OwnedEvent::Closed`] to complete it. Its close timeout starts now,
    /// and fires in the reader at most its [max wait](ReadHalf::set_max_wait) late.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.command(false, |conn| conn.close(code, reason))
    }

    /// Writes everything the connection has queued, and flushes the stream.
    pub fn flush(&mut self) -> Result<(), Error> {
        Held::new(&self.shared).drain(Goal::Flush)
    }

    /// Gives the connection the time (what a deadline that passed queues
    /// goes out first); with `make_room`, waits until what is queued is
    /// written (backpressure: the transmit buffer holds at most one message
    /// more); runs `command`, and writes what it queued. The write handle
    /// is held throughout, the connection's lock only between writes.
    fn command(
        &mut self,
        make_room: bool,
        command: impl FnOnce(&mut Connection) -> Result<(), crate::Error>,
    ) -> Result<(), Error> {
        let mut held = Held::new(&self.shared);
        let now = self.shared.now();
        held.driver().tick(now);
        if make_room {
            held.drain(Goal::Flush)?;
        }
        command(held.driver().connection_mut())?;
        held.drain(Goal::Flush)
    }

    /// Runs `f` on the connection (its state, its negotiated parameters, or
    /// commands batched before a [`flush`](Self::flush)).
    pub fn with_connection<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        f(lock(&self.shared.driver).connection_mut())
    }
}
