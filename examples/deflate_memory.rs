//! Measures what permessage-deflate costs in memory and buys in size: for every
//! window size, the heap each direction's zlib state holds after a message
//! (counted by a global allocator), and the compression ratio on a JSON-like
//! corpus. Prints markdown tables.
//!
//! ```text
//! cargo run --release --example deflate_memory
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use wsmachine::deflate::{Compressor, Decompressor, DeflateConfig};

#[path = "support/json_corpus.rs"]
mod json_corpus;
use json_corpus::corpus;

/// Counts the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter only observes the sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn main() {
    let messages = corpus(2000);
    let raw: usize = messages.iter().map(String::len).sum();

    let level = DeflateConfig::default().level;
    println!("Heap held after one message, by window bits (level {level}, the default):\n");
    println!("| window bits | compressor | decompressor | both |");
    println!("|---|---|---|---|");
    for bits in 8..=15u8 {
        let before = LIVE.load(Relaxed);
        let mut compressor = Compressor::new(level, bits, false);
        let mut wire = Vec::with_capacity(4096);
        compressor.compress(messages[0].as_bytes(), true, &mut wire);
        let compressor_heap = LIVE.load(Relaxed) - before - wire.capacity();

        let before = LIVE.load(Relaxed);
        let mut decompressor = Decompressor::new(bits, false);
        let mut out = Vec::with_capacity(4096);
        decompressor
            .decompress(&wire, true, &mut out, usize::MAX)
            .expect("inflates");
        assert_eq!(out, messages[0].as_bytes());
        let decompressor_heap = LIVE.load(Relaxed) - before - out.capacity();
        println!(
            "| {bits} | {} | {} | {} |",
            kib(compressor_heap),
            kib(decompressor_heap),
            kib(compressor_heap + decompressor_heap)
        );
    }

    println!(
        "\nCompression of {} JSON-like messages ({} bytes, {} B on average), one message per frame:\n",
        messages.len(),
        raw,
        raw / messages.len()
    );
    println!("| level | window bits | context takeover | compressed | ratio |");
    println!("|---|---|---|---|---|");
    for (level, bits, takeover) in [
        (1, 15, true),
        (6, 15, true),
        (9, 15, true),
        (6, 10, true),
        (6, 15, false),
        (1, 15, false),
    ] {
        let mut compressor = Compressor::new(level, bits, !takeover);
        let mut decompressor = Decompressor::new(bits, !takeover);
        let (mut wire, mut out, mut total) = (Vec::new(), Vec::new(), 0);
        for m in &messages {
            wire.clear();
            out.clear();
            compressor.compress(m.as_bytes(), true, &mut wire);
            total += wire.len();
            decompressor
                .decompress(&wire, true, &mut out, usize::MAX)
                .expect("inflates");
            assert_eq!(out, m.as_bytes());
        }
        println!(
            "| {level} | {bits} | {} | {total} B | {:.2}x |",
            if takeover { "yes" } else { "no" },
            raw as f64 / total as f64
        );
    }
}
