//! [proptest](https://docs.rs/proptest) strategies for frames, messages,
//! fragmentations, close frames and read splits (feature `proptest`), so that
//! users can property-test their own handlers and adapters with this crate's
//! types.
//!
//! Every strategy generates values that a conforming peer may send: valid
//! opcodes, sendable close codes, UTF-8 text (multilingual: ASCII, two-,
//! three- and four-byte code points), control payloads within 125 bytes,
//! masked frames from a client and unmasked ones from a server. Sizes are
//! bounded by the arguments, and values shrink towards short and simple.
//!
//! ```
//! use proptest::prelude::*;
//! use wsmachine::strategy;
//! use wsmachine::{Config, Connection, OwnedEvent, SeededEntropy};
//!
//! proptest!(|(fragmented in strategy::fragmented(1024, 8), cuts in strategy::reads(4096, 16))| {
//!     // Whatever the fragmentation and however the bytes are split into
//!     // reads, the server hands out the message the client sent.
//!     let mut client = Connection::open_client(Config::default(), SeededEntropy::new(7));
//!     let mut server = Connection::open_server(Config::default());
//!     fragmented.send(&mut client).unwrap();
//!     let mut wire = Vec::new();
//!     client.drain_transmit(&mut wire);
//!     let mut events = Vec::new();
//!     let mut at = 0;
//!     for cut in cuts.into_iter().filter(|&c| c < wire.len()).chain([wire.len()]) {
//!         server.handle_read(&wire[at..cut]);
//!         at = cut;
//!         while let Some(event) = server.poll_event() {
//!             events.push(event.into_owned());
//!         }
//!     }
//!     prop_assert_eq!(events, vec![OwnedEvent::from(fragmented.message().clone())]);
//! });
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::frame::{FrameHeader, OpCode, OwnedFrame, Role};
use crate::message::{Fragmented, Message};
use crate::{CloseCode, CloseFrame, MAX_REASON_LEN, MessageKind};

/// One of the six opcodes RFC 6455 defines.
pub fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::CONTINUATION),
        Just(OpCode::TEXT),
        Just(OpCode::BINARY),
        Just(OpCode::CLOSE),
        Just(OpCode::PING),
        Just(OpCode::PONG),
    ]
}

/// A close code that may be sent on the wire
/// ([`CloseCode::is_sendable`]): the defined ones, registered ones and
/// application codes 3000–4999.
pub fn close_code() -> impl Strategy<Value = CloseCode> {
    prop_oneof![
        (1000u16..=1003).prop_map(CloseCode),
        (1007u16..=1014).prop_map(CloseCode),
        (3000u16..=4999).prop_map(CloseCode),
    ]
}

/// A close frame: a sendable code and a UTF-8 reason of at most 123 bytes.
pub fn close_frame() -> impl Strategy<Value = CloseFrame> {
    (close_code(), text(MAX_REASON_LEN)).prop_map(|(code, reason)| {
        CloseFrame::new(code, &reason).expect("a sendable code and a short reason")
    })
}

/// A character: mostly ASCII, often two-, three- or four-byte code points.
fn character() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => proptest::char::range('\u{80}', '\u{7ff}'),
        1 => proptest::char::range('\u{800}', '\u{ffff}'),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
    ]
}

/// UTF-8 text of at most `max_len` bytes.
pub fn text(max_len: usize) -> impl Strategy<Value = String> {
    vec(character(), 0..=max_len).prop_map(move |chars| {
        let mut text = String::new();
        for c in chars {
            if text.len() + c.len_utf8() > max_len {
                break;
            }
            text.push(c);
        }
        text
    })
}

/// A text or binary message of at most `max_len` bytes.
pub fn message(max_len: usize) -> impl Strategy<Value = Message> {
    prop_oneof![
        text(max_len).prop_map(Message::text),
        vec(any::<u8>(), 0..=max_len).prop_map(Message::binary),
    ]
}

/// A message of at most `max_len` bytes cut into 1 to `max_pieces` fragments
/// (at least 1), anywhere, including inside a code point and into empty
/// pieces.
pub fn fragmented(max_len: usize, max_pieces: usize) -> impl Strategy<Value = Fragmented> {
    let max_cuts = max_pieces.max(1) - 1;
    message(max_len).prop_flat_map(move |message| {
        let len = message.data().len();
        vec(0..=len, 0..=max_cuts).prop_map(move |mut cuts| {
            cuts.sort_unstable();
            let mut sizes = Vec::with_capacity(cuts.len() + 1);
            let mut at = 0;
            for cut in cuts.into_iter().chain([len]) {
                sizes.push(cut - at);
                at = cut;
            }
            Fragmented::new(message.clone(), sizes).expect("sizes add up")
        })
    })
}

/// A frame that an endpoint of `role` may send, on its own: a data frame
/// (text, binary or continuation, final or not; a final text frame carries
/// UTF-8) of at most `max_payload` bytes, or a control frame (final, at most
/// 125 bytes; a close frame empty or a valid code and reason). Masked with
/// a random key from a client, unmasked from a server; no RSV bit.
pub fn frame(role: Role, max_payload: usize) -> impl Strategy<Value = OwnedFrame> {
    let mask = match role {
        Role::Client => any::<[u8; 4]>().prop_map(Some).boxed(),
        Role::Server => Just(None).boxed(),
    };
    let data = (
        prop_oneof![
            Just(OpCode::TEXT),
            Just(OpCode::BINARY),
            Just(OpCode::CONTINUATION)
        ],
        any::<bool>(),
    )
        .prop_flat_map(move |(opcode, fin)| {
            let payload = if opcode == OpCode::TEXT && fin {
                text(max_payload).prop_map(String::into_bytes).boxed()
            } else {
                vec(any::<u8>(), 0..=max_payload).boxed()
            };
            (Just(opcode), Just(fin), payload)
        });
    let close = prop_oneof![
        Just(Vec::new()),
        close_frame().prop_map(|frame| {
            let mut payload = [0; 125];
            let n = frame.payload(&mut payload);
            payload[..n].to_vec()
        }),
    ];
    let control = prop_oneof![
        close.prop_map(|payload| (OpCode::CLOSE, true, payload)),
        vec(any::<u8>(), 0..=125).prop_map(|payload| (OpCode::PING, true, payload)),
        vec(any::<u8>(), 0..=125).prop_map(|payload| (OpCode::PONG, true, payload)),
    ];
    (prop_oneof![3 => data, 1 => control], mask).prop_map(|((opcode, fin, payload), mask)| {
        OwnedFrame::new(FrameHeader::new(opcode, fin, mask), payload)
    })
}

/// How to split a stream of `len` bytes into reads: up to `max_cuts` sorted,
/// distinct offsets in `1..len` (an empty list: one read).
pub fn reads(len: usize, max_cuts: usize) -> impl Strategy<Value = Vec<usize>> {
    let cut = if len > 1 {
        (1..len).boxed()
    } else {
        Just(1).boxed()
    };
    vec(cut, 0..=max_cuts).prop_map(move |mut cuts| {
        cuts.retain(|&c| c < len);
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    })
}

/// Text or binary.
pub fn message_kind() -> impl Strategy<Value = MessageKind> {
    prop_oneof![Just(MessageKind::Text), Just(MessageKind::Binary)]
}
