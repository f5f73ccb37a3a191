//! Masking (RFC 6455 §5.1, §5.3): who masks, with which keys, and the masking
//! functions themselves.

mod common;
use common::*;
use wsmachine::frame::{FrameHeader, OpCode, Status, apply_mask, mask_copy};
use wsmachine::{
    CloseCode, Config, Connection, Entropy, MessageKind, ProtocolError, SeededEntropy,
};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Everything a connection can send, in one sequence.
fn send_everything(conn: &mut Connection) {
    conn.send_text("hello").unwrap();
    conn.send_binary(&[0; 300]).unwrap();
    conn.send_binary(&[7; 70_000]).unwrap();
    conn.send_fragment(MessageKind::Text, "frag".as_bytes(), false)
        .unwrap();
    conn.send_ping(b"ping").unwrap();
    conn.send_fragment(MessageKind::Text, "ment".as_bytes(), true)
        .unwrap();
    conn.send_pong(b"").unwrap();
    conn.send_binary(&[]).unwrap();
    conn.close(CloseCode::NORMAL, "bye").unwrap();
}

/// The headers of every frame in `wire`, without decoding payloads.
fn headers(wire: &[u8]) -> Vec<FrameHeader> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let Status::Complete((header, len)) = FrameHeader::decode(&wire[at..]).unwrap() else {
            panic!("output ends mid-header");
        };
        out.push(header);
        at += len + header.payload_len as usize;
    }
    assert_eq!(at, wire.len());
    out
}

#[test]
fn server_fails_1002_on_an_unmasked_frame() {
    for opcode in [TEXT, BINARY, PING, PONG, CLOSE] {
        let payload: &[u8] = if opcode == CLOSE { b"\x03\xe8" } else { b"abc" };
        let mut server = Connection::open_server(Config::default());
        let events = feed(&mut server, &server_frame(true, opcode, payload), &[]);
        expect_failure(&mut server, &events, 1002, ProtocolError::UnmaskedFrame);
    }
    // An unmasked continuation in the middle of a masked message.
    let wire = concat(&[client_frame(false, TEXT, b"a"), server_frame(true, 0, b"b")]);
    let mut server = Connection::open_server(Config::default());
    let events = feed_bytewise(&mut server, &wire);
    expect_failure(&mut server, &events, 1002, ProtocolError::UnmaskedFrame);
    // Detected on the header, before any payload.
    let mut server = Connection::open_server(Config::default());
    let events = feed(&mut server, &[0x82, 0x7e, 0x01, 0x00], &[]);
    expect_failure(&mut server, &events, 1002, ProtocolError::UnmaskedFrame);
}

#[test]
fn client_fails_1002_on_a_masked_frame() {
    for opcode in [TEXT, BINARY, PING, PONG, CLOSE] {
        let payload: &[u8] = if opcode == CLOSE { b"\x03\xe8" } else { b"abc" };
        let mut client = client_with(|_| {});
        let events = feed(&mut client, &client_frame(true, opcode, payload), &[]);
        expect_failure(&mut client, &events, 1002, ProtocolError::MaskedFrame);
    }
    // An all-zero key is still a masked frame.
    let mut client = client_with(|_| {});
    let events = feed(
        &mut client,
        &raw_frame(true, 0, TEXT, Some([0; 4]), b"x"),
        &[],
    );
    expect_failure(&mut client, &events, 1002, ProtocolError::MaskedFrame);
}

#[test]
fn every_client_frame_is_masked_with_keys_from_its_entropy() {
    let seed = 0xfeed_beef;
    let mut client = Connection::open_client(Config::default(), SeededEntropy::new(seed));
    send_everything(&mut client);
    let wire = take_transmit(&mut client);
    let frames = headers(&wire);
    assert_eq!(frames.len(), 9);
    // Each frame takes a fresh key: the next 4 bytes the entropy hands out.
    let mut entropy = SeededEntropy::new(seed);
    for header in &frames {
        let mut key = [0; 4];
        entropy.fill(&mut key);
        assert_eq!(header.mask, Some(key), "{header:?}");
    }
    let keys: std::collections::HashSet<_> = frames.iter().map(|h| h.mask).collect();
    assert_eq!(keys.len(), frames.len(), "a fresh key per frame");
    // The payload really is masked: the 300 zero bytes show the key.
    let Status::Complete((h, len)) = FrameHeader::decode(&wire[11..]).unwrap() else {
        panic!()
    };
    let key = h.mask.unwrap();
    assert_eq!(h.payload_len, 300);
    let body = &wire[11 + len..11 + len + 300];
    assert!(body.iter().enumerate().all(|(i, b)| *b == key[i % 4]));
    // And the server reads it all back.
    let mut server = Connection::open_server(Config::default());
    let events = feed(&mut server, &wire, &[100, 70_000]);
    assert_eq!(events.len(), 8, "{events:?}");
    assert!(matches!(
        events.last(),
        Some(wsmachine::OwnedEvent::Closed(_))
    ));
}

#[test]
fn automatic_replies_from_a_client_are_masked_too() {
    let mut client = client_with(|_| {});
    feed(&mut client, &server_frame(true, PING, b"x"), &[]);
    feed(&mut client, &server_frame(true, CLOSE, b"\x03\xe8"), &[]);
    let wire = take_transmit(&mut client);
    let frames = headers(&wire);
    assert_eq!(
        frames.iter().map(|h| h.opcode).collect::<Vec<_>>(),
        vec![OpCode::PONG, OpCode::CLOSE]
    );
    assert!(frames.iter().all(|h| h.mask.is_some()));
    // A failure's close frame as well.
    let mut client = client_with(|_| {});
    feed(&mut client, &server_frame(true, 0x3, b""), &[]);
    let frames = headers(&take_transmit(&mut client));
    assert_eq!(frames.len(), 1);
    assert!(frames[0].mask.is_some());
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let run = |seed| {
        let mut client = Connection::open_client(Config::default(), SeededEntropy::new(seed));
        send_everything(&mut client);
        take_transmit(&mut client)
    };
    assert_eq!(run(1), run(1));
    assert_eq!(run(u64::MAX), run(u64::MAX));
    let (a, b) = (run(1), run(2));
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b);
    // Only the keys and the masked payload differ: the headers agree otherwise.
    let strip = |hs: Vec<FrameHeader>| {
        hs.into_iter()
            .map(|mut h| {
                h.mask = h.mask.map(|_| [0; 4]);
                h
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(headers(&a)), strip(headers(&b)));
}

#[test]
fn any_entropy_source_supplies_the_keys() {
    let mut counter = 0u8;
    let source = move |buf: &mut [u8]| {
        for b in buf {
            counter = counter.wrapping_add(1);
            *b = counter;
        }
    };
    let mut client = Connection::open_client(Config::default(), source);
    client.send_text("a").unwrap();
    client.send_text("b").unwrap();
    let frames = headers(&take_transmit(&mut client));
    assert_eq!(frames[0].mask, Some([1, 2, 3, 4]));
    assert_eq!(frames[1].mask, Some([5, 6, 7, 8]));
}

#[test]
fn server_output_is_never_masked() {
    let mut server = Connection::open_server(Config::default());
    send_everything(&mut server);
    // Automatic replies: a pong and a close echo; and a failure's close.
    let mut server2 = Connection::open_server(Config::default());
    feed(&mut server2, &client_frame(true, PING, b"p"), &[]);
    feed(&mut server2, &client_frame(true, CLOSE, b""), &[]);
    let mut server3 = Connection::open_server(Config::default());
    feed(&mut server3, &client_frame(true, 0x3, b""), &[]);
    for wire in [
        take_transmit(&mut server),
        take_transmit(&mut server2),
        take_transmit(&mut server3),
    ] {
        let frames = headers(&wire);
        assert!(!frames.is_empty());
        assert!(frames.iter().all(|h| h.mask.is_none()), "{frames:?}");
    }
}

// ----- the masking functions -----

fn naive(data: &[u8], key: [u8; 4], offset: usize) -> Vec<u8> {
    data.iter()
        .enumerate()
        .map(|(i, b)| b ^ key[(offset + i) % 4])
        .collect()
}

const KEYS: [[u8; 4]; 4] = [
    [0, 0, 0, 0],
    [0xff, 0xff, 0xff, 0xff],
    [0x12, 0x34, 0x56, 0x78],
    [0x37, 0xfa, 0x21, 0x3d],
];

#[test]
fn apply_mask_matches_the_definition() {
    for key in KEYS {
        for len in 0..80 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for offset in [0, 1, 2, 3, 4, 5, 1001] {
                let mut buf = data.clone();
                apply_mask(&mut buf, key, offset);
                assert_eq!(buf, naive(&data, key, offset), "len {len} offset {offset}");
                // Masking twice restores the data.
                apply_mask(&mut buf, key, offset);
                assert_eq!(buf, data);
            }
        }
    }
}

#[test]
fn apply_mask_split_at_any_offset_equals_whole() {
    for key in KEYS {
        let data: Vec<u8> = (0..67u32).map(|i| (i * 131 + 7) as u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for cut in 0..=data.len() {
            let mut split = data.clone();
            let (a, b) = split.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(split, whole, "cut {cut}");
            // Three pieces.
            for cut2 in cut..=data.len() {
                let mut split = data.clone();
                apply_mask(&mut split[..cut], key, 0);
                apply_mask(&mut split[cut..cut2], key, cut);
                apply_mask(&mut split[cut2..], key, cut2);
                assert_eq!(split, whole, "cuts {cut} {cut2}");
            }
        }
    }
}

#[test]
fn mask_copy_equals_apply_mask() {
    for key in KEYS {
        for len in 0..80 {
            let data: Vec<u8> = (0..len).map(|i| (i * 53 + 3) as u8).collect();
            for offset in 0..8 {
                let mut expected = data.clone();
                apply_mask(&mut expected, key, offset);
                let mut copied = vec![0xaa; len];
                mask_copy(&mut copied, &data, key, offset);
                assert_eq!(copied, expected, "len {len} offset {offset}");
                // From and to unaligned sub-slices.
                let mut src = vec![0u8; len + 3];
                src[3..].copy_from_slice(&data);
                let mut dst = vec![0u8; len + 1];
                mask_copy(&mut dst[1..], &src[3..], key, offset);
                assert_eq!(&dst[1..], &expected[..]);
            }
        }
    }
}

#[test]
#[should_panic(expected = "lengths differ")]
fn mask_copy_panics_on_different_lengths() {
    mask_copy(&mut [0; 3], &[0; 4], [1, 2, 3, 4], 0);
}
