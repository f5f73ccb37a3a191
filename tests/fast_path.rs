//! The receive fast path (a small data frame whole in the buffer) must behave
//! exactly as the general, incremental path: the same events, the same bytes
//! queued in reply, the same close code, for valid and hostile frames alike.
//!
//! A stream delivered in one read takes the fast path for every frame it can;
//! the same stream one byte per read never does (no frame is ever whole when
//! its header arrives). Both must agree.

mod common;
use common::*;
use proptest::prelude::*;
use wsmachine::{CloseCode, Config, Connection, MessageMode, OwnedEvent};

/// One raw frame, any header the wire can carry, with a small payload.
#[derive(Debug, Clone)]
struct RawFrame {
    b0: u8,
    masked: bool,
    /// 0 = minimal length encoding, 1 = 16-bit, 2 = 64-bit (both non-minimal
    /// for short payloads, which a receiver accepts).
    width: u8,
    payload: Vec<u8>,
}

impl RawFrame {
    fn encode(&self) -> Vec<u8> {
        let len = self.payload.len();
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let mut out = vec![self.b0];
        match (self.width, len) {
            (0, 0..=125) => out.push(mask_bit | len as u8),
            (0 | 1, _) => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let key = [0x9c, 0x01, 0x5e, 0xa7];
        if self.masked {
            out.extend_from_slice(&key);
        }
        out.extend(
            self.payload
                .iter()
                .enumerate()
                .map(|(i, b)| if self.masked { b ^ key[i % 4] } else { *b }),
        );
        out
    }
}

fn first_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        // Mostly the fast path's own frames ...
        6 => prop_oneof![Just(0x81u8), Just(0x82)],
        // ... fragments and control frames ...
        3 => prop_oneof![Just(0x01u8), Just(0x02), Just(0x00), Just(0x80), Just(0x89), Just(0x8A)],
        // ... and anything at all (RSV bits, reserved opcodes, close).
        1 => any::<u8>(),
    ]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-z0-9 ]{0,40}".prop_map(String::into_bytes),
        2 => "\\PC{0,20}".prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 120..300),
    ]
}

fn frame(masked: impl Strategy<Value = bool>) -> impl Strategy<Value = RawFrame> {
    (first_byte(), masked, 0u8..3, payload()).prop_map(|(b0, masked, width, payload)| RawFrame {
        b0,
        masked,
        width,
        payload,
    })
}

/// Streamed pieces joined into their messages: the cuts between pieces follow
/// the reads by design. A message that never finished (the connection failed
/// first) is left out, since how much of it was handed out depends on the reads
/// too; everything else, the close included, must not.
fn joined(events: Vec<OwnedEvent>) -> Vec<OwnedEvent> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for event in events {
        match event {
            OwnedEvent::Fragment {
                kind, data, last, ..
            } => {
                current.extend_from_slice(&data);
                if last {
                    out.push(OwnedEvent::Fragment {
                        kind,
                        data: core::mem::take(&mut current),
                        first: true,
                        last: true,
                    });
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Events and every byte queued, for the stream in one read and byte by byte.
fn both_ways(make: impl Fn() -> Connection, wire: &[u8]) {
    let mut whole = make();
    let whole_events = joined(feed(&mut whole, wire, &[]));
    let whole_out = take_transmit(&mut whole);

    let mut split = make();
    let split_events = joined(feed_bytewise(&mut split, wire));
    let split_out = take_transmit(&mut split);

    assert_eq!(whole_events, split_events);
    assert_eq!(whole_out, split_out);
}

fn limited(max: u64) -> Config {
    let mut config = Config::default();
    config.max_message_size = max;
    config.max_frame_size = max;
    config
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn server_fast_path_matches_the_general_path(
        frames in proptest::collection::vec(frame(proptest::bool::weighted(0.9)), 1..8),
        limit in prop_oneof![Just(u64::MAX), 0u64..64],
    ) {
        let wire: Vec<u8> = frames.iter().flat_map(RawFrame::encode).collect();
        both_ways(|| Connection::open_server(limited(limit)), &wire);
    }

    #[test]
    fn client_fast_path_matches_the_general_path(
        frames in proptest::collection::vec(frame(proptest::bool::weighted(0.1)), 1..8),
        limit in prop_oneof![Just(u64::MAX), 0u64..64],
    ) {
        let wire: Vec<u8> = frames.iter().flat_map(RawFrame::encode).collect();
        both_ways(|| client_with(|c| *c = limited(limit)), &wire);
    }

    #[test]
    fn streaming_mode_gives_the_same_messages_whatever_the_split(
        frames in proptest::collection::vec(frame(Just(true)), 1..6),
    ) {
        let wire: Vec<u8> = frames.iter().flat_map(RawFrame::encode).collect();
        both_ways(|| server_with(|c| c.mode = MessageMode::Streaming), &wire);
    }
}

fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    RawFrame {
        b0,
        masked: true,
        width: 0,
        payload: payload.to_vec(),
    }
    .encode()
}

#[test]
fn whole_frames_at_the_size_limit_pass_and_one_byte_over_fails_with_1009() {
    let mut server = Connection::open_server(limited(5));
    let events = feed(&mut server, &masked(0x82, b"12345"), &[]);
    assert_eq!(events, vec![OwnedEvent::Binary(b"12345".to_vec())]);

    let mut server = Connection::open_server(limited(5));
    let events = feed(&mut server, &masked(0x82, b"123456"), &[]);
    assert_eq!(closed(&events).code(), CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn invalid_utf8_in_a_whole_text_frame_fails_with_1007() {
    let mut server = Connection::open_server(Config::default());
    let events = feed(&mut server, &masked(0x81, b"ok \xff"), &[]);
    assert_eq!(closed(&events).code(), CloseCode::INVALID_PAYLOAD);
    assert_eq!(
        sent_close(&take_transmit(&mut server)).map(|(code, _)| code),
        Some(1007)
    );
}

#[test]
fn an_unmasked_whole_frame_to_a_server_fails_with_1002() {
    let mut server = Connection::open_server(Config::default());
    let frame = RawFrame {
        b0: 0x81,
        masked: false,
        width: 0,
        payload: b"hi".to_vec(),
    };
    let events = feed(&mut server, &frame.encode(), &[]);
    assert_eq!(closed(&events).code(), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn a_non_minimal_16_bit_length_is_accepted_whole() {
    let frame = RawFrame {
        b0: 0x81,
        masked: true,
        width: 1,
        payload: b"short".to_vec(),
    };
    let mut server = Connection::open_server(Config::default());
    let events = feed(&mut server, &frame.encode(), &[]);
    assert_eq!(events, vec![OwnedEvent::Text("short".into())]);
}
