//! An echo server on one library, on a tokio current-thread runtime: every
//! text and binary message comes back as it came.
//!
//! ```text
//! echo_server <wsmachine|tungstenite|fastwebsockets|tokio-websockets> <port>
//! ```
//!
//! Listens on 127.0.0.1. Each library runs with its default configuration
//! (wsmachine with permessage-deflate off, which the load client never
//! offers anyway), its own server handshake (fastwebsockets: hyper's upgrade)
//! and TCP_NODELAY on every accepted socket, as an echo needs.

use std::error::Error;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn Error + Send + Sync>;

async fn serve_wsmachine(stream: TcpStream) -> Result<(), BoxError> {
    use wsmachine::adapter::tokio::WebSocket;
    use wsmachine::{Config, Event};
    enum Got {
        Text,
        Binary,
        Other,
    }
    let mut config = Config::default();
    config.deflate = None;
    let mut ws = WebSocket::accept(stream, config).await?;
    // Reused buffers: the event borrows the connection, so the message is
    // copied out before it can be sent back.
    let mut text = String::new();
    let mut binary = Vec::new();
    loop {
        let got = ws
            .recv_with(|event| match event {
                Event::Text(t) => {
                    text.clear();
                    text.push_str(t);
                    Got::Text
                }
                Event::Binary(b) => {
                    binary.clear();
                    binary.extend_from_slice(b);
                    Got::Binary
                }
                _ => Got::Other,
            })
            .await;
        match got {
            Ok(Got::Text) => ws.send_text(&text).await?,
            Ok(Got::Binary) => ws.send_binary(&binary).await?,
            Ok(Got::Other) => {}
            // After the Closed event.
            Err(wsmachine::adapter::Error::Closed) => break,
            Err(e) => return Err(e.into()),
        }
    }
    ws.close_transport().await?;
    Ok(())
}

async fn serve_tungstenite(stream: TcpStream) -> Result<(), BoxError> {
    use tokio_tungstenite::tungstenite::Message;
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    // Runs until the stream ends; the close reply goes out on the next poll.
    while let Some(message) = ws.next().await {
        let message = message?;
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            ws.send(message).await?;
        }
    }
    Ok(())
}

async fn serve_fastwebsockets(stream: TcpStream) -> Result<(), BoxError> {
    use fastwebsockets::upgrade::{UpgradeFut, upgrade};
    use fastwebsockets::{FragmentCollector, Frame, OpCode};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    async fn echo(fut: UpgradeFut) -> Result<(), BoxError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Text | OpCode::Binary => {
                    ws.write_frame(Frame::new(true, frame.opcode, None, frame.payload))
                        .await?;
                }
                // The close reply was sent by the library.
                OpCode::Close => return Ok(()),
                _ => {}
            }
        }
    }

    let service = service_fn(|mut request| async move {
        let (response, fut) = upgrade(&mut request)?;
        tokio::task::spawn_local(async move {
            if let Err(e) = echo(fut).await {
                quiet(&*e);
            }
        });
        Ok::<_, fastwebsockets::WebSocketError>(response)
    });
    http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await?;
    Ok(())
}

async fn serve_tokio_websockets(stream: TcpStream) -> Result<(), BoxError> {
    let (_request, mut ws) = tokio_websockets::ServerBuilder::new()
        .accept(stream)
        .await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}

/// Ends of connections that a load run causes are not worth a line.
fn quiet(e: &(dyn Error + 'static)) {
    let text = e.to_string();
    let expected = ["reset", "closed", "Closed", "broken pipe", "EOF", "eof"];
    if !expected.iter().any(|s| text.contains(s)) {
        eprintln!("echo_server: connection ended: {text}");
    }
}

async fn serve(library: &'static str, stream: TcpStream) {
    let result = match library {
        "wsmachine" => serve_wsmachine(stream).await,
        "tungstenite" => serve_tungstenite(stream).await,
        "fastwebsockets" => serve_fastwebsockets(stream).await,
        "tokio-websockets" => serve_tokio_websockets(stream).await,
        _ => unreachable!(),
    };
    if let Err(e) = result {
        quiet(&*e);
    }
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: echo_server <wsmachine|tungstenite|fastwebsockets|tokio-websockets> <port>";
    let library = args.next().ok_or(usage)?;
    let library: &'static str = wsmachine_peers::LIBRARIES
        .into_iter()
        .find(|l| *l == library)
        .ok_or(usage)?;
    let port: u16 = args.next().ok_or(usage)?.parse()?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Tasks are spawned locally: one thread, nothing needs to be Send.
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!("echo_server: {library} on 127.0.0.1:{port}");
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::task::spawn_local(serve(library, stream));
        }
    })
}
