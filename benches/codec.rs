//! Codec throughput: decoding as a server (masked frames in, events out),
//! encoding as a server and as a client, masking alone, and UTF-8 validation.
//!
//! `cargo bench --bench codec`; one group: `cargo bench --bench codec -- decode_server`.
//!
//! Every decode case checks once, before timing, that it delivers the
//! expected number of messages.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use wsmachine::frame::{apply_mask, mask_copy};
use wsmachine::{Config, Connection, Event, SeededEntropy, Utf8Validator};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// What one socket read hands over.
const READ_SIZE: usize = 64 * KIB;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// `len` bytes of text mixing ASCII, Cyrillic, CJK and emoji (1 to 4 bytes
/// per code point), padded with ASCII to the exact length.
fn multilingual(len: usize) -> String {
    const SAMPLE: &str = "The quick brown fox; Съешь же ещё этих мягких французских булок; \
                          我能吞下玻璃而不伤身体; 私はガラスを食べられます; 🦊🐻🚀🌍✨🎉; ";
    let mut text = String::with_capacity(len);
    while text.len() + SAMPLE.len() <= len {
        text.push_str(SAMPLE);
    }
    while text.len() < len {
        text.push('.');
    }
    text
}

/// The bytes a client (masking, with seeded keys) sends after `script`.
fn client_stream(script: impl FnOnce(&mut Connection)) -> Vec<u8> {
    // The whole stream is queued before it is taken: no high-water mark.
    let mut config = Config::default();
    config.max_send_buffer = usize::MAX;
    let mut client = Connection::open_client(config, SeededEntropy::new(7));
    script(&mut client);
    let mut out = Vec::new();
    client.drain_transmit(&mut out);
    out
}

/// Drains the events, returning how many messages were delivered.
#[inline]
fn drain_events(server: &mut Connection) -> usize {
    let mut messages = 0;
    while let Some(event) = server.poll_event() {
        match event {
            Event::Text(text) => {
                black_box(text);
                messages += 1;
            }
            Event::Binary(data) => {
                black_box(data);
                messages += 1;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    messages
}

/// Feeds `stream` in socket-sized reads straight into the connection's
/// receive buffer, as an adapter does, draining events after each read.
fn feed_recv_buffer(server: &mut Connection, stream: &[u8]) -> usize {
    let mut messages = 0;
    for read in stream.chunks(READ_SIZE) {
        let mut read = read;
        while !read.is_empty() {
            let buf = server.recv_buffer();
            let n = buf.len().min(read.len());
            buf[..n].copy_from_slice(&read[..n]);
            server.commit_recv(n);
            read = &read[n..];
            messages += drain_events(server);
        }
    }
    messages
}

/// Feeds `stream` in socket-sized reads through `handle_read`.
fn feed_handle_read(server: &mut Connection, stream: &[u8]) -> usize {
    let mut messages = 0;
    for read in stream.chunks(READ_SIZE) {
        server.handle_read(read);
        messages += drain_events(server);
    }
    messages
}

/// One decode case: a masked stream of `messages` messages, fed to one server
/// connection again and again (the stream ends between frames, so it can).
fn decode_case(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    stream: &[u8],
    messages: usize,
    feed: fn(&mut Connection, &[u8]) -> usize,
) {
    let mut server = Connection::open_server(Config::default());
    assert_eq!(
        feed(&mut server, stream),
        messages,
        "{name}: wrong message count"
    );
    assert_eq!(
        feed(&mut server, stream),
        messages,
        "{name}: wrong count on reuse"
    );
    group.throughput(Throughput::ElementsAndBytes {
        elements: messages as u64,
        bytes: stream.len() as u64,
    });
    group.bench_function(name, |b| b.iter(|| feed(&mut server, black_box(stream))));
}

fn decode_server(c: &mut Criterion) {
    let text16 = client_stream(|c| {
        for _ in 0..100_000 {
            c.send_text("0123456789abcdef").unwrap();
        }
    });
    let binary1k = client_stream(|c| {
        let payload = vec![0xA5; KIB];
        for _ in 0..10_000 {
            c.send_binary(&payload).unwrap();
        }
    });
    let mut group = c.benchmark_group("decode_server");
    decode_case(
        &mut group,
        "text_16B_x100k/recv_buffer",
        &text16,
        100_000,
        feed_recv_buffer,
    );
    decode_case(
        &mut group,
        "text_16B_x100k/handle_read",
        &text16,
        100_000,
        feed_handle_read,
    );
    decode_case(
        &mut group,
        "binary_1KiB_x10k/recv_buffer",
        &binary1k,
        10_000,
        feed_recv_buffer,
    );
    decode_case(
        &mut group,
        "binary_1KiB_x10k/handle_read",
        &binary1k,
        10_000,
        feed_handle_read,
    );
    drop((text16, binary1k));

    // About 100 MiB per iteration: one iteration per sample.
    group.sampling_mode(SamplingMode::Flat);
    let binary1m = client_stream(|c| {
        let payload = vec![0x5A; MIB];
        for _ in 0..100 {
            c.send_binary(&payload).unwrap();
        }
    });
    decode_case(
        &mut group,
        "binary_1MiB_x100/recv_buffer",
        &binary1m,
        100,
        feed_recv_buffer,
    );
    drop(binary1m);
    let text1m = client_stream(|c| {
        let text = multilingual(MIB);
        for _ in 0..100 {
            c.send_text(&text).unwrap();
        }
    });
    decode_case(
        &mut group,
        "text_utf8_1MiB_x100/recv_buffer",
        &text1m,
        100,
        feed_recv_buffer,
    );
    group.finish();
}

/// Sends `count` messages with `send`, draining after each into a reused
/// `Vec` that is "written" (cleared) once it holds a socket write's worth.
fn encode_loop(
    conn: &mut Connection,
    out: &mut Vec<u8>,
    count: usize,
    send: impl Fn(&mut Connection),
) -> usize {
    let mut written = 0;
    for _ in 0..count {
        send(conn);
        conn.drain_transmit(out);
        if out.len() >= READ_SIZE {
            written += black_box(&*out).len();
            out.clear();
        }
    }
    written += black_box(&*out).len();
    out.clear();
    written
}

fn encode_case(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut conn: Connection,
    count: usize,
    send: impl Fn(&mut Connection) + Copy,
) {
    let mut out = Vec::new();
    let wire = encode_loop(&mut conn, &mut out, count, send);
    group.throughput(Throughput::ElementsAndBytes {
        elements: count as u64,
        bytes: wire as u64,
    });
    group.bench_function(name, |b| {
        b.iter(|| encode_loop(&mut conn, &mut out, count, send))
    });
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let server = || Connection::open_server(Config::default());
    let client = || Connection::open_client(Config::default(), SeededEntropy::new(7));
    encode_case(
        &mut group,
        "server/text_16B_x100k",
        server(),
        100_000,
        |c| c.send_text(black_box("0123456789abcdef")).unwrap(),
    );
    group.sampling_mode(SamplingMode::Flat);
    let payload = vec![0x5A; MIB];
    let payload = &payload[..];
    encode_case(&mut group, "server/binary_1MiB_x100", server(), 100, |c| {
        c.send_binary(black_box(payload)).unwrap()
    });
    // The payload handed out without a copy, as a vectored write would take
    // it; the sink stands for the socket (one copy, as the kernel's).
    let mut conn = server();
    let mut sink = Vec::with_capacity(2 * MIB);
    let mut vectored = || {
        let mut written = 0;
        for _ in 0..100 {
            let mut transmit = conn
                .send_vectored(wsmachine::MessageKind::Binary, black_box(payload))
                .unwrap();
            for slice in transmit.slices() {
                sink.extend_from_slice(slice);
            }
            transmit.advance(sink.len());
            drop(transmit);
            written += black_box(&sink).len();
            sink.clear();
        }
        written
    };
    group.throughput(Throughput::ElementsAndBytes {
        elements: 100,
        bytes: vectored() as u64,
    });
    group.bench_function("server/binary_1MiB_x100/send_vectored", |b| {
        b.iter(&mut vectored)
    });
    encode_case(
        &mut group,
        "client_masked/binary_1MiB_x100",
        client(),
        100,
        |c| c.send_binary(black_box(payload)).unwrap(),
    );
    group.finish();
}

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("masking");
    group.throughput(Throughput::Bytes(MIB as u64));
    let mut buf = vec![0x5A; MIB + 1];
    group.bench_function("apply_mask_1MiB", |b| {
        b.iter(|| apply_mask(black_box(&mut buf[..MIB]), KEY, 0))
    });
    group.bench_function("apply_mask_1MiB_unaligned", |b| {
        b.iter(|| apply_mask(black_box(&mut buf[1..]), KEY, 3))
    });
    let src = vec![0xA5; MIB];
    let mut dst = vec![0; MIB];
    group.bench_function("mask_copy_1MiB", |b| {
        b.iter(|| mask_copy(black_box(&mut dst), black_box(&src), KEY, 0))
    });
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let text = multilingual(MIB);
    let bytes = text.as_bytes();
    assert!(core::str::from_utf8(bytes).is_ok());
    let mut group = c.benchmark_group("utf8_1MiB_multilingual");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("core_str_from_utf8", |b| {
        b.iter(|| core::str::from_utf8(black_box(bytes)).is_ok())
    });
    // Utf8Validator runs simdutf8 (compat) over each chunk.
    group.bench_function("Utf8Validator_feed_whole", |b| {
        b.iter(|| {
            let mut v = Utf8Validator::new();
            v.feed(black_box(bytes)).unwrap();
            v.finish().unwrap();
        })
    });
    // As reads arrive: chunks that split code points.
    group.bench_function("Utf8Validator_feed_4KiB_chunks", |b| {
        b.iter(|| {
            let mut v = Utf8Validator::new();
            for chunk in black_box(bytes).chunks(4 * KIB + 1) {
                v.feed(chunk).unwrap();
            }
            v.finish().unwrap();
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = decode_server, encode, masking, utf8
}
criterion_main!(benches);
