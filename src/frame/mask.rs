//! Client-to-server masking (RFC 6455 §5.3): octet i of the payload is XORed
//! with octet (i mod 4) of the masking key.
//!
//! The loops work on 8-byte words so that the compiler turns them into SIMD
//! instructions; no `unsafe` is needed for that.

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

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn word_masking_matches_the_definition_at_every_offset_and_length() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..70 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
                let mut copied = vec![0; len];
                mask_copy(&mut copied, &data, key, offset);
                assert_eq!(copied, slow, "mask_copy len {len} offset {offset}");
            }
        }
    }
}
