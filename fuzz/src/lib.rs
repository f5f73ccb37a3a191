//! Fuzz harnesses for `wsmachine`, shared by the libFuzzer targets in
//! `fuzz_targets/`, the seed generator in `examples/make_seeds.rs`, and the
//! seed replay test below (which runs on stable, without libFuzzer).

pub mod conn;
pub mod decoder;
pub mod handshake;
pub mod inflate;

use wsmachine::{Fragment, MessageKind};

/// Adds a streamed piece to the message in progress (`None` between
/// messages), checking that its `first` flag and kind follow the message's:
/// the check both connection harnesses make on every [`Fragment`].
/// The least `recv_buffer` hands out: the read size, or the retained size
/// for the first read into an empty connection; never nothing.
pub fn least_read(config: &wsmachine::Config) -> usize {
    let read = config.read_buffer_size;
    match config.retain_buffer_size {
        0 => read,
        retain => read.min(retain),
    }
    .max(1)
}

pub fn continue_streamed(
    current: &mut Option<(MessageKind, Vec<u8>)>,
    piece: &Fragment<'_>,
) -> (MessageKind, Vec<u8>) {
    let (kind, mut bytes) = match current.take() {
        None => {
            assert!(piece.first, "a message's first piece is not marked first");
            (piece.kind, Vec::new())
        }
        Some((kind, bytes)) => {
            assert!(!piece.first, "a piece marked first inside a message");
            assert_eq!(piece.kind, kind, "a message changed kind");
            (kind, bytes)
        }
    };
    bytes.extend_from_slice(piece.data);
    (kind, bytes)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use wsmachine::frame::Role;

    /// Runs every committed seed and every input of the committed (minimized)
    /// corpus through its harness.
    fn replay(target: &str, run: impl Fn(&[u8])) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut count = 0;
        for dir in ["seeds", "corpus"] {
            let dir = root.join(dir).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                run(&std::fs::read(&path).unwrap());
                count += 1;
            }
        }
        assert!(count > 0, "no seeds for {target}");
    }

    #[test]
    fn frame_decoder_seeds() {
        replay("frame_decoder", crate::decoder::run);
    }

    #[test]
    fn server_connection_seeds() {
        replay("server_connection", |data| {
            crate::conn::run(Role::Server, data)
        });
    }

    #[test]
    fn client_connection_seeds() {
        replay("client_connection", |data| {
            crate::conn::run(Role::Client, data)
        });
    }

    #[test]
    fn request_parser_seeds() {
        replay("request_parser", crate::handshake::run_request);
    }

    #[test]
    fn response_parser_seeds() {
        replay("response_parser", crate::handshake::run_response);
    }

    #[test]
    fn inflate_seeds() {
        replay("inflate", crate::inflate::run);
    }

    #[test]
    fn key_codec() {
        use crate::handshake::{decode_key, encode_key};
        // RFC 6455 §1.3.
        assert_eq!(encode_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            decode_key("dGhlIHNhbXBsZSBub25jZQ=="),
            Some(*b"the sample nonce")
        );
        for bad in [
            "dGhlIHNhbXBsZSBub25jZR==",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZQ=",
            " dGhlIHNhbXBsZSBub25jZQ==",
            "dGhlIHNhbXBsZSBub25jZ*==",
        ] {
            assert_eq!(decode_key(bad), None, "{bad}");
        }
        for seed in 0..64 {
            let nonce = crate::handshake::nonce(seed);
            assert_eq!(decode_key(&encode_key(nonce)), Some(nonce));
        }
    }

    #[test]
    fn short_and_empty_inputs() {
        for len in 0..12 {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            crate::decoder::run(&data);
            crate::conn::run(Role::Server, &data);
            crate::conn::run(Role::Client, &data);
            crate::handshake::run_request(&data);
            crate::handshake::run_response(&data);
            crate::inflate::run(&data);
            let mut connection = data.clone();
            if let Some(first) = connection.first_mut() {
                *first |= 1;
            }
            crate::inflate::run(&connection);
        }
    }
}
