//! RFC 8441: the extended CONNECT helpers, and a WebSocket over the stream
//! they open (in memory: `examples/h2.rs` runs it over the `h2` crate).
#![cfg(all(feature = "http", feature = "testing"))]

use wsmachine::handshake::{
    Accept, ClientRequest, HandshakeError, Request, WEBSOCKET_PROTOCOL, accept_extended_connect,
    validate_http_response,
};
use wsmachine::testing::Pair;
use wsmachine::{Config, Connection, OwnedEvent, SeededEntropy};

fn connect(uri: &str) -> http::request::Builder {
    http::Request::builder()
        .method("CONNECT")
        .version(http::Version::HTTP_2)
        .uri(uri)
        .header("sec-websocket-version", "13")
}

#[test]
fn the_client_request_has_the_rfc_8441_shape() {
    let client = ClientRequest::new("ws://example.com:8080/chat?room=1")
        .unwrap()
        .origin("http://example.com")
        .protocol("chat")
        .protocol("superchat")
        .header("Authorization", "Bearer x");
    let (request, _) = client.to_extended_connect(&Config::default()).unwrap();
    assert_eq!(request.method(), http::Method::CONNECT);
    assert_eq!(request.version(), http::Version::HTTP_2);
    assert_eq!(request.uri(), "http://example.com:8080/chat?room=1");
    let headers = request.headers();
    assert_eq!(headers["sec-websocket-version"], "13");
    assert_eq!(headers["sec-websocket-protocol"], "chat, superchat");
    assert_eq!(headers["origin"], "http://example.com");
    assert_eq!(headers["authorization"], "Bearer x");
    for absent in ["host", "upgrade", "connection", "sec-websocket-key"] {
        assert!(headers.get(absent).is_none(), "{absent} is HTTP/1.1 only");
    }
    #[cfg(feature = "deflate")]
    assert!(
        headers["sec-websocket-extensions"]
            .to_str()
            .unwrap()
            .starts_with("permessage-deflate")
    );

    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    let secure = ClientRequest::new("wss://example.com/").unwrap();
    let (request, _) = secure.to_extended_connect(&config).unwrap();
    assert_eq!(request.uri(), "https://example.com/");
    assert!(request.headers().get("sec-websocket-extensions").is_none());
}

#[test]
fn the_server_refuses_what_is_not_a_websocket_connect() {
    let valid = connect("https://example.com/chat").body(()).unwrap();
    assert!(Request::from_extended_connect(&valid, Some("websocket")).is_ok());
    assert!(Request::from_extended_connect(&valid, Some("WebSocket")).is_ok());

    for (protocol, what) in [(None, "a plain CONNECT"), (Some("h3"), "another protocol")] {
        let error = Request::from_extended_connect(&valid, protocol).unwrap_err();
        assert_eq!(error, HandshakeError::NotExtendedConnect, "{what}");
        assert_eq!(error.http_status(), Some(400));
    }
    let get = http::Request::get("https://example.com/chat")
        .body(())
        .unwrap();
    assert_eq!(
        Request::from_extended_connect(&get, Some(WEBSOCKET_PROTOCOL)).unwrap_err(),
        HandshakeError::NotExtendedConnect
    );
    let old = connect("https://example.com/")
        .header("sec-websocket-version", "8")
        .body(())
        .unwrap();
    let error = Request::from_extended_connect(&old, Some(WEBSOCKET_PROTOCOL)).unwrap_err();
    assert_eq!(
        (error.clone(), error.http_status()),
        (
            HandshakeError::DuplicateHeader("sec-websocket-version"),
            Some(400)
        )
    );
    let wrong = http::Request::builder()
        .method("CONNECT")
        .uri("https://example.com/")
        .header("sec-websocket-version", "8")
        .body(())
        .unwrap();
    let error = Request::from_extended_connect(&wrong, Some(WEBSOCKET_PROTOCOL)).unwrap_err();
    assert_eq!(
        (error.clone(), error.http_status()),
        (HandshakeError::UnsupportedVersion, Some(426))
    );
    let relative = connect("/chat").body(()).unwrap();
    assert_eq!(
        Request::from_extended_connect(&relative, Some(WEBSOCKET_PROTOCOL)).unwrap_err(),
        HandshakeError::MissingHost
    );
}

#[test]
fn the_server_answers_200_with_lowercase_fields_and_what_it_chose() {
    let req = connect("https://example.com/chat?x=1")
        .header("sec-websocket-protocol", "chat, superchat")
        .header(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        )
        .header("origin", "https://example.com")
        .body(())
        .unwrap();
    let request = Request::from_extended_connect(&req, Some(WEBSOCKET_PROTOCOL)).unwrap();
    assert_eq!(
        (request.host(), request.path()),
        ("example.com", "/chat?x=1")
    );
    assert_eq!(request.origin(), Some("https://example.com"));
    assert_eq!(
        request.protocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );

    let accept = Accept::new()
        .protocol("superchat")
        .header("X-Served-By", "test");
    let (response, negotiated) =
        accept_extended_connect(&request, &accept, &Config::default()).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let names: Vec<&str> = response.headers().keys().map(|k| k.as_str()).collect();
    assert!(
        names
            .iter()
            .all(|n| n.chars().all(|c| !c.is_ascii_uppercase()))
    );
    for absent in ["upgrade", "connection", "sec-websocket-accept"] {
        assert!(!names.contains(&absent), "{absent} is HTTP/1.1 only");
    }
    assert_eq!(response.headers()["sec-websocket-protocol"], "superchat");
    assert_eq!(response.headers()["x-served-by"], "test");
    assert_eq!(negotiated.protocol.as_deref(), Some("superchat"));
    #[cfg(feature = "deflate")]
    assert_eq!(
        response.headers()["sec-websocket-extensions"],
        negotiated.extensions.as_deref().unwrap()
    );

    let not_offered = accept_extended_connect(
        &request,
        &Accept::new().protocol("other"),
        &Config::default(),
    );
    assert_eq!(
        not_offered.unwrap_err(),
        wsmachine::UsageError::ProtocolNotOffered
    );
}

#[test]
fn the_client_checks_the_answer() {
    let client = ClientRequest::new("wss://example.com/")
        .unwrap()
        .protocol("chat");
    let (_, expected) = client.to_extended_connect(&Config::default()).unwrap();
    let answer = |status: u16, protocol: Option<&str>| {
        let mut builder = http::Response::builder()
            .status(status)
            .version(http::Version::HTTP_2);
        if let Some(p) = protocol {
            builder = builder.header("sec-websocket-protocol", p);
        }
        builder.body(()).unwrap()
    };
    assert_eq!(
        validate_http_response(&answer(200, Some("chat")), &expected)
            .unwrap()
            .protocol
            .as_deref(),
        Some("chat")
    );
    assert_eq!(
        validate_http_response(&answer(200, None), &expected)
            .unwrap()
            .protocol,
        None
    );
    // No accept value is expected, and no Upgrade: a 2xx is all.
    assert!(validate_http_response(&answer(204, None), &expected).is_ok());
    assert_eq!(
        validate_http_response(&answer(200, Some("other")), &expected).unwrap_err(),
        HandshakeError::UnexpectedProtocol
    );
    let Err(HandshakeError::Rejected(response)) =
        validate_http_response(&answer(403, None), &expected)
    else {
        panic!("a 403 refuses");
    };
    assert_eq!(response.status, 403);
    // A 101 is an HTTP/1.1 answer: not one to an extended CONNECT.
    assert!(matches!(
        validate_http_response(&answer(101, None), &expected),
        Err(HandshakeError::Rejected(_))
    ));
}

/// Both helpers, then messages both ways over the stream they opened, with
/// permessage-deflate if it was negotiated.
#[test]
fn a_websocket_runs_over_the_stream_the_helpers_opened() {
    let client_request = ClientRequest::new("wss://example.com/echo")
        .unwrap()
        .protocol("chat");
    let (request, expected) = client_request
        .to_extended_connect(&Config::default())
        .unwrap();
    let offer = Request::from_extended_connect(&request, Some(WEBSOCKET_PROTOCOL)).unwrap();
    let (response, server_side) =
        accept_extended_connect(&offer, &Accept::new().protocol("chat"), &Config::default())
            .unwrap();
    let client_side = validate_http_response(&response, &expected).unwrap();
    assert_eq!(client_side, server_side);

    let client = Connection::open_client_negotiated(
        Config::default(),
        SeededEntropy::new(9),
        &expected,
        client_side,
    );
    let server = Connection::open_server_negotiated(Config::default(), server_side);
    let mut pair = Pair::from_connections(client, server);
    let text = "über den Wolken ".repeat(200);
    pair.client.send_text(&text).unwrap();
    pair.server.send_binary(&[7; 5000]).unwrap();
    let (at_client, at_server) = pair.pump();
    assert_eq!(at_server, [OwnedEvent::Text(text)]);
    assert_eq!(at_client, [OwnedEvent::Binary(vec![7; 5000])]);
    #[cfg(feature = "deflate")]
    {
        assert!(pair.client.negotiated().extensions.is_some());
        // Compressed: far fewer bytes than the 3,400 of text went over.
        pair.client.send_text(&"abc".repeat(1000)).unwrap();
        assert!(pair.client.pending_transmit() < 200);
        let (_, at_server) = pair.pump();
        assert_eq!(at_server, [OwnedEvent::Text("abc".repeat(1000))]);
    }
}

/// RFC 9113 §8.3.1: the authority is the host; a Host field that says
/// otherwise is malformed, and two are refused.
#[test]
fn host_is_the_authority() {
    let with_host = |host: &str| {
        connect("https://example.com/chat")
            .header("host", host)
            .body(())
            .unwrap()
    };
    let same = Request::from_extended_connect(&with_host("EXAMPLE.com"), Some(WEBSOCKET_PROTOCOL));
    assert_eq!(same.unwrap().host(), "EXAMPLE.com");
    let other =
        Request::from_extended_connect(&with_host("evil.example"), Some(WEBSOCKET_PROTOCOL));
    assert!(matches!(other, Err(HandshakeError::Malformed(_))));
    let twice = connect("https://example.com/")
        .header("host", "example.com")
        .header("host", "example.com")
        .body(())
        .unwrap();
    assert_eq!(
        Request::from_extended_connect(&twice, Some(WEBSOCKET_PROTOCOL)).unwrap_err(),
        HandshakeError::DuplicateHeader("host")
    );
}

/// Connection-specific fields never reach an HTTP/2 message, in any case.
#[test]
fn connection_specific_fields_are_left_out() {
    let client = ClientRequest::new("wss://example.com/")
        .unwrap()
        .header("Keep-Alive", "5")
        .header("TE", "trailers")
        .header("X-Kept", "1");
    let (request, _) = client.to_extended_connect(&Config::default()).unwrap();
    let names: Vec<&str> = request.headers().keys().map(|k| k.as_str()).collect();
    assert!(
        !names.contains(&"keep-alive") && !names.contains(&"te"),
        "{names:?}"
    );
    assert!(names.contains(&"x-kept"));
}
