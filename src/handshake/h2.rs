//! WebSocket over HTTP/2 (RFC 8441): the extended CONNECT, documented in the
//! parent module.
use alloc::format;
use alloc::string::String;

use ::http::{Method, Uri, Version};

use super::http::{AcceptOver, accept_as, append, negotiate_extensions};
use super::{
    Accept, ClientRequest, ExpectedResponse, HandshakeError, Headers, Negotiated, Request,
};
use crate::{Config, UsageError};

/// The value of the `:protocol` pseudo-header that starts a WebSocket
/// (RFC 8441 §4).
pub const WEBSOCKET_PROTOCOL: &str = "websocket";

/// Fields of the HTTP/1.1 upgrade that RFC 8441 §5 does not use, and the
/// connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2): left out of
/// what is built, whoever added them.
const HTTP1_ONLY: [&str; 9] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-accept",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
];

pub(super) fn http1_only(name: &str) -> bool {
    HTTP1_ONLY.iter().any(|f| f.eq_ignore_ascii_case(name))
}

impl Request {
    /// Validates an extended CONNECT (RFC 8441 §4, §5) that an HTTP/2 stack
    /// read, given the value of its `:protocol` pseudo-header: the method is
    /// `CONNECT`, `:protocol` is `websocket`
    /// ([`HandshakeError::NotExtendedConnect`] otherwise), the URI has a
    /// scheme and an authority (the `:scheme` and `:authority`
    /// pseudo-headers; the HTTP/2 library checks that `:path` is there, which
    /// the `http` crate's URI cannot tell from `/`), a `host` field, if any,
    /// is the authority, and `sec-websocket-version` is 13
    /// ([`HandshakeError::UnsupportedVersion`]). [`host`](Self::host) is the
    /// authority, [`path`](Self::path) the path and query, and
    /// [`key`](Self::key) is empty (RFC 8441 has none). See the
    /// [`handshake`](crate::handshake) module docs for an example.
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
        // RFC 9113 §8.3.1: a Host that differs from :authority is malformed;
        // the host an allow-list sees is the authority.
        headers.at_most_once("host")?;
        match headers.get("host") {
            Some(host)
                if !host
                    .trim_ascii()
                    .eq_ignore_ascii_case(authority.as_str().as_bytes()) =>
            {
                return Err(HandshakeError::Malformed("Host differs from :authority"));
            }
            Some(_) => {}
            None => headers
                .fields
                .push((String::from("host"), authority.as_str().as_bytes().to_vec())),
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
    accept_as(request, accept, extensions, AcceptOver::ExtendedConnect)
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
        let offering = super::extensions::client_offers(self, config);
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
            if !http1_only(name) {
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
