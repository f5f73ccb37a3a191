//! The adapters' URL connectors (`adapter::Connector`, `adapter::tokio::connect`,
//! `adapter::blocking::connect`) over loopback: custom headers, redirects,
//! TLS (feature `rustls`) and the connect timeout, against tiny in-test servers.
#![cfg(any(feature = "tokio", feature = "blocking"))]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wsmachine::adapter::Error;
use wsmachine::handshake::{Accept, ClientRequest, HandshakeError, Request};

/// What a WebSocket server saw of the request it accepted.
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    path: String,
    custom: Option<String>,
    protocols: Vec<String>,
    origin: Option<String>,
}

impl Seen {
    fn of(request: &Request) -> Self {
        Self {
            path: request.path().to_owned(),
            custom: request.headers().get_str("x-custom").map(str::to_owned),
            protocols: request.protocols().map(str::to_owned).collect(),
            origin: request.origin().map(str::to_owned),
        }
    }

    /// What a server sees of [`request`]'s request at `path`.
    fn expected(path: &str) -> Self {
        Self {
            path: path.into(),
            custom: Some("yes".into()),
            protocols: vec!["echo".into()],
            origin: Some("https://app.example".into()),
        }
    }
}

/// A request to `url` with a custom header, a subprotocol and an origin.
fn request(url: &str) -> ClientRequest {
    ClientRequest::new(url)
        .unwrap()
        .header("X-Custom", "yes")
        .protocol("echo")
        .origin("https://app.example")
}

/// The server's side: accepts any request, selecting its first subprotocol.
fn accept(request: &Request, seen: &Mutex<Option<Seen>>) -> Accept {
    *seen.lock().unwrap() = Some(Seen::of(request));
    match request.protocols().next() {
        Some(protocol) => Accept::new().protocol(protocol),
        None => Accept::new(),
    }
}

/// Reads an HTTP request's head, to its empty line.
fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A redirect, as a server writes it.
fn redirect_response(status: u16, location: &str) -> String {
    format!(
        "HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// A plain HTTP server, on a thread, that answers every request with
/// `status` and `Location: location`, and keeps the heads of the requests.
struct Redirector {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Redirector {
    fn start(status: u16, location: impl Fn() -> String + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let head = read_head(&mut stream);
                // Counted before the answer: a client that has it sees the count.
                log.lock().unwrap().push(head);
                let _ = stream.write_all(redirect_response(status, &location()).as_bytes());
            }
        });
        Self { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A listener, on a thread, that counts the connections it accepts.
fn counting_listener() -> (u16, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(Mutex::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            *counter.lock().unwrap() += 1;
            drop(stream);
        }
    });
    (port, count)
}

/// A listener, on a thread, that accepts connections and never answers
/// (nor closes them).
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

/// The connect timeout of the timeout tests, and the bounds on when they end
/// (a socket timeout may round a little).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const EARLY: Duration = Duration::from_millis(250);
const LATE: Duration = Duration::from_secs(5);

/// A certificate for `localhost` and 127.0.0.1, a server config with it, and
/// a client config that trusts it and nothing else.
#[cfg(feature = "rustls")]
mod tls {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    pub fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let cert_der: CertificateDer<'static> = cert.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert_der).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }
}

#[cfg(feature = "tokio")]
mod on_tokio {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;
    use tokio::time::timeout;
    use wsmachine::adapter::Connector;
    use wsmachine::adapter::tokio::{MaybeTlsStream, WebSocket, connect};
    use wsmachine::{CloseCode, Config, OwnedEvent};

    use super::*;

    /// Serves one WebSocket connection over `stream`: echoes until the close,
    /// and returns what it saw of the request.
    async fn echo<S>(stream: S) -> Seen
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let seen = Mutex::new(None);
        let mut ws = WebSocket::accept_with(stream, Config::default(), |r| Ok(accept(r, &seen)))
            .await
            .unwrap();
        loop {
            match ws.recv().await.unwrap() {
                OwnedEvent::Text(text) => ws.send_text(&text).await.unwrap(),
                OwnedEvent::Closed(_) => break,
                _ => {}
            }
        }
        seen.into_inner().unwrap().unwrap()
    }

    /// A plain echo server for one connection.
    async fn echo_server() -> (u16, JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move { echo(listener.accept().await.unwrap().0).await });
        (port, task)
    }

    /// Sends a text, expects it back, and closes.
    async fn echo_once(ws: &mut WebSocket<MaybeTlsStream>) {
        ws.send_text("ping over the connector").await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap(),
            OwnedEvent::Text("ping over the connector".into())
        );
        assert_eq!(
            ws.connection().negotiated().protocol.as_deref(),
            Some("echo")
        );
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        while !matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(_)) {}
    }

    async fn bounded<F: Future>(test: F) -> F::Output {
        timeout(Duration::from_secs(20), test)
            .await
            .expect("the test took over 20 s")
    }

    /// (a) A plain `ws://` connect sends the request's header fields.
    #[tokio::test]
    async fn a_plain_connect_sends_custom_headers() {
        bounded(async {
            let (port, server) = echo_server().await;
            let request = request(&format!("ws://127.0.0.1:{port}/plain?q=1"));
            let mut ws = connect(&request, Config::default()).await.unwrap();
            assert!(matches!(ws.get_ref(), MaybeTlsStream::Plain(_)));
            echo_once(&mut ws).await;
            assert_eq!(server.await.unwrap(), Seen::expected("/plain?q=1"));
        })
        .await;
    }

    /// A connect timeout too long for `Instant` is no timeout: the deadline
    /// is not added unchecked (it panicked with `Duration::MAX`).
    #[tokio::test]
    async fn an_endless_connect_timeout_connects() {
        bounded(async {
            let (port, server) = echo_server().await;
            let request = request(&format!("ws://127.0.0.1:{port}/endless"));
            let mut ws = Connector::new()
                .connect_timeout(Duration::MAX)
                .connect_tokio(&request, Config::default())
                .await
                .unwrap();
            echo_once(&mut ws).await;
            assert_eq!(server.await.unwrap(), Seen::expected("/endless"));
        })
        .await;
    }

    /// The connect future can be spawned.
    #[tokio::test]
    async fn the_connect_future_is_send() {
        bounded(async {
            let (port, server) = echo_server().await;
            let request = request(&format!("ws://localhost:{port}/spawned"));
            let mut ws = tokio::spawn(async move {
                Connector::new()
                    .connect_tokio(&request, Config::default())
                    .await
            })
            .await
            .unwrap()
            .unwrap();
            echo_once(&mut ws).await;
            assert_eq!(server.await.unwrap().path, "/spawned");
        })
        .await;
    }

    /// (b) A 302, then a 307, then the WebSocket server: followed, every hop
    /// with the original request's headers, subprotocols and origin.
    #[tokio::test]
    async fn a_redirect_chain_is_followed() {
        bounded(async {
            let (port, server) = echo_server().await;
            let second = Redirector::start(307, move || format!("ws://127.0.0.1:{port}/final?x=1"));
            let second_port = second.port;
            // An http URL is taken as ws.
            let first = Redirector::start(302, move || {
                format!("http://127.0.0.1:{second_port}/second")
            });
            let request = request(&format!("ws://127.0.0.1:{}/first", first.port));
            let mut ws = connect(&request, Config::default()).await.unwrap();
            echo_once(&mut ws).await;
            assert_eq!(server.await.unwrap(), Seen::expected("/final?x=1"));
            for (redirector, path) in [(&first, "/first"), (&second, "/second")] {
                let requests = redirector.requests();
                assert_eq!(requests.len(), 1);
                let head = &requests[0];
                assert!(
                    head.starts_with(&format!("GET {path} HTTP/1.1\r\n")),
                    "{head}"
                );
                for field in [
                    "X-Custom: yes",
                    "Sec-WebSocket-Protocol: echo",
                    "Origin: https://app.example",
                ] {
                    assert!(head.contains(field), "{field} missing from {head}");
                }
            }
        })
        .await;
    }

    /// (c) A redirect loop ends at the maximum: the first request and `max`
    /// redirects, then the error.
    #[tokio::test]
    async fn a_redirect_loop_ends_at_the_maximum() {
        bounded(async {
            let looping = Redirector::start(302, || "/loop".into());
            let request = request(&format!("ws://127.0.0.1:{}/start", looping.port));
            let err = Connector::new()
                .max_redirects(3)
                .connect_tokio(&request, Config::default())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::TooManyRedirects { max: 3, location } if location == "/loop"),
                "{err:?}"
            );
            let requests = looping.requests();
            assert_eq!(requests.len(), 4);
            assert!(requests[0].starts_with("GET /start "));
            assert!(requests[1..].iter().all(|r| r.starts_with("GET /loop ")));
        })
        .await;
    }

    /// (d) With redirects off, a 3xx is the rejection it is.
    #[tokio::test]
    async fn no_redirects_returns_the_3xx() {
        bounded(async {
            let (target, count) = counting_listener();
            let redirector = Redirector::start(301, move || format!("ws://127.0.0.1:{target}/"));
            let request = request(&format!("ws://127.0.0.1:{}/", redirector.port));
            let err = Connector::new()
                .max_redirects(0)
                .connect_tokio(&request, Config::default())
                .await
                .unwrap_err();
            match err {
                Error::WebSocket(wsmachine::Error::Handshake(HandshakeError::Rejected(
                    response,
                ))) => {
                    assert_eq!(response.status, 301);
                    assert_eq!(
                        response.location(),
                        Some(format!("ws://127.0.0.1:{target}/").as_str())
                    );
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(redirector.requests().len(), 1);
            assert_eq!(*count.lock().unwrap(), 0);
        })
        .await;
    }

    /// (g) A server that takes the TCP connection but never answers the
    /// handshake: the connect ends with the timeout, in about its time.
    #[tokio::test]
    async fn the_connect_timeout_ends_a_silent_handshake() {
        bounded(async {
            let port = silent_listener();
            let request = request(&format!("ws://127.0.0.1:{port}/"));
            let start = Instant::now();
            let err = Connector::new()
                .connect_timeout(CONNECT_TIMEOUT)
                .connect_tokio(&request, Config::default())
                .await
                .unwrap_err();
            let took = start.elapsed();
            assert!(
                matches!(err, Error::ConnectTimeout(d) if d == CONNECT_TIMEOUT),
                "{err:?}"
            );
            assert!(took >= EARLY && took < LATE, "ended after {took:?}");
        })
        .await;
    }

    /// Without the `rustls` feature, `wss://` is a typed error, before any I/O.
    #[cfg(not(feature = "rustls"))]
    #[tokio::test]
    async fn wss_needs_the_rustls_feature() {
        let (port, count) = counting_listener();
        let request = request(&format!("wss://127.0.0.1:{port}/"));
        let err = connect(&request, Config::default()).await.unwrap_err();
        assert!(matches!(err, Error::TlsUnavailable), "{err:?}");
        assert_eq!(*count.lock().unwrap(), 0);
    }

    #[cfg(feature = "rustls")]
    mod wss {
        use std::sync::Arc;

        use tokio_rustls::TlsAcceptor;

        use super::super::tls;
        use super::*;

        /// A wss server that runs TLS on each connection, then `serve`.
        async fn tls_server<F, Fut>(serve: F) -> (u16, Arc<rustls::ClientConfig>, JoinHandle<()>)
        where
            F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
            Fut: Future<Output = ()> + Send,
        {
            let (server_config, client_config) = tls::configs();
            let acceptor = TlsAcceptor::from(server_config);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let task = tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                // A client that refuses the certificate ends TLS here.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls).await;
                }
            });
            (port, client_config, task)
        }

        /// (f) `wss://` with a `rustls::ClientConfig` that trusts the
        /// server's certificate: TLS, the handshake, an echo.
        #[tokio::test]
        async fn wss_with_a_custom_client_config_echoes() {
            bounded(async {
                let seen = Arc::new(Mutex::new(None));
                let record = seen.clone();
                let (port, client_config, server) = tls_server(move |tls| {
                    let record = record.clone();
                    async move { *record.lock().unwrap() = Some(echo(tls).await) }
                })
                .await;
                // By name: resolved, and the certificate checked for localhost.
                let request = request(&format!("wss://localhost:{port}/secure"));
                let mut ws = Connector::new()
                    .tls_config(client_config)
                    .connect_tokio(&request, Config::default())
                    .await
                    .unwrap();
                assert!(matches!(ws.get_ref(), MaybeTlsStream::Tls(_)));
                echo_once(&mut ws).await;
                server.await.unwrap();
                assert_eq!(
                    seen.lock().unwrap().clone().unwrap(),
                    Seen::expected("/secure")
                );
            })
            .await;
        }

        /// The default trust roots (webpki-roots) do not trust a self-signed
        /// certificate: TLS fails, as an I/O error.
        #[tokio::test]
        async fn the_default_roots_refuse_a_self_signed_certificate() {
            bounded(async {
                let (port, _, _server) = tls_server(|_| async {}).await;
                let request = request(&format!("wss://127.0.0.1:{port}/"));
                let err = connect(&request, Config::default()).await.unwrap_err();
                assert!(matches!(err, Error::Io(_)), "{err:?}");
                assert!(err.to_string().contains("certificate"), "{err}");
            })
            .await;
        }

        /// (e) A wss server that redirects to `ws://`: refused as a downgrade,
        /// and the ws target never sees a connection.
        #[tokio::test]
        async fn a_redirect_from_wss_to_ws_is_refused() {
            bounded(async {
                let (target, count) = counting_listener();
                let location = format!("ws://127.0.0.1:{target}/plain");
                let answer = redirect_response(302, &location);
                let heads = Arc::new(Mutex::new(Vec::new()));
                let log = heads.clone();
                let (port, client_config, server) = tls_server(move |mut tls| {
                    let answer = answer.clone();
                    let log = log.clone();
                    async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut head = Vec::new();
                        while !head.ends_with(b"\r\n\r\n") {
                            head.push(tls.read_u8().await.unwrap());
                        }
                        log.lock().unwrap().push(String::from_utf8(head).unwrap());
                        tls.write_all(answer.as_bytes()).await.unwrap();
                        tls.shutdown().await.unwrap();
                    }
                })
                .await;
                let request = request(&format!("wss://localhost:{port}/secure"));
                let err = Connector::new()
                    .tls_config(client_config)
                    .connect_tokio(&request, Config::default())
                    .await
                    .unwrap_err();
                assert!(
                    matches!(&err, Error::InsecureRedirect { location: l } if *l == location),
                    "{err:?}"
                );
                server.await.unwrap();
                assert_eq!(heads.lock().unwrap().len(), 1);
                // Give a connection that was (wrongly) on its way time to land.
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert_eq!(*count.lock().unwrap(), 0);
            })
            .await;
        }
    }
}

#[cfg(feature = "blocking")]
mod on_blocking {
    use std::sync::Mutex;
    use std::sync::mpsc;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use wsmachine::adapter::Connector;
    use wsmachine::adapter::blocking::{MaybeTlsStream, ReadTimeout, WebSocket, connect};
    use wsmachine::{CloseCode, Config, OwnedEvent};

    use super::*;

    /// Runs `test` on a thread, and fails if it takes over 20 s.
    fn bounded(test: impl FnOnce() + Send + 'static) {
        let (done, finished) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            test();
            let _ = done.send(());
        });
        match finished.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => thread.join().unwrap(),
            // The thread panicked: its panic is the failure.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::panic::resume_unwind(thread.join().unwrap_err())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test took over 20 s"),
        }
    }

    /// Serves one WebSocket connection over `stream`: echoes until the close,
    /// and returns what it saw of the request.
    fn echo<S: Read + Write + ReadTimeout>(stream: S) -> Seen {
        let seen = Mutex::new(None);
        let mut ws =
            WebSocket::accept_with(stream, Config::default(), |r| Ok(accept(r, &seen))).unwrap();
        loop {
            match ws.recv().unwrap() {
                OwnedEvent::Text(text) => ws.send_text(&text).unwrap(),
                OwnedEvent::Closed(_) => break,
                _ => {}
            }
        }
        seen.into_inner().unwrap().unwrap()
    }

    /// A plain echo server for one connection, on a thread.
    fn echo_server() -> (u16, JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || echo(listener.accept().unwrap().0));
        (port, thread)
    }

    /// Sends a text, expects it back, and closes.
    fn echo_once(ws: &mut WebSocket<MaybeTlsStream>) {
        ws.send_text("ping over the connector").unwrap();
        assert_eq!(
            ws.recv().unwrap(),
            OwnedEvent::Text("ping over the connector".into())
        );
        assert_eq!(
            ws.connection().negotiated().protocol.as_deref(),
            Some("echo")
        );
        ws.close(CloseCode::NORMAL, "").unwrap();
        while !matches!(ws.recv().unwrap(), OwnedEvent::Closed(_)) {}
    }

    /// (a) A plain `ws://` connect sends the request's header fields.
    #[test]
    fn a_plain_connect_sends_custom_headers() {
        bounded(|| {
            let (port, server) = echo_server();
            let request = request(&format!("ws://127.0.0.1:{port}/plain"));
            let mut ws = connect(&request, Config::default()).unwrap();
            assert!(matches!(ws.get_ref(), MaybeTlsStream::Plain(_)));
            echo_once(&mut ws);
            assert_eq!(server.join().unwrap(), Seen::expected("/plain"));
        });
    }

    /// (b) A 302, then a 307, then the WebSocket server: followed, every hop
    /// with the original request's header fields.
    #[test]
    fn a_redirect_chain_is_followed() {
        bounded(|| {
            let (port, server) = echo_server();
            let second = Redirector::start(307, move || format!("ws://127.0.0.1:{port}/final"));
            let second_port = second.port;
            let first = Redirector::start(302, move || {
                format!("http://localhost:{second_port}/second")
            });
            let request = request(&format!("ws://127.0.0.1:{}/first", first.port));
            let mut ws = connect(&request, Config::default()).unwrap();
            echo_once(&mut ws);
            assert_eq!(server.join().unwrap(), Seen::expected("/final"));
            for (redirector, path) in [(&first, "/first"), (&second, "/second")] {
                let requests = redirector.requests();
                assert_eq!(requests.len(), 1);
                assert!(requests[0].starts_with(&format!("GET {path} HTTP/1.1\r\n")));
                assert!(requests[0].contains("X-Custom: yes"), "{}", requests[0]);
            }
        });
    }

    /// (c) A redirect loop ends at the maximum.
    #[test]
    fn a_redirect_loop_ends_at_the_maximum() {
        bounded(|| {
            let looping = Redirector::start(308, || "loop".into());
            let request = request(&format!("ws://127.0.0.1:{}/dir/start", looping.port));
            let err = Connector::new()
                .max_redirects(2)
                .connect_blocking(&request, Config::default())
                .unwrap_err();
            assert!(
                matches!(&err, Error::TooManyRedirects { max: 2, .. }),
                "{err:?}"
            );
            let requests = looping.requests();
            assert_eq!(requests.len(), 3);
            // A relative reference resolves against the current path.
            assert!(
                requests[1..]
                    .iter()
                    .all(|r| r.starts_with("GET /dir/loop "))
            );
        });
    }

    /// (d) With redirects off, a 3xx is the rejection it is.
    #[test]
    fn no_redirects_returns_the_3xx() {
        bounded(|| {
            let (target, count) = counting_listener();
            let redirector = Redirector::start(302, move || format!("ws://127.0.0.1:{target}/"));
            let request = request(&format!("ws://127.0.0.1:{}/", redirector.port));
            let err = Connector::new()
                .max_redirects(0)
                .connect_blocking(&request, Config::default())
                .unwrap_err();
            assert!(
                matches!(
                    &err,
                    Error::WebSocket(wsmachine::Error::Handshake(HandshakeError::Rejected(r)))
                        if r.status == 302
                ),
                "{err:?}"
            );
            assert_eq!(redirector.requests().len(), 1);
            assert_eq!(*count.lock().unwrap(), 0);
        });
    }

    /// (g) A server that never answers the handshake: the connect ends with
    /// the timeout, in about its time.
    #[test]
    fn the_connect_timeout_ends_a_silent_handshake() {
        bounded(|| {
            let port = silent_listener();
            let request = request(&format!("ws://127.0.0.1:{port}/"));
            let start = Instant::now();
            let err = Connector::new()
                .connect_timeout(CONNECT_TIMEOUT)
                .connect_blocking(&request, Config::default())
                .unwrap_err();
            let took = start.elapsed();
            assert!(
                matches!(err, Error::ConnectTimeout(d) if d == CONNECT_TIMEOUT),
                "{err:?}"
            );
            assert!(took >= EARLY && took < LATE, "ended after {took:?}");
        });
    }

    /// Without the `rustls` feature, `wss://` is a typed error, before any I/O.
    #[cfg(not(feature = "rustls"))]
    #[test]
    fn wss_needs_the_rustls_feature() {
        let (port, count) = counting_listener();
        let request = request(&format!("wss://127.0.0.1:{port}/"));
        let err = connect(&request, Config::default()).unwrap_err();
        assert!(matches!(err, Error::TlsUnavailable), "{err:?}");
        assert_eq!(*count.lock().unwrap(), 0);
    }

    #[cfg(feature = "rustls")]
    mod wss {
        use std::net::TcpStream;

        use wsmachine::adapter::blocking::NoTimeout;

        use super::super::tls;
        use super::*;

        /// A wss server on a thread: TLS on one connection, then `serve`.
        fn tls_server<T: Send + 'static>(
            serve: impl FnOnce(rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> T
            + Send
            + 'static,
        ) -> (u16, Arc<rustls::ClientConfig>, JoinHandle<T>) {
            let (server_config, client_config) = tls::configs();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let thread = std::thread::spawn(move || {
                let (tcp, _) = listener.accept().unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let tls = rustls::ServerConnection::new(server_config).unwrap();
                serve(rustls::StreamOwned::new(tls, tcp))
            });
            (port, client_config, thread)
        }

        /// (f) `wss://` with a client config that trusts the server's
        /// certificate: TLS, the handshake, an echo.
        #[test]
        fn wss_with_a_custom_client_config_echoes() {
            bounded(|| {
                let (port, client_config, server) = tls_server(|tls| echo(NoTimeout(tls)));
                let request = request(&format!("wss://localhost:{port}/secure"));
                let mut ws = Connector::new()
                    .tls_config(client_config)
                    .connect_blocking(&request, Config::default())
                    .unwrap();
                assert!(matches!(ws.get_ref(), MaybeTlsStream::Tls(_)));
                echo_once(&mut ws);
                assert_eq!(server.join().unwrap(), Seen::expected("/secure"));
            });
        }

        /// (e) A redirect from wss to ws is refused; the ws target sees no
        /// connection.
        #[test]
        fn a_redirect_from_wss_to_ws_is_refused() {
            bounded(|| {
                let (target, count) = counting_listener();
                let location = format!("http://127.0.0.1:{target}/plain");
                let answer = redirect_response(303, &location);
                let (port, client_config, server) = tls_server(move |mut tls| {
                    let head = read_head(&mut tls);
                    tls.write_all(answer.as_bytes()).unwrap();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    head
                });
                let request = request(&format!("wss://127.0.0.1:{port}/secure"));
                let err = Connector::new()
                    .tls_config(client_config)
                    .connect_blocking(&request, Config::default())
                    .unwrap_err();
                assert!(
                    matches!(&err, Error::InsecureRedirect { location: l } if *l == location),
                    "{err:?}"
                );
                assert!(server.join().unwrap().starts_with("GET /secure "));
                std::thread::sleep(Duration::from_millis(100));
                assert_eq!(*count.lock().unwrap(), 0);
            });
        }

        /// The connect timeout covers TLS: a server that takes the TCP
        /// connection but never answers the TLS handshake.
        #[test]
        fn the_connect_timeout_covers_tls() {
            bounded(|| {
                let port = silent_listener();
                let request = request(&format!("wss://127.0.0.1:{port}/"));
                let start = Instant::now();
                let err = Connector::new()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .tls_config(tls::configs().1)
                    .connect_blocking(&request, Config::default())
                    .unwrap_err();
                let took = start.elapsed();
                assert!(matches!(err, Error::ConnectTimeout(_)), "{err:?}");
                assert!(took >= EARLY && took < LATE, "ended after {took:?}");
            });
        }
    }
}
