#![cfg(feature = "tokio")]
//! Hostile peers, end to end: an in-process echo server (the serve loop of
//! `examples/echo_server.rs`, one task per connection) on a real loopback
//! listener, and raw `TcpStream`s writing hand-made bytes at it. Each case
//! checks the exact answer on the wire, and that the server is still alive
//! and holds no connection task (nor file descriptor) afterwards.
//!
//! Every wait is bounded (`tokio::time::timeout`). Each case prints a small
//! table of what was sent and what came back (run with `--nocapture`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use wsmachine::adapter::tokio::WebSocket;
use wsmachine::frame::{
    Frame, FrameHeader, MAX_HEADER_LEN, OpCode, Status, apply_mask, encode_frame,
};
use wsmachine::{Config, Event};

/// The key of RFC 6455 §1.3 and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// The masking key of every client frame sent here.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// The server's handshake timeout: short, so the slowloris case is fast.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest wait for any one read or write of a test socket.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest any one case may take.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serialises the cases of this file. The leak case counts the open file
/// descriptors of the whole process (`/proc/self/fd`), and libtest runs the
/// tests of one binary on parallel threads of that process: a socket opened
/// or closed by another case during the count would make it wrong. So every
/// case takes this lock for its whole run (a tokio mutex: it is held across
/// `.await`, and every test has a runtime of its own, which it works across).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How each server connection of the running case went, one line each:
/// printed if the case fails, to tell what the server saw.
static SERVER_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs one case: serialised with the others, bounded by [`CASE_TIMEOUT`].
/// If it fails, the end of the server's log is printed before the panic.
async fn run_case<F: Future<Output = ()> + Send + 'static>(name: &str, case: F) {
    let _serial = SERIAL.lock().await;
    SERVER_LOG.lock().unwrap().clear();
    let started = Instant::now();
    let outcome = timeout(CASE_TIMEOUT, tokio::spawn(case)).await;
    if !matches!(outcome, Ok(Ok(()))) {
        let log = std::mem::take(&mut *SERVER_LOG.lock().unwrap());
        eprintln!("{name}: failed; the server's last connections:");
        for line in &log[log.len().saturating_sub(30)..] {
            eprintln!("  {line}");
        }
    }
    match outcome {
        Ok(Ok(())) => eprintln!("{name}: passed in {:?}", started.elapsed()),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("{name}: {e}"),
        Err(elapsed) => panic!("{name}: {elapsed} ({CASE_TIMEOUT:?})"),
    }
}

// ---------------------------------------------------------------------------
// The echo server
// ---------------------------------------------------------------------------

/// The server's config: a short handshake timeout, no permessage-deflate (so
/// that frames are plain), every other limit at its default.
fn server_config() -> Config {
    let mut config = Config::default();
    config.handshake_timeout = Some(HANDSHAKE_TIMEOUT);
    #[cfg(feature = "deflate")]
    {
        config.deflate = None;
    }
    config
}

/// Counts a live connection task for as long as it is held.
struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(live))
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An echo server on 127.0.0.1, port 0: an accept loop spawning one task per
/// connection. Dropping it stops the accept loop.
struct Server {
    addr: SocketAddr,
    /// Connection tasks running now.
    live: Arc<AtomicUsize>,
    /// How the connection tasks ended: "closed" (`Event::Closed` reached), or
    /// the error that ended them, with a count each.
    ended: Arc<Mutex<BTreeMap<String, usize>>>,
    accept_loop: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl Server {
    fn start() -> Self {
        // `TcpListener::bind` listens with a backlog of 128: a burst of
        // connections larger than that, on a busy machine, overflows the
        // accept queue, and the kernel then holds the overflow back for
        // seconds (SYN-ACK retransmissions) although the clients' connects
        // succeeded. The cases here open 200 and 1,000 at once.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let origin = Instant::now();
        let live = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(Mutex::new(BTreeMap::new()));
        let accept_loop = tokio::spawn({
            let live = Arc::clone(&live);
            let ended = Arc::clone(&ended);
            async move {
                for id in 0.. {
                    // As in the example, an accept error ends the server.
                    let stream = match listener.accept().await {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            eprintln!("accept failed: {e}");
                            return;
                        }
                    };
                    // Counted before the spawn: the guard lives in the task.
                    let guard = LiveGuard::new(&live);
                    let ended = Arc::clone(&ended);
                    tokio::spawn(async move {
                        let _guard = guard;
                        let accepted = origin.elapsed();
                        let outcome = match serve(stream, server_config()).await {
                            Ok(()) => "closed".to_string(),
                            Err(e) => e.to_string(),
                        };
                        SERVER_LOG.lock().unwrap().push(format!(
                            "#{id}: accepted at {accepted:.2?}, ended at {:.2?}: {outcome}",
                            origin.elapsed()
                        ));
                        *ended.lock().unwrap().entry(outcome).or_default() += 1;
                    });
                }
            }
        });
        Self {
            addr,
            live,
            ended,
            accept_loop,
        }
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Polls until `want` connection tasks are live, for at most `within`;
    /// returns the last count seen.
    async fn wait_live(&self, want: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let live = self.live();
            if live == want || Instant::now() >= deadline {
                return live;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Asserts that every connection task ends within a few seconds.
    async fn assert_no_task_left(&self) {
        let live = self.wait_live(0, IO_TIMEOUT).await;
        assert_eq!(live, 0, "connection tasks still running");
    }

    /// How the connection tasks ended so far, and forgets it.
    fn take_ended(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.ended.lock().unwrap())
    }

    /// Asserts that the `n` connection tasks so far all reached
    /// `Event::Closed` (no I/O error), and forgets them.
    fn assert_all_closed(&self, n: usize) -> BTreeMap<String, usize> {
        let ended = self.take_ended();
        assert_eq!(ended, BTreeMap::from([("closed".to_string(), n)]));
        ended
    }
}

/// What the next event asks the server to do.
enum Reply {
    Text(String),
    Binary(Vec<u8>),
    Nothing,
    Stop,
}

/// The serve loop of `examples/echo_server.rs`, with the config as a parameter.
async fn serve(stream: TcpStream, config: Config) -> Result<(), wsmachine::adapter::Error> {
    stream.set_nodelay(true)?;
    let mut ws = WebSocket::accept(stream, config).await?;
    loop {
        // The message is read in place; only the reply is copied.
        let reply = ws
            .recv_with(|event| match event {
                Event::Text(text) => Reply::Text(text.to_owned()),
                Event::Binary(data) => Reply::Binary(data.to_vec()),
                Event::Closed(_) => Reply::Stop,
                _ => Reply::Nothing,
            })
            .await?;
        match reply {
            Reply::Text(text) => ws.send_text(&text).await?,
            Reply::Binary(data) => ws.send_binary(&data).await?,
            Reply::Nothing => {}
            Reply::Stop => return Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// The hostile client: a raw socket and hand-made bytes
// ---------------------------------------------------------------------------

/// An HTTP request: `request_line`, the fields, and the empty line.
fn http_request(request_line: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("{request_line}\r\n");
    for (name, value) in fields {
        for part in [name, ": ", value, "\r\n"] {
            s.push_str(part);
        }
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The fields of a valid upgrade request with the fixed key.
fn valid_fields(addr: &SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("Host", addr.to_string()),
        ("Upgrade", "websocket".into()),
        ("Connection", "Upgrade".into()),
        ("Sec-WebSocket-Key", KEY.into()),
        ("Sec-WebSocket-Version", "13".into()),
    ]
}

/// A valid upgrade request, with the fields of `valid_fields` changed by
/// `edit` (which may remove, replace or add some).
fn request_with(
    request_line: &str,
    addr: &SocketAddr,
    edit: impl FnOnce(&mut Vec<(&'static str, String)>),
) -> Vec<u8> {
    let mut fields = valid_fields(addr);
    edit(&mut fields);
    let refs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    http_request(request_line, &refs)
}

fn valid_request(addr: &SocketAddr) -> Vec<u8> {
    request_with("GET / HTTP/1.1", addr, |_| {})
}

/// A frame as a client sends it: masked with [`MASK`].
fn masked_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(
        &mut out,
        &FrameHeader::new(opcode, true, Some(MASK)),
        payload,
    );
    out
}

/// A frame header alone, announcing `len` bytes of payload.
fn frame_header(opcode: OpCode, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mut header = FrameHeader::new(opcode, true, mask);
    header.payload_len = len;
    let mut out = [0; MAX_HEADER_LEN];
    let n = header.encode(&mut out);
    out[..n].to_vec()
}

/// The close code of a close frame's payload (`None` for an empty payload).
fn close_code(payload: &[u8]) -> Option<u16> {
    match payload {
        [] => None,
        [hi, lo, reason @ ..] => {
            assert!(
                std::str::from_utf8(reason).is_ok(),
                "close reason not UTF-8"
            );
            Some(u16::from_be_bytes([*hi, *lo]))
        }
        [_] => panic!("a close payload of 1 byte"),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A response head: the status and the header fields.
#[derive(Debug)]
struct Head {
    status: u16,
    fields: Vec<(String, String)>,
    raw: String,
}

impl Head {
    fn parse(raw: String) -> Self {
        let mut lines = raw.split("\r\n").filter(|l| !l.is_empty());
        let status_line = lines.next().expect("a status line");
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "status line {status_line:?}"
        );
        let status = status_line[9..12].parse().expect("a 3-digit status");
        let fields = lines
            .map(|l| {
                let (name, value) = l.split_once(':').expect("a header field");
                (name.to_ascii_lowercase(), value.trim().to_string())
            })
            .collect();
        Self {
            status,
            fields,
            raw,
        }
    }

    /// The value of field `name` (case-insensitive), if present.
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn status_line(&self) -> &str {
        self.raw.lines().next().unwrap_or_default()
    }
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// A clean end of stream (FIN).
    Eof,
    /// A read error, such as a reset (RST).
    Error(ErrorKind),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Eof => f.write_str("EOF"),
            End::Error(kind) => write!(f, "error {kind:?}"),
        }
    }
}

/// A raw client socket, with what it received and has not consumed yet.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write failed");
    }

    /// One read, appended to `buf`: the number of bytes read, 0 at the end
    /// of the stream. Panics if nothing comes within [`IO_TIMEOUT`].
    async fn fill(&mut self, waiting_for: &str) -> std::io::Result<usize> {
        let mut chunk = [0; 4096];
        let n = timeout(IO_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {waiting_for} within {IO_TIMEOUT:?}; received so far: {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            })?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads more; panics at the end of the stream or on an error.
    async fn fill_some(&mut self, waiting_for: &str) {
        match self.fill(waiting_for).await {
            Ok(0) => panic!(
                "end of stream while waiting for {waiting_for}; received: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(_) => {}
            Err(e) => panic!(
                "read failed ({e}) while waiting for {waiting_for}; received: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Reads an HTTP response head.
    async fn read_head(&mut self) -> Head {
        loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..at + 4).collect();
                return Head::parse(String::from_utf8(raw).expect("an ASCII response head"));
            }
            self.fill_some("a response head").await;
        }
    }

    /// Reads an HTTP response: its head and its body (`Content-Length`).
    async fn read_response(&mut self) -> (Head, Vec<u8>) {
        let head = self.read_head().await;
        let len: usize = head
            .field("content-length")
            .expect("a Content-Length")
            .parse()
            .expect("a numeric Content-Length");
        while self.buf.len() < len {
            self.fill_some("the response body").await;
        }
        let body = self.buf.drain(..len).collect();
        (head, body)
    }

    /// Reads one whole frame from the server: its header and payload.
    async fn read_frame(&mut self) -> (FrameHeader, Vec<u8>) {
        loop {
            let decoded = match Frame::decode(&mut self.buf) {
                Ok(Status::Complete((frame, used))) => {
                    Some((frame.header, frame.payload.to_vec(), used))
                }
                Ok(Status::Partial { .. }) => None,
                Err(e) => panic!("the server sent an invalid frame ({e}): {:?}", self.buf),
            };
            if let Some((header, payload, used)) = decoded {
                self.buf.drain(..used);
                assert!(header.mask.is_none(), "a server frame was masked");
                return (header, payload);
            }
            self.fill_some("a frame").await;
        }
    }

    /// Reads a close frame: its code.
    async fn read_close(&mut self) -> Option<u16> {
        let (header, payload) = self.read_frame().await;
        assert_eq!(header.opcode, OpCode::CLOSE, "payload {payload:?}");
        assert!(header.fin, "a fragmented close frame");
        close_code(&payload)
    }

    /// Reads to the end of the stream: how it ended, and the bytes that came
    /// before it that were not consumed.
    async fn read_to_end(&mut self) -> (End, Vec<u8>) {
        let end = loop {
            match self.fill("the end of the stream").await {
                Ok(0) => break End::Eof,
                Ok(_) => {}
                Err(e) => break End::Error(e.kind()),
            }
        };
        (end, std::mem::take(&mut self.buf))
    }

    /// Asserts that the stream ends cleanly (FIN) with nothing more before it.
    async fn expect_eof(&mut self) {
        let (end, rest) = self.read_to_end().await;
        assert_eq!(
            (end, rest.as_slice()),
            (End::Eof, &[][..]),
            "expected a clean end of stream, got {end} after {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// Opens a WebSocket with a full valid handshake over a raw socket, checking
/// the 101 response.
async fn open_ws(addr: SocketAddr) -> Peer {
    let mut peer = Peer::connect(addr).await;
    peer.send(&valid_request(&addr)).await;
    let head = peer.read_head().await;
    assert_eq!(head.status, 101, "{}", head.raw);
    assert_eq!(head.field("sec-websocket-accept"), Some(ACCEPT));
    assert!(
        head.field("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{}",
        head.raw
    );
    assert!(
        head.field("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("upgrade")),
        "{}",
        head.raw
    );
    assert_eq!(
        head.field("sec-websocket-extensions"),
        None,
        "deflate is off"
    );
    assert!(peer.buf.is_empty(), "bytes after the 101: {:?}", peer.buf);
    peer
}

/// Sends a masked text message and checks that it comes back, unmasked.
async fn expect_echo(peer: &mut Peer, text: &str) {
    peer.send(&masked_frame(OpCode::TEXT, text.as_bytes()))
        .await;
    let (header, payload) = peer.read_frame().await;
    assert!(header.fin && header.opcode == OpCode::TEXT, "{header:?}");
    assert!(!header.rsv1 && !header.rsv2 && !header.rsv3, "{header:?}");
    assert_eq!(payload, text.as_bytes());
}

/// Closes with 1000 and checks the echo of the close and the end of stream.
async fn close_cleanly(mut peer: Peer) {
    peer.send(&masked_frame(OpCode::CLOSE, &1000u16.to_be_bytes()))
        .await;
    assert_eq!(peer.read_close().await, Some(1000));
    peer.expect_eof().await;
}

/// A rejected handshake: sends `request`, reads the response and the end of
/// the stream. Returns the head, the body and how the stream ended.
async fn rejected(addr: SocketAddr, request: &[u8]) -> (Head, Vec<u8>, End) {
    let mut peer = Peer::connect(addr).await;
    peer.send(request).await;
    let (head, body) = peer.read_response().await;
    let (end, rest) = peer.read_to_end().await;
    assert!(
        rest.is_empty(),
        "bytes after the response: {:?}",
        String::from_utf8_lossy(&rest)
    );
    (head, body, end)
}

/// Prints what a case sent and what came back, in one write (so that the
/// lines of parallel tests do not mix with it).
fn table(title: &str, rows: &[(String, String)]) {
    let width = rows.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    let mut out = format!("--- {title}\n");
    for (sent, got) in rows {
        let _ = writeln!(out, "  {sent:<width$} -> {got}");
    }
    eprint!("{out}");
}

/// The number of open file descriptors of this process.
fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

/// 1. Malformed upgrade requests: 400 (405 for a method other than GET), and
///    the server closes the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_upgrade_requests_get_400_and_a_closed_socket() {
    run_case("malformed requests", async {
        let server = Server::start();
        let addr = server.addr;
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            (
                "garbage request line",
                b"BLAH BLAH BLAH\r\nHost: x\r\n\r\n".to_vec(),
                400,
            ),
            (
                "no Sec-WebSocket-Key",
                request_with("GET / HTTP/1.1", &addr, |f| {
                    f.retain(|(n, _)| *n != "Sec-WebSocket-Key");
                }),
                400,
            ),
            (
                "key of 4 bytes",
                request_with("GET / HTTP/1.1", &addr, |f| {
                    f.retain(|(n, _)| *n != "Sec-WebSocket-Key");
                    f.push(("Sec-WebSocket-Key", "AAAAAA==".into()));
                }),
                400,
            ),
            (
                "no Upgrade",
                request_with("GET / HTTP/1.1", &addr, |f| {
                    f.retain(|(n, _)| *n != "Upgrade");
                }),
                400,
            ),
            (
                "HTTP/1.0",
                request_with("GET / HTTP/1.0", &addr, |_| {}),
                400,
            ),
            ("POST", request_with("POST / HTTP/1.1", &addr, |_| {}), 405),
        ];
        let mut rows = Vec::new();
        for (what, request, status) in cases {
            let (head, body, end) = rejected(addr, &request).await;
            assert_eq!(head.status, status, "{what}: {}", head.raw);
            assert_eq!(head.field("connection"), Some("close"), "{what}");
            assert_eq!(end, End::Eof, "{what}: the socket should be closed");
            if status == 405 {
                // RFC 9110 §15.5.6.
                assert_eq!(head.field("allow"), Some("GET"), "{what}");
            }
            rows.push((
                what.to_string(),
                format!(
                    "{} ({} B body{}), then {end}",
                    head.status_line(),
                    body.len(),
                    if status == 405 {
                        format!(", Allow: {:?}", head.field("allow"))
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        server.assert_no_task_left().await;
        rows.push((
            "server tasks ended".into(),
            format!("{:?}", server.take_ended()),
        ));
        table("1. malformed upgrade requests", &rows);
    })
    .await;
}

/// 2. A version other than 13: 426 naming version 13.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_8_gets_426_with_version_13() {
    run_case("version 8", async {
        let server = Server::start();
        let addr = server.addr;
        let request = request_with("GET / HTTP/1.1", &addr, |f| {
            f.retain(|(n, _)| *n != "Sec-WebSocket-Version");
            f.push(("Sec-WebSocket-Version", "8".into()));
        });
        let (head, _body, end) = rejected(addr, &request).await;
        assert_eq!(head.status, 426, "{}", head.raw);
        assert_eq!(
            head.field("sec-websocket-version"),
            Some("13"),
            "{}",
            head.raw
        );
        assert_eq!(end, End::Eof);
        server.assert_no_task_left().await;
        table(
            "2. unsupported version",
            &[
                (
                    "Sec-WebSocket-Version: 8".into(),
                    format!(
                        "{}, Sec-WebSocket-Version: {}, then {end}",
                        head.status_line(),
                        head.field("sec-websocket-version").unwrap_or("-")
                    ),
                ),
                (
                    "server tasks ended".into(),
                    format!("{:?}", server.take_ended()),
                ),
            ],
        );
    })
    .await;
}

/// 3. A header block over `max_handshake_size` (16 KiB), and one with more
///    fields than `max_headers` (64): 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_headers_get_431() {
    run_case("oversize headers", async {
        let server = Server::start();
        let addr = server.addr;
        assert_eq!(server_config().max_handshake_size, 16 << 10);
        let big = request_with("GET / HTTP/1.1", &addr, |f| {
            f.insert(1, ("X-Filler", "a".repeat(20 << 10)));
        });
        let many = request_with("GET / HTTP/1.1", &addr, |f| {
            for _ in 0..70 {
                f.push(("X-Many", "1".into()));
            }
        });
        let mut rows = Vec::new();
        for (what, request) in [
            (format!("one 20 KiB header ({} B request)", big.len()), big),
            ("75 header fields".to_string(), many),
        ] {
            let (head, _body, end) = rejected(addr, &request).await;
            assert_eq!(head.status, 431, "{what}: {}", head.raw);
            // The server may not have read all of a request this large before
            // it closed: the kernel then resets the connection instead of
            // ending it, after the response. The response is what counts.
            rows.push((what, format!("{}, then {end}", head.status_line())));
        }
        server.assert_no_task_left().await;
        rows.push((
            "server tasks ended".into(),
            format!("{:?}", server.take_ended()),
        ));
        table("3. oversize headers", &rows);
    })
    .await;
}

/// 4. Slowloris: 200 connections send half a request and stall. The
///    handshake timeout answers each with 408 and closes it, and meanwhile a
///    real client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_time_out_while_a_real_client_is_served() {
    const STALLED: usize = 200;
    run_case("slowloris", async {
        let server = Server::start();
        let addr = server.addr;
        let partial = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n");
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let mut stalled = JoinSet::new();
        for _ in 0..STALLED {
            let partial = partial.clone();
            let ready_tx = ready_tx.clone();
            stalled.spawn(async move {
                let started = Instant::now();
                let mut peer = Peer::connect(addr).await;
                peer.send(partial.as_bytes()).await;
                ready_tx.send(()).unwrap();
                let (end, received) = peer.read_to_end().await;
                (started.elapsed(), end, received)
            });
        }
        for _ in 0..STALLED {
            timeout(IO_TIMEOUT, ready_rx.recv())
                .await
                .expect("the stalled clients did not connect in time")
                .unwrap();
        }
        // The clients are connected as soon as the kernel has the connection
        // queued; wait until the server has accepted every one (its handshake
        // timeout runs from the accept).
        let accepted = server.wait_live(STALLED, IO_TIMEOUT).await;
        assert_eq!(
            accepted, STALLED,
            "the server did not accept every stalled client in time"
        );
        // All stalled; now a real client.
        let started = Instant::now();
        let mut client = open_ws(addr).await;
        let live_meanwhile = server.live();
        expect_echo(&mut client, "served while 200 stall").await;
        let served_in = started.elapsed();
        assert_eq!(
            live_meanwhile,
            STALLED + 1,
            "the stalled connections were dropped before the real client was served"
        );
        close_cleanly(client).await;

        let mut ok = 0;
        let (mut fastest, mut slowest) = (Duration::MAX, Duration::ZERO);
        let mut first = None;
        while let Some(result) = stalled.join_next().await {
            let (elapsed, end, received) = result.unwrap();
            let text = String::from_utf8_lossy(&received);
            assert!(
                text.starts_with("HTTP/1.1 408 "),
                "a stalled client got {text:?} then {end}"
            );
            let body_at = find(&received, b"\r\n\r\n").expect("a whole response head") + 4;
            let head = Head::parse(text[..body_at].to_string());
            let len: usize = head.field("content-length").unwrap().parse().unwrap();
            assert_eq!(
                received.len(),
                body_at + len,
                "bytes after the 408: {text:?}"
            );
            assert_eq!(end, End::Eof, "a stalled client got {text:?} then {end}");
            assert!(
                elapsed >= HANDSHAKE_TIMEOUT.saturating_sub(Duration::from_millis(50))
                    && elapsed <= IO_TIMEOUT,
                "dropped after {elapsed:?}"
            );
            fastest = fastest.min(elapsed);
            slowest = slowest.max(elapsed);
            first.get_or_insert_with(|| head.status_line().to_string());
            ok += 1;
        }
        assert_eq!(ok, STALLED);
        server.assert_no_task_left().await;
        table(
            "4. slowloris (handshake timeout 1 s)",
            &[
                (
                    format!("{STALLED} half requests, stalled"),
                    format!(
                        "{ok} x \"{}\" then EOF, after {fastest:.2?} .. {slowest:.2?}",
                        first.unwrap_or_default()
                    ),
                ),
                (
                    "a real client meanwhile".into(),
                    format!(
                        "101 + echo in {served_in:.2?}, with {live_meanwhile} server tasks live"
                    ),
                ),
                (
                    "server tasks ended".into(),
                    format!("{:?}", server.take_ended()),
                ),
            ],
        );
    })
    .await;
}

/// Opens a WebSocket, sends `bytes`, and expects a close frame and the end of
/// the stream: returns the close code and how long it took.
async fn close_after(server: &Server, bytes: &[u8]) -> (Option<u16>, Duration) {
    let mut peer = open_ws(server.addr).await;
    let started = Instant::now();
    peer.send(bytes).await;
    let code = peer.read_close().await;
    let elapsed = started.elapsed();
    peer.expect_eof().await;
    (code, elapsed)
}

/// 5. An unmasked client frame: close 1002, and the TCP connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmasked_client_frame_gets_close_1002() {
    run_case("unmasked frame", async {
        let server = Server::start();
        let mut unmasked = Vec::new();
        encode_frame(
            &mut unmasked,
            &FrameHeader::new(OpCode::TEXT, true, None),
            b"hello",
        );
        assert_eq!(unmasked, b"\x81\x05hello");
        let (code, took) = close_after(&server, &unmasked).await;
        assert_eq!(code, Some(1002));
        server.assert_no_task_left().await;
        let ended = server.assert_all_closed(1);
        table(
            "5. unmasked client frame",
            &[
                (
                    "81 05 \"hello\" (unmasked text)".into(),
                    format!("close {code:?} in {took:.2?}, then EOF"),
                ),
                ("server tasks ended".into(), format!("{ended:?}")),
            ],
        );
    })
    .await;
}

/// 6. A masked text frame that is not UTF-8: close 1007.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_gets_close_1007() {
    run_case("invalid UTF-8", async {
        let server = Server::start();
        let (code, took) = close_after(&server, &masked_frame(OpCode::TEXT, &[0xff, 0xfe])).await;
        assert_eq!(code, Some(1007));
        server.assert_no_task_left().await;
        let ended = server.assert_all_closed(1);
        table(
            "6. invalid UTF-8",
            &[
                (
                    "masked text ff fe".into(),
                    format!("close {code:?} in {took:.2?}, then EOF"),
                ),
                ("server tasks ended".into(), format!("{ended:?}")),
            ],
        );
    })
    .await;
}

/// 7. A header announcing a 2^62-byte payload: close 1009 at once, with no
///    allocation of that size (the process would not survive one). A length
///    with the top bit set is malformed: close 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_pow_62_byte_frame_gets_close_1009_promptly() {
    run_case("2^62 length", async {
        let server = Server::start();
        let huge = frame_header(OpCode::BINARY, Some(MASK), 1 << 62);
        let mut expected = vec![0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(&MASK);
        assert_eq!(huge, expected);
        let (code, took) = close_after(&server, &huge).await;
        assert_eq!(code, Some(1009));
        assert!(took < Duration::from_secs(1), "the close took {took:?}");

        // 2^63: the most significant bit of a 64-bit length MUST be 0 (§5.2).
        let mut top_bit = vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
        top_bit.extend_from_slice(&MASK);
        let (code_top, took_top) = close_after(&server, &top_bit).await;
        assert_eq!(code_top, Some(1002));
        assert!(
            took_top < Duration::from_secs(1),
            "the close took {took_top:?}"
        );

        server.assert_no_task_left().await;
        let ended = server.assert_all_closed(2);
        table(
            "7. huge length",
            &[
                (
                    "82 ff 40 00.. (masked binary, 2^62 B)".into(),
                    format!("close {code:?} in {took:.2?}, then EOF"),
                ),
                (
                    "82 ff 80 00.. (masked binary, 2^63 B)".into(),
                    format!("close {code_top:?} in {took_top:.2?}, then EOF"),
                ),
                ("server tasks ended".into(), format!("{ended:?}")),
            ],
        );
    })
    .await;
}

/// 8. 1,000 connections complete the handshake, send the first 10 bytes of a
///    1,000-byte frame, and vanish (half with FIN, half with RST). The server
///    stays up, and gives back every task and every file descriptor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_dropped_mid_frame_leak_nothing() {
    const FLOOD: usize = 1000;
    /// File descriptors the count may exceed the baseline by afterwards.
    const FD_SLACK: usize = 8;
    run_case("mid-frame flood", async {
        let server = Server::start();
        let addr = server.addr;
        // Warm up: whatever the runtime and the server open once is open
        // before the baseline.
        let mut warm = open_ws(addr).await;
        expect_echo(&mut warm, "warm-up").await;
        close_cleanly(warm).await;
        server.assert_no_task_left().await;
        server.take_ended();
        let baseline = fd_count();

        // The first part of a frame: a header announcing 1,000 bytes, and 10 of them.
        let mut partial = frame_header(OpCode::BINARY, Some(MASK), 1000);
        let mut payload = [0x5a; 10];
        apply_mask(&mut payload, MASK, 0);
        partial.extend_from_slice(&payload);

        let started = Instant::now();
        let permits = Arc::new(Semaphore::new(100));
        let mut opening = JoinSet::new();
        for _ in 0..FLOOD {
            let permits = Arc::clone(&permits);
            let partial = partial.clone();
            opening.spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                let mut peer = open_ws(addr).await;
                peer.send(&partial).await;
                peer
            });
        }
        let mut peers = Vec::with_capacity(FLOOD);
        while let Some(peer) = opening.join_next().await {
            peers.push(peer.unwrap());
        }
        let opened_in = started.elapsed();
        // Every server task waits for the rest of its frame.
        let peak_live = server.wait_live(FLOOD, IO_TIMEOUT).await;
        assert_eq!(peak_live, FLOOD);
        let peak_fds = fd_count();

        let mut resets = 0;
        for (i, peer) in peers.into_iter().enumerate() {
            if i % 2 == 1 {
                peer.stream.set_zero_linger().unwrap();
                resets += 1;
            }
            drop(peer);
        }

        // The server is alive.
        let mut fresh = open_ws(addr).await;
        expect_echo(&mut fresh, "alive after the flood").await;
        close_cleanly(fresh).await;

        // Everything is given back.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (live, fds) = loop {
            let (live, fds) = (server.live(), fd_count());
            if (live == 0 && fds <= baseline + FD_SLACK) || Instant::now() >= deadline {
                break (live, fds);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let drained_in = started.elapsed();
        assert_eq!(live, 0, "server connection tasks left");
        assert!(
            fds <= baseline + FD_SLACK,
            "fd leak: {fds} open, baseline {baseline}"
        );
        // The connections ended with FIN reach `Event::Closed` (1006), as
        // does the fresh client; those reset fail their read.
        let ended = server.take_ended();
        assert_eq!(ended.values().sum::<usize>(), FLOOD + 1, "{ended:?}");
        assert_eq!(
            ended.get("closed"),
            Some(&(FLOOD - resets + 1)),
            "{ended:?}"
        );
        assert!(
            ended
                .iter()
                .all(|(how, _)| how == "closed" || how.contains("reset")),
            "{ended:?}"
        );
        table(
            "8. 1000 connections dropped mid-frame",
            &[
                (
                    format!("{FLOOD} handshakes + 10 B of a 1000 B frame"),
                    format!(
                        "opened in {opened_in:.2?}; {peak_live} server tasks live, {peak_fds} fds (baseline {baseline})"
                    ),
                ),
                (
                    format!("dropped: {} FIN, {resets} RST", FLOOD - resets),
                    format!(
                        "{live} tasks live, {fds} fds, {drained_in:.2?} after the start of the flood"
                    ),
                ),
                (
                    "a fresh client".into(),
                    "101, echo, clean close".into(),
                ),
                ("server tasks ended".into(), format!("{ended:?}")),
            ],
        );
    })
    .await;
}
