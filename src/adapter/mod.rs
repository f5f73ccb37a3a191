//! Thin drivers that run a [`Connection`](crate::Connection) over a real
//! stream. They own what the core does not: the socket, and the OS random
//! number generator. Everything else (the handshake, pongs, close echoes,
//! validation, limits) is the core's.
//!
//! - [`blocking`] (feature `blocking`): any `std::io::Read + Write`.
//! - [`tokio`] (feature `tokio`): any `AsyncRead + AsyncWrite + Unpin`.
//!
//! Both write what the core queued before they hand an event to the
//! application, so a pong or the echo of a close is never left behind.
//!
//! ## Connecting from a URL
//!
//! Each adapter's `connect` takes a stream the caller opened. To go from a
//! URL instead, [`Connector`] resolves the host, opens the TCP connection,
//! runs TLS for `wss://` (feature `rustls`) and the opening handshake within a
//! timeout, and follows redirects: `adapter::tokio::connect` and
//! `adapter::blocking::connect` with the defaults, or a configured
//! [`Connector`]'s `connect_tokio` and `connect_blocking`. Custom header
//! fields, subprotocols and the origin come from the
//! [`ClientRequest`](crate::handshake::ClientRequest).
//!
//! ```no_run
//! # #[cfg(feature = "blocking")] {
//! use std::time::Duration;
//! use wsmachine::adapter::Connector;
//! use wsmachine::handshake::ClientRequest;
//! use wsmachine::{Config, OwnedEvent};
//!
//! let request = ClientRequest::new("ws://example.com/feed")?.header("Cookie", "session=1");
//! let mut ws = Connector::new()
//!     .connect_timeout(Duration::from_secs(3))
//!     .connect_blocking(&request, Config::default())?;
//! ws.send_text("subscribe")?;
//! if let OwnedEvent::Text(text) = ws.recv()? {
//!     println!("{text}");
//! }
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod connect;
#[cfg(feature = "futures")]
mod message;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

use std::time::Duration;

pub use connect::Connector;
#[cfg(feature = "futures")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures")))]
pub use message::{Message, Utf8Bytes};

use crate::Entropy;

/// Messages from this size up are written with vectored writes straight from
/// the caller's buffer ([`Connection::send_vectored`](crate::Connection::send_vectored)).
/// Below it a copy into the transmit buffer and one write of one buffer cost
/// less than a `writev` of two slices. Over loopback, under uWebSockets'
/// load generator, the copy was 8.8% of a 16 KiB echo server's CPU (writing
/// vectored, it served about 1.08 times the echoes), while at 4 KiB the two
/// ways tied and at 20 B the copy won.
const VECTORED_MIN: usize = 8 << 10;

/// A timeout too long for `Instant` is no timeout: 30 years will do.
const FOREVER: Duration = Duration::from_secs(30 * 365 * 86_400);

/// A message to send, as the adapters' `send_text` and `send_binary` take it.
#[derive(Clone, Copy)]
enum Data<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    /// A received message: its text was validated on the way in.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Received(crate::MessageKind, &'a [u8]),
    /// A prepared message: plain and perhaps compressed once, for many
    /// connections.
    Prepared(&'a crate::PreparedMessage),
}

impl<'a> Data<'a> {
    fn len(self) -> usize {
        self.parts().1.len()
    }

    fn parts(self) -> (crate::MessageKind, &'a [u8]) {
        match self {
            Data::Text(text) => (crate::MessageKind::Text, text.as_bytes()),
            Data::Binary(data) => (crate::MessageKind::Binary, data),
            Data::Received(kind, data) => (kind, data),
            Data::Prepared(message) => (message.kind(), message.data()),
        }
    }

    /// Queues it on the driver's connection for a vectored write: the
    /// [`Transmit`](crate::Transmit) hands out the frame header and the
    /// payload where it lies, or the transmit buffer where the connection
    /// made new bytes (masked, compressed).
    fn send_vectored<'d>(
        self,
        driver: &'d mut crate::Driver,
    ) -> Result<crate::Transmit<'d>, crate::Error>
    where
        'a: 'd,
    {
        match self {
            Data::Prepared(message) => driver.send_prepared_vectored(message),
            data => {
                let (kind, bytes) = data.parts();
                driver.send_vectored_valid(kind, bytes)
            }
        }
    }

    /// Queues it on `conn` in one frame (text from a `&str` is not validated again).
    fn send(self, conn: &mut crate::Connection) -> Result<(), crate::Error> {
        match self {
            Data::Text(text) => conn.send_text(text),
            Data::Binary(data) => conn.send_binary(data),
            Data::Received(kind, data) => conn.send_valid(kind, data),
            Data::Prepared(message) => conn.send_prepared(message),
        }
    }
}

/// Random bytes from the operating system (`getrandom`), fetched 256 at a
/// time: a cryptographically secure source for masking keys and
/// `Sec-WebSocket-Key`, as RFC 6455 §10.3 asks.
#[derive(Debug, Clone)]
pub struct OsEntropy {
    buf: [u8; 256],
    pos: usize,
}

impl OsEntropy {
    /// A source that fetches its first bytes when first used.
    pub fn new() -> Self {
        Self {
            buf: [0; 256],
            pos: 256,
        }
    }
}

impl Default for OsEntropy {
    fn default() -> Self {
        Self::new()
    }
}

impl Entropy for OsEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.pos == self.buf.len() {
                // The OS generator does not fail on supported platforms once it is
                // seeded; there is no safe way to go on without it.
                getrandom::fill(&mut self.buf).expect("the OS random number generator failed");
                self.pos = 0;
            }
            *byte = self.buf[self.pos];
            self.pos += 1;
        }
    }
}

/// What an adapter reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream failed. The connection's state is intact. (The adapters
    /// run the connection's timers on read timeouts themselves: a deadline
    /// that passes is not an error but, when it ends the connection, an
    /// [`OwnedEvent::Closed`](crate::OwnedEvent::Closed) carrying an
    /// [`Error::Timeout`](crate::Error::Timeout).)
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket protocol or the opening handshake failed, or the call was
    /// not allowed in the connection's state.
    #[error(transparent)]
    WebSocket(#[from] crate::Error),
    /// The connection is closed: its [`Event::Closed`](crate::Event::Closed) was delivered.
    #[error("the connection is closed")]
    Closed,
    /// The server's application refused the upgrade with this HTTP status.
    #[error("the upgrade request was rejected with HTTP {0}")]
    Rejected(u16),
    /// A [`Connector`] did not connect within its
    /// [`connect_timeout`](Connector::connect_timeout) (this duration).
    #[error("could not connect within {0:?}")]
    ConnectTimeout(Duration),
    /// A [`Connector`] was redirected once more than its
    /// [`max_redirects`](Connector::max_redirects), here to `location`.
    #[error("more than {max} redirects (the next one to {location})")]
    TooManyRedirects {
        /// The maximum.
        max: u8,
        /// The `Location` of the redirect not followed.
        location: String,
    },
    /// A [`Connector`] refused a redirect from `wss` to `ws`: TLS is never
    /// dropped on the server's say-so.
    #[error("refused a redirect from wss to the insecure {location}")]
    InsecureRedirect {
        /// The `Location` of the redirect.
        location: String,
    },
    /// A [`Connector`] was redirected to a URL it cannot use (not a `ws`,
    /// `wss`, `http` or `https` URL, or not valid).
    #[error("cannot follow the redirect to {location}: {source}")]
    InvalidRedirect {
        /// The `Location` of the redirect.
        location: String,
        /// What is wrong with it.
        source: crate::handshake::UriError,
    },
    /// A [`Connector`] was given (or redirected to) a `wss://` URL without
    /// the `rustls` feature: enable it, or open the TLS stream yourself and
    /// give it to the adapter's `WebSocket::connect`.
    #[error(
        "wss:// needs TLS: enable the `rustls` feature, or give a TLS stream to WebSocket::connect"
    )]
    TlsUnavailable,
}

/// What an adapter's handshake loop does next.
enum Step {
    /// Read on.
    Continue,
    /// The connection is open.
    Open,
    /// The application rejected the request: write the response, then fail.
    Rejected(u16),
    /// The handshake failed.
    Failed(Error),
}

/// Reacts to one event of the opening handshake, for both roles: a server's
/// request goes to `decide` (once), which accepts or rejects it.
fn handshake_step<D>(
    conn: &mut crate::Connection,
    event: crate::OwnedEvent,
    decide: &mut Option<D>,
) -> Step
where
    D: FnOnce(
        &crate::handshake::Request,
    ) -> Result<crate::handshake::Accept, crate::handshake::Reject>,
{
    use crate::OwnedEvent;
    let outcome = match event {
        OwnedEvent::Request(request) => match decide.take().map(|d| d(&request)) {
            Some(Ok(accept)) => conn.accept(accept),
            Some(Err(reject)) => {
                return match conn.reject(&reject) {
                    Ok(()) => Step::Rejected(reject.status()),
                    Err(e) => Step::Failed(e.into()),
                };
            }
            None => Ok(()),
        },
        OwnedEvent::Open(_) => return Step::Open,
        OwnedEvent::Closed(info) => {
            return Step::Failed(
                info.error()
                    .cloned()
                    .map_or(Error::Closed, Error::WebSocket),
            );
        }
        _ => Ok(()),
    };
    match outcome {
        Ok(()) => Step::Continue,
        Err(e) => Step::Failed(e.into()),
    }
}

/// A `decide` for clients, which never see a request.
type NoDecision =
    fn(&crate::handshake::Request) -> Result<crate::handshake::Accept, crate::handshake::Reject>;
