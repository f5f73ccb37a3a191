//! `examples/h2.rs` end to end: a WebSocket over an HTTP/2 stream (RFC 8441)
//! between the `h2` crate's client and server, over loopback.
#![cfg(all(feature = "tokio", feature = "http"))]

#[allow(dead_code)]
#[path = "../examples/h2.rs"]
mod h2_example;

use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use wsmachine::OwnedEvent;
use wsmachine::handshake::WEBSOCKET_PROTOCOL;

async fn server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(h2_example::serve(listener));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_echo_over_an_h2_stream_with_deflate_and_a_subprotocol() {
    let addr = server().await;
    let messages = h2_example::sample_messages();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        h2_example::run_client(addr, &messages),
    )
    .await
    .expect("bounded")
    .unwrap();
    assert_eq!(report.protocol.as_deref(), Some("chat"));
    #[cfg(feature = "deflate")]
    assert_eq!(
        report.extensions.as_deref(),
        Some("permessage-deflate; client_max_window_bits=12")
    );
    assert_eq!(report.echoed, messages.len());
    let close = report.close.expect("closed");
    assert!(close.is_clean());
    assert_eq!(close.code(), wsmachine::CloseCode::NORMAL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_websockets_each_echo() {
    let addr = server().await;
    let runs = (0..4).map(|i| {
        tokio::spawn(async move {
            let messages = vec![
                OwnedEvent::Text(format!("stream {i}")),
                OwnedEvent::Binary(vec![i as u8; 100_000]),
            ];
            h2_example::run_client(addr, &messages)
                .await
                .map(|r| r.echoed)
        })
    });
    for run in runs {
        let echoed = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("bounded")
            .unwrap()
            .unwrap();
        assert_eq!(echoed, 2);
    }
}

/// The server answers what is not a WebSocket CONNECT as RFC 6455 would:
/// here another version, 426 with the version it speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_version_gets_426_over_h2() {
    let addr = server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send_request, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut send_request = send_request.ready().await.unwrap();
    for _ in 0..200 {
        if send_request.is_extended_connect_protocol_enabled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(send_request.is_extended_connect_protocol_enabled());
    let mut request = http::Request::builder()
        .method("CONNECT")
        .uri(format!("http://{addr}/echo"))
        .header("sec-websocket-version", "8")
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static(WEBSOCKET_PROTOCOL));
    let (response, _send) = send_request.send_request(request, false).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("bounded")
        .unwrap();
    assert_eq!(response.status(), 426);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk: Bytes = chunk.unwrap();
        text.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8(text).unwrap().contains("13"));
}
