//! Connecting from a URL, on tokio: the TCP connection, TLS for `wss://`
//! (feature `rustls`), the opening handshake and redirects, within the
//! [`Connector`]'s timeout.

use std::io::ErrorKind;
use std::pin::Pin;
use std::task::Poll;

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;

use super::WebSocket;
use crate::Config;
use crate::Connection;
use crate::adapter::connect::dns_host;
use crate::adapter::{Connector, Error, FOREVER, NoDecision, OsEntropy};
use crate::handshake::ClientRequest;

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
        let start = ::tokio::time::Instant::now();
        // A timeout too long for `Instant` is none (30 years will do).
        let deadline = start.checked_add(limit).unwrap_or_else(|| start + FOREVER);
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
