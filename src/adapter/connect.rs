//! Connecting a client from its URL: name resolution, TCP, TLS for `wss://`
//! (feature `rustls`), the opening handshake and its redirects, under one
//! timeout. The adapters' halves are `Connector::connect_tokio` and
//! `Connector::connect_blocking`; this file holds what they share.

#[cfg(feature = "rustls")]
use std::sync::Arc;
use std::time::Duration;

use super::Error;
use crate::handshake::{ClientRequest, HandshakeError};

/// Settings for connecting a client from the URL of a
/// [`ClientRequest`]: resolve its host, open a TCP connection to the first
/// address that answers, run TLS for `wss://` (feature `rustls`), and the
/// opening handshake, following redirects, all within a timeout.
///
/// - **Timeout** ([`connect_timeout`](Self::connect_timeout), 10 s by
///   default): the whole call, redirects included, ends with
///   [`Error::ConnectTimeout`] once it has run that long. (The blocking
///   adapter's name resolution is the system resolver's, with its own
///   timeouts: only the connects, TLS and the handshakes are bounded.) The
///   opening handshake is also bounded by
///   [`Config::handshake_timeout`](crate::Config::handshake_timeout), per hop.
/// - **Redirects** ([`max_redirects`](Self::max_redirects), 5 by default; 0
///   follows none): a 301, 302, 303, 307 or 308 answer with a `Location` is
///   followed to that URL. `ws`, `wss`, `http` and `https` URLs are taken
///   (`http` as `ws`, `https` as `wss`), and a relative one is resolved
///   against the URL it answers. Each hop sends the original request's
///   origin, subprotocols, extension offers and header fields, but its
///   credentials (`Authorization`, `Proxy-Authorization`, `Cookie`) only to
///   the same host and port: a redirect elsewhere drops them, as HTTP
///   clients do. A redirect from `wss` to `ws`
///   is never followed ([`Error::InsecureRedirect`]), one more redirect than
///   the maximum is [`Error::TooManyRedirects`], and a redirect that is not
///   followed (maximum 0, another 3xx status, no `Location`) is returned as
///   the [`HandshakeError::Rejected`] it is.
/// - **TLS** (feature `rustls`): a `wss://` URL is connected with rustls and
///   its ring provider, with the `rustls::ClientConfig` given to
///   `tls_config`, or else one that trusts the Mozilla roots of
///   `webpki-roots`. Without the feature, `wss://` is
///   [`Error::TlsUnavailable`]: connect the TLS stream yourself and give it
///   to an adapter's `WebSocket::connect`.
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use wsmachine::adapter::Connector;
/// use wsmachine::handshake::ClientRequest;
/// use wsmachine::{Config, OwnedEvent};
///
/// let request = ClientRequest::new("ws://example.com/chat")?
///     .header("Authorization", "Bearer t0ken")
///     .protocol("chat.v2");
/// let mut ws = Connector::new()
///     .connect_timeout(Duration::from_secs(5))
///     .max_redirects(2)
///     .connect_tokio(&request, Config::default())
///     .await?;
/// ws.send_text("hello").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Connector {
    connect_timeout: Duration,
    max_redirects: u8,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Connector {
    fn default() -> Self {
        Self::new()
    }
}

impl Connector {
    /// A 10 s timeout, up to 5 redirects, and (feature `rustls`) the
    /// webpki-roots trust anchors.
    pub fn new() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// How long a connect may take in all: name resolution, TCP, TLS and the
    /// opening handshake, for every hop of the redirects.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many redirects to follow at most; 0 follows none.
    pub fn max_redirects(mut self, max: u8) -> Self {
        self.max_redirects = max;
        self
    }

    /// The TLS settings for `wss://` URLs (trust roots, client certificates,
    /// ...), instead of the default that trusts the webpki-roots. The
    /// upgrade is HTTP/1.1: offer no ALPN, or only `http/1.1` (a server that
    /// picked `h2` would expect HTTP/2). A client certificate goes to every
    /// `wss` host a redirect names; set `max_redirects(0)` if it must not.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The configured timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// What follows a hop to `current` that failed with `error`: the request
    /// for the next hop when `error` is a redirect to follow (`redirects`,
    /// the count so far, goes up by one), else an error.
    pub(crate) fn follow(
        &self,
        current: &ClientRequest,
        redirects: &mut u8,
        error: Error,
    ) -> Result<ClientRequest, Error> {
        let Error::WebSocket(crate::Error::Handshake(HandshakeError::Rejected(response))) = &error
        else {
            return Err(error);
        };
        let Some(location) = response.location() else {
            return Err(error);
        };
        if self.max_redirects == 0 || !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
            return Err(error);
        }
        if *redirects >= self.max_redirects {
            return Err(Error::TooManyRedirects {
                max: self.max_redirects,
                location: location.into(),
            });
        }
        let next = resolve(current, location)?;
        if current.is_secure() && !next.is_secure() {
            return Err(Error::InsecureRedirect {
                location: location.into(),
            });
        }
        *redirects += 1;
        Ok(next)
    }

    /// What a hop to `request` needs for TLS: nothing for `ws://`; for
    /// `wss://` the settings and the server's name, or
    /// [`Error::TlsUnavailable`] without the `rustls` feature.
    pub(crate) fn tls_for(&self, request: &ClientRequest) -> Result<Option<Tls>, Error> {
        if !request.is_secure() {
            return Ok(None);
        }
        #[cfg(feature = "rustls")]
        return Ok(Some((self.tls()?, server_name(request)?)));
        #[cfg(not(feature = "rustls"))]
        Err(Error::TlsUnavailable)
    }

    /// The TLS settings: the ones given, or the default.
    #[cfg(feature = "rustls")]
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        use std::sync::OnceLock;
        if let Some(config) = &self.tls {
            return Ok(config.clone());
        }
        // One default for every connection: its session cache lets later
        // connections resume TLS sessions.
        static DEFAULT: OnceLock<Result<Arc<rustls::ClientConfig>, rustls::Error>> =
            OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                let roots = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                Ok(Arc::new(
                    rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()?
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                ))
            })
            .clone()
            .map_err(|e| Error::Io(std::io::Error::other(e)))
    }
}

/// The host of a request as a resolver takes it: an IPv6 literal without
/// its brackets.
pub(crate) fn dns_host(request: &ClientRequest) -> &str {
    let host = request.host();
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The TLS settings and server name of a `wss://` hop.
#[cfg(feature = "rustls")]
pub(crate) type Tls = (
    Arc<rustls::ClientConfig>,
    rustls::pki_types::ServerName<'static>,
);
/// Without the `rustls` feature there is no TLS hop.
#[cfg(not(feature = "rustls"))]
pub(crate) type Tls = core::convert::Infallible;

/// The name a TLS server's certificate must be valid for (SNI, verification).
#[cfg(feature = "rustls")]
fn server_name(request: &ClientRequest) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    rustls::pki_types::ServerName::try_from(dns_host(request).to_owned())
        .map_err(|e| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))
}

/// The request for `location`, a redirect's target, resolved against the
/// request it answers (RFC 3986 §5.2): an absolute `ws`, `wss`, `http` or
/// `https` URL, or a reference relative to `current`.
fn resolve(current: &ClientRequest, location: &str) -> Result<ClientRequest, Error> {
    let invalid = |source| Error::InvalidRedirect {
        location: location.into(),
        source,
    };
    // A fragment has no place in a WebSocket URL, nor a meaning for the server.
    let reference = location.trim().split('#').next().unwrap_or_default();
    let scheme = if current.is_secure() { "wss" } else { "ws" };
    let target = if let Some((name, rest)) = split_scheme(reference) {
        let scheme = match name.to_ascii_lowercase().as_str() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            _ => return Err(invalid(crate::handshake::UriError::Scheme)),
        };
        let rest = rest
            .strip_prefix("//")
            .ok_or(invalid(crate::handshake::UriError::Host))?;
        format!("{scheme}://{rest}")
    } else if let Some(rest) = reference.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else {
        let path = current.resource().split('?').next().unwrap_or_default();
        let resource = if reference.is_empty() {
            current.resource().to_owned()
        } else if reference.starts_with('?') {
            format!("{path}{reference}")
        } else {
            let (ref_path, ref_query) = match reference.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (reference, None),
            };
            let merged = if ref_path.starts_with('/') {
                ref_path.to_owned()
            } else if ref_path.is_empty() {
                path.to_owned()
            } else {
                let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
                format!("{dir}{ref_path}")
            };
            let mut resource = remove_dot_segments(&merged);
            if let Some(q) = ref_query {
                resource.push('?');
                resource.push_str(q);
            }
            resource
        };
        format!("{scheme}://{}:{}{resource}", current.host(), current.port())
    };
    current.retarget(&target).map_err(invalid)
}

/// The scheme of an absolute URL and what follows its colon (RFC 3986 §3.1:
/// a letter, then letters, digits, `+`, `-` or `.`).
fn split_scheme(reference: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = reference.split_once(':')?;
    let mut bytes = scheme.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    // A colon after a slash or a question mark (in a path or a query)
    // leaves no valid scheme before it.
    valid.then_some((scheme, rest))
}

/// A path without its `.` and `..` segments (RFC 3986 §5.2.4).
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    // The first segment is the empty one before the leading slash.
    for (i, segment) in segments.iter().enumerate().skip(1) {
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                // A path that ends in a dot segment names a directory.
                if i == last {
                    out.push("");
                }
            }
            segment => out.push(segment),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::UriError;

    fn resolved(base: &str, location: &str) -> Result<String, Error> {
        let current = ClientRequest::new(base).unwrap();
        resolve(&current, location).map(|r| {
            let scheme = if r.is_secure() { "wss" } else { "ws" };
            format!("{scheme}://{}:{}{}", r.host(), r.port(), r.resource())
        })
    }

    #[test]
    fn absolute_locations_map_http_schemes_to_websocket_ones() {
        let base = "ws://a.example/x";
        for (location, expected) in [
            ("ws://b.example/y", "ws://b.example:80/y"),
            ("WSS://b.example:8443/y?q", "wss://b.example:8443/y?q"),
            ("http://b.example/y", "ws://b.example:80/y"),
            ("https://b.example", "wss://b.example:443/"),
            ("https://[::1]:9/z#frag", "wss://[::1]:9/z"),
        ] {
            assert_eq!(resolved(base, location).unwrap(), expected, "{location}");
        }
        for location in ["ftp://b.example/", "mailto:x@b.example", "http:/path"] {
            assert!(
                matches!(resolved(base, location), Err(Error::InvalidRedirect { .. })),
                "{location}"
            );
        }
        assert!(matches!(
            resolved(base, "ws://user@b.example/"),
            Err(Error::InvalidRedirect {
                source: UriError::UserInfo,
                ..
            })
        ));
    }

    #[test]
    fn relative_locations_keep_the_scheme_host_and_port() {
        let base = "wss://a.example:8443/dir/sub/page?old=1";
        for (location, expected) in [
            ("/root", "wss://a.example:8443/root"),
            ("/root?q=2", "wss://a.example:8443/root?q=2"),
            ("next", "wss://a.example:8443/dir/sub/next"),
            ("./next", "wss://a.example:8443/dir/sub/next"),
            ("../up", "wss://a.example:8443/dir/up"),
            ("../../../../top", "wss://a.example:8443/top"),
            ("..", "wss://a.example:8443/dir/"),
            ("?q=3", "wss://a.example:8443/dir/sub/page?q=3"),
            ("", "wss://a.example:8443/dir/sub/page?old=1"),
            ("//b.example/other", "wss://b.example:443/other"),
            ("/a/./b/../c", "wss://a.example:8443/a/c"),
        ] {
            assert_eq!(resolved(base, location).unwrap(), expected, "{location}");
        }
        assert_eq!(
            resolved("ws://[::1]:9000/", "/v6").unwrap(),
            "ws://[::1]:9000/v6"
        );
    }

    #[test]
    fn each_hop_keeps_the_request_but_its_target() {
        let current = ClientRequest::new("ws://a.example/x")
            .unwrap()
            .origin("https://app.example")
            .protocol("chat")
            .header("X-Token", "t");
        let next = resolve(&current, "https://b.example:444/y").unwrap();
        let expected = ClientRequest::new("wss://b.example:444/y")
            .unwrap()
            .origin("https://app.example")
            .protocol("chat")
            .header("X-Token", "t");
        assert_eq!(next, expected);
    }

    fn rejected(status: u16, location: Option<&str>) -> Error {
        let mut raw = format!("HTTP/1.1 {status} X\r\n");
        if let Some(location) = location {
            raw.push_str(&format!("Location: {location}\r\n"));
        }
        raw.push_str("\r\n");
        let request = ClientRequest::new("ws://a.example/").unwrap();
        let mut out = Vec::new();
        let expected = request.encode([0; 16], &mut out);
        let e = crate::handshake::parse_response(raw.as_bytes(), &expected, 4096, 32).unwrap_err();
        Error::WebSocket(e.into())
    }

    #[test]
    fn which_answers_are_followed() {
        let connector = Connector::new().max_redirects(2);
        let current = ClientRequest::new("wss://a.example/").unwrap();
        let mut count = 0;
        for status in [301, 302, 303, 307, 308] {
            count = 0;
            let next = connector
                .follow(&current, &mut count, rejected(status, Some("/next")))
                .unwrap();
            assert_eq!((next.resource(), count), ("/next", 1));
        }
        // Other statuses, and a 3xx without Location, are the rejection itself.
        for error in [
            rejected(300, Some("/next")),
            rejected(304, Some("/next")),
            rejected(404, Some("/next")),
            rejected(302, None),
        ] {
            assert!(matches!(
                connector.follow(&current, &mut count, error),
                Err(Error::WebSocket(crate::Error::Handshake(
                    HandshakeError::Rejected(_)
                )))
            ));
        }
        // A downgrade is refused, an upgrade followed.
        assert!(matches!(
            connector.follow(&current, &mut 0, rejected(302, Some("ws://a.example/"))),
            Err(Error::InsecureRedirect { .. })
        ));
        assert!(matches!(
            connector.follow(&current, &mut 0, rejected(302, Some("http://a.example/"))),
            Err(Error::InsecureRedirect { .. })
        ));
        let plain = ClientRequest::new("ws://a.example/").unwrap();
        let next = connector
            .follow(&plain, &mut 0, rejected(302, Some("https://a.example/")))
            .unwrap();
        assert!(next.is_secure());
        // The count reaches the maximum, then the next redirect is an error.
        assert!(matches!(
            connector.follow(&current, &mut 2, rejected(302, Some("/again"))),
            Err(Error::TooManyRedirects { max: 2, ref location }) if location == "/again"
        ));
        // No redirects at all: the 3xx is the answer.
        assert!(matches!(
            Connector::new().max_redirects(0).follow(
                &current,
                &mut 0,
                rejected(302, Some("/next"))
            ),
            Err(Error::WebSocket(crate::Error::Handshake(
                HandshakeError::Rejected(r)
            ))) if r.status == 302
        ));
    }
}
