//! The closing handshake (RFC 6455 §7) and every other ending: failing the
//! connection on a peer's error (§7.1.7), aborting it on a timeout, the end
//! of the stream (§7.1.5) and when the transport may close (§7.1.1). Every
//! path into [`State::Closed`] is here.

use alloc::boxed::Box;
use alloc::string::ToString;

use super::recv::Ready;
use super::{CloseInfo, Connection, Core, Initiator, State};
use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN};
use crate::error::{Error, ProtocolError, UsageError};
use crate::frame::Role;

impl Connection {
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

    /// Output: whether to close the transport now. RFC 6455 §7.1.1: after the
    /// closing handshake the server closes the TCP connection first, so it
    /// holds the TIME_WAIT state; the client waits for that (it reads until
    /// the end of stream) and closes only after
    /// [`Config::close_timeout`](crate::Config::close_timeout). After a
    /// failure, either side closes at once. Always once the queued bytes are sent.
    pub fn should_close_transport(&self) -> bool {
        let core = &self.core;
        let State::Closed { info, .. } = &core.state else {
            return false;
        };
        self.pending_transmit() == 0
            && (core.role == Role::Server
                || !info.clean
                || core.recv.eof
                || core.timers.linger_expired)
    }
}

impl Core {
    /// How the connection ended, once it has.
    pub(super) fn close_info(&self) -> Option<&CloseInfo> {
        match &self.state {
            State::Closed { info, .. } => Some(info),
            _ => None,
        }
    }

    /// A close frame arrived whole (RFC 6455 §5.5.1).
    pub(super) fn close_received(&mut self, payload: &[u8]) -> Result<Ready, ProtocolError> {
        let frame = CloseFrame::parse(payload)?;
        let code = frame
            .as_ref()
            .map_or(CloseCode::NO_STATUS, CloseFrame::code);
        let initiator = match self.state {
            // RFC 6455 §5.5.1: answer a close we did not start with a close,
            // echoing the status code.
            State::Open => {
                let echo = frame.as_ref().and_then(|f| CloseFrame::new(f.code(), ""));
                self.tx.queue_close(echo.as_ref());
                Initiator::Remote
            }
            _ => Initiator::Local,
        };
        self.closed(
            CloseInfo {
                code,
                frame,
                initiator,
                clean: true,
                error: None,
            },
            true,
        );
        Ok(Ready::Closed)
    }

    /// RFC 6455 §7.1.7: fail the connection: send a close with the error's code
    /// (unless one was sent already) and process nothing more.
    pub(super) fn fail(&mut self, error: ProtocolError) {
        self.abort(error.close_code(), error.into(), true);
    }

    /// Ends the connection at our side with `code`: the close frame (with the
    /// error as its reason, cut to fit) is queued unless one was sent already.
    /// `reported`: the event is handed out by the current call.
    pub(super) fn abort(&mut self, code: CloseCode, error: Error, reported: bool) {
        let mut reason = error.to_string();
        let mut cut = reason.len().min(MAX_REASON_LEN);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        let frame = CloseFrame::new(code, &reason);
        if matches!(self.state, State::Open) {
            self.tx.queue_close(frame.as_ref());
        }
        self.recv.abandon_frame();
        self.deflate.inflate_pending = None;
        self.closed(
            CloseInfo {
                code,
                frame,
                initiator: Initiator::Local,
                clean: false,
                error: Some(error),
            },
            reported,
        );
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2): our close frame goes out.
    pub(super) fn start_close(&mut self, frame: &CloseFrame) {
        self.tx.queue_close(Some(frame));
        self.state = State::CloseSent;
        self.timers.close_sent();
    }

    /// The connection ends without a close frame from the peer: 1006 (RFC 6455
    /// §7.1.5), when the stream ends, or when the opening handshake fails or is
    /// refused. `reported`: the event is handed out by the current call.
    pub(super) fn close_without_frame(
        &mut self,
        initiator: Initiator,
        error: Option<Error>,
        reported: bool,
    ) {
        self.closed(
            CloseInfo {
                code: CloseCode::ABNORMAL,
                frame: None,
                initiator,
                clean: false,
                error,
            },
            reported,
        );
    }

    /// The stream ended before the closing handshake completed.
    pub(super) fn end_of_stream(&mut self) {
        let initiator = match self.state {
            State::CloseSent => Initiator::Local,
            _ => Initiator::Remote,
        };
        self.close_without_frame(initiator, None, true);
    }

    /// The one way into [`State::Closed`]. A request that waits for an
    /// answer has none now.
    fn closed(&mut self, info: CloseInfo, reported: bool) {
        self.opening.request = None;
        self.state = State::Closed {
            info: Box::new(info),
            reported,
        };
        self.timers.closed();
    }
}
