//! Connects to the WebSocket URL given as the first argument and echoes every
//! message back until the server closes, then exits 0.
//!
//! `cargo run --example echo_client --features blocking -- ws://127.0.0.1:9001/`
//! (`WSM_DEFLATE` and `WSM_MAX_MESSAGE`: see `examples/support/deflate_setting.rs`).

use std::net::TcpStream;
use std::process::ExitCode;

use wsmachine::adapter::blocking::WebSocket;
use wsmachine::handshake::ClientRequest;
use wsmachine::{Config, OwnedEvent};

#[path = "support/deflate_setting.rs"]
mod deflate_setting;

fn main() -> ExitCode {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    match run(&url) {
        Ok(echoed) => {
            eprintln!("echo_client: the server closed after {echoed} messages");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(url: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let request = ClientRequest::new(url)?;
    if request.is_secure() {
        return Err("wss:// needs a TLS stream; see the wss example".into());
    }
    let stream = TcpStream::connect((request.host().trim_matches(['[', ']']), request.port()))?;
    stream.set_nodelay(true)?;
    let config = deflate_setting::config_from_env(Config::default());
    let mut ws = WebSocket::connect(stream, &request, config)?;
    let mut echoed = 0;
    loop {
        match ws.recv()? {
            OwnedEvent::Text(text) => ws.send_text(&text)?,
            OwnedEvent::Binary(data) => ws.send_binary(&data)?,
            OwnedEvent::Closed(info) if info.error().is_none() => return Ok(echoed),
            OwnedEvent::Closed(info) => return Err(format!("connection failed: {info:?}").into()),
            _ => continue,
        }
        echoed += 1;
    }
}
