//! What the timer tests (tests/timers_*.rs) share: opcodes and an upgrade
//! request, the default config without deflate or a buffer release deadline,
//! open connections of either role, the keepalive ping's payload, a check
//! that nothing happens at a given time, and the frames a connection sent.
//! Include it with `mod common;` and `#[path = "common/timers.rs"] mod timers;`.
#![allow(dead_code)]

use core::time::Duration;
use wsmachine::frame::OpCode;
use wsmachine::{Config, Connection, SeededEntropy};

use crate::common::{decode_all, drain_events, take_transmit};

pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

pub const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The default config with no permessage-deflate (it plays no part here), adjusted.
pub fn config(adjust: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    config.deflate = None;
    // The protocol's timers only: buffers are freed as they empty, so no
    // release deadline joins them (tests/idle_memory.rs covers that one).
    config.buffer_release_delay = Duration::ZERO;
    adjust(&mut config);
    config
}

pub fn open(role: Role, config: Config) -> Connection {
    match role {
        Role::Client => Connection::open_client(config, SeededEntropy::new(0x71e5)),
        Role::Server => Connection::open_server(config),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// The keepalive ping's payload: b"wska" and the sequence number, big-endian.
pub fn keepalive_payload(seq: u32) -> Vec<u8> {
    let mut p = b"wska".to_vec();
    p.extend_from_slice(&seq.to_be_bytes());
    p
}

/// Advances `conn`'s clock to `t` and asserts that nothing at all happened:
/// nothing queued, no event, same state.
#[track_caller]
pub fn quiet_at(conn: &mut Connection, t: Duration) {
    let before = (conn.pending_transmit(), conn.is_open(), conn.is_closed());
    let deadline = conn.poll_timeout();
    conn.handle_timeout(t);
    let events = drain_events(conn);
    assert!(events.is_empty(), "events at {t:?}: {events:?}");
    assert_eq!(
        (conn.pending_transmit(), conn.is_open(), conn.is_closed()),
        before,
        "something happened at {t:?}"
    );
    assert_eq!(conn.poll_timeout(), deadline, "deadline moved at {t:?}");
}

/// The frames `conn` queued, as (opcode, masked, payload), and marks them sent.
pub fn sent_frames(conn: &mut Connection) -> Vec<(OpCode, bool, Vec<u8>)> {
    decode_all(&take_transmit(conn))
        .into_iter()
        .map(|(h, p)| (h.opcode, h.mask.is_some(), p))
        .collect()
}
