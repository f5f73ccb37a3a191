//! Incremental UTF-8 validation across reads and fragments (RFC 6455 §8.1).
//!
//! The validator keeps at most 3 bytes of an unfinished code point between
//! calls. It fails as soon as the bytes seen so far cannot begin valid UTF-8:
//! a truncated sequence is only accepted while it is a valid prefix.

/// Validates a stream of bytes as UTF-8, chunk by chunk.
///
/// ```
/// use wsmachine::Utf8Validator;
/// let euro = "€".as_bytes(); // e2 82 ac
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(&euro[..1]).is_ok());
/// assert!(v.feed(&euro[1..]).is_ok());
/// assert!(v.finish().is_ok());
///
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(&[0xf4, 0x90]).is_err()); // above U+10FFFF: fails at once
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// The bytes fed are not a prefix of any valid UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

/// Inputs shorter than this are checked for ASCII a word at a time before
/// anything else: the SIMD validator's set-up costs more than such a check
/// (see the `utf8` group of `benches/codec.rs`).
const SHORT: usize = 64;

/// Whether `bytes` are all ASCII, 8 bytes at a time.
#[inline]
fn is_ascii_short(bytes: &[u8]) -> bool {
    let (words, rest) = bytes.as_chunks::<8>();
    let mut acc = words.iter().fold(0, |acc, w| acc | u64::from_ne_bytes(*w));
    for &b in rest {
        acc |= u64::from(b);
    }
    acc & 0x8080_8080_8080_8080 == 0
}

/// Whether `bytes` are valid UTF-8, with SIMD where the CPU has it.
pub(crate) fn is_valid(bytes: &[u8]) -> bool {
    (bytes.len() < SHORT && is_ascii_short(bytes)) || simdutf8::basic::from_utf8(bytes).is_ok()
}

/// Text that was validated while parsing, handed out without validating it again.
///
/// Validating twice would cost as much again as the validation itself on long
/// text (see the `utf8` group of `benches/codec.rs`); this is the one place
/// that trusts an earlier check.
///
/// # Safety
///
/// `bytes` must be valid UTF-8: the caller validated them (with
/// [`is_valid`] or a [`Utf8Validator`] fed every byte in order and
/// `finish`ed) and has not written them since. Debug builds check it.
#[allow(unsafe_code)]
#[inline]
pub(crate) unsafe fn assume_validated(bytes: &[u8]) -> &str {
    debug_assert!(core::str::from_utf8(bytes).is_ok());
    // SAFETY: the caller's contract above.
    unsafe { core::str::from_utf8_unchecked(bytes) }
}

/// Width of the code point that `lead` starts (lead is a valid lead byte).
fn width(lead: u8) -> usize {
    match lead {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Self {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Whether a code point is unfinished (the text so far ends mid-sequence).
    pub fn is_mid_code_point(&self) -> bool {
        self.pending_len != 0
    }

    /// Validates the next chunk. Fails as soon as the chunk makes the text invalid.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let have = self.pending_len as usize;
            let want = width(self.pending[0]) - have;
            let take = want.min(input.len());
            let mut buf = self.pending;
            buf[have..have + take].copy_from_slice(&input[..take]);
            match simdutf8::compat::from_utf8(&buf[..have + take]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {
                    // Still a valid prefix; the input was too short to finish it.
                    self.pending = buf;
                    self.pending_len = (have + take) as u8;
                    return Ok(());
                }
            }
            input = &input[take..];
        }
        if input.len() < SHORT && is_ascii_short(input) {
            return Ok(());
        }
        match simdutf8::compat::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &input[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the text: fails if it stops in the middle of a code point. Resets the validator.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let mid = self.is_mid_code_point();
        *self = Self::new();
        if mid { Err(InvalidUtf8) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract of `assume_validated`, kept: whatever `is_valid` or a
    /// finished `Utf8Validator` accepted comes back as the same text.
    #[test]
    #[allow(unsafe_code)]
    fn validated_text_comes_back_unchanged() {
        for text in ["", "ascii", "é", "我能吞下玻璃", "🦊 and 🐻", "a\u{0}b"] {
            let bytes = text.as_bytes();
            assert!(is_valid(bytes));
            let mut validator = Utf8Validator::new();
            for chunk in bytes.chunks(1) {
                validator.feed(chunk).unwrap();
            }
            validator.finish().unwrap();
            // SAFETY: validated just above, whole and byte by byte.
            assert_eq!(unsafe { assume_validated(bytes) }, text);
        }
        // And what it must never be given is refused by both checks.
        assert!(!is_valid(b"\xC3"));
        let mut validator = Utf8Validator::new();
        validator.feed(b"\xC3").unwrap();
        assert!(validator.finish().is_err());
    }
}
