//! A chat room: serves a page at `http://127.0.0.1:8080/` and a WebSocket
//! endpoint on the same port (`/ws`); every message a browser sends is
//! broadcast to every connected browser.
//!
//! `cargo run --example chat --features tokio -- 127.0.0.1:8080`
//!
//! The request is read once: a plain GET gets the page, an upgrade request
//! goes to a server connection together with the bytes already read, so
//! nothing is lost between the two.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use wsmachine::adapter::{self, tokio::WebSocket};
use wsmachine::frame::Status;
use wsmachine::handshake::{self, Accept, HandshakeError, Reject};
use wsmachine::{Config, Connection, OwnedEvent};

const PAGE: &str = include_str!("index.html");
const MAX_REQUEST: usize = 16 << 10;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    println!("chat: open http://{local}/ in two browser windows");
    let (room, _) = broadcast::channel::<Arc<str>>(256);
    loop {
        let (stream, _) = listener.accept().await?;
        let room = room.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, room, local.port()).await {
                eprintln!("chat: connection ended: {e}");
            }
        });
    }
}

async fn handle(
    mut stream: TcpStream,
    room: broadcast::Sender<Arc<str>>,
    port: u16,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Read the request head, bounded.
    let mut head = Vec::with_capacity(1024);
    let upgrade = loop {
        let mut chunk = [0; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
        match handshake::parse_request(&head, MAX_REQUEST, 64) {
            Ok(Status::Complete(_)) => break true,
            Ok(Status::Partial { .. }) => continue,
            // Not an upgrade: plain HTTP.
            Err(HandshakeError::MissingUpgrade | HandshakeError::MissingConnectionUpgrade) => {
                break false;
            }
            // Anything else: let the server connection answer it (400, 426, 431 ...).
            Err(_) => break true,
        }
    };
    if !upgrade {
        let page = head.starts_with(b"GET / ") || head.starts_with(b"GET /index.html ");
        let (status, body) = if page {
            ("200 OK", PAGE)
        } else {
            ("404 Not Found", "not found\n")
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        return Ok(());
    }

    stream.set_nodelay(true)?;
    let mut conn = Connection::server(Config::default());
    conn.handle_read(&head);
    let mut ws = WebSocket::from_connection(stream, conn);
    // The handshake: only pages from this server may connect (RFC 6455 §10.2).
    let allowed = [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ];
    loop {
        match ws.recv().await? {
            OwnedEvent::Request(request) => {
                let origin_ok = request
                    .origin()
                    .is_some_and(|o| allowed.iter().any(|a| a == o));
                if request.path() == "/ws" && origin_ok {
                    ws.connection_mut().accept(Accept::new())?;
                } else {
                    ws.connection_mut()
                        .reject(&Reject::new(403).body(b"forbidden\n"))?;
                    ws.flush().await?;
                    return Ok(());
                }
            }
            OwnedEvent::Open(_) => break,
            OwnedEvent::Closed(_) => {
                ws.flush().await?;
                return Ok(());
            }
            _ => {}
        }
    }

    // Split halves: this task reads what the browser says, another writes
    // what the room says, so a browser slow to read holds up only its own
    // writer, never its reads (the reader writes pongs and the close echo).
    let (mut reader, mut writer) = ws.into_split();
    let mut inbox = room.subscribe();
    let writing = tokio::spawn(async move {
        loop {
            match inbox.recv().await {
                Ok(text) => writer.send_text(&text).await?,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok::<_, adapter::Error>(()),
            }
        }
    });
    let read = loop {
        match reader.recv().await {
            Ok(OwnedEvent::Text(text)) => {
                let _ = room.send(text.into());
            }
            Ok(OwnedEvent::Closed(_)) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    writing.abort();
    read?;
    reader.close_transport().await?;
    Ok(())
}
