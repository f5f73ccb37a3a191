//! The closing handshake (RFC 6455 §5.5.1, §7), close codes (§7.4), and what
//! happens around the close: EOF, input and commands after it.

mod common;
use common::*;
use wsmachine::testing::Pair;
use wsmachine::{
    CloseCode, CloseInfo, Config, Connection, Error, Initiator, MessageKind, OwnedEvent,
    ProtocolError, UsageError,
};

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

fn server() -> Connection {
    Connection::open_server(Config::default())
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

fn summary(info: &CloseInfo) -> (u16, &str, Initiator, bool) {
    (
        info.code().0,
        info.reason(),
        info.initiator(),
        info.is_clean(),
    )
}

#[test]
fn remote_close_is_echoed_with_the_same_code_and_reported() {
    let mut server = server();
    let events = feed(
        &mut server,
        &client_frame(true, CLOSE, &close_payload(1001, b"going away")),
        &[],
    );
    assert_eq!(events.len(), 1);
    let info = closed(&events);
    assert_eq!(summary(info), (1001, "going away", Initiator::Remote, true));
    assert_eq!(info.error(), None);
    assert!(server.is_closed() && !server.is_open());
    assert_eq!(server.close_info(), Some(info));
    // The echo: same code, empty reason, unmasked, and nothing else.
    assert_eq!(
        take_transmit(&mut server),
        server_frame(true, CLOSE, &1001u16.to_be_bytes())
    );

    // Client side: the echo is masked and carries the code.
    let mut client = client_with(|_| {});
    let events = feed(
        &mut client,
        &server_frame(true, CLOSE, &close_payload(4321, b"custom")),
        &[],
    );
    assert_eq!(
        summary(closed(&events)),
        (4321, "custom", Initiator::Remote, true)
    );
    let wire = take_transmit(&mut client);
    let frames = decode_all(&wire);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].0.mask.is_some());
    assert_eq!(sent_close(&wire), Some((4321, String::new())));
}

#[test]
fn local_close_then_echo() {
    let mut pair = Pair::open(Config::default(), Config::default());
    pair.client.close(CloseCode::NORMAL, "done").unwrap();
    assert!(!pair.client.is_open());
    assert!(!pair.client.is_closed(), "waiting for the echo");
    let wire = take_transmit(&mut pair.client);
    assert_eq!(sent_close(&wire), Some((1000, "done".into())));

    let at_server = feed(&mut pair.server, &wire, &[]);
    assert_eq!(
        summary(closed(&at_server)),
        (1000, "done", Initiator::Remote, true)
    );
    let at_client = pair.server_to_client();
    assert_eq!(at_client.len(), 1);
    let info = closed(&at_client);
    assert_eq!(summary(info), (1000, "", Initiator::Local, true));
    assert_eq!(info.error(), None);
    assert!(pair.client.is_closed());
    // The handshake is complete: no second close from the client.
    assert_eq!(pair.client.pending_transmit(), 0);
}

#[test]
fn local_close_reports_the_code_of_the_peer_frame() {
    let mut client = client_with(|_| {});
    client.close(CloseCode::NORMAL, "bye").unwrap();
    take_transmit(&mut client);
    let events = feed(
        &mut client,
        &server_frame(true, CLOSE, &close_payload(1001, b"me too")),
        &[],
    );
    assert_eq!(
        summary(closed(&events)),
        (1001, "me too", Initiator::Local, true)
    );
    assert_eq!(client.pending_transmit(), 0, "no answer to the echo");

    // An empty echo: 1005.
    let mut server = server();
    server.close(CloseCode(4000), "").unwrap();
    take_transmit(&mut server);
    let events = feed(&mut server, &client_frame(true, CLOSE, b""), &[]);
    assert_eq!(summary(closed(&events)), (1005, "", Initiator::Local, true));
    assert_eq!(server.pending_transmit(), 0);
}

#[test]
fn simultaneous_close() {
    let mut pair = Pair::open(Config::default(), Config::default());
    pair.client.close(CloseCode::NORMAL, "client").unwrap();
    pair.server.close(CloseCode::GOING_AWAY, "server").unwrap();
    let from_client = take_transmit(&mut pair.client);
    let from_server = take_transmit(&mut pair.server);
    let at_server = feed(&mut pair.server, &from_client, &[]);
    let at_client = feed(&mut pair.client, &from_server, &[]);
    assert_eq!(
        summary(closed(&at_server)),
        (1000, "client", Initiator::Local, true)
    );
    assert_eq!(
        summary(closed(&at_client)),
        (1001, "server", Initiator::Local, true)
    );
    assert_eq!(at_server.len(), 1);
    assert_eq!(at_client.len(), 1);
    // Each sent exactly one close frame.
    assert_eq!(pair.client.pending_transmit(), 0);
    assert_eq!(pair.server.pending_transmit(), 0);
    assert!(pair.client.is_closed() && pair.server.is_closed());
}

#[test]
fn a_close_between_fragments_ends_the_connection_without_the_message() {
    let wire = concat(&[
        client_frame(false, TEXT, b"never "),
        client_frame(true, CLOSE, &close_payload(1001, b"")),
        client_frame(true, 0x0, b"finished"),
    ]);
    let mut server = server();
    let events = feed_bytewise(&mut server, &wire);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        summary(closed(&events)),
        (1001, "", Initiator::Remote, true)
    );
    assert_eq!(
        sent_close(&take_transmit(&mut server)),
        Some((1001, String::new()))
    );
}

#[test]
fn empty_close_reports_1005_and_is_echoed_empty() {
    let mut server = server();
    let events = feed(&mut server, &client_frame(true, CLOSE, b""), &[]);
    let info = closed(&events);
    assert_eq!(summary(info), (1005, "", Initiator::Remote, true));
    assert_eq!(info.code(), CloseCode::NO_STATUS);
    let wire = take_transmit(&mut server);
    assert_eq!(wire, server_frame(true, CLOSE, b""));
    assert_eq!(sent_close(&wire), None);
}

#[test]
fn one_byte_close_payload_fails_1002() {
    for byte in [0x03u8, 0x00, 0xff] {
        let mut server = server();
        let events = feed(&mut server, &client_frame(true, CLOSE, &[byte]), &[]);
        expect_failure(
            &mut server,
            &events,
            1002,
            ProtocolError::InvalidClosePayload,
        );
    }
}

#[test]
fn every_invalid_close_code_fails_1002() {
    for code in [
        0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        for reason in [&b""[..], b"why"] {
            let mut server = server();
            let events = feed(
                &mut server,
                &client_frame(true, CLOSE, &close_payload(code, reason)),
                &[],
            );
            expect_failure(
                &mut server,
                &events,
                1002,
                ProtocolError::InvalidCloseCode(code),
            );

            let mut client = client_with(|_| {});
            let events = feed(
                &mut client,
                &server_frame(true, CLOSE, &close_payload(code, reason)),
                &[],
            );
            expect_failure(
                &mut client,
                &events,
                1002,
                ProtocolError::InvalidCloseCode(code),
            );
        }
    }
}

#[test]
fn every_valid_close_code_is_accepted_and_echoed() {
    let codes = (1000..=1003)
        .chain(1007..=1014)
        .chain([3000, 3001, 3999, 4000, 4001, 4999]);
    for code in codes {
        let mut server = server();
        let events = feed(
            &mut server,
            &client_frame(true, CLOSE, &close_payload(code, "ok ✓".as_bytes())),
            &[],
        );
        let info = closed(&events);
        assert_eq!(summary(info), (code, "ok ✓", Initiator::Remote, true));
        assert_eq!(info.error(), None);
        assert_eq!(
            take_transmit(&mut server),
            server_frame(true, CLOSE, &code.to_be_bytes()),
            "echo of {code}"
        );
    }
}

#[test]
fn close_reason_of_123_bytes_is_accepted() {
    let reason = "r".repeat(123);
    let mut server = server();
    let events = feed(
        &mut server,
        &client_frame(true, CLOSE, &close_payload(1000, reason.as_bytes())),
        &[],
    );
    assert_eq!(closed(&events).reason(), reason);
}

#[test]
fn invalid_utf8_close_reason_fails_1007() {
    for reason in [
        &[0xff][..],
        &[b'o', b'k', 0xc0, 0x80],
        &[0xed, 0xa0, 0x80],
        &[0xe2, 0x82], // truncated
    ] {
        let mut server = server();
        let events = feed(
            &mut server,
            &client_frame(true, CLOSE, &close_payload(1000, reason)),
            &[],
        );
        expect_failure(
            &mut server,
            &events,
            1007,
            ProtocolError::InvalidCloseReason,
        );
    }
}

#[test]
fn eof_without_close_is_1006_abnormal() {
    let mut server = server();
    assert!(
        feed(&mut server, &client_frame(true, TEXT, b"hi"), &[])
            .iter()
            .all(|e| matches!(e, OwnedEvent::Text(_)))
    );
    server.handle_eof();
    let events = drain_events(&mut server);
    assert_eq!(events.len(), 1);
    let info = closed(&events);
    assert_eq!(summary(info), (1006, "", Initiator::Remote, false));
    assert_eq!(info.code(), CloseCode::ABNORMAL);
    assert_eq!(info.error(), None);
    assert!(server.is_closed());
    // 1006 is never sent on the wire.
    assert_eq!(server.pending_transmit(), 0);
}

#[test]
fn eof_after_our_close_is_1006_local() {
    let mut client = client_with(|_| {});
    client.close(CloseCode::NORMAL, "").unwrap();
    take_transmit(&mut client);
    client.handle_eof();
    let events = drain_events(&mut client);
    assert_eq!(
        summary(closed(&events)),
        (1006, "", Initiator::Local, false)
    );
    assert_eq!(events.len(), 1);
}

#[test]
fn eof_mid_frame_is_1006_after_the_complete_messages() {
    let wire = concat(&[
        client_frame(true, TEXT, b"first"),
        client_frame(true, PING, b"p"),
        client_frame(true, TEXT, b"second, cut short"),
    ]);
    // Cut inside the last frame's header, and inside its payload.
    for cut in [wire.len() - 19, wire.len() - 5] {
        let mut server = server();
        server.handle_read(&wire[..cut]);
        server.handle_eof();
        let events = drain_events(&mut server);
        assert_eq!(
            &events[..2],
            &[
                OwnedEvent::Text("first".into()),
                OwnedEvent::Ping(b"p".to_vec())
            ]
        );
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(
            summary(closed(&events)),
            (1006, "", Initiator::Remote, false)
        );
    }
    // Inside a fragmented message.
    let wire = concat(&[
        client_frame(false, TEXT, b"part"),
        client_frame(true, CLOSE, b"\x03\xe8"),
    ]);
    let mut server = server();
    server.handle_read(&wire[..wire.len() - 1]);
    server.handle_eof();
    let events = drain_events(&mut server);
    assert_eq!(events.len(), 1);
    assert_eq!(closed(&events).code().0, 1006);
}

#[test]
fn eof_right_after_a_complete_close_frame_is_a_clean_close() {
    let mut server = server();
    let wire = concat(&[
        client_frame(true, TEXT, b"last words"),
        client_frame(true, CLOSE, &close_payload(1000, b"bye")),
    ]);
    server.handle_read(&wire);
    server.handle_eof();
    let events = drain_events(&mut server);
    assert_eq!(events[0], OwnedEvent::Text("last words".into()));
    assert_eq!(events.len(), 2);
    assert_eq!(
        summary(closed(&events)),
        (1000, "bye", Initiator::Remote, true)
    );
    assert_eq!(
        sent_close(&take_transmit(&mut server)),
        Some((1000, String::new()))
    );
}

#[test]
fn sending_after_close_is_refused() {
    fn assert_refuses_everything(conn: &mut Connection) {
        let closed = Err(Error::Usage(UsageError::Closed));
        let before = conn.pending_transmit();
        assert_eq!(conn.send_text("x"), closed);
        assert_eq!(conn.send_binary(b"x"), closed);
        assert_eq!(conn.send_fragment(MessageKind::Text, b"x", true), closed);
        assert_eq!(conn.send_fragment(MessageKind::Binary, b"x", false), closed);
        assert_eq!(conn.send_ping(b"x"), closed);
        assert_eq!(conn.send_pong(b"x"), closed);
        assert_eq!(conn.close(CloseCode::NORMAL, ""), closed);
        assert_eq!(conn.pending_transmit(), before, "nothing queued");
    }
    // After our close.
    let mut server = server();
    server.close(CloseCode::NORMAL, "").unwrap();
    assert_refuses_everything(&mut server);
    // After the peer's close.
    let mut server = Connection::open_server(Config::default());
    feed(&mut server, &client_frame(true, CLOSE, b""), &[]);
    assert_refuses_everything(&mut server);
    // After a failure.
    let mut server = Connection::open_server(Config::default());
    feed(&mut server, &[0x81, 0x00], &[]);
    assert!(server.is_closed());
    assert_refuses_everything(&mut server);
    // After EOF.
    let mut client = client_with(|_| {});
    client.handle_eof();
    drain_events(&mut client);
    assert_refuses_everything(&mut client);
}

#[test]
fn close_with_an_unsendable_code_or_long_reason_is_refused() {
    let mut server = server();
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_eq!(
            server.close(CloseCode(code), ""),
            Err(Error::Usage(UsageError::InvalidCloseCode(code)))
        );
    }
    let long = "é".repeat(62); // 124 bytes
    assert_eq!(
        server.close(CloseCode::NORMAL, &long),
        Err(Error::Usage(UsageError::CloseReasonTooLong(124)))
    );
    // Nothing changed: still open, nothing queued.
    assert!(server.is_open());
    assert_eq!(server.pending_transmit(), 0);
    server.send_text("still open").unwrap();
    let reason = "x".repeat(123);
    server.close(CloseCode(4999), &reason).unwrap();
    let wire = take_transmit(&mut server);
    assert_eq!(sent_close(&wire), Some((4999, reason)));
}

#[test]
fn input_after_the_close_is_ignored() {
    let after = concat(&[
        client_frame(true, TEXT, b"late"),
        client_frame(true, PING, b"late ping"),
        client_frame(true, CLOSE, b"\x03\xe8"),
    ]);
    // In the same read as the close.
    let mut server = server();
    let mut wire = client_frame(true, CLOSE, b"\x03\xe8");
    wire.extend(&after);
    let events = feed(&mut server, &wire, &[]);
    assert_eq!(events.len(), 1);
    closed(&events);
    assert_eq!(
        take_transmit(&mut server),
        server_frame(true, CLOSE, b"\x03\xe8")
    );
    // In later reads, through both input paths, and EOF.
    let events = feed(&mut server, &after, &[3, 10, 20]);
    assert!(events.is_empty(), "{events:?}");
    server.handle_eof();
    assert!(server.poll_event().is_none());
    assert_eq!(server.pending_transmit(), 0);

    // After a failure too.
    let mut server = Connection::open_server(Config::default());
    let mut wire = client_frame(true, 0x3, b"");
    wire.extend(&after);
    let events = feed(&mut server, &wire, &[]);
    expect_failure(&mut server, &events, 1002, ProtocolError::ReservedOpcode(3));
    assert!(feed(&mut server, &after, &[]).is_empty());
    assert_eq!(server.pending_transmit(), 0);
}

#[test]
fn messages_after_our_close_are_still_delivered_without_auto_pong() {
    let mut client = client_with(|_| {});
    client.close(CloseCode::NORMAL, "").unwrap();
    take_transmit(&mut client);
    let wire = concat(&[
        server_frame(true, TEXT, b"in flight"),
        server_frame(true, PING, b"ping"),
        server_frame(false, 0x2, b"a"),
        server_frame(true, 0xA, b"pong"),
        server_frame(true, 0x0, b"b"),
        server_frame(true, CLOSE, b"\x03\xe8"),
    ]);
    let events = feed_bytewise(&mut client, &wire);
    assert_eq!(
        &events[..4],
        &[
            OwnedEvent::Text("in flight".into()),
            OwnedEvent::Ping(b"ping".to_vec()),
            OwnedEvent::Pong(b"pong".to_vec()),
            OwnedEvent::Binary(b"ab".to_vec()),
        ]
    );
    assert_eq!(events.len(), 5);
    assert_eq!(summary(closed(&events)), (1000, "", Initiator::Local, true));
    // No pong after our close frame, and no second close.
    assert_eq!(client.pending_transmit(), 0);
}

#[test]
fn a_peer_error_after_our_close_sends_no_second_close() {
    let mut server = server();
    server.close(CloseCode::NORMAL, "").unwrap();
    take_transmit(&mut server);
    // An unmasked frame from the client.
    let events = feed(&mut server, &[0x82, 0x00], &[]);
    let info = closed(&events);
    assert_eq!(
        info.error(),
        Some(&Error::Protocol(ProtocolError::UnmaskedFrame))
    );
    assert!(!info.is_clean());
    assert_eq!(server.pending_transmit(), 0);
}

#[test]
fn exactly_one_closed_event_then_none_forever() {
    let endings: [fn(&mut Connection); 4] = [
        |s| s.handle_read(&client_frame(true, CLOSE, b"")),
        |s| s.handle_read(&[0x81, 0x00]), // unmasked: fails
        |s| s.handle_eof(),
        |s| {
            s.close(CloseCode::NORMAL, "").unwrap();
            s.handle_read(&client_frame(true, CLOSE, b""));
        },
    ];
    for end in endings {
        let mut server = server();
        end(&mut server);
        let mut closed_events = 0;
        for _ in 0..5 {
            if let Some(event) = server.poll_event() {
                assert!(matches!(event, wsmachine::Event::Closed(_)), "{event:?}");
                closed_events += 1;
            }
        }
        assert_eq!(closed_events, 1);
        server.handle_read(&client_frame(true, TEXT, b"x"));
        server.handle_eof();
        let buf = server.recv_buffer();
        buf[..2].copy_from_slice(&[0x81, 0x00]);
        server.commit_recv(2);
        for _ in 0..5 {
            assert!(server.poll_event().is_none());
        }
        assert!(server.is_closed());
        assert!(server.close_info().is_some());
    }
}
