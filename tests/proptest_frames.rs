//! Property tests of the frame codec (RFC 6455 §5.2): any frame encodes and
//! decodes to itself; any strict prefix asks for more bytes without ever
//! asking for too many; the incremental decoder agrees under any split.

use proptest::prelude::*;
use wsmachine::frame::{
    Decoded, DecoderConfig, Frame, FrameDecoder, FrameHeader, OpCode, Role, Status,
};

/// Payload lengths, weighted towards the boundaries of the length encodings.
fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => Just(0usize),
        2 => Just(125usize),
        2 => Just(126usize),
        2 => Just(65_535usize),
        2 => Just(65_536usize),
        4 => 0usize..=130,
        2 => 65_530usize..=65_541,
        2 => 0usize..=70_000,
    ]
}

/// Deterministic filler bytes (SplitMix64), cheaper than a strategy per byte.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    wsmachine::Entropy::fill(&mut wsmachine::SeededEntropy::new(seed), &mut out);
    out
}

fn header() -> impl Strategy<Value = FrameHeader> {
    (
        any::<bool>(),
        0u8..8,
        0u8..=15,
        proptest::option::of(any::<[u8; 4]>()),
    )
        .prop_map(|(fin, rsv, opcode, mask)| {
            let mut h = FrameHeader::new(OpCode::new(opcode), fin, mask);
            h.rsv1 = rsv & 4 != 0;
            h.rsv2 = rsv & 2 != 0;
            h.rsv3 = rsv & 1 != 0;
            h
        })
}

/// The header length the minimal encoding must use.
fn expected_header_len(len: usize, masked: bool) -> usize {
    let ext = match len {
        0..=125 => 0,
        126..=65_535 => 2,
        _ => 8,
    };
    2 + ext + if masked { 4 } else { 0 }
}

fn decode_copy(wire: &[u8]) -> Status<(FrameHeader, Vec<u8>, usize)> {
    let mut buf = wire.to_vec();
    match Frame::decode(&mut buf).expect("a valid encoding decodes") {
        Status::Complete((frame, used)) => {
            Status::Complete((frame.header, frame.payload.to_vec(), used))
        }
        Status::Partial { needed } => Status::Partial { needed },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_frame_encodes_and_decodes_to_itself(
        header in header(),
        len in payload_len(),
        seed in any::<u64>(),
        trailing in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let payload = bytes(len, seed);
        let mut wire = Vec::new();
        Frame { header, payload: &payload }.encode(&mut wire);

        let header_len = expected_header_len(len, header.mask.is_some());
        prop_assert_eq!(wire.len(), header_len + len);
        let mut expected = header;
        expected.payload_len = len as u64;
        prop_assert_eq!(expected.encoded_len(), header_len);
        // The first two bytes, as §5.2 lays them out.
        let b0 = (header.fin as u8) << 7 | header.rsv_bits() | header.opcode.bits();
        prop_assert_eq!(wire[0], b0);
        prop_assert_eq!(wire[1] & 0x80 != 0, header.mask.is_some());
        // The payload on the wire is masked per §5.3.
        let on_wire = &wire[header_len..];
        match header.mask {
            None => prop_assert!(on_wire == &payload[..]),
            Some(key) => prop_assert!(
                on_wire.iter().zip(&payload).enumerate().all(|(i, (w, p))| *w == p ^ key[i % 4])
            ),
        }

        let Status::Complete((h, p, used)) = decode_copy(&wire) else {
            return Err(TestCaseError::fail("a whole frame decodes"));
        };
        prop_assert_eq!(h, expected);
        prop_assert!(p == payload);
        prop_assert_eq!(used, wire.len());

        // Bytes after the frame are not taken.
        let mut longer = wire.clone();
        longer.extend_from_slice(&trailing);
        let Status::Complete((h, p, used)) = decode_copy(&longer) else {
            return Err(TestCaseError::fail("a whole frame decodes"));
        };
        prop_assert_eq!(h, expected);
        prop_assert!(p == payload);
        prop_assert_eq!(used, wire.len());

        // The header alone decodes to the same header.
        let Status::Complete((h, n)) = FrameHeader::decode(&wire).unwrap() else {
            return Err(TestCaseError::fail("header decodes"));
        };
        prop_assert_eq!((h, n), (expected, header_len));
    }

    #[test]
    fn strict_prefixes_are_partial_and_needed_never_overshoots(
        header in header(),
        len in payload_len(),
        seed in any::<u64>(),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
    ) {
        let payload = bytes(len, seed);
        let mut wire = Vec::new();
        Frame { header, payload: &payload }.encode(&mut wire);
        let total = wire.len();
        let header_len = expected_header_len(len, header.mask.is_some());

        // Every prefix through the header, the last one, and some at random.
        let mut prefixes: Vec<usize> = (0..total.min(header_len + 3)).collect();
        prefixes.push(total - 1);
        prefixes.extend(picks.iter().map(|i| i.index(total)));
        for start in prefixes {
            let mut p = start;
            // Following `needed` completes the frame in at most three steps:
            // two bytes, the rest of the header, the payload.
            let mut hops = 0;
            while p < total {
                let Status::Partial { needed } = decode_copy(&wire[..p]) else {
                    return Err(TestCaseError::fail(format!("prefix {p} of {total} decoded whole")));
                };
                prop_assert!(needed >= 1, "prefix {}: needed 0", p);
                prop_assert!(p + needed <= total, "prefix {} of {}: needed {} overshoots", p, total, needed);
                // Exactly what the stage needs: the fixed bytes, the header, the payload.
                let expected = if p < 2 { 2 - p } else if p < header_len { header_len - p } else { total - p };
                prop_assert_eq!(needed, expected, "prefix {} of {}", p, total);
                p += needed;
                hops += 1;
                prop_assert!(hops <= 3);
            }
            let complete = matches!(decode_copy(&wire[..p]), Status::Complete((_, _, used)) if used == total);
            prop_assert!(complete);
        }
    }
}

// ----- the incremental decoder -----

/// Frames that pass every per-frame rule, as sent by `sender`.
fn valid_frame(sender: Role) -> impl Strategy<Value = (FrameHeader, Vec<u8>)> {
    let data_len = prop_oneof![
        3 => 0usize..=130,
        1 => 120usize..=3_000,
        1 => Just(65_536usize),
    ];
    let data = (
        prop_oneof![Just(0u8), Just(1), Just(2)],
        any::<bool>(),
        data_len,
    );
    let control = (
        prop_oneof![Just(8u8), Just(9), Just(0xA)],
        Just(true),
        0usize..=125,
    );
    (prop_oneof![data, control], any::<[u8; 4]>(), any::<u64>()).prop_map(
        move |((opcode, fin, len), key, seed)| {
            let mask = (sender == Role::Client).then_some(key);
            let mut header = FrameHeader::new(OpCode::new(opcode), fin, mask);
            header.payload_len = len as u64;
            (header, bytes(len, seed))
        },
    )
}

fn decoder_agrees(
    receiver: Role,
    frames: &[(FrameHeader, Vec<u8>)],
    cuts: &[usize],
) -> Result<(), TestCaseError> {
    let mut wire = Vec::new();
    for (header, payload) in frames {
        Frame {
            header: *header,
            payload,
        }
        .encode(&mut wire);
    }
    let total = wire.len();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (total + 1)).collect();
    cuts.push(total);
    cuts.sort_unstable();

    let mut decoder = FrameDecoder::new(DecoderConfig {
        role: receiver,
        max_frame_size: u64::MAX,
        allowed_rsv: 0,
    });
    let mut got: Vec<(FrameHeader, Vec<u8>)> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    for cut in cuts {
        buf.extend_from_slice(&wire[fed..cut]);
        fed = cut;
        let mut pos = 0;
        loop {
            match decoder
                .decode(&mut buf[pos..])
                .expect("valid frames decode")
            {
                Decoded::Header { header, len } => {
                    pos += len;
                    prop_assert_eq!(decoder.remaining(), header.payload_len);
                    got.push((header, Vec::new()));
                }
                Decoded::Payload { len, frame_end } => {
                    prop_assert!(len >= 1);
                    let last = got.last_mut().expect("payload after a header");
                    last.1.extend_from_slice(&buf[pos..pos + len]);
                    pos += len;
                    prop_assert_eq!(frame_end, decoder.remaining() == 0);
                    prop_assert_eq!(frame_end, last.1.len() as u64 == last.0.payload_len);
                }
                Decoded::Partial { needed } => {
                    prop_assert!(needed >= 1);
                    // Mid-frame, the rest of the stream holds at least `needed` bytes.
                    let mid_frame = decoder.remaining() > 0 || pos < buf.len();
                    if mid_frame {
                        prop_assert!(
                            needed <= total - fed,
                            "needed {} with {} left",
                            needed,
                            total - fed
                        );
                    }
                    break;
                }
            }
        }
        buf.drain(..pos);
    }
    prop_assert!(buf.is_empty());
    prop_assert_eq!(decoder.remaining(), 0);
    prop_assert_eq!(got.len(), frames.len());
    for ((h, p), (eh, ep)) in got.iter().zip(frames) {
        prop_assert_eq!(h, eh);
        prop_assert!(p == ep, "payload differs");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn frame_decoder_reassembles_any_split_of_client_frames(
        frames in proptest::collection::vec(valid_frame(Role::Client), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        decoder_agrees(Role::Server, &frames, &cuts)?;
    }

    #[test]
    fn frame_decoder_reassembles_any_split_of_server_frames(
        frames in proptest::collection::vec(valid_frame(Role::Server), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        decoder_agrees(Role::Client, &frames, &cuts)?;
    }
}
