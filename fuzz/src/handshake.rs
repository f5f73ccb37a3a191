//! The `request_parser` and `response_parser` harnesses: the opening
//! handshake's parsers ([`parse_request`], [`parse_response`]) on arbitrary
//! bytes, checked against a reference model built on `httparse` and against
//! the buffer, then a [`Connection`] created with the handshake to do
//! ([`Connection::server`], [`Connection::client`]) fed the same bytes in reads
//! of varying size, through the `conn` harness's observer (every frame-phase
//! check of `server_connection` / `client_connection` applies once the
//! connection is open, and the differential against merged reads too).
//!
//! Checks, standalone parser:
//! - `Partial` exactly when there is no empty line (`\n\n` or `\n\r\n`: lines
//!   may end in CRLF or a bare LF, as httparse reads them) and the bytes are
//!   within `max_size`; `HeadersTooLarge` exactly when the block (or the bytes
//!   without one) exceed it;
//! - `Complete((_, len))`: `len` is the end of the first empty line, where
//!   httparse ends the block too, within the buffer and the limit, and parsing
//!   `buf[..len]` alone gives the same;
//! - the outcome (value or error) agrees with the reference model: method,
//!   version, `Host`, `Upgrade` / `Connection` tokens, version 13, a key that
//!   decodes to 16 bytes (own strict base64); status 101, tokens,
//!   `Sec-WebSocket-Accept`, extensions and subprotocol offered;
//! - a request's key base64-decodes to 16 bytes; a server-side error has an
//!   HTTP status in {400, 405, 426, 431}; a `Rejected` response has a status
//!   other than 101, the received headers, and the bytes after the header
//!   block as its body.
//!
//! Checks, connection:
//! - the handshake is settled (request / open / failure) on the same outcome
//!   as the parser on the bytes fed by then; commands before it are refused;
//! - server: an accepted request gets exactly [`accept_response`]'s bytes,
//!   which a client that offered the request's subprotocols accepts, then
//!   well-formed frames; a refused or failed one gets exactly the
//!   [`reject_response`] (status `4xx`, `HTTP/1.1 4...`), and nothing follows
//!   the `Closed` event;
//! - client: the request it sends is [`ClientRequest::encode`]'s with the
//!   first 16 bytes of its entropy as nonce; when the handshake fails it never
//!   sends anything else; once open, well-formed masked frames.
//!
//! Input layout, `request_parser` (missing bytes read as 0):
//!
//! | bytes   | meaning                                                                      |
//! |---------|------------------------------------------------------------------------------|
//! | `[0]`   | bits 0–1 `max_handshake_size` ([`HANDSHAKE_SIZES`]); bits 2–3 `max_headers` ([`MAX_HEADERS`]); bits 4–5 the answer: 0, 3 accept, 1 accept selecting the first subprotocol offered, 2 reject; bits 6–7 [`Splice`] mode |
//! | `[1]`   | the template line the splice goes before, or replaces                         |
//! | `[2]`   | `L`, the splice length                                                       |
//! | `[3..]` | a `conn` input (flags, limits, ops, stream); see below                       |
//!
//! `response_parser`:
//!
//! | bytes   | meaning                                                                      |
//! |---------|------------------------------------------------------------------------------|
//! | `[0]`   | bits 0–1 `max_handshake_size`; bits 2–3 `max_headers`; bits 4–5 [`Splice`] mode; bits 6–7 the number of subprotocols offered (of [`PROTOCOLS`]) |
//! | `[1]`   | bits 0–3 the template line; bit 4 offer [`EXTENSION`]; bits 5–6 which offered subprotocol the template selects |
//! | `[2]`   | `L`, the splice length                                                       |
//! | `[3]`   | the client's entropy seed; the nonce is its first 16 bytes                   |
//! | `[4..]` | a `conn` input                                                               |
//!
//! The `conn` input's stream is the bytes received: as is ([`Splice::Raw`]), or
//! its first `L` bytes spliced into a valid request / 101 response
//! ([`REQUEST_LINES`], [`response_lines`]) and the rest after the header block
//! (frames). Its ops split it into reads, with commands and end of stream.

use wsmachine::frame::{Role, Status};
use wsmachine::handshake::{
    Accept, ClientRequest, ExpectedResponse, HandshakeError, Negotiated, Request, accept_key,
    accept_response, parse_request, parse_response, reject_response,
};
use wsmachine::{CloseCode, Connection, Entropy, Error, Initiator, ProtocolError, SeededEntropy};

use crate::conn::{self, Handshake, REJECT_BODY, REJECT_STATUS, Record, Seen};

/// The `max_handshake_size` a run can pick: the default, nothing, less than
/// any valid request, enough for a plain one.
pub const HANDSHAKE_SIZES: [usize; 4] = [16 << 10, 0, 64, 300];

/// The `max_headers` a run can pick: the default, none, exactly what a bare
/// request needs, a few more.
pub const MAX_HEADERS: [usize; 4] = [64, 0, 5, 8];

/// The subprotocols a client can offer, in order.
pub const PROTOCOLS: [&str; 3] = ["chat", "superchat", "v2.json.wsmachine"];

/// The extension a client can offer.
pub const EXTENSION: &str = "permessage-deflate; client_max_window_bits";

/// The URI of the client's request.
pub const URI: &str = "ws://h/";

/// A valid request, line by line (the blank line excluded).
pub const REQUEST_LINES: [&str; 8] = [
    "GET /chat?room=1 HTTP/1.1\r\n",
    "Host: example.com:8080\r\n",
    "Upgrade: websocket\r\n",
    "Connection: keep-alive, Upgrade\r\n",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    "Sec-WebSocket-Version: 13\r\n",
    "Sec-WebSocket-Protocol: chat, superchat\r\n",
    "Origin: http://example.com\r\n",
];

/// Where the fuzzed bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splice {
    /// The stream is the bytes received, as is.
    Raw,
    /// Inserted before template line `n` (after the last if `n` is the count).
    Insert(usize),
    /// In place of template line `n`.
    Replace(usize),
}

impl Splice {
    fn new(mode: u8, line: u8, lines: usize) -> Self {
        match mode & 3 {
            1 => Self::Insert(usize::from(line) % (lines + 1)),
            2 => Self::Replace(usize::from(line) % lines),
            _ => Self::Raw,
        }
    }

    /// The bytes received: `stream` as is, or its first `len` bytes spliced
    /// into `lines` and the rest after the blank line.
    pub fn apply(self, lines: &[String], len: usize, stream: &[u8]) -> Vec<u8> {
        let (at, skip) = match self {
            Self::Raw => return stream.to_vec(),
            Self::Insert(at) => (at, 0),
            Self::Replace(at) => (at, 1),
        };
        let (piece, rest) = stream.split_at(len.min(stream.len()));
        let mut out = Vec::new();
        for line in &lines[..at] {
            out.extend_from_slice(line.as_bytes());
        }
        out.extend_from_slice(piece);
        for line in &lines[at + skip..] {
            out.extend_from_slice(line.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(rest);
        out
    }

    /// The mode bits of [`Splice::new`]: 0 raw, 1 insert, 2 replace.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Raw => 0,
            Self::Insert(_) => 1,
            Self::Replace(_) => 2,
        }
    }

    /// The line byte of [`Splice::new`].
    pub const fn line(self) -> u8 {
        match self {
            Self::Raw => 0,
            Self::Insert(n) | Self::Replace(n) => n as u8,
        }
    }
}

/// A valid 101 response to a request whose accept value is `accept`, line by
/// line (the blank line excluded): it selects `protocol` and `extension` if
/// given (or carries unrelated fields instead, so the line count stays).
pub fn response_lines(accept: &str, protocol: Option<&str>, extension: bool) -> Vec<String> {
    vec![
        "HTTP/1.1 101 Switching Protocols\r\n".into(),
        "Upgrade: websocket\r\n".into(),
        "Connection: Upgrade\r\n".into(),
        format!("Sec-WebSocket-Accept: {accept}\r\n"),
        match protocol {
            Some(p) => format!("Sec-WebSocket-Protocol: {p}\r\n"),
            None => "Server: wsmachine-fuzz\r\n".into(),
        },
        if extension {
            "Sec-WebSocket-Extensions: permessage-deflate\r\n".into()
        } else {
            "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n".into()
        },
    ]
}

/// Builds a `request_parser` input (the inverse of its layout), for seed corpora.
pub fn build_request(
    size_idx: u8,
    headers_idx: u8,
    answer: u8,
    splice: Splice,
    splice_len: u8,
    conn_input: &[u8],
) -> Vec<u8> {
    let mut out = vec![
        (size_idx & 3) | (headers_idx & 3) << 2 | (answer & 3) << 4 | splice.bits() << 6,
        splice.line(),
        splice_len,
    ];
    out.extend_from_slice(conn_input);
    out
}

/// Builds a `response_parser` input (the inverse of its layout), for seed corpora.
#[allow(clippy::too_many_arguments)]
pub fn build_response(
    size_idx: u8,
    headers_idx: u8,
    splice: Splice,
    protocols: u8,
    selected: u8,
    extension: bool,
    splice_len: u8,
    seed: u8,
    conn_input: &[u8],
) -> Vec<u8> {
    let mut out = vec![
        (size_idx & 3) | (headers_idx & 3) << 2 | splice.bits() << 4 | (protocols & 3) << 6,
        (splice.line() & 0x0F) | u8::from(extension) << 4 | (selected & 3) << 5,
        splice_len,
        seed,
    ];
    out.extend_from_slice(conn_input);
    out
}

/// The nonce [`Connection::client`] draws from `SeededEntropy::new(seed)`.
pub fn nonce(seed: u64) -> [u8; 16] {
    let mut nonce = [0; 16];
    SeededEntropy::new(seed).fill(&mut nonce);
    nonce
}

/// The client request for a `response_parser` run.
pub fn client_request(protocols: usize, extension: bool) -> ClientRequest {
    let mut request = ClientRequest::new(URI).unwrap();
    for p in &PROTOCOLS[..protocols] {
        request = request.protocol(p);
    }
    if extension {
        request = request.extension(EXTENSION);
    }
    request
}

/// The end of the first empty line, whether lines end in CRLF or a bare LF.
fn header_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| {
        if buf[i] != b'\n' {
            None
        } else if buf.get(i + 1) == Some(&b'\n') {
            Some(i + 2)
        } else if buf.get(i + 1..i + 3) == Some(b"\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

/// httparse must end the block where the empty line is (it skips empty lines
/// before the start line, which then leaves it short of the block).
fn parsed_to_end(
    outcome: httparse::Result<usize>,
    block: &[u8],
    max_headers: usize,
) -> Result<(), HandshakeError> {
    match outcome {
        Ok(httparse::Status::Complete(n)) if n == block.len() => Ok(()),
        Ok(_) => Err(HandshakeError::Malformed("")),
        Err(e) => Err(httparse_failure(e, max_headers)),
    }
}

/// Fields that may appear once, refused as `DuplicateHeader` when repeated.
fn once(fields: &Fields<'_>, names: &[&'static str]) -> Result<(), HandshakeError> {
    match names.iter().find(|&&name| values(fields, name).count() > 1) {
        Some(name) => Err(HandshakeError::DuplicateHeader(name)),
        None => Ok(()),
    }
}

/// Re-splits a `conn` input so that its stream is `stream`.
fn conn_script(conn_input: &[u8], stream: impl FnOnce(&[u8]) -> Vec<u8>) -> (Vec<u8>, usize) {
    let byte = |i: usize| conn_input.get(i).copied().unwrap_or(0);
    let n = usize::from(byte(5) & 0x1F);
    let ops = &conn_input[6.min(conn_input.len())..(6 + n).min(conn_input.len())];
    let received = stream(&conn_input[(6 + n).min(conn_input.len())..]);
    let script = conn::build(
        byte(0),
        u16::from_le_bytes([byte(1), byte(2)]),
        u16::from_le_bytes([byte(3), byte(4)]),
        ops,
        &received,
    );
    let start = script.len() - received.len();
    (script, start)
}

// ----- the reference model -----

/// Header fields as `httparse` gives them.
type Fields<'a> = Vec<(&'a str, &'a [u8])>;

fn values<'a>(fields: &'a Fields<'_>, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The comma-separated elements of every value of `name`, trimmed, empty ones skipped.
fn tokens<'a>(fields: &'a Fields<'_>, name: &'a str) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for value in values(fields, name) {
        for element in value.split(|&b| b == b',') {
            let element = element.trim_ascii();
            if !element.is_empty() {
                out.push(element);
            }
        }
    }
    out
}

fn has_token(fields: &Fields<'_>, name: &str, token: &str) -> bool {
    tokens(fields, name)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// Strict base64 (RFC 4648 §4, padded, no stray bits) of exactly 16 bytes.
pub fn decode_key(key: &str) -> Option<[u8; 16]> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = key.as_bytes();
    if b.len() != 24 || &b[22..] != b"==" {
        return None;
    }
    let mut out = [0u8; 18];
    for (group, bytes) in b[..22].chunks(4).zip(out.chunks_mut(3)) {
        let mut n = 0u32;
        for (i, &c) in group.iter().enumerate() {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        bytes.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    // The last group holds 2 digits: 12 bits for 1 byte, the other 4 zero.
    if out[16] != 0 || out[17] != 0 {
        return None;
    }
    Some(out[..16].try_into().unwrap())
}

fn httparse_failure(e: httparse::Error, max_headers: usize) -> HandshakeError {
    match e {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders(max_headers),
        _ => HandshakeError::Malformed(""),
    }
}

/// Whether two outcomes are the same error (a `Malformed` message aside).
fn same_error(a: &HandshakeError, b: &HandshakeError) -> bool {
    match (a, b) {
        (HandshakeError::Malformed(_), HandshakeError::Malformed(_)) => true,
        // The model says whether a deflate response is valid, not which rule failed.
        (HandshakeError::InvalidDeflateResponse(_), HandshakeError::InvalidDeflateResponse(_)) => {
            true
        }
        _ => a == b,
    }
}

/// The model's view of a valid request: path, key, fields.
type ModelRequest = (String, String, Vec<(String, Vec<u8>)>);

/// RFC 6455 §4.2.1 on a whole header block.
fn model_request(block: &[u8], max_headers: usize) -> Result<ModelRequest, HandshakeError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut storage);
    parsed_to_end(req.parse(block), block, max_headers)?;
    if req.method != Some("GET") {
        return Err(HandshakeError::MethodNotGet);
    }
    if req.version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }
    let fields: Fields<'_> = req.headers.iter().map(|h| (h.name, h.value)).collect();
    once(
        &fields,
        &[
            "host",
            "sec-websocket-key",
            "sec-websocket-version",
            "origin",
        ],
    )?;
    let first = |name: &'static str| values(&fields, name).next();
    if first("host").is_none_or(|h| h.trim_ascii().is_empty()) {
        return Err(HandshakeError::MissingHost);
    }
    if !has_token(&fields, "upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !has_token(&fields, "connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if first("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = first("sec-websocket-key")
        .and_then(|k| core::str::from_utf8(k).ok())
        .map(|k| k.trim_matches([' ', '\t']))
        .filter(|k| decode_key(k).is_some())
        .ok_or(HandshakeError::InvalidKey)?;
    if first("origin").is_some_and(|o| !o.is_ascii()) {
        return Err(HandshakeError::Malformed("origin"));
    }
    Ok((
        req.path.unwrap_or("/").to_string(),
        key.to_string(),
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect(),
    ))
}

/// What a client offered.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The key sent.
    pub key: String,
    /// The subprotocols offered.
    pub protocols: Vec<String>,
    /// The extension names offered.
    pub extensions: Vec<String>,
}

/// RFC 6455 §4.1 on a whole header block followed by `body`.
fn model_response(
    block: &[u8],
    body: &[u8],
    offer: &Offer,
    max_headers: usize,
) -> Result<Negotiated, HandshakeError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut resp = httparse::Response::new(&mut storage);
    parsed_to_end(resp.parse(block), block, max_headers)?;
    let fields: Fields<'_> = resp.headers.iter().map(|h| (h.name, h.value)).collect();
    let status = resp.code.unwrap_or(0);
    if status != 101 {
        // Compared field by field by the caller.
        return Err(HandshakeError::Rejected(Box::new(
            wsmachine::handshake::Response {
                status,
                reason: resp.reason.unwrap_or("").to_string(),
                headers: Default::default(),
                body: body.to_vec(),
            },
        )));
    }
    // httparse skips empty lines before the status line.
    let line = &block[block
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()..];
    assert!(
        line.starts_with(b"HTTP/1.1 101") || line.starts_with(b"HTTP/1.0 101"),
        "status 101 from a status line that does not say so"
    );
    if !has_token(&fields, "upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !has_token(&fields, "connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    once(&fields, &["sec-websocket-accept"])?;
    if values(&fields, "sec-websocket-accept")
        .next()
        .map(<[u8]>::trim_ascii)
        != Some(accept_key(offer.key.as_bytes()).as_bytes())
    {
        return Err(HandshakeError::AcceptMismatch);
    }
    for ext in tokens(&fields, "sec-websocket-extensions") {
        let name = ext
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        // Extension names are tokens: compared without regard to case.
        if !offer
            .extensions
            .iter()
            .any(|e| e.as_bytes().eq_ignore_ascii_case(name))
        {
            return Err(HandshakeError::UnexpectedExtension);
        }
    }
    let elements = tokens(&fields, "sec-websocket-extensions")
        .into_iter()
        .map(|e| core::str::from_utf8(e).map_err(|_| HandshakeError::UnexpectedExtension))
        .collect::<Result<Vec<_>, _>>()?;
    let extensions = (!elements.is_empty()).then(|| elements.join(", "));
    let protocol = match tokens(&fields, "sec-websocket-protocol")[..] {
        [] => None,
        [p] => Some(
            offer
                .protocols
                .iter()
                .find(|o| o.as_bytes() == p)
                .ok_or(HandshakeError::UnexpectedProtocol)?
                .clone(),
        ),
        _ => return Err(HandshakeError::UnexpectedProtocol),
    };
    // RFC 7692 §5, §7, last: a permessage-deflate answer to an offer by hand
    // is checked as a client must (the offer here allows every response).
    if !model_deflate_response(&elements) {
        return Err(HandshakeError::InvalidDeflateResponse(
            wsmachine::deflate::NegotiationError::InvalidValue,
        ));
    }
    Ok(Negotiated {
        protocol,
        extensions,
    })
}

/// RFC 7692 on the extension elements of a response to the offer
/// `permessage-deflate; client_max_window_bits`, written out again: at most
/// one permessage-deflate element (a name in any case), whose parameters
/// are the four of §7.1, each at most once; the context takeover ones with
/// no value, the window bits ones with a value (maybe quoted, with
/// backslash escapes) from 8 to 15 without a leading zero.
fn model_deflate_response(elements: &[&str]) -> bool {
    let trim = |s: &str| s.trim_matches([' ', '\t']).to_string();
    let mut deflate = elements.iter().flat_map(|e| e.split(',')).filter(|e| {
        let name = trim(e.split(';').next().unwrap_or_default());
        name.eq_ignore_ascii_case("permessage-deflate")
    });
    let (Some(element), None) = (deflate.next(), deflate.next()) else {
        // None, or two: only two is invalid.
        return elements
            .iter()
            .flat_map(|e| e.split(','))
            .filter(|e| {
                trim(e.split(';').next().unwrap_or_default())
                    .eq_ignore_ascii_case("permessage-deflate")
            })
            .count()
            == 0;
    };
    let mut seen = Vec::new();
    for param in element.split(';').skip(1) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (trim(k), Some(trim(v))),
            None => (trim(param), None),
        };
        if seen.contains(&key) {
            return false;
        }
        seen.push(key.clone());
        let value = value.map(|v| match v.strip_prefix('"') {
            None => Some(v),
            Some(quoted) => {
                let inner = quoted.strip_suffix('"')?;
                let mut out = String::new();
                let mut chars = inner.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => out.push(chars.next()?),
                        '"' => return None,
                        c => out.push(c),
                    }
                }
                Some(out)
            }
        });
        let bits_ok = |v: &Option<Option<String>>| {
            matches!(
                v.as_ref().and_then(|v| v.as_deref()),
                Some("8" | "9" | "10" | "11" | "12" | "13" | "14" | "15")
            )
        };
        let ok = match key.as_str() {
            "server_no_context_takeover" | "client_no_context_takeover" => value.is_none(),
            "server_max_window_bits" | "client_max_window_bits" => bits_ok(&value),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

// ----- the standalone parsers -----

/// Checks the size rules shared by both parsers; returns the header block's end.
fn check_framing<T: core::fmt::Debug>(
    buf: &[u8],
    max_size: usize,
    result: &Result<Status<(T, usize)>, HandshakeError>,
) -> Option<usize> {
    let end = header_end(buf);
    let too_large = end.map_or(buf.len() > max_size, |end| end > max_size);
    match result {
        Ok(Status::Partial { needed }) => {
            assert!(*needed > 0);
            assert!(end.is_none(), "Partial with a whole header block");
            assert!(buf.len() <= max_size, "Partial over the limit");
        }
        Ok(Status::Complete((_, len))) => {
            assert_eq!(
                Some(*len),
                end,
                "the block does not end at the first blank line"
            );
            assert!(*len <= buf.len() && *len <= max_size);
            assert!(buf[..*len].ends_with(b"\n\n") || buf[..*len].ends_with(b"\n\r\n"));
        }
        Err(HandshakeError::HeadersTooLarge(max)) => {
            assert_eq!(*max, max_size);
            assert!(too_large, "HeadersTooLarge within the limit");
        }
        Err(e) => {
            assert!(!too_large, "{e:?} for a block over the limit");
            assert!(end.is_some(), "{e:?} without a whole header block");
        }
    }
    if end.is_none() && !too_large {
        assert!(matches!(result, Ok(Status::Partial { .. })), "{result:?}");
    }
    end
}

/// [`parse_request`] on `buf`, checked; returns its result.
pub fn check_request(
    buf: &[u8],
    max_size: usize,
    max_headers: usize,
) -> Result<Status<(Request, usize)>, HandshakeError> {
    let result = parse_request(buf, max_size, max_headers);
    let Some(end) = check_framing(buf, max_size, &result) else {
        return result;
    };
    // The block alone decides.
    assert_eq!(
        parse_request(&buf[..end], max_size, max_headers),
        result,
        "bytes after the header block changed the outcome"
    );
    match (&result, model_request(&buf[..end], max_headers)) {
        (Ok(Status::Complete((req, _))), Ok((path, key, fields))) => {
            assert_eq!(req.path(), path);
            assert_eq!(req.key(), key);
            assert!(
                decode_key(req.key()).is_some(),
                "a key that is not 16 bytes"
            );
            let got: Vec<(String, Vec<u8>)> = req
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect();
            assert_eq!(got, fields);
            assert_eq!(
                req.host(),
                req.headers().get_str("host").unwrap_or_default()
            );
        }
        (Err(HandshakeError::HeadersTooLarge(_)), _) => {}
        (Err(e), Err(model)) => {
            assert!(
                same_error(e, &model),
                "parse_request: {e:?}, model: {model:?}"
            );
            assert!(
                matches!(e.http_status(), Some(400 | 405 | 426 | 431)),
                "{e:?} has no server status"
            );
        }
        (got, model) => panic!("parse_request: {got:?}, model: {model:?}"),
    }
    result
}

/// [`parse_response`] on `buf`, checked; returns its result.
pub fn check_response(
    buf: &[u8],
    expected: &ExpectedResponse,
    offer: &Offer,
    max_size: usize,
    max_headers: usize,
) -> Result<Status<(Negotiated, usize)>, HandshakeError> {
    let result = parse_response(buf, expected, max_size, max_headers);
    let Some(end) = check_framing(buf, max_size, &result) else {
        return result;
    };
    match (
        &result,
        model_response(&buf[..end], &buf[end..], offer, max_headers),
    ) {
        (Ok(Status::Complete((negotiated, _))), Ok(model)) => {
            assert_eq!(*negotiated, model);
            if let Some(p) = &negotiated.protocol {
                assert!(offer.protocols.contains(p), "protocol {p} not offered");
            }
        }
        (Err(HandshakeError::HeadersTooLarge(_)), _) => {}
        (Err(HandshakeError::Rejected(got)), Err(HandshakeError::Rejected(model))) => {
            assert_ne!(got.status, 101);
            assert_eq!((got.status, &got.reason), (model.status, &model.reason));
            assert_eq!(
                got.body,
                &buf[end..],
                "the body is not the bytes after the block"
            );
            // Every field, as received.
            let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
            let mut resp = httparse::Response::new(&mut storage);
            resp.parse(&buf[..end]).unwrap();
            assert!(
                got.headers
                    .iter()
                    .eq(resp.headers.iter().map(|h| (h.name, h.value)))
            );
            if let Some(location) = got.location() {
                assert!((300..400).contains(&got.status));
                assert_eq!(Some(location), got.headers.get_str("Location"));
            }
        }
        (Err(e), Err(model)) => {
            assert!(
                same_error(e, &model),
                "parse_response: {e:?}, model: {model:?}"
            );
        }
        (got, model) => panic!("parse_response: {got:?}, model: {model:?}"),
    }
    result
}

// ----- the connections -----

/// `seen` with the bodies of `Rejected` responses emptied: how much of the body
/// a response carries depends on how the reads were split; so does zlib's
/// description of corrupt compressed data.
fn normalize(seen: &[Seen]) -> Vec<Seen> {
    seen.iter()
        .cloned()
        .map(|mut s| {
            if let Seen::Closed {
                error: Some(Error::Handshake(HandshakeError::Rejected(response))),
                ..
            } = &mut s
            {
                response.body.clear();
            }
            // zlib describes corrupt data differently as it comes in pieces.
            if let Seen::Closed {
                error: Some(Error::Protocol(ProtocolError::InvalidCompressedData(detail))),
                ..
            } = &mut s
            {
                detail.clear();
            }
            s
        })
        .collect()
}

/// Runs `steps` chunked and merged on connections from `make`; checks they agree.
fn run_both(
    make: impl Fn() -> Connection,
    steps: &[conn::Step<'_>],
    handshake: Handshake,
) -> Record {
    let chunked = conn::execute_on(make(), steps, false, handshake);
    let merged = conn::execute_on(make(), steps, true, handshake);
    assert_eq!(
        normalize(&chunked.seen),
        normalize(&merged.seen),
        "splitting reads changed what was seen"
    );
    assert_eq!(
        chunked.wire, merged.wire,
        "splitting reads changed what was sent"
    );
    chunked
}

/// The handshake's entry in `seen`, and what follows it; commands only before.
fn settled(seen: &[Seen]) -> Option<(&Seen, &[Seen])> {
    let i = seen.iter().position(|s| !matches!(s, Seen::Command(..)))?;
    Some((&seen[i], &seen[i + 1..]))
}

/// A connection closed by a failed or refused handshake: code 1006, no close
/// frame, closed by the peer if the stream ended (`Eof`), locally otherwise.
fn handshake_close(seen: &Seen) -> Option<&Error> {
    let Seen::Closed {
        code,
        reason,
        initiator,
        clean,
        error,
    } = seen
    else {
        panic!("not closed: {seen:?}");
    };
    let by = match error {
        Some(Error::Handshake(HandshakeError::Eof)) => Initiator::Remote,
        _ => Initiator::Local,
    };
    assert_eq!(
        (*code, reason.as_str(), *initiator, *clean),
        (CloseCode::ABNORMAL, "", by, false),
        "{seen:?}"
    );
    error.as_ref()
}

/// Base64 of a nonce (RFC 4648 §4).
pub fn encode_key(nonce: [u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in nonce.chunks(3) {
        let mut b = [0u8; 3];
        b[..group.len()].copy_from_slice(group);
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs a `request_parser` input. Panics if an invariant breaks.
pub fn run_request(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let max_size = HANDSHAKE_SIZES[usize::from(byte(0) & 3)];
    let max_headers = MAX_HEADERS[usize::from(byte(0) >> 2 & 3)];
    let handshake = match byte(0) >> 4 & 3 {
        1 => Handshake::Accept { protocol: true },
        2 => Handshake::Reject,
        _ => Handshake::Accept { protocol: false },
    };
    let splice = Splice::new(byte(0) >> 6, byte(1), REQUEST_LINES.len());
    let lines = REQUEST_LINES.map(String::from);
    let (script, start) = conn_script(&data[3.min(data.len())..], |stream| {
        splice.apply(&lines, usize::from(byte(2)), stream)
    });
    let stream = &script[start..];
    let input = conn::parse(&script);

    let _ = check_request(stream, max_size, max_headers);

    let mut config = input.config.clone();
    config.max_handshake_size = max_size;
    config.max_headers = max_headers;
    // The reference model is RFC 6455's handshake: no permessage-deflate offer
    // or answer (the `inflate` target and tests/deflate_* cover those).
    config.deflate = None;
    let record = run_both(
        || Connection::server(config.clone()),
        &input.steps,
        handshake,
    );
    let wire = &record.wire[..];
    let Some(fed) = record.handshake_fed else {
        // Nothing settled: every byte was fed, and it is not a whole request.
        assert!(settled(&record.seen).is_none());
        assert!(wire.is_empty(), "sent before the request was read");
        assert!(matches!(
            parse_request(stream, max_size, max_headers),
            Ok(Status::Partial { .. })
        ));
        return;
    };
    let prefix = &stream[..fed];
    let (first, after) = settled(&record.seen).expect("settled without an event");
    match first {
        Seen::Request(request) => {
            let Ok(Status::Complete((parsed, _))) = parse_request(prefix, max_size, max_headers)
            else {
                panic!("a request the parser does not give");
            };
            assert_eq!(**request, parsed);
            assert_eq!(after.first(), Some(&Seen::Answer(Ok(()))));
            let after = &after[1..];
            match handshake {
                Handshake::Reject => {
                    let mut expected = Vec::new();
                    reject_response(REJECT_STATUS, &[], REJECT_BODY, &mut expected).unwrap();
                    assert_eq!(wire, expected, "not the refusal");
                    assert!(wire.starts_with(b"HTTP/1.1 4"));
                    let closed = after.first().expect("no Closed after the refusal");
                    assert!(handshake_close(closed).is_none());
                }
                _ => {
                    let protocol = match handshake {
                        Handshake::Accept { protocol: true } => request.protocols().next(),
                        _ => None,
                    };
                    let accept = protocol.map_or_else(Accept::new, |p| Accept::new().protocol(p));
                    let mut expected = Vec::new();
                    accept_response(request, &accept, None, &mut expected).unwrap();
                    assert!(wire.starts_with(&expected), "not the 101 response");
                    assert_eq!(
                        after.first(),
                        Some(&Seen::Open(Negotiated {
                            protocol: protocol.map(String::from),
                            extensions: None,
                        }))
                    );
                    // A client that sent this request accepts the response.
                    let nonce = decode_key(request.key()).unwrap();
                    let mut client = ClientRequest::new(URI).unwrap();
                    for p in request.protocols() {
                        client = client.protocol(p);
                    }
                    let expect = client.encode(nonce, &mut Vec::new());
                    let parsed = parse_response(wire, &expect, expected.len(), 64);
                    assert_eq!(
                        parsed,
                        Ok(Status::Complete((
                            Negotiated {
                                protocol: protocol.map(String::from),
                                extensions: None,
                            },
                            expected.len()
                        ))),
                        "a client refuses the 101 response"
                    );
                    conn::check_transmitted(Role::Server, &wire[expected.len()..], false);
                }
            }
        }
        closed @ Seen::Closed { .. } => {
            let Some(Error::Handshake(error)) = handshake_close(closed) else {
                panic!("closed before the request without a handshake error: {closed:?}");
            };
            let parsed = parse_request(prefix, max_size, max_headers);
            if *error == HandshakeError::Eof {
                // The stream ended first: nothing is sent.
                assert!(matches!(parsed, Ok(Status::Partial { .. })));
                assert!(wire.is_empty(), "sent after the stream ended");
            } else {
                assert_eq!(parsed.as_ref().err(), Some(error));
                let status = error.http_status().expect("a failure without a status");
                let mut expected = Vec::new();
                reject_response(status, &[], error.to_string().as_bytes(), &mut expected).unwrap();
                assert!(
                    wire.starts_with(b"HTTP/1.1 4"),
                    "the failure is not answered 4xx"
                );
                assert_eq!(wire, expected, "not the error response");
            }
        }
        other => panic!("the handshake settled on {other:?}"),
    }
}

/// Runs a `response_parser` input. Panics if an invariant breaks.
pub fn run_response(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let max_size = HANDSHAKE_SIZES[usize::from(byte(0) & 3)];
    let max_headers = MAX_HEADERS[usize::from(byte(0) >> 2 & 3)];
    let offered = usize::from(byte(0) >> 6);
    let extension = byte(1) & 0x10 != 0;
    let selected = (offered > 0).then(|| PROTOCOLS[usize::from(byte(1) >> 5 & 3) % offered]);
    let seed = u64::from(byte(3));

    let request = client_request(offered, extension);
    let nonce = nonce(seed);
    let mut request_bytes = Vec::new();
    let expected = request.encode(nonce, &mut request_bytes);
    let offer = Offer {
        key: encode_key(nonce),
        protocols: PROTOCOLS[..offered].iter().map(|p| p.to_string()).collect(),
        extensions: if extension {
            vec!["permessage-deflate".into()]
        } else {
            vec![]
        },
    };
    let lines = response_lines(&accept_key(offer.key.as_bytes()), selected, extension);
    let splice = Splice::new(byte(0) >> 4, byte(1) & 0x0F, lines.len());
    let (script, start) = conn_script(&data[4.min(data.len())..], |stream| {
        splice.apply(&lines, usize::from(byte(2)), stream)
    });
    let stream = &script[start..];
    let input = conn::parse(&script);

    let _ = check_response(stream, &expected, &offer, max_size, max_headers);

    let mut config = input.config.clone();
    config.max_handshake_size = max_size;
    config.max_headers = max_headers;
    // The reference model is RFC 6455's handshake: no permessage-deflate offer
    // or answer (the `inflate` target and tests/deflate_* cover those).
    config.deflate = None;
    let make = || {
        let conn = Connection::client(&request, config.clone(), SeededEntropy::new(seed)).unwrap();
        assert_eq!(
            conn.poll_transmit(),
            Some(&request_bytes[..]),
            "not the request"
        );
        conn
    };
    let record = run_both(make, &input.steps, Handshake::Client);
    let wire = &record.wire[..];
    assert!(wire.starts_with(&request_bytes));
    let Some(fed) = record.handshake_fed else {
        assert!(settled(&record.seen).is_none());
        assert_eq!(
            wire, request_bytes,
            "sent more than the request before the response"
        );
        assert!(matches!(
            parse_response(stream, &expected, max_size, max_headers),
            Ok(Status::Partial { .. })
        ));
        return;
    };
    let prefix = &stream[..fed];
    let parsed = parse_response(prefix, &expected, max_size, max_headers);
    let (first, _) = settled(&record.seen).expect("settled without an event");
    match first {
        Seen::Open(negotiated) => {
            let Ok(Status::Complete((model, _))) = parsed else {
                panic!("open on a response the parser gives as {parsed:?}");
            };
            assert_eq!(*negotiated, model);
            // The request may offer permessage-deflate by hand (then the
            // config's offers are not added); a server that accepts it puts
            // it in force, and the client compresses what it sends.
            let compressed = negotiated
                .extensions
                .as_deref()
                .is_some_and(|e| e.contains("permessage-deflate"));
            conn::check_transmitted(Role::Client, &wire[request_bytes.len()..], compressed);
        }
        closed @ Seen::Closed { .. } => {
            assert_eq!(
                wire, request_bytes,
                "a client sent more than its request when the handshake failed"
            );
            let Some(Error::Handshake(error)) = handshake_close(closed) else {
                panic!("closed before the response without a handshake error: {closed:?}");
            };
            if *error == HandshakeError::Eof {
                assert!(matches!(parsed, Ok(Status::Partial { .. })));
            } else {
                assert_eq!(parsed.as_ref().err(), Some(error));
            }
        }
        other => panic!("the handshake settled on {other:?}"),
    }
}
