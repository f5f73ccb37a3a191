//! permessage-deflate throughput on a JSON-like corpus: compressing and
//! inflating whole messages, as a connection does, per level and window; and
//! through a server connection per memory setting (dedicated, shared with
//! 12-bit windows, shared without context), on the JSON and chat corpora.
//!
//! `cargo bench --bench deflate`; the ratios and memory are printed by
//! `cargo run --release --example deflate_memory --features deflate,testing`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wsmachine::deflate::{CodecPool, Compressor, Decompressor, DeflateConfig};
use wsmachine::{Config, Connection, Event, SeededEntropy};

#[path = "../examples/support/json_corpus.rs"]
mod json_corpus;

fn deflate(c: &mut Criterion) {
    let messages = json_corpus::corpus(2000);
    let raw: usize = messages.iter().map(String::len).sum();
    let mut group = c.benchmark_group("deflate_json_2000_messages");
    group.throughput(Throughput::Bytes(raw as u64));
    for (level, bits, takeover) in [(1, 15, true), (6, 15, true), (6, 10, true), (6, 15, false)] {
        let name = format!(
            "level{level}_window{bits}{}",
            if takeover { "" } else { "_no_takeover" }
        );
        // The wire form, for the inflate side.
        let mut compressor = Compressor::new(level, bits, !takeover);
        let wire: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| {
                let mut out = Vec::new();
                compressor.compress(m.as_bytes(), true, &mut out);
                out
            })
            .collect();
        group.bench_function(format!("compress_{name}"), |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                // A fresh compressor per run, so every run sees the same stream.
                let mut compressor = Compressor::new(level, bits, !takeover);
                let mut total = 0;
                for m in &messages {
                    out.clear();
                    compressor.compress(m.as_bytes(), true, &mut out);
                    total += out.len();
                }
                total
            });
        });
        group.bench_function(format!("inflate_{name}"), |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                let mut decompressor = Decompressor::new(bits, !takeover);
                let mut total = 0;
                for w in &wire {
                    out.clear();
                    decompressor
                        .decompress(w, true, &mut out, usize::MAX)
                        .expect("inflates");
                    total += out.len();
                }
                assert_eq!(total, raw);
                total
            });
        });
    }
    group.finish();
}

/// A server and a client connection, open, with the same agreement the
/// handshake would give for Chromium's offer against `server`.
fn open_pair(server: &DeflateConfig) -> (Connection, Connection) {
    use wsmachine::handshake::ClientRequest;
    let request = ClientRequest::new("ws://localhost/")
        .unwrap()
        .extension("permessage-deflate; client_max_window_bits");
    let mut client_config = Config::default();
    // Dedicated: the client compresses with the whole window agreed, as
    // Chromium does.
    client_config.deflate = Some(DeflateConfig::dedicated(8));
    let mut server_config = Config::default();
    server_config.deflate = Some(server.clone());
    let mut client = Connection::client(&request, client_config, SeededEntropy::new(1)).unwrap();
    let mut server_conn = Connection::server(server_config);
    let mut wire = Vec::new();
    client.drain_transmit(&mut wire);
    server_conn.handle_read(&wire);
    assert!(matches!(server_conn.poll_event(), Some(Event::Request(_))));
    server_conn
        .accept(wsmachine::handshake::Accept::new())
        .unwrap();
    while server_conn.poll_event().is_some() {}
    wire.clear();
    server_conn.drain_transmit(&mut wire);
    client.handle_read(&wire);
    while client.poll_event().is_some() {}
    assert!(client.is_open() && server_conn.is_open());
    (server_conn, client)
}

fn settings(c: &mut Criterion) {
    let pool = CodecPool::new();
    // The default (shared, 12-bit windows, a pool of its own) and the other
    // presets of the README's table.
    let settings = [
        ("default_shared12", DeflateConfig::default()),
        ("shared11", DeflateConfig::shared(&pool, 11)),
        (
            "shared_no_context",
            DeflateConfig::shared_without_context(&pool),
        ),
        ("dedicated8", DeflateConfig::dedicated(8)),
        ("dedicated1", DeflateConfig::dedicated(1)),
    ];
    for (corpus, messages) in [
        ("json", json_corpus::corpus(2000)),
        ("chat", json_corpus::chat(2000)),
    ] {
        let raw: usize = messages.iter().map(String::len).sum();
        let mut group = c.benchmark_group(format!("deflate_server_{corpus}_2000_messages"));
        group.throughput(Throughput::Bytes(raw as u64));
        for (name, config) in &settings {
            // Sending: the server compresses every message into a frame.
            let (mut server, _client) = open_pair(config);
            let mut out = Vec::with_capacity(64 << 10);
            group.bench_function(format!("send_{name}"), |b| {
                b.iter(|| {
                    for m in &messages {
                        server.send_text(m).unwrap();
                        out.clear();
                        server.drain_transmit(&mut out);
                    }
                })
            });
            // The same across connections taking turns: 16 (as many as the
            // pool keeps, so each finds its own state) and 64 (more, so a
            // shared state restarts from each one's window every time).
            for turns in [16, 64] {
                let mut servers: Vec<Connection> =
                    (0..turns).map(|_| open_pair(config).0).collect();
                group.bench_function(format!("send_{name}_{turns}_connections_in_turn"), |b| {
                    b.iter(|| {
                        for (i, m) in messages.iter().enumerate() {
                            let server = &mut servers[i % turns];
                            server.send_text(m).unwrap();
                            out.clear();
                            server.drain_transmit(&mut out);
                        }
                    })
                });
            }
            // Receiving: the client's compressed frames, recorded once in
            // order (context takeover), then inflated by fresh servers.
            let (_, mut client) = open_pair(config);
            let mut wire = Vec::new();
            for m in &messages {
                client.send_text(m).unwrap();
                client.drain_transmit(&mut wire);
            }
            group.bench_function(format!("recv_{name}"), |b| {
                b.iter_batched(
                    || open_pair(config).0,
                    |mut server| {
                        server.handle_read(&wire);
                        let mut n = 0;
                        while let Some(event) = server.poll_event() {
                            n += matches!(event, Event::Text(_)) as usize;
                        }
                        assert_eq!(n, messages.len());
                    },
                    criterion::BatchSize::LargeInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, deflate, settings);
criterion_main!(benches);
