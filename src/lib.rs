//! # wsmachine: the WebSocket protocol as a sans-IO state machine
//!
//! `wsmachine` implements the WebSocket protocol (RFC 6455) as a pure state
//! machine. It owns no socket, no async runtime, no clock and no random number
//! generator: it consumes byte slices and emits events, and the caller moves
//! the bytes. The same core runs under tokio, a blocking socket, io_uring, an
//! embedded network stack or a game loop, and under a fuzzer or a property test,
//! where every run is reproducible byte for byte.
//!
//! ## The model
//!
//! A [`Connection`] has three families of verbs:
//!
//! - **inputs** tell it what happened: [`Connection::handle_read`] with bytes
//!   received (or [`Connection::recv_buffer`] and [`Connection::commit_recv`] to
//!   read straight into its buffer, without a copy),
//!   [`Connection::handle_eof`] when the stream ends, and
//!   [`Connection::handle_timeout`] with the time;
//! - **commands** ask it to do something: [`Connection::send_text`],
//!   [`Connection::send_binary`], [`Connection::send_fragment`],
//!   [`Connection::send_ping`], [`Connection::close`];
//! - **outputs** say what to do next: [`Connection::poll_event`] hands out
//!   messages, pings, pongs and the final close,
//!   [`Connection::poll_transmit`] the bytes to write,
//!   [`Connection::poll_timeout`] the next deadline, and
//!   [`Connection::should_close_transport`] when to close the stream.
//!
//! **After every input or command, drain the outputs: events first, then the
//! bytes to transmit.** Handling an event can queue bytes (a pong answering a
//! ping, the echo of a close), so transmits come last.
//!
//! The connection meets its protocol duties itself: it answers pings, echoes a
//! close, validates UTF-8 incrementally, compresses and inflates messages when
//! permessage-deflate is negotiated, enforces the size limits of
//! [`Config`], and fails the connection with the right close code on any peer
//! error (1002, 1007, 1009, ...). Errors are sticky: after a failure the close
//! frame is queued, an [`Event::Closed`] says why, and later input is ignored.
//! Nothing panics on any input.
//!
//! ## The run loop
//!
//! ```
//! use std::io::{Read, Write};
//! use wsmachine::{Config, Connection, Event};
//!
//! /// Echoes every message until the connection closes.
//! fn serve(stream: &mut (impl Read + Write)) -> std::io::Result<()> {
//!     let mut conn = Connection::open_server(Config::default());
//!     loop {
//!         // Input: read straight into the connection's buffer.
//!         let n = stream.read(conn.recv_buffer())?;
//!         if n == 0 { conn.handle_eof() } else { conn.commit_recv(n) }
//!         // Outputs: events first ...
//!         while let Some(event) = conn.poll_event() {
//!             match event.into_owned() {
//!                 wsmachine::OwnedEvent::Text(text) => { conn.send_text(&text).ok(); }
//!                 wsmachine::OwnedEvent::Binary(data) => { conn.send_binary(&data).ok(); }
//!                 _ => {}
//!             }
//!         }
//!         // ... then the bytes to send.
//!         while let Some(bytes) = conn.poll_transmit() {
//!             let n = stream.write(bytes)?;
//!             conn.transmitted(n);
//!         }
//!         if conn.is_closed() { return Ok(()) }
//!     }
//! }
//! # let mut wire = std::io::Cursor::new(Vec::new());
//! # serve(&mut wire).unwrap();
//! ```
//!
//! ## Time
//!
//! The core has no clock: time comes in as a [`core::time::Duration`] since an
//! origin the caller picks, through [`Connection::handle_timeout`], and the
//! connection answers with its next deadline in [`Connection::poll_timeout`].
//! Timers are data: keepalive pings that detect a peer that vanished
//! (a ping after [`Config::keepalive_interval`] of silence, failure after
//! [`Config::keepalive_timeout`] without an answer), the opening handshake's
//! deadline (slowloris), the closing handshake's, and an optional idle
//! timeout. A loop that runs them reads with a deadline:
//!
//! ```text
//! conn.handle_timeout(now());                      // starts the clock
//! loop {
//!     match read_until(stream, conn.recv_buffer(), conn.poll_timeout()) {
//!         Read(n)   => { conn.handle_timeout(now()); conn.commit_recv(n) }
//!         Eof       => { conn.handle_timeout(now()); conn.handle_eof() }
//!         Deadline  => conn.handle_timeout(now()),
//!     }
//!     // drain events, then transmits, as above
//!     if conn.should_close_transport() { break }   // RFC 6455 §7.1.1
//! }
//! ```
//!
//! The adapters do exactly this (tokio with one `Sleep` per connection, moved
//! only when a deadline comes earlier; blocking with the socket's read
//! timeout), and tests drive it with a virtual clock, to the millisecond,
//! with no sleeps ([`testing::Pair`](crate#testing-your-code) with the
//! `testing` feature). A connection that is never given the time runs no
//! timer.
//!
//! Events borrow from the connection: a message that arrived in one frame is
//! unmasked in place in the receive buffer and handed out without a copy.
//! [`Event::into_owned`] copies it when it must outlive the next call.
//!
//! ## The opening handshake
//!
//! [`Connection::client`] queues the upgrade request for a
//! [`handshake::ClientRequest`] and validates the response; [`Connection::server`]
//! reads the request and hands it out as [`Event::Request`], to
//! [`Connection::accept`] (choosing a subprotocol) or [`Connection::reject`]
//! (an Origin check, authentication). Both report [`Event::Open`] with what was
//! negotiated. Bytes that arrive with the end of the handshake are frames, and
//! are kept. [`Connection::open_client`] and [`Connection::open_server`] start
//! already open, for streams upgraded elsewhere.
//!
//! ## Layers, and which to use
//!
//! Each layer is public and usable alone: [`frame`] (header codec, masking, a
//! validating incremental decoder, the encoder), [`message`] (fragment
//! sequencing, incremental UTF-8, limits), [`handshake`] (the HTTP/1.1 upgrade,
//! and with `http` the same on the `http` crate's types and RFC 8441's
//! extended CONNECT), `deflate` (negotiation and the payload codec of
//! permessage-deflate) and [`Connection`] on top.
//!
//! - **An application on tokio or on blocking sockets**: the `adapter`
//!   module (features `tokio`, `blocking`). `WebSocket::connect`,
//!   `WebSocket::accept_with` (an Origin check, a subprotocol), then `recv`
//!   and `send_*`. Pings, close echoes, keepalive and timeouts are handled.
//! - **A server on hyper or axum**: let the HTTP stack read the upgrade,
//!   check it with [`handshake::Request::from_http`], answer with
//!   [`handshake::accept_http`], and hand the upgraded stream to
//!   [`Connection::open_server_negotiated`] through the tokio adapter's
//!   `WebSocket::from_connection` (`examples/axum_server.rs`,
//!   `examples/hyper_server.rs`). Over HTTP/2 the same with
//!   [`handshake::Request::from_extended_connect`] and
//!   [`handshake::accept_extended_connect`] (`examples/h2.rs`).
//! - **Another runtime** (io_uring, an embedded stack, a game loop, a
//!   proxy): [`Connection`] itself, in the loop below.
//! - **A parser, a proxy that inspects frames, a tool**: [`frame`] and
//!   [`message`] alone, which allocate nothing.
//!
//! ## A complete blocking example
//!
//! A server thread and a client over loopback (feature `blocking`):
//!
//! ```
//! # #[cfg(feature = "blocking")] {
//! use std::net::{TcpListener, TcpStream};
//! use wsmachine::adapter::blocking::WebSocket;
//! use wsmachine::handshake::{Accept, ClientRequest, Reject};
//! use wsmachine::{CloseCode, Config, OwnedEvent};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = std::thread::spawn(move || -> Result<(), wsmachine::adapter::Error> {
//!     let (stream, _) = listener.accept()?;
//!     let mut ws = WebSocket::accept_with(stream, Config::default(), |request| {
//!         match request.protocols().any(|p| p == "echo") {
//!             true => Ok(Accept::new().protocol("echo")),
//!             false => Err(Reject::new(400)),
//!         }
//!     })?;
//!     loop {
//!         match ws.recv()? {
//!             OwnedEvent::Text(text) => ws.send_text(&text)?,
//!             OwnedEvent::Binary(data) => ws.send_binary(&data)?,
//!             // RFC 6455 §7.1.1: the server closes the TCP connection first.
//!             OwnedEvent::Closed(_) => return ws.close_transport(),
//!             _ => {} // pings are answered by the connection
//!         }
//!     }
//! });
//!
//! let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap().protocol("echo");
//! let mut ws = WebSocket::connect(TcpStream::connect(addr).unwrap(), &request, Config::default()).unwrap();
//! assert_eq!(ws.connection().negotiated().protocol.as_deref(), Some("echo"));
//! ws.send_text("hello").unwrap();
//! assert_eq!(ws.recv().unwrap(), OwnedEvent::Text("hello".into()));
//! ws.close(CloseCode::NORMAL, "done").unwrap();
//! let OwnedEvent::Closed(info) = ws.recv().unwrap() else { panic!("the close echo") };
//! assert!(info.is_clean());
//! ws.close_transport().unwrap();
//! server.join().unwrap().unwrap();
//! # }
//! ```
//!
//! ## A complete tokio example
//!
//! The same with tokio (feature `tokio`): `recv` is cancel-safe, so it can sit
//! in a `select!` beside a shutdown signal or a timer.
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use tokio::net::{TcpListener, TcpStream};
//! use wsmachine::adapter::tokio::WebSocket;
//! use wsmachine::handshake::ClientRequest;
//! use wsmachine::{CloseCode, Config, OwnedEvent};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = tokio::spawn(async move {
//!     let (stream, _) = listener.accept().await?;
//!     let mut ws = WebSocket::accept(stream, Config::default()).await?;
//!     loop {
//!         match ws.recv().await? {
//!             OwnedEvent::Text(text) => ws.send_text(&text).await?,
//!             OwnedEvent::Binary(data) => ws.send_binary(&data).await?,
//!             OwnedEvent::Closed(_) => return ws.close_transport().await,
//!             _ => {}
//!         }
//!     }
//! });
//!
//! let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
//! let stream = TcpStream::connect(addr).await.unwrap();
//! let mut ws = WebSocket::connect(stream, &request, Config::default()).await.unwrap();
//! ws.send_binary(&[1, 2, 3]).await.unwrap();
//! assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Binary(vec![1, 2, 3]));
//! ws.close(CloseCode::NORMAL, "").await.unwrap();
//! assert!(matches!(ws.recv().await.unwrap(), OwnedEvent::Closed(info) if info.is_clean()));
//! ws.close_transport().await.unwrap();
//! server.await.unwrap().unwrap();
//! # });
//! ```
//!
//! ## Writing an adapter for another runtime
//!
//! An adapter is a `match` over one call, [`Driver::step`]: it says what to
//! do next toward a [`Goal`] (the next event, everything flushed, the
//! transport's end), and the driver's other methods take what happened. Both
//! adapters in `src/adapter/` are that match plus their public methods; an
//! io_uring, event-loop or embedded adapter is the same match over other I/O.
//!
//! | [`Step`] | the adapter does | and reports with |
//! |---|---|---|
//! | `Write` | writes [`Driver::transmit`] (a partial write is fine) | [`Driver::wrote`] `(n)`, or [`Driver::write_failed`] (which says whether to report the error) |
//! | `Flush` | flushes the transport's own buffers (TLS records, a `BufWriter`) | [`Driver::flushed`] |
//! | `Event` | hands [`Driver::event`] to the application | |
//! | `Read { deadline }` | reads into [`Driver::recv_buffer`], waiting at most until `deadline` on its clock | [`Driver::read`] `(now, n)` (`0`: end of stream), or [`Driver::no_read`] `(now)` when the deadline came first or the read failed or was cancelled |
//! | `CloseTransport` | shuts the transport down, or drops it | |
//! | `Closed` / `Done` | returns: the connection is over / the goal is reached | |
//!
//! Before a command the adapter gives the time with [`Driver::tick`] and
//! runs [`Goal::Flush`] (backpressure: the queue never grows past one
//! message), then runs the command on [`Driver::connection_mut`], then
//! [`Goal::Flush`] again. The clock is the adapter's: a monotonic
//! [`Duration`](core::time::Duration) since the driver was made.
//!
//! The rules the driver keeps, so that an adapter cannot get them wrong:
//!
//! 1. **What parsing queued goes out before the event that caused it** (a
//!    pong, the echo of a close, the close frame of a failure), so an
//!    application that stops reading never leaves it behind.
//! 2. **Once the connection is closed, a failed write is no error while the
//!    closing event waits**: the peer that has gone cannot take the echo of
//!    its close, and [`Event::Closed`] still goes out.
//! 3. **The buffer lent to a read comes back before the time is given, and
//!    the time is given before received bytes are committed**, so the bytes
//!    are timed at the read and an idle connection frees its buffer.
//! 4. **The driver's clock starts at zero** whatever the connection's said:
//!    a connection whose clock had started keeps its deadlines.
//! 5. **The transport is flushed only after bytes were written to it.**
//! 6. **The transport closes when RFC 6455 §7.1.1 says**: at once for a
//!    server, after the server's end of stream (or the close timeout) for a
//!    client.
//!
//! Cancellation is safe at any await point: a `Step` borrows nothing, and
//! every byte accepted is held by the connection until it is handed out or
//! sent, so a read that is dropped is reported with `no_read` and loses
//! nothing. The driver's first read into an idle connection is small
//! ([`Config::retain_buffer_size`]), so an idle connection holds no buffer:
//! loop, do not assume a size.
//!
//! Without the driver, the same loop runs on [`Connection`] itself:
//! [`Connection::recv_buffer`] / [`Connection::commit_recv`],
//! [`Connection::handle_timeout`] at [`Connection::poll_timeout`],
//! [`Connection::has_event`] / [`Connection::poll_event`],
//! [`Connection::poll_transmit`] / [`Connection::transmitted`],
//! [`Connection::should_close_transport`]; for large messages,
//! [`Connection::send_vectored`] hands out the frame header and the
//! caller's payload for one vectored write. A send refused with
//! [`UsageError::SendBufferFull`] means "write out what is queued, then
//! retry" ([`Config::max_send_buffer`]).
//!
//! ## Inside the connection
//!
//! The state machine is split into rooms, each owning its state (the map is
//! in `src/connection/mod.rs`): the received bytes (`buffer`), the receive
//! path (`recv`: inputs, the parser, control frames in, `poll_event`), the
//! fast path for whole small frames (`fast`, its invariants at its top), the
//! send commands (`send`) and the transmit queue (`transmit`: framing,
//! masking, backpressure, pong coalescing; `vectored` for a payload written
//! from the caller's buffer), the closing handshake and every ending
//! (`close`), the opening handshake as the connection drives it (`opening`),
//! timers (`timers`), permessage-deflate's data path (`deflate`), the events
//! (`event`) and the [`Driver`] (`driver`). The layers below only call
//! down: `frame`, `utf8` < [`message`] < `deflate` < [`handshake`] <
//! [`Connection`] < `adapter`, which CI checks (`.ci/layers.py`).
//!
//! ## Testing your code
//!
//! The features `testing`, `proptest` and `arbitrary` are for users' tests:
//!
//! - `testing`: `testing::Pair`, a client and a server wired back to back in
//!   memory, with a virtual clock: write part of what a side queued, deliver
//!   any number of bytes as one read, end or cut a stream mid-frame, jump the
//!   time and fire the timers. Every run is deterministic.
//! - `proptest`: `strategy`, with strategies for frames a role may send,
//!   messages (multilingual text, binary), fragmentations, close frames and
//!   read splits.
//! - `arbitrary`: `Arbitrary` for [`frame::OwnedFrame`], [`frame::FrameHeader`],
//!   [`message::Message`], [`message::Fragmented`], [`CloseFrame`] and friends,
//!   for fuzz targets that take them as input.
//!
//! [`message::Message`] and [`message::Fragmented`] send themselves on a
//! connection and compare with [`OwnedEvent`]s, so a property reads as one
//! line: what was sent is what arrived.
//!
//! ## Features
//!
//! - `std` (default): runtime SIMD detection for UTF-8 and `std::error::Error`.
//!   Without it (and without `deflate`) the crate is `no_std` + `alloc`.
//! - `deflate` (default): permessage-deflate (RFC 7692), negotiated by
//!   [`Config::deflate`] in both roles, on flate2 with the pure-Rust zlib-rs
//!   backend; see the [`deflate`] module for its memory per window size.
//! - `blocking`: `adapter::blocking`, over `std::io::Read + Write`.
//! - `tokio`: `adapter::tokio`, over `AsyncRead + AsyncWrite`, cancel-safe.
//! - `http`: the opening handshake on the `http` crate's types, for a server or
//!   client whose HTTP stack (hyper, axum, ...) reads and writes the handshake;
//!   then [`Connection::open_server_negotiated`] takes over the upgraded stream.
//!   Also RFC 8441 (WebSocket over an HTTP/2 stream): see [`handshake`].
//! - `rustls`: `wss://` in the adapters' URL connectors
//!   (`adapter::Connector`, `adapter::tokio::connect`,
//!   `adapter::blocking::connect`), with rustls and the webpki-roots trust
//!   anchors, or a `rustls::ClientConfig` of your own.
//! - `testing`, `proptest`, `arbitrary`: test kits for users (above).
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

extern crate alloc;

#[cfg(any(feature = "blocking", feature = "tokio"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "blocking", feature = "tokio"))))]
pub mod adapter;
#[cfg(feature = "arbitrary")]
#[cfg_attr(docsrs, doc(cfg(feature = "arbitrary")))]
mod arbitrary;
mod close;
mod config;
mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
mod entropy;
mod error;
pub mod frame;
pub mod handshake;
pub mod message;
#[cfg(feature = "proptest")]
#[cfg_attr(docsrs, doc(cfg(feature = "proptest")))]
pub mod strategy;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod utf8;

pub use close::{CloseCode, CloseFrame, MAX_REASON_LEN};
pub use config::{Config, MessageMode};
pub use connection::{
    BroadcastReport, CloseInfo, Compress, Connection, Delivery, Driver, Event, Fragment, Goal,
    Initiator, Lagging, OwnedEvent, PreparedMessage, Step, Transmit,
};
pub use entropy::{Entropy, SeededEntropy};
pub use error::{Error, ProtocolError, Timeout, UsageError};
pub use frame::Role;
pub use message::MessageKind;
pub use utf8::{InvalidUtf8, Utf8Validator};

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(all(doctest, feature = "tokio", feature = "futures"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
