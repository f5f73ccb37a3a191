//! WebSocket over HTTP/2 (RFC 8441) with the `h2` crate: a server that
//! enables the extended CONNECT and echoes, and a client that opens a
//! WebSocket on one stream of an HTTP/2 connection and exchanges messages
//! with it (permessage-deflate and a subprotocol included).
//!
//! ```sh
//! cargo run --example h2 --features tokio,http                  # both, over loopback
//! cargo run --example h2 --features tokio,http -- server 127.0.0.1:9002
//! cargo run --example h2 --features tokio,http -- client 127.0.0.1:9002
//! ```
//!
//! This runs HTTP/2 over plain TCP ("prior knowledge", h2c), as loopback
//! tests do; for `wss` wrap the TCP stream in TLS with ALPN `h2` (see
//! `examples/wss.rs` for rustls) and nothing else changes. wsmachine's part
//! is small: [`Request::from_extended_connect`] and
//! [`accept_extended_connect`] on the server, [`ClientRequest::to_extended_connect`]
//! and [`validate_http_response`] on the client, then a [`Connection`] made
//! with `open_*_negotiated` on the stream, driven by the tokio adapter
//! through [`H2Stream`], which makes an HTTP/2 stream an
//! `AsyncRead + AsyncWrite`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use wsmachine::adapter::OsEntropy;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::handshake::{
    Accept, ClientRequest, Reject, Request, WEBSOCKET_PROTOCOL, accept_extended_connect,
    validate_http_response,
};
use wsmachine::{CloseCode, Config, Connection, Event, OwnedEvent};

/// Errors of this example, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One HTTP/2 stream as a byte stream: DATA frames in, DATA frames out,
/// END_STREAM as end of stream. Flow control is released as data is read,
/// and writes wait for the send window.
pub struct H2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// The rest of the last DATA frame received.
    pending: Bytes,
}

impl H2Stream {
    /// The stream whose halves are `send` and `recv`.
    pub fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Self {
            send,
            recv,
            pending: Bytes::new(),
        }
    }
}

fn io_error(e: h2::Error) -> io::Error {
    if e.is_io() {
        e.into_io()
            .unwrap_or_else(|| io::Error::other("h2 I/O error"))
    } else {
        io::Error::other(e)
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // An empty DATA frame is not the end of the stream: poll again.
        while self.pending.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Let the peer send as much again.
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    self.pending = data;
                }
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.send.reserve_capacity(buf.len());
        match ready!(self.send.poll_capacity(cx)) {
            Some(Ok(window)) => {
                let n = window.min(buf.len());
                let data = Bytes::copy_from_slice(&buf[..n]);
                self.send.send_data(data, false).map_err(io_error)?;
                Poll::Ready(Ok(n))
            }
            Some(Err(e)) => Poll::Ready(Err(io_error(e))),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // h2 sends what it was given as the connection task runs.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // END_STREAM: the TCP FIN of a WebSocket over HTTP/2 (RFC 8441 §6).
        let _ = self.send.send_data(Bytes::new(), true);
        Poll::Ready(Ok(()))
    }
}

/// The server: HTTP/2 connections with the extended CONNECT enabled
/// (SETTINGS_ENABLE_CONNECT_PROTOCOL), each WebSocket stream an echo.
pub async fn serve(listener: TcpListener) -> Result<(), BoxError> {
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = serve_connection(tcp).await {
                eprintln!("h2 connection ended: {e}");
            }
        });
    }
}

async fn serve_connection(tcp: TcpStream) -> Result<(), BoxError> {
    let mut connection = h2::server::Builder::new()
        .enable_connect_protocol()
        .handshake::<_, Bytes>(tcp)
        .await?;
    // Accepting streams also drives the connection, so keep at it.
    while let Some(stream) = connection.accept().await {
        let (request, respond) = stream?;
        tokio::spawn(async move {
            if let Err(e) = serve_stream(request, respond).await {
                eprintln!("stream ended: {e}");
            }
        });
    }
    Ok(())
}

async fn serve_stream(
    request: http::Request<RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) -> Result<(), BoxError> {
    let protocol = request
        .extensions()
        .get::<h2::ext::Protocol>()
        .map(|p| p.as_str().to_owned());
    let config = Config::default();
    let offer = match Request::from_extended_connect(&request, protocol.as_deref()) {
        Ok(offer) => offer,
        Err(e) => {
            // 400 for what is not a WebSocket CONNECT, 426 for another version.
            let status = e.http_status().unwrap_or(400);
            let reject = Reject::new(status).into_http()?.map(|_| ());
            let mut send = respond.send_response(reject, false)?;
            send.send_data(Bytes::from(e.to_string()), true)?;
            return Ok(());
        }
    };
    // The subprotocol is decided from the request, as an Origin check would be.
    let mut accept = Accept::new();
    if offer.protocols().any(|p| p == "chat") {
        accept = accept.protocol("chat");
    }
    let (response, negotiated) = accept_extended_connect(&offer, &accept, &config)?;
    let send = respond.send_response(response, false)?;
    let stream = H2Stream::new(send, request.into_body());
    let conn = Connection::open_server_negotiated(config, negotiated);
    let mut ws = WebSocket::from_connection(stream, conn);
    loop {
        let reply = ws
            .recv_with(|event| match event {
                Event::Text(text) => Some(OwnedEvent::Text(text.to_owned())),
                Event::Binary(data) => Some(OwnedEvent::Binary(data.to_vec())),
                Event::Closed(_) => None,
                _ => Some(OwnedEvent::Pong(Vec::new())),
            })
            .await?;
        match reply {
            Some(OwnedEvent::Text(text)) => ws.send_text(&text).await?,
            Some(OwnedEvent::Binary(data)) => ws.send_binary(&data).await?,
            Some(_) => {}
            None => break,
        }
    }
    // RFC 8441 §6: END_STREAM both ways is the orderly end (a TCP FIN); a
    // stream dropped before the client's END_STREAM is reset (RST_STREAM
    // CANCEL, a TCP RST), which can lose what was still in flight.
    ws.close_transport().await?;
    let (mut stream, _) = ws.into_parts();
    let mut sink = [0; 256];
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    });
    let _ = drained.await;
    Ok(())
}

/// What the client saw.
#[derive(Debug)]
pub struct Report {
    /// The subprotocol in force.
    pub protocol: Option<String>,
    /// The extensions in force.
    pub extensions: Option<String>,
    /// Messages echoed back intact.
    pub echoed: usize,
    /// How the WebSocket closed.
    pub close: Option<wsmachine::CloseInfo>,
}

/// The client: one HTTP/2 connection, a WebSocket on one stream of it,
/// `messages` echoed through it, then the closing handshake.
pub async fn run_client(addr: SocketAddr, messages: &[OwnedEvent]) -> Result<Report, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    let (send_request, connection) = h2::client::handshake(tcp).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("h2 client connection ended: {e}");
        }
    });
    let mut send_request = send_request.ready().await?;
    // The server's SETTINGS, which enable the extended CONNECT, come first
    // on the connection; wait (bounded) until the connection task read them.
    for _ in 0..200 {
        if send_request.is_extended_connect_protocol_enabled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if !send_request.is_extended_connect_protocol_enabled() {
        return Err("the server did not enable the extended CONNECT".into());
    }

    let config = Config::default();
    let client = ClientRequest::new(&format!("ws://{addr}/echo"))?.protocol("chat");
    let (mut request, expected) = client.to_extended_connect(&config)?;
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static(WEBSOCKET_PROTOCOL));
    let (response, send) = send_request.send_request(request, false)?;
    let (head, recv) = response.await?.into_parts();
    let negotiated = validate_http_response(&http::Response::from_parts(head, ()), &expected)?;
    let conn = Connection::open_client_negotiated(config, OsEntropy::new(), &expected, negotiated);
    let mut ws = WebSocket::from_connection(H2Stream::new(send, recv), conn);
    let mut report = Report {
        protocol: ws.connection().negotiated().protocol.clone(),
        extensions: ws.connection().negotiated().extensions.clone(),
        echoed: 0,
        close: None,
    };
    for message in messages {
        match message {
            OwnedEvent::Text(text) => ws.send_text(text).await?,
            OwnedEvent::Binary(data) => ws.send_binary(data).await?,
            other => return Err(format!("not a message: {other:?}").into()),
        }
        let echo = tokio::time::timeout(Duration::from_secs(10), ws.recv()).await??;
        if &echo != message {
            return Err(format!("echo differs from message {}", report.echoed).into());
        }
        report.echoed += 1;
    }
    ws.close(CloseCode::NORMAL, "done").await?;
    for _ in 0..16 {
        if let OwnedEvent::Closed(info) = ws.recv().await? {
            report.close = Some(info);
            break;
        }
    }
    // The server ends its side first (RFC 6455 §7.1.1), then we end ours.
    ws.close_transport().await?;
    Ok(report)
}

/// Messages of every kind and size that matters: empty, small, multilingual,
/// over 64 KiB, and 1 MiB (more than HTTP/2's default 64 KiB window).
pub fn sample_messages() -> Vec<OwnedEvent> {
    vec![
        OwnedEvent::Text(String::new()),
        OwnedEvent::Text("hello over HTTP/2".into()),
        OwnedEvent::Text("Grüße, 世界! 🎉 ".repeat(1000)),
        OwnedEvent::Binary((0..=255).collect()),
        OwnedEvent::Binary((0..70_000u32).map(|i| (i % 251) as u8).collect()),
        OwnedEvent::Binary(
            (0..1 << 20)
                .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
        ),
    ]
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("server"), addr) => {
            let listener = TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:9002")).await?;
            println!(
                "listening on {} (h2c, extended CONNECT)",
                listener.local_addr()?
            );
            serve(listener).await
        }
        (Some("client"), addr) => {
            let addr = addr.as_deref().unwrap_or("127.0.0.1:9002").parse()?;
            let report = run_client(addr, &sample_messages()).await?;
            println!("{report:?}");
            Ok(())
        }
        (None, _) => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(serve(listener));
            let messages = sample_messages();
            let report = run_client(addr, &messages).await?;
            println!(
                "WebSocket over HTTP/2 at {addr}: protocol {:?}, extensions {:?}, {} of {} messages echoed, closed {:?}",
                report.protocol,
                report.extensions,
                report.echoed,
                messages.len(),
                report.close.as_ref().map(|c| (c.code(), c.is_clean()))
            );
            if report.echoed != messages.len() || !report.close.is_some_and(|c| c.is_clean()) {
                return Err("the exchange did not complete".into());
            }
            Ok(())
        }
        (Some(other), _) => Err(format!("unknown mode {other}: server, client, or nothing").into()),
    }
}
