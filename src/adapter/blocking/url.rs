//! Connecting from a URL, blocking: the TCP connection, TLS for `wss://`
//! (feature `rustls`), the opening handshake and redirects, by the
//! [`Connector`]'s deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::{ReadTimeout, WebSocket};
use crate::Config;
use crate::Connection;
use crate::adapter::connect::dns_host;
use crate::adapter::{Connector, Error, FOREVER, NoDecision, OsEntropy};
use crate::handshake::ClientRequest;

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
        let deadline = start
            .checked_add(self.timeout())
            .unwrap_or_else(|| start + FOREVER);
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
            driver,
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
        Ok(WebSocket::from_driver(stream, driver, origin))
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
