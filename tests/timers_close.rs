//! The close timeout and when the transport may be closed, on a virtual
//! clock: an unanswered close ends the connection after `close_timeout`, an
//! answered one ends clean; the server closes the transport once closed and
//! drained, the client waits for end of stream or the close timeout after a
//! clean close, and either side closes at once after a failure; a close
//! before the clock started is timed from its start.

mod common;
use common::*;
#[path = "common/timers.rs"]
mod timers;
use core::time::Duration;
use timers::*;
use wsmachine::testing::Pair;
use wsmachine::{CloseCode, Error, Initiator, Timeout};

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

// ----- the close timeout -----

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

// ----- should_close_transport -----

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

// ----- a close before the clock started -----

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
