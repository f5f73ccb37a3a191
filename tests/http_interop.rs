//! The opening handshake on the `http` crate's types agrees with the wire
//! parser and writer: same requests, same errors and statuses, same headers.
#![cfg(feature = "http")]

mod common;

use common::{drain_events, feed, take_transmit};
use http::{StatusCode, Version};
use wsmachine::frame::Status;
use wsmachine::handshake::{
    Accept, ClientRequest, HandshakeError, Negotiated, Reject, Request, accept_response,
    accept_response_http, parse_request, parse_response, reject_response, validate_http_response,
};
use wsmachine::{Config, Connection, OwnedEvent, SeededEntropy, UsageError};

const GOOD: &[(&str, &str)] = &[
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "keep-alive, Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
    ("Origin", "http://example.com"),
    ("Sec-WebSocket-Protocol", "chat, superchat"),
    (
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_max_window_bits",
    ),
];

/// One request, written out for the wire and built with the http crate.
struct Case {
    method: &'static str,
    version: Version,
    target: &'static str,
    fields: Vec<(&'static str, &'static str)>,
}

impl Case {
    fn good() -> Self {
        Self {
            method: "GET",
            version: Version::HTTP_11,
            target: "/chat?room=1",
            fields: GOOD.to_vec(),
        }
    }

    fn without(mut self, name: &str) -> Self {
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn with(self, name: &'static str, value: &'static str) -> Self {
        let mut case = self.without(name);
        case.fields.push((name, value));
        case
    }

    fn wire(&self) -> Vec<u8> {
        let mut s = format!("{} {} {:?}\r\n", self.method, self.target, self.version);
        for (name, value) in &self.fields {
            s.push_str(&format!("{name}: {value}\r\n"));
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    fn http(&self) -> http::Request<()> {
        let mut builder = http::Request::builder()
            .method(self.method)
            .version(self.version)
            .uri(self.target);
        for (name, value) in &self.fields {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn parse_wire(&self) -> Result<Request, HandshakeError> {
        let wire = self.wire();
        match parse_request(&wire, 8192, 64)? {
            Status::Complete((request, len)) => {
                assert_eq!(len, wire.len());
                Ok(request)
            }
            Status::Partial { .. } => panic!("a whole request parsed as partial"),
        }
    }
}

/// The parts of a request the application looks at.
fn summary(
    r: &Request,
) -> (
    String,
    String,
    Option<String>,
    Vec<String>,
    Vec<String>,
    String,
) {
    (
        r.path().to_owned(),
        r.host().to_owned(),
        r.origin().map(str::to_owned),
        r.protocols().map(str::to_owned).collect(),
        r.extensions().map(str::to_owned).collect(),
        r.key().to_owned(),
    )
}

/// The status line and the header fields of an HTTP/1.1 response on the wire,
/// names in lower case, in order; and the body.
fn split_wire_response(wire: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let text = String::from_utf8(wire.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let fields = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    (status, fields, body.as_bytes().to_vec())
}

/// The header fields of an http message, in order, names in lower case.
fn fields_of(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn a_request_from_http_validates_to_the_same_request_as_its_bytes() {
    let cases = [
        Case::good(),
        // Tokens in any case, a key with surrounding whitespace, no Origin.
        Case::good()
            .with("Upgrade", "WebSocket")
            .with("Connection", "upgrade")
            .with("Sec-WebSocket-Key", " dGhlIHNhbXBsZSBub25jZQ== ")
            .without("Origin"),
        Case {
            target: "/",
            ..Case::good().without("Sec-WebSocket-Protocol")
        },
    ];
    for case in cases {
        let from_wire = case.parse_wire().unwrap();
        let from_http = Request::from_http(&case.http()).unwrap();
        assert_eq!(summary(&from_http), summary(&from_wire));
        assert_eq!(from_http.headers().len(), case.fields.len());
    }
    let r = Request::from_http(&Case::good().http()).unwrap();
    assert_eq!(
        summary(&r),
        (
            "/chat?room=1".to_owned(),
            "example.com".to_owned(),
            Some("http://example.com".to_owned()),
            vec!["chat".to_owned(), "superchat".to_owned()],
            vec!["permessage-deflate; client_max_window_bits".to_owned()],
            "dGhlIHNhbXBsZSBub25jZQ==".to_owned(),
        )
    );
}

#[test]
fn repeated_fields_from_http_count_like_repeated_lines() {
    // `Connection: keep-alive` and `Connection: Upgrade` as two fields.
    let mut case = Case::good().without("Connection");
    case.fields.push(("Connection", "keep-alive"));
    case.fields.push(("Connection", "Upgrade"));
    let from_http = Request::from_http(&case.http()).unwrap();
    assert_eq!(summary(&from_http), summary(&case.parse_wire().unwrap()));
    assert_eq!(from_http.headers().get_all("connection").count(), 2);
    // One of them without the token fails both.
    let case = Case::good().with("Connection", "keep-alive");
    assert_eq!(
        Request::from_http(&case.http()),
        Err(HandshakeError::MissingConnectionUpgrade)
    );
}

#[test]
fn each_invalid_request_fails_the_same_way_through_both_paths() {
    let cases: Vec<(Case, HandshakeError, u16)> = vec![
        (
            Case {
                method: "POST",
                ..Case::good()
            },
            HandshakeError::MethodNotGet,
            405,
        ),
        (
            Case {
                version: Version::HTTP_10,
                ..Case::good()
            },
            HandshakeError::HttpVersion,
            400,
        ),
        (
            Case {
                method: "POST",
                version: Version::HTTP_10,
                ..Case::good()
            },
            HandshakeError::MethodNotGet,
            405,
        ),
        (
            Case::good().without("Host"),
            HandshakeError::MissingHost,
            400,
        ),
        (
            Case::good().with("Host", ""),
            HandshakeError::MissingHost,
            400,
        ),
        (
            Case::good().without("Upgrade"),
            HandshakeError::MissingUpgrade,
            400,
        ),
        (
            Case::good().with("Upgrade", "h2c"),
            HandshakeError::MissingUpgrade,
            400,
        ),
        (
            Case::good().with("Connection", "keep-alive"),
            HandshakeError::MissingConnectionUpgrade,
            400,
        ),
        (
            Case::good().without("Connection"),
            HandshakeError::MissingConnectionUpgrade,
            400,
        ),
        (
            Case::good().with("Sec-WebSocket-Version", "8"),
            HandshakeError::UnsupportedVersion,
            426,
        ),
        (
            Case::good().without("Sec-WebSocket-Version"),
            HandshakeError::UnsupportedVersion,
            426,
        ),
        (
            Case::good().with("Sec-WebSocket-Key", "c2hvcnQ="),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            Case::good().with("Sec-WebSocket-Key", "not base64!"),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            Case::good().without("Sec-WebSocket-Key"),
            HandshakeError::InvalidKey,
            400,
        ),
    ];
    for (case, error, status) in cases {
        let wire = case.parse_wire().unwrap_err();
        let http = Request::from_http(&case.http()).unwrap_err();
        let what = String::from_utf8(case.wire()).unwrap();
        assert_eq!(wire, error, "{what}");
        assert_eq!(http, error, "{what}");
        assert_eq!(http.http_status(), Some(status), "{what}");
        assert_eq!(wire.http_status(), http.http_status(), "{what}");
    }
}

#[test]
fn an_http2_request_is_not_an_http11_upgrade() {
    for method in ["GET", "CONNECT"] {
        let mut req = Case::good().http();
        *req.method_mut() = method.parse().unwrap();
        *req.version_mut() = Version::HTTP_2;
        let error = Request::from_http(&req).unwrap_err();
        assert_eq!(error, HandshakeError::HttpVersion, "{method}");
        assert_eq!(error.http_status(), Some(400));
    }
}

#[test]
fn accept_response_http_carries_the_headers_of_accept_response() {
    let request = Request::from_http(&Case::good().http()).unwrap();
    for accept in [
        Accept::new(),
        Accept::new().protocol("superchat"),
        Accept::new()
            .protocol("chat")
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2")
            .header("X-Server", "wsmachine/é"),
    ] {
        let mut wire = Vec::new();
        accept_response(&request, &accept, None, &mut wire).unwrap();
        let (status, wire_fields, body) = split_wire_response(&wire);
        assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
        assert!(body.is_empty());

        let response = accept_response_http(&request, &accept).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.version(), Version::HTTP_11);
        let http_fields: Vec<_> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8(v.as_bytes().to_vec()).unwrap();
                (n.as_str().to_owned(), value)
            })
            .collect();
        assert_eq!(http_fields, wire_fields, "{accept:?}");
        assert_eq!(
            response.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
    // The same refusals.
    for (accept, error) in [
        (
            Accept::new().protocol("unoffered"),
            UsageError::ProtocolNotOffered,
        ),
        (
            Accept::new().header("X-Bad\r\nInjected", "v"),
            UsageError::InvalidHeader,
        ),
        (
            Accept::new().header("X-Bad", "a\r\nInjected: 1"),
            UsageError::InvalidHeader,
        ),
        (
            Accept::new().header("X-Bad", "bell\x07"),
            UsageError::InvalidHeader,
        ),
        (
            Accept::new().header("X(Bad)", "v"),
            UsageError::InvalidHeader,
        ),
    ] {
        let mut wire = Vec::new();
        assert_eq!(
            accept_response(&request, &accept, None, &mut wire),
            Err(error.clone())
        );
        assert!(wire.is_empty());
        assert_eq!(accept_response_http(&request, &accept).unwrap_err(), error);
    }
}

#[test]
fn reject_into_http_carries_the_headers_of_encode_but_the_framing() {
    for reject in [
        Reject::new(426).body(b"version 13 only"),
        Reject::new(403)
            .header("X-Reason", "origin")
            .header("Set-Cookie", "a=1")
            .body(b"forbidden origin"),
        Reject::new(302).header("Location", "ws://example.org/"),
    ] {
        let mut wire = Vec::new();
        reject.encode(&mut wire).unwrap();
        let (status, mut wire_fields, wire_body) = split_wire_response(&wire);
        assert!(status.starts_with(&format!("HTTP/1.1 {} ", reject.status())));
        // Content-Length and Connection frame the message: the HTTP stack's job.
        wire_fields.retain(|(n, _)| n != "content-length" && n != "connection");

        let response = reject.clone().into_http().unwrap();
        assert_eq!(response.status().as_u16(), reject.status());
        assert_eq!(fields_of(response.headers()), wire_fields);
        assert_eq!(*response.body(), wire_body);
    }
    let response = Reject::new(426).into_http().unwrap();
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    // What encode refuses, into_http refuses with the same error.
    for reject in [
        Reject::new(101),
        Reject::new(1000),
        Reject::new(403).header("X-Bad", "a\r\nInjected: 1"),
    ] {
        let wire_error = reject.encode(&mut Vec::new()).unwrap_err();
        assert_eq!(reject.body(b"secret").into_http().unwrap_err(), wire_error);
    }
    // The free function writes the same fields as the builder.
    let mut a = Vec::new();
    let mut b = Vec::new();
    reject_response(426, &[("X-A", "1")], b"no", &mut a).unwrap();
    Reject::new(426)
        .header("X-A", "1")
        .body(b"no")
        .encode(&mut b)
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn to_http_carries_the_headers_of_encode() {
    let nonce = *b"0123456789abcdef";
    for uri in [
        "ws://example.com/",
        "ws://example.com:9001/chat?room=1",
        "wss://[::1]:8443/a/b",
        "wss://example.com:443/x",
    ] {
        let client = ClientRequest::new(uri)
            .unwrap()
            .origin("https://example.com")
            .protocol("chat")
            .protocol("superchat")
            .extension("permessage-deflate; client_max_window_bits")
            .header("Authorization", "Bearer t0ken")
            .header("Cookie", "a=1");
        let mut wire = Vec::new();
        let wire_expected = client.encode(nonce, &mut wire);
        let (request, expected) = client.to_http(nonce).unwrap();
        assert_eq!(expected, wire_expected);

        let text = String::from_utf8(wire).unwrap();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap();
        assert!(rest.is_empty());
        let mut lines = head.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            format!("GET {} HTTP/1.1", client.resource())
        );
        let wire_fields: Vec<_> = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_ascii_lowercase(), v.to_owned())
            })
            .collect();
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.uri(), client.resource());
        assert_eq!(fields_of(request.headers()), wire_fields, "{uri}");
    }
}

#[test]
fn to_http_percent_encodes_what_the_http_crate_refuses_in_a_uri() {
    let client = ClientRequest::new("ws://h/a<b>?q=\"x\"&é").unwrap();
    let (request, _) = client.to_http([0; 16]).unwrap();
    assert_eq!(request.uri(), "/a%3Cb%3E?q=%22x%22&é");
    // What the http crate takes goes as it is.
    let client = ClientRequest::new("ws://h/%7Bx%7D?a=b&c").unwrap();
    assert_eq!(client.to_http([0; 16]).unwrap().0.uri(), "/%7Bx%7D?a=b&c");
}

#[test]
fn to_http_and_validate_http_response_round_trip_with_accept_response_http() {
    let client = ClientRequest::new("ws://example.com:9001/chat")
        .unwrap()
        .origin("http://example.com")
        .protocol("chat")
        .protocol("superchat");
    let nonce = [0x5a; 16];
    let (request, expected) = client.to_http(nonce).unwrap();

    // The server reads the http request as it reads the bytes.
    let accepted = Request::from_http(&request).unwrap();
    let mut wire_request = Vec::new();
    client.encode(nonce, &mut wire_request);
    let Status::Complete((from_wire, _)) = parse_request(&wire_request, 8192, 64).unwrap() else {
        panic!("partial");
    };
    assert_eq!(summary(&accepted), summary(&from_wire));
    assert_eq!(accepted.path(), "/chat");
    assert_eq!(accepted.host(), "example.com:9001");

    let accept = Accept::new().protocol("superchat");
    let response = accept_response_http(&accepted, &accept).unwrap();
    let negotiated = validate_http_response(&response, &expected).unwrap();
    assert_eq!(
        negotiated,
        Negotiated {
            protocol: Some("superchat".to_owned()),
            extensions: None,
        }
    );
    // The same answer as the bytes of accept_response.
    let mut wire_response = Vec::new();
    accept_response(&accepted, &accept, None, &mut wire_response).unwrap();
    let Status::Complete((from_wire, len)) =
        parse_response(&wire_response, &expected, 8192, 64).unwrap()
    else {
        panic!("partial");
    };
    assert_eq!((from_wire, len), (negotiated, wire_response.len()));

    // A response to another key is refused.
    let (_, other) = client.to_http([0x5b; 16]).unwrap();
    assert_eq!(
        validate_http_response(&response, &other),
        Err(HandshakeError::AcceptMismatch)
    );
}

#[test]
fn each_invalid_response_fails_the_same_way_through_both_paths() {
    let client = ClientRequest::new("ws://example.com/")
        .unwrap()
        .protocol("chat")
        .extension("x-ext");
    let mut wire = Vec::new();
    let expected = client.encode([3; 16], &mut wire);
    let Status::Complete((request, _)) = parse_request(&wire, 8192, 64).unwrap() else {
        panic!("partial");
    };
    let good = fields_of(
        accept_response_http(&request, &Accept::new())
            .unwrap()
            .headers(),
    );
    let without = |name: &str| -> Vec<(String, String)> {
        good.iter().filter(|(n, _)| n != name).cloned().collect()
    };
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        let mut f = without(name);
        f.push((name.to_owned(), value.to_owned()));
        f
    };
    let cases = [
        (without("upgrade"), HandshakeError::MissingUpgrade),
        (with("upgrade", "h2c"), HandshakeError::MissingUpgrade),
        (
            with("connection", "keep-alive"),
            HandshakeError::MissingConnectionUpgrade,
        ),
        (
            without("sec-websocket-accept"),
            HandshakeError::AcceptMismatch,
        ),
        (
            with("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            HandshakeError::AcceptMismatch,
        ),
        (
            with("sec-websocket-protocol", "superchat"),
            HandshakeError::UnexpectedProtocol,
        ),
        (
            with("sec-websocket-protocol", "chat, chat"),
            HandshakeError::UnexpectedProtocol,
        ),
        (
            with("sec-websocket-extensions", "permessage-deflate"),
            HandshakeError::UnexpectedExtension,
        ),
    ];
    for (fields, error) in cases {
        let mut bytes = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        let mut builder = http::Response::builder().status(101);
        for (name, value) in &fields {
            bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            builder = builder.header(name, value);
        }
        bytes.extend_from_slice(b"\r\n");
        let response = builder.body(()).unwrap();
        assert_eq!(
            parse_response(&bytes, &expected, 8192, 64),
            Err(error.clone()),
            "{fields:?}"
        );
        assert_eq!(
            validate_http_response(&response, &expected),
            Err(error),
            "{fields:?}"
        );
    }
    // Offered ones are fine, with the same answer.
    let fields = with("sec-websocket-extensions", "x-ext; a=1");
    let mut builder = http::Response::builder().status(101);
    for (name, value) in &fields {
        builder = builder.header(name, value);
    }
    let negotiated = validate_http_response(&builder.body(()).unwrap(), &expected).unwrap();
    assert_eq!(negotiated.extensions.as_deref(), Some("x-ext; a=1"));
}

#[test]
fn a_redirect_comes_back_as_rejected_with_its_location() {
    let (_, expected) = ClientRequest::new("ws://example.com/old")
        .unwrap()
        .to_http([9; 16])
        .unwrap();
    let response = http::Response::builder()
        .status(StatusCode::FOUND)
        .header("Location", "ws://example.com/new")
        .header("Set-Cookie", "a=1")
        .body("moved")
        .unwrap();
    let Err(HandshakeError::Rejected(rejected)) = validate_http_response(&response, &expected)
    else {
        panic!("a 302 must be rejected");
    };
    assert_eq!(rejected.status, 302);
    assert_eq!(rejected.reason, "Found");
    assert_eq!(rejected.location(), Some("ws://example.com/new"));
    assert_eq!(rejected.headers.get_str("set-cookie"), Some("a=1"));
    assert!(rejected.body.is_empty());
    assert_eq!(
        HandshakeError::Rejected(rejected.clone()).http_status(),
        None
    );
    // The same as the wire parser, but for the body, which the HTTP stack reads.
    let bytes = b"HTTP/1.1 302 Found\r\nLocation: ws://example.com/new\r\nSet-Cookie: a=1\r\n\r\n";
    let Err(HandshakeError::Rejected(from_wire)) = parse_response(bytes, &expected, 8192, 64)
    else {
        panic!("a 302 must be rejected");
    };
    assert_eq!(
        (
            from_wire.status,
            from_wire.reason.as_str(),
            from_wire.location()
        ),
        (302, "Found", Some("ws://example.com/new"))
    );
}

#[test]
fn open_server_negotiated_and_open_client_exchange_messages() {
    // The handshake, done on http types as another HTTP stack would.
    let client_request = ClientRequest::new("ws://example.com/chat")
        .unwrap()
        .protocol("chat");
    let (request, expected) = client_request.to_http([1; 16]).unwrap();
    let accepted = Request::from_http(&request).unwrap();
    let accept = Accept::new().protocol("chat");
    let response = accept_response_http(&accepted, &accept).unwrap();
    let at_client = validate_http_response(&response, &expected).unwrap();
    let at_server = Negotiated {
        protocol: accept.selected_protocol().map(String::from),
        extensions: None,
    };
    assert_eq!(at_client, at_server);

    // Then the upgraded stream carries frames.
    let mut server = Connection::open_server_negotiated(Config::default(), at_server.clone());
    let mut client = Connection::open_client(Config::default(), SeededEntropy::new(42));
    assert_eq!(server.negotiated(), &at_server);
    assert!(server.is_open());
    assert_eq!(server.role(), wsmachine::Role::Server);
    // As open_server: no Event::Open.
    assert_eq!(server.poll_event(), None);

    client.send_text("hello").unwrap();
    let bytes = take_transmit(&mut client);
    assert_eq!(
        feed(&mut server, &bytes, &[]),
        [OwnedEvent::Text("hello".to_owned())]
    );
    server.send_binary(b"\x00\x01world").unwrap();
    let bytes = take_transmit(&mut server);
    assert_eq!(
        feed(&mut client, &bytes, &[]),
        [OwnedEvent::Binary(b"\x00\x01world".to_vec())]
    );
    assert!(drain_events(&mut server).is_empty());
}

#[test]
fn to_http_refuses_what_the_wire_path_refuses() {
    let injected = ClientRequest::new("ws://h/")
        .unwrap()
        .header("Cookie", "a\r\nEvil: 1");
    let wire = wsmachine::Connection::client(
        &injected,
        wsmachine::Config::default(),
        wsmachine::SeededEntropy::new(1),
    );
    assert!(wire.is_err());
    assert!(injected.to_http([0; 16]).is_err());
    let huge = ClientRequest::new(&format!("ws://h/{}", "a".repeat(70_000))).unwrap();
    assert!(
        huge.to_http([0; 16]).is_err(),
        "a resource the http crate cannot hold is an error, not '/'"
    );
}
