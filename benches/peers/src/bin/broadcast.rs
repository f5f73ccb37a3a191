//! One JSON message of about 1 KiB to 10,000 in-memory server connections,
//! the way each library's users broadcast: CPU time per broadcast (the
//! message made ready included) and heap bytes allocated per broadcast.
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml --bin broadcast -- [--runs N] [--conns N] [--only TEXT]
//! ```
//!
//! - wsmachine, `send_text` on each connection: framed (and compressed)
//!   again for every connection.
//! - wsmachine, one `PreparedMessage` (compressed once, without context, for
//!   permessage-deflate) with `send_prepared_vectored` on each connection:
//!   a `writev` of the frame header and the shared payload.
//! - wsmachine's tokio adapter, `adapter::tokio::broadcast` to the writer
//!   halves of split WebSockets: each locked, the message queued and written
//!   at once.
//! - tokio-tungstenite: a `Message` cloned for each connection and sent
//!   (`SinkExt::send`), as its users do (no prepared message, no
//!   permessage-deflate).
//! - fastwebsockets: `write_frame` of a frame borrowing the payload, on each
//!   connection (no permessage-deflate).
//! - sockudo-ws: its pub/sub, `PubSub::publish` to every subscriber's
//!   channel, then each connection's task takes the message and sends it;
//!   with permessage-deflate, each connection compresses it (its default:
//!   level 6, context takeover).
//!
//! Every connection writes into a sink of its own, which copies, as a socket
//! copies into the kernel (`--no-copy`: it only counts, leaving the copy
//! out). Each library's output is checked first, for three
//! connections and three messages: every frame decodes to the message
//! (inflated, where compressed), or the run stops with exit code 2. Cases
//! take turns in an order that rotates every run; the figure is the median.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::SinkExt;
use wsmachine::deflate::{Compressor, Decompressor, DeflateConfig};
use wsmachine::handshake::Negotiated;
use wsmachine::{Config, Connection, Lagging, MessageKind, PreparedMessage};
use wsmachine_peers::mock::{MockStream, Sink, block_on};
use wsmachine_peers::{cpu_model, median, time_rotating};

#[path = "../../../../examples/support/json_corpus.rs"]
mod json_corpus;

// ----- a counting allocator: bytes allocated while COUNTING is on -----

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATED.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counting only reads the layouts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's guarantees for `layout` are passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`; `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as for `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ----- the rooms -----

/// Sinks that live as long as the process, so that the streams over them
/// can be kept in a room.
fn sinks(n: usize, taps: Option<&[Tap]>, discard: bool) -> Vec<&'static mut Sink> {
    (0..n)
        .map(|i| {
            &mut *Box::leak(Box::new(Sink {
                tap: taps.map(|t| t[i].clone()),
                discard,
                ..Sink::default()
            }))
        })
        .collect()
}

type Tap = Arc<Mutex<Vec<u8>>>;

/// What Chromium offers, as the deflate cases negotiate it.
const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// A room of connections of one library, one way of broadcasting.
trait Room {
    fn broadcast(&mut self, text: &str);
}

enum WsmWay {
    SendText,
    PreparedVectored,
}

struct WsmCore {
    conns: Vec<(Connection, &'static mut Sink)>,
    way: WsmWay,
    compressor: Option<Compressor>,
}

impl WsmCore {
    fn new(sinks: Vec<&'static mut Sink>, way: WsmWay, deflate: bool) -> Self {
        let config = Config::default(); // its clones share the default pool
        let conns = sinks
            .into_iter()
            .map(|sink| {
                let negotiated = Negotiated {
                    protocol: None,
                    extensions: deflate.then(|| "permessage-deflate".to_string()),
                };
                (
                    Connection::open_server_negotiated(config.clone(), negotiated),
                    sink,
                )
            })
            .collect();
        Self {
            conns,
            way,
            compressor: deflate.then(compressor),
        }
    }
}

/// The compressor a broadcast prepares with: the connections' level, and
/// the 15-bit window a browser's offer agrees.
fn compressor() -> Compressor {
    Compressor::new(DeflateConfig::default().level, 15, true)
}

fn prepare(text: &str, compressor: Option<&mut Compressor>) -> PreparedMessage {
    match compressor {
        Some(c) => PreparedMessage::compressed(MessageKind::Text, text.as_bytes(), c)
            .expect("wsmachine: prepare"),
        None => PreparedMessage::text(text),
    }
}

impl Room for WsmCore {
    fn broadcast(&mut self, text: &str) {
        match self.way {
            WsmWay::SendText => {
                for (conn, sink) in &mut self.conns {
                    conn.send_text(text).expect("wsmachine: send_text");
                    while let Some(bytes) = conn.poll_transmit() {
                        let n = sink.write(&[bytes]);
                        conn.transmitted(n);
                    }
                }
            }
            WsmWay::PreparedVectored => {
                let prepared = prepare(text, self.compressor.as_mut());
                for (conn, sink) in &mut self.conns {
                    let mut transmit = conn
                        .send_prepared_vectored(&prepared)
                        .expect("wsmachine: send_prepared_vectored");
                    while !transmit.is_empty() {
                        let n = sink.write(&transmit.slices());
                        transmit.advance(n);
                    }
                }
            }
        }
    }
}

type Half = wsmachine::adapter::tokio::WriteHalf<MockStream<'static>>;

struct WsmTokio {
    writers: Vec<Half>,
    compressor: Option<Compressor>,
}

impl WsmTokio {
    fn new(sinks: Vec<&'static mut Sink>, deflate: bool) -> Self {
        use wsmachine::adapter::tokio::WebSocket;
        let config = Config::default();
        let writers = sinks
            .into_iter()
            .map(|sink| {
                let negotiated = Negotiated {
                    protocol: None,
                    extensions: deflate.then(|| "permessage-deflate".to_string()),
                };
                let conn = Connection::open_server_negotiated(config.clone(), negotiated);
                let ws = WebSocket::from_connection(MockStream::new(&[], sink), conn);
                // The reader half is dropped: nothing is read here, and
                // every write completes at once.
                ws.into_split().1
            })
            .collect();
        Self {
            writers,
            compressor: deflate.then(compressor),
        }
    }
}

impl Room for WsmTokio {
    fn broadcast(&mut self, text: &str) {
        let prepared = prepare(text, self.compressor.as_mut());
        let report = wsmachine::adapter::tokio::broadcast(&prepared, &self.writers, Lagging::Skip);
        assert_eq!(report.sent, self.writers.len(), "wsmachine: {report:?}");
    }
}

struct TokioTungstenite {
    conns: Vec<tokio_tungstenite::WebSocketStream<MockStream<'static>>>,
}

impl TokioTungstenite {
    fn new(sinks: Vec<&'static mut Sink>) -> Self {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let conns = sinks
            .into_iter()
            .map(|sink| {
                block_on(tokio_tungstenite::WebSocketStream::from_raw_socket(
                    MockStream::new(&[], sink),
                    Role::Server,
                    None,
                ))
            })
            .collect();
        Self { conns }
    }
}

impl Room for TokioTungstenite {
    fn broadcast(&mut self, text: &str) {
        use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
        let message = Message::Text(Utf8Bytes::from(text));
        block_on(async {
            for ws in &mut self.conns {
                ws.send(message.clone())
                    .await
                    .expect("tokio-tungstenite: send");
            }
        });
    }
}

struct Fastwebsockets {
    conns: Vec<fastwebsockets::WebSocket<MockStream<'static>>>,
}

impl Fastwebsockets {
    fn new(sinks: Vec<&'static mut Sink>) -> Self {
        use fastwebsockets::{Role, WebSocket};
        let conns = sinks
            .into_iter()
            .map(|sink| WebSocket::after_handshake(MockStream::new(&[], sink), Role::Server))
            .collect();
        Self { conns }
    }
}

impl Room for Fastwebsockets {
    fn broadcast(&mut self, text: &str) {
        use fastwebsockets::{Frame, Payload};
        block_on(async {
            for ws in &mut self.conns {
                ws.write_frame(Frame::text(Payload::Borrowed(text.as_bytes())))
                    .await
                    .expect("fastwebsockets: write_frame");
            }
        });
    }
}

/// A sockudo-ws subscriber: its channel and its connection, plain or
/// compressed.
struct Subscriber<W> {
    rx: tokio::sync::mpsc::UnboundedReceiver<sockudo_ws::Message>,
    ws: W,
}

struct SockudoPubSub<W> {
    pubsub: sockudo_ws::PubSub,
    subscribers: Vec<Subscriber<W>>,
}

const TOPIC: &str = "ticker";

impl<W> SockudoPubSub<W> {
    fn new(
        sinks: Vec<&'static mut Sink>,
        mut connect: impl FnMut(MockStream<'static>) -> W,
    ) -> Self {
        let pubsub = sockudo_ws::PubSub::new();
        let subscribers = sinks
            .into_iter()
            .map(|sink| {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let id = pubsub.create_subscriber(tx);
                pubsub.subscribe(id, TOPIC);
                Subscriber {
                    rx,
                    ws: connect(MockStream::new(&[], sink)),
                }
            })
            .collect();
        Self {
            pubsub,
            subscribers,
        }
    }
}

fn sockudo_plain(stream: MockStream<'static>) -> sockudo_ws::WebSocketStream<MockStream<'static>> {
    sockudo_ws::WebSocketStream::from_raw_with_leftover(
        stream,
        sockudo_ws::Role::Server,
        sockudo_ws::Config::default(),
        None,
    )
}

fn sockudo_deflate(
    stream: MockStream<'static>,
) -> sockudo_ws::CompressedWebSocketStream<MockStream<'static>> {
    let negotiated =
        sockudo_ws::deflate::negotiate_server_deflate(OFFER, &sockudo_ws::DeflateConfig::default())
            .expect("sockudo-ws: negotiate");
    sockudo_ws::CompressedWebSocketStream::server_with_leftover(
        stream,
        sockudo_ws::Config::default(),
        negotiated.config,
        None,
    )
}

impl<W> Room for SockudoPubSub<W>
where
    W: futures_util::Sink<sockudo_ws::Message, Error = sockudo_ws::Error> + Unpin,
{
    fn broadcast(&mut self, text: &str) {
        let message = sockudo_ws::Message::Text(Bytes::copy_from_slice(text.as_bytes()));
        let published = self.pubsub.publish(TOPIC, message).count();
        assert_eq!(published, self.subscribers.len(), "sockudo-ws: published");
        // Each connection's task: take what its channel brings, send it.
        block_on(async {
            for sub in &mut self.subscribers {
                while let Ok(message) = sub.rx.try_recv() {
                    sub.ws.send(message).await.expect("sockudo-ws: send");
                }
            }
        });
    }
}

// ----- cases -----

struct Case {
    id: &'static str,
    library: &'static str,
    way: &'static str,
    deflate: bool,
}

const CASES: [Case; 10] = [
    Case {
        id: "wsmachine-send_text",
        library: "wsmachine",
        way: "`send_text` on each connection",
        deflate: false,
    },
    Case {
        id: "wsmachine-prepared",
        library: "wsmachine",
        way: "`PreparedMessage`, `send_prepared_vectored`",
        deflate: false,
    },
    Case {
        id: "wsmachine-tokio",
        library: "wsmachine",
        way: "`PreparedMessage`, tokio `broadcast` to writer halves",
        deflate: false,
    },
    Case {
        id: "tokio-tungstenite",
        library: "tokio-tungstenite",
        way: "`Message` cloned, `send` on each",
        deflate: false,
    },
    Case {
        id: "fastwebsockets",
        library: "fastwebsockets",
        way: "`write_frame` borrowing the payload, on each",
        deflate: false,
    },
    Case {
        id: "sockudo-ws",
        library: "sockudo-ws",
        way: "pub/sub `publish`, each connection sends",
        deflate: false,
    },
    Case {
        id: "deflate-wsmachine-send_text",
        library: "wsmachine",
        way: "`send_text` on each connection (shared pool)",
        deflate: true,
    },
    Case {
        id: "deflate-wsmachine-prepared",
        library: "wsmachine",
        way: "`PreparedMessage::compressed`, `send_prepared_vectored`",
        deflate: true,
    },
    Case {
        id: "deflate-wsmachine-tokio",
        library: "wsmachine",
        way: "`PreparedMessage::compressed`, tokio `broadcast`",
        deflate: true,
    },
    Case {
        id: "deflate-sockudo-ws",
        library: "sockudo-ws",
        way: "pub/sub `publish`, each connection compresses",
        deflate: true,
    },
];

fn room(id: &str, sinks: Vec<&'static mut Sink>) -> Box<dyn Room> {
    match id {
        "wsmachine-send_text" => Box::new(WsmCore::new(sinks, WsmWay::SendText, false)),
        "wsmachine-prepared" => Box::new(WsmCore::new(sinks, WsmWay::PreparedVectored, false)),
        "wsmachine-tokio" => Box::new(WsmTokio::new(sinks, false)),
        "tokio-tungstenite" => Box::new(TokioTungstenite::new(sinks)),
        "fastwebsockets" => Box::new(Fastwebsockets::new(sinks)),
        "sockudo-ws" => Box::new(SockudoPubSub::new(sinks, sockudo_plain)),
        "deflate-wsmachine-send_text" => Box::new(WsmCore::new(sinks, WsmWay::SendText, true)),
        "deflate-wsmachine-prepared" => {
            Box::new(WsmCore::new(sinks, WsmWay::PreparedVectored, true))
        }
        "deflate-wsmachine-tokio" => Box::new(WsmTokio::new(sinks, true)),
        "deflate-sockudo-ws" => Box::new(SockudoPubSub::new(sinks, sockudo_deflate)),
        _ => unreachable!("unknown case {id}"),
    }
}

// ----- checking -----

/// The frames in `wire`, each (rsv1, payload); a server's, so unmasked.
fn frames(mut wire: &[u8]) -> Result<Vec<(bool, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        if wire.len() < 2 {
            return Err("a truncated header".into());
        }
        let (b0, b1) = (wire[0], wire[1]);
        if b0 & 0x8f != 0x81 || b1 & 0x80 != 0 {
            return Err(format!(
                "not one final unmasked text frame: {b0:#04x} {b1:#04x}"
            ));
        }
        let (len, head) = match b1 & 0x7f {
            126 => (usize::from(u16::from_be_bytes([wire[2], wire[3]])), 4),
            127 => return Err("a 64-bit length for 1 KiB".into()),
            n => (usize::from(n), 2),
        };
        let payload = wire.get(head..head + len).ok_or("a truncated payload")?;
        out.push((b0 & 0x40 != 0, payload.to_vec()));
        wire = &wire[head + len..];
    }
    Ok(out)
}

/// Three connections, three messages: each connection's frames carry the
/// messages, in order, inflated with one context per connection where they
/// are compressed (context takeover, or none: both inflate so).
fn check(case: &Case, texts: &[String]) -> Result<(), String> {
    let taps: Vec<Tap> = (0..3).map(|_| Tap::default()).collect();
    let mut room = room(case.id, sinks(3, Some(&taps), false));
    for text in &texts[..3] {
        room.broadcast(text);
    }
    drop(room);
    for (i, tap) in taps.iter().enumerate() {
        let wire = tap.lock().expect("the tap").clone();
        let frames = frames(&wire).map_err(|e| format!("connection {i}: {e}"))?;
        if frames.len() != 3 {
            return Err(format!(
                "connection {i}: {} frames, expected 3",
                frames.len()
            ));
        }
        let mut inflate = Decompressor::new(15, false);
        for (n, ((rsv1, payload), text)) in frames.into_iter().zip(texts).enumerate() {
            let got = if rsv1 {
                if !case.deflate {
                    return Err(format!("connection {i}, message {n}: RSV1 without deflate"));
                }
                let mut out = Vec::new();
                inflate
                    .decompress(&payload, true, &mut out, 1 << 20)
                    .map_err(|e| format!("connection {i}, message {n}: {e}"))?;
                out
            } else {
                payload
            };
            if got != text.as_bytes() {
                return Err(format!("connection {i}, message {n}: not the message"));
            }
        }
    }
    Ok(())
}

// ----- main -----

struct Args {
    runs: usize,
    conns: usize,
    only: Option<String>,
    no_copy: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        runs: 7,
        conns: 10_000,
        only: None,
        no_copy: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |what: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| panic!("{what} takes a positive number"))
        };
        match arg.as_str() {
            "--runs" => args.runs = number("--runs"),
            "--conns" => args.conns = number("--conns"),
            "--only" => args.only = Some(it.next().expect("--only takes a text")),
            "--no-copy" => args.no_copy = true,
            "-h" | "--help" => {
                println!(
                    "broadcast [--runs N (default 7)] [--conns N (default 10000)] [--only TEXT] [--no-copy]\n\
                     --no-copy: the sinks count what is written without copying it"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; time with --release");
    }
    let texts = json_corpus::updates(32);
    let mean = texts.iter().map(String::len).sum::<usize>() / texts.len();
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| args.only.as_ref().is_none_or(|o| c.id.contains(o.as_str())))
        .collect();
    for case in &cases {
        if let Err(why) = check(case, &texts) {
            eprintln!("\nVERIFICATION FAILED: {} ({}): {why}", case.id, case.way);
            std::process::exit(2);
        }
    }
    println!(
        "broadcast of a {mean} B JSON message (32 distinct ones in turn) to {} connections{}; {}; {} runs\n",
        args.conns,
        if args.no_copy {
            ", the sinks not copying"
        } else {
            ""
        },
        cpu_model(),
        args.runs
    );
    let mut rooms: Vec<Box<dyn Room>> = cases
        .iter()
        .map(|case| room(case.id, sinks(args.conns, None, args.no_copy)))
        .collect();
    let mut next = 0;
    // Warm: buffers, pooled states and kept windows at their size.
    for room in &mut rooms {
        for _ in 0..8 {
            room.broadcast(&texts[next % texts.len()]);
            next += 1;
        }
    }
    let allocated: Vec<u64> = rooms
        .iter_mut()
        .map(|room| {
            ALLOCATED.store(0, Ordering::Relaxed);
            COUNTING.store(true, Ordering::Relaxed);
            room.broadcast(&texts[next % texts.len()]);
            COUNTING.store(false, Ordering::Relaxed);
            next += 1;
            ALLOCATED.load(Ordering::Relaxed)
        })
        .collect();
    let ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
    let samples = time_rotating(&ids, args.runs, |id| {
        let i = ids.iter().position(|x| *x == id).expect("a case");
        rooms[i].broadcast(&texts[next % texts.len()]);
        next += 1;
    });
    println!(
        "| library | how | permessage-deflate | per broadcast | per connection | allocated per broadcast |"
    );
    println!("|---|---|---|---:|---:|---:|");
    for ((case, samples), allocated) in cases.iter().zip(&samples).zip(&allocated) {
        let secs = median(samples);
        println!(
            "| {} | {} | {} | {:.3} ms | {:.1} ns | {} B |",
            case.library,
            case.way,
            if case.deflate { "yes" } else { "no" },
            secs * 1e3,
            secs * 1e9 / args.conns as f64,
            wsmachine_peers::group_thousands(*allocated as i64),
        );
    }
    // The ratios the issue asks for: per-connection sending over each way.
    let per = |id: &str| {
        ids.iter()
            .position(|x| *x == id)
            .map(|i| median(&samples[i]))
    };
    println!();
    for (base, others) in [
        (
            "wsmachine-send_text",
            &[
                "wsmachine-prepared",
                "wsmachine-tokio",
                "tokio-tungstenite",
                "fastwebsockets",
                "sockudo-ws",
            ][..],
        ),
        (
            "deflate-wsmachine-send_text",
            &[
                "deflate-wsmachine-prepared",
                "deflate-wsmachine-tokio",
                "deflate-sockudo-ws",
            ][..],
        ),
    ] {
        let Some(b) = per(base) else { continue };
        for other in others {
            if let Some(o) = per(other) {
                println!("{base} ÷ {other}: {:.2}", b / o);
            }
        }
    }
}
