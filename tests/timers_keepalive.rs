//! Keepalive, on a virtual clock: a silent peer is pinged after the interval
//! and failed when the deadline passes (to the millisecond, also when woken
//! late); an answering peer stays open for hours with its round trip
//! measured; and which traffic and pongs postpone the ping or answer it
//! (`keepalive_needs_pong`).

mod common;
use common::*;
#[path = "common/timers.rs"]
mod timers;
use core::time::Duration;
use timers::*;
use wsmachine::frame::OpCode;
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::{
    CloseCode, Config, Connection, Error, Initiator, OwnedEvent, SeededEntropy, Timeout,
};

/// A frame as `role`'s peer sends it (masked when the peer is a client).
fn from_peer(role: Role, opcode: u8, payload: &[u8]) -> Vec<u8> {
    match role {
        Role::Server => client_frame(true, opcode, payload),
        Role::Client => server_frame(true, opcode, payload),
    }
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

// ----- a silent peer -----

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

// ----- a peer that answers -----

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

// ----- traffic and pongs -----

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
