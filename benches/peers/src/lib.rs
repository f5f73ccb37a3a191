//! Shared pieces of the comparison harness: a neutral frame encoder that
//! builds the test streams and the expected outputs, in-memory streams that
//! behave like a socket, and the payloads of the workloads.
//!
//! Nothing here comes from a library under test, so every library decodes
//! the same bytes and is checked against the same expectations.

pub mod mock;
pub mod payload;
pub mod wire;

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
