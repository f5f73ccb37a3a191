//! Extension negotiation in the opening handshake: the one place where the
//! handshake meets permessage-deflate (RFC 7692 §5), shared by the
//! connection's own handshake, the `http` crate helpers and RFC 8441.
//!
//! Without the `deflate` feature no extension is implemented: nothing is
//! offered or accepted, and [`Agreement`] is uninhabited, so whatever is
//! built on an agreement compiles away.

use alloc::string::String;

use super::{ClientRequest, ExpectedResponse, Negotiated, Request};
use crate::config::Config;

#[cfg(feature = "deflate")]
pub(crate) use crate::deflate::Agreement;

/// Without the feature: never constructed.
#[cfg(not(feature = "deflate"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agreement {}

/// Client: the request with the offers of [`Config::deflate`] added, unless
/// it offers permessage-deflate itself already (then its own offers stand).
/// `None`: the request is sent as it is.
pub(crate) fn client_offers(request: &ClientRequest, config: &Config) -> Option<ClientRequest> {
    #[cfg(feature = "deflate")]
    {
        use crate::deflate::{DeflateParams, NegotiationError, elements};
        let deflate = config.deflate.as_ref()?;
        let offered = request
            .extension_offers()
            .flat_map(elements)
            .any(|e| DeflateParams::parse(e, false) != Err(NegotiationError::NotDeflate));
        (!offered).then(|| {
            let mut request = request.clone();
            for offer in &deflate.offers {
                request = request.extension(&alloc::string::ToString::to_string(offer));
            }
            request
        })
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = (request, config);
        None
    }
}

/// Client: the agreement a validated response set up.
pub(crate) fn client_agreement(
    expected: &ExpectedResponse,
    negotiated: &Negotiated,
) -> Option<Agreement> {
    #[cfg(feature = "deflate")]
    {
        expected.deflate(negotiated).ok().flatten()
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = (expected, negotiated);
        None
    }
}

/// Server: the `Sec-WebSocket-Extensions` response to a request's offers
/// that `config` accepts, and the agreement it sets up.
pub(crate) fn server_negotiate(request: &Request, config: &Config) -> Option<(String, Agreement)> {
    #[cfg(feature = "deflate")]
    {
        let response = config.deflate.as_ref()?.negotiate(request.extensions())?;
        let agreement = Agreement::new(crate::frame::Role::Server, &response, None);
        Some((alloc::string::ToString::to_string(&response), agreement))
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = (request, config);
        None
    }
}

/// Server: the agreement of a handshake answered elsewhere, from its
/// `Sec-WebSocket-Extensions` response.
pub(crate) fn server_agreement(negotiated: &Negotiated) -> Option<Agreement> {
    #[cfg(feature = "deflate")]
    {
        use crate::deflate::{EXTENSION_NAME, elements};
        let value = negotiated.extensions.as_deref()?;
        let deflate = elements(value).filter(|e| {
            e.split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case(EXTENSION_NAME))
        });
        Agreement::from_server_response(deflate)
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = negotiated;
        None
    }
}
