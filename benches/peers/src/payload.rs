//! The payloads of the workloads: every message differs from its neighbours,
//! so a library that drops, repeats or reorders one fails the check.

/// `len` bytes of text mixing ASCII, Cyrillic, CJK and emoji (1 to 4 bytes
/// per code point), padded with ASCII to the exact length.
pub fn multilingual(len: usize) -> String {
    const PIECES: [&str; 5] = [
        "Pack my box with five dozen liquor jugs. ",
        "В чащах юга жил бы цитрус? Да, но фальшивый экземпляр! ",
        "天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。",
        "いろはにほへと ちりぬるを ",
        "🌊🐙🦀🚲📦🎈 ",
    ];
    let mut text = String::with_capacity(len);
    'fill: loop {
        for piece in PIECES {
            if text.len() + piece.len() > len {
                break 'fill;
            }
            text.push_str(piece);
        }
    }
    while text.len() < len {
        text.push('.');
    }
    text
}

/// A message's index written over the start of a template, as ASCII digits
/// (so text stays text). Templates must be at least 12 bytes.
pub fn stamp(template: &[u8], index: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(template);
    let digits = format!("{index:012}");
    out[..12].copy_from_slice(digits.as_bytes());
}
