//! The client's side of the opening handshake (RFC 6455 §3, §4.1).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use super::{
    HandshakeError, Headers, Negotiated, Response, accept_key, header_block, is_field_name,
    is_safe_field, parsed,
};
use crate::frame::Status;

/// A `ws://` or `wss://` URI that cannot be used (RFC 6455 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The scheme is not `ws` or `wss`.
    #[error("the scheme is not ws or wss")]
    Scheme,
    /// The host is missing or malformed.
    #[error("the host is missing or malformed")]
    Host,
    /// The port is not a number from 0 to 65535.
    #[error("the port is not a number from 0 to 65535")]
    Port,
    /// RFC 6455 §3: fragment identifiers MUST NOT be used.
    #[error("WebSocket URIs have no fragment (RFC 6455 §3)")]
    Fragment,
    /// User information (`user@host`) is not part of a WebSocket URI.
    #[error("WebSocket URIs have no user information (RFC 6455 §3)")]
    UserInfo,
    /// Whitespace or control characters in the URI, a header field name that
    /// is not a token, or a field value with control characters (CR, LF, ...).
    #[error("invalid characters")]
    Characters,
}

/// The client's opening handshake request (RFC 6455 §4.1), built from a URI.
///
/// ```
/// use wsmachine::handshake::ClientRequest;
/// let req = ClientRequest::new("wss://[::1]:8443/chat?room=1").unwrap()
///     .origin("https://example.com")
///     .protocol("chat.v2")
///     .header("Authorization", "Bearer t0ken");
/// assert_eq!((req.host(), req.port(), req.is_secure()), ("[::1]", 8443, true));
/// assert_eq!(req.resource(), "/chat?room=1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    secure: bool,
    host: String,
    port: u16,
    resource: String,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// Parses a `ws://` or `wss://` URI: host (a name, IPv4, or `[IPv6]`),
    /// port (default 80 / 443), path and query.
    pub fn new(uri: &str) -> Result<Self, UriError> {
        if uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UriError::Characters);
        }
        let (scheme, rest) = uri.split_once("://").ok_or(UriError::Scheme)?;
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(UriError::Scheme);
        };
        if rest.contains('#') {
            return Err(UriError::Fragment);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        if authority.contains('@') {
            return Err(UriError::UserInfo);
        }
        let (host, port) = if authority.starts_with('[') {
            let close = authority.find(']').ok_or(UriError::Host)?;
            let addr = &authority[1..close];
            if addr.is_empty()
                || !addr
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(UriError::Host);
            }
            let port = match &authority[close + 1..] {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or(UriError::Host)?),
            };
            (&authority[..=close], port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let valid_name = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b);
        if host.is_empty() || (!host.starts_with('[') && !host.bytes().all(valid_name)) {
            return Err(UriError::Host);
        }
        let port = match port {
            None => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| UriError::Port)?
            }
            Some(_) => return Err(UriError::Port),
        };
        let resource = match resource {
            "" => String::from("/"),
            r if r.starts_with('?') => alloc::format!("/{r}"),
            r => String::from(r),
        };
        Ok(Self {
            secure,
            host: String::from(host),
            port,
            resource,
            origin: None,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
        })
    }

    /// This request aimed at another `ws://` or `wss://` URI, with the same
    /// origin, subprotocols, extension offers and header fields: the next hop
    /// of a redirect. Credentials (`Authorization`, `Proxy-Authorization`,
    /// `Cookie`) are dropped when the hop goes to another host or port, as
    /// HTTP clients do: a redirect must not hand them to a third party.
    #[cfg(any(feature = "blocking", feature = "tokio"))]
    pub(crate) fn retarget(&self, uri: &str) -> Result<Self, UriError> {
        let target = Self::new(uri)?;
        let same_host = target.host.eq_ignore_ascii_case(&self.host) && target.port == self.port;
        let mut next = Self {
            secure: target.secure,
            host: target.host,
            port: target.port,
            resource: target.resource,
            ..self.clone()
        };
        if !same_host {
            const CREDENTIALS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
            next.headers
                .retain(|(name, _)| !CREDENTIALS.iter().any(|c| name.eq_ignore_ascii_case(c)));
        }
        Ok(next)
    }

    /// Sets the `Origin` header (RFC 6455 §4.1 item 8, §10.2).
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(String::from(origin));
        self
    }

    /// Offers a subprotocol; call in order of preference (RFC 6455 §4.1 item 10).
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocols.push(String::from(protocol));
        self
    }

    /// Offers an extension, as it goes in `Sec-WebSocket-Extensions` (RFC 6455 §9.1).
    ///
    /// With [`Config::deflate`](crate::Config::deflate) set, the connection
    /// offers permessage-deflate itself; a request that offers it by hand is
    /// sent as is, and its offers are the ones the response is checked against.
    pub fn extension(mut self, offer: &str) -> Self {
        self.extensions.push(String::from(offer));
        self
    }

    /// The extension offers added with [`extension`](Self::extension), in order.
    pub fn extension_offers(&self) -> impl Iterator<Item = &str> {
        self.extensions.iter().map(String::as_str)
    }

    /// Adds a header field (cookies, authorization, ...).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((String::from(name), String::from(value)));
        self
    }

    /// `wss` (TLS is the stream's job).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host as written in the URI (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The /resource name/: path and query (RFC 6455 §3).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The subprotocols offered.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Checks the header fields the caller supplied: names must be tokens and
    /// values free of control characters such as CR and LF, which would let a
    /// value inject header lines (RFC 9110 §5.1, §5.5).
    pub fn validate(&self) -> Result<(), UriError> {
        let fields = self
            .headers
            .iter()
            .flat_map(|(n, v)| [n, v])
            .chain(&self.origin)
            .chain(&self.protocols)
            .chain(&self.extensions);
        for field in fields {
            if !is_safe_field(field) {
                return Err(UriError::Characters);
            }
        }
        if !self.headers.iter().all(|(n, _)| is_field_name(n)) {
            return Err(UriError::Characters);
        }
        Ok(())
    }

    /// Writes the request with `nonce` (16 random bytes) as the key, and returns
    /// what the response must contain.
    pub fn encode(&self, nonce: [u8; 16], out: &mut Vec<u8>) -> ExpectedResponse {
        let key = nonce_key(nonce);
        let mut s = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(s, "GET {} HTTP/1.1\r\n", self.resource);
        self.fields(&key, |name, value| {
            let _ = write!(s, "{name}: {value}\r\n");
        });
        s.push_str("\r\n");
        out.extend_from_slice(s.as_bytes());
        self.expected(&key)
    }

    /// Calls `field` with each header field of the request (RFC 6455 §4.1), in
    /// order, with `key` as the `Sec-WebSocket-Key`: the one list for every encoding.
    pub(super) fn fields(&self, key: &str, mut field: impl FnMut(&str, &str)) {
        let default_port = if self.secure { 443 } else { 80 };
        if self.port == default_port {
            field("Host", &self.host);
        } else {
            field("Host", &alloc::format!("{}:{}", self.host, self.port));
        }
        field("Upgrade", "websocket");
        field("Connection", "Upgrade");
        field("Sec-WebSocket-Key", key);
        field("Sec-WebSocket-Version", "13");
        if let Some(origin) = &self.origin {
            field("Origin", origin);
        }
        if !self.protocols.is_empty() {
            field("Sec-WebSocket-Protocol", &self.protocols.join(", "));
        }
        if !self.extensions.is_empty() {
            field("Sec-WebSocket-Extensions", &self.extensions.join(", "));
        }
        for (name, value) in &self.headers {
            field(name, value);
        }
    }

    /// What the response to a request with `key` must contain.
    pub(super) fn expected(&self, key: &str) -> ExpectedResponse {
        ExpectedResponse {
            accept: accept_key(key.as_bytes()),
            extended_connect: false,
            protocols: self.protocols.clone(),
            // The names offered: an `extension` string may hold several elements.
            extensions: self
                .extensions
                .iter()
                .flat_map(|e| e.split(','))
                .filter_map(|element| element.split(';').next())
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(String::from)
                .collect(),
            #[cfg(feature = "deflate")]
            deflate_offers: self
                .extensions
                .iter()
                .flat_map(|e| crate::deflate::elements(e))
                .filter_map(|e| crate::deflate::DeflateParams::parse(e, false).ok())
                .collect(),
        }
    }
}

/// The `Sec-WebSocket-Key` for a nonce (RFC 6455 §4.1 item 7): its base64.
pub(super) fn nonce_key(nonce: [u8; 16]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// What a valid server response must contain, from [`ClientRequest::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedResponse {
    /// The `Sec-WebSocket-Accept` value; empty for an extended CONNECT.
    pub(super) accept: String,
    /// The request was an extended CONNECT (RFC 8441): a 2xx answers it,
    /// without the HTTP/1.1 upgrade fields.
    pub(super) extended_connect: bool,
    protocols: Vec<String>,
    extensions: Vec<String>,
    /// The permessage-deflate offers, which a response must answer.
    #[cfg(feature = "deflate")]
    deflate_offers: Vec<crate::deflate::DeflateParams>,
}

impl ExpectedResponse {
    /// The permessage-deflate agreement a response sets up: `None` if it did
    /// not accept permessage-deflate, an error if its answer is invalid
    /// (RFC 7692 §5).
    #[cfg(feature = "deflate")]
    pub(crate) fn deflate(
        &self,
        negotiated: &Negotiated,
    ) -> Result<Option<crate::deflate::Agreement>, crate::deflate::NegotiationError> {
        let elements = negotiated
            .extensions
            .as_deref()
            .map(crate::deflate::elements);
        crate::deflate::Agreement::from_response(
            elements.into_iter().flatten(),
            &self.deflate_offers,
        )
    }
}

/// Parses and validates the server's response (RFC 6455 §4.1) from the start
/// of `buf`: what was negotiated and the length of the response's header block
/// (the bytes after it are frames), or `Partial` if it is not complete.
///
/// A status other than 101 is [`HandshakeError::Rejected`], with the headers and
/// whatever body bytes `buf` holds.
pub fn parse_response(
    buf: &[u8],
    expected: &ExpectedResponse,
    max_size: usize,
    max_headers: usize,
) -> Result<Status<(Negotiated, usize)>, HandshakeError> {
    let Some(end) = header_block(buf, 0, max_size)? else {
        return Ok(Status::Partial { needed: 1 });
    };
    let mut fields = vec![httparse::EMPTY_HEADER; max_headers];
    let mut response = httparse::Response::new(&mut fields);
    parsed(response.parse(&buf[..end]), end, max_headers)?;
    let negotiated = validate_response(
        ResponseHead {
            status: response.code.unwrap_or(0),
            reason: response.reason.unwrap_or(""),
            headers: Headers::from_httparse(response.headers),
            body: &buf[end..],
        },
        expected,
    )?;
    Ok(Status::Complete((negotiated, end)))
}

/// A response as read by an HTTP parser (httparse on the wire, or the `http`
/// crate's types), before the rules of RFC 6455 §4.1 are applied to it.
#[derive(Debug)]
pub(super) struct ResponseHead<'a> {
    pub(super) status: u16,
    pub(super) reason: &'a str,
    pub(super) headers: Headers,
    /// The body bytes at hand, kept for a [`HandshakeError::Rejected`].
    pub(super) body: &'a [u8],
}

/// Applies RFC 6455 §4.1 to a parsed response: the one set of rules for every
/// HTTP parser.
pub(super) fn validate_response(
    head: ResponseHead<'_>,
    expected: &ExpectedResponse,
) -> Result<Negotiated, HandshakeError> {
    let ResponseHead {
        status,
        reason,
        headers,
        body,
    } = head;
    // RFC 6455 §4.1 step 1: anything but 101 is handled per HTTP, by the
    // caller; RFC 8441 §5: an extended CONNECT is accepted with a 2xx.
    let accepted = if expected.extended_connect {
        (200..300).contains(&status)
    } else {
        status == 101
    };
    if !accepted {
        return Err(HandshakeError::Rejected(alloc::boxed::Box::new(Response {
            status,
            reason: String::from(reason),
            headers,
            body: body.to_vec(),
        })));
    }
    // Steps 2 to 4, which RFC 8441 §5 does not use: HTTP/2 has no Upgrade
    // and no Connection field, and the stream needs no key.
    if !expected.extended_connect {
        if !headers.has_token("upgrade", "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !headers.has_token("connection", "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        // Step 4: leading and trailing whitespace is ignored; one value only (§11.3.3).
        headers.at_most_once("sec-websocket-accept")?;
        match headers.get("sec-websocket-accept") {
            Some(v) if v.trim_ascii() == expected.accept.as_bytes() => {}
            _ => return Err(HandshakeError::AcceptMismatch),
        }
    }
    // Step 5: only extensions that were offered.
    for ext in headers.tokens("sec-websocket-extensions") {
        let name = ext
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        // Extension names are tokens, compared without regard to case.
        if !expected
            .extensions
            .iter()
            .any(|e| e.as_bytes().eq_ignore_ascii_case(name))
        {
            return Err(HandshakeError::UnexpectedExtension);
        }
    }
    // The _Extensions In Use_: every element of every Sec-WebSocket-Extensions field.
    let elements = headers
        .tokens("sec-websocket-extensions")
        .map(core::str::from_utf8)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| HandshakeError::UnexpectedExtension)?;
    let extensions = (!elements.is_empty()).then(|| elements.join(", "));
    // Step 6: only a subprotocol that was offered, and one at most.
    let mut protocols = headers.tokens("sec-websocket-protocol");
    let protocol = match (protocols.next(), protocols.next()) {
        (None, _) => None,
        (Some(p), None) => match expected.protocols.iter().find(|o| o.as_bytes() == p) {
            Some(offered) => Some(offered.clone()),
            None => return Err(HandshakeError::UnexpectedProtocol),
        },
        (Some(_), Some(_)) => return Err(HandshakeError::UnexpectedProtocol),
    };
    let negotiated = Negotiated {
        protocol,
        extensions,
    };
    // RFC 7692 §5: a client fails the connection on an invalid permessage-deflate response.
    #[cfg(feature = "deflate")]
    expected.deflate(&negotiated)?;
    Ok(negotiated)
}

#[cfg(all(test, any(feature = "blocking", feature = "tokio")))]
mod tests {
    use super::ClientRequest;

    fn names(request: &ClientRequest) -> alloc::vec::Vec<&str> {
        request.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_redirect_keeps_credentials_on_the_same_host_only() {
        let request = ClientRequest::new("wss://a.example/start")
            .unwrap()
            .header("Authorization", "Bearer t")
            .header("cookie", "s=1")
            .header("X-Trace", "1");
        let same = request.retarget("wss://A.example/next").unwrap();
        assert_eq!(names(&same), ["Authorization", "cookie", "X-Trace"]);
        for elsewhere in ["wss://b.example/next", "wss://a.example:8443/next"] {
            let next = request.retarget(elsewhere).unwrap();
            assert_eq!(names(&next), ["X-Trace"], "{elsewhere}");
        }
    }
}
