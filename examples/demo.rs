//! A client and a server connection talking to each other in memory: no
//! sockets, no runtime. Every byte that crosses the "wire" is printed, and so
//! is every event each side sees.
//!
//! Run it with `cargo run --example demo`.

use wsmachine::{CloseCode, Config, Connection, Event, MessageKind, SeededEntropy};

fn main() {
    let mut client = Connection::open_client(Config::default(), SeededEntropy::new(42));
    let mut server = Connection::open_server(Config::default());

    println!("client sends a text message, a fragmented binary message and a ping");
    client.send_text("Hello, wsmachine!").unwrap();
    client
        .send_fragment(MessageKind::Binary, &[0xde, 0xad], false)
        .unwrap();
    client.send_ping(b"are you there?").unwrap(); // control frames may come between fragments
    client
        .send_fragment(MessageKind::Binary, &[0xbe, 0xef], true)
        .unwrap();
    deliver("client", &mut client, "server", &mut server);

    println!("\nthe server's replies (its pong was queued automatically) go back");
    deliver("server", &mut server, "client", &mut client);

    println!("\nthe client closes; the server echoes the close");
    client.close(CloseCode::NORMAL, "done").unwrap();
    deliver("client", &mut client, "server", &mut server);
    deliver("server", &mut server, "client", &mut client);
    assert!(client.is_closed() && server.is_closed());
}

/// Moves the bytes `from` queued to `to`, prints them, and lets `to` react.
fn deliver(from_name: &str, from: &mut Connection, to_name: &str, to: &mut Connection) {
    let mut wire = Vec::new();
    from.drain_transmit(&mut wire);
    println!(
        "  {from_name} -> {to_name}: {} bytes  {}",
        wire.len(),
        hex(&wire)
    );
    to.handle_read(&wire);
    while let Some(event) = to.poll_event() {
        let reply = match event {
            Event::Text(text) => {
                println!("  {to_name} got text {text:?}");
                Some((MessageKind::Text, text.as_bytes().to_vec()))
            }
            Event::Binary(data) => {
                println!("  {to_name} got binary {}", hex(data));
                Some((MessageKind::Binary, data.to_vec()))
            }
            Event::Fragment(piece) => {
                println!(
                    "  {to_name} got a piece of {:?}: {}",
                    piece.kind,
                    hex(piece.data)
                );
                None
            }
            Event::Ping(data) => {
                println!("  {to_name} got ping {:?}", String::from_utf8_lossy(data));
                None
            }
            Event::Pong(data) => {
                println!("  {to_name} got pong {:?}", String::from_utf8_lossy(data));
                None
            }
            Event::Request(_) | Event::Open(_) => None, // connections created open skip the handshake
            Event::Closed(info) => {
                println!(
                    "  {to_name} closed: code {} reason {:?}, started by {:?}, clean: {}",
                    info.code(),
                    info.reason(),
                    info.initiator(),
                    info.is_clean()
                );
                None
            }
        };
        // The server echoes messages back.
        if let (Some((kind, data)), true) = (reply, to_name == "server") {
            match kind {
                MessageKind::Text => to.send_text(core::str::from_utf8(&data).unwrap()),
                MessageKind::Binary => to.send_binary(&data),
            }
            .unwrap();
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(24).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 24 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}
