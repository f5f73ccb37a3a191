//! The opening handshake (RFC 6455 §4): HTTP/1.1 Upgrade for both roles.
//!
//! This layer is usable on its own: [`ClientRequest`] builds the request,
//! [`parse_response`] validates the server's answer, [`parse_request`] reads a
//! client's request and [`accept_response`] / [`reject_response`] write the
//! server's answer. [`Connection`](crate::Connection) drives them for you.
//!
//! With the `http` feature the same validation works on the types of the
//! `http` crate, for a handshake that another HTTP stack (hyper, axum, ...)
//! reads and writes: `Request::from_http`, `accept_http` (or the lower-level
//! `accept_response_http`) and `Reject::into_http` on the server, `ClientRequest::to_http` and
//! `validate_http_response` on the client.
//!
//! ## WebSocket over HTTP/2 (RFC 8441), feature `http`
//!
//! Over HTTP/2 a WebSocket is one stream. The client opens it with a
//! `CONNECT` request whose `:protocol` pseudo-header is `websocket` (on a
//! connection where the server sent `SETTINGS_ENABLE_CONNECT_PROTOCOL`),
//! `:scheme`, `:path` and `:authority`, and `sec-websocket-version: 13`; the
//! server accepts with a 2xx. There is no `Sec-WebSocket-Key` and no
//! `Sec-WebSocket-Accept`, no `Upgrade` and no `Connection` field; the
//! subprotocol and extension fields (permessage-deflate included) work as in
//! RFC 6455. Then the stream's DATA frames carry WebSocket frames, which a
//! [`Connection`](crate::Connection) made with
//! [`open_server_negotiated`](crate::Connection::open_server_negotiated) or
//! [`open_client_negotiated`](crate::Connection::open_client_negotiated)
//! reads and writes like any byte stream.
//!
//! The `http` crate has no place for `:protocol`: HTTP/2 libraries carry it
//! beside the request (the `h2` crate as the `h2::ext::Protocol` extension),
//! so it is passed to [`Request::from_extended_connect`] on its own, and set
//! by the caller on the request [`ClientRequest::to_extended_connect`] builds.
//! `examples/h2.rs` runs a server and a client over the `h2` crate.
//!
//! ```
//! # #[cfg(feature = "http")] {
//! use wsmachine::handshake::{
//!     Accept, ClientRequest, Request, WEBSOCKET_PROTOCOL, accept_extended_connect,
//!     validate_http_response,
//! };
//! use wsmachine::{Config, Connection, SeededEntropy};
//!
//! // The client's request (the caller adds `:protocol`, see above).
//! let client = ClientRequest::new("wss://example.com/chat").unwrap().protocol("chat");
//! let (request, expected) = client.to_extended_connect(&Config::default()).unwrap();
//! assert_eq!(request.method(), "CONNECT");
//! assert_eq!(request.uri(), "https://example.com/chat");
//! assert_eq!(request.headers()["sec-websocket-version"], "13");
//! assert!(request.headers().get("sec-websocket-key").is_none());
//!
//! // The server validates it, and answers 200 with what it negotiated.
//! let offer = Request::from_extended_connect(&request, Some(WEBSOCKET_PROTOCOL)).unwrap();
//! let (response, negotiated) =
//!     accept_extended_connect(&offer, &Accept::new().protocol("chat"), &Config::default()).unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
//! let server = Connection::open_server_negotiated(Config::default(), negotiated);
//!
//! // The client checks the answer; both sides then speak frames on the stream.
//! let negotiated = validate_http_response(&response, &expected).unwrap();
//! let client = Connection::open_client_negotiated(Config::default(), SeededEntropy::new(1), &expected, negotiated);
//! assert_eq!(client.negotiated().protocol.as_deref(), Some("chat"));
//! # #[cfg(feature = "deflate")]
//! assert!(client.negotiated().extensions.as_deref().unwrap().starts_with("permessage-deflate"));
//! assert!(client.is_open() && server.is_open());
//! # }
//! ```

mod client;
pub(crate) mod extensions;
#[cfg(feature = "http")]
mod h2;
#[cfg(feature = "http")]
mod http;
mod server;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use sha1::Digest as _;

#[cfg(feature = "http")]
pub use self::h2::{WEBSOCKET_PROTOCOL, accept_extended_connect};
#[cfg(feature = "http")]
pub use self::http::{accept_http, accept_response_http, validate_http_response};
pub use client::{ClientRequest, ExpectedResponse, UriError, parse_response};
pub use server::{Accept, Reject, Request, accept_response, parse_request, reject_response};

/// The GUID that RFC 6455 §1.3 concatenates with the key.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2): the
/// base64 of the SHA-1 of the key (as sent, not decoded) and the GUID.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(wsmachine::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1::Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// HTTP header fields as received, in order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, Vec<u8>)>,
}

impl Headers {
    pub(crate) fn from_httparse(headers: &[httparse::Header<'_>]) -> Self {
        Self {
            fields: headers
                .iter()
                .map(|h| (String::from(h.name), h.value.to_vec()))
                .collect(),
        }
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// The first value of `name` as text, if present and valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// The comma-separated elements of every value of `name` (RFC 9110 §5.6.1),
    /// trimmed, empty elements skipped.
    pub fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
    }

    /// Whether `name` has `token` among its comma-separated elements (ASCII case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Refuses a field that appears more than once where the RFC allows one.
    pub(crate) fn at_most_once(&self, name: &'static str) -> Result<(), HandshakeError> {
        match self.get_all(name).nth(1) {
            Some(_) => Err(HandshakeError::DuplicateHeader(name)),
            None => Ok(()),
        }
    }

    /// Every field, in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| (n.as_str(), &v[..]))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// What the opening handshake settled (RFC 6455 §4.1: the _Subprotocol In Use_
/// and the _Extensions In Use_).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// The subprotocol the server selected, if any.
    pub protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` value in force, if any.
    pub extensions: Option<String>,
}

/// A non-101 answer to a client's upgrade request (RFC 6455 §4.1 step 1): the
/// caller handles it per HTTP (authentication, a redirect, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields.
    pub headers: Headers,
    /// The body bytes received with the headers (possibly partial).
    pub body: Vec<u8>,
}

impl Response {
    /// The redirect target of a 3xx response.
    pub fn location(&self) -> Option<&str> {
        if (300..400).contains(&self.status) {
            self.headers.get_str("location")
        } else {
            None
        }
    }
}

/// The opening handshake failed. Server-side variants carry the HTTP status
/// sent to the client ([`HandshakeError::http_status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// RFC 6455 §4.1 step 1: the server answered with a status other than
    /// 101 (other than 2xx to an RFC 8441 extended CONNECT): it did not
    /// accept the WebSocket.
    #[error("the server did not accept the WebSocket: status {}", .0.status)]
    Rejected(Box<Response>),
    /// The HTTP message is not valid HTTP/1.1 (400).
    #[error("malformed HTTP message: {0}")]
    Malformed(&'static str),
    /// RFC 6455 §4.2.1 item 1: the method is not GET (405).
    #[error("the method is not GET (RFC 6455 §4.2.1)")]
    MethodNotGet,
    /// RFC 6455 §4.2.1 item 1: HTTP/1.1 or higher is required (400). A request
    /// over HTTP/2 or later (given to `Request::from_http`) is refused too: its
    /// WebSocket bootstrapping is an extended CONNECT (RFC 8441), not this upgrade.
    #[error("HTTP/1.1 or higher is required (RFC 6455 §4.2.1)")]
    HttpVersion,
    /// RFC 6455 §4.2.1 item 2: no Host header (400).
    #[error("no Host header (RFC 6455 §4.2.1)")]
    MissingHost,
    /// RFC 6455 §4.1 step 2, §4.2.1 item 3: `Upgrade` lacks `websocket`.
    #[error("the Upgrade header lacks \"websocket\" (RFC 6455 §4.1, §4.2.1)")]
    MissingUpgrade,
    /// RFC 6455 §4.1 step 3, §4.2.1 item 4: `Connection` lacks the `Upgrade` token.
    #[error("the Connection header lacks the Upgrade token (RFC 6455 §4.1, §4.2.1)")]
    MissingConnectionUpgrade,
    /// RFC 6455 §4.2.1 item 5: the key is missing or does not decode to 16 bytes (400).
    #[error("Sec-WebSocket-Key is missing or not 16 bytes in base64 (RFC 6455 §4.2.1)")]
    InvalidKey,
    /// RFC 6455 §4.2.1 item 6, §4.4: only version 13 is spoken (426).
    #[error("Sec-WebSocket-Version is not 13 (RFC 6455 §4.2.1)")]
    UnsupportedVersion,
    /// RFC 6455 §4.1 step 4: `Sec-WebSocket-Accept` is missing or wrong.
    #[error("Sec-WebSocket-Accept is missing or wrong (RFC 6455 §4.1)")]
    AcceptMismatch,
    /// RFC 6455 §4.1 step 6: the server selected a subprotocol that was not offered.
    #[error("the server selected a subprotocol that was not offered (RFC 6455 §4.1)")]
    UnexpectedProtocol,
    /// RFC 6455 §4.1 step 5: the server selected an extension that was not offered.
    #[error("the server selected an extension that was not offered (RFC 6455 §4.1)")]
    UnexpectedExtension,
    /// RFC 7692 §5: the server's permessage-deflate response is invalid or
    /// answers none of the offers; the client fails the connection.
    #[cfg(feature = "deflate")]
    #[error("invalid permessage-deflate response: {0}")]
    InvalidDeflateResponse(#[from] crate::deflate::NegotiationError),
    /// The header block exceeds [`Config::max_handshake_size`](crate::Config::max_handshake_size) (431).
    #[error("the handshake's header block exceeds the limit of {0} bytes")]
    HeadersTooLarge(usize),
    /// More header fields than [`Config::max_headers`](crate::Config::max_headers) (431).
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// The stream ended before the handshake completed.
    #[error("the stream ended during the opening handshake")]
    Eof,
    /// RFC 8441 §4, §5: over HTTP/2, a WebSocket starts with an extended
    /// CONNECT whose `:protocol` is `websocket`; this request is not one (400).
    #[error("not an extended CONNECT with :protocol websocket (RFC 8441 §4)")]
    NotExtendedConnect,
    /// A header field that may appear once appears more often (RFC 6455
    /// §11.3.1, §11.3.3, §11.3.5; RFC 9112 §3.2 for `Host`) (400).
    #[error("the {0} header appears more than once")]
    DuplicateHeader(&'static str),
}

impl HandshakeError {
    /// The HTTP status a server answers this error with (`None` for client-side errors).
    pub fn http_status(&self) -> Option<u16> {
        Some(match self {
            Self::Malformed(_)
            | Self::HttpVersion
            | Self::MissingHost
            | Self::MissingUpgrade
            | Self::MissingConnectionUpgrade
            | Self::InvalidKey
            | Self::NotExtendedConnect
            | Self::DuplicateHeader(_) => 400,
            Self::MethodNotGet => 405,
            Self::UnsupportedVersion => 426,
            Self::HeadersTooLarge(_) | Self::TooManyHeaders(_) => 431,
            Self::Rejected(_)
            | Self::AcceptMismatch
            | Self::UnexpectedProtocol
            | Self::UnexpectedExtension
            | Self::Eof => return None,
            #[cfg(feature = "deflate")]
            Self::InvalidDeflateResponse(_) => return None,
        })
    }
}

/// Finds the end of an HTTP header block in `buf`: just after its first empty
/// line. Lines may end in CRLF or a bare LF (RFC 9112 §2.2), as httparse reads
/// them, so the block ends at `\n\n` or `\n\r\n`, exactly where httparse
/// completes. The search starts at `from` (bytes before it are known not to
/// end the block).
pub(crate) fn find_header_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.saturating_sub(2);
    let tail = buf.get(from..)?;
    tail.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .find_map(|(i, _)| match &tail[i + 1..] {
            [b'\n', ..] => Some(from + i + 2),
            [b'\r', b'\n', ..] => Some(from + i + 3),
            _ => None,
        })
}

/// Whether `s` may be a header field value (RFC 9110 §5.5): no control
/// characters but horizontal tab, so no CR, LF or NUL to inject lines with.
pub(crate) fn is_safe_field(s: &str) -> bool {
    !s.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f)
}

/// Whether `name` is a header field name: a token (RFC 9110 §5.1, §5.6.2).
pub(crate) fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The length of the complete header block at the start of `buf`, `None`
/// while it is incomplete, or an error once it is over `max_size` bytes.
/// `scanned`: bytes of `buf` already known not to end the block.
pub(crate) fn header_block(
    buf: &[u8],
    scanned: usize,
    max_size: usize,
) -> Result<Option<usize>, HandshakeError> {
    match find_header_end(buf, scanned) {
        Some(end) if end <= max_size => Ok(Some(end)),
        None if buf.len() <= max_size => Ok(None),
        _ => Err(HandshakeError::HeadersTooLarge(max_size)),
    }
}

/// What httparse made of the header block that ends at `end`: it must end
/// there too, or bytes between the two ends would be neither headers nor frames.
pub(crate) fn parsed(
    outcome: httparse::Result<usize>,
    end: usize,
    max_headers: usize,
) -> Result<(), HandshakeError> {
    match outcome {
        Ok(httparse::Status::Complete(n)) if n == end => Ok(()),
        Ok(httparse::Status::Complete(_)) => Err(HandshakeError::Malformed("header block")),
        Ok(httparse::Status::Partial) => Err(HandshakeError::Malformed("truncated header block")),
        Err(httparse::Error::TooManyHeaders) => Err(HandshakeError::TooManyHeaders(max_headers)),
        Err(e) => Err(HandshakeError::Malformed(match e {
            httparse::Error::HeaderName => "invalid header name",
            httparse::Error::HeaderValue => "invalid header value",
            httparse::Error::NewLine => "invalid line ending",
            httparse::Error::Status => "invalid status",
            httparse::Error::Token => "invalid token",
            httparse::Error::Version => "invalid HTTP version",
            _ => "malformed",
        })),
    }
}
