//! permessage-deflate throughput on a JSON-like corpus: compressing and
//! inflating whole messages, as a connection does, per level and window.
//!
//! `cargo bench --bench deflate`; the ratios are printed by
//! `cargo run --release --example deflate_memory`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wsmachine::deflate::{Compressor, Decompressor};

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

criterion_group!(benches, deflate);
criterion_main!(benches);
