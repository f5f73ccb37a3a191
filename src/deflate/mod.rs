//! permessage-deflate (RFC 7692): negotiation in the opening handshake and the
//! compression of message payloads.
//!
//! The [`Connection`](crate::Connection) does all of this itself when
//! [`Config::deflate`](crate::Config::deflate) is set (the default): a client
//! offers, a server picks the first offer it can accept, and both compress
//! and inflate messages with what was agreed. This module is public for users
//! who drive another layer: [`DeflateConfig::negotiate`] and [`DeflateParams`] for an HTTP
//! stack that answers the handshake itself, and [`Compressor`] /
//! [`Decompressor`] for the payload codec on its own.
//!
//! # Memory
//!
//! [`DeflateConfig::memory`] says where a connection's zlib states live
//! ([`Memory`]):
//!
//! - **Shared** (the default, with 12-bit windows and a pool of the
//!   configuration's own; [`DeflateConfig::shared`] with a pool of yours):
//!   connections borrow states from a [`CodecPool`] for one message at a
//!   time. With context
//!   takeover a connection keeps only the last window of bytes of each
//!   direction, which a borrowed state takes as a preset dictionary: the
//!   peer sees the same stream as from a dedicated state. An idle connection
//!   holds no zlib state, only its windows.
//!   [`DeflateConfig::shared_without_context`] keeps nothing at all.
//! - **Dedicated** ([`DeflateConfig::dedicated`]): each connection owns its
//!   compressor and decompressor, allocated when a direction first
//!   compresses, kept for context takeover, and freed when each message is
//!   done without it. The fastest when many connections are busy at once,
//!   and the largest (over 300 KiB a connection).
//!
//! Measured with a counting allocator over 50 server connections, each
//! through the handshake with Chromium's offer and 400 chat messages each way
//! (`cargo run --release --example deflate_memory --features deflate,testing`;
//! zlib-rs 0.6, level 1), the heap a connection holds for permessage-deflate
//! between messages, and the ratio on a JSON-like corpus (server to client):
//!
//! | setting | per connection | JSON ratio |
//! |---|---:|---:|
//! | dedicated, memLevel 8 | 422 KiB | 3.56x |
//! | dedicated, memLevel 1 | 311 KiB | 3.56x |
//! | shared, 15-bit windows | 69 KiB (64 KiB of windows) | 3.50x |
//! | shared, 12-bit windows (default) | 13 KiB (8 KiB of windows) | 3.49x |
//! | shared, 11-bit windows | 9 KiB (4 KiB of windows) | 3.38x |
//! | shared, no context takeover | 5 KiB | 1.01x |
//!
//! A shared setting's windows fill as messages pass: at most 2^bits bytes per
//! direction. The codec alone, per state: a compressor at 15 bits holds 260
//! KiB at memLevel 1 and 371 KiB at 8; at 9 bits 134 and 245 KiB: zlib-rs
//! keeps a 128 KiB hash table whatever the window and memLevel, so a
//! dedicated compressor cannot get smaller. A decompressor holds 46 KiB
//! whatever the window (zlib-rs allocates a 32 KiB window always). A pool
//! holds one state per window size and level in use at the same moment.
//!
//! # Window bits 8
//!
//! zlib (and zlib-rs, and flate2 on top of them) cannot compress with a
//! 256-byte window. As zlib-based peers do (Node's zlib binding turns 8 into
//! 9 for this reason), a window of 8 bits is compressed with 9: zlib never
//! emits a distance over `window - 262` bytes, 250 for a 512-byte window, so
//! the output is valid for a peer inflating with 256 bytes (a unit test
//! checks every distance with a reference inflater). Inflating, 9 bits accept
//! everything a compliant 8-bit peer sends.

mod codec;
mod memory;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

pub use codec::{Compressor, DEFAULT_MEM_LEVEL, Decompressor, InflateError, Inflated};
pub(crate) use memory::Ticket;
pub use memory::{CodecPool, DEFAULT_SHARED_WINDOW_BITS, Memory};

use crate::frame::Role;

/// The extension's registered name (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The smallest and largest LZ77 window, in bits (RFC 7692 §7.1.2).
pub const WINDOW_BITS: core::ops::RangeInclusive<u8> = 8..=15;

/// The `client_max_window_bits` parameter of an offer, which may come with or
/// without a value (RFC 7692 §7.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientWindow {
    /// The parameter is absent: the client cannot be told to use a smaller window.
    #[default]
    Absent,
    /// Present without a value: the server may limit the client's window.
    Supported,
    /// Present with a value: the client's window is at most this many bits,
    /// and the server may lower it further.
    Max(u8),
}

/// The parameters of one permessage-deflate offer or response (RFC 7692 §7.1),
/// as they go on the wire. `None` / `false` / [`ClientWindow::Absent`] leave a
/// parameter out.
///
/// ```
/// use wsmachine::deflate::{ClientWindow, DeflateParams};
/// let offer = DeflateParams {
///     server_max_window_bits: Some(10),
///     client_max_window_bits: ClientWindow::Supported,
///     ..DeflateParams::default()
/// };
/// assert_eq!(offer.to_string(), "permessage-deflate; server_max_window_bits=10; client_max_window_bits");
/// assert_eq!(DeflateParams::parse(&offer.to_string(), false), Ok(offer));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateParams {
    /// The server resets its compression context for every message (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its compression context for every message (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with (§7.1.2.1).
    pub server_max_window_bits: Option<u8>,
    /// The largest window the client compresses with (§7.1.2.2). In a
    /// response it is [`ClientWindow::Absent`] or [`ClientWindow::Max`].
    pub client_max_window_bits: ClientWindow,
}

/// Why a permessage-deflate offer or response is invalid (RFC 7692 §5, §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The element is not a permessage-deflate offer or response.
    #[error("not a permessage-deflate element")]
    NotDeflate,
    /// A parameter RFC 7692 does not define (§7.1).
    #[error("unknown permessage-deflate parameter (RFC 7692 §7.1)")]
    UnknownParameter,
    /// A parameter given twice (RFC 7692 §7.1).
    #[error("duplicate permessage-deflate parameter (RFC 7692 §7.1)")]
    DuplicateParameter,
    /// A value where none is allowed, none where one is required, or window
    /// bits that are not a decimal from 8 to 15 without leading zeros (§7.1.2).
    #[error("invalid permessage-deflate parameter value (RFC 7692 §7.1)")]
    InvalidValue,
    /// The server accepted permessage-deflate more than once (RFC 6455 §9.1).
    #[error("permessage-deflate accepted more than once")]
    DuplicateExtension,
    /// The response is not a valid answer to any offer: a window over the
    /// offered one, `client_max_window_bits` that was not offered, or a
    /// requested `server_no_context_takeover` left out (RFC 7692 §7.1).
    #[error("the permessage-deflate response does not answer any offer (RFC 7692 §7.1)")]
    NotOffered,
}

impl DeflateParams {
    /// Parses one `Sec-WebSocket-Extensions` element, such as
    /// `permessage-deflate; client_max_window_bits`. `response`: apply the
    /// rules for a server's response (`client_max_window_bits` needs a value)
    /// rather than for an offer.
    pub fn parse(element: &str, response: bool) -> Result<Self, NegotiationError> {
        let mut parts = element.split(';');
        let name = parts.next().unwrap_or_default().trim_matches([' ', '\t']);
        if !name.eq_ignore_ascii_case(EXTENSION_NAME) {
            return Err(NegotiationError::NotDeflate);
        }
        let mut params = Self::default();
        let mut seen = [false; 4];
        for part in parts {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim_matches([' ', '\t']), Some(unquote(v)?)),
                None => (part.trim_matches([' ', '\t']), None),
            };
            let index = match key {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return Err(NegotiationError::UnknownParameter),
            };
            if core::mem::replace(&mut seen[index], true) {
                return Err(NegotiationError::DuplicateParameter);
            }
            match (index, value) {
                // §7.1.1: the context takeover parameters have no value.
                (0 | 1, Some(_)) => return Err(NegotiationError::InvalidValue),
                (0, None) => params.server_no_context_takeover = true,
                (1, None) => params.client_no_context_takeover = true,
                // §7.1.2.1: server_max_window_bits always has a value.
                (2, value) => params.server_max_window_bits = Some(window_bits(value)?),
                // §7.1.2.2: optional in an offer, required in a response.
                (_, None) if response => return Err(NegotiationError::InvalidValue),
                (_, None) => params.client_max_window_bits = ClientWindow::Supported,
                (_, value) => {
                    params.client_max_window_bits = ClientWindow::Max(window_bits(value)?)
                }
            }
        }
        Ok(params)
    }

    /// Whether `self`, a response, validly accepts `offer` (RFC 7692 §7.1).
    pub fn answers(&self, offer: &Self) -> bool {
        // §7.1.1.1: an offer's server_no_context_takeover is accepted by echoing it.
        let takeover = !offer.server_no_context_takeover || self.server_no_context_takeover;
        // §7.1.2.1: the server's window is the offered one or smaller.
        let server_window = match (offer.server_max_window_bits, self.server_max_window_bits) {
            (Some(_), None) => false,
            (Some(offered), Some(bits)) => bits <= offered,
            (None, _) => true,
        };
        // §7.1.2.2: client_max_window_bits only if offered, at most the offered value.
        let client_window = match (offer.client_max_window_bits, self.client_max_window_bits) {
            (_, ClientWindow::Absent) => true,
            (ClientWindow::Absent, _) => false,
            (ClientWindow::Supported, ClientWindow::Max(_)) => true,
            (ClientWindow::Max(offered), ClientWindow::Max(bits)) => bits <= offered,
            (_, ClientWindow::Supported) => false,
        };
        takeover && server_window && client_window
    }
}

impl fmt::Display for DeflateParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXTENSION_NAME)?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        if let Some(bits) = self.server_max_window_bits {
            write!(f, "; server_max_window_bits={bits}")?;
        }
        match self.client_max_window_bits {
            ClientWindow::Absent => Ok(()),
            ClientWindow::Supported => f.write_str("; client_max_window_bits"),
            ClientWindow::Max(bits) => write!(f, "; client_max_window_bits={bits}"),
        }
    }
}

/// A parameter value: a token or a quoted string (RFC 6455 §9.1), whose
/// content must then be a token too.
fn unquote(value: &str) -> Result<String, NegotiationError> {
    let value = value.trim_matches([' ', '\t']);
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(String::from(value));
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or(NegotiationError::InvalidValue)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or(NegotiationError::InvalidValue)?),
            '"' => return Err(NegotiationError::InvalidValue),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// RFC 7692 §7.1.2: a decimal from 8 to 15 without leading zeros.
fn window_bits(value: Option<String>) -> Result<u8, NegotiationError> {
    match value.as_deref().map(str::as_bytes) {
        Some([d @ b'8'..=b'9']) => Ok(d - b'0'),
        Some([b'1', d @ b'0'..=b'5']) => Ok(10 + d - b'0'),
        _ => Err(NegotiationError::InvalidValue),
    }
}

/// permessage-deflate settings for a [`Connection`](crate::Connection), in
/// [`Config::deflate`](crate::Config::deflate).
///
/// A client sends [`offers`](Self::offers). A server accepts the first offer
/// it can within its four limits, which also shape its response.
///
/// ```
/// use wsmachine::Config;
/// use wsmachine::deflate::{ClientWindow, DeflateConfig, DeflateParams};
/// let mut deflate = DeflateConfig::default();
/// deflate.level = 1;
/// // Server: let clients keep at most a 4 KiB window (12 bits) in our inflater.
/// deflate.client_max_window_bits = 12;
/// // Client: prefer a small server window, fall back to anything.
/// deflate.offers = vec![
///     DeflateParams { server_max_window_bits: Some(10), client_max_window_bits: ClientWindow::Supported, ..DeflateParams::default() },
///     DeflateParams { client_max_window_bits: ClientWindow::Supported, ..DeflateParams::default() },
/// ];
/// let mut config = Config::default();
/// config.deflate = Some(deflate);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// zlib compression level, 0 (store) to 9 (smallest). Default 1: on
    /// small JSON messages it compresses 15 times as fast as level 6 for 20%
    /// more bytes (3.75x against 4.74x; `benches/deflate.rs` and
    /// `examples/deflate_memory.rs` measure both).
    pub level: u32,
    /// Messages shorter than this many bytes are sent uncompressed. A
    /// fragmented message is compressed whatever its size. Default 32.
    pub threshold: usize,
    /// Client: the offers, in order of preference. Default: one offer,
    /// `permessage-deflate; client_max_window_bits`, as browsers send.
    pub offers: Vec<DeflateParams>,
    /// Server: the largest window it compresses with (8–15). Below 15 it is
    /// always in the response. Default 15.
    pub server_max_window_bits: u8,
    /// Server: the largest window a client may compress with (8–15), which
    /// bounds the server's inflater. Below 15, offers that cannot be limited
    /// (no `client_max_window_bits`) are declined. Default 15.
    pub client_max_window_bits: u8,
    /// Server: reset its compression context for every message. Default off.
    pub server_no_context_takeover: bool,
    /// Server: ask the client to reset its context for every message. Default off.
    pub client_no_context_takeover: bool,
    /// How the zlib states are held: each connection's own, or borrowed from
    /// a pool. Default [`Memory::Shared`] with 12-bit windows and a pool made
    /// with this configuration, which its clones share (see [`Memory::default`]).
    pub memory: Memory,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 1,
            threshold: 32,
            offers: vec![DeflateParams {
                client_max_window_bits: ClientWindow::Supported,
                ..DeflateParams::default()
            }],
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            memory: Memory::default(),
        }
    }
}

impl DeflateConfig {
    /// Server: the response to the first of `offers` (elements of the
    /// client's `Sec-WebSocket-Extensions`, in order) that is a valid
    /// permessage-deflate offer this configuration accepts, or `None` to
    /// decline them all (RFC 7692 §5). Invalid offers are declined, not fatal.
    ///
    /// ```
    /// use wsmachine::deflate::DeflateConfig;
    /// let mut config = DeflateConfig::default();
    /// config.client_max_window_bits = 10;
    /// let offers = ["permessage-deflate; server_max_window_bits", "permessage-deflate; client_max_window_bits=12"];
    /// let response = config.negotiate(offers).unwrap();
    /// assert_eq!(response.to_string(), "permessage-deflate; client_max_window_bits=10");
    /// ```
    pub fn negotiate<'a>(
        &self,
        offers: impl IntoIterator<Item = &'a str>,
    ) -> Option<DeflateParams> {
        offers
            .into_iter()
            .filter_map(|element| DeflateParams::parse(element, false).ok())
            .find_map(|offer| self.accept(&offer))
    }

    /// Server: the response to one valid offer, if this configuration can accept it.
    fn accept(&self, offer: &DeflateParams) -> Option<DeflateParams> {
        let own = self.server_max_window_bits.clamp(8, 15);
        let peer = self.client_max_window_bits.clamp(8, 15);
        let server_max_window_bits = match offer.server_max_window_bits {
            Some(offered) => Some(offered.min(own)),
            None => (own < 15).then_some(own),
        };
        let client_max_window_bits = match offer.client_max_window_bits {
            // The client's window cannot be limited: acceptable only with a full inflater.
            ClientWindow::Absent if peer < 15 => return None,
            ClientWindow::Absent => ClientWindow::Absent,
            ClientWindow::Supported => match self.preferred_client_window(peer) {
                15 => ClientWindow::Absent,
                bits => ClientWindow::Max(bits),
            },
            // §7.1.2.2: answering with the offered value spares the inflater.
            ClientWindow::Max(offered) => {
                ClientWindow::Max(offered.min(self.preferred_client_window(peer)))
            }
        };
        Some(DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        })
    }
}

/// The most bytes a compressed frame may take on the wire for `len` bytes of
/// data: DEFLATE's worst case for data that does not compress (stored
/// blocks, up to about 1/8 more for zlib's smallest memLevel and window),
/// with room for the flushes and block headers. A connection with
/// permessage-deflate in force accepts compressed frames up to this for its
/// `max_frame_size`, and checks `max_message_size` on the inflated message,
/// so a message within the limits passes however its sender compressed it.
///
/// ```
/// use wsmachine::deflate::max_compressed_len;
/// assert_eq!(max_compressed_len(0), 256);
/// assert!(max_compressed_len(1 << 20) > (1 << 20) + (1 << 17));
/// ```
pub const fn max_compressed_len(len: u64) -> u64 {
    len.saturating_add(len >> 3)
        .saturating_add(len >> 6)
        .saturating_add(256)
}

/// What one endpoint does, once permessage-deflate is agreed: the windows and
/// context takeover of its own compressor and of the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// Our compressor's window, in bits.
    pub own_window_bits: u8,
    /// Our compressor resets after every message.
    pub own_no_context_takeover: bool,
    /// The peer's window, which our decompressor needs, in bits.
    pub peer_window_bits: u8,
    /// The peer resets after every message.
    pub peer_no_context_takeover: bool,
}

impl Agreement {
    /// What `role` does under the server's `response`. A client passes the
    /// offer the response answers: its own hints in it (a smaller
    /// `client_max_window_bits`, `client_no_context_takeover`) still bind it.
    pub fn new(role: Role, response: &DeflateParams, offer: Option<&DeflateParams>) -> Self {
        let bits = |b: Option<u8>| b.unwrap_or(15).clamp(8, 15);
        let client_window = match response.client_max_window_bits {
            ClientWindow::Max(b) => Some(b),
            _ => None,
        };
        let server = (
            bits(response.server_max_window_bits),
            response.server_no_context_takeover,
        );
        let offered_window = match offer.map(|o| o.client_max_window_bits) {
            Some(ClientWindow::Max(b)) => b,
            _ => 15,
        };
        let client = (
            bits(client_window).min(offered_window),
            response.client_no_context_takeover
                || offer.is_some_and(|o| o.client_no_context_takeover),
        );
        let (own, peer) = match role {
            Role::Client => (client, server),
            Role::Server => (server, client),
        };
        Self {
            own_window_bits: own.0,
            own_no_context_takeover: own.1,
            peer_window_bits: peer.0,
            peer_no_context_takeover: peer.1,
        }
    }

    /// Client: the agreement a server's `Sec-WebSocket-Extensions` elements
    /// set up for `offers`: `None` if permessage-deflate was not accepted, an
    /// error if the response is invalid or answers no offer (the client then
    /// fails the connection, RFC 7692 §5).
    pub fn from_response<'a>(
        elements: impl IntoIterator<Item = &'a str>,
        offers: &[DeflateParams],
    ) -> Result<Option<Self>, NegotiationError> {
        let mut found = None;
        for element in elements {
            match DeflateParams::parse(element, true) {
                Err(NegotiationError::NotDeflate) => continue,
                Err(e) => return Err(e),
                Ok(_) if found.is_some() => return Err(NegotiationError::DuplicateExtension),
                Ok(response) => found = Some(response),
            }
        }
        let Some(response) = found else {
            return Ok(None);
        };
        let offer = offers
            .iter()
            .find(|offer| response.answers(offer))
            .ok_or(NegotiationError::NotOffered)?;
        Ok(Some(Self::new(Role::Client, &response, Some(offer))))
    }

    /// Server: the agreement from a response it sent (for a handshake
    /// answered by another HTTP stack): `None` if none of the elements is a
    /// valid permessage-deflate response.
    pub fn from_server_response<'a>(elements: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        elements
            .into_iter()
            .find_map(|element| DeflateParams::parse(element, true).ok())
            .map(|response| Self::new(Role::Server, &response, None))
    }
}

/// The elements of a `Sec-WebSocket-Extensions` value, split on commas.
pub(crate) fn elements(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|e| e.trim_matches([' ', '\t']))
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bits_values() {
        for (text, bits) in [("8", Some(8)), ("15", Some(15)), ("\"10\"", Some(10))] {
            let element = alloc::format!("permessage-deflate; server_max_window_bits={text}");
            let parsed = DeflateParams::parse(&element, false).map(|p| p.server_max_window_bits);
            assert_eq!(parsed, Ok(bits), "{text}");
        }
        for text in ["7", "16", "08", "", "1a", "\"9", "+9", "9.0"] {
            let element = alloc::format!("permessage-deflate; server_max_window_bits={text}");
            assert_eq!(
                DeflateParams::parse(&element, false),
                Err(NegotiationError::InvalidValue),
                "{text}"
            );
        }
    }
}
