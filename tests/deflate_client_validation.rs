//! permessage-deflate (RFC 7692): the client's validation of the server's
//! response against its offers (`Agreement::from_response`). Valid responses
//! set up the agreement, found among other extensions and answering a later
//! offer too; no response is no agreement; invalid ones (bad or duplicate
//! parameters, more than was offered, accepted twice) are rejected with the
//! right error.
#![cfg(feature = "deflate")]

#[path = "common/deflate.rs"]
mod offers;

use offers::*;
use wsmachine::deflate::{Agreement, DeflateParams, NegotiationError};

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
