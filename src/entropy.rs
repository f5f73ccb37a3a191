//! Entropy comes from the caller: the core holds no random number generator of its own.

/// A source of random bytes, used for client masking keys (RFC 6455 §5.3).
///
/// RFC 6455 §10.3 asks for keys that are unpredictable to the application that
/// supplies the payload: in production, fill from a cryptographically secure
/// generator (the adapters seed one from the OS). Closures implement it:
///
/// ```
/// use wsmachine::Entropy;
/// let mut counter = 0u8;
/// let mut source = move |buf: &mut [u8]| buf.iter_mut().for_each(|b| { counter += 1; *b = counter });
/// let mut key = [0; 4];
/// source.fill(&mut key);
/// assert_eq!(key, [1, 2, 3, 4]);
/// ```
pub trait Entropy {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> Entropy for F {
    fn fill(&mut self, dest: &mut [u8]) {
        self(dest)
    }
}

/// A deterministic generator (SplitMix64) from a 64-bit seed: the same seed
/// gives the same bytes, so tests and fuzzing are reproducible byte for byte.
///
/// It is **not** cryptographically secure: use it for tests, or seed it per
/// connection from a secure source when masking only needs to defeat
/// intermediaries rather than a hostile script in the same process.
///
/// ```
/// use wsmachine::{Entropy, SeededEntropy};
/// let (mut a, mut b) = (SeededEntropy::new(7), SeededEntropy::new(7));
/// let (mut x, mut y) = ([0; 8], [0; 8]);
/// a.fill(&mut x);
/// b.fill(&mut y);
/// assert_eq!(x, y);
/// ```
#[derive(Debug, Clone)]
pub struct SeededEntropy {
    state: u64,
}

impl SeededEntropy {
    /// A generator that starts from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
