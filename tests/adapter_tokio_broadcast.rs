//! Broadcast through the tokio adapter's split halves: one prepared message
//! reaches every reading peer, a peer that reads nothing is skipped (and
//! counted) or closed by the caller's policy without holding up the rest,
//! what a lagging peer was sent still reaches it once it reads (written by
//! its reader half when the stream is writable again), and a prepared
//! message sent by one WebSocket arrives intact, large or compressed; a
//! large one broadcast over TCP (written vectored from the shared bytes)
//! reaches a peer that reads at once and one that reads late, intact.
#![cfg(feature = "tokio")]

use std::time::Duration;

use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use wsmachine::adapter::Error;
use wsmachine::adapter::tokio::{ReadHalf, WebSocket, WriteHalf, broadcast};
use wsmachine::handshake::ClientRequest;
use wsmachine::{CloseCode, Config, Delivery, Lagging, OwnedEvent, PreparedMessage};

/// The longest any test may take.
const LIMIT: Duration = Duration::from_secs(60);

/// The pipe's buffer each way, and the servers' send buffer mark.
const PIPE: usize = 4 << 10;
const MARK: usize = 2 << 10;

/// `n` clients, each over its own pipe to a server split into halves; the
/// servers without compression (sizes on the wire are then known) and with
/// a small send buffer mark. Each server's reader runs in a task until its
/// connection ends, and reports how it ended.
async fn room(
    n: usize,
) -> (
    Vec<WebSocket<DuplexStream>>,
    Vec<WriteHalf<DuplexStream>>,
    Vec<tokio::task::JoinHandle<Result<OwnedEvent, Error>>>,
) {
    let mut clients = Vec::new();
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..n {
        let (client, reader, writer) = split_pair(PIPE, MARK).await;
        clients.push(client);
        writers.push(writer);
        readers.push(tokio::spawn(read_until_closed(reader)));
    }
    (clients, writers, readers)
}

/// A client and a server over a pipe of `pipe` bytes each way, the server
/// without compression, with `mark` as its send buffer mark, and split.
async fn split_pair(
    pipe: usize,
    mark: usize,
) -> (
    WebSocket<DuplexStream>,
    ReadHalf<DuplexStream>,
    WriteHalf<DuplexStream>,
) {
    let (a, b) = tokio::io::duplex(pipe);
    let mut config = Config::default();
    config.deflate = None;
    config.max_send_buffer = mark;
    let request = ClientRequest::new("ws://localhost/").unwrap();
    let (client, server) = tokio::join!(
        WebSocket::connect(a, &request, Config::default()),
        WebSocket::accept(b, config)
    );
    let (reader, writer) = server.unwrap().into_split();
    (client.unwrap(), reader, writer)
}

/// What a chat server's reader does: reads until the connection ends,
/// handing back the last event (the `Closed` one).
async fn read_until_closed(mut reader: ReadHalf<DuplexStream>) -> Result<OwnedEvent, Error> {
    loop {
        let event = reader.recv().await?;
        if matches!(event, OwnedEvent::Closed(_)) {
            return Ok(event);
        }
    }
}

/// A client that reads, reporting every text message it receives.
fn reading(mut client: WebSocket<DuplexStream>) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = client.recv().await {
            if let OwnedEvent::Text(text) = event
                && tx.send(text).is_err()
            {
                break;
            }
        }
    });
    rx
}

fn update(i: usize) -> PreparedMessage {
    PreparedMessage::text(&format!("update {i:04} {}", "x".repeat(480)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_reads_nothing_is_skipped_and_the_others_get_every_message() {
    timeout(LIMIT, async {
        let (mut clients, writers, _readers) = room(4).await;
        let mut slow = clients.pop().unwrap();
        let mut fast: Vec<_> = clients.into_iter().map(reading).collect();
        let mut slow_sent = Vec::new();
        let mut slow_skips = 0;
        for i in 0..100 {
            let message = update(i);
            let report = broadcast(&message, &writers, Lagging::Skip);
            // Every fast peer took it; the slow one took it or skipped it.
            assert_eq!(report.sent + report.skipped, 4, "{report:?}");
            assert!(report.sent >= 3, "{report:?}");
            match writers[3].with_connection(|c| c.broadcast_skips()) {
                0 => slow_sent.push(i),
                skips => {
                    slow_skips += 1;
                    assert_eq!(skips, slow_skips, "skips in a row, counted");
                }
            }
            for rx in &mut fast {
                assert_eq!(rx.recv().await.unwrap(), message_text(&message));
            }
        }
        // The slow peer's pipe and send buffer filled, and it was skipped
        // from then on: about (PIPE + MARK) / 500 B were sent to it.
        assert!(slow_skips > 80, "skipped {slow_skips} of 100");
        assert_eq!(slow_sent, (0..slow_sent.len()).collect::<Vec<_>>());

        // It reads now: it gets what it was sent, in order, nothing more;
        // the part that did not fit in the pipe was written by its reader
        // half when the pipe had room again.
        for &i in &slow_sent {
            match slow.recv().await.unwrap() {
                OwnedEvent::Text(text) => assert_eq!(text, message_text(&update(i))),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Caught up: the next broadcast reaches it, and resets its count.
        let last = update(1000);
        let mut slow = reading(slow);
        let report = broadcast(&last, &writers, Lagging::Skip);
        assert_eq!(report.sent, 4, "{report:?}");
        assert_eq!(writers[3].with_connection(|c| c.broadcast_skips()), 0);
        assert_eq!(slow.recv().await.unwrap(), message_text(&last));
    })
    .await
    .expect("bounded");
}

fn message_text(message: &PreparedMessage) -> String {
    String::from_utf8(message.data().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_lagging_past_the_bound_is_closed_with_the_policys_code() {
    timeout(LIMIT, async {
        let (mut clients, writers, mut readers) = room(2).await;
        let mut slow = clients.pop().unwrap();
        let mut fast = reading(clients.pop().unwrap());
        let policy = Lagging::Close {
            after: 3,
            code: CloseCode::TRY_AGAIN_LATER,
        };
        let mut deliveries = Vec::new();
        for i in 0..40 {
            deliveries.push(writers[1].broadcast_prepared(&update(i), policy));
            assert_eq!(
                writers[0].broadcast_prepared(&update(i), policy),
                Delivery::Sent
            );
            assert_eq!(fast.recv().await.unwrap(), message_text(&update(i)));
        }
        let sent = deliveries
            .iter()
            .take_while(|d| **d == Delivery::Sent)
            .count();
        assert!(sent > 0 && sent < 20, "{deliveries:?}");
        assert_eq!(
            deliveries[sent..sent + 4],
            [
                Delivery::Skipped(1),
                Delivery::Skipped(2),
                Delivery::Closed,
                Delivery::NotOpen
            ]
        );
        assert!(
            deliveries[sent + 4..]
                .iter()
                .all(|d| *d == Delivery::NotOpen)
        );

        // The slow peer reads at last: what it was sent, then the close.
        for i in 0..sent {
            match slow.recv().await.unwrap() {
                OwnedEvent::Text(text) => assert_eq!(text, message_text(&update(i))),
                other => panic!("unexpected {other:?}"),
            }
        }
        match slow.recv().await.unwrap() {
            OwnedEvent::Closed(info) => {
                assert_eq!(info.code(), CloseCode::TRY_AGAIN_LATER);
                assert!(info.is_clean(), "{info:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
        // Its server reader saw the close handshake complete; the fast
        // peer's connection is untouched.
        match readers.pop().unwrap().await.unwrap().unwrap() {
            OwnedEvent::Closed(info) => assert_eq!(info.code(), CloseCode::TRY_AGAIN_LATER),
            other => panic!("unexpected {other:?}"),
        }
        let report = broadcast(&update(99), &writers, policy);
        assert_eq!((report.sent, report.not_open), (1, 1), "{report:?}");
        assert_eq!(fast.recv().await.unwrap(), message_text(&update(99)));
    })
    .await
    .expect("bounded");
}

/// A server and a client over loopback TCP, whose stream takes vectored writes.
async fn tcp_pair(server: Config) -> (WebSocket<TcpStream>, WebSocket<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let accepting = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        WebSocket::accept(stream, server).await.unwrap()
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let client = WebSocket::connect(stream, &request, Config::default())
        .await
        .unwrap();
    (client, accepting.await.unwrap())
}

#[tokio::test]
async fn a_large_prepared_message_arrives_intact_from_a_websocket_and_a_half() {
    timeout(LIMIT, async {
        // Compressed by each connection (context takeover), and plain.
        for deflate in [true, false] {
            let mut config = Config::default();
            if !deflate {
                config.deflate = None;
            }
            let (mut client, mut server) = tcp_pair(config).await;
            let big: Vec<u8> = (0..1 << 20).map(|i| (i * 31 % 251) as u8).collect();
            let message = PreparedMessage::binary(&big);
            let receiving = tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..2 {
                    got.push(client.recv().await.unwrap());
                }
                got
            });
            server.send_prepared(&message).await.unwrap();
            let (_reader, mut writer) = server.into_split();
            writer.send_prepared(&message).await.unwrap();
            let got = receiving.await.unwrap();
            assert_eq!(
                got,
                vec![OwnedEvent::Binary(big.clone()); 2],
                "deflate {deflate}"
            );
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_broadcast_over_tcp_reaches_a_fast_and_a_late_reader_intact() {
    timeout(LIMIT, async {
        // A fast reader, and two late ones: plain (the vectored write from
        // the shared bytes, cut short by a full socket) and compressed (the
        // connection's own bytes, queued).
        let mut writers = Vec::new();
        let mut clients = Vec::new();
        let mut readers = Vec::new();
        for deflate in [false, false, true] {
            let mut config = Config::default();
            if !deflate {
                config.deflate = None;
            }
            let (client, server) = tcp_pair(config).await;
            let (mut reader, writer) = server.into_split();
            readers.push(tokio::spawn(async move { reader.recv().await }));
            writers.push(writer);
            clients.push(client);
        }
        let snapshots: Vec<Vec<u8>> = (0..3u32)
            .map(|k| {
                (0..8 << 20)
                    .map(|i: u32| (i.wrapping_mul(k + 7) % 251) as u8)
                    .collect()
            })
            .collect();
        let mut fast = clients.remove(0);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(fast.recv().await.unwrap());
            }
            got
        });
        // 8 MiB is past what the sockets buffer: a late reader's connection
        // keeps the rest queued, and skips what finds it past the mark.
        let mut sent_late = vec![Vec::new(); 2];
        for (k, snapshot) in snapshots.iter().enumerate() {
            // The fast reader drains what it was sent before the next
            // (8 MiB against the 4 MiB mark: one byte left would skip it).
            while writers[0].with_connection(|c| c.pending_transmit()) > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let message = PreparedMessage::binary(snapshot);
            assert_eq!(
                writers[0].broadcast_prepared(&message, Lagging::Skip),
                Delivery::Sent
            );
            for (late, sent) in writers[1..].iter().zip(&mut sent_late) {
                match late.broadcast_prepared(&message, Lagging::Skip) {
                    Delivery::Sent => sent.push(k),
                    Delivery::Skipped(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let expected: Vec<OwnedEvent> = snapshots.iter().cloned().map(OwnedEvent::Binary).collect();
        assert_eq!(reading.await.unwrap(), expected, "the fast reader");
        for (mut late, sent) in clients.into_iter().zip(sent_late) {
            assert_eq!(sent[0], 0, "the first always fits");
            for k in sent {
                assert_eq!(late.recv().await.unwrap(), expected[k], "a late reader");
            }
        }
        drop(readers);
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn one_broadcast_writes_to_every_connection_at_once_past_tokios_budget() {
    timeout(LIMIT, async {
        // 300 connections, more than tokio's budget of 128 operations per
        // poll; no reader half polls, so only the broadcast itself writes.
        let mut clients = Vec::new();
        let mut writers = Vec::new();
        for _ in 0..300 {
            let (client, _reader, writer) =
                split_pair(PIPE, Config::default().max_send_buffer).await;
            clients.push(client);
            writers.push(writer);
        }
        let update = update(7);
        let report = broadcast(&update, &writers, Lagging::Skip);
        assert_eq!(report.sent, 300, "{report:?}");
        // Written already: nothing is left queued on any connection.
        for writer in &writers {
            assert_eq!(writer.with_connection(|c| c.pending_transmit()), 0);
        }
        for client in &mut clients {
            assert_eq!(
                client.recv().await.unwrap(),
                OwnedEvent::Text(message_text(&update))
            );
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_broadcast_first_writes_what_is_queued_when_no_reader_polls() {
    timeout(LIMIT, async {
        // No reader half polls: only broadcasts write.
        let (mut client, _reader, writer) = split_pair(1024, MARK).await;
        let mut sent = Vec::new();
        for i in 0..100 {
            match writer.broadcast_prepared(&update(i), Lagging::Skip) {
                Delivery::Sent => sent.push(i),
                Delivery::Skipped(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(sent.len() < 100, "the pipe and the mark filled");
        // The client takes one message: the pipe has room again. The next
        // broadcast writes what was queued into it first, and so has room.
        assert_eq!(
            client.recv().await.unwrap(),
            OwnedEvent::Text(message_text(&update(0)))
        );
        let next = 1000;
        assert_eq!(
            writer.broadcast_prepared(&update(next), Lagging::Skip),
            Delivery::Sent
        );
        sent.push(next);
        // The rest, in order, with nothing skipped between: a flush writes it.
        let mut writer = writer;
        let flushing = tokio::spawn(async move { writer.flush().await });
        for &i in &sent[1..] {
            assert_eq!(
                client.recv().await.unwrap(),
                OwnedEvent::Text(message_text(&update(i)))
            );
        }
        flushing.await.unwrap().unwrap();
    })
    .await
    .expect("bounded");
}
