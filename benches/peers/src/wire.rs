//! RFC 6455 frames written by hand, independently of every library compared.

/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;

/// The `Sec-WebSocket-Key` of the upgrade requests (the sample nonce of RFC 6455 §1.3).
pub const CLIENT_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The `Sec-WebSocket-Accept` a server must answer [`CLIENT_KEY`] with (RFC 6455 §1.3).
pub const EXPECTED_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Appends one final frame: `mask` is `Some` for a client, `None` for a server.
pub fn frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
    }
}

/// Fixed, varied masking keys (xorshift64*, seeded), so streams are identical run to run.
#[derive(Debug, Clone)]
pub struct Keys(u64);

impl Keys {
    /// Keys from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next key.
    pub fn next_key(&mut self) -> [u8; 4] {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let word = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        (word as u32).to_le_bytes()
    }
}

/// A minimal client upgrade request (no extension offered).
pub fn upgrade_request(host: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Checks a server's upgrade response head: status 101 and the right accept key.
pub fn check_upgrade_response(head: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let status_ok = text
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("HTTP/1.1 101"));
    let accept_ok = text.lines().any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("sec-websocket-accept")
                && value.trim() == EXPECTED_ACCEPT
        })
    });
    if status_ok && accept_ok {
        Ok(())
    } else {
        Err(format!("not a valid 101 response: {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let mut out = Vec::new();
        frame(&mut out, OP_TEXT, b"hi", None);
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        out.clear();
        frame(&mut out, OP_BINARY, &[0; 200], None);
        assert_eq!(&out[..4], &[0x82, 126, 0, 200]);
        out.clear();
        frame(&mut out, OP_BINARY, &[0; 70_000], Some([1, 2, 3, 4]));
        assert_eq!(&out[..2], &[0x82, 0xff]);
        assert_eq!(&out[2..10], &70_000u64.to_be_bytes());
        assert_eq!(&out[10..14], &[1, 2, 3, 4]);
        assert_eq!(out[14], 1);
        assert_eq!(out.len(), 14 + 70_000);
    }
}
