//! A counting global allocator for memory tests: include it with
//! `#[path = "common/counting.rs"] mod counting;` in a test file.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts heap bytes per thread, so that a memory test measures its own
/// thread only while the other tests of this file run in parallel. (Thread
/// locals with a const initialiser and no destructor are safe to use inside
/// the allocator.) The connections measured allocate and free on the test's
/// thread only.
struct Counting;

thread_local! {
    static CURRENT: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    let _ = CURRENT.try_with(|current| {
        let now = current.get() + delta;
        current.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// bookkeeping neither allocates nor panics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Both blocks may exist at once while the data moves: count the new
            // one before dropping the old, for a conservative peak.
            count(new_size as i64);
            count(-(layout.size() as i64));
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most heap bytes this thread held
/// during it beyond what it held before.
pub fn peak_heap_growth<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, (peak - base).max(0) as u64)
}

/// Heap bytes this thread holds now.
pub fn heap_now() -> i64 {
    CURRENT.with(Cell::get)
}

/// The heap bytes that dropping `value` frees: what it held.
pub fn heap_held_by<T>(value: T) -> u64 {
    let before = heap_now();
    drop(value);
    (before - heap_now()).max(0) as u64
}
