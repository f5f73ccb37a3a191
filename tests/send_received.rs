//! `Connection::send_received`: a received message sent on from where it
//! arrived (in place in the receive buffer, or assembled from fragments or
//! inflated), by the connection that received it; its vectored form; and
//! the error when there is nothing to send on.

mod common;

use common::{handshake_pair, plain};
use proptest::prelude::*;
use wsmachine::{Compress, Config, Connection, Error, Event, MessageKind, OwnedEvent, UsageError};

fn carry(from: &mut Connection, to: &mut Connection) -> usize {
    let mut wire = Vec::new();
    from.drain_transmit(&mut wire);
    to.handle_read(&wire);
    wire.len()
}

fn owned(conn: &mut Connection) -> Vec<OwnedEvent> {
    std::iter::from_fn(|| conn.poll_event().map(Event::into_owned)).collect()
}

/// The server echoes every text and binary message with `send_received`.
fn echo_all(server: &mut Connection) -> usize {
    let mut echoed = 0;
    while let Some(event) = server.poll_event() {
        if matches!(event, Event::Text(_) | Event::Binary(_)) {
            server.send_received(Compress::Auto).unwrap();
            echoed += 1;
        }
    }
    echoed
}

#[test]
fn a_message_received_in_place_goes_back_as_it_came() {
    let mut p = handshake_pair(plain(), plain());
    p.client.send_text("hello in place").unwrap();
    p.client.send_binary(&[0, 1, 2, 255]).unwrap();
    carry(&mut p.client, &mut p.server);
    assert_eq!(echo_all(&mut p.server), 2);
    // A server's frames: unmasked, the payload as received.
    assert_eq!(
        p.server.poll_transmit().map(|b| b[..16].to_vec()),
        Some(b"\x81\x0ehello in place".to_vec())
    );
    carry(&mut p.server, &mut p.client);
    assert_eq!(
        owned(&mut p.client),
        [
            OwnedEvent::Text("hello in place".into()),
            OwnedEvent::Binary(vec![0, 1, 2, 255])
        ]
    );
}

#[test]
fn a_fragmented_message_goes_back_whole() {
    let mut p = handshake_pair(plain(), plain());
    p.client
        .send_fragment(MessageKind::Text, "frag".as_bytes(), false)
        .unwrap();
    p.client.send_ping(b"between").unwrap();
    p.client
        .send_fragment(MessageKind::Text, "mented".as_bytes(), true)
        .unwrap();
    carry(&mut p.client, &mut p.server);
    assert_eq!(echo_all(&mut p.server), 1);
    carry(&mut p.server, &mut p.client);
    assert_eq!(
        owned(&mut p.client),
        [
            OwnedEvent::Pong(b"between".to_vec()),
            OwnedEvent::Text("fragmented".into())
        ]
    );
}

#[cfg(feature = "deflate")]
#[test]
fn a_compressed_message_goes_back_compressed_and_intact() {
    let mut p = handshake_pair(Config::default(), Config::default());
    assert!(p.server.negotiated().extensions.is_some());
    let text = "{\"price\":42,\"tags\":[\"a\",\"b\"]},".repeat(100);
    p.client.send_text(&text).unwrap();
    let sent = carry(&mut p.client, &mut p.server);
    assert!(sent < text.len() / 4, "compressed: {sent} bytes");
    assert_eq!(echo_all(&mut p.server), 1);
    let back = carry(&mut p.server, &mut p.client);
    assert!(back < text.len() / 4, "compressed back: {back} bytes");
    assert_eq!(owned(&mut p.client), [OwnedEvent::Text(text)]);
}

#[test]
fn nothing_to_send_on_is_a_usage_error_and_queues_nothing() {
    let no_message = |r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::Usage(UsageError::NoReceivedMessage))),
            "{r:?}"
        );
    };
    let mut p = handshake_pair(plain(), plain());
    // Before anything was received.
    no_message(p.server.send_received(Compress::Auto));
    // After a ping: not a message.
    p.client.send_ping(b"p").unwrap();
    carry(&mut p.client, &mut p.server);
    assert!(matches!(p.server.poll_event(), Some(Event::Ping(_))));
    no_message(p.server.send_received(Compress::Auto));
    let pong = p.server.pending_transmit();
    // After the message's bytes were released by the next poll.
    p.client.send_text("once").unwrap();
    carry(&mut p.client, &mut p.server);
    assert!(matches!(p.server.poll_event(), Some(Event::Text("once"))));
    p.server.send_received(Compress::Auto).unwrap();
    let after_one = p.server.pending_transmit();
    assert!(p.server.poll_event().is_none());
    no_message(p.server.send_received(Compress::Auto));
    assert_eq!(p.server.pending_transmit(), after_one);
    assert!(after_one > pong);
}

#[test]
fn the_vectored_form_hands_out_the_received_bytes_in_place() {
    let mut p = handshake_pair(plain(), plain());
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    p.client.send_binary(&data).unwrap();
    carry(&mut p.client, &mut p.server);
    assert!(matches!(p.server.poll_event(), Some(Event::Binary(d)) if d.len() == data.len()));
    let mut wire = Vec::new();
    {
        let mut transmit = p.server.send_received_vectored().unwrap();
        let [queued, header, payload] = transmit.slices();
        assert!(queued.is_empty());
        assert!(payload == &data[..], "the payload is the received bytes");
        wire.extend_from_slice(header);
        // Half of it is written; the rest is queued when it is dropped.
        let half = header.len() + data.len() / 2;
        wire.extend_from_slice(&payload[..data.len() / 2]);
        transmit.advance(half);
    }
    p.server.drain_transmit(&mut wire);
    p.client.handle_read(&wire);
    assert_eq!(owned(&mut p.client), [OwnedEvent::Binary(data)]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any messages, whole or fragmented, any reads: each comes back equal.
    #[test]
    fn every_message_echoes_intact(
        messages in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..3000), 0usize..4),
            1..12,
        ),
        read in 1usize..5000,
        deflate in any::<bool>(),
    ) {
        let config = || if deflate { Config::default() } else { plain() };
        let mut p = handshake_pair(config(), config());
        let mut expected = Vec::new();
        for (text, bytes, pieces) in &messages {
            let (kind, bytes) = if *text {
                let s: String = bytes.iter().map(|&b| char::from(b'a' + b % 26)).collect();
                (MessageKind::Text, s.into_bytes())
            } else {
                (MessageKind::Binary, bytes.clone())
            };
            if *pieces == 0 || bytes.len() < *pieces {
                p.client.send_message(kind, &bytes, Compress::Auto).unwrap();
            } else {
                let step = bytes.len() / pieces;
                for i in 0..*pieces {
                    let end = if i + 1 == *pieces { bytes.len() } else { (i + 1) * step };
                    p.client.send_fragment(kind, &bytes[i * step..end], i + 1 == *pieces).unwrap();
                }
            }
            expected.push(match kind {
                MessageKind::Text => OwnedEvent::Text(String::from_utf8(bytes).unwrap()),
                MessageKind::Binary => OwnedEvent::Binary(bytes),
            });
        }
        let mut wire = Vec::new();
        p.client.drain_transmit(&mut wire);
        let mut echoed = 0;
        for chunk in wire.chunks(read) {
            p.server.handle_read(chunk);
            echoed += echo_all(&mut p.server);
        }
        prop_assert_eq!(echoed, messages.len());
        carry(&mut p.server, &mut p.client);
        prop_assert_eq!(owned(&mut p.client), expected);
    }
}
