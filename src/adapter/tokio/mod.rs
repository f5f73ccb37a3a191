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
//! [`WebSocket::into_split`] gives a [`ReadHalf`] and a [`WriteHalf`] for two
//! tasks: one receives while the other sends, and a peer slow to read holds
//! up only the sends. With the feature `futures`, the WebSocket and its
//! halves are futures' `Stream` and `Sink` of [`Message`](super::Message)s.
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
//! [`Connector`](super::Connector)'s [`connect_tokio`](super::Connector::connect_tokio)), which opens
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

mod io;
mod split;
#[cfg(feature = "futures")]
mod stream;
mod url;

pub use split::{ReadHalf, ReuniteError, WriteHalf, broadcast};
pub use url::{MaybeTlsStream, connect};

use std::future::poll_fn;
use std::io::ErrorKind;

use ::tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use io::Io;

use super::{Data, Error, NoDecision, OsEntropy, Step, VECTORED_MIN, handshake_step};
use crate::handshake::{Accept, ClientRequest, Reject, Request};
use crate::{CloseCode, Config, Connection, Driver, Event, MessageKind, OwnedEvent};

/// A WebSocket over an async stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    io: Io<S>,
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
            match handshake_step(self.io.driver.connection_mut(), event, decide) {
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

    /// Drives `conn` (already created, in any state) over `stream`. The
    /// adapter's clock starts now; a connection whose clock had started
    /// keeps its deadlines ([`Driver::new`]).
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        Self {
            io: Io::new(stream, Driver::new(conn)),
        }
    }

    /// Before a send command: tells the connection the time (what a deadline
    /// that passed meanwhile queues goes out with the command), and waits for
    /// the socket to take whatever is still queued (after a cancelled send),
    /// so the transmit buffer never grows past one message: backpressure.
    async fn make_room(&mut self) -> Result<(), Error> {
        self.io.driver.tick(self.io.now());
        self.flush().await
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
            poll_fn(|cx| self.io.poll_event(cx.waker(), cx.waker())).await?;
            if let Some(event) = self.io.driver.event() {
                return Ok(f(event));
            }
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(Data::Text(text)).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(Data::Binary(data)).await
    }

    /// Sends a [`PreparedMessage`](crate::PreparedMessage): framed, and
    /// compressed where this connection's agreement allows it, once for
    /// every connection that sends it. From 8 KiB on, a server writes the
    /// prepared bytes where they lie (vectored), without copying them.
    pub async fn send_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), Error> {
        self.send(Data::Prepared(message)).await
    }

    /// A large message goes out with vectored writes, without a copy into the
    /// connection, when the stream supports them ([`Connection::send_vectored`]).
    async fn send(&mut self, data: Data<'_>) -> Result<(), Error> {
        self.make_room().await?;
        let Io { stream, driver, .. } = &mut self.io;
        if data.len() < VECTORED_MIN || !stream.is_write_vectored() {
            data.send(driver.connection_mut())?;
            return self.flush().await;
        }
        write_vectored(stream, data.send_vectored(driver)?).await?;
        self.flush().await
    }

    /// Sends on the text or binary message that the last
    /// [`recv_with`](Self::recv_with) lent, straight from the receive buffer
    /// ([`Connection::send_received`]): an echo without copying the message
    /// out. From 8 KiB on it goes with vectored writes (a server's frame
    /// header, then the received bytes where they are), without copying it
    /// in either; a smaller one is copied into the transmit buffer, since one
    /// `send` of one buffer costs the kernel less than a `writev` of two. Call it
    /// right after that `recv_with`; otherwise it fails with
    /// [`UsageError::NoReceivedMessage`](crate::UsageError::NoReceivedMessage).
    ///
    /// ```no_run
    /// # use wsmachine::{Event, adapter::tokio::WebSocket};
    /// # async fn echo(ws: &mut WebSocket<tokio::net::TcpStream>) -> Result<(), wsmachine::adapter::Error> {
    /// loop {
    ///     let message = ws.recv_with(|e| matches!(e, Event::Text(_) | Event::Binary(_))).await?;
    ///     if message {
    ///         ws.send_received().await?;
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn send_received(&mut self) -> Result<(), Error> {
        // What is queued goes first; no time is given (a timer could
        // release the received bytes), only writes.
        self.flush().await?;
        let Io { stream, driver, .. } = &mut self.io;
        // A small message is copied: one write of one buffer costs the
        // kernel less than a vectored write of two.
        let small = driver
            .connection()
            .received()
            .is_some_and(|(_, data)| data.len() < VECTORED_MIN);
        if small || !stream.is_write_vectored() {
            driver
                .connection_mut()
                .send_received(crate::Compress::Auto)?;
            return self.flush().await;
        }
        write_vectored(stream, driver.send_received_vectored()?).await?;
        self.flush().await
    }

    /// Sends the text or binary message that the last
    /// [`recv_with`](Self::recv_with) lent on through another WebSocket, `to`,
    /// from where this one received it: a relay or a fan-out in one task
    /// without copying the message out. From 8 KiB on, `to` writes its own
    /// frame header and then these bytes where they lie (vectored writes),
    /// so it copies nothing either; a smaller message is copied into `to`
    /// once, which costs less than a second slice per write. Where `to` must
    /// make new bytes (a client masks, permessage-deflate compresses) it
    /// makes them from these. Text is not validated again.
    ///
    /// Call it right after that `recv_with` (any number of times, for any
    /// number of WebSockets); otherwise it fails with
    /// [`UsageError::NoReceivedMessage`](crate::UsageError::NoReceivedMessage).
    ///
    /// ```no_run
    /// # use wsmachine::{Event, adapter::tokio::WebSocket};
    /// # async fn relay(
    /// #     from: &mut WebSocket<tokio::net::TcpStream>,
    /// #     to: &mut [WebSocket<tokio::net::TcpStream>],
    /// # ) -> Result<(), wsmachine::adapter::Error> {
    /// loop {
    ///     let message = from.recv_with(|e| matches!(e, Event::Text(_) | Event::Binary(_))).await?;
    ///     if message {
    ///         for ws in to.iter_mut() {
    ///             from.forward_received(ws).await?;
    ///         }
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn forward_received<T>(&mut self, to: &mut WebSocket<T>) -> Result<(), Error>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let (kind, data) = self
            .io
            .driver
            .connection()
            .received()
            .ok_or(crate::Error::from(crate::UsageError::NoReceivedMessage))?;
        to.send(Data::Received(kind, data)).await
    }

    /// Sends one fragment of a message (see [`Connection::send_fragment`]).
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.make_room().await?;
        self.io
            .driver
            .connection_mut()
            .send_fragment(kind, data, fin)?;
        self.flush().await
    }

    /// Sends a ping.
    pub async fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room().await?;
        self.io.driver.connection_mut().send_ping(payload)?;
        self.flush().await
    }

    /// Sends a pong.
    pub async fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room().await?;
        self.io.driver.connection_mut().send_pong(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake; keep calling [`recv`](Self::recv) until
    /// [`OwnedEvent::Closed`] to complete it.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.io.driver.tick(self.io.now());
        self.io.driver.connection_mut().close(code, reason)?;
        self.flush().await
    }

    /// Writes everything the connection has queued, and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.io.poll_flush(cx.waker())).await
    }

    /// Ends the transport the way RFC 6455 §7.1.1 asks, once the connection
    /// is closed (after [`OwnedEvent::Closed`]): a server shuts its side down
    /// at once; a client first waits for the server to close (reading to the
    /// end of stream), at most [`Config::close_timeout`](crate::Config::close_timeout).
    /// Returns at once, without shutting down, if the connection is not closed.
    pub async fn close_transport(&mut self) -> Result<(), Error> {
        if poll_fn(|cx| self.io.poll_close_transport(cx.waker(), cx.waker())).await? {
            self.io.stream.shutdown().await?;
        }
        Ok(())
    }

    /// Splits it into a reader and a writer, for two tasks: one receives
    /// while the other sends ([`ReadHalf`], [`WriteHalf`]).
    pub fn into_split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        split::split(self.io)
    }

    /// The connection, for its state and for commands batched before a [`flush`](Self::flush).
    pub fn connection(&self) -> &Connection {
        self.io.driver.connection()
    }

    /// The connection, mutably.
    pub fn connection_mut(&mut self) -> &mut Connection {
        self.io.driver.connection_mut()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.io.stream
    }

    /// The stream, mutably (for socket options such as timeouts).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io.stream
    }

    /// The stream and the connection.
    pub fn into_parts(self) -> (S, Connection) {
        (self.io.stream, self.io.driver.into_connection())
    }
}

/// Writes all of `transmit` with vectored writes. Cancel-safe: a dropped
/// `Transmit` queues what it did not write.
async fn write_vectored<S: AsyncWrite + Unpin>(
    stream: &mut S,
    mut transmit: crate::Transmit<'_>,
) -> Result<(), Error> {
    while !transmit.is_empty() {
        match stream.write_vectored(&transmit.io_slices()).await {
            Ok(0) => return Err(Error::Io(ErrorKind::WriteZero.into())),
            Ok(n) => transmit.advance(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
