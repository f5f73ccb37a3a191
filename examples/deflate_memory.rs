//! Measures what permessage-deflate costs in memory and buys in size, per
//! memory setting: the heap a compressing connection holds between messages
//! (counted by a global allocator over 200 real server connections, each
//! through the opening handshake with a browser's offer, after messages both
//! ways), what a shared pool holds once, and the compression ratio on a
//! JSON-like corpus and a chat-like one, both ways. Then, for the codec on its
//! own, the compressor's heap by window bits and zlib memLevel. Prints
//! markdown tables.
//!
//! ```text
//! cargo run --release --example deflate_memory --features deflate,testing
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use wsmachine::deflate::{CodecPool, Compressor, Decompressor, DeflateConfig};
use wsmachine::handshake::{Accept, ClientRequest};
use wsmachine::testing::Pair;
use wsmachine::{Config, Connection, OwnedEvent};

#[path = "support/json_corpus.rs"]
mod json_corpus;

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

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// Connections measured per setting.
const CONNECTIONS: usize = 50;
/// Messages each way per connection before measuring.
const WARM_UP: usize = 400;

/// A server (with `server`) and a client (defaults) through the handshake
/// with Chromium's offer.
fn pair(server: &DeflateConfig) -> Pair {
    let request = ClientRequest::new("ws://localhost/chat")
        .unwrap()
        .extension("permessage-deflate; client_max_window_bits");
    let mut client = Config::default();
    // Dedicated: the client compresses with the whole window agreed, as
    // Chromium does.
    client.deflate = Some(DeflateConfig::dedicated(8));
    let mut config = Config::default();
    config.deflate = Some(server.clone());
    Pair::handshake(&request, client, config, Accept::new()).unwrap()
}

/// Sends `messages` both ways; returns (bytes on the wire server to client,
/// client to server).
fn exchange(pair: &mut Pair, messages: &[String]) -> (usize, usize) {
    let (mut down, mut up) = (0, 0);
    for m in messages {
        pair.server.send_text(m).unwrap();
        down += pair.server.pending_transmit();
        assert_eq!(pair.server_to_client(), [OwnedEvent::Text(m.clone())]);
        pair.client.send_text(m).unwrap();
        up += pair.client.pending_transmit();
        assert_eq!(pair.client_to_server(), [OwnedEvent::Text(m.clone())]);
    }
    (down, up)
}

/// The heap one server connection holds for permessage-deflate between
/// messages: what dropping the servers frees, less the same without deflate.
fn memory(server: &DeflateConfig) -> f64 {
    let messages = json_corpus::chat(WARM_UP);
    let held = |config: Option<&DeflateConfig>| {
        let mut pairs: Vec<Pair> = (0..CONNECTIONS)
            .map(|_| match config {
                Some(config) => pair(config),
                None => Pair::open(Config::default(), Config::default()),
            })
            .collect();
        for p in &mut pairs {
            exchange(p, &messages);
        }
        let servers: Vec<Connection> = pairs
            .iter_mut()
            .map(|p| std::mem::replace(&mut p.server, Connection::open_server(Config::default())))
            .collect();
        let before = LIVE.load(Relaxed);
        drop(servers);
        before - LIVE.load(Relaxed)
    };
    let plain = held(None);
    let with = held(Some(server));
    (with as f64 - plain as f64) / CONNECTIONS as f64
}

/// The ratio on `messages` both ways, through one connection.
fn ratio(server: &DeflateConfig, messages: &[String]) -> (f64, f64) {
    let mut p = pair(server);
    let raw: usize = messages.iter().map(String::len).sum();
    let (down, up) = exchange(&mut p, messages);
    (raw as f64 / down as f64, raw as f64 / up as f64)
}

fn main() {
    let json = json_corpus::corpus(2000);
    let chat = json_corpus::chat(2000);
    let pool = CodecPool::new();
    let mut windowed = DeflateConfig::dedicated(8);
    windowed.server_max_window_bits = 11;
    windowed.client_max_window_bits = 11;
    let settings: Vec<(&str, DeflateConfig)> = vec![
        (
            "the default: shared, 12-bit windows",
            DeflateConfig::default(),
        ),
        ("dedicated, memLevel 8", DeflateConfig::dedicated(8)),
        ("dedicated, memLevel 1", DeflateConfig::dedicated(1)),
        ("dedicated, memLevel 8, windows of 11 bits", windowed),
        ("shared, 15-bit windows", DeflateConfig::shared(&pool, 15)),
        ("shared, 11-bit windows", DeflateConfig::shared(&pool, 11)),
        ("shared, 10-bit windows", DeflateConfig::shared(&pool, 10)),
        (
            "shared, no context takeover",
            DeflateConfig::shared_without_context(&pool),
        ),
    ];
    println!(
        "Server connections with Chromium's offer (`permessage-deflate; client_max_window_bits`) \
         and a client with the defaults, level 1; heap per connection for permessage-deflate \
         after {WARM_UP} chat messages each way, over {CONNECTIONS} connections; ratios over 2000 \
         messages each way (server to client / client to server):\n"
    );
    println!("| setting | per connection | JSON ratio | chat ratio |");
    println!("|---|---:|---:|---:|");
    for (name, config) in &settings {
        let per = memory(config);
        let (json_down, json_up) = ratio(config, &json);
        let (chat_down, chat_up) = ratio(config, &chat);
        println!(
            "| {name} | {} | {json_down:.2}x / {json_up:.2}x | {chat_down:.2}x / {chat_up:.2}x |",
            kib(per),
        );
    }
    let (compressors, decompressors) = pool.idle_states();
    println!(
        "\nThe shared settings' pool (it keeps up to 16 compressors and 128 decompressors) holds {compressors} compressors and \
         {decompressors} decompressors at the end (sizes below)."
    );

    println!("\nThe codec alone: heap each zlib state holds after a message, level 1:\n");
    println!(
        "| window bits | compressor, memLevel 1 | memLevel 4 | memLevel 8 | memLevel 9 | decompressor |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for bits in 9..=15u8 {
        let mut row = format!("| {bits} |");
        let mut wire = Vec::with_capacity(4096);
        for mem_level in [1, 4, 8, 9] {
            wire.clear();
            let before = LIVE.load(Relaxed);
            let mut compressor = Compressor::with_mem_level(1, bits, mem_level, false);
            compressor.compress(json[0].as_bytes(), true, &mut wire);
            let heap = LIVE.load(Relaxed) - before;
            row += &format!(" {} |", kib(heap as f64));
        }
        let mut out = Vec::with_capacity(4096);
        let before = LIVE.load(Relaxed);
        let mut decompressor = Decompressor::new(bits, false);
        decompressor
            .decompress(&wire, true, &mut out, 4096)
            .expect("inflates");
        let heap = LIVE.load(Relaxed) - before;
        row += &format!(" {} |", kib(heap as f64));
        println!("{row}");
    }
}
