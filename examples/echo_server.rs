//! A WebSocket echo server on tokio: accepts upgrades on any path and echoes
//! text as text and binary as binary, one task per connection.
//!
//! `cargo run --example echo_server --features tokio -- 127.0.0.1:9001`

use tokio::net::{TcpListener, TcpStream};
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::{Config, Event};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("echo server listening on ws://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = serve(stream).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

/// What the next event asks the server to do.
enum Reply {
    Text(String),
    Binary(Vec<u8>),
    Nothing,
    Stop,
}

async fn serve(stream: TcpStream) -> Result<(), wsmachine::adapter::Error> {
    stream.set_nodelay(true)?;
    let mut ws = WebSocket::accept(stream, Config::default()).await?;
    loop {
        // The message is read in place; only the reply is copied.
        let reply = ws
            .recv_with(|event| match event {
                Event::Text(text) => Reply::Text(text.to_owned()),
                Event::Binary(data) => Reply::Binary(data.to_vec()),
                Event::Closed(_) => Reply::Stop,
                _ => Reply::Nothing,
            })
            .await?;
        match reply {
            Reply::Text(text) => ws.send_text(&text).await?,
            Reply::Binary(data) => ws.send_binary(&data).await?,
            Reply::Nothing => {}
            Reply::Stop => return Ok(()),
        }
    }
}
