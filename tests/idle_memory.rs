//! Heap held by an idle connection (measured with a counting allocator, as
//! the heap that dropping the connection frees): nothing but what
//! `Config::retain_buffer_size` lets each buffer keep, after the opening
//! handshake and after a large message in either direction.

mod common;
use common::*;
#[path = "common/counting.rs"]
mod counting;
use counting::heap_held_by;

use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::{Config, Connection, Event, OwnedEvent, SeededEntropy};

const MIB: usize = 1 << 20;

/// The default config, without permessage-deflate (whose zlib state, once
/// used, is measured in the `deflate` module's docs).
fn plain() -> Config {
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    config
}

/// A client and a server after a real in-memory opening handshake, with
/// every byte delivered and every event handed out.
fn connect(client: Config, server: Config) -> (Connection, Connection) {
    let request = ClientRequest::new("ws://a/chat").unwrap();
    let mut client = Connection::client(&request, client, SeededEntropy::new(3)).unwrap();
    let mut server = Connection::server(server);
    server.handle_read(&take_transmit(&mut client));
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(Accept::new()).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    client.handle_read(&take_transmit(&mut server));
    assert!(matches!(client.poll_event(), Some(Event::Open(_))));
    assert!(server.poll_event().is_none() && client.poll_event().is_none());
    (client, server)
}

/// Sends `text` both ways through the pair, reading through `recv_buffer`
/// in 16 KiB reads, and checks it arrived.
fn exchange(client: &mut Connection, server: &mut Connection, text: &str) {
    client.send_text(text).unwrap();
    let wire = take_transmit(client);
    let cuts: Vec<usize> = (1..wire.len()).step_by(16 << 10).collect();
    assert_eq!(
        feed(server, &wire, &cuts),
        vec![OwnedEvent::Text(text.into())]
    );
    server.send_text(text).unwrap();
    let wire = take_transmit(server);
    assert_eq!(
        feed(client, &wire, &cuts),
        vec![OwnedEvent::Text(text.into())]
    );
}

#[test]
fn an_idle_server_holds_at_most_512_bytes_after_the_handshake() {
    let (client, server) = connect(plain(), plain());
    let held = heap_held_by(server);
    assert!(held <= 512, "idle server holds {held} B");
    let held = heap_held_by(client);
    assert!(held <= 512, "idle client holds {held} B");
}

#[test]
#[cfg(feature = "deflate")]
fn an_idle_server_with_permessage_deflate_negotiated_holds_no_zlib_state_before_use() {
    let (client, server) = connect(Config::default(), Config::default());
    assert!(server.negotiated().extensions.is_some());
    let held = heap_held_by(server);
    assert!(held <= 1024, "idle deflate server holds {held} B");
    drop(client);
}

#[test]
fn buffers_shrink_back_after_a_large_message() {
    let (mut client, mut server) = connect(plain(), plain());
    exchange(&mut client, &mut server, "small");
    let big = "x".repeat(4 * MIB);
    exchange(&mut client, &mut server, &big);
    assert!(server.memory_usage() <= 512, "{}", server.memory_usage());
    let held = heap_held_by(server);
    assert!(held <= 512, "server holds {held} B after a 4 MiB message");
    let held = heap_held_by(client);
    assert!(held <= 512, "client holds {held} B after a 4 MiB message");
}

#[test]
fn a_fragmented_message_leaves_no_assembly_buffer_behind() {
    let (mut client, mut server) = connect(plain(), plain());
    let part = vec![7u8; MIB];
    client
        .send_fragment(wsmachine::MessageKind::Binary, &part, false)
        .unwrap();
    client
        .send_fragment(wsmachine::MessageKind::Binary, &part, true)
        .unwrap();
    let events = feed(&mut server, &take_transmit(&mut client), &[]);
    assert!(matches!(&events[..], [OwnedEvent::Binary(b)] if b.len() == 2 * MIB));
    assert!(server.memory_usage() <= 512, "{}", server.memory_usage());
}

#[test]
fn a_larger_retain_size_keeps_the_read_buffer() {
    let mut config = plain();
    config.retain_buffer_size = 64 << 10;
    let (mut client, mut server) = connect(config.clone(), config);
    exchange(&mut client, &mut server, "hello");
    // The read buffer (16 KiB by default) stays for the next read.
    assert!(
        server.memory_usage() >= 16 << 10,
        "{}",
        server.memory_usage()
    );
}
