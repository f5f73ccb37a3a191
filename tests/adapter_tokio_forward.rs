//! `WebSocket::forward_received`: a message received on one WebSocket sent
//! on through another, from where it was received: intact whatever its size,
//! kind and compression on either side, and from 8 KiB on without a copy
//! into the second connection (its payload reaches the stream as a slice of
//! its own).
#![cfg(feature = "tokio")]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use wsmachine::adapter::Error;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::handshake::ClientRequest;
mod common;
use common::{
    COPIED_SIZES, EDGE_SIZES, OWN_SLICE_SIZES, assert_written_from_where_they_lie, text_and_binary,
};
use wsmachine::{CloseCode, Config, Event, OwnedEvent, UsageError};

fn uncompressed() -> Config {
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    config
}

/// A stream that records the length of every slice of every vectored write
/// it is given (and writes them out in order, as a socket does).
struct Recording<S> {
    inner: S,
    slices: Arc<Mutex<Vec<Vec<usize>>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let lens = bufs.iter().map(|b| b.len()).filter(|&n| n > 0).collect();
        self.slices.lock().unwrap().push(lens);
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn client(url: &str, config: Config) -> WebSocket<TcpStream> {
    let request = ClientRequest::new(url).unwrap();
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    let stream = TcpStream::connect(addr).await.unwrap();
    WebSocket::connect(stream, &request, config).await.unwrap()
}

/// A relay: the first client's messages go to the second through
/// `forward_received`, until the first closes. Returns the slice lengths of
/// the second connection's vectored writes.
async fn relay(
    from_config: Config,
    to_config: Config,
    client_config: Config,
    messages: Vec<OwnedEvent>,
) -> Vec<Vec<usize>> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let slices = Arc::new(Mutex::new(Vec::new()));
    let recorded = slices.clone();
    let server = tokio::spawn(async move {
        let (a, _) = listener.accept().await?;
        let mut from = WebSocket::accept(a, from_config).await?;
        let (b, _) = listener.accept().await?;
        let b = Recording { inner: b, slices };
        let mut to = WebSocket::accept(b, to_config).await?;
        loop {
            let message = from
                .recv_with(|e| match e {
                    Event::Text(_) | Event::Binary(_) => Some(true),
                    Event::Closed(_) => None,
                    _ => Some(false),
                })
                .await?;
            match message {
                Some(true) => from.forward_received(&mut to).await?,
                Some(false) => {}
                None => break,
            }
        }
        from.close_transport().await?;
        to.close(CloseCode::NORMAL, "relay done").await?;
        while !matches!(to.recv().await?, OwnedEvent::Closed(_)) {}
        Ok::<_, Error>(())
    });
    let mut sender = client(&url, client_config.clone()).await;
    let mut receiver = client(&url, client_config).await;
    for message in &messages {
        match message {
            OwnedEvent::Text(t) => sender.send_text(t).await.unwrap(),
            OwnedEvent::Binary(b) => sender.send_binary(b).await.unwrap(),
            _ => unreachable!(),
        }
        let got = receiver.recv().await.unwrap();
        assert!(
            &got == message,
            "a message of {} bytes changed",
            len(message)
        );
    }
    sender.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(matches!(sender.recv().await.unwrap(), OwnedEvent::Closed(i) if i.is_clean()));
    assert!(matches!(receiver.recv().await.unwrap(), OwnedEvent::Closed(i) if i.is_clean()));
    server.await.unwrap().unwrap();
    recorded.lock().unwrap().clone()
}

fn len(message: &OwnedEvent) -> usize {
    match message {
        OwnedEvent::Text(t) => t.len(),
        OwnedEvent::Binary(b) => b.len(),
        _ => 0,
    }
}

#[tokio::test]
async fn a_relayed_message_of_any_size_arrives_intact() {
    timeout(Duration::from_secs(60), async {
        relay(
            uncompressed(),
            uncompressed(),
            uncompressed(),
            text_and_binary(&EDGE_SIZES),
        )
        .await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_large_message_reaches_the_other_stream_without_a_copy() {
    timeout(Duration::from_secs(60), async {
        let sizes = [&COPIED_SIZES[..], &OWN_SLICE_SIZES[..]].concat();
        let writes = relay(
            uncompressed(),
            uncompressed(),
            uncompressed(),
            text_and_binary(&sizes),
        )
        .await;
        assert_written_from_where_they_lie(&writes, &OWN_SLICE_SIZES, &COPIED_SIZES);
    })
    .await
    .expect("bounded");
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn compression_on_either_side_is_honoured() {
    timeout(Duration::from_secs(60), async {
        // Received compressed (inflated on the way in), sent on plain; and
        // received plain, sent on compressed by the second connection.
        for (from, to) in [
            (Config::default(), uncompressed()),
            (uncompressed(), Config::default()),
        ] {
            relay(from, to, Config::default(), text_and_binary(&EDGE_SIZES)).await;
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn nothing_received_is_a_usage_error() {
    timeout(Duration::from_secs(20), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (a, _) = listener.accept().await.unwrap();
            let mut from = WebSocket::accept(a, uncompressed()).await.unwrap();
            let (b, _) = listener.accept().await.unwrap();
            let mut to = WebSocket::accept(b, uncompressed()).await.unwrap();
            // The handshake was the last event: no message is held.
            let result = from.forward_received(&mut to).await;
            assert!(
                matches!(
                    result,
                    Err(Error::WebSocket(wsmachine::Error::Usage(
                        UsageError::NoReceivedMessage
                    )))
                ),
                "{result:?}"
            );
            assert_eq!(to.connection().pending_transmit(), 0);
        });
        let _a = client(&url, uncompressed()).await;
        let _b = client(&url, uncompressed()).await;
        server.await.unwrap();
    })
    .await
    .expect("bounded");
}
