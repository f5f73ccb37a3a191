//! The connection state machine: open → closing → closed (RFC 6455 §5–§7).

pub(crate) mod deflate;
mod event;
mod recv;
mod timers;
mod transmit;

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::ops::Range;
use core::time::Duration;

pub use deflate::Compress;
use deflate::Pmd;
pub use event::{CloseInfo, Event, Fragment, Initiator, OwnedEvent};
use recv::Rx;
use timers::{Due, Phase, Timers};
pub use transmit::Transmit;

use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN};
use crate::config::{Config, MessageMode};
use crate::entropy::Entropy;
use crate::error::{Error, ProtocolError, Timeout, UsageError};
use crate::frame::{
    Decoded, DecoderConfig, FrameDecoder, FrameHeader, OpCode, Role, Status, apply_mask,
    encode_frame,
};
use crate::handshake::{
    self, Accept, ClientRequest, ExpectedResponse, HandshakeError, Negotiated, Reject, Request,
};
use crate::message::{FrameClass, MessageKind, MessageReader};
use crate::utf8::{self, Utf8Validator};

/// The most [`Connection::recv_buffer`] reserves ahead for a frame's announced length.
const MAX_READ_AHEAD: u64 = 1 << 20;

/// Unsent bytes under which every ping gets a pong of its own; from there on,
/// a newer ping's pong replaces the unsent one (see `Core::queue_pong`).
const PONG_BACKLOG: usize = 4096;

/// A WebSocket connection as a state machine, for either role, with no I/O.
///
/// The verbs come in three families:
///
/// - **inputs**: [`handle_read`](Self::handle_read) (or
///   [`recv_buffer`](Self::recv_buffer) + [`commit_recv`](Self::commit_recv) to read
///   straight into the connection's buffer), [`handle_eof`](Self::handle_eof) and
///   [`handle_timeout`](Self::handle_timeout);
/// - **commands**: [`send_text`](Self::send_text), [`send_binary`](Self::send_binary),
///   [`send_fragment`](Self::send_fragment), [`send_ping`](Self::send_ping),
///   [`send_pong`](Self::send_pong), [`close`](Self::close);
/// - **outputs**: [`poll_event`](Self::poll_event),
///   [`poll_transmit`](Self::poll_transmit) / [`transmitted`](Self::transmitted),
///   [`poll_timeout`](Self::poll_timeout) and
///   [`should_close_transport`](Self::should_close_transport).
///
/// After every input or command, drain the outputs: events first (handling an
/// event can queue bytes, such as a pong or a close echo), then transmits.
///
/// ```
/// use wsmachine::{Config, Connection, Event, SeededEntropy};
/// let mut client = Connection::open_client(Config::default(), SeededEntropy::new(1));
/// let mut server = Connection::open_server(Config::default());
///
/// client.send_text("hello").unwrap();
/// server.handle_read(client.poll_transmit().unwrap());
/// let n = client.poll_transmit().unwrap().len();
/// client.transmitted(n);
///
/// assert_eq!(server.poll_event(), Some(Event::Text("hello")));
/// assert_eq!(server.poll_event(), None);
/// ```
pub struct Connection {
    /// Every received byte lives here ...
    rx: Rx,
    /// ... and all protocol state here, so an event can borrow bytes from `rx`
    /// while a failure path mutates `core`.
    core: Core,
}

struct Core {
    role: Role,
    config: Config,
    entropy: Option<Box<dyn Entropy + Send>>,
    state: State,
    decoder: FrameDecoder,
    reader: MessageReader,
    /// How the frame being read is handled, once its header is read.
    frame: Option<Disposition>,
    /// What to drop at the next mutation: the bytes of the event handed out.
    release: Release,
    /// An event parsed by [`Connection::has_event`] and not yet handed out.
    pending: Option<Ready>,
    /// Streaming mode: whether the message in progress has delivered a piece.
    streamed: bool,
    eof: bool,
    tx: Vec<u8>,
    tx_pos: usize,
    /// Where in `tx` the latest automatic pong waits whole and unsent: under
    /// a backlog, a newer ping replaces it (RFC 6455 §5.5.3).
    pong_at: Option<usize>,
    /// The kind of the fragmented message being sent, if any.
    tx_message: Option<MessageKind>,
    tx_utf8: Utf8Validator,
    /// What the opening handshake settled.
    negotiated: Negotiated,
    /// The [`Event::Open`] is due.
    announce_open: bool,
    /// Handshake bytes already searched for the end of the header block.
    scanned: usize,
    /// permessage-deflate, once negotiated (boxed: a connection without it
    /// carries a pointer, not the state).
    pmd: Option<Box<Pmd>>,
    /// The message being received is compressed (RSV1 on its first frame).
    rx_compressed: bool,
    /// Bytes inflated so far for the message being received.
    inflated: u64,
    /// Streaming: inflation stopped at a full piece and resumes with the next
    /// event; `Some(frame_end)` for the frame whose payload is held.
    inflate_pending: Option<bool>,
    /// The fragmented message being sent is compressed.
    tx_compressed: bool,
    /// Keepalive, handshake, close and idle deadlines, as data.
    timers: Timers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// A control frame, kept whole in the receive buffer.
    Control(OpCode),
    /// A single-frame message in whole-message mode, kept in place and handed out without a copy.
    InPlace(MessageKind),
    /// A fragment of a message in whole-message mode, copied to the assembly buffer.
    Assembled,
    /// Streaming mode: each chunk is handed out as it arrives.
    Streamed(MessageKind),
    /// A frame of a compressed message (RFC 7692 §7.2.2), inflated into the
    /// assembly buffer as it arrives.
    Inflate(MessageKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    Nothing,
    Held,
    Message,
}

enum State {
    /// Client: the request is queued; waiting for the server's response.
    AwaitResponse(Box<ExpectedResponse>),
    /// Server: waiting for the client's request.
    AwaitRequest,
    /// Server: the request was handed out; waiting for `accept` or `reject`.
    RequestReceived(Box<Request>),
    Open,
    /// We sent a close frame and wait for the peer's (RFC 6455 §7.1.3: CLOSING).
    CloseSent,
    /// The connection is over; `reported` once the event was handed out.
    Closed {
        info: Box<CloseInfo>,
        reported: bool,
    },
}

/// An event found by the parser, turned into an [`Event`] when handed out.
/// Payloads are the receive buffer's held bytes (`Rx::held`), which stay valid
/// when the buffer is compacted, or the assembly buffer: no positions to go stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    /// A whole message; text is already validated.
    Message(MessageKind, Source),
    /// A streamed piece of a message.
    Piece {
        kind: MessageKind,
        first: bool,
        last: bool,
        source: Source,
    },
    Ping,
    Pong,
    Request,
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The held bytes of the receive buffer.
    InPlace,
    /// The assembly buffer (also where compressed messages are inflated).
    Assembled,
}

impl Connection {
    /// A client connection that starts with the opening handshake: the request
    /// is queued to transmit at once, with a `Sec-WebSocket-Key` from `entropy`
    /// (which also supplies the masking keys).
    ///
    /// ```
    /// use wsmachine::{Config, Connection, SeededEntropy, handshake::ClientRequest};
    /// let request = ClientRequest::new("ws://127.0.0.1:9001/chat").unwrap();
    /// let client = Connection::client(&request, Config::default(), SeededEntropy::new(1)).unwrap();
    /// assert!(client.poll_transmit().unwrap().starts_with(b"GET /chat HTTP/1.1\r\n"));
    /// ```
    pub fn client(
        request: &ClientRequest,
        config: Config,
        entropy: impl Entropy + Send + 'static,
    ) -> Result<Self, Error> {
        request.validate().map_err(UsageError::from)?;
        let offering = deflate::client_offers(request, &config);
        let request = offering.as_ref().unwrap_or(request);
        let mut conn = Self::new(Role::Client, config, Some(Box::new(entropy)), State::Open);
        let mut nonce = [0; 16];
        if let Some(entropy) = conn.core.entropy.as_mut() {
            entropy.fill(&mut nonce);
        }
        let expected = request.encode(nonce, &mut conn.core.tx);
        conn.core.state = State::AwaitResponse(Box::new(expected));
        Ok(conn)
    }

    /// A server connection that starts by reading the client's upgrade request;
    /// it is handed out as [`Event::Request`] to [`accept`](Self::accept) or
    /// [`reject`](Self::reject).
    pub fn server(config: Config) -> Self {
        Self::new(Role::Server, config, None, State::AwaitRequest)
    }

    /// A client connection whose opening handshake is already done (for
    /// example a stream upgraded elsewhere). `entropy` supplies masking keys.
    pub fn open_client(config: Config, entropy: impl Entropy + Send + 'static) -> Self {
        Self::new(Role::Client, config, Some(Box::new(entropy)), State::Open)
    }

    /// A server connection whose opening handshake is already done.
    pub fn open_server(config: Config) -> Self {
        Self::new(Role::Server, config, None, State::Open)
    }

    /// A server connection whose opening handshake another HTTP stack did,
    /// reporting what it settled in [`negotiated`](Self::negotiated). As with
    /// [`open_server`](Self::open_server), no [`Event::Open`] is handed out.
    /// A permessage-deflate response in `negotiated.extensions` is applied
    /// (with the level and threshold of [`Config::deflate`], or their
    /// defaults); other extensions are reported, not applied: accept no
    /// extension this crate does not implement.
    ///
    /// With the `http` feature, the handshake can be validated and answered
    /// with this crate's rules on the HTTP stack's types:
    ///
    /// ```
    /// # #[cfg(feature = "http")] {
    /// use wsmachine::handshake::{Accept, Negotiated, Request, accept_response_http};
    /// use wsmachine::{Config, Connection};
    ///
    /// // The request as hyper or axum hands it to a handler.
    /// let req = http::Request::get("/chat")
    ///     .header("Host", "example.com")
    ///     .header("Upgrade", "websocket")
    ///     .header("Connection", "Upgrade")
    ///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("Sec-WebSocket-Version", "13")
    ///     .header("Sec-WebSocket-Protocol", "chat, superchat")
    ///     .body(())
    ///     .unwrap();
    /// let response = match Request::from_http(&req) {
    ///     Ok(request) => {
    ///         let accept = Accept::new().protocol("chat");
    ///         let response = accept_response_http(&request, &accept).unwrap();
    ///         // The handler returns `response`; the upgraded stream then carries frames.
    ///         let negotiated = Negotiated {
    ///             protocol: accept.selected_protocol().map(String::from),
    ///             extensions: None,
    ///         };
    ///         let conn = Connection::open_server_negotiated(Config::default(), negotiated);
    ///         assert_eq!(conn.negotiated().protocol.as_deref(), Some("chat"));
    ///         assert!(conn.is_open());
    ///         response.map(|()| Vec::new())
    ///     }
    ///     // The status for the error (400, 405, 426, ...).
    ///     Err(e) => wsmachine::handshake::Reject::new(e.http_status().unwrap_or(400)).into_http().unwrap(),
    /// };
    /// assert_eq!(response.status(), 101);
    /// # }
    /// ```
    pub fn open_server_negotiated(config: Config, negotiated: Negotiated) -> Self {
        let mut conn = Self::open_server(config);
        let pmd = deflate::server_agreement(&negotiated, &conn.core.config);
        conn.core.set_deflate(pmd);
        conn.core.negotiated = negotiated;
        conn
    }

    /// A client connection whose opening handshake another HTTP stack did:
    /// an HTTP/1.1 upgrade ([`ClientRequest::to_http`](crate::handshake::ClientRequest::to_http))
    /// or an HTTP/2 extended CONNECT (RFC 8441,
    /// [`ClientRequest::to_extended_connect`](crate::handshake::ClientRequest::to_extended_connect)),
    /// with `expected` from the request and `negotiated` from
    /// [`validate_http_response`](crate::handshake::validate_http_response).
    /// A permessage-deflate agreement in `negotiated.extensions` is applied;
    /// `negotiated` must be what that validation returned for `expected`
    /// (an extension it did not check is not applied). `entropy` supplies
    /// masking keys. No [`Event::Open`] is handed out.
    /// See the [`handshake`](crate::handshake) module's RFC 8441 example.
    pub fn open_client_negotiated(
        config: Config,
        entropy: impl Entropy + Send + 'static,
        expected: &ExpectedResponse,
        negotiated: Negotiated,
    ) -> Self {
        let mut conn = Self::open_client(config, entropy);
        let pmd = deflate::client_agreement(expected, &negotiated, &conn.core.config);
        conn.core.set_deflate(pmd);
        conn.core.negotiated = negotiated;
        conn
    }

    fn new(
        role: Role,
        config: Config,
        entropy: Option<Box<dyn Entropy + Send>>,
        state: State,
    ) -> Self {
        let decoder = FrameDecoder::new(DecoderConfig {
            role,
            max_frame_size: config.max_frame_size,
            allowed_rsv: 0,
        });
        let reader = MessageReader::new(config.max_message_size);
        Self {
            rx: Rx::new(
                config.retain_buffer_size,
                config.buffer_release_delay.is_zero(),
            ),
            core: Core {
                role,
                config,
                entropy,
                state,
                decoder,
                reader,
                frame: None,
                release: Release::Nothing,
                pending: None,
                streamed: false,
                eof: false,
                tx: Vec::new(),
                tx_pos: 0,
                pong_at: None,
                tx_message: None,
                tx_utf8: Utf8Validator::new(),
                negotiated: Negotiated::default(),
                announce_open: false,
                scanned: 0,
                pmd: None,
                rx_compressed: false,
                inflated: 0,
                inflate_pending: None,
                tx_compressed: false,
                timers: Timers::default(),
            },
        }
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.core.role
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// What the opening handshake settled (empty for connections created open).
    pub fn negotiated(&self) -> &Negotiated {
        &self.core.negotiated
    }

    /// Whether messages may be sent: the handshake is done and no close frame
    /// was sent or received.
    pub fn is_open(&self) -> bool {
        matches!(self.core.state, State::Open)
    }

    /// Whether the connection is over (the [`Event::Closed`] may still be pending).
    /// Once closed and its transmits are drained, the transport can be closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.core.state, State::Closed { .. })
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        match &self.core.state {
            State::Closed { info, .. } => Some(info),
            _ => None,
        }
    }

    /// Heap bytes held by the connection's buffers (receive, assembly and
    /// transmit), for monitoring memory. It stays bounded by the limits in
    /// [`Config`], the read size and the unsent output.
    ///
    /// With permessage-deflate, each direction's zlib state adds to this once
    /// used: see the [`deflate`](crate::deflate) module for its size per window.
    pub fn memory_usage(&self) -> usize {
        self.rx.buf.capacity()
            + self.rx.message.capacity()
            + self.core.tx.capacity()
            + self.core.pmd.as_ref().map_or(0, |pmd| pmd.memory_usage())
    }

    // ----- inputs -----

    /// Input: bytes received from the peer. They are copied into the
    /// connection's buffer and parsed by [`poll_event`](Self::poll_event).
    /// Bytes received after the connection closed are discarded.
    pub fn handle_read(&mut self, data: &[u8]) {
        self.rx.lent = false;
        self.settle();
        if !self.is_closed() && !data.is_empty() {
            self.rx.extend(data);
            self.core.received();
        }
    }

    /// Input, without a copy: free space in the receive buffer to read into,
    /// at least [`Config::read_buffer_size`] bytes, except for the first read
    /// into an empty connection (new, or idle for
    /// [`Config::buffer_release_delay`]), which gets
    /// [`Config::retain_buffer_size`] so that a connection waiting for input
    /// holds no more. Report what was read with [`commit_recv`](Self::commit_recv)
    /// (`0` if the read failed or was cancelled).
    pub fn recv_buffer(&mut self) -> &mut [u8] {
        self.settle();
        let mut want = self.core.config.read_buffer_size.max(1);
        // A frame kept whole in place may take its remainder in one read, up to
        // 1 MiB ahead of what arrived: an announced length is not trusted further.
        if let Some(Disposition::Control(_) | Disposition::InPlace(_)) = self.core.frame {
            let unparsed = (self.rx.end - self.rx.cursor) as u64;
            let missing = self.core.decoder.remaining().saturating_sub(unparsed);
            want = want.max(missing.min(MAX_READ_AHEAD) as usize);
        }
        self.rx.reserve(want);
        self.rx.lent = true;
        &mut self.rx.buf[self.rx.end..]
    }

    /// Input: `n` bytes were written at the start of [`recv_buffer`](Self::recv_buffer).
    /// `n` is clamped to the buffer handed out.
    pub fn commit_recv(&mut self, n: usize) {
        self.rx.lent = false;
        if n == 0 && self.rx.release_at_once {
            self.rx.release_idle(self.rx.retain);
        }
        if self.is_closed() {
            return;
        }
        let n = n.min(self.rx.buf.len() - self.rx.end);
        self.rx.end += n;
        if n > 0 {
            self.core.received();
        }
    }

    /// Input: the peer closed its side of the stream (a read returned 0 bytes).
    /// Bytes already received are still parsed; if the closing handshake has not
    /// completed by then, the connection closes with 1006 (RFC 6455 §7.1.5).
    pub fn handle_eof(&mut self) {
        self.core.eof = true;
    }

    /// Input: the time is `now`, a [`Duration`] since an origin the caller
    /// chooses (adapters use the connection's creation); fires every deadline
    /// that has passed. Time never goes back: an earlier `now` is ignored.
    ///
    /// The first call starts the clock: until then no timer runs (and bytes
    /// received are not timed). Received bytes are timed at the latest `now`
    /// given, so call this before each [`handle_read`](Self::handle_read) /
    /// [`commit_recv`](Self::commit_recv) (it is cheap), and when the deadline
    /// of [`poll_timeout`](Self::poll_timeout) passes. Then drain the outputs:
    /// a timer may queue a ping, a close frame or a 408 response, and end the
    /// connection with [`Event::Closed`] carrying an [`Error::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use wsmachine::{Config, Connection, Event, Timeout};
    /// let mut config = Config::default();
    /// config.keepalive_interval = Some(Duration::from_secs(30));
    /// config.keepalive_timeout = Some(Duration::from_secs(20));
    /// let mut server = Connection::open_server(config);
    /// server.handle_timeout(Duration::ZERO);
    /// assert_eq!(server.poll_timeout(), Some(Duration::from_secs(30)));
    ///
    /// // Silence for 30 s: a keepalive ping goes out ...
    /// server.handle_timeout(Duration::from_secs(30));
    /// assert_eq!(server.poll_transmit().unwrap()[0], 0x89);
    /// assert_eq!(server.poll_timeout(), Some(Duration::from_secs(50)));
    ///
    /// // ... and 20 s more without an answer, the peer is unresponsive.
    /// server.handle_timeout(Duration::from_secs(50));
    /// let Some(Event::Closed(info)) = server.poll_event() else { panic!() };
    /// assert_eq!(info.error(), Some(&Timeout::Keepalive.into()));
    /// ```
    pub fn handle_timeout(&mut self, now: Duration) {
        // No `settle` here: the receive buffer is left as it is, so an adapter
        // may call this between a read into `recv_buffer` and its `commit_recv`.
        // Part of a request arrived (the server answers 408 then).
        let partial = self.rx.end > self.rx.start;
        let core = &mut self.core;
        core.timers.advance(now);
        let now = core.timers.now().unwrap_or(now);
        // Each deadline fired moves the next one past `now` or changes the
        // phase; the bound is a guard, not a limit that is reached.
        for _ in 0..8 {
            match core.timers.next(core.phase(), &core.config) {
                Some((at, due)) if at <= now => core.fire(due, partial),
                _ => break,
            }
        }
        if self.release_due().is_some_and(|at| at <= now) {
            // Idle: every empty buffer goes.
            self.rx.release_idle(0);
            recv::shrink(&mut self.core.tx, 0);
        }
    }

    /// When the empty buffers are to be freed: after
    /// [`Config::buffer_release_delay`] without traffic.
    fn release_due(&self) -> Option<Duration> {
        let core = &self.core;
        let tx = core.tx.is_empty() && core.tx.capacity() > 0;
        // With no delay, buffers are freed as they empty, with no deadline.
        if self.rx.release_at_once || !(tx || self.rx.holding()) {
            return None;
        }
        let idle_since = core.timers.last_activity()?;
        Some(idle_since.saturating_add(core.config.buffer_release_delay))
    }

    /// Output: the earliest deadline the connection wants
    /// [`handle_timeout`](Self::handle_timeout) called at, or `None` (no
    /// timer runs, or the clock has not started). Read it after every input
    /// and command: it moves with them.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let core = &self.core;
        let timer = core
            .timers
            .next(core.phase(), &core.config)
            .map(|(at, _)| at);
        match (timer, self.release_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The round trip time the last answered keepalive ping measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.core.timers.rtt
    }

    /// Output: whether to close the transport now. RFC 6455 §7.1.1: after the
    /// closing handshake the server closes the TCP connection first, so it
    /// holds the TIME_WAIT state; the client waits for that (it reads until
    /// the end of stream) and closes only after
    /// [`Config::close_timeout`]. After a failure, either side closes at once.
    /// Always once the queued bytes are sent.
    pub fn should_close_transport(&self) -> bool {
        let core = &self.core;
        let State::Closed { info, .. } = &core.state else {
            return false;
        };
        self.pending_transmit() == 0
            && (core.role == Role::Server || !info.clean || core.eof || core.timers.linger_expired)
    }

    // ----- outputs -----

    /// Output: the next event, parsing received bytes as needed. Returns `None`
    /// when more input is needed (or after the [`Event::Closed`] was delivered).
    ///
    /// The event borrows the connection until its next mutation.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if !self.has_event() {
            return None;
        }
        let ready = self.core.pending.take()?;
        if matches!(ready, Ready::Message(..) | Ready::Piece { .. }) {
            self.core.timers.message();
        }
        let Self { rx, core } = self;
        core.release = match ready {
            Ready::Message(_, Source::Assembled)
            | Ready::Piece {
                source: Source::Assembled,
                ..
            } => Release::Message,
            Ready::Message(_, Source::InPlace)
            | Ready::Piece {
                source: Source::InPlace,
                ..
            }
            | Ready::Ping
            | Ready::Pong => Release::Held,
            Ready::Request | Ready::Open | Ready::Closed => Release::Nothing,
        };
        let held = &rx.buf[rx.held()];
        let bytes = |source| match source {
            Source::InPlace => held,
            Source::Assembled => &rx.message[..],
        };
        Some(match ready {
            Ready::Message(kind, source) => {
                let bytes = bytes(source);
                match kind {
                    MessageKind::Binary => Event::Binary(bytes),
                    // Validated while parsing: whole, or chunk by chunk.
                    MessageKind::Text => Event::Text(utf8::assume_validated(bytes)),
                }
            }
            Ready::Piece {
                kind,
                first,
                last,
                source,
            } => Event::Fragment(Fragment {
                kind,
                data: bytes(source),
                first,
                last,
            }),
            Ready::Request => match &core.state {
                State::RequestReceived(request) => Event::Request(request),
                _ => unreachable!("Ready::Request is only produced in RequestReceived"),
            },
            Ready::Open => Event::Open(&core.negotiated),
            Ready::Ping => Event::Ping(held),
            Ready::Pong => Event::Pong(held),
            Ready::Closed => match &core.state {
                State::Closed { info, .. } => Event::Closed(info),
                _ => unreachable!("Ready::Closed is only produced once the state is Closed"),
            },
        })
    }

    /// Output: parses received bytes up to the next event without handing it
    /// out, and says whether there is one. Whatever parsing queued (a pong, the
    /// echo of a close, the close frame of a failure) is already in
    /// [`poll_transmit`](Self::poll_transmit), so an adapter can write it
    /// before it hands the event to the application; the next
    /// [`poll_event`](Self::poll_event) returns the event.
    pub fn has_event(&mut self) -> bool {
        // A request parsed but not handed out is stale once the state moved
        // on (the application accepted it, or the handshake timed out).
        if self.core.pending == Some(Ready::Request)
            && !matches!(self.core.state, State::RequestReceived(_))
        {
            self.core.pending = None;
        }
        if self.core.pending.is_none() {
            self.settle();
            self.core.pending = self.parse();
        }
        self.core.pending.is_some()
    }

    /// Output: the bytes waiting to be sent, or `None` if there are none.
    /// Report how many were written with [`transmitted`](Self::transmitted).
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        let pending = &self.core.tx[self.core.tx_pos..];
        (!pending.is_empty()).then_some(pending)
    }

    /// Input: `n` bytes from [`poll_transmit`](Self::poll_transmit) were written.
    /// `n` is clamped to what was pending.
    pub fn transmitted(&mut self, n: usize) {
        self.core.transmitted(n);
    }

    /// Output: appends every byte waiting to be sent to `out` and marks them sent.
    pub fn drain_transmit(&mut self, out: &mut Vec<u8>) {
        let core = &mut self.core;
        if out.is_empty() && core.tx_pos == 0 {
            core::mem::swap(out, &mut core.tx);
        } else {
            out.extend_from_slice(&core.tx[core.tx_pos..]);
        }
        core.transmitted(usize::MAX);
    }

    /// Bytes waiting to be sent.
    pub fn pending_transmit(&self) -> usize {
        self.core.tx.len() - self.core.tx_pos
    }

    // ----- commands -----

    /// Command: sends a text message in one frame, compressed if
    /// permessage-deflate is in force and the text reaches the threshold.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.core
            .send_message(MessageKind::Text, text.as_bytes(), Compress::Auto)
    }

    /// Command: sends a binary message in one frame, compressed if
    /// permessage-deflate is in force and the data reaches the threshold.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.core
            .send_message(MessageKind::Binary, data, Compress::Auto)
    }

    /// [`send_message`](Self::send_message) for text known to be UTF-8 (the
    /// adapters' `send_text(&str)`), which is not validated again.
    #[cfg_attr(not(any(feature = "tokio", feature = "blocking")), allow(dead_code))]
    pub(crate) fn send_message_valid(
        &mut self,
        kind: MessageKind,
        data: &[u8],
    ) -> Result<(), Error> {
        self.core.send_message(kind, data, Compress::Auto)
    }

    /// Command: sends a message in one frame, choosing whether it may be
    /// compressed ([`Compress::Never`] opts this message out of
    /// permessage-deflate). `data` must be UTF-8 for a text message.
    pub fn send_message(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        compress: Compress,
    ) -> Result<(), Error> {
        if kind == MessageKind::Text && !utf8::is_valid(data) {
            return Err(UsageError::InvalidUtf8.into());
        }
        self.core.send_message(kind, data, compress)
    }

    /// Command and output at once, for large payloads: sends `data` as a
    /// message in one frame and hands out the frame header and `data` itself to
    /// be written together (a vectored write), instead of copying `data` into
    /// the transmit buffer. See [`Transmit`] for the write loop; what is left
    /// unwritten when it is dropped is queued as usual, so nothing is lost.
    ///
    /// A client masks its frames and a compressed message is new bytes: those
    /// are queued as by [`send_message`](Self::send_message) with
    /// [`Compress::Auto`], and the [`Transmit`] hands out the transmit buffer.
    /// `data` must be UTF-8 for a text message.
    pub fn send_vectored<'a>(
        &'a mut self,
        kind: MessageKind,
        data: &'a [u8],
    ) -> Result<Transmit<'a>, Error> {
        if kind == MessageKind::Text && !utf8::is_valid(data) {
            return Err(UsageError::InvalidUtf8.into());
        }
        self.send_vectored_valid(kind, data)
    }

    /// [`send_vectored`](Self::send_vectored) for text known to be UTF-8
    /// (the adapters' `send_text(&str)`), which is not validated again.
    pub(crate) fn send_vectored_valid<'a>(
        &'a mut self,
        kind: MessageKind,
        data: &'a [u8],
    ) -> Result<Transmit<'a>, Error> {
        let core = &mut self.core;
        let compress = core.begin_message(data.len(), Compress::Auto)?;
        if compress || core.entropy.is_some() {
            core.queue_data(kind.opcode(), true, compress, data);
            return Ok(Transmit::queued(core));
        }
        let mut header = FrameHeader::new(kind.opcode(), true, None);
        header.payload_len = data.len() as u64;
        Ok(Transmit::new(core, &header, data))
    }

    /// Command: sends one fragment of a message (RFC 6455 §5.4). The first call
    /// starts a message of `kind`; later calls continue it (with the same
    /// `kind`) until one has `fin` set. Text fragments may split a code point,
    /// but together they must be valid UTF-8. Pings, pongs and a close may be
    /// sent between fragments; other messages may not.
    ///
    /// ```
    /// use wsmachine::{Config, Connection, MessageKind};
    /// let mut server = Connection::open_server(Config::default());
    /// server.send_fragment(MessageKind::Text, "hel".as_bytes(), false).unwrap();
    /// server.send_ping(b"between").unwrap();
    /// server.send_fragment(MessageKind::Text, "lo".as_bytes(), true).unwrap();
    /// ```
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.core.send_fragment(kind, data, fin, Compress::Auto)
    }

    /// Command: [`send_fragment`](Self::send_fragment), choosing on the
    /// message's first fragment whether it may be compressed (later
    /// fragments follow that choice). Under [`Compress::Auto`] a fragmented
    /// message is compressed whatever its size; each fragment is flushed, so
    /// its bytes can be sent at once.
    pub fn send_fragment_with(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
        compress: Compress,
    ) -> Result<(), Error> {
        self.core.send_fragment(kind, data, fin, compress)
    }

    /// Command: sends a ping (payload at most 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.core.send_control(OpCode::PING, payload)
    }

    /// Command: sends a pong (payload at most 125 bytes), for example when
    /// [`Config::auto_pong`] is off, or unsolicited as a heartbeat (RFC 6455 §5.5.3).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.core.send_control(OpCode::PONG, payload)
    }

    /// Command: starts the closing handshake (RFC 6455 §7.1.2) with a code that
    /// may be sent on the wire and a reason of at most 123 bytes. No more
    /// messages can be sent; received messages are still delivered until the
    /// peer's close frame arrives.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if !code.is_sendable() {
            return Err(UsageError::InvalidCloseCode(code.0).into());
        }
        let frame =
            CloseFrame::new(code, reason).ok_or(UsageError::CloseReasonTooLong(reason.len()))?;
        self.core.check_open()?;
        self.core.start_close(&frame);
        Ok(())
    }

    /// Command (server): accepts the upgrade request handed out as
    /// [`Event::Request`], queuing the 101 response (RFC 6455 §4.2.2). The
    /// connection is open at once; [`Event::Open`] follows.
    ///
    /// ```
    /// use wsmachine::{Config, Connection, Event, handshake::Accept};
    /// let mut server = Connection::server(Config::default());
    /// server.handle_read(b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    ///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    /// let Some(Event::Request(request)) = server.poll_event() else { panic!() };
    /// assert_eq!(request.path(), "/chat");
    /// server.accept(Accept::new()).unwrap();
    /// assert!(matches!(server.poll_event(), Some(Event::Open(_))));
    /// assert!(server.poll_transmit().unwrap().starts_with(b"HTTP/1.1 101"));
    /// ```
    pub fn accept(&mut self, accept: Accept) -> Result<(), Error> {
        let core = &mut self.core;
        let State::RequestReceived(request) = &core.state else {
            return Err(UsageError::NoPendingRequest.into());
        };
        let (extensions, pmd) = match deflate::server_negotiate(request, &core.config) {
            Some((response, pmd)) => (Some(response), Some(pmd)),
            None => (None, None),
        };
        handshake::accept_response(request, &accept, extensions.as_deref(), &mut core.tx)?;
        core.set_deflate(pmd);
        core.negotiated = Negotiated {
            protocol: accept.protocol,
            extensions,
        };
        core.timers.message();
        core.state = State::Open;
        core.announce_open = true;
        Ok(())
    }

    /// Command (server): refuses the upgrade request handed out as
    /// [`Event::Request`] with an HTTP response. The connection is over: send
    /// the queued response, then close the transport. [`Event::Closed`] follows.
    pub fn reject(&mut self, reject: &Reject) -> Result<(), Error> {
        let core = &mut self.core;
        if !matches!(core.state, State::RequestReceived(_)) {
            return Err(UsageError::NoPendingRequest.into());
        }
        reject.encode(&mut core.tx)?;
        core.close_without_frame(Initiator::Local, None, false);
        Ok(())
    }

    // ----- the parser -----

    /// Drops the bytes of the event handed out last.
    #[inline]
    fn settle(&mut self) {
        match core::mem::replace(&mut self.core.release, Release::Nothing) {
            Release::Nothing => {}
            Release::Held => self.rx.release(),
            Release::Message => self.rx.clear_message(),
        }
    }

    /// Parses received bytes until an event is ready or more bytes are needed.
    fn parse(&mut self) -> Option<Ready> {
        match &mut self.core.state {
            State::Closed { reported, .. } => {
                return (!core::mem::replace(reported, true)).then_some(Ready::Closed);
            }
            State::AwaitRequest | State::AwaitResponse(_) => return self.parse_handshake(),
            State::RequestReceived(_) => return None,
            State::Open | State::CloseSent => {}
        }
        if core::mem::take(&mut self.core.announce_open) {
            return Some(Ready::Open);
        }
        if let Some(frame_end) = self.core.inflate_pending.take() {
            match self.inflate(frame_end) {
                Ok(None) => {}
                Ok(Some(ready)) => return Some(ready),
                Err(e) => {
                    self.core.fail(e);
                    return Some(Ready::Closed);
                }
            }
        }
        if let Some(ready) = self.fast_message() {
            return Some(ready);
        }
        loop {
            let step = {
                let rx = &mut self.rx;
                self.core.decoder.decode(&mut rx.buf[rx.cursor..rx.end])
            };
            let result = match step {
                Ok(Decoded::Partial { .. }) => {
                    if self.core.eof {
                        self.core.end_of_stream();
                        return Some(Ready::Closed);
                    }
                    return None;
                }
                Ok(Decoded::Header { header, len }) => {
                    // Nothing is held between frames: the header bytes go at once.
                    self.rx.cursor += len;
                    self.rx.release();
                    self.begin_frame(&header)
                }
                Ok(Decoded::Payload { len, frame_end }) => {
                    let range = self.rx.cursor..self.rx.cursor + len;
                    self.rx.cursor += len;
                    self.payload(range, frame_end)
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(None) => {}
                Ok(Some(ready)) => return Some(ready),
                Err(e) => {
                    self.core.fail(e);
                    return Some(Ready::Closed);
                }
            }
        }
    }

    /// Reads the opening handshake: the request (server) or response (client).
    /// The bytes after it stay in the receive buffer for the frame layer.
    fn parse_handshake(&mut self) -> Option<Ready> {
        let core = &mut self.core;
        let input = &self.rx.buf[self.rx.cursor..self.rx.end];
        let (limit, fields) = (core.config.max_handshake_size, core.config.max_headers);
        // Scan only the bytes that arrived since the last call, and parse once the
        // header block is complete (or over the limit): a handshake that trickles
        // in byte by byte costs linear time, not quadratic.
        let complete = handshake::header_block(input, core.scanned, limit);
        core.scanned = input.len();
        let parsed = match &core.state {
            _ if matches!(complete, Ok(None)) => Ok(None),
            State::AwaitResponse(expected) => {
                handshake::parse_response(input, expected, limit, fields).map(|status| match status
                {
                    Status::Complete((negotiated, len)) => Some((Ok(negotiated), len)),
                    Status::Partial { .. } => None,
                })
            }
            _ => handshake::parse_request(input, limit, fields).map(|status| match status {
                Status::Complete((request, len)) => Some((Err(request), len)),
                Status::Partial { .. } => None,
            }),
        };
        match parsed {
            Ok(Some((outcome, len))) => {
                self.rx.cursor += len;
                self.rx.release();
                match outcome {
                    Ok(negotiated) => {
                        if let State::AwaitResponse(expected) = &core.state {
                            let pmd =
                                deflate::client_agreement(expected, &negotiated, &core.config);
                            core.set_deflate(pmd);
                        }
                        core.negotiated = negotiated;
                        core.state = State::Open;
                        core.timers.message();
                        Some(Ready::Open)
                    }
                    Err(request) => {
                        core.state = State::RequestReceived(Box::new(request));
                        Some(Ready::Request)
                    }
                }
            }
            Ok(None) if !core.eof => None,
            Ok(None) => {
                core.close_without_frame(Initiator::Remote, Some(HandshakeError::Eof.into()), true);
                Some(Ready::Closed)
            }
            Err(error) => {
                // RFC 6455 §4.2.1: a server answers a bad request with an HTTP error;
                // a client just fails the connection (§4.1).
                if let (Role::Server, Some(status)) = (core.role, error.http_status()) {
                    let body = error.to_string();
                    let _ = handshake::reject_response(status, &[], body.as_bytes(), &mut core.tx);
                }
                core.close_without_frame(Initiator::Local, Some(error.into()), true);
                Some(Ready::Closed)
            }
        }
    }

    /// The fast path for the most common input: an unfragmented, uncompressed
    /// data frame, whole in the buffer, between messages, in whole-message
    /// mode, with a length under 64 KiB. It is handed out in place after one
    /// pass that unmasks it (and validates it as UTF-8 if it is text).
    ///
    /// It enforces the same rules as the general path (masking by role, RSV
    /// bits, the size limits, UTF-8) by taking only frames that pass them:
    /// anything else, valid or not, returns `None` with nothing changed, and
    /// the general path decides.
    #[inline(always)]
    fn fast_message(&mut self) -> Option<Ready> {
        let core = &mut self.core;
        if core.frame.is_some()
            || core.config.mode != MessageMode::Whole
            || core.reader.in_progress().is_some()
        {
            return None;
        }
        let rx = &mut self.rx;
        let buf = rx.buf.get_mut(rx.cursor..rx.end)?;
        let [b0, b1, ..] = *buf else { return None };
        // FIN set, RSV bits clear (RFC 6455 §5.2, RFC 7692 §6.1), text or binary.
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return None,
        };
        // RFC 6455 §5.1: frames to a server are masked, frames to a client not.
        let masked = b1 & 0x80 != 0;
        if masked != (core.role == Role::Server) {
            return None;
        }
        let (len, ext) = match b1 & 0x7F {
            126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 2),
            127 => return None,
            n => (n as usize, 0),
        };
        let header = 2 + ext + 4 * masked as usize;
        // RFC 6455 §10.4: the limits (the general path reports a breach).
        if len as u64 > core.config.max_frame_size.min(core.config.max_message_size)
            || buf.len() < header + len
        {
            return None;
        }
        let (head, rest) = buf.split_at_mut(header);
        let payload = &mut rest[..len];
        if masked {
            let key = [
                head[header - 4],
                head[header - 3],
                head[header - 2],
                head[header - 1],
            ];
            apply_mask(payload, key, 0);
        }
        // RFC 6455 §8.1: text is valid UTF-8, checked while the bytes are hot.
        if kind == MessageKind::Text && !utf8::is_valid(payload) {
            core.fail(ProtocolError::InvalidUtf8);
            return Some(Ready::Closed);
        }
        rx.start = rx.cursor + header;
        rx.cursor = rx.start + len;
        Some(Ready::Message(kind, Source::InPlace))
    }

    fn begin_frame(&mut self, header: &FrameHeader) -> Result<Option<Ready>, ProtocolError> {
        let core = &mut self.core;
        let class = core.reader.begin_frame(header)?;
        // RFC 7692 §6.1: RSV1 (the decoder allows it only with permessage-deflate)
        // marks a compressed message on its first frame, and nowhere else.
        if header.rsv1 && !matches!(class, FrameClass::Data { first: true, .. }) {
            return Err(ProtocolError::CompressedBitMisplaced);
        }
        let disposition = match class {
            FrameClass::Control(opcode) => Disposition::Control(opcode),
            FrameClass::Data { kind, first, fin } => {
                if first {
                    core.streamed = false;
                    core.rx_compressed = header.rsv1;
                    core.inflated = 0;
                }
                match core.config.mode {
                    _ if core.rx_compressed => Disposition::Inflate(kind),
                    MessageMode::Whole if first && fin => Disposition::InPlace(kind),
                    MessageMode::Whole => Disposition::Assembled,
                    MessageMode::Streaming => Disposition::Streamed(kind),
                }
            }
        };
        core.frame = Some(disposition);
        match (header.payload_len, disposition) {
            (0, Disposition::Inflate(_)) => self.inflate(true),
            (0, _) => self.end_frame(true),
            _ => Ok(None),
        }
    }

    fn payload(
        &mut self,
        range: Range<usize>,
        frame_end: bool,
    ) -> Result<Option<Ready>, ProtocolError> {
        let core = &mut self.core;
        let chunk = &self.rx.buf[range.clone()];
        match core.frame {
            // Kept whole in place; text is validated as it arrives, in one pass.
            Some(Disposition::InPlace(_)) => core.reader.data(chunk)?,
            Some(Disposition::Control(_)) | None => {}
            Some(Disposition::Assembled) => {
                core.reader.data(chunk)?;
                // RFC 6455 §10.4: the limit was checked on the header.
                self.rx.message.extend_from_slice(chunk);
                self.rx.release();
            }
            Some(Disposition::Streamed(kind)) => {
                core.reader.data(chunk)?;
                if !frame_end {
                    return Ok(Some(core.piece(kind, false, Source::InPlace)));
                }
            }
            Some(Disposition::Inflate(_)) => return self.inflate(frame_end),
        }
        if frame_end {
            return self.end_frame(range.is_empty());
        }
        Ok(None)
    }

    /// The current frame is complete; `empty_tail`: its last chunk was empty.
    fn end_frame(&mut self, empty_tail: bool) -> Result<Option<Ready>, ProtocolError> {
        let core = &mut self.core;
        let held = &self.rx.buf[self.rx.held()];
        let Some(disposition) = core.frame.take() else {
            return Ok(None);
        };
        Ok(match disposition {
            Disposition::Control(opcode) => core.control(opcode, held)?,
            Disposition::InPlace(_) => core
                .reader
                .end_frame()?
                .map(|kind| Ready::Message(kind, Source::InPlace)),
            Disposition::Assembled => core
                .reader
                .end_frame()?
                .map(|kind| Ready::Message(kind, Source::Assembled)),
            Disposition::Streamed(kind) => {
                let done = core.reader.end_frame()?.is_some();
                // An empty frame that does not end the message has nothing to say.
                (done || !empty_tail).then(|| core.piece(kind, done, Source::InPlace))
            }
            // Ended by `inflate`, which never hands the frame back here.
            Disposition::Inflate(_) => None,
        })
    }

    /// A compressed message's payload arrived (RFC 7692 §7.2.2): inflates the
    /// held bytes into the assembly buffer, checking the limit on the
    /// inflated size as it grows, and validating text as it comes out.
    /// Streaming mode hands out a piece whenever the buffer holds a read's
    /// worth, and resumes from the same held bytes at the next event.
    fn inflate(&mut self, frame_end: bool) -> Result<Option<Ready>, ProtocolError> {
        let Self { rx, core } = self;
        let (Some(Disposition::Inflate(kind)), Some(pmd)) = (core.frame, core.pmd.as_mut()) else {
            return Ok(None);
        };
        let end_of_message = frame_end && core.reader.frame_is_final();
        let streaming = core.config.mode == MessageMode::Streaming;
        let max = core.config.max_message_size;
        // One byte over the limit is room enough to see it broken.
        let mut room = max.saturating_sub(core.inflated).saturating_add(1);
        if streaming {
            let piece = core.config.read_buffer_size.max(1);
            room = room.min(piece.saturating_sub(rx.message.len()) as u64);
        }
        let before = rx.message.len();
        let input = &rx.buf[rx.held()];
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        let inflated = pmd.inflate(input, end_of_message, &mut rx.message, room);
        // What came out before corrupt data is checked first, as it would
        // have been had the data arrived in smaller reads: the error a
        // message fails with does not depend on how the reads split it.
        // In stream order: the bytes within the limit are validated, then
        // the limit is checked (a byte past it fails the message).
        let out = &rx.message[before..];
        let within = usize::try_from(max.saturating_sub(core.inflated)).unwrap_or(usize::MAX);
        core.reader.data(&out[..within.min(out.len())])?;
        core.inflated += out.len() as u64;
        // RFC 6455 §10.4, on the inflated size: a small message cannot expand past the limit.
        if core.inflated > max {
            return Err(ProtocolError::MessageTooLarge {
                len: core.inflated,
                max,
            });
        }
        let (used, done) = inflated?;
        rx.start += used;
        if !done {
            // Only streaming gets here: the piece is full.
            core.inflate_pending = Some(frame_end);
            return Ok(Some(core.piece(kind, false, Source::Assembled)));
        }
        if !frame_end {
            let piece = streaming && !rx.message.is_empty();
            return Ok(piece.then(|| core.piece(kind, false, Source::Assembled)));
        }
        core.frame = None;
        Ok(match core.reader.end_frame()? {
            Some(kind) if !streaming => Some(Ready::Message(kind, Source::Assembled)),
            Some(kind) => Some(core.piece(kind, true, Source::Assembled)),
            None if streaming && !rx.message.is_empty() => {
                Some(core.piece(kind, false, Source::Assembled))
            }
            None => None,
        })
    }
}

impl Core {
    fn piece(&mut self, kind: MessageKind, last: bool, source: Source) -> Ready {
        let first = !core::mem::replace(&mut self.streamed, true);
        Ready::Piece {
            kind,
            first,
            last,
            source,
        }
    }

    /// Puts permessage-deflate in force: RSV1 becomes legal on received frames.
    fn set_deflate(&mut self, pmd: Option<Pmd>) {
        if pmd.is_some() {
            self.decoder.set_allowed_rsv(0x40);
        }
        self.pmd = pmd.map(Box::new);
    }

    /// A whole control frame arrived (RFC 6455 §5.5).
    fn control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<Option<Ready>, ProtocolError> {
        Ok(Some(match opcode {
            OpCode::PING => {
                // RFC 6455 §5.5.2: answer with a pong carrying the same data, unless
                // a close was already sent (nothing more is sent after it).
                if self.config.auto_pong && matches!(self.state, State::Open) {
                    self.queue_pong(payload);
                }
                Ready::Ping
            }
            OpCode::PONG => {
                self.timers.pong(payload);
                Ready::Pong
            }
            _ => {
                let frame = CloseFrame::parse(payload)?;
                let code = frame
                    .as_ref()
                    .map_or(CloseCode::NO_STATUS, CloseFrame::code);
                let initiator = match self.state {
                    // RFC 6455 §5.5.1: answer a close we did not start with a close,
                    // echoing the status code.
                    State::Open => {
                        let echo = frame.as_ref().and_then(|f| CloseFrame::new(f.code(), ""));
                        self.queue_close(echo.as_ref());
                        Initiator::Remote
                    }
                    _ => Initiator::Local,
                };
                self.state = State::Closed {
                    info: Box::new(CloseInfo {
                        code,
                        frame,
                        initiator,
                        clean: true,
                        error: None,
                    }),
                    reported: true,
                };
                self.timers.closed();
                Ready::Closed
            }
        }))
    }

    /// RFC 6455 §7.1.7: fail the connection: send a close with the error's code
    /// (unless one was sent already) and process nothing more.
    fn fail(&mut self, error: ProtocolError) {
        self.abort(error.close_code(), error.into(), true);
    }

    /// Ends the connection at our side with `code`: the close frame (with the
    /// error as its reason, cut to fit) is queued unless one was sent already.
    /// `reported`: the event is handed out by the current call.
    fn abort(&mut self, code: CloseCode, error: Error, reported: bool) {
        let mut reason = error.to_string();
        let mut cut = reason.len().min(MAX_REASON_LEN);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        let frame = CloseFrame::new(code, &reason);
        if matches!(self.state, State::Open) {
            self.queue_close(frame.as_ref());
        }
        self.frame = None;
        self.inflate_pending = None;
        self.state = State::Closed {
            info: Box::new(CloseInfo {
                code,
                frame,
                initiator: Initiator::Local,
                clean: false,
                error: Some(error),
            }),
            reported,
        };
        self.timers.closed();
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2): our close frame goes out.
    fn start_close(&mut self, frame: &CloseFrame) {
        self.queue_close(Some(frame));
        self.state = State::CloseSent;
        self.timers.close_sent();
    }

    /// Bytes were received: a sign of life for the keepalive.
    fn received(&mut self) {
        self.timers.received(self.config.keepalive_needs_pong);
    }

    /// The connection's phase, for its timers.
    fn phase(&self) -> Phase {
        match &self.state {
            State::AwaitResponse(_) | State::AwaitRequest | State::RequestReceived(_) => {
                Phase::Handshake
            }
            State::Open => Phase::Open,
            State::CloseSent => Phase::CloseSent,
            State::Closed { info, .. } => Phase::Closed {
                linger: self.role == Role::Client && info.clean && !self.eof,
            },
        }
    }

    /// A deadline passed. `partial`: part of a request was received.
    fn fire(&mut self, due: Due, partial: bool) {
        match due {
            Due::Handshake => {
                // RFC 9110 §15.5.9: 408 for a request that did not arrive in
                // time; a server that saw none just closes.
                let waiting = matches!(self.state, State::RequestReceived(_));
                if self.role == Role::Server && (partial || waiting) {
                    let body = Timeout::Handshake.to_string();
                    let _ = handshake::reject_response(408, &[], body.as_bytes(), &mut self.tx);
                }
                self.close_without_frame(Initiator::Local, Some(Timeout::Handshake.into()), false);
            }
            Due::Ping => {
                let payload = self
                    .timers
                    .ping_sent(self.config.keepalive_timeout.is_some());
                self.queue(OpCode::PING, true, &payload);
            }
            // The peer probably never sees this close frame; 1001: we are going away.
            Due::Unresponsive => {
                self.abort(CloseCode::GOING_AWAY, Timeout::Keepalive.into(), false)
            }
            Due::Idle => {
                if let Some(frame) = CloseFrame::new(CloseCode::GOING_AWAY, "idle") {
                    self.start_close(&frame);
                }
            }
            Due::Close => {
                self.close_without_frame(Initiator::Local, Some(Timeout::Close.into()), false);
            }
            Due::Linger => self.timers.linger_expired = true,
        }
    }

    /// The connection ends without a close frame from the peer: 1006 (RFC 6455
    /// §7.1.5), when the stream ends, or when the opening handshake fails or is
    /// refused. `reported`: the event is handed out by the current call.
    fn close_without_frame(&mut self, initiator: Initiator, error: Option<Error>, reported: bool) {
        self.state = State::Closed {
            info: Box::new(CloseInfo {
                code: CloseCode::ABNORMAL,
                frame: None,
                initiator,
                clean: false,
                error,
            }),
            reported,
        };
        self.timers.closed();
    }

    /// The stream ended before the closing handshake completed.
    fn end_of_stream(&mut self) {
        let initiator = match self.state {
            State::CloseSent => Initiator::Local,
            _ => Initiator::Remote,
        };
        self.close_without_frame(initiator, None, true);
    }

    /// Queues the automatic answer to a ping. Once [`PONG_BACKLOG`] bytes wait
    /// unsent, it replaces the answer to the previous ping if that one waits
    /// unsent too (RFC 6455 §5.5.3 allows answering only the most recent): a
    /// peer that sends pings and does not read cannot grow the queue.
    fn queue_pong(&mut self, payload: &[u8]) {
        let backlog = self.tx.len() - self.tx_pos;
        if backlog < PONG_BACKLOG {
            self.pong_at = None;
        }
        if let Some(at) = self.pong_at.take() {
            // Our own frame: 2 header bytes, a key if we mask, the payload.
            let len =
                2 + 4 * usize::from(self.tx[at + 1] >> 7) + usize::from(self.tx[at + 1] & 0x7F);
            self.tx.drain(at..at + len);
        }
        self.pong_at = Some(self.tx.len());
        self.queue(OpCode::PONG, true, payload);
    }

    fn queue_close(&mut self, frame: Option<&CloseFrame>) {
        let mut payload = [0; 125];
        let n = frame.map_or(0, |f| f.payload(&mut payload));
        self.queue(OpCode::CLOSE, true, &payload[..n]);
    }

    /// Encodes a frame into the outgoing buffer; a client masks it with a fresh key.
    #[inline]
    fn queue(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        self.queue_frame(opcode, fin, false, payload);
    }

    /// [`queue`](Self::queue) with RSV1, the "Per-Message Compressed" bit (RFC 7692 §6).
    #[inline]
    fn queue_frame(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
        let mask = self.entropy.as_mut().map(|entropy| {
            let mut key = [0; 4];
            entropy.fill(&mut key);
            key
        });
        let mut header = FrameHeader::new(opcode, fin, mask);
        header.rsv1 = rsv1;
        encode_frame(&mut self.tx, &header, payload);
    }

    /// Queues a data frame, compressed when `compress`: RSV1 on a message's
    /// first frame only (RFC 7692 §6.1), the tail stripped at its end (§7.2.1).
    fn queue_data(&mut self, opcode: OpCode, fin: bool, compress: bool, data: &[u8]) {
        match self.pmd.as_mut() {
            Some(pmd) if compress => {
                let payload = pmd.compress(data, fin);
                self.queue_frame(opcode, fin, opcode != OpCode::CONTINUATION, &payload);
                if let Some(pmd) = self.pmd.as_mut() {
                    pmd.restore(payload);
                }
            }
            _ => self.queue(opcode, fin, data),
        }
    }

    /// `n` bytes of the transmit buffer were written.
    fn transmitted(&mut self, n: usize) {
        self.tx_pos = self.tx_pos.saturating_add(n).min(self.tx.len());
        // A pong that began to go out can no longer be replaced.
        if self.pong_at.is_some_and(|at| at < self.tx_pos) || self.tx_pos == self.tx.len() {
            self.pong_at = None;
        }
        if self.tx_pos == self.tx.len() {
            self.tx.clear();
            self.tx_pos = 0;
            if self.config.buffer_release_delay.is_zero() {
                recv::shrink(&mut self.tx, self.config.retain_buffer_size);
            }
        }
    }

    /// Backpressure: a frame with `len` payload bytes may be queued unless it
    /// would take a non-empty transmit buffer past the high-water mark.
    fn check_room(&self, len: usize) -> Result<(), UsageError> {
        let queued = self.tx.len() - self.tx_pos;
        let limit = self.config.max_send_buffer;
        if queued > 0 && queued.saturating_add(len) > limit {
            return Err(UsageError::SendBufferFull {
                queued,
                more: len,
                limit,
            });
        }
        Ok(())
    }

    /// Whether frames may be sent: not before the opening handshake completes
    /// (RFC 6455 §4.1), and nothing after a close frame (§5.5.1).
    fn check_open(&self) -> Result<(), UsageError> {
        match self.state {
            State::Open => Ok(()),
            State::AwaitRequest | State::AwaitResponse(_) | State::RequestReceived(_) => {
                Err(UsageError::HandshakeInProgress)
            }
            State::CloseSent | State::Closed { .. } => Err(UsageError::Closed),
        }
    }

    fn send_message(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        compress: Compress,
    ) -> Result<(), Error> {
        let compress = self.begin_message(data.len(), compress)?;
        self.queue_data(kind.opcode(), true, compress, data);
        Ok(())
    }

    /// Checks that a message of `len` bytes may be sent now and counts it for
    /// the idle timer; returns whether it is to be compressed.
    fn begin_message(&mut self, len: usize, compress: Compress) -> Result<bool, Error> {
        self.check_open()?;
        if self.tx_message.is_some() {
            return Err(UsageError::FragmentInProgress.into());
        }
        self.check_room(len)?;
        self.timers.message();
        Ok(self
            .pmd
            .as_ref()
            .is_some_and(|pmd| pmd.wants(len, false, compress)))
    }

    fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
        compress: Compress,
    ) -> Result<(), Error> {
        self.check_open()?;
        self.check_room(data.len())?;
        let opcode = match self.tx_message {
            None => kind.opcode(),
            Some(current) if current == kind => OpCode::CONTINUATION,
            Some(_) => return Err(UsageError::FragmentKindMismatch.into()),
        };
        if kind == MessageKind::Text {
            // Validate on a copy so that a refused fragment leaves no trace.
            let mut utf8 = self.tx_utf8.clone();
            utf8.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
            if fin {
                utf8.finish().map_err(|_| UsageError::InvalidUtf8)?;
            }
            self.tx_utf8 = utf8;
        }
        if opcode != OpCode::CONTINUATION {
            self.tx_compressed = self
                .pmd
                .as_ref()
                .is_some_and(|pmd| pmd.wants(data.len(), !fin, compress));
        }
        self.queue_data(opcode, fin, self.tx_compressed, data);
        self.tx_message = if fin { None } else { Some(kind) };
        self.timers.message();
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        // RFC 6455 §5.5: control frame payloads are at most 125 bytes.
        if payload.len() > 125 {
            return Err(UsageError::ControlPayloadTooLong(payload.len()).into());
        }
        self.check_room(payload.len())?;
        self.queue(opcode, true, payload);
        Ok(())
    }
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match &self.core.state {
            State::AwaitResponse(_) => "AwaitResponse",
            State::AwaitRequest => "AwaitRequest",
            State::RequestReceived(_) => "RequestReceived",
            State::Open => "Open",
            State::CloseSent => "CloseSent",
            State::Closed { .. } => "Closed",
        };
        f.debug_struct("Connection")
            .field("role", &self.core.role)
            .field("state", &state)
            .field("received", &(self.rx.end - self.rx.start))
            .field("pending_transmit", &self.pending_transmit())
            .finish_non_exhaustive()
    }
}
