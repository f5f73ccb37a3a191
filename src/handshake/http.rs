//! The opening handshake on the `http` crate's types (feature `http`), for a
//! handshake that another HTTP stack (hyper, axum, ...) reads and writes.
//!
//! The rules are the ones the wire parser applies ([`validate_request`],
//! [`validate_response`]) and the header fields the ones it writes
//! ([`accept_fields`], [`reject_fields`], [`ClientRequest::fields`]): only the
//! container differs.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use ::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};

use super::client::{ResponseHead, nonce_key, validate_response};
use super::h2::http1_only;
use super::server::{HttpVersion, RequestHead, accept_fields, reject_fields, validate_request};
use super::{
    Accept, ClientRequest, ExpectedResponse, HandshakeError, Headers, Negotiated, Reject, Request,
    UriError,
};
use crate::UsageError;

impl Headers {
    /// Copies the fields of an [`http::HeaderMap`], in its
    /// iteration order (the values of a name together, names in lower case).
    ///
    /// ```
    /// use wsmachine::handshake::Headers;
    /// let mut map = http::HeaderMap::new();
    /// map.append("Connection", "keep-alive".parse().unwrap());
    /// map.append("Connection", "Upgrade".parse().unwrap());
    /// let headers = Headers::from_http(&map);
    /// assert!(headers.has_token("connection", "upgrade"));
    /// assert_eq!(headers.len(), 2);
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn from_http(map: &HeaderMap) -> Self {
        Self {
            fields: map
                .iter()
                .map(|(name, value)| (String::from(name.as_str()), value.as_bytes().to_vec()))
                .collect(),
        }
    }
}

impl Request {
    /// Validates an upgrade request that another HTTP stack parsed (RFC 6455
    /// §4.2.1), with the rules of [`parse_request`](super::parse_request): the
    /// same errors, so [`HandshakeError::http_status`] gives the same status to
    /// answer with. The path is the URI's path and query.
    ///
    /// Only an HTTP/1.1 request is valid: one over HTTP/2 or later is
    /// [`HandshakeError::HttpVersion`] (its WebSocket bootstrapping is the
    /// extended CONNECT of RFC 8441). The header size limits of
    /// [`Config`](crate::Config) are left to the HTTP stack that read the request.
    ///
    /// ```
    /// use wsmachine::handshake::{Accept, HandshakeError, Request, accept_response_http};
    /// let req = http::Request::get("/chat?room=1")
    ///     .header("Host", "example.com")
    ///     .header("Upgrade", "websocket")
    ///     .header("Connection", "keep-alive, Upgrade")
    ///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("Sec-WebSocket-Version", "13")
    ///     .header("Sec-WebSocket-Protocol", "chat")
    ///     .body(())
    ///     .unwrap();
    /// let request = Request::from_http(&req).unwrap();
    /// assert_eq!((request.path(), request.host()), ("/chat?room=1", "example.com"));
    ///
    /// let response = accept_response_http(&request, &Accept::new().protocol("chat")).unwrap();
    /// assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    /// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ///
    /// let post = http::Request::post("/chat").body(()).unwrap();
    /// let error = Request::from_http(&post).unwrap_err();
    /// assert_eq!((error.clone(), error.http_status()), (HandshakeError::MethodNotGet, Some(405)));
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn from_http<B>(req: &::http::Request<B>) -> Result<Request, HandshakeError> {
        let version = match req.version() {
            Version::HTTP_09 | Version::HTTP_10 => HttpVersion::Before11,
            Version::HTTP_11 => HttpVersion::Http11,
            _ => HttpVersion::Http2OrLater,
        };
        validate_request(RequestHead {
            method: req.method().as_str(),
            version,
            target: req.uri().path_and_query().map_or("/", |p| p.as_str()),
            headers: Headers::from_http(req.headers()),
        })
    }
}

/// Builds the 101 response that accepts `request` (RFC 6455 §4.2.2), with the
/// header fields [`accept_response`](super::accept_response) writes and no
/// extension, for an HTTP stack to send. Then the stream it upgrades carries
/// frames: hand it to [`Connection::open_server_negotiated`](crate::Connection::open_server_negotiated).
///
/// Fails as `accept_response` does: if the selected subprotocol was not offered
/// ([`UsageError::ProtocolNotOffered`]) or a header field is not valid
/// ([`UsageError::InvalidHeader`]).
///
/// [`accept_http`] also negotiates permessage-deflate and returns the
/// [`Negotiated`] for the connection: prefer it. Here, to accept
/// permessage-deflate, answer the offers with `DeflateConfig::negotiate`
/// (feature `deflate`), add the response it gives as a
/// `Sec-WebSocket-Extensions` header with [`Accept::header`], and pass the
/// same value in `Negotiated::extensions`: the connection applies it.
///
/// See [`Request::from_http`] for an example.
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub fn accept_response_http(
    request: &Request,
    accept: &Accept,
) -> Result<::http::Response<()>, UsageError> {
    let (response, _) = accept_as(request, accept, None, AcceptOver::Http1)?;
    Ok(response)
}

/// Accepts `request` with what `config` allows: the 101 response (RFC 6455
/// §4.2.2) with the subprotocol of `accept`, the permessage-deflate response
/// to the client's offers that [`Config::deflate`](crate::Config::deflate)
/// accepts (if any) and `accept`'s extra fields, and the [`Negotiated`] that
/// [`Connection::open_server_negotiated`](crate::Connection::open_server_negotiated)
/// takes for the upgraded stream. One call settles both, so the extension in
/// the response and the one the connection applies cannot differ.
///
/// Fails as [`accept_response_http`] does.
///
/// ```
/// use wsmachine::handshake::{Accept, Request, accept_http};
/// use wsmachine::{Config, Connection};
/// let req = http::Request::get("/chat")
///     .header("Host", "example.com")
///     .header("Upgrade", "websocket")
///     .header("Connection", "Upgrade")
///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .header("Sec-WebSocket-Version", "13")
///     .header("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
///     .body(())
///     .unwrap();
/// let request = Request::from_http(&req).unwrap();
/// let (response, negotiated) = accept_http(&request, &Accept::new(), &Config::default()).unwrap();
/// assert_eq!(response.status(), 101);
/// # #[cfg(feature = "deflate")]
/// assert_eq!(response.headers()["sec-websocket-extensions"], negotiated.extensions.as_deref().unwrap());
/// let conn = Connection::open_server_negotiated(Config::default(), negotiated);
/// assert!(conn.is_open());
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub fn accept_http(
    request: &Request,
    accept: &Accept,
    config: &crate::Config,
) -> Result<(::http::Response<()>, Negotiated), UsageError> {
    let extensions = negotiate_extensions(request, config);
    accept_as(request, accept, extensions, AcceptOver::Http1)
}

/// Which exchange a response accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AcceptOver {
    /// The HTTP/1.1 upgrade: 101, every field [`accept_fields`] writes.
    Http1,
    /// RFC 8441's extended CONNECT: 200 over HTTP/2, without the fields of
    /// the upgrade (`Upgrade`, `Connection`, the accept value) nor the
    /// connection-specific ones HTTP/2 forbids.
    ExtendedConnect,
}

/// The response that accepts `request` with `accept` and the extension
/// response `extensions`, and what it settled: the one builder of
/// [`accept_response_http`], [`accept_http`] and
/// [`accept_extended_connect`](super::accept_extended_connect).
pub(super) fn accept_as(
    request: &Request,
    accept: &Accept,
    extensions: Option<String>,
    over: AcceptOver,
) -> Result<(::http::Response<()>, Negotiated), UsageError> {
    let mut response = ::http::Response::new(());
    let http2 = over == AcceptOver::ExtendedConnect;
    if http2 {
        *response.status_mut() = StatusCode::OK;
        *response.version_mut() = Version::HTTP_2;
    } else {
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.version_mut() = Version::HTTP_11;
    }
    let mut valid = true;
    accept_fields(request, accept, extensions.as_deref(), |name, value| {
        if !(http2 && http1_only(name)) {
            valid &= append(response.headers_mut(), name, value);
        }
    })?;
    if !valid {
        return Err(UsageError::InvalidHeader);
    }
    let negotiated = Negotiated {
        protocol: accept.protocol.clone(),
        extensions,
    };
    Ok((response, negotiated))
}

/// The `Sec-WebSocket-Extensions` response to `request`'s offers that
/// `config` accepts: permessage-deflate, the only extension implemented.
pub(super) fn negotiate_extensions(request: &Request, config: &crate::Config) -> Option<String> {
    super::extensions::server_negotiate(request, config).map(|(response, _)| response)
}

impl Reject {
    /// The refusal as a response for an HTTP stack to send: the status, the
    /// header fields [`encode`](Self::encode) writes and the body.
    /// `Content-Length` and `Connection: close`, which frame the message on
    /// the wire, are left to the HTTP stack. A 426 carries
    /// `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
    ///
    /// Fails as [`encode`](Self::encode) does: a status that is not 200–599 or
    /// is 101 ([`UsageError::InvalidStatus`]), or an invalid header field
    /// ([`UsageError::InvalidHeader`]).
    ///
    /// ```
    /// use wsmachine::{UsageError, handshake::Reject};
    /// let response = Reject::new(426).body(b"WebSocket version 13 only").into_http().unwrap();
    /// assert_eq!(response.status(), http::StatusCode::UPGRADE_REQUIRED);
    /// assert_eq!(response.headers()["sec-websocket-version"], "13");
    /// assert_eq!(response.body(), b"WebSocket version 13 only");
    ///
    /// assert_eq!(Reject::new(101).into_http().unwrap_err(), UsageError::InvalidStatus(101));
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn into_http(self) -> Result<::http::Response<Vec<u8>>, UsageError> {
        let mut response = ::http::Response::new(Vec::new());
        *response.version_mut() = Version::HTTP_11;
        let mut valid = true;
        reject_fields(self.status, &self.header_refs(), |name, value| {
            valid &= append(response.headers_mut(), name, value);
        })?;
        if !valid {
            return Err(UsageError::InvalidHeader);
        }
        *response.status_mut() = StatusCode::from_u16(self.status)
            .map_err(|_| UsageError::InvalidStatus(self.status))?;
        *response.body_mut() = self.body;
        Ok(response)
    }
}

impl ClientRequest {
    /// The request as an [`http::Request`] for another HTTP
    /// client stack to send, with `nonce` (16 random bytes) as the key: the
    /// header fields [`encode`](Self::encode) writes (`Host` included), the
    /// resource as an origin-form URI, HTTP/1.1. Returns what the response
    /// must contain, for [`validate_http_response`].
    ///
    /// Fails as [`Connection::client`](crate::Connection::client) does when
    /// [`validate`](Self::validate) refuses a field, and when the resource
    /// cannot be a URI even percent-encoded (over 64 KiB). Characters that the
    /// `http` crate does not accept raw in a URI (such as `<`, `>` or `"`) are
    /// percent-encoded (RFC 3986 §2.1).
    ///
    /// ```
    /// use wsmachine::handshake::{Accept, ClientRequest, Request, accept_response_http, validate_http_response};
    /// let client = ClientRequest::new("ws://example.com:8080/chat").unwrap().protocol("chat");
    /// let (request, expected) = client.to_http([7; 16]).unwrap();
    /// assert_eq!(request.uri(), "/chat");
    /// assert_eq!(request.headers()["host"], "example.com:8080");
    ///
    /// // Any server: here this crate's, through the http types too.
    /// let accepted = Request::from_http(&request).unwrap();
    /// let response = accept_response_http(&accepted, &Accept::new().protocol("chat")).unwrap();
    ///
    /// let negotiated = validate_http_response(&response, &expected).unwrap();
    /// assert_eq!(negotiated.protocol.as_deref(), Some("chat"));
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn to_http(
        &self,
        nonce: [u8; 16],
    ) -> Result<(::http::Request<()>, ExpectedResponse), UsageError> {
        self.validate()?;
        let key = nonce_key(nonce);
        let mut request = ::http::Request::new(());
        *request.method_mut() = Method::GET;
        *request.version_mut() = Version::HTTP_11;
        *request.uri_mut() = request_uri(self.resource()).ok_or(UriError::Characters)?;
        let mut valid = true;
        self.fields(&key, |name, value| {
            valid &= append(request.headers_mut(), name, value);
        });
        if !valid {
            return Err(UsageError::InvalidHeader);
        }
        Ok((request, self.expected(&key)))
    }
}

/// Validates the server's response to a request from
/// [`ClientRequest::to_http`] (RFC 6455 §4.1), read by another HTTP stack, with
/// the rules of [`parse_response`](super::parse_response): what was negotiated,
/// or the same errors.
///
/// A status other than 101 is [`HandshakeError::Rejected`] with the status, the
/// header fields and an empty body (the body is the HTTP stack's to read).
///
/// ```
/// use wsmachine::handshake::{ClientRequest, HandshakeError, validate_http_response};
/// let (_, expected) = ClientRequest::new("ws://example.com/").unwrap().to_http([1; 16]).unwrap();
/// let redirect = http::Response::builder()
///     .status(302)
///     .header("Location", "ws://example.org/")
///     .body(())
///     .unwrap();
/// let Err(HandshakeError::Rejected(response)) = validate_http_response(&redirect, &expected) else {
///     panic!("a 302 is not an upgrade");
/// };
/// assert_eq!((response.status, response.location()), (302, Some("ws://example.org/")));
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub fn validate_http_response<B>(
    resp: &::http::Response<B>,
    expected: &ExpectedResponse,
) -> Result<Negotiated, HandshakeError> {
    validate_response(
        ResponseHead {
            status: resp.status().as_u16(),
            reason: resp.status().canonical_reason().unwrap_or(""),
            headers: Headers::from_http(resp.headers()),
            body: &[],
        },
        expected,
    )
}

/// Appends a field to `map`; false if the `http` crate refuses the name or the value.
pub(super) fn append(map: &mut HeaderMap, name: &str, value: &str) -> bool {
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value.as_bytes()),
    ) {
        (Ok(name), Ok(value)) => {
            map.append(name, value);
            true
        }
        _ => false,
    }
}

/// The origin-form URI of a resource: as it is if the `http` crate takes it,
/// else with the characters a URI may not hold raw percent-encoded (RFC 3986
/// §2.1); `None` if even that is refused (a resource over 64 KiB).
fn request_uri(resource: &str) -> Option<Uri> {
    if let Ok(uri) = Uri::try_from(resource) {
        return Some(uri);
    }
    let mut encoded = String::with_capacity(resource.len() + 16);
    for c in resource.chars() {
        // RFC 3986 §2.2, §2.3, §3.3, §3.4: unreserved, sub-delims, ":@/?", and
        // '%' of the percent-encodings already there.
        if c.is_ascii() && !c.is_ascii_alphanumeric() && !"-._~!$&'()*+,;=:@/?%".contains(c) {
            let _ = write!(encoded, "%{:02X}", c as u8);
        } else {
            encoded.push(c);
        }
    }
    Uri::try_from(encoded).ok()
}
