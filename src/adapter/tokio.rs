//! An async adapter: drives a [`Connection`] over any tokio `AsyncRead + AsyncWrite + Unpin`,
//! such as a `TcpStream` or a `tokio_rustls` stream.
//!
//! The connection's timers (keepalive, handshake, close and idle timeouts) run
//! on `tokio::time`: each read waits at most until the connection's next
//! deadline, so the runtime needs its time driver (`#[tokio::main]` and
//! `Builder::enable_all` have it).
//!
//! Every future is cancel-safe: the state lives in the core, never in a future.
//! A cancelled `recv` loses no byte and no event; a cancelled send leaves its
//! message queued in the core, written by the next call.
//!
//! ```no_run
//! use tokio::net::TcpStream;
//! use wsmachine::{Config, OwnedEvent, adapter::tokio::WebSocket, handshake::ClientRequest};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let request = ClientRequest::new("ws://127.0.0.1:9001/")?;
//! let stream = TcpStream::connect(("127.0.0.1", 9001)).await?;
//! let mut ws = WebSocket::connect(stream, &request, Config::default()).await?;
//! ws.send_text("hello").await?;
//! while let Ok(event) = ws.recv().await {
//!     if let OwnedEvent::Text(text) = event { println!("{text}"); break }
//! }
//! # Ok(()) }
//! ```
//!
//! Or from the URL alone, with [`connect`] (or a configured
//! [`Connector`]'s [`connect_tokio`](Connector::connect_tokio)), which opens
//! the TCP connection, and TLS for `wss://` (feature `rustls`), itself:
//!
//! ```no_run
//! use wsmachine::{Config, adapter::tokio::connect, handshake::ClientRequest};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let request = ClientRequest::new("ws://127.0.0.1:9001/")?.header("X-Client", "demo");
//! let mut ws = connect(&request, Config::default()).await?;
//! ws.send_text("hello").await?;
//! # Ok(()) }
//! ```

use std::io::ErrorKind;
use std::time::Duration;

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;

use ::tokio::time::{Instant, Sleep};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use ::tokio::io::ReadBuf;
use ::tokio::net::TcpStream;

use super::connect::dns_host;
use super::{Connector, Error, NoDecision, OsEntropy, Step, VECTORED_MIN, handshake_step};
use crate::handshake::{Accept, ClientRequest, Reject, Request};
use crate::{CloseCode, Config, Connection, Event, MessageKind, OwnedEvent};

/// A WebSocket over an async stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    conn: Connection,
    /// The origin of the connection's clock.
    origin: Instant,
    /// One timer for the connection's deadlines, kept across reads: it is
    /// moved only when a deadline comes earlier than where it is set, so a
    /// read costs no timer of its own (a later deadline wakes it early once,
    /// harmlessly). Made at the first deadline, inside the runtime (creating
    /// a `Sleep` needs one; `from_connection` does not).
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Client: sends the upgrade request for `request` over `stream` and waits
    /// for the server's response. Masking keys come from the OS.
    pub async fn connect(
        stream: S,
        request: &ClientRequest,
        config: Config,
    ) -> Result<Self, Error> {
        let conn = Connection::client(request, config, OsEntropy::new())?;
        let mut ws = Self::from_connection(stream, conn);
        ws.handshake(&mut None::<NoDecision>).await?;
        Ok(ws)
    }

    /// Server: reads the client's upgrade request and accepts it, whatever it is.
    pub async fn accept(stream: S, config: Config) -> Result<Self, Error> {
        Self::accept_with(stream, config, |_| Ok(Accept::new())).await
    }

    /// Server: reads the client's upgrade request and lets `decide` accept it
    /// (choosing a subprotocol, adding headers) or reject it (Origin checks,
    /// authentication). A malformed request is answered with 400 (or 426, 431)
    /// by the core.
    pub async fn accept_with(
        stream: S,
        config: Config,
        decide: impl FnOnce(&Request) -> Result<Accept, Reject>,
    ) -> Result<Self, Error> {
        let mut ws = Self::from_connection(stream, Connection::server(config));
        ws.handshake(&mut Some(decide)).await?;
        Ok(ws)
    }

    /// Runs the opening handshake to its end, for both roles.
    async fn handshake<D>(&mut self, decide: &mut Option<D>) -> Result<(), Error>
    where
        D: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        loop {
            let event = self.recv().await?;
            match handshake_step(&mut self.conn, event, decide) {
                Step::Continue => {}
                Step::Open => return Ok(()),
                Step::Rejected(status) => {
                    self.flush().await?;
                    return Err(Error::Rejected(status));
                }
                Step::Failed(e) => return Err(e),
            }
        }
    }

    /// Drives `conn` (already created, in any state) over `stream`.
    pub fn from_connection(stream: S, mut conn: Connection) -> Self {
        // The clock starts now: the connection's timers count from here.
        conn.handle_timeout(Duration::ZERO);
        Self {
            stream,
            conn,
            origin: Instant::now(),
            sleep: None,
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

    /// Before a send command: tells the connection the time, and waits for
    /// the socket to take whatever is still queued (after a cancelled send),
    /// so the transmit buffer never grows past one message: backpressure.
    async fn make_room(&mut self) -> Result<(), Error> {
        self.tick();
        if self.conn.pending_transmit() > 0 {
            self.flush().await?;
        }
        Ok(())
    }

    /// The next event, owned. After the [`OwnedEvent::Closed`] event every call
    /// returns [`Error::Closed`].
    pub async fn recv(&mut self) -> Result<OwnedEvent, Error> {
        self.recv_with(|event| event.into_owned()).await
    }

    /// The next event, lent to `f` without a copy: a message that arrived in one
    /// frame is read straight from the receive buffer.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Result<R, Error> {
        loop {
            if self.conn.has_event() {
                // Write what parsing queued (a pong, a close echo) before the event
                // goes out. A peer that has gone cannot take the echo of its close;
                // that is no error once the connection is closed.
                if let Err(e) = self.flush().await
                    && !self.conn.is_closed()
                {
                    return Err(e);
                }
                if let Some(event) = self.conn.poll_event() {
                    return Ok(f(event));
                }
            }
            self.flush().await?;
            if self.conn.is_closed() {
                return Err(Error::Closed);
            }
            self.fill().await?;
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_message(MessageKind::Text, text.as_bytes()).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_message(MessageKind::Binary, data).await
    }

    /// A large message goes out with vectored writes, without a copy into the
    /// connection, when the stream supports them ([`Connection::send_vectored`]).
    async fn send_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        self.make_room().await?;
        if data.len() < VECTORED_MIN || !self.stream.is_write_vectored() {
            // Text comes from a `&str`: no second UTF-8 validation.
            self.conn.send_message_valid(kind, data)?;
            return self.flush().await;
        }
        // Cancel-safe: a dropped `Transmit` queues what it did not write.
        let mut transmit = self.conn.send_vectored_valid(kind, data)?;
        while !transmit.is_empty() {
            match self.stream.write_vectored(&transmit.io_slices()).await {
                Ok(0) => return Err(Error::Io(ErrorKind::WriteZero.into())),
                Ok(n) => transmit.advance(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        drop(transmit);
        self.flush().await
    }

    /// Sends one fragment of a message (see [`Connection::send_fragment`]).
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.make_room().await?;
        self.conn.send_fragment(kind, data, fin)?;
        self.flush().await
    }

    /// Sends a ping.
    pub async fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room().await?;
        self.conn.send_ping(payload)?;
        self.flush().await
    }

    /// Sends a pong.
    pub async fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room().await?;
        self.conn.send_pong(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake; keep calling [`recv`](Self::recv) until
    /// [`OwnedEvent::Closed`] to complete it.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.tick();
        self.conn.close(code, reason)?;
        self.flush().await
    }

    /// Writes everything the connection has queued, and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), Error> {
        while let Some(bytes) = self.conn.poll_transmit() {
            match self.stream.write(bytes).await {
                Ok(0) => return Err(Error::Io(ErrorKind::WriteZero.into())),
                Ok(n) => self.conn.transmitted(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.stream.flush().await?)
    }

    /// Reads once into the connection's receive buffer, or fires the
    /// connection's timers when its deadline comes first (the read is then
    /// dropped, which loses nothing: cancel-safe).
    async fn fill(&mut self) -> Result<(), Error> {
        loop {
            // A deadline past what `Instant` can hold is no deadline.
            let deadline = self
                .conn
                .poll_timeout()
                .and_then(|at| self.origin.checked_add(at));
            if let Some(at) = deadline {
                match &mut self.sleep {
                    // Set no later than `at` and pending: it wakes in time
                    // (early if the deadline moved later, which is harmless).
                    Some(sleep) if sleep.deadline() <= at && !sleep.is_elapsed() => {}
                    Some(sleep) => sleep.as_mut().reset(at),
                    None => self.sleep = Some(Box::pin(::tokio::time::sleep_until(at))),
                }
            }
            let sleep = &mut self.sleep;
            let mut read = pin!(self.stream.read(self.conn.recv_buffer()));
            // The read, or the deadline first (dropping the read loses nothing).
            let result = std::future::poll_fn(|cx| match read.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(Some(result)),
                Poll::Pending
                    if deadline.is_some()
                        && sleep
                            .as_mut()
                            .is_some_and(|s| s.as_mut().poll(cx).is_ready()) =>
                {
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            })
            .await;
            if !matches!(result, Some(Ok(1..))) {
                // Nothing was read: the buffer lent to the read comes back.
                self.conn.commit_recv(0);
            }
            let now = self.now();
            // Time first: the bytes just read are timed at `now`.
            self.conn.handle_timeout(now);
            match result {
                // A deadline passed: what it queued is flushed by the caller.
                None => return Ok(()),
                Some(Ok(0)) => {
                    self.conn.handle_eof();
                    return Ok(());
                }
                Some(Ok(n)) => {
                    self.conn.commit_recv(n);
                    return Ok(());
                }
                Some(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Ends the transport the way RFC 6455 §7.1.1 asks, once the connection
    /// is closed (after [`OwnedEvent::Closed`]): a server shuts its side down
    /// at once; a client first waits for the server to close (reading to the
    /// end of stream), at most [`Config::close_timeout`](crate::Config::close_timeout).
    /// Returns at once, without shutting down, if the connection is not closed.
    pub async fn close_transport(&mut self) -> Result<(), Error> {
        if !self.conn.is_closed() {
            return Ok(());
        }
        self.flush().await?;
        while !self.conn.should_close_transport() {
            self.fill().await?;
        }
        Ok(self.stream.shutdown().await?)
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
/// [`connect`] opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream (for socket options such as `TCP_NODELAY`).
    pub fn get_ref(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Client: connects to the URL of `request` with the defaults of
/// [`Connector::new`] (a 10 s timeout, up to 5 redirects), TLS for
/// `wss://` included (feature `rustls`). See [`Connector::connect_tokio`].
pub async fn connect(
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<MaybeTlsStream>, Error> {
    Connector::new().connect_tokio(request, config).await
}

impl Connector {
    /// Client, on tokio: resolves the host of `request`, connects to the first
    /// of its addresses that answers, runs TLS for `wss://` and the opening
    /// handshake, and follows redirects, all within the
    /// [`connect_timeout`](Self::connect_timeout).
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
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn connect_tokio(
        &self,
        request: &ClientRequest,
        config: Config,
    ) -> Result<WebSocket<MaybeTlsStream>, Error> {
        let limit = self.timeout();
        let deadline = ::tokio::time::Instant::now() + limit;
        let hops = async {
            let mut current = request.clone();
            let mut redirects = 0;
            loop {
                match self.hop_tokio(&current, config.clone(), deadline).await {
                    Ok(ws) => return Ok(ws),
                    Err(e) => current = self.follow(&current, &mut redirects, e)?,
                }
            }
        };
        ::tokio::time::timeout(limit, hops)
            .await
            .unwrap_or(Err(Error::ConnectTimeout(limit)))
    }

    /// One connection and its opening handshake.
    async fn hop_tokio(
        &self,
        request: &ClientRequest,
        config: Config,
        deadline: ::tokio::time::Instant,
    ) -> Result<WebSocket<MaybeTlsStream>, Error> {
        // A request that cannot be sent fails before any I/O.
        let conn = Connection::client(request, config, OsEntropy::new())?;
        let tls = self.tls_for(request)?;
        let tcp = tcp_connect(request, deadline).await?;
        #[cfg(feature = "rustls")]
        let stream = match tls {
            Some((config, name)) => MaybeTlsStream::Tls(Box::new(
                tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await?,
            )),
            None => MaybeTlsStream::Plain(tcp),
        };
        #[cfg(not(feature = "rustls"))]
        let stream = match tls {
            None => MaybeTlsStream::Plain(tcp),
            Some(never) => match never {},
        };
        let mut ws = WebSocket::from_connection(stream, conn);
        ws.handshake(&mut None::<NoDecision>).await?;
        Ok(ws)
    }
}

/// A TCP connection to the first address of the request's host that answers.
async fn tcp_connect(
    request: &ClientRequest,
    deadline: ::tokio::time::Instant,
) -> std::io::Result<TcpStream> {
    let addrs: Vec<_> = ::tokio::net::lookup_host((dns_host(request), request.port()))
        .await?
        .collect();
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        // Each address gets its share of the time left, so that one that
        // drops packets (a broken IPv6 route) leaves time for the next.
        let left = deadline.saturating_duration_since(::tokio::time::Instant::now());
        let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        match ::tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some(ErrorKind::TimedOut.into()),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            ErrorKind::NotFound,
            format!("no address for {}", request.host()),
        )
    }))
}
