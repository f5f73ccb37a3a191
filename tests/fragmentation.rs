//! Fragmentation (RFC 6455 §5.4): assembly, interleaved control frames,
//! streaming delivery, sequencing errors, and the sending side.

mod common;
use common::*;
use wsmachine::frame::OpCode;
use wsmachine::testing::Pair;
use wsmachine::{
    Config, Connection, Error, MessageKind, MessageMode, OwnedEvent, ProtocolError, UsageError,
};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

fn streaming_server() -> Connection {
    server_with(|c| c.mode = MessageMode::Streaming)
}

/// Every way of feeding `wire` that matters here: one read, bytewise, and a few cuts.
fn feed_all_ways(make: impl Fn() -> Connection, wire: &[u8]) -> Vec<Vec<OwnedEvent>> {
    let mut runs = vec![
        feed(&mut make(), wire, &[]),
        feed_bytewise(&mut make(), wire),
    ];
    for step in [2, 3, 7] {
        let cuts: Vec<usize> = (0..wire.len()).step_by(step).collect();
        runs.push(feed(&mut make(), wire, &cuts));
    }
    runs
}

#[test]
fn fragmented_text_is_assembled() {
    let wire = concat(&[
        client_frame(false, TEXT, b"Hel"),
        client_frame(false, CONT, "lo, w€".as_bytes()),
        client_frame(true, CONT, b"orld"),
    ]);
    for events in feed_all_ways(|| Connection::open_server(Config::default()), &wire) {
        assert_eq!(events, vec![OwnedEvent::Text("Hello, w€orld".into())]);
    }
}

#[test]
fn fragmented_binary_is_assembled() {
    let wire = concat(&[
        client_frame(false, BINARY, &[0, 1, 2]),
        client_frame(false, CONT, &[0xff; 200]),
        client_frame(true, CONT, &[9]),
    ]);
    let mut expected = vec![0, 1, 2];
    expected.extend([0xff; 200]);
    expected.push(9);
    for events in feed_all_ways(|| Connection::open_server(Config::default()), &wire) {
        assert_eq!(events, vec![OwnedEvent::Binary(expected.clone())]);
    }
}

#[test]
fn server_to_client_fragments_are_assembled() {
    let wire = concat(&[
        server_frame(false, BINARY, b"ab"),
        server_frame(true, CONT, b"cd"),
        server_frame(false, TEXT, b"x"),
        server_frame(true, CONT, b"y"),
    ]);
    let make = || client_with(|_| {});
    for events in feed_all_ways(make, &wire) {
        assert_eq!(
            events,
            vec![
                OwnedEvent::Binary(b"abcd".to_vec()),
                OwnedEvent::Text("xy".into())
            ]
        );
    }
}

#[test]
fn control_frames_between_fragments_come_first_in_order() {
    let wire = concat(&[
        client_frame(false, TEXT, b"a"),
        client_frame(true, PING, b"p1"),
        client_frame(false, CONT, b"b"),
        client_frame(true, PONG, b"q"),
        client_frame(true, PING, b""),
        client_frame(true, CONT, b"c"),
        client_frame(true, PING, b"after"),
    ]);
    let make = || Connection::open_server(Config::default());
    for events in feed_all_ways(make, &wire) {
        assert_eq!(
            events,
            vec![
                OwnedEvent::Ping(b"p1".to_vec()),
                OwnedEvent::Pong(b"q".to_vec()),
                OwnedEvent::Ping(b"".to_vec()),
                OwnedEvent::Text("abc".into()),
                OwnedEvent::Ping(b"after".to_vec()),
            ]
        );
    }
    // The pongs answer the pings, in order, while the message is in progress.
    let mut server = make();
    feed(&mut server, &wire, &[]);
    let sent = decode_all(&take_transmit(&mut server));
    let pongs: Vec<_> = sent.iter().map(|(h, p)| (h.opcode, p.as_slice())).collect();
    assert_eq!(
        pongs,
        vec![
            (OpCode::PONG, &b"p1"[..]),
            (OpCode::PONG, &b""[..]),
            (OpCode::PONG, &b"after"[..])
        ]
    );
}

#[test]
fn control_frames_between_fragments_in_streaming_mode() {
    let wire = concat(&[
        client_frame(false, BINARY, b"ab"),
        client_frame(true, PING, b"p"),
        client_frame(true, CONT, b"cd"),
    ]);
    for events in feed_all_ways(streaming_server, &wire) {
        assert_eq!(
            assemble_streamed(&events),
            vec![
                OwnedEvent::Ping(b"p".to_vec()),
                OwnedEvent::Binary(b"abcd".to_vec())
            ]
        );
        // The ping sits between the message's pieces.
        let ping_at = events
            .iter()
            .position(|e| matches!(e, OwnedEvent::Ping(_)))
            .unwrap();
        assert!(ping_at > 0 && ping_at < events.len() - 1, "{events:?}");
    }
}

#[test]
fn empty_fragments() {
    let text = |s: &str| vec![OwnedEvent::Text(s.into())];
    let cases: Vec<(Vec<Vec<u8>>, Vec<OwnedEvent>)> = vec![
        (
            vec![
                client_frame(false, TEXT, b""),
                client_frame(false, CONT, b""),
                client_frame(true, CONT, b"x"),
            ],
            text("x"),
        ),
        (
            vec![
                client_frame(false, TEXT, b"x"),
                client_frame(false, CONT, b""),
                client_frame(true, CONT, b""),
            ],
            text("x"),
        ),
        (
            vec![
                client_frame(false, TEXT, b""),
                client_frame(true, CONT, b""),
            ],
            text(""),
        ),
        (vec![client_frame(true, TEXT, b"")], text("")),
        (
            vec![
                client_frame(false, BINARY, b""),
                client_frame(true, PING, b""),
                client_frame(true, CONT, b""),
            ],
            vec![OwnedEvent::Ping(vec![]), OwnedEvent::Binary(vec![])],
        ),
        (
            vec![client_frame(true, BINARY, b"")],
            vec![OwnedEvent::Binary(vec![])],
        ),
    ];
    for (frames, expected) in cases {
        let wire = concat(&frames);
        for events in feed_all_ways(|| Connection::open_server(Config::default()), &wire) {
            assert_eq!(events, expected);
        }
        for events in feed_all_ways(streaming_server, &wire) {
            assert_eq!(assemble_streamed(&events), expected);
        }
    }
}

#[test]
fn many_fragments() {
    let text: String = (0..2000).map(|i| ['a', 'é', '€', '𝄞'][i % 4]).collect();
    let bytes = text.as_bytes();
    // One byte per fragment, so most code points are split across fragments.
    let mut frames = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        let opcode = if i == 0 { TEXT } else { CONT };
        frames.push(client_frame(i == bytes.len() - 1, opcode, &[*b]));
        if i % 100 == 50 {
            frames.push(client_frame(true, PING, &i.to_be_bytes()));
        }
    }
    let wire = concat(&frames);
    let mut server = Connection::open_server(Config::default());
    let events = feed(&mut server, &wire, &[]);
    let (pings, rest): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|e| matches!(e, OwnedEvent::Ping(_)));
    assert_eq!(pings.len(), bytes.len().div_ceil(100));
    assert_eq!(rest, vec![OwnedEvent::Text(text.clone())]);

    let mut server = streaming_server();
    let events = feed(&mut server, &wire, &[1000, 5000, 5001]);
    let assembled: Vec<_> = assemble_streamed(&events)
        .into_iter()
        .filter(|e| !matches!(e, OwnedEvent::Ping(_)))
        .collect();
    assert_eq!(assembled, vec![OwnedEvent::Text(text)]);
}

#[test]
fn single_frame_message_in_streaming_mode_is_one_piece() {
    let wire = client_frame(true, TEXT, "héllo".as_bytes());
    let events = feed(&mut streaming_server(), &wire, &[]);
    assert_eq!(
        events,
        vec![OwnedEvent::Fragment {
            kind: MessageKind::Text,
            data: "héllo".as_bytes().to_vec(),
            first: true,
            last: true,
        }]
    );
}

#[test]
fn streaming_pieces_have_first_last_flags_and_concatenate_to_the_message() {
    let text = "streaming ✓ pieces ".repeat(20);
    let bytes = text.as_bytes();
    let wire = concat(&[
        client_frame(false, TEXT, &bytes[..100]),
        client_frame(false, CONT, &bytes[100..101]),
        client_frame(true, CONT, &bytes[101..]),
        client_frame(true, BINARY, &[7; 50]),
    ]);
    for events in feed_all_ways(streaming_server, &wire) {
        assert!(
            events
                .iter()
                .all(|e| matches!(e, OwnedEvent::Fragment { .. })),
            "{events:?}"
        );
        assert_eq!(
            assemble_streamed(&events),
            vec![
                OwnedEvent::Text(text.clone()),
                OwnedEvent::Binary(vec![7; 50])
            ]
        );
    }
}

#[test]
fn streaming_a_large_message_delivers_pieces_no_larger_than_a_read() {
    const READ: usize = 4096;
    const LEN: usize = 1 << 20;
    let payload: Vec<u8> = (0..LEN).map(|i| (i * 7 + i / 251) as u8).collect();
    // One huge frame, then the same message in 3 fragments.
    let wire = concat(&[
        client_frame(true, BINARY, &payload),
        client_frame(false, BINARY, &payload[..LEN / 3]),
        client_frame(false, CONT, &payload[LEN / 3..LEN / 2]),
        client_frame(true, CONT, &payload[LEN / 2..]),
    ]);
    let mut server = server_with(|c| {
        c.mode = MessageMode::Streaming;
        c.read_buffer_size = READ;
    });
    let mut events = Vec::new();
    let mut largest_free = 0;
    let mut rest = &wire[..];
    while !rest.is_empty() {
        // Read straight into the connection's buffer, as the run loop does.
        let buf = server.recv_buffer();
        largest_free = largest_free.max(buf.len());
        let n = buf.len().min(READ).min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        server.commit_recv(n);
        rest = &rest[n..];
        for event in drain_events(&mut server) {
            if let OwnedEvent::Fragment { data, .. } = &event {
                assert!(data.len() <= READ, "a piece of {} bytes", data.len());
            }
            events.push(event);
        }
    }
    // The receive buffer never grew towards the message size.
    assert!(
        largest_free <= 2 * READ + 64,
        "receive buffer grew to {largest_free} bytes"
    );
    assert_eq!(
        assemble_streamed(&events),
        vec![
            OwnedEvent::Binary(payload.clone()),
            OwnedEvent::Binary(payload.clone())
        ]
    );

    // Through handle_read too.
    let mut server = streaming_server();
    let mut events = Vec::new();
    for read in wire.chunks(1000) {
        server.handle_read(read);
        for event in drain_events(&mut server) {
            if let OwnedEvent::Fragment { data, .. } = &event {
                assert!(data.len() <= 1000, "a piece of {} bytes", data.len());
            }
            events.push(event);
        }
    }
    assert_eq!(assemble_streamed(&events).len(), 2);
}

#[test]
fn continuation_without_a_message_fails_1002() {
    let cases = [
        vec![client_frame(true, CONT, b"x")],
        vec![client_frame(false, CONT, b"x")],
        vec![client_frame(true, CONT, b"")],
        // After a complete message, there is nothing to continue.
        vec![
            client_frame(true, TEXT, b"done"),
            client_frame(true, CONT, b"x"),
        ],
        vec![
            client_frame(false, BINARY, b"a"),
            client_frame(true, CONT, b"b"),
            client_frame(true, CONT, b"c"),
        ],
    ];
    for mode in [MessageMode::Whole, MessageMode::Streaming] {
        for frames in &cases {
            let mut server = server_with(|c| c.mode = mode);
            let events = feed(&mut server, &concat(frames), &[]);
            expect_failure(
                &mut server,
                &events,
                1002,
                ProtocolError::UnexpectedContinuation,
            );
            let messages = events
                .iter()
                .filter(|e| !matches!(e, OwnedEvent::Closed(_)))
                .count();
            assert!(messages <= 2, "{events:?}");
        }
    }
    // Client side.
    let mut client = client_with(|_| {});
    let events = feed(&mut client, &server_frame(true, CONT, b"x"), &[]);
    expect_failure(
        &mut client,
        &events,
        1002,
        ProtocolError::UnexpectedContinuation,
    );
}

#[test]
fn new_data_frame_while_a_message_is_in_progress_fails_1002() {
    for first in [TEXT, BINARY] {
        for second in [TEXT, BINARY] {
            for second_fin in [false, true] {
                for mode in [MessageMode::Whole, MessageMode::Streaming] {
                    let wire = concat(&[
                        client_frame(false, first, b"ab"),
                        client_frame(true, PING, b""),
                        client_frame(second_fin, second, b"cd"),
                        client_frame(true, CONT, b"ef"),
                    ]);
                    let mut server = server_with(|c| c.mode = mode);
                    let events = feed(&mut server, &wire, &[]);
                    assert!(
                        !events
                            .iter()
                            .any(|e| matches!(e, OwnedEvent::Text(_) | OwnedEvent::Binary(_))),
                        "{events:?}"
                    );
                    expect_failure(
                        &mut server,
                        &events,
                        1002,
                        ProtocolError::ExpectedContinuation,
                    );
                }
            }
        }
    }
}

// ----- the sending side -----

#[test]
fn send_fragment_sequences_opcodes_and_fin() {
    let mut server = Connection::open_server(Config::default());
    server
        .send_fragment(MessageKind::Text, "he".as_bytes(), false)
        .unwrap();
    server.send_ping(b"between").unwrap();
    server
        .send_fragment(MessageKind::Text, "ll".as_bytes(), false)
        .unwrap();
    server
        .send_fragment(MessageKind::Text, "o".as_bytes(), true)
        .unwrap();
    server
        .send_fragment(MessageKind::Binary, &[1], false)
        .unwrap();
    server
        .send_fragment(MessageKind::Binary, &[], true)
        .unwrap();
    server
        .send_fragment(MessageKind::Binary, &[2], true)
        .unwrap();
    let wire = take_transmit(&mut server);
    let frames: Vec<_> = decode_all(&wire)
        .into_iter()
        .map(|(h, p)| (h.opcode, h.fin, h.mask.is_some(), p))
        .collect();
    assert_eq!(
        frames,
        vec![
            (OpCode::TEXT, false, false, b"he".to_vec()),
            (OpCode::PING, true, false, b"between".to_vec()),
            (OpCode::CONTINUATION, false, false, b"ll".to_vec()),
            (OpCode::CONTINUATION, true, false, b"o".to_vec()),
            (OpCode::BINARY, false, false, vec![1]),
            (OpCode::CONTINUATION, true, false, vec![]),
            (OpCode::BINARY, true, false, vec![2]),
        ]
    );
    let mut client = client_with(|_| {});
    assert_eq!(
        feed(&mut client, &wire, &[]),
        vec![
            OwnedEvent::Ping(b"between".to_vec()),
            OwnedEvent::Text("hello".into()),
            OwnedEvent::Binary(vec![1]),
            OwnedEvent::Binary(vec![2]),
        ]
    );
}

#[test]
fn client_fragments_reach_the_server() {
    let mut pair = Pair::open(Config::default(), Config::default());
    let c = &mut pair.client;
    c.send_fragment(MessageKind::Binary, &[1, 2], false)
        .unwrap();
    c.send_pong(b"unsolicited").unwrap();
    c.send_fragment(MessageKind::Binary, &[3], true).unwrap();
    c.send_text("next").unwrap();
    let at_server = pair.client_to_server();
    assert_eq!(
        at_server,
        vec![
            OwnedEvent::Pong(b"unsolicited".to_vec()),
            OwnedEvent::Binary(vec![1, 2, 3]),
            OwnedEvent::Text("next".into()),
        ]
    );
}

#[test]
fn whole_messages_are_refused_while_a_fragmented_one_is_in_progress() {
    for kind in [MessageKind::Text, MessageKind::Binary] {
        let mut server = Connection::open_server(Config::default());
        server.send_fragment(kind, b"a", false).unwrap();
        let before = server.pending_transmit();
        assert_eq!(
            server.send_text("x"),
            Err(Error::Usage(UsageError::FragmentInProgress))
        );
        assert_eq!(
            server.send_binary(b"x"),
            Err(Error::Usage(UsageError::FragmentInProgress))
        );
        assert_eq!(server.pending_transmit(), before, "nothing queued");
        // Control frames may still go between fragments; then the message ends.
        server.send_ping(b"").unwrap();
        server.send_fragment(kind, b"b", true).unwrap();
        server.send_text("x").unwrap();
        let events = feed(&mut client_with(|_| {}), &take_transmit(&mut server), &[]);
        let message = match kind {
            MessageKind::Text => OwnedEvent::Text("ab".into()),
            MessageKind::Binary => OwnedEvent::Binary(b"ab".to_vec()),
        };
        assert_eq!(
            events,
            vec![
                OwnedEvent::Ping(vec![]),
                message,
                OwnedEvent::Text("x".into())
            ]
        );
    }
}

#[test]
fn fragment_of_another_kind_is_refused() {
    for (kind, other) in [
        (MessageKind::Text, MessageKind::Binary),
        (MessageKind::Binary, MessageKind::Text),
    ] {
        let mut server = Connection::open_server(Config::default());
        server.send_fragment(kind, b"a", false).unwrap();
        let before = server.pending_transmit();
        for fin in [false, true] {
            assert_eq!(
                server.send_fragment(other, b"b", fin),
                Err(Error::Usage(UsageError::FragmentKindMismatch))
            );
        }
        assert_eq!(server.pending_transmit(), before);
        server.send_fragment(kind, b"c", true).unwrap();
        let events = feed(&mut client_with(|_| {}), &take_transmit(&mut server), &[]);
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], OwnedEvent::Text(t) if t == "ac")
                || matches!(&events[0], OwnedEvent::Binary(b) if b == b"ac"),
            "{events:?}"
        );
    }
}

#[test]
fn invalid_utf8_fragments_are_refused_and_leave_no_trace() {
    let refused = Err(Error::Usage(UsageError::InvalidUtf8));
    let mut server = Connection::open_server(Config::default());

    // Refused as a first fragment: no message is started.
    assert_eq!(
        server.send_fragment(MessageKind::Text, &[0xff], false),
        refused
    );
    assert_eq!(
        server.send_fragment(MessageKind::Text, &[b'a', 0xc0, 0x80], true),
        refused
    );
    // Truncated at the end of the message.
    assert_eq!(
        server.send_fragment(MessageKind::Text, &[0xe2, 0x82], true),
        refused
    );
    assert_eq!(server.pending_transmit(), 0);
    server.send_text("whole").unwrap();

    // Mid-message: "€" = e2 82 ac, split, with refused attempts in between.
    server
        .send_fragment(MessageKind::Text, &[b'<', 0xe2], false)
        .unwrap();
    let before = server.pending_transmit();
    assert_eq!(
        server.send_fragment(MessageKind::Text, b"A", false),
        refused
    );
    assert_eq!(
        server.send_fragment(MessageKind::Text, &[0x82, 0xc0], false),
        refused
    );
    assert_eq!(
        server.send_fragment(MessageKind::Text, &[0x82], true),
        refused,
        "a message may not end mid code point"
    );
    assert_eq!(
        server.pending_transmit(),
        before,
        "refused fragments queue nothing"
    );
    server
        .send_fragment(MessageKind::Text, &[0x82], false)
        .unwrap();
    // Still mid code point: an empty final fragment cannot end the message.
    assert_eq!(server.send_fragment(MessageKind::Text, &[], true), refused);
    server
        .send_fragment(MessageKind::Text, &[0xac, b'>'], true)
        .unwrap();
    // The validator starts afresh for the next message.
    server
        .send_fragment(MessageKind::Text, &[0xf0, 0x9f], false)
        .unwrap();
    server
        .send_fragment(MessageKind::Text, &[0x98, 0x80], true)
        .unwrap();
    // Binary fragments are not text.
    server
        .send_fragment(MessageKind::Binary, &[0xff, 0xc0], true)
        .unwrap();

    let events = feed(&mut client_with(|_| {}), &take_transmit(&mut server), &[]);
    assert_eq!(
        events,
        vec![
            OwnedEvent::Text("whole".into()),
            OwnedEvent::Text("<€>".into()),
            OwnedEvent::Text("😀".into()),
            OwnedEvent::Binary(vec![0xff, 0xc0]),
        ]
    );
}

#[test]
fn send_fragment_after_close_is_refused() {
    let mut server = Connection::open_server(Config::default());
    server
        .send_fragment(MessageKind::Text, b"a", false)
        .unwrap();
    server.close(wsmachine::CloseCode::NORMAL, "").unwrap();
    let before = server.pending_transmit();
    assert_eq!(
        server.send_fragment(MessageKind::Text, b"b", true),
        Err(Error::Usage(UsageError::Closed))
    );
    assert_eq!(server.pending_transmit(), before);
}
