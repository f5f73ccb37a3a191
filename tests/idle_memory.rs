//! Heap held by an idle connection (measured with a counting allocator, as
//! the heap that dropping the connection frees): nothing but what
//! `Config::retain_buffer_size` lets each buffer keep, after the opening
//! handshake, and after a large message in either direction once the
//! connection has been idle for `Config::buffer_release_delay`; while traffic
//! flows, the buffers are kept.

mod common;
use common::*;
#[path = "common/counting.rs"]
mod counting;
use counting::heap_held_by;

use std::time::Duration;

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

/// Starts both clocks at 0.
fn clocks(client: &mut Connection, server: &mut Connection) {
    client.handle_timeout(Duration::ZERO);
    server.handle_timeout(Duration::ZERO);
}

/// Both connections go idle until `at`.
fn idle_until(client: &mut Connection, server: &mut Connection, at: Duration) {
    client.handle_timeout(at);
    server.handle_timeout(at);
}

#[test]
fn buffers_are_kept_while_traffic_flows_and_shrink_back_once_idle() {
    let (mut client, mut server) = connect(plain(), plain());
    clocks(&mut client, &mut server);
    exchange(&mut client, &mut server, "small");
    let big = "x".repeat(4 * MIB);
    exchange(&mut client, &mut server, &big);
    // Kept for the next message: a stream of large messages reallocates nothing.
    assert!(
        server.memory_usage() >= 4 * MIB,
        "{}",
        server.memory_usage()
    );
    let release = Duration::from_secs(1);
    assert_eq!(server.poll_timeout(), Some(release));
    idle_until(&mut client, &mut server, release - Duration::from_millis(1));
    assert!(server.memory_usage() >= 4 * MIB, "released early");
    idle_until(&mut client, &mut server, release);
    assert_eq!(
        server.memory_usage(),
        0,
        "an idle connection holds no buffer"
    );
    assert_eq!(client.memory_usage(), 0);
    // Nothing left to release: the deadline is the keepalive's again.
    assert_eq!(server.poll_timeout(), Some(Duration::from_secs(30)));
    // What is left is the negotiated settings and the configuration.
    let held = heap_held_by(server);
    assert!(held <= 128, "server holds {held} B after a 4 MiB message");
    let held = heap_held_by(client);
    assert!(held <= 128, "client holds {held} B after a 4 MiB message");
}

#[test]
fn a_fragmented_message_leaves_no_assembly_buffer_behind_once_idle() {
    let (mut client, mut server) = connect(plain(), plain());
    clocks(&mut client, &mut server);
    let part = vec![7u8; MIB];
    let kind = wsmachine::MessageKind::Binary;
    client.send_fragment(kind, &part, false).unwrap();
    client.send_fragment(kind, &part, true).unwrap();
    let events = feed(&mut server, &take_transmit(&mut client), &[]);
    assert!(matches!(&events[..], [OwnedEvent::Binary(b)] if b.len() == 2 * MIB));
    idle_until(&mut client, &mut server, Duration::from_secs(1));
    assert!(server.memory_usage() <= 512, "{}", server.memory_usage());
}

#[test]
fn a_zero_release_delay_frees_buffers_as_soon_as_they_empty_without_a_clock() {
    let mut config = plain();
    config.buffer_release_delay = Duration::ZERO;
    let (mut client, mut server) = connect(config.clone(), config);
    exchange(&mut client, &mut server, &"y".repeat(2 * MIB));
    assert!(server.memory_usage() <= 512, "{}", server.memory_usage());
    assert!(client.memory_usage() <= 512, "{}", client.memory_usage());
}

#[test]
fn the_read_buffer_lent_out_is_not_freed_before_it_is_committed() {
    let (mut client, mut server) = connect(plain(), plain());
    clocks(&mut client, &mut server);
    exchange(&mut client, &mut server, &"z".repeat(100_000));
    client.send_text("late").unwrap();
    let wire = take_transmit(&mut client);
    // A read into the lent buffer, the deadline handled before the commit.
    let buf = server.recv_buffer();
    buf[..wire.len()].copy_from_slice(&wire);
    server.handle_timeout(Duration::from_secs(5));
    server.commit_recv(wire.len());
    assert_eq!(
        drain_events(&mut server),
        vec![OwnedEvent::Text("late".into())]
    );
}

#[test]
fn after_an_idle_spell_the_first_read_is_small() {
    let (mut client, mut server) = connect(plain(), plain());
    clocks(&mut client, &mut server);
    exchange(&mut client, &mut server, &"w".repeat(100_000));
    idle_until(&mut client, &mut server, Duration::from_secs(2));
    assert_eq!(server.recv_buffer().len(), 512);
    server.commit_recv(0);
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

#[test]
fn a_lent_buffer_survives_events_handed_out_before_its_commit() {
    // recv_buffer, then events handed out (releasing the bytes before the
    // lent space), then commit_recv: the read must land after what came
    // before, whatever the release delay. Before this was fixed the empty
    // buffer started over at its front under the lent read.
    for delay in [Duration::ZERO, Duration::from_secs(1)] {
        let mut config = plain();
        config.buffer_release_delay = delay;
        let (mut client, mut server) = connect(config.clone(), config);
        client.send_text(&"a".repeat(20_000)).unwrap();
        client.send_text("b").unwrap();
        let wire = take_transmit(&mut client);
        let (first, second) = wire.split_at(wire.len() - 7);
        server.handle_read(first);
        let buf = server.recv_buffer();
        buf[..second.len()].copy_from_slice(second);
        assert_eq!(
            server.poll_event().map(|e| e.into_owned()),
            Some(OwnedEvent::Text("a".repeat(20_000)))
        );
        // This one releases those bytes, leaving the buffer empty but lent.
        assert!(server.poll_event().is_none());
        server.commit_recv(second.len());
        assert_eq!(
            drain_events(&mut server),
            vec![OwnedEvent::Text("b".into())],
            "delay {delay:?}"
        );
    }
}

#[test]
fn a_lent_buffer_past_the_release_deadline_does_not_leave_a_deadline_in_the_past() {
    // A completion-style driver keeps a read outstanding in the lent buffer;
    // the buffer cannot be freed then, and must not be asked for either.
    let (mut client, mut server) = connect(plain(), plain());
    clocks(&mut client, &mut server);
    exchange(&mut client, &mut server, "traffic");
    let _ = server.recv_buffer();
    let now = Duration::from_secs(2);
    server.handle_timeout(now);
    let next = server.poll_timeout().unwrap();
    assert!(next > now, "deadline {next:?} not after {now:?}");
    // Once the read comes back empty, the buffer goes.
    server.commit_recv(0);
    assert_eq!(server.poll_timeout(), Some(Duration::from_secs(1)));
    server.handle_timeout(now);
    assert_eq!(server.memory_usage(), 0);
}
