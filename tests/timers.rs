//! Timers as data: keepalive pings and their deadline, the close, handshake
//! and idle timeouts, and when the transport may be closed. Every test runs on
//! a virtual clock (`Duration`s handed to `handle_timeout`): no sleeps.

mod common;
use common::*;
use core::time::Duration;
use proptest::prelude::*;
use wsmachine::frame::OpCode;
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::testing::Pair;
use wsmachine::{
    CloseCode, Config, Connection, Error, Initiator, OwnedEvent, SeededEntropy, Timeout,
};

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The default config with no permessage-deflate (it plays no part here), adjusted.
fn config(adjust: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    config.deflate = None;
    // The protocol's timers only: buffers are freed as they empty, so no
    // release deadline joins them (tests/idle_memory.rs covers that one).
    config.buffer_release_delay = Duration::ZERO;
    adjust(&mut config);
    config
}

fn open(role: Role, config: Config) -> Connection {
    match role {
        Role::Client => Connection::open_client(config, SeededEntropy::new(0x71e5)),
        Role::Server => Connection::open_server(config),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Client,
    Server,
}

/// The keepalive ping's payload: b"wska" and the sequence number, big-endian.
fn keepalive_payload(seq: u32) -> Vec<u8> {
    let mut p = b"wska".to_vec();
    p.extend_from_slice(&seq.to_be_bytes());
    p
}

/// A frame as `role`'s peer sends it (masked when the peer is a client).
fn from_peer(role: Role, opcode: u8, payload: &[u8]) -> Vec<u8> {
    match role {
        Role::Server => client_frame(true, opcode, payload),
        Role::Client => server_frame(true, opcode, payload),
    }
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// Advances `conn`'s clock to `t` and asserts that nothing at all happened:
/// nothing queued, no event, same state.
#[track_caller]
fn quiet_at(conn: &mut Connection, t: Duration) {
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
fn sent_frames(conn: &mut Connection) -> Vec<(OpCode, bool, Vec<u8>)> {
    decode_all(&take_transmit(conn))
        .into_iter()
        .map(|(h, p)| (h.opcode, h.mask.is_some(), p))
        .collect()
}

/// Asserts the events end with a keepalive failure and its 1001 close frame was queued.
#[track_caller]
fn expect_keepalive_failure(conn: &mut Connection, events: &[OwnedEvent]) {
    let info = closed(events);
    assert_eq!(info.code(), CloseCode::GOING_AWAY);
    assert_eq!(info.error(), Some(&Error::Timeout(Timeout::Keepalive)));
    assert_eq!(info.initiator(), Initiator::Local);
    assert!(!info.is_clean());
    assert!(conn.is_closed());
    let wire = take_transmit(conn);
    assert_eq!(sent_close(&wire).map(|(code, _)| code), Some(1001));
    assert_eq!(decode_all(&wire).len(), 1, "only the close frame");
    assert_eq!(conn.poll_timeout(), None, "nothing left to time");
}

// ----- 1. keepalive: a silent peer -----

fn silent_peer_case(role: Role, start: Duration, interval: Duration, timeout: Duration) {
    let ctx = format!("{role:?} start {start:?} interval {interval:?} timeout {timeout:?}");
    let mut conn = open(
        role,
        config(|c| {
            c.keepalive_interval = Some(interval);
            c.keepalive_timeout = Some(timeout);
        }),
    );
    assert_eq!(conn.poll_timeout(), None, "clock not started: {ctx}");
    conn.handle_timeout(start);
    assert_eq!(conn.poll_timeout(), Some(start + interval), "{ctx}");

    quiet_at(&mut conn, start + interval - ms(1));
    quiet_at(&mut conn, start + interval - Duration::from_nanos(1));

    conn.handle_timeout(start + interval);
    assert!(drain_events(&mut conn).is_empty(), "{ctx}");
    assert!(conn.is_open(), "{ctx}");
    let frames = sent_frames(&mut conn);
    assert_eq!(
        frames,
        vec![(OpCode::PING, role == Role::Client, keepalive_payload(0))],
        "{ctx}"
    );
    let deadline = start + interval + timeout;
    assert_eq!(conn.poll_timeout(), Some(deadline), "{ctx}");

    quiet_at(&mut conn, deadline - ms(1));
    quiet_at(&mut conn, deadline - Duration::from_nanos(1));

    conn.handle_timeout(deadline);
    let events = drain_events(&mut conn);
    assert_eq!(events.len(), 1, "{ctx}: {events:?}");
    expect_keepalive_failure(&mut conn, &events);
    assert!(conn.should_close_transport(), "{ctx}");
}

#[test]
fn silent_peer_is_detected_after_interval_plus_deadline_to_the_millisecond() {
    // The default config: 30 s then 20 s.
    let defaults = Config::default();
    assert_eq!(defaults.keepalive_interval, Some(secs(30)));
    assert_eq!(defaults.keepalive_timeout, Some(secs(20)));
    assert!(!defaults.keepalive_needs_pong);

    for role in [Role::Server, Role::Client] {
        // Step by step at the millisecond, with the defaults.
        let mut conn = open(role, config(|_| {}));
        conn.handle_timeout(Duration::ZERO);
        assert_eq!(conn.poll_timeout(), Some(secs(30)));
        quiet_at(&mut conn, ms(29_999));
        conn.handle_timeout(secs(30));
        let frames = sent_frames(&mut conn);
        assert_eq!(frames.len(), 1, "{frames:?}");
        let (opcode, masked, payload) = &frames[0];
        assert_eq!(*opcode, OpCode::PING);
        assert_eq!(
            *masked,
            role == Role::Client,
            "only client frames are masked"
        );
        assert_eq!(payload, b"wska\0\0\0\0");
        assert_eq!(conn.poll_timeout(), Some(secs(50)));
        quiet_at(&mut conn, ms(49_999));
        conn.handle_timeout(secs(50));
        let events = drain_events(&mut conn);
        let wire = conn.poll_transmit().unwrap().to_vec();
        assert_eq!(
            decode_all(&wire)[0].0.mask.is_some(),
            role == Role::Client,
            "the close frame is masked by a client only"
        );
        expect_keepalive_failure(&mut conn, &events);

        // Custom durations, and an origin that is not zero.
        for (start, interval, timeout) in [
            (Duration::ZERO, ms(1), ms(1)),
            (secs(1000), ms(1), ms(1)),
            (Duration::ZERO, secs(5), secs(2)),
            (ms(123_456), secs(5), secs(2)),
            (secs(7), secs(3600), ms(250)),
        ] {
            silent_peer_case(role, start, interval, timeout);
        }
    }
}

#[test]
fn late_handle_timeout_fires_the_ping_then_times_the_answer_from_the_send() {
    // A caller that wakes up late: the ping goes out when it is noticed, and
    // the deadline runs from then, not from when the ping was due.
    let mut server = open(Role::Server, config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    server.handle_timeout(secs(45));
    assert_eq!(sent_frames(&mut server).len(), 1);
    assert!(server.is_open());
    assert_eq!(server.poll_timeout(), Some(secs(65)));

    // Past where both deadlines would have been: still only the ping goes out
    // (the peer never had a chance to answer), and its answer is due 20 s later.
    let mut server = open(Role::Server, config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    server.handle_timeout(secs(3600));
    assert!(server.is_open());
    let frames = sent_frames(&mut server);
    assert_eq!(frames, vec![(OpCode::PING, false, keepalive_payload(0))]);
    server.handle_timeout(secs(3620));
    let events = drain_events(&mut server);
    expect_keepalive_failure(&mut server, &events);
}

// ----- 2. a peer that answers -----

/// A client and a server on one virtual clock, joined by a network that
/// delivers every write `delay` after it was made.
struct Net {
    conns: [Connection; 2],
    now: Duration,
    delay: Duration,
    /// (delivery time, destination, bytes), in send order.
    in_flight: Vec<(Duration, usize, Vec<u8>)>,
    events: [Vec<OwnedEvent>; 2],
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

impl Net {
    fn next_time(&self) -> Option<Duration> {
        let timers = self.conns.iter().filter_map(Connection::poll_timeout);
        let deliveries = self.in_flight.iter().map(|(at, ..)| *at);
        timers.chain(deliveries).min()
    }

    /// Moves the clock to `t`: timers first, then the deliveries due, then
    /// whatever the two sides wrote goes on the wire.
    fn step_to(&mut self, t: Duration) {
        assert!(t >= self.now, "the simulation never goes back");
        self.now = t;
        for i in 0..2 {
            self.conns[i].handle_timeout(t);
            let events = drain_events(&mut self.conns[i]);
            self.events[i].extend(events);
        }
        while let Some(pos) = self.in_flight.iter().position(|(at, ..)| *at <= t) {
            let (_, to, bytes) = self.in_flight.remove(pos);
            let events = feed(&mut self.conns[to], &bytes, &[]);
            if events.iter().any(|e| matches!(e, OwnedEvent::Request(_))) {
                self.conns[to].accept(Accept::new()).unwrap();
            }
            self.events[to].extend(events);
            self.events[to].extend(drain_events(&mut self.conns[to]));
        }
        for i in 0..2 {
            let bytes = take_transmit(&mut self.conns[i]);
            if !bytes.is_empty() {
                self.in_flight.push((t + self.delay, 1 - i, bytes));
            }
        }
    }
}

#[test]
fn answering_peer_stays_open_for_hours_and_rtt_is_the_simulated_round_trip() {
    let one_way = ms(75);
    let client_cfg = config(|_| {});
    // The server trusts only pongs: the pongs themselves must keep it alive.
    let server_cfg = config(|c| c.keepalive_needs_pong = true);
    let request = ClientRequest::new("ws://example.com/chat").unwrap();
    let client = Connection::client(&request, client_cfg, SeededEntropy::new(3)).unwrap();
    let server = Connection::server(server_cfg);
    let mut net = Net {
        conns: [client, server],
        now: Duration::ZERO,
        delay: one_way,
        in_flight: Vec::new(),
        events: [Vec::new(), Vec::new()],
    };
    net.step_to(Duration::ZERO);
    assert_eq!(
        net.conns[CLIENT].poll_timeout(),
        Some(secs(10)),
        "handshake"
    );
    assert_eq!(
        net.conns[SERVER].poll_timeout(),
        Some(secs(10)),
        "handshake"
    );

    let end = secs(3 * 3600);
    let mut steps = 0;
    while let Some(t) = net.next_time() {
        if t > end {
            break;
        }
        net.step_to(t);
        steps += 1;
        assert!(steps < 100_000, "the simulation does not advance");
        // Open once the handshake is done (the server accepts at 75 ms, the
        // client reads the response at 150 ms), and never closed.
        for (conn, opened) in net.conns.iter().zip([one_way * 2, one_way]) {
            assert!(!conn.is_closed(), "{conn:?} closed at {t:?}");
            assert_eq!(conn.is_open(), t >= opened, "{conn:?} at {t:?}");
        }
        for conn in &net.conns {
            assert!(conn.rtt().is_none_or(|d| d == one_way * 2), "{t:?}");
        }
    }
    assert!(net.now > end - secs(60), "ran to {:?}", net.now);

    // Each side's pings arrive at the other side numbered 0, 1, 2, ..., and
    // each is answered (the last one's pong perhaps still in flight).
    let count = |side: usize, pong: bool| {
        net.events[side]
            .iter()
            .filter(|e| match e {
                OwnedEvent::Ping(_) => !pong,
                OwnedEvent::Pong(_) => pong,
                _ => false,
            })
            .count()
    };
    for receiver in [CLIENT, SERVER] {
        let pings = net.events[receiver].iter().filter_map(|e| match e {
            OwnedEvent::Ping(p) => Some(p),
            _ => None,
        });
        for (seq, payload) in pings.enumerate() {
            assert_eq!(*payload, keepalive_payload(seq as u32));
        }
    }
    // Three hours at one ping per ~30 s, from each side.
    let expected = (3 * 3600) / 31;
    for side in [CLIENT, SERVER] {
        let sent = count(1 - side, false);
        let answered = count(side, true);
        assert!(
            sent >= expected,
            "side {side} sent only {sent} pings (expected at least {expected})"
        );
        assert!(
            answered + 1 >= sent && answered <= sent,
            "{answered} of {sent}"
        );
    }
    assert_eq!(net.conns[CLIENT].rtt(), Some(one_way * 2));
    assert_eq!(net.conns[SERVER].rtt(), Some(one_way * 2));
    // Both keepalives still run: the next deadline is at most an interval away.
    for conn in &net.conns {
        let at = conn.poll_timeout().unwrap();
        assert!(at > net.now && at <= net.now + secs(30), "{at:?}");
    }
}

// ----- 3. traffic and pongs -----

#[test]
fn received_data_postpones_the_ping() {
    for role in [Role::Server, Role::Client] {
        let mut conn = open(role, config(|_| {}));
        conn.handle_timeout(Duration::ZERO);
        conn.handle_timeout(secs(10));
        let events = feed(&mut conn, &from_peer(role, TEXT, b"hi"), &[]);
        assert_eq!(events, vec![OwnedEvent::Text("hi".into())]);
        assert_eq!(conn.poll_timeout(), Some(secs(40)), "{role:?}");
        quiet_at(&mut conn, secs(30));
        quiet_at(&mut conn, ms(39_999));
        conn.handle_timeout(secs(40));
        assert_eq!(
            sent_frames(&mut conn),
            vec![(OpCode::PING, role == Role::Client, keepalive_payload(0))]
        );

        // Sending does not postpone it: only a sign of life from the peer does.
        let mut conn = open(role, config(|_| {}));
        conn.handle_timeout(Duration::ZERO);
        conn.handle_timeout(secs(10));
        conn.send_text("out").unwrap();
        conn.send_ping(b"app").unwrap();
        take_transmit(&mut conn);
        assert_eq!(conn.poll_timeout(), Some(secs(30)), "{role:?}");

        // Any bytes count, even half a frame.
        let mut conn = open(role, config(|_| {}));
        conn.handle_timeout(Duration::ZERO);
        conn.handle_timeout(secs(12));
        let frame = from_peer(role, TEXT, b"split");
        assert!(feed(&mut conn, &frame[..3], &[]).is_empty());
        assert_eq!(conn.poll_timeout(), Some(secs(42)));
    }
}

#[test]
fn bytes_read_through_recv_buffer_are_timed_at_commit() {
    // An adapter may read into `recv_buffer`, then call `handle_timeout`, then
    // `commit_recv`: the bytes count at the time given last.
    let mut server = open(Role::Server, config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    let frame = client_frame(true, TEXT, b"zero-copy");
    let buf = server.recv_buffer();
    buf[..frame.len()].copy_from_slice(&frame);
    server.handle_timeout(secs(10));
    assert_eq!(server.poll_timeout(), Some(secs(30)), "not committed yet");
    server.commit_recv(frame.len());
    assert_eq!(server.poll_timeout(), Some(secs(40)));
    assert_eq!(
        drain_events(&mut server),
        vec![OwnedEvent::Text("zero-copy".into())]
    );
    // A read of nothing is no sign of life.
    server.handle_timeout(secs(20));
    server.recv_buffer();
    server.commit_recv(0);
    server.handle_read(&[]);
    assert_eq!(server.poll_timeout(), Some(secs(40)));
}

#[test]
fn without_needs_pong_any_bytes_answer_the_ping() {
    let mut server = open(Role::Server, config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    server.handle_timeout(secs(30));
    assert_eq!(sent_frames(&mut server).len(), 1);
    assert_eq!(server.poll_timeout(), Some(secs(50)));
    // Data at 35 s proves the peer alive: the next ping is due 30 s later.
    server.handle_timeout(secs(35));
    feed(&mut server, &client_frame(true, TEXT, b"busy"), &[]);
    assert_eq!(server.poll_timeout(), Some(secs(65)));
    assert_eq!(server.rtt(), None, "data measures no round trip");
    quiet_at(&mut server, secs(50));
    server.handle_timeout(secs(65));
    assert_eq!(
        sent_frames(&mut server),
        vec![(OpCode::PING, false, keepalive_payload(1))],
        "the second ping is numbered 1"
    );
    // Its pong, 2.5 s later, measures the round trip.
    server.handle_timeout(ms(67_500));
    let events = feed(
        &mut server,
        &client_frame(true, PONG, &keepalive_payload(1)),
        &[],
    );
    assert_eq!(events, vec![OwnedEvent::Pong(keepalive_payload(1))]);
    assert_eq!(server.rtt(), Some(ms(2_500)));
    assert_eq!(server.poll_timeout(), Some(ms(97_500)));
}

#[test]
fn with_needs_pong_only_the_matching_pong_answers_the_ping() {
    let needs_pong = || config(|c| c.keepalive_needs_pong = true);

    for role in [Role::Server, Role::Client] {
        // Data while the ping is outstanding: it still fails at 50 s.
        let mut conn = open(role, needs_pong());
        conn.handle_timeout(Duration::ZERO);
        conn.handle_timeout(secs(30));
        assert_eq!(sent_frames(&mut conn).len(), 1);
        conn.handle_timeout(secs(35));
        let events = feed(&mut conn, &from_peer(role, TEXT, b"data"), &[]);
        assert_eq!(events, vec![OwnedEvent::Text("data".into())]);
        assert_eq!(conn.poll_timeout(), Some(secs(50)), "{role:?}");
        // A ping from the peer is no answer either (it is answered, though).
        conn.handle_timeout(secs(40));
        feed(&mut conn, &from_peer(role, PING, b"hello?"), &[]);
        assert_eq!(
            sent_frames(&mut conn),
            vec![(OpCode::PONG, role == Role::Client, b"hello?".to_vec())]
        );
        quiet_at(&mut conn, ms(49_999));
        conn.handle_timeout(secs(50));
        let events = drain_events(&mut conn);
        expect_keepalive_failure(&mut conn, &events);

        // Pongs with another payload: an application pong, an empty one,
        // another sequence number, the tag alone, a longer payload. None counts.
        for wrong in [
            b"pong".to_vec(),
            b"".to_vec(),
            keepalive_payload(1),
            b"wska".to_vec(),
            b"wska\0\0\0\0\0".to_vec(),
        ] {
            let mut conn = open(role, needs_pong());
            conn.handle_timeout(Duration::ZERO);
            conn.handle_timeout(secs(30));
            assert_eq!(sent_frames(&mut conn).len(), 1);
            conn.handle_timeout(secs(31));
            let events = feed(&mut conn, &from_peer(role, PONG, &wrong), &[]);
            assert_eq!(events, vec![OwnedEvent::Pong(wrong.clone())]);
            assert_eq!(conn.rtt(), None, "{wrong:?}");
            assert_eq!(conn.poll_timeout(), Some(secs(50)), "{wrong:?}");
            conn.handle_timeout(secs(50));
            let events = drain_events(&mut conn);
            expect_keepalive_failure(&mut conn, &events);
        }

        // The matching pong: the round trip is measured and the next ping is
        // due an interval after it.
        let mut conn = open(role, needs_pong());
        conn.handle_timeout(Duration::ZERO);
        conn.handle_timeout(secs(30));
        assert_eq!(sent_frames(&mut conn).len(), 1);
        conn.handle_timeout(ms(35_250));
        let events = feed(
            &mut conn,
            &from_peer(role, PONG, &keepalive_payload(0)),
            &[],
        );
        assert_eq!(events, vec![OwnedEvent::Pong(keepalive_payload(0))]);
        assert_eq!(conn.rtt(), Some(ms(5_250)));
        assert_eq!(conn.poll_timeout(), Some(ms(65_250)));
        quiet_at(&mut conn, secs(50));
        assert!(conn.is_open());
    }
}

#[test]
fn without_needs_pong_an_application_pong_keeps_the_peer_alive_but_measures_nothing() {
    let mut server = open(Role::Server, config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    server.handle_timeout(secs(30));
    assert_eq!(sent_frames(&mut server).len(), 1);
    server.handle_timeout(secs(31));
    feed(&mut server, &client_frame(true, PONG, b"app"), &[]);
    assert_eq!(server.rtt(), None);
    assert_eq!(
        server.poll_timeout(),
        Some(secs(61)),
        "alive: the next ping"
    );
}

// ----- 4. close timeout -----

#[test]
fn unanswered_close_ends_the_connection_after_close_timeout() {
    for role in [Role::Server, Role::Client] {
        let mut conn = open(role, config(|c| c.close_timeout = Some(secs(10))));
        conn.handle_timeout(Duration::ZERO);
        conn.handle_timeout(secs(5));
        conn.close(CloseCode::NORMAL, "bye").unwrap();
        let wire = take_transmit(&mut conn);
        assert_eq!(sent_close(&wire), Some((1000, "bye".into())));
        assert_eq!(conn.poll_timeout(), Some(secs(15)), "{role:?}");
        assert!(!conn.is_open() && !conn.is_closed());
        quiet_at(&mut conn, ms(14_999));
        conn.handle_timeout(secs(15));
        let events = drain_events(&mut conn);
        assert_eq!(events.len(), 1, "{events:?}");
        let info = closed(&events);
        assert_eq!(info.code(), CloseCode::ABNORMAL);
        assert_eq!(info.error(), Some(&Error::Timeout(Timeout::Close)));
        assert_eq!(info.initiator(), Initiator::Local);
        assert!(!info.is_clean());
        assert!(conn.is_closed());
        assert_eq!(conn.pending_transmit(), 0, "no second close frame");
        assert_eq!(conn.poll_timeout(), None);
        assert!(conn.should_close_transport());
        quiet_at(&mut conn, secs(1_000_000));
    }

    // A close timeout longer than the keepalive interval: no ping while closing.
    let mut server = open(Role::Server, config(|c| c.close_timeout = Some(secs(60))));
    server.handle_timeout(Duration::ZERO);
    server.handle_timeout(secs(5));
    server.close(CloseCode::NORMAL, "bye").unwrap();
    take_transmit(&mut server);
    assert_eq!(server.poll_timeout(), Some(secs(65)));
    quiet_at(&mut server, secs(30));
    quiet_at(&mut server, secs(50));
    server.handle_timeout(secs(65));
    assert_eq!(
        closed(&drain_events(&mut server)).error(),
        Some(&Timeout::Close.into())
    );
}

#[test]
fn answered_close_ends_clean_before_the_deadline() {
    let mut pair = Pair::open(config(|_| {}), config(|_| {}));
    pair.client.handle_timeout(Duration::ZERO);
    pair.server.handle_timeout(Duration::ZERO);

    pair.server.handle_timeout(secs(5));
    pair.server.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(pair.server.poll_timeout(), Some(secs(15)));
    pair.client.handle_timeout(secs(6));
    let events = pair.server_to_client();
    assert_eq!(closed(&events).initiator(), Initiator::Remote);
    // The client waits for the server to close the transport, at most 10 s.
    assert_eq!(pair.client.poll_timeout(), Some(secs(16)));

    pair.server.handle_timeout(ms(14_999));
    let events = pair.client_to_server();
    let info = closed(&events);
    assert!(info.is_clean());
    assert_eq!(info.error(), None);
    assert_eq!(info.code(), CloseCode::NORMAL);
    assert_eq!(info.initiator(), Initiator::Local);
    assert_eq!(pair.server.poll_timeout(), None);
    quiet_at(&mut pair.server, secs(15));
    quiet_at(&mut pair.server, secs(100_000));
    assert!(pair.server.close_info().unwrap().is_clean());
}

// ----- 5. handshake timeout -----

fn handshake_closed(events: &[OwnedEvent]) {
    let info = closed(events);
    assert_eq!(info.error(), Some(&Error::Timeout(Timeout::Handshake)));
    assert_eq!(info.code(), CloseCode::ABNORMAL);
    assert_eq!(info.initiator(), Initiator::Local);
    assert!(!info.is_clean());
}

#[test]
fn half_sent_request_gets_408_at_the_handshake_timeout() {
    let mut server = Connection::server(config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    assert_eq!(server.poll_timeout(), Some(secs(10)));
    server.handle_timeout(secs(1));
    assert!(feed(&mut server, b"GET / HTTP/1.1\r\nHost: a\r\n", &[]).is_empty());
    assert_eq!(
        server.poll_timeout(),
        Some(secs(10)),
        "from the start, not the bytes"
    );
    // More bytes trickling in do not extend it (slowloris).
    server.handle_timeout(secs(9));
    assert!(feed(&mut server, b"X-Slow: 1\r\n", &[]).is_empty());
    assert_eq!(server.poll_timeout(), Some(secs(10)));
    quiet_at(&mut server, ms(9_999));
    assert_eq!(server.pending_transmit(), 0);

    server.handle_timeout(secs(10));
    let wire = take_transmit(&mut server);
    let text = String::from_utf8_lossy(&wire);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    let events = drain_events(&mut server);
    assert_eq!(events.len(), 1);
    handshake_closed(&events);
    assert!(server.is_closed());
    assert_eq!(server.poll_timeout(), None);
    assert!(server.should_close_transport());
}

#[test]
fn server_that_received_nothing_closes_without_a_response() {
    let mut server = Connection::server(config(|_| {}));
    // The origin is whatever the caller chooses: the deadline runs from the first call.
    server.handle_timeout(secs(100));
    assert_eq!(server.poll_timeout(), Some(secs(110)));
    quiet_at(&mut server, ms(109_999));
    server.handle_timeout(secs(110));
    assert_eq!(server.pending_transmit(), 0, "no response to no request");
    handshake_closed(&drain_events(&mut server));
    assert!(server.should_close_transport());
}

#[test]
fn request_never_answered_by_the_application_gets_408() {
    let mut server = Connection::server(config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    server.handle_timeout(secs(2));
    let events = feed(&mut server, REQUEST, &[]);
    assert!(matches!(events[..], [OwnedEvent::Request(_)]), "{events:?}");
    assert_eq!(server.poll_timeout(), Some(secs(10)));
    server.handle_timeout(secs(10));
    assert!(take_transmit(&mut server).starts_with(b"HTTP/1.1 408"));
    handshake_closed(&drain_events(&mut server));
    assert!(server.accept(Accept::new()).is_err(), "too late");
}

#[test]
fn client_whose_response_never_comes_closes_at_the_handshake_timeout() {
    let request = ClientRequest::new("ws://example.com/").unwrap();
    let mut client = Connection::client(
        &request,
        config(|c| c.handshake_timeout = Some(secs(4))),
        SeededEntropy::new(1),
    )
    .unwrap();
    take_transmit(&mut client);
    client.handle_timeout(secs(1));
    assert_eq!(client.poll_timeout(), Some(secs(5)));
    // Part of a response does not help.
    client.handle_timeout(secs(2));
    assert!(feed(&mut client, b"HTTP/1.1 101 Switching Protocols\r\n", &[]).is_empty());
    quiet_at(&mut client, ms(4_999));
    client.handle_timeout(secs(5));
    assert_eq!(client.pending_transmit(), 0, "a client sends nothing");
    handshake_closed(&drain_events(&mut client));
    assert!(client.should_close_transport(), "a failure: close at once");
}

#[test]
fn handshake_completed_in_time_leaves_only_the_keepalive_deadline() {
    let request = ClientRequest::new("ws://example.com/chat").unwrap();
    let mut client = Connection::client(&request, config(|_| {}), SeededEntropy::new(9)).unwrap();
    let mut server = Connection::server(config(|_| {}));
    client.handle_timeout(Duration::ZERO);
    server.handle_timeout(Duration::ZERO);

    server.handle_timeout(secs(2));
    let events = feed(&mut server, &take_transmit(&mut client), &[]);
    assert!(matches!(events[..], [OwnedEvent::Request(_)]));
    assert_eq!(
        server.poll_timeout(),
        Some(secs(10)),
        "still the handshake's"
    );
    server.accept(Accept::new()).unwrap();
    assert!(matches!(
        drain_events(&mut server)[..],
        [OwnedEvent::Open(_)]
    ));
    // Open: the keepalive interval from the request's arrival.
    assert_eq!(server.poll_timeout(), Some(secs(32)));

    client.handle_timeout(secs(3));
    let events = feed(&mut client, &take_transmit(&mut server), &[]);
    assert!(matches!(events[..], [OwnedEvent::Open(_)]), "{events:?}");
    assert_eq!(client.poll_timeout(), Some(secs(33)));

    quiet_at(&mut server, secs(10));
    quiet_at(&mut client, secs(10));
    quiet_at(&mut server, secs(31));
    assert!(server.is_open() && client.is_open());
}

// ----- 6. idle timeout -----

#[test]
fn idle_timeout_is_reset_by_messages_not_pings_and_starts_a_clean_close() {
    let server_cfg = config(|c| {
        c.keepalive_interval = None;
        c.idle_timeout = Some(secs(60));
    });
    let client_cfg = config(|c| c.keepalive_interval = None);
    let mut pair = Pair::open(client_cfg, server_cfg);
    let (client, server) = (&mut pair.client, &mut pair.server);
    client.handle_timeout(Duration::ZERO);
    server.handle_timeout(Duration::ZERO);
    assert_eq!(client.poll_timeout(), None, "no timer on the client");
    assert_eq!(server.poll_timeout(), Some(secs(60)));

    // A received message resets it ...
    server.handle_timeout(secs(20));
    client.send_text("in").unwrap();
    assert_eq!(
        feed(server, &take_transmit(client), &[]),
        vec![OwnedEvent::Text("in".into())]
    );
    assert_eq!(server.poll_timeout(), Some(secs(80)));
    // ... and so does a sent one, whole or fragmented ...
    server.handle_timeout(secs(30));
    server.send_binary(b"out").unwrap();
    assert_eq!(server.poll_timeout(), Some(secs(90)));
    server.handle_timeout(secs(31));
    server
        .send_fragment(wsmachine::MessageKind::Text, b"frag", false)
        .unwrap();
    assert_eq!(server.poll_timeout(), Some(secs(91)));
    server
        .send_fragment(wsmachine::MessageKind::Text, b"ment", true)
        .unwrap();
    feed(client, &take_transmit(server), &[]);

    // ... but control frames do not, either way.
    server.handle_timeout(secs(50));
    client.send_ping(b"ping").unwrap();
    client.send_pong(b"pong").unwrap();
    let events = feed(server, &take_transmit(client), &[]);
    assert_eq!(events.len(), 2, "{events:?}");
    server.handle_timeout(secs(55));
    server.send_ping(b"mine").unwrap();
    feed(client, &take_transmit(server), &[]);
    feed(server, &take_transmit(client), &[]);
    assert_eq!(server.poll_timeout(), Some(secs(91)));

    quiet_at(server, ms(90_999));
    server.handle_timeout(secs(91));
    assert!(drain_events(server).is_empty(), "closing, not closed");
    assert!(!server.is_open() && !server.is_closed(), "closing");
    let wire = server.poll_transmit().unwrap().to_vec();
    assert_eq!(sent_close(&wire).map(|(c, _)| c), Some(1001));
    assert_eq!(server.poll_timeout(), Some(secs(101)), "the close timeout");

    // The client echoes; the server ends clean.
    client.handle_timeout(secs(92));
    let events = feed(client, &take_transmit(server), &[]);
    assert_eq!(closed(&events).code(), CloseCode::GOING_AWAY);
    assert_eq!(closed(&events).initiator(), Initiator::Remote);
    server.handle_timeout(secs(93));
    let events = feed(server, &take_transmit(client), &[]);
    let info = closed(&events);
    assert!(info.is_clean());
    assert_eq!(info.code(), CloseCode::GOING_AWAY);
    assert_eq!(info.initiator(), Initiator::Local);
    assert_eq!(info.error(), None);
    assert_eq!(server.poll_timeout(), None);
    assert!(server.should_close_transport());
}

#[test]
fn idle_and_keepalive_run_together() {
    // The keepalive keeps the connection alive; idle still closes it.
    let both = config(|c| {
        c.keepalive_interval = Some(secs(10));
        c.idle_timeout = Some(secs(25));
    });
    let mut pair = Pair::open(both.clone(), both);
    let mut now = Duration::ZERO;
    pair.client.handle_timeout(now);
    pair.server.handle_timeout(now);
    while pair.server.is_open() {
        now = pair
            .server
            .poll_timeout()
            .into_iter()
            .chain(pair.client.poll_timeout())
            .min()
            .unwrap();
        assert!(now <= secs(25), "idle did not fire: {now:?}");
        pair.client.handle_timeout(now);
        pair.server.handle_timeout(now);
        // What each side queued crosses as one read, the client's first,
        // until neither has more to send.
        for _ in 0..64 {
            if pair.client.pending_transmit() == 0 && pair.server.pending_transmit() == 0 {
                break;
            }
            pair.client_to_server();
            pair.server_to_client();
        }
    }
    assert_eq!(now, secs(25));
    assert!(pair.server.is_closed() && pair.client.is_closed());
    assert!(pair.server.close_info().unwrap().is_clean());
    assert_eq!(
        pair.server.close_info().unwrap().code(),
        CloseCode::GOING_AWAY
    );
}

// ----- 7. disabling -----

#[test]
fn every_timer_can_be_disabled() {
    let far = secs(10_000_000);

    // keepalive_interval None: no ping, ever.
    let mut server = open(Role::Server, config(|c| c.keepalive_interval = None));
    server.handle_timeout(Duration::ZERO);
    assert_eq!(server.poll_timeout(), None);
    quiet_at(&mut server, far);

    // keepalive_timeout None: pings go out, nothing fails.
    let mut server = open(Role::Server, config(|c| c.keepalive_timeout = None));
    server.handle_timeout(Duration::ZERO);
    for seq in 0..3u32 {
        let at = secs(30) * (seq + 1);
        assert_eq!(server.poll_timeout(), Some(at));
        server.handle_timeout(at);
        assert_eq!(
            sent_frames(&mut server),
            vec![(OpCode::PING, false, keepalive_payload(seq))]
        );
    }
    assert!(server.is_open());
    // Its pong still measures the round trip.
    server.handle_timeout(secs(91));
    feed(
        &mut server,
        &client_frame(true, PONG, &keepalive_payload(2)),
        &[],
    );
    assert_eq!(server.rtt(), Some(secs(1)));

    // close_timeout None: an unanswered close waits forever.
    let mut server = open(
        Role::Server,
        config(|c| {
            c.close_timeout = None;
            c.keepalive_interval = None;
        }),
    );
    server.handle_timeout(Duration::ZERO);
    server.close(CloseCode::NORMAL, "").unwrap();
    take_transmit(&mut server);
    assert_eq!(server.poll_timeout(), None);
    quiet_at(&mut server, far);
    assert!(!server.is_closed());

    // handshake_timeout None.
    let mut server = Connection::server(config(|c| c.handshake_timeout = None));
    server.handle_timeout(Duration::ZERO);
    assert_eq!(server.poll_timeout(), None);
    feed(&mut server, b"GET / HTTP/1.1\r\n", &[]);
    quiet_at(&mut server, far);

    // idle_timeout None is the default.
    assert_eq!(Config::default().idle_timeout, None);
}

fn all_off() -> Config {
    config(|c| {
        c.keepalive_interval = None;
        c.keepalive_timeout = None;
        c.close_timeout = None;
        c.handshake_timeout = None;
        c.idle_timeout = None;
    })
}

#[test]
fn with_every_timer_off_poll_timeout_is_none_forever() {
    let request = ClientRequest::new("ws://example.com/").unwrap();
    let mut client = Connection::client(&request, all_off(), SeededEntropy::new(5)).unwrap();
    let mut server = Connection::server(all_off());
    let mut t = Duration::ZERO;
    let mut check = |client: &mut Connection, server: &mut Connection| {
        t += secs(1_000_000);
        for conn in [client, server] {
            assert_eq!(conn.poll_timeout(), None, "{conn:?}");
            quiet_at(conn, t);
            assert_eq!(conn.poll_timeout(), None, "{conn:?}");
        }
    };
    let request_bytes = take_transmit(&mut client);
    check(&mut client, &mut server);
    let events = feed(&mut server, &request_bytes, &[]);
    assert!(matches!(events[..], [OwnedEvent::Request(_)]));
    check(&mut client, &mut server);
    server.accept(Accept::new()).unwrap();
    drain_events(&mut server);
    feed(&mut client, &take_transmit(&mut server), &[]);
    check(&mut client, &mut server);
    client.send_text("hi").unwrap();
    client.send_ping(b"p").unwrap();
    feed(&mut server, &take_transmit(&mut client), &[]);
    feed(&mut client, &take_transmit(&mut server), &[]);
    check(&mut client, &mut server);
    client.close(CloseCode::NORMAL, "").unwrap();
    feed(&mut server, &take_transmit(&mut client), &[]);
    check(&mut client, &mut server);
    feed(&mut client, &take_transmit(&mut server), &[]);
    check(&mut client, &mut server);
    assert!(client.is_closed() && server.is_closed());
    // The client lingers forever without close_timeout: it waits for EOF.
    assert!(!client.should_close_transport());
    client.handle_eof();
    assert!(client.should_close_transport());
}

#[test]
fn nothing_runs_until_the_first_handle_timeout() {
    let mut server = open(Role::Server, config(|c| c.idle_timeout = Some(secs(1))));
    assert_eq!(server.poll_timeout(), None);
    feed(&mut server, &client_frame(true, TEXT, b"untimed"), &[]);
    server.send_text("also untimed").unwrap();
    assert_eq!(server.poll_timeout(), None);
    // The clock starts at 500 s: every deadline runs from there.
    server.handle_timeout(secs(500));
    assert_eq!(server.poll_timeout(), Some(secs(501)));
    let mut config = config(|_| {});
    config.idle_timeout = None;
    let mut client = open(Role::Client, config);
    client.handle_timeout(secs(500));
    assert_eq!(client.poll_timeout(), Some(secs(530)));
}

// ----- 8. should_close_transport -----

#[test]
fn server_closes_the_transport_once_closed_and_drained() {
    // The server starts the close.
    let mut pair = Pair::open(config(|_| {}), config(|_| {}));
    pair.server.handle_timeout(Duration::ZERO);
    pair.client.handle_timeout(Duration::ZERO);
    pair.server.close(CloseCode::NORMAL, "").unwrap();
    assert!(!pair.server.should_close_transport(), "closing");
    pair.server_to_client();
    assert!(!pair.server.should_close_transport(), "closing");
    pair.client_to_server();
    assert!(pair.server.is_closed());
    assert!(pair.server.should_close_transport());

    // The client starts it: the echo must be sent first.
    let mut pair = Pair::open(config(|_| {}), config(|_| {}));
    pair.server.handle_timeout(Duration::ZERO);
    pair.client.handle_timeout(Duration::ZERO);
    pair.client.close(CloseCode::NORMAL, "").unwrap();
    let bytes = take_transmit(&mut pair.client);
    pair.server.handle_read(&bytes);
    let events = drain_events(&mut pair.server);
    assert!(closed(&events).is_clean());
    assert!(pair.server.is_closed());
    let pending = pair.server.pending_transmit();
    assert!(pending > 1);
    assert!(
        !pair.server.should_close_transport(),
        "the echo is not sent"
    );
    pair.server.transmitted(pending - 1);
    assert!(!pair.server.should_close_transport(), "one byte left");
    pair.server.transmitted(1);
    assert!(pair.server.should_close_transport());
}

#[test]
fn client_waits_for_eof_or_close_timeout_after_a_clean_close() {
    for client_starts in [true, false] {
        for by_eof in [true, false] {
            let ctx = format!("client_starts {client_starts} by_eof {by_eof}");
            let mut pair = Pair::open(config(|_| {}), config(|_| {}));
            pair.server.handle_timeout(Duration::ZERO);
            pair.client.handle_timeout(Duration::ZERO);
            pair.client.handle_timeout(secs(1));
            pair.server.handle_timeout(secs(1));
            if client_starts {
                pair.client.close(CloseCode::NORMAL, "").unwrap();
                pair.client_to_server();
                pair.client.handle_timeout(secs(2));
                pair.server_to_client();
            } else {
                pair.server.close(CloseCode::NORMAL, "").unwrap();
                pair.client.handle_timeout(secs(2));
                pair.server_to_client();
                pair.client_to_server();
            }
            let client = &mut pair.client;
            assert!(client.is_closed(), "{ctx}");
            assert!(client.close_info().unwrap().is_clean(), "{ctx}");
            assert_eq!(client.pending_transmit(), 0, "{ctx}");
            assert!(!client.should_close_transport(), "{ctx}");
            assert_eq!(client.poll_timeout(), Some(secs(12)), "{ctx}");
            quiet_at(client, ms(11_999));
            assert!(!client.should_close_transport(), "{ctx}");
            if by_eof {
                client.handle_eof();
                assert!(client.should_close_transport(), "{ctx}");
                assert_eq!(client.poll_timeout(), None, "{ctx}");
            } else {
                client.handle_timeout(secs(12));
                assert!(drain_events(client).is_empty(), "{ctx}: no second event");
                assert_eq!(client.pending_transmit(), 0, "{ctx}");
                assert!(client.should_close_transport(), "{ctx}");
                assert_eq!(client.poll_timeout(), None, "{ctx}");
                assert!(client.close_info().unwrap().is_clean(), "{ctx}");
            }
        }
    }
}

#[test]
fn either_side_closes_the_transport_at_once_after_a_failure() {
    // Server: an unmasked frame from the client.
    let mut server = open(Role::Server, config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    let events = feed(&mut server, &server_frame(true, TEXT, b"x"), &[]);
    assert!(!closed(&events).is_clean());
    assert!(
        !server.should_close_transport(),
        "the close frame is queued"
    );
    take_transmit(&mut server);
    assert!(server.should_close_transport());
    assert_eq!(server.poll_timeout(), None);

    // Client: a masked frame from the server. No linger: it closes at once.
    let mut client = open(Role::Client, config(|_| {}));
    client.handle_timeout(Duration::ZERO);
    let events = feed(&mut client, &client_frame(true, TEXT, b"x"), &[]);
    assert!(!closed(&events).is_clean());
    take_transmit(&mut client);
    assert!(client.should_close_transport());
    assert_eq!(client.poll_timeout(), None);

    // Client: a keepalive failure is a failure too.
    let mut client = open(Role::Client, config(|_| {}));
    client.handle_timeout(Duration::ZERO);
    client.handle_timeout(secs(30));
    client.handle_timeout(secs(50));
    assert!(client.is_closed());
    assert!(!client.should_close_transport());
    take_transmit(&mut client);
    assert!(client.should_close_transport());

    // Client: a close timeout.
    let mut client = open(Role::Client, config(|_| {}));
    client.handle_timeout(Duration::ZERO);
    client.close(CloseCode::NORMAL, "").unwrap();
    take_transmit(&mut client);
    assert!(!client.should_close_transport());
    client.handle_timeout(secs(10));
    assert!(client.should_close_transport());
}

// ----- 9. time going backwards -----

#[test]
fn time_going_backwards_is_ignored() {
    let mut server = open(Role::Server, config(|_| {}));
    server.handle_timeout(secs(100));
    assert_eq!(server.poll_timeout(), Some(secs(130)));
    quiet_at(&mut server, secs(50));
    quiet_at(&mut server, Duration::ZERO);
    // Bytes are timed at the latest time given, not the earlier one.
    server.handle_timeout(secs(60));
    feed(&mut server, &client_frame(true, TEXT, b"x"), &[]);
    assert_eq!(server.poll_timeout(), Some(secs(130)));

    server.handle_timeout(secs(130));
    assert_eq!(sent_frames(&mut server).len(), 1);
    assert_eq!(server.poll_timeout(), Some(secs(150)));
    quiet_at(&mut server, secs(129));
    quiet_at(&mut server, secs(1));
    // A pong "received" at an earlier time measures from the latest one.
    server.handle_timeout(secs(120));
    feed(
        &mut server,
        &client_frame(true, PONG, &keepalive_payload(0)),
        &[],
    );
    assert_eq!(server.rtt(), Some(Duration::ZERO));
    assert!(server.is_open());

    // Closing: going back does not fire the close timeout, nor undo it.
    server.handle_timeout(secs(140));
    server.close(CloseCode::NORMAL, "").unwrap();
    take_transmit(&mut server);
    assert_eq!(server.poll_timeout(), Some(secs(150)));
    quiet_at(&mut server, secs(139));
    server.handle_timeout(secs(150));
    assert!(server.is_closed());
    assert_eq!(
        closed(&drain_events(&mut server)).error(),
        Some(&Timeout::Close.into())
    );
    quiet_at(&mut server, secs(149));
}

// ----- edges: a request parsed but not handed out, events before the clock -----

#[test]
fn handshake_timeout_after_has_event_parsed_the_request_does_not_panic() {
    let mut server = Connection::server(config(|_| {}));
    server.handle_timeout(Duration::ZERO);
    server.handle_read(REQUEST);
    // An adapter's pattern: parse the next event and write what it queued
    // before handing it out ...
    assert!(server.has_event());
    // ... and a deadline passes meanwhile.
    server.handle_timeout(secs(10));
    let events = drain_events(&mut server);
    assert!(server.is_closed());
    handshake_closed(&events);
}

#[test]
fn close_sent_before_the_clock_started_times_out_once_it_runs() {
    let mut server = open(Role::Server, config(|c| c.keepalive_interval = None));
    server.close(CloseCode::NORMAL, "").unwrap();
    take_transmit(&mut server);
    server.handle_timeout(Duration::ZERO);
    assert_eq!(server.poll_timeout(), Some(secs(10)));
    server.handle_timeout(secs(3600));
    assert!(server.is_closed());
}

#[test]
fn client_closed_before_the_clock_started_lingers_out_once_it_runs() {
    let mut client = open(Role::Client, config(|c| c.keepalive_interval = None));
    feed(
        &mut client,
        &server_frame(true, CLOSE, &close_payload(1000, "")),
        &[],
    );
    take_transmit(&mut client);
    assert!(client.is_closed() && !client.should_close_transport());
    client.handle_timeout(Duration::ZERO);
    assert_eq!(client.poll_timeout(), Some(secs(10)));
    client.handle_timeout(secs(3600));
    assert!(client.should_close_transport());
}

#[test]
fn idle_deadline_after_the_handshake_is_not_in_the_past() {
    let mut server = Connection::server(config(|c| c.idle_timeout = Some(secs(5))));
    server.handle_timeout(Duration::ZERO);
    server.handle_timeout(secs(6));
    let events = feed(&mut server, REQUEST, &[]);
    assert!(matches!(events[..], [OwnedEvent::Request(_)]));
    server.accept(Accept::new()).unwrap();
    drain_events(&mut server);
    take_transmit(&mut server);
    // Found: Some(5 s), before the current time (6 s).
    assert_eq!(server.poll_timeout(), Some(secs(11)));
    // And so an earlier time fires it: nothing may happen at 5.5 s.
    quiet_at(&mut server, ms(5_500));
    server.handle_timeout(secs(6));
    assert!(server.is_open(), "closed as idle the moment it opened");
}

// ----- 10. property: no timer fires early, deadlines move only with input -----

#[derive(Debug, Clone)]
enum Advance {
    By(Duration),
    ToDeadline,
    JustBefore,
}

#[derive(Debug, Clone)]
enum Op {
    Advance(usize, Advance),
    /// Delivers a share (of 256) of one side's pending bytes to the other.
    Deliver(usize, u8),
    Text(usize, usize),
    Ping(usize),
    Pong(usize),
    Close(usize),
    /// The other side's remaining bytes arrive, then the end of the stream.
    Eof(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let side = 0..2usize;
    let advance = prop_oneof![
        3 => (0u64..60_000).prop_map(|n| Advance::By(ms(n))),
        2 => Just(Advance::ToDeadline),
        2 => Just(Advance::JustBefore),
    ];
    prop_oneof![
        6 => (side.clone(), advance).prop_map(|(s, a)| Op::Advance(s, a)),
        6 => (side.clone(), any::<u8>()).prop_map(|(s, f)| Op::Deliver(s, f)),
        2 => (side.clone(), 0usize..200).prop_map(|(s, n)| Op::Text(s, n)),
        1 => side.clone().prop_map(Op::Ping),
        1 => side.clone().prop_map(Op::Pong),
        1 => side.clone().prop_map(Op::Close),
        1 => side.prop_map(Op::Eof),
    ]
}

fn maybe_ms(lo: u64, hi: u64) -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![1 => Just(None), 3 => (lo..hi).prop_map(|n| Some(ms(n)))]
}

fn timer_config() -> impl Strategy<Value = Config> {
    (
        maybe_ms(1, 30_000),
        maybe_ms(1, 20_000),
        any::<bool>(),
        maybe_ms(1, 10_000),
        maybe_ms(1, 10_000),
        maybe_ms(1, 60_000),
    )
        .prop_map(|(interval, timeout, needs_pong, close, handshake, idle)| {
            config(|c| {
                c.keepalive_interval = interval;
                c.keepalive_timeout = timeout;
                c.keepalive_needs_pong = needs_pong;
                c.close_timeout = close;
                c.handshake_timeout = handshake;
                c.idle_timeout = idle;
            })
        })
}

/// What can be seen of a connection from outside, to tell whether a call did anything.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    deadline: Option<Duration>,
    pending: usize,
    open: bool,
    closed: bool,
    close_transport: bool,
    rtt: Option<Duration>,
}

fn seen(conn: &Connection) -> Seen {
    Seen {
        deadline: conn.poll_timeout(),
        pending: conn.pending_transmit(),
        open: conn.is_open(),
        closed: conn.is_closed(),
        close_transport: conn.should_close_transport(),
        rtt: conn.rtt(),
    }
}

struct Sim {
    conns: [Connection; 2],
    now: [Duration; 2],
    closed_events: [usize; 2],
    /// The side has seen the end of the stream: nothing more arrives.
    eof: [bool; 2],
}

impl Sim {
    /// Drains `side`'s events, accepting a request, and checks the close event.
    fn events(&mut self, side: usize) -> Vec<OwnedEvent> {
        let mut events = drain_events(&mut self.conns[side]);
        if events.iter().any(|e| matches!(e, OwnedEvent::Request(_))) {
            self.conns[side].accept(Accept::new()).unwrap();
            events.extend(drain_events(&mut self.conns[side]));
        }
        for (i, event) in events.iter().enumerate() {
            if let OwnedEvent::Closed(_) = event {
                self.closed_events[side] += 1;
                assert_eq!(self.closed_events[side], 1, "a second Closed event");
                assert_eq!(i, events.len() - 1, "events after Closed: {events:?}");
                assert!(self.conns[side].is_closed());
            }
        }
        events
    }

    fn step(&mut self, op: &Op) {
        let before = [seen(&self.conns[0]), seen(&self.conns[1])];
        // The sides whose timers may move: the one given time or a command,
        // and the one fed bytes.
        let mut touched = [false; 2];
        match *op {
            Op::Advance(side, ref how) => {
                touched[side] = true;
                let deadline = before[side].deadline;
                let t = match (how, deadline) {
                    (Advance::ToDeadline, Some(d)) => d,
                    (Advance::JustBefore, Some(d)) => d.saturating_sub(ms(1)),
                    (Advance::By(by), _) => self.now[side] + *by,
                    (_, None) => self.now[side] + secs(1),
                };
                let conn = &mut self.conns[side];
                conn.handle_timeout(t);
                let events = self.events(side);
                let conn = &self.conns[side];
                let early = deadline.is_none_or(|d| t < d);
                if early {
                    // (a) nothing fires before its deadline.
                    assert!(events.is_empty(), "early events at {t:?}: {events:?}");
                    assert_eq!(seen(conn), before[side], "changed early at {t:?}");
                }
                self.now[side] = self.now[side].max(t);
                // (b) the next deadline is in the future.
                if let Some(next) = conn.poll_timeout() {
                    assert!(next > t, "deadline {next:?} not after {t:?}");
                    assert!(next > self.now[side], "deadline {next:?} in the past");
                }
            }
            Op::Deliver(from, share) => {
                let to = 1 - from;
                touched[to] = true;
                let Some(pending) = self.conns[from].poll_transmit().filter(|_| !self.eof[to])
                else {
                    return self.check(&before, touched);
                };
                let n = (pending.len() * (share as usize + 1)).div_ceil(256);
                let bytes = pending[..n].to_vec();
                self.conns[from].transmitted(n);
                self.conns[to].handle_read(&bytes);
                self.events(to);
                // The sender's timers do not depend on what was written.
                let mut expect = before[from].clone();
                expect.pending -= n;
                let now_from = seen(&self.conns[from]);
                expect.close_transport = now_from.close_transport;
                assert_eq!(now_from, expect, "writing moved the sender's state");
            }
            Op::Text(side, len) => {
                touched[side] = true;
                let _ = self.conns[side].send_text(&"t".repeat(len));
            }
            Op::Ping(side) => {
                touched[side] = true;
                let _ = self.conns[side].send_ping(b"app ping");
            }
            Op::Pong(side) => {
                touched[side] = true;
                let _ = self.conns[side].send_pong(b"app pong");
            }
            Op::Close(side) => {
                touched[side] = true;
                let _ = self.conns[side].close(CloseCode::NORMAL, "done");
                self.events(side);
            }
            Op::Eof(side) => {
                touched[side] = true;
                if !self.eof[side] {
                    let bytes = take_transmit(&mut self.conns[1 - side]);
                    self.conns[side].handle_read(&bytes);
                    self.conns[side].handle_eof();
                    self.eof[side] = true;
                    self.events(side);
                }
                // The peer's queue was emptied: only its pending count may differ.
                let peer = seen(&self.conns[1 - side]);
                let expect = Seen {
                    pending: peer.pending,
                    close_transport: peer.close_transport,
                    ..before[1 - side].clone()
                };
                assert_eq!(peer, expect, "the peer's writes moved its state");
            }
        }
        self.check(&before, touched);
    }

    fn check(&self, before: &[Seen; 2], touched: [bool; 2]) {
        for side in 0..2 {
            let after = seen(&self.conns[side]);
            // (d) closed stays closed.
            assert!(!before[side].closed || after.closed, "side {side} reopened");
            // (c) a side given nothing keeps its deadline (and everything else,
            // but for bytes the other side wrote from its queue).
            if !touched[side] {
                assert_eq!(
                    after.deadline, before[side].deadline,
                    "side {side} deadline moved without input"
                );
                assert_eq!(after.open, before[side].open);
                assert_eq!(after.closed, before[side].closed);
                assert_eq!(after.rtt, before[side].rtt);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn timers_never_fire_early_and_deadlines_move_only_with_input(
        client_cfg in timer_config(),
        server_cfg in timer_config(),
        handshake in any::<bool>(),
        start in 0u64..1_000_000,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let (client, server) = if handshake {
            let request = ClientRequest::new("ws://example.com/").unwrap();
            let client = Connection::client(&request, client_cfg, SeededEntropy::new(start))
                .unwrap();
            (client, Connection::server(server_cfg))
        } else {
            (
                Connection::open_client(client_cfg, SeededEntropy::new(start)),
                Connection::open_server(server_cfg),
            )
        };
        let start = ms(start);
        let mut sim = Sim {
            conns: [client, server],
            now: [start; 2],
            closed_events: [0; 2],
            eof: [false; 2],
        };
        for side in 0..2 {
            prop_assert_eq!(sim.conns[side].poll_timeout(), None);
            sim.conns[side].handle_timeout(start);
        }
        for op in &ops {
            sim.step(op);
        }
    }
}
