//! The blocking adapter split into a reader and a writer used from two
//! threads, over loopback TCP: the reader's duties (pongs, the close echo)
//! reach the wire while the writer is idle, sends never wait for a read,
//! the reader reads on while a send waits for a slow peer, a close by the
//! writer ends the reader within the close timeout and the max wait, and
//! both directions run at once under load.
#![cfg(feature = "blocking")]

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use wsmachine::adapter::Error;
use wsmachine::adapter::blocking::WebSocket;
use wsmachine::handshake::ClientRequest;
use wsmachine::{CloseCode, Config, OwnedEvent};

#[path = "common/bounded.rs"]
mod bounded;
use bounded::{LIMIT, bounded};

/// The longest a step that should be prompt may take, on a loaded machine.
const PROMPT: Duration = Duration::from_secs(5);

/// Runs `f` on a thread; the receiver gets its result.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

fn no_deflate(mut config: Config) -> Config {
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    config
}

/// A client and a server over loopback TCP.
fn pair(client: Config, server: Config) -> (WebSocket<TcpStream>, WebSocket<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        WebSocket::accept(stream, server).unwrap()
    });
    let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let stream = TcpStream::connect(addr).unwrap();
    let client = WebSocket::connect(stream, &request, client).unwrap();
    (client, accepting.join().unwrap())
}

#[test]
fn the_reader_answers_pings_while_the_writer_is_idle() {
    bounded(|| {
        let (mut client, server) = pair(Config::default(), Config::default());
        let (mut reader, _writer) = server.into_split().unwrap();
        let reading = spawn(move || reader.recv().map(|event| (reader, event)));
        client.send_ping(b"are you there").unwrap();
        assert_eq!(
            client.recv().unwrap(),
            OwnedEvent::Pong(b"are you there".to_vec())
        );
        // The reader handed the ping out too, after its pong was written.
        let (_reader, event) = reading.recv_timeout(PROMPT).unwrap().unwrap();
        assert_eq!(event, OwnedEvent::Ping(b"are you there".to_vec()));
    });
}

#[test]
fn the_reader_echoes_a_close_while_the_writer_is_idle() {
    bounded(|| {
        let (mut client, server) = pair(Config::default(), Config::default());
        let (mut reader, writer) = server.into_split().unwrap();
        let reading = spawn(move || {
            let closed = match reader.recv().unwrap() {
                OwnedEvent::Closed(info) => info,
                other => panic!("unexpected {other:?}"),
            };
            assert!(matches!(reader.recv(), Err(Error::Closed)));
            (reader, closed)
        });
        client.close(CloseCode::NORMAL, "bye").unwrap();
        match client.recv().unwrap() {
            OwnedEvent::Closed(info) => {
                assert!(info.is_clean(), "{info:?}");
                assert_eq!(info.code(), CloseCode::NORMAL);
            }
            other => panic!("unexpected {other:?}"),
        }
        let (mut reader, closed) = reading.recv_timeout(PROMPT).unwrap();
        assert!(closed.is_clean(), "{closed:?}");
        // The server ends its transport at once; put back together and
        // dropped, the stream closes, which the client waits for.
        reader.close_transport().unwrap();
        drop(reader.reunite(writer).expect("halves of one WebSocket"));
        client.close_transport().unwrap();
    });
}

#[test]
fn sends_do_not_wait_for_the_readers_read() {
    bounded(|| {
        let mut config = Config::default();
        // No deadline: only the max wait ends the reader's read.
        config.keepalive_interval = None;
        config.buffer_release_delay = Duration::from_secs(3600);
        let (mut client, server) = pair(Config::default(), config);
        let (mut reader, mut writer) = server.into_split().unwrap();
        // The reader waits in a read that nothing will end for a while.
        reader.set_max_wait(Duration::from_secs(10));
        let reading = spawn(move || reader.recv().map(|event| (reader, event)));
        thread::sleep(Duration::from_millis(100));
        for i in 0..10 {
            let start = Instant::now();
            writer.send_text(&format!("message {i}")).unwrap();
            writer.send_ping(b"p").unwrap();
            let took = start.elapsed();
            assert!(took < Duration::from_secs(2), "a send took {took:?}");
        }
        for i in 0..10 {
            assert_eq!(
                client.recv().unwrap(),
                OwnedEvent::Text(format!("message {i}"))
            );
            // The client's pong for the ping ends the reader's wait.
            assert_eq!(client.recv().unwrap(), OwnedEvent::Ping(b"p".to_vec()));
        }
        let (_reader, event) = reading.recv_timeout(PROMPT).unwrap().unwrap();
        assert_eq!(event, OwnedEvent::Pong(b"p".to_vec()));
    });
}

#[test]
fn the_reader_reads_on_while_a_send_waits_for_a_slow_peer() {
    const MESSAGES: usize = 20;
    bounded(|| {
        let (mut client, server) =
            pair(no_deflate(Config::default()), no_deflate(Config::default()));
        let (mut reader, mut writer) = server.into_split().unwrap();
        // 12 MiB: more than loopback's socket buffers take while the client
        // reads nothing, so the send waits for the client.
        let big: Vec<u8> = (0..12 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let expected = big.clone();
        let finished = Arc::new(AtomicBool::new(false));
        let sending = {
            let finished = finished.clone();
            spawn(move || {
                writer.send_binary(&big).unwrap();
                finished.store(true, Ordering::SeqCst);
                writer
            })
        };
        thread::sleep(Duration::from_millis(300));
        assert!(
            !finished.load(Ordering::SeqCst),
            "the send waits for the peer"
        );
        let receiving = spawn(move || {
            let texts: Vec<_> = (0..MESSAGES).map(|_| reader.recv().unwrap()).collect();
            (reader, texts)
        });
        for i in 0..MESSAGES {
            client.send_text(&format!("message {i}")).unwrap();
        }
        // The reader hands them all out while the send is still waiting.
        let (_reader, texts) = receiving.recv_timeout(PROMPT).expect("the reader reads on");
        for (i, text) in texts.into_iter().enumerate() {
            assert_eq!(text, OwnedEvent::Text(format!("message {i}")));
        }
        assert!(
            !finished.load(Ordering::SeqCst),
            "the send waits for the peer"
        );
        // The client reads: the send completes, the message intact.
        assert_eq!(client.recv().unwrap(), OwnedEvent::Binary(expected));
        let _writer = sending.recv_timeout(PROMPT).unwrap();
    });
}

#[test]
fn a_close_by_the_writer_ends_the_reader_within_the_close_timeout_and_max_wait() {
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
    const MAX_WAIT: Duration = Duration::from_millis(300);
    bounded(|| {
        let mut config = Config::default();
        config.close_timeout = Some(CLOSE_TIMEOUT);
        // No deadline at all while the reader waits: only its max wait ends
        // its read.
        config.keepalive_interval = None;
        config.buffer_release_delay = Duration::from_secs(3600);
        let (client, server) = pair(Config::default(), config);
        let (mut reader, mut writer) = server.into_split().unwrap();
        reader.set_max_wait(MAX_WAIT);
        let reading = spawn(move || {
            loop {
                match reader.recv() {
                    Ok(OwnedEvent::Closed(info)) => return (reader, info, Instant::now()),
                    Ok(_) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        });
        // Let the reader wait in its read first.
        thread::sleep(Duration::from_millis(100));
        let closed = Instant::now();
        writer.close(CloseCode::NORMAL, "").unwrap();
        // The client is alive but never answers: the close timeout ends it.
        let (mut reader, info, ended) = reading.recv_timeout(LIMIT).unwrap();
        let waited = ended - closed;
        assert!(!info.is_clean(), "{info:?}");
        assert!(
            waited >= CLOSE_TIMEOUT
                && waited < CLOSE_TIMEOUT + MAX_WAIT + Duration::from_millis(700),
            "closed after {waited:?}"
        );
        assert!(matches!(reader.recv(), Err(Error::Closed)));
        reader.close_transport().unwrap();
        drop(client);
    });
}

#[test]
fn halves_of_two_websockets_do_not_reunite() {
    bounded(|| {
        let (mut c1, s1) = pair(Config::default(), Config::default());
        let (_c2, s2) = pair(Config::default(), Config::default());
        let (r1, w1) = s1.into_split().unwrap();
        let (r2, w2) = s2.into_split().unwrap();
        let back = r1.reunite(w2).expect_err("halves of two WebSockets");
        let (r1, w2) = (back.0, back.1);
        let mut ws1 = r1.reunite(w1).expect("its own writer");
        let _ws2 = r2.reunite(w2).expect("its own writer");
        // Whole again, it works as before.
        ws1.send_text("whole").unwrap();
        assert_eq!(c1.recv().unwrap(), OwnedEvent::Text("whole".into()));
    });
}

/// Both ends split, over loopback TCP: each writer sends messages (some of
/// them large, vectored when not compressed) and pings while its reader
/// receives the other's and answers its pings; all checked in order.
fn both_directions_at_once_under_load(config: Config) {
    const MESSAGES: usize = 3_000;
    let message = |from: &str, i: usize| {
        let pad = match i % 250 {
            0 => 100 << 10,
            _ => i % 700,
        };
        format!(
            "{{\"from\":\"{from}\",\"seq\":{i},\"pad\":\"{}\"}}",
            "x".repeat(pad)
        )
    };
    bounded(move || {
        let (client, server) = pair(config.clone(), config);
        let mut ends = Vec::new();
        for (ws, me, peer) in [(client, "client", "server"), (server, "server", "client")] {
            let (mut reader, mut writer) = ws.into_split().unwrap();
            let writing = spawn(move || {
                for i in 0..MESSAGES {
                    writer.send_text(&message(me, i)).unwrap();
                    if i % 100 == 0 {
                        writer.send_ping(&i.to_be_bytes()).unwrap();
                    }
                }
                writer
            });
            let reading = spawn(move || {
                let (mut pings, mut pongs) = (0, 0);
                let mut i = 0;
                while i < MESSAGES {
                    match reader.recv().unwrap() {
                        OwnedEvent::Text(text) => {
                            assert_eq!(text, message(peer, i), "{me}");
                            i += 1;
                        }
                        OwnedEvent::Ping(_) => pings += 1,
                        OwnedEvent::Pong(_) => pongs += 1,
                        other => panic!("{me}: unexpected {other:?}"),
                    }
                }
                (reader, pings, pongs)
            });
            ends.push((reading, writing));
        }
        // Both ends done before either is dropped (which resets the other).
        let halves: Vec<_> = ends
            .into_iter()
            .map(|(reading, writing)| {
                let (reader, pings, _pongs) = reading.recv_timeout(LIMIT).unwrap();
                assert!(pings > 0);
                (reader, writing.recv_timeout(LIMIT).unwrap())
            })
            .collect();
        for (reader, writer) in halves {
            reader.reunite(writer).expect("halves of one WebSocket");
        }
    });
}

#[test]
fn both_directions_at_once_under_load_compressed() {
    both_directions_at_once_under_load(Config::default());
}

#[test]
fn both_directions_at_once_under_load_vectored() {
    both_directions_at_once_under_load(no_deflate(Config::default()));
}
