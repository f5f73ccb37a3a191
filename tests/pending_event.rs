//! `has_event` parses the next event without handing it out, so an adapter can
//! write what parsing queued first. Reads in between (which may compact or grow
//! the receive buffer) must not disturb the pending event: its text is handed
//! out without a second validation.
mod common;
use common::*;
use wsmachine::{Connection, Event, OwnedEvent};

#[test]
fn a_pending_text_survives_compaction_and_growth_of_the_receive_buffer() {
    let text = "héllo wörld — ✓ 🦀".repeat(50);
    for path in ["handle_read", "recv_buffer"] {
        let mut server = server_with(|c| c.read_buffer_size = 64);
        // A ping first, so that the held bytes sit after released ones and the
        // next read must move them.
        let mut wire = client_frame(true, 0x9, b"p");
        wire.extend(client_frame(true, 0x1, text.as_bytes()));
        let big = client_frame(true, 0x2, &vec![7u8; 200_000]);
        wire.extend(&big[..1000]);
        server.handle_read(&wire);
        assert!(matches!(server.poll_event(), Some(Event::Ping(b"p"))));
        assert!(server.has_event(), "the text frame is complete");
        assert!(server.has_event(), "asking again keeps the same event");
        // More input while the event is pending: forces compaction and growth.
        let rest = &big[1000..];
        match path {
            "handle_read" => server.handle_read(rest),
            _ => {
                let mut rest = rest;
                while !rest.is_empty() {
                    let buf = server.recv_buffer();
                    let n = buf.len().min(rest.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    server.commit_recv(n);
                    rest = &rest[n..];
                }
            }
        }
        assert_eq!(server.poll_event(), Some(Event::Text(&text)), "{path}");
        assert_eq!(
            drain_events(&mut server),
            vec![OwnedEvent::Binary(vec![7u8; 200_000])],
            "{path}"
        );
    }
}

#[test]
fn what_parsing_queued_is_ready_to_send_before_the_event_is_handed_out() {
    let mut server: Connection = server_with(|_| {});
    server.handle_read(&client_frame(true, 0x9, b"ping!"));
    assert_eq!(server.poll_transmit(), None);
    assert!(server.has_event());
    // The pong is queued already ...
    let pong = take_transmit(&mut server);
    assert_eq!(pong, server_frame(true, 0xA, b"ping!"));
    // ... and the ping is still there to hand out.
    assert_eq!(server.poll_event(), Some(Event::Ping(b"ping!")));
    assert!(!server.has_event());

    // Likewise the echo of a close, and the close frame of a failure.
    server.handle_read(&client_frame(true, 0x8, &1001u16.to_be_bytes()));
    assert!(server.has_event());
    assert_eq!(
        sent_close(&take_transmit(&mut server)),
        Some((1001, String::new()))
    );
    assert!(matches!(server.poll_event(), Some(Event::Closed(info)) if info.code().0 == 1001));

    let mut server: Connection = server_with(|_| {});
    server.handle_read(&client_frame(true, 0x1, b"\xff"));
    assert!(server.has_event());
    assert_eq!(
        sent_close(&take_transmit(&mut server)).map(|c| c.0),
        Some(1007)
    );
    assert!(matches!(server.poll_event(), Some(Event::Closed(info)) if info.code().0 == 1007));
}
