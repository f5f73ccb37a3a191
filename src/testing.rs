//! A test kit: a client and a server [`Connection`] wired back to back in
//! memory, with a virtual clock and full control over how bytes travel.
//!
//! Everything here is deterministic: no sockets, no threads, no sleeps, no
//! real time and no OS randomness (the client masks with a
//! [`SeededEntropy`]). A test decides when each side writes, how much of what
//! is in flight arrives in one read, when time passes, and when a stream ends,
//! so the schedules that are rare on a network (a frame split at every byte,
//! a close crossing a message, a peer that stops reading, a connection cut
//! mid-frame) can be played on purpose and replayed from a seed.
//!
//! The model of each direction is one byte pipe:
//!
//! - [`write`](Pair::write) moves up to `n` bytes a side has queued to send
//!   ([`Connection::poll_transmit`]) into the pipe, as a partial socket write
//!   would;
//! - [`deliver`](Pair::deliver) hands up to `n` bytes from the pipe to the other
//!   side as one read, and returns the events that read produced;
//! - [`shutdown`](Pair::shutdown) ends a side's output: once the pipe is empty
//!   the other side reads end of stream ([`Connection::handle_eof`]);
//!   [`cut`](Pair::cut) also throws away what is still in flight, as a reset
//!   connection does;
//! - [`advance`](Pair::advance) moves the clock and fires both sides' timers.
//!
//! [`pump`](Pair::pump) does all of it until nothing moves, which is what most
//! tests want:
//!
//! ```
//! use std::time::Duration;
//! use wsmachine::testing::Pair;
//! use wsmachine::{CloseCode, Config, OwnedEvent};
//!
//! let mut pair = Pair::open(Config::default(), Config::default());
//! pair.client.send_text("hello").unwrap();
//! let (_, at_server) = pair.pump();
//! assert_eq!(at_server, [OwnedEvent::Text("hello".into())]);
//!
//! // The closing handshake, and the server closing the transport.
//! pair.server.close(CloseCode::NORMAL, "bye").unwrap();
//! let (at_client, at_server) = pair.pump();
//! assert!(pair.client.is_closed() && pair.server.is_closed());
//! assert!(matches!(at_client.last(), Some(OwnedEvent::Closed(info)) if info.is_clean()));
//! assert!(matches!(at_server.last(), Some(OwnedEvent::Closed(info)) if info.is_clean()));
//! // Both transports are closed (the server's first, RFC 6455 §7.1.1): nothing moves.
//! assert!(pair.is_quiet());
//! assert_eq!(pair.pump(), (vec![], vec![]));
//!
//! // Timers run on the virtual clock only: the client's keepalive ping.
//! let mut client = Config::default();
//! client.keepalive_interval = Some(Duration::from_secs(30));
//! let mut server = Config::default();
//! server.keepalive_interval = None;
//! let mut pair = Pair::open(client, server);
//! pair.advance(Duration::from_secs(29));
//! assert_eq!(pair.pump(), (vec![], vec![]));
//! pair.advance(Duration::from_secs(1));
//! let (at_client, at_server) = pair.pump();
//! assert!(matches!(at_server[..], [OwnedEvent::Ping(_)]));
//! assert!(matches!(at_client[..], [OwnedEvent::Pong(_)]));
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use crate::handshake::{Accept, ClientRequest};
use crate::{Config, Connection, Error, OwnedEvent, SeededEntropy, UsageError};

/// One side of a [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client connection.
    Client,
    /// The server connection.
    Server,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// The bytes travelling towards one side, and whether the stream has ended.
#[derive(Debug, Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The sender shut its output down: end of stream after the bytes.
    shut: bool,
    /// End of stream was reported to the receiver.
    eof_seen: bool,
}

/// A client and a server connection wired back to back in memory, with a
/// virtual clock. See the [module docs](self).
///
/// The connections are public: send on them, inspect them, or feed them by
/// hand. The pair only moves bytes between them and keeps the time.
pub struct Pair {
    /// The client connection (masks with seeded entropy).
    pub client: Connection,
    /// The server connection.
    pub server: Connection,
    now: Duration,
    to_client: Pipe,
    to_server: Pipe,
}

impl core::fmt::Debug for Pair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pair")
            .field("now", &self.now)
            .field("to_client", &self.to_client.bytes.len())
            .field("to_server", &self.to_server.bytes.len())
            .finish_non_exhaustive()
    }
}

/// How many rounds [`Pair::pump`] runs at most before it gives up: far more
/// than any exchange needs, so that a connection that kept producing output
/// for ever would show as a test failure, not a hang.
const PUMP_ROUNDS: usize = 10_000;

impl Pair {
    /// A pair whose opening handshake is already done (as by
    /// [`Connection::open_client`] and [`Connection::open_server`]): no
    /// extension and no subprotocol. The clock starts at zero, and both
    /// sides' timers run from there.
    pub fn open(client: Config, server: Config) -> Self {
        Self::from_connections(
            Connection::open_client(client, SeededEntropy::new(0x5eed)),
            Connection::open_server(server),
        )
    }

    /// A pair that goes through the real opening handshake: the client sends
    /// `request` (with the permessage-deflate offer its config makes), the
    /// server accepts it with `accept` (negotiating what its config allows),
    /// and both are open on return, with the bytes exchanged so far
    /// delivered.
    ///
    /// ```
    /// use wsmachine::handshake::{Accept, ClientRequest};
    /// use wsmachine::testing::Pair;
    /// use wsmachine::Config;
    ///
    /// let request = ClientRequest::new("ws://example.com/chat").unwrap().protocol("chat");
    /// let pair = Pair::handshake(&request, Config::default(), Config::default(), Accept::new().protocol("chat")).unwrap();
    /// assert_eq!(pair.client.negotiated().protocol.as_deref(), Some("chat"));
    /// ```
    ///
    /// # Errors
    /// What [`Connection::client`] or [`Connection::accept`] return, or
    /// the error either side closed with instead of opening (the client
    /// refused the server's answer, say), or [`UsageError::Closed`] if none
    /// was given.
    pub fn handshake(
        request: &ClientRequest,
        client: Config,
        server: Config,
        accept: Accept,
    ) -> Result<Self, Error> {
        let client = Connection::client(request, client, SeededEntropy::new(0x5eed))?;
        let mut pair = Self::from_connections(client, Connection::server(server));
        let mut accept = Some(accept);
        for _ in 0..PUMP_ROUNDS {
            pair.write(Side::Client, usize::MAX);
            let events = pair.deliver(Side::Server, usize::MAX);
            if events.iter().any(|e| matches!(e, OwnedEvent::Request(_))) {
                if let Some(accept) = accept.take() {
                    pair.server.accept(accept)?;
                }
                pair.events(Side::Server);
            }
            pair.write(Side::Server, usize::MAX);
            pair.deliver(Side::Client, usize::MAX);
            if pair.client.is_closed() || pair.server.is_closed() {
                return Err(pair.failure());
            }
            if pair.client.is_open() && pair.server.is_open() && pair.is_quiet() {
                return Ok(pair);
            }
        }
        Err(pair.failure())
    }

    /// Why the handshake did not open both sides: the error a side closed
    /// with, or [`UsageError::Closed`].
    fn failure(&self) -> Error {
        [&self.client, &self.server]
            .into_iter()
            .find_map(|conn| conn.close_info().and_then(|info| info.error().cloned()))
            .unwrap_or(Error::Usage(UsageError::Closed))
    }

    /// A pair of connections made by the caller (any configuration, role
    /// checks aside). Starts both clocks at zero.
    ///
    /// # Panics
    /// If `client` is not a client or `server` not a server.
    pub fn from_connections(mut client: Connection, mut server: Connection) -> Self {
        assert_eq!(client.role(), crate::Role::Client, "the client side");
        assert_eq!(server.role(), crate::Role::Server, "the server side");
        client.handle_timeout(Duration::ZERO);
        server.handle_timeout(Duration::ZERO);
        Self {
            client,
            server,
            now: Duration::ZERO,
            to_client: Pipe::default(),
            to_server: Pipe::default(),
        }
    }

    /// The connection on `side`.
    pub fn conn(&mut self, side: Side) -> &mut Connection {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    fn pipe(&mut self, to: Side) -> &mut Pipe {
        match to {
            Side::Client => &mut self.to_client,
            Side::Server => &mut self.to_server,
        }
    }

    // ----- time -----

    /// The virtual time, from zero at creation.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Moves the clock forward by `by` and fires every deadline that passed,
    /// on both sides. Output a timer queues (a ping, a close frame) waits for
    /// [`write`](Self::write) or [`pump`](Self::pump); an event it raises (the
    /// connection closing on a timeout) waits for the next read, or
    /// [`events`](Self::events).
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }

    /// The earliest deadline either side has ([`Connection::poll_timeout`]).
    pub fn next_deadline(&self) -> Option<Duration> {
        match (self.client.poll_timeout(), self.server.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves the clock to the earliest deadline of either side, if it is in
    /// the future, and fires it. Returns the new time, or `None` if neither
    /// side has a deadline.
    pub fn advance_to_deadline(&mut self) -> Option<Duration> {
        let at = self.next_deadline()?;
        self.advance(at.saturating_sub(self.now));
        Some(self.now)
    }

    // ----- bytes -----

    /// Moves up to `max` of the bytes `from` has queued to send into the pipe
    /// towards its peer, as a socket write that took that many would. Returns
    /// how many moved. Nothing moves once `from` has shut its output down.
    pub fn write(&mut self, from: Side, max: usize) -> usize {
        if self.pipe(from.peer()).shut {
            return 0;
        }
        let mut moved = 0;
        while moved < max {
            let conn = self.conn(from);
            let Some(chunk) = conn.poll_transmit() else {
                break;
            };
            let n = chunk.len().min(max - moved);
            let chunk = chunk[..n].to_vec();
            conn.transmitted(n);
            self.pipe(from.peer()).bytes.extend(chunk);
            moved += n;
        }
        moved
    }

    /// Puts `bytes` in flight towards `to` after what is already there, as if
    /// its peer had written them: hand-made frames, garbage, or the two
    /// slices of a [`Transmit`](crate::Transmit). Nothing is added once the
    /// peer has shut its output down.
    pub fn inject(&mut self, to: Side, bytes: &[u8]) {
        let pipe = self.pipe(to);
        if !pipe.shut {
            pipe.bytes.extend(bytes);
        }
    }

    /// Bytes in flight towards `to`: written, not yet delivered.
    pub fn in_flight(&self, to: Side) -> usize {
        match to {
            Side::Client => self.to_client.bytes.len(),
            Side::Server => self.to_server.bytes.len(),
        }
    }

    /// Hands up to `max` bytes in flight towards `to` over as one read, and
    /// returns every event the connection then has. Odd-sized reads go
    /// through [`Connection::recv_buffer`], even-sized ones through
    /// [`Connection::handle_read`], so both input paths are used. If the pipe
    /// is empty and its sender shut down, the read is end of stream instead
    /// (reported once).
    pub fn deliver(&mut self, to: Side, max: usize) -> Vec<OwnedEvent> {
        let now = self.now;
        let pipe = self.pipe(to);
        let n = pipe.bytes.len().min(max);
        let eof = n == 0 && pipe.shut && !pipe.eof_seen;
        if eof {
            pipe.eof_seen = true;
        }
        let bytes: Vec<u8> = pipe.bytes.drain(..n).collect();
        let conn = self.conn(to);
        conn.handle_timeout(now);
        let mut events = Vec::new();
        if eof {
            conn.handle_eof();
        } else if n.is_multiple_of(2) {
            conn.handle_read(&bytes);
        } else {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let buf = conn.recv_buffer();
                let k = buf.len().min(rest.len());
                buf[..k].copy_from_slice(&rest[..k]);
                conn.commit_recv(k);
                rest = &rest[k..];
                // A full buffer's events go before the next read, as in a run loop.
                events.extend(drain_events(conn));
            }
        }
        events.extend(drain_events(conn));
        events
    }

    /// Moves everything the client has queued to send to the server as one
    /// read, through [`Connection::handle_read`], and returns every event
    /// the server then has. Bytes already in flight towards the server go
    /// first. Unlike [`deliver`](Self::deliver), the read is one whole
    /// [`handle_read`](Connection::handle_read) whatever its size, the clock
    /// is not read and end of stream is not reported; as with
    /// [`write`](Self::write), nothing moves once the client has shut its
    /// output down.
    ///
    /// ```
    /// use wsmachine::testing::Pair;
    /// use wsmachine::{Config, OwnedEvent};
    ///
    /// let mut pair = Pair::open(Config::default(), Config::default());
    /// pair.client.send_ping(b"hi").unwrap();
    /// assert_eq!(pair.client_to_server(), [OwnedEvent::Ping(b"hi".to_vec())]);
    /// assert_eq!(pair.server_to_client(), [OwnedEvent::Pong(b"hi".to_vec())]);
    /// ```
    pub fn client_to_server(&mut self) -> Vec<OwnedEvent> {
        self.transfer(Side::Client)
    }

    /// Moves everything the server has queued to send to the client as one
    /// read and returns every event the client then has: the mirror of
    /// [`client_to_server`](Self::client_to_server).
    pub fn server_to_client(&mut self) -> Vec<OwnedEvent> {
        self.transfer(Side::Server)
    }

    /// What [`client_to_server`](Self::client_to_server) and
    /// [`server_to_client`](Self::server_to_client) do, from `from`.
    fn transfer(&mut self, from: Side) -> Vec<OwnedEvent> {
        let to = from.peer();
        let pipe = self.pipe(to);
        let mut bytes: Vec<u8> = pipe.bytes.drain(..).collect();
        if !pipe.shut {
            self.conn(from).drain_transmit(&mut bytes);
        }
        let conn = self.conn(to);
        conn.handle_read(&bytes);
        drain_events(conn)
    }

    /// Every event `side` has ready now (after [`advance`](Self::advance),
    /// say), owned.
    pub fn events(&mut self, side: Side) -> Vec<OwnedEvent> {
        drain_events(self.conn(side))
    }

    /// Ends `from`'s output, as closing its socket's write side does: its
    /// peer reads end of stream once the bytes in flight are delivered, and
    /// nothing more is written.
    pub fn shutdown(&mut self, from: Side) {
        self.pipe(from.peer()).shut = true;
    }

    /// Ends `from`'s output and throws away all but the first `keep` bytes
    /// in flight from it, as a connection reset or cut mid-stream does: the
    /// peer reads those bytes, then end of stream.
    pub fn cut(&mut self, from: Side, keep: usize) {
        let pipe = self.pipe(from.peer());
        pipe.bytes.truncate(keep);
        pipe.shut = true;
    }

    /// Whether nothing is waiting to move: no output queued on either side
    /// and no side due to close its transport (or its output is shut), no
    /// byte in flight, no end of stream unreported.
    pub fn is_quiet(&self) -> bool {
        let idle = |conn: &Connection, pipe: &Pipe| {
            pipe.shut || (conn.pending_transmit() == 0 && !conn.should_close_transport())
        };
        idle(&self.client, &self.to_server)
            && idle(&self.server, &self.to_client)
            && [&self.to_client, &self.to_server]
                .iter()
                .all(|p| p.bytes.is_empty() && (!p.shut || p.eof_seen))
    }

    /// Moves every byte both ways, one whole read at a time, until nothing
    /// moves; a side that [`should_close_transport`](Connection::should_close_transport)
    /// and has nothing left to send shuts its output down, as an adapter
    /// does. The clock does not move. Returns the events (client's,
    /// server's).
    ///
    /// # Panics
    /// If the sides are still exchanging bytes after 10,000 rounds.
    pub fn pump(&mut self) -> (Vec<OwnedEvent>, Vec<OwnedEvent>) {
        let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
        for _ in 0..PUMP_ROUNDS {
            for side in [Side::Client, Side::Server] {
                self.write(side, usize::MAX);
            }
            self.close_finished();
            at_server.extend(self.deliver(Side::Server, usize::MAX));
            at_client.extend(self.deliver(Side::Client, usize::MAX));
            // A read may have finished a side (the close echo, end of stream).
            self.close_finished();
            if self.is_quiet() {
                return (at_client, at_server);
            }
        }
        panic!("the connections kept exchanging bytes for {PUMP_ROUNDS} rounds: {self:?}");
    }
}

impl Pair {
    /// Shuts the output of each side that
    /// [`should_close_transport`](Connection::should_close_transport) and has
    /// nothing left to send, as an adapter does.
    fn close_finished(&mut self) {
        for side in [Side::Client, Side::Server] {
            let conn = self.conn(side);
            if conn.should_close_transport() && conn.pending_transmit() == 0 {
                self.shutdown(side);
            }
        }
    }
}

/// Every event `conn` has ready, owned.
fn drain_events(conn: &mut Connection) -> Vec<OwnedEvent> {
    let mut events = Vec::new();
    // A connection yields one event per frame it holds, plus the closing
    // one, and never one after `Closed`: this ends.
    while let Some(event) = conn.poll_event() {
        events.push(event.into_owned());
    }
    events
}
