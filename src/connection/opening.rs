//! The opening handshake as the connection drives it (RFC 6455 §4): the
//! client's request goes out at construction; the server reads the request,
//! hands it out, and the application accepts or rejects it; the client
//! reads the response. Bad requests get their HTTP status (400, 405, 426,
//! 431), a request that does not arrive in time a 408.

use alloc::boxed::Box;
use alloc::string::ToString;

use super::recv::Ready;
use super::{Connection, Core, Initiator, State};
use crate::error::{Error, Timeout, UsageError};
use crate::frame::{Role, Status};
use crate::handshake::{self, Accept, HandshakeError, Negotiated, Reject, Request, extensions};

/// What the opening handshake has read and settled.
#[derive(Debug, Default)]
pub(super) struct Opening {
    /// What the opening handshake settled.
    pub negotiated: Negotiated,
    /// Server: the request handed out, until it is accepted or rejected.
    pub request: Option<Box<Request>>,
    /// The [`Event::Open`](super::Event::Open)(super::Event::Open) is due.
    pub announce_open: bool,
    /// Handshake bytes already searched for the end of the header block.
    scanned: usize,
}

impl Connection {
    /// Command (server): accepts the upgrade request handed out as
    /// [`Event::Request`](super::Event::Request), queuing the 101 response (RFC 6455 §4.2.2). The
    /// connection is open at once; [`Event::Open`](super::Event::Open) follows.
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
        let (State::RequestReceived, Some(request)) = (&core.state, &core.opening.request) else {
            return Err(UsageError::NoPendingRequest.into());
        };
        let (extensions, agreement) = match extensions::server_negotiate(request, &core.config) {
            Some((response, agreement)) => (Some(response), Some(agreement)),
            None => (None, None),
        };
        handshake::accept_response(request, &accept, extensions.as_deref(), core.tx.raw())?;
        core.set_deflate(agreement);
        core.opening.request = None;
        core.opening.negotiated = Negotiated {
            protocol: accept.protocol,
            extensions,
        };
        core.timers.message();
        core.state = State::Open;
        core.opening.announce_open = true;
        Ok(())
    }

    /// Command (server): refuses the upgrade request handed out as
    /// [`Event::Request`](super::Event::Request) with an HTTP response. The connection is over: send
    /// the queued response, then close the transport. [`Event::Closed`](super::Event::Closed) follows.
    pub fn reject(&mut self, reject: &Reject) -> Result<(), Error> {
        let core = &mut self.core;
        if !matches!(core.state, State::RequestReceived) {
            return Err(UsageError::NoPendingRequest.into());
        }
        reject.encode(core.tx.raw())?;
        core.close_without_frame(Initiator::Local, None, false);
        Ok(())
    }

    /// Reads the opening handshake: the request (server) or response (client).
    /// The bytes after it stay in the receive buffer for the frame layer.
    pub(super) fn parse_handshake(&mut self) -> Option<Ready> {
        let core = &mut self.core;
        let input = &self.rx.buf[self.rx.cursor..self.rx.end];
        let (limit, fields) = (core.config.max_handshake_size, core.config.max_headers);
        // Scan only the bytes that arrived since the last call, and parse once the
        // header block is complete (or over the limit): a handshake that trickles
        // in byte by byte costs linear time, not quadratic.
        let complete = handshake::header_block(input, core.opening.scanned, limit);
        core.opening.scanned = input.len();
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
                            let agreement = extensions::client_agreement(expected, &negotiated);
                            core.set_deflate(agreement);
                        }
                        core.opening.negotiated = negotiated;
                        core.state = State::Open;
                        core.timers.message();
                        Some(Ready::Open)
                    }
                    Err(request) => {
                        core.opening.request = Some(Box::new(request));
                        core.state = State::RequestReceived;
                        Some(Ready::Request)
                    }
                }
            }
            Ok(None) if !core.recv.eof => None,
            Ok(None) => {
                core.close_without_frame(Initiator::Remote, Some(HandshakeError::Eof.into()), true);
                Some(Ready::Closed)
            }
            Err(error) => {
                // RFC 6455 §4.2.1: a server answers a bad request with an HTTP error;
                // a client just fails the connection (§4.1).
                if let (Role::Server, Some(status)) = (core.role, error.http_status()) {
                    let body = error.to_string();
                    let _ = handshake::reject_response(status, &[], body.as_bytes(), core.tx.raw());
                }
                core.close_without_frame(Initiator::Local, Some(error.into()), true);
                Some(Ready::Closed)
            }
        }
    }
}

impl Core {
    /// The opening handshake took too long. RFC 9110 §15.5.9: a server
    /// answers 408 to a request that did not arrive in time (`partial`: part
    /// of one did) or was not answered; one that saw none just closes.
    pub(super) fn handshake_timed_out(&mut self, partial: bool) {
        let waiting = matches!(self.state, State::RequestReceived);
        if self.role == Role::Server && (partial || waiting) {
            let body = Timeout::Handshake.to_string();
            let _ = handshake::reject_response(408, &[], body.as_bytes(), self.tx.raw());
        }
        self.close_without_frame(Initiator::Local, Some(Timeout::Handshake.into()), false);
    }
}
