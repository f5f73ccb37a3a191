//! The idle timeout, on a virtual clock: reset by data messages either way,
//! not by control frames, it starts a clean close with 1001; it runs beside
//! the keepalive; and its deadline after the opening handshake is not in the
//! past.

mod common;
use common::*;
#[path = "common/timers.rs"]
mod timers;
use core::time::Duration;
use timers::*;
use wsmachine::handshake::Accept;
use wsmachine::testing::Pair;
use wsmachine::{CloseCode, Connection, Initiator, OwnedEvent};

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

// ----- after the opening handshake -----

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
