//! The adapters' timers over real loopback sockets: keepalive against a dead
//! and a live peer, the handshake timeout (408), the close timeout, the
//! client's wait for the server's end of stream in `close_transport`, the idle
//! timeout, and (tokio) cancel-safety while the keepalive runs.
//!
//! Raw peers are plain `std::net::TcpStream`s in threads, speaking HTTP and
//! frames by hand. Durations are tens of milliseconds; lower bounds are only
//! asserted where the code guarantees them (measured from the peer's last
//! byte, which the adapter's clock cannot precede), upper bounds are seconds.
#![cfg(any(feature = "blocking", feature = "tokio"))]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use wsmachine::handshake::{ClientRequest, accept_key};
use wsmachine::{CloseCode, CloseInfo, Config, Initiator, OwnedEvent, Timeout};

/// Bound of a whole test.
const LIMIT: Duration = Duration::from_secs(10);
/// Read and write timeout of the raw peers' sockets: no raw peer blocks forever.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Generous upper bound for a timer of tens of milliseconds to fire.
const LATE: Duration = Duration::from_secs(2);
/// The `Sec-WebSocket-Key` of the raw client (RFC 6455 §1.3's example) and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const KEY_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// No timer but the defaults' handshake and close timeouts (10 s): a peer
/// that never pings on its own.
fn quiet() -> Config {
    let mut c = Config::default();
    c.keepalive_interval = None;
    c.keepalive_timeout = None;
    c
}

fn keepalive(interval: u64, timeout: u64) -> Config {
    let mut c = quiet();
    c.keepalive_interval = Some(ms(interval));
    c.keepalive_timeout = Some(ms(timeout));
    c
}

fn with_handshake_timeout(timeout: u64) -> Config {
    let mut c = quiet();
    c.handshake_timeout = Some(ms(timeout));
    c
}

fn with_close_timeout(timeout: u64) -> Config {
    let mut c = quiet();
    c.close_timeout = Some(ms(timeout));
    c
}

fn request(addr: std::net::SocketAddr) -> ClientRequest {
    ClientRequest::new(&format!("ws://{addr}/")).unwrap()
}

fn raw_timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
}

fn timing(what: &str, elapsed: Duration) {
    println!("[timing] {what}: {elapsed:?}");
}

fn assert_between(what: &str, elapsed: Duration, min: Duration, max: Duration) {
    timing(what, elapsed);
    assert!(
        elapsed >= min && elapsed < max,
        "{what}: {elapsed:?} not in [{min:?}, {max:?})"
    );
}

/// Reads an HTTP head through its blank line, one byte at a time, so that
/// nothing after it is consumed.
fn read_head(s: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 << 10, "an endless HTTP head");
        match s.read(&mut byte).unwrap() {
            0 => panic!("end of stream in the HTTP head: {head:?}"),
            _ => head.push(byte[0]),
        }
    }
    String::from_utf8(head).unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Raw server: reads the upgrade request and answers 101 by hand. Returns the
/// time taken just before the response was written: the peer's last byte.
fn raw_server_handshake(s: &mut TcpStream) -> Instant {
    let head = read_head(s);
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    let key = header(&head, "Sec-WebSocket-Key").expect("a Sec-WebSocket-Key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key.as_bytes())
    );
    let sent = Instant::now();
    s.write_all(response.as_bytes()).unwrap();
    sent
}

/// Raw client: sends a valid upgrade request and reads the 101. Returns the
/// time taken just before the request was written: the peer's last byte.
fn raw_client_handshake(s: &mut TcpStream) -> Instant {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let sent = Instant::now();
    s.write_all(request.as_bytes()).unwrap();
    let head = read_head(s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(header(&head, "Sec-WebSocket-Accept"), Some(KEY_ACCEPT));
    sent
}

/// A raw server on `listener` for one connection: the handshake, then silence
/// with the socket kept open. Returns the socket and the time of its last byte.
fn silent_server(listener: std::net::TcpListener) -> (TcpStream, Instant) {
    let (mut s, _) = listener.accept().unwrap();
    raw_timeouts(&s);
    let last = raw_server_handshake(&mut s);
    (s, last)
}

/// A raw client: the handshake, then silence with the socket kept open.
fn silent_client(addr: std::net::SocketAddr) -> (TcpStream, Instant) {
    let mut s = TcpStream::connect(addr).unwrap();
    raw_timeouts(&s);
    let last = raw_client_handshake(&mut s);
    (s, last)
}

/// A frame as read by a raw peer.
#[derive(Debug)]
struct RawFrame {
    /// FIN, RSV and opcode.
    first: u8,
    masked: bool,
    /// Unmasked.
    payload: Vec<u8>,
}

fn read_frame(s: &mut impl Read) -> RawFrame {
    let mut head = [0; 2];
    s.read_exact(&mut head).unwrap();
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0; 2];
            s.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    assert!(len < 1 << 20, "a frame of {len} bytes");
    let masked = head[1] & 0x80 != 0;
    let mut key = [0; 4];
    if masked {
        s.read_exact(&mut key).unwrap();
    }
    let mut payload = vec![0; len as usize];
    s.read_exact(&mut payload).unwrap();
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    RawFrame {
        first: head[0],
        masked,
        payload,
    }
}

/// A close frame with `code`, masked (a client's) or not (a server's).
fn close_frame(code: u16, masked: bool) -> Vec<u8> {
    let body = code.to_be_bytes();
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        vec![
            0x88,
            0x82,
            key[0],
            key[1],
            key[2],
            key[3],
            body[0] ^ key[0],
            body[1] ^ key[1],
        ]
    } else {
        vec![0x88, 0x02, body[0], body[1]]
    }
}

/// What a silent peer finds in its socket once the keepalive gave up: one
/// keepalive ping, then a close frame 1001 with the timeout as its reason.
fn expect_keepalive_trace(peer: &mut TcpStream, masked: bool) {
    let ping = read_frame(peer);
    assert_eq!((ping.first, ping.masked), (0x89, masked), "{ping:?}");
    assert_eq!(ping.payload, b"wska\0\0\0\0", "the first keepalive ping");
    let close = read_frame(peer);
    assert_eq!((close.first, close.masked), (0x88, masked), "{close:?}");
    assert_eq!(close.payload[..2], 1001u16.to_be_bytes());
    assert_eq!(
        close.payload[2..],
        *Timeout::Keepalive.to_string().as_bytes()
    );
}

/// Reads to the end of stream (an error if it does not come in `IO_TIMEOUT`).
fn read_to_eof(peer: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).expect("the end of stream");
    rest
}

#[track_caller]
fn expect_timed_out(event: OwnedEvent, timeout: Timeout, code: CloseCode) -> CloseInfo {
    let OwnedEvent::Closed(info) = event else {
        panic!("expected Closed by {timeout:?}, got {event:?}");
    };
    assert_eq!(
        info.error(),
        Some(&wsmachine::Error::Timeout(timeout)),
        "{info:?}"
    );
    assert_eq!(info.code(), code, "{info:?}");
    assert_eq!(info.initiator(), Initiator::Local);
    assert!(!info.is_clean());
    info
}

#[track_caller]
fn expect_clean(event: OwnedEvent, code: CloseCode, initiator: Initiator) -> CloseInfo {
    let OwnedEvent::Closed(info) = event else {
        panic!("expected a clean Closed, got {event:?}");
    };
    assert!(info.is_clean(), "{info:?}");
    assert_eq!(
        (info.code(), info.initiator()),
        (code, initiator),
        "{info:?}"
    );
    assert_eq!(info.error(), None);
    info
}

#[cfg(feature = "blocking")]
mod blocking {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;
    use wsmachine::adapter::Error;
    use wsmachine::adapter::blocking::WebSocket;

    type Ws = WebSocket<TcpStream>;

    /// Runs a test body in a thread and fails if it does not end within
    /// `LIMIT`: a blocking adapter owns its socket's read timeout, so a broken
    /// timer could block a read forever.
    fn within<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        let handle = thread::spawn(move || {
            let _ = tx.send(body());
        });
        match rx.recv_timeout(LIMIT) {
            Ok(value) => value,
            Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the body ended without a value"),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test did not end in {LIMIT:?}"),
        }
    }

    fn bind() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    fn connect(addr: std::net::SocketAddr, config: Config) -> Ws {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        WebSocket::connect(stream, &request(addr), config).unwrap()
    }

    fn accept(listener: &TcpListener, config: Config) -> Result<Ws, Error> {
        let (stream, _) = listener.accept().unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        WebSocket::accept(stream, config)
    }

    /// A blocking server without timers of its own that echoes text and
    /// answers pings (auto pong); returns how it ended and the pings it saw.
    fn echo_peer(listener: TcpListener) -> thread::JoinHandle<(CloseInfo, usize)> {
        thread::spawn(move || {
            let mut ws = accept(&listener, quiet()).unwrap();
            let mut pings = 0;
            for _ in 0..100_000 {
                match ws.recv().unwrap() {
                    OwnedEvent::Ping(p) => {
                        assert!(p.starts_with(b"wska"), "{p:?}");
                        pings += 1;
                    }
                    OwnedEvent::Text(t) => ws.send_text(&t).unwrap(),
                    OwnedEvent::Closed(info) => return (info, pings),
                    other => panic!("{other:?}"),
                }
            }
            panic!("the echo peer saw too many events");
        })
    }

    /// The next event that is not a pong (keepalive pongs come and go).
    fn recv_skipping_pongs(ws: &mut Ws) -> OwnedEvent {
        for _ in 0..10_000 {
            match ws.recv().unwrap() {
                OwnedEvent::Pong(_) => {}
                other => return other,
            }
        }
        panic!("only pongs");
    }

    // ----- 1. keepalive against a dead peer -----

    #[test]
    fn blocking_client_detects_a_silent_server_by_keepalive() {
        within(|| {
            let (listener, addr) = bind();
            let raw = thread::spawn(move || silent_server(listener));
            let mut ws = connect(addr, keepalive(30, 50));
            let (mut peer, last_byte) = raw.join().unwrap();
            let event = ws.recv().unwrap();
            let elapsed = last_byte.elapsed();
            expect_timed_out(event, Timeout::Keepalive, CloseCode::GOING_AWAY);
            assert_between("blocking client, keepalive 30+50 ms", elapsed, ms(80), LATE);
            assert!(matches!(ws.recv(), Err(Error::Closed)));
            // A failed connection's transport may go at once.
            assert!(ws.connection().should_close_transport());
            let start = Instant::now();
            ws.close_transport().unwrap();
            assert!(start.elapsed() < LATE);
            expect_keepalive_trace(&mut peer, true);
            drop(ws);
            assert!(read_to_eof(&mut peer).is_empty());
        });
    }

    #[test]
    fn blocking_server_detects_a_silent_client_by_keepalive() {
        within(|| {
            let (listener, addr) = bind();
            let raw = thread::spawn(move || silent_client(addr));
            let mut ws = accept(&listener, keepalive(30, 50)).unwrap();
            let (mut peer, last_byte) = raw.join().unwrap();
            let event = ws.recv().unwrap();
            let elapsed = last_byte.elapsed();
            expect_timed_out(event, Timeout::Keepalive, CloseCode::GOING_AWAY);
            assert_between("blocking server, keepalive 30+50 ms", elapsed, ms(80), LATE);
            assert!(matches!(ws.recv(), Err(Error::Closed)));
            expect_keepalive_trace(&mut peer, false);
            drop(ws);
            assert!(read_to_eof(&mut peer).is_empty());
        });
    }

    // ----- 2. keepalive against a live peer -----

    #[test]
    fn blocking_keepalive_pings_keep_a_live_peer_open() {
        within(|| {
            let (listener, addr) = bind();
            let peer = echo_peer(listener);
            // Only the client pings. A timeout of 400 ms (not 50) keeps a
            // scheduling hiccup of the peer's thread from failing the test; the
            // run still outlasts interval + timeout, and a ping is only sent
            // once the previous one was answered, so 5 pongs prove 5 answers.
            let mut ws = connect(addr, keepalive(30, 400));
            assert_eq!(ws.connection().rtt(), None);
            let start = Instant::now();
            let mut pongs = 0;
            while start.elapsed() < ms(500) || pongs < 5 {
                assert!(start.elapsed() < LIMIT / 2, "only {pongs} pongs");
                match ws.recv().unwrap() {
                    OwnedEvent::Pong(p) => {
                        assert!(p.starts_with(b"wska"), "{p:?}");
                        pongs += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
            println!(
                "[timing] blocking live peer: {pongs} keepalive pongs in {:?}, rtt {:?}",
                start.elapsed(),
                ws.connection().rtt()
            );
            assert!(ws.connection().is_open());
            assert!(ws.connection().rtt().is_some());
            ws.send_text("still open").unwrap();
            assert_eq!(
                recv_skipping_pongs(&mut ws),
                OwnedEvent::Text("still open".into())
            );
            ws.close(CloseCode::NORMAL, "").unwrap();
            expect_clean(
                recv_skipping_pongs(&mut ws),
                CloseCode::NORMAL,
                Initiator::Local,
            );
            let (info, pings) = peer.join().unwrap();
            assert!(info.is_clean());
            assert!(pings >= pongs, "{pings} pings seen, {pongs} pongs received");
        });
    }

    // ----- 3. the handshake timeout -----

    #[test]
    fn blocking_server_answers_a_half_sent_request_with_408() {
        within(|| {
            let (listener, addr) = bind();
            let raw = thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                raw_timeouts(&s);
                s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
                read_to_eof(&mut s)
            });
            let (stream, _) = listener.accept().unwrap();
            let start = Instant::now();
            let result = WebSocket::accept(stream, with_handshake_timeout(50));
            let elapsed = start.elapsed();
            match result {
                Err(Error::WebSocket(wsmachine::Error::Timeout(Timeout::Handshake))) => {}
                other => panic!("{other:?}"),
            }
            assert_between(
                "blocking accept, handshake timeout 50 ms",
                elapsed,
                ms(50),
                LATE,
            );
            let answer = String::from_utf8(raw.join().unwrap()).unwrap();
            assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
            assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
            assert!(
                answer.ends_with(&format!("\r\n\r\n{}", Timeout::Handshake)),
                "{answer}"
            );
        });
    }

    #[test]
    fn blocking_server_closes_a_mute_connection_without_a_response() {
        within(|| {
            let (listener, addr) = bind();
            let raw = thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                raw_timeouts(&s);
                read_to_eof(&mut s)
            });
            let start = Instant::now();
            let result = accept(&listener, with_handshake_timeout(50));
            assert!(matches!(
                result,
                Err(Error::WebSocket(wsmachine::Error::Timeout(
                    Timeout::Handshake
                )))
            ));
            assert_between(
                "blocking accept, mute client",
                start.elapsed(),
                ms(50),
                LATE,
            );
            // No byte of a request came: no 408, just the end of stream.
            assert_eq!(raw.join().unwrap(), b"");
        });
    }

    #[test]
    fn blocking_client_handshake_times_out_against_a_mute_server() {
        within(|| {
            let (listener, addr) = bind();
            let raw = thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                raw_timeouts(&s);
                let head = read_head(&mut s);
                // Never answered; the client gives up and closes.
                (head, read_to_eof(&mut s))
            });
            let stream = TcpStream::connect(addr).unwrap();
            let start = Instant::now();
            let result = WebSocket::connect(stream, &request(addr), with_handshake_timeout(50));
            let elapsed = start.elapsed();
            assert!(
                matches!(
                    result,
                    Err(Error::WebSocket(wsmachine::Error::Timeout(
                        Timeout::Handshake
                    )))
                ),
                "{result:?}"
            );
            assert_between(
                "blocking connect, handshake timeout 50 ms",
                elapsed,
                ms(50),
                LATE,
            );
            let (head, rest) = raw.join().unwrap();
            assert!(head.starts_with("GET / HTTP/1.1\r\n"));
            assert!(rest.is_empty());
        });
    }

    // ----- 4. close timeout and close_transport -----

    #[test]
    fn blocking_unanswered_close_times_out() {
        within(|| {
            let (listener, addr) = bind();
            let raw = thread::spawn(move || silent_server(listener));
            let mut ws = connect(addr, with_close_timeout(50));
            let (mut peer, last_byte) = raw.join().unwrap();
            ws.close(CloseCode::NORMAL, "bye").unwrap();
            let event = ws.recv().unwrap();
            let elapsed = last_byte.elapsed();
            expect_timed_out(event, Timeout::Close, CloseCode::ABNORMAL);
            assert_between(
                "blocking client, close timeout 50 ms",
                elapsed,
                ms(50),
                LATE,
            );
            let close = read_frame(&mut peer);
            assert_eq!((close.first, close.masked), (0x88, true));
            assert_eq!(close.payload, b"\x03\xe8bye");
            // Not clean: the transport goes at once.
            let start = Instant::now();
            ws.close_transport().unwrap();
            assert!(start.elapsed() < LATE);
        });
    }

    /// A raw server that closes first (after the handshake) and reads the
    /// client's echo; returns the socket and when its close frame went out.
    fn closing_server(listener: TcpListener) -> thread::JoinHandle<(TcpStream, Instant)> {
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            raw_timeouts(&s);
            raw_server_handshake(&mut s);
            let sent = Instant::now();
            s.write_all(&close_frame(1000, false)).unwrap();
            let echo = read_frame(&mut s);
            assert_eq!((echo.first, echo.masked), (0x88, true));
            assert_eq!(echo.payload, 1000u16.to_be_bytes());
            (s, sent)
        })
    }

    #[test]
    fn blocking_client_close_transport_waits_for_the_server_eof() {
        within(|| {
            let (listener, addr) = bind();
            let raw = closing_server(listener);
            // A close timeout far above the wait: only the EOF can end it early.
            let mut ws = connect(addr, with_close_timeout(5_000));
            expect_clean(ws.recv().unwrap(), CloseCode::NORMAL, Initiator::Remote);
            let (peer, close_sent) = raw.join().unwrap();
            assert!(!ws.connection().should_close_transport());
            // The server closes 30 ms after the closing handshake.
            let closer = thread::spawn(move || {
                thread::sleep(ms(30));
                drop(peer);
            });
            ws.close_transport().unwrap();
            let elapsed = close_sent.elapsed();
            assert_between(
                "blocking client, wait for the server's EOF",
                elapsed,
                ms(30),
                LATE,
            );
            assert!(ws.connection().should_close_transport());
            closer.join().unwrap();
        });
    }

    #[test]
    fn blocking_client_close_transport_gives_up_after_close_timeout() {
        within(|| {
            let (listener, addr) = bind();
            let raw = closing_server(listener);
            let mut ws = connect(addr, with_close_timeout(50));
            expect_clean(ws.recv().unwrap(), CloseCode::NORMAL, Initiator::Remote);
            // The server keeps the socket open.
            let (_peer, close_sent) = raw.join().unwrap();
            ws.close_transport().unwrap();
            let elapsed = close_sent.elapsed();
            assert_between("blocking client, linger 50 ms", elapsed, ms(50), ms(1000));
            assert!(ws.connection().should_close_transport());
        });
    }

    #[test]
    fn blocking_server_close_transport_returns_at_once() {
        within(|| {
            let (listener, addr) = bind();
            let raw = thread::spawn(move || {
                let (mut s, _) = silent_client(addr);
                s.write_all(&close_frame(1000, true)).unwrap();
                let echo = read_frame(&mut s);
                assert_eq!((echo.first, echo.masked), (0x88, false));
                assert_eq!(echo.payload, 1000u16.to_be_bytes());
                // The client keeps its side open, and waits for the server's EOF.
                read_to_eof(&mut s)
            });
            let mut ws = accept(&listener, with_close_timeout(5_000)).unwrap();
            expect_clean(ws.recv().unwrap(), CloseCode::NORMAL, Initiator::Remote);
            assert!(ws.connection().should_close_transport());
            let start = Instant::now();
            ws.close_transport().unwrap();
            assert_between(
                "blocking server close_transport",
                start.elapsed(),
                ms(0),
                ms(1000),
            );
            // The blocking adapter leaves the end to the drop.
            drop(ws);
            assert!(raw.join().unwrap().is_empty());
        });
    }

    // ----- idle timeout -----

    #[test]
    fn blocking_idle_timeout_closes_despite_keepalive_pings() {
        within(|| {
            let (listener, addr) = bind();
            let peer = echo_peer(listener);
            let mut config = keepalive(10, 1_000);
            config.idle_timeout = Some(ms(80));
            let mut ws = connect(addr, config);
            let sent = Instant::now();
            ws.send_text("one").unwrap();
            assert_eq!(recv_skipping_pongs(&mut ws), OwnedEvent::Text("one".into()));
            // Pings and pongs go on every 10 ms; they are no messages.
            let event = recv_skipping_pongs(&mut ws);
            let elapsed = sent.elapsed();
            let info = expect_clean(event, CloseCode::GOING_AWAY, Initiator::Local);
            assert_eq!(info.reason(), "");
            assert_between("blocking client, idle 80 ms", elapsed, ms(80), LATE);
            let (info, pings) = peer.join().unwrap();
            assert_eq!(
                (info.code(), info.reason()),
                (CloseCode::GOING_AWAY, "idle")
            );
            assert!(pings >= 1, "the keepalive ran");
        });
    }

    // ----- commands after a quiet spell, extreme durations -----

    /// The close timer starts when `close` is called (the adapter gives the
    /// connection the time before every command), not at the last read: after
    /// a spell without `recv` longer than `close_timeout`, a close the peer
    /// answers at once completes cleanly.
    #[test]
    fn blocking_close_after_a_quiet_spell_completes_cleanly() {
        within(|| {
            let (listener, addr) = bind();
            let peer = echo_peer(listener);
            let mut ws = connect(addr, with_close_timeout(50));
            thread::sleep(ms(100)); // the application is busy, no recv
            ws.close(CloseCode::NORMAL, "").unwrap();
            let event = ws.recv().unwrap();
            expect_clean(event, CloseCode::NORMAL, Initiator::Local);
            peer.join().unwrap();
        });
    }

    /// The blocking adapter takes `Duration::MAX` ("never") as a timeout.
    #[test]
    fn blocking_takes_duration_max_timeouts() {
        within(|| {
            let (listener, addr) = bind();
            let peer = echo_peer(listener);
            let mut config = quiet();
            config.keepalive_interval = Some(Duration::MAX);
            config.handshake_timeout = Some(Duration::MAX);
            let mut ws = connect(addr, config);
            ws.send_text("far").unwrap();
            assert_eq!(ws.recv().unwrap(), OwnedEvent::Text("far".into()));
            ws.close(CloseCode::NORMAL, "").unwrap();
            expect_clean(ws.recv().unwrap(), CloseCode::NORMAL, Initiator::Local);
            peer.join().unwrap();
        });
    }
}

#[cfg(feature = "tokio")]
mod tokio_adapter {
    use super::*;
    use std::thread;
    use tokio::net::{TcpListener, TcpStream as TokioStream};
    use tokio::time::timeout;
    use wsmachine::adapter::Error;
    use wsmachine::adapter::tokio::WebSocket;

    type Ws = WebSocket<TokioStream>;

    /// The messages of the cancel-safety test.
    fn numbered(n: usize) -> String {
        format!("message {n} {}", "z".repeat(n * 131 % 3000))
    }

    /// Joins a raw peer's thread without blocking the runtime.
    async fn join<T: Send + 'static>(handle: thread::JoinHandle<T>) -> T {
        tokio::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap()
    }

    /// Runs blocking raw-socket work without blocking the runtime.
    async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.unwrap()
    }

    async fn bind() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    fn bind_std() -> (std::net::TcpListener, std::net::SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    async fn connect(addr: std::net::SocketAddr, config: Config) -> Ws {
        let stream = TokioStream::connect(addr).await.unwrap();
        WebSocket::connect(stream, &request(addr), config)
            .await
            .unwrap()
    }

    async fn accept(listener: &TcpListener, config: Config) -> Result<Ws, Error> {
        let (stream, _) = listener.accept().await.unwrap();
        WebSocket::accept(stream, config).await
    }

    /// The next event that is not a ping or a pong.
    async fn recv_data(ws: &mut Ws) -> OwnedEvent {
        for _ in 0..10_000 {
            match ws.recv().await.unwrap() {
                OwnedEvent::Ping(_) | OwnedEvent::Pong(_) => {}
                other => return other,
            }
        }
        panic!("only pings and pongs");
    }

    /// A tokio server without timers of its own that echoes text.
    fn echo_peer(listener: TcpListener) -> tokio::task::JoinHandle<(CloseInfo, usize)> {
        tokio::spawn(async move {
            let mut ws = accept(&listener, quiet()).await.unwrap();
            let mut pings = 0;
            for _ in 0..100_000 {
                match ws.recv().await.unwrap() {
                    OwnedEvent::Ping(_) => pings += 1,
                    OwnedEvent::Text(t) => ws.send_text(&t).await.unwrap(),
                    OwnedEvent::Closed(info) => return (info, pings),
                    other => panic!("{other:?}"),
                }
            }
            panic!("the echo peer saw too many events");
        })
    }

    // ----- 1. keepalive against a dead peer -----

    #[tokio::test]
    async fn tokio_client_detects_a_silent_server_by_keepalive() {
        timeout(LIMIT, async {
            let (listener, addr) = bind_std();
            let raw = thread::spawn(move || silent_server(listener));
            let mut ws = connect(addr, keepalive(30, 50)).await;
            let (mut peer, last_byte) = join(raw).await;
            let event = ws.recv().await.unwrap();
            let elapsed = last_byte.elapsed();
            expect_timed_out(event, Timeout::Keepalive, CloseCode::GOING_AWAY);
            assert_between("tokio client, keepalive 30+50 ms", elapsed, ms(80), LATE);
            assert!(matches!(ws.recv().await, Err(Error::Closed)));
            // A failed connection's transport is shut down at once, by the
            // adapter itself: the peer sees the end of stream while `ws` lives.
            let start = Instant::now();
            ws.close_transport().await.unwrap();
            assert!(start.elapsed() < LATE);
            blocking(move || {
                expect_keepalive_trace(&mut peer, true);
                assert!(read_to_eof(&mut peer).is_empty());
            })
            .await;
            drop(ws);
        })
        .await
        .expect("the test timed out");
    }

    #[tokio::test]
    async fn tokio_server_detects_a_silent_client_by_keepalive() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            let raw = thread::spawn(move || silent_client(addr));
            let mut ws = accept(&listener, keepalive(30, 50)).await.unwrap();
            let (mut peer, last_byte) = join(raw).await;
            let event = ws.recv().await.unwrap();
            let elapsed = last_byte.elapsed();
            expect_timed_out(event, Timeout::Keepalive, CloseCode::GOING_AWAY);
            assert_between("tokio server, keepalive 30+50 ms", elapsed, ms(80), LATE);
            assert!(matches!(ws.recv().await, Err(Error::Closed)));
            ws.close_transport().await.unwrap();
            blocking(move || {
                expect_keepalive_trace(&mut peer, false);
                assert!(read_to_eof(&mut peer).is_empty());
            })
            .await;
        })
        .await
        .expect("the test timed out");
    }

    // ----- 2. keepalive against a live peer -----

    #[tokio::test]
    async fn tokio_keepalive_pings_keep_a_live_peer_open() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            // The server under test pings; the client answers (auto pong).
            // Timeout 400 ms rather than 50: robust to scheduling hiccups
            // (see the blocking twin).
            let server = tokio::spawn(async move {
                let mut ws = accept(&listener, keepalive(30, 400)).await.unwrap();
                let mut pongs = 0;
                for _ in 0..100_000 {
                    match ws.recv().await.unwrap() {
                        OwnedEvent::Pong(p) => {
                            assert!(p.starts_with(b"wska"), "{p:?}");
                            pongs += 1;
                        }
                        OwnedEvent::Text(t) => {
                            assert!(ws.connection().rtt().is_some());
                            ws.send_text(&t).await.unwrap();
                        }
                        OwnedEvent::Closed(info) => return (info, pongs, ws.connection().rtt()),
                        other => panic!("{other:?}"),
                    }
                }
                panic!("too many events");
            });
            let mut ws = connect(addr, quiet()).await;
            let start = Instant::now();
            let mut pings = 0;
            while start.elapsed() < ms(500) || pings < 5 {
                assert!(start.elapsed() < LIMIT / 2, "only {pings} pings");
                match ws.recv().await.unwrap() {
                    OwnedEvent::Ping(p) => {
                        assert!(p.starts_with(b"wska"), "{p:?}");
                        pings += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert!(ws.connection().is_open());
            ws.send_text("still open").await.unwrap();
            assert_eq!(
                recv_data(&mut ws).await,
                OwnedEvent::Text("still open".into())
            );
            let elapsed = start.elapsed();
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            expect_clean(
                recv_data(&mut ws).await,
                CloseCode::NORMAL,
                Initiator::Local,
            );
            let (info, pongs, rtt) = server.await.unwrap();
            println!(
                "[timing] tokio live peer: {pings} keepalive pings in {elapsed:?}, rtt {rtt:?}"
            );
            assert!(info.is_clean());
            assert!(pongs >= pings, "{pongs} pongs for {pings} pings");
            assert!(rtt.is_some());
        })
        .await
        .expect("the test timed out");
    }

    // ----- 3. the handshake timeout -----

    #[tokio::test]
    async fn tokio_server_answers_a_half_sent_request_with_408() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            let raw = thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                raw_timeouts(&s);
                s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
                read_to_eof(&mut s)
            });
            let (stream, _) = listener.accept().await.unwrap();
            let start = Instant::now();
            let result = WebSocket::accept(stream, with_handshake_timeout(50)).await;
            let elapsed = start.elapsed();
            match result {
                Err(Error::WebSocket(wsmachine::Error::Timeout(Timeout::Handshake))) => {}
                other => panic!("{other:?}"),
            }
            assert_between(
                "tokio accept, handshake timeout 50 ms",
                elapsed,
                ms(50),
                LATE,
            );
            let answer = String::from_utf8(join(raw).await).unwrap();
            assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
            assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
            assert!(
                answer.ends_with(&format!("\r\n\r\n{}", Timeout::Handshake)),
                "{answer}"
            );
        })
        .await
        .expect("the test timed out");
    }

    #[tokio::test]
    async fn tokio_server_closes_a_mute_connection_without_a_response() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            let raw = thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                raw_timeouts(&s);
                read_to_eof(&mut s)
            });
            let start = Instant::now();
            let result = accept(&listener, with_handshake_timeout(50)).await;
            assert!(matches!(
                result,
                Err(Error::WebSocket(wsmachine::Error::Timeout(
                    Timeout::Handshake
                )))
            ));
            assert_between("tokio accept, mute client", start.elapsed(), ms(50), LATE);
            assert_eq!(join(raw).await, b"");
        })
        .await
        .expect("the test timed out");
    }

    #[tokio::test]
    async fn tokio_client_handshake_times_out_against_a_mute_server() {
        timeout(LIMIT, async {
            let (listener, addr) = bind_std();
            let raw = thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                raw_timeouts(&s);
                let head = read_head(&mut s);
                (head, read_to_eof(&mut s))
            });
            let stream = TokioStream::connect(addr).await.unwrap();
            let start = Instant::now();
            let result =
                WebSocket::connect(stream, &request(addr), with_handshake_timeout(50)).await;
            let elapsed = start.elapsed();
            assert!(
                matches!(
                    result,
                    Err(Error::WebSocket(wsmachine::Error::Timeout(
                        Timeout::Handshake
                    )))
                ),
                "{result:?}"
            );
            assert_between(
                "tokio connect, handshake timeout 50 ms",
                elapsed,
                ms(50),
                LATE,
            );
            let (head, rest) = join(raw).await;
            assert!(head.starts_with("GET / HTTP/1.1\r\n"));
            assert!(rest.is_empty());
        })
        .await
        .expect("the test timed out");
    }

    // ----- 4. close timeout and close_transport -----

    #[tokio::test]
    async fn tokio_unanswered_close_times_out() {
        timeout(LIMIT, async {
            let (listener, addr) = bind_std();
            let raw = thread::spawn(move || silent_server(listener));
            let mut ws = connect(addr, with_close_timeout(50)).await;
            let (mut peer, last_byte) = join(raw).await;
            ws.close(CloseCode::NORMAL, "bye").await.unwrap();
            let event = ws.recv().await.unwrap();
            let elapsed = last_byte.elapsed();
            expect_timed_out(event, Timeout::Close, CloseCode::ABNORMAL);
            assert_between("tokio client, close timeout 50 ms", elapsed, ms(50), LATE);
            let start = Instant::now();
            ws.close_transport().await.unwrap();
            assert!(start.elapsed() < LATE);
            blocking(move || {
                let close = read_frame(&mut peer);
                assert_eq!((close.first, close.masked), (0x88, true));
                assert_eq!(close.payload, b"\x03\xe8bye");
                assert!(read_to_eof(&mut peer).is_empty());
            })
            .await;
        })
        .await
        .expect("the test timed out");
    }

    /// A raw server that closes first and reads the client's echo; returns the
    /// socket and when its close frame went out.
    fn closing_server(
        listener: std::net::TcpListener,
    ) -> thread::JoinHandle<(std::net::TcpStream, Instant)> {
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            raw_timeouts(&s);
            raw_server_handshake(&mut s);
            let sent = Instant::now();
            s.write_all(&close_frame(1000, false)).unwrap();
            let echo = read_frame(&mut s);
            assert_eq!((echo.first, echo.masked), (0x88, true));
            assert_eq!(echo.payload, 1000u16.to_be_bytes());
            (s, sent)
        })
    }

    #[tokio::test]
    async fn tokio_client_close_transport_waits_for_the_server_eof() {
        timeout(LIMIT, async {
            let (listener, addr) = bind_std();
            let raw = closing_server(listener);
            let mut ws = connect(addr, with_close_timeout(5_000)).await;
            expect_clean(
                ws.recv().await.unwrap(),
                CloseCode::NORMAL,
                Initiator::Remote,
            );
            let (peer, close_sent) = join(raw).await;
            assert!(!ws.connection().should_close_transport());
            let closer = thread::spawn(move || {
                thread::sleep(ms(30));
                drop(peer);
            });
            ws.close_transport().await.unwrap();
            let elapsed = close_sent.elapsed();
            assert_between(
                "tokio client, wait for the server's EOF",
                elapsed,
                ms(30),
                LATE,
            );
            assert!(ws.connection().should_close_transport());
            join(closer).await;
        })
        .await
        .expect("the test timed out");
    }

    #[tokio::test]
    async fn tokio_client_close_transport_gives_up_after_close_timeout() {
        timeout(LIMIT, async {
            let (listener, addr) = bind_std();
            let raw = closing_server(listener);
            let mut ws = connect(addr, with_close_timeout(50)).await;
            expect_clean(
                ws.recv().await.unwrap(),
                CloseCode::NORMAL,
                Initiator::Remote,
            );
            let (mut peer, close_sent) = join(raw).await;
            ws.close_transport().await.unwrap();
            let elapsed = close_sent.elapsed();
            assert_between("tokio client, linger 50 ms", elapsed, ms(50), ms(1000));
            assert!(ws.connection().should_close_transport());
            // The client then shut its side down.
            blocking(move || assert!(read_to_eof(&mut peer).is_empty())).await;
        })
        .await
        .expect("the test timed out");
    }

    #[tokio::test]
    async fn tokio_server_close_transport_shuts_down_at_once() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            let raw = thread::spawn(move || {
                let (mut s, _) = silent_client(addr);
                s.write_all(&close_frame(1000, true)).unwrap();
                let echo = read_frame(&mut s);
                assert_eq!((echo.first, echo.masked), (0x88, false));
                assert_eq!(echo.payload, 1000u16.to_be_bytes());
                // The client keeps its side open and waits for the server's EOF.
                read_to_eof(&mut s)
            });
            let mut ws = accept(&listener, with_close_timeout(5_000)).await.unwrap();
            expect_clean(
                ws.recv().await.unwrap(),
                CloseCode::NORMAL,
                Initiator::Remote,
            );
            let start = Instant::now();
            ws.close_transport().await.unwrap();
            assert_between(
                "tokio server close_transport",
                start.elapsed(),
                ms(0),
                ms(1000),
            );
            // The EOF comes from the shutdown: `ws` is still alive here.
            assert!(join(raw).await.is_empty());
            drop(ws);
        })
        .await
        .expect("the test timed out");
    }

    // ----- idle timeout -----

    #[tokio::test]
    async fn tokio_idle_timeout_closes_despite_keepalive_pings() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            let peer = echo_peer(listener);
            let mut config = keepalive(10, 1_000);
            config.idle_timeout = Some(ms(80));
            let mut ws = connect(addr, config).await;
            let sent = Instant::now();
            ws.send_text("one").await.unwrap();
            assert_eq!(recv_data(&mut ws).await, OwnedEvent::Text("one".into()));
            let event = recv_data(&mut ws).await;
            let elapsed = sent.elapsed();
            expect_clean(event, CloseCode::GOING_AWAY, Initiator::Local);
            assert_between("tokio client, idle 80 ms", elapsed, ms(80), LATE);
            let (info, pings) = peer.await.unwrap();
            assert_eq!(
                (info.code(), info.reason()),
                (CloseCode::GOING_AWAY, "idle")
            );
            assert!(pings >= 1, "the keepalive ran");
        })
        .await
        .expect("the test timed out");
    }

    // ----- 5. cancel-safety with timers -----

    #[tokio::test]
    async fn tokio_recv_cancelled_repeatedly_loses_nothing_while_keepalive_runs() {
        const COUNT: usize = 50;
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            // The peer sends bursts of 10 messages with pauses of 60 ms, twice
            // the client's keepalive interval, answering the pings meanwhile.
            let peer = tokio::spawn(async move {
                let mut ws = accept(&listener, quiet()).await.unwrap();
                let (mut pings, mut next) = (0, 0);
                let mut pause_until = tokio::time::Instant::now();
                for _ in 0..100_000 {
                    if next < COUNT && tokio::time::Instant::now() >= pause_until {
                        for n in next..next + 10 {
                            ws.send_text(&numbered(n)).await.unwrap();
                        }
                        next += 10;
                        pause_until = tokio::time::Instant::now() + ms(60);
                    }
                    // During a pause, recv until its end (cancelled then).
                    let event = if next < COUNT {
                        match tokio::time::timeout_at(pause_until, ws.recv()).await {
                            Ok(event) => event.unwrap(),
                            Err(_) => continue,
                        }
                    } else {
                        ws.recv().await.unwrap()
                    };
                    match event {
                        OwnedEvent::Ping(_) => pings += 1,
                        OwnedEvent::Text(t) => ws.send_text(&t).await.unwrap(),
                        OwnedEvent::Closed(info) => return (info, pings),
                        other => panic!("{other:?}"),
                    }
                }
                panic!("too many events");
            });
            let mut ws = connect(addr, keepalive(30, 1_000)).await;
            let start = Instant::now();
            let (mut got, mut pongs, mut cancelled) = (Vec::new(), 0, 0);
            while got.len() < COUNT || pongs == 0 {
                assert!(
                    start.elapsed() < LIMIT / 2,
                    "{} messages, {pongs} pongs",
                    got.len()
                );
                match timeout(ms(3), ws.recv()).await {
                    Ok(Ok(OwnedEvent::Text(t))) => got.push(t),
                    Ok(Ok(OwnedEvent::Pong(p))) => {
                        assert!(p.starts_with(b"wska"), "{p:?}");
                        pongs += 1;
                    }
                    Ok(other) => panic!("{other:?}"),
                    Err(_) => cancelled += 1,
                }
            }
            println!(
                "[timing] tokio cancel-safety: {COUNT} messages, {pongs} pongs, {cancelled} \
                 cancelled recv in {:?}",
                start.elapsed()
            );
            for (n, text) in got.iter().enumerate() {
                assert!(*text == numbered(n), "message {n} is {text:.30}");
            }
            assert!(cancelled > 0);
            assert!(ws.connection().is_open());
            assert!(ws.connection().rtt().is_some());
            ws.send_text("last").await.unwrap();
            assert_eq!(recv_data(&mut ws).await, OwnedEvent::Text("last".into()));
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            expect_clean(
                recv_data(&mut ws).await,
                CloseCode::NORMAL,
                Initiator::Local,
            );
            let (info, pings) = peer.await.unwrap();
            assert!(info.is_clean());
            assert!(pings >= pongs);
        })
        .await
        .expect("the test timed out");
    }

    // ----- commands after a quiet spell, extreme durations -----

    /// See `blocking_close_after_a_quiet_spell_completes_cleanly`.
    #[tokio::test]
    async fn tokio_close_after_a_quiet_spell_completes_cleanly() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            let peer = echo_peer(listener);
            let mut ws = connect(addr, with_close_timeout(50)).await;
            tokio::time::sleep(ms(100)).await; // the application is busy, no recv
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            let event = ws.recv().await.unwrap();
            expect_clean(event, CloseCode::NORMAL, Initiator::Local);
            peer.await.unwrap();
        })
        .await
        .expect("the test timed out");
    }

    /// The same for the idle timer: a message sent after a spell without
    /// `recv` (shorter than the idle time) is timed at the send, so the idle
    /// deadline moves past it.
    #[tokio::test]
    async fn tokio_a_message_sent_after_a_quiet_spell_moves_the_idle_deadline() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            let peer = echo_peer(listener);
            let mut config = quiet();
            config.idle_timeout = Some(ms(300));
            let mut ws = connect(addr, config).await;
            let before = ws.connection().poll_timeout().expect("the idle deadline");
            tokio::time::sleep(ms(200)).await; // busy, no recv, within the idle time
            ws.send_text("fresh").await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Text("fresh".into()));
            // The message (sent at 200 ms, echoed just after) moved the idle
            // deadline 300 ms past itself, not past the connection's start.
            let after = ws.connection().poll_timeout().expect("the idle deadline");
            assert!(
                after >= before + ms(200),
                "idle deadline {before:?} -> {after:?}"
            );
            assert!(ws.connection().is_open());
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            expect_clean(
                recv_data(&mut ws).await,
                CloseCode::NORMAL,
                Initiator::Local,
            );
            peer.await.unwrap();
        })
        .await
        .expect("the test timed out");
    }

    /// `Duration::MAX` as a timeout ("never"), past what `Instant` can hold,
    /// is no deadline for the tokio adapter either (no overflow panic).
    #[tokio::test]
    async fn tokio_takes_duration_max_timeouts() {
        timeout(LIMIT, async {
            let (listener, addr) = bind().await;
            let peer = echo_peer(listener);
            let mut config = quiet();
            config.keepalive_interval = Some(Duration::MAX);
            config.handshake_timeout = Some(Duration::MAX);
            let mut ws = connect(addr, config).await;
            ws.send_text("far").await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), OwnedEvent::Text("far".into()));
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            expect_clean(
                ws.recv().await.unwrap(),
                CloseCode::NORMAL,
                Initiator::Local,
            );
            peer.await.unwrap();
        })
        .await
        .expect("the test timed out");
    }
}
