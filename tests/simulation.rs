//! Deterministic simulation on the in-memory pair ([`wsmachine::testing`]).
//!
//! Each seed plays one random schedule: both sides send messages (whole,
//! fragmented, or vectored with a partial write), pings and floods of pings
//! (read by a peer that writes nothing meanwhile),
//! and closes; bytes move in random amounts, are delivered in random reads or
//! held back; the virtual clock jumps, firing keepalives and timeouts; and,
//! in the hostile half of the seeds, a side's stream is cut mid-frame (the
//! rest never arrives) or shut down. Configurations are random too: whole or
//! streaming messages, read buffers from 1 byte, send-buffer marks from
//! 256 bytes, buffers released at once or after a delay, permessage-deflate
//! with random parameters and memory settings (dedicated, or zlib states
//! shared from a pool) or none, through the real opening handshake.
//!
//! Checked after every step:
//! - nothing panics, and no event follows `Closed`;
//! - each message delivered is the next one its peer completed: exactly
//!   once, in order, unchanged (a streamed message piece by piece, as a
//!   prefix of it);
//! - a refused send is only ever `SendBufferFull` with output waiting, or
//!   `Closed` once closing;
//! - each side's memory stays within what its configuration allows, and its
//!   unsent output within its send-buffer mark (plus one message and the
//!   pong backlog); a ping flood adds at most the pong backlog to it.
//!
//! Checked at the end, after both sides close (the clock advanced to each
//! deadline in turn; bounded):
//! - both sides are closed;
//! - a side that ended cleanly (it received its peer's close frame) got every
//!   message the peer completed before it;
//! - the close codes agree: the code a side reports is one that was sent;
//! - without injected faults or timeouts, both ends are clean, with
//!   everything delivered both ways.
//!
//! A failing seed is printed with the last actions; replay it alone with
//! `WSM_SIM_SEED=<seed> cargo test --all-features --test simulation -- --nocapture`.
//! `WSM_SIM_SEEDS=<n>` runs more seeds than CI's fixed set.
#![cfg(feature = "testing")]

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::testing::{Pair, Side};
use wsmachine::{
    CloseCode, CloseInfo, Compress, Config, Error, MessageKind, MessageMode, OwnedEvent, UsageError,
};

/// The seeds CI runs: this many benign ones and as many hostile ones.
const CI_SEEDS: u64 = 200;
/// Largest message a side receives.
const MAX_MESSAGE: usize = 128 * 1024;
/// Largest message the simulation sends.
const LARGEST_SENT: usize = 70_000;
/// Largest single read handed to a connection (a socket's receive buffer).
const MAX_READ: usize = 64 * 1024;
/// How many past actions a failure prints.
const TRAIL: usize = 40;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Msg {
    kind: MessageKind,
    data: Vec<u8>,
}

/// What the simulation knows about one side.
#[derive(Default)]
struct End {
    /// Messages this side completed sending, in order.
    sent: Vec<Msg>,
    /// A fragmented message this side is sending, and how much has gone.
    fragmenting: Option<(Msg, usize)>,
    /// How many of the peer's messages this side received.
    received: usize,
    /// A streamed message this side is receiving.
    assembling: Option<Msg>,
    /// How it ended.
    closed: Option<CloseInfo>,
    /// The code this side asked to close with.
    requested: Option<u16>,
    /// The largest frame this side queued, in bytes on the wire.
    largest_frame: usize,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

struct Sim {
    rng: TestRng,
    pair: Pair,
    ends: [End; 2],
    hostile: bool,
    /// A stream was cut or shut down by the schedule.
    faulted: bool,
    /// The memory bound of each side.
    memory_bound: [usize; 2],
    /// The send-buffer mark of each side.
    mark: [usize; 2],
    trail: VecDeque<String>,
}

fn pick<T: Copy>(rng: &mut TestRng, from: &[T]) -> T {
    from[rng.random_range(0..from.len())]
}

/// A random configuration. Benign ones have no timeout that could fire while
/// bytes are held back, so that every exchange must complete.
fn config(rng: &mut TestRng, hostile: bool) -> Config {
    let mut c = Config::default();
    c.mode = if rng.random_bool(0.5) {
        MessageMode::Whole
    } else {
        MessageMode::Streaming
    };
    c.read_buffer_size = pick(rng, &[1, 7, 64, 512, 4096, 16 * 1024]);
    c.retain_buffer_size = pick(rng, &[16, 512]);
    c.max_message_size = MAX_MESSAGE as u64;
    c.max_frame_size = MAX_MESSAGE as u64;
    c.max_send_buffer = pick(rng, &[256, 4096, 64 * 1024, 4 << 20]);
    c.buffer_release_delay = pick(rng, &[Duration::ZERO, Duration::from_secs(1)]);
    c.keepalive_interval = pick(
        rng,
        &[
            None,
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(30)),
        ],
    );
    c.keepalive_needs_pong = rng.random_bool(0.5);
    if hostile {
        c.keepalive_timeout = pick(
            rng,
            &[
                None,
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(20)),
            ],
        );
        c.close_timeout = Some(pick(
            rng,
            &[Duration::from_secs(1), Duration::from_secs(10)],
        ));
        c.idle_timeout = pick(rng, &[None, Some(Duration::from_secs(60))]);
    } else {
        c.keepalive_timeout = None;
        c.close_timeout = None;
        c.idle_timeout = None;
    }
    c.deflate = if rng.random_bool(0.3) {
        None
    } else {
        let mut d = wsmachine::deflate::DeflateConfig::default();
        d.threshold = pick(rng, &[0, 32, 1024]);
        d.level = pick(rng, &[1, 6]);
        d.server_max_window_bits = rng.random_range(9..=15);
        d.client_max_window_bits = rng.random_range(9..=15);
        d.server_no_context_takeover = rng.random_bool(0.3);
        d.client_no_context_takeover = rng.random_bool(0.3);
        // Where the zlib states live: dedicated at any memLevel, or borrowed
        // from a pool of one (every message restarts from the kept window)
        // or of sixteen, keeping 9- to 15-bit windows.
        d.memory = match rng.random_range(0..3) {
            0 => wsmachine::deflate::Memory::Dedicated {
                mem_level: rng.random_range(1..=9),
            },
            1 => wsmachine::deflate::Memory::Shared {
                pool: wsmachine::deflate::CodecPool::with_capacity(pick(rng, &[1, 16])),
                window_bits: rng.random_range(9..=15),
            },
            _ => d.memory,
        };
        Some(d)
    };
    c
}

/// A random message: mostly small, sometimes large; text is multilingual,
/// binary random or repetitive (something for deflate to do).
fn message(rng: &mut TestRng) -> Msg {
    let len = match rng.random_range(0..10) {
        0 => 0,
        1..=5 => rng.random_range(1..126),
        6..=8 => rng.random_range(126..4096),
        _ => rng.random_range(4096..LARGEST_SENT - 4),
    };
    if rng.random_bool(0.5) {
        let mut text = String::with_capacity(len + 4);
        let pool = ['a', 'z', ' ', '{', 'é', 'ß', '€', '中', '😀'];
        let repetitive = rng.random_bool(0.5);
        while text.len() < len {
            let c = if repetitive {
                pool[text.len() % 4]
            } else {
                pick(rng, &pool)
            };
            text.push(c);
        }
        Msg {
            kind: MessageKind::Text,
            data: text.into_bytes(),
        }
    } else {
        let data = if rng.random_bool(0.5) {
            (0..len).map(|_| rng.random()).collect()
        } else {
            (0..len).map(|i| (i % 7) as u8).collect()
        };
        Msg {
            kind: MessageKind::Binary,
            data,
        }
    }
}

/// What the memory of a connection may reach, given its configuration: its
/// receive buffer (a read, plus a frame kept whole), the message being
/// assembled or inflated, the transmit buffer (the mark, one message and the
/// pong backlog), capacity growth, and the zlib states.
fn memory_bound(config: &Config) -> usize {
    let rx = MAX_READ + MAX_MESSAGE + config.read_buffer_size;
    let assembly = MAX_MESSAGE + config.read_buffer_size;
    let tx = config.max_send_buffer + LARGEST_SENT + 8 * 1024;
    let deflate = if config.deflate.is_some() { 1 << 20 } else { 0 };
    2 * (rx + assembly + tx) + deflate
}

impl Sim {
    fn new(seed: u64, hostile: bool) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8] = hostile as u8;
        let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let client = config(&mut rng, hostile);
        let server = config(&mut rng, hostile);
        let memory_bound = [memory_bound(&client), memory_bound(&server)];
        let mark = [client.max_send_buffer, server.max_send_buffer];
        let request = ClientRequest::new("ws://sim.test/chat").unwrap();
        let pair = Pair::handshake(&request, client, server, Accept::new())
            .expect("the opening handshake completes");
        Sim {
            rng,
            pair,
            ends: Default::default(),
            hostile,
            faulted: false,
            memory_bound,
            mark,
            trail: VecDeque::new(),
        }
    }

    fn note(&mut self, action: String) {
        if self.trail.len() == TRAIL {
            self.trail.pop_front();
        }
        self.trail.push_back(action);
    }

    fn side(&mut self) -> Side {
        if self.rng.random_bool(0.5) {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn run(&mut self) {
        let steps = self.rng.random_range(20..400);
        // A hostile schedule faults once, at a random step, or (one in five)
        // only through its timeouts.
        let fault_at = if self.hostile && self.rng.random_bool(0.8) {
            Some(self.rng.random_range(0..steps))
        } else {
            None
        };
        for step in 0..steps {
            if fault_at == Some(step) {
                self.fault();
            }
            self.step();
            self.react();
            self.check_step();
        }
        self.finish();
    }

    /// One random action.
    fn step(&mut self) {
        let side = self.side();
        match self.rng.random_range(0..200) {
            0..=59 => self.send(side),
            60..=69 => {
                let len = self.rng.random_range(0..=125);
                let payload: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
                self.note(format!("{side:?} ping {len} B"));
                let result = self.pair.conn(side).send_ping(&payload);
                self.refused(side, result);
            }
            70..=71 => self.flood(side),
            72..=121 => {
                let n = self.amount();
                let moved = self.pair.write(side, n);
                self.note(format!("{side:?} writes {moved} B"));
            }
            122..=181 => {
                let n = self.amount().min(MAX_READ);
                self.note(format!("{side:?} reads up to {n} B"));
                let events = self.pair.deliver(side, n);
                self.process(side, events);
            }
            182..=196 => {
                let by = pick(
                    &mut self.rng,
                    &[
                        Duration::from_millis(3),
                        Duration::from_millis(400),
                        Duration::from_secs(2),
                        Duration::from_secs(25),
                    ],
                );
                self.note(format!("time +{by:?}"));
                self.pair.advance(by);
                for side in [Side::Client, Side::Server] {
                    let events = self.pair.events(side);
                    self.process(side, events);
                }
            }
            197 => self.close(side),
            _ => self.send(side),
        }
    }

    /// The hostile schedules' one fault: a side's stream is cut (what is in
    /// flight arrives only in part, then end of stream), or shut down.
    fn fault(&mut self) {
        let side = self.side();
        if self.rng.random_bool(0.5) {
            let in_flight = self.pair.in_flight(side.peer());
            let keep = self.rng.random_range(0..=in_flight);
            self.note(format!(
                "{side:?}'s stream is cut: {keep} of {in_flight} B arrive"
            ));
            self.pair.cut(side, keep);
        } else {
            self.note(format!("{side:?} shuts its output down"));
            self.pair.shutdown(side);
        }
        self.faulted = true;
    }

    /// A ping flood from `side` that its peer reads in full without writing
    /// anything: the peer's pongs may add at most the pong backlog (4 KiB)
    /// and one pong to its unsent output, however many pings came
    /// (RFC 6455 §5.5.3 lets it answer only the latest).
    fn flood(&mut self, side: Side) {
        let peer = side.peer();
        let count = self.rng.random_range(10..3000);
        let payload_len = self.rng.random_range(0..=125);
        self.note(format!("{side:?} floods {count} pings of {payload_len} B"));
        let before = self.pair.conn(peer).pending_transmit();
        for i in 0..count {
            let mut payload = vec![0; payload_len];
            let n = payload_len.min(4);
            payload[..n].copy_from_slice(&(i as u32).to_be_bytes()[..n]);
            let mut result = self.pair.conn(side).send_ping(&payload);
            if let Err(Error::Usage(UsageError::SendBufferFull { .. })) = result {
                self.pair.write(side, usize::MAX);
                result = self.pair.conn(side).send_ping(&payload);
            }
            self.refused(side, result);
        }
        self.pair.write(side, usize::MAX);
        // Bounded: each read takes up to MAX_READ bytes of what is in flight.
        for _ in 0..10_000 {
            if self.pair.in_flight(peer) == 0 {
                break;
            }
            let events = self.pair.deliver(peer, MAX_READ);
            self.process(peer, events);
        }
        let after = self.pair.conn(peer).pending_transmit();
        // The pong backlog, one more pong, and a close echo.
        let allowed = 4096 + 2 * (2 + 4 + 125);
        assert!(
            after <= before + allowed,
            "{peer:?}: a flood of {count} pings took its unsent output from {before} to {after} B"
        );
    }

    /// How many bytes to move: one, a few, or all.
    fn amount(&mut self) -> usize {
        match self.rng.random_range(0..4) {
            0 => 1,
            1 => self.rng.random_range(1..64),
            2 => self.rng.random_range(1..20_000),
            _ => usize::MAX,
        }
    }

    /// What a runtime does: a side that is done closes its transport once
    /// its output is written.
    fn react(&mut self) {
        for side in [Side::Client, Side::Server] {
            let conn = self.pair.conn(side);
            if conn.should_close_transport() && conn.pending_transmit() == 0 {
                self.pair.shutdown(side);
            }
        }
    }

    fn send(&mut self, side: Side) {
        let i = idx(side);
        if let Some((msg, at)) = self.ends[i].fragmenting.take() {
            let left = msg.data.len() - at;
            let n = if left == 0 {
                0
            } else {
                self.rng.random_range(1..=left)
            };
            let fin = at + n == msg.data.len() && self.rng.random_bool(0.8);
            let piece = msg.data[at..at + n].to_vec();
            self.note(format!("{side:?} sends a fragment of {n} B (fin {fin})"));
            let result = self.pair.conn(side).send_fragment(msg.kind, &piece, fin);
            self.track_frame(side, n);
            if result.is_ok() {
                if fin {
                    self.ends[i].sent.push(msg);
                } else {
                    self.ends[i].fragmenting = Some((msg, at + n));
                }
            } else {
                self.ends[i].fragmenting = Some((msg, at));
                self.refused(side, result);
            }
            return;
        }
        let msg = message(&mut self.rng);
        let len = msg.data.len();
        let result =
            match self.rng.random_range(0..6) {
                0..=2 => {
                    let compress = if self.rng.random_bool(0.8) {
                        Compress::Auto
                    } else {
                        Compress::Never
                    };
                    self.note(format!("{side:?} sends {:?} of {len} B", msg.kind));
                    self.pair
                        .conn(side)
                        .send_message(msg.kind, &msg.data, compress)
                }
                3 => {
                    // The rest goes out fragment by fragment, among other actions.
                    self.note(format!(
                        "{side:?} starts a fragmented {:?} of {len} B",
                        msg.kind
                    ));
                    self.ends[i].fragmenting = Some((msg, 0));
                    return self.send(side);
                }
                _ => {
                    // A vectored write that takes part of the frame; the rest is
                    // queued when the `Transmit` is dropped.
                    let cap = self.rng.random_range(0..len + 20);
                    let written = self.pair.conn(side).send_vectored(msg.kind, &msg.data).map(
                        |mut transmit| {
                            let mut written = Vec::new();
                            for slice in transmit.slices() {
                                let n = slice.len().min(cap - written.len().min(cap));
                                written.extend_from_slice(&slice[..n]);
                            }
                            transmit.advance(written.len());
                            written
                        },
                    );
                    let wrote = written.as_ref().map_or(0, Vec::len);
                    self.note(format!(
                        "{side:?} sends {:?} of {len} B vectored, writes {wrote} B",
                        msg.kind
                    ));
                    written.map(|written| self.pair.inject(side.peer(), &written))
                }
            };
        self.track_frame(side, len);
        if result.is_ok() {
            self.ends[i].sent.push(msg);
        } else {
            self.refused(side, result);
        }
    }

    fn track_frame(&mut self, side: Side, payload: usize) {
        // Header, and what deflate may add to incompressible data.
        let frame = payload + 14 + payload / 100 + 64;
        let end = &mut self.ends[idx(side)];
        end.largest_frame = end.largest_frame.max(frame);
    }

    /// A refused command must be refused for a reason the state explains.
    fn refused(&mut self, side: Side, result: Result<(), Error>) {
        let conn = self.pair.conn(side);
        match result {
            Ok(()) => {}
            Err(Error::Usage(UsageError::SendBufferFull { queued, .. })) => {
                assert!(queued > 0, "refused with nothing queued");
                assert_eq!(queued, conn.pending_transmit());
            }
            Err(Error::Usage(UsageError::Closed)) => {
                assert!(!conn.is_open(), "refused as closed while open");
            }
            Err(e) => panic!("{side:?}: unexpected error {e:?}"),
        }
    }

    fn close(&mut self, side: Side) {
        let code = pick(&mut self.rng, &[1000, 1001, 1003, 3000, 4999]);
        let reason = pick(
            &mut self.rng,
            &["", "bye", "closing with a longer reason €"],
        );
        self.note(format!("{side:?} closes with {code}"));
        let was_open = self.pair.conn(side).is_open();
        let result = self.pair.conn(side).close(CloseCode(code), reason);
        match result {
            Ok(()) => {
                assert!(was_open, "close accepted twice");
                self.ends[idx(side)].requested = Some(code);
            }
            Err(Error::Usage(UsageError::Closed)) => assert!(!was_open),
            Err(e) => panic!("{side:?}: close failed with {e:?}"),
        }
    }

    /// Checks the events a side received against what its peer sent.
    fn process(&mut self, side: Side, events: Vec<OwnedEvent>) {
        let (r, p) = (idx(side), idx(side.peer()));
        for event in events {
            assert!(
                self.ends[r].closed.is_none(),
                "{side:?}: event after Closed: {event:?}"
            );
            match event {
                OwnedEvent::Text(text) => self.got(
                    side,
                    Msg {
                        kind: MessageKind::Text,
                        data: text.into_bytes(),
                    },
                ),
                OwnedEvent::Binary(data) => self.got(
                    side,
                    Msg {
                        kind: MessageKind::Binary,
                        data,
                    },
                ),
                OwnedEvent::Fragment {
                    kind,
                    data,
                    first,
                    last,
                } => {
                    let end = &mut self.ends[r];
                    assert_eq!(first, end.assembling.is_none(), "{side:?}: first flag");
                    let msg = end.assembling.get_or_insert(Msg {
                        kind,
                        data: Vec::new(),
                    });
                    assert_eq!(msg.kind, kind, "{side:?}: kind changed mid-message");
                    msg.data.extend_from_slice(&data);
                    // A prefix of the message the peer completed or is sending.
                    let received = end.received;
                    let so_far = msg.clone();
                    let peer = &self.ends[p];
                    let expected = peer
                        .sent
                        .get(received)
                        .or(peer.fragmenting.as_ref().map(|(m, _)| m))
                        .unwrap_or_else(|| panic!("{side:?}: a piece of a message never sent"));
                    assert_eq!(expected.kind, so_far.kind);
                    assert!(
                        expected.data.starts_with(&so_far.data),
                        "{side:?}: streamed piece differs from message {received}"
                    );
                    if last {
                        let msg = self.ends[r].assembling.take().unwrap();
                        self.got(side, msg);
                    }
                }
                OwnedEvent::Ping(_) | OwnedEvent::Pong(_) => {}
                OwnedEvent::Closed(info) => {
                    self.note(format!("{side:?} closed: {info:?}"));
                    self.ends[r].closed = Some(info);
                }
                other => panic!("{side:?}: unexpected event {other:?}"),
            }
        }
    }

    /// A whole message arrived at `side`: it must be the peer's next one.
    fn got(&mut self, side: Side, msg: Msg) {
        let (r, p) = (idx(side), idx(side.peer()));
        let i = self.ends[r].received;
        let sent = &self.ends[p].sent;
        assert!(
            i < sent.len(),
            "{side:?}: message {i} delivered, but only {} were sent",
            sent.len()
        );
        assert!(
            sent[i] == msg,
            "{side:?}: message {i} differs: sent {:?} of {} B, got {:?} of {} B",
            sent[i].kind,
            sent[i].data.len(),
            msg.kind,
            msg.data.len()
        );
        self.ends[r].received += 1;
    }

    fn check_step(&mut self) {
        for side in [Side::Client, Side::Server] {
            let i = idx(side);
            let bound = self.memory_bound[i];
            let slack = self.ends[i].largest_frame + 8 * 1024;
            let conn = self.pair.conn(side);
            assert!(
                conn.memory_usage() <= bound,
                "{side:?}: memory {} over its bound {bound}",
                conn.memory_usage()
            );
            let pending = conn.pending_transmit();
            assert!(
                pending <= self.mark[i].max(slack) + 8 * 1024,
                "{side:?}: {pending} B unsent, over the mark {} and one frame",
                self.mark[i]
            );
        }
    }

    /// Ends the connection: a close from a side still open, then every byte
    /// moved and every deadline fired, until both are closed.
    fn finish(&mut self) {
        if self.pair.client.is_open() && self.pair.server.is_open() {
            let side = self.side();
            self.close(side);
        }
        for _ in 0..200 {
            let (at_client, at_server) = self.pair.pump();
            self.process(Side::Client, at_client);
            self.process(Side::Server, at_server);
            self.check_step();
            if self.pair.client.is_closed() && self.pair.server.is_closed() {
                break;
            }
            let now = self.pair.now();
            let at = self
                .pair
                .next_deadline()
                .unwrap_or(now + Duration::from_secs(1));
            self.note(format!("time to {at:?}"));
            self.pair
                .advance(at.saturating_sub(now).max(Duration::from_millis(1)));
            for side in [Side::Client, Side::Server] {
                let events = self.pair.events(side);
                self.process(side, events);
            }
        }
        for side in [Side::Client, Side::Server] {
            assert!(
                self.pair.conn(side).is_closed(),
                "{side:?} is not closed at the end"
            );
        }
        let timed_out = self.ends.iter().any(|e| {
            e.closed
                .as_ref()
                .is_some_and(|info| matches!(info.error(), Some(Error::Timeout(_))))
        });
        // The codes that went out in close frames: those asked for, those of
        // failures, and 1001 from an idle or keepalive timeout (which may
        // report a later close timeout instead).
        let mut codes: Vec<u16> = self
            .ends
            .iter()
            .flat_map(|e| {
                let failed = e
                    .closed
                    .as_ref()
                    .filter(|info| info.error().is_some())
                    .map(|info| info.code().0);
                e.requested.into_iter().chain(failed)
            })
            .collect();
        if self.hostile {
            codes.push(1001);
        }
        for side in [Side::Client, Side::Server] {
            let (r, p) = (idx(side), idx(side.peer()));
            let info = self.ends[r]
                .closed
                .clone()
                .unwrap_or_else(|| panic!("{side:?} closed without a Closed event"));
            if info.is_clean() {
                assert_eq!(
                    self.ends[r].received,
                    self.ends[p].sent.len(),
                    "{side:?} closed cleanly without every message its peer sent"
                );
                assert!(
                    codes.contains(&info.code().0),
                    "{side:?} reports {} but the codes sent were {codes:?}",
                    info.code().0
                );
            } else {
                assert!(
                    codes.contains(&info.code().0) || info.code().0 == 1006,
                    "{side:?} reports {} but the codes sent were {codes:?}",
                    info.code().0
                );
            }
            if !self.faulted && !timed_out {
                assert!(info.is_clean(), "{side:?} ended unclean: {info:?}");
                assert!(info.error().is_none(), "{side:?} failed: {info:?}");
            }
        }
    }
}

/// What a set of seeds did, printed so that a run shows it exercised something.
#[derive(Debug, Default)]
struct Tally {
    seeds: u64,
    messages_delivered: usize,
    deflate: u64,
    clean_both: u64,
    faulted: u64,
    timed_out: u64,
}

/// Runs one seed; on failure, panics with the seed and the last actions.
fn run_seed(seed: u64, hostile: bool, tally: &mut Tally) {
    let mut sim = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let s = sim.insert(Sim::new(seed, hostile));
        s.run();
    }));
    if let (Ok(()), Some(s)) = (&result, &sim) {
        tally.seeds += 1;
        tally.messages_delivered += s.ends[0].received + s.ends[1].received;
        tally.deflate += s.pair.client.negotiated().extensions.is_some() as u64;
        let infos: Vec<_> = s.ends.iter().filter_map(|e| e.closed.as_ref()).collect();
        tally.clean_both += infos.iter().all(|i| i.is_clean()) as u64;
        tally.faulted += s.faulted as u64;
        tally.timed_out += infos
            .iter()
            .any(|i| matches!(i.error(), Some(Error::Timeout(_))))
            as u64;
    }
    if let Err(panic) = result {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let trail = sim
            .map(|s| s.trail.into_iter().collect::<Vec<_>>().join("\n  "))
            .unwrap_or_default();
        panic!(
            "simulation seed {seed} ({}) failed: {message}\nlast actions:\n  {trail}\n\
             replay: WSM_SIM_SEED={seed} cargo test --all-features --test simulation -- --nocapture",
            if hostile { "hostile" } else { "benign" }
        );
    }
}

/// The seeds to run: `WSM_SIM_SEED` alone, or `WSM_SIM_SEEDS` of them, or CI's set.
fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("WSM_SIM_SEED") {
        return vec![seed.parse().expect("WSM_SIM_SEED is a number")];
    }
    let count = std::env::var("WSM_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CI_SEEDS);
    (0..count).collect()
}

#[test]
fn benign_schedules_deliver_everything_and_close_cleanly() {
    let mut tally = Tally::default();
    for seed in seeds() {
        run_seed(seed, false, &mut tally);
    }
    eprintln!("benign: {tally:?}");
    assert_eq!(tally.clean_both, tally.seeds);
}

#[test]
fn hostile_schedules_lose_nothing_accepted_and_always_close() {
    let mut tally = Tally::default();
    for seed in seeds() {
        run_seed(seed, true, &mut tally);
    }
    eprintln!("hostile: {tally:?}");
}

/// The harness itself: the same seed plays the same schedule.
#[test]
fn a_seed_replays_the_same_schedule() {
    let play = |seed| {
        let mut sim = Sim::new(seed, true);
        sim.run();
        (
            sim.trail.into_iter().collect::<Vec<_>>(),
            sim.ends.iter().map(|e| e.sent.len()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(play(7), play(7));
    assert_ne!(play(7), play(8));
}
