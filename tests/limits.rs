//! Size limits (RFC 6455 §10.4): `max_frame_size` and `max_message_size`,
//! checked on headers before any payload is buffered, in both message modes.

mod common;
use common::*;
use wsmachine::{Connection, MessageMode, OwnedEvent, ProtocolError};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const PING: u8 = 0x9;

const MODES: [MessageMode; 2] = [MessageMode::Whole, MessageMode::Streaming];

fn server(max_frame: u64, max_message: u64, mode: MessageMode) -> Connection {
    server_with(|c| {
        c.max_frame_size = max_frame;
        c.max_message_size = max_message;
        c.mode = mode;
    })
}

/// The header length of a client frame with a `len`-byte payload.
fn client_header_len(len: usize) -> usize {
    let ext = match len {
        0..=125 => 0,
        126..=65535 => 2,
        _ => 8,
    };
    2 + ext + 4
}

/// Collects the payload bytes of data events (whole or streamed).
fn data_bytes(events: &[OwnedEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            OwnedEvent::Text(t) => t.len(),
            OwnedEvent::Binary(b) => b.len(),
            OwnedEvent::Fragment { data, .. } => data.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn a_frame_over_max_frame_size_fails_1009_from_its_header_alone() {
    for mode in MODES {
        for (max, len) in [(1000u64, 1001usize), (0, 1), (125, 126), (65_535, 65_536)] {
            for opcode in [TEXT, BINARY] {
                let frame = client_frame(true, opcode, &vec![b'x'; len]);
                let header = client_header_len(len);
                let mut s = server(max, u64::MAX, mode);
                // Only the header: the Closed event appears without any payload.
                let events = feed_bytewise(&mut s, &frame[..header]);
                expect_failure(
                    &mut s,
                    &events,
                    1009,
                    ProtocolError::FrameTooLarge {
                        len: len as u64,
                        max,
                    },
                );
                assert_eq!(events.len(), 1);
                // The payload that follows is ignored.
                assert!(feed(&mut s, &frame[header..], &[]).is_empty());
            }
        }
        // A continuation frame too.
        let mut s = server(100, u64::MAX, mode);
        let wire = concat(&[
            client_frame(false, BINARY, &[1; 100]),
            client_frame(true, CONT, &[2; 101]),
        ]);
        let events = feed(&mut s, &wire[..106 + client_header_len(101)], &[]);
        expect_failure(
            &mut s,
            &events,
            1009,
            ProtocolError::FrameTooLarge { len: 101, max: 100 },
        );
    }
}

#[test]
fn a_frame_exactly_at_max_frame_size_is_accepted() {
    for mode in MODES {
        for max in [0usize, 1, 125, 126, 1000, 65_536] {
            let mut s = server(max as u64, u64::MAX, mode);
            let payload = vec![b'y'; max];
            let events = feed(&mut s, &client_frame(true, BINARY, &payload), &[3]);
            assert!(!s.is_closed(), "max {max}: {events:?}");
            assert_eq!(data_bytes(&events), max);
            // Fragments each at the limit make a larger message.
            let wire = concat(&[
                client_frame(false, TEXT, &payload),
                client_frame(true, CONT, &payload),
            ]);
            let events = feed(&mut s, &wire, &[]);
            assert!(!s.is_closed(), "max {max}: {events:?}");
            assert_eq!(data_bytes(&events), 2 * max);
        }
    }
}

#[test]
fn a_message_over_max_message_size_fails_1009_on_the_header_that_breaks_it() {
    for mode in MODES {
        let wire = concat(&[
            client_frame(false, TEXT, &[b'a'; 60]),
            client_frame(true, PING, &[0; 100]),
            client_frame(false, CONT, &[b'b'; 30]),
            client_frame(true, CONT, &[b'c'; 11]),
        ]);
        // Up to and including the header of the frame that goes over.
        let header_end = wire.len() - 11;
        let mut s = server(u64::MAX, 100, mode);
        let events = feed(&mut s, &wire[..header_end], &[]);
        assert!(
            !events.iter().any(|e| matches!(e, OwnedEvent::Text(_))),
            "{events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, OwnedEvent::Fragment { last: true, .. })),
            "{events:?}"
        );
        expect_failure(
            &mut s,
            &events,
            1009,
            ProtocolError::MessageTooLarge { len: 101, max: 100 },
        );
        assert!(feed(&mut s, &wire[header_end..], &[]).is_empty());
    }
}

#[test]
fn a_message_exactly_at_max_message_size_is_accepted() {
    for mode in MODES {
        let mut s = server(u64::MAX, 100, mode);
        let wire = concat(&[
            client_frame(false, TEXT, &[b'a'; 60]),
            // Control frames do not count towards the message.
            client_frame(true, PING, &[0; 100]),
            client_frame(false, CONT, &[]),
            client_frame(true, CONT, &[b'b'; 40]),
            // The count starts afresh for each message.
            client_frame(true, BINARY, &[0; 100]),
            client_frame(false, BINARY, &[0; 99]),
            client_frame(true, CONT, &[0; 1]),
        ]);
        let events = feed_bytewise(&mut s, &wire);
        assert!(!s.is_closed(), "{events:?}");
        assert_eq!(data_bytes(&events), 300);
        if mode == MessageMode::Whole {
            assert_eq!(events.len(), 4, "{events:?}");
        }
    }
}

#[test]
fn a_single_frame_over_max_message_size_fails_1009() {
    for mode in MODES {
        let mut s = server(u64::MAX, 100, mode);
        let frame = client_frame(true, BINARY, &[0; 101]);
        let events = feed(&mut s, &frame[..client_header_len(101)], &[]);
        expect_failure(
            &mut s,
            &events,
            1009,
            ProtocolError::MessageTooLarge { len: 101, max: 100 },
        );
    }
}

#[test]
fn a_frame_announcing_2_pow_62_bytes_fails_without_waiting_or_allocating() {
    let len = 1u64 << 62;
    let mut header = vec![0x82, 127];
    header.extend(len.to_be_bytes());
    for mode in MODES {
        // Client receiving: 10 header bytes, default limits.
        let mut client = client_with(|c| c.mode = mode);
        let events = feed(&mut client, &header, &[]);
        expect_failure(
            &mut client,
            &events,
            1009,
            ProtocolError::FrameTooLarge { len, max: 16 << 20 },
        );
        // Server receiving: 14 header bytes.
        let mut masked = header.clone();
        masked[1] |= 0x80;
        masked.extend([1, 2, 3, 4]);
        let mut s = server_with(|c| c.mode = mode);
        let events = feed_bytewise(&mut s, &masked);
        expect_failure(
            &mut s,
            &events,
            1009,
            ProtocolError::FrameTooLarge { len, max: 16 << 20 },
        );
        // With no frame limit, the message limit catches it.
        let mut client = client_with(|c| {
            c.mode = mode;
            c.max_frame_size = u64::MAX;
        });
        let events = feed(&mut client, &header, &[]);
        expect_failure(
            &mut client,
            &events,
            1009,
            ProtocolError::MessageTooLarge { len, max: 64 << 20 },
        );
    }
}

#[test]
fn limits_are_per_connection_config_both_roles() {
    // Client side, streaming, a server message over the limit.
    let mut client = client_with(|c| {
        c.mode = MessageMode::Streaming;
        c.max_message_size = 10;
    });
    let wire = concat(&[
        server_frame(false, BINARY, &[1; 6]),
        server_frame(true, CONT, &[2; 5]),
    ]);
    let events = feed(&mut client, &wire, &[]);
    assert_eq!(data_bytes(&events), 6, "the first piece was delivered");
    expect_failure(
        &mut client,
        &events,
        1009,
        ProtocolError::MessageTooLarge { len: 11, max: 10 },
    );
}
