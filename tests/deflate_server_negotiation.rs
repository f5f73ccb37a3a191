//! permessage-deflate (RFC 7692): the server's choice of a response
//! (`DeflateConfig::negotiate`). Every offer is answered within the server's
//! limits, so that both ends then agree; typical offers get the expected
//! response; an unlimitable client window is declined under a limit; of
//! several offers the first acceptable one is chosen; invalid ones are
//! skipped.
#![cfg(feature = "deflate")]

#[path = "common/deflate.rs"]
mod offers;

use offers::*;
use wsmachine::Role;
use wsmachine::deflate::{Agreement, ClientWindow, DeflateConfig, DeflateParams, Memory};

fn server_configs() -> Vec<(&'static str, DeflateConfig)> {
    vec![
        ("default", DeflateConfig::default()),
        ("dedicated", DeflateConfig::dedicated(8)),
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

/// The client window a server asks for when the client lets it choose,
/// under its limit: a shared memory's window (what it keeps), else the limit.
fn preferred_client_window(cfg: &DeflateConfig) -> u8 {
    let limit = cfg.client_max_window_bits;
    match &cfg.memory {
        Memory::Shared { window_bits, .. } => limit.min(*window_bits),
        _ => limit,
    }
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
                preferred_client_window(cfg),
                "{ctx}: client_max_window_bits"
            );
        }
        ClientWindow::Max(offered) => assert_eq!(
            r.client_max_window_bits,
            ClientWindow::Max(offered.min(preferred_client_window(cfg))),
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
    // All 840 combinations but the 20 unlimitable offers (no
    // client_max_window_bits) under each of the 2 client window limits.
    assert_eq!(accepted, 840 - 2 * 20);
}

#[test]
fn the_server_response_to_typical_offers() {
    let cases: &[(&str, DeflateConfig, &str)] = &[
        (
            "permessage-deflate; client_max_window_bits",
            DeflateConfig::default(),
            "permessage-deflate; client_max_window_bits=12",
        ),
        (
            "permessage-deflate; client_max_window_bits",
            DeflateConfig::dedicated(8),
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
