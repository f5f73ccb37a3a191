//! The handshake timeout, on a virtual clock: a server answers a request
//! that is half sent or never answered by the application with 408, closes
//! without a response when nothing arrived; a client whose response never
//! comes closes; a handshake done in time leaves only the keepalive
//! deadline; and the timeout firing after `has_event` parsed the request.

mod common;
use common::*;
#[path = "common/timers.rs"]
mod timers;
use core::time::Duration;
use timers::*;
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::{CloseCode, Connection, Error, Initiator, OwnedEvent, SeededEntropy, Timeout};

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

// ----- a request parsed but not handed out -----

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
