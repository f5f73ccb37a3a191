//! Backpressure: the transmit buffer's high-water mark (`Config::max_send_buffer`)
//! refuses sends with a typed error rather than growing; the connection's own
//! replies are never refused; and a ping flood from a peer that does not read
//! queues pongs up to a 4 KiB backlog, then answers only the latest ping
//! (RFC 6455 §5.5.3).

mod common;
use common::*;
use wsmachine::{CloseCode, Connection, Error, MessageKind, OwnedEvent, UsageError};

fn server(mark: usize) -> Connection {
    server_with(|c| c.max_send_buffer = mark)
}

fn full(result: Result<(), Error>) -> (usize, usize, usize) {
    match result {
        Err(Error::Usage(UsageError::SendBufferFull {
            queued,
            more,
            limit,
        })) => (queued, more, limit),
        other => panic!("expected SendBufferFull, got {other:?}"),
    }
}

#[test]
fn a_send_past_the_mark_is_refused_and_queues_nothing() {
    let mut server = server(1000);
    server.send_binary(&[1; 600]).unwrap();
    let queued = server.pending_transmit();
    assert_eq!(queued, 604);
    assert_eq!(full(server.send_binary(&[2; 600])), (604, 600, 1000));
    assert_eq!(full(server.send_text(&"x".repeat(397))), (604, 397, 1000));
    assert_eq!(
        full(server.send_fragment(MessageKind::Binary, &[3; 400], false)),
        (604, 400, 1000)
    );
    assert_eq!(
        server.pending_transmit(),
        queued,
        "a refusal queues nothing"
    );
    // Up to the mark is fine.
    server.send_text(&"y".repeat(300)).unwrap();
    // Once written out, sending goes on.
    let wire = take_transmit(&mut server);
    server.send_binary(&[2; 600]).unwrap();
    let mut client = client_with(|_| {});
    let mut events = feed(&mut client, &wire, &[]);
    events.extend(feed(&mut client, &take_transmit(&mut server), &[]));
    assert_eq!(
        events,
        vec![
            OwnedEvent::Binary(vec![1; 600]),
            OwnedEvent::Text("y".repeat(300)),
            OwnedEvent::Binary(vec![2; 600]),
        ]
    );
}

#[test]
fn one_message_larger_than_the_mark_goes_into_an_empty_buffer() {
    let mut server = server(100);
    server.send_binary(&[7; 10_000]).unwrap();
    assert_eq!(full(server.send_binary(&[7; 1])).1, 1);
    // A partial write leaves the rest queued: still refused until it is all out.
    server.transmitted(5_000);
    assert!(server.send_ping(b"p").is_err());
    server.transmitted(5_004);
    server.send_ping(b"p").unwrap();
}

#[test]
fn pings_and_pongs_sent_by_the_application_are_held_to_the_mark_but_close_never_is() {
    let mut server = server(50);
    server.send_binary(&[0; 40]).unwrap();
    full(server.send_ping(&[1; 20]));
    full(server.send_pong(&[1; 20]));
    server
        .close(CloseCode::NORMAL, "over the mark, still sent")
        .unwrap();
    let wire = take_transmit(&mut server);
    assert_eq!(
        sent_close(&wire),
        Some((1000, "over the mark, still sent".into()))
    );
}

/// A ping from a client, masked.
fn ping(payload: &[u8]) -> Vec<u8> {
    client_frame(true, 0x9, payload)
}

const BACKLOG: usize = 4096;

#[test]
fn a_ping_flood_from_a_peer_that_does_not_read_stays_within_the_backlog() {
    let mut server = server(1 << 20);
    let mut pings = Vec::new();
    for i in 0..10_000u32 {
        pings.extend(ping(format!("ping {i:04}").as_bytes()));
    }
    // Read in pieces, events handed out; nothing is ever written back.
    let cuts: Vec<usize> = (0..pings.len()).step_by(777).collect();
    let events = feed(&mut server, &pings, &cuts);
    assert_eq!(events.len(), 10_000, "every ping is still reported");
    let pong_len = 2 + "ping 0000".len();
    assert!(
        server.pending_transmit() < BACKLOG + pong_len,
        "{} bytes queued",
        server.pending_transmit()
    );
    // The first pings got their own pongs, in order, and the last pong
    // answers the latest ping.
    let mut client = client_with(|_| {});
    let answers = feed(&mut client, &take_transmit(&mut server), &[]);
    // Pongs are appended while less than the backlog waits; the last one
    // appended is then replaced by each newer ping's.
    let own = BACKLOG.div_ceil(pong_len) - 1;
    assert_eq!(answers.len(), own + 1);
    for (i, answer) in answers[..own].iter().enumerate() {
        assert_eq!(
            answer,
            &OwnedEvent::Pong(format!("ping {i:04}").into_bytes())
        );
    }
    assert_eq!(answers[own], OwnedEvent::Pong(b"ping 9999".to_vec()));
}

#[test]
fn a_few_pings_that_arrive_together_each_get_a_pong_in_order() {
    let mut server = server(1 << 20);
    let pings: Vec<u8> = (0..10u8).flat_map(|i| ping(&[i; 125])).collect();
    feed(&mut server, &pings, &[]);
    let mut client = client_with(|_| {});
    let answers = feed(&mut client, &take_transmit(&mut server), &[]);
    let expected: Vec<_> = (0..10u8).map(|i| OwnedEvent::Pong(vec![i; 125])).collect();
    assert_eq!(answers, expected);
}

#[test]
fn a_client_coalesces_its_masked_pongs_too() {
    let mut client = client_with(|_| {});
    for i in 0..2_000u32 {
        client.handle_read(&server_frame(true, 0x9, &i.to_be_bytes()));
        while client.poll_event().is_some() {}
    }
    let pong_len = 2 + 4 + 4;
    assert!(client.pending_transmit() < BACKLOG + pong_len);
    let mut server = server(1 << 20);
    let events = feed(&mut server, &take_transmit(&mut client), &[]);
    assert_eq!(
        events.last(),
        Some(&OwnedEvent::Pong(1_999u32.to_be_bytes().to_vec()))
    );
}

/// Fills the transmit buffer past the backlog with one large message.
fn backlogged(server: &mut Connection) {
    server.send_binary(&[0; BACKLOG]).unwrap();
}

#[test]
fn under_a_backlog_a_pong_that_began_to_go_out_is_finished_and_the_next_follows_it() {
    let mut server = server(1 << 20);
    feed(&mut server, &ping(b"first"), &[]);
    let mut wire = Vec::new();
    let pending = server.poll_transmit().unwrap();
    wire.extend_from_slice(&pending[..3]);
    server.transmitted(3);
    backlogged(&mut server);
    feed(&mut server, &ping(b"second"), &[]);
    feed(&mut server, &ping(b"third"), &[]);
    wire.extend(take_transmit(&mut server));
    let mut client = client_with(|_| {});
    assert_eq!(
        feed(&mut client, &wire, &[]),
        vec![
            OwnedEvent::Pong(b"first".to_vec()),
            OwnedEvent::Binary(vec![0; BACKLOG]),
            OwnedEvent::Pong(b"third".to_vec()),
        ]
    );
}

#[test]
fn under_a_backlog_a_replaced_pong_moves_after_data_queued_since() {
    let mut server = server(1 << 20);
    backlogged(&mut server);
    feed(&mut server, &ping(b"old"), &[]);
    server.send_text("between").unwrap();
    feed(&mut server, &ping(b"new"), &[]);
    let mut client = client_with(|_| {});
    assert_eq!(
        feed(&mut client, &take_transmit(&mut server), &[]),
        vec![
            OwnedEvent::Binary(vec![0; BACKLOG]),
            OwnedEvent::Text("between".into()),
            OwnedEvent::Pong(b"new".to_vec()),
        ]
    );
}

#[test]
fn a_peer_that_never_reads_cannot_grow_the_buffer_past_the_mark_and_one_message() {
    let mark = 64 << 10;
    let mut server = server(mark);
    let message = vec![9u8; 10_000];
    let mut refused = 0;
    for i in 0..1_000u32 {
        // The application sends as fast as it is allowed; the peer pings and
        // never reads what we send.
        if server.send_binary(&message).is_err() {
            refused += 1;
        }
        feed(&mut server, &ping(&i.to_be_bytes()), &[]);
        assert!(server.pending_transmit() <= mark + message.len() + 20);
    }
    assert!(refused > 900, "only {refused} sends refused");
}

#[test]
fn send_vectored_is_held_to_the_mark_too() {
    let mut server = server(1000);
    server.send_binary(&[1; 600]).unwrap();
    let queued = server.pending_transmit();
    match server.send_vectored(MessageKind::Binary, &[2; 600]) {
        Err(Error::Usage(UsageError::SendBufferFull {
            queued: q,
            more,
            limit,
        })) => {
            assert_eq!((q, more, limit), (queued, 600, 1000));
        }
        other => panic!("expected SendBufferFull, got {other:?}"),
    }
    assert_eq!(
        server.pending_transmit(),
        queued,
        "a refusal queues nothing"
    );
    // Written out, the same message goes, handed out from the caller's bytes.
    let mut wire = take_transmit(&mut server);
    let payload = [2u8; 600];
    let transmit = server.send_vectored(MessageKind::Binary, &payload).unwrap();
    assert_eq!(transmit.slices()[2].as_ptr(), payload.as_ptr());
    drop(transmit);
    wire.extend(take_transmit(&mut server));
    let mut client = client_with(|_| {});
    assert_eq!(
        feed(&mut client, &wire, &[]),
        vec![
            OwnedEvent::Binary(vec![1; 600]),
            OwnedEvent::Binary(vec![2; 600])
        ]
    );
}
