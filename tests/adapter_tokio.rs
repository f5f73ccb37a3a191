//! The tokio adapter over real loopback sockets, both roles.
#![cfg(feature = "tokio")]

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::adapter::{Error, OsEntropy};
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::{CloseCode, Config, Connection, Initiator, OwnedEvent};

/// The default config without permessage-deflate, so that large messages
/// go out as they are (with vectored writes) rather than compressed.
fn uncompressed() -> Config {
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    config
}

async fn echo_server() -> (
    String,
    tokio::task::JoinHandle<Result<wsmachine::CloseInfo, Error>>,
) {
    echo_server_with(Config::default()).await
}

async fn echo_server_with(
    config: Config,
) -> (
    String,
    tokio::task::JoinHandle<Result<wsmachine::CloseInfo, Error>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut ws = WebSocket::accept_with(stream, config, |_| Ok(Accept::new())).await?;
        loop {
            match ws.recv().await? {
                OwnedEvent::Text(t) => ws.send_text(&t).await?,
                OwnedEvent::Binary(b) => ws.send_binary(&b).await?,
                OwnedEvent::Closed(info) => return Ok(info),
                _ => {}
            }
        }
    });
    (url, task)
}

fn addr(url: &str) -> String {
    url.trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test]
async fn client_and_server_echo_and_close_cleanly() {
    timeout(Duration::from_secs(20), async {
        let (url, server) = echo_server().await;
        let request = ClientRequest::new(&url).unwrap();
        let stream = TcpStream::connect(addr(&url)).await.unwrap();
        let mut ws = WebSocket::connect(stream, &request, Config::default()).await.unwrap();
        for i in 0..100u32 {
            let msg = "x".repeat(i as usize * 997);
            ws.send_text(&msg).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Text(msg));
        }
        // Zero-copy receive through recv_with.
        ws.send_binary(&[1, 2, 3]).await.unwrap();
        let len = ws
            .recv_with(|event| match event {
                wsmachine::Event::Binary(data) => data.len(),
                _ => 0,
            })
            .await
            .unwrap();
        assert_eq!(len, 3);
        ws.close(CloseCode::GOING_AWAY, "").await.unwrap();
        assert!(matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(i) if i.is_clean() && i.initiator() == Initiator::Local));
        let info = server.await.unwrap().unwrap();
        assert_eq!(info.code(), CloseCode::GOING_AWAY);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn large_messages_echo_intact_through_vectored_writes() {
    timeout(Duration::from_secs(30), async {
        // The echo server sends each message of 8 KiB or more from the
        // received buffer with write_vectored (Connection::send_vectored).
        let (url, server) = echo_server_with(uncompressed()).await;
        let request = ClientRequest::new(&url).unwrap();
        let stream = TcpStream::connect(addr(&url)).await.unwrap();
        let mut ws = WebSocket::connect(stream, &request, uncompressed())
            .await
            .unwrap();
        for (i, len) in [65_535usize, 65_536, 1 << 20, 4 << 20]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
            ws.send_binary(&data).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Binary(data));
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        while !matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(_)) {}
        server.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

/// An in-memory pipe with a small buffer (writes wait while the reader does
/// not read) that offers vectored writes, as a TCP stream does.
struct Pipe(tokio::io::DuplexStream);

impl tokio::io::AsyncRead for Pipe {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Pipe {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        self.poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_cancelled_large_send_loses_nothing() {
    timeout(Duration::from_secs(30), async {
        let (a, b) = tokio::io::duplex(64 << 10);
        let big: Vec<u8> = (0..4usize << 20).map(|j| (j % 251) as u8).collect();
        let expected = big.clone();
        let (start_reading, reader_may_start) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let mut ws = WebSocket::accept_with(Pipe(a), uncompressed(), |_| Ok(Accept::new()))
                .await
                .unwrap();
            // The peer does not read yet, so this send cannot finish: it is
            // cancelled mid-write, and what it did not write stays queued.
            let first = timeout(Duration::from_millis(50), ws.send_binary(&big)).await;
            assert!(first.is_err(), "the send should have been cancelled");
            let queued = ws.connection().pending_transmit();
            assert!(queued > 0 && queued < big.len(), "{queued} bytes queued");
            start_reading.send(()).unwrap();
            // The next send first waits for the queue to drain (backpressure).
            ws.send_text("after").await.unwrap();
            assert_eq!(ws.connection().pending_transmit(), 0);
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            while !matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(_)) {}
        });
        let request = ClientRequest::new("ws://pipe/").unwrap();
        let mut ws = WebSocket::connect(Pipe(b), &request, uncompressed())
            .await
            .unwrap();
        reader_may_start.await.unwrap();
        match ws.recv().await.unwrap() {
            OwnedEvent::Binary(data) => assert!(data == expected, "message corrupted"),
            other => panic!("{other:?}"),
        }
        assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Text("after".into()));
        assert!(matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(_)));
        server.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    timeout(Duration::from_secs(20), async {
        let (url, server) = echo_server().await;
        let request = ClientRequest::new(&url).unwrap();
        let stream = TcpStream::connect(addr(&url)).await.unwrap();
        let mut ws = WebSocket::connect(stream, &request, Config::default())
            .await
            .unwrap();
        // Queue many messages, then receive them with a recv that is cancelled
        // every few hundred microseconds: nothing may be lost or duplicated.
        let count = 300;
        for i in 0..count {
            ws.connection_mut()
                .send_text(&format!("message {i} {}", "y".repeat(i * 37 % 5000)))
                .unwrap();
        }
        ws.flush().await.unwrap();
        let mut got = Vec::new();
        let mut cancelled = 0;
        while got.len() < count {
            match timeout(Duration::from_micros(300), ws.recv()).await {
                Ok(event) => match event.unwrap() {
                    OwnedEvent::Text(t) => got.push(t),
                    other => panic!("{other:?}"),
                },
                Err(_) => cancelled += 1,
            }
        }
        for (i, text) in got.iter().enumerate() {
            assert!(
                text.starts_with(&format!("message {i} ")),
                "message {i} is {text:.20}"
            );
        }
        let _ = cancelled; // how often it was cancelled depends on the scheduler
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        while !matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(_)) {}
        server.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_handshake_one_byte_at_a_time_and_an_abrupt_close() {
    timeout(Duration::from_secs(20), async {
        let (url, server) = echo_server().await;
        let request = ClientRequest::new(&url).unwrap();
        let mut conn = Connection::client(&request, Config::default(), OsEntropy::new()).unwrap();
        let mut hello = Vec::new();
        conn.drain_transmit(&mut hello);
        let mut stream = TcpStream::connect(addr(&url)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        for b in &hello {
            stream.write_all(std::slice::from_ref(b)).await.unwrap();
            tokio::task::yield_now().await;
        }
        let mut ws = WebSocket::from_connection(stream, conn);
        assert!(matches!(ws.recv().await.unwrap(), OwnedEvent::Open(_)));
        ws.send_text("hi").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Text("hi".into()));
        drop(ws); // abrupt: no close frame
        let info = server.await.unwrap().unwrap();
        assert_eq!(info.code(), CloseCode::ABNORMAL);
    })
    .await
    .unwrap();
}

#[test]
fn from_connection_needs_no_runtime() {
    // The timer is made at the first deadline, inside the runtime.
    let (a, _b) = tokio::io::duplex(1024);
    let ws = WebSocket::from_connection(a, Connection::open_server(Config::default()));
    assert!(ws.connection().is_open());
}

/// `from_connection` with a connection whose clock had started (here at
/// 1000 s): its keepalive still fires after its interval on the adapter's
/// clock, instead of waiting for the adapter's time to reach 1000 s.
#[tokio::test]
async fn a_connection_with_a_started_clock_keeps_its_keepalive() {
    use tokio::io::AsyncReadExt;
    let mut config = Config::default();
    config.keepalive_interval = Some(Duration::from_millis(50));
    config.keepalive_timeout = None;
    let mut conn = Connection::open_server(config);
    conn.handle_timeout(Duration::from_secs(1000));
    let (ours, mut peer) = tokio::io::duplex(1024);
    let mut ws = WebSocket::from_connection(ours, conn);
    let reader = tokio::spawn(async move { ws.recv().await.map(|_| ()) });
    let mut head = [0; 2];
    timeout(Duration::from_secs(5), peer.read_exact(&mut head))
        .await
        .expect("no keepalive ping within 5 s")
        .unwrap();
    assert_eq!(head[0], 0x89, "a ping");
    reader.abort();
}

/// `send_received`: the echo straight from the receive buffer, small and
/// large (vectored writes), plain and compressed, over loopback.
#[tokio::test]
async fn send_received_echoes_every_size_plain_and_compressed() {
    timeout(Duration::from_secs(60), async {
        for config in [uncompressed(), Config::default()] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("ws://{}/", listener.local_addr().unwrap());
            let server_config = config.clone();
            let server = tokio::spawn(async move {
                let (stream, _) = listener.accept().await?;
                let mut ws = WebSocket::accept(stream, server_config).await?;
                loop {
                    let echo = ws
                        .recv_with(|e| match e {
                            wsmachine::Event::Text(_) | wsmachine::Event::Binary(_) => Some(true),
                            wsmachine::Event::Closed(_) => None,
                            _ => Some(false),
                        })
                        .await?;
                    match echo {
                        Some(true) => ws.send_received().await?,
                        Some(false) => {}
                        None => return Ok::<_, Error>(()),
                    }
                }
            });
            let request = ClientRequest::new(&url).unwrap();
            let stream = TcpStream::connect(addr(&url)).await.unwrap();
            let mut ws = WebSocket::connect(stream, &request, config).await.unwrap();
            for size in [0, 1, 125, 126, 65_535, 65_536, 200_000, 1 << 20] {
                let text: String = (0..size)
                    .map(|i| char::from(b'a' + (i % 26) as u8))
                    .collect();
                ws.send_text(&text).await.unwrap();
                assert!(
                    ws.recv().await.unwrap() == OwnedEvent::Text(text),
                    "text of {size}"
                );
                let data: Vec<u8> = (0..size).map(|i| (i * 31 % 256) as u8).collect();
                ws.send_binary(&data).await.unwrap();
                assert!(
                    ws.recv().await.unwrap() == OwnedEvent::Binary(data),
                    "binary of {size}"
                );
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            assert!(matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(i) if i.is_clean()));
            server.await.unwrap().unwrap();
        }
    })
    .await
    .expect("bounded");
}
