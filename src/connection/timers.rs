//! Timers as data: the connection never reads a clock. Time comes in through
//! [`Connection::handle_timeout`](super::Connection::handle_timeout) as a
//! [`Duration`] since an origin the caller chooses; every deadline is derived
//! from times seen that way, and nothing runs until the first one arrives.

use core::time::Duration;

use crate::config::Config;

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

    /// The earliest deadline in `phase`, and what it asks for.
    pub fn next(&self, phase: Phase, config: &Config) -> Option<(Duration, Due)> {
        self.now?;
        // A zero duration counts as the least one, so that a deadline that
        // fired lies after `now` (and fires once per call).
        let after = |from: Duration, d: Option<Duration>| {
            d.map(|d| from.saturating_add(d.max(Duration::from_nanos(1))))
        };
        let candidates: [(Option<Duration>, Due); 3] = match phase {
            Phase::Handshake => [
                (
                    after(self.started, config.handshake_timeout),
                    Due::Handshake,
                ),
                (None, Due::Handshake),
                (None, Due::Handshake),
            ],
            Phase::Open => {
                let keepalive = if self.awaiting {
                    let sent = self.ping.map_or(self.last_rx, |(_, t)| t);
                    (after(sent, config.keepalive_timeout), Due::Unresponsive)
                } else {
                    // The next ping: an interval after the last sign of life or
                    // the last ping, whichever came later.
                    let since = self.ping.map_or(self.last_rx, |(_, t)| t.max(self.last_rx));
                    (after(since, config.keepalive_interval), Due::Ping)
                };
                let idle = (after(self.last_message, config.idle_timeout), Due::Idle);
                [keepalive, idle, (None, Due::Idle)]
            }
            // What happened before the clock started counts from its start.
            Phase::CloseSent => [
                (
                    after(
                        self.close_sent.unwrap_or(self.started),
                        config.close_timeout,
                    ),
                    Due::Close,
                ),
                (None, Due::Close),
                (None, Due::Close),
            ],
            Phase::Closed { linger } => [
                (
                    (linger && !self.linger_expired)
                        .then(|| after(self.closed.unwrap_or(self.started), config.close_timeout))
                        .flatten(),
                    Due::Linger,
                ),
                (None, Due::Linger),
                (None, Due::Linger),
            ],
        };
        candidates
            .into_iter()
            .filter_map(|(at, due)| at.map(|at| (at, due)))
            .min_by_key(|&(at, _)| at)
    }
}

fn ping_payload(seq: u32) -> [u8; 8] {
    let mut payload = [0; 8];
    payload[..4].copy_from_slice(&PING_TAG);
    payload[4..].copy_from_slice(&seq.to_be_bytes());
    payload
}
