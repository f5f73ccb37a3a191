//! The test kits users get: the `proptest` strategies and the `arbitrary`
//! implementations generate what they promise, and it round-trips through
//! the crate.
#![cfg(all(feature = "proptest", feature = "arbitrary"))]

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use wsmachine::frame::{Frame, OpCode, OwnedFrame, Role, Status};
use wsmachine::message::{Fragmented, Message};
use wsmachine::{CloseFrame, Config, Connection, MessageKind, OwnedEvent, SeededEntropy, strategy};

/// A server and a client that took a message apart and back.
fn deliver(fragmented: &Fragmented, cuts: &[usize], role: Role) -> Vec<OwnedEvent> {
    let (mut sender, mut receiver) = match role {
        Role::Client => (
            Connection::open_client(Config::default(), SeededEntropy::new(3)),
            Connection::open_server(Config::default()),
        ),
        Role::Server => (
            Connection::open_server(Config::default()),
            Connection::open_client(Config::default(), SeededEntropy::new(3)),
        ),
    };
    fragmented.send(&mut sender).unwrap();
    let mut wire = Vec::new();
    sender.drain_transmit(&mut wire);
    let mut events = Vec::new();
    let mut at = 0;
    for cut in cuts
        .iter()
        .copied()
        .filter(|&c| c < wire.len())
        .chain([wire.len()])
    {
        receiver.handle_read(&wire[at..cut]);
        at = cut;
        while let Some(event) = receiver.poll_event() {
            events.push(event.into_owned());
        }
    }
    events
}

proptest! {
    #[test]
    fn frames_are_valid_for_their_role_and_round_trip(
        (role, frame) in prop_oneof![Just(Role::Client), Just(Role::Server)]
            .prop_flat_map(|role| strategy::frame(role, 300).prop_map(move |f| (role, f))),
    ) {
        prop_assert_eq!(frame.header.mask.is_some(), role == Role::Client);
        prop_assert!(!frame.header.opcode.is_reserved());
        prop_assert_eq!(frame.header.rsv_bits(), 0);
        prop_assert_eq!(frame.header.payload_len, frame.payload.len() as u64);
        if frame.header.opcode.is_control() {
            prop_assert!(frame.header.fin && frame.payload.len() <= 125);
        }
        if frame.header.opcode == OpCode::CLOSE && !frame.payload.is_empty() {
            prop_assert!(CloseFrame::parse(&frame.payload).unwrap().is_some());
        }
        if frame.header.opcode == OpCode::TEXT && frame.header.fin {
            prop_assert!(std::str::from_utf8(&frame.payload).is_ok());
        }
        let mut wire = frame.encode_to_vec();
        let len = wire.len();
        let Status::Complete((decoded, used)) = Frame::decode(&mut wire).unwrap() else {
            panic!("a whole frame decodes");
        };
        prop_assert_eq!(used, len);
        prop_assert_eq!(decoded, frame.as_frame());
    }

    #[test]
    fn fragmented_messages_arrive_whole_however_they_are_read(
        fragmented in strategy::fragmented(2000, 10),
        cuts in strategy::reads(4000, 20),
        role in prop_oneof![Just(Role::Client), Just(Role::Server)],
    ) {
        let sizes = fragmented.sizes();
        prop_assert!(!sizes.is_empty() && sizes.len() <= 10);
        prop_assert_eq!(sizes.iter().sum::<usize>(), fragmented.message().data().len());
        let expected = OwnedEvent::from(fragmented.message().clone());
        prop_assert_eq!(deliver(&fragmented, &cuts, role), vec![expected]);
    }

    #[test]
    fn the_frames_of_a_fragmented_message_decode_to_its_pieces(fragmented in strategy::fragmented(500, 6)) {
        let frames = fragmented.frames(|| Some([1, 2, 3, 4]));
        let pieces: Vec<&[u8]> = fragmented.pieces().collect();
        prop_assert_eq!(frames.len(), pieces.len());
        for (i, (frame, piece)) in frames.iter().zip(pieces).enumerate() {
            prop_assert_eq!(&frame.payload[..], piece);
            prop_assert_eq!(frame.header.fin, i == frames.len() - 1);
            let expected = if i == 0 { fragmented.message().kind().opcode() } else { OpCode::CONTINUATION };
            prop_assert_eq!(frame.header.opcode, expected);
        }
    }

    #[test]
    fn strategy_text_and_reads_keep_their_bounds(
        text in strategy::text(50),
        cuts in strategy::reads(100, 10),
        code in strategy::close_code(),
    ) {
        prop_assert!(text.len() <= 50);
        prop_assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(cuts.iter().all(|&c| (1..100).contains(&c)));
        prop_assert!(code.is_sendable());
    }

    #[test]
    fn arbitrary_values_keep_their_promises(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut u = Unstructured::new(&bytes);
        if let Ok(fragmented) = Fragmented::arbitrary(&mut u) {
            prop_assert_eq!(fragmented.sizes().iter().sum::<usize>(), fragmented.message().data().len());
            if fragmented.message().kind() == MessageKind::Text {
                prop_assert!(fragmented.message().as_text().is_some());
            }
            let expected = OwnedEvent::from(fragmented.message().clone());
            prop_assert_eq!(deliver(&fragmented, &[], Role::Client), vec![expected]);
        }
        if let Ok(close) = CloseFrame::arbitrary(&mut u) {
            prop_assert!(close.code().is_sendable());
            let mut payload = [0; 125];
            let n = close.payload(&mut payload);
            prop_assert_eq!(CloseFrame::parse(&payload[..n]).unwrap(), Some(close));
        }
        if let Ok(frame) = OwnedFrame::arbitrary(&mut u) {
            prop_assert_eq!(frame.header.payload_len, frame.payload.len() as u64);
            let mut wire = frame.encode_to_vec();
            let Status::Complete((decoded, _)) = Frame::decode(&mut wire).unwrap() else {
                panic!("a whole frame decodes");
            };
            prop_assert_eq!(decoded, frame.as_frame());
        }
        if let Ok(message) = Message::arbitrary(&mut u) {
            prop_assert_eq!(Message::try_from(OwnedEvent::from(message.clone())), Ok(message));
        }
    }
}
