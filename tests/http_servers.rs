//! The axum and hyper example servers (`examples/axum_server.rs`,
//! `examples/hyper_server.rs`), each run in-process on a loopback port and
//! driven by real clients: wsmachine's tokio client, tokio-tungstenite, and
//! raw HTTP for the refusals.
#![cfg(all(feature = "tokio", feature = "http", feature = "deflate"))]

#[allow(dead_code)]
#[path = "../examples/axum_server.rs"]
mod axum_server;

#[allow(dead_code)]
#[path = "../examples/hyper_server.rs"]
mod hyper_server;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use wsmachine::adapter::Error;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::handshake::{ClientRequest, HandshakeError};
use wsmachine::{CloseCode, Config, Initiator, OwnedEvent};

/// Runs `serve` on a fresh loopback listener; the task ends with the test's runtime.
async fn start<F>(serve: fn(TcpListener) -> F) -> SocketAddr
where
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener));
    addr
}

/// A TCP stream that counts the bytes it reads: what came over the wire.
struct Counting {
    stream: TcpStream,
    received: usize,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.received += buf.filled().len() - before;
        poll
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Connects wsmachine's client to `/ws`, offering permessage-deflate when
/// `config` does (the default does).
async fn connect(
    addr: SocketAddr,
    request: ClientRequest,
    config: Config,
) -> Result<WebSocket<Counting>, Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let stream = Counting {
        stream,
        received: 0,
    };
    WebSocket::connect(stream, &request, config).await
}

fn ws_request(addr: SocketAddr) -> ClientRequest {
    ClientRequest::new(&format!("ws://{addr}/ws")).unwrap()
}

/// 1 MiB that does not compress (xorshift).
fn noise() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// wsmachine's client: `chat` selected, permessage-deflate negotiated and in
/// force both ways, text and binary echoed, a clean close.
async fn wsmachine_client(addr: SocketAddr) {
    let request = ws_request(addr)
        .origin(&format!("http://localhost:{}", addr.port()))
        .protocol("superchat")
        .protocol("chat");
    let mut ws = connect(addr, request, Config::default()).await.unwrap();
    let negotiated = ws.connection().negotiated();
    assert_eq!(negotiated.protocol.as_deref(), Some("chat"));
    let extensions = negotiated.extensions.as_deref().unwrap_or_default();
    assert!(
        extensions.starts_with("permessage-deflate"),
        "no permessage-deflate: {extensions:?}"
    );

    ws.send_text("hello, wsmachine").await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        OwnedEvent::Text("hello, wsmachine".into())
    );
    ws.send_binary(&[0, 1, 2, 255]).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        OwnedEvent::Binary(vec![0, 1, 2, 255])
    );
    let noise = noise();
    ws.send_binary(&noise).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Binary(noise));

    // 1 MiB of text that compresses well: the client sends it compressed (the
    // server inflates it, or the echo would fail) and the echo comes back
    // compressed, in far fewer bytes than it holds.
    let text = "the quick brown fox jumps over the lazy dog; ".repeat((1 << 20) / 45);
    let before = ws.get_ref().received;
    ws.send_text(&text).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Text(text.clone()));
    let wire = ws.get_ref().received - before;
    assert!(
        wire < text.len() / 20,
        "the echo of {} bytes took {wire} bytes: not compressed",
        text.len()
    );

    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    match ws.recv().await.unwrap() {
        OwnedEvent::Closed(info) => {
            assert!(info.is_clean(), "{info:?}");
            assert_eq!(info.initiator(), Initiator::Local);
            assert_eq!(info.code(), CloseCode::NORMAL);
        }
        other => panic!("expected the close, got {other:?}"),
    }
    // The server closes the TCP connection after the closing handshake.
    ws.close_transport().await.unwrap();
}

/// wsmachine's client offering neither `chat` nor permessage-deflate: no
/// subprotocol (the client would fail on one it did not offer) and no extension.
async fn nothing_offered(addr: SocketAddr) {
    let mut config = Config::default();
    config.deflate = None;
    let request = ws_request(addr).protocol("superchat");
    let mut ws = connect(addr, request, config).await.unwrap();
    assert_eq!(ws.connection().negotiated().protocol, None);
    assert_eq!(ws.connection().negotiated().extensions, None);
    ws.send_text("plain").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Text("plain".into()));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(info) if info.is_clean()));
}

/// tokio-tungstenite as the client: `chat` selected, no extension (it offers
/// none), text and a 1 MiB binary echoed, a clean close.
async fn tungstenite_client(addr: SocketAddr) {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
    headers.insert("Origin", "http://127.0.0.1".parse().unwrap());
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert!(!response.headers().contains_key("sec-websocket-extensions"));

    ws.send(Message::text("hello, tungstenite")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("hello, tungstenite")
    );
    let noise = noise();
    ws.send(Message::binary(noise.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(noise));

    ws.close(None).await.unwrap();
    // The server's close echo, then the end of the stream.
    match ws.next().await {
        Some(Ok(Message::Close(_))) => {}
        other => panic!("expected the close echo, got {other:?}"),
    }
    assert!(ws.next().await.is_none());
}

/// The status of a refused wsmachine client.
async fn refused(addr: SocketAddr, request: ClientRequest) -> u16 {
    match connect(addr, request, Config::default()).await {
        Err(Error::WebSocket(wsmachine::Error::Handshake(HandshakeError::Rejected(response)))) => {
            response.status
        }
        Err(e) => panic!("not a refusal: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

/// Sends `request` as it is and reads the response's head, lower-cased.
async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "{head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head)
}

fn upgrade_request(version: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
}

/// Refusals: a foreign Origin gets 403, invalid upgrades the status of
/// wsmachine's error.
async fn refusals(addr: SocketAddr) {
    for origin in [
        "http://evil.example",
        "http://localhost.evil.example",
        "https://localhost",
        "null",
    ] {
        let request = ws_request(addr).origin(origin).protocol("chat");
        assert_eq!(refused(addr, request).await, 403, "{origin}");
    }

    // The valid request, raw: accepted, without a protocol or extension.
    let (status, head) = raw(addr, &upgrade_request("13")).await;
    assert_eq!(status, 101, "{head}");
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"));
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
    assert!(!head.contains("sec-websocket-extensions"), "{head}");

    // RFC 6455 §4.4: another version gets 426 and the version spoken.
    let (status, head) = raw(addr, &upgrade_request("8")).await;
    assert_eq!(status, 426, "{head}");
    assert!(head.contains("sec-websocket-version: 13\r\n"), "{head}");

    // No key: 400.
    let (status, head) = raw(
        addr,
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{head}");

    // A plain GET, no upgrade: 400.
    let (status, head) = raw(addr, "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(status, 400, "{head}");
}

/// Runs `check` against a server, within a time limit.
async fn within_limit(check: impl Future<Output = ()>) {
    timeout(Duration::from_secs(60), check)
        .await
        .expect("timed out");
}

#[tokio::test]
async fn axum_wsmachine_client() {
    within_limit(wsmachine_client(start(axum_server::serve).await)).await;
}

#[tokio::test]
async fn axum_nothing_offered() {
    within_limit(nothing_offered(start(axum_server::serve).await)).await;
}

#[tokio::test]
async fn axum_tungstenite_client() {
    within_limit(tungstenite_client(start(axum_server::serve).await)).await;
}

#[tokio::test]
async fn axum_refusals() {
    within_limit(refusals(start(axum_server::serve).await)).await;
}

#[tokio::test]
async fn axum_plain_http_on_root() {
    within_limit(async {
        let addr = start(axum_server::serve).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("WebSocket echo on /ws\n"), "{response}");
    })
    .await;
}

#[tokio::test]
async fn hyper_wsmachine_client() {
    within_limit(wsmachine_client(start(hyper_server::serve).await)).await;
}

#[tokio::test]
async fn hyper_nothing_offered() {
    within_limit(nothing_offered(start(hyper_server::serve).await)).await;
}

#[tokio::test]
async fn hyper_tungstenite_client() {
    within_limit(tungstenite_client(start(hyper_server::serve).await)).await;
}

#[tokio::test]
async fn hyper_refusals() {
    within_limit(refusals(start(hyper_server::serve).await)).await;
}

#[tokio::test]
async fn hyper_other_paths_are_not_found() {
    within_limit(async {
        let addr = start(hyper_server::serve).await;
        let (status, head) = raw(addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert_eq!(status, 404, "{head}");
    })
    .await;
}
