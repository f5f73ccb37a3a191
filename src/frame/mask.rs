//! Client-to-server masking (RFC 6455 §5.3): octet i of the payload is XORed
//! with octet (i mod 4) of the masking key.
//!
//! The loops work on 8-byte words so that the compiler turns them into SIMD
//! instructions: SSE2 on every x86_64, NEON on every aarch64, a plain word
//! loop elsewhere. On x86_64 with `std`, the same loops are also compiled for
//! AVX2 and chosen at run time when the CPU has it (32 bytes per instruction
//! instead of 16): see the `masking` group of `benches/codec.rs`.

/// The key as seen from payload position `offset`: byte j of the result masks
/// payload byte `offset + j`.
#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let o = offset & 3;
    [key[o], key[(o + 1) & 3], key[(o + 2) & 3], key[(o + 3) & 3]]
}

#[inline]
fn word(key: [u8; 4]) -> u64 {
    u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ])
}

/// Masks or unmasks `buf` in place. `offset` is the position of `buf[0]` in the
/// frame's payload, so a payload split across reads unmasks correctly chunk by chunk.
///
/// ```
/// use wsmachine::frame::apply_mask;
/// let key = [1, 2, 3, 4];
/// let mut whole = *b"hello, world";
/// apply_mask(&mut whole, key, 0);
/// let mut split = *b"hello, world";
/// let (a, b) = split.split_at_mut(5);
/// apply_mask(a, key, 0);
/// apply_mask(b, key, 5);
/// assert_eq!(whole, split);
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if buf.len() >= AVX2_MIN && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        #[allow(unsafe_code)]
        unsafe {
            avx2::apply_mask(buf, key, offset)
        };
        return;
    }
    apply_mask_words(buf, key, offset);
}

/// The portable loop of [`apply_mask`].
#[inline(always)]
fn apply_mask_words(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    let k = word(key);
    let (words, rest) = buf.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ k).to_ne_bytes();
    }
    // `words` covers a multiple of 4 bytes, so the key phase is unchanged here.
    for (b, m) in rest.iter_mut().zip(key.iter().cycle()) {
        *b ^= m;
    }
}

/// Copies `src` into `dst` while masking it: one pass over the data instead of
/// a copy and then a mask. `offset` is as in [`apply_mask`].
///
/// # Panics
/// If `dst` and `src` differ in length.
#[inline]
pub fn mask_copy(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    assert_eq!(dst.len(), src.len(), "mask_copy: lengths differ");
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if dst.len() >= AVX2_MIN && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        #[allow(unsafe_code)]
        unsafe {
            avx2::mask_copy(dst, src, key, offset)
        };
        return;
    }
    mask_copy_words(dst, src, key, offset);
}

/// The portable loop of [`mask_copy`] (the lengths are equal).
#[inline(always)]
fn mask_copy_words(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    let k = word(key);
    let (dw, drest) = dst.as_chunks_mut::<8>();
    let (sw, srest) = src.as_chunks::<8>();
    for (d, s) in dw.iter_mut().zip(sw) {
        *d = (u64::from_ne_bytes(*s) ^ k).to_ne_bytes();
    }
    for ((d, s), m) in drest.iter_mut().zip(srest).zip(key.iter().cycle()) {
        *d = s ^ m;
    }
}

/// Below this the portable loop is as fast: the AVX2 loop's gain is per 32 bytes.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AVX2_MIN: usize = 64;

/// The portable loops compiled with AVX2 enabled: the compiler vectorises
/// them 32 bytes at a time. Callable only once the CPU is known to have AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub(super) fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
        super::apply_mask_words(buf, key, offset);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn mask_copy(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
        super::mask_copy_words(dst, src, key, offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    /// Every masking function against the definition, at every key phase,
    /// at lengths around each loop's boundaries and at unaligned starts.
    fn check(
        name: &str,
        mask: impl Fn(&mut [u8], [u8; 4], usize),
        copy: impl Fn(&mut [u8], &[u8], [u8; 4], usize),
    ) {
        let key = [0x12, 0x34, 0x56, 0x78];
        let lengths = (0..140).chain([255, 256, 257, 1023, 1024, 1025, 4099]);
        for len in lengths {
            for start in 0..3 {
                for offset in 0..8 {
                    let data: Vec<u8> = (0..len + start)
                        .map(|i| (i as u8).wrapping_mul(31))
                        .collect();
                    let data = &data[start..];
                    let mut slow = data.to_vec();
                    naive(&mut slow, key, offset);
                    let mut fast = data.to_vec();
                    mask(&mut fast, key, offset);
                    assert_eq!(fast, slow, "{name} len {len} start {start} offset {offset}");
                    let mut copied = vec![0; len];
                    copy(&mut copied, data, key, offset);
                    assert_eq!(
                        copied, slow,
                        "{name} copy len {len} start {start} offset {offset}"
                    );
                }
            }
        }
    }

    #[test]
    fn masking_matches_the_definition_at_every_offset_and_length() {
        check("dispatched", apply_mask, mask_copy);
        check("portable", apply_mask_words, mask_copy_words);
    }

    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[test]
    fn the_avx2_loops_match_the_definition_when_the_cpu_has_avx2() {
        if !std::is_x86_feature_detected!("avx2") {
            return; // Nothing to run here; the dispatch never picks them.
        }
        // SAFETY (both calls): the CPU supports AVX2, checked above.
        #[allow(unsafe_code)]
        check(
            "avx2",
            |b, k, o| unsafe { avx2::apply_mask(b, k, o) },
            |d, s, k, o| unsafe { avx2::mask_copy(d, s, k, o) },
        );
    }
}
