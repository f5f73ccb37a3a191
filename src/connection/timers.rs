//! Timers as data: the connection never reads a clock. Time comes in through
//! [`Connection::handle_timeout`](super::Connection::handle_timeout) as a
//! [`Duration`] since an origin the caller chooses; every deadline is derived
//! from times seen that way, and nothing runs until the first one arrives.

use core::time::Duration;

use super::{Connection, Core, Initiator, State};
use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::error::Timeout;
use crate::frame::{OpCode, Role};

/// The keepalive ping's payload: a tag and a sequence number, so that its
/// pong is told apart from the application's.
pub(crate) const PING_TAG: [u8; 4] = *b"wska";

/// What a deadline that passed asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The opening handshake took too long.
    Handshake,
    /// Nothing was received for the keepalive interval: send a ping.
    Ping,
    /// The keepalive ping went unanswered.
    Unresponsive,
    /// No data message for the idle timeout: start the closing handshake.
    Idle,
    /// Our close frame went unanswered.
    Close,
    /// Client: the server did not close the transport after the closing
    /// handshake; the client may (RFC 6455 §7.1.1).
    Linger,
}

/// The phase of the connection, as far as timers are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Handshake,
    Open,
    CloseSent,
    /// Closed; `linger`: a client waiting for the server to close the transport.
    Closed {
        linger: bool,
    },
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    /// The latest time given; `None` until the first.
    now: Option<Duration>,
    /// When the clock started: the opening handshake's start.
    started: Duration,
    /// When bytes were last received.
    last_rx: Duration,
    /// When a data message last passed, either way.
    last_message: Duration,
    /// The last keepalive ping: its number and when it was sent.
    ping: Option<(u32, Duration)>,
    /// That ping still waits for an answer.
    awaiting: bool,
    /// When we sent our close frame.
    close_sent: Option<Duration>,
    /// When the connection closed.
    closed: Option<Duration>,
    /// The client may close the transport: the linger deadline passed.
    pub linger_expired: bool,
    /// The last round trip measured by a keepalive ping.
    pub rtt: Option<Duration>,
}

impl Timers {
    /// The time is `now` (time never goes back: an earlier `now` is ignored).
    /// The first call starts the clock.
    pub fn advance(&mut self, now: Duration) {
        match self.now {
            None => {
                self.now = Some(now);
                self.started = now;
                self.last_rx = now;
                self.last_message = now;
            }
            Some(t) if now > t => self.now = Some(now),
            Some(_) => {}
        }
    }

    /// The current time, once known.
    pub fn now(&self) -> Option<Duration> {
        self.now
    }

    /// When traffic last passed (bytes received, a message sent), once the
    /// clock runs.
    pub fn last_activity(&self) -> Option<Duration> {
        self.now.map(|_| self.last_rx.max(self.last_message))
    }

    /// Bytes arrived; any bytes prove the peer alive unless only a pong may.
    pub fn received(&mut self, needs_pong: bool) {
        if let Some(now) = self.now {
            self.last_rx = now;
            if !needs_pong {
                self.awaiting = false;
            }
        }
    }

    /// A data message was delivered or sent, or the connection opened (the
    /// idle time counts from there).
    pub fn message(&mut self) {
        if let Some(now) = self.now {
            self.last_message = now;
        }
    }

    /// A pong arrived: if it answers the keepalive ping, the round trip is measured.
    pub fn pong(&mut self, payload: &[u8]) {
        if let (Some(now), Some((seq, sent))) = (self.now, self.ping)
            && payload == ping_payload(seq)
        {
            self.rtt = Some(now.saturating_sub(sent));
            self.awaiting = false;
        }
    }

    /// A keepalive ping is being sent: its payload.
    pub fn ping_sent(&mut self, expect_answer: bool) -> [u8; 8] {
        let seq = self.ping.map_or(0, |(seq, _)| seq.wrapping_add(1));
        self.ping = Some((seq, self.now.unwrap_or_default()));
        self.awaiting = expect_answer;
        ping_payload(seq)
    }

    /// Our close frame was queued.
    pub fn close_sent(&mut self) {
        self.close_sent = self.now;
    }

    /// The connection closed.
    pub fn closed(&mut self) {
        if self.closed.is_none() {
            self.closed = self.now;
        }
    }

    /// The earliest deadline in `phase`, and what it asks for. (Asked for
    /// several times per message: by each read's deadline and each input's
    /// check for what is due; so it computes only what the phase has.)
    #[inline]
    pub fn next(&self, phase: Phase, config: &Config) -> Option<(Duration, Due)> {
        self.now?;
        match phase {
            Phase::Handshake => {
                after(self.started, config.handshake_timeout).map(|at| (at, Due::Handshake))
            }
            Phase::Open => {
                let keepalive = if self.awaiting {
                    let sent = self.ping.map_or(self.last_rx, |(_, t)| t);
                    after(sent, config.keepalive_timeout).map(|at| (at, Due::Unresponsive))
                } else {
                    // The next ping: an interval after the last sign of life or
                    // the last ping, whichever came later.
                    let since = self.ping.map_or(self.last_rx, |(_, t)| t.max(self.last_rx));
                    after(since, config.keepalive_interval).map(|at| (at, Due::Ping))
                };
                let idle = after(self.last_message, config.idle_timeout).map(|at| (at, Due::Idle));
                match (keepalive, idle) {
                    // The keepalive's first when both fall at once.
                    (Some(k), Some(i)) => Some(if i.0 < k.0 { i } else { k }),
                    (k, i) => k.or(i),
                }
            }
            // What happened before the clock started counts from its start.
            Phase::CloseSent => after(
                self.close_sent.unwrap_or(self.started),
                config.close_timeout,
            )
            .map(|at| (at, Due::Close)),
            Phase::Closed { linger } if linger && !self.linger_expired => {
                after(self.closed.unwrap_or(self.started), config.close_timeout)
                    .map(|at| (at, Due::Linger))
            }
            Phase::Closed { .. } => None,
        }
    }
}

/// `d` after `from`. A zero duration counts as the least one, so that a
/// deadline that fired lies after `now` (and fires once per call).
#[inline]
fn after(from: Duration, d: Option<Duration>) -> Option<Duration> {
    d.map(|d| from.saturating_add(d.max(Duration::from_nanos(1))))
}

fn ping_payload(seq: u32) -> [u8; 8] {
    let mut payload = [0; 8];
    payload[..4].copy_from_slice(&PING_TAG);
    payload[4..].copy_from_slice(&seq.to_be_bytes());
    payload
}

impl Connection {
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
    /// connection with [`Event::Closed`](super::Event::Closed) carrying an [`Error::Timeout`](crate::Error::Timeout).
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
            self.core.tx.release_idle();
        }
    }

    /// When the empty buffers are to be freed: after
    /// [`Config::buffer_release_delay`] without traffic.
    fn release_due(&self) -> Option<Duration> {
        let core = &self.core;
        let tx = core.tx.holding();
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

    /// The connection's clock: the latest time given to
    /// [`handle_timeout`](Self::handle_timeout), or `None` until the first.
    pub fn time(&self) -> Option<Duration> {
        self.core.timers.now()
    }

    /// The round trip time the last answered keepalive ping measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.core.timers.rtt
    }
}

impl Core {
    /// The connection's phase, for its timers.
    pub(super) fn phase(&self) -> Phase {
        match &self.state {
            State::AwaitResponse(_) | State::AwaitRequest | State::RequestReceived => {
                Phase::Handshake
            }
            State::Open => Phase::Open,
            State::CloseSent => Phase::CloseSent,
            State::Closed { info, .. } => Phase::Closed {
                linger: self.role == Role::Client && info.clean && !self.recv.eof,
            },
        }
    }

    /// A deadline passed. `partial`: part of a request was received.
    fn fire(&mut self, due: Due, partial: bool) {
        match due {
            Due::Handshake => self.handshake_timed_out(partial),
            Due::Ping => {
                let payload = self
                    .timers
                    .ping_sent(self.config.keepalive_timeout.is_some());
                self.tx.queue(OpCode::PING, true, false, &payload);
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
}
