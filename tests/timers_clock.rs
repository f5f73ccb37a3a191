//! The clock itself: every timer can be switched off (with all of them off
//! there is never a deadline), nothing runs until the first `handle_timeout`,
//! and time going backwards is ignored.

mod common;
use common::*;
#[path = "common/timers.rs"]
mod timers;
use core::time::Duration;
use timers::*;
use wsmachine::frame::OpCode;
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::{CloseCode, Config, Connection, OwnedEvent, SeededEntropy, Timeout};

// ----- disabling -----

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

// ----- time going backwards -----

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
