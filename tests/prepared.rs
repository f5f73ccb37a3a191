//! `PreparedMessage`: one message made ready once and sent by many
//! connections. A server's frames carry the prepared bytes as they are (and
//! its vectored send hands them out without a copy); a client masks them per
//! connection; with permessage-deflate, the prepared compressed bytes go out
//! only where the agreement allows a message compressed without context,
//! and every other connection still sends bytes its peer decodes. Refused
//! sends leave no trace.

mod common;

use common::{decode_all, handshake_pair, plain};
use wsmachine::testing::Pair;
use wsmachine::{Config, Connection, Error, MessageKind, OwnedEvent, PreparedMessage, UsageError};

fn carry(from: &mut Connection, to: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::new();
    from.drain_transmit(&mut wire);
    to.handle_read(&wire);
    wire
}

fn events(conn: &mut Connection) -> Vec<OwnedEvent> {
    std::iter::from_fn(|| conn.poll_event().map(|e| e.into_owned())).collect()
}

fn sizes() -> [usize; 8] {
    [0, 1, 125, 126, 65_535, 65_536, 100_000, 1 << 20]
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_server_sends_the_same_frame_as_send_binary_for_every_length_class() {
    for len in sizes() {
        let data = payload(len);
        let prepared = PreparedMessage::binary(&data);
        let mut by_prepared = Connection::open_server(plain());
        let mut by_send = Connection::open_server(plain());
        by_prepared.send_prepared(&prepared).unwrap();
        by_send.send_binary(&data).unwrap();
        assert_eq!(
            by_prepared.poll_transmit(),
            by_send.poll_transmit(),
            "len {len}"
        );
    }
}

#[test]
fn a_servers_vectored_send_writes_the_prepared_bytes_where_they_lie() {
    let prepared = PreparedMessage::text(&"x".repeat(70_000));
    let mut servers: Vec<Connection> = (0..3).map(|_| Connection::open_server(plain())).collect();
    for server in &mut servers {
        // Something queued before it goes first.
        server.send_text("before").unwrap();
        let mut transmit = server.send_prepared_vectored(&prepared).unwrap();
        let [queued, head, body] = transmit.slices();
        assert_eq!(queued, b"\x81\x06before");
        assert_eq!(head, [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(body.as_ptr(), prepared.data().as_ptr());
        // Written in part: the rest is queued on drop, after what went out.
        transmit.advance(8 + 10 + 5);
        drop(transmit);
        let rest = server.poll_transmit().unwrap();
        assert_eq!(rest.len(), 70_000 - 5);
    }
}

#[test]
fn clients_mask_each_copy_with_their_own_keys_and_servers_read_it_intact() {
    let text = "tick ".repeat(40);
    let prepared = PreparedMessage::text(&text);
    let mut masks = Vec::new();
    for seed in 0..4 {
        let mut p = Pair::from_connections(
            Connection::open_client(plain(), wsmachine::SeededEntropy::new(seed)),
            Connection::open_server(plain()),
        );
        p.client.send_prepared(&prepared).unwrap();
        let wire = carry(&mut p.client, &mut p.server);
        let frames = decode_all(&wire);
        assert_eq!(frames.len(), 1);
        masks.push(frames[0].0.mask.expect("a client masks"));
        assert_eq!(events(&mut p.server), [OwnedEvent::Text(text.clone())]);
        // The masked copy does not touch the prepared bytes.
        assert_eq!(prepared.data(), text.as_bytes());
    }
    masks.sort_unstable();
    masks.dedup();
    assert_eq!(masks.len(), 4);
}

#[test]
fn text_must_be_utf8_and_the_rules_of_send_apply() {
    assert_eq!(
        PreparedMessage::new(MessageKind::Text, &[0xff, 0xfe]).unwrap_err(),
        UsageError::InvalidUtf8
    );
    let prepared = PreparedMessage::new(MessageKind::Binary, &[0xff, 0xfe]).unwrap();

    // Not before the handshake.
    let mut server = Connection::server(plain());
    assert!(matches!(
        server.send_prepared(&prepared),
        Err(Error::Usage(UsageError::HandshakeInProgress))
    ));
    assert!(server.poll_transmit().is_none());

    // Not inside a fragmented message.
    let mut server = Connection::open_server(plain());
    server
        .send_fragment(MessageKind::Text, b"part", false)
        .unwrap();
    let before = server.pending_transmit();
    assert!(matches!(
        server.send_prepared(&prepared),
        Err(Error::Usage(UsageError::FragmentInProgress))
    ));
    assert_eq!(server.pending_transmit(), before);

    // Not past the send buffer's mark.
    let mut config = plain();
    config.max_send_buffer = 1000;
    let mut server = Connection::open_server(config);
    let big = PreparedMessage::binary(&[0; 800]);
    server.send_prepared(&big).unwrap();
    assert!(matches!(
        server.send_prepared(&big),
        Err(Error::Usage(UsageError::SendBufferFull { .. }))
    ));
    assert_eq!(server.pending_transmit(), 804);

    // Not after a close.
    let mut server = Connection::open_server(plain());
    server.close(wsmachine::CloseCode::NORMAL, "").unwrap();
    assert!(matches!(
        server.send_prepared(&prepared),
        Err(Error::Usage(UsageError::Closed))
    ));
}

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use wsmachine::deflate::{CodecPool, Compressor, DeflateConfig};

    fn config(deflate: DeflateConfig) -> Config {
        let mut config = Config::default();
        config.deflate = Some(deflate);
        config
    }

    fn with(adjust: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
        let mut d = DeflateConfig::default();
        adjust(&mut d);
        d
    }

    fn chat(i: usize) -> String {
        format!(
            r#"{{"type":"message","room":"general","from":"user{}","id":{i},"text":"the news of the hour, number {}"}}"#,
            i % 5,
            i * 37 % 1000
        )
    }

    fn prepared(text: &str, bits: u8) -> PreparedMessage {
        let mut compressor = Compressor::new(1, bits, false);
        PreparedMessage::compressed(MessageKind::Text, text.as_bytes(), &mut compressor).unwrap()
    }

    /// The frames the server sent since the last call, as (RSV1, payload);
    /// the client receives them.
    fn sent(p: &mut Pair) -> Vec<(bool, Vec<u8>)> {
        let wire = carry(&mut p.server, &mut p.client);
        decode_all(&wire)
            .into_iter()
            .map(|(header, payload)| (header.rsv1, payload))
            .collect()
    }

    /// The compressed payload `prepared` carries, as a server sends it alone.
    fn compressed_bytes(prepared: &PreparedMessage) -> Vec<u8> {
        let negotiated = wsmachine::handshake::Negotiated {
            protocol: None,
            extensions: Some("permessage-deflate".into()),
        };
        let mut server = Connection::open_server_negotiated(Config::default(), negotiated);
        server.send_prepared(&prepared.clone()).unwrap();
        let frames = decode_all(server.poll_transmit().unwrap());
        assert!(frames[0].0.rsv1);
        frames[0].1.clone()
    }

    /// Sends own messages and prepared ones, alternating, and checks that the
    /// client reads every one; returns, for each prepared send, whether its
    /// frame carried the prepared compressed bytes.
    fn interleave(p: &mut Pair, rounds: usize) -> Vec<bool> {
        let mut shared = Vec::new();
        for i in 0..rounds {
            // The same text both ways, so that a compressor whose context
            // missed a prepared message points the peer at the wrong bytes.
            let own = chat(i);
            let news = chat(i + 1000);
            let prepared = prepared(&news, 15);
            p.server.send_text(&own).unwrap();
            p.server.send_prepared(&prepared).unwrap();
            p.server.send_text(&news).unwrap();
            p.server.send_text(&own).unwrap();
            let frames = sent(p);
            assert_eq!(frames.len(), 4);
            assert!(frames.iter().all(|(rsv1, _)| *rsv1));
            shared.push(frames[1].1 == compressed_bytes(&prepared));
            assert_eq!(
                events(&mut p.client),
                [own.clone(), news.clone(), news, own].map(OwnedEvent::Text),
                "round {i}"
            );
        }
        shared
    }

    #[test]
    fn without_context_takeover_every_send_shares_the_compressed_bytes() {
        for memory in [
            DeflateConfig::dedicated(8).memory,
            DeflateConfig::default().memory,
        ] {
            let server = with(|d| {
                d.server_no_context_takeover = true;
                d.memory = memory.clone();
            });
            let mut p = handshake_pair(config(DeflateConfig::default()), config(server));
            assert_eq!(interleave(&mut p, 6), [true; 6]);
        }
    }

    #[test]
    fn a_pooled_compressor_with_takeover_shares_them_and_takes_its_context_from_them() {
        // The default: a shared pool and context takeover. The connection's
        // own compressor is intact in the pool between messages; after a
        // prepared send it must start again from the window of bytes sent.
        let pool = CodecPool::new();
        let mut p = handshake_pair(
            config(DeflateConfig::default()),
            config(DeflateConfig::shared(&pool, 15)),
        );
        assert_eq!(interleave(&mut p, 8), [true; 8]);
        let mut p = handshake_pair(
            config(DeflateConfig::default()),
            config(DeflateConfig::default()),
        );
        assert_eq!(interleave(&mut p, 8), [true; 8]);
    }

    #[test]
    fn a_dedicated_compressor_with_takeover_shares_them_only_before_it_exists() {
        let server = with(|d| d.memory = DeflateConfig::dedicated(8).memory);
        let mut p = handshake_pair(config(DeflateConfig::default()), config(server));
        // Before any message of its own: no context to lose.
        let first = prepared(&chat(1), 15);
        p.server.send_prepared(&first).unwrap();
        assert_eq!(sent(&mut p), [(true, compressed_bytes(&first))]);
        assert_eq!(events(&mut p.client), [OwnedEvent::Text(chat(1))]);
        // From then on it compresses the message with its own context.
        assert_eq!(interleave(&mut p, 4), [false; 4]);
    }

    #[test]
    fn a_smaller_agreed_window_gets_its_own_compression() {
        let server = with(|d| d.server_max_window_bits = 10);
        let mut p = handshake_pair(config(DeflateConfig::default()), config(server));
        assert_eq!(interleave(&mut p, 3), [false; 3]);
        // Prepared for that window, the bytes are shared again.
        let news = chat(7);
        let small = prepared(&news, 10);
        p.server.send_prepared(&small).unwrap();
        assert_eq!(sent(&mut p), [(true, compressed_bytes(&small))]);
        assert_eq!(events(&mut p.client), [OwnedEvent::Text(news)]);
    }

    #[test]
    fn under_the_threshold_or_without_the_extension_it_goes_plain() {
        let short = prepared("tiny", 15);
        let mut p = handshake_pair(
            config(DeflateConfig::default()),
            config(DeflateConfig::default()),
        );
        p.server.send_prepared(&short).unwrap();
        assert_eq!(sent(&mut p), [(false, b"tiny".to_vec())]);

        let news = chat(3);
        let long = prepared(&news, 15);
        let mut p = handshake_pair(config(DeflateConfig::default()), plain());
        p.server.send_prepared(&long).unwrap();
        assert_eq!(sent(&mut p), [(false, news.clone().into_bytes())]);
        assert_eq!(events(&mut p.client), [OwnedEvent::Text(news)]);
    }

    #[test]
    fn a_client_masks_the_shared_compressed_bytes() {
        let client = with(|d| d.memory = DeflateConfig::default().memory);
        let mut p = handshake_pair(config(client), config(DeflateConfig::default()));
        let news = chat(9);
        let prepared = prepared(&news, 15);
        let expected = compressed_bytes(&prepared);
        p.client.send_prepared(&prepared).unwrap();
        let wire = carry(&mut p.client, &mut p.server);
        let frames = decode_all(&wire);
        assert!(frames[0].0.mask.is_some() && frames[0].0.rsv1);
        assert_eq!(frames[0].1, expected);
        assert_eq!(events(&mut p.server), [OwnedEvent::Text(news)]);
    }

    #[test]
    fn the_compressor_given_is_restarted_so_each_prepared_message_stands_alone() {
        let mut compressor = Compressor::new(1, 15, false);
        let text = chat(5);
        let a = PreparedMessage::compressed(MessageKind::Text, text.as_bytes(), &mut compressor)
            .unwrap();
        let b = PreparedMessage::compressed(MessageKind::Text, text.as_bytes(), &mut compressor)
            .unwrap();
        // With the context kept, the second would be a few back-references.
        assert_eq!(compressed_bytes(&a), compressed_bytes(&b));
        assert_eq!(
            PreparedMessage::compressed(MessageKind::Text, &[0xc3], &mut compressor).unwrap_err(),
            UsageError::InvalidUtf8
        );
    }
}

mod broadcast {
    use super::*;
    use wsmachine::{CloseCode, Delivery, Lagging};

    fn room(n: usize, max_send_buffer: usize) -> Vec<Pair> {
        (0..n)
            .map(|_| {
                let mut config = plain();
                config.max_send_buffer = max_send_buffer;
                Pair::open(plain(), config)
            })
            .collect()
    }

    #[test]
    fn a_slow_reader_is_skipped_and_counted_while_the_others_get_everything() {
        let mut room = room(4, 2_000);
        let mut slow_got = Vec::new();
        for i in 0..40 {
            let update = PreparedMessage::text(&format!("update {i:03} {}", "x".repeat(300)));
            let mut servers: Vec<&mut Connection> =
                room.iter_mut().map(|p| &mut p.server).collect();
            let report = update.broadcast(servers.drain(..), Lagging::Skip);
            assert_eq!(report.sent + report.skipped, 4, "round {i}");
            if i % 10 == 0 && i > 0 {
                // It read everything last round: this one went out to it.
                assert_eq!(
                    room[3].server.broadcast_skips(),
                    0,
                    "reset once it took one"
                );
            } else if i % 10 >= 6 {
                assert!(room[3].server.broadcast_skips() > 0);
            }
            // Three read everything at once; the slow one reads every tenth round.
            for (k, p) in room.iter_mut().enumerate() {
                if k < 3 || i % 10 == 9 {
                    carry(&mut p.server, &mut p.client);
                }
            }
            if i % 10 == 9 {
                slow_got.extend(events(&mut room[3].client));
            }
        }
        for p in &mut room[..3] {
            let got = events(&mut p.client);
            assert_eq!(got.len(), 40);
        }
        // The slow one got the messages that fit, in order, and no others.
        assert!(
            slow_got.len() < 40 && slow_got.len() >= 4 * 5,
            "{}",
            slow_got.len()
        );
        let numbers: Vec<u32> = slow_got
            .iter()
            .map(|e| match e {
                OwnedEvent::Text(t) => t[7..10].parse().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }

    #[test]
    fn past_the_bound_a_lagging_connection_is_closed_with_the_policys_code() {
        // Queued, and handed out for a vectored write that writes nothing
        // (the rest is queued as the transmit drops): the same deliveries.
        for vectored in [false, true] {
            lagging_closes(vectored);
        }
    }

    fn lagging_closes(vectored: bool) {
        let mut p = room(1, 1_000).pop().unwrap();
        let policy = Lagging::Close {
            after: 3,
            code: CloseCode::TRY_AGAIN_LATER,
        };
        let update = PreparedMessage::binary(&[5; 600]);
        let deliveries: Vec<Delivery> = (0..6)
            .map(|_| match vectored {
                false => p.server.broadcast_prepared(&update, policy),
                true => match p.server.broadcast_prepared_vectored(&update, policy) {
                    Ok(transmit) => {
                        assert_eq!(transmit.slices()[2].as_ptr(), update.data().as_ptr());
                        Delivery::Sent
                    }
                    Err(delivery) => delivery,
                },
            })
            .collect();
        assert_eq!(
            deliveries,
            [
                Delivery::Sent,
                Delivery::Skipped(1),
                Delivery::Skipped(2),
                Delivery::Closed,
                Delivery::NotOpen,
                Delivery::NotOpen
            ]
        );
        // The peer reads what was queued, then the close with 1013.
        carry(&mut p.server, &mut p.client);
        let got = events(&mut p.client);
        assert_eq!(got[0], OwnedEvent::Binary(vec![5; 600]));
        assert!(
            got.iter().any(|e| matches!(e, OwnedEvent::Closed(info) if info.code() == CloseCode::TRY_AGAIN_LATER)),
            "{got:?}"
        );
    }

    #[test]
    fn a_connection_inside_its_own_fragmented_message_skips_and_others_do_not_wait() {
        let mut room = room(2, 1 << 20);
        room[0]
            .server
            .send_fragment(MessageKind::Text, b"part", false)
            .unwrap();
        let update = PreparedMessage::text("news");
        let servers = room.iter_mut().map(|p| &mut p.server);
        let report = update.broadcast(servers, Lagging::Skip);
        assert_eq!((report.sent, report.skipped), (1, 1));
        assert_eq!(room[0].server.broadcast_skips(), 1);
        let p = &mut room[1];
        carry(&mut p.server, &mut p.client);
        assert_eq!(events(&mut p.client), [OwnedEvent::Text("news".into())]);
    }
}
