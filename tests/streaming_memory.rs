//! Streaming mode passes a message of any size through bounded memory.
use wsmachine::testing::Pair;
use wsmachine::{Config, Connection, Event, MessageKind, MessageMode};

/// Streams `total` bytes as one binary frame from a client, 64 KiB per read,
/// and returns (bytes delivered, largest piece, peak memory_usage).
fn stream_one_frame(total: u64, mode: MessageMode) -> (u64, usize, usize, bool) {
    let mut config = Config::default();
    config.mode = mode;
    config.max_frame_size = u64::MAX;
    config.max_message_size = u64::MAX;
    config.read_buffer_size = 64 * 1024;
    let mut server = Connection::open_server(config);
    let key = [9, 8, 7, 6];
    let mut header =
        wsmachine::frame::FrameHeader::new(wsmachine::frame::OpCode::BINARY, true, Some(key));
    header.payload_len = total;
    let mut head = [0; wsmachine::frame::MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    server.handle_read(&head[..n]);
    assert!(server.poll_event().is_none());

    let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let (mut delivered, mut largest, mut peak, mut last_seen) = (0u64, 0usize, 0usize, false);
    let mut sent = 0u64;
    while sent < total {
        let len = chunk.len().min((total - sent) as usize);
        let mut masked = chunk[..len].to_vec();
        wsmachine::frame::apply_mask(&mut masked, key, sent as usize);
        let buf = server.recv_buffer();
        assert!(buf.len() >= len, "recv_buffer offers a whole read");
        buf[..len].copy_from_slice(&masked);
        server.commit_recv(len);
        sent += len as u64;
        while let Some(event) = server.poll_event() {
            match event {
                Event::Fragment(piece) => {
                    assert_eq!(piece.kind, MessageKind::Binary);
                    // The payload is unmasked and intact, wherever the reads split it.
                    for (i, b) in piece.data.iter().enumerate() {
                        assert_eq!(*b, ((delivered as usize + i) % (64 * 1024) % 251) as u8);
                    }
                    delivered += piece.data.len() as u64;
                    largest = largest.max(piece.data.len());
                    last_seen = piece.last;
                }
                Event::Binary(data) => {
                    delivered += data.len() as u64;
                    largest = largest.max(data.len());
                    last_seen = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        peak = peak.max(server.memory_usage());
    }
    (delivered, largest, peak, last_seen)
}

#[test]
fn a_64_mib_message_streams_through_memory_bounded_by_one_read() {
    let total = 64 << 20;
    let (delivered, largest, peak, last) = stream_one_frame(total, MessageMode::Streaming);
    assert_eq!(delivered, total);
    assert!(last, "the final piece is marked last");
    assert!(
        largest <= 64 * 1024,
        "each piece is at most one read: {largest}"
    );
    assert!(
        peak <= 256 * 1024,
        "memory stays bounded by the read size, not the message: {peak}"
    );
}

#[test]
fn whole_mode_holds_the_message_for_contrast() {
    // The same stream in whole-message mode needs the message in memory: this is
    // what makes the streaming figure above meaningful.
    let total = 4 << 20;
    let (delivered, largest, peak, _) = stream_one_frame(total, MessageMode::Whole);
    assert_eq!((delivered, largest as u64), (total, total));
    assert!(peak as u64 >= total);
}

#[test]
fn memory_usage_starts_at_zero() {
    let pair = Pair::open(Config::default(), Config::default());
    assert_eq!(pair.server.memory_usage(), 0);
    assert_eq!(pair.client.memory_usage(), 0);
}
