//! What the permessage-deflate negotiation tests (tests/deflate_*.rs) share:
//! parameters built field by field, every subset of them as offers, an offer
//! parsed from text, and a `DeflateConfig` adjusted from the default.
//! Include it with `#[path = "common/deflate.rs"] mod offers;`.
#![allow(dead_code)]

use wsmachine::deflate::{ClientWindow, DeflateConfig, DeflateParams};

pub fn params(
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
pub fn all_offers() -> Vec<DeflateParams> {
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

pub fn parse_offer(element: &str) -> DeflateParams {
    DeflateParams::parse(element, false).unwrap_or_else(|e| panic!("{element:?}: {e:?}"))
}

pub fn deflate_config(adjust: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut d = DeflateConfig::default();
    adjust(&mut d);
    d
}
