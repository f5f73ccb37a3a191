//! Where a connection's zlib states live ([`Memory`]): its own, or borrowed
//! from a [`CodecPool`] for one message at a time, so an idle connection
//! holds none.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Compressor, Decompressor, DeflateConfig};

/// How a connection holds its zlib states, the memory permessage-deflate
/// costs (see the [module docs](crate::deflate#memory) for the sizes).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Memory {
    /// Each connection has its own compressor and decompressor, allocated
    /// when a direction first compresses, kept for context takeover and freed
    /// after each message without it. `mem_level` is zlib's memLevel (1–9)
    /// for the compressor.
    Dedicated {
        /// zlib's memLevel (1–9).
        mem_level: u8,
    },
    /// Connections borrow a compressor or decompressor from `pool` for each
    /// message and give it back after: an idle connection holds no zlib
    /// state. With context takeover a connection keeps only the last bytes of
    /// each direction (its window: 2^bits bytes), which the borrowed state
    /// takes as its context (a preset dictionary), so the peer sees the same
    /// stream as from a dedicated state. `window_bits` (8–15) caps the
    /// window we compress with and, as a server, the one a client is asked
    /// for when it lets the server choose (`client_max_window_bits` without
    /// a value, as browsers send): the bytes kept per direction.
    Shared {
        /// The states to borrow.
        pool: CodecPool,
        /// The largest window kept per direction, in bits (8–15).
        window_bits: u8,
    },
}

/// The window [`Memory::default`] keeps per direction, in bits: 4 KiB each
/// way, as Python websockets' default (12 bits) compresses with.
pub const DEFAULT_SHARED_WINDOW_BITS: u8 = 12;

impl Default for Memory {
    /// [`Memory::Shared`] with a new [`CodecPool`] of its own and 12-bit
    /// windows ([`DEFAULT_SHARED_WINDOW_BITS`]): about 13 KiB per connection
    /// after traffic, within 2% of a dedicated state's ratio on JSON.
    /// Connections share the pool when they are made from one configuration
    /// or its clones, so make one and clone it, rather than a new default
    /// per connection (which would give each connection a pool, and so a
    /// state, of its own).
    fn default() -> Self {
        Self::Shared {
            pool: CodecPool::new(),
            window_bits: DEFAULT_SHARED_WINDOW_BITS,
        }
    }
}

impl DeflateConfig {
    /// The defaults, with zlib states borrowed from `pool` and at most
    /// `window_bits` of context kept per direction ([`Memory::Shared`]).
    pub fn shared(pool: &CodecPool, window_bits: u8) -> Self {
        Self {
            memory: Memory::Shared {
                pool: pool.clone(),
                window_bits: window_bits.clamp(8, 15),
            },
            ..Self::default()
        }
    }

    /// The defaults, with zlib states borrowed from `pool` and no context
    /// kept at all: a server asks for no context takeover both ways (RFC 7692
    /// §7.1.1), so each message is compressed on its own. Nothing is held
    /// per connection; small messages compress less.
    pub fn shared_without_context(pool: &CodecPool) -> Self {
        Self {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Self::shared(pool, 15)
        }
    }

    /// The defaults, with a dedicated compressor at zlib's `mem_level` (1–9)
    /// per connection ([`Memory::Dedicated`]).
    pub fn dedicated(mem_level: u8) -> Self {
        Self {
            memory: Memory::Dedicated {
                mem_level: mem_level.clamp(1, 9),
            },
            ..Self::default()
        }
    }

    /// The window a client that lets the server choose is asked for: the
    /// shared memory's window, within the server's limit.
    pub(super) fn preferred_client_window(&self, limit: u8) -> u8 {
        match &self.memory {
            Memory::Shared { window_bits, .. } => limit.min(*window_bits).max(8),
            Memory::Dedicated { .. } => limit,
        }
    }
}

/// zlib states that connections borrow, one message at a time: the memory
/// they cost is one compressor and one decompressor per message being
/// compressed or inflated at once (about the number of threads), not per
/// connection. Cloning it shares the same states. The caller owns it: one per
/// process, per runtime or per thread, as it likes (the core keeps no global
/// state).
///
/// A state given back remembers whose it was: when the same connection
/// borrows again, it goes on with its context as it is, as fast as a
/// dedicated state. The pool keeps up to a [capacity](Self::with_capacities)
/// of idle states of each kind; while it has room a connection without one of
/// its own gets a new state rather than another connection's, and once full
/// it takes the one idle longest, which restarts from the connection's kept
/// window (a reset and a preset dictionary: some microseconds). So up to
/// that many busy connections run at dedicated speed, and any number of idle
/// ones cost only their windows. By default it keeps 16 compressors and 128
/// decompressors (a decompressor is a third of a compressor's size, and
/// every connection of a busy server receives at once: chat, tickers,
/// games).
///
/// ```
/// use wsmachine::Config;
/// use wsmachine::deflate::{CodecPool, DeflateConfig};
/// let pool = CodecPool::new();
/// let mut config = Config::default();
/// config.deflate = Some(DeflateConfig::shared(&pool, 11));
/// // Every connection made with (a clone of) `config` borrows from `pool`.
/// ```
#[derive(Clone)]
pub struct CodecPool {
    inner: Arc<Shared>,
}

struct Shared {
    idle: Mutex<Idle>,
    /// The next borrower's number.
    next_owner: AtomicU64,
    /// The most idle compressors kept.
    compressors: usize,
    /// The most idle decompressors kept.
    decompressors: usize,
}

impl Default for CodecPool {
    fn default() -> Self {
        Self::with_capacities(DEFAULT_COMPRESSORS, DEFAULT_DECOMPRESSORS)
    }
}

/// Idle states of one kind, each with whose context it holds, in slots that
/// keep their place: a state given back goes where its owner's last one lay
/// when that slot is free, and its owner's [`Ticket`] remembers where, so
/// taking it back looks at one slot (no scan per message). Slots emptied
/// while their owners inflate or compress are the holes that new owners
/// fill; there are never more slots than the capacity.
struct Shelf<T> {
    /// `None`: a hole. Kept apart from the states, so that a scan (for a
    /// hole, or the state idle longest) reads a few bytes a slot.
    tags: Vec<Option<Tag>>,
    states: Vec<Option<T>>,
    /// How many slots hold a state.
    held: usize,
    /// Counts the states given back: the lowest stamp was idle longest.
    clock: u64,
}

#[derive(Clone, Copy)]
struct Tag {
    owner: u64,
    /// Compressors: their level and window bits.
    kind: (u32, u8),
    /// When it was given back.
    stamp: u64,
}

/// A borrower's claim on the pool, for one kind of state: whose contexts
/// are kept for it, and the slot where its state was given back.
#[derive(Debug)]
pub(crate) struct Ticket {
    owner: u64,
    /// `usize::MAX` until a state is first given back.
    slot: usize,
}

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Self {
            tags: Vec::new(),
            states: Vec::new(),
            held: 0,
            clock: 0,
        }
    }
}

#[derive(Default)]
struct Idle {
    // Boxed: a state moves in and out of the shelf for every message, as a
    // pointer rather than its 136 to 144 bytes.
    compressors: Shelf<Box<Compressor>>,
    decompressors: Shelf<Box<Decompressor>>,
}

/// The default number of idle compressors kept (about 2 MiB at 12-bit windows).
const DEFAULT_COMPRESSORS: usize = 16;

/// The default number of idle decompressors kept (at most 5.8 MiB): enough
/// for 100 connections receiving at once to keep their own, as under
/// uWebSockets' load generator; 16 made each of their messages restart one.
const DEFAULT_DECOMPRESSORS: usize = 128;

impl<T> Shelf<T> {
    fn len(&self) -> usize {
        self.held
    }

    fn remove(&mut self, at: usize) -> Option<(T, Tag)> {
        let tag = self.tags[at].take()?;
        self.held -= 1;
        Some((self.states[at].take()?, tag))
    }

    /// Where the state idle longest is.
    fn oldest(&self) -> Option<usize> {
        let stamps = self.tags.iter().enumerate();
        let held = stamps.filter_map(|(i, tag)| Some((i, tag.as_ref()?.stamp)));
        held.min_by_key(|&(_, stamp)| stamp).map(|(i, _)| i)
    }

    /// Takes `ticket`'s own state of `kind` if it waits in its slot (context
    /// intact); else, when the shelf is full, the state idle longest,
    /// whatever its kind (one of another kind is freed, and a new one made);
    /// else nothing (make a new one, leaving the others' contexts alone).
    fn take(&mut self, ticket: &Ticket, kind: (u32, u8), capacity: usize) -> Option<(T, bool)> {
        let at = ticket.slot;
        if let Some(Some(tag)) = self.tags.get(at)
            && tag.owner == ticket.owner
            && tag.kind == kind
        {
            return self.remove(at).map(|(state, _)| (state, true));
        }
        if self.len() < capacity {
            return None;
        }
        let (state, tag) = self.remove(self.oldest()?)?;
        (tag.kind == kind).then_some((state, false))
    }

    /// Keeps a state given back, freeing the one idle longest if the shelf
    /// is full, in the ticket's slot if it is free, else in a hole; and
    /// notes the slot in the ticket.
    fn put(&mut self, state: T, ticket: &mut Ticket, kind: (u32, u8), capacity: usize) {
        if self.len() >= capacity.max(1)
            && let Some(at) = self.oldest()
        {
            self.remove(at);
        }
        let at = match self.tags.get(ticket.slot) {
            Some(None) => ticket.slot,
            _ => match self.tags.iter().position(Option::is_none) {
                Some(hole) => hole,
                None => {
                    self.tags.push(None);
                    self.states.push(None);
                    self.tags.len() - 1
                }
            },
        };
        self.clock += 1;
        let stamp = self.clock;
        self.tags[at] = Some(Tag {
            owner: ticket.owner,
            kind,
            stamp,
        });
        self.states[at] = Some(state);
        self.held += 1;
        ticket.slot = at;
    }
}

impl CodecPool {
    /// An empty pool that keeps up to 16 idle compressors and 128 idle
    /// decompressors: states are made as connections first need them.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty pool that keeps up to `capacity` idle states of each kind
    /// ([`with_capacities`](Self::with_capacities) with both the same).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacities(capacity, capacity)
    }

    /// An empty pool that keeps up to `compressors` idle compressors and
    /// `decompressors` idle decompressors (at least one of each): the busy
    /// connections that send, and that receive, at dedicated speed; and the
    /// memory the pool may hold (compressors of 134 to 371 KiB, decompressors
    /// of 46 KiB; see the [module docs](crate::deflate#memory)).
    ///
    /// ```
    /// use wsmachine::deflate::CodecPool;
    /// // A ticker: few connections send at once, thousands receive.
    /// let pool = CodecPool::with_capacities(4, 1024);
    /// assert_eq!(pool.idle_states(), (0, 0));
    /// ```
    pub fn with_capacities(compressors: usize, decompressors: usize) -> Self {
        Self {
            inner: Arc::new(Shared {
                idle: Mutex::new(Idle::default()),
                next_owner: AtomicU64::new(0),
                compressors: compressors.max(1),
                decompressors: decompressors.max(1),
            }),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        // A panic elsewhere while the lock was held leaves nothing half
        // done: the lists are only pushed to and taken from.
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A claim for a new borrower, which its states are kept under: one
    /// per direction of a connection.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket {
            owner: self.inner.next_owner.fetch_add(1, Ordering::Relaxed),
            slot: usize::MAX,
        }
    }

    /// A compressor at `level` with a window of `window_bits`, and whether
    /// it still holds `ticket`'s context (else restart it).
    pub(crate) fn take_compressor(
        &self,
        level: u32,
        window_bits: u8,
        ticket: &Ticket,
    ) -> (Box<Compressor>, bool) {
        let kind = (level, window_bits);
        let capacity = self.inner.compressors;
        let found = self.idle().compressors.take(ticket, kind, capacity);
        found.unwrap_or_else(|| (Box::new(Compressor::new(level, window_bits, false)), false))
    }

    /// Gives back a compressor taken with these `level` and `window_bits`,
    /// holding `ticket`'s context.
    pub(crate) fn put_compressor(
        &self,
        level: u32,
        window_bits: u8,
        ticket: &mut Ticket,
        compressor: Box<Compressor>,
    ) {
        let kind = (level, window_bits);
        let capacity = self.inner.compressors;
        self.idle()
            .compressors
            .put(compressor, ticket, kind, capacity);
    }

    /// A decompressor (its window takes any peer's), and whether it still
    /// holds `ticket`'s context (else restart it).
    pub(crate) fn take_decompressor(&self, ticket: &Ticket) -> (Box<Decompressor>, bool) {
        let capacity = self.inner.decompressors;
        let found = self.idle().decompressors.take(ticket, (0, 0), capacity);
        found.unwrap_or_else(|| (Box::new(Decompressor::new(15, false)), false))
    }

    /// Gives back a decompressor holding `ticket`'s context.
    pub(crate) fn put_decompressor(&self, ticket: &mut Ticket, decompressor: Box<Decompressor>) {
        let capacity = self.inner.decompressors;
        self.idle()
            .decompressors
            .put(decompressor, ticket, (0, 0), capacity);
    }

    /// How many states wait idle: (compressors, decompressors).
    pub fn idle_states(&self) -> (usize, usize) {
        let idle = self.idle();
        (idle.compressors.len(), idle.decompressors.len())
    }
}

impl PartialEq for CodecPool {
    /// The same pool (clones of one another).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for CodecPool {}

impl core::fmt::Debug for CodecPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (compressors, decompressors) = self.idle_states();
        f.debug_struct("CodecPool")
            .field("idle_compressors", &compressors)
            .field("idle_decompressors", &decompressors)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{Shelf, Ticket};

    const K: (u32, u8) = (6, 15);

    fn ticket(owner: u64) -> Ticket {
        Ticket {
            owner,
            slot: usize::MAX,
        }
    }

    /// A shelf holding states named after their owners, given back in
    /// order, and the owners' tickets.
    fn shelf(owners: &[u64], capacity: usize) -> (Shelf<u64>, Vec<Ticket>) {
        let mut shelf = Shelf::default();
        let mut tickets = Vec::new();
        for &o in owners {
            let mut t = ticket(o);
            shelf.put(o, &mut t, K, capacity);
            tickets.push(t);
        }
        (shelf, tickets)
    }

    fn held(s: &Shelf<u64>) -> Vec<u64> {
        let mut left: Vec<u64> = s.states.iter().flatten().copied().collect();
        left.sort();
        left
    }

    #[test]
    fn an_owner_gets_its_own_state_back_from_its_slot() {
        let (mut s, mut t) = shelf(&[1, 2, 3, 4], 8);
        assert_eq!(s.take(&t[1], K, 8), Some((2, true)));
        assert_eq!(s.take(&t[3], K, 8), Some((4, true)));
        // Not full: another's context is left alone.
        assert_eq!(s.take(&ticket(9), K, 8), None);
        assert_eq!(s.len(), 2);
        // Given back, each goes where it lay: the slots keep their places.
        let (slot2, slot4) = (t[1].slot, t[3].slot);
        s.put(4, &mut t[3], K, 8);
        s.put(2, &mut t[1], K, 8);
        assert_eq!((t[1].slot, t[3].slot), (slot2, slot4));
        assert_eq!(s.take(&t[3], K, 8), Some((4, true)));
    }

    #[test]
    fn a_slot_taken_by_another_sends_its_owner_elsewhere() {
        let (mut s, mut t) = shelf(&[1, 2], 8);
        assert_eq!(s.take(&t[0], K, 8), Some((1, true)));
        // A newcomer fills the hole that 1 left while it inflates.
        let mut newcomer = ticket(7);
        s.put(7, &mut newcomer, K, 8);
        assert_eq!(newcomer.slot, t[0].slot);
        s.put(1, &mut t[0], K, 8);
        assert_ne!(t[0].slot, newcomer.slot);
        assert_eq!(s.take(&t[0], K, 8), Some((1, true)));
        assert_eq!(s.take(&newcomer, K, 8), Some((7, true)));
        // Never more slots than states at once.
        assert_eq!(s.tags.len(), 3);
    }

    #[test]
    fn a_full_shelf_gives_out_and_evicts_the_state_idle_longest() {
        let (mut s, mut t) = shelf(&[1, 2, 3, 4], 4);
        assert_eq!(s.take(&t[0], K, 4), Some((1, true)));
        s.put(1, &mut t[0], K, 4);
        // Now 2 has been idle longest, then 3, 4, 1.
        assert_eq!(s.take(&ticket(9), K, 4), Some((2, false)));
        s.put(5, &mut ticket(5), K, 4);
        s.put(6, &mut ticket(6), K, 4); // full: 3 goes
        assert_eq!(s.len(), 4);
        assert_eq!(s.tags.len(), 4);
        // 3's slot now holds another's state: 3 gets the oldest, not its own.
        assert_eq!(s.take(&t[2], K, 4).map(|(_, own)| own), Some(false));
        assert_eq!(held(&s), [1, 5, 6]);
    }

    #[test]
    fn a_state_of_another_kind_is_freed_not_given_out() {
        let (mut s, t) = shelf(&[1], 1);
        assert_eq!(s.take(&t[0], (9, 15), 1), None);
        assert_eq!(s.len(), 0);
    }
}
