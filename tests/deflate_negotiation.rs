//! permessage-deflate (RFC 7692): parsing of offers and responses, the
//! server's choice of a response, the client's validation of it, and the
//! whole negotiation through `Connection`, in memory.
#![cfg(feature = "deflate")]

mod common;

use common::{decode_all, feed, take_transmit};
use wsmachine::deflate::{Agreement, ClientWindow, DeflateConfig, DeflateParams, NegotiationError};
use wsmachine::frame::OpCode;
use wsmachine::handshake::{Accept, ClientRequest, HandshakeError};
use wsmachine::{Config, Connection, Error, OwnedEvent, Role, SeededEntropy};

// ----- helpers -----

fn params(
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientWindow,
) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover,
        client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    }
}

/// Every subset of the four parameters, with several values for the windows
/// and `client_max_window_bits` both valueless and valued.
fn all_offers() -> Vec<DeflateParams> {
    let mut out = Vec::new();
    for mask in 0..16u8 {
        let server_windows: &[Option<u8>] = if mask & 4 != 0 {
            &[Some(8), Some(10), Some(11), Some(15)]
        } else {
            &[None]
        };
        let client_windows: &[ClientWindow] = if mask & 8 != 0 {
            &[
                ClientWindow::Supported,
                ClientWindow::Max(8),
                ClientWindow::Max(12),
                ClientWindow::Max(13),
                ClientWindow::Max(15),
            ]
        } else {
            &[ClientWindow::Absent]
        };
        for &server in server_windows {
            for &client in client_windows {
                out.push(params(mask & 1 != 0, mask & 2 != 0, server, client));
            }
        }
    }
    out
}

fn parse_offer(element: &str) -> DeflateParams {
    DeflateParams::parse(element, false).unwrap_or_else(|e| panic!("{element:?}: {e:?}"))
}

fn deflate_config(adjust: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut d = DeflateConfig::default();
    adjust(&mut d);
    d
}

fn config(deflate: Option<DeflateConfig>) -> Config {
    let mut c = Config::default();
    c.deflate = deflate;
    c
}

/// Some 12 KB of repetitive JSON.
fn json_text() -> String {
    let text: String = (0..200)
        .map(|i| {
            format!("{{\"id\":{i},\"name\":\"user{i}\",\"active\":true,\"tags\":[\"a\",\"b\"]}},")
        })
        .collect();
    assert!(text.len() >= 10_000);
    text
}

/// The value of a header field in an HTTP head, if present.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn open_extensions(events: &[OwnedEvent]) -> Option<String> {
    match events {
        [OwnedEvent::Open(n)] => n.extensions.clone(),
        other => panic!("expected one Open event, got {other:?}"),
    }
}

/// A finished handshake between a client and a server connection.
struct Handshake {
    client: Connection,
    server: Connection,
    request: String,
    response: String,
    client_extensions: Option<String>,
    server_extensions: Option<String>,
}

fn handshake(request: &ClientRequest, client_config: Config, server_config: Config) -> Handshake {
    let mut client = Connection::client(request, client_config, SeededEntropy::new(0xd7)).unwrap();
    let mut server = Connection::server(server_config);
    let request_bytes = take_transmit(&mut client);
    let request = String::from_utf8(request_bytes.clone()).unwrap();
    let events = feed(&mut server, &request_bytes, &[]);
    assert!(
        matches!(&events[..], [OwnedEvent::Request(_)]),
        "{events:?}"
    );
    server.accept(Accept::new()).unwrap();
    let server_extensions = open_extensions(&common::drain_events(&mut server));
    let response_bytes = take_transmit(&mut server);
    let response = String::from_utf8(response_bytes.clone()).unwrap();
    let client_extensions = open_extensions(&feed(&mut client, &response_bytes, &[]));
    Handshake {
        client,
        server,
        request,
        response,
        client_extensions,
        server_extensions,
    }
}

fn default_handshake(client_config: Config, server_config: Config) -> Handshake {
    handshake(
        &ClientRequest::new("ws://a/").unwrap(),
        client_config,
        server_config,
    )
}

/// Sends `text` from one side to the other; checks it arrives unchanged and
/// whether the frame went compressed (RSV1). Returns the wire size.
fn send_text(from: &mut Connection, to: &mut Connection, text: &str, compressed: bool) -> usize {
    from.send_text(text).unwrap();
    let wire = from.poll_transmit().expect("a frame queued").to_vec();
    from.transmitted(wire.len());
    assert_eq!(from.pending_transmit(), 0);
    assert_eq!(
        wire[0] & 0x40 != 0,
        compressed,
        "RSV1 bit of the first byte"
    );
    let frames = decode_all(&wire);
    assert_eq!(frames.len(), 1, "one frame");
    assert_eq!(frames[0].0.opcode, OpCode::TEXT);
    // Two reads, so the inflater is fed in pieces.
    let events = feed(to, &wire, &[wire.len() / 3]);
    assert_eq!(events.len(), 1, "one event expected, got {}", events.len());
    match &events[0] {
        OwnedEvent::Text(got) => {
            assert!(got == text, "text changed in transit ({} bytes)", got.len())
        }
        OwnedEvent::Closed(info) => panic!("closed: {:?}", info.error()),
        _ => panic!("not a text event"),
    }
    wire.len()
}

/// Sends the JSON both ways, compressed, and checks the wire is much smaller.
fn compressed_both_ways(h: &mut Handshake) {
    let text = json_text();
    let up = send_text(&mut h.client, &mut h.server, &text, true);
    assert!(
        up * 4 < text.len(),
        "client sent {up} bytes for {}",
        text.len()
    );
    let down = send_text(&mut h.server, &mut h.client, &text, true);
    assert!(
        down * 4 < text.len(),
        "server sent {down} bytes for {}",
        text.len()
    );
    // And again, with whatever context the agreement keeps.
    send_text(&mut h.client, &mut h.server, &text, true);
    send_text(&mut h.server, &mut h.client, &text, true);
}

/// Runs a client against a hand-written 101 with the given
/// `Sec-WebSocket-Extensions` value: (request as sent, client events, client).
fn client_sees(
    request: &ClientRequest,
    config: Config,
    extensions: Option<&str>,
) -> (String, Vec<OwnedEvent>, Connection) {
    let mut client = Connection::client(request, config, SeededEntropy::new(3)).unwrap();
    let sent = String::from_utf8(take_transmit(&mut client)).unwrap();
    let key = header(&sent, "Sec-WebSocket-Key").unwrap();
    let accept = wsmachine::handshake::accept_key(key.as_bytes());
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(e) = extensions {
        response.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    response.push_str("\r\n");
    let events = feed(&mut client, response.as_bytes(), &[]);
    (sent, events, client)
}

fn deflate_failure(events: &[OwnedEvent]) -> NegotiationError {
    match events.last() {
        Some(OwnedEvent::Closed(info)) => match info.error() {
            Some(Error::Handshake(HandshakeError::InvalidDeflateResponse(e))) => *e,
            other => panic!("expected InvalidDeflateResponse, got {other:?}"),
        },
        other => panic!("expected Closed last, got {other:?}"),
    }
}

// ----- 1. parsing -----

#[test]
fn every_parameter_subset_round_trips_through_display_and_parse() {
    let offers = all_offers();
    assert_eq!(offers.len(), 120);
    for p in offers {
        let text = p.to_string();
        assert!(text.starts_with("permessage-deflate"), "{text}");
        assert_eq!(DeflateParams::parse(&text, false), Ok(p), "{text}");
        // Each parameter is written iff it is set.
        assert_eq!(
            text.contains("; server_no_context_takeover"),
            p.server_no_context_takeover,
            "{text}"
        );
        assert_eq!(
            text.contains("; client_no_context_takeover"),
            p.client_no_context_takeover,
            "{text}"
        );
        assert_eq!(
            text.contains("; server_max_window_bits="),
            p.server_max_window_bits.is_some(),
            "{text}"
        );
        assert_eq!(
            text.contains("; client_max_window_bits"),
            p.client_max_window_bits != ClientWindow::Absent,
            "{text}"
        );
        let params_written = text.matches(';').count();
        let params_set = usize::from(p.server_no_context_takeover)
            + usize::from(p.client_no_context_takeover)
            + usize::from(p.server_max_window_bits.is_some())
            + usize::from(p.client_max_window_bits != ClientWindow::Absent);
        assert_eq!(params_written, params_set, "{text}");
        // As a response, a valueless client_max_window_bits is invalid.
        let as_response = DeflateParams::parse(&text, true);
        if p.client_max_window_bits == ClientWindow::Supported {
            assert_eq!(as_response, Err(NegotiationError::InvalidValue), "{text}");
        } else {
            assert_eq!(as_response, Ok(p), "{text}");
        }
    }
}

#[test]
fn each_parameter_alone_sets_its_field() {
    let none = ClientWindow::Absent;
    let cases = [
        ("permessage-deflate", params(false, false, None, none)),
        (
            "permessage-deflate; server_no_context_takeover",
            params(true, false, None, none),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            params(false, true, None, none),
        ),
        (
            "permessage-deflate; server_max_window_bits=8",
            params(false, false, Some(8), none),
        ),
        (
            "permessage-deflate; server_max_window_bits=15",
            params(false, false, Some(15), none),
        ),
        (
            "permessage-deflate; client_max_window_bits",
            params(false, false, None, ClientWindow::Supported),
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            params(false, false, None, ClientWindow::Max(9)),
        ),
        (
            "permessage-deflate; client_max_window_bits=15",
            params(false, false, None, ClientWindow::Max(15)),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(DeflateParams::parse(text, false), Ok(expected), "{text}");
        assert_eq!(expected.to_string(), text);
    }
    // Every window value from 8 to 15, both parameters.
    for bits in 8..=15u8 {
        let p = parse_offer(&format!(
            "permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
        ));
        assert_eq!(p.server_max_window_bits, Some(bits));
        assert_eq!(p.client_max_window_bits, ClientWindow::Max(bits));
    }
}

#[test]
fn parameters_in_any_order_parse_to_the_same_params() {
    let expected = params(true, true, Some(10), ClientWindow::Max(11));
    for text in [
        "permessage-deflate; client_max_window_bits=11; server_max_window_bits=10; client_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_no_context_takeover; client_max_window_bits=11; client_no_context_takeover",
    ] {
        assert_eq!(DeflateParams::parse(text, true), Ok(expected), "{text}");
    }
}

#[test]
fn quoted_window_values_are_unquoted() {
    let p = parse_offer(
        "permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=\"12\"",
    );
    assert_eq!(p, params(false, false, Some(10), ClientWindow::Max(12)));
    assert_eq!(
        DeflateParams::parse("permessage-deflate; client_max_window_bits=\"8\"", true),
        Ok(params(false, false, None, ClientWindow::Max(8)))
    );
    // A quoted-pair stands for the character it escapes.
    assert_eq!(
        parse_offer("permessage-deflate; server_max_window_bits=\"1\\1\"").server_max_window_bits,
        Some(11)
    );
    // Quotes do not excuse an invalid value, and must be balanced.
    for value in ["\"16\"", "\"08\"", "\"\"", "\"10", "10\"", "\" 10\""] {
        let text = format!("permessage-deflate; server_max_window_bits={value}");
        assert_eq!(
            DeflateParams::parse(&text, false),
            Err(NegotiationError::InvalidValue),
            "{text}"
        );
    }
}

#[test]
fn whitespace_around_separators_is_ignored() {
    let expected = params(true, false, Some(10), ClientWindow::Supported);
    for text in [
        "permessage-deflate;server_no_context_takeover;server_max_window_bits=10;client_max_window_bits",
        "permessage-deflate ; server_no_context_takeover ;  server_max_window_bits = 10 ; client_max_window_bits ",
        "permessage-deflate\t;\tserver_no_context_takeover\t;\tserver_max_window_bits\t=\t10\t;\tclient_max_window_bits",
        " permessage-deflate; server_no_context_takeover; server_max_window_bits= \"10\"; client_max_window_bits",
    ] {
        assert_eq!(DeflateParams::parse(text, false), Ok(expected), "{text:?}");
    }
}

#[test]
fn the_extension_name_is_case_insensitive() {
    for name in [
        "PerMessage-Deflate",
        "PERMESSAGE-DEFLATE",
        "permessage-DEFLATE",
    ] {
        assert_eq!(
            DeflateParams::parse(&format!("{name}; client_max_window_bits=10"), true),
            Ok(params(false, false, None, ClientWindow::Max(10))),
            "{name}"
        );
    }
}

#[test]
fn other_extensions_are_not_deflate() {
    for text in [
        "",
        "x-webkit-deflate-frame",
        "permessage-deflatex",
        "deflate",
        "x-permessage-deflate; client_max_window_bits",
    ] {
        assert_eq!(
            DeflateParams::parse(text, false),
            Err(NegotiationError::NotDeflate),
            "{text:?}"
        );
        assert_eq!(
            DeflateParams::parse(text, true),
            Err(NegotiationError::NotDeflate),
            "{text:?}"
        );
    }
}

#[test]
fn invalid_elements_give_the_right_error() {
    use NegotiationError::*;
    let mut cases: Vec<(String, NegotiationError)> = vec![
        ("permessage-deflate; foo".into(), UnknownParameter),
        ("permessage-deflate; foo=1".into(), UnknownParameter),
        (
            "permessage-deflate; client_max_window_bits=10; mux".into(),
            UnknownParameter,
        ),
        (
            "permessage-deflate; max_window_bits=10".into(),
            UnknownParameter,
        ),
        // A value on the context takeover parameters.
        (
            "permessage-deflate; server_no_context_takeover=1".into(),
            InvalidValue,
        ),
        (
            "permessage-deflate; client_no_context_takeover=1".into(),
            InvalidValue,
        ),
        (
            "permessage-deflate; server_no_context_takeover=".into(),
            InvalidValue,
        ),
        (
            "permessage-deflate; client_no_context_takeover=\"\"".into(),
            InvalidValue,
        ),
        // server_max_window_bits needs a value.
        (
            "permessage-deflate; server_max_window_bits".into(),
            InvalidValue,
        ),
        // client_max_window_bits with an explicitly empty value.
        (
            "permessage-deflate; client_max_window_bits=".into(),
            InvalidValue,
        ),
    ];
    // A duplicate of each parameter.
    for (first, second) in [
        ("server_no_context_takeover", "server_no_context_takeover"),
        ("client_no_context_takeover", "client_no_context_takeover"),
        ("server_max_window_bits=10", "server_max_window_bits=10"),
        ("server_max_window_bits=10", "server_max_window_bits=12"),
        ("client_max_window_bits=10", "client_max_window_bits=10"),
        ("client_max_window_bits=12", "client_max_window_bits=9"),
    ] {
        // Not adjacent: another parameter in between.
        let between = if first.starts_with("server") {
            "client_no_context_takeover"
        } else {
            "server_no_context_takeover"
        };
        cases.push((
            format!("permessage-deflate; {first}; {between}; {second}"),
            DuplicateParameter,
        ));
    }
    // Window bits: a decimal 8..=15 without leading zeros.
    for value in [
        "7",
        "16",
        "08",
        "015",
        "",
        "0",
        "x",
        "1a",
        "9.0",
        "+9",
        "-9",
        "255",
        "99999999999",
    ] {
        for param in ["server_max_window_bits", "client_max_window_bits"] {
            cases.push((format!("permessage-deflate; {param}={value}"), InvalidValue));
        }
    }
    for (text, error) in &cases {
        assert_eq!(
            DeflateParams::parse(text, false),
            Err(*error),
            "offer {text:?}"
        );
        assert_eq!(
            DeflateParams::parse(text, true),
            Err(*error),
            "response {text:?}"
        );
    }
}

#[test]
fn each_parameter_duplicated_is_a_duplicate_parameter() {
    for param in [
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits=10",
        "client_max_window_bits=10",
        "client_max_window_bits",
    ] {
        let text = format!("permessage-deflate; {param}; {param}");
        assert_eq!(
            DeflateParams::parse(&text, false),
            Err(NegotiationError::DuplicateParameter),
            "{text}"
        );
    }
    // The valued and valueless forms are the same parameter.
    assert_eq!(
        DeflateParams::parse(
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            false
        ),
        Err(NegotiationError::DuplicateParameter)
    );
}

#[test]
fn a_response_needs_a_value_for_client_max_window_bits() {
    let text = "permessage-deflate; client_max_window_bits";
    assert_eq!(
        DeflateParams::parse(text, false),
        Ok(params(false, false, None, ClientWindow::Supported))
    );
    assert_eq!(
        DeflateParams::parse(text, true),
        Err(NegotiationError::InvalidValue)
    );
    assert_eq!(
        DeflateParams::parse(
            "permessage-deflate; server_no_context_takeover; client_max_window_bits",
            true
        ),
        Err(NegotiationError::InvalidValue)
    );
}

// ----- 2. server negotiation -----

fn server_configs() -> Vec<(&'static str, DeflateConfig)> {
    vec![
        ("default", DeflateConfig::default()),
        (
            "server_max_window_bits=10",
            deflate_config(|d| d.server_max_window_bits = 10),
        ),
        (
            "client_max_window_bits=12",
            deflate_config(|d| d.client_max_window_bits = 12),
        ),
        (
            "server_no_context_takeover",
            deflate_config(|d| d.server_no_context_takeover = true),
        ),
        (
            "client_no_context_takeover",
            deflate_config(|d| d.client_no_context_takeover = true),
        ),
        (
            "everything at its smallest",
            deflate_config(|d| {
                d.server_max_window_bits = 8;
                d.client_max_window_bits = 8;
                d.server_no_context_takeover = true;
                d.client_no_context_takeover = true;
            }),
        ),
    ]
}

fn effective_client_window(w: ClientWindow) -> u8 {
    match w {
        ClientWindow::Max(b) => b,
        _ => 15,
    }
}

/// Checks the server's answer to one offer against RFC 7692 and the server's limits.
fn check_negotiation(
    name: &str,
    cfg: &DeflateConfig,
    offer: &DeflateParams,
    got: Option<DeflateParams>,
) {
    let ctx = format!("config {name}, offer {offer}");
    let must_decline =
        offer.client_max_window_bits == ClientWindow::Absent && cfg.client_max_window_bits < 15;
    let Some(r) = got else {
        assert!(must_decline, "{ctx}: declined");
        return;
    };
    let ctx = format!("{ctx}, response {r}");
    assert!(
        !must_decline,
        "{ctx}: an unlimitable client window accepted"
    );
    assert!(r.answers(offer), "{ctx}: not a valid answer");
    assert_eq!(
        DeflateParams::parse(&r.to_string(), true),
        Ok(r),
        "{ctx}: re-parse"
    );
    // server_max_window_bits.
    let expected_server = match offer.server_max_window_bits {
        Some(offered) => Some(offered.min(cfg.server_max_window_bits)),
        None => (cfg.server_max_window_bits < 15).then_some(cfg.server_max_window_bits),
    };
    assert_eq!(
        r.server_max_window_bits, expected_server,
        "{ctx}: server_max_window_bits"
    );
    // client_max_window_bits.
    match offer.client_max_window_bits {
        ClientWindow::Absent => assert_eq!(r.client_max_window_bits, ClientWindow::Absent, "{ctx}"),
        ClientWindow::Supported => {
            assert_ne!(r.client_max_window_bits, ClientWindow::Supported, "{ctx}");
            assert_eq!(
                effective_client_window(r.client_max_window_bits),
                cfg.client_max_window_bits,
                "{ctx}: client_max_window_bits"
            );
        }
        ClientWindow::Max(offered) => assert_eq!(
            r.client_max_window_bits,
            ClientWindow::Max(offered.min(cfg.client_max_window_bits)),
            "{ctx}: client_max_window_bits"
        ),
    }
    assert_eq!(
        r.server_no_context_takeover,
        offer.server_no_context_takeover || cfg.server_no_context_takeover,
        "{ctx}: server_no_context_takeover"
    );
    assert_eq!(
        r.client_no_context_takeover,
        offer.client_no_context_takeover || cfg.client_no_context_takeover,
        "{ctx}: client_no_context_takeover"
    );
    // Both ends then agree: each compresses within what the other inflates,
    // and resets whenever the other expects it to.
    let server = Agreement::new(Role::Server, &r, None);
    let client = Agreement::from_response([r.to_string().as_str()], std::slice::from_ref(offer))
        .unwrap_or_else(|e| panic!("{ctx}: client refuses: {e:?}"))
        .unwrap_or_else(|| panic!("{ctx}: client sees no agreement"));
    assert!(
        client.own_window_bits <= server.peer_window_bits,
        "{ctx}: {client:?} vs {server:?}"
    );
    assert!(
        server.own_window_bits <= client.peer_window_bits,
        "{ctx}: {client:?} vs {server:?}"
    );
    assert!(
        server.own_window_bits <= cfg.server_max_window_bits,
        "{ctx}"
    );
    assert!(
        server.peer_window_bits <= cfg.client_max_window_bits,
        "{ctx}"
    );
    assert!(
        !server.peer_no_context_takeover || client.own_no_context_takeover,
        "{ctx}"
    );
    assert!(
        !client.peer_no_context_takeover || server.own_no_context_takeover,
        "{ctx}"
    );
}

#[test]
fn the_server_answers_every_offer_within_its_limits() {
    let mut accepted = 0;
    for (name, cfg) in server_configs() {
        for offer in all_offers() {
            let element = offer.to_string();
            let got = cfg.negotiate([element.as_str()]);
            accepted += usize::from(got.is_some());
            check_negotiation(name, &cfg, &offer, got);
        }
    }
    // All 720 combinations but the 20 unlimitable offers (no
    // client_max_window_bits) under each of the 2 client window limits.
    assert_eq!(accepted, 720 - 2 * 20);
}

#[test]
fn the_server_response_to_typical_offers() {
    let cases: &[(&str, DeflateConfig, &str)] = &[
        (
            "permessage-deflate; client_max_window_bits",
            DeflateConfig::default(),
            "permessage-deflate",
        ),
        (
            "permessage-deflate",
            DeflateConfig::default(),
            "permessage-deflate",
        ),
        (
            "permessage-deflate; client_max_window_bits",
            deflate_config(|d| d.client_max_window_bits = 12),
            "permessage-deflate; client_max_window_bits=12",
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            deflate_config(|d| d.client_max_window_bits = 12),
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits=12",
            deflate_config(|d| d.server_max_window_bits = 10),
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate",
            deflate_config(|d| d.server_max_window_bits = 9),
            "permessage-deflate; server_max_window_bits=9",
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            DeflateConfig::default(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
    ];
    for (offer, cfg, expected) in cases {
        let got = cfg.negotiate([*offer]).map(|r| r.to_string());
        assert_eq!(got.as_deref(), Some(*expected), "offer {offer}");
    }
}

#[test]
fn an_unlimitable_client_window_is_declined_under_a_limit() {
    let cfg = deflate_config(|d| d.client_max_window_bits = 12);
    assert_eq!(cfg.negotiate(["permessage-deflate"]), None);
    assert_eq!(
        cfg.negotiate(["permessage-deflate; server_max_window_bits=10"]),
        None
    );
    assert!(
        DeflateConfig::default()
            .negotiate(["permessage-deflate"])
            .is_some()
    );
}

#[test]
fn of_several_offers_the_first_acceptable_one_is_chosen() {
    let cfg = DeflateConfig::default();
    let got = cfg.negotiate([
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=12",
    ]);
    assert_eq!(
        got,
        Some(params(false, false, Some(10), ClientWindow::Absent))
    );

    // The first cannot be limited, so a limiting server takes the second.
    let cfg = deflate_config(|d| d.client_max_window_bits = 12);
    let got = cfg.negotiate([
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits=10",
        "permessage-deflate; client_max_window_bits",
    ]);
    assert_eq!(got, Some(params(false, false, None, ClientWindow::Max(10))));
}

#[test]
fn invalid_offers_are_skipped_not_fatal() {
    let got = DeflateConfig::default().negotiate([
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "x-webkit-deflate-frame",
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
        "permessage-deflate",
    ]);
    assert_eq!(got, Some(params(true, false, None, ClientWindow::Max(9))));
}

#[test]
fn only_invalid_or_no_offers_are_declined() {
    let cfg = DeflateConfig::default();
    assert_eq!(
        cfg.negotiate([
            "permessage-deflate; foo",
            "permessage-deflate; client_max_window_bits=08",
            "x-other",
        ]),
        None
    );
    assert_eq!(cfg.negotiate(Vec::<&str>::new()), None);
    assert_eq!(cfg.negotiate(["x-webkit-deflate-frame"]), None);
}

// ----- 3. client response validation -----

fn agreement(
    own_window_bits: u8,
    own_nct: bool,
    peer_window_bits: u8,
    peer_nct: bool,
) -> Agreement {
    Agreement {
        own_window_bits,
        own_no_context_takeover: own_nct,
        peer_window_bits,
        peer_no_context_takeover: peer_nct,
    }
}

#[test]
fn valid_responses_set_up_the_client_agreement() {
    let cases: &[(&str, &str, Agreement)] = &[
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate",
            agreement(15, false, 15, false),
        ),
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=8",
            agreement(8, false, 15, false),
        ),
        (
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=8",
            agreement(15, false, 8, false),
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=9",
            agreement(15, false, 9, false),
        ),
        // Not offered, yet allowed (§7.1.2.1).
        (
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=12",
            agreement(15, false, 12, false),
        ),
        // The offer's own hint binds the client even if the response omits it.
        (
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate",
            agreement(10, false, 15, false),
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=9",
            agreement(9, false, 15, false),
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=10",
            agreement(10, false, 15, false),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate",
            agreement(15, true, 15, false),
        ),
        // The server may ask for either reset unprompted (§7.1.1).
        (
            "permessage-deflate",
            "permessage-deflate; client_no_context_takeover",
            agreement(15, true, 15, false),
        ),
        (
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
            agreement(15, false, 15, true),
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
            agreement(15, false, 15, true),
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8",
            agreement(8, true, 8, true),
        ),
        (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits",
            "PerMessage-Deflate ; server_max_window_bits=\"11\" ; client_max_window_bits=\"13\"",
            agreement(13, false, 11, false),
        ),
    ];
    for (offer, response, expected) in cases {
        let got = Agreement::from_response([*response], &[parse_offer(offer)]);
        assert_eq!(
            got,
            Ok(Some(*expected)),
            "offer {offer:?}, response {response:?}"
        );
    }
}

#[test]
fn a_response_among_other_extensions_is_found() {
    let offers = [parse_offer("permessage-deflate; client_max_window_bits")];
    let got = Agreement::from_response(
        [
            "x-other; a=1",
            "permessage-deflate; client_max_window_bits=11",
            "x-more",
        ],
        &offers,
    );
    assert_eq!(got, Ok(Some(agreement(11, false, 15, false))));
}

#[test]
fn a_response_without_permessage_deflate_is_no_agreement() {
    let offers = [parse_offer("permessage-deflate; client_max_window_bits")];
    assert_eq!(
        Agreement::from_response(Vec::<&str>::new(), &offers),
        Ok(None)
    );
    assert_eq!(
        Agreement::from_response(["x-other; a=1", "x-more"], &offers),
        Ok(None)
    );
    assert_eq!(Agreement::from_response(Vec::<&str>::new(), &[]), Ok(None));
}

#[test]
fn invalid_responses_are_rejected_with_the_right_error() {
    use NegotiationError::*;
    let cases: &[(&[&str], &[&str], NegotiationError)] = &[
        (
            &["permessage-deflate"],
            &["permessage-deflate; foo"],
            UnknownParameter,
        ),
        (
            &["permessage-deflate; server_no_context_takeover"],
            &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            DuplicateParameter,
        ),
        (
            &["permessage-deflate; client_max_window_bits"],
            &["permessage-deflate; client_max_window_bits=10; client_max_window_bits=10"],
            DuplicateParameter,
        ),
        (
            &["permessage-deflate"],
            &["permessage-deflate; server_max_window_bits=16"],
            InvalidValue,
        ),
        (
            &["permessage-deflate"],
            &["permessage-deflate; server_max_window_bits=7"],
            InvalidValue,
        ),
        (
            &["permessage-deflate"],
            &["permessage-deflate; server_max_window_bits=08"],
            InvalidValue,
        ),
        (
            &["permessage-deflate"],
            &["permessage-deflate; server_max_window_bits"],
            InvalidValue,
        ),
        (
            &["permessage-deflate"],
            &["permessage-deflate; client_no_context_takeover=1"],
            InvalidValue,
        ),
        (
            &["permessage-deflate; client_max_window_bits"],
            &["permessage-deflate; client_max_window_bits=abc"],
            InvalidValue,
        ),
        // A valueless client_max_window_bits in a response (§7.1.2.2).
        (
            &["permessage-deflate; client_max_window_bits"],
            &["permessage-deflate; client_max_window_bits"],
            InvalidValue,
        ),
        // client_max_window_bits the offer did not have.
        (
            &["permessage-deflate"],
            &["permessage-deflate; client_max_window_bits=10"],
            NotOffered,
        ),
        (
            &["permessage-deflate"],
            &["permessage-deflate; client_max_window_bits=15"],
            NotOffered,
        ),
        // Windows over the offered ones.
        (
            &["permessage-deflate; server_max_window_bits=10"],
            &["permessage-deflate; server_max_window_bits=11"],
            NotOffered,
        ),
        (
            &["permessage-deflate; client_max_window_bits=10"],
            &["permessage-deflate; client_max_window_bits=12"],
            NotOffered,
        ),
        // server_max_window_bits offered but left out of the response.
        (
            &["permessage-deflate; server_max_window_bits=10"],
            &["permessage-deflate"],
            NotOffered,
        ),
        // server_no_context_takeover offered but left out.
        (
            &["permessage-deflate; server_no_context_takeover"],
            &["permessage-deflate"],
            NotOffered,
        ),
        (
            &["permessage-deflate; server_no_context_takeover; client_max_window_bits"],
            &["permessage-deflate; client_max_window_bits=9"],
            NotOffered,
        ),
        // Accepted twice, in one field or across elements.
        (
            &["permessage-deflate"],
            &["permessage-deflate", "permessage-deflate"],
            DuplicateExtension,
        ),
        (
            &[
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate",
            ],
            &[
                "permessage-deflate; client_max_window_bits=10",
                "x-other",
                "permessage-deflate",
            ],
            DuplicateExtension,
        ),
        // Nothing was offered.
        (&[], &["permessage-deflate"], NotOffered),
    ];
    for (offers, response, error) in cases {
        let offers: Vec<DeflateParams> = offers.iter().map(|o| parse_offer(o)).collect();
        let got = Agreement::from_response(response.iter().copied(), &offers);
        assert_eq!(got, Err(*error), "response {response:?}");
    }
}

#[test]
fn a_response_may_answer_only_a_later_offer() {
    // The response leaves out server_no_context_takeover, so it answers the
    // second offer, whose own hints then bind the client.
    let offers = [
        parse_offer("permessage-deflate; server_no_context_takeover; client_max_window_bits=9"),
        parse_offer("permessage-deflate; client_no_context_takeover; client_max_window_bits=11"),
    ];
    assert_eq!(
        Agreement::from_response(["permessage-deflate"], &offers),
        Ok(Some(agreement(11, true, 15, false)))
    );
    // Over the first offer's window, within the second's.
    let offers = [
        parse_offer("permessage-deflate; server_max_window_bits=10"),
        parse_offer("permessage-deflate; server_max_window_bits=13"),
    ];
    assert_eq!(
        Agreement::from_response(["permessage-deflate; server_max_window_bits=12"], &offers),
        Ok(Some(agreement(15, false, 12, false)))
    );
}

// ----- 4. end to end through Connection -----

#[test]
fn default_configs_negotiate_permessage_deflate_on_both_sides() {
    let mut h = default_handshake(Config::default(), Config::default());
    assert_eq!(
        header(&h.request, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate; client_max_window_bits")
    );
    let answered = header(&h.response, "Sec-WebSocket-Extensions").map(String::from);
    assert_eq!(answered.as_deref(), Some("permessage-deflate"));
    assert_eq!(h.server_extensions, answered);
    assert_eq!(h.client_extensions, answered);
    assert_eq!(h.client.negotiated().extensions, answered);
    compressed_both_ways(&mut h);
}

#[test]
fn server_limits_shape_the_response_both_sides_see() {
    let server = config(Some(deflate_config(|d| {
        d.server_max_window_bits = 9;
        d.client_max_window_bits = 10;
        d.server_no_context_takeover = true;
    })));
    let mut h = default_handshake(Config::default(), server);
    let expected = "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10";
    assert_eq!(
        header(&h.response, "Sec-WebSocket-Extensions"),
        Some(expected)
    );
    assert_eq!(h.server_extensions.as_deref(), Some(expected));
    assert_eq!(h.client_extensions.as_deref(), Some(expected));
    compressed_both_ways(&mut h);
}

#[test]
fn the_client_sends_its_configured_offers_in_order() {
    let client = config(Some(deflate_config(|d| {
        d.offers = vec![
            params(false, false, Some(10), ClientWindow::Supported),
            params(false, false, None, ClientWindow::Supported),
        ];
    })));
    let mut h = default_handshake(client, Config::default());
    assert_eq!(
        header(&h.request, "Sec-WebSocket-Extensions"),
        Some(
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate; client_max_window_bits"
        )
    );
    let expected = "permessage-deflate; server_max_window_bits=10";
    assert_eq!(h.server_extensions.as_deref(), Some(expected));
    assert_eq!(h.client_extensions.as_deref(), Some(expected));
    compressed_both_ways(&mut h);
}

#[test]
fn a_limiting_server_picks_the_clients_second_offer() {
    let client = config(Some(deflate_config(|d| {
        d.offers = vec![
            params(true, false, None, ClientWindow::Absent),
            params(false, true, None, ClientWindow::Supported),
        ];
    })));
    let server = config(Some(deflate_config(|d| d.client_max_window_bits = 12)));
    let mut h = default_handshake(client, server);
    let expected = "permessage-deflate; client_no_context_takeover; client_max_window_bits=12";
    assert_eq!(h.server_extensions.as_deref(), Some(expected));
    assert_eq!(h.client_extensions.as_deref(), Some(expected));
    compressed_both_ways(&mut h);
}

#[test]
fn windows_of_8_bits_work_both_ways() {
    let client = config(Some(deflate_config(|d| {
        d.offers = vec![params(false, false, Some(8), ClientWindow::Supported)];
    })));
    let server = config(Some(deflate_config(|d| d.client_max_window_bits = 8)));
    let mut h = default_handshake(client, server);
    let expected = "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8";
    assert_eq!(h.server_extensions.as_deref(), Some(expected));
    assert_eq!(h.client_extensions.as_deref(), Some(expected));
    compressed_both_ways(&mut h);
}

#[test]
fn context_takeover_shrinks_a_repeated_message_and_no_context_takeover_does_not() {
    let server = config(Some(deflate_config(|d| {
        d.server_no_context_takeover = true
    })));
    // Level 6 finds the whole repeat (level 1, the default, searches short
    // match chains and shrinks it only 2x).
    let client = config(Some(deflate_config(|d| d.level = 6)));
    let mut h = default_handshake(client, server);
    assert_eq!(
        h.client_extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    let text = json_text();
    // The client keeps its context: the repeat is a few back references.
    let first = send_text(&mut h.client, &mut h.server, &text, true);
    let second = send_text(&mut h.client, &mut h.server, &text, true);
    assert!(
        second * 4 < first,
        "client repeat: {second} vs {first} bytes"
    );
    // The server resets: the repeat costs the same.
    let first = send_text(&mut h.server, &mut h.client, &text, true);
    let second = send_text(&mut h.server, &mut h.client, &text, true);
    assert_eq!(first, second, "server repeat");
}

#[test]
fn short_messages_go_uncompressed_under_the_threshold() {
    let mut h = default_handshake(Config::default(), Config::default());
    assert!(h.client_extensions.is_some());
    send_text(&mut h.client, &mut h.server, "hi", false);
    send_text(&mut h.server, &mut h.client, "hi", false);
}

#[test]
fn deflate_off_on_the_client_means_no_extension_and_plain_messages() {
    let mut h = default_handshake(config(None), Config::default());
    assert_eq!(header(&h.request, "Sec-WebSocket-Extensions"), None);
    assert_eq!(header(&h.response, "Sec-WebSocket-Extensions"), None);
    assert_eq!(h.client_extensions, None);
    assert_eq!(h.server_extensions, None);
    let text = json_text();
    send_text(&mut h.client, &mut h.server, &text, false);
    send_text(&mut h.server, &mut h.client, &text, false);
}

#[test]
fn deflate_off_on_the_server_means_no_extension_and_plain_messages() {
    let mut h = default_handshake(Config::default(), config(None));
    assert!(header(&h.request, "Sec-WebSocket-Extensions").is_some());
    assert_eq!(header(&h.response, "Sec-WebSocket-Extensions"), None);
    assert_eq!(h.client_extensions, None);
    assert_eq!(h.server_extensions, None);
    let text = json_text();
    send_text(&mut h.client, &mut h.server, &text, false);
    send_text(&mut h.server, &mut h.client, &text, false);
}

#[test]
fn an_invalid_deflate_response_fails_the_client() {
    use NegotiationError::*;
    let request = ClientRequest::new("ws://a/").unwrap();
    let plain_offer = config(Some(deflate_config(|d| {
        d.offers = vec![DeflateParams::default()]
    })));
    let cases: &[(&Config, &str, NegotiationError)] = &[
        (
            &Config::default(),
            "permessage-deflate; foo",
            UnknownParameter,
        ),
        (
            &Config::default(),
            "permessage-deflate; client_max_window_bits",
            InvalidValue,
        ),
        (
            &Config::default(),
            "permessage-deflate; server_max_window_bits=16",
            InvalidValue,
        ),
        (
            &Config::default(),
            "permessage-deflate; server_max_window_bits=08",
            InvalidValue,
        ),
        (
            &Config::default(),
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            DuplicateParameter,
        ),
        (
            &Config::default(),
            "permessage-deflate, permessage-deflate",
            DuplicateExtension,
        ),
        (
            &plain_offer,
            "permessage-deflate; client_max_window_bits=10",
            NotOffered,
        ),
    ];
    for (cfg, response, error) in cases {
        let (_, events, client) = client_sees(&request, (*cfg).clone(), Some(response));
        assert_eq!(deflate_failure(&events), *error, "response {response:?}");
        assert!(client.is_closed(), "{response}");
        assert_eq!(
            client.poll_transmit(),
            None,
            "a failed client sends nothing"
        );
        assert!(
            !events.iter().any(|e| matches!(e, OwnedEvent::Open(_))),
            "{events:?}"
        );
    }
    // The same client takes a valid answer.
    let (_, events, _) = client_sees(
        &request,
        Config::default(),
        Some("permessage-deflate; client_max_window_bits=10"),
    );
    assert_eq!(
        open_extensions(&events).as_deref(),
        Some("permessage-deflate; client_max_window_bits=10")
    );
}

#[test]
fn a_deflate_response_in_two_fields_is_accepted_twice() {
    let request = ClientRequest::new("ws://a/").unwrap();
    let mut client =
        Connection::client(&request, Config::default(), SeededEntropy::new(9)).unwrap();
    let sent = String::from_utf8(take_transmit(&mut client)).unwrap();
    let accept =
        wsmachine::handshake::accept_key(header(&sent, "Sec-WebSocket-Key").unwrap().as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\
         Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
    let events = feed(&mut client, response.as_bytes(), &[]);
    assert_eq!(
        deflate_failure(&events),
        NegotiationError::DuplicateExtension
    );
}

#[test]
fn a_hand_written_offer_is_sent_instead_of_the_configured_ones() {
    let request = ClientRequest::new("ws://a/")
        .unwrap()
        .extension("permessage-deflate; server_no_context_takeover");
    // Its response lacks server_no_context_takeover: the handshake fails.
    let (sent, events, _) = client_sees(&request, Config::default(), Some("permessage-deflate"));
    assert_eq!(
        header(&sent, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate; server_no_context_takeover")
    );
    assert_eq!(sent.matches("permessage-deflate").count(), 1, "{sent}");
    assert_eq!(deflate_failure(&events), NegotiationError::NotOffered);
    // The configured offer would have accepted that response: it was not used.
    let (_, events, _) = client_sees(
        &request,
        Config::default(),
        Some("permessage-deflate; client_max_window_bits=10"),
    );
    assert_eq!(deflate_failure(&events), NegotiationError::NotOffered);
}

#[test]
fn a_hand_written_offer_negotiates_with_a_real_server() {
    let request = ClientRequest::new("ws://a/")
        .unwrap()
        .extension("permessage-deflate; server_no_context_takeover");
    let mut h = handshake(&request, Config::default(), Config::default());
    let expected = "permessage-deflate; server_no_context_takeover";
    assert_eq!(h.server_extensions.as_deref(), Some(expected));
    assert_eq!(h.client_extensions.as_deref(), Some(expected));
    compressed_both_ways(&mut h);
}

// ----- extension names: case and several elements in one offer -----

#[test]
fn hand_written_offers_match_names_without_case_and_per_element() {
    // "PerMessage-Deflate" is a permessage-deflate offer (so the configured
    // offers are not added), and our server's "permessage-deflate" answers it:
    // extension names are tokens, compared without regard to case. One
    // `extension` string holding two elements offers both names.
    for offer in [
        "PerMessage-Deflate; client_max_window_bits",
        "x-foo, permessage-deflate; client_max_window_bits",
    ] {
        let request = ClientRequest::new("ws://a/").unwrap().extension(offer);
        let h = handshake(&request, Config::default(), Config::default());
        assert_eq!(
            h.client_extensions.as_deref(),
            Some("permessage-deflate"),
            "{offer}"
        );
    }
}

#[test]
fn a_hand_written_offer_works_with_deflate_off_in_the_config() {
    let request = ClientRequest::new("ws://a/")
        .unwrap()
        .extension("permessage-deflate");
    let mut h = handshake(&request, config(None), Config::default());
    assert_eq!(
        header(&h.request, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate")
    );
    assert_eq!(h.client_extensions.as_deref(), Some("permessage-deflate"));
    assert_eq!(h.server_extensions.as_deref(), Some("permessage-deflate"));
    compressed_both_ways(&mut h);
}

#[test]
fn no_configured_offers_means_no_extension() {
    let client = config(Some(deflate_config(|d| d.offers = Vec::new())));
    let mut h = default_handshake(client, Config::default());
    assert_eq!(header(&h.request, "Sec-WebSocket-Extensions"), None);
    assert_eq!(h.client_extensions, None);
    assert_eq!(h.server_extensions, None);
    send_text(&mut h.client, &mut h.server, &json_text(), false);
}
