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

async fn echo_server() -> (
    String,
    tokio::task::JoinHandle<Result<wsmachine::CloseInfo, Error>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut ws =
            WebSocket::accept_with(stream, Config::default(), |_| Ok(Accept::new())).await?;
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
