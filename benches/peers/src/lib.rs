//! Shared pieces of the comparison harness: a neutral frame encoder that
//! builds the test streams and the expected outputs, in-memory streams that
//! behave like a socket, and the payloads of the workloads.
//!
//! Nothing here comes from a library under test, so every library decodes
//! the same bytes and is checked against the same expectations.

pub mod mock;
pub mod payload;
pub mod wire;

use std::time::{Duration, Instant};

/// What one socket read hands over at most.
pub const READ_CHUNK: usize = 64 << 10;

/// The libraries compared, in the order of the table's columns.
pub const LIBRARIES: [&str; 4] = [
    "wsmachine",
    "tungstenite",
    "fastwebsockets",
    "tokio-websockets",
];

/// A figure for a table or a chart: `unit` is "msg/s", "GB/s" or "bytes".
pub fn format_value(unit: &str, v: f64) -> String {
    match unit {
        "msg/s" if v >= 1e6 => format!("{:.2} M", v / 1e6),
        "msg/s" => format!("{:.0} k", v / 1e3),
        "GB/s" => format!("{v:.2}"),
        "bytes" => group_thousands(v.round() as i64),
        _ => format!("{v}"),
    }
}

/// `1234567` as `1,234,567`.
pub fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Seconds per pass of each library (in `libs` order), one sample per run.
/// Each sample repeats the pass to last at least `TARGET` (calibrated per
/// library); the libraries take turns, in an order that rotates every run.
pub fn time_rotating(libs: &[&str], runs: usize, mut pass: impl FnMut(&str)) -> Vec<Vec<f64>> {
    const TARGET: Duration = Duration::from_millis(100);
    let reps: Vec<u32> = libs
        .iter()
        .map(|lib| {
            let start = Instant::now();
            pass(lib);
            let once = start.elapsed().max(Duration::from_micros(1));
            (TARGET.as_secs_f64() / once.as_secs_f64())
                .ceil()
                .clamp(1.0, 10_000.0) as u32
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(runs); libs.len()];
    for run in 0..runs {
        for turn in 0..libs.len() {
            let i = (run + turn) % libs.len();
            // One pass untimed first: the caches and the allocator's state
            // are this library's, not what the library before it left.
            pass(libs[i]);
            let start = Instant::now();
            for _ in 0..reps[i] {
                pass(libs[i]);
            }
            samples[i].push(start.elapsed().as_secs_f64() / f64::from(reps[i]));
        }
    }
    samples
}

pub fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The CPU's model name, from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
