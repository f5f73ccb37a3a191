//! A WebSocket echo server on tokio: accepts upgrades on any path and echoes
//! text as text and binary as binary, one task per connection.
//!
//! `cargo run --example echo_server --features tokio -- 127.0.0.1:9001`
//! (`WSM_DEFLATE` chooses permessage-deflate's memory setting: see
//! `examples/support/deflate_setting.rs`).

use tokio::net::{TcpListener, TcpStream};
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::{Config, Event};

#[path = "support/deflate_setting.rs"]
mod deflate_setting;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("echo server listening on ws://{}", listener.local_addr()?);
    let config = deflate_setting::config_from_env(Config::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, config).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

/// What the next event asks the server to do.
enum Reply {
    Echo,
    Nothing,
    Stop,
}

async fn serve(stream: TcpStream, config: Config) -> Result<(), wsmachine::adapter::Error> {
    stream.set_nodelay(true)?;
    let mut ws = WebSocket::accept(stream, config).await?;
    loop {
        // The message is read in place and sent back from there: no copy
        // out of the connection (and with vectored writes, none into it).
        let reply = ws
            .recv_with(|event| match event {
                Event::Text(_) | Event::Binary(_) => Reply::Echo,
                Event::Closed(_) => Reply::Stop,
                _ => Reply::Nothing,
            })
            .await?;
        match reply {
            Reply::Echo => ws.send_received().await?,
            Reply::Nothing => {}
            Reply::Stop => return Ok(()),
        }
    }
}
