//! One 1 KiB JSON message to 10,000 in-memory server connections: the CPU
//! time of a whole broadcast, each connection sending it with `send_text`
//! (framing and, with permessage-deflate, compressing it again) against one
//! `PreparedMessage` (framed once, compressed once) sent with
//! `send_prepared` (copied into each transmit buffer) and with
//! `send_prepared_vectored` (the payload written from where it lies, as a
//! `writev` would). Each connection's output is taken as written, so the
//! queues stay empty. The heap bytes each broadcast allocates are printed
//! before the timings (a counting allocator).
//!
//! `cargo bench --bench broadcast`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use wsmachine::deflate::{Compressor, DeflateConfig};
use wsmachine::handshake::Negotiated;
use wsmachine::{Config, Connection, MessageKind, PreparedMessage};

#[path = "../examples/support/json_corpus.rs"]
mod json_corpus;

/// Counts the bytes allocated, for the figure printed per case.
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counter is only read by this bench.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CONNECTIONS: usize = 10_000;

fn connections(deflate: bool) -> Vec<Connection> {
    let config = Config::default(); // clones share the default pool
    (0..CONNECTIONS)
        .map(|_| {
            let negotiated = Negotiated {
                protocol: None,
                extensions: deflate.then(|| "permessage-deflate".to_string()),
            };
            Connection::open_server_negotiated(config.clone(), negotiated)
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Way {
    SendText,
    Prepared,
    PreparedVectored,
}

/// Prepares `text` as a broadcast does, once for all connections.
fn prepare(text: &str, compressor: Option<&mut Compressor>) -> PreparedMessage {
    match compressor {
        Some(compressor) => {
            PreparedMessage::compressed(MessageKind::Text, text.as_bytes(), compressor).unwrap()
        }
        None => PreparedMessage::text(text),
    }
}

/// One broadcast of `text`, prepared first where `way` sends it prepared:
/// the bytes on the wire.
fn broadcast(
    conns: &mut [Connection],
    way: Way,
    text: &str,
    compressor: Option<&mut Compressor>,
) -> usize {
    let prepared = match way {
        Way::SendText => None,
        Way::Prepared | Way::PreparedVectored => Some(prepare(text, compressor)),
    };
    let mut wire = 0;
    for conn in conns {
        match (way, &prepared) {
            (Way::PreparedVectored, Some(prepared)) => {
                let mut transmit = conn.send_prepared_vectored(prepared).unwrap();
                let n = transmit.remaining();
                transmit.advance(n);
                wire += n;
                continue;
            }
            (_, Some(prepared)) => conn.send_prepared(prepared).unwrap(),
            (_, None) => conn.send_text(text).unwrap(),
        }
        let n = conn.pending_transmit();
        conn.transmitted(n);
        wire += n;
    }
    wire
}

fn bench(c: &mut Criterion) {
    let texts = json_corpus::updates(32);
    let mean = texts.iter().map(String::len).sum::<usize>() / texts.len();
    let mut group = c.benchmark_group(format!("broadcast_{mean}B_json_to_10000"));
    group.sample_size(20);
    for deflate in [false, true] {
        // One compressor for every message prepared: the connections'
        // level (1) and window (15, as agreed with a browser's offer).
        let mut compressor =
            deflate.then(|| Compressor::new(DeflateConfig::default().level, 15, true));
        let mut conns = connections(deflate);
        for (name, way) in [
            ("send_text", Way::SendText),
            ("send_prepared", Way::Prepared),
            ("send_prepared_vectored", Way::PreparedVectored),
        ] {
            let case = format!("{}{name}", if deflate { "deflate_" } else { "" });
            let mut next = texts.iter().cycle();
            // Warm: buffers, pooled states and kept windows at their size.
            for _ in 0..8 {
                broadcast(&mut conns, way, next.next().unwrap(), compressor.as_mut());
            }
            let before = ALLOCATED.load(Ordering::Relaxed);
            let wire = broadcast(&mut conns, way, next.next().unwrap(), compressor.as_mut());
            let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
            println!("{case}: {wire} bytes on the wire, {allocated} bytes allocated per broadcast");
            group.bench_function(&case, |b| {
                b.iter(|| broadcast(&mut conns, way, next.next().unwrap(), compressor.as_mut()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
