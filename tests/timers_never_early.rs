//! A property of every timer together: over random configs, commands, reads,
//! time steps and ends of stream, on both sides (with or without the opening
//! handshake), no timer fires before its deadline, the next deadline is
//! always in the future, deadlines move only with input, and a closed
//! connection stays closed.

mod common;
use common::*;
#[path = "common/timers.rs"]
mod timers;
use core::time::Duration;
use proptest::prelude::*;
use timers::*;
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::{CloseCode, Config, Connection, OwnedEvent, SeededEntropy};

#[derive(Debug, Clone)]
enum Advance {
    By(Duration),
    ToDeadline,
    JustBefore,
}

#[derive(Debug, Clone)]
enum Op {
    Advance(usize, Advance),
    /// Delivers a share (of 256) of one side's pending bytes to the other.
    Deliver(usize, u8),
    Text(usize, usize),
    Ping(usize),
    Pong(usize),
    Close(usize),
    /// The other side's remaining bytes arrive, then the end of the stream.
    Eof(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let side = 0..2usize;
    let advance = prop_oneof![
        3 => (0u64..60_000).prop_map(|n| Advance::By(ms(n))),
        2 => Just(Advance::ToDeadline),
        2 => Just(Advance::JustBefore),
    ];
    prop_oneof![
        6 => (side.clone(), advance).prop_map(|(s, a)| Op::Advance(s, a)),
        6 => (side.clone(), any::<u8>()).prop_map(|(s, f)| Op::Deliver(s, f)),
        2 => (side.clone(), 0usize..200).prop_map(|(s, n)| Op::Text(s, n)),
        1 => side.clone().prop_map(Op::Ping),
        1 => side.clone().prop_map(Op::Pong),
        1 => side.clone().prop_map(Op::Close),
        1 => side.prop_map(Op::Eof),
    ]
}

fn maybe_ms(lo: u64, hi: u64) -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![1 => Just(None), 3 => (lo..hi).prop_map(|n| Some(ms(n)))]
}

fn timer_config() -> impl Strategy<Value = Config> {
    (
        maybe_ms(1, 30_000),
        maybe_ms(1, 20_000),
        any::<bool>(),
        maybe_ms(1, 10_000),
        maybe_ms(1, 10_000),
        maybe_ms(1, 60_000),
    )
        .prop_map(|(interval, timeout, needs_pong, close, handshake, idle)| {
            config(|c| {
                c.keepalive_interval = interval;
                c.keepalive_timeout = timeout;
                c.keepalive_needs_pong = needs_pong;
                c.close_timeout = close;
                c.handshake_timeout = handshake;
                c.idle_timeout = idle;
            })
        })
}

/// What can be seen of a connection from outside, to tell whether a call did anything.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    deadline: Option<Duration>,
    pending: usize,
    open: bool,
    closed: bool,
    close_transport: bool,
    rtt: Option<Duration>,
}

fn seen(conn: &Connection) -> Seen {
    Seen {
        deadline: conn.poll_timeout(),
        pending: conn.pending_transmit(),
        open: conn.is_open(),
        closed: conn.is_closed(),
        close_transport: conn.should_close_transport(),
        rtt: conn.rtt(),
    }
}

struct Sim {
    conns: [Connection; 2],
    now: [Duration; 2],
    closed_events: [usize; 2],
    /// The side has seen the end of the stream: nothing more arrives.
    eof: [bool; 2],
}

impl Sim {
    /// Drains `side`'s events, accepting a request, and checks the close event.
    fn events(&mut self, side: usize) -> Vec<OwnedEvent> {
        let mut events = drain_events(&mut self.conns[side]);
        if events.iter().any(|e| matches!(e, OwnedEvent::Request(_))) {
            self.conns[side].accept(Accept::new()).unwrap();
            events.extend(drain_events(&mut self.conns[side]));
        }
        for (i, event) in events.iter().enumerate() {
            if let OwnedEvent::Closed(_) = event {
                self.closed_events[side] += 1;
                assert_eq!(self.closed_events[side], 1, "a second Closed event");
                assert_eq!(i, events.len() - 1, "events after Closed: {events:?}");
                assert!(self.conns[side].is_closed());
            }
        }
        events
    }

    fn step(&mut self, op: &Op) {
        let before = [seen(&self.conns[0]), seen(&self.conns[1])];
        // The sides whose timers may move: the one given time or a command,
        // and the one fed bytes.
        let mut touched = [false; 2];
        match *op {
            Op::Advance(side, ref how) => {
                touched[side] = true;
                let deadline = before[side].deadline;
                let t = match (how, deadline) {
                    (Advance::ToDeadline, Some(d)) => d,
                    (Advance::JustBefore, Some(d)) => d.saturating_sub(ms(1)),
                    (Advance::By(by), _) => self.now[side] + *by,
                    (_, None) => self.now[side] + secs(1),
                };
                let conn = &mut self.conns[side];
                conn.handle_timeout(t);
                let events = self.events(side);
                let conn = &self.conns[side];
                let early = deadline.is_none_or(|d| t < d);
                if early {
                    // (a) nothing fires before its deadline.
                    assert!(events.is_empty(), "early events at {t:?}: {events:?}");
                    assert_eq!(seen(conn), before[side], "changed early at {t:?}");
                }
                self.now[side] = self.now[side].max(t);
                // (b) the next deadline is in the future.
                if let Some(next) = conn.poll_timeout() {
                    assert!(next > t, "deadline {next:?} not after {t:?}");
                    assert!(next > self.now[side], "deadline {next:?} in the past");
                }
            }
            Op::Deliver(from, share) => {
                let to = 1 - from;
                touched[to] = true;
                let Some(pending) = self.conns[from].poll_transmit().filter(|_| !self.eof[to])
                else {
                    return self.check(&before, touched);
                };
                let n = (pending.len() * (share as usize + 1)).div_ceil(256);
                let bytes = pending[..n].to_vec();
                self.conns[from].transmitted(n);
                self.conns[to].handle_read(&bytes);
                self.events(to);
                // The sender's timers do not depend on what was written.
                let mut expect = before[from].clone();
                expect.pending -= n;
                let now_from = seen(&self.conns[from]);
                expect.close_transport = now_from.close_transport;
                assert_eq!(now_from, expect, "writing moved the sender's state");
            }
            Op::Text(side, len) => {
                touched[side] = true;
                let _ = self.conns[side].send_text(&"t".repeat(len));
            }
            Op::Ping(side) => {
                touched[side] = true;
                let _ = self.conns[side].send_ping(b"app ping");
            }
            Op::Pong(side) => {
                touched[side] = true;
                let _ = self.conns[side].send_pong(b"app pong");
            }
            Op::Close(side) => {
                touched[side] = true;
                let _ = self.conns[side].close(CloseCode::NORMAL, "done");
                self.events(side);
            }
            Op::Eof(side) => {
                touched[side] = true;
                if !self.eof[side] {
                    let bytes = take_transmit(&mut self.conns[1 - side]);
                    self.conns[side].handle_read(&bytes);
                    self.conns[side].handle_eof();
                    self.eof[side] = true;
                    self.events(side);
                }
                // The peer's queue was emptied: only its pending count may differ.
                let peer = seen(&self.conns[1 - side]);
                let expect = Seen {
                    pending: peer.pending,
                    close_transport: peer.close_transport,
                    ..before[1 - side].clone()
                };
                assert_eq!(peer, expect, "the peer's writes moved its state");
            }
        }
        self.check(&before, touched);
    }

    fn check(&self, before: &[Seen; 2], touched: [bool; 2]) {
        for side in 0..2 {
            let after = seen(&self.conns[side]);
            // (d) closed stays closed.
            assert!(!before[side].closed || after.closed, "side {side} reopened");
            // (c) a side given nothing keeps its deadline (and everything else,
            // but for bytes the other side wrote from its queue).
            if !touched[side] {
                assert_eq!(
                    after.deadline, before[side].deadline,
                    "side {side} deadline moved without input"
                );
                assert_eq!(after.open, before[side].open);
                assert_eq!(after.closed, before[side].closed);
                assert_eq!(after.rtt, before[side].rtt);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn timers_never_fire_early_and_deadlines_move_only_with_input(
        client_cfg in timer_config(),
        server_cfg in timer_config(),
        handshake in any::<bool>(),
        start in 0u64..1_000_000,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let (client, server) = if handshake {
            let request = ClientRequest::new("ws://example.com/").unwrap();
            let client = Connection::client(&request, client_cfg, SeededEntropy::new(start))
                .unwrap();
            (client, Connection::server(server_cfg))
        } else {
            (
                Connection::open_client(client_cfg, SeededEntropy::new(start)),
                Connection::open_server(server_cfg),
            )
        };
        let start = ms(start);
        let mut sim = Sim {
            conns: [client, server],
            now: [start; 2],
            closed_events: [0; 2],
            eof: [false; 2],
        };
        for side in 0..2 {
            prop_assert_eq!(sim.conns[side].poll_timeout(), None);
            sim.conns[side].handle_timeout(start);
        }
        for op in &ops {
            sim.step(op);
        }
    }
}
