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
//! The adapters do exactly this (tokio with `timeout_at`, blocking with the
//! socket's read timeout), and tests drive it with a virtual clock, to the
//! millisecond, with no sleeps. A connection that is never given the time
//! runs no timer.
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
//! ## Layers
//!
//! Each layer is public and usable alone: [`frame`] (header codec, masking, a
//! validating incremental decoder, the encoder), [`message`] (fragment
//! sequencing, incremental UTF-8, limits), [`handshake`] (the HTTP/1.1 upgrade),
//! `deflate` (negotiation and the payload codec of permessage-deflate) and
//! [`Connection`] on top. The `adapter` module (features `blocking` and
//! `tokio`) drives a connection over a real stream; writing an adapter for
//! another runtime means writing that loop: read into [`Connection::recv_buffer`],
//! call [`Connection::has_event`], write [`Connection::poll_transmit`], then hand
//! out [`Connection::poll_event`].
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
    CloseInfo, Compress, Connection, Event, Fragment, Initiator, OwnedEvent, Transmit,
};
pub use entropy::{Entropy, SeededEntropy};
pub use error::{Error, ProtocolError, Timeout, UsageError};
pub use frame::Role;
pub use message::MessageKind;
pub use utf8::{InvalidUtf8, Utf8Validator};

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
