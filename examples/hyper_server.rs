//! A WebSocket echo endpoint on hyper 1 (`http1` with upgrades): the service
//! validates the upgrade request hyper parsed with wsmachine's rules (feature
//! `http`), answers it, and hands the upgraded stream to a wsmachine
//! connection through the tokio adapter.
//!
//! - `GET /ws` upgrades and echoes text as text and binary as binary; other
//!   paths get 404.
//! - The subprotocol `chat` is selected when the client offers it, else none.
//! - A request whose `Origin` is not one of [`ALLOWED_ORIGINS`] (any port) is
//!   refused with 403; an invalid upgrade gets the status of wsmachine's error
//!   (400, 405, 426, ...).
//! - permessage-deflate is negotiated when offered.
//!
//! `cargo run --example hyper_server --features tokio,http -- 127.0.0.1:9001`
//!
//! It prints `listening on ws://ADDR/ws` (the default address is
//! `127.0.0.1:0`, a free port).

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::handshake::{self, Accept, Negotiated, Reject, accept_http};
use wsmachine::{Config, Connection, OwnedEvent};

/// The page origins allowed to open a WebSocket, on any port.
pub const ALLOWED_ORIGINS: &[&str] = &["http://127.0.0.1", "http://localhost"];

/// The subprotocol selected when the client offers it.
pub const PROTOCOL: &str = "chat";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on ws://{}/ws", listener.local_addr()?);
    serve(listener).await
}

/// Serves HTTP/1.1 on `listener`, one task per connection, until accepting fails.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                // Without it, hyper never hands out the upgraded stream.
                .with_upgrades();
            if let Err(e) = connection.await {
                eprintln!("HTTP connection ended: {e}");
            }
        });
    }
}

/// Every request: `/ws` upgrades, other paths get 404.
async fn handle(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/ws" {
        let mut response = Response::new(Full::from("not found\n"));
        *response.status_mut() = hyper::StatusCode::NOT_FOUND;
        return Ok(response);
    }
    let config = Config::default();
    let (response, negotiated) = match upgrade(&req, &config) {
        Ok(accepted) => accepted,
        // A 426 carries `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
        Err(reject) => {
            let response = reject.into_http().expect("a valid refusal");
            return Ok(response.map(|body| Full::new(Bytes::from(body))));
        }
    };
    // Resolves once hyper has sent the 101 this service returns.
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return eprintln!("upgrade failed: {e}"),
        };
        // The handshake is done: the connection starts open, with what it settled.
        let conn = Connection::open_server_negotiated(config, negotiated);
        let ws = WebSocket::from_connection(TokioIo::new(upgraded), conn);
        if let Err(e) = echo(ws).await {
            eprintln!("connection ended: {e}");
        }
    });
    Ok(response.map(|()| Full::default()))
}

/// Decides an upgrade request from what the HTTP stack parsed: the 101
/// response and what it settled, or the refusal to answer with instead.
fn upgrade<B>(req: &Request<B>, config: &Config) -> Result<(Response<()>, Negotiated), Reject> {
    // RFC 6455 §4.2.1; the error says which status to answer with.
    let request = handshake::Request::from_http(req)
        .map_err(|e| refuse(e.http_status().unwrap_or(400), &e.to_string()))?;
    // Browsers send Origin (RFC 6455 §10.2): refuse pages from elsewhere.
    // Non-browser clients may send none.
    if let Some(origin) = request.origin()
        && !origin_allowed(origin)
    {
        return Err(refuse(403, "origin not allowed"));
    }
    let mut accept = Accept::new();
    if request.protocols().any(|p| p == PROTOCOL) {
        accept = accept.protocol(PROTOCOL);
    }
    // The 101, with permessage-deflate (RFC 7692) if the client offered it
    // and the config allows it, and what it settled, for the connection.
    // Fails only for a protocol not offered or an invalid field: neither here.
    Ok(accept_http(&request, &accept, config).expect("a valid acceptance"))
}

/// Whether `origin` is an allowed origin, on any port.
fn origin_allowed(origin: &str) -> bool {
    ALLOWED_ORIGINS.iter().any(|allowed| {
        origin.strip_prefix(allowed).is_some_and(|rest| {
            rest.is_empty()
                || rest.strip_prefix(':').is_some_and(|port| {
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                })
        })
    })
}

/// A refusal with a text body.
fn refuse(status: u16, reason: &str) -> Reject {
    Reject::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(reason.as_bytes())
}

/// Echoes messages until the closing handshake, then closes the transport.
async fn echo<S>(mut ws: WebSocket<S>) -> Result<(), wsmachine::adapter::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.recv().await? {
            OwnedEvent::Text(text) => ws.send_text(&text).await?,
            OwnedEvent::Binary(data) => ws.send_binary(&data).await?,
            OwnedEvent::Closed(_) => return ws.close_transport().await,
            _ => {}
        }
    }
}
