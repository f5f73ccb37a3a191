//! zlib states shared by many connections: a connection borrows a
//! compressor or decompressor for one message and gives it back, so an idle
//! connection holds none (see [`Memory::Shared`](super::Memory::Shared)).

use alloc::sync::Arc;
use alloc::vec::Vec;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Compressor, Decompressor};

/// zlib states that connections borrow, one message at a time: the memory
/// they cost is one compressor and one decompressor per message being
/// compressed or inflated at once (about the number of threads), not per
/// connection. Cloning it shares the same states. The caller owns it: one per
/// process, per runtime or per thread, as it likes (the core keeps no global
/// state).
///
/// ```
/// use wsmachine::Config;
/// use wsmachine::deflate::{CodecPool, DeflateConfig};
/// let pool = CodecPool::new();
/// let mut config = Config::default();
/// config.deflate = Some(DeflateConfig::shared(&pool, 11));
/// // Every connection made with (a clone of) `config` borrows from `pool`.
/// ```
#[derive(Clone, Default)]
pub struct CodecPool {
    inner: Arc<Mutex<Idle>>,
}

/// The states not in use.
#[derive(Default)]
struct Idle {
    /// Compressors with their level and window bits.
    compressors: Vec<(u32, u8, Compressor)>,
    decompressors: Vec<Decompressor>,
}

/// The most idle states of each kind a pool keeps; more are freed as they
/// come back (after a burst of concurrent messages).
const MAX_IDLE: usize = 16;

impl CodecPool {
    /// An empty pool: states are made as connections first need them.
    pub fn new() -> Self {
        Self::default()
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        // A panic elsewhere while the lock was held leaves nothing half
        // done: the lists are only pushed to and popped from.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A compressor at `level` with a window of `window_bits`, with no
    /// context (restart it with the connection's).
    pub(crate) fn take_compressor(&self, level: u32, window_bits: u8) -> Compressor {
        let found = {
            let mut idle = self.idle();
            let at = idle
                .compressors
                .iter()
                .position(|&(l, w, _)| (l, w) == (level, window_bits));
            at.map(|at| idle.compressors.swap_remove(at).2)
        };
        found.unwrap_or_else(|| Compressor::new(level, window_bits, false))
    }

    /// Gives back a compressor taken with these `level` and `window_bits`.
    pub(crate) fn put_compressor(&self, level: u32, window_bits: u8, compressor: Compressor) {
        let mut idle = self.idle();
        if idle.compressors.len() < MAX_IDLE {
            idle.compressors.push((level, window_bits, compressor));
        }
    }

    /// A decompressor (its window takes any peer's), with no context.
    pub(crate) fn take_decompressor(&self) -> Decompressor {
        let found = self.idle().decompressors.pop();
        found.unwrap_or_else(|| Decompressor::new(15, false))
    }

    /// Gives back a decompressor.
    pub(crate) fn put_decompressor(&self, decompressor: Decompressor) {
        let mut idle = self.idle();
        if idle.decompressors.len() < MAX_IDLE {
            idle.decompressors.push(decompressor);
        }
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
