//! The `frame_decoder` harness: a [`FrameDecoder`] driven over a byte stream
//! fed in chunks, with every step checked against the frame rules, against a
//! plain re-parse of the original bytes, and against [`Frame::decode`].
//!
//! Input layout (missing bytes read as 0):
//!
//! | bytes        | meaning                                                         |
//! |--------------|-----------------------------------------------------------------|
//! | `[0]`        | bit 0: role (0 server, 1 client); bits 4–6: allowed RSV bits     |
//! | `[1]`        | low 3 bits: index into [`MAX_FRAME_SIZES`]                      |
//! | `[2]`        | low 4 bits: `n`, the number of chunk-size bytes that follow     |
//! | `[3..3+n]`   | chunk sizes, used in turn and cycled; 0 means "all the rest"    |
//! | rest         | the wire bytes                                                  |

use wsmachine::ProtocolError;
use wsmachine::frame::{
    Decoded, DecoderConfig, Frame, FrameDecoder, FrameHeader, MAX_HEADER_LEN, Role, Status,
    encode_frame,
};

/// The limits a run can pick, around the edges of the length encodings.
pub const MAX_FRAME_SIZES: [u64; 8] = [0, 1, 125, 126, 0xFFFF, 0x1_0000, 1 << 20, u64::MAX];

/// A decoded harness input.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The decoder's rules.
    pub config: DecoderConfig,
    /// Chunk sizes, cycled (empty: the whole stream at once).
    pub chunks: &'a [u8],
    /// The wire bytes.
    pub stream: &'a [u8],
}

/// Splits fuzzer bytes into an [`Input`].
pub fn parse(data: &[u8]) -> Input<'_> {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let role = if byte(0) & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let config = DecoderConfig {
        role,
        max_frame_size: MAX_FRAME_SIZES[usize::from(byte(1) & 7)],
        allowed_rsv: byte(0) & 0x70,
    };
    let n = usize::from(byte(2) & 0x0F);
    let start = 3.min(data.len());
    let split = (3 + n).min(data.len());
    Input {
        config,
        chunks: &data[start..split],
        stream: &data[split..],
    }
}

/// Builds a harness input (the inverse of [`parse`]), for seed corpora.
pub fn build(role: Role, allowed_rsv: u8, max_idx: u8, chunks: &[u8], stream: &[u8]) -> Vec<u8> {
    assert!(chunks.len() <= 15 && max_idx < 8);
    let mut out = vec![
        u8::from(role == Role::Client) | (allowed_rsv & 0x70),
        max_idx,
        chunks.len() as u8,
    ];
    out.extend_from_slice(chunks);
    out.extend_from_slice(stream);
    out
}

/// The frame being read.
struct Current {
    header: FrameHeader,
    /// Where its header starts in the stream.
    start: usize,
    header_len: usize,
    /// Payload bytes decoded so far.
    got: u64,
}

/// How the first frame of the stream ended up in the incremental decoder.
#[derive(Debug)]
enum First {
    /// Not complete when the input ran out.
    Incomplete,
    /// Complete: its header, its total length on the wire and its unmasked payload.
    Complete(FrameHeader, usize, Vec<u8>),
    /// Its header was refused.
    Refused(ProtocolError),
}

/// Runs one input. Panics if an invariant breaks.
pub fn run(data: &[u8]) {
    let input = parse(data);
    let original = input.stream;
    let cfg = input.config;
    let mut wire = original.to_vec();
    let mut decoder = FrameDecoder::new(cfg);
    assert_eq!(decoder.config(), &cfg);
    assert_eq!(decoder.remaining(), 0);

    let (mut pos, mut fed, mut next_chunk) = (0usize, 0usize, 0usize);
    let mut current: Option<Current> = None;
    let mut first = First::Incomplete;
    // Every step but a Partial consumes a byte or more, and a Partial either
    // feeds a byte or more or ends the run.
    let max_steps = 2 * original.len() + 2;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= max_steps, "decoder makes no progress");
        let avail = fed - pos;
        match decoder.decode(&mut wire[pos..fed]) {
            Ok(Decoded::Partial { needed }) => {
                assert!(needed > 0, "Partial with needed == 0");
                match &current {
                    None => {
                        // Only an incomplete header can be missing: at most 14 bytes in all,
                        // and the stand-alone header parser agrees on how many.
                        assert!(
                            avail < MAX_HEADER_LEN,
                            "Partial with {avail} bytes of header"
                        );
                        assert!(avail + needed <= MAX_HEADER_LEN);
                        assert_eq!(
                            FrameHeader::decode(&original[pos..fed]),
                            Ok(Status::Partial { needed })
                        );
                    }
                    Some(_) => {
                        assert_eq!(avail, 0, "payload available but Partial returned");
                        assert_eq!(needed, 1);
                    }
                }
                if fed == wire.len() {
                    break;
                }
                let size = match input.chunks {
                    [] => wire.len(),
                    sizes => match sizes[next_chunk % sizes.len()] {
                        0 => wire.len(),
                        n => usize::from(n),
                    },
                };
                next_chunk += 1;
                fed = fed.saturating_add(size).min(wire.len());
            }
            Ok(Decoded::Header { header, len }) => {
                assert!(current.is_none(), "a header in the middle of a payload");
                assert!((2..=MAX_HEADER_LEN).contains(&len) && len <= avail);
                assert_eq!(
                    FrameHeader::decode(&original[pos..fed]),
                    Ok(Status::Complete((header, len)))
                );
                assert_eq!(
                    wire[pos..pos + len],
                    original[pos..pos + len],
                    "header bytes changed"
                );
                // Every per-frame rule of RFC 6455 §5 holds for an accepted header.
                match cfg.role {
                    Role::Server => assert!(header.mask.is_some(), "unmasked frame accepted"),
                    Role::Client => assert!(header.mask.is_none(), "masked frame accepted"),
                }
                assert_eq!(header.rsv_bits() & !cfg.allowed_rsv, 0, "stray RSV bits");
                assert!(!header.opcode.is_reserved(), "reserved opcode accepted");
                if header.opcode.is_control() {
                    assert!(header.payload_len <= 125 && header.fin, "bad control frame");
                }
                assert!(
                    header.payload_len <= cfg.max_frame_size,
                    "over max_frame_size"
                );
                assert_eq!(decoder.remaining(), header.payload_len);
                let frame = Current {
                    header,
                    start: pos,
                    header_len: len,
                    got: 0,
                };
                pos += len;
                if header.payload_len == 0 {
                    complete(&frame, original, &wire, &mut first);
                } else {
                    current = Some(frame);
                }
            }
            Ok(Decoded::Payload { len, frame_end }) => {
                let frame = current.as_mut().expect("payload before any header");
                assert!(
                    len >= 1 && len <= avail,
                    "payload step of {len} with {avail} bytes"
                );
                let payload_len = frame.header.payload_len;
                // Each byte is unmasked with the key octet of its payload position.
                let offset = frame.got as usize;
                for i in 0..len {
                    let key = frame.header.mask.map_or(0, |k| k[(offset + i) % 4]);
                    assert_eq!(wire[pos + i], original[pos + i] ^ key, "unmasked wrongly");
                }
                frame.got += len as u64;
                assert!(frame.got <= payload_len, "payload past the frame's end");
                assert_eq!(frame_end, frame.got == payload_len, "frame_end wrong");
                assert_eq!(decoder.remaining(), payload_len - frame.got);
                pos += len;
                if frame_end {
                    let frame = current.take().unwrap();
                    complete(&frame, original, &wire, &mut first);
                }
            }
            Err(error) => {
                // Errors come from headers only, so never in the middle of a payload.
                assert!(current.is_none(), "error inside a payload: {error:?}");
                if pos == 0 {
                    first = First::Refused(error);
                }
                break;
            }
        }
    }
    check_whole_frame_decode(original, &first);
}

/// A frame finished: check it re-encodes to itself.
fn complete(frame: &Current, original: &[u8], wire: &[u8], first: &mut First) {
    let payload_start = frame.start + frame.header_len;
    let end = payload_start + frame.header.payload_len as usize;
    let payload = &wire[payload_start..end];
    if frame.start == 0 {
        *first = First::Complete(frame.header, end, payload.to_vec());
    }
    let mut out = Vec::new();
    encode_frame(&mut out, &frame.header, payload);
    // With a minimal length encoding the encoder gives back the original bytes.
    if frame.header_len == frame.header.encoded_len() {
        assert_eq!(out, original[frame.start..end], "re-encoding differs");
    }
    let Ok(Status::Complete((decoded, used))) = Frame::decode(&mut out) else {
        panic!("an encoded frame does not decode");
    };
    assert_eq!(
        used,
        end - frame.start - frame.header_len + frame.header.encoded_len()
    );
    assert_eq!(decoded.header, frame.header);
    assert_eq!(decoded.payload, payload);
}

/// [`Frame::decode`] on the whole stream agrees with the incremental decoder on the first frame.
fn check_whole_frame_decode(original: &[u8], first: &First) {
    let mut copy = original.to_vec();
    match (Frame::decode(&mut copy), first) {
        (Ok(Status::Complete((frame, used))), First::Complete(header, end, payload)) => {
            assert_eq!((&frame.header, used), (header, *end));
            // Both unmasked the same bytes the same way.
            assert_eq!(frame.payload, &payload[..]);
        }
        // Frame::decode checks structure only; the decoder may refuse the header on a rule.
        (Ok(Status::Complete(_)), First::Refused(e)) => {
            assert_ne!(*e, ProtocolError::InvalidPayloadLength);
        }
        (Ok(Status::Complete(_)), First::Incomplete) => {
            panic!("Frame::decode found a whole first frame that the decoder did not");
        }
        (Ok(Status::Partial { needed }), first) => {
            assert!(needed > 0);
            assert!(
                !matches!(first, First::Complete(..)),
                "the decoder completed a frame that Frame::decode calls partial"
            );
            // Only the payload can be missing once the header is whole.
            if let Ok(Status::Complete((header, len))) = FrameHeader::decode(original) {
                let have = (original.len() - len) as u64;
                assert_eq!(needed as u64, header.payload_len - have);
            }
        }
        (Err(e), first) => {
            assert_eq!(e, ProtocolError::InvalidPayloadLength);
            assert!(
                matches!(first, First::Refused(f) if *f == e),
                "Frame::decode refused what the decoder did not: {first:?}"
            );
        }
    }
}
