//! A deterministic JSON-like corpus shared by `examples/deflate_memory.rs` and
//! `benches/deflate.rs`.

/// A deterministic JSON-like corpus: chat and telemetry events, as a
/// WebSocket API sends them, one message each.
pub fn corpus(n: usize) -> Vec<String> {
    let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let words = [
        "ok", "ready", "moving", "idle", "sync", "ack", "left", "joined",
    ];
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let r = next();
            format!(
                r#"{{"type":"event","id":{i},"ts":{},"user":"{}","status":"{}","pos":{{"x":{:.3},"y":{:.3}}},"tags":["{}","{}"],"seq":{}}}"#,
                1_700_000_000_000u64 + i as u64 * 17,
                names[(r % 6) as usize],
                words[(r >> 8) as usize % 8],
                (r >> 16) as f64 % 1000.0 / 7.0,
                (r >> 32) as f64 % 1000.0 / 3.0,
                words[(r >> 40) as usize % 8],
                words[(r >> 48) as usize % 8],
                r % 100_000,
            )
        })
        .collect()
}

/// A deterministic chat-like corpus: short messages (about 40 to 120 bytes)
/// of a chat room, one message each, as a browser sends and receives them.
#[allow(dead_code)]
pub fn chat(n: usize) -> Vec<String> {
    let names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
    let words = [
        "hi", "hello", "there", "yes", "no", "maybe", "lunch", "meeting", "at", "noon", "see",
        "you", "soon", "thanks", "great", "the", "build", "is", "green", "again", "ship", "it",
        "today", "tomorrow", "ok", "lol", "what", "about", "review", "done",
    ];
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|i| {
            let r = next();
            let len = 2 + (r % 12) as usize;
            let text: Vec<&str> = (0..len)
                .map(|k| words[((r >> (k * 5 % 60)) ^ next()) as usize % words.len()])
                .collect();
            format!(
                r#"{{"type":"message","room":"general","from":"{}","id":{i},"text":"{}"}}"#,
                names[(r >> 20) as usize % names.len()],
                text.join(" ")
            )
        })
        .collect()
}

/// `n` distinct JSON arrays of about 1 KiB (events of [`corpus`], joined
/// until past 900 bytes), as a ticker's or a game's broadcast updates are:
/// a connection that compresses with context gains from what the last ones
/// share, not from a repeat of the same bytes.
#[allow(dead_code)]
pub fn updates(n: usize) -> Vec<String> {
    let items = corpus(64 * n);
    let mut items = items.iter();
    (0..n)
        .map(|_| {
            let mut text = String::from("[");
            for item in items.by_ref() {
                if text.len() > 1 {
                    text.push(',');
                }
                text.push_str(item);
                if text.len() > 900 {
                    break;
                }
            }
            text.push(']');
            text
        })
        .collect()
}

/// A deterministic xorshift64 generator from `seed` (not zero).
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
