//! `Connection::send_vectored`: a message's header and the caller's payload
//! handed out to be written without a copy. Whatever is written, in whatever
//! pieces, plus what the dropped `Transmit` leaves queued, must be exactly the
//! bytes `send_message` would have queued; the peer gets the message intact.

mod common;
use common::*;
use proptest::prelude::*;
use wsmachine::{
    Compress, Config, Connection, Error, MessageKind, OwnedEvent, SeededEntropy, UsageError,
};

/// What `send_message` queues for the same message, after what was pending.
fn reference(
    make: &dyn Fn() -> Connection,
    before: &[u8],
    kind: MessageKind,
    data: &[u8],
) -> Vec<u8> {
    let mut conn = make();
    if !before.is_empty() {
        conn.send_ping(before).unwrap();
    }
    conn.send_message(kind, data, Compress::Auto).unwrap();
    take_transmit(&mut conn)
}

/// Writes `writes` bytes at a time (each at least 1) through `send_vectored`
/// until `stop` bytes are written or all is, then drops the `Transmit` and
/// takes what the connection queued.
fn vectored(
    make: &dyn Fn() -> Connection,
    before: &[u8],
    kind: MessageKind,
    data: &[u8],
    writes: &[usize],
    stop: usize,
) -> Vec<u8> {
    let mut conn = make();
    if !before.is_empty() {
        conn.send_ping(before).unwrap();
    }
    let mut wire = Vec::new();
    {
        let mut transmit = conn.send_vectored(kind, data).unwrap();
        let mut writes = writes.iter().cycle();
        while !transmit.is_empty() && wire.len() < stop {
            // A socket that takes at most `limit` bytes of the slices offered.
            let mut limit = *writes.next().unwrap();
            let mut n = 0;
            for slice in transmit.slices() {
                let take = slice.len().min(limit);
                wire.extend_from_slice(&slice[..take]);
                n += take;
                limit -= take;
            }
            transmit.advance(n);
        }
    }
    wire.extend(take_transmit(&mut conn));
    wire
}

fn server() -> Connection {
    Connection::open_server(Config::default())
}

fn client() -> Connection {
    Connection::open_client(Config::default(), SeededEntropy::new(9))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_partial_writes_then_a_drop_give_the_same_bytes(
        len in prop_oneof![0usize..200, 60_000usize..70_000],
        before in proptest::collection::vec(any::<u8>(), 0..20),
        writes in proptest::collection::vec(1usize..5_000, 1..8),
        stop in 0usize..80_000,
        binary in any::<bool>(),
        as_client in any::<bool>(),
    ) {
        let kind = if binary { MessageKind::Binary } else { MessageKind::Text };
        let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let make: &dyn Fn() -> Connection = if as_client { &client } else { &server };
        let expected = reference(make, &before, kind, &data);
        let got = vectored(make, &before, kind, &data, &writes, stop);
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn a_server_hands_out_the_payload_itself() {
    let mut server = server();
    let data = vec![0x42; 100_000];
    let transmit = server.send_vectored(MessageKind::Binary, &data).unwrap();
    let [queued, header, payload] = transmit.slices();
    assert!(queued.is_empty());
    assert_eq!(header, &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x86, 0xa0]);
    // The caller's own bytes, not a copy.
    assert_eq!(payload.as_ptr(), data.as_ptr());
    assert_eq!(transmit.remaining(), 10 + data.len());
}

#[test]
fn a_client_masks_so_its_frame_is_queued_and_arrives_intact() {
    let mut client = client();
    let data = vec![0x42; 70_000];
    let transmit = client.send_vectored(MessageKind::Binary, &data).unwrap();
    let [queued, header, payload] = transmit.slices();
    assert_eq!(queued.len(), 14 + data.len());
    assert!(header.is_empty() && payload.is_empty());
    drop(transmit);
    let mut server = server();
    let events = feed(&mut server, &take_transmit(&mut client), &[]);
    assert_eq!(events, vec![OwnedEvent::Binary(data)]);
}

#[test]
fn unwritten_bytes_stay_queued_in_order_before_later_frames() {
    let mut server = server();
    let data = vec![0x17; 5_000];
    let mut wire = Vec::new();
    let mut transmit = server.send_vectored(MessageKind::Binary, &data).unwrap();
    // A write that took the first 3 bytes of the header only.
    let [_, header, _] = transmit.slices();
    wire.extend_from_slice(&header[..3]);
    transmit.advance(3);
    drop(transmit);
    server.send_text("after").unwrap();
    wire.extend(take_transmit(&mut server));
    let mut client = client();
    let events = feed(&mut client, &wire, &[]);
    assert_eq!(
        events,
        vec![OwnedEvent::Binary(data), OwnedEvent::Text("after".into())]
    );
}

#[test]
fn refusals_queue_nothing() {
    let mut server = server();
    assert!(matches!(
        server.send_vectored(MessageKind::Text, b"\xff not utf-8"),
        Err(Error::Usage(UsageError::InvalidUtf8))
    ));
    server
        .send_fragment(MessageKind::Binary, b"first", false)
        .unwrap();
    let before = server.pending_transmit();
    assert!(matches!(
        server.send_vectored(MessageKind::Binary, b"x"),
        Err(Error::Usage(UsageError::FragmentInProgress))
    ));
    assert_eq!(server.pending_transmit(), before);

    let mut handshaking = Connection::server(Config::default());
    assert!(matches!(
        handshaking.send_vectored(MessageKind::Binary, b"x"),
        Err(Error::Usage(UsageError::HandshakeInProgress))
    ));
    assert!(handshaking.poll_transmit().is_none());
}
