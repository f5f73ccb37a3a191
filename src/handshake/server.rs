//! The server's side of the opening handshake (RFC 6455 §4.2).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use base64::Engine as _;

use super::{
    HandshakeError, Headers, accept_key, header_block, is_field_name, is_safe_field, parsed,
};
use crate::frame::Status;

/// A client's valid upgrade request (RFC 6455 §4.2.1), for the application to
/// accept or reject: the place for Origin checks (§10.2), authentication and
/// subprotocol selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub(super) path: String,
    /// Empty for an extended CONNECT (RFC 8441), which has no key.
    pub(super) key: String,
    pub(super) headers: Headers,
}

impl Request {
    /// The request target: the /resource name/ (path and query).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Host` header.
    pub fn host(&self) -> &str {
        self.headers.get_str("host").unwrap_or_default()
    }

    /// The `Origin` header, sent by every browser (RFC 6455 §10.2); `None`
    /// when absent (a request with two, or one not in ASCII, is refused with
    /// 400 before it gets here, so an allow-list check sees the one value).
    pub fn origin(&self) -> Option<&str> {
        self.headers.get_str("origin")
    }

    /// The subprotocols offered, in the client's order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        self.headers
            .tokens("sec-websocket-protocol")
            .filter_map(|t| core::str::from_utf8(t).ok())
    }

    /// The extension offers, one element of `Sec-WebSocket-Extensions` each.
    pub fn extensions(&self) -> impl Iterator<Item = &str> {
        self.headers
            .tokens("sec-websocket-extensions")
            .filter_map(|t| core::str::from_utf8(t).ok())
    }

    /// The `Sec-WebSocket-Key` as sent; empty for an RFC 8441 extended
    /// CONNECT, which has none (answer it with
    /// [`accept_extended_connect`](super::accept_extended_connect), not a 101).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Every header field.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
}

/// How the application accepts an upgrade request.
///
/// ```
/// use wsmachine::handshake::Accept;
/// let accept = Accept::new().protocol("chat.v2").header("Set-Cookie", "session=1");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    pub(crate) protocol: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Accept {
    /// Accept with no subprotocol and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Selects a subprotocol; it must be one the client offered.
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocol = Some(String::from(protocol));
        self
    }

    /// Adds a header field to the 101 response.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((String::from(name), String::from(value)));
        self
    }

    /// The subprotocol selected.
    pub fn selected_protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }
}

/// How the application refuses an upgrade request: an HTTP status (200–599,
/// not 101), header fields and a body.
///
/// ```
/// use wsmachine::handshake::Reject;
/// let reject = Reject::new(403).header("X-Reason", "origin").body(b"forbidden");
/// assert_eq!(reject.status(), 403);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Reject {
    /// A refusal with `status` and no headers or body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((String::from(name), String::from(value)));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Writes the response, as [`reject_response`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), crate::UsageError> {
        reject_response(self.status, &self.header_refs(), &self.body, out)
    }

    /// The header fields added by the application, borrowed.
    pub(super) fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// Parses and validates a client's request (RFC 6455 §4.2.1) from the start of
/// `buf`: the request and the length of its header block (bytes after it are
/// frames), or `Partial`. An error says which HTTP status to answer with
/// ([`HandshakeError::http_status`]).
pub fn parse_request(
    buf: &[u8],
    max_size: usize,
    max_headers: usize,
) -> Result<Status<(Request, usize)>, HandshakeError> {
    let Some(end) = header_block(buf, 0, max_size)? else {
        return Ok(Status::Partial { needed: 1 });
    };
    let mut fields = vec![httparse::EMPTY_HEADER; max_headers];
    let mut request = httparse::Request::new(&mut fields);
    parsed(request.parse(&buf[..end]), end, max_headers)?;
    let request = validate_request(RequestHead {
        method: request.method.unwrap_or_default(),
        // httparse reads HTTP/1.0 (0) and HTTP/1.1 (1) only.
        version: match request.version {
            Some(1) => HttpVersion::Http11,
            _ => HttpVersion::Before11,
        },
        target: request.path.unwrap_or("/"),
        headers: Headers::from_httparse(request.headers),
    })?;
    Ok(Status::Complete((request, end)))
}

/// The HTTP version of a request, as far as RFC 6455 §4.2.1 is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HttpVersion {
    /// HTTP/1.0 or HTTP/0.9.
    Before11,
    /// HTTP/1.1.
    Http11,
    /// HTTP/2 or later.
    Http2OrLater,
}

/// A request as read by an HTTP parser (httparse on the wire, or the `http`
/// crate's types), before the rules of RFC 6455 §4.2.1 are applied to it.
#[derive(Debug)]
pub(super) struct RequestHead<'a> {
    pub(super) method: &'a str,
    pub(super) version: HttpVersion,
    /// The request target.
    pub(super) target: &'a str,
    pub(super) headers: Headers,
}

/// Applies RFC 6455 §4.2.1 to a parsed request: the one set of rules for every
/// HTTP parser.
pub(super) fn validate_request(head: RequestHead<'_>) -> Result<Request, HandshakeError> {
    let RequestHead {
        method,
        version,
        target,
        headers,
    } = head;
    // HTTP/2 and later bootstrap WebSockets with an extended CONNECT (RFC 8441),
    // not with this upgrade, whatever the method.
    if version == HttpVersion::Http2OrLater {
        return Err(HandshakeError::HttpVersion);
    }
    // RFC 6455 §4.2.1 item 1: an HTTP/1.1 or higher GET request.
    if method != "GET" {
        return Err(HandshakeError::MethodNotGet);
    }
    if version != HttpVersion::Http11 {
        return Err(HandshakeError::HttpVersion);
    }
    // Item 2: a Host header, exactly one (RFC 9112 §3.2); the key and the
    // version MUST NOT appear more than once (RFC 6455 §11.3.1, §11.3.5).
    // Origin too (RFC 6454 §7.3): an allow-list check must see the one value.
    for name in [
        "host",
        "sec-websocket-key",
        "sec-websocket-version",
        "origin",
    ] {
        headers.at_most_once(name)?;
    }
    if headers
        .get("host")
        .is_none_or(|h| h.trim_ascii().is_empty())
    {
        return Err(HandshakeError::MissingHost);
    }
    // Items 3 and 4: Upgrade: websocket and Connection: Upgrade, as tokens in any case.
    if !headers.has_token("upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !headers.has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // Item 6 and §4.4: a version other than 13 is answered with 426.
    if headers.get("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    // Item 5: a key that decodes to 16 bytes.
    let key = headers
        .get_str("sec-websocket-key")
        // Only HTTP whitespace is optional around a value (RFC 9110 §5.5).
        .map(|k| k.trim_matches([' ', '\t']))
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .is_ok_and(|nonce| nonce.len() == 16)
        })
        .ok_or(HandshakeError::InvalidKey)?;
    // RFC 6454 §7.1: an origin is serialized in ASCII. One that is not would
    // read as absent through `Request::origin`, and slip past an allow-list.
    if headers.get("origin").is_some_and(|o| !o.is_ascii()) {
        return Err(HandshakeError::Malformed("the Origin header is not ASCII"));
    }
    Ok(Request {
        path: String::from(target),
        key: String::from(key),
        headers,
    })
}

/// Writes the 101 response that accepts `request` (RFC 6455 §4.2.2).
/// `extensions` is the negotiated `Sec-WebSocket-Extensions` value, if any.
///
/// Fails if the selected subprotocol was not offered or a header field holds
/// CR, LF or NUL.
pub fn accept_response(
    request: &Request,
    accept: &Accept,
    extensions: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), crate::UsageError> {
    let mut s = String::with_capacity(160);
    s.push_str("HTTP/1.1 101 Switching Protocols\r\n");
    accept_fields(request, accept, extensions, |name, value| {
        // Writing to a String cannot fail.
        let _ = write!(s, "{name}: {value}\r\n");
    })?;
    s.push_str("\r\n");
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Checks an acceptance (RFC 6455 §4.2.2) and calls `field` with each header
/// field of the 101 response, in order: the one list for every encoding.
pub(super) fn accept_fields(
    request: &Request,
    accept: &Accept,
    extensions: Option<&str>,
    mut field: impl FnMut(&str, &str),
) -> Result<(), crate::UsageError> {
    // RFC 6455 §4.2.2: the /subprotocol/ is one the client offered.
    if let Some(p) = &accept.protocol
        && !request.protocols().any(|offered| offered == p)
    {
        return Err(crate::UsageError::ProtocolNotOffered);
    }
    check_fields(&accept.headers)?;
    if extensions.is_some_and(|e| !is_safe_field(e)) {
        return Err(crate::UsageError::InvalidHeader);
    }
    field("Upgrade", "websocket");
    field("Connection", "Upgrade");
    field("Sec-WebSocket-Accept", &accept_key(request.key.as_bytes()));
    if let Some(p) = &accept.protocol {
        field("Sec-WebSocket-Protocol", p);
    }
    if let Some(e) = extensions {
        field("Sec-WebSocket-Extensions", e);
    }
    for (name, value) in &accept.headers {
        field(name, value);
    }
    Ok(())
}

/// Writes a response that refuses the upgrade: `status`, the headers, and the
/// body with its `Content-Length`, and `Connection: close`. A 426 carries
/// `Sec-WebSocket-Version: 13` (RFC 6455 §4.4), a 405 `Allow: GET` unless
/// `headers` has an `Allow` (RFC 9110 §15.5.6).
pub fn reject_response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), crate::UsageError> {
    let mut s = String::with_capacity(128);
    let _ = write!(s, "HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    reject_fields(status, headers, |name, value| {
        let _ = write!(s, "{name}: {value}\r\n");
    })?;
    let _ = write!(
        s,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Checks a refusal and calls `field` with each of its header fields, in order,
/// except those that frame the message on the wire (`Content-Length`,
/// `Connection`): the one list for every encoding.
pub(super) fn reject_fields(
    status: u16,
    headers: &[(&str, &str)],
    mut field: impl FnMut(&str, &str),
) -> Result<(), crate::UsageError> {
    if !(200..=599).contains(&status) || status == 101 {
        return Err(crate::UsageError::InvalidStatus(status));
    }
    for (name, value) in headers {
        if !is_field_name(name) || !is_safe_field(value) {
            return Err(crate::UsageError::InvalidHeader);
        }
    }
    // RFC 6455 §4.4: a 426 says which version the server speaks.
    if status == 426 {
        field("Sec-WebSocket-Version", "13");
    }
    // RFC 9110 §15.5.6: a 405 lists the methods the resource allows.
    if status == 405
        && !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("allow"))
    {
        field("Allow", "GET");
    }
    for (name, value) in headers {
        field(name, value);
    }
    Ok(())
}

fn check_fields(fields: &[(String, String)]) -> Result<(), crate::UsageError> {
    if fields
        .iter()
        .all(|(n, v)| is_field_name(n) && is_safe_field(v))
    {
        Ok(())
    } else {
        Err(crate::UsageError::InvalidHeader)
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
