//! WebSocket over HTTP/2 (RFC 8441): the extended CONNECT, on the `http`
//! crate's types (feature `http`).
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
//! ```

use alloc::format;
use alloc::string::String;

use ::http::{Method, StatusCode, Uri, Version};

use super::http::{append, negotiate_extensions};
use super::server::accept_fields;
use super::{
    Accept, ClientRequest, ExpectedResponse, HandshakeError, Headers, Negotiated, Request,
};
use crate::{Config, UsageError};

/// The value of the `:protocol` pseudo-header that starts a WebSocket
/// (RFC 8441 §4).
pub const WEBSOCKET_PROTOCOL: &str = "websocket";

/// Fields of the HTTP/1.1 upgrade that RFC 8441 §5 does not use.
const HTTP1_ONLY: [&str; 4] = ["Host", "Upgrade", "Connection", "Sec-WebSocket-Key"];

impl Request {
    /// Validates an extended CONNECT (RFC 8441 §4, §5) that an HTTP/2 stack
    /// read, given the value of its `:protocol` pseudo-header: the method is
    /// `CONNECT`, `:protocol` is `websocket`
    /// ([`HandshakeError::NotExtendedConnect`] otherwise), the URI has a
    /// scheme, an authority and a path (the `:scheme`, `:authority` and
    /// `:path` pseudo-headers), and `sec-websocket-version` is 13
    /// ([`HandshakeError::UnsupportedVersion`]). [`host`](Self::host) is the
    /// authority, [`path`](Self::path) the path and query. See the
    /// [module docs](self) for an example.
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn from_extended_connect<B>(
        req: &::http::Request<B>,
        protocol: Option<&str>,
    ) -> Result<Request, HandshakeError> {
        let is_websocket = protocol.is_some_and(|p| p.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL));
        if req.method() != Method::CONNECT || !is_websocket {
            return Err(HandshakeError::NotExtendedConnect);
        }
        let uri = req.uri();
        let authority = uri.authority().ok_or(HandshakeError::MissingHost)?;
        if uri.scheme().is_none() {
            return Err(HandshakeError::Malformed(
                "an extended CONNECT has :scheme and :path",
            ));
        }
        let mut headers = Headers::from_http(req.headers());
        headers.at_most_once("sec-websocket-version")?;
        headers.at_most_once("origin")?;
        if headers.get("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
            return Err(HandshakeError::UnsupportedVersion);
        }
        // As for HTTP/1.1: one ASCII origin, for an allow-list to check.
        if headers.get("origin").is_some_and(|o| !o.is_ascii()) {
            return Err(HandshakeError::Malformed("the Origin header is not ASCII"));
        }
        if headers.get("host").is_none() {
            headers
                .fields
                .push((String::from("host"), authority.as_str().as_bytes().to_vec()));
        }
        Ok(Request {
            path: String::from(uri.path_and_query().map_or("/", |p| p.as_str())),
            key: String::new(),
            headers,
        })
    }
}

/// The 200 response that accepts an extended CONNECT (RFC 8441 §5), and what
/// it settled, for [`Connection::open_server_negotiated`](crate::Connection::open_server_negotiated):
/// the subprotocol of `accept`, the permessage-deflate offer that
/// [`Config::deflate`] accepts (if any), and the extra fields of `accept`.
/// Header names are lower case, as HTTP/2 requires.
///
/// Fails as [`accept_response_http`](super::accept_response_http) does: a
/// subprotocol that was not offered ([`UsageError::ProtocolNotOffered`]) or
/// a field that is not valid ([`UsageError::InvalidHeader`]).
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub fn accept_extended_connect(
    request: &Request,
    accept: &Accept,
    config: &Config,
) -> Result<(::http::Response<()>, Negotiated), UsageError> {
    let extensions = negotiate_extensions(request, config);
    let mut response = ::http::Response::new(());
    *response.status_mut() = StatusCode::OK;
    *response.version_mut() = Version::HTTP_2;
    let mut valid = true;
    accept_fields(request, accept, extensions.as_deref(), |name, value| {
        if !HTTP1_ONLY.contains(&name) && name != "Sec-WebSocket-Accept" {
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

impl ClientRequest {
    /// The extended CONNECT (RFC 8441 §5) that opens this WebSocket on an
    /// HTTP/2 stream, without `:protocol` (set it to [`WEBSOCKET_PROTOCOL`]
    /// the way the HTTP/2 library takes it): `CONNECT`, the URI
    /// `https://` (`wss`) or `http://` (`ws`) with authority and path,
    /// HTTP/2, and the fields of [`encode`](Self::encode) but `Host`,
    /// `Upgrade`, `Connection` and the key. With [`Config::deflate`] set and no
    /// permessage-deflate offer of its own, it offers permessage-deflate as
    /// [`Connection::client`](crate::Connection::client) does. Returns what
    /// the response must contain.
    ///
    /// Fails as [`to_http`](Self::to_http) does.
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn to_extended_connect(
        &self,
        config: &Config,
    ) -> Result<(::http::Request<()>, ExpectedResponse), UsageError> {
        self.validate()?;
        let offering = crate::connection::deflate::client_offers(self, config);
        let this = offering.as_ref().unwrap_or(self);
        let scheme = if self.is_secure() { "https" } else { "http" };
        let default_port = if self.is_secure() { 443 } else { 80 };
        let authority = if self.port() == default_port {
            String::from(self.host())
        } else {
            format!("{}:{}", self.host(), self.port())
        };
        let (origin_form, _) = self.to_http([0; 16])?;
        let uri = format!("{scheme}://{authority}{}", origin_form.uri());
        let mut request = ::http::Request::new(());
        *request.method_mut() = Method::CONNECT;
        *request.version_mut() = Version::HTTP_2;
        *request.uri_mut() = Uri::try_from(uri).map_err(|_| UsageError::InvalidHeader)?;
        let mut valid = true;
        this.fields("", |name, value| {
            if !HTTP1_ONLY.contains(&name) {
                valid &= append(request.headers_mut(), name, value);
            }
        });
        if !valid {
            return Err(UsageError::InvalidHeader);
        }
        let mut expected = this.expected("");
        expected.accept = String::new();
        expected.extended_connect = true;
        Ok((request, expected))
    }
}
