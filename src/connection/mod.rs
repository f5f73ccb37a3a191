//! The connection state machine: open → closing → closed (RFC 6455 §5–§7).
//!
//! The map. Each room owns its state and the code that changes it; this file
//! holds the types that tie them together, the constructors and the
//! accessors.
//!
//! | room | what it owns | what it does |
//! |---|---|---|
//! | [`buffer`] | `Rx` | the received bytes: one buffer read into in place, and the assembly buffer |
//! | [`recv`] | `Receiving` | inputs (`handle_read`, `recv_buffer`, `commit_recv`, `handle_eof`), the parser, control frames in, `poll_event` |
//! | [`fast`] | nothing | the receive fast path for a whole small data frame, with its invariants |
//! | [`send`] | `Sending` | the send commands: messages, fragments, pings, pongs |
//! | [`transmit`] | `TxQueue` | the transmit queue: framing and masking, backpressure, pong coalescing, `poll_transmit` |
//! | [`vectored`] | `Transmit` | a large payload written from the caller's buffer |
//! | [`close`] | the `Closed` state | the closing handshake and every ending: fail, abort, end of stream, timeouts |
//! | [`opening`] | `Opening` | the opening handshake as the connection drives it: request, response, accept, reject, 408 |
//! | [`timers`] | `Timers` | deadlines as data: `handle_timeout`, `poll_timeout`, what a deadline fires |
//! | [`deflate`] | `DeflateState` | permessage-deflate's data path: inflating received messages, compressing sent ones |
//! | [`event`] | | what the connection reports |
//! | [`driver`] | `Driver` | the step every adapter runs: what to do next, and what happened |

mod buffer;
mod close;
mod deflate;
pub(crate) mod driver;
mod event;
mod fast;
mod opening;
mod prepared;
mod recv;
mod send;
mod timers;
mod transmit;
mod vectored;

use alloc::boxed::Box;

pub use deflate::Compress;
use deflate::DeflateState;
pub use driver::{Driver, Goal, Step};
pub use event::{CloseInfo, Event, Fragment, Initiator, OwnedEvent};
use opening::Opening;
pub use prepared::{BroadcastReport, Delivery, Lagging, PreparedMessage};
use recv::Receiving;
use send::Sending;
use timers::Timers;
use transmit::TxQueue;
pub use vectored::Transmit;

use crate::config::Config;
use crate::entropy::Entropy;
use crate::error::{Error, UsageError};
use crate::frame::Role;
use crate::handshake::{self, ClientRequest, ExpectedResponse, Negotiated};

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
    rx: buffer::Rx,
    /// ... and all protocol state here, so an event can borrow bytes from `rx`
    /// while a failure path mutates `core`.
    core: Core,
}

/// The protocol state, grouped by the room that owns it.
struct Core {
    role: Role,
    config: Config,
    state: State,
    /// The receive path's parser state ([`recv`]).
    recv: Receiving,
    /// The bytes to transmit, and the entropy that masks them ([`transmit`]).
    tx: TxQueue,
    /// The message being sent ([`send`]).
    send: Sending,
    /// What the opening handshake settled ([`opening`]).
    opening: Opening,
    /// permessage-deflate, once negotiated ([`deflate`]).
    deflate: DeflateState,
    /// Keepalive, handshake, close and idle deadlines, as data ([`timers`]).
    timers: Timers,
}

/// The connection's state, as RFC 6455 names it.
enum State {
    /// Client: the request is queued; waiting for the server's response.
    AwaitResponse(Box<ExpectedResponse>),
    /// Server: waiting for the client's request.
    AwaitRequest,
    /// Server: the request was handed out (it is kept in [`Opening`]);
    /// waiting for `accept` or `reject`.
    RequestReceived,
    Open,
    /// We sent a close frame and wait for the peer's (RFC 6455 §7.1.3: CLOSING).
    CloseSent,
    /// The connection is over; `reported` once the event was handed out.
    Closed {
        info: Box<CloseInfo>,
        reported: bool,
    },
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
        let offering = handshake::extensions::client_offers(request, &config);
        let request = offering.as_ref().unwrap_or(request);
        let mut conn = Self::new(Role::Client, config, Some(Box::new(entropy)), State::Open);
        let expected = conn.core.tx.encode_request(request);
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
        let agreement = handshake::extensions::server_agreement(&negotiated);
        conn.core.set_deflate(agreement);
        conn.core.opening.negotiated = negotiated;
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
        let agreement = handshake::extensions::client_agreement(expected, &negotiated);
        conn.core.set_deflate(agreement);
        conn.core.opening.negotiated = negotiated;
        conn
    }

    fn new(
        role: Role,
        config: Config,
        entropy: Option<Box<dyn Entropy + Send>>,
        state: State,
    ) -> Self {
        Self {
            rx: buffer::Rx::new(
                config.retain_buffer_size,
                config.buffer_release_delay.is_zero(),
            ),
            core: Core {
                role,
                recv: Receiving::new(role, &config),
                tx: TxQueue::new(entropy),
                send: Sending::default(),
                opening: Opening::default(),
                deflate: DeflateState::default(),
                timers: Timers::default(),
                state,
                config,
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
        &self.core.opening.negotiated
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
        self.core.close_info()
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
            + self.core.deflate.memory_usage()
    }
}

impl Core {
    /// The capacity the transmit buffer keeps when it empties, if buffers
    /// are freed at once ([`Config::buffer_release_delay`] is zero).
    fn tx_release_to(&self) -> Option<usize> {
        let config = &self.config;
        config
            .buffer_release_delay
            .is_zero()
            .then_some(config.retain_buffer_size)
    }

    /// Puts permessage-deflate in force: RSV1 becomes legal on received frames.
    fn set_deflate(&mut self, agreement: Option<handshake::extensions::Agreement>) {
        if let Some(agreement) = agreement {
            let wire_limit = deflate::max_wire_frame(self.config.max_frame_size);
            self.recv.allow_compressed(wire_limit);
            self.deflate.start(agreement, &self.config);
        }
    }
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match &self.core.state {
            State::AwaitResponse(_) => "AwaitResponse",
            State::AwaitRequest => "AwaitRequest",
            State::RequestReceived => "RequestReceived",
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
