//! permessage-deflate (RFC 7692) extension elements as text: every subset of
//! the parameters round-trips through `Display` and `DeflateParams::parse`,
//! in any order, quoted, with any whitespace and name case; other extensions
//! are not deflate; invalid, duplicate and (in a response) valueless
//! parameters give the right error.
#![cfg(feature = "deflate")]

#[path = "common/deflate.rs"]
mod offers;

use offers::*;
use wsmachine::deflate::{ClientWindow, DeflateParams, NegotiationError};

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
