//! UTF-8 in text messages (RFC 6455 §5.6, §8.1): valid text split anywhere is
//! accepted, invalid text fails the connection with 1007 as soon as the bytes
//! received cannot be valid, and the incremental validator itself.

mod common;
use common::*;
use wsmachine::{
    Config, Connection, MessageKind, MessageMode, OwnedEvent, ProtocolError, Utf8Validator,
};

const TEXT: u8 = 0x1;
const CONT: u8 = 0x0;
const PING: u8 = 0x9;

/// Every width of code point, and the edges of each width.
const SAMPLE: &str =
    "a\u{7f}\u{80}é\u{7ff}\u{800}€\u{d7ff}\u{e000}\u{fffd}\u{ffff}\u{10000}𝄞\u{10ffff}z";

/// Invalid sequences, each inside otherwise valid text.
const INVALID: &[(&str, &[u8])] = &[
    ("overlong 2-byte NUL", &[0xc0, 0x80]),
    ("overlong 2-byte", &[0xc1, 0xbf]),
    ("overlong 3-byte", &[0xe0, 0x80, 0x80]),
    ("overlong 3-byte edge", &[0xe0, 0x9f, 0xbf]),
    ("overlong 4-byte", &[0xf0, 0x80, 0x80, 0x80]),
    ("overlong 4-byte edge", &[0xf0, 0x8f, 0xbf, 0xbf]),
    ("high surrogate", &[0xed, 0xa0, 0x80]),
    ("low surrogate", &[0xed, 0xbf, 0xbf]),
    ("surrogate pair", &[0xed, 0xa0, 0xbd, 0xed, 0xb2, 0xa9]),
    ("above U+10FFFF", &[0xf4, 0x90, 0x80, 0x80]),
    ("F5 lead", &[0xf5, 0x80, 0x80, 0x80]),
    ("FE", &[0xfe]),
    ("FF", &[0xff]),
    ("stray continuation", &[0x80]),
    ("stray continuation BF", &[0xbf]),
    ("lead then ASCII", &[0xe2, 0x82, b'x']),
    ("two leads", &[0xc3, 0xc3]),
];

/// Truncated sequences, which are only invalid because the message ends.
const TRUNCATED: &[&[u8]] = &[
    &[0xc3],
    &[0xe2],
    &[0xe2, 0x82],
    &[0xf0, 0x9f],
    &[0xf0, 0x9f, 0x98],
];

fn server() -> Connection {
    Connection::open_server(Config::default())
}

fn streaming_server() -> Connection {
    server_with(|c| c.mode = MessageMode::Streaming)
}

/// Whether `bytes` can still be the start of valid UTF-8.
fn valid_prefix(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// The index of the byte that makes `bytes` invalid, if any (None: valid, or
/// only truncated at the end).
fn offending_byte(bytes: &[u8]) -> Option<usize> {
    (1..=bytes.len())
        .find(|&k| !valid_prefix(&bytes[..k]))
        .map(|k| k - 1)
}

fn with_context(bad: &[u8]) -> Vec<u8> {
    let mut b = "ok é ".as_bytes().to_vec();
    b.extend_from_slice(bad);
    b.extend_from_slice(" tail €".as_bytes());
    b
}

fn no_text(events: &[OwnedEvent]) -> bool {
    !events.iter().any(|e| {
        matches!(
            e,
            OwnedEvent::Text(_)
                | OwnedEvent::Fragment {
                    kind: MessageKind::Text,
                    last: true,
                    ..
                }
        )
    })
}

// ----- valid text -----

#[test]
fn valid_multibyte_text_in_one_frame_fed_bytewise() {
    let mut server = server();
    let events = feed_bytewise(&mut server, &client_frame(true, TEXT, SAMPLE.as_bytes()));
    assert_eq!(events, vec![OwnedEvent::Text(SAMPLE.into())]);

    let mut client = client_with(|_| {});
    let events = feed_bytewise(&mut client, &server_frame(true, TEXT, SAMPLE.as_bytes()));
    assert_eq!(events, vec![OwnedEvent::Text(SAMPLE.into())]);
}

#[test]
fn valid_text_split_into_two_fragments_at_every_byte() {
    let bytes = SAMPLE.as_bytes();
    for i in 0..=bytes.len() {
        let wire = concat(&[
            client_frame(false, TEXT, &bytes[..i]),
            client_frame(true, PING, b""),
            client_frame(true, CONT, &bytes[i..]),
        ]);
        let events = feed(&mut server(), &wire, &[]);
        assert_eq!(
            events,
            vec![OwnedEvent::Ping(vec![]), OwnedEvent::Text(SAMPLE.into())],
            "split at {i}"
        );
        let events = feed_bytewise(&mut streaming_server(), &wire);
        let text: Vec<u8> = events
            .iter()
            .filter_map(|e| match e {
                OwnedEvent::Fragment { data, .. } => Some(data.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(text, bytes, "split at {i}");
        assert!(matches!(
            events.last(),
            Some(OwnedEvent::Fragment { last: true, .. })
        ));
    }
}

#[test]
fn valid_text_split_into_three_fragments_at_every_pair_of_bytes() {
    let bytes = SAMPLE.as_bytes();
    for i in 0..=bytes.len() {
        for j in i..=bytes.len() {
            let wire = concat(&[
                client_frame(false, TEXT, &bytes[..i]),
                client_frame(false, CONT, &bytes[i..j]),
                client_frame(true, CONT, &bytes[j..]),
            ]);
            let events = feed(&mut server(), &wire, &[7, 20, 33]);
            assert_eq!(events, vec![OwnedEvent::Text(SAMPLE.into())], "{i} {j}");
        }
    }
}

#[test]
fn a_code_point_split_across_fragments_is_accepted() {
    for c in ['é', '€', '𝄞', '\u{10ffff}'] {
        let mut buf = [0; 4];
        let bytes = c.encode_utf8(&mut buf).as_bytes();
        let frames: Vec<Vec<u8>> = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let opcode = if i == 0 { TEXT } else { CONT };
                client_frame(i == bytes.len() - 1, opcode, &[*b])
            })
            .collect();
        let events = feed(&mut server(), &concat(&frames), &[]);
        assert_eq!(events, vec![OwnedEvent::Text(c.to_string())]);
    }
}

// ----- invalid text -----

fn expect_1007(conn: &mut Connection, events: &[OwnedEvent], what: &str) {
    assert!(no_text(events), "{what}: {events:?}");
    expect_failure(conn, events, 1007, ProtocolError::InvalidUtf8);
}

#[test]
fn invalid_sequences_fail_1007_in_a_single_frame() {
    for (name, bad) in INVALID {
        let text = with_context(bad);
        for make in [server, streaming_server] {
            let mut s = make();
            let events = feed(&mut s, &client_frame(true, TEXT, &text), &[]);
            expect_1007(&mut s, &events, name);
            let mut s = make();
            let events = feed_bytewise(&mut s, &client_frame(true, TEXT, &text));
            expect_1007(&mut s, &events, name);
        }
        let mut client = client_with(|_| {});
        let events = feed(&mut client, &server_frame(true, TEXT, &text), &[]);
        expect_1007(&mut client, &events, name);
        // The bare sequence alone, too.
        let mut s = server();
        let events = feed(&mut s, &client_frame(true, TEXT, bad), &[]);
        expect_1007(&mut s, &events, name);
    }
}

#[test]
fn invalid_sequences_fail_1007_when_split_across_fragments() {
    for (name, bad) in INVALID {
        let text = with_context(bad);
        for i in 0..=text.len() {
            for make in [server, streaming_server] {
                let wire = concat(&[
                    client_frame(false, TEXT, &text[..i]),
                    client_frame(true, CONT, &text[i..]),
                ]);
                let mut s = make();
                let events = feed(&mut s, &wire, &[]);
                expect_1007(&mut s, &events, name);
            }
        }
    }
}

#[test]
fn text_truncated_at_the_end_of_the_message_fails_1007() {
    for bad in TRUNCATED {
        let mut text = b"end: ".to_vec();
        text.extend_from_slice(bad);
        let cases = [
            vec![client_frame(true, TEXT, &text)],
            vec![
                client_frame(false, TEXT, &text),
                client_frame(true, CONT, b""),
            ],
            vec![
                client_frame(false, TEXT, &text[..3]),
                client_frame(true, CONT, &text[3..]),
            ],
        ];
        for frames in &cases {
            for make in [server, streaming_server] {
                let mut s = make();
                let events = feed_bytewise(&mut s, &concat(frames));
                expect_1007(&mut s, &events, &format!("{bad:02x?}"));
            }
        }
        // Across the end of one message and the start of the next.
        let wire = concat(&[
            client_frame(true, TEXT, bad),
            client_frame(true, TEXT, &[0x82, 0xac]),
        ]);
        let mut s = server();
        let events = feed(&mut s, &wire, &[]);
        expect_1007(&mut s, &events, "carried over");
    }
}

#[test]
fn invalid_text_after_valid_messages_keeps_the_earlier_ones() {
    let wire = concat(&[
        client_frame(true, TEXT, "fine ✓".as_bytes()),
        client_frame(true, TEXT, &with_context(&[0xff])),
        client_frame(true, TEXT, b"never seen"),
    ]);
    let mut s = server();
    let events = feed_bytewise(&mut s, &wire);
    assert_eq!(events[0], OwnedEvent::Text("fine ✓".into()));
    assert_eq!(events.len(), 2);
    expect_failure(&mut s, &events, 1007, ProtocolError::InvalidUtf8);
}

#[test]
fn binary_messages_are_not_validated() {
    let wire = client_frame(true, 0x2, &[0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80]);
    let events = feed(&mut server(), &wire, &[]);
    assert_eq!(
        events,
        vec![OwnedEvent::Binary(vec![0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80])]
    );
}

// ----- fail fast -----

/// Feeds `wire` in reads of `read` bytes and returns the index of the read
/// after which the Closed event appeared, checking it is 1007 and no text came.
fn read_that_fails(make: fn() -> Connection, wire: &[u8], read: usize) -> usize {
    let mut conn = make();
    let mut events = Vec::new();
    for (i, piece) in wire.chunks(read).enumerate() {
        events.extend(feed(&mut conn, piece, &[]));
        if conn.is_closed() {
            expect_1007(&mut conn, &events, "fail fast");
            return i;
        }
    }
    panic!("never failed: {events:?}");
}

#[test]
fn invalid_byte_in_a_large_frame_is_detected_when_its_read_arrives() {
    const LEN: usize = 64 << 10;
    const READ: usize = 1000;
    const AT: usize = 10_500;
    for (name, bad) in INVALID {
        for fin in [true, false] {
            let mut payload = vec![b'a'; LEN];
            payload[AT..AT + bad.len()].copy_from_slice(bad);
            let wire = client_frame(fin, TEXT, &payload);
            let header = wire.len() - LEN;
            let offending = header + AT + offending_byte(bad).unwrap();
            for make in [server, streaming_server] {
                let failed_at = read_that_fails(make, &wire, READ);
                assert_eq!(failed_at, offending / READ, "{name} fin={fin}");
            }
        }
    }
}

#[test]
fn a_sequence_split_across_reads_fails_on_the_read_that_breaks_it() {
    // e2 82 then 'x': valid until the 'x' arrives, in a read of its own.
    let mut payload = vec![b'a'; 5000];
    payload[2000..2003].copy_from_slice(&[0xe2, 0x82, b'x']);
    let wire = client_frame(true, TEXT, &payload);
    let header = wire.len() - payload.len();
    for make in [server, streaming_server] {
        let mut conn = make();
        let mut events = feed(&mut conn, &wire[..header + 2002], &[header + 2001]);
        assert!(
            !conn.is_closed(),
            "a valid prefix must not fail: {events:?}"
        );
        events.extend(feed(&mut conn, &wire[header + 2002..header + 2003], &[]));
        expect_1007(&mut conn, &events, "split");
    }
}

#[test]
fn invalid_byte_in_a_continuation_fragment_fails_before_its_fin() {
    let mut payload = vec![b'b'; 20_000];
    payload[3000] = 0xff;
    let first = client_frame(false, TEXT, b"start ");
    let second = client_frame(false, CONT, &payload);
    let mut wire = concat(&[first.clone(), second.clone()]);
    wire.extend(client_frame(true, CONT, b"end"));
    for make in [server, streaming_server] {
        let failed_at = read_that_fails(make, &wire, 512);
        let offending = first.len() + (second.len() - payload.len()) + 3000;
        assert_eq!(failed_at, offending / 512);
    }
}

// ----- the validator -----

/// Feeds `bytes` to a validator in `chunks`; returns the index of the chunk
/// that failed, or `Err(finish_ok)` if none did.
fn run_validator(bytes: &[u8], cuts: &[usize]) -> Result<usize, bool> {
    let mut v = Utf8Validator::new();
    let mut at = 0;
    for (i, &cut) in cuts.iter().chain([&bytes.len()]).enumerate() {
        if v.feed(&bytes[at..cut]).is_err() {
            return Ok(i);
        }
        at = cut;
    }
    Err(v.finish().is_ok())
}

/// Checks the validator against std for `bytes` fed whole, bytewise, and in halves.
fn check_validator(bytes: &[u8]) {
    let offending = offending_byte(bytes);
    let valid = std::str::from_utf8(bytes).is_ok();
    // Whole.
    assert_eq!(
        run_validator(bytes, &[]),
        offending.map_or(Err(valid), |_| Ok(0)),
        "{bytes:02x?} whole"
    );
    // Bytewise: fails on exactly the offending byte.
    let cuts: Vec<usize> = (1..bytes.len()).collect();
    assert_eq!(
        run_validator(bytes, &cuts),
        offending.ok_or(valid),
        "{bytes:02x?} bytewise"
    );
    // Two pieces at every cut.
    for cut in 0..=bytes.len() {
        let expected = offending.map_or(Err(valid), |o| Ok(usize::from(o >= cut)));
        assert_eq!(
            run_validator(bytes, &[cut]),
            expected,
            "{bytes:02x?} cut {cut}"
        );
    }
}

#[test]
fn validator_agrees_with_std_on_every_one_and_two_byte_input() {
    for a in 0..=255u8 {
        check_validator(&[a]);
        for b in 0..=255u8 {
            let bytes = [a, b];
            let offending = offending_byte(&bytes);
            let valid = std::str::from_utf8(&bytes).is_ok();
            assert_eq!(
                run_validator(&bytes, &[]),
                offending.map_or(Err(valid), |_| Ok(0)),
                "{bytes:02x?}"
            );
            assert_eq!(
                run_validator(&bytes, &[1]),
                offending.ok_or(valid),
                "{bytes:02x?} bytewise"
            );
        }
    }
}

#[test]
fn validator_agrees_with_std_on_three_and_four_byte_inputs() {
    const EDGES: [u8; 12] = [
        0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xe0, 0xff,
    ];
    for a in 0xc0..=0xffu8 {
        for b in 0..=255u8 {
            for c in EDGES {
                check_validator(&[a, b, c]);
            }
        }
    }
    for a in 0xf0..=0xf7u8 {
        for b in 0x80..=0xc0u8 {
            for c in [0x41, 0x80, 0xbf, 0xc0] {
                for d in [0x41, 0x80, 0xbf, 0xc0] {
                    check_validator(&[a, b, c, d]);
                }
            }
        }
    }
}

#[test]
fn validator_examples() {
    let mut v = Utf8Validator::new();
    assert!(!v.is_mid_code_point());
    // 𝄞 = f0 9d 84 9e, one byte at a time.
    for (i, b) in [0xf0, 0x9d, 0x84].into_iter().enumerate() {
        v.feed(&[b]).unwrap();
        assert!(v.is_mid_code_point(), "after {} bytes", i + 1);
    }
    v.feed(&[0x9e]).unwrap();
    assert!(!v.is_mid_code_point());
    // Empty chunks change nothing.
    v.feed(&[]).unwrap();
    v.feed(&[0xe2]).unwrap();
    v.feed(&[]).unwrap();
    assert!(v.is_mid_code_point());
    // finish fails mid code point, and resets.
    assert!(v.finish().is_err());
    assert!(!v.is_mid_code_point());
    assert!(v.finish().is_ok());
    // A code point completed and more text in the same chunk.
    v.feed(&[0xe2]).unwrap();
    v.feed(&[0x82, 0xac, b'a', 0xc3]).unwrap();
    assert!(v.is_mid_code_point());
    v.feed(&[0xa9]).unwrap();
    assert!(v.finish().is_ok());
    // Fails at once, before the sequence is complete.
    for bad in [
        &[0xf4, 0x90][..],
        &[0xed, 0xa0],
        &[0xe0, 0x80],
        &[0xf0, 0x80],
        &[0xc0],
        &[0xc1],
        &[0xf5],
    ] {
        let mut v = Utf8Validator::new();
        assert!(v.feed(bad).is_err(), "{bad:02x?}");
        let mut v = Utf8Validator::new();
        v.feed(b"valid ").unwrap();
        assert!(
            bad.iter().any(|b| v.feed(&[*b]).is_err()),
            "{bad:02x?} bytewise"
        );
    }
    // A long valid text, in odd chunk sizes.
    let text = SAMPLE.repeat(50);
    let mut v = Utf8Validator::new();
    for chunk in text.as_bytes().chunks(7) {
        v.feed(chunk).unwrap();
    }
    assert!(v.finish().is_ok());
}
