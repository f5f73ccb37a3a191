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

mod url;

pub use url::{MaybeTlsStream, connect};

use std::io::ErrorKind;
use std::time::Duration;

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;

use ::tokio::time::{Instant, Sleep};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Data, Error, NoDecision, OsEntropy, Step, VECTORED_MIN, handshake_step};
use crate::handshake::{Accept, ClientRequest, Reject, Request};
use crate::{
    CloseCode, Config, Connection, Driver, Event, Goal, MessageKind, OwnedEvent, Step as DriverStep,
};

/// A WebSocket over an async stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    driver: Driver,
    /// The origin of the driver's clock.
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
            match handshake_step(self.driver.connection_mut(), event, decide) {
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
            stream,
            driver: Driver::new(conn),
            origin: Instant::now(),
            sleep: None,
        }
    }

    /// The time on the driver's clock.
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Before a send command: tells the connection the time (what a deadline
    /// that passed meanwhile queues goes out with the command), and waits for
    /// the socket to take whatever is still queued (after a cancelled send),
    /// so the transmit buffer never grows past one message: backpressure.
    async fn make_room(&mut self) -> Result<(), Error> {
        self.driver.tick(self.now());
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
            match self.driver.step(Goal::Event) {
                DriverStep::Event => {
                    if let Some(event) = self.driver.event() {
                        return Ok(f(event));
                    }
                }
                DriverStep::Closed => return Err(Error::Closed),
                step => self.io(step).await?,
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

    /// A large message goes out with vectored writes, without a copy into the
    /// connection, when the stream supports them ([`Connection::send_vectored`]).
    async fn send(&mut self, data: Data<'_>) -> Result<(), Error> {
        self.make_room().await?;
        if data.len() < VECTORED_MIN || !self.stream.is_write_vectored() {
            data.send(self.driver.connection_mut())?;
            return self.flush().await;
        }
        // Cancel-safe: a dropped `Transmit` queues what it did not write.
        let (kind, bytes) = data.parts();
        let mut transmit = self.driver.send_vectored_valid(kind, bytes)?;
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
        self.driver
            .connection_mut()
            .send_fragment(kind, data, fin)?;
        self.flush().await
    }

    /// Sends a ping.
    pub async fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room().await?;
        self.driver.connection_mut().send_ping(payload)?;
        self.flush().await
    }

    /// Sends a pong.
    pub async fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.make_room().await?;
        self.driver.connection_mut().send_pong(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake; keep calling [`recv`](Self::recv) until
    /// [`OwnedEvent::Closed`] to complete it.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.driver.tick(self.now());
        self.driver.connection_mut().close(code, reason)?;
        self.flush().await
    }

    /// Writes everything the connection has queued, and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), Error> {
        loop {
            match self.driver.step(Goal::Flush) {
                DriverStep::Done => return Ok(()),
                step => self.io(step).await?,
            }
        }
    }

    /// Ends the transport the way RFC 6455 §7.1.1 asks, once the connection
    /// is closed (after [`OwnedEvent::Closed`]): a server shuts its side down
    /// at once; a client first waits for the server to close (reading to the
    /// end of stream), at most [`Config::close_timeout`](crate::Config::close_timeout).
    /// Returns at once, without shutting down, if the connection is not closed.
    pub async fn close_transport(&mut self) -> Result<(), Error> {
        loop {
            match self.driver.step(Goal::CloseTransport) {
                DriverStep::Done => return Ok(()),
                DriverStep::CloseTransport => return Ok(self.stream.shutdown().await?),
                step => self.io(step).await?,
            }
        }
    }

    /// Carries out a step of I/O: a write, a flush, or a read.
    async fn io(&mut self, step: DriverStep) -> Result<(), Error> {
        let outcome = match step {
            DriverStep::Write => match self.stream.write(self.driver.transmit()).await {
                Ok(0) => Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.driver.wrote(n);
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
                Err(e) => Err(e),
            },
            DriverStep::Flush => self.stream.flush().await.map(|()| self.driver.flushed()),
            DriverStep::Read { deadline } => return self.read(deadline).await,
            _ => Ok(()),
        };
        match outcome {
            Err(e) if self.driver.write_failed() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Reads once into the connection's receive buffer, or fires the
    /// connection's timers when `deadline` comes first (the read is then
    /// dropped, which loses nothing: cancel-safe).
    async fn read(&mut self, deadline: Option<Duration>) -> Result<(), Error> {
        // A deadline past what `Instant` can hold is no deadline.
        let deadline = deadline.and_then(|at| self.origin.checked_add(at));
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
        let mut read = pin!(self.stream.read(self.driver.recv_buffer()));
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
        let now = self.now();
        match result {
            Some(Ok(n)) => self.driver.read(now, n),
            // A deadline passed: what it queued goes out at the next step.
            None => self.driver.no_read(now),
            Some(Err(e)) => {
                self.driver.no_read(now);
                if e.kind() != ErrorKind::Interrupted {
                    return Err(e.into());
                }
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
