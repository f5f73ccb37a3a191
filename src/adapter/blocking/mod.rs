//! A blocking adapter: drives a [`Connection`] over a `std::io::Read + Write`
//! stream whose reads can time out ([`ReadTimeout`]: a `TcpStream`, a
//! `UnixStream`, or any stream wrapped in [`NoTimeout`]).
//!
//! The connection's timers (keepalive, handshake, close and idle timeouts)
//! run on the stream's read timeout, set before every read to the time left
//! until the connection's next deadline: the adapter owns that setting.
//!
//! ```no_run
//! use std::net::TcpStream;
//! use wsmachine::{Config, OwnedEvent, adapter::blocking::WebSocket, handshake::ClientRequest};
//!
//! let request = ClientRequest::new("ws://127.0.0.1:9001/")?;
//! let stream = TcpStream::connect(("127.0.0.1", 9001))?;
//! let mut ws = WebSocket::connect(stream, &request, Config::default())?;
//! ws.send_text("hello")?;
//! while let Ok(event) = ws.recv() {
//!     if let OwnedEvent::Text(text) = event { println!("{text}"); break }
//! }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! Or from the URL alone, with [`connect`] (or a configured
//! [`Connector`](super::Connector)'s [`connect_blocking`](super::Connector::connect_blocking)), which
//! opens the TCP connection, and TLS for `wss://` (feature `rustls`), itself:
//!
//! ```no_run
//! use wsmachine::{Config, adapter::blocking::connect, handshake::ClientRequest};
//!
//! let request = ClientRequest::new("ws://127.0.0.1:9001/")?.header("X-Client", "demo");
//! let mut ws = connect(&request, Config::default())?;
//! ws.send_text("hello")?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! [`WebSocket::into_split`] gives a [`ReadHalf`] and a [`WriteHalf`] for two
//! threads, over a stream that can be cloned ([`TryClone`]): one receives
//! while the other sends, and a peer slow to read holds up only the sends.

mod split;
mod url;

pub use split::{ReadHalf, ReuniteError, TryClone, WriteHalf};
pub use url::{MaybeTlsStream, connect};

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::time::{Duration, Instant};

use super::{Data, Error, NoDecision, OsEntropy, Step, VECTORED_MIN, handshake_step};
use crate::handshake::{Accept, ClientRequest, Reject, Request};
use crate::{
    CloseCode, Config, Connection, Driver, Event, Goal, MessageKind, OwnedEvent,
    Step as DriverStep, Transmit,
};

/// A stream whose reads can be given a timeout, so that a blocked read
/// returns when the connection's next deadline comes.
pub trait ReadTimeout {
    /// Sets the read timeout (`None`: block until data arrives). Never
    /// called with a zero duration.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()>;
}

impl ReadTimeout for std::net::TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
}

#[cfg(unix)]
impl ReadTimeout for std::os::unix::net::UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
}

impl<T: ReadTimeout + ?Sized> ReadTimeout for &mut T {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
}

impl<T: ReadTimeout + ?Sized> ReadTimeout for Box<T> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
}

/// A stream without read timeouts (a TLS stream over a socket whose timeout
/// is set elsewhere, a pipe): timers then fire only when a read returns.
///
/// ```
/// use wsmachine::adapter::blocking::NoTimeout;
/// let stream = NoTimeout(std::io::Cursor::new(Vec::<u8>::new()));
/// ```
#[derive(Debug)]
pub struct NoTimeout<S>(pub S);

impl<S> ReadTimeout for NoTimeout<S> {
    fn set_read_timeout(&mut self, _: Option<Duration>) -> std::io::Result<()> {
        Ok(())
    }
}

impl<S: Read> Read for NoTimeout<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for NoTimeout<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A WebSocket over a blocking stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    driver: Driver,
    /// The origin of the driver's clock.
    origin: Instant,
    /// The read timeout last set on the stream.
    read_timeout: Option<Option<Duration>>,
}

impl<S: Read + Write + ReadTimeout> WebSocket<S> {
    /// Client: sends the upgrade request for `request` over `stream` and waits
    /// for the server's response. Masking keys come from the OS.
    pub fn connect(stream: S, request: &ClientRequest, config: Config) -> Result<Self, Error> {
        let conn = Connection::client(request, config, OsEntropy::new())?;
        let mut ws = Self::from_connection(stream, conn);
        ws.handshake(&mut None::<NoDecision>)?;
        Ok(ws)
    }

    /// Server: reads the client's upgrade request and accepts it, whatever it is.
    pub fn accept(stream: S, config: Config) -> Result<Self, Error> {
        Self::accept_with(stream, config, |_| Ok(Accept::new()))
    }

    /// Server: reads the client's upgrade request and lets `decide` accept it
    /// (choosing a subprotocol, adding headers) or reject it (Origin checks,
    /// authentication). A malformed request is answered with 400 (or 426, 431)
    /// by the core.
    pub fn accept_with(
        stream: S,
        config: Config,
        decide: impl FnOnce(&Request) -> Result<Accept, Reject>,
    ) -> Result<Self, Error> {
        let mut ws = Self::from_connection(stream, Connection::server(config));
        ws.handshake(&mut Some(decide))?;
        Ok(ws)
    }

    /// Runs the opening handshake to its end, for both roles.
    fn handshake<D>(&mut self, decide: &mut Option<D>) -> Result<(), Error>
    where
        D: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        loop {
            let event = self.recv()?;
            match handshake_step(self.driver.connection_mut(), event, decide) {
                Step::Continue => {}
                Step::Open => return Ok(()),
                Step::Rejected(status) => {
                    self.flush()?;
                    return Err(Error::Rejected(status));
                }
                Step::Failed(e) => return Err(e),
            }
        }
    }

    /// Drives `conn` (already created, in any state) over `stream`. The
    /// adapter's clock starts now; a connection whose clock had started
    /// keeps its deadlines ([`Driver::new`]).
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        Self::from_driver(stream, Driver::new(conn), Instant::now())
    }

    fn from_driver(stream: S, driver: Driver, origin: Instant) -> Self {
        Self {
            stream,
            driver,
            origin,
            read_timeout: None,
        }
    }

    /// The time on the driver's clock.
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Before a send command: tells the connection the time (what a deadline
    /// that passed meanwhile queues goes out with the command), and blocks
    /// until the socket takes whatever is still queued (after a failed
    /// write), so the transmit buffer never grows past one message: backpressure.
    fn make_room(&mut self) -> Result<(), Error> {
        self.driver.tick(self.now());
        self.flush()
    }

    /// Waits for the transport's end the way RFC 6455 §7.1.1 asks, once the
    /// connection is closed (after [`OwnedEvent::Closed`]): a server returns
    /// at once, to drop (close) the stream first; a client first waits for the
    /// server to close (reading to the end of stream), at most
    /// [`Config::close_timeout`](crate::Config::close_timeout). Returns at once
    /// if the connection is not closed.
    pub fn close_transport(&mut self) -> Result<(), Error> {
        loop {
            match self.driver.step(Goal::CloseTransport) {
                DriverStep::Done | DriverStep::CloseTransport => return Ok(()),
                step => self.io(step)?,
            }
        }
    }

    /// The next event, owned. After the [`OwnedEvent::Closed`] event every call
    /// returns [`Error::Closed`].
    pub fn recv(&mut self) -> Result<OwnedEvent, Error> {
        self.recv_with(|event| event.into_owned())
    }

    /// The next event, lent to `f` without a copy: a message that arrived in one
    /// frame is read straight from the receive buffer.
    pub fn recv_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Result<R, Error> {
        loop {
            match self.driver.step(Goal::Event) {
                DriverStep::Event => {
                    if let Some(event) = self.driver.event() {
                        return Ok(f(event));
                    }
                }
                DriverStep::Closed => return Err(Error::Closed),
                step => self.io(step)?,
            }
        }
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(Data::Text(text))
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(Data::Binary(data))
    }

    /// Sends a [`PreparedMessage`](crate::PreparedMessage): framed, and
    /// compressed where this connection's agreement allows it, once for
    /// every connection that sends it. From 8 KiB on, a server writes the
    /// prepared bytes where they lie (vectored), without copying them.
    pub fn send_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), Error> {
        self.send(Data::Prepared(message))
    }

    /// A large message goes out with vectored writes, without a copy into the
    /// connection ([`Connection::send_vectored`]).
    fn send(&mut self, data: Data<'_>) -> Result<(), Error> {
        self.make_room()?;
        if data.len() < VECTORED_MIN {
            data.send(self.driver.connection_mut())?;
            return self.flush();
        }
        write_transmit(&mut self.stream, data.send_vectored(&mut self.driver)?)?;
        self.flush()
    }

    /// Sends on the text or binary message that the last
    /// [`recv_with`](Self::recv_with) lent, straight from the receive buffer
    /// ([`Connection::send_received`]): an echo without copying the message
    /// out. From 8 KiB on it goes with vectored writes (a server's frame
    /// header, then the received bytes where they are), without copying it
    /// in either; a smaller one is copied into the transmit buffer, since one
    /// write of one buffer costs the kernel less than a vectored write of
    /// two. Call it right after that `recv_with`; otherwise it fails with
    /// [`UsageError::NoReceivedMessage`](crate::UsageError::NoReceivedMessage).
    ///
    /// ```no_run
    /// # use wsmachine::{Event, adapter::blocking::WebSocket};
    /// # fn echo(ws: &mut WebSocket<std::net::TcpStream>) -> Result<(), wsmachine::adapter::Error> {
    /// loop {
    ///     if ws.recv_with(|e| matches!(e, Event::Text(_) | Event::Binary(_)))? {
    ///         ws.send_received()?;
    ///     }
    /// }
    /// # }
    /// ```
    pub fn send_received(&mut self) -> Result<(), Error> {
        // What is queued goes first; no time is given (a timer could
        // release the received bytes), only writes.
        self.flush()?;
        let small = self
            .driver
            .connection()
            .received()
            .is_some_and(|(_, data)| data.len() < VECTORED_MIN);
        if small {
            self.driver
                .connection_mut()
                .send_received(crate::Compress::Auto)?;
        } else {
            write_transmit(&mut self.stream, self.driver.send_received_vectored()?)?;
        }
        self.flush()
    }

    /// Sends the text or binary message that the last
    /// [`recv_with`](Self::recv_with) lent on through another WebSocket, `to`,
    /// from where this one received it: a relay or a fan-out in one thread
    /// without copying the message out. From 8 KiB on, `to` writes its own
    /// frame header and then these bytes where they lie (vectored writes),
    /// so it copies nothing either; a smaller message is copied into `to`
    /// once. Where `to` must make new bytes (a client masks,
    /// permessage-deflate compresses) it makes them from these. Text is not
    /// validated again.
    ///
    /// Call it right after that `recv_with` (any number of times, for any
    /// number of WebSockets); otherwise it fails with
    /// [`UsageError::NoReceivedMessage`](crate::UsageError::NoReceivedMessage).
    ///
    /// ```no_run
    /// # use std::net::TcpStream;
    /// # use wsmachine::{Event, adapter::blocking::WebSocket};
    /// # fn relay(from: &mut WebSocket<TcpStream>, to: &mut [WebSocket<TcpStream>]) -> Result<(), wsmachine::adapter::Error> {
    /// loop {
    ///     if from.recv_with(|e| matches!(e, Event::Text(_) | Event::Binary(_)))? {
    ///         for ws in to.iter_mut() {
    ///             from.forward_received(ws)?;
    ///         }
    ///     }
    /// }
    /// # }
    /// ```
    pub fn forward_received<T>(&mut self, to: &mut WebSocket<T>) -> Result<(), Error>
    where
        T: Read + Write + ReadTimeout,
    {
        let (kind, data) = self
            .driver
            .connection()
            .received()
            .ok_or(crate::Error::from(crate::UsageError::NoReceivedMessage))?;
        to.send(Data::Received(kind, data))
    }

    /// Sends one fragment of a message (see [`Connection::send_fragment`]).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.make_room()?;
        self.driver
            .connection_mut()
            .send_fragment(kind, data, fin)?;
        self.flush()
    }

    /// Sends a ping.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room()?;
        self.driver.connection_mut().send_ping(payload)?;
        self.flush()
    }

    /// Sends a pong.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room()?;
        self.driver.connection_mut().send_pong(payload)?;
        self.flush()
    }

    /// Starts the closing handshake; keep calling [`recv`](Self::recv) until
    /// [`OwnedEvent::Closed`] to complete it.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.driver.tick(self.now());
        self.driver.connection_mut().close(code, reason)?;
        self.flush()
    }

    /// Writes everything the connection has queued, and flushes the stream.
    pub fn flush(&mut self) -> Result<(), Error> {
        loop {
            match self.driver.step(Goal::Flush) {
                DriverStep::Done => return Ok(()),
                step => self.io(step)?,
            }
        }
    }

    /// Carries out a step of I/O: a write, a flush, or a read.
    fn io(&mut self, step: DriverStep) -> Result<(), Error> {
        let outcome = match step {
            DriverStep::Write => match self.stream.write(self.driver.transmit()) {
                Ok(0) => Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.driver.wrote(n);
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
                Err(e) => Err(e),
            },
            DriverStep::Flush => self.stream.flush().map(|()| self.driver.flushed()),
            DriverStep::Read { deadline } => return self.read(deadline),
            _ => Ok(()),
        };
        match outcome {
            Err(e) if self.driver.write_failed() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Reads once into the connection's receive buffer, or fires the
    /// connection's timers when `deadline` comes first.
    fn read(&mut self, deadline: Option<Duration>) -> Result<(), Error> {
        let left = deadline.map(|at| at.saturating_sub(self.now()));
        if left == Some(Duration::ZERO) {
            self.driver.no_read(self.now());
            return Ok(());
        }
        let buf = self.driver.recv_buffer();
        let result = read_within(&mut self.stream, &mut self.read_timeout, left, buf);
        let now = self.now();
        match result {
            Ok(Some(n)) => self.driver.read(now, n),
            // The deadline came: what it fired goes out at the next step.
            Ok(None) => self.driver.no_read(now),
            Err(e) => {
                self.driver.no_read(now);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// The connection, for its state and for commands batched before a [`flush`](Self::flush).
    pub fn connection(&self) -> &Connection {
        self.driver.connection()
    }

    /// The connection, mutably.
    pub fn connection_mut(&mut self) -> &mut Connection {
        self.driver.connection_mut()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably (for socket options such as timeouts).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream and the connection.
    pub fn into_parts(self) -> (S, Connection) {
        (self.stream, self.driver.into_connection())
    }
}

/// Reads once into `buf`, waiting at most `left` (`None`: as long as it
/// takes; never zero): `Ok(None)` when the time ran out first (or the read
/// was interrupted). `set` is the read timeout last set on the stream,
/// which is set again only when it changes.
fn read_within<S: Read + ReadTimeout>(
    stream: &mut S,
    set: &mut Option<Option<Duration>>,
    left: Option<Duration>,
    buf: &mut [u8],
) -> io::Result<Option<usize>> {
    if *set != Some(left) {
        stream.set_read_timeout(left)?;
        *set = Some(left);
    }
    match stream.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) => match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        },
    }
}

/// Writes a vectored send whole. On an error, the dropped `Transmit`
/// queues in the connection what was not written.
fn write_transmit<W: Write + ?Sized>(stream: &mut W, mut transmit: Transmit<'_>) -> io::Result<()> {
    let (written, result) = write_all(stream, transmit.slices());
    transmit.advance(written);
    result
}

/// Writes `bufs` whole, in order, with vectored writes (retried when
/// interrupted): how many bytes were written, and how it ended.
fn write_all<W: Write + ?Sized, const N: usize>(
    stream: &mut W,
    bufs: [&[u8]; N],
) -> (usize, io::Result<()>) {
    let mut slices = bufs.map(IoSlice::new);
    let mut slices = &mut slices[..];
    // Drops the empty slices in front: a write of nothing would return 0.
    IoSlice::advance_slices(&mut slices, 0);
    let mut written = 0;
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return (written, Err(ErrorKind::WriteZero.into())),
            Ok(n) => {
                written += n;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}
