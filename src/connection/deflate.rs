//! permessage-deflate as the connection uses it: one state per connection,
//! with each direction's zlib state allocated on first use.
//!
//! Without the `deflate` feature, [`Pmd`] is uninhabited, so the connection's
//! `Option<Pmd>` is always `None` and its compression paths compile away.

use alloc::vec::Vec;

use crate::error::ProtocolError;

/// Whether a message is sent compressed, when permessage-deflate is in force.
///
/// ```
/// use wsmachine::{Compress, Config, Connection, MessageKind};
/// let mut server = Connection::open_server(Config::default());
/// // Already compressed (an image, say): spare the CPU.
/// server.send_message(MessageKind::Binary, &[0x89, b'P', b'N', b'G'], Compress::Never).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compress {
    /// Compressed when permessage-deflate was negotiated and the message
    /// reaches the configured threshold (fragmented messages always are).
    #[default]
    Auto,
    /// Sent as is.
    Never,
}

#[cfg(feature = "deflate")]
pub(crate) use enabled::{
    Pmd, client_agreement, client_offers, server_agreement, server_negotiate,
};

#[cfg(feature = "deflate")]
mod enabled {
    use super::*;
    use alloc::string::{String, ToString};

    use crate::Config;
    use crate::deflate::{Agreement, Compressor, Decompressor, DeflateConfig, EXTENSION_NAME};
    use crate::deflate::{DeflateParams, elements};
    use crate::frame::Role;
    use crate::handshake::{ClientRequest, ExpectedResponse, Negotiated, Request};

    /// Client: the request with the configured offers added, unless it
    /// offers permessage-deflate itself already (then its offers are used).
    pub(crate) fn client_offers(request: &ClientRequest, config: &Config) -> Option<ClientRequest> {
        let deflate = config.deflate.as_ref()?;
        let offered = request.extension_offers().flat_map(elements).any(|e| {
            DeflateParams::parse(e, false) != Err(crate::deflate::NegotiationError::NotDeflate)
        });
        (!offered).then(|| {
            let mut request = request.clone();
            for offer in &deflate.offers {
                request = request.extension(&offer.to_string());
            }
            request
        })
    }

    /// Client: what the validated response set up.
    pub(crate) fn client_agreement(
        expected: &ExpectedResponse,
        negotiated: &Negotiated,
        config: &Config,
    ) -> Option<Pmd> {
        let agreement = expected.deflate(negotiated).ok().flatten()?;
        Some(Pmd::new(agreement, config.deflate.as_ref()))
    }

    /// Server: the `Sec-WebSocket-Extensions` response to a request, and the
    /// state it sets up, if an offer is accepted.
    pub(crate) fn server_negotiate(request: &Request, config: &Config) -> Option<(String, Pmd)> {
        let deflate = config.deflate.as_ref()?;
        let response = deflate.negotiate(request.extensions())?;
        let agreement = Agreement::new(Role::Server, &response, None);
        Some((response.to_string(), Pmd::new(agreement, Some(deflate))))
    }

    /// Server: the state a handshake answered elsewhere set up, from its
    /// `Sec-WebSocket-Extensions` response.
    pub(crate) fn server_agreement(negotiated: &Negotiated, config: &Config) -> Option<Pmd> {
        let value = negotiated.extensions.as_deref()?;
        let deflate = elements(value).filter(|e| {
            e.split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case(EXTENSION_NAME))
        });
        let agreement = Agreement::from_server_response(deflate)?;
        Some(Pmd::new(agreement, config.deflate.as_ref()))
    }

    /// The permessage-deflate state of a connection.
    #[derive(Debug)]
    pub(crate) struct Pmd {
        agreement: Agreement,
        level: u32,
        threshold: usize,
        compressor: Option<Compressor>,
        decompressor: Option<Decompressor>,
        /// Compressed output, encoded into a frame from here.
        scratch: Vec<u8>,
    }

    impl Pmd {
        pub fn new(agreement: Agreement, config: Option<&DeflateConfig>) -> Self {
            let defaults = DeflateConfig::default();
            let config = config.unwrap_or(&defaults);
            Self {
                agreement,
                level: config.level,
                threshold: config.threshold,
                compressor: None,
                decompressor: None,
                scratch: Vec::new(),
            }
        }

        /// Whether to compress a message that starts with `len` bytes.
        pub fn wants(&self, len: usize, fragmented: bool, compress: Compress) -> bool {
            compress == Compress::Auto && (fragmented || len >= self.threshold)
        }

        /// Compresses the next fragment of a message into a buffer that the
        /// caller encodes and hands back with [`Self::restore`].
        pub fn compress(&mut self, data: &[u8], end: bool) -> Vec<u8> {
            let a = &self.agreement;
            let compressor = self.compressor.get_or_insert_with(|| {
                Compressor::new(self.level, a.own_window_bits, a.own_no_context_takeover)
            });
            let mut out = core::mem::take(&mut self.scratch);
            out.clear();
            compressor.compress(data, end, &mut out);
            out
        }

        /// Takes back the buffer [`Self::compress`] handed out, keeping a
        /// modest one for the next message.
        pub fn restore(&mut self, mut scratch: Vec<u8>) {
            if scratch.capacity() > 64 << 10 {
                scratch = Vec::new();
            }
            self.scratch = scratch;
        }

        /// Inflates compressed payload into `out`, at most `max_out` bytes:
        /// (input consumed, all done).
        pub fn inflate(
            &mut self,
            input: &[u8],
            end_of_message: bool,
            out: &mut Vec<u8>,
            max_out: usize,
        ) -> Result<(usize, bool), ProtocolError> {
            let a = &self.agreement;
            let decompressor = self.decompressor.get_or_insert_with(|| {
                Decompressor::new(a.peer_window_bits, a.peer_no_context_takeover)
            });
            decompressor
                .decompress(input, end_of_message, out, max_out)
                .map(|r| (r.consumed, r.done))
                .map_err(|e| ProtocolError::InvalidCompressedData(e.0))
        }

        /// Heap bytes of the buffers (the zlib states are documented apart).
        pub fn memory_usage(&self) -> usize {
            self.scratch.capacity()
        }
    }
}

/// Without the feature: never constructed.
#[cfg(not(feature = "deflate"))]
#[derive(Debug)]
pub(crate) enum Pmd {}

#[cfg(not(feature = "deflate"))]
#[allow(clippy::unused_self)]
impl Pmd {
    pub fn wants(&self, _: usize, _: bool, _: Compress) -> bool {
        match *self {}
    }
    pub fn compress(&mut self, _: &[u8], _: bool) -> Vec<u8> {
        match *self {}
    }
    pub fn restore(&mut self, _: Vec<u8>) {
        match *self {}
    }
    pub fn inflate(
        &mut self,
        _: &[u8],
        _: bool,
        _: &mut Vec<u8>,
        _: usize,
    ) -> Result<(usize, bool), ProtocolError> {
        match *self {}
    }
    pub fn memory_usage(&self) -> usize {
        match *self {}
    }
}

#[cfg(not(feature = "deflate"))]
mod disabled {
    use super::Pmd;
    use crate::Config;
    use crate::handshake::{ClientRequest, ExpectedResponse, Negotiated, Request};

    pub(crate) fn client_offers(_: &ClientRequest, _: &Config) -> Option<ClientRequest> {
        None
    }
    pub(crate) fn client_agreement(
        _: &ExpectedResponse,
        _: &Negotiated,
        _: &Config,
    ) -> Option<Pmd> {
        None
    }
    pub(crate) fn server_negotiate(
        _: &Request,
        _: &Config,
    ) -> Option<(alloc::string::String, Pmd)> {
        None
    }
    pub(crate) fn server_agreement(_: &Negotiated, _: &Config) -> Option<Pmd> {
        None
    }
}

#[cfg(not(feature = "deflate"))]
pub(crate) use disabled::{client_agreement, client_offers, server_agreement, server_negotiate};
