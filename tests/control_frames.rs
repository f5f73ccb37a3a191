//! Control frames (RFC 6455 §5.5) and the per-frame header rules of §5.2:
//! pings and pongs, control frame limits, reserved opcodes and bits, lengths.

mod common;
use common::*;
use wsmachine::frame::OpCode;
use wsmachine::testing::Pair;
use wsmachine::{Config, Connection, Error, OwnedEvent, ProtocolError, UsageError};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn server() -> Connection {
    Connection::open_server(Config::default())
}

fn payloads() -> Vec<Vec<u8>> {
    vec![
        vec![],
        b"hello".to_vec(),
        (0..=124).collect(),
        (0..125).map(|i| 255 - i as u8).collect(),
    ]
}

#[test]
fn server_answers_a_ping_with_a_pong_carrying_the_same_payload() {
    for payload in payloads() {
        let mut server = server();
        let events = feed_bytewise(&mut server, &client_frame(true, PING, &payload));
        assert_eq!(events, vec![OwnedEvent::Ping(payload.clone())]);
        // Exactly one unmasked pong with the same payload, byte for byte.
        assert_eq!(
            take_transmit(&mut server),
            server_frame(true, PONG, &payload)
        );
    }
}

#[test]
fn client_answers_a_ping_with_a_masked_pong() {
    for payload in payloads() {
        let mut client = client_with(|_| {});
        let events = feed(&mut client, &server_frame(true, PING, &payload), &[1]);
        assert_eq!(events, vec![OwnedEvent::Ping(payload.clone())]);
        let sent = decode_all(&take_transmit(&mut client));
        assert_eq!(sent.len(), 1);
        let (header, body) = &sent[0];
        assert_eq!((header.opcode, header.fin), (OpCode::PONG, true));
        assert!(header.mask.is_some());
        assert_eq!(body, &payload);
    }
}

#[test]
fn every_ping_gets_its_own_pong_in_order() {
    let mut pair = Pair::open(Config::default(), Config::default());
    for i in 0..10u8 {
        pair.client.send_ping(&[i; 3]).unwrap();
    }
    let at_server = pair.client_to_server();
    let at_client = pair.server_to_client();
    let pings: Vec<_> = (0..10u8).map(|i| OwnedEvent::Ping(vec![i; 3])).collect();
    let pongs: Vec<_> = (0..10u8).map(|i| OwnedEvent::Pong(vec![i; 3])).collect();
    assert_eq!(at_server, pings);
    assert_eq!(at_client, pongs);
}

#[test]
fn a_pong_is_delivered_and_not_answered() {
    let mut server = server();
    let events = feed(&mut server, &client_frame(true, PONG, b"beat"), &[]);
    assert_eq!(events, vec![OwnedEvent::Pong(b"beat".to_vec())]);
    assert_eq!(server.pending_transmit(), 0);
}

#[test]
fn without_auto_pong_nothing_is_queued_and_send_pong_answers() {
    let mut server = server_with(|c| c.auto_pong = false);
    let events = feed(
        &mut server,
        &client_frame(true, PING, b"are you there"),
        &[],
    );
    assert_eq!(events, vec![OwnedEvent::Ping(b"are you there".to_vec())]);
    assert_eq!(server.pending_transmit(), 0);
    assert!(server.poll_transmit().is_none());
    server.send_pong(b"are you there").unwrap();
    assert_eq!(
        take_transmit(&mut server),
        server_frame(true, PONG, b"are you there")
    );

    let no_auto_pong = {
        let mut c = Config::default();
        c.auto_pong = false;
        c
    };
    let mut pair = Pair::open(no_auto_pong.clone(), no_auto_pong);
    pair.server.send_ping(b"x").unwrap();
    let at_client = pair.server_to_client();
    assert_eq!(at_client, vec![OwnedEvent::Ping(b"x".to_vec())]);
    assert_eq!(pair.client.pending_transmit(), 0);
    pair.client.send_pong(b"x").unwrap();
    let at_server = pair.client_to_server();
    assert_eq!(at_server, vec![OwnedEvent::Pong(b"x".to_vec())]);
}

#[test]
fn control_payload_over_125_fails_1002_from_the_header() {
    for opcode in [PING, PONG, CLOSE] {
        for len in [126usize, 200, 65_535, 70_000] {
            let mut payload = vec![b'x'; len];
            if opcode == CLOSE {
                payload[..2].copy_from_slice(&1000u16.to_be_bytes());
            }
            let frame = client_frame(true, opcode, &payload);
            let header_len = frame.len() - len;
            // The header alone is enough to fail.
            let mut server = server();
            let events = feed(&mut server, &frame[..header_len], &[]);
            expect_failure(
                &mut server,
                &events,
                1002,
                ProtocolError::ControlFrameTooLong(len as u64),
            );
            // And the payload that follows is ignored.
            assert!(feed(&mut server, &frame[header_len..], &[]).is_empty());
            assert_eq!(server.pending_transmit(), 0);
        }
    }
    // Client side.
    let mut client = client_with(|_| {});
    let events = feed(&mut client, &server_frame(true, PING, &[0; 126]), &[]);
    expect_failure(
        &mut client,
        &events,
        1002,
        ProtocolError::ControlFrameTooLong(126),
    );
}

#[test]
fn control_payload_of_125_is_fine() {
    let mut server = server();
    let events = feed(&mut server, &client_frame(true, PING, &[1; 125]), &[]);
    assert_eq!(events, vec![OwnedEvent::Ping(vec![1; 125])]);
}

#[test]
fn control_frame_without_fin_fails_1002() {
    for opcode in [PING, PONG, CLOSE] {
        for payload in [&b""[..], b"\x03\xe8"] {
            let mut server = server();
            let events = feed(&mut server, &client_frame(false, opcode, payload), &[]);
            expect_failure(
                &mut server,
                &events,
                1002,
                ProtocolError::FragmentedControlFrame,
            );
        }
        // Also in the middle of a fragmented message.
        let wire = concat(&[
            client_frame(false, TEXT, b"a"),
            client_frame(false, opcode, b""),
            client_frame(true, CONT, b"b"),
        ]);
        let mut server = server();
        let events = feed_bytewise(&mut server, &wire);
        expect_failure(
            &mut server,
            &events,
            1002,
            ProtocolError::FragmentedControlFrame,
        );
    }
    let mut client = client_with(|_| {});
    let events = feed(&mut client, &server_frame(false, PING, b"p"), &[]);
    expect_failure(
        &mut client,
        &events,
        1002,
        ProtocolError::FragmentedControlFrame,
    );
}

#[test]
fn sending_a_control_payload_over_125_is_a_usage_error() {
    for conn in [server(), client_with(|_| {})] {
        let mut conn = conn;
        assert_eq!(
            conn.send_ping(&[0; 126]),
            Err(Error::Usage(UsageError::ControlPayloadTooLong(126)))
        );
        assert_eq!(
            conn.send_pong(&[0; 1000]),
            Err(Error::Usage(UsageError::ControlPayloadTooLong(1000)))
        );
        assert_eq!(conn.pending_transmit(), 0, "nothing queued");
        assert!(conn.is_open());
        conn.send_ping(&[0; 125]).unwrap();
        conn.send_pong(&[0; 125]).unwrap();
        let sent = decode_all(&take_transmit(&mut conn));
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|(_, p)| p.len() == 125));
    }
}

#[test]
fn every_reserved_opcode_fails_1002() {
    let reserved: Vec<u8> = (0x3..=0x7).chain(0xB..=0xF).collect();
    assert_eq!(reserved.len(), 10);
    for &opcode in &reserved {
        for fin in [true, false] {
            for payload in [&b""[..], b"data"] {
                let mut server = server();
                let events = feed(&mut server, &client_frame(fin, opcode, payload), &[]);
                expect_failure(
                    &mut server,
                    &events,
                    1002,
                    ProtocolError::ReservedOpcode(opcode),
                );

                let mut client = client_with(|_| {});
                let events = feed(&mut client, &server_frame(fin, opcode, payload), &[]);
                expect_failure(
                    &mut client,
                    &events,
                    1002,
                    ProtocolError::ReservedOpcode(opcode),
                );
            }
        }
        // Between fragments of a message, after a delivered message.
        let wire = concat(&[
            client_frame(true, BINARY, b"ok"),
            client_frame(false, TEXT, b"a"),
            client_frame(true, opcode, b""),
            client_frame(true, CONT, b"b"),
        ]);
        let mut server = server();
        let events = feed_bytewise(&mut server, &wire);
        assert_eq!(events[0], OwnedEvent::Binary(b"ok".to_vec()));
        assert_eq!(events.len(), 2, "{events:?}");
        expect_failure(
            &mut server,
            &events,
            1002,
            ProtocolError::ReservedOpcode(opcode),
        );
    }
}

#[test]
fn every_nonzero_rsv_combination_fails_1002() {
    for rsv in [0x40u8, 0x20, 0x10, 0x60, 0x50, 0x30, 0x70] {
        for opcode in [TEXT, BINARY, PING, PONG, CLOSE] {
            let payload: &[u8] = if opcode == CLOSE { b"\x03\xe8" } else { b"x" };
            let mut server = server();
            let events = feed(
                &mut server,
                &raw_frame(true, rsv, opcode, Some(MASK), payload),
                &[],
            );
            expect_failure(
                &mut server,
                &events,
                1002,
                ProtocolError::ReservedBits(rsv >> 4),
            );

            let mut client = client_with(|_| {});
            let events = feed(
                &mut client,
                &raw_frame(true, rsv, opcode, None, payload),
                &[],
            );
            expect_failure(
                &mut client,
                &events,
                1002,
                ProtocolError::ReservedBits(rsv >> 4),
            );
        }
        // On a continuation frame.
        let wire = concat(&[
            client_frame(false, TEXT, b"a"),
            raw_frame(true, rsv, CONT, Some(MASK), b"b"),
        ]);
        let mut server = server();
        let events = feed(&mut server, &wire, &[]);
        expect_failure(
            &mut server,
            &events,
            1002,
            ProtocolError::ReservedBits(rsv >> 4),
        );
    }
}

#[test]
fn sixty_four_bit_length_with_the_top_bit_set_fails_1002() {
    for top in [0x80u8, 0xff] {
        let mut length = [0xffu8; 8];
        length[0] = top;
        // To a client: unmasked, 10 header bytes.
        let mut wire = vec![0x82, 127];
        wire.extend(length);
        let mut client = client_with(|_| {});
        let events = feed(&mut client, &wire, &[]);
        expect_failure(
            &mut client,
            &events,
            1002,
            ProtocolError::InvalidPayloadLength,
        );

        // To a server: masked, 14 header bytes.
        let mut wire = vec![0x82, 0x80 | 127];
        wire.extend(length);
        wire.extend(MASK);
        let mut server = server();
        let events = feed_bytewise(&mut server, &wire);
        expect_failure(
            &mut server,
            &events,
            1002,
            ProtocolError::InvalidPayloadLength,
        );
    }
    // Exactly 2^63 (top bit only).
    let mut wire = vec![0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
    let mut client = client_with(|_| {});
    let events = feed(&mut client, &wire, &[]);
    expect_failure(
        &mut client,
        &events,
        1002,
        ProtocolError::InvalidPayloadLength,
    );
    // The same length with the top bit clear is only too large, not invalid.
    wire[2] = 0x7f;
    let mut client = client_with(|_| {});
    let events = feed(&mut client, &wire, &[]);
    assert_eq!(closed(&events).code(), wsmachine::CloseCode(1009));
}

#[test]
fn non_minimal_length_encodings_are_accepted() {
    // §5.2's minimal-length rule binds senders; a receiver may be lenient.
    // 16-bit length 5, and 64-bit length 5.
    let mut wire = vec![0x81, 126, 0, 5];
    wire.extend(b"hello");
    wire.extend([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2]);
    let mut client = client_with(|_| {});
    assert_eq!(
        feed_bytewise(&mut client, &wire),
        vec![
            OwnedEvent::Text("hello".into()),
            OwnedEvent::Binary(vec![1, 2])
        ]
    );
}
