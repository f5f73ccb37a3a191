//! permessage-deflate (RFC 7692) negotiated through `Connection`, in memory:
//! the offers a client sends (configured or hand written), the response a
//! server gives and both sides see, messages then compressed both ways (or
//! not, with deflate off on either side or under the threshold), context
//! takeover, and a client failing on an invalid response.
#![cfg(feature = "deflate")]

mod common;
#[path = "common/deflate.rs"]
mod offers;

use common::{decode_all, feed, take_transmit};
use offers::*;
use wsmachine::deflate::{ClientWindow, DeflateConfig, DeflateParams, NegotiationError};
use wsmachine::frame::OpCode;
use wsmachine::handshake::{Accept, ClientRequest, HandshakeError};
use wsmachine::{Config, Connection, Error, OwnedEvent, SeededEntropy};

// ----- helpers -----

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

// ----- end to end through Connection -----

#[test]
fn default_configs_negotiate_permessage_deflate_on_both_sides() {
    let mut h = default_handshake(Config::default(), Config::default());
    assert_eq!(
        header(&h.request, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate; client_max_window_bits")
    );
    let answered = header(&h.response, "Sec-WebSocket-Extensions").map(String::from);
    // The default memory (shared, 12-bit windows) asks the client, which
    // lets the server choose, for a 12-bit window.
    assert_eq!(
        answered.as_deref(),
        Some("permessage-deflate; client_max_window_bits=12")
    );
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
    let expected = "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12";
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
    // Dedicated states on both sides: the 10 KiB message needs the whole
    // 15-bit window to refer back to its first copy.
    let server = config(Some(deflate_config(|d| {
        d.server_no_context_takeover = true;
        d.memory = DeflateConfig::dedicated(8).memory;
    })));
    // Level 6 finds the whole repeat (level 1, the default, searches short
    // match chains and shrinks it only 2x).
    let client = config(Some(deflate_config(|d| {
        d.level = 6;
        d.memory = DeflateConfig::dedicated(8).memory;
    })));
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
            Some("permessage-deflate; client_max_window_bits=12"),
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
