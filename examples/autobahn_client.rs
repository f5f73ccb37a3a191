//! Runs the Autobahn testsuite's client protocol against its fuzzing server:
//! asks for the number of cases, runs each one echoing every message, then asks
//! the server to write its reports.
//!
//! `cargo run --release --example autobahn_client --features blocking -- ws://127.0.0.1:9001`

use std::net::TcpStream;
use std::time::Duration;

use wsmachine::adapter::blocking::WebSocket;
use wsmachine::handshake::ClientRequest;
use wsmachine::{Config, Event, OwnedEvent};

const AGENT: &str = "wsmachine";

#[path = "support/deflate_setting.rs"]
mod deflate_setting;

fn connect(url: &str, config: &Config) -> Result<WebSocket<TcpStream>, Box<dyn std::error::Error>> {
    let request = ClientRequest::new(url)?;
    let stream = TcpStream::connect((request.host().trim_matches(['[', ']']), request.port()))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    Ok(WebSocket::connect(stream, &request, config.clone())?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let mut config = Config::default();
    config.max_message_size = 64 << 20;
    let config = deflate_setting::config_from_env(config);

    let mut ws = connect(&format!("{base}/getCaseCount"), &config)?;
    let count: u32 = match ws.recv()? {
        OwnedEvent::Text(n) => n.trim().parse()?,
        other => return Err(format!("expected the case count, got {other:?}").into()),
    };
    while !matches!(ws.recv(), Ok(OwnedEvent::Closed(_)) | Err(_)) {}
    eprintln!("{count} cases");

    for case in 1..=count {
        let mut ws = match connect(
            &format!("{base}/runCase?case={case}&agent={AGENT}"),
            &config,
        ) {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("case {case}: {e}");
                continue;
            }
        };
        // Echo until the connection closes; a protocol error closes it too.
        // The message is sent back from where it was received.
        loop {
            let message = ws.recv_with(|event| match event {
                Event::Text(_) | Event::Binary(_) => Some(true),
                Event::Closed(_) => None,
                _ => Some(false),
            });
            let sent = match message {
                Ok(Some(true)) => ws.send_received(),
                Ok(Some(false)) => Ok(()),
                Ok(None) | Err(_) => break,
            };
            if sent.is_err() {
                break;
            }
        }
    }

    let mut ws = connect(&format!("{base}/updateReports?agent={AGENT}"), &config)?;
    while !matches!(ws.recv(), Ok(OwnedEvent::Closed(_)) | Err(_)) {}
    eprintln!("reports updated");
    Ok(())
}
