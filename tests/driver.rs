//! The driver step (`Driver`, `Goal`, `Step`): the rules every adapter keeps,
//! checked without any I/O, plus the sharp edges the connection's own inputs
//! had (a closed connection's read buffer, a request that timed out between
//! parsing and handing out).

use std::time::Duration;

use wsmachine::{
    CloseCode, Config, Connection, Driver, Error, Event, Goal, Initiator, OwnedEvent, Step, Timeout,
};

/// A masked frame from a client: `opcode` with `payload`, key 1 2 3 4.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [1, 2, 3, 4];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// Reads `bytes` in one read at `now`.
fn read(driver: &mut Driver, now: Duration, bytes: &[u8]) {
    assert!(matches!(driver.step(Goal::Event), Step::Read { .. }));
    let buf = driver.recv_buffer();
    buf[..bytes.len()].copy_from_slice(bytes);
    driver.read(now, bytes.len());
}

/// Writes everything `Write` hands out, and the flush after it; returns the bytes.
fn write_all(driver: &mut Driver, goal: Goal) -> Vec<u8> {
    let mut wire = Vec::new();
    for _ in 0..16 {
        match driver.step(goal) {
            Step::Write => {
                let bytes = driver.transmit().to_vec();
                wire.extend_from_slice(&bytes);
                driver.wrote(bytes.len());
            }
            Step::Flush => driver.flushed(),
            _ => return wire,
        }
    }
    panic!("the writes did not end");
}

#[test]
fn what_parsing_queued_is_written_before_the_event() {
    let mut driver = Driver::new(Connection::open_server(Config::default()));
    read(&mut driver, Duration::ZERO, &client_frame(0x9, b"hi"));
    // The pong first, then the flush, then the ping goes out.
    assert_eq!(driver.step(Goal::Event), Step::Write);
    assert_eq!(driver.transmit(), [0x8A, 2, b'h', b'i']);
    driver.wrote(1);
    assert_eq!(driver.step(Goal::Event), Step::Write, "a partial write");
    driver.wrote(3);
    assert_eq!(driver.step(Goal::Event), Step::Flush);
    driver.flushed();
    assert_eq!(driver.step(Goal::Event), Step::Event);
    assert_eq!(driver.event(), Some(Event::Ping(b"hi")));
    assert!(matches!(driver.step(Goal::Event), Step::Read { .. }));
}

#[test]
fn the_transport_is_flushed_only_after_writes() {
    let mut driver = Driver::new(Connection::open_server(Config::default()));
    assert_eq!(driver.step(Goal::Flush), Step::Done);
    driver.connection_mut().send_text("x").unwrap();
    assert_eq!(write_all(&mut driver, Goal::Flush), [0x81, 1, b'x']);
    assert_eq!(driver.step(Goal::Flush), Step::Done);
}

#[test]
fn a_failed_write_once_closed_still_hands_out_the_close() {
    let mut driver = Driver::new(Connection::open_server(Config::default()));
    read(
        &mut driver,
        Duration::ZERO,
        &client_frame(0x8, &[0x03, 0xE8]),
    );
    // The echo of the close is due; the peer has gone.
    assert_eq!(driver.step(Goal::Event), Step::Write);
    assert!(!driver.write_failed(), "no error while the close waits");
    assert_eq!(driver.step(Goal::Event), Step::Event);
    let Some(Event::Closed(info)) = driver.event() else {
        panic!("the close first")
    };
    assert_eq!(info.code(), CloseCode::NORMAL);
    assert_eq!(info.initiator(), Initiator::Remote);
    // With no event left to hand out, the unsent echo is tried again, and a
    // failure now is the adapter's error.
    assert_eq!(driver.step(Goal::Event), Step::Write);
    assert!(driver.write_failed());
}

#[test]
fn a_failed_write_while_open_is_an_error() {
    let mut driver = Driver::new(Connection::open_server(Config::default()));
    driver.connection_mut().send_text("x").unwrap();
    assert_eq!(driver.step(Goal::Flush), Step::Write);
    assert!(driver.write_failed());
    // Nothing was lost: the message is still queued.
    assert_eq!(driver.step(Goal::Flush), Step::Write);
    assert_eq!(driver.transmit(), [0x81, 1, b'x']);
}

#[test]
fn the_end_of_stream_closes_with_1006() {
    let mut driver = Driver::new(Connection::open_server(Config::default()));
    assert!(matches!(driver.step(Goal::Event), Step::Read { .. }));
    driver.recv_buffer();
    driver.read(Duration::from_millis(5), 0);
    assert_eq!(driver.step(Goal::Event), Step::Event);
    let Some(Event::Closed(info)) = driver.event() else {
        panic!("closed")
    };
    assert_eq!(info.code(), CloseCode::ABNORMAL);
    assert_eq!(driver.step(Goal::Event), Step::Closed);
    // A server closes the transport at once.
    assert_eq!(driver.step(Goal::CloseTransport), Step::CloseTransport);
}

#[test]
fn close_transport_waits_for_a_closed_connection() {
    let mut driver = Driver::new(Connection::open_server(Config::default()));
    assert_eq!(driver.step(Goal::CloseTransport), Step::Done);
}

#[test]
fn a_client_waits_for_the_server_to_close_first() {
    let mut config = Config::default();
    config.close_timeout = Some(Duration::from_secs(2));
    // No idle-buffer deadline: the linger is the only timer.
    config.buffer_release_delay = Duration::ZERO;
    let client = Connection::open_client(config, wsmachine::SeededEntropy::new(7));
    let mut driver = Driver::new(client);
    driver
        .connection_mut()
        .close(CloseCode::NORMAL, "")
        .unwrap();
    write_all(&mut driver, Goal::Flush);
    // The server's close frame arrives.
    read(&mut driver, Duration::ZERO, &[0x88, 2, 0x03, 0xE8]);
    assert_eq!(driver.step(Goal::Event), Step::Event);
    assert!(matches!(driver.event(), Some(Event::Closed(info)) if info.is_clean()));
    // RFC 6455 §7.1.1: the client reads until the server closes, by the close timeout.
    assert_eq!(
        driver.step(Goal::CloseTransport),
        Step::Read {
            deadline: Some(Duration::from_secs(2))
        }
    );
    driver.no_read(Duration::from_secs(2));
    assert_eq!(driver.step(Goal::CloseTransport), Step::CloseTransport);
}

/// A connection whose clock had started keeps its deadlines: the driver's
/// zero is the connection's time, not the connection's zero.
#[test]
fn a_started_clock_keeps_its_deadlines() {
    let mut config = Config::default();
    config.keepalive_interval = Some(Duration::from_secs(30));
    config.keepalive_timeout = None;
    let mut conn = Connection::open_server(config);
    conn.handle_timeout(Duration::from_secs(1000));
    let mut driver = Driver::new(conn);
    assert_eq!(
        driver.step(Goal::Event),
        Step::Read {
            deadline: Some(Duration::from_secs(30))
        }
    );
    driver.no_read(Duration::from_secs(30));
    // The keepalive ping is due on the driver's clock, not 1000 s later.
    assert_eq!(driver.step(Goal::Event), Step::Write);
    assert_eq!(driver.transmit()[0], 0x89);
    assert_eq!(
        driver.connection().time(),
        Some(Duration::from_secs(1030)),
        "the connection's own clock goes on from where it was"
    );
}

#[test]
fn a_new_connection_clock_starts_with_the_driver() {
    let conn = Connection::open_server(Config::default());
    assert_eq!(conn.time(), None);
    let driver = Driver::new(conn);
    assert_eq!(driver.connection().time(), Some(Duration::ZERO));
}

/// Once closed, what arrives is discarded: the read buffer offered is small,
/// however large `read_buffer_size` is.
#[test]
fn a_closed_connection_offers_a_small_read_buffer() {
    let mut config = Config::default();
    config.read_buffer_size = 256 << 10;
    config.retain_buffer_size = 0;
    let mut conn = Connection::open_server(config);
    assert!(conn.recv_buffer().len() >= 256 << 10, "open: a whole read");
    conn.commit_recv(0);
    // An unmasked frame to a server fails the connection (RFC 6455 §5.1).
    conn.handle_read(&[0x81, 1, b'x']);
    assert!(matches!(conn.poll_event(), Some(Event::Closed(_))));
    assert!(conn.is_closed());
    let before = conn.memory_usage();
    let len = conn.recv_buffer().len();
    assert!((1..=512).contains(&len), "offered {len} bytes");
    conn.commit_recv(len);
    assert!(conn.memory_usage() <= before.max(512), "no buffer grew");
    assert_eq!(
        conn.poll_event(),
        None,
        "bytes after the close are discarded"
    );
}

/// A request that was parsed (`has_event`) but not handed out when the
/// handshake timed out is never handed out: the close is.
#[test]
fn a_request_that_timed_out_is_not_handed_out() {
    let mut config = Config::default();
    config.handshake_timeout = Some(Duration::from_secs(1));
    let mut server = Connection::server(config);
    server.handle_timeout(Duration::ZERO);
    server.handle_read(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(server.has_event());
    server.handle_timeout(Duration::from_secs(2));
    let event = server.poll_event().map(Event::into_owned);
    let Some(OwnedEvent::Closed(info)) = event else {
        panic!("{event:?}")
    };
    assert_eq!(info.error(), Some(&Error::Timeout(Timeout::Handshake)));
    assert!(server.poll_transmit().unwrap().starts_with(b"HTTP/1.1 408"));
    assert!(server.accept(wsmachine::handshake::Accept::new()).is_err());
    assert_eq!(server.poll_event(), None);
}
