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
//! [`Connector`]'s [`connect_blocking`](Connector::connect_blocking)), which
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

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::connect::dns_host;
use super::{Connector, Error, NoDecision, OsEntropy, Step, VECTORED_MIN, handshake_step};
use crate::handshake::{Accept, ClientRequest, Reject, Request};
use crate::{CloseCode, Config, Connection, Event, MessageKind, OwnedEvent};

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
    conn: Connection,
    /// The origin of the connection's clock.
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
            match handshake_step(&mut self.conn, event, decide) {
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
    /// connection's clock starts now: give one whose clock has not started.
    pub fn from_connection(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(Duration::ZERO);
        Self {
            stream,
            conn,
            origin: Instant::now(),
            read_timeout: None,
        }
    }

    /// The time on the connection's clock.
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Tells the connection the time before a command, which is timed by it
    /// (the close timeout runs from the close, the idle time from a message).
    /// What a deadline that passed meanwhile queues goes out with the command.
    fn tick(&mut self) {
        let now = self.now();
        self.conn.handle_timeout(now);
    }

    /// Before a send command: tells the connection the time, and blocks until
    /// the socket takes whatever is still queued (after a failed write), so the
    /// transmit buffer never grows past one message: backpressure.
    fn make_room(&mut self) -> Result<(), Error> {
        self.tick();
        if self.conn.pending_transmit() > 0 {
            self.flush()?;
        }
        Ok(())
    }

    /// Waits for the transport's end the way RFC 6455 §7.1.1 asks, once the
    /// connection is closed (after [`OwnedEvent::Closed`]): a server returns
    /// at once, to drop (close) the stream first; a client first waits for the
    /// server to close (reading to the end of stream), at most
    /// [`Config::close_timeout`](crate::Config::close_timeout). Returns at once
    /// if the connection is not closed.
    pub fn close_transport(&mut self) -> Result<(), Error> {
        if !self.conn.is_closed() {
            return Ok(());
        }
        self.flush()?;
        while !self.conn.should_close_transport() {
            self.fill()?;
        }
        Ok(())
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
            if self.conn.has_event() {
                // Write what parsing queued (a pong, a close echo) before the event
                // goes out. A peer that has gone cannot take the echo of its close;
                // that is no error once the connection is closed.
                if let Err(e) = self.flush()
                    && !self.conn.is_closed()
                {
                    return Err(e);
                }
                if let Some(event) = self.conn.poll_event() {
                    return Ok(f(event));
                }
            }
            self.flush()?;
            if self.conn.is_closed() {
                return Err(Error::Closed);
            }
            self.fill()?;
        }
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_message(MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_message(MessageKind::Binary, data)
    }

    /// A large message goes out with vectored writes, without a copy into the
    /// connection ([`Connection::send_vectored`]).
    fn send_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        self.make_room()?;
        if data.len() < VECTORED_MIN {
            // Text comes from a `&str`: no second UTF-8 validation.
            self.conn.send_message_valid(kind, data)?;
            return self.flush();
        }
        // On an error, the dropped `Transmit` queues what it did not write.
        let mut transmit = self.conn.send_vectored_valid(kind, data)?;
        while !transmit.is_empty() {
            match self.stream.write_vectored(&transmit.io_slices()) {
                Ok(0) => return Err(Error::Io(ErrorKind::WriteZero.into())),
                Ok(n) => transmit.advance(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        drop(transmit);
        self.flush()
    }

    /// Sends one fragment of a message (see [`Connection::send_fragment`]).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.make_room()?;
        self.conn.send_fragment(kind, data, fin)?;
        self.flush()
    }

    /// Sends a ping.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room()?;
        self.conn.send_ping(payload)?;
        self.flush()
    }

    /// Sends a pong.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room()?;
        self.conn.send_pong(payload)?;
        self.flush()
    }

    /// Starts the closing handshake; keep calling [`recv`](Self::recv) until
    /// [`OwnedEvent::Closed`] to complete it.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.tick();
        self.conn.close(code, reason)?;
        self.flush()
    }

    /// Writes everything the connection has queued, and flushes the stream.
    pub fn flush(&mut self) -> Result<(), Error> {
        while let Some(bytes) = self.conn.poll_transmit() {
            match self.stream.write(bytes) {
                Ok(0) => return Err(Error::Io(ErrorKind::WriteZero.into())),
                Ok(n) => self.conn.transmitted(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.stream.flush()?)
    }

    /// Reads once into the connection's receive buffer, or fires the
    /// connection's timers when its deadline comes first.
    fn fill(&mut self) -> Result<(), Error> {
        loop {
            let left = self
                .conn
                .poll_timeout()
                .map(|at| at.saturating_sub(self.now()));
            if left == Some(Duration::ZERO) {
                self.conn.handle_timeout(self.now());
                return Ok(());
            }
            if self.read_timeout != Some(left) {
                self.stream.set_read_timeout(left)?;
                self.read_timeout = Some(left);
            }
            let result = self.stream.read(self.conn.recv_buffer());
            if !matches!(result, Ok(1..)) {
                // Nothing was read: the buffer lent to the read comes back.
                self.conn.commit_recv(0);
            }
            // Time first: the bytes just read are timed now.
            self.conn.handle_timeout(self.now());
            match result {
                Ok(0) => {
                    self.conn.handle_eof();
                    return Ok(());
                }
                Ok(n) => {
                    self.conn.commit_recv(n);
                    return Ok(());
                }
                // The deadline came: what it fired is flushed by the caller.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The connection, for its state and for commands batched before a [`flush`](Self::flush).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
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
        (self.stream, self.conn)
    }
}

/// A TCP stream, or a TLS stream over one: the stream of a WebSocket that
/// [`connect`] opened. Its read timeout is the TCP stream's.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream (for socket options such as `TCP_NODELAY`).
    pub fn get_ref(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.get_ref(),
        }
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.flush(),
        }
    }
}

impl ReadTimeout for MaybeTlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.get_ref().set_read_timeout(timeout)
    }
}

/// Client: connects to the URL of `request` with the defaults of
/// [`Connector::new`] (a 10 s timeout, up to 5 redirects), TLS for
/// `wss://` included (feature `rustls`). See [`Connector::connect_blocking`].
pub fn connect(
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<MaybeTlsStream>, Error> {
    Connector::new().connect_blocking(request, config)
}

impl Connector {
    /// Client, blocking: resolves the host of `request`, connects to the first
    /// of its addresses that answers, runs TLS for `wss://` and the opening
    /// handshake, and follows redirects. The connects, TLS and the handshakes
    /// end by the [`connect_timeout`](Self::connect_timeout) (each read and
    /// write of the handshake has the time left as its socket timeout); name
    /// resolution is the system resolver's, with its own timeouts.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectTimeout`], [`Error::TooManyRedirects`],
    /// [`Error::InsecureRedirect`], [`Error::InvalidRedirect`] and
    /// [`Error::TlsUnavailable`] as the [`Connector`] says; [`Error::Io`]
    /// when no address could be connected to or TLS failed;
    /// [`Error::WebSocket`] when the handshake failed (a non-101 answer
    /// that is not followed is a
    /// [`HandshakeError::Rejected`](crate::handshake::HandshakeError::Rejected)).
    #[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
    pub fn connect_blocking(
        &self,
        request: &ClientRequest,
        config: Config,
    ) -> Result<WebSocket<MaybeTlsStream>, Error> {
        let start = Instant::now();
        // A timeout too long for `Instant` is none (30 years will do).
        let deadline = start
            .checked_add(self.timeout())
            .unwrap_or_else(|| start + Duration::from_secs(30 * 365 * 86_400));
        let mut current = request.clone();
        let mut redirects = 0;
        loop {
            match self.hop_blocking(&current, config.clone(), deadline) {
                Ok(ws) => return Ok(ws),
                Err(e) => current = self.follow(&current, &mut redirects, e)?,
            }
        }
    }

    /// One connection and its opening handshake, by `deadline`.
    fn hop_blocking(
        &self,
        request: &ClientRequest,
        config: Config,
        deadline: Instant,
    ) -> Result<WebSocket<MaybeTlsStream>, Error> {
        let timed_out = || Error::ConnectTimeout(self.timeout());
        // A request that cannot be sent fails before any I/O.
        let conn = Connection::client(request, config, OsEntropy::new())?;
        let tls = self.tls_for(request)?;
        let tcp = tcp_connect(request, deadline).ok_or_else(timed_out)??;
        // TLS shakes hands in the first write, through `Deadline` too.
        #[cfg(feature = "rustls")]
        let stream = match tls {
            Some((config, name)) => {
                let tls =
                    rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
                MaybeTlsStream::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)))
            }
            None => MaybeTlsStream::Plain(tcp),
        };
        #[cfg(not(feature = "rustls"))]
        let stream = match tls {
            None => MaybeTlsStream::Plain(tcp),
            Some(never) => match never {},
        };
        let stream = Deadline {
            stream,
            deadline,
            requested: None,
        };
        let mut ws = WebSocket::from_connection(stream, conn);
        let outcome = ws.handshake(&mut None::<NoDecision>);
        let WebSocket {
            stream: Deadline { stream, .. },
            conn,
            origin,
            ..
        } = ws;
        match outcome {
            Ok(()) => {}
            Err(Error::Io(e)) if e.get_ref().is_some_and(|e| e.is::<PastDeadline>()) => {
                return Err(timed_out());
            }
            Err(e) => return Err(e),
        }
        // The handshake's deadline must not outlive it on the socket.
        stream.get_ref().set_write_timeout(None)?;
        stream.get_ref().set_read_timeout(None)?;
        Ok(WebSocket {
            stream,
            conn,
            origin,
            read_timeout: None,
        })
    }
}

/// A TCP connection to the first address of the request's host that answers,
/// or `None` once `deadline` has passed.
fn tcp_connect(request: &ClientRequest, deadline: Instant) -> Option<std::io::Result<TcpStream>> {
    let addrs: Vec<_> = match (dns_host(request), request.port()).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => return Some(Err(e)),
    };
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())?;
        // Each address gets its share of the time left, so that one that
        // drops packets (a broken IPv6 route) leaves time for the next.
        let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        match TcpStream::connect_timeout(addr, share.max(Duration::from_millis(1))) {
            Ok(tcp) => return Some(Ok(tcp)),
            Err(e) => last = Some(e),
        }
    }
    if Instant::now() >= deadline {
        return None;
    }
    Some(Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            ErrorKind::NotFound,
            format!("no address for {}", request.host()),
        )
    })))
}

/// The stream of a [`Connector`]'s opening handshake (TLS's too): each read
/// and write has the time left until `deadline` as its socket timeout, at
/// most, and fails with [`PastDeadline`] once it has passed.
struct Deadline {
    stream: MaybeTlsStream,
    deadline: Instant,
    /// The read timeout the adapter asked for.
    requested: Option<Duration>,
}

/// A read or write after the deadline of a connect. (Not a timeout kind of
/// `io::Error`, which the adapter takes for a timer of the connection's.)
#[derive(Debug)]
struct PastDeadline;

impl std::fmt::Display for PastDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the connect timeout passed")
    }
}

impl std::error::Error for PastDeadline {}

impl Deadline {
    /// The time left, which must not be zero.
    fn left(&self) -> std::io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(std::io::Error::other(PastDeadline)),
        }
    }

    /// Sets both socket timeouts to the time left, before a write: a TLS
    /// stream may read in a write (its handshake).
    fn before_write(&mut self) -> std::io::Result<()> {
        let left = self.left()?;
        let tcp = self.stream.get_ref();
        tcp.set_write_timeout(Some(left))?;
        tcp.set_read_timeout(Some(left))
    }
}

/// A write that timed out ran into the deadline: its timeouts were the time left.
fn write_outcome<T>(result: std::io::Result<T>) -> std::io::Result<T> {
    result.map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => std::io::Error::other(PastDeadline),
        _ => e,
    })
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        // A timeout of the adapter's own (the handshake timeout) times out as
        // usual; the deadline's is caught by the next read.
        let timeout = self.requested.map_or(left, |t| t.min(left));
        self.stream.get_ref().set_read_timeout(Some(timeout))?;
        self.stream.read(buf)
    }
}

impl Write for Deadline {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.before_write()?;
        write_outcome(self.stream.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.before_write()?;
        write_outcome(self.stream.flush())
    }
}

impl ReadTimeout for Deadline {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.requested = timeout;
        Ok(())
    }
}
