//! Where a connection's zlib states live ([`Memory`]): its own, or borrowed
//! from a [`CodecPool`] for one message at a time, so an idle connection
//! holds none.

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

/// Idle states of one kind, each with whose context it holds. Removal is
/// O(1) (`swap_remove`): a borrow per message must not shift the whole list.
/// The tags are kept apart from the states, so that finding one scans a
/// few bytes a state rather than whole states.
struct Shelf<T> {
    tags: Vec<Tag>,
    states: Vec<T>,
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

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Self {
            tags: Vec::new(),
            states: Vec::new(),
            clock: 0,
        }
    }
}

#[derive(Default)]
struct Idle {
    compressors: Shelf<Compressor>,
    decompressors: Shelf<Decompressor>,
}

/// The default number of idle compressors kept (about 2 MiB at 12-bit windows).
const DEFAULT_COMPRESSORS: usize = 16;

/// The default number of idle decompressors kept (at most 5.8 MiB): enough
/// for 100 connections receiving at once to keep their own, as under
/// uWebSockets' load generator; 16 made each of their messages restart one.
const DEFAULT_DECOMPRESSORS: usize = 128;

impl<T> Shelf<T> {
    fn len(&self) -> usize {
        self.states.len()
    }

    fn remove(&mut self, at: usize) -> (T, Tag) {
        (self.states.swap_remove(at), self.tags.swap_remove(at))
    }

    /// Where the state idle longest is.
    fn oldest(&self) -> Option<usize> {
        (0..self.tags.len()).min_by_key(|&i| self.tags[i].stamp)
    }

    /// Takes `owner`'s own state of `kind` if it waits (context intact);
    /// else, when the shelf is full, the state idle longest, whatever its
    /// kind (one of another kind is freed, and a new one made); else nothing
    /// (make a new one, leaving the others' contexts alone).
    fn take(&mut self, owner: u64, kind: (u32, u8), capacity: usize) -> Option<(T, bool)> {
        if let Some(at) = self
            .tags
            .iter()
            .position(|t| t.owner == owner && t.kind == kind)
        {
            return Some((self.remove(at).0, true));
        }
        if self.len() < capacity {
            return None;
        }
        let (state, tag) = self.remove(self.oldest()?);
        (tag.kind == kind).then_some((state, false))
    }

    /// Keeps a state given back, freeing the one idle longest if the shelf
    /// is full.
    fn put(&mut self, state: T, owner: u64, kind: (u32, u8), capacity: usize) {
        if self.len() >= capacity.max(1)
            && let Some(at) = self.oldest()
        {
            self.remove(at);
        }
        self.clock += 1;
        let stamp = self.clock;
        self.tags.push(Tag { owner, kind, stamp });
        self.states.push(state);
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

    /// A number for a new borrower, which its states are kept under.
    pub(crate) fn owner(&self) -> u64 {
        self.inner.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    /// A compressor at `level` with a window of `window_bits`, and whether
    /// it still holds `owner`'s context (else restart it).
    pub(crate) fn take_compressor(
        &self,
        level: u32,
        window_bits: u8,
        owner: u64,
    ) -> (Compressor, bool) {
        let kind = (level, window_bits);
        let capacity = self.inner.compressors;
        let found = self.idle().compressors.take(owner, kind, capacity);
        found.unwrap_or_else(|| (Compressor::new(level, window_bits, false), false))
    }

    /// Gives back a compressor taken with these `level` and `window_bits`,
    /// holding `owner`'s context.
    pub(crate) fn put_compressor(
        &self,
        level: u32,
        window_bits: u8,
        owner: u64,
        compressor: Compressor,
    ) {
        let kind = (level, window_bits);
        let capacity = self.inner.compressors;
        self.idle()
            .compressors
            .put(compressor, owner, kind, capacity);
    }

    /// A decompressor (its window takes any peer's), and whether it still
    /// holds `owner`'s context (else restart it).
    pub(crate) fn take_decompressor(&self, owner: u64) -> (Decompressor, bool) {
        let capacity = self.inner.decompressors;
        let found = self.idle().decompressors.take(owner, (0, 0), capacity);
        found.unwrap_or_else(|| (Decompressor::new(15, false), false))
    }

    /// Gives back a decompressor holding `owner`'s context.
    pub(crate) fn put_decompressor(&self, owner: u64, decompressor: Decompressor) {
        let capacity = self.inner.decompressors;
        self.idle()
            .decompressors
            .put(decompressor, owner, (0, 0), capacity);
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
    use super::Shelf;

    const K: (u32, u8) = (6, 15);

    /// A shelf holding states named after their owners, given back in order.
    fn shelf(owners: &[u64], capacity: usize) -> Shelf<u64> {
        let mut shelf = Shelf::default();
        for &o in owners {
            shelf.put(o, o, K, capacity);
        }
        shelf
    }

    #[test]
    fn an_owner_gets_its_own_state_back_wherever_it_lies() {
        let mut s = shelf(&[1, 2, 3, 4], 8);
        assert_eq!(s.take(2, K, 8), Some((2, true)));
        assert_eq!(s.take(4, K, 8), Some((4, true)));
        // Not full: another's context is left alone.
        assert_eq!(s.take(9, K, 8), None);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_full_shelf_gives_out_and_evicts_the_state_idle_longest() {
        // Taking from the middle reorders the lists (swap_remove): the
        // order of idleness must survive it.
        let mut s = shelf(&[1, 2, 3, 4], 4);
        assert_eq!(s.take(1, K, 4), Some((1, true)));
        s.put(1, 1, K, 4);
        // Now 2 has been idle longest, then 3, 4, 1.
        assert_eq!(s.take(9, K, 4), Some((2, false)));
        s.put(5, 5, K, 4);
        s.put(6, 6, K, 4); // full: 3 goes
        assert_eq!(s.len(), 4);
        assert_eq!(s.take(3, K, 4).map(|(_, own)| own), Some(false));
        let mut left: Vec<u64> = s.states.clone();
        left.sort();
        assert_eq!(left, [1, 5, 6]);
    }

    #[test]
    fn a_state_of_another_kind_is_freed_not_given_out() {
        let mut s = shelf(&[1], 1);
        assert_eq!(s.take(1, (9, 15), 1), None);
        assert_eq!(s.len(), 0);
    }
}
