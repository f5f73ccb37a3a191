mod common;
use common::*;
use wsmachine::testing::Pair;
use wsmachine::{CloseCode, Config, Initiator, OwnedEvent};

#[test]
fn text_binary_ping_and_close_round_trip() {
    let mut pair = Pair::open(Config::default(), Config::default());
    pair.client.send_text("hello").unwrap();
    pair.client.send_binary(&[1, 2, 3]).unwrap();
    pair.client.send_ping(b"p").unwrap();
    let at_server = pair.client_to_server();
    let at_client = pair.server_to_client();
    assert_eq!(
        at_server,
        vec![
            OwnedEvent::Text("hello".into()),
            OwnedEvent::Binary(vec![1, 2, 3]),
            OwnedEvent::Ping(b"p".to_vec())
        ]
    );
    assert_eq!(at_client, vec![OwnedEvent::Pong(b"p".to_vec())]);
    pair.server.close(CloseCode::NORMAL, "bye").unwrap();
    let at_client = pair.server_to_client();
    let at_server = pair.client_to_server();
    let c = closed(&at_client);
    assert_eq!(
        (c.code(), c.reason(), c.initiator(), c.is_clean()),
        (CloseCode::NORMAL, "bye", Initiator::Remote, true)
    );
    let s = closed(&at_server);
    assert_eq!(
        (s.code(), s.initiator(), s.is_clean()),
        (CloseCode::NORMAL, Initiator::Local, true)
    );
}

#[test]
fn bytewise_delivery_matches() {
    let mut pair = Pair::open(Config::default(), Config::default());
    pair.client
        .send_fragment(wsmachine::MessageKind::Text, "h€".as_bytes(), false)
        .unwrap();
    pair.client.send_ping(b"x").unwrap();
    pair.client
        .send_fragment(wsmachine::MessageKind::Text, "llo".as_bytes(), true)
        .unwrap();
    let bytes = take_transmit(&mut pair.client);
    let events = feed_bytewise(&mut pair.server, &bytes);
    assert_eq!(
        events,
        vec![
            OwnedEvent::Ping(b"x".to_vec()),
            OwnedEvent::Text("h€llo".into())
        ]
    );
}
