//! wsmachine against tungstenite, fastwebsockets and tokio-websockets, in one
//! process, on identical byte streams: decoding as a server, encoding as a
//! server, and the heap an idle server connection holds.
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml --bin compare -- [--runs N] [--quick] [--out PATH] [--only TEXT]
//! ```
//!
//! Every library is checked before it is timed (every message, byte for byte;
//! every encoded byte); a library that fails stops the run with exit code 2.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use wsmachine_peers::mock::{MockStream, Sink, block_on};
use wsmachine_peers::payload::{multilingual, stamp};
use wsmachine_peers::wire::{self, Keys, OP_BINARY, OP_TEXT};
use wsmachine_peers::{LIBRARIES, READ_CHUNK, cpu_model, format_value, median, time_rotating};

// ----- a counting allocator, for the idle-heap rows -----

/// The system allocator, counting live bytes while [`COUNTING`] is on. Off
/// (a relaxed load and a branch per call) while anything is timed.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

#[inline]
fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counting only reads the layouts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's valid size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ----- workloads -----

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const TEXT16: &str = "0123456789abcdef";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

impl Kind {
    fn opcode(self) -> u8 {
        match self {
            Kind::Text => OP_TEXT,
            Kind::Binary => OP_BINARY,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    MsgPerSec,
    GbPerSec,
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::MsgPerSec => "msg/s",
            Unit::GbPerSec => "GB/s",
            Unit::Bytes => "bytes",
        }
    }

    fn higher_is_better(self) -> bool {
        self != Unit::Bytes
    }
}

/// A stream of masked client frames, each message different (its index
/// stamped over the start of `template`).
struct DecodeCase {
    id: &'static str,
    label: &'static str,
    kind: Kind,
    count: usize,
    template: Vec<u8>,
    unit: Unit,
}

impl DecodeCase {
    fn payload(&self, index: usize, out: &mut Vec<u8>) {
        stamp(&self.template, index, out);
    }

    /// The wire bytes: masked frames, keys from a fixed seed.
    fn stream(&self) -> Vec<u8> {
        let mut keys = Keys::new(0x5eed_f1a5);
        let mut out = Vec::with_capacity(self.count * (self.template.len() + 14));
        let mut payload = Vec::new();
        for i in 0..self.count {
            self.payload(i, &mut payload);
            wire::frame(
                &mut out,
                self.kind.opcode(),
                &payload,
                Some(keys.next_key()),
            );
        }
        out
    }

    fn payload_bytes(&self) -> u64 {
        (self.count * self.template.len()) as u64
    }
}

fn decode_cases() -> Vec<DecodeCase> {
    let binary = |len: usize| -> Vec<u8> { (0..len).map(|i| (i * 31 + 7) as u8).collect() };
    vec![
        DecodeCase {
            id: "decode_text_16B",
            label: "decode 100,000 × 16 B text",
            kind: Kind::Text,
            count: 100_000,
            template: TEXT16.as_bytes().to_vec(),
            unit: Unit::MsgPerSec,
        },
        DecodeCase {
            id: "decode_binary_1KiB",
            label: "decode 10,000 × 1 KiB binary",
            kind: Kind::Binary,
            count: 10_000,
            template: binary(KIB),
            unit: Unit::MsgPerSec,
        },
        DecodeCase {
            id: "decode_binary_1MiB",
            label: "decode 100 × 1 MiB binary",
            kind: Kind::Binary,
            count: 100,
            template: binary(MIB),
            unit: Unit::GbPerSec,
        },
        DecodeCase {
            id: "decode_text_utf8_1MiB",
            label: "decode 100 × 1 MiB multilingual text",
            kind: Kind::Text,
            count: 100,
            template: multilingual(MIB).into_bytes(),
            unit: Unit::GbPerSec,
        },
    ]
}

/// The same message sent `count` times as a server (unmasked).
struct EncodeCase {
    id: &'static str,
    label: &'static str,
    kind: Kind,
    count: usize,
    /// The text of a text message (a `&'static str`, so that every library
    /// can take it without a copy).
    text: &'static str,
    /// The data of a binary message, shared without a copy where a library
    /// wants an owned buffer.
    binary: Bytes,
    unit: Unit,
    /// Each message is written out (and the stream flushed) before the next
    /// is sent, as a server answering one request at a time does.
    flush_each: bool,
}

impl EncodeCase {
    fn payload(&self) -> &[u8] {
        match self.kind {
            Kind::Text => self.text.as_bytes(),
            Kind::Binary => &self.binary,
        }
    }

    fn expected(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..self.count {
            wire::frame(&mut out, self.kind.opcode(), self.payload(), None);
        }
        out
    }

    fn payload_bytes(&self) -> u64 {
        (self.count * self.payload().len()) as u64
    }
}

fn encode_cases() -> Vec<EncodeCase> {
    vec![
        EncodeCase {
            id: "encode_text_16B",
            label: "encode 100,000 × 16 B text",
            kind: Kind::Text,
            count: 100_000,
            text: TEXT16,
            binary: Bytes::new(),
            unit: Unit::MsgPerSec,
            flush_each: false,
        },
        EncodeCase {
            id: "encode_text_16B_flush",
            label: "encode 100,000 × 16 B text, flushed each",
            kind: Kind::Text,
            count: 100_000,
            text: TEXT16,
            binary: Bytes::new(),
            unit: Unit::MsgPerSec,
            flush_each: true,
        },
        EncodeCase {
            id: "encode_binary_1MiB",
            label: "encode 100 × 1 MiB binary",
            kind: Kind::Binary,
            count: 100,
            text: "",
            binary: Bytes::from((0..MIB).map(|i| (i * 13 + 1) as u8).collect::<Vec<u8>>()),
            unit: Unit::GbPerSec,
            flush_each: false,
        },
    ]
}

// ----- decoding, as a user of each library would -----
//
// Each decoder reads exactly `count` messages from `input` (handed out
// 64 KiB at most per read) and passes each to `on`, text as the `&str` the
// library hands out (black-boxed). It returns the input bytes left unread.

fn decode_wsmachine(input: &[u8], count: usize, mut on: impl FnMut(Kind, &[u8])) -> usize {
    use wsmachine::{Config, Connection, Event};
    let mut sink = Sink::default();
    let mut stream = MockStream::new(input, &mut sink);
    let mut conn = Connection::open_server(Config::default());
    let read_in_place = std::env::var_os("WSMACHINE_INPUT").is_some_and(|v| v == "read");
    let mut seen = 0;
    while seen < count {
        // Each read's bytes as a slice, its sans-IO input, which unmasks
        // payload as it copies it in; with `WSMACHINE_INPUT=read`, read
        // into its buffer like the others, then unmasked there.
        if read_in_place {
            let n = stream.read(conn.recv_buffer()).expect("input ended early");
            conn.commit_recv(n);
        } else {
            let chunk = stream.next_chunk();
            assert!(!chunk.is_empty(), "input ended early");
            conn.handle_read(chunk);
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Text(text) => on(Kind::Text, black_box(text).as_bytes()),
                Event::Binary(data) => on(Kind::Binary, data),
                other => panic!("wsmachine: unexpected event {other:?}"),
            }
            seen += 1;
        }
    }
    assert!(conn.poll_transmit().is_none(), "wsmachine queued output");
    stream.remaining()
}

fn decode_tungstenite(input: &[u8], count: usize, mut on: impl FnMut(Kind, &[u8])) -> usize {
    use tungstenite::Message;
    use tungstenite::protocol::{Role, WebSocket};
    let mut sink = Sink::default();
    let stream = MockStream::new(input, &mut sink);
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    for _ in 0..count {
        match ws.read().expect("tungstenite: read failed") {
            Message::Text(text) => on(Kind::Text, black_box(text.as_str()).as_bytes()),
            Message::Binary(data) => on(Kind::Binary, &data),
            other => panic!("tungstenite: unexpected message {other:?}"),
        }
    }
    ws.get_ref().remaining()
}

fn decode_fastwebsockets(input: &[u8], count: usize, mut on: impl FnMut(Kind, &[u8])) -> usize {
    use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
    let mut sink = Sink::default();
    let stream = MockStream::new(input, &mut sink);
    block_on(async {
        // The collector assembles fragmented messages, as a user who wants
        // messages (not frames) uses it.
        let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Server));
        for _ in 0..count {
            let frame = ws.read_frame().await.expect("fastwebsockets: read failed");
            match frame.opcode {
                // Validated UTF-8, handed out as bytes: a &str would take a
                // second validation (or unsafe), so the bytes are consumed.
                OpCode::Text => on(Kind::Text, black_box(&frame.payload[..])),
                OpCode::Binary => on(Kind::Binary, &frame.payload),
                other => panic!("fastwebsockets: unexpected opcode {other:?}"),
            }
        }
        ws.into_inner().remaining()
    })
}

fn decode_tokio_websockets(input: &[u8], count: usize, mut on: impl FnMut(Kind, &[u8])) -> usize {
    use tokio_websockets::ServerBuilder;
    let mut sink = Sink::default();
    let stream = MockStream::new(input, &mut sink);
    block_on(async {
        let mut ws = ServerBuilder::new().serve(stream);
        for _ in 0..count {
            let message = ws
                .next()
                .await
                .expect("tokio-websockets: stream ended")
                .expect("tokio-websockets: read failed");
            if let Some(text) = message.as_text() {
                on(Kind::Text, black_box(text).as_bytes());
            } else if message.is_binary() {
                on(Kind::Binary, message.as_payload());
            } else {
                panic!("tokio-websockets: unexpected message {message:?}");
            }
        }
        ws.into_inner().remaining()
    })
}

/// Runs library `lib`'s decoder.
fn decode(lib: &str, input: &[u8], count: usize, on: impl FnMut(Kind, &[u8])) -> usize {
    match lib {
        "wsmachine" => decode_wsmachine(input, count, on),
        "tungstenite" => decode_tungstenite(input, count, on),
        "fastwebsockets" => decode_fastwebsockets(input, count, on),
        "tokio-websockets" => decode_tokio_websockets(input, count, on),
        _ => unreachable!("unknown library {lib}"),
    }
}

/// Checks that `lib` delivers every message of `case`, in order, byte for byte.
fn verify_decode(lib: &str, case: &DecodeCase, input: &[u8]) -> Result<(), String> {
    let mut next = 0;
    let mut expected = Vec::new();
    let mut error = None;
    let left = decode(lib, input, case.count, |kind, data| {
        if error.is_none() {
            case.payload(next, &mut expected);
            if kind != case.kind {
                error = Some(format!(
                    "message {next}: {kind:?}, expected {:?}",
                    case.kind
                ));
            } else if data != expected {
                error = Some(format!(
                    "message {next}: {} bytes differ from the {} expected",
                    data.len(),
                    expected.len()
                ));
            }
        }
        next += 1;
    });
    if let Some(e) = error {
        return Err(e);
    }
    if next != case.count {
        return Err(format!("{next} messages, expected {}", case.count));
    }
    if left != 0 {
        return Err(format!("{left} input bytes left unread"));
    }
    Ok(())
}

/// One timed pass: decode everything, consuming each message.
fn decode_pass(lib: &str, case: &DecodeCase, input: &[u8]) {
    let mut messages = 0;
    let left = decode(lib, input, case.count, |_, data| {
        black_box(data);
        messages += 1;
    });
    assert!(
        messages == case.count && left == 0,
        "{lib}: wrong result while timed"
    );
}

// ----- encoding, as a server (unmasked), into an in-memory sink -----

fn encode_wsmachine(case: &EncodeCase, sink: &mut Sink) {
    use wsmachine::{Config, Connection, MessageKind};
    const VECTORED_FROM: usize = 8 * KIB;
    fn write_out(conn: &mut Connection, sink: &mut Sink) {
        while let Some(bytes) = conn.poll_transmit() {
            let n = sink.write(&[bytes]);
            conn.transmitted(n);
        }
    }
    let mut conn = Connection::open_server(Config::default());
    for _ in 0..case.count {
        // A large payload goes out without a copy into the connection, header
        // and payload in one vectored write, as wsmachine's adapters do it
        // from 8 KiB on.
        if case.payload().len() >= VECTORED_FROM {
            let kind = match case.kind {
                Kind::Text => MessageKind::Text,
                Kind::Binary => MessageKind::Binary,
            };
            let mut transmit = conn
                .send_vectored(kind, case.payload())
                .expect("wsmachine: send failed");
            while !transmit.is_empty() {
                let n = sink.write(&transmit.slices());
                transmit.advance(n);
            }
            continue;
        }
        match case.kind {
            Kind::Text => conn.send_text(case.text),
            Kind::Binary => conn.send_binary(&case.binary),
        }
        .expect("wsmachine: send failed");
        // A socket write's worth at a time, like a buffered writer.
        if case.flush_each || conn.pending_transmit() >= READ_CHUNK {
            write_out(&mut conn, sink);
        }
    }
    write_out(&mut conn, sink);
}

fn encode_tungstenite(case: &EncodeCase, sink: &mut Sink) {
    use tungstenite::protocol::{Role, WebSocket};
    use tungstenite::{Message, Utf8Bytes};
    let mut ws = WebSocket::from_raw_socket(MockStream::new(&[], sink), Role::Server, None);
    let text = Utf8Bytes::from_static(case.text);
    for _ in 0..case.count {
        let message = match case.kind {
            Kind::Text => Message::Text(text.clone()),
            Kind::Binary => Message::Binary(case.binary.clone()),
        };
        if case.flush_each {
            ws.send(message).expect("tungstenite: send failed");
            continue;
        }
        // Buffered up to the write buffer size (128 KiB by default).
        ws.write(message).expect("tungstenite: write failed");
    }
    ws.flush().expect("tungstenite: flush failed");
}

fn encode_fastwebsockets(case: &EncodeCase, sink: &mut Sink) {
    use fastwebsockets::{Frame, Payload, Role, WebSocket};
    let mut ws = WebSocket::after_handshake(MockStream::new(&[], sink), Role::Server);
    block_on(async {
        for _ in 0..case.count {
            let frame = match case.kind {
                Kind::Text => Frame::text(Payload::Borrowed(case.text.as_bytes())),
                Kind::Binary => Frame::binary(Payload::Borrowed(&case.binary)),
            };
            // Written at once: header and payload in one (vectored) write.
            ws.write_frame(frame)
                .await
                .expect("fastwebsockets: write failed");
            if case.flush_each {
                ws.flush().await.expect("fastwebsockets: flush failed");
            }
        }
        ws.flush().await.expect("fastwebsockets: flush failed");
    });
}

fn encode_tokio_websockets(case: &EncodeCase, sink: &mut Sink) {
    use tokio_websockets::{Message, ServerBuilder};
    let mut ws = ServerBuilder::new().serve(MockStream::new(&[], sink));
    block_on(async {
        for _ in 0..case.count {
            let message = match case.kind {
                Kind::Text => Message::text(case.text),
                Kind::Binary => Message::binary(case.binary.clone()),
            };
            if case.flush_each {
                ws.send(message)
                    .await
                    .expect("tokio-websockets: send failed");
                continue;
            }
            // `feed` queues without flushing each message (the sink flushes
            // past its threshold, 8 KiB by default); one flush at the end.
            ws.feed(message)
                .await
                .expect("tokio-websockets: write failed");
        }
        ws.flush().await.expect("tokio-websockets: flush failed");
    });
}

fn encode(lib: &str, case: &EncodeCase, sink: &mut Sink) {
    match lib {
        "wsmachine" => encode_wsmachine(case, sink),
        "tungstenite" => encode_tungstenite(case, sink),
        "fastwebsockets" => encode_fastwebsockets(case, sink),
        "tokio-websockets" => encode_tokio_websockets(case, sink),
        _ => unreachable!("unknown library {lib}"),
    }
}

fn verify_encode(lib: &str, case: &EncodeCase, expected: &[u8]) -> Result<(), String> {
    let mut sink = Sink::keeping();
    encode(lib, case, &mut sink);
    if sink.buf.len() != expected.len() {
        return Err(format!(
            "wrote {} bytes, expected {}",
            sink.buf.len(),
            expected.len()
        ));
    }
    if let Some(at) = sink.buf.iter().zip(expected).position(|(a, b)| a != b) {
        return Err(format!(
            "output differs from the expected frames at byte {at}"
        ));
    }
    Ok(())
}

// ----- the heap an idle server connection holds -----

/// Anything, boxed: the connection as a spawned task would hold it.
trait Held {}
impl<T> Held for T {}

fn idle_wsmachine<'a>(
    input: &'a [u8],
    split: usize,
    sink: &'a mut Sink,
    echoes: usize,
) -> Box<dyn Held + 'a> {
    use wsmachine::handshake::Accept;
    use wsmachine::{Config, Connection, Event};
    enum Action {
        Nothing,
        Accept,
        Echo(String),
    }
    let mut stream = MockStream::new(input, sink).with_boundary(split);
    let config = Config::default();
    let release = config.buffer_release_delay;
    let mut conn = Box::new(Connection::server(config));
    // Its clock starts at 0 (as an adapter's does) ...
    conn.handle_timeout(std::time::Duration::ZERO);
    let mut echoed = 0;
    loop {
        loop {
            let action = match conn.poll_event() {
                None => break,
                Some(Event::Request(_)) => Action::Accept,
                Some(Event::Open(_)) => Action::Nothing,
                Some(Event::Text(text)) => Action::Echo(text.to_owned()),
                Some(other) => panic!("wsmachine: unexpected event {other:?}"),
            };
            match action {
                Action::Nothing => {}
                Action::Accept => conn.accept(Accept::new()).expect("wsmachine: accept"),
                Action::Echo(text) => {
                    conn.send_text(&text).expect("wsmachine: send");
                    echoed += 1;
                }
            }
        }
        while let Some(bytes) = conn.poll_transmit() {
            let n = stream.sink.write(&[bytes]);
            conn.transmitted(n);
        }
        if stream.remaining() == 0 {
            break;
        }
        let n = stream.read(conn.recv_buffer()).expect("read");
        conn.commit_recv(n);
    }
    assert_eq!(echoed, echoes, "wsmachine: echoes");
    // ... and it is then idle for its buffer release delay, the deadline its
    // poll_timeout asks for (the peers hold the same heap whatever the time).
    assert_eq!(
        conn.poll_timeout().filter(|_| echoes > 0),
        (echoes > 0).then_some(release)
    );
    conn.handle_timeout(release);
    conn
}

fn idle_tungstenite<'a>(
    input: &'a [u8],
    split: usize,
    sink: &'a mut Sink,
    echoes: usize,
) -> Box<dyn Held + 'a> {
    let mut ws = tungstenite::accept(MockStream::new(input, sink).with_boundary(split))
        .unwrap_or_else(|e| panic!("tungstenite: handshake failed: {e}"));
    for _ in 0..echoes {
        let message = ws.read().expect("tungstenite: read");
        ws.send(message).expect("tungstenite: send");
    }
    Box::new(ws)
}

fn idle_fastwebsockets<'a>(
    input: &'a [u8],
    split: usize,
    sink: &'a mut Sink,
    echoes: usize,
) -> Box<dyn Held + 'a> {
    use fastwebsockets::{FragmentCollector, Frame, Role, WebSocket};
    // Its server handshake is hyper's: the connection starts after it.
    let stream = MockStream::new(input, sink).with_boundary(split);
    block_on(async {
        let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Server));
        for _ in 0..echoes {
            let frame = ws.read_frame().await.expect("fastwebsockets: read");
            ws.write_frame(Frame::new(true, frame.opcode, None, frame.payload))
                .await
                .expect("fastwebsockets: write");
        }
        Box::new(ws) as Box<dyn Held + 'a>
    })
}

fn idle_tokio_websockets<'a>(
    input: &'a [u8],
    split: usize,
    sink: &'a mut Sink,
    echoes: usize,
) -> Box<dyn Held + 'a> {
    use tokio_websockets::ServerBuilder;
    let stream = MockStream::new(input, sink).with_boundary(split);
    block_on(async {
        let (request, mut ws) = ServerBuilder::new()
            .accept(stream)
            .await
            .unwrap_or_else(|e| panic!("tokio-websockets: handshake failed: {e}"));
        drop(request);
        for _ in 0..echoes {
            let message = ws
                .next()
                .await
                .expect("tokio-websockets: end")
                .expect("tokio-websockets: read");
            ws.send(message).await.expect("tokio-websockets: send");
        }
        Box::new(ws) as Box<dyn Held + 'a>
    })
}

/// Heap bytes one idle server connection of `lib` holds once its handshake is
/// done, and `echoes` 16 B text messages were echoed: what it allocated, not
/// counting the connection object itself (measured as the second figure,
/// without the mock stream for the libraries that own it).
fn idle_heap(lib: &str, echoes: usize) -> Result<(i64, i64), String> {
    let build = match lib {
        "wsmachine" => idle_wsmachine,
        "tungstenite" => idle_tungstenite,
        "fastwebsockets" => idle_fastwebsockets,
        "tokio-websockets" => idle_tokio_websockets,
        _ => unreachable!("unknown library {lib}"),
    };
    let owns_stream = lib != "wsmachine";
    let handshake = lib != "fastwebsockets";
    let mut input = Vec::new();
    if handshake {
        input.extend_from_slice(&wire::upgrade_request("localhost"));
    }
    // The client sends its frames once the 101 response came.
    let split = input.len();
    let mut keys = Keys::new(99);
    for _ in 0..echoes {
        wire::frame(
            &mut input,
            OP_TEXT,
            TEXT16.as_bytes(),
            Some(keys.next_key()),
        );
    }
    let mut echo = Vec::new();
    for _ in 0..echoes {
        wire::frame(&mut echo, OP_TEXT, TEXT16.as_bytes(), None);
    }
    // The sink's room is reserved beforehand: writing it allocates nothing.
    let mut sink = Sink::keeping();
    sink.buf.reserve(64 * KIB);
    let mut samples = Vec::new();
    // The first build warms lazily initialised globals up; it is not counted.
    for round in 0..4 {
        sink.reset();
        COUNTING.store(true, Ordering::SeqCst);
        let before = LIVE.load(Ordering::SeqCst);
        let held = build(&input, split, &mut sink, echoes);
        let after = LIVE.load(Ordering::SeqCst);
        let mut object = std::mem::size_of_val(&*held) as i64;
        drop(held);
        COUNTING.store(false, Ordering::SeqCst);
        let bytes = (after - before) as i64 - object;
        if owns_stream {
            object -= std::mem::size_of::<MockStream<'static>>() as i64;
        }
        // What was written: the 101 response (if the library answers the
        // handshake), then the echoes.
        let written = &sink.buf[..];
        let body = if handshake {
            let end = written
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or("no handshake response")?
                + 4;
            wire::check_upgrade_response(&written[..end])?;
            &written[end..]
        } else {
            written
        };
        if body != echo {
            return Err(format!(
                "wrote {:?} after the handshake, expected the echo",
                body
            ));
        }
        if round > 0 {
            samples.push((bytes, object));
        }
    }
    samples.sort_unstable();
    Ok(samples[samples.len() / 2])
}

// ----- timing -----

/// One row of results.
struct Row {
    id: &'static str,
    label: &'static str,
    unit: Unit,
    /// The figure per library (in `LIBRARIES` order).
    values: Vec<f64>,
    /// Seconds per pass, every sample, for the timed rows.
    samples: Vec<Vec<f64>>,
}

fn fail(lib: &str, what: &str, why: &str) -> ! {
    eprintln!("\nVERIFICATION FAILED: {lib} on \"{what}\": {why}");
    eprintln!("No figure is reported for a library that does not deliver the right messages.");
    std::process::exit(2);
}

fn run_decode(case: &DecodeCase, runs: usize) -> Row {
    let input = case.stream();
    for lib in LIBRARIES {
        if let Err(why) = verify_decode(lib, case, &input) {
            fail(lib, case.label, &why);
        }
    }
    let samples = time_rotating(&LIBRARIES, runs, |lib| decode_pass(lib, case, &input));
    let values = samples
        .iter()
        .map(|s| throughput(case.unit, case.count, case.payload_bytes(), median(s)))
        .collect();
    Row {
        id: case.id,
        label: case.label,
        unit: case.unit,
        values,
        samples,
    }
}

fn run_encode(case: &EncodeCase, runs: usize) -> Row {
    let expected = case.expected();
    for lib in LIBRARIES {
        if let Err(why) = verify_encode(lib, case, &expected) {
            fail(lib, case.label, &why);
        }
    }
    let mut sink = Sink::default();
    let samples = time_rotating(&LIBRARIES, runs, |lib| {
        sink.reset();
        encode(lib, case, &mut sink);
        assert_eq!(
            sink.written,
            expected.len() as u64,
            "{lib}: wrong output size while timed"
        );
    });
    let values = samples
        .iter()
        .map(|s| throughput(case.unit, case.count, case.payload_bytes(), median(s)))
        .collect();
    Row {
        id: case.id,
        label: case.label,
        unit: case.unit,
        values,
        samples,
    }
}

/// The heap row for `echoes`, or (with `object`) the object size row.
fn run_idle(id: &'static str, label: &'static str, echoes: usize, object: bool) -> Row {
    let values = LIBRARIES
        .iter()
        .map(|lib| match idle_heap(lib, echoes) {
            Ok((bytes, size)) => (if object { size } else { bytes }) as f64,
            Err(why) => fail(lib, label, &why),
        })
        .collect();
    Row {
        id,
        label,
        unit: Unit::Bytes,
        values,
        samples: Vec::new(),
    }
}

fn throughput(unit: Unit, messages: usize, bytes: u64, seconds: f64) -> f64 {
    match unit {
        Unit::MsgPerSec => messages as f64 / seconds,
        Unit::GbPerSec => bytes as f64 / seconds / 1e9,
        Unit::Bytes => unreachable!(),
    }
}

// ----- output -----

/// wsmachine's figure over the best peer's (the highest, or for bytes the lowest).
fn ratio(row: &Row) -> f64 {
    let peers = row.values[1..].iter().copied();
    let best = if row.unit.higher_is_better() {
        peers.fold(f64::MIN, f64::max)
    } else {
        peers.fold(f64::MAX, f64::min)
    };
    row.values[0] / best
}

fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| workload |");
    for lib in LIBRARIES {
        out.push_str(&format!(" {lib} |"));
    }
    out.push_str(" wsmachine / best peer |\n|---|");
    for _ in 0..=LIBRARIES.len() {
        out.push_str("---:|");
    }
    out.push('\n');
    for row in rows {
        out.push_str(&format!("| {} ({}) |", row.label, row.unit.name()));
        let best = if row.unit.higher_is_better() {
            row.values.iter().copied().fold(f64::MIN, f64::max)
        } else {
            row.values.iter().copied().fold(f64::MAX, f64::min)
        };
        for &v in &row.values {
            let cell = format_value(row.unit.name(), v);
            if v == best {
                out.push_str(&format!(" **{cell}** |"));
            } else {
                out.push_str(&format!(" {cell} |"));
            }
        }
        let note = if row.unit.higher_is_better() {
            ""
        } else {
            " (lower is better)"
        };
        out.push_str(&format!(" {:.2}×{note} |\n", ratio(row)));
    }
    out
}

/// The UTC date and time, ISO 8601, from the system clock.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn results_json(rows: &[Row], runs: usize) -> Value {
    let versions = json!({
        "wsmachine": format!("{} (HEAD {})", env!("PEERS_V_WSMACHINE"), env!("PEERS_WSMACHINE_COMMIT")),
        "tungstenite": env!("PEERS_V_TUNGSTENITE"),
        "fastwebsockets": env!("PEERS_V_FASTWEBSOCKETS"),
        "tokio-websockets": env!("PEERS_V_TOKIO_WEBSOCKETS"),
    });
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut values = Map::new();
            let mut samples = Map::new();
            for (i, lib) in LIBRARIES.iter().enumerate() {
                values.insert((*lib).into(), json!(row.values[i]));
                if let Some(s) = row.samples.get(i) {
                    samples.insert((*lib).into(), json!(s));
                }
            }
            json!({
                "id": row.id,
                "label": row.label,
                "unit": row.unit.name(),
                "better": if row.unit.higher_is_better() { "higher" } else { "lower" },
                "values": values,
                "wsmachine_over_best_peer": ratio(row),
                "seconds_per_pass": samples,
            })
        })
        .collect();
    json!({
        "date": now_utc(),
        "cpu": cpu_model(),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "rustc": env!("PEERS_RUSTC"),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "runs": runs,
        "statistic": "median",
        "read_size": READ_CHUNK,
        "libraries": LIBRARIES,
        "versions": versions,
        "notes": [
            "Every library decodes the same masked stream, read at most 64 KiB at a time, and is checked message by message before it is timed.",
            "fastwebsockets hands validated text out as bytes; they are consumed as bytes (a &str would take a second validation).",
            "wsmachine takes each read's bytes as a slice (handle_read, its sans-IO input; the same copy as the others' reads, with payload unmasked on the way); WSMACHINE_INPUT=read makes it read into recv_buffer like the others.",
            "wsmachine sends payloads of 8 KiB or more with send_vectored (no copy into the connection), as its adapters do; fastwebsockets and tokio-websockets write large frames vectored too.",
            "Idle heap: fastwebsockets' server handshake is hyper's and is not counted; its connection starts after it.",
        ],
        "rows": rows,
    })
}

struct Args {
    runs: usize,
    out: String,
    only: Option<String>,
    /// Only this library's passes, repeated, for a profiler.
    profile: Option<String>,
}

/// Repeats `lib`'s pass of every selected codec row for 5 s each: nothing
/// is timed or written, so that `perf record` sees one library alone.
fn profile(lib: &str, wanted: impl Fn(&str) -> bool) {
    let Some(&lib) = LIBRARIES.iter().find(|l| **l == lib) else {
        panic!("--profile: unknown library {lib:?} (one of {LIBRARIES:?})");
    };
    let repeat = |pass: &mut dyn FnMut()| {
        let start = Instant::now();
        let mut passes = 0u64;
        while start.elapsed() < Duration::from_secs(5) {
            pass();
            passes += 1;
        }
        eprintln!("{passes} passes");
    };
    for case in decode_cases().iter().filter(|c| wanted(c.id)) {
        eprintln!("{lib}: {} ...", case.label);
        let input = case.stream();
        repeat(&mut || decode_pass(lib, case, &input));
    }
    for case in encode_cases().iter().filter(|c| wanted(c.id)) {
        eprintln!("{lib}: {} ...", case.label);
        let mut sink = Sink::default();
        repeat(&mut || {
            sink.reset();
            encode(lib, case, &mut sink);
        });
    }
}

fn parse_args() -> Args {
    let mut args = Args {
        runs: 11,
        out: concat!(env!("CARGO_MANIFEST_DIR"), "/results.json").into(),
        only: None,
        profile: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => {
                args.runs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--runs takes a positive number");
            }
            "--quick" => args.runs = 3,
            "--out" => args.out = it.next().expect("--out takes a path"),
            "--only" => args.only = Some(it.next().expect("--only takes a text")),
            "--profile" => args.profile = Some(it.next().expect("--profile takes a library")),
            "-h" | "--help" => {
                println!(
                    "compare [--runs N (default 11)] [--quick (3 runs)] [--out PATH] [--only TEXT] [--profile LIB]\n\
                     Decodes and encodes the same streams with each library, checks them, times\n\
                     them (median of N runs) and writes a markdown table and a JSON file.\n\
                     --profile LIB: repeats LIB's pass of each selected codec row for 5 s and\n\
                     writes nothing (for perf record)."
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
    let wanted = |id: &str| args.only.as_deref().is_none_or(|o| id.contains(o));
    if let Some(lib) = &args.profile {
        profile(lib, wanted);
        return;
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    for case in decode_cases() {
        if wanted(case.id) {
            eprintln!("{} ...", case.label);
            rows.push(run_decode(&case, args.runs));
        }
    }
    for case in encode_cases() {
        if wanted(case.id) {
            eprintln!("{} ...", case.label);
            rows.push(run_encode(&case, args.runs));
        }
    }
    for (id, label, echoes, object) in [
        (
            "idle_heap_handshake",
            "idle heap after the handshake",
            0,
            false,
        ),
        (
            "idle_heap_one_echo",
            "idle heap after one 16 B echo",
            1,
            false,
        ),
        (
            "connection_object",
            "size of the connection object",
            1,
            true,
        ),
    ] {
        if wanted(id) {
            eprintln!("{label} ...");
            rows.push(run_idle(id, label, echoes, object));
        }
    }
    let table = markdown(&rows);
    println!(
        "{} runs each, median; {}; {}\n",
        args.runs,
        cpu_model(),
        env!("PEERS_RUSTC")
    );
    println!("{table}");
    let json = results_json(&rows, args.runs);
    let text = serde_json::to_string_pretty(&json).expect("JSON");
    std::fs::write(&args.out, text + "\n")
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", args.out));
    eprintln!(
        "wrote {} in {:.0} s",
        args.out,
        started.elapsed().as_secs_f64()
    );
}
