//! The tokio adapter split into a reader and a writer used from two tasks:
//! the reader's duties (pongs, the close echo) reach the wire while the
//! writer is idle, the reader reads on while a send waits for a slow peer, a
//! close by the writer starts the reader's close timeout, both halves are
//! cancel-safe, and both directions run at once under load.
#![cfg(feature = "tokio")]

use std::time::Duration;

use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};
use wsmachine::adapter::Error;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::handshake::ClientRequest;
use wsmachine::{CloseCode, Config, OwnedEvent};

/// The longest any test may take.
const LIMIT: Duration = Duration::from_secs(60);

/// A client and a server over an in-memory pipe whose buffer holds `buffer`
/// bytes each way.
async fn pair(buffer: usize, server: Config) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(buffer);
    let request = ClientRequest::new("ws://localhost/").unwrap();
    let (client, server) = tokio::join!(
        WebSocket::connect(a, &request, Config::default()),
        WebSocket::accept(b, server)
    );
    (client.unwrap(), server.unwrap())
}

#[tokio::test]
async fn the_reader_answers_pings_while_the_writer_is_idle() {
    timeout(LIMIT, async {
        let (mut client, server) = pair(64 << 10, Config::default()).await;
        let (mut reader, _writer) = server.into_split();
        let reading = tokio::spawn(async move {
            let event = reader.recv().await;
            (reader, event)
        });
        client.send_ping(b"are you there").await.unwrap();
        assert_eq!(
            client.recv().await.unwrap(),
            OwnedEvent::Pong(b"are you there".to_vec())
        );
        // The reader handed the ping out too, after its pong was written.
        let (_reader, event) = reading.await.unwrap();
        assert_eq!(event.unwrap(), OwnedEvent::Ping(b"are you there".to_vec()));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn the_reader_echoes_a_close_while_the_writer_is_idle() {
    timeout(LIMIT, async {
        let (mut client, server) = pair(64 << 10, Config::default()).await;
        let (mut reader, writer) = server.into_split();
        let reading = tokio::spawn(async move {
            let closed = match reader.recv().await.unwrap() {
                OwnedEvent::Closed(info) => info,
                other => panic!("unexpected {other:?}"),
            };
            assert!(matches!(reader.recv().await, Err(Error::Closed)));
            (reader, closed)
        });
        client.close(CloseCode::NORMAL, "bye").await.unwrap();
        match client.recv().await.unwrap() {
            OwnedEvent::Closed(info) => {
                assert!(info.is_clean(), "{info:?}");
                assert_eq!(info.code(), CloseCode::NORMAL);
            }
            other => panic!("unexpected {other:?}"),
        }
        let (reader, closed) = reading.await.unwrap();
        assert!(closed.is_clean(), "{closed:?}");
        // Put back together, the server ends its transport first.
        let mut server = reader.reunite(writer).expect("halves of one WebSocket");
        server.close_transport().await.unwrap();
        client.close_transport().await.unwrap();
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn the_reader_reads_on_while_a_send_waits_for_a_slow_peer() {
    timeout(LIMIT, async {
        let mut config = Config::default();
        config.deflate = None;
        let (mut client, server) = pair(16 << 10, config).await;
        let (mut reader, mut writer) = server.into_split();
        // The client reads nothing yet: 1 MiB cannot go through a 16 KiB pipe.
        let big: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let expected = big.clone();
        let sending = tokio::spawn(async move {
            writer.send_binary(&big).await.unwrap();
            writer
        });
        // The writer runs until the pipe is full, and waits.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sending.is_finished(), "the send waits for the peer");
        for i in 0..20 {
            client.send_text(&format!("message {i}")).await.unwrap();
        }
        for i in 0..20 {
            assert_eq!(
                reader.recv().await.unwrap(),
                OwnedEvent::Text(format!("message {i}"))
            );
        }
        assert!(!sending.is_finished(), "the send waits for the peer");
        // The client reads: the send completes, the message intact.
        assert_eq!(client.recv().await.unwrap(), OwnedEvent::Binary(expected));
        let _writer = sending.await.unwrap();
    })
    .await
    .expect("bounded");
}

#[tokio::test(start_paused = true)]
async fn a_close_by_the_writer_starts_the_readers_close_timeout() {
    let mut config = Config::default();
    config.close_timeout = Some(Duration::from_secs(2));
    config.keepalive_interval = Some(Duration::from_secs(60));
    // No other timer comes before the keepalive's.
    config.buffer_release_delay = Duration::from_secs(3600);
    let (client, server) = pair(64 << 10, config).await;
    let (mut reader, mut writer) = server.into_split();
    let start = Instant::now();
    let reading = tokio::spawn(async move {
        loop {
            match reader.recv().await {
                Ok(OwnedEvent::Closed(info)) => return info,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    });
    // Let the reader wait with its timer at the keepalive, a minute away.
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer.close(CloseCode::NORMAL, "").await.unwrap();
    // The client never answers: the close timeout ends it.
    let info = reading.await.unwrap();
    let waited = start.elapsed();
    assert!(!info.is_clean(), "{info:?}");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    drop(client);
}

#[tokio::test]
async fn cancelled_receives_and_sends_lose_nothing() {
    timeout(LIMIT, async {
        let mut config = Config::default();
        config.deflate = None;
        let (mut client, server) = pair(16 << 10, config).await;
        let (mut reader, mut writer) = server.into_split();
        // A receive cancelled before anything arrived.
        assert!(
            timeout(Duration::from_millis(20), reader.recv())
                .await
                .is_err()
        );
        client
            .send_text("after the cancelled receive")
            .await
            .unwrap();
        assert_eq!(
            reader.recv().await.unwrap(),
            OwnedEvent::Text("after the cancelled receive".into())
        );
        // A send cancelled while the peer does not read: the message stays
        // queued whole and goes out with the next flush.
        let big: Vec<u8> = (0..300_000).map(|i| (i % 256) as u8).collect();
        assert!(
            timeout(Duration::from_millis(50), writer.send_binary(&big))
                .await
                .is_err()
        );
        let flushing = tokio::spawn(async move {
            writer.flush().await.unwrap();
            writer.send_text("next").await.unwrap();
            writer
        });
        assert_eq!(client.recv().await.unwrap(), OwnedEvent::Binary(big));
        assert_eq!(
            client.recv().await.unwrap(),
            OwnedEvent::Text("next".into())
        );
        flushing.await.unwrap();
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn halves_of_two_websockets_do_not_reunite() {
    let (_c1, s1) = pair(1024, Config::default()).await;
    let (_c2, s2) = pair(1024, Config::default()).await;
    let (r1, w1) = s1.into_split();
    let (r2, w2) = s2.into_split();
    let back = r1.reunite(w2).expect_err("halves of two WebSockets");
    let (r1, w2) = (back.0, back.1);
    r1.reunite(w1).expect("its own writer");
    r2.reunite(w2).expect("its own writer");
}

/// Both ends split, over loopback TCP with permessage-deflate: each writer
/// sends while its reader receives the other's messages, all checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_at_once_under_load() {
    const MESSAGES: usize = 5_000;
    timeout(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            WebSocket::accept(stream, Config::default()).await.unwrap()
        });
        let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let client = WebSocket::connect(stream, &request, Config::default())
            .await
            .unwrap();
        let server = server.await.unwrap();
        assert!(
            client
                .connection()
                .negotiated()
                .extensions
                .as_deref()
                .is_some_and(|e| e.starts_with("permessage-deflate"))
        );
        let message = |from: &str, i: usize| {
            format!(
                "{{\"from\":\"{from}\",\"seq\":{i},\"pad\":\"{}\"}}",
                "x".repeat(i % 700)
            )
        };
        let mut ends = Vec::new();
        for (ws, me, peer) in [(client, "client", "server"), (server, "server", "client")] {
            let (mut reader, mut writer) = ws.into_split();
            let writing = tokio::spawn(async move {
                for i in 0..MESSAGES {
                    writer.send_text(&message(me, i)).await.unwrap();
                }
                writer
            });
            let reading = tokio::spawn(async move {
                for i in 0..MESSAGES {
                    match reader.recv().await.unwrap() {
                        OwnedEvent::Text(text) => assert_eq!(text, message(peer, i)),
                        other => panic!("{me}: unexpected {other:?}"),
                    }
                }
                reader
            });
            ends.push((reading, writing));
        }
        for (reading, writing) in ends {
            let (reader, writer) = (reading.await.unwrap(), writing.await.unwrap());
            reader.reunite(writer).expect("halves of one WebSocket");
        }
    })
    .await
    .expect("bounded");
}
