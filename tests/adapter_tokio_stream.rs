//! futures' `Stream` and `Sink` on the tokio adapter (feature `futures`):
//! what tokio-tungstenite code does (`StreamExt::split`, `forward`,
//! `SinkExt::send`) works, on a whole WebSocket and on its split halves;
//! the stream ends with the close, or the failure, and then `None`.
#![cfg(feature = "futures")]

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::time::timeout;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::adapter::{Error, Message, Utf8Bytes};
use wsmachine::handshake::ClientRequest;
use wsmachine::{CloseCode, CloseFrame, Config, OwnedEvent};

const LIMIT: Duration = Duration::from_secs(30);

async fn pair() -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(64 << 10);
    let request = ClientRequest::new("ws://localhost/").unwrap();
    let (client, server) = tokio::join!(
        WebSocket::connect(a, &request, Config::default()),
        WebSocket::accept(b, Config::default())
    );
    (client.unwrap(), server.unwrap())
}

#[tokio::test]
async fn the_stream_yields_messages_then_the_close_then_none() {
    timeout(LIMIT, async {
        let (mut client, mut server) = pair().await;
        client.send_text("hello").await.unwrap();
        client.send_binary(&[1, 2, 3]).await.unwrap();
        client.send_ping(b"p").await.unwrap();
        client.close(CloseCode::GOING_AWAY, "bye").await.unwrap();
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::text("hello")
        );
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::binary(vec![1, 2, 3])
        );
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::Ping(Bytes::from_static(b"p"))
        );
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::Close(CloseFrame::new(CloseCode::GOING_AWAY, "bye"))
        );
        assert!(server.next().await.is_none());
        assert!(server.next().await.is_none());
        // The ping was answered and the close echoed on the way.
        assert_eq!(
            client.recv().await.unwrap(),
            OwnedEvent::Pong(b"p".to_vec())
        );
        assert!(matches!(client.recv().await.unwrap(), OwnedEvent::Closed(i) if i.is_clean()));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_failure_ends_the_stream_with_its_error() {
    timeout(LIMIT, async {
        let (a, b) = tokio::io::duplex(64 << 10);
        let mut config = Config::default();
        config.deflate = None;
        let request = ClientRequest::new("ws://localhost/").unwrap();
        let (client, server) = tokio::join!(
            WebSocket::connect(a, &request, config.clone()),
            WebSocket::accept(b, config)
        );
        let (mut raw, _) = client.unwrap().into_parts();
        let mut server = server.unwrap();
        // A masked text frame that is not UTF-8.
        raw.write_all(&[0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28])
            .await
            .unwrap();
        match server.next().await.unwrap() {
            Err(Error::WebSocket(wsmachine::Error::Protocol(e))) => {
                assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD, "{e}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(server.next().await.is_none());
    })
    .await
    .expect("bounded");
}

/// An echo server as tokio-tungstenite users write one: `StreamExt::split`
/// and `forward`; the client sends with `SinkExt::send` and closes with
/// `SinkExt::close`.
#[tokio::test]
async fn stream_ext_split_and_forward_echo() {
    timeout(LIMIT, async {
        let (mut client, server) = pair().await;
        let echo = tokio::spawn(async move {
            let (sink, stream) = server.split();
            stream
                .try_filter(|m| {
                    std::future::ready(matches!(m, Message::Text(_) | Message::Binary(_)))
                })
                .forward(sink)
                .await
        });
        let sent: Vec<Message> = (0..200)
            .map(|i| {
                if i % 2 == 0 {
                    Message::text(format!("message {i}"))
                } else {
                    Message::binary(vec![i as u8; i * 50])
                }
            })
            .collect();
        for message in &sent {
            client.send(message.clone()).await.unwrap();
            assert_eq!(&client.next().await.unwrap().unwrap(), message);
        }
        // Close through the sink; the stream then sees the echo of the close.
        SinkExt::close(&mut client).await.unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Close(CloseFrame::new(CloseCode::NORMAL, ""))
        );
        assert!(client.next().await.is_none());
        echo.await.unwrap().unwrap();
    })
    .await
    .expect("bounded");
}

/// The adapter's own halves are a `Stream` and a `Sink`, in two tasks.
#[tokio::test]
async fn split_halves_are_a_stream_and_a_sink() {
    timeout(LIMIT, async {
        let (client, mut server) = pair().await;
        let (mut reader, mut writer) = client.into_split();
        let sending = tokio::spawn(async move {
            for i in 0..100 {
                writer.send(Message::text(format!("{i}"))).await.unwrap();
            }
            SinkExt::close(&mut writer).await.unwrap();
            writer
        });
        let mut got = 0;
        while let Some(message) = server.next().await {
            match message.unwrap() {
                Message::Text(text) => {
                    assert_eq!(text.as_str(), got.to_string());
                    got += 1;
                }
                Message::Close(frame) => {
                    assert_eq!(frame.map(|f| f.code()), Some(CloseCode::NORMAL));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, 100);
        let mut messages = Vec::new();
        while let Some(message) = reader.next().await {
            messages.push(message.unwrap());
        }
        assert_eq!(
            messages,
            [Message::Close(CloseFrame::new(CloseCode::NORMAL, ""))]
        );
        sending.await.unwrap();
    })
    .await
    .expect("bounded");
}

#[test]
fn utf8_bytes_hold_only_utf8() {
    assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xc3\x28")).is_err());
    assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xe2\x82")).is_err());
    let text = Utf8Bytes::try_from(Bytes::from_static("héllo".as_bytes())).unwrap();
    assert_eq!(&*text, "héllo");
    assert_eq!(Utf8Bytes::from_static("static").as_str(), "static");
    assert_eq!(Message::from("x").as_text(), Some("x"));
}
