//! The blocking adapter over real loopback sockets, both roles.
#![cfg(feature = "blocking")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use wsmachine::adapter::blocking::WebSocket;
use wsmachine::adapter::{Error, OsEntropy};
use wsmachine::handshake::{Accept, ClientRequest, Reject};
use wsmachine::{CloseCode, Config, Connection, Initiator, OwnedEvent};

/// A listener on a free loopback port, its `ws://` URL and its address.
fn listener() -> (TcpListener, String, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, format!("ws://{addr}/echo"), addr)
}

fn timeouts(stream: &TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
}

/// An echo server for one connection; returns how the connection ended.
fn echo_once(listener: TcpListener) -> thread::JoinHandle<Result<wsmachine::CloseInfo, Error>> {
    thread::spawn(move || {
        let (stream, _) = listener.accept()?;
        timeouts(&stream);
        let mut ws = WebSocket::accept_with(stream, Config::default(), |req| {
            assert_eq!(req.path(), "/echo");
            // Selecting a subprotocol the client did not offer is refused by the core.
            Ok(match req.protocols().any(|p| p == "echo") {
                true => Accept::new().protocol("echo"),
                false => Accept::new(),
            })
        })?;
        loop {
            match ws.recv()? {
                OwnedEvent::Text(t) => ws.send_text(&t)?,
                OwnedEvent::Binary(b) => ws.send_binary(&b)?,
                OwnedEvent::Closed(info) => return Ok(info),
                _ => {}
            }
        }
    })
}

#[test]
fn client_and_server_echo_and_close_cleanly() {
    let (listener, url, addr) = listener();
    let server = echo_once(listener);
    let stream = TcpStream::connect(&addr).unwrap();
    timeouts(&stream);
    let request = ClientRequest::new(&url).unwrap().protocol("echo");
    let mut ws = WebSocket::connect(stream, &request, Config::default()).unwrap();
    assert_eq!(
        ws.connection().negotiated().protocol.as_deref(),
        Some("echo")
    );
    let big = vec![0xab; 300_000];
    ws.send_text("hello").unwrap();
    ws.send_binary(&big).unwrap();
    ws.send_ping(b"?").unwrap();
    assert_eq!(ws.recv().unwrap(), OwnedEvent::Text("hello".into()));
    assert_eq!(ws.recv().unwrap(), OwnedEvent::Binary(big));
    assert_eq!(ws.recv().unwrap(), OwnedEvent::Pong(b"?".to_vec()));
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    match ws.recv().unwrap() {
        OwnedEvent::Closed(info) => {
            assert!(info.is_clean());
            assert_eq!(
                (info.code(), info.initiator()),
                (CloseCode::NORMAL, Initiator::Local)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(ws.recv(), Err(Error::Closed)));
    let info = server.join().unwrap().unwrap();
    assert_eq!(
        (info.code(), info.reason(), info.initiator()),
        (CloseCode::NORMAL, "bye", Initiator::Remote)
    );
}

#[test]
fn a_handshake_and_frame_arriving_one_byte_at_a_time() {
    let (listener, url, addr) = listener();
    let server = echo_once(listener);
    // Build the bytes with a core client, and send them one write per byte.
    let request = ClientRequest::new(&url).unwrap();
    let mut conn = Connection::client(&request, Config::default(), OsEntropy::new()).unwrap();
    let mut hello = Vec::new();
    conn.drain_transmit(&mut hello);
    let mut stream = TcpStream::connect(&addr).unwrap();
    timeouts(&stream);
    stream.set_nodelay(true).unwrap();
    for b in &hello {
        stream.write_all(std::slice::from_ref(b)).unwrap();
    }
    let mut ws = WebSocket::from_connection(stream, conn);
    assert!(matches!(ws.recv().unwrap(), OwnedEvent::Open(_)));
    ws.send_text("byte by byte").unwrap();
    assert_eq!(ws.recv().unwrap(), OwnedEvent::Text("byte by byte".into()));
    drop(ws);
    // The client vanished without a close frame: 1006 on the server.
    let info = server.join().unwrap().unwrap();
    assert_eq!(info.code(), CloseCode::ABNORMAL);
    assert!(!info.is_clean());
}

#[test]
fn a_peer_that_drops_mid_frame_gives_1006() {
    let (listener, url, addr) = listener();
    let server = echo_once(listener);
    let request = ClientRequest::new(&url).unwrap();
    let mut ws = WebSocket::connect(
        TcpStream::connect(&addr).unwrap(),
        &request,
        Config::default(),
    )
    .unwrap();
    // Half a frame: a header announcing 1000 bytes and 10 of them, then gone.
    let mut frame = Vec::new();
    let mut header = wsmachine::frame::FrameHeader::new(
        wsmachine::frame::OpCode::BINARY,
        true,
        Some([1, 2, 3, 4]),
    );
    header.payload_len = 1000;
    let mut head = [0; 14];
    let n = header.encode(&mut head);
    frame.extend_from_slice(&head[..n]);
    frame.extend_from_slice(&[0; 10]);
    ws.get_mut().write_all(&frame).unwrap();
    drop(ws);
    let info = server.join().unwrap().unwrap();
    assert_eq!(info.code(), CloseCode::ABNORMAL);
}

#[test]
fn the_server_application_rejects_and_a_bad_request_gets_400() {
    let (listener, url, addr) = listener();
    let server = thread::spawn(move || {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (stream, _) = listener.accept().unwrap();
            timeouts(&stream);
            results.push(
                WebSocket::accept_with(stream, Config::default(), |req| match req.origin() {
                    Some("https://good.example") => Ok(Accept::new()),
                    _ => Err(Reject::new(403).body(b"origin not allowed")),
                })
                .map(|_| ()),
            );
        }
        results
    });
    // A client from a refused origin gets the 403 with its status, headers and body.
    let request = ClientRequest::new(&url)
        .unwrap()
        .origin("https://evil.example");
    match WebSocket::connect(
        TcpStream::connect(&addr).unwrap(),
        &request,
        Config::default(),
    ) {
        Err(Error::WebSocket(wsmachine::Error::Handshake(
            wsmachine::handshake::HandshakeError::Rejected(r),
        ))) => {
            assert_eq!(r.status, 403);
            assert_eq!(r.body, b"origin not allowed");
        }
        other => panic!("{other:?}"),
    }
    // Garbage gets 400.
    let mut raw = TcpStream::connect(&addr).unwrap();
    timeouts(&raw);
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    let results = server.join().unwrap();
    assert!(matches!(results[0], Err(Error::Rejected(403))));
    assert!(matches!(
        results[1],
        Err(Error::WebSocket(wsmachine::Error::Handshake(_)))
    ));
}

#[test]
fn large_messages_echo_intact_through_vectored_writes() {
    let (listener, url, addr) = listener();
    let server = echo_once(listener);
    let stream = TcpStream::connect(&addr).unwrap();
    timeouts(&stream);
    // Without permessage-deflate the echo server's large replies go out with
    // write_vectored straight from its buffer (Connection::send_vectored).
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    let request = ClientRequest::new(&url).unwrap();
    let mut ws = WebSocket::connect(stream, &request, config).unwrap();
    assert_eq!(ws.connection().negotiated().extensions, None);
    for len in [65_536usize, 1 << 20, 3 << 20] {
        let data: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8).collect();
        ws.send_binary(&data).unwrap();
        assert_eq!(ws.recv().unwrap(), OwnedEvent::Binary(data));
    }
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(ws.recv().unwrap(), OwnedEvent::Closed(_)));
    assert_eq!(server.join().unwrap().unwrap().code(), CloseCode::NORMAL);
}
