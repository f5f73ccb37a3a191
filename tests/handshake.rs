//! The opening handshake (RFC 6455 §4) for both roles, in memory.
use wsmachine::handshake::{Accept, ClientRequest, HandshakeError, Reject, UriError};
use wsmachine::{Config, Connection, Error, Event, OwnedEvent, SeededEntropy, UsageError};

fn events(conn: &mut Connection) -> Vec<OwnedEvent> {
    let mut out = Vec::new();
    while let Some(e) = conn.poll_event() {
        out.push(e.into_owned());
        assert!(out.len() < 10_000, "poll_event did not run dry");
    }
    out
}

fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    conn.drain_transmit(&mut out);
    out
}

fn client(uri: &str, f: impl FnOnce(ClientRequest) -> ClientRequest) -> Connection {
    let request = f(ClientRequest::new(uri).unwrap());
    Connection::client(&request, Config::default(), SeededEntropy::new(7)).unwrap()
}

fn request_bytes(lines: &[&str]) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n\r\n");
    s.into_bytes()
}

const GOOD: &[&str] = &[
    "GET /chat?room=1 HTTP/1.1",
    "Host: example.com",
    "Upgrade: websocket",
    "Connection: keep-alive, Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    "Origin: http://example.com",
    "Sec-WebSocket-Protocol: chat, superchat",
];

/// Feeds a request to a fresh server; returns its events and what it sent.
fn serve(bytes: &[u8]) -> (Connection, Vec<OwnedEvent>, Vec<u8>) {
    let mut server = Connection::server(Config::default());
    server.handle_read(bytes);
    let ev = events(&mut server);
    let out = transmit(&mut server);
    (server, ev, out)
}

/// A predicate on the error a case must produce.
type Expect = fn(&HandshakeError) -> bool;

fn handshake_error(events: &[OwnedEvent]) -> &HandshakeError {
    match events.last() {
        Some(OwnedEvent::Closed(info)) => match info.error() {
            Some(Error::Handshake(e)) => e,
            other => panic!("expected a handshake error, got {other:?}"),
        },
        other => panic!("expected Closed last, got {other:?}"),
    }
}

#[test]
fn client_and_server_complete_the_handshake_and_exchange_messages() {
    let mut c = client("ws://example.com:9001/chat?room=1", |r| {
        r.origin("http://example.com")
            .protocol("chat")
            .protocol("superchat")
    });
    let mut s = Connection::server(Config::default());
    let request = transmit(&mut c);
    let text = String::from_utf8(request.clone()).unwrap();
    assert!(
        text.starts_with("GET /chat?room=1 HTTP/1.1\r\nHost: example.com:9001\r\n"),
        "{text}"
    );
    assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
    assert!(text.contains("Sec-WebSocket-Protocol: chat, superchat\r\n"));
    assert!(text.contains("Origin: http://example.com\r\n"));

    s.handle_read(&request);
    match s.poll_event() {
        Some(Event::Request(req)) => {
            assert_eq!(req.path(), "/chat?room=1");
            assert_eq!(req.host(), "example.com:9001");
            assert_eq!(req.origin(), Some("http://example.com"));
            assert_eq!(req.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.send_text("too early"),
        Err(Error::Usage(UsageError::HandshakeInProgress))
    ));
    s.accept(
        Accept::new()
            .protocol("superchat")
            .header("X-Server", "wsmachine"),
    )
    .unwrap();
    match s.poll_event() {
        Some(Event::Open(n)) => assert_eq!(n.protocol.as_deref(), Some("superchat")),
        other => panic!("{other:?}"),
    }
    // The server may send at once; the frame travels in the same read as the 101.
    s.send_text("welcome").unwrap();
    let response = transmit(&mut s);
    let head = String::from_utf8_lossy(&response);
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(head.contains("X-Server: wsmachine\r\n"));

    c.handle_read(&response);
    let got = events(&mut c);
    assert_eq!(got.len(), 2, "{got:?}");
    match &got[0] {
        OwnedEvent::Open(n) => assert_eq!(n.protocol.as_deref(), Some("superchat")),
        other => panic!("{other:?}"),
    }
    assert_eq!(got[1], OwnedEvent::Text("welcome".into()));
    assert_eq!(c.negotiated().protocol.as_deref(), Some("superchat"));

    c.send_binary(b"\x00\x01").unwrap();
    s.handle_read(&transmit(&mut c));
    assert_eq!(events(&mut s), vec![OwnedEvent::Binary(vec![0, 1])]);
}

#[test]
fn a_request_arriving_one_byte_at_a_time_with_a_frame_behind_it() {
    let mut c = client("ws://h/", |r| r);
    let mut wire = transmit(&mut c);
    // The client is open only after the response; build its frame with an open twin.
    let mut twin = Connection::open_client(Config::default(), SeededEntropy::new(1));
    twin.send_text("pipelined").unwrap();
    wire.extend(transmit(&mut twin));
    let mut s = Connection::server(Config::default());
    let mut seen = Vec::new();
    for b in &wire {
        s.handle_read(std::slice::from_ref(b));
        for e in events(&mut s) {
            if matches!(e, OwnedEvent::Request(_)) {
                s.accept(Accept::new()).unwrap();
            }
            seen.push(e);
        }
    }
    seen.extend(events(&mut s));
    assert!(matches!(seen[0], OwnedEvent::Request(_)), "{seen:?}");
    assert!(matches!(seen[1], OwnedEvent::Open(_)), "{seen:?}");
    assert_eq!(seen[2], OwnedEvent::Text("pipelined".into()));
}

#[test]
fn server_answers_bad_requests_with_the_right_status() {
    let cases: &[(&[&str], u16, Expect)] = &[
        (&["POST /chat HTTP/1.1"], 405, |e| {
            matches!(e, HandshakeError::MethodNotGet)
        }),
        (&["GET /chat HTTP/1.0"], 400, |e| {
            matches!(e, HandshakeError::HttpVersion)
        }),
    ];
    for (first, status, check) in cases {
        let mut lines = GOOD.to_vec();
        lines[0] = first[0];
        let (_, ev, out) = serve(&request_bytes(&lines));
        assert!(check(handshake_error(&ev)), "{:?}", ev);
        assert!(
            out.starts_with(format!("HTTP/1.1 {status} ").as_bytes()),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    // Each required header, missing or wrong.
    let broken: &[(usize, Option<&str>, u16)] = &[
        (1, None, 400),                                      // no Host
        (2, None, 400),                                      // no Upgrade
        (2, Some("Upgrade: h2c"), 400),                      // Upgrade without websocket
        (3, Some("Connection: keep-alive"), 400),            // Connection without Upgrade
        (4, None, 400),                                      // no key
        (4, Some("Sec-WebSocket-Key: c2hvcnQ="), 400),       // decodes to 5 bytes
        (4, Some("Sec-WebSocket-Key: !!not base64!!"), 400), // not base64
        (5, None, 426),                                      // no version
        (5, Some("Sec-WebSocket-Version: 8"), 426),          // old version
    ];
    for (index, replacement, status) in broken {
        let mut lines = GOOD.to_vec();
        match replacement {
            Some(r) => lines[*index] = r,
            None => {
                lines.remove(*index);
            }
        }
        let (server, ev, out) = serve(&request_bytes(&lines));
        let error = handshake_error(&ev);
        assert_eq!(error.http_status(), Some(*status), "{lines:?}: {error}");
        let head = String::from_utf8_lossy(&out);
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        if *status == 426 {
            assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
        }
        assert!(server.is_closed());
    }
}

#[test]
fn header_case_and_token_lists_are_accepted() {
    let lines = [
        "GET / HTTP/1.1",
        "host: a",
        "upgrade: WebSocket",
        "connection: keep-alive,UPGRADE",
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version: 13",
    ];
    let (_, ev, _) = serve(&request_bytes(&lines));
    assert!(matches!(ev[..], [OwnedEvent::Request(_)]), "{ev:?}");
}

#[test]
fn oversize_and_garbage_requests() {
    // A header block over the limit, complete or not, is refused with 431.
    let mut config = Config::default();
    config.max_handshake_size = 1024;
    let mut lines = GOOD.to_vec();
    let cookie = format!("Cookie: {}", "x".repeat(2000));
    lines.push(&cookie);
    let mut server = Connection::server(config.clone());
    server.handle_read(&request_bytes(&lines));
    let ev = events(&mut server);
    assert!(matches!(
        handshake_error(&ev),
        HandshakeError::HeadersTooLarge(1024)
    ));
    assert!(transmit(&mut server).starts_with(b"HTTP/1.1 431 "));

    let mut server = Connection::server(config.clone());
    server.handle_read(&vec![b'a'; 1025]); // no end of headers in sight
    let ev = events(&mut server);
    assert!(matches!(
        handshake_error(&ev),
        HandshakeError::HeadersTooLarge(_)
    ));

    // Too many header fields: 431.
    config.max_headers = 8;
    let extra: Vec<String> = (0..10).map(|i| format!("X-{i}: y")).collect();
    let mut lines = GOOD.to_vec();
    lines.extend(extra.iter().map(String::as_str));
    let mut server = Connection::server(config);
    server.handle_read(&request_bytes(&lines));
    let ev = events(&mut server);
    assert!(matches!(
        handshake_error(&ev),
        HandshakeError::TooManyHeaders(8)
    ));
    assert!(transmit(&mut server).starts_with(b"HTTP/1.1 431 "));

    // Garbage: 400.
    let (_, ev, out) = serve(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    assert_eq!(handshake_error(&ev).http_status(), Some(400));
    assert!(out.starts_with(b"HTTP/1.1 400 "));
}

#[test]
fn the_application_rejects_or_picks_a_protocol() {
    let (mut server, ev, _) = serve(&request_bytes(GOOD));
    assert!(matches!(ev[..], [OwnedEvent::Request(_)]));
    assert!(matches!(
        server.accept(Accept::new().protocol("unoffered")),
        Err(Error::Usage(UsageError::ProtocolNotOffered))
    ));
    assert!(matches!(
        server.reject(&Reject::new(101)),
        Err(Error::Usage(UsageError::InvalidStatus(101)))
    ));
    assert!(matches!(
        server.reject(&Reject::new(403).header("X-Bad\r\nInjected", "v")),
        Err(Error::Usage(UsageError::InvalidHeader))
    ));
    server
        .reject(
            &Reject::new(403)
                .header("X-Reason", "origin")
                .body(b"forbidden origin"),
        )
        .unwrap();
    let out = String::from_utf8(transmit(&mut server)).unwrap();
    assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
    assert!(out.contains("X-Reason: origin\r\n") && out.contains("Content-Length: 16\r\n"));
    assert!(out.ends_with("\r\n\r\nforbidden origin"));
    let ev = events(&mut server);
    assert!(matches!(&ev[..], [OwnedEvent::Closed(_)]), "{ev:?}");
    assert!(matches!(
        server.accept(Accept::new()),
        Err(Error::Usage(UsageError::NoPendingRequest))
    ));
}

/// Runs a client against a canned response; returns its events.
fn client_sees(response: &str) -> Vec<OwnedEvent> {
    let mut c = client("ws://h/", |r| r.protocol("chat").extension("x-known"));
    let request = String::from_utf8(transmit(&mut c)).unwrap();
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let accept = wsmachine::handshake::accept_key(key.as_bytes());
    c.handle_read(response.replace("{accept}", &accept).as_bytes());
    let ev = events(&mut c);
    if c.is_closed() {
        // A client fails the connection without answering in HTTP (RFC 6455 §4.1).
        assert_eq!(c.poll_transmit(), None, "a failed client sends nothing");
    }
    ev
}

#[test]
fn client_validates_the_response() {
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n";
    let ev = client_sees(&format!("{ok}\r\n"));
    assert!(
        matches!(&ev[..], [OwnedEvent::Open(n)] if n.protocol.is_none()),
        "{ev:?}"
    );
    let ev = client_sees(&format!(
        "{ok}Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: x-known; a=1\r\n\r\n"
    ));
    assert!(
        matches!(&ev[..], [OwnedEvent::Open(n)] if n.protocol.as_deref() == Some("chat") && n.extensions.as_deref() == Some("x-known; a=1")),
        "{ev:?}"
    );
    let bad: &[(String, Expect)] = &[
        (ok.replace("{accept}", "d3Jvbmc=") + "\r\n", |e| {
            matches!(e, HandshakeError::AcceptMismatch)
        }),
        (ok.replace("Upgrade: websocket\r\n", "") + "\r\n", |e| {
            matches!(e, HandshakeError::MissingUpgrade)
        }),
        (
            ok.replace("Connection: Upgrade", "Connection: close") + "\r\n",
            |e| matches!(e, HandshakeError::MissingConnectionUpgrade),
        ),
        (format!("{ok}Sec-WebSocket-Protocol: other\r\n\r\n"), |e| {
            matches!(e, HandshakeError::UnexpectedProtocol)
        }),
        (
            format!("{ok}Sec-WebSocket-Protocol: chat, chat\r\n\r\n"),
            |e| matches!(e, HandshakeError::UnexpectedProtocol),
        ),
        (
            format!("{ok}Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n\r\n"),
            |e| matches!(e, HandshakeError::UnexpectedExtension),
        ),
        ("HTTP/1.1 101 OK\r\nbroken header\r\n\r\n".into(), |e| {
            matches!(e, HandshakeError::Malformed(_))
        }),
    ];
    for (response, check) in bad {
        let ev = client_sees(response);
        let error = handshake_error(&ev);
        assert!(check(error), "{response:?} gave {error:?}");
    }
}

#[test]
fn a_redirect_is_reported_with_its_location_and_body() {
    let ev = client_sees(
        "HTTP/1.1 302 Found\r\nLocation: wss://other.example/chat\r\nContent-Length: 5\r\n\r\nmoved",
    );
    match handshake_error(&ev) {
        HandshakeError::Rejected(response) => {
            assert_eq!(response.status, 302);
            assert_eq!(response.location(), Some("wss://other.example/chat"));
            assert_eq!(response.body, b"moved");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn end_of_stream_during_the_handshake() {
    let mut c = client("ws://h/", |r| r);
    c.handle_read(b"HTTP/1.1 101 Switching");
    c.handle_eof();
    let ev = events(&mut c);
    assert!(matches!(handshake_error(&ev), HandshakeError::Eof));
}

#[test]
fn uris() {
    let r = ClientRequest::new("ws://example.com").unwrap();
    assert_eq!(
        (r.host(), r.port(), r.resource(), r.is_secure()),
        ("example.com", 80, "/", false)
    );
    let r = ClientRequest::new("WSS://example.com?x=1").unwrap();
    assert_eq!(
        (r.port(), r.resource(), r.is_secure()),
        (443, "/?x=1", true)
    );
    let r = ClientRequest::new("ws://[2001:db8::1]/a/b").unwrap();
    assert_eq!(
        (r.host(), r.port(), r.resource()),
        ("[2001:db8::1]", 80, "/a/b")
    );
    let r = ClientRequest::new("ws://127.0.0.1:65535/").unwrap();
    assert_eq!(r.port(), 65535);
    for (uri, err) in [
        ("http://example.com/", UriError::Scheme),
        ("example.com", UriError::Scheme),
        ("ws:///path", UriError::Host),
        ("ws://ex ample.com/", UriError::Characters),
        ("ws://example.com/#frag", UriError::Fragment),
        ("ws://user@example.com/", UriError::UserInfo),
        ("ws://example.com:99999/", UriError::Port),
        ("ws://example.com:/", UriError::Port),
        ("ws://[::1/", UriError::Host),
        ("ws://[::1]x/", UriError::Host),
        ("ws://::1/", UriError::Host),
    ] {
        assert_eq!(ClientRequest::new(uri), Err(err), "{uri}");
    }
    // The Host header carries a non-default port only.
    let mut c = client("wss://example.com:443/", |r| r);
    assert!(
        String::from_utf8(transmit(&mut c))
            .unwrap()
            .contains("Host: example.com\r\n")
    );
    // Header injection through a field value is refused.
    let bad = ClientRequest::new("ws://h/")
        .unwrap()
        .header("Cookie", "a\r\nEvil: 1");
    assert!(matches!(
        Connection::client(&bad, Config::default(), SeededEntropy::new(1)),
        Err(Error::Usage(UsageError::InvalidRequest(
            UriError::Characters
        )))
    ));
}

#[test]
fn rfc_6455_accept_example() {
    assert_eq!(
        wsmachine::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn the_header_block_ends_where_httparse_ends_it() {
    // Bare LF line endings (RFC 9112 §2.2): the block ends at the first empty line,
    // and the bytes after it are frames, not silently dropped.
    let lf: Vec<u8> = request_bytes(GOOD)
        .iter()
        .copied()
        .filter(|&b| b != b'\r')
        .collect();
    let (_, ev, _) = serve(&lf);
    assert!(
        matches!(&ev[..], [OwnedEvent::Request(r)] if r.path() == "/chat?room=1"),
        "{ev:?}"
    );

    let mut smuggle = GOOD.join("\r\n").into_bytes();
    smuggle.extend_from_slice(b"\r\n\nX-Smuggled: 1\r\n\r\n");
    let mut server = Connection::server(Config::default());
    server.handle_read(&smuggle);
    match server.poll_event() {
        Some(Event::Request(r)) => assert!(r.headers().get("x-smuggled").is_none()),
        other => panic!("{other:?}"),
    }
    server.accept(Accept::new()).unwrap();
    let ev = events(&mut server);
    assert!(matches!(ev[0], OwnedEvent::Open(_)));
    // "X-Smuggled..." is read as a frame, and fails as one (0x58: RSV1 set).
    match ev.last() {
        Some(OwnedEvent::Closed(info)) => {
            assert_eq!(info.code(), wsmachine::CloseCode::PROTOCOL_ERROR)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fields_that_may_appear_once_are_refused_twice() {
    for extra in [
        "Host: other.example",
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",
        "Sec-WebSocket-Version: 13",
    ] {
        let mut lines = GOOD.to_vec();
        lines.push(extra);
        let (_, ev, out) = serve(&request_bytes(&lines));
        assert!(
            matches!(handshake_error(&ev), HandshakeError::DuplicateHeader(_)),
            "{extra}"
        );
        assert!(out.starts_with(b"HTTP/1.1 400 "), "{extra}");
    }
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n";
    let ev = client_sees(&format!("{ok}Sec-WebSocket-Accept: {{accept}}\r\n\r\n"));
    assert!(matches!(
        handshake_error(&ev),
        HandshakeError::DuplicateHeader("sec-websocket-accept")
    ));
}

#[test]
fn the_extensions_in_use_are_every_element_of_every_field() {
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n";
    let ev = client_sees(&format!(
        "{ok}Sec-WebSocket-Extensions: \r\nSec-WebSocket-Extensions: x-known; a=1, x-known\r\n\r\n"
    ));
    assert!(
        matches!(&ev[..], [OwnedEvent::Open(n)] if n.extensions.as_deref() == Some("x-known; a=1, x-known")),
        "{ev:?}"
    );
    let mut c = client("ws://h/", |r| r.extension("x-known"));
    let request = String::from_utf8(transmit(&mut c)).unwrap();
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let mut response = ok
        .replace(
            "{accept}",
            &wsmachine::handshake::accept_key(key.as_bytes()),
        )
        .into_bytes();
    response.extend_from_slice(b"Sec-WebSocket-Extensions: x-known; x=\xff\r\n\r\n");
    c.handle_read(&response);
    let ev = events(&mut c);
    assert!(
        matches!(handshake_error(&ev), HandshakeError::UnexpectedExtension),
        "not reported as none in force"
    );
}

#[test]
fn only_http_whitespace_is_trimmed_from_the_key() {
    let mut lines = GOOD.to_vec();
    lines[4] = "Sec-WebSocket-Key: \u{a0}dGhlIHNhbXBsZSBub25jZQ==\u{a0}";
    let (_, ev, _) = serve(&request_bytes(&lines));
    assert!(matches!(handshake_error(&ev), HandshakeError::InvalidKey));
    lines[4] = "Sec-WebSocket-Key: \tdGhlIHNhbXBsZSBub25jZQ== ";
    let (_, ev, _) = serve(&request_bytes(&lines));
    assert!(matches!(&ev[..], [OwnedEvent::Request(_)]), "{ev:?}");
}

#[test]
fn empty_lines_before_the_request_line() {
    // One is ignored, as RFC 9112 §2.2 says a server SHOULD.
    let mut one = b"\r\n".to_vec();
    one.extend(request_bytes(GOOD));
    let (_, ev, _) = serve(&one);
    assert!(
        matches!(&ev[..], [OwnedEvent::Request(r)] if r.path() == "/chat?room=1"),
        "{ev:?}"
    );
    // Two make an empty header block, where httparse would read on: the two ends
    // disagree, so the request is malformed (400), never misread.
    let mut two = b"\r\n\r\n".to_vec();
    two.extend(request_bytes(GOOD));
    let (server, ev, out) = serve(&two);
    assert!(
        matches!(handshake_error(&ev), HandshakeError::Malformed(_)),
        "{ev:?}"
    );
    assert!(out.starts_with(b"HTTP/1.1 400 "));
    assert!(server.is_closed());
}

/// RFC 6454 §7: one Origin, in ASCII. Two, or one in another encoding, would
/// read as absent or ambiguous to an allow-list check: refused with 400.
#[test]
fn an_origin_is_one_ascii_value_or_the_request_is_refused() {
    let request = |origin: &[u8]| {
        let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            .to_vec();
        raw.extend_from_slice(origin);
        raw.extend_from_slice(b"\r\n");
        wsmachine::handshake::parse_request(&raw, 16 * 1024, 64)
    };
    let Ok(wsmachine::frame::Status::Complete((ok, _))) = request(b"Origin: http://a.example\r\n")
    else {
        panic!("one ASCII origin is valid");
    };
    assert_eq!(ok.origin(), Some("http://a.example"));
    let Ok(wsmachine::frame::Status::Complete((none, _))) = request(b"") else {
        panic!("no origin is valid");
    };
    assert_eq!(none.origin(), None);
    let twice = request(b"Origin: http://a.example\r\nOrigin: http://b.example\r\n").unwrap_err();
    assert_eq!(
        (twice.clone(), twice.http_status()),
        (
            wsmachine::handshake::HandshakeError::DuplicateHeader("origin"),
            Some(400)
        )
    );
    let latin1 = request(b"Origin: http://\xe9.example\r\n").unwrap_err();
    assert!(matches!(
        latin1,
        wsmachine::handshake::HandshakeError::Malformed(_)
    ));
    assert_eq!(latin1.http_status(), Some(400));
}
