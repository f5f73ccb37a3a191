//! permessage-deflate's memory settings (`deflate::Memory`): zlib states
//! borrowed from a `CodecPool` for each message, with each connection's
//! context kept as its last window of bytes, against peers with dedicated
//! states; dedicated states at other memLevels; states freed after a message
//! without context takeover; and what a server asks of a client's window.
#![cfg(feature = "deflate")]

use wsmachine::deflate::{CodecPool, DeflateConfig, Memory};
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::testing::Pair;
use wsmachine::{Config, Connection, MessageKind, OwnedEvent};

/// Chat-like JSON messages that compress well, more so with context.
fn messages(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"message","room":"general","from":"user{}","id":{i},"text":"hello number {} from the shared compressor test"}}"#,
                i % 7,
                i * 31 % 1000
            )
        })
        .collect()
}

fn config(deflate: DeflateConfig) -> Config {
    let mut config = Config::default();
    config.deflate = Some(deflate);
    config
}

/// A pair through the real handshake; `offer` replaces the client's offers.
fn pair(client: DeflateConfig, server: DeflateConfig, offer: Option<&str>) -> Pair {
    let mut request = ClientRequest::new("ws://example.com/chat").unwrap();
    if let Some(offer) = offer {
        request = request.extension(offer);
    }
    Pair::handshake(&request, config(client), config(server), Accept::new()).unwrap()
}

/// Sends every message from `from` to the other side, one read per message;
/// checks each arrives intact and returns the compressed bytes on the wire.
fn exchange(pair: &mut Pair, client_sends: bool, messages: &[String]) -> usize {
    let mut wire = 0;
    for text in messages {
        let events = if client_sends {
            pair.client.send_text(text).unwrap();
            wire += pair.client.pending_transmit();
            pair.client_to_server()
        } else {
            pair.server.send_text(text).unwrap();
            wire += pair.server.pending_transmit();
            pair.server_to_client()
        };
        assert_eq!(events, [OwnedEvent::Text(text.clone())]);
    }
    wire
}

#[test]
fn a_shared_server_talks_to_a_dedicated_client_with_context_takeover() {
    let pool = CodecPool::new();
    let mut pair = pair(
        DeflateConfig::default(),
        DeflateConfig::shared(&pool, 11),
        None,
    );
    // The browser-like offer lets the server choose the client's window.
    assert_eq!(
        pair.server.negotiated().extensions.as_deref(),
        Some("permessage-deflate; client_max_window_bits=11")
    );
    let sent = messages(300);
    let down = exchange(&mut pair, false, &sent);
    let up = exchange(&mut pair, true, &sent);
    // Context takeover works across messages: far better than one message
    // at a time (a whole message of this corpus compresses about 1.1x alone).
    let raw: usize = sent.iter().map(String::len).sum();
    assert!(raw > 3 * down, "server to client: {raw} B in {down} B");
    assert!(raw > 3 * up, "client to server: {raw} B in {up} B");
    // Between messages the server holds no zlib state: both went back.
    assert_eq!(pool.idle_states(), (1, 1));
    // Only its two windows of context (2 KiB each) and small buffers.
    assert!(
        pair.server.memory_usage() < 16 << 10,
        "{}",
        pair.server.memory_usage()
    );
}

#[test]
fn a_shared_client_talks_to_a_dedicated_server() {
    let pool = CodecPool::new();
    let mut pair = pair(
        DeflateConfig::shared(&pool, 10),
        DeflateConfig::default(),
        None,
    );
    let sent = messages(200);
    let raw: usize = sent.iter().map(String::len).sum();
    let up = exchange(&mut pair, true, &sent);
    let down = exchange(&mut pair, false, &sent);
    assert!(raw > 3 * up && raw > 3 * down, "{raw} {up} {down}");
    assert_eq!(pool.idle_states(), (1, 1));
}

/// The borrowed state takes each connection's own context: many connections
/// interleaving messages on one pool each see their own stream, whether
/// each keeps a state of its own (the pool has room), they take turns with
/// one (a pool of one, so every message restarts from the connection's
/// window), or some find their slot taken by another (a pool of three for
/// four: the state idle longest goes, and its owner restarts elsewhere).
#[test]
fn connections_interleaving_on_one_pool_keep_their_own_context() {
    for (capacity, states) in [(16, 4), (1, 1), (3, 3)] {
        let pool = CodecPool::with_capacity(capacity);
        let mut pairs: Vec<Pair> = (0..4)
            .map(|_| {
                pair(
                    DeflateConfig::default(),
                    DeflateConfig::shared(&pool, 12),
                    None,
                )
            })
            .collect();
        let sent = messages(120);
        let (mut raw, mut wire) = (0, 0);
        for (i, text) in sent.iter().enumerate() {
            // Each connection gets its own variant of the text.
            for (k, pair) in pairs.iter_mut().enumerate() {
                let text = format!("{text} #{k} {}", i * (k + 1));
                raw += text.len();
                pair.server.send_text(&text).unwrap();
                wire += pair.server.pending_transmit();
                assert_eq!(pair.server_to_client(), [OwnedEvent::Text(text.clone())]);
                pair.client.send_text(&text).unwrap();
                assert_eq!(pair.client_to_server(), [OwnedEvent::Text(text)]);
            }
        }
        assert_eq!(pool.idle_states(), (states, states));
        // The context survives the restarts: far better than message by message.
        assert!(raw > 2 * wire, "capacity {capacity}: {raw} B in {wire} B");
    }
}

/// A fragmented message keeps its borrowed state from the first fragment to
/// the last, while other connections borrow from the same pool.
#[test]
fn fragments_keep_their_state_until_the_message_ends() {
    // A pool of one: the other connection cannot have a state of its own.
    let pool = CodecPool::with_capacity(1);
    let mut a = pair(
        DeflateConfig::default(),
        DeflateConfig::shared(&pool, 11),
        None,
    );
    let mut b = pair(
        DeflateConfig::default(),
        DeflateConfig::shared(&pool, 11),
        None,
    );
    let text = messages(40).concat();
    let (head, tail) = text.split_at(text.len() / 2);
    a.server
        .send_fragment(MessageKind::Text, head.as_bytes(), false)
        .unwrap();
    // Meanwhile another connection sends whole messages.
    for m in messages(5) {
        b.server.send_text(&m).unwrap();
        assert_eq!(b.server_to_client(), [OwnedEvent::Text(m)]);
    }
    a.server
        .send_fragment(MessageKind::Text, tail.as_bytes(), true)
        .unwrap();
    assert_eq!(a.server_to_client(), [OwnedEvent::Text(text)]);
    // Two were in use at once; the pool of one keeps the last given back.
    assert_eq!(pool.idle_states().0, 1);
}

#[test]
fn shared_without_context_asks_for_no_takeover_and_keeps_nothing() {
    let pool = CodecPool::new();
    let mut pair = pair(
        DeflateConfig::default(),
        DeflateConfig::shared_without_context(&pool),
        None,
    );
    assert_eq!(
        pair.server.negotiated().extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let before = pair.server.memory_usage();
    let sent = messages(50);
    exchange(&mut pair, false, &sent);
    exchange(&mut pair, true, &sent);
    assert_eq!(pool.idle_states(), (1, 1));
    // No context is kept: nothing grew but the buffers' reuse.
    assert!(pair.server.memory_usage() <= before.max(8 << 10));
}

#[test]
fn a_client_window_it_offers_is_lowered_to_the_shared_window() {
    let pool = CodecPool::new();
    let p = pair(
        DeflateConfig::default(),
        DeflateConfig::shared(&pool, 11),
        Some("permessage-deflate; client_max_window_bits=13"),
    );
    assert_eq!(
        p.server.negotiated().extensions.as_deref(),
        Some("permessage-deflate; client_max_window_bits=11")
    );
    let p = pair(
        DeflateConfig::default(),
        DeflateConfig::shared(&pool, 11),
        Some("permessage-deflate; client_max_window_bits=9"),
    );
    assert_eq!(
        p.server.negotiated().extensions.as_deref(),
        Some("permessage-deflate; client_max_window_bits=9")
    );
    // A client that cannot be limited is accepted with its full window,
    // which the server keeps as context (32 KiB).
    let mut p = pair(
        DeflateConfig::default(),
        DeflateConfig::shared(&pool, 11),
        Some("permessage-deflate"),
    );
    assert_eq!(
        p.server.negotiated().extensions.as_deref(),
        Some("permessage-deflate")
    );
    exchange(&mut p, true, &messages(300));
}

#[test]
fn every_dedicated_mem_level_round_trips() {
    for mem_level in 1..=9 {
        let mut deflate = DeflateConfig::dedicated(mem_level);
        deflate.server_max_window_bits = 9;
        let mut p = pair(DeflateConfig::dedicated(mem_level), deflate, None);
        let sent = messages(60);
        exchange(&mut p, false, &sent);
        exchange(&mut p, true, &sent);
    }
    assert_eq!(
        DeflateConfig::dedicated(0).memory,
        Memory::Dedicated { mem_level: 1 },
        "clamped to zlib's range"
    );
}

/// Without context takeover, a dedicated state is freed when its message is
/// done: an idle connection holds none (measured by `examples/deflate_memory.rs`;
/// here: the messages still arrive, each compressed on its own).
#[test]
fn dedicated_states_without_takeover_are_freed_per_message() {
    let mut server = DeflateConfig::default();
    server.server_no_context_takeover = true;
    server.client_no_context_takeover = true;
    let mut p = pair(DeflateConfig::default(), server, None);
    let sent = messages(30);
    let raw: usize = sent.iter().map(String::len).sum();
    let down = exchange(&mut p, false, &sent);
    exchange(&mut p, true, &sent);
    assert!(down * 2 > raw, "no context: {raw} B in {down} B");
}

/// Connections made from clones of one `Config` share its pool.
#[test]
fn clones_of_a_config_share_its_pool() {
    let pool = CodecPool::new();
    let config = config(DeflateConfig::shared(&pool, 11));
    let clone = config.clone();
    assert_eq!(config.deflate, clone.deflate);
    let mut server = Connection::open_server(clone);
    drop(server.send_text("x"));
    assert_ne!(
        DeflateConfig::shared(&CodecPool::new(), 11),
        DeflateConfig::shared(&pool, 11),
        "another pool"
    );
}
