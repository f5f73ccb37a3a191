//! Property tests of the whole connection:
//!
//! (b) any sequence of messages, fragmented any way by the sender with control
//!     frames between fragments, and the byte stream split at any points, gives
//!     the same events as the unsplit stream (and as the model), both
//!     directions, whole-message and streaming mode;
//! (c) valid text split anywhere is accepted; text with an invalid sequence is
//!     rejected with 1007 no later than the frame that completes it.

mod common;
use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use wsmachine::frame::OpCode;
use wsmachine::{
    Config, Connection, MessageKind, MessageMode, OwnedEvent, ProtocolError, SeededEntropy,
};

// ----- (b) -----

#[derive(Debug, Clone)]
enum Control {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Message {
    kind: MessageKind,
    bytes: Vec<u8>,
    /// Where the sender cuts the message into fragments (sorted; repeats make
    /// empty fragments).
    splits: Vec<usize>,
    /// Control frames sent after fragment `.0 % (fragments - 1)`.
    between: Vec<(usize, Control)>,
    /// Send a one-fragment message with `send_fragment` rather than `send_text`/`send_binary`.
    via_fragment: bool,
}

#[derive(Debug, Clone)]
enum Item {
    Message(Message),
    Control(Control),
}

fn control() -> impl Strategy<Value = Control> {
    let payload = proptest::collection::vec(any::<u8>(), 0..=125);
    prop_oneof![
        3 => payload.clone().prop_map(Control::Ping),
        1 => payload.prop_map(Control::Pong),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(any::<char>(), 0..120).prop_map(|c| c.into_iter().collect()),
        // Long enough for the 16-bit and 64-bit length encodings.
        1 => (proptest::collection::vec(any::<char>(), 1..8), 100usize..20_000)
            .prop_map(|(c, n)| c.iter().cycle().take(n).collect()),
    ]
}

fn binary() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => (any::<u8>(), 65_530usize..70_000)
            .prop_map(|(b, n)| (0..n).map(|i| b.wrapping_add(i as u8)).collect()),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let content = prop_oneof![
        text().prop_map(|t| (MessageKind::Text, t.into_bytes())),
        binary().prop_map(|b| (MessageKind::Binary, b)),
    ];
    (
        content,
        proptest::collection::vec(any::<Index>(), 0..6),
        proptest::collection::vec((any::<usize>(), control()), 0..4),
        any::<bool>(),
    )
        .prop_map(|((kind, bytes), picks, between, via_fragment)| {
            let mut splits: Vec<usize> = picks.iter().map(|i| i.index(bytes.len() + 1)).collect();
            splits.sort_unstable();
            Message {
                kind,
                bytes,
                splits,
                between,
                via_fragment,
            }
        })
}

fn script() -> impl Strategy<Value = Vec<Item>> {
    proptest::collection::vec(
        prop_oneof![
            4 => message().prop_map(Item::Message),
            1 => control().prop_map(Item::Control),
        ],
        1..7,
    )
}

impl Message {
    fn fragments(&self) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut at = 0;
        for &cut in &self.splits {
            out.push(&self.bytes[at..cut]);
            at = cut;
        }
        out.push(&self.bytes[at..]);
        out
    }

    /// The control frames after each fragment but the last.
    fn controls_after(&self, fragment: usize) -> impl Iterator<Item = &Control> {
        let gaps = self.fragments().len() - 1;
        self.between
            .iter()
            .filter(move |(at, _)| gaps > 0 && at % gaps == fragment)
            .map(|(_, c)| c)
    }

    fn event(&self) -> OwnedEvent {
        match self.kind {
            MessageKind::Text => OwnedEvent::Text(String::from_utf8(self.bytes.clone()).unwrap()),
            MessageKind::Binary => OwnedEvent::Binary(self.bytes.clone()),
        }
    }
}

impl Control {
    fn event(&self) -> OwnedEvent {
        match self {
            Control::Ping(p) => OwnedEvent::Ping(p.clone()),
            Control::Pong(p) => OwnedEvent::Pong(p.clone()),
        }
    }

    fn send(&self, conn: &mut Connection) {
        match self {
            Control::Ping(p) => conn.send_ping(p).unwrap(),
            Control::Pong(p) => conn.send_pong(p).unwrap(),
        }
    }
}

/// Takes what `conn` queued through `poll_transmit`/`transmitted`, in partial
/// writes of the given sizes (cycled), as a socket would.
fn write_out(conn: &mut Connection, writes: &[usize], next: &mut usize, wire: &mut Vec<u8>) {
    while let Some(bytes) = conn.poll_transmit() {
        let n = writes
            .get(*next % writes.len().max(1))
            .copied()
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        wire.extend_from_slice(&bytes[..n]);
        conn.transmitted(n);
        *next += 1;
    }
}

/// Runs the script on `sender`; returns the bytes it sent and the events the
/// peer must see, in order.
fn send_script(
    sender: &mut Connection,
    script: &[Item],
    writes: &[usize],
) -> (Vec<u8>, Vec<OwnedEvent>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let mut next = 0;
    for item in script {
        match item {
            Item::Control(c) => {
                c.send(sender);
                expected.push(c.event());
            }
            Item::Message(m) => {
                let fragments = m.fragments();
                if fragments.len() == 1 && !m.via_fragment {
                    match m.kind {
                        MessageKind::Text => sender
                            .send_text(std::str::from_utf8(&m.bytes).unwrap())
                            .unwrap(),
                        MessageKind::Binary => sender.send_binary(&m.bytes).unwrap(),
                    }
                } else {
                    let last = fragments.len() - 1;
                    for (i, fragment) in fragments.iter().enumerate() {
                        sender.send_fragment(m.kind, fragment, i == last).unwrap();
                        write_out(sender, writes, &mut next, &mut wire);
                        for c in m.controls_after(i) {
                            c.send(sender);
                            expected.push(c.event());
                        }
                    }
                }
                expected.push(m.event());
            }
        }
        write_out(sender, writes, &mut next, &mut wire);
    }
    assert_eq!(sender.pending_transmit(), 0);
    (wire, expected)
}

fn receiver_pongs(receiver: &mut Connection) -> Vec<Vec<u8>> {
    let masked = receiver.role() == wsmachine::Role::Client;
    decode_all(&take_transmit(receiver))
        .into_iter()
        .map(|(h, p)| {
            assert_eq!(h.opcode, OpCode::PONG, "the receiver only answers pings");
            assert_eq!(h.mask.is_some(), masked);
            p
        })
        .collect()
}

fn stream_case(
    client_sends: bool,
    mode: MessageMode,
    script: &[Item],
    writes: &[usize],
    cuts: &[Index],
) -> Result<(), TestCaseError> {
    let mut config = Config::default();
    config.mode = mode;
    let make = |client: bool| {
        if client {
            Connection::open_client(config.clone(), SeededEntropy::new(42))
        } else {
            Connection::open_server(config.clone())
        }
    };
    let mut sender = make(client_sends);
    let (wire, expected) = send_script(&mut sender, script, writes);
    let cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();

    let mut split_rx = make(!client_sends);
    let split = feed(&mut split_rx, &wire, &cuts);
    let mut whole_rx = make(!client_sends);
    let whole = feed(&mut whole_rx, &wire, &[]);

    let normalize = |events: &[OwnedEvent]| match mode {
        MessageMode::Streaming => assemble_streamed(events),
        _ => events.to_vec(),
    };
    if mode == MessageMode::Whole {
        prop_assert_eq!(&split, &whole, "split stream differs from the unsplit one");
    }
    prop_assert_eq!(normalize(&split), normalize(&whole));
    prop_assert_eq!(normalize(&split), expected.clone());
    prop_assert!(split_rx.is_open() && !split_rx.is_closed());

    // The receiver answered every ping, in order, and sent nothing else.
    let pings: Vec<Vec<u8>> = expected
        .iter()
        .filter_map(|e| match e {
            OwnedEvent::Ping(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    prop_assert_eq!(receiver_pongs(&mut split_rx), pings.clone());
    prop_assert_eq!(receiver_pongs(&mut whole_rx), pings);
    Ok(())
}

/// Feeds `bytes` cut at `cuts`, each read through `handle_read` or
/// `recv_buffer`/`commit_recv` as `via` says, and parses only after the reads
/// that `parse_after` marks: reads pile up unparsed, so `handle_read` meets
/// payload that an earlier read left masked or that it unmasked itself.
fn feed_stacked(
    conn: &mut Connection,
    bytes: &[u8],
    cuts: &[usize],
    via: &[bool],
    parse_after: &[bool],
) -> Vec<OwnedEvent> {
    let mut cuts: Vec<usize> = cuts.iter().copied().filter(|&c| c < bytes.len()).collect();
    cuts.sort_unstable();
    cuts.push(bytes.len());
    let pick =
        |flags: &[bool], i: usize| flags.get(i % flags.len().max(1)).copied().unwrap_or(true);
    let mut events = Vec::new();
    let mut at = 0;
    for (i, cut) in cuts.into_iter().enumerate() {
        let piece = &bytes[at..cut];
        at = cut;
        if pick(via, i) {
            conn.handle_read(piece);
        } else {
            read_through_buffer(conn, piece, |_| {});
        }
        if pick(parse_after, i) {
            events.extend(drain_events(conn));
        }
    }
    events.extend(drain_events(conn));
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A server unmasks payload as `handle_read` copies it in; whatever the
    /// reads and however many arrive before a parse, the events are the
    /// unsplit stream's.
    #[test]
    fn reads_piled_up_before_parsing_give_the_same_events(
        script in script(),
        cuts in proptest::collection::vec(any::<Index>(), 0..40),
        via in proptest::collection::vec(any::<bool>(), 1..8),
        parse_after in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let mut sender = Connection::open_client(Config::default(), SeededEntropy::new(7));
        let (wire, expected) = send_script(&mut sender, &script, &[]);
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        let mut server = Connection::open_server(Config::default());
        let events = feed_stacked(&mut server, &wire, &cuts, &via, &parse_after);
        prop_assert_eq!(events, expected);
        prop_assert!(server.is_open());
    }

    #[test]
    fn client_to_server_any_split_same_events(
        script in script(),
        writes in proptest::collection::vec(1usize..4000, 0..8),
        cuts in proptest::collection::vec(any::<Index>(), 0..40),
    ) {
        stream_case(true, MessageMode::Whole, &script, &writes, &cuts)?;
        stream_case(true, MessageMode::Streaming, &script, &writes, &cuts)?;
    }

    #[test]
    fn server_to_client_any_split_same_events(
        script in script(),
        writes in proptest::collection::vec(1usize..4000, 0..8),
        cuts in proptest::collection::vec(any::<Index>(), 0..40),
    ) {
        stream_case(false, MessageMode::Whole, &script, &writes, &cuts)?;
        stream_case(false, MessageMode::Streaming, &script, &writes, &cuts)?;
    }
}

// ----- (c) -----

const TEXT: u8 = 0x1;
const CONT: u8 = 0x0;
const PING: u8 = 0x9;

/// Sequences that are invalid in themselves or in what follows them.
const BAD: &[&[u8]] = &[
    &[0xc0, 0x80],
    &[0xc1, 0xbf],
    &[0xe0, 0x80, 0x80],
    &[0xe0, 0x9f, 0xbf],
    &[0xf0, 0x8f, 0xbf, 0xbf],
    &[0xed, 0xa0, 0x80],
    &[0xed, 0xbf, 0xbf],
    &[0xf4, 0x90, 0x80, 0x80],
    &[0xf5, 0x80, 0x80, 0x80],
    &[0xf8, 0x88, 0x80, 0x80, 0x80],
    &[0xfe],
    &[0xff],
    &[0x80],
    &[0xbf],
    // Truncated: invalid because of what follows, or the end of the message.
    &[0xc3],
    &[0xe2, 0x82],
    &[0xf0, 0x9f, 0x98],
];

/// The index of the byte that makes `bytes` invalid (None: only truncated at the end).
fn offending_byte(bytes: &[u8]) -> Option<usize> {
    let valid_prefix = |b: &[u8]| match std::str::from_utf8(b) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    (1..=bytes.len())
        .find(|&k| !valid_prefix(&bytes[..k]))
        .map(|k| k - 1)
}

/// Cuts `payload` into text frames at `splits`, with a ping after each
/// fragment but the last; returns the frames and each one's payload range
/// (None for the pings).
fn text_frames(
    payload: &[u8],
    picks: &[Index],
    pings: bool,
) -> Vec<(Vec<u8>, Option<std::ops::Range<usize>>)> {
    let mut splits: Vec<usize> = picks.iter().map(|i| i.index(payload.len() + 1)).collect();
    splits.sort_unstable();
    splits.push(payload.len());
    let mut frames = Vec::new();
    let mut at = 0;
    let last = splits.len() - 1;
    for (i, cut) in splits.into_iter().enumerate() {
        let opcode = if i == 0 { TEXT } else { CONT };
        frames.push((
            client_frame(i == last, opcode, &payload[at..cut]),
            Some(at..cut),
        ));
        if pings && i != last {
            frames.push((client_frame(true, PING, &[i as u8]), None));
        }
        at = cut;
    }
    frames
}

fn server(mode: MessageMode) -> Connection {
    server_with(|c| c.mode = mode)
}

fn streamed_bytes(events: &[OwnedEvent]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            OwnedEvent::Fragment { data, .. } => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_text_split_anywhere_is_accepted(
        text in text(),
        picks in proptest::collection::vec(any::<Index>(), 0..8),
        pings in any::<bool>(),
        cuts in proptest::collection::vec(any::<Index>(), 0..30),
    ) {
        let frames = text_frames(text.as_bytes(), &picks, pings);
        let wire: Vec<u8> = frames.iter().flat_map(|(f, _)| f.clone()).collect();
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        let ping_count = frames.iter().filter(|(_, r)| r.is_none()).count();

        let events = feed(&mut server(MessageMode::Whole), &wire, &cuts);
        prop_assert_eq!(events.len(), ping_count + 1);
        prop_assert_eq!(events.last(), Some(&OwnedEvent::Text(text.clone())));

        let events = feed(&mut server(MessageMode::Streaming), &wire, &cuts);
        let messages: Vec<_> = assemble_streamed(&events)
            .into_iter()
            .filter(|e| !matches!(e, OwnedEvent::Ping(_)))
            .collect();
        prop_assert_eq!(messages, vec![OwnedEvent::Text(text)]);
    }

    #[test]
    fn invalid_text_fails_1007_by_the_frame_that_completes_it(
        text in proptest::collection::vec(any::<char>(), 0..60)
            .prop_map(|c| c.into_iter().collect::<String>()),
        at in any::<Index>(),
        bad in proptest::sample::select(BAD),
        picks in proptest::collection::vec(any::<Index>(), 0..6),
        pings in any::<bool>(),
        cuts in proptest::collection::vec(any::<Index>(), 0..4),
        streaming in any::<bool>(),
    ) {
        // Insert `bad` at a char boundary of valid text.
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let at = boundaries[at.index(boundaries.len())];
        let mut payload = text.as_bytes()[..at].to_vec();
        payload.extend_from_slice(bad);
        payload.extend_from_slice(&text.as_bytes()[at..]);
        prop_assert!(std::str::from_utf8(&payload).is_err());
        let offending = offending_byte(&payload);

        let frames = text_frames(&payload, &picks, pings);
        // The frame by which the connection must have failed: the one holding
        // the offending byte, or the final one if the text is only truncated.
        let deadline = match offending {
            Some(k) => frames
                .iter()
                .position(|(_, r)| r.as_ref().is_some_and(|r| r.contains(&k)))
                .unwrap(),
            None => frames.len() - 1,
        };
        let mode = if streaming { MessageMode::Streaming } else { MessageMode::Whole };
        let mut conn = server(mode);
        let mut events = Vec::new();
        for (i, (frame, _)) in frames.iter().enumerate() {
            let cuts: Vec<usize> = cuts.iter().map(|c| c.index(frame.len() + 1)).collect();
            events.extend(feed(&mut conn, frame, &cuts));
            if i < deadline {
                prop_assert!(!conn.is_closed(), "failed at frame {} before {}: {:?}", i, deadline, events);
            } else {
                break;
            }
        }
        prop_assert!(conn.is_closed(), "not failed by frame {}: {:?}", deadline, events);
        let delivered = events.iter().any(|e| {
            matches!(e, OwnedEvent::Text(_) | OwnedEvent::Fragment { last: true, .. })
        });
        prop_assert!(!delivered, "the invalid message was delivered: {:?}", events);
        // Streamed pieces never carried the offending byte.
        let streamed = streamed_bytes(&events);
        prop_assert!(payload.starts_with(&streamed));
        if let Some(k) = offending {
            prop_assert!(streamed.len() <= k);
        }
        expect_failure(&mut conn, &events, 1007, ProtocolError::InvalidUtf8);
    }
}
