//! The payload codec (RFC 7692 §7.2): raw DEFLATE, flushed at the end of every
//! fragment, with the `00 00 ff ff` tail stripped from a message's end on send
//! and restored on receive.

use alloc::string::String;
use alloc::vec::Vec;

use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Method, Status, Strategy};

/// RFC 7692 §7.2.1: the end of a sync flush, stripped from every compressed message.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The least output room an inflate call is given (when the limit allows):
/// zlib-rs inflates with its fast loop only while 260 bytes of output are
/// free (`INFLATE_FAST_MIN_LEFT`); with twice that, a small message is
/// inflated by it.
const FAST_ROOM: usize = 512;

/// The least window zlib compresses with; see the module docs on window bits 8.
fn zlib_window(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

/// Compresses messages for one direction of a connection (RFC 7692 §7.2.1).
///
/// ```
/// use wsmachine::deflate::{Compressor, Decompressor};
/// let mut compressor = Compressor::new(6, 15, false);
/// let mut wire = Vec::new();
/// compressor.compress(b"hello hello hello", true, &mut wire);
/// let mut decompressor = Decompressor::new(15, false);
/// let mut text = Vec::new();
/// let inflated = decompressor.decompress(&wire, true, &mut text, 1 << 20).unwrap();
/// assert!(inflated.done);
/// assert_eq!(text, b"hello hello hello");
/// ```
pub struct Compressor {
    inner: Deflate,
    no_context_takeover: bool,
    /// The window asked for (8–15), which the output is valid for.
    window_bits: u8,
}

/// zlib's default `memLevel`: 8.
pub const DEFAULT_MEM_LEVEL: u8 = 8;

impl Compressor {
    /// A compressor at zlib `level` (0–9) with an LZ77 window of
    /// `window_bits` (8–15) and zlib's default `memLevel` (8);
    /// `no_context_takeover` resets it after every message.
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Self {
        Self::with_mem_level(level, window_bits, DEFAULT_MEM_LEVEL, no_context_takeover)
    }

    /// [`new`](Self::new) with zlib's `memLevel` (1–9): the size of its hash
    /// table and block buffer, which dominate the compressor's memory (see
    /// the [module docs](crate::deflate#memory)).
    pub fn with_mem_level(
        level: u32,
        window_bits: u8,
        mem_level: u8,
        no_context_takeover: bool,
    ) -> Self {
        let config = zlib_rs::DeflateConfig {
            level: level.min(9) as i32,
            method: Method::Deflated,
            // Negative: raw DEFLATE, no zlib header (RFC 7692 §7.2.1).
            window_bits: -i32::from(zlib_window(window_bits)),
            mem_level: i32::from(mem_level.clamp(1, 9)),
            strategy: Strategy::Default,
        };
        Self {
            inner: Deflate::new_with_config(config),
            no_context_takeover,
            window_bits: window_bits.clamp(8, 15),
        }
    }

    /// The LZ77 window it compresses for, in bits (8–15): a peer inflating
    /// with a window at least this large can inflate its output.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Compresses `data`, the next fragment of a message, appending the
    /// frame payload to `out`. Every fragment is flushed, so its bytes can be
    /// sent at once; `end` marks the message's last fragment, whose tail is
    /// stripped.
    pub fn compress(&mut self, data: &[u8], end: bool, out: &mut Vec<u8>) {
        let start = out.len();
        let mut input = data;
        loop {
            // Room for the input at its worst (stored blocks), or as much as
            // was produced so far (geometric growth while zlib flushes), zeroed:
            // no `unsafe` for a write into uninitialised memory.
            let room = (input.len() + (input.len() >> 3) + 64).max(out.len() - start);
            let len = out.len();
            out.resize(len + room, 0);
            let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
            // Errors come only from misuse of the stream, which this type rules
            // out; a failure would end the loop with what was produced.
            let status = self
                .inner
                .compress(input, &mut out[len..], DeflateFlush::SyncFlush);
            let produced = (self.inner.total_out() - before_out) as usize;
            out.truncate(len + produced);
            input = &input[(self.inner.total_in() - before_in) as usize..];
            let full = produced == room;
            if !full && (input.is_empty() || !matches!(status, Ok(Status::Ok))) {
                break;
            }
        }
        if end {
            if out[start..].ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else if out.len() == start {
                // Nothing was pending since the last flush: the stream is byte
                // aligned, and the receiver's tail must complete a block header.
                // An empty stored block's first byte does that.
                out.push(0x00);
            }
            if self.no_context_takeover {
                self.inner.reset();
            }
        }
    }
}

impl Compressor {
    /// Starts afresh for the next message, with `dictionary` (the last bytes
    /// this direction sent, at most a window) as its context: a compressor
    /// shared between connections takes over each one's context this way.
    /// The stream goes on for the peer: the last message ended byte-aligned
    /// (RFC 7692 §7.2.1), and a back-reference into `dictionary` is one into
    /// the peer's window.
    pub(crate) fn restart(&mut self, dictionary: &[u8]) {
        self.inner.reset();
        if !dictionary.is_empty() {
            // Raw DEFLATE takes a dictionary right after a reset; nothing else can fail.
            let _ = self.inner.set_dictionary(dictionary);
        }
    }
}

impl core::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Compressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

/// Compressed data that does not inflate (RFC 7692 §7.2.2): the connection
/// fails with 1007, as the data is inconsistent with the message's type
/// (RFC 6455 §7.4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid compressed data: {0}")]
pub struct InflateError(pub String);

/// The outcome of one [`Decompressor::decompress`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inflated {
    /// Input bytes used; the rest must be passed again.
    pub consumed: usize,
    /// Everything given was inflated (and, at the end of a message, the tail
    /// too). `false`: the output limit was reached first.
    pub done: bool,
}

/// Inflates messages for one direction of a connection (RFC 7692 §7.2.2),
/// incrementally, with the output bounded on every call.
pub struct Decompressor {
    inner: Inflate,
    no_context_takeover: bool,
    /// Bytes of [`TAIL`] fed for the message in progress.
    tail: usize,
    /// The peer ended its DEFLATE stream with a final block (§7.2.3.4).
    ended: bool,
    /// The last message ended the stream so: its context is gone.
    last_ended: bool,
}

impl Decompressor {
    /// A decompressor for a peer compressing with `window_bits` (8–15);
    /// `no_context_takeover`: the peer resets after every message.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Self {
            inner: Inflate::new(false, zlib_window(window_bits)),
            no_context_takeover,
            tail: 0,
            ended: false,
            last_ended: false,
        }
    }

    /// Inflates `input`, the next compressed bytes of a message, appending at
    /// most `max_out` bytes to `out` (which grows geometrically, never past
    /// that, whatever capacity it had). `end_of_message`: `input` ends the message, so the stripped
    /// tail is inflated after it.
    ///
    /// When the result is not [`done`](Inflated::done), call again with the
    /// unconsumed input once there is room: the output limit stopped it.
    pub fn decompress(
        &mut self,
        input: &[u8],
        end_of_message: bool,
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<Inflated, InflateError> {
        let start = out.len();
        let mut consumed = 0;
        loop {
            let from_input = consumed < input.len();
            let feeding_tail = !from_input && end_of_message && !self.ended && self.tail < 4;
            let src = match (from_input, feeding_tail) {
                (true, _) => &input[consumed..],
                (false, true) => &TAIL[self.tail..],
                (false, false) => &[][..],
            };
            if from_input && self.ended {
                return Err(InflateError(String::from("data after the final block")));
            }
            let room = max_out - (out.len() - start);
            if room == 0 {
                return Ok(Inflated {
                    consumed,
                    done: false,
                });
            }
            // Inflate into a slice of exactly the room granted (growing
            // geometrically up to it), never into whatever capacity `out` had:
            // the bound holds however large the buffer was before. The
            // slice is zeroed first, so it starts near what the input may
            // give (four times it, 512 B to 4 KiB), not at the buffer's spare
            // capacity: a 20-byte message zeroes 512 bytes, not kilobytes
            // (not less: see `FAST_ROOM`).
            let len = out.len();
            let guess = src.len().saturating_mul(4).clamp(FAST_ROOM, 4096);
            let chunk = room.min((len - start).max(guess));
            if out.capacity() - len < chunk {
                out.reserve_exact(chunk);
            }
            out.resize(len + chunk, 0);
            let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress(src, &mut out[len..], InflateFlush::SyncFlush);
            let used = (self.inner.total_in() - before_in) as usize;
            let produced = (self.inner.total_out() - before_out) as usize;
            out.truncate(len + produced);
            let status = status.map_err(|e| {
                let message = self.inner.error_message().unwrap_or(e.as_str());
                InflateError(String::from(message))
            })?;
            if from_input {
                consumed += used;
            } else if feeding_tail {
                self.tail += used;
            }
            if status == Status::StreamEnd {
                self.ended = true;
            }
            let full = produced == chunk;
            let more_input =
                consumed < input.len() || (end_of_message && !self.ended && self.tail < 4);
            if !full && !more_input {
                break;
            }
            if !full && used == 0 && produced == 0 {
                return Err(InflateError(String::from("the DEFLATE stream stalled")));
            }
        }
        if end_of_message {
            self.tail = 0;
            // A stream ended by a final block cannot go on: the next message starts afresh.
            self.last_ended = core::mem::take(&mut self.ended);
            if self.no_context_takeover || self.last_ended {
                self.inner.reset(false);
            }
        }
        Ok(Inflated {
            consumed,
            done: true,
        })
    }
}

impl Decompressor {
    /// Starts afresh for the next message, with `dictionary` (the last bytes
    /// the peer sent, at most its window) as its context: a decompressor
    /// shared between connections takes over each one's context this way.
    pub(crate) fn restart(&mut self, dictionary: &[u8]) {
        self.inner.reset(false);
        self.tail = 0;
        self.ended = false;
        self.last_ended = false;
        if !dictionary.is_empty() {
            // Raw inflate takes a dictionary at any time; nothing else can fail.
            let _ = self.inner.set_dictionary(dictionary);
        }
    }

    /// The message last ended ended the peer's DEFLATE stream with a final
    /// block (§7.2.3.4): the next message starts without context.
    pub(crate) fn stream_ended(&self) -> bool {
        self.last_ended
    }
}

impl core::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn corpus(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b"abcd{}\":, "[(x >> 16) as usize % 10]
            })
            .collect()
    }

    fn roundtrip(bits: u8, takeover: bool, messages: &[Vec<u8>]) {
        let mut c = Compressor::new(6, bits, !takeover);
        let mut d = Decompressor::new(bits, !takeover);
        for m in messages {
            let mut wire = Vec::new();
            c.compress(m, true, &mut wire);
            let mut out = Vec::new();
            let r = d.decompress(&wire, true, &mut out, usize::MAX).unwrap();
            assert_eq!((r.consumed, r.done), (wire.len(), true));
            assert_eq!(&out, m);
        }
    }

    #[test]
    fn every_window_with_and_without_takeover() {
        let messages = vec![
            corpus(3000, 1),
            vec![],
            corpus(70_000, 2),
            corpus(10, 3),
            vec![],
        ];
        for bits in 8..=15 {
            roundtrip(bits, true, &messages);
            roundtrip(bits, false, &messages);
        }
    }

    /// A reference inflater (after zlib's `puff.c`) that records every
    /// back-reference: zlib-rs and flate2 cannot inflate with a true 256-byte
    /// window (zlib-rs allocates 32 KiB whatever the bits), so the window-8
    /// promise is checked on the distances themselves.
    mod puff {
        use alloc::vec::Vec;

        struct Bits<'a> {
            data: &'a [u8],
            pos: usize,
            buf: u32,
            cnt: u32,
        }

        impl Bits<'_> {
            fn need(&mut self, n: u32) -> Option<u32> {
                while self.cnt < n {
                    self.buf |= u32::from(*self.data.get(self.pos)?) << self.cnt;
                    self.pos += 1;
                    self.cnt += 8;
                }
                let v = self.buf & ((1 << n) - 1);
                self.buf >>= n;
                self.cnt -= n;
                Some(v)
            }
        }

        struct Huffman {
            count: [u16; 16],
            symbol: Vec<u16>,
        }

        fn huffman(lengths: &[u8]) -> Huffman {
            let mut count = [0u16; 16];
            for &l in lengths {
                count[l as usize] += 1;
            }
            let mut offs = [0u16; 16];
            for len in 1..15 {
                offs[len + 1] = offs[len] + count[len];
            }
            let mut symbol = vec![0; lengths.len()];
            for (sym, &l) in lengths.iter().enumerate() {
                if l != 0 {
                    symbol[offs[l as usize] as usize] = sym as u16;
                    offs[l as usize] += 1;
                }
            }
            Huffman { count, symbol }
        }

        fn decode(bits: &mut Bits<'_>, h: &Huffman) -> Option<u16> {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= bits.need(1)? as i32;
                let count = i32::from(h.count[len]);
                if code - first < count {
                    return Some(h.symbol[(index + code - first) as usize]);
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            None
        }

        const LBASE: [u16; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
            115, 131, 163, 195, 227, 258,
        ];
        const LEXT: [u8; 29] = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ];
        const DBASE: [u16; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
            1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ];
        const DEXT: [u8; 30] = [
            0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
            12, 13, 13,
        ];

        /// Inflates `data` (blocks until the input ends) refusing any distance
        /// over `max_distance`.
        pub fn inflate(data: &[u8], max_distance: usize) -> Option<Vec<u8>> {
            let mut bits = Bits {
                data,
                pos: 0,
                buf: 0,
                cnt: 0,
            };
            let mut out = Vec::new();
            while let Some(last) = bits.need(1) {
                match bits.need(2)? {
                    0 => {
                        bits.buf = 0;
                        bits.cnt = 0;
                        let header = data.get(bits.pos..bits.pos + 4)?;
                        let len = usize::from(u16::from_le_bytes([header[0], header[1]]));
                        bits.pos += 4;
                        out.extend_from_slice(data.get(bits.pos..bits.pos + len)?);
                        bits.pos += len;
                    }
                    kind @ (1 | 2) => {
                        let (lit, dist) = if kind == 1 {
                            let mut l = [8u8; 288];
                            l[144..256].fill(9);
                            l[256..280].fill(7);
                            (huffman(&l), huffman(&[5; 30]))
                        } else {
                            let nlen = bits.need(5)? as usize + 257;
                            let ndist = bits.need(5)? as usize + 1;
                            let ncode = bits.need(4)? as usize + 4;
                            const ORDER: [usize; 19] = [
                                16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
                            ];
                            let mut cl = [0u8; 19];
                            for &i in &ORDER[..ncode] {
                                cl[i] = bits.need(3)? as u8;
                            }
                            let lencode = huffman(&cl);
                            let mut lengths = Vec::new();
                            while lengths.len() < nlen + ndist {
                                let (value, repeat) = match decode(&mut bits, &lencode)? {
                                    s @ 0..=15 => (s as u8, 1),
                                    16 => (*lengths.last()?, 3 + bits.need(2)?),
                                    17 => (0, 3 + bits.need(3)?),
                                    _ => (0, 11 + bits.need(7)?),
                                };
                                lengths.extend((0..repeat).map(|_| value));
                            }
                            (huffman(&lengths[..nlen]), huffman(&lengths[nlen..]))
                        };
                        loop {
                            let sym = decode(&mut bits, &lit)? as usize;
                            if sym < 256 {
                                out.push(sym as u8);
                                continue;
                            }
                            if sym == 256 {
                                break;
                            }
                            let s = sym - 257;
                            let len =
                                usize::from(LBASE[s]) + bits.need(u32::from(LEXT[s]))? as usize;
                            let d = decode(&mut bits, &dist)? as usize;
                            let distance =
                                usize::from(DBASE[d]) + bits.need(u32::from(DEXT[d]))? as usize;
                            if distance > max_distance || distance > out.len() {
                                return None;
                            }
                            for _ in 0..len {
                                out.push(out[out.len() - distance]);
                            }
                        }
                    }
                    _ => return None,
                }
                if last == 1 {
                    break;
                }
            }
            Some(out)
        }
    }

    fn inflate_with_8_bits(wire: &[u8]) -> Option<Vec<u8>> {
        puff::inflate(wire, 256)
    }

    #[test]
    fn window_8_output_inflates_with_a_256_byte_window() {
        let data = corpus(20_000, 7);
        for level in [1, 6, 9] {
            let mut wire = Vec::new();
            Compressor::new(level, 8, false).compress(&data, true, &mut wire);
            wire.extend_from_slice(&TAIL);
            let inflated = inflate_with_8_bits(&wire);
            assert!(inflated.as_deref() == Some(&data[..]), "level {level}");
        }
        // The check has teeth: a block repeated 1000 bytes later is matched by a
        // 15-bit window, and that distance does not inflate in 256 bytes.
        let mut x = 99u32;
        let block: Vec<u8> = (0..1000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let repeated = [&block[..], &block[..]].concat();
        let mut wire = Vec::new();
        Compressor::new(9, 15, false).compress(&repeated, true, &mut wire);
        assert!(wire.len() < 1500, "{}", wire.len());
        wire.extend_from_slice(&TAIL);
        assert!(inflate_with_8_bits(&wire).as_deref() != Some(&repeated[..]));
        // ... while the 8-bit compressor, unable to reach it, stays correct.
        let mut wire = Vec::new();
        Compressor::new(9, 8, false).compress(&repeated, true, &mut wire);
        wire.extend_from_slice(&TAIL);
        assert!(inflate_with_8_bits(&wire).as_deref() == Some(&repeated[..]));
    }

    #[test]
    fn output_is_bounded_and_resumable() {
        let data = vec![b'x'; 1 << 20];
        let mut wire = Vec::new();
        Compressor::new(9, 15, false).compress(&data, true, &mut wire);
        assert!(wire.len() < 2048, "{}", wire.len());
        let mut d = Decompressor::new(15, false);
        let (mut out, mut rest, mut rounds) = (Vec::new(), &wire[..], 0);
        loop {
            let mut piece = Vec::new();
            let r = d.decompress(rest, true, &mut piece, 10_000).unwrap();
            assert!(piece.len() <= 10_000 && piece.capacity() <= 10_000);
            out.extend_from_slice(&piece);
            rest = &rest[r.consumed..];
            rounds += 1;
            if r.done {
                break;
            }
        }
        assert_eq!(out.len(), data.len());
        assert!(out == data);
        assert!(rounds >= 105, "{rounds}");
    }

    #[test]
    fn fragments_flush_and_empty_ends_stay_valid() {
        // A message in three fragments, the last one empty, then an empty message.
        let mut c = Compressor::new(6, 15, false);
        let mut d = Decompressor::new(15, false);
        let mut out = Vec::new();
        for (data, end) in [(&b"hello "[..], false), (b"world", false), (b"", true)] {
            let mut wire = Vec::new();
            c.compress(data, end, &mut wire);
            assert!(!wire.is_empty());
            d.decompress(&wire, end, &mut out, usize::MAX).unwrap();
        }
        assert_eq!(out, b"hello world");
        let mut wire = Vec::new();
        c.compress(b"", true, &mut wire);
        let mut empty = Vec::new();
        d.decompress(&wire, true, &mut empty, usize::MAX).unwrap();
        assert!(empty.is_empty());
        let mut wire = Vec::new();
        c.compress(b"hello world", true, &mut wire);
        let mut again = Vec::new();
        d.decompress(&wire, true, &mut again, usize::MAX).unwrap();
        assert_eq!(again, b"hello world");
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut d = Decompressor::new(15, false);
        let mut out = Vec::new();
        // BTYPE 11 is reserved.
        let err = d
            .decompress(&[0xff, 0xff, 0xff], true, &mut out, 1 << 20)
            .unwrap_err();
        assert!(!err.0.is_empty());
    }
}
